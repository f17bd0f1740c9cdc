//! Expiring links: issued as the caller (the backend decides), used with no credentials
//! (archive and file, ranges, validators), refused when tampered with or expired without
//! asking anyone, valid across a key rotation while their key is listed, and never logged.

use std::time::Duration;

use artifact_gateway::config::{Config, LinkKey};
use artifact_gateway::dispatch::AppState;
use artifact_gateway::listener::RunningGateway;
use serde_json::{json, Value};

use crate::common::logs;
use crate::common::storage::{Kind, Tap};
use crate::common::{header, json, test_config, zips, Harness, TOKEN};
use crate::support::{backend, key};

on_every_source! {
    issued_then_used_without_credentials => issue_and_use;
}

#[tokio::test]
async fn refused_links_ask_nobody() {
    refusals().await
}

#[tokio::test]
async fn old_links_verify_while_their_key_is_listed() {
    rotation().await
}

#[tokio::test]
async fn recheck_refuses_erased_jobs() {
    recheck().await
}

#[tokio::test]
async fn without_keys_there_are_no_links() {
    let h = Harness::start(backend()).await;
    let post = h
        .post("/projects/1/jobs/1/artifacts/-/links", Some(TOKEN))
        .await;
    assert_eq!(post.status(), 404);
    let get = h
        .client
        .get(format!("http://{}/-/links/abc.def", h.gateway.addr()))
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), 404);
}

const KEY_1: [u8; 32] = [0x11; 32];
const KEY_2: [u8; 32] = [0x22; 32];

fn with_keys(config: &mut Config, keys: &[[u8; 32]]) {
    config.links.keys = keys.iter().map(|k| LinkKey(k.to_vec())).collect();
    // Upstream mode locates archives as this token when a link is used.
    config.links.service_token = Some(TOKEN.to_owned().into());
}

fn sample() -> zips::Built {
    zips::build(&[
        (
            "sel/1",
            &zips::text(1, 5000),
            zips::CompressionMethod::Deflated,
        ),
        (
            "sel/2",
            &zips::noise(2, 300_000),
            zips::CompressionMethod::Stored,
        ),
        ("other.txt", b"other", zips::CompressionMethod::Stored),
    ])
}

fn entry_bytes(zip: &zips::Built, name: &str) -> Vec<u8> {
    let mut reader = zip::ZipArchive::new(std::io::Cursor::new(&zip.bytes[..])).unwrap();
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut reader.by_name(name).unwrap(), &mut out).unwrap();
    out
}

/// POST a link request as `token`; the status and the JSON answer.
async fn issue(h: &Harness, path: &str, token: Option<&str>, body: Value) -> (u16, Value) {
    let mut request = h
        .client
        .post(h.url(path))
        .header("Content-Type", "application/json")
        .body(body.to_string());
    if let Some(token) = token {
        request = request.header("PRIVATE-TOKEN", token);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, json(response).await)
}

