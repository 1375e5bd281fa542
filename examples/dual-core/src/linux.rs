//! The firmware side of `linux-mcu` (feature `linux-peer`): each core shares
//! a window of the board's file-backed RAM with a Linux process on the host.
//!
//! QEMU backs the AN521's 16 MiB `mps.ram` at `0x8000_0000` with a host file
//! (`-object memory-backend-file,...,share=on,mem-path=/dev/shm/NAME
//! -machine mps2-an521,memory-backend=...`), which the Linux process maps
//! too. Two windows there, each with its own attach block:
//!
//! - window 0 (`0x8000_0000`, 64 KiB): core 0 creates a segment with the
//!   mailbox `rpc` and serves the Linux client (each request answered with
//!   its bytes reversed) until a request with the [`DONE`] word; then it ends
//!   the QEMU run with exit status 0 (1 if serving failed);
//! - window 1 (`0x8001_0000`, 64 KiB): core 1 creates a segment with the
//!   queue `stream` and writes [`MESSAGES`] numbered messages of 8 to 64
//!   bytes (the host checks length, number and every byte).
//!
//! What both sides agree on is in [`crate::linux_protocol`].
//!
//! The host cannot ring a doorbell here, so both sides poll ([`SpinWait`]).
//! The firmware is the attach block's core 0 of each window, the Linux
//! process its core 1.

use core::time::Duration;

use cortex_m_semihosting::hprintln;
use shm_baremetal::{CoreId, Endpoint, SpinWait, Window};

use crate::board::clock::Delay;
use crate::board::exit;
use crate::linux_protocol::{mailbox_layout, message_byte, message_len, queue_layout, DONE, MESSAGES, WINDOW_SIZE};

/// The file-backed RAM at the start of which the windows lie.
pub const HOST_RAM_BASE: usize = 0x8000_0000;
/// How long an attach, a receive or a send may wait (the host starts its
/// side after QEMU is up; a slow host may take a while).
const TIMEOUT: Duration = Duration::from_secs(120);

fn window(index: usize) -> Window {
    let base = HOST_RAM_BASE + index * WINDOW_SIZE;
    // SAFETY: the AN521's mps.ram (0x8000_0000, 16 MiB) is used by no image
    // section; window `index` (0 or 1) is 64 KiB of it that only this core
    // and, through the backing file, the host process access, and only
    // through shm-baremetal.
    unsafe { Window::new(base as *mut u8, WINDOW_SIZE) }.expect("a 64-byte aligned window that holds a segment")
}

type Wait = SpinWait<'static, spin::relax::Spin, Delay>;

/// Core 0: serves the host's calls until [`DONE`], then exits QEMU.
pub fn run_core0() -> ! {
    let me = Endpoint::new(window(0), CoreId::CORE0, CoreId::CORE1);
    let wait: Wait = SpinWait::new(me.session(), Delay);
    let served = me.create(&mailbox_layout(), &wait, TIMEOUT).map_err(|_| "attach").and_then(|link| {
        let server = link.server("rpc", &wait).map_err(|_| "server role")?;
        let mut calls = 0u32;
        loop {
            let mut done = false;
            let served = server.serve_timeout(TIMEOUT, |buf, len| {
                done = len >= 4 && buf[..4] == DONE.to_le_bytes();
                buf[..len].reverse();
                len
            });
            match served {
                Ok(()) => calls += 1,
                // The host sends its final call only once the stream is
                // over, which may take longer than one wait: keep serving.
                // (The host bounds the run, and QEMU dies with it.)
                Err(shm_core::ServeError::Timeout) => continue,
                Err(_) => return Err("serving"),
            }
            if done {
                return Ok(calls);
            }
        }
    });
    match served {
        Ok(calls) => {
            hprintln!("core0: served {} calls from the Linux process", calls);
            exit::exit(exit::SUCCESS)
        }
        Err(what) => {
            hprintln!("core0: {} failed", what);
            exit::exit(exit::EXCHANGE_FAILED)
        }
    }
}

/// Core 1: writes the stream for the host, then idles.
pub fn run_core1() -> ! {
    let me = Endpoint::new(window(1), CoreId::CORE0, CoreId::CORE1);
    let wait: Wait = SpinWait::new(me.session(), Delay);
    let link = me.create(&queue_layout(), &wait, TIMEOUT).unwrap_or_else(|e| panic!("core1: attach: {}", e));
    let mut tx = link.producer("stream", &wait).unwrap_or_else(|e| panic!("core1: producer: {}", e));
    for seq in 0..MESSAGES {
        let len = message_len(seq);
        let mut grant = tx.grant_timeout(len, TIMEOUT).unwrap_or_else(|e| panic!("core1: message {}: {}", seq, e));
        for (k, b) in grant.iter_mut().enumerate() {
            *b = message_byte(seq, k);
        }
        grant.commit();
    }
    hprintln!("core1: wrote {} messages for the Linux process", MESSAGES);
    loop {
        cortex_m::asm::wfi();
    }
}
