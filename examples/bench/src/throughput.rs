//! One-way throughput: one operation of the receiving side (the
//! orchestrator, which keeps the clock) and of the sending side (the peer)
//! of every method, each a closure for [`crate::measure::run`]; and the
//! in-process `memcpy` ceiling, which has a loop of its own.
//!
//! Message `i` carries `i as u8` in its first byte, so the receiver notices
//! a lost or reordered message.

use std::hint::black_box;
use std::io::{Read, Write};
use std::mem::MaybeUninit;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use shm_core::queue::{Consumer, Producer};
use shm_core::Wait;

use crate::alloc::Tally;
use crate::error::Error;
use crate::measure::Side;
use crate::runs::RawRing;
use crate::strategy::spin_until_true;

/// How long one queue operation may wait.
const TIMEOUT: Duration = Duration::from_secs(30);

/// Checks message `i`: `size` bytes, the first `i as u8`.
pub(crate) fn check(msg: &[u8], size: usize, i: u64) -> Result<(), Error> {
    if msg.len() != size || msg.first() != Some(&(i as u8)) {
        return Err(Error::WrongData(format!(
            "wrong message: {} bytes, first {:?}, expected {size} bytes from {}",
            msg.len(),
            msg.first(),
            i as u8
        )));
    }
    Ok(())
}

/// Reads every byte of `msg` (the consumer "using" a message in place;
/// every zero-copy receiver does, so that no row skips the transfer).
pub(crate) fn consume(msg: &[u8]) -> u64 {
    let mut chunks = msg.chunks_exact(8);
    let mut sum = 0u64;
    for c in &mut chunks {
        sum = sum.wrapping_add(u64::from_ne_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]));
    }
    chunks.remainder().iter().fold(sum, |s, &b| s.wrapping_add(b as u64))
}

/// The shm queue, copying: `recv_timeout` copies each message out.
pub fn queue_copy_receiver<'a, 's, W: Wait>(
    rx: &'a mut Consumer<'s, W>,
    size: usize,
) -> impl FnMut(u64) -> Result<(), Error> + use<'a, 's, W> {
    let mut buf = vec![0u8; size];
    move |i| {
        let n = rx.recv_timeout(&mut buf, TIMEOUT).map_err(Error::shm("receive"))?;
        check(&buf[..n], size, i)
    }
}

/// The shm queue, copying: `send_timeout` copies each message in.
pub fn queue_copy_sender<'a, 's, W: Wait>(
    tx: &'a mut Producer<'s, W>,
    size: usize,
) -> impl FnMut(u64) -> Result<(), Error> + use<'a, 's, W> {
    let mut msg = vec![0u8; size];
    move |i| {
        msg[0] = i as u8;
        tx.send_timeout(&msg, TIMEOUT).map_err(Error::shm("send"))
    }
}

/// The shm queue, zero-copy: read every byte in place, then release.
pub fn queue_grant_receiver<'a, 's, W: Wait>(
    rx: &'a mut Consumer<'s, W>,
    size: usize,
) -> impl FnMut(u64) -> Result<(), Error> + use<'a, 's, W> {
    move |i| {
        let msg = rx.read_timeout(TIMEOUT).map_err(Error::shm("read"))?;
        check(&msg, size, i)?;
        black_box(consume(&msg));
        msg.release();
        Ok(())
    }
}

/// The shm queue, zero-copy: write the message in place in the grant.
pub fn queue_grant_sender<'a, 's, W: Wait>(
    tx: &'a mut Producer<'s, W>,
    size: usize,
) -> impl FnMut(u64) -> Result<(), Error> + use<'a, 's, W> {
    move |i| {
        let mut grant = tx.grant_timeout(size, TIMEOUT).map_err(Error::shm("grant"))?;
        produce(&mut grant, i);
        grant.commit();
        Ok(())
    }
}

/// Writes message `i` in place, a word at a time, as an application that
/// computes its message would (the consumer's [`consume`] reads it the
/// same way): word `k` is `i`'s low byte and `k` above it, so the first
/// byte is what [`check`] wants. Not `fill`: a constant fill compiles to
/// `memset`, which glibc does with `rep stosb` above 2 KiB, and on the
/// Xeon VM of 2026-12-02 the consumer then read 1 MiB messages at 0.34–0.42x
/// one-process `memcpy` against 0.54–0.64x written this way (`memcpy` from a
/// local buffer, `rep movsb`, also 0.38–0.41x).
fn produce(msg: &mut [u8], i: u64) {
    // SAFETY: `MaybeUninit<u8>` has `u8`'s layout, and `produce_uninit`
    // writes only initialized bytes, so `msg` stays initialized.
    produce_uninit(unsafe { &mut *(msg as *mut [u8] as *mut [MaybeUninit<u8>]) }, i);
}

