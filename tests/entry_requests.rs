//! Single files out of archives, request by request: how artifact paths are decoded and
//! refused, the headers of the by-job and raw-by-ref endpoints, validators, ranges of stored
//! and compressed entries (with the storage bytes they cost), and entries the gateway cannot
//! decode. Expected bytes come from the fixture manifest (sha256 of the source files) or from
//! an independent zip reader; every storage-dependent test runs on local storage and on the
//! in-process S3 server.

#[macro_use]
mod common;

use common::fixture;

use std::collections::BTreeSet;
use std::ops::Range;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use common::storage::{Kind, Tap};
use common::Harness;
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use sample_backend::{BackendBuilder, JobSpec, JobStatus, Visibility};
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const TOKEN: &str = "demo-token";

/// Job `i + 1` of project 1 (ref `ref-{i + 1}`, name `build`) has archive `FIXTURES[i]`.
const FIXTURES: &[&str] = &[
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
const ENCRYPTED_JOB: u64 = 90;
const UNKNOWN_METHOD_JOB: u64 = 91;

/// Everything but unreserved characters and `/` is escaped, as clients do for paths.
const PATH: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'/');

on_every_source! {
    names_with_reserved_characters => reserved_characters;
    unicode_names_in_every_encoding => unicode_names;
    traversal_nul_and_bad_utf8_are_400 => bad_paths;
    directories_and_missing_names_are_404 => directories_and_missing;
    by_job_headers => by_job_headers;
    raw_by_ref_shows_only_safe_types_inline => raw_by_ref_presentation;
    every_answer_carries_the_security_headers => every_answer_is_hardened;
    a_replaced_archive_has_new_etags => replaced_archive;
    etags_identify_entry_and_archive => etags;
    compressed_entry_ranges_are_exact => compressed_ranges;
    unsatisfiable_and_ignored_ranges => unsatisfiable_and_ignored_ranges;
    if_range => if_range;
    encrypted_and_unknown_method_entries_are_501 => unsupported_entries;
}

// These count storage reads at a store wrapper, which upstream mode does not use; its
// round trips are counted at the S3 server in tests/upstream.rs.
on_both_storages! {
    if_none_match_is_304_without_a_storage_read => if_none_match;
    head_reads_nothing_once_the_archive_is_open => head_reads_nothing;
    stored_entry_ranges_read_about_the_range => stored_ranges;
}

// ---------------------------------------------------------------------------------------
// Fixtures and harness

#[derive(serde::Deserialize)]
struct Manifest {
    archives: Vec<Archive>,
}

#[derive(serde::Deserialize)]
struct Archive {
    file: String,
    entries: Vec<Entry>,
}

#[derive(serde::Deserialize, Clone)]
struct Entry {
    name: String,
    size: u64,
    sha256: String,
    name_encoding: String,
}

fn manifest() -> &'static Manifest {
    static MANIFEST: OnceLock<Manifest> = OnceLock::new();
    MANIFEST.get_or_init(|| serde_json::from_slice(&fixture("manifest.json")).unwrap())
}

fn archive(file: &str) -> &'static Archive {
    manifest()
        .archives
        .iter()
        .find(|a| a.file == file)
        .unwrap_or_else(|| panic!("{file} is not in the manifest"))
}

fn entry(file: &str, name: &str) -> &'static Entry {
    archive(file)
        .entries
        .iter()
        .find(|e| e.name == name)
        .unwrap_or_else(|| panic!("{file} has no {name:?} in the manifest"))
}

/// An entry's bytes read by the `zip` crate, checked against the manifest.
fn reference(file: &str, name: &str) -> Vec<u8> {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(fixture(file))).unwrap();
    let mut entry_reader = zip.by_name(name).unwrap();
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut entry_reader, &mut bytes).unwrap();
    assert_eq!(sha(&bytes), entry(file, name).sha256, "{file} {name}");
    bytes
}

fn job(file: &str) -> u64 {
    FIXTURES
        .iter()
        .position(|f| *f == file)
        .unwrap_or_else(|| panic!("{file} is not served")) as u64
        + 1
}

fn backend() -> BackendBuilder {
    let mut backend = BackendBuilder::new().user("demo", TOKEN).project(
        1,
        "corpus/app",
        Visibility::Public,
        &["demo"],
    );
    let ids = (1..=FIXTURES.len() as u64).chain([ENCRYPTED_JOB, UNKNOWN_METHOD_JOB]);
    for id in ids {
        backend = backend.job(
            JobSpec::new(id, 1, "build", &format!("ref-{id}"), JobStatus::Success).with_archive(1),
        );
    }
    backend
}

fn put_fixtures(h: &Harness) {
    for (i, file) in FIXTURES.iter().enumerate() {
        h.storage
            .put(&format!("1/{}/artifacts.zip", i + 1), &fixture(file));
    }
}

async fn harness(kind: Kind) -> Harness {
    let h = Harness::on(kind, backend()).await;
    put_fixtures(&h);
    h
}

/// A gateway whose storage reads are counted. Archives open with the smallest tail the
/// configuration allows (1 KiB), so no fixture entry's data lies in the cached tail and
/// every entry byte served is a byte read from storage.
async fn tapped(kind: Kind) -> (Harness, Arc<Tap>) {
    let h = Harness::tapped(kind, backend(), Tap::new, |config| {
        config.zip.tail_bytes = 1024
    })
    .await;
    put_fixtures(&h);
    let tap = h.tap.clone().expect("a tapped harness");
    (h, tap)
}

/// (storage requests, storage bytes read) so far.
fn reads(tap: &Tap) -> (usize, u64) {
    (tap.requests(), tap.bytes_read.load(Ordering::SeqCst))
}

