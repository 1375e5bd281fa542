//! Wait strategies for the benchmark: a spin-only one (the "peer polling"
//! rows) and a wrapper that counts how often a strategy parks and wakes.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::error::Error;
use shm_core::{AtomicU32, Wait};

static PARKS: AtomicU64 = AtomicU64::new(0);
static ONE_CPU: AtomicBool = AtomicBool::new(false);

/// Tells the spinning code that both processes share one CPU, where a
/// spinning side only delays the peer it waits for: spin briefly, then yield.
pub fn set_one_cpu(one: bool) {
    ONE_CPU.store(one, Ordering::Relaxed);
}

/// Whether both processes share one CPU (see [`set_one_cpu`]).
#[inline(always)]
pub fn one_cpu() -> bool {
    ONE_CPU.load(Ordering::Relaxed)
}
static WAKES: AtomicU64 = AtomicU64::new(0);

/// Parks plus wakes by this process so far: the slow-path events.
#[inline(always)]
pub fn slow_events() -> u64 {
    PARKS.load(Ordering::Relaxed) + WAKES.load(Ordering::Relaxed)
}

/// Whether process `pid` exists (`kill(pid, 0)`), without allocating.
/// Unlike `shm_posix::pid_alive` it does not tell a zombie from a live
/// process; the orchestrator reaps its peers at once, so none lingers.
pub fn pid_exists(pid: u32) -> bool {
    let Some(pid) = i32::try_from(pid).ok().and_then(rustix::process::Pid::from_raw) else {
        return false;
    };
    !matches!(rustix::process::test_kill_process(pid), Err(rustix::io::Errno::SRCH))
}

/// Parks and wakes issued by this process so far, through [`Counted`] or
/// [`SpinWait`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Calls to `Wait::park`: the wait outlasted the spin phase.
    pub parks: u64,
    /// Calls to `Wait::wake`: the notifier saw an announced sleeper.
    pub wakes: u64,
}

impl Counters {
    /// The counts now.
    pub fn now() -> Self {
        Self { parks: PARKS.load(Ordering::Relaxed), wakes: WAKES.load(Ordering::Relaxed) }
    }

    /// The counts since `earlier`.
    pub fn since(earlier: Self) -> Self {
        let now = Self::now();
        Self { parks: now.parks - earlier.parks, wakes: now.wakes - earlier.wakes }
    }
}

/// Any strategy, counting its parks and wakes (each one a system call for
/// `FutexWait` and `NamedSemaphoreWait`).
#[derive(Debug)]
pub struct Counted<W>(pub W);

impl<W: Wait> Wait for Counted<W> {
    type Deadline = W::Deadline;
    fn deadline(&self, timeout: Option<Duration>) -> Self::Deadline {
        self.0.deadline(timeout)
    }
    fn expired(&self, deadline: &mut Self::Deadline) -> bool {
        self.0.expired(deadline)
    }
    fn park(&self, word: &AtomicU32, expected: u32, deadline: &mut Self::Deadline) {
        PARKS.fetch_add(1, Ordering::Relaxed);
        self.0.park(word, expected, deadline)
    }
    fn wake(&self, word: &AtomicU32, count: u32) {
        WAKES.fetch_add(1, Ordering::Relaxed);
        self.0.wake(word, count)
    }
    fn spin_limit(&self) -> u32 {
        self.0.spin_limit()
    }
    fn adaptive_spin(&self) -> bool {
        self.0.adaptive_spin()
    }
    fn lazy_notify(&self) -> bool {
        self.0.lazy_notify()
    }
    fn yield_now(&self) -> bool {
        self.0.yield_now()
    }
    fn barrier_everywhere(&self) -> bool {
        self.0.barrier_everywhere()
    }
    fn self_id(&self) -> u32 {
        self.0.self_id()
    }
    fn is_alive(&self, id: u32) -> bool {
        self.0.is_alive(id)
    }
}

/// Spins until `ready()` says so (the benchmark's own polling, outside the
/// library); checks every 2^20 spins that `peer` lives, and yields when the
/// processes share one CPU.
#[inline(always)]
pub fn spin_until_true(peer: u32, mut ready: impl FnMut() -> bool) -> Result<(), Error> {
    let mut spins = 0u32;
    while !ready() {
        spins = spins.wrapping_add(1);
        if spins.is_multiple_of(1 << 20) && !pid_exists(peer) {
            return Err(Error::Peer(format!("peer {peer} died")));
        }
        if spins > 64 && one_cpu() {
            std::thread::yield_now();
        } else {
            std::hint::spin_loop();
        }
    }
    Ok(())
}

/// Spins between two liveness checks (and per `park`).
const SPIN_ROUND: u32 = 1 << 16;

/// A deadline that reads the clock only once the spin phase is over, so a
/// wait that succeeds while spinning costs no clock read.
#[derive(Debug)]
pub struct LazyDeadline {
    timeout: Option<Duration>,
    at: Option<Instant>,
}

/// A spin-only strategy: the peer polls its word and never sleeps in the
/// kernel. After [`SPIN_ROUND`] spins, each `park` spins another round
/// (counted as a park) and the caller checks that the peer lives, so a dead
/// peer is still noticed. When both processes share one CPU it yields
/// instead of spinning on (there the peer cannot run while we spin).
#[derive(Debug, Clone, Copy, Default)]
pub struct SpinWait;

impl Wait for SpinWait {
    type Deadline = LazyDeadline;

    fn deadline(&self, timeout: Option<Duration>) -> LazyDeadline {
        LazyDeadline { timeout, at: None }
    }

    fn expired(&self, deadline: &mut LazyDeadline) -> bool {
        let Some(timeout) = deadline.timeout else { return false };
        let at = *deadline.at.get_or_insert_with(|| Instant::now() + timeout);
        Instant::now() >= at
    }

    fn park(&self, word: &AtomicU32, expected: u32, _deadline: &mut LazyDeadline) {
        PARKS.fetch_add(1, Ordering::Relaxed);
        if one_cpu() {
            std::thread::yield_now();
            return;
        }
        for _ in 0..SPIN_ROUND {
            if word.load(std::sync::atomic::Ordering::Relaxed) != expected {
                return;
            }
            std::hint::spin_loop();
        }
    }

    fn wake(&self, _word: &AtomicU32, _count: u32) {
        // Nobody sleeps: a spinning peer sees the word change by itself.
        WAKES.fetch_add(1, Ordering::Relaxed);
    }

    fn spin_limit(&self) -> u32 {
        if one_cpu() {
            64
        } else {
            SPIN_ROUND
        }
    }

    fn self_id(&self) -> u32 {
        std::process::id()
    }

    fn is_alive(&self, id: u32) -> bool {
        pid_exists(id)
    }
}
