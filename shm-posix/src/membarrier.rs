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
    use super::*;

    #[test]
    fn what_the_kernel_offers_is_what_the_strategies_use() {
        let offered = membarrier_query();
        let can = offered.contains(MembarrierQuery::GLOBAL_EXPEDITED);
        let can_register = can && offered.contains(MembarrierQuery::REGISTER_GLOBAL_EXPEDITED);
        if !can {
            // gVisor, or a seccomp filter: the queue still works, its
            // sleepers take brief sleeps instead (shm-core's tests).
            eprintln!("this kernel offers no MEMBARRIER_CMD_GLOBAL_EXPEDITED: publishing stays fenced here");
        }
        assert_eq!(registered(), can_register, "registered exactly where the kernel offers registration");
        assert_eq!(barrier_everywhere(), can, "a barrier exactly where the kernel offers one");
        assert_eq!(state() & KNOWN, KNOWN, "the answers are cached");
    }
}
