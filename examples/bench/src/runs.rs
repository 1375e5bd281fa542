//! The orchestrator's side of each row: make the segment, pipe, socket or
//! queue, start the peer, measure, collect the peer's report.

use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

use shm_core::queue::max_message;
use shm_core::{AtomicU32, ChannelKind, Layout};
use shm_posix::{FutexWait, NamedSemaphoreWait, Segment};

use crate::procs::{Names, Peer, PeerReport};
use crate::report::{PerSide, RoundTripRow, ThroughputRow};
use crate::strategy::{Counted, SpinWait};
use crate::{mq, roundtrip, throughput, Method, Test, FLOOR, MAILBOX, QUEUE, SLOTS};

/// The first word of the floor's 64-byte channel area.
pub fn floor_word(seg: &Segment) -> Result<&AtomicU32, String> {
    let (_, info) = seg.find(FLOOR, ChannelKind::Semaphore).map_err(|e| format!("floor channel: {e}"))?;
    let offset = info.offset as usize;
    let region = seg.region();
    if !offset.is_multiple_of(64) || offset + 64 > region.len() {
        return Err(format!("floor channel at offset {offset} is outside the {}-byte mapping", region.len()));
    }
    // SAFETY: `offset` is 64-aligned and its 64-byte area lies inside the
    // mapping (checked just above, against the length this side mapped);
    // the mapping stays valid while `seg` is borrowed, which the returned
    // reference is tied to. Both processes touch the word only atomically.
    Ok(unsafe { &*region.as_ptr().add(offset).cast::<AtomicU32>() })
}

/// Why a row has no figures.
pub enum RunError {
    /// The method cannot run here (a system limit); not a failure.
    Skipped(String),
    /// It failed.
    Failed(String),
}

impl From<String> for RunError {
    fn from(e: String) -> Self {
        RunError::Failed(e)
    }
}

pub fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// The orchestrator's state for one run.
pub struct Ctx {
    /// This binary, re-run as the peer.
    pub exe: PathBuf,
    /// Timed round trips per row.
    pub iters: u64,
    /// Untimed round trips first.
    pub warmup: u64,
    /// Mailbox slot payload bytes (the largest round-trip size).
    pub slot_size: u32,
    /// Queue ring bytes, if given.
    pub ring: Option<usize>,
    /// CPU the peer pins itself to.
    pub peer_cpu: Option<usize>,
    /// How long a peer may live.
    pub peer_timeout: Duration,
    /// Names made so far, removed after each row.
    pub names: Names,
}

impl Ctx {
    /// Starts the peer for `method`, handing it `fds` (the caller closes its
    /// copies afterwards).
    #[allow(clippy::too_many_arguments)]
    fn peer(
        &self,
        test: Test,
        method: Method,
        size: usize,
        name: &str,
        warmup: u64,
        count: u64,
        fds: &[&OwnedFd],
    ) -> Result<Peer, String> {
        let test = match test {
            Test::RoundTrip => "round-trip",
            Test::Throughput => "throughput",
        };
        let mut args: Vec<String> =
            ["peer", "--test", test, "--method", method.id(), "--name", name].iter().map(|s| s.to_string()).collect();
        args.extend(["--size".into(), size.to_string(), "--warmup".into(), warmup.to_string()]);
        args.extend(["--count".into(), count.to_string()]);
        if !fds.is_empty() {
            let list: Vec<String> = fds.iter().map(|fd| fd.as_raw_fd().to_string()).collect();
            args.extend(["--fds".into(), list.join(",")]);
        }
        if let Some(cpu) = self.peer_cpu {
            args.extend(["--cpu".into(), cpu.to_string()]);
        }
        Peer::spawn(&self.exe, &args, fds, self.peer_timeout)
    }

