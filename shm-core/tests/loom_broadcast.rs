//! Loom models of the broadcast channel. Overwrite policy: a publisher and
//! two subscribers, one reading as the messages come, one that lags a whole
//! ring. Block policy: a publisher and a subscriber that both sleep (the
//! publisher for room, the subscriber for messages), announcing what they
//! wait for; a wake-up either side fails to make leaves the other asleep
//! for good, which loom reports. Run with `RUSTFLAGS="--cfg shm_loom"` (see
//! `loom.rs`).
#![cfg(shm_loom)]

mod loom_support;

use std::ptr::NonNull;
use std::time::Duration;

use loom::sync::atomic::AtomicBool as LoomBool;
use loom::sync::atomic::AtomicU32 as LoomWord;
use loom::sync::atomic::Ordering::SeqCst;
use loom::sync::Arc;
use loom::thread;
use loom_support::{model, DyingWait};
use shm_core::broadcast::{BroadcastView, Policy, Publisher, Subscriber};
use shm_core::format::broadcast::{BroadcastControl, SubscriberControl};
use shm_core::RecvError;

/// The channel's words: the publisher line, two subscriber lines, and a
/// 16-byte ring of loom words (two empty frames).
struct Channel {
    ctl: BroadcastControl,
    subs: Vec<SubscriberControl>,
    ring: Vec<LoomWord>,
}

impl Channel {
    fn new() -> Self {
        Self::with(2, 16)
    }

    /// `subs` subscriber lines and a ring of `bytes` (a multiple of 4).
    fn with(subs: usize, bytes: usize) -> Self {
        Self {
            ctl: BroadcastControl::new(),
            subs: (0..subs).map(|_| SubscriberControl::new()).collect(),
            ring: (0..bytes / 4).map(|_| LoomWord::new(0)).collect(),
        }
    }

    fn view(&self) -> BroadcastView<'_> {
        self.view_as(Policy::Overwrite)
    }

    fn view_as(&self, policy: Policy) -> BroadcastView<'_> {
        let ring = NonNull::new(self.ring.as_ptr() as *mut u8).unwrap();
        let bytes = (self.ring.len() * 4) as u32;
        // SAFETY: the ring as loom words (the loom contract of
        // `BroadcastView::new`) and the subscriber lines, borrowed for the
        // view's life; touched only through the protocol.
        unsafe { BroadcastView::new(&self.ctl, &self.subs, ring, bytes, policy, 0) }
    }
}

