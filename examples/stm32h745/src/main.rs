//! shm between the Cortex-M7 and the Cortex-M4 of an STM32H745
//! (NUCLEO-H745ZI-Q), on embassy-stm32.
//!
//! One crate, two images: `--features cm7` for the M7 (flash bank 1),
//! `--features cm4` for the M4 (flash bank 2). The M7 creates a segment in
//! D3 SRAM4, serves a mailbox (each request answered reversed) 1000 times,
//! then reads 10 000 numbered messages the M4 writes into a queue; the M4
//! opens the segment, makes the calls and writes the messages. Then the M7
//! lights the green LED (LD1, PB0) if every message and request it saw
//! matched, the red one (LD3, PB14) if not, and the M4 the yellow one (LD2,
//! PE1) if every answer matched; a panic halts the core.
//!
//! - **No exclusives on the shared RAM**: `LDREX`/`STREX` to the M7's
//!   non-cacheable SRAM4 region bus-fault, so both images are built with
//!   shm-baremetal's `locked-atomics`: every store and read-modify-write of
//!   a control word runs in the critical section, which masks interrupts
//!   and takes HSEM semaphore 31 (`hsem.rs`).
//! - **Doorbell**: the HSEM free interrupt. Ringing takes and frees a
//!   semaphore whose interrupt only the other core enabled (30 wakes the
//!   M7, 29 the M4); [`hsem::HsemDoorbell`] is the
//!   `shm_baremetal::Doorbell`, under shm-baremetal's `DoorbellWait`.
//! - **Cache**: the M7 maps SRAM4 non-cacheable in its MPU before touching
//!   it (`m7.rs`); its endpoint's cache hooks clean and invalidate by
//!   address. The M4 has no data cache.
//! - **Time**: SysTick interrupts every millisecond on each core, so timed
//!   waits sleep (`WFI`) until a ring or a tick; busy-wait delays count core
//!   cycles at the default 64 MHz.
//!
//! Verified: it builds and passes clippy for `thumbv7em-none-eabihf` (both
//! images) in CI. Not verified: it has never run on a chip.

#![no_std]
#![no_main]

mod hsem;
#[cfg(feature = "cm7")]
mod m7;

use core::mem::MaybeUninit;
use core::panic::PanicInfo;
use core::time::Duration;

use cortex_m_rt::exception;
use embassy_stm32::interrupt;
use embassy_stm32::SharedData;
use embedded_hal::delay::DelayNs;
use shm_baremetal::{CoreId, Doorbell, DoorbellWait, Endpoint, Window};
use shm_core::Layout;

use hsem::HsemDoorbell;

/// Both cores' clock: embassy-stm32's default `rcc::Config` runs the system
/// from the 64 MHz HSI with no dividers, so the M7 and the M4 (on the AHB
/// clock) both run at 64 MHz.
const CORE_HZ: u32 = 64_000_000;
/// The SysTick period: the tick that ends a timed wait's sleep.
const TICK_NS: u32 = 1_000_000;
/// Echo calls the M4 makes.
const CALLS: u32 = 1000;
/// Messages the M4 writes into the queue.
const MESSAGES: u32 = 10_000;
/// How long any call, send, receive or attach may wait.
const TIMEOUT: Duration = Duration::from_secs(5);

extern "C" {
    /// embassy-stm32's record of the M7's clock set-up, for the M4's
    /// `init_secondary`: the `HAL` region of shared.x, in SRAM4 at the same
    /// address in both images, never touched by either start-up code.
    ///
    /// Defined by the linker script, not as a Rust
    /// `static ...: MaybeUninit<SharedData> = MaybeUninit::uninit()` (the
    /// way embassy-stm32's docs show): with LTO the M4 image, which never
    /// writes it, reads that uninitialized initializer, and the compiler
    /// turned `init_secondary`'s wait into an endless loop (seen in this
    /// example's disassembly).
    static _embassy_shared: MaybeUninit<SharedData>;
}

