//! The direct mailbox: request/response where each client keeps its own
//! slot, for the shortest round trip (format 2.2, channel kind 5).
//!
//! A [`Client`] takes a slot when it connects and keeps it until it is
//! dropped; each call writes the request into that slot and posts it with
//! one store, and the [`Server`], which polls the slots themselves, answers
//! in place with one compare-and-swap. Nothing else is written on the way:
//! no claim, no ring word, no SERVING step, no free. A polling round trip
//! therefore moves the slot's control line and its payload once each way,
//! about what two processes ping-ponging one word cost (`shm-bench`'s
//! `direct-spin` row against its `atomic-floor` row).
//!
//! What it gives up, against [`crate::mailbox`]: at most `slots` clients
//! are connected at once (one slot each); a client makes one call at a
//! time (`&mut self`); a posted request cannot be taken back, so a call
//! whose wait ran out reports [`CallError::StillPosted`] (its request may
//! still run) and the client's next call first waits for that late
//! response (and discards it); a server serves one request at a time.
//!
//! A call told [`CallError::Closed`] never runs: a server claiming the
//! mailbox after a close fails what was posted meanwhile.
//!
//! ```
//! use core::time::Duration;
//! use shm_core::mock::{MockRegion, ThreadWait};
//! use shm_core::{Layout, Segment};
//!
//! let layout = Layout::new().direct("rpc", 2, 64).unwrap();
//! let region = MockRegion::new(layout.size());
//! let segment = Segment::create(region.region(), &layout, 1, 0).unwrap();
//! let mut server = segment.direct_server("rpc", ThreadWait::new(1)).unwrap();
//! let mut client = segment.direct_client("rpc", ThreadWait::new(2)).unwrap();
//!
//! std::thread::scope(|s| {
//!     s.spawn(move || {
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
//! # Byte layout and states
//!
//! The area is a mailbox's ([`crate::format::mailbox`]); the slot states
//! and what each word means here are tabled in [`crate::format::direct`].
//!
//! # Failures
//!
//! Dropping the [`Server`] closes the mailbox: requests it had not taken
//! fail, and calls get [`CallError::Closed`] until a server claims it again.
//! A server that dies is found by a client whose wait ran out
//! ([`CallError::PeerDied`]); the next server fails every request that was
//! posted (the dead one may have been half-way through it), so those
//! clients get [`CallError::Dropped`] and call again. Slots of clients that
//! died are taken over by the next client that connects (once the server
//! has answered what they posted), and freed by [`Server::reclaim`]. A
//! slot whose words hold values no peer writes gives
//! [`CallError::Corrupted`] or [`ServeError::Corrupted`], never a panic or
//! a hang; its live client keeps it (dropped with a call pending, it leaves
//! the slot as it is; with none, it frees it), and once that client is
//! dead `reclaim` frees it (or a connecting client takes it over).

use core::time::Duration;

use super::{MailboxStats, MailboxView};
use crate::error::{CallError, ClaimError, Role, ServeError};
use crate::format::direct::slot;
use crate::format::mailbox::{id_of, low_of, pack, CLOSED_LEN, ID_MASK, SERVER_CLOSED};
use crate::sync::{fence, Ordering};
use crate::wait::{explain, notify, signal, wait_for, Announce, SpinBudget, Stop, Wait};

/// Starts fetching the cache line at `p`. A side polling a slot's control
/// word also asks for the slot's payload line this way, so that when the
/// peer's answer lands both lines travel together instead of one after
/// the other (on the 2-vCPU VM this took a one-word-plus-payload
/// ping-pong from 1.5-1.8x to 1.0-1.1x the one-word one).
#[inline(always)]
fn prefetch(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: SSE is part of x86_64's baseline; a prefetch only hints the
    // cache and never faults, whatever the address.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(p.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Whether a slot in state `st` (its low byte) is one the server no longer
/// touches once its client is dead: IDLE, RESPONSE, FAILED, or a value no
/// peer writes. (REQUEST is the server's to answer and ABANDONED its to
/// free; FREE is nobody's.) Such a slot of a dead client may be freed by
/// [`Server::reclaim`] or taken over by a connecting [`Client`].
fn settled(st: u32) -> bool {
    matches!(st, slot::IDLE | slot::RESPONSE | slot::FAILED) || st > slot::ABANDONED
}

/// How often a client waiting in [`Client::connect_timeout`] looks for
/// slots of dead clients to take over (each look asks [`Wait::is_alive`]
/// of every holder).
const TAKE_OVER_EVERY: Duration = Duration::from_millis(10);

/// The next request id after `id`: 1..2^24, skipping 0.
fn next_id(id: u32) -> u32 {
    match (id + 1) & ID_MASK {
        0 => 1,
        next => next,
    }
}

/// [`Client`], by a name that tells it from the claiming mailbox's
/// ([`crate::mailbox::Client`]) where both are in scope.
pub type DirectClient<'a, W> = Client<'a, W>;
/// [`Server`], by a name that tells it from the claiming mailbox's.
pub type DirectServer<'a, W> = Server<'a, W>;
/// [`Request`], by a name that tells it from the claiming mailbox's.
pub type DirectRequest<'s, 'a, W> = Request<'s, 'a, W>;

/// The serving side of a direct mailbox; one per mailbox at a time.
pub struct Server<'a, W: Wait> {
    view: MailboxView<'a>,
    wait: W,
    id: u32,
    /// Where the next scan starts: the slot after the last one served.
    cursor: core::cell::Cell<u32>,
    /// How long waits for a request spin (see [`Wait::adaptive_spin`]).
    spin: SpinBudget,
}

