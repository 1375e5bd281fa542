//! How a side sleeps, wakes its peer, keeps time and tells whether a peer is
//! alive: the one thing each adapter supplies.
//!
//! The shape is the futex's: "sleep while this word still holds `expected`"
//! and "wake up to `n` sleepers on this word". A Linux futex, a WFE loop, a
//! doorbell interrupt and a thread yielding in a test all fit it.
//!
//! # Design
//!
//! Channels never sleep without first announcing it in a *waiting* word that
//! lives beside the word they sleep on, and the notifier only issues a wake
//! when that word says someone sleeps. The announce is a store, a `SeqCst`
//! fence and a re-check of the word; the notify is the store of the word, a
//! `SeqCst` fence and a load of the waiting word (Dekker's pattern), so either
//! the sleeper sees the new value or the notifier sees the sleeper. On the hot
//! path (peer spinning) the notifier therefore pays no system call.

use core::time::Duration;

use crate::error::PeerReset;
use crate::sync::{fence, spin_hint, AtomicU32, Ordering};

/// Spin iterations before parking, unless the strategy says otherwise.
///
/// About 20 µs on a current x86 core (a `pause` is 10 to 40 ns): roughly what
/// one sleep-and-wake hop costs in the kernel, so a peer that answers within
/// that time is caught spinning, and a slower one costs at most about twice
/// the unavoidable wake-up. (4096 was measured at about 100 µs on Zen 4,
/// ruinous when both processes share one CPU.)
pub const DEFAULT_SPIN_LIMIT: u32 = 1024;

/// The adapter's hooks for blocking: sleep on a word, wake a word, keep time,
/// and say whether a peer is alive.
///
/// Implementations: `FutexWait` and `NamedSemaphoreWait` in shm-posix, the
/// spin, WFE and doorbell strategies in shm-baremetal, and
/// `shm_core::mock::ThreadWait` for host tests (feature `mock`).
///
/// A wrong implementation can make calls slow or time out early, never cause
/// memory unsafety: every caller re-checks the word after `park` returns.
pub trait Wait {
    /// The state a deadline needs: an instant on a host, a remaining budget
    /// on a microcontroller.
    type Deadline;

    /// Starts a deadline `timeout` from now; `None` never expires.
    fn deadline(&self, timeout: Option<Duration>) -> Self::Deadline;

    /// Whether `deadline` has passed. Takes `&mut` so budget-counting
    /// strategies can charge the time they spent.
    fn expired(&self, deadline: &mut Self::Deadline) -> bool;

    /// Sleeps while `word` holds `expected`, until woken, until `deadline`,
    /// or spuriously. Returning early is always allowed.
    fn park(&self, word: &AtomicU32, expected: u32, deadline: &mut Self::Deadline);

    /// Wakes up to `count` sleepers parked on `word`.
    fn wake(&self, word: &AtomicU32, count: u32);

    /// How many times to spin before parking.
    fn spin_limit(&self) -> u32 {
        DEFAULT_SPIN_LIMIT
    }

    /// This side's id, recorded in the segment when it claims a role (a PID
    /// on Linux, a core number on a microcontroller). Never 0.
    fn self_id(&self) -> u32;

    /// Whether the peer that recorded `id` is still alive. The default says
    /// yes, which turns "peer died" into a plain timeout.
    fn is_alive(&self, id: u32) -> bool {
        let _ = id;
        true
    }

    /// `Err` ends the call in progress: the peer reset or re-attached since
    /// this side linked with it. Channels ask before each operation, while
    /// they wait, and before reporting any other error (a reset explains a
    /// timeout or a dead peer better). The default never aborts.
    fn check(&self) -> Result<(), PeerReset> {
        Ok(())
    }

    /// Cache maintenance before a hand-over: writes the data-cache lines
    /// covering `len` bytes at `addr` back to memory. The channels call it
    /// on bytes this side wrote, before the Release store that publishes
    /// them to the peer (a message, a request, a response), and before the
    /// store of a close mark. The default does nothing (no data cache, or a
    /// coherent one).
    fn clean(&self, addr: *const u8, len: usize) {
        let _ = (addr, len);
    }

    /// Cache maintenance after a hand-over: drops the data-cache lines
    /// covering `len` bytes at `addr`, so this side's next reads come from
    /// memory. The channels call it on bytes the peer published, after the
    /// Acquire load that saw them published and before anyone reads them.
    /// The default does nothing.
    fn invalidate(&self, addr: *const u8, len: usize) {
        let _ = (addr, len);
    }
}

