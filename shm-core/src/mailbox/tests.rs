//! The mailbox on mock memory: calls with grants, running out of slots,
//! late and withdrawn requests, dead peers and takeover, hostile control and
//! slot words, request-id wrap, close, and stress tests across threads.

use core::time::Duration;
use std::vec::Vec;

use crate::conformance;
use crate::error::{CallError, Corruption, Role, ServeError};
use crate::format::mailbox::{self as mb, slot};
use crate::mock::{Graveyard, MockRegion, ThreadWait};
use crate::test_support::{busy, fresh, open, OnWake, LONG, M, SHORT, SLOT0, SLOT1};
use crate::{Layout, Segment};

#[test]
fn call_and_serve_with_grants() {
    let memory = fresh();
    let seg = open(&memory).unwrap();
    let server = seg.server("m", ThreadWait::new(2)).unwrap();
    let client = seg.client("m", ThreadWait::new(3)).unwrap();
    assert_eq!(seg.server("m", ThreadWait::new(4)).err(), Some(busy("m", Role::Server, 2)));
    assert_eq!(server.try_recv().err(), Some(ServeError::Empty));
    let mut slot = client.try_claim().unwrap();
    slot[..3].copy_from_slice(b"abc");
    let pending = slot.send(3).unwrap();
    let mut req = server.try_recv().unwrap();
    assert_eq!(req.data(), b"abc");
    req.buf_mut()[..4].copy_from_slice(b"ABCD");
    req.respond(4).unwrap();
    let resp = pending.wait_timeout(SHORT).unwrap();
    assert_eq!(&resp[..], b"ABCD");
    drop(resp);
    assert_eq!(server.stats().served, 1);
    assert_eq!(server.stats().slots_by_state[0], 2, "both slots free again");
    // Sizes.
    assert_eq!(client.call_timeout(&[0; 65], &mut [0; 64], SHORT), Err(CallError::TooLarge { len: 65, max: 64 }));
}

#[test]
fn slots_run_out_and_come_back() {
    let memory = fresh();
    let seg = open(&memory).unwrap();
    let client = seg.client("m", ThreadWait::new(3)).unwrap();
    let a = client.try_claim().unwrap();
    let b = client.try_claim().unwrap();
    assert_eq!(client.try_claim().err(), Some(CallError::NoFreeSlot));
    assert_eq!(client.claim_timeout(SHORT).err(), Some(CallError::Timeout));
    std::thread::scope(|s| {
        let waiter = s.spawn(|| client.claim_timeout(LONG).map(|_| ()));
        std::thread::sleep(Duration::from_millis(10));
        drop(a);
        assert_eq!(waiter.join().unwrap(), Ok(()));
    });
    drop(b);
}

#[test]
fn late_response_never_reaches_the_next_call() {
    let memory = fresh();
    let seg = open(&memory).unwrap();
    let server = seg.server("m", ThreadWait::new(2)).unwrap();
    let client = seg.client("m", ThreadWait::new(3)).unwrap();
    let mut resp = [0u8; 64];
    // The server takes the request but is slow: the client gives up.
    std::thread::scope(|s| {
        let caller = s.spawn(|| client.call_timeout(b"first", &mut [0u8; 64], Duration::from_millis(30)));
        let req = loop {
            match server.try_recv() {
                Ok(r) => break r,
                Err(ServeError::Empty) => std::thread::yield_now(),
                Err(e) => panic!("{e}"),
            }
        };
        assert_eq!(caller.join().unwrap(), Err(CallError::Timeout));
        // The late response finds the request abandoned and frees the slot.
        assert_eq!(req.respond(5), Err(ServeError::Abandoned));
    });
    // The next call gets its own response, not the late one.
    std::thread::scope(|s| {
        s.spawn(|| {
            server
                .serve_timeout(LONG, |buf, len| {
                    let request: Vec<u8> = buf[..len].into();
                    conformance::transform(&request, 7, buf)
                })
                .unwrap()
        });
        let n = client.call_timeout(b"second", &mut resp, LONG).unwrap();
        assert_eq!(&resp[..6], b"SECOND");
        assert_eq!(n, 14);
    });
    // Withdrawn before the server looked: the server never sees it.
    let pending = client.try_claim().unwrap().send(1).unwrap();
    drop(pending);
    assert_eq!(server.try_recv().err(), Some(ServeError::Empty));
}

