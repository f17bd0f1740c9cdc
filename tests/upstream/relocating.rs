//! Located URLs that stop pointing at the archive the gateway opened: a replaced object
//! reopened, an expired URL located once more, an erase taking effect at once, and storage
//! without ETags whose reads are pinned to size and last modification instead.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common;
use crate::common::storage::Kind;
use crate::common::{header, Harness, JOB_TOKEN, TOKEN};
use crate::support::{
    archive_route_count, backend, expect_bytes, get_with, layout, raw_server, start, Raw,
};

// Re-locating

async fn replaced_object(kind: Kind) {
    let h = start(kind, |_| {}).await;
    let (v1, v2) = (layout(1), layout(2));
    h.storage.put("1/11/artifacts.zip", &v1.bytes);
    let token = [("PRIVATE-TOKEN", TOKEN)];
    let entry = "/projects/1/jobs/11/artifacts/big-stored.bin";
    let first = get_with(&h, entry, &token).await;
    let first_etag = header(&first, "etag").unwrap().to_owned();
    assert!(first.bytes().await.unwrap() == v1.big_stored);
    let archive = get_with(&h, "/projects/1/jobs/11/artifacts", &token).await;
    let archive_etag = header(&archive, "etag").unwrap().to_owned();
    assert!(archive.bytes().await.unwrap() == v1.bytes);

    let tail_entry = "/projects/1/jobs/11/artifacts/small.txt";
    let small = get_with(&h, tail_entry, &token).await;
    let small_etag = header(&small, "etag").unwrap().to_owned();
    assert!(small.bytes().await.unwrap() == v1.small);

    // Replaced in place, under the same key: a new ETag.
    h.storage.put("1/11/artifacts.zip", &v2.bytes);
    for _ in 0..2 {
        let second = get_with(&h, entry, &token).await;
        assert_eq!(second.status(), 200);
        let etag = header(&second, "etag").unwrap().to_owned();
        assert_ne!(etag, first_etag, "new bytes under the old ETag");
        assert!(
            second.bytes().await.unwrap() == v2.big_stored,
            "old bytes under a new ETag"
        );
    }
    // An entry inside the cached tail is answered without a read: until the index is
    // reopened it may still be the old version, but always under the old version's ETag.
    let small = get_with(&h, tail_entry, &token).await;
    let etag = header(&small, "etag").unwrap().to_owned();
    let body = small.bytes().await.unwrap();
    assert!(
        (body == v1.small && etag == small_etag) || (body == v2.small && etag != small_etag),
        "bytes and ETag of different versions"
    );
    let deflated = "/projects/1/jobs/11/artifacts/dir/big-deflated.txt";
    expect_bytes(&h, deflated, &token, &v2.big_deflated).await;
    let archive = get_with(&h, "/projects/1/jobs/11/artifacts", &token).await;
    assert_ne!(header(&archive, "etag").unwrap(), archive_etag);
    assert!(archive.bytes().await.unwrap() == v2.bytes);
    // A conditional request naming the old version gets the new one whole.
    let stale = get_with(
        &h,
        entry,
        &[("PRIVATE-TOKEN", TOKEN), ("If-None-Match", &first_etag)],
    )
    .await;
    assert_eq!(stale.status(), 200);
    assert!(stale.bytes().await.unwrap() == v2.big_stored);
}

#[tokio::test]
async fn a_replaced_object_is_reopened_behind_redirects() {
    replaced_object(Kind::Upstream).await;
}

#[tokio::test]
async fn a_replaced_object_is_reopened_behind_proxied_downloads() {
    replaced_object(Kind::UpstreamProxy).await;
}

