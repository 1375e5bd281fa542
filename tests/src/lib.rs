//! Helpers shared by the cross-process tests in `tests/`: unique names,
//! spawning the `peer` helper binary, watchdogs, and the check that nothing
//! is left in `/dev/shm`.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A segment name unique to this test process and `tag`.
pub fn unique(tag: &str) -> String {
    format!("/shm-test-{}-{tag}", std::process::id())
}

/// Entries of `/dev/shm` whose name contains `name` (without its slash),
/// including named semaphores derived from it.
pub fn leftovers(name: &str) -> Vec<String> {
    let bare = name.trim_start_matches('/');
    std::fs::read_dir("/dev/shm")
        .map(|d| {
            d.filter_map(Result::ok)
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| n.contains(bare))
                .collect()
        })
        .unwrap_or_default()
}

/// Asserts that nothing named after `name` is left in `/dev/shm`.
pub fn assert_clean(name: &str) {
    let left = leftovers(name);
    assert!(left.is_empty(), "left in /dev/shm: {left:?}");
}

/// Runs `f` on this thread under a watchdog: if it has not returned after
/// `limit`, the whole test process fails with a message naming `what` (a
/// hung call cannot be unwound, and the harness would wait forever).
///
/// The one way these tests bound time: a generous limit on what must
/// finish, never an assertion that something was fast.
pub fn watchdog<T>(limit: Duration, what: &str, f: impl FnOnce() -> T) -> T {
    let (finished, watched) = mpsc::channel::<()>();
    let what = what.to_owned();
    let guard = std::thread::spawn(move || {
        // Returns at once when `finished` is dropped: `f` returned or panicked.
        if let Err(mpsc::RecvTimeoutError::Timeout) = watched.recv_timeout(limit) {
            eprintln!("watchdog: {what} still running after {limit:?}: hung");
            std::process::exit(101);
        }
    });
    let out = f();
    drop(finished);
    let _ = guard.join();
    out
}

/// A child process running the `peer` helper binary, killed if dropped.
pub struct Peer {
    child: Child,
    lines: Option<BufReader<std::process::ChildStdout>>,
    last: String,
}

impl Peer {
    /// Starts `peer` (the binary at `exe`) with `args`.
    pub fn spawn(exe: &str, args: &[&str]) -> Self {
        let mut child = Command::new(exe)
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {exe}: {e}"));
        let lines = child.stdout.take().map(BufReader::new);
        Self { child, lines, last: String::new() }
    }

    /// Starts `peer` with `args` and environment variables `env`.
    pub fn spawn_env(exe: &str, args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut child = Command::new(exe)
            .args(args)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {exe}: {e}"));
        let lines = child.stdout.take().map(BufReader::new);
        Self { child, lines, last: String::new() }
    }

    /// Wraps an already started child.
    pub fn from_child(mut child: Child) -> Self {
        let lines = child.stdout.take().map(BufReader::new);
        Self { child, lines, last: String::new() }
    }

    /// Reads the next line the child printed (empty at end of output).
    pub fn next_line(&mut self) -> String {
        let mut got = String::new();
        let _ = self.lines.as_mut().expect("stdout is piped").read_line(&mut got);
        got.trim_end().to_owned()
    }

    /// The child's PID.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the child to print `line` on stdout.
    pub fn expect_line(&mut self, line: &str) {
        let reader = self.lines.as_mut().expect("stdout is piped");
        let mut got = String::new();
        loop {
            got.clear();
            let n = reader.read_line(&mut got).expect("read from peer");
            assert!(n > 0, "peer exited before printing {line:?}");
            if got.trim_end() == line {
                return;
            }
        }
    }

    /// Waits for a line starting with `prefix` and keeps it (see
    /// [`last_line`](Self::last_line)).
    pub fn expect_line_prefix(&mut self, prefix: &str) {
        loop {
            let line = self.next_line();
            assert!(!line.is_empty(), "peer exited before printing a line starting with {prefix:?}");
            if line.starts_with(prefix) {
                self.last = line;
                return;
            }
        }
    }

    /// The line kept by [`expect_line_prefix`](Self::expect_line_prefix).
    pub fn last_line(&self) -> String {
        self.last.clone()
    }

    /// Sends SIGKILL and reaps the child.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits at most `limit` for the child to exit (a watchdog, not a
    /// timing check); kills it and panics if it does not.
    pub fn finish(mut self, limit: Duration) -> ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            if start.elapsed() > limit {
                self.kill9();
                panic!("peer {} still running after {limit:?}", self.pid());
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.kill9();
        }
    }
}
