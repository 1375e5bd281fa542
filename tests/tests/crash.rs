//! A peer killed (SIGKILL) at each named protocol step: the other side gets
//! an error that names what happened, within its timeout; nothing committed
//! is lost or duplicated, nothing uncommitted is delivered; and the segment
//! serves again after recovery.

use std::os::unix::process::ExitStatusExt;
use std::time::Duration;

use shm_core::{conformance, CallError, Layout, RecvError, ServeError};
use shm_posix::{CreateOptions, FutexWait, OpenError, Segment};
use shm_tests::{assert_clean, unique, Peer};

const PEER: &str = env!("CARGO_BIN_EXE_peer");
const WATCHDOG: Duration = Duration::from_secs(60);
/// For waits whose outcome does not depend on their length: a timeout that
/// must expire, or a dead peer (found at the first liveness check, and an
/// expired wait checks the peer too).
const SHORT: Duration = Duration::from_millis(300);

/// Starts `peer args` set to crash at `point` after `skip` passes.
fn crashing(point: &str, skip: u64, args: &[&str]) -> Peer {
    assert!(shm_core::crash::POINTS.contains(&point), "unknown crash point {point}");
    let skip = skip.to_string();
    Peer::spawn_env(PEER, args, &[("SHM_CRASH_AT", point), ("SHM_CRASH_SKIP", &skip)])
}

/// Checks `peer` died of SIGKILL (at its crash point); returns its PID.
fn assert_killed(peer: Peer) -> u32 {
    let pid = peer.pid();
    let status = peer.finish(WATCHDOG);
    assert_eq!(status.signal(), Some(9), "peer should have been killed at its crash point, exited with {status}");
    pid
}

/// Runs `peer args` until it crashes at `point`.
fn crash_at(point: &str, skip: u64, args: &[&str]) -> u32 {
    assert_killed(crashing(point, skip, args))
}

fn one_slot() -> Layout {
    Layout::new().mailbox("m", 1, 256).unwrap()
}

/// Serves one call from a live client in this process: the segment works.
fn assert_serves(seg: &Segment, server: &shm_core::mailbox::Server<'_, FutexWait>) {
    let client = seg.client("m", FutexWait::new()).unwrap();
    std::thread::scope(|s| {
        s.spawn(|| conformance::mailbox_serve(server, 1));
        assert_eq!(conformance::mailbox_call(&client, 1, 9).unwrap(), vec![0]);
    });
}

/// Review finding 1: a creator killed while it builds the segment (sized
/// but without its magic yet, or half-initialized) leaves nothing behind:
/// the name is free at once, for anyone, and no opener ever sees a
/// half-built segment. (It used to leave a file without the magic that
/// nothing would remove, or an INITIALIZING one, under the name.)
#[test]
fn creator_killed_during_initialization_leaves_the_name_free() {
    for point in ["segment.sized", "segment.initializing"] {
        let name = unique(&format!("crash-{point}"));
        crash_at(point, 0, &["create-and-hang", &name]);
        assert_clean(&name);
        let err = Segment::open(&name, Duration::ZERO).unwrap_err();
        assert!(matches!(err, OpenError::NotFound { .. }), "{point}: {err:?}");
        // Free without replacing anything.
        let create = CreateOptions { replace_stale: false, ..Default::default() };
        let seg = Segment::create_with(&name, &one_slot(), create)
            .unwrap_or_else(|e| panic!("{point}: the name of a creator killed mid-creation is free: {e}"));
        let server = seg.server("m", FutexWait::new()).unwrap();
        assert_serves(&seg, &server);
        drop(server);
        drop(seg);
        assert_clean(&name);
    }
}

#[test]
fn client_killed_holding_a_slot_before_publishing() {
    for point in ["mailbox.client.claimed", "mailbox.client.written"] {
        let name = unique(&format!("crash-{point}"));
        {
            let seg = Segment::create(&name, &one_slot()).unwrap();
            let server = seg.server("m", FutexWait::new()).unwrap();
            crash_at(point, 0, &["call-once", &name]);
            // The unpublished request is never delivered...
            assert_eq!(server.recv_timeout(SHORT).err(), Some(ServeError::Timeout), "{point}");
            // ...and the slot it held is not lost: the server reclaims it.
            let client = seg.client("m", FutexWait::new()).unwrap();
            assert_eq!(client.try_claim().err(), Some(CallError::NoFreeSlot), "{point}");
            assert_eq!(server.reclaim(), 1, "{point}");
            assert_serves(&seg, &server);
        }
        assert_clean(&name);
    }
}

