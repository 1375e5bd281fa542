//! Time from this core's SysTick: a 1 kHz tick interrupt and a nanosecond
//! clock built on it, plus an `embedded-hal` delay.
//!
//! The tick has two jobs. It is the periodic interrupt the shm-baremetal wait
//! strategies are promised (`with_tick_ns(TICK_NS)`), so a timed wait can
//! sleep in `WFI` and still time out; and with the counter's current value it
//! measures elapsed time. Under QEMU, SysTick runs on virtual time, which
//! without `-icount` follows the host's clock: measurements are wall time.
//!
//! Each core has its own SysTick (banked per CPU), so each image runs its own
//! copy of this module.

use core::sync::atomic::{AtomicU32, Ordering};

use cortex_m::peripheral::syst::SystClkSource;
use cortex_m::peripheral::SYST;
use cortex_m_rt::exception;
use embedded_hal::delay::DelayNs;

/// SysTick's clock on the AN521 model: the 20 MHz CPU clock.
#[cfg(not(feature = "an524"))]
pub const CPU_HZ: u32 = 20_000_000;
/// SysTick's clock on the AN524 model: the 32 MHz CPU clock.
#[cfg(feature = "an524")]
pub const CPU_HZ: u32 = 32_000_000;
/// Tick interrupts per second.
pub const TICK_HZ: u32 = 1_000;
/// Nanoseconds between ticks.
pub const TICK_NS: u32 = 1_000_000_000 / TICK_HZ;
/// Counter reload value for one tick.
const RELOAD: u32 = CPU_HZ / TICK_HZ - 1;
/// Nanoseconds per counter step.
const NS_PER_CYCLE: u32 = 1_000_000_000 / CPU_HZ;

/// Ticks since [`start`] (per core).
static TICKS: AtomicU32 = AtomicU32::new(0);

/// Starts the 1 kHz tick on this core.
pub fn start(syst: &mut SYST) {
    syst.disable_counter();
    syst.set_clock_source(SystClkSource::Core);
    syst.set_reload(RELOAD);
    syst.clear_current();
    syst.enable_interrupt();
    syst.enable_counter();
}

/// Stops the tick and drops a pending tick interrupt (before core 1
/// restarts its image).
pub fn stop() {
    // SAFETY: SYST::PTR is this core's always-mapped SysTick block; writing
    // CSR = 0 (counter and interrupt off) is always valid, and races with no
    // other writer (only `start` and this function write it, both from
    // thread mode of this core).
    unsafe { (*SYST::PTR).csr.write(0) };
    cortex_m::peripheral::SCB::clear_pendst();
}

#[exception]
/// Counts ticks. Also ends any `WFI`, which is its second purpose.
fn SysTick() {
    super::bump(&TICKS, Ordering::Relaxed);
}

/// Nanoseconds since [`start`] (wraps after 49 days).
pub fn now_ns() -> u64 {
    loop {
        let before = TICKS.load(Ordering::Relaxed);
        let current = SYST::get_current();
        if TICKS.load(Ordering::Relaxed) == before {
            let into_tick = RELOAD.saturating_sub(current) as u64 * NS_PER_CYCLE as u64;
            return before as u64 * TICK_NS as u64 + into_tick;
        }
    }
}

/// Busy-waits on [`now_ns`]: the delay the shm-baremetal strategies charge
/// their timeouts with.
#[derive(Debug, Clone, Copy, Default)]
pub struct Delay;

impl DelayNs for Delay {
    fn delay_ns(&mut self, ns: u32) {
        let end = now_ns() + ns as u64;
        while now_ns() < end {
            // Lets the other core run under QEMU's round-robin mode.
            core::hint::spin_loop();
        }
    }
}
