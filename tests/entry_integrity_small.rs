//! Regression: an entry that fails verification before any of its bytes were sent (it fits
//! in the first chunk, which is held back until the check) was answered with an empty
//! reply — the connection closed before any status line. It must get a 502, or a 200 with
//! its Content-Length and an aborted body.

mod common;

use std::io::{Cursor, Write};
use std::net::SocketAddr;
use std::time::Duration;

use common::storage::Kind;
use common::Harness;
use sample_backend::{BackendBuilder, JobSpec, JobStatus, Visibility};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use zip::write::SimpleFileOptions;
use zip::CompressionMethod;

const TOKEN: &str = "demo-token";

fn backend(jobs: impl IntoIterator<Item = u64>) -> BackendBuilder {
    let mut backend = BackendBuilder::new().user("demo", TOKEN).project(
        1,
        "g/app",
        Visibility::Public,
        &["demo"],
    );
    for id in jobs {
        backend =
            backend.job(JobSpec::new(id, 1, "build", "main", JobStatus::Success).with_archive(1));
    }
    backend
}

fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn text(len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 64);
    let mut i = 0u64;
    while out.len() < len {
        writeln!(out, "line {i} of text: the quick brown fox").unwrap();
        i += 1;
    }
    out.truncate(len);
    out
}

fn build_zip(entries: &[(&str, &[u8], CompressionMethod)]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for (name, bytes, method) in entries {
        let options = SimpleFileOptions::default().compression_method(*method);
        writer.start_file(*name, options).unwrap();
        writer.write_all(bytes).unwrap();
    }
    writer.finish().unwrap().into_inner()
}

fn le16(b: &[u8], at: usize) -> usize {
    usize::from(u16::from_le_bytes([b[at], b[at + 1]]))
}

fn le32(b: &[u8], at: usize) -> usize {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap()) as usize
}

/// The only entry's data starts after its local header at 0.
fn only_entry_data_start(bytes: &[u8]) -> usize {
    30 + le16(bytes, 26) + le16(bytes, 28)
}

/// One raw HTTP/1.1 GET, read until the server closes: (status line, head, body bytes).
async fn raw_get(addr: SocketAddr, path: &str) -> (Option<String>, Vec<u8>) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "GET /api/v4{path} HTTP/1.1\r\nHost: {addr}\r\nPRIVATE-TOKEN: {TOKEN}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut received = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), async {
        let mut chunk = vec![0u8; 64 * 1024];
        while let Ok(n @ 1..) = stream.read(&mut chunk).await {
            received.extend_from_slice(&chunk[..n]);
        }
    })
    .await
    .expect("the connection closes");
    match received.windows(4).position(|w| w == b"\r\n\r\n") {
        None => (None, received),
        Some(end) => (
            Some(String::from_utf8_lossy(&received[..end]).into_owned()),
            received[end + 4..].to_vec(),
        ),
    }
}

/// What a client must get for an entry that fails verification: a response head — a 200
/// with the entry's Content-Length and a short body, or a 502 — never an empty reply.
async fn expect_a_status_line(h: &Harness, path: &str, size: usize) {
    let (head, body) = raw_get(h.gateway.addr(), path).await;
    let head = head.unwrap_or_else(|| {
        panic!(
            "{path}: empty reply: the connection closed after {} bytes and no status line",
            body.len()
        )
    });
    if head.starts_with("HTTP/1.1 200") {
        let length = format!("content-length: {size}");
        assert!(head.to_ascii_lowercase().contains(&length), "{head}");
        assert!(body.len() < size, "{path}: all {size} bytes arrived");
    } else {
        assert!(head.starts_with("HTTP/1.1 502"), "{head}");
    }
}

/// A stored entry of `len` bytes with one data byte flipped.
async fn corrupt_stored_entry(kind: Kind, lens: &[usize]) {
    let h = Harness::on(kind, backend(1..=lens.len() as u64)).await;
    for (i, len) in lens.iter().enumerate() {
        let mut bytes = build_zip(&[(
            "entry.bin",
            &noise(*len as u64, *len),
            CompressionMethod::Stored,
        )]);
        let at = only_entry_data_start(&bytes) + len / 2;
        bytes[at] ^= 0x20;
        h.storage.put(&format!("1/{}/artifacts.zip", i + 1), &bytes);
    }
    for (i, len) in lens.iter().enumerate() {
        let path = format!("/projects/1/jobs/{}/artifacts/entry.bin", i + 1);
        expect_a_status_line(&h, &path, *len).await;
    }
}

#[tokio::test]
async fn crc_mismatch_in_a_small_entry_sends_a_status_line_on_local_storage() {
    corrupt_stored_entry(Kind::Local, &[30, 64 * 1024]).await;
}

#[tokio::test]
async fn crc_mismatch_in_a_small_entry_sends_a_status_line_on_s3_storage() {
    corrupt_stored_entry(Kind::S3, &[30, 64 * 1024]).await;
}

/// 2 MiB of text deflated, declared as `declared` bytes in both headers (CRC kept).
async fn inflating_entry(kind: Kind, declared: &[u32]) {
    let h = Harness::on(kind, backend(1..=declared.len() as u64)).await;
    for (i, size) in declared.iter().enumerate() {
        let mut bytes = build_zip(&[("bomb.txt", &text(2 << 20), CompressionMethod::Deflated)]);
        let eocd = bytes.len() - 22;
        let central = le32(&bytes, eocd + 16);
        bytes[central + 24..central + 28].copy_from_slice(&size.to_le_bytes());
        bytes[22..26].copy_from_slice(&size.to_le_bytes());
        h.storage.put(&format!("1/{}/artifacts.zip", i + 1), &bytes);
    }
    for (i, size) in declared.iter().enumerate() {
        let path = format!("/projects/1/jobs/{}/artifacts/bomb.txt", i + 1);
        expect_a_status_line(&h, &path, *size as usize).await;
    }
}

#[tokio::test]
async fn entry_inflating_past_a_small_declared_size_sends_a_status_line_on_local_storage() {
    inflating_entry(Kind::Local, &[10, 65_536, 100_000]).await;
}

#[tokio::test]
async fn entry_inflating_past_a_small_declared_size_sends_a_status_line_on_s3_storage() {
    inflating_entry(Kind::S3, &[10, 65_536, 100_000]).await;
}

#[tokio::test]
async fn crc_mismatch_in_a_small_entry_sends_a_status_line_in_upstream_mode() {
    corrupt_stored_entry(Kind::Upstream, &[30, 64 * 1024]).await;
}

#[tokio::test]
async fn entry_inflating_past_a_small_declared_size_sends_a_status_line_in_upstream_mode() {
    inflating_entry(Kind::Upstream, &[10, 65_536, 100_000]).await;
}
