//! Single files out of zip archives, end to end: how many storage round trips each request
//! costs, integrity checks that turn a wrong body into an aborted transfer, malformed
//! archives answered with GitLab-style 502s, zip64 archives generated at test time (more
//! than 65,535 entries; an entry past 4 GiB in a sparse file) and an archive replaced
//! under the gateway. Storage-dependent tests run on local and S3 storage.
//!
//! Its own test binary because it installs a global log subscriber (to read the reason an
//! entry was aborted).

mod common;

use std::io::{Cursor, Seek, SeekFrom, Write};
use std::net::SocketAddr;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use artifact_gateway::archive::index::{
    parse_directory, parse_tail, IndexLimits, TailOutcome, ZipIndex,
};
use artifact_gateway::config::Secret;
use common::s3::S3Server;
use common::storage::{Kind, Tap};
use common::{header, Harness};
use object_store::GetRange;
use sample_backend::{BackendBuilder, JobSpec, JobStatus, Visibility};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use zip::write::SimpleFileOptions;
use zip::CompressionMethod;

const TOKEN: &str = "demo-token";
/// The gateway's default `zip.tail_bytes`.
const DEFAULT_TAIL: u64 = 128 * 1024;
/// Malformed archives must be answered within this.
const PROMPT: Duration = Duration::from_secs(5);

// ---------------------------------------------------------------------------------------
// Harness helpers
// ---------------------------------------------------------------------------------------

/// One public project (1) with successful jobs `jobs`, each with an archive.
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

fn key(job: u64) -> String {
    format!("1/{job}/artifacts.zip")
}

fn entry_path(job: u64, name: &str) -> String {
    format!("/projects/1/jobs/{job}/artifacts/{name}")
}

fn tap_of(h: &Harness) -> Arc<Tap> {
    h.tap.clone().expect("a tapped harness")
}

/// GETs so far and the ranges recorded, for measuring one request.
struct Mark {
    gets: usize,
    heads: usize,
    ranges: usize,
}

fn mark(tap: &Tap) -> Mark {
    Mark {
        gets: tap.gets.load(std::sync::atomic::Ordering::SeqCst),
        heads: tap.heads.load(std::sync::atomic::Ordering::SeqCst),
        ranges: tap.ranges.lock().unwrap().len(),
    }
}

/// Storage GETs since `mark`, with their ranges; asserts no HEAD was made.
fn since(tap: &Tap, mark: &Mark) -> Vec<Option<GetRange>> {
    let gets = tap.gets.load(std::sync::atomic::Ordering::SeqCst) - mark.gets;
    let heads = tap.heads.load(std::sync::atomic::Ordering::SeqCst) - mark.heads;
    assert_eq!(heads, 0, "an entry request made a HEAD request to storage");
    let ranges = tap.ranges.lock().unwrap()[mark.ranges..].to_vec();
    assert_eq!(ranges.len(), gets);
    ranges
}

/// GET an entry; the whole body, which must arrive complete.
async fn fetch(h: &Harness, job: u64, name: &str) -> (u16, bytes::Bytes) {
    let response = h.get(&entry_path(job, name), Some(TOKEN)).await;
    let status = response.status().as_u16();
    let body = response
        .bytes()
        .await
        .unwrap_or_else(|e| panic!("job {job} {name}: body failed: {e}"));
    (status, body)
}

/// GET an entry that must be served byte-exact.
async fn expect_entry(h: &Harness, job: u64, name: &str, want: &[u8]) {
    let (status, body) = fetch(h, job, name).await;
    assert_eq!(
        status,
        200,
        "job {job} {name}: {}",
        String::from_utf8_lossy(&body)
    );
    assert_eq!(body.len(), want.len(), "job {job} {name}");
    assert!(body == want, "job {job} {name}: wrong bytes");
}

// ---------------------------------------------------------------------------------------
// Archives
// ---------------------------------------------------------------------------------------

/// Deterministic incompressible bytes.
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

/// Compressible text of about `len` bytes.
fn text(seed: u64, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 64);
    let mut i = 0u64;
    while out.len() < len {
        writeln!(out, "line {i} of text {seed}: the quick brown fox").unwrap();
        i += 1;
    }
    out.truncate(len);
    out
}

/// An archive written by the `zip` crate, entries in this order.
fn build_zip(entries: &[(&str, &[u8], CompressionMethod)]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for (name, bytes, method) in entries {
        let options = SimpleFileOptions::default().compression_method(*method);
        writer.start_file(*name, options).unwrap();
        writer.write_all(bytes).unwrap();
    }
    writer.finish().unwrap().into_inner()
}

fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

fn put16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_le_bytes());
}

fn put32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

/// Where the records of a plain (no zip64, no comment) archive are.
struct Layout {
    eocd: usize,
    directory: Range<usize>,
    /// Central header positions, in directory order.
    centrals: Vec<usize>,
}

impl Layout {
    fn of(bytes: &[u8]) -> Self {
        let eocd = bytes.len() - 22;
        assert_eq!(le32(bytes, eocd), 0x0605_4b50, "EOCD not at the end");
        let size = le32(bytes, eocd + 12) as usize;
        let start = le32(bytes, eocd + 16) as usize;
        let mut centrals = Vec::new();
        let mut at = start;
        while at < start + size {
            assert_eq!(le32(bytes, at), 0x0201_4b50);
            centrals.push(at);
            at += 46
                + usize::from(le16(bytes, at + 28))
                + usize::from(le16(bytes, at + 30))
                + usize::from(le16(bytes, at + 32));
        }
        Layout {
            eocd,
            directory: start..start + size,
            centrals,
        }
    }

    /// The central header of the entry called `name`.
    fn central(&self, bytes: &[u8], name: &str) -> usize {
        *self
            .centrals
            .iter()
            .find(|&&at| {
                let len = usize::from(le16(bytes, at + 28));
                &bytes[at + 46..at + 46 + len] == name.as_bytes()
            })
            .unwrap_or_else(|| panic!("no central header for {name}"))
    }
}

/// Offset of the first data byte of the entry whose local header is at `local`.
fn data_start(bytes: &[u8], local: u64) -> usize {
    let at = local as usize;
    assert_eq!(le32(bytes, at), 0x0403_4b50);
    at + 30 + usize::from(le16(bytes, at + 26)) + usize::from(le16(bytes, at + 28))
}

/// What the gateway will do to open `bytes` with a `tail_len` tail read: the index, where
/// the tail starts, and the extra ranges the parser asks for.
struct Plan {
    index: ZipIndex,
    tail_start: u64,
    extra: Vec<Range<u64>>,
}

