//! Creating, validating and opening a segment on mock memory: every header
//! and table word corrupted in turn, short regions, the open handshake, and
//! finding and claiming channels.

use core::time::Duration;
use std::vec::Vec;

use super::LOCAL_FLAGS;
use crate::error::{ChannelName, ClaimError, Corruption, OpenError, Role};
use crate::format::queue as qu;
use crate::format::{self, header as h, table as t, TABLE_OFFSET};
use crate::mock::{MockRegion, ThreadWait};
use crate::test_support::{busy, fresh, layout, open, LONG, M, Q, SHORT};
use crate::{ChannelKind, Layout, Segment};

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
        (
            "flags: the other atomics discipline (locked or native)",
            h::FLAGS,
            LOCAL_FLAGS ^ h::flags::LOCKED_ATOMICS,
            Err(OpenError::AtomicsMismatch { segment_locked: !crate::sync::LOCKED })
        ),
        ("flags: unknown bits are ignored", h::FLAGS, 0xffff_fffe | LOCAL_FLAGS, Ok(())),
        ("reserved", h::RESERVED, 0xdead_beef, Ok(())),
        ("creator", h::CREATOR, 4242, Ok(())),
        ("session", h::SESSION, 99, Ok(())),
        ("creator_start (judged by adapters only)", h::CREATOR_START, 1, Ok(())),
        ("creator_domain (judged by adapters only)", h::CREATOR_DOMAIN, 1, Ok(())),
        ("kind: unknown", d0, 9, Err(ch(0, "kind"))),
        ("kind: another valid kind", d0, 1, Err(ch(0, "slots"))),
        ("kind: a direct mailbox where a queue was", d0, 5, Err(ch(0, "slots"))),
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

/// A kind this build does not know, in a segment of a newer minor version
/// (what a 2.1 build meets in a 2.2 segment with a direct mailbox): a clear
/// error naming both versions, not "corrupted".
#[test]
fn an_unknown_kind_from_a_newer_minor_names_both_versions() {
    let memory = fresh();
    let minor = format::FORMAT_MINOR + 1;
    memory.write_u32(h::VERSION, (format::FORMAT_MAJOR as u32) << 16 | minor as u32);
    memory.write_u32(TABLE_OFFSET + t::ENTRY_SIZE, 9);
    let err = open(&memory).map(|_| ()).unwrap_err();
    assert_eq!(err, OpenError::UnknownKind { channel: 1, kind: 9, minor });
    let text = err.to_string();
    let ours = std::format!("format {}.{}", format::FORMAT_MAJOR, format::FORMAT_MINOR);
    let theirs = std::format!("format {}.{minor}", format::FORMAT_MAJOR);
    assert!(text.contains(&ours) && text.contains(&theirs), "{text}");
    assert_eq!(crate::HasErrorKind::kind(&err), crate::ErrorKind::Incompatible);
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

/// Regression from review: a second handle of the same process for a role
/// (of either channel kind) is refused.
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

/// Regression from review: the layout hash is reported from the validated
/// copy, not read again from the segment.
#[test]
fn info_reports_the_layout_hash_validated_at_open() {
    let memory = fresh();
    let seg = open(&memory).unwrap();
    memory.write_u32(h::LAYOUT_HASH_LO, 0x1234_5678);
    assert_eq!(seg.info().layout_hash, layout().hash());
}

/// An opener that reads the header after opening (as shm-baremetal's attach
/// does, to match the creator's session) while the creator re-creates the
/// segment in place: whenever `is_current` says yes afterwards, what it read
/// is the opened generation's. Each create records session = its own
/// generation, so a mix of two generations shows as session != generation.
/// (Before `is_current` fenced, an opener could pair the old generation with
/// the new session: the dual-core firmware then reported a reset of a peer
/// that had not reset.)
#[test]
fn header_fields_read_after_open_are_vouched_for_by_is_current() {
    // Opens that succeeded, then tries at most (a bound, not a time).
    let (wanted, rounds) = if cfg!(miri) { (1, 20) } else { (20_000, 10_000_000) };
    let memory = fresh();
    let next = open(&memory).unwrap().generation().wrapping_add(1);
    let first = Segment::create(memory.region(), &layout(), 1, next).unwrap().generation();
    assert_eq!(first, next);
    let stop = std::sync::atomic::AtomicBool::new(false);
    let (checked, vouched) = std::thread::scope(|s| {
        s.spawn(|| {
            let mut generation = first;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                generation = generation.wrapping_add(1);
                let seg = Segment::create(memory.region(), &layout(), 1, generation).unwrap();
                assert_eq!(seg.generation(), generation);
                // READY for a while, so that opens succeed between creates.
                (0..500).for_each(|_| std::hint::spin_loop());
            }
        });
        // Stops the creator however this loop ends (a failed assertion too).
        struct Stop<'a>(&'a std::sync::atomic::AtomicBool);
        impl Drop for Stop<'_> {
            fn drop(&mut self) {
                self.0.store(true, std::sync::atomic::Ordering::Relaxed);
            }
        }
        let _stop = Stop(&stop);
        let (mut checked, mut vouched) = (0u32, 0u32);
        for _ in 0..rounds {
            if checked >= wanted {
                break;
            }
            let Ok(seg) = Segment::open(memory.region(), &ThreadWait::new(2), Duration::ZERO) else { continue };
            checked += 1;
            // Widen the window between `open`'s check and the later read,
            // as the firmware's cache maintenance and checks do.
            (0..200).for_each(|_| std::hint::spin_loop());
            let info = seg.info();
            if seg.is_current() {
                vouched += 1;
                assert_eq!(info.session, seg.generation(), "fields of two generations passed as one");
            }
        }
        (checked, vouched)
    });
    // Not a timing claim: the loop only needs to have exercised the check.
    assert!(checked > 0 && vouched > 0 || cfg!(miri), "opened {checked}, vouched for {vouched}");
}
