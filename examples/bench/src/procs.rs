//! Processes and names: CPU pinning, the peer process (spawned, watched,
//! reaped), descriptors handed to it, and removal of every name a run
//! made in `/dev/shm` and the message-queue namespace.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rustix::event::{poll, PollFd, PollFlags, Timespec};
use rustix::process::{pidfd_open, pidfd_send_signal, Pid, PidfdFlags, Signal};

use crate::error::Error;

/// The CPUs this process may run on, in order.
pub fn allowed_cpus() -> Vec<usize> {
    match rustix::thread::sched_getaffinity(None) {
        Ok(set) => (0..rustix::thread::CpuSet::MAX_CPU).filter(|&c| set.is_set(c)).collect(),
        Err(_) => (0..std::thread::available_parallelism().map_or(1, |n| n.get())).collect(),
    }
}

/// Pins this process (its calling thread, the only one that measures) to `cpu`.
pub fn pin(cpu: usize) -> Result<(), Error> {
    pin_to(&[cpu])
}

/// Lets this process (its calling thread) run on `cpus` only. A child
/// inherits the set, so a peer that should run anywhere is given all of them.
pub fn pin_to(cpus: &[usize]) -> Result<(), Error> {
    let mut set = rustix::thread::CpuSet::new();
    for &cpu in cpus {
        set.set(cpu);
    }
    rustix::thread::sched_setaffinity(None, &set).map_err(|e| Error::os(format!("pinning to CPUs {cpus:?}"))(e.into()))
}

/// A running peer: a child process watched by a reaper thread that reaps
/// it the moment it exits (so liveness checks by PID see it dead) and kills
/// it if it outlives its deadline.
pub struct Peer {
    pid: u32,
    pidfd: Arc<OwnedFd>,
    reaper: Option<JoinHandle<io::Result<Output>>>,
}

impl Peer {
    /// Starts `exe args…` with the descriptors in `pass` inherited (their
    /// numbers must already be in `args`), its stdout captured, and a limit
    /// of `timeout` on its life. The caller drops its copies of `pass` after.
    pub fn spawn(exe: &Path, args: &[String], pass: &[&OwnedFd], timeout: Duration) -> Result<Self, Error> {
        // This process spawns from one thread only, so clearing FD_CLOEXEC
        // here lets exactly this child inherit them.
        for fd in pass {
            rustix::io::fcntl_setfd(fd, rustix::io::FdFlags::empty())
                .map_err(|e| Error::os(format!("passing descriptor {} to the peer", fd.as_raw_fd()))(e.into()))?;
        }
        let spawned = Command::new(exe).args(args).stdout(Stdio::piped()).stdin(Stdio::null()).spawn();
        for fd in pass {
            let _ = rustix::io::fcntl_setfd(fd, rustix::io::FdFlags::CLOEXEC);
        }
        let mut child = spawned.map_err(Error::os("starting the peer process"))?;
        let pid = child.id();
        let raw =
            i32::try_from(pid).ok().and_then(Pid::from_raw).ok_or(Error::Peer("the peer has an invalid pid".into()))?;
        let pidfd = match pidfd_open(raw, PidfdFlags::empty()) {
            Ok(fd) => Arc::new(fd),
            Err(e) => {
                let mut child = child;
                let _ = child.kill();
                let _ = child.wait();
                return Err(Error::os("pidfd_open of the peer")(e.into()));
            }
        };
        let watched = Arc::clone(&pidfd);
        let reaper = std::thread::Builder::new()
            .name("peer-reaper".into())
            .spawn(move || {
                // Drain the peer's report while it runs: one larger than the
                // pipe's buffer would otherwise block the peer's exit.
                let mut stdout = child.stdout.take();
                let drain = std::thread::spawn(move || {
                    let mut bytes = Vec::new();
                    if let Some(out) = stdout.as_mut() {
                        let _ = std::io::Read::read_to_end(out, &mut bytes);
                    }
                    bytes
                });
                if !exited_within(&watched, timeout) {
                    eprintln!("shm-bench: peer {pid} still running after {timeout:?}: killing it");
                    let _ = pidfd_send_signal(&*watched, Signal::KILL);
                }
                let status = child.wait()?;
                let stdout = drain.join().unwrap_or_default();
                Ok(std::process::Output { status, stdout, stderr: Vec::new() })
            })
            .map_err(Error::os("starting the reaper thread"))?;
        Ok(Self { pid, pidfd, reaper: Some(reaper) })
    }

