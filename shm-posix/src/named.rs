//! POSIX named semaphores (`sem_open`), for interop with C programs and for
//! platforms without a futex.
//!
//! rustix has no `sem_*` calls; this module is the one place that calls
//! `libc`.

#![allow(unsafe_code)]

use std::collections::HashMap;
use std::ffi::CString;
use std::io;
use std::sync::Mutex;
use std::time::Duration;

use rustix::time::{clock_gettime, ClockId};
use shm_core::wait::HostDeadline;
use shm_core::{AtomicU32, ErrorKind, HasErrorKind, Semaphore, Wait};

use crate::name::canonical_name;
use crate::object::check_semaphore_file;
use crate::pacing::{Pacing, POLL_SLEEP};

/// Bytes glibc maps for a semaphore: a smaller file is refused.
const SEM_SIZE: u64 = std::mem::size_of::<libc::sem_t>() as u64;

/// A POSIX named semaphore: `sem_open(name, …)`.
///
/// Its count lives in the kernel object `/dev/shm/sem.NAME`, not in a
/// segment, so C programs using `sem_open` can share it.
///
/// ```
/// use std::time::Duration;
/// use shm_core::Semaphore;
/// use shm_posix::NamedSemaphore;
///
/// let name = format!("/doc-sem-{}", std::process::id());
/// let sem = NamedSemaphore::create(&name, 0).unwrap(); // unlinked on drop
/// sem.post().unwrap();
/// sem.wait_timeout(Duration::from_millis(10)).unwrap();
/// assert!(!sem.try_wait().unwrap());
/// ```
///
/// # References
/// - [`sem_overview(7)`](https://man7.org/linux/man-pages/man7/sem_overview.7.html)
#[derive(Debug)]
pub struct NamedSemaphore {
    sem: *mut libc::sem_t,
    name: CString,
    owner: bool,
}

// SAFETY: the sem_* functions are thread-safe on one `sem_t` (POSIX).
unsafe impl Send for NamedSemaphore {}
// SAFETY: as above.
unsafe impl Sync for NamedSemaphore {}

