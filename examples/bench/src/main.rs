//! `shm-bench`: every way to pass a message between two processes on this
//! machine, measured side by side in one run, in one table.
//!
//! ```text
//! cargo run --release --bin shm-bench                       # full run (about a minute)
//! cargo run --release --bin shm-bench -- --quick --json out.json --svg rtt.svg
//! cargo run --release --bin shm-bench -- --methods mailbox-spin,atomic-floor --sizes 64
//! cargo run --release --bin shm-bench -- --same-cpu --methods mailbox-futex,pipe --sizes 64 --clients 0
//! cargo run --release --bin shm-bench -- --clients 1,2,4,8 --methods mailbox-futex,mailbox-spin
//! cargo run --release --bin shm-bench -- --busy --methods mailbox-futex,pipe --sizes 64 --clients 0
//! cargo run --release -p shm-bench --features iceoryx2 -- --methods mailbox-spin,iceoryx2-rr,iceoryx2-pubsub --clients 0
//! ```
//!
//! The binary is the orchestrator and, re-run as `shm-bench peer …`, the
//! other process of each measurement. The orchestrator pins itself to one
//! CPU and the peer to another (when there are two; `--same-cpu` puts both
//! on one, `--no-pin` pins neither; `--busy` adds a busy loop on every CPU), creates the segment, pipe, socket or
//! queue, starts the peer, measures, and removes every name it made,
//! whatever the peer did.
//!
//! - **Round trip** (request of `size` bytes, the peer flips its first byte
//!   and answers `size` bytes): the shm mailbox with a polling peer, with
//!   the futex semaphore and with named POSIX semaphores; a pipe pair, a Unix
//!   stream socket pair and two POSIX message queues; and two floors: a bare
//!   atomic ping-pong on one cache line of a shared mapping, and the same
//!   with `size` payload bytes beside the word, laid out as a mailbox slot,
//!   each side prefetching the payload while it spins (what carrying the
//!   bytes costs with no protocol at all).
//! - **Throughput** one way: the shm queue copying (`send_timeout` /
//!   `recv_timeout`) and zero-copy (the producer fills its grant in place,
//!   the consumer reads every byte in place), a pipe and a Unix socket; the
//!   ceiling is `memcpy` of the same size in one process, and the floor
//!   (`transfer-floor`) the queue's ring used raw, with two counters and no
//!   protocol, written and read as the zero-copy row does (what moving the
//!   bytes from one CPU to the other costs).
//! - **iceoryx2** (feature `iceoryx2`, off by default): its request-response
//!   and publish-subscribe, both sides polling, as rows of the same tables,
//!   fan-out included (see `iox`).
//! - **Fan-out** (`--fanout`): one writer process and N reader processes,
//!   the shm broadcast channel against one pipe per reader (and iceoryx2
//!   publish-subscribe, with its feature); messages per second per reader
//!   and publish-to-receive latency (see `fanout`).
//! - **Many clients** (`--clients`): N client processes against one
//!   mailbox server process, futex and polling; aggregate calls/s and the
//!   latency of every call, one row per N (see `clients`).
//! - **Targets**: ratios of two rows of the same run, each printed with
//!   `met` / `NOT MET`, or `skipped` with the reason (a placement this run
//!   did not have, or a row it did not run).
//! - **Allocations**: a counting global allocator (per thread); any heap
//!   allocation on the hot path of a shared-memory method (an operation that
//!   neither parked nor woke a sleeping peer), on either side, fails the run.
//!   Allocations in operations that parked or woke are counted and printed
//!   separately: that path makes system calls anyway.
//!
//! # Design
//!
//! The peer is a separate process, not a thread, because that is the claim
//! being measured. Each peer is watched by a reaper thread holding a pidfd:
//! it reaps the peer the moment it exits (so the library's liveness checks
//! by PID see it dead instead of a zombie) and kills it if it outlives
//! `--peer-timeout`. Names carry this process's PID, so a run killed before
//! it could clean up is swept by the next one.
//!
//! Modules: `runs` (the orchestrator's side of each row), `serve` (the
//! peer's), `clients` (the many-clients rows, both sides), `placement`
//! (which CPUs each process of a row gets), `measure` (the one loop both sides run), `roundtrip` and
//! `throughput` (both sides' operations), `strategy` (the polling wait
//! strategy and park/wake counters), `procs` (processes, descriptors,
//! names), `mq` (message queues through libc), `report` and `chart` (the
//! row type, tables, JSON, SVG), `alloc` (the counting allocator), `error`,
//! and with the `iceoryx2` feature `iox` (both sides of the iceoryx2 rows).

