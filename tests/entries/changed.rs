//! An archive replaced under the gateway: the entry read pinned to the old ETag fails, the
//! archive is reopened once, and the new bytes are served, never a mix.

use crate::common::storage::Kind;
use crate::common::{header, zips, TOKEN};
use crate::support::{
    bounded, entry_path, expect_entry, key, log_line, logs, mark, since, suffix, tapped, TAIL,
};

on_both_storages! {
    changed_object_is_reopened_once => changed_object;
}

async fn changed_object(kind: Kind) {
    logs();
    let v1_big = zips::noise(11, 600 * 1024);
    let v2_big = zips::noise(12, 700 * 1024);
    let v1 = zips::build_stored(&[("big.bin", &v1_big), ("small.txt", b"version one\n")]);
    let v2 = zips::build_stored(&[("big.bin", &v2_big), ("small.txt", b"version two!\n")]);
    assert!(!v1.in_tail("big.bin", TAIL) && !v2.in_tail("big.bin", TAIL));
    assert_ne!(v1.span("big.bin"), v2.span("big.bin"));

    let (h, tap) = tapped(kind, 1..=1, TAIL).await;
    h.storage.put(&key(1), &v1.bytes);

    let m = mark(&tap);
    let response = h.get(&entry_path(1, "big.bin"), Some(TOKEN)).await;
    assert_eq!(response.status(), 200);
    let etag_v1 = header(&response, "etag").unwrap().to_owned();
    assert!(response.bytes().await.unwrap() == v1_big);
    assert_eq!(
        since(&tap, &m),
        vec![suffix(TAIL), bounded(v1.span("big.bin"))]
    );

    // Same key, another archive, another ETag: S3's is the MD5 of the bytes, local
    // storage's is made of inode, modification time and size, and the sizes differ, so no
    // wait for the clock to move is needed.
    assert_ne!(v1.len(), v2.len());
    h.storage.put(&key(1), &v2.bytes);

    let m = mark(&tap);
    let response = h.get(&entry_path(1, "big.bin"), Some(TOKEN)).await;
    assert_eq!(response.status(), 200, "{kind:?}");
    let etag_v2 = header(&response, "etag").unwrap().to_owned();
    let body = response.bytes().await.unwrap();
    assert!(
        body == v2_big,
        "{kind:?}: old or mixed bytes after the change"
    );
    assert_ne!(etag_v1, etag_v2);
    // The read pinned to the old ETag fails, the archive is reopened once, the new entry
    // read follows.
    assert_eq!(
        since(&tap, &m),
        vec![
            bounded(v1.span("big.bin")),
            suffix(TAIL),
            bounded(v2.span("big.bin")),
        ],
        "{kind:?}: the reopen"
    );
    log_line(&["archive changed since it was indexed", &key(1)]).await;

    // Warm again, on the new index.
    let m = mark(&tap);
    expect_entry(&h, 1, "big.bin", &v2_big).await;
    assert_eq!(since(&tap, &m), vec![bounded(v2.span("big.bin"))]);
    let m = mark(&tap);
    expect_entry(&h, 1, "small.txt", b"version two!\n").await;
    assert_eq!(since(&tap, &m), vec![]);
}
