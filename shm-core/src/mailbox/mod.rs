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
//! [`SERVER_CLOSED`], fails every request still waiting, and only then
//! lets the role go (so no new server can claim the mailbox and have a
//! request it serves failed by that scan); clients get
//! [`CallError::Closed`](crate::CallError::Closed), at once for those requests and for every call
//! until a server claims the mailbox again (a client reads that word on the
//! line it rings anyway, so the check costs no cache miss).
//!
//! Clients that die are found by [`Server::reclaim`]; a server that dies is
//! found by a client whose wait ran out ([`CallError::PeerDied`](crate::CallError::PeerDied)), and a new
//! server that claims the role fails the dead one's in-flight requests.

use core::marker::PhantomData;
use core::ptr::NonNull;

use crate::error::Corruption;

use crate::sync::Ordering;
use crate::wait::{signal, word_addr, Wait, WORD};

use crate::format::mailbox::{id_of, low_of, pack, slot, MailboxControl, SlotControl};

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

#[doc(hidden)]
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

    #[inline]
    fn slot(&self, i: u32) -> &'a SlotControl {
        assert!(i < self.slot_count);
        // SAFETY: `i < slot_count`, and per `new` a SlotControl lives at
        // `slots + i * stride` for `'a`. It consists of atomics only.
        unsafe { &*self.slots.as_ptr().add(i as usize * self.stride).cast::<SlotControl>() }
    }

    #[inline]
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

    /// Slots in the mailbox.
    pub fn slot_count(&self) -> u32 {
        self.slot_count
    }

    /// The id in slot `i`'s `client` word (0: nobody), for inspection
    /// tools; `None` past the last slot. In a direct mailbox that is the
    /// connected client owning the slot; in a mailbox, a client in the
    /// middle of a call (or one that died holding the slot).
    pub fn slot_client(&self, i: u32) -> Option<u32> {
        (i < self.slot_count).then(|| self.slot(i).client.load(Ordering::Relaxed))
    }

    /// The id of the client using slot `i` (0: nobody), for tools that ask
    /// who uses a segment: [`slot_client`](Self::slot_client), except that
    /// a slot its client left with a request posted (ABANDONED, the same
    /// state in a mailbox and a direct mailbox; the server frees it) has no
    /// user. `None` past the last slot.
    pub fn slot_user(&self, i: u32) -> Option<u32> {
        let client = self.slot_client(i)?;
        let state = crate::format::mailbox::low_of(self.slot(i).state.load(Ordering::Relaxed));
        Some(if state == crate::format::mailbox::slot::ABANDONED { 0 } else { client })
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

    /// Closes the mailbox for the server `id`: the mark in
    /// `server_waiting`, a fence, `scan` (which fails what is posted), and
    /// only then the role word. While the role word names `id` no other
    /// server can claim the mailbox and take a request the scan is about to
    /// fail (review of the direct mailbox; the claiming one had the same
    /// order). Shared by both mailbox kinds' `Drop`.
    fn close_server<W: Wait>(&self, wait: &W, id: u32, scan: impl FnOnce()) {
        let ctl = self.ctl;
        // A server whose role was taken over (it was thought dead) closes
        // nothing.
        if ctl.server.load(Ordering::Relaxed) != id {
            crate::role::release(&ctl.server, id);
            return;
        }
        // SYNC POINT: Release pairs with the client's Acquire load of the
        // mark right after it posts (`SlotGuard::send`, direct
        // `Client::post`): a client that sees it sees every answer posted
        // before.
        ctl.server_waiting.store(SERVER_CLOSED, Ordering::Release);
        // Cache hook: a close is a hand-over too (of the words it marks).
        wait.clean(word_addr(&ctl.server_waiting), WORD);
        // SYNC POINT: pairs with the fence after a client's post (in
        // `notify`/`signal`): a request posted after this fence finds the
        // mark; one posted before is seen by the scan.
        crate::sync::fence(Ordering::SeqCst);
        if ctl.server.load(Ordering::Relaxed) != id {
            // Taken over just now (this side was judged dead: a wrong
            // liveness answer): the mark is not ours to leave, and the slots
            // are the new server's.
            let _ = ctl.server_waiting.compare_exchange(SERVER_CLOSED, 0, Ordering::Relaxed, Ordering::Relaxed);
            wait.clean(word_addr(&ctl.server_waiting), WORD);
            return;
        }
        scan();
        // Fails only if taken over during the scan (a wrong liveness answer
        // again); the mark then stays, since it may be a later close's own
        // (review: taking it back erased one): spare `Closed` errors until a
        // server claims again.
        crate::role::close(&ctl.server, id);
        wait.clean(word_addr(&ctl.server), WORD);
    }

    /// Frees slot `i` if its owner died (per [`Wait::is_alive`]) and its
    /// state is one `reclaimable` accepts (never a state the server holds);
    /// whether it freed a held slot. Shared by both mailbox kinds, whose
    /// FREE is 0 and whose owners take the owner word by CAS before the state
    /// leaves FREE.
    fn reclaim_dead_owner<W: Wait>(&self, wait: &W, i: u32, reclaimable: impl Fn(u32) -> bool) -> bool {
        const FREE: u32 = 0;
        let s = self.slot(i);
        // SYNC POINT: Acquire pairs with the owner's Release CAS out of FREE
        // (so `client` below names that owner, never an earlier one) and with
        // the dead owner's Release stores (its writes are done before the slot
        // is handed on).
        let cur = s.state.load(Ordering::Acquire);
        let st = low_of(cur);
        if st != FREE && !reclaimable(st) {
            return false;
        }
        let holder = s.client.load(Ordering::Relaxed);
        if holder == 0 || wait.is_alive(holder) {
            return false;
        }
        if st == FREE {
            // `holder` may be an owner that took the slot after our load of
            // `state` (owner CAS, then state CAS) and died holding it: now
            // that it is dead the state cannot move any more, so look again.
            // Still `cur`: it died before leaving FREE, or between storing
            // FREE and clearing its owner. Not `cur`: a dead owner's slot,
            // which the next pass frees through the path below.
            // SYNC POINT: Acquire pairs with the dead holder's Release CAS.
            if s.state.load(Ordering::Acquire) != cur {
                return false;
            }
            // Finish its release. (A CAS, so a claim can never be undone:
            // nobody else writes a nonzero owner word.)
            // SYNC POINT: Release pairs with the owners' Acquire CAS of `client`.
            if s.client.compare_exchange(holder, 0, Ordering::Release, Ordering::Relaxed).is_ok() {
                self.announce_free(wait);
            }
            return false;
        }
        // SYNC POINT: AcqRel: Acquire pairs with the dead owner's Release
        // stores; Release pairs with the next owner's Acquire load of `state`.
        if s.state.compare_exchange(cur, pack(id_of(cur), FREE), Ordering::AcqRel, Ordering::Relaxed).is_err() {
            return false;
        }
        // SYNC POINT: Release pairs with the owners' Acquire CAS of `client`.
        if s.client.compare_exchange(holder, 0, Ordering::Release, Ordering::Relaxed).is_ok() {
            self.announce_free(wait);
        }
        true
    }

    /// A server's [`Waitable::is_ready`](crate::ready::Waitable::is_ready),
    /// for both mailbox kinds: loads only; a slot in state `request` (which
    /// `try_recv` takes), or `id` no longer the server (which it reports).
    fn server_ready(&self, id: u32, request: u32) -> bool {
        self.ctl.server.load(Ordering::Relaxed) != id
            || (0..self.slot_count).any(|i| low_of(self.slot(i).state.load(Ordering::Relaxed)) == request)
    }

    /// A server's [`Waitable::announce`](crate::ready::Waitable::announce),
    /// for both mailbox kinds: `server_waiting` from 0 to 1 and back only,
    /// so a close mark (SERVER_CLOSED) stays and a server that was replaced
    /// never clears its successor's word. One waiter per server: the flag
    /// is not a count.
    fn announce_server(&self, asleep: bool) {
        let (from, to) = if asleep { (0, 1) } else { (1, 0) };
        let _ = self.ctl.server_waiting.compare_exchange(from, to, Ordering::Relaxed, Ordering::Relaxed);
    }

    /// Wakes clients sleeping for a slot, after a slot became FREE. (A slot
    /// freed by a CAS needs only this: storing FREE again after the CAS
    /// could undo a claim made in between.)
    fn announce_free<W: Wait>(&self, wait: &W) {
        signal(wait, &self.ctl.free_epoch, &self.ctl.free_waiters, u32::MAX);
    }
}

mod client;
pub mod direct;
mod server;
#[cfg(all(test, not(shm_loom)))]
mod tests;

pub use client::{Client, Pending, Response, SlotGuard};
pub use server::{Request, Server};
