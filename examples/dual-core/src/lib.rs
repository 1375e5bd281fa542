//! Dual-core firmware for QEMU's `mps2-an521` or `mps3-an524` (two
//! Cortex-M33 cores of an SSE-200): the shm protocol between the cores
//! through `shm-baremetal`.
//!
//! Two layers, kept apart on purpose:
//!
//! * [`board`]: board support — memory map and the shared window, CPU
//!   identity, starting (and restarting) core 1, the MHU doorbell driver and
//!   its `shm_baremetal::Doorbell` implementation, the SysTick clock and
//!   delay, semihosting exit and fault handlers. Nothing in it knows about
//!   the message format.
//! * [`exchange`]: the exchanges (mailbox, queue, semaphore, broadcast, peer
//!   reset), through shm-baremetal only; core 1 runs them as an embassy task
//!   ([`tasks`]).
//!
//! The two binaries (`src/bin/core0.rs`, `src/bin/core1.rs`) are thin: they
//! check which core they run on, then call into these modules.

#![no_std]
#![deny(missing_docs, unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks, clippy::missing_safety_doc)]

pub mod board;
pub mod exchange;
#[cfg(feature = "linux-peer")]
pub mod linux;
#[cfg(feature = "linux-peer")]
pub mod linux_protocol;
pub mod tasks;
