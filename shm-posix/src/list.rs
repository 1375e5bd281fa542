//! Finding and describing the segments in `/dev/shm` (what `shmctl` shows).

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use shm_core::format::header::state;
use shm_core::ChannelParams;

use crate::futex::pid_alive;
use crate::identity::{creator_liveness, Liveness};
use crate::object::{Access, Object, ObjectId};
use crate::segment::{OpenError, Segment, View};
use shm_core::format::queue::CLOSED;

pub use crate::object::SHM_DIR;

/// One channel of a segment, with its counters.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "cli", derive(serde::Serialize))]
pub struct ChannelReport {
    /// Channel name.
    pub name: String,
    /// `mailbox`, `queue`, `semaphore`, `broadcast` or `direct`.
    pub kind: &'static str,
    /// Offset of its area.
    pub offset: u32,
    /// Bytes of its area.
    pub size: u32,
    /// The channel's shape, as declared.
    pub geometry: Geometry,
    /// Counters by name (`sent`, `received`, `served`, `slots_free`, ...).
    pub counters: BTreeMap<String, u64>,
    /// Every role of the channel, held or not.
    pub peers: Vec<PeerReport>,
}

/// A channel's shape (in JSON, an object with the fields of its kind).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "cli", derive(serde::Serialize), serde(untagged))]
pub enum Geometry {
    /// A queue: its ring and its largest message, in bytes.
    Queue {
        /// Ring bytes.
        capacity: u32,
        /// The largest message.
        max_message: u32,
    },
    /// A mailbox: its slots and their payload bytes.
    Mailbox {
        /// Slots.
        slots: u32,
        /// Payload bytes per slot.
        slot_size: u32,
    },
    /// A semaphore: its initial count.
    Semaphore {
        /// The count it was created with.
        initial_count: u32,
    },
    /// A broadcast channel: its ring, largest message, subscriber slots and
    /// policy (`block` or `overwrite`).
    Broadcast {
        /// Ring bytes.
        capacity: u32,
        /// The largest message.
        max_message: u32,
        /// Subscriber slots declared.
        subscribers: u32,
        /// `block` or `overwrite`.
        policy: &'static str,
    },
}

impl fmt::Display for Geometry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Queue { capacity, max_message } => write!(f, "capacity={capacity} max_message={max_message}"),
            Self::Mailbox { slots, slot_size } => write!(f, "slots={slots} slot_size={slot_size}"),
            Self::Semaphore { initial_count } => write!(f, "initial_count={initial_count}"),
            Self::Broadcast { capacity, max_message, subscribers, policy } => {
                write!(f, "capacity={capacity} max_message={max_message} subscribers={subscribers} policy={policy}")
            }
        }
    }
}

/// One role of a channel (`producer`, `consumer`, `server`) and who holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "cli", derive(serde::Serialize))]
pub struct PeerReport {
    /// The role.
    pub role: &'static str,
    /// The PID recorded in the role word; `None` (JSON `null`) when nobody
    /// holds the role.
    pub pid: Option<u32>,
    /// Whether that process is alive; `None` when nobody holds the role.
    pub alive: Option<bool>,
}

/// A segment of this library, as read from its header and channel table.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "cli", derive(serde::Serialize))]
pub struct SegmentReport {
    /// Canonical name.
    pub name: String,
    /// Total size in bytes.
    pub size: u32,
    /// Format version `major.minor`.
    pub version: String,
    /// `ready`, `poisoned`, ...
    pub state: &'static str,
    /// Generation counter.
    pub generation: u32,
    /// Creator PID.
    pub creator: u32,
    /// Whether the creator is alive (same PID and start time).
    pub creator_alive: bool,
    /// `alive`, `dead`, or `unknown` (no creator recorded, or a creator in
    /// another PID namespace, which cannot be judged from here).
    pub creator_liveness: &'static str,
    /// Layout hash.
    pub layout_hash: String,
    /// The object read (device and inode).
    pub object: ObjectId,
    /// The channels.
    pub channels: Vec<ChannelReport>,
}

