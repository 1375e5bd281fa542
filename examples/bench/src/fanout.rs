//! One writer to many readers (`--fanout 1,4`): a publisher process and N
//! subscriber processes on the shm broadcast channel (block policy, so
//! nothing is lost), against one writer process writing every message into
//! N pipes, one per reader process, and with the `iceoryx2` feature against
//! iceoryx2 publish-subscribe (lossless too, subscribers polling; see
//! `iox::Fanout`). One row per method and N: messages per second each
//! subscriber receives, and the latency from publish to receive of every
//! message at every subscriber.
//!
//! ```text
//! cargo run --release --bin shm-bench -- --fanout 1,4 --methods broadcast,pipe --clients 0 --sizes 64 --throughput-sizes 64
//! cargo run --release -p shm-bench --features iceoryx2 -- --fanout 1,4 --methods broadcast,pipe,iceoryx2-pubsub --clients 0 --sizes 64 --throughput-sizes 64
//! ```
//!
//! # Design
//!
//! One segment holds the channel (for the pipe and iceoryx2 rows, only the
//! gates) and two semaphores: every process posts `ready` once it is set
//! up, the publisher then waits on `go`, which the orchestrator posts once
//! all N + 1 are ready. Each message carries its index and the publisher's
//! `CLOCK_MONOTONIC` reading, which all processes share; a subscriber checks
//! the index (nothing lost, duplicated or reordered), records the latency in
//! a histogram, and reports its rate as its messages over the span from the
//! first message's publish time to its last receive.

use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use shm_core::broadcast::Policy;
use shm_core::{Layout, Semaphore};
use shm_posix::{FutexWait, Segment};

use crate::error::{chain, Error};
use crate::placement::Cpus;
use crate::procs::{inherited_fd, Peer};
use crate::report;
use crate::runs::Ctx;
use crate::strategy::pid_exists;
use crate::{Method, PeerArgs, Test};

/// Message bytes.
pub const SIZE: usize = 64;
/// The broadcast channel's name.
const CHANNEL: &str = "fan";
/// Its ring.
const RING: u32 = 64 * 1024;
const READY: &str = "ready";
const GO: &str = "go";
/// A bound on every wait of a row.
const STEP: Duration = Duration::from_secs(60);
/// How often the orchestrator, waiting for `ready`, checks no peer died.
const READY_SLICE: Duration = Duration::from_millis(100);
/// Longest latency the histogram holds.
const MAX_NS: u64 = 60_000_000_000;

/// Samples each iceoryx2 subscriber's buffer holds: as many 64-byte
/// messages as the broadcast ring holds, so both let the same queue build up.
#[cfg(feature = "iceoryx2")]
const IOX_BUFFER: usize = (RING / shm_core::format::broadcast::frame_size(SIZE as u32)) as usize;

/// The methods of this mode, in table order.
pub const METHODS: &[Method] = &[
    Method::Broadcast,
    Method::Pipe,
    #[cfg(feature = "iceoryx2")]
    Method::Iceoryx2Pubsub,
];

/// One row: one writer, N readers, one method.
#[derive(Debug, Clone, Serialize)]
pub struct FanoutRow {
    /// Method id (`broadcast`, `pipe`, `iceoryx2-pubsub`).
    pub method: &'static str,
    /// What the table calls it.
    pub label: &'static str,
    /// Reader processes.
    pub subscribers: u32,
    /// Message bytes.
    pub size: usize,
    /// Messages each reader receives.
    pub messages: u64,
    /// Where the processes ran.
    pub placement: String,
    /// Messages per second per reader: the mean over the readers.
    pub per_subscriber_msgs_per_s: Option<f64>,
    /// The slowest reader's messages per second.
    pub slowest_msgs_per_s: Option<f64>,
    /// Median publish-to-receive latency, ns (every message, every reader).
    pub median_ns: Option<u64>,
    /// 99th percentile, ns.
    pub p99_ns: Option<u64>,
    /// Why there are no figures, if there are none.
    pub error: Option<String>,
}

/// What one reader process reports (one JSON line).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ReaderReport {
    /// Publish time of the first message, ns.
    pub start_ns: u64,
    /// Receive time of the last message, ns.
    pub end_ns: u64,
    /// The latency histogram: (highest equivalent value ns, count).
    pub latencies: Vec<(u64, u64)>,
}

