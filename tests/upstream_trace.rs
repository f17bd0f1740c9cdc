//! Job logs with `artifacts.source = "upstream"`: the backend (the sample backend in its
//! GitLab-faithful mode) reads the log and decides access; the gateway forwards the request
//! with the caller's credentials and adds `Range` and `HEAD`, which GitLab's trace route
//! lacks.
//!
//! Expected bytes come from the logs the tests give the backend; expected refusals from
//! GitLab's documented messages.

mod common;

use std::time::Duration;

use artifact_gateway::config::ArtifactSource;
use artifact_gateway::dispatch::AppState;
use artifact_gateway::listener::RunningGateway;
use common::{header, json, Harness, TOKEN};
use reqwest::Method;
use sample_backend::{BackendBuilder, JobSpec, JobStatus, Visibility};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Finished, with a long log.
const FINISHED: u64 = 11;
/// Running (its job token is live), with a long log.
const RUNNING: u64 = 12;
/// Finished, with an empty log.
const EMPTY: u64 = 13;

/// A log of a few hundred KiB with multi-byte UTF-8 on every line, so that ranges cut
/// through characters and the body spans many chunks.
fn log_of(job: u64) -> String {
    let log: String = (0..8000)
        .map(|i| format!("job {job} line {i:05}: ünïcode ✓ 日本語 — step {}\n", i % 7))
        .collect();
    assert!(log.len() > 300 * 1024 && !log.is_ascii());
    log
}

fn backend() -> BackendBuilder {
    BackendBuilder::new()
        .user("demo", TOKEN)
        .user("outsider", "outsider-token")
        .project(1, "group/app", Visibility::Private, &["demo"])
        .job(
            JobSpec::new(FINISHED, 1, "build", "main", JobStatus::Success).trace(&log_of(FINISHED)),
        )
        .job(JobSpec::new(RUNNING, 1, "test", "main", JobStatus::Running).trace(&log_of(RUNNING)))
        .job(JobSpec::new(EMPTY, 1, "lint", "main", JobStatus::Success).trace(""))
        .gitlab_job_token_rules()
}

async fn harness() -> Harness {
    Harness::start_with(backend(), |config| {
        config.artifacts.source = ArtifactSource::Upstream;
    })
    .await
}

fn trace_path(job: u64) -> String {
    format!("/api/v4/projects/1/jobs/{job}/trace")
}

async fn send(
    h: &Harness,
    method: Method,
    job: u64,
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let mut request = h
        .client
        .request(method, h.url(&format!("/projects/1/jobs/{job}/trace")));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.expect("request reaches the gateway")
}

async fn get(h: &Harness, job: u64, headers: &[(&str, &str)]) -> reqwest::Response {
    send(h, Method::GET, job, headers).await
}

/// A GET as `demo` with `Range: range`.
async fn ranged(h: &Harness, job: u64, range: &str) -> reqwest::Response {
    get(h, job, &[("PRIVATE-TOKEN", TOKEN), ("Range", range)]).await
}

fn assert_partial(response: &reqwest::Response, first: usize, last: usize, size: usize) {
    assert_eq!(response.status(), 206);
    let content_range = format!("bytes {first}-{last}/{size}");
    assert_eq!(
        header(response, "content-range"),
        Some(content_range.as_str())
    );
    let length = (last - first + 1).to_string();
    assert_eq!(header(response, "content-length"), Some(length.as_str()));
    assert_eq!(header(response, "accept-ranges"), Some("bytes"));
    assert_eq!(header(response, "content-type"), Some("text/plain"));
}

async fn assert_unsatisfiable(response: reqwest::Response, size: usize) {
    assert_eq!(response.status(), 416);
    let content_range = format!("bytes */{size}");
    assert_eq!(
        header(&response, "content-range"),
        Some(content_range.as_str())
    );
    assert_eq!(
        json(response).await,
        serde_json::json!({"message": "416 Range Not Satisfiable"})
    );
}

