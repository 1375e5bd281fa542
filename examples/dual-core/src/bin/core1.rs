//! Core 1 (CPU1) image: started by core 0 (and restarted by itself when core
//! 0 asks), opens the segment and serves core 0's requests. It never ends
//! the QEMU run itself, except through the failure handlers. With the
//! `linux-peer` feature it feeds a Linux process instead (see
//! `dual_core::linux`).

#![no_std]
#![no_main]

use cortex_m_rt::entry;
use dual_core::board::{self, CoreId};

#[entry]
fn main() -> ! {
    board::init(CoreId::Core1);
    #[cfg(not(feature = "linux-peer"))]
    let run = dual_core::exchange::run_core1;
    #[cfg(feature = "linux-peer")]
    let run = dual_core::linux::run_core1;
    run()
}
