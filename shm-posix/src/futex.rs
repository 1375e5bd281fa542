//! Waiting on a word of the segment with a shared futex.

use std::time::Duration;

use rustix::thread::futex;
use shm_core::wait::HostDeadline;
use shm_core::{AsNativeWord, AtomicU32, CountingSemaphore, Wait};

use crate::pacing::{Pacing, POLL_SLEEP};

/// How long one futex sleep lasts at most, by default.
pub const DEFAULT_LIVENESS_INTERVAL: Duration = Duration::from_millis(100);

/// How many times the host strategies ([`FutexWait`],
/// [`NamedSemaphoreWait`](crate::NamedSemaphoreWait)) spin before parking,
/// unless told otherwise: four times the core's
/// [`DEFAULT_SPIN_LIMIT`](shm_core::wait::DEFAULT_SPIN_LIMIT). About 40 µs
/// on a core whose `pause` takes 10 ns, up to about 160 µs where it takes
/// 40 ns.
///
/// Long enough to outlast the scheduler on a loaded machine: with a busy
/// thread on every CPU, a woken process waited about 20 µs for its CPU
/// (`shm-bench --busy`, `perf sched latency`, 2-vCPU VM). A waiter that
/// parks before its peer got its CPU needs a wake-up of its own, and every
/// hand-over then costs two such waits: with 1024 spins the default mailbox
/// fell to a pipe pair's 42 µs round trip in 3 of 8 `--busy` runs, with
/// 4096 in none of 8 (0.64–0.74 µs). Where spinning does not pay (a shared
/// CPU, a peer that answers late) the adaptive spin fades after a few
/// waits, so the longer limit costs little there. Broadcast readers and
/// semaphore waiters, who may be many on few CPUs, spin at most the core's
/// default whatever the strategy says.
pub const HOST_SPIN_LIMIT: u32 = 4 * shm_core::wait::DEFAULT_SPIN_LIMIT;

/// The in-segment counting semaphore, sleeping on a futex.
pub type FutexSemaphore<'a> = CountingSemaphore<'a, FutexWait>;

/// A [`Wait`] strategy for Linux processes: spin a bounded number of times,
/// then sleep in `futex(FUTEX_WAIT)` on the shared word (not
/// `FUTEX_PRIVATE`, so it works across processes); liveness of a peer by
/// `kill(pid, 0)`. One sleep lasts at most the liveness interval (100 ms by
/// default), so a waiter notices a dead peer within about that long.
///
/// The spin adapts ([`Wait::adaptive_spin`]): each endpoint spins while
/// spinning pays, and parks at once after a few waits where it did not, as
/// when both processes share one CPU (there every spin is time the peer
/// cannot run). Once spinning has stopped paying, a wait yields its CPU
/// (`sched_yield`) a few times before it parks ([`Wait::yield_now`]): on a
/// shared CPU that runs the peer at once, and its answer needs no futex
/// wake-up, so a round trip costs two yields instead of two futex waits and
/// two wakes. Yielding stops where it does not pay (a yield that gave the
/// CPU to some other busy thread for its time slice).
/// [`with_steady_spin`](Self::with_steady_spin) spins the same every time
/// and never yields, for processes on CPUs of their own.
///
/// ```
/// use shm_posix::FutexWait;
/// use shm_core::Wait;
/// assert_eq!(FutexWait::new().self_id(), std::process::id());
/// ```
#[derive(Debug, Clone, Copy)]
pub struct FutexWait {
    pacing: Pacing,
}

impl Default for FutexWait {
    fn default() -> Self {
        Self::new()
    }
}

impl FutexWait {
    /// The default strategy: spin [`HOST_SPIN_LIMIT`] times (fewer while
    /// spinning does not pay), yield a few times (likewise), then sleep.
    pub const fn new() -> Self {
        Self { pacing: Pacing::new() }
    }

    /// A strategy that spins at most `spin` times before sleeping (fewer
    /// while spinning does not pay). 0 sleeps at once (lowest CPU use); a
    /// large value keeps latency low while traffic flows at the cost of a
    /// busy core.
    pub const fn with_spin(spin: u32) -> Self {
        Self { pacing: Pacing::with_spin(spin) }
    }

    /// A strategy that spins `spin` times before every sleep, whether or
    /// not spinning paid lately: for processes pinned to CPUs of their own,
    /// where a peer never waits for this side's CPU.
    ///
    /// ```
    /// use shm_posix::FutexWait;
    /// use shm_core::Wait;
    /// let wait = FutexWait::with_steady_spin(4096);
    /// assert_eq!((wait.spin_limit(), wait.adaptive_spin()), (4096, false));
    /// assert!(FutexWait::new().adaptive_spin());
    /// ```
    pub const fn with_steady_spin(spin: u32) -> Self {
        let mut pacing = Pacing::with_spin(spin);
        pacing.adaptive = false;
        Self { pacing }
    }

