//! Ranges of stored and compressed entries (with the storage bytes a stored one costs),
//! unsatisfiable and ignored ranges, and If-Range.

use std::ops::Range;

use serde_json::json;

use crate::common::storage::Kind;
use crate::common::Harness;
use crate::fixtures::{
    by_job, by_ref, entry, get, harness, head, job, reads, reference, sha, tapped,
};

on_every_source! {
    compressed_entry_ranges_are_exact => compressed_ranges;
    unsatisfiable_and_ignored_ranges => unsatisfiable_and_ignored_ranges;
    if_range => if_range;
}

// Counts storage reads at a store wrapper, which upstream mode does not use.
on_both_storages! {
    stored_entry_ranges_read_about_the_range => stored_ranges;
}

/// `bytes=...` header values and the byte range of an entry of `size` bytes they select.
fn range_cases(size: u64) -> Vec<(String, Range<u64>)> {
    vec![
        ("bytes=1000-1999".to_owned(), 1000..2000),
        (format!("bytes={}-", size / 2), size / 2..size),
        ("bytes=-5000".to_owned(), size - 5000..size),
        (format!("bytes={0}-{0}", size / 3), size / 3..size / 3 + 1),
        (
            format!("bytes={}-{}", size - 10, size + 1000),
            size - 10..size,
        ),
        ("bytes=0-0".to_owned(), 0..1),
        (format!("bytes=-{}", size * 2), 0..size),
    ]
}

async fn assert_range(h: &Harness, url: &str, value: &str, want: &Range<u64>, bytes: &[u8]) {
    let size = bytes.len();
    let got = get(h, url, &[("Range", value)]).await;
    assert_eq!(got.status, 206, "{url} {value}");
    assert_eq!(
        got.header("content-range"),
        Some(format!("bytes {}-{}/{size}", want.start, want.end - 1).as_str()),
        "{url} {value}"
    );
    assert_eq!(
        got.header("content-length"),
        Some((want.end - want.start).to_string().as_str()),
        "{url} {value}"
    );
    assert_eq!(got.header("accept-ranges"), Some("bytes"));
    got.assert_hardened(url);
    let expected = &bytes[want.start as usize..want.end as usize];
    assert!(
        got.body == expected,
        "{url} {value}: {} bytes, wrong content",
        got.body.len()
    );
}

async fn stored_ranges(kind: Kind) {
    let (h, tap) = tapped(kind).await;
    // The brief's python-stored.zip leaves data/random.bin out (size budget); 7-Zip stores
    // it (incompressible). python-stored.zip's text/lorem.txt is stored as well.
    for (file, name) in [
        ("7zip-deflate.zip", "data/random.bin"),
        ("python-stored.zip", "text/lorem.txt"),
        ("bsdtar-stored.zip", "text/lorem.txt"),
    ] {
        let bytes = reference(file, name);
        let size = bytes.len() as u64;
        let url = by_job(job(file), name);
        assert_eq!(head(&h, &url, &[]).await.status, 200, "{url}");
        for (value, want) in range_cases(size) {
            let before = reads(&tap);
            assert_range(&h, &url, &value, &want, &bytes).await;
            let after = reads(&tap);
            let (requests, read) = (after.0 - before.0, after.1 - before.1);
            let len = want.end - want.start;
            assert!(
                read >= len && read <= len + 300,
                "{file} {name} {value}: {read} bytes read for a {len}-byte range"
            );
            assert!(requests <= 2, "{file} {name} {value}: {requests} reads");
        }
    }
}

async fn compressed_ranges(kind: Kind) {
    let h = harness(kind).await;
    let lorem = reference("python-deflate.zip", "text/lorem.txt");
    // The same text through every decoder, from every writer: data descriptors, zip64
    // local extras, stored entries read through the cached tail.
    for (file, name) in [
        ("python-deflate.zip", "text/lorem.txt"),
        ("infozip-pipe.zip", "text/lorem.txt"),
        ("infozip-stdin.zip", "-"),
        ("python-zip64.zip", "text/lorem.txt"),
        ("jar.zip", "text/lorem.txt"),
        ("go.zip", "text/lorem.txt"),
        ("bsdtar.zip", "text/lorem.txt"),
        ("python-bzip2.zip", "text/lorem.txt"),
        ("7zip-bzip2.zip", "text/lorem.txt"),
        ("python-lzma.zip", "text/lorem.txt"),
        ("7zip-lzma.zip", "text/lorem.txt"),
        ("7zip-xz.zip", "text/lorem.txt"),
        ("7zip-deflate64.zip", "text/lorem.txt"),
        ("python-stored.zip", "text/lorem.txt"),
        ("bsdtar-stored.zip", "text/lorem.txt"),
    ] {
        assert_eq!(
            entry(file, name).sha256,
            entry("python-deflate.zip", "text/lorem.txt").sha256
        );
        let url = by_job(job(file), name);
        for (value, want) in range_cases(lorem.len() as u64) {
            assert_range(&h, &url, &value, &want, &lorem).await;
        }
        assert_range(&h, &url, "bytes=-1", &(65535..65536), &lorem).await;
    }
    // An incompressible entry: several decoder chunks, windows across their boundaries;
    // stored, partly in the cached tail.
    let random = reference("7zip-deflate.zip", "data/random.bin");
    let mut cases = range_cases(random.len() as u64);
    cases.push(("bytes=65536-131071".to_owned(), 65536..131072));
    cases.push(("bytes=65535-65536".to_owned(), 65535..65537));
    cases.push(("bytes=70000-140000".to_owned(), 70000..140001));
    cases.push(("bytes=153000-".to_owned(), 153000..153600));
    for file in ["python-deflate.zip", "python-zip64.zip", "7zip-deflate.zip"] {
        let url = by_job(job(file), "data/random.bin");
        for (value, want) in &cases {
            assert_range(&h, &url, value, want, &random).await;
        }
    }
    // By ref too.
    let url = by_ref(job("python-deflate.zip"), "text/lorem.txt");
    assert_range(&h, &url, "bytes=30000-40000", &(30000..40001), &lorem).await;
}

