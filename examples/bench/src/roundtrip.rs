//! Round trips: the measuring side (the orchestrator, as client) and the
//! serving side (the peer) of every method.
//!
//! Every server gets a request of `size` bytes, flips its first byte and
//! sends the same number of bytes back; every client checks the flip. The
//! shm mailbox does it in place in the slot, the others copy through the
//! kernel.

use std::io::{Read, Write};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use shm_core::mailbox::{Client, Server};
use shm_core::{AtomicU32, Wait};

use crate::alloc::Tally;
use crate::mq::MessageQueue;
use crate::procs::PeerReport;
use crate::strategy::{one_cpu, pid_exists, Counters};

/// The request's bytes; the response has the first one flipped.
pub const REQUEST_BYTE: u8 = 0xA5;
/// How long a message-queue side waits for one message before it checks
/// that its peer lives.
const MQ_SLICE: Duration = Duration::from_millis(100);
/// Largest round trip the histogram holds (longer ones count as this).
const MAX_NS: u64 = 60_000_000_000;

/// What the measuring side recorded.
pub struct Timing {
    /// Round-trip times in nanoseconds, one clock read apart.
    pub hist: Histogram<u64>,
    /// Heap allocations during the timed loop.
    pub allocs: Tally,
    /// Parks and wakes during the timed loop.
    pub counters: Counters,
}

/// Runs `op(i)` `warmup` times, then `iters` times under the clock.
pub fn timed(warmup: u64, iters: u64, mut op: impl FnMut(u64) -> Result<(), String>) -> Result<Timing, String> {
    let mut hist = Histogram::<u64>::new_with_bounds(1, MAX_NS, 3).map_err(|e| e.to_string())?;
    for i in 0..warmup {
        op(i).map_err(|e| format!("warm-up round trip {i}: {e}"))?;
    }
    let (mut allocs, counters) = (Tally::default(), Counters::now());
    for i in warmup..warmup + iters {
        let ns = allocs.track(|| {
            let t0 = Instant::now();
            op(i).map(|()| u64::try_from(t0.elapsed().as_nanos()).unwrap_or(u64::MAX))
        });
        hist.saturating_record(ns.map_err(|e| format!("round trip {i}: {e}"))?);
    }
    Ok(Timing { hist, allocs, counters: Counters::since(counters) })
}

/// Serves `warmup + count` requests with `op(i)`; counts allocations after
/// the warm-up.
pub fn served(warmup: u64, count: u64, mut op: impl FnMut(u64) -> Result<(), String>) -> Result<PeerReport, String> {
    for i in 0..warmup {
        op(i).map_err(|e| format!("serving warm-up request {i}: {e}"))?;
    }
    let (mut allocs, counters) = (Tally::default(), Counters::now());
    for i in warmup..warmup + count {
        allocs.track(|| op(i)).map_err(|e| format!("serving request {i}: {e}"))?;
    }
    Ok(PeerReport::new(allocs, Counters::since(counters)))
}

