//! One publisher to many subscribers: variable-length messages in a byte
//! ring, each subscriber with its own read position.
//!
//! ```
//! use shm_core::broadcast::Policy;
//! use shm_core::mock::{MockRegion, ThreadWait};
//! use shm_core::{Layout, RecvError, Segment};
//!
//! // A 1 KiB ring, up to 4 subscribers; a laggard loses messages rather
//! // than holding the publisher up.
//! let layout = Layout::new().broadcast("ticks", 1024, 4, Policy::Overwrite).unwrap();
//! let region = MockRegion::new(layout.size());
//! let segment = Segment::create(region.region(), &layout, 1, 0).unwrap();
//! let mut tx = segment.publisher("ticks", ThreadWait::new(1)).unwrap();
//! let mut a = segment.subscriber("ticks", ThreadWait::new(2)).unwrap();
//! let mut b = segment.subscriber("ticks", ThreadWait::new(3)).unwrap();
//!
//! tx.try_publish(b"hello").unwrap();
//! let mut loan = tx.try_loan(3).unwrap(); // write in place
//! loan.write(b"abc");
//! loan.commit();
//!
//! let mut buf = [0u8; 16];
//! for sub in [&mut a, &mut b] {
//!     let n = sub.try_recv(&mut buf).unwrap();
//!     assert_eq!(&buf[..n], b"hello");
//!     let msg = sub.try_read().unwrap(); // read in place
//!     assert_eq!(msg.len(), 3);
//!     let mut three = [0u8; 3];
//!     msg.read_into(&mut three);
//!     msg.finish().unwrap(); // Err(Lagged) if it was overwritten meanwhile
//!     assert_eq!(&three, b"abc");
//! }
//! assert_eq!(a.try_recv(&mut buf), Err(RecvError::Empty));
//! ```
//!
//! # Policies
//!
//! Chosen when the channel is declared ([`Layout::broadcast`]):
//!
//! - [`Policy::Block`]: the publisher waits (with a timeout) until the
//!   slowest live subscriber has read far enough; nothing is lost. A
//!   subscriber that died is dropped from the channel when the publisher
//!   waits for it, or tries a few times in a row while it holds the ring
//!   ([`Wait::is_alive`]), with every other dead one, so it never blocks
//!   the publisher for good. A subscriber so dropped while it still runs
//!   (or whose slot another process wrote) gets [`RecvError::SlotLost`]:
//!   drop it and join again.
//! - [`Policy::Overwrite`]: the publisher never waits. A subscriber that
//!   fell a whole ring behind gets [`RecvError::Lagged`] with the number of
//!   messages it missed, and resumes at the oldest message still in the
//!   ring. It never sees torn data: every read is validated after it is
//!   made, against the position the publisher announced it may be writing
//!   up to, and every message carries a sequence number. The counts add up:
//!   received plus missed is every message published since the subscriber
//!   joined, except that one which lags before reading its first message
//!   may also count the few published while it was joining (between its
//!   two looks at the publisher's words).
//!
//! Subscribers join at the newest message ([`Subscriber::join`]) and leave
//! by dropping their handle. The byte layout and the protocol are in
//! [`crate::format::broadcast`].
//!
//! # In-place access
//!
//! [`Publisher::try_loan`] reserves ring bytes to write in place,
//! [`Subscriber::try_read`] gives a [`Message`] to read in place. Under the
//! overwrite policy a lagging subscriber may read bytes while the publisher
//! writes them, so neither side gets a plain slice there: the loan has
//! [`Loan::write`], the message [`Message::read_into`] and
//! [`Message::finish`], which tells whether what was read is intact. Under
//! the block policy the bytes are each side's alone, and
//! [`Loan::as_mut_slice`] and [`Message::as_slice`] lend them.
//!
//! # Design
//!
//! The data path uses loads and stores only, so the channel runs on
//! thumbv6m. The publisher keeps `head`, `intent`, `oldest` and `published`
//! on one line, and moves `intent` (and with it `oldest`) a sixteenth of
//! the ring at a time, so most messages store only `head` and `published`
//! there while subscribers poll it; each subscriber writes only its own
//! line and, when it sleeps, its own waiting word. The block publisher
//! keeps a lower bound of every live subscriber's position and loads the
//! tails again only when that bound says the ring is full. Every value loaded from the segment is
//! checked against the geometry validated at open; a bad value is
//! [`Corruption`], never an out-of-bounds access.
//!
//! [`Layout::broadcast`]: crate::Layout::broadcast

use core::ptr::NonNull;
#[cfg(not(shm_loom))]
use core::sync::atomic::AtomicU32 as RingWord;
use core::time::Duration;
/// Under loom the ring is an array of loom words, so the models see every
/// frame-header access (their messages are empty: no payload bytes).
#[cfg(shm_loom)]
use loom::sync::atomic::AtomicU32 as RingWord;

use crate::error::{ClaimError, Corruption, RecvError, Role, SendError};
use crate::format::broadcast::{
    frame_size, wakes_at, BroadcastControl, SubscriberControl, CLOSED, FRAME_HEADER, FRAME_LEN, FRAME_SEQ, WAITING_AT,
    WRAP_MARKER,
};
use crate::sync::{fence, Ordering};
use crate::wait::{explain, notify, wait_for, word_addr, Announce, SpinBudget, Stop, Wait, WORD};

pub use crate::format::broadcast::max_message;

/// What the publisher does when the slowest subscriber is a ring behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[repr(u32)]
pub enum Policy {
    /// Wait for the slowest live subscriber: nothing is lost.
    Block = 0,
    /// Never wait: a subscriber a ring behind loses the oldest messages and
    /// is told how many ([`RecvError::Lagged`]).
    Overwrite = 1,
}

/// Counters of a broadcast channel, as read (not validated) from its
/// control words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct BroadcastStats {
    /// Bytes ever published (plus [`CLOSED`] once the publisher closed).
    pub head: u32,
    /// Messages ever published.
    pub published: u32,
    /// Publisher id, 0 if none.
    pub publisher: u32,
    /// Subscribers holding a slot.
    pub subscribers: u32,
}

/// Counters of one subscriber slot, as read (not validated).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SubscriberStats {
    /// Subscriber id, 0 if the slot is free.
    pub owner: u32,
    /// Bytes read up to (plus [`CLOSED`] once it left).
    pub tail: u32,
    /// Messages read.
    pub received: u32,
    /// Messages lost by lagging.
    pub missed: u32,
    /// The slot's waiting word: nonzero while its subscriber sleeps or has
    /// announced that it is about to (see *Waking* in
    /// [`crate::format::broadcast`]).
    pub waiting: u32,
}

#[doc(hidden)]
/// Where a broadcast channel's words and ring are; the geometry this side
/// validated.
#[derive(Clone, Copy)]
pub struct BroadcastView<'a> {
    ctl: &'a BroadcastControl,
    subs: &'a [SubscriberControl],
    ring: NonNull<u8>,
    capacity: u32,
    policy: Policy,
    index: u8,
}

// SAFETY: the view hands out access only through atomics and through the
// protocol, which is safe to drive from any thread.
unsafe impl Send for BroadcastView<'_> {}
// SAFETY: as above; shared use only reads the view.
unsafe impl Sync for BroadcastView<'_> {}

impl<'a> BroadcastView<'a> {
    /// A view over the publisher line `ctl`, the subscriber lines `subs` and
    /// a ring of `capacity` bytes at `ring`.
    ///
    /// # Safety
    ///
    /// - `ring` is valid for reads and writes of `capacity` bytes for `'a`,
    ///   8-byte aligned, and accessed by others in this process only through
    ///   atomics (other processes may write it at any time);
    /// - `capacity` is a power of two from 16 to 2^30 (segments declare 64
    ///   or more; loom models use 16, whose largest message is empty);
    /// - `subs` has 1 to 64 entries;
    /// - in loom models (`--cfg shm_loom`), `ring` points to `capacity / 4`
    ///   loom `AtomicU32`s instead of bytes;
    /// - `index` is the channel's index in its segment (used in errors).
    pub unsafe fn new(
        ctl: &'a BroadcastControl,
        subs: &'a [SubscriberControl],
        ring: NonNull<u8>,
        capacity: u32,
        policy: Policy,
        index: u8,
    ) -> Self {
        Self { ctl, subs, ring, capacity, policy, index }
    }

    /// The channel's policy.
    pub fn policy(&self) -> Policy {
        self.policy
    }

    /// The largest message this channel carries.
    pub fn max_message(&self) -> u32 {
        max_message(self.capacity)
    }

    /// A snapshot of the counters, for inspection tools.
    pub fn snapshot(&self) -> BroadcastStats {
        let held = self.subs.iter().filter(|s| crate::role::held(s.owner.load(Ordering::Relaxed))).count();
        BroadcastStats {
            head: self.ctl.head.load(Ordering::Relaxed),
            published: self.ctl.published.load(Ordering::Relaxed),
            publisher: self.ctl.publisher.load(Ordering::Relaxed),
            subscribers: held as u32,
        }
    }

    /// Subscriber slots the channel declares.
    pub fn slots(&self) -> usize {
        self.subs.len()
    }

