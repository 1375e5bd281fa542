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
//!
//! The notifier's fence is the costly half: it waits until the store of the
//! word, whose cache line the peer keeps reading, has left this CPU (most
//! of a 64-byte queue message's cost). On the queue a notifier whose
//! strategy allows it ([`Wait::lazy_notify`]) skips it and says so in its
//! flags word when it claims its role; a sleeper that finds that flag pays
//! instead, with a barrier on every CPU ([`Wait::barrier_everywhere`]:
//! `membarrier` on Linux), and a sleeper that cannot sleeps briefly. The
//! rules are in [`crate::format::queue`]. The loom models check the
//! fenced protocol. The lazy one rests on reasoning: the hand-over (a
//! sleeper that did not see the flag) on the `SeqCst` fences of
//! the claim and of the sleeper; the rest on the guarantee of
//! `membarrier(2)`, a full barrier on each CPU running a registered
//! process, as the userspace RCU libraries use it. Tests show that the
//! lazy path runs and loses nothing in practice
//! (`a_stream_through_a_tiny_ring_with_sleeping_sides_loses_no_wake_up`),
//! but the window it closes lasts nanoseconds: a test passing does not
//! prove it closed.

use core::time::Duration;

use crate::error::PeerReset;
use crate::format::queue::{LAZY_RECHECK_MAX_US, LAZY_RECHECK_US, LAZY_WAKE};
use crate::sync::{compiler_fence, fence, spin_hint, AtomicU32, Ordering};

/// Spin iterations before parking, unless the strategy says otherwise.
///
/// About 20 µs on a current x86 core (a `pause` is 10 to 40 ns): roughly what
/// one sleep-and-wake hop costs in the kernel, so a peer that answers within
/// that time is caught spinning, and a slower one costs at most about twice
/// the unavoidable wake-up. (4096 was measured at about 100 µs on Zen 4,
/// ruinous when both processes share one CPU; even 1024 made a round trip
/// on one CPU 13x a pipe pair's until host strategies learned to stop
/// spinning there: [`Wait::adaptive_spin`].) shm-posix's strategies, which
/// adapt, spin four times as long (`shm_posix::HOST_SPIN_LIMIT`), to
/// outlast the scheduler on a loaded machine.
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

    /// How many times to spin before parking (at most, when
    /// [`adaptive_spin`](Self::adaptive_spin) says yes).
    fn spin_limit(&self) -> u32 {
        DEFAULT_SPIN_LIMIT
    }

    /// Whether each endpoint learns how long to spin: it spends the whole
    /// [`spin_limit`](Self::spin_limit) while spinning pays (the peer
    /// answered before this side parked), a quarter as much after each wait
    /// where it did not, down to no spin at all, with a probe (a quarter of
    /// the limit) every [`SPIN_PROBE_EVERY`] waits to notice when it pays
    /// again.
    ///
    /// Say yes where the peer may share this side's CPU (processes under an
    /// operating system's scheduler): there a spinning waiter only delays
    /// the peer it waits for. The default (no) spins the whole limit every
    /// time, right for two cores that each run one side.
    fn adaptive_spin(&self) -> bool {
        false
    }

    /// Gives this side's CPU to another runnable thread, if there is one,
    /// and says whether it could (`false`: the strategy cannot yield).
    ///
    /// On the mailbox and the queue (one waiter a side; broadcast readers
    /// and semaphore waiters, who may be many on few CPUs, never yield),
    /// with [`adaptive_spin`](Self::adaptive_spin) and a non-zero
    /// [`spin_limit`](Self::spin_limit), a wait whose spinning has faded to
    /// nothing (it has not paid lately) yields up to [`YIELDS_BEFORE_PARK`]
    /// times, looking at the word after each, before it announces itself
    /// and parks. When the peer shares this CPU, the yield runs it at once,
    /// and since this side never announced a sleep, the peer's answer costs
    /// it no wake-up call: a round trip on one CPU costs two yields instead
    /// of two waits and two wakes. Yielding stops (probed again every
    /// [`SPIN_PROBE_EVERY`] waits) once it does not pay: when the yield
    /// turns ended without the answer, or one kept this side off its CPU
    /// longer than [`YIELD_QUICK`] (the CPU went to an unrelated busy
    /// thread, not the peer). A probe facing such a thread on this CPU may
    /// keep the wait off its CPU for that thread's time slice
    /// (milliseconds), past a shorter timeout. A spin limit of 0 means
    /// "sleep at once": no spin, no yield.
    ///
    /// The default cannot yield. A strategy that wraps another must forward
    /// this method, or its waits on a shared CPU park where they could
    /// yield.
    fn yield_now(&self) -> bool {
        false
    }

    /// Whether this side may skip the store-load fence between publishing
    /// and looking at the peer's waiting word, on the channels whose format
    /// allows it (the queue: see *Waking* in [`crate::format::queue`]).
    /// Say yes only if every sleeper that finds the channel's lazy flag
    /// reaches this side with [`barrier_everywhere`](Self::barrier_everywhere)
    /// (Linux: this process registered for
    /// `MEMBARRIER_CMD_GLOBAL_EXPEDITED`). The default says no.
    fn lazy_notify(&self) -> bool {
        false
    }

    /// Forces a full memory barrier on every CPU that runs a lazy notifier
    /// (Linux: `membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED)`, about 0.5 µs,
    /// and 5 µs or more when it interrupts other CPUs); `false` if it
    /// cannot, and a sleeper whose waker is lazy then sleeps briefly first
    /// ([`LAZY_RECHECK_US`], doubling up to
    /// [`LAZY_RECHECK_MAX_US`]).
    /// The default cannot: a strategy that wraps another must forward this
    /// method and [`lazy_notify`](Self::lazy_notify), or its sleeps facing a
    /// lazy waker take those brief turns.
    fn barrier_everywhere(&self) -> bool {
        false
    }

    /// This side's id, recorded in the segment when it claims a role (a PID
    /// on Linux, a core number on a microcontroller). Never 0.
    fn self_id(&self) -> u32;

    /// Whether the peer that recorded `id` is still alive. The default says
    /// yes, which turns "peer died" into a plain timeout.
    ///
    /// An implementation may say a dead peer lives (the channel then waits
    /// out its timeouts) but must never say a live one is dead: a role
    /// is taken over on that answer. A mailbox server taken over while it
    /// still runs can have requests it or its successor was running
    /// reported [`Dropped`](crate::CallError::Dropped) or
    /// [`Closed`](crate::CallError::Closed) to their clients though they
    /// ran (a retry runs them twice), and a call told `Closed` may still
    /// run; neither server can tell the other's requests apart without
    /// the liveness answer (found by review: a close racing such a
    /// takeover). The host strategies answer by process id within one PID
    /// namespace (`shm-posix` refuses a segment from another one), which
    /// errs only the other way (a reused PID reads as alive).
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
    fn adaptive_spin(&self) -> bool {
        (**self).adaptive_spin()
    }
    fn lazy_notify(&self) -> bool {
        (**self).lazy_notify()
    }
    fn yield_now(&self) -> bool {
        (**self).yield_now()
    }
    fn barrier_everywhere(&self) -> bool {
        (**self).barrier_everywhere()
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
    /// One sleeper at most, announcing what it waits for: this nonzero
    /// value (a broadcast channel's waiting words, see
    /// [`format::broadcast::wakes_at`](crate::format::broadcast::wakes_at)).
    Value(u32),
    /// Any number of sleepers: a counter (needs read-modify-write).
    #[cfg(shm_cas)]
    Counted,
}

