//! How artifact paths are decoded and refused: reserved characters, Unicode names in every
//! zip name encoding, traversal, NUL and bad UTF-8 (400 before anyone is asked about the
//! job), directories and missing names (404).

use std::collections::BTreeSet;

use crate::common::storage::Kind;
use crate::fixtures::{
    archive, bad_request, by_job, by_ref, enc, entry, get, harness, head, job, not_found,
    raw_request, sha, ENCRYPTED_JOB,
};

on_every_source! {
    names_with_reserved_characters => reserved_characters;
    unicode_names_in_every_encoding => unicode_names;
    traversal_nul_and_bad_utf8_are_400 => bad_paths;
    directories_and_missing_names_are_404 => directories_and_missing;
}

async fn reserved_characters(kind: Kind) {
    let h = harness(kind).await;
    let file = "python-deflate.zip";
    let job = job(file);
    // (as sent in the URL path, the entry it names)
    let found = [
        ("names/with%20space.txt", "names/with space.txt"),
        ("names/hash%23sign.txt", "names/hash#sign.txt"),
        ("names/question%3F.txt", "names/question?.txt"),
        ("names/plus+sign.txt", "names/plus+sign.txt"),
        ("names/plus%2Bsign.txt", "names/plus+sign.txt"),
        // A literal `%2F` in the entry name is sent as `%252F`.
        ("names/percent%252Fname.txt", "names/percent%2Fname.txt"),
        // An encoded slash in the file path is a slash.
        ("names%2Fwith%20space.txt", "names/with space.txt"),
        ("dir%2Fnested%2Fdeep.txt", "dir/nested/deep.txt"),
    ];
    for (raw, name) in found {
        let want = entry(file, name);
        for url in [by_job(job, raw), by_ref(job, raw)] {
            let got = get(&h, &url, &[]).await;
            assert_eq!(got.status, 200, "{url}");
            assert_eq!(
                got.header("content-length"),
                Some(want.size.to_string().as_str()),
                "{url}"
            );
            assert_eq!(sha(&got.body), want.sha256, "{url}");
            got.assert_hardened(&url);
        }
    }
    // The project named by its encoded path: the same entry.
    let want = entry(file, "names/with space.txt");
    for url in [
        format!("/projects/corpus%2Fapp/jobs/{job}/artifacts/names/with%20space.txt"),
        format!(
            "/projects/corpus%2Fapp/jobs/artifacts/ref-{job}/raw/names/with%20space.txt?job=build"
        ),
    ] {
        let got = get(&h, &url, &[]).await;
        assert_eq!(got.status, 200, "{url}");
        assert_eq!(sha(&got.body), want.sha256, "{url}");
    }
    let missing = [
        // `percent%2Fname.txt` with a real slash: another name.
        "names/percent/name.txt",
        "names/percent%2Fname.txt",
        // `+` is not a space in a path, nor a space a `+`.
        "names/with+space.txt",
        "names/plus%20sign.txt",
    ];
    for raw in missing {
        for url in [by_job(job, raw), by_ref(job, raw)] {
            let got = get(&h, &url, &[]).await;
            assert_eq!(got.status, 404, "{url}");
            assert_eq!(got.json(), not_found(), "{url}");
            got.assert_hardened(&url);
        }
    }
}

async fn unicode_names(kind: Kind) {
    let h = harness(kind).await;
    let mut encodings = BTreeSet::new();
    for file in [
        "python-deflate.zip",
        "jar.zip",
        "infozip-r.zip",
        "7zip-unicode-path.zip",
        "cp437.zip",
    ] {
        let job = job(file);
        let mut checked = 0;
        for e in archive(file).entries.iter().filter(|e| !e.name.is_ascii()) {
            for url in [by_job(job, &enc(&e.name)), by_ref(job, &enc(&e.name))] {
                let got = get(&h, &url, &[]).await;
                assert_eq!(got.status, 200, "{file}: {url}");
                assert_eq!(
                    got.header("content-length"),
                    Some(e.size.to_string().as_str()),
                    "{file}: {url}"
                );
                assert_eq!(sha(&got.body), e.sha256, "{file}: {url}");
            }
            encodings.insert(e.name_encoding.as_str());
            checked += 1;
        }
        assert!(checked >= 2, "{file}: only {checked} non-ASCII names");
    }
    for encoding in ["utf8-flag", "utf8-no-flag", "unicode-path-extra", "cp437"] {
        assert!(encodings.contains(encoding), "no {encoding} name checked");
    }

    // Names are byte-exact: another Unicode spelling or the CP437 reading of the raw UTF-8
    // bytes finds nothing.
    let unflagged = job("infozip-r.zip");
    for name in [
        "names/e\u{301}te\u{301}.txt",
        "names/\u{251c}\u{2310}t\u{251c}\u{2310}.txt",
        "NAMES/ÉTÉ.txt",
    ] {
        let got = get(&h, &by_job(unflagged, &enc(name)), &[]).await;
        assert_eq!(got.status, 404, "{name}");
        assert_eq!(got.json(), not_found(), "{name}");
    }
    let unicode_path = job("7zip-unicode-path.zip");
    let got = get(
        &h,
        &by_job(
            unicode_path,
            &enc("names/\u{251c}\u{2310}t\u{251c}\u{2310}.txt"),
        ),
        &[],
    )
    .await;
    assert_eq!(got.status, 404);

    // Raw UTF-8 in the request line (no percent-encoding) names the same entry.
    let e = entry("infozip-r.zip", "names/été.txt");
    let target = format!("/api/v4{}", by_job(unflagged, "names/été.txt"));
    let got = raw_request(&h, "GET", target.as_bytes()).await;
    assert_eq!(got.status, 200, "{target}");
    assert_eq!(sha(&got.body), e.sha256);

    // A CP437 name spelled with its raw byte (`caf\x82.txt`) is not UTF-8: refused.
    let cp437 = job("cp437.zip");
    for url in [by_job(cp437, "caf%82.txt"), by_ref(cp437, "caf%82.txt")] {
        let got = get(&h, &url, &[]).await;
        assert_eq!(got.status, 400, "{url}");
        assert_eq!(got.json(), bad_request(), "{url}");
    }
    let e = entry("cp437.zip", "café.txt");
    let got = get(&h, &by_job(cp437, "caf%C3%A9.txt"), &[]).await;
    assert_eq!(got.status, 200);
    assert_eq!(sha(&got.body), e.sha256);
}

