//! The hardware semaphore (HSEM) as the two-core lock behind
//! `critical_section` and as the doorbell between the cores.
//!
//! | semaphore | role |
//! |---|---|
//! | [`LOCK`] (31) | the critical section: taken by either core, interrupts masked |
//! | [`BELL_TO_M7`] (30) | the M4 rings the M7: the M7 enables its free interrupt (HSEM_C1IER) |
//! | [`BELL_TO_M4`] (29) | the M7 rings the M4: the M4 enables its free interrupt (HSEM_C2IER) |
//!
//! Numbers 0 to 28 are left to the application (ST's examples use 0 for
//! their boot handshake; embassy-stm32's `hsem` driver hands out 1 to 6).
//!
//! # Design
//!
//! Both take a semaphore with the one-step read lock: a read of `HSEM_RLRn`
//! takes the semaphore if it is free and returns its value, so the read
//! returns `LOCK` set with this core's `COREID` (and process 0) exactly when
//! this core holds it. A write of `HSEM_Rn` with this core's `COREID`,
//! process 0 and `LOCK` clear frees it; the free sets the semaphore's
//! interrupt status bit, which raises an interrupt on a core that enabled
//! that bit in its `HSEM_CnIER`. The doorbell is nothing more: take and
//! free a semaphore whose interrupt only the other core enabled.
//!
//! embassy-stm32's `hsem::HardwareSemaphore` is not used: its constructor
//! resets the HSEM (which would free a lock the other core holds), its
//! channels are async, and its interrupt handler serves semaphores 0 to 5
//! only. The registers are used through embassy-stm32's PAC instead.

use core::sync::atomic::{AtomicBool, Ordering};

use embassy_stm32::cpu::CoreId;
use embassy_stm32::pac::HSEM;
use shm_baremetal::Doorbell;

/// The semaphore of the critical section.
pub const LOCK: usize = 31;
/// The semaphore whose free interrupt wakes the M7.
pub const BELL_TO_M7: usize = 30;
/// The semaphore whose free interrupt wakes the M4.
pub const BELL_TO_M4: usize = 29;

/// This core, as the HSEM knows it (the bus master ID: 3 for the M7, 1 for
/// the M4; RM0399 "HSEM").
#[cfg(feature = "cm7")]
const CORE: CoreId = CoreId::Core0;
#[cfg(feature = "cm4")]
const CORE: CoreId = CoreId::Core1;

/// Tries to take the critical section's semaphore before giving up: about
/// 4 million reads of `HSEM_RLR31`, on the order of a second at 64 MHz
/// (not measured: no chip here). An honest hold is a few dozen
/// instructions; running out means the other core stopped inside its
/// critical section.
const LOCK_TRIES: u32 = 1 << 22;

/// Enables this core's HSEM clock. Call it first thing, before anything
/// takes a critical section (embassy-stm32's init does): with the clock off
/// every `HSEM_RLR` read returns 0 and [`LOCK`] could never be taken.
pub fn enable_clock() {
    // RCC_AHB4ENR is this core's own enable register (RM0399: each CPU
    // accesses its RCC_C1_/RCC_C2_AHB4ENR there), so this read-modify-write
    // cannot interleave with the other core's; nothing else of this core
    // runs yet.
    embassy_stm32::pac::RCC.ahb4enr().modify(|w| w.set_hsemen(true));
    // The enable takes effect before the first HSEM access.
    let _ = embassy_stm32::pac::RCC.ahb4enr().read();
}

/// One-step lock: whether this core holds semaphore `n` after the read
/// (it did already, or it was free and is now ours).
fn take(n: usize) -> bool {
    let r = HSEM.rlr(n).read();
    r.lock() && r.coreid() == CORE as u8 && r.procid() == 0
}

/// Frees semaphore `n` if this core holds it (a write with another owner's
/// ids is ignored by the HSEM).
fn free(n: usize) {
    HSEM.r(n).write(|w| {
        w.set_procid(0);
        w.set_coreid(CORE as u8);
        w.set_lock(false);
    });
}

/// Whether this core is inside its critical section. Each image keeps its
/// own (in its own RAM: DTCM on the M7, D2 SRAM on the M4), and only this
/// core's thread mode and handlers touch it, with interrupts masked: loads
/// and stores suffice (`Relaxed`: ordered by the masking, no other
/// observer), and no exclusive-access instruction is emitted for them.
static HELD: AtomicBool = AtomicBool::new(false);

/// `RawRestoreState` bit: interrupts were enabled on entry.
const WAS_ENABLED: u8 = 1;
/// `RawRestoreState` value of a nested acquire: its release does nothing.
const NESTED: u8 = 2;

