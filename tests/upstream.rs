//! Upstream mode (`artifacts.source = "upstream"`) in front of the sample backend's
//! GitLab-faithful mode: job tokens accepted only on the artifact routes, archives at
//! hashed `@final` keys in the in-process S3 server, the archive routes answering 302 to a
//! freshly signed URL (or, in proxy mode, 200 with the bytes).
//!
//! Storage round trips are counted at the S3 server itself. Expected bytes are the
//! test's own archives; expected messages are GitLab's.

mod common;

use std::io::{Cursor, Write};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use common::storage::Kind;
use common::{header, json, Harness, JOB_TOKEN, TOKEN};
use sample_backend::{BackendBuilder, JobSpec, JobStatus, Visibility};
use zip::write::SimpleFileOptions;
use zip::CompressionMethod;

/// sha256("1"): the hashed directory of project 1's objects.
const SHA256_OF_1: &str = "6b86b273ff34fce19d6b804eff5a3f5747ada4eaa22f1d49c01e52ddb7875b4b";

/// Project 1 (private, `group/app`): job 11 (build, main, success, pipeline 100, archive),
/// job 12 (build, main, running, pipeline 101), job 15 (build, release, success, pipeline
/// 102, archive). Project 2 (private, `group/other`): job 21 (archive). `demo` is a
/// member of both; `outsider` of neither.
fn backend() -> BackendBuilder {
    BackendBuilder::new()
        .user("demo", TOKEN)
        .user("outsider", "outsider-token")
        .project(1, "group/app", Visibility::Private, &["demo"])
        .project(2, "group/other", Visibility::Private, &["demo"])
        .job(
            JobSpec::new(11, 1, "build", "main", JobStatus::Success)
                .pipeline(100)
                .with_archive(1000)
                .trace("log of 11\n"),
        )
        .job(JobSpec::new(12, 1, "build", "main", JobStatus::Running).pipeline(101))
        .job(
            JobSpec::new(15, 1, "build", "release", JobStatus::Success)
                .pipeline(102)
                .with_archive(1000),
        )
        .job(
            JobSpec::new(21, 2, "build", "main", JobStatus::Success)
                .pipeline(200)
                .with_archive(1000),
        )
}

/// Deterministic bytes that do not compress.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

/// An archive whose two big entries (one stored, one deflated) lie before the default
/// 128 KiB tail and whose last entry lies inside it.
struct Layout {
    bytes: Vec<u8>,
    big_stored: Vec<u8>,
    big_deflated: Vec<u8>,
    small: Vec<u8>,
}

fn layout(version: u64) -> Layout {
    let big_stored = noise(400 * 1024, version);
    // Text, then noise: deflate has work to do, and the entry stays larger than the tail.
    let mut big_deflated: Vec<u8> = (0..20_000u32)
        .flat_map(|i| format!("v{version} line {i}\n").into_bytes())
        .collect();
    big_deflated.extend(noise(300 * 1024, version + 100));
    let small = format!("small entry of version {version}\n").into_bytes();
    let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for (name, bytes, method) in [
        ("big-stored.bin", &big_stored, CompressionMethod::Stored),
        (
            "dir/big-deflated.txt",
            &big_deflated,
            CompressionMethod::Deflated,
        ),
        ("small.txt", &small, CompressionMethod::Stored),
    ] {
        let options = SimpleFileOptions::default().compression_method(method);
        writer.start_file(name, options).unwrap();
        writer.write_all(bytes).unwrap();
    }
    Layout {
        bytes: writer.finish().unwrap().into_inner(),
        big_stored,
        big_deflated,
        small,
    }
}

async fn start(kind: Kind, adjust: impl FnOnce(&mut artifact_gateway::config::Config)) -> Harness {
    let h = Harness::build(backend(), kind, None, adjust).await;
    h.storage.put("1/11/artifacts.zip", &layout(11).bytes);
    h.storage.put("1/15/artifacts.zip", &layout(15).bytes);
    h.storage.put("2/21/artifacts.zip", &layout(21).bytes);
    h
}

async fn get_with(h: &Harness, path: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut request = h.client.get(h.url(path));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.expect("request reaches the gateway")
}

async fn expect_bytes(h: &Harness, path: &str, headers: &[(&str, &str)], want: &[u8]) {
    let response = get_with(h, path, headers).await;
    assert_eq!(response.status(), 200, "{path}");
    let body = response.bytes().await.unwrap();
    assert!(
        body == want,
        "{path}: {} bytes, not the {} expected",
        body.len(),
        want.len()
    );
}

/// GETs the S3 server served since `from` (its count before), by their `Range`.
fn reads_since(h: &Harness, from: usize) -> Vec<Option<String>> {
    h.storage.s3().expect("an S3 server").get_ranges()[from..].to_vec()
}

fn reads_so_far(h: &Harness) -> usize {
    h.storage.s3().expect("an S3 server").get_ranges().len()
}

fn bounded(range: &Option<String>) -> bool {
    range.as_deref().is_some_and(|r| {
        r.strip_prefix("bytes=")
            .and_then(|r| r.split_once('-'))
            .is_some_and(|(a, b)| !a.is_empty() && !b.is_empty())
    })
}