fn plan(bytes: &[u8], tail_len: u64) -> Plan {
    let size = bytes.len() as u64;
    let tail_start = size.saturating_sub(tail_len);
    let limits = IndexLimits::default();
    let mut outcome = parse_tail(&bytes[tail_start as usize..], tail_start, size, &limits)
        .expect("the archive parses");
    let mut extra = Vec::new();
    loop {
        match outcome {
            TailOutcome::Complete(index) => {
                return Plan {
                    index,
                    tail_start,
                    extra,
                }
            }
            TailOutcome::NeedRange { range, pending } => {
                extra.push(range.clone());
                let bytes = &bytes[range.start as usize..range.end as usize];
                outcome = parse_directory(bytes, pending, &limits).expect("the directory parses");
            }
        }
    }
}

impl Plan {
    /// Whether the gateway serves `name` from the tail it opened the archive with.
    fn in_tail(&self, name: &str) -> bool {
        self.index.get(name).unwrap().local_header_offset >= self.tail_start
    }

    /// The bounded read of the entry `[local header, data end)`.
    fn entry_read(&self, name: &str) -> Option<GetRange> {
        let info = self.index.get(name).unwrap();
        Some(GetRange::Bounded(info.local_header_offset..info.data_end))
    }

    /// The range the gateway reads for the parser's `i`th request: up to where the tail
    /// starts (the rest it already holds).
    fn extra_read(&self, i: usize) -> Option<GetRange> {
        let range = &self.extra[i];
        Some(GetRange::Bounded(
            range.start..range.end.min(self.tail_start),
        ))
    }
}

/// 1 MiB stored first (outside any tail), then `small` small entries (inside the default
/// tail), all stored so the layout is predictable.
struct RoundTripArchive {
    bytes: Vec<u8>,
    big: Vec<u8>,
    small: Vec<(String, Vec<u8>)>,
}

fn round_trip_archive(small: usize) -> RoundTripArchive {
    let big = noise(1, 1024 * 1024);
    let small: Vec<(String, Vec<u8>)> = (0..small)
        .map(|i| {
            (
                format!("small/entry-{i:02}.txt"),
                format!("small entry number {i}\n").into_bytes(),
            )
        })
        .collect();
    let mut entries: Vec<(&str, &[u8], CompressionMethod)> =
        vec![("big.bin", &big, CompressionMethod::Stored)];
    for (name, bytes) in &small {
        entries.push((name, bytes, CompressionMethod::Stored));
    }
    RoundTripArchive {
        bytes: build_zip(&entries),
        big,
        small,
    }
}

// ---------------------------------------------------------------------------------------
// Log capture (one global subscriber for this binary)
// ---------------------------------------------------------------------------------------

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

fn logs() -> &'static Captured {
    static LOGS: OnceLock<Captured> = OnceLock::new();
    LOGS.get_or_init(|| {
        let captured = Captured::default();
        let writer = captured.clone();
        tracing_subscriber::fmt()
            .with_env_filter("artifact_gateway=info")
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .try_init()
            .expect("the only subscriber of this test binary");
        captured
    })
}

/// A log line that contains every one of `needles`, waiting a little for it.
async fn log_line(needles: &[&str]) -> String {
    for _ in 0..50 {
        if let Some(line) = logs()
            .text()
            .lines()
            .find(|line| needles.iter().all(|n| line.contains(n)))
        {
            return line.to_owned();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no log line with {needles:?}:\n{}", logs().text());
}

// ---------------------------------------------------------------------------------------
// Raw HTTP/1.1
// ---------------------------------------------------------------------------------------

struct RawResponse {
    status: u16,
    head: String,
    content_length: Option<u64>,
    body: Vec<u8>,
}

/// One GET over a fresh TCP connection, read until the server closes it.
async fn raw_get(addr: SocketAddr, path: &str) -> RawResponse {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "GET /api/v4{path} HTTP/1.1\r\nHost: {addr}\r\nPRIVATE-TOKEN: {TOKEN}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut received = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(20), async {
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => received.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await;
    assert!(read.is_ok(), "{path}: the connection stayed open");
    let end = received
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("{path}: no response head"));
    let head = String::from_utf8_lossy(&received[..end]).into_owned();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{path}: bad status line in {head}"));
    let content_length = head.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case("content-length")
            .then(|| value.trim().parse().ok())?
    });
    RawResponse {
        status,
        head,
        content_length,
        body: received[end + 4..].to_vec(),
    }
}

/// The entry is announced as `size` bytes with a 200 and then cut short: reqwest sees an
/// error, and a raw client fewer bytes than announced before the connection closes. Never
/// more than announced.
async fn expect_aborted(h: &Harness, job: u64, name: &str, size: u64) -> Vec<u8> {
    let response = h.get(&entry_path(job, name), Some(TOKEN)).await;
    assert_eq!(response.status(), 200, "job {job} {name}");
    assert_eq!(
        header(&response, "content-length"),
        Some(size.to_string().as_str()),
        "job {job} {name}"
    );
    let body = response.bytes().await;
    assert!(
        body.is_err(),
        "job {job} {name}: a bad entry was delivered as a complete body of {} bytes",
        body.unwrap().len()
    );

    let raw = raw_get(h.gateway.addr(), &entry_path(job, name)).await;
    assert_eq!(raw.status, 200, "{}", raw.head);
    assert_eq!(raw.content_length, Some(size), "{}", raw.head);
    assert!(
        !raw.head.to_ascii_lowercase().contains("transfer-encoding"),
        "{}",
        raw.head
    );
    assert!(
        (raw.body.len() as u64) < size,
        "job {job} {name}: {} of {size} bytes arrived: the abort came too late",
        raw.body.len()
    );
    raw.body
}

// ---------------------------------------------------------------------------------------
// 1. Round trips
// ---------------------------------------------------------------------------------------

