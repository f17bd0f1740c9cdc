//! Job actions, request recording, the artifact marker, routing errors, and the server
//! (delay, h2c, shutdown).

use super::*;

#[tokio::test]
async fn cancel_and_play() {
    let b = demo().await;
    let r = post(&b, &format!("{P1}/jobs/106/cancel"), &[DEMO]).await;
    assert_eq!(
        (r.status, r.json()["status"].as_str()),
        (201, Some("canceled"))
    );
    let r = post(&b, &format!("{P1}/jobs/101/cancel"), &[DEMO]).await;
    assert_eq!(
        (r.status, r.json()["status"].as_str()),
        (201, Some("success"))
    );
    let r = post(&b, &format!("{P1}/jobs/105/play"), &[OUTSIDER]).await;
    assert_eq!((r.status, r.message().as_str()), (403, "403 Forbidden"));
    let r = post(&b, &format!("{P1}/jobs/105/play"), &[DEMO]).await;
    assert_eq!(
        (r.status, r.json()["status"].as_str()),
        (200, Some("pending"))
    );
    let r = post(&b, &format!("{P1}/jobs/105/play"), &[DEMO]).await;
    assert_eq!(
        (r.status, r.message().as_str()),
        (400, "400 Bad request - Unplayable Job")
    );
    let r = post(&b, &format!("{P1}/jobs/9999/play"), &[DEMO]).await;
    assert_eq!((r.status, r.message().as_str()), (404, "404 Job Not Found"));
}

#[tokio::test]
async fn retry_creates_a_new_pending_job() {
    let b = demo().await;
    let r = post(&b, &format!("{P1}/jobs/102/retry"), &[DEMO]).await;
    assert_eq!(r.status, 201);
    let new = r.json();
    assert_eq!(new["id"], 202, "next free id after 201");
    assert_eq!(
        (new["name"].as_str(), new["status"].as_str()),
        (Some("test"), Some("pending"))
    );
    assert_eq!(
        (new["ref"].as_str(), new["pipeline"]["id"].as_u64()),
        (Some("main"), Some(11))
    );
    assert!(new.get("artifacts_file").is_none());
    assert_eq!(
        b.job(102).unwrap().status,
        JobStatus::Failed,
        "old job untouched"
    );
    assert_eq!(b.job(202).unwrap().project_id, 1);
    assert_eq!(get(&b, &format!("{P1}/jobs"), &[DEMO]).await.ids()[0], 202);
    for job in [105, 106] {
        let r = post(&b, &format!("{P1}/jobs/{job}/retry"), &[DEMO]).await;
        assert_eq!(
            (r.status, r.message().as_str()),
            (403, "403 Forbidden - Job is not retryable")
        );
    }
}

#[tokio::test]
async fn erase_removes_archive_and_trace_once() {
    let b = demo().await;
    let r = post(&b, &format!("{P1}/jobs/101/erase"), &[DEMO]).await;
    assert_eq!(r.status, 201);
    let job = r.json();
    assert!(job.get("artifacts_file").is_none() && job["erased_at"].is_string());
    assert_eq!(job["artifacts"], serde_json::json!([]));
    let spec = b.job(101).unwrap();
    assert!(!spec.has_archive && !spec.has_trace);
    let r = get(&b, &format!("{P1}/jobs/101/trace"), &[DEMO]).await;
    assert_eq!((r.status, r.message().as_str()), (404, "404 Not found"));
    for job in [101, 105, 106] {
        let r = post(&b, &format!("{P1}/jobs/{job}/erase"), &[DEMO]).await;
        assert_eq!(
            (r.status, r.message().as_str()),
            (403, "403 Forbidden - Job is not erasable!")
        );
    }
}

#[tokio::test]
async fn keep_and_delete_artifacts() {
    let b = demo().await;
    let r = post(&b, &format!("{P1}/jobs/104/artifacts/keep"), &[DEMO]).await;
    assert_eq!(r.status, 200);
    assert!(r.json()["artifacts_expire_at"].is_null());
    let r = post(&b, &format!("{P1}/jobs/102/artifacts/keep"), &[DEMO]).await;
    assert_eq!((r.status, r.message().as_str()), (404, "404 Not found"));
    let r = delete(&b, &format!("{P1}/jobs/104/artifacts"), &[OUTSIDER]).await;
    assert_eq!(r.status, 403);
    let r = delete(&b, &format!("{P1}/jobs/104/artifacts"), &[DEMO]).await;
    assert_eq!(
        (r.status, r.body.as_str(), r.header("content-type")),
        (204, "", None)
    );
    assert!(!b.job(104).unwrap().has_archive);
    let r = delete(&b, &format!("{P1}/jobs/104/artifacts"), &[DEMO]).await;
    assert_eq!((r.status, r.message().as_str()), (404, "404 Not found"));
}