fn archive_route_count(h: &Harness, project: u64, job: u64) -> usize {
    h.backend.count(
        "GET",
        &format!("/api/v4/projects/{project}/jobs/{job}/artifacts"),
    )
}

// ---------------------------------------------------------------------------------------
// Job tokens

async fn job_tokens(kind: Kind) {
    let h = start(kind, |_| {}).await;
    let a = layout(11);
    let header_token = [("JOB-TOKEN", JOB_TOKEN)];
    let query = format!("job_token={JOB_TOKEN}");
    // The job route refuses job tokens (GitLab's route has no job_token_allowed)...
    let job = get_with(&h, "/projects/1/jobs/11", &header_token).await;
    assert_eq!(job.status(), 401);
    assert_eq!(json(job).await["message"], "401 Unauthorized");
    // ...the artifact routes take them, in the header and in the query.
    expect_bytes(&h, "/projects/1/jobs/11/artifacts", &header_token, &a.bytes).await;
    expect_bytes(
        &h,
        &format!("/projects/1/jobs/11/artifacts?{query}"),
        &[],
        &a.bytes,
    )
    .await;
    for path in [
        "/projects/1/jobs/11/artifacts/small.txt".to_owned(),
        "/projects/1/jobs/artifacts/main/raw/small.txt?job=build".to_owned(),
        "/projects/group%2Fapp/jobs/artifacts/main/raw/small.txt?job=build".to_owned(),
    ] {
        expect_bytes(&h, &path, &header_token, &a.small).await;
        let sep = if path.contains('?') { '&' } else { '?' };
        expect_bytes(&h, &format!("{path}{sep}{query}"), &[], &a.small).await;
    }
    expect_bytes(
        &h,
        "/projects/1/jobs/11/artifacts/dir/big-deflated.txt",
        &header_token,
        &a.big_deflated,
    )
    .await;
    expect_bytes(
        &h,
        "/projects/1/jobs/artifacts/main/download?job=build",
        &header_token,
        &a.bytes,
    )
    .await;
    // A project the token may not read: 404, whichever route.
    for path in [
        "/projects/2/jobs/21/artifacts",
        "/projects/2/jobs/21/artifacts/small.txt",
        "/projects/2/jobs/artifacts/main/raw/small.txt?job=build",
    ] {
        let refused = get_with(&h, path, &header_token).await;
        assert_eq!(refused.status(), 404, "{path}");
        assert_eq!(
            json(refused).await["message"],
            "404 Project Not Found",
            "{path}"
        );
    }
    // A token of a job no longer running is no credential at all.
    let stale = get_with(
        &h,
        "/projects/1/jobs/11/artifacts",
        &[("JOB-TOKEN", "job-token-11")],
    )
    .await;
    assert_eq!(stale.status(), 401);
}

#[tokio::test]
async fn job_tokens_work_on_artifact_routes_behind_redirects() {
    job_tokens(Kind::Upstream).await;
}

#[tokio::test]
async fn job_tokens_work_on_artifact_routes_behind_proxied_downloads() {
    job_tokens(Kind::UpstreamProxy).await;
}

// ---------------------------------------------------------------------------------------
// Storage round trips

#[tokio::test]
async fn round_trips_with_a_fresh_signature_on_every_locate() {
    // No kept locations: every request asks the backend, which signs afresh each time;
    // the index is cached under the URL without its query, so it survives that.
    let h = start(Kind::Upstream, |c| c.cache.max_bytes = 0).await;
    let a = layout(11);
    let path = |name: &str| format!("/projects/1/jobs/11/artifacts/{name}");

    let before = reads_so_far(&h);
    expect_bytes(
        &h,
        &path("big-stored.bin"),
        &[("PRIVATE-TOKEN", TOKEN)],
        &a.big_stored,
    )
    .await;
    let cold = reads_since(&h, before);
    assert!(cold.len() <= 2, "cold entry: {cold:?}");
    assert_eq!(
        cold[0].as_deref(),
        Some("bytes=-131072"),
        "one suffix read of the tail"
    );
    assert!(cold[1..].iter().all(bounded), "{cold:?}");

    let before = reads_so_far(&h);
    expect_bytes(
        &h,
        &path("dir/big-deflated.txt"),
        &[("PRIVATE-TOKEN", TOKEN)],
        &a.big_deflated,
    )
    .await;
    let warm = reads_since(&h, before);
    assert_eq!(warm.len(), 1, "warm entry: {warm:?}");
    assert!(bounded(&warm[0]), "{warm:?}");

    let before = reads_so_far(&h);
    expect_bytes(
        &h,
        &path("small.txt"),
        &[("PRIVATE-TOKEN", TOKEN)],
        &a.small,
    )
    .await;
    assert_eq!(
        reads_since(&h, before),
        Vec::<Option<String>>::new(),
        "in the cached tail"
    );

    // The same warm entry again: one bounded read, and a fresh locate each time.
    let before = reads_so_far(&h);
    expect_bytes(
        &h,
        &path("big-stored.bin"),
        &[("PRIVATE-TOKEN", TOKEN)],
        &a.big_stored,
    )
    .await;
    let again = reads_since(&h, before);
    assert!(again.len() == 1 && bounded(&again[0]), "{again:?}");
    assert_eq!(archive_route_count(&h, 1, 11), 4, "one locate per request");
    // A HEAD and a 304 read nothing once the archive is open.
    let before = reads_so_far(&h);
    let head = h.head(&path("big-stored.bin"), Some(TOKEN)).await;
    assert_eq!(head.status(), 200);
    let etag = header(&head, "etag").unwrap().to_owned();
    let not_modified = get_with(
        &h,
        &path("big-stored.bin"),
        &[("PRIVATE-TOKEN", TOKEN), ("If-None-Match", &etag)],
    )
    .await;
    assert_eq!(not_modified.status(), 304);
    assert_eq!(reads_since(&h, before), Vec::<Option<String>>::new());
    // The backend's single-file route is never asked.
    assert!(
        h.backend
            .requests()
            .iter()
            .all(|r| !r.path().contains("/artifacts/") || r.path().ends_with("/download")),
        "a single-file route was asked"
    );
}

