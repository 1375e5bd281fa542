//! Lifecycle of names in /dev/shm: who may replace, remove and unlink a
//! segment, and what is never followed, touched or removed.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Barrier;
use std::time::Duration;

use shm_core::format::header::{self, state};
use shm_core::Layout;
use shm_posix::{CreateError, CreateOptions, FutexWait, NamedSemaphoreWait, Segment};
use shm_tests::{assert_clean, unique, watchdog};

const PEER: &str = env!("CARGO_BIN_EXE_peer");

fn layout() -> Layout {
    Layout::new().queue("q", 256).unwrap()
}

fn path(name: &str) -> String {
    format!("/dev/shm{name}")
}

/// A PID that no process has now: a child that exited and was reaped.
fn dead_pid() -> u32 {
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    pid
}

/// Leaves a persisted segment under `name` whose recorded creator is dead.
fn make_stale(name: &str, dead: u32) {
    let opts = CreateOptions { persist: true, ..Default::default() };
    drop(Segment::create_with(name, &layout(), opts).unwrap());
    let file = std::fs::OpenOptions::new().write(true).open(path(name)).unwrap();
    file.write_all_at(&dead.to_ne_bytes(), header::CREATOR as u64).unwrap();
}

/// Defect 3: two creators race to replace one stale name. Exactly one may
/// win, every trial, whatever the interleaving.
#[test]
fn stale_replacement_race_has_exactly_one_winner() {
    let name = unique("replace-race");
    let dead = dead_pid();
    let opts = CreateOptions { replace_stale: true, ..Default::default() };
    for trial in 0..200 {
        make_stale(&name, dead);
        let barrier = Barrier::new(2);
        let (a, b) = std::thread::scope(|s| {
            let race = || {
                barrier.wait();
                Segment::create_with(&name, &layout(), opts)
            };
            let a = s.spawn(race);
            let b = s.spawn(race);
            (a.join().unwrap(), b.join().unwrap())
        });
        let oks = usize::from(a.is_ok()) + usize::from(b.is_ok());
        let show = |r: &Result<Segment, CreateError>| r.as_ref().map(|_| "created").map_err(ToString::to_string);
        assert_eq!(oks, 1, "trial {trial}: exactly one creator wins, got {:?} and {:?}", show(&a), show(&b));
        let (winner, loser) = if a.is_ok() { (a, b) } else { (b, a) };
        let winner = winner.unwrap();
        assert!(matches!(loser, Err(CreateError::Exists { .. })), "trial {trial}: the loser is told: {loser:?}");
        let at_name = std::fs::metadata(path(&name)).unwrap();
        assert_eq!(winner.id().inode, at_name.ino(), "trial {trial}: the name holds the winner's segment");
        drop(winner);
        assert_clean(&name);
    }
}

/// Defect 7: an old creator's drop must not unlink a newer segment that
/// took its name after `remove`.
#[test]
fn drop_of_an_old_creator_keeps_the_newer_segment() {
    let name = unique("old-drop");
    let old = Segment::create(&name, &layout()).unwrap();
    shm_posix::remove(&name).unwrap();
    let new = Segment::create(&name, &layout()).unwrap();
    drop(old);
    assert!(Path::new(&path(&name)).exists(), "the newer segment's name survives the old creator's drop");
    let peer = Segment::open(&name, Duration::ZERO).expect("the newer segment still opens");
    let mut tx = new.producer("q", FutexWait::new()).unwrap();
    let mut rx = peer.consumer("q", FutexWait::new()).unwrap();
    tx.send(b"still here").unwrap();
    let mut buf = [0u8; 32];
    assert_eq!(rx.recv_timeout(&mut buf, Duration::from_secs(10)).unwrap(), 10);
    drop((tx, rx));
    drop(peer);
    drop(new);
    assert_clean(&name);
}