/// `text` with every character that is not plainly printable escaped as
/// [`char::escape_debug`] does (control characters, line and paragraph
/// separators, bidirectional and other format characters, `\u{..}`), and
/// backslashes doubled, so that two names never print the same; quotes
/// stay as they are. Names in /dev/shm are anyone's choice, and a tool
/// printing one must not let it forge or reorder lines of its output (a
/// name can still contain spaces, which a reader of a table must allow
/// for).
///
/// ```
/// use shm_posix::list::printable;
/// assert_eq!(printable("/a\nremoved /b"), "/a\\nremoved /b");
/// assert_eq!(printable("/a\u{2028}b\u{202e}c"), "/a\\u{2028}b\\u{202e}c");
/// assert_eq!(printable("/x\\u{202e}y"), "/x\\\\u{202e}y");
/// assert_eq!(printable("/it's \"ok\" é"), "/it's \"ok\" é");
/// ```
pub fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\'' | '"' => out.push(c),
            _ => out.extend(c.escape_debug()),
        }
    }
    out
}

/// [`printable`], with spaces escaped too (`\u{20}`), for a cell of a
/// table whose columns are separated by spaces: `/a b` would read as a
/// name `/a` followed by a column `b`.
///
/// ```
/// use shm_posix::list::printable_cell;
/// assert_eq!(printable_cell("/a b"), "/a\\u{20}b");
/// assert_eq!(printable_cell("/a\tb"), "/a\\tb");
/// ```
pub fn printable_cell(text: &str) -> String {
    printable(text).replace(' ', "\\u{20}")
}

/// JSON text with every character that [`printable`] would escape and that
/// JSON leaves raw (bidirectional and other format characters, line and
/// paragraph separators, unassigned or private-use code points) written as
/// `\uXXXX` escapes: the same strings when decoded, but a terminal or log
/// that shows the JSON cannot be made to reorder or hide part of it by a
/// name. Such characters only occur inside JSON strings, where the escape
/// means the character itself.
///
/// ```
/// use shm_posix::list::printable_json;
/// let json = "{\"name\": \"/a\u{202e}b\"}";
/// assert_eq!(printable_json(json), "{\"name\": \"/a\\u202eb\"}");
/// assert_eq!(printable_json("\"/\u{1F600}\""), "\"/\u{1F600}\""); // printable: as is
/// ```
pub fn printable_json(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        // ASCII is left to the serializer (it escapes controls, quotes and
        // backslashes itself); above it, whatever `escape_debug` would not
        // print as itself.
        if c.is_ascii() || c.escape_debug().eq([c]) {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out
}

pub(crate) fn state_name(s: u32) -> &'static str {
    match s {
        state::EMPTY => "empty",
        state::INITIALIZING => "initializing",
        state::READY => "ready",
        state::POISONED => "poisoned",
        _ => "corrupt",
    }
}

/// Reads a copy of segment `name` (`pread`, without waiting; nothing is
/// mapped) and describes it.
/// Needs only read permission; writes nothing.
pub fn inspect(name: &str) -> Result<SegmentReport, OpenError> {
    let view = View::open(name)?;
    let name = crate::name::canonical_name(name).map_err(OpenError::Name)?;
    Ok(describe(&name, view.core(), view.id()))
}

/// Describes an open segment.
pub fn report(seg: &Segment) -> SegmentReport {
    describe(seg.name(), seg, seg.id())
}

/// Which role holders [`live_peers`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Users {
    /// Every role: servers, producers, consumers, publishers, and the
    /// clients and subscribers that depend on them.
    All,
    /// The roles that serve a channel (server, producer, consumer,
    /// publisher), not the clients and subscribers of one, nor a queue end
    /// whose other end's holder is dead.
    Serving,
}

/// The live processes recorded in `seg`'s role words, as (role, PID).
pub(crate) fn live_peers(seg: &shm_core::Segment<'_>, users: Users) -> Vec<(String, u32)> {
    describe("", seg, ObjectId { device: 0, inode: 0 })
        .channels
        .into_iter()
        .flat_map(|c| {
            let channel = c.name;
            // A queue end whose other end died serves nobody: it gets
            // `PeerDied` and reopens, as a client of a dead server does. It
            // held a restarted creator back for as long as it lived
            // (review, 2026-12-03). A free or closed other end may be
            // claimed again: the end still serves.
            let broken = c.kind == "queue" && c.peers.iter().any(|p| p.alive == Some(false));
            c.peers
                .into_iter()
                .filter(move |p| users == Users::All || !(broken || matches!(p.role, "client" | "subscriber")))
                .filter(|p| p.alive == Some(true))
                .filter_map(move |p| Some((format!("{channel} {}", p.role), p.pid?)))
        })
        .collect()
}

