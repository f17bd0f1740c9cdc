//! A download by job id: byte-exact with GitLab's headers, `HEAD` with headers only,
//! every range form as one ranged storage read (nothing before the range read and
//! discarded), unsatisfiable ranges as 416, conditional requests, and S3 downloads
//! redirected to a presigned URL.

use sample_backend::BackendBuilder;

use crate::common;
use crate::common::storage::Kind;
use crate::common::{fixture, header, json, Harness, TOKEN};
use crate::support::{assert_no_artifact_bytes_asked, harness, DISPOSITION};

on_every_source! {
    archive_download_is_byte_exact_with_gitlab_headers => download_is_byte_exact;
    head_answers_headers_only => head_answers_headers_only;
    every_range_form_is_a_ranged_storage_read => ranges;
    unsatisfiable_ranges_are_416 => unsatisfiable;
    conditional_requests => conditional;
}

async fn download_is_byte_exact(kind: Kind) {
    let (h, archive) = harness(kind).await;
    let response = h.get("/projects/1/jobs/104/artifacts", Some(TOKEN)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "content-type"), Some("application/zip"));
    assert_eq!(header(&response, "content-disposition"), Some(DISPOSITION));
    assert_eq!(
        header(&response, "content-length"),
        Some(archive.len().to_string().as_str())
    );
    assert_eq!(header(&response, "accept-ranges"), Some("bytes"));
    assert_eq!(header(&response, "x-content-type-options"), Some("nosniff"));
    let etag = header(&response, "etag").expect("an ETag").to_owned();
    assert!(
        etag.starts_with('"') && etag.ends_with('"') && etag.len() > 2,
        "{etag}"
    );
    assert!(header(&response, "last-modified")
        .unwrap()
        .ends_with(" GMT"));
    assert_eq!(response.bytes().await.unwrap(), archive);

    // Another project, another archive, and the same request twice gives the same ETag.
    let other = h.get("/projects/2/jobs/201/artifacts", Some(TOKEN)).await;
    assert_eq!(other.bytes().await.unwrap(), fixture("python-deflate.zip"));
    let again = h.get("/projects/1/jobs/104/artifacts", Some(TOKEN)).await;
    assert_eq!(header(&again, "etag"), Some(etag.as_str()));
    assert_no_artifact_bytes_asked(&h);
}

async fn head_answers_headers_only(kind: Kind) {
    let (h, archive) = harness(kind).await;
    let response = h.head("/projects/1/jobs/104/artifacts", Some(TOKEN)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        header(&response, "content-length"),
        Some(archive.len().to_string().as_str())
    );
    assert_eq!(header(&response, "content-disposition"), Some(DISPOSITION));
    assert!(header(&response, "etag").is_some());
    assert!(response.bytes().await.unwrap().is_empty());
    let ranged = h
        .request(http::Method::HEAD, "/projects/1/jobs/104/artifacts")
        .header("Range", "bytes=10-19")
        .send()
        .await
        .unwrap();
    assert_eq!(ranged.status(), 206);
    assert_eq!(
        header(&ranged, "content-range"),
        Some(format!("bytes 10-19/{}", archive.len()).as_str())
    );
    assert_no_artifact_bytes_asked(&h);
}

async fn ranges(kind: Kind) {
    let (h, archive) = harness(kind).await;
    let len = archive.len();
    let cases = [
        ("bytes=0-99", 0..100),
        ("bytes=1000-", 1000..len),
        ("bytes=-500", len - 500..len),
        (
            &format!("bytes={}-{}", len - 10, len + 1000) as &str,
            len - 10..len,
        ),
        (&format!("bytes=-{}", len * 2) as &str, 0..len),
    ];
    for (range, expected) in cases {
        let response = h.get_range("/projects/1/jobs/104/artifacts", range).await;
        assert_eq!(response.status(), 206, "{range}");
        assert_eq!(
            header(&response, "content-range"),
            Some(format!("bytes {}-{}/{len}", expected.start, expected.end - 1).as_str()),
            "{range}"
        );
        assert_eq!(
            header(&response, "content-length"),
            Some(expected.len().to_string().as_str())
        );
        assert_eq!(
            response.bytes().await.unwrap(),
            &archive[expected],
            "{range}"
        );
    }
    // Several ranges or a malformed header: the whole archive (RFC 9110 lets us ignore it).
    for range in ["bytes=0-1,5-6", "bytes=5-1", "lines=1-2"] {
        let response = h.get_range("/projects/1/jobs/104/artifacts", range).await;
        assert_eq!(response.status(), 200, "{range}");
        assert_eq!(response.bytes().await.unwrap().len(), len);
    }
}

on_both_storages! {
    ranges_are_read_from_storage_not_skipped => ranged_reads;
}