mod alloc;
mod busy;
mod chart;
mod clients;
mod error;
mod fanout;
#[cfg(feature = "iceoryx2")]
mod iox;
mod measure;
mod mq;
mod placement;
mod procs;
mod report;
mod roundtrip;
mod runs;
mod serve;
mod strategy;
mod throughput;

use std::fs::File;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::error::{chain, Error};
use crate::placement::{Cpus, Mode, Placement};
use crate::procs::Names;
use crate::report::{Figures, Latency, Rate, Report, Row};
use crate::runs::Ctx;

#[global_allocator]
static ALLOCATOR: alloc::CountingAlloc = alloc::CountingAlloc;

/// The mailbox channel's name.
pub const MAILBOX: &str = "rpc";
/// Mailbox slots (the client uses one at a time).
pub const SLOTS: u32 = 4;
/// The queue channel's name.
pub const QUEUE: &str = "stream";
/// The floor's semaphore channel (only its first word is used).
pub const FLOOR: &str = "floor";
/// How long a peer waits for the orchestrator's segment.
pub const OPEN_TIMEOUT: Duration = Duration::from_secs(10);

/// A way to pass messages between the two processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Method {
    /// Bare atomic ping-pong on one cache line of a shared mapping (the floor).
    AtomicFloor,
    /// A signal word and the size's payload bytes ping-ponged between two
    /// pinned processes, as a mailbox slot lays them out, each side
    /// prefetching the payload while it spins (no protocol): the floor for
    /// carrying that many bytes each way.
    PayloadFloor,
    /// shm mailbox, both sides polling (spin-only wait strategy).
    MailboxSpin,
    /// shm mailbox, futex semaphore (spin, then sleep).
    MailboxFutex,
    /// shm mailbox, POSIX named semaphores (spin, then sleep).
    MailboxSem,
    /// shm direct mailbox (each client keeps its slot), both sides polling.
    DirectSpin,
    /// shm direct mailbox, futex (spin, then sleep): its default strategy.
    DirectFutex,
    /// A pipe (a pair of them for round trips).
    Pipe,
    /// A Unix domain stream socket pair.
    UnixSocket,
    /// POSIX message queues, one each way (round trip only).
    Mqueue,
    /// shm queue, copying send and receive (throughput only).
    QueueCopy,
    /// shm queue, zero-copy grants (throughput only).
    QueueGrant,
    /// memcpy in one process: the throughput ceiling.
    Memcpy,
    /// The queue's ring used raw between two pinned processes, no protocol
    /// (throughput only): each message written and read a word at a time
    /// where the queue would put its frame, handed over by two counters.
    /// The floor for moving that many bytes from one CPU to another.
    TransferFloor,
    /// shm broadcast channel, block policy (fan-out rows only).
    Broadcast,
    /// iceoryx2 request-response, both sides polling (round trip only;
    /// feature `iceoryx2`).
    #[cfg(feature = "iceoryx2")]
    Iceoryx2Rr,
    /// iceoryx2 publish-subscribe, both sides polling: a ping and a pong
    /// service for round trips, one service one way, one service and N
    /// subscribers in the fan-out rows (feature `iceoryx2`).
    #[cfg(feature = "iceoryx2")]
    Iceoryx2Pubsub,
}

