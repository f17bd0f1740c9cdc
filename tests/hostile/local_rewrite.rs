//! An archive in local storage rewritten in place (same inode, same size) while it is being
//! served or after its index was cached: the gateway must never deliver a mix of the two
//! versions as a clean response, nor keep the old ETag when the writer restored the mtime,
//! nor serve a range of the new bytes at the old index's offsets.

use std::io::{Cursor, Seek, SeekFrom, Write};
use std::path::Path;
use std::time::{Duration, SystemTime};

use sample_backend::BackendBuilder;
use zip::write::SimpleFileOptions;
use zip::CompressionMethod;

use crate::support::{within, Gateway, TempDir};

const ARCHIVE: &str = "1/104/artifacts.zip";

/// Bytes that do not repeat at any short shift, so a misplaced window shows.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Overwrite `path` in place (no truncation, same inode) with `bytes`, then, when given,
/// put its modification time back: what a careless writer or `cp --preserve` does.
fn overwrite_in_place(path: &Path, bytes: &[u8], keep_mtime: Option<SystemTime>) {
    let mut file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    file.seek(SeekFrom::Start(0)).unwrap();
    file.write_all(bytes).unwrap();
    file.sync_all().unwrap();
    if let Some(mtime) = keep_mtime {
        file.set_modified(mtime).unwrap();
    }
}

fn mtime(path: &Path) -> SystemTime {
    std::fs::metadata(path).unwrap().modified().unwrap()
}

fn header(response: &reqwest::Response, name: &str) -> String {
    crate::common::header(response, name)
        .unwrap_or_default()
        .to_owned()
}

/// Read a streaming archive download after the first chunk: returns the bytes read and
/// whether the body ended cleanly.
async fn rest_of(mut response: reqwest::Response, mut got: Vec<u8>) -> (Vec<u8>, bool) {
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => got.extend_from_slice(&chunk),
            Ok(None) => return (got, true),
            Err(_) => return (got, false),
        }
    }
}

async fn rewrite_during_download(truncate_first: bool) {
    let backend = BackendBuilder::sample_data().start().await.unwrap();
    let storage = TempDir::new("rewrite");
    // Much more than the socket buffers and the read-ahead hold, so most of the file is
    // read after the rewrite.
    let old = noise(32 << 20, 1);
    let new = noise(32 << 20, 2);
    let path = storage.write(ARCHIVE, &old);
    let gateway = Gateway::spawn(&backend.url(), &storage.url(), "").await;
    gateway.reset_peak();
    let client = crate::common::client();
    let mut response = client
        .get(gateway.url("/projects/1/jobs/104/artifacts"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "content-length"), old.len().to_string());
    let first = response
        .chunk()
        .await
        .unwrap()
        .expect("a first chunk")
        .to_vec();
    if truncate_first {
        std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&path)
            .unwrap();
    }
    overwrite_in_place(&path, &new, None);
    let (got, clean) = rest_of(response, first).await;
    assert!(
        !clean && got.len() < old.len(),
        "a rewritten archive was delivered as a complete 200 ({} bytes, clean end)",
        got.len()
    );
    assert!(
        got[..] == old[..got.len()],
        "bytes of the new version were delivered under the old one's headers"
    );
    gateway
        .wait_for_log(|l| {
            l.contains("\"route\":\"archive\"") && l.contains(r#""outcome":"Error(\"storage\")""#)
        })
        .await;
    assert!(
        gateway
            .log()
            .iter()
            .any(|l| l.contains("local file changed while it was read")),
        "the log says why: {:#?}",
        gateway.log()
    );
    eprintln!("peak RSS {} MiB", gateway.peak_rss_kib() / 1024);
    gateway.assert_peak_below(96, "a 32 MiB download rewritten in place");
    // The gateway serves the new version afterwards.
    let again = client
        .get(gateway.url("/projects/1/jobs/104/artifacts"))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 200);
    assert!(again.bytes().await.unwrap() == new);
}

#[tokio::test]
async fn an_archive_rewritten_in_place_while_it_streams_is_aborted_not_mixed() {
    within(
        Duration::from_secs(90),
        "in-place rewrite mid-download",
        async {
            rewrite_during_download(false).await;
        },
    )
    .await;
}

#[tokio::test]
async fn an_archive_truncated_and_rewritten_while_it_streams_is_aborted_not_mixed() {
    within(
        Duration::from_secs(90),
        "truncate and rewrite mid-download",
        async {
            rewrite_during_download(true).await;
        },
    )
    .await;
}

