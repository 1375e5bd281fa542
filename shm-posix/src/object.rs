//! Objects in `/dev/shm` by name, without trusting the name.
//!
//! # Design
//!
//! A name is not an identity: anyone may plant a symlink, a FIFO or a file
//! of their own under it, and a name may be removed and re-created between
//! two calls. So an object is opened with `O_NOFOLLOW` (as glibc's
//! `shm_open` does; rustix's does not), checked with `fstat` (a regular
//! file, of an acceptable owner where we will write to it), and from then
//! on identified by its device and inode, never by its name again.
//!
//! A segment is created unnamed (`O_TMPFILE` in `/dev/shm`), built to the
//! end, and only then linked under its name ([`Object::publish`]): nothing
//! half-built ever has a name, so a creator that dies while building leaves
//! nothing for anyone to judge or remove.
//!
//! Every destructive act of this library on a name (a creator's drop,
//! `remove`, replacing a stale segment) goes through
//! [`LockGuard::unlink_if_at`]: it takes a write lock on the object it means
//! to remove (an open-file-description lock, `F_OFD_SETLK` with `F_WRLCK`,
//! on a descriptor open for writing), re-checks that the name still refers
//! to that object, then unlinks. Two such acts on one object are serialized
//! by the lock, and
//! the name cannot move to another object in between except by a process
//! that does not take the lock (a program outside this library, or a person
//! running `rm`): that window, between the re-check and `unlink`, is a few
//! microseconds and is the one left open. Linux has no "unlink if this
//! inode" call to close it.
//!
//! A role claim (`Segment::producer` and the others) takes the same lock,
//! after its claim, to check that the name still refers to its object: a
//! removal's look at the roles and its unlink then happen either before the
//! check (which refuses the claim) or after the claim (which the look sees).
//!
//! The lock is not `flock`: any process that may read the object can take
//! an exclusive `flock` on it, and used to stall every remover. A write lock
//! needs write permission. A reader can still take a read lock (`fcntl`
//! `F_RDLCK`, on any descriptor it may read) that conflicts with it; this
//! library never takes one, so a remover that meets one fails at once and
//! says so, instead of waiting for it.

use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, Stat};
use rustix::io::Errno;
use shm_core::format::header;
use shm_core::Peek;

/// Where POSIX shared-memory objects (and named semaphores) live on Linux.
pub const SHM_DIR: &str = "/dev/shm";

/// How long a destructive act waits for another one on the same object to
/// finish (it holds the lock for a few system calls; this bound only keeps
/// a process that holds it forever from hanging us).
const LOCK_BUDGET: Duration = Duration::from_secs(10);

/// Which file a name referred to: its device and inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "cli", derive(serde::Serialize))]
pub struct ObjectId {
    /// `st_dev`.
    pub device: u64,
    /// `st_ino`.
    pub inode: u64,
}

impl ObjectId {
    fn of(stat: &Stat) -> Self {
        Self { device: stat.st_dev, inode: stat.st_ino }
    }
}

/// Why the object under a name was not opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// It is a symbolic link (never followed).
    Symlink,
    /// It is not a regular file (a FIFO, a directory, ...).
    NotRegular,
    /// It belongs to another user (neither this one nor root).
    Owner {
        /// Its owner.
        uid: u32,
    },
    /// It is smaller than it must be to be mapped safely.
    TooSmall {
        /// Its size in bytes.
        size: u64,
    },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Symlink => write!(f, "is a symbolic link, which is never followed"),
            Self::NotRegular => write!(f, "is not a regular file"),
            Self::Owner { uid } => write!(f, "belongs to uid {uid}, neither this user nor root"),
            Self::TooSmall { size } => write!(f, "has only {size} bytes"),
        }
    }
}

/// Opening an object failed.
#[derive(Debug)]
pub(crate) enum ObjectError {
    /// The system call failed (`NOENT`, `ACCES`, ...).
    Os(Errno),
    /// It opened but is not acceptable.
    Refused(Refusal),
}

/// Whether we read or also write the object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// Read only: inspecting. Any owner (nothing is written).
    Read,
    /// Read and write: using. Only our own or root's objects.
    ReadWrite,
}

/// The path of object `name` (`/name`, already checked by `canonical_name`
/// or built from a checked one).
pub(crate) fn path(name: &str) -> String {
    format!("{SHM_DIR}{name}")
}

/// An open object of `/dev/shm` and what `fstat` said when it was opened.
#[derive(Debug)]
pub(crate) struct Object {
    fd: OwnedFd,
    id: ObjectId,
    mode: u32,
    uid: u32,
    /// Open for writing, as the lock needs (see [`Object::lock`]).
    writable: bool,
}

