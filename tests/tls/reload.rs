//! Certificate reload: by call, serving the new certificate to new connections only; by
//! watching the files, waiting out a half-written renewal; and on the real gateway with
//! `[tls]`, which serves archives over HTTP/1.1 and HTTP/2 and reloads its certificate.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use artifact_gateway::listener::tls::Acceptor;
use http::Version;
use rustls::pki_types::CertificateDer;
use sample_backend::BackendBuilder;

use crate::common;
use crate::common::storage::Kind;
use crate::common::Harness;
use crate::support::{body, connect, fixed_body, peer_certificate, Ca, Http, TempDir, TlsServer};

#[tokio::test]
async fn reload_serves_the_new_certificate_to_new_connections_only() {
    let ca = Ca::new("test CA");
    let dir = TempDir::new();
    let first = ca.leaf("first certificate");
    let config = dir.tls_config(&first);
    let acceptor = Arc::new(Acceptor::new(&config).unwrap());
    let server = TlsServer::start(Arc::clone(&acceptor), fixed_body).await;

    let before = connect(server.addr, &ca.der, &[b"h2"]).await;
    assert_eq!(peer_certificate(&before), first.der);
    let mut before = Http::over(before).await;
    assert_eq!(before.get("/").await.0.status(), 200);

    let second = ca.leaf("second certificate, renewed");
    assert_ne!(first.der, second.der);
    dir.write("tls.crt", &second.chain_pem);
    dir.write("tls.key", &second.key_pem);
    // Not before the reload: the files are only read on reload.
    let stream = connect(server.addr, &ca.der, &[b"h2"]).await;
    assert_eq!(peer_certificate(&stream), first.der);

    acceptor.reload().expect("reload");
    assert_eq!(acceptor.certificate(), second.der);
    let after = connect(server.addr, &ca.der, &[b"http/1.1"]).await;
    assert_eq!(peer_certificate(&after), second.der);
    let (response, bytes) = Http::over(after).await.get("/").await;
    assert_eq!(response.status(), 200);
    assert!(bytes == body());

    // The connection opened before the reload goes on with its session.
    let (response, bytes) = before.get("/again").await;
    assert_eq!(response.status(), 200);
    assert!(bytes == body());

    // A reload that fails (the new certificate with the old key) keeps the current one.
    let third = ca.leaf("third certificate");
    dir.write("tls.crt", &third.chain_pem);
    dir.write("tls.key", &first.key_pem);
    let error = acceptor.reload().expect_err("mismatched key");
    assert!(
        error.starts_with(&format!(
            "tls.key_file: {} is not the key of the certificate in {}",
            config.key_file.display(),
            config.cert_file.display()
        )),
        "{error}"
    );
    let stream = connect(server.addr, &ca.der, &[b"h2"]).await;
    assert_eq!(peer_certificate(&stream), second.der);
    let (response, _) = Http::over(stream).await.get("/").await;
    assert_eq!(response.status(), 200);
}

