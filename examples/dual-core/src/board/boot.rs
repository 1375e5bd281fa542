//! Starting core 1.
//!
//! CPU1 comes out of reset held by CPUWAIT. Core 0 writes CPU1's vector-table
//! address to INITSVTOR1, then clears CPUWAIT bit 1; CPU1 then loads its SP
//! and reset vector from that table.

use core::fmt;
use core::ptr;

use cortex_m::asm;
use cortex_m::peripheral::NVIC;

use super::memory_map::{CORE1_IMAGE_BASE, CORE1_RAM_BASE, IMAGE_SIZE, RAM_SIZE};
use super::{clock, cpu_id, mhu, CoreId};

/// INITSVTOR1: CPU1's Secure vector-table address at reset.
const INITSVTOR1: *mut u32 = 0x5002_1114 as *mut u32;
/// CPUWAIT: bit n holds CPUn in reset while set.
const CPUWAIT: *mut u32 = 0x5002_1118 as *mut u32;
/// CPUWAIT bit for CPU1.
const CPUWAIT_CPU1: u32 = 1 << 1;

/// Why core 1 could not be started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BootError {
    /// [`start_core1`] was called on core 1.
    NotCore0,
    /// No plausible vector table at the core 1 image address: most likely
    /// QEMU was started without `-device loader,file=<core1 ELF>`.
    NoImage {
        /// First word of the table (initial SP).
        sp: u32,
        /// Second word of the table (reset vector).
        reset: u32,
    },
}

impl fmt::Display for BootError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BootError::NotCore0 => f.write_str("only core 0 can start core 1"),
            BootError::NoImage { sp, reset } => write!(
                f,
                "no core 1 image at {:#010x} (sp={:#010x}, reset={:#010x}); \
                 was QEMU given -device loader,file=core1?",
                CORE1_IMAGE_BASE, sp, reset
            ),
        }
    }
}

/// Checks that the core 1 image holds a plausible vector table: an 8-byte
/// aligned initial SP inside core 1's RAM and a Thumb reset vector inside the
/// image.
pub fn check_core1_image() -> Result<(), BootError> {
    let table = CORE1_IMAGE_BASE as *const u32;
    // SAFETY: the core 1 image region is always-mapped SRAM, readable from
    // core 0 whether or not an image was loaded there; both reads are aligned
    // words inside the region.
    let (sp, reset) = unsafe { (ptr::read_volatile(table), ptr::read_volatile(table.add(1))) };
    let ram = CORE1_RAM_BASE..=CORE1_RAM_BASE + RAM_SIZE;
    let image = CORE1_IMAGE_BASE..CORE1_IMAGE_BASE + IMAGE_SIZE;
    let sp_ok = ram.contains(&(sp as usize)) && sp.is_multiple_of(8);
    let reset_ok = image.contains(&(reset as usize)) && reset & 1 == 1;
    if sp_ok && reset_ok {
        Ok(())
    } else {
        Err(BootError::NoImage { sp, reset })
    }
}

/// Whether CPU1 is still held in reset (CPUWAIT), i.e. core 1 has not run
/// since this boot.
pub fn core1_waits() -> bool {
    // SAFETY: CPUWAIT is an always-mapped 32-bit register of the system
    // control block; reading it has no side effects.
    unsafe { ptr::read_volatile(CPUWAIT) & CPUWAIT_CPU1 != 0 }
}

/// Starts core 1 at the image at [`CORE1_IMAGE_BASE`], after checking it
/// with [`check_core1_image`].
///
/// Everything core 0 wrote before this call (in particular the shared
/// region's initial contents) is visible to core 1 when it starts. Call once,
/// from core 0; a second call has no effect, as CPU1 is already running.
pub fn start_core1() -> Result<(), BootError> {
    if cpu_id() != CoreId::Core0 {
        return Err(BootError::NotCore0);
    }
    check_core1_image()?;
    // SAFETY: INITSVTOR1 and CPUWAIT are always-mapped 32-bit registers of
    // the AN521 system control block, written only here and only by core 0
    // (checked above). INITSVTOR1 is written before CPU1 is released, so CPU1
    // resets with the right table; CORE1_IMAGE_BASE is 128-byte aligned as
    // VTOR requires, and holds a checked vector table.
    unsafe {
        // Make core 0's earlier writes (shared region) visible first.
        asm::dsb();
        ptr::write_volatile(INITSVTOR1, CORE1_IMAGE_BASE as u32);
        asm::dsb();
        let wait = ptr::read_volatile(CPUWAIT);
        ptr::write_volatile(CPUWAIT, wait & !CPUWAIT_CPU1);
        asm::dsb();
        asm::isb();
    }
    Ok(())
}

/// Core 1 only: starts core 1's image again, as a reset would, without a
/// reset of the board: stops this core's tick and doorbell interrupts, then
/// loads the initial SP and jumps to the reset vector of core 1's vector
/// table. cortex-m-rt's start-up code then zeroes `.bss` and re-copies
/// `.data`, so every static of core 1 (doorbell counters included) starts
/// over; only the shared window keeps what it held.
///
/// Panics on core 0.
pub fn restart_core1() -> ! {
    assert!(cpu_id() == CoreId::Core1, "only core 1 restarts itself");
    cortex_m::interrupt::disable();
    clock::stop();
    let (_, irq) = mhu::doorbell_of(CoreId::Core1);
    NVIC::mask(irq);
    NVIC::unpend(irq);
    asm::dsb();
    asm::isb();
    // SAFETY: both interrupt sources this image enables (SysTick, its MHU
    // line) are off and not pending, so unmasking as after a reset lets no
    // handler run during the start-up code.
    unsafe { cortex_m::interrupt::enable() };
    // SAFETY: CORE1_IMAGE_BASE holds core 1's vector table (core 0 checked it
    // in `check_core1_image` before starting core 1, and it is this very
    // image); we run in thread mode on MSP, which `bootload` re-initialises
    // from the table, so nothing of the current stack is used afterwards.
    unsafe { asm::bootload(CORE1_IMAGE_BASE as *const u32) }
}

const _: () = assert!(CORE1_IMAGE_BASE.is_multiple_of(128), "VTOR needs 128-byte alignment");
