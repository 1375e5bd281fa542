//! Puts the memory.x of the core this build is for (feature `cm7` or `cm4`)
//! where the linker (cortex-m-rt's link.x) finds it, with shared.x, the
//! SRAM4 layout both images include.

fn main() {
    let core = match (std::env::var_os("CARGO_FEATURE_CM7"), std::env::var_os("CARGO_FEATURE_CM4")) {
        (Some(_), None) => "cm7",
        (None, Some(_)) => "cm4",
        _ => panic!("build with exactly one of --features cm7 or --features cm4"),
    };
    let out = std::path::PathBuf::from(std::env::var_os("OUT_DIR").expect("set by cargo"));
    std::fs::copy(format!("memory-{core}.x"), out.join("memory.x")).expect("copying memory.x");
    std::fs::copy("shared.x", out.join("shared.x")).expect("copying shared.x");
    println!("cargo:rustc-link-search={}", out.display());
    for file in ["memory-cm7.x", "memory-cm4.x", "shared.x", "build.rs"] {
        println!("cargo:rerun-if-changed={file}");
    }
}
