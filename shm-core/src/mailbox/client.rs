//! The client side of a mailbox: claim a slot, write the request in place,
//! send, wait for the response and read it in place.

use core::ops::{Deref, DerefMut};
use core::time::Duration;

use super::MailboxView;
use crate::error::CallError;
use crate::format::mailbox::{id_of, low_of, pack, slot, CLOSED_LEN, ID_MASK, SERVER_CLOSED};
use crate::sync::Ordering;
use crate::wait::{explain, notify, wait_for, Announce, SpinBudget, Stop, Wait};

/// The client side: any number of threads may call through one `Client`;
/// each call holds its own slot.
pub struct Client<'a, W: Wait> {
    view: MailboxView<'a>,
    wait: W,
    id: u32,
    /// How long waits for a free slot spin (see [`Wait::adaptive_spin`]).
    claim_spin: SpinBudget,
    /// How long waits for a response spin.
    call_spin: SpinBudget,
}

impl<'a, W: Wait> Client<'a, W> {
    /// A client of the mailbox in `view`.
    pub fn new(view: MailboxView<'a>, wait: W) -> Self {
        let id = wait.self_id();
        Self { view, wait, id, claim_spin: SpinBudget::new(), call_spin: SpinBudget::new() }
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
        let claimed = wait_for(
            &self.wait,
            &self.claim_spin,
            &ctl.free_epoch,
            &ctl.free_waiters,
            Announce::Counted,
            None,
            None,
            deadline,
            |_| match self.claim_free() {
                Err(CallError::NoFreeSlot) => None,
                other => Some(other),
            },
        );
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
            return Err(CallError::BufferTooSmall { needed: n });
        }
        answer.read_into(response);
        Ok(n)
    }

    /// A corruption report for word `word` of this mailbox (for typed calls).
    #[cfg(feature = "zerocopy")]
    pub(crate) fn corrupt(&self, word: &'static str) -> crate::error::Corruption {
        self.view.corrupt(word)
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
        // The mark alone decides here: the role word still names a closing
        // server until its scan is done.
        // SYNC POINT: Acquire pairs with the Release store of the mark in
        // `Server::drop`.
        if ctl.server_waiting.load(Ordering::Acquire) == SERVER_CLOSED {
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
            Ok(()) => wait_for(
                &c.wait,
                &c.call_spin,
                &s.state,
                &s.client_waiting,
                Announce::Single,
                server,
                None,
                deadline,
                |st| self.classify(st),
            ),
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

impl<W: Wait> crate::ready::Waitable for Pending<'_, '_, W> {
    fn is_ready(&self) -> bool {
        // SYNC POINT: Acquire pairs with the server's Release CAS to
        // RESPONSE or FAILED, as in `wait_deadline`.
        let state = self.client.view.slot(self.index).state.load(Ordering::Acquire);
        self.classify(state).is_some()
    }

    fn wake_word(&self) -> &crate::AtomicU32 {
        &self.client.view.slot(self.index).state
    }

    fn announce(&self, asleep: bool) {
        self.client.view.slot(self.index).client_waiting.store(u32::from(asleep), Ordering::Relaxed);
    }

    fn peer_gone(&self) -> bool {
        let id = self.client.view.ctl.server.load(Ordering::Relaxed);
        crate::role::held(id) && !self.client.wait.is_alive(id)
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
