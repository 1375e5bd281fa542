//! Board support for QEMU `mps2-an521` (and, with the `an524` feature,
//! `mps3-an524`): the SSE-200 subsystem's two Cortex-M33 cores, both booting
//! in Secure state. On the AN521 CPU0 has no FPU and CPU1 has one; both
//! images are soft-float. Only the memories and the clock differ between
//! the two boards ([`memory_map`], [`clock`]).

pub mod boot;
pub mod clock;
pub mod exit;
pub mod fault;
#[cfg(not(target_has_atomic = "32"))]
pub mod lock;
pub mod memory_map;
pub mod mhu;
mod vectors;

use core::ptr;

/// Address of the CPU_IDENTITY register: each core reads its own number.
const CPU_IDENTITY: *const u32 = 0x4001_F000 as *const u32;

/// One of the two CPUs of the AN521.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CoreId {
    /// CPU0: boots first, no FPU.
    Core0,
    /// CPU1: held in reset until core 0 releases it (see [`boot`]).
    Core1,
}

impl CoreId {
    /// The other core.
    pub const fn peer(self) -> CoreId {
        match self {
            CoreId::Core0 => CoreId::Core1,
            CoreId::Core1 => CoreId::Core0,
        }
    }

    /// The CPU number, 0 or 1, as CPU_IDENTITY reports it.
    pub const fn index(self) -> u32 {
        match self {
            CoreId::Core0 => 0,
            CoreId::Core1 => 1,
        }
    }
}

/// Returns the core this code is running on, read from CPU_IDENTITY.
///
/// Panics if the register holds anything but 0 or 1 (i.e. not an SSE-200
/// board).
pub fn cpu_id() -> CoreId {
    match cpu_identity_raw() {
        0 => CoreId::Core0,
        1 => CoreId::Core1,
        other => panic!("CPU_IDENTITY reads {}: not an SSE-200 board?", other),
    }
}

/// Adds one to a per-core event counter. Each counter has one writer on its
/// core (an interrupt handler that does not nest, or the main loop), so a
/// load and a store suffice, on every target: Armv6-M has no `fetch_add`.
pub(crate) fn bump(counter: &core::sync::atomic::AtomicU32, order: core::sync::atomic::Ordering) {
    counter.store(counter.load(core::sync::atomic::Ordering::Relaxed).wrapping_add(1), order);
}

/// Raw CPU_IDENTITY value; never panics (used by the failure handlers).
pub(crate) fn cpu_identity_raw() -> u32 {
    // SAFETY: CPU_IDENTITY is an always-mapped, read-only 32-bit register of
    // the AN521 system control block; reading it has no side effects.
    unsafe { ptr::read_volatile(CPU_IDENTITY) }
}

/// Per-core board start-up: checks that this image runs on `expected`,
/// enables this core's MHU doorbell interrupt and starts its 1 kHz SysTick
/// ([`clock`]).
///
/// Call once, first thing in `main`, with interrupts enabled.
pub fn init(expected: CoreId) {
    // The two-core lock starts free before any critical section on either
    // core: core 0 frees it while core 1 is still held in reset (a stale
    // flag from a warm reset would otherwise deadlock the first section).
    #[cfg(not(target_has_atomic = "32"))]
    if expected == CoreId::Core0 && boot::core1_waits() {
        lock::init();
    }
    let actual = cpu_id();
    assert!(actual == expected, "image built for {:?} is running on {:?}", expected, actual);
    mhu::enable_doorbell(actual);
    let mut core = cortex_m::Peripherals::take().expect("board::init called twice");
    clock::start(&mut core.SYST);
}

/// The RAM window shared by both cores, from the `_shm_start`/`_shm_end`
/// symbols of this image's `memory.x` (both images define the same
/// `SHARED` region).
///
/// Both cores see it at the same address, uncached (the AN521 has no data
/// cache). Nothing in the board code touches it; its layout belongs to
/// shm-baremetal.
pub fn shared_window() -> shm_baremetal::Window {
    // SAFETY: `SHARED` (0x3820_0000, 64 KiB) is a MEMORY region of both
    // images' memory.x in which no section is placed, so no Rust object
    // lives there and start-up code never touches it; both cores name the
    // same SSRAM3 bytes there, and only shm-baremetal accesses them. The
    // AN521 has no data cache, so the window is coherent between the cores.
    let window = unsafe { shm_baremetal::window!(_shm_start, _shm_end) };
    let window = window.expect("memory.x: SHARED must be 64-byte aligned and hold a segment");
    assert_eq!(
        (window.base() as usize, window.len()),
        (memory_map::SHARED_BASE, memory_map::SHARED_SIZE),
        "memory.x SHARED disagrees with memory_map.rs"
    );
    window
}