fn sha(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn enc(name: &str) -> String {
    utf8_percent_encode(name, PATH).to_string()
}

/// `GET /projects/1/jobs/:job/artifacts/*path`, `raw` already encoded.
fn by_job(job: u64, raw: &str) -> String {
    format!("/projects/1/jobs/{job}/artifacts/{raw}")
}

/// `GET /projects/1/jobs/artifacts/ref-:job/raw/*path?job=build`, `raw` already encoded.
fn by_ref(job: u64, raw: &str) -> String {
    format!("/projects/1/jobs/artifacts/ref-{job}/raw/{raw}?job=build")
}

// ---------------------------------------------------------------------------------------
// Requests

/// A response read to the end.
struct Got {
    status: u16,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Got {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body[..self.body.len().min(200)])
            )
        })
    }

    /// The headers GitLab puts on every API answer, whatever the status.
    fn assert_hardened(&self, what: &str) {
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

    fn etag(&self) -> String {
        let etag = self.header("etag").expect("an ETag").to_owned();
        assert!(
            etag.len() > 2 && etag.starts_with('"') && etag.ends_with('"'),
            "{etag}"
        );
        etag
    }
}

async fn send(h: &Harness, method: Method, path: &str, headers: &[(&str, &str)]) -> Got {
    let mut request = h
        .client
        .request(method.clone(), h.url(path))
        .header("PRIVATE-TOKEN", TOKEN);
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

async fn get(h: &Harness, path: &str, headers: &[(&str, &str)]) -> Got {
    send(h, Method::GET, path, headers).await
}

async fn head(h: &Harness, path: &str, headers: &[(&str, &str)]) -> Got {
    send(h, Method::HEAD, path, headers).await
}

/// One HTTP/1.1 exchange over a plain TCP connection, with the request target sent exactly
/// as given (HTTP clients normalise `..` and `%2e%2e` segments away before sending).
async fn raw_request(h: &Harness, method: &str, target: &[u8]) -> Got {
    let addr = h.gateway.addr();
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let mut request = format!("{method} ").into_bytes();
    request.extend_from_slice(target);
    request.extend_from_slice(
        format!(" HTTP/1.1\r\nHost: {addr}\r\nPRIVATE-TOKEN: {TOKEN}\r\nConnection: close\r\n\r\n")
            .as_bytes(),
    );
    stream.write_all(&request).await.unwrap();
    let mut bytes = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut bytes))
        .await
        .expect("the gateway answers and closes")
        .unwrap();
    parse_response(&bytes)
}

fn parse_response(bytes: &[u8]) -> Got {
    let end = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no response head in {:?}", String::from_utf8_lossy(bytes)));
    let head = String::from_utf8_lossy(&bytes[..end]);
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("bad status line in {head:?}"));
    let mut headers = HeaderMap::new();
    for line in lines {
        let (name, value) = line.split_once(':').expect("a header line");
        headers.append(
            HeaderName::from_bytes(name.trim().as_bytes()).unwrap(),
            HeaderValue::from_bytes(value.trim().as_bytes()).unwrap(),
        );
    }
    let rest = &bytes[end + 4..];
    let chunked = headers
        .get("transfer-encoding")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"chunked"));
    let body = if chunked {
        dechunk(rest)
    } else {
        rest.to_vec()
    };
    Got {
        status,
        headers,
        body,
    }
}