#[test]
fn client_killed_after_publishing_before_signalling() {
    let name = unique("crash-published");
    {
        let seg = Segment::create(&name, &one_slot()).unwrap();
        let server = seg.server("m", FutexWait::new()).unwrap();
        crash_at("mailbox.client.published", 0, &["call-once", &name]);
        // Published means committed: the server finds it without the signal
        // (a generous timeout: it is there already, whatever the load).
        let request = server.recv_timeout(WATCHDOG).expect("the published request is served");
        assert_eq!(request.data(), b"crash test");
        let n = request.len();
        request.respond(n).unwrap();
        assert_eq!(server.reclaim(), 1, "the dead client's answered slot is freed");
        assert_serves(&seg, &server);
    }
    assert_clean(&name);
}

#[test]
fn server_killed_holding_a_request() {
    let name = unique("crash-holding");
    {
        let seg = Segment::create(&name, &one_slot()).unwrap();
        let client = seg.client("m", FutexWait::new()).unwrap();
        let server = crashing("mailbox.server.holding", 0, &["serve-once", &name]);
        let result = client.call_timeout(b"hello", &mut [0; 256], Duration::from_secs(20));
        assert_eq!(result, Err(CallError::PeerDied));
        assert_killed(server);
        // A new server takes over the dead one's role and slot.
        let server = seg.server("m", FutexWait::new()).unwrap();
        assert_eq!(server.stats().slots_by_state[0], 1, "the slot is free again");
        assert_serves(&seg, &server);
    }
    assert_clean(&name);
}

#[test]
fn server_killed_after_responding_before_waking() {
    let name = unique("crash-responded");
    {
        let seg = Segment::create(&name, &one_slot()).unwrap();
        let client = seg.client("m", FutexWait::with_spin(0)).unwrap();
        let server = crashing("mailbox.server.responded", 0, &["serve-once", &name]);
        // The response was committed: the client gets it even without a wake.
        let seqs = conformance::mailbox_call(&client, 1, 5).unwrap();
        assert_eq!(seqs, vec![0]);
        assert_killed(server);
        let server = seg.server("m", FutexWait::new()).unwrap();
        assert_serves(&seg, &server);
    }
    assert_clean(&name);
}

fn one_direct_slot() -> Layout {
    Layout::new().direct("d", 1, 256).unwrap()
}

/// Serves one call on direct mailbox "d" from a live client in this
/// process: the segment works.
fn assert_serves_direct(seg: &Segment, server: &mut shm_core::direct::Server<'_, FutexWait>) {
    let mut client = seg.direct_client("d", FutexWait::new()).unwrap();
    std::thread::scope(|s| {
        s.spawn(|| conformance::direct_serve(server, 1));
        assert_eq!(conformance::direct_call(&mut client, 1, 9).unwrap(), vec![0]);
    });
}

/// A direct client killed once connected, or with its request written but
/// not posted: nothing is delivered, and the slot it held comes back, to
/// the server's `reclaim` or to the next client that connects (which takes
/// it over without the server's help).
#[test]
fn direct_client_killed_before_posting() {
    for point in ["direct.client.connected", "direct.client.written"] {
        for reclaim in [true, false] {
            let name = unique(&format!("crash-{point}-{reclaim}"));
            {
                let seg = Segment::create(&name, &one_direct_slot()).unwrap();
                let mut server = seg.direct_server("d", FutexWait::new()).unwrap();
                crash_at(point, 0, &["direct-call-once", &name]);
                assert_eq!(server.recv_timeout(SHORT).err(), Some(ServeError::Timeout), "{point}");
                if reclaim {
                    assert_eq!(server.reclaim(), 1, "{point}");
                } else {
                    let client =
                        seg.direct_client("d", FutexWait::new()).expect("the dead client's slot is taken over");
                    assert_eq!(server.reclaim(), 0, "{point}: the slot is the new client's");
                    drop(client);
                }
                assert_serves_direct(&seg, &mut server);
            }
            assert_clean(&name);
        }
    }
}

