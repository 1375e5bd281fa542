//! async receive for embassy (feature `embassy`): a task awaits a channel
//! and the doorbell interrupt wakes it.
//!
//! The application keeps one [`DoorbellSignal`] per core in a `static` and
//! calls [`DoorbellSignal::wake`] from its doorbell interrupt handler (after
//! clearing the doorbell). A task awaiting [`recv`] tries the non-blocking call first; when there is nothing, it registers
//! its waker, announces itself on the endpoint (the [`shm_core::ready`]
//! handshake), and returns `Pending`: the peer, seeing the announcement,
//! rings the doorbell when it publishes, the handler wakes the task, and the
//! executor polls it again. No timer and no polling: bound the wait with the
//! executor's timer (`embassy_time::with_timeout`), and dropping the future
//! (a timeout, a `select`) consumes nothing.
//!
//! ```no_run
//! use shm_baremetal::asynch::{self, DoorbellSignal};
//! # use shm_core::broadcast::Subscriber;
//! # use shm_core::Wait;
//!
//! static DOORBELL: DoorbellSignal = DoorbellSignal::new();
//!
//! // In this core's doorbell interrupt handler, after clearing it:
//! fn on_doorbell() {
//!     DOORBELL.wake();
//! }
//!
//! async fn ticks<W: Wait>(mut sub: Subscriber<'_, W>) {
//!     let mut buf = [0u8; 64];
//!     while let Ok(n) = asynch::recv(&mut sub, &mut buf, &DOORBELL).await {
//!         let _tick = &buf[..n];
//!     }
//! }
//! ```

use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};

use embassy_sync::waitqueue::AtomicWaker;
use shm_core::ready::{Receive, Waitable};
use shm_core::RecvError;

/// Where the doorbell interrupt handler finds the task to wake: one per
/// core, in a `static`.
pub struct DoorbellSignal {
    waker: AtomicWaker,
}

impl DoorbellSignal {
    /// An empty signal (no task waiting).
    pub const fn new() -> Self {
        Self { waker: AtomicWaker::new() }
    }

    /// Wakes the task waiting on this core's doorbell, if any. Call it from
    /// the doorbell interrupt handler.
    pub fn wake(&self) {
        self.waker.wake();
    }
}

impl Default for DoorbellSignal {
    fn default() -> Self {
        Self::new()
    }
}

/// Receives the next message from `rx` (a queue consumer or a broadcast
/// subscriber) into `buf`, sleeping (the task, not the core) until the
/// doorbell rings when there is none.
pub async fn recv<R: Receive>(rx: &mut R, buf: &mut [u8], signal: &DoorbellSignal) -> Result<usize, RecvError> {
    loop {
        match rx.try_recv(buf) {
            Err(RecvError::Empty) => ready(&*rx, signal).await,
            other => return other,
        }
    }
}

/// Completes once `endpoint` is ready ([`Waitable::is_ready`]).
pub fn ready<'e>(endpoint: &'e dyn Waitable, signal: &'e DoorbellSignal) -> impl Future<Output = ()> + 'e {
    Ready { endpoint, signal, announced: false }
}

struct Ready<'e> {
    endpoint: &'e dyn Waitable,
    signal: &'e DoorbellSignal,
    announced: bool,
}

impl Ready<'_> {
    fn withdraw(&mut self) {
        if self.announced {
            self.endpoint.announce(false);
            self.announced = false;
        }
    }
}

impl Future for Ready<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.withdraw();
        let e = self.endpoint;
        if e.is_ready() {
            return Poll::Ready(());
        }
        // The waker first: a ring from here on finds it.
        self.signal.waker.register(cx.waker());
        e.announce(true);
        self.announced = true;
        // SYNC POINT: pairs with the peer's fence between publishing and
        // looking at the waiting word (see `shm_core::ready`): either it sees
        // the announcement and rings, or the look below sees its store.
        core::sync::atomic::fence(core::sync::atomic::Ordering::SeqCst);
        if e.is_ready() {
            self.withdraw();
            return Poll::Ready(());
        }
        Poll::Pending
    }
}

impl Drop for Ready<'_> {
    fn drop(&mut self) {
        self.withdraw();
    }
}