    fn round_trip(&mut self, method: Method, size: usize) -> Result<(roundtrip::Timing, PeerReport), RunError> {
        let (w, n) = (self.warmup, self.iters);
        match method {
            Method::AtomicFloor => {
                let name = self.names.segment();
                let layout = Layout::new().semaphore(FLOOR, 0).map_err(err)?;
                let seg = Segment::create(&name, &layout).map_err(err)?;
                let word = floor_word(&seg)?;
                let peer = self.peer(Test::RoundTrip, method, size, &name, w, n, &[])?;
                let t = roundtrip::floor_client(word, peer.pid(), w, n)?;
                Ok((t, peer.finish()?))
            }
            Method::MailboxSpin | Method::MailboxFutex | Method::MailboxSem => {
                let name = self.names.segment();
                let layout = Layout::new().mailbox(MAILBOX, SLOTS, self.slot_size).map_err(err)?;
                let seg = Segment::create(&name, &layout).map_err(err)?;
                let peer = self.peer(Test::RoundTrip, method, size, &name, w, n, &[])?;
                let t = match method {
                    Method::MailboxSpin => {
                        roundtrip::mailbox_client(&seg.client(MAILBOX, SpinWait).map_err(err)?, size, w, n)
                    }
                    Method::MailboxFutex => {
                        let client = seg.client(MAILBOX, Counted(FutexWait::new())).map_err(err)?;
                        roundtrip::mailbox_client(&client, size, w, n)
                    }
                    _ => {
                        let client = seg.client(MAILBOX, Counted(NamedSemaphoreWait::new(&seg))).map_err(err)?;
                        roundtrip::mailbox_client(&client, size, w, n)
                    }
                }?;
                Ok((t, peer.finish()?))
            }
            Method::Pipe => {
                let flags = rustix::pipe::PipeFlags::CLOEXEC;
                let (req_r, req_w) = rustix::pipe::pipe_with(flags).map_err(|e| format!("pipe: {e}"))?;
                let (resp_r, resp_w) = rustix::pipe::pipe_with(flags).map_err(|e| format!("pipe: {e}"))?;
                let peer = self.peer(Test::RoundTrip, method, size, "", w, n, &[&req_r, &resp_w])?;
                drop((req_r, resp_w));
                let t = roundtrip::stream_client(File::from(req_w), File::from(resp_r), size, w, n)?;
                Ok((t, peer.finish()?))
            }
            Method::UnixSocket => {
                let (mine, theirs) = socket_pair()?;
                let peer = self.peer(Test::RoundTrip, method, size, "", w, n, &[&theirs])?;
                drop(theirs);
                let s = UnixStream::from(mine);
                let t = roundtrip::stream_client(&s, &s, size, w, n)?;
                Ok((t, peer.finish()?))
            }
            Method::Mqueue => {
                let base = self.names.queue_pair();
                let create = |role: &str| {
                    mq::MessageQueue::create(&format!("{base}-{role}"), 1, size).map_err(|e| {
                        let limit = std::fs::read_to_string("/proc/sys/fs/mqueue/msgsize_max").unwrap_or_default();
                        match limit.trim().parse::<usize>() {
                            Ok(max) if e.kind() == std::io::ErrorKind::InvalidInput && size > max => RunError::Skipped(
                                format!("skipped: {size}-byte messages exceed /proc/sys/fs/mqueue/msgsize_max ({max})"),
                            ),
                            _ => RunError::Failed(e.to_string()),
                        }
                    })
                };
                let (requests, responses) = (create("req")?, create("resp")?);
                let peer = self.peer(Test::RoundTrip, method, size, &base, w, n, &[])?;
                let t = roundtrip::mq_client(&requests, &responses, peer.pid(), size, w, n)?;
                Ok((t, peer.finish()?))
            }
            other => Err(RunError::Failed(format!("{} has no round-trip test", other.id()))),
        }
    }

    /// Messages and warm-up of a throughput row of `size`-byte messages.
    fn throughput_counts(&self, size: usize) -> (u64, u64) {
        let by_bytes = self.iters.saturating_mul(20 << 10) / size as u64;
        let count = by_bytes.clamp(200, self.iters.saturating_mul(20).max(200));
        (count / 10, count)
    }

    fn ring_for(&self, size: usize) -> Result<u32, String> {
        let ring = match self.ring {
            Some(r) => u32::try_from(r).map_err(|_| format!("--ring {r} is larger than 1 GiB"))?,
            None => {
                let mut cap = 64u32 << 10;
                while (max_message(cap) as usize) < size && cap < 1 << 30 {
                    cap *= 2;
                }
                cap
            }
        };
        if (max_message(ring) as usize) < size {
            return Err(format!("a {ring}-byte ring carries at most {} bytes per message", max_message(ring)));
        }
        Ok(ring)
    }

    fn throughput(&mut self, method: Method, size: usize) -> Result<(throughput::Rate, PeerReport), RunError> {
        let (w, n) = self.throughput_counts(size);
        match method {
            Method::Memcpy => Ok((throughput::memcpy(size, w, n), PeerReport::default())),
            Method::QueueCopy | Method::QueueGrant => {
                let name = self.names.segment();
                let layout = Layout::new().queue(QUEUE, self.ring_for(size)?).map_err(err)?;
                let seg = Segment::create(&name, &layout).map_err(err)?;
                let mut rx = seg.consumer(QUEUE, Counted(FutexWait::new())).map_err(err)?;
                let peer = self.peer(Test::Throughput, method, size, &name, w, n, &[])?;
                let rate = if method == Method::QueueCopy {
                    throughput::queue_copy_receiver(&mut rx, size, w, n)
                } else {
                    throughput::queue_grant_receiver(&mut rx, size, w, n)
                }?;
                Ok((rate, peer.finish()?))
            }
            Method::Pipe => {
                let (r, wr) =
                    rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).map_err(|e| format!("pipe: {e}"))?;
                // A bigger buffer than the 64 KiB default: fewer wake-ups for
                // large messages (best effort; 1 MiB is the usual limit).
                let _ = rustix::pipe::fcntl_setpipe_size(&wr, 1 << 20);
                let peer = self.peer(Test::Throughput, method, size, "", w, n, &[&wr])?;
                drop(wr);
                let rate = throughput::stream_receiver(File::from(r), size, w, n)?;
                Ok((rate, peer.finish()?))
            }
            Method::UnixSocket => {
                let (mine, theirs) = socket_pair()?;
                let peer = self.peer(Test::Throughput, method, size, "", w, n, &[&theirs])?;
                drop(theirs);
                let rate = throughput::stream_receiver(UnixStream::from(mine), size, w, n)?;
                Ok((rate, peer.finish()?))
            }
            other => Err(RunError::Failed(format!("{} has no throughput test", other.id()))),
        }
    }
}

