//! The exchange between the two cores, through shm-baremetal only.
//!
//! Core 0 creates the segment in the shared window (the mailbox `rpc` and the
//! queue `stream`), core 1 opens it, and core 0 drives three exchanges by
//! requests to core 1's mailbox server:
//!
//! 1. **Mailbox**: [`MAILBOX_ROUNDS`] echo calls. Both sides use a
//!    [`DoorbellWait`] with a spin limit of 0, so each sleeps in `WFI` as
//!    soon as it has nothing to do and is woken by the MHU doorbell.
//! 2. **Queue**: one `STREAM` call, after which core 1 writes
//!    [`STREAM_MESSAGES`] messages of 8 to 64 bytes into the queue (in place,
//!    through write grants), then an end marker with its checksum; core 0
//!    reads them in place and checks order, length, content and checksum.
//!    Both sides spin before sleeping here (the default spin limit).
//! 3. **Semaphore** and **broadcast**: core 1 posts units that core 0
//!    takes; core 1 joins the broadcast channel `ticks` (a `SUBSCRIBE`
//!    call) and core 0 publishes [`BROADCAST_MESSAGES`] messages to it
//!    (block policy), which core 1 checks and reports (`RECEIVED`).
//! 4. **Peer reset**: a `RESET` call, after which core 1 restarts its own
//!    image (zeroed `.bss`, fresh `.data`) and attaches again with a new
//!    session. Core 0's next call fails with
//!    [`PeerReset`]; core 0 attaches again (the
//!    segment is re-created) and runs [`AFTER_RESET_ROUNDS`] calls and
//!    [`AFTER_RESET_MESSAGES`] queue messages more.
//!
//! Core 1 reports its doorbell and sleep counts through `STATS` calls.
//!
//! Requests are little-endian words: `op`, `a`, `b`, then payload bytes.

use core::fmt;
use core::time::Duration;

use cortex_m::asm;
use cortex_m_semihosting::hprintln;
use shm_baremetal::{CoreId, DoorbellWait, Endpoint, Link, PeerReset};
use shm_core::{CallError, Layout, Wait as _};

use crate::board::clock::{self, Delay, TICK_NS};
use crate::board::mhu::{self, MhuDoorbell};
use crate::board::{self, boot, exit, CoreId as BoardCore};

/// Echo calls in the mailbox exchange.
pub const MAILBOX_ROUNDS: u32 = 1000;
/// Messages through the queue.
pub const STREAM_MESSAGES: u32 = 100_000;
/// Echo calls after core 1's reset.
pub const AFTER_RESET_ROUNDS: u32 = 100;
/// Queue messages after core 1's reset.
pub const AFTER_RESET_MESSAGES: u32 = 1000;
/// Units core 1 posts on the semaphore, each taken by core 0.
pub const SEMAPHORE_UNITS: u32 = 1000;
/// Messages core 0 publishes on the broadcast channel to core 1.
pub const BROADCAST_MESSAGES: u32 = 10_000;

/// How long each side waits for the other to attach (QEMU on a loaded host
/// can be slow to start the second core).
const ATTACH_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a call, a receive or a send may wait.
const TIMEOUT: Duration = Duration::from_secs(60);

/// Mailbox operations.
mod op {
    /// Echo the payload reversed, each byte XOR 0x5A; `a` = round, answered
    /// with `a + 1`.
    pub const ECHO: u32 = 1;
    /// Write `a` messages into the queue; corrupt message `b` (fail-demo).
    pub const STREAM: u32 = 2;
    /// Answer `[doorbells, sleeps, spurious, session]` of core 1.
    pub const STATS: u32 = 3;
    /// Answer, then restart core 1's image.
    pub const RESET: u32 = 4;
    /// Execute an undefined instruction (fault-demo).
    pub const FAULT: u32 = 5;
    /// Panic (panic-demo).
    pub const PANIC: u32 = 6;
    /// Post `a` units on the semaphore, one at a time.
    pub const POST: u32 = 7;
    /// Join the broadcast channel, answer, then receive `a` messages.
    pub const SUBSCRIBE: u32 = 8;
    /// Answer `[messages received, checksum, lags, pending polls]` of the
    /// last SUBSCRIBE.
    pub const RECEIVED: u32 = 9;
}

