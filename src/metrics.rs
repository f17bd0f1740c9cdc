//! The gateway's Prometheus metrics: one registry per gateway instance (tests run several
//! in one process), exported in the Prometheus text format on the admin listener.
//!
//! Labels are bounded: routes are the matcher's fixed names, statuses are numbers, kinds
//! and reasons are fixed words. No path, project or token ever becomes a label.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts,
    Registry, TextEncoder,
};

/// What storage did for one request while its handler ran: requests made and bytes read.
/// The access log reports it (`storage_requests`, `storage_bytes`), and an archive open its
/// own share. Reads a response body makes after the handler has returned (an archive
/// download streaming) are not counted here.
#[derive(Debug, Default)]
pub struct StorageUse {
    requests: AtomicU64,
    bytes: AtomicU64,
}

tokio::task_local! {
    static STORAGE_USE: Arc<StorageUse>;
}

impl StorageUse {
    /// Run `future` counting its storage use into `this`.
    pub async fn scope<F: Future>(this: Arc<StorageUse>, future: F) -> F::Output {
        STORAGE_USE.scope(this, future).await
    }

    /// Requests and bytes counted so far in the current scope; zeros outside one.
    pub fn so_far() -> (u64, u64) {
        STORAGE_USE
            .try_with(|usage| (usage.requests(), usage.bytes()))
            .unwrap_or((0, 0))
    }

    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }
}

/// What a storage request was for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadKind {
    /// A whole archive or a range of it, for a download.
    Archive,
    /// A job log.
    Trace,
    /// The tail read that opens an archive.
    ZipTail,
    /// The central directory, when it starts before the tail.
    ZipDirectory,
    /// One entry (or its local header).
    ZipEntry,
    /// Metadata only.
    Head,
}

impl ReadKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Archive => "archive",
            Self::Trace => "trace",
            Self::ZipTail => "zip_tail",
            Self::ZipDirectory => "zip_directory",
            Self::ZipEntry => "zip_entry",
            Self::Head => "head",
        }
    }
}

pub struct Metrics {
    registry: Registry,
    pub requests: IntCounterVec,
    pub request_seconds: HistogramVec,
    pub response_bytes: IntCounterVec,
    pub in_flight_streams: IntGauge,
    pub aborted_streams: IntCounterVec,
    pub storage_requests: IntCounterVec,
    pub storage_bytes: IntCounterVec,
    pub metadata_cache: IntCounterVec,
    pub zip_index_cache: IntCounterVec,
    pub upstream_errors: IntCounterVec,
    pub connections: IntGauge,
    pub rejected: IntCounterVec,
    pub locate_requests: IntCounterVec,
    pub storage_read_seconds: Histogram,
    /// Local files opened; a kept file (`storage.open_files`) is read without opening.
    pub file_opens: IntCounter,
    pub hot_entries: IntCounterVec,
    /// Expiring links issued, and uses of them by outcome.
    pub links_issued: IntCounter,
    pub links: IntCounterVec,
}

fn counter_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let vec = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
    registry
        .register(Box::new(vec.clone()))
        .expect("unique metric");
    vec
}

fn counter(registry: &Registry, name: &str, help: &str) -> IntCounter {
    let counter = IntCounter::new(name, help).expect("valid metric");
    registry
        .register(Box::new(counter.clone()))
        .expect("unique metric");
    counter
}

fn gauge(registry: &Registry, name: &str, help: &str) -> IntGauge {
    let gauge = IntGauge::new(name, help).expect("valid metric");
    registry
        .register(Box::new(gauge.clone()))
        .expect("unique metric");
    gauge
}

