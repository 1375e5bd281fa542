//! What the host wait strategies share: how long they spin, how long one
//! sleep lasts, their deadlines and how they tell a live peer.
//!
//! [`FutexWait`](crate::FutexWait) and
//! [`NamedSemaphoreWait`](crate::NamedSemaphoreWait) differ only in what
//! they sleep on; each embeds a [`Pacing`] and hands it every other
//! [`Wait`](shm_core::Wait) method.

use std::time::Duration;

use shm_core::wait::HostDeadline;

use crate::futex::{pid_alive, DEFAULT_LIVENESS_INTERVAL, HOST_SPIN_LIMIT};

/// How long one sleep lasts at most when the kernel object cannot sleep
/// (an error other than a timeout, or no object for the word): the wait
/// degrades to polling, never to a busy loop.
pub(crate) const POLL_SLEEP: Duration = Duration::from_millis(1);

/// Spin limit, sleep slice, deadlines and liveness of a host process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pacing {
    /// Spins before parking (at most, when `adaptive`).
    pub(crate) spin: u32,
    /// Whether each endpoint spins less while spinning does not pay
    /// ([`Wait::adaptive_spin`](shm_core::Wait::adaptive_spin)).
    pub(crate) adaptive: bool,
    /// How long one sleep lasts at most, so a dead peer is noticed within
    /// about that long.
    pub(crate) slice: Duration,
}

impl Pacing {
    /// Spin `spin` times, then sleep at most the default liveness interval.
    pub(crate) const fn with_spin(spin: u32) -> Self {
        Self { spin, adaptive: true, slice: DEFAULT_LIVENESS_INTERVAL }
    }

    /// [`HOST_SPIN_LIMIT`] spins, the default liveness interval.
    pub(crate) const fn new() -> Self {
        Self::with_spin(HOST_SPIN_LIMIT)
    }

    /// [`Wait::deadline`](shm_core::Wait::deadline).
    pub(crate) fn deadline(&self, timeout: Option<Duration>) -> HostDeadline {
        HostDeadline::new(timeout)
    }

    /// [`Wait::expired`](shm_core::Wait::expired).
    pub(crate) fn expired(&self, deadline: &mut HostDeadline) -> bool {
        deadline.expired()
    }

    /// How long the next sleep of a park may last: what is left of
    /// `deadline`, at most one slice; `None` once the deadline has passed.
    pub(crate) fn sleep(&self, deadline: &mut HostDeadline) -> Option<Duration> {
        Some(deadline.slice(self.slice)).filter(|sleep| !sleep.is_zero())
    }

    /// [`Wait::spin_limit`](shm_core::Wait::spin_limit).
    pub(crate) fn spin_limit(&self) -> u32 {
        self.spin
    }

    /// [`Wait::adaptive_spin`](shm_core::Wait::adaptive_spin).
    pub(crate) fn adaptive_spin(&self) -> bool {
        self.adaptive
    }

    /// [`Wait::lazy_notify`](shm_core::Wait::lazy_notify): this process
    /// registered for global expedited `membarrier`.
    pub(crate) fn lazy_notify(&self) -> bool {
        crate::membarrier::registered()
    }

    /// [`Wait::barrier_everywhere`](shm_core::Wait::barrier_everywhere):
    /// `membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED)`.
    pub(crate) fn barrier_everywhere(&self) -> bool {
        crate::membarrier::barrier_everywhere()
    }

    /// [`Wait::self_id`](shm_core::Wait::self_id): this process's PID.
    pub(crate) fn self_id(&self) -> u32 {
        std::process::id()
    }

    /// [`Wait::is_alive`](shm_core::Wait::is_alive): by [`pid_alive`].
    pub(crate) fn is_alive(&self, id: u32) -> bool {
        pid_alive(id)
    }
}

/// The [`Wait`](shm_core::Wait) methods every host strategy hands to its
/// `pacing` field: `Deadline`, `deadline`, `expired`, `spin_limit`,
/// `adaptive_spin`, `lazy_notify`, `yield_now`, `barrier_everywhere`,
/// `self_id` and `is_alive`. Used inside `impl Wait for ...`, which adds
/// `park` and `wake`.
macro_rules! wait_by_pacing {
    () => {
        type Deadline = shm_core::wait::HostDeadline;

        fn deadline(&self, timeout: Option<std::time::Duration>) -> shm_core::wait::HostDeadline {
            self.pacing.deadline(timeout)
        }

        fn expired(&self, deadline: &mut shm_core::wait::HostDeadline) -> bool {
            self.pacing.expired(deadline)
        }

        fn spin_limit(&self) -> u32 {
            self.pacing.spin_limit()
        }

        fn adaptive_spin(&self) -> bool {
            self.pacing.adaptive_spin()
        }

        fn lazy_notify(&self) -> bool {
            self.pacing.lazy_notify()
        }

        fn yield_now(&self) -> bool {
            // sched_yield(2): gives the CPU to another runnable thread, if any.
            std::thread::yield_now();
            true
        }

        fn barrier_everywhere(&self) -> bool {
            self.pacing.barrier_everywhere()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sleep_lasts_one_slice_at_most_and_none_past_the_deadline() {
        let pacing = Pacing { spin: 0, adaptive: true, slice: Duration::from_millis(5) };
        assert_eq!(pacing.sleep(&mut pacing.deadline(None)), Some(Duration::from_millis(5)));
        let left = pacing.sleep(&mut pacing.deadline(Some(Duration::from_millis(2)))).unwrap();
        assert!(left <= Duration::from_millis(2), "{left:?}");
        assert_eq!(pacing.sleep(&mut pacing.deadline(Some(Duration::ZERO))), None);
    }

    #[test]
    fn the_defaults_are_the_host_spin_limit_and_the_liveness_interval() {
        assert_eq!(Pacing::new(), Pacing { spin: HOST_SPIN_LIMIT, adaptive: true, slice: DEFAULT_LIVENESS_INTERVAL });
        assert_eq!(Pacing::new().self_id(), std::process::id());
        assert!(Pacing::new().is_alive(std::process::id()));
    }
}
