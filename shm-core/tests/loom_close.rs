//! Loom models of clean close (format 2.0) racing waiters, serving and
//! takeovers (from an adversarial review; the taken-over-server model failed
//! before the close was decided in the role word). CI runs them with
//! `LOOM_MAX_PREEMPTIONS=3`.
//!
//! `RUSTFLAGS="--cfg shm_loom" LOOM_MAX_PREEMPTIONS=2 cargo test -p shm-core --release --test loom_close`
#![cfg(shm_loom)]

mod loom_support;

use loom_support::{model, qview, view_of, DyingWait, LoomSlot, Ring, Slots};

use loom::sync::atomic::Ordering;
use loom::sync::Arc;
use loom::thread;
use shm_core::format::mailbox::{MailboxControl, SlotControl};
use shm_core::format::queue::QueueControl;
use shm_core::mailbox::{Client, Server};
use shm_core::queue::{Consumer, Producer};
use shm_core::{CallError, RecvError, SendError};

/// A producer blocked (no timeout) on a full ring gets `Closed` when the
/// consumer drops; a lost wake-up is a loom deadlock.
#[test]
fn queue_consumer_close_wakes_a_blocked_producer() {
    model("consumer close wakes producer", || {
        let ctl = Arc::new(QueueControl::new());
        let ring = Arc::new(Ring(vec![0u64; 8].into_boxed_slice()));
        let w = DyingWait::new(1);
        // Consumer claimed first, so the producer sees its role.
        let rx = Consumer::claim(qview(&ctl, &ring), w.sibling(2)).unwrap();
        let (c2, r2, w2) = (ctl.clone(), ring.clone(), w.clone());
        let producer = thread::spawn(move || {
            let mut tx = Producer::claim(qview(&c2, &r2), w2).unwrap();
            // max_message(64) = 24: a 32-byte frame; two fill the ring.
            tx.send(&[1; 24]).unwrap();
            tx.send(&[2; 24]).unwrap();
            tx.send(&[3; 24])
        });
        drop(rx);
        assert_eq!(producer.join().unwrap(), Err(SendError::Closed));
    });
}

/// The server serves what it finds without blocking, then drops; the client
/// calls without timeout. The call must end (no deadlock) with the response
/// or `Closed`, never `Dropped`, and a `Closed` call was never served.
#[test]
fn mailbox_close_races_serving() {
    model("close vs serving", || {
        let ctl = Arc::new(MailboxControl::new());
        let slots = Arc::new(Slots(vec![LoomSlot { ctl: SlotControl::new(), payload: [0; 8] }]));
        let w = DyingWait::new(1);
        let server = Server::claim(view_of(&ctl, &slots), w.clone()).unwrap();
        let (c2, s2, w2) = (ctl.clone(), slots.clone(), w.sibling(2));
        let client = thread::spawn(move || {
            let client = Client::new(view_of(&c2, &s2), w2);
            let mut out = [0u8; 8];
            client.call(b"ab", &mut out).map(|n| out[..n].to_vec())
        });
        let served = match server.try_recv() {
            Ok(mut req) => {
                let n = req.len();
                req.buf_mut()[..n].make_ascii_uppercase();
                req.respond(n).unwrap();
                true
            }
            Err(_) => false,
        };
        drop(server);
        let got = client.join().unwrap();
        match got {
            Ok(v) => {
                assert!(served);
                assert_eq!(v, b"AB");
            }
            Err(CallError::Closed) => assert!(!served, "served, but the client saw Closed"),
            Err(e) => panic!("unexpected {e:?}"),
        }
    });
}

/// A server thought dead (id 1) is taken over by server 3 while it drops.
/// Its drop must not close the new server's mailbox: a client's send after
/// both are done must not be refused with `Closed`.
#[test]
fn mailbox_drop_of_a_taken_over_server_leaves_the_new_one_open() {
    model("taken-over server drop", || {
        let ctl = Arc::new(MailboxControl::new());
        let slots = Arc::new(Slots(vec![LoomSlot { ctl: SlotControl::new(), payload: [0; 8] }]));
        let old_wait = DyingWait::new(1);
        let old = Server::claim(view_of(&ctl, &slots), old_wait.clone()).unwrap();
        // Liveness says 1 is dead (hung, paused, a bad liveness answer).
        old_wait.die();
        let dropped = Arc::new(loom::sync::atomic::AtomicBool::new(false));
        let (c2, s2, w3, d2) = (ctl.clone(), slots.clone(), old_wait.sibling(3), dropped.clone());
        let taker = thread::spawn(move || {
            // The role may be between the old holder's release and us:
            // `claim_role` answers Busy { holder: 0 } then (one CAS, no retry).
            let server = match Server::claim(view_of(&c2, &s2), w3.clone()) {
                Ok(s) => s,
                Err(_) => Server::claim(view_of(&c2, &s2), w3.clone()).unwrap(),
            };
            while !d2.load(Ordering::SeqCst) {
                thread::yield_now();
            }
            // Server 3 holds the role and is alive: a send must not be refused.
            let client = Client::new(view_of(&c2, &s2), w3.sibling(2));
            let sent = client.try_claim().unwrap().send(1).map(drop);
            drop(client);
            drop(server);
            sent
        });
        drop(old);
        dropped.store(true, Ordering::SeqCst);
        let sent = taker.join().unwrap();
        assert!(sent.is_ok(), "server 3 holds the role, yet the send got {:?}", sent.err());
    });
}

/// A producer that drops after a re-claim race: A sends and drops, B claims
/// and sends; the consumer receives both messages in order (maybe a Closed
/// in between), never loses one.
#[test]
fn queue_producer_reclaim_after_close_loses_nothing() {
    model("producer reclaim", || {
        let ctl = Arc::new(QueueControl::new());
        let ring = Arc::new(Ring(vec![0u64; 8].into_boxed_slice()));
        let w = DyingWait::new(1);
        let mut rx = Consumer::claim(qview(&ctl, &ring), w.sibling(2)).unwrap();
        let (c2, r2, w2) = (ctl.clone(), ring.clone(), w.clone());
        let producers = thread::spawn(move || {
            let mut a = Producer::claim(qview(&c2, &r2), w2.clone()).unwrap();
            a.send(&[1; 4]).unwrap();
            drop(a);
            let mut b = Producer::claim(qview(&c2, &r2), w2.sibling(3)).unwrap();
            b.send(&[2; 4]).unwrap();
            drop(b);
        });
        let mut buf = [0u8; 8];
        let mut got = Vec::new();
        let mut closed = 0;
        while got.len() < 2 {
            match rx.try_recv(&mut buf) {
                Ok(n) => got.push(buf[..n].to_vec()),
                Err(RecvError::Closed) => {
                    closed += 1;
                    thread::yield_now();
                }
                Err(RecvError::Empty) => thread::yield_now(),
                Err(e) => panic!("{e:?}"),
            }
        }
        let _ = closed;
        assert_eq!(got, vec![vec![1; 4], vec![2; 4]]);
        producers.join().unwrap();
        assert_eq!(rx.try_recv(&mut buf), Err(RecvError::Closed));
    });
}
