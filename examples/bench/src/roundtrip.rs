//! Round trips: one operation of the measuring side (the orchestrator, as
//! client) and of the serving side (the peer) of every method, each a
//! closure for [`crate::measure::run`].
//!
//! Every server gets a request of `size` bytes, flips its first byte and
//! sends the same number of bytes back; every client checks the flip. The
//! shm mailbox does it in place in the slot, the others copy through the
//! kernel.

use std::io::{Read, Write};
use std::sync::atomic::Ordering;
use std::time::Duration;

use shm_core::direct::{Client as DirectClient, Server as DirectServer};
use shm_core::mailbox::{Client, Server};
use shm_core::{AtomicU32, Wait};

use crate::error::Error;
use crate::mq::MessageQueue;
use crate::strategy::{pid_exists, spin_until_true};

/// The request's bytes; the response has the first one flipped.
pub const REQUEST_BYTE: u8 = 0xA5;
/// How long a message-queue side waits for one message before it checks
/// that its peer lives.
const MQ_SLICE: Duration = Duration::from_millis(100);

/// Receives one message, checking every [`MQ_SLICE`] that `peer` lives.
fn mq_receive(queue: &MessageQueue, buf: &mut [u8], peer: u32) -> Result<usize, Error> {
    loop {
        match queue.receive(buf, MQ_SLICE) {
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut && pid_exists(peer) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => return Err(Error::Peer(format!("peer {peer} died"))),
            Err(e) => return Err(Error::os("receive")(e)),
        }
    }
}

/// Checks a response: `n` bytes, `size` expected, the first one flipped.
pub(crate) fn check_response(resp: &[u8], n: usize, size: usize) -> Result<(), Error> {
    if n != size || resp.first() != Some(&!REQUEST_BYTE) {
        return Err(Error::WrongData(format!("wrong response: {n} bytes, first {:?}", resp.first())));
    }
    Ok(())
}

/// Spins until `word` reads `want`; checks every 2^20 spins that `peer` lives.
fn spin_until(word: &AtomicU32, want: u32, peer: u32) -> Result<(), Error> {
    spin_fetching(word, want, peer, None)
}

/// Starts fetching the cache line at `p` (x86-64; a hint, never a fault).
#[inline(always)]
fn prefetch(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: SSE is part of x86-64's baseline; a prefetch only hints the
    // cache and never faults, whatever the address.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast())
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// [`spin_until`], asking for the line at `payload` (if any) at every
/// look, the one that sees `want` included: the payload floor's two lines
/// then travel together, as the direct mailbox's do.
#[inline(always)]
fn spin_fetching(word: &AtomicU32, want: u32, peer: u32, payload: Option<*const u8>) -> Result<(), Error> {
    spin_until_true(peer, || {
        if let Some(p) = payload {
            prefetch(p);
        }
        // SYNC POINT: Acquire pairs with the peer's Release store of `want`.
        word.load(Ordering::Acquire) == want
    })
}

/// The floor, client side: store an odd number, spin until the peer adds one.
pub fn floor_client(word: &AtomicU32, peer: u32) -> impl FnMut(u64) -> Result<(), Error> + '_ {
    move |i| {
        let ask = (i as u32).wrapping_mul(2).wrapping_add(1);
        // SYNC POINT: Release pairs with the Acquire load in the peer's spin.
        word.store(ask, Ordering::Release);
        spin_until(word, ask.wrapping_add(1), peer)
    }
}

/// The floor, peer side: spin for the odd number, answer with the next.
pub fn floor_server(word: &AtomicU32, parent: u32) -> impl FnMut(u64) -> Result<(), Error> + '_ {
    move |i| {
        let ask = (i as u32).wrapping_mul(2).wrapping_add(1);
        spin_until(word, ask, parent)?;
        // SYNC POINT: Release pairs with the Acquire load in the client's spin.
        word.store(ask.wrapping_add(1), Ordering::Release);
        Ok(())
    }
}

/// The payload floor, client side: copy the request into the `size` bytes at
/// `payload`, store an odd number, spin until the peer adds one (asking for
/// the payload's first line at every look, as the direct mailbox does), copy
/// the response out and check it.
///
/// `payload` points at `size` bytes of the shared mapping that only this
/// row's two sides touch, handed back and forth by `word`.
pub fn payload_floor_client(
    word: &AtomicU32,
    payload: *mut u8,
    size: usize,
    peer: u32,
) -> impl FnMut(u64) -> Result<(), Error> + '_ {
    let request = vec![REQUEST_BYTE; size];
    let mut response = vec![0u8; size];
    move |i| {
        let ask = (i as u32).wrapping_mul(2).wrapping_add(1);
        // SAFETY: `payload..payload + size` lies in the mapping (checked by
        // `runs::payload_floor`), and the bytes are ours: the peer touches
        // them only between seeing `ask` and storing `ask + 1`.
        unsafe { std::ptr::copy_nonoverlapping(request.as_ptr(), payload, size) };
        // SYNC POINT: Release pairs with the Acquire load in the peer's
        // spin: the request bytes are visible before `ask`.
        word.store(ask, Ordering::Release);
        spin_fetching(word, ask.wrapping_add(1), peer, Some(payload))?;
        // SAFETY: as above; the peer stored `ask + 1` (Acquire in
        // `spin_fetching`) after its last write of the bytes.
        unsafe { std::ptr::copy_nonoverlapping(payload, response.as_mut_ptr(), size) };
        check_response(&response, size, size)
    }
}

