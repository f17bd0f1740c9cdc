//! Tokens in every position a client can put them, through the real binary with its JSON
//! log captured: no token value ever appears in the log, and every request is logged.

use std::time::Duration;

use sample_backend::BackendBuilder;

use crate::common::client;
use crate::support::{within, Gateway, TempDir};

#[tokio::test]
async fn no_token_in_any_position_reaches_the_log() {
    let backend = BackendBuilder::sample_data().start().await.unwrap();
    let storage = TempDir::new("tokens");
    let gateway = Gateway::spawn(
        &backend.url(),
        &storage.url(),
        "[log]\nfilter = \"debug\"\n",
    )
    .await;
    gateway.reset_peak();
    // (query, headers): each secret is unique so that a leak names its position.
    let cases: Vec<(String, Vec<(&str, String)>)> = vec![
        ("private_token=SECRETq1".into(), vec![]),
        ("job_token=SECRETq2".into(), vec![]),
        ("access_token=SECRETq3".into(), vec![]),
        ("page=1&access_token=SECRETq4&per_page=2".into(), vec![]),
        ("page=1;private_token=SECRETq5".into(), vec![]),
        (
            "page=1;access_token=SECRETq6;job_token=SECRETq7".into(),
            vec![],
        ),
        ("private%5Ftoken=SECRETq8".into(), vec![]),
        (
            "%61ccess_token=SECRETq9&job%5ftoken=SECRETq10".into(),
            vec![],
        ),
        ("Private_Token=SECRETq11".into(), vec![]),
        ("access_token[]=SECRETq12".into(), vec![]),
        ("feed_token=SECRETq13".into(), vec![]),
        ("sudo=demo&private_token=SECRETq14".into(), vec![]),
        ("".into(), vec![("PRIVATE-TOKEN", "SECRETh1".into())]),
        ("".into(), vec![("JOB-TOKEN", "SECRETh2".into())]),
        ("".into(), vec![("Authorization", "Bearer SECRETh3".into())]),
        (
            "".into(),
            vec![("Cookie", "_gitlab_session=SECRETh4".into())],
        ),
        (
            "".into(),
            vec![("Cookie", "theme=dark; _gitlab_session=SECRETh5".into())],
        ),
        (
            "".into(),
            vec![
                ("PRIVATE-TOKEN", "SECRETh6".into()),
                ("Sudo", "demo".into()),
            ],
        ),
    ];
    let client = client();
    let paths = [
        "/projects/1/jobs/104",
        "/projects/1/jobs",
        "/projects/1/jobs/104/trace",
    ];
    within(Duration::from_secs(30), "requests with tokens", async {
        for (query, headers) in &cases {
            for path in paths {
                let url = if query.is_empty() {
                    gateway.url(path)
                } else {
                    format!("{}?{query}", gateway.url(path))
                };
                let mut request = client.get(url);
                for (name, value) in headers {
                    request = request.header(*name, value);
                }
                let response = request.send().await.unwrap();
                response.bytes().await.unwrap();
            }
        }
        // A mutation with the token only in the query, after `;`.
        client
            .post(format!(
                "{}?x=1;private_token=SECRETm1",
                gateway.url("/projects/1/jobs/105/play")
            ))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
    })
    .await;
    // Every request logged: one access line each (written as its body ends).
    let expected = cases.len() * paths.len() + 1;
    let started = std::time::Instant::now();
    let access_lines = loop {
        let lines: Vec<String> = gateway
            .log()
            .into_iter()
            .filter(|l| l.contains("\"message\":\"response\""))
            .collect();
        if lines.len() >= expected || started.elapsed() > Duration::from_secs(10) {
            break lines;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(access_lines.len(), expected, "{}", gateway.log().join("\n"));
    assert!(access_lines
        .iter()
        .any(|l| l.contains("access_token=[REDACTED]")));
    let log = gateway.log().join("\n");
    assert!(!log.contains("SECRET"), "a token reached the log:\n{}", {
        log.lines()
            .filter(|l| l.contains("SECRET"))
            .collect::<Vec<_>>()
            .join("\n")
    });
    eprintln!(
        "requests with tokens: peak RSS {} KiB",
        gateway.peak_rss_kib()
    );
    gateway.assert_peak_below(64, "requests with tokens");
}
