//! What the entry tests share: a backend with one public project and archive jobs,
//! storage reads measured request by request, entries fetched whole or expected cut short,
//! and the log this binary captures.

use std::sync::Arc;
use std::time::Duration;

use object_store::GetRange;
use sample_backend::{BackendBuilder, JobSpec, JobStatus, Visibility};

use crate::common::logs::{self, Captured};
use crate::common::storage::Tap;
use crate::common::{header, raw, wait, Harness, TOKEN};

/// Malformed archives must be answered within this.
pub const PROMPT: Duration = Duration::from_secs(5);

/// One public project (1) with successful jobs `jobs` (ref `main`, name `build`), each with
/// an archive.
pub fn backend(jobs: impl IntoIterator<Item = u64>) -> BackendBuilder {
    let mut backend = BackendBuilder::new().user("demo", TOKEN).project(
        1,
        "g/app",
        Visibility::Public,
        &["demo"],
    );
    for id in jobs {
        backend =
            backend.job(JobSpec::new(id, 1, "build", "main", JobStatus::Success).with_archive(1));
    }
    backend
}

pub fn key(job: u64) -> String {
    format!("1/{job}/artifacts.zip")
}

pub fn entry_path(job: u64, name: &str) -> String {
    format!("/projects/1/jobs/{job}/artifacts/{name}")
}

pub fn tap_of(h: &Harness) -> Arc<Tap> {
    h.tap.clone().expect("a tapped harness")
}

/// GETs so far and the ranges recorded, for measuring one request.
pub struct Mark {
    gets: usize,
    heads: usize,
    ranges: usize,
}

pub fn mark(tap: &Tap) -> Mark {
    Mark {
        gets: tap.gets.load(std::sync::atomic::Ordering::SeqCst),
        heads: tap.heads.load(std::sync::atomic::Ordering::SeqCst),
        ranges: tap.ranges.lock().unwrap().len(),
    }
}

/// Storage GETs since `mark`, with their ranges; asserts no HEAD was made.
pub fn since(tap: &Tap, mark: &Mark) -> Vec<Option<GetRange>> {
    let gets = tap.gets.load(std::sync::atomic::Ordering::SeqCst) - mark.gets;
    let heads = tap.heads.load(std::sync::atomic::Ordering::SeqCst) - mark.heads;
    assert_eq!(heads, 0, "an entry request made a HEAD request to storage");
    let ranges = tap.ranges.lock().unwrap()[mark.ranges..].to_vec();
    assert_eq!(ranges.len(), gets);
    ranges
}

/// A bounded storage read of `range`.
pub fn bounded(range: std::ops::Range<u64>) -> Option<GetRange> {
    Some(GetRange::Bounded(range))
}

/// The opening read of the last `tail` bytes.
pub fn suffix(tail: u64) -> Option<GetRange> {
    Some(GetRange::Suffix(tail))
}

/// GET an entry; the whole body, which must arrive complete.
pub async fn fetch(h: &Harness, job: u64, name: &str) -> (u16, bytes::Bytes) {
    let response = h.get(&entry_path(job, name), Some(TOKEN)).await;
    let status = response.status().as_u16();
    let body = response
        .bytes()
        .await
        .unwrap_or_else(|e| panic!("job {job} {name}: body failed: {e}"));
    (status, body)
}

/// GET an entry that must be served byte-exact.
pub async fn expect_entry(h: &Harness, job: u64, name: &str, want: &[u8]) {
    let (status, body) = fetch(h, job, name).await;
    assert_eq!(
        status,
        200,
        "job {job} {name}: {}",
        String::from_utf8_lossy(&body)
    );
    assert_eq!(body.len(), want.len(), "job {job} {name}");
    assert!(body == want, "job {job} {name}: wrong bytes");
}

/// GET an entry over a raw connection, read until the gateway closes it.
pub async fn raw_get(h: &Harness, path: &str) -> raw::Received {
    let target = format!("/api/v4{path}");
    let request = raw::request(
        "GET",
        target.as_bytes(),
        &h.gateway.addr().to_string(),
        &[("PRIVATE-TOKEN", TOKEN)],
    );
    raw::exchange_closed(h.gateway.addr(), &request).await
}

/// The entry is announced as `size` bytes with a 200 and then cut short: reqwest sees an
/// error, and a raw client fewer bytes than announced before the connection closes. Never
/// more than announced.
pub async fn expect_aborted(h: &Harness, job: u64, name: &str, size: u64) -> Vec<u8> {
    let response = h.get(&entry_path(job, name), Some(TOKEN)).await;
    assert_eq!(response.status(), 200, "job {job} {name}");
    assert_eq!(
        header(&response, "content-length"),
        Some(size.to_string().as_str()),
        "job {job} {name}"
    );
    let body = response.bytes().await;
    assert!(
        body.is_err(),
        "job {job} {name}: a bad entry was delivered as a complete body of {} bytes",
        body.unwrap().len()
    );

    let path = entry_path(job, name);
    let raw = raw_get(h, &path).await.response(&path);
    assert_eq!(raw.status, 200, "{}", raw.head);
    assert_eq!(raw.content_length(), Some(size), "{}", raw.head);
    assert!(!raw.is_chunked(), "{}", raw.head);
    assert!(
        (raw.body.len() as u64) < size,
        "job {job} {name}: {} of {size} bytes arrived: the abort came too late",
        raw.body.len()
    );
    raw.body
}

// ---------------------------------------------------------------------------------------
// Log capture: one global subscriber for this binary, installed by the first test that
// reads the log. Tests find their own lines by names no other test uses.

pub fn logs() -> &'static Captured {
    logs::capture("artifact_gateway=info")
}

/// A log line that contains every one of `needles`, waiting for it (the gateway logs an
/// abort as the body ends, which may be just after the client saw the connection close).
pub async fn log_line(needles: &[&str]) -> String {
    wait::wait_for(
        &format!("a log line with {needles:?}"),
        Duration::from_secs(5),
        || {
            logs()
                .text()
                .lines()
                .find(|line| needles.iter().all(|n| line.contains(n)))
                .map(str::to_owned)
        },
    )
    .await
}

/// The tail read (`zip.tail_bytes`) the round-trip tests configure, set explicitly so that
/// the expected storage reads do not depend on the gateway's default.
pub const TAIL: u64 = 128 * 1024;

/// A gateway on `kind` with jobs `jobs`, its storage reads counted, opening archives with
/// a `tail`-byte read.
pub async fn tapped(
    kind: crate::common::storage::Kind,
    jobs: std::ops::RangeInclusive<u64>,
    tail: u64,
) -> (Harness, Arc<Tap>) {
    let h = Harness::tapped(kind, backend(jobs), Tap::new, |c| c.zip.tail_bytes = tail).await;
    let tap = tap_of(&h);
    (h, tap)
}
