//! A broadcast area (format 2.1): one publisher line, the subscribers'
//! waiting flags, one line per subscriber, then the ring.
//!
//! | offset | word | written by |
//! |---|---|---|
//! | 0 | `head`: bytes ever published (wrapping u32, a multiple of 8), plus [`CLOSED`] once the publisher closed | publisher |
//! | 4 | `publisher`: id of the publisher, 0 if none | publisher |
//! | 8 | `published`: messages ever published (wrapping); the next message's sequence number | publisher |
//! | 12 | `publisher_waiting`: nonzero while the publisher sleeps for room (policy block; see [Waking](#waking)) | publisher (rarely) |
//! | 16 | `intent`: the position up to which the publisher may be writing (`head <= intent`) | publisher |
//! | 20 | `oldest`: position of the oldest frame still intact in the ring | publisher |
//! | 64 + 4 s | `waiting[s]`: nonzero while subscriber `s` sleeps (s < 64; see [Waking](#waking)) | subscriber `s` (rarely) |
//! | [`SUBSCRIBERS`] + 64 s | `owner`: id of subscriber `s`, 0 if the slot is free | subscriber `s` |
//! | +4 | `tail`: position subscriber `s` has read up to, plus [`CLOSED`] once it left | subscriber `s` |
//! | +8 | `received`: messages it read (wrapping) | subscriber `s` |
//! | +12 | `missed`: messages it lost by lagging (overwrite policy; wrapping) | subscriber `s` |
//! | [`ring_offset`]`(n)` | the ring, `capacity` bytes (a power of two, 64 to 2^30) | publisher |
//!
//! The table entry's first parameter word is the capacity; the second is
//! `subscribers` (1 to [`MAX_SUBSCRIBERS`]) in bits 0..8
//! and the policy in bits 8..16 ([`POLICY_BLOCK`], [`POLICY_OVERWRITE`]);
//! other bits are zero.
//!
//! A message is a frame at an 8-byte aligned ring offset, as in a
//! [`queue`](super::queue) but with a sequence number in the second word:
//!
//! | frame offset | word | meaning |
//! |---|---|---|
//! | +0 | `len` | payload bytes, or [`WRAP_MARKER`] (continue at ring offset 0) |
//! | +4 | `seq` | the message's sequence number (`published` when it was written) |
//! | +8 | payload | `len` bytes, padded to a multiple of 8 |
//!
//! # Publishing
//!
//! To write a frame of `f` bytes (plus a wrap marker when it does not fit
//! before the end of the ring) ending at position `end`, the publisher
//! first, when `end` is past `intent`, picks a new intent `i` with `end <=
//! i <= head + capacity`, moves `oldest` past every frame that `i -
//! capacity` reaches (reading their `len` words) and stores it (Release),
//! and stores `intent = i`; it then issues a Release fence, writes the
//! frame, and stores `head = end` (Release) and `published + 1`. With
//! policy **block** it first waits until every subscriber that holds its
//! slot (non-zero `owner`, no [`CLOSED`] in `tail`) has `tail >= end -
//! capacity`, and picks `i` no further than the slowest such tail plus
//! the capacity; with policy **overwrite** it never waits.
//!
//! Earlier builds picked `i = end`; this one picks up to a sixteenth of
//! the ring (at most 1 KiB) past it, so that most messages store only
//! `head` and `published` on the line subscribers poll. Subscribers need
//! not know which: they only compare against `intent`, and a publisher
//! taking the role over accepts any `intent` within a ring of `head`.
//!
//! # Reading
//!
//! A subscriber at position `p < head` (head loaded Acquire) reads the frame
//! at `p`, issues an Acquire fence and loads `intent`. If `intent -
//! capacity > p` (as a signed difference) the publisher may have written over
//! the frame while it was read: the subscriber *lagged*, discards what it
//! read, and resumes at `oldest` (loaded Acquire), at the sequence number of
//! the frame there. Otherwise the frame is intact, and its `seq` must be the
//! one the subscriber expects (the previous frame's plus one). It then stores
//! `tail` (Release). The signed difference cannot see a lap of 2^31 bytes or
//! more (an idle subscriber under policy overwrite): when `published` says
//! that enough messages went by since the expected one for that many bytes
//! (each moves the publisher at most `capacity` bytes), the subscriber
//! compares the sequence number of the frame at `oldest` with the one it
//! expects instead (later: it lagged), and also when `head` equals its
//! position but `published` is past the expected sequence number (a lap of
//! exactly a multiple of 2^32 bytes). A subscriber joins at the newest message: it stores
//! `tail` from a load of `head`, issues a full fence, loads `head` again and
//! starts there (the publisher, which issues a full fence between storing
//! `head` and loading the tails, either sees the new tail or wrote nothing
//! the subscriber will read).
//!
//! # Waking
//!
//! Subscribers sleep on `head`, each announcing itself in its own
//! `waiting[s]`; after storing `head` the publisher issues a full fence and
//! wakes every sleeper on `head` if a `waiting[s]` of a declared subscriber
//! asks for this move. A publisher waiting for room (policy block) sleeps on
//! the `tail` of the slowest subscriber, announcing itself in
//! `publisher_waiting`; a subscriber that stores its `tail` then issues a full
//! fence and wakes it if that asks for this move. The data path uses loads
//! and stores only; joining and leaving claim the `owner` word like a
//! queue's roles.
//!
//! A waiting word says which move its sleeper waits for ([`wakes_at`]):
//!
//! | value | the sleeper | wake it when |
//! |---|---|---|
//! | 0 | is awake | never |
//! | `pos` \| [`WAITING_AT`] (`pos` a multiple of 8) | sleeps while the word it sleeps on equals `pos` (a subscriber: `head`) or, for the publisher, until the tail reaches `pos` | a subscriber's word: `head` moves from `pos`; `publisher_waiting`: a `tail` moves from before `pos` to at or past it |
//! | anything else (1 by convention) | sleeps until the word moves | any move |
//!
//! So a publisher does not make a system call per message for a subscriber
//! it already woke that has not run yet, and subscribers wake a publisher
//! once it has room for many messages, not per message. A peer that only
//! ever writes 1 (what format 2.1 wrote) is woken at every move, and wakes
//! at every move: the two encodings work together.

