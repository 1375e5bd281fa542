//! The broadcast channel on mock memory: roles and slots, both policies,
//! lag, late joins, close, hostile words, and stress across threads.

use std::vec::Vec;

use super::Policy;
use crate::error::{ChannelName, ClaimError, Corruption, RecvError, Role, SendError};
use crate::format::broadcast as b;
use crate::format::AREAS_OFFSET;
use crate::mock::{Graveyard, MockRegion, ThreadWait};
use crate::test_support::{LONG, SHORT};
use crate::{Layout, Segment};

const RING: usize = AREAS_OFFSET + b::SUBSCRIBERS + 3 * b::SUBSCRIBER_LINE;

/// A broadcast channel "b" (256-byte ring, 3 subscriber slots).
fn layout(policy: Policy) -> Layout {
    Layout::new().broadcast("b", 256, 3, policy).unwrap()
}

fn fresh(policy: Policy) -> MockRegion {
    let memory = MockRegion::new(layout(policy).size());
    Segment::create(memory.region(), &layout(policy), 1, 0).unwrap();
    memory
}

fn open(memory: &MockRegion) -> Segment<'_> {
    Segment::open(memory.region(), &ThreadWait::new(9), SHORT).unwrap()
}

/// A message of `len` bytes whose content encodes `n`.
fn message(n: u32, len: usize) -> Vec<u8> {
    (0..len).map(|i| (n as usize).wrapping_mul(31).wrapping_add(i) as u8).collect()
}

#[test]
fn every_subscriber_gets_every_message_in_order() {
    for policy in [Policy::Block, Policy::Overwrite] {
        let memory = fresh(policy);
        let seg = open(&memory);
        let mut tx = seg.publisher("b", ThreadWait::new(1)).unwrap();
        let mut subs: Vec<_> = (2..5).map(|id| seg.subscriber("b", ThreadWait::new(id)).unwrap()).collect();
        let mut buf = [0u8; 128];
        // Over several laps of the ring, with a wrap marker now and then.
        for n in 0..200u32 {
            let len = (n as usize * 7) % 100;
            tx.try_publish(&message(n, len)).unwrap();
            for sub in &mut subs {
                let got = sub.try_recv(&mut buf).unwrap();
                assert_eq!(&buf[..got], &message(n, len)[..], "{policy:?} message {n}");
            }
        }
        for sub in &mut subs {
            assert_eq!(sub.try_recv(&mut buf), Err(RecvError::Empty));
            assert_eq!(sub.missed(), 0);
        }
        assert_eq!(tx.subscribers(), 3);
    }
}

#[test]
fn slots_are_limited_and_freed_by_leaving_or_dying() {
    let memory = fresh(Policy::Block);
    let seg = open(&memory);
    let graveyard = Graveyard::new();
    let _tx = seg.publisher("b", ThreadWait::new(1)).unwrap();
    assert_eq!(
        seg.publisher("b", ThreadWait::new(2)).err(),
        Some(ClaimError::Busy { channel: ChannelName::new("b"), role: Role::Publisher, holder: 1 })
    );
    let a = seg.subscriber("b", ThreadWait::with_graveyard(2, &graveyard)).unwrap();
    let b2 = seg.subscriber("b", ThreadWait::with_graveyard(3, &graveyard)).unwrap();
    // Borrowed, so that forgetting the subscriber below leaks no heap.
    let w4 = ThreadWait::with_graveyard(4, &graveyard);
    let c = seg.subscriber("b", &w4).unwrap();
    assert_eq!((a.slot(), b2.slot(), c.slot()), (0, 1, 2));
    assert_eq!(
        seg.subscriber("b", ThreadWait::new(5)).err(),
        Some(ClaimError::Busy { channel: ChannelName::new("b"), role: Role::Subscriber, holder: 4 })
    );
    drop(b2);
    let d = seg.subscriber("b", ThreadWait::new(5)).unwrap();
    assert_eq!(d.slot(), 1);
    core::mem::forget(c);
    graveyard.bury(4);
    let e = seg.subscriber("b", ThreadWait::with_graveyard(6, &graveyard)).unwrap();
    assert_eq!(e.slot(), 2, "a dead subscriber's slot is taken over");
    let text = std::format!("{}", seg.subscriber("b", ThreadWait::new(7)).err().unwrap());
    assert!(text.contains("no free subscriber slot") && text.contains("declare more subscribers"), "{text}");
}

/// New-user review 2026-12-03: an overwrite publisher never waits, so
/// nothing judged its subscribers, and `subscribers()` still counted one
/// killed seconds before. It now counts live ones; each side can also ask
/// whether its peer lives.
#[test]
fn an_overwrite_publisher_counts_live_subscribers_and_peers_can_be_asked() {
    let memory = fresh(Policy::Overwrite);
    let seg = open(&memory);
    let graveyard = Graveyard::new();
    let w1 = ThreadWait::with_graveyard(1, &graveyard);
    let w2 = ThreadWait::with_graveyard(2, &graveyard);
    let w3 = ThreadWait::with_graveyard(3, &graveyard);
    let sub = seg.subscriber("b", &w2).unwrap();
    assert!(!sub.publisher_alive(), "no publisher yet");
    let mut tx = seg.publisher("b", &w1).unwrap();
    let doomed = seg.subscriber("b", &w3).unwrap();
    assert_eq!(tx.subscribers(), 2);
    assert!(sub.publisher_alive());
    core::mem::forget(doomed);
    graveyard.bury(3);
    tx.try_publish(b"x").unwrap();
    assert_eq!(tx.subscribers(), 1, "the dead one is let go");
    core::mem::forget(tx);
    graveyard.bury(1);
    assert!(!sub.publisher_alive(), "the publisher died");
}

#[test]
fn block_waits_for_the_slowest_live_subscriber_and_drops_the_dead() {
    let memory = fresh(Policy::Block);
    let seg = open(&memory);
    let graveyard = Graveyard::new();
    let mut tx = seg.publisher("b", ThreadWait::with_graveyard(1, &graveyard)).unwrap();
    let mut fast = seg.subscriber("b", ThreadWait::new(2)).unwrap();
    let w3 = ThreadWait::with_graveyard(3, &graveyard);
    let mut slow = seg.subscriber("b", &w3).unwrap();
    let mut buf = [0u8; 128];
    // 56-byte messages take 64-byte frames: four fill the 256-byte ring.
    for n in 0..4 {
        tx.try_publish(&message(n, 56)).unwrap();
        fast.try_recv(&mut buf).unwrap();
    }
    assert_eq!(tx.try_publish(&message(4, 56)), Err(SendError::Full));
    assert_eq!(slow.try_recv(&mut buf).unwrap(), 56);
    tx.try_publish(&message(4, 56)).unwrap();
    assert_eq!(tx.try_publish(&message(5, 56)), Err(SendError::Full));
    assert_eq!(tx.publish_timeout(&message(5, 56), SHORT), Err(SendError::Timeout));
    // The slow subscriber dies holding its slot: the publisher, waiting for
    // it, lets the slot go and goes on.
    core::mem::forget(slow);
    graveyard.bury(3);
    tx.publish_timeout(&message(5, 56), LONG).unwrap();
    for n in 4..6 {
        let got = fast.try_recv(&mut buf).unwrap();
        assert_eq!(&buf[..got], &message(n, 56)[..]);
    }
    assert_eq!(tx.subscribers(), 1);
}

#[test]
fn a_leaving_subscriber_releases_a_waiting_publisher() {
    let memory = fresh(Policy::Block);
    let seg = open(&memory);
    let mut tx = seg.publisher("b", ThreadWait::new(1)).unwrap();
    let slow = seg.subscriber("b", ThreadWait::new(3)).unwrap();
    for n in 0..4 {
        tx.try_publish(&message(n, 56)).unwrap();
    }
    std::thread::scope(|s| {
        let waiter = s.spawn(move || tx.publish_timeout(&message(4, 56), LONG));
        drop(slow);
        assert_eq!(waiter.join().unwrap(), Ok(()));
    });
}

