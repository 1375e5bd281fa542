//! The direct mailbox on mock memory: calls, running out of slots, late
//! responses, abandoned requests, close, takeover, dead clients, hostile
//! words, and a stress test across threads.

use std::vec::Vec;

use crate::conformance;
use crate::error::{CallError, ClaimError, Corruption, Role, ServeError};
use crate::format::direct::slot;
use crate::format::mailbox::{self as mb, low_of, slot_offset};
use crate::format::AREAS_OFFSET;
use crate::mock::{Graveyard, MockRegion, ThreadWait};
use crate::test_support::{busy, OnWake, LONG, SHORT};
use crate::{Layout, Segment};

/// The direct mailbox area (channel 0) and its two slots.
const D: usize = AREAS_OFFSET;
const S0: usize = D + slot_offset(0, 64);
const S1: usize = D + slot_offset(1, 64);

fn layout() -> Layout {
    Layout::new().direct("d", 2, 64).unwrap()
}

fn fresh() -> MockRegion {
    let memory = MockRegion::new(layout().size());
    Segment::create(memory.region(), &layout(), 1, 0).unwrap();
    memory
}

fn open(memory: &MockRegion) -> Segment<'_> {
    Segment::open(memory.region(), &ThreadWait::new(9), core::time::Duration::ZERO).unwrap()
}

fn state(memory: &MockRegion, at: usize) -> u32 {
    low_of(memory.read_u32(at + mb::SLOT_STATE))
}

/// Serves one request in another thread with `f` while `call` runs here.
fn with_one_served<R>(
    server: &mut super::Server<'_, ThreadWait>,
    f: impl FnOnce(&mut [u8], usize) -> usize + Send,
    call: impl FnOnce() -> R,
) -> (R, Result<(), ServeError>) {
    std::thread::scope(|s| {
        let served = s.spawn(|| server.serve_timeout(LONG, f));
        let r = call();
        (r, served.join().unwrap())
    })
}

#[test]
fn a_call_is_answered_in_place() {
    let memory = fresh();
    let seg = open(&memory);
    let mut server = seg.direct_server("d", ThreadWait::new(2)).unwrap();
    assert_eq!(seg.direct_server("d", ThreadWait::new(4)).err(), Some(busy("d", Role::Server, 2)));
    assert_eq!(server.try_recv().err(), Some(ServeError::Empty));
    let mut client = seg.direct_client("d", ThreadWait::new(3)).unwrap();
    assert_eq!(state(&memory, S0), slot::IDLE, "connecting takes a slot");
    let mut out = [0u8; 64];
    let (n, served) = with_one_served(
        &mut server,
        |buf, len| {
            buf[..len].make_ascii_uppercase();
            len
        },
        || client.call_timeout(b"abc", &mut out, LONG),
    );
    assert_eq!((n, served), (Ok(3), Ok(())));
    assert_eq!(&out[..3], b"ABC");
    assert_eq!(state(&memory, S0), slot::RESPONSE, "the slot stays the client's between calls");
    assert_eq!(client.call_timeout(&[0; 65], &mut out, SHORT), Err(CallError::TooLarge { len: 65, max: 64 }));
    // A response larger than the caller's buffer is an error, not a cut.
    let (small, _) = with_one_served(&mut server, |_, _| 10, || client.call_timeout(b"x", &mut [0; 4], LONG));
    assert_eq!(small, Err(CallError::BufferTooSmall { needed: 10 }));
    drop(client);
    assert_eq!((state(&memory, S0), memory.read_u32(S0 + mb::SLOT_CLIENT)), (slot::FREE, 0), "dropping frees it");
}

#[test]
fn slots_run_out_and_come_back() {
    let memory = fresh();
    let seg = open(&memory);
    let a = seg.direct_client("d", ThreadWait::new(3)).unwrap();
    let b = seg.direct_client("d", ThreadWait::new(4)).unwrap();
    assert_eq!((a.slot(), b.slot()), (0, 1));
    let err = seg.direct_client("d", ThreadWait::new(5)).err().unwrap();
    assert_eq!(err, busy("d", Role::Client, 3));
    assert!(err.to_string().contains("no free slot"), "{err}");
    assert_eq!(seg.direct_client_timeout("d", ThreadWait::new(5), SHORT).err(), Some(busy("d", Role::Client, 3)));
    std::thread::scope(|s| {
        let waiter = s.spawn(|| seg.direct_client_timeout("d", ThreadWait::new(5), LONG).map(|c| c.slot()));
        // Whenever the waiter looks, before or after the drop: it gets slot 0.
        drop(a);
        assert_eq!(waiter.join().unwrap(), Ok(0));
    });
    drop(b);
}

