//! Segment format v2: the bytes both sides agree on, and the builder that
//! declares a segment's channels.
//!
//! ```
//! use shm_core::Layout;
//!
//! let layout = Layout::new()
//!     .mailbox("rpc", 4, 256).unwrap()   // 4 slots of 256 bytes
//!     .queue("events", 4096).unwrap()    // a 4 KiB byte ring
//!     .semaphore("ready", 0).unwrap();
//! assert_eq!(layout.size() % 64, 0);
//! ```
//!
//! # Byte layout
//!
//! All words are 32-bit, little or big endian as the creator's machine (the
//! endianness mark tells), accessed only through 32-bit atomics. Offsets are
//! from the segment base, which is 64-byte aligned. Every structure starts on
//! a 64-byte line ([`CACHE_LINE`], a format constant, not a per-target one).
//!
//! Format history: 1.0 the first; 1.1 added the creator's start time and
//! domain (header words 48, 52); 2.0 added clean close (bit 0 of a queue's
//! `head`/`tail`, a mailbox's `server_waiting` = `0xFFFF_FFFF`), which a
//! 1.x peer would misread, hence the major bump: either side refuses the
//! other with `VersionMismatch`.
//!
//! **Header** (64 bytes at offset 0):
//!
//! | offset | word | meaning |
//! |---|---|---|
//! | 0 | `magic_lo` | `0x5f4d4853` (`"SHM_"` in little endian) |
//! | 4 | `magic_hi` | `0x31474553` (`"SEG1"`) |
//! | 8 | `version` | format major << 16 \| minor (2.0) |
//! | 12 | `endian` | `0x01020304` as written by the creator |
//! | 16 | `layout_hash_lo` | FNV-1a 64 of the geometry, low half |
//! | 20 | `layout_hash_hi` | high half |
//! | 24 | `total_size` | bytes of the whole segment |
//! | 28 | `channel_count` | entries used in the channel table, at most 16 |
//! | 32 | `state` | 0 EMPTY, 1 INITIALIZING, 2 READY, 3 POISONED |
//! | 36 | `generation` | bumped each time the segment is (re)initialized |
//! | 40 | `creator` | id of the creator (PID on Linux, core on MCUs) |
//! | 44 | `session` | creator's session id (changes when it restarts) |
//! | 48 | `creator_start` | when the creator started, adapter-defined (Linux: its start time in clock ticks after boot, low 32 bits, with bit 0 set); 0 if not recorded |
//! | 52 | `creator_domain` | the domain in which `creator` and every other id of this segment are meaningful, adapter-defined (Linux: the creator's PID namespace inode, low 32 bits); 0 if not recorded |
//! | 56..64 | reserved | zero; ignored by readers of 2.x |
//!
//! `creator`, `creator_start` and `creator_domain` are written before the
//! magic, so whoever sees the magic sees them. A process identifies the
//! creator by all three: a creator id that exists again but started at
//! another time is a recycled id (the creator is gone), and a process in
//! another domain cannot judge any id of the segment at all.
//!
//! **Channel table** (16 entries of 64 bytes at offset 64):
//!
//! | offset | word | meaning |
//! |---|---|---|
//! | +0 | `kind` | 1 mailbox, 2 queue, 3 semaphore |
//! | +4 | reserved | zero |
//! | +8 | `offset` | start of the channel's area, a multiple of 64 |
//! | +12 | `size` | bytes of the area, as [`channel_size`] computes |
//! | +16 | `param_a` | mailbox: slots; queue: ring bytes; semaphore: initial count |
//! | +20 | `param_b` | mailbox: slot payload bytes; others: 0 |
//! | +24..32 | reserved | zero |
//! | +32..64 | `name` | 1 to 31 bytes, NUL-padded |
//!
//! Channel areas follow the table at offset 1088, in table order, without
//! overlap. Their own layouts are documented in [`crate::queue`],
//! [`crate::mailbox`] and [`crate::semaphore`].

