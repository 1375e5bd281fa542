//! Errors of this crate: attaching ([`AttachError`]), a reset peer
//! ([`PeerReset`]), and channel calls ([`Error`], a channel's own error or
//! a reset peer). Each maps to shm-core's [`ErrorKind`].

use core::fmt;

use shm_core::{CreateError, ErrorKind, OpenError};

use crate::attach::CoreId;

/// The peer reset, or attached again, since this core linked with it: its
/// session changed (or the segment was re-created). Drop the channel ends
/// and the link, and attach again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PeerReset {
    /// The peer core.
    pub peer: CoreId,
    /// The peer's session when the link was made.
    pub linked: u32,
    /// The peer's session now (equal to `linked` when only the segment was
    /// re-created).
    pub now: u32,
}

impl fmt::Display for PeerReset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} reset or re-attached (session {} is now {}): attach again", self.peer, self.linked, self.now)
    }
}

impl shm_core::Error for PeerReset {
    fn kind(&self) -> ErrorKind {
        ErrorKind::PeerDied
    }
}

/// A channel call failed: either the channel's own error `E` (shm-core's
/// `SendError`, `RecvError`, `CallError`, `ServeError`, `ClaimError`), or the
/// peer reset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Error<E> {
    /// The peer reset or re-attached; whatever the channel saw (a timeout, a
    /// dead peer) is explained by that.
    PeerReset(PeerReset),
    /// The channel's own error.
    Channel(E),
}

impl<E> From<PeerReset> for Error<E> {
    fn from(e: PeerReset) -> Self {
        Self::PeerReset(e)
    }
}

impl<E: fmt::Display> fmt::Display for Error<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::PeerReset(e) => e.fmt(f),
            Self::Channel(e) => e.fmt(f),
        }
    }
}

impl<E: shm_core::Error> shm_core::Error for Error<E> {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::PeerReset(e) => e.kind(),
            Self::Channel(e) => e.kind(),
        }
    }
}

/// Attaching to the window failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum AttachError {
    /// Creating the segment failed (the window is too small for the layout).
    Create(CreateError),
    /// Opening the segment failed after the handshake.
    Open(OpenError),
    /// The peer did not complete the handshake within the timeout: it is not
    /// running, is still booting, or is of another build.
    Timeout {
        /// The peer core.
        peer: CoreId,
    },
    /// The segment in the window was not created by the peer's current
    /// session (left over from before a reset, or re-created meanwhile).
    Stale {
        /// Creator id in the segment header.
        creator: u32,
        /// Creator session in the segment header.
        session: u32,
    },
}

impl fmt::Display for AttachError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Create(e) => write!(f, "cannot create the segment: {e}"),
            Self::Open(e) => write!(f, "cannot open the segment: {e}"),
            Self::Timeout { peer } => {
                write!(f, "{peer} did not complete the attach handshake within the timeout: is it running?")
            }
            Self::Stale { creator, session } => write!(
                f,
                "segment was created by {creator:#x} session {session}, not by the peer's current session: attach again"
            ),
        }
    }
}

impl shm_core::Error for AttachError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Create(e) => e.kind(),
            Self::Open(e) => e.kind(),
            Self::Timeout { .. } => ErrorKind::Timeout,
            Self::Stale { .. } => ErrorKind::PeerDied,
        }
    }
}
