//! Validators: ETags that identify entry and archive, If-None-Match answered without a
//! storage read, HEAD answered from the index, and new ETags for a replaced archive.

use crate::common::fixture;
use crate::common::storage::Kind;
use crate::fixtures::{by_job, by_ref, enc, entry, get, harness, head, job, reads, sha, tapped};

on_every_source! {
    a_replaced_archive_has_new_etags => replaced_archive;
    etags_identify_entry_and_archive => etags;
}

// These count storage reads at a store wrapper, which upstream mode does not use; its
// round trips are counted at the S3 server in tests/upstream/round_trips.rs.
on_both_storages! {
    if_none_match_is_304_without_a_storage_read => if_none_match;
    head_reads_nothing_once_the_archive_is_open => head_reads_nothing;
}

async fn if_none_match(kind: Kind) {
    let (h, tap) = tapped(kind).await;
    let file = "python-deflate.zip";
    let job = job(file);
    let url = by_job(job, "data/random.bin");
    let size = entry(file, "data/random.bin").size;
    // HEAD opens the archive and gives the ETag without reading the entry.
    let etag = head(&h, &url, &[]).await.etag();
    let before = reads(&tap);
    for value in [
        etag.clone(),
        format!("W/{etag}"),
        format!("\"other\", {etag}"),
        "*".to_owned(),
    ] {
        for endpoint in [url.clone(), by_ref(job, "data/random.bin")] {
            let got = get(&h, &endpoint, &[("If-None-Match", value.as_str())]).await;
            assert_eq!(got.status, 304, "{endpoint} If-None-Match: {value}");
            assert!(got.body.is_empty(), "{endpoint} If-None-Match: {value}");
            assert_eq!(got.etag(), etag, "{endpoint}");
            got.assert_hardened(&endpoint);
            // With a range too: the client's copy is current.
            let got = get(
                &h,
                &endpoint,
                &[("If-None-Match", value.as_str()), ("Range", "bytes=0-9")],
            )
            .await;
            assert_eq!(got.status, 304, "{endpoint} ranged, If-None-Match: {value}");
        }
    }
    assert_eq!(reads(&tap), before, "a 304 read storage");

    // Another tag: the whole entry, read from storage.
    let got = get(&h, &url, &[("If-None-Match", "\"other\"")]).await;
    assert_eq!(got.status, 200);
    assert_eq!(got.body.len() as u64, size);
    assert_eq!(sha(&got.body), entry(file, "data/random.bin").sha256);
    let after = reads(&tap);
    assert!(after.0 > before.0, "the entry came from nowhere");
    assert!(after.1 - before.1 >= size, "{after:?} {before:?}");
}

async fn etags(kind: Kind) {
    let h = harness(kind).await;
    let etag = |file: &'static str, name: &'static str| {
        let h = &h;
        async move {
            let got = get(h, &by_job(job(file), &enc(name)), &[]).await;
            assert_eq!(got.status, 200, "{file} {name}");
            got.etag()
        }
    };
    let hello = etag("python-deflate.zip", "hello.txt").await;
    assert_eq!(etag("python-deflate.zip", "hello.txt").await, hello);
    // The ETag of a 206 is the entry's.
    let ranged = get(
        &h,
        &by_job(job("python-deflate.zip"), "hello.txt"),
        &[("Range", "bytes=1-2")],
    )
    .await;
    assert_eq!((ranged.status, ranged.etag()), (206, hello.clone()));
    let all = [
        ("python-deflate.zip hello.txt", hello),
        (
            "python-deflate.zip empty.txt",
            etag("python-deflate.zip", "empty.txt").await,
        ),
        (
            "python-deflate.zip dir/nested/deep.txt",
            etag("python-deflate.zip", "dir/nested/deep.txt").await,
        ),
        // The same name, with the same content, in other archives.
        (
            "7zip-deflate.zip hello.txt",
            etag("7zip-deflate.zip", "hello.txt").await,
        ),
        ("jar.zip hello.txt", etag("jar.zip", "hello.txt").await),
        (
            "python-stored.zip hello.txt",
            etag("python-stored.zip", "hello.txt").await,
        ),
    ];
    for (i, (a, tag_a)) in all.iter().enumerate() {
        for (b, tag_b) in &all[i + 1..] {
            assert_ne!(tag_a, tag_b, "{a} and {b} share an ETag");
        }
    }
    // An ETag of one entry does not validate another.
    let got = get(
        &h,
        &by_job(job("7zip-deflate.zip"), "hello.txt"),
        &[("If-None-Match", all[0].1.as_str())],
    )
    .await;
    assert_eq!(got.status, 200);
    assert_eq!(
        sha(&got.body),
        entry("7zip-deflate.zip", "hello.txt").sha256
    );
}

