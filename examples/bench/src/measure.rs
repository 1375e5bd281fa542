//! The one measuring loop, run by both processes of every row: `warmup`
//! untimed operations, then `count` timed ones, with heap allocations and
//! parks and wakes counted over the timed ones only.
//!
//! ```text
//! let side = measure::run("round trip", warmup, count, per_op(&mut hist, warmup, op))?;
//! ```
//!
//! # Design
//!
//! An operation is a closure of its index (`i` lets a sender stamp and a
//! receiver check message `i`). The loop itself reads the clock twice, at
//! the start and the end of the timed operations; a round trip, which wants
//! each operation's time, wraps its closure in [`per_op`]. The in-process
//! `memcpy` ceiling does not come through here: per-operation bookkeeping
//! would cost more than the copy it measures.

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::alloc::Tally;
use crate::error::Error;
use crate::strategy::Counters;

/// What one side saw during its timed operations.
#[derive(Debug, Clone, Copy, Default)]
pub struct Side {
    /// From the first timed operation's start to the last one's end.
    pub elapsed: Duration,
    /// Heap allocations, split into hot and slow path.
    pub allocs: Tally,
    /// Parks and wakes of the wait strategy.
    pub counters: Counters,
}

/// Runs `op(i)` for `i` in `0..warmup`, then for `warmup..warmup + count`
/// under the clock, the allocation counter and the park/wake counters.
/// `what` names one operation in an error ("round trip", "sending message").
pub fn run(
    what: &'static str,
    warmup: u64,
    count: u64,
    mut op: impl FnMut(u64) -> Result<(), Error>,
) -> Result<Side, Error> {
    let failed = |index, e| Error::Op { what, index, warmup: index < warmup, source: Box::new(e) };
    for i in 0..warmup {
        op(i).map_err(|e| failed(i, e))?;
    }
    let (mut allocs, counters) = (Tally::default(), Counters::now());
    let t0 = Instant::now();
    for i in warmup..warmup + count {
        allocs.track(|| op(i)).map_err(|e| failed(i, e))?;
    }
    Ok(Side { elapsed: t0.elapsed(), allocs, counters: Counters::since(counters) })
}

/// `op`, with the time of each operation from `warmup` on recorded in
/// `hist` (in ns, one clock read apart).
pub fn per_op<'a>(
    hist: &'a mut Histogram<u64>,
    warmup: u64,
    mut op: impl FnMut(u64) -> Result<(), Error> + 'a,
) -> impl FnMut(u64) -> Result<(), Error> + 'a {
    move |i| {
        let t0 = Instant::now();
        op(i)?;
        if i >= warmup {
            hist.saturating_record(u64::try_from(t0.elapsed().as_nanos()).unwrap_or(u64::MAX));
        }
        Ok(())
    }
}

/// What a peer measured on its side, printed as one JSON line on its stdout.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct PeerReport {
    /// Heap allocations during its timed loop (after the warm-up), in
    /// operations that neither parked nor woke a sleeper.
    pub allocs: u64,
    /// Heap allocations in operations that parked or woke a sleeper.
    pub allocs_slow: u64,
    /// Parks of its wait strategy during the timed loop.
    pub parks: u64,
    /// Wakes it issued during the timed loop.
    pub wakes: u64,
}

impl From<Side> for PeerReport {
    fn from(side: Side) -> Self {
        let Side { allocs, counters, .. } = side;
        Self { allocs: allocs.hot, allocs_slow: allocs.slow, parks: counters.parks, wakes: counters.wakes }
    }
}
