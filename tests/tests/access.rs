//! Access: a segment created with the default mode is closed to other
//! users; names that try path tricks never reach the file system.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use shm_core::Layout;
use shm_posix::{NameError, Segment};
use shm_tests::{assert_clean, unique, Peer};

const PEER: &str = env!("CARGO_BIN_EXE_peer");
const NOBODY: u32 = 65534;

#[test]
fn another_user_cannot_open_a_default_segment() {
    if !rustix::process::geteuid().is_root() {
        println!("skipped: dropping to another user needs root (CI runs as root, so it runs there)");
        return;
    }
    let name = unique("access");
    {
        let _seg = Segment::create(&name, &Layout::new().queue("q", 256).unwrap()).unwrap();
        // The test binary's folder may be private (a mktemp checkout): give
        // the unprivileged child its own copy of the peer binary.
        let exe = format!("/tmp/shm-test-peer-{}", std::process::id());
        std::fs::copy(PEER, &exe).unwrap();
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
        let child = Command::new(&exe).args(["try-open", &name]).uid(NOBODY).gid(NOBODY).stdout(Stdio::piped()).spawn();
        let mut peer = Peer::from_child(child.unwrap());
        let answer = peer.next_line();
        let status = peer.finish(Duration::from_secs(30));
        let _ = std::fs::remove_file(&exe);
        assert_eq!(answer, "denied", "uid {NOBODY} opening a 0600 segment");
        assert!(status.success());
    }
    assert_clean(&name);
}

#[test]
fn path_tricks_are_refused_before_any_system_call() {
    let layout = Layout::new().queue("q", 256).unwrap();
    for (name, want) in [
        ("../shm-escape", NameError::Slash { at: 2 }),
        ("/tmp/x", NameError::Slash { at: 3 }),
        ("a/../b", NameError::Slash { at: 1 }),
        ("x\0y", NameError::Nul { at: 1 }),
        ("..", NameError::Dots),
    ] {
        match Segment::create(name, &layout) {
            Err(shm_posix::CreateError::Name(got)) => assert_eq!(got, want, "{name:?}"),
            other => panic!("{name:?} must be refused, got {other:?}"),
        }
    }
    assert!(!std::path::Path::new("/dev/shm-escape").exists(), "nothing was created outside /dev/shm");
}
