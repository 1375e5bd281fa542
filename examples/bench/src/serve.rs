//! The peer process: serve round trips or send messages for one row, then
//! print its report as one JSON line.

use std::fs::File;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;

use shm_posix::{FutexWait, NamedSemaphoreWait, Segment};

use crate::runs::{err, floor_word};
use crate::strategy::{Counted, SpinWait};
use crate::{mq, procs, roundtrip, throughput, Method, PeerArgs, Test, MAILBOX, OPEN_TIMEOUT, QUEUE};

/// The peer: serve round trips or send messages, then print a report.
pub fn peer_main(a: PeerArgs) -> Result<(), String> {
    // Die with the orchestrator, so a killed run leaves no spinning peer.
    let _ = rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL));
    match a.cpu {
        Some(cpu) => procs::pin(cpu)?,
        None => crate::strategy::set_one_cpu(procs::allowed_cpus().len() < 2),
    }
    let parent = std::os::unix::process::parent_id();
    let fd = |i: usize| -> Result<OwnedFd, String> {
        let raw = *a.fds.get(i).ok_or_else(|| format!("{} needs descriptor #{i} in --fds", a.method.id()))?;
        procs::inherited_fd(raw)
    };
    let open = || Segment::open(&a.name, OPEN_TIMEOUT).map_err(|e| format!("opening {}: {e}", a.name));
    let (w, n, size) = (a.warmup, a.count, a.size);
    let report = match (a.test, a.method) {
        (Test::RoundTrip, Method::AtomicFloor) => {
            let seg = open()?;
            roundtrip::floor_server(floor_word(&seg)?, parent, w, n)?
        }
        (Test::RoundTrip, Method::MailboxSpin) => {
            let seg = open()?;
            let server = seg.server(MAILBOX, SpinWait).map_err(err)?;
            roundtrip::mailbox_server(&server, w, n)?
        }
        (Test::RoundTrip, Method::MailboxFutex) => {
            let seg = open()?;
            let server = seg.server(MAILBOX, Counted(FutexWait::new())).map_err(err)?;
            roundtrip::mailbox_server(&server, w, n)?
        }
        (Test::RoundTrip, Method::MailboxSem) => {
            let seg = open()?;
            let server = seg.server(MAILBOX, Counted(NamedSemaphoreWait::new(&seg))).map_err(err)?;
            roundtrip::mailbox_server(&server, w, n)?
        }
        (Test::RoundTrip, Method::Pipe) => {
            roundtrip::stream_server(File::from(fd(0)?), File::from(fd(1)?), size, w, n)?
        }
        (Test::RoundTrip, Method::UnixSocket) => {
            let s = UnixStream::from(fd(0)?);
            roundtrip::stream_server(&s, &s, size, w, n)?
        }
        (Test::RoundTrip, Method::Mqueue) => {
            let open = |role: &str| mq::MessageQueue::open(&format!("{}-{role}", a.name)).map_err(err);
            roundtrip::mq_server(&open("req")?, &open("resp")?, parent, size, w, n)?
        }
        (Test::Throughput, Method::QueueCopy | Method::QueueGrant) => {
            let seg = open()?;
            let mut tx = seg.producer(QUEUE, Counted(FutexWait::new())).map_err(err)?;
            if a.method == Method::QueueCopy {
                throughput::queue_copy_sender(&mut tx, size, w, n)?
            } else {
                throughput::queue_grant_sender(&mut tx, size, w, n)?
            }
        }
        (Test::Throughput, Method::Pipe) => throughput::stream_sender(File::from(fd(0)?), size, w, n)?,
        (Test::Throughput, Method::UnixSocket) => throughput::stream_sender(UnixStream::from(fd(0)?), size, w, n)?,
        (test, method) => return Err(format!("no peer for {test:?} {}", method.id())),
    };
    println!("{}", serde_json::to_string(&report).map_err(err)?);
    Ok(())
}
