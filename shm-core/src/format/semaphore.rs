//! A semaphore area: one cache line.
//!
//! | offset | word | meaning |
//! |---|---|---|
//! | 0 | `count` | units available, at most [`MAX_COUNT`]; the creator writes the initial count |
//! | 4 | `waiters` | sleepers that announced themselves |
//! | 8..64 | reserved | zero |
//!
//! `post` adds one to `count` by a compare-and-swap (Release) and wakes a
//! sleeper only if `waiters` is not zero; `wait` takes one by a
//! compare-and-swap (Acquire). Waiters sleep on `count` ([`WAIT_WORDS`]).
//! See [`crate::semaphore`].

use crate::sync::AtomicU32;

/// Offset of `count`.
pub const COUNT: usize = 0;
/// Offset of `waiters`.
pub const WAITERS: usize = 4;
/// Bytes of a semaphore's area.
pub const AREA_SIZE: usize = super::CACHE_LINE;
/// The word waiters sleep on: `count`.
pub const WAIT_WORDS: [usize; 1] = [COUNT];
/// The largest count a semaphore holds.
pub const MAX_COUNT: u32 = i32::MAX as u32;

#[doc(hidden)]
/// The two words of an in-segment semaphore (8 bytes, `#[repr(C)]`; the
/// rest of its line is reserved).
#[repr(C)]
#[derive(Debug)]
pub struct SemaphoreWords {
    /// Units available, at most [`MAX_COUNT`].
    pub(crate) count: AtomicU32,
    /// Sleepers that announced themselves.
    pub(crate) waiters: AtomicU32,
}

#[cfg(not(shm_loom))]
const _: () = {
    use core::mem::{offset_of, size_of};
    assert!(offset_of!(SemaphoreWords, count) == COUNT);
    assert!(offset_of!(SemaphoreWords, waiters) == WAITERS);
    assert!(size_of::<SemaphoreWords>() <= AREA_SIZE);
};