async fn bad_paths(kind: Kind) {
    let h = harness(kind).await;
    let file = "python-deflate.zip";
    let job = job(file);
    let deep = entry(file, "dir/nested/deep.txt");
    // The raw client itself reaches files.
    for url in [
        by_job(job, "dir/nested/deep.txt"),
        by_ref(job, "dir/nested/deep.txt"),
    ] {
        let got = raw_request(&h, "GET", format!("/api/v4{url}").as_bytes()).await;
        assert_eq!(got.status, 200, "{url}");
        assert_eq!(sha(&got.body), deep.sha256, "{url}");
    }

    h.backend.clear_requests();
    let bad = [
        "../hello.txt",
        "../../../../2/artifacts",
        "%2e%2e/hello.txt",
        "%2E%2E/hello.txt",
        ".%2e/hello.txt",
        "%2e./hello.txt",
        "dir/../hello.txt",
        "dir/%2e%2e/hello.txt",
        "dir%2F..%2Fhello.txt",
        "dir/nested/../../hello.txt",
        "./hello.txt",
        "%2e/hello.txt",
        "dir/./nested/deep.txt",
        "dir/nested/.",
        "dir/..",
        "..",
        ".",
        "hello.txt%00",
        "hello%00.txt",
        "%00",
        "%FF",
        "hello%FF.txt",
        "names/%C3.txt",
        "names/%C3%28.txt",
    ];
    for path in bad {
        for url in [by_job(job, path), by_ref(job, path)] {
            let target = format!("/api/v4{url}");
            for method in ["GET", "HEAD"] {
                let got = raw_request(&h, method, target.as_bytes()).await;
                assert_eq!(got.status, 400, "{method} {target}");
                if method == "GET" {
                    assert_eq!(got.json(), bad_request(), "{method} {target}");
                } else {
                    assert!(got.body.is_empty(), "{method} {target}");
                }
                got.assert_hardened(&target);
            }
        }
    }
    // A ref with a `..` segment, however spelled, is refused the same way.
    for ref_raw in ["..%2Fref-1", "%2e%2e", "ref-1%2F..%2Fref-1"] {
        let target = format!("/api/v4/projects/1/jobs/artifacts/{ref_raw}/raw/hello.txt?job=build");
        let got = raw_request(&h, "GET", target.as_bytes()).await;
        assert_eq!(got.status, 400, "{target}");
        assert_eq!(got.json(), bad_request(), "{target}");
    }
    // Refused before anyone is asked about the job.
    let asked: Vec<String> = h
        .backend
        .requests()
        .iter()
        .map(|r| format!("{} {}", r.method, r.path_and_query))
        .collect();
    assert!(asked.is_empty(), "the backend was asked: {asked:?}");

    // Dots that are not whole segments are ordinary characters: looked up, absent.
    for path in [
        "..hello.txt",
        "hello.txt..",
        "dir/...",
        ".../hello.txt",
        ".hidden",
    ] {
        for url in [by_job(job, path), by_ref(job, path)] {
            let target = format!("/api/v4{url}");
            let got = raw_request(&h, "GET", target.as_bytes()).await;
            assert_eq!(got.status, 404, "{target}");
            assert_eq!(got.json(), not_found(), "{target}");
        }
    }
}

async fn directories_and_missing(kind: Kind) {
    let h = harness(kind).await;
    // python-deflate.zip has `dir/`-style entries; infozip-pipe.zip has none, so its
    // directories exist only as prefixes of entry names.
    for file in ["python-deflate.zip", "infozip-pipe.zip"] {
        let job = job(file);
        let deep = entry(file, "dir/nested/deep.txt");
        let got = get(&h, &by_job(job, "dir/nested/deep.txt"), &[]).await;
        assert_eq!((got.status, sha(&got.body)), (200, deep.sha256.clone()));
        let names = [
            "dir/",
            "dir",
            "dir/nested/",
            "dir/nested",
            "emptydir/",
            "emptydir",
            "names/",
            "names",
            "text/",
            "not/here.txt",
            "HELLO.TXT",
            "hello.txt/",
            "dir/nested/deep.txt/",
            "dir//nested/deep.txt",
            "%2Fhello.txt",
            "hello.tx",
            "hello.txt%20",
        ];
        for name in names {
            for url in [by_job(job, name), by_ref(job, name)] {
                let got = get(&h, &url, &[]).await;
                assert_eq!(got.status, 404, "{file}: {url}");
                assert_eq!(got.json(), not_found(), "{file}: {url}");
                got.assert_hardened(&url);
                let got = head(&h, &url, &[]).await;
                assert_eq!(got.status, 404, "HEAD {file}: {url}");
                assert!(got.body.is_empty(), "HEAD {file}: {url}");
            }
        }
    }
    // A job the backend says has an archive that storage does not hold.
    let got = get(&h, &by_job(ENCRYPTED_JOB, "hello.txt"), &[]).await;
    assert_eq!(got.status, 404);
    assert_eq!(got.json(), not_found());
}
