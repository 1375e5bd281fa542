//! `shmctl` against real segments and against files that are not ours.

use std::os::unix::fs::FileExt;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use shm_core::format::header::{self, state};
use shm_core::Layout;
use shm_posix::{CreateOptions, Segment};

const SHMCTL: &str = env!("CARGO_BIN_EXE_shmctl");

/// Runs shmctl; a watchdog (not a timing check) fails the test if it hangs
/// (on a FIFO, say).
fn shmctl(args: &[&str]) -> Output {
    let mut child = Command::new(SHMCTL).args(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("shmctl {args:?} hung");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    child.wait_with_output().unwrap()
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
    // Objects with named fields (the schema in shm-posix's README): the
    // geometry of each kind, counters by name, `null` for a role nobody holds.
    for needle in [
        "\"mailbox\"",
        "\"queue\"",
        "\"creator_alive\": true",
        "\"creator_liveness\": \"alive\"",
        "\"slots_free\":",
        "\"capacity\":",
        "\"slot_size\":",
        "\"counters\": {",
        "\"role\": \"consumer\",\n          \"pid\": null,\n          \"alive\": null",
    ] {
        assert!(json.contains(needle), "{needle} missing from\n{json}");
    }
    let out = shmctl(&["inspect", &good]);
    assert!(text(&out.stdout).contains("server: none"), "{}", text(&out.stdout));

    std::fs::remove_file(format!("/dev/shm{junk}")).unwrap();
}

#[test]
fn rm_stale_removes_only_segments_whose_creator_is_dead() {
    let pid = std::process::id();
    // Names and `--prefix` of this test only: the tests run at once, and
    // another's `rm --stale` must not reach this one's segments.
    let prefix = format!("shmctl-test-{pid}-rm-stale-");
    let stale = format!("/{prefix}stale");
    let live = format!("/{prefix}live");
    let _live = Segment::create(&live, &layout()).unwrap();
    let opts = CreateOptions { persist: true, ..Default::default() };
    drop(Segment::create_with(&stale, &layout(), opts).unwrap());
    // Make the recorded creator a process that has exited.
    let mut child = Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    let file = std::fs::OpenOptions::new().write(true).open(format!("/dev/shm{stale}")).unwrap();
    file.write_all_at(&dead.to_ne_bytes(), header::CREATOR as u64).unwrap();

    let out = shmctl(&["rm", "--stale", "--prefix", &prefix]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains(&format!("removed {stale}")), "{}", text(&out.stdout));
    assert!(!std::path::Path::new(&format!("/dev/shm{stale}")).exists());
    assert!(std::path::Path::new(&format!("/dev/shm{live}")).exists(), "a live segment is kept");

    // No such segment: said so, with no advice shmctl cannot follow.
    let out = shmctl(&["inspect", &format!("/shmctl-test-{}-none", std::process::id())]);
    assert!(!out.status.success());
    let said = text(&out.stderr);
    assert!(said.contains("no such segment") && !said.contains("timeout"), "{said}");

    let out = shmctl(&["rm", "no/such"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("only a leading slash"), "{}", text(&out.stderr));
}

fn dead_pid() -> u32 {
    let mut child = Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    pid
}

/// Defect 2: a foreign file whose u32 at byte 32 is 1 (it reads as
/// INITIALIZING) and whose byte 40 is 0 is not ours, so `rm --stale` keeps it.
#[test]
fn rm_stale_keeps_foreign_files_that_look_initializing() {
    let pid = std::process::id();
    let prefix = format!("shmctl-test-{pid}-keeps-foreign-");
    let foreign = format!("/{prefix}file");
    let mut bytes = vec![0u8; 4096];
    bytes[header::STATE..][..4].copy_from_slice(&state::INITIALIZING.to_ne_bytes());
    std::fs::write(format!("/dev/shm{foreign}"), &bytes).unwrap();

    let out = shmctl(&["rm", "--stale", "--prefix", &prefix]);
    let kept = std::fs::read(format!("/dev/shm{foreign}"));
    let _ = std::fs::remove_file(format!("/dev/shm{foreign}"));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(kept.ok().as_deref(), Some(&bytes[..]), "the foreign file is kept, untouched: {}", text(&out.stdout));
    assert!(!text(&out.stdout).contains(&foreign), "{}", text(&out.stdout));
}

/// Defect 7 (tool side): `rm NAME` refuses a segment whose creator lives
/// unless `--force`, and says what it removed.
#[test]
fn rm_refuses_a_live_segment_without_force() {
    let pid = std::process::id();
    let name = format!("/shmctl-test-{pid}-rm-live");
    let seg = Segment::create(&name, &layout()).unwrap();
    let out = shmctl(&["rm", &name]);
    assert!(!out.status.success(), "a live segment is refused: {}", text(&out.stdout));
    assert!(text(&out.stderr).contains("alive"), "{}", text(&out.stderr));
    assert!(std::path::Path::new(&format!("/dev/shm{name}")).exists(), "still there");

    let out = shmctl(&["rm", "--force", &name]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let said = text(&out.stdout);
    assert!(said.contains(&format!("removed {name}")) && said.contains(&format!("pid {pid}")), "{said}");
    assert!(!std::path::Path::new(&format!("/dev/shm{name}")).exists());
    drop(seg);
}

/// Audit (b): a persisted segment whose creator exited while a live peer
/// still holds a role in it is in use, not stale: `rm --stale` keeps it.
#[test]
fn rm_stale_keeps_a_segment_a_live_peer_still_uses() {
    let pid = std::process::id();
    let prefix = format!("shmctl-test-{pid}-in-use-");
    let name = format!("/{prefix}segment");
    let opts = CreateOptions { persist: true, ..Default::default() };
    drop(Segment::create_with(&name, &layout(), opts).unwrap());
    let file = std::fs::OpenOptions::new().write(true).open(format!("/dev/shm{name}")).unwrap();
    file.write_all_at(&dead_pid().to_ne_bytes(), header::CREATOR as u64).unwrap();
    let user = Segment::open(&name, std::time::Duration::ZERO).unwrap();
    let producer = user.producer("log", shm_posix::FutexWait::new()).unwrap();

    let out = shmctl(&["rm", "--stale", "--prefix", &prefix]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(std::path::Path::new(&format!("/dev/shm{name}")).exists(), "in use: kept\n{}", text(&out.stdout));
    assert!(text(&out.stdout).contains(&format!("pid {pid}")), "says who uses it: {}", text(&out.stdout));

    drop(producer);
    let out = shmctl(&["rm", "--stale", "--prefix", &prefix]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains(&format!("removed {name}")), "{}", text(&out.stdout));
    assert!(!std::path::Path::new(&format!("/dev/shm{name}")).exists());
    drop(user);
}

/// Audit (a): `inspect` and `list` map read-only: a user with read
/// permission only can inspect, and no byte of the segment changes.
#[test]
fn inspect_needs_only_read_permission_and_writes_nothing() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    let pid = std::process::id();
    let name = format!("/shmctl-test-{pid}-read-only");
    let path = format!("/dev/shm{name}");
    let opts = CreateOptions { mode: 0o644, ..Default::default() };
    let seg = Segment::create_with(&name, &layout(), opts).unwrap();
    let before = std::fs::read(&path).unwrap();
    for args in [&["inspect", &name][..], &["inspect", &name, "--json"], &["list"]] {
        let out = shmctl(args);
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
    }
    assert_eq!(std::fs::read(&path).unwrap(), before, "inspection wrote into the segment");

    if !rustix::process::geteuid().is_root() {
        println!("skipped the other-user half: dropping to another user needs root");
        drop(seg);
        return;
    }
    // The test binary's folder may be private: give the child its own copy.
    let exe = format!("/tmp/shmctl-test-{pid}-exe");
    std::fs::copy(SHMCTL, &exe).unwrap();
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
    // Another test thread forking while the copy was open for writing
    // holds it open in its child until that child's exec: ETXTBSY for a
    // moment. Try again (bounded: a watchdog, not a timing check).
    let mut tries = 0;
    let out = loop {
        match Command::new(&exe).args(["inspect", &name]).uid(65534).gid(65534).output() {
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && tries < 1000 => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(10));
            }
            other => break other.unwrap(),
        }
    };
    let _ = std::fs::remove_file(&exe);
    assert!(out.status.success(), "read permission is enough to inspect: {}", text(&out.stderr));
    assert!(text(&out.stdout).contains(&format!("segment    {name}")), "{}", text(&out.stdout));
    assert_eq!(std::fs::read(&path).unwrap(), before, "inspection wrote into the segment");
    drop(seg);
}

/// Nothing that is not positively a segment of this library is removed,
/// inspected, listed, or followed: files without the magic (whatever their
/// size or other bytes), a symlink to a valid segment image, a directory
/// and a FIFO (which must not hang the tool either).
#[test]
fn foreign_and_special_files_survive_every_removal() {
    let pid = std::process::id();
    let dead = dead_pid();
    let prefix = format!("shmctl-test-{pid}-special-");
    let p = |tag: &str| format!("/dev/shm/{prefix}{tag}");
    let header = |state: u32, magic_at: Option<usize>, len: usize| {
        let mut b = vec![0u8; len];
        if len >= header::CREATOR + 4 {
            b[header::STATE..header::STATE + 4].copy_from_slice(&state.to_ne_bytes());
            b[header::CREATOR..header::CREATOR + 4].copy_from_slice(&dead.to_ne_bytes());
        }
        if let Some(at) = magic_at {
            b[at..at + 8].copy_from_slice(b"SHM_SEG1");
        }
        b
    };
    let files: Vec<(&str, Vec<u8>)> = vec![
        ("empty", vec![]),
        ("tiny", b"SHM_".to_vec()),
        ("magic-only", b"SHM_SEG1".to_vec()),
        ("magic-63", header(1, Some(0), 63)),
        ("initializing", header(1, None, 4096)),
        ("magic-later", header(1, Some(128), 4096)),
    ];
    for (tag, bytes) in &files {
        std::fs::write(p(tag), bytes).unwrap();
    }
    let target = format!("/tmp/shmctl-test-{pid}-special-target");
    std::fs::write(&target, header(2, Some(0), 4096)).unwrap();
    std::os::unix::fs::symlink(&target, p("symlink")).unwrap();
    std::fs::create_dir(p("dir")).unwrap();
    let fifo = std::ffi::CString::new(p("fifo")).unwrap();
    // SAFETY: a NUL-terminated path that outlives the call.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
    let all = ["empty", "tiny", "magic-only", "magic-63", "initializing", "magic-later", "symlink", "dir", "fifo"];

    let out = shmctl(&["rm", "--stale", "--prefix", &prefix]);
    assert!(text(&out.stdout).contains("0 stale segment(s) removed"), "{out:?}");
    for tag in all {
        let name = format!("/{prefix}{tag}");
        let out = shmctl(&["inspect", &name]);
        assert!(!out.status.success(), "{tag}: inspect refused");
        let out = shmctl(&["rm", "--force", &name]);
        assert!(!out.status.success(), "{tag}: rm --force refused: {out:?}");
        assert!(std::fs::symlink_metadata(p(tag)).is_ok(), "{tag} still exists");
    }
    let out = shmctl(&["list"]);
    assert!(!text(&out.stdout).contains(&prefix), "nothing listed: {out:?}");
    assert_eq!(std::fs::read(&target).unwrap(), header(2, Some(0), 4096), "the symlink's target is untouched");

    for tag in all {
        let path = p(tag);
        if tag == "dir" {
            std::fs::remove_dir(path).unwrap();
        } else {
            std::fs::remove_file(path).unwrap();
        }
    }
    std::fs::remove_file(&target).unwrap();
}

/// Review 2026-12-03 (1): a ready segment this build cannot read (here a
/// newer minor whose table names a kind this build does not know, as the
/// format allows) may have live users it cannot see: `rm --stale` and
/// `Segment::create` keep it even though its creator died; `rm --force`
/// removes it.
#[test]
fn a_stale_segment_this_build_cannot_read_is_kept() {
    let pid = std::process::id();
    let prefix = format!("shmctl-test-{pid}-unreadable-");
    let name = format!("/{prefix}segment");
    let opts = CreateOptions { persist: true, ..Default::default() };
    drop(Segment::create_with(&name, &layout(), opts).unwrap());
    let user = Segment::open(&name, Duration::ZERO).unwrap();
    let producer = user.producer("log", shm_posix::FutexWait::new()).unwrap();
    let file = std::fs::OpenOptions::new().write(true).open(format!("/dev/shm{name}")).unwrap();
    file.write_all_at(&dead_pid().to_ne_bytes(), header::CREATOR as u64).unwrap();
    let newer = (u32::from(shm_core::format::FORMAT_MAJOR) << 16) | (u32::from(shm_core::format::FORMAT_MINOR) + 1);
    file.write_all_at(&newer.to_ne_bytes(), header::VERSION as u64).unwrap();
    let second_entry = header::SIZE + shm_core::format::table::ENTRY_SIZE + shm_core::format::table::KIND;
    file.write_all_at(&200u32.to_ne_bytes(), second_entry as u64).unwrap();
    let path = format!("/dev/shm{name}");

    let out = shmctl(&["rm", "--stale", "--prefix", &prefix]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(std::path::Path::new(&path).exists(), "kept:\n{}", text(&out.stdout));
    assert!(text(&out.stdout).contains("does not open in this build"), "says why: {}", text(&out.stdout));

    match Segment::create(&name, &layout()) {
        Err(e @ shm_posix::CreateError::Unreadable { .. }) => {
            assert!(e.to_string().contains("rm --force"), "says what to do: {e}")
        }
        other => panic!("create over it must refuse, got {:?}", other.map(|s| s.name().to_owned())),
    }
    assert!(std::path::Path::new(&path).exists(), "create kept it too");

    let out = shmctl(&["rm", "--force", &name]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!std::path::Path::new(&path).exists());
    drop(producer);
    drop(user);
}

/// Review 2026-12-03 (2): a connected direct-mailbox client owns a slot
/// and uses the segment: `inspect` shows it, `rm --stale` keeps the
/// segment while it lives.
#[test]
fn a_connected_direct_client_keeps_a_stale_segment() {
    let pid = std::process::id();
    let prefix = format!("shmctl-test-{pid}-direct-client-");
    let name = format!("/{prefix}segment");
    let opts = CreateOptions { persist: true, ..Default::default() };
    let direct = Layout::new().direct("rpc", 2, 64).unwrap();
    drop(Segment::create_with(&name, &direct, opts).unwrap());
    let file = std::fs::OpenOptions::new().write(true).open(format!("/dev/shm{name}")).unwrap();
    file.write_all_at(&dead_pid().to_ne_bytes(), header::CREATOR as u64).unwrap();
    let user = Segment::open(&name, Duration::ZERO).unwrap();
    let client = user.direct_client("rpc", shm_posix::FutexWait::new()).unwrap();

    let out = shmctl(&["inspect", &name]);
    assert!(text(&out.stdout).contains(&format!("client: pid {pid} alive")), "{}", text(&out.stdout));
    let out = shmctl(&["rm", "--stale", "--prefix", &prefix]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(std::path::Path::new(&format!("/dev/shm{name}")).exists(), "in use: kept\n{}", text(&out.stdout));
    assert!(text(&out.stdout).contains(&format!("pid {pid} (rpc client)")), "says who: {}", text(&out.stdout));

    drop(client);
    let out = shmctl(&["rm", "--stale", "--prefix", &prefix]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains(&format!("removed {name}")), "{}", text(&out.stdout));
    drop(user);
}

/// New-user review 2026-12-03: a server killed and restarted could not
/// come back while a client of the dead run was connected (a direct
/// mailbox's client holds its slot until it drops): `Segment::create`
/// reported `InUse` for as long as that client lived. A restarting creator
/// now replaces a stale segment that only clients and subscribers still
/// map (a sweep keeps it, as above); a live process serving a channel
/// still keeps it.
#[test]
fn a_restarted_creator_replaces_a_segment_its_dead_runs_clients_still_map() {
    let pid = std::process::id();
    let name = format!("/shmctl-test-{pid}-restart-with-clients");
    let opts = CreateOptions { persist: true, ..Default::default() };
    let direct = Layout::new().direct("rpc", 2, 64).unwrap().mailbox("m", 2, 64).unwrap();
    let stale = || {
        drop(Segment::create_with(&name, &direct, opts).unwrap());
        let file = std::fs::OpenOptions::new().write(true).open(format!("/dev/shm{name}")).unwrap();
        file.write_all_at(&dead_pid().to_ne_bytes(), header::CREATOR as u64).unwrap();
        Segment::open(&name, Duration::ZERO).unwrap()
    };
    // A live server in the dead run's segment keeps it.
    let old = stale();
    let server = old.server("m", shm_posix::FutexWait::new()).unwrap();
    match Segment::create(&name, &direct) {
        Err(shm_posix::CreateError::InUse { pid: p, role, .. }) => assert_eq!((p, role.as_str()), (pid, "m server")),
        other => panic!("a live server keeps the segment: {:?}", other.map(|_| ())),
    }
    drop(server);
    drop(old);
    shm_posix::remove(&name).unwrap();
    // Only a connected client: the restarted creator takes the name.
    let old = stale();
    let client = old.direct_client("rpc", shm_posix::FutexWait::new()).unwrap();
    let new = Segment::create(&name, &direct).expect("a client of the dead run does not hold the name");
    assert_ne!(new.info().layout_hash, 0);
    let again = Segment::open(&name, Duration::ZERO).unwrap();
    let _fresh = again.direct_client("rpc", shm_posix::FutexWait::new()).expect("the new segment has its slots free");
    drop(client);
    drop(old);
}

/// Review 2026-12-03 (F5): a restarted creator was held back (`InUse`) by
/// the process at the other end of a queue it had served, for as long as
/// that process lived, though its peer was the dead run. A queue end counts
/// only while its other end is not dead; a live pipeline (both ends alive)
/// and an end whose other end is free or closed still keep the segment.
#[test]
fn a_queue_end_whose_other_end_died_does_not_keep_a_stale_segment() {
    let pid = std::process::id();
    let name = format!("/shmctl-test-{pid}-queue-peer-died");
    let opts = CreateOptions { persist: true, ..Default::default() };
    let layout = Layout::new().queue("q", 4096).unwrap().direct("rpc", 2, 64).unwrap();
    drop(Segment::create_with(&name, &layout, opts).unwrap());
    let file = std::fs::OpenOptions::new().write(true).open(format!("/dev/shm{name}")).unwrap();
    file.write_all_at(&dead_pid().to_ne_bytes(), header::CREATOR as u64).unwrap();
    let old = Segment::open(&name, Duration::ZERO).unwrap();
    let in_use = |what: &str| match Segment::create(&name, &layout) {
        Err(shm_posix::CreateError::InUse { pid: p, role, .. }) => {
            assert_eq!(p, pid, "{what}");
            role
        }
        other => panic!("{what}: {:?}", other.map(|_| ())),
    };
    let consumer = old.consumer("q", shm_posix::FutexWait::new()).unwrap();
    let producer = old.producer("q", shm_posix::FutexWait::new()).unwrap();
    assert!(in_use("a live pipeline").starts_with("q "));
    drop(producer);
    assert_eq!(in_use("a producer that closed"), "q consumer");
    // The producer's holder dies (its PID, as a killed producer leaves it).
    let q = shm_posix::list::report(&old).channels.into_iter().find(|c| c.name == "q").unwrap();
    let producer_word = (q.offset as usize + shm_core::format::queue::PRODUCER) as u64;
    file.write_all_at(&dead_pid().to_ne_bytes(), producer_word).unwrap();
    let new = Segment::create(&name, &layout).expect("an end whose peer died does not hold the name");
    let _fresh = new.consumer("q", shm_posix::FutexWait::new()).expect("the new segment's ends are free");
    drop(consumer);
    drop(old);
}

/// Review 2026-12-03 (F4): a process that claimed a serving role just
/// after a remover looked at the roles, and before it unlinked the name,
/// served an orphan no new peer would open. A claim now checks, under the
/// removers' lock, that the name still refers to its segment: a claim in a
/// segment that was replaced or removed is undone and says so.
#[test]
fn a_claim_in_a_replaced_or_removed_segment_is_refused() {
    let pid = std::process::id();
    let name = format!("/shmctl-test-{pid}-claim-after-removal");
    let opts = CreateOptions { persist: true, ..Default::default() };
    let layout = Layout::new()
        .queue("q", 4096)
        .unwrap()
        .mailbox("m", 2, 64)
        .unwrap()
        .direct("rpc", 2, 64)
        .unwrap()
        .broadcast("b", 4096, 2, shm_core::broadcast::Policy::Overwrite)
        .unwrap();
    drop(Segment::create_with(&name, &layout, opts).unwrap());
    let file = std::fs::OpenOptions::new().write(true).open(format!("/dev/shm{name}")).unwrap();
    file.write_all_at(&dead_pid().to_ne_bytes(), header::CREATOR as u64).unwrap();
    let old = Segment::open(&name, Duration::ZERO).unwrap();
    // A restarted creator replaces it: every claim in the old one is refused.
    let new = Segment::create(&name, &layout).unwrap();
    let w = shm_posix::FutexWait::new;
    let removed = |what: &str, got: Result<(), shm_core::ClaimError>| match got {
        Err(e @ shm_core::ClaimError::Removed { .. }) => {
            assert_eq!(e.kind(), shm_core::ErrorKind::Closed, "{what}: the reconnect loop reopens on it");
            assert!(e.to_string().contains("open the segment again"), "{what}: {e}");
        }
        other => panic!("{what}: {other:?}"),
    };
    use shm_core::HasErrorKind;
    removed("server", old.server("m", w()).map(drop));
    removed("producer", old.producer("q", w()).map(drop));
    removed("consumer", old.consumer("q", w()).map(drop));
    removed("publisher", old.publisher("b", w()).map(drop));
    removed("subscriber", old.subscriber("b", w()).map(drop));
    removed("direct server", old.direct_server("rpc", w()).map(drop));
    removed("direct client", old.direct_client("rpc", w()).map(drop));
    removed("direct client, timeout", old.direct_client_timeout("rpc", w(), Duration::ZERO).map(drop));
    let owned = Arc::new(old);
    removed("owned producer", Segment::owned_producer(&owned, "q", w()).map(drop));
    // Nothing stays claimed in the old segment, and the new one is free.
    assert!(shm_posix::list::report(&owned).channels.iter().all(|c| c.peers.iter().all(|p| p.pid.is_none())));
    let _server = new.server("m", w()).expect("the new segment's roles are free");
    // Removed by name: the same.
    let name2 = format!("{name}-2");
    let seg = Segment::create(&name2, &layout).unwrap();
    shm_posix::remove_with(&name2, &shm_posix::RemoveOptions { force: true, object: None }).unwrap();
    removed("after remove --force", seg.producer("q", w()).map(drop));
}

/// Review 2026-12-03 (eighth pass): a claim checked only that the name
/// still referred to its segment, so after a creator's clean exit (its drop
/// unlinks the name) a peer that still mapped the segment could no longer
/// claim the consumer role and read the creator's last message. Only a
/// removal of this library (which marks the segment first) refuses claims.
#[test]
fn a_peer_still_claims_after_its_creator_exited_cleanly() {
    let name = format!("/shmctl-test-{}-clean-exit", std::process::id());
    let layout = Layout::new().queue("q", 4096).unwrap();
    let creator = Segment::create(&name, &layout).unwrap();
    let peer = Segment::open(&name, Duration::ZERO).unwrap();
    let mut producer = creator.producer("q", shm_posix::FutexWait::new()).unwrap();
    producer.send(b"last words").unwrap();
    drop(producer);
    drop(creator);
    assert!(!std::path::Path::new(&format!("/dev/shm{name}")).exists(), "the creator's drop unlinked it");
    let mut consumer = peer.consumer("q", shm_posix::FutexWait::new()).expect("not removed by a remover");
    let mut buf = [0u8; 16];
    assert_eq!(consumer.try_recv(&mut buf), Ok(10));
    assert_eq!(&buf[..10], b"last words");
}

/// New-user review 2026-12-03: a direct client that left its slot with a
/// request posted (ABANDONED: the server frees it) is no user of the
/// segment, though its `client` word still names it.
#[test]
fn a_client_that_left_with_a_request_posted_does_not_keep_a_stale_segment() {
    let pid = std::process::id();
    let prefix = format!("shmctl-test-{pid}-abandoned-");
    let name = format!("/{prefix}segment");
    let opts = CreateOptions { persist: true, ..Default::default() };
    let direct = Layout::new().direct("rpc", 2, 64).unwrap();
    drop(Segment::create_with(&name, &direct, opts).unwrap());
    let file = std::fs::OpenOptions::new().write(true).open(format!("/dev/shm{name}")).unwrap();
    file.write_all_at(&dead_pid().to_ne_bytes(), header::CREATOR as u64).unwrap();
    let user = Segment::open(&name, Duration::ZERO).unwrap();
    let mut client = user.direct_client("rpc", shm_posix::FutexWait::new()).unwrap();
    // No server: the request stays posted when the call gives up.
    let got = client.call_timeout(b"x", &mut [0u8; 64], Duration::from_millis(1));
    assert!(matches!(got, Err(shm_core::CallError::StillPosted | shm_core::CallError::PeerDied)), "{got:?}");
    drop(client);
    let out = shmctl(&["inspect", &name]);
    assert!(text(&out.stdout).contains("slots_abandoned=1"), "{}", text(&out.stdout));
    let out = shmctl(&["rm", "--stale", "--prefix", &prefix]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains(&format!("removed {name}")), "{}", text(&out.stdout));
    drop(user);
}

/// Review 2026-12-03 (5): names are anyone's choice. A name with a newline
/// does not forge a line of `list`; a stale segment under a name too long
/// for this library is kept and reported by `rm --stale`, which still
/// succeeds.
#[test]
fn odd_names_neither_forge_output_nor_fail_the_sweep() {
    let pid = std::process::id();
    let prefix = format!("shmctl-test-{pid}-odd-names-");
    let source = format!("/{prefix}source");
    let opts = CreateOptions { persist: true, ..Default::default() };
    drop(Segment::create_with(&source, &layout(), opts).unwrap());
    let mut image = std::fs::read(format!("/dev/shm{source}")).unwrap();
    image[header::CREATOR..][..4].copy_from_slice(&dead_pid().to_ne_bytes());
    std::fs::remove_file(format!("/dev/shm{source}")).unwrap();
    let forged = format!("{prefix}nl\nFORGED-ROW");
    let long = format!("{prefix}{}", "x".repeat(220));
    for bare in [&forged, &long] {
        std::fs::write(format!("/dev/shm/{bare}"), &image).unwrap();
    }
    // And one `rm --stale` keeps, whose reason repeats the name: a newer
    // minor with a kind this build does not know.
    let kept = format!("{prefix}kept\nFORGED-ROW");
    let mut unreadable = image.clone();
    let newer = (u32::from(shm_core::format::FORMAT_MAJOR) << 16) | (u32::from(shm_core::format::FORMAT_MINOR) + 1);
    unreadable[header::VERSION..][..4].copy_from_slice(&newer.to_ne_bytes());
    let second_entry = header::SIZE + shm_core::format::table::ENTRY_SIZE + shm_core::format::table::KIND;
    unreadable[second_entry..][..4].copy_from_slice(&200u32.to_ne_bytes());
    std::fs::write(format!("/dev/shm/{kept}"), &unreadable).unwrap();

    let out = shmctl(&["list"]);
    let listed = text(&out.stdout);
    let cleanup = || {
        for bare in [&forged, &long, &kept] {
            let _ = std::fs::remove_file(format!("/dev/shm/{bare}"));
        }
    };
    if listed.lines().any(|l| l.starts_with("FORGED-ROW")) {
        cleanup();
        panic!("a name forged a row:\n{listed}");
    }
    let out = shmctl(&["rm", "--stale", "--prefix", &prefix]);
    let long_kept = std::path::Path::new(&format!("/dev/shm/{long}")).exists();
    cleanup();
    assert!(out.status.success(), "the sweep succeeds: {}{}", text(&out.stdout), text(&out.stderr));
    assert!(long_kept, "a name this library does not take is kept: {}", text(&out.stdout));
    assert!(text(&out.stdout).contains("kept"), "and reported: {}", text(&out.stdout));
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(!all.lines().any(|l| l.starts_with("FORGED-ROW")), "{all}");
    assert!(all.contains("kept\\nFORGED-ROW"), "the kept one is reported, escaped: {all}");
}

/// Review 2026-12-03 (second pass): a segment its creator poisoned before
/// dying opens nowhere, so nobody can be using it as a new opener would:
/// `rm --stale` removes it and `Segment::create` replaces it, as before
/// the unreadable-segment rule.
#[test]
fn a_poisoned_segment_of_a_dead_creator_is_cleaned_and_replaced() {
    let pid = std::process::id();
    let prefix = format!("shmctl-test-{pid}-poisoned-");
    let (swept, replaced) = (format!("/{prefix}swept"), format!("/{prefix}replaced"));
    for name in [&swept, &replaced] {
        let mut seg = Segment::create(name, &layout()).unwrap();
        seg.set_persist(true);
        seg.poison();
        drop(seg);
        let file = std::fs::OpenOptions::new().write(true).open(format!("/dev/shm{name}")).unwrap();
        file.write_all_at(&dead_pid().to_ne_bytes(), header::CREATOR as u64).unwrap();
    }
    let seg = Segment::create(&replaced, &layout()).expect("replaces the poisoned segment");
    drop(seg);
    let out = shmctl(&["rm", "--stale", "--prefix", &prefix]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains(&format!("removed {swept}")), "{}", text(&out.stdout));
    assert!(!std::path::Path::new(&format!("/dev/shm{swept}")).exists());
}

/// Names are anyone's choice: one with a space stays one cell of `list`'s
/// table, and one with a bidirectional override neither reaches the table
/// nor the JSON raw, while the JSON still decodes to the exact name.
#[test]
fn names_with_spaces_and_bidi_characters_stay_readable() {
    let name = format!("/shmctl-test-{}-sp ace\u{202e}x", std::process::id());
    let _segment = Segment::create(&name, &layout()).unwrap();

    let out = shmctl(&["list"]);
    let listed = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!listed.contains('\u{202e}'), "no raw override in the table:\n{listed}");
    let row = listed.lines().find(|l| l.contains("sp\\u{20}ace")).unwrap_or_else(|| panic!("row missing:\n{listed}"));
    let cell = row.split_whitespace().next().unwrap();
    assert_eq!(cell, shm_posix::list::printable_cell(&name), "the whole name is the first cell: {row}");

    for args in [&["list", "--json"][..], &["inspect", "--json", &name][..]] {
        let out = shmctl(args);
        let json = text(&out.stdout);
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        assert!(!json.contains('\u{202e}'), "{args:?}: no raw override in the JSON:\n{json}");
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        let names: Vec<&str> = match &value {
            serde_json::Value::Array(all) => all.iter().filter_map(|r| r["name"].as_str()).collect(),
            one => one["name"].as_str().into_iter().collect(),
        };
        assert!(names.contains(&name.as_str()), "{args:?}: the JSON decodes to the exact name: {names:?}");
    }
}
