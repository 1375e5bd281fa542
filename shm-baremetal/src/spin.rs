//! Pure spinning: [`SpinWait`].
//!
//! ```
//! # use shm_baremetal::{AttachBlock, CoreId, Session, SpinWait};
//! # use shm_core::Wait;
//! # struct NoDelay;
//! # impl embedded_hal::delay::DelayNs for NoDelay { fn delay_ns(&mut self, _: u32) {} }
//! static BLOCK: AttachBlock = AttachBlock::new();
//! let session = Session::new(&BLOCK, CoreId::CORE0, CoreId::CORE1);
//! let wait = SpinWait::<spin::relax::Spin, _>::new(session, NoDelay).with_spin_limit(64);
//! assert_eq!(wait.spin_limit(), 64);
//! ```
//!
//! # Design
//!
//! Use it when both cores poll anyway (a hot loop, a benchmark) or when the
//! part has no way to wake a sleeping core. Waits without timeout never
//! touch the delay: between checks they only relax (`R::relax()`:
//! [`spin::relax::Spin`] issues the spin-loop hint, [`spin::relax::Loop`]
//! nothing). Timed waits relax, then delay one slice per check, so the
//! budget is backed by real time.

use core::marker::PhantomData;

use embedded_hal::delay::DelayNs;
use shm_core::{AtomicU32, Wait};
use spin::relax::RelaxStrategy;

use crate::attach::Session;
use crate::budget::Budget;
use crate::pacing::{wait_by_pacing, Pacing};

/// Default slice of a timed spin wait: 10 µs.
pub const DEFAULT_SPIN_SLICE_NS: u32 = 10_000;

/// A [`Wait`] strategy that never sleeps: it relaxes with `R` between
/// checks; timeouts through the delay `D`. [`Wait::wake`] does nothing.
#[derive(Debug)]
pub struct SpinWait<'a, R: RelaxStrategy, D> {
    pacing: Pacing<'a, D>,
    _relax: PhantomData<R>,
}

impl<'a, R: RelaxStrategy, D: DelayNs> SpinWait<'a, R, D> {
    /// Spinning as `session`'s core, timing out through `delay`.
    pub fn new(session: Session<'a>, delay: D) -> Self {
        Self { pacing: Pacing::new(session, delay, DEFAULT_SPIN_SLICE_NS), _relax: PhantomData }
    }

    /// Spins `n` times before the first timeout check.
    pub fn with_spin_limit(mut self, n: u32) -> Self {
        self.pacing.set_spin_limit(n);
        self
    }

    /// Charges timed waits `ns` per check (and delays that long between
    /// checks once the spin limit is reached).
    pub fn with_slice_ns(mut self, ns: u32) -> Self {
        self.pacing.set_slice_ns(ns);
        self
    }
}

impl<R: RelaxStrategy, D: DelayNs> Wait for SpinWait<'_, R, D> {
    wait_by_pacing!();

    fn park(&self, _word: &AtomicU32, _expected: u32, _deadline: &mut Budget) {
        R::relax();
    }

    fn wake(&self, _word: &AtomicU32, _count: u32) {}
}
