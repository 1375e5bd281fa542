//! Errors: one enum per operation, each mapping to a shared [`ErrorKind`]
//! (the embedded-hal pattern), so generic code can branch on the kind while
//! callers still see exactly what went wrong.
//!
//! Every error implements [`core::error::Error`], so `?` works in a
//! `fn main() -> Result<(), Box<dyn std::error::Error>>` or an anyhow
//! `main`. `Display` messages are complete on their own: they say which
//! channel (where the error knows it), what went wrong and what to do.

use core::fmt;

use crate::format::table::ChannelKind;
use crate::format::MAX_NAME;

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
    /// A broadcast subscriber fell a ring behind and messages were
    /// overwritten before it read them (overwrite policy).
    Lagged,
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Timeout => "timed out",
            Self::WouldBlock => "operation would block",
            Self::PeerDied => "peer died",
            Self::Corrupted => "corrupted segment",
            Self::Incompatible => "incompatible segment",
            Self::InvalidArgument => "invalid argument",
            Self::Busy => "role held by another peer",
            Self::NotFound => "no such channel",
            Self::Closed => "closed by the other side",
            Self::Lagged => "messages overwritten before they were read",
        })
    }
}

impl core::error::Error for ErrorKind {}

/// The [`ErrorKind`] of an error: implemented by every error type of the
/// shm crates.
///
/// This is embedded-hal's `Error::kind()` pattern (`embedded_hal::digital::Error`),
/// under a name of its own: the trait was called `Error` before, which
/// shadowed [`core::error::Error`] (that every error here also implements)
/// wherever both were imported. Generic code asks for both at once:
///
/// ```
/// use shm_core::{ErrorKind, HasErrorKind};
///
/// fn retry_later<E: HasErrorKind>(e: &E) -> bool {
///     matches!(e.kind(), ErrorKind::Timeout | ErrorKind::WouldBlock)
/// }
/// assert!(retry_later(&shm_core::SendError::Full));
/// ```
pub trait HasErrorKind: core::error::Error {
    /// The category of this error.
    fn kind(&self) -> ErrorKind;
}

impl HasErrorKind for ErrorKind {
    fn kind(&self) -> ErrorKind {
        *self
    }
}

impl HasErrorKind for core::convert::Infallible {
    fn kind(&self) -> ErrorKind {
        match *self {}
    }
}

/// A channel's name, held inline (no allocation) so that an error can say
/// which channel it is about. Empty when the error was made through a raw
/// view, which does not know the name.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct ChannelName {
    bytes: [u8; MAX_NAME],
    len: u8,
}

impl ChannelName {
    /// `name`, cut at [`MAX_NAME`] bytes (on a character boundary): longer
    /// names match no channel anyway.
    pub fn new(name: &str) -> Self {
        let mut len = name.len().min(MAX_NAME);
        while !name.is_char_boundary(len) {
            len -= 1;
        }
        let mut bytes = [0; MAX_NAME];
        bytes[..len].copy_from_slice(&name.as_bytes()[..len]);
        Self { bytes, len: len as u8 }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        // `new` copied whole characters of a `str`.
        core::str::from_utf8(&self.bytes[..self.len as usize]).unwrap_or_default()
    }

    /// Whether no name is known.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl fmt::Debug for ChannelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for ChannelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for ChannelName {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "{=str}", self.as_str())
    }
}

/// `queue `jobs``, or `the queue` when the name is not known.
struct Channel<'a>(&'static str, &'a ChannelName);

impl fmt::Display for Channel<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.1.is_empty() {
            true => write!(f, "the {}", self.0),
            false => write!(f, "{} `{}`", self.0, self.1),
        }
    }
}

fn kind_name(kind: ChannelKind) -> &'static str {
    match kind {
        ChannelKind::Mailbox => "mailbox",
        ChannelKind::Queue => "queue",
        ChannelKind::Semaphore => "semaphore",
        ChannelKind::Broadcast => "broadcast channel",
        ChannelKind::Direct => "direct mailbox",
    }
}

/// A role on a channel: what [`ClaimError::Busy`] found taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Role {
    /// The writing end of a queue (one per queue).
    Producer,
    /// The reading end of a queue (one per queue).
    Consumer,
    /// The answering end of a mailbox (one per mailbox; clients are many).
    Server,
    /// The writing end of a broadcast channel (one per channel).
    Publisher,
    /// A reading end of a broadcast channel (as many as it declares).
    Subscriber,
    /// A connected client of a direct mailbox (one per slot).
    Client,
}

