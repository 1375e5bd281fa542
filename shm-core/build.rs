//! Sets `cfg(shm_cas)` where compare-and-swap on 32-bit words is available:
//! natively (`target_has_atomic = "32"`), through `portable-atomic` under a
//! critical section (feature `critical-section`, for targets without it such
//! as thumbv6m; feature `locked-atomics`, on any target), or in loom models (`--cfg shm_loom`). The channels that
//! need read-modify-writes (the mailbox, the counting semaphore) are built
//! only there.

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
}
