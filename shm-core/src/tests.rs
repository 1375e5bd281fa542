//! Cross-module tests on mock memory: the hostile-bytes table, channel
//! behaviour, and thread stress tests.

use core::time::Duration;
use std::vec::Vec;

use crate::conformance;
use crate::error::{CallError, ChannelName, ClaimError, Corruption, OpenError, RecvError, Role, SendError, ServeError};
use crate::format::mailbox::{self as mb, slot, slot_offset};
use crate::format::queue as qu;
use crate::format::{self, header as h, table as t, AREAS_OFFSET, TABLE_OFFSET};
use crate::mock::{Graveyard, MockRegion, ThreadWait};
use crate::{ChannelKind, Layout, Segment};

const SHORT: Duration = Duration::from_millis(20);
const LONG: Duration = Duration::from_secs(20);

/// A queue "q" (channel 0, 1024-byte ring) and a mailbox "m" (channel 1,
/// 2 slots of 64 bytes).
fn layout() -> Layout {
    Layout::new().queue("q", 1024).unwrap().mailbox("m", 2, 64).unwrap()
}

const Q: usize = AREAS_OFFSET; // queue area
const RING: usize = Q + qu::RING;
const M: usize = RING + 1024; // mailbox area
const SLOT0: usize = M + slot_offset(0, 64);
const SLOT1: usize = M + slot_offset(1, 64);

fn busy(channel: &str, role: Role, holder: u32) -> ClaimError {
    ClaimError::Busy { channel: ChannelName::new(channel), role, holder }
}

fn fresh() -> MockRegion {
    let memory = MockRegion::new(layout().size());
    Segment::create(memory.region(), &layout(), 1, 0).unwrap();
    memory
}

fn open(memory: &MockRegion) -> Result<Segment<'_>, OpenError> {
    Segment::open(memory.region(), &ThreadWait::new(9), Duration::ZERO)
}

fn ch(i: u8, word: &'static str) -> OpenError {
    OpenError::Corrupted(Corruption::channel(i, word))
}

fn hdr(word: &'static str) -> OpenError {
    OpenError::Corrupted(Corruption::header(word))
}

