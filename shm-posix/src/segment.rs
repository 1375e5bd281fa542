//! Named segments: `shm_open` + `ftruncate` + `mmap(MAP_SHARED)`.

#![allow(unsafe_code)]

use std::fmt;
use std::io;
use std::ops::Deref;
use std::os::fd::OwnedFd;
use std::ptr::NonNull;
use std::time::{Duration, Instant};

use rustix::fs::Mode;
use rustix::io::Errno;
use rustix::mm::{MapFlags, ProtFlags};
use rustix::shm;
use shm_core::layout::{HEADER_SIZE, MAILBOX_PAYLOAD_OFFSET, MAILBOX_SLOTS_OFFSET};
use shm_core::{ChannelKind, Layout, Region};

use crate::futex::{pid_alive, FutexWait};
use crate::name::{canonical_name, NameError};
use crate::named::{word_semaphore_name, NamedSemaphore};

/// How [`Segment::create`] makes the segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CreateOptions {
    /// Permission bits of the shared-memory object (default 0600: this user
    /// only).
    pub mode: u32,
    /// Keep the name after the creating handle drops (default: unlink).
    pub persist: bool,
    /// If the name exists and its creator is dead, remove it and create
    /// anew (default: report [`CreateError::Stale`]). A segment whose
    /// creator lives is never replaced.
    pub replace_stale: bool,
}

impl Default for CreateOptions {
    fn default() -> Self {
        Self { mode: 0o600, persist: false, replace_stale: false }
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
    /// The name is left over from a creator that died.
    Stale {
        /// The canonical name.
        name: String,
        /// The dead creator's PID.
        creator: u32,
    },
    /// The layout does not fit the region (should not happen: the mapping
    /// is sized from the layout).
    Core(shm_core::CreateError),
    /// A system call failed.
    Io {
        /// Which call.
        op: &'static str,
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
                "/dev/shm{name} exists and is not a segment of this library: pick another name or remove it by hand"
            ),
            Self::Stale { name, creator } => write!(
                f,
                "segment {name} is stale (its creator, pid {creator}, is dead): remove it with `shmctl rm {name}` or create with `replace_stale`"
            ),
            Self::Core(e) => e.fmt(f),
            Self::Io { op, source } => write!(f, "{op} failed: {source}"),
        }
    }
}

impl std::error::Error for CreateError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io { source, .. } => Some(source),
            Self::Name(e) => Some(e),
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
    /// The object is smaller than a segment header (not a segment, or its
    /// creator died before sizing it).
    TooSmall {
        /// The canonical name.
        name: String,
        /// Its size in bytes.
        size: u64,
    },
    /// The segment's contents were refused (see the inner error).
    Core(shm_core::OpenError),
    /// A system call failed.
    Io {
        /// Which call.
        op: &'static str,
        /// The error.
        source: io::Error,
    },
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Name(e) => e.fmt(f),
            Self::NotFound { name } => write!(f, "no segment named {name}: is its creator running?"),
            Self::TooSmall { name, size } => {
                write!(f, "{name} has {size} bytes, less than a segment header: not a segment of this library")
            }
            Self::Core(e) => e.fmt(f),
            Self::Io { op, source } => write!(f, "{op} failed: {source}"),
        }
    }
}

impl std::error::Error for OpenError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io { source, .. } => Some(source),
            Self::Name(e) => Some(e),
            _ => None,
        }
    }
}