fn errno() -> i32 {
    io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

impl NamedSemaphore {
    /// `sem_open`; an existing file must belong to us, root or `also`.
    fn open_raw(name: &str, oflag: i32, mode: u32, initial: u32, owner: bool, also: Option<u32>) -> io::Result<Self> {
        let canonical = canonical_name(name).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let c_name = CString::new(canonical.clone()).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let create = oflag & libc::O_CREAT != 0;
        if !create {
            // glibc maps whatever file has the name, without checking its
            // size or owner: look first (see `check_semaphore_file`).
            check_semaphore_file(&canonical, SEM_SIZE, also)
                .map_err(|e| e.into_io(&format!("semaphore {canonical}")))?;
        }
        // SAFETY: `c_name` is a NUL-terminated string that outlives the
        // call; with O_CREAT, sem_open reads a mode_t and an unsigned int
        // value from its variadic arguments, which we pass as c_uint.
        let sem = unsafe { libc::sem_open(c_name.as_ptr(), oflag, mode as libc::c_uint, initial as libc::c_uint) };
        if sem == libc::SEM_FAILED {
            return Err(io::Error::last_os_error());
        }
        let made = Self { sem, name: c_name, owner };
        if create {
            // O_EXCL: we made this file. umask may have cleared bits the
            // caller asked for (a group sharing the segment): set them.
            let fd = check_semaphore_file(&canonical, SEM_SIZE, also)
                .map_err(|e| e.into_io(&format!("semaphore {canonical}")))?;
            rustix::fs::fchmod(&fd, rustix::fs::Mode::from_raw_mode(mode))?;
        }
        Ok(made)
    }

    /// Creates semaphore `name` with count `initial` (mode 0600); fails if
    /// it exists. Unlinked when this handle drops.
    pub fn create(name: &str, initial: u32) -> io::Result<Self> {
        Self::open_raw(name, libc::O_CREAT | libc::O_EXCL, 0o600, initial, true, None)
    }

    /// Opens existing semaphore `name`. Its file must be a regular file (not
    /// a symlink) of this user or root, large enough for a semaphore: a file
    /// planted by someone else is refused instead of mapped (an empty one
    /// would kill us with SIGBUS on first use).
    pub fn open(name: &str) -> io::Result<Self> {
        Self::open_raw(name, 0, 0, 0, false, None)
    }

    /// Opens semaphore `name`, creating it with count 0 and mode 0600 if it
    /// does not exist. Not unlinked on drop.
    pub fn open_or_create(name: &str) -> io::Result<Self> {
        Self::open_or_create_with_mode(name, 0o600)
    }

    /// Opens semaphore `name` as [`open`](Self::open) does, or creates it
    /// (`O_CREAT|O_EXCL`, count 0, exactly `mode`, whatever the umask) if
    /// it does not exist. Not unlinked on drop.
    pub fn open_or_create_with_mode(name: &str, mode: u32) -> io::Result<Self> {
        Self::open_or_create_accepting(name, mode, None)
    }

    /// As [`open_or_create_with_mode`](Self::open_or_create_with_mode),
    /// and an existing file may belong to user `also` too.
    fn open_or_create_accepting(name: &str, mode: u32, also: Option<u32>) -> io::Result<Self> {
        // The name may be created or removed by someone else between our two
        // attempts: a few rounds settle it.
        let mut last = io::Error::from(io::ErrorKind::NotFound);
        for _ in 0..4 {
            match Self::open_raw(name, libc::O_CREAT | libc::O_EXCL, mode, 0, false, None) {
                Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {}
                other => return other,
            }
            match Self::open_raw(name, 0, 0, 0, false, also) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => last = e,
                other => return other,
            }
        }
        Err(last)
    }

    /// Removes semaphore `name` (`sem_unlink`); open handles keep working.
    pub fn unlink(name: &str) -> io::Result<()> {
        let canonical = canonical_name(name).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let name = CString::new(canonical).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        // SAFETY: `name` is NUL-terminated and outlives the call.
        if unsafe { libc::sem_unlink(name.as_ptr()) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// The semaphore's name.
    pub fn name(&self) -> &str {
        self.name.to_str().unwrap_or_default()
    }

    fn timed_wait(&self, timeout: Duration) -> Result<(), NamedSemaphoreError> {
        let now = clock_gettime(ClockId::Realtime);
        let total = now.tv_nsec as u64 + timeout.subsec_nanos() as u64;
        let abs = libc::timespec {
            tv_sec: now
                .tv_sec
                .saturating_add(timeout.as_secs().min(i64::MAX as u64 / 2) as i64 + (total / 1_000_000_000) as i64),
            tv_nsec: (total % 1_000_000_000) as _,
        };
        loop {
            // SAFETY: `self.sem` came from a successful sem_open and is
            // closed only in Drop; `abs` is a valid timespec.
            if unsafe { libc::sem_timedwait(self.sem, &abs) } == 0 {
                return Ok(());
            }
            match errno() {
                libc::EINTR => continue,
                libc::ETIMEDOUT => return Err(NamedSemaphoreError::Timeout),
                e => return Err(NamedSemaphoreError::Os(e)),
            }
        }
    }
}

/// A named-semaphore operation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum NamedSemaphoreError {
    /// The count did not become positive within the timeout.
    Timeout,
    /// `post` would push the count past the system's `SEM_VALUE_MAX`.
    Overflow,
    /// The system call failed with this `errno`.
    Os(i32),
}

impl std::fmt::Display for NamedSemaphoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Timeout => {
                write!(f, "semaphore wait timed out: nothing posted it in time; wait again or check the posting side")
            }
            Self::Overflow => write!(f, "semaphore count would overflow: the waiting side is not consuming posts"),
            Self::Os(e) => write!(
                f,
                "semaphore system call failed: {}; see sem_overview(7)",
                std::io::Error::from_raw_os_error(*e)
            ),
        }
    }
}

impl std::error::Error for NamedSemaphoreError {}

impl HasErrorKind for NamedSemaphoreError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Timeout => ErrorKind::Timeout,
            Self::Overflow => ErrorKind::InvalidArgument,
            Self::Os(_) => ErrorKind::Incompatible,
        }
    }
}

impl Semaphore for NamedSemaphore {
    type Error = NamedSemaphoreError;

    fn post(&self) -> Result<(), NamedSemaphoreError> {
        // SAFETY: see `timed_wait`.
        if unsafe { libc::sem_post(self.sem) } != 0 {
            return Err(match errno() {
                libc::EOVERFLOW => NamedSemaphoreError::Overflow,
                e => NamedSemaphoreError::Os(e),
            });
        }
        Ok(())
    }

