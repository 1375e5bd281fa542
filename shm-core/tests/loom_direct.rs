//! Loom models of the direct mailbox: a call and its answer with both sides
//! asleep (no lost wake-up either way), a close racing a post (the caller
//! learns of it, never sleeps forever), and a client leaving while a new
//! server takes over from a dead one (the slot is freed, not leaked).
//!
//! `RUSTFLAGS="--cfg shm_loom" LOOM_MAX_PREEMPTIONS=2 cargo test -p shm-core --release --test loom_direct`
#![cfg(shm_loom)]

mod loom_support;

use loom_support::{model, view_of, DyingWait, LoomSlot, Slots};

use loom::sync::Arc;
use loom::thread;
use shm_core::direct::{Client, Server};
use shm_core::format::direct::slot;
use shm_core::format::mailbox::{MailboxControl, SlotControl};
use shm_core::CallError;

fn one_slot() -> (Arc<MailboxControl>, Arc<Slots>) {
    let slots = Arc::new(Slots(vec![LoomSlot { ctl: SlotControl::with_words(0, 0), payload: [0; 8] }]));
    (Arc::new(MailboxControl::new()), slots)
}

/// The server sleeps for a request (announce, fence, look, park on the
/// doorbell) while the client posts and rings only if it saw the announce;
/// the client then sleeps for the answer while the server posts it and
/// wakes it only if it saw that announce. Loom reports a deadlock if either
/// wake-up can be lost.
#[test]
fn a_call_and_its_answer_with_both_sides_asleep() {
    model("direct call, both asleep", || {
        let (ctl, slots) = one_slot();
        let server_wait = DyingWait::new(1);
        let client_wait = server_wait.sibling(2);
        let mut client = Client::connect(view_of(&ctl, &slots), client_wait).unwrap();
        let (c2, s2) = (ctl.clone(), slots.clone());
        let serving = thread::spawn(move || {
            let mut server = Server::claim(view_of(&c2, &s2), server_wait).unwrap();
            let mut req = server.recv().unwrap();
            let len = req.len();
            req.buf_mut()[0] ^= 0xff;
            req.respond(len).unwrap();
        });
        let mut out = [0u8; 8];
        assert_eq!(client.call(&[7, 1, 2], &mut out), Ok(3));
        assert_eq!(&out[..3], &[!7, 1, 2]);
        serving.join().unwrap();
    });
}

/// A server claims and closes while the client posts: the close's scan
/// fails the request, or the client sees the close mark after its post.
/// Either way the call ends (`Closed`); it never waits for an answer nobody
/// will give.
#[test]
fn a_close_racing_a_post_ends_the_call() {
    model("direct close vs post", || {
        let (ctl, slots) = one_slot();
        let server_wait = DyingWait::new(1);
        let client_wait = server_wait.sibling(2);
        let mut client = Client::connect(view_of(&ctl, &slots), client_wait).unwrap();
        let (c2, s2) = (ctl.clone(), slots.clone());
        let closer = thread::spawn(move || {
            // Claimed and closed, before, during or after the call.
            drop(Server::claim(view_of(&c2, &s2), server_wait).unwrap());
        });
        let r = client.call(&[1], &mut [0u8; 8]);
        assert_eq!(r, Err(CallError::Closed));
        closer.join().unwrap();
    });
}

/// The server (id 1) died; a new one (id 3) takes over, failing what was
/// posted, while the client, whose call timed out, leaves (REQUEST to
/// ABANDONED, or, if the failure came first, frees the slot itself). After
/// one scan by the new server the slot is free: never leaked.
#[test]
fn a_client_leaving_while_a_server_takes_over_leaks_no_slot() {
    model("direct takeover vs leave", || {
        let (ctl, slots) = one_slot();
        let old_wait = DyingWait::new(1);
        let client_wait = old_wait.sibling(2);
        let new_wait = old_wait.sibling(3);
        let old = Server::claim(view_of(&ctl, &slots), old_wait.clone()).unwrap();
        let mut client = Client::connect(view_of(&ctl, &slots), client_wait).unwrap();
        // A request is posted (the client's own wait would block forever
        // under this strategy: its call's deadline never passes).
        client.post_only(&[5]);
        // The old server dies (it is dropped only at the end, by which time
        // the role is no longer its own, so its drop closes nothing).
        old_wait.die();
        let (c2, s2) = (ctl.clone(), slots.clone());
        let taker = thread::spawn(move || {
            let mut server = Server::claim(view_of(&c2, &s2), new_wait).unwrap();
            // One scan frees an ABANDONED slot.
            let _ = server.try_recv().err();
        });
        drop(client);
        taker.join().unwrap();
        drop(old);
        let st = view_of(&ctl, &slots).stats().slots_by_state;
        assert_eq!(st[slot::FREE as usize], 1, "slot leaked: {st:?}");
    });
}

