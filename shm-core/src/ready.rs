//! Waiting on several endpoints at once: what an endpoint tells a
//! multiplexer (shm-posix's `WaitSet`, its async reactor, or a bare-metal
//! doorbell loop) so that one thread can sleep until any of them has work.
//!
//! # Protocol
//!
//! A multiplexer waiting on endpoints `e1..en`:
//!
//! 1. returns any `ei` whose [`is_ready`](Waitable::is_ready) says so;
//! 2. [`announce`](Waitable::announce)s itself asleep on every one (the peer
//!    then wakes [`wake_word`](Waitable::wake_word) when it publishes);
//! 3. issues a full (`SeqCst`) fence; if any [`peer_lazy`](Waitable::peer_lazy)
//!    says so, forces one on the peers' CPUs too (`Wait::barrier_everywhere`),
//!    or sleeps only briefly (as the channels do facing a lazy waker);
//! 4. loads each wake word (Acquire), then asks every `is_ready` again and
//!    returns (after withdrawing the announcements) if one is;
//! 5. sleeps until one of the wake words differs from the value it loaded,
//!    or is woken, or a bounded time passes; after a sleep that ran its
//!    whole slice, asks each [`peer_gone`](Waitable::peer_gone) and reports
//!    a dead peer (a peer that dies while another endpoint keeps the
//!    multiplexer busy is left to the caller, see `peer_gone`);
//! 6. withdraws every announcement and starts again.
//!
//! This is the channels' own announce-fence-recheck handshake (see the
//! *Waking* sections of [`crate::format::queue`] and
//! [`crate::format::broadcast`]), run over several words: either the peer's
//! look at the waiting word sees the announcement, or step 4 sees what it
//! published.
//!
//! ```
//! use shm_core::mock::{MockRegion, ThreadWait};
//! use shm_core::ready::Waitable;
//! use shm_core::{Layout, Segment};
//!
//! let layout = Layout::new().queue("a", 256).unwrap().queue("b", 256).unwrap();
//! let region = MockRegion::new(layout.size());
//! let segment = Segment::create(region.region(), &layout, 1, 0).unwrap();
//! let mut tx = segment.producer("b", ThreadWait::new(1)).unwrap();
//! let a = segment.consumer("a", ThreadWait::new(2)).unwrap();
//! let b = segment.consumer("b", ThreadWait::new(2)).unwrap();
//! tx.try_send(b"hi").unwrap();
//! let endpoints: [&dyn Waitable; 2] = [&a, &b];
//! assert_eq!(endpoints.iter().position(|e| e.is_ready()), Some(1));
//! ```

use crate::sync::AtomicU32;

/// An endpoint a thread can wait on together with others (see the module
/// docs for the protocol a multiplexer follows).
pub trait Waitable {
    /// Whether the endpoint's next non-blocking call has something to
    /// return: a message, a request, the channel's close, or an error (a
    /// corrupted word). Never blocks, never consumes anything; it loads,
    /// except that a block-policy broadcast subscriber with nothing to read
    /// puts back its own `tail` if another process wrote it, as its polls
    /// do (a wait set's only look at it).
    fn is_ready(&self) -> bool;

    /// The word the peer changes, and wakes, when this endpoint becomes
    /// ready.
    fn wake_word(&self) -> &AtomicU32;

    /// Announces this side asleep on the wake word (`true`), so the peer
    /// wakes it when it publishes, or withdraws the announcement (`false`).
    /// A multiplexer withdraws every announcement it made before it returns.
    /// The announcement is a flag, not a count: one waiter per endpoint (two
    /// threads waiting on one mailbox server can lose a wake-up, as two
    /// threads in its blocking `recv` can).
    fn announce(&self, asleep: bool);

    /// Whether the peer may skip its store-load fence before it looks at
    /// the announcement (it set `LAZY_WAKE`): step 3 of the protocol.
    fn peer_lazy(&self) -> bool {
        false
    }

    /// Whether the one peer this endpoint waits for (a consumer's producer,
    /// a subscriber's publisher, a pending call's server) is attached and
    /// dead ([`Wait::is_alive`](crate::Wait::is_alive): a liveness check,
    /// on a host a system call). A multiplexer asks it after a sleep that
    /// ran its whole slice with nothing ready, so that a dead peer ends its
    /// wait as it ends the endpoint's own. `false` where no single peer
    /// feeds the endpoint (a mailbox server).
    fn peer_gone(&self) -> bool {
        false
    }
}

/// The copying receive of every message endpoint (a queue [`Consumer`],
/// a broadcast [`Subscriber`]), for code generic over them: async
/// adapters, multiplexing loops.
///
/// [`Consumer`]: crate::queue::Consumer
/// [`Subscriber`]: crate::broadcast::Subscriber
pub trait Receive: Waitable {
    /// Copies the next message into `buf` without blocking; its length.
    fn try_recv(&mut self, buf: &mut [u8]) -> Result<usize, crate::RecvError>;

    /// Copies the next message into `buf`, waiting at most `timeout`.
    fn recv_timeout(&mut self, buf: &mut [u8], timeout: core::time::Duration) -> Result<usize, crate::RecvError>;
}

impl<W: crate::Wait> Receive for crate::queue::Consumer<'_, W> {
    fn try_recv(&mut self, buf: &mut [u8]) -> Result<usize, crate::RecvError> {
        crate::queue::Consumer::try_recv(self, buf)
    }
    fn recv_timeout(&mut self, buf: &mut [u8], timeout: core::time::Duration) -> Result<usize, crate::RecvError> {
        crate::queue::Consumer::recv_timeout(self, buf, timeout)
    }
}

impl<W: crate::Wait> Receive for crate::broadcast::Subscriber<'_, W> {
    fn try_recv(&mut self, buf: &mut [u8]) -> Result<usize, crate::RecvError> {
        crate::broadcast::Subscriber::try_recv(self, buf)
    }
    fn recv_timeout(&mut self, buf: &mut [u8], timeout: core::time::Duration) -> Result<usize, crate::RecvError> {
        crate::broadcast::Subscriber::recv_timeout(self, buf, timeout)
    }
}

impl<T: Waitable + ?Sized> Waitable for &T {
    fn is_ready(&self) -> bool {
        (**self).is_ready()
    }
    fn wake_word(&self) -> &AtomicU32 {
        (**self).wake_word()
    }
    fn announce(&self, asleep: bool) {
        (**self).announce(asleep)
    }
    fn peer_lazy(&self) -> bool {
        (**self).peer_lazy()
    }
    fn peer_gone(&self) -> bool {
        (**self).peer_gone()
    }
}

impl<T: Waitable + ?Sized> Waitable for &mut T {
    fn is_ready(&self) -> bool {
        (**self).is_ready()
    }
    fn wake_word(&self) -> &AtomicU32 {
        (**self).wake_word()
    }
    fn announce(&self, asleep: bool) {
        (**self).announce(asleep)
    }
    fn peer_lazy(&self) -> bool {
        (**self).peer_lazy()
    }
    fn peer_gone(&self) -> bool {
        (**self).peer_gone()
    }
}
