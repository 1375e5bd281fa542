//! Awaitable calls (feature `tokio`) on a tokio runtime: one task awaits
//! two channels at once with `tokio::select!`, an async mailbox call, and
//! timeouts that report what the blocking calls would.
#![cfg(feature = "tokio")]

use std::future::Future;
use std::time::Duration;

use shm_core::broadcast::Policy;
use shm_core::{Layout, RecvError};
use shm_posix::{aio, FutexWait, Segment};

/// Long enough never to pass unless a wake-up is lost.
const LONG: Duration = Duration::from_secs(20);
const MESSAGES: u32 = 2000;

fn segment(tag: &str) -> Segment {
    let name = format!("/shm-aio-{tag}-{}", std::process::id());
    let layout = Layout::new()
        .queue("a", 4096)
        .and_then(|l| l.broadcast("c", 4096, 2, Policy::Block))
        .and_then(|l| l.mailbox("m", 2, 64))
        .unwrap();
    Segment::create(&name, &layout).unwrap()
}

/// One task, two channels: a queue and a broadcast channel, each fed by its
/// own thread (sleeping now and then, so the task really waits); every
/// message of both arrives, in order, through `select!`.
/// A single-threaded tokio runtime: the task and the reactor thread are all
/// the waiting there is.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap()
}

#[test]
fn one_task_awaits_two_channels_with_select() {
    let segment = segment("select");
    let mut a = segment.consumer("a", FutexWait::with_spin(0)).unwrap();
    let mut c = segment.subscriber("c", FutexWait::with_spin(0)).unwrap();
    let mut tx = segment.producer("a", FutexWait::new()).unwrap();
    let mut pubr = segment.publisher("c", FutexWait::new()).unwrap();
    std::thread::scope(|s| {
        s.spawn(move || {
            for i in 0..MESSAGES {
                tx.send_timeout(&i.to_le_bytes(), LONG).unwrap();
                if i % 64 == 0 {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        });
        s.spawn(move || {
            for i in 0..MESSAGES {
                pubr.publish_timeout(&(i + 1_000_000).to_le_bytes(), LONG).unwrap();
                if i % 50 == 0 {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        });
        let run = async {
            let (mut next_a, mut next_c) = (0u32, 0u32);
            let (mut ba, mut bc) = ([0u8; 8], [0u8; 8]);
            while next_a < MESSAGES || next_c < MESSAGES {
                tokio::select! {
                    r = aio::recv(&mut a, &mut ba, LONG), if next_a < MESSAGES => {
                        let n = r.unwrap();
                        assert_eq!(u32::from_le_bytes(ba[..n].try_into().unwrap()), next_a);
                        next_a += 1;
                    }
                    r = aio::recv(&mut c, &mut bc, LONG), if next_c < MESSAGES => {
                        let n = r.unwrap();
                        assert_eq!(u32::from_le_bytes(bc[..n].try_into().unwrap()), next_c + 1_000_000);
                        next_c += 1;
                    }
                }
            }
        };
        runtime().block_on(run);
    });
}

/// An async call answered by a server thread; then a call and a receive
/// whose peers are gone report it once their time is up.
#[test]
fn a_call_is_answered_and_timeouts_say_why() {
    let segment = segment("call");
    let server = segment.server("m", FutexWait::new()).unwrap();
    let client = segment.client("m", FutexWait::with_spin(0)).unwrap();
    std::thread::scope(|s| {
        s.spawn(|| {
            for _ in 0..101 {
                let request = server.recv_timeout(LONG).unwrap();
                let mut answer = request.data().to_vec();
                answer.reverse();
                request.respond_with(&answer).unwrap();
            }
        });
        let calls = async {
            for i in 0..100u32 {
                let mut out = [0u8; 8];
                let n = aio::call(&client, &i.to_le_bytes(), &mut out, LONG).await.unwrap();
                let mut want = i.to_le_bytes();
                want.reverse();
                assert_eq!(&out[..n], &want);
            }
            // A response longer than the buffer is an error, as for the
            // blocking call (it was cut short without a word).
            let mut short = [0u8; 2];
            let got = aio::call(&client, &7u32.to_le_bytes(), &mut short, LONG).await;
            assert_eq!(got, Err(shm_core::CallError::BufferTooSmall { needed: 4 }));
        };
        runtime().block_on(calls);
    });
    // Nothing will come: the receive times out.
    let mut a = segment.consumer("a", FutexWait::new()).unwrap();
    let mut buf = [0u8; 8];
    let got = runtime().block_on(aio::recv(&mut a, &mut buf, Duration::from_millis(20)));
    assert_eq!(got, Err(RecvError::Timeout));
}

/// The futures can move between threads (a multi-threaded runtime's
/// `spawn`) when their endpoints can: a compile-time check.
#[test]
fn the_futures_are_send() {
    fn send<T: Send>(_: &T) {}
    let layout = Layout::new().queue("a", 4096).unwrap();
    let memory = shm_core::mock::MockRegion::new(layout.size());
    let segment = shm_core::Segment::create(memory.region(), &layout, 1, 0).unwrap();
    let mut rx = segment.consumer("a", FutexWait::new()).unwrap();
    let mut buf = [0u8; 8];
    let future = aio::recv(&mut rx, &mut buf, LONG);
    send(&future);
}

/// Review finding: a dead producer was noticed only at the deadline. With
/// no deadline at all it must still be reported (a watchdog fails the test
/// if the receive never returns).
#[test]
fn a_dead_producer_is_reported_without_waiting_for_the_deadline() {
    let layout = Layout::new().queue("a", 4096).unwrap();
    let memory = shm_core::mock::MockRegion::new(layout.size());
    let segment = shm_core::Segment::create(memory.region(), &layout, 1, 0).unwrap();
    let mut rx = segment.consumer("a", FutexWait::new()).unwrap();
    // A producer "process" that exists no more: a PID no process has.
    memory.write_u32(shm_core::format::AREAS_OFFSET + shm_core::format::queue::PRODUCER, dead_pid());
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut buf = [0u8; 8];
            let got = runtime().block_on(aio::recv(&mut rx, &mut buf, Duration::MAX));
            done.send(got).unwrap();
        });
        let got = finished.recv_timeout(LONG).expect("the receive returned (not waiting for its deadline)");
        assert_eq!(got, Err(RecvError::PeerDied));
    });
}