/// Ranges go to storage as ranged reads: nothing before the range is read and discarded.
async fn ranged_reads(kind: Kind) {
    let h = Harness::tapped(
        kind,
        BackendBuilder::sample_data(),
        common::storage::Tap::new,
        |_| {},
    )
    .await;
    let archive = fixture("python-stored.zip");
    h.storage.put("1/104/artifacts.zip", &archive);
    let response = h
        .get_range("/projects/1/jobs/104/artifacts", "bytes=200000-200099")
        .await;
    assert_eq!(response.bytes().await.unwrap(), &archive[200000..200100]);
    let tap = h.tap.as_ref().unwrap();
    assert_eq!(
        tap.bytes_read.load(std::sync::atomic::Ordering::SeqCst),
        100,
        "{kind:?}"
    );
    assert_eq!(
        tap.requests(),
        1,
        "{kind:?}: one storage request per download"
    );
}

async fn unsatisfiable(kind: Kind) {
    let (h, archive) = harness(kind).await;
    for range in [
        format!("bytes={}-", archive.len()),
        format!("bytes={}-{}", archive.len() + 5, archive.len() + 9),
        "bytes=-0".to_owned(),
    ] {
        let response = h.get_range("/projects/1/jobs/104/artifacts", &range).await;
        assert_eq!(response.status(), 416, "{range}");
        assert_eq!(
            header(&response, "content-range"),
            Some(format!("bytes */{}", archive.len()).as_str()),
            "{range}"
        );
        assert_eq!(json(response).await["message"], "416 Range Not Satisfiable");
    }
}

async fn conditional(kind: Kind) {
    let (h, archive) = harness(kind).await;
    let first = h.get("/projects/1/jobs/104/artifacts", Some(TOKEN)).await;
    let etag = header(&first, "etag").unwrap().to_owned();
    let modified = header(&first, "last-modified").unwrap().to_owned();
    drop(first);
    let get = |name: &'static str, value: String| {
        h.request(http::Method::GET, "/projects/1/jobs/104/artifacts")
            .header(name, value)
    };
    let not_modified = get("If-None-Match", etag.clone()).send().await.unwrap();
    assert_eq!(not_modified.status(), 304);
    assert_eq!(header(&not_modified, "etag"), Some(etag.as_str()));
    assert!(not_modified.bytes().await.unwrap().is_empty());
    let listed = get("If-None-Match", format!("\"nope\", {etag}"))
        .send()
        .await
        .unwrap();
    assert_eq!(listed.status(), 304);
    let changed = get("If-None-Match", "\"some-other-version\"".into())
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), 200);
    assert_eq!(changed.bytes().await.unwrap(), archive);
    assert_eq!(
        get("If-Modified-Since", modified.clone())
            .send()
            .await
            .unwrap()
            .status(),
        304
    );
    assert_eq!(
        get("If-Modified-Since", "Mon, 01 Jan 2001 00:00:00 GMT".into())
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    // If-Range: a current validator keeps the range, a stale one gets the whole archive.
    let ranged = get("If-Range", etag.clone())
        .header("Range", "bytes=0-9")
        .send()
        .await
        .unwrap();
    assert_eq!(ranged.status(), 206);
    assert_eq!(ranged.bytes().await.unwrap(), &archive[..10]);
    let stale = get("If-Range", "\"stale\"".into())
        .header("Range", "bytes=0-9")
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), 200);
    assert_eq!(stale.bytes().await.unwrap(), archive);
    let by_date = get("If-Range", modified)
        .header("Range", "bytes=0-9")
        .send()
        .await
        .unwrap();
    assert_eq!(by_date.status(), 206);
}

/// With `redirect_downloads`, an authorised GET is answered with a short-lived presigned
/// URL on S3, which serves the same bytes; refusals are still the backend's.
#[tokio::test]
async fn s3_downloads_can_redirect_to_a_presigned_url() {
    let h = Harness::build(BackendBuilder::sample_data(), Kind::S3, None, |c| {
        c.storage.redirect_downloads = true;
        c.storage.presign_ttl = std::time::Duration::from_secs(60);
    })
    .await;
    let archive = fixture("python-deflate.zip");
    h.storage.put("1/104/artifacts.zip", &archive);
    let response = h.get("/projects/1/jobs/104/artifacts", Some(TOKEN)).await;
    assert_eq!(response.status(), 302);
    assert_eq!(header(&response, "cache-control"), Some("no-store"));
    let location = header(&response, "location").unwrap().to_owned();
    assert!(
        location.contains("/artifacts/1/104/artifacts.zip?"),
        "{location}"
    );
    assert!(location.contains("X-Amz-Signature="), "{location}");
    let followed = common::client().get(&location).send().await.unwrap();
    assert_eq!(followed.status(), 200);
    assert_eq!(followed.bytes().await.unwrap(), archive);

    // By ref too; HEAD is answered directly; refusals never reveal a URL.
    let by_ref = h
        .get(
            "/projects/1/jobs/artifacts/main/download?job=build",
            Some(TOKEN),
        )
        .await;
    assert_eq!(by_ref.status(), 302);
    let head = h
        .client
        .head(h.url("/projects/1/jobs/104/artifacts"))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 200);
    let refused = h
        .get("/projects/2/jobs/201/artifacts", Some("outsider-token"))
        .await;
    assert_eq!(refused.status(), 404);
    assert!(header(&refused, "location").is_none());
}
