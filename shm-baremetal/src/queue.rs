//! The queue's ends, wrapped: [`Producer`] and [`Consumer`] report a reset
//! peer ([`LinkError::PeerReset`]) and call the cache hooks around each message.
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

use core::ops::{Deref, DerefMut};
use core::time::Duration;

use shm_core::queue as core_queue;
use shm_core::{ClaimError, RecvError, SendError, Wait};

use crate::attach::Link;
use crate::cache::Cache;
use crate::error::LinkError;
use crate::sync::serialized;

impl<C: Cache> Link<C> {
    /// Claims the producer role of queue `name`.
    pub fn producer<W: Wait>(&self, name: &str, wait: W) -> Result<Producer<'_, W, C>, LinkError<ClaimError>> {
        self.check()?;
        let inner = serialized(|| self.segment().producer(name, wait)).map_err(|e| self.explain(e))?;
        Ok(Producer { link: self, inner })
    }

    /// Claims the consumer role of queue `name`.
    pub fn consumer<W: Wait>(&self, name: &str, wait: W) -> Result<Consumer<'_, W, C>, LinkError<ClaimError>> {
        self.check()?;
        let inner = serialized(|| self.segment().consumer(name, wait)).map_err(|e| self.explain(e))?;
        Ok(Consumer { link: self, inner })
    }
}

/// The writing end of a queue (shm-core's [`Producer`](core_queue::Producer),
/// with reset detection and cache hooks).
pub struct Producer<'l, W: Wait, C: Cache> {
    link: &'l Link<C>,
    inner: core_queue::Producer<'l, W>,
}

impl<'l, W: Wait, C: Cache> Producer<'l, W, C> {
    /// The largest message this queue carries.
    pub fn max_message(&self) -> usize {
        self.inner.max_message()
    }

    fn wrap<'p>(
        link: &'l Link<C>,
        grant: Result<core_queue::WriteGrant<'p, 'l, W>, SendError>,
    ) -> Result<WriteGrant<'p, 'l, W, C>, LinkError<SendError>> {
        match grant {
            Ok(inner) => Ok(WriteGrant { inner, cache: link.cache() }),
            Err(e) => Err(link.explain(e)),
        }
    }

    /// Reserves `len` contiguous bytes without blocking.
    pub fn try_grant(&mut self, len: usize) -> Result<WriteGrant<'_, 'l, W, C>, LinkError<SendError>> {
        let link = self.link;
        link.check()?;
        Self::wrap(link, self.inner.try_grant(len))
    }

    /// Reserves `len` contiguous bytes, waiting at most `timeout` for room.
    pub fn grant_timeout(
        &mut self,
        len: usize,
        timeout: Duration,
    ) -> Result<WriteGrant<'_, 'l, W, C>, LinkError<SendError>> {
        let link = self.link;
        link.check()?;
        Self::wrap(link, self.inner.grant_timeout(len, timeout))
    }

    /// Reserves `len` contiguous bytes, waiting as long as it takes (or
    /// until the peer resets).
    pub fn grant(&mut self, len: usize) -> Result<WriteGrant<'_, 'l, W, C>, LinkError<SendError>> {
        let link = self.link;
        link.check()?;
        Self::wrap(link, self.inner.grant(len))
    }

    /// Copies `msg` into the queue without blocking.
    pub fn try_send(&mut self, msg: &[u8]) -> Result<(), LinkError<SendError>> {
        self.try_grant(msg.len())?.fill(msg);
        Ok(())
    }

    /// Copies `msg` into the queue, waiting at most `timeout` for room.
    pub fn send_timeout(&mut self, msg: &[u8], timeout: Duration) -> Result<(), LinkError<SendError>> {
        self.grant_timeout(msg.len(), timeout)?.fill(msg);
        Ok(())
    }

    /// Copies `msg` into the queue, waiting as long as it takes for room.
    pub fn send(&mut self, msg: &[u8]) -> Result<(), LinkError<SendError>> {
        self.grant(msg.len())?.fill(msg);
        Ok(())
    }
}

/// Ring bytes reserved for one message; [`commit`](Self::commit) cleans
/// them from the cache, then publishes them. Dropping it sends nothing.
pub struct WriteGrant<'p, 'l, W: Wait, C: Cache> {
    inner: core_queue::WriteGrant<'p, 'l, W>,
    cache: &'l C,
}

impl<W: Wait, C: Cache> WriteGrant<'_, '_, W, C> {
    fn fill(mut self, msg: &[u8]) {
        self.inner.copy_from_slice(msg);
        self.commit();
    }

