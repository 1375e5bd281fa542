//! Sleeping until the other core rings: the [`Doorbell`] trait and
//! [`DoorbellWait`].
//!
//! ```no_run
//! use shm_baremetal::Doorbell;
//!
//! /// One bit of an inter-core interrupt peripheral.
//! struct Mhu {
//!     /// The other core's SET register.
//!     set: *mut u32,
//!     /// This core's CLR register.
//!     clr: *mut u32,
//! }
//!
//! impl Doorbell for Mhu {
//!     fn ring(&self) {
//!         // A barrier first (`cortex_m::asm::dsb()` on Arm), so the
//!         // shared-memory writes are visible when the peer's handler runs.
//!         core::sync::atomic::fence(core::sync::atomic::Ordering::SeqCst);
//!         // SAFETY: `set` is the peer's doorbell SET register (board docs).
//!         unsafe { self.set.write_volatile(1) }
//!     }
//!     fn clear(&self) {
//!         // SAFETY: `clr` is this core's doorbell CLR register.
//!         unsafe { self.clr.write_volatile(1) }
//!     }
//!     fn enable(&self) {
//!         // Unmask this core's doorbell line in the NVIC.
//!     }
//! }
//! // This core's doorbell interrupt handler calls `clear()`; counting the
//! // interrupts there helps diagnostics.
//! ```
//!
//! # Design
//!
//! A doorbell carries no data: it only makes the other core run, and that
//! core re-reads the shared word. shm-core rings only when the other side
//! announced that it sleeps (the `waiting` words), so a peer that polls
//! costs no interrupt.
//!
//! The sleep must not lose a ring that arrives between "the word still holds
//! the old value" and "sleep". [`Doorbell::sleep_unless`] on Arm uses the
//! masked-`WFI` pattern: mask interrupts (PRIMASK), check the word, `WFI`
//! only if it is unchanged, unmask. A ring after the mask leaves the
//! interrupt pending, and `WFI` returns at once on a pending interrupt even
//! while masked; the handler then runs at the unmask. A plain
//! `while !ready { wfi() }` can take the interrupt between the check and the
//! `WFI` and then sleep through the wake-up.
//!
//! Waits without timeout sleep until an interrupt. Timed waits sleep too if
//! the application promises a periodic interrupt at least every `tick`
//! ([`DoorbellWait::with_tick_ns`], e.g. a SysTick handler that only counts),
//! charged a tick per sleep; otherwise they delay a slice per check instead
//! of sleeping (nothing else would end a `WFI` if the peer never rings).

use embedded_hal::delay::DelayNs;
use shm_core::{AtomicU32, Wait};

use crate::attach::Session;
use crate::budget::Budget;
use crate::pacing::{wait_by_pacing, Pacing};
use crate::sync::Ordering;

/// An inter-core interrupt: ring the other core, clear and enable this
/// core's own. Implemented by the board (an MHU, a SIO FIFO, an IPC unit).
pub trait Doorbell {
    /// Raises the other core's doorbell interrupt. Memory writes this core
    /// made before the call must be visible to the other core by the time
    /// its handler runs (issue the barrier the hardware needs, e.g. `DSB`
    /// before the peripheral write).
    fn ring(&self);

    /// Acknowledges this core's doorbell (drops a level-triggered line).
    /// Called by the application's interrupt handler.
    fn clear(&self);

    /// Enables this core's doorbell interrupt. [`DoorbellWait::new`] calls
    /// it once.
    fn enable(&self);

    /// Sleeps until an interrupt may have rung, unless `ready()` says there
    /// is no need, without losing a ring that comes after `ready()` looked.
    ///
    /// The default is the masked-`WFI` pattern on Arm ([`sleep_unless`]) and
    /// a spin-loop hint elsewhere. Override it for another architecture or
    /// for host tests.
    fn sleep_unless(&self, ready: impl FnOnce() -> bool) {
        sleep_unless(ready)
    }
}

impl<B: Doorbell + ?Sized> Doorbell for &B {
    fn ring(&self) {
        (**self).ring()
    }
    fn clear(&self) {
        (**self).clear()
    }
    fn enable(&self) {
        (**self).enable()
    }
    fn sleep_unless(&self, ready: impl FnOnce() -> bool) {
        (**self).sleep_unless(ready)
    }
}

/// Mask interrupts, run `ready`, `WFI` if it returned `false`, restore the
/// mask: sleeps until an interrupt without losing one that arrives after
/// `ready` looked. Call it from thread mode with interrupts enabled (with
/// PRIMASK already set it still returns on a pending interrupt, but the
/// handler only runs once the caller unmasks).
#[cfg(target_arch = "arm")]
pub fn sleep_unless(ready: impl FnOnce() -> bool) {
    let was_enabled = cortex_m::register::primask::read().is_active();
    cortex_m::interrupt::disable();
    if !ready() {
        cortex_m::asm::wfi();
    }
    if was_enabled {
        // SAFETY: interrupts were enabled when we were called (checked
        // above), so re-enabling them ends no critical section of the
        // caller; nothing of ours is half-done for a handler to see.
        unsafe { cortex_m::interrupt::enable() };
    }
}