impl<'a, W: Wait> Server<'a, W> {
    /// Claims the server role of the direct mailbox in `view`.
    ///
    /// The role is free if unheld, closed, or its holder is dead. Taking
    /// over from a dead server fails every posted request (their clients get
    /// [`CallError::Dropped`]) and frees the slots of clients that left.
    pub fn claim(view: MailboxView<'a>, wait: W) -> Result<Self, ClaimError> {
        wait.check()?;
        let id = wait.self_id();
        let before = crate::role::claim_from(&view.ctl.server, &wait, id)
            .map_err(|holder| ClaimError::busy(Role::Server, holder))?;
        // SYNC POINT: pairs with the fence in `Server::drop` of a server this
        // one takes over while it closes: its close mark, stored before that
        // fence, comes before our 0 (or it sees our role and takes it back).
        fence(Ordering::SeqCst);
        // Open again: clients stop reporting `Closed`.
        view.ctl.server_waiting.store(0, Ordering::Relaxed);
        // SYNC POINT: pairs with the fence in `signal` in `Client::post`: a
        // client that posted and then still saw the close mark is one whose
        // request the scan below (or our `take`) sees.
        fence(Ordering::SeqCst);
        let server = Self { view, wait, id, cursor: core::cell::Cell::new(0), spin: SpinBudget::new() };
        if crate::role::held(before) {
            let failed = server.fail_posted(0);
            if failed > 0 {
                crate::event::event!("direct mailbox {}: failed {} request(s) of a dead server", view.index, failed);
            }
        } else if before == SERVER_CLOSED {
            // Requests posted after the last close's scan: their clients were
            // told `Closed` (they saw the mark after posting), so they must
            // never run (found by review: a retry ran them twice).
            server.fail_posted(CLOSED_LEN);
        }
        Ok(server)
    }

    /// Fails every posted request with `len` ([`CLOSED_LEN`]: the client
    /// reports `Closed`, else `Dropped`) and frees ABANDONED slots. Only
    /// while this side holds no [`Request`] (claiming, closing). Returns
    /// how many slots it touched.
    fn fail_posted(&self, len: u32) -> u32 {
        let mut touched = 0;
        for i in 0..self.view.slot_count {
            let s = self.view.slot(i);
            // SYNC POINT: Acquire pairs with the client's Release store of
            // REQUEST (or CAS to ABANDONED): its writes before are visible.
            let cur = s.state.load(Ordering::Acquire);
            match low_of(cur) {
                slot::REQUEST => {
                    // The slot is the server's while it reads REQUEST.
                    s.len.store(len, Ordering::Relaxed);
                    // SYNC POINT: Release pairs with the client's Acquire
                    // load of `state` in `Client::wait_outcome` (`len` first).
                    match s.state.compare_exchange(
                        cur,
                        pack(id_of(cur), slot::FAILED),
                        Ordering::Release,
                        Ordering::Relaxed,
                    ) {
                        Ok(_) => {
                            notify(&self.wait, &s.state, &s.client_waiting, 1);
                            touched += 1;
                        }
                        Err(now) if now == pack(id_of(cur), slot::ABANDONED) => {
                            touched += u32::from(self.view.free_abandoned(&self.wait, i, now));
                        }
                        Err(_) => {}
                    }
                }
                slot::ABANDONED => touched += u32::from(self.view.free_abandoned(&self.wait, i, cur)),
                _ => {}
            }
        }
        touched
    }

    /// Frees the slots held by clients that died (per [`Wait::is_alive`]).
    /// Returns how many it freed. A connecting client takes over a dead
    /// client's slot by itself, so a server busy with other clients need not
    /// call this for new ones to connect; calling it when idle (after a
    /// receive timed out, say) frees such slots sooner and keeps
    /// [`stats`](Self::stats) and `shmctl inspect` current.
    ///
    /// A dead client's posted request is served first (its slot is freed
    /// by a later `reclaim`). A dead client's slot whose state no peer
    /// writes (scribbled) is freed too, so it is not lost for good.
    ///
    /// ```
    /// # use core::time::Duration;
    /// # use shm_core::mock::{MockRegion, ThreadWait};
    /// # use shm_core::{Layout, Segment, ServeError};
    /// # let layout = Layout::new().direct("rpc", 2, 64).unwrap();
    /// # let region = MockRegion::new(layout.size());
    /// # let segment = Segment::create(region.region(), &layout, 1, 0).unwrap();
    /// let mut server = segment.direct_server("rpc", ThreadWait::new(1)).unwrap();
    /// for _ in 0..3 {
    ///     let idle = match server.recv_timeout(Duration::from_millis(1)) {
    ///         Ok(request) => {
    ///             let n = request.len();
    ///             request.respond(n).unwrap();
    ///             false
    ///         }
    ///         Err(ServeError::Timeout) => true,
    ///         Err(e) => panic!("{e}"),
    ///     };
    ///     // After the `match`: the request borrowed `server` until then.
    ///     if idle {
    ///         server.reclaim();
    ///     }
    /// }
    /// ```
    pub fn reclaim(&self) -> u32 {
        let freed = (0..self.view.slot_count).filter(|&i| self.reclaim_slot(i)).count() as u32;
        if freed > 0 {
            crate::event::event!("direct mailbox {}: reclaimed {} slot(s) of dead clients", self.view.index, freed);
        }
        freed
    }