impl Object {
    /// Creates an object in `/dev/shm` that has no name yet (`O_TMPFILE`):
    /// nobody can open it, and it vanishes with its last descriptor or
    /// mapping, so a creator that dies before [`publish`](Self::publish)
    /// leaves nothing behind.
    pub(crate) fn create_unnamed(mode: u32) -> Result<Self, Errno> {
        let flags = OFlags::TMPFILE | OFlags::RDWR | OFlags::CLOEXEC;
        let fd = rustix::fs::open(SHM_DIR, flags, Mode::from_raw_mode(mode))?;
        let stat = rustix::fs::fstat(&fd)?;
        Ok(Self { fd, id: ObjectId::of(&stat), mode: mode & 0o777, uid: stat.st_uid, writable: true })
    }

    /// Gives an object made by [`create_unnamed`](Self::create_unnamed) the
    /// name `name`, atomically: `linkat` fails with `EXIST` if the name is
    /// taken (a symlink included), as `O_CREAT|O_EXCL` would.
    pub(crate) fn publish(&self, name: &str) -> Result<(), Errno> {
        let cwd = rustix::fs::CWD;
        let own = format!("/proc/self/fd/{}", self.fd.as_raw_fd());
        match rustix::fs::linkat(cwd, own.as_str(), cwd, path(name), AtFlags::SYMLINK_FOLLOW) {
            // No /proc: link the descriptor itself (needs CAP_DAC_READ_SEARCH
            // on kernels before 6.10 that do not allow it to the opener).
            Err(Errno::NOENT) if !std::path::Path::new("/proc/self/fd").exists() => {
                rustix::fs::linkat(&self.fd, "", cwd, path(name), AtFlags::EMPTY_PATH)
            }
            other => other,
        }
    }

    /// Opens `/dev/shm/NAME` without following a symlink, and checks that it
    /// is a regular file; for [`Access::ReadWrite`], also that it is ours or
    /// root's.
    pub(crate) fn open(name: &str, access: Access) -> Result<Self, ObjectError> {
        Self::open_accepting(name, access, None)
    }

    /// As [`open`](Self::open), and for [`Access::ReadWrite`] an object of
    /// user `also` is acceptable too (a segment shared by that user).
    pub(crate) fn open_accepting(name: &str, access: Access, also: Option<u32>) -> Result<Self, ObjectError> {
        let rw = match access {
            Access::Read => OFlags::RDONLY,
            Access::ReadWrite => OFlags::RDWR,
        };
        // NONBLOCK: opening a FIFO planted under the name must not block.
        let flags = rw | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK;
        let fd = rustix::fs::open(path(name), flags, Mode::empty()).map_err(|e| match e {
            Errno::LOOP => ObjectError::Refused(Refusal::Symlink),
            Errno::ISDIR => ObjectError::Refused(Refusal::NotRegular),
            e => ObjectError::Os(e),
        })?;
        let stat = rustix::fs::fstat(&fd).map_err(ObjectError::Os)?;
        check(&stat, access, also).map_err(ObjectError::Refused)?;
        let writable = access == Access::ReadWrite;
        Ok(Self { fd, id: ObjectId::of(&stat), mode: stat.st_mode & 0o777, uid: stat.st_uid, writable })
    }

    /// The open file.
    pub(crate) fn fd(&self) -> &OwnedFd {
        &self.fd
    }

    /// Device and inode.
    pub(crate) fn id(&self) -> ObjectId {
        self.id
    }

    /// Permission bits when opened.
    pub(crate) fn mode(&self) -> u32 {
        self.mode
    }

    /// Its owner when opened.
    pub(crate) fn uid(&self) -> u32 {
        self.uid
    }

    /// Its size now.
    pub(crate) fn size(&self) -> Result<u64, Errno> {
        Ok(rustix::fs::fstat(&self.fd)?.st_size as u64)
    }

    /// What its header says, read with `pread` (no mapping: a file
    /// truncated meanwhile reads short instead of faulting). `None` if it
    /// is shorter than a header.
    pub(crate) fn peek(&self) -> Option<Peek> {
        let mut bytes = [0u8; header::SIZE];
        let mut done = 0;
        while done < header::SIZE {
            match rustix::io::pread(&self.fd, &mut bytes[done..], done as u64) {
                Ok(0) => return None,
                Ok(n) => done += n,
                Err(Errno::INTR) => {}
                Err(_) => return None,
            }
        }
        Some(Peek::from_header(&bytes))
    }

    /// Whether a remover of this library marked this object as removed (see
    /// [`LockGuard::mark_removed`]).
    pub(crate) fn marked_removed(&self) -> bool {
        let mut word = [0u8; 4];
        let at = shm_core::format::header::RESERVED as u64;
        rustix::io::pread(&self.fd, &mut word, at).is_ok_and(|n| n == 4) && word != [0; 4]
    }

