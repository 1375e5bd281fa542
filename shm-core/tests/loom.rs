//! Loom models of the semaphore, queue and mailbox protocols: every
//! interleaving (within the preemption bound) of two threads running them.
//!
//! Run with:
//! `RUSTFLAGS="--cfg shm_loom" LOOM_MAX_PREEMPTIONS=2 cargo test -p shm-core --release --test loom`
//!
//! The wait strategy here models a futex with loom's mutex and condition
//! variable: checking the word and going to sleep is atomic with respect to
//! a wake, as with `FUTEX_WAIT`. A lost wake-up therefore leaves a thread
//! asleep forever, which loom reports as a deadlock.
#![cfg(shm_loom)]

mod loom_support;

use loom_support::{model, qview, view_of, DyingWait as LoomWait, LoomSlot, Ring, Slots};

use loom::sync::atomic::Ordering;
use loom::sync::Arc;
use loom::thread;
use shm_core::format::mailbox::{pack, slot, MailboxControl, SlotControl};
use shm_core::format::queue::QueueControl;
use shm_core::format::semaphore::SemaphoreWords;
use shm_core::mailbox::{Client, Server};
use shm_core::queue::{Consumer, Producer};
use shm_core::semaphore::CountingSemaphore;
use shm_core::Semaphore;

#[test]
fn semaphore_post_wakes_a_sleeping_waiter() {
    model("semaphore", || {
        let words = Arc::new(SemaphoreWords::new(0));
        let (a, b) = LoomWait::pair();
        let w2 = words.clone();
        let waiter = thread::spawn(move || {
            let sem = CountingSemaphore::new(&w2, b);
            sem.wait().unwrap();
            sem.wait().unwrap();
        });
        let sem = CountingSemaphore::new(&words, a);
        sem.post().unwrap();
        sem.post().unwrap();
        waiter.join().unwrap();
        assert_eq!(words.count(), 0);
    });
}

#[test]
fn queue_messages_arrive_in_order_across_a_wrap() {
    model("queue", || {
        let ctl = Arc::new(QueueControl::new());
        // 64-byte ring: 20-byte messages take 32-byte frames, so the third
        // message wraps.
        let ring = Arc::new(Ring(vec![0u64; 8].into_boxed_slice()));
        let (a, b) = LoomWait::pair();
        let (c2, r2) = (ctl.clone(), ring.clone());
        let producer = thread::spawn(move || {
            let mut tx = Producer::claim(qview(&c2, &r2), a).unwrap();
            for i in 1..=3u8 {
                tx.send(&[i; 20]).unwrap();
            }
        });
        let mut rx = Consumer::claim(qview(&ctl, &ring), b).unwrap();
        let mut buf = [0u8; 24];
        for i in 1..=3u8 {
            let n = rx.recv(&mut buf).unwrap();
            assert_eq!(&buf[..n], &[i; 20]);
        }
        producer.join().unwrap();
    });
}

#[test]
fn mailbox_call_gets_its_own_response() {
    model("mailbox", || {
        let ctl = Arc::new(MailboxControl::new());
        let slots = Arc::new(Slots(vec![LoomSlot { ctl: SlotControl::new(), payload: [0; 8] }]));
        let (a, b) = LoomWait::pair();
        let (c2, s2) = (ctl.clone(), slots.clone());
        let server = thread::spawn(move || {
            let server = Server::claim(view_of(&c2, &s2), a).unwrap();
            let mut req = server.recv().unwrap();
            let n = req.len();
            req.buf_mut()[..n].make_ascii_uppercase();
            req.respond(n).unwrap();
        });
        let client = Client::new(view_of(&ctl, &slots), b);
        let mut out = [0u8; 8];
        let n = client.call(b"ab", &mut out).unwrap();
        assert_eq!(&out[..n], b"AB");
        server.join().unwrap();
    });
}

