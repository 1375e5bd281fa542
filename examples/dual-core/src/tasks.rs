//! async on a core: a future awaiting a channel, woken by the doorbell.
//!
//! shm-baremetal's `asynch` (feature `embassy`) gives the futures: they
//! register their waker in [`DOORBELL`](crate::board::mhu::DOORBELL), an
//! embassy-sync `AtomicWaker` that this core's MHU handler wakes. They run
//! on any executor; embassy-executor's tasks must be `'static`, and the
//! channel ends here borrow the link core 1 makes at each attach, so this
//! image drives the one future with [`block_on`]: poll, and when it is
//! pending sleep in the masked `WFI` until the doorbell handler has woken
//! it (never a busy poll).

use core::future::Future;
use core::pin::pin;
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use core::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};

/// Set by the waker (from the doorbell handler), cleared before each poll.
static WOKEN: AtomicBool = AtomicBool::new(false);
/// Polls that returned `Pending` (each followed by a sleep until a wake).
static PENDING: AtomicU32 = AtomicU32::new(0);

/// How many times a future run by [`block_on`] was pending and slept until
/// its waker was woken, on this core since it started.
pub fn pending_polls() -> u32 {
    PENDING.load(Ordering::Relaxed)
}

fn clone(_: *const ()) -> RawWaker {
    RawWaker::new(core::ptr::null(), &VTABLE)
}
fn wake(_: *const ()) {
    // SYNC POINT: Release pairs with the Acquire load in `block_on`'s
    // sleep check: what the handler saw is visible to the next poll.
    WOKEN.store(true, Ordering::Release);
}
fn drop(_: *const ()) {}

static VTABLE: RawWakerVTable = RawWakerVTable::new(clone, wake, wake, drop);

/// Runs `future` to completion on this core, sleeping between polls until
/// its waker is woken.
pub fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    // SAFETY: the vtable's functions ignore the data pointer (null) and
    // only touch the static flag: every RawWaker contract holds.
    let waker = unsafe { Waker::from_raw(RawWaker::new(core::ptr::null(), &VTABLE)) };
    let mut cx = Context::from_waker(&waker);
    loop {
        WOKEN.store(false, Ordering::Relaxed);
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
        crate::board::bump(&PENDING, Ordering::Relaxed);
        // A wake between the poll and here is seen under the mask; one
        // after it leaves the interrupt pending, which ends the WFI.
        // SYNC POINT: Acquire, as `wake` says.
        shm_baremetal::doorbell::sleep_unless(|| WOKEN.load(Ordering::Acquire));
    }
}
