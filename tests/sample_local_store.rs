//! The sample backend's local object store (`ArtifactStore::local`), over HTTP: archive
//! routes answering 302 to signed URLs on the backend's own `/-/objects/` route, and that
//! route answering like S3 (bytes, ranges, `If-*`, expired and tampered URLs, missing
//! objects); proxy mode reading the same files.
//!
//! Expected values come from the test's own knowledge: the bytes it wrote, the key the
//! backend named.

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::header;
use sample_backend::{
    ArtifactStore, BackendBuilder, DownloadMode, JobSpec, JobStatus, SampleBackend, Visibility,
};

const DEMO: (&str, &str) = ("PRIVATE-TOKEN", common::TOKEN);
/// Job 12 is running, so this token is live; it belongs to project 1.
const JOB_TOKEN: (&str, &str) = ("JOB-TOKEN", common::JOB_TOKEN);

struct World {
    dir: PathBuf,
    backend: SampleBackend,
    client: reqwest::Client,
    bytes: Vec<u8>,
}

impl Drop for World {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Private project 1 of `demo`: job 11 (success, archive), job 12 (running). Job 11's
/// archive is written where the backend says it lives.
async fn world(tag: &str, mode: DownloadMode, ttl: Option<Duration>) -> World {
    let dir = std::env::temp_dir().join(format!(
        "artifact-gateway-local-store-{tag}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    let mut store = ArtifactStore::local(dir.clone(), mode);
    if let Some(ttl) = ttl {
        store = store.presign_ttl(ttl);
    }
    let backend = BackendBuilder::new()
        .user("demo", "demo-token")
        .project(1, "group/app", Visibility::Private, &["demo"])
        .job(
            JobSpec::new(11, 1, "build", "main", JobStatus::Success)
                .pipeline(100)
                .with_archive(1000),
        )
        .job(JobSpec::new(12, 1, "build", "main", JobStatus::Running).pipeline(101))
        .gitlab_job_token_rules()
        .artifacts_in(store)
        .start()
        .await
        .expect("backend starts");
    // Larger than one read chunk (256 KiB), so the body streams in several.
    let bytes: Vec<u8> = (0..600_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let path = dir.join(backend.archive_key(11).expect("job 11 has an archive key"));
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, &bytes).unwrap();
    World {
        dir,
        backend,
        client: common::client(),
        bytes,
    }
}

impl World {
    fn archive_url(&self) -> String {
        format!("{}/api/v4/projects/1/jobs/11/artifacts", self.backend.url())
    }

    async fn send(
        &self,
        method: reqwest::Method,
        url: &str,
        headers: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut request = self.client.request(method, url);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send().await.expect("backend answers")
    }

    async fn get(&self, url: &str, headers: &[(&str, &str)]) -> reqwest::Response {
        self.send(reqwest::Method::GET, url, headers).await
    }

    /// A fresh presigned URL from the archive route.
    async fn presigned(&self, method: reqwest::Method) -> String {
        let answer = self.send(method, &self.archive_url(), &[DEMO]).await;
        assert!(answer.status().is_redirection(), "{}", answer.status());
        header(&answer, "location").expect("a Location").to_owned()
    }

    fn len(&self) -> String {
        self.bytes.len().to_string()
    }
}

/// The URL with its `signature` parameter's first hex digit changed.
fn tampered(url: &str) -> String {
    let (before, signature) = url.split_once("signature=").unwrap();
    let first = if signature.starts_with('0') { '1' } else { '0' };
    format!("{before}signature={first}{}", &signature[1..])
}

#[tokio::test]
async fn redirect_names_a_fresh_signed_url_on_the_backend_that_serves_the_bytes() {
    let w = world("redirect", DownloadMode::Redirect, None).await;
    let key = w.backend.archive_key(11).unwrap();
    let first = w.get(&w.archive_url(), &[JOB_TOKEN]).await;
    assert_eq!(first.status(), 302);
    assert_eq!(header(&first, "content-type"), Some("text/plain"));
    let a = header(&first, "location").unwrap().to_owned();
    let b = w.presigned(reqwest::Method::GET).await;
    assert_ne!(a, b, "every answer is signed afresh");
    let without_query = |url: &str| url.split('?').next().unwrap().to_owned();
    assert_eq!(without_query(&a), without_query(&b), "same object");
    assert_eq!(
        without_query(&a),
        format!("{}/-/objects/{key}", w.backend.url()),
        "on the backend itself, outside /api/v4"
    );
    assert!(a.contains("expires=") && a.contains("signature="), "{a}");

    // Without any credentials: the bytes, with S3's headers.
    let plain = reqwest::Client::new();
    for url in [&a, &b] {
        let got = plain.get(url).send().await.unwrap();
        assert_eq!(got.status(), 200, "{url}");
        assert_eq!(header(&got, "content-length"), Some(w.len().as_str()));
        assert_eq!(header(&got, "accept-ranges"), Some("bytes"));
        assert_eq!(
            header(&got, "content-type"),
            Some("application/octet-stream")
        );
        assert!(header(&got, "last-modified").is_some_and(|v| v.ends_with(" GMT")));
        let etag = header(&got, "etag").expect("an ETag");
        assert!(
            etag.starts_with('"') && etag.ends_with('"') && etag.len() > 2,
            "a strong, quoted ETag: {etag}"
        );
        let body = got.bytes().await.unwrap();
        assert!(body == w.bytes, "{} bytes, not the archive", body.len());
    }

    // HEAD: 303 to a URL signed for HEAD, which answers the headers only; the method is
    // signed, so the HEAD URL does not GET and the GET URL does not HEAD.
    let head_url = w.presigned(reqwest::Method::HEAD).await;
    let probed = plain.head(&head_url).send().await.unwrap();
    assert_eq!(probed.status(), 200);
    assert_eq!(header(&probed, "content-length"), Some(w.len().as_str()));
    assert!(probed.bytes().await.unwrap().is_empty());
    assert_eq!(plain.get(&head_url).send().await.unwrap().status(), 403);
    assert_eq!(plain.head(&a).send().await.unwrap().status(), 403);

    // Object reads are recorded like every request.
    let object_path = format!("/-/objects/{key}");
    assert_eq!(w.backend.count("GET", &object_path), 3);
    assert_eq!(w.backend.count("HEAD", &object_path), 2);
}

#[tokio::test]
async fn object_route_answers_ranges_and_conditionals_like_s3() {
    let w = world("ranges", DownloadMode::Redirect, None).await;
    let url = w.presigned(reqwest::Method::GET).await;
    let size = w.bytes.len();
    let whole = w.get(&url, &[]).await;
    let etag = header(&whole, "etag").unwrap().to_owned();
    let last_modified = header(&whole, "last-modified").unwrap().to_owned();

    let ranged = |range: String, from: usize, to: usize| {
        let (url, w, etag) = (&url, &w, &etag);
        async move {
            let r = w.get(url, &[("Range", &range)]).await;
            assert_eq!(r.status(), 206, "{range}");
            assert_eq!(
                header(&r, "content-range"),
                Some(format!("bytes {from}-{}/{size}", to - 1).as_str()),
                "{range}"
            );
            assert_eq!(
                header(&r, "content-length"),
                Some((to - from).to_string().as_str())
            );
            assert_eq!(header(&r, "etag"), Some(etag.as_str()));
            let body = r.bytes().await.unwrap();
            assert!(body == w.bytes[from..to], "{range}: wrong bytes");
        }
    };
    ranged("bytes=2-9".into(), 2, 10).await;
    ranged("bytes=300000-".into(), 300_000, size).await;
    ranged("bytes=-100".into(), size - 100, size).await;
    ranged(format!("bytes=-{}", size * 2), 0, size).await;
    ranged(format!("bytes={}-{}", size - 5, size * 3), size - 5, size).await;

    for past in [format!("bytes={size}-"), "bytes=-0".to_owned()] {
        let r = w.get(&url, &[("Range", &past)]).await;
        assert_eq!(r.status(), 416, "{past}");
        assert_eq!(
            header(&r, "content-range"),
            Some(format!("bytes */{size}").as_str())
        );
    }
    // Several ranges: ignored, the whole object.
    let r = w.get(&url, &[("Range", "bytes=0-1,5-6")]).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap().len(), size);

    // If-Match: another tag is 412 (a range too); the object's own serves the range.
    for headers in [
        vec![("If-Match", "\"other\"")],
        vec![("If-Match", "\"other\""), ("Range", "bytes=0-9")],
    ] {
        let r = w.get(&url, &headers).await;
        assert_eq!(r.status(), 412, "{headers:?}");
    }
    let r = w
        .get(&url, &[("If-Match", &etag), ("Range", "bytes=0-9")])
        .await;
    assert_eq!(r.status(), 206);
    assert_eq!(r.bytes().await.unwrap().as_ref(), &w.bytes[..10]);

    // If-None-Match / If-Modified-Since: 304 with the validators and no body.
    for headers in [
        vec![("If-None-Match", etag.as_str())],
        vec![("If-Modified-Since", last_modified.as_str())],
    ] {
        let r = w.get(&url, &headers).await;
        assert_eq!(r.status(), 304, "{headers:?}");
        assert_eq!(header(&r, "etag"), Some(etag.as_str()));
        assert!(r.bytes().await.unwrap().is_empty());
    }
    let r = w.get(&url, &[("If-None-Match", "\"other\"")]).await;
    assert_eq!(r.status(), 200);
    // If-Range naming another version: the whole object.
    let r = w
        .get(&url, &[("If-Range", "\"old\""), ("Range", "bytes=0-9")])
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap().len(), size);

    // A replaced object has another ETag, and the old one no longer matches.
    let path = w.dir.join(w.backend.archive_key(11).unwrap());
    std::fs::write(&path, b"PK\x05\x06 replaced").unwrap();
    let r = w.get(&url, &[("If-Match", &etag)]).await;
    assert_eq!(r.status(), 412);
    let r = w.get(&url, &[]).await;
    assert_ne!(header(&r, "etag"), Some(etag.as_str()));
    assert_eq!(r.bytes().await.unwrap().as_ref(), b"PK\x05\x06 replaced");
}

#[tokio::test]
async fn expired_or_tampered_urls_are_403_and_missing_objects_404() {
    let w = world(
        "refusals",
        DownloadMode::Redirect,
        Some(Duration::from_secs(1)),
    )
    .await;
    let url = w.presigned(reqwest::Method::GET).await;
    let plain = reqwest::Client::new();
    assert_eq!(plain.get(&url).send().await.unwrap().status(), 200);

    // Tampered: the signature, the expiry, the key; or no signature at all.
    let key = w.backend.archive_key(11).unwrap();
    let later = url.replace("expires=", "expires=1");
    let other_key = url.replace(&key, &format!("{key}x"));
    let unsigned = url.split("&signature=").next().unwrap().to_owned();
    for bad in [tampered(&url), later, other_key, unsigned] {
        let r = plain.get(&bad).send().await.unwrap();
        assert_eq!(r.status(), 403, "{bad}");
        let body = r.text().await.unwrap();
        assert!(body.contains("<Error>") && body.len() < 300, "{body}");
    }

    // Storage refuses the URL once its second has passed; a new answer works again.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let status = plain.get(&url).send().await.unwrap().status();
        if status == 403 {
            break;
        }
        assert_eq!(status, 200);
        assert!(Instant::now() < deadline, "URL never expired");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let fresh = w.presigned(reqwest::Method::GET).await;
    assert_eq!(plain.get(&fresh).send().await.unwrap().status(), 200);

    // A good URL of an object that is gone: 404.
    std::fs::remove_file(w.dir.join(&key)).unwrap();
    let r = plain.get(&fresh).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert!(r.text().await.unwrap().contains("NoSuchKey"));
}

#[tokio::test]
async fn proxy_mode_reads_the_same_files_with_range_and_conditionals() {
    let w = world("proxy", DownloadMode::Proxy, None).await;
    let r = w.get(&w.archive_url(), &[JOB_TOKEN]).await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "content-type"), Some("application/zip"));
    assert_eq!(
        header(&r, "content-disposition"),
        Some("attachment; filename=\"artifacts.zip\"; filename*=UTF-8''artifacts.zip")
    );
    assert_eq!(header(&r, "content-length"), Some(w.len().as_str()));
    assert_eq!(header(&r, "x-content-type-options"), Some("nosniff"));
    let etag = header(&r, "etag").expect("an ETag").to_owned();
    let body = r.bytes().await.unwrap();
    assert!(body == w.bytes, "{} bytes, not the archive", body.len());

    let r = w
        .get(&w.archive_url(), &[DEMO, ("Range", "bytes=2-9")])
        .await;
    assert_eq!(r.status(), 206);
    assert_eq!(
        header(&r, "content-range"),
        Some(format!("bytes 2-9/{}", w.len()).as_str())
    );
    assert_eq!(r.bytes().await.unwrap().as_ref(), &w.bytes[2..10]);

    let past = format!("bytes={}-", w.bytes.len());
    let r = w.get(&w.archive_url(), &[DEMO, ("Range", &past)]).await;
    assert_eq!(r.status(), 416);
    assert_eq!(
        header(&r, "content-range"),
        Some(format!("bytes */{}", w.len()).as_str())
    );
    let r = w
        .get(&w.archive_url(), &[DEMO, ("If-Match", "\"other\"")])
        .await;
    assert_eq!(r.status(), 412);
    let r = w
        .get(&w.archive_url(), &[DEMO, ("If-None-Match", &etag)])
        .await;
    assert_eq!(r.status(), 304);
    assert!(r.bytes().await.unwrap().is_empty());

    let head = w
        .send(reqwest::Method::HEAD, &w.archive_url(), &[DEMO])
        .await;
    assert_eq!(head.status(), 200);
    assert_eq!(header(&head, "content-length"), Some(w.len().as_str()));
    // No URL was handed out, and no object request made.
    assert!(w
        .backend
        .requests()
        .iter()
        .all(|r| !r.path().starts_with("/-/objects/")));
}
