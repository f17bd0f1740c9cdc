//! Entries the gateway cannot decode (encrypted, an unknown compression method): 501 with
//! the reason, while the archive's other entries are served as usual.

use serde_json::json;

use crate::common::fixture;
use crate::common::storage::Kind;
use crate::common::zips::{le16, le32, put16, CENTRAL_HEADER, END_OF_DIRECTORY, LOCAL_HEADER};
use crate::fixtures::{
    by_job, by_ref, entry, get, harness, head, sha, ENCRYPTED_JOB, UNKNOWN_METHOD_JOB,
};

on_every_source! {
    encrypted_and_unknown_method_entries_are_501 => unsupported_entries;
}

#[derive(Clone, Copy)]
pub enum Patch {
    /// General purpose flag bit 0, in the local and the central header.
    Encrypted,
    /// The compression method, in the local and the central header.
    Method(u16),
}

/// The central and local header offsets of `name`, found by walking the central directory
/// of a (non-zip64, comment-free) archive.
fn headers_of(zip: &[u8], name: &str) -> (usize, usize) {
    let eocd = (0..=zip.len() - 22)
        .rev()
        .find(|&at| le32(zip, at) == END_OF_DIRECTORY)
        .expect("an end of central directory record");
    let count = le16(zip, eocd + 10);
    let mut at = le32(zip, eocd + 16) as usize;
    for _ in 0..count {
        assert_eq!(le32(zip, at), CENTRAL_HEADER, "central header at {at}");
        let name_len = le16(zip, at + 28) as usize;
        let extra_len = le16(zip, at + 30) as usize;
        let comment_len = le16(zip, at + 32) as usize;
        if &zip[at + 46..at + 46 + name_len] == name.as_bytes() {
            let local = le32(zip, at + 42) as usize;
            assert_eq!(le32(zip, local), LOCAL_HEADER, "local header at {local}");
            return (at, local);
        }
        at += 46 + name_len + extra_len + comment_len;
    }
    panic!("no {name:?} in the central directory")
}

pub fn patched(file: &str, name: &str, patch: Patch) -> Vec<u8> {
    let mut zip = fixture(file);
    let (central, local) = headers_of(&zip, name);
    match patch {
        Patch::Encrypted => {
            let (central_flags, local_flags) = (le16(&zip, central + 8), le16(&zip, local + 6));
            put16(&mut zip, central + 8, central_flags | 1);
            put16(&mut zip, local + 6, local_flags | 1);
        }
        Patch::Method(method) => {
            put16(&mut zip, central + 10, method);
            put16(&mut zip, local + 8, method);
        }
    }
    // The patch changed what it meant to, and nothing that moves a header.
    assert_eq!(headers_of(&zip, name), (central, local));
    match patch {
        Patch::Encrypted => {
            assert_eq!(le16(&zip, central + 8) & 1, 1);
            assert_eq!(le16(&zip, local + 6) & 1, 1);
        }
        Patch::Method(method) => {
            assert_eq!(
                (le16(&zip, central + 10), le16(&zip, local + 8)),
                (method, method)
            );
        }
    }
    zip
}

async fn unsupported_entries(kind: Kind) {
    let h = harness(kind).await;
    let file = "python-deflate.zip";
    let cases = [
        (
            ENCRYPTED_JOB,
            Patch::Encrypted,
            "501 Not Implemented - entry is encrypted",
        ),
        (
            UNKNOWN_METHOD_JOB,
            Patch::Method(98),
            "501 Not Implemented - compression method 98 is not supported",
        ),
    ];
    for (job, patch, message) in cases {
        h.storage.put(
            &format!("1/{job}/artifacts.zip"),
            &patched(file, "hello.txt", patch),
        );
        for url in [by_job(job, "hello.txt"), by_ref(job, "hello.txt")] {
            for headers in [&[][..], &[("Range", "bytes=0-4")][..]] {
                let got = get(&h, &url, headers).await;
                assert_eq!(got.status, 501, "{url} {headers:?}");
                assert_eq!(got.json(), json!({ "message": message }), "{url}");
                assert_eq!(got.header("content-type"), Some("application/json"));
                got.assert_hardened(&url);
            }
            let got = head(&h, &url, &[]).await;
            assert_eq!(got.status, 501, "HEAD {url}");
            assert!(got.body.is_empty());
        }
        // The archive's other entries are served as usual.
        let deep = entry(file, "dir/nested/deep.txt");
        let got = get(&h, &by_job(job, "dir/nested/deep.txt"), &[]).await;
        assert_eq!(got.status, 200);
        assert_eq!(sha(&got.body), deep.sha256);
    }
}
