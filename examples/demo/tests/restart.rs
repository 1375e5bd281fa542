//! Issue 12: a server stopped with Ctrl-C (SIGINT) mid-run and restarted;
//! a client started with `--reconnect` carries on through the documented
//! reconnect path (`Segment::open_live`), and every response is checked.
//!
//! The client is frozen (SIGSTOP) while the server is stopped and replaced,
//! so the restart lands in the middle of its run on any machine, however
//! fast: no timing is assumed.

use std::io::{BufRead, BufReader, Lines};
use std::process::{Child, ChildStdout, Command, Stdio};

use rustix::process::{kill_process, Pid, Signal};

const EXE: &str = env!("CARGO_BIN_EXE_request-response");

fn spawn(args: &[&str]) -> (Child, Lines<BufReader<ChildStdout>>) {
    let mut child = Command::new(EXE).args(args).stdout(Stdio::piped()).spawn().expect("start request-response");
    let lines = BufReader::new(child.stdout.take().unwrap()).lines();
    (child, lines)
}

/// Reads lines until one starts with `prefix`; panics (with what was read)
/// if the output ends first.
fn expect(lines: &mut Lines<BufReader<ChildStdout>>, prefix: &str) -> String {
    let mut seen = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        if line.starts_with(prefix) {
            return line;
        }
        seen.push(line);
    }
    panic!("no line starting with {prefix:?}; the output was {seen:#?}");
}

fn signal(child: &Child, signal: Signal) {
    let pid = Pid::from_raw(i32::try_from(child.id()).unwrap()).unwrap();
    kill_process(pid, signal).unwrap();
}

#[test]
fn a_server_stopped_by_ctrl_c_is_restarted_and_the_client_carries_on() {
    let name = format!("/shm-demo-restart-{}", std::process::id());
    let path = format!("/dev/shm{name}");
    let (mut first, mut first_out) = spawn(&["server", "--name", &name, "--idle-secs", "120", "--no-pin"]);
    expect(&mut first_out, "server: serving");
    let (mut client, mut client_out) =
        spawn(&["client", "--name", &name, "--count", "5000", "--reconnect", "--no-pin"]);
    expect(&mut client_out, "client: connected");
    expect(&mut client_out, "client: progress 1000");

    // Freeze the client mid-run, then Ctrl-C the server.
    signal(&client, Signal::STOP);
    signal(&first, Signal::INT);
    expect(&mut first_out, "server: interrupted");
    assert!(first.wait().unwrap().success(), "a server stopped by Ctrl-C exits cleanly");
    assert!(!std::path::Path::new(&path).exists(), "and removes its segment");

    // A new server under the same name; the client goes on.
    let (mut second, mut second_out) = spawn(&["server", "--name", &name, "--idle-secs", "120", "--no-pin"]);
    expect(&mut second_out, "server: serving");
    signal(&client, Signal::CONT);
    let closed = expect(&mut client_out, "client: call");
    assert!(closed.contains("closed"), "the client learns the server closed: {closed}");
    expect(&mut client_out, "client: connected");
    let summary = expect(&mut client_out, "5000 round trips");
    assert!(summary.contains("every response checked, 1 reconnect(s)"), "{summary}");
    assert!(client.wait().unwrap().success());
    assert!(second.wait().unwrap().success(), "the second server ends when the client says bye");
    assert!(!std::path::Path::new(&path).exists(), "nothing is left in /dev/shm");
}
