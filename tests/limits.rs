//! Limits: connections and streams past their bounds get `503` with `Retry-After`; clients
//! that are too slow to speak or stop reading are cut off, releasing their storage reads.

#[macro_use]
mod common;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::storage::{Kind, Tap};
use common::{header, json, raw, wait, Harness, TOKEN};
use sample_backend::BackendBuilder;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn big_archive(len: usize) -> Vec<u8> {
    (0..len as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect()
}

/// Read until the server closes the connection or `limit` passes.
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> (Vec<u8>, bool) {
    let received = raw::read_until_closed(stream, limit).await;
    (received.bytes, received.closed)
}

/// The status a fresh connection gets for one request (`Connection: close`, so it holds
/// no slot afterwards).
async fn probe(h: &Harness) -> Option<u16> {
    let request = raw::request(
        "GET",
        b"/api/v4/projects/1/jobs/104",
        "x",
        &[("PRIVATE-TOKEN", TOKEN)],
    );
    let received = raw::exchange(h.gateway.addr(), &request, Duration::from_secs(5)).await;
    raw::parse(&received.bytes).map(|r| r.status)
}

#[tokio::test]
async fn connections_over_the_limit_get_503_with_retry_after() {
    let h = Harness::start_with(BackendBuilder::sample_data(), |c| {
        c.server.max_connections = 2;
        c.server.header_read_timeout = Duration::from_secs(10);
    })
    .await;
    // Two connections that are mid-request hold both slots.
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut stream = TcpStream::connect(h.gateway.addr()).await.unwrap();
        stream
            .write_all(b"GET /api/v4/projects/1/jobs HTTP/1.1\r\n")
            .await
            .unwrap();
        held.push(stream);
    }
    // Until the gateway has accepted both, a fresh connection may still get through.
    wait::wait_until_async(
        "both held connections count",
        Duration::from_secs(5),
        || async { probe(&h).await == Some(503) },
    )
    .await;
    h.backend.clear_requests();
    // The refusal goes through the rescue point: its access line counts it under its route.
    let refusals = || {
        let requests = &h.gateway.state().metrics.requests;
        requests.with_label_values(&["get_job", "503"]).get()
    };
    let before = refusals();
    let refused = h.get("/projects/1/jobs/104", Some(TOKEN)).await;
    assert_eq!(refused.status(), 503);
    assert_eq!(header(&refused, "retry-after"), Some("1"));
    assert_eq!(
        json(refused).await,
        serde_json::json!({"message": "503 Service Unavailable"})
    );
    assert_eq!(h.backend.requests().len(), 0);
    wait::wait_until("the refusal's access line", Duration::from_secs(5), || {
        refusals() == before + 1
    })
    .await;

    // Slots come back when connections close.
    drop(held);
    wait::wait_until_async(
        "the closed connections' slots are free",
        Duration::from_secs(5),
        || async { probe(&h).await == Some(200) },
    )
    .await;
    let fresh = common::client();
    assert_eq!(
        fresh
            .get(h.url("/projects/1/jobs/104"))
            .header("PRIVATE-TOKEN", TOKEN)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test]
async fn requests_over_the_stream_limit_get_503_with_retry_after() {
    let h = Harness::start_with(BackendBuilder::sample_data(), |c| c.server.max_streams = 1).await;
    let archive = big_archive(32 * 1024 * 1024);
    h.storage.put("1/104/artifacts.zip", &archive);
    // A download in progress holds the only stream until its body ends.
    let mut download = h.get("/projects/1/jobs/104/artifacts", Some(TOKEN)).await;
    download.chunk().await.unwrap();
    let refused = common::client()
        .get(h.url("/projects/1/jobs/104"))
        .header("PRIVATE-TOKEN", TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 503);
    assert_eq!(header(&refused, "retry-after"), Some("1"));
    while download.chunk().await.unwrap().is_some() {}
    let after = common::client()
        .get(h.url("/projects/1/jobs/104"))
        .header("PRIVATE-TOKEN", TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), 200);
}