    fn reclaim_slot(&self, i: u32) -> bool {
        // REQUEST is the server's to answer, ABANDONED its to free. A state
        // no peer writes is nobody's: no `Request` of ours lives (it would
        // borrow `self` mutably) and `take` never takes it, so with its
        // owner dead nobody touches the payload.
        self.view.reclaim_dead_owner(&self.wait, i, settled)
    }

    /// Slot payload capacity: the largest request or response.
    pub fn slot_size(&self) -> usize {
        self.view.slot_size()
    }

    /// A corruption report for word `word` of this mailbox (for typed calls).
    #[cfg(feature = "zerocopy")]
    pub(crate) fn corrupt(&self, word: &'static str) -> crate::error::Corruption {
        self.view.corrupt(word)
    }

    /// A snapshot of the counters and slot states (indexed by the states
    /// of [`crate::format::direct::slot`]).
    pub fn stats(&self) -> MailboxStats {
        self.view.stats()
    }

    /// One scan of the slots, from the one after the last served: the first
    /// posted request as (slot, id, len), freeing ABANDONED slots on the way.
    // The polling round trip's functions, on both sides, are
    // `inline(always)`: with the calls between them left in, the server got
    // from seeing REQUEST to its answer 20-30 ns later (2-vCPU VM, against
    // the same accesses written inline; docs/mailbox-floor.md).
    #[inline(always)]
    fn take(&self) -> Option<Result<(u32, u32, usize), ServeError>> {
        let n = self.view.slot_count;
        // From the cursor round to it again, without a division per slot
        // (this runs at every look while the server polls).
        let mut i = self.cursor.get();
        for _ in 0..n {
            if i >= n {
                i = 0;
            }
            let s = self.view.slot(i);
            i += 1;
            // SYNC POINT: Acquire pairs with the client's Release store of
            // REQUEST in `Client::post`: the request bytes and `len` are
            // visible.
            let cur = s.state.load(Ordering::Acquire);
            match low_of(cur) {
                slot::REQUEST => {}
                // No `Request` of ours lives (it borrows `self` mutably), so
                // nobody uses an ABANDONED slot's payload: free it.
                slot::ABANDONED => {
                    self.view.free_abandoned(&self.wait, i - 1, cur);
                    continue;
                }
                _ => continue,
            }
            let i = i - 1;
            // Fetch the request's bytes now. The line the polling loop
            // prefetched went stale when the client wrote them, and the
            // caller reads (and mostly rewrites) them only after the way
            // back through `recv`: started here, the fetch overlaps that.
            prefetch(self.view.payload(i));
            // The next scan starts after this slot.
            self.cursor.set(i + 1);
            let len = s.len.load(Ordering::Relaxed);
            if len > self.view.slot_size {
                let _ = self.finish(i, id_of(cur), 0, slot::FAILED);
                return Some(Err(ServeError::Corrupted(self.view.corrupt("slot.len"))));
            }
            // Cache hook: after the Acquire load that saw REQUEST, before
            // anyone reads the request.
            self.wait.invalidate(self.view.payload(i), len as usize);
            return Some(Ok((i, id_of(cur), len as usize)));
        }
        None
    }

    #[inline(always)]
    fn wait_request(&self, deadline: &mut W::Deadline) -> Result<(u32, u32, usize), ServeError> {
        self.wait.check()?;
        let ctl = self.view.ctl;
        if ctl.server.load(Ordering::Relaxed) != self.id {
            return Err(ServeError::Replaced);
        }
        // The payload most likely to carry the next request: the slot
        // served last (a client calling in a loop).
        let n = self.view.slot_count;
        // (A raw view may have no slots: then there is nothing to fetch.)
        let hot = match (n, self.cursor.get()) {
            (0, _) => core::ptr::null(),
            // The cursor is the slot after the last served, 0 to n.
            (n, 0) => self.view.payload(n - 1).cast_const(),
            (n, c) => self.view.payload(c.min(n) - 1).cast_const(),
        };
        // Poll the slots themselves while spinning; sleep on the doorbell,
        // which a client rings only when `server_waiting` says we sleep.
        let taken = wait_for(
            &self.wait,
            &self.spin,
            &ctl.request_epoch,
            &ctl.server_waiting,
            Announce::Single,
            None,
            None,
            deadline,
            |_| {
                let found = self.take();
                if found.is_none() {
                    prefetch(hot);
                }
                found
            },
        );
        match taken {
            Ok(found) => found,
            Err(Stop::Reset(reset)) => Err(reset.into()),
            Err(_) if ctl.server.load(Ordering::Relaxed) != self.id => Err(ServeError::Replaced),
            Err(_) => Err(ServeError::Timeout),
        }
    }

