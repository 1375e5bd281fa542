//! The external-interrupt part of the vector table (cortex-m-rt's
//! `device` feature expects the application to supply `__INTERRUPTS`).
//!
//! Only the two MHU lines have handlers; every other entry goes to
//! `DefaultHandler` (see [`super::fault`]), which exits with failure.

use super::mhu::{self, MHU0, MHU1};

/// One vector table entry.
type Vector = unsafe extern "C" fn();

extern "C" {
    /// Defined in [`super::fault`] via cortex-m-rt's `#[exception]`.
    fn DefaultHandler();
}

/// Handler for IRQ 6 (MHU0).
extern "C" fn mhu0_irq() {
    mhu::on_interrupt(MHU0);
}

/// Handler for IRQ 7 (MHU1).
extern "C" fn mhu1_irq() {
    mhu::on_interrupt(MHU1);
}

/// External interrupts 0..=7; the NVIC only delivers lines that were
/// unmasked, and only 6 and 7 ever are.
#[doc(hidden)]
#[link_section = ".vector_table.interrupts"]
#[no_mangle]
pub static __INTERRUPTS: [Vector; 8] = [
    DefaultHandler, // 0
    DefaultHandler, // 1
    DefaultHandler, // 2
    DefaultHandler, // 3
    DefaultHandler, // 4
    DefaultHandler, // 5
    mhu0_irq,       // 6: MHU0
    mhu1_irq,       // 7: MHU1
];
