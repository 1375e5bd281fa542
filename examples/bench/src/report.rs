//! The figures of one run: one row type for both tables, ratios, targets,
//! the printed tables and the JSON document.

use comfy_table::{presets, CellAlignment, Table};
use hdrhistogram::Histogram;
use serde::Serialize;

use crate::clients::ClientsRow;
use crate::measure::{PeerReport, Side};
use crate::placement::{Mode, Placement};
use crate::runs::Ctx;
use crate::{Method, Test};

/// A count on each side of a row during its timed loop.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct PerSide {
    /// The orchestrator (client or receiver).
    pub client: u64,
    /// The peer process (server or sender).
    pub peer: u64,
}

impl PerSide {
    fn total(&self) -> u64 {
        self.client + self.peer
    }
}

/// One row of either table: a method at a size, what it measured (`F`,
/// [`Latency`] or [`Rate`]) and the columns both tables share. The JSON
/// has the figures' fields in line, between `size` and `vs_best_alternative`.
#[derive(Debug, Clone, Serialize)]
pub struct Row<F> {
    /// Method id (as `--methods` takes it).
    pub method: &'static str,
    /// What the table calls it.
    pub label: &'static str,
    /// Whether it goes through shared memory.
    pub shm: bool,
    /// Payload bytes (each way, or per message).
    pub size: usize,
    /// What this table measures.
    #[serde(flatten)]
    pub figures: F,
    /// How many times faster than the best non-shm method at this size
    /// (its median / this median, or this rate / its rate; below 1 is slower).
    pub vs_best_alternative: Option<f64>,
    /// Which non-shm method was best at this size.
    pub best_alternative: Option<&'static str>,
    /// Heap allocations in the timed loop, per side, in operations that
    /// neither parked nor woke a sleeper (the hot path: must be zero for
    /// shm methods).
    pub allocations: PerSide,
    /// Heap allocations in operations that parked or woke a sleeper (the
    /// slow path, which makes system calls anyway).
    pub allocations_slow: PerSide,
    /// Times a wait outlasted its spin phase, per side (a kernel sleep for
    /// futex and named semaphores, another spin round for polling).
    pub parks: PerSide,
    /// Wake calls issued, per side.
    pub wakes: PerSide,
    /// Why there are no figures, if there are none.
    pub error: Option<String>,
}

impl<F: Figures> Row<F> {
    /// A row of `method` at `size` with nothing measured yet.
    pub fn new(method: Method, size: usize, figures: F) -> Self {
        Self {
            method: method.id(),
            label: F::label(method),
            shm: method.is_shm(),
            size,
            figures,
            vs_best_alternative: None,
            best_alternative: None,
            allocations: PerSide::default(),
            allocations_slow: PerSide::default(),
            parks: PerSide::default(),
            wakes: PerSide::default(),
            error: None,
        }
    }

    /// Fills the row from what both sides measured.
    pub fn fill(&mut self, m: &Measured) {
        self.figures.fill(m, self.size);
        let (mine, peer) = (&m.side, &m.peer);
        self.allocations = PerSide { client: mine.allocs.hot, peer: peer.allocs };
        self.allocations_slow = PerSide { client: mine.allocs.slow, peer: peer.allocs_slow };
        self.parks = PerSide { client: mine.counters.parks, peer: peer.parks };
        self.wakes = PerSide { client: mine.counters.wakes, peer: peer.wakes };
    }
}

/// What both processes of one row measured.
pub struct Measured {
    /// The orchestrator's side.
    pub side: Side,
    /// Each round trip's time, for round trips.
    pub hist: Option<Histogram<u64>>,
    /// The peer's side.
    pub peer: PeerReport,
}

/// What one table measures: how its rows are planned, filled, compared
/// and printed.
pub trait Figures: Clone + Serialize {
    /// Which measurement the peer takes part in.
    const TEST: Test;
    /// The methods of this table, in order.
    const METHODS: &[Method];
    /// The row every other of its size is compared with (floor or ceiling).
    const REFERENCE: Method;
    /// The figure columns, after size and method.
    const COLUMNS: &[&str];
    /// What the columns mean, printed under the table.
    const NOTE: &str;
    /// What the table calls `method`.
    fn label(method: Method) -> &'static str;
    /// The figures planned for a row, before it runs.
    fn plan(ctx: &Ctx, method: Method, size: usize) -> Self;
    /// Takes the figures from what was measured.
    fn fill(&mut self, m: &Measured, size: usize);
    /// How fast: higher is better (None without figures).
    fn speed(&self) -> Option<f64>;
    /// Sets the column comparing with the reference row of the same size.
    fn compare(&mut self, reference: &Self);
    /// The table's title line.
    fn title(&self) -> String;
    /// The figure cells of `row`, as printed.
    fn cells(row: &Row<Self>) -> Vec<String>;
    /// The one figure shown while the run goes on.
    fn summary(&self) -> String;
}