impl Metrics {
    pub fn new() -> Self {
        let registry =
            Registry::new_custom(Some("artifact_gateway".into()), None).expect("valid prefix");
        let r = &registry;
        // Up to 10 minutes: a large download is one request.
        let buckets = vec![
            0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
            300.0, 600.0,
        ];
        let request_seconds = HistogramVec::new(
            HistogramOpts::new(
                "request_duration_seconds",
                "Time from request to the end of the response body, by route.",
            )
            .buckets(buckets),
            &["route"],
        )
        .expect("valid metric");
        r.register(Box::new(request_seconds.clone()))
            .expect("unique metric");
        let storage_read_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "storage_request_seconds",
                "Time until storage answered a request (headers, not the body).",
            )
            .buckets(vec![
                0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
            ]),
        )
        .expect("valid metric");
        r.register(Box::new(storage_read_seconds.clone()))
            .expect("unique metric");
        Self {
            requests: counter_vec(r, "requests_total", "Requests answered, by route and status.", &["route", "status"]),
            request_seconds,
            response_bytes: counter_vec(r, "response_bytes_total", "Response body bytes sent, by route.", &["route"]),
            in_flight_streams: gauge(r, "in_flight_streams", "Response bodies being sent now."),
            aborted_streams: counter_vec(
                r,
                "aborted_streams_total",
                "Response bodies cut short, by reason: verification (CRC or size), storage, upstream, client_gone, shutdown.",
                &["reason"],
            ),
            storage_requests: counter_vec(r, "storage_requests_total", "Storage requests, by kind.", &["kind"]),
            storage_bytes: counter_vec(r, "storage_read_bytes_total", "Bytes read from storage, by kind.", &["kind"]),
            metadata_cache: counter_vec(
                r,
                "metadata_cache_events_total",
                "Metadata cache: hit, miss, eviction, invalidation.",
                &["event"],
            ),
            zip_index_cache: counter_vec(r, "zip_index_cache_events_total", "Zip index cache: hit, miss, eviction.", &["event"]),
            upstream_errors: counter_vec(r, "upstream_errors_total", "Jobs backend failures: unavailable, timeout.", &["kind"]),
            connections: gauge(r, "open_connections", "Client connections open now."),
            rejected: counter_vec(r, "rejected_total", "Work refused by a limit, by limit.", &["limit"]),
            locate_requests: counter_vec(
                r,
                "locate_requests_total",
                "Upstream mode: archives located, by outcome: cached, redirect, backend (200), refused (4xx), error.",
                &["outcome"],
            ),
            storage_read_seconds,
            file_opens: counter(r, "storage_file_opens_total", "Local files opened; a kept open file is read again without opening it."),
            hot_entries: counter_vec(r, "hot_entry_cache_events_total", "Hot small entries, decoded: hit (no storage read), miss.", &["event"]),
            links_issued: counter(r, "links_issued_total", "Expiring links issued."),
            links: counter_vec(
                r,
                "link_uses_total",
                "Uses of expiring links: served, or refused by reason (invalid, expired, gone).",
                &["outcome"],
            ),
            registry,
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        let families = self.registry.gather();
        // Encoding into a Vec cannot fail for the text format.
        let _ = TextEncoder::new().encode(&families, &mut out);
        String::from_utf8(out).unwrap_or_default()
    }

    pub fn storage_request(&self, kind: ReadKind) {
        let _ = STORAGE_USE.try_with(|usage| usage.requests.fetch_add(1, Ordering::Relaxed));
        self.storage_requests
            .with_label_values(&[kind.as_str()])
            .inc();
    }

    pub fn storage_read(&self, kind: ReadKind, bytes: u64) {
        let _ = STORAGE_USE.try_with(|usage| usage.bytes.fetch_add(bytes, Ordering::Relaxed));
        self.storage_bytes
            .with_label_values(&[kind.as_str()])
            .inc_by(bytes);
    }

    pub fn metadata(&self, event: &str) {
        self.metadata_cache.with_label_values(&[event]).inc();
    }

    pub fn zip_index(&self, event: &str) {
        self.zip_index_cache.with_label_values(&[event]).inc();
    }

    pub fn locate(&self, outcome: &str) {
        self.locate_requests.with_label_values(&[outcome]).inc();
    }

    pub fn upstream_error(&self, kind: &str) {
        self.upstream_errors.with_label_values(&[kind]).inc();
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text_with_the_prefix() {
        let metrics = Metrics::new();
        metrics
            .requests
            .with_label_values(&["get_job", "200"])
            .inc();
        metrics.storage_request(ReadKind::ZipTail);
        metrics
            .request_seconds
            .with_label_values(&["get_job"])
            .observe(0.2);
        let text = metrics.render();
        assert!(
            text.contains("artifact_gateway_requests_total{route=\"get_job\",status=\"200\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("artifact_gateway_storage_requests_total{kind=\"zip_tail\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE artifact_gateway_request_duration_seconds histogram"),
            "{text}"
        );
    }
}