impl Role {
    /// The kind of channel the role belongs to.
    pub fn channel_kind(self) -> ChannelKind {
        match self {
            Self::Producer | Self::Consumer => ChannelKind::Queue,
            Self::Server => ChannelKind::Mailbox,
            Self::Publisher | Self::Subscriber => ChannelKind::Broadcast,
            Self::Client => ChannelKind::Direct,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Producer => "producer",
            Self::Consumer => "consumer",
            Self::Server => "server",
            Self::Publisher => "publisher",
            Self::Subscriber => "subscriber",
            Self::Client => "client",
        })
    }
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
            Some(i) => write!(f, "corrupted segment: word `{}` of channel {i} holds an impossible value", self.word)?,
            None => write!(f, "corrupted segment: header word `{}` holds an impossible value", self.word)?,
        }
        // A peer of another build, a buggy or hostile one, or a stray write:
        // nothing this side can repair in place.
        write!(f, "; stop its users, remove the segment and create it again")
    }
}

/// Declaring a segment layout failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum LayoutError {
    /// More channels than the table holds.
    TooManyChannels {
        /// The table size, [`crate::format::MAX_CHANNELS`].
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
                "{given} is out of range for this count or capacity: use a value from {min} to {max} (a ring's capacity: a power of two)"
            ),
            Self::TooLarge => write!(f, "segment would exceed 4 GiB: use fewer or smaller channels"),
        }
    }
}

impl core::error::Error for LayoutError {}

impl HasErrorKind for LayoutError {
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
                write!(f, "region of {actual} bytes is too small: the layout needs {needed}; give it a larger region")
            }
        }
    }
}

impl core::error::Error for CreateError {}

impl HasErrorKind for CreateError {
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
    /// The segment's sides access its control words under a lock (no
    /// compare-and-swap: shm-core's `critical-section` feature) and this
    /// side does not, or the other way round. Their read-modify-writes
    /// would not be atomic against each other.
    AtomicsMismatch {
        /// Whether the segment's creator took the lock.
        segment_locked: bool,
    },
    /// A channel is of a kind this build does not know, in a segment of a
    /// newer minor version of the format (a direct mailbox, format 2.2, seen
    /// by a 2.1 build, say).
    UnknownKind {
        /// The channel's index in the table.
        channel: u8,
        /// Its `kind` word.
        kind: u32,
        /// The segment's format minor version.
        minor: u16,
    },
    /// A word holds a value the format cannot produce.
    Corrupted(Corruption),
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooSmall { len } => write!(f, "region of {len} bytes is smaller than a segment header: not a segment of this library"),
            Self::BadMagic => write!(f, "bad magic number: not a segment of this library"),
            Self::EndianMismatch => {
                write!(f, "segment was written by a machine of the other byte order: open it from one of the same order")
            }
            Self::VersionMismatch { major, minor } => write!(
                f,
                "segment format {major}.{minor} is not supported (this build reads {}.x): use matching library versions",
                crate::format::FORMAT_MAJOR
            ),
            Self::NotReady => write!(
                f,
                "segment not ready within the timeout: its creator is still initializing it (open with a longer timeout) or died doing so (remove the segment)"
            ),
            Self::Poisoned => write!(f, "segment is poisoned by its creator: remove and recreate it"),
            Self::SizeMismatch { recorded, actual } => write!(f, "segment records {recorded} bytes but {actual} are mapped: it was truncated or resized; remove it and create it again"),
            Self::LayoutMismatch { expected, found } => write!(f, "segment layout {found:#018x} differs from the expected {expected:#018x}: peers were built with different channel declarations; build both from the same layout"),
            Self::AtomicsMismatch { segment_locked: true } => write!(f, "the segment's sides access control words under a lock (no compare-and-swap) and this side uses native atomics: build every side the same way (shm-core's critical-section feature on a target without compare-and-swap)"),
            Self::AtomicsMismatch { segment_locked: false } => write!(f, "the segment's sides use native atomics and this side accesses control words under a lock: build every side the same way"),
            Self::UnknownKind { channel, kind, minor } => write!(
                f,
                "channel {channel} is of kind {kind}, which this build (format {}.{}) does not know; the segment is format {}.{minor}: use a build of the library that reads {2}.{minor} on this side",
                crate::format::FORMAT_MAJOR,
                crate::format::FORMAT_MINOR,
                crate::format::FORMAT_MAJOR,
            ),
            Self::Corrupted(c) => c.fmt(f),
        }
    }
}

