//! Single files out of archives written by real zip writers (the corpus under
//! `tests/fixtures/zip`, with sizes and SHA-256 taken from the source files, not from the
//! archives), over local and S3 storage.

mod common;

use common::storage::Kind;
use common::{header, Harness};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use sample_backend::{BackendBuilder, JobSpec, JobStatus, Visibility};
use sha2::{Digest, Sha256};

const TOKEN: &str = "demo-token";

/// Everything but unreserved characters and `/` is escaped, as clients do for paths.
const PATH: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'/');

#[derive(serde::Deserialize)]
struct Manifest {
    archives: Vec<Archive>,
}

#[derive(serde::Deserialize)]
struct Archive {
    file: String,
    entries: Vec<Entry>,
    directories: Vec<String>,
    absent: Vec<String>,
}

#[derive(serde::Deserialize)]
struct Entry {
    name: String,
    size: u64,
    sha256: String,
}

fn fixtures() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/zip")
}

fn manifest() -> Manifest {
    serde_json::from_slice(&std::fs::read(fixtures().join("manifest.json")).unwrap()).unwrap()
}

/// One public project, one successful job with an archive per corpus file (ids from 1).
async fn corpus_harness(kind: Kind, archives: &[Archive]) -> Harness {
    let mut backend = BackendBuilder::new().user("demo", TOKEN).project(
        1,
        "corpus/app",
        Visibility::Public,
        &["demo"],
    );
    for (i, _) in archives.iter().enumerate() {
        let id = i as u64 + 1;
        backend = backend.job(
            JobSpec::new(id, 1, "build", &format!("ref-{id}"), JobStatus::Success).with_archive(1),
        );
    }
    let h = Harness::on(kind, backend).await;
    for (i, archive) in archives.iter().enumerate() {
        let bytes = std::fs::read(fixtures().join(&archive.file)).unwrap();
        h.storage.put(&format!("1/{}/artifacts.zip", i + 1), &bytes);
    }
    h
}

async fn every_entry_of_every_archive_is_byte_exact(kind: Kind) {
    let archives = manifest().archives;
    assert!(archives.len() >= 15, "the corpus is incomplete");
    let h = corpus_harness(kind, &archives).await;
    let mut checked = 0;
    for (i, archive) in archives.iter().enumerate() {
        let job = i + 1;
        for entry in &archive.entries {
            let url = format!(
                "/projects/1/jobs/{job}/artifacts/{}",
                utf8_percent_encode(&entry.name, PATH)
            );
            let response = h.get(&url, Some(TOKEN)).await;
            assert_eq!(response.status(), 200, "{} {}", archive.file, entry.name);
            assert_eq!(
                header(&response, "content-length"),
                Some(entry.size.to_string().as_str()),
                "{} {}",
                archive.file,
                entry.name
            );
            let body = response
                .bytes()
                .await
                .unwrap_or_else(|e| panic!("{} {}: {e}", archive.file, entry.name));
            assert_eq!(
                body.len() as u64,
                entry.size,
                "{} {}",
                archive.file,
                entry.name
            );
            assert_eq!(
                hex(&Sha256::digest(&body)),
                entry.sha256,
                "{} {}",
                archive.file,
                entry.name
            );
            checked += 1;
        }
        for name in archive.directories.iter().chain(&archive.absent) {
            let url = format!(
                "/projects/1/jobs/{job}/artifacts/{}",
                utf8_percent_encode(name, PATH)
            );
            let response = h.get(&url, Some(TOKEN)).await;
            assert_eq!(response.status(), 404, "{} {name}", archive.file);
        }
        // By ref, through the raw endpoint, the same bytes.
        let first = &archive.entries[0];
        let url = format!(
            "/projects/1/jobs/artifacts/ref-{job}/raw/{}?job=build",
            utf8_percent_encode(&first.name, PATH)
        );
        let body = h.get(&url, Some(TOKEN)).await.bytes().await.unwrap();
        assert_eq!(
            hex(&Sha256::digest(&body)),
            first.sha256,
            "raw {} {}",
            archive.file,
            first.name
        );
    }
    assert!(checked > 300, "only {checked} entries checked");
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn corpus_on_local_storage() {
    every_entry_of_every_archive_is_byte_exact(Kind::Local).await;
}

#[tokio::test]
async fn corpus_on_s3_storage() {
    every_entry_of_every_archive_is_byte_exact(Kind::S3).await;
}

#[tokio::test]
async fn corpus_in_upstream_mode_behind_redirects() {
    every_entry_of_every_archive_is_byte_exact(Kind::Upstream).await;
}

#[tokio::test]
async fn corpus_in_upstream_mode_behind_proxied_downloads() {
    every_entry_of_every_archive_is_byte_exact(Kind::UpstreamProxy).await;
}
