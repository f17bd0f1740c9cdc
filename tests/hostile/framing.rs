//! Request framing sent raw over a socket: bodies on GETs, conflicting or duplicate lengths,
//! obs-fold. Each case checks the status, that the backend never saw a request that was
//! not sent as one (it records every request, body included), and that the endpoint stays
//! prompt for everyone else.

use std::time::Duration;

use sample_backend::{BackendBuilder, SampleBackend};

use crate::common::client;
use crate::support::{raw_exchange, statuses, within, Case, Gateway, TempDir};

const JOB: &str = "/api/v4/projects/1/jobs/104";
/// A request line the backend must only ever see if a client sent it as a request.
const SMUGGLED: &str = "/api/v4/projects/1/jobs/smuggled";
const QUIET: Duration = Duration::from_millis(1500);

/// The gateway with `upstream.response_timeout` at its default (30 s), so a request the
/// backend waits on shows as a stall far past the bounds below.
async fn start() -> Case {
    start_with("").await
}

/// A case whose gateway runs with `overrides` (TOML) over the defaults.
async fn start_with(overrides: &str) -> Case {
    Case::start("framing", "1/104/artifacts.zip", overrides).await
}

fn never_smuggled(backend: &SampleBackend) {
    let seen = backend.requests();
    assert!(
        seen.iter().all(|r| !r.path_and_query.contains("smuggled")),
        "the backend saw a smuggled request: {:?}",
        seen.iter().map(|r| &r.path_and_query).collect::<Vec<_>>()
    );
}

