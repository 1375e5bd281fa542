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

/// Kills this process with SIGKILL at crash point `SHM_CRASH_AT`, after
/// `SHM_CRASH_SKIP` earlier passes through it (default 0).
fn install_crash_hook() {
    static AT: std::sync::OnceLock<Option<(String, u64)>> = std::sync::OnceLock::new();
    static HITS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    AT.get_or_init(|| {
        let at = std::env::var("SHM_CRASH_AT").ok()?;
        let skip = std::env::var("SHM_CRASH_SKIP").ok().and_then(|s| s.parse().ok()).unwrap_or(0);
        Some((at, skip))
    });
    shm_core::crash::set_hook(|point| {
        if let Some(Some((at, skip))) = AT.get() {
            if at == point && HITS.fetch_add(1, std::sync::atomic::Ordering::Relaxed) >= *skip {
                let _ = rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::KILL);
            }
        }
    });
}

fn main() {
    install_crash_hook();
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
        "serve-direct" => {
            let seg = Segment::open(arg(1), OPEN).expect("open");
            let mut server = seg.direct_server("d", FutexWait::new()).expect("server");
            conformance::direct_serve(&mut server, num(2));
        }
        "direct-call-once" => {
            let seg = Segment::open(arg(1), OPEN).expect("open");
            let mut client = seg.direct_client("d", FutexWait::new()).expect("client");
            let mut out = [0u8; 256];
            client.call_timeout(b"crash test", &mut out, OPEN).expect("call");
        }
        "produce" => {
            let seg = Segment::open(arg(1), OPEN).expect("open");
            let mut tx = seg.producer("q", FutexWait::new()).expect("producer");
            conformance::queue_send(&mut tx, num(2), num(3));
        }
        "publish" => {
            let seg = Segment::open(arg(1), OPEN).expect("open");
            let mut tx = seg.publisher("b", FutexWait::new()).expect("publisher");
            conformance::broadcast_publish(&mut tx, num(2), num(3));
        }
        "subscribe" => {
            let seg = Segment::open(arg(1), OPEN).expect("open");
            let mut rx = seg.subscriber("b", FutexWait::new()).expect("subscriber");
            let max = rx.max_message();
            say("joined");
            conformance::broadcast_receive(&mut rx, num(2), num(3), max).expect("messages");
        }
        "stream-sleepy" => {
            // Send COUNT numbered messages into queue "a" as fast as the
            // ring allows, sleeping (no spin, no liveness wake-up) whenever
            // it is full.
            let seg = Segment::open(arg(1), OPEN).expect("open");
            let wait = FutexWait::with_spin(0).with_liveness_interval(Duration::MAX);
            let mut tx = seg.producer("a", wait).expect("producer");
            for i in 0..num(2) {
                tx.send_timeout(&i.to_le_bytes(), Duration::from_secs(60)).expect("send");
            }
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
        "call-once" => {
            let seg = Segment::open(arg(1), OPEN).expect("open");
            let client = seg.client("m", FutexWait::new()).expect("client");
            let mut out = [0u8; 256];
            client.call_timeout(b"crash test", &mut out, OPEN).expect("call");
        }
        "serve-once" => {
            let seg = Segment::open(arg(1), OPEN).expect("open");
            let server = seg.server("m", FutexWait::new()).expect("server");
            conformance::mailbox_serve(&server, 1);
        }
        "try-open" => match Segment::open(arg(1), Duration::ZERO) {
            Err(shm_posix::OpenError::Io { source, .. }) if source.kind() == std::io::ErrorKind::PermissionDenied => {
                say("denied");
            }
            Ok(_) => {
                say("opened");
                std::process::exit(3);
            }
            Err(e) => {
                say(&format!("other error: {e}"));
                std::process::exit(4);
            }
        },
        // Prints "waiting", waits for file GO to exist, then creates NAME
        // replacing a stale segment; prints "won INODE" (and holds the
        // segment until stdin closes) or "lost: ERROR".
        "replace-stale" => {
            say("waiting");
            while !std::path::Path::new(arg(2)).exists() {
                std::thread::yield_now();
            }
            let opts = shm_posix::CreateOptions { replace_stale: true, ..Default::default() };
            match Segment::create_with(arg(1), &Layout::new().queue("q", 256).unwrap(), opts) {
                Ok(seg) => {
                    say(&format!("won {}", seg.id().inode));
                    let _ = std::io::stdin().read_line(&mut String::new());
                }
                Err(e) => say(&format!("lost: {e}")),
            }
        }
        "hostile" => hostile(arg(1), Duration::from_secs(num(2)), num(3)),
        other => panic!("unknown role {other}"),
    }
}