impl Method {
    /// Round-trip methods, in table order.
    pub const ROUND_TRIP: &[Method] = &[
        Method::AtomicFloor,
        Method::PayloadFloor,
        Method::MailboxSpin,
        Method::MailboxFutex,
        Method::MailboxSem,
        Method::DirectSpin,
        Method::DirectFutex,
        Method::Pipe,
        Method::UnixSocket,
        Method::Mqueue,
        #[cfg(feature = "iceoryx2")]
        Method::Iceoryx2Rr,
        #[cfg(feature = "iceoryx2")]
        Method::Iceoryx2Pubsub,
    ];
    /// Throughput methods, in table order.
    pub const THROUGHPUT: &[Method] = &[
        Method::Memcpy,
        Method::TransferFloor,
        Method::QueueCopy,
        Method::QueueGrant,
        Method::Pipe,
        Method::UnixSocket,
        #[cfg(feature = "iceoryx2")]
        Method::Iceoryx2Pubsub,
    ];
    /// The methods through the kernel: every shm row's "best alternative"
    /// is the fastest of these at its size.
    pub const KERNEL: [Method; 3] = [Method::Pipe, Method::UnixSocket, Method::Mqueue];

    /// The id `--methods` takes.
    pub fn id(self) -> &'static str {
        match self {
            Method::AtomicFloor => "atomic-floor",
            Method::PayloadFloor => "payload-floor",
            Method::MailboxSpin => "mailbox-spin",
            Method::MailboxFutex => "mailbox-futex",
            Method::MailboxSem => "mailbox-sem",
            Method::DirectSpin => "direct-spin",
            Method::DirectFutex => "direct-futex",
            Method::Pipe => "pipe",
            Method::UnixSocket => "unix-socket",
            Method::Mqueue => "mqueue",
            Method::QueueCopy => "queue-copy",
            Method::QueueGrant => "queue-grant",
            Method::Memcpy => "memcpy",
            Method::TransferFloor => "transfer-floor",
            Method::Broadcast => "broadcast",
            #[cfg(feature = "iceoryx2")]
            Method::Iceoryx2Rr => "iceoryx2-rr",
            #[cfg(feature = "iceoryx2")]
            Method::Iceoryx2Pubsub => "iceoryx2-pubsub",
        }
    }

    /// Whether the method goes through this project's shared memory (its
    /// rows must not allocate on the hot path). iceoryx2 uses shared memory
    /// too, but it is another library, measured for comparison.
    pub fn is_shm(self) -> bool {
        match self {
            Method::Pipe | Method::UnixSocket | Method::Mqueue | Method::Memcpy => false,
            #[cfg(feature = "iceoryx2")]
            Method::Iceoryx2Rr | Method::Iceoryx2Pubsub => false,
            _ => true,
        }
    }

    /// Its name in the round-trip table.
    pub fn label_round_trip(self) -> &'static str {
        match self {
            Method::AtomicFloor => "atomic ping-pong (floor)",
            Method::PayloadFloor => "word + payload ping-pong (floor for the size)",
            Method::MailboxSpin => "shm mailbox, polling",
            Method::MailboxFutex => "shm mailbox, futex",
            Method::MailboxSem => "shm mailbox, named semaphore",
            Method::DirectSpin => "shm direct mailbox, polling",
            Method::DirectFutex => "shm direct mailbox, futex",
            Method::Pipe => "pipe pair",
            Method::UnixSocket => "unix socket pair",
            Method::Mqueue => "POSIX message queues",
            #[cfg(feature = "iceoryx2")]
            Method::Iceoryx2Rr => "iceoryx2 request-response, polling",
            #[cfg(feature = "iceoryx2")]
            Method::Iceoryx2Pubsub => "iceoryx2 ping/pong pub-sub, polling",
            other => other.label_throughput(),
        }
    }

    /// Its name in the throughput table.
    pub fn label_throughput(self) -> &'static str {
        match self {
            Method::QueueCopy => "shm queue, copy",
            Method::QueueGrant => "shm queue, zero-copy grant",
            Method::Pipe => "pipe (1 MiB buffer)",
            Method::UnixSocket => "unix socket",
            Method::Memcpy => "memcpy, one process (ceiling)",
            Method::TransferFloor => "raw ring, no protocol (floor)",
            #[cfg(feature = "iceoryx2")]
            Method::Iceoryx2Pubsub => "iceoryx2 pub-sub, polling",
            other => other.label_round_trip(),
        }
    }
}