    /// The counters of subscriber slot `s`, for inspection tools (`None`
    /// past the declared slots).
    pub fn subscriber_stats(&self, s: usize) -> Option<SubscriberStats> {
        let sub = self.subs.get(s)?;
        Some(SubscriberStats {
            owner: sub.owner.load(Ordering::Relaxed),
            tail: sub.tail.load(Ordering::Relaxed),
            received: sub.received.load(Ordering::Relaxed),
            missed: sub.missed.load(Ordering::Relaxed),
            waiting: self.ctl.waiting.get(s).map_or(0, |w| w.load(Ordering::Relaxed)),
        })
    }

    fn corrupt(&self, word: &'static str) -> Corruption {
        Corruption::channel(self.index, word)
    }

    /// The ring word at offset `off` (4-aligned, below the capacity).
    fn ring_word(&self, off: u32) -> &RingWord {
        debug_assert!(off.is_multiple_of(4) && off < self.capacity);
        // SAFETY: `off` is below the capacity (callers mask positions with
        // capacity - 1 and add at most 4 to an 8-aligned offset) and
        // 4-aligned, inside the ring `new` vouches for; the ring is only
        // ever accessed through atomics in this process.
        #[cfg(not(shm_loom))]
        unsafe {
            RingWord::from_ptr(self.ring.as_ptr().add(off as usize).cast())
        }
        // SAFETY: in loom models the ring is `capacity / 4` loom words
        // (`new`'s contract there), and `off / 4` indexes one of them.
        #[cfg(shm_loom)]
        unsafe {
            &*self.ring.as_ptr().cast::<RingWord>().add(off as usize / 4)
        }
    }

    /// Copies `dst.len()` payload bytes from ring offset `off` (4-aligned,
    /// inside a frame `next_frame` checked) into `dst`, one 32-bit word at a
    /// time. Every access to the ring (frame headers, payloads, both sides)
    /// is an aligned 32-bit atomic, so a lagging reader racing the writer
    /// never mixes access sizes on the same bytes.
    fn read_payload(&self, off: u32, dst: &mut [u8]) {
        for (k, chunk) in dst.chunks_mut(4).enumerate() {
            let word = self.ring_word(off + 4 * k as u32).load(Ordering::Relaxed).to_le_bytes();
            chunk.copy_from_slice(&word[..chunk.len()]);
        }
    }

    /// Copies `src` into the payload at ring offset `off` + `at` (the frame
    /// `reserve` placed; `off` 8-aligned), 32-bit word by word; a word only
    /// partly covered keeps its other bytes (the writer is the only one).
    fn write_payload(&self, off: u32, at: usize, src: &[u8]) {
        let mut done = 0;
        while done < src.len() {
            let pos = at + done;
            let word = self.ring_word(off + (pos & !3) as u32);
            let first = pos & 3;
            let n = (4 - first).min(src.len() - done);
            let mut bytes = if first == 0 && n == 4 { [0; 4] } else { word.load(Ordering::Relaxed).to_le_bytes() };
            bytes[first..first + n].copy_from_slice(&src[done..done + n]);
            word.store(u32::from_le_bytes(bytes), Ordering::Relaxed);
            done += n;
        }
    }

    /// A pointer to ring offset `off` (at most the capacity).
    fn at(&self, off: u32) -> *mut u8 {
        debug_assert!(off <= self.capacity);
        // SAFETY: in bounds or one past the end of the ring (`new`).
        unsafe { self.ring.as_ptr().add(off as usize) }
    }

    /// Whether a read of the frame at position `pos` may have been
    /// overwritten, given the publisher's `intent`.
    fn lapped(&self, pos: u32, intent: u32) -> bool {
        (intent.wrapping_sub(self.capacity).wrapping_sub(pos) as i32) > 0
    }

    /// Loads `intent` after reading ring bytes (the Acquire fence before it
    /// pairs with the publisher's Release fence after its `intent` store).
    fn intent_after_read(&self) -> u32 {
        // SYNC POINT: pairs with the Release fence in `Publisher::reserve`:
        // if any byte read before this fence was written after that fence,
        // the load below sees the `intent` stored before it.
        fence(Ordering::Acquire);
        self.ctl.intent.load(Ordering::Relaxed)
    }
}

/// The writing end of a broadcast channel. One per channel at a time
/// (claimed in the segment); dropping it closes the channel.
pub struct Publisher<'a, W: Wait> {
    view: BroadcastView<'a>,
    wait: W,
    id: u32,
    head: u32,
    intent: u32,
    oldest: u32,
    seq: u32,
    /// Block policy: the position up to which the ring is free as of the last
    /// look at the tails (the slowest live tail plus the capacity).
    limit: u32,
    spin: SpinBudget,
    /// Block policy: the subscriber slot and tail that held the ring full
    /// at the last try, and how many tries in a row found it there (see
    /// [`Publisher::holder_died`]).
    stuck: (usize, u32),
    full_tries: u32,
}

/// Tries finding the ring full, held by one subscriber whose tail does not
/// move, before one of them judges whether that subscriber is alive; then
/// every [`TRY_LIVENESS_EVERY`] more. A liveness check reads `/proc` on a
/// host (microseconds): a try must not pay it while the subscriber reads,
/// nor at every look of a publisher polling for room.
const TRY_LIVENESS_AFTER: u32 = 8;
/// See [`TRY_LIVENESS_AFTER`].
const TRY_LIVENESS_EVERY: u32 = 64;

impl<'a, W: Wait> Publisher<'a, W> {
    /// Claims the publisher role of the channel in `view`. A restarted
    /// publisher resumes after the last message its predecessor published.
    pub fn claim(view: BroadcastView<'a>, wait: W) -> Result<Self, ClaimError> {
        wait.check()?;
        let id = wait.self_id();
        let ctl = view.ctl;
        crate::role::claim(&ctl.publisher, &wait, id).map_err(|holder| ClaimError::busy(Role::Publisher, holder))?;
        let release = |word| {
            crate::role::release(&ctl.publisher, id);
            ClaimError::corrupted(view.corrupt(word))
        };
        let head = ctl.head.load(Ordering::Relaxed) & !CLOSED;
        let intent = ctl.intent.load(Ordering::Relaxed);
        let oldest = ctl.oldest.load(Ordering::Relaxed);
        if !head.is_multiple_of(8) {
            return Err(release("head"));
        }
        // A predecessor leaves `intent` past `head` (up to a step past the
        // last frame, and a frame and a wrap more if it died mid-publish;
        // never more than a ring); `intent` never goes back, since a
        // subscriber validates against it.
        let ahead = intent.wrapping_sub(head);
        if !intent.is_multiple_of(8) || ahead > view.capacity {
            return Err(release("intent"));
        }
        if !oldest.is_multiple_of(8) || head.wrapping_sub(oldest) > view.capacity {
            return Err(release("oldest"));
        }
        // The next sequence number: one past the newest frame in the ring (a
        // predecessor may have died between publishing `head` and counting
        // the message in `published`), or `published` when the ring is empty.
        let seq = match last_seq(&view, oldest, head) {
            Ok(Some(last)) => last.wrapping_add(1),
            Ok(None) => ctl.published.load(Ordering::Relaxed),
            Err(word) => return Err(release(word)),
        };
        let mut p = Self {
            view,
            wait,
            id,
            head,
            intent,
            oldest,
            seq,
            limit: head,
            spin: SpinBudget::never_yielding(),
            stuck: (usize::MAX, 0),
            full_tries: 0,
        };
        // What the predecessor may have overwritten is no longer intact.
        p.advance_oldest(intent, head);
        // SYNC POINT: Release pairs with the subscribers' Acquire loads of
        // `oldest`: the positions before it were published.
        ctl.oldest.store(p.oldest, Ordering::Release);
        // SYNC POINT: Release pairs with the subscribers' Acquire loads of
        // `head`; it clears a predecessor's close mark.
        ctl.head.store(head, Ordering::Release);
        // A predecessor that died between storing `head` and waking left its
        // sleepers announced at the position it moved from, which this side
        // never moves from: wake every sleeper once.
        // SYNC POINT: pairs with the fence in `wait_for`, as in `publish_head`.
        fence(Ordering::SeqCst);
        if ctl.waiting[..p.view.subs.len()].iter().any(|w| w.load(Ordering::Relaxed) != 0) {
            p.wait.wake(&ctl.head, u32::MAX);
        }
        Ok(p)
    }

    /// The largest message this channel carries.
    pub fn max_message(&self) -> usize {
        self.view.max_message() as usize
    }

    /// The channel's policy.
    pub fn policy(&self) -> Policy {
        self.view.policy
    }

    /// Subscribers that hold a slot now, once the slots of dead ones
    /// ([`Wait::is_alive`], a liveness check each) are let go. (Under
    /// [`Policy::Overwrite`] the publisher never waits for a subscriber, so
    /// nothing else judges them; a publisher that wants to know whether
    /// anyone still listens asks this.)
    pub fn subscribers(&self) -> u32 {
        self.release_dead_subscribers();
        self.view.snapshot().subscribers
    }

