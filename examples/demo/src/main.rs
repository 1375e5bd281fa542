//! The seed scenario: a client process sends requests through a shared
//! mailbox; a server process modifies each in place (upper-cases it and
//! stamps a sequence number) and signals the response back.
//!
//! `request-response` alone runs both roles as two child processes and
//! reports; `request-response server --name N` and `request-response client
//! --name N` run one role each (two terminals).
//!
//! Ctrl-C stops a server cleanly: it closes the mailbox (its clients get
//! `Closed`) and removes the segment. A server killed without that (or by
//! a second Ctrl-C) leaves a stale segment, which the next server replaces.
//! `client --reconnect` carries on across a server restart: on `Closed` or
//! `PeerDied` it waits for the next live server (`Segment::open_live`) and
//! retries the call.

use std::error::Error;
use std::process::{Command, ExitCode};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use shm_core::{ErrorKind, HasErrorKind, Layout, ServeError, Wait};
use shm_posix::{FutexWait, OwnedClient, Segment};

type Result<T, E = Box<dyn Error>> = std::result::Result<T, E>;

const MAILBOX: &str = "rpc";
const SLOT_SIZE: u32 = 256;
const BYE: &[u8] = b"bye";

const USAGE: &str = "\
Request/response between two processes through shared memory

Usage: request-response [server --name NAME [--idle-secs N] | client --name NAME [--reconnect]] [--count N] [--no-pin]

With no role, runs a server and a client as two child processes and reports.
  server --name NAME   create the segment and serve until a client says bye
  --idle-secs N        (server) give up after N seconds without a request [default: 30]
  client --name NAME   open the segment, make the calls, check every response, report
  --reconnect          (client) carry on across server restarts (Ctrl-C, crash)
  --count N            round trips to make [default: 100000]
  --no-pin             do not pin the two processes to different CPUs";