    /// Wake at least every `interval` while sleeping to check that the peer
    /// is alive (shorter: dead peers found sooner, more idle wake-ups).
    /// `Duration::MAX` sleeps until woken or the deadline, as long as it
    /// takes.
    pub const fn with_liveness_interval(mut self, interval: Duration) -> Self {
        self.pacing.slice = interval;
        self
    }
}

impl Wait for FutexWait {
    crate::pacing::wait_by_pacing!();

    fn park(&self, word: &AtomicU32, expected: u32, deadline: &mut HostDeadline) {
        let Some(sleep) = self.pacing.sleep(deadline) else { return };
        let slept = futex::wait(word.as_native_word(), futex::Flags::empty(), expected, Some(&timespec(sleep)));
        if let Some(pause) = fallback_sleep(slept, sleep) {
            std::thread::sleep(pause);
        }
    }

    fn wake(&self, word: &AtomicU32, count: u32) {
        let _ = futex::wake(word.as_native_word(), futex::Flags::empty(), wake_count(count));
    }
}

/// `count` as `FUTEX_WAKE` reads it: the kernel takes the count as a C
/// `int`, so `u32::MAX` ("all of them") would be -1 there, which wakes one
/// sleeper only. Counts above `i32::MAX` mean all of them.
const fn wake_count(count: u32) -> u32 {
    if count > i32::MAX as u32 {
        i32::MAX as u32
    } else {
        count
    }
}

/// `sleep` as a relative `timespec`, saturating: a `tv_sec` that wrapped
/// negative (`Duration::MAX`) makes the kernel answer EINVAL at once.
fn timespec(sleep: Duration) -> rustix::time::Timespec {
    rustix::time::Timespec {
        tv_sec: i64::try_from(sleep.as_secs()).unwrap_or(i64::MAX),
        tv_nsec: sleep.subsec_nanos().into(),
    }
}

/// What a park does after `futex(FUTEX_WAIT)` returned `slept`, having
/// asked to sleep at most `sleep`: nothing more (`None`) when the futex
/// slept or had a reason not to (EAGAIN: the word changed, ETIMEDOUT,
/// EINTR; the caller re-checks the word, the peer and the deadline), or
/// sleep this long when the futex could not sleep at all (EINVAL, ENOSYS,
/// anything else): the wait degrades to polling, never to a busy loop.
fn fallback_sleep(slept: rustix::io::Result<()>, sleep: Duration) -> Option<Duration> {
    use rustix::io::Errno;
    match slept {
        Ok(()) | Err(Errno::AGAIN | Errno::TIMEDOUT | Errno::INTR) => None,
        Err(_) => Some(sleep.min(POLL_SLEEP)),
    }
}

/// Whether process `pid` is alive: it exists (`kill(pid, 0)`; a process of
/// another user counts) and is not a zombie (a process that exited but was
/// not yet reaped by its parent, per `/proc/PID/stat`). A PID recycled by an
/// unrelated process reads as alive: liveness errs on the side of waiting.
/// A segment's creator is judged by more than its PID (see
/// [`creator_liveness`](crate::creator_liveness)).
pub fn pid_alive(pid: u32) -> bool {
    let Some(raw) = i32::try_from(pid).ok().and_then(rustix::process::Pid::from_raw) else {
        return false;
    };
    let exists = || !matches!(rustix::process::test_kill_process(raw), Err(rustix::io::Errno::SRCH));
    alive(exists, || is_zombie(pid))
}

/// [`pid_alive`]'s judgement from its two lookups. A process that `kill`
/// finds but whose `/proc` entry cannot be read was most likely reaped in
/// between (review 2026-12-03: read as alive, 2 runs in 10 under heavy
/// churn): `kill` is asked again. (Without `/proc` at all, that second
/// answer is the first one again: alive.)
fn alive(exists: impl Fn() -> bool, zombie: impl FnOnce() -> Option<bool>) -> bool {
    if !exists() {
        return false;
    }
    match zombie() {
        Some(zombie) => !zombie,
        None => exists(),
    }
}

