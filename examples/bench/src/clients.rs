//! Many clients (`--clients 1,2,4,8`): N client processes call one mailbox
//! server process (the claiming mailbox or the direct one); one row per N,
//! mailbox kind and wait strategy with the aggregate calls/s and the
//! latency of every call of every client.
//!
//! ```text
//! cargo run --release --bin shm-bench -- --clients 1,2,4,8 --methods mailbox-futex,mailbox-spin,direct-futex,direct-spin
//! ```
//!
//! # Design
//!
//! One segment holds the mailbox (a slot per client at least) and two
//! semaphores, `ready` and `go`, that line the clients up: each makes its
//! warm-up calls, posts `ready` and waits on `go`, which the orchestrator
//! posts N times once all N are ready, so the timed calls of all clients
//! overlap. Each client times its own calls (a histogram) and reads the
//! monotonic clock, which all processes share, at the start and end of its
//! timed loop; the aggregate rate is all timed calls over the span from the
//! first start to the last end. Every request carries the client's index and
//! the call's index, and the client checks that the response is its own
//! request with the first byte flipped, so a response delivered to the wrong
//! client or the wrong call fails the row. The server is [`roundtrip::mailbox_server`]
//! (or [`roundtrip::direct_server`]), the same as in the two-process rows.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use shm_core::{CallError, Layout, Semaphore};
use shm_posix::{FutexWait, Segment};

use crate::error::{chain, Error};
use crate::measure::{self, per_op, PeerReport};
use crate::placement::Cpus;
use crate::procs::Peer;
use crate::report::{self, PerSide};
use crate::roundtrip::{self, REQUEST_BYTE};
use crate::runs::Ctx;
use crate::strategy::{pid_exists, Counted, SpinWait};
use crate::{Method, PeerArgs, Test, MAILBOX, SLOTS};

/// Request and response bytes of every call.
pub const SIZE: usize = 64;
/// The semaphore each client posts when its warm-up is done.
const READY: &str = "ready";
/// The semaphore the orchestrator posts once per client to start the clock.
const GO: &str = "go";
/// What one call is, in errors.
const CALL: &str = "call";
/// What one served request is, in errors.
const SERVING: &str = "serving request";
/// Largest call the histogram holds (longer ones count as this).
const MAX_NS: u64 = 60_000_000_000;
/// How long a client waits at the start line.
const GO_TIMEOUT: Duration = Duration::from_secs(120);
/// How often the orchestrator checks, while waiting for `ready`, that no
/// client died.
const READY_SLICE: Duration = Duration::from_millis(100);

/// The mailbox kinds and wait strategies of this mode, in table order.
pub const METHODS: [Method; 4] = [Method::MailboxFutex, Method::MailboxSpin, Method::DirectFutex, Method::DirectSpin];

/// One row: N clients of one wait strategy against one server.
#[derive(Debug, Clone, Serialize)]
pub struct ClientsRow {
    /// Method id (`mailbox-futex`, `mailbox-spin`, `direct-futex`,
    /// `direct-spin`).
    pub method: &'static str,
    /// What the table calls it.
    pub label: &'static str,
    /// Client processes.
    pub clients: u32,
    /// Request and response bytes.
    pub size: usize,
    /// Timed calls per client.
    pub calls_per_client: u64,
    /// Untimed calls per client first.
    pub warmup: u64,
    /// Whether every process of the row was pinned.
    pub pinned: bool,
    /// Where the processes ran ("server on CPU 0, clients on CPUs 1-4",
    /// or why not pinned).
    pub placement: String,
    /// All timed calls of all clients over the span from the first client's
    /// start to the last one's end.
    pub calls_per_s: Option<f64>,
    /// `calls_per_s` / the one-client row's of the same method.
    pub vs_one_client: Option<f64>,
    /// Median call, ns (every call of every client).
    pub median_ns: Option<u64>,
    /// 99th percentile, ns.
    pub p99_ns: Option<u64>,
    /// 99.9th percentile, ns.
    pub p999_ns: Option<u64>,
    /// Slowest, ns.
    pub max_ns: Option<u64>,
    /// Hot-path heap allocations in the timed loops: all clients / server.
    pub allocations: PerSide,
    /// Allocations in operations that parked or woke: all clients / server.
    pub allocations_slow: PerSide,
    /// Parks: all clients / server.
    pub parks: PerSide,
    /// Wakes: all clients / server.
    pub wakes: PerSide,
    /// Why there are no figures, if there are none.
    pub error: Option<String>,
}