#[test]
fn overwrite_tells_a_laggard_what_it_missed_and_resumes_at_the_oldest() {
    let memory = fresh(Policy::Overwrite);
    let seg = open(&memory);
    let mut tx = seg.publisher("b", ThreadWait::new(1)).unwrap();
    let mut lag = seg.subscriber("b", ThreadWait::new(2)).unwrap();
    let mut buf = [0u8; 128];
    tx.try_publish(&message(0, 56)).unwrap();
    assert_eq!(lag.try_recv(&mut buf).unwrap(), 56);
    // Ten 64-byte frames into a 256-byte ring: the last three are retained.
    // The publisher announces `intent` 16 bytes (a sixteenth of the ring)
    // past each frame, which reaches into the fourth newest.
    for n in 1..11 {
        tx.try_publish(&message(n, 56)).unwrap();
    }
    assert_eq!(lag.try_recv(&mut buf), Err(RecvError::Lagged { missed: 7 }));
    assert_eq!(lag.missed(), 7);
    for n in 8..11 {
        let got = lag.try_recv(&mut buf).unwrap();
        assert_eq!(&buf[..got], &message(n, 56)[..], "message {n}");
    }
    assert_eq!(lag.try_recv(&mut buf), Err(RecvError::Empty));
    let stats = seg.broadcast_view("b").unwrap().subscriber_stats(0).unwrap();
    assert_eq!((stats.owner, stats.received, stats.missed), (2, 4, 7));
}

#[test]
fn an_in_place_read_overwritten_meanwhile_reports_the_lag() {
    let memory = fresh(Policy::Overwrite);
    let seg = open(&memory);
    let mut tx = seg.publisher("b", ThreadWait::new(1)).unwrap();
    let mut sub = seg.subscriber("b", ThreadWait::new(2)).unwrap();
    tx.try_publish(&message(0, 56)).unwrap();
    let msg = sub.try_read().unwrap();
    assert_eq!((msg.len(), msg.seq()), (56, 0));
    assert!(msg.as_slice().is_none(), "no slice under the overwrite policy");
    // The publisher laps the reader while it holds the message.
    for n in 1..6 {
        tx.try_publish(&message(n, 56)).unwrap();
    }
    // Frames 0 to 2 are gone: `intent` runs 16 bytes past frame 5's end.
    assert_eq!(msg.finish(), Err(RecvError::Lagged { missed: 3 }));
    let mut buf = [0u8; 64];
    let got = sub.try_recv(&mut buf).unwrap();
    assert_eq!(&buf[..got], &message(3, 56)[..]);
}

#[test]
fn in_place_slices_under_the_block_policy() {
    let memory = fresh(Policy::Block);
    let seg = open(&memory);
    let mut tx = seg.publisher("b", ThreadWait::new(1)).unwrap();
    let mut sub = seg.subscriber("b", ThreadWait::new(2)).unwrap();
    let mut loan = tx.try_loan(5).unwrap();
    loan.as_mut_slice().unwrap().copy_from_slice(b"hello");
    loan.commit_len(4);
    let msg = sub.try_read().unwrap();
    assert_eq!(msg.as_slice(), Some(&b"hell"[..]));
    msg.finish().unwrap();
    let overwrite = fresh(Policy::Overwrite);
    let seg = open(&overwrite);
    let mut tx = seg.publisher("b", ThreadWait::new(1)).unwrap();
    assert!(tx.try_loan(5).unwrap().as_mut_slice().is_none());
}

#[test]
fn late_joiners_start_at_the_newest_message_and_close_ends_the_stream() {
    let memory = fresh(Policy::Overwrite);
    let seg = open(&memory);
    let mut tx = seg.publisher("b", ThreadWait::new(1)).unwrap();
    let mut early = seg.subscriber("b", ThreadWait::new(2)).unwrap();
    tx.try_publish(b"before").unwrap();
    let mut late = seg.subscriber("b", ThreadWait::new(3)).unwrap();
    tx.try_publish(b"after").unwrap();
    drop(tx);
    let mut buf = [0u8; 16];
    let n = early.try_recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"before");
    let n = late.try_recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"after", "a late joiner misses what came before it");
    for sub in [&mut early, &mut late] {
        if sub.slot() == 0 {
            sub.try_recv(&mut buf).unwrap();
        }
        assert_eq!(sub.try_recv(&mut buf), Err(RecvError::Closed));
        assert_eq!(sub.recv_timeout(&mut buf, SHORT), Err(RecvError::Closed));
    }
    // A new publisher reopens, and sequence numbers go on.
    let mut tx = seg.publisher("b", ThreadWait::new(4)).unwrap();
    tx.try_publish(b"again").unwrap();
    let msg = late.try_read().unwrap();
    assert_eq!(msg.seq(), 2);
}

#[test]
fn too_large_and_small_buffers_are_refused_without_losing_the_message() {
    let memory = fresh(Policy::Block);
    let seg = open(&memory);
    let mut tx = seg.publisher("b", ThreadWait::new(1)).unwrap();
    let mut sub = seg.subscriber("b", ThreadWait::new(2)).unwrap();
    assert_eq!(tx.max_message(), 120);
    assert_eq!(tx.try_publish(&[0; 121]), Err(SendError::TooLarge { len: 121, max: 120 }));
    tx.try_publish(&[7; 100]).unwrap();
    let mut small = [0u8; 10];
    assert_eq!(sub.try_recv(&mut small), Err(RecvError::BufferTooSmall { needed: 100 }));
    let mut big = [0u8; 120];
    assert_eq!(sub.try_recv(&mut big), Ok(100));
}

#[test]
fn a_subscriber_waits_for_the_next_message() {
    let memory = fresh(Policy::Block);
    let seg = open(&memory);
    let mut tx = seg.publisher("b", ThreadWait::new(1)).unwrap();
    let mut sub = seg.subscriber("b", ThreadWait::new(2)).unwrap();
    let mut buf = [0u8; 16];
    assert_eq!(sub.recv_timeout(&mut buf, SHORT), Err(RecvError::Timeout));
    std::thread::scope(|s| {
        let reader = s.spawn(move || sub.recv_timeout(&mut buf, LONG).map(|n| buf[..n].to_vec()));
        tx.try_publish(b"wake").unwrap();
        assert_eq!(reader.join().unwrap(), Ok(b"wake".to_vec()));
    });
}

/// Every word of the area, overwritten with a value the protocol cannot
/// produce: each call that meets it returns an error or a valid result,
/// never panics, and the error names the word.
/// A subscriber that laps at every look gives up looking for the oldest
/// frame and resumes at `head`: a `head` that is no position (not a
/// multiple of 8) is reported, never taken as one (the next read would
/// have indexed the ring off a word: a panic in debug builds, a misaligned
/// atomic in release ones). Found by review, 2026-12-02.
#[test]
fn a_lapping_subscriber_never_resumes_at_an_unaligned_head() {
    let memory = fresh(Policy::Overwrite);
    let seg = open(&memory);
    let word = |off: usize| AREAS_OFFSET + off;
    let mut tx = seg.publisher("b", ThreadWait::new(1)).unwrap();
    let mut sub = seg.subscriber("b", ThreadWait::new(2)).unwrap();
    tx.try_publish(&[1; 8]).unwrap();
    let head = memory.read_u32(word(b::HEAD));
    memory.write_u32(word(b::INTENT), head + 256 + 64); // every read laps
    memory.write_u32(word(b::OLDEST), 4); // and no look finds the oldest
    memory.write_u32(word(b::HEAD), head + 2);
    let mut buf = [0u8; 128];
    assert!(
        matches!(sub.try_recv(&mut buf), Err(RecvError::Corrupted(c)) if c.word == "head"),
        "an unaligned head is reported"
    );
    memory.write_u32(word(b::HEAD), head);
    // Whatever the next read says, it reads aligned words (no panic).
    let _ = sub.try_recv(&mut buf);
}

