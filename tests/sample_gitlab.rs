//! The sample backend's GitLab-faithful mode, end to end: job-token rules, archives at
//! hashed `@final` keys in the in-process S3 server, and the archive routes answering as
//! GitLab with object storage (302 to a presigned URL, or the bytes proxied).
//!
//! Expected values come from the test's own knowledge: the bytes it uploaded, sha256 of the
//! project id computed elsewhere, GitLab's messages.

mod common;

use std::time::{Duration, Instant};

use common::s3::S3Server;
use common::JOB_TOKEN;
use object_store::aws::AmazonS3Builder;
use sample_backend::{
    ArtifactStore, BackendBuilder, DownloadMode, JobSpec, JobStatus, SampleBackend, Visibility,
};

const DEMO: (&str, &str) = ("PRIVATE-TOKEN", common::TOKEN);

/// sha256("1"), the hashed directory of project 1 (computed independently of the code).
const SHA256_OF_1: &str = "6b86b273ff34fce19d6b804eff5a3f5747ada4eaa22f1d49c01e52ddb7875b4b";

fn store(s3: &S3Server, mode: DownloadMode) -> ArtifactStore {
    let amazon = AmazonS3Builder::new()
        .with_endpoint(s3.endpoint())
        .with_bucket_name(s3.bucket())
        .with_region(s3.region())
        .with_access_key_id(s3.access_key())
        .with_secret_access_key(s3.secret_key())
        .with_allow_http(true)
        .with_virtual_hosted_style_request(false)
        .build()
        .expect("S3 signer");
    ArtifactStore::new(amazon, mode)
}

/// Two private projects of `demo`. Project 1: job 11 (build, main, success, pipeline 100,
/// archive), job 12 (running, pipeline 101, so main's newest pipeline is not successful),
/// job 15 (build, release, success, pipeline 102, archive), job 16 (lint, release, success,
/// pipeline 103: release's newest successful pipeline has no build). Project 2: job 21.
fn backend(store: ArtifactStore) -> BackendBuilder {
    BackendBuilder::new()
        .user("demo", "demo-token")
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
        .job(JobSpec::new(16, 1, "lint", "release", JobStatus::Success).pipeline(103))
        .job(
            JobSpec::new(21, 2, "build", "main", JobStatus::Success)
                .pipeline(200)
                .with_archive(1000),
        )
        .gitlab_job_token_rules()
        .artifacts_in(store)
}

struct World {
    s3: S3Server,
    backend: SampleBackend,
    client: reqwest::Client,
}

async fn world(mode: DownloadMode, ttl: Option<Duration>) -> World {
    let s3 = S3Server::start("artifacts").await;
    let mut artifacts = store(&s3, mode);
    if let Some(ttl) = ttl {
        artifacts = artifacts.presign_ttl(ttl);
    }
    let backend = backend(artifacts).start().await.expect("backend starts");
    World {
        s3,
        backend,
        client: common::client(),
    }
}

impl World {
    fn url(&self, path: &str) -> String {
        format!("{}/api/v4/projects{path}", self.backend.url())
    }

    async fn get(&self, path: &str, headers: &[(&str, &str)]) -> reqwest::Response {
        self.send(reqwest::Method::GET, path, headers).await
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        headers: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut request = self.client.request(method, self.url(path));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send().await.expect("backend answers")
    }

    /// Upload `bytes` as job `job`'s archive, where the backend says it lives.
    fn upload(&self, job: u64, bytes: &[u8]) {
        let key = self
            .backend
            .archive_key(job)
            .expect("job has an archive key");
        self.s3.put(&key, bytes);
    }
}

async fn message(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let body = common::json(response).await;
    (
        status,
        body["message"].as_str().unwrap_or_default().to_owned(),
    )
}

fn location(response: &reqwest::Response) -> String {
    common::header(response, "location")
        .expect("a Location")
        .to_owned()
}

fn archive_bytes(tag: &str) -> Vec<u8> {
    format!("PK\u{5}\u{6} archive of {tag} ")
        .repeat(50)
        .into_bytes()
}

