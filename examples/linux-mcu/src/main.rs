//! `cargo run --release --bin linux-mcu`: a Linux process and dual Cortex-M33
//! firmware speak the shm format to each other through one file.
//!
//! It builds the dual-core firmware with its `linux-peer` feature, creates a
//! 16 MiB memory file (`memfd_create`: it has no name in /dev/shm, so nothing
//! is left behind however the run ends) and starts QEMU's mps2-an521 with
//! that file as the board's RAM at `0x8000_0000`
//! (`-object memory-backend-file,share=on,mem-path=/proc/self/fd/N`, the
//! descriptor inherited), and maps the same file.
//! Each firmware core creates a segment in its window of that RAM (see
//! `examples/dual-core/src/linux.rs`); this process opens both as the other
//! side of their attach blocks, polling ([`HostWait`]):
//!
//! - window 0: [`CALLS`] calls to core 0's mailbox server (requests of 8 to
//!   64 bytes; each answer must be the request reversed), then, once the
//!   stream is over, the call that ends the run;
//! - window 1: [`MESSAGES`] messages from core 1's queue, each checked
//!   (number, length, every byte).
//!
//! A 64-bit x86 process and a 32-bit Armv8-M core on one layout, every
//! message checked. It exits 0 only if every call and message matched and
//! QEMU exited 0 (core 0's verdict). QEMU dies with this process
//! (`PR_SET_PDEATHSIG`), and a QEMU that exits early ends the checks at
//! once with its status.

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use shm_baremetal::{CoreId, Endpoint, Session, Window};
use shm_core::wait::HostDeadline;
use shm_core::Wait;

#[path = "../../dual-core/src/linux_protocol.rs"]
mod protocol;

use protocol::{mailbox_layout, message_byte, message_len, queue_layout, CALLS, DONE, MESSAGES, WINDOW_SIZE};

/// Size of the board RAM the file backs (the AN521's `mps.ram`).
const RAM_SIZE: u64 = 16 * 1024 * 1024;
/// How long an attach, a call or a receive may wait.
const TIMEOUT: Duration = Duration::from_secs(120);
/// How long QEMU may take to end the run once the last call went out.
const QEMU_EXIT_TIMEOUT: Duration = Duration::from_secs(60);

/// How long one poll of the host side sleeps once its spin is over (the
/// firmware cannot ring the host: both sides poll).
const POLL: Duration = Duration::from_micros(20);

/// The host's wait strategy: spin, then poll every [`POLL`], with deadlines
/// on the host's clock; identity and liveness are the attach session's
/// (this process is core 1 of each window's attach block). Every wait ends
/// at once when `qemu_gone` is set (QEMU exited while we waited).
struct HostWait<'w> {
    session: Session<'w>,
    qemu_gone: &'w AtomicBool,
}

impl Wait for HostWait<'_> {
    type Deadline = HostDeadline;
    fn deadline(&self, timeout: Option<Duration>) -> HostDeadline {
        HostDeadline::new(timeout)
    }
    fn expired(&self, deadline: &mut HostDeadline) -> bool {
        self.qemu_gone.load(Ordering::Relaxed) || deadline.expired()
    }
    fn park(&self, word: &shm_core::AtomicU32, expected: u32, deadline: &mut HostDeadline) {
        if word.load(std::sync::atomic::Ordering::Relaxed) == expected {
            std::thread::sleep(deadline.slice(POLL));
        }
    }
    fn wake(&self, _word: &shm_core::AtomicU32, _count: u32) {
        // The firmware polls: nothing to ring.
    }
    fn self_id(&self) -> u32 {
        self.session.id()
    }
    fn is_alive(&self, id: u32) -> bool {
        !self.qemu_gone.load(Ordering::Relaxed) && self.session.is_alive(id)
    }
}

/// What this run owns: the memory file, its mapping, QEMU. Dropping it
/// stops QEMU and unmaps (the file goes with its last descriptor).
struct Run {
    ram: OwnedFd,
    map: NonNull<u8>,
    qemu: Option<Child>,
}

