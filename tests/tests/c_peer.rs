//! A C program speaks the format: `tests/c/peer.c`, built with the system C
//! compiler against the generated `shm-core/include/shm_format.h`, maps a
//! segment this test creates through shm-posix, validates its header, and
//! reads the queue message and the mailbox request this test posted.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use shm_core::format::{mailbox, queue, FORMAT_MAJOR, FORMAT_MINOR};
use shm_core::{Layout, SendError};
use shm_posix::{FutexWait, Segment};
use shm_tests::{assert_clean, unique};

const MESSAGE: &[u8] = b"hello from rust";
const REQUEST: &[u8] = b"ping 42";
const DIRECT_REQUEST: &[u8] = b"direct 7";
const SLOTS: u32 = 2;
const SLOT_SIZE: u32 = 100;
const CAPACITY: u32 = 1024;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ lies in the workspace").to_owned()
}

/// Builds `tests/c/peer.c`; `None` (with a note) if there is no C compiler.
fn build_peer() -> Option<PathBuf> {
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_owned());
    if Command::new(&cc).arg("--version").output().is_err() {
        eprintln!("SKIPPED: no C compiler (`{cc}`) on this machine; the C peer test needs one (set CC)");
        return None;
    }
    let root = workspace();
    let exe = Path::new(env!("CARGO_TARGET_TMPDIR")).join("c-peer");
    let compile = |extra: &[&str]| {
        Command::new(&cc)
            .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-O1", "-I"])
            .arg(root.join("shm-core/include"))
            .arg(root.join("tests/c/peer.c"))
            .arg("-o")
            .arg(&exe)
            .args(extra)
            .output()
            .expect("run the C compiler")
    };
    // glibc before 2.34 keeps `shm_open` in librt.
    let mut out = compile(&[]);
    if !out.status.success() {
        out = compile(&["-lrt"]);
    }
    assert!(out.status.success(), "tests/c/peer.c does not build:\n{}", String::from_utf8_lossy(&out.stderr));
    Some(exe)
}

fn run(exe: &Path, name: &str) -> (Output, String) {
    let out = Command::new(exe).arg(name).output().expect("run the C peer");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    (out, text)
}

#[test]
fn a_c_program_reads_what_rust_wrote() {
    let Some(exe) = build_peer() else { return };
    let name = unique("c-peer");
    let layout = Layout::new()
        .queue("q", CAPACITY)
        .unwrap()
        .mailbox("m", SLOTS, SLOT_SIZE)
        .unwrap()
        .semaphore("s", 3)
        .unwrap()
        .direct("d", SLOTS, SLOT_SIZE)
        .unwrap();
    {
        let seg = Segment::create(&name, &layout).unwrap();
        let mut tx = seg.producer("q", FutexWait::new()).unwrap();
        assert_eq!(tx.try_send(MESSAGE), Ok::<(), SendError>(()));
        let client = seg.client("m", FutexWait::new()).unwrap();
        let mut slot = client.try_claim().unwrap();
        slot.write(REQUEST);
        let pending = slot.send(REQUEST.len()).unwrap(); // posted: REQUEST until a server takes it
                                                         // The direct mailbox: a call whose wait ends at once leaves its
                                                         // request posted (no server runs).
        let mut direct = seg.direct_client("d", FutexWait::new()).unwrap();
        let r = direct.call_timeout(DIRECT_REQUEST, &mut [0; 64], std::time::Duration::ZERO);
        assert_eq!(r, Err(shm_core::CallError::PeerDied), "no server: the wait ends and names why");

        let (out, text) = run(&exe, &name);
        assert!(out.status.success(), "C peer failed: {text}{}", String::from_utf8_lossy(&out.stderr));
        let expected = [
            format!(
                "header version={FORMAT_MAJOR}.{FORMAT_MINOR} size={} file={} channels=4 state=READY",
                layout.size(),
                seg.mapped_len()
            ),
            format!(
                "queue q len={} payload=hello from rust frame={} max_message={}",
                MESSAGE.len(),
                queue::frame_size(MESSAGE.len() as u32),
                queue::max_message(CAPACITY)
            ),
            format!("mailbox m slots={SLOTS} slot_size={SLOT_SIZE} stride={}", mailbox::slot_stride(SLOT_SIZE)),
            format!("slot 0 state=REQUEST id=1 len={} payload=ping 42", REQUEST.len()),
            format!("direct d slots={SLOTS} slot_size={SLOT_SIZE} stride={}", mailbox::slot_stride(SLOT_SIZE)),
            format!("slot 0 state=REQUEST id=1 len={} payload=direct 7", DIRECT_REQUEST.len()),
        ];
        assert_eq!(text.lines().collect::<Vec<_>>(), expected, "what the C peer printed");

        // A segment its creator gave up on fails the C peer's validation too.
        seg.poison();
        let (out, _) = run(&exe, &name);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "C peer on a poisoned segment: {stderr}");
        assert!(stderr.contains("state not READY"), "{stderr}");
        drop(pending);
    }
    assert_clean(&name);
}