/// Three empty messages into a ring of two frames: the first is overwritten
/// by the third. The subscriber that reads along accounts for all three
/// (received + missed), in order; the one that reads only afterwards is told
/// it missed exactly two (the publisher's `intent` runs half a ring, one
/// frame, past the third, and the second message is published under the
/// first's intent, with no store of it), then gets the third.
#[test]
fn broadcast_overwrite_lag_is_counted_and_never_torn() {
    model("broadcast", || {
        let channel = Arc::new(Channel::new());
        let publisher_wait = DyingWait::new(1);
        let reader_wait = publisher_wait.sibling(2);
        let laggard_wait = publisher_wait.sibling(3);
        // Both join before the first message.
        let mut reader = Subscriber::join(channel.view(), reader_wait).unwrap();
        let mut laggard = Subscriber::join(channel.view(), laggard_wait).unwrap();
        let c = channel.clone();
        let publisher = thread::spawn(move || {
            let mut tx = Publisher::claim(c.view(), publisher_wait).unwrap();
            for _ in 0..3 {
                tx.try_publish(&[]).unwrap();
            }
        });
        // This thread reads along, as the messages come.
        let (mut received, mut missed, mut last) = (0u64, 0u64, None::<u32>);
        while received + missed < 3 {
            match reader.try_read() {
                Ok(msg) => {
                    let seq = msg.seq();
                    match msg.finish() {
                        Ok(()) => {
                            assert!(last.is_none_or(|l| seq > l), "{seq} after {last:?}");
                            assert_eq!(seq as u64, received + missed, "sequence numbers account for every message (received {received}, missed {missed}, last {last:?})");
                            last = Some(seq);
                            received += 1;
                        }
                        Err(RecvError::Lagged { missed: m }) => missed += m,
                        Err(e) => panic!("{e}"),
                    }
                }
                Err(RecvError::Lagged { missed: m }) => missed += m,
                Err(RecvError::Empty) => thread::yield_now(),
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(received + missed, 3);
        publisher.join().unwrap();
        let mut buf = [0u8; 0];
        assert_eq!(laggard.try_recv(&mut buf), Err(RecvError::Lagged { missed: 2 }));
        let last = laggard.try_read().unwrap();
        assert_eq!(last.seq(), 2);
        last.finish().unwrap();
        // Then the end: the publisher left when its thread ended.
        assert!(matches!(laggard.try_read(), Err(RecvError::Closed)));
    });
}

/// Block policy, both sides asleep whenever they must wait: six empty
/// messages (8-byte frames) through a 32-byte ring (four frames), so the
/// publisher waits for room (announcing the tail it needs, 8 bytes past the
/// frame) and the subscriber waits for messages (announcing its position).
/// Every message arrives, in order; a missed wake-up is a deadlock.
#[test]
fn broadcast_block_sleepers_are_always_woken() {
    model("broadcast block", || {
        let channel = Arc::new(Channel::with(1, 32));
        let publisher_wait = DyingWait::new(1);
        let reader_wait = publisher_wait.sibling(2);
        let mut reader = Subscriber::join(channel.view_as(Policy::Block), reader_wait).unwrap();
        let c = channel.clone();
        let done = Arc::new(LoomBool::new(false));
        let d = done.clone();
        let publisher = thread::spawn(move || {
            let mut tx = Publisher::claim(c.view_as(Policy::Block), publisher_wait).unwrap();
            for _ in 0..6 {
                tx.publish_timeout(&[], Duration::from_secs(1)).unwrap();
            }
            // The close wakes every sleeper: keep it from rescuing a reader
            // that the publishing itself should have woken.
            while !d.load(SeqCst) {
                thread::yield_now();
            }
        });
        for seq in 0..6 {
            let msg = reader.read_timeout(Duration::from_secs(1)).unwrap();
            assert_eq!(msg.seq(), seq);
            msg.finish().unwrap();
        }
        done.store(true, SeqCst);
        publisher.join().unwrap();
    });
}

/// Block policy: a subscriber joins while the publisher runs. Eight empty
/// messages (8-byte frames) through a 16-byte ring (two frames), so the
/// publisher can move more than a ring between the joiner's look at `head`
/// and its `tail` store. The joiner must never lose a message it joined
/// for: no `Lagged`, consecutive sequence numbers from its first. (Review
/// 2026-12-03: the publisher skipped a joiner's stale tail and overwrote
/// what it was about to read.)
#[test]
fn broadcast_block_joiner_loses_nothing() {
    model("broadcast block join", || {
        let channel = Arc::new(Channel::with(1, 16));
        let publisher_wait = DyingWait::new(1);
        let reader_wait = publisher_wait.sibling(2);
        let c = channel.clone();
        let publisher = thread::spawn(move || {
            let mut tx = Publisher::claim(c.view_as(Policy::Block), publisher_wait).unwrap();
            for _ in 0..8 {
                while tx.try_publish(&[]).is_err() {
                    thread::yield_now();
                }
            }
        });
        let mut reader = Subscriber::join(channel.view_as(Policy::Block), reader_wait).unwrap();
        let mut last = None::<u32>;
        // Until the publisher's close (when its thread ends), which says
        // every message published was received.
        loop {
            match reader.try_read() {
                Ok(msg) => {
                    let seq = msg.seq();
                    msg.finish().unwrap();
                    assert!(last.is_none_or(|l| seq == l + 1), "{seq} after {last:?}");
                    last = Some(seq);
                }
                Err(RecvError::Closed) => break,
                Err(RecvError::Empty) => thread::yield_now(),
                Err(e) => panic!("a Block joiner got {e}"),
            }
        }
        publisher.join().unwrap();
    });
}
