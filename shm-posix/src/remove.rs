//! Removing a segment's name: only what is positively ours, decided under
//! the object's lock and re-checked right before the unlink.
//!
//! ```
//! use shm_core::Layout;
//! use shm_posix::{remove_with, RemoveError, RemoveOptions, Segment};
//!
//! let name = format!("/doc-remove-{}", std::process::id());
//! let seg = Segment::create(&name, &Layout::new().queue("q", 256).unwrap()).unwrap();
//! // Its creator (this process) lives: refused unless forced.
//! let refused = remove_with(&name, &RemoveOptions::default()).unwrap_err();
//! assert!(matches!(refused, RemoveError::Alive { .. }));
//! let removed = remove_with(&name, &RemoveOptions { force: true, ..Default::default() }).unwrap();
//! assert_eq!(removed.object, seg.id());
//! drop(seg); // the name is gone: the drop leaves whatever holds it now alone
//! ```
//!
//! # Design
//!
//! A name is removed only when the object under it carries this library's
//! magic (a foreign file never does by chance), is not a symlink and is a
//! regular file. Without `force`, its creator must be dead and no live
//! process may hold a role recorded in it (a queue end, a mailbox server, a
//! client holding a slot, a broadcast end): a persisted segment whose
//! creator exited while others still use it is in use, not stale. (A
//! mailbox client between calls leaves no trace in the segment and so
//! cannot keep it; removing the name never disturbs processes that have it
//! mapped, only later openers.) A segment that does not open in this build
//! is removed without `force` only if nobody can open it (never ready, or
//! poisoned): its roles cannot be read. Every check is made
//! while holding the object's lock, right before unlinking, and the unlink
//! happens only if the name still refers to the object checked (see
//! `object.rs` for the window that remains).

use std::fmt;
use std::io;

use rustix::io::Errno;

use crate::list::Users;
use crate::name::{canonical_name, NameError};
use crate::object::{Access, Object, ObjectError, ObjectId, Refusal};
use crate::segment::{unlink_word_semaphores, View};
use shm_core::format::header::state;

/// How [`remove_with`] decides.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RemoveOptions {
    /// Remove it even if its creator or a process holding a role in it is
    /// alive (default: refuse with [`RemoveError::Alive`] or
    /// [`RemoveError::InUse`]).
    pub force: bool,
    /// Remove it only if the name still refers to this object (as listed
    /// earlier), else [`RemoveError::Replaced`].
    pub object: Option<ObjectId>,
}

/// What [`remove_with`] removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removed {
    /// Canonical name.
    pub name: String,
    /// The object the name referred to.
    pub object: ObjectId,
    /// Its recorded creator (0: none recorded).
    pub creator: u32,
    /// Whether that creator was alive.
    pub creator_alive: bool,
    /// Its state word (`ready`, `initializing`, ...).
    pub state: &'static str,
}

impl fmt::Display for Removed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let alive = if self.creator_alive { "alive" } else { "dead" };
        write!(
            f,
            "removed {} (state {}, creator pid {} {alive}, inode {})",
            self.name, self.state, self.creator, self.object.inode
        )
    }
}

