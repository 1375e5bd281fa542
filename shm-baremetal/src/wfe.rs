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

use core::time::Duration;

use embedded_hal::delay::DelayNs;
use shm_core::{AtomicU32, Wait};

use crate::attach::Session;
use crate::budget::{Budget, Pacer};
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
    session: Session<'a>,
    pacer: Pacer<D>,
    spin_limit: u32,
    tick: bool,
}

impl<'a, D: DelayNs> WfeWait<'a, D> {
    /// Sleeping as `session`'s core, timing out through `delay`.
    pub fn new(session: Session<'a>, delay: D) -> Self {
        Self {
            session,
            pacer: Pacer::new(delay, DEFAULT_WFE_SLICE_NS),
            spin_limit: shm_core::wait::DEFAULT_SPIN_LIMIT,
            tick: false,
        }
    }

    /// Spins `n` times before sleeping (0: sleep at the first miss).
    pub fn with_spin_limit(mut self, n: u32) -> Self {
        self.spin_limit = n;
        self
    }

    /// Promises an interrupt at least every `ns` (a periodic timer): timed
    /// waits then sleep too, charged `ns` per sleep.
    pub fn with_tick_ns(mut self, ns: u32) -> Self {
        self.pacer.set_slice_ns(ns);
        self.tick = true;
        self
    }
}

impl<D: DelayNs> Wait for WfeWait<'_, D> {
    type Deadline = Budget;

    fn deadline(&self, timeout: Option<Duration>) -> Budget {
        self.pacer.budget(timeout)
    }

    fn expired(&self, deadline: &mut Budget) -> bool {
        self.session.peer_reset().is_some() || self.pacer.charge(deadline)
    }

    fn park(&self, word: &AtomicU32, expected: u32, deadline: &mut Budget) {
        if word.load(Ordering::Relaxed) != expected {
            return;
        }
        if deadline.is_unbounded() || self.tick {
            cortex_m::asm::wfe();
        } else {
            self.pacer.delay(self.pacer.slice_ns());
        }
        deadline.parked();
    }

    fn wake(&self, _word: &AtomicU32, _count: u32) {
        // The word's store must reach memory before the other core wakes
        // and re-reads it.
        cortex_m::asm::dsb();
        cortex_m::asm::sev();
    }

    fn spin_limit(&self) -> u32 {
        self.spin_limit
    }

    fn self_id(&self) -> u32 {
        self.session.id()
    }

    fn is_alive(&self, id: u32) -> bool {
        self.session.is_alive(id)
    }
}
