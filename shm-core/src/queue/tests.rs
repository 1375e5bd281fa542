//! The queue on mock memory: roles, full and empty, wrap-around, hostile
//! control words, close, and a stress test across threads.

use crate::conformance;
use crate::error::{ChannelName, ClaimError, Corruption, RecvError, Role, SendError};
use crate::format::queue as qu;
use crate::mock::{Graveyard, MockRegion, ThreadWait};
use crate::test_support::{busy, fresh, open, LONG, Q, RING, SHORT};
use crate::{Layout, Segment};

/// Grants 5 bytes of "hello", commits `len` of them, and returns what
/// the consumer receives.
fn commit_hello(len: usize) -> std::vec::Vec<u8> {
    let layout = Layout::new().queue("q", 256).unwrap();
    let memory = MockRegion::new(layout.size());
    let segment = Segment::create(memory.region(), &layout, 1, 0).unwrap();
    let mut tx = segment.producer("q", ThreadWait::new(2)).unwrap();
    let mut rx = segment.consumer("q", ThreadWait::new(3)).unwrap();
    let mut grant = tx.try_grant(5).unwrap();
    grant.copy_from_slice(b"hello");
    grant.commit_len(len);
    let mut buf = [0u8; 16];
    let n = rx.try_recv(&mut buf).unwrap();
    buf[..n].to_vec()
}

#[test]
fn roles_are_claimed_once_and_recovered_from_the_dead() {
    let memory = fresh();
    let seg = open(&memory).unwrap();
    let graveyard = Graveyard::new();
    let tx = seg.producer("q", ThreadWait::with_graveyard(2, &graveyard)).unwrap();
    assert_eq!(seg.producer("q", ThreadWait::with_graveyard(3, &graveyard)).err(), Some(busy("q", Role::Producer, 2)));
    drop(tx);
    let w3 = ThreadWait::with_graveyard(3, &graveyard);
    let mut tx = seg.producer("q", &w3).unwrap();
    tx.try_send(b"before the crash").unwrap();
    core::mem::forget(tx); // the producer process dies without letting go
    graveyard.bury(3);
    let w5 = ThreadWait::with_graveyard(5, &graveyard);
    let rx = seg.consumer("q", &w5).unwrap();
    assert!(!rx.producer_alive(), "its producer died");
    drop(rx);
    let mut tx = seg.producer("q", ThreadWait::with_graveyard(4, &graveyard)).unwrap();
    tx.try_send(b"after").unwrap();
    let mut rx = seg.consumer("q", &w5).unwrap();
    assert!(rx.producer_alive());
    let mut buf = [0u8; 64];
    let n = rx.try_recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"before the crash", "a committed message survives its producer");
    let n = rx.try_recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"after");
}

#[test]
fn full_empty_too_large_and_wrap() {
    let memory = fresh();
    let seg = open(&memory).unwrap();
    let mut tx = seg.producer("q", ThreadWait::new(2)).unwrap();
    let mut rx = seg.consumer("q", ThreadWait::new(3)).unwrap();
    assert_eq!(tx.max_message(), 504);
    assert_eq!(tx.try_send(&[0; 505]), Err(SendError::TooLarge { len: 505, max: 504 }));
    assert_eq!(rx.try_read().err(), Some(RecvError::Empty));
    assert_eq!(rx.read_timeout(SHORT).err(), Some(RecvError::Timeout));
    // 100-byte messages take 112-byte frames: nine fit in 1024 bytes.
    for i in 0..9u8 {
        tx.try_send(&[i; 100]).unwrap();
    }
    assert_eq!(tx.try_send(&[9; 100]), Err(SendError::Full));
    assert_eq!(tx.send_timeout(&[9; 100], SHORT), Err(SendError::Timeout));
    let mut small = [0u8; 10];
    assert_eq!(rx.try_recv(&mut small), Err(RecvError::BufferTooSmall { needed: 100 }));
    // Many laps around the ring, with wrap markers, keep order and content.
    let mut buf = [0u8; 600];
    let (mut next_recv, mut next_send) = (0u32, 9u32);
    while next_recv < 2000 {
        match tx.try_send(&[(next_send % 256) as u8; 100]) {
            Ok(()) => next_send += 1,
            Err(SendError::Full) => {
                assert_eq!(rx.try_recv(&mut buf), Ok(100));
                assert!(buf[..100].iter().all(|&b| b == (next_recv % 256) as u8), "message {next_recv}");
                next_recv += 1;
            }
            Err(e) => panic!("send {next_send}: {e}"),
        }
    }
    // A grant dropped without commit sends nothing.
    while rx.try_recv(&mut buf).is_ok() {}
    let before = memory.read_u32(Q + qu::HEAD);
    {
        let _grant = tx.try_grant(8).unwrap();
    }
    assert_eq!(memory.read_u32(Q + qu::HEAD), before);
}

