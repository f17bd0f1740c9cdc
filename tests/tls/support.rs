//! What the TLS tests share: a test CA and its leaves written to temporary directories,
//! a minimal HTTPS server over an `Acceptor` serving a fixed body, and clients that show
//! which protocol version and certificate the handshake chose.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use artifact_gateway::config::TlsConfig;
use artifact_gateway::listener::tls::Acceptor;
use bytes::Bytes;
use http::{Request, Response};
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
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// What the test listener serves: 1 MiB that no framing bug leaves intact.
pub(crate) fn body() -> Bytes {
    (0..1024 * 1024u32)
        .map(|i| (i.wrapping_mul(31) ^ (i >> 7)) as u8)
        .collect::<Vec<u8>>()
        .into()
}

// ---------------------------------------------------------------------------------------------
// Certificates and files

/// A test certificate authority.
pub(crate) struct Ca {
    pub(crate) issuer: Issuer<'static, KeyPair>,
    pub(crate) pem: String,
    pub(crate) der: CertificateDer<'static>,
}

/// A server certificate for `localhost` and `127.0.0.1`, signed by a [`Ca`].
pub(crate) struct Leaf {
    /// Leaf, then the CA: a full chain as certificate tools write it.
    pub(crate) chain_pem: String,
    pub(crate) key_pem: String,
    pub(crate) der: CertificateDer<'static>,
}

pub(crate) static SERIAL: AtomicUsize = AtomicUsize::new(1);

impl Ca {
    pub(crate) fn new(name: &str) -> Ca {
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

    pub(crate) fn leaf(&self, name: &str) -> Leaf {
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
pub(crate) struct TempDir(pub(crate) PathBuf);

pub(crate) static DIRS: AtomicUsize = AtomicUsize::new(0);

impl TempDir {
    pub(crate) fn new() -> TempDir {
        let dir = std::env::temp_dir().join(format!(
            "artifact-gateway-tls-{}-{}",
            std::process::id(),
            DIRS.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    pub(crate) fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// `tls.crt` and `tls.key` holding `leaf`, and a config naming them.
    pub(crate) fn tls_config(&self, leaf: &Leaf) -> TlsConfig {
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
pub(crate) struct TlsServer {
    pub(crate) addr: SocketAddr,
    /// For each connection, whether `Acceptor::accept` reported ALPN h2.
    pub(crate) alpn_h2: Arc<Mutex<Vec<bool>>>,
    pub(crate) task: JoinHandle<()>,
}

pub(crate) type Handler = fn(Request<Incoming>) -> Response<Full<Bytes>>;

impl TlsServer {
    pub(crate) async fn start(acceptor: Arc<Acceptor>, handler: Handler) -> TlsServer {
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

    pub(crate) fn alpn_h2(&self) -> Vec<bool> {
        self.alpn_h2.lock().unwrap().clone()
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The fixed body, with the HTTP version the server saw.
pub(crate) fn fixed_body(request: Request<Incoming>) -> Response<Full<Bytes>> {
    Response::builder()
        .header("x-request-version", format!("{:?}", request.version()))
        .body(Full::new(body()))
        .unwrap()
}

pub(crate) fn client_config(
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

pub(crate) async fn connect_with(
    addr: SocketAddr,
    config: Arc<ClientConfig>,
) -> TlsStream<TcpStream> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    TlsConnector::from(config)
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .expect("TLS handshake")
}

/// A TLS 1.3/1.2 connection offering `alpn`, trusting only `ca`.
pub(crate) async fn connect(
    addr: SocketAddr,
    ca: &CertificateDer<'static>,
    alpn: &[&[u8]],
) -> TlsStream<TcpStream> {
    let versions = rustls::DEFAULT_VERSIONS;
    connect_with(addr, client_config(ca, versions, alpn)).await
}

pub(crate) fn peer_certificate(stream: &TlsStream<TcpStream>) -> CertificateDer<'static> {
    stream
        .get_ref()
        .1
        .peer_certificates()
        .expect("a certificate")[0]
        .clone()
}

/// One HTTP connection over a TLS stream: HTTP/2 when ALPN chose h2, else HTTP/1.1.
pub(crate) enum Http {
    H1(hyper::client::conn::http1::SendRequest<Empty<Bytes>>),
    H2(hyper::client::conn::http2::SendRequest<Empty<Bytes>>),
}

impl Http {
    pub(crate) async fn over(stream: TlsStream<TcpStream>) -> Http {
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
    pub(crate) async fn get(&mut self, path: &str) -> (Response<()>, Bytes) {
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

pub(crate) fn seen_version(response: &Response<()>) -> &str {
    response.headers()["x-request-version"].to_str().unwrap()
}
