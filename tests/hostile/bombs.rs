//! Generated zip bombs against the real binary: directories that declare more than they
//! hold or more than allowed, a 250 MiB central directory (under and over
//! `zip.max_directory_bytes`, and opened by three requests at once), overlapping entries,
//! and entries whose sizes lie, each with and without `Range`.
//!
//! Every case asserts the status and JSON body, that no byte from outside the entry is
//! ever served, the gateway's peak RSS (from `/proc`) and how long the case took.

use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use sample_backend::{BackendBuilder, JobSpec, JobStatus, SampleBackend, Visibility};

use crate::support::{within, Gateway, TempDir};

const MIB: u64 = 1024 * 1024;
/// Small cases must be answered within this, and stay under this much RSS growth.
const PROMPT: Duration = Duration::from_secs(10);
const SMALL_CASE_MIB: u64 = 48;

// ---------------------------------------------------------------------------------------
// A zip writer that lets every field lie
// ---------------------------------------------------------------------------------------

/// One entry as written: `data` follows the local header; the local header and the
/// central directory each state their own sizes and CRC.
#[derive(Clone)]
struct Spec {
    name: String,
    method: u16,
    data: Vec<u8>,
    /// (crc, compressed, uncompressed) in the local header.
    local: (u32, u32, u32),
    /// (crc, compressed, uncompressed) in the central directory.
    central: (u32, u32, u32),
    /// Central directory offset of the local header, when it should point elsewhere.
    offset: Option<u32>,
}

impl Spec {
    /// An honest stored entry.
    fn stored(name: &str, content: &[u8]) -> Self {
        let crc = crc32fast::hash(content);
        let len = content.len() as u32;
        Self {
            name: name.into(),
            method: 0,
            data: content.to_vec(),
            local: (crc, len, len),
            central: (crc, len, len),
            offset: None,
        }
    }

    /// An honest deflated entry.
    fn deflated(name: &str, content: &[u8]) -> Self {
        let mut encoder =
            flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(content).unwrap();
        let data = encoder.finish().unwrap();
        let crc = crc32fast::hash(content);
        let sizes = (crc, data.len() as u32, content.len() as u32);
        Self {
            name: name.into(),
            method: 8,
            data,
            local: sizes,
            central: sizes,
            offset: None,
        }
    }
}