/// Header bytes of a request or response.
const HEADER: usize = 12;
/// `b` of a STREAM request that corrupts nothing.
const NO_CORRUPTION: u32 = u32::MAX;
/// Sequence word of the queue's end marker.
const END_MARKER: u32 = u32::MAX;

/// The channels both images declare, in the same order.
pub fn layout() -> Layout {
    Layout::new()
        .mailbox("rpc", 2, 256)
        .and_then(|l| l.queue("stream", 32 * 1024))
        .and_then(|l| l.semaphore("units", 0))
        .and_then(|l| l.broadcast("ticks", 4096, 1, shm_core::broadcast::Policy::Block))
        .expect("the demo layout is valid")
}

type Wait = DoorbellWait<'static, MhuDoorbell, Delay>;

/// The two strategies of a core: `sleepy` sleeps at the first miss (the
/// mailbox exchange), `fast` spins first (the queue). Both sleep in timed
/// waits too, the SysTick tick being the periodic interrupt they need.
fn strategies(me: &Endpoint, core: BoardCore) -> (Wait, Wait) {
    let bell = MhuDoorbell::new(core);
    let sleepy = DoorbellWait::new(me.session(), bell, Delay).with_spin_limit(0).with_tick_ns(TICK_NS);
    let fast = DoorbellWait::new(me.session(), bell, Delay).with_tick_ns(TICK_NS);
    (sleepy, fast)
}

fn put_u32(buf: &mut [u8], at: usize, v: u32) {
    if let Some(b) = buf.get_mut(at..at + 4) {
        b.copy_from_slice(&v.to_le_bytes());
    }
}

fn get_u32(buf: &[u8], at: usize) -> u32 {
    buf.get(at..at + 4).map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// FNV-1a, 32 bits, over every byte of every data message.
#[derive(Clone, Copy)]
struct Fnv(u32);

impl Fnv {
    const fn new() -> Self {
        Fnv(0x811c_9dc5)
    }
    fn update(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ b as u32).wrapping_mul(0x0100_0193);
        }
    }
}

/// Length of queue message `seq`: 8 to 64 bytes.
fn message_len(seq: u32) -> usize {
    8 + (seq.wrapping_mul(7) % 57) as usize
}

/// Content of queue message `seq`: its number, then a pattern derived from it.
fn fill_message(seq: u32, buf: &mut [u8]) {
    put_u32(buf, 0, seq);
    for (k, b) in buf.iter_mut().enumerate().skip(4) {
        *b = (seq ^ (seq >> 8)).wrapping_add(k as u32 * 13) as u8;
    }
}

/// Payload byte `k` of echo request `round`.
fn echo_byte(round: u32, k: usize) -> u8 {
    round.wrapping_mul(31).wrapping_add(k as u32 * 7) as u8
}

/// Payload length of echo request `round`: 1 to 200 bytes.
fn echo_len(round: u32) -> usize {
    1 + (round % 200) as usize
}

// ---------------------------------------------------------------- core 1

/// Core 1: attaches, serves core 0's requests; attaches again whenever core
/// 0 re-attaches. Never returns; ends the run only through the failure
/// handlers (a fault or panic exits QEMU non-zero).
///
/// It runs as core 1's embassy task (`src/bin/core1.rs`), which owns the
/// link of each attach: the channel ends borrow it, and a task's arguments
/// must be `'static` (see [`crate::tasks`]).
pub async fn run_core1() -> ! {
    let me = Endpoint::new(board::shared_window(), CoreId::CORE1, CoreId::CORE0);
    let (sleepy, fast) = strategies(&me, BoardCore::Core1);
    loop {
        let link = me.open(&layout(), &sleepy, ATTACH_TIMEOUT).unwrap_or_else(|e| panic!("attach: {}", e));
        hprintln!("core1: attached, session {} (core 0 session {})", link.session(), link.peer_session());
        match serve(&link, &sleepy, &fast).await {
            Stop::Reset(r) => hprintln!("core1: {}", r),
            Stop::Failed(e) => panic!("serving: {}", e),
        }
    }
}