/// Without `WFI` (host builds): a spin-loop hint if `ready` says to wait.
#[cfg(not(target_arch = "arm"))]
pub fn sleep_unless(ready: impl FnOnce() -> bool) {
    if !ready() {
        core::hint::spin_loop();
    }
}

/// Default slice of a timed wait without a tick: 10 µs.
pub const DEFAULT_DOORBELL_SLICE_NS: u32 = 10_000;

/// A [`Wait`] strategy that sleeps until the other core rings `B`;
/// timeouts through the delay `D`. [`Wait::wake`] rings the other core.
///
/// Use it when a core should sleep between messages (low power, or a second
/// core that has nothing else to do) and the part has an inter-core
/// interrupt. With [`with_spin_limit(0)`](Self::with_spin_limit) it sleeps
/// at the first miss; with the default it spins first, which is faster when
/// messages follow each other closely.
#[derive(Debug)]
pub struct DoorbellWait<'a, B, D> {
    pacing: Pacing<'a, D>,
    bell: B,
}

impl<'a, B: Doorbell, D: DelayNs> DoorbellWait<'a, B, D> {
    /// Sleeping as `session`'s core on `bell`, timing out through `delay`.
    /// Enables this core's doorbell interrupt.
    pub fn new(session: Session<'a>, bell: B, delay: D) -> Self {
        bell.enable();
        Self { pacing: Pacing::new(session, delay, DEFAULT_DOORBELL_SLICE_NS), bell }
    }

    /// Spins `n` times before sleeping (0: sleep at the first miss).
    pub fn with_spin_limit(mut self, n: u32) -> Self {
        self.pacing.set_spin_limit(n);
        self
    }

    /// Promises an interrupt at least every `ns` (a periodic timer): timed
    /// waits then sleep too, charged `ns` per sleep.
    pub fn with_tick_ns(mut self, ns: u32) -> Self {
        self.pacing.set_tick_ns(ns);
        self
    }

    /// The doorbell.
    pub fn doorbell(&self) -> &B {
        &self.bell
    }

    /// Sleeps until any of `endpoints` (queue consumers, broadcast
    /// subscribers, mailbox servers on this core) is ready, or `timeout`
    /// passes (then `None`; a timeout of `None` waits as long as it takes);
    /// returns the index of a ready one. Timed waits sleep only with a
    /// periodic interrupt ([`with_tick_ns`](Self::with_tick_ns)), as every
    /// wait of this strategy does. The doorbell wakes
    /// this core for every channel, so one sleep covers them all: the
    /// endpoints announce themselves (the [`shm_core::ready`] handshake),
    /// and the core sleeps in the masked `WFI` of
    /// [`Doorbell::sleep_unless`] until a peer rings.
    ///
    /// ```no_run
    /// # use shm_baremetal::{Doorbell, DoorbellWait};
    /// # use shm_core::ready::Waitable;
    /// # fn demo<B: Doorbell, D: embedded_hal::delay::DelayNs>(
    /// #     wait: &DoorbellWait<'_, B, D>, a: &dyn Waitable, b: &dyn Waitable) {
    /// match wait.wait_any(&[a, b], Some(core::time::Duration::from_millis(100))) {
    ///     Some(0) => { /* a.try_recv(..) */ }
    ///     Some(_) => { /* b.try_recv(..) */ }
    ///     None => { /* nothing within 100 ms */ }
    /// }
    /// # }
    /// ```
    pub fn wait_any(
        &self,
        endpoints: &[&dyn shm_core::ready::Waitable],
        timeout: Option<core::time::Duration>,
    ) -> Option<usize> {
        let ready = || endpoints.iter().position(|e| e.is_ready());
        let mut deadline = self.pacing.deadline(timeout);
        loop {
            if let Some(i) = ready() {
                return Some(i);
            }
            if self.pacing.expired(&mut deadline) {
                return None;
            }
            for e in endpoints {
                e.announce(true);
            }
            // SYNC POINT: pairs with the peers' fences between publishing and
            // looking at the waiting words (see `shm_core::ready`).
            core::sync::atomic::fence(Ordering::SeqCst);
            if self.pacing.may_sleep(&deadline) {
                self.bell.sleep_unless(|| ready().is_some());
            } else if ready().is_none() {
                self.pacing.delay_slice();
            }
            deadline.parked();
            for e in endpoints {
                e.announce(false);
            }
        }
    }
}

impl<B: Doorbell, D: DelayNs> Wait for DoorbellWait<'_, B, D> {
    wait_by_pacing!();

    fn park(&self, word: &AtomicU32, expected: u32, deadline: &mut Budget) {
        if self.pacing.may_sleep(deadline) {
            // The re-check runs where a ring cannot slip in unseen (see
            // `Doorbell::sleep_unless`); the peer rings after storing `word`.
            self.bell.sleep_unless(|| word.load(Ordering::Relaxed) != expected);
        } else if word.load(Ordering::Relaxed) == expected {
            self.pacing.delay_slice();
        }
        deadline.parked();
    }

    fn wake(&self, _word: &AtomicU32, _count: u32) {
        self.bell.ring();
    }
}