    /// Moves `oldest` past every frame the bytes up to `end` overwrite,
    /// stopping at `stop` (the next frame's start). A frame header that
    /// cannot be one (a peer scribbled on the ring) drops everything
    /// retained before `stop`.
    fn advance_oldest(&mut self, end: u32, stop: u32) {
        let cap = self.view.capacity;
        while end.wrapping_sub(self.oldest) > cap && self.oldest != stop {
            let off = self.oldest & (cap - 1);
            let len = self.view.ring_word(off + FRAME_LEN as u32).load(Ordering::Relaxed);
            let step = if len == WRAP_MARKER {
                cap - off
            } else if len <= self.view.max_message() && off + frame_size(len) <= cap {
                frame_size(len)
            } else {
                crate::event::event!(
                    "broadcast: a frame header at ring offset {} is not one; dropping old messages",
                    off
                );
                stop.wrapping_sub(self.oldest)
            };
            let left = stop.wrapping_sub(self.oldest);
            self.oldest = self.oldest.wrapping_add(step.min(left));
        }
    }

    /// The slowest live subscriber: (its tail, how far behind `head` it
    /// holds the ring, its slot), or `None` when no subscriber holds the
    /// ring back.
    fn slowest(&self) -> Result<Option<(u32, u32, usize)>, SendError> {
        let cap = self.view.capacity;
        let mut slowest: Option<(u32, u32, usize)> = None;
        for (s, sub) in self.view.subs.iter().enumerate() {
            // SYNC POINT: Acquire pairs with the Release in the subscriber's
            // claim (`role::claim`) of the slot.
            let owner = sub.owner.load(Ordering::Acquire);
            if !crate::role::held(owner) {
                continue;
            }
            // SYNC POINT: Acquire pairs with the subscriber's Release store
            // of `tail`: it is done reading the bytes before.
            let tail = sub.tail.load(Ordering::Acquire);
            if tail & CLOSED != 0 {
                continue;
            }
            if !tail.is_multiple_of(8) {
                return Err(SendError::Corrupted(self.view.corrupt("tail")));
            }
            // A tail more than a ring behind the head, or ahead of it, is no
            // reader's position: the slot's old value while a joiner is
            // between its claim and its first `tail` store, a joiner's first
            // store gone stale (it loaded `head` long before; 2^31 bytes or
            // more before, it reads as ahead), or a scribble. It holds the
            // whole ring until the slot's owner stores a fresh tail or is
            // found dead. Skipping it let a publisher take room past the
            // joiner's final tail before that store (the fence argument in
            // `join` holds only if no live slot's tail is skipped),
            // overwriting messages a Block subscriber had not read (reviews,
            // 2026-12-03).
            let behind = self.head.wrapping_sub(tail).min(cap);
            if slowest.is_none_or(|(_, b, _)| b < behind) {
                slowest = Some((tail, behind, s));
            }
        }
        Ok(slowest)
    }

    /// Lets go of every subscriber slot whose holder [`Wait::is_alive`]
    /// says is dead. Each holder is loaded and judged here, and the release
    /// is a compare-and-swap from that id: a joiner that took a slot over
    /// meanwhile keeps it.
    fn release_dead_subscribers(&self) {
        for (s, sub) in self.view.subs.iter().enumerate() {
            let holder = sub.owner.load(Ordering::Relaxed);
            if crate::role::held(holder) && !self.wait.is_alive(holder) {
                crate::event::event!("broadcast: subscriber {} in slot {} died; dropping it", holder, s);
                crate::role::release(&sub.owner, holder);
            }
        }
    }

    /// For a try that found the ring full, held by subscriber slot `s` at
    /// `tail`: whether its holder is dead. Judged once the same slot and
    /// tail held the ring at [`TRY_LIVENESS_AFTER`] tries in a row, and at
    /// every [`TRY_LIVENESS_EVERY`]th after it. A dead holder lets every
    /// dead subscriber go
    /// ([`release_dead_subscribers`](Self::release_dead_subscribers)).
    fn holder_died(&mut self, s: usize, tail: u32) -> bool {
        if self.stuck != (s, tail) {
            self.stuck = (s, tail);
            self.full_tries = 0;
        }
        // Due at the TRY_LIVENESS_AFTER-th try, then every
        // TRY_LIVENESS_EVERY (the count cycles back: no overflow).
        self.full_tries += 1;
        if self.full_tries == TRY_LIVENESS_AFTER + TRY_LIVENESS_EVERY {
            self.full_tries = TRY_LIVENESS_AFTER;
        }
        if self.full_tries != TRY_LIVENESS_AFTER {
            return false;
        }
        let holder = self.view.subs[s].owner.load(Ordering::Relaxed);
        if !crate::role::held(holder) || self.wait.is_alive(holder) {
            return false;
        }
        self.release_dead_subscribers();
        true
    }

    /// Block policy: makes sure the ring is free up to `end`, waiting until
    /// `deadline` (not at all without one).
    fn room(&mut self, end: u32, mut deadline: Option<&mut W::Deadline>) -> Result<(), SendError> {
        if self.view.policy == Policy::Overwrite || (end.wrapping_sub(self.limit) as i32) <= 0 {
            return Ok(());
        }
        let ctl = self.view.ctl;
        loop {
            // SYNC POINT: pairs with the fence in `Subscriber::join`: either
            // this look at the tails sees a joining subscriber's tail, or
            // its look at `head` sees every head stored before this fence.
            fence(Ordering::SeqCst);
            let Some((tail, behind, s)) = self.slowest()? else {
                self.limit = self.head.wrapping_add(self.view.capacity);
                return Ok(());
            };
            // `tail + capacity` for a reader's position; `head` (no room)
            // for a tail that holds the whole ring.
            self.limit = self.head.wrapping_sub(behind).wrapping_add(self.view.capacity);
            if (end.wrapping_sub(self.limit) as i32) <= 0 {
                return Ok(());
            }
            let Some(deadline) = deadline.as_deref_mut() else {
                // A try never waits, so no wait finds the holder dead: judge
                // it here, or a dead subscriber keeps a publisher that only
                // tries full for good (review, 2026-12-03).
                if self.holder_died(s, tail) {
                    continue;
                }
                return Err(SendError::Full);
            };
            // A tail that changes at every look (a scribbler) must not keep
            // this loop going past the deadline.
            if self.wait.expired(deadline) {
                return Err(SendError::Timeout);
            }
            let sub = &self.view.subs[s];
            // Sleep until the slowest has freed a quarter of the ring more
            // than this frame needs (never past `head`, which it reaches by
            // reading everything): one wake-up per many messages, not one
            // per message it reads. A tail that is not a position behind
            // that mark (it left, or a scribble) ends the wait too, and the
            // next look at the tails judges it.
            let (cap, head) = (self.view.capacity, self.head);
            let mut mark = end.wrapping_sub(cap).wrapping_add((cap / 4) & !7);
            if (head.wrapping_sub(mark) as i32) < 0 {
                mark = head;
            }
            let behind = |now: u32| now.is_multiple_of(8) && mark.wrapping_sub(now).wrapping_sub(1) < cap;
            let moved = wait_for(
                &self.wait,
                &self.spin,
                &sub.tail,
                &ctl.publisher_waiting,
                Announce::Value(mark | WAITING_AT),
                Some(&sub.owner),
                None,
                deadline,
                |now| (now != tail && !behind(now)).then_some(()),
            );
            match moved {
                Ok(()) => {}
                Err(Stop::PeerGone) => {
                    // The slowest subscriber died. Others may have died with
                    // it (a crashed group): judge every holder now, not one
                    // per liveness interval of this wait.
                    self.release_dead_subscribers();
                }
                Err(stop) => return Err(stop.into_error(|| false, SendError::PeerDied, SendError::Timeout)),
            }
        }
    }

    /// Reserves a frame for `len` bytes: (frame start).
    fn reserve(&mut self, len: usize, deadline: Option<&mut W::Deadline>) -> Result<u32, SendError> {
        let max = self.max_message();
        if len > max {
            return Err(SendError::TooLarge { len, max });
        }
        explain(&self.wait, self.wait.check().map_err(SendError::from))?;
        let cap = self.view.capacity;
        let frame = frame_size(len as u32);
        let off = self.head & (cap - 1);
        let skip = if cap - off < frame { cap - off } else { 0 };
        let start = self.head.wrapping_add(skip);
        let end = start.wrapping_add(frame);
        let room = self.room(end, deadline);
        explain(&self.wait, room)?;
        let ctl = self.view.ctl;
        // `intent` moves in steps of up to `intent_step` bytes past the
        // frame, not per frame: `intent`, `head` and `published` share the
        // line subscribers poll, and a third store per message there cost a
        // third of the channel's throughput. Frames below the new intent are
        // written while it holds, with no store to the line but `head`.
        if (end.wrapping_sub(self.intent) as i32) > 0 {
            let intent = self.intent_for(end);
            let before = self.oldest;
            self.advance_oldest(intent, self.head);
            if self.oldest != before {
                // SYNC POINT: Release pairs with the subscribers' Acquire
                // loads of `oldest`: every frame from it to `head` is
                // published.
                ctl.oldest.store(self.oldest, Ordering::Release);
            }
            self.intent = intent;
            ctl.intent.store(intent, Ordering::Relaxed);
        }
        // SYNC POINT: pairs with the Acquire fence in `intent_after_read`:
        // a subscriber that reads any byte written below sees this intent.
        fence(Ordering::Release);
        if skip != 0 {
            self.view.ring_word(off + FRAME_LEN as u32).store(WRAP_MARKER, Ordering::Relaxed);
        }
        Ok(start)
    }