/// What one client process reports (one JSON line).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ClientReport {
    /// Allocations, parks and wakes, as every peer reports them.
    #[serde(flatten)]
    pub side: PeerReport,
    /// `CLOCK_MONOTONIC` at the start of the timed calls, ns.
    pub start_ns: u64,
    /// `CLOCK_MONOTONIC` at their end, ns.
    pub end_ns: u64,
    /// The histogram of its calls: (highest equivalent value ns, count).
    pub latencies: Vec<(u64, u64)>,
}

/// Runs a row for every selected method at every client count; says
/// whether any failed.
pub fn run_all(ctx: &mut Ctx, counts: &[u32], selected: &[Method]) -> (Vec<ClientsRow>, bool) {
    let (mut rows, mut failed) = (Vec::new(), false);
    for &method in METHODS.iter().filter(|m| selected.is_empty() || selected.contains(m)) {
        for &n in counts {
            eprint!("shm-bench: clients, {n:>7}, {:<30}", method.label_round_trip());
            let row = row(ctx, method, n);
            match &row.error {
                Some(e) => eprintln!(" {e}"),
                None => eprintln!(" {}/s", row.calls_per_s.map_or_else(|| "-".into(), report::rate_label)),
            }
            failed |= row.error.is_some();
            rows.push(row);
        }
    }
    for i in 0..rows.len() {
        let one = rows.iter().find(|r| r.method == rows[i].method && r.clients == 1).and_then(|r| r.calls_per_s);
        rows[i].vs_one_client = rows[i].calls_per_s.zip(one).map(|(n, one)| n / one);
    }
    (rows, failed)
}

fn row(ctx: &mut Ctx, method: Method, n: u32) -> ClientsRow {
    let cpus = ctx.placement.assign(n as usize + 1);
    let mut row = ClientsRow {
        method: method.id(),
        label: method.label_round_trip(),
        clients: n,
        size: SIZE,
        calls_per_client: ctx.client_calls,
        warmup: ctx.client_warmup,
        pinned: cpus.is_pinned(),
        placement: describe(&cpus),
        calls_per_s: None,
        vs_one_client: None,
        median_ns: None,
        p99_ns: None,
        p999_ns: None,
        max_ns: None,
        allocations: PerSide::default(),
        allocations_slow: PerSide::default(),
        parks: PerSide::default(),
        wakes: PerSide::default(),
        error: None,
    };
    let result = measure_row(ctx, method, n, &cpus);
    ctx.names.sweep();
    match result {
        Ok((clients, server)) => fill(&mut row, &clients, &server),
        Err(e) => row.error = Some(format!("failed: {}", chain(&e))),
    }
    row
}

/// "server on CPU 0, clients on CPUs 1-4", "all on CPU 0", or why not pinned.
fn describe(cpus: &Cpus) -> String {
    match cpus {
        Cpus::Pinned(c) if c.iter().all(|&x| x == c[0]) => format!("all on CPU {}", c[0]),
        Cpus::Pinned(c) => {
            let list: Vec<String> = c[1..].iter().map(|x| x.to_string()).collect();
            let clients = if list.len() == 1 { "client on CPU" } else { "clients on CPUs" };
            format!("server on CPU {}, {clients} {}", c[0], list.join(","))
        }
        Cpus::Unpinned { why } => format!("unpinned: {why}"),
    }
}

fn measure_row(ctx: &mut Ctx, method: Method, n: u32, cpus: &Cpus) -> Result<(Vec<ClientReport>, PeerReport), Error> {
    if n == 0 {
        return Err(Error::Usage("--clients counts start at 1".into()));
    }
    let name = ctx.names.segment();
    let slots = SLOTS.max(n);
    let layout = match method {
        Method::DirectFutex | Method::DirectSpin => Layout::new().direct(MAILBOX, slots, SIZE as u32),
        _ => Layout::new().mailbox(MAILBOX, slots, SIZE as u32),
    };
    let layout =
        layout.and_then(|l| l.semaphore(READY, 0)).and_then(|l| l.semaphore(GO, 0)).map_err(Error::shm("layout"))?;
    let seg = Segment::create(&name, &layout).map_err(Error::shm("create"))?;
    let (ready, go) = (gate(&seg, READY)?, gate(&seg, GO)?);
    let shared = ctx.placement.shares_cpu(n as usize + 1);
    let all = ctx.placement.cpus.clone();
    let (w, calls) = (ctx.client_warmup, ctx.client_calls);
    let spawn = |test: Test, index: u32, warmup: u64, count: u64| {
        let mut args = Ctx::peer_args(test, method, SIZE, &name, warmup, count);
        args.extend(["--client".into(), index.to_string()]);
        ctx.spawn_peer(args, &[], &cpus.of(index as usize, &all), shared)
    };
    let server = spawn(Test::ClientsServer, 0, w * u64::from(n), calls * u64::from(n))?;
    let clients = (1..=n).map(|i| spawn(Test::ClientsClient, i, w, calls)).collect::<Result<Vec<Peer>, Error>>()?;
    // Start the clock once every client is warm (a dead one stops the wait:
    // collecting it below says why it died).
    let mut waiting = n;
    while waiting > 0 {
        match ready.wait_timeout(READY_SLICE) {
            Ok(()) => waiting -= 1,
            Err(_) if clients.iter().chain([&server]).all(|p| pid_exists(p.pid())) => continue,
            Err(_) => break,
        }
    }
    for _ in 0..n {
        go.post().map_err(Error::shm("posting go"))?;
    }
    let reports =
        clients.into_iter().map(Peer::finish::<ClientReport>).collect::<Result<Vec<ClientReport>, Error>>()?;
    Ok((reports, server.finish()?))
}