/// Serves requests until something fails; returns why. Only the broadcast
/// receive awaits; the mailbox and the queue block in the core's own waits.
async fn serve(link: &Link, sleepy: &Wait, fast: &Wait) -> Stop {
    let server = match link.server("rpc", sleepy) {
        Ok(s) => s,
        Err(e) => return reason(e.peer_reset(), "claiming the server role"),
    };
    let mut received = [0u32; 4];
    loop {
        let mut req = match server.recv() {
            Ok(r) => r,
            Err(e) => return reason(e.peer_reset(), "receiving a request"),
        };
        let (op, a, b) = (get_u32(req.data(), 0), get_u32(req.data(), 4), get_u32(req.data(), 8));
        let answered = match op {
            op::ECHO => {
                let len = req.len();
                let buf = req.buf_mut();
                put_u32(buf, 4, a.wrapping_add(1));
                let payload = &mut buf[HEADER.min(len)..len];
                payload.reverse();
                payload.iter_mut().for_each(|x| *x ^= 0x5A);
                req.respond(len).map_err(|e| reason(e.peer_reset(), "answering ECHO"))
            }
            op::STREAM => match req.respond(HEADER) {
                Ok(()) => stream(link, fast, a, b),
                Err(e) => Err(reason(e.peer_reset(), "answering STREAM")),
            },
            op::POST => match req.respond(HEADER) {
                Ok(()) => post(link, fast, a),
                Err(e) => Err(reason(e.peer_reset(), "answering POST")),
            },
            op::SUBSCRIBE => match link.segment().subscriber("ticks", fast) {
                // Joined before answering: core 0 publishes only after the
                // answer, so every message reaches this subscriber.
                Ok(sub) => match req.respond(HEADER) {
                    Ok(()) => subscribe(link, sub, a).await.map(|r| received = r),
                    Err(e) => Err(reason(e.peer_reset(), "answering SUBSCRIBE")),
                },
                Err(_) => {
                    drop(req);
                    Err(Stop::Failed("joining the broadcast channel"))
                }
            },
            op::RECEIVED => {
                let buf = req.buf_mut();
                for (i, v) in received.into_iter().enumerate() {
                    put_u32(buf, HEADER + 4 * i, v);
                }
                req.respond(HEADER + 16).map_err(|e| reason(e.peer_reset(), "answering RECEIVED"))
            }
            op::STATS => {
                let stats = [mhu::doorbells_taken(), mhu::sleeps(), mhu::spurious_interrupts(), link.session()];
                let buf = req.buf_mut();
                for (i, v) in stats.into_iter().enumerate() {
                    put_u32(buf, HEADER + 4 * i, v);
                }
                req.respond(HEADER + 16).map_err(|e| reason(e.peer_reset(), "answering STATS"))
            }
            op::RESET => {
                if let Err(e) = req.respond(HEADER) {
                    return reason(e.peer_reset(), "answering RESET");
                }
                boot::restart_core1()
            }
            op::FAULT => asm::udf(),
            op::PANIC => panic!("panic-demo: asked to panic by core 0"),
            _ => {
                drop(req); // fails the call
                Ok(())
            }
        };
        if let Err(e) = answered {
            return e;
        }
    }
}

/// Writes `count` messages into the queue, in place, then the end marker
/// with the checksum of what it meant to send. Message `corrupt` gets its
/// last byte flipped after the checksum saw it (fail-demo).
fn stream(link: &Link, fast: &Wait, count: u32, corrupt: u32) -> Result<(), Stop> {
    let mut tx = link.producer("stream", fast).map_err(|e| reason(e.peer_reset(), "claiming the producer role"))?;
    let mut sum = Fnv::new();
    for seq in 0..count {
        let len = message_len(seq);
        let mut grant = tx.grant_timeout(len, TIMEOUT).map_err(|e| reason(e.peer_reset(), "writing the stream"))?;
        fill_message(seq, &mut grant);
        sum.update(&grant);
        if seq == corrupt {
            grant[len - 1] ^= 0xFF;
        }
        grant.commit();
    }
    let mut end = [0u8; 12];
    put_u32(&mut end, 0, END_MARKER);
    put_u32(&mut end, 4, count);
    put_u32(&mut end, 8, sum.0);
    tx.send_timeout(&end, TIMEOUT).map_err(|e| reason(e.peer_reset(), "writing the end marker"))
}

