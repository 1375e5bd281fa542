//! Sleeping until any of several endpoints has work: [`WaitSet`].

use std::sync::atomic::{fence, Ordering};
use std::time::{Duration, Instant};

use rustix::thread::futex;
use shm_core::ready::Waitable;
use shm_core::{AsNativeWord, AtomicU32};

/// The most endpoints one wait takes (the kernel's `futex_waitv` limit).
pub const MAX_ENDPOINTS: usize = 128;
/// How long one sleep lasts at most, by default: the endpoints are looked
/// at again after it, whatever woke the thread.
pub const DEFAULT_SLICE: Duration = Duration::from_millis(100);
/// The shortest wait that, when it runs out with nothing ready, looks for
/// a dead peer before it reports [`WaitSetError::Timeout`] (a liveness
/// check per endpoint, microseconds each: a poll skips it).
pub const JUDGE_AT_TIMEOUT: Duration = Duration::from_millis(10);
/// Without `futex_waitv` (Linux before 5.16), how long one sleep lasts at
/// most: a futex wait on the first endpoint's word, then a look at all
/// (the [`WaitSet::with_slice`] of such a set bounds it only from above).
pub const FALLBACK_SLICE: Duration = Duration::from_millis(1);

/// Why [`WaitSet::wait`] returned without a ready endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum WaitSetError {
    /// None became ready within the timeout.
    Timeout,
    /// More endpoints than [`MAX_ENDPOINTS`], or none.
    BadCount {
        /// How many were given.
        given: usize,
    },
    /// The peer of endpoint `index` (its producer, publisher or server) is
    /// dead ([`Waitable::peer_gone`]), found while nothing was ready: at
    /// most every [`DEFAULT_SLICE`] of waiting, and when a timeout of at
    /// least [`JUDGE_AT_TIMEOUT`] ran out. Everything it committed has been
    /// made ready first; the endpoint's own receive reports `PeerDied` too.
    PeerDied {
        /// Which endpoint, as in the slice given to `wait`.
        index: usize,
    },
}

impl std::fmt::Display for WaitSetError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Timeout => {
                write!(f, "no endpoint became ready within the timeout: wait again, or check the peers run")
            }
            Self::BadCount { given } => write!(
                f,
                "a wait set takes 1 to {MAX_ENDPOINTS} endpoints, {given} were given: split them over several threads"
            ),
            Self::PeerDied { index } => write!(
                f,
                "the peer of endpoint {index} died: read what is left, then reopen (see `Segment::open_live`)"
            ),
        }
    }
}

impl std::error::Error for WaitSetError {}

impl shm_core::HasErrorKind for WaitSetError {
    fn kind(&self) -> shm_core::ErrorKind {
        match self {
            Self::Timeout => shm_core::ErrorKind::Timeout,
            Self::BadCount { .. } => shm_core::ErrorKind::InvalidArgument,
            Self::PeerDied { .. } => shm_core::ErrorKind::PeerDied,
        }
    }
}

/// Sleeps until any of several endpoints (queue consumers, broadcast
/// subscribers, mailbox servers: anything [`Waitable`]) has work, with a
/// timeout, in one `futex_waitv` system call over their words (Linux 5.16
/// and later). On an older kernel it falls back to futex waits of at most
/// [`FALLBACK_SLICE`] on the first endpoint's word, looking at every
/// endpoint between them (a change on the first wakes it at once, the others
/// within the slice).
///
/// It follows the handshake in [`shm_core::ready`], so a wake-up is never
/// lost; it returns the index of a ready endpoint, whose non-blocking call
/// (`try_recv`, `try_read`) then has something to return. The endpoints are
/// borrowed only for the call, so the caller can use them mutably between
/// waits.
///
/// Ready means a message, a request, the channel's close or an error. A
/// closed channel stays ready (each receive reports `Closed` again): take
/// it out of the set, or every wait returns at once. A dead peer (telling
/// costs a liveness check, a system call, per endpoint) is looked for
/// while nothing is ready, at most every [`DEFAULT_SLICE`] (or slice) of
/// waiting and when a timeout of at least [`JUDGE_AT_TIMEOUT`] runs out
/// (a poll pays no liveness check), and reported as
/// [`WaitSetError::PeerDied`] for the first such endpoint (take it out, or
/// reopen, to hear of the next). A loop that keeps being woken by one
/// endpoint never waits that long, so it should ask the others' peers
/// every so often
/// ([`Consumer::producer_alive`](shm_core::queue::Consumer::producer_alive),
/// [`Subscriber::publisher_alive`](shm_core::broadcast::Subscriber::publisher_alive)),
/// or wait on each with its own `recv_timeout` in a thread of its own,
/// which finds a dead peer by itself.
///
/// ```
/// use std::time::Duration;
/// use shm_core::Layout;
/// use shm_posix::{FutexWait, Segment, WaitSet};
///
/// let name = format!("/shm-doc-waitset-{}", std::process::id());
/// let layout = Layout::new().queue("a", 4096)?.queue("b", 4096)?;
/// let segment = Segment::create(&name, &layout)?;
/// let mut a = segment.consumer("a", FutexWait::new())?;
/// let mut b = segment.consumer("b", FutexWait::new())?;
/// let mut tx = segment.producer("b", FutexWait::new())?;
/// tx.try_send(b"to b")?;
///
/// let set = WaitSet::new();
/// let mut buf = [0u8; 64];
/// match set.wait(&[&a, &b], Duration::from_secs(1))? {
///     0 => { a.try_recv(&mut buf)?; }
///     _ => { assert_eq!(b.try_recv(&mut buf)?, 4); }
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct WaitSet {
    /// Sleep as on a kernel without `futex_waitv`.
    fallback: bool,
    /// The longest single sleep.
    slice: Duration,
}