/// New-user review 2026-12-03: a server stopping cleanly dropped its
/// endpoint before the segment, so a client told `Closed` reopened the
/// dying segment by name, was told `Closed` again, and only then found the
/// next run. `unlink` removes the name first: the endpoints work on, a new
/// run creates its own segment under the name, and the old handle's drop
/// leaves that one alone.
#[test]
fn unlink_first_lets_peers_find_the_next_run() {
    let name = unique("unlink-first");
    let old = Segment::create(&name, &layout()).unwrap();
    let peer = Segment::open(&name, Duration::ZERO).unwrap();
    let mut tx = old.producer("q", FutexWait::new()).unwrap();
    let mut rx = peer.consumer("q", FutexWait::new()).unwrap();
    assert!(peer.unlink().is_ok(), "an opener's unlink does nothing");
    assert!(Path::new(&path(&name)).exists());
    old.unlink().unwrap();
    assert!(!Path::new(&path(&name)).exists(), "the name is gone at once");
    assert!(Segment::open(&name, Duration::ZERO).is_err(), "a reopening peer does not find the old run");
    tx.send(b"after unlink").unwrap();
    let mut buf = [0u8; 32];
    assert_eq!(rx.recv_timeout(&mut buf, Duration::from_secs(10)).unwrap(), 12, "the endpoints work on");
    let next = Segment::create(&name, &layout()).unwrap();
    drop((tx, rx));
    drop(peer);
    old.unlink().unwrap();
    drop(old);
    assert!(Path::new(&path(&name)).exists(), "the next run's name survives the old handle");
    drop(next);
    assert_clean(&name);
}

/// Defect 4: a symlink planted in /dev/shm is never followed: not by open,
/// not by the EEXIST path of create, not by inspection or removal.
#[test]
fn symlinks_in_dev_shm_are_not_followed() {
    let name = unique("symlink");
    // A file outside /dev/shm holding a valid segment image.
    let target = format!("/tmp/shm-test-{}-symlink-target", std::process::id());
    let source = unique("symlink-source");
    let image = {
        let seg = Segment::create(&source, &layout()).unwrap();
        let bytes = std::fs::read(path(&source)).unwrap();
        drop(seg);
        bytes
    };
    std::fs::write(&target, &image).unwrap();
    std::os::unix::fs::symlink(&target, path(&name)).unwrap();

    let opened = Segment::open(&name, Duration::ZERO);
    assert!(opened.is_err(), "open must not follow a symlink: {opened:?}");
    let created = Segment::create(&name, &layout());
    assert!(matches!(created, Err(CreateError::Exists { creator: None, .. })), "{created:?}");
    let inspected = shm_posix::list::inspect(&name);
    assert!(inspected.is_err(), "inspect must not follow a symlink: {inspected:?}");
    assert!(shm_posix::remove(&name).is_err(), "a symlink is not a segment of ours to remove");
    assert_eq!(std::fs::read(&target).unwrap(), image, "the target was not written");

    std::fs::remove_file(path(&name)).unwrap();
    std::fs::remove_file(&target).unwrap();
    assert_clean(&name);
    assert_clean(&source);
}

/// Defect 2 (library side): a foreign file whose word at byte 32 happens to
/// be 1 (INITIALIZING) is not listed as ours.
#[test]
fn a_foreign_file_with_an_initializing_word_is_not_ours() {
    let name = unique("foreign-init");
    let mut bytes = vec![0u8; 4096];
    bytes[header::STATE..][..4].copy_from_slice(&state::INITIALIZING.to_ne_bytes());
    std::fs::write(path(&name), &bytes).unwrap();
    let listed = shm_posix::list::list().unwrap();
    let ours: Vec<_> = listed.iter().filter(|l| format!("{l:?}").contains(&name)).collect();
    assert!(ours.is_empty(), "a foreign file is listed as ours: {ours:?}");
    match Segment::create(&name, &layout()) {
        Err(CreateError::Exists { creator: None, .. }) => {}
        other => panic!("a foreign file is not a stale segment: {other:?}"),
    }
    assert_eq!(std::fs::read(path(&name)).unwrap(), bytes, "the foreign file is untouched");
    std::fs::remove_file(path(&name)).unwrap();
    assert_clean(&name);
}

/// Audit (c): a segment named `sem.X` would be the very file of named
/// semaphore `X`; such names are refused.
#[test]
fn segment_names_starting_with_sem_dot_are_refused() {
    let name = format!("/sem.shm-test-{}-clash", std::process::id());
    match Segment::create(&name, &layout()) {
        Err(CreateError::Name(e)) => assert!(e.to_string().contains("sem."), "{e}"),
        other => panic!("`{name}` is a semaphore's file name: {:?}", other.map(|_| "created")),
    }
    assert_clean(&name);
}

