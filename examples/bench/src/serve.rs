//! The peer process: serve round trips or send messages for one row, then
//! print its report as one JSON line.

use std::fs::File;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;

use shm_posix::{FutexWait, NamedSemaphoreWait, Segment};

use crate::error::Error;
use crate::measure::{self, PeerReport};
use crate::runs::{self, floor_word};
use crate::strategy::{Counted, SpinWait};
use crate::{clients, fanout, mq, procs, roundtrip, throughput, Method, PeerArgs, Test, MAILBOX, OPEN_TIMEOUT, QUEUE};

/// What one served request is, in errors.
const SERVING: &str = "serving request";
/// What one sent message is, in errors.
const SENDING: &str = "sending message";

/// The peer: serve round trips or send messages, then print a report.
pub fn peer_main(a: PeerArgs) -> Result<(), Error> {
    // Die with the orchestrator, so a killed run leaves no spinning peer.
    let _ = rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL));
    if !a.cpus.is_empty() {
        procs::pin_to(&a.cpus)?;
    }
    crate::strategy::set_one_cpu(a.shared_cpu);
    let open = || Segment::open(&a.name, OPEN_TIMEOUT).map_err(Error::shm(format!("opening {}", a.name)));
    let report = match a.test {
        Test::ClientsServer => serde_json::to_string(&clients::serve(&a, &open()?)?),
        Test::ClientsClient => serde_json::to_string(&clients::call(&a, &open()?)?),
        Test::FanoutPublisher => serde_json::to_string(&fanout::publish(&a, &open()?)?),
        Test::FanoutSubscriber => serde_json::to_string(&fanout::receive(&a, &open()?)?),
        Test::RoundTrip | Test::Throughput => serde_json::to_string(&PeerReport::from(two_process(&a)?)),
    };
    let report = report.map_err(|source| Error::Json { what: "the peer's report".into(), source })?;
    println!("{report}");
    Ok(())
}

/// The peer of a two-process row: serve its round trips or send its messages.
fn two_process(a: &PeerArgs) -> Result<measure::Side, Error> {
    let parent = std::os::unix::process::parent_id();
    let fd = |i: usize| -> Result<OwnedFd, Error> {
        let raw = a.fds.get(i).ok_or_else(|| Error::Usage(format!("{} needs descriptor #{i} in --fds", a.method.id())));
        procs::inherited_fd(*raw?)
    };
    let open = || Segment::open(&a.name, OPEN_TIMEOUT).map_err(Error::shm(format!("opening {}", a.name)));
    let (w, n, size) = (a.warmup, a.count, a.size);
    match (a.test, a.method) {
        (Test::RoundTrip, Method::AtomicFloor) => {
            let seg = open()?;
            measure::run(SERVING, w, n, roundtrip::floor_server(floor_word(&seg)?, parent))
        }
        (Test::RoundTrip, Method::PayloadFloor) => {
            let seg = open()?;
            let (word, payload) = runs::payload_floor(&seg, size)?;
            measure::run(SERVING, w, n, roundtrip::payload_floor_server(word, payload, parent))
        }
        (Test::RoundTrip, Method::DirectSpin) => {
            let seg = open()?;
            let mut server = seg.direct_server(MAILBOX, SpinWait).map_err(Error::shm("server"))?;
            measure::run(SERVING, w, n, roundtrip::direct_server(&mut server))
        }
        (Test::RoundTrip, Method::DirectFutex) => {
            let seg = open()?;
            let mut server = seg.direct_server(MAILBOX, Counted(FutexWait::new())).map_err(Error::shm("server"))?;
            measure::run(SERVING, w, n, roundtrip::direct_server(&mut server))
        }
        (Test::RoundTrip, Method::MailboxSpin) => {
            let seg = open()?;
            let server = seg.server(MAILBOX, SpinWait).map_err(Error::shm("server"))?;
            measure::run(SERVING, w, n, roundtrip::mailbox_server(&server))
        }
        (Test::RoundTrip, Method::MailboxFutex) => {
            let seg = open()?;
            let server = seg.server(MAILBOX, Counted(FutexWait::new())).map_err(Error::shm("server"))?;
            measure::run(SERVING, w, n, roundtrip::mailbox_server(&server))
        }
        (Test::RoundTrip, Method::MailboxSem) => {
            let seg = open()?;
            let server = seg.server(MAILBOX, Counted(NamedSemaphoreWait::new(&seg))).map_err(Error::shm("server"))?;
            measure::run(SERVING, w, n, roundtrip::mailbox_server(&server))
        }
        (Test::RoundTrip, Method::Pipe) => {
            measure::run(SERVING, w, n, roundtrip::stream_server(File::from(fd(0)?), File::from(fd(1)?), size))
        }
        (Test::RoundTrip, Method::UnixSocket) => {
            let s = UnixStream::from(fd(0)?);
            measure::run(SERVING, w, n, roundtrip::stream_server(&s, &s, size))
        }
        (Test::RoundTrip, Method::Mqueue) => {
            let open = |role: &str| {
                let name = format!("{}-{role}", a.name);
                mq::MessageQueue::open(&name).map_err(Error::os(format!("opening message queue {name}")))
            };
            let (requests, responses) = (open("req")?, open("resp")?);
            measure::run(SERVING, w, n, roundtrip::mq_server(&requests, &responses, parent, size))
        }
        #[cfg(feature = "iceoryx2")]
        (Test::RoundTrip, Method::Iceoryx2Rr) => {
            let server = crate::iox::RrServer::open(&a.name, size)?;
            measure::run(SERVING, w, n, server.serve(parent))
        }
        #[cfg(feature = "iceoryx2")]
        (Test::RoundTrip, Method::Iceoryx2Pubsub) => {
            use crate::iox::{Side, Topics, PING, PONG};
            let topics = Topics::new(&a.name, size, Side::Open, Some(PONG), Some(PING))?;
            let pong = topics.pong(parent)?;
            measure::run(SERVING, w, n, pong)
        }
        #[cfg(feature = "iceoryx2")]
        (Test::Throughput, Method::Iceoryx2Pubsub) => {
            use crate::iox::{Side, Topics, PING, PONG};
            let topics = Topics::new(&a.name, size, Side::Open, Some(PING), Some(PONG))?;
            topics.wait_for_start(parent)?;
            let send = topics.sender(size)?;
            measure::run(SENDING, w, n, send)
        }
        (Test::Throughput, Method::TransferFloor) => {
            let seg = open()?;
            let ring = runs::transfer_floor(&seg, size)?;
            measure::run(SENDING, w, n, throughput::transfer_floor_sender(&ring, size, parent))
        }
        (Test::Throughput, Method::QueueCopy | Method::QueueGrant) => {
            let seg = open()?;
            let mut tx = seg.producer(QUEUE, Counted(FutexWait::new())).map_err(Error::shm("producer"))?;
            if a.method == Method::QueueCopy {
                measure::run(SENDING, w, n, throughput::queue_copy_sender(&mut tx, size))
            } else {
                measure::run(SENDING, w, n, throughput::queue_grant_sender(&mut tx, size))
            }
        }
        (Test::Throughput, Method::Pipe) => {
            measure::run(SENDING, w, n, throughput::stream_sender(File::from(fd(0)?), size))
        }
        (Test::Throughput, Method::UnixSocket) => {
            measure::run(SENDING, w, n, throughput::stream_sender(UnixStream::from(fd(0)?), size))
        }
        (test, method) => Err(Error::Usage(format!("no peer for {test:?} {}", method.id()))),
    }
}
