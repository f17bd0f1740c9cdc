//! The jobs backend: a pooled, streaming HTTP client that forwards requests with their path
//! and query unchanged, and maps connection failures and timeouts to 502 and 504.
//!
//! - [`headers`]: pure header work (hop-by-hop, `X-Forwarded-*`, `Link`/`Location` rewriting).
//! - [`cache`]: the per-caller metadata cache in front of the job metadata endpoints.
//! - [`keyed`]: the allow-listed GETs sent through that cache, and their keys.
//! - [`jobs`]: the lookups the gateway makes as the caller before serving bytes.
//! - [`locate`]: upstream mode's question "where is this archive?", on the archive routes.
//!
//! Framing: every request leaves with a body that matches its framing headers. Forwarded
//! requests keep the client's `Content-Length` with the client's body behind it (hyper
//! fails and discards the connection if that body ends short); keyed GETs carry neither.

pub mod cache;
pub mod headers;
pub mod jobs;
pub mod keyed;
pub mod locate;

use std::sync::Arc;
use std::time::Duration;

use http::{header, HeaderValue, Request, Response, Uri};
use hyper::body::Incoming;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::{TokioExecutor, TokioTimer};

use tracing::Instrument;

use crate::config::{BaseUrl, UpstreamConfig};
use crate::error::GatewayError;
use crate::http_util::body::Body;
use crate::metrics::Metrics;
use crate::request::context::RequestContext;

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

    /// The configured base URL, without a trailing slash.
    pub fn base(&self) -> &str {
        self.base.as_str()
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
        body_decides_length(&mut request);
        let span = tracing::debug_span!(
            "upstream",
            method = %request.method(),
            path = request.uri().path(),
            status = tracing::field::Empty,
        );
        let answer = tokio::time::timeout(self.response_timeout, self.client.request(request))
            .instrument(span.clone())
            .await;
        if let Ok(Ok(response)) = &answer {
            span.record("status", response.status().as_u16());
        }
        match answer {
            Err(_elapsed) => {
                self.metrics.upstream_error("timeout");
                Err(GatewayError::UpstreamTimeout)
            }
            Ok(Err(error)) => {
                self.metrics.upstream_error("unavailable");
                Err(GatewayError::UpstreamUnavailable(crate::causes::text(
                    &error,
                )))
            }
            Ok(Ok(response)) => Ok(response),
        }
    }

    /// Send a keyed GET (see [`keyed`]).
    pub async fn send_keyed(
        &self,
        get: &keyed::KeyedGet,
    ) -> Result<Response<Incoming>, GatewayError> {
        let uri = self.uri_for(get.path_and_query())?;
        self.send(get.request(uri)).await
    }

    /// Forward the caller's request as it is (body streamed), minus hop-by-hop headers,
    /// with the forwarding headers of `ctx` in place of the client's.
    pub async fn forward<B>(
        &self,
        request: Request<B>,
        ctx: &RequestContext,
    ) -> Result<Response<Incoming>, GatewayError>
    where
        B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
        B::Error: Into<crate::http_util::body::BoxError>,
    {
        let request = request.map(crate::http_util::body::boxed);
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
        headers::join_cookies(&mut parts.headers);
        headers::replace_forwarding(&mut parts.headers, &ctx.forwarding);
        // hyper assumes a GET or HEAD of unknown length has no body and would drop it: a
        // chunked body is sent chunked, explicitly.
        if !http_body::Body::is_end_stream(&body)
            && http_body::Body::size_hint(&body).exact().is_none()
        {
            parts.headers.insert(
                header::TRANSFER_ENCODING,
                HeaderValue::from_static("chunked"),
            );
        }
        self.send(Request::from_parts(parts, body)).await
    }

    /// Make an upstream response fit to send to the caller.
    pub fn prepare_response(&self, headers: &mut http::HeaderMap, ctx: &RequestContext) {
        headers::strip_hop_by_hop(headers);
        let from: Vec<&str> = self.rewrite_from.iter().map(String::as_str).collect();
        headers::rewrite_response_urls(headers, &from, &ctx.public_base);
    }
}

/// A declared length the body cannot honour would leave the backend waiting for bytes
/// that never come, on a connection the pool then reuses: when the body knows its exact
/// size, a `Content-Length` that differs is dropped and hyper writes the body's own.
fn body_decides_length(request: &mut Request<Body>) {
    if let Some(exact) = http_body::Body::size_hint(request.body()).exact() {
        let declared = request.headers().get(header::CONTENT_LENGTH);
        if declared.is_some_and(|v| v.as_bytes() != exact.to_string().as_bytes()) {
            request.headers_mut().remove(header::CONTENT_LENGTH);
        }
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
        Some(path) => crate::trust::ca_certificates(path).unwrap_or_else(|error| {
            tracing::error!(%error, "upstream.ca_file not used");
            Vec::new()
        }),
    };
    HttpsConnectorBuilder::new()
        .with_tls_config(crate::trust::client_config(&extra))
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(http)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_content_length_the_body_cannot_honour_is_dropped() {
        let mut request = Request::new(crate::http_util::body::empty());
        request
            .headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from_static("1"));
        body_decides_length(&mut request);
        assert!(!request.headers().contains_key(header::CONTENT_LENGTH));
        let mut request = Request::new(crate::http_util::body::full("abc"));
        request
            .headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from_static("3"));
        body_decides_length(&mut request);
        assert_eq!(request.headers()[header::CONTENT_LENGTH], "3");
    }
}
