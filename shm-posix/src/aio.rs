//! Awaitable receive and call (feature `tokio`): futures that any executor
//! (tokio included) can await, and that compose with `tokio::select!`.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use shm_core::Layout;
//! use shm_posix::{aio, FutexWait, Segment};
//!
//! let name = format!("/shm-doc-aio-{}", std::process::id());
//! let segment = Segment::create(&name, &Layout::new().queue("q", 4096)?)?;
//! let mut rx = segment.consumer("q", FutexWait::new())?;
//! let mut tx = segment.producer("q", FutexWait::new())?;
//! std::thread::scope(|s| {
//!     s.spawn(move || tx.send_timeout(b"hello", Duration::from_secs(5)));
//! });
//! let mut buf = [0u8; 16];
//! let n = aio::recv(&mut rx, &mut buf, Duration::from_secs(5)).await?;
//! assert_eq!(&buf[..n], b"hello");
//! # Ok(())
//! # }
//! ```
//!
//! # Design
//!
//! A call first tries its non-blocking form (`try_recv`, `try_claim`): while
//! the peer keeps the channel busy that succeeds, and the call makes no
//! system call at all. Only when there is nothing, it announces itself as
//! waiting on the endpoint (the [`shm_core::ready`] handshake, as a
//! [`WaitSet`](crate::WaitSet) does), and hands the endpoint's wake word
//! with the value it saw and the task's waker to one background thread per
//! process, the reactor. The reactor sleeps in `futex_waitv` over every
//! registered word (and one of its own, to learn of new registrations) and
//! wakes the task whose word was woken or changed: no executor thread
//! polls. Each call has a timeout, as the blocking calls do; once it
//! passes, the call reports what the blocking call would (`Timeout`, or
//! `PeerDied` when the peer is gone). Dropping a call's future (the losing
//! branch of a `select!`) consumes nothing: a message is taken only when
//! the future completes with it, and a posted mailbox request is withdrawn.
//!
//! # A dead peer under `select!`
//!
//! A call learns that its peer died at the end of a liveness slice (100
//! ms) of its own waiting. In a `select!` loop whose other branch keeps
//! winning, each round makes a new call, whose slice starts again, so a
//! dead producer or publisher on the quiet branch is not reported while
//! the other stays busy. Ask every so often
//! ([`Consumer::producer_alive`](shm_core::queue::Consumer::producer_alive),
//! [`Subscriber::publisher_alive`](shm_core::broadcast::Subscriber::publisher_alive),
//! [`Client::server_alive`]), for example on a `tokio::time::interval`
//! branch.
//!
//! The reactor watches up to [`REACTOR_WORDS`] words in one system call;
//! beyond that, or on a kernel without `futex_waitv` (before 5.16), the
//! tasks it cannot watch are polled every millisecond. A mailbox call
//! waiting for a free slot polls every millisecond too.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{fence, AtomicU32 as StdAtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use rustix::thread::futex;
use shm_core::mailbox::Client;
use shm_core::ready::{Receive, Waitable};
use shm_core::{CallError, RecvError, Wait};

/// The most words the reactor watches in one `futex_waitv` (the kernel's
/// limit, less its own).
pub const REACTOR_WORDS: usize = 127;
/// How long the reactor sleeps at most.
const REACTOR_SLICE: Duration = Duration::from_millis(100);
/// How long a call waits before it looks whether its peer is alive (as the
/// blocking calls' futex sleeps do, `DEFAULT_LIVENESS_INTERVAL`).
const LIVENESS_SLICE: Duration = crate::DEFAULT_LIVENESS_INTERVAL;
const POLL_PERIOD: Duration = Duration::from_millis(1);

