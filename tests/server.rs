//! The listener's protections and lifecycle: header limits, slow clients, proxy requests,
//! HTTP/2, graceful shutdown.

mod common;

use std::time::{Duration, Instant};

use common::{header, json, raw, wait, Harness, TOKEN};
use sample_backend::BackendBuilder;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// Send raw bytes and read until the server closes (or 5 s pass).
async fn raw_exchange(addr: std::net::SocketAddr, request: &[u8]) -> String {
    raw::exchange(addr, request, Duration::from_secs(5))
        .await
        .text()
}

#[tokio::test]
async fn oversized_headers_get_a_431_json() {
    let h = Harness::start_with(BackendBuilder::sample_data(), |c| {
        c.server.max_header_bytes = 16 * 1024
    })
    .await;
    let response = h
        .request(http::Method::GET, "/projects/1/jobs")
        .header("X-Padding", "a".repeat(20 * 1024))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 431);
    assert_eq!(
        json(response).await["message"],
        "431 Request Header Fields Too Large"
    );
    assert_eq!(h.backend.requests().len(), 0);

    // Far past the limit hyper itself refuses, still with 431.
    let huge = format!(
        "GET /api/v4/projects/1/jobs HTTP/1.1\r\nHost: x\r\nX-Padding: {}\r\n\r\n",
        "b".repeat(64 * 1024)
    );
    let answer = raw_exchange(h.gateway.addr(), huge.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");

    // Just under the limit is fine.
    let ok = h
        .client
        .get(h.url("/projects/1/jobs"))
        .header("X-Padding", "c".repeat(8 * 1024))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
}

#[tokio::test]
async fn a_client_that_sends_headers_too_slowly_is_cut_off() {
    let h = Harness::start_with(BackendBuilder::sample_data(), |c| {
        c.server.header_read_timeout = Duration::from_millis(300);
    })
    .await;
    let mut stream = TcpStream::connect(h.gateway.addr()).await.unwrap();
    stream
        .write_all(b"GET /api/v4/projects/1/jobs HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let read = raw::read_until_closed(&mut stream, Duration::from_secs(5)).await;
    assert!(read.closed, "the connection was never closed");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "closed after {:?}",
        started.elapsed()
    );
    assert!(h.backend.requests().is_empty());
}

