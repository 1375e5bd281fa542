//! The channel table: [`MAX_CHANNELS`] entries of 64
//! bytes at offset 64, the first `channel_count` of them used.
//!
//! | offset | word | meaning |
//! |---|---|---|
//! | +0 | `kind` | [`ChannelKind`]: 1 mailbox, 2 queue, 3 semaphore, 4 broadcast (format 2.1), 5 direct mailbox (format 2.2) |
//! | +4 | reserved | zero |
//! | +8 | `offset` | start of the channel's area from the segment base, a multiple of 64 |
//! | +12 | `size` | bytes of the area, as [`channel_size`] computes |
//! | +16 | `slots` / `capacity` / `initial_count` | mailbox and direct mailbox: slots (1 to 64); queue and broadcast: ring bytes (a power of two, 64 to 2^30); semaphore: initial count (at most 2^31 - 1) |
//! | +20 | `slot_size` / `subscribers` | mailbox and direct mailbox: payload bytes of a slot (1 to 2^28); broadcast: subscribers (1 to 64) in bits 0..8 and the policy (0 block, 1 overwrite) in bits 8..16 ([`broadcast::params_word`]); zero for other kinds |
//! | +24..32 | reserved | zero |
//! | +32..64 | `name` | 1 to 31 bytes of UTF-8, NUL-padded |
//!
//! Channel areas follow the table at [`AREAS_OFFSET`](super::AREAS_OFFSET)
//! (1088), in table order, each at a multiple of 64 past the end of the
//! previous one. Names are unique in a segment.
//!
//! The layout hash in the header is FNV-1a 64 ([`layout_hash`]) over the
//! words: format major, `total_size`, `channel_count`, then for each entry
//! `kind`, `offset`, `size`, the words at +16 and +20, and the eight name
//! words (as little-endian bytes).

use crate::error::LayoutError;
#[cfg(not(shm_loom))]
use crate::format::CACHE_LINE;
use crate::format::{self, broadcast, mailbox, queue, semaphore, MAX_CHANNELS, MAX_NAME};
use crate::sync::AtomicU32;

/// Bytes of one entry.
pub const ENTRY_SIZE: usize = 64;
/// Offset of `kind` in an entry.
pub const KIND: usize = 0;
/// Offset of the first reserved word in an entry.
pub const RESERVED0: usize = 4;
/// Offset of `offset` in an entry.
pub const OFFSET: usize = 8;
/// Offset of `size` in an entry.
pub const SIZE: usize = 12;
/// Offset of a mailbox's `slots` in an entry.
pub const SLOTS: usize = 16;
/// Offset of a queue's `capacity` (ring bytes) in an entry.
pub const CAPACITY: usize = 16;
/// Offset of a semaphore's `initial_count` in an entry.
pub const INITIAL_COUNT: usize = 16;
/// Offset of a mailbox's `slot_size` in an entry (zero for other kinds).
pub const SLOT_SIZE: usize = 20;
/// Offset of a broadcast channel's subscribers-and-policy word in an entry.
pub const SUBSCRIBERS: usize = 20;
/// Offset of the last two reserved words in an entry.
pub const RESERVED1: usize = 24;
/// Offset of `name` in an entry.
pub const NAME: usize = 32;
/// Bytes of `name`, NUL padding included.
pub const NAME_BYTES: usize = 32;

/// What a channel table entry describes: the `kind` word.
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
    /// A one-to-many [`crate::broadcast`] channel (format 2.1).
    Broadcast = 4,
    /// A request/response mailbox whose clients each keep a slot: the
    /// [`crate::direct`] mailbox (format 2.2). Its area is laid out as a
    /// mailbox's; its slot states differ ([`format::direct`]).
    Direct = 5,
}

impl ChannelKind {
    /// The kind for a table word, if it is one.
    pub fn from_word(word: u32) -> Option<Self> {
        match word {
            1 => Some(Self::Mailbox),
            2 => Some(Self::Queue),
            3 => Some(Self::Semaphore),
            4 => Some(Self::Broadcast),
            5 => Some(Self::Direct),
            _ => None,
        }
    }
}