use crate::sync::AtomicU32;

/// Offset of `head`.
pub const HEAD: usize = 0;
/// Offset of `publisher`.
pub const PUBLISHER: usize = 4;
/// Offset of `published`.
pub const PUBLISHED: usize = 8;
/// Offset of `publisher_waiting`.
pub const PUBLISHER_WAITING: usize = 12;
/// Offset of `intent`.
pub const INTENT: usize = 16;
/// Offset of `oldest`.
pub const OLDEST: usize = 20;
/// Offset of `waiting[0]`; `waiting[s]` is at `WAITING + 4 * s`.
pub const WAITING: usize = 64;
/// Offset of subscriber 0's line; subscriber `s`'s is at
/// `SUBSCRIBERS + SUBSCRIBER_LINE * s`.
pub const SUBSCRIBERS: usize = WAITING + 4 * MAX_SUBSCRIBERS as usize;
/// Bytes of one subscriber's line.
pub const SUBSCRIBER_LINE: usize = 64;
/// Offset of `owner` in a subscriber's line.
pub const OWNER: usize = 0;
/// Offset of `tail` in a subscriber's line.
pub const TAIL: usize = 4;
/// Offset of `received` in a subscriber's line.
pub const RECEIVED: usize = 8;
/// Offset of `missed` in a subscriber's line.
pub const MISSED: usize = 12;
/// The most subscribers a broadcast channel declares.
pub const MAX_SUBSCRIBERS: u32 = 64;
/// Policy word value: the publisher waits for the slowest live subscriber.
pub const POLICY_BLOCK: u32 = 0;
/// Policy word value: the publisher never waits; laggards skip ahead.
pub const POLICY_OVERWRITE: u32 = 1;
/// Bit 0 of `head` (publisher closed) or of a subscriber's `tail` (it
/// left). Positions are multiples of 8, so the bit is free.
pub const CLOSED: u32 = 1;
/// The low bits of a waiting word that carries a position: `pos |
/// WAITING_AT` (see [Waking](self#waking)).
pub const WAITING_AT: u32 = 2;

/// Whether a sleeper announced with waiting word `word` needs a wake-up
/// when the word it waits on moves from `from` to `to`: never for 0; for
/// `pos |` [`WAITING_AT`], when `from` is `pos` (a subscriber, waiting on
/// `head`: `at_least == false`) or when `from` is before `pos` and `to` at
/// or past it (the publisher, waiting for a `tail`: `at_least == true`);
/// for any other value (1, or bytes a peer scribbled), at every move.
pub const fn wakes_at(word: u32, from: u32, to: u32, at_least: bool) -> bool {
    if word == 0 {
        return false;
    }
    if word & 7 != WAITING_AT {
        return true;
    }
    let pos = word & !7;
    if at_least {
        (from.wrapping_sub(pos) as i32) < 0 && (to.wrapping_sub(pos) as i32) >= 0
    } else {
        from == pos
    }
}
/// The `len` value that marks "continue at ring offset 0".
pub const WRAP_MARKER: u32 = u32::MAX;
/// Offset of a frame's `len` word.
pub const FRAME_LEN: usize = 0;
/// Offset of a frame's `seq` word.
pub const FRAME_SEQ: usize = 4;
/// Bytes before a frame's payload.
pub const FRAME_HEADER: u32 = 8;
/// The words a side sleeps on, besides each subscriber's `tail` (the
/// publisher, policy block): `head` (subscribers).
pub const WAIT_WORDS: [usize; 1] = [HEAD];

