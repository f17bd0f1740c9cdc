//! Test harness: the real gateway on 127.0.0.1:0 in front of the sample jobs backend, and a
//! real HTTP client.
#![allow(dead_code)]

pub mod corpus;
pub mod logs;
pub mod python;
pub mod raw;
pub mod s3;
pub mod storage;
pub mod wait;
pub mod zips;

/// The sample backend's personal access token of user `demo` (`PRIVATE-TOKEN`), a member
/// of every project the tests set up.
pub const TOKEN: &str = "demo-token";
/// A CI job token (`JOB-TOKEN`) of the sample backend: job 12 is running, so the token is
/// live; it belongs to project 1.
pub const JOB_TOKEN: &str = "job-token-12";

/// Runs each test body once on local storage and once on the S3 server: the file using it
/// imports `Kind` (`common::storage::Kind`), and the bodies are `async fn(Kind)`.
#[allow(unused_macros)]
macro_rules! on_both_storages {
    ($($name:ident => $body:ident;)*) => {$(
        mod $name {
            #[tokio::test]
            async fn local() { super::$body(super::Kind::Local).await }
            #[tokio::test]
            async fn s3() { super::$body(super::Kind::S3).await }
        }
    )*};
}

/// As `on_both_storages!`, and twice more in upstream mode (`artifacts.source =
/// "upstream"` before the GitLab-faithful sample backend): archives behind 302s to
/// presigned S3 URLs, and archives the backend streams itself.
#[allow(unused_macros)]
macro_rules! on_every_source {
    ($($name:ident => $body:ident;)*) => {$(
        mod $name {
            #[tokio::test]
            async fn local() { super::$body(super::Kind::Local).await }
            #[tokio::test]
            async fn s3() { super::$body(super::Kind::S3).await }
            #[tokio::test]
            async fn upstream() { super::$body(super::Kind::Upstream).await }
            #[tokio::test]
            async fn upstream_proxy() { super::$body(super::Kind::UpstreamProxy).await }
        }
    )*};
}

use std::sync::Arc;
use std::time::Duration;

use artifact_gateway::config::{BaseUrl, Config};
use artifact_gateway::dispatch::AppState;
use artifact_gateway::listener::RunningGateway;
use artifact_gateway::storage::Storage;
use object_store::ObjectStore;
use sample_backend::{ArtifactStore, BackendBuilder, SampleBackend};
use storage::{Kind, Tap, TestStorage};

/// Builds the store wrapper a test puts between the gateway and storage.
pub type WrapStore<'a> = Box<dyn FnOnce(Arc<dyn ObjectStore>) -> Tap + 'a>;

pub struct Harness {
    pub backend: SampleBackend,
    pub gateway: RunningGateway,
    pub client: reqwest::Client,
    pub storage: TestStorage,
    /// The wrapper between the gateway and storage, when the test asked for one.
    pub tap: Option<Arc<Tap>>,
}

/// A configuration for tests: everything default, listening on an ephemeral port, storage
/// in the (existing, unused) temp directory.
pub fn test_config(upstream: &str) -> Config {
    let mut config = Config::with_defaults(
        BaseUrl::parse(upstream).expect("upstream url"),
        format!("file://{}", std::env::temp_dir().display()),
    );
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.server.shutdown_grace = Duration::from_secs(5);
    config
}

impl Harness {
    pub async fn start(backend: BackendBuilder) -> Self {
        Self::start_with(backend, |_| {}).await
    }

    pub async fn start_with(backend: BackendBuilder, adjust: impl FnOnce(&mut Config)) -> Self {
        Self::build(backend, Kind::Local, None, adjust).await
    }

    /// A gateway on local or S3 storage.
    pub async fn on(kind: Kind, backend: BackendBuilder) -> Self {
        Self::build(backend, kind, None, |_| {}).await
    }

    /// A gateway whose storage is wrapped by `tap` (to count or break reads).
    pub async fn tapped(
        kind: Kind,
        backend: BackendBuilder,
        tap: impl FnOnce(Arc<dyn ObjectStore>) -> Tap,
        adjust: impl FnOnce(&mut Config),
    ) -> Self {
        Self::build(backend, kind, Some(Box::new(tap)), adjust).await
    }