#[tokio::test]
async fn a_70000_entry_zip64_archive_in_upstream_mode() {
    const MANY: usize = 70_000;
    let name = |i: usize| format!("files/{:05}/entry-{i}.txt", i / 1000);
    let content = |i: usize| format!("content of entry {i}\n").into_bytes();
    let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for i in 0..MANY {
        let options = SimpleFileOptions::default().compression_method(CompressionMethod::Stored);
        writer.start_file(name(i), options).unwrap();
        writer.write_all(&content(i)).unwrap();
    }
    let bytes = writer.finish().unwrap().into_inner();
    let h = start(Kind::Upstream, |_| {}).await;
    h.storage.put("1/15/artifacts.zip", &bytes);
    let token = [("PRIVATE-TOKEN", TOKEN)];
    let before = reads_so_far(&h);
    expect_bytes(
        &h,
        &format!("/projects/1/jobs/15/artifacts/{}", name(10)),
        &token,
        &content(10),
    )
    .await;
    let cold = reads_since(&h, before);
    // The tail, the part of the directory before it, the entry.
    assert_eq!(cold.len(), 3, "{cold:?}");
    assert_eq!(cold[0].as_deref(), Some("bytes=-131072"));
    for i in [0, 65_535, 65_536, MANY - 1] {
        let before = reads_so_far(&h);
        let path = format!("/projects/1/jobs/15/artifacts/{}", name(i));
        expect_bytes(&h, &path, &token, &content(i)).await;
        assert!(reads_since(&h, before).len() <= 1, "entry {i}");
    }
    let missing = get_with(
        &h,
        &format!("/projects/1/jobs/15/artifacts/{}", name(MANY)),
        &token,
    )
    .await;
    assert_eq!(missing.status(), 404);
}

// ---------------------------------------------------------------------------------------
// Re-locating

async fn replaced_object(kind: Kind) {
    let h = start(kind, |_| {}).await;
    let (v1, v2) = (layout(1), layout(2));
    h.storage.put("1/11/artifacts.zip", &v1.bytes);
    let token = [("PRIVATE-TOKEN", TOKEN)];
    let entry = "/projects/1/jobs/11/artifacts/big-stored.bin";
    let first = get_with(&h, entry, &token).await;
    let first_etag = header(&first, "etag").unwrap().to_owned();
    assert!(first.bytes().await.unwrap() == v1.big_stored);
    let archive = get_with(&h, "/projects/1/jobs/11/artifacts", &token).await;
    let archive_etag = header(&archive, "etag").unwrap().to_owned();
    assert!(archive.bytes().await.unwrap() == v1.bytes);

    let tail_entry = "/projects/1/jobs/11/artifacts/small.txt";
    let small = get_with(&h, tail_entry, &token).await;
    let small_etag = header(&small, "etag").unwrap().to_owned();
    assert!(small.bytes().await.unwrap() == v1.small);

    // Replaced in place, under the same key: a new ETag.
    h.storage.put("1/11/artifacts.zip", &v2.bytes);
    for _ in 0..2 {
        let second = get_with(&h, entry, &token).await;
        assert_eq!(second.status(), 200);
        let etag = header(&second, "etag").unwrap().to_owned();
        assert_ne!(etag, first_etag, "new bytes under the old ETag");
        assert!(
            second.bytes().await.unwrap() == v2.big_stored,
            "old bytes under a new ETag"
        );
    }
    // An entry inside the cached tail is answered without a read: until the index is
    // reopened it may still be the old version, but always under the old version's ETag.
    let small = get_with(&h, tail_entry, &token).await;
    let etag = header(&small, "etag").unwrap().to_owned();
    let body = small.bytes().await.unwrap();
    assert!(
        (body == v1.small && etag == small_etag) || (body == v2.small && etag != small_etag),
        "bytes and ETag of different versions"
    );
    let deflated = "/projects/1/jobs/11/artifacts/dir/big-deflated.txt";
    expect_bytes(&h, deflated, &token, &v2.big_deflated).await;
    let archive = get_with(&h, "/projects/1/jobs/11/artifacts", &token).await;
    assert_ne!(header(&archive, "etag").unwrap(), archive_etag);
    assert!(archive.bytes().await.unwrap() == v2.bytes);
    // A conditional request naming the old version gets the new one whole.
    let stale = get_with(
        &h,
        entry,
        &[("PRIVATE-TOKEN", TOKEN), ("If-None-Match", &first_etag)],
    )
    .await;
    assert_eq!(stale.status(), 200);
    assert!(stale.bytes().await.unwrap() == v2.big_stored);
}