async fn round_trips(kind: Kind) {
    let archive = round_trip_archive(60);
    let p = plan(&archive.bytes, DEFAULT_TAIL);
    assert!(
        p.extra.is_empty(),
        "the directory should fit the default tail"
    );
    assert!(!p.in_tail("big.bin"));
    let (small_a, small_a_bytes) = &archive.small[7];
    let (small_b, small_b_bytes) = &archive.small[59];
    assert!(p.in_tail(small_a) && p.in_tail(small_b));

    let h = Harness::tapped(kind, backend(1..=3), Tap::new, |_| {}).await;
    for job in 1..=3 {
        h.storage.put(&key(job), &archive.bytes);
    }
    let tap = tap_of(&h);
    let suffix = Some(GetRange::Suffix(DEFAULT_TAIL));

    // (a) Cold, entry inside the tail: the opening read is the only one.
    let m = mark(&tap);
    expect_entry(&h, 1, small_a, small_a_bytes).await;
    assert_eq!(
        since(&tap, &m),
        vec![suffix.clone()],
        "{kind:?} (a) cold, in tail"
    );

    // (b) Cold, entry outside the tail: opening read + one bounded entry read.
    let m = mark(&tap);
    expect_entry(&h, 2, "big.bin", &archive.big).await;
    assert_eq!(
        since(&tap, &m),
        vec![suffix.clone(), p.entry_read("big.bin")],
        "{kind:?} (b) cold, outside the tail"
    );

    // (d) Warm: one read per entry outside the tail, none for one inside it.
    for _ in 0..2 {
        let m = mark(&tap);
        expect_entry(&h, 2, "big.bin", &archive.big).await;
        assert_eq!(
            since(&tap, &m),
            vec![p.entry_read("big.bin")],
            "{kind:?} (d) warm, outside"
        );
    }
    for (job, name, bytes) in [
        (2, small_a, small_a_bytes),
        (2, small_b, small_b_bytes),
        (1, small_b, small_b_bytes),
    ] {
        let m = mark(&tap);
        expect_entry(&h, job, name, bytes).await;
        assert_eq!(
            since(&tap, &m),
            vec![],
            "{kind:?} (d) warm, inside the tail"
        );
    }

    // (c) A directory larger than the tail read: one read more than (b).
    let p = plan(&archive.bytes, 1024);
    let directory = p.index.directory_range();
    assert!(
        directory.end - directory.start > 1024,
        "the directory must exceed the tail"
    );
    assert_eq!(p.extra.len(), 1, "one directory read expected");
    let h = Harness::tapped(kind, backend(1..=1), Tap::new, |c| c.zip.tail_bytes = 1024).await;
    h.storage.put(&key(1), &archive.bytes);
    let tap = tap_of(&h);
    let m = mark(&tap);
    expect_entry(&h, 1, "big.bin", &archive.big).await;
    let reads = since(&tap, &m);
    assert_eq!(
        reads,
        vec![
            Some(GetRange::Suffix(1024)),
            p.extra_read(0),
            p.entry_read("big.bin")
        ],
        "{kind:?} (c) cold, directory before the tail"
    );
    assert_eq!(
        p.extra_read(0),
        Some(GetRange::Bounded(directory.start..p.tail_start))
    );
    let m = mark(&tap);
    expect_entry(&h, 1, small_a, small_a_bytes).await;
    assert_eq!(
        since(&tap, &m),
        vec![p.entry_read(small_a)],
        "{kind:?} (c) warm"
    );
}

#[tokio::test]
async fn round_trips_on_local_storage() {
    round_trips(Kind::Local).await;
}

#[tokio::test]
async fn round_trips_on_s3_storage() {
    round_trips(Kind::S3).await;
}

/// (e) 50 concurrent requests for different entries of one cold archive: one tail read,
/// one bounded read for each entry outside the tail, every body right.
async fn concurrent_cold_requests(kind: Kind) {
    let entries: Vec<(String, Vec<u8>, CompressionMethod)> = (0..50)
        .map(|i| {
            let method = if i % 2 == 0 {
                CompressionMethod::Stored
            } else {
                CompressionMethod::Deflated
            };
            let bytes = if i % 2 == 0 {
                noise(100 + i, 8 * 1024)
            } else {
                text(100 + i, 20 * 1024)
            };
            (format!("many/file-{i:02}.dat"), bytes, method)
        })
        .collect();
    let refs: Vec<(&str, &[u8], CompressionMethod)> = entries
        .iter()
        .map(|(n, b, m)| (n.as_str(), b.as_slice(), *m))
        .collect();
    let bytes = build_zip(&refs);
    let p = plan(&bytes, DEFAULT_TAIL);
    assert!(p.extra.is_empty());
    let outside = entries.iter().filter(|(n, _, _)| !p.in_tail(n)).count();
    assert!(
        outside > 0 && outside < 50,
        "{outside} entries outside the tail"
    );

    let h = Harness::tapped(kind, backend(1..=1), Tap::new, |_| {}).await;
    h.storage.put(&key(1), &bytes);
    let tap = tap_of(&h);
    let requests = entries.iter().map(|(name, want, _)| {
        let h = &h;
        async move {
            let (status, body) = fetch(h, 1, name).await;
            assert_eq!(status, 200, "{name}");
            assert!(body == want.as_slice(), "{name}: wrong bytes");
        }
    });
    futures_util::future::join_all(requests).await;

    let ranges = tap.ranges.lock().unwrap().clone();
    let suffixes = ranges
        .iter()
        .filter(|r| matches!(r, Some(GetRange::Suffix(_))))
        .count();
    assert_eq!(
        suffixes, 1,
        "{kind:?}: the tail was read {suffixes} times: {ranges:?}"
    );
    assert_eq!(ranges.len(), 1 + outside, "{kind:?}: {ranges:?}");
    eprintln!(
        "{kind:?}: 50 concurrent cold requests: {} GETs, {suffixes} tail read, {outside} entry reads",
        ranges.len()
    );
    assert_eq!(tap.heads.load(std::sync::atomic::Ordering::SeqCst), 0);
}

#[tokio::test]
async fn concurrent_cold_requests_read_the_tail_once_on_local_storage() {
    concurrent_cold_requests(Kind::Local).await;
}

#[tokio::test]
async fn concurrent_cold_requests_read_the_tail_once_on_s3_storage() {
    concurrent_cold_requests(Kind::S3).await;
}

// ---------------------------------------------------------------------------------------
// 2. CRC mismatch
// ---------------------------------------------------------------------------------------

/// A 30-byte and a 1.5 MiB stored entry, each with one byte of its data (not its header)
/// flipped; the entries' bytes as stored.
fn crc_archive(small_name: &str, large_name: &str) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let mut small = b"thirty bytes of stored text..\n".to_vec();
    assert_eq!(small.len(), 30);
    let mut large = noise(7, 1536 * 1024);
    let mut bytes = build_zip(&[
        (small_name, &small, CompressionMethod::Stored),
        (large_name, &large, CompressionMethod::Stored),
    ]);
    let p = plan(&bytes, DEFAULT_TAIL);
    for (name, at) in [(small_name, 13), (large_name, large.len() / 2)] {
        let start = data_start(&bytes, p.index.get(name).unwrap().local_header_offset);
        bytes[start + at] ^= 0x20;
    }
    small[13] ^= 0x20;
    let middle = large.len() / 2;
    large[middle] ^= 0x20;
    (bytes, small, large)
}

/// The 1.5 MiB entry: 200 and its Content-Length, then the transfer is cut before the
/// last chunk, and the log says why. Not requested here: the 30-byte entry, whose check
/// fails before any chunk is released; the gateway then closes the connection without
/// sending even the status line (a known bug, to be tested once fixed).
async fn crc_mismatch(kind: Kind, tag: &str) {
    logs();
    let small_name = format!("crc-small-{tag}.txt");
    let large_name = format!("crc-large-{tag}.bin");
    let (bytes, _, large) = crc_archive(&small_name, &large_name);

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
}