    /// The `intent` to announce for a frame ending at `end` (past the
    /// current one): `end` plus [`intent_step`] bytes, but never past
    /// what `room` made sure of (block policy: the slowest tail plus the
    /// capacity, so nothing unread is declared overwritten) nor a whole
    /// ring past `head` (what a successor accepts in `claim`).
    fn intent_for(&self, end: u32) -> u32 {
        let cap = self.view.capacity;
        let mut intent = end.wrapping_add(intent_step(cap));
        let mut cap_at = |bound: u32| {
            if (intent.wrapping_sub(bound) as i32) > 0 {
                intent = bound;
            }
        };
        if self.view.policy == Policy::Block {
            cap_at(self.limit);
        }
        cap_at(self.head.wrapping_add(cap));
        // `room` leaves `limit >= end`, and a frame ends within a ring of
        // `head`; never announce less than the frame about to be written.
        if (end.wrapping_sub(intent) as i32) > 0 {
            end
        } else {
            intent
        }
    }

    fn loan_deadline(&mut self, len: usize, deadline: Option<&mut W::Deadline>) -> Result<Loan<'_, 'a, W>, SendError> {
        let start = self.reserve(len, deadline)?;
        Ok(Loan { publisher: self, start, len: len as u32 })
    }

    /// Reserves `len` ring bytes to write in place, without blocking (only
    /// the block policy ever finds the ring full).
    ///
    /// A subscriber that died holding the ring is let go once tries find
    /// its tail unmoved 8 times in a row (then every 64th try), so a
    /// publisher that only tries is not kept full by the dead; a wait
    /// ([`loan_timeout`](Self::loan_timeout)) notices within a liveness
    /// interval.
    pub fn try_loan(&mut self, len: usize) -> Result<Loan<'_, 'a, W>, SendError> {
        self.loan_deadline(len, None)
    }

    /// Reserves `len` ring bytes, waiting at most `timeout` for the slowest
    /// subscriber (block policy).
    pub fn loan_timeout(&mut self, len: usize, timeout: Duration) -> Result<Loan<'_, 'a, W>, SendError> {
        let mut deadline = self.wait.deadline(Some(timeout));
        self.loan_deadline(len, Some(&mut deadline))
    }

    /// Publishes a copy of `msg` without blocking: [`SendError::Full`] when
    /// the block policy's slowest subscriber has not read enough yet (a
    /// dead one is let go as in [`try_loan`](Self::try_loan)).
    pub fn try_publish(&mut self, msg: &[u8]) -> Result<(), SendError> {
        let mut loan = self.try_loan(msg.len())?;
        loan.write(msg);
        loan.commit();
        Ok(())
    }

    /// Publishes a copy of `msg`, waiting at most `timeout` for room.
    pub fn publish_timeout(&mut self, msg: &[u8], timeout: Duration) -> Result<(), SendError> {
        let mut loan = self.loan_timeout(msg.len(), timeout)?;
        loan.write(msg);
        loan.commit();
        Ok(())
    }

    /// Stores `head` (which was `from`) and wakes the subscribers sleeping
    /// on `from`.
    fn publish_head(&self, from: u32) {
        let ctl = self.view.ctl;
        // SYNC POINT: Release pairs with the subscribers' Acquire loads of
        // `head`: the frame is visible before the head.
        ctl.head.store(self.head, Ordering::Release);
        // SYNC POINT: pairs with the fence in `wait_for` of a subscriber that
        // announces itself in its `waiting` word.
        fence(Ordering::SeqCst);
        // A subscriber announced at `from` sleeps on it and needs this
        // wake-up; one announced at an older position was woken by the move
        // from there (or saw it) and has not run since: no system call.
        let declared = &ctl.waiting[..self.view.subs.len()];
        if declared.iter().any(|w| wakes_at(w.load(Ordering::Relaxed), from, self.head, false)) {
            self.wait.wake(&ctl.head, u32::MAX);
        }
    }
}

impl<W: Wait> Drop for Publisher<'_, W> {
    fn drop(&mut self) {
        let ctl = self.view.ctl;
        // Close while still holding the role: a publisher taken for dead and
        // replaced leaves its successor's head alone.
        if ctl.publisher.load(Ordering::Relaxed) == self.id {
            self.wait.clean(word_addr(&ctl.head), WORD);
            // SYNC POINT: Release, as in `publish_head`: every message
            // before is visible with the close mark.
            ctl.head.store(self.head | CLOSED, Ordering::Release);
            fence(Ordering::SeqCst);
            self.wait.wake(&ctl.head, u32::MAX);
        }
        crate::role::release(&ctl.publisher, self.id);
    }
}

/// The sequence number of the newest frame between `oldest` and `head`
/// (`None` if there is none), found by walking the frames; the word that is
/// not what it should be otherwise.
fn last_seq(view: &BroadcastView<'_>, oldest: u32, head: u32) -> Result<Option<u32>, &'static str> {
    let cap = view.capacity;
    let (mut pos, mut last) = (oldest, None);
    // Each step moves at least 8 bytes, so a ring's worth ends the walk.
    for _ in 0..=cap / 8 {
        if pos == head {
            return Ok(last);
        }
        let off = pos & (cap - 1);
        let len = view.ring_word(off + FRAME_LEN as u32).load(Ordering::Relaxed);
        let step = if len == WRAP_MARKER {
            cap - off
        } else if len <= view.max_message() && off + frame_size(len) <= cap {
            last = Some(view.ring_word(off + FRAME_SEQ as u32).load(Ordering::Relaxed));
            frame_size(len)
        } else {
            return Err("frame len");
        };
        if step > head.wrapping_sub(pos) {
            return Err("frame len");
        }
        pos = pos.wrapping_add(step);
    }
    Err("oldest")
}

/// Ring bytes reserved for one message. Write them, then
/// [`commit`](Loan::commit); dropping the loan publishes nothing.
pub struct Loan<'p, 'a, W: Wait> {
    publisher: &'p mut Publisher<'a, W>,
    start: u32,
    len: u32,
}

impl<W: Wait> Loan<'_, '_, W> {
    fn payload(&self) -> *mut u8 {
        let v = &self.publisher.view;
        v.at((self.start & (v.capacity - 1)) + FRAME_HEADER)
    }

    /// The bytes reserved.
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// Whether the loan is for an empty message.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Copies `src` to the start of the loan (32-bit atomic words: sound
    /// while a lagging subscriber reads the same bytes); returns how many
    /// bytes it copied, at most the loan's length.
    pub fn write(&mut self, src: &[u8]) -> usize {
        self.write_at(0, src)
    }

    /// Copies `src` to offset `at` of the loan; returns how many bytes it
    /// copied (none past the loan's end).
    pub fn write_at(&mut self, at: usize, src: &[u8]) -> usize {
        let room = (self.len as usize).saturating_sub(at);
        let n = src.len().min(room);
        if n > 0 {
            let v = &self.publisher.view;
            // `at + n <= len`: inside the frame `reserve` placed.
            v.write_payload((self.start & (v.capacity - 1)) + FRAME_HEADER, at, &src[..n]);
        }
        n
    }

    /// The loaned bytes as a slice, under [`Policy::Block`]: no subscriber
    /// reads them until they are published. `None` under
    /// [`Policy::Overwrite`], where a lagging subscriber may read them while
    /// they are written (use [`write`](Self::write) there).
    pub fn as_mut_slice(&mut self) -> Option<&mut [u8]> {
        if self.publisher.view.policy != Policy::Block {
            return None;
        }
        // SAFETY: block policy: every live subscriber's tail is at or past
        // `end - capacity` (`room`), so none reads these bytes until `head`
        // passes them, and the publisher role is this handle's alone; the
        // borrow of `self` keeps the slice from outliving the loan.
        Some(unsafe { core::slice::from_raw_parts_mut(self.payload(), self.len as usize) })
    }

    /// Publishes the whole loan as one message.
    pub fn commit(self) {
        let len = self.len as usize;
        self.commit_len(len);
    }

    /// Publishes the first `len` bytes (at most the loan's length).
    pub fn commit_len(self, len: usize) {
        crate::crash::point("broadcast.publisher.loaned");
        let len = u32::try_from(len).map_or(self.len, |len| len.min(self.len));
        let p = self.publisher;
        let v = &p.view;
        let off = self.start & (v.capacity - 1);
        v.ring_word(off + FRAME_LEN as u32).store(len, Ordering::Relaxed);
        v.ring_word(off + FRAME_SEQ as u32).store(p.seq, Ordering::Relaxed);
        let from = p.head;
        p.head = self.start.wrapping_add(frame_size(len));
        p.seq = p.seq.wrapping_add(1);
        // Cache hook: the frame goes to memory before `head` publishes it.
        p.wait.clean(v.at(off), (FRAME_HEADER + len) as usize);
        p.publish_head(from);
        crate::crash::point("broadcast.publisher.published");
        // SYNC POINT: Release pairs with the Acquire load of `published` in
        // `Subscriber::join`: a joiner that sees this count sees the head
        // stored above.
        v.ctl.published.store(p.seq, Ordering::Release);
    }
}

/// How far past a frame's end the publisher moves `intent` at once: a
/// sixteenth of the ring, at most 1 KiB (16 messages of 64 bytes), a
/// multiple of 8 (0 below a 128-byte ring). Under the overwrite policy a
/// subscriber more than `capacity - intent_step` bytes behind the newest
/// frame may therefore be told it lagged before the bytes it would read
/// are rewritten, and `oldest` moves in the same steps: the ring may
/// retain one step plus up to one frame (the one the step reaches into)
/// less than the capacity allows. The block policy waits no earlier (see
/// `Publisher::intent_for`).
///
/// Under loom the step is half the ring, so that the models' rings of two
/// and four frames publish some frames with no store of `intent` at all.
const fn intent_step(capacity: u32) -> u32 {
    let step = if cfg!(shm_loom) { capacity / 2 } else { capacity / 16 };
    (if step > 1024 { 1024 } else { step }) & !7
}

/// A reading end of a broadcast channel: one of the subscriber slots the
/// layout declares. Dropping it leaves the channel.
pub struct Subscriber<'a, W: Wait> {
    view: BroadcastView<'a>,
    wait: W,
    id: u32,
    slot: usize,
    pos: u32,
    /// The `tail` this side last stored.
    tail: u32,
    /// The sequence number of the next message, once known.
    seq: Option<u32>,
    /// How far the next frame's sequence number may be past `seq`: 0 when
    /// `seq` is it, 1 after a position taken from two agreeing looks at
    /// `head` (see `agreed_head`), `None` when `seq` is only a lower bound
    /// (`lagged`'s fallback without agreeing looks).
    seq_slack: Option<u32>,
    /// `published` when this subscriber joined: what a lag before its first
    /// message counts from.
    joined_at: u32,
    received: u32,
    missed: u32,
    spin: SpinBudget,
    /// This side found its slot's owner word naming someone else: it no
    /// longer writes the slot and reports [`RecvError::SlotLost`].
    lost: bool,
    /// How `join` took this side's position.
    start: Start,
    /// `next_frame_once` moved past an overwritten wrap marker without
    /// losing anything.
    marker_skipped: bool,
}