#[tokio::test]
async fn a_replaced_object_is_reopened_behind_redirects() {
    replaced_object(Kind::Upstream).await;
}

#[tokio::test]
async fn a_replaced_object_is_reopened_behind_proxied_downloads() {
    replaced_object(Kind::UpstreamProxy).await;
}

#[tokio::test]
async fn an_expired_url_is_located_once_more() {
    let h =
        Harness::upstream_with_ttl(Kind::Upstream, backend(), Duration::from_secs(1), |_| {}).await;
    let a = layout(11);
    h.storage.put("1/11/artifacts.zip", &a.bytes);
    let token = [("PRIVATE-TOKEN", TOKEN)];
    let entry = |name: &str| format!("/projects/1/jobs/11/artifacts/{name}");
    expect_bytes(&h, &entry("big-stored.bin"), &token, &a.big_stored).await;
    assert_eq!(archive_route_count(&h, 1, 11), 1);
    // A URL signed now by the same backend expires with the one the gateway keeps: wait
    // until storage refuses it.
    let direct = h
        .client
        .get(format!(
            "{}/api/v4/projects/1/jobs/11/artifacts",
            h.backend.url()
        ))
        .header("PRIVATE-TOKEN", TOKEN)
        .send()
        .await
        .unwrap();
    let url = header(&direct, "location").unwrap().to_owned();
    let mut refused = false;
    for _ in 0..100 {
        if h.client.get(&url).send().await.unwrap().status() == 403 {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(refused, "the presigned URL never expired");
    h.backend.clear_requests();
    // The kept location is refused by storage: the gateway asks the backend again, once.
    expect_bytes(&h, &entry("dir/big-deflated.txt"), &token, &a.big_deflated).await;
    assert_eq!(archive_route_count(&h, 1, 11), 1, "located once more");
    expect_bytes(&h, &entry("big-stored.bin"), &token, &a.big_stored).await;
    expect_bytes(&h, "/projects/1/jobs/11/artifacts", &token, &a.bytes).await;
    assert_eq!(
        archive_route_count(&h, 1, 11),
        1,
        "the new location is kept"
    );
}

async fn erase(kind: Kind) {
    let h = start(kind, |_| {}).await;
    let a = layout(11);
    let token = [("PRIVATE-TOKEN", TOKEN)];
    let entry = "/projects/1/jobs/11/artifacts/small.txt";
    // Located, opened and kept, for two callers.
    expect_bytes(&h, entry, &token, &a.small).await;
    expect_bytes(&h, entry, &[("JOB-TOKEN", JOB_TOKEN)], &a.small).await;
    expect_bytes(&h, "/projects/1/jobs/11/artifacts", &token, &a.bytes).await;
    expect_bytes(
        &h,
        "/projects/1/jobs/artifacts/main/download?job=build",
        &token,
        &a.bytes,
    )
    .await;
    let erased = h.post("/projects/1/jobs/11/erase", Some(TOKEN)).await;
    assert_eq!(erased.status(), 201);
    for (path, headers) in [
        ("/projects/1/jobs/11/artifacts", &token),
        (entry, &token),
        (entry, &[("JOB-TOKEN", JOB_TOKEN)]),
        (
            "/projects/1/jobs/artifacts/main/raw/small.txt?job=build",
            &token,
        ),
        ("/projects/1/jobs/artifacts/main/download?job=build", &token),
    ] {
        let gone = get_with(&h, path, headers).await;
        assert_eq!(gone.status(), 404, "{path} right after the erase");
    }
}

#[tokio::test]
async fn an_erase_through_the_gateway_takes_effect_at_once_behind_redirects() {
    erase(Kind::Upstream).await;
}

#[tokio::test]
async fn an_erase_through_the_gateway_takes_effect_at_once_behind_proxied_downloads() {
    erase(Kind::UpstreamProxy).await;
}

// ---------------------------------------------------------------------------------------
// Refusals pass through; the object's URL never shows

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The gateway's log lines (debug and up) in this test binary; the sample backend's own
/// are left out, it is not the gateway.
fn record(seen: &mut String, response: &reqwest::Response) {
    for (name, value) in response.headers() {
        seen.push_str(&format!(
            "{name}: {}\n",
            String::from_utf8_lossy(value.as_bytes())
        ));
    }
}

fn logs() -> &'static Captured {
    static LOGS: OnceLock<Captured> = OnceLock::new();
    LOGS.get_or_init(|| {
        let captured = Captured::default();
        let writer = captured.clone();
        tracing_subscriber::fmt()
            .with_env_filter("artifact_gateway=debug,sample_backend=off")
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .try_init()
            .expect("the only subscriber of this test binary");
        captured
    })
}

async fn no_leaks(kind: Kind) {
    let logs = logs();
    let h = start(kind, |_| {}).await;
    let s3 = h.storage.s3().unwrap();
    let key = h.backend.archive_key(11).unwrap();
    let s3_authority = s3.endpoint().trim_start_matches("http://").to_owned();
    let secrets = [
        s3_authority.as_str(),
        key.as_str(),
        SHA256_OF_1,
        "@final",
        "X-Amz-Signature",
        "X-Amz-Credential",
        "sample-nonce",
    ];
    let mut seen = String::new();
    let requests: Vec<(&str, Vec<(&str, &str)>)> = vec![
        (
            "/projects/1/jobs/11/artifacts",
            vec![("PRIVATE-TOKEN", TOKEN)],
        ),
        (
            "/projects/1/jobs/11/artifacts",
            vec![("PRIVATE-TOKEN", TOKEN), ("Range", "bytes=10-99")],
        ),
        (
            "/projects/1/jobs/11/artifacts",
            vec![("PRIVATE-TOKEN", TOKEN), ("Range", "bytes=99999999-")],
        ),
        (
            "/projects/1/jobs/11/artifacts/small.txt",
            vec![("PRIVATE-TOKEN", TOKEN)],
        ),
        (
            "/projects/1/jobs/11/artifacts/nothing-here",
            vec![("PRIVATE-TOKEN", TOKEN)],
        ),
        (
            "/projects/1/jobs/artifacts/main/download?job=build",
            vec![("JOB-TOKEN", JOB_TOKEN)],
        ),
        (
            "/projects/1/jobs/artifacts/nope/download?job=build",
            vec![("PRIVATE-TOKEN", TOKEN)],
        ),
        ("/projects/1/jobs/11/artifacts", vec![]),
        (
            "/projects/1/jobs/11/artifacts",
            vec![("PRIVATE-TOKEN", "outsider-token")],
        ),
        (
            "/projects/1/jobs/11/artifacts",
            vec![("PRIVATE-TOKEN", "forged")],
        ),
        (
            "/projects/1/jobs/11/artifacts",
            vec![("PRIVATE-TOKEN", TOKEN), ("Sudo", "outsider")],
        ),
        (
            "/projects/1/jobs/999/artifacts",
            vec![("PRIVATE-TOKEN", TOKEN)],
        ),
    ];
    let mut statuses = Vec::new();
    for (path, headers) in &requests {
        let response = get_with(&h, path, headers).await;
        statuses.push(response.status().as_u16());
        record(&mut seen, &response);
        let zip = header(&response, "content-type") == Some("application/zip");
        let body = response.bytes().await.unwrap();
        if !zip {
            seen.push_str(&String::from_utf8_lossy(&body));
        }
        let head = h.client.head(h.url(path));
        let head = headers.iter().fold(head, |r, (k, v)| r.header(*k, *v));
        record(&mut seen, &head.send().await.unwrap());
    }
    // Each refusal is the backend's own answer, passed through.
    assert_eq!(
        statuses,
        [200, 206, 416, 200, 404, 200, 404, 404, 404, 401, 403, 404]
    );
    for secret in secrets {
        assert!(!seen.contains(secret), "{secret} reached a client:\n{seen}");
    }
    // Access lines are written as each body ends, before the client sees its end.
    let text = String::from_utf8_lossy(&logs.0.lock().unwrap()).into_owned();
    assert!(
        text.contains("archive located location="),
        "the log names located objects:\n{text}"
    );
    for secret in secrets {
        assert!(!text.contains(secret), "{secret} reached the log:\n{text}");
    }
}

#[tokio::test]
async fn refusals_pass_through_and_the_object_url_never_shows_behind_redirects() {
    no_leaks(Kind::Upstream).await;
}

#[tokio::test]
async fn refusals_pass_through_and_the_object_url_never_shows_behind_proxied_downloads() {
    no_leaks(Kind::UpstreamProxy).await;
}

// ---------------------------------------------------------------------------------------
// The backend streams the archive itself (proxy_download)

#[tokio::test]
async fn proxied_downloads_are_read_with_ranges_on_the_archive_route() {
    let h = start(Kind::UpstreamProxy, |_| {}).await;
    let a = layout(11);
    let token = [("PRIVATE-TOKEN", TOKEN)];
    expect_bytes(&h, "/projects/1/jobs/11/artifacts", &token, &a.bytes).await;
    let ranged = get_with(
        &h,
        "/projects/1/jobs/11/artifacts",
        &[("PRIVATE-TOKEN", TOKEN), ("Range", "bytes=100-199")],
    )
    .await;
    assert_eq!(ranged.status(), 206);
    assert_eq!(
        header(&ranged, "content-range"),
        Some(format!("bytes 100-199/{}", a.bytes.len()).as_str())
    );
    assert!(ranged.bytes().await.unwrap() == a.bytes[100..200]);
    h.backend.clear_requests();
    let before = reads_so_far(&h);
    for (name, want) in [
        ("big-stored.bin", &a.big_stored),
        ("dir/big-deflated.txt", &a.big_deflated),
        ("small.txt", &a.small),
    ] {
        expect_bytes(
            &h,
            &format!("/projects/1/jobs/11/artifacts/{name}"),
            &token,
            want,
        )
        .await;
    }
    let part = get_with(
        &h,
        "/projects/1/jobs/11/artifacts/big-stored.bin",
        &[("PRIVATE-TOKEN", TOKEN), ("Range", "bytes=1000-1999")],
    )
    .await;
    assert_eq!(part.status(), 206);
    assert!(part.bytes().await.unwrap() == a.big_stored[1000..2000]);
    expect_bytes(
        &h,
        "/projects/1/jobs/artifacts/main/raw/small.txt?job=build",
        &token,
        &a.small,
    )
    .await;
    // Storage never streams the whole archive for single files: the locate asks one byte.
    let reads = reads_since(&h, before);
    assert!(reads.iter().all(Option::is_some), "{reads:?}");
    assert!(reads.contains(&Some("bytes=0-0".to_owned())), "{reads:?}");
    let requests = h.backend.requests();
    // Every request is the archive route; the reads are ranged, pinned, with the caller's token.
    for request in &requests {
        let path = request.path();
        assert!(
            path.ends_with("/jobs/11/artifacts") || path.ends_with("/main/download"),
            "the backend was asked {path}"
        );
        assert_eq!(request.headers.get("private-token").unwrap(), TOKEN);
    }
    // Locates ask one byte (`bytes=0-0`); the archive's reads are the other ranges.
    let reads: Vec<_> = requests
        .iter()
        .filter(|r| r.headers.get("range").is_some_and(|v| v != "bytes=0-0"))
        .collect();
    assert!(reads.len() >= 4, "{} ranged reads", reads.len());
    assert!(
        reads
            .iter()
            .filter(|r| !r
                .headers
                .get("range")
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("bytes=-"))
            .all(|r| r.headers.contains_key("if-match")),
        "entry reads are pinned to the ETag"
    );
}

// ---------------------------------------------------------------------------------------
// Guarding the hop; answering with the redirect

#[tokio::test]
async fn a_location_outside_allowed_hosts_is_a_502() {
    let h = start(Kind::Upstream, |c| {
        c.artifacts.allowed_hosts = vec!["storage.example.com".into()];
    })
    .await;
    let before = reads_so_far(&h);
    for path in [
        "/projects/1/jobs/11/artifacts",
        "/projects/1/jobs/11/artifacts/small.txt",
        "/projects/1/jobs/artifacts/main/download?job=build",
    ] {
        let refused = get_with(&h, path, &[("PRIVATE-TOKEN", TOKEN)]).await;
        assert_eq!(refused.status(), 502, "{path}");
        assert_eq!(
            json(refused).await,
            serde_json::json!({"message": "502 Bad Gateway"})
        );
    }
    assert_eq!(
        reads_since(&h, before),
        Vec::<Option<String>>::new(),
        "storage never asked"
    );
    // The storage host listed: served.
    let h = start(Kind::Upstream, |c| {
        c.artifacts.allowed_hosts = vec!["127.0.0.1".into()];
    })
    .await;
    expect_bytes(
        &h,
        "/projects/1/jobs/11/artifacts/small.txt",
        &[("PRIVATE-TOKEN", TOKEN)],
        &layout(11).small,
    )
    .await;
}

#[tokio::test]
async fn artifacts_redirect_answers_downloads_with_the_backends_redirect() {
    let h = start(Kind::Upstream, |c| c.artifacts.redirect = true).await;
    let a = layout(11);
    let response = get_with(
        &h,
        "/projects/1/jobs/11/artifacts",
        &[("PRIVATE-TOKEN", TOKEN)],
    )
    .await;
    assert_eq!(response.status(), 302);
    assert_eq!(header(&response, "cache-control"), Some("no-store"));
    let location = header(&response, "location").unwrap().to_owned();
    assert!(
        location.starts_with(&h.storage.s3().unwrap().endpoint()),
        "{location}"
    );
    let followed = h.client.get(&location).send().await.unwrap();
    assert!(followed.bytes().await.unwrap() == a.bytes);
    // HEAD and single files are still the gateway's.
    let head = h.head("/projects/1/jobs/11/artifacts", Some(TOKEN)).await;
    assert_eq!(head.status(), 200);
    assert_eq!(
        header(&head, "content-length"),
        Some(a.bytes.len().to_string().as_str())
    );
    expect_bytes(
        &h,
        "/projects/1/jobs/11/artifacts/small.txt",
        &[("PRIVATE-TOKEN", TOKEN)],
        &a.small,
    )
    .await;
    // Refusals are still the backend's.
    let refused = get_with(
        &h,
        "/projects/1/jobs/11/artifacts",
        &[("PRIVATE-TOKEN", "outsider-token")],
    )
    .await;
    assert_eq!(refused.status(), 404);
}

#[tokio::test]
async fn locate_outcomes_are_counted() {
    let h = start(Kind::Upstream, |_| {}).await;
    let token = [("PRIVATE-TOKEN", TOKEN)];
    expect_bytes(
        &h,
        "/projects/1/jobs/11/artifacts/small.txt",
        &token,
        &layout(11).small,
    )
    .await;
    expect_bytes(
        &h,
        "/projects/1/jobs/11/artifacts/small.txt",
        &token,
        &layout(11).small,
    )
    .await;
    let refused = get_with(
        &h,
        "/projects/1/jobs/11/artifacts",
        &[("PRIVATE-TOKEN", "forged")],
    )
    .await;
    assert_eq!(refused.status(), 401);
    let metrics = h.gateway.state().metrics.render();
    for (outcome, n) in [("redirect", 1), ("cached", 1), ("refused", 1)] {
        let line = format!("artifact_gateway_locate_requests_total{{outcome=\"{outcome}\"}} {n}");
        assert!(metrics.contains(&line), "{line} in\n{metrics}");
    }
    // Range reads count as storage reads.
    assert!(
        metrics.contains("artifact_gateway_storage_requests_total{kind=\"zip_tail\"} 1"),
        "{metrics}"
    );
}

// ---------------------------------------------------------------------------------------
// Timeouts on located URLs

/// What a raw server does with a request.
enum Raw {
    /// Send these bytes, then read the next request on the connection.
    Answer(Vec<u8>),
    /// Send these bytes (a head and part of a body), then hold the connection.
    Stall(Vec<u8>),
    /// Hold the connection without a byte.
    Silence,
}

/// A server on 127.0.0.1 that answers each request head with `respond(head)`.
async fn raw_server(respond: impl Fn(&str) -> Raw + Send + Sync + 'static) -> std::net::SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let respond = Arc::new(respond);
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let respond = Arc::clone(&respond);
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                loop {
                    let mut head = Vec::new();
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match socket.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    match respond(&String::from_utf8_lossy(&head)) {
                        Raw::Answer(bytes) => {
                            if socket.write_all(&bytes).await.is_err() {
                                return;
                            }
                        }
                        Raw::Stall(bytes) => {
                            let _ = socket.write_all(&bytes).await;
                            std::future::pending::<()>().await;
                        }
                        Raw::Silence => std::future::pending::<()>().await,
                    }
                }
            });
        }
    });
    addr
}