impl core::error::Error for OpenError {}

impl HasErrorKind for OpenError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::NotReady => ErrorKind::Timeout,
            Self::Corrupted(_) | Self::SizeMismatch { .. } | Self::Poisoned => ErrorKind::Corrupted,
            _ => ErrorKind::Incompatible,
        }
    }
}

/// The wait strategy reported that the peer reset, or attached again,
/// since this side linked with it ([`Wait::check`](crate::Wait::check)):
/// whatever the channel saw (a timeout, a dead peer) is explained by that.
/// Drop the channel ends and attach again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PeerReset {
    /// The peer, as the adapter numbers it (a core number on a
    /// microcontroller).
    pub peer: u32,
    /// The peer's session when this side linked with it.
    pub linked: u32,
    /// The peer's session now (equal to `linked` when only the segment was
    /// re-created).
    pub now: u32,
}

impl fmt::Display for PeerReset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "peer {} reset or re-attached (session {} is now {}): drop the channel ends and the link, and attach again",
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

/// `From<PeerReset>` and `peer_reset()` for the channel errors that carry
/// it.
macro_rules! peer_reset_from {
    ($($error:ident),*) => {$(
        impl From<PeerReset> for $error {
            fn from(reset: PeerReset) -> Self {
                Self::PeerReset(reset)
            }
        }

        impl $error {
            /// The peer's reset, if that is what this error reports.
            pub fn peer_reset(&self) -> Option<PeerReset> {
                match self {
                    Self::PeerReset(reset) => Some(*reset),
                    _ => None,
                }
            }
        }
    )*};
}

peer_reset_from!(SendError, RecvError, CallError, ServeError, ClaimError);

/// The channel of an error about no channel in particular.
static NO_CHANNEL: ChannelName = ChannelName { bytes: [0; MAX_NAME], len: 0 };

/// Looking up a channel or claiming a role on it failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ClaimError {
    /// No channel of that name.
    NotFound {
        /// The name asked for.
        channel: ChannelName,
    },
    /// A channel of that name exists but is of another kind.
    WrongKind {
        /// The channel.
        channel: ChannelName,
        /// The kind asked for.
        expected: ChannelKind,
        /// The kind it is.
        found: ChannelKind,
    },
    /// The role is held by a live peer with this id: a queue has one
    /// producer and one consumer, a mailbox one server.
    Busy {
        /// The channel (empty when claimed through a raw view).
        channel: ChannelName,
        /// The role asked for.
        role: Role,
        /// The id recorded by the holder (a PID on Linux, a core on an MCU).
        holder: u32,
    },
    /// The channel's control words are corrupted.
    Corrupted {
        /// The channel (empty when claimed through a raw view).
        channel: ChannelName,
        /// Where.
        at: Corruption,
    },
    /// The peer reset or re-attached (reported by the wait strategy).
    PeerReset(PeerReset),
    /// The segment was removed (its name was unlinked, or now names another
    /// segment) while the role was being claimed: nothing was claimed.
    /// Reported by adapters that can tell (shm-posix); open the segment
    /// again and claim there.
    Removed {
        /// The channel.
        channel: ChannelName,
    },
}

impl ClaimError {
    pub(crate) fn busy(role: Role, holder: u32) -> Self {
        Self::Busy { channel: ChannelName::default(), role, holder }
    }

    pub(crate) fn corrupted(at: Corruption) -> Self {
        Self::Corrupted { channel: ChannelName::default(), at }
    }

    /// The same error, naming channel `name` (errors made by a role claim
    /// through a view do not know it).
    pub(crate) fn in_channel(mut self, name: &str) -> Self {
        if let Self::Busy { channel, .. } | Self::Corrupted { channel, .. } = &mut self {
            *channel = ChannelName::new(name);
        }
        self
    }

    /// The channel the error is about (empty when not known).
    pub fn channel(&self) -> &ChannelName {
        match self {
            Self::NotFound { channel }
            | Self::WrongKind { channel, .. }
            | Self::Busy { channel, .. }
            | Self::Corrupted { channel, .. }
            | Self::Removed { channel } => channel,
            Self::PeerReset(_) => &NO_CHANNEL,
        }
    }
}

