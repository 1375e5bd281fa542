//! Named segments: built unnamed (`O_TMPFILE` in `/dev/shm`, `ftruncate`,
//! `mmap(MAP_SHARED)`, initialized to READY), then named with `linkat`.

#![allow(unsafe_code)]

use std::fmt;
use std::io;
use std::ops::Deref;
use std::os::fd::OwnedFd;
use std::ptr::NonNull;
use std::time::{Duration, Instant};

use rustix::io::Errno;
use rustix::mm::{MapFlags, ProtFlags};
use shm_core::format::header;
use shm_core::{Layout, Region};

use crate::futex::FutexWait;
use crate::identity::{creator_liveness, Liveness};
use crate::name::{canonical_name, NameError};
use crate::named::{word_semaphore_name, NamedSemaphore};
use crate::object::{Access, Named, Object, ObjectError, ObjectId, Refusal};
use crate::remove::{remove_unless_used, RemoveError, RemoveOptions};

/// How [`Segment::create`] makes the segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CreateOptions {
    /// Permission bits of the shared-memory object (default 0600: this user
    /// only).
    pub mode: u32,
    /// Keep the name after the creating handle drops (default: unlink).
    pub persist: bool,
    /// If the name exists and its creator is dead (killed, or stopped by
    /// Ctrl-C without running `Drop`), remove it and create anew (default:
    /// true; false reports [`CreateError::Stale`] instead). A segment whose
    /// creator lives, or in which a live process still serves a channel (a
    /// server, producer, consumer or publisher), is never replaced; the
    /// clients and subscribers of the dead run, and a queue end whose other
    /// end's holder died, do not hold it (they keep
    /// their mapping, get `PeerDied`, and open the new segment with
    /// [`Segment::open_live`]). Of several creators racing for one stale
    /// name exactly one wins.
    pub replace_stale: bool,
}

impl Default for CreateOptions {
    fn default() -> Self {
        Self { mode: 0o600, persist: false, replace_stale: true }
    }
}

/// Creating a named segment failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum CreateError {
    /// The name was refused.
    Name(NameError),
    /// The name is in use by a live creator, or by something that is not a
    /// segment of this library.
    Exists {
        /// The canonical name.
        name: String,
        /// The live creator's PID, if it is one of ours.
        creator: Option<u32>,
    },
    /// The name is left over from a creator that died, but a live process
    /// still serves a channel in it (a server, producer, consumer or
    /// publisher), so it was not replaced.
    InUse {
        /// The canonical name.
        name: String,
        /// The live user's PID.
        pid: u32,
        /// Its role (`channel producer`, ...).
        role: String,
    },
    /// The name is left over from a creator that died, but the segment
    /// does not open in this build (a newer format or channel kind, or
    /// corruption), so whether a live process still uses it cannot be read;
    /// it was not replaced.
    Unreadable {
        /// The canonical name.
        name: String,
        /// The dead creator's PID.
        creator: u32,
        /// Why it does not open here.
        reason: String,
    },
    /// The name is left over from a creator that died.
    Stale {
        /// The canonical name.
        name: String,
        /// The dead creator's PID.
        creator: u32,
    },
    /// The layout does not fit the region (should not happen: the mapping
    /// is sized from the layout).
    Core {
        /// The canonical name.
        name: String,
        /// What shm-core refused.
        source: shm_core::CreateError,
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

impl fmt::Display for CreateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Name(e) => e.fmt(f),
            Self::Exists { name, creator: Some(pid) } => {
                write!(f, "segment {name} exists and its creator (pid {pid}) is alive: pick another name or stop it")
            }
            Self::Exists { name, creator: None } => write!(
                f,
                "/dev/shm{name} exists and is not a segment of this library (no magic), or is one whose creator cannot be judged from here (none recorded, or another PID namespace): pick another name, or remove it by hand if you know whose it is"
            ),
            Self::InUse { name, pid, role } => write!(
                f,
                "segment {name} is stale but pid {pid} ({role}) still uses it: open it instead (Segment::open) and take the roles its dead creator held, stop that process, or remove the name with `shmctl rm --force {name}`"
            ),
            Self::Unreadable { name, creator, reason } => write!(
                f,
                "segment {name} is left over from a dead creator (pid {creator}) but does not open in this build \
                 ({reason}), so whether a live process still uses it cannot be read: not replaced; pick another \
                 name, or remove it with `shmctl rm --force {name}` once you know nobody uses it"
            ),
            Self::Stale { name, creator } => write!(
                f,
                "segment {name} is stale (its creator, pid {creator}, is dead): remove it with `shmctl rm {name}` or create with `replace_stale`"
            ),
            Self::Core { name, source } => write!(f, "cannot create segment {name}: {source}"),
            Self::Io { op, name, source } => write!(f, "cannot create segment {name}: {op} failed: {source}"),
        }
    }
}

