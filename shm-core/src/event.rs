//! Slow-path events (a peer found dead, a slot reclaimed, a role taken
//! over): logged through `log` (feature `log`, for Linux services) or
//! `defmt` (feature `defmt`, for firmware), or nowhere. Never on the fast
//! path: each site is a recovery that already cost a system call or a scan.
//!
//! The same small-macro approach as embassy's `fmt.rs`: call sites name the
//! level and a format string; the features decide where it goes.

/// A warning-level slow-path event.
macro_rules! event {
    ($($arg:tt)*) => {{
        #[cfg(feature = "log")]
        ::log::warn!(target: "shm", $($arg)*);
        #[cfg(feature = "defmt")]
        ::defmt::warn!($($arg)*);
        #[cfg(not(any(feature = "log", feature = "defmt")))]
        {
            let _ = ($($arg)*,);
        }
    }};
}

pub(crate) use event;