impl<W: Wait + ?Sized> Wait for &W {
    type Deadline = W::Deadline;
    fn deadline(&self, timeout: Option<Duration>) -> Self::Deadline {
        (**self).deadline(timeout)
    }
    fn expired(&self, deadline: &mut Self::Deadline) -> bool {
        (**self).expired(deadline)
    }
    fn park(&self, word: &AtomicU32, expected: u32, deadline: &mut Self::Deadline) {
        (**self).park(word, expected, deadline)
    }
    fn wake(&self, word: &AtomicU32, count: u32) {
        (**self).wake(word, count)
    }
    fn spin_limit(&self) -> u32 {
        (**self).spin_limit()
    }
    fn self_id(&self) -> u32 {
        (**self).self_id()
    }
    fn is_alive(&self, id: u32) -> bool {
        (**self).is_alive(id)
    }
    fn check(&self) -> Result<(), PeerReset> {
        (**self).check()
    }
    fn clean(&self, addr: *const u8, len: usize) {
        (**self).clean(addr, len)
    }
    fn invalidate(&self, addr: *const u8, len: usize) {
        (**self).invalidate(addr, len)
    }
}

/// Bytes of a control word, for the cache hooks.
pub(crate) const WORD: usize = core::mem::size_of::<u32>();

/// The address of a control word, for the cache hooks (a close mark is
/// cleaned as the word it marks).
pub(crate) fn word_addr(word: &AtomicU32) -> *const u8 {
    (word as *const AtomicU32).cast()
}

/// How a sleeper announces itself in the waiting word.
#[derive(Clone, Copy)]
pub(crate) enum Announce {
    /// One sleeper at most (SPSC sides, a mailbox slot's client): a flag.
    Single,
    /// Any number of sleepers: a counter (needs read-modify-write).
    #[cfg(any(shm_loom, target_has_atomic = "32"))]
    Counted,
}

