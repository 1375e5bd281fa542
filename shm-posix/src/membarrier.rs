//! Asymmetric fences between processes with `membarrier(2)`: the side that
//! publishes on every message skips its store-load fence, and the side about
//! to sleep, rarely, forces one on every CPU that runs such a publisher
//! (see *Waking* in [`shm_core::format::queue`]).

use std::sync::atomic::{AtomicU8, Ordering};

use rustix::thread::{membarrier, membarrier_query, MembarrierCommand, MembarrierQuery};

/// What this process learned: [`UNKNOWN`] until first asked, then
/// [`CAN_BARRIER`] and [`REGISTERED`] bits (with [`KNOWN`] set).
static STATE: AtomicU8 = AtomicU8::new(UNKNOWN);
const UNKNOWN: u8 = 0;
const KNOWN: u8 = 1;
/// The kernel offers `MEMBARRIER_CMD_GLOBAL_EXPEDITED`.
const CAN_BARRIER: u8 = 2;
/// This process registered for it: other processes' barriers reach it.
const REGISTERED: u8 = 4;

/// Queries the kernel and registers this process, once (a race between two
/// threads only repeats the idempotent calls). `Relaxed`: the word caches
/// the kernel's answers and orders nothing else.
fn state() -> u8 {
    let known = STATE.load(Ordering::Relaxed);
    if known != UNKNOWN {
        return known;
    }
    let offered = membarrier_query();
    let mut state = KNOWN;
    if offered.contains(MembarrierQuery::GLOBAL_EXPEDITED) {
        state |= CAN_BARRIER;
        if offered.contains(MembarrierQuery::REGISTER_GLOBAL_EXPEDITED)
            && membarrier(MembarrierCommand::RegisterGlobalExpedited).is_ok()
        {
            state |= REGISTERED;
        }
    }
    STATE.store(state, Ordering::Relaxed);
    state
}

/// Whether this process may publish lazily: it is registered, so a
/// sleeper's [`barrier_everywhere`] reaches each CPU it runs on.
pub(crate) fn registered() -> bool {
    state() & REGISTERED != 0
}

/// A full memory barrier on every CPU running a registered process; `false`
/// if the kernel does not offer it (or refused).
pub(crate) fn barrier_everywhere() -> bool {
    state() & CAN_BARRIER != 0 && membarrier(MembarrierCommand::GlobalExpedited).is_ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn this_kernel_offers_global_expedited_barriers() {
        // Linux 4.16 and later do; CI's kernels are far newer. If this
        // fails, the queue still works (sleepers fall back to brief sleeps),
        // but the fast path is not what shm-bench measured.
        assert!(super::registered());
        assert!(super::barrier_everywhere());
    }
}
