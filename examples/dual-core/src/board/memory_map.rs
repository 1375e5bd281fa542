//! Memory map of the AN521 as both cores use it (Secure aliases).
//!
//! The image and RAM regions must agree with `link/core0/memory.x` and
//! `link/core1/memory.x`.

/// One MiB.
const MIB: usize = 1024 * 1024;

/// Core 0's image (vector table at its start): CPU0's reset VTOR.
pub const CORE0_IMAGE_BASE: usize = 0x1000_0000;
/// Core 1's image (vector table at its start): written to INITSVTOR1.
pub const CORE1_IMAGE_BASE: usize = 0x1020_0000;
/// Size of each image region.
pub const IMAGE_SIZE: usize = MIB;

/// Core 0's private RAM: its stack, `.data` and `.bss`.
pub const CORE0_RAM_BASE: usize = 0x3800_0000;
/// Core 1's private RAM: its stack, `.data` and `.bss`.
pub const CORE1_RAM_BASE: usize = 0x3810_0000;
/// Size of each private RAM region.
pub const RAM_SIZE: usize = MIB;

/// RAM shared by both cores; not used by either image's linker script.
pub const SHARED_BASE: usize = 0x3820_0000;
/// Size of the shared region.
pub const SHARED_SIZE: usize = 64 * 1024;
