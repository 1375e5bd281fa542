//! Errors: one enum per operation, each mapping to a shared [`ErrorKind`]
//! (the embedded-hal pattern), so generic code can branch on the kind while
//! callers still see exactly what went wrong.

use core::fmt;

/// The category of an error, shared by every error type of the crate.
///
/// Generic code (a retry loop, a supervisor) matches on this instead of on
/// each operation's enum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ErrorKind {
    /// The operation did not complete within the caller's budget.
    Timeout,
    /// A non-blocking call found nothing to do (queue empty or full, no free
    /// slot, semaphore at zero).
    WouldBlock,
    /// The process or core on the other side is gone.
    PeerDied,
    /// A word in the segment holds a value the protocol cannot produce.
    Corrupted,
    /// The segment was written by an incompatible build or format.
    Incompatible,
    /// A size, name or count is outside what the format allows.
    InvalidArgument,
    /// The role (server, producer, consumer) is held by someone else.
    Busy,
    /// No channel of that name and kind.
    NotFound,
    /// The other side closed the channel cleanly (after everything it sent
    /// was received).
    Closed,
}

/// Implemented by every error type of the crate.
pub trait Error: fmt::Debug + fmt::Display {
    /// The category of this error.
    fn kind(&self) -> ErrorKind;
}

/// Where in the segment a bad value was found.
///
/// `channel` is the index in the channel table when the word belongs to a
/// channel; `word` names the field as the layout documentation does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Corruption {
    /// Index of the channel the word belongs to, if any.
    pub channel: Option<u8>,
    /// The field, named as in the layout table (`"offset"`, `"head"`, ...).
    pub word: &'static str,
}

impl Corruption {
    pub(crate) const fn header(word: &'static str) -> Self {
        Self { channel: None, word }
    }

    pub(crate) const fn channel(index: u8, word: &'static str) -> Self {
        Self { channel: Some(index), word }
    }
}

impl fmt::Display for Corruption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.channel {
            Some(i) => write!(
                f,
                "corrupted segment: channel {i} word `{}` holds an impossible value; recreate the segment",
                self.word
            ),
            None => write!(
                f,
                "corrupted segment: header word `{}` holds an impossible value; recreate the segment",
                self.word
            ),
        }
    }
}

/// Declaring a segment layout failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum LayoutError {
    /// More channels than the table holds.
    TooManyChannels {
        /// The table size, [`crate::layout::MAX_CHANNELS`].
        max: usize,
    },
    /// A channel name is empty, longer than 31 bytes or contains NUL.
    BadName {
        /// The offending name's length in bytes.
        len: usize,
    },
    /// Two channels share a name.
    DuplicateName,
    /// A capacity is zero, not a power of two where one is required, or
    /// outside the allowed range.
    BadCapacity {
        /// The value given.
        given: u32,
        /// The smallest allowed value.
        min: u32,
        /// The largest allowed value.
        max: u32,
    },
    /// The segment would exceed the format's 4 GiB limit.
    TooLarge,
}

impl fmt::Display for LayoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooManyChannels { max } => write!(f, "too many channels: a segment holds at most {max}"),
            Self::BadName { len } => write!(f, "bad channel name of {len} bytes: use 1 to 31 bytes without NUL"),
            Self::DuplicateName => write!(f, "two channels have the same name: names must be unique in a segment"),
            Self::BadCapacity { given, min, max } => write!(
                f,
                "capacity {given} is out of range: use a value from {min} to {max} (a power of two for queues)"
            ),
            Self::TooLarge => write!(f, "segment would exceed 4 GiB: use fewer or smaller channels"),
        }
    }
}

impl Error for LayoutError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::InvalidArgument
    }
}

/// Initializing a region as a new segment failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum CreateError {
    /// The region is smaller than the layout needs.
    RegionTooSmall {
        /// Bytes the layout needs.
        needed: usize,
        /// Bytes the region has.
        actual: usize,
    },
}

impl fmt::Display for CreateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::RegionTooSmall { needed, actual } => {
                write!(f, "region of {actual} bytes is too small: the layout needs {needed}")
            }
        }
    }
}

impl Error for CreateError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::InvalidArgument
    }
}