    #[inline(always)]
    fn request(&mut self, taken: Result<(u32, u32, usize), ServeError>) -> Result<Request<'_, 'a, W>, ServeError> {
        let (index, id, len) = explain(&self.wait, taken)?;
        crate::crash::point("direct.server.holding");
        Ok(Request { server: self, index, id, len, done: false })
    }

    /// Takes the next request without blocking.
    pub fn try_recv(&mut self) -> Result<Request<'_, 'a, W>, ServeError> {
        let taken = match self.wait.check() {
            Err(reset) => Err(reset.into()),
            Ok(()) if self.view.ctl.server.load(Ordering::Relaxed) != self.id => Err(ServeError::Replaced),
            Ok(()) => self.take().unwrap_or(Err(ServeError::Empty)),
        };
        self.request(taken)
    }

    /// Waits at most `timeout` for the next request.
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<Request<'_, 'a, W>, ServeError> {
        let mut deadline = self.wait.deadline(Some(timeout));
        let taken = self.wait_request(&mut deadline);
        self.request(taken)
    }

    /// Waits as long as it takes for the next request.
    #[inline(always)]
    pub fn recv(&mut self) -> Result<Request<'_, 'a, W>, ServeError> {
        let mut deadline = self.wait.deadline(None);
        let taken = self.wait_request(&mut deadline);
        self.request(taken)
    }

    /// Serves one request in place: `f` gets the whole slot and the request
    /// length and returns the response length. Waits at most `timeout`.
    pub fn serve_timeout(
        &mut self,
        timeout: Duration,
        f: impl FnOnce(&mut [u8], usize) -> usize,
    ) -> Result<(), ServeError> {
        let mut req = self.recv_timeout(timeout)?;
        let len = req.len();
        let n = f(req.buf_mut(), len);
        req.respond(n)
    }

    /// Posts `to` (RESPONSE or FAILED) with `len` in slot `i`, whose request
    /// `id` this side holds, and wakes the client if it sleeps.
    #[inline(always)]
    fn finish(&self, i: u32, id: u32, len: u32, to: u32) -> Result<(), ServeError> {
        let v = &self.view;
        let s = v.slot(i);
        s.len.store(len, Ordering::Relaxed);
        if to == slot::RESPONSE {
            // Cache hook: the response goes to memory before RESPONSE
            // publishes it.
            self.wait.clean(v.payload(i), len as usize);
        }
        // SYNC POINT: Release pairs with the client's Acquire load of
        // `state` in `Client::wait_outcome`: the response bytes and `len`
        // come first.
        match s.state.compare_exchange(pack(id, slot::REQUEST), pack(id, to), Ordering::Release, Ordering::Relaxed) {
            Ok(_) => {
                crate::crash::point("direct.server.responded");
                notify(&self.wait, &s.state, &s.client_waiting, 1);
                Ok(())
            }
            Err(cur) if cur == pack(id, slot::ABANDONED) => {
                v.free_abandoned(&self.wait, i, cur);
                Err(ServeError::Abandoned)
            }
            Err(_) => Err(ServeError::Corrupted(v.corrupt("slot.state"))),
        }
    }
}

impl<W: Wait> crate::ready::Waitable for Server<'_, W> {
    fn is_ready(&self) -> bool {
        self.view.server_ready(self.id, slot::REQUEST)
    }

    fn wake_word(&self) -> &crate::AtomicU32 {
        // Clients ring it after posting when `server_waiting` says we sleep.
        &self.view.ctl.request_epoch
    }

    fn announce(&self, asleep: bool) {
        self.view.announce_server(asleep);
    }
}

impl<W: Wait> Drop for Server<'_, W> {
    fn drop(&mut self) {
        // No `Request` of ours lives (they borrow the server mutably).
        self.view.close_server(&self.wait, self.id, || {
            self.fail_posted(CLOSED_LEN);
        });
    }
}

/// A request the server holds: read it, modify it in place, then
/// [`respond`](Self::respond). Dropping it fails the call
/// ([`CallError::Dropped`] for the client). Forgetting it
/// (`mem::forget`) leaves the request posted: the server takes it again.
pub struct Request<'s, 'a, W: Wait> {
    server: &'s mut Server<'a, W>,
    index: u32,
    id: u32,
    len: usize,
    done: bool,
}

impl<W: Wait> Request<'_, '_, W> {
    /// Length of the request.
    #[inline(always)]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the request is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The request bytes.
    pub fn data(&self) -> &[u8] {
        // SAFETY: the slot reads REQUEST with our id (seen in `take`), which
        // the protocol grants to the server until it posts RESPONSE or
        // FAILED; `len <= slot_size` was checked in `take`; the server
        // serves one request at a time (`&mut` borrow).
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

    /// The whole slot, to write the response in place.
    #[inline(always)]
    pub fn buf_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `data`; `&mut self` makes the borrow unique here.
        unsafe { core::slice::from_raw_parts_mut(self.server.view.payload(self.index), self.server.view.slot_size()) }
    }