/// `source()` is the error inside: the [`NameError`], the
/// [`shm_core::CreateError`] or the [`io::Error`]. The message already
/// includes it, so that printing the error alone says everything.
impl std::error::Error for CreateError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Name(e) => Some(e),
            Self::Core { source, .. } => Some(source),
            Self::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Opening a named segment failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum OpenError {
    /// The name was refused.
    Name(NameError),
    /// No segment of that name appeared within the timeout.
    NotFound {
        /// The canonical name.
        name: String,
    },
    /// The object is smaller than a segment header: not a segment of this
    /// library (a segment is named only once complete).
    TooSmall {
        /// The canonical name.
        name: String,
        /// Its size in bytes.
        size: u64,
    },
    /// The object under the name was refused before mapping it: a symlink,
    /// not a regular file, or another user's.
    Refused {
        /// The canonical name.
        name: String,
        /// Why.
        reason: Refusal,
    },
    /// The segment was created in another PID namespace: every process id
    /// in it (creator, roles, slot owners) means something else here, so no
    /// peer's liveness could be judged. Run both sides in one PID namespace
    /// (e.g. a container's `--pid=host` or `--pid=container:NAME`).
    ForeignNamespace {
        /// The canonical name.
        name: String,
        /// The creator's PID namespace (inode, low 32 bits).
        segment: u32,
        /// Ours.
        ours: u32,
    },
    /// Only a segment whose creator has died was found under the name
    /// within the timeout ([`Segment::open_live`]).
    NoLiveCreator {
        /// The canonical name.
        name: String,
        /// The dead creator's PID.
        creator: u32,
    },
    /// The segment's contents were refused (see `source`).
    Core {
        /// The canonical name.
        name: String,
        /// What shm-core refused.
        source: shm_core::OpenError,
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

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Name(e) => e.fmt(f),
            Self::NotFound { name } => write!(
                f,
                "no segment named {name} appeared within the timeout: start its creator first, or open with a longer timeout"
            ),
            Self::TooSmall { name, size } => write!(
                f,
                "{name} has {size} bytes, less than a segment header: not a segment of this library (this library \
                 names a segment only once it is built); pick another name, or remove the file by hand if you \
                 know whose it is"
            ),
            Self::Refused { name, reason: reason @ Refusal::Owner { .. } } => write!(
                f,
                "/dev/shm{name} {reason}: not opened; open a segment another user shares with `Segment::open_owned_by`"
            ),
            Self::Refused { name, reason } => {
                write!(f, "/dev/shm{name} {reason}: not opened; remove it, or pick another name")
            }
            Self::ForeignNamespace { name, segment, ours } => write!(
                f,
                "{name} was created in PID namespace {segment}, this process runs in {ours}: peers could not \
                 tell each other's liveness; run both in one PID namespace"
            ),
            Self::NoLiveCreator { name, creator } => write!(
                f,
                "{name} is left over from creator {creator}, which has died, and no live one replaced it within the \
                 timeout: start its creator, or open with a longer timeout"
            ),
            Self::Core { name, source } => write!(f, "cannot open segment {name}: {source}"),
            Self::Io { op, name, source } => write!(f, "cannot open segment {name}: {op} failed: {source}"),
        }
    }
}

/// `source()` is the error inside: the [`NameError`], the
/// [`shm_core::OpenError`] or the [`io::Error`]. The message already
/// includes it, so that printing the error alone says everything.
impl std::error::Error for OpenError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Name(e) => Some(e),
            Self::Core { source, .. } => Some(source),
            Self::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Closing a segment left its name in place (see [`Segment::close`]).
#[derive(Debug)]
#[non_exhaustive]
pub enum CloseError {
    /// The name still refers to this segment: a system call failed, or the
    /// lock every removal takes could not be had.
    Io {
        /// The canonical name.
        name: String,
        /// Which call.
        op: &'static str,
        /// The error.
        source: io::Error,
    },
}

impl fmt::Display for CloseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io { name, op, source } => write!(
                f,
                "segment {name} was closed but its name was left in place ({op} failed: {source}): remove it with `shmctl rm {name}` once this process has exited"
            ),
        }
    }
}

impl std::error::Error for CloseError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io { source, .. } => Some(source),
        }
    }
}

