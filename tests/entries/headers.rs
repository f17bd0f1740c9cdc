//! The headers of the by-job and raw-by-ref endpoints: Content-Type and -Disposition
//! (inline only for safe types by ref), lengths, HEAD, and the security headers on every
//! answer.

use std::collections::BTreeSet;

use crate::common::storage::Kind;
use crate::fixtures::{
    by_job, by_ref, enc, entry, get, harness, head, job, raw_request, sha, ENCRYPTED_JOB,
};
use crate::unsupported::{patched, Patch};

on_every_source! {
    by_job_headers => by_job_headers;
    raw_by_ref_shows_only_safe_types_inline => raw_by_ref_presentation;
    every_answer_carries_the_security_headers => every_answer_is_hardened;
}

/// `attachment; filename="<ASCII fallback>"; filename*=UTF-8''<star>`; the fallback is the
/// base name itself when that is plain ASCII.
fn assert_attachment(disposition: &str, base_name: &str, star: &str) {
    let fallback = disposition
        .strip_prefix("attachment; filename=\"")
        .and_then(|rest| rest.strip_suffix(&format!("\"; filename*=UTF-8''{star}")))
        .unwrap_or_else(|| panic!("{base_name}: {disposition}"));
    assert!(
        fallback.is_ascii() && !fallback.contains('"') && !fallback.is_empty(),
        "{base_name}: {disposition}"
    );
    if base_name.is_ascii() {
        assert_eq!(fallback, base_name, "{disposition}");
    }
}

async fn by_job_headers(kind: Kind) {
    let h = harness(kind).await;
    // (archive, entry, Content-Type, filename* value)
    let cases = [
        (
            "python-deflate.zip",
            "site/index.html",
            "text/html",
            "index.html",
        ),
        (
            "python-deflate.zip",
            "site/logo.svg",
            "image/svg+xml",
            "logo.svg",
        ),
        (
            "python-deflate.zip",
            "site/image.png",
            "image/png",
            "image.png",
        ),
        (
            "python-deflate.zip",
            "docs/report.pdf",
            "application/pdf",
            "report.pdf",
        ),
        ("python-deflate.zip", "hello.txt", "text/plain", "hello.txt"),
        (
            "python-deflate.zip",
            "data/random.bin",
            "application/octet-stream",
            "random.bin",
        ),
        ("infozip-stdin.zip", "-", "application/octet-stream", "-"),
        (
            "python-deflate.zip",
            "names/with space.txt",
            "text/plain",
            "with%20space.txt",
        ),
        (
            "python-deflate.zip",
            "names/hash#sign.txt",
            "text/plain",
            "hash%23sign.txt",
        ),
        (
            "python-deflate.zip",
            "names/question?.txt",
            "text/plain",
            "question%3F.txt",
        ),
        (
            "python-deflate.zip",
            "names/plus+sign.txt",
            "text/plain",
            "plus+sign.txt",
        ),
        (
            "python-deflate.zip",
            "names/été.txt",
            "text/plain",
            "%C3%A9t%C3%A9.txt",
        ),
        (
            "python-deflate.zip",
            "names/日本語.txt",
            "text/plain",
            "%E6%97%A5%E6%9C%AC%E8%AA%9E.txt",
        ),
        ("cp437.zip", "naïve/ü.txt", "text/plain", "%C3%BC.txt"),
    ];
    for (file, name, content_type, star) in cases {
        let e = entry(file, name);
        let url = by_job(job(file), &enc(name));
        let base_name = name.rsplit('/').next().unwrap();
        let got = get(&h, &url, &[]).await;
        assert_eq!(got.status, 200, "{url}");
        assert_eq!(got.header("content-type"), Some(content_type), "{url}");
        assert_attachment(
            got.header("content-disposition").expect("a disposition"),
            base_name,
            star,
        );
        assert_eq!(
            got.header("content-length"),
            Some(e.size.to_string().as_str()),
            "{url}"
        );
        assert_eq!(got.header("accept-ranges"), Some("bytes"), "{url}");
        assert_eq!(got.header("content-range"), None, "{url}");
        let etag = got.etag();
        got.assert_hardened(&url);
        assert_eq!(sha(&got.body), e.sha256, "{url}");

        // HEAD: the same headers, no body.
        let headed = head(&h, &url, &[]).await;
        assert_eq!(headed.status, 200, "HEAD {url}");
        for name in [
            "content-type",
            "content-disposition",
            "content-length",
            "accept-ranges",
        ] {
            assert_eq!(headed.header(name), got.header(name), "HEAD {url}: {name}");
        }
        assert_eq!(headed.etag(), etag, "HEAD {url}");
        assert!(headed.body.is_empty(), "HEAD {url}");
        headed.assert_hardened(&url);
    }
}

