//! Errors of this crate: attaching ([`AttachError`]), a reset peer
//! ([`PeerReset`]), and channel calls over a link ([`LinkError`], a
//! channel's own error or a reset peer). Each is a [`core::error::Error`]
//! and maps to shm-core's [`ErrorKind`] ([`HasErrorKind`]).

use core::fmt;

use shm_core::{CreateError, ErrorKind, HasErrorKind, OpenError};

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
        write!(
            f,
            "{} reset or re-attached (session {} is now {}): drop the channel ends and the link, and attach again",
            self.peer, self.linked, self.now
        )
    }
}

impl core::error::Error for PeerReset {}

impl HasErrorKind for PeerReset {
    fn kind(&self) -> ErrorKind {
        ErrorKind::PeerDied
    }
}

/// A channel call over a [`Link`](crate::Link) failed: either the channel's
/// own error `E` (shm-core's `SendError`, `RecvError`, `CallError`,
/// `ServeError`, `ClaimError`), or the peer reset.
///
/// Named for the link that adds [`PeerReset`] to the channel's errors (it
/// was `Error<E>`, a name shared with `core::error::Error` and with what
/// was shm-core's error trait).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum LinkError<E> {
    /// The peer reset or re-attached; whatever the channel saw (a timeout, a
    /// dead peer) is explained by that.
    PeerReset(PeerReset),
    /// The channel's own error.
    Channel(E),
}

impl<E> From<PeerReset> for LinkError<E> {
    fn from(e: PeerReset) -> Self {
        Self::PeerReset(e)
    }
}

impl<E: fmt::Display> fmt::Display for LinkError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::PeerReset(e) => e.fmt(f),
            Self::Channel(e) => e.fmt(f),
        }
    }
}

/// `source()` is the error inside (the message already includes it).
impl<E: core::error::Error + 'static> core::error::Error for LinkError<E> {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::PeerReset(e) => Some(e),
            Self::Channel(e) => Some(e),
        }
    }
}

impl<E: HasErrorKind + 'static> HasErrorKind for LinkError<E> {
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
            Self::Create(e) => write!(f, "cannot create the segment in the shared window: {e}"),
            Self::Open(e) => write!(f, "cannot open the segment in the shared window: {e}"),
            Self::Timeout { peer } => write!(
                f,
                "{peer} did not complete the attach handshake within the timeout: check that it runs and \
                 attaches to the same window, or attach with a longer timeout"
            ),
            Self::Stale { creator, session } => write!(
                f,
                "segment in the shared window was created by {creator:#x} session {session}, not by the peer's \
                 current session: attach again"
            ),
        }
    }
}

/// `source()` is the shm-core error inside (the message already includes
/// it).
impl core::error::Error for AttachError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::Create(e) => Some(e),
            Self::Open(e) => Some(e),
            _ => None,
        }
    }
}

impl HasErrorKind for AttachError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Create(e) => e.kind(),
            Self::Open(e) => e.kind(),
            Self::Timeout { .. } => ErrorKind::Timeout,
            Self::Stale { .. } => ErrorKind::PeerDied,
        }
    }
}