impl fmt::Display for ClaimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotFound { channel } => {
                write!(f, "no channel named `{channel}` in the segment: use a name the segment's layout declares")
            }
            Self::WrongKind { channel, expected, found } => write!(
                f,
                "channel `{channel}` is a {}, not a {}: use the {0} calls for it, or the name of a {1}",
                kind_name(*found),
                kind_name(*expected)
            ),
            Self::Busy { channel, role, holder } => {
                let on = Channel(kind_name(role.channel_kind()), channel);
                if *role == Role::Client {
                    return write!(
                        f,
                        "{on} has no free slot: each is held by a connected client (such as {holder}); \
                         declare more slots in its layout (up to 64), drop a client, or connect with a timeout"
                    );
                }
                if *role == Role::Subscriber {
                    return write!(
                        f,
                        "{on} has no free subscriber slot: each is held by a live peer (such as {holder}); \
                         declare more subscribers in its layout (up to 64), or stop a subscriber first"
                    );
                }
                let per = match role {
                    Role::Server => "a mailbox has one server",
                    Role::Producer => "a queue has one producer by design",
                    Role::Publisher => "a broadcast channel has one publisher by design",
                    _ => "a queue has one consumer by design",
                };
                write!(
                    f,
                    "{on} already has a {role}, live peer {holder}, and {per}: stop that {role} first, \
                     or declare another channel for this one"
                )
            }
            Self::Corrupted { channel, at } => {
                if !channel.is_empty() {
                    write!(f, "channel `{channel}`: ")?;
                }
                at.fmt(f)
            }
            Self::PeerReset(e) => e.fmt(f),
            Self::Removed { channel } => write!(
                f,
                "channel `{channel}`: its segment was removed (a restarted creator replaced it, its creator \
                 unlinked it, or it was removed by name) while this side claimed a role in it, so nothing was claimed; open the \
                 segment again and claim there"
            ),
        }
    }
}

impl core::error::Error for ClaimError {}

impl HasErrorKind for ClaimError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::NotFound { .. } | Self::WrongKind { .. } => ErrorKind::NotFound,
            Self::Busy { .. } => ErrorKind::Busy,
            Self::Corrupted { .. } => ErrorKind::Corrupted,
            Self::PeerReset(_) => ErrorKind::PeerDied,
            Self::Removed { .. } => ErrorKind::Closed,
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
    /// `post` would push the count past [`crate::format::semaphore::MAX_COUNT`].
    Overflow,
    /// The count word holds a value above [`crate::format::semaphore::MAX_COUNT`].
    Corrupted,
}

impl fmt::Display for SemaphoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Timeout => {
                write!(f, "semaphore wait timed out: nothing posted it in time; wait again or check the posting side")
            }
            Self::Overflow => write!(f, "semaphore count would overflow: the waiting side is not consuming posts"),
            Self::Corrupted => {
                write!(f, "semaphore count word holds an impossible value: remove the segment and create it again")
            }
        }
    }
}

impl core::error::Error for SemaphoreError {}

impl HasErrorKind for SemaphoreError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Timeout => ErrorKind::Timeout,
            Self::Overflow => ErrorKind::InvalidArgument,
            Self::Corrupted => ErrorKind::Corrupted,
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
    /// The peer reset or re-attached (reported by the wait strategy).
    PeerReset(PeerReset),
    /// The ring's control words are corrupted.
    Corrupted(Corruption),
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLarge { len, max } => write!(
                f,
                "message of {len} bytes exceeds the channel's maximum of {max}: split it, or declare a larger ring"
            ),
            Self::Full => write!(
                f,
                "the ring is full (the consumer, or a broadcast's slowest subscriber, has not read enough): try again later, or send with a timeout to wait for room"
            ),
            Self::Timeout => write!(
                f,
                "the ring stayed full for the whole timeout: the consumer (or a broadcast's slowest subscriber) is not keeping up; send again, or declare a larger ring"
            ),
            Self::PeerDied => write!(
                f,
                "queue is full and its consumer has died: restart the consumer (it resumes at the first unread message)"
            ),
            Self::Closed => write!(
                f,
                "the consumer closed the queue: nobody reads this message; start a consumer (it resumes where the last one stopped)"
            ),
            Self::PeerReset(e) => e.fmt(f),
            Self::Corrupted(c) => c.fmt(f),
        }
    }
}

