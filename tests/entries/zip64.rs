//! zip64 archives generated at test time: more than 65,535 entries, and an entry past
//! 4 GiB in a sparse file, with the storage reads each request costs.

use std::ops::Range;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::common::storage::Kind;
use crate::common::zips::{self, central_header, le16, le32, local_header, zip64_end};
use crate::common::{header, Harness, TOKEN};
use crate::support::{
    backend, bounded, entry_path, expect_entry, key, mark, since, suffix, tapped, TAIL,
};

on_both_storages! {
    more_than_65535_entries => many_entries;
}

on_every_source! {
    entry_past_4_gib_in_a_sparse_archive => past_four_gib;
}

const MANY: usize = 70_000;

fn many_name(i: usize) -> String {
    format!("m/{i:05}.txt")
}

fn many_content(i: usize) -> Vec<u8> {
    format!("entry {i} of {MANY}\n").into_bytes()
}

/// More than 65,535 tiny stored entries (so zip64 end records), built once.
fn many_entries_archive() -> &'static zips::Built {
    static ARCHIVE: OnceLock<zips::Built> = OnceLock::new();
    ARCHIVE.get_or_init(|| {
        let started = Instant::now();
        let entries: Vec<(String, Vec<u8>)> =
            (0..MANY).map(|i| (many_name(i), many_content(i))).collect();
        let refs: Vec<(&str, &[u8])> = entries
            .iter()
            .map(|(n, b)| (n.as_str(), b.as_slice()))
            .collect();
        let zip = zips::build_stored(&refs);
        eprintln!(
            "{MANY} entries: {} bytes, written in {:?}",
            zip.len(),
            started.elapsed()
        );
        zip
    })
}