/// How `Subscriber::join` took the subscriber's position.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Start {
    /// From two agreeing looks at `head`: the first frame there has
    /// sequence number `joined_at` or `joined_at + 1`.
    Confirmed,
    /// Without them (its fallback): `next_frame` may move it back to `head`
    /// once, and `joined_at` only bounds the first sequence number from
    /// below.
    Unconfirmed,
    /// Moved back to `head` from an unconfirmed position.
    MovedBack,
}

/// At most this many rounds of `Subscriber::join`'s store-fence-look.
const JOIN_ROUNDS: u32 = 16;

/// Where a frame is: its start, payload length and sequence number.
#[derive(Clone, Copy)]
struct Frame {
    start: u32,
    len: u32,
    seq: u32,
}

impl<'a, W: Wait> Subscriber<'a, W> {
    /// Takes a free subscriber slot of the channel in `view` (or one whose
    /// holder [`Wait::is_alive`] says is dead) and joins at the newest
    /// message: it receives what is published from now on.
    pub fn join(view: BroadcastView<'a>, wait: W) -> Result<Self, ClaimError> {
        wait.check()?;
        let id = wait.self_id();
        let mut last = 0;
        let mut slot = None;
        for (s, sub) in view.subs.iter().enumerate() {
            match crate::role::claim(&sub.owner, &wait, id) {
                Ok(()) => {
                    slot = Some(s);
                    break;
                }
                Err(holder) => last = holder,
            }
        }
        let Some(slot) = slot else { return Err(ClaimError::busy(Role::Subscriber, last)) };
        let ctl = view.ctl;
        let sub = &view.subs[slot];
        ctl.waiting[slot].store(0, Ordering::Relaxed);
        sub.received.store(0, Ordering::Relaxed);
        sub.missed.store(0, Ordering::Relaxed);
        // SYNC POINT: Acquire pairs with the Release store of `published` in
        // `commit_len`: the head loaded below is at least the end of the
        // message counted, so the first message this side reads has a
        // sequence number of at least `joined_at`.
        let mut joined_at = ctl.published.load(Ordering::Acquire);
        // SYNC POINT: Acquire pairs with the publisher's Release store of
        // `head`.
        let mut seen = ctl.head.load(Ordering::Acquire) & !CLOSED;
        // Store a tail, fence, look at `head` again, until that look finds
        // `head` within a ring of the tail stored: the publisher then judges
        // this slot by a tail it reads for what it is (a position at most
        // two rings behind its head, not one aliased 2^32 bytes on), and
        // the fence argument below holds. A joiner preempted while the
        // publisher moved a ring or more stores again (review, 2026-12-03);
        // a `head` that keeps jumping (a scribbler) ends the loop after a
        // few rounds, and a lag, if any, is reported when reading.
        //
        // The position is taken only from two looks that agree, and that
        // `intent` vouches for (the publisher never stores a `head` past its
        // `intent`, nor an `intent` a ring past its `head`): one look at a
        // `head` a scribbler moved ahead for an instant latched that value
        // as this side's position, past every frame the publisher then
        // wrote, and each call reported `Corrupted` while the ring stayed
        // held (review, 2026-12-03). After JOIN_ROUNDS rounds without
        // agreement (a publisher that moves at every look), the last look
        // within a ring of the tail stored is taken, as before.
        let mut head = seen;
        let mut start = Start::Unconfirmed;
        for _ in 0..JOIN_ROUNDS {
            sub.tail.store(seen, Ordering::Relaxed);
            // SYNC POINT: pairs with the fence in `Publisher::room` (see
            // there).
            fence(Ordering::SeqCst);
            // Loaded again before each look at `head`, for the same reason
            // as above, and after the previous look: when two looks agree,
            // the `head` taken ends message `joined_at` or `joined_at + 1`
            // (the publisher stored the count of every message before that
            // `head` before storing it), so `Subscriber::lapped_far` may
            // judge a position that read nothing yet by `joined_at`.
            // SYNC POINT: as above.
            joined_at = ctl.published.load(Ordering::Acquire);
            // SYNC POINT: as above.
            head = ctl.head.load(Ordering::Acquire) & !CLOSED;
            if !head.is_multiple_of(8) {
                crate::role::release(&sub.owner, id);
                return Err(ClaimError::corrupted(view.corrupt("head")));
            }
            // Loaded after `head`: the publisher stores `intent` before the
            // `head` it covers (the Release fence in `reserve`, then the
            // Release store in `publish_head`), so this load sees an
            // `intent` at least that far.
            let intent = ctl.intent.load(Ordering::Relaxed);
            if head == seen && intent.wrapping_sub(head) <= view.capacity {
                start = Start::Confirmed;
                break;
            }
            seen = head;
        }
        // SYNC POINT: Release pairs with the publisher's Acquire load of
        // `tail` in `slowest`.
        sub.tail.store(head, Ordering::Release);
        if view.policy == Policy::Block {
            // A publisher may wait on this slot's stale tail (a dead
            // predecessor's): this store is what it waits for.
            notify(&wait, &sub.tail, &ctl.publisher_waiting, 1);
        }
        Ok(Self {
            view,
            wait,
            id,
            slot,
            pos: head,
            tail: head,
            seq: None,
            seq_slack: None,
            joined_at,
            received: 0,
            missed: 0,
            spin: SpinBudget::never_yielding(),
            lost: false,
            start,
            marker_skipped: false,
        })
    }

    /// The slot this subscriber holds (0 to subscribers - 1).
    pub fn slot(&self) -> usize {
        self.slot
    }

    /// The channel's policy.
    pub fn policy(&self) -> Policy {
        self.view.policy
    }

    /// The largest message this channel carries.
    pub fn max_message(&self) -> usize {
        self.view.max_message() as usize
    }

    /// Messages this subscriber lost by lagging, since it joined.
    pub fn missed(&self) -> u64 {
        self.missed as u64
    }

    /// The publisher's id recorded in the segment, 0 if none.
    pub fn peer(&self) -> u32 {
        self.view.ctl.publisher.load(Ordering::Relaxed)
    }

    /// Whether a publisher is attached and alive ([`Wait::is_alive`], a
    /// liveness check). A wait of this subscriber finds a dead publisher by
    /// itself; a thread that waits on several endpoints at once (a wait
    /// set, `select!`) and keeps being woken by another one can ask this
    /// every so often.
    pub fn publisher_alive(&self) -> bool {
        let id = self.peer();
        crate::role::held(id) && self.wait.is_alive(id)
    }

    /// What `head` says about this subscriber's position: `Some(head)` when
    /// a message (or the close) is there to see.
    fn ready(&self, head: u32) -> Option<u32> {
        (head != self.pos).then_some(head)
    }

