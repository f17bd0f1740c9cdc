//! How many storage round trips an entry request costs, cold and warm, with the directory
//! in the tail read or before it, and for 50 concurrent requests into one cold archive.
//! The expected reads come from where the `zip` crate put each record.

use crate::common::storage::Kind;
use crate::common::zips::{self, CompressionMethod};
use crate::support::{bounded, expect_entry, fetch, key, mark, since, suffix, tapped, TAIL};

on_both_storages! {
    round_trips => round_trips;
    concurrent_cold_requests_read_the_tail_once => concurrent_cold_requests;
}

/// 1 MiB stored first (outside a 128 KiB tail), then `small` small entries (inside it),
/// all stored so the layout is predictable.
struct RoundTripArchive {
    zip: zips::Built,
    big: Vec<u8>,
    small: Vec<(String, Vec<u8>)>,
}

fn round_trip_archive(small: usize) -> RoundTripArchive {
    let big = zips::noise(1, 1024 * 1024);
    let small: Vec<(String, Vec<u8>)> = (0..small)
        .map(|i| {
            (
                format!("small/entry-{i:02}.txt"),
                format!("small entry number {i}\n").into_bytes(),
            )
        })
        .collect();
    let mut entries: Vec<(&str, &[u8])> = vec![("big.bin", &big)];
    for (name, bytes) in &small {
        entries.push((name, bytes));
    }
    RoundTripArchive {
        zip: zips::build_stored(&entries),
        big,
        small,
    }
}

async fn round_trips(kind: Kind) {
    let archive = round_trip_archive(60);
    let zip = &archive.zip;
    assert!(
        zip.directory_in_tail(TAIL),
        "the directory should fit the tail"
    );
    assert!(!zip.in_tail("big.bin", TAIL));
    let (small_a, small_a_bytes) = &archive.small[7];
    let (small_b, small_b_bytes) = &archive.small[59];
    assert!(zip.in_tail(small_a, TAIL) && zip.in_tail(small_b, TAIL));

    let (h, tap) = tapped(kind, 1..=3, TAIL).await;
    for job in 1..=3 {
        h.storage.put(&key(job), &zip.bytes);
    }

    // (a) Cold, entry inside the tail: the opening read is the only one.
    let m = mark(&tap);
    expect_entry(&h, 1, small_a, small_a_bytes).await;
    assert_eq!(
        since(&tap, &m),
        vec![suffix(TAIL)],
        "{kind:?} (a) cold, in tail"
    );

    // (b) Cold, entry outside the tail: opening read + one read of the entry's span.
    let m = mark(&tap);
    expect_entry(&h, 2, "big.bin", &archive.big).await;
    assert_eq!(
        since(&tap, &m),
        vec![suffix(TAIL), bounded(zip.span("big.bin"))],
        "{kind:?} (b) cold, outside the tail"
    );

    // (d) Warm: one read per entry outside the tail, none for one inside it.
    for _ in 0..2 {
        let m = mark(&tap);
        expect_entry(&h, 2, "big.bin", &archive.big).await;
        assert_eq!(
            since(&tap, &m),
            vec![bounded(zip.span("big.bin"))],
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

    // (c) A directory larger than a 1 KiB tail read: the directory up to where the tail
    // starts (the rest is in hand) is one read more than (b).
    let small_tail = 1024;
    let directory = &zip.directory;
    assert!(
        directory.end - directory.start > small_tail,
        "the directory must exceed the tail"
    );
    let (h, tap) = tapped(kind, 1..=1, small_tail).await;
    h.storage.put(&key(1), &zip.bytes);
    let m = mark(&tap);
    expect_entry(&h, 1, "big.bin", &archive.big).await;
    assert_eq!(
        since(&tap, &m),
        vec![
            suffix(small_tail),
            bounded(directory.start..zip.tail_start(small_tail)),
            bounded(zip.span("big.bin")),
        ],
        "{kind:?} (c) cold, directory before the tail"
    );
    let m = mark(&tap);
    expect_entry(&h, 1, small_a, small_a_bytes).await;
    assert_eq!(
        since(&tap, &m),
        vec![bounded(zip.span(small_a))],
        "{kind:?} (c) warm"
    );
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
                zips::noise(100 + i, 8 * 1024)
            } else {
                zips::text(100 + i, 20 * 1024)
            };
            (format!("many/file-{i:02}.dat"), bytes, method)
        })
        .collect();
    let refs: Vec<(&str, &[u8], CompressionMethod)> = entries
        .iter()
        .map(|(n, b, m)| (n.as_str(), b.as_slice(), *m))
        .collect();
    let zip = zips::build(&refs);
    assert!(zip.directory_in_tail(TAIL));
    let mut outside: Vec<_> = entries
        .iter()
        .filter(|(n, _, _)| !zip.in_tail(n, TAIL))
        .map(|(n, _, _)| bounded(zip.span(n)))
        .collect();
    assert!(
        !outside.is_empty() && outside.len() < 50,
        "{} entries outside the tail",
        outside.len()
    );

    let (h, tap) = tapped(kind, 1..=1, TAIL).await;
    h.storage.put(&key(1), &zip.bytes);
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
    let suffixes = ranges.iter().filter(|r| **r == suffix(TAIL)).count();
    assert_eq!(
        suffixes, 1,
        "{kind:?}: the tail was read {suffixes} times: {ranges:?}"
    );
    // The other reads, in any order: exactly the spans of the entries outside the tail.
    let mut reads: Vec<_> = ranges.into_iter().filter(|r| *r != suffix(TAIL)).collect();
    let order = |r: &Option<object_store::GetRange>| format!("{r:?}");
    reads.sort_by_key(order);
    outside.sort_by_key(order);
    assert_eq!(reads, outside, "{kind:?}");
    eprintln!(
        "{kind:?}: 50 concurrent cold requests: {} GETs, {suffixes} tail read, {} entry reads",
        reads.len() + 1,
        outside.len()
    );
    assert_eq!(tap.heads.load(std::sync::atomic::Ordering::SeqCst), 0);
}