#[tokio::test]
async fn whole_log_is_byte_exact_for_finished_and_running_jobs() {
    let h = harness().await;
    // The storage mode's key for this log holds something else: it must not be read.
    h.storage.put("1/11/job.log", b"stale copy in storage\n");
    for job in [FINISHED, RUNNING] {
        let log = log_of(job);
        let response = get(&h, job, &[("PRIVATE-TOKEN", TOKEN)]).await;
        assert_eq!(response.status(), 200, "job {job}");
        assert_eq!(header(&response, "content-type"), Some("text/plain"));
        let length = log.len().to_string();
        assert_eq!(header(&response, "content-length"), Some(length.as_str()));
        assert_eq!(header(&response, "accept-ranges"), Some("bytes"));
        assert_eq!(header(&response, "content-range"), None);
        assert_eq!(response.bytes().await.unwrap(), log.as_bytes(), "job {job}");
        assert_eq!(h.backend.count("GET", &trace_path(job)), 1);
    }
    // The backend decided access itself: the gateway asked for no job metadata first.
    assert_eq!(h.backend.count("GET", "/api/v4/projects/1/jobs/11"), 0);
    let forwarded = h.backend.requests().pop().unwrap();
    assert_eq!(forwarded.headers["private-token"], TOKEN);
}

#[tokio::test]
async fn ranges_are_cut_out_of_the_backends_whole_log() {
    let h = harness().await;
    let log = log_of(FINISHED);
    let bytes = log.as_bytes();
    let size = log.len();

    let first = ranged(&h, FINISHED, "bytes=0-9").await;
    assert_partial(&first, 0, 9, size);
    assert_eq!(first.bytes().await.unwrap(), &bytes[..10]);

    let middle = ranged(&h, FINISHED, "bytes=100001-250000").await;
    assert_partial(&middle, 100_001, 250_000, size);
    assert_eq!(middle.bytes().await.unwrap(), &bytes[100_001..=250_000]);

    let suffix = ranged(&h, FINISHED, "bytes=-1000").await;
    assert_partial(&suffix, size - 1000, size - 1, size);
    assert_eq!(suffix.bytes().await.unwrap(), &bytes[size - 1000..]);

    let open = ranged(&h, FINISHED, "bytes=300000-").await;
    assert_partial(&open, 300_000, size - 1, size);
    assert_eq!(open.bytes().await.unwrap(), &bytes[300_000..]);

    // A last byte past the end stops at the end; a suffix longer than the log is all of it.
    let past = ranged(&h, FINISHED, &format!("bytes={}-{}", size - 5, size + 100)).await;
    assert_partial(&past, size - 5, size - 1, size);
    assert_eq!(past.bytes().await.unwrap(), &bytes[size - 5..]);
    let longer = ranged(&h, FINISHED, &format!("bytes=-{}", size * 2)).await;
    assert_partial(&longer, 0, size - 1, size);
    assert_eq!(longer.bytes().await.unwrap(), bytes);

    // Nothing new since the client's last read, and what selects nothing: 416.
    assert_unsatisfiable(ranged(&h, FINISHED, &format!("bytes={size}-")).await, size).await;
    let beyond = format!("bytes={}-{}", size + 10, size + 20);
    assert_unsatisfiable(ranged(&h, FINISHED, &beyond).await, size).await;
    assert_unsatisfiable(ranged(&h, FINISHED, "bytes=-0").await, size).await;
    assert_unsatisfiable(ranged(&h, EMPTY, "bytes=0-").await, 0).await;
    assert_unsatisfiable(ranged(&h, EMPTY, "bytes=-10").await, 0).await;

    // Several ranges, or no byte range at all: the whole log (ignoring Range is allowed).
    for value in ["bytes=0-1,5-6", "items=0-9", "bytes=9-1"] {
        let whole = ranged(&h, FINISHED, value).await;
        assert_eq!(whole.status(), 200, "{value}");
        assert_eq!(whole.bytes().await.unwrap(), bytes, "{value}");
    }

    // A running job's log: a client that has read `seen` bytes asks for the rest.
    let running = log_of(RUNNING);
    let seen = 123_457;
    let rest = ranged(&h, RUNNING, &format!("bytes={seen}-")).await;
    assert_partial(&rest, seen, running.len() - 1, running.len());
    assert_eq!(rest.bytes().await.unwrap(), &running.as_bytes()[seen..]);
}