#[test]
fn a_late_response_is_settled_by_the_next_call_and_never_delivered() {
    let memory = fresh();
    let seg = open(&memory);
    let mut server = seg.direct_server("d", ThreadWait::new(2)).unwrap();
    let mut client = seg.direct_client("d", ThreadWait::new(3)).unwrap();
    let mut out = [0u8; 64];
    // Nobody serves: the wait runs out and the request stays posted.
    assert_eq!(client.call_timeout(b"first", &mut out, SHORT), Err(CallError::StillPosted));
    assert_eq!(state(&memory, S0), slot::REQUEST);
    // The next call cannot post while the server has the first: it times
    // out again without touching the slot.
    let req = server.try_recv().unwrap();
    assert_eq!(req.data(), b"first");
    assert_eq!(client.call_timeout(b"second", &mut out, SHORT), Err(CallError::StillPosted));
    req.respond_with(b"answer to first").unwrap();
    // Now the late answer is discarded and the new call answered.
    let (n, served) = with_one_served(
        &mut server,
        |buf, len| {
            assert_eq!(&buf[..len], b"third", "the server sees the new request, intact");
            buf[..4].copy_from_slice(b"3rd!");
            4
        },
        || client.call_timeout(b"third", &mut out, LONG),
    );
    assert_eq!((n, served), (Ok(4), Ok(())));
    assert_eq!(&out[..4], b"3rd!");
}

#[test]
fn a_client_that_leaves_with_a_request_posted_hands_the_slot_to_the_server() {
    let memory = fresh();
    let seg = open(&memory);
    let mut server = seg.direct_server("d", ThreadWait::new(2)).unwrap();
    // Left before the server took it: the next scan frees it.
    let mut client = seg.direct_client("d", ThreadWait::new(3)).unwrap();
    assert_eq!(client.call_timeout(b"bye", &mut [0; 64], SHORT), Err(CallError::StillPosted));
    drop(client);
    assert_eq!(state(&memory, S0), slot::ABANDONED);
    assert_eq!(server.try_recv().err(), Some(ServeError::Empty));
    assert_eq!((state(&memory, S0), memory.read_u32(S0 + mb::SLOT_CLIENT)), (slot::FREE, 0));
    // Left while the server held it: the response frees it.
    let mut client = seg.direct_client("d", ThreadWait::new(3)).unwrap();
    assert_eq!(client.call_timeout(b"bye", &mut [0; 64], SHORT), Err(CallError::StillPosted));
    let req = server.try_recv().unwrap();
    drop(client);
    assert_eq!(req.respond(1), Err(ServeError::Abandoned));
    assert_eq!((state(&memory, S0), memory.read_u32(S0 + mb::SLOT_CLIENT)), (slot::FREE, 0));
    // Answered before it left: it frees the slot itself.
    let mut client = seg.direct_client("d", ThreadWait::new(3)).unwrap();
    assert_eq!(client.call_timeout(b"bye", &mut [0; 64], SHORT), Err(CallError::StillPosted));
    server.try_recv().unwrap().respond(1).unwrap();
    drop(client);
    assert_eq!((state(&memory, S0), memory.read_u32(S0 + mb::SLOT_CLIENT)), (slot::FREE, 0));
}

#[test]
fn a_dropped_request_fails_its_call() {
    let memory = fresh();
    let seg = open(&memory);
    let mut server = seg.direct_server("d", ThreadWait::new(2)).unwrap();
    let mut client = seg.direct_client("d", ThreadWait::new(3)).unwrap();
    let (r, _) = std::thread::scope(|s| {
        let t = s.spawn(|| drop(server.recv_timeout(LONG).unwrap()));
        (client.call_timeout(b"x", &mut [0; 64], LONG), t.join())
    });
    assert_eq!(r, Err(CallError::Dropped));
    // The slot is usable again at once.
    let (n, _) = with_one_served(&mut server, |_, len| len, || client.call_timeout(b"y", &mut [0; 64], LONG));
    assert_eq!(n, Ok(1));
}