/// Opening an existing segment failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum OpenError {
    /// The region is smaller than a header.
    TooSmall {
        /// Bytes the region has.
        len: usize,
    },
    /// The magic number is wrong: this is not a segment of this library.
    BadMagic,
    /// Written by a machine of the other byte order.
    EndianMismatch,
    /// Written with an incompatible format version.
    VersionMismatch {
        /// The major version found.
        major: u16,
        /// The minor version found.
        minor: u16,
    },
    /// The creator did not publish READY within the budget (it may still be
    /// initializing, or it died while doing so).
    NotReady,
    /// The creator marked the segment as unusable.
    Poisoned,
    /// The region's size differs from the size recorded by the creator.
    SizeMismatch {
        /// Size recorded in the header.
        recorded: u64,
        /// Size of the region as mapped.
        actual: u64,
    },
    /// The segment's geometry differs from the layout the caller expected.
    LayoutMismatch {
        /// Layout hash the caller expected.
        expected: u64,
        /// Layout hash found in the segment.
        found: u64,
    },
    /// A word holds a value the format cannot produce.
    Corrupted(Corruption),
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooSmall { len } => write!(f, "region of {len} bytes is smaller than a segment header: not a segment of this library"),
            Self::BadMagic => write!(f, "bad magic number: not a segment of this library"),
            Self::EndianMismatch => write!(f, "segment was written by a machine of the other byte order"),
            Self::VersionMismatch { major, minor } => write!(
                f,
                "segment format {major}.{minor} is not supported (this build reads {}.x): use matching library versions",
                crate::layout::FORMAT_MAJOR
            ),
            Self::NotReady => write!(f, "segment not ready within the timeout: its creator is still initializing it or died doing so"),
            Self::Poisoned => write!(f, "segment is poisoned by its creator: remove and recreate it"),
            Self::SizeMismatch { recorded, actual } => write!(f, "segment records {recorded} bytes but {actual} are mapped: it was truncated or resized"),
            Self::LayoutMismatch { expected, found } => write!(f, "segment layout {found:#018x} differs from the expected {expected:#018x}: peers were built with different channel declarations"),
            Self::Corrupted(c) => c.fmt(f),
        }
    }
}

impl Error for OpenError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::NotReady => ErrorKind::Timeout,
            Self::Corrupted(_) | Self::SizeMismatch { .. } | Self::Poisoned => ErrorKind::Corrupted,
            _ => ErrorKind::Incompatible,
        }
    }
}

/// Looking up a channel or claiming a role on it failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ClaimError {
    /// No channel of that name.
    NotFound,
    /// A channel of that name exists but is of another kind.
    WrongKind,
    /// The role is held by a live peer with this id.
    Busy {
        /// The id recorded by the holder (a PID on Linux).
        holder: u32,
    },
    /// The channel's control words are corrupted.
    Corrupted(Corruption),
}

impl fmt::Display for ClaimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotFound => write!(f, "no channel of that name in the segment"),
            Self::WrongKind => write!(f, "the channel of that name is of another kind"),
            Self::Busy { holder } => write!(f, "role already held by live peer {holder}: stop it first"),
            Self::Corrupted(c) => c.fmt(f),
        }
    }
}

impl Error for ClaimError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::NotFound | Self::WrongKind => ErrorKind::NotFound,
            Self::Busy { .. } => ErrorKind::Busy,
            Self::Corrupted(_) => ErrorKind::Corrupted,
        }
    }
}

/// A semaphore operation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum SemaphoreError {
    /// The count did not become positive within the timeout.
    Timeout,
    /// `post` would push the count past [`crate::semaphore::MAX_COUNT`].
    Overflow,
    /// The count word holds a value above [`crate::semaphore::MAX_COUNT`].
    Corrupted,
    /// The operating system refused the call (named semaphores only).
    Os(i32),
}

impl fmt::Display for SemaphoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Timeout => write!(f, "semaphore wait timed out"),
            Self::Overflow => write!(f, "semaphore count would overflow: the waiting side is not consuming posts"),
            Self::Corrupted => write!(f, "semaphore count word holds an impossible value"),
            Self::Os(e) => write!(f, "semaphore system call failed with errno {e}"),
        }
    }
}

impl Error for SemaphoreError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Timeout => ErrorKind::Timeout,
            Self::Overflow => ErrorKind::InvalidArgument,
            Self::Corrupted => ErrorKind::Corrupted,
            Self::Os(_) => ErrorKind::Incompatible,
        }
    }
}

/// Sending on a queue failed. The message was not sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum SendError {
    /// The message is longer than the queue's maximum.
    TooLarge {
        /// Length asked for.
        len: usize,
        /// The queue's maximum message length.
        max: usize,
    },
    /// No room right now (non-blocking calls only).
    Full,
    /// No room within the timeout.
    Timeout,
    /// No room within the timeout, and the consumer is gone.
    PeerDied,
    /// The consumer closed the queue (dropped its `Consumer`).
    Closed,
    /// The ring's control words are corrupted.
    Corrupted(Corruption),
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLarge { len, max } => write!(
                f,
                "message of {len} bytes exceeds the queue maximum of {max}: split it or declare a larger queue"
            ),
            Self::Full => write!(f, "queue is full"),
            Self::Timeout => write!(f, "queue stayed full for the whole timeout"),
            Self::PeerDied => write!(f, "queue is full and its consumer has died"),
            Self::Closed => write!(f, "the consumer closed the queue: nobody will read this message"),
            Self::Corrupted(c) => c.fmt(f),
        }
    }
}

impl Error for SendError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::TooLarge { .. } => ErrorKind::InvalidArgument,
            Self::Full => ErrorKind::WouldBlock,
            Self::Timeout => ErrorKind::Timeout,
            Self::PeerDied => ErrorKind::PeerDied,
            Self::Closed => ErrorKind::Closed,
            Self::Corrupted(_) => ErrorKind::Corrupted,
        }
    }
}

