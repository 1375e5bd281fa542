//! The figures of one run: rows, ratios, targets, the printed table and
//! the JSON document.

use serde::Serialize;

use crate::Method;

/// Heap allocations counted on each side during the timed loop.
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

/// One round-trip row.
#[derive(Debug, Clone, Serialize)]
pub struct RoundTripRow {
    /// Method id (as `--methods` takes it).
    pub method: &'static str,
    /// What the table calls it.
    pub label: &'static str,
    /// Whether it goes through shared memory.
    pub shm: bool,
    /// Payload bytes each way.
    pub size: usize,
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
    /// The best non-shm method's median divided by this median ("x times
    /// faster than"; below 1 means slower).
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

/// One throughput row.
#[derive(Debug, Clone, Serialize)]
pub struct ThroughputRow {
    /// Method id.
    pub method: &'static str,
    /// What the table calls it.
    pub label: &'static str,
    /// Whether it goes through shared memory.
    pub shm: bool,
    /// Bytes per message.
    pub size: usize,
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
    /// Messages/s divided by the best non-shm method's at this size.
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
    /// Parks of the wait strategy, per side.
    pub parks: PerSide,
    /// Wake calls, per side.
    pub wakes: PerSide,
    /// Why there are no figures, if there are none.
    pub error: Option<String>,
}

/// One of issue 5's targets, as measured in this run.
#[derive(Debug, Clone, Serialize)]
pub struct Target {
    /// What is compared.
    pub name: String,
    /// The measured ratio.
    pub measured: Option<f64>,
    /// The bound, e.g. "<= 1.5".
    pub required: String,
    /// Whether it holds (None when a figure is missing).
    pub met: Option<bool>,
}

/// Everything one run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The command line.
    pub command: String,
    /// When the run started (UTC, ISO 8601).
    pub date_utc: String,
    /// CPUs this process may use.
    pub cpus: usize,
    /// (orchestrator CPU, peer CPU), when pinned.
    pub pinned: Option<(usize, usize)>,
    /// Whether `--quick` was given.
    pub quick: bool,
    /// Round-trip rows, grouped by size.
    pub round_trip: Vec<RoundTripRow>,
    /// Throughput rows, grouped by size.
    pub throughput: Vec<ThroughputRow>,
    /// Issue 5's targets.
    pub targets: Vec<Target>,
    /// Heap allocations on shm hot paths, all rows and both sides together.
    pub shm_hot_path_allocations: u64,
    /// Heap allocations on shm slow paths (park or wake), all rows and both
    /// sides.
    pub shm_slow_path_allocations: u64,
    /// Whether that is zero.
    pub allocations_ok: bool,
}

/// Fills the ratio columns from the rows of the same size.
pub fn fill_ratios(rtt: &mut [RoundTripRow], tput: &mut [ThroughputRow]) {
    let sizes: Vec<usize> = rtt.iter().map(|r| r.size).collect();
    for size in sizes {
        let floor =
            rtt.iter().find(|r| r.size == size && r.method == Method::AtomicFloor.id()).and_then(|r| r.median_ns);
        let best =
            rtt.iter().filter(|r| r.size == size && !r.shm).filter_map(|r| r.median_ns.map(|m| (m, r.method))).min();
        for r in rtt.iter_mut().filter(|r| r.size == size) {
            let Some(m) = r.median_ns else { continue };
            r.vs_floor = floor.map(|f| m as f64 / f.max(1) as f64);
            r.vs_best_alternative = best.map(|(b, _)| b as f64 / m.max(1) as f64);
            r.best_alternative = best.map(|(_, id)| id);
        }
    }
    let sizes: Vec<usize> = tput.iter().map(|r| r.size).collect();
    for size in sizes {
        let ceiling = tput.iter().find(|r| r.size == size && r.method == Method::Memcpy.id()).and_then(|r| r.gb_per_s);
        let best = tput
            .iter()
            .filter(|r| r.size == size && !r.shm && r.method != Method::Memcpy.id())
            .filter_map(|r| r.msgs_per_s.map(|m| (m, r.method)))
            .max_by(|a, b| a.0.total_cmp(&b.0));
        for r in tput.iter_mut().filter(|r| r.size == size) {
            let (Some(gbps), Some(rate)) = (r.gb_per_s, r.msgs_per_s) else { continue };
            r.vs_ceiling = ceiling.map(|c| gbps / c);
            r.vs_best_alternative = best.map(|(b, _)| rate / b);
            r.best_alternative = best.map(|(_, id)| id);
        }
    }
}

