//! The request/response mailbox: several clients, one server, each request
//! written in place, modified in place, answered in place.
//!
//! ```
//! use core::time::Duration;
//! use shm_core::mock::{MockRegion, ThreadWait};
//! use shm_core::{Layout, Segment};
//!
//! let layout = Layout::new().mailbox("rpc", 2, 64).unwrap();
//! let region = MockRegion::new(layout.size());
//! let segment = Segment::create(region.region(), &layout, 1, 0).unwrap();
//! let server = segment.server("rpc", ThreadWait::new(1)).unwrap();
//! let client = segment.client("rpc", ThreadWait::new(2)).unwrap();
//!
//! std::thread::scope(|s| {
//!     s.spawn(|| {
//!         // Upper-case the request in place and send it back.
//!         server.serve_timeout(Duration::from_secs(5), |buf, len| {
//!             buf[..len].make_ascii_uppercase();
//!             len
//!         }).unwrap();
//!     });
//!     let mut response = [0u8; 64];
//!     let n = client.call_timeout(b"hello", &mut response, Duration::from_secs(5)).unwrap();
//!     assert_eq!(&response[..n], b"HELLO");
//! });
//! ```
//!
//! # Byte layout
//!
//! The control lines, the slots and the slot states are tabled in
//! [`crate::format::mailbox`].
//!
//! # Design
//!
//! Every transition that two sides may race for is a compare-and-swap on
//! the whole word, request id included, so a response can only complete the
//! request it was made for: a client that timed out and a client that
//! claimed the slot afterwards can never receive each other's answer. The
//! client claims the slot by a CAS of its id into the owner word `client`
//! (one slot, one holder: who holds it is decided in that one word, so
//! [`Server::reclaim`], which frees the slots of dead owners, can never pair
//! a live claim with an earlier owner's id), then writes the request
//! and publishes it with a Release store of REQUEST, then rings the server
//! by storing its slot and request id in `request_epoch` (a plain store, no
//! read-modify-write), waking it only if `server_waiting` says it sleeps. The
//! server polls (then sleeps on) that one word and scans the slots when it
//! changes, so it stays off the lines clients are writing. Freed slots are
//! announced through the `free_epoch` event count, bumped only when a client
//! sleeps for a slot. The client spins, then sleeps, on its slot's
//! `state` word; the server wakes it only if `client_waiting` says it sleeps.
//! (An earlier revision signalled every request through a counting
//! semaphore as well; shm-bench showed that second signal cost a cache-line
//! round trip per call on the critical path.)
//!
//! The 24-bit request id wraps after 2^24 - 1 claims of one slot (to 1:
//! id 0 is never used, so no ring value equals `request_epoch`'s initial 0).
//! That is
//! harmless: a slot is never handed on while a handle to its previous
//! request lives (the owner word stays set until the slot is FREE, and an
//! ABANDONED slot stays the server's until it answers), so no stale handle
//! can meet a recycled id. At worst a server that sleeps through exactly
//! 2^24 withdrawn requests of one slot misses one ring of `request_epoch`
//! and finds the request at its next scan.
//!
//! Dropping the [`Server`] closes the mailbox: it marks `server_waiting`
//! [`SERVER_CLOSED`] and fails every request still waiting, and clients get
//! [`CallError::Closed`], at once for those requests and for every call
//! until a server claims the mailbox again (a client reads that word on the
//! line it rings anyway, so the check costs no cache miss).
//!
//! Clients that die are found by [`Server::reclaim`]; a server that dies is
//! found by a client whose wait ran out ([`CallError::PeerDied`]), and a new
//! server that claims the role fails the dead one's in-flight requests.

use core::marker::PhantomData;
use core::ops::{Deref, DerefMut};
use core::ptr::NonNull;
use core::time::Duration;

use crate::error::{CallError, ClaimError, Corruption, Role, ServeError};

use crate::sync::Ordering;
use crate::wait::{explain, notify, signal, wait_for, word_addr, Announce, Stop, Wait, WORD};

use crate::format::mailbox::{id_of, low_of, pack, slot, MailboxControl, SlotControl, CLOSED_LEN, ID_MASK};

/// The value of `server_waiting` once the server closed the mailbox.
pub use crate::format::mailbox::SERVER_CLOSED;

/// Counters and slot states of a mailbox, as read (not validated).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct MailboxStats {
    /// Server id, 0 if none.
    pub server: u32,
    /// Responses posted.
    pub served: u32,
    /// Whether the server announced it sleeps.
    pub server_sleeping: bool,
    /// Slots per state (index = state value; 7 counts unknown values).
    pub slots_by_state: [u32; 8],
}

/// Where a mailbox's words and slots are; the geometry this side validated.
#[derive(Clone, Copy)]
pub struct MailboxView<'a> {
    ctl: &'a MailboxControl,
    slots: NonNull<u8>,
    stride: usize,
    payload_offset: usize,
    slot_count: u32,
    slot_size: u32,
    index: u8,
    _mem: PhantomData<&'a [u8]>,
}

// SAFETY: all access goes through atomics or through the slot protocol.
unsafe impl Send for MailboxView<'_> {}
// SAFETY: as above.
unsafe impl Sync for MailboxView<'_> {}

impl<'a> MailboxView<'a> {
    /// A view over `ctl` and `slot_count` slots starting at `slots`.
    ///
    /// # Safety
    ///
    /// For `'a`: slot `i < slot_count` starts at `slots + i * stride`,
    /// 4-byte aligned, with a [`SlotControl`] there and `slot_size` payload
    /// bytes at `+ payload_offset`, all valid for reads and writes and never
    /// accessed through Rust references by anyone else. `index` is the
    /// channel's index in its segment (for errors).
    pub unsafe fn new(
        ctl: &'a MailboxControl,
        slots: NonNull<u8>,
        stride: usize,
        payload_offset: usize,
        slot_count: u32,
        slot_size: u32,
        index: u8,
    ) -> Self {
        Self { ctl, slots, stride, payload_offset, slot_count, slot_size, index, _mem: PhantomData }
    }

