//! Core 1 (CPU1) image: started by core 0 (and restarted by itself when core
//! 0 asks), opens the segment and serves core 0's requests. It never ends
//! the QEMU run itself, except through the failure handlers. With the
//! `linux-peer` feature it feeds a Linux process instead (see
//! `dual_core::linux`).
//!
//! Without `linux-peer` it runs embassy-executor: the exchange is one
//! embassy task that awaits the broadcast channel (see `dual_core::tasks`).

#![no_std]
#![no_main]

use dual_core::board::{self, CoreId};

#[cfg(not(feature = "linux-peer"))]
#[embassy_executor::main]
async fn main(_spawner: embassy_executor::Spawner) {
    board::init(CoreId::Core1);
    dual_core::exchange::run_core1().await
}

#[cfg(feature = "linux-peer")]
#[cortex_m_rt::entry]
fn main() -> ! {
    board::init(CoreId::Core1);
    dual_core::linux::run_core1()
}
