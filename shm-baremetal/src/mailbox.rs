//! The mailbox's ends, wrapped: [`Client`] and [`Server`] report a reset
//! peer ([`LinkError::PeerReset`]) and call the cache hooks on the request and
//! response bytes. Needs compare-and-swap (not on thumbv6m), like shm-core's
//! mailbox.
//!
//! ```
//! # use std::time::Duration;
//! # use shm_baremetal::{CoreId, Endpoint, SpinWait, Window};
//! # use shm_core::Layout;
//! # struct Std;
//! # impl embedded_hal::delay::DelayNs for Std {
//! #     fn delay_ns(&mut self, ns: u32) { std::thread::sleep(Duration::from_nanos(ns.into())) }
//! # }
//! # let memory: &'static _ = Box::leak(Box::new(shm_core::mock::MockRegion::new(4096)));
//! # // SAFETY: a leaked heap buffer, only used through this crate.
//! # let window = unsafe { Window::new(memory.region().as_ptr(), memory.len()) }.unwrap();
//! // Both images declare the same channels.
//! let layout = || Layout::new().mailbox("rpc", 1, 64).unwrap();
//! let t = Duration::from_secs(5);
//! let core1 = std::thread::spawn(move || {
//!     let me = Endpoint::new(window, CoreId::CORE1, CoreId::CORE0);
//!     let wait = SpinWait::<spin::relax::Spin, _>::new(me.session(), Std);
//!     let link = me.open(&layout(), &wait, t).unwrap();
//!     let server = link.server("rpc", &wait).unwrap();
//!     server.serve_timeout(t, |buf, len| {
//!         buf[..len].make_ascii_uppercase();
//!         len
//!     }).unwrap();
//! });
//! let me = Endpoint::new(window, CoreId::CORE0, CoreId::CORE1);
//! let wait = SpinWait::<spin::relax::Spin, _>::new(me.session(), Std);
//! let link = me.create(&layout(), &wait, t).unwrap();
//! let client = link.client("rpc", &wait).unwrap();
//! let mut out = [0u8; 64];
//! let n = client.call_timeout(b"ping", &mut out, t).unwrap();
//! assert_eq!(&out[..n], b"PING");
//! core1.join().unwrap();
//! ```

use core::time::Duration;

use shm_core::mailbox as core_mailbox;
use shm_core::{CallError, ClaimError, ServeError, Wait};

use crate::attach::Link;
use crate::cache::Cache;
use crate::error::LinkError;

impl<C: Cache> Link<C> {
    /// Claims the server role of mailbox `name`.
    pub fn server<W: Wait>(&self, name: &str, wait: W) -> Result<Server<'_, W, C>, LinkError<ClaimError>> {
        self.check()?;
        let inner = self.segment().server(name, wait).map_err(|e| self.explain(e))?;
        Ok(Server { link: self, inner })
    }

    /// A client of mailbox `name`.
    pub fn client<W: Wait>(&self, name: &str, wait: W) -> Result<Client<'_, W, C>, LinkError<ClaimError>> {
        self.check()?;
        let inner = self.segment().client(name, wait).map_err(|e| self.explain(e))?;
        Ok(Client { link: self, inner })
    }
}

/// The calling side of a mailbox (shm-core's
/// [`Client`](core_mailbox::Client), with reset detection and cache hooks).
pub struct Client<'l, W: Wait, C: Cache> {
    link: &'l Link<C>,
    inner: core_mailbox::Client<'l, W>,
}

impl<W: Wait, C: Cache> Client<'_, W, C> {
    /// Slot payload capacity: the largest request or response.
    pub fn slot_size(&self) -> usize {
        self.inner.slot_size()
    }

    /// Copies `request` into a slot, posts it, waits for the response and
    /// copies it into `response`; returns the response length. The whole
    /// call (claiming a slot, then waiting for the response) takes at most
    /// `timeout`.
    pub fn call_timeout(
        &self,
        request: &[u8],
        response: &mut [u8],
        timeout: Duration,
    ) -> Result<usize, LinkError<CallError>> {
        self.call_with(request, response, Some(timeout))
    }

    /// As [`call_timeout`](Self::call_timeout), waiting as long as it takes
    /// (or until the peer resets).
    pub fn call(&self, request: &[u8], response: &mut [u8]) -> Result<usize, LinkError<CallError>> {
        self.call_with(request, response, None)
    }

    fn call_with(
        &self,
        request: &[u8],
        response: &mut [u8],
        timeout: Option<Duration>,
    ) -> Result<usize, LinkError<CallError>> {
        self.link.check()?;
        let cache = self.link.cache();
        let outcome = (|| {
            // One deadline for the whole call: claim, then response.
            let mut deadline = self.inner.strategy().deadline(timeout);
            let mut slot = self.inner.claim_deadline(&mut deadline)?;
            let max = slot.len();
            let Some(dst) = slot.get_mut(..request.len()) else {
                return Err(CallError::TooLarge { len: request.len(), max });
            };
            dst.copy_from_slice(request);
            // Clean before `send`'s Release store of REQUEST.
            cache.clean(slot.as_ptr(), request.len());
            let pending = slot.send(request.len())?;
            let reply = pending.wait_deadline(&mut deadline)?;
            // Invalidate after the Acquire load that saw RESPONSE.
            cache.invalidate(reply.as_ptr(), reply.len());
            let n = reply.len();
            let Some(out) = response.get_mut(..n) else {
                return Err(CallError::TooLarge { len: n, max: response.len() });
            };
            out.copy_from_slice(&reply);
            Ok(n)
        })();
        outcome.map_err(|e| self.link.explain(e))
    }
}