impl Run {
    /// Creates the memory file (no name anywhere; inherited by QEMU) and
    /// maps both windows.
    fn create() -> Result<Self, String> {
        // No MFD_CLOEXEC: QEMU inherits it and opens /proc/self/fd/N.
        let ram = rustix::fs::memfd_create("shm-linux-mcu", rustix::fs::MemfdFlags::empty())
            .map_err(|e| format!("memfd_create: {e}"))?;
        rustix::fs::ftruncate(&ram, RAM_SIZE).map_err(|e| format!("sizing the memory file: {e}"))?;
        let mut run = Self { ram, map: NonNull::dangling(), qemu: None };
        // SAFETY: a fresh shared mapping of our own file, 2 windows long
        // (well inside its 16 MiB); unmapped in `drop`.
        let ptr = unsafe {
            rustix::mm::mmap(
                std::ptr::null_mut(),
                2 * WINDOW_SIZE,
                rustix::mm::ProtFlags::READ | rustix::mm::ProtFlags::WRITE,
                rustix::mm::MapFlags::SHARED,
                &run.ram,
                0,
            )
        }
        .map_err(|e| format!("mapping the memory file: {e}"))?;
        run.map = NonNull::new(ptr.cast()).ok_or("mmap returned null")?;
        Ok(run)
    }

    /// Window `index` (0 or 1) of the mapping.
    fn window(&self, index: usize) -> Window {
        // SAFETY: window `index` is `WINDOW_SIZE` bytes of our mapping, which
        // lives until `self` drops (after every user of the window); the
        // other party is the firmware, which touches it only through
        // shm-baremetal too.
        unsafe { Window::new(self.map.as_ptr().add(index * WINDOW_SIZE), WINDOW_SIZE) }.expect("64-aligned window")
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        if let Some(mut qemu) = self.qemu.take() {
            let _ = qemu.kill();
            let _ = qemu.wait();
        }
        if self.map != NonNull::dangling() {
            // SAFETY: the mapping made in `create`, no longer used.
            let _ = unsafe { rustix::mm::munmap(self.map.as_ptr().cast(), 2 * WINDOW_SIZE) };
        }
    }
}

/// Builds the firmware with the `linux-peer` feature; returns both ELFs.
fn build_firmware(dual_core: &Path) -> Result<(PathBuf, PathBuf), String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let target_dir = dual_core.join("target");
    let status = Command::new(cargo)
        .current_dir(dual_core)
        .args(["build", "--release", "--features", "linux-peer", "--bins", "--target-dir"])
        .arg(&target_dir)
        .env_remove("CARGO_TARGET_DIR")
        .status()
        .map_err(|e| format!("running cargo for the firmware: {e}"))?;
    if !status.success() {
        return Err(format!("building the firmware failed ({status}); is thumbv8m.main-none-eabi installed?"));
    }
    let bin = target_dir.join("thumbv8m.main-none-eabi/release");
    Ok((bin.join("core0"), bin.join("core1")))
}

/// Starts QEMU with the memory file `ram` (inherited) as the board's RAM and
/// the two images. QEMU gets no terminal (so none is left in raw mode) and
/// is killed if this process dies.
fn start_qemu(ram: &OwnedFd, core0: &Path, core1: &Path) -> Result<Child, String> {
    let backend =
        format!("memory-backend-file,id=ram,size={RAM_SIZE},share=on,mem-path=/proc/self/fd/{}", ram.as_raw_fd());
    let mut qemu = Command::new(std::env::var_os("QEMU").unwrap_or_else(|| "qemu-system-arm".into()));
    // SAFETY: runs in the forked child before exec; prctl is
    // async-signal-safe and touches no state of this process.
    unsafe {
        qemu.pre_exec(|| {
            rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))
                .map_err(std::io::Error::from)
        });
    }
    qemu.stdin(Stdio::null())
        .args(["-M", "mps2-an521,memory-backend=ram", "-object", &backend])
        .args(["-nographic", "-monitor", "none", "-semihosting-config", "enable=on,target=native"])
        .args(["-accel", &std::env::var("QEMU_ACCEL").unwrap_or_else(|_| "tcg,thread=multi".into())])
        .arg("-kernel")
        .arg(core0)
        .arg("-device")
        .arg(format!("loader,file={}", core1.display()))
        .spawn()
        .map_err(|e| format!("starting qemu-system-arm (apt-get install qemu-system-arm): {e}"))
}

/// Window 0: the calls, checked; then the call that ends the run.
fn calls(window: Window, stream_done: std::sync::mpsc::Receiver<()>, qemu_gone: &AtomicBool) -> Result<u32, String> {
    let me = Endpoint::new(window, CoreId::CORE1, CoreId::CORE0);
    let wait = HostWait { session: me.session(), qemu_gone };
    let link = me.open(&mailbox_layout(), &wait, TIMEOUT).map_err(|e| format!("attaching to core 0: {e}"))?;
    let client = link.client("rpc", &wait).map_err(|e| format!("mailbox client: {e}"))?;
    let mut request = [0u8; 64];
    let mut answer = [0u8; 64];
    for seq in 0..CALLS {
        let len = message_len(seq);
        for (k, b) in request[..len].iter_mut().enumerate() {
            *b = message_byte(seq, k);
        }
        let n = client.call_timeout(&request[..len], &mut answer, TIMEOUT).map_err(|e| format!("call {seq}: {e}"))?;
        let mut expected = request;
        expected[..len].reverse();
        if n != len || answer[..n] != expected[..len] {
            return Err(format!("call {seq}: wrong answer ({n} bytes)"));
        }
    }
    // Core 0 ends the QEMU run when it answers this: only once the stream
    // is over (or failed), so core 1 is not cut off.
    let _ = stream_done.recv();
    client.call_timeout(&DONE.to_le_bytes(), &mut answer, TIMEOUT).map_err(|e| format!("the final call: {e}"))?;
    Ok(CALLS)
}

