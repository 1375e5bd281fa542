//! Real segments between real processes: the conformance suite across a
//! process boundary, both wait strategies, and what happens when a peer is
//! killed.

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use shm_core::{conformance, CallError, Layout, OpenError as CoreOpenError, Semaphore, Wait};
use shm_posix::{
    CreateError, CreateOptions, FutexWait, NameError, NamedSemaphore, NamedSemaphoreWait, OpenError, Segment,
};
use shm_tests::{assert_clean, unique, watchdog, Peer};

const PEER: &str = env!("CARGO_BIN_EXE_peer");
const WATCHDOG: Duration = Duration::from_secs(120);

fn mailbox_layout() -> Layout {
    Layout::new().mailbox("m", 4, 256).unwrap()
}

#[test]
fn request_response_across_processes_with_a_futex() {
    futex_calls_across_processes("rr-futex");
}

/// 20 000 calls from this process to a server process, both with the
/// default futex strategy, on a segment named after `tag`: each answered
/// once, in order, and nothing left behind.
fn futex_calls_across_processes(tag: &str) {
    let name = unique(tag);
    {
        let seg = Segment::create(&name, &mailbox_layout()).unwrap();
        let server = Peer::spawn(PEER, &["serve", &name, "20000", "futex"]);
        let client = seg.client("m", FutexWait::new()).unwrap();
        let seqs = conformance::mailbox_call(&client, 20_000, 1).unwrap();
        assert_eq!(seqs, (0..20_000).collect::<Vec<u64>>(), "each call answered once, in order");
        assert!(server.finish(WATCHDOG).success());
    }
    assert_clean(&name);
}

/// 20 000 calls through a direct mailbox from this process to a server
/// process, both with the default futex strategy: each answered once, in
/// order, and nothing left behind.
#[test]
fn direct_mailbox_calls_across_processes() {
    let name = unique("rr-direct");
    {
        let layout = Layout::new().direct("d", 2, 256).unwrap();
        let seg = Segment::create(&name, &layout).unwrap();
        let server = Peer::spawn(PEER, &["serve-direct", &name, "20000"]);
        let mut client = seg.direct_client("d", FutexWait::new()).unwrap();
        let seqs = conformance::direct_call(&mut client, 20_000, 1).unwrap();
        assert_eq!(seqs, (0..20_000).collect::<Vec<u64>>(), "each call answered once, in order");
        assert!(server.finish(WATCHDOG).success());
        // What `shmctl ls` shows of it: the client's slot answered, the
        // other free, no server (it closed).
        let report = shm_posix::list::inspect(&name).unwrap();
        let d = report.channels.iter().find(|c| c.name == "d").unwrap();
        assert_eq!(d.kind, "direct");
        assert_eq!((d.counters["slots_response"], d.counters["slots_free"]), (1, 1), "{:?}", d.counters);
        assert_eq!(d.peers[0].pid, None, "the server closed");
    }
    assert_clean(&name);
}

#[test]
fn request_response_across_processes_with_named_semaphores() {
    let name = unique("rr-named");
    {
        let seg = Segment::create(&name, &mailbox_layout()).unwrap();
        let server = Peer::spawn(PEER, &["serve", &name, "2000", "named"]);
        // Sleep at once, so the named semaphores really carry the wake-ups.
        let wait = NamedSemaphoreWait::new(&seg).with_spin(0);
        let client = seg.client("m", &wait).unwrap();
        let seqs = conformance::mailbox_call(&client, 2000, 2).unwrap();
        assert_eq!(seqs, (0..2000).collect::<Vec<u64>>());
        assert!(server.finish(WATCHDOG).success());
    }
    assert_clean(&name);
}

#[test]
fn futex_semaphore_across_processes() {
    let name = unique("sem-futex");
    {
        let seg = Segment::create(&name, &Layout::new().semaphore("s", 0).unwrap()).unwrap();
        let sem = seg.semaphore("s", FutexWait::with_spin(0)).unwrap();
        conformance::semaphore_basics(&sem);
        let poster = Peer::spawn(PEER, &["sem-post", &name, "5000", "futex"]);
        for i in 0..5000 {
            sem.wait_timeout(conformance::STEP_TIMEOUT).unwrap_or_else(|e| panic!("unit {i}: {e}"));
        }
        assert!(poster.finish(WATCHDOG).success());
        assert!(!sem.try_wait().unwrap(), "no unit invented");
    }
    assert_clean(&name);
}

