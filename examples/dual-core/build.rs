//! Links each binary with its own memory layout.
//!
//! cortex-m-rt's `link.x` does `INCLUDE memory.x`. Every binary gets a
//! different library search directory (`link/<board>/core0` or
//! `link/<board>/core1`, the board `an521` or, with the `an524` feature,
//! `an524`) holding its own `memory.x`, so the two images get separate flash
//! and RAM (and hence separate stacks, `.data` and `.bss`) from one package.

use std::env;
use std::path::PathBuf;

fn main() {
    // The board's memory layouts: `link/<board>/core{0,1}/memory.x`.
    let board = if env::var_os("CARGO_FEATURE_AN524").is_some() { "an524" } else { "an521" };
    let link = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo")).join("link");
    let layouts = link.join(board);

    // `device.x`, shared by both images.
    println!("cargo:rustc-link-search={}", link.display());
    println!("cargo:rerun-if-changed=link/device.x");

    for bin in ["core0", "core1"] {
        println!("cargo:rustc-link-arg-bin={bin}=-L{}", layouts.join(bin).display());
        println!("cargo:rerun-if-changed=link/{board}/{bin}/memory.x");
    }
    println!("cargo:rustc-link-arg-bins=-Tlink.x");
    println!("cargo:rerun-if-changed=build.rs");
}
