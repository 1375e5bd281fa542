//! Finding and describing the segments in `/dev/shm` (what `shmctl` shows).

use std::path::Path;

use shm_core::format::header::state;
use shm_core::ChannelParams;

use crate::futex::pid_alive;
use crate::object::{Access, Object, ObjectId};
use crate::segment::{OpenError, Segment, View};

pub use crate::object::SHM_DIR;

/// One channel of a segment, with its counters.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "cli", derive(serde::Serialize))]
pub struct ChannelReport {
    /// Channel name.
    pub name: String,
    /// `mailbox`, `queue` or `semaphore`.
    pub kind: &'static str,
    /// Offset of its area.
    pub offset: u32,
    /// Bytes of its area.
    pub size: u32,
    /// Geometry: `slots=4 slot_size=256`, `capacity=4096 max_message=2040`,
    /// `initial=1`.
    pub geometry: String,
    /// Counters and roles, as `key=value` pairs.
    pub counters: Vec<(String, u64)>,
    /// The ids (PIDs) recorded in role words, with whether each is alive.
    pub peers: Vec<(String, u32, bool)>,
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
    /// Whether the creator is alive.
    pub creator_alive: bool,
    /// Layout hash.
    pub layout_hash: String,
    /// The object read (device and inode).
    pub object: ObjectId,
    /// The channels.
    pub channels: Vec<ChannelReport>,
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

/// The live processes recorded in `seg`'s role words, as (role, PID).
pub(crate) fn live_peers(seg: &shm_core::Segment<'_>) -> Vec<(String, u32)> {
    describe("", seg, ObjectId { device: 0, inode: 0 })
        .channels
        .into_iter()
        .flat_map(|c| {
            let channel = c.name;
            c.peers.into_iter().filter(|p| p.2).map(move |(role, pid, _)| (format!("{channel} {role}"), pid))
        })
        .collect()
}

fn describe(name: &str, seg: &shm_core::Segment<'_>, object: ObjectId) -> SegmentReport {
    let info = seg.info();
    let peer = |role: &str, id: u32| (role.to_owned(), id, id != 0 && pid_alive(id));
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
                        format!("capacity={capacity} max_message={}", shm_core::queue::max_message(capacity)),
                        vec![
                            ("sent".into(), s.sent as u64),
                            ("received".into(), s.received as u64),
                            ("bytes_queued".into(), s.head.wrapping_sub(s.tail) as u64),
                        ],
                        vec![peer("producer", s.producer), peer("consumer", s.consumer)],
                    )
                }
                ChannelParams::Mailbox { slots, slot_size } => {
                    let s = seg.mailbox_view(&name).expect("validated channel").stats();
                    let states =
                        ["free", "claimed", "request", "serving", "response", "abandoned", "failed", "unknown"];
                    let mut counters =
                        vec![("served".into(), s.served as u64), ("server_sleeping".into(), s.server_sleeping as u64)];
                    counters.extend(states.iter().zip(s.slots_by_state).map(|(n, v)| (format!("slots_{n}"), v as u64)));
                    (
                        "mailbox",
                        format!("slots={slots} slot_size={slot_size}"),
                        counters,
                        vec![peer("server", s.server)],
                    )
                }
                ChannelParams::Semaphore { initial_count } => {
                    let w = seg.semaphore_words(&name).expect("validated channel");
                    (
                        "semaphore",
                        format!("initial={initial_count}"),
                        vec![("count".into(), w.count() as u64), ("waiters".into(), w.waiters() as u64)],
                        vec![],
                    )
                }
            };
            ChannelReport { name, kind, offset: c.offset, size: c.size, geometry, counters, peers }
        })
        .collect();
    SegmentReport {
        name: name.to_owned(),
        size: info.size,
        version: format!("{}.{}", info.version.0, info.version.1),
        state: state_name(info.state),
        generation: info.generation,
        creator: info.creator,
        creator_alive: shm_core::peek(seg.region())
            .is_some_and(|p| crate::identity::creator_liveness(&p) == crate::identity::Liveness::Alive),
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
