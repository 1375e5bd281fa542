//! A mailbox area: three control lines, then the slots.
//!
//! | offset | word | written by |
//! |---|---|---|
//! | 0 | `server`: id of the serving side, 0 if none, [`SERVER_CLOSED`] once the last server closed the mailbox | server |
//! | 4 | `served`: responses posted (wrapping) | server |
//! | 64 | `request_epoch`: the last request rung: `id << 8 \| slot` ([`pack`]) | clients |
//! | 68 | `server_waiting`: 1 while the server sleeps; [`SERVER_CLOSED`] after a close, a hint for clients to look at `server` | server |
//! | 128 | `free_epoch`: bumped when a slot is freed while clients sleep for one | any |
//! | 132 | `free_waiters`: clients sleeping for a free slot | clients |
//! | 192 | slot 0, then one slot every [`slot_stride`]`(slot_size)` bytes ([`slot_offset`]) | |
//!
//! A slot:
//!
//! | slot offset | word | meaning |
//! |---|---|---|
//! | +0 | `state` | request id << 8 \| slot state ([`pack`], [`slot`]) |
//! | +4 | `len` | bytes of the request or response in the payload, at most `slot_size`; [`CLOSED_LEN`] in a slot FAILED because the server closed |
//! | +8 | `client` | the slot's owner: 0 when nobody holds it, else the holder's id |
//! | +12 | `client_waiting` | 1 while the owner sleeps for the response |
//! | +64 | payload | `slot_size` bytes, then padding to a multiple of 64 |
//!
//! `client` is taken by a compare-and-swap from 0 before the state leaves
//! FREE and cleared only after the state is FREE again. `state` holds a
//! 24-bit request id in its upper bits and the slot state in its low byte:
//!
//! | state | meaning | next |
//! |---|---|---|
//! | 0 FREE | nobody's (once `client` is 0) | CLAIMED (its new owner, new id) |
//! | 1 CLAIMED | a client writes its request | REQUEST, or FREE |
//! | 2 REQUEST | posted, the server may take it | SERVING (server), or FREE (client withdraws) |
//! | 3 SERVING | the server reads and modifies it | RESPONSE, FAILED, or ABANDONED (client gives up) |
//! | 4 RESPONSE | answered | FREE (client) |
//! | 5 ABANDONED | client gave up while served | FREE (server) |
//! | 6 FAILED | server dropped it or died | FREE (client) |
//!
//! A client writes `len` and the payload, then publishes REQUEST with a
//! Release store (or compare-and-swap) of `state`; whoever loads that state
//! with Acquire may read them. The server sleeps on `request_epoch`,
//! clients on `free_epoch` and on their slot's `state` ([`WAIT_WORDS`],
//! [`SLOT_WAIT_WORD`]). The protocol is described in [`crate::mailbox`].

use crate::sync::AtomicU32;

/// Offset of `server`.
pub const SERVER: usize = 0;
/// Offset of `served`.
pub const SERVED: usize = 4;
/// Offset of `request_epoch`.
pub const REQUEST_EPOCH: usize = 64;
/// Offset of `server_waiting`.
pub const SERVER_WAITING: usize = 68;
/// The value of `server` once its last server closed the mailbox (free to
/// claim), and of `server_waiting` as a hint that it did.
pub const SERVER_CLOSED: u32 = crate::role::CLOSED;
/// The `len` of a slot FAILED because the server closed the mailbox (the
/// client reports `Closed`, not `Dropped`).
pub const CLOSED_LEN: u32 = u32::MAX;
/// Offset of `free_epoch`.
pub const FREE_EPOCH: usize = 128;
/// Offset of `free_waiters`.
pub const FREE_WAITERS: usize = 132;
/// Offset of slot 0 (the bytes of the three control lines before it).
pub const SLOTS: usize = 192;
/// The area's words a side sleeps on: `request_epoch` (the server),
/// `free_epoch` (clients waiting for a slot).
pub const WAIT_WORDS: [usize; 2] = [REQUEST_EPOCH, FREE_EPOCH];

/// Offset of a slot's `state` from the slot start.
pub const SLOT_STATE: usize = 0;
/// Offset of a slot's `len`.
pub const SLOT_LEN: usize = 4;
/// Offset of a slot's `client` (owner).
pub const SLOT_CLIENT: usize = 8;
/// Offset of a slot's `client_waiting`.
pub const SLOT_CLIENT_WAITING: usize = 12;
/// Offset of a slot's payload.
pub const SLOT_PAYLOAD: usize = 64;
/// The slot word a client sleeps on for its response: `state`.
pub const SLOT_WAIT_WORD: usize = SLOT_STATE;

/// Most slots a mailbox has.
pub const MAX_SLOTS: u32 = 64;
/// Largest slot payload (256 MiB).
pub const MAX_SLOT_SIZE: u32 = 1 << 28;

/// Bits of a request id (the upper bits of `state` and `request_epoch`).
pub const ID_BITS: u32 = 24;
/// Mask of a request id once shifted down.
pub const ID_MASK: u32 = (1 << ID_BITS) - 1;
/// Shift of the request id in `state` and `request_epoch`.
pub const ID_SHIFT: u32 = 32 - ID_BITS;
/// Mask of the low byte: the slot state in `state`, the slot index in
/// `request_epoch`.
pub const LOW_MASK: u32 = (1 << ID_SHIFT) - 1;

