//! Awaitable calls (feature `tokio`) on a tokio runtime: one task awaits
//! two channels at once with `tokio::select!`, an async mailbox call, and
//! timeouts that report what the blocking calls would.
#![cfg(feature = "tokio")]

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
                    r = aio::recv_broadcast(&mut c, &mut bc, LONG), if next_c < MESSAGES => {
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
            for _ in 0..100 {
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
        };
        runtime().block_on(calls);
    });
    // Nothing will come: the receive times out.
    let mut a = segment.consumer("a", FutexWait::new()).unwrap();
    let mut buf = [0u8; 8];
    let got = runtime().block_on(aio::recv(&mut a, &mut buf, Duration::from_millis(20)));
    assert_eq!(got, Err(RecvError::Timeout));
}
