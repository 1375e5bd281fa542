//! The orchestrator's side of each row: make the segment, pipe, socket or
//! queue, start the peer, measure, collect the peer's report.

use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

use shm_core::format::{mailbox, queue, semaphore, CACHE_LINE};
use shm_core::queue::max_message;
use shm_core::{AtomicU32, ChannelKind, Layout};
use shm_posix::{FutexWait, NamedSemaphoreWait, Segment};

use clap::ValueEnum;
use hdrhistogram::Histogram;

use crate::error::{chain, Error};
#[cfg(feature = "iceoryx2")]
use crate::iox;
use crate::measure::{self, per_op, PeerReport};
use crate::placement::Placement;
use crate::procs::{Names, Peer};
use crate::report::{Figures, Measured, Row};
use crate::strategy::{Counted, SpinWait};
use crate::{mq, roundtrip, throughput, Method, Test, FLOOR, MAILBOX, QUEUE, SLOTS};

/// What one round trip is, in errors.
const ROUND_TRIP: &str = "round trip";
/// What one received message is, in errors.
const MESSAGE: &str = "message";
/// Largest round trip the histogram holds (longer ones count as this).
const MAX_NS: u64 = 60_000_000_000;

/// The first word of the floor's 64-byte channel area.
pub fn floor_word(seg: &Segment) -> Result<&AtomicU32, Error> {
    let (_, info) = seg.find(FLOOR, ChannelKind::Semaphore).map_err(Error::shm("floor channel"))?;
    let offset = info.offset as usize;
    let region = seg.region();
    if !offset.is_multiple_of(CACHE_LINE) || offset + semaphore::AREA_SIZE > region.len() {
        let len = region.len();
        return Err(Error::Peer(format!("floor channel at offset {offset} is outside the {len}-byte mapping")));
    }
    // SAFETY: `offset` is 64-aligned and its 64-byte area lies inside the
    // mapping (checked just above, against the length this side mapped);
    // the mapping stays valid while `seg` is borrowed, which the returned
    // reference is tied to. Both processes touch the word only atomically.
    Ok(unsafe { &*region.as_ptr().add(offset).cast::<AtomicU32>() })
}

/// The payload floor's signal word and `size` payload bytes: slot 0's
/// `state` word and payload of the mailbox channel, used raw (neither side
/// runs the mailbox protocol on them).
pub fn payload_floor(seg: &Segment, size: usize) -> Result<(&AtomicU32, *mut u8), Error> {
    let (_, info) = seg.find(MAILBOX, ChannelKind::Mailbox).map_err(Error::shm("payload floor channel"))?;
    let word = info.offset as usize + mailbox::SLOTS + mailbox::SLOT_STATE;
    let payload = info.offset as usize + mailbox::SLOTS + mailbox::SLOT_PAYLOAD;
    let (end, area_end, len) = (payload + size, (info.offset + info.size) as usize, seg.region().len());
    if size == 0 || !word.is_multiple_of(CACHE_LINE) || end > area_end || end > len {
        return Err(Error::Peer(format!(
            "payload floor: {size} bytes at offset {payload} do not fit its channel (ends at {area_end}) \
             or the {len}-byte mapping"
        )));
    }
    let base = seg.region().as_ptr();
    // SAFETY: `word` is 64-aligned and `payload + size` lies inside the
    // channel's area and the mapping (both checked just above); the mapping
    // stays valid while `seg` is borrowed, which the results are tied to (the
    // pointer is used only inside that borrow, by the row's closures). Both
    // processes touch the word only atomically.
    Ok((unsafe { &*base.add(word).cast::<AtomicU32>() }, unsafe { base.add(payload) }))
}

/// The transfer floor's ring: the queue channel's area used raw (neither
/// side runs the queue protocol on it). `head` (the area's first word)
/// counts the messages written, `tail` (the second line's first word) those
/// read; message `i` lies where the queue would put it if every frame had
/// its size: frame `i % frames`, after the frame's 8-byte header.
pub struct RawRing<'a> {
    /// Messages written (wrapping), stored by the sender.
    pub head: &'a AtomicU32,
    /// Messages read (wrapping), stored by the receiver.
    pub tail: &'a AtomicU32,
    /// The first payload byte of frame 0.
    pub first: *mut u8,
    /// Bytes from one frame to the next.
    pub stride: usize,
    /// Frames in the ring (at least one).
    pub frames: u32,
}

