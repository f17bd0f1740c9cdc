//! Overlapping entries and entries whose sizes lie (stored and deflated, in the directory,
//! the local header or both), each asked for with and without `Range`: a 502 naming the
//! fault, never a byte from outside the entry, and the honest neighbour still served.

use super::zip_writer::{build, Spec};
use super::{
    assert_bad_archive, backend, base_mib, entry_url, get, key, Outcome, PROMPT, SMALL_CASE_MIB,
};
use crate::support::{within, Gateway, TempDir};

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