/// The payload floor, peer side: spin for the odd number (asking for the
/// payload's first line at every look), flip the first payload byte in
/// place (as the mailbox's peer does), answer with the next.
pub fn payload_floor_server(
    word: &AtomicU32,
    payload: *mut u8,
    parent: u32,
) -> impl FnMut(u64) -> Result<(), Error> + '_ {
    move |i| {
        let ask = (i as u32).wrapping_mul(2).wrapping_add(1);
        spin_fetching(word, ask, parent, Some(payload))?;
        // SAFETY: `payload` holds at least one byte (`runs::payload_floor`
        // checked `size >= 1` bytes), ours from seeing
        // `ask` (Acquire in `spin_fetching`) until we store `ask + 1`.
        unsafe { *payload = !*payload };
        // SYNC POINT: Release pairs with the Acquire load in the client's
        // spin: the flipped byte is visible before `ask + 1`.
        word.store(ask.wrapping_add(1), Ordering::Release);
        Ok(())
    }
}

/// The mailbox, client side: `call` copies the request in and the response out.
pub fn mailbox_client<'a, 's, W: Wait>(
    client: &'a Client<'s, W>,
    size: usize,
) -> impl FnMut(u64) -> Result<(), Error> + use<'a, 's, W> {
    let request = vec![REQUEST_BYTE; size];
    let mut response = vec![0u8; size];
    move |_| {
        let n = client.call(&request, &mut response).map_err(Error::shm("call"))?;
        check_response(&response, n, size)
    }
}

/// The mailbox, peer side: flip the first byte in place and respond.
pub fn mailbox_server<'a, 's, W: Wait>(
    server: &'a Server<'s, W>,
) -> impl FnMut(u64) -> Result<(), Error> + use<'a, 's, W> {
    move |_| {
        let mut request = server.recv().map_err(Error::shm("receive"))?;
        let len = request.len();
        if let Some(b) = request.buf_mut().first_mut() {
            *b = !*b;
        }
        request.respond(len).map_err(Error::shm("respond"))
    }
}

/// The direct mailbox, client side: `call` copies the request in and the
/// response out.
pub fn direct_client<'a, 's, W: Wait>(
    client: &'a mut DirectClient<'s, W>,
    size: usize,
) -> impl FnMut(u64) -> Result<(), Error> + use<'a, 's, W> {
    let request = vec![REQUEST_BYTE; size];
    let mut response = vec![0u8; size];
    move |_| {
        let n = client.call(&request, &mut response).map_err(Error::shm("call"))?;
        check_response(&response, n, size)
    }
}

/// The direct mailbox, server side: flip the first byte in place.
pub fn direct_server<'a, 's, W: Wait>(
    server: &'a mut DirectServer<'s, W>,
) -> impl FnMut(u64) -> Result<(), Error> + use<'a, 's, W> {
    move |_| {
        let mut request = server.recv().map_err(Error::shm("receive"))?;
        let len = request.len();
        if let Some(b) = request.buf_mut().first_mut() {
            *b = !*b;
        }
        request.respond(len).map_err(Error::shm("respond"))
    }
}

/// A byte stream (pipe pair or socket), client side.
pub fn stream_client(mut tx: impl Write, mut rx: impl Read, size: usize) -> impl FnMut(u64) -> Result<(), Error> {
    let request = vec![REQUEST_BYTE; size];
    let mut response = vec![0u8; size];
    move |_| {
        tx.write_all(&request).map_err(Error::stream("write"))?;
        rx.read_exact(&mut response).map_err(Error::stream("read"))?;
        check_response(&response, size, size)
    }
}

/// A byte stream, peer side.
pub fn stream_server(mut rx: impl Read, mut tx: impl Write, size: usize) -> impl FnMut(u64) -> Result<(), Error> {
    let mut buf = vec![0u8; size];
    move |_| {
        rx.read_exact(&mut buf).map_err(Error::stream("read"))?;
        buf[0] = !buf[0];
        tx.write_all(&buf).map_err(Error::stream("write"))
    }
}

/// Message queues (one each way), client side; `peer` is the server's pid.
pub fn mq_client<'a>(
    requests: &'a MessageQueue,
    responses: &'a MessageQueue,
    peer: u32,
    size: usize,
) -> impl FnMut(u64) -> Result<(), Error> + 'a {
    let request = vec![REQUEST_BYTE; size];
    let mut response = vec![0u8; size];
    move |_| {
        requests.send(&request).map_err(Error::os("send"))?;
        let n = mq_receive(responses, &mut response, peer)?;
        check_response(&response, n, size)
    }
}

/// Message queues, peer side; `parent` is the client's pid.
pub fn mq_server<'a>(
    requests: &'a MessageQueue,
    responses: &'a MessageQueue,
    parent: u32,
    size: usize,
) -> impl FnMut(u64) -> Result<(), Error> + 'a {
    let mut buf = vec![0u8; size];
    move |_| {
        let n = mq_receive(requests, &mut buf, parent)?;
        buf[0] = !buf[0];
        responses.send(&buf[..n]).map_err(Error::os("send"))
    }
}