/// Whether `/proc/PID/stat` says the process exited and awaits reaping;
/// `None` if it cannot be read (the process is gone, or there is no
/// `/proc`). A main thread that called `pthread_exit` while other threads
/// run also reads `Z` there, so a `Z` counts only when `/proc/PID/status`
/// says one thread is left. No heap allocation: waiters call this on their
/// slow path.
fn is_zombie(pid: u32) -> Option<bool> {
    // "pid (comm) S ...": the state follows the last ')'; comm is at most
    // 16 bytes, so the first 128 bytes hold it.
    let mut buf = [0u8; 128];
    let stat = read_stat(pid, &mut buf)?;
    let state = stat.iter().rposition(|&b| b == b')').and_then(|i| stat.get(i + 2));
    Some(matches!(state, Some(b'Z' | b'X')) && thread_count(pid).is_none_or(|n| n <= 1))
}

/// The `Threads:` line of `/proc/PID/status`; `None` if it cannot be read.
fn thread_count(pid: u32) -> Option<u32> {
    let mut buf = [0u8; 4096];
    let status = read_proc(pid, "status", &mut buf)?;
    let key = b"\nThreads:";
    let at = status.windows(key.len()).position(|w| w == key)? + key.len();
    let digits = status[at..].iter().skip_while(|b| b.is_ascii_whitespace()).take_while(|b| b.is_ascii_digit());
    digits.take(10).try_fold(0u32, |n, &d| n.checked_mul(10)?.checked_add(u32::from(d - b'0')))
}

/// Reads the start of `/proc/PID/stat` into `buf`; `None` if the process
/// does not exist (or `/proc` is not there). No heap allocation.
pub(crate) fn read_stat(pid: u32, buf: &mut [u8]) -> Option<&[u8]> {
    read_proc(pid, "stat", buf)
}

/// Reads the start of `/proc/PID/FILE` into `buf`, without allocating.
fn read_proc<'b>(pid: u32, file: &str, buf: &'b mut [u8]) -> Option<&'b [u8]> {
    use std::io::Write;
    let mut path = [0u8; 40];
    let mut cursor = &mut path[..];
    write!(cursor, "/proc/{pid}/{file}").ok()?;
    let len = 40 - cursor.len();
    let path = std::str::from_utf8(&path[..len]).ok()?;
    let fd =
        rustix::fs::open(path, rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC, rustix::fs::Mode::empty())
            .ok()?;
    let n = rustix::io::read(&fd, &mut *buf).ok()?;
    Some(&buf[..n])
}

#[cfg(test)]
mod tests {
    use super::*;
    use shm_core::conformance;
    use shm_core::format::semaphore::SemaphoreWords;
    use shm_core::Semaphore;

    #[test]
    fn futex_semaphore_passes_the_conformance_suite() {
        let words = SemaphoreWords::new(0);
        conformance::semaphore_basics(&FutexSemaphore::new(&words, FutexWait::new()));
        let sleepy = FutexWait::with_spin(0);
        conformance::semaphore_threads(&FutexSemaphore::new(&words, sleepy), &FutexSemaphore::new(&words, sleepy));
    }

    /// CPU time the calling thread has used.
    fn thread_cpu_time() -> Duration {
        let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
        Duration::new(u64::try_from(t.tv_sec).unwrap_or(0), u32::try_from(t.tv_nsec).unwrap_or(0))
    }

    #[test]
    fn an_unbounded_liveness_interval_sleeps_instead_of_spinning() {
        let words = SemaphoreWords::new(0);
        let sem = FutexSemaphore::new(&words, FutexWait::with_spin(0).with_liveness_interval(Duration::MAX));
        let (wall, cpu) = std::thread::scope(|s| {
            s.spawn(|| {
                // Post 300 ms after the waiter announced its sleep, so it
                // waits at least that long (the poll is for the announce,
                // bounded so that a broken announce cannot hang the test).
                let announce = std::time::Instant::now();
                while words.waiters() == 0 && announce.elapsed() < Duration::from_secs(30) {
                    std::thread::sleep(Duration::from_millis(1));
                }
                std::thread::sleep(Duration::from_millis(300));
                sem.post().unwrap();
            });
            let (wall, cpu) = (std::time::Instant::now(), thread_cpu_time());
            sem.wait().unwrap();
            (wall.elapsed(), thread_cpu_time().saturating_sub(cpu))
        });
        // Sleeping costs microseconds of CPU; a spin costs all the CPU the
        // scheduler gives it, which a loaded machine cuts to a share, not
        // to a tenth. A ratio, not a deadline.
        assert!(cpu < wall / 10, "the waiter used {cpu:?} of CPU in {wall:?} of waiting");
    }

    #[test]
    fn wake_counts_above_int_max_mean_all() {
        assert_eq!(wake_count(u32::MAX), i32::MAX as u32);
        assert_eq!(wake_count(i32::MAX as u32 + 1), i32::MAX as u32);
        assert_eq!((wake_count(1), wake_count(0), wake_count(64)), (1, 0, 64));
    }

