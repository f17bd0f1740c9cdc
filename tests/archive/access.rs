//! Who gets an archive: missing archives and the backend's refusals answered as GitLab
//! does, credentials in every form GitLab takes, and an encoded project path serving the
//! same object as the numeric id.

use sample_backend::SampleBackend;

use crate::common::storage::Kind;
use crate::common::{fixture, json, TOKEN};
use crate::support::{assert_no_artifact_bytes_asked, harness};

on_every_source! {
    missing_archives_and_refusals => missing_and_refused;
    credentials_in_every_form => credentials;
    encoded_project_path_serves_the_same_object => encoded_project_path;
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