/// Window 1: the stream, every message checked.
fn stream(window: Window, qemu_gone: &AtomicBool) -> Result<u32, String> {
    let me = Endpoint::new(window, CoreId::CORE1, CoreId::CORE0);
    let wait = HostWait { session: me.session(), qemu_gone };
    let link = me.open(&queue_layout(), &wait, TIMEOUT).map_err(|e| format!("attaching to core 1: {e}"))?;
    let mut rx = link.consumer("stream", &wait).map_err(|e| format!("queue consumer: {e}"))?;
    let mut buf = [0u8; 64];
    for seq in 0..MESSAGES {
        let n = rx.recv_timeout(&mut buf, TIMEOUT).map_err(|e| format!("message {seq}: {e}"))?;
        if n != message_len(seq) || buf[..n].iter().enumerate().any(|(k, &b)| b != message_byte(seq, k)) {
            return Err(format!("message {seq}: wrong length or bytes ({n} bytes)"));
        }
    }
    Ok(MESSAGES)
}

fn run() -> Result<(), String> {
    let dual_core = Path::new(env!("CARGO_MANIFEST_DIR")).join("../dual-core");
    let (core0, core1) = build_firmware(&dual_core)?;
    let mut run = Run::create()?;
    run.qemu = Some(start_qemu(&run.ram, &core0, &core1)?);
    let started = Instant::now();
    let (w0, w1) = (run.window(0), run.window(1));
    let qemu_gone = AtomicBool::new(false);
    let mut early_exit = None;
    let (called, streamed) = std::thread::scope(|s| {
        let (stream_done, stream_over) = std::sync::mpsc::channel();
        let calls = s.spawn(|| calls(w0, stream_over, &qemu_gone));
        let stream = s.spawn(|| stream(w1, &qemu_gone));
        // Watch QEMU while the checks run: if it exits first, every wait
        // ends at once and its status is the report.
        let mut stream_reported = false;
        while !calls.is_finished() {
            if stream.is_finished() && !stream_reported {
                // Core 0 ends the run at the final call, sent once the
                // stream is over.
                let _ = stream_done.send(());
                stream_reported = true;
            }
            if early_exit.is_none() {
                if let Some(qemu) = run.qemu.as_mut() {
                    if let Ok(Some(status)) = qemu.try_wait() {
                        early_exit = Some(status);
                        qemu_gone.store(true, Ordering::Relaxed);
                        let _ = stream_done.send(());
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let panicked = |_| String::from("a checking thread panicked");
        let streamed = stream.join().map_err(panicked);
        let _ = stream_done.send(());
        (calls.join().map_err(panicked), streamed)
    });
    if let Some(status) = early_exit.filter(|_| called.as_ref().map_or(true, |c| c.is_err())) {
        return Err(format!("QEMU exited ({status}) before the checks were done: {:?} / {:?}", called, streamed));
    }
    let (called, streamed) = (called??, streamed??);
    let elapsed = started.elapsed();
    println!(
        "linux-mcu: {called} mailbox calls to core 0 and {streamed} queue messages from core 1, every one checked, in {:.2} s",
        elapsed.as_secs_f64()
    );
    // Core 0 ends the run after the final call: QEMU's status is its verdict.
    let qemu = run.qemu.as_mut().ok_or("QEMU is gone")?;
    let deadline = Instant::now() + QEMU_EXIT_TIMEOUT;
    let status = loop {
        if let Some(status) = early_exit {
            break status;
        }
        match qemu.try_wait().map_err(|e| format!("waiting for QEMU: {e}"))? {
            Some(status) => break status,
            None if Instant::now() >= deadline => return Err("QEMU did not exit after the final call".into()),
            None => std::thread::sleep(Duration::from_millis(10)),
        }
    };
    run.qemu = None;
    if !status.success() {
        return Err(format!("the firmware reported failure ({status})"));
    }
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => {
            println!("linux-mcu: PASS");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("linux-mcu: FAIL: {e}");
            ExitCode::FAILURE
        }
    }
}
