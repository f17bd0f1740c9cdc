//! TLS: the listener's `tls::Acceptor` (HTTP/1.1 and HTTP/2 over TLS, ALPN, certificate reload
//! by call and by watching the files, load errors naming the file), and the gateway's HTTPS
//! clients trusting an extra CA (`upstream.ca_file`, `storage.ca_file`).
//!
//! Certificates are made here with rcgen: a test CA and leaves for `localhost`/`127.0.0.1`.
//! The listener tests serve a fixed body from a minimal accept loop over the acceptor (the
//! gateway's own listener is wired separately).

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use artifact_gateway::config::TlsConfig;
use artifact_gateway::listener::tls::Acceptor;
use artifact_gateway::listener::RunningGateway;
use bytes::Bytes;
use common::storage::Kind;
use common::Harness;
use http::{Request, Response, Version};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    SerialNumber,
};
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use sample_backend::BackendBuilder;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// What the test listener serves: 1 MiB that no framing bug leaves intact.
fn body() -> Bytes {
    (0..1024 * 1024u32)
        .map(|i| (i.wrapping_mul(31) ^ (i >> 7)) as u8)
        .collect::<Vec<u8>>()
        .into()
}

// ---------------------------------------------------------------------------------------------
// Certificates and files

/// A test certificate authority.
struct Ca {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
    der: CertificateDer<'static>,
}

/// A server certificate for `localhost` and `127.0.0.1`, signed by a [`Ca`].
struct Leaf {
    /// Leaf, then the CA: a full chain as certificate tools write it.
    chain_pem: String,
    key_pem: String,
    der: CertificateDer<'static>,
}

static SERIAL: AtomicUsize = AtomicUsize::new(1);

impl Ca {
    fn new(name: &str) -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key).unwrap();
        Ca {
            issuer: Issuer::new(params, key),
            pem: cert.pem(),
            der: cert.der().clone(),
        }
    }

    fn leaf(&self, name: &str) -> Leaf {
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        let serial = SERIAL.fetch_add(1, Ordering::Relaxed) as u64;
        params.serial_number = Some(SerialNumber::from_slice(&serial.to_be_bytes()));
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Leaf {
            chain_pem: format!("{}{}", cert.pem(), self.pem),
            key_pem: key.serialize_pem(),
            der: cert.der().clone(),
        }
    }
}

/// A directory of its own for each test, removed when dropped.
struct TempDir(PathBuf);

static DIRS: AtomicUsize = AtomicUsize::new(0);

