//! The RAM window both cores agree on: the segment, then the attach block in
//! its last 64 bytes.
//!
//! ```text
//! base                                   base + len - 64       base + len
//! |------------- segment (shm-core) ------------|-- attach block --|
//! ```
//!
//! # Design
//!
//! The segment is exactly shm-core's (the format a Linux peer reads too);
//! nothing of this crate is added to it. The attach block (see
//! [`crate::attach`]) sits outside it so that [`Segment::create`], which
//! zeroes the whole segment, never clears the session numbers that tell a
//! reset core from a live one.
//!
//! [`Segment::create`]: shm_core::Segment::create

use core::fmt;
use core::ptr::NonNull;

use shm_core::format::{self, header, CACHE_LINE};
use shm_core::Region;

use crate::attach::AttachBlock;

/// A window of RAM shared by the cores: where the segment and the attach
/// block live. Cheap to copy; every copy names the same bytes.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    base: NonNull<u8>,
    len: usize,
}

// SAFETY: a Window is an address range; all access through it is by the
// atomics of the attach block or by shm-core's protocols, which are safe
// across threads and cores (the contract of `Window::new`).
unsafe impl Send for Window {}
// SAFETY: as above.
unsafe impl Sync for Window {}

/// The range given to [`Window::new`] cannot hold a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum WindowError {
    /// The base address is not 64-byte aligned.
    Misaligned {
        /// The address given.
        addr: usize,
    },
    /// The window is too small for a segment header plus the attach block.
    TooSmall {
        /// Bytes given.
        len: usize,
        /// The least usable window.
        min: usize,
    },
}

impl fmt::Display for WindowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Misaligned { addr } => {
                write!(f, "shared window base {addr:#x} is not 64-byte aligned: align it in memory.x")
            }
            Self::TooSmall { len, min } => {
                write!(f, "shared window of {len} bytes is too small: give it at least {min} bytes in memory.x")
            }
        }
    }
}

impl core::error::Error for WindowError {}

impl shm_core::HasErrorKind for WindowError {
    fn kind(&self) -> shm_core::ErrorKind {
        shm_core::ErrorKind::InvalidArgument
    }
}

impl Window {
    /// The smallest window: a segment header plus the attach block.
    pub const MIN_LEN: usize = header::SIZE + format::attach::BLOCK_SIZE;

    /// The window of `len` bytes at `base` (rounded down to a multiple of
    /// 64; at most 4 GiB are used).
    ///
    /// # Safety
    ///
    /// For the rest of the program (`'static`):
    /// - `base..base + len` is RAM valid for reads and writes, reserved for
    ///   this window: no Rust object (no static, stack or heap) lives there,
    ///   so neither image's linker script may place a section in it, and no
    ///   start-up code (`.bss` zeroing, `.data` copy) may touch it;
    /// - every core that uses it names the same physical bytes, and accesses
    ///   them only through this crate or a compatible implementation of the
    ///   segment format and attach block;
    /// - its control words are coherent between the cores without cache
    ///   maintenance (no data cache, or mapped non-cacheable: see
    ///   [`crate::cache`]).
    pub unsafe fn new(base: *mut u8, len: usize) -> Result<Self, WindowError> {
        let addr = base as usize;
        let Some(base) = NonNull::new(base).filter(|_| addr.is_multiple_of(CACHE_LINE)) else {
            return Err(WindowError::Misaligned { addr });
        };
        let len = len.min(u32::MAX as usize) & !(CACHE_LINE - 1);
        if len < Self::MIN_LEN {
            return Err(WindowError::TooSmall { len, min: Self::MIN_LEN });
        }
        Ok(Self { base, len })
    }

    /// The window between two addresses, `start..end` (as a linker script
    /// defines them; see [`window!`](crate::window!)).
    ///
    /// # Safety
    ///
    /// As [`Window::new`] for `start..end`; `start <= end`.
    pub unsafe fn from_range(start: *mut u8, end: *const u8) -> Result<Self, WindowError> {
        let len = (end as usize).saturating_sub(start as usize);
        // SAFETY: forwarded: the caller guarantees `Window::new`'s contract
        // for `start..start + len`, which is `start..end`.
        unsafe { Self::new(start, len) }
    }

    /// The base address.
    pub fn base(&self) -> *mut u8 {
        self.base.as_ptr()
    }

    /// The window's length in bytes (a multiple of 64).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Never empty: a window holds at least [`Window::MIN_LEN`] bytes.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Bytes available to the segment: all but the attach block.
    pub fn segment_len(&self) -> usize {
        self.len - format::attach::BLOCK_SIZE
    }

    /// The region the segment lives in: the window less its last 64 bytes.
    pub fn segment_region(&self) -> Region<'static> {
        // SAFETY: `Window::new`'s contract gives exactly what `Region::new`
        // asks for the whole window for `'static`, hence for this prefix;
        // several `Region`s over the same bytes are fine, as all access
        // through them is atomic or protocol-bound.
        let region = unsafe { Region::new(self.base, self.segment_len()) };
        // `Window::new` checked the 64-byte alignment `Region::new` wants.
        region.unwrap_or_else(|_| unreachable!("window base checked 64-byte aligned in Window::new"))
    }

    /// The attach block in the window's last 64 bytes.
    pub fn attach_block(&self) -> &'static AttachBlock {
        // SAFETY: the block's 64 bytes lie inside the window (`len >=
        // MIN_LEN`) at a 64-byte aligned offset; they are valid RAM for
        // `'static` and never referenced as anything but these atomics
        // (`Window::new`'s contract). `AttachBlock` consists of `AtomicU32`s
        // only, for which every bit pattern (stale RAM) is valid.
        unsafe { &*self.base.as_ptr().add(self.segment_len()).cast::<AttachBlock>() }
    }
}

/// The [`Window`] between two linker symbols, `start` and `end`, as both
/// images' `memory.x` define them. Expands to an `unsafe` call, so the use
/// site needs an `unsafe` block and a `// SAFETY:` comment:
///
/// ```no_run
/// // memory.x of each image:
/// //   MEMORY { ... SHARED : ORIGIN = 0x38200000, LENGTH = 64K }
/// //   _shm_start = ORIGIN(SHARED);
/// //   _shm_end = ORIGIN(SHARED) + LENGTH(SHARED);
/// // SAFETY: SHARED is a MEMORY region no section is placed in, at the same
/// // address in both images; only shm-baremetal touches it.
/// let window = unsafe { shm_baremetal::window!(_shm_start, _shm_end) }.unwrap();
/// ```
///
/// The safety contract is [`Window::new`]'s.
#[macro_export]
macro_rules! window {
    ($start:ident, $end:ident) => {{
        extern "C" {
            static mut $start: u8;
            static mut $end: u8;
        }
        $crate::Window::from_range(::core::ptr::addr_of_mut!($start), ::core::ptr::addr_of!($end))
    }};
}