#[test]
fn hostile_words_are_errors() {
    let corrupt = |word| Corruption::channel(0, word);
    let ch = |word| ClaimError::Corrupted { channel: ChannelName::new("b"), at: corrupt(word) };
    // Claims over a corrupted publisher line.
    let claims: [(usize, u32, Option<ClaimError>); 5] = [
        (b::HEAD, 4, Some(ch("head"))),
        (b::INTENT, 4, Some(ch("intent"))),
        (b::INTENT, 1 << 20, Some(ch("intent"))),
        (b::OLDEST, 8 + (1 << 20), Some(ch("oldest"))),
        (b::PUBLISHED, 77, None),
    ];
    for (word, value, expected) in claims {
        let memory = fresh(Policy::Overwrite);
        memory.write_u32(AREAS_OFFSET + word, value);
        let seg = open(&memory);
        assert_eq!(seg.publisher("b", ThreadWait::new(1)).err(), expected, "word {word} = {value:#x}");
    }
    // Words corrupted in use, then every call of both sides.
    let cases: [(&str, usize, u32, Policy); 12] = [
        ("head: unaligned", b::HEAD, 4 + 64, Policy::Block),
        ("head: a lap ahead", b::HEAD, 64 * 9, Policy::Block),
        ("intent: far ahead", b::INTENT, 1 << 30, Policy::Overwrite),
        ("oldest: garbage", b::OLDEST, 12345, Policy::Overwrite),
        ("published", b::PUBLISHED, u32::MAX, Policy::Overwrite),
        ("publisher_waiting", b::PUBLISHER_WAITING, 7, Policy::Block),
        ("waiting[0]", b::WAITING, u32::MAX, Policy::Block),
        ("tail: a lap behind", b::SUBSCRIBERS + b::TAIL, 64 * 100, Policy::Block),
        ("tail: unaligned", b::SUBSCRIBERS + b::TAIL, 4, Policy::Block),
        ("owner: another id", b::SUBSCRIBERS + b::OWNER, 99, Policy::Block),
        ("frame len", RING - AREAS_OFFSET + b::FRAME_LEN, 0xffff_fff0, Policy::Block),
        ("frame seq", RING - AREAS_OFFSET + b::FRAME_SEQ, 0x8000_0000, Policy::Block),
    ];
    for (what, word, value, policy) in cases {
        let memory = fresh(policy);
        let seg = open(&memory);
        let mut tx = seg.publisher("b", ThreadWait::new(1)).unwrap();
        let mut sub = seg.subscriber("b", ThreadWait::new(2)).unwrap();
        // A full ring (block policy): the publisher's next call loads the
        // tails again.
        for n in 0..4 {
            tx.try_publish(&message(n, 56)).unwrap();
        }
        memory.write_u32(AREAS_OFFSET + word, value);
        let mut buf = [0u8; 128];
        let mut outcomes = Vec::new();
        for n in 0..12 {
            outcomes.push(std::format!("{:?}", tx.publish_timeout(&message(n + 4, 56), SHORT)));
            let got = sub.recv_timeout(&mut buf, SHORT);
            if let Ok(len) = got {
                // Whatever is handed out as a message is one of those sent.
                assert!((0..16).any(|k| buf[..len] == message(k, 56)[..]), "{what}: garbage handed out");
            }
            outcomes.push(std::format!("{got:?}"));
            if let Ok(msg) = sub.try_read() {
                let mut copy = [0u8; 128];
                msg.read_into(&mut copy);
                outcomes.push(std::format!("{:?}", msg.finish()));
            }
        }
        let text = outcomes.join(" ");
        // Words whose corruption must be reported, naming the word; the
        // others (words their writer stores again, counters, flags) must do
        // no harm.
        let named = match what {
            "head: unaligned" | "head: a lap ahead" => text.contains("word: \"head\""),
            "tail: unaligned" => text.contains("word: \"tail\""),
            "frame len" => text.contains("frame len"),
            "frame seq" => text.contains("frame seq"),
            _ => !text.contains("Corrupted"),
        };
        assert!(named, "{what}: {text}");
    }
}

/// Overwrite policy, a publisher and two subscribers on threads, one of
/// them slow: every message a subscriber accepts is intact (its content
/// matches its sequence number), and received + missed accounts for every
/// message published while it was subscribed.
#[test]
fn overwrite_under_threads_never_hands_out_torn_data() {
    const MESSAGES: u32 = if cfg!(miri) { 300 } else { 100_000 };
    let layout = Layout::new().broadcast("b", 1024, 2, Policy::Overwrite).unwrap();
    let memory = MockRegion::new(layout.size());
    let seg = Segment::create(memory.region(), &layout, 1, 0).unwrap();
    let mut tx = seg.publisher("b", ThreadWait::new(1)).unwrap();
    let subs = [seg.subscriber("b", ThreadWait::new(2)).unwrap(), seg.subscriber("b", ThreadWait::new(3)).unwrap()];
    std::thread::scope(|s| {
        for (k, mut sub) in subs.into_iter().enumerate() {
            s.spawn(move || {
                let mut buf = [0u8; 512];
                let (mut received, mut missed, mut lags) = (0u64, 0u64, 0u64);
                let mut last: Option<u32> = None;
                loop {
                    match sub.recv_timeout(&mut buf, LONG) {
                        Ok(n) => {
                            // The first 4 bytes carry the sequence number.
                            let seq = u32::from_le_bytes(buf[..4].try_into().unwrap());
                            assert_eq!(&buf[..n], &stamped(seq)[..], "subscriber {k}: torn message {seq}");
                            if let Some(prev) = last {
                                assert!(seq > prev, "subscriber {k}: {seq} after {prev}");
                            }
                            last = Some(seq);
                            received += 1;
                            if k == 1 && received % 64 == 0 {
                                std::thread::yield_now();
                            }
                        }
                        Err(RecvError::Lagged { missed: m }) => {
                            missed += m;
                            lags += 1;
                        }
                        Err(RecvError::Closed) => break,
                        Err(e) => panic!("subscriber {k}: {e}"),
                    }
                }
                assert_eq!(received + missed, MESSAGES as u64, "subscriber {k}: {lags} lags");
            });
        }
        for n in 0..MESSAGES {
            tx.try_publish(&stamped(n)).unwrap();
        }
        drop(tx);
    });
}

/// A message that carries `seq` in its first 4 bytes and a length and
/// content derived from it.
fn stamped(seq: u32) -> Vec<u8> {
    let len = 4 + (seq as usize * 13) % 200;
    let mut m = message(seq, len);
    m[..4].copy_from_slice(&seq.to_le_bytes());
    m
}

/// Block policy on threads: every subscriber gets every message, in order.
#[test]
fn block_under_threads_loses_nothing() {
    const MESSAGES: u32 = if cfg!(miri) { 200 } else { 50_000 };
    let layout = Layout::new().broadcast("b", 1024, 3, Policy::Block).unwrap();
    let memory = MockRegion::new(layout.size());
    let seg = Segment::create(memory.region(), &layout, 1, 0).unwrap();
    let mut tx = seg.publisher("b", ThreadWait::new(1)).unwrap();
    let subs: Vec<_> = (2..5).map(|id| seg.subscriber("b", ThreadWait::new(id)).unwrap()).collect();
    std::thread::scope(|s| {
        for (k, mut sub) in subs.into_iter().enumerate() {
            s.spawn(move || {
                let mut buf = [0u8; 512];
                for n in 0..MESSAGES {
                    let got = sub.recv_timeout(&mut buf, LONG).unwrap();
                    assert_eq!(&buf[..got], &stamped(n)[..], "subscriber {k}");
                }
                assert_eq!(sub.recv_timeout(&mut buf, LONG), Err(RecvError::Closed));
            });
        }
        for n in 0..MESSAGES {
            tx.publish_timeout(&stamped(n), LONG).unwrap();
        }
        drop(tx);
    });
}

/// A wait strategy that calls `hook` when asked whether `dead` is alive
/// (and says it is not), `alive` when asked about anyone else (who is),
/// and counts its wake-up calls in `wakes`: lets a test act at those exact
/// instants, and count what a side rang.
struct HookWait {
    inner: ThreadWait,
    dead: u32,
    hook: std::boxed::Box<dyn Fn() + Send + Sync>,
    alive: std::boxed::Box<dyn Fn(u32) + Send + Sync>,
    wakes: std::sync::Arc<std::sync::atomic::AtomicU32>,
}

impl HookWait {
    /// Side `id`, everyone alive, no hooks: (it, its wake-up count).
    fn counting(id: u32) -> (Self, std::sync::Arc<std::sync::atomic::AtomicU32>) {
        let wakes = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
        let wait = Self {
            inner: ThreadWait::new(id),
            dead: 0,
            hook: std::boxed::Box::new(|| {}),
            alive: std::boxed::Box::new(|_| {}),
            wakes: wakes.clone(),
        };
        (wait, wakes)
    }
}

impl crate::Wait for HookWait {
    type Deadline = crate::wait::HostDeadline;
    fn deadline(&self, t: Option<core::time::Duration>) -> Self::Deadline {
        self.inner.deadline(t)
    }
    fn expired(&self, d: &mut Self::Deadline) -> bool {
        self.inner.expired(d)
    }
    fn park(&self, w: &crate::AtomicU32, e: u32, d: &mut Self::Deadline) {
        self.inner.park(w, e, d)
    }
    fn wake(&self, w: &crate::AtomicU32, c: u32) {
        self.wakes.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.inner.wake(w, c)
    }
    fn self_id(&self) -> u32 {
        self.inner.self_id()
    }
    fn is_alive(&self, id: u32) -> bool {
        if id == self.dead {
            (self.hook)();
            return false;
        }
        (self.alive)(id);
        true
    }
}

