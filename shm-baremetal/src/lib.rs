#![doc = include_str!("../README.md")]
#![cfg_attr(not(test), no_std)]
#![deny(missing_docs, unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks, clippy::missing_safety_doc)]

mod budget;
mod error;
mod fmt;
mod pacing;
mod sync;

#[cfg(feature = "embassy")]
pub mod asynch;
pub mod attach;
pub mod cache;
pub mod doorbell;
pub mod lock;
pub mod queue;
pub mod spin;
pub mod window;

#[cfg(any(target_has_atomic = "32", feature = "critical-section"))]
pub mod mailbox;

#[cfg(target_arch = "arm")]
pub mod wfe;

pub use attach::{AttachBlock, CoreId, Endpoint, LaneState, Link, LinkWait, Session};
pub use budget::Budget;
pub use cache::{Cache, NoCache};
pub use doorbell::{Doorbell, DoorbellWait};
pub use error::{AttachError, PeerReset};
pub use spin::SpinWait;
pub use window::{Window, WindowError};

#[cfg(target_arch = "arm")]
pub use wfe::WfeWait;

#[cfg(test)]
mod tests;
