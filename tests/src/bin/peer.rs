//! The other process in the cross-process tests. Each role does one thing
//! and exits 0 if it went as expected; roles meant to be killed print a line
//! when they reach their point, then sleep.

use std::io::Write;
use std::time::Duration;

use shm_core::conformance;
use shm_core::Layout;
use shm_posix::{FutexWait, NamedSemaphore, NamedSemaphoreWait, Segment};

const OPEN: Duration = Duration::from_secs(10);

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").and_then(|_| out.flush()).expect("stdout");
}

fn hang() -> ! {
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| args.get(i).map(String::as_str).unwrap_or_else(|| panic!("missing argument {i}: {args:?}"));
    let num = |i: usize| arg(i).parse::<u64>().expect("a number");
    match arg(0) {
        "serve" => {
            let seg = Segment::open(arg(1), OPEN).expect("open");
            match arg(3) {
                "futex" => conformance::mailbox_serve(&seg.server("m", FutexWait::new()).expect("server"), num(2)),
                _ => {
                    let wait = NamedSemaphoreWait::new(&seg);
                    conformance::mailbox_serve(&seg.server("m", &wait).expect("server"), num(2));
                }
            }
        }
        "produce" => {
            let seg = Segment::open(arg(1), OPEN).expect("open");
            let mut tx = seg.producer("q", FutexWait::new()).expect("producer");
            conformance::queue_send(&mut tx, num(2), num(3));
        }
        "sem-post" => {
            let count = num(2);
            if arg(3) == "named" {
                let sem = NamedSemaphore::open(arg(1)).expect("sem_open");
                (0..count).for_each(|_| shm_core::Semaphore::post(&sem).expect("post"));
            } else {
                let seg = Segment::open(arg(1), OPEN).expect("open");
                let sem = seg.semaphore("s", FutexWait::new()).expect("semaphore");
                (0..count).for_each(|_| shm_core::Semaphore::post(&sem).expect("post"));
            }
        }
        "create-and-hang" => {
            let layout = Layout::new().mailbox("m", 2, 64).unwrap();
            let _seg = Segment::create(arg(1), &layout).expect("create");
            say("ready");
            hang();
        }
        "serve-one-and-hang" => {
            let seg = Segment::open(arg(1), OPEN).expect("open");
            let server = seg.server("m", FutexWait::new()).expect("server");
            let _request = server.recv_timeout(OPEN).expect("a request");
            say("holding");
            hang();
        }
        other => panic!("unknown role {other}"),
    }
}
