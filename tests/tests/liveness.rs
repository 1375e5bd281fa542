//! Peer liveness on Linux: what counts as a dead process.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

/// A process whose main thread called `pthread_exit` while another thread
/// runs reads `Z` in `/proc/PID/stat`, like a zombie; it is alive (its
/// threads hold slots and roles), and must never be declared dead, or a
/// server's `reclaim` would free its live claims.
#[test]
fn a_process_whose_main_thread_exited_is_alive() {
    let dir = std::env::temp_dir().join(format!("shm-liveness-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join("leader_exits.c");
    let exe = dir.join("leader_exits");
    std::fs::write(
        &src,
        r#"
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>
static void *worker(void *arg) {
    (void)arg;
    printf("ready\n");
    fflush(stdout);
    /* Lives until its stdin closes (the test ends). */
    char c;
    while (read(0, &c, 1) > 0) {}
    return 0;
}
int main(void) {
    pthread_t t;
    pthread_create(&t, 0, worker, 0);
    pthread_exit(0);
}
"#,
    )
    .unwrap();
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let built = Command::new(&cc).arg("-pthread").arg("-o").arg(&exe).arg(&src).status();
    let Ok(built) = built else {
        eprintln!("SKIPPED: no C compiler ({cc})");
        return;
    };
    assert!(built.success(), "{cc} failed to build the test program");
    let mut child = Command::new(&exe).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap()).read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ready");
    let pid = child.id();
    // Wait (bounded) until the main thread is gone: `Z` in /proc/PID/stat.
    let shows_z = || {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        stat.rsplit(')').next().is_some_and(|rest| rest.trim_start().starts_with('Z'))
    };
    let start = std::time::Instant::now();
    while !shows_z() && start.elapsed() < std::time::Duration::from_secs(60) {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert!(shows_z(), "the leader thread never exited");
    assert!(shm_posix::pid_alive(pid), "a process with a running thread is alive");
    drop(child.stdin.take()); // the worker returns, the process exits
    child.wait().unwrap();
    assert!(!shm_posix::pid_alive(pid), "and dead once reaped");
    let _ = std::fs::remove_dir_all(&dir);
}