/// Runs a row for every selected method at every reader count; says
/// whether any failed.
pub fn run_all(ctx: &mut Ctx, counts: &[u32], messages: u64, selected: &[Method]) -> (Vec<FanoutRow>, bool) {
    let (mut rows, mut failed) = (Vec::new(), false);
    for &method in METHODS.iter().filter(|m| selected.is_empty() || selected.contains(m)) {
        for &n in counts {
            eprint!("shm-bench: fan-out, 1 -> {n:<3}, {:<30}", label(method));
            let row = row(ctx, method, n, messages);
            match &row.error {
                Some(e) => eprintln!(" {e}"),
                None => eprintln!(
                    " {}/s per reader",
                    row.per_subscriber_msgs_per_s.map_or_else(|| "-".into(), report::rate_label)
                ),
            }
            failed |= row.error.is_some();
            rows.push(row);
        }
    }
    (rows, failed)
}

fn label(method: Method) -> &'static str {
    match method {
        Method::Broadcast => "shm broadcast (block policy)",
        #[cfg(feature = "iceoryx2")]
        Method::Iceoryx2Pubsub => "iceoryx2 pub-sub (blocking), polling",
        _ => "one pipe per reader",
    }
}

fn row(ctx: &mut Ctx, method: Method, n: u32, messages: u64) -> FanoutRow {
    let cpus = ctx.placement.assign(n as usize + 1);
    let mut row = FanoutRow {
        method: method.id(),
        label: label(method),
        subscribers: n,
        size: SIZE,
        messages,
        placement: match &cpus {
            Cpus::Pinned(c) => format!("pinned to CPUs {c:?}"),
            Cpus::Unpinned { why } => format!("unpinned: {why}"),
        },
        per_subscriber_msgs_per_s: None,
        slowest_msgs_per_s: None,
        median_ns: None,
        p99_ns: None,
        error: None,
    };
    let result = measure_row(ctx, method, n, messages, &cpus);
    ctx.names.sweep();
    match result {
        Ok(readers) => fill(&mut row, &readers),
        Err(e) => row.error = Some(format!("failed: {}", chain(&e))),
    }
    row
}

fn measure_row(ctx: &mut Ctx, method: Method, n: u32, messages: u64, cpus: &Cpus) -> Result<Vec<ReaderReport>, Error> {
    if n == 0 || n > 64 {
        return Err(Error::Usage("--fanout counts are 1 to 64".into()));
    }
    let name = ctx.names.segment();
    let mut layout =
        Layout::new().semaphore(READY, 0).and_then(|l| l.semaphore(GO, 0)).map_err(Error::shm("layout"))?;
    if method == Method::Broadcast {
        layout = layout.broadcast(CHANNEL, RING, n, Policy::Block).map_err(Error::shm("layout"))?;
    }
    let seg = Segment::create(&name, &layout).map_err(Error::shm("create"))?;
    let (ready, go) = (gate(&seg, READY)?, gate(&seg, GO)?);
    // Made before the peers start, which open it; it lives until they are done.
    #[cfg(feature = "iceoryx2")]
    let _service = match method {
        Method::Iceoryx2Pubsub => Some(crate::iox::Fanout::create(&name, n as usize, IOX_BUFFER)?),
        _ => None,
    };
    let pipes: Vec<(OwnedFd, OwnedFd)> =
        if method == Method::Pipe { (0..n).map(|_| pipe()).collect::<Result<_, _>>()? } else { Vec::new() };
    let shared = ctx.placement.shares_cpu(n as usize + 1);
    let all = ctx.placement.cpus.clone();
    let spawn = |test: Test, index: u32, fds: &[&OwnedFd]| {
        let mut args = Ctx::peer_args(test, method, SIZE, &name, 0, messages);
        args.extend(["--client".into(), index.to_string()]);
        ctx.spawn_peer(args, fds, &cpus.of(index as usize, &all), shared)
    };
    let readers = (1..=n)
        .map(|i| {
            let fds: Vec<&OwnedFd> = pipes.get(i as usize - 1).map(|(r, _)| r).into_iter().collect();
            spawn(Test::FanoutSubscriber, i, &fds)
        })
        .collect::<Result<Vec<Peer>, Error>>()?;
    let writes: Vec<&OwnedFd> = pipes.iter().map(|(_, w)| w).collect();
    let publisher = spawn(Test::FanoutPublisher, 0, &writes)?;
    drop(pipes);
    let mut waiting = n + 1;
    while waiting > 0 {
        match ready.wait_timeout(READY_SLICE) {
            Ok(()) => waiting -= 1,
            Err(_) if readers.iter().chain([&publisher]).all(|p| pid_exists(p.pid())) => continue,
            Err(_) => break,
        }
    }
    go.post().map_err(Error::shm("posting go"))?;
    let reports = readers.into_iter().map(Peer::finish::<ReaderReport>).collect::<Result<Vec<_>, Error>>()?;
    let _: ReaderReport = publisher.finish()?;
    Ok(reports)
}

