//! Host tests on mock memory, one thread per simulated core: the session
//! handshake, reset detection and re-attach, doorbell wake-ups without lost
//! wake-ups, budgets charged through the delay, and where the cache hooks
//! run. Hangs are caught by a watchdog, never by timing assertions.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::Duration;
use std::vec::Vec;

use embedded_hal::delay::DelayNs;
use shm_core::mock::MockRegion;
use shm_core::{CallError, Layout, RecvError, SendError, Wait};

use crate::*;

const LONG: Duration = Duration::from_secs(30);

/// A window over a leaked heap buffer of `len` bytes.
fn window(len: usize) -> Window {
    let memory: &'static MockRegion = Box::leak(Box::new(MockRegion::new(len)));
    // SAFETY: the buffer is leaked (valid for 'static), 64-byte aligned, and
    // only touched through this crate and shm-core.
    unsafe { Window::new(memory.region().as_ptr(), memory.len()) }.unwrap()
}

/// Runs `f` on its own thread; fails the test if it does not finish within
/// `secs` (a lost wake-up or a missed reset shows up as a hang).
fn watchdog<T: Send + 'static>(secs: u64, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(v) => v,
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("hung for {secs} s: lost wake-up or missed reset"),
        Err(mpsc::RecvTimeoutError::Disconnected) => panic!("the test thread panicked"),
    }
}

/// A real delay.
#[derive(Clone, Copy)]
struct StdDelay;

impl DelayNs for StdDelay {
    fn delay_ns(&mut self, ns: u32) {
        thread::sleep(Duration::from_nanos(ns.into()));
    }
}

/// A delay that only adds up what it was asked for.
#[derive(Clone, Default)]
struct CountingDelay(Arc<AtomicU64>);

impl DelayNs for CountingDelay {
    fn delay_ns(&mut self, ns: u32) {
        self.0.fetch_add(ns.into(), Ordering::Relaxed);
    }
}

type Spin<'a, D = StdDelay> = SpinWait<'a, ::spin::relax::Spin, D>;

