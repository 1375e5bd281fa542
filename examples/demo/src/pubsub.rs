//! One publisher process and three subscriber processes on a broadcast
//! channel, one subscriber deliberately slow: run once under each policy.
//!
//! `pubsub` alone runs both policies: it creates a segment, starts three
//! subscriber processes (`pubsub subscriber ...`), waits until they have
//! joined, publishes 100 000 stamped 64-byte messages, closes the channel,
//! and reports what each subscriber saw: messages received, lag events and
//! messages missed, and the p99 latency from publish to receive.
//!
//! - **block**: the publisher waits for the slow subscriber, so every
//!   subscriber receives every message (checked).
//! - **overwrite**: the publisher never waits, so the slow subscriber falls a
//!   ring behind and is told how many messages it missed (`Lagged`); the
//!   others keep up. Received plus missed is every message (checked).
//!
//! Every message carries its sequence number and a pattern derived from it;
//! each subscriber checks both. Exits 0 only if every check held, and the
//! segment is gone when it exits.

use std::error::Error;
use std::process::{Child, Command, ExitCode};
use std::time::Duration;

use shm_core::broadcast::Policy;
use shm_core::{Layout, RecvError, Semaphore};
use shm_posix::{FutexWait, Segment};

type Result<T, E = Box<dyn Error>> = std::result::Result<T, E>;

const CHANNEL: &str = "ticks";
const READY: &str = "joined";
const SUBSCRIBERS: u32 = 3;
const MESSAGES: u64 = 100_000;
const MESSAGE_LEN: usize = 64;
/// The slow subscriber sleeps this long after every `SLOW_EVERY` messages.
const SLOW_PAUSE: Duration = Duration::from_millis(1);
const SLOW_EVERY: u64 = 500;
/// A bound on every wait, so nothing hangs if a process dies.
const STEP: Duration = Duration::from_secs(10);

fn now_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

/// Message `seq`: its number, the publish time, then a pattern from `seq`.
fn fill(seq: u64, buf: &mut [u8; MESSAGE_LEN]) {
    buf[..8].copy_from_slice(&seq.to_le_bytes());
    buf[8..16].copy_from_slice(&now_ns().to_le_bytes());
    for (i, b) in buf[16..].iter_mut().enumerate() {
        *b = (seq as usize).wrapping_mul(7).wrapping_add(i) as u8;
    }
}