    /// Copies `response` into the slot and posts it, without forming a
    /// reference to the slot.
    pub fn respond_with(self, response: &[u8]) -> Result<(), ServeError> {
        let max = self.server.slot_size();
        if response.len() > max {
            return Err(ServeError::TooLarge { len: response.len(), max });
        }
        // SAFETY: as in `data`; `response.len() <= slot_size`.
        unsafe { crate::payload::copy_in(response, self.server.view.payload(self.index)) };
        self.respond(response.len())
    }

    /// Posts the first `len` bytes of the slot as the response.
    #[inline(always)]
    pub fn respond(mut self, len: usize) -> Result<(), ServeError> {
        let max = self.server.slot_size();
        if len > max {
            return Err(ServeError::TooLarge { len, max });
        }
        self.done = true;
        self.server.finish(self.index, self.id, len as u32, slot::RESPONSE)
    }
}

impl<W: Wait> Drop for Request<'_, '_, W> {
    fn drop(&mut self) {
        if !self.done {
            let _ = self.server.finish(self.index, self.id, 0, slot::FAILED);
        }
    }
}

/// A connected client of a direct mailbox: it owns one slot until dropped
/// and makes one call at a time.
pub struct Client<'a, W: Wait> {
    view: MailboxView<'a>,
    wait: W,
    /// Our slot.
    index: u32,
    /// The id of our last posted request (or the slot's id at connect).
    id: u32,
    /// A request posted whose outcome nobody has read yet (its call's wait
    /// ran out): the next call waits for it first.
    pending: bool,
    /// How long waits for a response spin.
    spin: SpinBudget,
}

impl<'a, W: Wait> Client<'a, W> {
    /// Connects to the direct mailbox in `view`: takes a free slot, or
    /// else the slot of a client that died holding it ([`Wait::is_alive`]),
    /// or fails with [`ClaimError::Busy`] ([`Role::Client`]) when every
    /// slot has a live client. (A dead client's slot is taken over once the
    /// server has answered what it posted; the server's
    /// [`reclaim`](Server::reclaim) frees such slots too, but a busy server
    /// need not run it for new clients to connect.)
    pub fn connect(view: MailboxView<'a>, wait: W) -> Result<Self, ClaimError> {
        wait.check()?;
        let me = wait.self_id();
        let found = Self::find_slot(&view, &wait, me, true);
        let Some((index, id)) = found else {
            return Err(Self::no_slot(&view));
        };
        crate::crash::point("direct.client.connected");
        Ok(Self { view, wait, index, id, pending: false, spin: SpinBudget::new() })
    }

    /// Connects, waiting at most `timeout` for a slot to come free or for
    /// a client holding one to die (looked for every 10 ms).
    pub fn connect_timeout(view: MailboxView<'a>, wait: W, timeout: Duration) -> Result<Self, ClaimError> {
        wait.check()?;
        let me = wait.self_id();
        let mut deadline = wait.deadline(Some(timeout));
        let ctl = view.ctl;
        let spin = SpinBudget::new();
        // Judging holders costs a liveness check each (a system call on a
        // host): at the first look, then at most every `TAKE_OVER_EVERY`.
        let mut judge = wait.deadline(Some(Duration::ZERO));
        let found = wait_for(
            &wait,
            &spin,
            &ctl.free_epoch,
            &ctl.free_waiters,
            Announce::Counted,
            None,
            None,
            &mut deadline,
            |_| {
                let take_over = wait.expired(&mut judge);
                if take_over {
                    judge = wait.deadline(Some(TAKE_OVER_EVERY));
                }
                Self::find_slot(&view, &wait, me, take_over)
            },
        );
        match found {
            Ok((index, id)) => Ok(Self { view, wait, index, id, pending: false, spin: SpinBudget::new() }),
            Err(Stop::Reset(reset)) => Err(reset.into()),
            Err(_) => Err(Self::no_slot(&view)),
        }
    }

    /// The error for a mailbox whose every slot has a client: names one.
    fn no_slot(view: &MailboxView<'a>) -> ClaimError {
        let holder = (0..view.slot_count).map(|i| view.slot(i).client.load(Ordering::Relaxed)).find(|&c| c != 0);
        ClaimError::busy(Role::Client, holder.unwrap_or(0))
    }

    /// A free slot for `me`, or (if `take_over`) a dead client's: (slot,
    /// request id). Free slots first: they cost no liveness check.
    fn find_slot(view: &MailboxView<'a>, wait: &W, me: u32, take_over: bool) -> Option<(u32, u32)> {
        let free = || (0..view.slot_count).find_map(|i| Self::try_connect(view, wait, me, i).map(|id| (i, id)));
        free().or_else(|| {
            if !take_over {
                return None;
            }
            let dead = (0..view.slot_count).find_map(|i| Self::try_take_over(view, wait, me, i).map(|id| (i, id)));
            // A reclaim between its FREE and clearing the owner word hides
            // the slot from both passes (loom): one more look for free ones.
            dead.or_else(free)
        })
    }