/// Receives the next message from `rx` (a queue consumer or a broadcast
/// subscriber) into `buf`, waiting at most `timeout`; what its
/// `recv_timeout` returns, as a future.
pub async fn recv<R: Receive>(rx: &mut R, buf: &mut [u8], timeout: Duration) -> Result<usize, RecvError> {
    let deadline = Instant::now().checked_add(timeout);
    loop {
        match rx.try_recv(buf) {
            Err(RecvError::Empty) => {}
            other => return other,
        }
        if !ready(&*rx, slice_end(deadline)).await {
            // A slice without a message: the blocking call with no time
            // left says why (a dead producer) or takes a last-moment one.
            match rx.recv_timeout(buf, Duration::ZERO) {
                Err(RecvError::Timeout) if !passed(deadline) => {}
                other => return other,
            }
        }
    }
}

/// The end of the next wait slice: a liveness slice from now, or the
/// deadline if sooner.
fn slice_end(deadline: Option<Instant>) -> Option<Instant> {
    let slice = Instant::now() + LIVENESS_SLICE;
    Some(deadline.map_or(slice, |d| d.min(slice)))
}

fn passed(deadline: Option<Instant>) -> bool {
    deadline.is_some_and(|d| Instant::now() >= d)
}

/// Calls the mailbox server through `client`: sends `request`, waits at
/// most `timeout` in all for a free slot and for the response, copies the
/// response into `response` and returns its length; what
/// [`Client::call_timeout`] returns.
pub async fn call<W: Wait>(
    client: &Client<'_, W>,
    request: &[u8],
    response: &mut [u8],
    timeout: Duration,
) -> Result<usize, CallError> {
    let deadline = Instant::now().checked_add(timeout);
    if request.len() > client.slot_size() {
        return Err(CallError::TooLarge { len: request.len(), max: client.slot_size() });
    }
    let mut slot = loop {
        match client.try_claim() {
            Ok(slot) => break slot,
            Err(CallError::NoFreeSlot) if deadline.is_none_or(|d| Instant::now() < d) => {
                Sleep::until(Instant::now() + POLL_PERIOD).await;
            }
            Err(CallError::NoFreeSlot) => return Err(CallError::Timeout),
            Err(e) => return Err(e),
        }
    };
    slot.write(request);
    let pending = slot.send(request.len())?;
    while !ready(&pending, slice_end(deadline)).await && !passed(deadline) && client.server_alive() {}
    // Ready, out of time, or the server gone: the blocking wait with no time
    // left takes the response, or withdraws the request and says why there
    // is none.
    let answer = pending.wait_timeout(Duration::ZERO)?;
    if answer.len() > response.len() {
        return Err(CallError::BufferTooSmall { needed: answer.len() });
    }
    Ok(answer.read_into(response))
}

/// Waits until `endpoint` is ready ([`Waitable::is_ready`]) or `deadline`
/// passes (`None`: never); `true` if it is ready. The future is `Send` when
/// the endpoint is `Sync`.
pub async fn ready<E: Waitable + ?Sized>(endpoint: &E, deadline: Option<Instant>) -> bool {
    Ready { endpoint, deadline, key: None, announced: false, brief_us: shm_core::format::queue::LAZY_RECHECK_US }.await
}

/// The future of [`ready`].
struct Ready<'e, E: Waitable + ?Sized> {
    endpoint: &'e E,
    deadline: Option<Instant>,
    /// The reactor registration, while there is one.
    key: Option<u64>,
    /// Whether this future announced itself on the endpoint.
    announced: bool,
    /// Facing a lazy peer whose fence cannot be forced: the next brief wait.
    brief_us: u32,
}

impl<E: Waitable + ?Sized> Ready<'_, E> {
    fn withdraw(&mut self) {
        if let Some(key) = self.key.take() {
            reactor().deregister(key);
        }
        if self.announced {
            self.endpoint.announce(false);
            self.announced = false;
        }
    }
}