fn dechunk(mut rest: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("a chunk size line");
        let size_text = String::from_utf8_lossy(&rest[..line_end]);
        let size_text = size_text.split(';').next().unwrap().trim();
        let size = usize::from_str_radix(size_text, 16).expect("a hex chunk size");
        rest = &rest[line_end + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

fn not_found() -> serde_json::Value {
    json!({"message": "404 Not Found"})
}

fn bad_request() -> serde_json::Value {
    json!({"message": "400 Bad request"})
}

// ---------------------------------------------------------------------------------------
// 1. Paths

async fn reserved_characters(kind: Kind) {
    let h = harness(kind).await;
    let file = "python-deflate.zip";
    let job = job(file);
    // (as sent in the URL path, the entry it names)
    let found = [
        ("names/with%20space.txt", "names/with space.txt"),
        ("names/hash%23sign.txt", "names/hash#sign.txt"),
        ("names/question%3F.txt", "names/question?.txt"),
        ("names/plus+sign.txt", "names/plus+sign.txt"),
        ("names/plus%2Bsign.txt", "names/plus+sign.txt"),
        // A literal `%2F` in the entry name is sent as `%252F`.
        ("names/percent%252Fname.txt", "names/percent%2Fname.txt"),
        // An encoded slash in the file path is a slash.
        ("names%2Fwith%20space.txt", "names/with space.txt"),
        ("dir%2Fnested%2Fdeep.txt", "dir/nested/deep.txt"),
    ];
    for (raw, name) in found {
        let want = entry(file, name);
        for url in [by_job(job, raw), by_ref(job, raw)] {
            let got = get(&h, &url, &[]).await;
            assert_eq!(got.status, 200, "{url}");
            assert_eq!(
                got.header("content-length"),
                Some(want.size.to_string().as_str()),
                "{url}"
            );
            assert_eq!(sha(&got.body), want.sha256, "{url}");
            got.assert_hardened(&url);
        }
    }
    // The project named by its encoded path: the same entry.
    let want = entry(file, "names/with space.txt");
    for url in [
        format!("/projects/corpus%2Fapp/jobs/{job}/artifacts/names/with%20space.txt"),
        format!(
            "/projects/corpus%2Fapp/jobs/artifacts/ref-{job}/raw/names/with%20space.txt?job=build"
        ),
    ] {
        let got = get(&h, &url, &[]).await;
        assert_eq!(got.status, 200, "{url}");
        assert_eq!(sha(&got.body), want.sha256, "{url}");
    }
    let missing = [
        // `percent%2Fname.txt` with a real slash: another name.
        "names/percent/name.txt",
        "names/percent%2Fname.txt",
        // `+` is not a space in a path, nor a space a `+`.
        "names/with+space.txt",
        "names/plus%20sign.txt",
    ];
    for raw in missing {
        for url in [by_job(job, raw), by_ref(job, raw)] {
            let got = get(&h, &url, &[]).await;
            assert_eq!(got.status, 404, "{url}");
            assert_eq!(got.json(), not_found(), "{url}");
            got.assert_hardened(&url);
        }
    }
}

async fn unicode_names(kind: Kind) {
    let h = harness(kind).await;
    let mut encodings = BTreeSet::new();
    for file in [
        "python-deflate.zip",
        "jar.zip",
        "infozip-r.zip",
        "7zip-unicode-path.zip",
        "cp437.zip",
    ] {
        let job = job(file);
        let mut checked = 0;
        for e in archive(file).entries.iter().filter(|e| !e.name.is_ascii()) {
            for url in [by_job(job, &enc(&e.name)), by_ref(job, &enc(&e.name))] {
                let got = get(&h, &url, &[]).await;
                assert_eq!(got.status, 200, "{file}: {url}");
                assert_eq!(
                    got.header("content-length"),
                    Some(e.size.to_string().as_str()),
                    "{file}: {url}"
                );
                assert_eq!(sha(&got.body), e.sha256, "{file}: {url}");
            }
            encodings.insert(e.name_encoding.as_str());
            checked += 1;
        }
        assert!(checked >= 2, "{file}: only {checked} non-ASCII names");
    }
    for encoding in ["utf8-flag", "utf8-no-flag", "unicode-path-extra", "cp437"] {
        assert!(encodings.contains(encoding), "no {encoding} name checked");
    }

    // Names are byte-exact: another Unicode spelling or the CP437 reading of the raw UTF-8
    // bytes finds nothing.
    let unflagged = job("infozip-r.zip");
    for name in [
        "names/e\u{301}te\u{301}.txt",
        "names/\u{251c}\u{2310}t\u{251c}\u{2310}.txt",
        "NAMES/ÉTÉ.txt",
    ] {
        let got = get(&h, &by_job(unflagged, &enc(name)), &[]).await;
        assert_eq!(got.status, 404, "{name}");
        assert_eq!(got.json(), not_found(), "{name}");
    }
    let unicode_path = job("7zip-unicode-path.zip");
    let got = get(
        &h,
        &by_job(
            unicode_path,
            &enc("names/\u{251c}\u{2310}t\u{251c}\u{2310}.txt"),
        ),
        &[],
    )
    .await;
    assert_eq!(got.status, 404);

    // Raw UTF-8 in the request line (no percent-encoding) names the same entry.
    let e = entry("infozip-r.zip", "names/été.txt");
    let target = format!("/api/v4{}", by_job(unflagged, "names/été.txt"));
    let got = raw_request(&h, "GET", target.as_bytes()).await;
    assert_eq!(got.status, 200, "{target}");
    assert_eq!(sha(&got.body), e.sha256);

    // A CP437 name spelled with its raw byte (`caf\x82.txt`) is not UTF-8: refused.
    let cp437 = job("cp437.zip");
    for url in [by_job(cp437, "caf%82.txt"), by_ref(cp437, "caf%82.txt")] {
        let got = get(&h, &url, &[]).await;
        assert_eq!(got.status, 400, "{url}");
        assert_eq!(got.json(), bad_request(), "{url}");
    }
    let e = entry("cp437.zip", "café.txt");
    let got = get(&h, &by_job(cp437, "caf%C3%A9.txt"), &[]).await;
    assert_eq!(got.status, 200);
    assert_eq!(sha(&got.body), e.sha256);
}

async fn bad_paths(kind: Kind) {
    let h = harness(kind).await;
    let file = "python-deflate.zip";
    let job = job(file);
    let deep = entry(file, "dir/nested/deep.txt");
    // The raw client itself reaches files.
    for url in [
        by_job(job, "dir/nested/deep.txt"),
        by_ref(job, "dir/nested/deep.txt"),
    ] {
        let got = raw_request(&h, "GET", format!("/api/v4{url}").as_bytes()).await;
        assert_eq!(got.status, 200, "{url}");
        assert_eq!(sha(&got.body), deep.sha256, "{url}");
    }

    h.backend.clear_requests();
    let bad = [
        "../hello.txt",
        "../../../../2/artifacts",
        "%2e%2e/hello.txt",
        "%2E%2E/hello.txt",
        ".%2e/hello.txt",
        "%2e./hello.txt",
        "dir/../hello.txt",
        "dir/%2e%2e/hello.txt",
        "dir%2F..%2Fhello.txt",
        "dir/nested/../../hello.txt",
        "./hello.txt",
        "%2e/hello.txt",
        "dir/./nested/deep.txt",
        "dir/nested/.",
        "dir/..",
        "..",
        ".",
        "hello.txt%00",
        "hello%00.txt",
        "%00",
        "%FF",
        "hello%FF.txt",
        "names/%C3.txt",
        "names/%C3%28.txt",
    ];
    for path in bad {
        for url in [by_job(job, path), by_ref(job, path)] {
            let target = format!("/api/v4{url}");
            for method in ["GET", "HEAD"] {
                let got = raw_request(&h, method, target.as_bytes()).await;
                assert_eq!(got.status, 400, "{method} {target}");
                if method == "GET" {
                    assert_eq!(got.json(), bad_request(), "{method} {target}");
                } else {
                    assert!(got.body.is_empty(), "{method} {target}");
                }
                got.assert_hardened(&target);
            }
        }
    }
    // A ref with a `..` segment, however spelled, is refused the same way.
    for ref_raw in ["..%2Fref-1", "%2e%2e", "ref-1%2F..%2Fref-1"] {
        let target = format!("/api/v4/projects/1/jobs/artifacts/{ref_raw}/raw/hello.txt?job=build");
        let got = raw_request(&h, "GET", target.as_bytes()).await;
        assert_eq!(got.status, 400, "{target}");
        assert_eq!(got.json(), bad_request(), "{target}");
    }
    // Refused before anyone is asked about the job.
    let asked: Vec<String> = h
        .backend
        .requests()
        .iter()
        .map(|r| format!("{} {}", r.method, r.path_and_query))
        .collect();
    assert!(asked.is_empty(), "the backend was asked: {asked:?}");

    // Dots that are not whole segments are ordinary characters: looked up, absent.
    for path in [
        "..hello.txt",
        "hello.txt..",
        "dir/...",
        ".../hello.txt",
        ".hidden",
    ] {
        for url in [by_job(job, path), by_ref(job, path)] {
            let target = format!("/api/v4{url}");
            let got = raw_request(&h, "GET", target.as_bytes()).await;
            assert_eq!(got.status, 404, "{target}");
            assert_eq!(got.json(), not_found(), "{target}");
        }
    }
}

async fn directories_and_missing(kind: Kind) {
    let h = harness(kind).await;
    // python-deflate.zip has `dir/`-style entries; infozip-pipe.zip has none, so its
    // directories exist only as prefixes of entry names.
    for file in ["python-deflate.zip", "infozip-pipe.zip"] {
        let job = job(file);
        let deep = entry(file, "dir/nested/deep.txt");
        let got = get(&h, &by_job(job, "dir/nested/deep.txt"), &[]).await;
        assert_eq!((got.status, sha(&got.body)), (200, deep.sha256.clone()));
        let names = [
            "dir/",
            "dir",
            "dir/nested/",
            "dir/nested",
            "emptydir/",
            "emptydir",
            "names/",
            "names",
            "text/",
            "not/here.txt",
            "HELLO.TXT",
            "hello.txt/",
            "dir/nested/deep.txt/",
            "dir//nested/deep.txt",
            "%2Fhello.txt",
            "hello.tx",
            "hello.txt%20",
        ];
        for name in names {
            for url in [by_job(job, name), by_ref(job, name)] {
                let got = get(&h, &url, &[]).await;
                assert_eq!(got.status, 404, "{file}: {url}");
                assert_eq!(got.json(), not_found(), "{file}: {url}");
                got.assert_hardened(&url);
                let got = head(&h, &url, &[]).await;
                assert_eq!(got.status, 404, "HEAD {file}: {url}");
                assert!(got.body.is_empty(), "HEAD {file}: {url}");
            }
        }
    }
    // A job the backend says has an archive that storage does not hold.
    let got = get(&h, &by_job(ENCRYPTED_JOB, "hello.txt"), &[]).await;
    assert_eq!(got.status, 404);
    assert_eq!(got.json(), not_found());
}

// ---------------------------------------------------------------------------------------
// 2. Headers

/// `attachment; filename="<ASCII fallback>"; filename*=UTF-8''<star>`; the fallback is the
/// base name itself when that is plain ASCII.
fn assert_attachment(disposition: &str, base_name: &str, star: &str) {
    let fallback = disposition
        .strip_prefix("attachment; filename=\"")
        .and_then(|rest| rest.strip_suffix(&format!("\"; filename*=UTF-8''{star}")))
        .unwrap_or_else(|| panic!("{base_name}: {disposition}"));
    assert!(
        fallback.is_ascii() && !fallback.contains('"') && !fallback.is_empty(),
        "{base_name}: {disposition}"
    );
    if base_name.is_ascii() {
        assert_eq!(fallback, base_name, "{disposition}");
    }
}

async fn by_job_headers(kind: Kind) {
    let h = harness(kind).await;
    // (archive, entry, Content-Type, filename* value)
    let cases = [
        (
            "python-deflate.zip",
            "site/index.html",
            "text/html",
            "index.html",
        ),
        (
            "python-deflate.zip",
            "site/logo.svg",
            "image/svg+xml",
            "logo.svg",
        ),
        (
            "python-deflate.zip",
            "site/image.png",
            "image/png",
            "image.png",
        ),
        (
            "python-deflate.zip",
            "docs/report.pdf",
            "application/pdf",
            "report.pdf",
        ),
        ("python-deflate.zip", "hello.txt", "text/plain", "hello.txt"),
        (
            "python-deflate.zip",
            "data/random.bin",
            "application/octet-stream",
            "random.bin",
        ),
        ("infozip-stdin.zip", "-", "application/octet-stream", "-"),
        (
            "python-deflate.zip",
            "names/with space.txt",
            "text/plain",
            "with%20space.txt",
        ),
        (
            "python-deflate.zip",
            "names/hash#sign.txt",
            "text/plain",
            "hash%23sign.txt",
        ),
        (
            "python-deflate.zip",
            "names/question?.txt",
            "text/plain",
            "question%3F.txt",
        ),
        (
            "python-deflate.zip",
            "names/plus+sign.txt",
            "text/plain",
            "plus+sign.txt",
        ),
        (
            "python-deflate.zip",
            "names/été.txt",
            "text/plain",
            "%C3%A9t%C3%A9.txt",
        ),
        (
            "python-deflate.zip",
            "names/日本語.txt",
            "text/plain",
            "%E6%97%A5%E6%9C%AC%E8%AA%9E.txt",
        ),
        ("cp437.zip", "naïve/ü.txt", "text/plain", "%C3%BC.txt"),
    ];
    for (file, name, content_type, star) in cases {
        let e = entry(file, name);
        let url = by_job(job(file), &enc(name));
        let base_name = name.rsplit('/').next().unwrap();
        let got = get(&h, &url, &[]).await;
        assert_eq!(got.status, 200, "{url}");
        assert_eq!(got.header("content-type"), Some(content_type), "{url}");
        assert_attachment(
            got.header("content-disposition").expect("a disposition"),
            base_name,
            star,
        );
        assert_eq!(
            got.header("content-length"),
            Some(e.size.to_string().as_str()),
            "{url}"
        );
        assert_eq!(got.header("accept-ranges"), Some("bytes"), "{url}");
        assert_eq!(got.header("content-range"), None, "{url}");
        let etag = got.etag();
        got.assert_hardened(&url);
        assert_eq!(sha(&got.body), e.sha256, "{url}");

        // HEAD: the same headers, no body.
        let headed = head(&h, &url, &[]).await;
        assert_eq!(headed.status, 200, "HEAD {url}");
        for name in [
            "content-type",
            "content-disposition",
            "content-length",
            "accept-ranges",
        ] {
            assert_eq!(headed.header(name), got.header(name), "HEAD {url}: {name}");
        }
        assert_eq!(headed.etag(), etag, "HEAD {url}");
        assert!(headed.body.is_empty(), "HEAD {url}");
        headed.assert_hardened(&url);
    }
}

async fn raw_by_ref_presentation(kind: Kind) {
    let h = harness(kind).await;
    let file = "python-deflate.zip";
    let job = job(file);
    // (entry, Content-Type, inline)
    let cases = [
        ("site/index.html", "text/html", false),
        ("site/logo.svg", "image/svg+xml", false),
        ("site/image.png", "image/png", true),
        ("docs/report.pdf", "application/pdf", true),
        ("hello.txt", "text/plain; charset=utf-8", true),
        ("site/style.css", "text/plain; charset=utf-8", true),
        ("names/été.txt", "text/plain; charset=utf-8", true),
        ("data/random.bin", "application/octet-stream", false),
    ];
    for (name, content_type, inline) in cases {
        let e = entry(file, name);
        let url = by_ref(job, &enc(name));
        let got = get(&h, &url, &[]).await;
        assert_eq!(got.status, 200, "{url}");
        assert_eq!(got.header("content-type"), Some(content_type), "{url}");
        let disposition = got.header("content-disposition").expect("a disposition");
        if inline {
            assert_eq!(disposition, "inline", "{url}");
        } else {
            let base_name = name.rsplit('/').next().unwrap();
            assert_attachment(disposition, base_name, base_name);
        }
        assert_eq!(
            got.header("content-length"),
            Some(e.size.to_string().as_str()),
            "{url}"
        );
        assert_eq!(got.header("accept-ranges"), Some("bytes"), "{url}");
        got.etag();
        got.assert_hardened(&url);
        assert_eq!(sha(&got.body), e.sha256, "{url}");

        // By job id the same entry is always a download.
        let by_id = get(&h, &by_job(job, &enc(name)), &[]).await;
        assert!(
            by_id
                .header("content-disposition")
                .is_some_and(|d| d.starts_with("attachment; ")),
            "{name}: {:?}",
            by_id.header("content-disposition")
        );
    }
    // Scripts are downloads whatever name mime_guess gives their type.
    let url = by_ref(job, "site/app.js");
    let got = get(&h, &url, &[]).await;
    assert_eq!(got.status, 200);
    assert!(
        got.header("content-type")
            .is_some_and(|t| t.contains("javascript")),
        "{:?}",
        got.header("content-type")
    );
    assert_attachment(
        got.header("content-disposition").unwrap(),
        "app.js",
        "app.js",
    );
    assert_eq!(sha(&got.body), entry(file, "site/app.js").sha256);
    got.assert_hardened(&url);
}

async fn every_answer_is_hardened(kind: Kind) {
    let h = harness(kind).await;
    h.storage.put(
        &format!("1/{ENCRYPTED_JOB}/artifacts.zip"),
        &patched("python-deflate.zip", "hello.txt", Patch::Encrypted),
    );
    let job = job("python-deflate.zip");
    let hello = by_job(job, "hello.txt");
    let etag = get(&h, &hello, &[]).await.etag();
    let mut statuses = BTreeSet::new();
    let answers = [
        get(&h, &hello, &[]).await,
        head(&h, &hello, &[]).await,
        get(&h, &by_ref(job, "site/index.html"), &[]).await,
        get(&h, &hello, &[("Range", "bytes=0-4")]).await,
        get(&h, &hello, &[("If-None-Match", etag.as_str())]).await,
        get(&h, &hello, &[("Range", "bytes=100-")]).await,
        get(&h, &by_job(job, "not/here.txt"), &[]).await,
        get(&h, &by_job(job, "dir/"), &[]).await,
        get(&h, &by_job(job, "hello%00.txt"), &[]).await,
        get(&h, &by_ref(job, "%FF"), &[]).await,
        raw_request(
            &h,
            "GET",
            format!("/api/v4{}", by_job(job, "../x")).as_bytes(),
        )
        .await,
        get(&h, &by_job(ENCRYPTED_JOB, "hello.txt"), &[]).await,
    ];
    for got in &answers {
        got.assert_hardened(&format!("a {} answer", got.status));
        statuses.insert(got.status);
    }
    let want: BTreeSet<u16> = [200, 206, 304, 400, 404, 416, 501].into();
    assert_eq!(statuses, want);
}

// ---------------------------------------------------------------------------------------
// 3. Validators

async fn if_none_match(kind: Kind) {
    let (h, tap) = tapped(kind).await;
    let file = "python-deflate.zip";
    let job = job(file);
    let url = by_job(job, "data/random.bin");
    let size = entry(file, "data/random.bin").size;
    // HEAD opens the archive and gives the ETag without reading the entry.
    let etag = head(&h, &url, &[]).await.etag();
    let before = reads(&tap);
    for value in [
        etag.clone(),
        format!("W/{etag}"),
        format!("\"other\", {etag}"),
        "*".to_owned(),
    ] {
        for endpoint in [url.clone(), by_ref(job, "data/random.bin")] {
            let got = get(&h, &endpoint, &[("If-None-Match", value.as_str())]).await;
            assert_eq!(got.status, 304, "{endpoint} If-None-Match: {value}");
            assert!(got.body.is_empty(), "{endpoint} If-None-Match: {value}");
            assert_eq!(got.etag(), etag, "{endpoint}");
            got.assert_hardened(&endpoint);
            // With a range too: the client's copy is current.
            let got = get(
                &h,
                &endpoint,
                &[("If-None-Match", value.as_str()), ("Range", "bytes=0-9")],
            )
            .await;
            assert_eq!(got.status, 304, "{endpoint} ranged, If-None-Match: {value}");
        }
    }
    assert_eq!(reads(&tap), before, "a 304 read storage");

    // Another tag: the whole entry, read from storage.
    let got = get(&h, &url, &[("If-None-Match", "\"other\"")]).await;
    assert_eq!(got.status, 200);
    assert_eq!(got.body.len() as u64, size);
    assert_eq!(sha(&got.body), entry(file, "data/random.bin").sha256);
    let after = reads(&tap);
    assert!(after.0 > before.0, "the entry came from nowhere");
    assert!(after.1 - before.1 >= size, "{after:?} {before:?}");
}

async fn etags(kind: Kind) {
    let h = harness(kind).await;
    let etag = |file: &'static str, name: &'static str| {
        let h = &h;
        async move {
            let got = get(h, &by_job(job(file), &enc(name)), &[]).await;
            assert_eq!(got.status, 200, "{file} {name}");
            got.etag()
        }
    };
    let hello = etag("python-deflate.zip", "hello.txt").await;
    assert_eq!(etag("python-deflate.zip", "hello.txt").await, hello);
    // The ETag of a 206 is the entry's.
    let ranged = get(
        &h,
        &by_job(job("python-deflate.zip"), "hello.txt"),
        &[("Range", "bytes=1-2")],
    )
    .await;
    assert_eq!((ranged.status, ranged.etag()), (206, hello.clone()));
    let all = [
        ("python-deflate.zip hello.txt", hello),
        (
            "python-deflate.zip empty.txt",
            etag("python-deflate.zip", "empty.txt").await,
        ),
        (
            "python-deflate.zip dir/nested/deep.txt",
            etag("python-deflate.zip", "dir/nested/deep.txt").await,
        ),
        // The same name, with the same content, in other archives.
        (
            "7zip-deflate.zip hello.txt",
            etag("7zip-deflate.zip", "hello.txt").await,
        ),
        ("jar.zip hello.txt", etag("jar.zip", "hello.txt").await),
        (
            "python-stored.zip hello.txt",
            etag("python-stored.zip", "hello.txt").await,
        ),
    ];
    for (i, (a, tag_a)) in all.iter().enumerate() {
        for (b, tag_b) in &all[i + 1..] {
            assert_ne!(tag_a, tag_b, "{a} and {b} share an ETag");
        }
    }
    // An ETag of one entry does not validate another.
    let got = get(
        &h,
        &by_job(job("7zip-deflate.zip"), "hello.txt"),
        &[("If-None-Match", all[0].1.as_str())],
    )
    .await;
    assert_eq!(got.status, 200);
    assert_eq!(
        sha(&got.body),
        entry("7zip-deflate.zip", "hello.txt").sha256
    );
}

/// An archive object replaced under the gateway: the next entry read (pinned to the ETag
/// the index was read with) notices, the archive is reopened, and entries get new ETags
/// that an old validator no longer matches.
async fn replaced_archive(kind: Kind) {
    let h = harness(kind).await;
    let job = job("python-deflate.zip");
    let url = by_job(job, "text/lorem.txt");
    let old = get(&h, &url, &[]).await.etag();
    h.storage.put(
        &format!("1/{job}/artifacts.zip"),
        &fixture("7zip-deflate.zip"),
    );
    let got = get(&h, &by_job(job, "data/random.bin"), &[]).await;
    assert_eq!(got.status, 200);
    assert_eq!(
        sha(&got.body),
        entry("7zip-deflate.zip", "data/random.bin").sha256
    );
    let got = get(&h, &url, &[("If-None-Match", old.as_str())]).await;
    assert_eq!(
        got.status, 200,
        "an ETag of the replaced archive still matched"
    );
    assert_ne!(got.etag(), old);
    assert_eq!(
        sha(&got.body),
        entry("7zip-deflate.zip", "text/lorem.txt").sha256
    );
}

async fn head_reads_nothing(kind: Kind) {
    let (h, tap) = tapped(kind).await;
    let file = "python-deflate.zip";
    let job = job(file);
    // The first request opens the archive: its tail (and directory) only.
    let opened = head(&h, &by_job(job, "hello.txt"), &[]).await;
    assert_eq!(opened.status, 200);
    let open = reads(&tap);
    assert!(open.0 >= 1, "opening read nothing");
    assert!(
        open.1 < 8 * 1024,
        "opening read {} bytes of a 158 KB archive",
        open.1
    );

    for name in ["data/random.bin", "data/zeros.bin", "text/lorem.txt"] {
        let e = entry(file, name);
        for url in [by_job(job, name), by_ref(job, name)] {
            let got = head(&h, &url, &[]).await;
            assert_eq!(got.status, 200, "{url}");
            assert_eq!(
                got.header("content-length"),
                Some(e.size.to_string().as_str()),
                "{url}"
            );
            assert_eq!(got.header("accept-ranges"), Some("bytes"));
            assert!(got.header("content-type").is_some());
            assert!(got.header("content-disposition").is_some());
            got.etag();
            got.assert_hardened(&url);
            assert!(got.body.is_empty(), "{url}");

            let ranged = head(&h, &url, &[("Range", "bytes=10-19")]).await;
            assert_eq!(ranged.status, 206, "{url}");
            assert_eq!(
                ranged.header("content-range"),
                Some(format!("bytes 10-19/{}", e.size).as_str())
            );
            assert_eq!(ranged.header("content-length"), Some("10"));
            assert!(ranged.body.is_empty());
        }
    }
    // Directories and missing names are answered from the index too.
    for name in ["dir/", "dir", "emptydir/", "not/here.txt", "hello.txt/"] {
        let got = get(&h, &by_job(job, name), &[]).await;
        assert_eq!(got.status, 404, "{name}");
    }
    assert_eq!(reads(&tap), open, "HEAD or a 404 read entry bytes");

    // The ETag HEAD shows is the one GET shows.
    let url = by_job(job, "text/lorem.txt");
    let headed = head(&h, &url, &[]).await.etag();
    assert_eq!(get(&h, &url, &[]).await.etag(), headed);
}

// ---------------------------------------------------------------------------------------
// 4. Ranges

/// `bytes=...` header values and the byte range of an entry of `size` bytes they select.
fn range_cases(size: u64) -> Vec<(String, Range<u64>)> {
    vec![
        ("bytes=1000-1999".to_owned(), 1000..2000),
        (format!("bytes={}-", size / 2), size / 2..size),
        ("bytes=-5000".to_owned(), size - 5000..size),
        (format!("bytes={0}-{0}", size / 3), size / 3..size / 3 + 1),
        (
            format!("bytes={}-{}", size - 10, size + 1000),
            size - 10..size,
        ),
        ("bytes=0-0".to_owned(), 0..1),
        (format!("bytes=-{}", size * 2), 0..size),
    ]
}

async fn assert_range(h: &Harness, url: &str, value: &str, want: &Range<u64>, bytes: &[u8]) {
    let size = bytes.len();
    let got = get(h, url, &[("Range", value)]).await;
    assert_eq!(got.status, 206, "{url} {value}");
    assert_eq!(
        got.header("content-range"),
        Some(format!("bytes {}-{}/{size}", want.start, want.end - 1).as_str()),
        "{url} {value}"
    );
    assert_eq!(
        got.header("content-length"),
        Some((want.end - want.start).to_string().as_str()),
        "{url} {value}"
    );
    assert_eq!(got.header("accept-ranges"), Some("bytes"));
    got.assert_hardened(url);
    let expected = &bytes[want.start as usize..want.end as usize];
    assert!(
        got.body == expected,
        "{url} {value}: {} bytes, wrong content",
        got.body.len()
    );
}

async fn stored_ranges(kind: Kind) {
    let (h, tap) = tapped(kind).await;
    // The brief's python-stored.zip leaves data/random.bin out (size budget); 7-Zip stores
    // it (incompressible). python-stored.zip's text/lorem.txt is stored as well.
    for (file, name) in [
        ("7zip-deflate.zip", "data/random.bin"),
        ("python-stored.zip", "text/lorem.txt"),
        ("bsdtar-stored.zip", "text/lorem.txt"),
    ] {
        let bytes = reference(file, name);
        let size = bytes.len() as u64;
        let url = by_job(job(file), name);
        assert_eq!(head(&h, &url, &[]).await.status, 200, "{url}");
        for (value, want) in range_cases(size) {
            let before = reads(&tap);
            assert_range(&h, &url, &value, &want, &bytes).await;
            let after = reads(&tap);
            let (requests, read) = (after.0 - before.0, after.1 - before.1);
            let len = want.end - want.start;
            assert!(
                read >= len && read <= len + 300,
                "{file} {name} {value}: {read} bytes read for a {len}-byte range"
            );
            assert!(requests <= 2, "{file} {name} {value}: {requests} reads");
        }
    }
}

async fn compressed_ranges(kind: Kind) {
    let h = harness(kind).await;
    let lorem = reference("python-deflate.zip", "text/lorem.txt");
    // The same text through every decoder, from every writer: data descriptors, zip64
    // local extras, stored entries read through the cached tail.
    for (file, name) in [
        ("python-deflate.zip", "text/lorem.txt"),
        ("infozip-pipe.zip", "text/lorem.txt"),
        ("infozip-stdin.zip", "-"),
        ("python-zip64.zip", "text/lorem.txt"),
        ("jar.zip", "text/lorem.txt"),
        ("go.zip", "text/lorem.txt"),
        ("bsdtar.zip", "text/lorem.txt"),
        ("python-bzip2.zip", "text/lorem.txt"),
        ("7zip-bzip2.zip", "text/lorem.txt"),
        ("python-lzma.zip", "text/lorem.txt"),
        ("7zip-lzma.zip", "text/lorem.txt"),
        ("7zip-xz.zip", "text/lorem.txt"),
        ("7zip-deflate64.zip", "text/lorem.txt"),
        ("python-stored.zip", "text/lorem.txt"),
        ("bsdtar-stored.zip", "text/lorem.txt"),
    ] {
        assert_eq!(
            entry(file, name).sha256,
            entry("python-deflate.zip", "text/lorem.txt").sha256
        );
        let url = by_job(job(file), name);
        for (value, want) in range_cases(lorem.len() as u64) {
            assert_range(&h, &url, &value, &want, &lorem).await;
        }
        assert_range(&h, &url, "bytes=-1", &(65535..65536), &lorem).await;
    }
    // An incompressible entry: several decoder chunks, windows across their boundaries;
    // stored, partly in the cached tail.
    let random = reference("7zip-deflate.zip", "data/random.bin");
    let mut cases = range_cases(random.len() as u64);
    cases.push(("bytes=65536-131071".to_owned(), 65536..131072));
    cases.push(("bytes=65535-65536".to_owned(), 65535..65537));
    cases.push(("bytes=70000-140000".to_owned(), 70000..140001));
    cases.push(("bytes=153000-".to_owned(), 153000..153600));
    for file in ["python-deflate.zip", "python-zip64.zip", "7zip-deflate.zip"] {
        let url = by_job(job(file), "data/random.bin");
        for (value, want) in &cases {
            assert_range(&h, &url, value, want, &random).await;
        }
    }
    // By ref too.
    let url = by_ref(job("python-deflate.zip"), "text/lorem.txt");
    assert_range(&h, &url, "bytes=30000-40000", &(30000..40001), &lorem).await;
}

async fn unsatisfiable_and_ignored_ranges(kind: Kind) {
    let h = harness(kind).await;
    let cases = [
        ("python-deflate.zip", "text/lorem.txt", "bytes=65536-"),
        ("python-deflate.zip", "text/lorem.txt", "bytes=70000-80000"),
        ("python-deflate.zip", "text/lorem.txt", "bytes=-0"),
        ("7zip-deflate.zip", "data/random.bin", "bytes=153600-"),
        ("7zip-deflate.zip", "data/random.bin", "bytes=200000-200010"),
        ("python-deflate.zip", "empty.txt", "bytes=0-"),
        ("python-deflate.zip", "empty.txt", "bytes=-5"),
        ("7zip-deflate.zip", "empty.txt", "bytes=0-0"),
    ];
    for (file, name, value) in cases {
        let size = entry(file, name).size;
        for url in [by_job(job(file), name), by_ref(job(file), name)] {
            let got = get(&h, &url, &[("Range", value)]).await;
            assert_eq!(got.status, 416, "{url} {value}");
            assert_eq!(
                got.header("content-range"),
                Some(format!("bytes */{size}").as_str()),
                "{url} {value}"
            );
            assert_eq!(
                got.json(),
                json!({"message": "416 Range Not Satisfiable"}),
                "{url} {value}"
            );
            got.assert_hardened(&url);
        }
    }
    // Not one well-formed byte range: ignored, the whole entry.
    let e = entry("python-deflate.zip", "text/lorem.txt");
    let url = by_job(job("python-deflate.zip"), "text/lorem.txt");
    for value in [
        "bytes=0-1,5-6",
        "bytes=5-1",
        "lines=1-2",
        "bytes=abc",
        "bytes=",
    ] {
        let got = get(&h, &url, &[("Range", value)]).await;
        assert_eq!(got.status, 200, "{value}");
        assert_eq!(got.header("content-range"), None, "{value}");
        assert_eq!(sha(&got.body), e.sha256, "{value}");
    }
}

async fn if_range(kind: Kind) {
    let h = harness(kind).await;
    for (file, name) in [
        ("python-deflate.zip", "text/lorem.txt"),
        ("7zip-deflate.zip", "data/random.bin"),
    ] {
        let e = entry(file, name);
        let url = by_job(job(file), name);
        let etag = get(&h, &url, &[]).await.etag();
        let other = get(&h, &by_job(job(file), "hello.txt"), &[]).await.etag();

        let got = get(
            &h,
            &url,
            &[("Range", "bytes=0-9"), ("If-Range", etag.as_str())],
        )
        .await;
        assert_eq!(got.status, 206, "{url} current If-Range");
        assert_eq!(got.body.len(), 10);

        // A stale validator: the whole entry, as a 200.
        for stale in [
            "\"stale\"".to_owned(),
            other,
            format!("W/{etag}"),
            "Tue, 02 Jan 2024 03:04:06 GMT".to_owned(),
        ] {
            let got = get(
                &h,
                &url,
                &[("Range", "bytes=0-9"), ("If-Range", stale.as_str())],
            )
            .await;
            assert_eq!(got.status, 200, "{url} If-Range: {stale}");
            assert_eq!(got.header("content-range"), None, "{url} If-Range: {stale}");
            assert_eq!(
                got.header("content-length"),
                Some(e.size.to_string().as_str())
            );
            assert_eq!(sha(&got.body), e.sha256, "{url} If-Range: {stale}");
            assert_eq!(got.etag(), etag);
        }
    }
}

// ---------------------------------------------------------------------------------------
// 5. Entries the gateway cannot decode

#[derive(Clone, Copy)]
enum Patch {
    /// General purpose flag bit 0, in the local and the central header.
    Encrypted,
    /// The compression method, in the local and the central header.
    Method(u16),
}

const LOCAL_HEADER: u32 = 0x0403_4b50;
const CENTRAL_HEADER: u32 = 0x0201_4b50;
const END_OF_DIRECTORY: u32 = 0x0605_4b50;

fn le16(bytes: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([bytes[at], bytes[at + 1]])
}

fn le32(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap())
}

fn set16(bytes: &mut [u8], at: usize, value: u16) {
    bytes[at..at + 2].copy_from_slice(&value.to_le_bytes());
}

/// The central and local header offsets of `name`, found by walking the central directory
/// of a (non-zip64, comment-free) archive.
fn headers_of(zip: &[u8], name: &str) -> (usize, usize) {
    let eocd = (0..=zip.len() - 22)
        .rev()
        .find(|&at| le32(zip, at) == END_OF_DIRECTORY)
        .expect("an end of central directory record");
    let count = le16(zip, eocd + 10);
    let mut at = le32(zip, eocd + 16) as usize;
    for _ in 0..count {
        assert_eq!(le32(zip, at), CENTRAL_HEADER, "central header at {at}");
        let name_len = le16(zip, at + 28) as usize;
        let extra_len = le16(zip, at + 30) as usize;
        let comment_len = le16(zip, at + 32) as usize;
        if &zip[at + 46..at + 46 + name_len] == name.as_bytes() {
            let local = le32(zip, at + 42) as usize;
            assert_eq!(le32(zip, local), LOCAL_HEADER, "local header at {local}");
            return (at, local);
        }
        at += 46 + name_len + extra_len + comment_len;
    }
    panic!("no {name:?} in the central directory")
}

fn patched(file: &str, name: &str, patch: Patch) -> Vec<u8> {
    let mut zip = fixture(file);
    let (central, local) = headers_of(&zip, name);
    match patch {
        Patch::Encrypted => {
            let (central_flags, local_flags) = (le16(&zip, central + 8), le16(&zip, local + 6));
            set16(&mut zip, central + 8, central_flags | 1);
            set16(&mut zip, local + 6, local_flags | 1);
        }
        Patch::Method(method) => {
            set16(&mut zip, central + 10, method);
            set16(&mut zip, local + 8, method);
        }
    }
    // The patch changed what it meant to, and nothing that moves a header.
    assert_eq!(headers_of(&zip, name), (central, local));
    match patch {
        Patch::Encrypted => {
            assert_eq!(le16(&zip, central + 8) & 1, 1);
            assert_eq!(le16(&zip, local + 6) & 1, 1);
        }
        Patch::Method(method) => {
            assert_eq!(
                (le16(&zip, central + 10), le16(&zip, local + 8)),
                (method, method)
            );
        }
    }
    zip
}

async fn unsupported_entries(kind: Kind) {
    let h = harness(kind).await;
    let file = "python-deflate.zip";
    let cases = [
        (
            ENCRYPTED_JOB,
            Patch::Encrypted,
            "501 Not Implemented - entry is encrypted",
        ),
        (
            UNKNOWN_METHOD_JOB,
            Patch::Method(98),
            "501 Not Implemented - compression method 98 is not supported",
        ),
    ];
    for (job, patch, message) in cases {
        h.storage.put(
            &format!("1/{job}/artifacts.zip"),
            &patched(file, "hello.txt", patch),
        );
        for url in [by_job(job, "hello.txt"), by_ref(job, "hello.txt")] {
            for headers in [&[][..], &[("Range", "bytes=0-4")][..]] {
                let got = get(&h, &url, headers).await;
                assert_eq!(got.status, 501, "{url} {headers:?}");
                assert_eq!(got.json(), json!({ "message": message }), "{url}");
                assert_eq!(got.header("content-type"), Some("application/json"));
                got.assert_hardened(&url);
            }
            let got = head(&h, &url, &[]).await;
            assert_eq!(got.status, 501, "HEAD {url}");
            assert!(got.body.is_empty());
        }
        // The archive's other entries are served as usual.
        let deep = entry(file, "dir/nested/deep.txt");
        let got = get(&h, &by_job(job, "dir/nested/deep.txt"), &[]).await;
        assert_eq!(got.status, 200);
        assert_eq!(sha(&got.body), deep.sha256);
    }
}