/// Connects until the server presents `expected`, at most `limit`; returns how long it took.
async fn wait_for_certificate(
    addr: SocketAddr,
    ca: &CertificateDer<'static>,
    expected: &CertificateDer<'static>,
    limit: Duration,
) -> Duration {
    let started = Instant::now();
    loop {
        let stream = connect(addr, ca, &[b"http/1.1"]).await;
        if peer_certificate(&stream) == *expected {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < limit,
            "the new certificate was not picked up within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn watch_picks_up_replaced_files_and_waits_out_a_half_written_renewal() {
    let ca = Ca::new("test CA");
    let dir = TempDir::new();
    let first = ca.leaf("first certificate");
    let mut config = dir.tls_config(&first);
    config.reload_interval = Duration::from_millis(100);
    let acceptor = Arc::new(Acceptor::new(&config).unwrap());
    let watcher = acceptor.watch();
    let server = TlsServer::start(Arc::clone(&acceptor), fixed_body).await;

    // Both files replaced: picked up within a few intervals.
    let second = ca.leaf("second certificate, renewed");
    dir.write("tls.crt", &second.chain_pem);
    dir.write("tls.key", &second.key_pem);
    let took =
        wait_for_certificate(server.addr, &ca.der, &second.der, Duration::from_secs(3)).await;
    eprintln!("replaced files picked up after {took:?} (interval 100ms)");

    // A renewal written one file at a time: the certificate first. Until the key follows, the
    // watcher's reload fails (mismatch) and the current certificate stays.
    let third = ca.leaf("third certificate");
    dir.write("tls.crt", &third.chain_pem);
    // Nothing to wait for: a failed reload changes nothing the test can see. So, 3.5 reload
    // intervals of real time (the watcher runs on real sockets and files, where paused time
    // does not fit), then the certificate must still be the second.
    tokio::time::sleep(Duration::from_millis(350)).await;
    let stream = connect(server.addr, &ca.der, &[b"h2"]).await;
    assert_eq!(peer_certificate(&stream), second.der);
    let (response, _) = Http::over(stream).await.get("/").await;
    assert_eq!(response.status(), 200);
    // Then the key: the next check loads the pair.
    dir.write("tls.key", &third.key_pem);
    wait_for_certificate(server.addr, &ca.der, &third.der, Duration::from_secs(3)).await;

    // A file renamed into place (new inode, as Kubernetes and `mv` do) counts as a change too.
    let fourth = ca.leaf("fourth");
    let staged = dir.write("tls.crt.new", &fourth.chain_pem);
    let staged_key = dir.write("tls.key.new", &fourth.key_pem);
    std::fs::rename(staged_key, &config.key_file).unwrap();
    std::fs::rename(staged, &config.cert_file).unwrap();
    wait_for_certificate(server.addr, &ca.der, &fourth.der, Duration::from_secs(3)).await;

    // The watcher ends once the acceptor is gone.
    drop(server);
    drop(acceptor);
    tokio::time::timeout(Duration::from_secs(3), watcher)
        .await
        .expect("the watch task ends with its acceptor")
        .unwrap();
}

#[tokio::test]
async fn the_gateway_serves_archives_over_tls_and_reloads_its_certificate() {
    let ca = Ca::new("gateway CA");
    let dir = TempDir::new();
    let first = ca.leaf("gateway");
    let tls = dir.tls_config(&first);
    let h = Harness::build(BackendBuilder::sample_data(), Kind::Local, None, |c| {
        c.tls = Some(tls)
    })
    .await;
    let archive = std::fs::read(format!(
        "{}/tests/fixtures/zip/python-deflate.zip",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    h.storage.put("1/104/artifacts.zip", &archive);
    let path = "/api/v4/projects/1/jobs/104/artifacts";

    for alpn in [&b"h2"[..], b"http/1.1"] {
        let stream = connect(h.gateway.addr(), &ca.der, &[alpn]).await;
        assert_eq!(peer_certificate(&stream), first.der);
        let (response, bytes) = Http::over(stream).await.get(path).await;
        assert_eq!(response.status(), 200, "{alpn:?}");
        let expected = if alpn == b"h2" {
            Version::HTTP_2
        } else {
            Version::HTTP_11
        };
        assert_eq!(response.version(), expected);
        assert!(bytes == archive, "{alpn:?}: body differs");
        // One entry out of the archive, too.
        let stream = connect(h.gateway.addr(), &ca.der, &[alpn]).await;
        let (response, bytes) = Http::over(stream)
            .await
            .get("/api/v4/projects/1/jobs/104/artifacts/hello.txt")
            .await;
        assert_eq!(response.status(), 200);
        assert!(!bytes.is_empty());
    }
    // Links name the gateway as https.
    let stream = connect(h.gateway.addr(), &ca.der, &[b"h2"]).await;
    let (response, _) = Http::over(stream)
        .await
        .get("/api/v4/projects/1/jobs?per_page=1")
        .await;
    let link = response.headers()["link"].to_str().unwrap().to_owned();
    assert!(
        link.contains("<https://localhost/api/v4/projects/1/jobs?"),
        "{link}"
    );
    assert_eq!(
        h.backend.requests().last().unwrap().headers["x-forwarded-proto"],
        "https"
    );

    // Renewed files, then a reload (what SIGHUP does): new handshakes get the new certificate.
    let second = ca.leaf("gateway, renewed");
    dir.write("tls.crt", &second.chain_pem);
    dir.write("tls.key", &second.key_pem);
    h.gateway.tls().expect("TLS is on").reload().unwrap();
    let stream = connect(h.gateway.addr(), &ca.der, &[b"h2"]).await;
    assert_eq!(peer_certificate(&stream), second.der);
    let (response, bytes) = Http::over(stream).await.get(path).await;
    assert_eq!(response.status(), 200);
    assert!(bytes == archive);

    // Plain HTTP on the TLS port gets nowhere.
    let plain = common::client()
        .get(format!("http://{}{path}", h.gateway.addr()))
        .send()
        .await;
    assert!(plain.is_err() || !plain.unwrap().status().is_success());
}
