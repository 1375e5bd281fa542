//! Heap-backed memory and a thread-based wait strategy for host tests, with
//! helpers to play a hostile or crashed peer (feature `mock`).
//!
//! ```
//! use shm_core::format::{self, header};
//! use shm_core::mock::MockRegion;
//! use shm_core::{Layout, Segment};
//!
//! let layout = Layout::new().queue("q", 256).unwrap();
//! let memory = MockRegion::new(layout.size());
//! let _segment = Segment::create(memory.region(), &layout, 1, 0).unwrap();
//! assert_eq!(memory.read_u32(header::MAGIC_LO), format::MAGIC_LO);
//! memory.write_u32(header::CHANNEL_COUNT, 99); // corrupt `channel_count`
//! ```

use core::ptr::NonNull;
use core::sync::atomic::{AtomicU32, Ordering};
use core::time::Duration;
use std::alloc::{alloc_zeroed, dealloc, Layout as AllocLayout};
use std::sync::{Arc, Mutex};
use std::vec::Vec;

use crate::region::Region;
use crate::wait::{HostDeadline, Wait};

/// A zeroed, 64-byte aligned heap buffer standing in for shared memory.
///
/// Several [`Region`]s may view it at once (that is the point: one per
/// simulated peer). All access goes through atomics or the channel
/// protocols, never through references to the bytes.
#[derive(Debug)]
pub struct MockRegion {
    base: NonNull<u8>,
    len: usize,
}

// SAFETY: the buffer is plain memory; all access is atomic or protocol-bound.
unsafe impl Send for MockRegion {}
// SAFETY: as above.
unsafe impl Sync for MockRegion {}

impl MockRegion {
    /// A zeroed buffer of `len` bytes (rounded up to a multiple of 4, at
    /// least 4).
    pub fn new(len: usize) -> Self {
        let len = len.max(4).next_multiple_of(4);
        let layout = AllocLayout::from_size_align(len, 64).expect("mock region size overflows");
        // SAFETY: `layout` has a non-zero size.
        let ptr = unsafe { alloc_zeroed(layout) };
        let base = NonNull::new(ptr).unwrap_or_else(|| std::alloc::handle_alloc_error(layout));
        Self { base, len }
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the buffer is empty (never: at least 4 bytes).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// A region over the whole buffer.
    pub fn region(&self) -> Region<'_> {
        self.truncated(self.len)
    }

    /// A region over the first `len` bytes only (a truncated file, say).
    pub fn truncated(&self, len: usize) -> Region<'_> {
        // SAFETY: the buffer is valid for `self.len >= len.min(self.len)`
        // bytes while `self` is borrowed, 64-aligned, and only accessed
        // through atomics and the crate's protocols.
        unsafe { Region::new(self.base, len.min(self.len)) }.expect("mock region is 64-byte aligned")
    }

    fn word(&self, offset: usize) -> &AtomicU32 {
        assert!(offset.is_multiple_of(4) && offset + 4 <= self.len, "mock word offset {offset} out of range");
        // SAFETY: in bounds and 4-aligned (checked above; base is 64-aligned).
        unsafe { &*self.base.as_ptr().add(offset).cast::<AtomicU32>() }
    }

    /// Reads the 32-bit word at `offset` (a multiple of 4).
    pub fn read_u32(&self, offset: usize) -> u32 {
        self.word(offset).load(Ordering::SeqCst)
    }

    /// Overwrites the 32-bit word at `offset`, as a hostile peer would.
    pub fn write_u32(&self, offset: usize, value: u32) {
        self.word(offset).store(value, Ordering::SeqCst)
    }

    /// Overwrites every word in `range` with `value`.
    pub fn fill_u32(&self, range: core::ops::Range<usize>, value: u32) {
        for off in range.step_by(4) {
            self.write_u32(off, value);
        }
    }

    /// Zeroes the whole buffer, as a reset board's RAM might read.
    pub fn reset(&self) {
        self.fill_u32(0..self.len, 0);
    }
}

impl Drop for MockRegion {
    fn drop(&mut self) {
        let layout = AllocLayout::from_size_align(self.len, 64).expect("mock region layout was valid at creation");
        // SAFETY: allocated in `new` with this layout; regions borrowing it
        // ended (they borrow `self`).
        unsafe { dealloc(self.base.as_ptr(), layout) }
    }
}

/// Ids declared dead, shared by the [`ThreadWait`]s of one test.
#[derive(Debug, Clone, Default)]
pub struct Graveyard(Arc<Mutex<Vec<u32>>>);

impl Graveyard {
    /// An empty graveyard.
    pub fn new() -> Self {
        Self::default()
    }

    /// Declares `id` dead.
    pub fn bury(&self, id: u32) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(id);
    }

    fn holds(&self, id: u32) -> bool {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).contains(&id)
    }
}

/// A wait strategy for threads: parks by yielding, keeps time with
/// [`HostDeadline`], and takes liveness from a [`Graveyard`].
#[derive(Debug, Clone)]
pub struct ThreadWait {
    id: u32,
    graveyard: Graveyard,
}

impl ThreadWait {
    /// A strategy for the side with id `id` (not 0), all peers alive.
    pub fn new(id: u32) -> Self {
        Self::with_graveyard(id, &Graveyard::new())
    }

    /// A strategy whose liveness answers come from `graveyard`.
    pub fn with_graveyard(id: u32, graveyard: &Graveyard) -> Self {
        assert!(id != 0, "id 0 means 'nobody' in the format");
        Self { id, graveyard: graveyard.clone() }
    }
}

impl Wait for ThreadWait {
    type Deadline = HostDeadline;

    fn deadline(&self, timeout: Option<Duration>) -> HostDeadline {
        HostDeadline::new(timeout)
    }

    fn expired(&self, deadline: &mut HostDeadline) -> bool {
        deadline.expired()
    }

    fn park(&self, word: &crate::sync::AtomicU32, expected: u32, _deadline: &mut HostDeadline) {
        if word.load(crate::sync::Ordering::Relaxed) == expected {
            std::thread::yield_now();
        }
    }

    fn wake(&self, _word: &crate::sync::AtomicU32, _count: u32) {
        // Parked threads poll; nothing to do.
    }

    fn spin_limit(&self) -> u32 {
        64
    }

    fn self_id(&self) -> u32 {
        self.id
    }

    fn is_alive(&self, id: u32) -> bool {
        !self.graveyard.holds(id)
    }
}
