//! The memory budget (`zip.memory_budget`) that decoders and archive opens share: spent, it
//! answers 503 with `Retry-After` and GitLab's JSON, and it comes back when the streams
//! holding it end.

use std::time::Duration;

use super::streams::zstd_by_hand;
use super::{setup, setup_archives, zip, Entry, MIB, ZSTD};
use crate::support::within;

/// The budget: with room for two 8 MiB-window decoders, a third concurrent decode is
/// refused at once with 503 + `Retry-After` and GitLab's JSON; once the two streams end,
/// the budget is back and the same request succeeds.
#[tokio::test]
async fn memory_budget_spent_answers_503_and_is_released() {
    // 64 MiB of one byte: far more than socket buffers hold, so unread streams stay open.
    let content = vec![b'm'; 64 * MIB];
    let data = zstd_by_hand(0x68, &content);
    let s = setup(
        &[Entry::new("big.zst", ZSTD, &content, data)],
        "[zip]\nmax_decoder_memory = \"8MiB\"\nmemory_budget = \"20MiB\"\n",
    )
    .await;
    within(Duration::from_secs(30), "budget", async {
        // Two streams that are not read: each holds its reservation (about 8.8 MiB).
        let held: Vec<reqwest::Response> = {
            let mut held = Vec::new();
            for _ in 0..2 {
                let response = s.get("big.zst").await;
                assert_eq!(response.status(), 200);
                held.push(response);
            }
            held
        };
        let refused = s.get("big.zst").await;
        assert_eq!(refused.status(), 503);
        assert_eq!(
            refused.headers().get("retry-after").map(|v| v.as_bytes()),
            Some(&b"1"[..])
        );
        assert_eq!(
            crate::common::json(refused).await,
            serde_json::json!({"message": "503 Service Unavailable"})
        );
        let metrics = s.gateway.metrics().await;
        assert!(
            metrics.contains("artifact_gateway_rejected_total{limit=\"memory_budget\"} 1"),
            "{metrics}"
        );
        drop(held);
        // The streams end when the server sees the connections close: wait for that.
        loop {
            let response = s.get("big.zst").await;
            if response.status() == 200 {
                let body = response.bytes().await.expect("the whole body");
                assert_eq!(body.len(), content.len());
                assert!(body.iter().all(|&b| b == b'm'));
                break;
            }
            assert_eq!(response.status(), 503);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}

/// Archive opens draw from the same budget as decoders: with two decoders holding most of
/// it, opening an archive whose central directory (from its end record) needs more than
/// what is left is refused with 503 before the directory is read, and succeeds once the
/// decoders are gone.
#[tokio::test]
async fn archive_open_draws_from_the_memory_budget() {
    let content = vec![b'm'; 64 * MIB];
    let stream = Entry::new("big.zst", ZSTD, &content, zstd_by_hand(0x68, &content));
    // 30,000 stored one-byte entries: a directory of about 1.9 MB, far past the 128 KiB
    // tail, needing about 4 MiB to read and parse.
    let names: Vec<&'static str> = (0..30_000)
        .map(|i| &*Box::leak(format!("dir/file-{i:08}.txt").into_boxed_str()))
        .collect();
    let many: Vec<Entry> = names
        .iter()
        .map(|name| Entry::new(name, 0, b"x", b"x".to_vec()))
        .collect();
    let s = setup_archives(
        &[zip(&[stream]), zip(&many)],
        "[zip]\nmax_decoder_memory = \"8MiB\"\nmemory_budget = \"20MiB\"\n",
    )
    .await;
    within(
        Duration::from_secs(30),
        "open under a spent budget",
        async {
            let mut held = Vec::new();
            for _ in 0..2 {
                let response = s.get("big.zst").await;
                assert_eq!(response.status(), 200);
                held.push(response);
            }
            let refused = s.get_from(2, "dir/file-00000007.txt").await;
            assert_eq!(refused.status(), 503);
            assert!(refused.headers().contains_key("retry-after"));
            assert_eq!(
                crate::common::json(refused).await,
                serde_json::json!({"message": "503 Service Unavailable"})
            );
            drop(held);
            loop {
                let response = s.get_from(2, "dir/file-00000007.txt").await;
                if response.status() == 200 {
                    assert_eq!(&response.bytes().await.unwrap()[..], b"x");
                    break;
                }
                assert_eq!(response.status(), 503);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        },
    )
    .await;
}
