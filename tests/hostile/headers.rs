//! Oversized request heads: a long request line, many header bytes, many headers, a head
//! larger than any buffer. Each is refused `431` with GitLab's JSON body, on HTTP/1.1 (raw
//! sockets) and HTTP/2 (h2c with prior knowledge), the HTTP/1.1 connection is closed, and
//! the gateway serves the next request as before.

use std::time::{Duration, Instant};

use sample_backend::{BackendBuilder, SampleBackend};

use crate::support::{raw_exchange, statuses, within, Gateway, TempDir};

/// The gateway's one 431 body (`GatewayError::HeadersTooLarge`).
const JSON_431: &str = r#"{"message":"431 Request Header Fields Too Large"}"#;

/// `server.max_header_bytes` by default.
const LIMIT: usize = 16 * 1024;

async fn gateway() -> (Gateway, TempDir, SampleBackend) {
    let backend = BackendBuilder::sample_data().start().await.unwrap();
    let storage = TempDir::new("headers");
    storage.write("1/104/artifacts.zip", b"not a zip, just bytes");
    let gateway = Gateway::spawn(&backend.url(), &storage.url(), "").await;
    (gateway, storage, backend)
}

/// A GET of `target` with `headers` (each `name: value`), as raw bytes.
fn request(target: &str, headers: &[String]) -> Vec<u8> {
    let mut head = format!("GET {target} HTTP/1.1\r\nHost: localhost\r\n");
    for h in headers {
        head.push_str(h);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    head.into_bytes()
}

/// Send `bytes` on a fresh connection and check the answer: exactly one response, a 431
/// with the JSON body, and the connection closed by the gateway (not by our timeout).
async fn assert_json_431(gateway: &Gateway, bytes: &[u8], what: &str) {
    let quiet = Duration::from_secs(5);
    let started = Instant::now();
    let answer = raw_exchange(gateway.addr, bytes, quiet).await;
    assert!(
        started.elapsed() < quiet,
        "{what}: the connection was left open"
    );
    assert_eq!(
        statuses(&answer),
        vec![431],
        "{what}: {}",
        String::from_utf8_lossy(&answer)
    );
    let text = String::from_utf8_lossy(&answer);
    let (head, body) = text.split_once("\r\n\r\n").expect("a complete head");
    assert_eq!(body, JSON_431, "{what}: body");
    let head = head.to_ascii_lowercase();
    assert!(
        head.contains("content-type: application/json"),
        "{what}: {head}"
    );
    assert!(
        head.contains(&format!("content-length: {}", JSON_431.len())),
        "{what}: {head}"
    );
    assert!(
        head.contains("x-content-type-options: nosniff"),
        "{what}: {head}"
    );
}

/// The gateway still answers an ordinary request.
async fn assert_unaffected(gateway: &Gateway) {
    let response = crate::common::client()
        .get(gateway.url("/projects/1/jobs/104/artifacts"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        &response.bytes().await.unwrap()[..],
        b"not a zip, just bytes"
    );
}

fn filler_headers(total: usize, each: usize) -> Vec<String> {
    (0..total.div_ceil(each))
        .map(|i| format!("x-filler-{i:05}: {}", "v".repeat(each - 18)))
        .collect()
}

#[tokio::test]
async fn a_long_request_line_counts_against_max_header_bytes() {
    within(Duration::from_secs(30), "30 KB URI", async {
        let (gateway, _storage, _backend) = gateway().await;
        let target = format!("/api/v4/projects/1/jobs?q={}", "a".repeat(30_000));
        assert_json_431(&gateway, &request(&target, &[]), "30 KB URI").await;
        // Just under the limit, the whole head counted, still passes.
        let target = format!(
            "/api/v4/projects/1/jobs/104/artifacts?q={}",
            "a".repeat(LIMIT - 200)
        );
        let answer =
            raw_exchange(gateway.addr, &request(&target, &[]), Duration::from_secs(2)).await;
        assert_eq!(
            statuses(&answer),
            vec![200],
            "{}",
            String::from_utf8_lossy(&answer)
        );
        assert_unaffected(&gateway).await;
        gateway
            .wait_for_log(|l| {
                l.contains("\"status\":431") && l.contains("\"message\":\"response\"")
            })
            .await;
    })
    .await;
}

#[tokio::test]
async fn oversized_heads_past_hyper_limits_get_the_json_431_not_an_empty_one() {
    within(Duration::from_secs(60), "oversized heads", async {
        let (gateway, _storage, _backend) = gateway().await;
        let target = "/api/v4/projects/1/jobs/104/artifacts";
        let cases: [(&str, Vec<String>); 4] = [
            ("20 KiB of headers", filler_headers(20 * 1024, 1000)),
            ("40 KiB of headers", filler_headers(40 * 1024, 1000)),
            (
                "150 headers",
                (0..150).map(|i| format!("x-h{i}: {i}")).collect(),
            ),
            ("1 MiB head", filler_headers(1 << 20, 8000)),
        ];
        for (what, headers) in cases {
            assert_json_431(&gateway, &request(target, &headers), what).await;
            assert_unaffected(&gateway).await;
        }
        // A keep-alive connection whose second head is too large: the first answer is
        // intact, the second is the JSON 431.
        let mut two = request(target, &[]);
        two.extend(request(target, &filler_headers(64 * 1024, 1000)));
        let answer = raw_exchange(gateway.addr, &two, Duration::from_secs(5)).await;
        assert_eq!(statuses(&answer), vec![200, 431]);
        let text = String::from_utf8_lossy(&answer);
        assert!(
            text.contains("\r\n\r\nnot a zip, just bytesHTTP/1.1 431"),
            "{text}"
        );
        assert!(text.ends_with(JSON_431), "{text}");
        // Access lines reach the captured log a moment after the answer: wait for all five.
        gateway
            .wait_for_log_count(5, |l| {
                l.contains("\"status\":431") && l.contains("\"message\":\"response\"")
            })
            .await;
    })
    .await;
}

#[tokio::test]
async fn many_oversized_heads_at_once_keep_memory_bounded() {
    within(
        Duration::from_secs(60),
        "64 connections with 1 MiB heads",
        async {
            let (gateway, _storage, _backend) = gateway().await;
            let before_kib = gateway.rss_kib();
            gateway.reset_peak();
            let fds_before = gateway.open_fds();
            let bytes = request(
                "/api/v4/projects/1/jobs/104/artifacts",
                &filler_headers(1 << 20, 8000),
            );
            let exchanges =
                (0..64).map(|_| raw_exchange(gateway.addr, &bytes, Duration::from_secs(5)));
            for answer in futures_util::future::join_all(exchanges).await {
                assert_eq!(statuses(&answer), vec![431]);
                assert!(answer.ends_with(JSON_431.as_bytes()));
            }
            let grew_mib = gateway.peak_rss_kib().saturating_sub(before_kib) / 1024;
            eprintln!(
                "64 refused 1 MiB heads: peak RSS grew {grew_mib} MiB over {} MiB",
                before_kib / 1024
            );
            assert!(
                grew_mib < 32,
                "64 refused 1 MiB heads grew the peak RSS by {grew_mib} MiB"
            );
            assert_unaffected(&gateway).await;
            // Every refused connection is gone (a few descriptors of slack for the pools).
            let started = Instant::now();
            while gateway.open_fds() > fds_before + 4 {
                assert!(
                    started.elapsed() < Duration::from_secs(10),
                    "connections left open"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        },
    )
    .await;
}

fn h2_client() -> reqwest::Client {
    reqwest::Client::builder()
        .http2_prior_knowledge()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

#[tokio::test]
async fn http2_heads_over_the_limit_get_the_json_431() {
    within(Duration::from_secs(60), "h2 oversized heads", async {
        let (gateway, _storage, _backend) = gateway().await;
        let client = h2_client();
        let long_uri = gateway.url(&format!("/projects/1/jobs?q={}", "a".repeat(30_000)));
        let url = gateway.url("/projects/1/jobs/104/artifacts");
        let mut cases = vec![("30 KB URI", client.get(&long_uri))];
        let mut forty = client.get(&url);
        for h in filler_headers(40 * 1024, 1000) {
            let (name, value) = h.split_once(": ").unwrap();
            forty = forty.header(name, value);
        }
        cases.push(("40 KiB of headers", forty));
        let mut many = client.get(&url);
        for i in 0..150 {
            many = many.header(format!("x-h{i}"), i.to_string());
        }
        cases.push(("150 headers", many));
        for (what, request) in cases {
            let response = request.send().await.unwrap();
            assert_eq!(response.version(), reqwest::Version::HTTP_2, "{what}");
            assert_eq!(response.status(), 431, "{what}");
            assert_eq!(response.text().await.unwrap(), JSON_431, "{what}");
        }
        // The same connection still serves.
        let response = client.get(&url).send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert_unaffected(&gateway).await;
    })
    .await;
}

/// Past four times `max_header_bytes` h2 refuses a header list itself, before the gateway
/// sees it: a body-less `431` and a stream reset (past sixteen times, GOAWAY). That answer
/// cannot carry the JSON body (see `server`'s docs); what is pinned here is that it is a
/// refusal, quick, with memory bounded, and that the gateway carries on.
#[tokio::test]
async fn http2_heads_beyond_h2s_own_limit_are_refused_and_the_gateway_carries_on() {
    within(Duration::from_secs(60), "h2 heads past h2's limit", async {
        let (gateway, _storage, _backend) = gateway().await;
        let before_kib = gateway.rss_kib();
        gateway.reset_peak();
        let url = gateway.url("/projects/1/jobs/104/artifacts");
        for (what, size) in [("100 KiB", 100 * 1024), ("1 MiB", 1 << 20)] {
            let client = h2_client();
            let mut request = client.get(&url);
            for h in filler_headers(size, 8000) {
                let (name, value) = h.split_once(": ").unwrap();
                request = request.header(name, value);
            }
            match request.send().await {
                Ok(response) => assert_eq!(response.status(), 431, "{what}"),
                Err(error) => assert!(!error.is_timeout(), "{what}: {error}"),
            }
        }
        let grew_mib = gateway.peak_rss_kib().saturating_sub(before_kib) / 1024;
        assert!(
            grew_mib < 16,
            "h2 heads past the limit grew the peak RSS by {grew_mib} MiB"
        );
        let response = h2_client().get(&url).send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert_unaffected(&gateway).await;
    })
    .await;
}
