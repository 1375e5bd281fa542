//! What can go wrong in a run, as one error type with a `source()` chain.
//!
//! # Design
//!
//! Contexts that the hot loops attach on every operation are
//! `Cow<'static, str>` built from literals, so a successful operation never
//! allocates for its error path (the benchmark fails any run whose shm hot
//! path allocates). `Display` shows one link; [`chain`] joins all of them.

use std::borrow::Cow;
use std::fmt;
use std::io;
use std::path::PathBuf;

/// Why the benchmark, a row of it, or a peer process failed.
#[derive(Debug)]
pub enum Error {
    /// The method cannot run on this machine (a system limit): its row says
    /// so and the run does not fail.
    Unsupported(String),
    /// A system call failed.
    Os {
        /// What was being done.
        op: Cow<'static, str>,
        /// What the system said.
        source: io::Error,
    },
    /// The shared-memory library (or iceoryx2, in its rows) refused or
    /// failed. Carried as its message: the library's error types do not
    /// implement `std::error::Error` yet.
    Shm {
        /// What was being done.
        op: Cow<'static, str>,
        /// The library's message.
        message: String,
    },
    /// The peer process died, failed, or sent back no report.
    Peer(String),
    /// The peer answered with other bytes than the protocol says.
    WrongData(String),
    /// An option that cannot work (a size or ring out of range).
    Usage(String),
    /// Operation `index` of a measuring loop failed.
    Op {
        /// What one operation is ("round trip", "sending message").
        what: &'static str,
        /// Which one, counting the warm-up.
        index: u64,
        /// Whether it was still in the warm-up.
        warmup: bool,
        /// Why it failed.
        source: Box<Error>,
    },
    /// A report could not be written or read as JSON.
    Json {
        /// Which report.
        what: Cow<'static, str>,
        /// What serde_json said.
        source: serde_json::Error,
    },
    /// The chart could not be drawn.
    Chart {
        /// The SVG file.
        path: PathBuf,
        /// What plotters said.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl Error {
    /// For `map_err`: a failed system call doing `op`.
    pub fn os(op: impl Into<Cow<'static, str>>) -> impl FnOnce(io::Error) -> Self {
        let op = op.into();
        move |source| Error::Os { op, source }
    }

    /// For `map_err`: a failed shm library call doing `op`.
    pub fn shm<E: fmt::Display>(op: impl Into<Cow<'static, str>>) -> impl FnOnce(E) -> Self {
        let op = op.into();
        move |e| Error::Shm { op, message: e.to_string() }
    }

    /// For `map_err` on a pipe or socket: an early end of stream means the
    /// peer is gone, anything else is the system call's error.
    pub fn stream(op: &'static str) -> impl FnOnce(io::Error) -> Self {
        move |source| match source.kind() {
            io::ErrorKind::UnexpectedEof => Error::Peer(format!("{op}: the peer closed its end (did it die?)")),
            _ => Error::Os { op: op.into(), source },
        }
    }

    /// Whether the row should say "skipped" rather than "failed".
    pub fn is_unsupported(&self) -> bool {
        matches!(self, Error::Unsupported(_))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Unsupported(why) => write!(f, "{why}"),
            Error::Os { op, .. } => write!(f, "{op}"),
            Error::Shm { op, message } => write!(f, "{op}: {message}"),
            Error::Peer(what) | Error::WrongData(what) | Error::Usage(what) => write!(f, "{what}"),
            Error::Op { what, index, warmup: true, .. } => write!(f, "warm-up {what} {index}"),
            Error::Op { what, index, warmup: false, .. } => write!(f, "{what} {index}"),
            Error::Json { what, .. } => write!(f, "{what}"),
            Error::Chart { path, .. } => write!(f, "cannot draw {}", path.display()),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Os { source, .. } => Some(source),
            Error::Op { source, .. } => Some(source.as_ref()),
            Error::Json { source, .. } => Some(source),
            Error::Chart { source, .. } => Some(source.as_ref()),
            _ => None,
        }
    }
}

/// `e` and every source under it, joined by `: `.
pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut next = e.source();
    while let Some(cause) = next {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        next = cause.source();
    }
    out
}