use crate::error::LayoutError;
use crate::sync::AtomicU32;

/// Cache-line separation used by the format, on every target.
pub const CACHE_LINE: usize = 64;
/// First half of the magic number (`"SHM_"` read as little endian).
pub const MAGIC_LO: u32 = u32::from_le_bytes(*b"SHM_");
/// Second half of the magic number (`"SEG1"`).
pub const MAGIC_HI: u32 = u32::from_le_bytes(*b"SEG1");
/// Format major version: readers refuse other majors.
pub const FORMAT_MAJOR: u16 = 2;
/// Format minor version: additions readers of the same major may ignore.
pub const FORMAT_MINOR: u16 = 0;
/// The endianness mark as the creator writes it.
pub const ENDIAN_MARK: u32 = 0x0102_0304;
/// Size of the header.
pub const HEADER_SIZE: usize = 64;
/// Size of one channel table entry.
pub const DESCRIPTOR_SIZE: usize = 64;
/// Entries in the channel table.
pub const MAX_CHANNELS: usize = 16;
/// Longest channel name in bytes.
pub const MAX_NAME: usize = 31;
/// Offset of the first channel area.
pub const AREAS_OFFSET: usize = HEADER_SIZE + MAX_CHANNELS * DESCRIPTOR_SIZE;

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

/// What a channel table entry describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[repr(u32)]
pub enum ChannelKind {
    /// A request/response [`crate::mailbox`].
    Mailbox = 1,
    /// A single-producer single-consumer [`crate::queue`].
    Queue = 2,
    /// A bare [`crate::semaphore`].
    Semaphore = 3,
}

impl ChannelKind {
    /// The kind for a table word, if it is one.
    pub fn from_word(word: u32) -> Option<Self> {
        match word {
            1 => Some(Self::Mailbox),
            2 => Some(Self::Queue),
            3 => Some(Self::Semaphore),
            _ => None,
        }
    }
}

/// Queue ring sizes allowed (bytes, powers of two).
pub const QUEUE_MIN_CAPACITY: u32 = 64;
/// Largest queue ring (1 GiB).
pub const QUEUE_MAX_CAPACITY: u32 = 1 << 30;
/// Most slots a mailbox has.
pub const MAILBOX_MAX_SLOTS: u32 = 64;
/// Largest mailbox slot payload (256 MiB).
pub const MAILBOX_MAX_SLOT_SIZE: u32 = 1 << 28;

/// Offset of slot 0 in a mailbox area.
pub const MAILBOX_SLOTS_OFFSET: usize = 192;
/// Offset of a mailbox slot's payload from the slot start.
pub const MAILBOX_PAYLOAD_OFFSET: usize = 64;

/// Bytes from one mailbox slot to the next for a payload of `slot_size`.
pub const fn mailbox_slot_stride(slot_size: u32) -> u32 {
    MAILBOX_PAYLOAD_OFFSET as u32 + ((slot_size + 63) & !63)
}

/// The geometry of one channel: what the table entry says besides its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ChannelInfo {
    /// Kind of channel.
    pub kind: ChannelKind,
    /// Start of its area from the segment base.
    pub offset: u32,
    /// Bytes of its area.
    pub size: u32,
    /// Mailbox slots, queue ring bytes, or semaphore initial count.
    pub param_a: u32,
    /// Mailbox slot payload bytes; 0 otherwise.
    pub param_b: u32,
    /// Name bytes, NUL-padded.
    pub name: [u8; 32],
}

impl ChannelInfo {
    /// The name as bytes, without padding.
    pub fn name(&self) -> &[u8] {
        let len = self.name.iter().position(|&b| b == 0).unwrap_or(MAX_NAME);
        &self.name[..len]
    }
}

