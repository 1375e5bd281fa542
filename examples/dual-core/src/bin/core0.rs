//! Core 0 (CPU0) image: boots first, starts core 1, creates the segment in
//! the shared window, drives the exchanges and ends the QEMU run with its
//! verdict. With the `linux-peer` feature it serves a Linux process instead
//! (see `dual_core::linux`).

#![no_std]
#![no_main]

use cortex_m_rt::entry;
use cortex_m_semihosting::hprintln;
use dual_core::board::{self, boot, exit, CoreId};

#[entry]
fn main() -> ! {
    board::init(CoreId::Core0);
    hprintln!("core0: up, starting core 1");
    if let Err(e) = boot::start_core1() {
        hprintln!("core0: {}", e);
        exit::exit(exit::BOOT_FAILED);
    }
    run()
}

#[cfg(not(feature = "linux-peer"))]
fn run() -> ! {
    let report = dual_core::exchange::run_core0();
    hprintln!("{}", report);
    exit::exit(if report.passed() { exit::SUCCESS } else { exit::EXCHANGE_FAILED })
}

#[cfg(feature = "linux-peer")]
fn run() -> ! {
    dual_core::linux::run_core0()
}