fn u16le(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_le_bytes());
}
fn u32le(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}
fn u64le(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn local_header(out: &mut Vec<u8>, method: u16, (crc, csize, usize): (u32, u32, u32), name: &[u8]) {
    u32le(out, 0x0403_4b50);
    u16le(out, 20); // version needed
    u16le(out, 0); // flags
    u16le(out, method);
    u32le(out, 0); // time, date
    u32le(out, crc);
    u32le(out, csize);
    u32le(out, usize);
    u16le(out, name.len() as u16);
    u16le(out, 0); // extra
    out.extend_from_slice(name);
}

fn central_header(
    out: &mut Vec<u8>,
    method: u16,
    (crc, csize, usize): (u32, u32, u32),
    name: &[u8],
    offset: u32,
) {
    u32le(out, 0x0201_4b50);
    u16le(out, 20); // version made by
    u16le(out, 20); // version needed
    u16le(out, 0); // flags
    u16le(out, method);
    u32le(out, 0); // time, date
    u32le(out, crc);
    u32le(out, csize);
    u32le(out, usize);
    u16le(out, name.len() as u16);
    u16le(out, 0); // extra
    u16le(out, 0); // comment
    u16le(out, 0); // disk
    u16le(out, 0); // internal attributes
    u32le(out, 0); // external attributes
    u32le(out, offset);
    out.extend_from_slice(name);
}

/// zip64 end record + locator + EOCD (entry counts saturated) for a directory of `count`
/// entries and `size` bytes at `offset`, itself written at `at`.
fn zip64_end(out: &mut Vec<u8>, at: u64, count: u64, size: u64, offset: u64) {
    u32le(out, 0x0606_4b50);
    u64le(out, 44);
    u16le(out, 45);
    u16le(out, 45);
    u32le(out, 0);
    u32le(out, 0);
    u64le(out, count);
    u64le(out, count);
    u64le(out, size);
    u64le(out, offset);
    u32le(out, 0x0706_4b50);
    u32le(out, 0);
    u64le(out, at);
    u32le(out, 1);
    eocd(out, 0xFFFF, u32::MAX, u32::MAX);
}

fn eocd(out: &mut Vec<u8>, count: u16, size: u32, offset: u32) {
    u32le(out, 0x0605_4b50);
    u32le(out, 0); // disk numbers
    u16le(out, count);
    u16le(out, count);
    u32le(out, size);
    u32le(out, offset);
    u16le(out, 0);
}

fn build(entries: &[Spec]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut offsets = Vec::new();
    for e in entries {
        offsets.push(out.len() as u32);
        local_header(&mut out, e.method, e.local, e.name.as_bytes());
        out.extend_from_slice(&e.data);
    }
    let cd_start = out.len() as u32;
    for (e, &at) in entries.iter().zip(&offsets) {
        let offset = e.offset.unwrap_or(at);
        central_header(&mut out, e.method, e.central, e.name.as_bytes(), offset);
    }
    let cd_size = out.len() as u32 - cd_start;
    eocd(&mut out, entries.len() as u16, cd_size, cd_start);
    out
}

// ---------------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------------

/// Public project 1 with successful jobs `jobs`, each with an archive.
async fn backend(jobs: impl IntoIterator<Item = u64>) -> SampleBackend {
    let mut backend = BackendBuilder::new().project(1, "g/app", Visibility::Public, &[]);
    for id in jobs {
        backend =
            backend.job(JobSpec::new(id, 1, "build", "main", JobStatus::Success).with_archive(1));
    }
    backend.start().await.expect("backend starts")
}

fn key(job: u64) -> String {
    format!("1/{job}/artifacts.zip")
}

fn entry_url(gateway: &Gateway, job: u64, name: &str) -> String {
    gateway.url(&format!("/projects/1/jobs/{job}/artifacts/{name}"))
}

/// A client patient enough for a cold 250 MiB directory in a debug build.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(300))
        .build()
        .unwrap()
}

/// What a request ended as: status, and the body or the error that cut it short.
#[derive(Debug)]
struct Outcome {
    status: u16,
    body: Result<Vec<u8>, String>,
}

async fn get(url: &str, range: Option<&str>) -> Outcome {
    let mut request = client().get(url);
    if let Some(range) = range {
        request = request.header("Range", range);
    }
    let response = request.send().await.expect("the gateway answers");
    let status = response.status().as_u16();
    let body = response
        .bytes()
        .await
        .map(|b| b.to_vec())
        .map_err(|e| e.to_string());
    Outcome { status, body }
}

/// A 502 whose GitLab-style JSON message contains `reason`.
fn assert_bad_archive(outcome: &Outcome, reason: &str, what: &str) {
    assert_eq!(outcome.status, 502, "{what}: {outcome:?}");
    let body = outcome.body.as_ref().expect("a complete error body");
    let json: serde_json::Value = serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {}", String::from_utf8_lossy(body)));
    let message = json["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("502 Bad Gateway - ") && message.contains(reason),
        "{what}: message {message:?} should name {reason:?}"
    );
}

/// `storage_read_bytes_total{kind}` from the admin listener.
async fn storage_bytes(gateway: &Gateway, kind: &str) -> u64 {
    let text = gateway.metrics().await;
    let needle = format!("storage_read_bytes_total{{kind=\"{kind}\"}} ");
    text.lines()
        .find_map(|l| {
            l.split_once(&needle)
                .map(|(_, v)| v.trim().parse().unwrap())
        })
        .unwrap_or(0)
}

/// Current RSS in MiB, the base a case's bound is added to.
/// Job 1's archive with a 250 MiB directory, and the gateway in front of it with
/// `zip.max_directory_bytes = cap`; the base RSS (MiB) is taken with the peak reset.
async fn one_big_archive(label: &str, cap: &str) -> (TempDir, SampleBackend, Gateway, u64) {
    let storage = TempDir::new(label);
    write_big_archive(&storage.path().join(key(1)));
    let backend = backend([1]).await;
    let gateway = Gateway::spawn(&backend.url(), &storage.url(), &big_config(cap)).await;
    let base = base_mib(&gateway);
    (storage, backend, gateway, base)
}