    /// Waits (or not, without a deadline) for `head` to move past `pos`.
    fn next_head(&mut self, deadline: Option<&mut W::Deadline>) -> Result<u32, RecvError> {
        if self.lost {
            return Err(RecvError::SlotLost);
        }
        let ctl = self.view.ctl;
        // SYNC POINT: Acquire pairs with the publisher's Release store of
        // `head` (`publish_head`).
        let head = ctl.head.load(Ordering::Acquire);
        if let Some(head) = self.ready(head) {
            return Ok(head);
        }
        // `head` at this side's position: nothing new, or a publisher a
        // whole number of 2^32-byte laps on (overwrite policy), which only
        // the count tells (see `lapped_far`).
        if let (Policy::Overwrite, Some((e, slack))) = (self.view.policy, self.expected()) {
            // SYNC POINT: Acquire pairs with the Release store of
            // `published` in `commit_len`: the `head` loaded next is at
            // least the end of every message counted, so while it is still
            // this side's position (a frame sequence `e` to `e + slack`
            // starts there) at most `e + slack` were.
            let published = ctl.published.load(Ordering::Acquire);
            // SYNC POINT: Acquire, as above.
            let head = ctl.head.load(Ordering::Acquire);
            if let Some(head) = self.ready(head) {
                return Ok(head);
            }
            if published.wrapping_sub(e).wrapping_sub(slack) as i32 > 0 {
                return Err(self.lagged("published"));
            }
        }
        // Nothing to read: a polling subscriber too checks its slot and
        // puts a scribbled tail back, and a waiting one at every look (see
        // `idle_look`).
        if let Err(e) = self.idle_look() {
            self.lost = true;
            return Err(e);
        }
        let Some(deadline) = deadline else { return Err(RecvError::Empty) };
        let pos = self.pos;
        let got = wait_for(
            &self.wait,
            &self.spin,
            &ctl.head,
            &ctl.waiting[self.slot],
            // It sleeps only while `head` is `pos` (`check` below).
            Announce::Value(pos | WAITING_AT),
            Some(&ctl.publisher),
            None,
            deadline,
            |head| {
                if head != pos {
                    return Some(Ok(head));
                }
                self.idle_look().err().map(Err)
            },
        );
        match got {
            Ok(Ok(head)) => Ok(head),
            Ok(Err(lost)) => {
                self.lost = true;
                Err(lost)
            }
            Err(stop) => Err(stop.into_error(
                || crate::role::holder_died(&ctl.publisher, &self.wait),
                RecvError::PeerDied,
                RecvError::Timeout,
            )),
        }
    }

    /// The next frame at or after `pos`, following a wrap marker; `Err` with
    /// the error to report (lag included).
    fn next_frame(&mut self, mut deadline: Option<&mut W::Deadline>) -> Result<Frame, RecvError> {
        let got = self.next_frame_once(deadline.as_deref_mut());
        if !core::mem::take(&mut self.marker_skipped) {
            return got;
        }
        // Moved past an overwritten wrap marker, nothing lost: look again,
        // once (a second such move reports its `Lagged { missed: 0 }`).
        let got = self.next_frame_once(deadline);
        self.marker_skipped = false;
        got
    }

    fn next_frame_once(&mut self, mut deadline: Option<&mut W::Deadline>) -> Result<Frame, RecvError> {
        let head = loop {
            let head = self.next_head(deadline.as_deref_mut())?;
            // A position ahead of `head` (by at most a ring) from which
            // nothing was read yet, taken by a join that found no two
            // looks at `head` agreeing: a scribbled `head` (`head` never
            // moves back). Nothing read, so nothing is read twice: move to
            // `head` and look again, once. Never after a confirmed join:
            // there `head` "behind" is a publisher 2^32 bytes on (a lap,
            // reported as before) or a `head` scribbled back, which must
            // not re-deliver old messages (review, 2026-12-03).
            let bare = head & !CLOSED;
            let cap = self.view.capacity;
            if self.seq.is_none()
                && self.start == Start::Unconfirmed
                && bare.is_multiple_of(8)
                && bare != self.pos
                && self.pos.wrapping_sub(bare) <= cap
            {
                crate::event::event!("broadcast: subscriber {} stood past the head; moving back to it", self.id);
                self.pos = bare;
                self.store_tail();
                // Confirmed as a join is, when two looks agree (so that a
                // later far lap can be told, review 2026-12-03).
                self.start = match self.agreed_head() {
                    Some((head, published)) if head == bare => {
                        self.joined_at = published;
                        Start::Confirmed
                    }
                    _ => Start::MovedBack,
                };
                continue;
            }
            break head;
        };
        if head == self.pos | CLOSED {
            // Messages skipped when this side last resumed at the head (see
            // `lagged`) and never followed by another frame: count them
            // before reporting the end. The close mark is stored after the
            // last count, so this load sees it.
            // SYNC POINT: Acquire pairs with the Release store of
            // `published` in `commit_len`.
            let published = self.view.ctl.published.load(Ordering::Acquire);
            if let Some(expected) = self.seq {
                let skipped = published.wrapping_sub(expected);
                if skipped > 0 && (skipped as i32) > 0 {
                    let pos = self.pos;
                    return Err(self.skip_to(pos, Some(published), skipped));
                }
            }
            return Err(RecvError::Closed);
        }
        let v = self.view;
        let cap = v.capacity;
        let head = head & !CLOSED;
        let start = self.pos;
        let mut pos = start;
        for _ in 0..2 {
            let ahead = head.wrapping_sub(pos);
            if ahead == 0 {
                break;
            }
            let off = pos & (cap - 1);
            let len = v.ring_word(off + FRAME_LEN as u32).load(Ordering::Relaxed);
            let seq = v.ring_word(off + FRAME_SEQ as u32).load(Ordering::Relaxed);
            let intent = v.intent_after_read();
            if v.lapped(pos, intent) {
                let lag = self.lagged("intent");
                // The wrap marker at this side's position was overwritten
                // but the frame after it was not (`lagged` moved there and
                // counted nothing): nothing was lost, `next_frame` reads on
                // (it was reported as `Lagged { missed: 0 }`, review
                // 2026-12-03).
                self.marker_skipped = lag == (RecvError::Lagged { missed: 0 }) && pos == start;
                return Err(lag);
            }
            if !head.is_multiple_of(8) {
                return Err(RecvError::Corrupted(v.corrupt("head")));
            }
            // From here on, what looks corrupted may be a lap of 2^31 bytes
            // or more, which `lapped` cannot see: the count tells.
            if ahead > cap {
                return Err(self.lap_or(v.corrupt("head")));
            }
            if len == WRAP_MARKER {
                pos = pos.wrapping_add(cap - off);
                continue;
            }
            if len > v.max_message() || off + frame_size(len) > cap || frame_size(len) > ahead {
                return Err(self.lap_or(v.corrupt("frame len")));
            }
            // A sequence number behind the expected one cannot be; one
            // ahead means messages this side skipped when it last resumed
            // (see `lagged`): report them, and read this frame next.
            // The first frame after a confirmed join is `joined_at` or the
            // next (see `Start::Confirmed`); another is a lap or garbage.
            if self.seq.is_none() && self.start == Start::Confirmed && seq.wrapping_sub(self.joined_at) > 1 {
                return Err(self.lap_or(v.corrupt("frame seq")));
            }
            if let Some(expected) = self.seq {
                let ahead = seq.wrapping_sub(expected);
                if (ahead as i32) < 0 {
                    return Err(self.lap_or(v.corrupt("frame seq")));
                }
                if ahead > 0 && self.lapped_far(self.pos, None) {
                    return Err(self.lagged("published"));
                }
                if ahead > 0 {
                    self.pos = pos;
                    return Err(self.skip_to(pos, Some(seq), ahead));
                }
            }
            self.pos = pos;
            return Ok(Frame { start: pos, len, seq });
        }
        // Two wrap markers in a row, or a marker right at `head`.
        Err(self.lap_or(v.corrupt("frame len")))
    }

    /// Whether the frame at `pos` with sequence number `seq` (or, with
    /// `None`, the one this side expects next) was overwritten 2^31 bytes
    /// ago or more (policy overwrite).
    ///
    /// [`BroadcastView::lapped`] compares positions as signed 32-bit
    /// distances and cannot see such a lap: an idle subscriber then found
    /// `head` "more than a ring ahead" and reported `Corrupted` at every
    /// call, or, about 2^32 bytes on, could take another frame's bytes for
    /// its own (review, 2026-12-03). Sequence numbers wrap only after 2^31
    /// messages: the oldest intact frame's is after `seq` exactly when the
    /// frame was overwritten. Under the block policy nobody laps a
    /// subscriber that holds its slot, so this is not consulted there.
    fn lapped_far(&self, pos: u32, seq: Option<u32>) -> bool {
        let v = self.view;
        if v.policy != Policy::Overwrite {
            return false;
        }
        // The expected sequence number is `e` to `e + slack`; with no
        // count to go by, such a lap reads as corruption.
        let Some((e, slack)) = seq.map(|seq| (seq, 0)).or_else(|| self.expected()) else { return false };
        let since = v.ctl.published.load(Ordering::Relaxed).wrapping_sub(e);
        if (since as i32) <= 0 {
            return false;
        }
        // Each message moved the publisher at most a ring (a frame of at
        // most half the ring, and the gap a wrap marker skips): under 2^31
        // bytes in all, `lapped` told. The common case: one load, of a
        // word on the line of `intent`.
        if (u64::from(since) + u64::from(slack)) * u64::from(v.capacity) < 1 << 31 {
            return false;
        }
        // The publisher laps faster than this side can look: it was lapped.
        let Some((at, oldest)) = self.oldest_frame() else { return true };
        let d = oldest.wrapping_sub(e);
        // With `slack`, a frame `d <= slack` on is this side's own only at
        // its position or just past a wrap marker there.
        let next_lap = pos.wrapping_add(v.capacity - (pos & (v.capacity - 1)));
        (d as i32) > slack as i32 || (d != 0 && d <= slack && at != pos && at != next_lap)
    }