impl<E: Waitable + ?Sized> Future for Ready<'_, E> {
    type Output = bool;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<bool> {
        self.withdraw();
        let e = self.endpoint;
        if e.is_ready() {
            return Poll::Ready(true);
        }
        let now = Instant::now();
        if self.deadline.is_some_and(|d| now >= d) {
            return Poll::Ready(false);
        }
        e.announce(true);
        self.announced = true;
        // SYNC POINT: pairs with the peer's fence between publishing and
        // looking at the waiting word (see `shm_core::ready`).
        fence(Ordering::SeqCst);
        let mut until = self.deadline;
        // A lazy peer's fence that cannot be forced: brief waits, growing
        // until they reach the ordinary ones (as the channels' own waits do).
        let brief_left = self.brief_us <= shm_core::format::queue::LAZY_RECHECK_MAX_US;
        if brief_left && e.peer_lazy() && !crate::membarrier::barrier_everywhere() {
            let brief = now + Duration::from_micros(self.brief_us.into());
            self.brief_us *= 2;
            until = Some(until.map_or(brief, |d| d.min(brief)));
        }
        // SYNC POINT: Acquire pairs with the peer's Release store of the
        // word, as the channels' own waits do.
        let seen = e.wake_word().load(Ordering::Acquire);
        if e.is_ready() {
            self.withdraw();
            return Poll::Ready(true);
        }
        let addr = core::ptr::from_ref(e.wake_word()) as usize;
        self.key = Some(reactor().register(addr, seen, until, cx.waker().clone()));
        Poll::Pending
    }
}

impl<E: Waitable + ?Sized> Drop for Ready<'_, E> {
    fn drop(&mut self) {
        self.withdraw();
    }
}

/// A future that completes at `at` (the reactor's timer).
struct Sleep {
    at: Instant,
    key: Option<u64>,
}

impl Sleep {
    fn until(at: Instant) -> Self {
        Self { at, key: None }
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if let Some(key) = self.key.take() {
            reactor().deregister(key);
        }
        if Instant::now() >= self.at {
            return Poll::Ready(());
        }
        // A timer only: the reactor's own word, which never changes for it.
        let at = self.at;
        self.key = Some(reactor().register(0, 0, Some(at), cx.waker().clone()));
        Poll::Pending
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            reactor().deregister(key);
        }
    }
}

/// One task waiting: a word (address 0: none, a timer only), the value it
/// saw, when to wake it regardless, and its waker.
struct Entry {
    key: u64,
    addr: usize,
    seen: u32,
    until: Option<Instant>,
    waker: Waker,
}

/// `futex_waitv` calls the reactor made so far (diagnostics: an idle
/// reactor makes a few per second).
pub fn reactor_sleeps() -> u64 {
    REACTOR_SLEEPS.load(Ordering::Relaxed)
}

static REACTOR_SLEEPS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

struct Reactor {
    entries: Mutex<(u64, Vec<Entry>)>,
    /// Bumped (and woken) at each registration: the reactor's own word.
    changes: StdAtomicU32,
}

fn reactor() -> &'static Reactor {
    static REACTOR: OnceLock<&'static Reactor> = OnceLock::new();
    REACTOR.get_or_init(|| {
        let r: &'static Reactor =
            Box::leak(Box::new(Reactor { entries: Mutex::new((1, Vec::new())), changes: StdAtomicU32::new(0) }));
        std::thread::Builder::new()
            .name("shm-reactor".into())
            .spawn(move || r.run())
            .expect("starting the shm reactor thread");
        r
    })
}

impl Reactor {
    fn register(&self, addr: usize, seen: u32, until: Option<Instant>, waker: Waker) -> u64 {
        let key = {
            let mut guard = self.entries.lock().unwrap_or_else(|p| p.into_inner());
            let key = guard.0;
            guard.0 += 1;
            guard.1.push(Entry { key, addr, seen, until, waker });
            key
        };
        // SYNC POINT: Release pairs with the reactor's Acquire load of
        // `changes` before it snapshots the entries: it sees this one.
        self.changes.fetch_add(1, Ordering::Release);
        let _ = futex::wake(&self.changes, futex::Flags::PRIVATE, 1);
        key
    }

    fn deregister(&self, key: u64) {
        let mut guard = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        guard.1.retain(|e| e.key != key);
    }

