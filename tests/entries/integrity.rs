//! Integrity checks that turn a wrong body into an aborted transfer: a CRC-32 mismatch,
//! and a deflate entry that inflates past the size its headers declare. A large entry is
//! announced with a 200 and its Content-Length and then cut short; an entry that fails its
//! check before any of its bytes were released (it fits in the first chunk, which is held
//! back until the check) still gets a status line: a 502, or a 200 with its Content-Length
//! and a short body. It once got an empty reply: the connection closed before any status
//! line.

use crate::common::storage::Kind;
use crate::common::zips::{self, put32, CompressionMethod};
use crate::common::Harness;
use crate::support::{
    backend, entry_path, expect_aborted, expect_entry, key, log_line, logs, raw_get, PROMPT,
};

on_every_source! {
    crc_mismatch_aborts_the_transfer => crc_mismatch;
    entry_inflating_past_its_size_is_cut => inflates_past_declared_size;
    crc_mismatch_in_a_small_entry_sends_a_status_line => corrupt_small_stored_entries;
    entry_inflating_past_a_small_declared_size_sends_a_status_line => small_inflating_entries;
}

/// What a client must get for an entry that fails verification: a response head — a 200
/// with the entry's Content-Length and a short body, or a 502 — never an empty reply.
async fn expect_a_status_line(h: &Harness, path: &str, size: usize) {
    let received = raw_get(h, path).await;
    let response = received.response(path);
    if response.status == 200 {
        assert_eq!(
            response.content_length(),
            Some(size as u64),
            "{}",
            response.head
        );
        assert!(
            response.body.len() < size,
            "{path}: all {size} bytes arrived"
        );
    } else {
        assert_eq!(response.status, 502, "{}", response.head);
    }
}

/// A 30-byte and a 1.5 MiB stored entry, each with one byte of its data (not its header)
/// flipped; the entries' bytes as stored.
fn crc_archive(small_name: &str, large_name: &str) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let mut small = b"thirty bytes of stored text..\n".to_vec();
    assert_eq!(small.len(), 30);
    let mut large = zips::noise(7, 1536 * 1024);
    let zip = zips::build_stored(&[(small_name, &small), (large_name, &large)]);
    let mut bytes = zip.bytes.clone();
    for (name, at) in [(small_name, 13), (large_name, large.len() / 2)] {
        bytes[zip.entry(name).data_start as usize + at] ^= 0x20;
    }
    small[13] ^= 0x20;
    let middle = large.len() / 2;
    large[middle] ^= 0x20;
    (bytes, small, large)
}

/// The 1.5 MiB entry: 200 and its Content-Length, then the transfer is cut before the
/// last chunk, and the log says why. The 30-byte entry's check fails before any chunk is
/// released: it still gets a status line.
async fn crc_mismatch(kind: Kind) {
    logs();
    let small_name = format!("crc-small-{kind:?}.txt");
    let large_name = format!("crc-large-{kind:?}.bin");
    let (bytes, small, large) = crc_archive(&small_name, &large_name);

    let h = Harness::on(kind, backend(1..=1)).await;
    h.storage.put(&key(1), &bytes);
    let got = expect_aborted(&h, 1, &large_name, large.len() as u64).await;
    // What did arrive is the entry's bytes as stored, up to the held-back last chunk.
    assert!(
        got == large[..got.len()],
        "{kind:?}: not a prefix of the entry"
    );
    eprintln!(
        "{kind:?}: CRC mismatch in {} bytes: {} bytes arrived",
        large.len(),
        got.len()
    );

    // The log names the archive (storage key, or in upstream mode an opaque label) and entry.
    let line = log_line(&[&format!(":{large_name}"), "CRC-32"]).await;
    assert!(line.contains("does not match"), "{line}");

    expect_a_status_line(&h, &entry_path(1, &small_name), small.len()).await;
}

