//! A single-producer single-consumer queue of variable-length messages in a
//! byte ring, with zero-copy grants on both sides.
//!
//! ```
//! use shm_core::mock::{MockRegion, ThreadWait};
//! use shm_core::{Layout, Segment};
//!
//! let layout = Layout::new().queue("events", 1024).unwrap();
//! let region = MockRegion::new(layout.size());
//! let segment = Segment::create(region.region(), &layout, 1, 0).unwrap();
//! let mut tx = segment.producer("events", ThreadWait::new(1)).unwrap();
//! let mut rx = segment.consumer("events", ThreadWait::new(2)).unwrap();
//!
//! tx.try_send(b"hello").unwrap();
//! let mut grant = tx.try_grant(3).unwrap(); // write in place
//! grant.copy_from_slice(b"abc");
//! grant.commit();
//!
//! let mut buf = [0u8; 16];
//! let n = rx.try_recv(&mut buf).unwrap();
//! assert_eq!(&buf[..n], b"hello");
//! let msg = rx.try_read().unwrap();          // read in place
//! assert_eq!(&msg[..], b"abc");
//! msg.release();
//! ```
//!
//! # Byte layout
//!
//! The control lines, the ring and the frames are tabled in
//! [`crate::format::queue`]. The largest message is
//! [`max_message`]`(capacity)`, which makes every message fit once the ring
//! is empty.
//!
//! # Closing
//!
//! Dropping a [`Producer`] stores its `head` with bit 0 ([`CLOSED`]) set
//! and wakes the consumer: the consumer receives every message committed
//! before, then gets [`RecvError::Closed`] (as with `std::sync::mpsc`), not
//! a timeout. Dropping a [`Consumer`] does the same to `tail`: the producer
//! gets [`SendError::Closed`] the next time it needs room (sends go on
//! succeeding while the ring has room, since the producer reads `tail` only
//! then). Positions are multiples of 8, so bit 0 is free; a producer or
//! consumer that claims the role again clears it with its next store.
//! Closing changes the word the peer sleeps on, so the wake-up cannot be
//! lost (a flag elsewhere could be set between the peer's last look and its
//! sleep).
//!
//! # Design
//!
//! The data path uses loads and stores only (no compare-and-swap), so the
//! queue works on thumbv6m. `head` and `tail` live on separate cache lines,
//! each with the words its writer reads on every message: a side's
//! *waiting* flag sits on the other side's line, so the notifier's check
//! ("does my peer sleep?") hits its own cache line; the sleeper writes there
//! only when it goes to sleep. Each side keeps its own position locally and
//! the last value of the other's it saw, and loads the other's position
//! again only when that copy says full (producer) or empty (consumer), so a
//! busy queue moves a cache line per batch, not per message. Every value
//! loaded is checked (`head - tail <= capacity`, alignment, frame bounds)
//! against the capacity validated when the segment was opened; a bad value
//! is [`Corruption`], never an out-of-bounds access.

use core::marker::PhantomData;
use core::ops::{Deref, DerefMut};
use core::ptr::NonNull;
use core::time::Duration;

use crate::error::{ClaimError, Corruption, RecvError, Role, SendError};
use crate::sync::{AtomicU32, Ordering};
use crate::wait::{claim_lazy, explain, notify, notify_lazily, wait_for, word_addr, Announce, SpinBudget, Wait, WORD};

/// How far ahead of the message it reads the consumer prefetches (bytes).
/// 64-byte messages, copy, 2-vCPU VM in a phase where a cache-line
/// transfer took about 100 ns: 7.8–10.7 M msgs/s without, 16–22 M at 512
/// bytes, 16–27 M at 1024, 25–29 M at 2048.
#[cfg(target_arch = "x86_64")]
const PREFETCH_AHEAD: u32 = 2048;

/// A producer waiting for room looks at `tail` once every this many spins
/// (about 1.3 µs where a `pause` takes 10 ns, 5 µs where it takes 40 ns),
/// so it notices room that much later at most. Each look takes `tail`'s
/// line from the consumer, which stores `tail` at every message it frees:
/// looking at every spin made that line move twice per message and kept a
/// full ring full. 64-byte grants, 2-vCPU VM, alternating runs: 8.5–20.5 M
/// msgs/s looking at every spin, 23–26 M every 32nd, 31–33 M every 128th
/// (copies, which the consumer frees more slowly, 28–30 M in all three).
const ROOM_LOOK_EVERY: u32 = 128;