#[tokio::test]
async fn job_token_refused_on_get_job_and_trace_but_accepted_on_archive_and_lists() {
    let w = world(DownloadMode::Redirect, None).await;
    w.upload(11, &archive_bytes("11"));
    let forms: [(&str, Vec<(&str, String)>); 3] = [
        ("", vec![("JOB-TOKEN", JOB_TOKEN.to_owned())]),
        ("", vec![("Authorization", format!("Bearer {JOB_TOKEN}"))]),
        ("?job_token=job-token-12", vec![]),
    ];
    for (query, headers) in &forms {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        for refused in ["/1/jobs/11", "/1/jobs/11/trace", "/1/jobs/12"] {
            let r = w.get(&format!("{refused}{query}"), &headers).await;
            assert_eq!(
                message(r).await,
                (401, "401 Unauthorized".to_owned()),
                "{refused}{query} {headers:?}"
            );
        }
        let r = w
            .get(&format!("/1/jobs/11/artifacts{query}"), &headers)
            .await;
        assert_eq!(r.status(), 302, "archive with {headers:?}{query}");
        for list in ["/1/jobs", "/1/pipelines/100/jobs"] {
            let r = w.get(&format!("{list}{query}"), &headers).await;
            assert_eq!(r.status(), 200, "{list}{query} {headers:?}");
        }
        // A project the job's project may not read.
        let r = w
            .get(&format!("/2/jobs/21/artifacts{query}"), &headers)
            .await;
        assert_eq!(message(r).await, (404, "404 Project Not Found".to_owned()));
    }
    // A personal token still reads the job and its log.
    assert_eq!(w.get("/1/jobs/11", &[DEMO]).await.status(), 200);
    let trace = w.get("/1/jobs/11/trace", &[DEMO]).await;
    assert_eq!(trace.text().await.unwrap(), "log of 11\n");
    // A finished job's token is dead everywhere.
    let r = w
        .get("/1/jobs/11/artifacts", &[("JOB-TOKEN", "job-token-11")])
        .await;
    assert_eq!(r.status(), 401);
    // Outsiders and anonymous callers do not learn of private projects.
    let r = w
        .get(
            "/1/jobs/11/artifacts",
            &[("PRIVATE-TOKEN", "outsider-token")],
        )
        .await;
    assert_eq!(message(r).await, (404, "404 Project Not Found".to_owned()));
    let r = w.get("/1/jobs/11/artifacts", &[]).await;
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn redirect_is_a_fresh_working_presigned_url_every_time() {
    let w = world(DownloadMode::Redirect, None).await;
    let bytes = archive_bytes("11");
    w.upload(11, &bytes);
    let first = w.get("/1/jobs/11/artifacts", &[DEMO]).await;
    assert_eq!(first.status(), 302);
    assert_eq!(common::header(&first, "content-type"), Some("text/plain"));
    let a = location(&first);
    let second = w.get("/1/jobs/11/artifacts", &[DEMO]).await;
    let b = location(&second);
    assert_ne!(a, b, "every answer is signed afresh");
    let signature = |url: &str| {
        url.split('&')
            .find(|p| p.contains("X-Amz-Signature="))
            .map(str::to_owned)
    };
    assert_ne!(signature(&a), signature(&b));
    assert!(signature(&a).is_some(), "{a}");
    let key = w.backend.archive_key(11).unwrap();
    let without_query = |url: &str| url.split('?').next().unwrap().to_owned();
    assert_eq!(without_query(&a), without_query(&b), "same object");
    assert!(
        without_query(&a).ends_with(&key.replace('@', "%40")) || without_query(&a).ends_with(&key),
        "{a} names {key}"
    );
    // The URLs work without any credentials, and give the uploaded bytes.
    let plain = reqwest::Client::new();
    for url in [&a, &b] {
        let got = plain.get(url).send().await.unwrap();
        assert_eq!(got.status(), 200, "{url}");
        assert_eq!(got.bytes().await.unwrap().as_ref(), bytes.as_slice());
    }
    // HEAD: Grape answers a non-GET with 303, to a URL signed for HEAD.
    let head = w
        .send(reqwest::Method::HEAD, "/1/jobs/11/artifacts", &[DEMO])
        .await;
    assert_eq!(head.status(), 303);
    let head_url = location(&head);
    let probed = plain.head(&head_url).send().await.unwrap();
    assert_eq!(probed.status(), 200);
    assert_eq!(
        common::header(&probed, "content-length"),
        Some(bytes.len().to_string().as_str())
    );
    // Every request was recorded.
    assert_eq!(
        w.backend
            .count("GET", "/api/v4/projects/1/jobs/11/artifacts"),
        2
    );
    assert_eq!(
        w.backend
            .count("HEAD", "/api/v4/projects/1/jobs/11/artifacts"),
        1
    );
}

#[tokio::test]
async fn archive_key_has_gitlabs_hashed_final_shape() {
    let w = world(DownloadMode::Redirect, None).await;
    let key = w.backend.archive_key(11).unwrap();
    let parts: Vec<&str> = key.split('/').collect();
    assert_eq!(&parts[..4], &["6b", "86", SHA256_OF_1, "@final"], "{key}");
    let lower_hex = |s: &str| s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    assert_eq!(
        parts[4..].iter().map(|p| p.len()).collect::<Vec<_>>(),
        vec![2, 2, 60],
        "{key}"
    );
    assert!(parts[4..].iter().all(|p| lower_hex(p)), "{key}");
    // Chosen once: asking again gives the same key; another job's differs.
    assert_eq!(w.backend.archive_key(11).unwrap(), key);
    let other = w.backend.archive_key(15).unwrap();
    assert!(other.starts_with(&format!("6b/86/{SHA256_OF_1}/@final/")));
    assert_ne!(other, key);
    assert_eq!(w.backend.archive_key(12), None, "no archive, no key");
}

#[tokio::test]
async fn proxy_mode_streams_bytes_with_range_and_conditionals() {
    let w = world(DownloadMode::Proxy, None).await;
    let bytes = archive_bytes("proxied");
    w.upload(11, &bytes);
    let r = w
        .get("/1/jobs/11/artifacts", &[("JOB-TOKEN", JOB_TOKEN)])
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(common::header(&r, "content-type"), Some("application/zip"));
    assert_eq!(
        common::header(&r, "content-disposition"),
        Some("attachment; filename=\"artifacts.zip\"; filename*=UTF-8''artifacts.zip")
    );
    assert_eq!(
        common::header(&r, "content-length"),
        Some(bytes.len().to_string().as_str())
    );
    let etag = common::header(&r, "etag").expect("an ETag").to_owned();
    assert_eq!(r.bytes().await.unwrap().as_ref(), bytes.as_slice());

    let r = w
        .get("/1/jobs/11/artifacts", &[DEMO, ("Range", "bytes=2-9")])
        .await;
    assert_eq!(r.status(), 206);
    assert_eq!(
        common::header(&r, "content-range"),
        Some(format!("bytes 2-9/{}", bytes.len()).as_str())
    );
    assert_eq!(r.bytes().await.unwrap().as_ref(), &bytes[2..10]);

    let past = format!("bytes={}-", bytes.len() + 10);
    let r = w
        .get("/1/jobs/11/artifacts", &[DEMO, ("Range", &past)])
        .await;
    assert_eq!(r.status(), 416);

    let r = w
        .get("/1/jobs/11/artifacts", &[DEMO, ("If-None-Match", &etag)])
        .await;
    assert_eq!(r.status(), 304);
    assert!(r.bytes().await.unwrap().is_empty());

    let head = w
        .send(reqwest::Method::HEAD, "/1/jobs/11/artifacts", &[DEMO])
        .await;
    assert_eq!(head.status(), 200);
    assert_eq!(
        common::header(&head, "content-length"),
        Some(bytes.len().to_string().as_str())
    );
    // The single-file routes are still never to be asked.
    let r = w.get("/1/jobs/11/artifacts/a.txt", &[DEMO]).await;
    assert_eq!(r.status(), 500);
    assert_eq!(
        common::header(&r, "x-sample-backend"),
        Some("artifact-bytes-requested")
    );
}

#[tokio::test]
async fn erased_expired_or_missing_archive_is_404() {
    let w = world(DownloadMode::Redirect, None).await;
    w.upload(11, &archive_bytes("11"));
    assert_eq!(w.get("/1/jobs/11/artifacts", &[DEMO]).await.status(), 302);
    let erase = w
        .send(reqwest::Method::POST, "/1/jobs/11/erase", &[DEMO])
        .await;
    assert_eq!(erase.status(), 201);
    let r = w.get("/1/jobs/11/artifacts", &[DEMO]).await;
    assert_eq!(message(r).await, (404, "404 Not found".to_owned()));
    assert_eq!(w.backend.archive_key(11), None);
    // No archive at all; an unknown job.
    let r = w.get("/1/jobs/12/artifacts", &[DEMO]).await;
    assert_eq!(message(r).await, (404, "404 Not found".to_owned()));
    let r = w.get("/1/jobs/999/artifacts", &[DEMO]).await;
    assert_eq!(message(r).await, (404, "404 Job Not Found".to_owned()));
    // Expired.
    w.backend.update_job(15, |j| j.archive_expired = true);
    let r = w.get("/1/jobs/15/artifacts", &[DEMO]).await;
    assert_eq!(message(r).await, (404, "404 Not found".to_owned()));
}

#[tokio::test]
async fn by_ref_download_takes_the_newest_successful_pipeline() {
    let w = world(DownloadMode::Redirect, None).await;
    let bytes = archive_bytes("main build");
    w.upload(11, &bytes);
    // main's newest pipeline (101) is running; the newest successful one is 100.
    let r = w
        .get(
            "/1/jobs/artifacts/main/download?job=build",
            &[("JOB-TOKEN", JOB_TOKEN)],
        )
        .await;
    assert_eq!(r.status(), 302);
    let got = reqwest::get(location(&r)).await.unwrap();
    assert_eq!(got.bytes().await.unwrap().as_ref(), bytes.as_slice());
    // release's newest successful pipeline (103) has no build job: 404, though 102 has one.
    let r = w
        .get("/1/jobs/artifacts/release/download?job=build", &[DEMO])
        .await;
    assert_eq!(message(r).await, (404, "404 Not found".to_owned()));
    let r = w.get("/1/jobs/artifacts/main/download", &[DEMO]).await;
    assert_eq!(r.status(), 400);
    let r = w
        .get(
            "/2/jobs/artifacts/main/download?job=build",
            &[("JOB-TOKEN", JOB_TOKEN)],
        )
        .await;
    assert_eq!(message(r).await, (404, "404 Project Not Found".to_owned()));
}

#[tokio::test]
async fn presign_ttl_makes_urls_expire() {
    let w = world(DownloadMode::Redirect, Some(Duration::from_secs(1))).await;
    w.upload(11, &archive_bytes("11"));
    let url = location(&w.get("/1/jobs/11/artifacts", &[DEMO]).await);
    let plain = reqwest::Client::new();
    assert_eq!(plain.get(&url).send().await.unwrap().status(), 200);
    // Storage refuses it once its second has passed; a new answer works again.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let status = plain.get(&url).send().await.unwrap().status();
        if status == 403 {
            break;
        }
        assert!(Instant::now() < deadline, "URL never expired ({status})");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let fresh = location(&w.get("/1/jobs/11/artifacts", &[DEMO]).await);
    assert_eq!(plain.get(&fresh).send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn without_the_options_archive_routes_keep_the_marker() {
    let backend = BackendBuilder::sample_data().start().await.unwrap();
    let client = common::client();
    let r = client
        .get(format!(
            "{}/api/v4/projects/1/jobs/101/artifacts",
            backend.url()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 500);
    assert_eq!(
        common::header(&r, "x-sample-backend"),
        Some("artifact-bytes-requested")
    );
    // And job tokens still read a job, as before.
    let r = client
        .get(format!("{}/api/v4/projects/1/jobs/101", backend.url()))
        .header("JOB-TOKEN", "job-token-106")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}
