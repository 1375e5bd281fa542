//! `AtomicU32` whose writes run under the application's critical section and
//! never use an exclusive-access instruction: feature `locked-atomics`.
//!
//! For parts where compare-and-swap exists but must not be used on the shared
//! RAM: on STM32H745/H747, `LDREX`/`STREX` to a region the MPU marks
//! non-cacheable bus-fault, and a Cortex-M7 and a Cortex-M4 do not take part
//! in one exclusive monitor anyway. Every store and every read-modify-write
//! (a load, then a store) runs inside `critical_section::with`; loads are
//! plain single-copy-atomic 32-bit loads outside it (a read-modify-write
//! changes a word with one store, so a load sees the value before or after
//! it, never a mix). That is compatible with a side built with the
//! `critical-section` feature on a target without compare-and-swap, whose
//! loads are also locked: what matters is that every write is.
//!
//! Under `--cfg shm_loom` the critical section is a loom mutex, so the loom
//! models check the channel protocols over these words too.

use core::sync::atomic::Ordering;

#[cfg(shm_loom)]
type Native = loom::sync::atomic::AtomicU32;
#[cfg(not(shm_loom))]
type Native = core::sync::atomic::AtomicU32;

/// A 32-bit control word whose stores and read-modify-writes run under the
/// critical section (see the module docs). Same size and alignment as
/// `core::sync::atomic::AtomicU32`, so the segment layout does not change.
#[repr(transparent)]
#[derive(Debug, Default)]
pub struct AtomicU32(Native);

/// Runs `f` under the lock that every side of the segment takes.
#[inline]
fn locked<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(not(shm_loom))]
    {
        critical_section::with(|_| f())
    }
    #[cfg(shm_loom)]
    {
        loom::lazy_static! {
            static ref LOCK: loom::sync::Mutex<()> = loom::sync::Mutex::new(());
        }
        let _held = LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        f()
    }
}

/// The load half of a read-modify-write ordered `o`.
fn load_half(o: Ordering) -> Ordering {
    match o {
        Ordering::Acquire | Ordering::AcqRel | Ordering::SeqCst => Ordering::Acquire,
        _ => Ordering::Relaxed,
    }
}

/// The store half of a read-modify-write ordered `o`.
fn store_half(o: Ordering) -> Ordering {
    match o {
        Ordering::Release | Ordering::AcqRel | Ordering::SeqCst => Ordering::Release,
        _ => Ordering::Relaxed,
    }
}

#[cfg(not(shm_loom))]
impl super::AsNativeWord for AtomicU32 {
    fn as_native_word(&self) -> &core::sync::atomic::AtomicU32 {
        &self.0
    }
}

impl AtomicU32 {
    /// A word holding `v`.
    #[cfg(not(shm_loom))]
    pub const fn new(v: u32) -> Self {
        Self(Native::new(v))
    }

    /// A word holding `v`.
    #[cfg(shm_loom)]
    pub fn new(v: u32) -> Self {
        Self(Native::new(v))
    }

    /// Loads the word (no lock: a 32-bit load is single-copy atomic).
    #[inline]
    pub fn load(&self, o: Ordering) -> u32 {
        self.0.load(o)
    }

    /// Stores `v` under the lock, so it cannot fall between the load and the
    /// store of another side's read-modify-write.
    #[inline]
    pub fn store(&self, v: u32, o: Ordering) {
        locked(|| self.0.store(v, o))
    }

    /// Replaces the word with `f(old)` under the lock and returns the old
    /// value. `SeqCst` adds a full fence after the store, so the operation
    /// also orders this side's later loads (the store-load pairing the
    /// channels rely on when they use a `SeqCst` read-modify-write).
    #[inline]
    fn modify(&self, o: Ordering, failure: Ordering, f: impl FnOnce(u32) -> Option<u32>) -> Result<u32, u32> {
        let load = if load_half(failure) == Ordering::Acquire { Ordering::Acquire } else { load_half(o) };
        let result = locked(|| {
            let old = self.0.load(load);
            match f(old) {
                Some(new) => {
                    self.0.store(new, store_half(o));
                    Ok(old)
                }
                None => Err(old),
            }
        });
        if o == Ordering::SeqCst || failure == Ordering::SeqCst {
            // Pairs with the SeqCst fences and read-modify-writes of the
            // other side, as a native SeqCst read-modify-write would.
            super::fence(Ordering::SeqCst);
        }
        result
    }