async fn unsatisfiable_and_ignored_ranges(kind: Kind) {
    let h = harness(kind).await;
    let cases = [
        ("python-deflate.zip", "text/lorem.txt", "bytes=65536-"),
        ("python-deflate.zip", "text/lorem.txt", "bytes=70000-80000"),
        ("python-deflate.zip", "text/lorem.txt", "bytes=-0"),
        ("7zip-deflate.zip", "data/random.bin", "bytes=153600-"),
        ("7zip-deflate.zip", "data/random.bin", "bytes=200000-200010"),
        ("python-deflate.zip", "empty.txt", "bytes=0-"),
        ("python-deflate.zip", "empty.txt", "bytes=-5"),
        ("7zip-deflate.zip", "empty.txt", "bytes=0-0"),
    ];
    for (file, name, value) in cases {
        let size = entry(file, name).size;
        for url in [by_job(job(file), name), by_ref(job(file), name)] {
            let got = get(&h, &url, &[("Range", value)]).await;
            assert_eq!(got.status, 416, "{url} {value}");
            assert_eq!(
                got.header("content-range"),
                Some(format!("bytes */{size}").as_str()),
                "{url} {value}"
            );
            assert_eq!(
                got.json(),
                json!({"message": "416 Range Not Satisfiable"}),
                "{url} {value}"
            );
            got.assert_hardened(&url);
        }
    }
    // Not one well-formed byte range: ignored, the whole entry.
    let e = entry("python-deflate.zip", "text/lorem.txt");
    let url = by_job(job("python-deflate.zip"), "text/lorem.txt");
    for value in [
        "bytes=0-1,5-6",
        "bytes=5-1",
        "lines=1-2",
        "bytes=abc",
        "bytes=",
    ] {
        let got = get(&h, &url, &[("Range", value)]).await;
        assert_eq!(got.status, 200, "{value}");
        assert_eq!(got.header("content-range"), None, "{value}");
        assert_eq!(sha(&got.body), e.sha256, "{value}");
    }
}

async fn if_range(kind: Kind) {
    let h = harness(kind).await;
    for (file, name) in [
        ("python-deflate.zip", "text/lorem.txt"),
        ("7zip-deflate.zip", "data/random.bin"),
    ] {
        let e = entry(file, name);
        let url = by_job(job(file), name);
        let etag = get(&h, &url, &[]).await.etag();
        let other = get(&h, &by_job(job(file), "hello.txt"), &[]).await.etag();

        let got = get(
            &h,
            &url,
            &[("Range", "bytes=0-9"), ("If-Range", etag.as_str())],
        )
        .await;
        assert_eq!(got.status, 206, "{url} current If-Range");
        assert_eq!(got.body.len(), 10);

        // A stale validator: the whole entry, as a 200.
        for stale in [
            "\"stale\"".to_owned(),
            other,
            format!("W/{etag}"),
            "Tue, 02 Jan 2024 03:04:06 GMT".to_owned(),
        ] {
            let got = get(
                &h,
                &url,
                &[("Range", "bytes=0-9"), ("If-Range", stale.as_str())],
            )
            .await;
            assert_eq!(got.status, 200, "{url} If-Range: {stale}");
            assert_eq!(got.header("content-range"), None, "{url} If-Range: {stale}");
            assert_eq!(
                got.header("content-length"),
                Some(e.size.to_string().as_str())
            );
            assert_eq!(sha(&got.body), e.sha256, "{url} If-Range: {stale}");
            assert_eq!(got.etag(), etag);
        }
    }
}
