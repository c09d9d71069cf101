//! Crash points for the tests of crash safety: `TIER_FAULT=<point>[:<n>]` makes the process die
//! by `SIGKILL` the `n`-th time (default the first) it passes the named point, exactly as a
//! `kill -9` at that moment would. Unset, a point costs one relaxed load.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// The point named by `TIER_FAULT` and after how many passes it fires.
fn armed() -> Option<&'static (String, u64)> {
    static ARMED: OnceLock<Option<(String, u64)>> = OnceLock::new();
    ARMED
        .get_or_init(|| {
            let v = std::env::var("TIER_FAULT").ok()?;
            let (name, n) = match v.split_once(':') {
                Some((name, n)) => (name.to_string(), n.parse().ok()?),
                None => (v, 1),
            };
            Some((name, n))
        })
        .as_ref()
}

/// Passes the crash point `name`: dies here if `TIER_FAULT` says so.
pub(crate) fn point(name: &str) {
    static PASSED: AtomicU64 = AtomicU64::new(0);
    if let Some((armed, n)) = armed() {
        if armed == name && PASSED.fetch_add(1, Ordering::SeqCst) + 1 == *n {
            // SAFETY: kill and getpid have no preconditions.
            unsafe {
                libc::kill(libc::getpid(), libc::SIGKILL);
            }
        }
    }
}