    /// Takes slot `i` over for `me` from a client that died holding it, if
    /// its state is [`settled`] (the server is done with it) or FREE;
    /// returns its request id.
    ///
    /// As a role claim from a dead holder: ownership is decided by the CAS
    /// of `client` from the dead id to ours. With its client dead, only the
    /// server's [`reclaim`](Server::reclaim) still moves such a slot, and
    /// only to FREE (then clears `client` by a CAS from the dead id, which
    /// fails once we own it); a connecting client needs `client` at 0. So
    /// the state we then set to IDLE is the one we saw, or FREE. IDLE comes
    /// with the next request id, so that a reclaim's CAS from the dead
    /// client's IDLE, loaded before we owned the slot, fails.
    fn try_take_over(view: &MailboxView<'a>, wait: &W, me: u32, i: u32) -> Option<u32> {
        let s = view.slot(i);
        // SYNC POINT: Acquire pairs with the dead client's Release stores of
        // `state` (its last call's writes are done) and the server's Release
        // CAS to RESPONSE or FAILED (its answer is done with the payload).
        let seen = low_of(s.state.load(Ordering::Acquire));
        // FREE with a dead holder too: it died between taking the owner word
        // and IDLE (connecting), or between FREE and clearing it (leaving).
        if seen != slot::FREE && !settled(seen) {
            return None;
        }
        let holder = s.client.load(Ordering::Relaxed);
        if !crate::role::held(holder) || holder == me || wait.is_alive(holder) {
            return None;
        }
        // SYNC POINT: Acquire pairs with the Release stores the dead client
        // made before it died (as `try_connect`'s CAS from 0); on failure,
        // with a reclaim's Release CAS of `client` to 0, so that the look
        // for free slots after this sees the FREE it stored first (loom).
        s.client.compare_exchange(holder, me, Ordering::Acquire, Ordering::Acquire).ok()?;
        crate::crash::point("direct.client.took_over");
        // Two tries: the state we saw, or FREE if a reclaim got there
        // between our loads.
        for _ in 0..2 {
            // SYNC POINT: Acquire as above, and pairs with a reclaim's
            // Release CAS to FREE.
            let cur = s.state.load(Ordering::Acquire);
            let st = low_of(cur);
            if st != slot::FREE && !settled(st) {
                break;
            }
            // A new id: a reclaim that loaded the dead client's IDLE (same
            // id, same state) before we took the owner word must fail its
            // CAS to FREE, not free the slot under us (review: it did).
            // Ids are 24 bits: only 2^24 takeovers of this slot while one
            // reclaim stalls between its load and its CAS bring it back.
            let id = next_id(id_of(cur));
            // SYNC POINT: Release pairs with the Acquire load of `state` in
            // `reclaim_slot`: a reclaimer that sees IDLE sees our id.
            if s.state.compare_exchange(cur, pack(id, slot::IDLE), Ordering::Release, Ordering::Relaxed).is_ok() {
                crate::event::event!("direct mailbox {}: took over slot {} of dead client {}", view.index, i, holder);
                return Some(id);
            }
        }
        // Not settled after all (a state only a hostile writer leaves here):
        // hand it back to the dead holder, whose slot a reclaim frees once it
        // is settled (with `client` at 0 nobody would).
        s.client.store(holder, Ordering::Relaxed);
        None
    }

    /// Takes slot `i` for `me` if it is free; returns its request id.
    ///
    /// As a mailbox claim: ownership is decided by the CAS of `client` from
    /// 0, and only then does the state move from FREE to IDLE.
    fn try_connect(view: &MailboxView<'a>, wait: &W, me: u32, i: u32) -> Option<u32> {
        let s = view.slot(i);
        // SYNC POINT: Acquire pairs with the Release store or CAS of 0 into
        // `client` (`release_owner`, a reclaim): who freed the slot stored
        // FREE before, so a slot just freed is not missed for a stale state
        // (loom: a connect racing a reclaim said `Busy`).
        if s.client.load(Ordering::Acquire) != 0 || low_of(s.state.load(Ordering::Relaxed)) != slot::FREE {
            return None;
        }
        // SYNC POINT: Acquire pairs with the Release store of 0 in
        // `release_owner`: the previous owner is done with the slot.
        s.client.compare_exchange(0, me, Ordering::Acquire, Ordering::Relaxed).ok()?;
        // SYNC POINT: Acquire pairs with the Release store or CAS of FREE
        // (`Client::drop`, `reclaim_slot`, `free_abandoned`): whoever freed
        // the slot is done with the payload.
        let cur = s.state.load(Ordering::Acquire);
        // SYNC POINT: Release pairs with the Acquire load of `state` in
        // `reclaim_slot`: a reclaimer that sees IDLE sees our id in `client`.
        if low_of(cur) == slot::FREE
            && s.state.compare_exchange(cur, pack(id_of(cur), slot::IDLE), Ordering::Release, Ordering::Relaxed).is_ok()
        {
            return Some(id_of(cur));
        }
        // Not FREE after all (the server is between clearing an ABANDONED
        // slot's owner and freeing it, or the word is garbage): let it go.
        // SYNC POINT: Release pairs with the next claimer's Acquire CAS.
        s.client.store(0, Ordering::Release);
        view.announce_free(wait);
        None
    }

    /// Slot payload capacity: the largest request or response.
    pub fn slot_size(&self) -> usize {
        self.view.slot_size()
    }

    /// Which slot this client holds.
    pub fn slot(&self) -> u32 {
        self.index
    }