/// Receives one message, checking every [`MQ_SLICE`] that `peer` lives.
fn mq_receive(queue: &MessageQueue, buf: &mut [u8], peer: u32) -> Result<usize, String> {
    loop {
        match queue.receive(buf, MQ_SLICE) {
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut && pid_exists(peer) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => return Err(format!("peer {peer} died")),
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// Says "the peer closed its end" for an early end of stream.
fn io_error(op: &str, e: std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::UnexpectedEof => format!("{op}: the peer closed its end (did it die?)"),
        _ => format!("{op}: {e}"),
    }
}

fn check_response(resp: &[u8], n: usize, size: usize) -> Result<(), String> {
    if n != size || resp.first() != Some(&!REQUEST_BYTE) {
        return Err(format!("wrong response: {n} bytes, first {:?}", resp.first()));
    }
    Ok(())
}

/// Spins until `word` reads `want`; checks every 2^20 spins that `peer` lives.
fn spin_until(word: &AtomicU32, want: u32, peer: u32) -> Result<(), String> {
    let mut spins = 0u32;
    loop {
        // SYNC POINT: Acquire pairs with the peer's Release store of `want`.
        if word.load(Ordering::Acquire) == want {
            return Ok(());
        }
        spins = spins.wrapping_add(1);
        if spins.is_multiple_of(1 << 20) && !pid_exists(peer) {
            return Err(format!("peer {peer} died"));
        }
        if spins > 64 && one_cpu() {
            std::thread::yield_now();
        } else {
            std::hint::spin_loop();
        }
    }
}

/// The floor, client side: store an odd number, spin until the peer adds one.
pub fn floor_client(word: &AtomicU32, peer: u32, warmup: u64, iters: u64) -> Result<Timing, String> {
    timed(warmup, iters, |i| {
        let ask = (i as u32).wrapping_mul(2).wrapping_add(1);
        // SYNC POINT: Release pairs with the Acquire load in the peer's spin.
        word.store(ask, Ordering::Release);
        spin_until(word, ask.wrapping_add(1), peer)
    })
}

/// The floor, peer side: spin for the odd number, answer with the next.
pub fn floor_server(word: &AtomicU32, parent: u32, warmup: u64, count: u64) -> Result<PeerReport, String> {
    served(warmup, count, |i| {
        let ask = (i as u32).wrapping_mul(2).wrapping_add(1);
        spin_until(word, ask, parent)?;
        // SYNC POINT: Release pairs with the Acquire load in the client's spin.
        word.store(ask.wrapping_add(1), Ordering::Release);
        Ok(())
    })
}

/// The mailbox, client side: `call` copies the request in and the response out.
pub fn mailbox_client<W: Wait>(client: &Client<'_, W>, size: usize, warmup: u64, iters: u64) -> Result<Timing, String> {
    let request = vec![REQUEST_BYTE; size];
    let mut response = vec![0u8; size];
    timed(warmup, iters, |_| {
        let n = client.call(&request, &mut response).map_err(|e| e.to_string())?;
        check_response(&response, n, size)
    })
}

/// The mailbox, peer side: flip the first byte in place and respond.
pub fn mailbox_server<W: Wait>(server: &Server<'_, W>, warmup: u64, count: u64) -> Result<PeerReport, String> {
    served(warmup, count, |_| {
        let mut request = server.recv().map_err(|e| e.to_string())?;
        let len = request.len();
        if let Some(b) = request.buf_mut().first_mut() {
            *b = !*b;
        }
        request.respond(len).map_err(|e| e.to_string())
    })
}

/// A byte stream (pipe pair or socket), client side.
pub fn stream_client(
    mut tx: impl Write,
    mut rx: impl Read,
    size: usize,
    warmup: u64,
    iters: u64,
) -> Result<Timing, String> {
    let request = vec![REQUEST_BYTE; size];
    let mut response = vec![0u8; size];
    timed(warmup, iters, |_| {
        tx.write_all(&request).map_err(|e| io_error("write", e))?;
        rx.read_exact(&mut response).map_err(|e| io_error("read", e))?;
        check_response(&response, size, size)
    })
}

/// A byte stream, peer side.
pub fn stream_server(
    mut rx: impl Read,
    mut tx: impl Write,
    size: usize,
    warmup: u64,
    count: u64,
) -> Result<PeerReport, String> {
    let mut buf = vec![0u8; size];
    served(warmup, count, |_| {
        rx.read_exact(&mut buf).map_err(|e| io_error("read", e))?;
        buf[0] = !buf[0];
        tx.write_all(&buf).map_err(|e| io_error("write", e))
    })
}

/// Message queues (one each way), client side; `peer` is the server's pid.
pub fn mq_client(
    requests: &MessageQueue,
    responses: &MessageQueue,
    peer: u32,
    size: usize,
    warmup: u64,
    iters: u64,
) -> Result<Timing, String> {
    let request = vec![REQUEST_BYTE; size];
    let mut response = vec![0u8; size];
    timed(warmup, iters, |_| {
        requests.send(&request).map_err(|e| e.to_string())?;
        let n = mq_receive(responses, &mut response, peer)?;
        check_response(&response, n, size)
    })
}

/// Message queues, peer side; `parent` is the client's pid.
pub fn mq_server(
    requests: &MessageQueue,
    responses: &MessageQueue,
    parent: u32,
    size: usize,
    warmup: u64,
    count: u64,
) -> Result<PeerReport, String> {
    let mut buf = vec![0u8; size];
    served(warmup, count, |_| {
        let n = mq_receive(requests, &mut buf, parent)?;
        buf[0] = !buf[0];
        responses.send(&buf[..n]).map_err(|e| e.to_string())
    })
}