fn describe(name: &str, seg: &shm_core::Segment<'_>, object: ObjectId) -> SegmentReport {
    let info = seg.info();
    let peer = |role: &'static str, id: u32| {
        // 0: nobody; the closed mark: nobody either (its last holder closed).
        let pid = Some(id).filter(|&id| id != 0 && id != shm_core::format::mailbox::SERVER_CLOSED);
        PeerReport { role, pid, alive: pid.map(pid_alive) }
    };
    // Every slot whose `client` word names a user: a direct mailbox's
    // connected clients, a mailbox's clients in the middle of a call. They
    // use the segment as much as its server does. A slot its client left
    // with a request posted (ABANDONED) has none: that client is gone from
    // it, whatever else it does.
    let slot_clients = |view: &shm_core::mailbox::MailboxView<'_>| {
        (0..view.slot_count())
            .filter_map(|i| view.slot_user(i))
            .filter(|&id| id != 0)
            .map(|id| peer("client", id))
            .collect::<Vec<_>>()
    };
    let named = |pairs: &[(&str, u64)]| pairs.iter().map(|&(k, v)| (k.to_owned(), v)).collect::<BTreeMap<_, _>>();
    let channels = seg
        .channels()
        .iter()
        .map(|c| {
            let name = String::from_utf8_lossy(c.name()).into_owned();
            let (kind, geometry, counters, peers) = match c.params() {
                ChannelParams::Queue { capacity } => {
                    let s = seg.queue_view(&name).expect("validated channel").control().snapshot();
                    (
                        "queue",
                        Geometry::Queue { capacity, max_message: shm_core::queue::max_message(capacity) },
                        named(&[
                            ("sent", s.sent as u64),
                            ("received", s.received as u64),
                            ("bytes_queued", (s.head & !CLOSED).wrapping_sub(s.tail & !CLOSED) as u64),
                            ("producer_closed", u64::from(s.head & CLOSED != 0)),
                            ("consumer_closed", u64::from(s.tail & CLOSED != 0)),
                        ]),
                        vec![peer("producer", s.producer), peer("consumer", s.consumer)],
                    )
                }
                ChannelParams::Mailbox { slots, slot_size } => {
                    let view = seg.mailbox_view(&name).expect("validated channel");
                    let s = view.stats();
                    let states =
                        ["free", "claimed", "request", "serving", "response", "abandoned", "failed", "unknown"];
                    let mut counters =
                        named(&[("served", s.served as u64), ("server_sleeping", s.server_sleeping as u64)]);
                    counters.extend(states.iter().zip(s.slots_by_state).map(|(n, v)| (format!("slots_{n}"), v as u64)));
                    let mut peers = vec![peer("server", s.server)];
                    peers.extend(slot_clients(&view));
                    ("mailbox", Geometry::Mailbox { slots, slot_size }, counters, peers)
                }
                ChannelParams::Direct { slots, slot_size } => {
                    let view = seg.direct_view(&name).expect("validated channel");
                    let s = view.stats();
                    let states = ["free", "idle", "request", "response", "failed", "abandoned", "unknown", "unknown2"];
                    let mut counters = named(&[("server_sleeping", s.server_sleeping as u64)]);
                    let mut by_state = s.slots_by_state;
                    // Values past ABANDONED all count as unknown.
                    by_state[6] += by_state[7];
                    counters.extend(states.iter().zip(by_state).take(7).map(|(n, v)| (format!("slots_{n}"), v as u64)));
                    let mut peers = vec![peer("server", s.server)];
                    peers.extend(slot_clients(&view));
                    ("direct", Geometry::Mailbox { slots, slot_size }, counters, peers)
                }
                ChannelParams::Broadcast { capacity, subscribers, policy } => {
                    let view = seg.broadcast_view(&name).expect("validated channel");
                    let s = view.snapshot();
                    let policy = match policy {
                        shm_core::broadcast::Policy::Block => "block",
                        shm_core::broadcast::Policy::Overwrite => "overwrite",
                    };
                    let mut peers = vec![peer("publisher", s.publisher)];
                    let (mut received, mut missed) = (0u64, 0u64);
                    for sub in (0..view.slots()).filter_map(|i| view.subscriber_stats(i)) {
                        if sub.owner != 0 {
                            peers.push(peer("subscriber", sub.owner));
                            received += sub.received as u64;
                            missed += sub.missed as u64;
                        }
                    }
                    (
                        "broadcast",
                        Geometry::Broadcast {
                            capacity,
                            max_message: shm_core::broadcast::max_message(capacity),
                            subscribers,
                            policy,
                        },
                        named(&[
                            ("published", s.published as u64),
                            ("subscribers", s.subscribers as u64),
                            ("received", received),
                            ("missed", missed),
                            ("publisher_closed", u64::from(s.head & CLOSED != 0)),
                        ]),
                        peers,
                    )
                }
                ChannelParams::Semaphore { initial_count } => {
                    let w = seg.semaphore_words(&name).expect("validated channel");
                    (
                        "semaphore",
                        Geometry::Semaphore { initial_count },
                        named(&[("count", w.count() as u64), ("waiters", w.waiters() as u64)]),
                        vec![],
                    )
                }
            };
            ChannelReport { name, kind, offset: c.offset, size: c.size, geometry, counters, peers }
        })
        .collect();
    let liveness = shm_core::peek(seg.region()).map_or(Liveness::Unknown, |p| creator_liveness(&p));
    SegmentReport {
        name: name.to_owned(),
        size: info.size,
        version: format!("{}.{}", info.version.0, info.version.1),
        state: state_name(info.state),
        generation: info.generation,
        creator: info.creator,
        creator_alive: liveness == Liveness::Alive,
        creator_liveness: match liveness {
            Liveness::Alive => "alive",
            Liveness::Dead => "dead",
            Liveness::Unknown => "unknown",
        },
        layout_hash: format!("{:#018x}", info.layout_hash),
        object,
        channels,
    }
}

