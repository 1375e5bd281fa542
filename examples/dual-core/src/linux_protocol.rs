//! What the firmware and the Linux process of `linux-mcu` agree on: the
//! windows, the channels, the messages. One file, compiled into both: the
//! firmware (`dual_core::linux_protocol`) and the host program
//! (`examples/linux-mcu`, through `#[path]`).

use shm_core::Layout;

/// Size of each window in the board's file-backed RAM: window 0 at offset
/// 0 (core 0's mailbox), window 1 right after it (core 1's queue).
pub const WINDOW_SIZE: usize = 64 * 1024;
/// Calls the host makes before the one that ends the run.
pub const CALLS: u32 = 10_000;
/// Messages core 1 writes.
pub const MESSAGES: u32 = 100_000;
/// The first word of the request that ends the run.
pub const DONE: u32 = 0xD0E5_D0E5;

/// Window 0's channels.
pub fn mailbox_layout() -> Layout {
    Layout::new().mailbox("rpc", 1, 64).expect("a valid layout")
}

/// Window 1's channels.
pub fn queue_layout() -> Layout {
    Layout::new().queue("stream", 16 * 1024).expect("a valid layout")
}

/// Length of message (or request) `seq`: 8 to 64 bytes.
pub fn message_len(seq: u32) -> usize {
    8 + (seq as usize * 7) % 57
}

/// Byte `k` of message (or request) `seq`; the first 4 bytes are `seq`,
/// little-endian.
pub fn message_byte(seq: u32, k: usize) -> u8 {
    match k {
        0..=3 => seq.to_le_bytes()[k],
        _ => (seq as usize).wrapping_mul(31).wrapping_add(k * 7) as u8,
    }
}