#[test]
fn closing_fails_posted_requests_and_calls_until_a_server_returns() {
    let memory = fresh();
    let seg = open(&memory);
    let server = seg.direct_server("d", ThreadWait::new(2)).unwrap();
    let mut client = seg.direct_client("d", ThreadWait::new(3)).unwrap();
    assert_eq!(client.call_timeout(b"a", &mut [0; 64], SHORT), Err(CallError::StillPosted));
    drop(server);
    assert_eq!(state(&memory, S0), slot::FAILED, "the close failed the posted request");
    assert_eq!(client.call_timeout(b"b", &mut [0; 64], LONG), Err(CallError::Closed));
    assert_eq!(client.call_timeout(b"b", &mut [0; 64], LONG), Err(CallError::Closed));
    let mut server = seg.direct_server("d", ThreadWait::new(4)).unwrap();
    let (n, _) = with_one_served(&mut server, |_, len| len, || client.call_timeout(b"cc", &mut [0; 64], LONG));
    assert_eq!(n, Ok(2));
}

/// Review finding: a closing server released its role before its scan, so
/// a new server could claim the mailbox, take a request, and have it failed
/// under it by the old server's scan (its client then wrote the next
/// request into the payload being answered). Now the role stays the closing
/// server's until the scan is done: a claim attempted from inside the scan
/// (at the wake-up of the client whose request it fails) is refused.
#[test]
fn no_server_can_claim_while_a_closing_one_fails_requests() {
    let memory = fresh();
    let seg = open(&memory);
    let claimed_during_scan = core::cell::Cell::new(None);
    let w7 = ThreadWait::new(7);
    let try_claim = || {
        let r = seg.direct_server("d", &w7).map(core::mem::forget);
        claimed_during_scan.set(Some(r.is_ok()));
    };
    let closing = seg.direct_server("d", OnWake { inner: ThreadWait::new(2), on_wake: try_claim }).unwrap();
    let mut client = seg.direct_client("d", ThreadWait::new(3)).unwrap();
    assert_eq!(client.call_timeout(b"a", &mut [0; 64], SHORT), Err(CallError::StillPosted));
    // As if the client slept: the scan wakes it when it fails the request.
    memory.write_u32(S0 + mb::SLOT_CLIENT_WAITING, 1);
    drop(closing);
    assert_eq!(claimed_during_scan.get(), Some(false), "a server claimed the role during the close's scan");
    assert_eq!(state(&memory, S0), slot::FAILED);
    assert!(seg.direct_server("d", ThreadWait::new(7)).is_ok(), "free once the close is done");
}

/// Review finding: a call told `Closed` must never run. A client that
/// posts during a close's scan, after the scan passed its slot, sees the
/// mark and reports `Closed` with its request still posted; the next server
/// to claim the mailbox fails it instead of serving it (a retry used to run
/// it twice).
#[test]
fn a_call_told_closed_never_runs() {
    let memory = fresh();
    let seg = open(&memory);
    let late = core::cell::RefCell::new(seg.direct_client("d", ThreadWait::new(3)).unwrap()); // slot 0
    let mut waiting = seg.direct_client("d", ThreadWait::new(4)).unwrap(); // slot 1
    let told = core::cell::Cell::new(None);
    let call_during_scan = || {
        if told.get().is_none() {
            told.set(Some(late.borrow_mut().call_timeout(b"pay 100", &mut [0; 64], SHORT)));
        }
    };
    let closing = seg.direct_server("d", OnWake { inner: ThreadWait::new(2), on_wake: call_during_scan }).unwrap();
    assert_eq!(waiting.call_timeout(b"w", &mut [0; 64], SHORT), Err(CallError::StillPosted));
    // The scan passes slot 0, fails slot 1 and wakes its client: then the
    // late client calls.
    memory.write_u32(S1 + mb::SLOT_CLIENT_WAITING, 1);
    drop(closing);
    assert_eq!(told.get(), Some(Err(CallError::Closed)));
    let mut next = seg.direct_server("d", ThreadWait::new(5)).unwrap();
    assert_eq!(next.try_recv().err(), Some(ServeError::Empty), "a request its client was told is Closed ran");
    let mut late = late.into_inner();
    let (n, _) = with_one_served(&mut next, |_, len| len, || late.call_timeout(b"pay 100", &mut [0; 64], LONG));
    assert_eq!(n, Ok(7), "the retry runs, once");
}