fn io_err(op: &'static str) -> impl FnOnce(Errno) -> io::Error {
    move |e| io::Error::new(io::Error::from(e).kind(), format!("{op}: {e}"))
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
    fn new(fd: &OwnedFd, len: usize) -> io::Result<Self> {
        // SAFETY: a fresh mapping chosen by the kernel (null hint) of a file
        // we hold open; it aliases no Rust object.
        let ptr = unsafe {
            rustix::mm::mmap(std::ptr::null_mut(), len, ProtFlags::READ | ProtFlags::WRITE, MapFlags::SHARED, fd, 0)
        }
        .map_err(io::Error::from)?;
        let ptr = NonNull::new(ptr.cast::<u8>()).ok_or_else(|| io::Error::other("mmap returned null"))?;
        Ok(Self { ptr, len })
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
/// Dereferences to [`shm_core::Segment`], which gives the channels.
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
    name: String,
    owner: bool,
    persist: bool,
}

impl Deref for Segment {
    type Target = shm_core::Segment<'static>;
    fn deref(&self) -> &Self::Target {
        &self.core
    }
}

impl Segment {
    /// Creates segment `name` for `layout` with the default options (mode
    /// 0600, unlinked on drop, stale names reported).
    pub fn create(name: &str, layout: &Layout) -> Result<Self, CreateError> {
        Self::create_with(name, layout, CreateOptions::default())
    }

    /// Creates segment `name` for `layout`: `shm_open(O_CREAT|O_EXCL)`,
    /// `ftruncate` to the layout's size, `mmap`, initialize, publish READY.
    pub fn create_with(name: &str, layout: &Layout, options: CreateOptions) -> Result<Self, CreateError> {
        let name = canonical_name(name).map_err(CreateError::Name)?;
        let flags = shm::OFlags::CREATE | shm::OFlags::EXCL | shm::OFlags::RDWR;
        let fd = match shm::open(name.as_str(), flags, Mode::from_raw_mode(options.mode)) {
            Ok(fd) => fd,
            Err(Errno::EXIST) => {
                let holder = inspect_holder(&name);
                match holder {
                    Holder::Dead(_) if options.replace_stale => {
                        remove(&name).map_err(|source| CreateError::Io { op: "shm_unlink", source })?;
                        return Self::create_with(&name, layout, CreateOptions { replace_stale: false, ..options });
                    }
                    Holder::Dead(creator) => return Err(CreateError::Stale { name, creator }),
                    Holder::Alive(pid) => return Err(CreateError::Exists { name, creator: Some(pid) }),
                    Holder::Foreign => return Err(CreateError::Exists { name, creator: None }),
                }
            }
            Err(e) => return Err(CreateError::Io { op: "shm_open", source: e.into() }),
        };
        let unlink_on_error = |e: CreateError| {
            let _ = shm::unlink(name.as_str());
            e
        };
        let io = |op| move |e: Errno| CreateError::Io { op, source: e.into() };
        // umask may have cleared bits the caller asked for: set them exactly.
        rustix::fs::fchmod(&fd, Mode::from_raw_mode(options.mode)).map_err(io("fchmod")).map_err(unlink_on_error)?;
        rustix::fs::ftruncate(&fd, layout.size() as u64).map_err(io("ftruncate")).map_err(unlink_on_error)?;
        // Reserve the pages now: a full /dev/shm is an error here (ENOSPC),
        // not a SIGBUS on first touch later.
        rustix::fs::fallocate(&fd, rustix::fs::FallocateFlags::empty(), 0, layout.size() as u64)
            .map_err(io("fallocate (is /dev/shm full?)"))
            .map_err(unlink_on_error)?;
        let map = Mapping::new(&fd, layout.size())
            .map_err(|source| CreateError::Io { op: "mmap", source })
            .map_err(unlink_on_error)?;
        let session = session_id();
        let core = shm_core::Segment::create(map.region(), layout, std::process::id(), session)
            .map_err(CreateError::Core)
            .map_err(unlink_on_error)?;
        Ok(Self { core, map, name, owner: true, persist: options.persist })
    }

    /// Opens segment `name`, waiting at most `timeout` for it to appear and
    /// for its creator to publish READY, then validating it.
    pub fn open(name: &str, timeout: Duration) -> Result<Self, OpenError> {
        let name = canonical_name(name).map_err(OpenError::Name)?;
        let start = Instant::now();
        let waited_out = || start.elapsed() >= timeout;
        let fd = loop {
            match shm::open(name.as_str(), shm::OFlags::RDWR, Mode::empty()) {
                Ok(fd) => break fd,
                Err(Errno::NOENT) if !waited_out() => std::thread::sleep(Duration::from_millis(1)),
                Err(Errno::NOENT) => return Err(OpenError::NotFound { name }),
                Err(e) => return Err(OpenError::Io { op: "shm_open", source: e.into() }),
            }
        };
        let size = loop {
            let size =
                rustix::fs::fstat(&fd).map_err(|e| OpenError::Io { op: "fstat", source: e.into() })?.st_size as u64;
            // Size 0: the creator has not called ftruncate yet.
            if size == 0 && !waited_out() {
                std::thread::sleep(Duration::from_millis(1));
                continue;
            }
            break size;
        };
        if size < HEADER_SIZE as u64 {
            return Err(OpenError::TooSmall { name, size });
        }
        let len = usize::try_from(size).map_err(|_| OpenError::TooSmall { name: name.clone(), size })?;
        let map = Mapping::new(&fd, len).map_err(|source| OpenError::Io { op: "mmap", source })?;
        let left = timeout.saturating_sub(start.elapsed());
        let core = shm_core::Segment::open(map.region(), &FutexWait::new(), left).map_err(OpenError::Core)?;
        Ok(Self { core, map, name, owner: false, persist: true })
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
}

impl Drop for Segment {
    fn drop(&mut self) {
        if self.owner && !self.persist {
            unlink_word_semaphores(&self.name, &self.core);
            let _ = shm::unlink(self.name.as_str());
        }
    }
}

/// A per-process session id: changes when a creator restarts under the same
/// PID (it is derived from the process start time and PID).
fn session_id() -> u32 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Realtime);
    (t.tv_nsec as u32) ^ (t.tv_sec as u32).rotate_left(16) ^ std::process::id()
}

