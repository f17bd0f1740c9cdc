//! The warm small-file path: hot small entries answered with no storage read, never from
//! another version of the archive; local files kept open between reads, replaced files
//! noticed, and the number kept bounded.

use crate::common::storage::Kind;
use crate::common::zips::{self, CompressionMethod};
use crate::common::{Harness, TOKEN};
use crate::support::{backend, bounded, expect_entry, key, mark, since, tapped, TAIL};

on_both_storages! {
    a_hot_small_entry_costs_no_storage_read => hot_entry_reads_nothing;
    a_hot_entry_is_never_served_from_another_version => hot_entry_follows_the_version;
}

/// A small deflated entry and a small stored one, both outside the tail (a 600 KiB
/// stored entry follows them), so a cold read of either is one bounded read.
fn archive(version: u8) -> (zips::Built, Vec<u8>, Vec<u8>) {
    let text = zips::text(u64::from(version), 3000);
    let stored = format!("stored entry, version {version}\n").into_bytes();
    let filler = zips::noise(7, 600 * 1024);
    let zip = zips::build(&[
        ("a/text.txt", &text, CompressionMethod::Deflated),
        ("a/stored.txt", &stored, CompressionMethod::Stored),
        ("filler.bin", &filler, CompressionMethod::Stored),
    ]);
    assert!(!zip.in_tail("a/text.txt", TAIL) && !zip.in_tail("a/stored.txt", TAIL));
    (zip, text, stored)
}

async fn hot_entry_reads_nothing(kind: Kind) {
    let (zip, text, stored) = archive(1);
    let (h, tap) = tapped(kind, 1..=1, TAIL).await;
    h.storage.put(&key(1), &zip.bytes);
    expect_entry(&h, 1, "filler.bin", &zips::noise(7, 600 * 1024)).await;

    for (name, want) in [("a/text.txt", &text), ("a/stored.txt", &stored)] {
        // Cold: one bounded read of the entry.
        let m = mark(&tap);
        expect_entry(&h, 1, name, want).await;
        assert_eq!(
            since(&tap, &m),
            vec![bounded(zip.span(name))],
            "{kind:?} {name}"
        );
        // Hot: the same bytes, no read at all, every time.
        let m = mark(&tap);
        for _ in 0..5 {
            expect_entry(&h, 1, name, want).await;
        }
        assert_eq!(
            since(&tap, &m),
            vec![],
            "{kind:?} {name}: hot reads storage"
        );
    }
    // A range of a hot entry is cut from it, also without a read.
    let m = mark(&tap);
    let response = h
        .request(
            http::Method::GET,
            &crate::support::entry_path(1, "a/text.txt"),
        )
        .header("PRIVATE-TOKEN", TOKEN)
        .header("Range", "bytes=100-199")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 206);
    assert_eq!(&response.bytes().await.unwrap()[..], &text[100..200]);
    assert_eq!(since(&tap, &m), vec![]);
    let metrics = h.gateway.state().metrics.render();
    assert!(
        metrics.contains("artifact_gateway_hot_entry_cache_events_total{event=\"hit\"} 11"),
        "{metrics}"
    );
}

/// The archive is replaced by one with the same layout and other bytes. Once a read of
/// another entry has found the change and the archive is reopened, the hot entry is read
/// again from the new version: hot entries belong to one open archive, not to a key and an
/// offset.
async fn hot_entry_follows_the_version(kind: Kind) {
    let (v1, text1, _) = archive(1);
    let (v2, text2, stored2) = archive(2);
    assert_eq!(v1.len(), v2.len());
    assert_eq!(v1.span("a/text.txt"), v2.span("a/text.txt"));
    assert_ne!(text1, text2);
    let (h, tap) = tapped(kind, 1..=1, TAIL).await;
    h.storage.put(&key(1), &v1.bytes);
    expect_entry(&h, 1, "a/text.txt", &text1).await;
    expect_entry(&h, 1, "a/text.txt", &text1).await;

    // Past one timestamp tick: the same size, so only the times tell the versions apart.
    std::thread::sleep(std::time::Duration::from_millis(20));
    h.storage.put(&key(1), &v2.bytes);
    // The stored entry was never read: its read is pinned to the old ETag, fails, and the
    // archive is reopened.
    expect_entry(&h, 1, "a/stored.txt", &stored2).await;
    let m = mark(&tap);
    expect_entry(&h, 1, "a/text.txt", &text2).await;
    assert_eq!(
        since(&tap, &m),
        vec![bounded(v2.span("a/text.txt"))],
        "{kind:?}: read again from the new version"
    );
}