#[tokio::test]
async fn requests_are_recorded_with_their_bodies() {
    let b = demo().await;
    let body = br#"{"job_variables_attributes":[{"key":"K","value":"v"}]}"#;
    let target = format!("{P1}/jobs/105/play?x=1");
    let headers = [DEMO, ("Content-Type", "application/json")];
    let r = send(&b, "POST", &target, &headers, body).await;
    assert_eq!(r.status, 200);
    let last = b.requests().pop().unwrap();
    assert_eq!(
        (last.method.as_str(), last.path_and_query.as_str()),
        ("POST", target.as_str())
    );
    assert_eq!(&last.body[..], body);
    assert_eq!(last.headers["content-type"], "application/json");
    assert_eq!(b.count("POST", &format!("{P1}/jobs/105/play")), 1);
    let r = send(
        &b,
        "POST",
        &format!("{P1}/jobs/105/play"),
        &[DEMO],
        b"{not json",
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(b.requests().last().unwrap().body.as_ref(), b"{not json");
    assert_eq!(b.count("POST", &format!("{P1}/jobs/105/play")), 2);
    b.clear_requests();
    assert!(b.requests().is_empty());
    assert_eq!(b.count("POST", &format!("{P1}/jobs/105/play")), 0);
}

#[tokio::test]
async fn artifact_byte_paths_get_the_marker() {
    let b = demo().await;
    let paths = [
        format!("{P1}/jobs/101/artifacts"),
        format!("{P1}/jobs/101/artifacts/dist/app.js"),
        format!("{P1}/jobs/artifacts/main/download?job=build"),
        format!("{P1}/jobs/artifacts/feature%2Flogin/raw/dist/app.js?job=build"),
        format!("{P2}/jobs/201/artifacts"),
    ];
    for path in &paths {
        for headers in [vec![], vec![("PRIVATE-TOKEN", "nope")]] {
            let r = get(&b, path, &headers).await;
            assert_eq!(r.status, 500, "{path}");
            assert_eq!(
                r.header("x-sample-backend"),
                Some("artifact-bytes-requested")
            );
            assert_eq!(r.message(), "sample backend does not serve artifact bytes");
        }
    }
    let r = send(&b, "HEAD", &paths[0], &[], b"").await;
    assert_eq!(
        (r.status, r.header("x-sample-backend")),
        (500, Some("artifact-bytes-requested"))
    );
    assert_eq!(b.count("GET", &format!("{P1}/jobs/101/artifacts")), 2);
    assert_eq!(b.count("HEAD", &format!("{P1}/jobs/101/artifacts")), 1);
}

#[tokio::test]
async fn unknown_routes_404_wrong_methods_405_and_common_headers_everywhere() {
    let b = demo().await;
    let r = get(&b, "/api/v4/version", &[]).await;
    assert_eq!((r.status, r.message().as_str()), (404, "404 Not Found"));
    let r = send(&b, "PUT", &format!("{P1}/jobs/101"), &[DEMO], b"").await;
    assert_eq!(
        (r.status, r.message().as_str()),
        (405, "405 Method Not Allowed")
    );
    assert_eq!(r.header("allow"), Some("GET, HEAD"));
    let answers = [
        r,
        get(&b, &format!("{P1}/jobs"), &[]).await,
        get(&b, &format!("{P1}/jobs/106/trace"), &[]).await,
        get(&b, &format!("{P2}/jobs"), &[]).await,
        delete(&b, &format!("{P1}/jobs/103/artifacts"), &[DEMO]).await,
    ];
    for r in &answers {
        assert_eq!(r.header("cache-control"), Some("private, max-age=0"));
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    }
    assert_eq!(answers[1].header("content-type"), Some("application/json"));
    assert_eq!(answers[2].header("content-type"), Some("text/plain"));
    assert_eq!(answers[3].header("content-type"), Some("application/json"));
}

#[tokio::test]
async fn delay_applies_before_every_response() {
    let b = BackendBuilder::sample_data()
        .delay(Duration::from_millis(150))
        .start()
        .await
        .unwrap();
    let started = Instant::now();
    assert_eq!(get(&b, "/nowhere", &[]).await.status, 404);
    assert!(started.elapsed() >= Duration::from_millis(150));
    assert_eq!(b.requests().len(), 1, "recorded before the delay");
    b.set_delay(Duration::ZERO);
    let started = Instant::now();
    get(&b, &format!("{P1}/jobs"), &[]).await;
    assert!(started.elapsed() < Duration::from_millis(150));
}

#[tokio::test]
async fn custom_builder_and_h2c() {
    let b = BackendBuilder::new()
        .user("alice", "alice-token")
        .project(7, "team/tool", Visibility::Private, &["alice"])
        .job(JobSpec::new(1, 7, "lint", "v1.0", JobStatus::Pending).trace("queued\n"))
        .start()
        .await
        .unwrap();
    assert!(b.url().starts_with("http://127.0.0.1:"));
    let spec = JobSpec::new(5, 7, "x", "main", JobStatus::Created);
    assert_eq!(
        (
            spec.pipeline_id,
            spec.stage.as_str(),
            spec.has_archive,
            spec.has_trace
        ),
        (5, "test", false, true)
    );

    let stream = TcpStream::connect(b.addr()).await.unwrap();
    let io = hyper_util::rt::TokioIo::new(stream);
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), io)
            .await
            .unwrap();
    tokio::spawn(conn);
    let req = http::Request::get(format!("{}/api/v4/projects/team%2Ftool/jobs/1", b.url()))
        .header("PRIVATE-TOKEN", "alice-token")
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .unwrap();
    let resp = sender.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    let body = http_body_util::BodyExt::collect(resp.into_body())
        .await
        .unwrap()
        .to_bytes();
    let job: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        (job["name"].as_str(), job["status"].as_str()),
        (Some("lint"), Some("pending"))
    );
    assert_eq!(
        b.requests()[0].path_and_query,
        "/api/v4/projects/team%2Ftool/jobs/1"
    );
}

#[tokio::test]
async fn dropping_the_backend_stops_it() {
    let b = demo().await;
    let addr = b.addr();
    b.shutdown();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(TcpStream::connect(addr).await.is_err());
}