fn policy_name(policy: Policy) -> &'static str {
    match policy {
        Policy::Block => "block",
        Policy::Overwrite => "overwrite",
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        None => run_all(),
        Some("subscriber") if args.len() == 4 => subscriber(&args[1], &args[2], args[3] == "slow"),
        Some("-h" | "--help") => {
            println!("Usage: pubsub   (runs one publisher and three subscriber processes, each policy once)");
            return ExitCode::SUCCESS;
        }
        _ => Err("usage: pubsub (no arguments; `pubsub --help`)".into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pubsub: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run_all() -> Result<()> {
    for policy in [Policy::Block, Policy::Overwrite] {
        run(policy)?;
    }
    println!("all checks passed");
    Ok(())
}

/// One policy: the segment, three subscriber processes, the publisher.
fn run(policy: Policy) -> Result<()> {
    let name = format!("/shm-pubsub-{}-{}", std::process::id(), policy_name(policy));
    // A 16 KiB ring holds about 200 messages: the slow subscriber's pauses
    // are far longer than that under the overwrite policy.
    let layout = Layout::new().broadcast(CHANNEL, 16 * 1024, SUBSCRIBERS, policy)?.semaphore(READY, 0)?;
    let segment = Segment::create(&name, &layout)?;
    let exe = std::env::current_exe()?;
    let mut children: Vec<Child> = Vec::new();
    let spawned = (0..SUBSCRIBERS).try_for_each(|k| -> Result<()> {
        let pace = if k == 2 { "slow" } else { "fast" };
        children.push(Command::new(&exe).args(["subscriber", &name, policy_name(policy), pace]).spawn()?);
        Ok(())
    });
    let published = spawned.and_then(|()| publish(&segment));
    // The publisher is dropped (the channel closed) inside `publish`; the
    // subscribers drain and report.
    let mut failed = published.err().map(|e| e.to_string());
    for (k, mut child) in children.into_iter().enumerate() {
        let status = child.wait()?;
        if !status.success() && failed.is_none() {
            failed = Some(format!("subscriber {k} failed ({status})"));
        }
    }
    drop(segment);
    match failed {
        None => Ok(()),
        Some(why) => Err(format!("policy {}: {why}", policy_name(policy)).into()),
    }
}

fn publish(segment: &Segment) -> Result<()> {
    let joined = segment.semaphore(READY, FutexWait::new())?;
    for _ in 0..SUBSCRIBERS {
        joined.wait_timeout(STEP).map_err(|e| format!("a subscriber did not join: {e}"))?;
    }
    let mut tx = segment.publisher(CHANNEL, FutexWait::new())?;
    let policy = tx.policy();
    println!("policy {}: {MESSAGES} messages of {MESSAGE_LEN} bytes to {SUBSCRIBERS} subscribers", policy_name(policy));
    let mut buf = [0u8; MESSAGE_LEN];
    let start = std::time::Instant::now();
    for seq in 0..MESSAGES {
        fill(seq, &mut buf);
        tx.publish_timeout(&buf, STEP)?;
    }
    let secs = start.elapsed().as_secs_f64();
    println!("  publisher: {MESSAGES} published in {:.3} s ({:.2} M msgs/s)", secs, MESSAGES as f64 / secs / 1e6);
    Ok(())
}

/// A subscriber process: join, count, check, report.
fn subscriber(name: &str, policy: &str, slow: bool) -> Result<()> {
    let segment = Segment::open(name, STEP)?;
    let mut rx = segment.subscriber(CHANNEL, FutexWait::new())?;
    segment.semaphore(READY, FutexWait::new())?.post()?;
    let (mut received, mut missed, mut lags) = (0u64, 0u64, 0u64);
    let mut latencies = Vec::with_capacity(MESSAGES as usize);
    let mut next = 0u64;
    let mut buf = [0u8; MESSAGE_LEN];
    loop {
        match rx.recv_timeout(&mut buf, STEP) {
            Ok(len) => {
                let arrived = now_ns();
                let seq = u64::from_le_bytes(buf[..8].try_into()?);
                let mut want = [0u8; MESSAGE_LEN];
                fill(seq, &mut want);
                if len != MESSAGE_LEN || buf[16..] != want[16..] || seq < next {
                    return Err(format!("slot {}: message {seq} altered or out of order", rx.slot()).into());
                }
                missed += seq - next;
                next = seq + 1;
                received += 1;
                latencies.push(arrived.saturating_sub(u64::from_le_bytes(buf[8..16].try_into()?)));
                if slow && received % SLOW_EVERY == 0 {
                    std::thread::sleep(SLOW_PAUSE);
                }
            }
            Err(RecvError::Lagged { .. }) => lags += 1,
            Err(RecvError::Closed) => break,
            Err(e) => return Err(e.into()),
        }
    }
    latencies.sort_unstable();
    let p99 = latencies.get(latencies.len().saturating_sub(1) * 99 / 100).copied().unwrap_or(0);
    let who = if slow { "slow" } else { "fast" };
    println!(
        "  subscriber {} ({who}): received {received}, missed {missed} in {lags} lag events, p99 latency {:.1} µs",
        rx.slot(),
        p99 as f64 / 1000.0
    );
    if received + missed != MESSAGES {
        return Err(format!("received {received} + missed {missed} is not {MESSAGES}").into());
    }
    if policy == "block" && (missed != 0 || lags != 0) {
        return Err(format!("the block policy lost {missed} messages").into());
    }
    if (rx.missed()) != missed {
        return Err(format!("Lagged reported {} missed, the sequence numbers {missed}", rx.missed()).into());
    }
    Ok(())
}