fn pipe() -> Result<(OwnedFd, OwnedFd), Error> {
    rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).map_err(|e| Error::os("pipe")(e.into()))
}

fn gate<'s>(seg: &'s Segment, name: &str) -> Result<shm_core::CountingSemaphore<'s, FutexWait>, Error> {
    seg.semaphore(name, FutexWait::new()).map_err(Error::shm(format!("semaphore {name}")))
}

fn fill(row: &mut FanoutRow, readers: &[ReaderReport]) {
    let Ok(mut hist) = Histogram::<u64>::new_with_bounds(1, MAX_NS, 3) else { return };
    let mut rates = Vec::new();
    for r in readers {
        for &(value, count) in &r.latencies {
            hist.saturating_record_n(value, count);
        }
        let span = r.end_ns.saturating_sub(r.start_ns).max(1) as f64 / 1e9;
        rates.push(row.messages as f64 / span);
    }
    row.per_subscriber_msgs_per_s = Some(rates.iter().sum::<f64>() / rates.len().max(1) as f64);
    row.slowest_msgs_per_s = rates.iter().copied().reduce(f64::min);
    row.median_ns = Some(hist.value_at_quantile(0.5));
    row.p99_ns = Some(hist.value_at_quantile(0.99));
}

/// `CLOCK_MONOTONIC` in ns, shared by every process.
fn monotonic_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    (t.tv_sec as u64).saturating_mul(1_000_000_000).saturating_add(t.tv_nsec as u64)
}

/// Message `i`: its index, the publish time, then zeros.
fn stamp(i: u64, msg: &mut [u8; SIZE]) {
    msg[..8].copy_from_slice(&i.to_le_bytes());
    msg[8..16].copy_from_slice(&monotonic_ns().to_le_bytes());
}

/// The writer process of a row: line up, then publish every message.
pub fn publish(a: &PeerArgs, seg: &Segment) -> Result<ReaderReport, Error> {
    let (ready, go) = (gate(seg, READY)?, gate(seg, GO)?);
    let mut msg = [0u8; SIZE];
    match a.method {
        #[cfg(feature = "iceoryx2")]
        Method::Iceoryx2Pubsub => {
            let service = crate::iox::Fanout::open(&a.name)?;
            let tx = service.publisher(SIZE, std::os::unix::process::parent_id(), STEP)?;
            ready.post().map_err(Error::shm("posting ready"))?;
            go.wait_timeout(STEP).map_err(Error::shm("waiting for go"))?;
            for i in 0..a.count {
                stamp(i, &mut msg);
                tx.publish(&msg)?;
            }
        }
        Method::Broadcast => {
            let mut tx = seg.publisher(CHANNEL, FutexWait::new()).map_err(Error::shm("publisher"))?;
            ready.post().map_err(Error::shm("posting ready"))?;
            go.wait_timeout(STEP).map_err(Error::shm("waiting for go"))?;
            for i in 0..a.count {
                stamp(i, &mut msg);
                tx.publish_timeout(&msg, STEP).map_err(Error::shm("publish"))?;
            }
        }
        _ => {
            let mut pipes: Vec<std::fs::File> =
                a.fds.iter().map(|&fd| inherited_fd(fd).map(std::fs::File::from)).collect::<Result<_, _>>()?;
            ready.post().map_err(Error::shm("posting ready"))?;
            go.wait_timeout(STEP).map_err(Error::shm("waiting for go"))?;
            for i in 0..a.count {
                stamp(i, &mut msg);
                for p in &mut pipes {
                    p.write_all(&msg).map_err(Error::stream("write"))?;
                }
            }
        }
    }
    Ok(ReaderReport::default())
}

