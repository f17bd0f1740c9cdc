//! Reading a job's log through the gateway: the whole log byte-exact for finished and
//! running jobs, ranges cut out of the backend's whole log, `If-Range` without a backend
//! validator giving the whole log, `HEAD` asked as a `GET` and answered without a body, and
//! a running job's log read live every time.

use reqwest::Method;
use sample_backend::JobStatus;

use crate::common::{header, TOKEN};
use crate::support::{
    assert_partial, assert_unsatisfiable, get, harness, log_of, ranged, send, trace_path, EMPTY,
    FINISHED, RUNNING,
};

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
