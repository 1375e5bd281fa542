//! A hostile process overwrites control words while honest threads run
//! request/response, queue and publish-subscribe traffic (the broadcast
//! channel under both policies). The honest side may get errors; it
//! must never panic, never touch memory outside the mapping (CI also runs
//! this under AddressSanitizer) and never block past its timeout.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use shm_core::broadcast::Policy;
use shm_core::Layout;
use shm_posix::{FutexWait, Segment};
use shm_tests::{assert_clean, unique, watchdog, Peer};

const PEER: &str = env!("CARGO_BIN_EXE_peer");
const STEP: Duration = Duration::from_millis(20);
/// Far beyond STEP, and beyond any stall a loaded machine causes: an
/// operation that takes this long is hung (a watchdog, not a timing check).
const HUNG: Duration = Duration::from_secs(30);

#[derive(Default)]
struct Tally {
    ok: AtomicU64,
    errors: AtomicU64,
    slowest_us: AtomicU64,
}

impl Tally {
    fn record<T, E>(&self, started: Instant, result: Result<T, E>) {
        let took = started.elapsed();
        assert!(took < HUNG, "an operation blocked for {took:?} with a {STEP:?} timeout");
        self.slowest_us.fetch_max(u64::try_from(took.as_micros()).unwrap_or(u64::MAX), Ordering::Relaxed);
        match result {
            Ok(_) => self.ok.fetch_add(1, Ordering::Relaxed),
            Err(_) => self.errors.fetch_add(1, Ordering::Relaxed),
        };
    }
}

#[test]
fn honest_side_survives_a_hostile_writer() {
    let seconds: u64 = std::env::var("SHM_HOSTILE_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(5);
    let name = unique("hostile");
    // An operation that never returns cannot be caught by `Tally::record`.
    watchdog(Duration::from_secs(seconds + 120), "the hostile-peer test", || {
        let layout = Layout::new()
            .mailbox("m", 4, 128)
            .unwrap()
            .queue("q", 1024)
            .unwrap()
            .semaphore("s", 0)
            .unwrap()
            .direct("d", 2, 128)
            .unwrap()
            .broadcast("b", 1024, 2, Policy::Block)
            .unwrap()
            .broadcast("o", 1024, 2, Policy::Overwrite)
            .unwrap();
        let seg = Segment::create(&name, &layout).unwrap();
        let server = seg.server("m", FutexWait::new()).unwrap();
        let client = seg.client("m", FutexWait::new()).unwrap();
        let mut tx = seg.producer("q", FutexWait::new()).unwrap();
        let mut rx = seg.consumer("q", FutexWait::new()).unwrap();
        let mut direct_server = seg.direct_server("d", FutexWait::new()).unwrap();
        let mut direct_client = seg.direct_client("d", FutexWait::new()).unwrap();
        let mut publishers = ["b", "o"].map(|c| seg.publisher(c, FutexWait::new()).unwrap());
        let mut subscribers = ["b", "o"].map(|c| seg.subscriber(c, FutexWait::new()).unwrap());
        let mut hostile = Peer::spawn(PEER, &["hostile", &name, &seconds.to_string(), "20261128"]);
        let done = AtomicBool::new(false);
        let tally = Tally::default();
        std::thread::scope(|s| {
            s.spawn(|| {
                while !done.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    let r = server.recv_timeout(STEP).and_then(|mut req| {
                        let n = req.len();
                        req.buf_mut()[..n].make_ascii_uppercase();
                        req.respond(n)
                    });
                    tally.record(t, r);
                    server.reclaim();
                }
            });
            s.spawn(|| {
                let mut out = [0u8; 128];
                while !done.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    tally.record(t, client.call_timeout(b"hello hostile world", &mut out, STEP));
                }
            });
            s.spawn(|| {
                let mut i = 0u32;
                while !done.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    let len = (i % 400) as usize;
                    tally.record(t, tx.send_timeout(&vec![i as u8; len], STEP));
                    i = i.wrapping_add(1);
                }
            });
            s.spawn(|| {
                let mut buf = [0u8; 1024];
                while !done.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    tally.record(t, rx.recv_timeout(&mut buf, STEP));
                }
            });
            // The direct mailbox: its slot words and doorbell scribbled too.
            s.spawn(|| {
                while !done.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    let r = direct_server.serve_timeout(STEP, |buf, len| {
                        buf[..len].make_ascii_uppercase();
                        len
                    });
                    tally.record(t, r);
                    direct_server.reclaim();
                }
            });
            s.spawn(|| {
                let mut out = [0u8; 128];
                while !done.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    tally.record(t, direct_client.call_timeout(b"hello direct", &mut out, STEP));
                }
            });
            // Publish-subscribe: one thread publishes to both channels in
            // turn, one reads both (head, intent, oldest, tails, waiting
            // words and frame headers scribbled).
            s.spawn(|| {
                let mut i = 0u32;
                while !done.load(Ordering::Relaxed) {
                    let msg = vec![i as u8; (i % 200) as usize];
                    for publisher in &mut publishers {
                        let t = Instant::now();
                        tally.record(t, publisher.publish_timeout(&msg, STEP));
                    }
                    i = i.wrapping_add(1);
                }
            });
            s.spawn(|| {
                let mut buf = [0u8; 1024];
                while !done.load(Ordering::Relaxed) {
                    for subscriber in &mut subscribers {
                        let t = Instant::now();
                        tally.record(t, subscriber.recv_timeout(&mut buf, STEP));
                    }
                }
            });
            hostile.expect_line_prefix("injected");
            done.store(true, Ordering::Relaxed);
        });
        let injected = hostile.last_line();
        assert!(hostile.finish(Duration::from_secs(30)).success());
        println!(
            "{injected} corruptions over {seconds} s; honest operations: {} ok, {} errors, slowest {} µs, no panic",
            tally.ok.load(Ordering::Relaxed),
            tally.errors.load(Ordering::Relaxed),
            tally.slowest_us.load(Ordering::Relaxed)
        );
        assert!(tally.errors.load(Ordering::Relaxed) > 0, "the hostile writer should have caused some errors");
    });
    assert_clean(&name);
}