    fn slot(&self, i: u32) -> &'a SlotControl {
        assert!(i < self.slot_count);
        // SAFETY: `i < slot_count`, and per `new` a SlotControl lives at
        // `slots + i * stride` for `'a`. It consists of atomics only.
        unsafe { &*self.slots.as_ptr().add(i as usize * self.stride).cast::<SlotControl>() }
    }

    fn payload(&self, i: u32) -> *mut u8 {
        assert!(i < self.slot_count);
        // SAFETY: in bounds of slot `i`, per `new`.
        unsafe { self.slots.as_ptr().add(i as usize * self.stride + self.payload_offset) }
    }

    fn corrupt(&self, word: &'static str) -> Corruption {
        Corruption::channel(self.index, word)
    }

    /// Slot payload capacity in bytes.
    pub fn slot_size(&self) -> usize {
        self.slot_size as usize
    }

    /// A snapshot of the counters and slot states, for inspection tools.
    pub fn stats(&self) -> MailboxStats {
        let mut by_state = [0u32; 8];
        for i in 0..self.slot_count {
            let st = low_of(self.slot(i).state.load(Ordering::Relaxed));
            by_state[(st as usize).min(7)] += 1;
        }
        MailboxStats {
            server: self.ctl.server.load(Ordering::Relaxed),
            served: self.ctl.served.load(Ordering::Relaxed),
            server_sleeping: self.ctl.server_waiting.load(Ordering::Relaxed) == 1,
            slots_by_state: by_state,
        }
    }

    /// Frees slot `i`, which this client holds as `id`, and wakes clients
    /// waiting for one. The state goes FREE first and the owner word second:
    /// until the owner word reads 0 nobody can claim the slot, and a client
    /// that dies in between leaves FREE with its dead id, which
    /// [`Server::reclaim`] clears.
    fn free_slot<W: Wait>(&self, wait: &W, i: u32, id: u32) {
        let s = self.slot(i);
        // SYNC POINT: Release pairs with the Acquire load of `state` in
        // `try_claim_slot`: our reads of the payload are done before the next
        // holder writes it.
        s.state.store(pack(id, slot::FREE), Ordering::Release);
        self.release_owner(wait, i);
    }

    /// Clears slot `i`'s owner word after its state became FREE (a client's
    /// free, a withdrawal, a reclaim), and wakes clients waiting for a slot.
    fn release_owner<W: Wait>(&self, wait: &W, i: u32) {
        // SYNC POINT: Release pairs with the Acquire CAS of `client` in
        // `try_claim_slot`: the FREE state and the payload reads before it
        // are visible to the next owner.
        self.slot(i).client.store(0, Ordering::Release);
        self.announce_free(wait);
    }

    /// Frees slot `i`, which the server holds (ABANDONED by its client), and
    /// wakes clients waiting for one. The owner word is cleared first: a
    /// server that dies in between leaves ABANDONED with no owner, which the
    /// next server's `recover` frees; a claimer that takes the owner word in
    /// between finds the state not FREE and lets it go again.
    fn free_abandoned<W: Wait>(&self, wait: &W, i: u32, cur: u32) -> bool {
        let s = self.slot(i);
        s.client.store(0, Ordering::Relaxed);
        // SYNC POINT: Release pairs with the Acquire load of `state` in
        // `try_claim_slot`: the server's payload accesses are done before the
        // next holder writes it.
        let freed =
            s.state.compare_exchange(cur, pack(id_of(cur), slot::FREE), Ordering::Release, Ordering::Relaxed).is_ok();
        if freed {
            self.announce_free(wait);
        }
        freed
    }

    /// Wakes clients sleeping for a slot, after a slot became FREE. (A slot
    /// freed by a CAS needs only this: storing FREE again after the CAS
    /// could undo a claim made in between.)
    fn announce_free<W: Wait>(&self, wait: &W) {
        signal(wait, &self.ctl.free_epoch, &self.ctl.free_waiters, u32::MAX);
    }
}

/// The client side: any number of threads may call through one `Client`;
/// each call holds its own slot.
pub struct Client<'a, W: Wait> {
    view: MailboxView<'a>,
    wait: W,
    id: u32,
}

impl<'a, W: Wait> Client<'a, W> {
    /// A client of the mailbox in `view`.
    pub fn new(view: MailboxView<'a>, wait: W) -> Self {
        let id = wait.self_id();
        Self { view, wait, id }
    }

    /// Slot payload capacity: the largest request or response.
    pub fn slot_size(&self) -> usize {
        self.view.slot_size()
    }

    /// Claims a free slot without blocking.
    pub fn try_claim(&self) -> Result<SlotGuard<'_, 'a, W>, CallError> {
        self.wait.check()?;
        explain(&self.wait, self.claim_free())
    }

    /// One scan of the slots for a free one.
    fn claim_free(&self) -> Result<SlotGuard<'_, 'a, W>, CallError> {
        for i in 0..self.view.slot_count {
            if let Some(id) = self.try_claim_slot(i) {
                crate::crash::point("mailbox.client.claimed");
                return Ok(SlotGuard { client: self, index: i, id });
            }
        }
        Err(CallError::NoFreeSlot)
    }