    fn try_wait(&self) -> Result<bool, NamedSemaphoreError> {
        loop {
            // SAFETY: see `timed_wait`.
            if unsafe { libc::sem_trywait(self.sem) } == 0 {
                return Ok(true);
            }
            match errno() {
                libc::EINTR => continue,
                libc::EAGAIN => return Ok(false),
                e => return Err(NamedSemaphoreError::Os(e)),
            }
        }
    }

    fn wait_timeout(&self, timeout: Duration) -> Result<(), NamedSemaphoreError> {
        self.timed_wait(timeout)
    }

    fn wait(&self) -> Result<(), NamedSemaphoreError> {
        loop {
            // SAFETY: see `timed_wait`.
            if unsafe { libc::sem_wait(self.sem) } == 0 {
                return Ok(());
            }
            match errno() {
                libc::EINTR => continue,
                e => return Err(NamedSemaphoreError::Os(e)),
            }
        }
    }
}

impl Drop for NamedSemaphore {
    fn drop(&mut self) {
        // SAFETY: `self.sem` came from sem_open and is closed exactly once.
        unsafe { libc::sem_close(self.sem) };
        if self.owner {
            // SAFETY: `self.name` is NUL-terminated.
            unsafe { libc::sem_unlink(self.name.as_ptr()) };
        }
    }
}

/// A [`Wait`] strategy that sleeps on POSIX named semaphores instead of
/// futexes: one semaphore per waited-on word, named
/// `SEGMENT.wOFFSET` after the segment and the word's offset, created on
/// first use and removed with the segment ([`crate::Segment`] does it).
///
/// The semaphores get the segment's mode and owner: in a segment another
/// user shares with this one ([`crate::Segment::open_owned_by`]), they are
/// opened, never created, so let that user (the segment's creator) make
/// its `NamedSemaphoreWait` first; until then waits on this side poll.
///
/// For platforms without a futex and for peers written against named
/// semaphores. A wake posts the word's semaphore; a sleeper takes one post,
/// then re-checks its word, so a stray post costs a spare look, never a lost
/// or false wake-up.
#[derive(Debug)]
pub struct NamedSemaphoreWait {
    segment: String,
    mode: u32,
    owner_uid: u32,
    base: usize,
    len: usize,
    pacing: Pacing,
    sems: Mutex<HashMap<usize, NamedSemaphore>>,
}

impl NamedSemaphoreWait {
    /// The strategy for `segment` (its name and mapping). Opens (creating
    /// if needed, with the segment's mode, so whoever may use the segment
    /// may use them) the semaphore of every word a channel of the segment
    /// may sleep on, so waits and wakes never allocate or open files later.
    ///
    /// A word whose semaphore cannot be opened (refused: see
    /// [`NamedSemaphore::open`]) is polled instead; use
    /// [`try_new`](Self::try_new) to be told.
    pub fn new(segment: &crate::Segment) -> Self {
        let mut sems = HashMap::new();
        for offset in segment.wait_words() {
            if let Ok(sem) = Self::open_word(segment.name(), segment.mode(), segment.owner_uid(), offset) {
                sems.insert(offset, sem);
            }
        }
        Self::with_sems(segment, sems)
    }

    /// As [`new`](Self::new), but fails if the semaphore of any word
    /// cannot be opened or created, instead of polling that word.
    pub fn try_new(segment: &crate::Segment) -> io::Result<Self> {
        let mut sems = HashMap::new();
        for offset in segment.wait_words() {
            sems.insert(offset, Self::open_word(segment.name(), segment.mode(), segment.owner_uid(), offset)?);
        }
        Ok(Self::with_sems(segment, sems))
    }

    /// The semaphore of the word at `offset`: created with the segment's
    /// mode, or opened if it belongs to us, root or the segment's owner. In
    /// another user's segment we only open (its owner creates them, so that
    /// every user of the segment accepts them); a missing one is opened
    /// later, on first use.
    fn open_word(segment: &str, mode: u32, owner_uid: u32, offset: usize) -> io::Result<NamedSemaphore> {
        let name = word_semaphore_name(segment, offset);
        if owner_uid != rustix::process::geteuid().as_raw() {
            return NamedSemaphore::open_raw(&name, 0, 0, 0, false, Some(owner_uid));
        }
        NamedSemaphore::open_or_create_accepting(&name, mode, Some(owner_uid))
    }

