//! What the upstream tests share: the sample backend's projects and jobs, archives laid
//! out around the default tail, requests with extra headers, the S3 server's reads, and a
//! raw storage server for answers the in-process S3 server cannot give.

use std::io::{Cursor, Write};
use std::sync::Arc;

use sample_backend::{BackendBuilder, JobSpec, JobStatus, Visibility};
use zip::write::SimpleFileOptions;
use zip::CompressionMethod;

use crate::common::storage::Kind;
use crate::common::{Harness, TOKEN};

/// sha256("1"): the hashed directory of project 1's objects.
pub(crate) const SHA256_OF_1: &str =
    "6b86b273ff34fce19d6b804eff5a3f5747ada4eaa22f1d49c01e52ddb7875b4b";

/// Project 1 (private, `group/app`): job 11 (build, main, success, pipeline 100, archive),
/// job 12 (build, main, running, pipeline 101), job 15 (build, release, success, pipeline
/// 102, archive). Project 2 (private, `group/other`): job 21 (archive). `demo` is a
/// member of both; `outsider` of neither.
pub(crate) fn backend() -> BackendBuilder {
    BackendBuilder::new()
        .user("demo", TOKEN)
        .user("outsider", "outsider-token")
        .project(1, "group/app", Visibility::Private, &["demo"])
        .project(2, "group/other", Visibility::Private, &["demo"])
        .job(
            JobSpec::new(11, 1, "build", "main", JobStatus::Success)
                .pipeline(100)
                .with_archive(1000)
                .trace("log of 11\n"),
        )
        .job(JobSpec::new(12, 1, "build", "main", JobStatus::Running).pipeline(101))
        .job(
            JobSpec::new(15, 1, "build", "release", JobStatus::Success)
                .pipeline(102)
                .with_archive(1000),
        )
        .job(
            JobSpec::new(21, 2, "build", "main", JobStatus::Success)
                .pipeline(200)
                .with_archive(1000),
        )
}

/// Deterministic bytes that do not compress.
pub(crate) fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

/// An archive whose two big entries (one stored, one deflated) lie before the default
/// 128 KiB tail and whose last entry lies inside it.
pub(crate) struct Layout {
    pub(crate) bytes: Vec<u8>,
    pub(crate) big_stored: Vec<u8>,
    pub(crate) big_deflated: Vec<u8>,
    pub(crate) small: Vec<u8>,
}

pub(crate) fn layout(version: u64) -> Layout {
    let big_stored = noise(400 * 1024, version);
    // Text, then noise: deflate has work to do, and the entry stays larger than the tail.
    let mut big_deflated: Vec<u8> = (0..20_000u32)
        .flat_map(|i| format!("v{version} line {i}\n").into_bytes())
        .collect();
    big_deflated.extend(noise(300 * 1024, version + 100));
    let small = format!("small entry of version {version}\n").into_bytes();
    let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for (name, bytes, method) in [
        ("big-stored.bin", &big_stored, CompressionMethod::Stored),
        (
            "dir/big-deflated.txt",
            &big_deflated,
            CompressionMethod::Deflated,
        ),
        ("small.txt", &small, CompressionMethod::Stored),
    ] {
        let options = SimpleFileOptions::default().compression_method(method);
        writer.start_file(name, options).unwrap();
        writer.write_all(bytes).unwrap();
    }
    Layout {
        bytes: writer.finish().unwrap().into_inner(),
        big_stored,
        big_deflated,
        small,
    }
}

pub(crate) async fn start(
    kind: Kind,
    adjust: impl FnOnce(&mut artifact_gateway::config::Config),
) -> Harness {
    let h = Harness::build(backend(), kind, None, adjust).await;
    h.storage.put("1/11/artifacts.zip", &layout(11).bytes);
    h.storage.put("1/15/artifacts.zip", &layout(15).bytes);
    h.storage.put("2/21/artifacts.zip", &layout(21).bytes);
    h
}

pub(crate) async fn get_with(
    h: &Harness,
    path: &str,
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let mut request = h.client.get(h.url(path));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.expect("request reaches the gateway")
}

pub(crate) async fn expect_bytes(h: &Harness, path: &str, headers: &[(&str, &str)], want: &[u8]) {
    let response = get_with(h, path, headers).await;
    assert_eq!(response.status(), 200, "{path}");
    let body = response.bytes().await.unwrap();
    assert!(
        body == want,
        "{path}: {} bytes, not the {} expected",
        body.len(),
        want.len()
    );
}

/// GETs the S3 server served since `from` (its count before), by their `Range`.
pub(crate) fn reads_since(h: &Harness, from: usize) -> Vec<Option<String>> {
    h.storage.s3().expect("an S3 server").get_ranges()[from..].to_vec()
}

pub(crate) fn reads_so_far(h: &Harness) -> usize {
    h.storage.s3().expect("an S3 server").get_ranges().len()
}

pub(crate) fn bounded(range: &Option<String>) -> bool {
    range.as_deref().is_some_and(|r| {
        r.strip_prefix("bytes=")
            .and_then(|r| r.split_once('-'))
            .is_some_and(|(a, b)| !a.is_empty() && !b.is_empty())
    })
}

pub(crate) fn archive_route_count(h: &Harness, project: u64, job: u64) -> usize {
    h.backend.count(
        "GET",
        &format!("/api/v4/projects/{project}/jobs/{job}/artifacts"),
    )
}

/// What a raw server does with a request.
pub(crate) enum Raw {
    /// Send these bytes, then read the next request on the connection.
    Answer(Vec<u8>),
    /// Send these bytes (a head and part of a body), then hold the connection.
    Stall(Vec<u8>),
    /// Hold the connection without a byte.
    Silence,
}

/// A server on 127.0.0.1 that answers each request head with `respond(head)`.
pub(crate) async fn raw_server(
    respond: impl Fn(&str) -> Raw + Send + Sync + 'static,
) -> std::net::SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let respond = Arc::new(respond);
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let respond = Arc::clone(&respond);
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                loop {
                    let mut head = Vec::new();
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match socket.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    match respond(&String::from_utf8_lossy(&head)) {
                        Raw::Answer(bytes) => {
                            if socket.write_all(&bytes).await.is_err() {
                                return;
                            }
                        }
                        Raw::Stall(bytes) => {
                            let _ = socket.write_all(&bytes).await;
                            std::future::pending::<()>().await;
                        }
                        Raw::Silence => std::future::pending::<()>().await,
                    }
                }
            });
        }
    });
    addr
}
