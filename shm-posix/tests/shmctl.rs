//! `shmctl` against real segments and against files that are not ours.

use std::os::unix::fs::FileExt;
use std::process::{Command, Output};

use shm_core::Layout;
use shm_posix::{CreateOptions, Segment};

const SHMCTL: &str = env!("CARGO_BIN_EXE_shmctl");

fn shmctl(args: &[&str]) -> Output {
    Command::new(SHMCTL).args(args).output().expect("run shmctl")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn layout() -> Layout {
    Layout::new().mailbox("rpc", 2, 64).unwrap().queue("log", 1024).unwrap()
}

#[test]
fn garbage_in_dev_shm_is_reported_not_panicked_on() {
    let pid = std::process::id();
    let good = format!("/shmctl-test-{pid}-good");
    let junk = format!("/shmctl-test-{pid}-junk");
    let _seg = Segment::create(&good, &layout()).unwrap();
    let bytes: Vec<u8> = (0..8192u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    std::fs::write(format!("/dev/shm{junk}"), bytes).unwrap();

    let out = shmctl(&["inspect", &junk]);
    let err = text(&out.stderr);
    assert!(!out.status.success(), "inspect of random bytes must fail");
    assert!(err.contains("not a segment of this library"), "message: {err}");
    assert!(!err.contains("panicked"), "{err}");

    let out = shmctl(&["list"]);
    let listed = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(listed.contains(&good), "the good segment is listed:\n{listed}");
    assert!(!listed.contains(&junk), "files that are not ours are skipped:\n{listed}");

    let out = shmctl(&["inspect", &good, "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let json = text(&out.stdout);
    for needle in ["\"mailbox\"", "\"queue\"", "\"creator_alive\": true", "\"slots_free\""] {
        assert!(json.contains(needle), "{needle} missing from\n{json}");
    }
    let out = shmctl(&["inspect", &good]);
    assert!(text(&out.stdout).contains("server: none"), "{}", text(&out.stdout));

    std::fs::remove_file(format!("/dev/shm{junk}")).unwrap();
}

#[test]
fn rm_stale_removes_only_segments_whose_creator_is_dead() {
    let pid = std::process::id();
    let stale = format!("/shmctl-test-{pid}-stale");
    let live = format!("/shmctl-test-{pid}-live");
    let _live = Segment::create(&live, &layout()).unwrap();
    let opts = CreateOptions { persist: true, ..Default::default() };
    drop(Segment::create_with(&stale, &layout(), opts).unwrap());
    // Make the recorded creator a process that has exited.
    let mut child = Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    let file = std::fs::OpenOptions::new().write(true).open(format!("/dev/shm{stale}")).unwrap();
    file.write_all_at(&dead.to_ne_bytes(), 40).unwrap();

    let out = shmctl(&["rm", "--stale"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains(&format!("removed {stale}")), "{}", text(&out.stdout));
    assert!(!std::path::Path::new(&format!("/dev/shm{stale}")).exists());
    assert!(std::path::Path::new(&format!("/dev/shm{live}")).exists(), "a live segment is kept");

    let out = shmctl(&["rm", "no/such"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("only a leading slash"), "{}", text(&out.stderr));
}