#[tokio::test]
async fn an_in_place_rewrite_that_keeps_the_mtime_changes_the_etag() {
    within(Duration::from_secs(60), "rewrite with kept mtime", async {
        let backend = BackendBuilder::sample_data().start().await.unwrap();
        let storage = TempDir::new("rewrite-etag");
        let old = noise(256 * 1024, 3);
        let new = noise(256 * 1024, 4);
        let path = storage.write(ARCHIVE, &old);
        let gateway = Gateway::spawn(&backend.url(), &storage.url(), "").await;
        let client = crate::common::client();
        let url = gateway.url("/projects/1/jobs/104/artifacts");
        let first = client.get(&url).send().await.unwrap();
        let etag = header(&first, "etag");
        let modified = header(&first, "last-modified");
        assert!(!etag.is_empty());
        assert!(first.bytes().await.unwrap() == old);

        overwrite_in_place(&path, &new, Some(mtime(&path)));
        let head = client.head(&url).send().await.unwrap();
        assert_eq!(
            header(&head, "last-modified"),
            modified,
            "the mtime was kept"
        );
        assert_ne!(header(&head, "etag"), etag, "HEAD: same ETag for new bytes");
        let revalidated = client
            .get(&url)
            .header("if-none-match", &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(revalidated.status(), 200, "a 304 would keep the old bytes");
        assert_ne!(header(&revalidated, "etag"), etag);
        assert!(revalidated.bytes().await.unwrap() == new);
    })
    .await;
}

/// Two stored-entry archives of the same size with their entries swapped: where the old
/// index has `a.bin`, the new archive has a valid local header of `b.bin`.
fn two_layouts() -> (Vec<u8>, Vec<u8>, Vec<u8>, Vec<u8>) {
    let build = |entries: [(&str, &[u8]); 2]| {
        let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let options = SimpleFileOptions::default().compression_method(CompressionMethod::Stored);
        for (name, bytes) in entries {
            writer.start_file(name, options).unwrap();
            writer.write_all(bytes).unwrap();
        }
        writer.finish().unwrap().into_inner()
    };
    // Large enough that `a.bin` lies outside the cached tail.
    let (a_old, b_old) = (noise(2 << 20, 5), noise(2 << 20, 6));
    let (a_new, b_new) = (noise(2 << 20, 7), noise(2 << 20, 8));
    let old = build([("a.bin", &a_old), ("b.bin", &b_old)]);
    let new = build([("b.bin", &b_new), ("a.bin", &a_new)]);
    assert_eq!(old.len(), new.len(), "the rewrite keeps the size");
    (old, new, a_old, a_new)
}

#[tokio::test]
async fn a_stored_entry_range_after_an_in_place_rewrite_is_not_served_from_the_old_index() {
    within(
        Duration::from_secs(60),
        "entry range after rewrite",
        async {
            let backend = BackendBuilder::sample_data().start().await.unwrap();
            let storage = TempDir::new("rewrite-entry");
            let (old, new, a_old, a_new) = two_layouts();
            let path = storage.write(ARCHIVE, &old);
            let gateway = Gateway::spawn(&backend.url(), &storage.url(), "").await;
            gateway.reset_peak();
            let client = crate::common::client();
            let url = gateway.url("/projects/1/jobs/104/artifacts/a.bin");
            let ranged = |client: &reqwest::Client| {
                client.get(&url).header("range", "bytes=1000-1999").send()
            };
            let before = ranged(&client).await.unwrap();
            assert_eq!(before.status(), 206);
            assert!(before.bytes().await.unwrap()[..] == a_old[1000..2000]);

            overwrite_in_place(&path, &new, Some(mtime(&path)));
            let after = ranged(&client).await.unwrap();
            let status = after.status().as_u16();
            let body = after.bytes().await.unwrap();
            match status {
                206 => assert!(
                    body[..] == a_new[1000..2000],
                    "a 206 of the new archive read at the old index's offsets"
                ),
                502 | 503 => {}
                other => panic!("unexpected status {other}"),
            }
            // And the whole entry is the new one.
            let whole = client.get(&url).send().await.unwrap();
            assert_eq!(whole.status(), 200);
            assert!(whole.bytes().await.unwrap() == a_new);
            gateway.assert_peak_below(64, "entry reads of a 2 MiB archive");
        },
    )
    .await;
}
