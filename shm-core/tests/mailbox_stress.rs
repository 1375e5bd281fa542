//! Thread stress reproductions of two mailbox slot leaks found by review
//! (mock memory); the loom models in `loom_mailbox.rs` are the proof, these
//! run the same races on real threads. More trials:
//! `TRIALS=100000 cargo test -p shm-core --release --test mailbox_stress -- --nocapture`
// Not under Miri: a "killed" server or client is modelled by forgetting its
// handle, which leaks the strategy's heap state by design (Miri reports the
// leak); loom_mailbox.rs models the same races exhaustively.
#![cfg(not(any(shm_loom, miri)))]
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::Barrier;

use shm_core::mock::{Graveyard, MockRegion, ThreadWait};
use shm_core::{Layout, Segment};

fn trials(default: u32) -> u32 {
    let default = if cfg!(miri) { 3 } else { default };
    std::env::var("TRIALS").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// R1 on threads: the server reclaims in a loop; a client claims the one
/// slot and is "killed" right after (guard leaked, id buried). Afterwards
/// every client is dead, and a reclaim must leave the slot claimable. The
/// reclaimer's FREE branch ("owner died between storing FREE and clearing
/// its owner") can instead clear the owner of the dead claimer's CLAIMED
/// slot, which no later reclaim or takeover ever frees.
#[test]
fn r1_reclaim_vs_claimer_killed_after_claim() {
    let n = trials(2_000);
    let layout = Layout::new().mailbox("m", 1, 64).unwrap();
    let memory = MockRegion::new(layout.size());
    Segment::create(memory.region(), &layout, 1, 0).unwrap();
    let seg = Segment::open(memory.region(), &ThreadWait::new(99), std::time::Duration::from_secs(1)).unwrap();
    let graveyard = Graveyard::new();
    let server = seg.server("m", ThreadWait::with_graveyard(2, &graveyard)).unwrap();
    let mut leaked = 0;
    let mut first = None;
    for t in 0..n {
        let id = 1000 + t;
        let stop = AtomicBool::new(false);
        let barrier = Barrier::new(2);
        std::thread::scope(|s| {
            s.spawn(|| {
                barrier.wait();
                while !stop.load(SeqCst) {
                    server.reclaim();
                }
            });
            let client = seg.client("m", ThreadWait::with_graveyard(id, &graveyard)).unwrap();
            barrier.wait();
            if let Ok(guard) = client.try_claim() {
                std::mem::forget(guard); // killed while holding it
            }
            graveyard.bury(id);
            for _ in 0..200 {
                std::hint::spin_loop();
            }
            stop.store(true, SeqCst);
        });
        server.reclaim();
        server.reclaim();
        let probe = seg.client("m", ThreadWait::with_graveyard(3, &graveyard)).unwrap();
        let claimed = probe.try_claim().map(drop).is_ok();
        if !claimed {
            leaked += 1;
            first.get_or_insert((t, server.stats().slots_by_state));
            break; // the slot is gone for good; nothing more to learn
        }
    }
    assert_eq!(leaked, 0, "slot leaked after {first:?} (trial, slots_by_state)");
}

/// R2 on threads: server 10 holds a request and is killed; a new server
/// takes over (`recover`) while the client, whose call timed out, drops its
/// `Pending` (withdraw: SERVING -> ABANDONED). If the client's CAS lands
/// between `recover`'s load and its CAS to FAILED, the slot stays ABANDONED
/// under a live server that holds no `Request` for it: `reclaim` never
/// frees it, only another takeover does.
#[test]
fn r2_takeover_recover_vs_client_abandoning() {
    let n = trials(2_000);
    let layout = Layout::new().mailbox("m", 1, 64).unwrap();
    let mut leaked = 0;
    for t in 0..n {
        let memory = MockRegion::new(layout.size());
        Segment::create(memory.region(), &layout, 1, 0).unwrap();
        let seg = Segment::open(memory.region(), &ThreadWait::new(99), std::time::Duration::from_secs(1)).unwrap();
        let graveyard = Graveyard::new();
        let old = seg.server("m", ThreadWait::with_graveyard(10, &graveyard)).unwrap();
        let client = seg.client("m", ThreadWait::with_graveyard(11, &graveyard)).unwrap();
        let pending = client.try_claim().unwrap().send(1).unwrap();
        std::mem::forget(old.try_recv().unwrap());
        std::mem::forget(old);
        graveyard.bury(10);
        let barrier = Barrier::new(2);
        let new_server = std::thread::scope(|s| {
            let h = s.spawn(|| {
                barrier.wait();
                let server = seg.server("m", ThreadWait::with_graveyard(12, &graveyard)).unwrap();
                server.reclaim();
                server
            });
            barrier.wait();
            // Sweep the client's start across the takeover.
            for _ in 0..t % 1500 {
                std::hint::spin_loop();
            }
            drop(pending);
            h.join().unwrap()
        });
        new_server.reclaim();
        let st = new_server.stats().slots_by_state;
        if st[5] != 0 {
            leaked += 1;
            if leaked == 1 {
                eprintln!("trial {t}: slots_by_state {st:?} (ABANDONED, live server 12, no Request)");
            }
        }
    }
    assert_eq!(leaked, 0, "{leaked}/{n} trials leaked the slot as ABANDONED");
}

/// R2 with 64 slots: the client drops its 64 pending calls in slot order
/// while the new server's `recover` scans the slots in the same order.
#[test]
fn r2_many_slots() {
    const SLOTS: u32 = 64;
    let n = trials(2_000) / 10;
    let layout = Layout::new().mailbox("m", SLOTS, 8).unwrap();
    let mut leaked = 0;
    let mut trials_hit = 0;
    for t in 0..n {
        let memory = MockRegion::new(layout.size());
        Segment::create(memory.region(), &layout, 1, 0).unwrap();
        let seg = Segment::open(memory.region(), &ThreadWait::new(99), std::time::Duration::from_secs(1)).unwrap();
        let graveyard = Graveyard::new();
        let old = seg.server("m", ThreadWait::with_graveyard(10, &graveyard)).unwrap();
        let client = seg.client("m", ThreadWait::with_graveyard(11, &graveyard)).unwrap();
        let mut pendings = Vec::new();
        for _ in 0..SLOTS {
            pendings.push(client.try_claim().unwrap().send(1).unwrap());
            std::mem::forget(old.try_recv().unwrap());
        }
        std::mem::forget(old);
        graveyard.bury(10);
        let barrier = Barrier::new(2);
        let new_server = std::thread::scope(|s| {
            let h = s.spawn(|| {
                barrier.wait();
                seg.server("m", ThreadWait::with_graveyard(12, &graveyard)).unwrap()
            });
            barrier.wait();
            for _ in 0..t % 500 {
                std::hint::spin_loop();
            }
            for p in pendings.drain(..) {
                drop(p);
            }
            h.join().unwrap()
        });
        new_server.reclaim();
        let st = new_server.stats().slots_by_state;
        if st[5] != 0 {
            leaked += st[5];
            trials_hit += 1;
            if trials_hit == 1 {
                eprintln!("trial {t}: slots_by_state {st:?} (ABANDONED under live server 12, no Request)");
            }
        }
    }
    assert_eq!(leaked, 0, "{leaked} slots leaked as ABANDONED in {trials_hit}/{n} trials");
}