/// Review finding: the block publisher, finding the slowest subscriber
/// dead, released whoever held the slot when it looked again, so a joiner
/// that took the dead slot over at that instant lost it while alive (and
/// then lagged under the block policy). Now only an id judged dead is let
/// go: the joiner keeps its slot and the publisher waits for it.
#[test]
fn a_dead_subscribers_slot_taken_over_meanwhile_stays_with_the_joiner() {
    let memory = std::sync::Arc::new(fresh(Policy::Block));
    let owner = AREAS_OFFSET + b::SUBSCRIBERS + b::OWNER;
    let tail = AREAS_OFFSET + b::SUBSCRIBERS + b::TAIL;
    let seg = open(&memory);
    let (joiner, joined) = (memory.clone(), memory.clone());
    let wait = HookWait {
        inner: ThreadWait::new(1),
        dead: 3,
        // A joiner claims the slot from the dead holder right now...
        hook: std::boxed::Box::new(move || joiner.write_u32(owner, 77)),
        // ...and, once the publisher has judged it alive, stores its tail
        // at the head (four 64-byte frames), as `join` does.
        alive: std::boxed::Box::new(move |id| {
            if id == 77 {
                joined.write_u32(tail, 4 * 64);
            }
        }),
        wakes: std::sync::Arc::default(),
    };
    let mut tx = seg.publisher("b", wait).unwrap();
    let w3 = ThreadWait::new(3);
    let dead = seg.subscriber("b", &w3).unwrap();
    for n in 0..4 {
        tx.try_publish(&message(n, 56)).unwrap();
    }
    core::mem::forget(dead);
    // The wait for the dead one's room ends once the joiner's tail is seen.
    tx.publish_timeout(&message(4, 56), LONG).unwrap();
    assert_eq!(memory.read_u32(owner), 77, "the live joiner keeps its slot");
}

/// Review finding: a subscriber between its claim of a slot and its first
/// `tail` store shows the slot held with a tail more than a ring behind;
/// the publisher reported that as a corrupted `tail`. It is not corruption:
/// the publisher holds the ring for the joiner (since 2026-12-03, see
/// `a_stale_joiner_tail_holds_the_ring_until_its_fresh_one`) and goes on
/// once the joiner's tail is there.
#[test]
fn a_joiner_between_claim_and_tail_is_not_corruption() {
    let memory = fresh(Policy::Block);
    let seg = open(&memory);
    let mut tx = seg.publisher("b", ThreadWait::new(1)).unwrap();
    for n in 0..20 {
        tx.try_publish(&message(n, 56)).unwrap();
    }
    // What `Subscriber::join` leaves right after its claim of slot 0.
    memory.write_u32(AREAS_OFFSET + b::SUBSCRIBERS + b::OWNER, 5);
    assert_eq!(tx.publish_timeout(&message(20, 56), SHORT), Err(SendError::Timeout));
    // The joiner's tail store: at the head.
    let head = memory.read_u32(AREAS_OFFSET + b::HEAD);
    memory.write_u32(AREAS_OFFSET + b::SUBSCRIBERS + b::TAIL, head);
    for n in 20..23 {
        tx.try_publish(&message(n, 56)).unwrap();
    }
}

/// Review 2026-12-03: a joiner loads `head`, is preempted while the
/// publisher runs more than a ring further, and stores that stale `tail`;
/// then loads `head` again and is preempted before storing the fresh one.
/// The publisher skipped the stale tail as nobody's and took the whole
/// ring past its own head, overwriting messages from the joiner's start
/// before it read them (Block policy: `Lagged`, reproduced with two delays
/// in `join`). The stale tail now holds the ring; once the fresh one is
/// stored, the publisher takes at most a ring past it.
#[test]
fn a_stale_joiner_tail_holds_the_ring_until_its_fresh_one() {
    let memory = fresh(Policy::Block);
    let seg = open(&memory);
    let mut tx = seg.publisher("b", ThreadWait::new(1)).unwrap();
    let head_at = AREAS_OFFSET + b::HEAD;
    let (owner, tail) = (AREAS_OFFSET + b::SUBSCRIBERS + b::OWNER, AREAS_OFFSET + b::SUBSCRIBERS + b::TAIL);
    tx.try_publish(&message(0, 56)).unwrap();
    let seen = memory.read_u32(head_at);
    for n in 1..20 {
        tx.try_publish(&message(n, 56)).unwrap();
    }
    // The joiner's claim and its first, stale, store: more than a ring
    // (256 bytes) behind the head; and, as a second review found, 2^31
    // bytes or more behind, which reads as ahead of the head.
    memory.write_u32(owner, 5);
    let mut n = 20;
    let now = memory.read_u32(head_at);
    for stale in [seen, now.wrapping_add(8), now.wrapping_sub(1 << 31)] {
        memory.write_u32(tail, stale);
        assert_eq!(tx.try_publish(&message(n, 56)), Err(SendError::Full), "tail {stale} (head {now}) holds the ring");
    }
    assert!(now.wrapping_sub(seen) > 256);
    // Its fresh store: the head it loaded after its fence.
    let start = memory.read_u32(head_at);
    memory.write_u32(tail, start);
    while tx.try_publish(&message(n, 56)).is_ok() {
        n += 1;
    }
    let head = memory.read_u32(head_at);
    assert!(head.wrapping_sub(start) <= 256, "at most a ring past the joiner's start: {start} -> {head}");
}

/// Review 2026-12-03 (second pass): a scribble moving an idle Block
/// subscriber's tail off any reader's position holds the publisher, and
/// the subscriber, with nothing new to read, never stored its tail again:
/// both timed out for good. A subscriber about to wait now puts its tail
/// back.
#[test]
fn an_idle_subscriber_puts_a_scribbled_tail_back() {
    let memory = fresh(Policy::Block);
    let seg = open(&memory);
    let mut tx = seg.publisher("b", ThreadWait::new(1)).unwrap();
    let mut sub = seg.subscriber("b", ThreadWait::new(2)).unwrap();
    let mut buf = [0u8; 64];
    for n in 0..8 {
        tx.try_publish(&message(n, 56)).unwrap();
        sub.try_recv(&mut buf).unwrap();
    }
    let tail = AREAS_OFFSET + b::SUBSCRIBERS + b::TAIL;
    let ours = memory.read_u32(tail);
    memory.write_u32(tail, ours.wrapping_sub(1 << 20));
    assert_eq!(tx.try_publish(&message(8, 56)), Err(SendError::Full), "the scribbled tail holds the ring");
    assert_eq!(sub.recv_timeout(&mut buf, SHORT), Err(RecvError::Timeout));
    assert_eq!(memory.read_u32(tail), ours, "put back");
    tx.try_publish(&message(8, 56)).unwrap();
}

/// Review 2026-12-03 (fourth pass): the tail was put back only before a
/// wait, so a subscriber that polls (`try_recv`, a wait set) never did, and
/// one already waiting only when its wait ended.
#[test]
fn a_polling_or_waiting_subscriber_puts_a_scribbled_tail_back() {
    let memory = fresh(Policy::Block);
    let seg = open(&memory);
    let mut tx = seg.publisher("b", ThreadWait::new(1)).unwrap();
    let mut sub = seg.subscriber("b", ThreadWait::new(2)).unwrap();
    let mut buf = [0u8; 64];
    let tail = AREAS_OFFSET + b::SUBSCRIBERS + b::TAIL;
    // A full ring (four 64-byte frames), all read: the publisher's room
    // ends at the head, so its next message makes it look at the tail.
    for n in 0..4 {
        tx.try_publish(&message(n, 56)).unwrap();
    }
    for _ in 0..4 {
        sub.try_recv(&mut buf).unwrap();
    }
    let ours = memory.read_u32(tail);
    // Waiting: scribbled once the subscriber announced its wait.
    let mut sub = std::thread::scope(|s| {
        let reader = s.spawn(move || {
            let mut buf = [0u8; 64];
            let got = sub.recv_timeout(&mut buf, LONG).map(|n| buf[..n].to_vec());
            (sub, got)
        });
        while memory.read_u32(AREAS_OFFSET + b::WAITING) == 0 {
            std::thread::yield_now();
        }
        memory.write_u32(tail, ours.wrapping_add(1 << 20));
        tx.publish_timeout(&message(4, 56), LONG).expect("the waiting subscriber put its tail back");
        let (sub, got) = reader.join().unwrap();
        assert_eq!(got, Ok(message(4, 56)));
        sub
    });
    // Polling, with the ring full and read again.
    for n in 5..8 {
        tx.try_publish(&message(n, 56)).unwrap();
    }
    for _ in 5..8 {
        sub.try_recv(&mut buf).unwrap();
    }
    let ours = memory.read_u32(tail);
    memory.write_u32(tail, ours.wrapping_sub(1 << 20));
    assert_eq!(tx.try_publish(&message(8, 56)), Err(SendError::Full));
    assert_eq!(sub.try_recv(&mut buf), Err(RecvError::Empty));
    assert_eq!(memory.read_u32(tail), ours, "put back by a poll");
    tx.try_publish(&message(8, 56)).unwrap();
}

