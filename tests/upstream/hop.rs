//! The hop from the gateway to the located object: archives the backend streams itself
//! (`proxy_download`), read with ranges; a `Location` outside `allowed_hosts`;
//! `artifacts_redirect` answering downloads with the backend's redirect; locate outcomes
//! counted; and storage timeouts bounding reads of located URLs.

use std::time::Duration;

use crate::common;
use crate::common::storage::Kind;
use crate::common::{header, json, TOKEN};
use crate::support::{
    expect_bytes, get_with, layout, raw_server, reads_since, reads_so_far, start, Raw,
};

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
