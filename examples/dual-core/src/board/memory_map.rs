//! Memory map of the board as both cores use it (Secure aliases): QEMU's
//! `mps2-an521` by default, `mps3-an524` with the `an524` feature. Both are
//! the SSE-200 subsystem (same system control block, MHUs and CPU identity
//! register); they differ in their memories and their clock.
//!
//! The image and RAM regions must agree with the board's
//! `link/<board>/core0/memory.x` and `link/<board>/core1/memory.x`.

/// One KiB.
const KIB: usize = 1024;
/// One MiB.
const MIB: usize = 1024 * KIB;

/// The QEMU machine this image is for: `run.sh` reads it from the image (the
/// [`MACHINE_TAG`] string) and starts that machine.
#[cfg(not(feature = "an524"))]
pub const MACHINE: &str = "mps2-an521";
/// The QEMU machine this image is for (see above).
#[cfg(feature = "an524")]
pub const MACHINE: &str = "mps3-an524";

/// `SHM_QEMU_MACHINE=<machine>` in the image, for `run.sh`; kept by the
/// linker (`#[used]`) although no code reads it.
#[used]
pub static MACHINE_TAG: [u8; TAG_LEN] = machine_tag();

const TAG_PREFIX: &[u8] = b"SHM_QEMU_MACHINE=";
const TAG_LEN: usize = TAG_PREFIX.len() + MACHINE.len() + 1;

const fn machine_tag() -> [u8; TAG_LEN] {
    let mut tag = [0u8; TAG_LEN];
    let mut i = 0;
    while i < TAG_PREFIX.len() {
        tag[i] = TAG_PREFIX[i];
        i += 1;
    }
    let machine = MACHINE.as_bytes();
    let mut j = 0;
    while j < machine.len() {
        tag[i + j] = machine[j];
        j += 1;
    }
    tag
}

#[cfg(not(feature = "an524"))]
mod board {
    use super::MIB;
    /// Core 0's image: CPU0's reset VTOR (ZBT SSRAM1).
    pub const CORE0_IMAGE_BASE: usize = 0x1000_0000;
    /// Core 1's image, written to INITSVTOR1.
    pub const CORE1_IMAGE_BASE: usize = 0x1020_0000;
    /// Size of each image region.
    pub const IMAGE_SIZE: usize = MIB;
    /// Core 0's private RAM (ZBT SSRAM2/3).
    pub const CORE0_RAM_BASE: usize = 0x3800_0000;
    /// Core 1's private RAM.
    pub const CORE1_RAM_BASE: usize = 0x3810_0000;
    /// RAM shared by both cores.
    pub const SHARED_BASE: usize = 0x3820_0000;
}

#[cfg(feature = "an524")]
mod board {
    use super::KIB;
    /// Core 0's image: CPU0's reset VTOR (the 512 KiB BRAM).
    pub const CORE0_IMAGE_BASE: usize = 0x1000_0000;
    /// Core 1's image, written to INITSVTOR1 (the BRAM's upper half).
    pub const CORE1_IMAGE_BASE: usize = 0x1004_0000;
    /// Size of each image region.
    pub const IMAGE_SIZE: usize = 256 * KIB;
    /// Core 0's private RAM (DDR4).
    pub const CORE0_RAM_BASE: usize = 0x7000_0000;
    /// Core 1's private RAM.
    pub const CORE1_RAM_BASE: usize = 0x7010_0000;
    /// RAM shared by both cores.
    pub const SHARED_BASE: usize = 0x7020_0000;
}

pub use board::*;

/// Size of each private RAM region: its stack, `.data` and `.bss`.
pub const RAM_SIZE: usize = MIB;
/// Size of the shared region (not used by either image's linker script).
pub const SHARED_SIZE: usize = 64 * KIB;
/// The two-core lock of images built for a target without compare-and-swap
/// (`board::lock`): 64 bytes right after the shared region, which no
/// image's linker script uses either.
pub const LOCK_BASE: usize = SHARED_BASE + SHARED_SIZE;