    /// One `wake(word, u32::MAX)` wakes every sleeper (a publisher closing,
    /// or moving `head` once for all its subscribers), not one: before
    /// `wake_count`, the kernel read the count as -1 and woke a single one.
    #[test]
    fn one_wake_for_all_wakes_every_sleeper() {
        use std::sync::atomic::{AtomicU32 as Count, Ordering::SeqCst};
        const SLEEPERS: usize = 4;
        let word = AtomicU32::new(0);
        let woken = Count::new(0);
        let addr = format!("{:#x}", word.as_native_word() as *const _ as usize);
        std::thread::scope(|s| {
            let (tx, rx) = std::sync::mpsc::channel();
            for _ in 0..SLEEPERS {
                let (word, woken, tx) = (&word, &woken, tx.clone());
                s.spawn(move || {
                    tx.send(rustix::thread::gettid().as_raw_nonzero().get()).unwrap();
                    // No timeout: only a wake ends this (or a changed word).
                    let _ = futex::wait(word.as_native_word(), futex::Flags::empty(), 0, None);
                    woken.fetch_add(1, SeqCst);
                });
            }
            let tids: Vec<i32> = (0..SLEEPERS).map(|_| rx.recv().unwrap()).collect();
            // Every sleeper is inside futex(2) on `word` (syscall 202 on
            // x86-64 with `word` as its first argument) before the one wake.
            let asleep = |tid: i32| {
                std::fs::read_to_string(format!("/proc/self/task/{tid}/syscall"))
                    .is_ok_and(|line| line.split(' ').nth(1) == Some(addr.as_str()))
            };
            let start = std::time::Instant::now();
            while !tids.iter().all(|&t| asleep(t)) {
                assert!(start.elapsed() < Duration::from_secs(60), "the sleepers never reached the futex");
                std::thread::sleep(Duration::from_millis(1));
            }
            FutexWait::new().wake(&word, u32::MAX);
            let start = std::time::Instant::now();
            while woken.load(SeqCst) < SLEEPERS as u32 && start.elapsed() < Duration::from_secs(60) {
                std::thread::sleep(Duration::from_millis(1));
            }
            let after_one_wake = woken.load(SeqCst);
            // Release any left asleep, so the scope can end either way.
            word.store(1, SeqCst);
            let _ = futex::wake(word.as_native_word(), futex::Flags::empty(), i32::MAX as u32);
            assert_eq!(after_one_wake, SLEEPERS as u32, "one wake for all woke only some sleepers");
        });
    }

    #[test]
    fn timespecs_saturate_instead_of_wrapping() {
        let max = timespec(Duration::MAX);
        assert_eq!((max.tv_sec, max.tv_nsec), (i64::MAX, 999_999_999));
        let at_edge = timespec(Duration::from_secs(i64::MAX as u64 + 1));
        assert_eq!(at_edge.tv_sec, i64::MAX);
        let plain = timespec(Duration::new(3, 7));
        assert_eq!((plain.tv_sec, plain.tv_nsec), (3, 7));
    }

    #[test]
    fn a_futex_that_cannot_sleep_falls_back_to_a_bounded_sleep() {
        use rustix::io::Errno;
        for looked_again in [Ok(()), Err(Errno::AGAIN), Err(Errno::TIMEDOUT), Err(Errno::INTR)] {
            assert_eq!(fallback_sleep(looked_again, Duration::MAX), None, "{looked_again:?}");
        }
        for refused in [Errno::INVAL, Errno::NOSYS, Errno::FAULT] {
            assert_eq!(fallback_sleep(Err(refused), Duration::MAX), Some(POLL_SLEEP), "{refused:?}");
            let short = Duration::from_micros(10);
            assert_eq!(fallback_sleep(Err(refused), short), Some(short), "never past the slice");
        }
    }

    #[test]
    fn a_process_reaped_between_the_two_lookups_is_dead() {
        use std::cell::Cell;
        // `kill` finds it, then the reaping, then no `/proc` entry.
        let kills = Cell::new(0);
        let exists = || {
            kills.set(kills.get() + 1);
            kills.get() == 1
        };
        assert!(!alive(exists, || None), "reaped in between: dead");
        assert_eq!(kills.get(), 2, "kill is asked again");
        assert!(alive(|| true, || None), "no /proc at all: kill decides, alive");
        assert!(alive(|| true, || Some(false)));
        assert!(!alive(|| true, || Some(true)), "a zombie is dead");
        assert!(!alive(|| false, || unreachable!()), "no such process: dead, /proc not read");
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