/// Review 2026-12-03: with several subscribers dead at once (a crashed
/// group), the publisher let one go per liveness interval of its wait, so
/// with 16 dead ones the first publish with a 200 ms timeout succeeded only
/// after 1.6 s of `Timeout`s. The first dead one found now lets every dead
/// one go, also those that did not hold the ring back yet.
#[test]
fn one_dead_subscriber_found_lets_every_dead_one_go() {
    let memory = fresh(Policy::Block);
    let seg = open(&memory);
    let graveyard = Graveyard::new();
    let mut tx = seg.publisher("b", ThreadWait::with_graveyard(1, &graveyard)).unwrap();
    let (w2, w3, w4) = (ThreadWait::new(2), ThreadWait::new(3), ThreadWait::new(4));
    let slowest = seg.subscriber("b", &w2).unwrap();
    for n in 0..2 {
        tx.try_publish(&message(n, 56)).unwrap();
    }
    let (later, last) = (seg.subscriber("b", &w3).unwrap(), seg.subscriber("b", &w4).unwrap());
    for n in 2..4 {
        tx.try_publish(&message(n, 56)).unwrap();
    }
    for (sub, id) in [(slowest, 2), (later, 3), (last, 4)] {
        core::mem::forget(sub);
        graveyard.bury(id);
    }
    tx.publish_timeout(&message(4, 56), LONG).unwrap();
    for slot in 0..3 {
        let owner = AREAS_OFFSET + b::SUBSCRIBERS + slot * b::SUBSCRIBER_LINE + b::OWNER;
        assert_eq!(memory.read_u32(owner), 0, "slot {slot} let go");
    }
}