/// The transfer floor's ring for `size`-byte messages in `seg`'s queue channel.
pub fn transfer_floor(seg: &Segment, size: usize) -> Result<RawRing<'_>, Error> {
    let (_, info) = seg.find(QUEUE, ChannelKind::Queue).map_err(Error::shm("transfer floor channel"))?;
    let (offset, area) = (info.offset as usize, info.size as usize);
    let capacity = area.saturating_sub(queue::RING);
    let stride = u32::try_from(size).map(queue::frame_size).unwrap_or(u32::MAX) as usize;
    let frames = capacity / stride.max(1);
    let len = seg.region().len();
    if size == 0 || frames == 0 || !offset.is_multiple_of(CACHE_LINE) || offset + area > len {
        return Err(Error::Peer(format!(
            "transfer floor: {size}-byte messages do not fit the {area}-byte queue area at offset {offset} \
             or the {len}-byte mapping"
        )));
    }
    let base = seg.region().as_ptr();
    // SAFETY: `offset` is 64-aligned and the whole area, its two control
    // lines and the ring, lies inside the mapping (checked just above); the
    // mapping stays valid while `seg` is borrowed, which the ring is tied to
    // (its pointer is used only inside that borrow, by the row's closures).
    // Both processes touch the two words only atomically; frame `frames - 1`
    // ends at `RING + frames * stride <= area`.
    unsafe {
        Ok(RawRing {
            head: &*base.add(offset).cast::<AtomicU32>(),
            tail: &*base.add(offset + CACHE_LINE).cast::<AtomicU32>(),
            first: base.add(offset + queue::RING + queue::FRAME_HEADER as usize),
            stride,
            frames: frames.min(u32::MAX as usize) as u32,
        })
    }
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
    /// CPUs the peer of a two-process row may run on (one when pinned).
    pub peer_cpus: Vec<usize>,
    /// Whether the two processes of a row share a CPU.
    pub shared_cpu: bool,
    /// Where the processes of every row run.
    pub placement: Placement,
    /// Timed calls per client in the many-clients rows.
    pub client_calls: u64,
    /// Untimed calls per client first.
    pub client_warmup: u64,
    /// How long a peer may live.
    pub peer_timeout: Duration,
    /// Names made so far, removed after each row.
    pub names: Names,
}

impl Ctx {
    /// The arguments that start a peer for one measurement.
    pub fn peer_args(test: Test, method: Method, size: usize, name: &str, warmup: u64, count: u64) -> Vec<String> {
        let test = test.to_possible_value().map(|v| v.get_name().to_string()).unwrap_or_default();
        let mut args: Vec<String> =
            ["peer", "--test", &test, "--method", method.id(), "--name", name].iter().map(|s| s.to_string()).collect();
        args.extend(["--size".into(), size.to_string(), "--warmup".into(), warmup.to_string()]);
        args.extend(["--count".into(), count.to_string()]);
        args
    }

    /// Starts a peer with `args` (from [`peer_args`](Self::peer_args) and
    /// more), handing it `fds` (the caller closes its copies afterwards),
    /// its affinity set to `cpus`, and told whether it shares its CPU.
    pub fn spawn_peer(
        &self,
        mut args: Vec<String>,
        fds: &[&OwnedFd],
        cpus: &[usize],
        shared: bool,
    ) -> Result<Peer, Error> {
        if !fds.is_empty() {
            let list: Vec<String> = fds.iter().map(|fd| fd.as_raw_fd().to_string()).collect();
            args.extend(["--fds".into(), list.join(",")]);
        }
        if !cpus.is_empty() {
            let list: Vec<String> = cpus.iter().map(|c| c.to_string()).collect();
            args.extend(["--cpus".into(), list.join(",")]);
        }
        if shared {
            args.push("--shared-cpu".into());
        }
        Peer::spawn(&self.exe, &args, fds, self.peer_timeout)
    }