fn spin_wait(session: Session<'_>) -> Spin<'_> {
    SpinWait::new(session, StdDelay).with_spin_limit(64)
}

/// A doorbell between two threads: a pending flag per core under a mutex,
/// and a condition variable to sleep on. `sleep_unless` evaluates `ready`
/// under the mutex and `ring` sets the flag under it, which is what masking
/// interrupts around the check and `WFI` achieves on a core.
#[derive(Default)]
struct Bells {
    pending: [Mutex<bool>; 2],
    wake: [Condvar; 2],
    rung: [AtomicU32; 2],
    slept: [AtomicU32; 2],
}

#[derive(Clone)]
struct TestBell {
    bells: Arc<Bells>,
    me: usize,
}

impl TestBell {
    fn pair() -> (TestBell, TestBell) {
        let bells = Arc::new(Bells::default());
        (TestBell { bells: bells.clone(), me: 0 }, TestBell { bells, me: 1 })
    }

    fn lock(&self, core: usize) -> MutexGuard<'_, bool> {
        self.bells.pending[core].lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Rings received by `core`, sleeps taken by `core`.
    fn counts(&self, core: usize) -> (u32, u32) {
        (self.bells.rung[core].load(Ordering::Relaxed), self.bells.slept[core].load(Ordering::Relaxed))
    }
}

impl Doorbell for TestBell {
    fn ring(&self) {
        let peer = 1 - self.me;
        let mut pending = self.lock(peer);
        *pending = true;
        self.bells.rung[peer].fetch_add(1, Ordering::Relaxed);
        self.bells.wake[peer].notify_all();
    }

    fn clear(&self) {
        *self.lock(self.me) = false;
    }

    fn enable(&self) {}

    fn sleep_unless(&self, ready: impl FnOnce() -> bool) {
        let mut pending = self.lock(self.me);
        if !*pending && !ready() {
            self.bells.slept[self.me].fetch_add(1, Ordering::Relaxed);
            while !*pending {
                pending = self.bells.wake[self.me].wait(pending).unwrap_or_else(|e| e.into_inner());
            }
        }
        // The "interrupt handler": acknowledge the doorbell.
        *pending = false;
    }
}

fn endpoints(w: Window) -> (Endpoint, Endpoint) {
    (Endpoint::new(w, CoreId::CORE0, CoreId::CORE1), Endpoint::new(w, CoreId::CORE1, CoreId::CORE0))
}

#[test]
fn handshake_links_both_sides_with_new_sessions() {
    let w = window(8192);
    let layout = Layout::new().queue("q", 1024).unwrap();
    let (c0, c1) = endpoints(w);
    let l2 = layout.clone();
    let opener = thread::spawn(move || {
        let wait = spin_wait(c1.session());
        let link = c1.open(&l2, &wait, LONG).unwrap();
        (link.session(), link.peer_session())
    });
    let wait = spin_wait(c0.session());
    let link = c0.create(&layout, &wait, LONG).unwrap();
    let (s1, p1) = opener.join().unwrap();
    assert_eq!((link.session(), link.peer_session()), (p1, s1));
    assert_eq!(link.segment().info().session, link.session());
    assert_eq!(link.segment().info().creator, CoreId::CORE0.id(link.session()));
    let lane0 = w.attach_block().lane_state(CoreId::CORE0);
    assert_eq!(lane0, LaneState { session: link.session(), ack: s1, linked: s1 });
    assert!(link.check().is_ok());
}

#[test]
fn ids_name_core_and_session_and_only_current_sessions_live() {
    let block = AttachBlock::new();
    let me = Session::new(&block, CoreId::CORE0, CoreId::CORE1);
    let peer = Session::new(&block, CoreId::CORE1, CoreId::CORE0);
    let first = me.begin();
    let old_id = me.id();
    assert_eq!(CoreId::decode(old_id), Some((CoreId::CORE0, first)));
    assert_ne!(old_id, 0);
    assert!(me.is_alive(old_id));
    let second = me.begin();
    assert_ne!(first, second);
    // A core takes back roles recorded by its own earlier session...
    assert!(!me.is_alive(old_id));
    assert!(me.is_alive(me.id()));
    // ...and the peer sees that id as dead too.
    assert!(!peer.is_alive(old_id));
    // Ids not of this format (a PID, say) are assumed alive.
    assert!(me.is_alive(12345));
    assert_eq!(CoreId::decode(12345), None);
}

#[test]
fn session_numbers_change_and_skip_zero_even_from_garbage() {
    use crate::attach::next_session;
    use shm_core::format::attach::SESSION_MASK;
    assert_eq!(next_session(0), 1);
    assert_eq!(next_session(41), 42);
    assert_eq!(next_session(SESSION_MASK), 1);
    // Stale RAM holds anything; the next number is still valid and new.
    for garbage in [u32::MAX, 0xdead_beef, 0x0100_0000] {
        let n = next_session(garbage);
        assert!(n != 0 && n <= SESSION_MASK && n != garbage & SESSION_MASK);
    }
}

#[test]
fn stale_segment_of_a_creator_that_is_gone_is_refused() {
    let w = window(8192);
    let layout = Layout::new().queue("q", 1024).unwrap();
    let (c0, c1) = endpoints(w);
    // A creator of a previous life: its session published, a READY segment
    // in the window, then it stopped (reset without coming back).
    c0.session().begin();
    let creator = CoreId::CORE0.id(c0.session().number());
    let _old = shm_core::Segment::create(w.segment_region(), &layout, creator, c0.session().number()).unwrap();
    let wait = SpinWait::<::spin::relax::Spin, _>::new(c1.session(), StdDelay).with_spin_limit(0);
    let err = c1.open(&layout, &wait, Duration::from_millis(50)).err().unwrap();
    assert_eq!(err, AttachError::Timeout { peer: CoreId::CORE0 });
}

#[test]
fn opener_reset_is_reported_and_both_attach_again() {
    let w = window(16384);
    let layout = Layout::new().queue("q", 1024).unwrap().mailbox("rpc", 2, 64).unwrap();
    let (c0, c1) = endpoints(w);
    let (b0, b1) = TestBell::pair();
    let l1 = layout.clone();
    let (received, wait_received) = mpsc::channel::<()>();
    let core1 = thread::spawn(move || {
        // First life: send three messages, then (once core 0 has them and
        // sleeps for more) "reset": vanish without dropping anything (a reset
        // runs no destructors).
        {
            let wait = DoorbellWait::new(c1.session(), b1.clone(), StdDelay).with_spin_limit(0);
            let link = c1.open(&l1, &wait, LONG).unwrap();
            let mut tx = link.producer("q", &wait).unwrap();
            for i in 0..3u8 {
                tx.send_timeout(&[i], LONG).unwrap();
            }
            wait_received.recv().unwrap();
            std::mem::forget(tx);
        }
        // Second life: a new session; waits for core 0 to attach again.
        let wait = DoorbellWait::new(c1.session(), b1, StdDelay).with_spin_limit(0);
        let link = c1.open(&l1, &wait, LONG).unwrap();
        let mut tx = link.producer("q", &wait).unwrap();
        tx.send_timeout(b"second life", LONG).unwrap();
        let server = link.server("rpc", &wait).unwrap();
        server.serve_timeout(LONG, |_, len| len).unwrap();
        link.session()
    });
    let (reset, second, peer_session) = watchdog(60, move || {
        let wait = DoorbellWait::new(c0.session(), b0, StdDelay).with_spin_limit(0);
        let link = c0.create(&layout, &wait, LONG).unwrap();
        let mut rx = link.consumer("q", &wait).unwrap();
        let mut buf = [0u8; 64];
        for i in 0..3u8 {
            assert_eq!(rx.recv(&mut buf).unwrap(), 1);
            assert_eq!(buf[0], i);
        }
        received.send(()).unwrap();
        // No timeout: only the peer's new session can end this wait, by
        // ringing as it starts its handshake.
        let reset = match rx.recv(&mut buf) {
            Err(RecvError::PeerReset(r)) => r,
            other => panic!("expected PeerReset, got {other:?}"),
        };
        assert_eq!(link.check(), Err(reset));
        drop(rx);
        let link = c0.create(&layout, &wait, LONG).unwrap();
        let mut rx = link.consumer("q", &wait).unwrap();
        let n = rx.recv_timeout(&mut buf, LONG).unwrap();
        assert_eq!(&buf[..n], b"second life");
        let client = link.client("rpc", &wait).unwrap();
        let n = client.call_timeout(b"again", &mut buf, LONG).unwrap();
        assert_eq!(&buf[..n], b"again");
        (reset, link.session(), link.peer_session())
    });
    let core1_session = core1.join().unwrap();
    assert_eq!(reset.peer, u32::from(CoreId::CORE1.number()));
    assert_ne!(reset.linked, reset.now);
    assert_eq!(reset.now, core1_session);
    assert_eq!(peer_session, core1_session);
    assert!(second >= 2, "core 0 attached twice: session {second}");
}

#[test]
fn creator_reset_is_reported_to_the_opener_in_a_blocked_call() {
    let w = window(16384);
    let layout = Layout::new().mailbox("rpc", 1, 64).unwrap();
    let (c0, c1) = endpoints(w);
    let (b0, b1) = TestBell::pair();
    let l0 = layout.clone();
    let core0 = thread::spawn(move || {
        {
            let wait = DoorbellWait::new(c0.session(), b0.clone(), StdDelay).with_spin_limit(0);
            let link = c0.create(&l0, &wait, LONG).unwrap();
            let server = link.server("rpc", &wait).unwrap();
            // Take the request, then die holding it.
            let request = server.recv_timeout(LONG).unwrap();
            std::mem::forget(request);
            std::mem::forget(server);
        }
        let wait = DoorbellWait::new(c0.session(), b0, StdDelay).with_spin_limit(0);
        let link = c0.create(&l0, &wait, LONG).unwrap();
        let server = link.server("rpc", &wait).unwrap();
        server.serve_timeout(LONG, |buf, len| {
            buf[..len].reverse();
            len
        })
    });
    let reset = watchdog(60, move || {
        let wait = DoorbellWait::new(c1.session(), b1, StdDelay).with_spin_limit(0);
        let link = c1.open(&layout, &wait, LONG).unwrap();
        let client = link.client("rpc", &wait).unwrap();
        let mut out = [0u8; 64];
        // Unbounded: only core 0's new session can end it.
        let reset = match client.call(b"lost", &mut out) {
            Err(CallError::PeerReset(r)) => r,
            other => panic!("expected PeerReset, got {other:?}"),
        };
        let link = c1.open(&layout, &wait, LONG).unwrap();
        let client = link.client("rpc", &wait).unwrap();
        let n = client.call_timeout(b"abc", &mut out, LONG).unwrap();
        assert_eq!(&out[..n], b"cba");
        reset
    });
    core0.join().unwrap().unwrap();
    assert_eq!(reset.peer, u32::from(CoreId::CORE0.number()));
    assert_ne!(reset.linked, reset.now);
}

#[test]
fn doorbell_wait_loses_no_wakeups() {
    const CALLS: u32 = 3000;
    const MESSAGES: u32 = 20_000;
    let w = window(16384);
    // A small ring, so the producer also sleeps on a full queue.
    let layout = Layout::new().mailbox("rpc", 1, 16).unwrap().queue("q", 256).unwrap();
    let (c0, c1) = endpoints(w);
    let (b0, b1) = TestBell::pair();
    let counter = b0.clone();
    let l1 = layout.clone();
    let core1 = thread::spawn(move || {
        // Sleep at every miss, never time out: a lost wake-up is a hang.
        let wait = DoorbellWait::new(c1.session(), b1, StdDelay).with_spin_limit(0);
        let link = c1.open(&l1, &wait, LONG).unwrap();
        let server = link.server("rpc", &wait).unwrap();
        for _ in 0..CALLS {
            let mut req = server.recv().unwrap();
            let len = req.len();
            req.buf_mut()[..len].reverse();
            req.respond(len).unwrap();
        }
        let mut tx = link.producer("q", &wait).unwrap();
        for i in 0..MESSAGES {
            tx.send(&i.to_le_bytes()[..(i % 4 + 1) as usize]).unwrap();
        }
    });
    watchdog(120, move || {
        let wait = DoorbellWait::new(c0.session(), b0, StdDelay).with_spin_limit(0);
        let link = c0.create(&layout, &wait, LONG).unwrap();
        let client = link.client("rpc", &wait).unwrap();
        let mut out = [0u8; 16];
        for i in 0..CALLS {
            let n = client.call(&i.to_le_bytes(), &mut out).unwrap();
            let mut expect = i.to_le_bytes();
            expect.reverse();
            assert_eq!(&out[..n], &expect);
        }
        let mut rx = link.consumer("q", &wait).unwrap();
        for i in 0..MESSAGES {
            let n = rx.recv(&mut out).unwrap();
            assert_eq!(&out[..n], &i.to_le_bytes()[..(i % 4 + 1) as usize]);
        }
    });
    core1.join().unwrap();
    let (rung0, slept0) = counter.counts(0);
    let (rung1, slept1) = counter.counts(1);
    // Both sides really slept and were really rung.
    assert!(slept0 > 0 && slept1 > 0, "slept {slept0}/{slept1}");
    assert!(rung0 > 0 && rung1 > 0, "rung {rung0}/{rung1}");
}

#[test]
fn timed_waits_are_charged_through_the_delay() {
    let w = window(8192);
    let layout = Layout::new().queue("q", 256).unwrap();
    let (c0, c1) = endpoints(w);
    let delay = CountingDelay::default();
    let l1 = layout.clone();
    let opener = thread::spawn(move || {
        let wait = spin_wait(c1.session());
        // The session stays current after the thread ends: nothing in the
        // lanes changes when a `Link` goes out of scope.
        c1.open(&l1, &wait, LONG).unwrap();
    });
    let wait = spin_wait(c0.session());
    let link = c0.create(&layout, &wait, LONG).unwrap();
    opener.join().unwrap();

    let slice = 10_000u32;
    let spin = SpinWait::<::spin::relax::Loop, _>::new(c0.session(), delay.clone()).with_slice_ns(slice);
    let mut rx = link.consumer("q", &spin).unwrap();
    let mut buf = [0u8; 8];
    assert_eq!(rx.recv_timeout(&mut buf, Duration::from_millis(1)), Err(RecvError::Timeout));
    let spent = delay.0.swap(0, Ordering::Relaxed);
    // 100 slices are charged; the first stands for the spinning before it,
    // the others were really delayed: the timeout is never short by more
    // than a slice or two, and never long.
    assert!((1_000_000 - 2 * u64::from(slice)..=1_000_000).contains(&spent), "spent {spent} ns");
    drop(rx);

    // A doorbell wait without a tick delays in its parks instead.
    let (b0, _b1) = TestBell::pair();
    let bell = DoorbellWait::new(c0.session(), b0, delay.clone()).with_spin_limit(0);
    let mut rx = link.consumer("q", &bell).unwrap();
    assert_eq!(rx.recv_timeout(&mut buf, Duration::from_micros(100)), Err(RecvError::Timeout));
    let spent = delay.0.load(Ordering::Relaxed);
    assert!((90_000..=100_000).contains(&spent), "spent {spent} ns");

    // Waits without timeout never run out, and the budget says so.
    let unbounded = spin.deadline(None);
    assert!(unbounded.is_unbounded());
}

#[test]
fn budgets_saturate_for_timeouts_past_u64_nanoseconds() {
    let w = window(8192);
    let (c0, _) = endpoints(w);
    let wait = SpinWait::<::spin::relax::Loop, _>::new(c0.session(), CountingDelay::default());
    let max = u64::MAX;
    assert_eq!(wait.deadline(Some(Duration::MAX)).remaining_ns(), Some(max));
    // 2^64 ns + 5: a truncating cast would leave a budget of 5 ns.
    let past = Duration::from_nanos(max) + Duration::from_nanos(6);
    assert_eq!(wait.deadline(Some(past)).remaining_ns(), Some(max));
    assert_eq!(wait.deadline(Some(Duration::from_micros(3))).remaining_ns(), Some(3000));
}

#[test]
fn a_full_queue_times_out_and_reports_a_reset_peer_instead() {
    let w = window(8192);
    let layout = Layout::new().queue("q", 64).unwrap();
    let (c0, c1) = endpoints(w);
    let l1 = layout.clone();
    let (go, wait_go) = mpsc::channel::<()>();
    let opener = thread::spawn(move || {
        let wait = spin_wait(c1.session());
        let link = c1.open(&l1, &wait, LONG).unwrap();
        let rx = link.consumer("q", &wait).unwrap();
        wait_go.recv().unwrap();
        std::mem::forget(rx);
        // A new life of core 1 that never finishes attaching.
        c1.session().begin();
    });
    let wait = spin_wait(c0.session());
    let link = c0.create(&layout, &wait, LONG).unwrap();
    let mut tx = link.producer("q", &wait).unwrap();
    while tx.try_send(&[0; 16]).is_ok() {}
    let short = Duration::from_millis(1);
    assert_eq!(tx.send_timeout(&[0; 16], short), Err(SendError::Timeout));
    go.send(()).unwrap();
    opener.join().unwrap();
    match tx.send_timeout(&[0; 16], short) {
        Err(SendError::PeerReset(r)) => assert_eq!(r.peer, CoreId::CORE1.number().into()),
        other => panic!("expected PeerReset, got {other:?}"),
    }
}

/// What the recording cache saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Clean(usize, usize),
    Invalidate(usize, usize),
}