/// Receives `count` broadcast messages (the queue's message sequence),
/// checking each; returns `[received and intact, checksum, lags, pending
/// polls of its future]`. An async receive: the task sleeps until the
/// doorbell handler wakes it (`crate::tasks`).
async fn subscribe(
    link: &Link,
    mut sub: shm_core::broadcast::Subscriber<'_, &Wait>,
    count: u32,
) -> Result<[u32; 4], Stop> {
    let pending = crate::tasks::pending_polls();
    let (mut good, mut lags, mut sum) = (0, 0, Fnv::new());
    let mut buf = [0u8; 64];
    let mut want = [0u8; 64];
    for seq in 0..count {
        link.check().map_err(Stop::Reset)?;
        let received =
            crate::tasks::counted(shm_baremetal::asynch::recv(&mut sub, &mut buf, &crate::board::mhu::DOORBELL)).await;
        match received {
            Ok(n) => {
                let len = message_len(seq);
                fill_message(seq, &mut want[..len]);
                sum.update(&buf[..n]);
                good += u32::from(n == len && buf[..n] == want[..len]);
            }
            Err(shm_core::RecvError::Lagged { .. }) => lags += 1,
            Err(_) => return Err(Stop::Failed("receiving a broadcast message")),
        }
    }
    Ok([good, sum.0, lags, crate::tasks::pending_polls() - pending])
}

/// Posts `count` units on the semaphore, one at a time.
fn post(link: &Link, fast: &Wait, count: u32) -> Result<(), Stop> {
    use shm_core::Semaphore as _;
    let sem = link.segment().semaphore("units", fast).map_err(|e| reason(e.peer_reset(), "opening the semaphore"))?;
    for _ in 0..count {
        link.check().map_err(Stop::Reset)?;
        sem.post().map_err(|_| Stop::Failed("posting to the semaphore"))?;
    }
    Ok(())
}

/// Why core 1 stopped serving: the peer reset, or what failed.
enum Stop {
    Reset(PeerReset),
    Failed(&'static str),
}

/// Keeps a reset peer as the reason; names anything else.
fn reason(reset: Option<PeerReset>, what: &'static str) -> Stop {
    reset.map_or(Stop::Failed(what), Stop::Reset)
}

// ---------------------------------------------------------------- core 0

/// Prints what failed and ends the run with [`exit::EXCHANGE_FAILED`].
fn or_fail<T, E: fmt::Display>(r: Result<T, E>, what: &str) -> T {
    match r {
        Ok(v) => v,
        Err(e) => {
            hprintln!("core0: {} failed: {}", what, e);
            exit::exit(exit::EXCHANGE_FAILED)
        }
    }
}

type Client<'l> = shm_baremetal::mailbox::Client<'l, &'l Wait>;
type Response<'c, 'l> = shm_baremetal::mailbox::Response<'c, 'l, &'l Wait>;

/// One zero-copy call: claims a slot, writes the header and (through
/// `payload`, which returns its length) the payload in place, sends it, and
/// returns the response in place. One deadline covers the whole call.
fn call<'c, 'l>(
    client: &'c Client<'l>,
    op: u32,
    a: u32,
    b: u32,
    payload: impl FnOnce(&mut [u8]) -> usize,
) -> Result<Response<'c, 'l>, CallError> {
    let mut deadline = client.strategy().deadline(Some(TIMEOUT));
    let mut slot = client.claim_deadline(&mut deadline)?;
    put_u32(&mut slot, 0, op);
    put_u32(&mut slot, 4, a);
    put_u32(&mut slot, 8, b);
    let len = HEADER + payload(&mut slot[HEADER..]);
    slot.send(len)?.wait_deadline(&mut deadline)
}

/// No payload.
fn empty(_: &mut [u8]) -> usize {
    0
}

/// Core 1's counters as it reports them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Core1Stats {
    /// Doorbell interrupts taken (since core 1's last start).
    pub doorbells: u32,
    /// `WFI`s while waiting.
    pub sleeps: u32,
    /// MHU interrupts without a doorbell bit.
    pub spurious: u32,
    /// Core 1's session.
    pub session: u32,
}

