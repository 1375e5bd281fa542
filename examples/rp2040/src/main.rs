//! shm between the two Cortex-M0+ cores of an RP2040 (Raspberry Pi Pico).
//!
//! Core 0 creates a segment in SRAM4/SRAM5 (`memory.x`), starts core 1,
//! and calls core 1's mailbox server (each request answered reversed) 1000
//! times, then reads 10 000 numbered messages core 1 writes into a queue;
//! the Pico's LED (GPIO 25) then blinks slowly if every answer and message
//! matched, fast if not.
//!
//! - **No compare-and-swap** (Armv6-M): shm-baremetal's `critical-section`
//!   feature runs every control-word access in the critical section, and
//!   rp2040-hal's `critical-section-impl` takes hardware spinlock 31 with
//!   interrupts masked, which excludes the other core.
//! - **Doorbell**: the SIO inter-core FIFO. Ringing pushes a word into the
//!   other core's FIFO (when there is room) and its `SIO_IRQ_PROCn` fires;
//!   the handler drains the FIFO. [`FifoDoorbell`] is the
//!   `shm_baremetal::Doorbell`.
//! - **Time**: the RP2040's 1 MHz timer (shared by both cores) is the
//!   `DelayNs` of the wait strategies.
//!
//! Verified: it builds for `thumbv6m-none-eabi` in CI. Not verified: it has
//! never run on a chip.

#![no_std]
#![no_main]

use core::panic::PanicInfo;
use core::time::Duration;

use embedded_hal::digital::OutputPin;
use hal::multicore::{Multicore, Stack};
use hal::pac::{self, interrupt};
use rp2040_hal as hal;
use shm_baremetal::{CoreId, Doorbell, DoorbellWait, Endpoint, Window};
use shm_core::Layout;

/// The second-stage bootloader for the Pico's W25Q080 flash.
#[link_section = ".boot2"]
#[used]
pub static BOOT2_FIRMWARE: [u8; 256] = rp2040_boot2::BOOT_LOADER_W25Q080;

/// The Pico's crystal.
const XOSC_HZ: u32 = 12_000_000;
/// Echo calls core 0 makes.
const CALLS: u32 = 1000;
/// Messages core 1 writes into the queue.
const MESSAGES: u32 = 10_000;
/// How long any call, send, receive or attach may wait.
const TIMEOUT: Duration = Duration::from_secs(5);

/// Core 1's stack.
static CORE1_STACK: Stack<4096> = Stack::new();

/// The channels both cores declare.
fn layout() -> Layout {
    Layout::new().mailbox("rpc", 1, 64).and_then(|l| l.queue("stream", 2048)).expect("a valid layout")
}

/// The shm window: SRAM4 and SRAM5, where no section is placed.
fn window() -> Window {
    // SAFETY: `SHARED` in memory.x (0x2004_0000, 8 KiB) holds no section, so
    // no Rust object lives there; both cores see the same bytes, uncached
    // (the RP2040 has no data cache), and only shm-baremetal touches them.
    unsafe { shm_baremetal::window!(_shm_start, _shm_end) }.expect("memory.x: SHARED holds a segment")
}

/// This core's number, from the SIO CPUID register.
fn core_number() -> u32 {
    // SAFETY: a read-only SIO register; reading it has no side effect.
    unsafe { (*pac::SIO::ptr()).cpuid().read().bits() }
}

/// The SIO inter-core FIFO as a doorbell: `ring` pushes a word to the other
/// core (its FIFO interrupt fires), `clear` drains this core's.
#[derive(Clone, Copy)]
struct FifoDoorbell;

impl Doorbell for FifoDoorbell {
    fn ring(&self) {
        // SAFETY: each core writes only its own TX FIFO (FIFO_WR is
        // per-core), and only here; FIFO_ST is read-only but for its
        // error flags.
        let sio = unsafe { &*pac::SIO::ptr() };
        // Our writes to the window reach memory before the other core's
        // handler runs (the FIFO write is ordered after them).
        cortex_m::asm::dsb();
        // A full FIFO already holds rings the other core has not drained.
        if sio.fifo_st().read().rdy().bit_is_set() {
            // SAFETY: any 32-bit value may be pushed.
            sio.fifo_wr().write(|w| unsafe { w.bits(1) });
        }
        cortex_m::asm::sev();
    }

    fn clear(&self) {
        drain_fifo();
    }

    fn enable(&self) {
        drain_fifo();
        let irq = if core_number() == 0 { pac::Interrupt::SIO_IRQ_PROC0 } else { pac::Interrupt::SIO_IRQ_PROC1 };
        // SAFETY: the handlers only drain this core's FIFO: unmasking them
        // breaks no critical section.
        unsafe { cortex_m::peripheral::NVIC::unmask(irq) };
    }
}