/// What a channel's parameter words (+16, +20) hold, by kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ChannelParams {
    /// A mailbox of `slots` slots carrying up to `slot_size` bytes each.
    Mailbox {
        /// Slots in the mailbox.
        slots: u32,
        /// Payload bytes of a slot: the largest request or response.
        slot_size: u32,
    },
    /// A direct mailbox of `slots` slots, one per connected client,
    /// carrying up to `slot_size` bytes each.
    Direct {
        /// Slots in the mailbox: the most clients connected at once.
        slots: u32,
        /// Payload bytes of a slot: the largest request or response.
        slot_size: u32,
    },
    /// A queue over a ring of `capacity` bytes.
    Queue {
        /// Bytes of the ring (its largest message is
        /// [`queue::max_message`]`(capacity)`).
        capacity: u32,
    },
    /// A semaphore that started at `initial_count`.
    Semaphore {
        /// The count the creator wrote.
        initial_count: u32,
    },
    /// A broadcast channel over a ring of `capacity` bytes.
    Broadcast {
        /// Bytes of the ring.
        capacity: u32,
        /// Subscriber slots (1 to 64).
        subscribers: u32,
        /// What the publisher does when the slowest subscriber is a ring
        /// behind.
        policy: crate::broadcast::Policy,
    },
}

impl ChannelParams {
    /// The kind these parameters belong to.
    pub fn kind(&self) -> ChannelKind {
        match self {
            Self::Mailbox { .. } => ChannelKind::Mailbox,
            Self::Queue { .. } => ChannelKind::Queue,
            Self::Semaphore { .. } => ChannelKind::Semaphore,
            Self::Broadcast { .. } => ChannelKind::Broadcast,
            Self::Direct { .. } => ChannelKind::Direct,
        }
    }

    /// The words at +16 and +20 of the table entry.
    pub(crate) fn words(&self) -> [u32; 2] {
        match *self {
            Self::Mailbox { slots, slot_size } | Self::Direct { slots, slot_size } => [slots, slot_size],
            Self::Queue { capacity } => [capacity, 0],
            Self::Semaphore { initial_count } => [initial_count, 0],
            Self::Broadcast { capacity, subscribers, policy } => {
                [capacity, broadcast::params_word(subscribers, policy as u32)]
            }
        }
    }

    /// Reads the words of an entry of `kind`, checking each against the
    /// format's limits; the error names the bad word.
    pub(crate) fn from_words(kind: ChannelKind, [a, b]: [u32; 2]) -> Result<Self, (&'static str, LayoutError)> {
        let range = |given, min, max| LayoutError::BadCapacity { given, min, max };
        let params = match kind {
            ChannelKind::Queue => {
                if !(queue::MIN_CAPACITY..=queue::MAX_CAPACITY).contains(&a) || !a.is_power_of_two() {
                    return Err(("capacity", range(a, queue::MIN_CAPACITY, queue::MAX_CAPACITY)));
                }
                Self::Queue { capacity: a }
            }
            ChannelKind::Mailbox | ChannelKind::Direct => {
                if !(1..=mailbox::MAX_SLOTS).contains(&a) {
                    return Err(("slots", range(a, 1, mailbox::MAX_SLOTS)));
                }
                if !(1..=mailbox::MAX_SLOT_SIZE).contains(&b) {
                    return Err(("slot_size", range(b, 1, mailbox::MAX_SLOT_SIZE)));
                }
                if kind == ChannelKind::Direct {
                    return Ok(Self::Direct { slots: a, slot_size: b });
                }
                Self::Mailbox { slots: a, slot_size: b }
            }
            ChannelKind::Semaphore => {
                if a > semaphore::MAX_COUNT {
                    return Err(("initial_count", range(a, 0, semaphore::MAX_COUNT)));
                }
                Self::Semaphore { initial_count: a }
            }
            ChannelKind::Broadcast => {
                if !(queue::MIN_CAPACITY..=queue::MAX_CAPACITY).contains(&a) || !a.is_power_of_two() {
                    return Err(("capacity", range(a, queue::MIN_CAPACITY, queue::MAX_CAPACITY)));
                }
                let subscribers = b & 0xff;
                if !(1..=broadcast::MAX_SUBSCRIBERS).contains(&subscribers) {
                    return Err(("subscribers", range(subscribers, 1, broadcast::MAX_SUBSCRIBERS)));
                }
                let policy = match b >> 8 {
                    broadcast::POLICY_BLOCK => crate::broadcast::Policy::Block,
                    broadcast::POLICY_OVERWRITE => crate::broadcast::Policy::Overwrite,
                    other => return Err(("policy", range(other, 0, 1))),
                };
                return Ok(Self::Broadcast { capacity: a, subscribers, policy });
            }
        };
        if kind != ChannelKind::Mailbox && b != 0 {
            return Err(("slot_size", range(b, 0, 0)));
        }
        Ok(params)
    }
}

