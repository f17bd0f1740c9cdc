//! Archives in object storage: a fresh working presigned URL on every redirect, keys in
//! GitLab's hashed `@final` shape, proxy mode streaming the bytes with ranges and
//! conditionals, and the presign TTL making URLs expire.

use std::time::{Duration, Instant};

use sample_backend::DownloadMode;

use crate::common;
use crate::common::JOB_TOKEN;
use crate::support::{archive_bytes, location, world, DEMO, SHA256_OF_1};

#[tokio::test]
async fn redirect_is_a_fresh_working_presigned_url_every_time() {
    let w = world(DownloadMode::Redirect, None).await;
    let bytes = archive_bytes("11");
    w.upload(11, &bytes);
    let first = w.get("/1/jobs/11/artifacts", &[DEMO]).await;
    assert_eq!(first.status(), 302);
    assert_eq!(common::header(&first, "content-type"), Some("text/plain"));
    let a = location(&first);
    let second = w.get("/1/jobs/11/artifacts", &[DEMO]).await;
    let b = location(&second);
    assert_ne!(a, b, "every answer is signed afresh");
    let signature = |url: &str| {
        url.split('&')
            .find(|p| p.contains("X-Amz-Signature="))
            .map(str::to_owned)
    };
    assert_ne!(signature(&a), signature(&b));
    assert!(signature(&a).is_some(), "{a}");
    let key = w.backend.archive_key(11).unwrap();
    let without_query = |url: &str| url.split('?').next().unwrap().to_owned();
    assert_eq!(without_query(&a), without_query(&b), "same object");
    assert!(
        without_query(&a).ends_with(&key.replace('@', "%40")) || without_query(&a).ends_with(&key),
        "{a} names {key}"
    );
    // The URLs work without any credentials, and give the uploaded bytes.
    let plain = reqwest::Client::new();
    for url in [&a, &b] {
        let got = plain.get(url).send().await.unwrap();
        assert_eq!(got.status(), 200, "{url}");
        assert_eq!(got.bytes().await.unwrap().as_ref(), bytes.as_slice());
    }
    // HEAD: Grape answers a non-GET with 303, to a URL signed for HEAD.
    let head = w
        .send(reqwest::Method::HEAD, "/1/jobs/11/artifacts", &[DEMO])
        .await;
    assert_eq!(head.status(), 303);
    let head_url = location(&head);
    let probed = plain.head(&head_url).send().await.unwrap();
    assert_eq!(probed.status(), 200);
    assert_eq!(
        common::header(&probed, "content-length"),
        Some(bytes.len().to_string().as_str())
    );
    // Every request was recorded.
    assert_eq!(
        w.backend
            .count("GET", "/api/v4/projects/1/jobs/11/artifacts"),
        2
    );
    assert_eq!(
        w.backend
            .count("HEAD", "/api/v4/projects/1/jobs/11/artifacts"),
        1
    );
}

#[tokio::test]
async fn archive_key_has_gitlabs_hashed_final_shape() {
    let w = world(DownloadMode::Redirect, None).await;
    let key = w.backend.archive_key(11).unwrap();
    let parts: Vec<&str> = key.split('/').collect();
    assert_eq!(&parts[..4], &["6b", "86", SHA256_OF_1, "@final"], "{key}");
    let lower_hex = |s: &str| s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    assert_eq!(
        parts[4..].iter().map(|p| p.len()).collect::<Vec<_>>(),
        vec![2, 2, 60],
        "{key}"
    );
    assert!(parts[4..].iter().all(|p| lower_hex(p)), "{key}");
    // Chosen once: asking again gives the same key; another job's differs.
    assert_eq!(w.backend.archive_key(11).unwrap(), key);
    let other = w.backend.archive_key(15).unwrap();
    assert!(other.starts_with(&format!("6b/86/{SHA256_OF_1}/@final/")));
    assert_ne!(other, key);
    assert_eq!(w.backend.archive_key(12), None, "no archive, no key");
}

#[tokio::test]
async fn proxy_mode_streams_bytes_with_range_and_conditionals() {
    let w = world(DownloadMode::Proxy, None).await;
    let bytes = archive_bytes("proxied");
    w.upload(11, &bytes);
    let r = w
        .get("/1/jobs/11/artifacts", &[("JOB-TOKEN", JOB_TOKEN)])
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(common::header(&r, "content-type"), Some("application/zip"));
    assert_eq!(
        common::header(&r, "content-disposition"),
        Some("attachment; filename=\"artifacts.zip\"; filename*=UTF-8''artifacts.zip")
    );
    assert_eq!(
        common::header(&r, "content-length"),
        Some(bytes.len().to_string().as_str())
    );
    let etag = common::header(&r, "etag").expect("an ETag").to_owned();
    assert_eq!(r.bytes().await.unwrap().as_ref(), bytes.as_slice());

    let r = w
        .get("/1/jobs/11/artifacts", &[DEMO, ("Range", "bytes=2-9")])
        .await;
    assert_eq!(r.status(), 206);
    assert_eq!(
        common::header(&r, "content-range"),
        Some(format!("bytes 2-9/{}", bytes.len()).as_str())
    );
    assert_eq!(r.bytes().await.unwrap().as_ref(), &bytes[2..10]);

    let past = format!("bytes={}-", bytes.len() + 10);
    let r = w
        .get("/1/jobs/11/artifacts", &[DEMO, ("Range", &past)])
        .await;
    assert_eq!(r.status(), 416);

    let r = w
        .get("/1/jobs/11/artifacts", &[DEMO, ("If-None-Match", &etag)])
        .await;
    assert_eq!(r.status(), 304);
    assert!(r.bytes().await.unwrap().is_empty());

    let head = w
        .send(reqwest::Method::HEAD, "/1/jobs/11/artifacts", &[DEMO])
        .await;
    assert_eq!(head.status(), 200);
    assert_eq!(
        common::header(&head, "content-length"),
        Some(bytes.len().to_string().as_str())
    );
    // The single-file routes are still never to be asked.
    let r = w.get("/1/jobs/11/artifacts/a.txt", &[DEMO]).await;
    assert_eq!(r.status(), 500);
    assert_eq!(
        common::header(&r, "x-sample-backend"),
        Some("artifact-bytes-requested")
    );
}

#[tokio::test]
async fn presign_ttl_makes_urls_expire() {
    let w = world(DownloadMode::Redirect, Some(Duration::from_secs(1))).await;
    w.upload(11, &archive_bytes("11"));
    let url = location(&w.get("/1/jobs/11/artifacts", &[DEMO]).await);
    let plain = reqwest::Client::new();
    assert_eq!(plain.get(&url).send().await.unwrap().status(), 200);
    // Storage refuses it once its second has passed; a new answer works again.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let status = plain.get(&url).send().await.unwrap().status();
        if status == 403 {
            break;
        }
        assert!(Instant::now() < deadline, "URL never expired ({status})");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let fresh = location(&w.get("/1/jobs/11/artifacts", &[DEMO]).await);
    assert_eq!(plain.get(&fresh).send().await.unwrap().status(), 200);
}
