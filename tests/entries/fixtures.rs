//! The zip corpus under `tests/fixtures/zip` served as job archives, with expected bytes
//! from its manifest (sha256 of the source files) or from an independent zip reader, and
//! requests read to the end (through reqwest, or raw when the target must be sent as is).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use http::{HeaderMap, Method};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use sample_backend::{BackendBuilder, JobSpec, JobStatus, Visibility};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::common::storage::{Kind, Tap};
use crate::common::{fixture, raw, Harness, TOKEN};

/// Job `i + 1` of project 1 (ref `ref-{i + 1}`, name `build`) has archive `FIXTURES[i]`.
pub const FIXTURES: &[&str] = &[
    "python-deflate.zip",
    "python-stored.zip",
    "infozip-r.zip",
    "cp437.zip",
    "7zip-unicode-path.zip",
    "7zip-deflate.zip",
    "jar.zip",
    "infozip-pipe.zip",
    "infozip-stdin.zip",
    "python-bzip2.zip",
    "7zip-lzma.zip",
    "7zip-xz.zip",
    "7zip-deflate64.zip",
    "bsdtar-stored.zip",
    "python-zip64.zip",
    "python-lzma.zip",
    "7zip-bzip2.zip",
    "go.zip",
    "bsdtar.zip",
];

/// Jobs the backend lists with an archive that the tests put (patched) themselves, or not.
pub const ENCRYPTED_JOB: u64 = 90;
pub const UNKNOWN_METHOD_JOB: u64 = 91;

/// Everything but unreserved characters and `/` is escaped, as clients do for paths.
pub const PATH: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'/');

pub use crate::common::corpus::{manifest, Archive, Entry};

pub fn archive(file: &str) -> &'static Archive {
    manifest()
        .archives
        .iter()
        .find(|a| a.file == file)
        .unwrap_or_else(|| panic!("{file} is not in the manifest"))
}

pub fn entry(file: &str, name: &str) -> &'static Entry {
    archive(file)
        .entries
        .iter()
        .find(|e| e.name == name)
        .unwrap_or_else(|| panic!("{file} has no {name:?} in the manifest"))
}

/// An entry's bytes read by the `zip` crate, checked against the manifest.
pub fn reference(file: &str, name: &str) -> Vec<u8> {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(fixture(file))).unwrap();
    let mut entry_reader = zip.by_name(name).unwrap();
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut entry_reader, &mut bytes).unwrap();
    assert_eq!(sha(&bytes), entry(file, name).sha256, "{file} {name}");
    bytes
}

pub fn job(file: &str) -> u64 {
    FIXTURES
        .iter()
        .position(|f| *f == file)
        .unwrap_or_else(|| panic!("{file} is not served")) as u64
        + 1
}

/// One public project `corpus/app` (1) whose jobs `ids` (ref `ref-{id}`, name `build`)
/// have archives.
pub fn corpus_backend(ids: impl IntoIterator<Item = u64>) -> BackendBuilder {
    let mut backend = BackendBuilder::new().user("demo", TOKEN).project(
        1,
        "corpus/app",
        Visibility::Public,
        &["demo"],
    );
    for id in ids {
        backend = backend.job(
            JobSpec::new(id, 1, "build", &format!("ref-{id}"), JobStatus::Success).with_archive(1),
        );
    }
    backend
}

fn backend() -> BackendBuilder {
    corpus_backend((1..=FIXTURES.len() as u64).chain([ENCRYPTED_JOB, UNKNOWN_METHOD_JOB]))
}

fn put_fixtures(h: &Harness) {
    for (i, file) in FIXTURES.iter().enumerate() {
        h.storage
            .put(&format!("1/{}/artifacts.zip", i + 1), &fixture(file));
    }
}

/// A gateway on `kind` serving [`FIXTURES`].
pub async fn harness(kind: Kind) -> Harness {
    let h = Harness::on(kind, backend()).await;
    put_fixtures(&h);
    h
}

/// A gateway whose storage reads are counted. Archives open with the smallest tail the
/// configuration allows (1 KiB), so no fixture entry's data lies in the cached tail and
/// every entry byte served is a byte read from storage.
pub async fn tapped(kind: Kind) -> (Harness, Arc<Tap>) {
    let h = Harness::tapped(kind, backend(), Tap::new, |config| {
        config.zip.tail_bytes = 1024
    })
    .await;
    put_fixtures(&h);
    let tap = h.tap.clone().expect("a tapped harness");
    (h, tap)
}

/// (storage requests, storage bytes read) so far.
pub fn reads(tap: &Tap) -> (usize, u64) {
    (tap.requests(), tap.bytes_read.load(Ordering::SeqCst))
}

pub fn sha(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub fn enc(name: &str) -> String {
    utf8_percent_encode(name, PATH).to_string()
}

/// `GET /projects/1/jobs/:job/artifacts/*path`, `raw` already encoded.
pub fn by_job(job: u64, raw: &str) -> String {
    format!("/projects/1/jobs/{job}/artifacts/{raw}")
}

/// `GET /projects/1/jobs/artifacts/ref-:job/raw/*path?job=build`, `raw` already encoded.
pub fn by_ref(job: u64, raw: &str) -> String {
    format!("/projects/1/jobs/artifacts/ref-{job}/raw/{raw}?job=build")
}

/// A response read to the end.
pub struct Got {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Got {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body[..self.body.len().min(200)])
            )
        })
    }

    /// The headers GitLab puts on every API answer, whatever the status.
    pub fn assert_hardened(&self, what: &str) {
        assert_eq!(
            self.header("x-content-type-options"),
            Some("nosniff"),
            "{what} ({})",
            self.status
        );
        assert_eq!(
            self.header("content-security-policy"),
            Some("default-src 'none'"),
            "{what} ({})",
            self.status
        );
    }

    pub fn etag(&self) -> String {
        let etag = self.header("etag").expect("an ETag").to_owned();
        assert!(
            etag.len() > 2 && etag.starts_with('"') && etag.ends_with('"'),
            "{etag}"
        );
        etag
    }
}

pub async fn send(h: &Harness, method: Method, path: &str, headers: &[(&str, &str)]) -> Got {
    let mut request = h.request(method.clone(), path);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request
        .send()
        .await
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response
        .bytes()
        .await
        .unwrap_or_else(|e| panic!("{method} {path}: body: {e}"))
        .to_vec();
    Got {
        status,
        headers,
        body,
    }
}

pub async fn get(h: &Harness, path: &str, headers: &[(&str, &str)]) -> Got {
    send(h, Method::GET, path, headers).await
}

pub async fn head(h: &Harness, path: &str, headers: &[(&str, &str)]) -> Got {
    send(h, Method::HEAD, path, headers).await
}

/// One HTTP/1.1 exchange over a plain TCP connection, with the request target sent exactly
/// as given (HTTP clients normalise `..` and `%2e%2e` segments away before sending).
pub async fn raw_request(h: &Harness, method: &str, target: &[u8]) -> Got {
    let response = raw::send(
        h.gateway.addr(),
        method,
        target,
        &[("PRIVATE-TOKEN", TOKEN)],
    )
    .await;
    assert!(
        method == "HEAD" || response.complete,
        "{method} {}: the body was cut",
        String::from_utf8_lossy(target)
    );
    Got {
        status: response.status,
        headers: response.headers,
        body: response.body,
    }
}

pub fn not_found() -> serde_json::Value {
    json!({"message": "404 Not Found"})
}

pub fn bad_request() -> serde_json::Value {
    json!({"message": "400 Bad request"})
}