    /// Publishes the whole grant as one message.
    pub fn commit(self) {
        let len = self.inner.len();
        self.commit_len(len);
    }

    /// Publishes the first `len` bytes (at most the granted length).
    pub fn commit_len(self, len: usize) {
        let len = len.min(self.inner.len());
        // Clean before the Release store of `head` inside `commit_len`.
        self.cache.clean(self.inner.as_ptr(), len);
        self.inner.commit_len(len);
    }
}

impl<W: Wait, C: Cache> Deref for WriteGrant<'_, '_, W, C> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.inner
    }
}

impl<W: Wait, C: Cache> DerefMut for WriteGrant<'_, '_, W, C> {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.inner
    }
}

/// The reading end of a queue (shm-core's [`Consumer`](core_queue::Consumer),
/// with reset detection and cache hooks).
pub struct Consumer<'l, W: Wait, C: Cache> {
    link: &'l Link<C>,
    inner: core_queue::Consumer<'l, W>,
}

impl<'l, W: Wait, C: Cache> Consumer<'l, W, C> {
    fn wrap<'c>(
        link: &'l Link<C>,
        grant: Result<core_queue::ReadGrant<'c, 'l, W>, RecvError>,
    ) -> Result<ReadGrant<'c, 'l, W>, LinkError<RecvError>> {
        match grant {
            Ok(inner) => {
                // Invalidate after the Acquire load of `head` that located
                // the frame, before anyone reads the payload.
                link.cache().invalidate(inner.as_ptr(), inner.len());
                Ok(ReadGrant { inner })
            }
            Err(e) => Err(link.explain(e)),
        }
    }

    /// The next message in place, without blocking.
    pub fn try_read(&mut self) -> Result<ReadGrant<'_, 'l, W>, LinkError<RecvError>> {
        let link = self.link;
        link.check()?;
        Self::wrap(link, self.inner.try_read())
    }

    /// The next message in place, waiting at most `timeout`.
    pub fn read_timeout(&mut self, timeout: Duration) -> Result<ReadGrant<'_, 'l, W>, LinkError<RecvError>> {
        let link = self.link;
        link.check()?;
        Self::wrap(link, self.inner.read_timeout(timeout))
    }

    /// The next message in place, waiting as long as it takes (or until the
    /// peer resets).
    pub fn read(&mut self) -> Result<ReadGrant<'_, 'l, W>, LinkError<RecvError>> {
        let link = self.link;
        link.check()?;
        Self::wrap(link, self.inner.read())
    }

    fn copy_out(grant: ReadGrant<'_, '_, W>, buf: &mut [u8]) -> Result<usize, LinkError<RecvError>> {
        let n = grant.len();
        if n > buf.len() {
            grant.keep();
            return Err(LinkError::Channel(RecvError::BufferTooSmall { needed: n }));
        }
        buf[..n].copy_from_slice(&grant);
        grant.release();
        Ok(n)
    }

    /// Copies the next message into `buf` without blocking; returns its
    /// length. A message longer than `buf` stays in the queue.
    pub fn try_recv(&mut self, buf: &mut [u8]) -> Result<usize, LinkError<RecvError>> {
        Self::copy_out(self.try_read()?, buf)
    }

    /// Copies the next message into `buf`, waiting at most `timeout`.
    pub fn recv_timeout(&mut self, buf: &mut [u8], timeout: Duration) -> Result<usize, LinkError<RecvError>> {
        Self::copy_out(self.read_timeout(timeout)?, buf)
    }

    /// Copies the next message into `buf`, waiting as long as it takes.
    pub fn recv(&mut self, buf: &mut [u8]) -> Result<usize, LinkError<RecvError>> {
        Self::copy_out(self.read()?, buf)
    }
}

/// One message in place, its bytes already invalidated in the cache.
/// Dropping it (or [`release`](Self::release)) consumes it; [`keep`](Self::keep)
/// leaves it for the next read.
pub struct ReadGrant<'c, 'l, W: Wait> {
    inner: core_queue::ReadGrant<'c, 'l, W>,
}

impl<W: Wait> ReadGrant<'_, '_, W> {
    /// Consumes the message.
    pub fn release(self) {
        self.inner.release()
    }

    /// Leaves the message in the queue.
    pub fn keep(self) {
        self.inner.keep()
    }
}

impl<W: Wait> Deref for ReadGrant<'_, '_, W> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.inner
    }
}