/// Checks a channel's parameters; the error names the bad one.
pub(crate) fn check_params(kind: ChannelKind, a: u32, b: u32) -> Result<(), (&'static str, LayoutError)> {
    let range = |given, min, max| LayoutError::BadCapacity { given, min, max };
    match kind {
        ChannelKind::Queue => {
            if !(QUEUE_MIN_CAPACITY..=QUEUE_MAX_CAPACITY).contains(&a) || !a.is_power_of_two() {
                return Err(("param_a", range(a, QUEUE_MIN_CAPACITY, QUEUE_MAX_CAPACITY)));
            }
            if b != 0 {
                return Err(("param_b", range(b, 0, 0)));
            }
        }
        ChannelKind::Mailbox => {
            if !(1..=MAILBOX_MAX_SLOTS).contains(&a) {
                return Err(("param_a", range(a, 1, MAILBOX_MAX_SLOTS)));
            }
            if !(1..=MAILBOX_MAX_SLOT_SIZE).contains(&b) {
                return Err(("param_b", range(b, 1, MAILBOX_MAX_SLOT_SIZE)));
            }
        }
        ChannelKind::Semaphore => {
            if a > crate::semaphore::MAX_COUNT {
                return Err(("param_a", range(a, 0, crate::semaphore::MAX_COUNT)));
            }
            if b != 0 {
                return Err(("param_b", range(b, 0, 0)));
            }
        }
    }
    Ok(())
}

/// Bytes of a channel's area for the given (already checked) parameters.
pub fn channel_size(kind: ChannelKind, a: u32, b: u32) -> u64 {
    match kind {
        ChannelKind::Queue => crate::queue::RING_OFFSET as u64 + a as u64,
        ChannelKind::Mailbox => MAILBOX_SLOTS_OFFSET as u64 + a as u64 * mailbox_slot_stride(b) as u64,
        ChannelKind::Semaphore => CACHE_LINE as u64,
    }
}

pub(crate) const fn align_line(n: u64) -> u64 {
    (n + CACHE_LINE as u64 - 1) & !(CACHE_LINE as u64 - 1)
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
    pub reserved: [AtomicU32; 2],
}

/// One channel table entry (see the table above).
#[repr(C)]
pub(crate) struct Descriptor {
    pub kind: AtomicU32,
    pub reserved0: AtomicU32,
    pub offset: AtomicU32,
    pub size: AtomicU32,
    pub param_a: AtomicU32,
    pub param_b: AtomicU32,
    pub reserved1: [AtomicU32; 2],
    pub name: [AtomicU32; 8],
}

#[cfg(not(shm_loom))]
const _: () = {
    use core::mem::{align_of, offset_of, size_of};
    assert!(size_of::<Header>() == HEADER_SIZE);
    assert!(align_of::<Header>() == 4);
    assert!(offset_of!(Header, layout_hash_lo) == 16);
    assert!(offset_of!(Header, total_size) == 24);
    assert!(offset_of!(Header, state) == 32);
    assert!(offset_of!(Header, session) == 44);
    assert!(offset_of!(Header, creator_start) == 48);
    assert!(offset_of!(Header, creator_domain) == 52);
    assert!(size_of::<Descriptor>() == DESCRIPTOR_SIZE);
    assert!(offset_of!(Descriptor, offset) == 8);
    assert!(offset_of!(Descriptor, param_b) == 20);
    assert!(offset_of!(Descriptor, name) == 32);
    assert!(AREAS_OFFSET == 1088);
    assert!(AREAS_OFFSET.is_multiple_of(CACHE_LINE));
};

/// FNV-1a, 64 bits: small, no tables, same result on every target.
#[derive(Clone, Copy)]
pub(crate) struct Fnv(u64);