/// Every word of the header and of a channel table entry, corrupted in turn,
/// with the exact result `open` must give.
#[test]
fn hostile_header_and_table_words() {
    let d0 = TABLE_OFFSET; // channel 0's table entry
    let d1 = TABLE_OFFSET + t::ENTRY_SIZE; // channel 1's
    let size = layout().size() as u32;
    let cases: Vec<(&str, usize, u32, Result<(), OpenError>)> = std::vec![
        ("magic_lo", h::MAGIC_LO, 0, Err(OpenError::BadMagic)),
        ("magic_hi", h::MAGIC_HI, 0x1234_5678, Err(OpenError::BadMagic)),
        ("version: older major", h::VERSION, 1 << 16 | 1, Err(OpenError::VersionMismatch { major: 1, minor: 1 })),
        ("version: newer major", h::VERSION, 3 << 16, Err(OpenError::VersionMismatch { major: 3, minor: 0 })),
        ("version: newer minor is compatible", h::VERSION, 2 << 16 | 7, Ok(())),
        ("endian", h::ENDIAN, 0x0403_0201, Err(OpenError::EndianMismatch)),
        ("layout_hash_lo", h::LAYOUT_HASH_LO, 0, Err(hdr("layout_hash"))),
        ("layout_hash_hi", h::LAYOUT_HASH_HI, 1, Err(hdr("layout_hash"))),
        (
            "total_size: larger than region",
            h::TOTAL_SIZE,
            size + 64,
            Err(OpenError::SizeMismatch { recorded: size as u64 + 64, actual: size as u64 })
        ),
        (
            "total_size: below the table",
            h::TOTAL_SIZE,
            64,
            Err(OpenError::SizeMismatch { recorded: 64, actual: size as u64 })
        ),
        ("total_size: cuts the last channel", h::TOTAL_SIZE, size - 64, Err(ch(1, "size"))),
        ("channel_count: above the table", h::CHANNEL_COUNT, 17, Err(hdr("channel_count"))),
        ("channel_count: drops a channel", h::CHANNEL_COUNT, 1, Err(hdr("layout_hash"))),
        ("channel_count: an empty entry", h::CHANNEL_COUNT, 3, Err(ch(2, "kind"))),
        ("state: EMPTY", h::STATE, 0, Err(OpenError::NotReady)),
        ("state: INITIALIZING", h::STATE, 1, Err(OpenError::NotReady)),
        ("state: POISONED", h::STATE, 3, Err(OpenError::Poisoned)),
        ("state: garbage", h::STATE, 77, Err(hdr("state"))),
        ("generation", h::GENERATION, 0xffff_ffff, Ok(())),
        ("creator", h::CREATOR, 4242, Ok(())),
        ("session", h::SESSION, 99, Ok(())),
        ("creator_start (judged by adapters only)", h::CREATOR_START, 1, Ok(())),
        ("creator_domain (judged by adapters only)", h::CREATOR_DOMAIN, 1, Ok(())),
        ("reserved, second word", h::RESERVED + 4, 1, Ok(())),
        ("kind: unknown", d0, 9, Err(ch(0, "kind"))),
        ("kind: another valid kind", d0, 1, Err(ch(0, "slots"))),
        ("reserved0", d0 + t::RESERVED0, 5, Ok(())),
        ("offset: unaligned", d0 + t::OFFSET, Q as u32 + 4, Err(ch(0, "offset"))),
        ("offset: inside the table", d0 + t::OFFSET, TABLE_OFFSET as u32, Err(ch(0, "offset"))),
        ("offset: beyond the segment", d0 + t::OFFSET, u32::MAX - 63, Err(ch(0, "offset"))),
        ("offset: overlaps the previous channel", d1 + t::OFFSET, Q as u32, Err(ch(1, "offset"))),
        ("offset: moved but in bounds", d1 + t::OFFSET, M as u32 + format::CACHE_LINE as u32, Err(ch(1, "size"))),
        ("size", d0 + t::SIZE, (qu::RING + 1024 + 1) as u32, Err(ch(0, "size"))),
        ("capacity: not a power of two", d0 + t::CAPACITY, 1000, Err(ch(0, "capacity"))),
        ("capacity: huge", d0 + t::CAPACITY, 1 << 31, Err(ch(0, "capacity"))),
        ("capacity: consistent but different geometry", d0 + t::CAPACITY, 512, Err(ch(0, "size"))),
        ("slot_size: of a queue", d0 + t::SLOT_SIZE, 1, Err(ch(0, "slot_size"))),
        ("slots: 0", d1 + t::SLOTS, 0, Err(ch(1, "slots"))),
        ("slot_size: 0", d1 + t::SLOT_SIZE, 0, Err(ch(1, "slot_size"))),
        ("reserved1", d0 + t::RESERVED1, 5, Ok(())),
        ("reserved1'", d0 + t::RESERVED1 + 4, 5, Ok(())),
        ("name: empty", d0 + t::NAME, 0, Err(ch(0, "name"))),
        ("name: other valid name", d0 + t::NAME, u32::from_le_bytes(*b"z\0\0\0"), Err(hdr("layout_hash"))),
        ("name: duplicate of channel 0", d1 + t::NAME, u32::from_le_bytes(*b"q\0\0\0"), Err(ch(1, "name"))),
        ("name: bytes after the NUL", d0 + t::NAME + 8, 0x41, Err(ch(0, "name"))),
        ("name: no NUL at all", d0 + t::NAME + t::NAME_BYTES - 4, 0x4141_4141, Err(ch(0, "name"))),
        ("name: not UTF-8", d0 + t::NAME, u32::from_le_bytes([0xff, 0, 0, 0]), Err(ch(0, "name"))),
    ];
    for (what, offset, value, expected) in cases {
        let memory = fresh();
        memory.write_u32(offset, value);
        let got = open(&memory).map(|_| ());
        assert_eq!(got, expected, "corrupting {what} (offset {offset}) with {value:#x}");
    }
}

#[test]
fn regions_too_small_or_truncated_are_refused() {
    let memory = fresh();
    let size = layout().size();
    assert_eq!(
        Segment::open(memory.truncated(63), &ThreadWait::new(2), SHORT).unwrap_err(),
        OpenError::TooSmall { len: 63 }
    );
    assert_eq!(
        Segment::open(memory.truncated(size - 64), &ThreadWait::new(2), SHORT).unwrap_err(),
        OpenError::SizeMismatch { recorded: size as u64, actual: size as u64 - 64 }
    );
    let small = MockRegion::new(size - 4);
    assert_eq!(
        Segment::create(small.region(), &layout(), 1, 0).unwrap_err(),
        crate::CreateError::RegionTooSmall { needed: size, actual: size - 4 }
    );
    // A larger region (a fixed RAM window, say) is fine.
    let big = MockRegion::new(size + 4096);
    Segment::create(big.region(), &layout(), 1, 0).unwrap();
    assert!(Segment::open(big.region(), &ThreadWait::new(2), SHORT).is_ok());
}