/// The bytes the linker reserves for embassy-stm32's `SharedData`.
const HAL_REGION_BYTES: usize = 4096;
const _: () = assert!(core::mem::size_of::<SharedData>() <= HAL_REGION_BYTES);

/// embassy-stm32's `SharedData`, for `init_primary`/`init_secondary`.
fn embassy_shared() -> &'static MaybeUninit<SharedData> {
    // SAFETY: shared.x places `_embassy_shared` at the start of its `HAL`
    // region (4 KiB at a 4 KiB boundary: SharedData fits, asserted above, and
    // is aligned), at the same address in both images; nothing but embassy-stm32's init touches
    // it, and a `MaybeUninit` may hold any bytes.
    unsafe { &*core::ptr::addr_of!(_embassy_shared) }
}

/// The channels both cores declare.
fn layout() -> Layout {
    Layout::new().mailbox("rpc", 1, 64).and_then(|l| l.queue("stream", 2048)).expect("a valid layout")
}

/// The shm window: the first 60 KiB of SRAM4.
fn window() -> Window {
    // SAFETY: `SHM` in shared.x (0x3800_0000, 60 KiB) holds no section, so
    // no Rust object lives there; both cores see the same bytes, uncached
    // (the M7 maps SRAM4 non-cacheable before it gets here, the M4 has no
    // data cache), and only shm-baremetal touches them.
    unsafe { shm_baremetal::window!(_shm_start, _shm_end) }.expect("shared.x: SHM holds a segment")
}

/// Busy-wait delays counted in core cycles at [`CORE_HZ`] (at least as
/// long as asked: `cortex_m::asm::delay` waits at least that many cycles).
#[derive(Debug, Clone, Copy)]
struct CycleDelay;

impl DelayNs for CycleDelay {
    fn delay_ns(&mut self, ns: u32) {
        let us = ns.div_ceil(1000);
        cortex_m::asm::delay(us.saturating_mul(CORE_HZ / 1_000_000));
    }
}

/// Starts SysTick interrupts every [`TICK_NS`]: the periodic interrupt
/// `DoorbellWait::with_tick_ns` is promised.
fn start_tick(mut syst: cortex_m::peripheral::SYST) {
    syst.set_clock_source(cortex_m::peripheral::syst::SystClkSource::Core);
    syst.set_reload(CORE_HZ / (1_000_000_000 / TICK_NS) - 1);
    syst.clear_current();
    syst.enable_interrupt();
    syst.enable_counter();
}

/// The tick only ends a sleep; the waits re-check their words.
#[exception]
fn SysTick() {}

type Wait = DoorbellWait<'static, HsemDoorbell, CycleDelay>;

/// This core's wait strategy: sleeps until the other core rings or a tick.
fn wait_for(session: shm_baremetal::Session<'static>) -> Wait {
    DoorbellWait::new(session, HsemDoorbell::new(), CycleDelay).with_tick_ns(TICK_NS)
}

/// The M7's doorbell interrupt (HSEM interrupt line 0).
#[cfg(feature = "cm7")]
#[interrupt]
fn HSEM1() {
    HsemDoorbell::new().clear();
}

/// The M4's doorbell interrupt (HSEM interrupt line 1).
#[cfg(feature = "cm4")]
#[interrupt]
fn HSEM2() {
    HsemDoorbell::new().clear();
}

/// The M7: returns whether every answer and message matched.
#[cfg(feature = "cm7")]
fn m7_exchange() -> bool {
    let me = Endpoint::with_cache(window(), CoreId::CORE0, CoreId::CORE1, m7::DataCache);
    let wait = wait_for(me.session());
    let Ok(link) = me.create(&layout(), &wait, TIMEOUT) else { return false };
    let Ok(server) = link.server("rpc", &wait) else { return false };
    for _ in 0..CALLS {
        let served = server.serve_timeout(TIMEOUT, |buf, len| {
            buf[..len].reverse();
            len
        });
        if served.is_err() {
            return false;
        }
    }
    let Ok(mut rx) = link.consumer("stream", &wait) else { return false };
    let mut buf = [0u8; 4];
    let mut ok = true;
    for seq in 0..MESSAGES {
        ok &= rx.recv_timeout(&mut buf, TIMEOUT) == Ok(4) && u32::from_le_bytes(buf) == seq;
    }
    ok
}

