//! Data-cache maintenance hooks: [`Cache`], and [`NoCache`] for cores
//! without a data cache (the default; every hook is a no-op).
//!
//! # Where the hooks run
//!
//! shm-core's channels call their strategy's [`Wait::clean`] and
//! [`Wait::invalidate`] at each hand-over; the channel ends a
//! [`Link`](crate::Link) makes run over a [`LinkWait`](crate::LinkWait),
//! which sends those calls to the link's `Cache`. The attach steps call the
//! `Cache` directly:
//!
//! | step | hook | range |
//! |---|---|---|
//! | [`Endpoint::create`](crate::Endpoint::create), after `Segment::create` | `clean` | the whole segment (header, table, zeroed areas), before the handshake acknowledges the peer |
//! | [`Endpoint::open`](crate::Endpoint::open), before `Segment::open` | `invalidate` | the whole segment (drops lines of an earlier segment) |
//! | queue send: after the payload is written, before `commit` publishes it | `clean` | the message payload |
//! | queue receive: after the frame is located, before the payload is read | `invalidate` | the message payload |
//! | mailbox call: after the request is written, before it is posted | `clean` | the request bytes in the slot |
//! | mailbox call: after RESPONSE is seen, before the response is read | `invalidate` | the response bytes in the slot |
//! | mailbox serve: after the request is taken, before it is read | `invalidate` | the request bytes |
//! | mailbox serve: after the response is written, before it is posted | `clean` | the response bytes |
//! | dropping a producer, consumer or server: before its close mark is stored | `clean` | the word that carries the mark (queue `head` or `tail`, mailbox `server_waiting`) |
//!
//! [`Wait::clean`]: shm_core::Wait::clean
//! [`Wait::invalidate`]: shm_core::Wait::invalidate
//!
//! Clean-after-write comes before the Release store that publishes the
//! bytes; invalidate-before-read comes after the Acquire load that saw them
//! published. That is the whole contract of a payload hand-over.
//!
//! # What the hooks do not cover
//!
//! Words that shm-core reads and writes *inside* a step, where no hook can
//! run: the segment header and channel table after open, every control word
//! (queue `head`/`tail`/role/waiting words, mailbox and slot state words,
//! the request semaphore), the queue's in-ring frame headers (8 bytes before
//! each payload, sharing its cache line), and the attach block. Spinning on
//! a cached copy of a control word would never see the peer's store, and a
//! dirty frame header could be written back over the peer's data. So the
//! window must be coherent between the cores for those words: no data
//! cache, a non-cacheable (or write-through with hardware-coherent reads)
//! MPU region over the window, or hardware coherency. The simplest correct
//! set-up on a Cortex-M7 is an MPU region marking the whole window
//! Normal, Non-cacheable, Shareable, with [`NoCache`]. The hooks then
//! matter only if you map the payload lines cacheable on purpose, which the
//! mailbox allows (slot payloads are line-aligned and never share a line
//! with a control word) but the queue does not (frame headers share lines
//! with payloads: its ring must stay non-cacheable).

/// Clean and invalidate data-cache lines by address range, for one core.
///
/// Ranges are exact byte ranges inside the shared window; an implementation
/// rounds them outward to its line size (every area in the window starts on
/// a 64-byte line). [`invalidate`](Self::invalidate) must never discard data
/// this core wrote and has not cleaned: implement it as clean-and-invalidate
/// (`cortex_m::peripheral::SCB::clean_invalidate_dcache_by_address` on a
/// Cortex-M7), which costs nothing more for lines this core did not write.
pub trait Cache {
    /// Writes the lines covering `len` bytes at `addr` back to memory, so
    /// the other core reads what this core wrote.
    fn clean(&self, addr: *const u8, len: usize) {
        let _ = (addr, len);
    }

    /// Drops the lines covering `len` bytes at `addr` (after writing back
    /// any dirty ones), so this core's next reads come from memory.
    fn invalidate(&self, addr: *const u8, len: usize) {
        let _ = (addr, len);
    }
}

impl<C: Cache + ?Sized> Cache for &C {
    fn clean(&self, addr: *const u8, len: usize) {
        (**self).clean(addr, len)
    }
    fn invalidate(&self, addr: *const u8, len: usize) {
        (**self).invalidate(addr, len)
    }
}

/// No data cache (or a window mapped non-cacheable): every hook is a no-op.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct NoCache;

impl Cache for NoCache {}