/// Bit 0 of `head` (or `tail`): the producer (or consumer) closed.
pub use crate::format::queue::CLOSED;
use crate::format::queue::{frame_size, QueueControl, FRAME_HEADER, FRAME_LEN, FRAME_RESERVED, WRAP_MARKER};

// The format's rule, as the queue's API.
pub use crate::format::queue::max_message;

impl QueueControl {
    /// A snapshot of the counters, for inspection tools.
    pub fn snapshot(&self) -> QueueStats {
        QueueStats {
            head: self.head.load(Ordering::Relaxed),
            tail: self.tail.load(Ordering::Relaxed),
            sent: self.sent.load(Ordering::Relaxed),
            received: self.received.load(Ordering::Relaxed),
            producer: self.producer.load(Ordering::Relaxed),
            consumer: self.consumer.load(Ordering::Relaxed),
            producer_flags: self.producer_flags.load(Ordering::Relaxed),
            consumer_flags: self.consumer_flags.load(Ordering::Relaxed),
        }
    }
}

/// Counters of a queue, as read (not validated) from its control words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct QueueStats {
    /// Bytes ever committed.
    pub head: u32,
    /// Bytes ever released.
    pub tail: u32,
    /// Messages committed.
    pub sent: u32,
    /// Messages released.
    pub received: u32,
    /// Producer id, 0 if none.
    pub producer: u32,
    /// Consumer id, 0 if none.
    pub consumer: u32,
    /// The producer's flags word ([`LAZY_WAKE`](crate::format::queue::LAZY_WAKE):
    /// it wakes the consumer without a store-load fence).
    pub producer_flags: u32,
    /// The consumer's flags word.
    pub consumer_flags: u32,
}

#[doc(hidden)]
/// Where a queue's words and ring are; the geometry this side validated.
#[derive(Clone, Copy)]
pub struct QueueView<'a> {
    ctl: &'a QueueControl,
    ring: NonNull<u8>,
    capacity: u32,
    index: u8,
    _ring: PhantomData<&'a [u8]>,
}

// SAFETY: the view only hands out access through atomics and through the
// grant protocol, which is safe to drive from any thread.
unsafe impl Send for QueueView<'_> {}
// SAFETY: as above; shared use from several threads only reads the view.
unsafe impl Sync for QueueView<'_> {}

impl<'a> QueueView<'a> {
    /// A view over `ctl` and a ring of `capacity` bytes at `ring`.
    ///
    /// # Safety
    ///
    /// - `ring` is valid for reads and writes of `capacity` bytes for `'a`,
    ///   8-byte aligned, and not accessed through Rust references by anyone
    ///   else (other processes may write it at any time);
    /// - `capacity` is a power of two from 64 to 2^30;
    /// - `index` is the channel's index in its segment (used in errors).
    pub unsafe fn new(ctl: &'a QueueControl, ring: NonNull<u8>, capacity: u32, index: u8) -> Self {
        Self { ctl, ring, capacity, index, _ring: PhantomData }
    }

    /// The control words.
    pub fn control(&self) -> &'a QueueControl {
        self.ctl
    }

    /// The largest message this queue carries.
    pub fn max_message(&self) -> u32 {
        max_message(self.capacity)
    }

    fn corrupt(&self, word: &'static str) -> Corruption {
        Corruption::channel(self.index, word)
    }

    /// Reads the frame word at ring offset `off` (8-aligned, < capacity).
    fn read_len(&self, off: u32) -> u32 {
        debug_assert!(off.is_multiple_of(8) && off < self.capacity);
        // SAFETY: `off` is below the capacity and 8-aligned (callers derive
        // it from a position checked to be 8-aligned, masked by capacity-1),
        // and `ring` is valid for `capacity` bytes per `QueueView::new`. A
        // volatile copy into a local never forms a reference to shared bytes.
        unsafe { self.ring.as_ptr().add(off as usize + FRAME_LEN).cast::<u32>().read_volatile() }
    }

    fn write_len(&self, off: u32, len: u32) {
        debug_assert!(off.is_multiple_of(8) && off + FRAME_HEADER <= self.capacity);
        // SAFETY: as in `read_len`; the producer owns [head, tail+capacity),
        // which contains this frame header (checked in `reserve`).
        unsafe {
            let frame = self.ring.as_ptr().add(off as usize);
            frame.add(FRAME_LEN).cast::<u32>().write_volatile(len);
            frame.add(FRAME_RESERVED).cast::<u32>().write_volatile(0);
        }
    }

    /// Checks `head - tail` against the capacity and alignment.
    fn used(&self, head: u32, tail: u32) -> Result<u32, Corruption> {
        let used = head.wrapping_sub(tail);
        if used > self.capacity {
            return Err(self.corrupt("head"));
        }
        Ok(used)
    }
}