#[tokio::test]
async fn a_client_that_connects_and_says_nothing_is_cut_off() {
    let h = Harness::start_with(BackendBuilder::sample_data(), |c| {
        c.server.header_read_timeout = Duration::from_millis(300);
    })
    .await;
    for opening in [&b""[..], b"PRI * HTTP/2.0\r\n"] {
        let mut stream = TcpStream::connect(h.gateway.addr()).await.unwrap();
        stream.write_all(opening).await.unwrap();
        let started = Instant::now();
        let (_, closed) = read_until_closed(&mut stream, Duration::from_secs(5)).await;
        assert!(closed, "still open after 5 s with {opening:?}");
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
    }
}

on_both_storages! {
    a_client_that_stops_reading_is_cut_off_and_the_storage_read_released => stalled_client;
}

async fn stalled_client(kind: Kind) {
    let h = Harness::tapped(kind, BackendBuilder::sample_data(), Tap::new, |c| {
        c.server.stall_timeout = Duration::from_millis(500);
    })
    .await;
    let archive = big_archive(96 * 1024 * 1024);
    h.storage.put("1/104/artifacts.zip", &archive);
    let mut stream = TcpStream::connect(h.gateway.addr()).await.unwrap();
    stream
        .write_all(format!("GET /api/v4/projects/1/jobs/104/artifacts HTTP/1.1\r\nHost: x\r\nPRIVATE-TOKEN: {TOKEN}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut first = vec![0u8; 64 * 1024];
    let n = stream.read(&mut first).await.unwrap();
    assert!(String::from_utf8_lossy(&first[..n]).starts_with("HTTP/1.1 200"));
    // Stop reading: socket buffers fill, the gateway's writes stall, and after the stall
    // timeout it drops the storage read.
    let tap = h.tap.as_ref().unwrap();
    wait::wait_until(
        &format!("{kind:?}: the stalled download's storage read is dropped"),
        Duration::from_secs(10),
        || tap.open_reads.load(Ordering::SeqCst) == 0,
    )
    .await;
    let read = tap.bytes_read.load(Ordering::SeqCst);
    assert!(
        read < archive.len() as u64 / 2,
        "{kind:?}: read {read} bytes for a client that stopped"
    );
    // What is left in the socket drains, then the connection ends short of the body.
    let (rest, closed) = read_until_closed(&mut stream, Duration::from_secs(10)).await;
    assert!(closed, "{kind:?}: the stalled connection was not closed");
    assert!(
        ((n + rest.len()) as u64) < archive.len() as u64,
        "{kind:?}: the whole body arrived"
    );
    assert_eq!(
        tap.bytes_read.load(Ordering::SeqCst),
        read,
        "{kind:?}: storage read after the read was dropped"
    );
}

#[tokio::test]
async fn idle_http2_connections_are_closed_but_busy_ones_are_not() {
    let h = Harness::start_with(BackendBuilder::sample_data(), |c| {
        c.server.idle_timeout = Duration::from_millis(400);
    })
    .await;
    let archive = big_archive(8 * 1024 * 1024);
    h.storage.put("1/104/artifacts.zip", &archive);
    let tcp = TcpStream::connect(h.gateway.addr()).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(tcp),
    )
    .await
    .unwrap();
    let connection = tokio::spawn(connection);
    let request = || {
        http::Request::get(h.url("/projects/1/jobs/104/artifacts"))
            .body(http_body_util::Empty::<bytes::Bytes>::new())
            .unwrap()
    };
    // A download read slowly, for longer than the idle timeout, is not cut.
    let response = sender.send_request(request()).await.unwrap();
    assert_eq!(response.status(), 200);
    let mut body = response.into_body();
    let mut received = 0;
    let started = Instant::now();
    while let Some(frame) = http_body_util::BodyExt::frame(&mut body).await {
        if let Ok(data) = frame.unwrap().into_data() {
            received += data.len();
        }
        // Reading slowly on purpose (not waiting for anything): the download must stay
        // busy for longer than the idle timeout.
        if started.elapsed() < Duration::from_millis(1200) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    assert_eq!(received, archive.len());
    assert!(started.elapsed() > Duration::from_millis(800));
    // Then nothing: the gateway closes the connection.
    let closed = tokio::time::timeout(Duration::from_secs(5), connection).await;
    assert!(closed.is_ok(), "the idle HTTP/2 connection stayed open");
}
