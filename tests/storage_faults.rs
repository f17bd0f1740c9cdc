//! Storage failing: before the response starts it is a 502/504 JSON; after the body started
//! the transfer is aborted, never a clean short body; a client that leaves stops the read.

#[macro_use]
mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::storage::{Kind, Tap};
use common::{json, raw, wait, Harness, TOKEN};
use sample_backend::BackendBuilder;

fn big_archive(len: usize) -> Vec<u8> {
    let mut bytes = std::fs::read(format!(
        "{}/tests/fixtures/zip/python-stored.zip",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    bytes.resize(len.max(bytes.len()), 0x5a);
    bytes
}

on_both_storages! {
    a_storage_failure_mid_body_aborts_the_transfer => failure_mid_body;
}

async fn failure_mid_body(kind: Kind) {
    let h = Harness::tapped(
        kind,
        BackendBuilder::sample_data(),
        |store| Tap::failing_after(store, 100_000),
        |_| {},
    )
    .await;
    let archive = big_archive(1_000_000);
    h.storage.put("1/104/artifacts.zip", &archive);

    // HTTP/1.1: the body ends short of Content-Length and the client reports an error.
    let response = h.get("/projects/1/jobs/104/artifacts", Some(TOKEN)).await;
    assert_eq!(
        response.status(),
        200,
        "{kind:?}: headers went out before the failure"
    );
    assert!(
        response.bytes().await.is_err(),
        "{kind:?}: a cut body must not look complete"
    );

    // The same, read raw: fewer bytes than announced, then the connection closes.
    let request = raw::request(
        "GET",
        b"/api/v4/projects/1/jobs/104/artifacts",
        "x",
        &[("PRIVATE-TOKEN", TOKEN)],
    );
    let response = raw::exchange_closed(h.gateway.addr(), &request)
        .await
        .response("a download cut by storage");
    assert_eq!(
        response.content_length(),
        Some(archive.len() as u64),
        "{}",
        response.head
    );
    assert!(
        (response.body.len()) < archive.len(),
        "{kind:?}: got the whole body"
    );

    // HTTP/2: the stream is reset.
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    // The reset may overtake the response head on a fast failure: either way the client
    // sees an error, never a complete body.
    let outcome = match h2
        .get(h.url("/projects/1/jobs/104/artifacts"))
        .header("PRIVATE-TOKEN", TOKEN)
        .send()
        .await
    {
        Ok(response) => {
            assert_eq!(response.version(), reqwest::Version::HTTP_2);
            response.bytes().await.map(|b| b.len())
        }
        Err(error) => Err(error),
    };
    assert!(
        outcome.is_err(),
        "{kind:?}: HTTP/2 body must fail, got {outcome:?}"
    );
}

on_both_storages! {
    a_client_that_leaves_stops_the_storage_read => client_leaves;
}

async fn client_leaves(kind: Kind) {
    let h = Harness::tapped(kind, BackendBuilder::sample_data(), Tap::new, |_| {}).await;
    let archive = big_archive(64 * 1024 * 1024);
    h.storage.put("1/104/artifacts.zip", &archive);
    let mut response = h.get("/projects/1/jobs/104/artifacts", Some(TOKEN)).await;
    let mut received = 0;
    while received < 1024 * 1024 {
        received += response.chunk().await.unwrap().unwrap().len();
    }
    drop(response);
    let tap = h.tap.as_ref().unwrap();
    wait::wait_until(
        &format!("{kind:?}: the storage read is dropped after the client left"),
        Duration::from_secs(10),
        || tap.open_reads.load(Ordering::SeqCst) == 0,
    )
    .await;
    let read = tap.bytes_read.load(Ordering::SeqCst);
    assert!(
        read < 16 * 1024 * 1024,
        "{kind:?}: read {read} of {} bytes for a client that took 1 MiB",
        archive.len()
    );
}

#[tokio::test]
async fn storage_that_refuses_connections_is_a_502() {
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let h = Harness::start_with(BackendBuilder::sample_data(), |c| {
        c.storage.url = "s3://artifacts".into();
        c.storage.endpoint = Some(format!("http://{dead}"));
        c.storage.allow_http = true;
        c.storage.region = Some("us-east-1".into());
        c.storage.access_key_id = Some("k".into());
        c.storage.secret_access_key = Some(artifact_gateway::config::Secret::new("s"));
    })
    .await;
    let response = h.get("/projects/1/jobs/104/artifacts", Some(TOKEN)).await;
    assert_eq!(response.status(), 502);
    assert_eq!(
        json(response).await,
        serde_json::json!({"message": "502 Bad Gateway"})
    );
}

#[tokio::test]
async fn storage_that_never_answers_is_a_504() {
    // Accepts connections and says nothing.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = silent.local_addr().unwrap();
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            held.push(socket);
        }
    });
    let h = Harness::start_with(BackendBuilder::sample_data(), |c| {
        c.storage.url = "s3://artifacts".into();
        c.storage.endpoint = Some(format!("http://{addr}"));
        c.storage.allow_http = true;
        c.storage.region = Some("us-east-1".into());
        c.storage.access_key_id = Some("k".into());
        c.storage.secret_access_key = Some(artifact_gateway::config::Secret::new("s"));
        c.storage.read_timeout = Duration::from_millis(200);
    })
    .await;
    let started = std::time::Instant::now();
    let response = h.get("/projects/1/jobs/104/artifacts", Some(TOKEN)).await;
    assert_eq!(response.status(), 504);
    assert_eq!(
        json(response).await,
        serde_json::json!({"message": "504 Gateway Timeout"})
    );
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    holder.abort();
}