impl Fnv {
    pub const fn new() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    pub fn word(&mut self, w: u32) {
        for b in w.to_le_bytes() {
            self.0 ^= b as u64;
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    pub fn finish(self) -> u64 {
        self.0
    }
}

/// The layout hash over the geometry: format major, size, channel count and
/// every entry's kind, offset, size, parameters and name.
pub(crate) fn layout_hash(total_size: u32, channels: &[ChannelInfo]) -> u64 {
    let mut h = Fnv::new();
    h.word(FORMAT_MAJOR as u32);
    h.word(total_size);
    h.word(channels.len() as u32);
    for c in channels {
        for w in [c.kind as u32, c.offset, c.size, c.param_a, c.param_b] {
            h.word(w);
        }
        for chunk in c.name.chunks_exact(4) {
            h.word(u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]));
        }
    }
    h.finish()
}

/// A segment's declared channels: what a creator builds and an opener may
/// expect. Computes the exact size the segment needs.
///
/// Channels are laid out in declaration order; two programs that declare the
/// same channels in the same order get the same [`Layout::hash`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    channels: [Option<ChannelInfo>; MAX_CHANNELS],
    count: usize,
    end: u64,
}

impl Default for Layout {
    fn default() -> Self {
        Self::new()
    }
}

impl Layout {
    /// A layout with no channels.
    pub const fn new() -> Self {
        Self { channels: [None; MAX_CHANNELS], count: 0, end: AREAS_OFFSET as u64 }
    }

    /// Adds a request/response mailbox of `slots` slots, each carrying up to
    /// `slot_size` bytes of request or response.
    pub fn mailbox(self, name: &str, slots: u32, slot_size: u32) -> Result<Self, LayoutError> {
        self.push(name, ChannelKind::Mailbox, slots, slot_size)
    }

    /// Adds a single-producer single-consumer queue over a ring of
    /// `capacity` bytes (a power of two from 64 to 1 GiB). Its largest
    /// message is [`crate::queue::max_message`]`(capacity)`.
    pub fn queue(self, name: &str, capacity: u32) -> Result<Self, LayoutError> {
        self.push(name, ChannelKind::Queue, capacity, 0)
    }

    /// Adds a counting semaphore starting at `initial`.
    pub fn semaphore(self, name: &str, initial: u32) -> Result<Self, LayoutError> {
        self.push(name, ChannelKind::Semaphore, initial, 0)
    }

    fn push(mut self, name: &str, kind: ChannelKind, a: u32, b: u32) -> Result<Self, LayoutError> {
        let bytes = name.as_bytes();
        if bytes.is_empty() || bytes.len() > MAX_NAME || bytes.contains(&0) {
            return Err(LayoutError::BadName { len: bytes.len() });
        }
        if self.count == MAX_CHANNELS {
            return Err(LayoutError::TooManyChannels { max: MAX_CHANNELS });
        }
        if self.channels().any(|c| c.name() == bytes) {
            return Err(LayoutError::DuplicateName);
        }
        check_params(kind, a, b).map_err(|(_, e)| e)?;
        let size = channel_size(kind, a, b);
        let end = self.end + align_line(size);
        if end > u32::MAX as u64 - CACHE_LINE as u64 {
            return Err(LayoutError::TooLarge);
        }
        let mut stored = [0u8; 32];
        stored[..bytes.len()].copy_from_slice(bytes);
        self.channels[self.count] = Some(ChannelInfo {
            kind,
            offset: self.end as u32,
            size: size as u32,
            param_a: a,
            param_b: b,
            name: stored,
        });
        self.count += 1;
        self.end = end;
        Ok(self)
    }

    /// The declared channels, in table order.
    pub fn channels(&self) -> impl Iterator<Item = &ChannelInfo> {
        self.channels[..self.count].iter().flatten()
    }

    /// Exact bytes the segment needs (a multiple of 64).
    pub fn size(&self) -> usize {
        self.end as usize
    }

    /// The layout hash a segment of this layout records.
    pub fn hash(&self) -> u64 {
        let mut infos = [None; MAX_CHANNELS];
        infos[..self.count].copy_from_slice(&self.channels[..self.count]);
        let list: [ChannelInfo; MAX_CHANNELS] = infos.map(|c| c.unwrap_or(EMPTY_INFO));
        layout_hash(self.end as u32, &list[..self.count])
    }