fn socket_pair() -> Result<(OwnedFd, OwnedFd), String> {
    use rustix::net::{socketpair, AddressFamily, SocketFlags, SocketType};
    socketpair(AddressFamily::UNIX, SocketType::STREAM, SocketFlags::CLOEXEC, None)
        .map_err(|e| format!("socketpair: {e}"))
}

pub fn round_trip_row(ctx: &mut Ctx, method: Method, size: usize) -> (RoundTripRow, bool) {
    let mut row = RoundTripRow {
        method: method.id(),
        label: method.label_round_trip(),
        shm: method.is_shm(),
        size,
        iterations: ctx.iters,
        warmup: ctx.warmup,
        median_ns: None,
        p99_ns: None,
        p999_ns: None,
        max_ns: None,
        mean_ns: None,
        vs_floor: None,
        vs_best_alternative: None,
        best_alternative: None,
        allocations: PerSide::default(),
        allocations_slow: PerSide::default(),
        parks: PerSide::default(),
        wakes: PerSide::default(),
        error: None,
    };
    let result = ctx.round_trip(method, size);
    ctx.names.sweep();
    let failed = match result {
        Ok((t, peer)) => {
            row.median_ns = Some(t.hist.value_at_quantile(0.5));
            row.p99_ns = Some(t.hist.value_at_quantile(0.99));
            row.p999_ns = Some(t.hist.value_at_quantile(0.999));
            row.max_ns = Some(t.hist.max());
            row.mean_ns = Some(t.hist.mean());
            row.allocations = PerSide { client: t.allocs.hot, peer: peer.allocs };
            row.allocations_slow = PerSide { client: t.allocs.slow, peer: peer.allocs_slow };
            row.parks = PerSide { client: t.counters.parks, peer: peer.parks };
            row.wakes = PerSide { client: t.counters.wakes, peer: peer.wakes };
            false
        }
        Err(RunError::Skipped(e)) => {
            row.error = Some(e);
            false
        }
        Err(RunError::Failed(e)) => {
            row.error = Some(format!("failed: {e}"));
            true
        }
    };
    (row, failed)
}

pub fn throughput_row(ctx: &mut Ctx, method: Method, size: usize) -> (ThroughputRow, bool) {
    let is_queue = matches!(method, Method::QueueCopy | Method::QueueGrant);
    let mut row = ThroughputRow {
        method: method.id(),
        label: method.label_throughput(),
        shm: method.is_shm(),
        size,
        messages: ctx.throughput_counts(size).1,
        ring_bytes: if is_queue { ctx.ring_for(size).ok() } else { None },
        seconds: None,
        msgs_per_s: None,
        gb_per_s: None,
        vs_ceiling: None,
        vs_best_alternative: None,
        best_alternative: None,
        allocations: PerSide::default(),
        allocations_slow: PerSide::default(),
        parks: PerSide::default(),
        wakes: PerSide::default(),
        error: None,
    };
    let result = ctx.throughput(method, size);
    ctx.names.sweep();
    let failed = match result {
        Ok((rate, peer)) => {
            let secs = rate.elapsed.as_secs_f64().max(1e-9);
            row.seconds = Some(secs);
            row.msgs_per_s = Some(row.messages as f64 / secs);
            row.gb_per_s = Some(row.messages as f64 * size as f64 / secs / 1e9);
            row.allocations = PerSide { client: rate.allocs.hot, peer: peer.allocs };
            row.allocations_slow = PerSide { client: rate.allocs.slow, peer: peer.allocs_slow };
            row.parks = PerSide { client: rate.counters.parks, peer: peer.parks };
            row.wakes = PerSide { client: rate.counters.wakes, peer: peer.wakes };
            false
        }
        Err(RunError::Skipped(e)) => {
            row.error = Some(e);
            false
        }
        Err(RunError::Failed(e)) => {
            row.error = Some(format!("failed: {e}"));
            true
        }
    };
    (row, failed)
}
