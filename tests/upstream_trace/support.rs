//! What the upstream log tests share: the jobs and their logs on the sample backend, the
//! gateway in front of it, requests for a job's log, and the checks of a 206 and a 416.

use artifact_gateway::config::ArtifactSource;
use reqwest::Method;
use sample_backend::{BackendBuilder, JobSpec, JobStatus, Visibility};

use crate::common::{header, json, Harness, TOKEN};

/// Finished, with a long log.
pub(crate) const FINISHED: u64 = 11;
/// Running (its job token is live), with a long log.
pub(crate) const RUNNING: u64 = 12;
/// Finished, with an empty log.
pub(crate) const EMPTY: u64 = 13;

/// A log of a few hundred KiB with multi-byte UTF-8 on every line, so that ranges cut
/// through characters and the body spans many chunks.
pub(crate) fn log_of(job: u64) -> String {
    let log: String = (0..8000)
        .map(|i| format!("job {job} line {i:05}: ünïcode ✓ 日本語 — step {}\n", i % 7))
        .collect();
    assert!(log.len() > 300 * 1024 && !log.is_ascii());
    log
}

pub(crate) fn backend() -> BackendBuilder {
    BackendBuilder::new()
        .user("demo", TOKEN)
        .user("outsider", "outsider-token")
        .project(1, "group/app", Visibility::Private, &["demo"])
        .job(
            JobSpec::new(FINISHED, 1, "build", "main", JobStatus::Success).trace(&log_of(FINISHED)),
        )
        .job(JobSpec::new(RUNNING, 1, "test", "main", JobStatus::Running).trace(&log_of(RUNNING)))
        .job(JobSpec::new(EMPTY, 1, "lint", "main", JobStatus::Success).trace(""))
        .gitlab_job_token_rules()
}

pub(crate) async fn harness() -> Harness {
    Harness::start_with(backend(), |config| {
        config.artifacts.source = ArtifactSource::Upstream;
    })
    .await
}

pub(crate) fn trace_path(job: u64) -> String {
    format!("/api/v4/projects/1/jobs/{job}/trace")
}

pub(crate) async fn send(
    h: &Harness,
    method: Method,
    job: u64,
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let mut request = h
        .client
        .request(method, h.url(&format!("/projects/1/jobs/{job}/trace")));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.expect("request reaches the gateway")
}

pub(crate) async fn get(h: &Harness, job: u64, headers: &[(&str, &str)]) -> reqwest::Response {
    send(h, Method::GET, job, headers).await
}

/// A GET as `demo` with `Range: range`.
pub(crate) async fn ranged(h: &Harness, job: u64, range: &str) -> reqwest::Response {
    get(h, job, &[("PRIVATE-TOKEN", TOKEN), ("Range", range)]).await
}

pub(crate) fn assert_partial(response: &reqwest::Response, first: usize, last: usize, size: usize) {
    assert_eq!(response.status(), 206);
    let content_range = format!("bytes {first}-{last}/{size}");
    assert_eq!(
        header(response, "content-range"),
        Some(content_range.as_str())
    );
    let length = (last - first + 1).to_string();
    assert_eq!(header(response, "content-length"), Some(length.as_str()));
    assert_eq!(header(response, "accept-ranges"), Some("bytes"));
    assert_eq!(header(response, "content-type"), Some("text/plain"));
}

pub(crate) async fn assert_unsatisfiable(response: reqwest::Response, size: usize) {
    assert_eq!(response.status(), 416);
    let content_range = format!("bytes */{size}");
    assert_eq!(
        header(&response, "content-range"),
        Some(content_range.as_str())
    );
    assert_eq!(
        json(response).await,
        serde_json::json!({"message": "416 Range Not Satisfiable"})
    );
}