fn base_mib(gateway: &Gateway) -> u64 {
    gateway.reset_peak();
    gateway.rss_kib() / 1024
}

// ---------------------------------------------------------------------------------------
// Declared counts
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_declared_million_entries_in_a_tiny_directory_is_refused_without_allocating() {
    let storage = TempDir::new("bomb-count");
    // One real entry, but the zip64 record declares 1 M (or 2 M, over `max_entries`).
    let one = build(&[Spec::stored("a.txt", b"a")]);
    let cd_start = one.len() - 22 - 46 - 5;
    for (job, count) in [(1u64, 1_000_000u64), (2, 2_000_000), (3, u64::MAX / 8)] {
        let mut bytes = one[..one.len() - 22].to_vec();
        let at = bytes.len() as u64;
        zip64_end(&mut bytes, at, count, 51, cd_start as u64);
        storage.write(&key(job), &bytes);
    }
    let backend = backend([1, 2, 3]).await;
    let gateway = Gateway::spawn(&backend.url(), &storage.url(), "").await;
    let base = base_mib(&gateway);
    within(PROMPT, "declared entry counts", async {
        let url = entry_url(&gateway, 1, "a.txt");
        assert_bad_archive(
            &get(&url, None).await,
            "truncated",
            "1 M entries in 51 bytes",
        );
        for job in [2, 3] {
            let url = entry_url(&gateway, job, "a.txt");
            let outcome = get(&url, None).await;
            assert_bad_archive(&outcome, "more entries than allowed", "over max_entries");
        }
    })
    .await;
    gateway.assert_peak_below(base + SMALL_CASE_MIB, "declared entry counts");
}

// ---------------------------------------------------------------------------------------
// A 250 MiB central directory
// ---------------------------------------------------------------------------------------

/// 1 M entries of 216-byte names: a central directory of 262,000,000 bytes (249.9 MiB).
const BIG_ENTRIES: u64 = 1_000_000;
const BIG_NAME_LEN: usize = 216;
const BIG_DIRECTORY: u64 = BIG_ENTRIES * (46 + BIG_NAME_LEN as u64);
const FIRST_CONTENT: &[u8] = b"the first of a million entries\n";
const LAST_CONTENT: &[u8] = b"and the last one\n";

fn big_name(i: u64) -> String {
    let mut name = format!("{i:07}/");
    name.extend(std::iter::repeat_n('n', BIG_NAME_LEN - name.len()));
    name
}

/// Writes the archive to `path` as it goes (never whole in memory): 30-byte local headers
/// (the first and last entries with content), the directory, zip64 end records.
fn write_big_archive(path: &Path) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut file = BufWriter::with_capacity(1 << 20, std::fs::File::create(path).unwrap());
    let content = |i: u64| match i {
        0 => FIRST_CONTENT,
        i if i == BIG_ENTRIES - 1 => LAST_CONTENT,
        _ => b"",
    };
    let mut offsets = Vec::with_capacity(BIG_ENTRIES as usize);
    let mut at = 0u64;
    let mut buf = Vec::with_capacity(512);
    for i in 0..BIG_ENTRIES {
        let data = content(i);
        let crc = crc32fast::hash(data);
        let len = data.len() as u32;
        buf.clear();
        local_header(&mut buf, 0, (crc, len, len), b"");
        buf.extend_from_slice(data);
        file.write_all(&buf).unwrap();
        offsets.push(at as u32);
        at += buf.len() as u64;
    }
    let cd_start = at;
    for (i, &offset) in offsets.iter().enumerate() {
        let data = content(i as u64);
        let crc = crc32fast::hash(data);
        let len = data.len() as u32;
        buf.clear();
        central_header(
            &mut buf,
            0,
            (crc, len, len),
            big_name(i as u64).as_bytes(),
            offset,
        );
        file.write_all(&buf).unwrap();
        at += buf.len() as u64;
    }
    assert_eq!(at - cd_start, BIG_DIRECTORY);
    buf.clear();
    zip64_end(&mut buf, at, BIG_ENTRIES, BIG_DIRECTORY, cd_start);
    file.write_all(&buf).unwrap();
    file.into_inner().unwrap().sync_all().ok();
}