/// A PID that names no process (the highest PIDs are rarely used; checked).
fn dead_pid() -> u32 {
    (1..1000u32).map(|k| 4_000_000 - k).find(|&pid| !shm_posix::pid_alive(pid)).expect("a free PID")
}

/// Review finding: a future leaked while registered (`mem::forget` is
/// safe) left the reactor a word in freed memory; its futex_waitv then
/// failed at once, every time, and no other task was woken until the leaked
/// one's deadline. The reactor now drops such entries and goes on.
#[test]
fn a_leaked_future_on_freed_memory_does_not_stall_the_others() {
    let layout = Layout::new().queue("a", 4 << 20).unwrap();
    let rt = runtime();
    {
        let memory = shm_core::mock::MockRegion::new(layout.size());
        let segment = shm_core::Segment::create(memory.region(), &layout, 1, 0).unwrap();
        let mut rx = segment.consumer("a", FutexWait::new()).unwrap();
        let mut buf = [0u8; 8];
        let mut future = Box::pin(aio::recv(&mut rx, &mut buf, Duration::from_secs(3600)));
        let waker = std::task::Waker::noop();
        assert!(future.as_mut().poll(&mut std::task::Context::from_waker(waker)).is_pending());
        std::mem::forget(future);
    } // the region (a 4 MiB mapping) is freed with the future still registered
    let layout = Layout::new().queue("b", 4096).unwrap();
    let memory = shm_core::mock::MockRegion::new(layout.size());
    let segment = shm_core::Segment::create(memory.region(), &layout, 1, 0).unwrap();
    let mut rx = segment.consumer("b", FutexWait::new()).unwrap();
    let mut tx = segment.producer("b", FutexWait::new()).unwrap();
    let sleeps = aio::reactor_sleeps();
    std::thread::scope(|s| {
        s.spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            tx.send_timeout(b"b", LONG).unwrap();
        });
        let mut buf = [0u8; 8];
        assert_eq!(rt.block_on(aio::recv(&mut rx, &mut buf, LONG)), Ok(1));
    });
    // A reactor retrying the failing call at once makes hundreds of
    // thousands in that time; one that drops the entry, a handful.
    let made = aio::reactor_sleeps() - sleeps;
    assert!(made < 1000, "the reactor made {made} futex_waitv calls while one task waited");
}