/// A direct client killed while it takes over a dead client's slot (its
/// id in the slot's owner word, the state not yet IDLE): the slot is a dead
/// client's again, and the next client takes it over, or the server frees
/// it.
#[test]
fn direct_client_killed_taking_over_a_slot() {
    for reclaim in [true, false] {
        let name = unique(&format!("crash-direct-took-over-{reclaim}"));
        {
            let seg = Segment::create(&name, &one_direct_slot()).unwrap();
            let mut server = seg.direct_server("d", FutexWait::new()).unwrap();
            let first = crash_at("direct.client.connected", 0, &["direct-call-once", &name]);
            let second = crash_at("direct.client.took_over", 0, &["direct-call-once", &name]);
            let view = shm_posix::list::inspect(&name).unwrap();
            let peers = format!("{:?}", view.channels[0].peers);
            assert!(peers.contains(&second.to_string()), "the second owns the slot: {peers} (first {first})");
            if reclaim {
                assert_eq!(server.reclaim(), 1);
            } else {
                drop(seg.direct_client("d", FutexWait::new()).expect("taken over again"));
            }
            assert_serves_direct(&seg, &mut server);
        }
        assert_clean(&name);
    }
}

/// Posted means committed: the server finds the request without the ring,
/// answers it, and then frees the dead client's slot.
#[test]
fn direct_client_killed_after_posting_before_ringing() {
    let name = unique("crash-direct-posted");
    {
        let seg = Segment::create(&name, &one_direct_slot()).unwrap();
        let mut server = seg.direct_server("d", FutexWait::new()).unwrap();
        crash_at("direct.client.posted", 0, &["direct-call-once", &name]);
        let request = server.recv_timeout(WATCHDOG).expect("the posted request is served");
        assert_eq!(request.data(), b"crash test");
        let n = request.len();
        request.respond(n).unwrap();
        assert_eq!(server.reclaim(), 1, "the dead client's answered slot is freed");
        assert_serves_direct(&seg, &mut server);
    }
    assert_clean(&name);
}

/// A direct server killed holding a request: the caller learns it died; a
/// new server fails the request (it may have been half-served) and the
/// client's next call goes through.
#[test]
fn direct_server_killed_holding_a_request() {
    let name = unique("crash-direct-holding");
    {
        let seg = Segment::create(&name, &one_direct_slot()).unwrap();
        let mut client = seg.direct_client("d", FutexWait::new()).unwrap();
        let server = crashing("direct.server.holding", 0, &["serve-direct", &name, "1"]);
        let result = client.call_timeout(b"hello", &mut [0; 256], Duration::from_secs(20));
        assert_eq!(result, Err(CallError::PeerDied));
        assert_killed(server);
        let mut server = seg.direct_server("d", FutexWait::new()).unwrap();
        std::thread::scope(|s| {
            s.spawn(|| conformance::direct_serve(&mut server, 1));
            assert_eq!(conformance::direct_call(&mut client, 1, 9).unwrap(), vec![0]);
        });
    }
    assert_clean(&name);
}

/// A direct server killed after posting its response, before waking the
/// client: the response was committed, the client gets it.
#[test]
fn direct_server_killed_after_responding_before_waking() {
    let name = unique("crash-direct-responded");
    {
        let seg = Segment::create(&name, &one_direct_slot()).unwrap();
        let mut client = seg.direct_client("d", FutexWait::with_spin(0)).unwrap();
        let server = crashing("direct.server.responded", 0, &["serve-direct", &name, "1"]);
        assert_eq!(conformance::direct_call(&mut client, 1, 5).unwrap(), vec![0]);
        assert_killed(server);
        drop(client);
        let mut server = seg.direct_server("d", FutexWait::new()).unwrap();
        assert_serves_direct(&seg, &mut server);
    }
    assert_clean(&name);
}

fn queue_layout() -> Layout {
    Layout::new().queue("q", 4096).unwrap()
}