/// Slot states (the low byte of a slot's `state` word).
pub mod slot {
    /// Nobody's.
    pub const FREE: u32 = 0;
    /// A client is writing its request.
    pub const CLAIMED: u32 = 1;
    /// Posted; the server may take it.
    pub const REQUEST: u32 = 2;
    /// The server holds it.
    pub const SERVING: u32 = 3;
    /// Answered; the client may read it.
    pub const RESPONSE: u32 = 4;
    /// The client gave up while it was being served.
    pub const ABANDONED: u32 = 5;
    /// The server dropped it, or died holding it.
    pub const FAILED: u32 = 6;
}

/// Bytes from one slot to the next for a payload of `slot_size`.
pub const fn slot_stride(slot_size: u32) -> u32 {
    let line = super::CACHE_LINE as u32;
    SLOT_PAYLOAD as u32 + ((slot_size + line - 1) & !(line - 1))
}

/// Offset of slot `index` from the start of the area.
pub const fn slot_offset(index: u32, slot_size: u32) -> usize {
    SLOTS + index as usize * slot_stride(slot_size) as usize
}

/// A `state` or `request_epoch` word: `id` in the upper 24 bits, `low` (a
/// slot state or a slot index) in the low byte.
pub const fn pack(id: u32, low: u32) -> u32 {
    (id << ID_SHIFT) | low
}

/// The request id of a packed word.
pub const fn id_of(word: u32) -> u32 {
    word >> ID_SHIFT
}

/// The low byte of a packed word: a slot state, or a slot index.
pub const fn low_of(word: u32) -> u32 {
    word & LOW_MASK
}

#[doc(hidden)]
/// A mailbox's shared control words (three cache lines).
#[repr(C)]
pub struct MailboxControl {
    pub(crate) server: AtomicU32,
    pub(crate) served: AtomicU32,
    #[cfg(not(shm_loom))]
    _pad0: [AtomicU32; 14],
    pub(crate) request_epoch: AtomicU32,
    pub(crate) server_waiting: AtomicU32,
    #[cfg(not(shm_loom))]
    _pad1: [AtomicU32; 14],
    pub(crate) free_epoch: AtomicU32,
    pub(crate) free_waiters: AtomicU32,
    #[cfg(not(shm_loom))]
    _pad2: [AtomicU32; 14],
}

#[doc(hidden)]
/// One slot's control words (a cache line; the payload follows).
#[repr(C)]
pub struct SlotControl {
    pub(crate) state: AtomicU32,
    pub(crate) len: AtomicU32,
    pub(crate) client: AtomicU32,
    pub(crate) client_waiting: AtomicU32,
    #[cfg(not(shm_loom))]
    _pad: [AtomicU32; 12],
}

#[cfg(not(shm_loom))]
const _: () = {
    use core::mem::{offset_of, size_of};
    assert!(size_of::<MailboxControl>() == SLOTS);
    assert!(offset_of!(MailboxControl, server) == SERVER);
    assert!(offset_of!(MailboxControl, served) == SERVED);
    assert!(offset_of!(MailboxControl, request_epoch) == REQUEST_EPOCH);
    assert!(offset_of!(MailboxControl, server_waiting) == SERVER_WAITING);
    assert!(offset_of!(MailboxControl, free_epoch) == FREE_EPOCH);
    assert!(offset_of!(MailboxControl, free_waiters) == FREE_WAITERS);
    assert!(size_of::<SlotControl>() == SLOT_PAYLOAD);
    assert!(offset_of!(SlotControl, state) == SLOT_STATE);
    assert!(offset_of!(SlotControl, len) == SLOT_LEN);
    assert!(offset_of!(SlotControl, client) == SLOT_CLIENT);
    assert!(offset_of!(SlotControl, client_waiting) == SLOT_CLIENT_WAITING);
    assert!(SLOTS.is_multiple_of(super::CACHE_LINE) && SLOT_PAYLOAD.is_multiple_of(super::CACHE_LINE));
    assert!(slot_stride(1) == 128 && slot_stride(64) == 128 && slot_stride(65) == 192);
    assert!(MAX_SLOTS - 1 <= LOW_MASK && slot::FAILED <= LOW_MASK);
};

#[cfg(shm_loom)]
#[allow(clippy::new_without_default)] // model-checking constructors only
impl MailboxControl {
    /// Fresh control words, for model checking.
    pub fn new() -> Self {
        Self {
            server: AtomicU32::new(0),
            served: AtomicU32::new(0),
            request_epoch: AtomicU32::new(0),
            server_waiting: AtomicU32::new(0),
            free_epoch: AtomicU32::new(0),
            free_waiters: AtomicU32::new(0),
        }
    }
}

#[cfg(shm_loom)]
#[allow(clippy::new_without_default)] // model-checking constructors only
impl SlotControl {
    /// Fresh slot words, for model checking.
    pub fn new() -> Self {
        Self::with_words(0, 0)
    }

    /// Slot words with the given `state` and `client` (owner) words, for
    /// model checking a slot left behind by an earlier holder.
    pub fn with_words(state: u32, client: u32) -> Self {
        Self {
            state: AtomicU32::new(state),
            len: AtomicU32::new(0),
            client: AtomicU32::new(client),
            client_waiting: AtomicU32::new(0),
        }
    }
}
