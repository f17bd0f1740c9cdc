//! Generated zip bombs against the real binary: directories that declare more than they
//! hold or more than allowed, a 250 MiB central directory (under and over
//! `zip.max_directory_bytes`, and opened by three requests at once), overlapping entries,
//! and entries whose sizes lie, each with and without `Range`.
//!
//! Every case asserts the status and JSON body, that no byte from outside the entry is
//! ever served, the gateway's peak RSS (from `/proc`) and how long the case took. This
//! module holds what the cases share: the backend, the requests and their outcomes, and
//! the assertions on them; the archives come from [`zip_writer`].

use std::time::Duration;

use sample_backend::{BackendBuilder, JobSpec, JobStatus, SampleBackend, Visibility};

use crate::support::Gateway;

mod big_directory;
mod declared_counts;
mod lying_entries;
mod zip_writer;

/// Small cases must be answered within this, and stay under this much RSS growth.
const PROMPT: Duration = Duration::from_secs(10);
const SMALL_CASE_MIB: u64 = 48;

/// Public project 1 with successful jobs `jobs`, each with an archive.
async fn backend(jobs: impl IntoIterator<Item = u64>) -> SampleBackend {
    let mut backend = BackendBuilder::new().project(1, "g/app", Visibility::Public, &[]);
    for id in jobs {
        backend =
            backend.job(JobSpec::new(id, 1, "build", "main", JobStatus::Success).with_archive(1));
    }
    backend.start().await.expect("backend starts")
}

fn key(job: u64) -> String {
    format!("1/{job}/artifacts.zip")
}

fn entry_url(gateway: &Gateway, job: u64, name: &str) -> String {
    gateway.url(&format!("/projects/1/jobs/{job}/artifacts/{name}"))
}

/// A client patient enough for a cold 250 MiB directory in a debug build.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(300))
        .build()
        .unwrap()
}

/// What a request ended as: status, and the body or the error that cut it short.
#[derive(Debug)]
struct Outcome {
    status: u16,
    body: Result<Vec<u8>, String>,
}

async fn get(url: &str, range: Option<&str>) -> Outcome {
    let mut request = client().get(url);
    if let Some(range) = range {
        request = request.header("Range", range);
    }
    let response = request.send().await.expect("the gateway answers");
    let status = response.status().as_u16();
    let body = response
        .bytes()
        .await
        .map(|b| b.to_vec())
        .map_err(|e| e.to_string());
    Outcome { status, body }
}

/// A 502 whose GitLab-style JSON message contains `reason`.
fn assert_bad_archive(outcome: &Outcome, reason: &str, what: &str) {
    assert_eq!(outcome.status, 502, "{what}: {outcome:?}");
    let body = outcome.body.as_ref().expect("a complete error body");
    let json: serde_json::Value = serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {}", String::from_utf8_lossy(body)));
    let message = json["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("502 Bad Gateway - ") && message.contains(reason),
        "{what}: message {message:?} should name {reason:?}"
    );
}

/// `storage_read_bytes_total{kind}` from the admin listener.
async fn storage_bytes(gateway: &Gateway, kind: &str) -> u64 {
    let text = gateway.metrics().await;
    let needle = format!("storage_read_bytes_total{{kind=\"{kind}\"}} ");
    text.lines()
        .find_map(|l| {
            l.split_once(&needle)
                .map(|(_, v)| v.trim().parse().unwrap())
        })
        .unwrap_or(0)
}

/// Current RSS in MiB, the base a case's bound is added to.
fn base_mib(gateway: &Gateway) -> u64 {
    gateway.reset_peak();
    gateway.rss_kib() / 1024
}