fn gate<'s>(seg: &'s Segment, name: &str) -> Result<shm_core::CountingSemaphore<'s, FutexWait>, Error> {
    seg.semaphore(name, FutexWait::new()).map_err(Error::shm(format!("semaphore {name}")))
}

fn fill(row: &mut ClientsRow, clients: &[ClientReport], server: &PeerReport) {
    let Ok(mut hist) = Histogram::<u64>::new_with_bounds(1, MAX_NS, 3) else { return };
    for c in clients {
        for &(value, count) in &c.latencies {
            hist.saturating_record_n(value, count);
        }
    }
    let start = clients.iter().map(|c| c.start_ns).min().unwrap_or_default();
    let end = clients.iter().map(|c| c.end_ns).max().unwrap_or_default();
    let span = end.saturating_sub(start).max(1) as f64 / 1e9;
    row.calls_per_s = Some(row.calls_per_client as f64 * clients.len() as f64 / span);
    let at = |q| Some(hist.value_at_quantile(q));
    (row.median_ns, row.p99_ns, row.p999_ns, row.max_ns) = (at(0.5), at(0.99), at(0.999), Some(hist.max()));
    let sum = |f: fn(&PeerReport) -> u64| clients.iter().map(|c| f(&c.side)).sum::<u64>();
    row.allocations = PerSide { client: sum(|s| s.allocs), peer: server.allocs };
    row.allocations_slow = PerSide { client: sum(|s| s.allocs_slow), peer: server.allocs_slow };
    row.parks = PerSide { client: sum(|s| s.parks), peer: server.parks };
    row.wakes = PerSide { client: sum(|s| s.wakes), peer: server.wakes };
}

/// The server process of a row: serve every call of every client.
pub fn serve(a: &PeerArgs, seg: &Segment) -> Result<PeerReport, Error> {
    let side = match a.method {
        Method::MailboxSpin => {
            let server = seg.server(MAILBOX, SpinWait).map_err(Error::shm("server"))?;
            measure::run(SERVING, a.warmup, a.count, roundtrip::mailbox_server(&server))
        }
        Method::DirectSpin => {
            let mut server = seg.direct_server(MAILBOX, SpinWait).map_err(Error::shm("server"))?;
            measure::run(SERVING, a.warmup, a.count, roundtrip::direct_server(&mut server))
        }
        Method::DirectFutex => {
            let mut server = seg.direct_server(MAILBOX, Counted(FutexWait::new())).map_err(Error::shm("server"))?;
            measure::run(SERVING, a.warmup, a.count, roundtrip::direct_server(&mut server))
        }
        _ => {
            let server = seg.server(MAILBOX, Counted(FutexWait::new())).map_err(Error::shm("server"))?;
            measure::run(SERVING, a.warmup, a.count, roundtrip::mailbox_server(&server))
        }
    }?;
    Ok(PeerReport::from(side))
}

/// A client process of a row: warm up, line up, make the timed calls.
pub fn call(a: &PeerArgs, seg: &Segment) -> Result<ClientReport, Error> {
    let (ready, go) = (gate(seg, READY)?, gate(seg, GO)?);
    let line_up = || -> Result<(), Error> {
        ready.post().map_err(Error::shm("posting ready"))?;
        go.wait_timeout(GO_TIMEOUT).map_err(Error::shm("waiting for go"))
    };
    match a.method {
        Method::MailboxSpin => {
            let client = seg.client(MAILBOX, SpinWait).map_err(Error::shm("client"))?;
            timed_calls(a, |req, resp| client.call(req, resp), line_up)
        }
        Method::DirectSpin => {
            let mut client = seg.direct_client(MAILBOX, SpinWait).map_err(Error::shm("client"))?;
            timed_calls(a, |req, resp| client.call(req, resp), line_up)
        }
        Method::DirectFutex => {
            let mut client = seg.direct_client(MAILBOX, Counted(FutexWait::new())).map_err(Error::shm("client"))?;
            timed_calls(a, |req, resp| client.call(req, resp), line_up)
        }
        _ => {
            let client = seg.client(MAILBOX, Counted(FutexWait::new())).map_err(Error::shm("client"))?;
            timed_calls(a, |req, resp| client.call(req, resp), line_up)
        }
    }
}