#[test]
fn named_semaphore_across_processes() {
    let name = unique("sem-named");
    {
        let sem = NamedSemaphore::create(&name, 0).unwrap();
        conformance::semaphore_basics(&sem);
        let poster = Peer::spawn(PEER, &["sem-post", &name, "5000", "named"]);
        for i in 0..5000 {
            sem.wait_timeout(conformance::STEP_TIMEOUT).unwrap_or_else(|e| panic!("unit {i}: {e}"));
        }
        assert!(poster.finish(WATCHDOG).success());
        assert!(!sem.try_wait().unwrap());
    }
    assert_clean(&name);
}

#[test]
fn a_million_messages_through_the_queue_across_processes() {
    let name = unique("queue");
    let count = std::env::var("SHM_QUEUE_MESSAGES").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000u64);
    {
        let seg = Segment::create(&name, &Layout::new().queue("q", 1 << 16).unwrap()).unwrap();
        let mut rx = seg.consumer("q", FutexWait::new()).unwrap();
        let producer = Peer::spawn(PEER, &["produce", &name, &count.to_string(), "77"]);
        let max = rx_max(&seg);
        conformance::queue_receive(&mut rx, count, 77, max).unwrap();
        assert!(producer.finish(WATCHDOG).success());
    }
    assert_clean(&name);
}

/// Pins the calling thread (and the processes it spawns, which inherit its
/// mask) to one CPU until dropped, then restores its CPUs.
struct OneCpu(rustix::thread::CpuSet);

impl OneCpu {
    fn pin() -> Self {
        use rustix::thread::{sched_getaffinity, sched_setaffinity, CpuSet};
        let allowed = sched_getaffinity(None).expect("sched_getaffinity");
        let cpu = (0..CpuSet::MAX_CPU).find(|&c| allowed.is_set(c)).expect("an allowed CPU");
        let mut one = CpuSet::new();
        one.set(cpu);
        sched_setaffinity(None, &one).expect("sched_setaffinity");
        Self(allowed)
    }
}

impl Drop for OneCpu {
    fn drop(&mut self) {
        let _ = rustix::thread::sched_setaffinity(None, &self.0);
    }
}

/// Both processes on one CPU with the default strategy: spinning stops
/// paying there, so the waits go through their yield turns (and, when a
/// turn does not bring the answer, announce and park). Every call is
/// answered once and in order, every message arrives once and in order,
/// whatever the interleaving.
#[test]
fn calls_and_a_stream_with_both_processes_on_one_cpu_lose_nothing() {
    let _pinned = OneCpu::pin();
    futex_calls_across_processes("one-cpu-rr");
    let name = unique("one-cpu-queue");
    {
        let seg = Segment::create(&name, &Layout::new().queue("q", 256).unwrap()).unwrap();
        let mut rx = seg.consumer("q", FutexWait::new()).unwrap();
        let producer = Peer::spawn(PEER, &["produce", &name, "100000", "77"]);
        let max = rx_max(&seg);
        conformance::queue_receive(&mut rx, 100_000, 77, max).unwrap();
        assert!(producer.finish(WATCHDOG).success());
    }
    assert_clean(&name);
}

/// A stream through a ring of a few messages, both sides sleeping whenever
/// they must wait (no spin, no liveness wake-up): each side goes to sleep
/// while the other is publishing, again and again, which is where a lost
/// wake-up happens if the lazy waker's protocol is wrong. One lost wake-up
/// leaves both asleep (the producer waiting for room, the consumer for a
/// message) and the 60 s timeout reports it.
#[test]
fn a_stream_through_a_tiny_ring_with_sleeping_sides_loses_no_wake_up() {
    let name = unique("lazy-stream");
    let count = 200_000u64;
    {
        let seg = Segment::create(&name, &Layout::new().queue("a", 64).unwrap()).unwrap();
        let wait = BarrierCounter::new(FutexWait::with_spin(0).with_liveness_interval(Duration::MAX));
        let mut rx = seg.consumer("a", &wait).unwrap();
        let producer = Peer::spawn(PEER, &["stream-sleepy", &name, &count.to_string()]);
        let mut buf = [0u8; 16];
        for i in 0..count {
            let n = rx.recv_timeout(&mut buf, Duration::from_secs(60)).unwrap_or_else(|e| panic!("message {i}: {e}"));
            assert_eq!(&buf[..n], &i.to_le_bytes(), "message {i}");
        }
        // Where the kernel offers membarrier, both sides woke lazily (the
        // producer has cleared its flag when it closed; the consumer's
        // barriers show it was set) and the consumer's sleeps forced
        // barriers on the producer: the path under test was the lazy one.
        // (Elsewhere both stay fenced.)
        let lazy = FutexWait::new().lazy_notify();
        let flag = if lazy { shm_core::format::queue::LAZY_WAKE } else { 0 };
        assert_eq!(seg.queue_view("a").unwrap().control().snapshot().consumer_flags, flag);
        let barriers = wait.barriers.load(std::sync::atomic::Ordering::Relaxed);
        assert_eq!(barriers > 0, lazy, "{barriers} barriers forced by the consumer's sleeps");
        drop(rx);
        assert_eq!(seg.queue_view("a").unwrap().control().snapshot().consumer_flags, 0, "cleared at close");
        assert!(producer.finish(WATCHDOG).success());
    }
    assert_clean(&name);
}

