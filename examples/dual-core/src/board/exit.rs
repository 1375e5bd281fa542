//! Ending the QEMU run with a status, through semihosting.
//!
//! QEMU's exit status is the code passed here. Any core may call [`exit`];
//! it ends the whole machine.

use cortex_m::asm;
use cortex_m_semihosting::debug;

/// Everything matched.
pub const SUCCESS: u32 = 0;
/// The exchange finished but something did not match.
pub const EXCHANGE_FAILED: u32 = 1;
/// A panic on either core.
pub const PANIC: u32 = 2;
/// A HardFault on either core.
pub const HARD_FAULT: u32 = 3;
/// Core 1 could not be started.
pub const BOOT_FAILED: u32 = 4;
/// An exception or interrupt without a handler was taken.
pub const UNEXPECTED_EXCEPTION: u32 = 5;
/// The other core held the two-core lock past its spin budget (the no-CAS
/// build's critical section: `board::lock`).
pub const LOCK_STUCK: u32 = 6;

/// Semihosting SYS_EXIT_EXTENDED: like SYS_EXIT, but with a status code.
const SYS_EXIT_EXTENDED: usize = 0x20;
/// ADP_Stopped_ApplicationExit reason code.
const ADP_STOPPED_APPLICATION_EXIT: u32 = 0x2_0026;

/// Ends the QEMU run with exit status `code` (0 = success).
///
/// Uses SYS_EXIT_EXTENDED so the exact code reaches the host; a host without
/// it gets plain SYS_EXIT, which still tells success (0) from failure (1).
pub fn exit(code: u32) -> ! {
    let block = [ADP_STOPPED_APPLICATION_EXIT, code];
    // SAFETY: SYS_EXIT_EXTENDED takes a pointer to a two-word parameter
    // block, which `block` is, alive for the whole call. Under QEMU with
    // semihosting enabled the call does not return.
    unsafe { cortex_m_semihosting::syscall(SYS_EXIT_EXTENDED, &block) };
    debug::exit(if code == SUCCESS { debug::EXIT_SUCCESS } else { debug::EXIT_FAILURE });
    // No semihosting host at all: stop here.
    loop {
        asm::bkpt();
    }
}
