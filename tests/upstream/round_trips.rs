//! Storage round trips in upstream mode, counted at the S3 server: a fresh signature on
//! every locate, a 70,000-entry zip64 archive, and one caller's burst sharing one locate
//! and one archive open.

use std::io::{Cursor, Write};

use zip::write::SimpleFileOptions;
use zip::CompressionMethod;

use crate::common::storage::Kind;
use crate::common::{header, json, TOKEN};
use crate::support::{
    archive_route_count, bounded, expect_bytes, get_with, layout, reads_since, reads_so_far, start,
};

// Storage round trips

#[tokio::test]
async fn round_trips_with_a_fresh_signature_on_every_locate() {
    // No kept locations: every request asks the backend, which signs afresh each time;
    // the index is cached under the URL without its query, so it survives that.
    let h = start(Kind::Upstream, |c| c.cache.max_bytes = 0).await;
    let a = layout(11);
    let path = |name: &str| format!("/projects/1/jobs/11/artifacts/{name}");

    let before = reads_so_far(&h);
    expect_bytes(
        &h,
        &path("big-stored.bin"),
        &[("PRIVATE-TOKEN", TOKEN)],
        &a.big_stored,
    )
    .await;
    let cold = reads_since(&h, before);
    assert!(cold.len() <= 2, "cold entry: {cold:?}");
    assert_eq!(
        cold[0].as_deref(),
        Some("bytes=-131072"),
        "one suffix read of the tail"
    );
    assert!(cold[1..].iter().all(bounded), "{cold:?}");

    let before = reads_so_far(&h);
    expect_bytes(
        &h,
        &path("dir/big-deflated.txt"),
        &[("PRIVATE-TOKEN", TOKEN)],
        &a.big_deflated,
    )
    .await;
    let warm = reads_since(&h, before);
    assert_eq!(warm.len(), 1, "warm entry: {warm:?}");
    assert!(bounded(&warm[0]), "{warm:?}");

    let before = reads_so_far(&h);
    expect_bytes(
        &h,
        &path("small.txt"),
        &[("PRIVATE-TOKEN", TOKEN)],
        &a.small,
    )
    .await;
    assert_eq!(
        reads_since(&h, before),
        Vec::<Option<String>>::new(),
        "in the cached tail"
    );

    // The same warm entry again: one bounded read, and a fresh locate each time.
    let before = reads_so_far(&h);
    expect_bytes(
        &h,
        &path("big-stored.bin"),
        &[("PRIVATE-TOKEN", TOKEN)],
        &a.big_stored,
    )
    .await;
    let again = reads_since(&h, before);
    assert!(again.len() == 1 && bounded(&again[0]), "{again:?}");
    assert_eq!(archive_route_count(&h, 1, 11), 4, "one locate per request");
    // A HEAD and a 304 read nothing once the archive is open.
    let before = reads_so_far(&h);
    let head = h.head(&path("big-stored.bin"), Some(TOKEN)).await;
    assert_eq!(head.status(), 200);
    let etag = header(&head, "etag").unwrap().to_owned();
    let not_modified = get_with(
        &h,
        &path("big-stored.bin"),
        &[("PRIVATE-TOKEN", TOKEN), ("If-None-Match", &etag)],
    )
    .await;
    assert_eq!(not_modified.status(), 304);
    assert_eq!(reads_since(&h, before), Vec::<Option<String>>::new());
    // The backend's single-file route is never asked.
    assert!(
        h.backend
            .requests()
            .iter()
            .all(|r| !r.path().contains("/artifacts/") || r.path().ends_with("/download")),
        "a single-file route was asked"
    );
}

#[tokio::test]
async fn a_70000_entry_zip64_archive_in_upstream_mode() {
    const MANY: usize = 70_000;
    let name = |i: usize| format!("files/{:05}/entry-{i}.txt", i / 1000);
    let content = |i: usize| format!("content of entry {i}\n").into_bytes();
    let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for i in 0..MANY {
        let options = SimpleFileOptions::default().compression_method(CompressionMethod::Stored);
        writer.start_file(name(i), options).unwrap();
        writer.write_all(&content(i)).unwrap();
    }
    let bytes = writer.finish().unwrap().into_inner();
    let h = start(Kind::Upstream, |_| {}).await;
    h.storage.put("1/15/artifacts.zip", &bytes);
    let token = [("PRIVATE-TOKEN", TOKEN)];
    let before = reads_so_far(&h);
    expect_bytes(
        &h,
        &format!("/projects/1/jobs/15/artifacts/{}", name(10)),
        &token,
        &content(10),
    )
    .await;
    let cold = reads_since(&h, before);
    // The tail, the part of the directory before it, the entry.
    assert_eq!(cold.len(), 3, "{cold:?}");
    assert_eq!(cold[0].as_deref(), Some("bytes=-131072"));
    for i in [0, 65_535, 65_536, MANY - 1] {
        let before = reads_so_far(&h);
        let path = format!("/projects/1/jobs/15/artifacts/{}", name(i));
        expect_bytes(&h, &path, &token, &content(i)).await;
        assert!(reads_since(&h, before).len() <= 1, "entry {i}");
    }
    let missing = get_with(
        &h,
        &format!("/projects/1/jobs/15/artifacts/{}", name(MANY)),
        &token,
    )
    .await;
    assert_eq!(missing.status(), 404);
}

#[tokio::test]
async fn one_callers_burst_shares_one_locate_and_one_open() {
    let h = start(Kind::Upstream, |_| {}).await;
    let a = layout(11);
    let before = reads_so_far(&h);
    let requests = (0..16).map(|i| {
        let name = if i % 2 == 0 {
            "small.txt"
        } else {
            "big-stored.bin"
        };
        let want = if i % 2 == 0 {
            a.small.clone()
        } else {
            a.big_stored.clone()
        };
        let (client, url) = (
            h.client.clone(),
            h.url(&format!("/projects/1/jobs/11/artifacts/{name}")),
        );
        async move {
            let response = client
                .get(url)
                .header("PRIVATE-TOKEN", TOKEN)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
            assert!(response.bytes().await.unwrap() == want, "{name}");
        }
    });
    futures_util::future::join_all(requests).await;
    assert_eq!(
        archive_route_count(&h, 1, 11),
        1,
        "one locate for the burst"
    );
    // One tail read; the stored entry outside the tail is read by each of its requests.
    let reads = reads_since(&h, before);
    assert_eq!(
        reads
            .iter()
            .filter(|r| r.as_deref() == Some("bytes=-131072"))
            .count(),
        1,
        "{reads:?}"
    );
    assert_eq!(reads.len(), 1 + 8, "{reads:?}");
    // Refusals are shared by a burst too, and never kept.
    let refused = (0..8).map(|_| {
        let (client, url) = (
            h.client.clone(),
            h.url("/projects/1/jobs/11/artifacts/small.txt"),
        );
        async move {
            let response = client
                .get(url)
                .header("PRIVATE-TOKEN", "outsider-token")
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 404);
            assert_eq!(
                json(response).await,
                serde_json::json!({"message": "404 Project Not Found"})
            );
        }
    });
    futures_util::future::join_all(refused).await;
    let refusals = archive_route_count(&h, 1, 11) - 1;
    assert!((1..=8).contains(&refusals), "{refusals}");
    let again = get_with(
        &h,
        "/projects/1/jobs/11/artifacts/small.txt",
        &[("PRIVATE-TOKEN", "outsider-token")],
    )
    .await;
    assert_eq!(again.status(), 404);
    assert_eq!(
        archive_route_count(&h, 1, 11) - 1,
        refusals + 1,
        "a refusal is not kept"
    );
}
