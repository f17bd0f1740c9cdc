//! What one connection is doing: requests in flight (a response body still being written
//! counts), response boundaries, whether a head was refused, and since when it is idle.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Requests in progress on one connection, and since when none is, for `idle_timeout`.
pub(super) struct Activity {
    pub(super) in_flight: AtomicUsize,
    /// Requests handed to the service so far (response boundaries, see `head_guard`).
    pub(super) calls: AtomicU64,
    /// A request head was refused (`431`): the connection closes, lingering first.
    pub(super) refused: AtomicBool,
    idle_since: std::sync::Mutex<tokio::time::Instant>,
}

impl Activity {
    pub(super) fn new() -> Self {
        Self {
            in_flight: AtomicUsize::new(0),
            calls: AtomicU64::new(0),
            refused: AtomicBool::new(false),
            idle_since: std::sync::Mutex::new(tokio::time::Instant::now()),
        }
    }

    /// Resolves once no request has been in progress for `limit`. Hyper has no idle timer
    /// for HTTP/2; HTTP/1.1 waits for its next request head under `header_read_timeout`.
    pub(super) async fn idle_for(&self, limit: Duration) {
        let tick = (limit / 4).max(Duration::from_millis(50));
        loop {
            tokio::time::sleep(tick).await;
            let since = *self.idle_since.lock().unwrap_or_else(|e| e.into_inner());
            if self.in_flight.load(Ordering::Acquire) == 0 && since.elapsed() >= limit {
                return;
            }
        }
    }
}

/// One request in progress, until its response body is dropped.
pub(super) struct InFlight(Arc<Activity>);

impl InFlight {
    pub(super) fn new(activity: &Arc<Activity>) -> Self {
        activity.calls.fetch_add(1, Ordering::AcqRel);
        activity.in_flight.fetch_add(1, Ordering::AcqRel);
        Self(Arc::clone(activity))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        *self.0.idle_since.lock().unwrap_or_else(|e| e.into_inner()) = tokio::time::Instant::now();
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}
