//! Every public call that takes a size, name, capacity, timeout or payload
//! length, at its edges (zero, one, max, max + 1, beyond the segment), with
//! the exact result.

use std::time::Duration;

use shm_core::format::{mailbox, queue, semaphore::MAX_COUNT};
use shm_core::mock::{MockRegion, ThreadWait};
use shm_core::{CallError, CreateError, Layout, LayoutError, OpenError, RecvError, Segment, SendError};
use shm_posix::{canonical_name, NameError, MAX_NAME_LEN};

/// (what, result, expected result)
type Case<'a> = (&'a str, Result<(), LayoutError>, Result<(), LayoutError>);

fn range(given: u32, min: u32, max: u32) -> Result<(), LayoutError> {
    Err(LayoutError::BadCapacity { given, min, max })
}

#[test]
fn layout_capacities() {
    let q = |c| Layout::new().queue("q", c).map(|_| ());
    let (qmin, qmax) = (queue::MIN_CAPACITY, queue::MAX_CAPACITY);
    let cases: Vec<Case> = vec![
        ("queue 0", q(0), range(0, qmin, qmax)),
        ("queue 1", q(1), range(1, qmin, qmax)),
        ("queue 63", q(63), range(63, qmin, qmax)),
        ("queue min", q(qmin), Ok(())),
        ("queue max", q(qmax), Ok(())),
        ("queue max + 1", q(qmax + 1), range(qmax + 1, qmin, qmax)),
        ("queue 2 * max", q(qmax * 2), range(qmax * 2, qmin, qmax)),
        ("queue not a power of two", q(qmin * 3), range(qmin * 3, qmin, qmax)),
        ("queue u32::MAX", q(u32::MAX), range(u32::MAX, qmin, qmax)),
    ];
    let m = |slots, size| Layout::new().mailbox("m", slots, size).map(|_| ());
    let (smax, zmax) = (mailbox::MAX_SLOTS, mailbox::MAX_SLOT_SIZE);
    let more = vec![
        ("mailbox 0 slots", m(0, 8), range(0, 1, smax)),
        ("mailbox 1 slot", m(1, 8), Ok(())),
        ("mailbox max slots", m(smax, 8), Ok(())),
        ("mailbox max + 1 slots", m(smax + 1, 8), range(smax + 1, 1, smax)),
        ("mailbox slot size 0", m(1, 0), range(0, 1, zmax)),
        ("mailbox slot size 1", m(1, 1), Ok(())),
        ("mailbox slot size max", m(1, zmax), Ok(())),
        ("mailbox slot size max + 1", m(1, zmax + 1), range(zmax + 1, 1, zmax)),
        ("semaphore max", Layout::new().semaphore("s", MAX_COUNT).map(|_| ()), Ok(())),
        (
            "semaphore max + 1",
            Layout::new().semaphore("s", MAX_COUNT + 1).map(|_| ()),
            range(MAX_COUNT + 1, 0, MAX_COUNT),
        ),
        ("segment beyond 4 GiB", Layout::new().mailbox("a", smax, zmax).map(|_| ()), Err(LayoutError::TooLarge)),
    ];
    for (what, got, want) in cases.into_iter().chain(more) {
        assert_eq!(got, want, "{what}");
    }
}

#[test]
fn channel_and_segment_names() {
    let l = |n: &str| Layout::new().queue(n, 64).map(|_| ());
    assert_eq!(l(""), Err(LayoutError::BadName { len: 0 }));
    assert_eq!(l("a"), Ok(()));
    assert_eq!(l(&"a".repeat(31)), Ok(()));
    assert_eq!(l(&"a".repeat(32)), Err(LayoutError::BadName { len: 32 }));
    assert_eq!(canonical_name(""), Err(NameError::Empty));
    assert_eq!(canonical_name("a").as_deref(), Ok("/a"));
    assert!(canonical_name(&"a".repeat(MAX_NAME_LEN)).is_ok());
    assert_eq!(canonical_name(&"a".repeat(MAX_NAME_LEN + 1)), Err(NameError::TooLong { len: MAX_NAME_LEN + 1 }));
}

#[test]
fn region_sizes() {
    let layout = Layout::new().queue("q", 64).unwrap();
    let need = layout.size();
    let mem = MockRegion::new(need + 64);
    let create = |len| Segment::create(mem.truncated(len), &layout, 1, 0).map(|_| ());
    assert_eq!(create(0), Err(CreateError::RegionTooSmall { needed: need, actual: 0 }));
    assert_eq!(create(need - 1), Err(CreateError::RegionTooSmall { needed: need, actual: need - 1 }));
    assert_eq!(create(need), Ok(()));
    assert_eq!(create(need + 64), Ok(()), "a larger region is fine");
    let open = |len| Segment::open(mem.truncated(len), &ThreadWait::new(2), Duration::ZERO).map(|_| ());
    assert_eq!(open(0), Err(OpenError::TooSmall { len: 0 }));
    assert_eq!(open(63), Err(OpenError::TooSmall { len: 63 }));
    assert_eq!(open(64), Err(OpenError::SizeMismatch { recorded: need as u64, actual: 64 }));
    assert_eq!(open(need - 1), Err(OpenError::SizeMismatch { recorded: need as u64, actual: need as u64 - 1 }));
    assert_eq!(open(need), Ok(()));
}

