//! Waiting for something to happen instead of sleeping for a guessed time: poll a condition
//! every few milliseconds and fail, naming what was awaited, when it does not hold in time.
#![allow(dead_code)]

use std::future::Future;
use std::time::{Duration, Instant};

/// How often conditions are polled.
pub const POLL: Duration = Duration::from_millis(10);

/// Wait until `condition` holds, panicking with `what` after `timeout`.
pub async fn wait_until(what: &str, timeout: Duration, mut condition: impl FnMut() -> bool) {
    let started = Instant::now();
    while !condition() {
        assert!(
            started.elapsed() < timeout,
            "not within {timeout:?}: {what}"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// Wait until the async `condition` holds, panicking with `what` after `timeout`.
pub async fn wait_until_async<F, Fut>(what: &str, timeout: Duration, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let started = Instant::now();
    while !condition().await {
        assert!(
            started.elapsed() < timeout,
            "not within {timeout:?}: {what}"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// Wait until `probe` returns `Some`, and return it; panics with `what` after `timeout`.
pub async fn wait_for<T>(what: &str, timeout: Duration, mut probe: impl FnMut() -> Option<T>) -> T {
    let started = Instant::now();
    loop {
        if let Some(value) = probe() {
            return value;
        }
        assert!(
            started.elapsed() < timeout,
            "not within {timeout:?}: {what}"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// Wait until `value()` stops changing: the same for `settle` in a row. Returns it.
/// For "nothing more happens" checks where no later event can be observed instead; the
/// caller says why in a comment.
pub async fn wait_until_stable<T: PartialEq + std::fmt::Debug>(
    what: &str,
    settle: Duration,
    timeout: Duration,
    mut value: impl FnMut() -> T,
) -> T {
    let started = Instant::now();
    let mut last = value();
    let mut since = Instant::now();
    loop {
        tokio::time::sleep(POLL).await;
        let now = value();
        if now != last {
            last = now;
            since = Instant::now();
        } else if since.elapsed() >= settle {
            return last;
        }
        assert!(
            started.elapsed() < timeout,
            "not within {timeout:?}: {what} (still changing: {last:?})"
        );
    }
}
