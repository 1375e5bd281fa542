#![doc = include_str!("../README.md")]
#![deny(missing_docs, unsafe_code)]
#![deny(clippy::undocumented_unsafe_blocks, clippy::missing_safety_doc)]

#[cfg(feature = "tokio")]
pub mod aio;
mod futex;
mod identity;
mod membarrier;
mod name;
mod named;
mod object;
pub mod owned;
mod pacing;
mod remove;
mod segment;
mod waitset;

pub mod list;

pub use futex::{pid_alive, FutexSemaphore, FutexWait, DEFAULT_LIVENESS_INTERVAL, HOST_SPIN_LIMIT};
pub use identity::{creator_liveness, pid_namespace, process_start, Liveness};
pub use name::{canonical_name, NameError, MAX_NAME_LEN};
pub use named::{word_semaphore_name, NamedSemaphore, NamedSemaphoreError, NamedSemaphoreWait};
pub use object::{ObjectId, Refusal};
pub use owned::{
    OwnedClient, OwnedConsumer, OwnedDirectClient, OwnedDirectServer, OwnedProducer, OwnedPublisher, OwnedServer,
    OwnedSubscriber,
};
pub use remove::{remove, remove_with, RemoveError, RemoveOptions, Removed};
pub use segment::{CloseError, CreateError, CreateOptions, OpenError, Segment};
pub use waitset::{WaitSet, WaitSetError, DEFAULT_SLICE, FALLBACK_SLICE, JUDGE_AT_TIMEOUT, MAX_ENDPOINTS};

/// Re-exported so users need only this crate.
pub use shm_core;

/// The workspace README's examples, run as doctests of this crate (the
/// README is no crate's front page). Only under `cargo test`: the packaged
/// crate does not contain the file.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct WorkspaceReadme;