    /// Whether `name` refers to this very object now.
    pub(crate) fn is_at(&self, name: &str) -> bool {
        self.named(name) == Named::This
    }

    /// What `name` refers to, as far as this object is concerned.
    pub(crate) fn named(&self, name: &str) -> Named {
        let flags = OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = match rustix::fs::open(path(name), flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => return Named::Nothing,
            // Out of descriptors, memory, a sandbox: no answer.
            Err(_) => return Named::Unknown,
        };
        match rustix::fs::fstat(&fd) {
            Ok(s) if ObjectId::of(&s) == self.id => Named::This,
            Ok(_) => Named::Other,
            Err(_) => Named::Unknown,
        }
    }

    /// Takes the write lock that every destructive act of this library on
    /// this object holds (see the module docs), waiting at most
    /// [`LOCK_BUDGET`] for another such act to finish. Fails at once if a
    /// read lock (never one of ours) is in the way. Released when the
    /// returned guard drops.
    pub(crate) fn lock(&self) -> io::Result<LockGuard<'_>> {
        self.lock_within(LOCK_BUDGET)
    }

    /// [`lock`](Self::lock), waiting at most `budget`.
    pub(crate) fn lock_within(&self, budget: Duration) -> io::Result<LockGuard<'_>> {
        // An object opened for reading only is reopened for writing through
        // its descriptor: the very same file, never the name again.
        let reopened = if self.writable { None } else { Some(self.reopen_writable()?) };
        let guard = LockGuard { object: self, reopened };
        let start = Instant::now();
        loop {
            match ofd_lock(guard.fd(), libc::F_OFD_SETLK, libc::F_WRLCK) {
                Ok(_) => return Ok(guard),
                Err(Errno::AGAIN | Errno::ACCESS | Errno::INTR) => {}
                Err(e) => return Err(e.into()),
            }
            // Who is in the way? (F_UNLCK: nobody any more, try again.)
            if let Ok(libc::F_RDLCK) = ofd_lock(guard.fd(), libc::F_OFD_GETLK, libc::F_WRLCK) {
                return Err(io::Error::new(
                    io::ErrorKind::WouldBlock,
                    "a process holds a read lock on it (fcntl), which this library never takes",
                ));
            }
            if start.elapsed() >= budget {
                return Err(io::Error::new(
                    io::ErrorKind::WouldBlock,
                    format!("another process held the lock on it for {budget:?}"),
                ));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// A descriptor of this very file open for writing, through
    /// `/proc/self/fd` (needs write permission on it).
    fn reopen_writable(&self) -> io::Result<OwnedFd> {
        let own = format!("/proc/self/fd/{}", self.fd.as_raw_fd());
        let flags = OFlags::RDWR | OFlags::CLOEXEC | OFlags::NONBLOCK;
        let fd = rustix::fs::open(own.as_str(), flags, Mode::empty()).map_err(|e| match e {
            Errno::ACCESS | Errno::PERM => io::Error::new(
                io::ErrorKind::PermissionDenied,
                "removing it takes a write lock, which needs write permission on it",
            ),
            Errno::NOENT => io::Error::new(
                io::ErrorKind::NotFound,
                "locking a descriptor opened read-only reopens it through /proc/self/fd, and /proc is not mounted",
            ),
            e => e.into(),
        })?;
        match rustix::fs::fstat(&fd) {
            Ok(stat) if ObjectId::of(&stat) == self.id => Ok(fd),
            Ok(_) => Err(io::Error::other("reopening it through /proc/self/fd gave another file")),
            Err(e) => Err(e.into()),
        }
    }
}

/// `fcntl(fd, cmd, &lock)` over the whole file for the open-file-description
/// lock commands (rustix's `fcntl_lock` makes process-associated locks,
/// which any other descriptor of this process would release); returns the
/// `l_type` the kernel left (for `F_OFD_GETLK`: the conflicting lock, or
/// `F_UNLCK`).
#[allow(unsafe_code)]
fn ofd_lock(fd: BorrowedFd<'_>, cmd: libc::c_int, l_type: libc::c_int) -> Result<libc::c_int, Errno> {
    // SAFETY: `flock` is a plain C struct of integers, for which all zeroes
    // is a valid value (and `l_pid` must be 0 for OFD locks).
    let mut lock: libc::flock = unsafe { std::mem::zeroed() };
    lock.l_type = l_type as libc::c_short;
    lock.l_whence = libc::SEEK_SET as libc::c_short;
    // SAFETY: `fd` is an open descriptor for the duration of the call;
    // `lock` is a valid, exclusively borrowed `flock` that the kernel reads
    // (and, for F_OFD_GETLK, writes).
    if unsafe { libc::fcntl(fd.as_raw_fd(), cmd, &mut lock) } == -1 {
        return Err(Errno::from_raw_os_error(io::Error::last_os_error().raw_os_error().unwrap_or(0)));
    }
    Ok(libc::c_int::from(lock.l_type))
}

/// What a name refers to, seen from an [`Object`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Named {
    /// This object.
    This,
    /// Another object.
    Other,
    /// Nothing: no such name.
    Nothing,
    /// Unknown: looking failed for another reason.
    Unknown,
}