/// `name`, 2 MiB of text deflated between two stored entries, whose central and local
/// headers declare `declared` bytes (CRC kept); the real text.
fn inflating_archive(name: &str, declared: u32) -> (Vec<u8>, Vec<u8>) {
    let real = zips::text(5, 2 << 20);
    let zip = zips::build(&[
        (
            "before.txt",
            b"an entry before\n",
            CompressionMethod::Stored,
        ),
        (name, &real, CompressionMethod::Deflated),
        ("after.txt", b"an entry after\n", CompressionMethod::Stored),
    ]);
    let entry = zip.entry(name);
    assert_eq!(entry.uncompressed_size as usize, real.len());
    let mut bytes = zip.bytes.clone();
    put32(&mut bytes, entry.central_header as usize + 24, declared);
    put32(&mut bytes, entry.local_header as usize + 22, declared);
    (bytes, real)
}

/// A deflate entry that inflates past the size its headers declare: 200 with the declared
/// Content-Length, then cut short; never a byte past the declared size. (Declared sizes
/// under two output chunks fail before any chunk is released: see
/// `small_inflating_entries`.)
async fn inflates_past_declared_size(kind: Kind) {
    logs();
    let name = format!("bomb-{kind:?}.txt");
    let declared = [1_000_000u32, 700_000];
    let h = Harness::on(kind, backend(1..=declared.len() as u64)).await;
    let mut real = Vec::new();
    for (i, size) in declared.iter().enumerate() {
        let (bytes, text) = inflating_archive(&name, *size);
        h.storage.put(&key(i as u64 + 1), &bytes);
        real = text;
    }
    for (i, size) in declared.iter().enumerate() {
        let job = i as u64 + 1;
        let got = tokio::time::timeout(PROMPT, expect_aborted(&h, job, &name, u64::from(*size)))
            .await
            .unwrap_or_else(|_| panic!("{kind:?}: declared {size}: hung"));
        assert!(
            got == real[..got.len()],
            "{kind:?}: not a prefix of the entry"
        );
        eprintln!(
            "{kind:?}: declared {size}, inflates to {}: {} bytes arrived",
            real.len(),
            got.len()
        );
        // The neighbours are fine.
        expect_entry(&h, job, "after.txt", b"an entry after\n").await;
    }
    log_line(&["inflates past its declared size", &format!(":{name}")]).await;
}

/// Stored entries of `lens` bytes (one archive each), one data byte flipped in each.
async fn corrupt_small_stored_entries(kind: Kind) {
    let lens = [30, 64 * 1024];
    let h = Harness::on(kind, backend(1..=lens.len() as u64)).await;
    for (i, len) in lens.iter().enumerate() {
        let zip = zips::build_stored(&[("entry.bin", &zips::noise(*len as u64, *len))]);
        let mut bytes = zip.bytes.clone();
        bytes[zip.entry("entry.bin").data_start as usize + len / 2] ^= 0x20;
        h.storage.put(&key(i as u64 + 1), &bytes);
    }
    for (i, len) in lens.iter().enumerate() {
        expect_a_status_line(&h, &entry_path(i as u64 + 1, "entry.bin"), *len).await;
    }
}

/// 2 MiB of text deflated, declared as a few bytes up to 100,000 in both headers.
async fn small_inflating_entries(kind: Kind) {
    let declared = [10u32, 65_536, 100_000];
    let h = Harness::on(kind, backend(1..=declared.len() as u64)).await;
    for (i, size) in declared.iter().enumerate() {
        let zip = zips::build(&[(
            "small-bomb.txt",
            &zips::text(0, 2 << 20),
            CompressionMethod::Deflated,
        )]);
        let entry = zip.entry("small-bomb.txt");
        let mut bytes = zip.bytes.clone();
        put32(&mut bytes, entry.central_header as usize + 24, *size);
        put32(&mut bytes, entry.local_header as usize + 22, *size);
        h.storage.put(&key(i as u64 + 1), &bytes);
    }
    for (i, size) in declared.iter().enumerate() {
        let path = entry_path(i as u64 + 1, "small-bomb.txt");
        expect_a_status_line(&h, &path, *size as usize).await;
    }
}