async fn issue_and_use(kind: Kind) {
    let h = Harness::tapped(kind, backend(), Tap::new, |c| with_keys(c, &[KEY_1])).await;
    let zip = sample();
    h.storage.put(&key(2, 21), &zip.bytes);
    let base = format!("http://{}/-/links/", h.gateway.addr());

    // The archive of a private project's job.
    let (status, answer) = issue(
        &h,
        "/projects/2/jobs/21/artifacts/-/links",
        Some(TOKEN),
        json!({"expires_in": "1h"}),
    )
    .await;
    assert_eq!(status, 201, "{answer}");
    let url = answer["url"].as_str().unwrap().to_owned();
    assert!(url.starts_with(&base), "{url}");
    let expires =
        chrono::DateTime::parse_from_rfc3339(answer["expires_at"].as_str().unwrap()).unwrap();
    let left = expires.timestamp() - chrono::Utc::now().timestamp();
    assert!((3590..=3600).contains(&left), "expires in {left} s");

    // No credentials at all.
    let anonymous = reqwest::Client::new();
    let archive = anonymous.get(&url).send().await.unwrap();
    assert_eq!(archive.status(), 200);
    assert_eq!(header(&archive, "content-type"), Some("application/zip"));
    assert_eq!(
        header(&archive, "content-disposition"),
        Some("attachment; filename=\"artifacts.zip\"; filename*=UTF-8''artifacts.zip")
    );
    assert_eq!(header(&archive, "x-content-type-options"), Some("nosniff"));
    let etag = header(&archive, "etag").map(str::to_owned);
    assert!(
        archive.bytes().await.unwrap() == zip.bytes,
        "the archive, byte for byte"
    );
    let ranged = anonymous
        .get(&url)
        .header("Range", "bytes=100-4099")
        .send()
        .await
        .unwrap();
    assert_eq!(ranged.status(), 206);
    assert!(ranged.bytes().await.unwrap() == zip.bytes[100..4100]);
    let head = anonymous.head(&url).send().await.unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(
        header(&head, "content-length").map(str::to_owned),
        Some(zip.bytes.len().to_string())
    );
    if let Some(etag) = etag {
        let again = anonymous
            .get(&url)
            .header("If-None-Match", &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), 304);
    }

    // One file of it, with a range.
    let (status, answer) = issue(
        &h,
        "/projects/2/jobs/21/artifacts/-/links",
        Some(TOKEN),
        json!({"path": "sel/2", "expires_in": "10m"}),
    )
    .await;
    assert_eq!(status, 201, "{answer}");
    let file_url = answer["url"].as_str().unwrap().to_owned();
    let want = entry_bytes(&zip, "sel/2");
    let file = anonymous.get(&file_url).send().await.unwrap();
    assert_eq!(file.status(), 200);
    assert!(file.bytes().await.unwrap() == want);
    let part = anonymous
        .get(&file_url)
        .header("Range", "bytes=250000-")
        .send()
        .await
        .unwrap();
    assert_eq!(part.status(), 206);
    assert!(part.bytes().await.unwrap() == want[250_000..]);
    let deflated = issue(
        &h,
        "/projects/2/jobs/21/artifacts/-/links",
        Some(TOKEN),
        json!({"path": "sel/1"}),
    )
    .await;
    let text = anonymous
        .get(deflated.1["url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(text.status(), 200);
    assert!(text.bytes().await.unwrap() == entry_bytes(&zip, "sel/1"));

    // By ref: the latest successful `build` on `main` of project 1 (job 9).
    h.storage.put(&key(1, 9), &zip.bytes);
    let (status, answer) = issue(
        &h,
        "/projects/1/jobs/artifacts/-/links",
        Some(TOKEN),
        json!({"ref": "main", "job": "build", "path": "other.txt"}),
    )
    .await;
    assert_eq!(status, 201, "{answer}");
    let other = anonymous
        .get(answer["url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(other.bytes().await.unwrap().as_ref(), b"other");

    // Nothing at that path: no link.
    let (status, answer) = issue(
        &h,
        "/projects/2/jobs/21/artifacts/-/links",
        Some(TOKEN),
        json!({"path": "missing.txt"}),
    )
    .await;
    assert_eq!((status, answer), (404, json!({"message": "404 Not Found"})));

    let metrics = h.gateway.state().metrics.render();
    assert!(metrics.contains("links_issued_total 4"), "{metrics}");
    assert!(
        metrics.contains("link_uses_total{outcome=\"served\"}"),
        "{metrics}"
    );
}

async fn refusals() {
    let h = Harness::tapped(Kind::Local, backend(), Tap::new, |c| {
        with_keys(c, &[KEY_1]);
        c.links.max_lifetime = Duration::from_secs(2 * 3600);
    })
    .await;
    h.storage.put(&key(2, 21), &sample().bytes);
    let logs = logs::capture("artifact_gateway=debug");

    // An outsider gets the backend's answer, and no link.
    let (status, answer) = issue(
        &h,
        "/projects/2/jobs/21/artifacts/-/links",
        Some("outsider-token"),
        json!({}),
    )
    .await;
    assert_eq!(
        (status, answer),
        (404, json!({"message": "404 Project Not Found"}))
    );
    let (status, _) = issue(&h, "/projects/2/jobs/21/artifacts/-/links", None, json!({})).await;
    assert_eq!(status, 404);
    for (body, error) in [
        (
            json!({"expires_in": "3h"}),
            "expires_in is invalid: a duration such as \"1h\", at most 7200s",
        ),
        (
            json!({"expires_in": "soon"}),
            "expires_in is invalid: a duration such as \"1h\", at most 7200s",
        ),
        (json!({"path": "../x"}), "path is invalid"),
    ] {
        let (status, answer) = issue(
            &h,
            "/projects/2/jobs/21/artifacts/-/links",
            Some(TOKEN),
            body,
        )
        .await;
        assert_eq!((status, answer), (400, json!({ "error": error })));
    }
    let (status, answer) = issue(
        &h,
        "/projects/2/jobs/artifacts/-/links",
        Some(TOKEN),
        json!({"job": "build"}),
    )
    .await;
    assert_eq!((status, answer), (400, json!({"error": "ref is missing"})));

    let (_, answer) = issue(
        &h,
        "/projects/2/jobs/21/artifacts/-/links",
        Some(TOKEN),
        json!({"expires_in": "1s"}),
    )
    .await;
    let url = answer["url"].as_str().unwrap().to_owned();
    let token = url.rsplit('/').next().unwrap().to_owned();
    let (payload, tag) = token.split_once('.').unwrap();
    let tap = h.tap.clone().unwrap();
    let gets = || tap.gets.load(std::sync::atomic::Ordering::SeqCst);
    let base = format!("http://{}/-/links/", h.gateway.addr());
    // Expired (it serves until then): 410. From here on nothing may be asked.
    let expired = status_becomes(&format!("{base}{token}"), 410, Duration::from_secs(5)).await;
    assert_eq!(expired, json!({"message": "410 Gone - link expired"}));
    let (reads, asked) = (gets(), h.backend.requests().len());
    let again = reqwest::get(format!("{base}{token}")).await.unwrap();
    assert_eq!(again.status(), 410);
    let flip = |s: &str| {
        let mut chars: Vec<char> = s.chars().collect();
        chars[3] = if chars[3] == 'A' { 'B' } else { 'A' };
        chars.into_iter().collect::<String>()
    };
    for bad in [
        format!("{}.{tag}", flip(payload)),
        format!("{payload}.{}", flip(tag)),
        token[..token.len() - 2].to_owned(),
        payload.to_owned(),
        format!("{payload}.{tag}{tag}"),
    ] {
        let refused = reqwest::get(format!("{base}{bad}")).await.unwrap();
        assert_eq!(refused.status(), 403, "{bad}");
        assert_eq!(
            json(refused).await,
            json!({"message": "403 Forbidden - invalid link"})
        );
    }
    // Expired: refused the same way, with 410.
    let expired = status_becomes(&format!("{base}{token}"), 410, Duration::from_secs(5)).await;
    assert_eq!(expired, json!({"message": "410 Gone - link expired"}));
    assert_eq!(
        (gets(), h.backend.requests().len()),
        (reads, asked),
        "a refused link asked storage or the backend"
    );

    // The token is in no log line; the lines about it are there, redacted.
    let text = logs.text();
    assert!(
        text.contains("/-/links/[REDACTED]"),
        "no access line for the links"
    );
    for secret in [token.as_str(), payload, tag] {
        assert!(!text.contains(secret), "a token part was logged");
    }
    let metrics = h.gateway.state().metrics.render();
    assert!(
        metrics.contains("link_uses_total{outcome=\"invalid\"} 5"),
        "{metrics}"
    );
    assert!(
        metrics.contains("link_uses_total{outcome=\"expired\"}"),
        "{metrics}"
    );
}

/// Polls `url` until it answers `status` (within `timeout`); its JSON body then.
async fn status_becomes(url: &str, status: u16, timeout: Duration) -> Value {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let response = reqwest::get(url).await.unwrap();
        if response.status().as_u16() == status {
            return json(response).await;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{url} never answered {status}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Another gateway on `h`'s backend and storage, with these link keys.
async fn gateway_with_keys(h: &Harness, keys: &[[u8; 32]]) -> RunningGateway {
    let mut config = test_config(&h.backend.url());
    h.storage.configure(&mut config);
    with_keys(&mut config, keys);
    RunningGateway::start_with(AppState::new(config).unwrap())
        .await
        .unwrap()
}

async fn rotation() {
    let h = Harness::start_with(backend(), |c| with_keys(c, &[KEY_1])).await;
    let zip = sample();
    h.storage.put(&key(1, 1), &zip.bytes);
    let (_, answer) = issue(
        &h,
        "/projects/1/jobs/1/artifacts/-/links",
        Some(TOKEN),
        json!({"path": "other.txt"}),
    )
    .await;
    let url = answer["url"].as_str().unwrap().to_owned();
    let token = url.rsplit('/').next().unwrap().to_owned();
    let at = |gw: &RunningGateway| format!("http://{}/-/links/{token}", gw.addr());
    // A restarted gateway with a new signing key that still lists the old one.
    let rotated = gateway_with_keys(&h, &[KEY_2, KEY_1]).await;
    let served = reqwest::get(at(&rotated)).await.unwrap();
    assert_eq!(served.status(), 200);
    assert_eq!(served.bytes().await.unwrap().as_ref(), b"other");
    // Once the old key is dropped, its links are refused.
    let dropped = gateway_with_keys(&h, &[KEY_2]).await;
    let refused = reqwest::get(at(&dropped)).await.unwrap();
    assert_eq!(refused.status(), 403);
}

async fn recheck() {
    let h = Harness::start_with(backend(), |c| {
        with_keys(c, &[KEY_1]);
        c.links.recheck = true;
    })
    .await;
    h.storage.put(&key(1, 1), &sample().bytes);
    let (_, answer) = issue(
        &h,
        "/projects/1/jobs/1/artifacts/-/links",
        Some(TOKEN),
        json!({}),
    )
    .await;
    let url = answer["url"].as_str().unwrap().to_owned();
    assert_eq!(reqwest::get(&url).await.unwrap().status(), 200);
    // Without recheck, the same link at another gateway keeps working after the erase.
    let plain = gateway_with_keys(&h, &[KEY_1]).await;
    let token = url.rsplit('/').next().unwrap().to_owned();
    let erased = h.post("/projects/1/jobs/1/erase", Some(TOKEN)).await;
    assert_eq!(erased.status(), 201);
    let gone = reqwest::get(&url).await.unwrap();
    assert_eq!(gone.status(), 410);
    assert_eq!(
        json(gone).await,
        json!({"message": "410 Gone - the job's artifacts are gone"})
    );
    let still = reqwest::get(format!("http://{}/-/links/{token}", plain.addr()))
        .await
        .unwrap();
    assert_eq!(
        still.status(),
        200,
        "without recheck a link outlives its job's erase"
    );
}