#[test]
fn a_server_taking_over_from_a_dead_one_fails_what_was_posted() {
    let graves = Graveyard::new();
    let memory = fresh();
    let seg = open(&memory);
    // Borrowed strategies: forgetting an endpoint must leak nothing (Miri).
    let w2 = ThreadWait::with_graveyard(2, &graves);
    let dead = seg.direct_server("d", &w2).unwrap();
    let mut client = seg.direct_client("d", ThreadWait::with_graveyard(3, &graves)).unwrap();
    assert_eq!(client.call_timeout(b"a", &mut [0; 64], SHORT), Err(CallError::StillPosted));
    // It dies (no close runs), perhaps half-way through the request.
    core::mem::forget(dead);
    graves.bury(2);
    assert_eq!(client.call_timeout(b"b", &mut [0; 64], SHORT), Err(CallError::PeerDied));
    let mut server = seg.direct_server("d", ThreadWait::with_graveyard(4, &graves)).unwrap();
    assert_eq!(state(&memory, S0), slot::FAILED);
    let (n, _) = with_one_served(&mut server, |_, len| len, || client.call_timeout(b"ccc", &mut [0; 64], LONG));
    assert_eq!(n, Ok(3), "the failed request is settled and the new one served");
}

#[test]
fn a_clean_claim_serves_a_request_posted_before_it() {
    let memory = fresh();
    let seg = open(&memory);
    let mut client = seg.direct_client("d", ThreadWait::new(3)).unwrap();
    // No server yet: the call waits, finds none alive, and leaves its request.
    assert_eq!(client.call_timeout(b"early", &mut [0; 64], SHORT), Err(CallError::PeerDied));
    let mut server = seg.direct_server("d", ThreadWait::new(2)).unwrap();
    let req = server.try_recv().unwrap();
    assert_eq!(req.data(), b"early");
    req.respond(0).unwrap();
}

#[test]
fn slots_of_dead_clients_are_reclaimed() {
    let graves = Graveyard::new();
    let memory = fresh();
    let seg = open(&memory);
    let mut server = seg.direct_server("d", ThreadWait::with_graveyard(2, &graves)).unwrap();
    let (w3, w4) = (ThreadWait::with_graveyard(3, &graves), ThreadWait::with_graveyard(4, &graves));
    let idle = seg.direct_client("d", &w3).unwrap();
    let mut posted = seg.direct_client("d", &w4).unwrap();
    assert_eq!(posted.call_timeout(b"p", &mut [0; 64], SHORT), Err(CallError::StillPosted));
    core::mem::forget(idle);
    core::mem::forget(posted);
    assert_eq!(server.reclaim(), 0, "both alive");
    graves.bury(3);
    graves.bury(4);
    assert_eq!(server.reclaim(), 1, "the idle slot; the posted request is served first");
    server.try_recv().unwrap().respond(0).unwrap();
    assert_eq!(server.reclaim(), 1);
    assert_eq!([state(&memory, S0), state(&memory, S1)], [slot::FREE; 2]);
    assert_eq!([memory.read_u32(S0 + mb::SLOT_CLIENT), memory.read_u32(S1 + mb::SLOT_CLIENT)], [0, 0]);
    let a = seg.direct_client("d", ThreadWait::new(5)).unwrap();
    let b = seg.direct_client("d", ThreadWait::new(6)).unwrap();
    assert_eq!((a.slot(), b.slot()), (0, 1));
}

