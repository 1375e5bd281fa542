//! Sets `cfg(shm_cas)` where compare-and-swap on 32-bit words is available:
//! natively (`target_has_atomic = "32"`), through `portable-atomic` under a
//! critical section (feature `critical-section`, for targets without it such
//! as thumbv6m; feature `locked-atomics`, on any target), or in loom models (`--cfg shm_loom`). The channels that
//! need read-modify-writes (the mailbox, the counting semaphore) are built
//! only there.
//!
//! Sets `cfg(shm_wide_copy)` where payload copies out of shared memory use
//! 16-byte SSE2 loads in inline assembly (`payload::load16`): x86_64 with
//! SSE2, except under Miri (which cannot run assembly) and under a
//! sanitizer or `cargo fuzz` (whose instrumentation does not see inside
//! assembly, so an out-of-bounds copy would go unreported there).

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let atomics = std::env::var("CARGO_CFG_TARGET_HAS_ATOMIC").unwrap_or_default();
    let native = atomics.split(',').any(|width| width == "32");
    let locked = std::env::var_os("CARGO_FEATURE_CRITICAL_SECTION").is_some()
        || std::env::var_os("CARGO_FEATURE_LOCKED_ATOMICS").is_some();
    let loom = std::env::var_os("CARGO_CFG_SHM_LOOM").is_some();
    if native || locked || loom {
        println!("cargo:rustc-cfg=shm_cas");
    }
    let var = |name: &str| std::env::var(name).unwrap_or_default();
    let wide = var("CARGO_CFG_TARGET_ARCH") == "x86_64"
        && var("CARGO_CFG_TARGET_FEATURE").split(',').any(|f| f == "sse2")
        && std::env::var_os("CARGO_CFG_MIRI").is_none()
        && std::env::var_os("CARGO_CFG_SANITIZE").is_none()
        && std::env::var_os("CARGO_CFG_FUZZING").is_none();
    if wide {
        println!("cargo:rustc-cfg=shm_wide_copy");
    }
}