    /// Claims slot `i` if it is free; returns the new request id.
    ///
    /// Ownership is decided in one word: the CAS of the slot's `client` word
    /// from 0 to this client's id. Only then does the owner move `state` from
    /// FREE to CLAIMED. A reclaimer that sees CLAIMED therefore always reads
    /// the id of the client that claimed it, never a stale one, and cannot
    /// free a live claim.
    fn try_claim_slot(&self, i: u32) -> Option<u32> {
        let s = self.view.slot(i);
        if s.client.load(Ordering::Relaxed) != 0 || low_of(s.state.load(Ordering::Relaxed)) != slot::FREE {
            return None;
        }
        // SYNC POINT: Acquire pairs with the Release store of 0 in
        // `release_owner`: the previous owner is done with the slot.
        s.client.compare_exchange(0, self.id, Ordering::Acquire, Ordering::Relaxed).ok()?;
        // SYNC POINT: Acquire pairs with the Release store or CAS of FREE in
        // `free_slot`, `SlotGuard::send`, `withdraw`, `reclaim_slot` and
        // `free_abandoned`: whoever freed the slot is done with the payload.
        let cur = s.state.load(Ordering::Acquire);
        // Ids run 1..2^24 and skip 0 when they wrap: a ring value
        // (`id << 8 | slot`) of 0 would equal `request_epoch`'s initial value,
        // and a server that scanned before it would not look again.
        let id = match (id_of(cur) + 1) & ID_MASK {
            0 => 1,
            id => id,
        };
        // SYNC POINT: Release pairs with the Acquire load of `state` in
        // `reclaim_slot`, so a reclaimer that sees CLAIMED also sees our id
        // in `client`.
        if low_of(cur) == slot::FREE
            && s.state.compare_exchange(cur, pack(id, slot::CLAIMED), Ordering::Release, Ordering::Relaxed).is_ok()
        {
            return Some(id);
        }
        // Not FREE after all: the server is between clearing the owner of an
        // ABANDONED slot and freeing it, or the word is garbage. Let it go,
        // and wake sleeping claimers: the server's own wake-up may have come
        // while we held the owner word, and they would have skipped the slot.
        // SYNC POINT: Release pairs with the Acquire CAS above of the next
        // claimer (we wrote nothing, but keep the owner hand-over uniform).
        s.client.store(0, Ordering::Release);
        self.view.announce_free(&self.wait);
        None
    }

    /// Claims a free slot, waiting until `deadline` (made by this client's
    /// [`strategy`](Self::strategy)) for one. With [`Pending::wait_deadline`]
    /// it lets one deadline cover a whole zero-copy call.
    pub fn claim_deadline(&self, deadline: &mut W::Deadline) -> Result<SlotGuard<'_, 'a, W>, CallError> {
        let ctl = self.view.ctl;
        // Each look scans the slots; sleeping is on `free_epoch`, bumped by
        // `free_slot` when it sees `free_waiters`.
        self.wait.check()?;
        let claimed =
            wait_for(&self.wait, &ctl.free_epoch, &ctl.free_waiters, Announce::Counted, None, deadline, |_| match self
                .claim_free()
            {
                Err(CallError::NoFreeSlot) => None,
                other => Some(other),
            });
        let claimed =
            claimed.unwrap_or_else(|stop| Err(stop.into_error(|| false, CallError::Timeout, CallError::Timeout)));
        explain(&self.wait, claimed)
    }

    /// Claims a free slot, waiting as long as it takes for one.
    pub fn claim(&self) -> Result<SlotGuard<'_, 'a, W>, CallError> {
        self.claim_deadline(&mut self.wait.deadline(None))
    }

    /// The wait strategy, e.g. to make a deadline for
    /// [`claim_deadline`](Self::claim_deadline).
    pub fn strategy(&self) -> &W {
        &self.wait
    }

    /// Claims a free slot, waiting at most `timeout` for one.
    pub fn claim_timeout(&self, timeout: Duration) -> Result<SlotGuard<'_, 'a, W>, CallError> {
        self.claim_deadline(&mut self.wait.deadline(Some(timeout)))
    }

    /// Copies `request` into a slot, waits for the response and copies it
    /// into `response`; returns the response length. The whole call takes at
    /// most `timeout`.
    pub fn call_timeout(&self, request: &[u8], response: &mut [u8], timeout: Duration) -> Result<usize, CallError> {
        self.call_deadline(request, response, &mut self.wait.deadline(Some(timeout)))
    }

    /// As [`call_timeout`](Self::call_timeout), waiting as long as it takes.
    pub fn call(&self, request: &[u8], response: &mut [u8]) -> Result<usize, CallError> {
        self.call_deadline(request, response, &mut self.wait.deadline(None))
    }

    fn call_deadline(
        &self,
        request: &[u8],
        response: &mut [u8],
        deadline: &mut W::Deadline,
    ) -> Result<usize, CallError> {
        let max = self.slot_size();
        if request.len() > max {
            return Err(CallError::TooLarge { len: request.len(), max });
        }
        let mut slot = self.claim_deadline(deadline)?;
        // `claim_deadline` and `wait_deadline` report a reset themselves.
        slot.write(request);
        let answer = slot.send(request.len())?.wait_deadline(deadline)?;
        let n = answer.len();
        if n > response.len() {
            return Err(CallError::TooLarge { len: n, max: response.len() });
        }
        answer.read_into(response);
        Ok(n)
    }

    /// A corruption report for word `word` of this mailbox (for typed calls).
    #[cfg(feature = "zerocopy")]
    pub(crate) fn corrupt(&self, word: &'static str) -> Corruption {
        self.view.corrupt(word)
    }

    /// Whether the server closed the mailbox (and none claimed it since).
    ///
    /// `server_waiting` is the hint (on the line a client rings anyway, so a
    /// busy mailbox costs no extra cache miss); the role word decides.
    fn server_closed(&self) -> bool {
        let ctl = self.view.ctl;
        ctl.server_waiting.load(Ordering::Relaxed) == SERVER_CLOSED
            && ctl.server.load(Ordering::Relaxed) == SERVER_CLOSED
    }