/// Which measurement a peer takes part in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Test {
    /// Request/response.
    RoundTrip,
    /// One way, as fast as possible.
    Throughput,
    /// The server of a many-clients row.
    ClientsServer,
    /// One client of a many-clients row.
    ClientsClient,
    /// The writer of a fan-out row.
    FanoutPublisher,
    /// A reader of a fan-out row.
    FanoutSubscriber,
}

#[derive(Parser)]
#[command(about = "Round-trip latency and one-way throughput between two processes: \
             shared memory against pipes, sockets and message queues, in one table")]
struct Cli {
    #[command(subcommand)]
    role: Option<Role>,
    #[command(flatten)]
    options: Options,
}

#[derive(Args)]
struct Options {
    /// Small counts for a smoke test (finishes in well under 30 s).
    #[arg(long)]
    quick: bool,
    /// Timed round trips per row [default: 100000, 10000 with --quick];
    /// throughput rows move up to 20x as many messages (at most iters x 20 KiB).
    #[arg(long)]
    iters: Option<u64>,
    /// Untimed round trips first [default: a tenth of --iters, at least 100].
    #[arg(long)]
    warmup: Option<u64>,
    /// Round-trip payload sizes (bytes; K and M suffixes are KiB and MiB).
    #[arg(long, value_delimiter = ',', value_parser = parse_size, default_value = "64,1K,64K")]
    sizes: Vec<usize>,
    /// Throughput message sizes.
    #[arg(long, value_delimiter = ',', value_parser = parse_size, default_value = "64,4K,1M")]
    throughput_sizes: Vec<usize>,
    /// Methods to run [default: all].
    #[arg(long, value_delimiter = ',')]
    methods: Vec<Method>,
    /// Write every figure as JSON to this file.
    #[arg(long, value_name = "PATH")]
    json: Option<PathBuf>,
    /// Draw the round-trip comparison as SVG to this file.
    #[arg(long, value_name = "PATH")]
    svg: Option<PathBuf>,
    /// shm queue ring bytes [default: the smallest power of two >= 64 KiB
    /// that carries the message].
    #[arg(long, value_parser = parse_size)]
    ring: Option<usize>,
    /// Do not pin the processes to CPUs (the scheduler places them).
    #[arg(long, conflicts_with = "same_cpu")]
    no_pin: bool,
    /// Pin every process of a row (both of a pair; all clients and the
    /// server) to one CPU: how each method fares when CPUs are shared.
    #[arg(long)]
    same_cpu: bool,
    /// Run a busy loop on every CPU while measuring (one spinning thread
    /// pinned to each): how each method fares when no CPU is ever idle.
    #[arg(long)]
    busy: bool,
    /// Client counts of the many-clients rows (N client processes against
    /// one mailbox server); 0 skips them [default: 1,2,4,8; 1,2 with --quick].
    #[arg(long, value_delimiter = ',')]
    clients: Vec<u32>,
    /// Timed calls per client in the many-clients rows [default: 20000,
    /// 1000 with --quick], after a tenth as many untimed ones (at least 100).
    #[arg(long)]
    client_calls: Option<u64>,
    /// Reader counts of the fan-out rows (one writer process, N reader
    /// processes: the shm broadcast channel against one pipe per reader,
    /// and iceoryx2 publish-subscribe with that feature); 0 skips them
    /// [default: 1,4].
    #[arg(long, value_delimiter = ',')]
    fanout: Vec<u32>,
    /// Messages per fan-out row [default: 200000, 20000 with --quick].
    #[arg(long)]
    fanout_messages: Option<u64>,
    /// Kill a peer still running after this many seconds.
    #[arg(long, default_value_t = 300)]
    peer_timeout: u64,
}

#[derive(Subcommand)]
enum Role {
    /// The other process of one measurement (started by the orchestrator).
    #[command(hide = true)]
    Peer(PeerArgs),
}