/// Review finding: after resuming at the head because the publisher (dead
/// mid-publish) left no intact frame to resume at, the next lag counted the
/// lost messages again from the join. Received plus missed is now exactly
/// what was published.
#[test]
fn lost_messages_are_counted_once_across_resyncs() {
    let layout = Layout::new().broadcast("b", 256, 1, Policy::Overwrite).unwrap();
    let memory = MockRegion::new(layout.size());
    Segment::create(memory.region(), &layout, 1, 0).unwrap();
    let seg = open(&memory);
    let graveyard = Graveyard::new();
    let w1 = ThreadWait::new(1);
    let mut tx = seg.publisher("b", &w1).unwrap();
    let mut sub = seg.subscriber("b", ThreadWait::with_graveyard(2, &graveyard)).unwrap();
    tx.try_publish(&[]).unwrap();
    tx.try_publish(&[1; 120]).unwrap();
    // The publisher dies mid-publish of a frame that wraps.
    // (the loan is written, never committed)
    tx.try_loan(120).unwrap().write(&[2; 120]);
    core::mem::forget(tx);
    graveyard.bury(1);
    let mut tx = seg.publisher("b", ThreadWait::with_graveyard(4, &graveyard)).unwrap();
    let mut buf = [0u8; 128];
    let (mut received, mut missed) = (0u64, 0u64);
    if let Err(RecvError::Lagged { missed: m }) = sub.try_recv(&mut buf) {
        missed += m;
    }
    for n in 0..20 {
        tx.try_publish(&message(n, 56)).unwrap();
    }
    loop {
        match sub.try_recv(&mut buf) {
            Ok(_) => received += 1,
            Err(RecvError::Lagged { missed: m }) => missed += m,
            Err(RecvError::Empty) => break,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(received + missed, 22);
}

/// A subscriber announced at its position sleeps only while `head` is
/// there: the publisher wakes it once, at the move from there, and makes
/// no more system calls for it until it announces again. A waiting word of
/// 1 (format 2.1, or a waiter on several words) or of bytes that are not
/// a position is woken at every move. Before, every publish with any
/// waiting word set made a wake-up call (64% of a 1 -> 4 fan-out's time).
#[test]
fn a_publisher_wakes_a_subscriber_sleeping_at_a_position_once() {
    use std::sync::atomic::Ordering::Relaxed;
    let memory = fresh(Policy::Overwrite);
    let seg = open(&memory);
    let (wait, wakes) = HookWait::counting(1);
    let mut tx = seg.publisher("b", wait).unwrap();
    let sub = seg.subscriber("b", ThreadWait::new(2)).unwrap();
    let waiting = AREAS_OFFSET + b::WAITING + 4 * sub.slot();
    let head = || memory.read_u32(AREAS_OFFSET + b::HEAD);
    // Announced at the current head: one wake-up for five messages.
    memory.write_u32(waiting, head() | b::WAITING_AT);
    for n in 0..5 {
        tx.try_publish(&message(n, 8)).unwrap();
    }
    assert_eq!(wakes.load(Relaxed), 1, "one wake-up for a subscriber announced at the head");
    // Announced at an older position: it was woken then; none now.
    memory.write_u32(waiting, 16 | b::WAITING_AT);
    tx.try_publish(&message(5, 8)).unwrap();
    assert_eq!(wakes.load(Relaxed), 1, "no wake-up for a subscriber announced at an older head");
    for (value, what) in [(1, "a plain flag"), (0xdead_beef, "garbage")] {
        let before = wakes.load(Relaxed);
        memory.write_u32(waiting, value);
        for n in 0..3 {
            tx.try_publish(&message(n, 8)).unwrap();
        }
        assert_eq!(wakes.load(Relaxed) - before, 3, "{what} is woken at every move");
    }
    memory.write_u32(waiting, 0);
    let before = wakes.load(Relaxed);
    tx.try_publish(&message(9, 8)).unwrap();
    assert_eq!(wakes.load(Relaxed), before, "nobody asleep, no wake-up");
    drop(sub);
}

/// A publisher announced with a mark waits for the slowest subscriber's
/// tail to reach it: the subscriber wakes it once, when its tail crosses
/// the mark, not at every message it reads. A plain flag (format 2.1) or
/// bytes that are not a position are woken at every message.
#[test]
fn a_subscriber_wakes_a_publisher_waiting_for_a_mark_once() {
    use std::sync::atomic::Ordering::Relaxed;
    let memory = fresh(Policy::Block);
    let seg = open(&memory);
    let mut tx = seg.publisher("b", ThreadWait::new(1)).unwrap();
    let (wait, wakes) = HookWait::counting(2);
    let mut sub = seg.subscriber("b", wait).unwrap();
    let waiting = AREAS_OFFSET + b::PUBLISHER_WAITING;
    let mut buf = [0u8; 64];
    // 8-byte messages are 16-byte frames: the tail moves 16 per message.
    for (value, expected, what) in [(48 | b::WAITING_AT, 1, "a mark"), (1, 6, "a plain flag"), (7, 6, "garbage")] {
        let start = memory.read_u32(AREAS_OFFSET + b::HEAD);
        let value = if value & 7 == b::WAITING_AT { start + value } else { value };
        for n in 0..6 {
            tx.try_publish(&message(n, 8)).unwrap();
        }
        memory.write_u32(waiting, value);
        let before = wakes.load(Relaxed);
        for _ in 0..6 {
            sub.try_recv(&mut buf).unwrap();
        }
        assert_eq!(wakes.load(Relaxed) - before, expected, "{what}");
    }
    memory.write_u32(waiting, 0);
}

#[test]
fn wakes_at_reads_every_waiting_word() {
    use b::{wakes_at, WAITING_AT};
    // Subscribers: the move from their position only.
    assert!(wakes_at(64 | WAITING_AT, 64, 80, false));
    assert!(!wakes_at(48 | WAITING_AT, 64, 80, false));
    assert!(!wakes_at(80 | WAITING_AT, 64, 80, false));
    // The publisher: the move that reaches its mark, across a wrap of u32.
    assert!(wakes_at(64 | WAITING_AT, 48, 64, true));
    assert!(wakes_at(64 | WAITING_AT, 48, 80, true));
    assert!(!wakes_at(64 | WAITING_AT, 16, 48, true));
    assert!(!wakes_at(64 | WAITING_AT, 64, 80, true), "already past: it woke the publisher then");
    assert!(wakes_at(8 | WAITING_AT, u32::MAX - 7, 16, true));
    // Not asleep; a plain flag; anything else.
    assert!(!wakes_at(0, 0, 16, false) && !wakes_at(0, 0, 16, true));
    for word in [1, 3, 4, 7, u32::MAX] {
        assert!(wakes_at(word, 0, 16, false) && wakes_at(word, 0, 16, true), "{word:#x}");
    }
}

/// Review finding: a publisher that died between storing `head` and waking
/// left a subscriber asleep, announced at the position it moved from; its
/// successor never moves from there, so under the position rule it never
/// woke it (a stall until the subscriber's liveness slice, or its
/// deadline). Claiming the publisher role now wakes every announced sleeper.
#[test]
fn a_new_publisher_wakes_sleepers_its_dead_predecessor_left() {
    use std::sync::atomic::Ordering::Relaxed;
    let memory = fresh(Policy::Block);
    let seg = open(&memory);
    let sub = seg.subscriber("b", ThreadWait::new(2)).unwrap();
    let waiting = AREAS_OFFSET + b::WAITING + 4 * sub.slot();
    let w1 = ThreadWait::new(1);
    {
        let mut dying = seg.publisher("b", &w1).unwrap();
        dying.try_publish(&message(0, 8)).unwrap();
        // Asleep at 0, the head the predecessor moved from before it died
        // without waking (forgotten: no close, as a killed process).
        memory.write_u32(waiting, b::WAITING_AT);
        core::mem::forget(dying);
    }
    memory.write_u32(AREAS_OFFSET + b::PUBLISHER, 0);
    let (wait, wakes) = HookWait::counting(3);
    let _successor = seg.publisher("b", wait).unwrap();
    assert_eq!(wakes.load(Relaxed), 1, "the successor wakes the sleeper its predecessor left");
    drop(sub);
}

/// The publisher moves `intent` in steps (a sixteenth of the ring past the
/// frame), not per message, and never declares unread bytes overwritten
/// under the block policy: with a 4 KiB ring (a 256-byte step) and 16-byte
/// frames, sixteen messages share one store of `intent`; it always covers
/// `head` and stays within a step of it; a subscriber that read nothing
/// still gets every message of a full ring; and a successor accepts the
/// `intent` its predecessor left.
#[test]
fn intent_moves_in_steps_and_the_block_policy_loses_nothing() {
    for policy in [Policy::Block, Policy::Overwrite] {
        let layout = Layout::new().broadcast("b", 4096, 1, policy).unwrap();
        let memory = MockRegion::new(layout.size());
        Segment::create(memory.region(), &layout, 1, 0).unwrap();
        let seg = open(&memory);
        let word = |w: usize| memory.read_u32(AREAS_OFFSET + w);
        let mut tx = seg.publisher("b", ThreadWait::new(1)).unwrap();
        let mut sub = seg.subscriber("b", ThreadWait::new(2)).unwrap();
        let mut intents = std::collections::BTreeSet::new();
        let mut n = 0u32;
        // 8-byte messages take 16-byte frames: 256 fill the ring.
        while tx.try_publish(&message(n, 8)).is_ok() {
            let (head, intent) = (word(b::HEAD), word(b::INTENT));
            assert!(intent >= head && intent - head <= 256, "{policy:?}: head {head}, intent {intent}");
            intents.insert(intent);
            n += 1;
            if n == 1000 {
                break;
            }
        }
        match policy {
            // Full after exactly one ring: the step never reaches past the
            // unread subscriber's tail plus the capacity.
            Policy::Block => assert_eq!(n, 256, "{policy:?}: messages before the ring is full"),
            Policy::Overwrite => assert_eq!(n, 1000),
        }
        assert!(intents.len() as u32 <= n / 16 + 1, "{policy:?}: {} stores of intent for {n} messages", intents.len());
        let mut buf = [0u8; 8];
        if policy == Policy::Block {
            for k in 0..n {
                let got = sub.try_recv(&mut buf).unwrap();
                assert_eq!(&buf[..got], &message(k, 8)[..], "message {k}");
            }
        }
        // A successor resumes under the intent the first publisher left.
        let left = word(b::INTENT);
        drop(tx);
        let mut next = seg.publisher("b", ThreadWait::new(3)).unwrap();
        next.try_publish(&message(n, 8)).unwrap();
        assert!(word(b::INTENT) >= left, "{policy:?}: intent went back");
    }
}

/// Review finding: only a wait judged the slowest subscriber's liveness,
/// so a block publisher that only tries (`try_publish`, `try_loan`) stayed
/// `Full` for good once a subscriber died holding the ring, and the live
/// subscribers got nothing more. A few tries in a row against a tail that
/// does not move now judge its holder, and a dead one is let go.
#[test]
fn a_publisher_that_only_tries_lets_a_dead_subscriber_go() {
    let memory = fresh(Policy::Block);
    let seg = open(&memory);
    let graveyard = Graveyard::new();
    let mut tx = seg.publisher("b", ThreadWait::with_graveyard(1, &graveyard)).unwrap();
    // Borrowed: forgetting the subscriber below leaks no heap (Miri).
    let w2 = ThreadWait::new(2);
    let dead = seg.subscriber("b", &w2).unwrap();
    let mut live = seg.subscriber("b", ThreadWait::new(3)).unwrap();
    let mut buf = [0u8; 128];
    let mut n = 0;
    while tx.try_publish(&message(n, 56)).is_ok() {
        assert_eq!(live.try_recv(&mut buf), Ok(56));
        n += 1;
    }
    core::mem::forget(dead);
    graveyard.bury(2);
    // The try that ended the loop above was the first against this tail.
    let tries = (2..=super::TRY_LIVENESS_AFTER + 1)
        .find(|_| tx.try_publish(&message(n, 56)).is_ok())
        .expect("the dead subscriber is let go within TRY_LIVENESS_AFTER tries");
    assert_eq!(tries, super::TRY_LIVENESS_AFTER, "judged at the first due try, not before");
    let slot = AREAS_OFFSET + b::SUBSCRIBERS + b::OWNER;
    assert_eq!(memory.read_u32(slot), 0, "the dead subscriber's slot is free");
    assert_eq!(live.try_recv(&mut buf), Ok(56));
    assert_eq!(&buf[..56], &message(n, 56)[..]);
}

/// The check above costs a liveness answer (a `/proc` read on a host): a
/// live subscriber that holds the ring without reading is judged once per
/// [`super::TRY_LIVENESS_EVERY`] tries, and one that reads is never judged
/// by tries.
#[test]
fn tries_against_a_live_holder_judge_it_rarely() {
    let memory = fresh(Policy::Block);
    let seg = open(&memory);
    let judged = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let counter = judged.clone();
    let wait = HookWait {
        inner: ThreadWait::new(1),
        dead: 0,
        hook: std::boxed::Box::new(|| {}),
        alive: std::boxed::Box::new(move |_| {
            counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }),
        wakes: std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0)),
    };
    let mut tx = seg.publisher("b", wait).unwrap();
    let mut sub = seg.subscriber("b", ThreadWait::new(2)).unwrap();
    let mut buf = [0u8; 128];
    // Full, then one message read: the holder's tail moves before each try.
    for n in 0..500 {
        while tx.try_publish(&message(n, 56)).is_ok() {}
        assert!(sub.try_recv(&mut buf).is_ok());
    }
    assert_eq!(judged.load(std::sync::atomic::Ordering::Relaxed), 0, "a reading holder is never judged");
    // Full again, and the holder stops reading: that try was the first of
    // TRY_LIVENESS_AFTER + 10 * TRY_LIVENESS_EVERY against one tail.
    while tx.try_publish(&message(0, 56)).is_ok() {}
    let tries = super::TRY_LIVENESS_AFTER - 1 + 10 * super::TRY_LIVENESS_EVERY;
    for n in 0..tries {
        assert_eq!(tx.try_publish(&message(n, 56)), Err(SendError::Full));
    }
    assert_eq!(judged.load(std::sync::atomic::Ordering::Relaxed), 11);
}

