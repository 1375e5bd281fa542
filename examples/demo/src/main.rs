//! The seed scenario: a client process sends requests through a shared
//! mailbox; a server process modifies each in place (upper-cases it and
//! stamps a sequence number) and signals the response back.
//!
//! `request-response` alone runs both roles as two child processes and
//! reports; `request-response server --name N` and `request-response client
//! --name N` run one role each (two terminals).

use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use shm_core::{CallError, Layout, ServeError};
use shm_posix::{FutexWait, Segment};

const MAILBOX: &str = "rpc";
const SLOT_SIZE: u32 = 256;
const BYE: &[u8] = b"bye";

const USAGE: &str = "\
Request/response between two processes through shared memory

Usage: request-response [server --name NAME [--idle-secs N] | client --name NAME] [--count N] [--no-pin]

With no role, runs a server and a client as two child processes and reports.
  server --name NAME   create the segment and serve until a client says bye
  --idle-secs N        (server) give up after N seconds without a request [default: 30]
  client --name NAME   open the segment, make the calls, check every response, report
  --count N            round trips to make [default: 100000]
  --no-pin             do not pin the two processes to different CPUs";

/// Which part this process plays.
enum Role {
    /// Start a server and a client and wait for both.
    Both,
    /// Create the segment and serve until a client says bye.
    Server { name: String, idle: Duration },
    /// Open the segment, make the calls, check every response, report.
    Client { name: String },
}

/// The command line.
struct Args {
    role: Role,
    /// Round trips to make.
    count: u64,
    /// Do not pin the two processes to different CPUs.
    no_pin: bool,
}

impl Args {
    /// Parses `request-response [server|client] [--name N] [--idle-secs N]
    /// [--count N] [--no-pin]`; `Ok(None)` for `--help`.
    fn parse(mut words: impl Iterator<Item = String>) -> Result<Option<Self>, String> {
        let (mut role, mut name, mut idle_secs, mut count, mut no_pin) = (None, None, 30, 100_000, false);
        while let Some(word) = words.next() {
            let mut value = |flag: &str| words.next().ok_or(format!("{flag} needs a value"));
            match word.as_str() {
                "server" | "client" if role.is_none() => role = Some(word),
                "--name" => name = Some(value("--name")?),
                "--idle-secs" => idle_secs = number("--idle-secs", &value("--idle-secs")?)?,
                "--count" => count = number("--count", &value("--count")?)?,
                "--no-pin" => no_pin = true,
                "-h" | "--help" => return Ok(None),
                other => return Err(format!("unexpected argument `{other}`")),
            }
        }
        let role = match (role.as_deref(), name) {
            (None, None) => Role::Both,
            (Some("server"), Some(name)) => Role::Server { name, idle: Duration::from_secs(idle_secs) },
            (Some("client"), Some(name)) => Role::Client { name },
            (Some(role), None) => return Err(format!("{role} needs --name NAME")),
            (_, Some(_)) => return Err("--name goes with server or client".into()),
        };
        Ok(Some(Self { role, count, no_pin }))
    }
}

fn number(flag: &str, value: &str) -> Result<u64, String> {
    value.parse().map_err(|_| format!("{flag} takes a whole number, not `{value}`"))
}

fn main() -> ExitCode {
    let args = match Args::parse(std::env::args().skip(1)) {
        Ok(Some(args)) => args,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("request-response: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let result = match &args.role {
        Role::Both => orchestrate(&args),
        Role::Server { name, idle } => {
            pin(&args, 0);
            serve(name, *idle)
        }
        Role::Client { name } => {
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
    let mut samples = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
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
        samples.push(u64::try_from(t0.elapsed().as_nanos()).unwrap_or(u64::MAX));
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
    samples.sort_unstable();
    let at = |q: f64| quantile(&samples, q);
    println!("round trip: median {} ns, p99 {} ns, p99.9 {} ns, max {} ns", at(0.5), at(0.99), at(0.999), at(1.0));
    Ok(())
}

/// The smallest sample with at least a fraction `q` of `sorted` at or
/// below it (0 when there are none).
fn quantile(sorted: &[u64], q: f64) -> u64 {
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.saturating_sub(1)).copied().unwrap_or(0)
}