/// The writing end of a queue. One per queue at a time (claimed in the
/// segment); dropping it lets the role go.
pub struct Producer<'a, W: Wait> {
    view: QueueView<'a>,
    wait: W,
    head: u32,
    /// The consumer's `tail` as last loaded (and checked).
    tail_seen: u32,
    id: u32,
    /// How long waits for room spin (see [`Wait::adaptive_spin`]).
    spin: SpinBudget,
    /// Whether this side wakes the consumer lazily ([`Wait::lazy_notify`]).
    lazy: bool,
}

impl<'a, W: Wait> Producer<'a, W> {
    /// Claims the producer role of the queue in `view`.
    ///
    /// The role is free if its word is 0 or its holder is dead
    /// ([`Wait::is_alive`]); a restarted producer resumes at the committed
    /// head.
    pub fn claim(view: QueueView<'a>, wait: W) -> Result<Self, ClaimError> {
        wait.check()?;
        let id = wait.self_id();
        crate::role::claim(&view.ctl.producer, &wait, id).map_err(|holder| ClaimError::busy(Role::Producer, holder))?;
        let head = view.ctl.head.load(Ordering::Relaxed) & !CLOSED;
        // SYNC POINT: Acquire pairs with the Release store of `tail` in
        // `ReadGrant::drop`.
        let tail = view.ctl.tail.load(Ordering::Acquire) & !CLOSED;
        // Corrupted positions: let the role go again.
        let release = |e| {
            crate::role::release(&view.ctl.producer, id);
            ClaimError::corrupted(e)
        };
        if !head.is_multiple_of(8) {
            return Err(release(view.corrupt("head")));
        }
        view.used(head, tail).map_err(release)?;
        // Open again: clear a previous producer's close mark (only the
        // producer writes `head`, and we hold the role now).
        // SYNC POINT: Release pairs with the consumer's Acquire loads of
        // `head`; it republishes what the previous producer committed.
        view.ctl.head.store(head, Ordering::Release);
        let lazy = claim_lazy(&wait, &view.ctl.producer_flags);
        Ok(Self { view, wait, head, tail_seen: tail, id, spin: SpinBudget::looking_every(ROOM_LOOK_EVERY), lazy })
    }

    /// The largest message this queue carries.
    pub fn max_message(&self) -> usize {
        self.view.max_message() as usize
    }

    /// The consumer id recorded in the segment, 0 if none.
    pub fn peer(&self) -> u32 {
        self.view.ctl.consumer.load(Ordering::Relaxed)
    }

    /// Where a frame for `len` bytes goes, if it fits given `tail`.
    /// Returns (frame start, bytes skipped by a wrap).
    fn reserve(&self, len: u32, tail: u32) -> Result<Option<(u32, u32)>, SendError> {
        let v = &self.view;
        if tail & CLOSED != 0 && (tail & !CLOSED).is_multiple_of(8) {
            return Err(SendError::Closed);
        }
        if !tail.is_multiple_of(8) {
            return Err(SendError::Corrupted(v.corrupt("tail")));
        }
        let used = v.used(self.head, tail).map_err(|_| SendError::Corrupted(v.corrupt("tail")))?;
        let frame = frame_size(len);
        let off = self.head & (v.capacity - 1);
        let skip = if v.capacity - off < frame { v.capacity - off } else { 0 };
        if v.capacity - used < skip + frame {
            return Ok(None);
        }
        Ok(Some((self.head.wrapping_add(skip), skip)))
    }

    fn grant_deadline(
        &mut self,
        len: usize,
        deadline: Option<&mut W::Deadline>,
    ) -> Result<WriteGrant<'_, 'a, W>, SendError> {
        let max = self.view.max_message() as usize;
        if len > max {
            return Err(SendError::TooLarge { len, max });
        }
        let len32 = len as u32;
        let room = self.wait.check().map_err(SendError::from).and_then(|()| self.room(len32, deadline));
        let (start, skip) = explain(&self.wait, room)?;
        if skip != 0 {
            self.view.write_len(self.head & (self.view.capacity - 1), WRAP_MARKER);
        }
        Ok(WriteGrant { producer: self, start, len: len32 })
    }