/// Review 2026-12-03 (fifth pass): a wait set looks at a subscriber only
/// through `is_ready`, which only loaded `head`, so a subscriber waiting in
/// one never put a scribbled tail back and the publisher stayed held for
/// the whole wait. `is_ready` with nothing to read now repairs it.
#[test]
fn is_ready_puts_a_scribbled_tail_back() {
    use crate::ready::Waitable;
    let memory = fresh(Policy::Block);
    let seg = open(&memory);
    let mut tx = seg.publisher("b", ThreadWait::new(1)).unwrap();
    let mut sub = seg.subscriber("b", ThreadWait::new(2)).unwrap();
    let mut buf = [0u8; 64];
    for n in 0..4 {
        tx.try_publish(&message(n, 56)).unwrap();
        sub.try_recv(&mut buf).unwrap();
    }
    let tail = AREAS_OFFSET + b::SUBSCRIBERS + b::TAIL;
    let ours = memory.read_u32(tail);
    memory.write_u32(tail, ours.wrapping_add(1 << 20));
    assert_eq!(tx.try_publish(&message(4, 56)), Err(SendError::Full), "the scribbled tail holds the ring");
    assert!(!sub.is_ready(), "nothing to read");
    assert_eq!(memory.read_u32(tail), ours, "put back by the look");
    tx.try_publish(&message(4, 56)).unwrap();
    assert!(sub.is_ready());
    assert_eq!(sub.try_recv(&mut buf), Ok(56));
}

/// Review 2026-12-03 (fifth pass): `join` took its position from one look
/// at `head`, so a `head` a scribbler moved ahead while it joined became
/// its position, past every frame the publisher then wrote: each call
/// reported `Corrupted` and a Block publisher stayed held. A position
/// ahead of `head` from which nothing was read now moves back to it.
#[test]
fn a_joiner_that_took_a_scribbled_head_moves_back_to_the_real_one() {
    for policy in [Policy::Block, Policy::Overwrite] {
        let memory = fresh(policy);
        let seg = open(&memory);
        let mut tx = seg.publisher("b", ThreadWait::new(1)).unwrap();
        for n in 0..2 {
            tx.try_publish(&message(n, 56)).unwrap();
        }
        let head = AREAS_OFFSET + b::HEAD;
        let real = memory.read_u32(head);
        // Ahead by one frame, while the subscriber joins.
        memory.write_u32(head, real + 64);
        let mut sub = seg.subscriber("b", ThreadWait::new(2)).unwrap();
        memory.write_u32(head, real);
        let mut buf = [0u8; 64];
        assert_eq!(sub.try_recv(&mut buf), Err(RecvError::Empty), "{policy:?}");
        for n in 2..12 {
            tx.try_publish(&message(n, 56)).unwrap();
            assert_eq!(sub.try_recv(&mut buf), Ok(56), "{policy:?} message {n}");
            assert_eq!(&buf[..56], &message(n, 56)[..], "{policy:?} message {n}");
        }
        assert_eq!(sub.missed(), 0);
    }
}

/// Review 2026-12-03 (fifth pass): a subscriber never looked at its slot's
/// owner word again, so once it was let go (judged dead, or the word
/// written by a peer) it went on unprotected without being told, and wrote
/// its position into the tail of whoever took the slot. It now reports
/// `SlotLost` and writes the slot no more.
#[test]
fn a_subscriber_whose_slot_was_taken_says_so_and_leaves_it_alone() {
    let memory = fresh(Policy::Block);
    let seg = open(&memory);
    let mut tx = seg.publisher("b", ThreadWait::new(1)).unwrap();
    let mut sub = seg.subscriber("b", ThreadWait::new(2)).unwrap();
    let mut buf = [0u8; 64];
    let owner = AREAS_OFFSET + b::SUBSCRIBERS + b::OWNER;
    // Idle when the slot is taken: the next poll and wait say so.
    memory.write_u32(owner, 77);
    assert_eq!(sub.try_recv(&mut buf), Err(RecvError::SlotLost));
    assert_eq!(sub.recv_timeout(&mut buf, SHORT), Err(RecvError::SlotLost));
    // Reading when it is taken: the message read is its own; the taker's
    // tail stays as the taker stored it, and the next call says so.
    memory.write_u32(owner, 2);
    let mut sub = seg.subscriber("b", ThreadWait::new(3)).unwrap();
    assert_eq!(sub.slot(), 1, "slot 0 still held by 2");
    tx.try_publish(&message(0, 56)).unwrap();
    let slot1 = AREAS_OFFSET + b::SUBSCRIBERS + b::SUBSCRIBER_LINE;
    memory.write_u32(slot1 + b::OWNER, 88);
    let taker = memory.read_u32(slot1 + b::TAIL);
    assert_eq!(sub.try_recv(&mut buf), Ok(56));
    assert_eq!(memory.read_u32(slot1 + b::TAIL), taker, "the taker's tail is left alone");
    tx.try_publish(&message(1, 56)).unwrap();
    assert_eq!(sub.try_recv(&mut buf), Err(RecvError::SlotLost));
    {
        use crate::ready::Waitable;
        assert!(sub.is_ready(), "the loss is there to report");
    }
    drop(sub);
    assert_eq!(memory.read_u32(slot1 + b::OWNER), 88, "dropping it leaves the taker's slot alone");
    assert_eq!(memory.read_u32(slot1 + b::TAIL), taker);
}

/// Review 2026-12-03 (sixth pass): the move back to `head` also ran after
/// a join whose two looks agreed, so a `head` scribbled back by less than
/// a ring just after the join re-delivered messages published before it
/// (and a publisher 2^32 bytes on read as "behind" and skipped a lap
/// without a word). Only a join that fell back moves back now.
#[test]
fn a_head_scribbled_back_after_a_confirmed_join_redelivers_nothing() {
    for policy in [Policy::Block, Policy::Overwrite] {
        let memory = fresh(policy);
        let seg = open(&memory);
        let mut tx = seg.publisher("b", ThreadWait::new(1)).unwrap();
        for n in 0..2 {
            tx.try_publish(&message(n, 56)).unwrap();
        }
        let mut sub = seg.subscriber("b", ThreadWait::new(2)).unwrap();
        let head = AREAS_OFFSET + b::HEAD;
        let real = memory.read_u32(head);
        memory.write_u32(head, real - 128);
        let mut buf = [0u8; 64];
        assert!(matches!(sub.try_recv(&mut buf), Err(RecvError::Corrupted(_))), "{policy:?}: not old message 0");
        memory.write_u32(head, real);
        tx.try_publish(&message(2, 56)).unwrap();
        assert_eq!(sub.try_recv(&mut buf), Ok(56), "{policy:?}");
        assert_eq!(&buf[..56], &message(2, 56)[..], "{policy:?}: the message published after the join");
    }
}