/// Everyone else's requests for the endpoint, and an archive download that authorises
/// through it, answer promptly and correctly.
async fn endpoint_stays_prompt(case: &Case) {
    let client = client();
    within(Duration::from_secs(5), "the next job request", async {
        let response = client
            .get(case.gateway.url("/projects/1/jobs/104"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let job = crate::common::json(response).await;
        assert_eq!(job["id"], 104);
    })
    .await;
    within(Duration::from_secs(5), "an archive download", async {
        let response = client
            .get(case.gateway.url("/projects/1/jobs/104/artifacts"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.bytes().await.unwrap(), case.archive);
    })
    .await;
}

#[tokio::test]
async fn get_with_a_body_on_a_cached_route_never_stalls_the_endpoint() {
    let case = start().await;
    let addr = case.gateway.addr;
    // Sent in the background, as `curl -X GET --data x ... &` would be.
    let first = tokio::spawn(async move {
        let request = format!(
            "GET {JOB} HTTP/1.1\r\nHost: gw\r\nContent-Type: application/x-www-form-urlencoded\r\n\
             Content-Length: 1\r\nConnection: close\r\n\r\nx"
        );
        raw_exchange(addr, request.as_bytes(), Duration::from_secs(40)).await
    });
    endpoint_stays_prompt(&case).await;
    let answer = within(Duration::from_secs(5), "the GET with a body", first)
        .await
        .unwrap();
    assert_eq!(
        statuses(&answer),
        [200],
        "{}",
        String::from_utf8_lossy(&answer)
    );
    let text = String::from_utf8_lossy(&answer).to_ascii_lowercase();
    assert!(text.contains("x-cache: bypass"), "{text}");
    // Forwarded with its body, which arrived whole.
    let with_body: Vec<_> = case
        .backend
        .requests()
        .into_iter()
        .filter(|r| r.path() == JOB && !r.body.is_empty())
        .collect();
    assert_eq!(with_body.len(), 1);
    assert_eq!(&with_body[0].body[..], b"x");
    assert_eq!(with_body[0].headers["content-length"], "1");
    eprintln!(
        "GET with a body: peak RSS {} KiB",
        case.gateway.peak_rss_kib()
    );
    case.gateway.assert_peak_below(64, "GET with a body");
}

#[tokio::test]
async fn get_with_a_chunked_body_is_forwarded_whole_and_smuggles_nothing() {
    let case = start().await;
    let inner = format!("GET {SMUGGLED} HTTP/1.1\r\nHost: gw\r\n\r\n");
    let request = format!(
        "GET {JOB} HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n\
         {:x}\r\n{inner}\r\n0\r\n\r\n",
        inner.len()
    );
    let answer = within(
        Duration::from_secs(5),
        "GET with a chunked body",
        raw_exchange(case.gateway.addr, request.as_bytes(), QUIET),
    )
    .await;
    assert_eq!(
        statuses(&answer),
        [200],
        "{}",
        String::from_utf8_lossy(&answer)
    );
    never_smuggled(&case.backend);
    let forwarded = case.backend.requests();
    let body = forwarded
        .iter()
        .find(|r| r.path() == JOB)
        .map(|r| r.body.clone());
    assert_eq!(body.as_deref(), Some(inner.as_bytes()));
    endpoint_stays_prompt(&case).await;
    case.gateway
        .assert_peak_below(64, "GET with a chunked body");
}

/// Content-Length and Transfer-Encoding together, duplicate lengths, obs-fold: a 400 (or
/// a correct answer to the one request that was sent), and nothing smuggled.
#[tokio::test]
async fn conflicting_framing_is_refused_and_smuggles_nothing() {
    let case = start().await;
    let inner = format!("GET {SMUGGLED} HTTP/1.1\r\nHost: gw\r\n\r\n");
    let cases = [
        (
            "CL+TE",
            format!(
                "POST /api/v4/projects/1/jobs/105/play HTTP/1.1\r\nHost: gw\r\n\
                 PRIVATE-TOKEN: demo-token\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n\
                 0\r\n\r\n{inner}"
            ),
        ),
        (
            "TE+CL on a cached GET",
            format!(
                "GET {JOB} HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\
                 Content-Length: {}\r\n\r\n0\r\n\r\n{inner}",
                inner.len() + 5
            ),
        ),
        (
            "duplicate Content-Length",
            format!(
                "GET {JOB} HTTP/1.1\r\nHost: gw\r\nContent-Length: 0\r\nContent-Length: {}\r\n\r\n{inner}",
                inner.len()
            ),
        ),
        (
            "obs-fold",
            format!(
                "GET {JOB} HTTP/1.1\r\nHost: gw\r\nX-Folded: a\r\n Content-Length: {}\r\n\r\n{inner}",
                inner.len()
            ),
        ),
    ];
    for (name, request) in cases {
        let answer = within(
            Duration::from_secs(5),
            name,
            raw_exchange(case.gateway.addr, request.as_bytes(), QUIET),
        )
        .await;
        let seen = statuses(&answer);
        eprintln!("{name}: {seen:?}");
        assert!(
            seen == [400] || seen == [200],
            "{name}: {seen:?}\n{}",
            String::from_utf8_lossy(&answer)
        );
        if seen == [400] {
            let text = String::from_utf8_lossy(&answer);
            let body = text.split("\r\n\r\n").nth(1).unwrap_or("");
            assert_eq!(
                body, r#"{"message":"400 Bad request"}"#,
                "{name}: hyper's bare 400 must be swapped for the JSON one: {text}"
            );
        }
        never_smuggled(&case.backend);
    }
    endpoint_stays_prompt(&case).await;
    eprintln!(
        "conflicting framing: peak RSS {} KiB",
        case.gateway.peak_rss_kib()
    );
    case.gateway.assert_peak_below(64, "conflicting framing");
}

/// Heads hyper refuses before the gateway sees them (bad syntax, a bad version, a target
/// longer than hyper takes) get the gateway's JSON answer, not hyper's empty one, and the
/// connection closes without losing it.
#[tokio::test]
async fn heads_the_parser_refuses_get_a_json_answer_not_an_empty_one() {
    // Heads up to 1 MiB are let through to the parser, so a long target meets hyper's own
    // URI limit (65,534 bytes) before any size limit.
    let case = start_with("[server]\nmax_header_bytes = \"1MiB\"\n").await;
    let long_target = format!("/api/v4/projects/1/jobs?{}", "a".repeat(70_000));
    let cases: [(&str, String, u16, &str); 4] = [
        (
            "bad method",
            "G(T / HTTP/1.1\r\nHost: gw\r\n\r\n".to_owned(),
            400,
            "400 Bad request",
        ),
        (
            "bad version",
            "GET / HTTP/9.9\r\nHost: gw\r\n\r\n".to_owned(),
            400,
            "400 Bad request",
        ),
        (
            "header without a colon",
            "GET / HTTP/1.1\r\nHost: gw\r\nno colon here\r\n\r\n".to_owned(),
            400,
            "400 Bad request",
        ),
        (
            "target past hyper's URI limit",
            format!("GET {long_target} HTTP/1.1\r\nHost: gw\r\n\r\n"),
            414,
            "414 URI Too Long",
        ),
    ];
    for (name, request, status, message) in cases {
        let answer = within(
            Duration::from_secs(5),
            name,
            raw_exchange(case.gateway.addr, request.as_bytes(), QUIET),
        )
        .await;
        let text = String::from_utf8_lossy(&answer);
        assert_eq!(statuses(&answer), [status], "{name}: {text}");
        let body = text.split("\r\n\r\n").nth(1).unwrap_or("");
        assert_eq!(
            body,
            format!(r#"{{"message":"{message}"}}"#),
            "{name}: {text}"
        );
        assert!(
            text.to_ascii_lowercase()
                .contains("content-type: application/json"),
            "{name}: {text}"
        );
        never_smuggled(&case.backend);
    }
    endpoint_stays_prompt(&case).await;
    case.gateway
        .assert_peak_below(64, "heads the parser refuses");
}

/// An upstream request that timed out, and one whose client left mid-body, leave no
/// connection behind in doubt: the next requests get their own answers, promptly.
#[tokio::test]
async fn upstream_connections_in_doubt_are_never_reused() {
    let backend = BackendBuilder::sample_data().start().await.unwrap();
    let storage = TempDir::new("framing-reuse");
    let gateway = Gateway::spawn(
        &backend.url(),
        &storage.url(),
        "[upstream]\nresponse_timeout = \"1s\"\n",
    )
    .await;
    gateway.reset_peak();
    let client = client();
    within(
        Duration::from_secs(10),
        "a timeout, then the next request",
        async {
            backend.set_delay(Duration::from_secs(2));
            let slow = client
                .get(gateway.url("/projects/1/jobs/104"))
                .send()
                .await
                .unwrap();
            assert_eq!(slow.status(), 504);
            backend.set_delay(Duration::ZERO);
            // The 104 answer is still on its way on the old connection; 101 must not get it.
            for id in [101, 103, 104] {
                let response = client
                    .get(gateway.url(&format!("/projects/1/jobs/{id}")))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(crate::common::json(response).await["id"], id);
            }
        },
    )
    .await;
    within(Duration::from_secs(10), "a client gone mid-body", async {
        let request = "POST /api/v4/projects/1/jobs/105/play HTTP/1.1\r\nHost: gw\r\n\
                       PRIVATE-TOKEN: demo-token\r\nContent-Type: application/json\r\n\
                       Content-Length: 100\r\n\r\n{\"job_var";
        raw_exchange(gateway.addr, request.as_bytes(), Duration::from_millis(300)).await;
        // Dropped: the backend never acted on the truncated request.
        let plays = |b: &SampleBackend| b.count("POST", "/api/v4/projects/1/jobs/105/play");
        assert_eq!(plays(&backend), 0);
        assert_eq!(
            backend.job(105).unwrap().status,
            sample_backend::JobStatus::Manual
        );
        for id in [101, 104] {
            let response = client
                .get(gateway.url(&format!("/projects/1/jobs/{id}")))
                .send()
                .await
                .unwrap();
            assert_eq!(crate::common::json(response).await["id"], id);
        }
    })
    .await;
    eprintln!(
        "connections in doubt: peak RSS {} KiB",
        gateway.peak_rss_kib()
    );
    gateway.assert_peak_below(64, "connections in doubt");
}