impl core::error::Error for SendError {}

impl HasErrorKind for SendError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::TooLarge { .. } => ErrorKind::InvalidArgument,
            Self::Full => ErrorKind::WouldBlock,
            Self::Timeout => ErrorKind::Timeout,
            Self::PeerDied => ErrorKind::PeerDied,
            Self::Closed => ErrorKind::Closed,
            Self::PeerReset(_) => ErrorKind::PeerDied,
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
    /// The peer reset or re-attached (reported by the wait strategy).
    PeerReset(PeerReset),
    /// The ring's control words or a frame header are corrupted.
    Corrupted(Corruption),
    /// A broadcast subscriber fell a ring behind: the publisher (overwrite
    /// policy) wrote over `missed` messages it had not read. It now stands
    /// at the oldest message still in the ring; receive again to read it.
    /// Under the block policy this happens only when a peer broke the
    /// protocol (the segment's words were written by someone else).
    Lagged {
        /// Messages lost to this subscriber.
        missed: u64,
    },
    /// A broadcast subscriber no longer holds its slot: the slot's owner
    /// word names someone else or nobody. The publisher lets go of a
    /// subscriber it judged dead, and a joiner may then take the slot; or a
    /// peer wrote the word. The publisher no longer waits for this
    /// subscriber, which stops publishing its position and reports this at
    /// every call: drop it and join again.
    SlotLost,
}

impl fmt::Display for RecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => write!(f, "nothing to read yet: try again later, or receive with a timeout to wait for a message"),
            Self::Timeout => write!(f, "no message within the timeout: receive again, or check that the producer runs"),
            Self::PeerDied => write!(f, "nothing to read and the producer (or publisher) has died: restart it"),
            Self::BufferTooSmall { needed } => write!(
                f,
                "buffer too small: the next message has {needed} bytes; receive it into a larger buffer (it stays queued)"
            ),
            Self::Closed => write!(
                f,
                "the producer (or publisher) closed the channel and every message it sent has been received: the stream has ended"
            ),
            Self::PeerReset(e) => e.fmt(f),
            Self::Corrupted(c) => c.fmt(f),
            Self::Lagged { missed } => write!(
                f,
                "this subscriber fell a ring behind and {missed} messages were overwritten before it read them \
                 (overwrite policy; under the block policy, a peer broke the protocol); it resumes at the oldest \
                 message still in the ring: receive again, and read faster or declare a larger ring if it must \
                 not lose messages"
            ),
            Self::SlotLost => write!(
                f,
                "this subscriber lost its slot: the publisher let it go as dead, or another process wrote the \
                 slot's owner word; it no longer holds messages for it: drop this subscriber and join again"
            ),
        }
    }
}

impl core::error::Error for RecvError {}

impl HasErrorKind for RecvError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Empty => ErrorKind::WouldBlock,
            Self::Timeout => ErrorKind::Timeout,
            Self::PeerDied => ErrorKind::PeerDied,
            Self::BufferTooSmall { .. } => ErrorKind::InvalidArgument,
            Self::Closed => ErrorKind::Closed,
            Self::PeerReset(_) => ErrorKind::PeerDied,
            Self::Corrupted(_) => ErrorKind::Corrupted,
            Self::Lagged { .. } => ErrorKind::Lagged,
            Self::SlotLost => ErrorKind::Busy,
        }
    }
}

