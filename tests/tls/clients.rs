//! The gateway's HTTPS clients: an upstream over HTTPS trusted through `upstream.ca_file`
//! (plain HTTP upstreams keep working), and S3 over HTTPS trusted through
//! `storage.ca_file` (a bad CA file fails the store, naming the key).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use artifact_gateway::listener::tls::Acceptor;
use artifact_gateway::listener::RunningGateway;
use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use sample_backend::BackendBuilder;
use tokio::net::{TcpListener, TcpStream};

use crate::common;
use crate::common::storage::Kind;
use crate::common::Harness;
use crate::support::{body, Ca, TempDir, TlsServer};

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