    /// Whether the server recorded in the mailbox is alive (`false` when no
    /// server is attached).
    pub fn server_alive(&self) -> bool {
        let id = self.view.ctl.server.load(Ordering::Relaxed);
        crate::role::held(id) && self.wait.is_alive(id)
    }
}

/// A claimed slot: write the request into it, then [`send`](Self::send).
/// Dropping it frees the slot.
pub struct SlotGuard<'c, 'a, W: Wait> {
    client: &'c Client<'a, W>,
    index: u32,
    id: u32,
}

impl<'c, 'a, W: Wait> SlotGuard<'c, 'a, W> {
    /// Copies `src` into the start of the slot without forming a reference
    /// to it (see [`crate::payload`] for why that matters with an untrusted
    /// server); returns how many bytes it copied, at most the slot size.
    pub fn write(&mut self, src: &[u8]) -> usize {
        let c = self.client;
        let n = src.len().min(c.slot_size());
        // SAFETY: the slot is ours (owner word and CLAIMED state, set in
        // `try_claim_slot`); `n <= slot_size` bytes of payload; no reference
        // to them is live while `&mut self` is.
        unsafe { crate::payload::copy_in(&src[..n], c.view.payload(self.index)) };
        n
    }

    /// Posts the first `len` bytes as the request.
    pub fn send(self, len: usize) -> Result<Pending<'c, 'a, W>, CallError> {
        let c = self.client;
        let max = c.slot_size();
        if len > max {
            return Err(CallError::TooLarge { len, max });
        }
        let s = c.view.slot(self.index);
        s.len.store(len as u32, Ordering::Relaxed);
        crate::crash::point("mailbox.client.written");
        // Cache hook: the request goes to memory before REQUEST publishes it.
        c.wait.clean(c.view.payload(self.index), len);
        // SYNC POINT: Release pairs with the server's Acquire CAS in `take`:
        // the request bytes are visible before the slot reads REQUEST.
        s.state.store(pack(self.id, slot::REQUEST), Ordering::Release);
        let (index, id) = (self.index, self.id);
        // The slot now belongs to the `Pending`; the guard must not free it.
        core::mem::forget(self);
        crate::crash::point("mailbox.client.published");
        // Ring the server: a new value in `request_epoch` (this slot and
        // request id, unique until the 24-bit id wraps) tells a polling
        // server to scan, and wakes a sleeping one.
        let ctl = c.view.ctl;
        // SYNC POINT: Release pairs with the server's Acquire load of
        // `request_epoch` in `wait_for`: REQUEST is visible before the ring.
        ctl.request_epoch.store(pack(id, index), Ordering::Release);
        notify(&c.wait, &ctl.request_epoch, &ctl.server_waiting, 1);
        // SYNC POINT: after the SeqCst fence in `notify`, which pairs with the
        // one in `Server::drop`: either we see its close mark here, or its
        // scan of the slots sees our REQUEST and fails it.
        if c.server_closed() {
            // Take the request back if nobody took it; if a server did (it
            // answered, or failed it when it closed), the wait reports that.
            // SYNC POINT: Release pairs with the Acquire load of `state` in
            // `try_claim_slot` (via `release_owner`).
            let (posted, free) = (pack(id, slot::REQUEST), pack(id, slot::FREE));
            if s.state.compare_exchange(posted, free, Ordering::Release, Ordering::Relaxed).is_ok() {
                c.view.release_owner(&c.wait, index);
                return Err(CallError::Closed);
            }
        }
        Ok(Pending { client: c, index, id, done: false })
    }
}

impl<W: Wait> Deref for SlotGuard<'_, '_, W> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: the slot is CLAIMED by us (CAS in `try_claim_slot`), which the
        // protocol grants to its client alone; the payload has `slot_size`
        // bytes per `MailboxView::new`.
        unsafe { core::slice::from_raw_parts(self.client.view.payload(self.index), self.client.slot_size()) }
    }
}

impl<W: Wait> DerefMut for SlotGuard<'_, '_, W> {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `deref`; `&mut self` makes the borrow unique here.
        unsafe { core::slice::from_raw_parts_mut(self.client.view.payload(self.index), self.client.slot_size()) }
    }
}

impl<W: Wait> Drop for SlotGuard<'_, '_, W> {
    fn drop(&mut self) {
        self.client.view.free_slot(&self.client.wait, self.index, self.id);
    }
}

/// A posted request awaiting its response. Dropping it withdraws the
/// request (or abandons it if the server already holds it).
pub struct Pending<'c, 'a, W: Wait> {
    client: &'c Client<'a, W>,
    index: u32,
    id: u32,
    done: bool,
}

impl<'c, 'a, W: Wait> Pending<'c, 'a, W> {
    /// Waits at most `timeout` for the response.
    pub fn wait_timeout(self, timeout: Duration) -> Result<Response<'c, 'a, W>, CallError> {
        let mut deadline = self.client.wait.deadline(Some(timeout));
        self.wait_deadline(&mut deadline)
    }

    /// Waits as long as it takes for the response.
    pub fn wait(self) -> Result<Response<'c, 'a, W>, CallError> {
        let mut deadline = self.client.wait.deadline(None);
        self.wait_deadline(&mut deadline)
    }

    fn classify(&self, state: u32) -> Option<Result<(), CallError>> {
        let (id, st) = (id_of(state), low_of(state));
        if id != self.id {
            return Some(Err(CallError::Corrupted(self.client.view.corrupt("slot.state"))));
        }
        match st {
            slot::REQUEST | slot::SERVING => None,
            slot::RESPONSE => Some(Ok(())),
            slot::FAILED if self.client.view.slot(self.index).len.load(Ordering::Relaxed) == CLOSED_LEN => {
                Some(Err(CallError::Closed))
            }
            slot::FAILED => Some(Err(CallError::Dropped)),
            _ => Some(Err(CallError::Corrupted(self.client.view.corrupt("slot.state")))),
        }
    }