    pub(crate) fn infos(&self) -> ([ChannelInfo; MAX_CHANNELS], usize) {
        (self.channels.map(|c| c.unwrap_or(EMPTY_INFO)), self.count)
    }
}

pub(crate) const EMPTY_INFO: ChannelInfo =
    ChannelInfo { kind: ChannelKind::Semaphore, offset: 0, size: 0, param_a: 0, param_b: 0, name: [0; 32] };

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declaring_channels_computes_offsets_and_size() {
        let l = Layout::new().queue("q", 1024).unwrap().mailbox("m", 2, 100).unwrap();
        let c: [&ChannelInfo; 2] = [l.channels().next().unwrap(), l.channels().nth(1).unwrap()];
        assert_eq!(c[0].offset as usize, AREAS_OFFSET);
        assert_eq!(c[0].size, 128 + 1024);
        assert_eq!(c[1].offset as usize, AREAS_OFFSET + 128 + 1024);
        assert_eq!(c[1].size as u64, channel_size(ChannelKind::Mailbox, 2, 100));
        assert_eq!(l.size() as u64, c[1].offset as u64 + align_line(c[1].size as u64));
    }

    #[test]
    fn bad_declarations_are_refused_with_the_reason() {
        assert_eq!(Layout::new().queue("", 64), Err(LayoutError::BadName { len: 0 }));
        assert_eq!(Layout::new().queue(&"x".repeat(32), 64), Err(LayoutError::BadName { len: 32 }));
        assert!(Layout::new().queue(&"x".repeat(31), 64).is_ok());
        assert_eq!(Layout::new().queue("a\0b", 64), Err(LayoutError::BadName { len: 3 }));
        assert_eq!(Layout::new().queue("q", 0), Err(LayoutError::BadCapacity { given: 0, min: 64, max: 1 << 30 }));
        assert_eq!(Layout::new().queue("q", 100), Err(LayoutError::BadCapacity { given: 100, min: 64, max: 1 << 30 }));
        assert_eq!(
            Layout::new().queue("q", 1 << 31),
            Err(LayoutError::BadCapacity { given: 1 << 31, min: 64, max: 1 << 30 })
        );
        assert_eq!(Layout::new().mailbox("m", 0, 8), Err(LayoutError::BadCapacity { given: 0, min: 1, max: 64 }));
        assert_eq!(Layout::new().mailbox("m", 65, 8), Err(LayoutError::BadCapacity { given: 65, min: 1, max: 64 }));
        assert_eq!(Layout::new().mailbox("m", 1, 0), Err(LayoutError::BadCapacity { given: 0, min: 1, max: 1 << 28 }));
        assert_eq!(Layout::new().queue("q", 64).unwrap().semaphore("q", 0), Err(LayoutError::DuplicateName));
        let mut l = Layout::new();
        for i in 0..MAX_CHANNELS {
            l = l.semaphore(&format!("s{i}"), 0).unwrap();
        }
        assert_eq!(l.semaphore("one-more", 0), Err(LayoutError::TooManyChannels { max: 16 }));
        let big = Layout::new().queue("a", 1 << 30).unwrap().queue("b", 1 << 30).unwrap().queue("c", 1 << 30).unwrap();
        assert_eq!(big.queue("d", 1 << 30), Err(LayoutError::TooLarge));
    }

    #[test]
    fn hash_depends_on_geometry_and_names() {
        let a = Layout::new().queue("q", 1024).unwrap();
        let b = Layout::new().queue("q", 2048).unwrap();
        let c = Layout::new().queue("r", 1024).unwrap();
        assert_ne!(a.hash(), b.hash());
        assert_ne!(a.hash(), c.hash());
        assert_eq!(a.hash(), Layout::new().queue("q", 1024).unwrap().hash());
    }
}
