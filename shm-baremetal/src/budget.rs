//! Time without a clock: a timeout is a budget of nanoseconds, charged one
//! *slice* at each check, and backed by real time through `embedded-hal`'s
//! [`DelayNs`].
//!
//! # Design
//!
//! A microcontroller may have no free-running clock to read, but every HAL
//! has a `DelayNs`. shm-core calls [`Wait::expired`] once before each park
//! (and in a tight loop while it polls for READY in `Segment::open`). Each
//! call charges one slice. The time that charge stands for really passes:
//! either the park in between lasted about a slice (a delay of a slice, or a
//! sleep that a periodic interrupt ends within a slice), or, when nothing
//! parked since the last check, the check itself delays a slice. A timeout
//! thus never ends early by more than one slice, except that a park ended
//! early by a wake-up is charged a whole slice: many wake-ups without the
//! awaited change shorten the wait (documented on each strategy).
//!
//! [`Wait::expired`]: shm_core::Wait::expired

use core::cell::RefCell;
use core::time::Duration;

use embedded_hal::delay::DelayNs;

/// The deadline of this crate's wait strategies: the budget left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Budget {
    /// Nanoseconds left; `None` never runs out.
    remaining_ns: Option<u64>,
    /// Whether a park stood for the time since the last charge.
    parked: bool,
}

impl Budget {
    /// Nanoseconds left; `None` for a wait without timeout.
    pub fn remaining_ns(&self) -> Option<u64> {
        self.remaining_ns
    }

    /// Whether this budget never runs out.
    pub fn is_unbounded(&self) -> bool {
        self.remaining_ns.is_none()
    }

    /// Records that a park stood for one slice of time.
    pub(crate) fn parked(&mut self) {
        self.parked = true;
    }
}

/// The slice and the delay a strategy charges budgets with.
#[derive(Debug)]
pub(crate) struct Pacer<D> {
    delay: RefCell<D>,
    slice_ns: u32,
}

impl<D: DelayNs> Pacer<D> {
    pub(crate) fn new(delay: D, slice_ns: u32) -> Self {
        Self { delay: RefCell::new(delay), slice_ns: slice_ns.max(1) }
    }

    pub(crate) fn slice_ns(&self) -> u32 {
        self.slice_ns
    }

    pub(crate) fn set_slice_ns(&mut self, ns: u32) {
        self.slice_ns = ns.max(1);
    }

    pub(crate) fn budget(&self, timeout: Option<Duration>) -> Budget {
        let remaining_ns = timeout.map(|t| u64::try_from(t.as_nanos()).unwrap_or(u64::MAX));
        // The first charge stands for the spinning before it: no delay.
        Budget { remaining_ns, parked: true }
    }

    /// Charges one slice; `true` once the budget is spent.
    pub(crate) fn charge(&self, budget: &mut Budget) -> bool {
        let Some(left) = budget.remaining_ns else {
            return false;
        };
        if !budget.parked {
            self.delay(self.slice_ns);
        }
        budget.parked = false;
        let left = left.saturating_sub(self.slice_ns.into());
        budget.remaining_ns = Some(left);
        left == 0
    }

    /// Delays `ns`. The delay is only borrowed for the call; a re-entrant
    /// use (never made by this crate) skips the delay instead of panicking.
    pub(crate) fn delay(&self, ns: u32) {
        if let Ok(mut d) = self.delay.try_borrow_mut() {
            d.delay_ns(ns);
        }
    }
}
