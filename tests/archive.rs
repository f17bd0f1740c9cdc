//! Archive downloads served from object storage (local directory and S3), by job id and by
//! ref: bytes, headers, ranges, conditional requests, authorisation by the backend.

#[macro_use]
mod common;

use common::storage::Kind;
use common::{fixture, header, json, Harness, TOKEN};
use sample_backend::{BackendBuilder, JobSpec, JobStatus, SampleBackend};

const DISPOSITION: &str = "attachment; filename=\"artifacts.zip\"; filename*=UTF-8''artifacts.zip";

on_every_source! {
    archive_download_is_byte_exact_with_gitlab_headers => download_is_byte_exact;
    head_answers_headers_only => head_answers_headers_only;
    every_range_form_is_a_ranged_storage_read => ranges;
    unsatisfiable_ranges_are_416 => unsatisfiable;
    conditional_requests => conditional;
    missing_archives_and_refusals => missing_and_refused;
    credentials_in_every_form => credentials;
    encoded_project_path_serves_the_same_object => encoded_project_path;
}

// "Latest successful" is the gateway's own walk of the job list in storage mode, and the
// backend's routing in upstream mode (GitLab: the newest successful pipeline); the
// upstream cases are in tests/upstream.rs.
on_both_storages! {
    by_ref_picks_the_newest_successful_job => by_ref_newest_successful;
    by_ref_walks_more_than_one_page => by_ref_pages;
}

/// Sample data: jobs 101, 103, 104 (project 1) and 201 (project 2) have archives.
async fn harness(kind: Kind) -> (Harness, Vec<u8>) {
    let h = Harness::on(kind, BackendBuilder::sample_data()).await;
    let archive = fixture("python-stored.zip");
    h.storage.put("1/104/artifacts.zip", &archive);
    h.storage.put("1/101/artifacts.zip", &fixture("go.zip"));
    h.storage.put("1/103/artifacts.zip", &fixture("jar.zip"));
    h.storage
        .put("2/201/artifacts.zip", &fixture("python-deflate.zip"));
    (h, archive)
}

/// Storage mode: the backend is asked for job metadata only. Upstream mode: it is asked
/// the archive routes (that is where archives are found), never a single-file route.
fn assert_no_artifact_bytes_asked(h: &Harness) {
    for request in h.backend.requests() {
        let path = request.path_and_query.split('?').next().unwrap().to_owned();
        let asked = if h.storage.kind.is_upstream() {
            path.contains("/raw/")
                || path
                    .split_once("/artifacts/")
                    .is_some_and(|(_, file)| !file.ends_with("/download"))
        } else {
            path.contains("/artifacts") || path.ends_with("/download")
        };
        assert!(
            !asked,
            "the backend was asked for artifact bytes: {} {}",
            request.method, request.path_and_query
        );
    }
}

async fn download_is_byte_exact(kind: Kind) {
    let (h, archive) = harness(kind).await;
    let response = h.get("/projects/1/jobs/104/artifacts", Some(TOKEN)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "content-type"), Some("application/zip"));
    assert_eq!(header(&response, "content-disposition"), Some(DISPOSITION));
    assert_eq!(
        header(&response, "content-length"),
        Some(archive.len().to_string().as_str())
    );
    assert_eq!(header(&response, "accept-ranges"), Some("bytes"));
    assert_eq!(header(&response, "x-content-type-options"), Some("nosniff"));
    let etag = header(&response, "etag").expect("an ETag").to_owned();
    assert!(
        etag.starts_with('"') && etag.ends_with('"') && etag.len() > 2,
        "{etag}"
    );
    assert!(header(&response, "last-modified")
        .unwrap()
        .ends_with(" GMT"));
    assert_eq!(response.bytes().await.unwrap(), archive);

    // Another project, another archive, and the same request twice gives the same ETag.
    let other = h.get("/projects/2/jobs/201/artifacts", Some(TOKEN)).await;
    assert_eq!(other.bytes().await.unwrap(), fixture("python-deflate.zip"));
    let again = h.get("/projects/1/jobs/104/artifacts", Some(TOKEN)).await;
    assert_eq!(header(&again, "etag"), Some(etag.as_str()));
    assert_no_artifact_bytes_asked(&h);
}

