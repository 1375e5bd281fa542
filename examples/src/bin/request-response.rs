//! The seed scenario: a client process sends requests through a shared
//! mailbox; a server process modifies each in place (upper-cases it and
//! stamps a sequence number) and signals the response back.
//!
//! `request-response` alone runs both roles as two child processes and
//! reports; `request-response server --name N` and `request-response client
//! --name N` run one role each (two terminals).

use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use hdrhistogram::Histogram;
use shm_core::{CallError, Layout, ServeError};
use shm_posix::{FutexWait, Segment};

const MAILBOX: &str = "rpc";
const SLOT_SIZE: u32 = 256;
const BYE: &[u8] = b"bye";

#[derive(Parser)]
#[command(about = "Request/response between two processes through shared memory")]
struct Args {
    #[command(subcommand)]
    role: Option<Role>,
    /// Round trips to make.
    #[arg(long, default_value_t = 100_000, global = true)]
    count: u64,
    /// Do not pin the two processes to different CPUs.
    #[arg(long, global = true)]
    no_pin: bool,
}

#[derive(Subcommand)]
enum Role {
    /// Create the segment and serve until a client says bye.
    Server {
        /// Segment name.
        #[arg(long)]
        name: String,
        /// Give up after this many seconds without a request.
        #[arg(long, default_value_t = 30)]
        idle_secs: u64,
    },
    /// Open the segment, make the calls, check every response, report.
    Client {
        /// Segment name.
        #[arg(long)]
        name: String,
    },
}

fn main() -> ExitCode {
    let args = Args::parse();
    let result = match &args.role {
        None => orchestrate(&args),
        Some(Role::Server { name, idle_secs }) => {
            pin(&args, 0);
            serve(name, Duration::from_secs(*idle_secs))
        }
        Some(Role::Client { name }) => {
            pin(&args, 1);
            call(name, args.count)
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("request-response: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Pins this process to `cpu` when the machine has more than one.
fn pin(args: &Args, cpu: usize) {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    if args.no_pin || cpus < 2 {
        return;
    }
    let mut set = rustix::thread::CpuSet::new();
    set.set(cpu % cpus);
    let _ = rustix::thread::sched_setaffinity(None, &set);
}

fn orchestrate(args: &Args) -> Result<(), String> {
    let name = format!("/shm-demo-{}", std::process::id());
    let exe = std::env::current_exe().map_err(|e| format!("cannot find own executable: {e}"))?;
    let mut common = vec!["--count".to_string(), args.count.to_string()];
    if args.no_pin {
        common.push("--no-pin".into());
    }
    let mut server = Command::new(&exe)
        .args(["server", "--name", &name])
        .args(&common)
        .spawn()
        .map_err(|e| format!("cannot start server: {e}"))?;
    let client = Command::new(&exe).args(["client", "--name", &name]).args(&common).status();
    let client_ok = client.as_ref().is_ok_and(|s| s.success());
    // The server exits when the client says bye; if the client failed, stop it.
    let deadline = Instant::now() + Duration::from_secs(if client_ok { 10 } else { 0 });
    let server_status = loop {
        match server.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            _ => {
                let _ = server.kill();
                let _ = server.wait();
                break None;
            }
        }
    };
    // Whatever happened, leave nothing behind in /dev/shm.
    let _ = shm_posix::remove(&name);
    match (client, server_status) {
        (Ok(c), Some(s)) if c.success() && s.success() => Ok(()),
        (Ok(c), _) if !c.success() => Err(format!("client failed ({c})")),
        (Err(e), _) => Err(format!("cannot run client: {e}")),
        (_, Some(s)) => Err(format!("server failed ({s})")),
        (_, None) => Err("server did not exit after the client said bye".into()),
    }
}

/// The server's work: upper-case the request into `out` and append the
/// sequence number (8 bytes, little endian) where it fits.
fn transform(request: &[u8], seq: u64, out: &mut [u8]) -> usize {
    let n = request.len();
    out[..n].copy_from_slice(request);
    out[..n].make_ascii_uppercase();
    let k = (out.len() - n).min(8);
    out[n..n + k].copy_from_slice(&seq.to_le_bytes()[..k]);
    n + k
}

fn serve(name: &str, idle: Duration) -> Result<(), String> {
    let layout = Layout::new().mailbox(MAILBOX, 4, SLOT_SIZE).map_err(|e| e.to_string())?;
    let segment = Segment::create(name, &layout).map_err(|e| e.to_string())?;
    let server = segment.server(MAILBOX, FutexWait::new()).map_err(|e| e.to_string())?;
    let mut scratch = [0u8; SLOT_SIZE as usize];
    let mut seq = 0u64;
    loop {
        let mut request = match server.recv_timeout(idle) {
            Ok(r) => r,
            Err(ServeError::Timeout) => {
                server.reclaim();
                return Err(format!("no request for {idle:?}; giving up"));
            }
            Err(e) => return Err(format!("receive failed: {e}")),
        };
        let bye = request.data() == BYE;
        // Modify in place: upper-case and stamp the sequence number.
        let len = request.len();
        scratch[..len].copy_from_slice(request.data());
        let n = transform(&scratch[..len], seq, request.buf_mut());
        request.respond(n).map_err(|e| format!("respond failed: {e}"))?;
        if bye {
            return Ok(());
        }
        seq += 1;
    }
}

fn call(name: &str, count: u64) -> Result<(), String> {
    let segment = Segment::open(name, Duration::from_secs(10)).map_err(|e| e.to_string())?;
    let client = segment.client(MAILBOX, FutexWait::new()).map_err(|e| e.to_string())?;
    let mut hist = Histogram::<u64>::new(3).map_err(|e| e.to_string())?;
    let mut response = [0u8; SLOT_SIZE as usize];
    let mut upper = [0u8; SLOT_SIZE as usize];
    let timeout = Duration::from_secs(10);
    let started = Instant::now();
    for i in 0..count {
        let mut slot = client.claim_timeout(timeout).map_err(|e| format!("call {i}: {e}"))?;
        let request = format!("request {i} from pid {}", std::process::id());
        let len = request.len();
        slot[..len].copy_from_slice(request.as_bytes());
        let t0 = Instant::now();
        let answer =
            slot.send(len).and_then(|p| p.wait_timeout(timeout)).map_err(|e: CallError| format!("call {i}: {e}"))?;
        hist.record(u64::try_from(t0.elapsed().as_nanos()).unwrap_or(u64::MAX)).map_err(|e| e.to_string())?;
        let want = transform(request.as_bytes(), i, &mut upper);
        if answer[..] != upper[..want] {
            return Err(format!("call {i}: wrong response {:?}", String::from_utf8_lossy(&answer)));
        }
    }
    let elapsed = started.elapsed();
    let n = client.call_timeout(BYE, &mut response, timeout).map_err(|e| format!("bye: {e}"))?;
    if &response[..3] != b"BYE" || n != 11 {
        return Err("server did not acknowledge bye".into());
    }
    println!(
        "{count} round trips in {:.2?} through {name} (futex semaphore, requests of 25-40 bytes), every response checked",
        elapsed
    );
    println!(
        "round trip: median {} ns, p99 {} ns, p99.9 {} ns, max {} ns",
        hist.value_at_quantile(0.5),
        hist.value_at_quantile(0.99),
        hist.value_at_quantile(0.999),
        hist.max()
    );
    Ok(())
}