/// The write lock on an [`Object`].
#[derive(Debug)]
pub(crate) struct LockGuard<'a> {
    object: &'a Object,
    /// The descriptor open for writing that holds the lock, if the object's
    /// own is read-only.
    reopened: Option<OwnedFd>,
}

impl LockGuard<'_> {
    fn fd(&self) -> BorrowedFd<'_> {
        self.reopened.as_ref().map_or(self.object.fd.as_fd(), |fd| fd.as_fd())
    }
}

impl LockGuard<'_> {
    /// Sets (or, after a removal that failed, clears) the header's removal
    /// mark (its reserved word, which other readers ignore), through the
    /// locked descriptor, before the name goes: a claim made meanwhile in
    /// the segment (see `Segment::still_named`) then knows the name went
    /// with a removal, not with its creator's clean exit. Opens do not look
    /// at it (a state of POISONED here failed the opens that raced a
    /// restart, review 2026-12-03). Best effort.
    pub(crate) fn mark_removed(&self, removed: bool) {
        let at = shm_core::format::header::RESERVED as u64;
        let _ = rustix::io::pwrite(self.fd(), &u32::from(removed).to_ne_bytes(), at);
    }

    /// Unlinks `name` if it still refers to the locked object; `Ok(false)`
    /// (and nothing removed) if it does not. The window left open is
    /// described in the module docs.
    ///
    /// `first` runs after the check and before the unlink: it removes what
    /// is named after the object (its word semaphores). While the name
    /// still refers to this object no other segment can have it (a creator
    /// links only a free name), so whatever `first` removes belongs to this
    /// segment's life; after the unlink a new segment may take the name at
    /// once, and nothing named after it is touched any more.
    pub(crate) fn unlink_if_at(&self, name: &str, first: impl FnOnce()) -> io::Result<bool> {
        if !self.object.is_at(name) {
            return Ok(false);
        }
        first();
        match rustix::fs::unlink(path(name)) {
            Ok(()) => Ok(true),
            Err(Errno::NOENT) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }
}

impl Drop for LockGuard<'_> {
    fn drop(&mut self) {
        // Also for a guard that never got the lock: unlocking what one does
        // not hold is a no-op.
        let _ = ofd_lock(self.fd(), libc::F_OFD_SETLK, libc::F_UNLCK);
    }
}

/// Whether `uid` may own an object we write to: this user, root, or the
/// one other user the caller accepts.
fn acceptable_owner(uid: u32, also: Option<u32>) -> bool {
    uid == 0 || uid == rustix::process::geteuid().as_raw() || Some(uid) == also
}

fn check(stat: &Stat, access: Access, also: Option<u32>) -> Result<(), Refusal> {
    if FileType::from_raw_mode(stat.st_mode) != FileType::RegularFile {
        return Err(Refusal::NotRegular);
    }
    if access == Access::ReadWrite && !acceptable_owner(stat.st_uid, also) {
        return Err(Refusal::Owner { uid: stat.st_uid });
    }
    Ok(())
}

/// Checks the file behind named semaphore `name` (`/name`: the file is
/// `/dev/shm/sem.name`) before `sem_open` maps it: not a symlink, a regular
/// file of ours, root's or `also`'s, at least `min_size` bytes (glibc maps a `sem_t`
/// without checking the size: an empty file would fault on first use).
/// Returns the open file (to `fchmod` it).
pub(crate) fn check_semaphore_file(name: &str, min_size: u64, also: Option<u32>) -> Result<OwnedFd, ObjectError> {
    let sem_name = format!("/sem.{}", name.trim_start_matches('/'));
    let object = Object::open_accepting(&sem_name, Access::ReadWrite, also)?;
    let size = object.size().map_err(ObjectError::Os)?;
    if size < min_size {
        return Err(ObjectError::Refused(Refusal::TooSmall { size }));
    }
    Ok(object.fd)
}

impl ObjectError {
    /// As an `io::Error`: the OS error as is (callers match on its
    /// number), or one that says what was refused.
    pub(crate) fn into_io(self, what: &str) -> io::Error {
        match self {
            Self::Os(e) => e.into(),
            Self::Refused(r) => io::Error::new(io::ErrorKind::PermissionDenied, format!("{what} {r}")),
        }
    }
}