#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<(usize, Op)>>>, usize);

impl Recorder {
    fn for_core(&self, core: usize) -> Recorder {
        Recorder(self.0.clone(), core)
    }
    fn events(&self) -> Vec<(usize, Op)> {
        self.0.lock().unwrap().clone()
    }
}

impl Cache for Recorder {
    fn clean(&self, addr: *const u8, len: usize) {
        self.0.lock().unwrap().push((self.1, Op::Clean(addr as usize, len)));
    }
    fn invalidate(&self, addr: *const u8, len: usize) {
        self.0.lock().unwrap().push((self.1, Op::Invalidate(addr as usize, len)));
    }
}

#[test]
fn cache_hooks_bracket_every_hand_over() {
    let w = window(16384);
    let layout = Layout::new().queue("q", 256).unwrap().mailbox("rpc", 1, 64).unwrap();
    let rec = Recorder::default();
    let c0 = Endpoint::with_cache(w, CoreId::CORE0, CoreId::CORE1, rec.for_core(0));
    let c1 = Endpoint::with_cache(w, CoreId::CORE1, CoreId::CORE0, rec.for_core(1));
    let l1 = layout.clone();
    let (step, next) = mpsc::channel::<()>();
    let (served, wait_served) = mpsc::channel::<()>();
    let core1 = thread::spawn(move || {
        let wait = spin_wait(c1.session());
        let link = c1.open(&l1, &wait, LONG).unwrap();
        let mut rx = link.consumer("q", &wait).unwrap();
        let mut buf = [0u8; 8];
        assert_eq!(rx.recv_timeout(&mut buf, LONG).unwrap(), 5);
        let server = link.server("rpc", &wait).unwrap();
        next.recv().unwrap();
        server
            .serve_timeout(LONG, |buf, len| {
                buf[len] = b'!';
                len + 1
            })
            .unwrap();
        served.send(()).unwrap();
        // The ends close here (consumer, then server): each close mark is
        // cleaned before it is stored.
        drop(rx);
        drop(server);
    });
    let base = w.base() as usize;
    let wait = spin_wait(c0.session());
    let link = c0.create(&layout, &wait, LONG).unwrap();
    let mut tx = link.producer("q", &wait).unwrap();
    tx.send_timeout(b"hello", LONG).unwrap();
    let client = link.client("rpc", &wait).unwrap();
    step.send(()).unwrap();
    // The zero-copy call: claim a slot, write in place, send, read the
    // response in place.
    let mut slot = client.claim_timeout(LONG).unwrap();
    slot[..3].copy_from_slice(b"hey");
    let response = slot.send(3).unwrap().wait_timeout(LONG).unwrap();
    assert_eq!(&response[..], b"hey!");
    drop(response);
    wait_served.recv().unwrap();
    drop(tx);
    core1.join().unwrap();

    let ev = rec.events();
    let queue = link.segment().channels()[0];
    let mailbox = link.segment().channels()[1];
    let (q, mb) = (shm_core::format::queue::RING, shm_core::format::mailbox::SLOTS);
    let payload = base + queue.offset as usize + q + shm_core::format::queue::FRAME_HEADER as usize;
    let slot = base + mailbox.offset as usize + mb + shm_core::format::mailbox::SLOT_PAYLOAD;
    // The words that carry the close marks.
    let word = |area: usize, at: usize| Op::Clean(base + area + at, 4);
    let (qoff, moff) = (queue.offset as usize, mailbox.offset as usize);
    let head = word(qoff, shm_core::format::queue::HEAD);
    let tail = word(qoff, shm_core::format::queue::TAIL);
    let server = word(moff, shm_core::format::mailbox::SERVER);
    let server_waiting = word(moff, shm_core::format::mailbox::SERVER_WAITING);
    let on = |core: usize| -> Vec<Op> { ev.iter().filter(|e| e.0 == core).map(|e| e.1).collect() };
    let core0 = on(0);
    assert_eq!(
        core0,
        [Op::Clean(base, layout.size()), Op::Clean(payload, 5), Op::Clean(slot, 3), Op::Invalidate(slot, 4), head]
    );
    // Core 1 invalidates the whole segment before each look at it while it
    // waits for READY: once, or more when the creator was still writing
    // (how often is up to the scheduler). Then one invalidate before each
    // read of a hand-over.
    let core1 = on(1);
    let looks = core1.iter().take_while(|&&op| op == Op::Invalidate(base, w.segment_len())).count();
    assert!(looks >= 1, "core 1 invalidates before its first look at the segment: {core1:?}");
    assert_eq!(
        core1[looks..],
        [Op::Invalidate(payload, 5), Op::Invalidate(slot, 3), Op::Clean(slot, 4), tail, server_waiting, server],
        "core 1"
    );
    // Each hand-over: the writer cleans before its Release, the reader
    // invalidates after the Acquire that saw it, so in this order. (Core
    // 1's invalidates at open may come before or after core 0's clean of
    // the segment: on the host, READY is visible before that clean.)
    let at = |event: (usize, Op)| ev.iter().position(|e| *e == event).unwrap();
    for (writer, clean, reader, invalidate) in [
        (0, Op::Clean(payload, 5), 1, Op::Invalidate(payload, 5)),
        (0, Op::Clean(slot, 3), 1, Op::Invalidate(slot, 3)),
        (1, Op::Clean(slot, 4), 0, Op::Invalidate(slot, 4)),
    ] {
        assert!(at((writer, clean)) < at((reader, invalidate)), "{clean:?} before {invalidate:?}: {ev:?}");
    }
}