#[tokio::test]
async fn storage_timeouts_bound_reads_of_located_urls() {
    // Storage that never answers, and storage that stops halfway through a body.
    let silent = raw_server(|_| Raw::Silence).await;
    let stalling = raw_server(|_| {
        Raw::Stall(
            b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\nETag: \"x\"\r\n\r\nfirst bytes".to_vec(),
        )
    })
    .await;
    // A backend whose archive routes redirect there.
    let backend = raw_server(move |head| {
        let to = if head.contains("/jobs/1/") {
            silent
        } else {
            stalling
        };
        Raw::Answer(
            format!(
                "HTTP/1.1 302 Found\r\nLocation: http://{to}/bucket/key?X-Amz-Signature=s\r\n\
                 Content-Length: 0\r\n\r\n"
            )
            .into_bytes(),
        )
    })
    .await;
    let mut config = common::test_config(&format!("http://{backend}"));
    config.artifacts.source = artifact_gateway::config::ArtifactSource::Upstream;
    config.storage.read_timeout = Duration::from_secs(1);
    let state = artifact_gateway::dispatch::AppState::new(config).unwrap();
    let gateway = artifact_gateway::listener::RunningGateway::start_with(state)
        .await
        .unwrap();
    let client = common::client();
    let url = |path: &str| format!("http://{}/api/v4/projects/7{path}", gateway.addr());
    let started = std::time::Instant::now();
    for path in ["/jobs/1/artifacts", "/jobs/1/artifacts/a.txt"] {
        let response = client.get(url(path)).send().await.unwrap();
        assert_eq!(response.status(), 504, "{path}");
        assert_eq!(
            json(response).await,
            serde_json::json!({"message": "504 Gateway Timeout"})
        );
    }
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    // The stall after the head: the body is cut, never complete.
    let response = client.get(url("/jobs/2/artifacts")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "content-length"), Some("100000"));
    let body = response.bytes().await;
    assert!(body.is_err(), "a stalled body ended as if complete");
}

