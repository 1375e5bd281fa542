//! The critical section of an image built for a target without
//! compare-and-swap (thumbv6m): interrupts off on this core, and a lock that
//! excludes the other core.
//!
//! shm-core's `critical-section` feature runs every access to a control word
//! inside `critical_section::with`, so this is what makes a read-modify-write
//! of a shared word atomic between the cores. The SSE-200 has no hardware
//! spinlock (an RP2040 would use one of its SIO spinlocks here), so the lock
//! is shm-baremetal's [`TwoCoreLock`] (Peterson's algorithm, loads and stores
//! alone).
//!
//! The lock's three words live at [`LOCK_BASE`], outside every image's
//! sections and outside the shm window, at the same address for both cores.
//! Core 0 zeroes them first thing at boot, while core 1 is still held in
//! reset. Nesting is counted per core (in this image's own `.bss`): only
//! the outermost section takes the lock.
//!
//! A critical section cannot fail, but a core must not hang for good on a
//! peer stuck inside its section (or on a flag word someone scribbled on):
//! the lock is taken within [`LOCK_SPINS`] spins, and past that the run ends
//! with [`exit::LOCK_STUCK`](super::exit::LOCK_STUCK).

use core::sync::atomic::{AtomicU32, Ordering};

use shm_baremetal::lock::TwoCoreLock;

use super::memory_map::LOCK_BASE;
use super::{cpu_identity_raw, CoreId};

fn lock() -> &'static TwoCoreLock {
    // SAFETY: LOCK_BASE is 4-aligned RAM that both images leave alone (see
    // memory_map.rs) and that is only accessed through the lock's atomics.
    unsafe { &*(LOCK_BASE as *const TwoCoreLock) }
}

/// Spins to wait for the lock before giving up on the other core: far past
/// any honest section (tens of instructions), and past the time QEMU's
/// round-robin mode leaves the other core descheduled.
pub const LOCK_SPINS: u32 = 20_000_000;

/// Frees the lock. Core 0 calls it once, before it starts core 1.
pub fn init() {
    lock().reset();
}

/// This core's index, 0 or 1 (any other CPU_IDENTITY value counts as 1: the
/// board check in `init` has already refused it).
fn me() -> usize {
    usize::from(cpu_identity_raw() != CoreId::Core0.index())
}

/// Nesting depth of this core's critical sections (this image's own RAM:
/// one counter per core). Touched only with interrupts off.
static DEPTH: AtomicU32 = AtomicU32::new(0);

struct TwoCoreSection;
critical_section::set_impl!(TwoCoreSection);

// SAFETY: `acquire` returns only once interrupts are off on this core and
// this core holds the two-core lock (or already held it: nesting), so no
// other code, on this core or the other, runs a critical section until the
// matching `release`; `release` undoes exactly what its `acquire` did.
unsafe impl critical_section::Impl for TwoCoreSection {
    unsafe fn acquire() -> critical_section::RawRestoreState {
        let was_enabled = cortex_m::register::primask::read().is_active();
        cortex_m::interrupt::disable();
        let depth = DEPTH.load(Ordering::Relaxed);
        if depth == 0 && lock().acquire_within(me(), LOCK_SPINS).is_err() {
            super::exit::exit(super::exit::LOCK_STUCK);
        }
        DEPTH.store(depth + 1, Ordering::Relaxed);
        was_enabled
    }

    unsafe fn release(was_enabled: critical_section::RawRestoreState) {
        let depth = DEPTH.load(Ordering::Relaxed).saturating_sub(1);
        DEPTH.store(depth, Ordering::Relaxed);
        if depth == 0 {
            lock().release(me());
        }
        if was_enabled {
            // SAFETY: interrupts were enabled when the outermost section
            // began; re-enabling them ends it, as the critical-section
            // contract asks.
            unsafe { cortex_m::interrupt::enable() };
        }
    }
}
