//! One-way throughput: the receiving side (the orchestrator, which keeps
//! the clock), the sending side (the peer), and the in-process `memcpy`
//! ceiling.
//!
//! Message `i` carries `i as u8` in its first byte, so the receiver notices
//! a lost or reordered message.

use std::hint::black_box;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

use shm_core::queue::{Consumer, Producer};
use shm_core::Wait;

use crate::alloc::Tally;
use crate::procs::PeerReport;
use crate::strategy::Counters;

/// How long one queue operation may wait.
const TIMEOUT: Duration = Duration::from_secs(30);

/// What the receiving side measured.
pub struct Rate {
    /// Time from the end of the warm-up to the last message.
    pub elapsed: Duration,
    /// Heap allocations during the timed messages.
    pub allocs: Tally,
    /// Parks and wakes during the timed messages.
    pub counters: Counters,
}

/// Receives `warmup` messages with `op(i)`, then `count` under the clock.
pub fn received(warmup: u64, count: u64, mut op: impl FnMut(u64) -> Result<(), String>) -> Result<Rate, String> {
    for i in 0..warmup {
        op(i).map_err(|e| format!("warm-up message {i}: {e}"))?;
    }
    let (mut allocs, counters) = (Tally::default(), Counters::now());
    let t0 = Instant::now();
    for i in warmup..warmup + count {
        allocs.track(|| op(i)).map_err(|e| format!("message {i}: {e}"))?;
    }
    let elapsed = t0.elapsed();
    Ok(Rate { elapsed, allocs, counters: Counters::since(counters) })
}

/// Sends `warmup + count` messages with `op(i)`; counts allocations after
/// the warm-up.
pub fn sent(warmup: u64, count: u64, mut op: impl FnMut(u64) -> Result<(), String>) -> Result<PeerReport, String> {
    for i in 0..warmup {
        op(i).map_err(|e| format!("sending warm-up message {i}: {e}"))?;
    }
    let (mut allocs, counters) = (Tally::default(), Counters::now());
    for i in warmup..warmup + count {
        allocs.track(|| op(i)).map_err(|e| format!("sending message {i}: {e}"))?;
    }
    Ok(PeerReport::new(allocs, Counters::since(counters)))
}

fn check(msg: &[u8], size: usize, i: u64) -> Result<(), String> {
    if msg.len() != size || msg.first() != Some(&(i as u8)) {
        return Err(format!(
            "wrong message: {} bytes, first {:?}, expected {size} bytes from {}",
            msg.len(),
            msg.first(),
            i as u8
        ));
    }
    Ok(())
}

/// Reads every byte of `msg` (the consumer "using" a message in place).
fn consume(msg: &[u8]) -> u64 {
    let mut chunks = msg.chunks_exact(8);
    let mut sum = 0u64;
    for c in &mut chunks {
        sum = sum.wrapping_add(u64::from_ne_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]));
    }
    chunks.remainder().iter().fold(sum, |s, &b| s.wrapping_add(b as u64))
}

/// The shm queue, copying: `recv_timeout` copies each message out.
pub fn queue_copy_receiver<W: Wait>(
    rx: &mut Consumer<'_, W>,
    size: usize,
    warmup: u64,
    count: u64,
) -> Result<Rate, String> {
    let mut buf = vec![0u8; size];
    received(warmup, count, |i| {
        let n = rx.recv_timeout(&mut buf, TIMEOUT).map_err(|e| e.to_string())?;
        check(&buf[..n], size, i)
    })
}

/// The shm queue, copying: `send_timeout` copies each message in.
pub fn queue_copy_sender<W: Wait>(
    tx: &mut Producer<'_, W>,
    size: usize,
    warmup: u64,
    count: u64,
) -> Result<PeerReport, String> {
    let mut msg = vec![0u8; size];
    sent(warmup, count, |i| {
        msg[0] = i as u8;
        tx.send_timeout(&msg, TIMEOUT).map_err(|e| e.to_string())
    })
}

/// The shm queue, zero-copy: read every byte in place, then release.
pub fn queue_grant_receiver<W: Wait>(
    rx: &mut Consumer<'_, W>,
    size: usize,
    warmup: u64,
    count: u64,
) -> Result<Rate, String> {
    received(warmup, count, |i| {
        let msg = rx.read_timeout(TIMEOUT).map_err(|e| e.to_string())?;
        check(&msg, size, i)?;
        black_box(consume(&msg));
        msg.release();
        Ok(())
    })
}

/// The shm queue, zero-copy: write the message in place in the grant.
pub fn queue_grant_sender<W: Wait>(
    tx: &mut Producer<'_, W>,
    size: usize,
    warmup: u64,
    count: u64,
) -> Result<PeerReport, String> {
    sent(warmup, count, |i| {
        let mut grant = tx.grant_timeout(size, TIMEOUT).map_err(|e| e.to_string())?;
        grant.fill(i as u8);
        grant.commit();
        Ok(())
    })
}

/// A byte stream (pipe or socket), receiving side.
pub fn stream_receiver(mut rx: impl Read, size: usize, warmup: u64, count: u64) -> Result<Rate, String> {
    let mut buf = vec![0u8; size];
    received(warmup, count, |i| {
        rx.read_exact(&mut buf).map_err(|e| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => "read: the peer closed its end (did it die?)".to_string(),
            _ => format!("read: {e}"),
        })?;
        check(&buf, size, i)
    })
}

/// A byte stream, sending side.
pub fn stream_sender(mut tx: impl Write, size: usize, warmup: u64, count: u64) -> Result<PeerReport, String> {
    let mut msg = vec![0u8; size];
    sent(warmup, count, |i| {
        msg[0] = i as u8;
        tx.write_all(&msg).map_err(|e| format!("write: {e}"))
    })
}

/// The ceiling: one thread copying `size` bytes `count` times (after a
/// warm-up) between two buffers of its own.
pub fn memcpy(size: usize, warmup: u64, count: u64) -> Rate {
    let src = vec![1u8; size];
    let mut dst = vec![0u8; size];
    for _ in 0..warmup {
        dst.copy_from_slice(black_box(&src));
        black_box(&mut dst);
    }
    let allocs = crate::alloc::count();
    let t0 = Instant::now();
    for _ in 0..count {
        dst.copy_from_slice(black_box(&src));
        black_box(&mut dst);
    }
    let elapsed = t0.elapsed();
    let allocs = Tally { hot: crate::alloc::count() - allocs, slow: 0 };
    Rate { elapsed, allocs, counters: Counters::default() }
}
