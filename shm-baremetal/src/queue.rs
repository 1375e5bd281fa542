//! The queue's ends, made by a [`Link`]: shm-core's [`Producer`] and
//! [`Consumer`] over a [`LinkWait`], so that every call reports a reset peer
//! (`SendError::PeerReset`, `RecvError::PeerReset`) and the cache hooks run
//! around each message (see [`crate::cache`]).
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
//! let layout = || Layout::new().queue("samples", 1024).unwrap();
//! let t = Duration::from_secs(5);
//! let core1 = std::thread::spawn(move || {
//!     let me = Endpoint::new(window, CoreId::CORE1, CoreId::CORE0);
//!     let wait = SpinWait::<spin::relax::Spin, _>::new(me.session(), Std);
//!     let link = me.open(&layout(), &wait, t).unwrap();
//!     let mut rx = link.consumer("samples", &wait).unwrap();
//!     let mut buf = [0u8; 16];
//!     let n = rx.recv_timeout(&mut buf, t).unwrap();
//!     assert_eq!(&buf[..n], b"42");
//! });
//! let me = Endpoint::new(window, CoreId::CORE0, CoreId::CORE1);
//! let wait = SpinWait::<spin::relax::Spin, _>::new(me.session(), Std);
//! let link = me.create(&layout(), &wait, t).unwrap();
//! let mut tx = link.producer("samples", &wait).unwrap();
//! tx.send_timeout(b"42", t).unwrap();
//! core1.join().unwrap();
//! ```

use shm_core::queue as core_queue;
use shm_core::{ClaimError, Wait};

use crate::attach::{Link, LinkWait};
use crate::cache::{Cache, NoCache};
use crate::sync::serialized;

/// The writing end of a queue: shm-core's, over the link's hooks.
pub type Producer<'l, W, C = NoCache> = core_queue::Producer<'l, LinkWait<'l, W, C>>;
/// Ring bytes reserved for one message, written in place.
pub type WriteGrant<'p, 'l, W, C = NoCache> = core_queue::WriteGrant<'p, 'l, LinkWait<'l, W, C>>;
/// The reading end of a queue: shm-core's, over the link's hooks.
pub type Consumer<'l, W, C = NoCache> = core_queue::Consumer<'l, LinkWait<'l, W, C>>;
/// One message, read in place.
pub type ReadGrant<'c, 'l, W, C = NoCache> = core_queue::ReadGrant<'c, 'l, LinkWait<'l, W, C>>;

impl<C: Cache> Link<C> {
    /// Claims the producer role of queue `name`.
    pub fn producer<W: Wait>(&self, name: &str, wait: W) -> Result<Producer<'_, W, C>, ClaimError> {
        self.check()?;
        serialized(|| self.segment().producer(name, self.wait(wait))).map_err(|e| self.explain(e))
    }

    /// Claims the consumer role of queue `name`.
    pub fn consumer<W: Wait>(&self, name: &str, wait: W) -> Result<Consumer<'_, W, C>, ClaimError> {
        self.check()?;
        serialized(|| self.segment().consumer(name, self.wait(wait))).map_err(|e| self.explain(e))
    }
}