    /// A corruption report for word `word` of this mailbox (for typed calls).
    #[cfg(feature = "zerocopy")]
    pub(crate) fn corrupt(&self, word: &'static str) -> crate::error::Corruption {
        self.view.corrupt(word)
    }

    /// The wait strategy.
    pub fn strategy(&self) -> &W {
        &self.wait
    }

    /// Whether the server recorded in the mailbox is alive (`false` when no
    /// server is attached).
    pub fn server_alive(&self) -> bool {
        let id = self.view.ctl.server.load(Ordering::Relaxed);
        crate::role::held(id) && self.wait.is_alive(id)
    }

    /// Whether the server closed the mailbox (and none claimed it since).
    /// `server_waiting` is the hint (on a line the server writes only to
    /// sleep or close); the role word decides.
    fn server_closed(&self) -> bool {
        let ctl = self.view.ctl;
        // SYNC POINT: Acquire pairs with the Release CAS in `role::close`:
        // whatever the server did to our slot before closing (answering
        // it) is visible to the loads that follow.
        ctl.server_waiting.load(Ordering::Relaxed) == SERVER_CLOSED
            && ctl.server.load(Ordering::Acquire) == SERVER_CLOSED
    }

    /// Copies `request` into the slot, waits for the response and copies it
    /// into `response`; returns the response length. The whole call takes
    /// at most `timeout`, including the wait for an earlier call's late
    /// response. When it runs out, the request stays with the server
    /// ([`CallError::StillPosted`]: it may still run).
    ///
    /// A response longer than `response` gives [`CallError::BufferTooSmall`] (the
    /// call ran; its response is dropped).
    pub fn call_timeout(&mut self, request: &[u8], response: &mut [u8], timeout: Duration) -> Result<usize, CallError> {
        let mut deadline = self.wait.deadline(Some(timeout));
        self.call_deadline(request, response, &mut deadline)
    }

    /// As [`call_timeout`](Self::call_timeout), waiting as long as it takes.
    #[inline(always)]
    pub fn call(&mut self, request: &[u8], response: &mut [u8]) -> Result<usize, CallError> {
        let mut deadline = self.wait.deadline(None);
        self.call_deadline(request, response, &mut deadline)
    }

    #[inline(always)]
    fn call_deadline(
        &mut self,
        request: &[u8],
        response: &mut [u8],
        deadline: &mut W::Deadline,
    ) -> Result<usize, CallError> {
        let max = self.slot_size();
        if request.len() > max {
            return Err(CallError::TooLarge { len: request.len(), max });
        }
        let result = self.call_inner(request, response, deadline);
        explain(&self.wait, result)
    }

    #[inline(always)]
    fn call_inner(
        &mut self,
        request: &[u8],
        response: &mut [u8],
        deadline: &mut W::Deadline,
    ) -> Result<usize, CallError> {
        self.wait.check()?;
        if self.pending {
            // An earlier call's request is still the server's: its late
            // outcome comes first, and is discarded.
            if self.server_closed() {
                return Err(CallError::Closed);
            }
            match self.wait_outcome(deadline) {
                Ok(_) | Err(CallError::Dropped | CallError::Closed) => {}
                Err(e) => return Err(e),
            }
        }
        if self.server_closed() {
            return Err(CallError::Closed);
        }
        self.post(request)?;
        let len = self.wait_outcome(deadline)?;
        if len > response.len() {
            return Err(CallError::BufferTooSmall { needed: len });
        }
        // SAFETY: the slot reads RESPONSE with our id (Acquire in
        // `wait_outcome`), which the protocol grants to its client until it
        // posts again; `len <= slot_size` was checked there.
        unsafe { crate::payload::copy_out(self.view.payload(self.index), &mut response[..len]) };
        Ok(len)
    }

    /// Writes `request` into our slot and posts it; rings the server if it
    /// sleeps. `Err(Closed)` if the server closed meanwhile (the request
    /// stays posted: a server that claims the mailbox later serves it, and
    /// the next call discards that answer).
    #[inline(always)]
    fn post(&mut self, request: &[u8]) -> Result<(), CallError> {
        let s = self.view.slot(self.index);
        let payload = self.view.payload(self.index);
        // SAFETY: the slot is ours and not posted (IDLE, RESPONSE or FAILED
        // with our id: `pending` is false), which the protocol grants to its
        // client; `request.len() <= slot_size` (checked in `call_deadline`).
        unsafe { crate::payload::copy_in(request, payload) };
        s.len.store(request.len() as u32, Ordering::Relaxed);
        // Cache hook: the request goes to memory before REQUEST publishes it.
        self.wait.clean(payload, request.len());
        self.id = next_id(self.id);
        crate::crash::point("direct.client.written");
        // SYNC POINT: Release pairs with the server's Acquire load of
        // `state` in `take`: the request bytes and `len` come first.
        s.state.store(pack(self.id, slot::REQUEST), Ordering::Release);
        self.pending = true;
        crate::crash::point("direct.client.posted");
        let ctl = self.view.ctl;
        // SYNC POINT: the fence in `signal` pairs with the one in `wait_for`
        // (the server announcing its sleep) and with the ones in
        // `Server::claim` and `Server::drop`.
        signal(&self.wait, &ctl.request_epoch, &ctl.server_waiting, 1);
        // The close mark, and the request still posted: the closing server's
        // scan missed it, and no server takes it until one claims the
        // mailbox again (then the next call settles it). A server that
        // answered or failed it before closing changed the state first, and
        // the wait reports that. The mark alone decides: the role word still
        // names a closing server until its scan is done.
        // SYNC POINT: Acquire pairs with the Release store of the mark in
        // `Server::drop` (answers posted before it are visible), and the
        // load of `state` with the server's Release CAS in `finish`.
        if ctl.server_waiting.load(Ordering::Acquire) == SERVER_CLOSED
            && s.state.load(Ordering::Acquire) == pack(self.id, slot::REQUEST)
        {
            return Err(CallError::Closed);
        }
        Ok(())
    }