fn stats(client: &Client<'_>) -> Core1Stats {
    let out = or_fail(call(client, op::STATS, 0, 0, empty), "STATS call");
    Core1Stats {
        doorbells: get_u32(&out, HEADER),
        sleeps: get_u32(&out, HEADER + 4),
        spurious: get_u32(&out, HEADER + 8),
        session: get_u32(&out, HEADER + 12),
    }
}

/// `rounds` echo calls from `first`; returns how many answers were wrong.
fn echo_rounds(client: &Client<'_>, first: u32, rounds: u32) -> u32 {
    let mut bad = 0;
    for round in first..first + rounds {
        if round == MAILBOX_ROUNDS / 2 {
            if cfg!(feature = "fault-demo") {
                let _ = call(client, op::FAULT, 0, 0, empty);
            } else if cfg!(feature = "panic-demo") {
                let _ = call(client, op::PANIC, 0, 0, empty);
            }
        }
        let len = echo_len(round);
        let fill = |payload: &mut [u8]| {
            for (k, b) in payload[..len].iter_mut().enumerate() {
                *b = echo_byte(round, k);
            }
            len
        };
        let out = or_fail(call(client, op::ECHO, round, 0, fill), "ECHO call");
        let ok = out.len() == HEADER + len
            && get_u32(&out, 4) == round.wrapping_add(1)
            && (0..len).all(|k| out[HEADER + k] == echo_byte(round, len - 1 - k) ^ 0x5A);
        bad += u32::from(!ok);
    }
    bad
}

/// Outcome of reading one stream.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StreamReport {
    /// Data messages read.
    pub messages: u32,
    /// Payload bytes read.
    pub bytes: u64,
    /// Messages whose sequence number was not the next one.
    pub out_of_order: u32,
    /// Messages with a wrong length or content.
    pub bad: u32,
    /// Checksum core 1 sent in the end marker.
    pub sent_checksum: u32,
    /// Checksum of what core 0 read.
    pub read_checksum: u32,
    /// Time from the STREAM call to the end marker, in nanoseconds.
    pub elapsed_ns: u64,
}

impl StreamReport {
    fn ok(&self, expected: u32) -> bool {
        self.messages == expected && self.out_of_order == 0 && self.bad == 0 && self.sent_checksum == self.read_checksum
    }

    /// Messages per second, from the SysTick clock.
    pub fn per_second(&self) -> u64 {
        (self.messages as u64 * 1_000_000_000).checked_div(self.elapsed_ns).unwrap_or(0)
    }
}

/// Asks core 1 for `count` messages and reads them in place.
fn read_stream(link: &Link, client: &Client<'_>, fast: &Wait, count: u32, corrupt: u32) -> StreamReport {
    let mut rx = or_fail(link.consumer("stream", fast), "claiming the consumer role");
    let mut r = StreamReport::default();
    let mut sum = Fnv::new();
    let mut expect = [0u8; 64];
    let start = clock::now_ns();
    let mut out = [0u8; 64];
    or_fail(call(client, op::STREAM, count, corrupt, empty), "STREAM call");
    for seq in 0..count {
        let msg = or_fail(rx.read_timeout(TIMEOUT), "reading the stream");
        let got = get_u32(&msg, 0);
        if got != seq {
            r.out_of_order += 1;
        }
        let len = message_len(seq);
        fill_message(seq, &mut expect[..len]);
        if msg.len() != len || msg[..] != expect[..len] {
            r.bad += 1;
        }
        sum.update(&msg);
        r.messages += 1;
        r.bytes += msg.len() as u64;
        msg.release();
    }
    let n = or_fail(rx.recv_timeout(&mut out, TIMEOUT), "reading the end marker");
    r.elapsed_ns = clock::now_ns() - start;
    if n != 12 || get_u32(&out, 0) != END_MARKER || get_u32(&out, 4) != count {
        r.bad += 1;
    }
    r.sent_checksum = get_u32(&out, 8);
    r.read_checksum = sum.0;
    r
}

