//! The acceptor in front of a minimal server: HTTP/1.1 and HTTP/2 over TLS byte-exact
//! with ALPN picking h2 when offered, TLS 1.2 and 1.3 both accepted, a client that never
//! sends its hello cut at the handshake timeout, and load errors naming the file and the
//! problem.

use std::sync::Arc;
use std::time::{Duration, Instant};

use artifact_gateway::config::TlsConfig;
use artifact_gateway::listener::tls::Acceptor;
use http::Version;
use tokio::net::{TcpListener, TcpStream};

use crate::support::{
    body, client_config, connect, connect_with, fixed_body, seen_version, Ca, Http, TempDir,
    TlsServer,
};

#[tokio::test]
async fn http1_and_http2_over_tls_are_byte_exact_and_alpn_picks_h2_when_offered() {
    let ca = Ca::new("test CA");
    let dir = TempDir::new();
    let acceptor = Arc::new(Acceptor::new(&dir.tls_config(&ca.leaf("gateway"))).unwrap());
    let server = TlsServer::start(acceptor, fixed_body).await;
    let expected = body();

    // Offering h2 (first) and http/1.1: h2, served as HTTP/2.
    let stream = connect(server.addr, &ca.der, &[b"h2", b"http/1.1"]).await;
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let mut http = Http::over(stream).await;
    assert!(matches!(http, Http::H2(_)));
    for _ in 0..2 {
        let (response, bytes) = http.get("/some/file").await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.version(), Version::HTTP_2);
        assert_eq!(seen_version(&response), "HTTP/2.0");
        assert!(bytes == expected, "HTTP/2 body differs");
    }

    // Offering only http/1.1: HTTP/1.1, keep-alive across requests.
    let stream = connect(server.addr, &ca.der, &[b"http/1.1"]).await;
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    let mut http = Http::over(stream).await;
    for _ in 0..2 {
        let (response, bytes) = http.get("/some/file").await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.version(), Version::HTTP_11);
        assert_eq!(seen_version(&response), "HTTP/1.1");
        assert!(bytes == expected, "HTTP/1.1 body differs");
    }

    // No ALPN at all (curl --no-alpn, old clients): HTTP/1.1.
    let stream = connect(server.addr, &ca.der, &[]).await;
    assert_eq!(stream.get_ref().1.alpn_protocol(), None);
    let (response, bytes) = Http::over(stream).await.get("/").await;
    assert_eq!(seen_version(&response), "HTTP/1.1");
    assert!(bytes == expected);

    assert_eq!(server.alpn_h2(), [true, false, false]);
}

#[tokio::test]
async fn tls_1_2_and_1_3_are_both_accepted() {
    let ca = Ca::new("test CA");
    let dir = TempDir::new();
    let acceptor = Arc::new(Acceptor::new(&dir.tls_config(&ca.leaf("gateway"))).unwrap());
    let server = TlsServer::start(acceptor, fixed_body).await;
    for (version, expected) in [
        (&rustls::version::TLS12, rustls::ProtocolVersion::TLSv1_2),
        (&rustls::version::TLS13, rustls::ProtocolVersion::TLSv1_3),
    ] {
        let config = client_config(&ca.der, &[version], &[b"h2", b"http/1.1"]);
        let stream = connect_with(server.addr, config).await;
        assert_eq!(stream.get_ref().1.protocol_version(), Some(expected));
        let (response, bytes) = Http::over(stream).await.get("/").await;
        assert_eq!(response.status(), 200);
        assert!(bytes == body());
    }
}

#[tokio::test]
async fn a_client_that_never_sends_its_hello_is_cut_at_the_handshake_timeout() {
    let ca = Ca::new("test CA");
    let dir = TempDir::new();
    let mut config = dir.tls_config(&ca.leaf("gateway"));
    config.handshake_timeout = Duration::from_millis(200);
    let acceptor = Acceptor::new(&config).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let _idle = TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    let (tcp, _) = listener.accept().await.unwrap();
    let started = Instant::now();
    let error = acceptor.accept(tcp).await.expect_err("no handshake");
    assert_eq!(error.kind(), std::io::ErrorKind::TimedOut);
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn load_errors_name_the_file_and_the_problem() {
    let ca = Ca::new("test CA");
    let dir = TempDir::new();
    let leaf = ca.leaf("gateway");
    let good = dir.tls_config(&leaf);
    let error = |config: &TlsConfig| Acceptor::new(config).expect_err("refused");

    let mut config = good.clone();
    config.key_file = dir.write("bad.key", "this is not a key\n");
    assert_eq!(
        error(&config),
        format!(
            "tls.key_file: {}: no PEM private key (expected BEGIN PRIVATE KEY, RSA PRIVATE KEY \
             or EC PRIVATE KEY)",
            config.key_file.display()
        )
    );

    config.key_file = dir.write(
        "garbage.key",
        "-----BEGIN PRIVATE KEY-----\naGVsbG8gd29ybGQ=\n-----END PRIVATE KEY-----\n",
    );
    let e = error(&config);
    assert!(
        e.starts_with(&format!("tls.key_file: {}: ", config.key_file.display())),
        "{e}"
    );

    // The certificate given as the key.
    config.key_file = good.cert_file.clone();
    let e = error(&config);
    assert!(
        e.starts_with(&format!(
            "tls.key_file: {}: no PEM private key",
            good.cert_file.display()
        )),
        "{e}"
    );

    config.key_file = dir.path("missing.key");
    let e = error(&config);
    assert!(
        e.starts_with(&format!(
            "tls.key_file: cannot read {}: ",
            config.key_file.display()
        )),
        "{e}"
    );

    let mut config = good.clone();
    config.cert_file = dir.path("missing.crt");
    let e = error(&config);
    assert!(
        e.starts_with(&format!(
            "tls.cert_file: cannot read {}: ",
            config.cert_file.display()
        )),
        "{e}"
    );

    // The key given as the certificate.
    config.cert_file = good.key_file.clone();
    assert_eq!(
        error(&config),
        format!(
            "tls.cert_file: {}: no PEM certificate (expected BEGIN CERTIFICATE)",
            good.key_file.display()
        )
    );

    let other = ca.leaf("another");
    let mut config = good.clone();
    config.key_file = dir.write("other.key", &other.key_pem);
    assert_eq!(
        error(&config),
        format!(
            "tls.key_file: {} is not the key of the certificate in {}",
            config.key_file.display(),
            config.cert_file.display()
        )
    );

    assert_eq!(Acceptor::new(&good).unwrap().certificate(), leaf.der);
}