#[tokio::test]
async fn if_range_without_a_backend_validator_gives_the_whole_log() {
    let h = harness().await;
    let log = log_of(FINISHED);
    // The sample backend, like GitLab's trace route, sends no strong validator.
    let plain = get(&h, FINISHED, &[("PRIVATE-TOKEN", TOKEN)]).await;
    assert_eq!(header(&plain, "etag"), None);
    assert_eq!(header(&plain, "last-modified"), None);

    // RFC 9110 §13.1.5: a validator that does not match the representation's means the
    // Range is ignored, and nothing can match a representation that has none.
    for validator in [
        "\"stale\"",
        "W/\"stale\"",
        "Sun, 06 Nov 1994 08:49:37 GMT",
        "not a validator",
    ] {
        let response = get(
            &h,
            FINISHED,
            &[
                ("PRIVATE-TOKEN", TOKEN),
                ("Range", "bytes=0-9"),
                ("If-Range", validator),
            ],
        )
        .await;
        assert_eq!(response.status(), 200, "If-Range: {validator}");
        assert_eq!(header(&response, "content-range"), None);
        let length = log.len().to_string();
        assert_eq!(header(&response, "content-length"), Some(length.as_str()));
        assert_eq!(response.bytes().await.unwrap(), log.as_bytes());
    }
}

#[tokio::test]
async fn head_is_asked_as_a_get_and_answered_without_a_body() {
    let h = harness().await;
    let log = log_of(FINISHED);
    let size = log.len();

    let head = send(&h, Method::HEAD, FINISHED, &[("PRIVATE-TOKEN", TOKEN)]).await;
    assert_eq!(head.status(), 200);
    let length = size.to_string();
    assert_eq!(header(&head, "content-length"), Some(length.as_str()));
    assert_eq!(header(&head, "accept-ranges"), Some("bytes"));
    assert_eq!(header(&head, "content-type"), Some("text/plain"));
    assert!(head.bytes().await.unwrap().is_empty());

    let head = send(
        &h,
        Method::HEAD,
        FINISHED,
        &[("PRIVATE-TOKEN", TOKEN), ("Range", "bytes=-100")],
    )
    .await;
    assert_partial(&head, size - 100, size - 1, size);
    assert!(head.bytes().await.unwrap().is_empty());

    let head = send(
        &h,
        Method::HEAD,
        FINISHED,
        &[
            ("PRIVATE-TOKEN", TOKEN),
            ("Range", &format!("bytes={size}-")),
        ],
    )
    .await;
    assert_eq!(head.status(), 416);
    let unsatisfied = format!("bytes */{size}");
    assert_eq!(header(&head, "content-range"), Some(unsatisfied.as_str()));

    // A refusal is a refusal for HEAD too, without its body.
    let refused = send(&h, Method::HEAD, FINISHED, &[]).await;
    assert_eq!(refused.status(), 404);
    assert!(refused.bytes().await.unwrap().is_empty());

    let path = trace_path(FINISHED);
    assert_eq!(h.backend.count("HEAD", &path), 0);
    assert_eq!(h.backend.count("GET", &path), 4);
}

#[tokio::test]
async fn a_running_jobs_log_is_read_live_every_time() {
    let h = harness().await;
    let mut log = log_of(RUNNING);
    let first = get(&h, RUNNING, &[("PRIVATE-TOKEN", TOKEN)]).await;
    assert_eq!(first.bytes().await.unwrap(), log.as_bytes());

    let more = "step 8: ✓ done — 完了\n";
    h.backend
        .update_job(RUNNING, |job| job.trace.push_str(more));
    let seen = log.len();
    log.push_str(more);
    for _ in 0..2 {
        let whole = get(&h, RUNNING, &[("PRIVATE-TOKEN", TOKEN)]).await;
        let length = log.len().to_string();
        assert_eq!(header(&whole, "content-length"), Some(length.as_str()));
        assert_eq!(whole.bytes().await.unwrap(), log.as_bytes());
        let new = ranged(&h, RUNNING, &format!("bytes={seen}-")).await;
        assert_partial(&new, seen, log.len() - 1, log.len());
        assert_eq!(new.bytes().await.unwrap(), more.as_bytes());
    }

    // The job finishes with a rewritten log (GitLab archives it): the new bytes again.
    let archived = "archived log\n";
    h.backend.update_job(RUNNING, |job| {
        job.status = JobStatus::Success;
        job.trace = archived.to_owned();
    });
    for _ in 0..2 {
        let response = get(&h, RUNNING, &[("PRIVATE-TOKEN", TOKEN)]).await;
        assert_eq!(response.bytes().await.unwrap(), archived);
    }
    assert_eq!(h.backend.count("GET", &trace_path(RUNNING)), 7);
}

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

// ---------------------------------------------------------------------------------------
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
