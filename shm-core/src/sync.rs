//! The atomics facade: `core` atomics normally, loom's under `--cfg shm_loom`
//! so the channel protocols can be model-checked (the same trick as
//! crossbeam-utils), and `portable-atomic`'s on a target without
//! compare-and-swap built with the `critical-section` feature (every access
//! to a word, loads and stores included, then runs inside the application's
//! critical section), and [`locked::AtomicU32`] with the `locked-atomics`
//! feature (writes under the critical section, no exclusive-access
//! instruction, on any target). Everything in this crate that touches a shared word
//! goes through these names.

#[cfg(shm_loom)]
pub(crate) use core::sync::atomic::compiler_fence;
#[cfg(all(shm_loom, not(feature = "locked-atomics")))]
pub use loom::sync::atomic::AtomicU32;
#[cfg(shm_loom)]
pub(crate) use loom::sync::atomic::{fence, Ordering};

#[cfg(all(
    not(shm_loom),
    not(feature = "locked-atomics"),
    any(target_has_atomic = "32", not(feature = "critical-section"))
))]
pub use core::sync::atomic::AtomicU32;
#[cfg(not(shm_loom))]
pub(crate) use core::sync::atomic::{compiler_fence, fence, Ordering};
#[cfg(all(
    not(shm_loom),
    not(feature = "locked-atomics"),
    not(target_has_atomic = "32"),
    feature = "critical-section"
))]
pub use portable_atomic::AtomicU32;

#[cfg(feature = "locked-atomics")]
pub mod locked;
#[cfg(feature = "locked-atomics")]
pub use locked::AtomicU32;

/// The machine word behind a control word, for a kernel futex (the Linux
/// adapter's waits and wakes): the kernel only reads it. Writing through
/// it would bypass the lock of a `locked-atomics` build; nothing here does.
#[cfg(all(not(shm_loom), any(target_has_atomic = "32", feature = "locked-atomics")))]
pub trait AsNativeWord {
    /// The word as `core`'s `AtomicU32`.
    fn as_native_word(&self) -> &core::sync::atomic::AtomicU32;
}

#[cfg(all(not(shm_loom), not(feature = "locked-atomics"), target_has_atomic = "32"))]
impl AsNativeWord for core::sync::atomic::AtomicU32 {
    fn as_native_word(&self) -> &core::sync::atomic::AtomicU32 {
        self
    }
}

/// Whether this build accesses control words under a lock: recorded in the
/// segment header (`flags::LOCKED_ATOMICS`) so that a side built the other
/// way is refused.
pub(crate) const LOCKED: bool =
    cfg!(any(feature = "locked-atomics", all(not(target_has_atomic = "32"), feature = "critical-section")));

#[cfg(all(test, not(shm_loom)))]
std::thread_local! {
    /// Spin hints this thread issued: the unit tests count spins with it.
    pub(crate) static SPINS: core::cell::Cell<u64> = const { core::cell::Cell::new(0) };
}

/// A pause inside a spin loop. Under loom it yields to the model's scheduler,
/// which is what makes spin loops checkable at all.
#[inline]
pub(crate) fn spin_hint() {
    #[cfg(all(test, not(shm_loom)))]
    SPINS.with(|spins| spins.set(spins.get() + 1));
    #[cfg(shm_loom)]
    loom::thread::yield_now();
    #[cfg(not(shm_loom))]
    core::hint::spin_loop();
}

/// How many times a compare-and-swap loop retries before giving up. Far
/// beyond honest contention (each failure means another party succeeded);
/// it bounds how long a peer rewriting a word without pause can keep this
/// side spinning.
#[cfg_attr(not(shm_cas), allow(dead_code))]
pub(crate) const CAS_RETRIES: u32 = 10_000;

/// Compare-and-swap is not available on every target (thumbv6m has none);
/// the parts of the crate that need it are gated on this cfg.
#[cfg(shm_cas)]
pub(crate) fn cas(word: &AtomicU32, current: u32, new: u32, success: Ordering) -> Result<u32, u32> {
    word.compare_exchange(current, new, success, Ordering::Relaxed)
}