#[test]
fn producer_killed_between_grant_and_commit() {
    let name = unique("crash-granted");
    {
        let seg = Segment::create(&name, &queue_layout()).unwrap();
        let mut rx = seg.consumer("q", FutexWait::new()).unwrap();
        let max = seg.queue_view("q").unwrap().max_message() as usize;
        // 100 messages committed, the 101st granted and written, never committed.
        let producer = crashing("queue.producer.granted", 100, &["produce", &name, "1000", "11"]);
        conformance::queue_receive(&mut rx, 100, 11, max).expect("all committed messages, nothing more");
        assert_killed(producer);
        assert_eq!(rx.read_timeout(SHORT).err(), Some(RecvError::PeerDied));
        // A new producer takes the dead one's role; the stream goes on.
        let producer = Peer::spawn(PEER, &["produce", &name, "500", "12"]);
        conformance::queue_receive(&mut rx, 500, 12, max).expect("the new producer's messages");
        assert!(producer.finish(WATCHDOG).success());
    }
    assert_clean(&name);
}

#[test]
fn producer_killed_after_commit_before_waking() {
    let name = unique("crash-committed");
    {
        let seg = Segment::create(&name, &queue_layout()).unwrap();
        let mut rx = seg.consumer("q", FutexWait::with_spin(0)).unwrap();
        let max = seg.queue_view("q").unwrap().max_message() as usize;
        let producer = crashing("queue.producer.committed", 49, &["produce", &name, "1000", "13"]);
        // The 50th commit happened: 50 messages arrive, not one more.
        conformance::queue_receive(&mut rx, 50, 13, max).expect("the committed messages");
        assert_killed(producer);
        assert_eq!(rx.read_timeout(SHORT).err(), Some(RecvError::PeerDied));
        let producer = Peer::spawn(PEER, &["produce", &name, "10", "14"]);
        conformance::queue_receive(&mut rx, 10, 14, max).expect("recovered");
        assert!(producer.finish(WATCHDOG).success());
    }
    assert_clean(&name);
}

/// A producer killed while a wait set waits on its consumer and on a quiet
/// subscriber: once everything committed is read, the wait reports the dead
/// producer instead of sleeping to its timeout (reviews 2026-12-03: a wait
/// set never noticed a dead peer; with `Duration::MAX` it waited forever).
#[test]
fn a_wait_set_reports_a_dead_producer() {
    use shm_posix::{WaitSet, WaitSetError};
    let name = unique("crash-waitset");
    {
        let layout = queue_layout().broadcast("b", 4096, 2, shm_core::broadcast::Policy::Overwrite).unwrap();
        let seg = Segment::create(&name, &layout).unwrap();
        let mut rx = seg.consumer("q", FutexWait::new()).unwrap();
        let quiet = seg.subscriber("b", FutexWait::new()).unwrap();
        let producer = crashing("queue.producer.committed", 9, &["produce", &name, "1000", "15"]);
        let mut buf = vec![0u8; seg.queue_view("q").unwrap().max_message() as usize];
        let mut got = 0;
        let end = loop {
            match WaitSet::new().wait(&[&rx, &quiet], WATCHDOG) {
                Ok(0) => {
                    rx.try_recv(&mut buf).unwrap();
                    got += 1;
                }
                Ok(i) => panic!("endpoint {i} was never fed"),
                Err(e) => break e,
            }
        };
        assert_killed(producer);
        assert_eq!(end, WaitSetError::PeerDied { index: 0 }, "after {got} messages");
        assert_eq!(got, 10, "every committed message first");
        // A loop of waits shorter than a liveness slice hears of it too
        // (twelfth review pass: 60 of 60 such waits said `Timeout`).
        let short = Duration::from_millis(20);
        assert_eq!(WaitSet::new().wait(&[&quiet, &rx], short), Err(WaitSetError::PeerDied { index: 1 }));
        // A poll does not judge (a liveness check per endpoint made a poll
        // over 128 endpoints 1 200 times dearer; thirteenth pass).
        assert_eq!(WaitSet::new().wait(&[&quiet, &rx], Duration::ZERO), Err(WaitSetError::Timeout));
    }
    assert_clean(&name);
}

fn broadcast_layout() -> Layout {
    Layout::new().broadcast("b", 4096, 2, shm_core::broadcast::Policy::Block).unwrap()
}