    /// Starts the peer of a two-process row for `method`.
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
    ) -> Result<Peer, Error> {
        let args = Self::peer_args(test, method, size, name, warmup, count);
        self.spawn_peer(args, fds, &self.peer_cpus, self.shared_cpu)
    }

    /// Measures `op` as the client of `warmup` + `iters` round trips.
    fn round_trips(&self, op: impl FnMut(u64) -> Result<(), Error>) -> Result<(measure::Side, Histogram<u64>), Error> {
        let mut hist = Histogram::new_with_bounds(1, MAX_NS, 3).map_err(|e| Error::Usage(format!("histogram: {e}")))?;
        let side = measure::run(ROUND_TRIP, self.warmup, self.iters, per_op(&mut hist, self.warmup, op))?;
        Ok((side, hist))
    }

    fn round_trip(&mut self, method: Method, size: usize) -> Result<Measured, Error> {
        let (w, n) = (self.warmup, self.iters);
        let ((side, hist), peer) = match method {
            Method::AtomicFloor => {
                let name = self.names.segment();
                let layout = Layout::new().semaphore(FLOOR, 0).map_err(Error::shm("layout"))?;
                let seg = Segment::create(&name, &layout).map_err(Error::shm("create"))?;
                let word = floor_word(&seg)?;
                let peer = self.peer(Test::RoundTrip, method, size, &name, w, n, &[])?;
                (self.round_trips(roundtrip::floor_client(word, peer.pid()))?, peer)
            }
            Method::PayloadFloor => {
                let name = self.names.segment();
                let layout = Layout::new().mailbox(MAILBOX, 1, self.slot_size).map_err(Error::shm("layout"))?;
                let seg = Segment::create(&name, &layout).map_err(Error::shm("create"))?;
                let (word, payload) = payload_floor(&seg, size)?;
                let peer = self.peer(Test::RoundTrip, method, size, &name, w, n, &[])?;
                (self.round_trips(roundtrip::payload_floor_client(word, payload, size, peer.pid()))?, peer)
            }
            Method::MailboxSpin | Method::MailboxFutex | Method::MailboxSem => {
                let name = self.names.segment();
                let layout = Layout::new().mailbox(MAILBOX, SLOTS, self.slot_size).map_err(Error::shm("layout"))?;
                let seg = Segment::create(&name, &layout).map_err(Error::shm("create"))?;
                let peer = self.peer(Test::RoundTrip, method, size, &name, w, n, &[])?;
                let measured = match method {
                    Method::MailboxSpin => {
                        let c = seg.client(MAILBOX, SpinWait).map_err(Error::shm("client"))?;
                        self.round_trips(roundtrip::mailbox_client(&c, size))
                    }
                    Method::MailboxFutex => {
                        let c = seg.client(MAILBOX, Counted(FutexWait::new())).map_err(Error::shm("client"))?;
                        self.round_trips(roundtrip::mailbox_client(&c, size))
                    }
                    _ => {
                        let c = seg
                            .client(MAILBOX, Counted(NamedSemaphoreWait::new(&seg)))
                            .map_err(Error::shm("client"))?;
                        self.round_trips(roundtrip::mailbox_client(&c, size))
                    }
                }?;
                (measured, peer)
            }
            Method::DirectSpin | Method::DirectFutex => {
                let name = self.names.segment();
                let layout = Layout::new().direct(MAILBOX, SLOTS, self.slot_size).map_err(Error::shm("layout"))?;
                let seg = Segment::create(&name, &layout).map_err(Error::shm("create"))?;
                let peer = self.peer(Test::RoundTrip, method, size, &name, w, n, &[])?;
                let measured = if method == Method::DirectSpin {
                    let mut c = seg.direct_client(MAILBOX, SpinWait).map_err(Error::shm("client"))?;
                    self.round_trips(roundtrip::direct_client(&mut c, size))
                } else {
                    let mut c = seg.direct_client(MAILBOX, Counted(FutexWait::new())).map_err(Error::shm("client"))?;
                    self.round_trips(roundtrip::direct_client(&mut c, size))
                }?;
                (measured, peer)
            }
            Method::Pipe => {
                let (req_r, req_w) = pipe()?;
                let (resp_r, resp_w) = pipe()?;
                let peer = self.peer(Test::RoundTrip, method, size, "", w, n, &[&req_r, &resp_w])?;
                drop((req_r, resp_w));
                (self.round_trips(roundtrip::stream_client(File::from(req_w), File::from(resp_r), size))?, peer)
            }
            Method::UnixSocket => {
                let (mine, theirs) = socket_pair()?;
                let peer = self.peer(Test::RoundTrip, method, size, "", w, n, &[&theirs])?;
                drop(theirs);
                let s = UnixStream::from(mine);
                (self.round_trips(roundtrip::stream_client(&s, &s, size))?, peer)
            }
            Method::Mqueue => {
                let base = self.names.queue_pair();
                let create = |role: &str| {
                    mq::MessageQueue::create(&format!("{base}-{role}"), 1, size).map_err(|e| {
                        let limit = std::fs::read_to_string("/proc/sys/fs/mqueue/msgsize_max").unwrap_or_default();
                        match limit.trim().parse::<usize>() {
                            Ok(max) if e.kind() == std::io::ErrorKind::InvalidInput && size > max => {
                                Error::Unsupported(format!(
                                    "{size}-byte messages exceed /proc/sys/fs/mqueue/msgsize_max ({max})"
                                ))
                            }
                            _ => Error::os("creating a message queue")(e),
                        }
                    })
                };
                let (requests, responses) = (create("req")?, create("resp")?);
                let peer = self.peer(Test::RoundTrip, method, size, &base, w, n, &[])?;
                (self.round_trips(roundtrip::mq_client(&requests, &responses, peer.pid(), size))?, peer)
            }
            #[cfg(feature = "iceoryx2")]
            Method::Iceoryx2Rr => {
                let name = self.names.segment();
                let client = iox::RrClient::create(&name, size)?;
                let peer = self.peer(Test::RoundTrip, method, size, &name, w, n, &[])?;
                client.wait_for_server(peer.pid())?;
                (self.round_trips(client.round_trip(size, peer.pid()))?, peer)
            }
            #[cfg(feature = "iceoryx2")]
            Method::Iceoryx2Pubsub => {
                let name = self.names.segment();
                let topics = iox::Topics::new(&name, size, iox::Side::Create, Some(iox::PING), Some(iox::PONG))?;
                let peer = self.peer(Test::RoundTrip, method, size, &name, w, n, &[])?;
                topics.wait_for_subscriber(peer.pid())?;
                let ping = topics.ping(size, peer.pid())?;
                (self.round_trips(ping)?, peer)
            }
            other => return Err(Error::Usage(format!("{} has no round-trip test", other.id()))),
        };
        Ok(Measured { side, hist: Some(hist), peer: peer.finish()? })
    }

    /// Messages and warm-up of a throughput row of `size`-byte messages.
    pub fn throughput_counts(&self, size: usize) -> (u64, u64) {
        let by_bytes = self.iters.saturating_mul(20 << 10) / size as u64;
        let count = by_bytes.clamp(200, self.iters.saturating_mul(20).max(200));
        (count / 10, count)
    }

    /// Ring bytes of the shm queue for `size`-byte messages.
    pub fn ring_for(&self, size: usize) -> Result<u32, Error> {
        let ring = match self.ring {
            Some(r) => u32::try_from(r).map_err(|_| Error::Usage(format!("--ring {r} is larger than 1 GiB")))?,
            None => {
                let mut cap = 64u32 << 10;
                while (max_message(cap) as usize) < size && cap < 1 << 30 {
                    cap *= 2;
                }
                cap
            }
        };
        if (max_message(ring) as usize) < size {
            let max = max_message(ring);
            return Err(Error::Usage(format!("a {ring}-byte ring carries at most {max} bytes per message")));
        }
        Ok(ring)
    }

    fn throughput(&mut self, method: Method, size: usize) -> Result<Measured, Error> {
        let (w, n) = self.throughput_counts(size);
        let (side, peer) = match method {
            Method::Memcpy => {
                return Ok(Measured { side: throughput::memcpy(size, w, n), hist: None, peer: PeerReport::default() })
            }
            Method::TransferFloor => {
                let name = self.names.segment();
                let layout = Layout::new().queue(QUEUE, self.ring_for(size)?).map_err(Error::shm("layout"))?;
                let seg = Segment::create(&name, &layout).map_err(Error::shm("create"))?;
                let ring = transfer_floor(&seg, size)?;
                let peer = self.peer(Test::Throughput, method, size, &name, w, n, &[])?;
                (measure::run(MESSAGE, w, n, throughput::transfer_floor_receiver(&ring, size, peer.pid()))?, peer)
            }
            Method::QueueCopy | Method::QueueGrant => {
                let name = self.names.segment();
                let layout = Layout::new().queue(QUEUE, self.ring_for(size)?).map_err(Error::shm("layout"))?;
                let seg = Segment::create(&name, &layout).map_err(Error::shm("create"))?;
                let mut rx = seg.consumer(QUEUE, Counted(FutexWait::new())).map_err(Error::shm("consumer"))?;
                let peer = self.peer(Test::Throughput, method, size, &name, w, n, &[])?;
                let side = if method == Method::QueueCopy {
                    measure::run(MESSAGE, w, n, throughput::queue_copy_receiver(&mut rx, size))
                } else {
                    measure::run(MESSAGE, w, n, throughput::queue_grant_receiver(&mut rx, size))
                }?;
                (side, peer)
            }
            Method::Pipe => {
                let (r, wr) = pipe()?;
                // A bigger buffer than the 64 KiB default: fewer wake-ups for
                // large messages (best effort; 1 MiB is the usual limit).
                let _ = rustix::pipe::fcntl_setpipe_size(&wr, 1 << 20);
                let peer = self.peer(Test::Throughput, method, size, "", w, n, &[&wr])?;
                drop(wr);
                (measure::run(MESSAGE, w, n, throughput::stream_receiver(File::from(r), size))?, peer)
            }
            Method::UnixSocket => {
                let (mine, theirs) = socket_pair()?;
                let peer = self.peer(Test::Throughput, method, size, "", w, n, &[&theirs])?;
                drop(theirs);
                (measure::run(MESSAGE, w, n, throughput::stream_receiver(UnixStream::from(mine), size))?, peer)
            }
            #[cfg(feature = "iceoryx2")]
            Method::Iceoryx2Pubsub => {
                let name = self.names.segment();
                let topics = iox::Topics::new(&name, size, iox::Side::Create, Some(iox::PONG), Some(iox::PING))?;
                let peer = self.peer(Test::Throughput, method, size, &name, w, n, &[])?;
                topics.start_sender(peer.pid())?;
                let receive = topics.receiver(size, peer.pid())?;
                (measure::run(MESSAGE, w, n, receive)?, peer)
            }
            other => return Err(Error::Usage(format!("{} has no throughput test", other.id()))),
        };
        Ok(Measured { side, hist: None, peer: peer.finish()? })
    }
}