    fn finish(mut self, outcome: Result<(), CallError>) -> Result<Response<'c, 'a, W>, CallError> {
        self.done = true;
        let c = self.client;
        if let Err(e) = outcome {
            c.view.free_slot(&c.wait, self.index, self.id);
            return Err(e);
        }
        let len = c.view.slot(self.index).len.load(Ordering::Relaxed);
        if len > c.view.slot_size {
            c.view.free_slot(&c.wait, self.index, self.id);
            return Err(CallError::Corrupted(c.view.corrupt("slot.len")));
        }
        // Cache hook: after the Acquire load that saw RESPONSE, before
        // anyone reads the response.
        c.wait.invalidate(c.view.payload(self.index), len as usize);
        Ok(Response { client: c, index: self.index, id: self.id, len: len as usize })
    }

    /// Waits until `deadline` (made by the client's
    /// [`strategy`](Client::strategy)) for the response.
    pub fn wait_deadline(self, deadline: &mut W::Deadline) -> Result<Response<'c, 'a, W>, CallError> {
        let c = self.client;
        let s = c.view.slot(self.index);
        // SYNC POINT: the Acquire loads in `wait_for` pair with the server's
        // Release CAS to RESPONSE (or FAILED) in `Request::finish`.
        let server = Some(&c.view.ctl.server);
        let waited = match c.wait.check() {
            Ok(()) => wait_for(&c.wait, &s.state, &s.client_waiting, Announce::Single, server, deadline, |st| {
                self.classify(st)
            }),
            Err(reset) => Err(Stop::Reset(reset)),
        };
        let response = match waited {
            Ok(outcome) => self.finish(outcome),
            Err(stop) => {
                // No server recorded counts as dead here: nobody will answer.
                let why = stop.into_error(|| !c.server_alive(), CallError::PeerDied, CallError::Timeout);
                match self.withdraw() {
                    Some(outcome) => self.finish(outcome),
                    None => {
                        let mut this = self;
                        this.done = true;
                        Err(why)
                    }
                }
            }
        };
        explain(&c.wait, response)
    }

    /// Takes the request back: REQUEST becomes FREE, SERVING becomes
    /// ABANDONED (the server frees it). Returns the outcome instead when the
    /// response (or a failure) arrived meanwhile.
    fn withdraw(&self) -> Option<Result<(), CallError>> {
        let c = self.client;
        let s = c.view.slot(self.index);
        for _ in 0..crate::sync::CAS_RETRIES {
            // SYNC POINT: Acquire pairs with the server's Release CAS to RESPONSE or
            // FAILED (`Request::finish`), so a response seen here is complete.
            let cur = s.state.load(Ordering::Acquire);
            let next = match self.classify(cur) {
                Some(outcome) => return Some(outcome),
                None if low_of(cur) == slot::REQUEST => pack(self.id, slot::FREE),
                None => pack(self.id, slot::ABANDONED),
            };
            // SYNC POINT: Release pairs with the Acquire load of `state` in
            // `try_claim_slot` (FREE) or in `Server::recover` (ABANDONED; the
            // CAS in `Request::finish` that meets ABANDONED needs no Acquire:
            // the client wrote nothing since its REQUEST).
            if s.state.compare_exchange(cur, next, Ordering::Release, Ordering::Relaxed).is_ok() {
                if low_of(next) == slot::FREE {
                    c.view.release_owner(&c.wait, self.index);
                }
                return None;
            }
        }
        // The state never held still: a peer rewrites it without pause. Give
        // the slot up as it is rather than spin on.
        None
    }
}

impl<W: Wait> Drop for Pending<'_, '_, W> {
    fn drop(&mut self) {
        if !self.done {
            if let Some(outcome) = self.withdraw() {
                let _ = outcome;
                self.client.view.free_slot(&self.client.wait, self.index, self.id);
            }
        }
    }
}

/// The response, in place in the slot. Dropping it frees the slot.
pub struct Response<'c, 'a, W: Wait> {
    client: &'c Client<'a, W>,
    index: u32,
    id: u32,
    len: usize,
}

impl<W: Wait> Deref for Response<'_, '_, W> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: the slot reads RESPONSE with our id, which the protocol
        // grants to the client alone until it frees the slot (in `drop`);
        // `len <= slot_size` was checked in `finish`.
        unsafe { core::slice::from_raw_parts(self.client.view.payload(self.index), self.len) }
    }
}

impl<W: Wait> Response<'_, '_, W> {
    /// Copies the response (or as much of it as fits) into `dst` without
    /// forming a reference to the slot (see [`crate::payload`] for why that
    /// matters with an untrusted server); returns how many bytes it copied.
    pub fn read_into(&self, dst: &mut [u8]) -> usize {
        let n = dst.len().min(self.len);
        // SAFETY: as in `deref`; `n <= len <= slot_size`.
        unsafe { crate::payload::copy_out(self.client.view.payload(self.index), &mut dst[..n]) };
        n
    }
}

impl<W: Wait> Drop for Response<'_, '_, W> {
    fn drop(&mut self) {
        self.client.view.free_slot(&self.client.wait, self.index, self.id);
    }
}

/// The serving side; one per mailbox at a time (claimed in the segment).
pub struct Server<'a, W: Wait> {
    view: MailboxView<'a>,
    wait: W,
    id: u32,
    /// Where the next scan starts (local round-robin state, not shared).
    cursor: core::sync::atomic::AtomicU32,
}