/// Doorbell and sleep counts of both cores over one phase.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Wakeups {
    /// Doorbell interrupts core 0 took.
    pub core0_doorbells: u32,
    /// `WFI`s core 0 executed while waiting.
    pub core0_sleeps: u32,
    /// Doorbell interrupts core 1 took.
    pub core1_doorbells: u32,
    /// `WFI`s core 1 executed while waiting.
    pub core1_sleeps: u32,
}

/// Outcome of the run, as seen by core 0.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Sessions of the first link: (core 0, core 1).
    pub sessions: (u32, u32),
    /// Echo calls made in the mailbox exchange.
    pub rounds: u32,
    /// Wrong answers among them.
    pub bad_rounds: u32,
    /// Wake-ups during the mailbox exchange.
    pub mailbox_wakeups: Wakeups,
    /// The queue exchange.
    pub stream: StreamReport,
    /// Semaphore units core 0 took (of [`SEMAPHORE_UNITS`] posted), and
    /// whether it then found none left over.
    pub units: (u32, bool),
    /// Broadcast messages core 1 received intact (of
    /// [`BROADCAST_MESSAGES`]), whether its checksum matched, its lags, and
    /// how many times its receiving future slept until the doorbell woke it.
    pub broadcast: (u32, bool, u32, u32),
    /// The reset core 0 observed.
    pub reset: Option<PeerReset>,
    /// Sessions of the link made after the reset: (core 0, core 1).
    pub sessions_after: (u32, u32),
    /// Echo calls after the reset, and wrong answers among them.
    pub rounds_after: (u32, u32),
    /// The queue exchange after the reset.
    pub stream_after: StreamReport,
    /// Doorbell interrupts core 0 took over the whole run.
    pub core0_doorbells: u32,
    /// Doorbell interrupts core 1 took: before its reset, and after it.
    pub core1_doorbells: (u32, u32),
}

