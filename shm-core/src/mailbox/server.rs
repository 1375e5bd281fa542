//! The serving side of a mailbox: take requests, answer them in place,
//! recover what dead clients and a dead predecessor left.

use core::time::Duration;

use super::{MailboxStats, MailboxView};
use crate::error::{ClaimError, Role, ServeError};
use crate::format::mailbox::{id_of, low_of, pack, slot, CLOSED_LEN};
use crate::sync::Ordering;
use crate::wait::{explain, notify, wait_for, Announce, SpinBudget, Stop, Wait};

/// The serving side; one per mailbox at a time (claimed in the segment).
pub struct Server<'a, W: Wait> {
    view: MailboxView<'a>,
    wait: W,
    id: u32,
    /// Where the next scan starts (local round-robin state, not shared).
    cursor: core::sync::atomic::AtomicU32,
    /// How long waits for a request spin (see [`Wait::adaptive_spin`]).
    spin: SpinBudget,
}

impl<'a, W: Wait> Server<'a, W> {
    /// Claims the server role of the mailbox in `view`.
    ///
    /// The role is free if unheld or its holder is dead; taking over from a
    /// dead server fails the requests it held (their clients get
    /// [`CallError::Dropped`](crate::CallError::Dropped)) and frees the slots abandoned to it.
    pub fn claim(view: MailboxView<'a>, wait: W) -> Result<Self, ClaimError> {
        wait.check()?;
        let id = wait.self_id();
        crate::role::claim(&view.ctl.server, &wait, id).map_err(|holder| ClaimError::busy(Role::Server, holder))?;
        // SYNC POINT: pairs with the fence in `Server::drop` of a server this
        // one takes over while it closes: its close mark, stored before that
        // fence, comes before our 0 (or it sees our role and takes it back).
        crate::sync::fence(Ordering::SeqCst);
        // Open again: clients stop reporting `Closed`.
        view.ctl.server_waiting.store(0, Ordering::Relaxed);
        let server = Self { view, wait, id, cursor: core::sync::atomic::AtomicU32::new(0), spin: SpinBudget::new() };
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
        // Not SERVING or ABANDONED: those belong to the server (a live
        // `Request` may still write the payload), whoever the client was.
        self.view.reclaim_dead_owner(&self.wait, i, |st| {
            matches!(st, slot::CLAIMED | slot::REQUEST | slot::RESPONSE | slot::FAILED)
        })
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

    /// A snapshot of the mailbox's counters.
    pub fn stats(&self) -> MailboxStats {
        self.view.stats()
    }

    /// Starts fetching the cache lines of the slot `ring` names, so that
    /// its control line and its payload travel together.
    fn prefetch(&self, ring: u32) {
        let i = crate::format::mailbox::low_of(ring);
        if i < self.view.slot_count {
            #[cfg(target_arch = "x86_64")]
            {
                use core::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
                let ctl = core::ptr::from_ref(self.view.slot(i)).cast::<i8>();
                // SAFETY: SSE is part of x86_64's baseline; a prefetch only
                // hints the cache and never faults, whatever the address.
                unsafe {
                    _mm_prefetch::<_MM_HINT_T0>(ctl);
                    _mm_prefetch::<_MM_HINT_T0>(self.view.payload(i).cast::<i8>().cast_const());
                }
            }
        }
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
        let taken = wait_for(
            &self.wait,
            &self.spin,
            &ctl.request_epoch,
            &ctl.server_waiting,
            Announce::Single,
            None,
            None,
            deadline,
            |ring| {
                if scanned == Some(ring) {
                    return None;
                }
                scanned = Some(ring);
                self.prefetch(ring);
                self.take()
            },
        );
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
        // Another server took the role (this one was thought dead), or the
        // word was scribbled: say so, as the blocking calls do.
        if self.view.ctl.server.load(Ordering::Relaxed) != self.id {
            return explain(&self.wait, Err(ServeError::Replaced));
        }
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

impl<W: Wait> crate::ready::Waitable for Server<'_, W> {
    fn is_ready(&self) -> bool {
        self.view.server_ready(self.id, slot::REQUEST)
    }

    fn wake_word(&self) -> &crate::AtomicU32 {
        &self.view.ctl.request_epoch
    }

    fn announce(&self, asleep: bool) {
        self.view.announce_server(asleep);
    }
}

impl<W: Wait> Drop for Server<'_, W> {
    fn drop(&mut self) {
        // No `Request` of ours lives (they borrow the server): a SERVING or
        // ABANDONED slot is one a forgotten request left.
        self.view.close_server(&self.wait, self.id, || {
            self.recover();
            self.fail_waiting_requests();
        });
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
/// ([`CallError::Dropped`](crate::CallError::Dropped) for the client).
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