#[test]
fn dead_server_dead_client_and_takeover() {
    let memory = fresh();
    let seg = open(&memory).unwrap();
    let graveyard = Graveyard::new();
    let w2 = ThreadWait::with_graveyard(2, &graveyard);
    let server = seg.server("m", &w2).unwrap();
    let client = seg.client("m", ThreadWait::with_graveyard(3, &graveyard)).unwrap();
    // The server takes a request, then dies.
    let pending = client.try_claim().unwrap().send(2).unwrap();
    let req = server.try_recv().unwrap();
    core::mem::forget(req);
    core::mem::forget(server);
    graveyard.bury(2);
    assert_eq!(pending.wait_timeout(SHORT).err(), Some(CallError::PeerDied));
    // A new server takes over and frees the abandoned slot.
    let w4 = ThreadWait::with_graveyard(4, &graveyard);
    let server = seg.server("m", &w4).unwrap();
    assert_eq!(server.stats().slots_by_state[0], 2);
    // Another request held when the server died is failed for its client.
    let pending = client.try_claim().unwrap().send(1).unwrap();
    core::mem::forget(server.try_recv().unwrap());
    core::mem::forget(server);
    graveyard.bury(4);
    let server = seg.server("m", ThreadWait::with_graveyard(5, &graveyard)).unwrap();
    assert_eq!(pending.wait_timeout(SHORT).err(), Some(CallError::Dropped));
    // A client dies holding both slots; the server reclaims them.
    let other = seg.client("m", ThreadWait::with_graveyard(6, &graveyard)).unwrap();
    let other = &other;
    core::mem::forget(other.try_claim().unwrap());
    core::mem::forget(other.try_claim().unwrap().send(0).unwrap());
    assert_eq!(client.try_claim().err(), Some(CallError::NoFreeSlot));
    assert_eq!(server.reclaim(), 0, "a live client keeps its slots");
    graveyard.bury(6);
    assert_eq!(server.reclaim(), 2);
    assert!(client.try_claim().is_ok());
}

