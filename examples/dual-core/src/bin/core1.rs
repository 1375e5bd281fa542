//! Core 1 (CPU1) image: started by core 0 (and restarted by itself when core
//! 0 asks), opens the segment and serves core 0's requests. It never ends
//! the QEMU run itself, except through the failure handlers.

#![no_std]
#![no_main]

use cortex_m_rt::entry;
use dual_core::board::{self, CoreId};
use dual_core::exchange;

#[entry]
fn main() -> ! {
    board::init(CoreId::Core1);
    exchange::run_core1()
}
