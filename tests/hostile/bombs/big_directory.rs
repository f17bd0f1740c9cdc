//! A 250 MiB central directory (a million entries, written to disk as it is generated):
//! opened within 1.2 times its size, refused before it is read when over
//! `zip.max_directory_bytes`, opened once for three concurrent requests, and bounded by
//! `zip.memory_budget` when three distinct archives open at once.

use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use sample_backend::SampleBackend;

use super::zip_writer::{central_header, local_header, zip64_end};
use super::{
    assert_bad_archive, backend, base_mib, client, entry_url, get, key, storage_bytes, PROMPT,
    SMALL_CASE_MIB,
};
use crate::support::{within, Gateway, TempDir};

const MIB: u64 = 1024 * 1024;

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
