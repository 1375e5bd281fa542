//! Clean close (format 2.0) raced on real threads over mock memory (from an
//! adversarial review; `mailbox_server_restarts_serve_every_request_once`
//! failed before a closing server marked the requests it failed).
//! More trials: `TRIALS=20000 cargo test -p shm-core --release --test close_stress -- --nocapture`
#![cfg(not(shm_loom))]
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering::SeqCst};
use std::sync::{Barrier, Mutex};
use std::time::Duration;

use shm_core::mock::{MockRegion, ThreadWait};
use shm_core::{CallError, Layout, RecvError, Segment, SendError};

fn trials(default: u32) -> u32 {
    let default = if cfg!(miri) { 3 } else { default };
    std::env::var("TRIALS").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Aborts the process if a trial hangs (a lost wake-up). Dropping it stops
/// and joins its thread, so no test leaves a thread running when the
/// harness exits (Miri reports such a thread as an error).
struct Watchdog {
    done: std::sync::Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

fn watchdog(what: &'static str, secs: u64) -> Watchdog {
    let done = std::sync::Arc::new(AtomicBool::new(false));
    let d = done.clone();
    let thread = std::thread::spawn(move || {
        let deadline = std::time::Instant::now() + Duration::from_secs(secs);
        while !d.load(SeqCst) {
            let now = std::time::Instant::now();
            if now >= deadline {
                eprintln!("HANG in {what}");
                std::process::abort();
            }
            // Woken early by `Drop`; a spurious wake-up just loops.
            std::thread::park_timeout(deadline - now);
        }
    });
    Watchdog { done, thread: Some(thread) }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.done.store(true, SeqCst);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}

fn rng(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

/// The producer sends k messages (blocking, small ring) and drops; the
/// consumer receives (blocking) until Closed: exactly k, in order.
#[test]
fn queue_producer_close_delivers_everything() {
    let n = trials(3000);
    let _watchdog = watchdog("producer close", 300);
    let layout = Layout::new().queue("q", 64).unwrap();
    let mut seed = 0x1234_5678u64;
    for t in 0..n {
        let memory = MockRegion::new(layout.size());
        let seg = Segment::create(memory.region(), &layout, 1, 0).unwrap();
        let k = (rng(&mut seed) % 12) as u32;
        let mut rx = seg.consumer("q", ThreadWait::new(3)).unwrap();
        let tx = seg.producer("q", ThreadWait::new(2)).unwrap();
        std::thread::scope(|s| {
            s.spawn(move || {
                let mut tx = tx;
                for i in 0..k {
                    let len = (i as usize * 7) % 25;
                    tx.send(&vec![i as u8; len]).unwrap();
                }
            });
            let mut buf = [0u8; 32];
            let mut got = 0;
            loop {
                match rx.recv(&mut buf) {
                    Ok(len) => {
                        assert_eq!(len, (got as usize * 7) % 25, "trial {t}");
                        assert!(buf[..len].iter().all(|&b| b == got as u8));
                        got += 1;
                    }
                    Err(RecvError::Closed) => break,
                    Err(e) => panic!("trial {t}: {e:?}"),
                }
            }
            assert_eq!(got, k, "trial {t}: lost messages");
        });
    }
}

/// The consumer receives m messages and drops; the producer sends
/// (blocking, no timeout) until Closed. It must end.
#[test]
fn queue_consumer_close_unblocks_the_producer() {
    let n = trials(3000);
    let _watchdog = watchdog("consumer close", 300);
    let layout = Layout::new().queue("q", 64).unwrap();
    let mut seed = 0x9876_5432u64;
    for t in 0..n {
        let memory = MockRegion::new(layout.size());
        let seg = Segment::create(memory.region(), &layout, 1, 0).unwrap();
        let m = (rng(&mut seed) % 6) as u32;
        let mut tx = seg.producer("q", ThreadWait::new(2)).unwrap();
        let rx = seg.consumer("q", ThreadWait::new(3)).unwrap();
        std::thread::scope(|s| {
            s.spawn(move || {
                let mut rx = rx;
                let mut buf = [0u8; 32];
                for _ in 0..m {
                    rx.recv(&mut buf).unwrap();
                }
            });
            let mut sent = 0;
            loop {
                match tx.send(&[1; 20]) {
                    Ok(()) => sent += 1,
                    Err(SendError::Closed) => break,
                    Err(e) => panic!("trial {t}: {e:?}"),
                }
            }
            assert!(sent >= m, "trial {t}");
        });
    }
}

/// Two clients call without timeout; the server serves a random number of
/// requests and drops. Every call ends with the right response or Closed;
/// each request is served at most once; responses == served.
#[test]
fn mailbox_close_answers_every_call() {
    let n = trials(2000);
    let _watchdog = watchdog("mailbox close", 300);
    let layout = Layout::new().mailbox("m", 2, 64).unwrap();
    let mut seed = 0x5555_aaaau64;
    for t in 0..n {
        let memory = MockRegion::new(layout.size());
        let seg = Segment::create(memory.region(), &layout, 1, 0).unwrap();
        let quota = (rng(&mut seed) % 8) as u32;
        let server = seg.server("m", ThreadWait::new(2)).unwrap();
        let served_set = Mutex::new(Vec::<u32>::new());
        let ok = AtomicU32::new(0);
        let start = Barrier::new(3);
        std::thread::scope(|s| {
            for c in 0..2u32 {
                let seg = &seg;
                let (ok, start) = (&ok, &start);
                s.spawn(move || {
                    let client = seg.client("m", ThreadWait::new(10 + c)).unwrap();
                    start.wait();
                    let mut closed = false;
                    for i in 0..100u32 {
                        let req = (c << 16 | i).to_le_bytes();
                        let mut out = [0u8; 64];
                        match client.call(&req, &mut out) {
                            Ok(len) => {
                                assert!(!closed, "trial {t}: a response after Closed");
                                assert_eq!(&out[..len], &(!(c << 16 | i)).to_le_bytes(), "trial {t}");
                                ok.fetch_add(1, SeqCst);
                            }
                            Err(CallError::Closed) => {
                                closed = true;
                                break;
                            }
                            Err(e) => panic!("trial {t}: client {c} call {i}: {e:?}"),
                        }
                    }
                    assert!(closed, "trial {t}");
                });
            }
            start.wait();
            for _ in 0..quota {
                match server.recv_timeout(Duration::from_millis(200)) {
                    Ok(req) => {
                        let mut v = [0u8; 4];
                        req.read_into(&mut v);
                        let x = u32::from_le_bytes(v);
                        served_set.lock().unwrap().push(x);
                        req.respond_with(&(!x).to_le_bytes()).unwrap();
                    }
                    Err(e) => panic!("trial {t}: serve {e:?}"),
                }
            }
            drop(server);
        });
        let served = served_set.into_inner().unwrap();
        let mut dedup = served.clone();
        dedup.sort_unstable();
        dedup.dedup();
        assert_eq!(dedup.len(), served.len(), "trial {t}: served twice");
        assert_eq!(
            ok.load(SeqCst) as usize,
            served.len(),
            "trial {t}: served {} answered {}",
            served.len(),
            ok.load(SeqCst)
        );
    }
}

/// Servers come and go (close, then a new one claims); clients retry on
/// Closed. Every request is served exactly once and answered.
#[test]
fn mailbox_server_restarts_serve_every_request_once() {
    let n = trials(300);
    let _watchdog = watchdog("server restarts", 600);
    let layout = Layout::new().mailbox("m", 2, 64).unwrap();
    let mut total_dropped = 0;
    for t in 0..n {
        let memory = MockRegion::new(layout.size());
        let seg = Segment::create(memory.region(), &layout, 1, 0).unwrap();
        let served_set = Mutex::new(Vec::<u32>::new());
        let finished = AtomicU32::new(0);
        let dropped = AtomicU32::new(0);
        const CALLS: u32 = 40;
        std::thread::scope(|s| {
            for c in 0..2u32 {
                let (seg, finished, dropped) = (&seg, &finished, &dropped);
                s.spawn(move || {
                    let client = seg.client("m", ThreadWait::new(10 + c)).unwrap();
                    let mut i = 0;
                    while i < CALLS {
                        let x = c << 16 | i;
                        let mut out = [0u8; 64];
                        match client.call(&x.to_le_bytes(), &mut out) {
                            Ok(len) => {
                                assert_eq!(&out[..len], &(!x).to_le_bytes(), "trial {t}");
                                i += 1;
                            }
                            Err(CallError::Closed) => std::thread::yield_now(),
                            // A request the closing server failed, read after
                            // the next server reopened: reported as Dropped.
                            Err(CallError::Dropped) => {
                                dropped.fetch_add(1, SeqCst);
                            }
                            Err(e) => panic!("trial {t}: {e:?}"),
                        }
                    }
                    finished.fetch_add(1, SeqCst);
                });
            }
            let mut gen = 0u32;
            while finished.load(SeqCst) < 2 {
                gen += 1;
                let server = seg.server("m", ThreadWait::new(100 + gen % 7)).unwrap();
                for _ in 0..(gen % 5) {
                    if let Ok(req) = server.recv_timeout(Duration::from_millis(1)) {
                        let mut v = [0u8; 4];
                        req.read_into(&mut v);
                        let x = u32::from_le_bytes(v);
                        served_set.lock().unwrap().push(x);
                        req.respond_with(&(!x).to_le_bytes()).unwrap();
                    }
                }
                drop(server);
            }
        });
        let mut served = served_set.into_inner().unwrap();
        let total = served.len();
        served.sort_unstable();
        served.dedup();
        assert_eq!(served.len(), total, "trial {t}: a request served twice");
        assert_eq!(total, 2 * CALLS as usize, "trial {t}");
        total_dropped += dropped.load(SeqCst);
    }
    assert_eq!(total_dropped, 0, "calls failed with Dropped in {n} trials (no server ever dropped a Request): a closing server's failure read as Dropped after the next server reopened");
}

/// Hostile values in head/tail (with and without the close bit) and in
/// server_waiting never panic and never hang a bounded call.
#[test]
fn hostile_close_words_never_panic() {
    use shm_core::format::{mailbox as mb, queue as q};
    let layout = Layout::new().queue("q", 64).unwrap().mailbox("m", 1, 64).unwrap();
    let memory = MockRegion::new(layout.size());
    let seg = Segment::create(memory.region(), &layout, 1, 0).unwrap();
    let base = memory.region().as_ptr() as usize;
    let qa = seg.queue_view("q").unwrap().control() as *const _ as usize - base;
    let mut seed = 77u64;
    let short = Duration::from_millis(1);
    let mut claimed = 0u32;
    let n = trials(20000);
    for _ in 0..n {
        let mut tx = seg.producer("q", ThreadWait::new(2)).ok();
        let mut rx = seg.consumer("q", ThreadWait::new(3)).ok();
        claimed += tx.is_some() as u32 + rx.is_some() as u32;
        let pick = |seed: &mut u64| -> u32 {
            match rng(seed) % 6 {
                0 => 1,
                1 => u32::MAX,
                2 => (rng(seed) as u32) | 1,
                3 => (rng(seed) as u32) & !7,
                4 => ((rng(seed) as u32) & !7) | 1,
                _ => rng(seed) as u32,
            }
        };
        let word = if rng(&mut seed).is_multiple_of(2) { q::HEAD } else { q::TAIL };
        memory.write_u32(qa + word, pick(&mut seed));
        if let Some(tx) = tx.as_mut() {
            let _ = tx.try_send(b"abc");
            let _ = tx.send_timeout(&[1; 24], short);
        }
        if let Some(rx) = rx.as_mut() {
            let mut buf = [0u8; 32];
            let _ = rx.try_recv(&mut buf);
            let _ = rx.recv_timeout(&mut buf, short);
        }
        drop(tx);
        drop(rx);
        if rng(&mut seed).is_multiple_of(4) {
            memory.write_u32(qa + q::HEAD, 0);
            memory.write_u32(qa + q::TAIL, 0);
        }
    }
    let _ = mb::SERVER_CLOSED;
    println!("hostile: {claimed} endpoints claimed");
    // About one claim in ten trials at least (hostile words make many
    // claims fail, by design): the trials exercised live endpoints.
    assert!(u64::from(claimed) * 10 >= u64::from(n), "the trials must exercise live endpoints: {claimed} in {n}");
}