#[tokio::test]
async fn an_expired_url_is_located_once_more() {
    let h =
        Harness::upstream_with_ttl(Kind::Upstream, backend(), Duration::from_secs(1), |_| {}).await;
    let a = layout(11);
    h.storage.put("1/11/artifacts.zip", &a.bytes);
    let token = [("PRIVATE-TOKEN", TOKEN)];
    let entry = |name: &str| format!("/projects/1/jobs/11/artifacts/{name}");
    expect_bytes(&h, &entry("big-stored.bin"), &token, &a.big_stored).await;
    assert_eq!(archive_route_count(&h, 1, 11), 1);
    // A URL signed now by the same backend expires with the one the gateway keeps: wait
    // until storage refuses it.
    let direct = h
        .client
        .get(format!(
            "{}/api/v4/projects/1/jobs/11/artifacts",
            h.backend.url()
        ))
        .header("PRIVATE-TOKEN", TOKEN)
        .send()
        .await
        .unwrap();
    let url = header(&direct, "location").unwrap().to_owned();
    let mut refused = false;
    for _ in 0..100 {
        if h.client.get(&url).send().await.unwrap().status() == 403 {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(refused, "the presigned URL never expired");
    h.backend.clear_requests();
    // The kept location is refused by storage: the gateway asks the backend again, once.
    expect_bytes(&h, &entry("dir/big-deflated.txt"), &token, &a.big_deflated).await;
    assert_eq!(archive_route_count(&h, 1, 11), 1, "located once more");
    expect_bytes(&h, &entry("big-stored.bin"), &token, &a.big_stored).await;
    expect_bytes(&h, "/projects/1/jobs/11/artifacts", &token, &a.bytes).await;
    assert_eq!(
        archive_route_count(&h, 1, 11),
        1,
        "the new location is kept"
    );
}

async fn erase(kind: Kind) {
    let h = start(kind, |_| {}).await;
    let a = layout(11);
    let token = [("PRIVATE-TOKEN", TOKEN)];
    let entry = "/projects/1/jobs/11/artifacts/small.txt";
    // Located, opened and kept, for two callers.
    expect_bytes(&h, entry, &token, &a.small).await;
    expect_bytes(&h, entry, &[("JOB-TOKEN", JOB_TOKEN)], &a.small).await;
    expect_bytes(&h, "/projects/1/jobs/11/artifacts", &token, &a.bytes).await;
    expect_bytes(
        &h,
        "/projects/1/jobs/artifacts/main/download?job=build",
        &token,
        &a.bytes,
    )
    .await;
    let erased = h.post("/projects/1/jobs/11/erase", Some(TOKEN)).await;
    assert_eq!(erased.status(), 201);
    for (path, headers) in [
        ("/projects/1/jobs/11/artifacts", &token),
        (entry, &token),
        (entry, &[("JOB-TOKEN", JOB_TOKEN)]),
        (
            "/projects/1/jobs/artifacts/main/raw/small.txt?job=build",
            &token,
        ),
        ("/projects/1/jobs/artifacts/main/download?job=build", &token),
    ] {
        let gone = get_with(&h, path, headers).await;
        assert_eq!(gone.status(), 404, "{path} right after the erase");
    }
}

#[tokio::test]
async fn an_erase_through_the_gateway_takes_effect_at_once_behind_redirects() {
    erase(Kind::Upstream).await;
}

#[tokio::test]
async fn an_erase_through_the_gateway_takes_effect_at_once_behind_proxied_downloads() {
    erase(Kind::UpstreamProxy).await;
}

/// A storage server without ETags: `Range` (one range) and `Last-Modified` only, serving
/// whatever `object` holds at the time of each request.
async fn storage_without_etags(
    object: Arc<Mutex<(Vec<u8>, &'static str)>>,
) -> std::net::SocketAddr {
    raw_server(move |head| {
        let (bytes, modified) = object.lock().unwrap().clone();
        let size = bytes.len();
        let range = head
            .lines()
            .find_map(|l| {
                l.strip_prefix("range: ")
                    .or_else(|| l.strip_prefix("Range: "))
            })
            .and_then(|r| r.trim().strip_prefix("bytes="))
            .map(|r| match r.split_once('-').unwrap() {
                ("", n) => size.saturating_sub(n.parse().unwrap())..size,
                (a, "") => a.parse().unwrap()..size,
                (a, b) => a.parse().unwrap()..(b.parse::<usize>().unwrap() + 1).min(size),
            });
        let mut answer = match &range {
            Some(r) => format!(
                "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {}-{}/{size}\r\n",
                r.start,
                r.end - 1
            ),
            None => "HTTP/1.1 200 OK\r\n".to_owned(),
        };
        let range = range.unwrap_or(0..size);
        answer += &format!(
            "Content-Length: {}\r\nLast-Modified: {modified}\r\n\r\n",
            range.len()
        );
        let mut answer = answer.into_bytes();
        answer.extend_from_slice(&bytes[range]);
        Raw::Answer(answer)
    })
    .await
}

#[tokio::test]
async fn without_an_etag_reads_are_pinned_to_size_and_last_modified() {
    let (v1, v2) = (layout(1), layout(2));
    let object = Arc::new(Mutex::new((
        v1.bytes.clone(),
        "Tue, 01 Dec 2026 10:00:00 GMT",
    )));
    let storage = storage_without_etags(Arc::clone(&object)).await;
    let backend = raw_server(move |_| {
        Raw::Answer(
            format!(
                "HTTP/1.1 302 Found\r\nLocation: http://{storage}/a/b?sig=1\r\nContent-Length: 0\r\n\r\n"
            )
            .into_bytes(),
        )
    })
    .await;
    let mut config = common::test_config(&format!("http://{backend}"));
    config.artifacts.source = artifact_gateway::config::ArtifactSource::Upstream;
    let state = artifact_gateway::dispatch::AppState::new(config).unwrap();
    let gateway = artifact_gateway::listener::RunningGateway::start_with(state)
        .await
        .unwrap();
    let client = common::client();
    let url = |name: &str| {
        format!(
            "http://{}/api/v4/projects/7/jobs/1/artifacts/{name}",
            gateway.addr()
        )
    };
    let read = |name: &'static str| {
        let client = client.clone();
        let url = url(name);
        async move {
            let response = client.get(url).send().await.unwrap();
            assert_eq!(response.status(), 200, "{name}");
            response.bytes().await.unwrap()
        }
    };
    assert!(read("big-stored.bin").await == v1.big_stored);
    // Replaced: another size and another date, and still no ETag.
    *object.lock().unwrap() = (v2.bytes.clone(), "Wed, 02 Dec 2026 10:00:00 GMT");
    assert!(
        read("big-stored.bin").await == v2.big_stored,
        "the old index served the new object"
    );
    assert!(read("dir/big-deflated.txt").await == v2.big_deflated);
    // The whole archive: Last-Modified, and no ETag invented for the client.
    let archive = client
        .get(format!(
            "http://{}/api/v4/projects/7/jobs/1/artifacts",
            gateway.addr()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(
        header(&archive, "last-modified"),
        Some("Wed, 02 Dec 2026 10:00:00 GMT")
    );
    assert_eq!(header(&archive, "etag"), None);
    assert!(archive.bytes().await.unwrap() == v2.bytes);
}