/// Evaluates issue 5's targets on the rows.
pub fn targets(rtt: &[RoundTripRow], tput: &[ThroughputRow]) -> Vec<Target> {
    let rt = |m: Method, size: usize| rtt.iter().find(|r| r.method == m.id() && r.size == size);
    let tp = |m: Method, size: usize| tput.iter().find(|r| r.method == m.id() && r.size == size);
    let le = |name: String, measured: Option<f64>, bound: f64| Target {
        name,
        measured,
        required: format!("<= {bound}"),
        met: measured.map(|v| v <= bound),
    };
    let ge = |name: String, measured: Option<f64>, bound: f64| Target {
        name,
        measured,
        required: format!(">= {bound}"),
        met: measured.map(|v| v >= bound),
    };
    let mut out = Vec::new();
    if let Some(r) = rt(Method::MailboxSpin, 64) {
        out.push(le("mailbox polling, 64 B: median / atomic floor median".into(), r.vs_floor, 1.5));
    }
    let mut sizes: Vec<usize> = rtt.iter().map(|r| r.size).collect();
    sizes.dedup();
    for size in sizes {
        if let (Some(f), Some(u)) = (rt(Method::MailboxFutex, size), rt(Method::UnixSocket, size)) {
            let ratio = f.median_ns.zip(u.median_ns).map(|(f, u)| f as f64 / u.max(1) as f64);
            out.push(le(format!("mailbox futex, {}: median / unix socket median", size_label(size)), ratio, 0.5));
        }
    }
    for m in [Method::QueueCopy, Method::QueueGrant] {
        if let (Some(q), Some(p)) = (tp(m, 64), tp(Method::Pipe, 64)) {
            let ratio = q.msgs_per_s.zip(p.msgs_per_s).map(|(q, p)| q / p);
            out.push(ge(format!("{}, 64 B: msgs/s / pipe msgs/s", m.label_throughput()), ratio, 10.0));
        }
    }
    if let Some(q) = tp(Method::QueueGrant, 1 << 20) {
        out.push(ge("shm queue zero-copy grant, 1 MiB: GB/s / memcpy GB/s".into(), q.vs_ceiling, 0.7));
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

fn opt_ns(v: Option<u64>) -> String {
    v.map_or_else(|| "-".into(), ns_label)
}

fn ratio(v: Option<f64>) -> String {
    match v {
        Some(v) if v >= 100.0 => format!("{v:.0}x"),
        Some(v) if v >= 10.0 => format!("{v:.1}x"),
        Some(v) => format!("{v:.2}x"),
        None => "-".into(),
    }
}

fn rate_label(v: f64) -> String {
    match v {
        v if v >= 1e9 => format!("{:.2} G", v / 1e9),
        v if v >= 1e6 => format!("{:.2} M", v / 1e6),
        v if v >= 1e3 => format!("{:.1} k", v / 1e3),
        v => format!("{v:.0}"),
    }
}

fn sides(s: PerSide) -> String {
    format!("{}/{}", s.client, s.peer)
}

/// The table, as printed.
pub fn render(report: &Report) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let pin = match report.pinned {
        Some((me, peer)) => format!("client/receiver on CPU {me}, peer on CPU {peer}"),
        None => "not pinned".into(),
    };
    let _ = writeln!(out, "shm-bench, {} UTC, {} CPUs, {pin}", report.date_utc, report.cpus);
    let _ = writeln!(out, "command: {}", report.command);
    if let Some(r) = report.round_trip.first() {
        let _ = writeln!(
            out,
            "\nRound trip between two processes: {} timed after {} warm-up; each sample includes one clock read",
            r.iterations, r.warmup
        );
        let _ = writeln!(
            out,
            "{:<8} {:<30} {:>8} {:>8} {:>8} {:>8} {:>9} {:>12} {:>7} {:>11}",
            "size", "method", "median", "p99", "p99.9", "max", "vs floor", "vs best alt", "allocs", "parks"
        );
        let mut last = None;
        for r in &report.round_trip {
            if last.is_some_and(|s| s != r.size) {
                out.push('\n');
            }
            last = Some(r.size);
            if let Some(e) = &r.error {
                let _ = writeln!(out, "{:<8} {:<30} {e}", size_label(r.size), r.label);
                continue;
            }
            let _ = writeln!(
                out,
                "{:<8} {:<30} {:>8} {:>8} {:>8} {:>8} {:>9} {:>12} {:>7} {:>11}",
                size_label(r.size),
                r.label,
                opt_ns(r.median_ns),
                opt_ns(r.p99_ns),
                opt_ns(r.p999_ns),
                opt_ns(r.max_ns),
                ratio(r.vs_floor),
                ratio(r.vs_best_alternative),
                sides(r.allocations),
                sides(r.parks),
            );
        }
        let _ = writeln!(
            out,
            "vs floor: median / atomic ping-pong median; vs best alt: best of pipe, unix socket and message queue \
             / this median (x times faster); allocs (hot path) and parks: client/peer in the timed loop"
        );
    }
    if !report.throughput.is_empty() {
        let _ = writeln!(out, "\nThroughput one way, peer sending to the orchestrator");
        let _ = writeln!(
            out,
            "{:<8} {:<30} {:>9} {:>8} {:>10} {:>12} {:>7} {:>11}",
            "size", "method", "msgs/s", "GB/s", "vs memcpy", "vs best alt", "allocs", "parks"
        );
        let mut last = None;
        for r in &report.throughput {
            if last.is_some_and(|s| s != r.size) {
                out.push('\n');
            }
            last = Some(r.size);
            if let Some(e) = &r.error {
                let _ = writeln!(out, "{:<8} {:<30} {e}", size_label(r.size), r.label);
                continue;
            }
            let _ = writeln!(
                out,
                "{:<8} {:<30} {:>9} {:>8} {:>10} {:>12} {:>7} {:>11}",
                size_label(r.size),
                r.label,
                r.msgs_per_s.map_or_else(|| "-".into(), rate_label),
                r.gb_per_s.map_or_else(|| "-".into(), |g| format!("{g:.2}")),
                ratio(r.vs_ceiling),
                if r.method == Method::Memcpy.id() { "-".into() } else { ratio(r.vs_best_alternative) },
                sides(r.allocations),
                sides(r.parks),
            );
        }
        let _ = writeln!(
            out,
            "GB/s: 10^9 payload bytes per second; vs memcpy: GB/s / one-process memcpy GB/s; \
             vs best alt: msgs/s / best of pipe and unix socket"
        );
    }
    if !report.targets.is_empty() {
        let _ = writeln!(out, "\nTargets (issue 5; ratios from this run)");
        for t in &report.targets {
            let verdict = match t.met {
                Some(true) => "met",
                Some(false) => "NOT MET",
                None => "no figure",
            };
            let measured = t.measured.map_or_else(|| "-".into(), |v| format!("{v:.3}"));
            let _ = writeln!(out, "  {:<62} {:>8} (required {:<7}) {verdict}", t.name, measured, t.required);
        }
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

/// Allocations counted on shm rows (both sections, both sides): (hot path,
/// park path).
pub fn shm_allocations(rtt: &[RoundTripRow], tput: &[ThroughputRow]) -> (u64, u64) {
    let rows = rtt
        .iter()
        .filter(|r| r.shm)
        .map(|r| (r.allocations, r.allocations_slow))
        .chain(tput.iter().filter(|r| r.shm).map(|r| (r.allocations, r.allocations_slow)));
    rows.fold((0, 0), |(h, s), (hot, slow)| (h + hot.total(), s + slow.total()))
}

/// Now, as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn utc_now() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}