#[test]
fn consumer_reports_a_dead_producer() {
    let memory = fresh();
    let seg = open(&memory).unwrap();
    let graveyard = Graveyard::new();
    let w2 = ThreadWait::with_graveyard(2, &graveyard);
    let tx = seg.producer("q", &w2).unwrap();
    let mut rx = seg.consumer("q", ThreadWait::with_graveyard(3, &graveyard)).unwrap();
    core::mem::forget(tx);
    graveyard.bury(2);
    assert_eq!(rx.read_timeout(SHORT).err(), Some(RecvError::PeerDied));
}

/// Each control word of a queue, corrupted while the queue is in use, with
/// the error the honest side gets.
#[test]
fn hostile_words() {
    type Case = (&'static str, usize, u32, &'static str);
    // (what, offset, value, which side errs and how: "recv:<word>", "send:<word>", "ok")
    let cases: [Case; 17] = [
        ("head unaligned", Q + qu::HEAD, 13, "recv:head"),
        ("head unaligned with the close bit", Q + qu::HEAD, 35, "recv:head"),
        ("head close bit: after the message, closed", Q + qu::HEAD, 32 | qu::CLOSED, "closed:recv"),
        ("tail close bit: the producer learns when full", Q + qu::TAIL, qu::CLOSED, "closed:send"),
        ("head beyond tail + capacity", Q + qu::HEAD, 2048, "recv:head"),
        ("head behind tail", Q + qu::HEAD, u32::MAX - 7, "recv:head"),
        ("consumer_waiting", Q + qu::CONSUMER_WAITING, 0xffff_ffff, "ok"),
        ("sent", Q + qu::SENT, 12345, "ok"),
        ("tail unaligned", Q + qu::TAIL, 3, "send:tail"),
        ("tail far ahead of head", Q + qu::TAIL, 0x8000_0000, "send:tail"),
        ("producer_waiting", Q + qu::PRODUCER_WAITING, 7, "ok"),
        ("received", Q + qu::RECEIVED, 99, "ok"),
        ("producer_flags: a lazy waker the consumer then fences", Q + qu::PRODUCER_FLAGS, u32::MAX, "ok"),
        ("consumer_flags", Q + qu::CONSUMER_FLAGS, 0x5555_5555, "ok"),
        ("frame reserved word (ignored by readers)", RING + qu::FRAME_RESERVED, 0xdead_beef, "ok"),
        ("frame len huge", RING + qu::FRAME_LEN, 0x7fff_0000, "recv:frame"),
        ("frame len beyond head", RING + qu::FRAME_LEN, 200, "recv:frame"),
    ];
    for (what, offset, value, expect) in cases {
        let memory = fresh();
        let seg = open(&memory).unwrap();
        let mut tx = seg.producer("q", ThreadWait::new(2)).unwrap();
        let mut rx = seg.consumer("q", ThreadWait::new(3)).unwrap();
        tx.try_send(&[7; 20]).unwrap();
        memory.write_u32(offset, value);
        let mut buf = [0u8; 600];
        match expect.split_once(':') {
            Some(("recv", word)) => {
                assert_eq!(rx.try_recv(&mut buf), Err(RecvError::Corrupted(Corruption::channel(0, word))), "{what}");
                assert_eq!(
                    rx.recv_timeout(&mut buf, SHORT),
                    Err(RecvError::Corrupted(Corruption::channel(0, word))),
                    "{what}"
                );
            }
            Some(("send", word)) => {
                // The producer trusts the tail it last checked until that
                // says full; then it loads the tail again and finds the fault.
                let first = (0..200).find_map(|_| tx.try_send(&[1; 8]).err());
                assert_eq!(first, Some(SendError::Corrupted(Corruption::channel(0, word))), "{what}");
                assert_eq!(
                    tx.send_timeout(&[1; 8], SHORT),
                    Err(SendError::Corrupted(Corruption::channel(0, word))),
                    "{what}"
                );
            }
            Some(("closed", "recv")) => {
                assert_eq!(rx.try_recv(&mut buf), Ok(20), "{what}: what was committed arrives");
                assert_eq!(rx.try_recv(&mut buf), Err(RecvError::Closed), "{what}");
                assert_eq!(rx.recv_timeout(&mut buf, SHORT), Err(RecvError::Closed), "{what}");
            }
            Some(("closed", "send")) => {
                let first = (0..200).find_map(|_| tx.try_send(&[1; 8]).err());
                assert_eq!(first, Some(SendError::Closed), "{what}");
                assert_eq!(rx.try_recv(&mut buf), Ok(20), "{what}: the consumer still reads");
            }
            _ => {
                tx.try_send(&[8; 20]).unwrap();
                assert_eq!(rx.try_recv(&mut buf), Ok(20), "{what}");
                assert_eq!(rx.try_recv(&mut buf), Ok(20), "{what}");
            }
        }
    }
    // A wrap marker where no wrap is due.
    let memory = fresh();
    let seg = open(&memory).unwrap();
    let mut tx = seg.producer("q", ThreadWait::new(2)).unwrap();
    let mut rx = seg.consumer("q", ThreadWait::new(3)).unwrap();
    tx.try_send(&[7; 20]).unwrap();
    memory.write_u32(RING + qu::FRAME_LEN, qu::WRAP_MARKER);
    assert_eq!(rx.try_read().err(), Some(RecvError::Corrupted(Corruption::channel(0, "frame"))));
    // A restarted side refuses a corrupted position instead of using it.
    drop(tx);
    memory.write_u32(Q + qu::HEAD, 5);
    assert_eq!(
        seg.producer("q", ThreadWait::new(4)).err(),
        Some(ClaimError::Corrupted { channel: ChannelName::new("q"), at: Corruption::channel(0, "head") })
    );
    drop(rx);
    memory.write_u32(Q + qu::TAIL, 6);
    assert_eq!(
        seg.consumer("q", ThreadWait::new(4)).err(),
        Some(ClaimError::Corrupted { channel: ChannelName::new("q"), at: Corruption::channel(0, "tail") })
    );
}

