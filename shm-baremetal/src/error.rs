//! Errors of this crate: attaching ([`AttachError`]) and a reset peer
//! ([`PeerReset`], shm-core's). Each is a [`core::error::Error`] and maps to
//! shm-core's [`ErrorKind`] ([`HasErrorKind`]).

use core::fmt;

use shm_core::{CreateError, ErrorKind, HasErrorKind, OpenError};

use crate::attach::CoreId;

/// The peer reset, or attached again, since this core linked with it: its
/// session changed (or the segment was re-created). Drop the channel ends
/// and the link, and attach again. shm-core's: every channel error of a
/// [`Link`](crate::Link)'s ends carries it as its `PeerReset` variant.
pub use shm_core::PeerReset;

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
