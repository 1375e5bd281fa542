//! A global allocator that counts heap allocations per thread, so the
//! benchmark can prove that no message on a shared-memory path allocates.
//! Per thread, so the reaper thread (which collects a finished peer's
//! output while the measuring thread may still be in its loop) does not
//! count.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// The system allocator, counting every allocation and reallocation made
/// by each thread.
pub struct CountingAlloc;

thread_local! {
    // `const` and without destructor: reading it never allocates and works
    // at any point of a thread's life.
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

/// Allocations (including reallocations) made by the calling thread so far.
pub fn count() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

fn bump() {
    ALLOCATIONS.with(|c| c.set(c.get() + 1));
}

// SAFETY: every method forwards to `System` with the caller's arguments
// unchanged, so `System`'s guarantees are ours; the counter has no effect on
// the memory handed out.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        bump();
        // SAFETY: forwarded unchanged; the caller upholds `alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        bump();
        // SAFETY: forwarded unchanged; the caller upholds `alloc_zeroed`'s contract.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        bump();
        // SAFETY: forwarded unchanged; `ptr` came from this allocator, which
        // is `System` underneath, as `realloc`'s contract requires.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged; `ptr` came from `System` (see above).
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// Allocations in a timed loop, split by path: the hot path (the peer
/// already polling or spinning, no system call) must not allocate; the
/// slow path (this side parked, or woke a sleeping peer) may.
#[derive(Debug, Clone, Copy, Default)]
pub struct Tally {
    /// Allocations in operations that neither parked nor woke anyone.
    pub hot: u64,
    /// Allocations in operations that parked or woke a sleeper.
    pub slow: u64,
}

impl Tally {
    /// Runs `op`, charging its allocations to the hot or the slow path.
    #[inline(always)]
    pub fn track<T>(&mut self, op: impl FnOnce() -> T) -> T {
        let (allocs, events) = (count(), crate::strategy::slow_events());
        let out = op();
        let now = count();
        if now != allocs {
            if crate::strategy::slow_events() == events {
                self.hot += now - allocs;
            } else {
                self.slow += now - allocs;
            }
        }
        out
    }
}
