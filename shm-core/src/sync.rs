//! The atomics facade: `core` atomics normally, loom's under `--cfg shm_loom`
//! so the channel protocols can be model-checked (the same trick as
//! crossbeam-utils). Everything in this crate that touches a shared word goes
//! through these names.

#[cfg(shm_loom)]
pub(crate) use core::sync::atomic::compiler_fence;
#[cfg(shm_loom)]
pub use loom::sync::atomic::AtomicU32;
#[cfg(shm_loom)]
pub(crate) use loom::sync::atomic::{fence, Ordering};

#[cfg(not(shm_loom))]
pub use core::sync::atomic::AtomicU32;
#[cfg(not(shm_loom))]
pub(crate) use core::sync::atomic::{compiler_fence, fence, Ordering};

/// A pause inside a spin loop. Under loom it yields to the model's scheduler,
/// which is what makes spin loops checkable at all.
#[inline]
pub(crate) fn spin_hint() {
    #[cfg(shm_loom)]
    loom::thread::yield_now();
    #[cfg(not(shm_loom))]
    core::hint::spin_loop();
}

/// How many times a compare-and-swap loop retries before giving up. Far
/// beyond honest contention (each failure means another party succeeded);
/// it bounds how long a peer rewriting a word without pause can keep this
/// side spinning.
#[cfg_attr(not(any(shm_loom, target_has_atomic = "32")), allow(dead_code))]
pub(crate) const CAS_RETRIES: u32 = 10_000;

/// Compare-and-swap is not available on every target (thumbv6m has none);
/// the parts of the crate that need it are gated on this cfg.
#[cfg(any(shm_loom, target_has_atomic = "32"))]
pub(crate) fn cas(word: &AtomicU32, current: u32, new: u32, success: Ordering) -> Result<u32, u32> {
    word.compare_exchange(current, new, success, Ordering::Relaxed)
}