/// A strategy that counts the barriers it forces on lazy wakers.
struct BarrierCounter<W> {
    inner: W,
    barriers: std::sync::atomic::AtomicU64,
}

impl<W> BarrierCounter<W> {
    fn new(inner: W) -> Self {
        Self { inner, barriers: std::sync::atomic::AtomicU64::new(0) }
    }
}

impl<W: Wait> Wait for BarrierCounter<W> {
    type Deadline = W::Deadline;
    fn deadline(&self, timeout: Option<Duration>) -> W::Deadline {
        self.inner.deadline(timeout)
    }
    fn expired(&self, deadline: &mut W::Deadline) -> bool {
        self.inner.expired(deadline)
    }
    fn park(&self, word: &shm_core::AtomicU32, expected: u32, deadline: &mut W::Deadline) {
        self.inner.park(word, expected, deadline)
    }
    fn wake(&self, word: &shm_core::AtomicU32, count: u32) {
        self.inner.wake(word, count)
    }
    fn spin_limit(&self) -> u32 {
        self.inner.spin_limit()
    }
    fn adaptive_spin(&self) -> bool {
        self.inner.adaptive_spin()
    }
    fn lazy_notify(&self) -> bool {
        self.inner.lazy_notify()
    }
    fn yield_now(&self) -> bool {
        self.inner.yield_now()
    }
    fn barrier_everywhere(&self) -> bool {
        self.barriers.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.inner.barrier_everywhere()
    }
    fn self_id(&self) -> u32 {
        self.inner.self_id()
    }
    fn is_alive(&self, id: u32) -> bool {
        self.inner.is_alive(id)
    }
}

fn rx_max(seg: &Segment) -> usize {
    seg.queue_view("q").unwrap().max_message() as usize
}

#[test]
fn killed_creator_leaves_a_stale_segment_that_is_reported_and_removable() {
    let name = unique("stale");
    let mut creator = Peer::spawn(PEER, &["create-and-hang", &name]);
    creator.expect_line("ready");
    // While the creator lives, its segment is never replaced.
    let live =
        Segment::create_with(&name, &mailbox_layout(), CreateOptions { replace_stale: true, ..Default::default() });
    assert!(matches!(live, Err(CreateError::Exists { creator: Some(pid), .. }) if pid == creator.pid()), "{live:?}");
    let pid = creator.pid();
    creator.kill9();
    let report = CreateOptions { replace_stale: false, ..Default::default() };
    match Segment::create_with(&name, &mailbox_layout(), report) {
        Err(CreateError::Stale { creator, name: n }) => {
            assert_eq!((creator, n.as_str()), (pid, name.as_str()));
        }
        other => panic!("expected a stale segment, got {other:?}"),
    }
    // Openers still can (the contents are intact), and it can be removed.
    assert!(Segment::open(&name, Duration::ZERO).is_ok());
    shm_posix::remove(&name).unwrap();
    let fresh = Segment::create(&name, &mailbox_layout()).unwrap();
    drop(fresh);
    // Same again, replaced in one step: the default, so a server stopped
    // by Ctrl-C (no `Drop`) restarts without any option.
    let mut creator = Peer::spawn(PEER, &["create-and-hang", &name]);
    creator.expect_line("ready");
    creator.kill9();
    let replaced = Segment::create(&name, &mailbox_layout()).unwrap();
    assert_eq!(replaced.info().creator, std::process::id());
    drop(replaced);
    assert_clean(&name);
}