async fn head_answers_headers_only(kind: Kind) {
    let (h, archive) = harness(kind).await;
    let response = h.head("/projects/1/jobs/104/artifacts", Some(TOKEN)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        header(&response, "content-length"),
        Some(archive.len().to_string().as_str())
    );
    assert_eq!(header(&response, "content-disposition"), Some(DISPOSITION));
    assert!(header(&response, "etag").is_some());
    assert!(response.bytes().await.unwrap().is_empty());
    let ranged = h
        .request(http::Method::HEAD, "/projects/1/jobs/104/artifacts")
        .header("Range", "bytes=10-19")
        .send()
        .await
        .unwrap();
    assert_eq!(ranged.status(), 206);
    assert_eq!(
        header(&ranged, "content-range"),
        Some(format!("bytes 10-19/{}", archive.len()).as_str())
    );
    assert_no_artifact_bytes_asked(&h);
}

async fn ranges(kind: Kind) {
    let (h, archive) = harness(kind).await;
    let len = archive.len();
    let cases = [
        ("bytes=0-99", 0..100),
        ("bytes=1000-", 1000..len),
        ("bytes=-500", len - 500..len),
        (
            &format!("bytes={}-{}", len - 10, len + 1000) as &str,
            len - 10..len,
        ),
        (&format!("bytes=-{}", len * 2) as &str, 0..len),
    ];
    for (range, expected) in cases {
        let response = h.get_range("/projects/1/jobs/104/artifacts", range).await;
        assert_eq!(response.status(), 206, "{range}");
        assert_eq!(
            header(&response, "content-range"),
            Some(format!("bytes {}-{}/{len}", expected.start, expected.end - 1).as_str()),
            "{range}"
        );
        assert_eq!(
            header(&response, "content-length"),
            Some(expected.len().to_string().as_str())
        );
        assert_eq!(
            response.bytes().await.unwrap(),
            &archive[expected],
            "{range}"
        );
    }
    // Several ranges or a malformed header: the whole archive (RFC 9110 lets us ignore it).
    for range in ["bytes=0-1,5-6", "bytes=5-1", "lines=1-2"] {
        let response = h.get_range("/projects/1/jobs/104/artifacts", range).await;
        assert_eq!(response.status(), 200, "{range}");
        assert_eq!(response.bytes().await.unwrap().len(), len);
    }
}

on_both_storages! {
    ranges_are_read_from_storage_not_skipped => ranged_reads;
}

/// Ranges go to storage as ranged reads: nothing before the range is read and discarded.
async fn ranged_reads(kind: Kind) {
    let h = Harness::tapped(
        kind,
        BackendBuilder::sample_data(),
        common::storage::Tap::new,
        |_| {},
    )
    .await;
    let archive = fixture("python-stored.zip");
    h.storage.put("1/104/artifacts.zip", &archive);
    let response = h
        .get_range("/projects/1/jobs/104/artifacts", "bytes=200000-200099")
        .await;
    assert_eq!(response.bytes().await.unwrap(), &archive[200000..200100]);
    let tap = h.tap.as_ref().unwrap();
    assert_eq!(
        tap.bytes_read.load(std::sync::atomic::Ordering::SeqCst),
        100,
        "{kind:?}"
    );
    assert_eq!(
        tap.requests(),
        1,
        "{kind:?}: one storage request per download"
    );
}

async fn unsatisfiable(kind: Kind) {
    let (h, archive) = harness(kind).await;
    for range in [
        format!("bytes={}-", archive.len()),
        format!("bytes={}-{}", archive.len() + 5, archive.len() + 9),
        "bytes=-0".to_owned(),
    ] {
        let response = h.get_range("/projects/1/jobs/104/artifacts", &range).await;
        assert_eq!(response.status(), 416, "{range}");
        assert_eq!(
            header(&response, "content-range"),
            Some(format!("bytes */{}", archive.len()).as_str()),
            "{range}"
        );
        assert_eq!(json(response).await["message"], "416 Range Not Satisfiable");
    }
}