#[tokio::test]
async fn connect_and_foreign_absolute_form_requests_are_refused() {
    let h = Harness::start(BackendBuilder::sample_data()).await;
    let connect = raw_exchange(
        h.gateway.addr(),
        b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(connect.starts_with("HTTP/1.1 405"), "{connect}");
    let absolute = raw_exchange(
        h.gateway.addr(),
        b"GET http://example.com/api/v4/projects/1/jobs HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(absolute.starts_with("HTTP/1.1 400"), "{absolute}");
    assert!(
        absolute.contains(r#"{"message":"400 Bad request"}"#),
        "{absolute}"
    );
    let mismatched = raw_exchange(
        h.gateway.addr(),
        format!("GET http://example.com/api/v4/projects/1/jobs HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n", h.gateway.addr()).as_bytes(),
    )
    .await;
    assert!(mismatched.starts_with("HTTP/1.1 400"), "{mismatched}");
    assert!(h.backend.requests().is_empty());

    // Absolute form naming the gateway itself is an ordinary request.
    let own = raw_exchange(
        h.gateway.addr(),
        format!(
            "GET http://{0}/api/v4/projects/1/jobs HTTP/1.1\r\nHost: {0}\r\nPRIVATE-TOKEN: {TOKEN}\r\nConnection: close\r\n\r\n",
            h.gateway.addr()
        )
        .as_bytes(),
    )
    .await;
    assert!(own.starts_with("HTTP/1.1 200"), "{own}");
}

#[tokio::test]
async fn http2_prior_knowledge_is_served() {
    let h = Harness::start(BackendBuilder::sample_data()).await;
    let client = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let response = client
        .get(h.url("/projects/1/jobs/104"))
        .header("PRIVATE-TOKEN", TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    assert_eq!(response.status(), 200);
    assert_eq!(json(response).await["id"], 104);
    // Links are rewritten to the :authority the HTTP/2 client used.
    let list = client
        .get(h.url("/projects/1/jobs?per_page=1"))
        .header("PRIVATE-TOKEN", TOKEN)
        .send()
        .await
        .unwrap();
    let link = header(&list, "link").unwrap();
    assert!(
        link.contains(&format!("<http://{}/api/v4/", h.gateway.addr())),
        "{link}"
    );
}

#[tokio::test]
async fn shutdown_lets_in_flight_responses_finish_and_stops_accepting() {
    let h = Harness::start(BackendBuilder::sample_data().delay(Duration::from_millis(800))).await;
    let addr = h.gateway.addr();
    let url = h.url("/projects/1/jobs/104");
    let in_flight = tokio::spawn(async move {
        common::client()
            .get(url)
            .header("PRIVATE-TOKEN", TOKEN)
            .send()
            .await
    });
    wait::wait_until(
        "the request reaches the backend",
        Duration::from_secs(5),
        || !h.backend.requests().is_empty(),
    )
    .await;
    h.gateway.shutdown();
    wait::wait_until_async("the listener closes", Duration::from_secs(2), || async {
        TcpStream::connect(addr).await.is_err()
    })
    .await;
    let response = in_flight
        .await
        .unwrap()
        .expect("the in-flight request completes");
    assert_eq!(response.status(), 200);
    assert_eq!(json(response).await["id"], 104);
    tokio::time::timeout(Duration::from_secs(3), h.gateway.wait())
        .await
        .expect("shutdown finished");
}

#[tokio::test]
async fn shutdown_aborts_what_is_still_running_at_the_deadline() {
    let h = Harness::start_with(
        BackendBuilder::sample_data().delay(Duration::from_secs(5)),
        |c| {
            c.server.shutdown_grace = Duration::from_millis(300);
        },
    )
    .await;
    let url = h.url("/projects/1/jobs/104");
    let in_flight = tokio::spawn(async move { common::client().get(url).send().await });
    wait::wait_until(
        "the request reaches the backend",
        Duration::from_secs(5),
        || !h.backend.requests().is_empty(),
    )
    .await;
    let started = Instant::now();
    h.gateway.shutdown();
    tokio::time::timeout(Duration::from_secs(3), h.gateway.wait())
        .await
        .expect("shutdown finished");
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(
        in_flight.await.unwrap().is_err(),
        "a cut request must not look answered"
    );
}

#[tokio::test]
async fn a_download_cut_at_the_shutdown_deadline_is_counted_as_shutdown() {
    let h = Harness::start_with(BackendBuilder::sample_data(), |c| {
        c.server.shutdown_grace = Duration::from_millis(300);
    })
    .await;
    // Far more than socket buffers hold: a client that stops reading keeps it running.
    let archive = vec![0x5a; 64 << 20];
    h.storage.put("1/104/artifacts.zip", &archive);
    let mut stream = TcpStream::connect(h.gateway.addr()).await.unwrap();
    let request = raw::request(
        "GET",
        b"/api/v4/projects/1/jobs/104/artifacts",
        "x",
        &[("PRIVATE-TOKEN", TOKEN)],
    );
    stream.write_all(&request).await.unwrap();
    let metrics = std::sync::Arc::clone(&h.gateway.state().metrics);
    wait::wait_until("the download is streaming", Duration::from_secs(5), || {
        metrics.in_flight_streams.get() == 1
    })
    .await;
    h.gateway.shutdown();
    tokio::time::timeout(Duration::from_secs(5), h.gateway.wait())
        .await
        .expect("shutdown finished");
    let aborted = |reason: &str| metrics.aborted_streams.with_label_values(&[reason]).get();
    assert_eq!(aborted("shutdown"), 1);
    assert_eq!(aborted("client_gone"), 0);
    drop(stream);
}