/// A reader process of a row: line up, receive and check every message.
pub fn receive(a: &PeerArgs, seg: &Segment) -> Result<ReaderReport, Error> {
    let ready = gate(seg, READY)?;
    let mut hist =
        Histogram::<u64>::new_with_bounds(1, MAX_NS, 3).map_err(|e| Error::Usage(format!("histogram: {e}")))?;
    let mut msg = [0u8; SIZE];
    let mut report = ReaderReport::default();
    let mut on = |i: u64, msg: &[u8; SIZE], report: &mut ReaderReport| -> Result<(), Error> {
        let now = monotonic_ns();
        let (index, sent) = (
            u64::from_le_bytes(msg[..8].try_into().unwrap_or_default()),
            u64::from_le_bytes(msg[8..16].try_into().unwrap_or_default()),
        );
        if index != i {
            return Err(Error::WrongData(format!("reader {}: message {index} where {i} was due", a.client)));
        }
        if i == 0 {
            report.start_ns = sent;
        }
        report.end_ns = now;
        hist.saturating_record(now.saturating_sub(sent).max(1));
        Ok(())
    };
    match a.method {
        #[cfg(feature = "iceoryx2")]
        Method::Iceoryx2Pubsub => {
            let service = crate::iox::Fanout::open(&a.name)?;
            let rx = service.subscriber(std::os::unix::process::parent_id(), STEP)?;
            ready.post().map_err(Error::shm("posting ready"))?;
            for i in 0..a.count {
                rx.recv(&mut msg, STEP)?;
                on(i, &msg, &mut report)?;
            }
        }
        Method::Broadcast => {
            let mut rx = seg.subscriber(CHANNEL, FutexWait::new()).map_err(Error::shm("subscriber"))?;
            ready.post().map_err(Error::shm("posting ready"))?;
            for i in 0..a.count {
                let n = rx.recv_timeout(&mut msg, STEP).map_err(Error::shm("receive"))?;
                if n != SIZE {
                    return Err(Error::WrongData(format!("a {n}-byte message")));
                }
                on(i, &msg, &mut report)?;
            }
        }
        _ => {
            let fd = a.fds.first().copied().ok_or_else(|| Error::Usage("a pipe reader needs its descriptor".into()))?;
            let mut pipe = std::fs::File::from(inherited_fd(fd)?);
            ready.post().map_err(Error::shm("posting ready"))?;
            for i in 0..a.count {
                pipe.read_exact(&mut msg).map_err(Error::stream("read"))?;
                on(i, &msg, &mut report)?;
            }
        }
    }
    // Log buckets (10% apart): a report of a few hundred pairs.
    report.latencies =
        hist.iter_log(100, 1.1).map(|v| (v.value_iterated_to(), v.count_since_last_iteration())).collect();
    Ok(report)
}

/// The table of this mode, as printed.
pub fn render(out: &mut String, rows: &[FanoutRow]) {
    use std::fmt::Write as _;
    let Some(first) = rows.first() else { return };
    let header = ["readers", "method", "msgs/s per reader", "slowest reader", "median", "p99", "placement"];
    let mut t = report::plain_table(header, 2..6);
    let mut notes = String::new();
    for r in rows {
        let mut cells = vec![format!("1 -> {}", r.subscribers), r.label.to_string()];
        match &r.error {
            Some(e) => {
                cells.push(e.split(':').next().unwrap_or_default().into());
                let _ = writeln!(notes, "  1 -> {}, {}: {e}", r.subscribers, r.label);
            }
            None => {
                cells.push(r.per_subscriber_msgs_per_s.map_or_else(|| "-".into(), report::rate_label));
                cells.push(r.slowest_msgs_per_s.map_or_else(|| "-".into(), report::rate_label));
                cells.extend([r.median_ns, r.p99_ns].map(report::opt_ns));
                cells.push(r.placement.clone());
            }
        }
        t.add_row(cells);
    }
    let _ = write!(
        out,
        "\nFan-out: one writer process, N reader processes, {} B, {} messages each\n{}\n{notes}msgs/s per \
         reader: its messages over the span from the first publish to its last receive; median, p99: \
         publish to receive, every message at every reader\n",
        first.size,
        first.messages,
        t.trim_fmt()
    );
}