/// New-user review 2026-12-03: a server that never idles never ran
/// `reclaim`, so the slots of killed clients stayed theirs and new clients
/// got `Busy`. A connecting client now takes over a dead client's slot,
/// once the server is done with it.
#[test]
fn a_connecting_client_takes_over_a_dead_clients_slot() {
    let graves = Graveyard::new();
    let memory = fresh();
    let seg = open(&memory);
    let mut server = seg.direct_server("d", ThreadWait::with_graveyard(2, &graves)).unwrap();
    let (w3, w4) = (ThreadWait::with_graveyard(3, &graves), ThreadWait::with_graveyard(4, &graves));
    let mut idle = seg.direct_client("d", &w3).unwrap();
    let (n, _) = with_one_served(&mut server, |_, len| len, || idle.call_timeout(b"i", &mut [0; 64], LONG));
    assert_eq!(n, Ok(1));
    let mut posted = seg.direct_client("d", &w4).unwrap();
    assert_eq!(posted.call_timeout(b"p", &mut [0; 64], SHORT), Err(CallError::StillPosted));
    core::mem::forget(idle);
    core::mem::forget(posted);
    let (w5, w6) = (ThreadWait::with_graveyard(5, &graves), ThreadWait::with_graveyard(6, &graves));
    assert_eq!(seg.direct_client("d", &w5).err(), Some(busy("d", Role::Client, 3)), "both alive");

    graves.bury(3);
    graves.bury(4);
    let mut a = seg.direct_client("d", &w5).expect("the dead client's answered slot is taken over");
    assert_eq!(a.slot(), 0);
    assert_eq!((state(&memory, S0), memory.read_u32(S0 + mb::SLOT_CLIENT)), (slot::IDLE, 5));
    assert_eq!(
        seg.direct_client("d", &w6).err(),
        Some(busy("d", Role::Client, 5)),
        "a posted request is the server's: its slot is not taken"
    );
    assert_eq!(server.reclaim(), 0, "the new owner is alive; the posted slot is the server's");
    server.try_recv().unwrap().respond(1).unwrap();
    let mut b = seg.direct_client("d", &w6).expect("answered, the slot is taken over");
    assert_eq!(b.slot(), 1);

    // Both new clients call, each getting its own answer.
    for (client, byte) in [(&mut a, b'a'), (&mut b, b'b')] {
        let mut out = [0u8; 64];
        let (n, served) = with_one_served(
            &mut server,
            |buf, len| {
                buf[..len].make_ascii_uppercase();
                len
            },
            || client.call_timeout(&[byte], &mut out, LONG),
        );
        assert_eq!((n, served), (Ok(1), Ok(())));
        assert_eq!(out[0], byte.to_ascii_uppercase());
    }
    drop(a);
    drop(b);
    assert_eq!([state(&memory, S0), state(&memory, S1)], [slot::FREE; 2]);
}

/// [`ThreadWait`] that runs `on_judge` the first time it is asked whether
/// `id` lives: a hook between a reclaim's loads and its compare-and-swap.
struct OnJudge<'h> {
    inner: ThreadWait,
    id: u32,
    on_judge: core::cell::RefCell<Option<std::boxed::Box<dyn FnOnce() + 'h>>>,
}

impl crate::Wait for OnJudge<'_> {
    type Deadline = crate::wait::HostDeadline;
    fn deadline(&self, timeout: Option<core::time::Duration>) -> Self::Deadline {
        self.inner.deadline(timeout)
    }
    fn expired(&self, deadline: &mut Self::Deadline) -> bool {
        self.inner.expired(deadline)
    }
    fn park(&self, word: &crate::AtomicU32, expected: u32, deadline: &mut Self::Deadline) {
        self.inner.park(word, expected, deadline)
    }
    fn wake(&self, word: &crate::AtomicU32, count: u32) {
        self.inner.wake(word, count)
    }
    fn self_id(&self) -> u32 {
        self.inner.self_id()
    }
    fn is_alive(&self, id: u32) -> bool {
        let alive = self.inner.is_alive(id);
        if id == self.id {
            if let Some(hook) = self.on_judge.borrow_mut().take() {
                hook();
            }
        }
        alive
    }
}

/// Review 2026-12-03 (eleventh pass): a reclaim loaded a dead client's
/// IDLE slot and judged it dead; a connecting client took the slot over
/// (same id, IDLE again); the reclaim's CAS from IDLE to FREE then
/// succeeded, freeing the slot under its live owner. The takeover now
/// moves to the next request id, so that CAS fails.
#[test]
fn a_reclaim_never_frees_a_slot_taken_over_under_it() {
    let graves = Graveyard::new();
    let memory = fresh();
    let seg = open(&memory);
    let (w3, w4, w5) = (
        ThreadWait::with_graveyard(3, &graves),
        ThreadWait::with_graveyard(4, &graves),
        ThreadWait::with_graveyard(5, &graves),
    );
    core::mem::forget(seg.direct_client("d", &w3).unwrap());
    let _live = seg.direct_client("d", &w4).unwrap();
    graves.bury(3);
    let taker = core::cell::RefCell::new(None);
    let hook = || *taker.borrow_mut() = Some(seg.direct_client("d", &w5).expect("taken over"));
    let judge = OnJudge {
        inner: ThreadWait::with_graveyard(2, &graves),
        id: 3,
        on_judge: core::cell::RefCell::new(Some(std::boxed::Box::new(hook))),
    };
    let server = seg.direct_server("d", &judge).unwrap();
    assert_eq!(server.reclaim(), 0, "the slot is the taker's now");
    assert_eq!(taker.borrow().as_ref().map(|c| c.slot()), Some(0));
    assert_eq!((state(&memory, S0), memory.read_u32(S0 + mb::SLOT_CLIENT)), (slot::IDLE, 5), "freed under its owner");
    drop(server);
}