#[test]
fn server_killed_mid_request_is_reported_as_peer_died() {
    let name = unique("peer-died");
    {
        let seg = Segment::create(&name, &mailbox_layout()).unwrap();
        let mut server = Peer::spawn(PEER, &["serve-one-and-hang", &name]);
        let client = seg.client("m", FutexWait::new()).unwrap();
        let pending = client.claim_timeout(WATCHDOG).unwrap().send(4).unwrap();
        server.expect_line("holding");
        server.kill9();
        let killed = Instant::now();
        // No timeout: only the liveness check can end this wait (the
        // watchdog turns a miss into a failure, not a hang).
        let result = watchdog(WATCHDOG, "a wait on a killed server", || pending.wait());
        assert_eq!(result.err(), Some(CallError::PeerDied));
        println!("PeerDied reported {:?} after the server was killed", killed.elapsed());
        // A restarted server serves again on the same segment.
        let server = Peer::spawn(PEER, &["serve", &name, "10", "futex"]);
        let seqs = conformance::mailbox_call(&client, 10, 3).unwrap();
        assert_eq!(seqs, (0..10).collect::<Vec<u64>>());
        assert!(server.finish(WATCHDOG).success());
    }
    assert_clean(&name);
}

#[test]
fn created_segments_are_private_to_their_user() {
    let name = unique("mode");
    let seg = Segment::create(&name, &mailbox_layout()).unwrap();
    let mode = std::fs::metadata(format!("/dev/shm{name}")).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    drop(seg);
    let opts = CreateOptions { mode: 0o640, ..Default::default() };
    let seg = Segment::create_with(&name, &mailbox_layout(), opts).unwrap();
    let mode = std::fs::metadata(format!("/dev/shm{name}")).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o640, "an explicit mode is applied exactly, umask notwithstanding");
    drop(seg);
    assert_clean(&name);
}

#[test]
fn bad_names_are_refused_before_any_system_call() {
    let long = "n".repeat(shm_posix::MAX_NAME_LEN + 1);
    let cases: [(&str, NameError); 7] = [
        ("", NameError::Empty),
        ("/", NameError::Empty),
        ("a/b", NameError::Slash { at: 1 }),
        ("../../etc/passwd", NameError::Slash { at: 2 }),
        ("a\0b", NameError::Nul { at: 1 }),
        ("..", NameError::Dots),
        (&long, NameError::TooLong { len: shm_posix::MAX_NAME_LEN + 1 }),
    ];
    for (name, want) in cases {
        match Segment::create(name, &mailbox_layout()) {
            Err(CreateError::Name(got)) => assert_eq!(got, want, "create {name:?}"),
            other => panic!("create {name:?}: {other:?}"),
        }
        match Segment::open(name, Duration::ZERO) {
            Err(OpenError::Name(got)) => assert_eq!(got, want, "open {name:?}"),
            other => panic!("open {name:?}: {other:?}"),
        }
    }
}

#[test]
fn bad_sizes_and_contents_are_refused_with_their_error() {
    let name = unique("sizes");
    let path = format!("/dev/shm{name}");
    let mut random = vec![0u8; 4096];
    let mut x = 0x2545_f491_4f6c_dd1du64;
    for b in &mut random {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    type Check = fn(&OpenError) -> bool;
    let cases: [(&str, Vec<u8>, Check); 5] = [
        ("empty file", vec![], |e| matches!(e, OpenError::TooSmall { size: 0, .. })),
        ("10 bytes", vec![1; 10], |e| matches!(e, OpenError::TooSmall { size: 10, .. })),
        ("a zeroed header", vec![0; 64], |e| matches!(e, OpenError::Core { source: CoreOpenError::BadMagic, .. })),
        ("random bytes", random.clone(), |e| matches!(e, OpenError::Core { source: CoreOpenError::BadMagic, .. })),
        ("nothing there", vec![], |e| matches!(e, OpenError::NotFound { .. })),
    ];
    for (what, bytes, check) in cases {
        if what != "nothing there" {
            std::fs::write(&path, &bytes).unwrap();
        }
        let err = Segment::open(&name, Duration::from_millis(20)).expect_err(what);
        assert!(check(&err), "{what}: got {err:?} ({err})");
        let _ = std::fs::remove_file(&path);
    }
    // A truncated segment.
    let seg =
        Segment::create_with(&name, &mailbox_layout(), CreateOptions { persist: true, ..Default::default() }).unwrap();
    let size = mailbox_layout().size() as u64;
    std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(size - 64).unwrap();
    let err = Segment::open(&name, Duration::ZERO).unwrap_err();
    assert!(
        matches!(err, OpenError::Core { source: CoreOpenError::SizeMismatch { recorded, actual }, .. } if recorded == size && actual == size - 64),
        "{err:?}"
    );
    drop(seg);
    shm_posix::remove(&name).unwrap();
    assert_clean(&name);
}