    pub async fn build(
        backend: BackendBuilder,
        kind: Kind,
        tap: Option<WrapStore<'_>>,
        adjust: impl FnOnce(&mut Config),
    ) -> Self {
        Self::build_with_store(backend, kind, tap, |store| store, adjust).await
    }

    /// Upstream mode (`kind` an upstream kind) with presigned URLs valid for `presign_ttl`.
    pub async fn upstream_with_ttl(
        kind: Kind,
        backend: BackendBuilder,
        presign_ttl: Duration,
        adjust: impl FnOnce(&mut Config),
    ) -> Self {
        assert!(kind.is_upstream(), "{kind:?} has no presigned URLs");
        let store = move |store: ArtifactStore| store.presign_ttl(presign_ttl);
        Self::build_with_store(backend, kind, None, store, adjust).await
    }

    async fn build_with_store(
        backend: BackendBuilder,
        kind: Kind,
        tap: Option<WrapStore<'_>>,
        adjust_store: impl FnOnce(ArtifactStore) -> ArtifactStore,
        adjust: impl FnOnce(&mut Config),
    ) -> Self {
        let storage = TestStorage::start(kind).await;
        let backend = match storage.artifact_store() {
            Some(store) => backend
                .gitlab_job_token_rules()
                .artifacts_in(adjust_store(store)),
            None => backend,
        };
        let backend = backend.start().await.expect("backend starts");
        storage.learn_archive_keys(&backend);
        let mut config = test_config(&backend.url());
        storage.configure(&mut config);
        adjust(&mut config);
        let (state, tap) = match tap {
            None => (AppState::new(config).expect("storage opens"), None),
            Some(wrap) => {
                let tap = Arc::new(wrap(storage.object_store()));
                let store: Arc<dyn ObjectStore> = tap.clone();
                let storage = Storage::new(store, &config.storage);
                (AppState::with_storage(config, storage), Some(tap))
            }
        };
        let gateway = RunningGateway::start_with(state)
            .await
            .expect("gateway starts");
        Self {
            backend,
            gateway,
            client: client(),
            storage,
            tap,
        }
    }

    /// Base URL of the gateway's API.
    pub fn api(&self) -> String {
        format!("http://{}/api/v4", self.gateway.addr())
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.api())
    }

    /// A request through the gateway carrying [`TOKEN`] as `PRIVATE-TOKEN`, to add headers
    /// to before sending.
    pub fn request(&self, method: http::Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, self.url(path))
            .header("PRIVATE-TOKEN", TOKEN)
    }

    /// `method` through the gateway with a personal token, or none.
    pub async fn send(
        &self,
        method: http::Method,
        path: &str,
        token: Option<&str>,
    ) -> reqwest::Response {
        let mut request = self.client.request(method, self.url(path));
        if let Some(token) = token {
            request = request.header("PRIVATE-TOKEN", token);
        }
        request.send().await.expect("request reaches the gateway")
    }

    /// GET through the gateway with a personal token.
    pub async fn get(&self, path: &str, token: Option<&str>) -> reqwest::Response {
        self.send(http::Method::GET, path, token).await
    }

    /// HEAD through the gateway with a personal token.
    pub async fn head(&self, path: &str, token: Option<&str>) -> reqwest::Response {
        self.send(http::Method::HEAD, path, token).await
    }

    /// POST (no body) through the gateway with a personal token.
    pub async fn post(&self, path: &str, token: Option<&str>) -> reqwest::Response {
        self.send(http::Method::POST, path, token).await
    }

    /// GET with [`TOKEN`] and `Range: {range}`.
    pub async fn get_range(&self, path: &str, range: &str) -> reqwest::Response {
        self.request(http::Method::GET, path)
            .header("Range", range)
            .send()
            .await
            .expect("request reaches the gateway")
    }
}

/// A file of the zip corpus under `tests/fixtures/zip`.
pub fn fixture(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/zip")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A port free on 127.0.0.1 now, for a process that must be told its port up front.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

pub fn header<'a>(response: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    response.headers().get(name).and_then(|v| v.to_str().ok())
}

pub async fn json(response: reqwest::Response) -> serde_json::Value {
    let bytes = response.bytes().await.expect("body");
    serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&bytes)))
}