    fn with_sems(segment: &crate::Segment, sems: HashMap<usize, NamedSemaphore>) -> Self {
        let region = segment.region();
        Self {
            segment: segment.name().to_owned(),
            mode: segment.mode(),
            owner_uid: segment.owner_uid(),
            base: region.as_ptr() as usize,
            len: region.len(),
            pacing: Pacing::new(),
            sems: Mutex::new(sems),
        }
    }

    /// Spin at most `spin` times before sleeping on the semaphore (fewer
    /// while spinning does not pay, as with
    /// [`FutexWait`](crate::FutexWait)).
    pub fn with_spin(mut self, spin: u32) -> Self {
        self.pacing.spin = spin;
        self
    }

    /// Spin `spin` times before every sleep, whether or not spinning paid
    /// lately (see [`FutexWait::with_steady_spin`](crate::FutexWait::with_steady_spin)).
    pub fn with_steady_spin(mut self, spin: u32) -> Self {
        self.pacing.spin = spin;
        self.pacing.adaptive = false;
        self
    }

    fn with_sem<R>(&self, word: &AtomicU32, f: impl FnOnce(&NamedSemaphore) -> R) -> Option<R> {
        let offset = (word as *const AtomicU32 as usize).checked_sub(self.base).filter(|&o| o < self.len)?;
        let mut sems = self.sems.lock().unwrap_or_else(|e| e.into_inner());
        if let std::collections::hash_map::Entry::Vacant(e) = sems.entry(offset) {
            let sem = Self::open_word(&self.segment, self.mode, self.owner_uid, offset).ok()?;
            e.insert(sem);
        }
        sems.get(&offset).map(f)
    }
}

/// The name of the named semaphore for the word at `offset` of `segment`.
pub fn word_semaphore_name(segment: &str, offset: usize) -> String {
    format!("{}.w{offset}", segment.trim_start_matches('/'))
}

impl Wait for NamedSemaphoreWait {
    crate::pacing::wait_by_pacing!();

    fn park(&self, word: &AtomicU32, expected: u32, deadline: &mut HostDeadline) {
        // SYNC POINT: as `wait_for`'s loads (a cheap early return; the caller
        // re-checks anyway).
        if word.load(std::sync::atomic::Ordering::Acquire) != expected {
            return;
        }
        let Some(left) = self.pacing.sleep(deadline) else { return };
        // A semaphore that cannot sleep (an OS error other than a timeout)
        // and a word outside the segment both degrade to polling with a
        // short sleep, never to a busy loop.
        let slept = self.with_sem(word, |sem| sem.wait_timeout(left));
        if !matches!(slept, Some(Ok(()) | Err(NamedSemaphoreError::Timeout))) {
            std::thread::sleep(left.min(POLL_SLEEP));
        }
    }

    fn wake(&self, word: &AtomicU32, count: u32) {
        let _ = self.with_sem(word, |sem| {
            for _ in 0..count.min(64) {
                let _ = sem.post();
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shm_core::conformance;

    #[test]
    fn named_semaphore_passes_the_conformance_suite() {
        let name = format!("/shm-test-named-{}", std::process::id());
        let sem = NamedSemaphore::create(&name, 0).unwrap();
        conformance::semaphore_basics(&sem);
        let other = NamedSemaphore::open(&name).unwrap();
        conformance::semaphore_threads(&sem, &other);
        drop(other);
        drop(sem);
        assert_eq!(NamedSemaphore::open(&name).unwrap_err().raw_os_error(), Some(libc::ENOENT), "unlinked on drop");
    }

    #[test]
    fn create_refuses_an_existing_name() {
        let name = format!("/shm-test-named-excl-{}", std::process::id());
        let _sem = NamedSemaphore::create(&name, 0).unwrap();
        assert_eq!(NamedSemaphore::create(&name, 0).unwrap_err().raw_os_error(), Some(libc::EEXIST));
        assert_eq!(NamedSemaphore::create("a/b", 0).unwrap_err().kind(), io::ErrorKind::InvalidInput);
    }
}