/// A publisher killed with a loan written but not committed, and one killed
/// between publishing `head` and counting the message: the subscriber gets
/// every published message and nothing else, is told the publisher died,
/// and a new publisher's messages follow with sequence numbers that go on.
#[test]
fn publisher_killed_mid_publish() {
    for (point, skip, delivered) in
        [("broadcast.publisher.loaned", 100, 100), ("broadcast.publisher.published", 49, 50)]
    {
        let name = unique("crash-publisher");
        {
            let seg = Segment::create(&name, &broadcast_layout()).unwrap();
            let mut rx = seg.subscriber("b", FutexWait::new()).unwrap();
            let max = rx.max_message();
            let publisher = crashing(point, skip, &["publish", &name, "1000", "21"]);
            conformance::broadcast_receive(&mut rx, delivered, 21, max).unwrap_or_else(|e| panic!("{point}: {e}"));
            assert_killed(publisher);
            let mut buf = [0u8; 8];
            assert_eq!(rx.recv_timeout(&mut buf, SHORT), Err(RecvError::PeerDied), "{point}");
            let publisher = Peer::spawn(PEER, &["publish", &name, "300", "22"]);
            conformance::broadcast_receive(&mut rx, 300, 22, max).unwrap_or_else(|e| panic!("{point}, after: {e}"));
            assert!(publisher.finish(WATCHDOG).success());
        }
        assert_clean(&name);
    }
}

/// A subscriber killed while it reads a message (block policy) holds the
/// ring until the publisher, waiting for room, finds it dead and drops it:
/// the publisher then goes on, never blocked for good.
#[test]
fn subscriber_killed_holding_a_read() {
    let name = unique("crash-subscriber");
    {
        let seg = Segment::create(&name, &broadcast_layout()).unwrap();
        let mut tx = seg.publisher("b", FutexWait::new()).unwrap();
        let mut subscriber = crashing("broadcast.subscriber.reading", 10, &["subscribe", &name, "1000", "23"]);
        subscriber.expect_line("joined");
        // Far more than the ring holds: the dead subscriber must be dropped.
        conformance::broadcast_publish(&mut tx, 1000, 23);
        assert_killed(subscriber);
        assert_eq!(tx.subscribers(), 0, "the dead subscriber's slot was let go");
    }
    assert_clean(&name);
}

/// Review finding: a block publisher that only tries (`try_publish`) never
/// waits, so no wait found a dead subscriber, and one killed holding the
/// ring kept it `Full` for good. Tries against its unmoving tail now judge
/// it (a real process, killed, as `pid_alive` sees it) and let it go.
#[test]
fn subscriber_killed_holding_a_read_frees_a_publisher_that_only_tries() {
    let name = unique("crash-try-subscriber");
    {
        let seg = Segment::create(&name, &broadcast_layout()).unwrap();
        let mut tx = seg.publisher("b", FutexWait::new()).unwrap();
        let mut subscriber = crashing("broadcast.subscriber.reading", 0, &["subscribe", &name, "1000", "24"]);
        subscriber.expect_line("joined");
        // The subscriber dies reading this first message, holding the ring
        // at its start.
        conformance::broadcast_publish(&mut tx, 1, 24);
        assert_killed(subscriber);
        let message = [7u8; 512];
        let mut full = 0;
        let mut sent = 0;
        // A dead holder is judged within 8 tries in a row that find it
        // there; 10 000 is only the bound of a failing run.
        for _ in 0..10_000 {
            match tx.try_publish(&message) {
                Ok(()) => sent += 1,
                Err(shm_core::SendError::Full) => full += 1,
                Err(e) => panic!("try_publish: {e}"),
            }
            if sent > 20 {
                break;
            }
        }
        assert!(sent > 20, "the dead subscriber kept the ring full ({full} tries found it full)");
        assert!(full > 0, "the ring was full once: the dead subscriber held it");
        assert_eq!(tx.subscribers(), 0, "the dead subscriber's slot was let go");
    }
    assert_clean(&name);
}

#[test]
fn every_crash_point_has_a_test() {
    let source = include_str!("crash.rs");
    for point in shm_core::crash::POINTS {
        assert!(source.contains(&format!("\"{point}\"")), "crash point {point} is not exercised here");
    }
}
