//! Directories that declare more entries than they hold, or more than `zip.max_entries`
//! allows: refused promptly and without allocating for what they declare.

use super::zip_writer::{build, zip64_end, Spec};
use super::{assert_bad_archive, backend, base_mib, entry_url, get, key, PROMPT, SMALL_CASE_MIB};
use crate::support::{within, Gateway, TempDir};

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