/// What [`list`] found under one name.
#[derive(Debug)]
pub enum Listed {
    /// A valid segment.
    Segment(Box<SegmentReport>),
    /// One of ours (it carries the magic) that does not open: unfinished
    /// initialization, corruption, truncation.
    Broken {
        /// Canonical name.
        name: String,
        /// Why it does not open.
        error: OpenError,
        /// The creator PID if one is recorded, and whether it is alive.
        creator: Option<(u32, bool)>,
        /// The object read (device and inode).
        object: ObjectId,
    },
}

/// Lists the segments of this library in [`SHM_DIR`], reading each
/// read-only. Files that are not ours (no magic: other programs' objects,
/// named semaphores), symlinks and non-regular files are skipped.
pub fn list() -> std::io::Result<Vec<Listed>> {
    list_in(Path::new(SHM_DIR))
}

fn list_in(dir: &Path) -> std::io::Result<Vec<Listed>> {
    let mut names: Vec<String> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| !n.starts_with("sem."))
        .collect();
    names.sort();
    let mut out = Vec::new();
    for bare in names {
        let name = format!("/{bare}");
        // Open once, then decide from this object only (never the name).
        let Ok(object) = Object::open(&name, Access::Read) else { continue };
        let Some(peek) = object.peek().filter(|p| p.ours) else { continue };
        match View::of(&name, &object) {
            Ok(view) => out.push(Listed::Segment(Box::new(describe(&name, view.core(), object.id())))),
            Err(error) => {
                let alive = crate::identity::creator_liveness(&peek) == crate::identity::Liveness::Alive;
                let creator = Some(peek.creator).filter(|&c| c != 0).map(|c| (c, alive));
                out.push(Listed::Broken { name, error, creator, object: object.id() });
            }
        }
    }
    Ok(out)
}
