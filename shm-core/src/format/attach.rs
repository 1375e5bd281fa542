//! The attach block of a bare-metal window: the last 64 bytes of the
//! window, outside the segment (which [`Segment::create`](crate::Segment::create)
//! zeroes, and which must stay readable by Linux peers). Used by
//! shm-baremetal's `attach` module, which describes the handshake.
//!
//! One 16-byte *lane* per core (up to [`MAX_CORES`]), each written only by
//! its own core, read by the others. Lane `n` is at offset
//! [`LANE_SIZE`]` * n` of the block. All words are 32-bit atomics.
//!
//! | lane offset | word | meaning |
//! |---|---|---|
//! | +0 | `session` | this core's current session, 1 to 2^24 - 1 (0: never attached) |
//! | +4 | `ack` | the peer session this core accepted in the handshake (0: none yet) |
//! | +8 | `changes` | bumped after each update of `session` or `ack` (what waiters park on) |
//! | +12 | `linked` | the peer session this core completed the handshake with (0: handshaking) |
//!
//! The id a core records in the segment's role words is
//! `(core + 1) << 24 | session` ([`CORE_SHIFT`], [`SESSION_MASK`]).

/// Bytes of the attach block at the end of the window.
pub const BLOCK_SIZE: usize = 64;
/// Cores the attach block has lanes for.
pub const MAX_CORES: usize = 4;
/// Bytes of one lane.
pub const LANE_SIZE: usize = 16;
/// Offset of `session` in a lane.
pub const SESSION: usize = 0;
/// Offset of `ack` in a lane.
pub const ACK: usize = 4;
/// Offset of `changes` in a lane.
pub const CHANGES: usize = 8;
/// Offset of `linked` in a lane.
pub const LINKED: usize = 12;
/// Sessions are 24-bit numbers (the low bits of an id).
pub const SESSION_MASK: u32 = 0x00ff_ffff;
/// Shift of `core + 1` in an id.
pub const CORE_SHIFT: u32 = 24;

const _: () = {
    assert!(MAX_CORES * LANE_SIZE == BLOCK_SIZE);
    assert!(BLOCK_SIZE.is_multiple_of(super::CACHE_LINE));
    assert!(SESSION < ACK && ACK < CHANGES && CHANGES < LINKED && LINKED + 4 == LANE_SIZE);
    assert!(SESSION_MASK == (1 << CORE_SHIFT) - 1);
};
