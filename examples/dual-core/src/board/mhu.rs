//! MHU (Message Handling Unit) doorbell driver.
//!
//! The AN521 has two MHUs. Each has, per CPU x, a 4-bit interrupt status
//! register with SET and CLR companions: setting a bit in CPUxINTR_SET raises
//! the MHU's NVIC line on CPU x (IRQ 6 for MHU0, IRQ 7 for MHU1), level-
//! triggered until the bit is cleared through CPUxINTR_CLR.
//!
//! Routing used here, one MHU per direction, bit 0 only:
//!
//! | doorbell of | MHU  | register    | IRQ on that core |
//! |-------------|------|-------------|------------------|
//! | core 0      | MHU1 | CPU0INTR_*  | 7                |
//! | core 1      | MHU0 | CPU1INTR_*  | 6                |
//!
//! A core rings its peer with [`ring`]; the peer's interrupt handler clears
//! the bit and counts the doorbell ([`doorbells_taken`]). A doorbell carries
//! no data: it only wakes the peer, which then looks at shared memory. Rings
//! that happen before the handler clears the bit merge into one interrupt.

use core::ptr;
use core::sync::atomic::{AtomicU32, Ordering};

use shm_baremetal::Doorbell;

use cortex_m::asm;
use cortex_m::interrupt::InterruptNumber;
use cortex_m::peripheral::NVIC;

use super::{cpu_id, CoreId};

/// Offset of CPU0INTR_STAT; CPU1's registers are [`CPU_STRIDE`] further.
const CPU0INTR_STAT: usize = 0x0;
/// Offset of CPU0INTR_SET.
const CPU0INTR_SET: usize = 0x4;
/// Offset of CPU0INTR_CLR.
const CPU0INTR_CLR: usize = 0x8;
/// Distance between CPU0's and CPU1's register groups.
const CPU_STRIDE: usize = 0x10;
/// The four doorbell bits of each register.
const ALL_BITS: u32 = 0xF;
/// The bit this firmware uses as "doorbell".
const DOORBELL_BIT: u32 = 1 << 0;

/// Doorbell interrupts taken by this core (each image has its own copy, so
/// this is per core).
static DOORBELLS: AtomicU32 = AtomicU32::new(0);
/// MHU interrupts taken by this core that found no bit set.
static SPURIOUS: AtomicU32 = AtomicU32::new(0);
/// `WFI`s this core executed in [`MhuDoorbell::sleep_unless`].
static SLEEPS: AtomicU32 = AtomicU32::new(0);

/// NVIC interrupt lines of the two MHUs (the same numbers on both cores).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u16)]
pub enum Irq {
    /// MHU0's interrupt line.
    Mhu0 = 6,
    /// MHU1's interrupt line.
    Mhu1 = 7,
}

// SAFETY: `number` returns the discriminant, which is a valid AN521 external
// interrupt number (6 or 7), always the same for the same variant.
unsafe impl InterruptNumber for Irq {
    fn number(self) -> u16 {
        self as u16
    }
}

/// One MHU instance, identified by its base address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mhu {
    base: usize,
}

/// MHU0 at 0x5000_3000: carries core 1's doorbell.
pub const MHU0: Mhu = Mhu { base: 0x5000_3000 };
/// MHU1 at 0x5000_4000: carries core 0's doorbell.
pub const MHU1: Mhu = Mhu { base: 0x5000_4000 };

impl Mhu {
    /// Address of the register at `offset` in `core`'s register group.
    fn reg(self, core: CoreId, offset: usize) -> *mut u32 {
        (self.base + core.index() as usize * CPU_STRIDE + offset) as *mut u32
    }

    /// Reads CPUxINTR_STAT for `core`: the bits currently raised towards it.
    pub fn status(self, core: CoreId) -> u32 {
        // SAFETY: `reg` yields an aligned address of a CPUxINTR_STAT register
        // of an always-mapped MHU; reading it has no side effects.
        unsafe { ptr::read_volatile(self.reg(core, CPU0INTR_STAT)) & ALL_BITS }
    }

    /// Raises `bits` towards `core` (write-one-to-set).
    pub fn set(self, core: CoreId, bits: u32) {
        // SAFETY: aligned CPUxINTR_SET register of an always-mapped MHU;
        // write-one-to-set, so other bits are unaffected.
        unsafe { ptr::write_volatile(self.reg(core, CPU0INTR_SET), bits & ALL_BITS) }
    }

