//! Soak: many messages and round trips across processes, each carrying its
//! index and seeded contents; zero lost, duplicated, reordered or corrupted.
//!
//! CI runs a scaled-down count. The full run (10 million queue messages and
//! 1 million mailbox round trips):
//! `SHM_SOAK=full cargo test --release -p shm-tests --test soak -- --nocapture`

use std::time::{Duration, Instant};

use shm_core::{conformance, Layout};
use shm_posix::{FutexWait, Segment};
use shm_tests::{assert_clean, unique, Peer};

const PEER: &str = env!("CARGO_BIN_EXE_peer");

fn full() -> bool {
    std::env::var("SHM_SOAK").is_ok_and(|v| v == "full")
}

#[test]
fn soak_queue_across_processes() {
    let count: u64 = if full() { 10_000_000 } else { 300_000 };
    let name = unique("soak-queue");
    {
        let seg = Segment::create(&name, &Layout::new().queue("q", 1 << 16).unwrap()).unwrap();
        let mut rx = seg.consumer("q", FutexWait::new()).unwrap();
        let max = seg.queue_view("q").unwrap().max_message() as usize;
        let started = Instant::now();
        let producer = Peer::spawn(PEER, &["produce", &name, &count.to_string(), "2026"]);
        conformance::queue_receive(&mut rx, count, 2026, max).unwrap();
        assert!(producer.finish(Duration::from_secs(3600)).success());
        println!(
            "soak queue: {count} messages in {:.1?}, zero lost, duplicated, reordered or corrupted",
            started.elapsed()
        );
    }
    assert_clean(&name);
}

#[test]
fn soak_mailbox_across_processes() {
    let count: u64 = if full() { 1_000_000 } else { 50_000 };
    let name = unique("soak-mailbox");
    {
        let seg = Segment::create(&name, &Layout::new().mailbox("m", 4, 1024).unwrap()).unwrap();
        let started = Instant::now();
        let server = Peer::spawn(PEER, &["serve", &name, &count.to_string(), "futex"]);
        let client = seg.client("m", FutexWait::new()).unwrap();
        let seqs = conformance::mailbox_call(&client, count, 2027).unwrap();
        assert!(seqs.iter().enumerate().all(|(i, &s)| s == i as u64), "every call answered once, in order");
        assert!(server.finish(Duration::from_secs(3600)).success());
        println!("soak mailbox: {count} round trips in {:.1?}, every response checked", started.elapsed());
    }
    assert_clean(&name);
}