#[tokio::test]
async fn crc_mismatch_aborts_the_transfer_on_local_storage() {
    crc_mismatch(Kind::Local, "local").await;
}

#[tokio::test]
async fn crc_mismatch_aborts_the_transfer_on_s3_storage() {
    crc_mismatch(Kind::S3, "s3").await;
}

// ---------------------------------------------------------------------------------------
// 3. Malformed archives
// ---------------------------------------------------------------------------------------

/// A small well-formed archive to damage: two stored entries and a deflated one.
fn base_archive() -> (Vec<u8>, Vec<u8>) {
    let first = text(1, 200);
    let second = text(2, 200);
    let third = text(3, 300 * 1024);
    let bytes = build_zip(&[
        ("first.txt", &first, CompressionMethod::Stored),
        ("second.txt", &second, CompressionMethod::Stored),
        ("third.txt", &third, CompressionMethod::Deflated),
    ]);
    (bytes, third)
}

/// Local header for a stored entry; with `zip64`, sizes go to a zip64 extra field.
fn local_header(name: &str, size: u64, crc: u32, zip64: bool) -> Vec<u8> {
    let mut h = Vec::new();
    h.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
    h.extend_from_slice(&(if zip64 { 45u16 } else { 20 }).to_le_bytes());
    h.extend_from_slice(&0u16.to_le_bytes()); // flags
    h.extend_from_slice(&0u16.to_le_bytes()); // stored
    h.extend_from_slice(&0u16.to_le_bytes()); // time
    h.extend_from_slice(&0x21u16.to_le_bytes()); // date: 1980-01-01
    h.extend_from_slice(&crc.to_le_bytes());
    let small = if zip64 { u32::MAX } else { size as u32 };
    h.extend_from_slice(&small.to_le_bytes());
    h.extend_from_slice(&small.to_le_bytes());
    h.extend_from_slice(&(name.len() as u16).to_le_bytes());
    h.extend_from_slice(&(if zip64 { 20u16 } else { 0 }).to_le_bytes());
    h.extend_from_slice(name.as_bytes());
    if zip64 {
        h.extend_from_slice(&1u16.to_le_bytes());
        h.extend_from_slice(&16u16.to_le_bytes());
        h.extend_from_slice(&size.to_le_bytes());
        h.extend_from_slice(&size.to_le_bytes());
    }
    h
}

/// A central header for a stored entry, with a zip64 extra field for whatever does not
/// fit in 32 bits.
fn central_header(name: &str, size: u64, crc: u32, offset: u64) -> Vec<u8> {
    let big_size = size >= u64::from(u32::MAX);
    let big_offset = offset >= u64::from(u32::MAX);
    let mut zip64 = Vec::new();
    if big_size {
        zip64.extend_from_slice(&size.to_le_bytes());
        zip64.extend_from_slice(&size.to_le_bytes());
    }
    if big_offset {
        zip64.extend_from_slice(&offset.to_le_bytes());
    }
    let mut extra = Vec::new();
    if !zip64.is_empty() {
        extra.extend_from_slice(&1u16.to_le_bytes());
        extra.extend_from_slice(&(zip64.len() as u16).to_le_bytes());
        extra.extend_from_slice(&zip64);
    }
    let mut h = Vec::new();
    h.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
    h.extend_from_slice(&(0x0300u16 | 45).to_le_bytes()); // made by: unix, 4.5
    h.extend_from_slice(&45u16.to_le_bytes());
    h.extend_from_slice(&0u16.to_le_bytes()); // flags
    h.extend_from_slice(&0u16.to_le_bytes()); // stored
    h.extend_from_slice(&0u16.to_le_bytes());
    h.extend_from_slice(&0x21u16.to_le_bytes());
    h.extend_from_slice(&crc.to_le_bytes());
    let small = if big_size { u32::MAX } else { size as u32 };
    h.extend_from_slice(&small.to_le_bytes());
    h.extend_from_slice(&small.to_le_bytes());
    h.extend_from_slice(&(name.len() as u16).to_le_bytes());
    h.extend_from_slice(&(extra.len() as u16).to_le_bytes());
    h.extend_from_slice(&0u16.to_le_bytes()); // comment
    h.extend_from_slice(&0u16.to_le_bytes()); // disk
    h.extend_from_slice(&0u16.to_le_bytes()); // internal attributes
    h.extend_from_slice(&0o100644u32.wrapping_shl(16).to_le_bytes());
    let small_offset = if big_offset { u32::MAX } else { offset as u32 };
    h.extend_from_slice(&small_offset.to_le_bytes());
    h.extend_from_slice(name.as_bytes());
    h.extend_from_slice(&extra);
    h
}

/// zip64 end record (declaring `count` entries) + locator + EOCD, for a directory of
/// `size` bytes at `offset`, written at `at`.
fn zip64_end(at: u64, offset: u64, size: u64, count: u64) -> Vec<u8> {
    let mut e = Vec::new();
    e.extend_from_slice(&0x0606_4b50u32.to_le_bytes());
    e.extend_from_slice(&44u64.to_le_bytes());
    e.extend_from_slice(&45u16.to_le_bytes());
    e.extend_from_slice(&45u16.to_le_bytes());
    e.extend_from_slice(&0u32.to_le_bytes());
    e.extend_from_slice(&0u32.to_le_bytes());
    e.extend_from_slice(&count.to_le_bytes());
    e.extend_from_slice(&count.to_le_bytes());
    e.extend_from_slice(&size.to_le_bytes());
    e.extend_from_slice(&offset.to_le_bytes());
    // Locator.
    e.extend_from_slice(&0x0706_4b50u32.to_le_bytes());
    e.extend_from_slice(&0u32.to_le_bytes());
    e.extend_from_slice(&at.to_le_bytes());
    e.extend_from_slice(&1u32.to_le_bytes());
    // EOCD, saturated.
    e.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    e.extend_from_slice(&0u16.to_le_bytes());
    e.extend_from_slice(&0u16.to_le_bytes());
    e.extend_from_slice(&u16::MAX.to_le_bytes());
    e.extend_from_slice(&u16::MAX.to_le_bytes());
    e.extend_from_slice(&u32::MAX.to_le_bytes());
    e.extend_from_slice(&u32::MAX.to_le_bytes());
    e.extend_from_slice(&0u16.to_le_bytes());
    e
}

/// A tiny zip64 archive with one real entry whose end record declares `count` entries.
fn zip64_tiny(count: u64) -> Vec<u8> {
    let data = b"tiny\n";
    let crc = crc32fast::hash(data);
    let mut bytes = local_header("tiny.txt", data.len() as u64, crc, false);
    bytes.extend_from_slice(data);
    let directory = central_header("tiny.txt", data.len() as u64, crc, 0);
    let offset = bytes.len() as u64;
    bytes.extend_from_slice(&directory);
    let at = bytes.len() as u64;
    bytes.extend(zip64_end(at, offset, directory.len() as u64, count));
    bytes
}