/// Audit (c): the named semaphores of a segment shared with its group get
/// the segment's mode, so the group can open them (and does not silently
/// fall back to polling).
#[test]
fn word_semaphores_get_the_segment_mode() {
    use std::os::unix::fs::PermissionsExt;
    let name = unique("sem-mode");
    let seg = Segment::create_with(&name, &layout(), CreateOptions { mode: 0o660, ..Default::default() }).unwrap();
    let wait = shm_posix::NamedSemaphoreWait::new(&seg);
    let sems: Vec<String> = shm_tests::leftovers(&name).into_iter().filter(|n| n.starts_with("sem.")).collect();
    assert!(!sems.is_empty(), "the wait strategy made its semaphores");
    for sem in &sems {
        let mode = std::fs::metadata(format!("/dev/shm/{sem}")).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o660, "{sem} has the segment's mode");
    }
    drop(wait);
    drop(seg);
    assert_clean(&name);
}

/// Audit (c): a semaphore file planted before we open it (empty: mapping it
/// would SIGBUS on first use; or another user's) is refused, never mapped.
/// Runs in a child process, so that a SIGBUS shows as a failure here
/// instead of killing the test harness.
#[test]
fn a_planted_semaphore_file_is_refused() {
    const VAR: &str = "SHM_TEST_PLANTED_SEM";
    if let Ok(name) = std::env::var(VAR) {
        return planted_semaphore_child(&name);
    }
    let name = unique("sem-planted");
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["a_planted_semaphore_file_is_refused", "--exact", "--nocapture", "--test-threads=1"])
        .env(VAR, &name)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(format!("/dev/shm/sem.{}", name.trim_start_matches('/')));
    assert!(
        out.status.success(),
        "child: {:?}\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_clean(&name);
}

fn planted_semaphore_child(name: &str) {
    use shm_core::Semaphore;
    use shm_posix::NamedSemaphore;
    let file = format!("/dev/shm/sem.{}", name.trim_start_matches('/'));
    std::fs::write(&file, b"").unwrap();
    let opened = NamedSemaphore::open_or_create(name);
    if let Ok(sem) = &opened {
        let _ = sem.post(); // SIGBUS here on the unfixed code
    }
    assert!(opened.is_err(), "an empty planted semaphore file is refused");
    assert!(NamedSemaphore::open(name).is_err(), "an empty planted semaphore file is refused");
    if rustix::process::geteuid().is_root() {
        // A well-formed semaphore file (zeros: count 0) owned by someone else.
        std::fs::write(&file, [0u8; 64]).unwrap();
        std::os::unix::fs::chown(&file, Some(65534), Some(65534)).unwrap();
        assert!(NamedSemaphore::open(name).is_err(), "another user's semaphore file is refused");
        assert!(NamedSemaphore::open_or_create(name).is_err(), "another user's semaphore file is refused");
    }
    std::fs::remove_file(&file).unwrap();
}

/// Defect 2: `rm --stale` re-checks right before unlinking: a segment
/// re-created under a stale name after it was listed survives.
#[test]
fn a_segment_recreated_after_listing_survives_stale_removal() {
    use shm_posix::list::Listed;
    use shm_posix::{RemoveError, RemoveOptions};
    let name = unique("relisted");
    make_stale(&name, dead_pid());
    let listed = shm_posix::list::list().unwrap();
    let object = listed
        .iter()
        .find_map(|l| match l {
            Listed::Segment(r) if r.name == name => Some(r.object),
            _ => None,
        })
        .expect("the stale segment is listed");
    // Between listing and removing, its name is re-created by a live creator.
    shm_posix::remove(&name).unwrap();
    let fresh = Segment::create(&name, &layout()).unwrap();
    let got = shm_posix::remove_with(&name, &RemoveOptions { force: false, object: Some(object) });
    assert!(matches!(got, Err(RemoveError::Replaced { .. })), "{got:?}");
    assert!(Path::new(&path(&name)).exists(), "the fresh segment survives");
    // And even without the listed identity, a live creator's segment stays.
    let got = shm_posix::remove_with(&name, &RemoveOptions::default());
    assert!(matches!(got, Err(RemoveError::Alive { .. })), "{got:?}");
    assert_eq!(Segment::open(&name, Duration::ZERO).unwrap().id(), fresh.id());
    drop(fresh);
    assert_clean(&name);
}