    /// The peer's process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Waits for the peer to exit and returns its report; an error if it
    /// failed or printed no report.
    pub fn finish<T: serde::de::DeserializeOwned>(mut self) -> Result<T, Error> {
        let reaper = self.reaper.take().ok_or(Error::Peer("peer already finished".into()))?;
        let out = reaper.join().map_err(|_| Error::Peer("the reaper thread panicked".into()))?;
        let out = out.map_err(Error::os("waiting for the peer"))?;
        if !out.status.success() {
            return Err(Error::Peer(format!("the peer process failed ({})", out.status)));
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let line = text.lines().last().unwrap_or_default();
        serde_json::from_str(line)
            .map_err(|source| Error::Json { what: format!("the peer printed no report: {text:?}").into(), source })
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        if let Some(reaper) = self.reaper.take() {
            // Not finished: the measuring side failed. Stop the peer.
            let _ = pidfd_send_signal(&*self.pidfd, Signal::KILL);
            let _ = reaper.join();
        }
    }
}

/// Whether the process behind `pidfd` exits within `timeout`.
fn exited_within(pidfd: &OwnedFd, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        let ts =
            Timespec { tv_sec: left.as_secs().try_into().unwrap_or(i64::MAX), tv_nsec: left.subsec_nanos().into() };
        let mut fds = [PollFd::new(pidfd, PollFlags::IN)];
        match poll(&mut fds, Some(&ts)) {
            Ok(0) => return false,
            Ok(_) => return true,
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => return true, // cannot watch: let the wait below decide
        }
    }
}

/// Takes ownership of descriptor `raw`, inherited from the orchestrator.
pub fn inherited_fd(raw: i32) -> Result<OwnedFd, Error> {
    if raw < 3 {
        return Err(Error::Usage(format!("descriptor {raw} is a standard stream, not one passed by the orchestrator")));
    }
    // SAFETY: the orchestrator opened `raw` for this process alone and made
    // it inheritable just for the spawn (`Peer::spawn`); its number comes
    // from our arguments, is taken once at start-up, and nothing else in
    // this process opened, owns or closes it. If the number is stale the
    // first read or write fails with EBADF, which is reported.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// Where segments and named semaphores appear as files.
const SHM_DIR: &str = "/dev/shm";
/// Where message queues appear, when that file system is mounted.
const MQUEUE_DIR: &str = "/dev/mqueue";

/// The names this run makes (`/shm-bench-PID-N…`); all are removed when
/// it drops, whatever happened to the peers.
pub struct Names {
    prefix: String,
    next: u32,
    queues: Vec<String>,
}

impl Names {
    /// Names for this process.
    pub fn new() -> Self {
        Self { prefix: format!("shm-bench-{}-", std::process::id()), next: 0, queues: Vec::new() }
    }

    /// A fresh segment name.
    pub fn segment(&mut self) -> String {
        self.next += 1;
        format!("/{}{}", self.prefix, self.next)
    }

    /// A fresh prefix for a pair of message queues, `PREFIX-req` and
    /// `PREFIX-resp`, both remembered for removal.
    pub fn queue_pair(&mut self) -> String {
        self.next += 1;
        let base = format!("/{}{}", self.prefix, self.next);
        self.queues.extend([format!("{base}-req"), format!("{base}-resp")]);
        base
    }

    /// Removes every name made so far (segments, the named semaphores made
    /// for them, message queues).
    pub fn sweep(&mut self) {
        for q in self.queues.drain(..) {
            let _ = crate::mq::unlink(&q);
        }
        remove_matching(|file| file.strip_prefix("sem.").unwrap_or(file).starts_with(&self.prefix));
    }
}

impl Drop for Names {
    fn drop(&mut self) {
        self.sweep();
    }
}

/// Removes names left by earlier runs whose process is dead (killed before
/// it could clean up).
pub fn sweep_stale() {
    let stale = |file: &str| {
        let rest = file.strip_prefix("sem.").unwrap_or(file);
        let Some(rest) = rest.strip_prefix("shm-bench-") else { return false };
        let pid = rest.split('-').next().and_then(|p| p.parse::<u32>().ok());
        pid.is_some_and(|pid| !shm_posix::pid_alive(pid))
    };
    remove_matching(stale);
    if let Ok(dir) = std::fs::read_dir(MQUEUE_DIR) {
        for entry in dir.flatten() {
            let file = entry.file_name().to_string_lossy().into_owned();
            if stale(&file) {
                let _ = crate::mq::unlink(&format!("/{file}"));
            }
        }
    }
}

/// Unlinks the entries of `/dev/shm` whose file name matches (a folder,
/// such as the iceoryx2 rows' root, with all it holds).
fn remove_matching(matches: impl Fn(&str) -> bool) {
    let Ok(dir) = std::fs::read_dir(SHM_DIR) else { return };
    // Listed first, removed after: removing while reading the folder can
    // skip entries.
    let found: Vec<_> = dir.flatten().filter(|e| matches(&e.file_name().to_string_lossy())).collect();
    for entry in found {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            let _ = std::fs::remove_dir_all(entry.path());
        } else {
            // Unlinking the file is what shm_unlink and sem_unlink do.
            let _ = std::fs::remove_file(entry.path());
        }
    }
}
