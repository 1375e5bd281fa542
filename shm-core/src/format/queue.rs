//! A queue area: two control lines, then the ring.
//!
//! | offset | word | written by |
//! |---|---|---|
//! | 0 | `head`: bytes ever committed (wrapping u32, a multiple of 8), plus [`CLOSED`] once the producer closed | producer |
//! | 4 | `producer`: id of the producer, 0 if none | producer |
//! | 8 | `consumer_waiting`: 1 while the consumer sleeps | consumer (rarely) |
//! | 12 | `sent`: messages committed (wrapping) | producer |
//! | 16 | `producer_flags`: [`LAZY_WAKE`] if the producer wakes lazily | producer (at claim) |
//! | 64 | `tail`: bytes ever released (wrapping u32, a multiple of 8), plus [`CLOSED`] once the consumer closed | consumer |
//! | 68 | `consumer`: id of the consumer, 0 if none | consumer |
//! | 72 | `producer_waiting`: 1 while the producer sleeps | producer (rarely) |
//! | 76 | `received`: messages released (wrapping) | consumer |
//! | 80 | `consumer_flags`: [`LAZY_WAKE`] if the consumer wakes lazily | consumer (at claim) |
//! | 128 | the ring, `capacity` bytes (a power of two, 64 to 2^30) | both |
//!
//! The bytes `head - tail` before ring position `head % capacity` hold the
//! committed, unreleased messages; `head - tail` never exceeds `capacity`,
//! and both are multiples of 8. A message is a frame at an 8-byte aligned
//! ring offset:
//!
//! | frame offset | word | meaning |
//! |---|---|---|
//! | +0 | `len` | payload bytes, or [`WRAP_MARKER`] |
//! | +4 | reserved | zero; ignored by readers |
//! | +8 | payload | `len` bytes, padded to a multiple of 8 ([`frame_size`]) |
//!
//! A frame never wraps: when one does not fit before the end of the ring,
//! the producer writes the `len` value `0xFFFF_FFFF` (a wrap marker) and
//! starts the frame at ring offset 0. The largest message is
//! [`max_message`]`(capacity)`, which makes every message fit once the ring
//! is empty.
//!
//! The producer writes a frame, then publishes it by storing `head`
//! (Release); the consumer loads `head` (Acquire), reads the frame, and
//! gives the bytes back by storing `tail` (Release). The consumer sleeps on
//! `head`, the producer on `tail` ([`WAIT_WORDS`]).
//!
//! # Waking
//!
//! A side about to sleep stores 1 to its waiting word, then issues a full
//! (store-load) fence, then looks at the word it sleeps on once more. A side
//! that publishes (stores `head` or `tail`) then looks at the peer's waiting
//! word and wakes the peer if it is set. Either the publisher issues a full
//! fence between its store and that look, or it is *lazy*: it stored
//! [`LAZY_WAKE`] in its flags word, followed by a full fence, before its
//! first lazy look, and skips the fence. A sleeper that, after its own fence,
//! finds [`LAZY_WAKE`] in the waker's flags word must then force a full
//! fence on every CPU that runs the waker (Linux:
//! `membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED)`; the waker registered with
//! `MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED` before it set the flag) before
//! it looks again, or, where it cannot, sleep briefly ([`LAZY_RECHECK_US`],
//! doubling up to [`LAZY_RECHECK_MAX_US`]) before its ordinary sleeps. A
//! side clears its flag when it closes the queue. A garbled flags word costs
//! a few brief sleeps per wait or a barrier that was not needed, and at
//! worst one wake-up's latency (a sleep the sleeper would have made
//! anyway), never a message.

use crate::sync::AtomicU32;

/// Offset of `head`.
pub const HEAD: usize = 0;
/// Offset of `producer`.
pub const PRODUCER: usize = 4;
/// Offset of `consumer_waiting`.
pub const CONSUMER_WAITING: usize = 8;
/// Offset of `sent`.
pub const SENT: usize = 12;
/// Offset of `producer_flags`.
pub const PRODUCER_FLAGS: usize = 16;
/// Offset of `tail`.
pub const TAIL: usize = 64;
/// Offset of `consumer`.
pub const CONSUMER: usize = 68;
/// Offset of `producer_waiting`.
pub const PRODUCER_WAITING: usize = 72;
/// Offset of `received`.
pub const RECEIVED: usize = 76;
/// Offset of `consumer_flags`.
pub const CONSUMER_FLAGS: usize = 80;
/// Bit 0 of a flags word: this side skips the store-load fence before it
/// looks at the peer's waiting word (see *Waking* above).
pub const LAZY_WAKE: u32 = 1;
/// How long a sleeper that cannot force a fence on the waker's CPUs sleeps
/// at most, in microseconds, the first time it sleeps while the waker is
/// lazy; each later sleep of the same wait may last twice as long, until
/// [`LAZY_RECHECK_MAX_US`].
pub const LAZY_RECHECK_US: u32 = 50;
/// The longest brief sleep (see [`LAZY_RECHECK_US`]); after it the sleeper
/// sleeps as long as it otherwise would. The window in which a lazy waker's
/// store and a sleeper's announce can miss each other lasts nanoseconds and
/// opens at each announce, so a miss costs at most the sleep that follows
/// it.
pub const LAZY_RECHECK_MAX_US: u32 = 800;
/// Offset of the ring (the bytes of the two control lines before it).
pub const RING: usize = 128;
/// The words a side sleeps on: `head` (the consumer), `tail` (the producer).
pub const WAIT_WORDS: [usize; 2] = [HEAD, TAIL];

