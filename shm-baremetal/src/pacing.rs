//! What [`SpinWait`], `WfeWait` (Arm only) and [`DoorbellWait`] share:
//! [`Pacing`].
//!
//! # Design
//!
//! The three strategies differ only in how they park and wake. Whose core
//! they wait as, how a timeout is charged, how long shm-core spins before
//! the first park, and whether a periodic tick may end a sleep are the same
//! for all of them, so each embeds one `Pacing` in a field named `pacing`,
//! and its [`Wait`] impl hands `deadline`, `expired`, `spin_limit`,
//! `self_id` and `is_alive` to it through [`wait_by_pacing!`], writing out
//! only `park` and `wake`.
//!
//! [`SpinWait`]: crate::SpinWait
//! [`DoorbellWait`]: crate::DoorbellWait
//! [`Wait`]: shm_core::Wait

use core::time::Duration;

use embedded_hal::delay::DelayNs;

use crate::attach::Session;
use crate::budget::{Budget, Pacer};

/// A wait strategy's session, budget pacer, spin limit and tick promise.
#[derive(Debug)]
pub(crate) struct Pacing<'a, D> {
    session: Session<'a>,
    pacer: Pacer<D>,
    spin_limit: u32,
    /// The application promised an interrupt at least every slice.
    tick: bool,
}

impl<'a, D: DelayNs> Pacing<'a, D> {
    /// Waiting as `session`'s core, charging `slice_ns` per check through
    /// `delay`, with shm-core's default spin limit and no tick.
    pub(crate) fn new(session: Session<'a>, delay: D, slice_ns: u32) -> Self {
        Self {
            session,
            pacer: Pacer::new(delay, slice_ns),
            spin_limit: shm_core::wait::DEFAULT_SPIN_LIMIT,
            tick: false,
        }
    }

    pub(crate) fn set_spin_limit(&mut self, n: u32) {
        self.spin_limit = n;
    }

    pub(crate) fn set_slice_ns(&mut self, ns: u32) {
        self.pacer.set_slice_ns(ns);
    }

    /// Records the promise of an interrupt at least every `ns`: the slice
    /// becomes the tick, and every park may sleep.
    pub(crate) fn set_tick_ns(&mut self, ns: u32) {
        self.pacer.set_slice_ns(ns);
        self.tick = true;
    }

    /// Whether a park may sleep until an interrupt or event: something is
    /// sure to end the sleep in time (no timeout, or the promised tick).
    pub(crate) fn may_sleep(&self, deadline: &Budget) -> bool {
        deadline.is_unbounded() || self.tick
    }

    /// Delays one slice: the park of a timed wait that may not sleep.
    pub(crate) fn delay_slice(&self) {
        self.pacer.delay(self.pacer.slice_ns());
    }

    /// [`Wait::deadline`](shm_core::Wait::deadline).
    pub(crate) fn deadline(&self, timeout: Option<Duration>) -> Budget {
        self.pacer.budget(timeout)
    }

    /// [`Wait::expired`](shm_core::Wait::expired): the peer reset, or the
    /// budget is spent after this check's charge.
    pub(crate) fn expired(&self, deadline: &mut Budget) -> bool {
        self.session.peer_reset().is_some() || self.pacer.charge(deadline)
    }

    pub(crate) fn spin_limit(&self) -> u32 {
        self.spin_limit
    }

    pub(crate) fn self_id(&self) -> u32 {
        self.session.id()
    }

    pub(crate) fn is_alive(&self, id: u32) -> bool {
        self.session.is_alive(id)
    }
}

/// The [`Wait`](shm_core::Wait) items a strategy hands to its `pacing`
/// field: `Deadline`, `deadline`, `expired`, `spin_limit`, `self_id`,
/// `is_alive`. Invoked inside the strategy's `impl Wait`, which then writes
/// out only `park` and `wake`.
macro_rules! wait_by_pacing {
    () => {
        type Deadline = $crate::budget::Budget;

        fn deadline(&self, timeout: Option<::core::time::Duration>) -> Self::Deadline {
            self.pacing.deadline(timeout)
        }

        fn expired(&self, deadline: &mut Self::Deadline) -> bool {
            self.pacing.expired(deadline)
        }

        fn spin_limit(&self) -> u32 {
            self.pacing.spin_limit()
        }

        fn self_id(&self) -> u32 {
            self.pacing.self_id()
        }

        fn is_alive(&self, id: u32) -> bool {
            self.pacing.is_alive(id)
        }
    };
}
pub(crate) use wait_by_pacing;