    /// Clears `bits` towards `core` (write-one-to-clear).
    pub fn clear(self, core: CoreId, bits: u32) {
        // SAFETY: aligned CPUxINTR_CLR register of an always-mapped MHU;
        // write-one-to-clear, so other bits are unaffected.
        unsafe { ptr::write_volatile(self.reg(core, CPU0INTR_CLR), bits & ALL_BITS) }
    }
}

/// The MHU and NVIC line that carry `core`'s doorbell (see the module table).
pub const fn doorbell_of(core: CoreId) -> (Mhu, Irq) {
    match core {
        CoreId::Core0 => (MHU1, Irq::Mhu1),
        CoreId::Core1 => (MHU0, Irq::Mhu0),
    }
}

/// Rings `target`'s doorbell.
///
/// All memory writes this core made before the call are visible to `target`
/// by the time its doorbell interrupt is raised.
pub fn ring(target: CoreId) {
    let (mhu, _) = doorbell_of(target);
    // Order earlier (shared RAM) writes before the device write.
    asm::dsb();
    mhu.set(target, DOORBELL_BIT);
}

/// Enables `core`'s own doorbell interrupt; `core` must be the calling core.
///
/// Clears any stale doorbell bits and pending state first.
pub fn enable_doorbell(core: CoreId) {
    let (mhu, irq) = doorbell_of(core);
    mhu.clear(core, ALL_BITS);
    NVIC::unpend(irq);
    // SAFETY: the handler for this line (`on_interrupt`) only touches the MHU
    // and atomics, so unmasking it cannot break any critical section.
    unsafe { NVIC::unmask(irq) };
}

/// Number of doorbell interrupts this core has taken so far.
pub fn doorbells_taken() -> u32 {
    DOORBELLS.load(Ordering::Acquire)
}

/// Number of times this core slept (`WFI`) waiting for shared memory.
pub fn sleeps() -> u32 {
    SLEEPS.load(Ordering::Relaxed)
}

/// Number of MHU interrupts this core took that found no doorbell bit set.
pub fn spurious_interrupts() -> u32 {
    SPURIOUS.load(Ordering::Relaxed)
}

/// Interrupt handler body for `mhu`'s line on the calling core: clears the
/// bits raised towards this core (dropping the level-triggered line) and
/// counts one doorbell.
pub(super) fn on_interrupt(mhu: Mhu) {
    let me = cpu_id();
    let bits = mhu.status(me);
    if bits == 0 {
        super::bump(&SPURIOUS, Ordering::Relaxed);
        return;
    }
    mhu.clear(me, bits);
    // Make sure the clear reached the MHU before the exception returns, or
    // the still-high line would re-pend the interrupt.
    asm::dsb();
    super::bump(&DOORBELLS, Ordering::Release);
    // A task awaiting a channel on this core (`crate::tasks`) polls again.
    DOORBELL.wake();
}

/// The waker a task awaiting a channel on this core registers: the
/// doorbell handler wakes it (each core's image has its own).
pub static DOORBELL: shm_baremetal::asynch::DoorbellSignal = shm_baremetal::asynch::DoorbellSignal::new();

/// This core's doorbell as shm-baremetal sees it: `ring` raises the other
/// core's line, `clear` and `enable` act on this core's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MhuDoorbell {
    me: CoreId,
}

impl MhuDoorbell {
    /// The doorbell of `me`, the calling core.
    pub const fn new(me: CoreId) -> Self {
        Self { me }
    }
}

impl Doorbell for MhuDoorbell {
    fn ring(&self) {
        ring(self.me.peer());
    }

    fn clear(&self) {
        let (mhu, _) = doorbell_of(self.me);
        mhu.clear(self.me, ALL_BITS);
    }

    /// Unmasks the line only: [`enable_doorbell`] (at board init) already
    /// cleared stale state, and clearing again here could drop a ring.
    fn enable(&self) {
        let (_, irq) = doorbell_of(self.me);
        // SAFETY: as in `enable_doorbell`: the handler only touches the MHU
        // and atomics.
        unsafe { NVIC::unmask(irq) };
    }

    /// shm-baremetal's masked-`WFI` sleep, counting the `WFI`s.
    fn sleep_unless(&self, ready: impl FnOnce() -> bool) {
        shm_baremetal::doorbell::sleep_unless(|| {
            let done = ready();
            if !done {
                super::bump(&SLEEPS, Ordering::Relaxed);
            }
            done
        });
    }
}
