//! The admin listener: Prometheus metrics that move with the traffic (storage reads per
//! extraction included), health, and readiness that follows the backend and shutdown.

mod common;

use common::fixture;

use std::time::Duration;

use common::storage::Kind;
use common::{wait, Harness, TOKEN};
use sample_backend::BackendBuilder;

async fn with_admin(backend: BackendBuilder) -> Harness {
    Harness::build(backend, Kind::Local, None, |c| {
        c.admin_listen = Some("127.0.0.1:0".parse().unwrap());
    })
    .await
}

fn admin_url(h: &Harness, path: &str) -> String {
    format!(
        "http://{}{path}",
        h.gateway.admin_addr().expect("admin listener")
    )
}

/// The current value of one sample, by metric name and labels.
async fn sample(h: &Harness, name: &str, labels: &[(&str, &str)]) -> f64 {
    let text = h
        .client
        .get(admin_url(h, "/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let parsed = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned())))
        .expect("Prometheus text");
    parsed
        .samples
        .iter()
        .filter(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => 0.0,
        })
        .sum()
}

#[tokio::test]
async fn metrics_parse_and_move_with_requests() {
    let h = with_admin(BackendBuilder::sample_data()).await;
    let text = h
        .client
        .get(admin_url(&h, "/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(text.status(), 200);
    assert!(text.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));

    let requests = |status| [("route", "get_job"), ("status", status)];
    let before = sample(&h, "artifact_gateway_requests_total", &requests("200")).await;
    h.get("/projects/1/jobs/104", Some(TOKEN))
        .await
        .bytes()
        .await
        .unwrap();
    h.get("/projects/1/jobs/104", Some(TOKEN))
        .await
        .bytes()
        .await
        .unwrap();
    h.get("/projects/2/jobs/201", Some("outsider-token"))
        .await
        .bytes()
        .await
        .unwrap();
    assert_eq!(
        sample(&h, "artifact_gateway_requests_total", &requests("200")).await,
        before + 2.0
    );
    assert_eq!(
        sample(&h, "artifact_gateway_requests_total", &requests("404")).await,
        1.0
    );
    assert_eq!(
        sample(
            &h,
            "artifact_gateway_metadata_cache_events_total",
            &[("event", "hit")]
        )
        .await,
        1.0
    );
    assert_eq!(
        sample(
            &h,
            "artifact_gateway_metadata_cache_events_total",
            &[("event", "miss")]
        )
        .await,
        2.0
    );
    assert!(
        sample(
            &h,
            "artifact_gateway_response_bytes_total",
            &[("route", "get_job")]
        )
        .await
            > 1000.0
    );
    assert_eq!(
        sample(&h, "artifact_gateway_in_flight_streams", &[]).await,
        0.0
    );

    // A mutation counts an invalidation.
    h.post("/projects/1/jobs/105/play", Some(TOKEN)).await;
    assert_eq!(
        sample(
            &h,
            "artifact_gateway_metadata_cache_events_total",
            &[("event", "invalidation")]
        )
        .await,
        1.0
    );

    // The backend refuses connections: a 502, counted as an upstream error.
    let h = {
        let Harness {
            backend,
            gateway,
            client,
            storage,
            tap,
        } = h;
        let backend_addr = backend.url().trim_start_matches("http://").to_owned();
        backend.shutdown();
        wait::wait_until_async(
            "the backend stops listening",
            Duration::from_secs(5),
            || async { tokio::net::TcpStream::connect(&backend_addr).await.is_err() },
        )
        .await;
        Harness {
            backend: BackendBuilder::new().start().await.unwrap(),
            gateway,
            client,
            storage,
            tap,
        }
    };
    assert_eq!(
        h.get("/projects/1/jobs/107", Some(TOKEN)).await.status(),
        502
    );
    assert_eq!(
        sample(
            &h,
            "artifact_gateway_upstream_errors_total",
            &[("kind", "unavailable")]
        )
        .await,
        1.0
    );
}

/// Storage requests per extraction, as the metrics tell them, match the round-trip plan:
/// a cold archive is one tail read plus one read for an entry outside the tail; warm, one
/// read per entry; an entry inside the tail, none.
#[tokio::test]
async fn storage_reads_per_extraction_match_the_round_trip_plan() {
    let h = with_admin(BackendBuilder::sample_data()).await;
    // 158 KB archive: `data/random.bin` starts at offset 0, outside the 128 KiB tail;
    // `hello.txt` is near the end, inside it.
    h.storage
        .put("1/104/artifacts.zip", &fixture("python-deflate.zip"));
    let reads = |kind| [("kind", kind)];
    async fn count(h: &Harness, kind: &str) -> f64 {
        sample(
            h,
            "artifact_gateway_storage_requests_total",
            &[("kind", kind)],
        )
        .await
    }

    let outside = h
        .get(
            "/projects/1/jobs/104/artifacts/data/random.bin",
            Some(TOKEN),
        )
        .await;
    assert_eq!(outside.status(), 200);
    outside.bytes().await.unwrap();
    assert_eq!(count(&h, "zip_tail").await, 1.0);
    assert_eq!(count(&h, "zip_directory").await, 0.0);
    assert_eq!(count(&h, "zip_entry").await, 1.0);
    assert_eq!(
        sample(
            &h,
            "artifact_gateway_zip_index_cache_events_total",
            &[("event", "miss")]
        )
        .await,
        1.0
    );

    let again = h
        .get("/projects/1/jobs/104/artifacts/data/zeros.bin", Some(TOKEN))
        .await;
    again.bytes().await.unwrap();
    assert_eq!(count(&h, "zip_tail").await, 1.0, "warm: no second open");
    assert_eq!(
        sample(
            &h,
            "artifact_gateway_zip_index_cache_events_total",
            &[("event", "hit")]
        )
        .await,
        1.0
    );
    let entry_reads = count(&h, "zip_entry").await;

    let inside = h
        .get("/projects/1/jobs/104/artifacts/hello.txt", Some(TOKEN))
        .await;
    assert_eq!(inside.status(), 200);
    inside.bytes().await.unwrap();
    assert_eq!(
        count(&h, "zip_entry").await,
        entry_reads,
        "an entry in the cached tail needs no read"
    );
    assert!(
        sample(
            &h,
            "artifact_gateway_storage_read_bytes_total",
            &reads("zip_tail")
        )
        .await
            >= 128.0 * 1024.0
    );
}

#[tokio::test]
async fn health_answers_and_readiness_follows_the_backend() {
    let h = with_admin(BackendBuilder::sample_data()).await;
    let health = h
        .client
        .get(admin_url(&h, "/-/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let ready = h
        .client
        .get(admin_url(&h, "/-/readiness"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200, "{}", ready.text().await.unwrap());

    // The backend goes away: not ready, and the report says why.
    let Harness {
        backend,
        gateway,
        client,
        storage: _storage,
        ..
    } = h;
    let backend_addr = backend.url().trim_start_matches("http://").to_owned();
    backend.shutdown();
    wait::wait_until_async(
        "the backend stops listening",
        Duration::from_secs(5),
        || async { tokio::net::TcpStream::connect(&backend_addr).await.is_err() },
    )
    .await;
    let admin = gateway.admin_addr().unwrap();
    let not_ready = client
        .get(format!("http://{admin}/-/readiness"))
        .send()
        .await
        .unwrap();
    assert_eq!(not_ready.status(), 503);
    let report: serde_json::Value = common::json(not_ready).await;
    assert_eq!(report["storage"], "ok");
    assert_ne!(report["upstream"], "ok");
    // Health is about the process, not its dependencies.
    assert_eq!(
        client
            .get(format!("http://{admin}/-/health"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test]
async fn readiness_fails_during_shutdown_while_a_download_finishes() {
    let h = Harness::build(BackendBuilder::sample_data(), Kind::Local, None, |c| {
        c.admin_listen = Some("127.0.0.1:0".parse().unwrap());
        c.server.shutdown_grace = Duration::from_secs(20);
    })
    .await;
    let archive: Vec<u8> = (0..48 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    h.storage.put("1/104/artifacts.zip", &archive);
    let mut download = h.get("/projects/1/jobs/104/artifacts", Some(TOKEN)).await;
    assert_eq!(download.status(), 200);
    let mut received = download.chunk().await.unwrap().unwrap().to_vec();

    h.gateway.shutdown();
    let admin = h.gateway.admin_addr().unwrap();
    let readiness = format!("http://{admin}/-/readiness");
    wait::wait_until_async(
        "readiness reports the drain",
        Duration::from_secs(5),
        || async { h.client.get(&readiness).send().await.unwrap().status() == 503 },
    )
    .await;
    let draining = h
        .client
        .get(format!("http://{admin}/-/readiness"))
        .send()
        .await
        .unwrap();
    assert_eq!(draining.status(), 503);
    let report: serde_json::Value = common::json(draining).await;
    assert_eq!(report["shutting_down"], true);

    // The download in flight completes, byte-exact, within the deadline.
    while let Some(chunk) = tokio::time::timeout(Duration::from_secs(20), download.chunk())
        .await
        .unwrap()
        .unwrap()
    {
        received.extend_from_slice(&chunk);
    }
    assert!(
        received == archive,
        "the download in flight was cut or corrupted"
    );
    tokio::time::timeout(Duration::from_secs(5), h.gateway.wait())
        .await
        .expect("shutdown finished");
}
