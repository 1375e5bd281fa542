//! The Cortex-M7's memory set-up: the MPU region over the shared SRAM4, the
//! caches, and the cache hooks of its endpoint.
//!
//! # Design
//!
//! The M7's data cache is not coherent with the M4. The M7 therefore maps
//! all of D3 SRAM4 (`0x3800_0000`, 64 KiB: the shm window and embassy's
//! `SharedData`) as one MPU region, Normal memory, non-cacheable,
//! shareable, before it enables its data cache and before it touches
//! SRAM4. Every control word, frame header and payload in the window is
//! then read from and written to SRAM4 itself, and the cache hooks find no
//! line to clean or drop.
//!
//! [`DataCache`] still implements the hooks by address, for a build that
//! maps mailbox payloads cacheable (see shm-baremetal's `cache` module for
//! what may be cached: mailbox slot payloads only, never control words or
//! the queue's ring). On this example's non-cacheable window each hook
//! costs a barrier and one cache operation per 32-byte line, and changes
//! nothing.

use cortex_m::peripheral::{CPUID, MPU, SCB};
use shm_baremetal::Cache;

/// The shared SRAM4: base and size of the MPU region.
const SRAM4: u32 = 0x3800_0000;
/// log2 of SRAM4's size (64 KiB).
const SRAM4_SIZE_LOG2: u32 = 16;

/// MPU_RASR: execute never.
const XN: u32 = 1 << 28;
/// MPU_RASR: full access from privileged and unprivileged code (AP = 0b011).
const AP_FULL: u32 = 0b011 << 24;
/// MPU_RASR: TEX = 0b001, C = 0, B = 0: Normal memory, non-cacheable.
const NORMAL_NON_CACHEABLE: u32 = 0b001 << 19;
/// MPU_RASR: shareable.
const SHAREABLE: u32 = 1 << 18;
/// MPU_RASR: region enabled.
const REGION_ENABLE: u32 = 1;
/// MPU_CTRL: the default memory map for privileged code outside the
/// regions, and the MPU on.
const CTRL_PRIVDEFENA_ENABLE: u32 = (1 << 2) | 1;

/// Maps SRAM4 Normal, non-cacheable, shareable, execute-never (MPU region
/// 0), then enables the instruction and data caches. Call before anything
/// touches SRAM4 (`init_primary` writes embassy's `SharedData` there).
pub fn configure_memory(mpu: &mut MPU, scb: &mut SCB, cpuid: &mut CPUID) {
    let rasr = XN | AP_FULL | NORMAL_NON_CACHEABLE | SHAREABLE | ((SRAM4_SIZE_LOG2 - 1) << 1) | REGION_ENABLE;
    cortex_m::asm::dmb();
    // SAFETY: the MPU is off while region 0 is written, and on again with
    // the default map as background, so every access outside region 0 keeps
    // its default attributes; SRAM4 is not yet in use (nothing is placed
    // there by the start-up code, and embassy is not initialized yet).
    unsafe {
        mpu.ctrl.write(0);
        mpu.rnr.write(0);
        mpu.rbar.write(SRAM4);
        mpu.rasr.write(rasr);
        mpu.ctrl.write(CTRL_PRIVDEFENA_ENABLE);
    }
    cortex_m::asm::dsb();
    cortex_m::asm::isb();
    scb.enable_icache();
    scb.enable_dcache(cpuid);
}

/// The M7's data-cache maintenance by address (see the module docs: a
/// no-op in effect on this example's non-cacheable window).
#[derive(Debug, Clone, Copy, Default)]
pub struct DataCache;

impl DataCache {
    /// The cache maintenance registers.
    fn scb() -> SCB {
        // SAFETY: the by-address clean and clean-and-invalidate operations
        // only write the write-only DCCMVAC/DCCIMVAC registers, each write
        // one self-contained operation; the other SCB handle (main's) was
        // used only to enable the caches, before any endpoint exists.
        unsafe { cortex_m::Peripherals::steal() }.SCB
    }
}

impl Cache for DataCache {
    fn clean(&self, addr: *const u8, len: usize) {
        Self::scb().clean_dcache_by_address(addr as usize, len);
    }

    fn invalidate(&self, addr: *const u8, len: usize) {
        // Clean and invalidate: never drops a line this core wrote and has
        // not cleaned (the contract of `Cache::invalidate`).
        Self::scb().clean_invalidate_dcache_by_address(addr as usize, len);
    }
}