impl Announce {
    fn enter(self, waiting: &AtomicU32) {
        match self {
            Self::Single => waiting.store(1, Ordering::Relaxed),
            Self::Value(v) => waiting.store(v, Ordering::Relaxed),
            #[cfg(shm_cas)]
            Self::Counted => {
                waiting.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn leave(self, waiting: &AtomicU32) {
        match self {
            Self::Single | Self::Value(_) => waiting.store(0, Ordering::Relaxed),
            #[cfg(shm_cas)]
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

/// With [`Wait::adaptive_spin`], one probe every this many waits once
/// spinning stopped paying: a quarter of the spin limit, which notices when
/// it pays again (the peer moved to a CPU of its own and answers within
/// microseconds). On a shared CPU a probe costs a quarter limit per this
/// many waits.
pub const SPIN_PROBE_EVERY: u32 = 256;

/// How many times a wait yields its CPU ([`Wait::yield_now`]) after
/// spinning and before it announces itself and parks.
pub const YIELDS_BEFORE_PARK: u32 = 4;

/// The longest a wait's yield turns may keep it off its CPU and still count
/// as paying ([`Wait::yield_now`]). Handing the CPU to a peer on the same
/// CPU and back takes a few microseconds; a yield that lasts longer gave
/// the CPU to some other thread for its time slice (milliseconds), which a
/// parked waiter, woken by its peer, would not have waited for.
pub const YIELD_QUICK: Duration = Duration::from_micros(50);

/// How much of the strategy's spin limit an endpoint's next wait spends,
/// learned from its past waits (see [`Wait::adaptive_spin`]). Local to the
/// endpoint, never in the segment: a plain core atomic (`Relaxed`, a hint
/// that orders nothing) so endpoints shared between threads stay `Sync`.
#[derive(Debug, Default)]
pub(crate) struct SpinBudget {
    /// Bits 0..8: how many times the limit was quartered (saturating at
    /// [`SpinBudget::OFF`], no spin); bits 8..: waits since the last probe.
    state: core::sync::atomic::AtomicU32,
    /// 0: waits yield before parking; n > 0: yielding stopped paying,
    /// n - 1 waits ago (a probe at [`SPIN_PROBE_EVERY`]).
    yields: core::sync::atomic::AtomicU32,
    /// While spinning, look at the word once every this many spins (at
    /// least 1), and at the last.
    pub(crate) look_every: u32,
    /// Whether waits may yield before parking ([`Wait::yield_now`]).
    yield_ok: bool,
    /// The most a wait spins, whatever the strategy's limit.
    spin_cap: u32,
}

impl SpinBudget {
    /// Quarterings after which no spin is left of any `u32` limit.
    const OFF: u32 = 16;

    /// A fresh budget: the whole limit, and yields; a look at every spin.
    pub(crate) const fn new() -> Self {
        Self::looking_every(1)
    }

    /// A fresh budget whose spins look at the word only every `n`-th time
    /// (and at the last), spinning as long as [`new`](Self::new)'s: for a
    /// waiter whose looks take the line from a peer that writes it again
    /// and again while this side waits (a producer facing a full ring,
    /// whose consumer stores `tail` at every message it frees).
    pub(crate) const fn looking_every(n: u32) -> Self {
        Self {
            state: core::sync::atomic::AtomicU32::new(0),
            yields: core::sync::atomic::AtomicU32::new(0),
            look_every: if n == 0 { 1 } else { n },
            yield_ok: true,
            spin_cap: u32::MAX,
        }
    }

    /// A fresh budget for waiters that may be many on few CPUs (broadcast
    /// readers, semaphore waiters): its waits never yield and spin at most
    /// [`DEFAULT_SPIN_LIMIT`] times, whatever the strategy's limit. A waiter
    /// that yields or spins stays runnable and takes CPU time from the one
    /// it waits for, while a parked one leaves the run queue (fan-out, one
    /// writer and four readers on 2 vCPUs: 0.9–1.5 M msgs/s per reader
    /// with yields and 4096 spins, 1.0–1.1 M with 4096 spins alone,
    /// 1.8–1.9 M with neither).
    pub(crate) const fn never_yielding() -> Self {
        let mut budget = Self::new();
        budget.yield_ok = false;
        budget.spin_cap = DEFAULT_SPIN_LIMIT;
        budget
    }

    /// Whether this wait yields before parking: while yielding pays, and
    /// every [`SPIN_PROBE_EVERY`]-th wait after it stopped paying.
    fn may_yield(&self) -> bool {
        let off = self.yields.load(core::sync::atomic::Ordering::Relaxed);
        if off == 0 || off >= SPIN_PROBE_EVERY {
            return true;
        }
        self.yields.store(off + 1, core::sync::atomic::Ordering::Relaxed);
        false
    }

    /// A yield turn brought the answer quickly: yield again next time.
    fn yield_paid(&self) {
        self.yields.store(0, core::sync::atomic::Ordering::Relaxed);
    }

    /// The yield turns did not bring the answer, or too slowly: stop
    /// yielding until the next probe.
    fn yield_missed(&self) {
        self.yields.store(1, core::sync::atomic::Ordering::Relaxed);
    }

    /// Spins for the next wait.
    fn spins<W: Wait>(&self, w: &W) -> u32 {
        let limit = w.spin_limit().min(self.spin_cap);
        if !w.adaptive_spin() {
            return limit;
        }
        let state = self.state.load(core::sync::atomic::Ordering::Relaxed);
        let quarters = (state & 0xff).min(Self::OFF);
        let spins = limit.checked_shr(2 * quarters).unwrap_or(0);
        if spins > 0 {
            return spins;
        }
        let since = (state >> 8) + 1;
        if since >= SPIN_PROBE_EVERY {
            self.state.store(quarters, core::sync::atomic::Ordering::Relaxed);
            return (limit >> 2).max(1);
        }
        self.state.store(since << 8 | quarters, core::sync::atomic::Ordering::Relaxed);
        0
    }

    /// The wait ended while spinning, after spinning: spin fully again.
    fn paid(&self) {
        self.state.store(0, core::sync::atomic::Ordering::Relaxed);
    }

    /// The wait outlasted its spin phase: spin a quarter as long next time.
    fn missed(&self) {
        let state = self.state.load(core::sync::atomic::Ordering::Relaxed);
        let quarters = ((state & 0xff) + 1).min(Self::OFF);
        self.state.store((state & !0xff) | quarters, core::sync::atomic::Ordering::Relaxed);
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

/// Spin (as many times as `budget` says), then yield (where spinning has
/// not paid lately: see [`Wait::yield_now`]), then park, until `check`
/// accepts a value of `word`.
///
/// `check` gets each value loaded from `word` (Acquire: pairs with the
/// Release store the notifier makes before calling [`notify`]) and returns
/// `Some` to stop. After each park, if `peer` names a peer (non-zero id)
/// that [`Wait::is_alive`] says is dead, the wait stops with
/// [`Stop::PeerGone`]: strategies that cap how long one park sleeps thus
/// bound how late a death is noticed. Once spinning is over, each turn
/// first asks [`Wait::check`]; an abort stops the wait with [`Stop::Reset`].
#[allow(clippy::too_many_arguments)]
pub(crate) fn wait_for<W: Wait, T>(
    w: &W,
    budget: &SpinBudget,
    word: &AtomicU32,
    waiting: &AtomicU32,
    announce: Announce,
    peer: Option<&AtomicU32>,
    notifier: Option<&AtomicU32>,
    deadline: &mut W::Deadline,
    mut check: impl FnMut(u32) -> Option<T>,
) -> Result<T, Stop> {
    // SYNC POINT: Acquire pairs with the notifier's Release store of `word`
    // (before `notify`/`signal`), so what `check` then reads is published.
    if let Some(done) = check(word.load(Ordering::Acquire)) {
        return Ok(done);
    }
    let limit = budget.spins(w);
    let every = budget.look_every;
    let mut spun = 0;
    while spun < limit {
        // Look every `every` spins, and at the last.
        let stride = every.min(limit - spun);
        for _ in 0..stride {
            spin_hint();
        }
        spun += stride;
        // SYNC POINT: as the load above.
        if let Some(done) = check(word.load(Ordering::Acquire)) {
            budget.paid();
            return Ok(done);
        }
    }
    budget.missed();
    if limit == 0 && budget.yield_ok && w.spin_limit() > 0 && w.adaptive_spin() && budget.may_yield() {
        if let Some(done) = yield_turns(w, budget, word, deadline, &mut check) {
            return Ok(done);
        }
    }
    // Brief sleeps facing a lazy waker this side cannot fence: they grow
    // from LAZY_RECHECK_US until they reach the strategy's own sleeps.
    let mut brief_us = LAZY_RECHECK_US;
    loop {
        w.check().map_err(Stop::Reset)?;
        if w.expired(deadline) {
            return Err(w.check().err().map_or(Stop::Timeout, Stop::Reset));
        }
        announce.enter(waiting);
        // SYNC POINT: pairs with the fence in `notify`/`signal`. Either the
        // notifier's load of `waiting` sees our announce, or what we look at
        // below (the word, and whatever `check` reads) sees its stores.
        fence(Ordering::SeqCst);
        // A lazy waker skipped its fence: force one on its CPU, or sleep
        // briefly (see `notify_lazily`).
        let lazy = notifier.is_some_and(|flags| flags.load(Ordering::Relaxed) & LAZY_WAKE != 0);
        let recheck = lazy && !w.barrier_everywhere();
        let now = word.load(Ordering::Acquire);
        if let Some(done) = check(now) {
            announce.leave(waiting);
            return Ok(done);
        }
        if recheck && brief_us <= LAZY_RECHECK_MAX_US {
            let mut brief = w.deadline(Some(Duration::from_micros(brief_us.into())));
            w.park(word, now, &mut brief);
            brief_us *= 2;
        } else {
            w.park(word, now, deadline);
        }
        announce.leave(waiting);
        // SYNC POINT: as the first load. What woke us counts even when the
        // deadline has passed meanwhile, and costs no liveness check (on a
        // host that reads /proc: microseconds).
        if let Some(done) = check(word.load(Ordering::Acquire)) {
            return Ok(done);
        }
        if let Some(peer) = peer {
            let id = peer.load(Ordering::Relaxed);
            if crate::role::held(id) && !w.is_alive(id) {
                crate::event::event!("peer {} died while this side waited for it", id);
                // What the peer committed before it died is final: one more
                // look, so nothing it published is reported as lost.
                // SYNC POINT: as the first load.
                return check(word.load(Ordering::Acquire)).ok_or(Stop::PeerGone);
            }
        }
    }
}

/// The yield turns of [`wait_for`] (see [`Wait::yield_now`]): up to
/// [`YIELDS_BEFORE_PARK`] yields, a look at `word` after each; `Some` if
/// one brought what `check` accepts. Records in `budget` whether yielding
/// paid (nothing when the deadline had passed before the first turn: a
/// poll with a zero timeout tells nothing). Never announces a sleep, so a
/// peer's notify skips its wake-up.
fn yield_turns<W: Wait, T>(
    w: &W,
    budget: &SpinBudget,
    word: &AtomicU32,
    deadline: &mut W::Deadline,
    check: &mut impl FnMut(u32) -> Option<T>,
) -> Option<T> {
    let mut quick = w.deadline(Some(YIELD_QUICK));
    // A deadline may start its clock at its first look (a host's does):
    // look now, so the yields below count.
    let _ = w.expired(&mut quick);
    for turn in 0..YIELDS_BEFORE_PARK {
        if w.expired(deadline) {
            if turn == 0 {
                return None;
            }
            break;
        }
        if !w.yield_now() {
            break;
        }
        let slow = w.expired(&mut quick);
        // SYNC POINT: as the first load of `wait_for`.
        if let Some(done) = check(word.load(Ordering::Acquire)) {
            if slow {
                budget.yield_missed();
            } else {
                budget.yield_paid();
            }
            return Some(done);
        }
        if slow {
            break;
        }
    }
    budget.yield_missed();
    None
}

/// After a store that a sleeper's `check` looks at (not to `word` itself),
/// bump the event count `word` and wake its sleepers, if any announced
/// themselves in `waiting`. The bump is what makes a sleeper's futex wait
/// return; without sleepers it is skipped, so a busy peer costs no
/// read-modify-write.
#[cfg(shm_cas)]
pub(crate) fn signal<W: Wait>(w: &W, word: &AtomicU32, waiting: &AtomicU32, count: u32) {
    // SYNC POINT: pairs with the fence in `wait_for` (see there).
    fence(Ordering::SeqCst);
    if waiting.load(Ordering::Relaxed) != 0 {
        word.fetch_add(1, Ordering::Release);
        w.wake(word, count);
    }
}

/// [`notify`], for a side that may be lazy (`lazy`: it set
/// [`LAZY_WAKE`] in its flags word when it claimed its role, see
/// [`claim_lazy`]): without the store-load fence. A sleeper that finds the
/// flag after announcing forces that fence on this side's CPU
/// ([`Wait::barrier_everywhere`]) before it looks at `word` again, so
/// either it sees the new value or this side's look at `waiting` sees it.
pub(crate) fn notify_lazily<W: Wait>(w: &W, lazy: bool, word: &AtomicU32, waiting: &AtomicU32, count: u32) {
    if !lazy {
        return notify(w, word, waiting, count);
    }
    // Keeps the compiler from moving the look at `waiting` above the store
    // of `word`; the CPU's ordering comes from the sleeper's barrier.
    compiler_fence(Ordering::SeqCst);
    if waiting.load(Ordering::Relaxed) != 0 {
        w.wake(word, count);
    }
}

/// Publishes whether this side wakes its peer lazily, when it claims its
/// role: [`LAZY_WAKE`] in `flags` if the strategy says it may
/// ([`Wait::lazy_notify`]), else 0. Returns what it published.
pub(crate) fn claim_lazy<W: Wait>(w: &W, flags: &AtomicU32) -> bool {
    let lazy = w.lazy_notify();
    flags.store(if lazy { LAZY_WAKE } else { 0 }, Ordering::Relaxed);
    // SYNC POINT: pairs with the fence in `wait_for`. A sleeper that did not
    // see the flag issued its fence before this one, so this side's later
    // (unfenced) looks at the waiting word see its announce.
    fence(Ordering::SeqCst);
    lazy
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

#[cfg(all(test, not(shm_loom)))]
mod tests {
    use super::*;

    /// A strategy whose peer answers only once this side parks: `park`
    /// stores `answer` into the word, as a peer that could not run while
    /// this side spun would.
    struct ParkAnswers {
        adaptive: bool,
        answer: u32,
    }

    impl Wait for ParkAnswers {
        type Deadline = ();
        fn deadline(&self, _timeout: Option<Duration>) {}
        fn expired(&self, _deadline: &mut ()) -> bool {
            false
        }
        fn park(&self, word: &AtomicU32, _expected: u32, _deadline: &mut ()) {
            word.store(self.answer, Ordering::Relaxed);
        }
        fn wake(&self, _word: &AtomicU32, _count: u32) {}
        fn spin_limit(&self) -> u32 {
            1024
        }
        fn adaptive_spin(&self) -> bool {
            self.adaptive
        }
        fn self_id(&self) -> u32 {
            1
        }
    }

    /// Looks the wait made at the word before it gave up spinning: one
    /// before spinning, one per spin, one after announcing, one after the
    /// park. `ready_after` makes the word hold 1 from that look on.
    fn looks(w: &ParkAnswers, budget: &SpinBudget, ready_after: Option<u32>) -> u32 {
        let word = AtomicU32::new(0);
        let waiting = AtomicU32::new(0);
        let mut looks = 0;
        let got = wait_for(w, budget, &word, &waiting, Announce::Single, None, None, &mut (), |seen| {
            looks += 1;
            (seen == 1 || ready_after.is_some_and(|n| looks > n)).then_some(())
        });
        assert_eq!(got, Ok(()));
        assert_eq!(waiting.load(Ordering::Relaxed), 0, "the announce is withdrawn");
        looks
    }

    /// A sleeper that records the timeouts it was asked for and its calls
    /// to `barrier_everywhere` (which succeeds if `can_barrier`); its peer
    /// answers at its `answer_at`-th park.
    struct Recorder {
        can_barrier: bool,
        answer_at: u32,
        parks: core::cell::Cell<u32>,
        timeouts: std::cell::RefCell<std::vec::Vec<Option<Duration>>>,
        barriers: core::cell::Cell<u32>,
    }

    impl Wait for Recorder {
        type Deadline = ();
        fn deadline(&self, timeout: Option<Duration>) {
            self.timeouts.borrow_mut().push(timeout);
        }
        fn expired(&self, _deadline: &mut ()) -> bool {
            false
        }
        fn park(&self, word: &AtomicU32, _expected: u32, _deadline: &mut ()) {
            self.parks.set(self.parks.get() + 1);
            if self.parks.get() >= self.answer_at {
                word.store(1, Ordering::Relaxed);
            }
        }
        fn wake(&self, _word: &AtomicU32, _count: u32) {}
        fn spin_limit(&self) -> u32 {
            0
        }
        fn self_id(&self) -> u32 {
            1
        }
        fn barrier_everywhere(&self) -> bool {
            self.barriers.set(self.barriers.get() + 1);
            self.can_barrier
        }
    }

    /// (barriers issued, timeouts asked for) by one wait whose waker's
    /// flags word holds `flags`.
    fn sleep_with_waker_flags(can_barrier: bool, flags: Option<u32>) -> (u32, std::vec::Vec<Option<Duration>>) {
        sleep_until_park(can_barrier, flags, 1)
    }

    /// As [`sleep_with_waker_flags`], the peer answering at the `n`-th park.
    fn sleep_until_park(can_barrier: bool, flags: Option<u32>, n: u32) -> (u32, std::vec::Vec<Option<Duration>>) {
        let w = Recorder {
            can_barrier,
            answer_at: n,
            parks: Default::default(),
            timeouts: Default::default(),
            barriers: Default::default(),
        };
        let (word, waiting, flags) = (AtomicU32::new(0), AtomicU32::new(0), flags.map(AtomicU32::new));
        let got =
            wait_for(&w, &SpinBudget::new(), &word, &waiting, Announce::Single, None, flags.as_ref(), &mut (), |v| {
                (v == 1).then_some(())
            });
        assert_eq!(got, Ok(()));
        (w.barriers.get(), w.timeouts.into_inner())
    }

    #[test]
    fn a_sleeper_forces_a_barrier_on_a_lazy_waker_or_sleeps_briefly() {
        let brief = Some(Duration::from_micros(LAZY_RECHECK_US.into()));
        // A waker that fences itself: nothing extra.
        assert_eq!(sleep_with_waker_flags(true, Some(0)), (0, vec![]));
        assert_eq!(sleep_with_waker_flags(true, None), (0, vec![]));
        // A lazy waker: a barrier on its CPUs, and an ordinary sleep.
        assert_eq!(sleep_with_waker_flags(true, Some(LAZY_WAKE)), (1, vec![]));
        // ... or, where no barrier can be forced, a brief sleep.
        assert_eq!(sleep_with_waker_flags(false, Some(LAZY_WAKE)), (1, vec![brief]));
        // Garbage in the flags word reads as lazy (bit 0) or not; either
        // way the sleeper still sleeps and wakes.
        assert_eq!(sleep_with_waker_flags(false, Some(u32::MAX)), (1, vec![brief]));
        assert_eq!(sleep_with_waker_flags(false, Some(u32::MAX - 1)), (0, vec![]));
    }

    #[test]
    fn brief_sleeps_double_until_the_strategys_own_sleeps() {
        let us = |n: u32| Some(Duration::from_micros(n.into()));
        let (barriers, timeouts) = sleep_until_park(false, Some(LAZY_WAKE), 8);
        assert_eq!(barriers, 8, "one attempt per announce");
        assert_eq!(timeouts, vec![us(50), us(100), us(200), us(400), us(800)], "then the caller's deadline");
        assert_eq!(LAZY_RECHECK_MAX_US, 800);
    }

    #[test]
    fn a_lazy_claim_publishes_its_flag_and_an_eager_one_clears_it() {
        struct Lazy(bool);
        impl Wait for Lazy {
            type Deadline = ();
            fn deadline(&self, _timeout: Option<Duration>) {}
            fn expired(&self, _deadline: &mut ()) -> bool {
                false
            }
            fn park(&self, _word: &AtomicU32, _expected: u32, _deadline: &mut ()) {}
            fn wake(&self, _word: &AtomicU32, _count: u32) {}
            fn self_id(&self) -> u32 {
                1
            }
            fn lazy_notify(&self) -> bool {
                self.0
            }
        }
        let flags = AtomicU32::new(0xdead_beef);
        assert!(claim_lazy(&Lazy(true), &flags));
        assert_eq!(flags.load(Ordering::Relaxed), LAZY_WAKE);
        assert!(!claim_lazy(&Lazy(false), &flags));
        assert_eq!(flags.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn a_steady_strategy_spins_its_whole_limit_every_time() {
        let (w, budget) = (ParkAnswers { adaptive: false, answer: 1 }, SpinBudget::new());
        for _ in 0..20 {
            assert_eq!(looks(&w, &budget, None), 1 + 1024 + 2);
        }
    }

    #[test]
    fn spinning_that_never_pays_fades_to_nothing_with_a_rare_probe() {
        let (w, budget) = (ParkAnswers { adaptive: true, answer: 1 }, SpinBudget::new());
        for spins in [1024, 256, 64, 16, 4, 1, 0, 0, 0] {
            assert_eq!(looks(&w, &budget, None), 1 + spins + 2);
        }
        // The probe: every SPIN_PROBE_EVERY-th wait spins a quarter limit.
        let mut probes = 0;
        for _ in 0..4 * SPIN_PROBE_EVERY {
            match looks(&w, &budget, None) {
                3 => {}
                probe if probe == 1 + 256 + 2 => probes += 1,
                other => panic!("a wait looked {other} times"),
            }
        }
        assert_eq!(probes, 4);
    }

    #[test]
    fn spinning_that_pays_once_spins_fully_again() {
        let (w, budget) = (ParkAnswers { adaptive: true, answer: 1 }, SpinBudget::new());
        for _ in 0..10 {
            looks(&w, &budget, None);
        }
        // Wait for the probe, in which the peer answers after 100 spins.
        let mut waits = 0;
        while looks(&w, &budget, Some(100)) != 101 {
            waits += 1;
            assert!(waits <= SPIN_PROBE_EVERY, "a probe comes within SPIN_PROBE_EVERY waits");
        }
        assert_eq!(looks(&w, &budget, None), 1 + 1024 + 2, "spinning paid: the whole limit again");
        // An answer found at the first look tells nothing: no change.
        assert_eq!(looks(&w, &budget, Some(0)), 1);
        assert_eq!(looks(&w, &budget, None), 1 + 256 + 2);
    }

    /// An adaptive strategy whose peer shares its CPU: a yield runs the
    /// peer, which answers at this side's `answer_at`-th yield of a wait
    /// (never: 0), or at its park. `slow` makes every yield outlast
    /// [`YIELD_QUICK`].
    struct Yielder {
        can_yield: bool,
        adaptive: bool,
        slow: bool,
        spin: u32,
        answer_at: u32,
        yields: core::cell::Cell<u32>,
        parks: core::cell::Cell<u32>,
    }

    /// A timeout that passes during the first yield after its clock
    /// started (for [`Yielder`]).
    const ONE_YIELD: Duration = Duration::from_nanos(1);

    /// A deadline of [`Yielder`]: the timeout asked for, and the yields
    /// made when its clock started, which (as a host's) is at its first
    /// look.
    struct MockDeadline {
        timeout: Option<Duration>,
        started: Option<u32>,
    }

    impl Yielder {
        fn new(answer_at: u32) -> Self {
            Self {
                can_yield: true,
                adaptive: true,
                slow: false,
                spin: 4,
                answer_at,
                yields: Default::default(),
                parks: Default::default(),
            }
        }

        /// One wait without a timeout: (yields, parks) it cost.
        fn wait(&self, budget: &SpinBudget) -> (u32, u32) {
            let (got, cost) = self.wait_for(budget, None);
            assert_eq!(got, Ok(()), "the wait ends with the answer");
            cost
        }

        /// One wait with `timeout`: its outcome, and (yields, parks).
        fn wait_for(&self, budget: &SpinBudget, timeout: Option<Duration>) -> (Result<(), Stop>, (u32, u32)) {
            let (yields, parks) = (self.yields.get(), self.parks.get());
            let (word, waiting) = (AtomicU32::new(0), AtomicU32::new(0));
            let answer = self.answer_at;
            let mut deadline = MockDeadline { timeout, started: None };
            let got = wait_for(self, budget, &word, &waiting, Announce::Single, None, None, &mut deadline, |v| {
                (v == 1 || (answer != 0 && self.yields.get() - yields >= answer)).then_some(())
            });
            assert_eq!(waiting.load(Ordering::Relaxed), 0, "no announce is left behind");
            (got, (self.yields.get() - yields, self.parks.get() - parks))
        }
    }

    impl Wait for Yielder {
        type Deadline = MockDeadline;
        fn deadline(&self, timeout: Option<Duration>) -> MockDeadline {
            MockDeadline { timeout, started: None }
        }
        fn expired(&self, deadline: &mut MockDeadline) -> bool {
            let started = *deadline.started.get_or_insert(self.yields.get());
            match deadline.timeout {
                Some(Duration::ZERO) => true,
                Some(YIELD_QUICK) => self.slow && self.yields.get() > started,
                // A timeout that passes during the first yield.
                Some(ONE_YIELD) => self.yields.get() > started,
                _ => false,
            }
        }
        fn park(&self, word: &AtomicU32, _expected: u32, deadline: &mut MockDeadline) {
            if deadline.timeout != Some(Duration::ZERO) {
                self.parks.set(self.parks.get() + 1);
                word.store(1, Ordering::Relaxed);
            }
        }
        fn wake(&self, _word: &AtomicU32, _count: u32) {}
        fn spin_limit(&self) -> u32 {
            self.spin
        }
        fn adaptive_spin(&self) -> bool {
            self.adaptive
        }
        fn yield_now(&self) -> bool {
            if self.can_yield {
                self.yields.set(self.yields.get() + 1);
            }
            self.can_yield
        }
        fn self_id(&self) -> u32 {
            1
        }
    }

    /// Waits until spinning has faded to nothing (limit 4: 4, 1, then 0).
    fn spin_faded(w: &Yielder, budget: &SpinBudget) {
        for _ in 0..2 {
            assert_eq!(w.wait(budget), (0, 1), "while spinning, a missed wait parks without yielding");
        }
    }

    #[test]
    fn on_a_shared_cpu_a_wait_yields_to_its_peer_instead_of_parking() {
        let (w, budget) = (Yielder::new(1), SpinBudget::new());
        spin_faded(&w, &budget);
        let (mut yields, mut parks) = (0, 0);
        for _ in 0..4 * SPIN_PROBE_EVERY {
            let (y, p) = w.wait(&budget);
            yields += y;
            parks += p;
        }
        // Every wait but the spin probes (a quarter limit, then a park)
        // is answered by its first yield.
        assert_eq!(parks, 4, "only the spin probes park");
        assert_eq!(yields, 4 * SPIN_PROBE_EVERY - 4);
    }

    #[test]
    fn yields_that_bring_no_answer_end_in_a_park_and_stop_until_a_probe() {
        let (w, budget) = (Yielder::new(0), SpinBudget::new());
        spin_faded(&w, &budget);
        assert_eq!(w.wait(&budget), (YIELDS_BEFORE_PARK, 1), "a few turns, then the park");
        let mut yielded = 0;
        for _ in 0..4 * SPIN_PROBE_EVERY {
            let (y, p) = w.wait(&budget);
            assert_eq!(p, 1);
            match y {
                0 => {}
                YIELDS_BEFORE_PARK => yielded += 1,
                other => panic!("a wait yielded {other} times"),
            }
        }
        assert!((1..=4).contains(&yielded), "yields come back only as a rare probe: {yielded}");
    }

    #[test]
    fn a_slow_yield_stops_yielding_and_a_quick_probe_brings_it_back() {
        let (mut w, budget) = (Yielder::new(1), SpinBudget::new());
        w.slow = true;
        spin_faded(&w, &budget);
        // The CPU went elsewhere for a time slice: the answer still counts,
        // but the next waits park.
        assert_eq!(w.wait(&budget), (1, 0));
        assert_eq!(w.wait(&budget), (0, 1));
        w.slow = false;
        let mut waits = 0;
        while w.wait(&budget) != (1, 0) {
            waits += 1;
            assert!(waits <= 2 * SPIN_PROBE_EVERY, "a yield probe comes within SPIN_PROBE_EVERY waits");
        }
        assert_eq!(w.wait(&budget), (1, 0), "the probe paid: yielding again");
    }

    #[test]
    fn a_steady_strategy_or_one_that_cannot_yield_parks_without_yielding() {
        let (mut steady, budget) = (Yielder::new(1), SpinBudget::new());
        steady.adaptive = false;
        for _ in 0..20 {
            assert_eq!(steady.wait(&budget), (0, 1));
        }
        let (mut unable, budget) = (Yielder::new(1), SpinBudget::new());
        unable.can_yield = false;
        spin_faded(&unable, &budget);
        for _ in 0..20 {
            assert_eq!(unable.wait(&budget), (0, 1));
        }
    }

    #[test]
    fn a_slow_turn_without_the_answer_parks_at_once() {
        let (mut w, budget) = (Yielder::new(0), SpinBudget::new());
        w.slow = true;
        spin_faded(&w, &budget);
        assert_eq!(w.wait(&budget), (1, 1), "no second turn after a time slice elsewhere");
        assert_eq!(w.wait(&budget), (0, 1));
    }

    #[test]
    fn a_zero_timeout_poll_neither_yields_nor_stops_yielding() {
        let (w, budget) = (Yielder::new(1), SpinBudget::new());
        spin_faded(&w, &budget);
        assert_eq!(w.wait(&budget), (1, 0));
        let (got, cost) = w.wait_for(&budget, Some(Duration::ZERO));
        assert_eq!((got, cost), (Err(Stop::Timeout), (0, 0)));
        assert_eq!(w.wait(&budget), (1, 0), "the poll told nothing about yielding");
    }

    #[test]
    fn a_spin_limit_of_zero_sleeps_at_once_without_yielding() {
        let (mut w, budget) = (Yielder::new(1), SpinBudget::new());
        w.spin = 0;
        for _ in 0..4 * SPIN_PROBE_EVERY {
            assert_eq!(w.wait(&budget), (0, 1));
        }
    }

    #[test]
    fn once_yielding_missed_it_is_probed_every_spin_probe_every_waits() {
        let budget = SpinBudget::new();
        assert!(budget.may_yield(), "a fresh endpoint yields");
        budget.yield_missed();
        for round in 0..3 {
            for wait in 1..SPIN_PROBE_EVERY {
                assert!(!budget.may_yield(), "round {round}, wait {wait}: no yield until the probe");
            }
            assert!(budget.may_yield(), "round {round}: the probe");
            budget.yield_missed();
        }
        budget.yield_paid();
        assert!(budget.may_yield() && budget.may_yield(), "paid: every wait yields");
    }

    #[test]
    fn no_yield_turn_starts_past_the_deadline() {
        let (w, budget) = (Yielder::new(0), SpinBudget::new());
        spin_faded(&w, &budget);
        let (got, cost) = w.wait_for(&budget, Some(ONE_YIELD));
        assert_eq!((got, cost), (Err(Stop::Timeout), (1, 0)), "one turn, then the deadline");
    }

    #[test]
    fn a_spaced_budget_spins_as_long_and_looks_every_nth_spin_and_at_the_last() {
        let w = ParkAnswers { adaptive: false, answer: 1 };
        let spins_and_looks = |budget: SpinBudget| {
            let before = crate::sync::SPINS.with(core::cell::Cell::get);
            let looks = looks(&w, &budget, None);
            (crate::sync::SPINS.with(core::cell::Cell::get) - before, looks)
        };
        assert_eq!(spins_and_looks(SpinBudget::new()), (1024, 1 + 1024 + 2));
        assert_eq!(spins_and_looks(SpinBudget::looking_every(32)), (1024, 1 + 1024 / 32 + 2));
        assert_eq!(spins_and_looks(SpinBudget::looking_every(1000)), (1024, 1 + 2 + 2), "the 1000th spin and the last");
        assert_eq!(spins_and_looks(SpinBudget::looking_every(0)), (1024, 1 + 1024 + 2), "0 looks at every spin");
        // An answer during the spin is still found (at the next look).
        assert_eq!(looks(&w, &SpinBudget::looking_every(32), Some(5)), 6);
    }

    #[test]
    fn a_never_yielding_budget_spins_at_most_the_core_default() {
        let mut w = Yielder::new(1);
        (w.adaptive, w.spin) = (false, 4 * DEFAULT_SPIN_LIMIT);
        let spins = |budget: SpinBudget| {
            let before = crate::sync::SPINS.with(core::cell::Cell::get);
            assert_eq!(w.wait(&budget), (0, 1));
            crate::sync::SPINS.with(core::cell::Cell::get) - before
        };
        assert_eq!(spins(SpinBudget::new()), 4 * u64::from(DEFAULT_SPIN_LIMIT));
        assert_eq!(spins(SpinBudget::never_yielding()), u64::from(DEFAULT_SPIN_LIMIT));
    }

    #[test]
    fn a_never_yielding_budget_parks_where_a_yielding_one_yields() {
        let w = Yielder::new(1);
        let (yielding, never) = (SpinBudget::new(), SpinBudget::never_yielding());
        spin_faded(&w, &yielding);
        spin_faded(&w, &never);
        for _ in 0..10 {
            assert_eq!(w.wait(&yielding), (1, 0));
            assert_eq!(w.wait(&never), (0, 1));
        }
    }
}