/// Defect 4: an object of another user (neither us nor root) is not mapped
/// read-write, even where permissions would let us.
#[test]
fn another_users_object_is_not_opened() {
    if !rustix::process::geteuid().is_root() {
        println!("skipped: giving a file to another user needs root (CI runs as root, so it runs there)");
        return;
    }
    let name = unique("other-owner");
    let opts = CreateOptions { persist: true, mode: 0o666, ..Default::default() };
    drop(Segment::create_with(&name, &layout(), opts).unwrap());
    std::os::unix::fs::chown(path(&name), Some(65534), Some(65534)).unwrap();
    let opened = Segment::open(&name, Duration::ZERO);
    // Sharing is explicit: a segment of that user is accepted when asked for.
    let shared = Segment::open_owned_by(&name, Duration::ZERO, 65534).map(|s| s.owner_uid());
    let _ = std::fs::remove_file(path(&name));
    assert!(
        matches!(&opened, Err(shm_posix::OpenError::Refused { reason: shm_posix::Refusal::Owner { uid: 65534 }, .. })),
        "{:?}",
        opened.map(|_| "opened")
    );
    assert_eq!(shared.ok(), Some(65534), "open_owned_by accepts that user's segment");
    assert_clean(&name);
}

/// Issue 9 audit, PID namespaces: a segment recorded in another PID
/// namespace is refused at open (its ids mean nothing here), never taken for
/// stale by a creator, and never removed by `remove` without `force`, even
/// when its creator's PID reads as dead in this namespace.
#[test]
fn a_segment_from_another_pid_namespace_is_never_judged() {
    let name = unique("foreign-ns");
    make_stale(&name, dead_pid());
    let ours = shm_posix::pid_namespace().expect("/proc/self/ns/pid");
    let file = std::fs::OpenOptions::new().write(true).open(path(&name)).unwrap();
    file.write_all_at(&ours.wrapping_add(1).max(1).to_ne_bytes(), header::CREATOR_DOMAIN as u64).unwrap();

    match Segment::open(&name, Duration::ZERO) {
        Err(e @ shm_posix::OpenError::ForeignNamespace { .. }) => {
            assert!(e.to_string().contains("one PID namespace"), "{e}")
        }
        other => panic!("a foreign namespace's segment must be refused: {other:?}"),
    }
    let opts = CreateOptions { replace_stale: true, ..Default::default() };
    assert!(
        matches!(Segment::create_with(&name, &layout(), opts), Err(CreateError::Exists { .. })),
        "a creator in another namespace is never judged dead"
    );
    let careful = shm_posix::RemoveOptions { force: false, object: None };
    assert!(
        matches!(shm_posix::remove_with(&name, &careful), Err(shm_posix::RemoveError::Unjudged { .. })),
        "not removed without force, and the error says the creator cannot be judged"
    );
    assert!(Path::new(&path(&name)).exists());
    shm_posix::remove_with(&name, &shm_posix::RemoveOptions { force: true, object: None }).unwrap();
    assert_clean(&name);
}

/// Issue 9 audit, PID reuse: a creator's PID that is alive again, but for a
/// process that started at another time, is a recycled PID: the segment is
/// stale and is replaced.
#[test]
fn a_recycled_creator_pid_reads_as_dead() {
    let name = unique("recycled");
    let opts = CreateOptions { persist: true, ..Default::default() };
    drop(Segment::create_with(&name, &layout(), opts).unwrap());
    // Our own PID (alive), with a start time that is not ours.
    let me = std::process::id();
    let start = shm_posix::process_start(me).unwrap();
    let file = std::fs::OpenOptions::new().write(true).open(path(&name)).unwrap();
    file.write_all_at(&me.to_ne_bytes(), header::CREATOR as u64).unwrap();
    file.write_all_at(&(start.wrapping_sub(2) | 1).to_ne_bytes(), header::CREATOR_START as u64).unwrap();
    let report = CreateOptions { replace_stale: false, ..Default::default() };
    match Segment::create_with(&name, &layout(), report) {
        Err(CreateError::Stale { creator, .. }) => assert_eq!(creator, me),
        other => panic!("a recycled PID is a dead creator: {:?}", other.map(|_| ())),
    }
    // The same words with our real start time: alive, refused as live.
    file.write_all_at(&start.to_ne_bytes(), header::CREATOR_START as u64).unwrap();
    assert!(matches!(Segment::create(&name, &layout()), Err(CreateError::Exists { creator: Some(c), .. }) if c == me));
    shm_posix::remove_with(&name, &shm_posix::RemoveOptions { force: true, object: None }).unwrap();
    assert_clean(&name);
}