/// What the orchestrator tells a peer (`shm-bench peer …`).
#[derive(Args, Debug)]
pub struct PeerArgs {
    /// Which measurement.
    #[arg(long)]
    pub test: Test,
    /// Which method.
    #[arg(long)]
    pub method: Method,
    /// Payload bytes.
    #[arg(long)]
    pub size: usize,
    /// Segment name, or the message queues' common prefix.
    #[arg(long, default_value = "")]
    pub name: String,
    /// Operations before the timed ones.
    #[arg(long)]
    pub warmup: u64,
    /// Timed operations.
    #[arg(long)]
    pub count: u64,
    /// Inherited descriptors, in the order the method expects.
    #[arg(long, value_delimiter = ',')]
    pub fds: Vec<i32>,
    /// CPUs to run on (one when pinned).
    #[arg(long, value_delimiter = ',')]
    pub cpus: Vec<usize>,
    /// Whether this process shares its CPU with its peers (the benchmark's
    /// spinning strategies then yield instead of spinning on).
    #[arg(long)]
    pub shared_cpu: bool,
    /// Which client of a many-clients row (1..=N; 0 for its server).
    #[arg(long, default_value_t = 0)]
    pub client: u32,
}

fn parse_size(s: &str) -> Result<usize, Error> {
    let t = s.trim();
    let lower = t.to_ascii_lowercase();
    let (digits, unit) = match lower.trim_end_matches("ib").trim_end_matches('b') {
        d if d.ends_with('k') => (&d[..d.len() - 1], 1usize << 10),
        d if d.ends_with('m') => (&d[..d.len() - 1], 1 << 20),
        d => (d, 1),
    };
    let n: usize =
        digits.trim().parse().map_err(|_| Error::Usage(format!("`{s}` is not a size such as 64, 4K or 1M")))?;
    match n.checked_mul(unit) {
        Some(0) | None => Err(Error::Usage(format!("size `{s}` must be at least one byte and fit in memory"))),
        Some(v) => Ok(v),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.role {
        Some(Role::Peer(args)) => serve::peer_main(args).map(|()| true),
        None => orchestrate(cli.options),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("shm-bench: {}", chain(&e));
            ExitCode::FAILURE
        }
    }
}

