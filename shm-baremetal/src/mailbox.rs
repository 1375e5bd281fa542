//! The mailbox's ends, made by a [`Link`]: shm-core's [`Client`] and
//! [`Server`] over a [`LinkWait`], so that every call reports a reset peer
//! (`CallError::PeerReset`, `ServeError::PeerReset`) and the cache hooks run
//! on the request and response bytes (see [`crate::cache`]). Needs
//! compare-and-swap, like shm-core's mailbox: native, or on thumbv6m
//! through the `critical-section` feature.
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

use shm_core::mailbox as core_mailbox;
use shm_core::{ClaimError, Wait};

use crate::attach::{Link, LinkWait};
use crate::cache::{Cache, NoCache};

/// The calling side of a mailbox: shm-core's, over the link's hooks.
pub type Client<'l, W, C = NoCache> = core_mailbox::Client<'l, LinkWait<'l, W, C>>;
/// A claimed slot, to write a request in place.
pub type SlotGuard<'c, 'l, W, C = NoCache> = core_mailbox::SlotGuard<'c, 'l, LinkWait<'l, W, C>>;
/// A posted request awaiting its response.
pub type Pending<'c, 'l, W, C = NoCache> = core_mailbox::Pending<'c, 'l, LinkWait<'l, W, C>>;
/// A response, read in place.
pub type Response<'c, 'l, W, C = NoCache> = core_mailbox::Response<'c, 'l, LinkWait<'l, W, C>>;
/// The serving side of a mailbox: shm-core's, over the link's hooks.
pub type Server<'l, W, C = NoCache> = core_mailbox::Server<'l, LinkWait<'l, W, C>>;
/// A request the server holds, modified in place.
pub type Request<'s, 'l, W, C = NoCache> = core_mailbox::Request<'s, 'l, LinkWait<'l, W, C>>;

impl<C: Cache> Link<C> {
    /// Claims the server role of mailbox `name`.
    pub fn server<W: Wait>(&self, name: &str, wait: W) -> Result<Server<'_, W, C>, ClaimError> {
        self.check()?;
        self.segment().server(name, self.wait(wait)).map_err(|e| self.explain(e))
    }

    /// A client of mailbox `name`.
    pub fn client<W: Wait>(&self, name: &str, wait: W) -> Result<Client<'_, W, C>, ClaimError> {
        self.check()?;
        self.segment().client(name, self.wait(wait)).map_err(|e| self.explain(e))
    }
}