    /// Finds room for a frame of `len32` bytes, waiting until `deadline`
    /// (not at all without one): (frame start, bytes skipped by a wrap).
    fn room(&mut self, len32: u32, deadline: Option<&mut W::Deadline>) -> Result<(u32, u32), SendError> {
        let ctl = self.view.ctl;
        // SYNC POINT: Acquire loads of `tail` pair with the Release store of
        // `tail` in `ReadGrant::drop`: the consumer is done with the bytes.
        let found = match (self.reserve(len32, self.tail_seen)?, deadline) {
            (Some(found), _) => found,
            (None, None) => {
                let tail = ctl.tail.load(Ordering::Acquire);
                let found = self.reserve(len32, tail)?.ok_or(SendError::Full)?;
                self.tail_seen = tail;
                found
            }
            (None, Some(deadline)) => {
                let room = wait_for(
                    &self.wait,
                    &self.spin,
                    &ctl.tail,
                    &ctl.producer_waiting,
                    Announce::Single,
                    Some(&ctl.consumer),
                    Some(&ctl.consumer_flags),
                    deadline,
                    |tail| self.reserve(len32, tail).map(|r| r.map(|found| (found, tail))).transpose(),
                );
                match room {
                    Ok(found) => {
                        let (found, tail) = found?;
                        self.tail_seen = tail;
                        found
                    }
                    Err(stop) => {
                        let dead = || crate::role::holder_died(&ctl.consumer, &self.wait);
                        return Err(stop.into_error(dead, SendError::PeerDied, SendError::Timeout));
                    }
                }
            }
        };
        Ok(found)
    }

    /// Reserves `len` contiguous bytes in the ring without blocking.
    pub fn try_grant(&mut self, len: usize) -> Result<WriteGrant<'_, 'a, W>, SendError> {
        self.grant_deadline(len, None)
    }

    /// Reserves `len` contiguous bytes, waiting at most `timeout` for room.
    pub fn grant_timeout(&mut self, len: usize, timeout: Duration) -> Result<WriteGrant<'_, 'a, W>, SendError> {
        let mut deadline = self.wait.deadline(Some(timeout));
        self.grant_deadline(len, Some(&mut deadline))
    }

    /// Reserves `len` contiguous bytes, waiting as long as it takes.
    pub fn grant(&mut self, len: usize) -> Result<WriteGrant<'_, 'a, W>, SendError> {
        let mut deadline = self.wait.deadline(None);
        self.grant_deadline(len, Some(&mut deadline))
    }

    /// Copies `msg` into the queue without blocking.
    pub fn try_send(&mut self, msg: &[u8]) -> Result<(), SendError> {
        let mut g = self.try_grant(msg.len())?;
        g.write(msg);
        g.commit();
        Ok(())
    }

    /// Copies `msg` into the queue, waiting at most `timeout` for room.
    pub fn send_timeout(&mut self, msg: &[u8], timeout: Duration) -> Result<(), SendError> {
        let mut g = self.grant_timeout(msg.len(), timeout)?;
        g.write(msg);
        g.commit();
        Ok(())
    }

    /// Copies `msg` into the queue, waiting as long as it takes for room.
    pub fn send(&mut self, msg: &[u8]) -> Result<(), SendError> {
        let mut g = self.grant(msg.len())?;
        g.write(msg);
        g.commit();
        Ok(())
    }
}

impl<W: Wait> crate::ready::Waitable for Consumer<'_, W> {
    fn is_ready(&self) -> bool {
        // SYNC POINT: Acquire pairs with the producer's Release store of
        // `head` (`commit_len`), as the receiving calls' loads do. `head`
        // equals this side's `tail` exactly when the queue is empty and
        // open; anything else (a message, the close, a bad value) is
        // something `try_recv` reports.
        self.view.ctl.head.load(Ordering::Acquire) != self.tail
    }

    fn wake_word(&self) -> &AtomicU32 {
        &self.view.ctl.head
    }

    fn announce(&self, asleep: bool) {
        self.view.ctl.consumer_waiting.store(u32::from(asleep), Ordering::Relaxed);
    }

    fn peer_lazy(&self) -> bool {
        self.view.ctl.producer_flags.load(Ordering::Relaxed) & crate::format::queue::LAZY_WAKE != 0
    }

    fn peer_gone(&self) -> bool {
        let id = self.peer();
        crate::role::held(id) && !self.wait.is_alive(id)
    }
}