impl Announce {
    fn enter(self, waiting: &AtomicU32) {
        match self {
            Self::Single => waiting.store(1, Ordering::Relaxed),
            #[cfg(any(shm_loom, target_has_atomic = "32"))]
            Self::Counted => {
                waiting.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn leave(self, waiting: &AtomicU32) {
        match self {
            Self::Single => waiting.store(0, Ordering::Relaxed),
            #[cfg(any(shm_loom, target_has_atomic = "32"))]
            Self::Counted => {
                // A hostile peer may have zeroed the counter: never wrap it,
                // and never retry forever (a counter left high costs spare
                // wake-ups only).
                let mut n = waiting.load(Ordering::Relaxed);
                for _ in 0..crate::sync::CAS_RETRIES {
                    let Some(less) = n.checked_sub(1) else { return };
                    match waiting.compare_exchange_weak(n, less, Ordering::Relaxed, Ordering::Relaxed) {
                        Ok(_) => return,
                        Err(now) => n = now,
                    }
                }
            }
        }
    }
}

/// Why [`wait_for`] stopped without its condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    /// The deadline passed.
    Timeout,
    /// The peer recorded in the `peer` word is dead.
    PeerGone,
    /// The strategy's [`Wait::check`] aborted the wait.
    Reset(PeerReset),
}

/// `result`, with an error replaced by [`Error::PeerReset`] when the
/// strategy reports a reset: the reset explains a timeout, a dead peer or a
/// garbled word better than the channel could. Costs nothing on success.
///
/// [`Error::PeerReset`]: crate::SendError::PeerReset
pub(crate) fn explain<W: Wait, T, E: From<PeerReset>>(w: &W, result: Result<T, E>) -> Result<T, E> {
    match result {
        Err(_) => match w.check() {
            Err(reset) => Err(reset.into()),
            Ok(()) => result,
        },
        ok => ok,
    }
}

impl Stop {
    /// The error to report for this stop: `died` when the peer is gone, or
    /// when the deadline passed and `peer_dead` says the peer died meanwhile
    /// (after the wait's last look at it); `timed_out` otherwise.
    /// A reset (the strategy's [`Wait::check`] aborted) is reported as itself.
    pub(crate) fn into_error<E: From<PeerReset>>(self, peer_dead: impl FnOnce() -> bool, died: E, timed_out: E) -> E {
        match self {
            Stop::Reset(reset) => reset.into(),
            Stop::PeerGone => died,
            Stop::Timeout if peer_dead() => died,
            Stop::Timeout => timed_out,
        }
    }
}

/// Spin, then park, until `check` accepts a value of `word`.
///
/// `check` gets each value loaded from `word` (Acquire: pairs with the
/// Release store the notifier makes before calling [`notify`]) and returns
/// `Some` to stop. After each park, if `peer` names a peer (non-zero id)
/// that [`Wait::is_alive`] says is dead, the wait stops with
/// [`Stop::PeerGone`]: strategies that cap how long one park sleeps thus
/// bound how late a death is noticed. Once spinning is over, each turn
/// first asks [`Wait::check`]; an abort stops the wait with [`Stop::Reset`].
pub(crate) fn wait_for<W: Wait, T>(
    w: &W,
    word: &AtomicU32,
    waiting: &AtomicU32,
    announce: Announce,
    peer: Option<&AtomicU32>,
    deadline: &mut W::Deadline,
    mut check: impl FnMut(u32) -> Option<T>,
) -> Result<T, Stop> {
    let mut spins = 0u32;
    loop {
        // SYNC POINT: Acquire pairs with the notifier's Release store of `word`
        // (before `notify`/`signal`), so what `check` then reads is published.
        let seen = word.load(Ordering::Acquire);
        if let Some(done) = check(seen) {
            return Ok(done);
        }
        if spins < w.spin_limit() {
            spins += 1;
            spin_hint();
            continue;
        }
        w.check().map_err(Stop::Reset)?;
        if w.expired(deadline) {
            return Err(w.check().err().map_or(Stop::Timeout, Stop::Reset));
        }
        announce.enter(waiting);
        // SYNC POINT: pairs with the fence in `notify`/`signal`. Either the
        // notifier's load of `waiting` sees our announce, or what we look at
        // below (the word, and whatever `check` reads) sees its stores.
        fence(Ordering::SeqCst);
        let now = word.load(Ordering::Acquire);
        if let Some(done) = check(now) {
            announce.leave(waiting);
            return Ok(done);
        }
        w.park(word, now, deadline);
        announce.leave(waiting);
        if let Some(peer) = peer {
            let id = peer.load(Ordering::Relaxed);
            if crate::role::held(id) && !w.is_alive(id) {
                crate::event::event!("peer {} died while this side waited for it", id);
                // What the peer committed before it died is final: one more
                // look, so nothing it published is reported as lost.
                // SYNC POINT: as the load at the top of the loop.
                return check(word.load(Ordering::Acquire)).ok_or(Stop::PeerGone);
            }
        }
    }
}

/// After a store that a sleeper's `check` looks at (not to `word` itself),
/// bump the event count `word` and wake its sleepers, if any announced
/// themselves in `waiting`. The bump is what makes a sleeper's futex wait
/// return; without sleepers it is skipped, so a busy peer costs no
/// read-modify-write.
#[cfg(any(shm_loom, target_has_atomic = "32"))]
pub(crate) fn signal<W: Wait>(w: &W, word: &AtomicU32, waiting: &AtomicU32, count: u32) {
    // SYNC POINT: pairs with the fence in `wait_for` (see there).
    fence(Ordering::SeqCst);
    if waiting.load(Ordering::Relaxed) != 0 {
        word.fetch_add(1, Ordering::Release);
        w.wake(word, count);
    }
}

/// After storing a new value to `word`, wake its sleepers if any announced
/// themselves in `waiting`.
pub(crate) fn notify<W: Wait>(w: &W, word: &AtomicU32, waiting: &AtomicU32, count: u32) {
    // SYNC POINT: pairs with the fence in `wait_for` (see there).
    fence(Ordering::SeqCst);
    if waiting.load(Ordering::Relaxed) != 0 {
        w.wake(word, count);
    }
}

/// A deadline on the host's monotonic clock, for `std` wait strategies
/// (feature `std`).
///
/// The clock is read lazily, at the first [`expired`](Self::expired) check,
/// which the channels make only once their spin phase found nothing: a call
/// that completes while spinning never reads the clock (about 20 ns a read,
/// a fifth of a 64-byte queue message). The timeout therefore counts from
/// the end of the spin phase, which lasts at most
/// [`Wait::spin_limit`] iterations.
#[cfg(feature = "std")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostDeadline(HostDeadlineState);

#[cfg(feature = "std")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HostDeadlineState {
    Never,
    After(Duration),
    At(std::time::Instant),
}

#[cfg(feature = "std")]
impl HostDeadline {
    /// A deadline `timeout` from the first check; `None` (or a timeout too
    /// large for the clock, such as `Duration::MAX`) never expires.
    pub fn new(timeout: Option<Duration>) -> Self {
        Self(timeout.map_or(HostDeadlineState::Never, HostDeadlineState::After))
    }

    fn start(&mut self) {
        if let HostDeadlineState::After(t) = self.0 {
            self.0 = std::time::Instant::now().checked_add(t).map_or(HostDeadlineState::Never, HostDeadlineState::At);
        }
    }

    /// Whether the deadline has passed (starting the clock on first use).
    pub fn expired(&mut self) -> bool {
        self.start();
        matches!(self.0, HostDeadlineState::At(d) if std::time::Instant::now() >= d)
    }

    /// How long to sleep now: the time left, capped at `max`; zero once the
    /// deadline has passed.
    pub fn slice(&mut self, max: Duration) -> Duration {
        self.start();
        match self.0 {
            HostDeadlineState::At(d) => d.saturating_duration_since(std::time::Instant::now()).min(max),
            _ => max,
        }
    }
}