/// Scribbles on the control words of segment `name` for `length`: random and
/// adversarial values at the words a protocol relies on (and anywhere else
/// now and then). Prints how many words it overwrote.
fn hostile(name: &str, length: Duration, seed: u64) {
    use shm_core::format::{broadcast as b, header, mailbox as mb, queue as q, semaphore as s, AREAS_OFFSET};
    use shm_core::ChannelParams;
    let seg = Segment::open(name, OPEN).expect("open");
    let mut targets: Vec<usize> = (0..header::SIZE).step_by(4).collect();
    for c in seg.channels() {
        let base = c.offset as usize;
        match c.params() {
            ChannelParams::Queue { capacity } => {
                let words = [q::HEAD, q::PRODUCER, q::CONSUMER_WAITING, q::SENT, q::PRODUCER_FLAGS];
                let more = [q::TAIL, q::CONSUMER, q::PRODUCER_WAITING, q::RECEIVED, q::CONSUMER_FLAGS];
                targets.extend(words.into_iter().chain(more).map(|o| base + o));
                let frames = (0..capacity as usize).step_by(q::FRAME_ALIGN as usize);
                targets.extend(frames.map(|o| base + q::RING + o + q::FRAME_LEN));
            }
            ChannelParams::Mailbox { slots, slot_size } | ChannelParams::Direct { slots, slot_size } => {
                let words = [mb::SERVER, mb::SERVED, mb::REQUEST_EPOCH, mb::SERVER_WAITING];
                targets.extend(words.into_iter().chain([mb::FREE_EPOCH, mb::FREE_WAITERS]).map(|o| base + o));
                let slot_words = [mb::SLOT_STATE, mb::SLOT_LEN, mb::SLOT_CLIENT, mb::SLOT_CLIENT_WAITING];
                for i in 0..slots {
                    targets.extend(slot_words.map(|o| base + mb::slot_offset(i, slot_size) + o));
                }
            }
            ChannelParams::Semaphore { .. } => targets.extend([s::COUNT, s::WAITERS].map(|o| base + o)),
            ChannelParams::Broadcast { capacity, subscribers, .. } => {
                let words = [b::HEAD, b::PUBLISHER, b::PUBLISHED, b::PUBLISHER_WAITING, b::INTENT, b::OLDEST];
                targets.extend(words.map(|o| base + o));
                targets.extend((0..subscribers as usize).map(|i| base + b::WAITING + 4 * i));
                for i in 0..subscribers {
                    let line = base + b::subscriber_offset(i);
                    targets.extend([b::OWNER, b::TAIL, b::RECEIVED, b::MISSED].map(|o| line + o));
                }
                let ring = base + b::ring_offset(subscribers);
                let frames = (0..capacity as usize).step_by(8);
                targets.extend(frames.flat_map(|o| [ring + o + b::FRAME_LEN, ring + o + b::FRAME_SEQ]));
            }
        }
    }
    targets.extend((header::SIZE..AREAS_OFFSET).step_by(4));
    let size = seg.info().size as usize;
    let base = seg.region().as_ptr();
    let mut x = seed | 1;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let start = std::time::Instant::now();
    let mut injected = 0u64;
    while start.elapsed() < length {
        let r = next();
        let offset = if r % 16 == 0 { (next() as usize % size) & !3 } else { targets[next() as usize % targets.len()] };
        let value = match next() % 8 {
            0 => 0,
            1 => u32::MAX,
            2 => 1 << (next() % 32),
            3 => (next() as u32) & 0xff,                 // a small index or state
            4 => (next() as u32 & 0x00ff_ffff) << 8 | 3, // a slot state with a random id
            5 => size as u32 + 8,                        // just past the end
            _ => next() as u32,
        };
        // SAFETY: `offset` is a multiple of 4 below the segment size, which
        // the mapping covers (validated by `Segment::open`); the word is
        // written atomically, as any peer may.
        let word = unsafe { &*base.add(offset).cast::<std::sync::atomic::AtomicU32>() };
        word.store(value, std::sync::atomic::Ordering::Relaxed);
        injected += 1;
        // Bursts with pauses, so honest traffic runs between them.
        if injected.is_multiple_of(32) {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    say(&format!("injected {injected}"));
}