/// Marks the position word `word` closed if it still holds `mine`, with a
/// Release; whether it did. With compare-and-swap, a side that was taken for
/// dead and replaced (between its look at the role word and this store)
/// never rolls back its successor's position. Without it (thumbv6m, where
/// roles are fixed per core) the mark is a plain store.
fn close_position(word: &AtomicU32, mine: u32) -> bool {
    #[cfg(shm_cas)]
    {
        // SYNC POINT: Release, as the callers say.
        crate::sync::cas(word, mine, mine | CLOSED, Ordering::Release).is_ok()
    }
    #[cfg(not(shm_cas))]
    {
        // SYNC POINT: Release, as the callers say.
        word.store(mine | CLOSED, Ordering::Release);
        true
    }
}

impl<W: Wait> Drop for Producer<'_, W> {
    fn drop(&mut self) {
        let ctl = self.view.ctl;
        // Close while still holding the role, so no next producer's head is
        // overwritten. A producer whose role was taken over (it was thought
        // dead) leaves the head alone.
        if ctl.producer.load(Ordering::Relaxed) == self.id {
            // Cache hook: a close is a hand-over too (of the word it marks).
            self.wait.clean(word_addr(&ctl.head), WORD);
            // SYNC POINT: Release pairs with the consumer's Acquire loads of
            // `head` (`read_deadline`): every commit before is visible with
            // the close mark.
            if close_position(&ctl.head, self.head) {
                notify(&self.wait, &ctl.head, &ctl.consumer_waiting, 1);
            }
            // No more wake-ups from this side, lazy or not.
            ctl.producer_flags.store(0, Ordering::Relaxed);
        }
        crate::role::release(&ctl.producer, self.id);
    }
}

/// Contiguous ring bytes reserved for one message. Write them, then
/// [`commit`](WriteGrant::commit); dropping the grant sends nothing.
///
/// How large messages are written matters to the consumer: on x86_64,
/// glibc does `memset`/`memcpy` above about 2 KiB with `rep stosb`/`rep
/// movsb`, and a consumer reading 1 MiB messages written that way (`fill`,
/// `copy_from_slice`) ran at 0.34–0.42x one-process `memcpy` on a Xeon VM,
/// against 0.54–0.64x for messages computed in place a word at a time (as
/// `shm-bench`'s grant rows write them).
pub struct WriteGrant<'p, 'a, W: Wait> {
    producer: &'p mut Producer<'a, W>,
    start: u32,
    len: u32,
}

impl<W: Wait> WriteGrant<'_, '_, W> {
    fn payload(&self) -> *mut u8 {
        let off = (self.start & (self.producer.view.capacity - 1)) + FRAME_HEADER;
        // SAFETY: `reserve` placed the whole frame inside the ring.
        unsafe { self.producer.view.ring.as_ptr().add(off as usize) }
    }

    /// Copies `src` into the start of the grant without forming a reference
    /// to the ring (see [`crate::payload`] for why that matters with an
    /// untrusted consumer); returns how many bytes it copied, at most the
    /// granted length.
    ///
    /// ```
    /// # use shm_core::{Layout, Segment, mock::{MockRegion, ThreadWait}};
    /// # let layout = Layout::new().queue("q", 256).unwrap();
    /// # let region = MockRegion::new(layout.size());
    /// # let segment = Segment::create(region.region(), &layout, 1, 0).unwrap();
    /// # let mut tx = segment.producer("q", ThreadWait::new(1)).unwrap();
    /// let mut grant = tx.try_grant(5).unwrap();
    /// assert_eq!(grant.write(b"hello"), 5);
    /// grant.commit();
    /// ```
    pub fn write(&mut self, src: &[u8]) -> usize {
        let n = src.len().min(self.len as usize);
        // SAFETY: the first `n <= len` bytes at `payload()` are this grant's
        // (see `deref`); no reference to them is live while `&mut self` is.
        unsafe { crate::payload::copy_in(&src[..n], self.payload()) };
        n
    }

    /// Publishes the whole grant as one message.
    pub fn commit(self) {
        let len = self.len;
        self.commit_len(len as usize);
    }

