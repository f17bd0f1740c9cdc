//! Test harness: the real gateway on 127.0.0.1:0 in front of the sample jobs backend, and a
//! real HTTP client.
#![allow(dead_code)]

use std::time::Duration;

use artifact_gateway::config::{BaseUrl, Config};
use artifact_gateway::sample_backend::{BackendBuilder, SampleBackend};
use artifact_gateway::server::RunningGateway;

pub struct Harness {
    pub backend: SampleBackend,
    pub gateway: RunningGateway,
    pub client: reqwest::Client,
}

/// A configuration for tests: everything default, listening on an ephemeral port.
pub fn test_config(upstream: &str) -> Config {
    let mut config = Config::with_defaults(
        BaseUrl::parse(upstream).expect("upstream url"),
        "file:///nonexistent-storage".to_owned(),
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
        let backend = backend.start().await.expect("backend starts");
        let mut config = test_config(&backend.url());
        adjust(&mut config);
        let gateway = RunningGateway::start(config).await.expect("gateway starts");
        Self {
            backend,
            gateway,
            client: client(),
        }
    }

    /// Base URL of the gateway's API.
    pub fn api(&self) -> String {
        format!("http://{}/api/v4", self.gateway.addr())
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.api())
    }

    /// GET through the gateway with a personal token.
    pub async fn get(&self, path: &str, token: Option<&str>) -> reqwest::Response {
        let mut request = self.client.get(self.url(path));
        if let Some(token) = token {
            request = request.header("PRIVATE-TOKEN", token);
        }
        request.send().await.expect("request reaches the gateway")
    }
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
