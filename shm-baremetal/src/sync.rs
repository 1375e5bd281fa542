//! Atomics and the one place this crate needs mutual exclusion between
//! cores.

pub(crate) use core::sync::atomic::Ordering;

/// Runs `f` (a role claim: a load, a check, a store on a segment word) so
/// that no other core runs a claim at the same time.
///
/// With compare-and-swap, shm-core's claims are atomic by themselves and `f`
/// just runs. Without it (thumbv6m), shm-core claims a role with a plain
/// load and store, and two cores claiming one role at the same instant
/// could both win; so `f` runs inside `critical_section::with`. That only
/// excludes the other core if the application's critical-section
/// implementation is multi-core safe (RP2040: a hardware spinlock).
#[cfg(target_has_atomic = "32")]
pub(crate) fn serialized<R>(f: impl FnOnce() -> R) -> R {
    f()
}

/// See the other definition.
#[cfg(not(target_has_atomic = "32"))]
pub(crate) fn serialized<R>(f: impl FnOnce() -> R) -> R {
    critical_section::with(|_| f())
}
