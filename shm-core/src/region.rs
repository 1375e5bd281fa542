//! "Some bytes shared with someone else": a base pointer and a length,
//! touched only through atomics, volatile copies and protocol-granted slices.

use core::marker::PhantomData;
use core::ptr::NonNull;

use crate::format::CACHE_LINE;

/// Shared bytes: where a segment lives. Created by an adapter (a mapping, a
/// linker section, a heap buffer in tests) and handed to
/// [`Segment`](crate::Segment).
///
/// The lifetime `'a` is how long the memory stays valid (a mapping's owner,
/// a heap buffer, `'static` for RAM fixed by the linker).
#[derive(Debug)]
pub struct Region<'a> {
    base: NonNull<u8>,
    len: usize,
    _memory: PhantomData<&'a [u8]>,
}

// SAFETY: a Region is only an address range; all access through it is by
// atomics or by the channel protocols, which are safe across threads.
unsafe impl Send for Region<'_> {}
// SAFETY: as above.
unsafe impl Sync for Region<'_> {}

/// The base address is not aligned to [`CACHE_LINE`] bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Misaligned {
    /// The address given.
    pub addr: usize,
}

impl core::fmt::Display for Misaligned {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "region base {:#x} is not 64-byte aligned: place the shared memory at a 64-byte boundary", self.addr)
    }
}

impl core::error::Error for Misaligned {}

impl crate::HasErrorKind for Misaligned {
    fn kind(&self) -> crate::ErrorKind {
        crate::ErrorKind::InvalidArgument
    }
}

impl<'a> Region<'a> {
    /// A region of `len` bytes at `base` (at most 4 GiB are used).
    ///
    /// # Safety
    ///
    /// For the whole lifetime `'a` chosen for the returned `Region`:
    /// - `base..base + len` is valid for reads and writes;
    /// - no Rust reference (`&`, `&mut`) to those bytes exists outside this
    ///   crate's handles; other processes, cores or threads may write them at
    ///   any time (the crate assumes this), but only through this library or
    ///   a compatible implementation of the format.
    ///
    /// [`Segment`]: crate::Segment
    pub unsafe fn new(base: NonNull<u8>, len: usize) -> Result<Self, Misaligned> {
        if !(base.as_ptr() as usize).is_multiple_of(CACHE_LINE) {
            return Err(Misaligned { addr: base.as_ptr() as usize });
        }
        Ok(Self { base, len: len.min(u32::MAX as usize), _memory: PhantomData })
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the region is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The base address.
    pub fn as_ptr(&self) -> *mut u8 {
        self.base.as_ptr()
    }

    /// A shared reference to a `T` at `offset`.
    ///
    /// # Safety
    ///
    /// `offset + size_of::<T>() <= self.len()`, `offset` is a multiple of
    /// `align_of::<T>()`, and `T` consists only of atomics (interior
    /// mutability everywhere, so concurrent writers are not UB).
    pub(crate) unsafe fn at<T>(&self, offset: usize) -> &T {
        debug_assert!(offset + core::mem::size_of::<T>() <= self.len);
        debug_assert!(offset.is_multiple_of(core::mem::align_of::<T>()));
        // SAFETY: in bounds and aligned per this fn's contract; the base is
        // valid per `Region::new`; `T` is all atomics.
        unsafe { &*self.base.as_ptr().add(offset).cast::<T>() }
    }

    /// A pointer `offset` bytes in.
    ///
    /// # Safety
    ///
    /// `offset <= self.len()`.
    pub(crate) unsafe fn ptr(&self, offset: usize) -> NonNull<u8> {
        debug_assert!(offset <= self.len);
        // SAFETY: in bounds per this fn's contract; never null as `base`
        // is not and the sum does not wrap (the range is a valid allocation).
        unsafe { NonNull::new_unchecked(self.base.as_ptr().add(offset)) }
    }
}