/// Offset of the ring in an area with `subscribers` subscriber lines.
pub const fn ring_offset(subscribers: u32) -> usize {
    SUBSCRIBERS + SUBSCRIBER_LINE * subscribers as usize
}

/// Offset of subscriber `s`'s line.
pub const fn subscriber_offset(s: u32) -> usize {
    SUBSCRIBERS + SUBSCRIBER_LINE * s as usize
}

/// The table's second parameter word for `subscribers` and `policy`.
pub const fn params_word(subscribers: u32, policy: u32) -> u32 {
    subscribers | policy << 8
}

/// The largest message a ring of `capacity` bytes carries (as a queue's).
pub const fn max_message(capacity: u32) -> u32 {
    super::queue::max_message(capacity)
}

/// Ring bytes of the frame of a `len`-byte message (as a queue's).
pub const fn frame_size(len: u32) -> u32 {
    super::queue::frame_size(len)
}

#[doc(hidden)]
/// The publisher's line.
#[repr(C)]
pub struct BroadcastControl {
    pub(crate) head: AtomicU32,
    pub(crate) publisher: AtomicU32,
    pub(crate) published: AtomicU32,
    pub(crate) publisher_waiting: AtomicU32,
    pub(crate) intent: AtomicU32,
    pub(crate) oldest: AtomicU32,
    #[cfg(not(shm_loom))]
    _pad0: [AtomicU32; 10],
    pub(crate) waiting: [AtomicU32; MAX_SUBSCRIBERS as usize],
}

#[doc(hidden)]
/// One subscriber's line.
#[repr(C)]
pub struct SubscriberControl {
    pub(crate) owner: AtomicU32,
    pub(crate) tail: AtomicU32,
    pub(crate) received: AtomicU32,
    pub(crate) missed: AtomicU32,
    #[cfg(not(shm_loom))]
    _pad: [AtomicU32; 12],
}

#[cfg(not(shm_loom))]
const _: () = {
    use core::mem::{offset_of, size_of};
    assert!(offset_of!(BroadcastControl, head) == HEAD);
    assert!(offset_of!(BroadcastControl, publisher) == PUBLISHER);
    assert!(offset_of!(BroadcastControl, published) == PUBLISHED);
    assert!(offset_of!(BroadcastControl, publisher_waiting) == PUBLISHER_WAITING);
    assert!(offset_of!(BroadcastControl, intent) == INTENT);
    assert!(offset_of!(BroadcastControl, oldest) == OLDEST);
    assert!(offset_of!(BroadcastControl, waiting) == WAITING);
    assert!(size_of::<BroadcastControl>() == SUBSCRIBERS);
    assert!(SUBSCRIBERS.is_multiple_of(super::CACHE_LINE));
    assert!(offset_of!(SubscriberControl, owner) == OWNER);
    assert!(offset_of!(SubscriberControl, tail) == TAIL);
    assert!(offset_of!(SubscriberControl, received) == RECEIVED);
    assert!(offset_of!(SubscriberControl, missed) == MISSED);
    assert!(size_of::<SubscriberControl>() == SUBSCRIBER_LINE);
    assert!(FRAME_HEADER as usize == FRAME_SEQ + 4);
};

#[cfg(shm_loom)]
impl BroadcastControl {
    /// Fresh control words, for model checking on the heap.
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        Self {
            head: AtomicU32::new(0),
            publisher: AtomicU32::new(0),
            published: AtomicU32::new(0),
            publisher_waiting: AtomicU32::new(0),
            intent: AtomicU32::new(0),
            oldest: AtomicU32::new(0),
            waiting: core::array::from_fn(|_| AtomicU32::new(0)),
        }
    }
}

#[cfg(shm_loom)]
impl SubscriberControl {
    /// Fresh control words, for model checking on the heap.
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        Self {
            owner: AtomicU32::new(0),
            tail: AtomicU32::new(0),
            received: AtomicU32::new(0),
            missed: AtomicU32::new(0),
        }
    }
}