/// A round-trip row's figures.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Latency {
    /// Timed round trips (after the warm-up).
    pub iterations: u64,
    /// Round trips made before the clock started.
    pub warmup: u64,
    /// Median round trip, ns.
    pub median_ns: Option<u64>,
    /// 99th percentile, ns.
    pub p99_ns: Option<u64>,
    /// 99.9th percentile, ns.
    pub p999_ns: Option<u64>,
    /// Slowest, ns.
    pub max_ns: Option<u64>,
    /// Mean, ns.
    pub mean_ns: Option<f64>,
    /// Median divided by the floor's median of the same size (the floor is
    /// the atomic ping-pong; 1.0 is "as fast as physically possible").
    pub vs_floor: Option<f64>,
}

impl Figures for Latency {
    const TEST: Test = Test::RoundTrip;
    const METHODS: &[Method] = Method::ROUND_TRIP;
    const REFERENCE: Method = Method::AtomicFloor;
    const COLUMNS: &[&str] = &["median", "p99", "p99.9", "max", "vs floor", "vs best alt"];
    const NOTE: &str = "vs floor: median / atomic ping-pong median; vs best alt: best of pipe, unix socket and \
                        message queue / this median (x times faster); allocs (hot path) and parks: client/peer in \
                        the timed loop";

    fn label(method: Method) -> &'static str {
        method.label_round_trip()
    }

    fn plan(ctx: &Ctx, _: Method, _: usize) -> Self {
        Self { iterations: ctx.iters, warmup: ctx.warmup, ..Self::default() }
    }

    fn fill(&mut self, m: &Measured, _: usize) {
        let Some(hist) = &m.hist else { return };
        let at = |q| Some(hist.value_at_quantile(q));
        (self.median_ns, self.p99_ns, self.p999_ns) = (at(0.5), at(0.99), at(0.999));
        (self.max_ns, self.mean_ns) = (Some(hist.max()), Some(hist.mean()));
    }

    fn speed(&self) -> Option<f64> {
        self.median_ns.map(|m| 1.0 / m.max(1) as f64)
    }

    fn compare(&mut self, floor: &Self) {
        self.vs_floor = self.median_ns.zip(floor.median_ns).map(|(m, f)| m as f64 / f.max(1) as f64);
    }

    fn title(&self) -> String {
        format!(
            "Round trip between two processes: {} timed after {} warm-up; each sample includes one clock read",
            self.iterations, self.warmup
        )
    }

    fn cells(row: &Row<Self>) -> Vec<String> {
        let f = &row.figures;
        let mut cells: Vec<String> = [f.median_ns, f.p99_ns, f.p999_ns, f.max_ns].map(opt_ns).into();
        cells.extend([ratio(f.vs_floor), ratio(row.vs_best_alternative)]);
        cells
    }

    fn summary(&self) -> String {
        format!("median {}", opt_ns(self.median_ns))
    }
}

/// A throughput row's figures.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Rate {
    /// Timed messages.
    pub messages: u64,
    /// Ring bytes of the shm queue, if this is one.
    pub ring_bytes: Option<u32>,
    /// Seconds the timed messages took.
    pub seconds: Option<f64>,
    /// Messages per second.
    pub msgs_per_s: Option<f64>,
    /// Payload gigabytes (10^9 bytes) per second.
    pub gb_per_s: Option<f64>,
    /// GB/s divided by the memcpy ceiling's at this size.
    pub vs_ceiling: Option<f64>,
}

impl Figures for Rate {
    const TEST: Test = Test::Throughput;
    const METHODS: &[Method] = Method::THROUGHPUT;
    const REFERENCE: Method = Method::Memcpy;
    const COLUMNS: &[&str] = &["msgs/s", "GB/s", "vs memcpy", "vs best alt"];
    const NOTE: &str = "GB/s: 10^9 payload bytes per second; vs memcpy: GB/s / one-process memcpy GB/s; \
                        vs best alt: msgs/s / best of pipe and unix socket";