    /// Publishes the first `len` bytes (at most the granted length) as one
    /// message.
    pub fn commit_len(self, len: usize) {
        crate::crash::point("queue.producer.granted");
        // Clamp before narrowing: `len as u32` would wrap 1 << 32 to 0.
        let len = u32::try_from(len).map_or(self.len, |len| len.min(self.len));
        let payload = self.payload();
        let p = self.producer;
        let v = &p.view;
        v.write_len(self.start & (v.capacity - 1), len);
        p.head = self.start.wrapping_add(frame_size(len));
        // Cache hook: the payload goes to memory before `head` publishes it.
        p.wait.clean(payload, len as usize);
        // SYNC POINT: Release pairs with the consumer's Acquire load of
        // `head`: the frame (header and payload) is visible before the head.
        v.ctl.head.store(p.head, Ordering::Release);
        v.ctl.sent.store(v.ctl.sent.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
        crate::crash::point("queue.producer.committed");
        notify_lazily(&p.wait, p.lazy, &v.ctl.head, &v.ctl.consumer_waiting, 1);
    }
}

impl<W: Wait> Deref for WriteGrant<'_, '_, W> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: the protocol grants [head, tail + capacity) to the producer
        // alone; this frame lies in it (checked by `reserve`) and stays ours
        // until `commit` publishes it. `&mut self.producer` makes the grant
        // unique on this side.
        unsafe { core::slice::from_raw_parts(self.payload(), self.len as usize) }
    }
}

impl<W: Wait> DerefMut for WriteGrant<'_, '_, W> {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `deref`.
        unsafe { core::slice::from_raw_parts_mut(self.payload(), self.len as usize) }
    }
}

/// The reading end of a queue. One per queue at a time (claimed in the
/// segment); dropping it lets the role go.
pub struct Consumer<'a, W: Wait> {
    view: QueueView<'a>,
    wait: W,
    tail: u32,
    /// The producer's `head` as last loaded (and checked).
    head_seen: u32,
    id: u32,
    /// How long waits for a message spin (see [`Wait::adaptive_spin`]).
    spin: SpinBudget,
    /// Whether this side wakes the producer lazily ([`Wait::lazy_notify`]).
    lazy: bool,
}

impl<'a, W: Wait> Consumer<'a, W> {
    /// Claims the consumer role of the queue in `view`; a restarted consumer
    /// resumes at the released tail.
    pub fn claim(view: QueueView<'a>, wait: W) -> Result<Self, ClaimError> {
        wait.check()?;
        let id = wait.self_id();
        crate::role::claim(&view.ctl.consumer, &wait, id).map_err(|holder| ClaimError::busy(Role::Consumer, holder))?;
        let tail = view.ctl.tail.load(Ordering::Relaxed) & !CLOSED;
        if !tail.is_multiple_of(8) {
            crate::role::release(&view.ctl.consumer, id);
            return Err(ClaimError::corrupted(view.corrupt("tail")));
        }
        // Open again: clear a previous consumer's close mark (only the
        // consumer writes `tail`, and we hold the role now).
        // SYNC POINT: Release pairs with the producer's Acquire loads of
        // `tail`.
        view.ctl.tail.store(tail, Ordering::Release);
        let lazy = claim_lazy(&wait, &view.ctl.consumer_flags);
        Ok(Self { view, wait, tail, head_seen: tail, id, spin: SpinBudget::new(), lazy })
    }

    /// The producer id recorded in the segment, 0 if none.
    pub fn peer(&self) -> u32 {
        self.view.ctl.producer.load(Ordering::Relaxed)
    }

    /// Whether a producer is attached and alive ([`Wait::is_alive`], a
    /// liveness check). A wait of this consumer finds a dead producer by
    /// itself; a thread that waits on several endpoints at once (a wait
    /// set, `select!`) and keeps being woken by another one can ask this
    /// every so often.
    pub fn producer_alive(&self) -> bool {
        let id = self.peer();
        crate::role::held(id) && self.wait.is_alive(id)
    }

    /// Locates the next message given `head`: (payload offset, len, frame
    /// start), skipping a wrap marker. `None` when the queue is empty.
    fn locate(&self, head: u32) -> Result<Option<(u32, u32, u32)>, RecvError> {
        let v = &self.view;
        let corrupt = |w| RecvError::Corrupted(v.corrupt(w));
        let closed = head & CLOSED != 0;
        let head = head & !CLOSED;
        if !head.is_multiple_of(8) {
            return Err(corrupt("head"));
        }
        let mut used = v.used(head, self.tail).map_err(RecvError::Corrupted)?;
        let mut start = self.tail;
        if used == 0 {
            // Everything committed before the close has been received.
            return if closed { Err(RecvError::Closed) } else { Ok(None) };
        }
        let mut off = start & (v.capacity - 1);
        let mut len = v.read_len(off);
        if len == WRAP_MARKER {
            let skip = v.capacity - off;
            if skip >= used {
                return Err(corrupt("frame"));
            }
            used -= skip;
            start = start.wrapping_add(skip);
            off = 0;
            len = v.read_len(0);
        }
        if len > v.max_message() || frame_size(len) > used || off + frame_size(len) > v.capacity {
            return Err(corrupt("frame"));
        }
        Ok(Some((off + FRAME_HEADER, len, start)))
    }