/// Peak RSS allowed for opening the big directory once: 1.2 × its bytes plus a constant
/// for the runtime, the tail read and the request.
fn one_open_bound_mib() -> u64 {
    BIG_DIRECTORY * 12 / 10 / MIB + 32
}

/// The gateway configuration for the big directory: the index fits in the cache.
fn big_config(max_directory: &str) -> String {
    format!("[zip]\nmax_directory_bytes = \"{max_directory}\"\nindex_cache_bytes = \"1GiB\"\n")
}

async fn assert_big_entries(gateway: &Gateway, job: u64) {
    let first = get(&entry_url(gateway, job, &big_name(0)), None).await;
    assert_eq!(first.status, 200, "{first:?}");
    assert_eq!(first.body.as_deref().unwrap(), FIRST_CONTENT);
    let last = get(&entry_url(gateway, job, &big_name(BIG_ENTRIES - 1)), None).await;
    assert_eq!(last.status, 200, "{last:?}");
    assert_eq!(last.body.as_deref().unwrap(), LAST_CONTENT);
}

/// Defect 5: a 250 MiB central directory peaked at 2.1 × its size per open.
#[tokio::test]
async fn opening_a_250_mib_directory_uses_at_most_1_2_times_its_size() {
    let (_storage, _backend, gateway, base) = one_big_archive("bomb-bigdir", "300MiB").await;
    let started = Instant::now();
    within(
        Duration::from_secs(240),
        "open a 250 MiB directory",
        async {
            assert_big_entries(&gateway, 1).await;
        },
    )
    .await;
    let peak = gateway.peak_rss_kib() / 1024;
    eprintln!(
        "250 MiB directory: opened in {:?}, peak RSS {} MiB over a base of {base} MiB",
        started.elapsed(),
        peak - base
    );
    gateway.assert_peak_below(
        base + one_open_bound_mib(),
        "one open of a 250 MiB directory",
    );
    // Read once: the directory (plus the tail) came from storage, nothing more.
    let directory = storage_bytes(&gateway, "zip_directory").await;
    assert!(
        directory <= BIG_DIRECTORY,
        "read {directory} directory bytes"
    );
}

#[tokio::test]
async fn a_directory_over_max_directory_bytes_is_refused_before_it_is_read() {
    let (_storage, _backend, gateway, base) = one_big_archive("bomb-bigdir-cap", "200MiB").await;
    within(PROMPT, "refuse a 250 MiB directory", async {
        let outcome = get(&entry_url(&gateway, 1, &big_name(0)), None).await;
        assert_bad_archive(
            &outcome,
            "central directory is larger than allowed",
            "over cap",
        );
    })
    .await;
    assert_eq!(storage_bytes(&gateway, "zip_directory").await, 0);
    let tail = storage_bytes(&gateway, "zip_tail").await;
    assert!(tail <= 128 * 1024, "the tail read was {tail} bytes");
    gateway.assert_peak_below(base + SMALL_CASE_MIB, "a refused 250 MiB directory");
}

/// Three requests at once for one cold archive open it once (the cache's single flight),
/// so the bound is that of one open. Three distinct archives would each hold their own
/// open; the total memory budget, not this module, bounds that.
#[tokio::test]
async fn three_concurrent_opens_of_a_250_mib_directory_stay_within_one_open() {
    let (_storage, _backend, gateway, base) = one_big_archive("bomb-bigdir-3", "300MiB").await;
    within(
        Duration::from_secs(240),
        "three opens of a 250 MiB directory",
        async {
            let url = entry_url(&gateway, 1, &big_name(0));
            let outcomes = futures_util::future::join_all((0..3).map(|_| get(&url, None))).await;
            for outcome in outcomes {
                assert_eq!(outcome.status, 200, "{outcome:?}");
                assert_eq!(outcome.body.as_deref().unwrap(), FIRST_CONTENT);
            }
        },
    )
    .await;
    gateway.assert_peak_below(
        base + one_open_bound_mib(),
        "three concurrent opens of a 250 MiB directory",
    );
    let directory = storage_bytes(&gateway, "zip_directory").await;
    assert!(
        directory <= BIG_DIRECTORY,
        "opened more than once: {directory} bytes"
    );
}