impl WaitSet {
    /// A wait set.
    pub const fn new() -> Self {
        Self { fallback: false, slice: DEFAULT_SLICE }
    }

    /// The same set, whose single sleeps last at most `slice` (default
    /// [`DEFAULT_SLICE`]); only a wake-up or a changed word ends one sooner.
    /// A long slice saves wake-ups on idle endpoints; the tests use one to
    /// show no wake-up is lost (a lost one would sleep the whole slice). A
    /// zero slice never sleeps: the wait polls, a system call per look.
    pub const fn with_slice(self, slice: Duration) -> Self {
        Self { slice, ..self }
    }

    /// A wait set that sleeps as it does on a kernel without `futex_waitv`
    /// (what the tests use to run that path on any kernel).
    pub const fn without_waitv() -> Self {
        Self { fallback: true, slice: DEFAULT_SLICE }
    }

    /// Waits at most `timeout` until one of `endpoints` is ready; returns
    /// its index (the first ready one, in order).
    pub fn wait(&self, endpoints: &[&dyn Waitable], timeout: Duration) -> Result<usize, WaitSetError> {
        self.wait_counting(endpoints, timeout).0
    }

    /// [`wait`](Self::wait), also saying how many of its sleeps ran to the
    /// end of their slice: neither woken nor cut short by a changed word.
    /// With a slice longer than any wait for a peer, that is a lost
    /// wake-up (the tests assert there is none).
    pub fn wait_counting(&self, endpoints: &[&dyn Waitable], timeout: Duration) -> (Result<usize, WaitSetError>, u32) {
        let mut expired = 0;
        let result = self.wait_inner(endpoints, timeout, &mut expired);
        (result, expired)
    }

    fn wait_inner(
        &self,
        endpoints: &[&dyn Waitable],
        timeout: Duration,
        expired: &mut u32,
    ) -> Result<usize, WaitSetError> {
        if endpoints.is_empty() || endpoints.len() > MAX_ENDPOINTS {
            return Err(WaitSetError::BadCount { given: endpoints.len() });
        }
        let deadline = Instant::now().checked_add(timeout);
        let mut brief_us = shm_core::format::queue::LAZY_RECHECK_US;
        let mut words = [futex::Wait::new(); MAX_ENDPOINTS];
        let mut judged = Instant::now();
        loop {
            if let Some(i) = endpoints.iter().position(|e| e.is_ready()) {
                return Ok(i);
            }
            let left = match deadline {
                Some(d) => d.saturating_duration_since(Instant::now()),
                None => self.slice,
            };
            if left.is_zero() {
                // As the channels' own waits: a wait that ran out while its
                // peer died reports the death (a loop of short waits never
                // sleeps a whole liveness slice; review 2026-12-03). Not for
                // polls and very short waits, which a liveness check per
                // endpoint would make hundreds of times dearer (review).
                if timeout >= JUDGE_AT_TIMEOUT {
                    if let Some(dead) = dead_peer(endpoints) {
                        return dead;
                    }
                }
                return Err(WaitSetError::Timeout);
            }
            for e in endpoints {
                e.announce(true);
            }
            // SYNC POINT: pairs with the peers' fences between publishing
            // and looking at the waiting words (`notify` in shm-core): either
            // a peer sees our announcement, or the looks below see its store.
            fence(Ordering::SeqCst);
            let mut slice = left.min(self.slice);
            let brief_left = brief_us <= shm_core::format::queue::LAZY_RECHECK_MAX_US;
            if brief_left && endpoints.iter().any(|e| e.peer_lazy()) && !crate::membarrier::barrier_everywhere() {
                // A lazy peer's fence could not be forced: sleep briefly,
                // growing until the sleeps are ordinary ones.
                slice = slice.min(Duration::from_micros(brief_us.into()));
                brief_us *= 2;
            }
            for (w, e) in words.iter_mut().zip(endpoints) {
                // SYNC POINT: Acquire pairs with the peer's Release store of
                // the word, as the channels' own waits do.
                w.val = u64::from(e.wake_word().load(Ordering::Acquire));
                w.uaddr = futex::WaitPtr::new(address(e.wake_word()));
                w.flags = futex::WaitFlags::SIZE_U32;
            }
            if let Some(i) = endpoints.iter().position(|e| e.is_ready()) {
                withdraw(endpoints);
                return Ok(i);
            }
            let ran_out = if self.fallback {
                fallback(endpoints[0].wake_word(), words[0].val as u32, slice)
            } else {
                sleep(&words[..endpoints.len()], endpoints[0].wake_word(), slice)
            };
            *expired += u32::from(ran_out);
            withdraw(endpoints);
            // Is a peer dead? A liveness check each, so at most every
            // `DEFAULT_SLICE` (or slice) of waiting, however the sleeps end
            // (the fallback's and brief ones are shorter, and a signal cuts
            // any short: review 2026-12-03).
            if judged.elapsed() >= self.slice.min(DEFAULT_SLICE) {
                judged = Instant::now();
                if let Some(dead) = dead_peer(endpoints) {
                    return dead;
                }
            }
        }
    }
}

