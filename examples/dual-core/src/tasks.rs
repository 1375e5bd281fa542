//! async on a core: an embassy task awaiting a channel, woken by the
//! doorbell.
//!
//! Core 1's image runs embassy-executor (thread mode: it polls the tasks
//! that were woken, then sleeps in `WFE`). Its one task, [`run_core1`](crate::exchange::run_core1)
//! (`src/bin/core1.rs` spawns it through `#[embassy_executor::main]`),
//! attaches, serves core 0's requests, and for a `SUBSCRIBE` request awaits
//! the broadcast channel with shm-baremetal's `asynch::recv` (feature
//! `embassy`). That future registers its waker in
//! [`DOORBELL`](crate::board::mhu::DOORBELL), an embassy-sync `AtomicWaker`
//! that this core's MHU interrupt handler wakes; the executor's pender then
//! sets the event register, so the `WFE` returns and the task is polled
//! again. Nothing polls it in between: a pending receive is polled again
//! only after a wake.
//!
//! The channel ends borrow the link of each attach, and embassy tasks take
//! only `'static` arguments, so the task owns its link: it attaches inside
//! the task, and the ends it hands out borrow that local (an async fn may
//! hold borrows of its own locals across `.await`).

use core::future::{poll_fn, Future};
use core::pin::pin;
use core::sync::atomic::{AtomicU32, Ordering};

/// Polls of a [`counted`] future that returned `Pending`.
static PENDING: AtomicU32 = AtomicU32::new(0);

/// How many times a [`counted`] future was pending (and so waited for its
/// waker) on this core since it started.
pub fn pending_polls() -> u32 {
    PENDING.load(Ordering::Relaxed)
}

/// Awaits `future`, counting each poll that returns `Pending` in
/// [`pending_polls`]: the run checks that the receive really slept until
/// the doorbell woke it, at least once.
pub async fn counted<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    poll_fn(|cx| {
        let polled = future.as_mut().poll(cx);
        if polled.is_pending() {
            crate::board::bump(&PENDING, Ordering::Relaxed);
        }
        polled
    })
    .await
}