impl<'a, W: Wait> Server<'a, W> {
    /// Claims the server role of the mailbox in `view`.
    ///
    /// The role is free if unheld or its holder is dead; taking over from a
    /// dead server fails the requests it held (their clients get
    /// [`CallError::Dropped`]) and frees the slots abandoned to it.
    pub fn claim(view: MailboxView<'a>, wait: W) -> Result<Self, ClaimError> {
        wait.check()?;
        let id = wait.self_id();
        crate::role::claim(&view.ctl.server, &wait, id).map_err(|holder| ClaimError::busy(Role::Server, holder))?;
        // Open again: clients stop reporting `Closed`.
        view.ctl.server_waiting.store(0, Ordering::Relaxed);
        let server = Self { view, wait, id, cursor: core::sync::atomic::AtomicU32::new(0) };
        let recovered = server.recover();
        if recovered > 0 {
            crate::event::event!("mailbox {}: failed or freed {} slot(s) of a dead server", view.index, recovered);
        }
        Ok(server)
    }

    /// Fails SERVING slots and frees ABANDONED ones left by a previous
    /// server. Returns how many slots it touched.
    fn recover(&self) -> u32 {
        let mut touched = 0;
        for i in 0..self.view.slot_count {
            let s = self.view.slot(i);
            // SYNC POINT: Acquire pairs with the Release stores and CASes of the
            // previous server and the clients; the Release CASes below pair with the
            // clients' Acquire loads of `state` (FAILED) and `try_claim_slot` (FREE).
            let cur = s.state.load(Ordering::Acquire);
            let id = id_of(cur);
            match low_of(cur) {
                slot::SERVING => {
                    match s.state.compare_exchange(cur, pack(id, slot::FAILED), Ordering::AcqRel, Ordering::Acquire) {
                        Ok(_) => {
                            notify(&self.wait, &s.state, &s.client_waiting, 1);
                            touched += 1;
                        }
                        // The client gave up in between (SERVING -> ABANDONED):
                        // the slot is ours to free now, and nobody else will.
                        Err(now) if now == pack(id, slot::ABANDONED) => {
                            if self.view.free_abandoned(&self.wait, i, now) {
                                touched += 1;
                            }
                        }
                        Err(_) => {}
                    }
                }
                slot::ABANDONED if self.view.free_abandoned(&self.wait, i, cur) => touched += 1,
                _ => {}
            }
        }
        touched
    }

    /// Frees the slots held by clients that died (per [`Wait::is_alive`]).
    /// Returns how many it freed. Call it when idle, e.g. after a receive
    /// timed out.
    pub fn reclaim(&self) -> u32 {
        let freed = (0..self.view.slot_count).filter(|&i| self.reclaim_slot(i)).count() as u32;
        if freed > 0 {
            crate::event::event!("mailbox {}: reclaimed {} slot(s) of dead clients", self.view.index, freed);
        }
        freed
    }

    /// Frees slot `i` if its owner died; whether it freed a held slot.
    fn reclaim_slot(&self, i: u32) -> bool {
        let s = self.view.slot(i);
        // SYNC POINT: Acquire pairs with the Release CAS to CLAIMED in
        // `try_claim_slot` (so `client` below names the claimer, never an
        // earlier owner) and with the dead client's Release stores (its
        // writes are done before the slot is handed on).
        let cur = s.state.load(Ordering::Acquire);
        let st = low_of(cur);
        // Not SERVING or ABANDONED: those belong to the server (a live
        // `Request` may still write the payload), whoever the client was.
        if !matches!(st, slot::FREE | slot::CLAIMED | slot::REQUEST | slot::RESPONSE | slot::FAILED) {
            return false;
        }
        let holder = s.client.load(Ordering::Relaxed);
        if holder == 0 || self.wait.is_alive(holder) {
            return false;
        }
        if st == slot::FREE {
            // `holder` may be a client that claimed the slot after our load
            // of `state` (owner CAS, then state CAS) and died holding it: now
            // that it is dead the state cannot move any more, so look again.
            // Still `cur`: it died before leaving FREE, or between storing
            // FREE and clearing its owner. Not `cur`: it is a dead holder's
            // CLAIMED slot, which the next pass frees through the path below.
            // SYNC POINT: Acquire pairs with the dead holder's Release CAS.
            if s.state.load(Ordering::Acquire) != cur {
                return false;
            }
            // The owner died between freeing the state and clearing its
            // owner word: finish its release. (A CAS, so a claim can never be
            // undone: nobody else writes a nonzero owner word.)
            // SYNC POINT: Release pairs with the Acquire CAS in `try_claim_slot`.
            if s.client.compare_exchange(holder, 0, Ordering::Release, Ordering::Relaxed).is_ok() {
                self.view.announce_free(&self.wait);
            }
            return false;
        }
        // SYNC POINT: AcqRel: Acquire pairs with the dead client's Release
        // stores; Release pairs with the Acquire load of `state` in
        // `try_claim_slot` (via `release_owner`).
        if s.state.compare_exchange(cur, pack(id_of(cur), slot::FREE), Ordering::AcqRel, Ordering::Relaxed).is_err() {
            return false;
        }
        // SYNC POINT: Release pairs with the Acquire CAS in `try_claim_slot`.
        if s.client.compare_exchange(holder, 0, Ordering::Release, Ordering::Relaxed).is_ok() {
            self.view.announce_free(&self.wait);
        }
        true
    }

    /// Slot payload capacity: the largest request or response.
    pub fn slot_size(&self) -> usize {
        self.view.slot_size()
    }

    /// A corruption report for word `word` of this mailbox (for typed calls).
    #[cfg(feature = "zerocopy")]
    pub(crate) fn corrupt(&self, word: &'static str) -> Corruption {
        self.view.corrupt(word)
    }

    /// A snapshot of the mailbox's counters.
    pub fn stats(&self) -> MailboxStats {
        self.view.stats()
    }