/// Removing a segment failed; nothing was removed.
#[derive(Debug)]
#[non_exhaustive]
pub enum RemoveError {
    /// The name was refused.
    Name(NameError),
    /// Nothing has that name.
    NotFound {
        /// The canonical name.
        name: String,
    },
    /// The object under the name is a symlink, not a regular file, ...
    Refused {
        /// The canonical name.
        name: String,
        /// Why.
        reason: Refusal,
    },
    /// The object does not carry this library's magic.
    NotOurs {
        /// The canonical name.
        name: String,
    },
    /// Its creator is alive (or none is recorded) and `force` was not given.
    Alive {
        /// The canonical name.
        name: String,
        /// The creator's PID (0: none recorded).
        creator: u32,
    },
    /// Its creator cannot be judged from here (it runs in another PID
    /// namespace, or `/proc` does not tell) and `force` was not given.
    Unjudged {
        /// The canonical name.
        name: String,
        /// The creator's PID, in its own namespace.
        creator: u32,
    },
    /// A live process holds a role in it and `force` was not given.
    InUse {
        /// The canonical name.
        name: String,
        /// The user's PID.
        pid: u32,
        /// Its role (`channel producer`, ...).
        role: String,
    },
    /// Its creator is dead, but it does not open in this build (a newer
    /// format, a channel kind this build does not know, damage such as
    /// truncation), so whether a live process still holds a role in it
    /// cannot be read; `force` was not given. Of the segments that do not
    /// open, only one nobody can open either (it never became ready, or its
    /// creator poisoned it) is removed without `force`.
    Unreadable {
        /// The canonical name.
        name: String,
        /// The dead creator's PID.
        creator: u32,
        /// Why it does not open here.
        reason: String,
    },
    /// The name now refers to another object than the one to remove.
    Replaced {
        /// The canonical name.
        name: String,
    },
    /// A system call failed.
    Io {
        /// Which call.
        op: &'static str,
        /// The canonical name.
        name: String,
        /// The error.
        source: io::Error,
    },
}

impl fmt::Display for RemoveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Name(e) => e.fmt(f),
            Self::NotFound { name } => {
                write!(f, "no segment named {name}: nothing to remove (`shmctl list` shows the segments)")
            }
            Self::Refused { name, reason } => {
                write!(f, "/dev/shm{name} {reason}: not removed; remove it by hand if you know whose it is")
            }
            Self::NotOurs { name } => write!(
                f,
                "/dev/shm{name} is not a segment of this library (no magic): not removed; remove it by hand if you know whose it is"
            ),
            Self::Alive { name, creator: 0 } => {
                write!(f, "segment {name} records no creator, so it is not known to be stale: not removed; pass --force (`RemoveOptions::force` in code) to remove it anyway")
            }
            Self::Alive { name, creator } => {
                write!(f, "segment {name}'s creator (pid {creator}) is alive: not removed; stop it first, or pass --force (`RemoveOptions::force` in code)")
            }
            Self::Unjudged { name, creator } => write!(
                f,
                "segment {name}'s creator (pid {creator} in its own namespace) cannot be judged from here: it runs in \
                 another PID namespace, or /proc does not tell; not removed; remove it from the creator's namespace, \
                 or pass --force (`RemoveOptions::force` in code) once you know it is gone"
            ),
            Self::InUse { name, pid, role } => {
                write!(f, "segment {name} is in use by pid {pid} ({role}): not removed; stop that process first, or pass --force (`RemoveOptions::force` in code)")
            }
            Self::Unreadable { name, creator, reason } => write!(
                f,
                "segment {name}'s creator (pid {creator}) is dead, but the segment does not open in this build \
                 ({reason}), so whether a live process still uses it cannot be read: not removed; if it is of a \
                 newer format, a build of that format can judge it; otherwise pass --force (`RemoveOptions::force` in code) once you \
                 know nobody uses it"
            ),
            Self::Replaced { name } => write!(f, "{name} was re-created meanwhile: the new segment is kept"),
            Self::Io { op, name, source } => write!(f, "cannot remove segment {name}: {op} failed: {source}"),
        }
    }
}

/// `source()` is the error inside: the [`NameError`] or the [`io::Error`].
impl std::error::Error for RemoveError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io { source, .. } => Some(source),
            Self::Name(e) => Some(e),
            _ => None,
        }
    }
}

/// Removes segment `name` (`shm_unlink`) and the named semaphores a
/// [`crate::NamedSemaphoreWait`] may have made for it, whether or not its
/// creator lives (`force`; see [`remove_with`] for the careful form).
/// Processes that have it mapped keep their mapping. Refuses what is not a
/// segment of this library (no magic, a symlink, not a regular file).
pub fn remove(name: &str) -> Result<Removed, RemoveError> {
    remove_with(name, &RemoveOptions { force: true, object: None })
}

