//! Every entry of every archive written by real zip writers (the corpus under
//! `tests/fixtures/zip`, with sizes and SHA-256 taken from the source files, not from the
//! archives) is served byte-exact; directories and absent names are 404s; the raw endpoint
//! by ref serves the same bytes.

use crate::common::storage::Kind;
use crate::common::{fixture, header, Harness, TOKEN};
use crate::fixtures::{corpus_backend, enc, manifest, sha, Archive};

on_every_source! {
    corpus => every_entry_of_every_archive_is_byte_exact;
}

/// Job `i + 1` has the manifest's archive `i`.
async fn corpus_harness(kind: Kind, archives: &[Archive]) -> Harness {
    let h = Harness::on(kind, corpus_backend(1..=archives.len() as u64)).await;
    for (i, archive) in archives.iter().enumerate() {
        h.storage.put(
            &format!("1/{}/artifacts.zip", i + 1),
            &fixture(&archive.file),
        );
    }
    h
}

async fn every_entry_of_every_archive_is_byte_exact(kind: Kind) {
    let archives = &manifest().archives;
    assert!(archives.len() >= 15, "the corpus is incomplete");
    let h = corpus_harness(kind, archives).await;
    let mut checked = 0;
    for (i, archive) in archives.iter().enumerate() {
        let job = i + 1;
        for entry in &archive.entries {
            let url = format!("/projects/1/jobs/{job}/artifacts/{}", enc(&entry.name));
            let response = h.get(&url, Some(TOKEN)).await;
            assert_eq!(response.status(), 200, "{} {}", archive.file, entry.name);
            assert_eq!(
                header(&response, "content-length"),
                Some(entry.size.to_string().as_str()),
                "{} {}",
                archive.file,
                entry.name
            );
            let body = response
                .bytes()
                .await
                .unwrap_or_else(|e| panic!("{} {}: {e}", archive.file, entry.name));
            assert_eq!(
                body.len() as u64,
                entry.size,
                "{} {}",
                archive.file,
                entry.name
            );
            assert_eq!(sha(&body), entry.sha256, "{} {}", archive.file, entry.name);
            checked += 1;
        }
        for name in archive.directories.iter().chain(&archive.absent) {
            let url = format!("/projects/1/jobs/{job}/artifacts/{}", enc(name));
            let response = h.get(&url, Some(TOKEN)).await;
            assert_eq!(response.status(), 404, "{} {name}", archive.file);
        }
        // By ref, through the raw endpoint, the same bytes.
        let first = &archive.entries[0];
        let url = format!(
            "/projects/1/jobs/artifacts/ref-{job}/raw/{}?job=build",
            enc(&first.name)
        );
        let body = h.get(&url, Some(TOKEN)).await.bytes().await.unwrap();
        assert_eq!(
            sha(&body),
            first.sha256,
            "raw {} {}",
            archive.file,
            first.name
        );
    }
    assert!(checked > 300, "only {checked} entries checked");
}
