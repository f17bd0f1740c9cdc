//! Honest outcomes: a body that reached its end is `Complete`, on HTTP/1.1 as on HTTP/2,
//! and `aborted_streams_total{reason="client_gone"}` counts only clients that left early.

use std::time::Duration;

use sample_backend::BackendBuilder;

use crate::support::{within, Gateway, TempDir};

/// `aborted_streams_total{reason=...}` from the admin listener.
async fn aborted(gateway: &Gateway, reason: &str) -> u64 {
    let text = gateway.metrics().await;
    let label = format!("reason=\"{reason}\"");
    text.lines()
        .filter(|l| l.contains("aborted_streams_total") && l.contains(&label))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

#[tokio::test]
async fn complete_http1_downloads_are_not_counted_as_client_gone() {
    within(Duration::from_secs(60), "complete downloads", async {
        let backend = BackendBuilder::sample_data().start().await.unwrap();
        let storage = TempDir::new("outcomes");
        let archive: Vec<u8> = (0..3 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
        storage.write("1/104/artifacts.zip", &archive);
        let gateway = Gateway::spawn(&backend.url(), &storage.url(), "").await;
        let client = crate::common::client();
        for _ in 0..5 {
            let response = client
                .get(gateway.url("/projects/1/jobs/104/artifacts"))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
            assert!(response.bytes().await.unwrap() == archive);
        }
        let line = gateway
            .wait_for_log(|l| l.contains("\"route\":\"archive\"") && l.contains("\"status\":200"))
            .await;
        assert!(
            !line.to_ascii_lowercase().contains("clientgone")
                && !line.to_ascii_lowercase().contains("client_gone"),
            "a complete download logged as a client that left: {line}"
        );
        assert_eq!(aborted(&gateway, "client_gone").await, 0);
    })
    .await;
}

/// An HTTP/2 client with prior knowledge (the gateway speaks h2c).
fn h2_client() -> reqwest::Client {
    reqwest::Client::builder()
        .http2_prior_knowledge()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// Wait until `aborted_streams_total{reason}` reaches `at_least`.
async fn wait_aborted(gateway: &Gateway, reason: &str, at_least: u64) -> u64 {
    loop {
        let n = aborted(gateway, reason).await;
        if n >= at_least {
            return n;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn complete_http2_downloads_are_complete_too() {
    within(Duration::from_secs(60), "complete h2 downloads", async {
        let backend = BackendBuilder::sample_data().start().await.unwrap();
        let storage = TempDir::new("outcomes-h2");
        let archive: Vec<u8> = (0..3 * 1024 * 1024u32).map(|i| (i % 249) as u8).collect();
        storage.write("1/104/artifacts.zip", &archive);
        let gateway = Gateway::spawn(&backend.url(), &storage.url(), "").await;
        let client = h2_client();
        for _ in 0..3 {
            let response = client
                .get(gateway.url("/projects/1/jobs/104/artifacts"))
                .send()
                .await
                .unwrap();
            assert_eq!(response.version(), reqwest::Version::HTTP_2);
            assert_eq!(response.status(), 200);
            assert!(response.bytes().await.unwrap() == archive);
        }
        gateway
            .wait_for_log(|l| {
                l.contains("\"route\":\"archive\"")
                    && l.contains("\"status\":200")
                    && l.contains("Complete")
            })
            .await;
        assert!(!gateway.log().iter().any(|l| l.contains("ClientGone")));
        assert_eq!(aborted(&gateway, "client_gone").await, 0);
    })
    .await;
}

/// A client that leaves mid-download is counted `client_gone`, on either protocol: the
/// fix for false aborts must not hide the real ones.
#[tokio::test]
async fn clients_that_leave_mid_download_are_counted_client_gone() {
    within(Duration::from_secs(60), "early disconnects", async {
        let backend = BackendBuilder::sample_data().start().await.unwrap();
        let storage = TempDir::new("outcomes-gone");
        // Far more than socket buffers hold, so the gateway is still writing when the
        // client leaves.
        let archive: Vec<u8> = (0..48 * 1024 * 1024u32).map(|i| (i % 241) as u8).collect();
        storage.write("1/104/artifacts.zip", &archive);
        let gateway = Gateway::spawn(&backend.url(), &storage.url(), "").await;
        for (n, client) in [crate::common::client(), h2_client()]
            .into_iter()
            .enumerate()
        {
            let mut response = client
                .get(gateway.url("/projects/1/jobs/104/artifacts"))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
            let first = response.chunk().await.unwrap().expect("a first chunk");
            assert_eq!(first[..], archive[..first.len()]);
            drop(response);
            drop(client);
            assert_eq!(
                wait_aborted(&gateway, "client_gone", n as u64 + 1).await,
                n as u64 + 1
            );
        }
        // The metric moves just before the access line reaches the captured log.
        let left = |l: &str| l.contains("\"route\":\"archive\"") && l.contains("ClientGone");
        gateway.wait_for_log_count(2, left).await;
        let gone = gateway.log().iter().filter(|l| left(l)).count();
        assert_eq!(gone, 2, "{:#?}", gateway.log());
    })
    .await;
}