/// Issue 9, defect 1: a client (id 9) freed the slot and died before its
/// owner word was cleared; a server reclaims dead clients' slots while two
/// live clients claim. No interleaving may give the slot to both: the
/// reclaimer must never free a claim made by a live client. (On the old
/// claim path, which CAS'd the state first and stored the owner after it,
/// the reclaimer could read the dead id next to the live claim and free it.)
#[test]
fn mailbox_reclaim_never_frees_a_live_claim() {
    const DEAD: u32 = 9;
    model("mailbox reclaim", || {
        let ctl = Arc::new(MailboxControl::new());
        // FREE with request id 5, owner word still naming the dead client.
        let slot = LoomSlot { ctl: SlotControl::with_words(pack(5, slot::FREE), DEAD), payload: [0; 8] };
        let slots = Arc::new(Slots(vec![slot]));
        let holders = Arc::new(loom::sync::atomic::AtomicUsize::new(0));
        let (a, _) = LoomWait::pair();
        a.bury(DEAD);
        let (b, c) = (a.sibling(2), a.sibling(3));
        let (c2, s2) = (ctl.clone(), slots.clone());
        let server = thread::spawn(move || {
            let server = Server::claim(view_of(&c2, &s2), a).unwrap();
            server.reclaim();
            server.reclaim();
        });
        let (c3, s3, h3) = (ctl.clone(), slots.clone(), holders.clone());
        let other = thread::spawn(move || claim_once(&Client::new(view_of(&c3, &s3), c), &h3));
        claim_once(&Client::new(view_of(&ctl, &slots), b), &holders);
        other.join().unwrap();
        server.join().unwrap();
    });
}

/// Claims the one slot if it is free and checks this client holds it alone.
fn claim_once(client: &Client<'_, LoomWait>, holders: &loom::sync::atomic::AtomicUsize) {
    for _ in 0..2 {
        if let Ok(guard) = client.try_claim() {
            assert_eq!(holders.fetch_add(1, Ordering::SeqCst), 0, "two clients hold one slot");
            thread::yield_now();
            holders.fetch_sub(1, Ordering::SeqCst);
            drop(guard);
            return;
        }
        thread::yield_now();
    }
}

/// Clean close: a consumer blocked without a timeout receives what was
/// sent, then `Closed` when the producer drops; a lost wake-up would leave
/// it asleep (a deadlock for loom).
#[test]
fn queue_close_wakes_a_blocked_consumer() {
    model("queue close", || {
        let ctl = Arc::new(QueueControl::new());
        let ring = Arc::new(Ring(vec![0u64; 8].into_boxed_slice()));
        let (a, b) = LoomWait::pair();
        let (c2, r2) = (ctl.clone(), ring.clone());
        let producer = thread::spawn(move || {
            let mut tx = Producer::claim(qview(&c2, &r2), a).unwrap();
            tx.send(&[7; 4]).unwrap();
        });
        let mut rx = Consumer::claim(qview(&ctl, &ring), b).unwrap();
        let mut buf = [0u8; 8];
        assert_eq!(rx.recv(&mut buf), Ok(4));
        assert_eq!(rx.recv(&mut buf), Err(shm_core::RecvError::Closed));
        producer.join().unwrap();
    });
}

/// Clean close of a mailbox: a client waiting (no timeout) for a request
/// the server never takes gets `Closed` when the server drops.
#[test]
fn mailbox_close_answers_a_waiting_client() {
    model("mailbox close", || {
        let ctl = Arc::new(MailboxControl::new());
        let slots = Arc::new(Slots(vec![LoomSlot { ctl: SlotControl::new(), payload: [0; 8] }]));
        let (a, b) = LoomWait::pair();
        let server = Server::claim(view_of(&ctl, &slots), a).unwrap();
        let (c2, s2) = (ctl.clone(), slots.clone());
        let client = thread::spawn(move || {
            let client = Client::new(view_of(&c2, &s2), b);
            client.call(b"ab", &mut [0u8; 8])
        });
        drop(server);
        assert_eq!(client.join().unwrap(), Err(shm_core::CallError::Closed));
    });
}