fn pipe() -> Result<(OwnedFd, OwnedFd), Error> {
    rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).map_err(|e| Error::os("pipe")(e.into()))
}

fn socket_pair() -> Result<(OwnedFd, OwnedFd), Error> {
    use rustix::net::{socketpair, AddressFamily, SocketFlags, SocketType};
    socketpair(AddressFamily::UNIX, SocketType::STREAM, SocketFlags::CLOEXEC, None)
        .map_err(|e| Error::os("socketpair")(e.into()))
}

/// Runs one row: `method` at `size`, both processes, then removes every
/// name the row made. Returns the row and whether it failed (a skipped row
/// has not).
pub fn row<F: Figures>(ctx: &mut Ctx, method: Method, size: usize) -> (Row<F>, bool) {
    let mut row = Row::new(method, size, F::plan(ctx, method, size));
    let result = match F::TEST {
        Test::RoundTrip => ctx.round_trip(method, size),
        Test::Throughput => ctx.throughput(method, size),
        other => Err(Error::Usage(format!("{other:?} is not a two-process table"))),
    };
    ctx.names.sweep();
    let failed = match result {
        Ok(measured) => {
            row.fill(&measured);
            false
        }
        Err(e) if e.is_unsupported() => {
            row.error = Some(format!("skipped: {}", chain(&e)));
            false
        }
        Err(e) => {
            row.error = Some(format!("failed: {}", chain(&e)));
            true
        }
    };
    (row, failed)
}