/// A `MAP_SHARED` mapping, unmapped on drop.
#[derive(Debug)]
struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is plain shared memory; access goes through shm-core.
unsafe impl Send for Mapping {}
// SAFETY: as above.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// Maps `len` bytes of `fd`; read-only unless `access` says otherwise
    /// (a read-only mapping is only ever handed to code that loads).
    fn new(fd: &OwnedFd, len: usize, access: Access) -> io::Result<Self> {
        let prot = match access {
            Access::Read => ProtFlags::READ,
            Access::ReadWrite => ProtFlags::READ | ProtFlags::WRITE,
        };
        // SAFETY: a fresh mapping chosen by the kernel (null hint) of a file
        // we hold open; it aliases no Rust object.
        let ptr = unsafe { rustix::mm::mmap(std::ptr::null_mut(), len, prot, MapFlags::SHARED, fd, 0) }
            .map_err(io::Error::from)?;
        let ptr = NonNull::new(ptr.cast::<u8>()).ok_or_else(|| io::Error::other("mmap returned null"))?;
        Ok(Self { ptr, len })
    }

    /// `len` bytes of private anonymous memory, zeroed (pages untouched
    /// cost nothing).
    fn anonymous(len: usize) -> io::Result<Self> {
        let prot = ProtFlags::READ | ProtFlags::WRITE;
        // SAFETY: a fresh private mapping chosen by the kernel (null hint);
        // it aliases no Rust object.
        let ptr = unsafe {
            rustix::mm::mmap_anonymous(std::ptr::null_mut(), len, prot, MapFlags::PRIVATE | MapFlags::NORESERVE)
        }
        .map_err(io::Error::from)?;
        let ptr = NonNull::new(ptr.cast::<u8>()).ok_or_else(|| io::Error::other("mmap returned null"))?;
        Ok(Self { ptr, len })
    }

    /// Copies bytes `start..start + len` of `object` (clamped to the
    /// mapping) into the same range of the mapping with `pread`. A file
    /// shorter by now leaves the rest as it was.
    ///
    /// # Safety
    /// Nobody else may read or write the range meanwhile (a private
    /// mapping with no region over it alive).
    unsafe fn fill_from(&self, object: &Object, start: usize, len: usize) -> Result<(), Errno> {
        let end = start.saturating_add(len).min(self.len);
        let mut at = start;
        while at < end {
            // SAFETY: `at..end` lies inside the mapping; the caller promises
            // nothing else accesses it while this slice lives.
            let buf = unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr().add(at), end - at) };
            match rustix::io::pread(object.fd(), buf, at as u64) {
                Ok(0) => break,
                Ok(n) => at += n,
                Err(Errno::INTR) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// A region over the mapping.
    ///
    /// The `'static` lifetime is a promise kept by [`Segment`]: the region
    /// lives in the same struct as the mapping and is dropped before it.
    fn region(&self) -> Region<'static> {
        // SAFETY: the mapping is valid for `len` bytes until `Mapping` drops;
        // `Segment` drops its `shm_core::Segment` (which owns this region)
        // before its `Mapping` (field order) and lends it only by reference.
        // mmap returns page-aligned addresses, so 64-byte alignment holds.
        unsafe { Region::new(self.ptr, self.len) }.expect("mmap returns page-aligned memory")
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` are exactly what mmap returned; nothing
        // borrows the mapping any more (see `region`).
        let _ = unsafe { rustix::mm::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

/// A named shared-memory segment, mapped in this process.
///
/// Dereferences to [`shm_core::Segment`], which gives the channels. Claim
/// roles through this type's own methods ([`producer`](Self::producer),
/// [`server`](Self::server), ...), which also refuse a claim in a segment
/// this library removed meanwhile; the same methods reached through the
/// `shm_core::Segment` (an explicit `*segment`, a function taking `&shm_core::Segment`)
/// do not check.
///
/// ```
/// use std::time::Duration;
/// use shm_core::Layout;
/// use shm_posix::{FutexWait, Segment};
///
/// let name = format!("/doc-segment-{}", std::process::id());
/// let layout = Layout::new().queue("jobs", 4096).unwrap();
/// let owner = Segment::create(&name, &layout).unwrap();       // 0600, unlinked on drop
/// let peer = Segment::open(&name, Duration::from_secs(1)).unwrap();
///
/// let mut tx = owner.producer("jobs", FutexWait::new()).unwrap();
/// let mut rx = peer.consumer("jobs", FutexWait::new()).unwrap();
/// tx.send(b"job 1").unwrap();
/// let mut buf = [0u8; 64];
/// let n = rx.recv_timeout(&mut buf, Duration::from_secs(1)).unwrap();
/// assert_eq!(&buf[..n], b"job 1");
/// ```
#[derive(Debug)]
pub struct Segment {
    // Field order matters: `core` (which holds a region over the mapping)
    // drops before `map`.
    core: shm_core::Segment<'static>,
    map: Mapping,
    /// The object we created or opened: the only one our drop may unlink.
    object: Object,
    name: String,
    owner: bool,
    persist: bool,
    /// The name was removed (by [`Segment::unlink`]): nothing left to
    /// remove. Held across a removal, so that two threads unlinking one
    /// handle (whose removal lock, taken on the handle's own descriptor,
    /// does not exclude each other) remove it once: the second found the
    /// name already a new run's and removed that (review, 2026-12-03).
    unlinked: std::sync::Mutex<bool>,
}

impl Deref for Segment {
    type Target = shm_core::Segment<'static>;
    fn deref(&self) -> &Self::Target {
        &self.core
    }
}

impl Segment {
    /// Creates segment `name` for `layout` with the default options (mode
    /// 0600, unlinked on drop, a dead creator's segment replaced).
    pub fn create(name: &str, layout: &Layout) -> Result<Self, CreateError> {
        Self::create_with(name, layout, CreateOptions::default())
    }

    /// Creates segment `name` for `layout`.
    ///
    /// The segment is built where nobody can see it: an unnamed object in
    /// `/dev/shm` (`O_TMPFILE`), sized, reserved (`fallocate`), mapped and
    /// initialized up to READY; only then is it given the name, atomically
    /// (`linkat`, which fails if the name exists, as `O_CREAT|O_EXCL`
    /// does). A creator killed on the way leaves nothing behind, and no
    /// opener ever sees a half-built segment.
    ///
    /// With [`CreateOptions::replace_stale`], a name left by a dead creator
    /// is removed (under the object's lock, re-checked right before the
    /// unlink) and the new segment linked in its place; of several creators
    /// racing to replace one stale name exactly one succeeds, the others
    /// get [`CreateError::Exists`].
    pub fn create_with(name: &str, layout: &Layout, options: CreateOptions) -> Result<Self, CreateError> {
        let name = canonical_name(name).map_err(CreateError::Name)?;
        let mut replace = options.replace_stale;
        // Built once, when the name is first seen free; kept across rounds.
        let mut built: Option<Self> = None;
        // The name may be taken or freed between our look and our link:
        // look again, a bounded number of times.
        for _ in 0..4 {
            match holder(&name) {
                Holder::Gone => {
                    let mut seg = match built.take() {
                        Some(seg) => seg,
                        None => Self::build(name.clone(), layout, options)?,
                    };
                    match seg.object.publish(&name) {
                        Ok(()) => {
                            // Named now: ours to unlink on drop.
                            seg.owner = true;
                            return Ok(seg);
                        }
                        Err(Errno::EXIST) => built = Some(seg),
                        Err(e) => {
                            return Err(CreateError::Io { op: "linkat (naming the segment)", name, source: e.into() })
                        }
                    }
                }
                Holder::Dead { object, creator } if replace => {
                    #[cfg(not(feature = "log"))]
                    let _ = creator;
                    // Once: whatever happens, the next round reports what
                    // holds the name then.
                    replace = false;
                    replace_stale(&name, object)?;
                    #[cfg(feature = "log")]
                    log::warn!(target: "shm", "{name}: replaced the segment of dead creator {creator}");
                }
                Holder::Dead { creator, .. } => return Err(CreateError::Stale { name, creator }),
                Holder::Alive(pid) => return Err(CreateError::Exists { name, creator: Some(pid) }),
                Holder::Foreign => return Err(CreateError::Exists { name, creator: None }),
            }
        }
        Err(CreateError::Exists { name, creator: None })
    }

    /// Makes, sizes, maps and initializes an unnamed object for `name`: a
    /// complete segment, READY, that nobody else can open yet. Dropped
    /// unnamed, it vanishes.
    fn build(name: String, layout: &Layout, options: CreateOptions) -> Result<Self, CreateError> {
        let io = |op| {
            let name = &name;
            move |e: Errno| CreateError::Io { op, name: name.clone(), source: e.into() }
        };
        let object = Object::create_unnamed(options.mode).map_err(io("open /dev/shm (O_TMPFILE)"))?;
        let fd = object.fd();
        // umask may have cleared bits the caller asked for: set them exactly.
        rustix::fs::fchmod(fd, rustix::fs::Mode::from_raw_mode(options.mode)).map_err(io("fchmod"))?;
        rustix::fs::ftruncate(fd, layout.size() as u64).map_err(io("ftruncate"))?;
        // Reserve the pages now: a full /dev/shm is an error here (ENOSPC),
        // not a SIGBUS on first touch later.
        rustix::fs::fallocate(fd, rustix::fs::FallocateFlags::empty(), 0, layout.size() as u64)
            .map_err(io("fallocate (is /dev/shm full?)"))?;
        #[cfg(feature = "crash-points")]
        shm_core::crash::point("segment.sized");
        let map = Mapping::new(fd, layout.size(), Access::ReadWrite).map_err(|source| CreateError::Io {
            op: "mmap",
            name: name.clone(),
            source,
        })?;
        let session = session_id();
        let core = shm_core::Segment::create_as(map.region(), layout, &crate::identity::this_creator(session))
            .map_err(|source| CreateError::Core { name: name.clone(), source })?;
        // Not the owner until named (see `create_with`): a drop before that
        // has no name to remove.
        Ok(Self { core, map, object, name, owner: false, persist: options.persist, unlinked: Default::default() })
    }

    /// Opens segment `name`, waiting at most `timeout` for it to appear and
    /// for its creator to publish READY, then validating it.
    ///
    /// The object is opened without following a symlink and must be a
    /// regular file of this user or root ([`OpenError::Refused`]); see
    /// [`open_owned_by`](Self::open_owned_by) for another user's.
    pub fn open(name: &str, timeout: Duration) -> Result<Self, OpenError> {
        Self::open_accepting(name, timeout, None)
    }

    /// Opens segment `name` once a live creator has published it, waiting at
    /// most `timeout`: a segment whose creator died (a server stopped by
    /// Ctrl-C or killed, not yet restarted) is skipped, not opened, so a
    /// client never talks to a dead run. This is the reconnect path: after a
    /// call reports [`CallError::Closed`](shm_core::CallError::Closed) or
    /// [`CallError::PeerDied`](shm_core::CallError::PeerDied), open the
    /// segment again with `open_live` and make new endpoints.
    ///
    /// ```no_run
    /// use std::sync::Arc;
    /// use std::time::Duration;
    /// use shm_core::{ErrorKind, HasErrorKind};
    /// use shm_posix::{FutexWait, Segment};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let open = || -> Result<_, Box<dyn std::error::Error>> {
    ///     let segment = Arc::new(Segment::open_live("/my-app", Duration::from_secs(30))?);
    ///     Ok(Segment::owned_client(&segment, "rpc", FutexWait::new())?)
    /// };
    /// let mut client = open()?;
    /// let mut response = [0u8; 256];
    /// loop {
    ///     match client.call_timeout(b"hello", &mut response, Duration::from_secs(1)) {
    ///         Ok(n) => break println!("{:?}", &response[..n]),
    ///         // The server stopped (cleanly or not): wait for the next one.
    ///         Err(e) if matches!(e.kind(), ErrorKind::Closed | ErrorKind::PeerDied) => client = open()?,
    ///         Err(e) => return Err(e.into()),
    ///     }
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub fn open_live(name: &str, timeout: Duration) -> Result<Self, OpenError> {
        let start = Instant::now();
        loop {
            let left = timeout.saturating_sub(start.elapsed());
            let segment = Self::open(name, left)?;
            let stale = match shm_core::peek(segment.region()).map(|p| (p.creator, creator_liveness(&p))) {
                Some((creator, Liveness::Dead)) => creator,
                _ => return Ok(segment),
            };
            drop(segment);
            if start.elapsed() >= timeout {
                return Err(OpenError::NoLiveCreator {
                    name: canonical_name(name).map_err(OpenError::Name)?,
                    creator: stale,
                });
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// As [`open`](Self::open), and a segment of user `uid` is acceptable
    /// too: for a segment another user shares with this one (its group, by
    /// mode 0660). Its named semaphores may then belong to `uid` as well.
    pub fn open_owned_by(name: &str, timeout: Duration, uid: u32) -> Result<Self, OpenError> {
        Self::open_accepting(name, timeout, Some(uid))
    }

    fn open_accepting(name: &str, timeout: Duration, also: Option<u32>) -> Result<Self, OpenError> {
        let name = canonical_name(name).map_err(OpenError::Name)?;
        let start = Instant::now();
        let object = loop {
            match Object::open_accepting(&name, Access::ReadWrite, also) {
                Ok(object) => break object,
                Err(ObjectError::Os(Errno::NOENT)) if start.elapsed() < timeout => {
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(ObjectError::Os(Errno::NOENT)) => return Err(OpenError::NotFound { name }),
                Err(ObjectError::Os(e)) => return Err(OpenError::Io { op: "shm_open", name, source: e.into() }),
                Err(ObjectError::Refused(reason)) => return Err(OpenError::Refused { name, reason }),
            }
        };
        let (map, core) = map_object(&name, &object, start, timeout)?;
        Ok(Self { core, map, object, name, owner: false, persist: true, unlinked: Default::default() })
    }

    /// Checks that the segment was created for `layout`: the same channels,
    /// kinds and sizes, in the same order (the layout hash every segment
    /// records). Call it after opening, before taking a role, so that peers
    /// built with different declarations fail at once with a clear error,
    /// not later with a size or kind error on one channel.
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use shm_core::Layout;
    /// use shm_posix::Segment;
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let layout = Layout::new().mailbox("rpc", 4, 256)?;
    /// let segment = Segment::open_live("/my-app", Duration::from_secs(5))?;
    /// segment.expect_layout(&layout)?; // LayoutMismatch if the server declared another
    /// # Ok(())
    /// # }
    /// ```
    pub fn expect_layout(&self, layout: &Layout) -> Result<(), OpenError> {
        let (expected, found) = (layout.hash(), self.core.info().layout_hash);
        if expected == found {
            return Ok(());
        }
        Err(OpenError::Core {
            name: self.name.clone(),
            source: shm_core::OpenError::LayoutMismatch { expected, found },
        })
    }

    /// The canonical name (`/name`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether this handle created the segment.
    pub fn is_owner(&self) -> bool {
        self.owner
    }

    /// Keep the name after this handle drops (or not).
    pub fn set_persist(&mut self, persist: bool) {
        self.persist = persist;
    }

    /// Bytes mapped.
    pub fn mapped_len(&self) -> usize {
        self.map.len
    }

    /// Which object this handle maps (device and inode): the name may
    /// refer to another one by now.
    pub fn id(&self) -> ObjectId {
        self.object.id()
    }

    /// Permission bits of the object (as created, or as found when opened).
    pub fn mode(&self) -> u32 {
        self.object.mode()
    }

    /// The user owning the object (when created or opened).
    pub fn owner_uid(&self) -> u32 {
        self.object.uid()
    }
}

impl Segment {
    /// Unmaps the segment, as dropping it does, and says whether the name
    /// could be removed where dropping would have to stay silent.
    ///
    /// The creator (unless persisting) removes the name and the segment's
    /// word semaphores, but only if the name still refers to the object it
    /// created: after `shmctl rm --force` or a replacement the name belongs
    /// to someone else and is left alone (that is `Ok`). An error means the
    /// name was left in place: a system call failed, or the removal lock
    /// could not be had (a process holds a read lock on the segment, or
    /// another removal held the lock for seconds).
    pub fn close(mut self) -> Result<(), CloseError> {
        let closed = self.remove_name();
        // Done: the drop that follows has nothing left to remove.
        self.owner = false;
        closed
    }

    /// Removes the name now, keeping the mapping: endpoints of this handle
    /// and of its peers work on until dropped, while a process that opens
    /// the name no longer finds this segment (and a new run may create its
    /// own under it). Does nothing in a handle that did not create the
    /// segment, or with [`persist`](CreateOptions::persist) (whose name is
    /// meant to outlive it); after it, dropping or closing the handle
    /// removes nothing. Errors as [`close`](Self::close).
    ///
    /// On a clean shutdown, call it before dropping the server (or
    /// publisher, or producer): its peers learn of the close (`Closed`) and
    /// reopen by name, and find the next run's segment, not this one, which
    /// is about to go.
    ///
    /// With [`NamedSemaphoreWait`](crate::NamedSemaphoreWait) peers: the
    /// segment's semaphores are removed with the name, and a peer that
    /// makes its wait strategy after that creates them again under the
    /// name, which the next run shares; nothing removes those. Unlink once
    /// such peers have their strategies, or use futex waits.
    ///
    /// ```
    /// use shm_core::Layout;
    /// use shm_posix::{FutexWait, OpenError, Segment};
    /// # use std::time::Duration;
    ///
    /// let name = format!("/shm-doc-unlink-{}", std::process::id());
    /// let segment = Segment::create(&name, &Layout::new().mailbox("rpc", 2, 64)?)?;
    /// let server = segment.server("rpc", FutexWait::new())?;
    /// // Shutting down: the name first, then the endpoints.
    /// segment.unlink()?;
    /// assert!(matches!(Segment::open(&name, Duration::ZERO), Err(OpenError::NotFound { .. })));
    /// drop(server);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn unlink(&self) -> Result<(), CloseError> {
        self.remove_name()
    }

    fn remove_name(&self) -> Result<(), CloseError> {
        let mut unlinked = self.unlinked.lock().unwrap_or_else(|e| e.into_inner());
        if !self.owner || self.persist || *unlinked {
            return Ok(());
        }
        let fail = |op| move |source| CloseError::Io { name: self.name.clone(), op, source };
        let lock = self.object.lock().map_err(fail("lock"))?;
        // The semaphores before the name: once the name is gone, a new
        // segment may take it and make semaphores of the same names.
        lock.unlink_if_at(&self.name, || unlink_word_semaphores(&self.name, &self.core)).map_err(fail("unlink"))?;
        *unlinked = true;
        Ok(())
    }
}

/// The role claims, through the segment's name: each is
/// `shm_core::Segment`'s (reached through `Deref` otherwise), then checks,
/// under the lock every remover of this object takes (see
/// [`crate::object`]), that the name still refers to this segment, or went
/// with a removal of this library (which sets the header's removal mark
/// before unlinking it; a creator's clean exit does not). Without that check, a
/// process that claimed a serving role between a remover's look at the roles
/// (a restarted creator replacing its dead run's segment, `shmctl rm
/// --stale`) and its unlink served an orphan that no new peer would ever
/// open (review, 2026-12-03). With it, either the remover counted the claim
/// (a serving role keeps the segment; a restarted creator does not count
/// clients and subscribers, see [`CreateOptions::replace_stale`]), or the
/// claim is undone and reported as
/// [`ClaimError::Removed`](shm_core::ClaimError::Removed). Undone means
/// dropped: the endpoint's drop marks its channel closed, in a segment
/// already removed. A name that cannot be looked at (out of descriptors) is
/// taken as unchanged.
/// How long a claim waits for a removal in progress (see `claims!`).
const CLAIM_LOCK_BUDGET: Duration = Duration::from_millis(100);

macro_rules! claims {
    ($($(#[$doc:meta])* $method:ident($($arg:ident: $ty:ty),*) -> $endpoint:ty;)*) => {
        impl Segment {
            $(
                $(#[$doc])*
                ///
                /// Refused with [`ClaimError::Removed`](shm_core::ClaimError::Removed)
                /// if this library removed the segment (a restarted creator
                /// replaced it, [`remove`](crate::remove()) or `shmctl rm`),
                /// possibly while this claim was made: open it again and
                /// claim there. The check takes the lock every such removal
                /// takes, waiting at most 100 ms for one in progress, so a
                /// removal either counted the claim among the segment's users
                /// or is seen by it (a removal stalled longer than that, say
                /// a stopped `shmctl`, may still unlink the segment after the
                /// claim went ahead without the lock). After the creator's own clean exit a
                /// peer that still maps the segment may claim in it, as
                /// before. `shm_core::Segment`'s methods, reached through
                /// `Deref`, do not check.
                pub fn $method<W: shm_core::Wait>(
                    &self,
                    name: &str,
                    wait: W,
                    $($arg: $ty),*
                ) -> Result<$endpoint, shm_core::ClaimError> {
                    let endpoint = self.core.$method(name, wait, $($arg),*)?;
                    // On `Err`, the endpoint drops: the role is released.
                    self.still_named(name)?;
                    Ok(endpoint)
                }
            )*
        }
    };
}

claims! {
    /// Claims the server role of mailbox `name`.
    server() -> shm_core::mailbox::Server<'_, W>;
    /// Claims the producer role of queue `name`.
    producer() -> shm_core::queue::Producer<'_, W>;
    /// Claims the consumer role of queue `name`.
    consumer() -> shm_core::queue::Consumer<'_, W>;
    /// Claims the publisher role of broadcast channel `name`.
    publisher() -> shm_core::broadcast::Publisher<'_, W>;
    /// Joins broadcast channel `name` as a subscriber, at its newest message.
    subscriber() -> shm_core::broadcast::Subscriber<'_, W>;
    /// Claims the server role of direct mailbox `name` (see
    /// [`shm_core::direct`]).
    direct_server() -> shm_core::direct::Server<'_, W>;
    /// Connects to direct mailbox `name` as a client, taking one of its
    /// slots; [`ClaimError::Busy`](shm_core::ClaimError::Busy) when every
    /// slot has a client.
    direct_client() -> shm_core::direct::Client<'_, W>;
    /// [`direct_client`](Self::direct_client), waiting at most `timeout`
    /// for a slot to come free.
    direct_client_timeout(timeout: Duration) -> shm_core::direct::Client<'_, W>;
}

impl Segment {
    /// `Err(Removed)` if this segment's name no longer refers to it, judged
    /// under the removers' lock (see `claims!`).
    fn still_named(&self, channel: &str) -> Result<(), shm_core::ClaimError> {
        // A remover holds the lock for a few system calls; a lock we cannot
        // take within `CLAIM_LOCK_BUDGET` (a process holding it, or a read
        // lock, which this library never takes): judge without it.
        let _lock = self.object.lock_within(CLAIM_LOCK_BUDGET);
        let removed = match self.object.named(&self.name) {
            Named::This | Named::Unknown => false,
            Named::Other => true,
            // Gone: with a removal of this library (which marks the segment
            // first), or with its creator's clean exit (or a program outside
            // this library), after which a peer that maps it may still
            // claim in it.
            Named::Nothing => self.object.marked_removed(),
        };
        if removed {
            Err(shm_core::ClaimError::Removed { channel: shm_core::ChannelName::new(channel) })
        } else {
            Ok(())
        }
    }
}

impl Drop for Segment {
    /// As [`Segment::close`], best effort: a name that could not be removed
    /// is left in place without a word (use `close` to be told).
    fn drop(&mut self) {
        let _ = self.remove_name();
    }
}

/// Checks that `object` can be a segment of ours before mapping or copying
/// it: at least a header, carrying the magic (read with `pread`). A
/// segment is named only once READY (see [`Segment::create_with`]), so
/// there is nothing to wait for: a file without the magic is not ours.
/// Returns its size.
fn check_object(name: &str, object: &Object) -> Result<usize, OpenError> {
    let size = object.size().map_err(|e| OpenError::Io { op: "fstat", name: name.to_owned(), source: e.into() })?;
    let too_small = || OpenError::TooSmall { name: name.to_owned(), size };
    if size < header::SIZE as u64 {
        return Err(too_small());
    }
    match object.peek() {
        Some(peek) if peek.ours => usize::try_from(size).map_err(|_| too_small()),
        Some(_) => Err(OpenError::Core { name: name.to_owned(), source: shm_core::OpenError::BadMagic }),
        // Shrunk since the fstat.
        None => Err(too_small()),
    }
}

/// Maps `object` read-write and opens the segment in it, waiting at most
/// what is left of `timeout` from `start` for READY.
fn map_object(
    name: &str,
    object: &Object,
    start: Instant,
    timeout: Duration,
) -> Result<(Mapping, shm_core::Segment<'static>), OpenError> {
    let len = check_object(name, object)?;
    let map = Mapping::new(object.fd(), len, Access::ReadWrite).map_err(|source| OpenError::Io {
        op: "mmap",
        name: name.to_owned(),
        source,
    })?;
    let left = timeout.saturating_sub(start.elapsed());
    let core = shm_core::Segment::open(map.region(), &FutexWait::new(), left)
        .map_err(|source| OpenError::Core { name: name.to_owned(), source })?;
    // Checked after READY, which publishes the identity words (they are
    // written before the magic); an inspecting view may still read it.
    if let Some(peek) = shm_core::peek(core.region()).filter(crate::identity::foreign_namespace) {
        let ours = crate::identity::pid_namespace().unwrap_or(0);
        return Err(OpenError::ForeignNamespace { name: name.to_owned(), segment: peek.creator_domain, ours });
    }
    Ok((map, core))
}

/// A copy of a segment, for inspection: the header, the channel table and
/// every channel's control words, read with `pread` into private memory
/// (the rest reads as zeros). Nothing of the segment is mapped, so an owner
/// that truncates it meanwhile makes a short read, never a SIGBUS; nothing
/// is written to it; read permission is enough. Never handed out as a
/// [`Segment`], whose channels write.
#[derive(Debug)]
pub(crate) struct View {
    // Field order: `core` (a region over the copy) drops before `copy`.
    core: shm_core::Segment<'static>,
    _copy: Mapping,
    id: ObjectId,
}

impl View {
    /// Opens `name` read-only, without waiting.
    pub(crate) fn open(name: &str) -> Result<Self, OpenError> {
        let name = canonical_name(name).map_err(OpenError::Name)?;
        let object = match Object::open(&name, Access::Read) {
            Ok(object) => object,
            Err(ObjectError::Os(Errno::NOENT)) => return Err(OpenError::NotFound { name }),
            Err(ObjectError::Os(e)) => return Err(OpenError::Io { op: "open", name, source: e.into() }),
            Err(ObjectError::Refused(reason)) => return Err(OpenError::Refused { name, reason }),
        };
        Self::of(&name, &object)
    }

    /// Copies an object already open.
    pub(crate) fn of(name: &str, object: &Object) -> Result<Self, OpenError> {
        let len = check_object(name, object)?;
        let copy =
            Mapping::anonymous(len).map_err(|source| OpenError::Io { op: "mmap", name: name.to_owned(), source })?;
        let read = |start: usize, len: usize| {
            // SAFETY: `copy` is private anonymous memory of this process that
            // no one else sees, and no `shm_core::Segment` over it is alive
            // while we write (the one below is dropped first, the final one
            // made after).
            unsafe { copy.fill_from(object, start, len) }.map_err(|e| OpenError::Io {
                op: "pread",
                name: name.to_owned(),
                source: e.into(),
            })
        };
        read(0, shm_core::format::AREAS_OFFSET)?;
        // The channel table, validated, says where the control words are:
        // copy those (roles, counters, slot states), never the payloads.
        let core_error = |source| OpenError::Core { name: name.to_owned(), source };
        let channels = shm_core::Segment::open(copy.region(), &FutexWait::new(), Duration::ZERO)
            .map_err(core_error)?
            .channels()
            .to_vec();
        for (start, len) in channels.iter().flat_map(|c| c.control_ranges()) {
            read(start, len)?;
        }
        let core = shm_core::Segment::open(copy.region(), &FutexWait::new(), Duration::ZERO).map_err(core_error)?;
        Ok(Self { core, _copy: copy, id: object.id() })
    }

    /// The segment (load-only use: see the type's docs).
    pub(crate) fn core(&self) -> &shm_core::Segment<'static> {
        &self.core
    }

    /// The object copied.
    pub(crate) fn id(&self) -> ObjectId {
        self.id
    }
}

/// A per-process session id: changes when a creator restarts under the same
/// PID (it is derived from the process start time and PID).
fn session_id() -> u32 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Realtime);
    (t.tv_nsec as u32) ^ (t.tv_sec as u32).rotate_left(16) ^ std::process::id()
}

pub(crate) fn unlink_word_semaphores(name: &str, core: &shm_core::Segment<'_>) {
    for offset in core.wait_words() {
        let _ = NamedSemaphore::unlink(&word_semaphore_name(name, offset));
    }
}

/// Who holds an existing name.
enum Holder {
    /// Nothing any more.
    Gone,
    /// A segment of ours whose creator lives.
    Alive(u32),
    /// A segment of ours whose creator is dead.
    Dead { creator: u32, object: ObjectId },
    /// Something without our mark (or a segment of ours that records no
    /// creator): never taken for stale.
    Foreign,
}

fn holder(name: &str) -> Holder {
    let object = match Object::open(name, Access::Read) {
        Ok(object) => object,
        Err(ObjectError::Os(Errno::NOENT)) => return Holder::Gone,
        Err(_) => return Holder::Foreign,
    };
    // A creator in another PID namespace cannot be judged from here: such a
    // name is never taken for stale.
    match object.peek().filter(|p| p.ours).map(|p| (p.creator, creator_liveness(&p))) {
        Some((creator, Liveness::Alive)) => Holder::Alive(creator),
        Some((creator, Liveness::Dead)) => Holder::Dead { creator, object: object.id() },
        _ => Holder::Foreign,
    }
}

/// Removes stale `object` under `name` for a creator that will then try
/// again; losing the race to another remover is not an error here (the
/// next attempt reports what holds the name).
fn replace_stale(name: &str, object: ObjectId) -> Result<(), CreateError> {
    let options = RemoveOptions { force: false, object: Some(object) };
    match remove_unless_used(name, &options, crate::list::Users::Serving) {
        Ok(_) | Err(RemoveError::NotFound { .. } | RemoveError::Replaced { .. }) => Ok(()),
        Err(RemoveError::Alive { creator, .. } | RemoveError::Unjudged { creator, .. }) => {
            Err(CreateError::Exists { name: name.to_owned(), creator: Some(creator).filter(|&c| c != 0) })
        }
        Err(RemoveError::InUse { pid, role, .. }) => Err(CreateError::InUse { name: name.to_owned(), pid, role }),
        Err(RemoveError::Unreadable { creator, reason, .. }) => {
            Err(CreateError::Unreadable { name: name.to_owned(), creator, reason })
        }
        Err(RemoveError::NotOurs { .. } | RemoveError::Refused { .. }) => {
            Err(CreateError::Exists { name: name.to_owned(), creator: None })
        }
        Err(e) => {
            Err(CreateError::Io { op: "remove the stale segment", name: name.to_owned(), source: io::Error::other(e) })
        }
    }
}