async fn raw_by_ref_presentation(kind: Kind) {
    let h = harness(kind).await;
    let file = "python-deflate.zip";
    let job = job(file);
    // (entry, Content-Type, inline)
    let cases = [
        ("site/index.html", "text/html", false),
        ("site/logo.svg", "image/svg+xml", false),
        ("site/image.png", "image/png", true),
        ("docs/report.pdf", "application/pdf", true),
        ("hello.txt", "text/plain; charset=utf-8", true),
        ("site/style.css", "text/plain; charset=utf-8", true),
        ("names/été.txt", "text/plain; charset=utf-8", true),
        ("data/random.bin", "application/octet-stream", false),
    ];
    for (name, content_type, inline) in cases {
        let e = entry(file, name);
        let url = by_ref(job, &enc(name));
        let got = get(&h, &url, &[]).await;
        assert_eq!(got.status, 200, "{url}");
        assert_eq!(got.header("content-type"), Some(content_type), "{url}");
        let disposition = got.header("content-disposition").expect("a disposition");
        if inline {
            assert_eq!(disposition, "inline", "{url}");
        } else {
            let base_name = name.rsplit('/').next().unwrap();
            assert_attachment(disposition, base_name, base_name);
        }
        assert_eq!(
            got.header("content-length"),
            Some(e.size.to_string().as_str()),
            "{url}"
        );
        assert_eq!(got.header("accept-ranges"), Some("bytes"), "{url}");
        got.etag();
        got.assert_hardened(&url);
        assert_eq!(sha(&got.body), e.sha256, "{url}");

        // By job id the same entry is always a download.
        let by_id = get(&h, &by_job(job, &enc(name)), &[]).await;
        assert!(
            by_id
                .header("content-disposition")
                .is_some_and(|d| d.starts_with("attachment; ")),
            "{name}: {:?}",
            by_id.header("content-disposition")
        );
    }
    // Scripts are downloads whatever name mime_guess gives their type.
    let url = by_ref(job, "site/app.js");
    let got = get(&h, &url, &[]).await;
    assert_eq!(got.status, 200);
    assert!(
        got.header("content-type")
            .is_some_and(|t| t.contains("javascript")),
        "{:?}",
        got.header("content-type")
    );
    assert_attachment(
        got.header("content-disposition").unwrap(),
        "app.js",
        "app.js",
    );
    assert_eq!(sha(&got.body), entry(file, "site/app.js").sha256);
    got.assert_hardened(&url);
}

async fn every_answer_is_hardened(kind: Kind) {
    let h = harness(kind).await;
    h.storage.put(
        &format!("1/{ENCRYPTED_JOB}/artifacts.zip"),
        &patched("python-deflate.zip", "hello.txt", Patch::Encrypted),
    );
    let job = job("python-deflate.zip");
    let hello = by_job(job, "hello.txt");
    let etag = get(&h, &hello, &[]).await.etag();
    let mut statuses = BTreeSet::new();
    let answers = [
        get(&h, &hello, &[]).await,
        head(&h, &hello, &[]).await,
        get(&h, &by_ref(job, "site/index.html"), &[]).await,
        get(&h, &hello, &[("Range", "bytes=0-4")]).await,
        get(&h, &hello, &[("If-None-Match", etag.as_str())]).await,
        get(&h, &hello, &[("Range", "bytes=100-")]).await,
        get(&h, &by_job(job, "not/here.txt"), &[]).await,
        get(&h, &by_job(job, "dir/"), &[]).await,
        get(&h, &by_job(job, "hello%00.txt"), &[]).await,
        get(&h, &by_ref(job, "%FF"), &[]).await,
        raw_request(
            &h,
            "GET",
            format!("/api/v4{}", by_job(job, "../x")).as_bytes(),
        )
        .await,
        get(&h, &by_job(ENCRYPTED_JOB, "hello.txt"), &[]).await,
    ];
    for got in &answers {
        got.assert_hardened(&format!("a {} answer", got.status));
        statuses.insert(got.status);
    }
    let want: BTreeSet<u16> = [200, 206, 304, 400, 404, 416, 501].into();
    assert_eq!(statuses, want);
}