/// Review 2026-12-03 (sixth pass, F2): positions are compared as signed
/// 32-bit distances, so an overwrite subscriber left idle while 2^31 bytes
/// or more were published found `head` "more than a ring ahead" and
/// reported `Corrupted` at every call, and one about 2^32 bytes behind read
/// another frame's bytes as its own. The message count tells the lap: it
/// lags, resumes at the oldest message, and counts every message once.
#[test]
#[cfg_attr(miri, ignore = "publishes 2^33 bytes")]
fn an_idle_subscriber_lapped_by_2_pow_31_bytes_or_more_lags_and_reads_on() {
    const CAP: u32 = 1 << 20;
    let layout = Layout::new().broadcast("b", CAP, 2, Policy::Overwrite).unwrap();
    // Frames of half the ring: 4096 of them are 2^31 bytes.
    for frames in [4095u32, 4097, 6000, 8190, 8191, 8192, 8193, 12289, 16383] {
        for read_first in [false, true] {
            let what = format!("{frames} frames, read first: {read_first}");
            let memory = MockRegion::new(layout.size());
            Segment::create(memory.region(), &layout, 1, 0).unwrap();
            let seg = open(&memory);
            let mut tx = seg.publisher("b", ThreadWait::new(1)).unwrap();
            let mut sub = seg.subscriber("b", ThreadWait::new(2)).unwrap();
            let mut buf = std::vec![0u8; CAP as usize];
            let mut received = 0u64;
            if read_first {
                tx.try_publish(b"FIRST").unwrap();
                assert_eq!(sub.try_recv(&mut buf), Ok(5), "{what}");
                received += 1;
            }
            let max = tx.max_message();
            for _ in 0..frames {
                // Only the header is written: 2^32 bytes in a blink.
                tx.try_loan(max).unwrap().commit();
            }
            // Idle at the lap (at 8192 frames from the start, `head` is
            // back at this side's position): the first call says so.
            assert!(matches!(sub.try_recv(&mut buf), Err(RecvError::Lagged { .. })), "{what}");
            tx.try_publish(b"LAST").unwrap();
            let published = u64::from(frames) + 1 + u64::from(read_first);
            let mut lags = 1;
            let mut last_seq = None;
            loop {
                match sub.try_read() {
                    Ok(msg) => {
                        let (len, seq) = (msg.len(), msg.seq());
                        match msg.finish() {
                            Ok(()) => {}
                            // The frame's bytes were another's (the lap
                            // found after reading them).
                            Err(RecvError::Lagged { .. }) => {
                                lags += 1;
                                continue;
                            }
                            Err(e) => panic!("{what}: finish: {e:?} after {received} messages and {lags} lags"),
                        }
                        if let Some(prev) = last_seq {
                            assert!(seq > prev, "{what}: seq {seq} after {prev}");
                        }
                        last_seq = Some(seq);
                        received += 1;
                        if len == 4 {
                            break;
                        }
                    }
                    Err(RecvError::Lagged { .. }) => lags += 1,
                    Err(e) => panic!("{what}: {e:?} after {received} messages and {lags} lags"),
                }
                assert!(lags <= 1, "{what}: one lap, one lag");
            }
            assert_eq!(lags, u32::from(frames > 2), "{what}");
            assert_eq!(last_seq, Some(published as u32 - 1), "{what}: LAST is the last message");
            assert_eq!(received + sub.missed(), published, "{what}: every message counted once");
            assert_eq!(sub.try_recv(&mut buf), Err(RecvError::Empty), "{what}");
        }
    }
}

/// The same lap, found while the subscriber held a message in place: the
/// read may have been overwritten, so `finish` reports the lag.
#[test]
#[cfg_attr(miri, ignore = "publishes 2^32 bytes")]
fn a_read_held_while_2_pow_31_bytes_or_more_are_published_reports_the_lag() {
    const CAP: u32 = 1 << 20;
    let layout = Layout::new().broadcast("b", CAP, 2, Policy::Overwrite).unwrap();
    for frames in [4097u32, 8191, 8192, 8193] {
        let memory = MockRegion::new(layout.size());
        Segment::create(memory.region(), &layout, 1, 0).unwrap();
        let seg = open(&memory);
        let mut tx = seg.publisher("b", ThreadWait::new(1)).unwrap();
        let mut sub = seg.subscriber("b", ThreadWait::new(2)).unwrap();
        tx.try_publish(b"FIRST").unwrap();
        let msg = sub.try_read().unwrap();
        let max = tx.max_message();
        for _ in 0..frames {
            tx.try_loan(max).unwrap().commit();
        }
        assert!(matches!(msg.finish(), Err(RecvError::Lagged { .. })), "{frames} frames");
    }
}

/// A word scribbled to claim a lap that did not happen (`intent` far
/// ahead, `published` far on) never moves a subscriber back over messages
/// it already read: it reports the word, and hands out each message at
/// most once, in order.
#[test]
fn a_scribbled_lap_redelivers_nothing() {
    for (word, value) in [(b::INTENT, 1 << 30), (b::PUBLISHED, 0x4000_0000), (b::PUBLISHED, 0x7fff_ffff)] {
        let memory = fresh(Policy::Overwrite);
        let seg = open(&memory);
        let mut tx = seg.publisher("b", ThreadWait::new(1)).unwrap();
        let mut sub = seg.subscriber("b", ThreadWait::new(2)).unwrap();
        let mut seqs = Vec::new();
        let mut outcomes = Vec::new();
        for n in 0..12u32 {
            if n == 3 {
                memory.write_u32(AREAS_OFFSET + word, value);
            }
            if n % 2 == 0 {
                tx.try_publish(&message(n / 2, 24)).unwrap();
            }
            match sub.try_read() {
                Ok(msg) => {
                    let seq = msg.seq();
                    if msg.finish().is_ok() {
                        seqs.push(seq);
                    }
                }
                Err(e) => outcomes.push(std::format!("{e:?}")),
            }
        }
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "word {word} = {value:#x}: {seqs:?} {outcomes:?}");
    }
}

/// Review 2026-12-03 (seventh pass): a subscriber standing on a wrap
/// marker that was overwritten, while the frame after it was not, lost
/// nothing, but reported `Lagged { missed: 0 }`: it now reads on.
#[test]
fn an_overwritten_wrap_marker_with_the_next_frame_intact_is_no_lag() {
    let memory = fresh(Policy::Overwrite);
    let seg = open(&memory);
    let mut tx = seg.publisher("b", ThreadWait::new(1)).unwrap();
    let mut sub = seg.subscriber("b", ThreadWait::new(2)).unwrap();
    let mut buf = [0u8; 128];
    // 48-byte frames in a 256-byte ring: after five, this side stands
    // where the next wrap marker goes.
    for n in 0..5 {
        tx.try_publish(&message(n, 40)).unwrap();
        assert_eq!(sub.try_recv(&mut buf), Ok(40));
    }
    // Five more end a ring past that position: the marker is overwritten,
    // the frame after it is the oldest intact one.
    for n in 5..10 {
        tx.try_publish(&message(n, 40)).unwrap();
    }
    let mut got = Vec::new();
    loop {
        match sub.try_recv(&mut buf) {
            Ok(n) => got.push(buf[..n].to_vec()),
            Err(RecvError::Empty) => break,
            Err(e) => panic!("{e:?} after {} messages", got.len()),
        }
    }
    assert_eq!(got, (5..10).map(|n| message(n, 40)).collect::<Vec<_>>());
    assert_eq!(sub.missed(), 0);
}

/// Review 2026-12-03 (seventh pass): after `lagged`'s fallback (no
/// usable `oldest`) the subscriber knew its next sequence number only as a
/// lower bound, so a later idle lap of 2^31 bytes or more read as
/// corruption at every call. The fallback now takes its position from two
/// agreeing looks, as a join does.
#[test]
#[cfg_attr(miri, ignore = "publishes 2^32 bytes")]
fn a_far_lap_after_a_lag_without_oldest_still_lags_and_reads_on() {
    const CAP: u32 = 1 << 20;
    let layout = Layout::new().broadcast("b", CAP, 2, Policy::Overwrite).unwrap();
    for frames in [4100u32, 6000, 8192] {
        let memory = MockRegion::new(layout.size());
        Segment::create(memory.region(), &layout, 1, 0).unwrap();
        let seg = open(&memory);
        let mut tx = seg.publisher("b", ThreadWait::new(1)).unwrap();
        let mut sub = seg.subscriber("b", ThreadWait::new(2)).unwrap();
        let max = tx.max_message();
        let mut buf = std::vec![0u8; CAP as usize];
        tx.try_publish(b"FIRST").unwrap();
        assert_eq!(sub.try_recv(&mut buf), Ok(5));
        for _ in 0..3 {
            tx.try_loan(max).unwrap().commit();
        }
        // A lap found while `oldest` is unusable: the fallback.
        let oldest = AREAS_OFFSET + b::OLDEST;
        let saved = memory.read_u32(oldest);
        memory.write_u32(oldest, saved | 4);
        assert!(matches!(sub.try_recv(&mut buf), Err(RecvError::Lagged { .. })), "{frames}");
        memory.write_u32(oldest, saved);
        for _ in 0..frames {
            tx.try_loan(max).unwrap().commit();
        }
        tx.try_publish(b"LAST").unwrap();
        let published = 1 + 3 + u64::from(frames) + 1;
        let mut received = 1;
        loop {
            match sub.try_recv(&mut buf) {
                Ok(n) => {
                    received += 1;
                    if &buf[..n] == b"LAST" {
                        break;
                    }
                }
                Err(RecvError::Lagged { .. }) => {}
                Err(e) => panic!("{frames} frames: {e:?}"),
            }
        }
        assert_eq!(received + sub.missed(), published, "{frames} frames: every message counted once");
    }
}