/// Bytes of a channel's area for the given (already checked) parameters.
pub fn channel_size(params: &ChannelParams) -> u64 {
    match *params {
        ChannelParams::Queue { capacity } => queue::RING as u64 + capacity as u64,
        ChannelParams::Mailbox { slots, slot_size } | ChannelParams::Direct { slots, slot_size } => {
            mailbox::SLOTS as u64 + slots as u64 * mailbox::slot_stride(slot_size) as u64
        }
        ChannelParams::Semaphore { .. } => semaphore::AREA_SIZE as u64,
        ChannelParams::Broadcast { capacity, subscribers, .. } => {
            broadcast::ring_offset(subscribers) as u64 + capacity as u64
        }
    }
}

/// The geometry of one channel: what its table entry says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ChannelInfo {
    /// Kind of channel.
    pub kind: ChannelKind,
    /// Start of its area from the segment base.
    pub offset: u32,
    /// Bytes of its area.
    pub size: u32,
    /// The parameter words (+16, +20), as checked for `kind`.
    params: [u32; 2],
    /// Name bytes, NUL-padded.
    pub name: [u8; 32],
}

impl ChannelInfo {
    /// What fills the unused entries of a [`ChannelTable`].
    const UNUSED: ChannelInfo =
        ChannelInfo { kind: ChannelKind::Semaphore, offset: 0, size: 0, params: [0; 2], name: [0; 32] };

    pub(crate) fn new(params: ChannelParams, offset: u32, size: u32, name: [u8; 32]) -> Self {
        Self { kind: params.kind(), offset, size, params: params.words(), name }
    }

    /// The name as bytes, without padding.
    pub fn name(&self) -> &[u8] {
        let len = self.name.iter().position(|&b| b == 0).unwrap_or(MAX_NAME);
        &self.name[..len]
    }

    /// What the channel's parameters are: slots and slot size, ring bytes,
    /// or initial count.
    pub fn params(&self) -> ChannelParams {
        let [a, b] = self.params;
        match self.kind {
            ChannelKind::Mailbox => ChannelParams::Mailbox { slots: a, slot_size: b },
            ChannelKind::Direct => ChannelParams::Direct { slots: a, slot_size: b },
            ChannelKind::Queue => ChannelParams::Queue { capacity: a },
            ChannelKind::Semaphore => ChannelParams::Semaphore { initial_count: a },
            // Checked by `from_words` before the entry was stored.
            ChannelKind::Broadcast => ChannelParams::Broadcast {
                capacity: a,
                subscribers: b & 0xff,
                policy: if b >> 8 == broadcast::POLICY_OVERWRITE {
                    crate::broadcast::Policy::Overwrite
                } else {
                    crate::broadcast::Policy::Block
                },
            },
        }
    }