    /// The sequence number of the frame at this side's position: `(e,
    /// slack)` for `e` to `e + slack`, or `None` if unknown (a position a
    /// join took without agreeing looks, from which nothing was read yet,
    /// or `lagged`'s fallback took).
    fn expected(&self) -> Option<(u32, u32)> {
        match (self.seq, self.start) {
            (Some(seq), _) => self.seq_slack.map(|slack| (seq, slack)),
            (None, Start::Confirmed) => Some((self.joined_at, 1)),
            _ => None,
        }
    }

    /// What a frame or `head` that makes no sense at this side's position
    /// means: a lap (resume at the oldest message) if the publisher went
    /// 2^31 bytes or more past it, else corruption at `at`.
    fn lap_or(&mut self, at: Corruption) -> RecvError {
        if self.lapped_far(self.pos, None) {
            self.lagged("published")
        } else {
            RecvError::Corrupted(at)
        }
    }

    /// The position and sequence number of the oldest intact frame, or
    /// `None` if sixteen looks found none (a publisher that laps faster than
    /// this side can look, or a scribbled `oldest`).
    fn oldest_frame(&self) -> Option<(u32, u32)> {
        let v = self.view;
        let cap = v.capacity;
        let ctl = v.ctl;
        for _ in 0..16 {
            // SYNC POINT: Acquire pairs with the publisher's Release store of
            // `oldest`: every frame from it to the head it stored before is
            // published.
            let mut oldest = ctl.oldest.load(Ordering::Acquire);
            // SYNC POINT: Acquire, as in `next_head`.
            let head = ctl.head.load(Ordering::Acquire) & !CLOSED;
            if !oldest.is_multiple_of(8) || head.wrapping_sub(oldest) > cap {
                continue;
            }
            let mut off = oldest & (cap - 1);
            // One read of each header word; the lap check below vouches for
            // the ones used.
            let mut len = v.ring_word(off + FRAME_LEN as u32).load(Ordering::Relaxed);
            if oldest != head && len == WRAP_MARKER {
                oldest = oldest.wrapping_add(cap - off);
                off = 0;
                len = v.ring_word(FRAME_LEN as u32).load(Ordering::Relaxed);
            }
            // `oldest` at `head`: the next frame is being written; look again.
            if head.wrapping_sub(oldest) == 0 || head.wrapping_sub(oldest) > cap {
                crate::sync::spin_hint();
                continue;
            }
            let seq = v.ring_word(off + FRAME_SEQ as u32).load(Ordering::Relaxed);
            if len == WRAP_MARKER || v.lapped(oldest, v.intent_after_read()) {
                continue;
            }
            return Some((oldest, seq));
        }
        None
    }

    /// After a lap (`word` said so): moves to the oldest intact message and
    /// says how many were lost.
    fn lagged(&mut self, word: &'static str) -> RecvError {
        let v = self.view;
        let ctl = v.ctl;
        if let Some((oldest, seq)) = self.oldest_frame() {
            let missed = seq.wrapping_sub(self.seq.unwrap_or(self.joined_at));
            // After a lap the oldest frame is past this side's (the
            // publisher moves `oldest` before writing over a frame), and
            // `joined_at` is at most the expected sequence number: the
            // count is positive, and the oldest frame past this side's
            // position (at the frame after a wrap marker there, the marker
            // being what was overwritten, the count is 0). A frame at or up
            // to a ring behind this side's position whose count is not
            // positive is one it read already, or the one it expects where
            // it stands: `word` claimed a lap that did not happen
            // (scribbled). Moving there would hand out old messages again
            // (review, 2026-12-03): stay. A count that reads as negative
            // with the frame elsewhere is a lap of 2^31 messages or more:
            // the count is right modulo 2^32.
            if (missed as i32) <= 0 && self.pos.wrapping_sub(oldest) <= v.capacity {
                return RecvError::Corrupted(v.corrupt(word));
            }
            return self.skip_to(oldest, Some(seq), missed);
        }
        // The publisher laps us faster than we can look, or died with the
        // next frame half written: start at the newest message, taken, when
        // the publisher lets two looks agree, as a join takes it (the first
        // frame there is `published` or the next; a later far lap can be
        // told then, review 2026-12-03).
        let (head, published, slack) = match self.agreed_head() {
            Some((head, published)) => (head, published, Some(1)),
            None => {
                // `published` is loaded first: it is stored after the head
                // it counts, so the frame at the head loaded next has at
                // least that sequence number; if it has more, the next read
                // reports the difference as a lag too.
                // SYNC POINT: Acquire pairs with the Release store of
                // `published` in `commit_len`.
                let published = ctl.published.load(Ordering::Acquire);
                // SYNC POINT: Acquire, as in `next_head`.
                (ctl.head.load(Ordering::Acquire) & !CLOSED, published, None)
            }
        };
        // Never a position: the next read would index the ring off a word.
        if !head.is_multiple_of(8) {
            return RecvError::Corrupted(v.corrupt("head"));
        }
        let missed = published.wrapping_sub(self.seq.unwrap_or(self.joined_at));
        let missed = if (missed as i32) < 0 { 0 } else { missed };
        let lag = self.skip_to(head, Some(published), missed);
        self.seq_slack = slack;
        lag
    }

    /// `head` (without the close mark) and `published` from two looks at
    /// `head` that agree, `published` loaded between them, as `join` takes
    /// them: the frame at that `head` has sequence number `published` or the
    /// next (the publisher stored the count of every message before that
    /// `head` before storing it, and stores the count after it). `None` if
    /// `head` moved at every look of `JOIN_ROUNDS`.
    fn agreed_head(&self) -> Option<(u32, u32)> {
        let ctl = self.view.ctl;
        // SYNC POINT: Acquire, as in `next_head`.
        let mut seen = ctl.head.load(Ordering::Acquire) & !CLOSED;
        for _ in 0..JOIN_ROUNDS {
            // SYNC POINT: Acquire pairs with the Release store of `published`
            // in `commit_len`.
            let published = ctl.published.load(Ordering::Acquire);
            // SYNC POINT: Acquire, as in `next_head`.
            let head = ctl.head.load(Ordering::Acquire) & !CLOSED;
            if head == seen {
                return Some((head, published));
            }
            seen = head;
        }
        None
    }

    fn skip_to(&mut self, pos: u32, seq: Option<u32>, missed: u32) -> RecvError {
        crate::event::event!("broadcast: subscriber {} lagged and lost {} messages", self.id, missed);
        self.pos = pos;
        self.seq = seq;
        self.seq_slack = Some(0);
        self.missed = self.missed.wrapping_add(missed);
        let sub = &self.view.subs[self.slot];
        sub.missed.store(self.missed, Ordering::Relaxed);
        self.store_tail();
        RecvError::Lagged { missed: missed as u64 }
    }

    /// Whenever there is nothing to read (a poll that finds nothing, every
    /// look of a wait, including the one after each sleep of at most the
    /// liveness interval, and a wait set's look through `is_ready`):
    ///
    /// - `Err(SlotLost)` if the slot's owner word no longer names this side
    ///   (the publisher let it go as dead, or a peer wrote the word): its
    ///   tail no longer holds the publisher, and storing it would write over
    ///   the tail of whoever took the slot (review, 2026-12-03);
    /// - block policy: puts this subscriber's `tail` back if someone else
    ///   wrote it. Nobody else writes it while this side holds the slot, and
    ///   a value that is no reader's position holds a Block publisher (see
    ///   `Publisher::slowest`) while this side, with nothing new to read,
    ///   would not store it again: both would wait until their timeouts,
    ///   again and again.
    fn idle_look(&self) -> Result<(), RecvError> {
        let sub = &self.view.subs[self.slot];
        if self.lost || sub.owner.load(Ordering::Relaxed) != self.id {
            crate::event::event!("broadcast: subscriber {} no longer holds slot {}", self.id, self.slot);
            return Err(RecvError::SlotLost);
        }
        if self.view.policy != Policy::Block || sub.tail.load(Ordering::Relaxed) == self.tail {
            return Ok(());
        }
        crate::event::event!("broadcast: subscriber {}'s tail was overwritten; restoring it", self.id);
        // SYNC POINT: Release pairs with the publisher's Acquire load of
        // `tail` in `slowest`: the bytes before it were read (as when it was
        // first stored).
        sub.tail.store(self.tail, Ordering::Release);
        notify(&self.wait, &sub.tail, &self.view.ctl.publisher_waiting, 1);
        Ok(())
    }