/// Three distinct cold archives with 250 MiB directories at once: each open reserves 1.2 ×
/// its directory from `zip.memory_budget` (default 512 MiB) before reading it, so only one
/// proceeds while the others get 503 + `Retry-After`; the peak is that of one open, never
/// three. Bound: the budget plus a constant.
#[tokio::test]
async fn three_distinct_250_mib_directories_at_once_are_bounded_by_the_memory_budget() {
    let storage = TempDir::new("bomb-bigdir-3x");
    let first = storage.path().join(key(1));
    write_big_archive(&first);
    for job in [2, 3] {
        let path = storage.path().join(key(job));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::hard_link(&first, &path).unwrap();
    }
    let backend = backend([1, 2, 3]).await;
    let gateway = Gateway::spawn(&backend.url(), &storage.url(), &big_config("300MiB")).await;
    let base = base_mib(&gateway);
    let budget_mib = 512;
    within(
        Duration::from_secs(240),
        "three distinct 250 MiB directories",
        async {
            let requests = (1..=3).map(|job| {
                let url = entry_url(&gateway, job, &big_name(0));
                async move {
                    let response = client().get(&url).send().await.unwrap();
                    let status = response.status().as_u16();
                    let retry = response.headers().contains_key("retry-after");
                    (status, retry, response.bytes().await.unwrap())
                }
            });
            let outcomes = futures_util::future::join_all(requests).await;
            let served = outcomes.iter().filter(|(s, ..)| *s == 200).count();
            assert!(served >= 1, "{outcomes:?}");
            for (status, retry, body) in &outcomes {
                match status {
                    200 => assert_eq!(&body[..], FIRST_CONTENT),
                    503 => {
                        assert!(retry, "a 503 without Retry-After");
                        let json: serde_json::Value = serde_json::from_slice(body).unwrap();
                        assert!(json["message"].as_str().unwrap().starts_with("503"));
                    }
                    other => panic!("unexpected {other}: {outcomes:?}"),
                }
            }
        },
    )
    .await;
    gateway.assert_peak_below(
        base + budget_mib + 32,
        "three distinct 250 MiB directories at once",
    );
}

// ---------------------------------------------------------------------------------------
// Overlapping entries and lying sizes
// ---------------------------------------------------------------------------------------

const A: &[u8] = b"the bytes of a.txt, all of them\n";
const B: &[u8] = b"b.txt follows a.txt\n";

/// Stored `a.txt` followed by stored `b.txt`, with `lie` applied to `a.txt`.
fn stored_pair(lie: impl FnOnce(&mut Spec)) -> Vec<u8> {
    let mut a = Spec::stored("a.txt", A);
    lie(&mut a);
    build(&[a, Spec::stored("b.txt", B)])
}

fn deflated_pair(content: &[u8], lie: impl FnOnce(&mut Spec)) -> Vec<u8> {
    let mut a = Spec::deflated("a.txt", content);
    lie(&mut a);
    build(&[a, Spec::stored("b.txt", B)])
}

/// Asserts that an answer for `a.txt` (whose true content is `content`) holds only bytes
/// of `content`: a 502, or a body that is a piece of `content` at `at`.
fn assert_never_foreign(outcome: &Outcome, content: &[u8], at: usize, what: &str) {
    if let Ok(body) = &outcome.body {
        if outcome.status == 200 || outcome.status == 206 {
            assert!(
                content.get(at..at + body.len()) == Some(&body[..]),
                "{what}: {} served bytes from outside the entry: {:?}",
                outcome.status,
                String::from_utf8_lossy(body)
            );
        }
    }
}