#[test]
fn stress_across_threads() {
    let count = if cfg!(miri) { 300 } else { 200_000 };
    let memory = fresh();
    let seg = open(&memory).unwrap();
    let mut tx = seg.producer("q", ThreadWait::new(2)).unwrap();
    let mut rx = seg.consumer("q", ThreadWait::new(3)).unwrap();
    let max = tx.max_message();
    std::thread::scope(|s| {
        s.spawn(move || conformance::queue_send(&mut tx, count, 42));
        conformance::queue_receive(&mut rx, count, 42, max).unwrap();
    });
}

/// Issue 12, clean close: a consumer receives everything committed before
/// the producer dropped, then `Closed` (blocking or not), never a timeout;
/// a new producer opens the queue again.
#[test]
fn dropping_the_producer_closes_the_queue_after_its_messages() {
    let memory = fresh();
    let seg = open(&memory).unwrap();
    let mut rx = seg.consumer("q", ThreadWait::new(3)).unwrap();
    let mut tx = seg.producer("q", ThreadWait::new(2)).unwrap();
    for i in 0..3u8 {
        tx.try_send(&[i; 10]).unwrap();
    }
    drop(tx);
    let mut buf = [0u8; 64];
    for i in 0..3u8 {
        assert_eq!(rx.recv_timeout(&mut buf, LONG), Ok(10));
        assert_eq!(buf[..10], [i; 10]);
    }
    assert_eq!(rx.try_recv(&mut buf), Err(RecvError::Closed));
    assert_eq!(rx.recv(&mut buf), Err(RecvError::Closed), "a wait without timeout ends too");
    // A new producer: open again, from where the old one stopped.
    let mut tx = seg.producer("q", ThreadWait::new(4)).unwrap();
    assert_eq!(rx.try_recv(&mut buf), Err(RecvError::Empty));
    tx.try_send(b"again").unwrap();
    assert_eq!(rx.try_recv(&mut buf), Ok(5));
}