async fn many_entries(kind: Kind) {
    let zip = many_entries_archive();
    let bytes = &zip.bytes;
    // zip64: the locator sits right before the EOCD, whose count is saturated.
    let eocd = zip.eocd as usize;
    assert_eq!(le16(bytes, eocd + 10), u16::MAX);
    assert_eq!(
        le32(bytes, eocd - 20),
        zips::ZIP64_LOCATOR,
        "no zip64 locator"
    );
    assert!(!zip.directory_in_tail(TAIL));

    let (h, tap) = tapped(kind, 1..=1, TAIL).await;
    h.storage.put(&key(1), bytes);
    let near_end = many_name(MANY - 3);
    assert!(!zip.in_tail(&near_end, TAIL));
    let m = mark(&tap);
    let started = Instant::now();
    expect_entry(&h, 1, &near_end, &many_content(MANY - 3)).await;
    let cold = started.elapsed();
    // The tail, the directory up to the tail, the entry.
    let want = vec![
        suffix(TAIL),
        bounded(zip.directory.start..zip.tail_start(TAIL)),
        bounded(zip.span(&near_end)),
    ];
    assert_eq!(since(&tap, &m), want, "{kind:?}");
    eprintln!(
        "{kind:?}: cold request into a {MANY}-entry archive ({} directory bytes): {cold:?}, {} reads",
        zip.directory.end - zip.directory.start,
        want.len()
    );
    // Generous bounds against a parser gone quadratic, not a benchmark.
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

/// 4,200 MiB: the entry after it starts past 4 GiB.
const HUGE: u64 = 4200 * 1024 * 1024;
const AFTER: &[u8] = b"this entry starts past four gibibytes\n";
/// `huge.bin`'s local header: 30 bytes, its name, a 20-byte zip64 extra field.
const HUGE_DATA_START: u64 = 30 + 8 + 20;

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

/// Writes the sparse archive at `path`: `huge.bin` (HUGE zero bytes, a hole), then
/// `after.txt` past 4 GiB, a central directory with zip64 extra fields, zip64 end record,
/// locator and EOCD. Returns the size of what follows the hole (all of it in the tail).
fn write_sparse_archive(path: &std::path::Path) -> u64 {
    use std::io::{Seek, SeekFrom, Write};
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let huge_crc = crc_of_zeros(HUGE);
    let after_crc = crc32fast::hash(AFTER);
    let first = local_header("huge.bin", HUGE, huge_crc, true);
    assert_eq!(first.len() as u64, HUGE_DATA_START);
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
    assert_eq!(file.metadata().unwrap().len(), after_at + rest.len() as u64);
    rest.len() as u64
}

/// The archive in place at job 1's key: on local storage, on the S3 server (storage mode),
/// at the backend's hashed key in the S3 server (upstream mode, behind a 302 or streamed by
/// the backend). Reads are counted by a store wrapper in storage mode and at the S3 server
/// in upstream mode (where the gateway does not read through a store of its own).
async fn past_four_gib(kind: Kind) {
    let (h, tap) = if kind.is_upstream() {
        let h = Harness::build(backend(1..=1), kind, None, |c| c.zip.tail_bytes = TAIL).await;
        (h, None)
    } else {
        let (h, tap) = tapped(kind, 1..=1, TAIL).await;
        (h, Some(tap))
    };
    let path = h.storage.object_path(&key(1));
    let rest = write_sparse_archive(&path);
    assert!(rest < TAIL, "the directory is in the tail");
    h.storage
        .set_etag(&key(1), "0123456789abcdef0123456789abcdef");
    // The builder is right: an independent reader finds the entry past 4 GiB.
    {
        let mut zip = zip::ZipArchive::new(std::fs::File::open(&path).unwrap()).unwrap();
        assert!(zip.by_name("after.txt").unwrap().header_start() > 1 << 32);
        assert_eq!(zip.by_name("huge.bin").unwrap().size(), HUGE);
    }

    // The storage reads a step made, as `Range` header values.
    let s3 = h.storage.s3();
    let counted = || -> Vec<String> {
        match (&tap, s3) {
            (Some(tap), _) => tap
                .ranges
                .lock()
                .unwrap()
                .iter()
                .map(|r| match r {
                    Some(object_store::GetRange::Bounded(r)) => {
                        format!("bytes={}-{}", r.start, r.end - 1)
                    }
                    Some(object_store::GetRange::Suffix(n)) => format!("bytes=-{n}"),
                    other => format!("{other:?}"),
                })
                .collect(),
            // Proxied downloads: the backend's storage reads are the gateway's, plus the one
            // byte each locate asks for (`bytes=0-0`, counted in tests/upstream/round_trips.rs).
            (None, Some(s3)) => s3
                .get_ranges()
                .into_iter()
                .map(|r| r.unwrap_or_else(|| "the whole object".to_owned()))
                .filter(|r| kind != Kind::UpstreamProxy || r != "bytes=0-0")
                .collect(),
            (None, None) => unreachable!("upstream kinds have an S3 server"),
        }
    };
    let reads_since = |from: usize| counted()[from..].to_vec();
    if let Some(tap) = &tap {
        let m = mark(tap);
        expect_entry(&h, 1, "after.txt", AFTER).await;
        assert_eq!(
            since(tap, &m),
            vec![suffix(TAIL)],
            "{kind:?}: no HEAD, the tail only"
        );
    } else {
        let m = counted().len();
        expect_entry(&h, 1, "after.txt", AFTER).await;
        assert_eq!(reads_since(m), [format!("bytes=-{TAIL}")], "{kind:?}");
    }

    // The last 100 bytes of the 4,200 MiB stored entry: in the tail the archive was opened
    // with, so only the local header (not in the tail) is read.
    let m = counted().len();
    let body = ranged(&h, "huge.bin", &((HUGE - 100)..HUGE)).await;
    assert_eq!(&body[..], &[0u8; 100][..], "{kind:?}");
    assert_eq!(
        reads_since(m),
        ["bytes=0-29"],
        "{kind:?}: the local header only"
    );

    // 20 bytes across the entry's 4 GiB mark: the local header, then just the range.
    let m = counted().len();
    let want_range = (1u64 << 32) - 10..(1u64 << 32) + 10;
    let body = ranged(&h, "huge.bin", &want_range).await;
    assert_eq!(&body[..], &[0u8; 20][..], "{kind:?}");
    let just_the_range = format!(
        "bytes={}-{}",
        HUGE_DATA_START + want_range.start,
        HUGE_DATA_START + want_range.end - 1
    );
    assert_eq!(
        reads_since(m),
        ["bytes=0-29".to_owned(), just_the_range],
        "{kind:?}: local header, then just the range"
    );

    // A suffix range, and a HEAD that announces the whole size.
    let response = h.get_range(&entry_path(1, "huge.bin"), "bytes=-10").await;
    assert_eq!(response.status(), 206);
    let want_range = format!("bytes {}-{}/{HUGE}", HUGE - 10, HUGE - 1);
    assert_eq!(
        header(&response, "content-range"),
        Some(want_range.as_str())
    );
    assert_eq!(&response.bytes().await.unwrap()[..], &[0u8; 10][..]);
    let response = h.head(&entry_path(1, "huge.bin"), Some(TOKEN)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        header(&response, "content-length"),
        Some(HUGE.to_string().as_str())
    );
    if let Some(tap) = &tap {
        let heads = tap.heads.load(std::sync::atomic::Ordering::SeqCst);
        assert_eq!(heads, 0, "{kind:?}: a HEAD request to storage");
    }
}

/// GET `range` of an entry of job 1: a 206 with its Content-Range; the body.
async fn ranged(h: &Harness, name: &str, range: &Range<u64>) -> bytes::Bytes {
    let value = format!("bytes={}-{}", range.start, range.end - 1);
    let response = h.get_range(&entry_path(1, name), &value).await;
    assert_eq!(response.status(), 206, "{name} {range:?}");
    let want = format!("bytes {}-{}/{HUGE}", range.start, range.end - 1);
    assert_eq!(header(&response, "content-range"), Some(want.as_str()));
    let length = (range.end - range.start).to_string();
    assert_eq!(header(&response, "content-length"), Some(length.as_str()));
    response.bytes().await.unwrap()
}