#[test]
fn errors_read_as_lowercase_sentences_with_kinds() {
    use shm_core::{ErrorKind, HasErrorKind, OpenError};
    fn boxed<E: HasErrorKind + 'static>(e: E) -> (ErrorKind, Box<dyn std::error::Error>) {
        (e.kind(), Box::new(e))
    }
    let reset = PeerReset { peer: 1, linked: 1, now: 2 };
    let all = [
        (boxed(reset), ErrorKind::PeerDied),
        (boxed(AttachError::Timeout { peer: CoreId::CORE0 }), ErrorKind::Timeout),
        (boxed(AttachError::Open(OpenError::BadMagic)), ErrorKind::Incompatible),
        (boxed(WindowError::TooSmall { len: 64, min: 128 }), ErrorKind::InvalidArgument),
        (boxed(CallError::Timeout), ErrorKind::Timeout),
        (boxed(CallError::PeerReset(reset)), ErrorKind::PeerDied),
    ];
    for ((kind, e), want) in &all {
        assert_eq!(kind, want, "{e}");
        let s = e.to_string();
        assert!(s.chars().next().unwrap().is_lowercase() || s.starts_with(|c: char| c.is_ascii_digit()), "{s}");
        assert!(!s.ends_with('.'), "{s}");
    }
    // The chain leads to the shm-core error inside.
    let open: &dyn std::error::Error = &AttachError::Open(OpenError::BadMagic);
    assert_eq!(open.source().and_then(|e| e.downcast_ref::<OpenError>()), Some(&OpenError::BadMagic));
}