/// Removes segment `name` as `options` allow (see the module docs).
pub fn remove_with(name: &str, options: &RemoveOptions) -> Result<Removed, RemoveError> {
    remove_unless_used(name, options, Users::All)
}

/// [`remove_with`], where only the live holders of roles `users` count
/// as using the segment (unless forced). A creator replacing its own stale
/// segment asks for [`Users::Serving`]: the clients and subscribers of a
/// dead run keep their mapping, get `PeerDied` and open the new segment,
/// while a sweep (`shmctl rm --stale`) keeps whatever anyone still uses.
pub(crate) fn remove_unless_used(name: &str, options: &RemoveOptions, users: Users) -> Result<Removed, RemoveError> {
    let name = canonical_name(name).map_err(RemoveError::Name)?;
    let object = match Object::open(&name, Access::Read) {
        Ok(object) => object,
        Err(ObjectError::Os(Errno::NOENT)) => return Err(RemoveError::NotFound { name }),
        Err(ObjectError::Os(e)) => return Err(RemoveError::Io { op: "open", name, source: e.into() }),
        Err(ObjectError::Refused(reason)) => return Err(RemoveError::Refused { name, reason }),
    };
    if options.object.is_some_and(|id| id != object.id()) {
        return Err(RemoveError::Replaced { name });
    }
    let lock = object.lock().map_err(|source| RemoveError::Io { op: "lock", name: name.clone(), source })?;
    // From here on, under the lock: the checks are the ones the unlink acts on.
    let Some(peek) = object.peek().filter(|p| p.ours) else {
        return Err(RemoveError::NotOurs { name });
    };
    // Alive unless positively dead: a creator that records no PID, or whose
    // PID namespace is not ours, cannot be judged from here.
    let liveness = crate::identity::creator_liveness(&peek);
    let creator_alive = liveness != crate::identity::Liveness::Dead;
    if !options.force && peek.creator != 0 && liveness == crate::identity::Liveness::Unknown {
        return Err(RemoveError::Unjudged { name, creator: peek.creator });
    }
    if !options.force && (peek.creator == 0 || creator_alive) {
        return Err(RemoveError::Alive { name, creator: peek.creator });
    }
    // A segment that does not validate has no roles we could read, and no
    // semaphores we could name. Unless forced, it goes only if nobody can
    // open it: it never became ready (its creator died initializing it), or
    // its creator poisoned it (opens refuse it; processes that still map it
    // keep their mapping, as with any removal). A ready one that does not
    // open here (a newer format or kind, or damage) may have live users
    // this build cannot see.
    let view = match View::of(&name, &object) {
        Ok(view) => Some(view),
        Err(e) if !options.force && !matches!(peek.state, state::EMPTY | state::INITIALIZING | state::POISONED) => {
            return Err(RemoveError::Unreadable { name, creator: peek.creator, reason: e.to_string() });
        }
        Err(_) => None,
    };
    if let (false, Some(view)) = (options.force, &view) {
        if let Some((role, pid)) = crate::list::live_peers(view.core(), users).into_iter().next() {
            return Err(RemoveError::InUse { name, pid, role });
        }
    }
    // The semaphores before the name (see `LockGuard::unlink_if_at`): once
    // the name is gone, a new segment may take it and make semaphores of the
    // same names. The removal mark too, for claims racing this removal (see
    // `LockGuard::mark_removed`).
    let before_unlink = || {
        if let Some(view) = &view {
            unlink_word_semaphores(&name, view.core());
            lock.mark_removed(true);
        }
    };
    match lock.unlink_if_at(&name, before_unlink) {
        Ok(true) => {}
        Ok(false) => return Err(RemoveError::Replaced { name }),
        Err(source) => {
            // Still named: it was not removed.
            lock.mark_removed(false);
            return Err(RemoveError::Io { op: "shm_unlink", name, source });
        }
    }
    let state = crate::list::state_name(peek.state);
    Ok(Removed { name, object: object.id(), creator: peek.creator, creator_alive, state })
}