/// Issue 9 audit, PID namespaces, for real: a process in a new PID namespace
/// (`unshare --pid --fork`, root only) cannot open our segment.
#[test]
fn a_process_in_a_new_pid_namespace_is_refused() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("SKIPPED: unshare --pid needs root");
        return;
    }
    let name = unique("netns-peer");
    let _seg = Segment::create(&name, &layout()).unwrap();
    let out = std::process::Command::new("unshare")
        .args(["--pid", "--fork", env!("CARGO_BIN_EXE_peer"), "try-open", &name])
        .output()
        .expect("run unshare");
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("was created in PID namespace"), "the peer must be refused: {text}");
    drop(_seg);
    assert_clean(&name);
}

/// Three processes replace one stale name at once, many times: exactly one
/// wins, the losers are told, and the name holds the winner's object while
/// it lives. (Threads share one PID; processes are what a deployment has.)
#[test]
fn stale_replacement_race_across_processes_has_exactly_one_winner() {
    let name = unique("xproc-race");
    let go = format!("/tmp/shm-test-{}-xproc-go", std::process::id());
    let dead = dead_pid();
    watchdog(Duration::from_secs(300), "cross-process replace race", || {
        for trial in 0..60 {
            let _ = std::fs::remove_file(&go);
            make_stale(&name, dead);
            let mut kids: Vec<(Child, BufReader<std::process::ChildStdout>)> = (0..3)
                .map(|_| {
                    let mut c = Command::new(PEER)
                        .args(["replace-stale", &name, &go])
                        .stdin(Stdio::piped())
                        .stdout(Stdio::piped())
                        .spawn()
                        .unwrap();
                    let mut out = BufReader::new(c.stdout.take().unwrap());
                    let mut l = String::new();
                    out.read_line(&mut l).unwrap();
                    assert_eq!(l.trim_end(), "waiting");
                    (c, out)
                })
                .collect();
            // All three are spinning on GO: start them at once.
            std::fs::write(&go, b"").unwrap();
            let lines: Vec<String> = kids
                .iter_mut()
                .map(|(_, out)| {
                    let mut l = String::new();
                    out.read_line(&mut l).unwrap();
                    l.trim_end().to_owned()
                })
                .collect();
            let winners: Vec<&String> = lines.iter().filter(|l| l.starts_with("won ")).collect();
            assert_eq!(winners.len(), 1, "trial {trial}: {lines:?}");
            assert!(lines.iter().all(|l| l.starts_with("won ") || l.starts_with("lost: ")), "{lines:?}");
            let inode: u64 = winners[0][4..].parse().unwrap();
            assert_eq!(
                std::fs::metadata(path(&name)).unwrap().ino(),
                inode,
                "trial {trial}: the winner holds the name"
            );
            for (mut c, _) in kids {
                drop(c.stdin.take());
                assert!(c.wait().unwrap().success());
            }
            assert_clean(&name);
        }
    });
    let _ = std::fs::remove_file(&go);
}

/// Review finding 3: an old creator's drop must not remove the word
/// semaphores (`sem.NAME.wOFF`) of a newer segment of the same name. Two
/// threads (each `Segment` has its own descriptor and lock) create, use and
/// drop one name in turn; while a thread holds the segment, its semaphore
/// files exist.
#[test]
fn word_semaphores_of_a_live_segment_survive_an_old_creators_drop() {
    let name = unique("semrace");
    let bare = name.trim_start_matches('/').to_owned();
    let layout = Layout::new().mailbox("m", 64, 64).unwrap();
    let run = |iters: u32| {
        let mut lost = 0;
        let mut done = 0;
        while done < iters {
            let Ok(seg) = Segment::create(&name, &layout) else { continue };
            let wait = NamedSemaphoreWait::new(&seg);
            // Gives the other thread time to drop its segment meanwhile; the
            // outcome must not depend on it.
            std::thread::sleep(Duration::from_millis(2));
            let c = &seg.channels()[0];
            let words: Vec<usize> = c.wait_words().collect();
            if words.iter().any(|o| !Path::new(&format!("/dev/shm/sem.{bare}.w{o}")).exists()) {
                lost += 1;
            }
            done += 1;
            drop(wait);
            drop(seg);
        }
        lost
    };
    let lost = watchdog(Duration::from_secs(300), "semaphore race", || {
        std::thread::scope(|s| {
            let a = s.spawn(|| run(300));
            let b = s.spawn(|| run(300));
            a.join().unwrap() + b.join().unwrap()
        })
    });
    assert_clean(&name);
    assert_eq!(lost, 0, "iterations whose live segment lost its semaphore files");
}