async fn conditional(kind: Kind) {
    let (h, archive) = harness(kind).await;
    let first = h.get("/projects/1/jobs/104/artifacts", Some(TOKEN)).await;
    let etag = header(&first, "etag").unwrap().to_owned();
    let modified = header(&first, "last-modified").unwrap().to_owned();
    drop(first);
    let get = |name: &'static str, value: String| {
        h.request(http::Method::GET, "/projects/1/jobs/104/artifacts")
            .header(name, value)
    };
    let not_modified = get("If-None-Match", etag.clone()).send().await.unwrap();
    assert_eq!(not_modified.status(), 304);
    assert_eq!(header(&not_modified, "etag"), Some(etag.as_str()));
    assert!(not_modified.bytes().await.unwrap().is_empty());
    let listed = get("If-None-Match", format!("\"nope\", {etag}"))
        .send()
        .await
        .unwrap();
    assert_eq!(listed.status(), 304);
    let changed = get("If-None-Match", "\"some-other-version\"".into())
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), 200);
    assert_eq!(changed.bytes().await.unwrap(), archive);
    assert_eq!(
        get("If-Modified-Since", modified.clone())
            .send()
            .await
            .unwrap()
            .status(),
        304
    );
    assert_eq!(
        get("If-Modified-Since", "Mon, 01 Jan 2001 00:00:00 GMT".into())
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    // If-Range: a current validator keeps the range, a stale one gets the whole archive.
    let ranged = get("If-Range", etag.clone())
        .header("Range", "bytes=0-9")
        .send()
        .await
        .unwrap();
    assert_eq!(ranged.status(), 206);
    assert_eq!(ranged.bytes().await.unwrap(), &archive[..10]);
    let stale = get("If-Range", "\"stale\"".into())
        .header("Range", "bytes=0-9")
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), 200);
    assert_eq!(stale.bytes().await.unwrap(), archive);
    let by_date = get("If-Range", modified)
        .header("Range", "bytes=0-9")
        .send()
        .await
        .unwrap();
    assert_eq!(by_date.status(), 206);
}

async fn missing_and_refused(kind: Kind) {
    let (h, _) = harness(kind).await;
    // 102 failed without an archive: GitLab's 404 (the backend's own, in upstream mode).
    let none = h.get("/projects/1/jobs/102/artifacts", Some(TOKEN)).await;
    assert_eq!(none.status(), 404);
    let message = if kind.is_upstream() {
        "404 Not found"
    } else {
        "404 Not Found"
    };
    assert_eq!(json(none).await, serde_json::json!({ "message": message }));
    // The job lists an archive but storage has no object.
    h.storage.remove("1/101/artifacts.zip");
    let gone = h.get("/projects/1/jobs/101/artifacts", Some(TOKEN)).await;
    assert_eq!(gone.status(), 404);
    assert_eq!(
        json(gone).await,
        serde_json::json!({"message": "404 Not Found"})
    );
    // The backend decides who sees what: its answers come back unchanged.
    let hidden = h
        .get("/projects/2/jobs/201/artifacts", Some("outsider-token"))
        .await;
    assert_eq!(hidden.status(), 404);
    assert_eq!(
        json(hidden).await,
        serde_json::json!({"message": "404 Project Not Found"})
    );
    let anonymous_private = h.get("/projects/2/jobs/201/artifacts", None).await;
    assert_eq!(anonymous_private.status(), 404);
    let bad = h
        .get("/projects/1/jobs/104/artifacts", Some("forged"))
        .await;
    assert_eq!(bad.status(), 401);
    assert_eq!(
        json(bad).await,
        serde_json::json!({"message": "401 Unauthorized"})
    );
    let unknown_job = h.get("/projects/1/jobs/999/artifacts", Some(TOKEN)).await;
    assert_eq!(unknown_job.status(), 404);
    assert_no_artifact_bytes_asked(&h);
}