/// The critical section of this firmware: this core's interrupts masked
/// (PRIMASK) and HSEM semaphore [`LOCK`] held, so it excludes this core's
/// handlers and the other core. It is the lock shm-core's `locked-atomics`
/// control words are written under, and embassy-stm32's too.
struct HsemCriticalSection;

critical_section::set_impl!(HsemCriticalSection);

// SAFETY: `acquire` returns only with interrupts masked and semaphore LOCK
// held by this core (or nested inside an acquire that did), and `release`
// undoes exactly that, so two critical sections never overlap on one core
// (masking) or across the cores (the HSEM grants the semaphore to one core
// at a time). The DMBs order the accesses inside against the other core's.
unsafe impl critical_section::Impl for HsemCriticalSection {
    unsafe fn acquire() -> u8 {
        let was_enabled = cortex_m::register::primask::read().is_active();
        cortex_m::interrupt::disable();
        if HELD.load(Ordering::Relaxed) {
            return NESTED;
        }
        let mut tries = 0;
        while !take(LOCK) {
            tries += 1;
            if tries == LOCK_TRIES {
                // The other core is stuck holding the lock: waiting longer
                // would hang this core with interrupts masked, where no
                // channel timeout runs; stealing it would let a half-done
                // write through. Stop this core (the panic handler halts
                // it); an independent watchdog, if enabled, resets the part.
                panic!("HSEM lock not freed by the other core");
            }
        }
        HELD.store(true, Ordering::Relaxed);
        // Acquire barrier: what the other core did before it freed the lock
        // (the DMB in its `release`) is seen by our accesses from here on.
        cortex_m::asm::dmb();
        u8::from(was_enabled)
    }

    unsafe fn release(state: u8) {
        if state == NESTED {
            return;
        }
        // Release barrier: our accesses inside the section complete before
        // the write that frees the lock (pairs with the DMB in the other
        // core's `acquire`).
        cortex_m::asm::dmb();
        HELD.store(false, Ordering::Relaxed);
        free(LOCK);
        if state & WAS_ENABLED != 0 {
            // SAFETY: interrupts were enabled when the outermost acquire ran
            // (its restore state says so), and that section ends here.
            unsafe { cortex_m::interrupt::enable() };
        }
    }
}

/// The HSEM free interrupt as a doorbell: `ring` takes and frees `out`,
/// which only the other core listens to; this core listens to `inbound`.
#[derive(Debug, Clone, Copy)]
pub struct HsemDoorbell {
    out: usize,
    inbound: usize,
}

impl HsemDoorbell {
    /// This core's doorbell pair.
    #[cfg(feature = "cm7")]
    pub const fn new() -> Self {
        Self { out: BELL_TO_M4, inbound: BELL_TO_M7 }
    }

    /// This core's doorbell pair.
    #[cfg(feature = "cm4")]
    pub const fn new() -> Self {
        Self { out: BELL_TO_M7, inbound: BELL_TO_M4 }
    }
}

impl Doorbell for HsemDoorbell {
    fn ring(&self) {
        // Our writes to the window reach memory before the other core's
        // handler runs (the HSEM write is ordered after them).
        cortex_m::asm::dsb();
        // Only this core ever takes `out`, so the read lock succeeds; if it
        // did not, the free below is ignored and the other core wakes at its
        // next tick instead (the wait strategy sleeps no longer than that).
        let _ = take(self.out);
        free(self.out);
    }

    fn clear(&self) {
        // HSEM_CnICR is write-1-to-clear: only `inbound`'s status bit drops.
        HSEM.icr(CORE.to_index()).write(|w| w.set_isc(self.inbound, true));
    }

    fn enable(&self) {
        self.clear();
        // HSEM_CnIER is this core's own register, written only here, once.
        HSEM.ier(CORE.to_index()).modify(|w| w.set_ise(self.inbound, true));
        use embassy_stm32::interrupt::InterruptExt;
        let irq = bell_interrupt();
        irq.unpend();
        // SAFETY: the handler (`HSEM1`/`HSEM2` in main.rs) only clears this
        // core's status bit: unmasking it breaks no critical section.
        unsafe { irq.enable() };
    }
}

/// This core's HSEM interrupt line: HSEM1 reaches the M7, HSEM2 the M4.
fn bell_interrupt() -> embassy_stm32::interrupt::Interrupt {
    #[cfg(feature = "cm7")]
    return embassy_stm32::interrupt::HSEM1;
    #[cfg(feature = "cm4")]
    return embassy_stm32::interrupt::HSEM2;
}