/// Review finding 4: a process that may only read a segment cannot keep
/// its creator from removing the name. An exclusive `flock`, which any
/// reader may take, used to stall the creator's drop for 10 s, after which
/// it left the name behind without a word.
#[test]
fn a_readers_flock_does_not_keep_the_creator_from_removing_its_name() {
    let name = unique("reader-flock");
    let seg = Segment::create(&name, &layout()).unwrap();
    let reader = std::fs::File::open(path(&name)).unwrap();
    rustix::fs::flock(&reader, rustix::fs::FlockOperation::NonBlockingLockExclusive).unwrap();
    watchdog(Duration::from_secs(60), "the creator's drop", || drop(seg));
    assert!(!Path::new(&path(&name)).exists(), "a reader's flock kept the creator from removing the name");
    drop(reader);
    assert_clean(&name);
}

/// Review finding 4: a read lock (`fcntl`), which a reader may also take,
/// still conflicts with the remover's write lock; `Segment::close` then
/// reports, at once, that the name was left, instead of a silent drop.
#[test]
fn close_reports_a_name_it_could_not_remove() {
    let name = unique("reader-rdlock");
    let seg = Segment::create(&name, &layout()).unwrap();
    let reader = std::fs::File::open(path(&name)).unwrap();
    // A POSIX record lock: it conflicts with the library's OFD lock even
    // within one process.
    rustix::fs::fcntl_lock(&reader, rustix::fs::FlockOperation::NonBlockingLockShared).unwrap();
    let err = watchdog(Duration::from_secs(60), "close", || seg.close()).unwrap_err();
    assert!(err.to_string().contains("read lock"), "says why: {err}");
    assert!(Path::new(&path(&name)).exists(), "the name is left, as reported");
    drop(reader);
    shm_posix::remove(&name).unwrap();
    assert_clean(&name);

    // Without the reader, close removes the name, and so does nothing more
    // at drop.
    let seg = Segment::create(&name, &layout()).unwrap();
    seg.close().unwrap();
    assert_clean(&name);
}

/// Review finding 6: inspecting reads a copy (`pread`), never a mapping of
/// the segment, so an owner that truncates it meanwhile cannot kill the
/// inspecting process with SIGBUS (nor `list`, nor a removal's checks).
#[test]
fn inspection_survives_the_owner_truncating_the_segment() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let name = unique("truncated");
    let layout = Layout::new().mailbox("m", 8, 4096).unwrap().queue("q", 1 << 16).unwrap();
    let seg = Segment::create(&name, &layout).unwrap();
    let size = layout.size() as u64;
    let file = std::fs::OpenOptions::new().write(true).open(path(&name)).unwrap();
    let stop = AtomicBool::new(false);
    let (mut described, mut refused) = (0u32, 0u32);
    watchdog(Duration::from_secs(300), "inspecting a segment being truncated", || {
        std::thread::scope(|s| {
            s.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    file.set_len(0).unwrap();
                    file.set_len(size).unwrap();
                }
            });
            // Each call either describes the segment or refuses it (short,
            // zero, mismatched); none may fault.
            for _ in 0..2000 {
                match shm_posix::list::inspect(&name) {
                    Ok(_) => described += 1,
                    Err(_) => refused += 1,
                }
                let _ = shm_posix::list::list();
            }
            stop.store(true, Ordering::Relaxed);
        });
    });
    println!("described {described}, refused {refused}");
    drop(seg);
    assert_clean(&name);
}

/// Review finding 7: a file without the magic is said to be no segment of
/// this library, whatever its other bytes; never "not ready, its creator
/// is still initializing it", a state no named segment has any more.
#[test]
fn a_file_without_the_magic_is_reported_as_not_a_segment() {
    let name = unique("foreign-message");
    let mut bytes = vec![0u8; 4096];
    bytes[header::STATE..header::STATE + 4].copy_from_slice(&state::INITIALIZING.to_ne_bytes());
    std::fs::write(path(&name), &bytes).unwrap();
    let inspected = shm_posix::list::inspect(&name).unwrap_err().to_string();
    let opened = Segment::open(&name, Duration::ZERO).unwrap_err().to_string();
    let created = Segment::create(&name, &layout()).map(|_| ()).unwrap_err().to_string();
    std::fs::remove_file(path(&name)).unwrap();
    for message in [&inspected, &opened, &created] {
        assert!(message.contains("not a segment of this library"), "{message}");
        assert!(!message.contains("not yet") && !message.contains("initializing"), "{message}");
    }
    assert_clean(&name);
}