#[test]
fn open_waits_for_the_creator_within_its_budget() {
    let memory = MockRegion::new(layout().size());
    // Never initialized: NotReady once the budget is spent.
    assert_eq!(Segment::open(memory.region(), &ThreadWait::new(2), SHORT).unwrap_err(), OpenError::NotReady);
    std::thread::scope(|s| {
        let opener =
            s.spawn(|| Segment::open(memory.region(), &ThreadWait::new(2), LONG).map(|seg| seg.channels().len()));
        std::thread::sleep(Duration::from_millis(20));
        Segment::create(memory.region(), &layout(), 1, 0).unwrap();
        assert_eq!(opener.join().unwrap(), Ok(2));
    });
}

#[test]
fn expected_layout_is_enforced_and_reinit_bumps_generation() {
    let memory = fresh();
    let other = Layout::new().queue("q", 2048).unwrap();
    let err = Segment::open_expecting(memory.region(), &other, &ThreadWait::new(2), SHORT).unwrap_err();
    assert_eq!(err, OpenError::LayoutMismatch { expected: other.hash(), found: layout().hash() });
    let old = Segment::open_expecting(memory.region(), &layout(), &ThreadWait::new(2), SHORT).unwrap();
    assert!(old.is_current());
    let new = Segment::create(memory.region(), &layout(), 3, 1).unwrap();
    assert!(!old.is_current(), "a re-initialized segment must look stale to old handles");
    assert_eq!(new.info().generation, old.info().generation + 1);
    new.poison();
    assert_eq!(open(&memory).unwrap_err(), OpenError::Poisoned);
}

#[test]
fn channel_lookup_by_name_and_kind() {
    let memory = fresh();
    let seg = open(&memory).unwrap();
    assert_eq!(
        seg.producer("nope", ThreadWait::new(2)).err(),
        Some(ClaimError::NotFound { channel: ChannelName::new("nope") })
    );
    assert_eq!(
        seg.producer("m", ThreadWait::new(2)).err(),
        Some(ClaimError::WrongKind {
            channel: ChannelName::new("m"),
            expected: ChannelKind::Queue,
            found: ChannelKind::Mailbox
        })
    );
    assert_eq!(
        seg.server("q", ThreadWait::new(2)).err(),
        Some(ClaimError::WrongKind {
            channel: ChannelName::new("q"),
            expected: ChannelKind::Mailbox,
            found: ChannelKind::Queue
        })
    );
}

/// A claim error names the channel, what is wrong and what to do.
#[test]
fn claim_errors_name_the_channel_and_the_remedy() {
    let memory = fresh();
    let seg = open(&memory).unwrap();
    let _rx = seg.consumer("q", ThreadWait::new(2)).unwrap();
    let busy = seg.consumer("q", ThreadWait::new(3)).err().unwrap().to_string();
    assert_eq!(
        busy,
        "queue `q` already has a consumer, live peer 2, and a queue has one consumer by design: \
         stop that consumer first, or declare another channel for this one"
    );
    let _server = seg.server("m", ThreadWait::new(2)).unwrap();
    let busy = seg.server("m", ThreadWait::new(3)).err().unwrap().to_string();
    assert!(busy.starts_with("mailbox `m` already has a server, live peer 2, and a mailbox has one server"), "{busy}");
    let missing = seg.producer("nope", ThreadWait::new(2)).err().unwrap().to_string();
    assert!(missing.starts_with("no channel named `nope` in the segment: "), "{missing}");
    let wrong = seg.server("q", ThreadWait::new(2)).err().unwrap().to_string();
    assert!(wrong.starts_with("channel `q` is a queue, not a mailbox: "), "{wrong}");
}