/// Empties this core's RX FIFO and clears its error flags.
fn drain_fifo() {
    // SAFETY: FIFO_RD and FIFO_ST are per-core; only this core's doorbell
    // code reads them.
    let sio = unsafe { &*pac::SIO::ptr() };
    while sio.fifo_st().read().vld().bit_is_set() {
        let _ = sio.fifo_rd().read().bits();
    }
    // Writing FIFO_ST clears the sticky overflow/underflow flags.
    // SAFETY: any value may be written to FIFO_ST; only the flags react.
    sio.fifo_st().write(|w| unsafe { w.bits(0xff) });
}

#[interrupt]
fn SIO_IRQ_PROC0() {
    drain_fifo();
}

#[interrupt]
fn SIO_IRQ_PROC1() {
    drain_fifo();
}

type Wait = DoorbellWait<'static, FifoDoorbell, hal::Timer>;

/// Core 1: opens the segment, then serves the mailbox and feeds the queue.
fn core1_main(timer: hal::Timer) -> ! {
    let me = Endpoint::new(window(), CoreId::CORE1, CoreId::CORE0);
    let wait: Wait = DoorbellWait::new(me.session(), FifoDoorbell, timer);
    let link = me.open(&layout(), &wait, TIMEOUT).unwrap_or_else(|_| panic!("attach"));
    let server = link.server("rpc", &wait).unwrap_or_else(|_| panic!("server"));
    for _ in 0..CALLS {
        server
            .serve_timeout(TIMEOUT, |buf, len| {
                buf[..len].reverse();
                len
            })
            .unwrap_or_else(|_| panic!("serve"));
    }
    let mut tx = link.producer("stream", &wait).unwrap_or_else(|_| panic!("producer"));
    for seq in 0..MESSAGES {
        tx.send_timeout(&seq.to_le_bytes(), TIMEOUT).unwrap_or_else(|_| panic!("send"));
    }
    loop {
        cortex_m::asm::wfe();
    }
}

/// Core 0: returns whether every answer and message matched.
fn core0_exchange(timer: hal::Timer) -> bool {
    let me = Endpoint::new(window(), CoreId::CORE0, CoreId::CORE1);
    let wait: Wait = DoorbellWait::new(me.session(), FifoDoorbell, timer);
    let Ok(link) = me.create(&layout(), &wait, TIMEOUT) else { return false };
    let Ok(client) = link.client("rpc", &wait) else { return false };
    let mut ok = true;
    for call in 0..CALLS {
        let request = call.to_le_bytes();
        let mut answer = [0u8; 4];
        let mut expected = request;
        expected.reverse();
        ok &= client.call_timeout(&request, &mut answer, TIMEOUT) == Ok(4) && answer == expected;
    }
    let Ok(mut rx) = link.consumer("stream", &wait) else { return false };
    let mut buf = [0u8; 4];
    for seq in 0..MESSAGES {
        ok &= rx.recv_timeout(&mut buf, TIMEOUT) == Ok(4) && u32::from_le_bytes(buf) == seq;
    }
    ok
}

#[hal::entry]
fn main() -> ! {
    let mut pac = pac::Peripherals::take().expect("peripherals taken once");
    let mut watchdog = hal::Watchdog::new(pac.WATCHDOG);
    let clocks = hal::clocks::init_clocks_and_plls(
        XOSC_HZ,
        pac.XOSC,
        pac.CLOCKS,
        pac.PLL_SYS,
        pac.PLL_USB,
        &mut pac.RESETS,
        &mut watchdog,
    )
    .unwrap_or_else(|_| panic!("clocks"));
    let timer = hal::Timer::new(pac.TIMER, &mut pac.RESETS, &clocks);
    let mut sio = hal::Sio::new(pac.SIO);
    let pins = hal::gpio::Pins::new(pac.IO_BANK0, pac.PADS_BANK0, sio.gpio_bank0, &mut pac.RESETS);
    let mut led = pins.gpio25.into_push_pull_output();

    // Core 1 first: its launch handshake uses the FIFO, which is a doorbell
    // only once both cores enabled their FIFO interrupts.
    let mut mc = Multicore::new(&mut pac.PSM, &mut pac.PPB, &mut sio.fifo);
    let cores = mc.cores();
    let stack = CORE1_STACK.take().expect("core 1's stack taken once");
    cores[1].spawn(stack, move || core1_main(timer)).unwrap_or_else(|_| panic!("starting core 1"));

    let passed = core0_exchange(timer);
    let half_period_ms = if passed { 500 } else { 100 };
    let mut delay = timer;
    loop {
        let _ = led.set_high();
        embedded_hal::delay::DelayNs::delay_ms(&mut delay, half_period_ms);
        let _ = led.set_low();
        embedded_hal::delay::DelayNs::delay_ms(&mut delay, half_period_ms);
    }
}

/// A panic on either core halts that core (there is no console); core 0's
/// LED then stops blinking.
#[panic_handler]
fn panic(_: &PanicInfo) -> ! {
    cortex_m::interrupt::disable();
    loop {
        cortex_m::asm::wfi();
    }
}