    /// Takes one REQUEST slot, if any.
    fn take(&self) -> Option<Result<Request<'_, 'a, W>, ServeError>> {
        let n = self.view.slot_count;
        let start = self.cursor.load(core::sync::atomic::Ordering::Relaxed);
        for k in 0..n {
            // `n > 0` inside the loop: no division by zero for a view of no
            // slots (segments refuse those; a raw view may not).
            let i = start.wrapping_add(k) % n;
            let s = self.view.slot(i);
            let cur = s.state.load(Ordering::Relaxed);
            if low_of(cur) != slot::REQUEST {
                continue;
            }
            // SYNC POINT: Acquire pairs with the client's Release store of
            // REQUEST in `SlotGuard::send`: the request bytes are visible.
            if s.state
                .compare_exchange(cur, pack(id_of(cur), slot::SERVING), Ordering::Acquire, Ordering::Relaxed)
                .is_err()
            {
                continue;
            }
            self.cursor.store((i + 1) % n, core::sync::atomic::Ordering::Relaxed);
            let mut req = Request { server: self, index: i, id: id_of(cur), len: 0, done: false };
            let len = s.len.load(Ordering::Relaxed);
            if len > self.view.slot_size {
                drop(req); // fails the slot: the client gets `Dropped`
                return Some(Err(ServeError::Corrupted(self.view.corrupt("slot.len"))));
            }
            req.len = len as usize;
            // Cache hook: after the Acquire CAS that took the request,
            // before anyone reads it.
            self.wait.invalidate(self.view.payload(i), req.len);
            crate::crash::point("mailbox.server.holding");
            return Some(Ok(req));
        }
        None
    }

    fn recv_deadline(&self, deadline: &mut W::Deadline) -> Result<Request<'_, 'a, W>, ServeError> {
        self.wait.check()?;
        explain(&self.wait, self.wait_request(deadline))
    }

    fn wait_request(&self, deadline: &mut W::Deadline) -> Result<Request<'_, 'a, W>, ServeError> {
        let ctl = self.view.ctl;
        if ctl.server.load(Ordering::Relaxed) != self.id {
            return Err(ServeError::Replaced);
        }
        // Scan the slots first, then again each time a client rings
        // `request_epoch`; polling that one word (not every slot) keeps this
        // side off the cache lines the clients are writing.
        let mut scanned: Option<u32> = None;
        let taken =
            wait_for(&self.wait, &ctl.request_epoch, &ctl.server_waiting, Announce::Single, None, deadline, |ring| {
                if scanned == Some(ring) {
                    return None;
                }
                scanned = Some(ring);
                self.take()
            });
        match taken {
            Ok(request) => request,
            Err(Stop::Reset(reset)) => Err(reset.into()),
            Err(_) if ctl.server.load(Ordering::Relaxed) != self.id => Err(ServeError::Replaced),
            Err(_) => Err(ServeError::Timeout),
        }
    }

    /// Takes the next request without blocking.
    pub fn try_recv(&self) -> Result<Request<'_, 'a, W>, ServeError> {
        self.wait.check()?;
        explain(&self.wait, self.take().unwrap_or(Err(ServeError::Empty)))
    }

    /// Waits at most `timeout` for the next request.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Request<'_, 'a, W>, ServeError> {
        self.recv_deadline(&mut self.wait.deadline(Some(timeout)))
    }

    /// Waits as long as it takes for the next request.
    pub fn recv(&self) -> Result<Request<'_, 'a, W>, ServeError> {
        self.recv_deadline(&mut self.wait.deadline(None))
    }

    /// Serves one request in place: `f` gets the whole slot and the request
    /// length and returns the response length. Waits at most `timeout`.
    pub fn serve_timeout(
        &self,
        timeout: Duration,
        f: impl FnOnce(&mut [u8], usize) -> usize,
    ) -> Result<(), ServeError> {
        let mut req = self.recv_timeout(timeout)?;
        let len = req.len();
        let n = f(req.buf_mut(), len);
        req.respond(n)
    }
}

impl<W: Wait> Drop for Server<'_, W> {
    fn drop(&mut self) {
        let ctl = self.view.ctl;
        // The close is decided in the role word: a server whose role was
        // taken over (it was thought dead) closes nothing.
        if crate::role::close(&ctl.server, self.id) {
            // The hint clients look at first (see `Client::server_closed`).
            ctl.server_waiting.store(SERVER_CLOSED, Ordering::Relaxed);
            // Cache hook: a close is a hand-over too (of the words it marks).
            self.wait.clean(word_addr(&ctl.server), WORD);
            self.wait.clean(word_addr(&ctl.server_waiting), WORD);
            // SYNC POINT: pairs with the fence in `notify` in
            // `SlotGuard::send` (see there): a request posted after this
            // fence sees the mark; one posted before is seen by the scan.
            crate::sync::fence(Ordering::SeqCst);
            // No `Request` of ours lives (they borrow the server): a SERVING
            // or ABANDONED slot is one a forgotten request left.
            self.recover();
            self.fail_waiting_requests();
        } else {
            crate::role::release(&ctl.server, self.id);
        }
    }
}

