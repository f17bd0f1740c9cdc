//! Who may read what in upstream mode: job tokens on the artifact routes only, the
//! backend's refusals passed through as they are, and the located object's URL never
//! shown, neither in an answer nor in a log line.

use crate::common::logs::{self, Captured};
use crate::common::storage::Kind;
use crate::common::{header, json, JOB_TOKEN, TOKEN};
use crate::support::{expect_bytes, get_with, layout, start, SHA256_OF_1};

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

// Refusals pass through; the object's URL never shows

fn record(seen: &mut String, response: &reqwest::Response) {
    for (name, value) in response.headers() {
        seen.push_str(&format!(
            "{name}: {}\n",
            String::from_utf8_lossy(value.as_bytes())
        ));
    }
}

/// The gateway's log lines (debug and up) in this test binary; the sample backend's own
/// are left out, it is not the gateway.
fn logs() -> &'static Captured {
    logs::capture("artifact_gateway=debug,sample_backend=off")
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
    let text = logs.text();
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