    fn read_deadline(&mut self, deadline: Option<&mut W::Deadline>) -> Result<ReadGrant<'_, 'a, W>, RecvError> {
        let next = self.wait.check().map_err(RecvError::from).and_then(|()| self.next(deadline));
        let (payload, len, start) = explain(&self.wait, next)?;
        // Cache hook: after the Acquire load of `head` that located the
        // frame, before anyone reads the payload.
        // SAFETY: `locate` checked the frame lies inside the ring.
        self.wait.invalidate(unsafe { self.view.ring.as_ptr().add(payload as usize) }, len as usize);
        self.prefetch_ahead(start);
        Ok(ReadGrant { consumer: self, payload, len, start })
    }

    /// Starts fetching the ring's bytes [`PREFETCH_AHEAD`] past `start`,
    /// when the producer has published them (never a line it may still be
    /// writing, which the fetch would take from it), so that a busy
    /// stream's cache-line transfers overlap instead of following each
    /// other.
    fn prefetch_ahead(&self, start: u32) {
        #[cfg(target_arch = "x86_64")]
        {
            let ahead = start.wrapping_add(PREFETCH_AHEAD);
            // The whole line around `ahead` lies below `ahead + 64`.
            if self.head_seen.wrapping_sub(start) >= PREFETCH_AHEAD + 64 {
                let off = ahead & (self.view.capacity - 1);
                use core::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
                // SAFETY: `off < capacity`, so the address lies inside the
                // ring; SSE is part of x86_64's baseline, and a prefetch
                // only hints the cache, never faults.
                unsafe {
                    _mm_prefetch::<_MM_HINT_T0>(self.view.ring.as_ptr().add(off as usize).cast::<i8>().cast_const())
                };
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = start;
    }

    /// Locates the next message, waiting until `deadline` (not at all
    /// without one): (payload offset, len, frame start).
    fn next(&mut self, deadline: Option<&mut W::Deadline>) -> Result<(u32, u32, u32), RecvError> {
        let ctl = self.view.ctl;
        // SYNC POINT: Acquire loads of `head` pair with the Release store in
        // `WriteGrant::commit_len`: the frame is visible once head covers it.
        let found = match (self.locate(self.head_seen)?, deadline) {
            (Some(found), _) => found,
            (None, None) => {
                let head = ctl.head.load(Ordering::Acquire);
                let found = self.locate(head)?.ok_or(RecvError::Empty)?;
                self.head_seen = head & !CLOSED;
                found
            }
            (None, Some(deadline)) => {
                let message = wait_for(
                    &self.wait,
                    &self.spin,
                    &ctl.head,
                    &ctl.consumer_waiting,
                    Announce::Single,
                    Some(&ctl.producer),
                    Some(&ctl.producer_flags),
                    deadline,
                    |head| self.locate(head).map(|m| m.map(|found| (found, head))).transpose(),
                );
                match message {
                    Ok(found) => {
                        let (found, head) = found?;
                        self.head_seen = head & !CLOSED;
                        found
                    }
                    Err(stop) => {
                        let dead = || crate::role::holder_died(&ctl.producer, &self.wait);
                        return Err(stop.into_error(dead, RecvError::PeerDied, RecvError::Timeout));
                    }
                }
            }
        };
        Ok(found)
    }

    /// The next message in place, without blocking.
    pub fn try_read(&mut self) -> Result<ReadGrant<'_, 'a, W>, RecvError> {
        self.read_deadline(None)
    }

    /// The next message in place, waiting at most `timeout`.
    pub fn read_timeout(&mut self, timeout: Duration) -> Result<ReadGrant<'_, 'a, W>, RecvError> {
        let mut deadline = self.wait.deadline(Some(timeout));
        self.read_deadline(Some(&mut deadline))
    }

    /// The next message in place, waiting as long as it takes.
    pub fn read(&mut self) -> Result<ReadGrant<'_, 'a, W>, RecvError> {
        let mut deadline = self.wait.deadline(None);
        self.read_deadline(Some(&mut deadline))
    }

    fn copy_out(grant: ReadGrant<'_, '_, W>, buf: &mut [u8]) -> Result<usize, RecvError> {
        let n = grant.len();
        if n > buf.len() {
            grant.keep();
            return Err(RecvError::BufferTooSmall { needed: n });
        }
        grant.read_into(buf);
        grant.release();
        Ok(n)
    }

    /// The longest message the queue carries.
    pub fn max_message(&self) -> usize {
        self.view.max_message() as usize
    }

    /// A corruption report for word `word` of this queue (for typed reads).
    #[cfg(feature = "zerocopy")]
    pub(crate) fn corrupt(&self, word: &'static str) -> Corruption {
        self.view.corrupt(word)
    }

    /// Copies the next message into `buf` without blocking; returns its
    /// length. A message longer than `buf` stays in the queue.
    pub fn try_recv(&mut self, buf: &mut [u8]) -> Result<usize, RecvError> {
        Self::copy_out(self.try_read()?, buf)
    }

    /// Copies the next message into `buf`, waiting at most `timeout`.
    pub fn recv_timeout(&mut self, buf: &mut [u8], timeout: Duration) -> Result<usize, RecvError> {
        Self::copy_out(self.read_timeout(timeout)?, buf)
    }

    /// Copies the next message into `buf`, waiting as long as it takes.
    pub fn recv(&mut self, buf: &mut [u8]) -> Result<usize, RecvError> {
        Self::copy_out(self.read()?, buf)
    }
}

impl<W: Wait> Drop for Consumer<'_, W> {
    fn drop(&mut self) {
        let ctl = self.view.ctl;
        if ctl.consumer.load(Ordering::Relaxed) == self.id {
            // Cache hook: a close is a hand-over too (of the word it marks).
            self.wait.clean(word_addr(&ctl.tail), WORD);
            // SYNC POINT: Release pairs with the producer's Acquire loads of
            // `tail` (`grant_deadline`): our reads are done, and it sees the
            // close mark.
            if close_position(&ctl.tail, self.tail) {
                notify(&self.wait, &ctl.tail, &ctl.producer_waiting, 1);
            }
            // No more wake-ups from this side, lazy or not.
            ctl.consumer_flags.store(0, Ordering::Relaxed);
        }
        crate::role::release(&ctl.consumer, self.id);
    }
}

/// One message, in place in the ring. Dropping it (or calling
/// [`release`](ReadGrant::release)) consumes it; [`keep`](ReadGrant::keep)
/// leaves it for the next read.
pub struct ReadGrant<'c, 'a, W: Wait> {
    consumer: &'c mut Consumer<'a, W>,
    payload: u32,
    len: u32,
    start: u32,
}

impl<W: Wait> ReadGrant<'_, '_, W> {
    /// Consumes the message and hands its bytes back to the producer.
    pub fn release(self) {
        drop(self)
    }