struct Malformed {
    what: &'static str,
    bytes: Vec<u8>,
    entry: &'static str,
    /// In the reason of the 502 message.
    reason: &'static str,
}

fn malformed_archives() -> Vec<Malformed> {
    let (base, _) = base_archive();
    let layout = Layout::of(&base);
    let first_central = layout.central(&base, "first.txt");
    let second_central = layout.central(&base, "second.txt");
    let mut cases = Vec::new();

    let cut = layout.directory.start + (layout.directory.end - layout.directory.start) / 2;
    cases.push(Malformed {
        what: "truncated in the middle of the central directory",
        bytes: base[..cut].to_vec(),
        entry: "first.txt",
        reason: "not a zip archive",
    });

    let mut bytes = base[..cut].to_vec();
    bytes.extend_from_slice(&base[layout.eocd..]);
    cases.push(Malformed {
        what: "half of the central directory missing, end record kept",
        bytes,
        entry: "first.txt",
        reason: "central directory lies outside the archive",
    });

    cases.push(Malformed {
        what: "random bytes",
        bytes: noise(99, 10_000),
        entry: "first.txt",
        reason: "not a zip archive",
    });

    cases.push(Malformed {
        what: "empty object",
        bytes: Vec::new(),
        entry: "first.txt",
        reason: "empty",
    });

    let mut bytes = base.clone();
    put32(&mut bytes, layout.eocd + 16, 0x7fff_0000);
    cases.push(Malformed {
        what: "directory offset outside the object",
        bytes,
        entry: "first.txt",
        reason: "central directory lies outside the archive",
    });

    let mut bytes = base.clone();
    let first_offset = le32(&bytes, first_central + 42);
    put32(&mut bytes, second_central + 42, first_offset);
    cases.push(Malformed {
        what: "two central headers with one local offset",
        bytes,
        entry: "first.txt",
        reason: "overlapping entries",
    });

    let mut bytes = base.clone();
    put32(&mut bytes, first_central + 20, 100_000);
    put32(&mut bytes, first_central + 24, 100_000);
    cases.push(Malformed {
        what: "compressed size far larger than the space to the next entry",
        bytes,
        entry: "first.txt",
        reason: "overlapping entries",
    });

    // Within the slack the index cannot see (the local name length): the entry reader's
    // exact check must catch it.
    let mut bytes = base.clone();
    let real = le32(&bytes, first_central + 20);
    put32(&mut bytes, first_central + 20, real + 5);
    put32(&mut bytes, first_central + 24, real + 5);
    cases.push(Malformed {
        what: "compressed size a few bytes larger than the space to the next entry",
        bytes,
        entry: "first.txt",
        reason: "entry sizes do not fit in the archive",
    });

    let mut bytes = base.clone();
    let local = le32(&bytes, first_central + 42) as usize;
    put32(&mut bytes, local, 0);
    cases.push(Malformed {
        what: "local header signature wiped",
        bytes,
        entry: "first.txt",
        reason: "local file header is missing or damaged",
    });

    let mut bytes = base.clone();
    put16(&mut bytes, layout.eocd + 8, u16::MAX);
    put16(&mut bytes, layout.eocd + 10, u16::MAX);
    cases.push(Malformed {
        what: "65,535 entries declared in a three-entry directory",
        bytes,
        entry: "first.txt",
        reason: "truncated",
    });

    cases.push(Malformed {
        what: "zip64: a million entries declared in a one-entry directory",
        bytes: zip64_tiny(1_000_000),
        entry: "tiny.txt",
        reason: "truncated",
    });

    cases.push(Malformed {
        what: "zip64: 2^60 entries declared",
        bytes: zip64_tiny(1 << 60),
        entry: "tiny.txt",
        reason: "more entries than allowed",
    });

    cases.push(Malformed {
        what: "zip64: 2^64-1 entries declared",
        bytes: zip64_tiny(u64::MAX),
        entry: "tiny.txt",
        reason: "more entries than allowed",
    });
    cases
}

async fn malformed(kind: Kind) {
    let cases = malformed_archives();
    // Sanity: the undamaged archive and the zip64 builder are fine.
    let (base, third) = base_archive();
    let good = zip64_tiny(1);
    plan(&good, DEFAULT_TAIL);

    let n = cases.len() as u64;
    let h = Harness::on(kind, backend(1..=n + 4)).await;
    for (i, case) in cases.iter().enumerate() {
        h.storage.put(&key(i as u64 + 1), &case.bytes);
    }
    h.storage.put(&key(n + 1), &base);
    h.storage.put(&key(n + 2), &good);
    expect_entry(&h, n + 1, "third.txt", &third).await;
    expect_entry(&h, n + 2, "tiny.txt", b"tiny\n").await;

    for (i, case) in cases.iter().enumerate() {
        let job = i as u64 + 1;
        let started = Instant::now();
        let response = tokio::time::timeout(PROMPT, async {
            let response = h.get(&entry_path(job, case.entry), Some(TOKEN)).await;
            let status = response.status().as_u16();
            let content_type = header(&response, "content-type").map(str::to_owned);
            (status, content_type, response.bytes().await)
        })
        .await;
        let (status, content_type, body) = response
            .unwrap_or_else(|_| panic!("{kind:?} {}: no answer within {PROMPT:?}", case.what));
        let body = body.unwrap_or_else(|e| panic!("{kind:?} {}: body failed: {e}", case.what));
        let text = String::from_utf8_lossy(&body);
        assert_eq!(status, 502, "{kind:?} {}: {text}", case.what);
        assert_eq!(
            content_type.as_deref(),
            Some("application/json"),
            "{}",
            case.what
        );
        let json: serde_json::Value = serde_json::from_slice(&body)
            .unwrap_or_else(|e| panic!("{kind:?} {}: not JSON ({e}): {text}", case.what));
        let message = json["message"].as_str().unwrap_or_default();
        if kind != Kind::Local && case.bytes.is_empty() {
            // The test S3 server (s3s-fs 0.14) panics on a suffix range of an empty object
            // (a 500 after retries), so the gateway cannot tell why: a plain 502.
            assert!(message.starts_with("502 Bad Gateway"), "{message:?}");
        } else {
            assert!(
                message.starts_with("502 Bad Gateway - ") && message.contains(case.reason),
                "{kind:?} {}: {message:?} should give the reason {:?}",
                case.what,
                case.reason
            );
        }
        eprintln!(
            "{kind:?} {}: {status} {message:?} in {:?}",
            case.what,
            started.elapsed()
        );
    }

    // The damaged entry does not spoil its neighbours.
    let job = 1 + cases
        .iter()
        .position(|c| c.what.starts_with("compressed size a few bytes"))
        .unwrap() as u64;
    let second = text(2, 200);
    expect_entry(&h, job, "second.txt", &second).await;
    // Nor do repeated requests change the answer (a cached failure or a cached index).
    let response = h.get(&entry_path(1, "first.txt"), Some(TOKEN)).await;
    assert_eq!(response.status(), 502);
}