    /// Publishes this subscriber's position (and wakes a publisher that
    /// waits for it to get this far, block policy).
    fn store_tail(&mut self) {
        let sub = &self.view.subs[self.slot];
        // The slot is someone else's now (see `idle_look`): leave its tail
        // alone, and report the loss at the next call.
        if sub.owner.load(Ordering::Relaxed) != self.id {
            self.lost = true;
            return;
        }
        let from = core::mem::replace(&mut self.tail, self.pos);
        // SYNC POINT: Release pairs with the publisher's Acquire load of
        // `tail` in `slowest`: the bytes before are read.
        sub.tail.store(self.pos, Ordering::Release);
        if self.view.policy == Policy::Block {
            // SYNC POINT: pairs with the fence in `wait_for` of a publisher
            // announcing itself in `publisher_waiting` (as `notify`).
            fence(Ordering::SeqCst);
            let waiting = self.view.ctl.publisher_waiting.load(Ordering::Relaxed);
            if wakes_at(waiting, from, self.pos, true) {
                self.wait.wake(&sub.tail, 1);
            }
        }
    }

    /// After reading `frame`: checks it was not overwritten meanwhile, and
    /// moves past it.
    fn finish_frame(&mut self, frame: Frame) -> Result<(), RecvError> {
        let v = self.view;
        let by_intent = v.lapped(frame.start, v.intent_after_read());
        if by_intent || self.lapped_far(frame.start, Some(frame.seq)) {
            // `frame.seq` was read intact (`next_frame` checked): the lost
            // messages count from it.
            self.seq = Some(frame.seq);
            return Err(self.lagged(if by_intent { "intent" } else { "published" }));
        }
        self.pos = frame.start.wrapping_add(frame_size(frame.len));
        self.seq = Some(frame.seq.wrapping_add(1));
        self.seq_slack = Some(0);
        self.received = self.received.wrapping_add(1);
        v.subs[self.slot].received.store(self.received, Ordering::Relaxed);
        self.store_tail();
        Ok(())
    }

    fn payload(&self, frame: Frame) -> *mut u8 {
        let v = &self.view;
        v.at((frame.start & (v.capacity - 1)) + FRAME_HEADER)
    }

    fn recv_deadline(&mut self, buf: &mut [u8], deadline: Option<&mut W::Deadline>) -> Result<usize, RecvError> {
        explain(&self.wait, self.wait.check().map_err(RecvError::from))?;
        let frame = self.next_frame(deadline);
        let frame = explain(&self.wait, frame)?;
        let len = frame.len as usize;
        if buf.len() < len {
            return Err(RecvError::BufferTooSmall { needed: len });
        }
        crate::crash::point("broadcast.subscriber.reading");
        // Cache hook: this side's copy of the frame may be stale.
        self.wait.invalidate(self.payload(frame), len);
        // `next_frame` checked the frame lies inside the ring.
        let v = self.view;
        v.read_payload((frame.start & (v.capacity - 1)) + FRAME_HEADER, &mut buf[..len]);
        self.finish_frame(frame)?;
        Ok(len)
    }

    /// Copies the next message into `buf` without blocking; returns its
    /// length.
    pub fn try_recv(&mut self, buf: &mut [u8]) -> Result<usize, RecvError> {
        self.recv_deadline(buf, None)
    }

    /// Copies the next message into `buf`, waiting at most `timeout`.
    pub fn recv_timeout(&mut self, buf: &mut [u8], timeout: Duration) -> Result<usize, RecvError> {
        let mut deadline = self.wait.deadline(Some(timeout));
        self.recv_deadline(buf, Some(&mut deadline))
    }

    fn read_deadline(&mut self, deadline: Option<&mut W::Deadline>) -> Result<Message<'_, 'a, W>, RecvError> {
        explain(&self.wait, self.wait.check().map_err(RecvError::from))?;
        let frame = self.next_frame(deadline);
        let frame = explain(&self.wait, frame)?;
        self.wait.invalidate(self.payload(frame), frame.len as usize);
        Ok(Message { subscriber: self, frame, done: false })
    }

    /// The next message, in place, without blocking.
    pub fn try_read(&mut self) -> Result<Message<'_, 'a, W>, RecvError> {
        self.read_deadline(None)
    }

    /// The next message, in place, waiting at most `timeout`.
    pub fn read_timeout(&mut self, timeout: Duration) -> Result<Message<'_, 'a, W>, RecvError> {
        let mut deadline = self.wait.deadline(Some(timeout));
        self.read_deadline(Some(&mut deadline))
    }
}

impl<W: Wait> crate::ready::Waitable for Subscriber<'_, W> {
    fn is_ready(&self) -> bool {
        // SYNC POINT: Acquire pairs with the publisher's Release store of
        // `head`. It differs from this side's position when a message, the
        // close or a bad value is there to report.
        if self.view.ctl.head.load(Ordering::Acquire) != self.pos {
            return true;
        }
        // Nothing to read: a wait set waits only through this look, so it
        // checks the slot and repairs the tail as a poll does (a scribbled
        // tail held a publisher for the whole of a wait set's wait; review,
        // 2026-12-03). A lost slot is an error for the next call to report.
        self.idle_look().is_err()
    }

    fn wake_word(&self) -> &crate::AtomicU32 {
        &self.view.ctl.head
    }

    fn announce(&self, asleep: bool) {
        // 1, not `pos | WAITING_AT`: a waiter on several words loads the
        // value it sleeps on apart from `is_ready`, possibly a newer head
        // than `pos`, so it must be woken at every move.
        self.view.ctl.waiting[self.slot].store(u32::from(asleep), Ordering::Relaxed);
    }

    fn peer_gone(&self) -> bool {
        let id = self.peer();
        crate::role::held(id) && !self.wait.is_alive(id)
    }
}

impl<W: Wait> Drop for Subscriber<'_, W> {
    fn drop(&mut self) {
        let sub = &self.view.subs[self.slot];
        if sub.owner.load(Ordering::Relaxed) == self.id {
            self.view.ctl.waiting[self.slot].store(0, Ordering::Relaxed);
            // SYNC POINT: Release pairs with the publisher's Acquire load of
            // `tail`: this slot no longer holds the ring back.
            sub.tail.store(self.pos | CLOSED, Ordering::Release);
            if self.view.policy == Policy::Block {
                notify(&self.wait, &sub.tail, &self.view.ctl.publisher_waiting, 1);
            }
        }
        crate::role::release(&sub.owner, self.id);
    }
}

/// A message read in place. [`finish`](Message::finish) it to move past it
/// and learn whether what was read is intact (dropping it does the same,
/// without the answer).
pub struct Message<'s, 'a, W: Wait> {
    subscriber: &'s mut Subscriber<'a, W>,
    frame: Frame,
    done: bool,
}

impl<W: Wait> Message<'_, '_, W> {
    /// The message's length in bytes.
    pub fn len(&self) -> usize {
        self.frame.len as usize
    }

    /// Whether the message is empty.
    pub fn is_empty(&self) -> bool {
        self.frame.len == 0
    }

    /// The message's sequence number (one more for each message published).
    pub fn seq(&self) -> u32 {
        self.frame.seq
    }

    /// Copies the message (at most `dst.len()` bytes of it) into `dst`;
    /// returns how many bytes it copied. Under [`Policy::Overwrite`] the
    /// bytes may be overwritten while they are copied: trust them only
    /// once [`finish`](Self::finish) says `Ok`.
    ///
    /// The same name as the queue's [`ReadGrant::read_into`](crate::queue::ReadGrant::read_into)
    /// and the direct mailbox's `Request::read_into`.
    pub fn read_into(&self, dst: &mut [u8]) -> usize {
        let n = dst.len().min(self.len());
        // `next_frame` checked the frame lies inside the ring.
        let v = self.subscriber.view;
        v.read_payload((self.frame.start & (v.capacity - 1)) + FRAME_HEADER, &mut dst[..n]);
        n
    }

    /// The former name of [`read_into`](Self::read_into).
    #[deprecated(since = "0.1.0", note = "renamed `read_into`, as on the queue and the direct mailbox")]
    pub fn copy_to(&self, dst: &mut [u8]) -> usize {
        self.read_into(dst)
    }

    /// The message as a slice, under [`Policy::Block`], where the publisher
    /// does not write these bytes while this subscriber's position is before
    /// them. `None` under [`Policy::Overwrite`].
    pub fn as_slice(&self) -> Option<&[u8]> {
        if self.subscriber.view.policy != Policy::Block {
            return None;
        }
        // SAFETY: block policy: this subscriber's `tail` is at or before the
        // frame, so the publisher (which waits for every live subscriber)
        // does not write it until `finish` moves the tail; the slice borrows
        // `self`, which holds the subscriber.
        Some(unsafe { core::slice::from_raw_parts(self.subscriber.payload(self.frame), self.len()) })
    }

    /// Moves past the message; `Err(Lagged)` if it may have been
    /// overwritten while it was read (overwrite policy): discard what was
    /// read then, and read again from the oldest message.
    pub fn finish(mut self) -> Result<(), RecvError> {
        self.done = true;
        self.subscriber.finish_frame(self.frame)
    }
}

impl<W: Wait> Drop for Message<'_, '_, W> {
    fn drop(&mut self) {
        if !self.done {
            let _ = self.subscriber.finish_frame(self.frame);
        }
    }
}

#[cfg(all(test, not(shm_loom)))]
mod tests;