/// A consumer blocked without a timeout wakes when the producer closes.
#[test]
fn a_blocked_consumer_wakes_on_close() {
    let memory = fresh();
    let seg = open(&memory).unwrap();
    let mut rx = seg.consumer("q", ThreadWait::new(3)).unwrap();
    let tx = seg.producer("q", ThreadWait::new(2)).unwrap();
    std::thread::scope(|s| {
        let reader = s.spawn(move || {
            let mut buf = [0u8; 64];
            rx.recv(&mut buf)
        });
        drop(tx);
        assert_eq!(reader.join().unwrap(), Err(RecvError::Closed));
    });
}

/// Dropping the consumer: the producer learns it when it next needs room.
#[test]
fn dropping_the_consumer_closes_the_queue_for_the_producer() {
    let memory = fresh();
    let seg = open(&memory).unwrap();
    let mut tx = seg.producer("q", ThreadWait::new(2)).unwrap();
    let rx = seg.consumer("q", ThreadWait::new(3)).unwrap();
    drop(rx);
    let mut sent = 0;
    let err = loop {
        match tx.send_timeout(&[7; 100], LONG) {
            Ok(()) => sent += 1,
            Err(e) => break e,
        }
        assert!(sent < 100, "a 1 KiB ring never closes");
    };
    assert_eq!(err, SendError::Closed);
    assert_eq!(tx.try_send(&[7; 100]), Err(SendError::Closed), "and again");
    // A new consumer reads what was sent, and the producer goes on.
    let mut rx = seg.consumer("q", ThreadWait::new(5)).unwrap();
    assert_eq!(rx.try_recv(&mut [0u8; 128]), Ok(100));
    tx.try_send(b"x").unwrap();
}

#[test]
fn commit_len_clamps_to_the_grant_without_truncating_first() {
    assert_eq!(commit_hello(3), b"hel");
    assert_eq!(commit_hello(6), b"hello");
    assert_eq!(commit_hello(usize::MAX), b"hello");
    // Lengths whose low 32 bits are small: a truncation before the
    // clamp would send an empty or a short message.
    if let (Ok(wraps_to_0), Ok(wraps_to_3)) = (usize::try_from(1u64 << 32), usize::try_from((1u64 << 32) + 3)) {
        assert_eq!(commit_hello(wraps_to_0), b"hello", "commit_len(1 << 32)");
        assert_eq!(commit_hello(wraps_to_3), b"hello", "commit_len((1 << 32) + 3)");
    }
}

#[test]
fn a_producer_waiting_for_room_looks_at_tail_every_room_look_every_spins() {
    let layout = Layout::new().queue("q", 256).unwrap();
    let region = MockRegion::new(layout.size());
    let segment = Segment::create(region.region(), &layout, 1, 0).unwrap();
    let (tx, rx) =
        (segment.producer("q", ThreadWait::new(2)).unwrap(), segment.consumer("q", ThreadWait::new(3)).unwrap());
    assert_eq!(tx.spin.look_every, super::ROOM_LOOK_EVERY, "the producer's room waits are spaced");
    assert_eq!(rx.spin.look_every, 1, "the consumer looks at every spin");
}