impl TempDir {
    fn new() -> TempDir {
        let dir = std::env::temp_dir().join(format!(
            "artifact-gateway-tls-{}-{}",
            std::process::id(),
            DIRS.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// `tls.crt` and `tls.key` holding `leaf`, and a config naming them.
    fn tls_config(&self, leaf: &Leaf) -> TlsConfig {
        TlsConfig::new(
            self.write("tls.crt", &leaf.chain_pem),
            self.write("tls.key", &leaf.key_pem),
        )
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

// ---------------------------------------------------------------------------------------------
// A minimal HTTPS server over an Acceptor, and a client that shows what the handshake chose

/// Serves `handler` over TLS on 127.0.0.1:0 until dropped (its connections too).
struct TlsServer {
    addr: SocketAddr,
    /// For each connection, whether `Acceptor::accept` reported ALPN h2.
    alpn_h2: Arc<Mutex<Vec<bool>>>,
    task: JoinHandle<()>,
}

type Handler = fn(Request<Incoming>) -> Response<Full<Bytes>>;

impl TlsServer {
    async fn start(acceptor: Arc<Acceptor>, handler: Handler) -> TlsServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let alpn_h2 = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&alpn_h2);
        let task = tokio::spawn(async move {
            let mut connections = JoinSet::new();
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let acceptor = Arc::clone(&acceptor);
                let seen = Arc::clone(&seen);
                // The handshake runs in the connection's task, never in the accept loop.
                connections.spawn(async move {
                    let Ok((tls, h2)) = acceptor.accept(tcp).await else {
                        return;
                    };
                    seen.lock().unwrap().push(h2);
                    let service = service_fn(move |request| async move {
                        Ok::<_, std::convert::Infallible>(handler(request))
                    });
                    let _ = auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        TlsServer {
            addr,
            alpn_h2,
            task,
        }
    }

    fn alpn_h2(&self) -> Vec<bool> {
        self.alpn_h2.lock().unwrap().clone()
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The fixed body, with the HTTP version the server saw.
fn fixed_body(request: Request<Incoming>) -> Response<Full<Bytes>> {
    Response::builder()
        .header("x-request-version", format!("{:?}", request.version()))
        .body(Full::new(body()))
        .unwrap()
}

fn client_config(
    ca: &CertificateDer<'static>,
    versions: &[&'static rustls::SupportedProtocolVersion],
    alpn: &[&[u8]],
) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots.add(ca.clone()).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

async fn connect_with(addr: SocketAddr, config: Arc<ClientConfig>) -> TlsStream<TcpStream> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    TlsConnector::from(config)
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .expect("TLS handshake")
}

/// A TLS 1.3/1.2 connection offering `alpn`, trusting only `ca`.
async fn connect(
    addr: SocketAddr,
    ca: &CertificateDer<'static>,
    alpn: &[&[u8]],
) -> TlsStream<TcpStream> {
    let versions = rustls::DEFAULT_VERSIONS;
    connect_with(addr, client_config(ca, versions, alpn)).await
}

fn peer_certificate(stream: &TlsStream<TcpStream>) -> CertificateDer<'static> {
    stream
        .get_ref()
        .1
        .peer_certificates()
        .expect("a certificate")[0]
        .clone()
}

/// One HTTP connection over a TLS stream: HTTP/2 when ALPN chose h2, else HTTP/1.1.
enum Http {
    H1(hyper::client::conn::http1::SendRequest<Empty<Bytes>>),
    H2(hyper::client::conn::http2::SendRequest<Empty<Bytes>>),
}

impl Http {
    async fn over(stream: TlsStream<TcpStream>) -> Http {
        let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
        let io = TokioIo::new(stream);
        if h2 {
            let (sender, connection) =
                hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
                    .await
                    .unwrap();
            tokio::spawn(connection);
            Http::H2(sender)
        } else {
            let (sender, connection) = hyper::client::conn::http1::handshake(io).await.unwrap();
            tokio::spawn(connection);
            Http::H1(sender)
        }
    }

    /// GET `path`: status, the version the server saw, and the whole body.
    async fn get(&mut self, path: &str) -> (Response<()>, Bytes) {
        let request = Request::get(format!("https://localhost{path}"))
            .body(Empty::<Bytes>::new())
            .unwrap();
        let response = match self {
            Http::H1(sender) => {
                let (mut parts, body) = request.into_parts();
                parts.uri = path.parse().unwrap();
                parts
                    .headers
                    .insert(http::header::HOST, "localhost".parse().unwrap());
                sender.send_request(Request::from_parts(parts, body)).await
            }
            Http::H2(sender) => sender.send_request(request).await,
        }
        .expect("response");
        let (parts, body) = response.into_parts();
        let bytes = body.collect().await.expect("whole body").to_bytes();
        (Response::from_parts(parts, ()), bytes)
    }
}

fn seen_version(response: &Response<()>) -> &str {
    response.headers()["x-request-version"].to_str().unwrap()
}

// ---------------------------------------------------------------------------------------------
// (a) HTTP/1.1 and HTTP/2 over TLS

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

// ---------------------------------------------------------------------------------------------
// (b) Reload

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

// ---------------------------------------------------------------------------------------------
// (c) Load errors name the file

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

// ---------------------------------------------------------------------------------------------
// (d) Upstream over HTTPS with upstream.ca_file

/// A jobs backend over HTTPS that only knows `GET /api/v4/version`.
fn version_endpoint(request: Request<Incoming>) -> Response<Full<Bytes>> {
    if request.uri().path() != "/api/v4/version" {
        return Response::builder()
            .status(404)
            .body(Full::new(Bytes::from_static(
                b"{\"message\":\"404 Not Found\"}",
            )))
            .unwrap();
    }
    // HTTP/2 carries the authority in the URI (`:authority`); HTTP/1.1 in `Host`.
    let host = match request.headers().get(http::header::HOST) {
        Some(host) => host.to_str().unwrap().to_owned(),
        None => request.uri().authority().unwrap().to_string(),
    };
    let body = serde_json::json!({"version": "17.2.1", "revision": "abc123", "host": host});
    Response::builder()
        .header("content-type", "application/json")
        .header("x-request-version", format!("{:?}", request.version()))
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap()
}

async fn https_upstream(ca: &Ca, dir: &TempDir) -> TlsServer {
    let acceptor = Acceptor::new(&dir.tls_config(&ca.leaf("jobs backend"))).unwrap();
    TlsServer::start(Arc::new(acceptor), version_endpoint).await
}

async fn gateway_in_front_of(upstream: &str, ca_file: Option<&Path>) -> RunningGateway {
    let mut config = common::test_config(upstream);
    config.upstream.ca_file = ca_file.map(Path::to_owned);
    RunningGateway::start(config).await.expect("gateway starts")
}

#[tokio::test]
async fn upstream_over_https_is_trusted_through_upstream_ca_file() {
    let ca = Ca::new("private CA");
    let dir = TempDir::new();
    let upstream = https_upstream(&ca, &dir).await;
    let ca_file = dir.write("ca.pem", &ca.pem);
    let url = format!("https://localhost:{}", upstream.addr.port());

    let gateway = gateway_in_front_of(&url, Some(&ca_file)).await;
    let client = common::client();
    for _ in 0..3 {
        let response = client
            .get(format!("http://{}/api/v4/version", gateway.addr()))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        // The upstream picked h2 by ALPN; the pooled connection carries every request.
        assert_eq!(
            common::header(&response, "x-request-version"),
            Some("HTTP/2.0")
        );
        let json = common::json(response).await;
        assert_eq!(json["version"], "17.2.1");
        assert_eq!(json["host"], format!("localhost:{}", upstream.addr.port()));
    }
    assert_eq!(upstream.alpn_h2(), [true], "one pooled connection");
    gateway.shutdown();
    gateway.wait().await;

    // Without the CA, the upstream's certificate is not trusted: 502, as for a refused connection.
    let gateway = gateway_in_front_of(&url, None).await;
    let response = client
        .get(format!("http://{}/api/v4/version", gateway.addr()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 502);
    assert_eq!(
        common::json(response).await,
        serde_json::json!({"message": "502 Bad Gateway"})
    );
    gateway.shutdown();
    gateway.wait().await;

    // Another CA's bundle does not help either.
    let other = dir.write("other-ca.pem", &Ca::new("other CA").pem);
    let gateway = gateway_in_front_of(&url, Some(&other)).await;
    let response = client
        .get(format!("http://{}/api/v4/version", gateway.addr()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 502);
    gateway.shutdown();
    gateway.wait().await;
}

#[tokio::test]
async fn plain_http_upstreams_keep_working() {
    // The sample backend speaks plain HTTP; a CA bundle changes nothing for it.
    let ca = Ca::new("private CA");
    let dir = TempDir::new();
    let ca_file = dir.write("ca.pem", &ca.pem);
    let h = Harness::start_with(BackendBuilder::sample_data(), |c| {
        c.upstream.ca_file = Some(ca_file.clone());
    })
    .await;
    let response = h.get("/projects/1/jobs", Some(common::TOKEN)).await;
    assert_eq!(response.status(), 200);
}

// ---------------------------------------------------------------------------------------------
// S3 over HTTPS with storage.ca_file

/// Terminates TLS with `acceptor` on 127.0.0.1:0 and passes the bytes on to `target` (the
/// plain-HTTP S3 test server): S3 over HTTPS with a private CA. Returns the port.
fn tls_proxy(acceptor: Acceptor, target: SocketAddr) -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let listener = TcpListener::from_std(listener).unwrap();
    let acceptor = Arc::new(acceptor);
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let acceptor = Arc::clone(&acceptor);
            tokio::spawn(async move {
                let Ok((mut tls, _)) = acceptor.accept(tcp).await else {
                    return;
                };
                let Ok(mut plain) = TcpStream::connect(target).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
    port
}

async fn gateway_on_s3_over_https(ca: &Ca, dir: &TempDir, ca_file: Option<PathBuf>) -> Harness {
    let acceptor = Acceptor::new(&dir.tls_config(&ca.leaf("storage"))).unwrap();
    Harness::build(BackendBuilder::sample_data(), Kind::S3, None, move |c| {
        let s3 = c
            .storage
            .endpoint
            .clone()
            .expect("the S3 test server's endpoint");
        let target: SocketAddr = s3.strip_prefix("http://").unwrap().parse().unwrap();
        let port = tls_proxy(acceptor, target);
        c.storage.endpoint = Some(format!("https://localhost:{port}"));
        c.storage.allow_http = false;
        c.storage.ca_file = ca_file;
    })
    .await
}

#[tokio::test]
async fn s3_over_https_is_trusted_through_storage_ca_file() {
    let ca = Ca::new("storage CA");
    let dir = TempDir::new();
    let archive = body();
    let ca_file = dir.write("storage-ca.pem", &ca.pem);

    let h = gateway_on_s3_over_https(&ca, &dir, Some(ca_file)).await;
    h.storage.put("1/104/artifacts.zip", &archive);
    let response = h
        .get("/projects/1/jobs/104/artifacts", Some(common::TOKEN))
        .await;
    assert_eq!(response.status(), 200);
    assert!(response.bytes().await.unwrap() == archive);

    let h = gateway_on_s3_over_https(&ca, &dir, None).await;
    h.storage.put("1/104/artifacts.zip", &archive);
    let response = h
        .get("/projects/1/jobs/104/artifacts", Some(common::TOKEN))
        .await;
    assert_eq!(response.status(), 502);
}

#[tokio::test]
async fn a_bad_storage_ca_file_fails_the_store_naming_the_key() {
    let dir = TempDir::new();
    let mut config = common::test_config("http://127.0.0.1:1");
    config.storage.url = "s3://bucket".to_owned();
    config.storage.ca_file = Some(dir.write("empty.pem", "nothing\n"));
    let error = artifact_gateway::dispatch::AppState::new(config)
        .err()
        .expect("refused");
    assert!(
        error.starts_with(&format!(
            "storage.ca_file: {}: no PEM certificate",
            dir.path("empty.pem").display()
        )),
        "{error}"
    );
}

// ---------------------------------------------------------------------------------------------
// The real gateway with [tls]: downloads over HTTP/1.1 and HTTP/2, and a reload

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