    /// Offsets from the segment base of every word a waiter of this channel
    /// may sleep on (what an adapter that keeps one kernel object per word,
    /// such as a named semaphore, prepares). See each area's `WAIT_WORDS`.
    pub fn wait_words(&self) -> impl Iterator<Item = usize> {
        let base = self.offset as usize;
        let (fixed, slots, slot_size, subscribers): (&'static [usize], u32, u32, u32) = match self.params() {
            ChannelParams::Queue { .. } => (&queue::WAIT_WORDS, 0, 0, 0),
            ChannelParams::Mailbox { slots, slot_size } | ChannelParams::Direct { slots, slot_size } => {
                (&mailbox::WAIT_WORDS, slots, slot_size, 0)
            }
            ChannelParams::Semaphore { .. } => (&semaphore::WAIT_WORDS, 0, 0, 0),
            ChannelParams::Broadcast { subscribers, .. } => (&broadcast::WAIT_WORDS, 0, 0, subscribers),
        };
        let slot_words = (0..slots).map(move |i| base + mailbox::slot_offset(i, slot_size) + mailbox::SLOT_WAIT_WORD);
        let tails = (0..subscribers).map(move |s| base + broadcast::subscriber_offset(s) + broadcast::TAIL);
        fixed.iter().map(move |w| base + w).chain(slot_words).chain(tails)
    }

    /// The byte ranges `(offset from the segment base, length)` of this
    /// channel's control words, without any payload: a queue's two control
    /// lines (not its ring), a mailbox's control lines and each slot's
    /// control line (not the payloads), a semaphore's area. What an
    /// inspection tool copies to read every counter and role.
    pub fn control_ranges(&self) -> impl Iterator<Item = (usize, usize)> {
        let base = self.offset as usize;
        let (first, slots, slot_size) = match self.params() {
            ChannelParams::Queue { .. } => (queue::RING, 0, 0),
            ChannelParams::Mailbox { slots, slot_size } | ChannelParams::Direct { slots, slot_size } => {
                (mailbox::SLOTS, slots, slot_size)
            }
            ChannelParams::Semaphore { .. } => (self.size as usize, 0, 0),
            ChannelParams::Broadcast { subscribers, .. } => (broadcast::ring_offset(subscribers), 0, 0),
        };
        let slot_lines = (0..slots).map(move |i| (base + mailbox::slot_offset(i, slot_size), mailbox::SLOT_PAYLOAD));
        core::iter::once((base, first)).chain(slot_lines)
    }
}

/// The channels of a segment in table order, at most
/// [`MAX_CHANNELS`]: what a [`Layout`](crate::Layout) declares and what
/// `Segment::open` validated. Unused entries are all [`ChannelInfo::UNUSED`],
/// so two tables of the same channels compare equal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ChannelTable {
    entries: [ChannelInfo; MAX_CHANNELS],
    len: usize,
}

impl ChannelTable {
    /// A table of no channels.
    pub(crate) const fn new() -> Self {
        Self { entries: [ChannelInfo::UNUSED; MAX_CHANNELS], len: 0 }
    }

    /// The channels, in table order.
    pub(crate) fn as_slice(&self) -> &[ChannelInfo] {
        &self.entries[..self.len]
    }

    /// Whether the table holds [`MAX_CHANNELS`] channels.
    pub(crate) fn is_full(&self) -> bool {
        self.len == MAX_CHANNELS
    }

    /// Appends `channel`; refused when the table is full.
    pub(crate) fn push(&mut self, channel: ChannelInfo) -> Result<(), LayoutError> {
        let entry = self.entries.get_mut(self.len).ok_or(LayoutError::TooManyChannels { max: MAX_CHANNELS })?;
        *entry = channel;
        self.len += 1;
        Ok(())
    }

    /// The channel named `name` (without padding) and its index.
    pub(crate) fn find(&self, name: &[u8]) -> Option<(usize, &ChannelInfo)> {
        self.as_slice().iter().enumerate().find(|(_, c)| c.name() == name)
    }

    /// The layout hash of these channels in a segment of `total_size` bytes.
    pub(crate) fn hash(&self, total_size: u32) -> u64 {
        layout_hash(total_size, self.as_slice())
    }
}