/// Offsets of the words a [`crate::NamedSemaphoreWait`] may sleep on.
pub(crate) fn wait_word_offsets(core: &shm_core::Segment<'_>) -> Vec<usize> {
    let mut out = Vec::new();
    for c in core.channels() {
        let base = c.offset as usize;
        match c.kind {
            ChannelKind::Queue => out.extend([base, base + 64]),
            ChannelKind::Semaphore => out.push(base),
            ChannelKind::Mailbox => {
                out.extend([base + 64, base + 128]);
                let stride = shm_core::layout::mailbox_slot_stride(c.param_b) as usize;
                out.extend((0..c.param_a as usize).map(|i| base + MAILBOX_SLOTS_OFFSET + i * stride));
                let _ = MAILBOX_PAYLOAD_OFFSET;
            }
        }
    }
    out
}

fn unlink_word_semaphores(name: &str, core: &shm_core::Segment<'_>) {
    for offset in wait_word_offsets(core) {
        let _ = NamedSemaphore::unlink(&word_semaphore_name(name, offset));
    }
}

enum Holder {
    Alive(u32),
    Dead(u32),
    Foreign,
}

/// Who holds an existing name: a live or dead creator of ours, or something
/// else.
fn inspect_holder(name: &str) -> Holder {
    match peek_creator(name) {
        Some(pid) if pid_alive(pid) => Holder::Alive(pid),
        Some(pid) => Holder::Dead(pid),
        None => Holder::Foreign,
    }
}

/// Removes segment `name` (`shm_unlink`) and the named semaphores a
/// [`crate::NamedSemaphoreWait`] may have made for it. Processes that have
/// it mapped keep their mapping.
pub fn remove(name: &str) -> io::Result<()> {
    let name = canonical_name(name).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    if let Ok(seg) = Segment::open(&name, Duration::ZERO) {
        unlink_word_semaphores(&name, &seg);
    }
    shm::unlink(name.as_str()).map_err(io_err("shm_unlink"))
}

/// The creator recorded in `name` if it looks like one of ours (by magic or
/// INITIALIZING state), without validating the rest.
pub(crate) fn peek_creator(name: &str) -> Option<u32> {
    let fd = shm::open(name, shm::OFlags::RDWR, Mode::empty()).ok()?;
    let size = rustix::fs::fstat(&fd).ok()?.st_size as usize;
    if size < HEADER_SIZE {
        return None;
    }
    let map = Mapping::new(&fd, size).ok()?;
    let region = map.region();
    shm_core::peek(&region).filter(|p| p.ours).map(|p| p.creator)
}