/// Local storage without a wrapper, so the store hands out open files: after the first
/// read of an archive, its entries are read without opening the file again.
#[tokio::test]
async fn a_warm_local_archive_is_read_without_opening_it_again() {
    let (zip, text, stored) = archive(1);
    let h = Harness::start_with(backend(1..=1), |c| c.zip.hot_entry_cache_bytes = 0).await;
    h.storage.put(&key(1), &zip.bytes);
    expect_entry(&h, 1, "a/text.txt", &text).await;
    let opens = || h.gateway.state().metrics.file_opens.get();
    let after_open = opens();
    for _ in 0..10 {
        expect_entry(&h, 1, "a/text.txt", &text).await;
        expect_entry(&h, 1, "a/stored.txt", &stored).await;
    }
    expect_entry(&h, 1, "filler.bin", &zips::noise(7, 600 * 1024)).await;
    assert_eq!(opens(), after_open, "entry reads opened the file again");
    assert_eq!(h.gateway.state().artifacts.storage.open_files(), 1);
}

/// A kept file replaced by a rename (how artifacts are usually written) or removed: the
/// next read notices, opens the path again and serves the new archive.
#[tokio::test]
async fn a_kept_local_file_replaced_by_a_rename_is_opened_again() {
    let (v1, text1, _) = archive(1);
    let (v2, text2, _) = archive(2);
    let h = Harness::start_with(backend(1..=1), |c| c.zip.hot_entry_cache_bytes = 0).await;
    h.storage.put(&key(1), &v1.bytes);
    expect_entry(&h, 1, "a/text.txt", &text1).await;
    let opens = h.gateway.state().metrics.file_opens.get();

    let path = h.storage.object_path(&key(1));
    let fresh = path.with_extension("new");
    std::fs::write(&fresh, &v2.bytes).unwrap();
    std::fs::rename(&fresh, &path).unwrap();
    expect_entry(&h, 1, "a/text.txt", &text2).await;
    assert!(h.gateway.state().metrics.file_opens.get() > opens);

    std::fs::remove_file(&path).unwrap();
    let (status, body) = crate::support::fetch(&h, 1, "a/text.txt").await;
    assert_eq!(status, 404, "{}", String::from_utf8_lossy(&body));
}

/// `storage.open_files` bounds the descriptors kept, however many archives are read.
#[tokio::test]
async fn kept_local_files_are_bounded() {
    let (zip, text, _) = archive(1);
    let h = Harness::start_with(backend(1..=6), |c| {
        c.zip.hot_entry_cache_bytes = 0;
        c.storage.open_files = 2;
    })
    .await;
    for job in 1..=6 {
        h.storage.put(&key(job), &zip.bytes);
    }
    for job in 1..=6 {
        expect_entry(&h, job, "a/text.txt", &text).await;
    }
    assert_eq!(h.gateway.state().artifacts.storage.open_files(), 2);
    // Descriptors this process holds on these archives: the kept ones, nothing more.
    let dir = h.storage.object_path(&key(1));
    let dir = dir.parent().unwrap().parent().unwrap();
    let held = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .filter(|target| target.starts_with(dir))
        .count();
    assert_eq!(held, 2);
}