    /// Wakes (and forgets) the entries `pick` selects.
    fn wake(&self, pick: impl Fn(&Entry) -> bool) {
        let mut woken = Vec::new();
        {
            let mut guard = self.entries.lock().unwrap_or_else(|p| p.into_inner());
            guard.1.retain(|e| {
                let go = pick(e);
                if go {
                    woken.push(e.waker.clone());
                }
                !go
            });
        }
        for w in woken {
            w.wake();
        }
    }

    fn run(&self) {
        let mut waits = [futex::Wait::new(); REACTOR_WORDS + 1];
        let mut keys = [0u64; REACTOR_WORDS + 1];
        loop {
            // SYNC POINT: Acquire pairs with the Release in `register`.
            let changes = self.changes.load(Ordering::Acquire);
            waits[0].val = u64::from(changes);
            waits[0].uaddr = futex::WaitPtr::new((&self.changes as *const StdAtomicU32).cast_mut().cast());
            waits[0].flags = futex::WaitFlags::SIZE_U32 | futex::WaitFlags::PRIVATE;
            let now = Instant::now();
            let (mut n, mut until, mut unwatched) = (1, now + REACTOR_SLICE, false);
            {
                let guard = self.entries.lock().unwrap_or_else(|p| p.into_inner());
                for e in &guard.1 {
                    if let Some(t) = e.until {
                        until = until.min(t);
                    }
                    if e.addr == 0 {
                        continue;
                    }
                    if n > REACTOR_WORDS {
                        unwatched = true;
                        continue;
                    }
                    waits[n].val = u64::from(e.seen);
                    waits[n].uaddr = futex::WaitPtr::new(e.addr as *mut std::ffi::c_void);
                    waits[n].flags = futex::WaitFlags::SIZE_U32;
                    keys[n] = e.key;
                    n += 1;
                }
            }
            if unwatched {
                until = until.min(now + POLL_PERIOD);
            }
            let left = until.saturating_duration_since(now);
            let clock = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
            let end = Duration::new(clock.tv_sec as u64, clock.tv_nsec as u32).saturating_add(left);
            let at = rustix::time::Timespec { tv_sec: end.as_secs() as i64, tv_nsec: end.subsec_nanos().into() };
            REACTOR_SLEEPS.fetch_add(1, Ordering::Relaxed);
            let outcome = futex::waitv(&waits[..n], futex::WaitvFlags::empty(), Some(&at), futex::ClockId::Monotonic);
            let now = Instant::now();
            let watched = &keys[1..n];
            match outcome {
                // A new registration: look again.
                Ok(0) => {}
                Ok(i) => {
                    let key = keys[i];
                    self.wake(|e| e.key == key);
                }
                // Some word no longer held the value its task saw (or the
                // reactor's own changed): wake every watched task to look.
                Err(rustix::io::Errno::AGAIN) => {
                    if self.changes.load(Ordering::Relaxed) == changes {
                        self.wake(|e| watched.contains(&e.key));
                    }
                }
                Err(rustix::io::Errno::NOSYS) => {
                    // No futex_waitv: every task looks every millisecond.
                    std::thread::sleep(POLL_PERIOD);
                    self.wake(|_| true);
                }
                // The timeout or a signal: timers due, and tasks the reactor
                // could not watch, look again (below).
                Err(rustix::io::Errno::TIMEDOUT | rustix::io::Errno::INTR) => {}
                // Anything else (an address no longer mapped: a future that
                // was leaked while registered): every watched task looks
                // again and registers anew, which drops a stale entry; a
                // pause keeps a persisting error from spinning this thread.
                Err(_) => {
                    self.wake(|e| watched.contains(&e.key));
                    std::thread::sleep(POLL_PERIOD);
                }
            }
            self.wake(|e| e.until.is_some_and(|t| t <= now) || (unwatched && e.addr != 0 && !watched.contains(&e.key)));
        }
    }
}
