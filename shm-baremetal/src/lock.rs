//! A lock between exactly two cores from loads and stores alone (Peterson's
//! algorithm), for parts without compare-and-swap and without a hardware
//! spinlock, as the base of a critical-section implementation that
//! excludes the other core.
//!
//! shm-core's `critical-section` feature (this crate's too) runs every
//! control-word access inside `critical_section::with`; on a dual-core part
//! that is only correct if the application's critical section excludes the
//! other core, not just this core's interrupts. Use the part's hardware
//! spinlock or semaphore where it has one (RP2040: an SIO spinlock;
//! STM32H7: HSEM); elsewhere take a [`TwoCoreLock`] after masking
//! interrupts, count nesting per core, and release it before unmasking.
//! The dual-core example (`examples/dual-core`, `src/board/lock.rs`) does
//! exactly that on an Armv6-M build.
//!
//! ```
//! use shm_baremetal::lock::TwoCoreLock;
//! let lock = TwoCoreLock::new();
//! lock.acquire(0);
//! // ... core 0's critical section ...
//! lock.release(0);
//! ```

use core::sync::atomic::{AtomicU32, Ordering};

/// Peterson's lock for cores 0 and 1: three words in memory both cores
/// see, zeroed before either uses it ([`TwoCoreLock::new`], or
/// [`TwoCoreLock::reset`] in place).
///
/// Every access is a `SeqCst` load or store (on Armv6-M a `DMB` on each
/// side), which gives the algorithm the sequential consistency it needs.
/// Each core must pass its own index and never take the lock twice without
/// releasing it (count nesting yourself); a core that dies holding it
/// blocks the other for good, like any lock.
#[repr(C)]
#[derive(Debug, Default)]
pub struct TwoCoreLock {
    /// `flag[i]` is 1 while core `i` wants or holds the lock.
    flag: [AtomicU32; 2],
    /// Which core yields while both want it.
    turn: AtomicU32,
}

impl TwoCoreLock {
    /// A free lock.
    pub const fn new() -> Self {
        Self { flag: [AtomicU32::new(0), AtomicU32::new(0)], turn: AtomicU32::new(0) }
    }

    /// Frees the lock in place, for one that lives at a fixed address:
    /// call it before the other core can use the lock.
    pub fn reset(&self) {
        self.flag[0].store(0, Ordering::SeqCst);
        self.flag[1].store(0, Ordering::SeqCst);
        self.turn.store(0, Ordering::SeqCst);
    }

    /// Takes the lock as core `me` (0 or 1; anything else counts as 1),
    /// spinning while the other core holds it or is ahead of us, as long as
    /// it takes. A peer that stopped inside its section (a crash, a halt in
    /// a debugger, a hostile write of its flag) blocks this core for good:
    /// prefer [`acquire_within`](Self::acquire_within).
    pub fn acquire(&self, me: usize) {
        while self.acquire_within(me, u32::MAX).is_err() {}
    }

    /// Takes the lock as core `me`, spinning at most `spins` times; on
    /// [`Err`] this core's claim is withdrawn and the lock is not held.
    /// Honest sections last tens of instructions, so a budget of a few
    /// million spins only runs out when the other core is stuck inside its
    /// section (or its flag was written by someone else): then report it
    /// and stop, since a critical section cannot fail.
    pub fn acquire_within(&self, me: usize, spins: u32) -> Result<(), LockTimeout> {
        let me = me.min(1);
        let other = 1 - me;
        self.flag[me].store(1, Ordering::SeqCst);
        self.turn.store(other as u32, Ordering::SeqCst);
        let mut left = spins;
        while self.flag[other].load(Ordering::SeqCst) == 1 && self.turn.load(Ordering::SeqCst) == other as u32 {
            if left == 0 {
                self.flag[me].store(0, Ordering::SeqCst);
                return Err(LockTimeout);
            }
            left -= 1;
            core::hint::spin_loop();
        }
        Ok(())
    }

    /// Gives the lock back, as core `me`.
    pub fn release(&self, me: usize) {
        self.flag[me.min(1)].store(0, Ordering::SeqCst);
    }
}

/// [`TwoCoreLock::acquire_within`] spent its budget: the other core holds
/// the lock, or its flag says so, and did not let go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockTimeout;

impl core::fmt::Display for LockTimeout {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("the other core held the two-core lock past the spin budget (stuck in its critical section?)")
    }
}

#[cfg(test)]
mod tests {
    use super::{LockTimeout, TwoCoreLock};
    use core::cell::UnsafeCell;

    /// A counter only ever touched under the lock: a race on it is a data
    /// race Miri reports, and lost increments show up in the total.
    struct Guarded(UnsafeCell<u64>);
    // SAFETY: only accessed under the lock (that is what the test checks).
    unsafe impl Sync for Guarded {}

    #[test]
    fn the_two_cores_exclude_each_other() {
        let rounds = if cfg!(miri) { 200 } else { 200_000 };
        let (lock, count) = (TwoCoreLock::new(), Guarded(UnsafeCell::new(0)));
        std::thread::scope(|s| {
            for me in 0..2 {
                let (lock, count) = (&lock, &count);
                s.spawn(move || {
                    for _ in 0..rounds {
                        lock.acquire(me);
                        // SAFETY: under the lock (the claim under test).
                        unsafe { *count.0.get() += 1 };
                        lock.release(me);
                    }
                });
            }
        });
        assert_eq!(count.0.into_inner(), 2 * rounds);
    }

    #[test]
    fn a_core_stuck_holding_the_lock_costs_the_other_a_timeout_not_a_hang() {
        let lock = TwoCoreLock::new();
        lock.acquire(1); // core 1 takes it and never gives it back
        assert_eq!(lock.acquire_within(0, 1000), Err(LockTimeout));
        // Core 0's failed try left no claim behind: once core 1 lets go,
        // either core gets the lock at once.
        lock.release(1);
        assert_eq!(lock.acquire_within(1, 0), Ok(()));
        lock.release(1);
        assert_eq!(lock.acquire_within(0, 0), Ok(()));
    }
}