impl Report {
    /// True if every exchange matched and core 0 saw the reset.
    pub fn passed(&self) -> bool {
        let w = &self.mailbox_wakeups;
        self.rounds == MAILBOX_ROUNDS
            && self.bad_rounds == 0
            && w.core0_doorbells > 0
            && w.core1_doorbells > 0
            && w.core0_sleeps > 0
            && w.core1_sleeps > 0
            && self.stream.ok(STREAM_MESSAGES)
            && self.units == (SEMAPHORE_UNITS, true)
            && (self.broadcast.0, self.broadcast.1, self.broadcast.2) == (BROADCAST_MESSAGES, true, 0)
            && self.broadcast.3 > 0
            && self.reset.is_some_and(|r| r.now == self.sessions_after.1 && r.linked == self.sessions.1)
            && self.rounds_after == (AFTER_RESET_ROUNDS, 0)
            && self.stream_after.ok(AFTER_RESET_MESSAGES)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (s0, s1) = self.sessions;
        writeln!(f, "attach: core 0 session {s0} <-> core 1 session {s1}")?;
        let w = &self.mailbox_wakeups;
        writeln!(f, "mailbox: {} round trips, {} bad", self.rounds, self.bad_rounds)?;
        writeln!(
            f,
            "  doorbell IRQs core0 {} core1 {}; WFI sleeps core0 {} core1 {}",
            w.core0_doorbells, w.core1_doorbells, w.core0_sleeps, w.core1_sleeps
        )?;
        let s = &self.stream;
        writeln!(
            f,
            "queue: {} messages ({} bytes), {} out of order, {} bad, checksum {:#010x}/{:#010x} {}",
            s.messages,
            s.bytes,
            s.out_of_order,
            s.bad,
            s.sent_checksum,
            s.read_checksum,
            if s.sent_checksum == s.read_checksum { "ok" } else { "MISMATCH" }
        )?;
        writeln!(
            f,
            "  {}.{:03} s, {} msg/s (SysTick, QEMU virtual time = host wall time)",
            s.elapsed_ns / 1_000_000_000,
            s.elapsed_ns / 1_000_000 % 1000,
            s.per_second()
        )?;
        let (units, drained) = self.units;
        writeln!(
            f,
            "semaphore: {units} of {SEMAPHORE_UNITS} units taken, {}",
            if drained { "none left over" } else { "EXTRA units left" }
        )?;
        let (intact, sum_ok, lags, slept) = self.broadcast;
        writeln!(
            f,
            "broadcast: {intact} of {BROADCAST_MESSAGES} messages intact at core 1, checksum {}, {lags} lags; \
             core 1's embassy task awaiting it slept {slept} times until the doorbell woke it",
            if sum_ok { "matched" } else { "MISMATCHED" }
        )?;
        match self.reset {
            Some(r) => writeln!(f, "reset: core 0 saw PeerReset: {r}")?,
            None => writeln!(f, "reset: core 0 did NOT see a PeerReset")?,
        }
        let (a0, a1) = self.sessions_after;
        writeln!(f, "  re-attached: core 0 session {a0} <-> core 1 session {a1}")?;
        let (r, bad) = self.rounds_after;
        let t = &self.stream_after;
        writeln!(
            f,
            "  after reset: {r} round trips, {bad} bad; {} messages, {} bad, checksum {}",
            t.messages,
            t.bad + t.out_of_order,
            if t.sent_checksum == t.read_checksum { "ok" } else { "MISMATCH" }
        )?;
        let (before, after) = self.core1_doorbells;
        writeln!(
            f,
            "doorbell IRQs, whole run: core0 {}, core1 {} ({} before its reset + {} after)",
            self.core0_doorbells,
            before + after,
            before,
            after
        )?;
        write!(f, "result: {}", if self.passed() { "PASS" } else { "FAIL" })
    }
}

/// Asks core 1 to post [`SEMAPHORE_UNITS`] units and takes each (with a
/// timeout); then checks that none is left over.
fn take_units(link: &Link, client: &Client<'_>, fast: &Wait) -> (u32, bool) {
    use shm_core::Semaphore as _;
    let sem = or_fail(link.segment().semaphore("units", fast), "semaphore");
    or_fail(call(client, op::POST, SEMAPHORE_UNITS, 0, empty), "POST call");
    let mut taken = 0;
    while taken < SEMAPHORE_UNITS && sem.wait_timeout(TIMEOUT).is_ok() {
        taken += 1;
    }
    (taken, sem.try_wait() == Ok(false))
}

/// Publishes [`BROADCAST_MESSAGES`] messages (the queue's sequence) to core
/// 1, subscribed before, then asks what it received: (intact messages,
/// checksum matched, lags, times core 1's future slept until the doorbell
/// woke it).
fn broadcast(link: &Link, client: &Client<'_>, fast: &Wait) -> (u32, bool, u32, u32) {
    use shm_core::Wait as _;
    let mut tx = or_fail(link.segment().publisher("ticks", fast), "publisher");
    or_fail(call(client, op::SUBSCRIBE, BROADCAST_MESSAGES, 0, empty), "SUBSCRIBE call");
    // Publish only once core 1's task sleeps on the empty channel (its
    // waiting word set), so the run shows the doorbell waking it whichever
    // core runs faster: without this, core 1 sometimes found every message
    // already there and never slept (about 1 run in 10 under QEMU).
    let view = or_fail(link.segment().broadcast_view("ticks"), "broadcast view");
    let mut deadline = fast.deadline(Some(TIMEOUT));
    while view.subscriber_stats(0).is_none_or(|s| s.waiting == 0) {
        if fast.expired(&mut deadline) {
            hprintln!("core0: core 1's broadcast receive never went to sleep");
            exit::exit(exit::EXCHANGE_FAILED)
        }
    }
    let mut sum = Fnv::new();
    let mut buf = [0u8; 64];
    for seq in 0..BROADCAST_MESSAGES {
        let len = message_len(seq);
        fill_message(seq, &mut buf[..len]);
        sum.update(&buf[..len]);
        or_fail(tx.publish_timeout(&buf[..len], TIMEOUT), "publishing");
    }
    let out = or_fail(call(client, op::RECEIVED, 0, 0, empty), "RECEIVED call");
    let word = |i: usize| get_u32(&out, HEADER + 4 * i);
    (word(0), word(1) == sum.0, word(2), word(3))
}