    fn label(method: Method) -> &'static str {
        method.label_throughput()
    }

    fn plan(ctx: &Ctx, method: Method, size: usize) -> Self {
        let is_queue = matches!(method, Method::QueueCopy | Method::QueueGrant | Method::TransferFloor);
        let ring_bytes = if is_queue { ctx.ring_for(size).ok() } else { None };
        Self { messages: ctx.throughput_counts(size).1, ring_bytes, ..Self::default() }
    }

    fn fill(&mut self, m: &Measured, size: usize) {
        let secs = m.side.elapsed.as_secs_f64().max(1e-9);
        self.seconds = Some(secs);
        self.msgs_per_s = Some(self.messages as f64 / secs);
        self.gb_per_s = Some(self.messages as f64 * size as f64 / secs / 1e9);
    }

    fn speed(&self) -> Option<f64> {
        self.msgs_per_s
    }

    fn compare(&mut self, ceiling: &Self) {
        self.vs_ceiling = self.gb_per_s.zip(ceiling.gb_per_s).map(|(g, c)| g / c);
    }

    fn title(&self) -> String {
        "Throughput one way, peer sending to the orchestrator".into()
    }

    fn cells(row: &Row<Self>) -> Vec<String> {
        let f = &row.figures;
        let vs_best = if row.method == Method::Memcpy.id() { "-".into() } else { ratio(row.vs_best_alternative) };
        vec![
            f.msgs_per_s.map_or_else(|| "-".into(), rate_label),
            f.gb_per_s.map_or_else(|| "-".into(), |g| format!("{g:.2}")),
            ratio(f.vs_ceiling),
            vs_best,
        ]
    }

    fn summary(&self) -> String {
        format!("{:.2} GB/s", self.gb_per_s.unwrap_or_default())
    }
}

/// A performance target, as measured in this run.
#[derive(Debug, Clone, Serialize)]
pub struct Target {
    /// What is compared, and where.
    pub name: String,
    /// The measured ratio.
    pub measured: Option<f64>,
    /// The bound, e.g. "<= 1.5".
    pub required: String,
    /// Whether it holds (None when skipped or a figure is missing).
    pub met: Option<bool>,
    /// Why it was not evaluated in this run, if it was not.
    pub skipped: Option<String>,
}

impl Target {
    fn new(name: String, measured: Option<f64>, op: &str, bound: f64) -> Self {
        let holds = |v: f64| if op == "<=" { v <= bound } else { v >= bound };
        let skipped = measured.is_none().then(|| "a row it needs has no figure (failed or skipped)".to_string());
        Self { name, measured, required: format!("{op} {bound}"), met: measured.map(holds), skipped }
    }

    /// The target, not evaluated in this run because of `why`.
    fn skip(mut self, why: impl Into<String>) -> Self {
        (self.measured, self.met, self.skipped) = (None, None, Some(why.into()));
        self
    }

    /// The verdict as printed.
    fn verdict(&self) -> &'static str {
        match (self.met, &self.skipped) {
            (Some(true), _) => "met",
            (Some(false), _) => "NOT MET",
            (None, Some(_)) => "skipped",
            (None, None) => "no figure",
        }
    }
}

/// Everything one run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The command line.
    pub command: String,
    /// When the run started (UTC, RFC 3339 to the second).
    pub date_utc: String,
    /// CPUs this process may use.
    pub cpus: usize,
    /// (orchestrator CPU, peer CPU) of the two-process rows, when pinned
    /// (the same CPU twice with `--same-cpu`).
    pub pinned: Option<(usize, usize)>,
    /// What placement was asked for: `distinct`, `same-cpu` or `unpinned`.
    pub placement: Mode,
    /// Where the two processes of a row ran, in words.
    pub placement_detail: String,
    /// Whether a busy loop ran on every CPU (`--busy`).
    pub busy_loops: bool,
    /// Whether `--quick` was given.
    pub quick: bool,
    /// Round-trip rows, grouped by size.
    pub round_trip: Vec<Row<Latency>>,
    /// Throughput rows, grouped by size.
    pub throughput: Vec<Row<Rate>>,
    /// Many-clients rows, grouped by method.
    pub clients: Vec<ClientsRow>,
    /// Fan-out rows, grouped by method.
    pub fanout: Vec<crate::fanout::FanoutRow>,
    /// The performance targets.
    pub targets: Vec<Target>,
    /// Heap allocations on shm hot paths, all rows and both sides together.
    pub shm_hot_path_allocations: u64,
    /// Heap allocations on shm slow paths (park or wake), all rows and both
    /// sides.
    pub shm_slow_path_allocations: u64,
    /// Whether that is zero.
    pub allocations_ok: bool,
}