/// A mailbox call (client side) failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum CallError {
    /// The request does not fit a slot.
    TooLarge {
        /// Length asked for.
        len: usize,
        /// The slot capacity.
        max: usize,
    },
    /// No free slot right now (non-blocking calls only).
    NoFreeSlot,
    /// No slot, or no response, within the timeout. A request the server
    /// had not taken yet was withdrawn; one it had taken may still run. Its
    /// late response is discarded, never delivered to a later call.
    Timeout,
    /// The server is gone (found when a wait ran out).
    PeerDied,
    /// The server dropped the request without responding, or died while
    /// holding it and a new server took over.
    Dropped,
    /// The server closed the mailbox (dropped its `Server`) before serving
    /// this request; a new server may open it again.
    Closed,
    /// A [direct mailbox](crate::direct) call got no response within its
    /// timeout, and its request is still with the server: a direct mailbox
    /// cannot take a request back, so it may still run. The client's next
    /// call waits for that late response first (and discards it).
    StillPosted,
    /// The peer reset or re-attached (reported by the wait strategy).
    PeerReset(PeerReset),
    /// The slot's control words are corrupted.
    Corrupted(Corruption),
    /// The response is longer than the buffer given for it. The request
    /// ran; its response was dropped. A buffer of
    /// [`slot_size`](crate::mailbox::Client::slot_size) bytes holds any.
    BufferTooSmall {
        /// The response's length.
        needed: usize,
    },
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLarge { len, max } => write!(
                f,
                "a request of {len} bytes does not fit a mailbox slot of {max} bytes: send less, or declare larger slots"
            ),
            Self::NoFreeSlot => write!(
                f,
                "all mailbox slots are in use: try again later, call with a timeout to wait for a slot, or declare more slots"
            ),
            Self::Timeout => write!(
                f,
                "no response within the timeout: the request was withdrawn if the server had not taken it, and may still run if it had (its late response is discarded); call again if running it twice is harmless, and check that the server runs and keeps up"
            ),
            Self::PeerDied => write!(
                f,
                "the mailbox server has died: once a server runs again, make a new client on its segment (shm-posix: open it again with `Segment::open_live`) and call again"
            ),
            Self::Dropped => write!(
                f,
                "the server dropped the request without responding (it failed, or died and was replaced): call again"
            ),
            Self::Closed => write!(f, "the mailbox server closed before serving the request; start a server and retry"),
            Self::StillPosted => write!(
                f,
                "no response within the timeout, and the request is still with the server (a direct mailbox cannot take it back, so it may still run): call again with a longer timeout (it waits for that response first), or check that the server runs and keeps up"
            ),
            Self::PeerReset(e) => e.fmt(f),
            Self::Corrupted(c) => c.fmt(f),
            Self::BufferTooSmall { needed } => write!(
                f,
                "the response has {needed} bytes, more than the response buffer holds: the request ran and its response was dropped; pass a buffer of the mailbox's slot size (`slot_size()`)"
            ),
        }
    }
}

impl core::error::Error for CallError {}

impl HasErrorKind for CallError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::TooLarge { .. } => ErrorKind::InvalidArgument,
            Self::NoFreeSlot => ErrorKind::WouldBlock,
            Self::Timeout | Self::StillPosted => ErrorKind::Timeout,
            Self::PeerDied => ErrorKind::PeerDied,
            Self::Dropped => ErrorKind::PeerDied,
            Self::Closed => ErrorKind::Closed,
            Self::PeerReset(_) => ErrorKind::PeerDied,
            Self::Corrupted(_) => ErrorKind::Corrupted,
            Self::BufferTooSmall { .. } => ErrorKind::InvalidArgument,
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
    /// The peer reset or re-attached (reported by the wait strategy).
    PeerReset(PeerReset),
    /// A slot's control words are corrupted.
    Corrupted(Corruption),
}

impl fmt::Display for ServeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => write!(f, "no pending request: try again later, or receive with a timeout to wait for one"),
            Self::Timeout => write!(f, "no request within the timeout: wait again (clients may call later)"),
            Self::TooLarge { len, max } => write!(
                f,
                "response of {len} bytes exceeds the slot capacity of {max}: respond with less, or declare larger slots"
            ),
            Self::Abandoned => {
                write!(f, "the client gave up on the request before the response was posted: serve the next request")
            }
            Self::Replaced => {
                write!(f, "another server took over the mailbox (a mailbox has one server): stop this one")
            }
            Self::PeerReset(e) => e.fmt(f),
            Self::Corrupted(c) => c.fmt(f),
        }
    }
}

impl core::error::Error for ServeError {}

impl HasErrorKind for ServeError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Empty => ErrorKind::WouldBlock,
            Self::Timeout => ErrorKind::Timeout,
            Self::TooLarge { .. } => ErrorKind::InvalidArgument,
            Self::Abandoned => ErrorKind::PeerDied,
            Self::Replaced => ErrorKind::Busy,
            Self::PeerReset(_) => ErrorKind::PeerDied,
            Self::Corrupted(_) => ErrorKind::Corrupted,
        }
    }
}

#[cfg(all(test, not(shm_loom)))]
mod tests;