/// Smallest ring (bytes; sizes are powers of two).
pub const MIN_CAPACITY: u32 = 64;
/// Largest ring (1 GiB).
pub const MAX_CAPACITY: u32 = 1 << 30;

/// Offset of a frame's `len` word from the frame start.
pub const FRAME_LEN: usize = 0;
/// Offset of a frame's reserved word from the frame start.
pub const FRAME_RESERVED: usize = 4;
/// Offset of a frame's payload from the frame start: the bytes before it.
pub const FRAME_HEADER: u32 = 8;
/// Alignment of frames in the ring, and of `head` and `tail`.
pub const FRAME_ALIGN: u32 = 8;
/// The `len` value that marks "continue at ring offset 0".
pub const WRAP_MARKER: u32 = u32::MAX;
/// Bit 0 of `head` (or `tail`): the producer (or consumer) closed the queue
/// (dropped its endpoint). Positions are multiples of [`FRAME_ALIGN`], so
/// the bit is free; the next holder of the role clears it.
pub const CLOSED: u32 = 1;

/// The largest message a ring of `capacity` bytes carries.
pub const fn max_message(capacity: u32) -> u32 {
    capacity / 2 - FRAME_HEADER
}

/// Ring bytes of the frame of a `len`-byte message.
pub const fn frame_size(len: u32) -> u32 {
    FRAME_HEADER + ((len + FRAME_ALIGN - 1) & !(FRAME_ALIGN - 1))
}

#[doc(hidden)]
/// The queue's control words (see the table above), two cache lines.
#[repr(C)]
pub struct QueueControl {
    pub(crate) head: AtomicU32,
    pub(crate) producer: AtomicU32,
    pub(crate) consumer_waiting: AtomicU32,
    pub(crate) sent: AtomicU32,
    pub(crate) producer_flags: AtomicU32,
    #[cfg(not(shm_loom))]
    _pad0: [AtomicU32; 11],
    pub(crate) tail: AtomicU32,
    pub(crate) consumer: AtomicU32,
    pub(crate) producer_waiting: AtomicU32,
    pub(crate) received: AtomicU32,
    pub(crate) consumer_flags: AtomicU32,
    #[cfg(not(shm_loom))]
    _pad1: [AtomicU32; 11],
}

#[cfg(not(shm_loom))]
const _: () = {
    use core::mem::{offset_of, size_of};
    assert!(size_of::<QueueControl>() == RING);
    assert!(offset_of!(QueueControl, head) == HEAD);
    assert!(offset_of!(QueueControl, producer) == PRODUCER);
    assert!(offset_of!(QueueControl, consumer_waiting) == CONSUMER_WAITING);
    assert!(offset_of!(QueueControl, sent) == SENT);
    assert!(offset_of!(QueueControl, tail) == TAIL);
    assert!(offset_of!(QueueControl, consumer) == CONSUMER);
    assert!(offset_of!(QueueControl, producer_waiting) == PRODUCER_WAITING);
    assert!(offset_of!(QueueControl, received) == RECEIVED);
    assert!(offset_of!(QueueControl, producer_flags) == PRODUCER_FLAGS);
    assert!(offset_of!(QueueControl, consumer_flags) == CONSUMER_FLAGS);
    assert!(PRODUCER_FLAGS < TAIL && CONSUMER_FLAGS < RING);
    assert!(TAIL.is_multiple_of(super::CACHE_LINE) && RING.is_multiple_of(super::CACHE_LINE));
    assert!(MIN_CAPACITY.is_power_of_two() && MAX_CAPACITY.is_power_of_two());
    assert!(FRAME_LEN < FRAME_RESERVED && FRAME_RESERVED + 4 == FRAME_HEADER as usize);
    assert!(FRAME_HEADER == FRAME_ALIGN && max_message(MIN_CAPACITY) > 0);
    // Payloads are FRAME_ALIGN-aligned in the segment (typed endpoints rely on it).
    assert!(RING.is_multiple_of(FRAME_ALIGN as usize) && super::CACHE_LINE.is_multiple_of(FRAME_ALIGN as usize));
};

#[cfg(shm_loom)]
#[allow(clippy::new_without_default)] // model-checking constructors only
impl QueueControl {
    /// Fresh control words, for model checking on the heap.
    pub fn new() -> Self {
        Self {
            head: AtomicU32::new(0),
            producer: AtomicU32::new(0),
            producer_waiting: AtomicU32::new(0),
            sent: AtomicU32::new(0),
            producer_flags: AtomicU32::new(0),
            tail: AtomicU32::new(0),
            consumer: AtomicU32::new(0),
            consumer_waiting: AtomicU32::new(0),
            received: AtomicU32::new(0),
            consumer_flags: AtomicU32::new(0),
        }
    }
}