/// Fills the ratio columns of each row from the rows of the same size.
pub fn fill_ratios<F: Figures>(rows: &mut [Row<F>]) {
    let mut sizes: Vec<usize> = rows.iter().map(|r| r.size).collect();
    sizes.dedup();
    for size in sizes {
        let of_size = |r: &&Row<F>| r.size == size;
        let reference = rows.iter().filter(of_size).find(|r| r.method == F::REFERENCE.id()).map(|r| r.figures.clone());
        let best = rows
            .iter()
            .filter(of_size)
            .filter(|r| Method::KERNEL.iter().any(|m| m.id() == r.method))
            .filter_map(|r| r.figures.speed().map(|s| (s, r.method)))
            .max_by(|a, b| a.0.total_cmp(&b.0));
        for r in rows.iter_mut().filter(|r| r.size == size) {
            let Some(speed) = r.figures.speed() else { continue };
            if let Some(reference) = &reference {
                r.figures.compare(reference);
            }
            r.vs_best_alternative = best.map(|(b, _)| speed / b);
            r.best_alternative = best.map(|(_, id)| id);
        }
    }
}

/// Evaluates the performance targets on the rows of this run: each a ratio
/// of two rows measured under the same placement, or skipped with the reason.
pub fn targets(
    p: &Placement,
    busy: bool,
    rtt: &[Row<Latency>],
    tput: &[Row<Rate>],
    many: &[ClientsRow],
    fan: &[crate::fanout::FanoutRow],
) -> Vec<Target> {
    let rt = |m: Method, size: usize| rtt.iter().find(|r| r.method == m.id() && r.size == size);
    let tp = |m: Method, size: usize| tput.iter().find(|r| r.method == m.id() && r.size == size);
    let le = |name: &str, measured, bound| Target::new(name.into(), measured, "<=", bound);
    let ge = |name: &str, measured, bound| Target::new(name.into(), measured, ">=", bound);
    let medians = |a: &Row<Latency>, b: &Row<Latency>| {
        a.figures.median_ns.zip(b.figures.median_ns).map(|(a, b)| a as f64 / b.max(1) as f64)
    };
    let apart = p.mode == Mode::Distinct && p.cpus.len() >= 2;
    let not_apart = format!("needs the two processes on distinct CPUs; this run: {}", p.describe(2));
    let mut out = Vec::new();
    if let (Some(m), Some(_)) = (rt(Method::DirectSpin, 64), rt(Method::AtomicFloor, 64)) {
        let name = "direct mailbox polling RTT at 64 B <= 1.5x the atomic floor (pinned)";
        let t = le(name, m.figures.vs_floor, 1.5);
        out.push(if apart { t } else { t.skip(&not_apart) });
    }
    #[cfg(feature = "iceoryx2")]
    if let (Some(m), Some(iox)) = (rt(Method::MailboxSpin, 64), rt(Method::Iceoryx2Rr, 64)) {
        let name = "default mailbox polling RTT at 64 B <= 1/3 of iceoryx2 request-response (pinned)";
        let t = ge(name, medians(iox, m), 3.0);
        out.push(if apart { t } else { t.skip(&not_apart) });
    }
    if let (Some(f), Some(u)) = (rt(Method::MailboxFutex, 64), rt(Method::UnixSocket, 64)) {
        let t = le("default mailbox RTT at 64 B <= 0.5x unix socket pair (pinned)", medians(f, u), 0.5);
        out.push(if apart { t } else { t.skip(&not_apart) });
    }
    if let (Some(f), Some(pipe)) = (rt(Method::MailboxFutex, 64), rt(Method::Pipe, 64)) {
        let t = le("default mailbox RTT on one CPU <= pipe pair on one CPU (64 B)", medians(f, pipe), 1.0);
        let one_cpu = p.mode == Mode::SameCpu || p.cpus.len() < 2;
        out.push(if one_cpu { t } else { t.skip(format!("needs --same-cpu; this run: {}", p.describe(2))) });
        let p99s = f.figures.p99_ns.zip(pipe.figures.p99_ns).map(|(a, b)| a as f64 / b.max(1) as f64);
        for (what, ratio) in [("median", medians(f, pipe)), ("p99", p99s)] {
            let t = le(&format!("default mailbox RTT {what} under busy loops <= pipe pair's (64 B)"), ratio, 1.0);
            out.push(if busy { t } else { t.skip("needs --busy (a busy loop on every CPU)") });
        }
    }
    // The throughput targets are stated for the processes on CPUs of their
    // own; on one CPU every full or empty ring is a context switch.
    let pinned = |t: Target| if apart { t } else { t.skip(&not_apart) };
    let pipe = tp(Method::Pipe, 64).and_then(|r| r.figures.msgs_per_s);
    for (m, how) in [(Method::QueueCopy, "copy"), (Method::QueueGrant, "grant")] {
        if let Some(q) = tp(m, 64) {
            let ratio = q.figures.msgs_per_s.zip(pipe).map(|(q, p)| q / p);
            out.push(pinned(ge(&format!("queue 64 B msgs/s >= 10x pipe ({how})"), ratio, 10.0)));
        }
    }
    if let (Some(g), Some(c)) = (tp(Method::QueueGrant, 64), tp(Method::QueueCopy, 64)) {
        let ratio = g.figures.msgs_per_s.zip(c.figures.msgs_per_s).map(|(g, c)| g / c);
        out.push(pinned(ge("queue 64 B msgs/s: grant >= copy", ratio, 1.0)));
    }
    if let Some(q) = tp(Method::QueueGrant, 1 << 20) {
        out.push(pinned(ge("1 MiB zero-copy >= 0.7x memcpy", q.figures.vs_ceiling, 0.7)));
    }
    for m in crate::clients::METHODS {
        if !many.iter().any(|r| r.method == m.id()) {
            continue;
        }
        let of = |n: u32| many.iter().find(|r| r.method == m.id() && r.clients == n);
        let how = match m {
            Method::MailboxSpin => "polling",
            Method::DirectSpin => "direct, polling",
            Method::DirectFutex => "direct, futex",
            _ => "futex",
        };
        let ratio = of(4).zip(of(1)).and_then(|(four, _)| four.vs_one_client);
        let t = ge(&format!("4 clients >= 3x one client's calls/s ({how}, pinned)"), ratio, 3.0);
        out.push(match (p.mode, of(4), of(1)) {
            (Mode::Distinct, _, _) if p.cpus.len() < 5 => {
                t.skip(format!("4 pinned clients and the server need 5 CPUs, this machine has {}", p.cpus.len()))
            }
            (Mode::Distinct, Some(_), Some(_)) => t,
            (Mode::Distinct, _, _) => t.skip("needs the 1- and 4-client rows (--clients 1,4)"),
            _ => t.skip(format!("needs each client on a CPU of its own; this run: {}", p.describe(2))),
        });
    }
    let fan_of = |m: Method, n: u32| fan.iter().find(|r| r.method == m.id() && r.subscribers == n);
    if let (Some(b), Some(p)) = (fan_of(Method::Broadcast, 4), fan_of(Method::Pipe, 4)) {
        let ratio = b.per_subscriber_msgs_per_s.zip(p.per_subscriber_msgs_per_s).map(|(b, p)| b / p);
        out.push(ge("broadcast 1 -> 4, 64 B: msgs/s per reader >= 5x one writer through four pipes", ratio, 5.0));
    }
    out
}