#[test]
fn hostile_words() {
    let memory = fresh();
    let seg = open(&memory).unwrap();
    let server = seg.server("m", ThreadWait::new(2)).unwrap();
    let client = seg.client("m", ThreadWait::new(3)).unwrap();
    let corrupted = |w| Corruption::channel(1, w);

    // The event counts and waiting flags may hold anything: only spare
    // wake-ups result, never a lost or false request.
    for (offset, value) in [
        (M + mb::REQUEST_EPOCH, u32::MAX),
        (M + mb::SERVER_WAITING, 7),
        (M + mb::FREE_EPOCH, u32::MAX),
        (M + mb::FREE_WAITERS, 1),
    ] {
        memory.write_u32(offset, value);
        std::thread::scope(|s| {
            s.spawn(|| server.serve_timeout(LONG, |_, len| len).unwrap());
            assert_eq!(client.call_timeout(b"ok", &mut [0; 64], LONG), Ok(2), "after corrupting offset {offset}");
        });
    }
    assert_eq!(server.try_recv().err(), Some(ServeError::Empty));

    // slot.len beyond the slot while the server takes it: the client is told.
    let memory = fresh();
    let seg = open(&memory).unwrap();
    let server = seg.server("m", ThreadWait::new(2)).unwrap();
    let client = seg.client("m", ThreadWait::new(3)).unwrap();
    let pending = client.try_claim().unwrap().send(4).unwrap();
    memory.write_u32(SLOT0 + mb::SLOT_LEN, 1 << 20);
    assert_eq!(server.try_recv().err(), Some(ServeError::Corrupted(corrupted("slot.len"))));
    assert_eq!(pending.wait_timeout(SHORT).err(), Some(CallError::Dropped));

    // slot.len beyond the slot in the response.
    let pending = client.try_claim().unwrap().send(4).unwrap();
    let req = server.try_recv().unwrap();
    req.respond(4).unwrap();
    let at = if mb::low_of(memory.read_u32(SLOT0)) == slot::RESPONSE { SLOT0 } else { SLOT1 };
    memory.write_u32(at + mb::SLOT_LEN, 65);
    assert_eq!(pending.wait_timeout(SHORT).err(), Some(CallError::Corrupted(corrupted("slot.len"))));

    // slot.state garbage (other id, unknown state) while the client waits.
    for garbage in [0xffff_ff09u32, 0x0000_0102] {
        let pending = client.try_claim().unwrap().send(4).unwrap();
        let at = if mb::low_of(memory.read_u32(SLOT0)) == slot::REQUEST { SLOT0 } else { SLOT1 };
        memory.write_u32(at + mb::SLOT_STATE, garbage);
        assert_eq!(pending.wait_timeout(SHORT).err(), Some(CallError::Corrupted(corrupted("slot.state"))));
    }
    // ...and the server only ever answers what it took.
    assert_eq!(server.try_recv().err(), Some(ServeError::Empty));

    // Waiting words and counters: no effect on correctness.
    // `served` (a counter), a FREE slot's owner word `client` (a nonzero
    // owner keeps the slot from being claimed, so the call takes the other
    // slot; `reclaim` clears it once that owner reads as dead) and
    // `client_waiting` (a spare wake-up at worst).
    for (offset, value) in
        [(M + mb::SERVED, 77), (SLOT0 + mb::SLOT_CLIENT, 0xffff_fffe), (SLOT0 + mb::SLOT_CLIENT_WAITING, 1)]
    {
        memory.write_u32(offset, value);
        std::thread::scope(|s| {
            s.spawn(|| server.serve_timeout(LONG, |_, len| len).unwrap());
            assert_eq!(client.call_timeout(b"ok", &mut [0; 64], LONG), Ok(2), "after corrupting offset {offset}");
        });
    }
    // The close mark alone (`server_waiting`) after a post: the call takes
    // its request back and says `Closed` (a closing server still holds the
    // role word until its scan is done, so the mark decides there), and
    // nothing is left claimed.
    memory.write_u32(M + mb::SERVER_WAITING, mb::SERVER_CLOSED);
    assert_eq!(client.call_timeout(b"ok", &mut [0; 64], SHORT), Err(CallError::Closed));
    assert_eq!(server.stats().slots_by_state[0], 2);
    // Hint and role word both closed: calls get `Closed`, nothing is left
    // claimed.
    memory.write_u32(M + mb::SERVER, mb::SERVER_CLOSED);
    assert_eq!(client.call_timeout(b"ok", &mut [0; 64], LONG), Err(CallError::Closed));
    assert_eq!(server.stats().slots_by_state[0], 2);
    memory.write_u32(M + mb::SERVER_WAITING, 0);
    memory.write_u32(M + mb::SERVER, 2);
    // A foreign live server id in the role word.
    drop(server);
    memory.write_u32(M + mb::SERVER, 12345);
    assert_eq!(seg.server("m", ThreadWait::new(2)).err(), Some(busy("m", Role::Server, 12345)));
}

