//! The segment format, version 2.2: every byte both sides agree on, in one
//! place. A C peer gets the same numbers from `include/shm_format.h`,
//! generated from this module ([`write_c_header`]).
//!
//! ```
//! use shm_core::format::{self, header, queue};
//! use shm_core::Layout;
//!
//! let layout = Layout::new().queue("events", 1024).unwrap();
//! let events = layout.channels().next().unwrap();
//! assert_eq!(events.offset as usize, format::AREAS_OFFSET);
//! assert_eq!(header::STATE, 32);
//! assert_eq!(queue::RING, 128); // the ring follows the two control lines
//! ```
//!
//! # Conventions
//!
//! All words are 32-bit, little or big endian as the creator's machine (the
//! endianness mark tells), accessed only through 32-bit atomics. Offsets are
//! from the segment base, which is 64-byte aligned, or from the start of the
//! structure a table describes. Every structure starts on a 64-byte line
//! ([`CACHE_LINE`], a format constant, not a per-target one). Reserved words
//! are written as zero and ignored by readers of the same major version.
//!
//! # History
//!
//! 1.0 the first; 1.1 added the creator's start time and domain (header
//! words 48, 52); 2.0 added clean close (bit 0 of a queue's `head` or
//! `tail`, [`queue::CLOSED`]; a mailbox's `server_waiting` set to
//! [`mailbox::SERVER_CLOSED`]), which a 1.x peer would misread: hence the
//! major bump, and either side refuses the other with `VersionMismatch`.
//! 2.0 also has lazy wake-ups on the queue (its `producer_flags` and
//! `consumer_flags` words, which a sleeper must honour: see *Waking* in
//! [`queue`]); they were part of 2.0 from its first release. 2.1 added the
//! [`broadcast`] channel kind (4); a 2.0 reader refuses a segment that
//! declares one (an unknown `kind`) and opens the others. Its waiting
//! words may carry the position their sleeper waits for (*Waking* in
//! [`broadcast`]); a side that writes and reads only the flag 1, as the
//! first 2.1 builds did, still wakes and is woken correctly, so this needed
//! no version change. 2.2 added the [`direct`] mailbox kind (5), refused
//! by 2.1 readers in the same way.
//!
//! # Segment map
//!
//! | offset | bytes | what | layout |
//! |---|---|---|---|
//! | 0 | 64 | header | [`header`] |
//! | 64 | 16 × 64 | channel table | [`table`] |
//! | 1088 | per channel | channel areas, in table order, each on a 64-byte line, without overlap | [`queue`], [`mailbox`], [`semaphore`], [`broadcast`], [`direct`] |
//!
//! On a microcontroller the segment lives in a window whose last 64 bytes,
//! outside the segment, hold the [`attach`] block.
//!
//! # Reading a segment (what an opener checks)
//!
//! Wait (bounded) for `state` to read READY (Acquire), then check, in this
//! order: magic, endianness mark, major version, `total_size` against the
//! bytes mapped (and at least [`AREAS_OFFSET`]), `channel_count` at most
//! [`MAX_CHANNELS`], each table entry (kind, name, offset a multiple of 64
//! past the previous area, parameters in range, `size` as
//! [`table::channel_size`] computes and inside `total_size`), and last the
//! layout hash ([`table::layout_hash`]). Then re-check that `state` is still
//! READY and `generation` unchanged. Keep that validated geometry: never
//! re-read the table to find a channel.

pub mod attach;
pub mod broadcast;
mod c_header;
pub mod direct;
pub mod header;
pub mod mailbox;
pub mod queue;
pub mod semaphore;
pub mod table;

pub use c_header::write_c_header;

/// Cache-line separation used by the format, on every target: the alignment
/// of every structure and of the segment base.
pub const CACHE_LINE: usize = 64;
/// First half of the magic number (`"SHM_"` read as little endian).
pub const MAGIC_LO: u32 = u32::from_le_bytes(*b"SHM_");
/// Second half of the magic number (`"SEG1"`).
pub const MAGIC_HI: u32 = u32::from_le_bytes(*b"SEG1");
/// Format major version: readers refuse other majors.
pub const FORMAT_MAJOR: u16 = 2;
/// Format minor version: additions readers of the same major may ignore.
pub const FORMAT_MINOR: u16 = 2;
/// The header's `version` word: major << 16 | minor.
pub const VERSION: u32 = (FORMAT_MAJOR as u32) << 16 | FORMAT_MINOR as u32;
/// The (major, minor) of a `version` word.
pub const fn split_version(word: u32) -> (u16, u16) {
    ((word >> 16) as u16, word as u16)
}

/// The endianness mark as the creator writes it.
pub const ENDIAN_MARK: u32 = 0x0102_0304;
/// Offset of the channel table.
pub const TABLE_OFFSET: usize = header::SIZE;
/// Entries in the channel table.
pub const MAX_CHANNELS: usize = 16;
/// Longest channel name in bytes.
pub const MAX_NAME: usize = 31;
/// Offset of the first channel area.
pub const AREAS_OFFSET: usize = TABLE_OFFSET + MAX_CHANNELS * table::ENTRY_SIZE;

const _: () = {
    assert!(AREAS_OFFSET == 1088);
    assert!(AREAS_OFFSET.is_multiple_of(CACHE_LINE));
    assert!(MAX_NAME < table::NAME_BYTES);
};

/// `n` rounded up to a whole number of cache lines.
pub(crate) const fn align_line(n: u64) -> u64 {
    (n + CACHE_LINE as u64 - 1) & !(CACHE_LINE as u64 - 1)
}