/// One channel table entry (see the table above).
#[repr(C)]
pub(crate) struct Descriptor {
    pub kind: AtomicU32,
    pub reserved0: AtomicU32,
    pub offset: AtomicU32,
    pub size: AtomicU32,
    /// `slots`/`capacity`/`initial_count`, then `slot_size`.
    pub params: [AtomicU32; 2],
    pub reserved1: [AtomicU32; 2],
    pub name: [AtomicU32; 8],
}

#[cfg(not(shm_loom))]
const _: () = {
    use core::mem::{offset_of, size_of};
    assert!(size_of::<Descriptor>() == ENTRY_SIZE);
    assert!(offset_of!(Descriptor, kind) == KIND);
    assert!(offset_of!(Descriptor, reserved0) == RESERVED0);
    assert!(offset_of!(Descriptor, offset) == OFFSET);
    assert!(offset_of!(Descriptor, size) == SIZE);
    assert!(offset_of!(Descriptor, params) == SLOTS);
    assert!(SLOTS == CAPACITY && SLOTS == INITIAL_COUNT);
    assert!(offset_of!(Descriptor, params) + 4 == SLOT_SIZE);
    assert!(offset_of!(Descriptor, reserved1) == RESERVED1);
    assert!(offset_of!(Descriptor, name) == NAME);
    assert!(size_of::<[AtomicU32; 8]>() == NAME_BYTES);
    assert!(ENTRY_SIZE.is_multiple_of(CACHE_LINE));
};

/// FNV-1a, 64 bits: small, no tables, same result on every target.
#[derive(Clone, Copy)]
struct Fnv(u64);

impl Fnv {
    const fn new() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    fn word(&mut self, w: u32) {
        for b in w.to_le_bytes() {
            self.0 ^= b as u64;
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

/// The layout hash over the geometry: format major, size, channel count and
/// every entry's kind, offset, size, parameter words and name.
pub fn layout_hash(total_size: u32, channels: &[ChannelInfo]) -> u64 {
    let mut h = Fnv::new();
    h.word(format::FORMAT_MAJOR as u32);
    h.word(total_size);
    h.word(channels.len() as u32);
    for c in channels {
        let [a, b] = c.params;
        for w in [c.kind as u32, c.offset, c.size, a, b] {
            h.word(w);
        }
        for chunk in c.name.chunks_exact(4) {
            h.word(u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]));
        }
    }
    h.0
}

#[cfg(all(test, not(shm_loom)))]
mod tests {
    use super::*;

    fn semaphore(name: &[u8]) -> ChannelInfo {
        let mut stored = [0u8; NAME_BYTES];
        stored[..name.len()].copy_from_slice(name);
        ChannelInfo::new(ChannelParams::Semaphore { initial_count: 0 }, 0, 64, stored)
    }

    #[test]
    fn a_table_holds_channels_in_order_up_to_the_maximum() {
        let mut table = ChannelTable::new();
        assert!(table.as_slice().is_empty());
        for i in 0..MAX_CHANNELS {
            assert!(!table.is_full());
            table.push(semaphore(&[b'a' + i as u8])).unwrap();
        }
        assert!(table.is_full());
        assert_eq!(table.push(semaphore(b"z")), Err(LayoutError::TooManyChannels { max: MAX_CHANNELS }));
        assert_eq!(table.as_slice().len(), MAX_CHANNELS);
        assert_eq!(table.find(b"c").map(|(i, c)| (i, c.name())), Some((2, &b"c"[..])));
        assert_eq!(table.find(b"z"), None);
        assert_eq!(table.find(b""), None, "the unused entries are never found");
    }

    #[test]
    fn tables_of_the_same_channels_are_equal_and_hash_alike() {
        let (mut a, mut b) = (ChannelTable::new(), ChannelTable::new());
        a.push(semaphore(b"s")).unwrap();
        b.push(semaphore(b"s")).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.hash(1152), b.hash(1152));
        b.push(semaphore(b"t")).unwrap();
        assert_ne!(a, b);
        assert_ne!(a.hash(1152), b.hash(1152));
    }
}
