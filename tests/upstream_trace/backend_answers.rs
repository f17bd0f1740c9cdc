//! Answers of the backend other than a plain log: its refusals passed through as GitLab
//! words them, a chunked log of unknown length passed whole despite `Range`, and a log
//! that ends short of its length aborting the answer.

use std::time::Duration;

use artifact_gateway::config::ArtifactSource;
use artifact_gateway::dispatch::AppState;
use artifact_gateway::listener::RunningGateway;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common;
use crate::common::{header, json, TOKEN};
use crate::support::{get, harness, trace_path, RUNNING};

/// A request the backend refuses, and GitLab's answer to it.
struct Refusal<'a> {
    what: &'a str,
    query: &'a str,
    headers: &'a [(&'a str, &'a str)],
    status: u16,
    message: &'a str,
}

#[tokio::test]
async fn the_backends_refusals_pass_through() {
    let h = harness().await;
    let running_token = format!("job-token-{RUNNING}");
    let token_query = format!("?job_token={running_token}");
    let job_token = [("JOB-TOKEN", running_token.as_str())];
    let refusal = |what, headers, status, message| Refusal {
        what,
        query: "",
        headers,
        status,
        message,
    };
    let cases = [
        refusal("no token", &[], 404, "404 Project Not Found"),
        refusal(
            "no token, with a range",
            &[("Range", "bytes=0-9")],
            404,
            "404 Project Not Found",
        ),
        refusal(
            "unknown token",
            &[("PRIVATE-TOKEN", "forged")],
            401,
            "401 Unauthorized",
        ),
        refusal(
            "not a member",
            &[("PRIVATE-TOKEN", "outsider-token")],
            404,
            "404 Project Not Found",
        ),
        // GitLab's trace route does not take job tokens, not even the running job's own.
        refusal("JOB-TOKEN", &job_token, 401, "401 Unauthorized"),
        Refusal {
            query: &token_query,
            ..refusal("job_token parameter", &[], 401, "401 Unauthorized")
        },
    ];
    for case in cases {
        let path = format!("/projects/1/jobs/{RUNNING}/trace{}", case.query);
        let mut request = h.client.get(h.url(&path));
        for (name, value) in case.headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.unwrap();
        let what = case.what;
        assert_eq!(response.status(), case.status, "{what}");
        assert_eq!(header(&response, "content-range"), None, "{what}");
        let body = json(response).await;
        assert_eq!(
            body,
            serde_json::json!({ "message": case.message }),
            "{what}"
        );
    }
    // The job token went to the backend as it came.
    let with_job_token = h
        .backend
        .requests()
        .into_iter()
        .filter(|r| r.headers.get("job-token").is_some())
        .count();
    assert_eq!(with_job_token, 1);

    // A job the project does not have.
    let missing = get(&h, 999, &[("PRIVATE-TOKEN", TOKEN)]).await;
    assert_eq!(missing.status(), 404);
    assert_eq!(
        json(missing).await,
        serde_json::json!({"message": "404 Job Not Found"})
    );
}

// Backends the sample one cannot imitate: a chunked log, and a log cut short.

/// A backend that answers every request with `head` and then `body`, then closes.
async fn raw_backend(head: &'static str, body: Vec<Vec<u8>>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let (mut stream, _) = listener.accept().await.unwrap();
            let body = body.clone();
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    let n = stream.read(&mut buf).await.unwrap();
                    if n == 0 {
                        return;
                    }
                    request.extend_from_slice(&buf[..n]);
                }
                stream.write_all(head.as_bytes()).await.unwrap();
                for part in body {
                    stream.write_all(&part).await.unwrap();
                    stream.flush().await.unwrap();
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                let _ = stream.shutdown().await;
            });
        }
    });
    url
}

async fn gateway_before(upstream: &str) -> RunningGateway {
    let mut config = common::test_config(upstream);
    config.artifacts.source = ArtifactSource::Upstream;
    RunningGateway::start_with(AppState::new(config).unwrap())
        .await
        .unwrap()
}

async fn get_from(gateway: &RunningGateway, range: Option<&str>) -> reqwest::Response {
    let url = format!("http://{}{}", gateway.addr(), trace_path(1));
    let mut request = common::client().get(url).header("PRIVATE-TOKEN", TOKEN);
    if let Some(range) = range {
        request = request.header("Range", range);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn a_chunked_log_of_unknown_length_is_passed_whole_despite_range() {
    let chunked = "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\
                   transfer-encoding: chunked\r\nconnection: close\r\n\r\n";
    let parts = ["first ✓\n", "second\n", "third ✓✓\n"];
    let mut body: Vec<Vec<u8>> = parts
        .iter()
        .map(|p| format!("{:x}\r\n{p}\r\n", p.len()).into_bytes())
        .collect();
    body.push(b"0\r\n\r\n".to_vec());
    let gateway = gateway_before(&raw_backend(chunked, body).await).await;
    let whole: String = parts.concat();
    for range in [None, Some("bytes=0-3"), Some("bytes=-2")] {
        let response = get_from(&gateway, range).await;
        assert_eq!(response.status(), 200, "{range:?}");
        assert_eq!(header(&response, "content-range"), None);
        assert_eq!(header(&response, "content-length"), None);
        // No length known: the gateway cannot promise ranges of it.
        assert_eq!(header(&response, "accept-ranges"), None);
        assert_eq!(response.text().await.unwrap(), whole, "{range:?}");
    }
}

#[tokio::test]
async fn a_log_that_ends_short_of_its_length_aborts_the_answer() {
    // 1000 bytes promised, 600 sent.
    let short = "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\
                 content-length: 1000\r\nconnection: close\r\n\r\n";
    let body = vec![vec![b'a'; 300], vec![b'b'; 300]];
    let gateway = gateway_before(&raw_backend(short, body).await).await;

    // A range inside what came is served whole.
    let inside = get_from(&gateway, Some("bytes=290-309")).await;
    assert_eq!(inside.status(), 206);
    let want: Vec<u8> = [vec![b'a'; 10], vec![b'b'; 10]].concat();
    assert_eq!(inside.bytes().await.unwrap(), want);

    // A range, or the whole log, past what came: the transfer fails, it never looks done.
    for range in [Some("bytes=500-899"), Some("bytes=-100"), None] {
        let response = get_from(&gateway, range).await;
        let status = response.status();
        assert!(status == 206 || status == 200, "{range:?}: {status}");
        assert!(response.bytes().await.is_err(), "{range:?}");
    }
}