#[test]
fn stress_many_clients() {
    let (clients, calls) = if cfg!(miri) { (2, 20) } else { (4, 5_000) };
    let layout = Layout::new().mailbox("m", 3, 600).unwrap();
    let memory = MockRegion::new(layout.size());
    let seg = Segment::create(memory.region(), &layout, 1, 0).unwrap();
    let server = seg.server("m", ThreadWait::new(1)).unwrap();
    let mut seqs: Vec<u64> = std::thread::scope(|s| {
        s.spawn(|| conformance::mailbox_serve(&server, clients * calls));
        let handles: Vec<_> = (0..clients)
            .map(|c| {
                let seg = &seg;
                s.spawn(move || {
                    let client = seg.client("m", ThreadWait::new(10 + c as u32)).unwrap();
                    conformance::mailbox_call(&client, calls, c).unwrap()
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    seqs.sort_unstable();
    let want: Vec<u64> = (0..clients * calls).collect();
    assert_eq!(seqs, want, "every call answered exactly once");
}

/// Regression from review: `reclaim` leaves a slot the server still holds,
/// even when its client gave up and died.
#[test]
fn reclaim_leaves_a_slot_the_server_still_holds() {
    let memory = fresh();
    let seg = open(&memory).unwrap();
    let graveyard = Graveyard::new();
    let server = seg.server("m", ThreadWait::with_graveyard(2, &graveyard)).unwrap();
    let dead = ThreadWait::with_graveyard(3, &graveyard);
    let client = seg.client("m", &dead).unwrap();
    let pending = client.try_claim().unwrap().send(1).unwrap();
    let mut request = server.try_recv().unwrap();
    // The client gives up (ABANDONED), then dies.
    assert_eq!(pending.wait_timeout(Duration::ZERO).err(), Some(CallError::Timeout));
    graveyard.bury(3);
    assert_eq!(server.reclaim(), 0, "an abandoned slot is the server's until it answers");
    request.buf_mut()[0] = b'x';
    assert_eq!(request.respond(1), Err(ServeError::Abandoned));
    assert_eq!(server.stats().slots_by_state[0], 2, "answering the abandoned request freed it");
}

/// Issue 9, defect 1, the reviewer's reproduction on threads: a client
/// withdrew its request and died; the server reclaims dead clients' slots in
/// a loop while two live clients claim the one slot. Each claim must be the
/// only one: the reclaimer may never free a live claim (the old claim path
/// stored the owner after its CAS, so the reclaimer could pair the new claim
/// with the dead client's id and free it). The loom model
/// `mailbox_reclaim_never_frees_a_live_claim` covers every interleaving.
#[test]
fn reclaim_never_frees_a_live_claim() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
    const DEAD: u32 = 100;
    let trials = if cfg!(miri) { 10 } else { 2_000 };
    let layout = Layout::new().mailbox("m", 1, 64).unwrap();
    let memory = MockRegion::new(layout.size());
    Segment::create(memory.region(), &layout, 1, 0).unwrap();
    let seg = open(&memory).unwrap();
    let graveyard = Graveyard::new();
    graveyard.bury(DEAD);
    let server = seg.server("m", ThreadWait::with_graveyard(2, &graveyard)).unwrap();
    let dead = seg.client("m", ThreadWait::new(DEAD)).unwrap();
    let clients = [3u8, 4].map(|id| (id, seg.client("m", ThreadWait::new(id as u32)).unwrap()));
    let holders = AtomicUsize::new(0);
    let overlaps = AtomicUsize::new(0);
    for _ in 0..trials {
        // The dead client's last act: post a request, then withdraw it.
        drop(dead.try_claim().unwrap().send(1).unwrap());
        let stop = AtomicBool::new(false);
        std::thread::scope(|s| {
            s.spawn(|| {
                while !stop.load(SeqCst) {
                    server.reclaim();
                    std::thread::yield_now();
                }
            });
            let handles: Vec<_> = clients
                .iter()
                .map(|(id, client)| {
                    let (holders, overlaps) = (&holders, &overlaps);
                    s.spawn(move || {
                        let Ok(mut slot) = client.try_claim() else { return };
                        if holders.fetch_add(1, SeqCst) != 0 {
                            overlaps.fetch_add(1, SeqCst);
                        }
                        slot.fill(*id);
                        for _ in 0..10 {
                            std::thread::yield_now();
                        }
                        if slot.iter().any(|b| b != id) {
                            overlaps.fetch_add(1, SeqCst);
                        }
                        holders.fetch_sub(1, SeqCst);
                    })
                })
                .collect();
            for h in handles {
                h.join().unwrap();
            }
            stop.store(true, SeqCst);
        });
        // Whatever the interleaving, the slot ends up free for the next trial.
        server.reclaim();
    }
    assert_eq!(overlaps.load(SeqCst), 0, "two clients held one slot at once");
}

/// Issue 9 audit: the 24-bit request id wraps after 2^24 - 1 claims of a
/// slot; a call across the wrap completes, and ids go on from 1 (0 would
/// make a ring value equal to the ring word's initial value, and a server
/// that had scanned already would miss the request).
#[test]
fn request_id_wraps() {
    let memory = fresh();
    let seg = open(&memory).unwrap();
    let server = seg.server("m", ThreadWait::new(2)).unwrap();
    let client = seg.client("m", ThreadWait::new(3)).unwrap();
    for at in [SLOT0, SLOT1] {
        memory.write_u32(at + mb::SLOT_STATE, mb::pack(mb::ID_MASK, slot::FREE));
    }
    for round in 0..3u32 {
        std::thread::scope(|s| {
            s.spawn(|| server.serve_timeout(LONG, |_, len| len).unwrap());
            assert_eq!(client.call_timeout(b"ok", &mut [0; 64], LONG), Ok(2));
        });
        // Calls claim the first free slot, so slot 0 takes every call; ids
        // skip 0 when they wrap.
        let ids = [SLOT0, SLOT1].map(|at| mb::id_of(memory.read_u32(at + mb::SLOT_STATE)));
        assert_eq!(ids, [round + 1, 0xff_ffff], "request ids after call {round}");
    }
}

/// Dropping the server closes the mailbox: a request it had not taken is
/// failed with `Closed`, a call after the close gets `Closed`, and a new
/// server opens it again.
#[test]
fn dropping_the_server_closes_the_mailbox() {
    let memory = fresh();
    let seg = open(&memory).unwrap();
    let client = seg.client("m", ThreadWait::new(3)).unwrap();
    let server = seg.server("m", ThreadWait::new(2)).unwrap();
    let waiting = client.try_claim().unwrap().send(2).unwrap();
    drop(server);
    assert_eq!(waiting.wait().err(), Some(CallError::Closed), "a posted request is answered: closed");
    assert_eq!(client.call(b"hi", &mut [0; 64]), Err(CallError::Closed), "a call without timeout ends");
    assert_eq!(seg.mailbox_view("m").unwrap().stats().slots_by_state[0], 2, "nothing is left claimed");
    let server = seg.server("m", ThreadWait::new(4)).unwrap();
    std::thread::scope(|s| {
        s.spawn(|| server.serve_timeout(LONG, |_, len| len).unwrap());
        assert_eq!(client.call_timeout(b"ok", &mut [0; 64], LONG), Ok(2));
    });
}

/// Review finding: a server whose role word names someone else (it was
/// taken over, or scribbled) said `Empty` from `try_recv` while a
/// multiplexer found it ready, so a wait-then-try loop spun. Both now agree:
/// ready, and `Replaced`.
#[test]
fn a_replaced_server_is_ready_and_says_replaced() {
    use crate::ready::Waitable;
    let memory = fresh();
    let seg = open(&memory).unwrap();
    let server = seg.server("m", ThreadWait::new(2)).unwrap();
    assert!(!server.is_ready());
    assert_eq!(server.try_recv().err(), Some(ServeError::Empty));
    memory.write_u32(M + mb::SERVER, 77);
    assert!(server.is_ready());
    assert_eq!(server.try_recv().err(), Some(ServeError::Replaced));
    // Its announcements never touch a word it does not own the value of.
    memory.write_u32(M + mb::SERVER_WAITING, mb::SERVER_CLOSED);
    server.announce(true);
    server.announce(false);
    assert_eq!(memory.read_u32(M + mb::SERVER_WAITING), mb::SERVER_CLOSED);
}

/// The direct mailbox's review finding, here too: a closing server's scan
/// (which fails posted requests and SERVING slots its forgotten requests
/// left) runs while the role is still its own, so no new server can claim
/// the mailbox and have a request it serves failed under it.
#[test]
fn no_server_can_claim_while_a_closing_one_fails_requests() {
    let memory = fresh();
    let seg = open(&memory).unwrap();
    let claimed_during_scan = core::cell::Cell::new(None);
    let w7 = ThreadWait::new(7);
    let try_claim = || {
        let r = seg.server("m", &w7).map(core::mem::forget);
        claimed_during_scan.set(Some(r.is_ok()));
    };
    let closing = seg.server("m", OnWake { inner: ThreadWait::new(2), on_wake: try_claim }).unwrap();
    let client = seg.client("m", ThreadWait::new(3)).unwrap();
    let pending = client.try_claim().unwrap().send(1).unwrap();
    let at = if mb::low_of(memory.read_u32(SLOT0)) == slot::REQUEST { SLOT0 } else { SLOT1 };
    // As if the client slept: the scan wakes it when it fails the request.
    memory.write_u32(at + mb::SLOT_CLIENT_WAITING, 1);
    drop(closing);
    assert_eq!(claimed_during_scan.get(), Some(false), "a server claimed the role during the close's scan");
    assert_eq!(pending.wait_timeout(SHORT).err(), Some(CallError::Closed));
    assert!(seg.server("m", ThreadWait::new(7)).is_ok(), "free once the close is done");
}
