//! One thread sleeping on several endpoints at once (`WaitSet`), with real
//! futexes: whichever endpoint another thread makes ready wakes it, each
//! time, with `futex_waitv` and with the fallback; nothing ready is a
//! timeout; a mailbox server and a direct mailbox server are among the
//! endpoints.

use std::time::Duration;

use shm_core::broadcast::Policy;
use shm_core::ready::Waitable;
use shm_core::Layout;
use shm_posix::{FutexWait, Segment, WaitSet, WaitSetError};

/// Long enough never to pass unless a wake-up is lost.
const LONG: Duration = Duration::from_secs(20);

fn layout() -> Layout {
    Layout::new()
        .queue("a", 4096)
        .and_then(|l| l.queue("b", 4096))
        .and_then(|l| l.broadcast("c", 4096, 2, Policy::Overwrite))
        .and_then(|l| l.mailbox("m", 2, 64))
        .and_then(|l| l.direct("d", 2, 64))
        .unwrap()
}

/// Many rounds: a thread makes one endpoint ready (chosen by the round),
/// the waiting thread must be woken and find exactly that one.
fn rounds(set: WaitSet, tag: &str, lost_wakeups_show: bool) {
    let name = format!("/shm-waitset-{tag}-{}", std::process::id());
    let segment = Segment::create(&name, &layout()).unwrap();
    // No spinning: every round really sleeps and is really woken.
    let sleeper = || FutexWait::with_spin(0);
    let mut a = segment.consumer("a", sleeper()).unwrap();
    let mut b = segment.consumer("b", sleeper()).unwrap();
    let mut c = segment.subscriber("c", sleeper()).unwrap();
    let server = segment.server("m", sleeper()).unwrap();
    let mut direct = segment.direct_server("d", sleeper()).unwrap();
    let mut ta = segment.producer("a", sleeper()).unwrap();
    let mut tb = segment.producer("b", sleeper()).unwrap();
    let mut tc = segment.publisher("c", sleeper()).unwrap();
    let client = segment.client("m", sleeper()).unwrap();
    let mut dclient = segment.direct_client("d", sleeper()).unwrap();
    let mut buf = [0u8; 64];
    for round in 0..200u32 {
        let which = (round % 5) as usize;
        std::thread::scope(|s| {
            let (ta, tb, tc, client, dclient) = (&mut ta, &mut tb, &mut tc, &client, &mut dclient);
            let maker = s.spawn(move || match which {
                0 => ta.try_send(b"a").map(|_| None).unwrap(),
                1 => tb.try_send(b"b").map(|_| None).unwrap(),
                2 => tc.try_publish(b"c").map(|_| None).unwrap(),
                3 => {
                    let mut out = [0u8; 8];
                    Some(client.call_timeout(b"m", &mut out, LONG).map(|n| out[..n].to_vec()).unwrap())
                }
                _ => {
                    let mut out = [0u8; 8];
                    Some(dclient.call_timeout(b"d", &mut out, LONG).map(|n| out[..n].to_vec()).unwrap())
                }
            });
            let endpoints: [&dyn Waitable; 5] = [&a, &b, &c, &server, &direct];
            let (ready, expired) = set.wait_counting(&endpoints, LONG);
            let ready = ready.unwrap_or_else(|e| panic!("{tag}, round {round}: {e}"));
            if lost_wakeups_show {
                assert_eq!(expired, 0, "{tag}, round {round}: a sleep ran its whole slice (a lost wake-up)");
            }
            assert_eq!(ready, which, "{tag}, round {round}");
            match ready {
                0 => assert_eq!(a.try_recv(&mut buf).unwrap(), 1),
                1 => assert_eq!(b.try_recv(&mut buf).unwrap(), 1),
                2 => assert_eq!(c.try_recv(&mut buf).unwrap(), 1),
                3 => {
                    let request = server.try_recv().unwrap();
                    assert_eq!(request.data(), b"m");
                    request.respond_with(b"M").unwrap();
                }
                _ => {
                    let mut request = direct.try_recv().unwrap();
                    assert_eq!(request.data(), b"d");
                    request.buf_mut()[0] = b'D';
                    request.respond(1).unwrap();
                }
            }
            let answer = maker.join().unwrap();
            match which {
                3 => assert_eq!(answer.as_deref(), Some(&b"M"[..])),
                4 => assert_eq!(answer.as_deref(), Some(&b"D"[..])),
                _ => {}
            }
        });
    }
}

#[test]
fn the_endpoint_made_ready_wakes_the_set_every_time() {
    // One sleep lasts until a wake-up: a lost one fails the round.
    rounds(WaitSet::new().with_slice(LONG), "waitv", true);
}

#[test]
fn the_fallback_without_futex_waitv_wakes_it_too() {
    // Its sleeps end every millisecond by design: it must still find each.
    rounds(WaitSet::without_waitv(), "fallback", false);
}

#[test]
fn nothing_ready_is_a_timeout_and_bad_counts_are_refused() {
    let name = format!("/shm-waitset-idle-{}", std::process::id());
    let segment = Segment::create(&name, &layout()).unwrap();
    let a = segment.consumer("a", FutexWait::new()).unwrap();
    let set = WaitSet::new();
    assert_eq!(set.wait(&[&a], Duration::from_millis(20)), Err(WaitSetError::Timeout));
    assert_eq!(set.wait(&[], Duration::ZERO), Err(WaitSetError::BadCount { given: 0 }));
    // A closed producer counts as ready: the consumer's call reports it.
    drop(segment.producer("a", FutexWait::new()).unwrap());
    assert_eq!(set.wait(&[&a], LONG), Ok(0));
}
