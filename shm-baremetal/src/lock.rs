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
    /// spinning while the other core holds it or is ahead of us.
    pub fn acquire(&self, me: usize) {
        let me = me.min(1);
        let other = 1 - me;
        self.flag[me].store(1, Ordering::SeqCst);
        self.turn.store(other as u32, Ordering::SeqCst);
        while self.flag[other].load(Ordering::SeqCst) == 1 && self.turn.load(Ordering::SeqCst) == other as u32 {
            core::hint::spin_loop();
        }
    }

    /// Gives the lock back, as core `me`.
    pub fn release(&self, me: usize) {
        self.flag[me.min(1)].store(0, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::TwoCoreLock;
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
}