#[tokio::test]
async fn malformed_archives_are_502s_on_local_storage() {
    malformed(Kind::Local).await;
}

#[tokio::test]
async fn malformed_archives_are_502s_on_s3_storage() {
    malformed(Kind::S3).await;
}

/// `bomb.txt`, 2 MiB of text deflated, whose central and local headers declare
/// `declared` bytes (CRC kept); the real text.
fn inflating_archive(declared: u32) -> (Vec<u8>, Vec<u8>) {
    let real = text(5, 2 << 20);
    let mut bytes = build_zip(&[
        (
            "before.txt",
            b"an entry before\n",
            CompressionMethod::Stored,
        ),
        ("bomb.txt", &real, CompressionMethod::Deflated),
        ("after.txt", b"an entry after\n", CompressionMethod::Stored),
    ]);
    let layout = Layout::of(&bytes);
    let central = layout.central(&bytes, "bomb.txt");
    assert_eq!(le32(&bytes, central + 24) as usize, real.len());
    put32(&mut bytes, central + 24, declared);
    let local = le32(&bytes, central + 42) as usize;
    put32(&mut bytes, local + 22, declared);
    (bytes, real)
}

/// A deflate entry that inflates past the size its headers declare: 200 with the declared
/// Content-Length, then cut short; never a byte past the declared size. Declared sizes
/// under two output chunks (128 KiB) fail before any chunk is released and get no status
/// line at all (the same known bug as above), so they are not requested here.
async fn inflates_past_declared_size(kind: Kind) {
    logs();
    let declared = [1_000_000u32, 700_000];
    let h = Harness::on(kind, backend(1..=declared.len() as u64)).await;
    let mut real = Vec::new();
    for (i, size) in declared.iter().enumerate() {
        let (bytes, text) = inflating_archive(*size);
        h.storage.put(&key(i as u64 + 1), &bytes);
        real = text;
    }
    for (i, size) in declared.iter().enumerate() {
        let job = i as u64 + 1;
        let got = tokio::time::timeout(
            PROMPT,
            expect_aborted(&h, job, "bomb.txt", u64::from(*size)),
        )
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
    log_line(&["inflates past its declared size", ":bomb.txt"]).await;
}

#[tokio::test]
async fn entry_inflating_past_its_size_is_cut_on_local_storage() {
    inflates_past_declared_size(Kind::Local).await;
}

#[tokio::test]
async fn entry_inflating_past_its_size_is_cut_on_s3_storage() {
    inflates_past_declared_size(Kind::S3).await;
}

// ---------------------------------------------------------------------------------------
// 4. Generated zip64 archives
// ---------------------------------------------------------------------------------------

const MANY: usize = 70_000;

fn many_name(i: usize) -> String {
    format!("m/{i:05}.txt")
}

fn many_content(i: usize) -> Vec<u8> {
    format!("entry {i} of {MANY}\n").into_bytes()
}

/// More than 65,535 tiny stored entries (so zip64 end records), built once.
fn many_entries_archive() -> &'static [u8] {
    static ARCHIVE: OnceLock<Vec<u8>> = OnceLock::new();
    ARCHIVE.get_or_init(|| {
        let started = Instant::now();
        let mut writer = zip::ZipWriter::new(Cursor::new(Vec::with_capacity(12 << 20)));
        let options = SimpleFileOptions::default().compression_method(CompressionMethod::Stored);
        for i in 0..MANY {
            writer.start_file(many_name(i), options).unwrap();
            writer.write_all(&many_content(i)).unwrap();
        }
        let bytes = writer.finish().unwrap().into_inner();
        eprintln!(
            "{MANY} entries: {} bytes, written in {:?}",
            bytes.len(),
            started.elapsed()
        );
        bytes
    })
}

async fn many_entries(kind: Kind) {
    let bytes = many_entries_archive();
    // zip64: the locator sits right before the EOCD, whose count is saturated.
    let eocd = bytes.len() - 22;
    assert_eq!(le32(bytes, eocd), 0x0605_4b50);
    assert_eq!(le16(bytes, eocd + 10), u16::MAX);
    assert_eq!(le32(bytes, eocd - 20), 0x0706_4b50, "no zip64 locator");
    let p = plan(bytes, DEFAULT_TAIL);
    assert_eq!(p.index.len(), MANY);

    let h = Harness::tapped(kind, backend(1..=1), Tap::new, |_| {}).await;
    h.storage.put(&key(1), bytes);
    let tap = tap_of(&h);
    let near_end = MANY - 3;
    let m = mark(&tap);
    let started = Instant::now();
    expect_entry(&h, 1, &many_name(near_end), &many_content(near_end)).await;
    let cold = started.elapsed();
    let mut want = vec![Some(GetRange::Suffix(DEFAULT_TAIL))];
    want.extend((0..p.extra.len()).map(|i| p.extra_read(i)));
    assert!(!p.in_tail(&many_name(near_end)));
    want.push(p.entry_read(&many_name(near_end)));
    assert_eq!(since(&tap, &m), want, "{kind:?}");
    eprintln!(
        "{kind:?}: cold request into a {MANY}-entry archive ({} directory bytes): {cold:?}, {} reads",
        p.index.directory_range().end - p.index.directory_range().start,
        want.len()
    );
    assert!(
        cold < Duration::from_secs(10),
        "{kind:?}: cold open took {cold:?}"
    );

    let started = Instant::now();
    for i in [0, 1, 65_535, 65_536, MANY - 1] {
        expect_entry(&h, 1, &many_name(i), &many_content(i)).await;
    }
    assert!(started.elapsed() < Duration::from_secs(5));
    let response = h.get(&entry_path(1, &many_name(MANY)), Some(TOKEN)).await;
    assert_eq!(response.status(), 404);
}

#[tokio::test]
async fn more_than_65535_entries_on_local_storage() {
    many_entries(Kind::Local).await;
}

#[tokio::test]
async fn more_than_65535_entries_on_s3_storage() {
    many_entries(Kind::S3).await;
}

/// 4,200 MiB: the entry after it starts past 4 GiB.
const HUGE: u64 = 4200 * 1024 * 1024;
const AFTER: &[u8] = b"this entry starts past four gibibytes\n";