/// A storage server without ETags: `Range` (one range) and `Last-Modified` only, serving
/// whatever `object` holds at the time of each request.
async fn storage_without_etags(
    object: Arc<Mutex<(Vec<u8>, &'static str)>>,
) -> std::net::SocketAddr {
    raw_server(move |head| {
        let (bytes, modified) = object.lock().unwrap().clone();
        let size = bytes.len();
        let range = head
            .lines()
            .find_map(|l| {
                l.strip_prefix("range: ")
                    .or_else(|| l.strip_prefix("Range: "))
            })
            .and_then(|r| r.trim().strip_prefix("bytes="))
            .map(|r| match r.split_once('-').unwrap() {
                ("", n) => size.saturating_sub(n.parse().unwrap())..size,
                (a, "") => a.parse().unwrap()..size,
                (a, b) => a.parse().unwrap()..(b.parse::<usize>().unwrap() + 1).min(size),
            });
        let mut answer = match &range {
            Some(r) => format!(
                "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {}-{}/{size}\r\n",
                r.start,
                r.end - 1
            ),
            None => "HTTP/1.1 200 OK\r\n".to_owned(),
        };
        let range = range.unwrap_or(0..size);
        answer += &format!(
            "Content-Length: {}\r\nLast-Modified: {modified}\r\n\r\n",
            range.len()
        );
        let mut answer = answer.into_bytes();
        answer.extend_from_slice(&bytes[range]);
        Raw::Answer(answer)
    })
    .await
}

#[tokio::test]
async fn without_an_etag_reads_are_pinned_to_size_and_last_modified() {
    let (v1, v2) = (layout(1), layout(2));
    let object = Arc::new(Mutex::new((
        v1.bytes.clone(),
        "Tue, 01 Dec 2026 10:00:00 GMT",
    )));
    let storage = storage_without_etags(Arc::clone(&object)).await;
    let backend = raw_server(move |_| {
        Raw::Answer(
            format!(
                "HTTP/1.1 302 Found\r\nLocation: http://{storage}/a/b?sig=1\r\nContent-Length: 0\r\n\r\n"
            )
            .into_bytes(),
        )
    })
    .await;
    let mut config = common::test_config(&format!("http://{backend}"));
    config.artifacts.source = artifact_gateway::config::ArtifactSource::Upstream;
    let state = artifact_gateway::dispatch::AppState::new(config).unwrap();
    let gateway = artifact_gateway::listener::RunningGateway::start_with(state)
        .await
        .unwrap();
    let client = common::client();
    let url = |name: &str| {
        format!(
            "http://{}/api/v4/projects/7/jobs/1/artifacts/{name}",
            gateway.addr()
        )
    };
    let read = |name: &'static str| {
        let client = client.clone();
        let url = url(name);
        async move {
            let response = client.get(url).send().await.unwrap();
            assert_eq!(response.status(), 200, "{name}");
            response.bytes().await.unwrap()
        }
    };
    assert!(read("big-stored.bin").await == v1.big_stored);
    // Replaced: another size and another date, and still no ETag.
    *object.lock().unwrap() = (v2.bytes.clone(), "Wed, 02 Dec 2026 10:00:00 GMT");
    assert!(
        read("big-stored.bin").await == v2.big_stored,
        "the old index served the new object"
    );
    assert!(read("dir/big-deflated.txt").await == v2.big_deflated);
    // The whole archive: Last-Modified, and no ETag invented for the client.
    let archive = client
        .get(format!(
            "http://{}/api/v4/projects/7/jobs/1/artifacts",
            gateway.addr()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(
        header(&archive, "last-modified"),
        Some("Wed, 02 Dec 2026 10:00:00 GMT")
    );
    assert_eq!(header(&archive, "etag"), None);
    assert!(archive.bytes().await.unwrap() == v2.bytes);
}

#[tokio::test]
async fn one_callers_burst_shares_one_locate_and_one_open() {
    let h = start(Kind::Upstream, |_| {}).await;
    let a = layout(11);
    let before = reads_so_far(&h);
    let requests = (0..16).map(|i| {
        let name = if i % 2 == 0 {
            "small.txt"
        } else {
            "big-stored.bin"
        };
        let want = if i % 2 == 0 {
            a.small.clone()
        } else {
            a.big_stored.clone()
        };
        let (client, url) = (
            h.client.clone(),
            h.url(&format!("/projects/1/jobs/11/artifacts/{name}")),
        );
        async move {
            let response = client
                .get(url)
                .header("PRIVATE-TOKEN", TOKEN)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
            assert!(response.bytes().await.unwrap() == want, "{name}");
        }
    });
    futures_util::future::join_all(requests).await;
    assert_eq!(
        archive_route_count(&h, 1, 11),
        1,
        "one locate for the burst"
    );
    // One tail read; the stored entry outside the tail is read by each of its requests.
    let reads = reads_since(&h, before);
    assert_eq!(
        reads
            .iter()
            .filter(|r| r.as_deref() == Some("bytes=-131072"))
            .count(),
        1,
        "{reads:?}"
    );
    assert_eq!(reads.len(), 1 + 8, "{reads:?}");
    // Refusals are shared by a burst too, and never kept.
    let refused = (0..8).map(|_| {
        let (client, url) = (
            h.client.clone(),
            h.url("/projects/1/jobs/11/artifacts/small.txt"),
        );
        async move {
            let response = client
                .get(url)
                .header("PRIVATE-TOKEN", "outsider-token")
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 404);
            assert_eq!(
                json(response).await,
                serde_json::json!({"message": "404 Project Not Found"})
            );
        }
    });
    futures_util::future::join_all(refused).await;
    let refusals = archive_route_count(&h, 1, 11) - 1;
    assert!((1..=8).contains(&refusals), "{refusals}");
    let again = get_with(
        &h,
        "/projects/1/jobs/11/artifacts/small.txt",
        &[("PRIVATE-TOKEN", "outsider-token")],
    )
    .await;
    assert_eq!(again.status(), 404);
    assert_eq!(
        archive_route_count(&h, 1, 11) - 1,
        refusals + 1,
        "a refusal is not kept"
    );
}