    /// Copies the message (or as much of it as fits) into `dst` without
    /// forming a reference to the ring (see [`crate::payload`] for why that
    /// matters with an untrusted producer); returns how many bytes it copied.
    pub fn read_into(&self, dst: &mut [u8]) -> usize {
        let n = dst.len().min(self.len as usize);
        // SAFETY: `locate` checked the frame (payload at `payload`, `len`
        // bytes) lies inside the ring and inside [tail, head), which the
        // protocol grants to the consumer until `drop`; `n <= len`.
        unsafe { crate::payload::copy_out(self.consumer.view.ring.as_ptr().add(self.payload as usize), &mut dst[..n]) };
        n
    }

    /// Leaves the message in the queue.
    pub fn keep(self) {
        core::mem::forget(self)
    }
}

impl<W: Wait> Drop for ReadGrant<'_, '_, W> {
    fn drop(&mut self) {
        let c = &mut *self.consumer;
        let ctl = c.view.ctl;
        c.tail = self.start.wrapping_add(frame_size(self.len));
        // SYNC POINT: Release pairs with the producer's Acquire load of
        // `tail`: we are done reading these bytes before it reuses them.
        ctl.tail.store(c.tail, Ordering::Release);
        ctl.received.store(ctl.received.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
        notify_lazily(&c.wait, c.lazy, &ctl.tail, &ctl.producer_waiting, 1);
    }
}

impl<W: Wait> Deref for ReadGrant<'_, '_, W> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: `locate` checked the frame lies inside the ring and inside
        // [tail, head), which the protocol grants to the consumer alone until
        // it stores a new tail (in `drop`). A peer breaking the protocol can
        // change these bytes' content, never their bounds.
        unsafe {
            core::slice::from_raw_parts(self.consumer.view.ring.as_ptr().add(self.payload as usize), self.len as usize)
        }
    }
}

#[cfg(all(test, not(shm_loom)))]
mod tests;