/// `PeerDied` for the first endpoint whose peer is gone, unless one is ready
/// after that look: what a peer committed before it died is read first (the
/// look at readiness comes after the liveness check, so it sees a commit
/// the dead peer made before dying).
fn dead_peer(endpoints: &[&dyn Waitable]) -> Option<Result<usize, WaitSetError>> {
    let index = endpoints.iter().position(|e| e.peer_gone())?;
    Some(match endpoints.iter().position(|e| e.is_ready()) {
        Some(ready) => Ok(ready),
        None => Err(WaitSetError::PeerDied { index }),
    })
}

fn withdraw(endpoints: &[&dyn Waitable]) {
    for e in endpoints {
        e.announce(false);
    }
}

fn address(word: &AtomicU32) -> *mut std::ffi::c_void {
    (word as *const AtomicU32).cast_mut().cast()
}

/// Sleeps until one of `words` differs from its value, one is woken, or
/// `slice` passes (then `true`). `first` is the word of `words[0]`.
fn sleep(words: &[futex::Wait], first: &AtomicU32, slice: Duration) -> bool {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    let end = Duration::new(now.tv_sec as u64, now.tv_nsec as u32).saturating_add(slice);
    // Saturated: a slice of Duration::MAX must not wrap to a past time.
    let at = rustix::time::Timespec {
        tv_sec: i64::try_from(end.as_secs()).unwrap_or(i64::MAX),
        tv_nsec: end.subsec_nanos().into(),
    };
    match futex::waitv(words, futex::WaitvFlags::empty(), Some(&at), futex::ClockId::Monotonic) {
        Err(rustix::io::Errno::NOSYS) => fallback(first, words[0].val as u32, slice),
        Err(rustix::io::Errno::TIMEDOUT) => true,
        // Woken, a value that changed (EAGAIN), a signal: the caller looks
        // again either way.
        Ok(_) | Err(rustix::io::Errno::AGAIN | rustix::io::Errno::INTR) => false,
        // Anything else would repeat at once: pause as the fallback would.
        Err(_) => fallback(first, words[0].val as u32, slice),
    }
}

/// The sleep without `futex_waitv`: a plain futex wait on the first word.
fn fallback(first: &AtomicU32, seen: u32, slice: Duration) -> bool {
    let slice = slice.min(FALLBACK_SLICE);
    // (Below a second: the cast cannot overflow.)
    let ts = rustix::time::Timespec { tv_sec: 0, tv_nsec: slice.as_nanos() as _ };
    matches!(
        futex::wait(first.as_native_word(), futex::Flags::empty(), seen, Some(&ts)),
        Err(rustix::io::Errno::TIMEDOUT)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    /// An endpoint for the judgement alone: ready and peer-dead as told;
    /// `feeds` makes another one ready when its peer is looked at.
    struct Fake<'a> {
        ready: &'a Cell<bool>,
        gone: bool,
        feeds: Option<&'a Cell<bool>>,
        word: AtomicU32,
    }

    impl Waitable for Fake<'_> {
        fn is_ready(&self) -> bool {
            self.ready.get()
        }
        fn wake_word(&self) -> &AtomicU32 {
            &self.word
        }
        fn announce(&self, _: bool) {}
        fn peer_gone(&self) -> bool {
            if let Some(other) = self.feeds {
                other.set(true);
            }
            self.gone
        }
    }

    /// Review 2026-12-03 (twelfth pass): a producer that commits and dies
    /// between the wait set's look at readiness and its look at the peers
    /// was reported dead with its last message unread. Readiness is looked
    /// at again after the peers.
    #[test]
    fn a_commit_made_before_the_death_is_reported_first() {
        let (quiet, fed) = (Cell::new(false), Cell::new(false));
        let a = Fake { ready: &quiet, gone: true, feeds: Some(&fed), word: AtomicU32::new(0) };
        let b = Fake { ready: &fed, gone: true, feeds: None, word: AtomicU32::new(0) };
        assert_eq!(dead_peer(&[&a, &b]), Some(Ok(1)), "the late message first");
        let (quiet, still) = (Cell::new(false), Cell::new(false));
        let a = Fake { ready: &quiet, gone: true, feeds: None, word: AtomicU32::new(0) };
        let b = Fake { ready: &still, gone: false, feeds: None, word: AtomicU32::new(0) };
        assert_eq!(dead_peer(&[&b, &a]), Some(Err(WaitSetError::PeerDied { index: 1 })));
        assert_eq!(dead_peer(&[&b]), None, "a live peer is no news");
    }
}