/// An archive object replaced under the gateway: the next entry read (pinned to the ETag
/// the index was read with) notices, the archive is reopened, and entries get new ETags
/// that an old validator no longer matches.
async fn replaced_archive(kind: Kind) {
    let h = harness(kind).await;
    let job = job("python-deflate.zip");
    let url = by_job(job, "text/lorem.txt");
    let old = get(&h, &url, &[]).await.etag();
    h.storage.put(
        &format!("1/{job}/artifacts.zip"),
        &fixture("7zip-deflate.zip"),
    );
    let got = get(&h, &by_job(job, "data/random.bin"), &[]).await;
    assert_eq!(got.status, 200);
    assert_eq!(
        sha(&got.body),
        entry("7zip-deflate.zip", "data/random.bin").sha256
    );
    let got = get(&h, &url, &[("If-None-Match", old.as_str())]).await;
    assert_eq!(
        got.status, 200,
        "an ETag of the replaced archive still matched"
    );
    assert_ne!(got.etag(), old);
    assert_eq!(
        sha(&got.body),
        entry("7zip-deflate.zip", "text/lorem.txt").sha256
    );
}

async fn head_reads_nothing(kind: Kind) {
    let (h, tap) = tapped(kind).await;
    let file = "python-deflate.zip";
    let job = job(file);
    // The first request opens the archive: its tail (and directory) only.
    let opened = head(&h, &by_job(job, "hello.txt"), &[]).await;
    assert_eq!(opened.status, 200);
    let open = reads(&tap);
    assert!(open.0 >= 1, "opening read nothing");
    assert!(
        open.1 < 8 * 1024,
        "opening read {} bytes of a 158 KB archive",
        open.1
    );

    for name in ["data/random.bin", "data/zeros.bin", "text/lorem.txt"] {
        let e = entry(file, name);
        for url in [by_job(job, name), by_ref(job, name)] {
            let got = head(&h, &url, &[]).await;
            assert_eq!(got.status, 200, "{url}");
            assert_eq!(
                got.header("content-length"),
                Some(e.size.to_string().as_str()),
                "{url}"
            );
            assert_eq!(got.header("accept-ranges"), Some("bytes"));
            assert!(got.header("content-type").is_some());
            assert!(got.header("content-disposition").is_some());
            got.etag();
            got.assert_hardened(&url);
            assert!(got.body.is_empty(), "{url}");

            let ranged = head(&h, &url, &[("Range", "bytes=10-19")]).await;
            assert_eq!(ranged.status, 206, "{url}");
            assert_eq!(
                ranged.header("content-range"),
                Some(format!("bytes 10-19/{}", e.size).as_str())
            );
            assert_eq!(ranged.header("content-length"), Some("10"));
            assert!(ranged.body.is_empty());
        }
    }
    // Directories and missing names are answered from the index too.
    for name in ["dir/", "dir", "emptydir/", "not/here.txt", "hello.txt/"] {
        let got = get(&h, &by_job(job, name), &[]).await;
        assert_eq!(got.status, 404, "{name}");
    }
    assert_eq!(reads(&tap), open, "HEAD or a 404 read entry bytes");

    // The ETag HEAD shows is the one GET shows.
    let url = by_job(job, "text/lorem.txt");
    let headed = head(&h, &url, &[]).await.etag();
    assert_eq!(get(&h, &url, &[]).await.etag(), headed);
}