/// Core 0: attaches (core 1 must have been started), runs the five
/// exchanges and gathers the report.
pub fn run_core0() -> Report {
    let me = Endpoint::new(board::shared_window(), CoreId::CORE0, CoreId::CORE1);
    let (sleepy, fast) = strategies(&me, BoardCore::Core0);
    let mut report = Report::default();
    let corrupt = if cfg!(feature = "fail-demo") { STREAM_MESSAGES / 2 } else { NO_CORRUPTION };

    {
        let link = or_fail(me.create(&layout(), &sleepy, ATTACH_TIMEOUT), "attach");
        report.sessions = (link.session(), link.peer_session());
        let client = or_fail(link.client("rpc", &sleepy), "mailbox client");

        // 1. Mailbox: both cores sleep between messages.
        let before = stats(&client);
        let (d0, s0) = (mhu::doorbells_taken(), mhu::sleeps());
        report.bad_rounds = echo_rounds(&client, 0, MAILBOX_ROUNDS);
        report.rounds = MAILBOX_ROUNDS;
        let (d0, s0) = (mhu::doorbells_taken() - d0, mhu::sleeps() - s0);
        let after = stats(&client);
        report.mailbox_wakeups = Wakeups {
            core0_doorbells: d0,
            core0_sleeps: s0,
            core1_doorbells: after.doorbells - before.doorbells,
            core1_sleeps: after.sleeps - before.sleeps,
        };

        // 2. Queue.
        report.stream = read_stream(&link, &client, &fast, STREAM_MESSAGES, corrupt);

        // 3. Semaphore: core 1 posts, core 0 takes every unit.
        report.units = take_units(&link, &client, &fast);

        // 4. Broadcast: core 0 publishes, core 1 subscribes.
        report.broadcast = broadcast(&link, &client, &fast);

        // 5. Peer reset: core 1 restarts; the next call must see it.
        report.core1_doorbells.0 = stats(&client).doorbells;
        or_fail(call(&client, op::RESET, 0, 0, empty), "RESET call");
        let one = |payload: &mut [u8]| {
            payload[0] = 1;
            1
        };
        report.reset = match call(&client, op::ECHO, 0, 0, one) {
            Err(CallError::PeerReset(r)) => Some(r),
            Ok(_) => None,
            Err(e) => or_fail(Err(e), "the call after RESET"),
        };
        if let Some(r) = report.reset {
            hprintln!("core0: {}", r);
        }
    }

    // Attach again (a new session; the segment is re-created) and go on.
    let link = or_fail(me.create(&layout(), &sleepy, ATTACH_TIMEOUT), "re-attach");
    report.sessions_after = (link.session(), link.peer_session());
    let client = or_fail(link.client("rpc", &sleepy), "mailbox client");
    let bad = echo_rounds(&client, MAILBOX_ROUNDS, AFTER_RESET_ROUNDS);
    report.rounds_after = (AFTER_RESET_ROUNDS, bad);
    report.stream_after = read_stream(&link, &client, &fast, AFTER_RESET_MESSAGES, NO_CORRUPTION);
    report.core1_doorbells.1 = stats(&client).doorbells;
    report.core0_doorbells = mhu::doorbells_taken();
    report
}
