//! Loom models of the mailbox's slot release paths racing claims, deaths
//! and server takeovers (found by an adversarial review of the owner-word
//! claim; each failed on the code before its fix).
//!
//! `RUSTFLAGS="--cfg shm_loom" LOOM_MAX_PREEMPTIONS=2 cargo test -p shm-core --release --test loom_mailbox`
#![cfg(shm_loom)]

mod loom_support;

use loom_support::{model, view_of, DyingWait, LoomSlot, Slots};

use loom::sync::Arc;
use loom::thread;
use shm_core::format::mailbox::{pack, slot, MailboxControl, SlotControl};
use shm_core::mailbox::{Client, Server};

/// R2: the server (id 1) died holding a request; a new server (id 3) takes
/// over (`recover` loads SERVING, then CASes it to FAILED) while the client,
/// whose call timed out, withdraws it (CAS SERVING -> ABANDONED). If the
/// client wins, `recover`'s CAS fails and it never looks again: the slot
/// stays ABANDONED with a live server that holds no `Request` for it;
/// `reclaim` skips ABANDONED, so only yet another server takeover frees it.
#[test]
fn takeover_recover_vs_client_abandoning() {
    model("takeover vs abandon", || {
        let ctl = Arc::new(MailboxControl::new());
        let slots = Arc::new(Slots(vec![LoomSlot { ctl: SlotControl::with_words(0, 0), payload: [0; 8] }]));
        let old_wait = DyingWait::new(1);
        let client_wait = old_wait.sibling(2);
        let new_wait = old_wait.sibling(3);
        // Setup, single-threaded: a call is in flight and the server holds it.
        let old = Server::claim(view_of(&ctl, &slots), old_wait.clone()).unwrap();
        let client = Client::new(view_of(&ctl, &slots), client_wait.clone());
        let pending = client.try_claim().unwrap().send(1).unwrap();
        let req = old.try_recv().unwrap();
        // The old server is killed holding the request.
        std::mem::forget(req);
        old_wait.die();

        let (c2, s2) = (ctl.clone(), slots.clone());
        let taker = thread::spawn(move || {
            let server = Server::claim(view_of(&c2, &s2), new_wait).unwrap();
            server.reclaim();
            // The new server keeps serving; it holds no `Request`.
            let st = server.stats().slots_by_state;
            (st[5], server.reclaim())
        });
        // The client gives up on the call.
        drop(pending);
        let _ = taker.join().unwrap();
        // Nobody holds a Request any more: server 1 is dead, server 3 took
        // over and reclaimed. ABANDONED now means nobody will ever free it
        // until yet another server takes over.
        let st = view_of(&ctl, &slots).stats().slots_by_state;
        assert_eq!(st[5], 0, "slot leaked: slots_by_state {st:?} after takeover + reclaim, no Request exists");
        drop(old);
    });
}

/// R3: a client sleeps in `claim()` for the only slot, which is ABANDONED
/// to a dead server; a new server takes over (`recover` -> `free_abandoned`
/// clears the owner, then CASes FREE) while another client tries a
/// non-blocking claim (the tentative owner path that stores the owner back
/// to 0 and announces). The sleeper must get the slot eventually (loom
/// reports a deadlock on a lost wake-up).
#[test]
fn sleeper_wakes_when_abandoned_slot_is_freed_under_a_tentative_claim() {
    model("sleeper vs tentative claim", || {
        let ctl = Arc::new(MailboxControl::new());
        let slots = Arc::new(Slots(vec![LoomSlot { ctl: SlotControl::with_words(0, 0), payload: [0; 8] }]));
        let old_wait = DyingWait::new(1);
        let old = Server::claim(view_of(&ctl, &slots), old_wait.clone()).unwrap();
        {
            let client = Client::new(view_of(&ctl, &slots), old_wait.sibling(2));
            let pending = client.try_claim().unwrap().send(1).unwrap();
            let req = old.try_recv().unwrap();
            drop(pending); // SERVING -> ABANDONED
            std::mem::forget(req); // server killed while holding it
        }
        old_wait.die();
        let (c3, s3, nw) = (ctl.clone(), slots.clone(), old_wait.sibling(5));
        let freer = thread::spawn(move || {
            let s = Server::claim(view_of(&c3, &s3), nw).unwrap();
            drop(s);
        });
        let (c4, s4, tw) = (ctl.clone(), slots.clone(), old_wait.sibling(3));
        let tentative = thread::spawn(move || {
            let client = Client::new(view_of(&c4, &s4), tw);
            if let Ok(g) = client.try_claim() {
                drop(g);
            };
        });
        let sleeper = Client::new(view_of(&ctl, &slots), old_wait.sibling(4));
        let g = sleeper.claim().unwrap();
        drop(g);
        freer.join().unwrap();
        tentative.join().unwrap();
        drop(old);
    });
}

/// R1: `reclaim` reads FREE, a client claims the slot and is killed while
/// holding it (right after `try_claim`); `reclaim` then reads the claimer's
/// id in the owner word, finds it dead, and takes the branch meant for "died
/// between storing FREE and clearing its owner": it clears the owner word of
/// a CLAIMED slot. A CLAIMED slot with owner 0 is never reclaimed again (not
/// by `reclaim`, not by a new server's `recover`): leaked for good.
/// (The same model with the racing client on the main thread and the server
/// spawned explored only one interleaving, hence this shape.)
#[test]
fn reclaim_free_branch_vs_claimer_that_dies() {
    model("reclaim vs dying claimer", || {
        let ctl = Arc::new(MailboxControl::new());
        let slots =
            Arc::new(Slots(vec![LoomSlot { ctl: SlotControl::with_words(pack(5, slot::FREE), 0), payload: [0; 8] }]));
        let server_wait = DyingWait::new(1);
        let client_wait = server_wait.sibling(2);
        let (c2, s2, sw) = (ctl.clone(), slots.clone(), server_wait.clone());
        let server = thread::spawn(move || {
            let server = Server::claim(view_of(&c2, &s2), sw).unwrap();
            server.reclaim();
        });
        {
            let client = Client::new(view_of(&ctl, &slots), client_wait.clone());
            if let Ok(guard) = client.try_claim() {
                std::mem::forget(guard);
            }
            client_wait.die();
        }
        server.join().unwrap();
        let st = view_of(&ctl, &slots).stats().slots_by_state;
        let again = Server::claim(view_of(&ctl, &slots), server_wait.sibling(4)).unwrap();
        let freed = again.reclaim();
        let third = Client::new(view_of(&ctl, &slots), server_wait.sibling(3));
        assert!(third.try_claim().is_ok(), "slot leaked: {st:?}; a later reclaim freed {freed}");
    });
}