/// The M4: opens the segment, calls the M7's mailbox, feeds the queue;
/// returns whether every answer matched.
#[cfg(feature = "cm4")]
fn m4_exchange() -> bool {
    let me = Endpoint::new(window(), CoreId::CORE1, CoreId::CORE0);
    let wait = wait_for(me.session());
    let Ok(link) = me.open(&layout(), &wait, TIMEOUT) else { return false };
    let Ok(client) = link.client("rpc", &wait) else { return false };
    let mut ok = true;
    for call in 0..CALLS {
        let request = call.to_le_bytes();
        let mut answer = [0u8; 4];
        let mut expected = request;
        expected.reverse();
        ok &= client.call_timeout(&request, &mut answer, TIMEOUT) == Ok(4) && answer == expected;
    }
    let Ok(mut tx) = link.producer("stream", &wait) else { return false };
    for seq in 0..MESSAGES {
        ok &= tx.send_timeout(&seq.to_le_bytes(), TIMEOUT).is_ok();
    }
    ok
}

#[cfg(feature = "cm7")]
#[cortex_m_rt::entry]
fn main() -> ! {
    use embassy_stm32::gpio::{Level, Output, Speed};
    use embassy_stm32::rcc::SupplyConfig;

    // Before the first critical section (cortex-m's `take` has one).
    hsem::enable_clock();
    let mut cp = cortex_m::Peripherals::take().expect("core peripherals taken once");
    // Before anything touches SRAM4, and before the data cache is on.
    m7::configure_memory(&mut cp.MPU, &mut cp.SCB, &mut cp.CPUID);

    let mut config = embassy_stm32::Config::default();
    // NUCLEO-H745ZI-Q: the core supply comes from the SMPS directly. It must
    // match the board (a wrong one can lock the chip until it is recovered
    // through BOOT0).
    config.rcc.supply_config = SupplyConfig::DirectSMPS;
    let p = embassy_stm32::init_primary(config, embassy_shared());
    // Starts the M4 if the option bytes hold it (BCM4 clear); no effect if
    // it already runs, waiting in `init_secondary`.
    embassy_stm32::pac::RCC.gcr().modify(|w| w.set_boot_c2(true));
    start_tick(cp.SYST);

    let passed = m7_exchange();
    let _green = Output::new(p.PB0, if passed { Level::High } else { Level::Low }, Speed::Low);
    let _red = Output::new(p.PB14, if passed { Level::Low } else { Level::High }, Speed::Low);
    loop {
        cortex_m::asm::wfi();
    }
}

#[cfg(feature = "cm4")]
#[cortex_m_rt::entry]
fn main() -> ! {
    use embassy_stm32::gpio::{Level, Output, Speed};

    // Before the first critical section (`init_secondary` has one).
    hsem::enable_clock();
    let cp = cortex_m::Peripherals::take().expect("core peripherals taken once");
    // Waits until the M7's `init_primary` has set the clocks up.
    let p = embassy_stm32::init_secondary(embassy_shared());
    start_tick(cp.SYST);
    let passed = m4_exchange();
    let _yellow = Output::new(p.PE1, if passed { Level::High } else { Level::Low }, Speed::Low);
    loop {
        cortex_m::asm::wfi();
    }
}

/// A panic on either core halts that core (there is no console); its LEDs
/// then stay dark.
#[panic_handler]
fn panic(_: &PanicInfo) -> ! {
    cortex_m::interrupt::disable();
    loop {
        cortex_m::asm::wfi();
    }
}