impl<W: Wait> Server<'_, W> {
    /// Fails every posted request with [`CLOSED_LEN`]: their clients get
    /// `Closed`. Each is taken first (REQUEST to SERVING, as `take` does), so
    /// the slot is the server's while it writes `len`.
    fn fail_waiting_requests(&self) {
        for i in 0..self.view.slot_count {
            let s = self.view.slot(i);
            let cur = s.state.load(Ordering::Relaxed);
            let (id, serving) = (id_of(cur), pack(id_of(cur), slot::SERVING));
            // SYNC POINT: Acquire pairs with the client's Release store of
            // REQUEST in `SlotGuard::send` (as in `take`).
            if low_of(cur) != slot::REQUEST
                || s.state.compare_exchange(cur, serving, Ordering::Acquire, Ordering::Relaxed).is_err()
            {
                continue;
            }
            s.len.store(CLOSED_LEN, Ordering::Relaxed);
            // SYNC POINT: Release pairs with the client's Acquire load of
            // `state` in `Pending::wait_deadline` (`len` is visible with it).
            match s.state.compare_exchange(serving, pack(id, slot::FAILED), Ordering::Release, Ordering::Relaxed) {
                Ok(_) => notify(&self.wait, &s.state, &s.client_waiting, 1),
                Err(now) if now == pack(id, slot::ABANDONED) => {
                    self.view.free_abandoned(&self.wait, i, now);
                }
                Err(_) => {}
            }
        }
    }
}

/// A request the server holds: read it, modify it in place, then
/// [`respond`](Self::respond). Dropping it fails the call
/// ([`CallError::Dropped`] for the client).
pub struct Request<'s, 'a, W: Wait> {
    server: &'s Server<'a, W>,
    index: u32,
    id: u32,
    len: usize,
    done: bool,
}

impl<'s, 'a, W: Wait> Request<'s, 'a, W> {
    /// Length of the request.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the request is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The request bytes.
    pub fn data(&self) -> &[u8] {
        // SAFETY: the slot is SERVING with our id, which the protocol grants
        // to the server alone; `len <= slot_size` was checked in `take`.
        unsafe { core::slice::from_raw_parts(self.server.view.payload(self.index), self.len) }
    }

    /// Copies the request (or as much of it as fits) into `dst` without
    /// forming a reference to the slot (see [`crate::payload`] for why that
    /// matters with an untrusted client); returns how many bytes it copied.
    pub fn read_into(&self, dst: &mut [u8]) -> usize {
        let n = dst.len().min(self.len);
        // SAFETY: as in `data`; `n <= len <= slot_size`.
        unsafe { crate::payload::copy_out(self.server.view.payload(self.index), &mut dst[..n]) };
        n
    }

    /// Copies `response` into the slot and posts it, without forming a
    /// reference to the slot (the copying counterpart of
    /// [`buf_mut`](Self::buf_mut) and [`respond`](Self::respond)).
    ///
    /// ```
    /// # use core::time::Duration;
    /// # use shm_core::{Layout, Segment, mock::{MockRegion, ThreadWait}};
    /// # let layout = Layout::new().mailbox("rpc", 1, 64).unwrap();
    /// # let region = MockRegion::new(layout.size());
    /// # let segment = Segment::create(region.region(), &layout, 1, 0).unwrap();
    /// # let server = segment.server("rpc", ThreadWait::new(1)).unwrap();
    /// # let client = segment.client("rpc", ThreadWait::new(2)).unwrap();
    /// # std::thread::scope(|s| {
    /// # s.spawn(|| client.call_timeout(b"ping", &mut [0; 64], Duration::from_secs(5)).unwrap());
    /// let request = server.recv_timeout(Duration::from_secs(5)).unwrap();
    /// let mut local = [0u8; 64];
    /// let n = request.read_into(&mut local); // a stable local copy
    /// assert_eq!(&local[..n], b"ping");
    /// request.respond_with(b"pong").unwrap();
    /// # });
    /// ```
    pub fn respond_with(self, response: &[u8]) -> Result<(), ServeError> {
        let max = self.server.slot_size();
        if response.len() > max {
            return Err(ServeError::TooLarge { len: response.len(), max });
        }
        // SAFETY: the slot is SERVING with our id, which the protocol grants
        // to the server alone; `response.len() <= slot_size`.
        unsafe { crate::payload::copy_in(response, self.server.view.payload(self.index)) };
        self.respond(response.len())
    }

    /// The whole slot, to write the response in place.
    pub fn buf_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `data`; `&mut self` makes the borrow unique here.
        unsafe { core::slice::from_raw_parts_mut(self.server.view.payload(self.index), self.server.view.slot_size()) }
    }

    /// Posts the first `len` bytes of the slot as the response.
    pub fn respond(mut self, len: usize) -> Result<(), ServeError> {
        let max = self.server.slot_size();
        if len > max {
            return Err(ServeError::TooLarge { len, max });
        }
        self.done = true;
        self.finish(len as u32, slot::RESPONSE)
    }

    fn finish(&self, len: u32, to: u32) -> Result<(), ServeError> {
        let v = &self.server.view;
        let s = v.slot(self.index);
        s.len.store(len, Ordering::Relaxed);
        if to == slot::RESPONSE {
            // Cache hook: the response goes to memory before RESPONSE
            // publishes it.
            self.server.wait.clean(v.payload(self.index), len as usize);
        }
        // SYNC POINT: Release pairs with the client's Acquire load of `state`
        // in `Pending::wait_deadline`: the response bytes come first.
        match s.state.compare_exchange(
            pack(self.id, slot::SERVING),
            pack(self.id, to),
            Ordering::Release,
            Ordering::Relaxed,
        ) {
            Ok(_) => {
                if to == slot::RESPONSE {
                    v.ctl.served.store(v.ctl.served.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
                }
                if to == slot::RESPONSE {
                    crate::crash::point("mailbox.server.responded");
                }
                notify(&self.server.wait, &s.state, &s.client_waiting, 1);
                Ok(())
            }
            Err(cur) if cur == pack(self.id, slot::ABANDONED) => {
                v.free_abandoned(&self.server.wait, self.index, cur);
                Err(ServeError::Abandoned)
            }
            Err(_) => Err(ServeError::Corrupted(v.corrupt("slot.state"))),
        }
    }
}

impl<W: Wait> Drop for Request<'_, '_, W> {
    fn drop(&mut self) {
        if !self.done {
            let _ = self.finish(0, slot::FAILED);
        }
    }
}