/// Receiving from a queue failed. Nothing was consumed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum RecvError {
    /// Nothing to read right now (non-blocking calls only).
    Empty,
    /// Nothing arrived within the timeout.
    Timeout,
    /// Nothing arrived within the timeout, and the producer is gone.
    PeerDied,
    /// The destination buffer is shorter than the message (copying receive);
    /// the message stays in the queue.
    BufferTooSmall {
        /// Length of the waiting message.
        needed: usize,
    },
    /// The producer closed the queue (dropped its `Producer`) and every
    /// message it sent before has been received.
    Closed,
    /// The ring's control words or a frame header are corrupted.
    Corrupted(Corruption),
}

impl fmt::Display for RecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => write!(f, "queue is empty"),
            Self::Timeout => write!(f, "no message within the timeout"),
            Self::PeerDied => write!(f, "queue is empty and its producer has died"),
            Self::BufferTooSmall { needed } => write!(f, "buffer too small: the next message has {needed} bytes"),
            Self::Closed => write!(f, "the producer closed the queue and every message has been received"),
            Self::Corrupted(c) => c.fmt(f),
        }
    }
}

impl Error for RecvError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Empty => ErrorKind::WouldBlock,
            Self::Timeout => ErrorKind::Timeout,
            Self::PeerDied => ErrorKind::PeerDied,
            Self::BufferTooSmall { .. } => ErrorKind::InvalidArgument,
            Self::Closed => ErrorKind::Closed,
            Self::Corrupted(_) => ErrorKind::Corrupted,
        }
    }
}

/// A mailbox call (client side) failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum CallError {
    /// The request (or the response buffer) does not fit a slot.
    TooLarge {
        /// Length asked for.
        len: usize,
        /// The slot capacity.
        max: usize,
    },
    /// No free slot right now (non-blocking calls only).
    NoFreeSlot,
    /// No slot, or no response, within the timeout. The request was
    /// withdrawn: a late response is discarded, never delivered to a later
    /// call.
    Timeout,
    /// The server is gone (found when a wait ran out).
    PeerDied,
    /// The server dropped the request without responding, or died while
    /// holding it and a new server took over.
    Dropped,
    /// The server closed the mailbox (dropped its `Server`) before serving
    /// this request; a new server may open it again.
    Closed,
    /// The slot's control words are corrupted.
    Corrupted(Corruption),
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLarge { len, max } => write!(f, "{len} bytes do not fit a mailbox slot of {max} bytes"),
            Self::NoFreeSlot => write!(f, "all mailbox slots are in use"),
            Self::Timeout => write!(f, "no response within the timeout; the request was withdrawn"),
            Self::PeerDied => write!(f, "the mailbox server has died; restart it to serve again"),
            Self::Dropped => write!(f, "the server dropped the request without responding"),
            Self::Closed => write!(f, "the mailbox server closed before serving the request; start a server and retry"),
            Self::Corrupted(c) => c.fmt(f),
        }
    }
}

impl Error for CallError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::TooLarge { .. } => ErrorKind::InvalidArgument,
            Self::NoFreeSlot => ErrorKind::WouldBlock,
            Self::Timeout => ErrorKind::Timeout,
            Self::PeerDied => ErrorKind::PeerDied,
            Self::Dropped => ErrorKind::PeerDied,
            Self::Closed => ErrorKind::Closed,
            Self::Corrupted(_) => ErrorKind::Corrupted,
        }
    }
}

/// Serving a mailbox request failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ServeError {
    /// No request right now (non-blocking calls only).
    Empty,
    /// No request within the timeout.
    Timeout,
    /// The response length exceeds the slot capacity.
    TooLarge {
        /// Length given.
        len: usize,
        /// The slot capacity.
        max: usize,
    },
    /// The client gave up (timed out or died) before the response was
    /// posted; the slot was freed.
    Abandoned,
    /// Another server took over this mailbox.
    Replaced,
    /// A slot's control words are corrupted.
    Corrupted(Corruption),
}

impl fmt::Display for ServeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => write!(f, "no pending request"),
            Self::Timeout => write!(f, "no request within the timeout"),
            Self::TooLarge { len, max } => write!(f, "response of {len} bytes exceeds the slot capacity of {max}"),
            Self::Abandoned => write!(f, "the client gave up on the request before the response was posted"),
            Self::Replaced => write!(f, "another server took over the mailbox"),
            Self::Corrupted(c) => c.fmt(f),
        }
    }
}

impl Error for ServeError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Empty => ErrorKind::WouldBlock,
            Self::Timeout => ErrorKind::Timeout,
            Self::TooLarge { .. } => ErrorKind::InvalidArgument,
            Self::Abandoned => ErrorKind::PeerDied,
            Self::Replaced => ErrorKind::Busy,
            Self::Corrupted(_) => ErrorKind::Corrupted,
        }
    }
}