    #[doc(hidden)]
    /// Posts `request` without waiting for its outcome (model checking
    /// only: it leaves the call pending, as a timed-out call does).
    #[cfg(shm_loom)]
    pub fn post_only(&mut self, request: &[u8]) {
        let _ = self.post(request);
    }

    /// What a `state` word says of our posted request: `None` while posted.
    #[inline(always)]
    fn classify(&self, state: u32) -> Option<Result<(), CallError>> {
        if id_of(state) != self.id {
            return Some(Err(CallError::Corrupted(self.view.corrupt("slot.state"))));
        }
        match low_of(state) {
            slot::REQUEST => None,
            slot::RESPONSE => Some(Ok(())),
            slot::FAILED if self.view.slot(self.index).len.load(Ordering::Relaxed) == CLOSED_LEN => {
                Some(Err(CallError::Closed))
            }
            slot::FAILED => Some(Err(CallError::Dropped)),
            _ => Some(Err(CallError::Corrupted(self.view.corrupt("slot.state")))),
        }
    }

    /// Waits until `deadline` for the outcome of our posted request; the
    /// response length on success. `pending` stays set when the wait ran out
    /// (or the words are corrupted): the request is still the server's.
    #[inline(always)]
    fn wait_outcome(&mut self, deadline: &mut W::Deadline) -> Result<usize, CallError> {
        let s = self.view.slot(self.index);
        let payload = self.view.payload(self.index);
        let this = &*self;
        // SYNC POINT: the Acquire loads in `wait_for` pair with the server's
        // Release CAS to RESPONSE or FAILED in `Server::finish`.
        let waited = wait_for(
            &this.wait,
            &this.spin,
            &s.state,
            &s.client_waiting,
            Announce::Single,
            Some(&this.view.ctl.server),
            None,
            deadline,
            |st| {
                // At every look, posted or answered: while posted, so the
                // payload line travels with the control line the server
                // writes last; once answered, so the server's bytes are on
                // their way before the copy out reads them.
                prefetch(payload);
                this.classify(st)
            },
        );
        let outcome = match waited {
            Ok(outcome) => outcome,
            Err(stop) => {
                let dead = || !this.server_alive();
                return Err(stop.into_error(dead, CallError::PeerDied, CallError::StillPosted));
            }
        };
        if let Err(CallError::Corrupted(c)) = outcome {
            return Err(CallError::Corrupted(c));
        }
        self.pending = false;
        outcome?;
        let len = s.len.load(Ordering::Relaxed);
        if len > self.view.slot_size {
            return Err(CallError::Corrupted(self.view.corrupt("slot.len")));
        }
        // Cache hook: after the Acquire load that saw RESPONSE, before
        // anyone reads the response.
        self.wait.invalidate(payload, len as usize);
        Ok(len as usize)
    }
}

impl<W: Wait> Drop for Client<'_, W> {
    fn drop(&mut self) {
        let s = self.view.slot(self.index);
        if self.pending {
            // SYNC POINT: Acquire pairs with the server's Release CAS to
            // RESPONSE or FAILED: if it answered, the slot is ours to free.
            let cur = s.state.load(Ordering::Acquire);
            match self.classify(cur) {
                // Still posted: hand it to the server, which frees it once
                // done with it.
                // SYNC POINT: Release pairs with the Acquire load of `state`
                // in `take`/`fail_posted` (we wrote nothing since posting).
                None => match s.state.compare_exchange(
                    cur,
                    pack(self.id, slot::ABANDONED),
                    Ordering::Release,
                    Ordering::Acquire,
                ) {
                    Ok(_) => return,
                    // Answered in between: ours again, free it below.
                    Err(now)
                        if matches!(self.classify(now), Some(Ok(()) | Err(CallError::Dropped | CallError::Closed))) => {
                    }
                    Err(_) => return,
                },
                Some(Ok(()) | Err(CallError::Dropped | CallError::Closed)) => {}
                // Words we cannot read: leave the slot as it is.
                Some(Err(_)) => return,
            }
        }
        // SYNC POINT: Release pairs with the Acquire load of `state` in
        // `try_connect`: our payload accesses are done before the next owner
        // writes it.
        s.state.store(pack(self.id, slot::FREE), Ordering::Release);
        self.view.release_owner(&self.wait, self.index);
    }
}

#[cfg(all(test, not(shm_loom)))]
mod tests;