/// The serving side of a mailbox (shm-core's
/// [`Server`](core_mailbox::Server), with reset detection and cache hooks).
pub struct Server<'l, W: Wait, C: Cache> {
    link: &'l Link<C>,
    inner: core_mailbox::Server<'l, W>,
}

impl<'l, W: Wait, C: Cache> Server<'l, W, C> {
    /// Slot payload capacity: the largest request or response.
    pub fn slot_size(&self) -> usize {
        self.inner.slot_size()
    }

    /// Frees slots held by clients that are no longer alive (their core
    /// reset); returns how many.
    pub fn reclaim(&self) -> u32 {
        self.inner.reclaim()
    }

    fn wrap<'s>(
        &self,
        request: Result<core_mailbox::Request<'s, 'l, W>, ServeError>,
    ) -> Result<Request<'s, 'l, W, C>, LinkError<ServeError>> {
        match request {
            Ok(inner) => {
                // Invalidate after the Acquire CAS that took the request.
                self.link.cache().invalidate(inner.data().as_ptr(), inner.len());
                Ok(Request { inner, cache: self.link.cache() })
            }
            Err(e) => Err(self.link.explain(e)),
        }
    }

    /// Takes the next request without blocking.
    pub fn try_recv(&self) -> Result<Request<'_, 'l, W, C>, LinkError<ServeError>> {
        self.link.check()?;
        self.wrap(self.inner.try_recv())
    }

    /// Waits at most `timeout` for the next request.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Request<'_, 'l, W, C>, LinkError<ServeError>> {
        self.link.check()?;
        self.wrap(self.inner.recv_timeout(timeout))
    }

    /// Waits as long as it takes (or until the peer resets).
    pub fn recv(&self) -> Result<Request<'_, 'l, W, C>, LinkError<ServeError>> {
        self.link.check()?;
        self.wrap(self.inner.recv())
    }

    /// Serves one request in place: `f` gets the whole slot and the request
    /// length and returns the response length. Waits at most `timeout`.
    pub fn serve_timeout(
        &self,
        timeout: Duration,
        f: impl FnOnce(&mut [u8], usize) -> usize,
    ) -> Result<(), LinkError<ServeError>> {
        let mut request = self.recv_timeout(timeout)?;
        let len = request.len();
        let n = f(request.buf_mut(), len);
        request.respond(n)
    }
}

/// A request the server holds, its bytes already invalidated in the cache.
/// [`respond`](Self::respond) cleans the response, then posts it. Dropping
/// it fails the call.
pub struct Request<'s, 'l, W: Wait, C: Cache> {
    inner: core_mailbox::Request<'s, 'l, W>,
    cache: &'l C,
}

impl<W: Wait, C: Cache> Request<'_, '_, W, C> {
    /// Length of the request.
    pub fn len(&self) -> usize {
        self.inner.len()
    }

    /// Whether the request is empty.
    pub fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }

    /// The request bytes.
    pub fn data(&self) -> &[u8] {
        self.inner.data()
    }

    /// The whole slot, to write the response in place.
    pub fn buf_mut(&mut self) -> &mut [u8] {
        self.inner.buf_mut()
    }

    /// Posts the first `len` bytes of the slot as the response.
    pub fn respond(mut self, len: usize) -> Result<(), LinkError<ServeError>> {
        let slot = self.inner.buf_mut();
        // Clean before `respond`'s Release CAS to RESPONSE (a too-long
        // `len` is refused by it; clean only what exists).
        self.cache.clean(slot.as_ptr(), len.min(slot.len()));
        self.inner.respond(len).map_err(LinkError::Channel)
    }
}