/// Review finding: server A closes while server B tries to claim the
/// mailbox and serve the request a client posted. If B gets the role and
/// takes the request, A's close must not fail it under B (B's answer must
/// land); A's scan runs while A still holds the role. (Failed on the code
/// that closed the role before the scan.)
#[test]
fn a_server_claiming_during_a_close_keeps_the_request_it_took() {
    model("direct close vs claim", || {
        let (ctl, slots) = one_slot();
        let a_wait = DyingWait::new(1);
        let client_wait = a_wait.sibling(2);
        let b_wait = a_wait.sibling(3);
        let a = Server::claim(view_of(&ctl, &slots), a_wait).unwrap();
        let mut client = Client::connect(view_of(&ctl, &slots), client_wait).unwrap();
        client.post_only(&[9]);
        let (c2, s2) = (ctl.clone(), slots.clone());
        let b = thread::spawn(move || {
            let Ok(mut server) = Server::claim(view_of(&c2, &s2), b_wait) else { return };
            if let Ok(req) = server.try_recv() {
                assert_eq!(req.respond(1), Ok(()), "a request this server took was failed under it");
            };
        });
        drop(a);
        b.join().unwrap();
        drop(client);
    });
}

/// New-user review 2026-12-03: a connecting client takes over the slot of
/// a client that died with a request posted, while the server answers that
/// request and then reclaims. Whatever the interleaving, the slot has one
/// owner at a time: a client that got it finds it IDLE under its own id
/// (never freed under it), and once everyone is done the slot is free,
/// never leaked.
#[test]
fn a_client_taking_over_a_dead_clients_slot_races_the_answer_and_reclaim() {
    model("direct take over vs answer and reclaim", || {
        use shm_core::format::mailbox::pack;
        // Client 2 posted a (zero-length) request and died.
        let slots = Arc::new(Slots(vec![LoomSlot {
            ctl: SlotControl::with_words(pack(1, slot::REQUEST), 2),
            payload: [0; 8],
        }]));
        let ctl = Arc::new(MailboxControl::new());
        let server_wait = DyingWait::new(1);
        server_wait.bury(2);
        let taker_wait = server_wait.sibling(3);
        let mut server = Server::claim(view_of(&ctl, &slots), server_wait).unwrap();
        let (c2, s2) = (ctl.clone(), slots.clone());
        let taker = thread::spawn(move || {
            let Ok(client) = Client::connect(view_of(&c2, &s2), taker_wait) else { return false };
            // The server's answer and reclaims run meanwhile: the slot stays
            // IDLE, ours.
            let st = view_of(&c2, &s2).stats().slots_by_state;
            assert_eq!(st[slot::IDLE as usize], 1, "freed or moved under its owner: {st:?}");
            drop(client);
            true
        });
        if let Ok(request) = server.try_recv() {
            request.respond(0).unwrap();
        }
        server.reclaim();
        taker.join().unwrap();
        // What the race left (an answered slot of the dead client, if the
        // taker looked before the answer), the next reclaim frees.
        server.reclaim();
        let st = view_of(&ctl, &slots).stats().slots_by_state;
        assert_eq!(st[slot::FREE as usize], 1, "slot leaked: {st:?}");
    });
}

/// Review 2026-12-03 (eleventh pass): the same race from a dead client's
/// IDLE slot (killed after connecting, before its first call). The
/// takeover's IDLE used to equal the dead client's, so a reclaim that had
/// loaded it and judged its holder dead freed the slot under the taker.
#[test]
fn a_client_taking_over_a_dead_clients_idle_slot_races_reclaim() {
    model("direct take over idle vs reclaim", || {
        use shm_core::format::mailbox::pack;
        let slots =
            Arc::new(Slots(vec![LoomSlot { ctl: SlotControl::with_words(pack(1, slot::IDLE), 2), payload: [0; 8] }]));
        let ctl = Arc::new(MailboxControl::new());
        let server_wait = DyingWait::new(1);
        server_wait.bury(2);
        let taker_wait = server_wait.sibling(3);
        let server = Server::claim(view_of(&ctl, &slots), server_wait).unwrap();
        let (c2, s2) = (ctl.clone(), slots.clone());
        let taker = thread::spawn(move || {
            let client = Client::connect(view_of(&c2, &s2), taker_wait).expect("free or taken over");
            let st = view_of(&c2, &s2).stats().slots_by_state;
            assert_eq!(st[slot::IDLE as usize], 1, "freed under its owner: {st:?}");
            drop(client);
        });
        server.reclaim();
        taker.join().unwrap();
        let st = view_of(&ctl, &slots).stats().slots_by_state;
        assert_eq!(st[slot::FREE as usize], 1, "slot leaked: {st:?}");
    });
}
