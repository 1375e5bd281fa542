//! A direct mailbox area (kind 5, format 2.2): the [`mailbox`](super::mailbox)
//! area's bytes, with other slot states.
//!
//! Offsets, words and sizes are the mailbox's ([`super::mailbox`]: three
//! control lines, then slots of a control line and a payload). What
//! differs is who owns a slot and how it moves:
//!
//! | word | direct mailbox meaning |
//! |---|---|
//! | `server` | id of the serving side, 0 if none, [`SERVER_CLOSED`](super::mailbox::SERVER_CLOSED) once the last server closed it |
//! | `served` | reserved, zero |
//! | `request_epoch` | the doorbell: bumped (wrapping) by a client that posted a request while `server_waiting` was set |
//! | `server_waiting` | 1 while the server sleeps; [`SERVER_CLOSED`](super::mailbox::SERVER_CLOSED) after a close |
//! | `free_epoch`, `free_waiters` | as in a mailbox: clients sleeping to connect |
//! | slot `client` | the connected client owning the slot, 0 when nobody does |
//! | slot `state` | request id << 8 \| [`slot`] state ([`pack`](super::mailbox::pack)) |
//! | slot `len` | bytes of the request or response; [`CLOSED_LEN`](super::mailbox::CLOSED_LEN) in a slot FAILED because the server closed |
//! | slot `client_waiting` | 1 while the owner sleeps for the response |
//!
//! A client takes a slot when it connects (a compare-and-swap of its id
//! into `client` from 0, then FREE to IDLE) and keeps it for every call
//! until it disconnects. A slot whose client died is freed by the server's
//! reclaim or taken over by a connecting client: a compare-and-swap of its
//! id into `client` from the dead one's, then the state (IDLE, RESPONSE,
//! FAILED, one no peer writes, or FREE) to IDLE with the next request id
//! (so that a reclaim's compare-and-swap from the dead client's IDLE
//! fails); never a REQUEST or ABANDONED slot, which are the server's. Each call then writes the slot's control line once from each
//! side:
//!
//! | state | meaning | payload belongs to | next |
//! |---|---|---|---|
//! | 0 FREE | nobody's (once `client` is 0) | nobody | IDLE (connect) |
//! | 1 IDLE | connected, nothing posted | the client | REQUEST, or FREE (disconnect) |
//! | 2 REQUEST | posted | the server, from when it sees REQUEST | RESPONSE or FAILED (server), ABANDONED (client disconnects) |
//! | 3 RESPONSE | answered | the client | REQUEST (next call), or FREE |
//! | 4 FAILED | the server dropped it, closed, or died holding it | the client | REQUEST, or FREE |
//! | 5 ABANDONED | the client disconnected with a request posted | the server | FREE (server) |
//!
//! There is no SERVING state: the server takes a request by seeing it, not
//! by writing the slot, so a posted request cannot be withdrawn. A client
//! whose wait ran out keeps its slot and its request; its next call waits
//! for that response first. A server that takes over from a dead one fails
//! every posted request (the dead one may have been half-way through one),
//! and a server that closes marks `server_waiting`
//! [`SERVER_CLOSED`](super::mailbox::SERVER_CLOSED), fails those it had not
//! taken, and only then stores the closed mark in `server` (until then no
//! other server can claim the role and take a request the scan would fail).
//! A client that finds the mark in `server_waiting` right after posting,
//! with its request still posted, reports the close.
//!
//! Every server transition is a compare-and-swap of the whole word, id
//! included; a client posts with a Release store (only the owner writes a
//! slot in IDLE, RESPONSE or FAILED). Whoever loads REQUEST or RESPONSE with
//! Acquire may read the payload and `len`.
//!
//! Waking: the server polls the slots' `state` words, then sets
//! `server_waiting`, issues a store-load fence, looks once more and sleeps
//! on `request_epoch`; a client that posted issues a fence and, if
//! `server_waiting` is set, bumps `request_epoch` and wakes it. The client
//! sleeps on its slot's `state` with `client_waiting`, as in a mailbox.
//!
//! A 2.1 reader refuses a segment that declares a direct mailbox (an unknown
//! `kind`) and opens the others, as a 2.0 reader does a broadcast channel.
//!
//! A slot state above ABANDONED is one no 2.2 peer writes: clients report
//! it as corruption, and a 2.2 server frees such a slot once its owner is
//! dead (`Server::reclaim`), as a connecting client takes it over. A later minor that adds a slot state must keep
//! that safe (or take a new kind).

/// Slot states of a direct mailbox (the low byte of a slot's `state`).
pub mod slot {
    /// Nobody's.
    pub const FREE: u32 = 0;
    /// Owned by a connected client, nothing posted.
    pub const IDLE: u32 = 1;
    /// Posted; the server may read and modify it.
    pub const REQUEST: u32 = 2;
    /// Answered; the client may read it and post the next.
    pub const RESPONSE: u32 = 3;
    /// The server dropped the request, closed, or died holding it.
    pub const FAILED: u32 = 4;
    /// The client disconnected with a request posted; the server frees it.
    pub const ABANDONED: u32 = 5;
}

#[cfg(not(shm_loom))]
const _: () = assert!(slot::ABANDONED <= super::mailbox::LOW_MASK);
// `MailboxView::slot_user` reads ABANDONED for both kinds.
#[cfg(not(shm_loom))]
const _: () = assert!(slot::ABANDONED == super::mailbox::slot::ABANDONED);