/// Warm up with `call`, line up, make the timed calls.
fn timed_calls(
    a: &PeerArgs,
    call: impl FnMut(&[u8], &mut [u8]) -> Result<usize, CallError>,
    line_up: impl FnOnce() -> Result<(), Error>,
) -> Result<ClientReport, Error> {
    let mut hist = Histogram::new_with_bounds(1, MAX_NS, 3).map_err(|e| Error::Usage(format!("histogram: {e}")))?;
    let mut op = tagged_call(a.client, call);
    measure::run(CALL, a.warmup, 0, &mut op)?;
    line_up()?;
    let start_ns = monotonic_ns();
    let side = measure::run(CALL, 0, a.count, per_op(&mut hist, 0, |i| op(a.warmup + i)))?;
    let end_ns = monotonic_ns();
    let latencies = hist.iter_recorded().map(|v| (v.value_iterated_to(), v.count_at_value())).collect();
    Ok(ClientReport { side: PeerReport::from(side), start_ns, end_ns, latencies })
}

/// One call of client `id`: bytes 1..9 of the request are the call's index,
/// 9..13 the client's; the response must be the same bytes with the first
/// one flipped.
fn tagged_call(
    id: u32,
    mut call: impl FnMut(&[u8], &mut [u8]) -> Result<usize, CallError>,
) -> impl FnMut(u64) -> Result<(), Error> {
    let mut request = [REQUEST_BYTE; SIZE];
    let mut response = [0u8; SIZE];
    move |i| {
        request[1..9].copy_from_slice(&i.to_le_bytes());
        request[9..13].copy_from_slice(&id.to_le_bytes());
        let n = call(&request, &mut response).map_err(Error::shm("call"))?;
        if n != SIZE || response[0] != !REQUEST_BYTE || response[1..] != request[1..] {
            return Err(Error::WrongData(format!(
                "client {id}, call {i}: {n}-byte response is not this call's request with its first byte flipped"
            )));
        }
        Ok(())
    }
}

/// `CLOCK_MONOTONIC` in ns: one clock for every process, so the clients'
/// start and end times compare.
fn monotonic_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    (t.tv_sec as u64).saturating_mul(1_000_000_000).saturating_add(t.tv_nsec as u64)
}

/// Allocations counted in these rows, all processes: (hot path, park path).
pub fn allocations(rows: &[ClientsRow]) -> (u64, u64) {
    let total = |s: PerSide| s.client + s.peer;
    rows.iter().fold((0, 0), |(h, s), r| (h + total(r.allocations), s + total(r.allocations_slow)))
}

/// The table of this mode, as printed.
pub fn render(out: &mut String, rows: &[ClientsRow]) {
    use std::fmt::Write as _;
    let Some(first) = rows.first() else { return };
    let header =
        ["clients", "method", "calls/s", "vs 1 client", "median", "p99", "p99.9", "allocs", "parks", "placement"];
    let mut t = report::plain_table(header, 2..9);
    let mut notes = String::new();
    for (i, r) in rows.iter().enumerate() {
        if i > 0 && rows[i - 1].method != r.method {
            t.add_row([""]);
        }
        let mut cells = vec![r.clients.to_string(), r.label.to_string()];
        match &r.error {
            Some(e) => {
                cells.push(e.split(':').next().unwrap_or_default().into());
                let _ = writeln!(notes, "  {} clients, {}: {e}", r.clients, r.label);
            }
            None => {
                cells.push(r.calls_per_s.map_or_else(|| "-".into(), report::rate_label));
                cells.push(report::ratio(r.vs_one_client));
                cells.extend([r.median_ns, r.p99_ns, r.p999_ns].map(report::opt_ns));
                cells.extend([report::sides(r.allocations), report::sides(r.parks), r.placement.clone()]);
            }
        }
        t.add_row(cells);
    }
    let _ = write!(
        out,
        "\nMany clients: N client processes calling one mailbox server, {} B, {} timed calls per client after {} \
         warm-up\n{}\n{notes}calls/s: all clients' timed calls / span from the first start to the last end; \
         median, p99: every call of every client; allocs and parks: all clients/server\n",
        first.size,
        first.calls_per_client,
        first.warmup,
        t.trim_fmt()
    );
}