/// [`produce`] into bytes not yet initialized (a loaned sample of another
/// library); every byte is written.
pub(crate) fn produce_uninit(msg: &mut [MaybeUninit<u8>], i: u64) {
    let mut words = msg.chunks_exact_mut(8);
    for (k, word) in (&mut words).enumerate() {
        // One 8-byte store (a byte loop here compiled to byte stores).
        word.copy_from_slice(&((i & 0xff) | (k as u64) << 8).to_le_bytes().map(MaybeUninit::new));
    }
    for b in words.into_remainder() {
        b.write(i as u8);
    }
}

/// The transfer floor, receiving side: wait until message `i` is written,
/// check it and read every byte in place (as the zero-copy row does), hand
/// its frame back.
pub fn transfer_floor_receiver<'a>(
    ring: &'a RawRing<'a>,
    size: usize,
    peer: u32,
) -> impl FnMut(u64) -> Result<(), Error> + 'a {
    move |i| {
        let next = (i as u32).wrapping_add(1);
        // SYNC POINT: Acquire pairs with the sender's Release store of
        // `head`: the message's bytes are visible once `head` reaches `next`.
        spin_until_true(peer, || ring.head.load(Ordering::Acquire).wrapping_sub(next) as i32 >= 0)?;
        let at = (i % u64::from(ring.frames)) as usize * ring.stride;
        // SAFETY: frame `i % frames` lies in the ring (`runs::transfer_floor`
        // checked `frames` frames of `stride >= size` bytes against the
        // mapping), and it is ours: the sender writes it again only after
        // `tail` passes `i`, which we store below, after the last read.
        let msg = unsafe { std::slice::from_raw_parts(ring.first.add(at), size) };
        check(msg, size, i)?;
        black_box(consume(msg));
        // SYNC POINT: Release pairs with the sender's Acquire load of
        // `tail`: our reads of the frame happen before it is rewritten.
        ring.tail.store(next, Ordering::Release);
        Ok(())
    }
}

/// The transfer floor, sending side: wait for a free frame, write message
/// `i` in it word by word (as the zero-copy row does), publish it.
pub fn transfer_floor_sender<'a>(
    ring: &'a RawRing<'a>,
    size: usize,
    peer: u32,
) -> impl FnMut(u64) -> Result<(), Error> + 'a {
    move |i| {
        let index = i as u32;
        // SYNC POINT: Acquire pairs with the receiver's Release store of
        // `tail`: its reads of the frame we reuse are done.
        spin_until_true(peer, || index.wrapping_sub(ring.tail.load(Ordering::Acquire)) < ring.frames)?;
        let at = (i % u64::from(ring.frames)) as usize * ring.stride;
        // SAFETY: frame `i % frames` lies in the ring (checked by
        // `runs::transfer_floor`), and it is ours: the receiver read its last
        // message (`tail` passed it, Acquire above) and reads it again only
        // after the `head` store below.
        let msg = unsafe { std::slice::from_raw_parts_mut(ring.first.add(at), size) };
        produce(msg, i);
        // SYNC POINT: Release pairs with the receiver's Acquire load of
        // `head`: the message's bytes are visible before it sees `i + 1`.
        ring.head.store(index.wrapping_add(1), Ordering::Release);
        Ok(())
    }
}

/// A byte stream (pipe or socket), receiving side.
pub fn stream_receiver(mut rx: impl Read, size: usize) -> impl FnMut(u64) -> Result<(), Error> {
    let mut buf = vec![0u8; size];
    move |i| {
        rx.read_exact(&mut buf).map_err(Error::stream("read"))?;
        check(&buf, size, i)
    }
}

/// A byte stream, sending side.
pub fn stream_sender(mut tx: impl Write, size: usize) -> impl FnMut(u64) -> Result<(), Error> {
    let mut msg = vec![0u8; size];
    move |i| {
        msg[0] = i as u8;
        tx.write_all(&msg).map_err(Error::stream("write"))
    }
}

/// The ceiling: one thread copying `size` bytes `count` times (after a
/// warm-up) between two buffers of its own.
pub fn memcpy(size: usize, warmup: u64, count: u64) -> Side {
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
    Side { elapsed, allocs, counters: Default::default() }
}