/// Which part this process plays.
enum Role {
    /// Start a server and a client and wait for both.
    Both,
    /// Create the segment and serve until a client says bye.
    Server { name: String, idle: Duration },
    /// Open the segment, make the calls, check every response, report.
    Client { name: String, reconnect: bool },
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
        let mut reconnect = false;
        while let Some(word) = words.next() {
            let mut value = |flag: &str| words.next().ok_or(format!("{flag} needs a value"));
            match word.as_str() {
                "server" | "client" if role.is_none() => role = Some(word),
                "--name" => name = Some(value("--name")?),
                "--idle-secs" => idle_secs = number("--idle-secs", &value("--idle-secs")?)?,
                "--count" => count = number("--count", &value("--count")?)?,
                "--no-pin" => no_pin = true,
                "--reconnect" => reconnect = true,
                "-h" | "--help" => return Ok(None),
                other => return Err(format!("unexpected argument `{other}`")),
            }
        }
        let role = match (role.as_deref(), name) {
            (None, None) => Role::Both,
            (Some("server"), Some(name)) => Role::Server { name, idle: Duration::from_secs(idle_secs) },
            (Some("client"), Some(name)) => Role::Client { name, reconnect },
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
    // Ctrl-C (SIGINT) and SIGTERM set this flag instead of killing us, so a
    // server closes its mailbox and removes its segment, and the
    // orchestrator cleans up after its children.
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        if let Err(e) = signal_hook::flag::register(signal, Arc::clone(&stop)) {
            eprintln!("request-response: cannot handle signal {signal}: {e}");
        }
    }
    let result = match &args.role {
        Role::Both => orchestrate(&args),
        Role::Server { name, idle } => {
            pin(&args, 0);
            serve(name, *idle, &stop)
        }
        Role::Client { name, reconnect } => {
            pin(&args, 1);
            call(name, args.count, *reconnect)
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

fn orchestrate(args: &Args) -> Result<()> {
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
        (Ok(c), _) if !c.success() => Err(format!("client failed ({c})").into()),
        (Err(e), _) => Err(format!("cannot run client: {e}").into()),
        (_, Some(s)) => Err(format!("server failed ({s})").into()),
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

fn serve(name: &str, idle: Duration, stop: &AtomicBool) -> Result<()> {
    let layout = Layout::new().mailbox(MAILBOX, 4, SLOT_SIZE)?;
    // A segment left by a server that was killed is replaced; a live one is not.
    let segment = Segment::create(name, &layout)?;
    let server = segment.server(MAILBOX, FutexWait::new())?;
    println!("server: serving {name}");
    let mut scratch = [0u8; SLOT_SIZE as usize];
    let mut seq = 0u64;
    let mut idle_since = Instant::now();
    loop {
        if stop.load(Ordering::Relaxed) {
            // The name first, so that clients told `Closed` reopen the next
            // server's segment, not this one; then dropping the server
            // closes the mailbox (clients get `Closed`).
            println!("server: interrupted after {seq} requests; closing {name}");
            segment.unlink()?;
            return Ok(());
        }
        // Short waits, so that Ctrl-C is seen promptly.
        let mut request = match server.recv_timeout(Duration::from_millis(100)) {
            Ok(r) => r,
            Err(ServeError::Timeout) if idle_since.elapsed() < idle => continue,
            Err(ServeError::Timeout) => {
                server.reclaim();
                return Err(format!("no request for {idle:?}; giving up").into());
            }
            Err(e) => return Err(e.into()),
        };
        idle_since = Instant::now();
        let bye = request.data() == BYE;
        // Modify in place: upper-case and stamp the sequence number.
        let len = request.len();
        scratch[..len].copy_from_slice(request.data());
        let n = transform(&scratch[..len], seq, request.buf_mut());
        request.respond(n)?;
        if bye {
            return Ok(());
        }
        seq += 1;
    }
}

/// A client of the demo's mailbox, owning its segment (so it can be
/// replaced when the server restarts).
fn connect(name: &str, live: bool) -> Result<OwnedClient<FutexWait>> {
    let timeout = Duration::from_secs(30);
    let segment = if live { Segment::open_live(name, timeout)? } else { Segment::open(name, timeout)? };
    let segment = Arc::new(segment);
    Ok(Segment::owned_client(&segment, MAILBOX, FutexWait::new())?)
}

fn call(name: &str, count: u64, reconnect: bool) -> Result<()> {
    let mut client = connect(name, reconnect)?;
    println!("client: connected to {name}");
    let mut samples = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
    let mut response = [0u8; SLOT_SIZE as usize];
    let mut upper = [0u8; SLOT_SIZE as usize];
    let timeout = Duration::from_secs(10);
    let started = Instant::now();
    // The server stamps its own sequence number: it starts at 0 with each
    // server, so a reconnect starts the count again.
    let (mut seq, mut reconnects) = (0u64, 0u32);
    let mut i = 0u64;
    while i < count {
        let request = format!("request {i} from pid {}", std::process::id());
        let t0 = Instant::now();
        let n = match one_call(&client, request.as_bytes(), &mut response, timeout) {
            Ok(n) => n,
            // The server stopped: wait for the next one and retry this call.
            Err(e) if reconnect && matches!(e.kind(), ErrorKind::Closed | ErrorKind::PeerDied) => {
                println!("client: call {i}: {e}; waiting for a live server");
                client = connect(name, true)?;
                println!("client: connected to {name}");
                (seq, reconnects) = (0, reconnects + 1);
                continue;
            }
            Err(e) => return Err(format!("call {i}: {e}").into()),
        };
        samples.push(u64::try_from(t0.elapsed().as_nanos()).unwrap_or(u64::MAX));
        let want = transform(request.as_bytes(), seq, &mut upper);
        if response[..n] != upper[..want] {
            return Err(format!("call {i}: wrong response {:?}", String::from_utf8_lossy(&response[..n])).into());
        }
        if reconnect && (i + 1).is_multiple_of(1000) {
            println!("client: progress {}", i + 1);
        }
        (i, seq) = (i + 1, seq + 1);
    }
    let elapsed = started.elapsed();
    let n = client.call_timeout(BYE, &mut response, timeout)?;
    if &response[..3] != b"BYE" || n != 11 {
        return Err("server did not acknowledge bye".into());
    }
    println!(
        "{count} round trips in {:.2?} through {name} (futex semaphore, requests of 25-40 bytes), every response \
         checked, {reconnects} reconnect(s)",
        elapsed
    );
    samples.sort_unstable();
    let at = |q: f64| quantile(&samples, q);
    println!("round trip: median {} ns, p99 {} ns, p99.9 {} ns, max {} ns", at(0.5), at(0.99), at(0.999), at(1.0));
    Ok(())
}

/// One call: the request is written into a slot in place, the server
/// answers in the same slot, and the response is copied into `out`.
fn one_call(
    client: &OwnedClient<FutexWait>,
    request: &[u8],
    out: &mut [u8],
    timeout: Duration,
) -> Result<usize, shm_core::CallError> {
    let mut deadline = client.strategy().deadline(Some(timeout));
    let mut slot = client.claim_deadline(&mut deadline)?;
    slot[..request.len()].copy_from_slice(request);
    let answer = slot.send(request.len())?.wait_deadline(&mut deadline)?;
    Ok(answer.read_into(out))
}

/// The smallest sample with at least a fraction `q` of `sorted` at or
/// below it (0 when there are none).
fn quantile(sorted: &[u64], q: f64) -> u64 {
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.saturating_sub(1)).copied().unwrap_or(0)
}
