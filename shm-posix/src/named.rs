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
use shm_core::{AtomicU32, Semaphore, SemaphoreError, Wait};

use crate::futex::pid_alive;
use crate::name::canonical_name;

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
    fn open_raw(name: &str, oflag: i32, initial: u32, owner: bool) -> io::Result<Self> {
        let canonical = canonical_name(name).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let name = CString::new(canonical).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        // SAFETY: `name` is a NUL-terminated string that outlives the call;
        // with O_CREAT, sem_open reads a mode_t and an unsigned int value
        // from its variadic arguments, which we pass as c_uint.
        let sem = unsafe { libc::sem_open(name.as_ptr(), oflag, 0o600 as libc::c_uint, initial as libc::c_uint) };
        if sem == libc::SEM_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Self { sem, name, owner })
    }

    /// Creates semaphore `name` with count `initial` (mode 0600); fails if
    /// it exists. Unlinked when this handle drops.
    pub fn create(name: &str, initial: u32) -> io::Result<Self> {
        Self::open_raw(name, libc::O_CREAT | libc::O_EXCL, initial, true)
    }

    /// Opens existing semaphore `name`.
    pub fn open(name: &str) -> io::Result<Self> {
        Self::open_raw(name, 0, 0, false)
    }

    /// Opens semaphore `name`, creating it with count 0 if it does not exist.
    /// Not unlinked on drop.
    pub fn open_or_create(name: &str) -> io::Result<Self> {
        Self::open_raw(name, libc::O_CREAT, 0, false)
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

    fn timed_wait(&self, timeout: Duration) -> Result<(), SemaphoreError> {
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
                libc::ETIMEDOUT => return Err(SemaphoreError::Timeout),
                e => return Err(SemaphoreError::Os(e)),
            }
        }
    }
}

impl Semaphore for NamedSemaphore {
    type Error = SemaphoreError;

    fn post(&self) -> Result<(), SemaphoreError> {
        // SAFETY: see `timed_wait`.
        if unsafe { libc::sem_post(self.sem) } != 0 {
            return Err(match errno() {
                libc::EOVERFLOW => SemaphoreError::Overflow,
                e => SemaphoreError::Os(e),
            });
        }
        Ok(())
    }

    fn try_wait(&self) -> Result<bool, SemaphoreError> {
        loop {
            // SAFETY: see `timed_wait`.
            if unsafe { libc::sem_trywait(self.sem) } == 0 {
                return Ok(true);
            }
            match errno() {
                libc::EINTR => continue,
                libc::EAGAIN => return Ok(false),
                e => return Err(SemaphoreError::Os(e)),
            }
        }
    }

    fn wait_timeout(&self, timeout: Duration) -> Result<(), SemaphoreError> {
        self.timed_wait(timeout)
    }

    fn wait(&self) -> Result<(), SemaphoreError> {
        loop {
            // SAFETY: see `timed_wait`.
            if unsafe { libc::sem_wait(self.sem) } == 0 {
                return Ok(());
            }
            match errno() {
                libc::EINTR => continue,
                e => return Err(SemaphoreError::Os(e)),
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
/// For platforms without a futex and for peers written against named
/// semaphores. A wake posts the word's semaphore; a sleeper takes one post,
/// then re-checks its word, so a stray post costs a spare look, never a lost
/// or false wake-up.
#[derive(Debug)]
pub struct NamedSemaphoreWait {
    segment: String,
    base: usize,
    len: usize,
    spin: u32,
    sems: Mutex<HashMap<usize, NamedSemaphore>>,
}

impl NamedSemaphoreWait {
    /// The strategy for `segment` (its name and mapping). Opens (creating
    /// if needed) the semaphore of every word a channel of the segment may
    /// sleep on, so waits and wakes never allocate or open files later.
    pub fn new(segment: &crate::Segment) -> Self {
        let region = segment.region();
        let sems = crate::segment::wait_word_offsets(segment)
            .into_iter()
            .filter_map(|offset| {
                let name = word_semaphore_name(segment.name(), offset);
                NamedSemaphore::open_or_create(&name).ok().map(|sem| (offset, sem))
            })
            .collect();
        Self {
            segment: segment.name().to_owned(),
            base: region.as_ptr() as usize,
            len: region.len(),
            spin: shm_core::wait::DEFAULT_SPIN_LIMIT,
            sems: Mutex::new(sems),
        }
    }

    /// Spin `spin` times before sleeping on the semaphore.
    pub fn with_spin(mut self, spin: u32) -> Self {
        self.spin = spin;
        self
    }

    fn with_sem<R>(&self, word: &AtomicU32, f: impl FnOnce(&NamedSemaphore) -> R) -> Option<R> {
        let offset = (word as *const AtomicU32 as usize).checked_sub(self.base).filter(|&o| o < self.len)?;
        let mut sems = self.sems.lock().unwrap_or_else(|e| e.into_inner());
        if let std::collections::hash_map::Entry::Vacant(e) = sems.entry(offset) {
            let sem = NamedSemaphore::open_or_create(&word_semaphore_name(&self.segment, offset)).ok()?;
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
    type Deadline = HostDeadline;

    fn deadline(&self, timeout: Option<Duration>) -> HostDeadline {
        HostDeadline::new(timeout)
    }

    fn expired(&self, deadline: &mut HostDeadline) -> bool {
        deadline.expired()
    }

    fn park(&self, word: &AtomicU32, expected: u32, deadline: &mut HostDeadline) {
        // SYNC POINT: as `wait_for`'s loads (a cheap early return; the caller
        // re-checks anyway).
        if word.load(std::sync::atomic::Ordering::Acquire) != expected {
            return;
        }
        let left = deadline.slice(crate::futex::DEFAULT_LIVENESS_INTERVAL);
        if left.is_zero() {
            return;
        }
        let slept = self.with_sem(word, |sem| {
            let _ = sem.wait_timeout(left);
        });
        if slept.is_none() {
            std::thread::yield_now(); // the word is not in the segment: poll
        }
    }

    fn wake(&self, word: &AtomicU32, count: u32) {
        let _ = self.with_sem(word, |sem| {
            for _ in 0..count.min(64) {
                let _ = sem.post();
            }
        });
    }

    fn spin_limit(&self) -> u32 {
        self.spin
    }

    fn self_id(&self) -> u32 {
        std::process::id()
    }

    fn is_alive(&self, id: u32) -> bool {
        pid_alive(id)
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
