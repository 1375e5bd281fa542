//! Waiting on a word of the segment with a shared futex.

use std::time::Duration;

use rustix::thread::futex;
use shm_core::wait::{HostDeadline, DEFAULT_SPIN_LIMIT};
use shm_core::{AtomicU32, CountingSemaphore, Wait};

/// How long one futex sleep lasts at most, by default.
pub const DEFAULT_LIVENESS_INTERVAL: Duration = Duration::from_millis(100);

/// The in-segment counting semaphore, sleeping on a futex.
pub type FutexSemaphore<'a> = CountingSemaphore<'a, FutexWait>;

/// A [`Wait`] strategy for Linux processes: spin a bounded number of times,
/// then sleep in `futex(FUTEX_WAIT)` on the shared word (not
/// `FUTEX_PRIVATE`, so it works across processes); liveness of a peer by
/// `kill(pid, 0)`. One sleep lasts at most the liveness interval (100 ms by
/// default), so a waiter notices a dead peer within about that long.
///
/// ```
/// use shm_posix::FutexWait;
/// use shm_core::Wait;
/// assert_eq!(FutexWait::new().self_id(), std::process::id());
/// ```
#[derive(Debug, Clone, Copy)]
pub struct FutexWait {
    spin: u32,
    slice: Duration,
}

impl Default for FutexWait {
    fn default() -> Self {
        Self::new()
    }
}

impl FutexWait {
    /// The default strategy: spin [`DEFAULT_SPIN_LIMIT`] times, then sleep.
    pub const fn new() -> Self {
        Self { spin: DEFAULT_SPIN_LIMIT, slice: DEFAULT_LIVENESS_INTERVAL }
    }

    /// A strategy that spins `spin` times before sleeping. 0 sleeps at once
    /// (lowest CPU use); a large value keeps latency low while traffic flows
    /// at the cost of a busy core.
    pub const fn with_spin(spin: u32) -> Self {
        Self { spin, slice: DEFAULT_LIVENESS_INTERVAL }
    }

    /// Wake at least every `interval` while sleeping to check that the peer
    /// is alive (shorter: dead peers found sooner, more idle wake-ups).
    pub const fn with_liveness_interval(mut self, interval: Duration) -> Self {
        self.slice = interval;
        self
    }
}

impl Wait for FutexWait {
    type Deadline = HostDeadline;

    fn deadline(&self, timeout: Option<Duration>) -> HostDeadline {
        HostDeadline::new(timeout)
    }

    fn expired(&self, deadline: &mut HostDeadline) -> bool {
        deadline.expired()
    }

    fn park(&self, word: &AtomicU32, expected: u32, deadline: &mut HostDeadline) {
        let sleep = deadline.slice(self.slice);
        if sleep.is_zero() {
            return;
        }
        let timeout = rustix::time::Timespec { tv_sec: sleep.as_secs() as i64, tv_nsec: sleep.subsec_nanos() as _ };
        // EAGAIN (the word changed), ETIMEDOUT and EINTR all mean "look
        // again"; the caller re-checks the word, the peer and the deadline.
        let _ = futex::wait(word, futex::Flags::empty(), expected, Some(&timeout));
    }

    fn wake(&self, word: &AtomicU32, count: u32) {
        let _ = futex::wake(word, futex::Flags::empty(), count);
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

/// Whether process `pid` is alive: it exists (`kill(pid, 0)`; a process of
/// another user counts) and is not a zombie (a process that exited but was
/// not yet reaped by its parent, per `/proc/PID/stat`). A PID recycled by an
/// unrelated process reads as alive: liveness errs on the side of waiting.
pub fn pid_alive(pid: u32) -> bool {
    let Some(raw) = i32::try_from(pid).ok().and_then(rustix::process::Pid::from_raw) else {
        return false;
    };
    if matches!(rustix::process::test_kill_process(raw), Err(rustix::io::Errno::SRCH)) {
        return false;
    }
    !is_zombie(pid)
}

/// Whether `/proc/PID/stat` says the process exited and awaits reaping.
/// No heap allocation: waiters call this on their slow path.
fn is_zombie(pid: u32) -> bool {
    use std::io::Write;
    let mut path = [0u8; 32];
    let mut cursor = &mut path[..];
    if write!(cursor, "/proc/{pid}/stat").is_err() {
        return false;
    }
    let len = 32 - cursor.len();
    let Ok(path) = std::str::from_utf8(&path[..len]) else { return false };
    let Ok(fd) =
        rustix::fs::open(path, rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC, rustix::fs::Mode::empty())
    else {
        return false;
    };
    // "pid (comm) S ...": the state follows the last ')'; comm is at most
    // 16 bytes, so the first 128 bytes hold it.
    let mut stat = [0u8; 128];
    let Ok(n) = rustix::io::read(&fd, &mut stat) else { return false };
    let stat = &stat[..n];
    let state = stat.iter().rposition(|&b| b == b')').and_then(|i| stat.get(i + 2));
    matches!(state, Some(b'Z' | b'X'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use shm_core::conformance;
    use shm_core::semaphore::SemaphoreWords;

    #[test]
    fn futex_semaphore_passes_the_conformance_suite() {
        let words = SemaphoreWords::new(0);
        conformance::semaphore_basics(&FutexSemaphore::new(&words, FutexWait::new()));
        let sleepy = FutexWait::with_spin(0);
        conformance::semaphore_threads(&FutexSemaphore::new(&words, sleepy), &FutexSemaphore::new(&words, sleepy));
    }

    #[test]
    fn liveness_of_processes() {
        assert!(pid_alive(std::process::id()));
        assert!(!pid_alive(0));
        assert!(!pid_alive(u32::MAX));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert!(!pid_alive(pid), "a reaped child is dead");
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        let start = std::time::Instant::now();
        while pid_alive(pid) {
            assert!(start.elapsed() < Duration::from_secs(20), "an exited, unreaped child is a zombie: dead");
            std::thread::sleep(Duration::from_millis(1));
        }
        child.wait().unwrap();
    }
}
