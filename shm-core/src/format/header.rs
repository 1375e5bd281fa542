//! The header: 64 bytes at offset 0 of the segment.
//!
//! | offset | word | meaning |
//! |---|---|---|
//! | 0 | `magic_lo` | [`MAGIC_LO`](super::MAGIC_LO): `0x5f4d4853` (`"SHM_"` in little endian) |
//! | 4 | `magic_hi` | [`MAGIC_HI`](super::MAGIC_HI): `0x31474553` (`"SEG1"`) |
//! | 8 | `version` | format major << 16 \| minor ([`VERSION`](super::VERSION), 2.0) |
//! | 12 | `endian` | [`ENDIAN_MARK`](super::ENDIAN_MARK) `0x01020304` as written by the creator |
//! | 16 | `layout_hash_lo` | FNV-1a 64 of the geometry ([`layout_hash`](super::table::layout_hash)), low half |
//! | 20 | `layout_hash_hi` | high half |
//! | 24 | `total_size` | bytes of the whole segment |
//! | 28 | `channel_count` | entries used in the channel table, at most 16 |
//! | 32 | `state` | [`state`]: 0 EMPTY, 1 INITIALIZING, 2 READY, 3 POISONED |
//! | 36 | `generation` | bumped each time the segment is (re)initialized |
//! | 40 | `creator` | id of the creator (PID on Linux, core on MCUs) |
//! | 44 | `session` | creator's session id (changes when it restarts) |
//! | 48 | `creator_start` | since 1.1: when the creator started, adapter-defined (Linux: its start time in clock ticks after boot, low 32 bits, with bit 0 set); 0 if not recorded |
//! | 52 | `creator_domain` | since 1.1: the domain in which `creator` and every other id of this segment are meaningful, adapter-defined (Linux: the creator's PID namespace inode, low 32 bits); 0 if not recorded |
//! | 56 | `flags` | since 2.0: [`flags::LOCKED_ATOMICS`] if every side accesses the control words under one lock (no compare-and-swap); other bits zero, ignored by readers |
//! | 60..64 | reserved | zero when created; the POSIX adapter's removers set it to 1 just before unlinking the segment's name (back to 0 if the unlink fails), and its role claims read it; ignored by every other reader |
//!
//! An opener whose own discipline differs from `flags::LOCKED_ATOMICS`
//! refuses the segment (`OpenError::AtomicsMismatch`): a side with native
//! compare-and-swap and a side that emulates it under a lock would each
//! think its read-modify-writes atomic, and they are not, against each
//! other.
//!
//! `creator`, `creator_start` and `creator_domain` are written before the
//! magic, so whoever sees the magic sees them. A process identifies the
//! creator by all three: a creator id that exists again but started at
//! another time is a recycled id (the creator is gone), and a process in
//! another domain cannot judge any id of the segment at all.
//!
//! The creator writes its identity, the magic, INITIALIZING, every other
//! word, and publishes READY last with a Release store (see
//! [`Segment`](crate::Segment)).

use crate::sync::AtomicU32;

/// Bytes of the header.
pub const SIZE: usize = 64;
/// Offset of `magic_lo`.
pub const MAGIC_LO: usize = 0;
/// Offset of `magic_hi`.
pub const MAGIC_HI: usize = 4;
/// Offset of `version`.
pub const VERSION: usize = 8;
/// Offset of `endian`.
pub const ENDIAN: usize = 12;
/// Offset of `layout_hash_lo`.
pub const LAYOUT_HASH_LO: usize = 16;
/// Offset of `layout_hash_hi`.
pub const LAYOUT_HASH_HI: usize = 20;
/// Offset of `total_size`.
pub const TOTAL_SIZE: usize = 24;
/// Offset of `channel_count`.
pub const CHANNEL_COUNT: usize = 28;
/// Offset of `state`.
pub const STATE: usize = 32;
/// Offset of `generation`.
pub const GENERATION: usize = 36;
/// Offset of `creator`.
pub const CREATOR: usize = 40;
/// Offset of `session`.
pub const SESSION: usize = 44;
/// Offset of `creator_start` (format 1.1).
pub const CREATOR_START: usize = 48;
/// Offset of `creator_domain` (format 1.1).
pub const CREATOR_DOMAIN: usize = 52;
/// Offset of `flags` (format 2.0).
pub const FLAGS: usize = 56;
/// Offset of the reserved word (to the end of the header).
pub const RESERVED: usize = 60;

/// Bits of the header's `flags` word.
pub mod flags {
    /// Every side accesses the control words under one lock: shm-core's
    /// `critical-section` feature on a target without compare-and-swap.
    pub const LOCKED_ATOMICS: u32 = 1;
}

/// Values of the header's `state` word.
pub mod state {
    /// Zero-filled memory, never initialized.
    pub const EMPTY: u32 = 0;
    /// A creator is writing the segment.
    pub const INITIALIZING: u32 = 1;
    /// Fully written; safe to open.
    pub const READY: u32 = 2;
    /// The creator gave up on it; it must be recreated.
    pub const POISONED: u32 = 3;
}

/// The header, as 32-bit atomic words (see the table above).
#[repr(C)]
pub(crate) struct Header {
    pub magic_lo: AtomicU32,
    pub magic_hi: AtomicU32,
    pub version: AtomicU32,
    pub endian: AtomicU32,
    pub layout_hash_lo: AtomicU32,
    pub layout_hash_hi: AtomicU32,
    pub total_size: AtomicU32,
    pub channel_count: AtomicU32,
    pub state: AtomicU32,
    pub generation: AtomicU32,
    pub creator: AtomicU32,
    pub session: AtomicU32,
    pub creator_start: AtomicU32,
    pub creator_domain: AtomicU32,
    pub flags: AtomicU32,
    pub reserved: [AtomicU32; 1],
}

#[cfg(not(shm_loom))]
const _: () = {
    use core::mem::{align_of, offset_of, size_of};
    assert!(size_of::<Header>() == SIZE);
    assert!(align_of::<Header>() == 4);
    assert!(offset_of!(Header, magic_lo) == MAGIC_LO);
    assert!(offset_of!(Header, magic_hi) == MAGIC_HI);
    assert!(offset_of!(Header, version) == VERSION);
    assert!(offset_of!(Header, endian) == ENDIAN);
    assert!(offset_of!(Header, layout_hash_lo) == LAYOUT_HASH_LO);
    assert!(offset_of!(Header, layout_hash_hi) == LAYOUT_HASH_HI);
    assert!(offset_of!(Header, total_size) == TOTAL_SIZE);
    assert!(offset_of!(Header, channel_count) == CHANNEL_COUNT);
    assert!(offset_of!(Header, state) == STATE);
    assert!(offset_of!(Header, generation) == GENERATION);
    assert!(offset_of!(Header, creator) == CREATOR);
    assert!(offset_of!(Header, session) == SESSION);
    assert!(offset_of!(Header, creator_start) == CREATOR_START);
    assert!(offset_of!(Header, creator_domain) == CREATOR_DOMAIN);
    assert!(offset_of!(Header, flags) == FLAGS);
    assert!(offset_of!(Header, reserved) == RESERVED);
};

/// Reads the word at `offset` of a copy of the header (native byte order,
/// as the creator wrote it).
pub(crate) const fn word(bytes: &[u8; SIZE], offset: usize) -> u32 {
    u32::from_ne_bytes([bytes[offset], bytes[offset + 1], bytes[offset + 2], bytes[offset + 3]])
}
