//! Job logs: a finished job's log from storage (with ranges, which GitLab's API lacks); a
//! running job's live log, or a log missing from storage, from the backend.

#[macro_use]
mod common;

use common::storage::Kind;
use common::{header, Harness, TOKEN};
use sample_backend::BackendBuilder;

fn log_text() -> Vec<u8> {
    (0..5000)
        .flat_map(|i| format!("line {i}: ünïcode ✓ output\n").into_bytes())
        .collect()
}

async fn finished_job_log_comes_from_storage(kind: Kind) {
    let h = Harness::on(kind, BackendBuilder::sample_data()).await;
    let log = log_text();
    h.storage.put("1/104/job.log", &log);
    let response = h.get("/projects/1/jobs/104/trace", Some(TOKEN)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        header(&response, "content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(
        header(&response, "content-length"),
        Some(log.len().to_string().as_str())
    );
    assert_eq!(header(&response, "accept-ranges"), Some("bytes"));
    assert_eq!(response.bytes().await.unwrap(), log);
    assert_eq!(
        h.backend.count("GET", "/api/v4/projects/1/jobs/104/trace"),
        0
    );

    // Only what a client has not seen yet.
    let seen = 100_000;
    let tail = h
        .get_range("/projects/1/jobs/104/trace", &format!("bytes={seen}-"))
        .await;
    assert_eq!(tail.status(), 206);
    assert_eq!(
        header(&tail, "content-range"),
        Some(format!("bytes {seen}-{}/{}", log.len() - 1, log.len()).as_str())
    );
    assert_eq!(tail.bytes().await.unwrap(), &log[seen..]);
    let last = h.get_range("/projects/1/jobs/104/trace", "bytes=-64").await;
    assert_eq!(last.bytes().await.unwrap(), &log[log.len() - 64..]);
    // Nothing new since: 416 says the current size.
    let nothing = h
        .request(http::Method::GET, "/projects/1/jobs/104/trace")
        .header("Range", format!("bytes={}-", log.len()))
        .send()
        .await
        .unwrap();
    assert_eq!(nothing.status(), 416);
    assert_eq!(
        header(&nothing, "content-range"),
        Some(format!("bytes */{}", log.len()).as_str())
    );

    // The backend still decides who reads it.
    let hidden = h.get("/projects/1/jobs/104/trace", Some("forged")).await;
    assert_eq!(hidden.status(), 401);
    h.storage.put("2/201/job.log", b"secret log\n");
    assert_eq!(
        h.get("/projects/2/jobs/201/trace", Some("outsider-token"))
            .await
            .status(),
        404
    );
    assert_eq!(
        h.get("/projects/demo%2Fsecret/jobs/201/trace", Some(TOKEN))
            .await
            .bytes()
            .await
            .unwrap(),
        "secret log\n"
    );
}

async fn running_job_log_is_live_from_the_backend(kind: Kind) {
    let h = Harness::on(kind, BackendBuilder::sample_data()).await;
    // Even a stale object in storage is not served for a running job.
    h.storage.put("1/106/job.log", b"stale partial log\n");
    let response = h.get("/projects/1/jobs/106/trace", Some(TOKEN)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.bytes().await.unwrap(), "Running build...\n");
    assert_eq!(
        h.backend.count("GET", "/api/v4/projects/1/jobs/106/trace"),
        1
    );
}

async fn missing_log_object_falls_back_to_the_backend(kind: Kind) {
    let h = Harness::on(kind, BackendBuilder::sample_data()).await;
    let backend_log = h.backend.job(103).unwrap().trace;
    assert!(!backend_log.is_empty());
    let response = h.get("/projects/1/jobs/103/trace", Some(TOKEN)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.bytes().await.unwrap(), backend_log);
    assert_eq!(
        h.backend.count("GET", "/api/v4/projects/1/jobs/103/trace"),
        1
    );
}

on_both_storages! {
    finished_log_from_storage => finished_job_log_comes_from_storage;
    running_log_from_backend => running_job_log_is_live_from_the_backend;
    missing_log_falls_back => missing_log_object_falls_back_to_the_backend;
}