/// `64 B`, `4 KiB`, `1 MiB`, or bytes when not a round multiple.
pub fn size_label(size: usize) -> String {
    match size {
        s if s >= 1 << 20 && s % (1 << 20) == 0 => format!("{} MiB", s >> 20),
        s if s >= 1 << 10 && s % (1 << 10) == 0 => format!("{} KiB", s >> 10),
        s => format!("{s} B"),
    }
}

/// A duration in ns as `90 ns`, `1.3 µs`, `45 µs`, `1.2 ms`.
pub fn ns_label(ns: u64) -> String {
    let f = ns as f64;
    match ns {
        0..=9_999 => format!("{ns} ns"),
        10_000..=99_999 => format!("{:.1} µs", f / 1e3),
        100_000..=9_999_999 => format!("{:.0} µs", f / 1e3),
        _ => format!("{:.1} ms", f / 1e6),
    }
}

pub(crate) fn opt_ns(v: Option<u64>) -> String {
    v.map_or_else(|| "-".into(), ns_label)
}

pub(crate) fn ratio(v: Option<f64>) -> String {
    match v {
        Some(v) if v >= 100.0 => format!("{v:.0}x"),
        Some(v) if v >= 10.0 => format!("{v:.1}x"),
        Some(v) => format!("{v:.2}x"),
        None => "-".into(),
    }
}

