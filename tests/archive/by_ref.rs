//! Downloads by ref: the newest successful job, found by walking the job list over more
//! than one page, and up to the page limit.

use sample_backend::{BackendBuilder, JobSpec, JobStatus};

use crate::common::storage::Kind;
use crate::common::{fixture, header, json, Harness, TOKEN};
use crate::support::{assert_no_artifact_bytes_asked, harness, DISPOSITION};

// "Latest successful" is the gateway's own walk of the job list in storage mode, and the
// backend's routing in upstream mode (GitLab: the newest successful pipeline); the
// upstream cases are in tests/upstream.
on_both_storages! {
    by_ref_picks_the_newest_successful_job => by_ref_newest_successful;
    by_ref_walks_more_than_one_page => by_ref_pages;
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
