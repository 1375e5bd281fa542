#![doc = include_str!("../README.md")]
#![cfg_attr(not(any(test, feature = "std", shm_loom)), no_std)]
#![deny(missing_docs, unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks, clippy::missing_safety_doc)]
// Model-checking builds leave out the segment code (loom atomics cannot live
// in raw memory), so the format's helpers go unused there.
#![cfg_attr(shm_loom, allow(dead_code))]

#[cfg(any(test, feature = "std"))]
extern crate std;

mod error;
mod event;
pub mod payload;
mod sync;

// Crash points are public only for crash tests (feature `crash-points`).
pub mod broadcast;
#[cfg(feature = "crash-points")]
pub mod crash;
#[cfg(not(feature = "crash-points"))]
mod crash;
pub mod format;
pub mod layout;
pub mod queue;
pub mod ready;
mod role;
pub mod semaphore;
pub mod wait;

#[cfg(shm_cas)]
pub mod mailbox;
#[cfg(shm_cas)]
pub use mailbox::direct;

#[cfg(all(feature = "zerocopy", shm_cas, not(shm_loom)))]
pub mod typed;

#[cfg(not(shm_loom))]
mod region;
#[cfg(not(shm_loom))]
mod segment;

#[cfg(all(any(test, feature = "mock"), not(shm_loom)))]
pub mod conformance;
#[cfg(all(any(test, feature = "mock"), not(shm_loom)))]
pub mod mock;

pub use error::{
    CallError, ChannelName, ClaimError, Corruption, CreateError, ErrorKind, HasErrorKind, LayoutError, OpenError,
    PeerReset, RecvError, Role, SemaphoreError, SendError, ServeError,
};
pub use format::table::{ChannelInfo, ChannelKind, ChannelParams};
pub use layout::Layout;
pub use semaphore::Semaphore;
pub use wait::Wait;

#[cfg(shm_cas)]
pub use semaphore::CountingSemaphore;

#[cfg(not(shm_loom))]
pub use region::{Misaligned, Region};
#[cfg(not(shm_loom))]
pub use segment::{peek, Creator, Peek, Segment, SegmentInfo};

#[cfg(all(not(shm_loom), any(target_has_atomic = "32", feature = "locked-atomics")))]
pub use sync::AsNativeWord;
/// The atomic type of the words in the segment: `core`'s, loom's in
/// model-checking builds, or `portable-atomic`'s on a target without
/// compare-and-swap built with the `critical-section` feature, or a word
/// whose writes take the critical section with the `locked-atomics`
/// feature (it has `load`, `store`, `swap`, `compare_exchange` and
/// `fetch_add`/`fetch_sub`, and no `as_ptr`). What
/// [`Wait`] implementations sleep on: name it `shm_core::AtomicU32`, not
/// `core::sync::atomic::AtomicU32`, so they build everywhere.
pub use sync::AtomicU32;

#[cfg(all(test, not(shm_loom)))]
mod test_support;
