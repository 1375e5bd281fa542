//! Sleeping on the event register: [`WfeWait`] (Arm only).
//!
//! # Design
//!
//! The sleeper checks the word, then executes `WFE`; the waker stores the
//! word, then `DSB` and `SEV`. `SEV` sets the event register of every core,
//! and a `WFE` with the register set returns at once (clearing it), so a
//! wake-up that lands between the check and the `WFE` is not lost: the `WFE`
//! just does not sleep. A stale event makes one `WFE` return early, which is
//! a spurious wake-up the caller's re-check absorbs.
//!
//! `WFE` also returns on an interrupt that would preempt the current
//! execution priority. Waits without timeout sleep until an event. Timed
//! waits sleep too if the application promises a periodic interrupt at
//! least every `tick` ([`WfeWait::with_tick_ns`], e.g. SysTick), and are
//! charged a tick per sleep; otherwise they delay a slice per check instead
//! of sleeping (a `WFE` without a wake source could sleep past the timeout).

use embedded_hal::delay::DelayNs;
use shm_core::{AtomicU32, Wait};

use crate::attach::Session;
use crate::budget::Budget;
use crate::pacing::{wait_by_pacing, Pacing};
use crate::sync::Ordering;

/// Default slice of a timed wait without a tick: 10 µs.
pub const DEFAULT_WFE_SLICE_NS: u32 = 10_000;

/// A [`Wait`] strategy that sleeps in `WFE` and wakes the other core with
/// `SEV`; timeouts through the delay `D`.
///
/// Use it on parts where both cores share the event line (Cortex-M
/// multi-core parts such as RP2040, and QEMU's mps2-an521): it needs no
/// interrupt set-up at all. It wakes every core on each `SEV`, and a
/// `WFE` may return for unrelated events, so it saves less power than
/// [`DoorbellWait`](crate::DoorbellWait).
#[derive(Debug)]
pub struct WfeWait<'a, D> {
    pacing: Pacing<'a, D>,
}

impl<'a, D: DelayNs> WfeWait<'a, D> {
    /// Sleeping as `session`'s core, timing out through `delay`.
    pub fn new(session: Session<'a>, delay: D) -> Self {
        Self { pacing: Pacing::new(session, delay, DEFAULT_WFE_SLICE_NS) }
    }

    /// Spins `n` times before sleeping (0: sleep at the first miss).
    pub fn with_spin_limit(mut self, n: u32) -> Self {
        self.pacing.set_spin_limit(n);
        self
    }

    /// Promises an interrupt at least every `ns` (a periodic timer): timed
    /// waits then sleep too, charged `ns` per sleep.
    pub fn with_tick_ns(mut self, ns: u32) -> Self {
        self.pacing.set_tick_ns(ns);
        self
    }
}

impl<D: DelayNs> Wait for WfeWait<'_, D> {
    wait_by_pacing!();

    fn park(&self, word: &AtomicU32, expected: u32, deadline: &mut Budget) {
        if word.load(Ordering::Relaxed) != expected {
            return;
        }
        if self.pacing.may_sleep(deadline) {
            cortex_m::asm::wfe();
        } else {
            self.pacing.delay_slice();
        }
        deadline.parked();
    }

    fn wake(&self, _word: &AtomicU32, _count: u32) {
        // The word's store must reach memory before the other core wakes
        // and re-reads it.
        cortex_m::asm::dsb();
        cortex_m::asm::sev();
    }
}