/// Review 2026-12-03 (eleventh pass): a client killed between taking the
/// owner word and IDLE (or between FREE and clearing it) leaves FREE with
/// its id; a connecting client takes that over too.
#[test]
fn a_free_slot_still_naming_a_dead_client_is_taken_over() {
    let graves = Graveyard::new();
    let memory = fresh();
    let seg = open(&memory);
    let (w4, w5) = (ThreadWait::with_graveyard(4, &graves), ThreadWait::with_graveyard(5, &graves));
    memory.write_u32(S0 + mb::SLOT_CLIENT, 3);
    graves.bury(3);
    assert_eq!(seg.direct_client("d", &w4).unwrap().slot(), 1, "the free slot first");
    let _live = seg.direct_client("d", &w4).unwrap();
    let client = seg.direct_client("d", &w5).expect("taken over");
    assert_eq!(client.slot(), 0);
    assert_eq!((state(&memory, S0), memory.read_u32(S0 + mb::SLOT_CLIENT)), (slot::IDLE, 5));
}

/// `connect_timeout` waits for a holder to die, not only for a slot to be
/// freed: the dead client's slot is taken over within the wait.
#[test]
fn connect_timeout_takes_over_the_slot_of_a_client_that_dies_meanwhile() {
    let graves = Graveyard::new();
    let memory = MockRegion::new(Layout::new().direct("d", 1, 64).unwrap().size());
    Segment::create(memory.region(), &Layout::new().direct("d", 1, 64).unwrap(), 1, 0).unwrap();
    let seg = open(&memory);
    let w3 = ThreadWait::with_graveyard(3, &graves);
    core::mem::forget(seg.direct_client("d", &w3).unwrap());
    let w4 = ThreadWait::with_graveyard(4, &graves);
    assert_eq!(seg.direct_client_timeout("d", &w4, SHORT).err(), Some(busy("d", Role::Client, 3)));
    std::thread::scope(|s| {
        s.spawn(|| {
            std::thread::sleep(SHORT);
            graves.bury(3);
        });
        let client = seg.direct_client_timeout("d", &w4, LONG).expect("taken over once its holder died");
        assert_eq!(client.slot(), 0);
    });
    assert_eq!(state(&memory, AREAS_OFFSET + slot_offset(0, 64)), slot::FREE);
}

/// A dead client's slot in a state no peer writes is taken over too (as
/// `reclaim` frees it); one the server holds is not.
#[test]
fn a_dead_clients_slot_is_taken_over_only_when_the_server_is_done_with_it() {
    let graves = Graveyard::new();
    for (low, taken) in [
        (slot::IDLE, true),
        (slot::RESPONSE, true),
        (slot::FAILED, true),
        (0x77, true),
        (slot::REQUEST, false),
        (slot::ABANDONED, false),
    ] {
        let memory = fresh();
        let seg = open(&memory);
        // Forgotten with borrowed strategies, so nothing leaks (Miri).
        let (w3, w4) = (ThreadWait::with_graveyard(3, &graves), ThreadWait::with_graveyard(4, &graves));
        core::mem::forget(seg.direct_client("d", &w3).unwrap());
        core::mem::forget(seg.direct_client("d", &w4).unwrap());
        graves.bury(3);
        memory.write_u32(S0 + mb::SLOT_STATE, mb::pack(9, low));
        let w5 = ThreadWait::with_graveyard(5, &graves);
        let got = seg.direct_client("d", &w5);
        assert_eq!(got.is_ok(), taken, "state {low:#x}: {:?}", got.as_ref().err());
        if taken {
            assert_eq!(memory.read_u32(S0 + mb::SLOT_STATE), mb::pack(10, slot::IDLE), "state {low:#x}: next id");
            assert_eq!(memory.read_u32(S0 + mb::SLOT_CLIENT), 5);
        } else {
            assert_eq!(memory.read_u32(S0 + mb::SLOT_STATE), mb::pack(9, low), "state {low:#x}: left alone");
            assert_eq!(memory.read_u32(S0 + mb::SLOT_CLIENT), 3);
        }
    }
}