/// Serves each archive as its own job, then checks every (job, range) case.
async fn run_cases(label: &str, cases: Vec<(Vec<u8>, &'static str)>, content: &[u8]) {
    let storage = TempDir::new(label);
    for (job, (bytes, _)) in cases.iter().enumerate() {
        storage.write(&key(job as u64 + 1), bytes);
    }
    let backend = backend(1..=cases.len() as u64).await;
    let gateway = Gateway::spawn(&backend.url(), &storage.url(), "").await;
    let base = base_mib(&gateway);
    let declared_end = content.len() + 40;
    within(PROMPT, label, async {
        for (job, (_, reason)) in cases.iter().enumerate() {
            let url = entry_url(&gateway, job as u64 + 1, "a.txt");
            // (Range header, where its first byte is in the entry)
            let ranges = [
                (Some(format!("bytes=2-{}", declared_end - 1)), 2),
                (Some(format!("bytes={}-", content.len())), content.len()),
                (Some("bytes=0-1".to_string()), 0),
                (None, 0),
            ];
            for (range, at) in ranges {
                let outcome = get(&url, range.as_deref()).await;
                let what = format!("{label} job {} ({reason}), Range {range:?}", job + 1);
                assert_never_foreign(&outcome, content, at, &what);
                // 416 is fine for a range past what the directory declares.
                if outcome.status != 416 {
                    assert_bad_archive(&outcome, reason, &what);
                }
            }
            // The honest neighbour is unharmed.
            let b = get(&entry_url(&gateway, job as u64 + 1, "b.txt"), None).await;
            if b.status == 200 {
                assert_eq!(b.body.as_deref().unwrap(), B);
            }
        }
    })
    .await;
    gateway.assert_peak_below(base + SMALL_CASE_MIB, label);
}

/// Defect 6: a range on a stored entry whose declared size passes its compressed size
/// answered 206 with the next entry's local header and part of the central directory.
#[tokio::test]
async fn range_on_a_stored_entry_with_a_lying_size_is_a_502_not_foreign_bytes() {
    let long = A.len() as u32 + 40;
    let cases = vec![
        // Uncompressed size larger than the compressed size.
        (
            stored_pair(|a| a.central.2 = long),
            "stored entry's sizes differ",
        ),
        // Both sizes larger, within the next entry's name bytes in the index's rough
        // check but past the next local header.
        (
            stored_pair(|a| {
                a.central.1 = A.len() as u32 + 5;
                a.central.2 = A.len() as u32 + 5;
            }),
            "entry sizes do not fit in the archive",
        ),
        // The directory says fewer bytes than the local header does.
        (
            stored_pair(|a| {
                a.central.1 = A.len() as u32 - 3;
                a.central.2 = A.len() as u32 - 3;
            }),
            "local file header disagrees",
        ),
    ];
    run_cases("bomb-stored-lies", cases, A).await;
}

#[tokio::test]
async fn lying_sizes_of_a_deflated_entry_are_a_502_with_and_without_range() {
    let content: Vec<u8> = (0..4000u32).flat_map(|i| (i % 251).to_le_bytes()).collect();
    let honest = Spec::deflated("a.txt", &content);
    let (clen, ulen) = (honest.central.1, honest.central.2);
    let cases = vec![
        // Declares more output than the stream holds (the local header agrees).
        (
            deflated_pair(&content, |a| {
                a.central.2 = ulen + 1000;
                a.local.2 = ulen + 1000;
            }),
            "ended after",
        ),
        // Declares less: output past it fails at once.
        (
            deflated_pair(&content, |a| {
                a.central.2 = ulen - 1000;
                a.local.2 = ulen - 1000;
            }),
            "inflates past its declared size",
        ),
        // Only the directory lies about the output size.
        (
            deflated_pair(&content, |a| a.central.2 = ulen + 1000),
            "local file header disagrees",
        ),
        // Compressed size past the next local header.
        (
            deflated_pair(&content, |a| a.central.1 = clen + 5),
            "entry sizes do not fit in the archive",
        ),
        // The directory and the local header disagree.
        (
            deflated_pair(&content, |a| a.local.1 = clen - 1),
            "local file header disagrees",
        ),
    ];
    run_cases("bomb-deflated-lies", cases, &content).await;
}

#[tokio::test]
async fn overlapping_entries_are_a_502_with_and_without_range() {
    let cases = vec![
        // b.txt's directory entry points at a.txt's local header.
        (
            build(&[
                Spec::stored("a.txt", A),
                Spec {
                    offset: Some(0),
                    ..Spec::stored("b.txt", B)
                },
            ]),
            "overlapping entries",
        ),
        // b.txt starts inside a.txt's data.
        (
            build(&[
                Spec::stored("a.txt", A),
                Spec {
                    offset: Some(40),
                    ..Spec::stored("b.txt", B)
                },
            ]),
            "overlapping entries",
        ),
    ];
    run_cases("bomb-overlap", cases, A).await;
}