/// Every error is a `core::error::Error` with a kind, so `?` lifts it into
/// a `Box<dyn Error>`, and its message reads as a sentence: lowercase, no
/// trailing period.
#[test]
fn errors_are_standard_errors_with_lowercase_messages() {
    use crate::error::{CreateError, ErrorKind, HasErrorKind, LayoutError, SemaphoreError};
    fn boxed<E: HasErrorKind + Send + Sync + 'static>(e: E) -> (ErrorKind, std::boxed::Box<dyn std::error::Error>) {
        (e.kind(), std::boxed::Box::new(e))
    }
    let at = Corruption::channel(0, "head");
    let all = [
        boxed(LayoutError::DuplicateName),
        boxed(CreateError::RegionTooSmall { needed: 2, actual: 1 }),
        boxed(OpenError::NotReady),
        boxed(OpenError::Corrupted(Corruption::header("state"))),
        boxed(busy("q", Role::Producer, 7)),
        boxed(ClaimError::Corrupted { channel: ChannelName::default(), at }),
        boxed(SemaphoreError::Timeout),
        boxed(SendError::Full),
        boxed(RecvError::BufferTooSmall { needed: 9 }),
        boxed(CallError::Dropped),
        boxed(ServeError::Replaced),
        boxed(ErrorKind::PeerDied),
    ];
    for (kind, e) in &all {
        let text = e.to_string();
        let first = text.chars().next().unwrap();
        assert!(!first.is_uppercase() && !text.ends_with('.'), "{kind:?}: {text}");
        assert!(text.contains(':') || matches!(kind, ErrorKind::PeerDied), "says what to do: {text}");
    }
    assert_eq!(ChannelName::new(&"é".repeat(20)).as_str().len(), 30, "cut on a character boundary");
}

// ---- queue ----

#[test]
fn queue_roles_are_claimed_once_and_recovered_from_the_dead() {
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
    let mut tx = seg.producer("q", ThreadWait::with_graveyard(4, &graveyard)).unwrap();
    tx.try_send(b"after").unwrap();
    let mut rx = seg.consumer("q", ThreadWait::new(5)).unwrap();
    let mut buf = [0u8; 64];
    let n = rx.try_recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"before the crash", "a committed message survives its producer");
    let n = rx.try_recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"after");
}

#[test]
fn queue_full_empty_too_large_and_wrap() {
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
fn queue_consumer_reports_a_dead_producer() {
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
fn hostile_queue_words() {
    type Case = (&'static str, usize, u32, &'static str);
    // (what, offset, value, which side errs and how: "recv:<word>", "send:<word>", "ok")
    let cases: [Case; 15] = [
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
fn queue_stress_across_threads() {
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

// ---- mailbox ----

#[test]
fn mailbox_call_and_serve_with_grants() {
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
fn mailbox_slots_run_out_and_come_back() {
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
fn mailbox_dead_server_dead_client_and_takeover() {
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
fn hostile_mailbox_words() {
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
    // The close hint alone (`server_waiting`) is not a close: the role word
    // decides. A call waits for the (live, idle) server and times out.
    memory.write_u32(M + mb::SERVER_WAITING, mb::SERVER_CLOSED);
    assert_eq!(client.call_timeout(b"ok", &mut [0; 64], SHORT), Err(CallError::Timeout));
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
fn mailbox_stress_many_clients() {
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

#[test]
fn semaphore_channel_in_a_segment() {
    let layout = Layout::new().semaphore("s", 0).unwrap();
    let memory = MockRegion::new(layout.size());
    let seg = Segment::create(memory.region(), &layout, 1, 0).unwrap();
    conformance::semaphore_basics(&seg.semaphore("s", ThreadWait::new(1)).unwrap());
    let layout = Layout::new().semaphore("s", 5).unwrap();
    let seg = Segment::create(memory.region(), &layout, 1, 0).unwrap();
    assert_eq!(seg.semaphore_words("s").unwrap().count(), 5);
}

/// Regressions from review: a second handle of the same process for a role,
/// `reclaim` of a slot the server still holds, and the layout hash reported
/// from the validated copy.
#[test]
fn roles_are_exclusive_within_a_process_too() {
    let memory = fresh();
    let seg = open(&memory).unwrap();
    let tx = seg.producer("q", ThreadWait::new(2)).unwrap();
    assert_eq!(seg.producer("q", ThreadWait::new(2)).err(), Some(busy("q", Role::Producer, 2)));
    let rx = seg.consumer("q", ThreadWait::new(2)).unwrap();
    assert_eq!(seg.consumer("q", ThreadWait::new(2)).err(), Some(busy("q", Role::Consumer, 2)));
    let server = seg.server("m", ThreadWait::new(2)).unwrap();
    assert_eq!(seg.server("m", ThreadWait::new(2)).err(), Some(busy("m", Role::Server, 2)));
    drop((tx, rx, server));
    assert!(seg.producer("q", ThreadWait::new(2)).is_ok(), "a role let go can be claimed again");
}

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

#[test]
fn info_reports_the_layout_hash_validated_at_open() {
    let memory = fresh();
    let seg = open(&memory).unwrap();
    memory.write_u32(h::LAYOUT_HASH_LO, 0x1234_5678);
    assert_eq!(seg.info().layout_hash, layout().hash());
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
fn mailbox_request_id_wraps() {
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
