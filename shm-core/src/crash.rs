//! Named crash points for crash tests (feature `crash-points`, which tests
//! enable; without it every point compiles to nothing).
//!
//! A test process installs a hook with `set_hook`; each protocol step
//! calls it with the point's name, and the hook may kill the process there
//! (`SIGKILL` itself), leaving the segment exactly as a crash at that
//! instant would.
//!
//! ```
//! # #[cfg(feature = "crash-points")] {
//! shm_core::crash::set_hook(|point| {
//!     if std::env::var("CRASH_AT").as_deref() == Ok(point) {
//!         std::process::abort();
//!     }
//! });
//! # }
//! ```

/// Every crash point, in protocol order.
#[cfg_attr(not(feature = "crash-points"), allow(dead_code))]
pub const POINTS: &[&str] = &[
    "segment.sized",
    "segment.initializing",
    "mailbox.client.claimed",
    "mailbox.client.written",
    "mailbox.client.published",
    "mailbox.server.holding",
    "mailbox.server.responded",
    "direct.client.connected",
    "direct.client.took_over",
    "direct.client.written",
    "direct.client.posted",
    "direct.server.holding",
    "direct.server.responded",
    "queue.producer.granted",
    "queue.producer.committed",
    "broadcast.publisher.loaned",
    "broadcast.publisher.published",
    "broadcast.subscriber.reading",
];

#[cfg(feature = "crash-points")]
static HOOK: std::sync::OnceLock<fn(&'static str)> = std::sync::OnceLock::new();

/// Installs the hook called at every crash point (once per process).
#[cfg(feature = "crash-points")]
pub fn set_hook(hook: fn(&'static str)) {
    let _ = HOOK.set(hook);
}

/// Marks a crash point (public for the adapters' own steps, such as
/// shm-posix's `segment.sized`).
#[inline(always)]
pub fn point(name: &'static str) {
    debug_assert!(POINTS.contains(&name));
    #[cfg(feature = "crash-points")]
    if let Some(hook) = HOOK.get() {
        hook(name);
    }
    #[cfg(not(feature = "crash-points"))]
    let _ = name;
}
