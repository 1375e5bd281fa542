//! The conformance suite: checks every backend of the semaphore and the
//! channels runs the same behaviour. Used by this crate's tests on mock
//! memory and by shm-posix across real processes (feature `mock`).
//!
//! The queue and mailbox halves take a `count` and a `seed` so the two sides
//! can run in different processes and still agree on every byte.

use core::time::Duration;
use std::format;
use std::string::String;

use crate::error::{CallError, ErrorKind, RecvError};
use crate::queue::{Consumer, Producer};
use crate::semaphore::Semaphore;
use crate::HasErrorKind;
use crate::Wait;

#[cfg(shm_cas)]
use crate::mailbox::{Client, Server};

/// Generous per-message budget: a deadline for a hang, not a speed check.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(20);

/// Basic counting rules on a semaphore whose count starts at zero.
pub fn semaphore_basics<S: Semaphore>(sem: &S) {
    assert!(!sem.try_wait().expect("try_wait on a zero count"), "count should start at zero");
    sem.post().expect("post");
    assert!(sem.try_wait().expect("try_wait after post"), "post should make one unit available");
    assert!(!sem.try_wait().expect("try_wait"), "the unit was taken once");
    let err = sem.wait_timeout(Duration::from_millis(5)).expect_err("wait on zero must time out");
    assert_eq!(err.kind(), ErrorKind::Timeout, "timeout reported as {err}");
    for _ in 0..3 {
        sem.post().expect("post");
    }
    for _ in 0..3 {
        sem.wait_timeout(STEP_TIMEOUT).expect("three posts give three units");
    }
    assert!(!sem.try_wait().expect("try_wait"), "no unit left after three waits");
}

/// Units posted by one thread are each taken exactly once by another.
pub fn semaphore_threads<S: Semaphore + Sync>(poster: &S, taker: &S) {
    let n = if cfg!(miri) { 50 } else { 20_000 };
    std::thread::scope(|s| {
        s.spawn(|| {
            for _ in 0..n {
                poster.post().expect("post");
            }
        });
        for _ in 0..n {
            taker.wait_timeout(STEP_TIMEOUT).expect("every post is taken");
        }
    });
    assert!(!taker.try_wait().expect("try_wait"), "no unit taken twice or invented");
}

/// Message `i` of a seeded sequence: its length and its bytes.
pub fn message(seed: u64, i: u64, max: usize, buf: &mut [u8]) -> usize {
    let mut x = seed ^ i.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x5851_f42d_4c95_7f2d;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let len = (next() % (max as u64 + 1)) as usize;
    for chunk in buf[..len].chunks_mut(8) {
        let bytes = next().to_le_bytes();
        chunk.copy_from_slice(&bytes[..chunk.len()]);
    }
    // The first 8 bytes carry the index where they fit, so reordering shows.
    let tag = i.to_le_bytes();
    let k = len.min(8);
    buf[..k].copy_from_slice(&tag[..k]);
    len
}

/// Sends `count` seeded messages, alternating copying and zero-copy sends.
pub fn queue_send<W: Wait>(tx: &mut Producer<'_, W>, count: u64, seed: u64) {
    let max = tx.max_message().min(1024);
    let mut buf = std::vec![0u8; max];
    for i in 0..count {
        let len = message(seed, i, max, &mut buf);
        if i % 2 == 0 {
            tx.send_timeout(&buf[..len], STEP_TIMEOUT).unwrap_or_else(|e| panic!("send {i}: {e}"));
        } else {
            let mut g = tx.grant_timeout(len, STEP_TIMEOUT).unwrap_or_else(|e| panic!("grant {i}: {e}"));
            g.copy_from_slice(&buf[..len]);
            g.commit();
        }
    }
}

/// Receives `count` messages and checks each against the seeded sequence:
/// nothing lost, duplicated, reordered or altered. Returns an error naming
/// the first difference.
pub fn queue_receive<W: Wait>(rx: &mut Consumer<'_, W>, count: u64, seed: u64, max: usize) -> Result<(), String> {
    let max = max.min(1024);
    let mut want = std::vec![0u8; max];
    let mut got = std::vec![0u8; max];
    for i in 0..count {
        let len = message(seed, i, max, &mut want);
        let n = if i % 3 == 0 {
            rx.recv_timeout(&mut got, STEP_TIMEOUT).map_err(|e| format!("message {i}: {e}"))?
        } else {
            let m = rx.read_timeout(STEP_TIMEOUT).map_err(|e| format!("message {i}: {e}"))?;
            let n = m.len().min(max);
            got[..n].copy_from_slice(&m[..n]);
            m.len()
        };
        if n != len || got[..n] != want[..len] {
            return Err(format!(
                "message {i}: got {n} bytes, expected {len}, contents differ: {}",
                got[..n] != want[..n.min(len)]
            ));
        }
    }
    match rx.try_read() {
        // Empty, or closed by a producer that is done (a clean close).
        Err(RecvError::Empty | RecvError::Closed) => Ok(()),
        Ok(m) => Err(format!("an extra message of {} bytes after {count}", m.len())),
        Err(e) => Err(format!("after {count} messages: {e}")),
    }
}

/// The server's transformation: upper-case the request, then append the
/// 8-byte little-endian sequence number where it fits.
pub fn transform(request: &[u8], seq: u64, out: &mut [u8]) -> usize {
    let n = request.len();
    out[..n].copy_from_slice(request);
    out[..n].make_ascii_uppercase();
    let tag = seq.to_le_bytes();
    let k = (out.len() - n).min(8);
    out[n..n + k].copy_from_slice(&tag[..k]);
    n + k
}

