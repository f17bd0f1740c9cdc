//! The routes as GitLab answers them: job tokens refused on the job and trace routes but
//! accepted on the archive and list routes, erased, expired or missing archives as 404,
//! downloads by ref taking the newest successful pipeline, and the archive routes keeping
//! the marker without the object storage options.

use sample_backend::{BackendBuilder, DownloadMode};

use crate::common;
use crate::common::JOB_TOKEN;
use crate::support::{archive_bytes, location, message, world, DEMO};

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