async fn credentials(kind: Kind) {
    let (h, archive) = harness(kind).await;
    // Anonymous on a public project.
    let anonymous = h.get("/projects/1/jobs/104/artifacts", None).await;
    assert_eq!(anonymous.status(), 200);
    assert_eq!(anonymous.bytes().await.unwrap(), archive);
    // A running job's token, in the header and in the query.
    let job_token = SampleBackend::job_token(106);
    let by_header = h
        .client
        .get(h.url("/projects/1/jobs/104/artifacts"))
        .header("JOB-TOKEN", &job_token)
        .send()
        .await
        .unwrap();
    assert_eq!(by_header.status(), 200);
    assert_eq!(by_header.bytes().await.unwrap(), archive);
    let by_query = h
        .client
        .get(h.url(&format!(
            "/projects/1/jobs/104/artifacts?job_token={job_token}"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(by_query.status(), 200);
    assert_eq!(by_query.bytes().await.unwrap(), archive);
    // A job token of a finished job is no longer valid.
    let expired = h
        .client
        .get(h.url("/projects/1/jobs/104/artifacts"))
        .header("JOB-TOKEN", SampleBackend::job_token(104))
        .send()
        .await
        .unwrap();
    assert_eq!(expired.status(), 401);
    let private_query = h
        .client
        .get(h.url("/projects/2/jobs/201/artifacts?private_token=demo-token"))
        .send()
        .await
        .unwrap();
    assert_eq!(private_query.status(), 200);
    let bearer = h
        .client
        .get(h.url("/projects/2/jobs/201/artifacts"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(bearer.status(), 200);
}

async fn encoded_project_path(kind: Kind) {
    let (h, archive) = harness(kind).await;
    for path in [
        "/projects/demo%2Fapp/jobs/104/artifacts",
        "/projects/demo%2fapp/jobs/104/artifacts",
    ] {
        let response = h.get(path, Some(TOKEN)).await;
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(response.bytes().await.unwrap(), archive);
    }
    // 103 is the only (so the newest successful) build on feature/login, whichever way
    // "latest successful" is decided.
    let by_ref = h
        .get(
            "/projects/demo%2Fapp/jobs/artifacts/feature%2Flogin/download?job=build",
            Some(TOKEN),
        )
        .await;
    assert_eq!(by_ref.status(), 200);
    assert_eq!(by_ref.bytes().await.unwrap(), fixture("jar.zip"));
}

async fn by_ref_newest_successful(kind: Kind) {
    let (h, archive) = harness(kind).await;
    // 107 (build, main) is newer but failed; 106 is running; 104 is the newest success.
    let main = h
        .get(
            "/projects/1/jobs/artifacts/main/download?job=build",
            Some(TOKEN),
        )
        .await;
    assert_eq!(main.status(), 200);
    assert_eq!(header(&main, "content-disposition"), Some(DISPOSITION));
    assert_eq!(main.bytes().await.unwrap(), archive);
    // Another ref, with its slash raw (python-gitlab) and encoded.
    for path in [
        "/projects/1/jobs/artifacts/feature/login/download?job=build",
        "/projects/1/jobs/artifacts/feature%2Flogin/download?job=build",
    ] {
        let response = h.get(path, Some(TOKEN)).await;
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(
            response.bytes().await.unwrap(),
            fixture("jar.zip"),
            "{path}"
        );
    }
    let head = h
        .head(
            "/projects/1/jobs/artifacts/main/download?job=build",
            Some(TOKEN),
        )
        .await;
    assert_eq!(head.status(), 200);
    assert_eq!(
        header(&head, "content-length"),
        Some(archive.len().to_string().as_str())
    );
    for path in [
        "/projects/1/jobs/artifacts/main/download?job=nope",
        "/projects/1/jobs/artifacts/no-such-ref/download?job=build",
    ] {
        let response = h.get(path, Some(TOKEN)).await;
        assert_eq!(response.status(), 404, "{path}");
        assert_eq!(
            json(response).await,
            serde_json::json!({"message": "404 Not found"})
        );
    }
    // `test` on main only ever failed.
    assert_eq!(
        h.get(
            "/projects/1/jobs/artifacts/main/download?job=test",
            Some(TOKEN)
        )
        .await
        .status(),
        404
    );
    let missing = h
        .get("/projects/1/jobs/artifacts/main/download", Some(TOKEN))
        .await;
    assert_eq!(missing.status(), 400);
    assert_eq!(
        json(missing).await,
        serde_json::json!({"error": "job is missing"})
    );
    let hidden = h
        .get(
            "/projects/2/jobs/artifacts/main/download?job=build",
            Some("outsider-token"),
        )
        .await;
    assert_eq!(hidden.status(), 404);
    assert_eq!(json(hidden).await["message"], "404 Project Not Found");
    assert_no_artifact_bytes_asked(&h);
}

async fn by_ref_pages(kind: Kind) {
    // 250 successful jobs on main newer than the one we want: it is on the third page.
    let backend = big_repo();
    let h = Harness::on(kind, backend).await;
    let archive = fixture("go.zip");
    h.storage.put("7/1000/artifacts.zip", &archive);
    let response = h
        .get(
            "/projects/7/jobs/artifacts/main/download?job=package",
            Some(TOKEN),
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.bytes().await.unwrap(), archive);
    assert_eq!(h.backend.count("GET", "/api/v4/projects/7/jobs"), 3);

    // Resolved once per caller for a while: no more walking.
    let again = h
        .get(
            "/projects/7/jobs/artifacts/main/download?job=package",
            Some(TOKEN),
        )
        .await;
    assert_eq!(again.status(), 200);
    assert_eq!(h.backend.count("GET", "/api/v4/projects/7/jobs"), 3);
}

/// Project 7: the successful `package` job 1000 on main, then 250 newer successful `test`
/// jobs, so `package` is on the third page of 100.
fn big_repo() -> BackendBuilder {
    let mut backend = BackendBuilder::new()
        .user("demo", TOKEN)
        .project(
            7,
            "big/repo",
            sample_backend::Visibility::Private,
            &["demo"],
        )
        .job(JobSpec::new(1000, 7, "package", "main", JobStatus::Success).with_archive(10));
    for id in 1001..=1250 {
        backend = backend.job(JobSpec::new(id, 7, "test", "main", JobStatus::Success));
    }
    backend
}

#[tokio::test]
async fn by_ref_stops_at_the_page_limit() {
    let backend = big_repo();
    let h = Harness::start_with(backend, |c| c.artifacts.by_ref_max_pages = 2).await;
    let response = h
        .get(
            "/projects/7/jobs/artifacts/main/download?job=package",
            Some(TOKEN),
        )
        .await;
    assert_eq!(response.status(), 404);
    assert_eq!(h.backend.count("GET", "/api/v4/projects/7/jobs"), 2);
}

/// With `redirect_downloads`, an authorised GET is answered with a short-lived presigned
/// URL on S3, which serves the same bytes; refusals are still the backend's.
#[tokio::test]
async fn s3_downloads_can_redirect_to_a_presigned_url() {
    let h = Harness::build(BackendBuilder::sample_data(), Kind::S3, None, |c| {
        c.storage.redirect_downloads = true;
        c.storage.presign_ttl = std::time::Duration::from_secs(60);
    })
    .await;
    let archive = fixture("python-deflate.zip");
    h.storage.put("1/104/artifacts.zip", &archive);
    let response = h.get("/projects/1/jobs/104/artifacts", Some(TOKEN)).await;
    assert_eq!(response.status(), 302);
    assert_eq!(header(&response, "cache-control"), Some("no-store"));
    let location = header(&response, "location").unwrap().to_owned();
    assert!(
        location.contains("/artifacts/1/104/artifacts.zip?"),
        "{location}"
    );
    assert!(location.contains("X-Amz-Signature="), "{location}");
    let followed = common::client().get(&location).send().await.unwrap();
    assert_eq!(followed.status(), 200);
    assert_eq!(followed.bytes().await.unwrap(), archive);

    // By ref too; HEAD is answered directly; refusals never reveal a URL.
    let by_ref = h
        .get(
            "/projects/1/jobs/artifacts/main/download?job=build",
            Some(TOKEN),
        )
        .await;
    assert_eq!(by_ref.status(), 302);
    let head = h
        .client
        .head(h.url("/projects/1/jobs/104/artifacts"))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 200);
    let refused = h
        .get("/projects/2/jobs/201/artifacts", Some("outsider-token"))
        .await;
    assert_eq!(refused.status(), 404);
    assert!(header(&refused, "location").is_none());
}
