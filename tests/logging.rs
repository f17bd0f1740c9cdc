//! The access log: one line per request with route, status, bytes and duration, and never a
//! token. Its own test binary because it installs a global subscriber.

mod common;

use common::Harness;
use sample_backend::BackendBuilder;

#[tokio::test]
async fn access_log_has_the_request_and_never_a_token() {
    let captured = common::logs::capture("debug");
    let h = Harness::start(BackendBuilder::sample_data()).await;
    let secrets = [
        "private-secret-1",
        "job-secret-2",
        "header-secret-3",
        "bearer-secret-4",
        "oauth-secret-5",
        "semicolon-secret-6",
    ];
    let response = h
        .client
        .get(h.url(&format!(
            "/projects/1/jobs/104?private_token={}&job_token={}&access_token={};private_token={}",
            secrets[0], secrets[1], secrets[4], secrets[5]
        )))
        .header("PRIVATE-TOKEN", secrets[2])
        .header("Authorization", format!("Bearer {}", secrets[3]))
        .send()
        .await
        .unwrap();
    let status = response.status();
    let len = response.bytes().await.unwrap().len();
    // A wrong token is answered 401: the log must not leak it either.
    h.get("/projects/1/jobs", Some("header-secret-3"))
        .await
        .bytes()
        .await
        .unwrap();
    // The access line is written as a body ends, which may be just after the client has
    // read it: wait for the last request's line (its 401) before reading the log.
    common::wait::wait_until(
        "the 401's access line",
        std::time::Duration::from_secs(5),
        || {
            let log = captured.text();
            log.lines()
                .any(|l| l.contains(" response ") && l.contains("401"))
        },
    )
    .await;

    let log = captured.text();
    for secret in secrets {
        assert!(
            !log.contains(secret),
            "{secret} leaked into the log:\n{log}"
        );
    }
    assert!(log.contains("private_token=[REDACTED]"), "{log}");
    let line = log
        .lines()
        .find(|l| l.contains("route=\"get_job\"") && l.contains(" response "))
        .unwrap_or_else(|| panic!("no access line for get_job:\n{log}"));
    assert!(
        line.contains(&format!("status={}", status.as_u16())),
        "{line}"
    );
    assert!(line.contains(&format!("bytes={len}")), "{line}");
    assert!(line.contains("duration_ms="), "{line}");
    assert!(line.contains("outcome=Complete"), "{line}");
    assert!(line.contains("method=GET"), "{line}");

    // Each access line says how many storage requests its handler made: a cold single-file
    // request opens the archive with one tail read, plus one read for an entry outside the
    // tail; an entry inside the cached tail needs none.
    let tail = h.gateway.state().config.zip.tail_bytes;
    let big = vec![7u8; 3 * tail as usize];
    let built = common::zips::build_stored(&[("big.bin", &big), ("small.txt", b"hello")]);
    assert!(!built.in_tail("big.bin", tail) && built.in_tail("small.txt", tail));
    h.storage.put("1/104/artifacts.zip", &built.bytes);
    for (name, reads) in [("big.bin", 2), ("small.txt", 0)] {
        let response = h
            .get(
                &format!("/projects/1/jobs/104/artifacts/{name}"),
                Some(common::TOKEN),
            )
            .await;
        assert_eq!(response.status(), 200, "{name}");
        response.bytes().await.unwrap();
        let wanted = format!("storage_requests={reads} ");
        let path = format!("/artifacts/{name}");
        common::wait::wait_until(
            &format!("{name}'s access line"),
            std::time::Duration::from_secs(5),
            || {
                let log = captured.text();
                log.lines()
                    .any(|l| l.contains(" response ") && l.contains(&path) && l.contains(&wanted))
            },
        )
        .await;
    }
}