#[test]
fn windows_refuse_misaligned_or_tiny_ranges() {
    let memory: &'static MockRegion = Box::leak(Box::new(MockRegion::new(8192)));
    let base = memory.region().as_ptr();
    // SAFETY: in-bounds pointers into a leaked buffer; only validated here.
    let misaligned = unsafe { Window::new(base.add(4), 1024) };
    assert_eq!(misaligned.err(), Some(WindowError::Misaligned { addr: base as usize + 4 }));
    // SAFETY: as above.
    let tiny = unsafe { Window::new(base, 100) };
    assert_eq!(tiny.err(), Some(WindowError::TooSmall { len: 64, min: Window::MIN_LEN }));
    // SAFETY: as above.
    let w = unsafe { Window::from_range(base, base.add(4096 + 63)) }.unwrap();
    assert_eq!((w.len(), w.segment_len()), (4096, 4096 - 64));
    assert_eq!(w.attach_block() as *const AttachBlock as usize, base as usize + 4096 - 64);
}

/// One core sleeping on three channels at once (`DoorbellWait::wait_any`):
/// whichever the other core feeds wakes it, every round. The wait has no
/// timeout, so a lost wake-up would hang the round (the watchdog fails it).
#[test]
fn wait_any_wakes_for_the_channel_the_peer_feeds() {
    const ROUNDS: u32 = 300;
    let w = window(32768);
    let layout = Layout::new()
        .queue("a", 1024)
        .unwrap()
        .queue("b", 1024)
        .unwrap()
        .broadcast("c", 1024, 1, shm_core::broadcast::Policy::Block)
        .unwrap();
    let (c0, c1) = endpoints(w);
    let (b0, b1) = TestBell::pair();
    let l1 = layout.clone();
    let (go, next) = mpsc::channel::<u32>();
    let core1 = thread::spawn(move || {
        let wait = DoorbellWait::new(c1.session(), b1, StdDelay).with_spin_limit(0);
        let link = c1.open(&l1, &wait, LONG).unwrap();
        let (mut ta, mut tb) = (link.producer("a", &wait).unwrap(), link.producer("b", &wait).unwrap());
        let mut tc = link.segment().publisher("c", &wait).unwrap();
        while let Ok(round) = next.recv() {
            match round % 3 {
                0 => ta.send_timeout(&round.to_le_bytes(), LONG).unwrap(),
                1 => tb.send_timeout(&round.to_le_bytes(), LONG).unwrap(),
                _ => tc.publish_timeout(&round.to_le_bytes(), LONG).unwrap(),
            }
        }
    });
    watchdog(60, move || {
        let wait = DoorbellWait::new(c0.session(), b0, StdDelay).with_spin_limit(0);
        let link = c0.create(&layout, &wait, LONG).unwrap();
        let (mut a, mut b) = (link.consumer("a", &wait).unwrap(), link.consumer("b", &wait).unwrap());
        let mut c = link.segment().subscriber("c", &wait).unwrap();
        let mut buf = [0u8; 8];
        for round in 0..ROUNDS {
            go.send(round).unwrap();
            let ready = wait.wait_any(&[&a, &b, &c], None);
            assert_eq!(ready, Some((round % 3) as usize), "round {round}");
            let n = match round % 3 {
                0 => a.try_recv(&mut buf),
                1 => b.try_recv(&mut buf),
                _ => c.try_recv(&mut buf),
            }
            .unwrap();
            assert_eq!(&buf[..n], &round.to_le_bytes());
        }
        drop(go);
    });
    core1.join().unwrap();
}