/// CRC-32 of `len` zero bytes (a multiple of 1 MiB) without hashing them all.
fn crc_of_zeros(len: u64) -> u32 {
    const BLOCK: u64 = 1 << 20;
    assert_eq!(len % BLOCK, 0);
    let mut power = crc32fast::Hasher::new();
    power.update(&vec![0u8; BLOCK as usize]);
    let mut total = crc32fast::Hasher::new();
    let mut blocks = len / BLOCK;
    while blocks > 0 {
        if blocks & 1 == 1 {
            total.combine(&power);
        }
        let copy = power.clone();
        power.combine(&copy);
        blocks >>= 1;
    }
    total.finalize()
}

/// Writes the sparse archive at `path` and returns its tail (the default tail read) and
/// size: `huge.bin` (HUGE zero bytes, a hole), then `after.txt` past 4 GiB, a central
/// directory with zip64 extra fields, zip64 end record, locator and EOCD.
fn write_sparse_archive(path: &std::path::Path) -> (Vec<u8>, u64) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let huge_crc = crc_of_zeros(HUGE);
    let after_crc = crc32fast::hash(AFTER);
    let first = local_header("huge.bin", HUGE, huge_crc, true);
    let after_at = first.len() as u64 + HUGE;
    assert!(after_at > 1 << 32);
    let mut rest = local_header("after.txt", AFTER.len() as u64, after_crc, false);
    rest.extend_from_slice(AFTER);
    let directory_at = after_at + rest.len() as u64;
    let mut directory = central_header("huge.bin", HUGE, huge_crc, 0);
    directory.extend(central_header(
        "after.txt",
        AFTER.len() as u64,
        after_crc,
        after_at,
    ));
    let end_at = directory_at + directory.len() as u64;
    rest.extend_from_slice(&directory);
    rest.extend(zip64_end(end_at, directory_at, directory.len() as u64, 2));

    let mut file = std::fs::File::create(path).unwrap();
    file.write_all(&first).unwrap();
    file.set_len(after_at).unwrap();
    file.seek(SeekFrom::Start(after_at)).unwrap();
    file.write_all(&rest).unwrap();
    let size = after_at + rest.len() as u64;
    assert_eq!(file.metadata().unwrap().len(), size);
    // The tail: zeros of the hole, then `rest`.
    let mut tail = vec![0u8; (DEFAULT_TAIL as usize) - rest.len()];
    tail.extend_from_slice(&rest);
    (tail, size)
}

async fn past_four_gib(kind: Kind) {
    let backend = backend(1..=1);
    // Local: the harness's storage directory, read from the configuration it writes.
    // S3: a server of our own (the harness keeps its S3 server private), wrapped by the tap.
    let s3 = match kind {
        Kind::Local => None,
        _ => Some(S3Server::start("sparse").await),
    };
    let mut local_dir = None;
    let store = s3.as_ref().map(S3Server::object_store);
    let wrap: common::WrapStore<'_> = Box::new(move |local| Tap::new(store.unwrap_or(local)));
    let h = Harness::build(backend, Kind::Local, Some(wrap), |c| match &s3 {
        None => {
            local_dir = Some(PathBuf::from(
                c.storage.url.strip_prefix("file://").unwrap(),
            ))
        }
        Some(s3) => {
            let storage = &mut c.storage;
            storage.url = format!("s3://{}", s3.bucket());
            storage.endpoint = Some(s3.endpoint());
            storage.region = Some(s3.region().to_owned());
            storage.access_key_id = Some(s3.access_key().to_owned());
            storage.secret_access_key = Some(Secret::new(s3.secret_key()));
            storage.allow_http = true;
            storage.virtual_hosted_style = false;
        }
    })
    .await;
    let path = match &s3 {
        None => local_dir.unwrap().join(key(1)),
        Some(s3) => s3.object_path(&key(1)),
    };
    let (tail, size) = write_sparse_archive(&path);
    if let Some(s3) = &s3 {
        // s3s-fs computes the MD5 of an object without a stored ETag on every request,
        // which would read 4 GiB each time: store one as its PUT would have.
        let root = s3
            .object_path("x")
            .parent()
            .unwrap()
            .parent()
            .unwrap()
            .to_owned();
        let sidecar = root.join(format!(
            ".bucket-{}.object-{}.internal.json",
            base64_url(s3.bucket()),
            base64_url(&key(1))
        ));
        std::fs::write(sidecar, br#"{"e_tag":"0123456789abcdef0123456789abcdef"}"#).unwrap();
    }
    // The builder is right: the parser finds the entry past 4 GiB in the tail alone.
    let limits = IndexLimits::default();
    let index = match parse_tail(&tail, size - DEFAULT_TAIL, size, &limits).unwrap() {
        TailOutcome::Complete(index) => index,
        other => panic!("the tail should hold the directory: {other:?}"),
    };
    let after = index.get("after.txt").unwrap();
    assert!(after.local_header_offset > 1 << 32);
    assert_eq!(index.get("huge.bin").unwrap().uncompressed_size, HUGE);

    let tap = tap_of(&h);
    let m = mark(&tap);
    expect_entry(&h, 1, "after.txt", AFTER).await;
    assert_eq!(
        since(&tap, &m),
        vec![Some(GetRange::Suffix(DEFAULT_TAIL))],
        "{kind:?}"
    );

    // The last 100 bytes of the 4,200 MiB stored entry: in the tail the archive was opened
    // with, so only the local header (not in the tail) is read.
    let m = mark(&tap);
    let want_range = (HUGE - 100)..HUGE;
    let body = ranged(&h, "huge.bin", &want_range).await;
    assert_eq!(&body[..], &[0u8; 100][..], "{kind:?}");
    assert_eq!(
        since(&tap, &m),
        vec![Some(GetRange::Bounded(0..30))],
        "{kind:?}: the local header only"
    );

    // 20 bytes across the entry's 4 GiB mark: the local header, then just the range.
    let m = mark(&tap);
    let want_range = (1u64 << 32) - 10..(1u64 << 32) + 10;
    let body = ranged(&h, "huge.bin", &want_range).await;
    assert_eq!(&body[..], &[0u8; 20][..], "{kind:?}");
    let data_start = 30 + 8 + 20;
    assert_eq!(
        since(&tap, &m),
        vec![
            Some(GetRange::Bounded(0..30)),
            Some(GetRange::Bounded(
                data_start + want_range.start..data_start + want_range.end
            )),
        ],
        "{kind:?}: local header, then just the range"
    );

    // A suffix range, and a HEAD that announces the whole size.
    let response = h
        .client
        .get(h.url(&entry_path(1, "huge.bin")))
        .header("PRIVATE-TOKEN", TOKEN)
        .header("Range", "bytes=-10")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 206);
    let want_range = format!("bytes {}-{}/{HUGE}", HUGE - 10, HUGE - 1);
    assert_eq!(
        header(&response, "content-range"),
        Some(want_range.as_str())
    );
    assert_eq!(&response.bytes().await.unwrap()[..], &[0u8; 10][..]);
    let response = h
        .client
        .head(h.url(&entry_path(1, "huge.bin")))
        .header("PRIVATE-TOKEN", TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        header(&response, "content-length"),
        Some(HUGE.to_string().as_str())
    );
    drop(h);
    drop(s3);
}