#[test]
fn a_dead_clients_scribbled_slot_is_reclaimed() {
    let graves = Graveyard::new();
    let memory = fresh();
    let seg = open(&memory);
    let server = seg.direct_server("d", ThreadWait::with_graveyard(2, &graves)).unwrap();
    let w3 = ThreadWait::with_graveyard(3, &graves);
    let mut client = seg.direct_client("d", &w3).unwrap();
    assert_eq!(client.call_timeout(b"x", &mut [0; 64], SHORT), Err(CallError::StillPosted));
    memory.write_u32(S0 + mb::SLOT_STATE, mb::pack(9, 0x77));
    assert_eq!(
        client.call_timeout(b"x", &mut [0; 64], SHORT),
        Err(CallError::Corrupted(Corruption::channel(0, "slot.state")))
    );
    // A live owner keeps even a slot it cannot read.
    assert_eq!(server.reclaim(), 0);
    core::mem::forget(client);
    graves.bury(3);
    assert_eq!(server.reclaim(), 1);
    assert_eq!(state(&memory, S0), slot::FREE);
    assert_eq!(memory.read_u32(S0 + mb::SLOT_CLIENT), 0);
    assert_eq!(seg.direct_client("d", ThreadWait::new(4)).unwrap().slot(), 0);
    // Known states of a dead owner that are the server's stay: REQUEST is
    // answered first, ABANDONED freed by the server's scan.
    for (low, freed) in [(slot::REQUEST, 0), (slot::ABANDONED, 0), (slot::FAILED, 1), (0xff, 1)] {
        let memory = fresh();
        let seg = open(&memory);
        let server = seg.direct_server("d", ThreadWait::with_graveyard(2, &graves)).unwrap();
        // Forgotten with a borrowed strategy, so nothing leaks (Miri).
        let w5 = ThreadWait::with_graveyard(5, &graves);
        core::mem::forget(seg.direct_client("d", &w5).unwrap());
        graves.bury(5);
        memory.write_u32(S0 + mb::SLOT_STATE, mb::pack(1, low));
        assert_eq!(server.reclaim(), freed, "state {low:#x}");
    }
}

