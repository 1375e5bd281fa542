//! Handlers that turn any failure on either core into a failing exit status:
//! panics, HardFaults (all other faults escalate to HardFault, as none is
//! enabled), and exceptions or interrupts without a handler.

use core::panic::PanicInfo;

use cortex_m::interrupt;
use cortex_m_rt::{exception, ExceptionFrame};
use cortex_m_semihosting::hprintln;

use super::cpu_identity_raw;
use super::exit::{exit, HARD_FAULT, PANIC, UNEXPECTED_EXCEPTION};

/// Prints the panic message with the core number and exits with [`PANIC`].
#[panic_handler]
fn panic(info: &PanicInfo) -> ! {
    interrupt::disable();
    hprintln!("core{}: panic: {}", cpu_identity_raw(), info);
    exit(PANIC)
}

#[exception]
/// Prints the faulting frame and exits with [`HARD_FAULT`].
unsafe fn HardFault(frame: &ExceptionFrame) -> ! {
    hprintln!(
        "core{}: HardFault: pc={:#010x} lr={:#010x} xpsr={:#010x}",
        cpu_identity_raw(),
        frame.pc(),
        frame.lr(),
        frame.xpsr()
    );
    exit(HARD_FAULT)
}

#[exception]
/// Any exception or interrupt without its own handler: prints its number
/// (negative for core exceptions, 0.. for external interrupts) and exits with
/// [`UNEXPECTED_EXCEPTION`].
unsafe fn DefaultHandler(irqn: i16) -> ! {
    hprintln!("core{}: unexpected exception {}", cpu_identity_raw(), irqn);
    exit(UNEXPECTED_EXCEPTION)
}