/// Serves `count` requests with [`transform`] (in place), numbering them
/// from 0.
#[cfg(shm_cas)]
pub fn mailbox_serve<W: Wait>(server: &Server<'_, W>, count: u64) {
    let mut scratch = std::vec![0u8; server.slot_size()];
    for seq in 0..count {
        let mut req = server.recv_timeout(STEP_TIMEOUT).unwrap_or_else(|e| panic!("request {seq}: {e}"));
        let len = req.len();
        let n = transform(&req.data()[..len], seq, &mut scratch);
        req.buf_mut()[..n].copy_from_slice(&scratch[..n]);
        req.respond(n).unwrap_or_else(|e| panic!("respond {seq}: {e}"));
    }
}

/// Makes `count` calls with seeded requests and checks each response is the
/// request upper-cased; returns the sequence numbers the server stamped.
#[cfg(shm_cas)]
pub fn mailbox_call<W: Wait>(client: &Client<'_, W>, count: u64, seed: u64) -> Result<std::vec::Vec<u64>, CallError> {
    seeded_calls(client.slot_size(), count, seed, |req, resp| client.call_timeout(req, resp, STEP_TIMEOUT))
}

/// Makes `count` calls through `call` with seeded requests of at most
/// `slot_size - 8` bytes and checks each response is the request
/// upper-cased; returns the sequence numbers the server stamped.
#[cfg(shm_cas)]
fn seeded_calls(
    slot_size: usize,
    count: u64,
    seed: u64,
    mut call: impl FnMut(&[u8], &mut [u8]) -> Result<usize, CallError>,
) -> Result<std::vec::Vec<u64>, CallError> {
    let max = slot_size.saturating_sub(8).min(512);
    let mut req = std::vec![0u8; max];
    let mut resp = std::vec![0u8; slot_size];
    let mut seqs = std::vec::Vec::with_capacity(count as usize);
    for i in 0..count {
        let len = message(seed, i, max, &mut req);
        let n = call(&req[..len], &mut resp)?;
        assert!(n >= len && n <= len + 8, "call {i}: response of {n} bytes for a request of {len}");
        let mut upper = req[..len].to_vec();
        upper.make_ascii_uppercase();
        assert_eq!(&resp[..len], &upper[..], "call {i}: response is not the request upper-cased");
        let mut tag = [0u8; 8];
        tag[..n - len].copy_from_slice(&resp[len..n]);
        seqs.push(u64::from_le_bytes(tag));
    }
    Ok(seqs)
}

/// [`mailbox_serve`] on a direct mailbox: serves `count` requests with
/// [`transform`], numbering them from 0.
#[cfg(shm_cas)]
pub fn direct_serve<W: Wait>(server: &mut crate::direct::Server<'_, W>, count: u64) {
    let mut scratch = std::vec![0u8; server.slot_size()];
    for seq in 0..count {
        let mut req = server.recv_timeout(STEP_TIMEOUT).unwrap_or_else(|e| panic!("request {seq}: {e}"));
        let len = req.len();
        let n = transform(&req.data()[..len], seq, &mut scratch);
        req.buf_mut()[..n].copy_from_slice(&scratch[..n]);
        req.respond(n).unwrap_or_else(|e| panic!("respond {seq}: {e}"));
    }
}

/// [`mailbox_call`] on a direct mailbox client.
#[cfg(shm_cas)]
pub fn direct_call<W: Wait>(
    client: &mut crate::direct::Client<'_, W>,
    count: u64,
    seed: u64,
) -> Result<std::vec::Vec<u64>, CallError> {
    seeded_calls(client.slot_size(), count, seed, |req, resp| client.call_timeout(req, resp, STEP_TIMEOUT))
}

/// Publishes `count` messages of the seeded sequence on broadcast channel
/// `tx`, copying and through loans in turn.
pub fn broadcast_publish<W: Wait>(tx: &mut crate::broadcast::Publisher<'_, W>, count: u64, seed: u64) {
    let max = tx.max_message().min(1024);
    let mut buf = std::vec![0u8; max];
    for i in 0..count {
        let len = message(seed, i, max, &mut buf);
        if i % 2 == 0 {
            tx.publish_timeout(&buf[..len], STEP_TIMEOUT).unwrap_or_else(|e| panic!("publish {i}: {e}"));
        } else {
            let mut loan = tx.loan_timeout(len, STEP_TIMEOUT).unwrap_or_else(|e| panic!("loan {i}: {e}"));
            loan.write(&buf[..len]);
            loan.commit();
        }
    }
}

/// Receives `count` messages of the seeded sequence from subscriber `rx`
/// (block policy: nothing may be missed), checking each; an error names
/// the first difference.
pub fn broadcast_receive<W: Wait>(
    rx: &mut crate::broadcast::Subscriber<'_, W>,
    count: u64,
    seed: u64,
    max: usize,
) -> Result<(), String> {
    let max = max.min(1024);
    let mut want = std::vec![0u8; max];
    let mut got = std::vec![0u8; max];
    for i in 0..count {
        let len = message(seed, i, max, &mut want);
        let n = if i % 3 == 0 {
            rx.recv_timeout(&mut got, STEP_TIMEOUT).map_err(|e| format!("message {i}: {e}"))?
        } else {
            let m = rx.read_timeout(STEP_TIMEOUT).map_err(|e| format!("message {i}: {e}"))?;
            let n = m.read_into(&mut got);
            m.finish().map_err(|e| format!("message {i}: {e}"))?;
            n
        };
        if n != len || got[..n] != want[..len] {
            return Err(format!("message {i}: got {n} bytes, expected {len}"));
        }
    }
    match rx.try_recv(&mut got) {
        Err(RecvError::Empty | RecvError::Closed) => Ok(()),
        Ok(n) => Err(format!("an extra message of {n} bytes after {count}")),
        Err(e) => Err(format!("after {count} messages: {e}")),
    }
}