#[test]
fn payload_lengths_and_timeouts() {
    let layout = Layout::new().queue("q", 256).unwrap().mailbox("m", 1, 32).unwrap();
    let mem = MockRegion::new(layout.size());
    let seg = Segment::create(mem.region(), &layout, 1, 0).unwrap();
    let mut tx = seg.producer("q", ThreadWait::new(2)).unwrap();
    let mut rx = seg.consumer("q", ThreadWait::new(3)).unwrap();
    let max = tx.max_message();
    assert_eq!(max, 120);
    let too_large = |len| Err(SendError::TooLarge { len, max });
    assert_eq!(tx.try_send(&[]), Ok(()));
    assert_eq!(tx.try_send(&[1]), Ok(()));
    assert_eq!(tx.try_send(&vec![2; max]), Ok(()));
    assert_eq!(tx.try_send(&vec![3; max + 1]), too_large(max + 1));
    assert_eq!(tx.try_grant(usize::MAX).err(), too_large(usize::MAX).err());
    let mut buf = [0u8; 128];
    assert_eq!(rx.try_recv(&mut buf), Ok(0));
    assert_eq!(rx.recv_timeout(&mut buf, Duration::ZERO), Ok(1));
    assert_eq!(rx.try_recv(&mut [0u8; 10]), Err(RecvError::BufferTooSmall { needed: max }));
    assert_eq!(rx.recv_timeout(&mut buf, Duration::MAX), Ok(max), "Duration::MAX means no deadline");
    assert_eq!(rx.recv_timeout(&mut buf, Duration::ZERO), Err(RecvError::Timeout));

    let client = seg.client("m", ThreadWait::new(4)).unwrap();
    let server = seg.server("m", ThreadWait::new(5)).unwrap();
    let echo = |client: &shm_core::mailbox::Client<'_, ThreadWait>, req: &[u8], out: &mut [u8]| {
        std::thread::scope(|s| {
            s.spawn(|| {
                let _ = server.serve_timeout(Duration::from_secs(20), |_, len| len);
            });
            client.call_timeout(req, out, Duration::from_secs(20))
        })
    };
    assert_eq!(echo(&client, &[], &mut [0; 32]), Ok(0));
    assert_eq!(echo(&client, &[7], &mut [0; 32]), Ok(1));
    assert_eq!(echo(&client, &[7; 32], &mut [0; 32]), Ok(32));
    assert_eq!(
        client.call_timeout(&[7; 33], &mut [0; 64], Duration::ZERO),
        Err(CallError::TooLarge { len: 33, max: 32 })
    );
    assert_eq!(echo(&client, &[7; 20], &mut [0; 19]), Err(CallError::BufferTooSmall { needed: 20 }));
    assert_eq!(client.call_timeout(&[1], &mut [0; 32], Duration::ZERO), Err(CallError::Timeout));
    assert_eq!(client.try_claim().map(|_| ()), Ok(()), "a timed-out call gives its slot back");
    let slot = client.try_claim().unwrap();
    assert_eq!(slot.send(33).err(), Some(CallError::TooLarge { len: 33, max: 32 }));
}

/// New-user review 2026-12-03: shm-posix had no way to check, on open, that
/// a segment was declared as this side expects; a slot-size mismatch showed
/// up later as `TooLarge`. `expect_layout` says so at once.
#[test]
fn a_segment_opened_with_another_layout_is_named_a_mismatch() {
    let name = format!("/shm-test-{}-expect-layout", std::process::id());
    let ours = Layout::new().mailbox("rpc", 4, 256).unwrap();
    let theirs = Layout::new().mailbox("rpc", 4, 64).unwrap();
    let created = shm_posix::Segment::create(&name, &ours).unwrap();
    let opened = shm_posix::Segment::open(&name, Duration::ZERO).unwrap();
    assert!(opened.expect_layout(&ours).is_ok());
    let err = opened.expect_layout(&theirs).unwrap_err();
    assert!(
        matches!(err, shm_posix::OpenError::Core { source: OpenError::LayoutMismatch { expected, found }, .. }
            if expected == theirs.hash() && found == ours.hash()),
        "{err:?}"
    );
    assert!(err.to_string().contains("build both from the same layout"), "{err}");
    drop(opened);
    drop(created);
}