/// GET `range` of an entry of job 1: a 206 with its Content-Range; the body.
async fn ranged(h: &Harness, name: &str, range: &Range<u64>) -> bytes::Bytes {
    let response = h
        .client
        .get(h.url(&entry_path(1, name)))
        .header("PRIVATE-TOKEN", TOKEN)
        .header("Range", format!("bytes={}-{}", range.start, range.end - 1))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 206, "{name} {range:?}");
    let want = format!("bytes {}-{}/{HUGE}", range.start, range.end - 1);
    assert_eq!(header(&response, "content-range"), Some(want.as_str()));
    let length = (range.end - range.start).to_string();
    assert_eq!(header(&response, "content-length"), Some(length.as_str()));
    response.bytes().await.unwrap()
}

/// URL-safe base64 without padding, as s3s-fs names its sidecar files.
fn base64_url(s: &str) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in s.as_bytes().chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
        }
    }
    out
}

#[tokio::test]
async fn entry_past_4_gib_in_a_sparse_archive_on_local_storage() {
    past_four_gib(Kind::Local).await;
}

#[tokio::test]
async fn entry_past_4_gib_in_a_sparse_archive_on_s3_storage() {
    past_four_gib(Kind::S3).await;
}

/// The same archive in upstream mode: at the backend's hashed key in the harness's S3
/// server, behind a 302 to a presigned URL; reads counted at the S3 server.
#[tokio::test]
async fn entry_past_4_gib_in_a_sparse_archive_in_upstream_mode() {
    let h = Harness::build(backend(1..=1), Kind::Upstream, None, |_| {}).await;
    let s3 = h.storage.s3().unwrap();
    let object_key = h.backend.archive_key(1).unwrap();
    let (_tail, _size) = write_sparse_archive(&s3.object_path(&object_key));
    // As above: a stored ETag, so that s3s-fs does not hash 4 GiB on every request.
    let root = s3
        .object_path("x")
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .to_owned();
    let sidecar = root.join(format!(
        ".bucket-{}.object-{}.internal.json",
        base64_url(s3.bucket()),
        base64_url(&object_key)
    ));
    std::fs::write(sidecar, br#"{"e_tag":"0123456789abcdef0123456789abcdef"}"#).unwrap();
    let reads = |from: usize| s3.get_ranges()[from..].to_vec();
    let some = |r: &str| Some(r.to_owned());

    let m = s3.get_ranges().len();
    expect_entry(&h, 1, "after.txt", AFTER).await;
    assert_eq!(reads(m), [some(&format!("bytes=-{DEFAULT_TAIL}"))]);

    let m = s3.get_ranges().len();
    let body = ranged(&h, "huge.bin", &((HUGE - 100)..HUGE)).await;
    assert_eq!(&body[..], &[0u8; 100][..]);
    assert_eq!(reads(m), [some("bytes=0-29")], "the local header only");

    let m = s3.get_ranges().len();
    let want_range = (1u64 << 32) - 10..(1u64 << 32) + 10;
    let body = ranged(&h, "huge.bin", &want_range).await;
    assert_eq!(&body[..], &[0u8; 20][..]);
    let data_start = 30 + 8 + 20;
    let just_the_range = format!(
        "bytes={}-{}",
        data_start + want_range.start,
        data_start + want_range.end - 1
    );
    assert_eq!(reads(m), [some("bytes=0-29"), some(&just_the_range)]);
}

// ---------------------------------------------------------------------------------------
// 5. Changed object
// ---------------------------------------------------------------------------------------

async fn changed_object(kind: Kind) {
    logs();
    let v1_big = noise(11, 600 * 1024);
    let v2_big = noise(12, 700 * 1024);
    let v1 = build_zip(&[
        ("big.bin", &v1_big, CompressionMethod::Stored),
        ("small.txt", b"version one\n", CompressionMethod::Stored),
    ]);
    let v2 = build_zip(&[
        ("big.bin", &v2_big, CompressionMethod::Stored),
        ("small.txt", b"version two!\n", CompressionMethod::Stored),
    ]);
    let p1 = plan(&v1, DEFAULT_TAIL);
    let p2 = plan(&v2, DEFAULT_TAIL);
    assert!(!p1.in_tail("big.bin") && !p2.in_tail("big.bin"));
    assert_ne!(p1.entry_read("big.bin"), p2.entry_read("big.bin"));

    let h = Harness::tapped(kind, backend(1..=1), Tap::new, |_| {}).await;
    h.storage.put(&key(1), &v1);
    let tap = tap_of(&h);
    let suffix = Some(GetRange::Suffix(DEFAULT_TAIL));

    let m = mark(&tap);
    let response = h.get(&entry_path(1, "big.bin"), Some(TOKEN)).await;
    assert_eq!(response.status(), 200);
    let etag_v1 = header(&response, "etag").unwrap().to_owned();
    assert!(response.bytes().await.unwrap() == v1_big);
    assert_eq!(
        since(&tap, &m),
        vec![suffix.clone(), p1.entry_read("big.bin")]
    );

    // Same key, another archive (another ETag).
    tokio::time::sleep(Duration::from_millis(20)).await;
    h.storage.put(&key(1), &v2);

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
            p1.entry_read("big.bin"),
            suffix.clone(),
            p2.entry_read("big.bin")
        ],
        "{kind:?}: the reopen"
    );
    log_line(&["archive changed since it was indexed", &key(1)]).await;

    // Warm again, on the new index.
    let m = mark(&tap);
    expect_entry(&h, 1, "big.bin", &v2_big).await;
    assert_eq!(since(&tap, &m), vec![p2.entry_read("big.bin")]);
    let m = mark(&tap);
    expect_entry(&h, 1, "small.txt", b"version two!\n").await;
    assert_eq!(since(&tap, &m), vec![]);
}

#[tokio::test]
async fn changed_object_is_reopened_once_on_local_storage() {
    changed_object(Kind::Local).await;
}

#[tokio::test]
async fn changed_object_is_reopened_once_on_s3_storage() {
    changed_object(Kind::S3).await;
}

#[tokio::test]
async fn crc_mismatch_aborts_the_transfer_in_upstream_mode() {
    crc_mismatch(Kind::Upstream, "upstream").await;
}

#[tokio::test]
async fn malformed_archives_are_502s_in_upstream_mode() {
    malformed(Kind::Upstream).await;
}

#[tokio::test]
async fn entry_inflating_past_its_size_is_cut_in_upstream_mode() {
    inflates_past_declared_size(Kind::Upstream).await;
}