    /// Stores `v` and returns the previous value.
    #[inline]
    pub fn swap(&self, v: u32, o: Ordering) -> u32 {
        self.modify(o, Ordering::Relaxed, |_| Some(v)).unwrap_or_else(|old| old)
    }

    /// Stores `new` if the word holds `current`; returns the previous value,
    /// `Ok` if it was `current`. The load is ordered by the stronger of the
    /// two orderings.
    #[inline]
    pub fn compare_exchange(&self, current: u32, new: u32, success: Ordering, failure: Ordering) -> Result<u32, u32> {
        self.modify(success, failure, |old| (old == current).then_some(new))
    }

    /// As [`compare_exchange`](Self::compare_exchange): under the lock it
    /// never fails spuriously.
    #[inline]
    pub fn compare_exchange_weak(
        &self,
        current: u32,
        new: u32,
        success: Ordering,
        failure: Ordering,
    ) -> Result<u32, u32> {
        self.compare_exchange(current, new, success, failure)
    }

    /// Adds `v` (wrapping) and returns the previous value.
    #[inline]
    pub fn fetch_add(&self, v: u32, o: Ordering) -> u32 {
        self.modify(o, Ordering::Relaxed, |old| Some(old.wrapping_add(v))).unwrap_or_else(|old| old)
    }

    /// Subtracts `v` (wrapping) and returns the previous value.
    #[inline]
    pub fn fetch_sub(&self, v: u32, o: Ordering) -> u32 {
        self.modify(o, Ordering::Relaxed, |old| Some(old.wrapping_sub(v))).unwrap_or_else(|old| old)
    }
}

#[cfg(all(test, not(shm_loom)))]
mod tests {
    use super::AtomicU32;
    use core::sync::atomic::Ordering;

    /// Read-modify-writes here are a load and a store: without the lock,
    /// two threads adding at once lose increments. Every one must land.
    #[test]
    fn read_modify_writes_from_two_threads_lose_nothing() {
        const EACH: u32 = if cfg!(miri) { 200 } else { 200_000 };
        let word = AtomicU32::new(0);
        let swapped = AtomicU32::new(0);
        std::thread::scope(|s| {
            for _ in 0..2 {
                s.spawn(|| {
                    for i in 0..EACH {
                        match i % 3 {
                            0 => {
                                word.fetch_add(1, Ordering::AcqRel);
                            }
                            1 => loop {
                                let seen = word.load(Ordering::Relaxed);
                                if word.compare_exchange(seen, seen + 1, Ordering::SeqCst, Ordering::Relaxed).is_ok() {
                                    break;
                                }
                            },
                            _ => {
                                word.fetch_add(2, Ordering::Relaxed);
                                word.fetch_sub(1, Ordering::Release);
                            }
                        }
                        swapped.swap(i, Ordering::SeqCst);
                    }
                });
            }
        });
        assert_eq!(word.load(Ordering::Relaxed), 2 * EACH);
        assert_eq!(swapped.load(Ordering::Relaxed), EACH - 1);
    }

    #[test]
    fn same_layout_as_a_native_word() {
        assert_eq!(core::mem::size_of::<AtomicU32>(), 4);
        assert_eq!(core::mem::align_of::<AtomicU32>(), 4);
        let word = AtomicU32::new(7);
        assert_eq!(word.compare_exchange(6, 1, Ordering::SeqCst, Ordering::SeqCst), Err(7));
        assert_eq!(word.compare_exchange_weak(7, 1, Ordering::AcqRel, Ordering::Acquire), Ok(7));
        word.store(9, Ordering::Release);
        assert_eq!(word.swap(3, Ordering::Relaxed), 9);
        assert_eq!(word.load(Ordering::Acquire), 3);
    }
}
