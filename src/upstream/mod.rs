//! The jobs backend: a pooled, streaming HTTP client that forwards requests with their path
//! and query unchanged, and maps connection failures and timeouts to 502 and 504.
//!
//! - [`headers`]: pure header work (hop-by-hop, `X-Forwarded-*`, `Link`/`Location` rewriting).
//! - [`cache`]: the per-caller metadata cache in front of the job metadata endpoints.

pub mod cache;
pub mod headers;
pub mod jobs;

use std::sync::Arc;
use std::time::Duration;

use http::{header, HeaderValue, Request, Response, Uri};
use hyper::body::Incoming;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::{TokioExecutor, TokioTimer};

use crate::body::Body;
use crate::config::{BaseUrl, UpstreamConfig};
use crate::context::RequestContext;
use crate::error::GatewayError;
use crate::metrics::Metrics;

pub struct Upstream {
    client: Client<HttpsConnector<HttpConnector>, Body>,
    metrics: Arc<Metrics>,
    base: BaseUrl,
    /// Absolute bases the upstream may put in `Link`/`Location`: its own URL and the
    /// configured `rewrite_bases`.
    rewrite_from: Vec<String>,
    response_timeout: Duration,
}

impl Upstream {
    pub fn new(config: &UpstreamConfig, metrics: Arc<Metrics>) -> Self {
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(config.pool_idle_timeout)
            .pool_max_idle_per_host(config.pool_max_idle_per_host)
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .build(connector(config));
        let rewrite_from = std::iter::once(&config.url)
            .chain(&config.rewrite_bases)
            .map(|b| b.as_str().to_owned())
            .collect();
        Self {
            client,
            metrics,
            base: config.url.clone(),
            rewrite_from,
            response_timeout: config.response_timeout,
        }
    }

    /// The upstream URI for a gateway path and query (`/api/v4/...`).
    pub fn uri_for(&self, path_and_query: &str) -> Result<Uri, GatewayError> {
        format!("{}{path_and_query}", self.base.as_str())
            .parse()
            .map_err(|_| GatewayError::BadRequest("request target cannot be forwarded"))
    }

    /// Send a request upstream and wait for its response headers, at most the configured
    /// response timeout. The body streams afterwards.
    pub async fn send(
        &self,
        mut request: Request<Body>,
    ) -> Result<Response<Incoming>, GatewayError> {
        if let Ok(host) = HeaderValue::from_str(self.base.authority()) {
            request.headers_mut().insert(header::HOST, host);
        }
        match tokio::time::timeout(self.response_timeout, self.client.request(request)).await {
            Err(_elapsed) => {
                self.metrics.upstream_error("timeout");
                Err(GatewayError::UpstreamTimeout)
            }
            Ok(Err(error)) => {
                self.metrics.upstream_error("unavailable");
                Err(GatewayError::UpstreamUnavailable(
                    crate::error::error_chain(&error),
                ))
            }
            Ok(Ok(response)) => Ok(response),
        }
    }

    /// Forward the caller's request as it is (body streamed), minus hop-by-hop headers,
    /// plus `X-Forwarded-*`.
    pub async fn forward<B>(
        &self,
        request: Request<B>,
        ctx: &RequestContext,
    ) -> Result<Response<Incoming>, GatewayError>
    where
        B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
        B::Error: Into<crate::body::BoxError>,
    {
        let request = request.map(crate::body::boxed);
        let (mut parts, body) = request.into_parts();
        let path_and_query = parts
            .uri
            .path_and_query()
            .map_or("/", |pq| pq.as_str())
            .to_owned();
        parts.uri = self.uri_for(&path_and_query)?;
        // The upstream connection is ours: always HTTP/1.1 or what the pool negotiates.
        parts.version = http::Version::HTTP_11;
        headers::strip_hop_by_hop(&mut parts.headers);
        headers::set_forwarded(
            &mut parts.headers,
            ctx.peer.ip(),
            ctx.proto,
            ctx.host.as_deref(),
        );
        self.send(Request::from_parts(parts, body)).await
    }

    /// Make an upstream response fit to send to the caller.
    pub fn prepare_response(&self, headers: &mut http::HeaderMap, ctx: &RequestContext) {
        headers::strip_hop_by_hop(headers);
        let from: Vec<&str> = self.rewrite_from.iter().map(String::as_str).collect();
        headers::rewrite_response_urls(headers, &from, &ctx.public_base);
    }
}

/// TCP with the configured timeouts, then TLS for an `https://` upstream: the platform's roots
/// plus `upstream.ca_file`, ALPN `h2` or `http/1.1` (the upstream picks). `http://` stays plain.
fn connector(config: &UpstreamConfig) -> HttpsConnector<HttpConnector> {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(Some(config.connect_timeout));
    http.set_nodelay(true);
    // TCP keepalive notices a backend that vanished without a FIN while a pooled
    // connection sits idle.
    http.set_keepalive(Some(Duration::from_secs(60)));
    let extra = match &config.ca_file {
        None => Vec::new(),
        // Loading the config has read this file already; it can only fail here if it went
        // away since, or for a config built in code. Then the platform's roots still apply.
        Some(path) => crate::tls::ca_certificates(path).unwrap_or_else(|error| {
            tracing::error!(%error, "upstream.ca_file not used");
            Vec::new()
        }),
    };
    HttpsConnectorBuilder::new()
        .with_tls_config(crate::tls::client_config(&extra))
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(http)
}