pub(crate) fn rate_label(v: f64) -> String {
    match v {
        v if v >= 1e9 => format!("{:.2} G", v / 1e9),
        v if v >= 1e6 => format!("{:.2} M", v / 1e6),
        v if v >= 1e3 => format!("{:.1} k", v / 1e3),
        v => format!("{v:.0}"),
    }
}

pub(crate) fn sides(s: PerSide) -> String {
    format!("{}/{}", s.client, s.peer)
}

/// The tables, as printed.
pub fn render(report: &Report) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let pin = &report.placement_detail;
    let busy = if report.busy_loops { ", a busy loop on every CPU (--busy)" } else { "" };
    let _ = writeln!(out, "shm-bench, {} UTC, {} CPUs, {pin}{busy}", report.date_utc, report.cpus);
    let _ = writeln!(out, "command: {}", report.command);
    table(&mut out, &report.round_trip);
    table(&mut out, &report.throughput);
    crate::clients::render(&mut out, &report.clients);
    crate::fanout::render(&mut out, &report.fanout);
    if !report.targets.is_empty() {
        let mut t = plain_table(["target (ratio of two rows of this run)", "measured", "required", "", "why"], 1..3);
        for target in &report.targets {
            let measured = target.measured.map_or_else(|| "-".into(), |v| format!("{v:.3}"));
            let why = target.skipped.as_deref().unwrap_or_default();
            t.add_row([target.name.as_str(), &measured, &target.required, target.verdict(), why]);
        }
        let _ = writeln!(out, "\nTargets\n{}", t.trim_fmt());
    }
    let verdict = if report.allocations_ok { "OK" } else { "VIOLATED" };
    let _ = writeln!(
        out,
        "\nHeap allocations on shm hot paths (both sides, timed loops, no park or wake): {} — {verdict}",
        report.shm_hot_path_allocations
    );
    if report.shm_slow_path_allocations > 0 {
        let _ = writeln!(
            out,
            "Heap allocations in shm operations that parked or woke a sleeper (slow path: the library's \
             liveness check after a park, lazy named-semaphore set-up): {}",
            report.shm_slow_path_allocations
        );
    }
    out
}

/// One table: a title, a header, a row per method and size (a blank line
/// between sizes), the reason of each row without figures, and the note.
fn table<F: Figures>(out: &mut String, rows: &[Row<F>]) {
    use std::fmt::Write as _;
    let Some(first) = rows.first() else { return };
    let header = ["size", "method"].iter().chain(F::COLUMNS).chain(&["allocs", "parks"]).copied();
    let mut t = plain_table(header, 2..F::COLUMNS.len() + 4);
    let mut notes = String::new();
    for (i, r) in rows.iter().enumerate() {
        if i > 0 && rows[i - 1].size != r.size {
            t.add_row([""]);
        }
        let mut cells = vec![size_label(r.size), r.label.to_string()];
        match &r.error {
            Some(e) => {
                cells.push(e.split(':').next().unwrap_or_default().into());
                let _ = writeln!(notes, "  {}, {}: {e}", size_label(r.size), r.label);
            }
            None => cells.extend(F::cells(r).into_iter().chain([sides(r.allocations), sides(r.parks)])),
        }
        t.add_row(cells);
    }
    let _ = write!(out, "\n{}\n{}\n{notes}{}\n", first.figures.title(), t.trim_fmt(), F::NOTE);
}

/// A table without borders, two spaces between columns, with the columns
/// in `right` aligned right (print it with `trim_fmt`).
pub(crate) fn plain_table<S: ToString>(header: impl IntoIterator<Item = S>, right: std::ops::Range<usize>) -> Table {
    let mut t = Table::new();
    t.load_style(presets::NOTHING).set_header(header.into_iter().map(|h| h.to_string()).collect::<Vec<_>>());
    for (i, column) in t.column_iter_mut().enumerate() {
        column.set_padding((0, 2));
        if right.contains(&i) {
            column.set_cell_alignment(CellAlignment::Right);
        }
    }
    t
}

/// Allocations counted on the shm rows of a table (both sides): (hot
/// path, park path).
pub fn shm_allocations<F>(rows: &[Row<F>]) -> (u64, u64) {
    let shm = rows.iter().filter(|r| r.shm);
    shm.fold((0, 0), |(h, s), r| (h + r.allocations.total(), s + r.allocations_slow.total()))
}

/// Now, as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn utc_now() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}