fn orchestrate(o: Options) -> Result<bool, Error> {
    procs::sweep_stale();
    let mode = match (o.same_cpu, o.no_pin) {
        (true, _) => Mode::SameCpu,
        (false, true) => Mode::Unpinned,
        (false, false) => Mode::Distinct,
    };
    let placement = Placement::new(mode, procs::allowed_cpus());
    let pair = placement.assign(2);
    // (orchestrator, peer): the peer gets the first CPU, as it always has.
    let pinned = match &pair {
        Cpus::Pinned(cpus) => Some((cpus[1], cpus[0])),
        Cpus::Unpinned { .. } => None,
    };
    if let Some((me, _)) = pinned {
        procs::pin(me)?;
    }
    let shared_cpu = placement.shares_cpu(2);
    strategy::set_one_cpu(shared_cpu);
    if shared_cpu {
        eprintln!(
            "shm-bench: {}: the two processes share a CPU, so the benchmark's own polling (the floor, the \
             polling mailbox) yields instead of spinning; futex and semaphore rows use the library as it is",
            placement.describe(2)
        );
    }
    let iters = o.iters.unwrap_or(if o.quick { 10_000 } else { 100_000 }).max(1);
    let warmup = o.warmup.unwrap_or((iters / 10).max(100));
    let largest = o.sizes.iter().copied().max().unwrap_or(64);
    let slot_size =
        u32::try_from(largest).map_err(|_| Error::Usage(format!("round-trip size {largest} is too large")))?;
    let client_calls = o.client_calls.unwrap_or(if o.quick { 1_000 } else { 20_000 }).max(1);
    let mut ctx = Ctx {
        exe: std::env::current_exe().map_err(Error::os("finding this executable"))?,
        iters,
        warmup,
        slot_size,
        ring: o.ring,
        peer_cpus: pair.of(0, &placement.cpus),
        shared_cpu,
        placement: placement.clone(),
        client_calls,
        client_warmup: (client_calls / 10).max(100),
        peer_timeout: Duration::from_secs(o.peer_timeout),
        names: Names::new(),
    };
    let counts: Vec<u32> = match o.clients.as_slice() {
        [] if o.quick => vec![1, 2],
        [] => vec![1, 2, 4, 8],
        list => list.iter().copied().filter(|&n| n > 0).collect(),
    };
    let readers: Vec<u32> = match o.fanout.as_slice() {
        [] => vec![1, 4],
        list => list.iter().copied().filter(|&n| n > 0).collect(),
    };
    let fanout_messages = o.fanout_messages.unwrap_or(if o.quick { 20_000 } else { 200_000 }).max(1);
    let date_utc = report::utc_now();
    let busy = o.busy.then(|| busy::BusyLoops::start(&placement.cpus)).transpose()?;
    if busy.is_some() {
        eprintln!("shm-bench: a busy loop runs on each of CPUs {:?} (--busy)", placement.cpus);
    }
    let (rtt, rtt_failed) = section::<Latency>(&mut ctx, &o.sizes, &o.methods);
    let (tput, tput_failed) = section::<Rate>(&mut ctx, &o.throughput_sizes, &o.methods);
    let (many, many_failed) = clients::run_all(&mut ctx, &counts, &o.methods);
    let (fan, fan_failed) = fanout::run_all(&mut ctx, &readers, fanout_messages, &o.methods);
    let (rtt_allocs, tput_allocs) = (report::shm_allocations(&rtt), report::shm_allocations(&tput));
    let many_allocs = clients::allocations(&many);
    drop(busy);
    let shm_allocs = rtt_allocs.0 + tput_allocs.0 + many_allocs.0;
    let shm_slow_allocs = rtt_allocs.1 + tput_allocs.1 + many_allocs.1;
    let report = Report {
        command: std::env::args().collect::<Vec<_>>().join(" "),
        date_utc,
        cpus: placement.cpus.len(),
        pinned,
        placement: mode,
        placement_detail: placement.describe(2),
        busy_loops: o.busy,
        quick: o.quick,
        targets: report::targets(&placement, o.busy, &rtt, &tput, &many, &fan),
        round_trip: rtt,
        throughput: tput,
        clients: many,
        fanout: fan,
        shm_hot_path_allocations: shm_allocs,
        shm_slow_path_allocations: shm_slow_allocs,
        allocations_ok: shm_allocs == 0,
    };
    print!("{}", report::render(&report));
    if let Some(path) = &o.json {
        write_json(&report, path)?;
    }
    if let Some(path) = &o.svg {
        chart::draw(&report, path)?;
    }
    if !report.allocations_ok {
        eprintln!("shm-bench: {shm_allocs} heap allocations on shared-memory hot paths (expected none)");
    }
    if rtt_failed || tput_failed || many_failed || fan_failed {
        eprintln!("shm-bench: some methods failed (see the table)");
    }
    Ok(report.allocations_ok && !rtt_failed && !tput_failed && !many_failed && !fan_failed)
}

/// Runs the rows of one table (every selected method at every size, the
/// progress on stderr) and fills their ratios; says whether any failed.
fn section<F: Figures>(ctx: &mut Ctx, sizes: &[usize], selected: &[Method]) -> (Vec<Row<F>>, bool) {
    let (mut rows, mut any_failed) = (Vec::new(), false);
    let test = match F::TEST {
        Test::RoundTrip => "round trip",
        _ => "throughput",
    };
    for &size in sizes {
        for &m in F::METHODS.iter().filter(|m| selected.is_empty() || selected.contains(m)) {
            eprint!("shm-bench: {test}, {:>7}, {:<30}", report::size_label(size), F::label(m));
            let (row, failed) = runs::row::<F>(ctx, m, size);
            match &row.error {
                Some(e) => eprintln!(" {e}"),
                None => eprintln!(" {}", row.figures.summary()),
            }
            any_failed |= failed;
            rows.push(row);
        }
    }
    report::fill_ratios(&mut rows);
    (rows, any_failed)
}

fn write_json(report: &Report, path: &std::path::Path) -> Result<(), Error> {
    let file = File::create(path).map_err(Error::os(format!("creating {}", path.display())))?;
    serde_json::to_writer_pretty(std::io::BufWriter::new(file), report)
        .map_err(|source| Error::Json { what: format!("writing {}", path.display()).into(), source })
}