#[test]
fn hostile_words_give_errors_never_a_panic_or_a_hang() {
    let corrupted = |w| Corruption::channel(0, w);
    // Doorbell, waiting words and the reserved counter may hold anything:
    // spare wake-ups at most.
    for (offset, value) in [
        (D + mb::REQUEST_EPOCH, u32::MAX),
        (D + mb::SERVER_WAITING, 7),
        (D + mb::SERVED, 77),
        (D + mb::FREE_EPOCH, u32::MAX),
        (D + mb::FREE_WAITERS, 1),
        (S0 + mb::SLOT_CLIENT_WAITING, 1),
    ] {
        let memory = fresh();
        let seg = open(&memory);
        let mut server = seg.direct_server("d", ThreadWait::new(2)).unwrap();
        let mut client = seg.direct_client("d", ThreadWait::new(3)).unwrap();
        memory.write_u32(offset, value);
        let (n, _) = with_one_served(&mut server, |_, len| len, || client.call_timeout(b"ok", &mut [0; 64], LONG));
        assert_eq!(n, Ok(2), "after writing {value:#x} at {offset}");
    }

    // A request `len` beyond the slot: the server says so, the client is
    // told its request was dropped.
    let memory = fresh();
    let seg = open(&memory);
    let mut server = seg.direct_server("d", ThreadWait::new(2)).unwrap();
    let mut client = seg.direct_client("d", ThreadWait::new(3)).unwrap();
    assert_eq!(client.call_timeout(b"abcd", &mut [0; 64], SHORT), Err(CallError::StillPosted));
    memory.write_u32(S0 + mb::SLOT_LEN, 1 << 20);
    assert_eq!(server.try_recv().err(), Some(ServeError::Corrupted(corrupted("slot.len"))));
    assert_eq!(state(&memory, S0), slot::FAILED);

    // A response `len` beyond the slot.
    let (r, _) = with_one_served(
        &mut server,
        |_, _| {
            memory.write_u32(S0 + mb::SLOT_LEN, 65);
            0
        },
        || client.call_timeout(b"x", &mut [0; 64], LONG),
    );
    // The server's own `len` store may land after ours: either way the
    // client reads a length it can trust or reports the corruption.
    assert!(matches!(r, Ok(0) | Err(CallError::Corrupted(_))), "{r:?}");

    // `state` garbage while the client waits: another id, an unknown state.
    for garbage in [0xffff_ff02u32, mb::pack(0x77, slot::REQUEST), 0x0000_0109] {
        let memory = fresh();
        let seg = open(&memory);
        let mut server = seg.direct_server("d", ThreadWait::new(2)).unwrap();
        let mut client = seg.direct_client("d", ThreadWait::new(3)).unwrap();
        assert_eq!(client.call_timeout(b"x", &mut [0; 64], SHORT), Err(CallError::StillPosted));
        memory.write_u32(S0 + mb::SLOT_STATE, garbage);
        let r = client.call_timeout(b"y", &mut [0; 64], SHORT);
        assert_eq!(r, Err(CallError::Corrupted(corrupted("slot.state"))), "{garbage:#x}");
        // The server answers what reads as posted (it cannot know the id is
        // not the client's; the client still reports the corruption), and
        // never panics.
        match server.try_recv() {
            Ok(req) => assert!(matches!(req.respond(0), Ok(()) | Err(ServeError::Corrupted(_)))),
            Err(e) => assert_eq!(e, ServeError::Empty),
        }
        assert_eq!(client.call_timeout(b"z", &mut [0; 64], SHORT), Err(CallError::Corrupted(corrupted("slot.state"))));
        // Dropping the client leaves a slot it cannot read as it is.
        drop(client);
    }

    // A FREE slot's owner word taken by garbage: connect uses the other.
    let memory = fresh();
    let seg = open(&memory);
    memory.write_u32(S0 + mb::SLOT_CLIENT, 0xffff_fffe);
    assert_eq!(seg.direct_client("d", ThreadWait::new(3)).unwrap().slot(), 1);
    // A slot state that is not FREE under a zero owner: never taken.
    memory.write_u32(S1 + mb::SLOT_STATE, mb::pack(5, slot::RESPONSE));
    assert!(matches!(seg.direct_client("d", ThreadWait::new(3)), Err(ClaimError::Busy { .. })));
    assert_eq!(memory.read_u32(S1 + mb::SLOT_CLIENT), 0, "let go again");
}

#[test]
fn request_ids_wrap_past_zero() {
    let memory = fresh();
    let seg = open(&memory);
    let mut server = seg.direct_server("d", ThreadWait::new(2)).unwrap();
    memory.write_u32(S0 + mb::SLOT_STATE, mb::pack(mb::ID_MASK, slot::FREE));
    let mut client = seg.direct_client("d", ThreadWait::new(3)).unwrap();
    for expect in [1u32, 2] {
        let (n, _) = with_one_served(&mut server, |_, len| len, || client.call_timeout(b"w", &mut [0; 64], LONG));
        assert_eq!(n, Ok(1));
        assert_eq!(mb::id_of(memory.read_u32(S0 + mb::SLOT_STATE)), expect);
    }
}

#[test]
fn many_calls_from_two_clients_are_each_answered_once() {
    let n = if cfg!(miri) { 20 } else { 5_000 };
    let memory = fresh();
    let seg = open(&memory);
    let mut server = seg.direct_server("d", ThreadWait::new(2)).unwrap();
    let mut a = seg.direct_client("d", ThreadWait::new(3)).unwrap();
    let mut b = seg.direct_client("d", ThreadWait::new(4)).unwrap();
    let mut seqs: Vec<u64> = std::thread::scope(|s| {
        s.spawn(|| conformance::direct_serve(&mut server, 2 * n));
        let ta = s.spawn(|| conformance::direct_call(&mut a, n, 1).unwrap());
        let tb = s.spawn(|| conformance::direct_call(&mut b, n, 2).unwrap());
        let (sa, sb) = (ta.join().unwrap(), tb.join().unwrap());
        assert!(sa.windows(2).all(|w| w[0] < w[1]) && sb.windows(2).all(|w| w[0] < w[1]), "in order per client");
        sa.into_iter().chain(sb).collect()
    });
    seqs.sort_unstable();
    assert_eq!(seqs, (0..2 * n).collect::<Vec<u64>>(), "every request served once");
}
