//! Objects at URLs: the archives a jobs backend hands out in upstream mode, read with
//! ranged GETs. Either a presigned object-storage URL (S3, GCS, Azure SAS, a CDN) that
//! works without credentials, or the backend's own archive route, read with the caller's.
//!
//! A URL's query string is a signature that changes on every answer, its host and path
//! name the bucket and key, and its headers are credentials: none is printed.
//! [`RemoteObject`] shows as an opaque label (a digest of host and path, or the backend
//! route's path), and failures name the status, never the URL.
//!
//! Validators: the object's `ETag`, or (none sent) a weak one made from its size and
//! `Last-Modified`. Every read pinned to a validator sends it as `If-Match` when it is the
//! object's own, and checks the answer's validator either way: a store or backend that
//! ignores `If-Match` still cannot hand over bytes of another version. A `200` to a ranged
//! read of part of the object is refused the same way.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use http::{header, HeaderMap, HeaderValue, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Empty};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::{TokioExecutor, TokioTimer};
use object_store::GetRange;

use super::{ByteStream, ExactLength, Meta, Object, StorageError};
use crate::metrics::{Metrics, ReadKind};

/// Prefix of the validators made here from size and `Last-Modified`: never sent as
/// `If-Match` (the server has no such tag), only compared.
const MADE_VALIDATOR: &str = "W/\"gw-";

/// A 416 that did not say the object's size.
const UNKNOWN_SIZE: u64 = u64::MAX;

/// An object at a URL, with the headers each read sends.
pub struct RemoteObject {
    uri: Uri,
    headers: HeaderMap,
    /// What the archive index is cached under: no query, no credentials.
    key: String,
    /// For logs: a label that names neither storage host nor key.
    shown: String,
}

impl RemoteObject {
    /// A presigned URL: read without credentials; cached under the URL without its query.
    pub fn presigned(uri: Uri) -> Self {
        let key = format!(
            "{}://{}{}",
            uri.scheme_str().unwrap_or("http"),
            uri.authority().map_or("", |a| a.as_str()),
            uri.path()
        );
        let digest = crate::request::credentials::length_prefixed_sha256([key.as_bytes()]);
        let shown = format!(
            "located object {}",
            digest[..6]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        );
        Self {
            uri,
            headers: HeaderMap::new(),
            key,
            shown,
        }
    }

    /// The backend's own route, read with `headers` (the caller's credentials); cached
    /// under `key`, which must name the archive without the credentials.
    pub fn backend(uri: Uri, headers: HeaderMap, key: String) -> Self {
        let shown = format!("backend route {}", uri.path());
        Self {
            uri,
            headers,
            key,
            shown,
        }
    }

    /// The index cache key.
    pub fn key(&self) -> &str {
        &self.key
    }
}

impl fmt::Display for RemoteObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

impl fmt::Debug for RemoteObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RemoteObject({})", self.shown)
    }
}

/// The HTTP client for [`RemoteObject`]s, with storage's timeouts.
pub struct RemoteReader {
    client: Client<HttpsConnector<HttpConnector>, Empty<Bytes>>,
    read_timeout: Duration,
    metrics: Arc<Metrics>,
}

impl RemoteReader {
    /// `connect_timeout` and `read_timeout` as storage's; `extra_roots` trusted beside the
    /// platform's (storage's and the upstream's CA files).
    pub fn new(
        connect_timeout: Duration,
        read_timeout: Duration,
        extra_roots: &[rustls::pki_types::CertificateDer<'static>],
        metrics: Arc<Metrics>,
    ) -> Self {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(connect_timeout));
        http.set_nodelay(true);
        http.set_keepalive(Some(Duration::from_secs(60)));
        let connector = HttpsConnectorBuilder::new()
            .with_tls_config(crate::trust::client_config(extra_roots))
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .build(connector);
        Self {
            client,
            read_timeout,
            metrics,
        }
    }

    pub fn set_metrics(&mut self, metrics: Arc<Metrics>) {
        self.metrics = metrics;
    }

    /// Size and validators: a GET of the first byte. A presigned URL is signed for GET
    /// only (S3 signs the method), so a HEAD would be refused.
    pub async fn head(&self, object: &RemoteObject) -> Result<Meta, StorageError> {
        match self
            .get(ReadKind::Head, object, Some(GetRange::Bounded(0..1)), None)
            .await
        {
            Ok(read) => Ok(read.meta),
            // An empty object has no first byte; its size is in the 416.
            Err(StorageError::RangeNotSatisfiable { size: 0 }) => Ok(Meta {
                size: 0,
                etag: None,
                last_modified: None,
            }),
            Err(error) => Err(error),
        }
    }

    /// Read `range` (all when `None`) in one request. With `if_match`, a read of another
    /// version fails with `PreconditionFailed`.
    pub async fn get(
        &self,
        kind: ReadKind,
        object: &RemoteObject,
        range: Option<GetRange>,
        if_match: Option<String>,
    ) -> Result<Object, StorageError> {
        self.metrics.storage_request(kind);
        let timer = self.metrics.storage_read_seconds.start_timer();
        let mut request = Request::new(Empty::new());
        *request.uri_mut() = object.uri.clone();
        *request.headers_mut() = object.headers.clone();
        let headers = request.headers_mut();
        if let Some(range) = &range {
            headers.insert(header::RANGE, range_header(range)?);
        }
        if let Some(tag) = if_match
            .as_deref()
            .filter(|t| !t.starts_with(MADE_VALIDATOR))
        {
            if let Ok(value) = HeaderValue::from_str(tag) {
                headers.insert(header::IF_MATCH, value);
            }
        }
        let response =
            match tokio::time::timeout(self.read_timeout, self.client.request(request)).await {
                Err(_) => {
                    return Err(StorageError::Timeout(format!(
                        "{object}: no answer within {:?}",
                        self.read_timeout
                    )))
                }
                Ok(Err(error)) => {
                    let text = format!("{object}: {}", crate::causes::text(&error));
                    return Err(if crate::causes::is_timeout(&error) {
                        StorageError::Timeout(text)
                    } else {
                        StorageError::Unavailable(text)
                    });
                }
                Ok(Ok(response)) => response,
            };
        timer.observe_duration();
        let (parts, body) = response.into_parts();
        let answered = answer(
            parts.status,
            &parts.headers,
            range.as_ref(),
            if_match.is_some(),
        );
        let (meta, served) = match answered {
            Ok(answered) => answered,
            // Some stores send no size with a 416: ask for it. `bytes=0-0` itself is
            // unsatisfiable only for an empty object.
            Err(StorageError::RangeNotSatisfiable { size: UNKNOWN_SIZE }) => {
                let size = if range == Some(GetRange::Bounded(0..1)) {
                    0
                } else {
                    Box::pin(self.head(object)).await?.size
                };
                return Err(StorageError::RangeNotSatisfiable { size });
            }
            Err(error) => return Err(explain(error, object)),
        };
        if let Some(wanted) = &if_match {
            if meta.validator().as_deref() != Some(wanted.as_str()) {
                tracing::info!(%object, "object changed: its validator differs from the index's");
                return Err(StorageError::PreconditionFailed);
            }
        }
        let metrics = Arc::clone(&self.metrics);
        let body = frames(body, self.read_timeout)
            .inspect(move |chunk| {
                if let Ok(chunk) = chunk {
                    metrics.storage_read(kind, chunk.len() as u64);
                }
            })
            .boxed();
        let body = ExactLength::new(body, served.end - served.start).boxed();
        Ok(Object {
            meta,
            range: served,
            body,
        })
    }
}

impl Meta {
    /// What reads of this version are pinned to: the ETag, or one made from size and
    /// `Last-Modified` (`None` when the object has neither).
    pub fn validator(&self) -> Option<String> {
        self.etag.clone().or_else(|| {
            let modified = self.last_modified?;
            Some(format!(
                "{MADE_VALIDATOR}{:x}-{:x}\"",
                self.size,
                modified.timestamp()
            ))
        })
    }
}

/// Log where a refusal came from; the error itself stays free of the URL's query.
fn explain(error: StorageError, object: &RemoteObject) -> StorageError {
    match &error {
        StorageError::Unavailable(text) => StorageError::Unavailable(format!("{object}: {text}")),
        StorageError::Expired => {
            tracing::info!(%object, "the located URL was refused (expired or revoked)");
            error
        }
        _ => error,
    }
}

fn range_header(range: &GetRange) -> Result<HeaderValue, StorageError> {
    let value = match range {
        GetRange::Bounded(r) if r.end > r.start => format!("bytes={}-{}", r.start, r.end - 1),
        GetRange::Offset(start) => format!("bytes={start}-"),
        GetRange::Suffix(n) if *n > 0 => format!("bytes=-{n}"),
        _ => return Err(StorageError::Unavailable("empty range asked".into())),
    };
    HeaderValue::from_str(&value).map_err(|_| StorageError::Unavailable("bad range".into()))
}

/// The metadata and the byte range of an answer, or what it means when it is no answer.
fn answer(
    status: StatusCode,
    headers: &HeaderMap,
    asked: Option<&GetRange>,
    pinned: bool,
) -> Result<(Meta, Range<u64>), StorageError> {
    let text = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    let etag = text(header::ETAG).map(str::to_owned);
    let last_modified =
        text(header::LAST_MODIFIED).and_then(crate::http_util::conditional::parse_http_date);
    let meta = |size| Meta {
        size,
        etag: etag.clone(),
        last_modified,
    };
    match status {
        StatusCode::PARTIAL_CONTENT => {
            let (served, size) = text(header::CONTENT_RANGE)
                .and_then(parse_content_range)
                .ok_or_else(|| {
                    StorageError::Unavailable("206 without a usable Content-Range".into())
                })?;
            let expected = asked.and_then(|r| r.as_range(size).ok());
            if expected != Some(served.clone()) {
                return Err(StorageError::Unavailable(format!(
                    "asked for {asked:?}, answered bytes {served:?} of {size}"
                )));
            }
            Ok((meta(size), served))
        }
        StatusCode::OK => {
            let size = text(header::CONTENT_LENGTH)
                .and_then(|v| v.parse::<u64>().ok())
                .ok_or_else(|| StorageError::Unavailable("200 without Content-Length".into()))?;
            // The whole object is an answer to a range only when the range is all of it.
            match asked {
                Some(range) if range.as_range(size).ok() != Some(0..size) => Err(if pinned {
                    StorageError::PreconditionFailed
                } else {
                    StorageError::Unavailable("answered a ranged read with 200".into())
                }),
                _ => Ok((meta(size), 0..size)),
            }
        }
        StatusCode::PRECONDITION_FAILED => Err(StorageError::PreconditionFailed),
        StatusCode::RANGE_NOT_SATISFIABLE => Err(StorageError::RangeNotSatisfiable {
            size: text(header::CONTENT_RANGE)
                .and_then(|v| v.strip_prefix("bytes */"))
                .and_then(|n| n.trim().parse().ok())
                .unwrap_or(UNKNOWN_SIZE),
        }),
        StatusCode::NOT_FOUND | StatusCode::GONE => Err(StorageError::NotFound),
        // An expired or revoked signature (S3, Azure: 403; GCS: 400), or credentials the
        // backend no longer accepts: ask the backend again.
        StatusCode::BAD_REQUEST | StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
            Err(StorageError::Expired)
        }
        other => Err(StorageError::Unavailable(format!("answered {other}"))),
    }
}

/// `bytes FIRST-LAST/SIZE` → (FIRST..LAST+1, SIZE).
fn parse_content_range(value: &str) -> Option<(Range<u64>, u64)> {
    let rest = value.trim().strip_prefix("bytes ")?;
    let (span, size) = rest.split_once('/')?;
    let (first, last) = span.split_once('-')?;
    let (first, last, size): (u64, u64, u64) = (
        first.trim().parse().ok()?,
        last.trim().parse().ok()?,
        size.trim().parse().ok()?,
    );
    (first <= last && last < size).then_some((first..last + 1, size))
}

/// The body's data frames, each within `read_timeout` of the one before.
fn frames(body: hyper::body::Incoming, read_timeout: Duration) -> ByteStream {
    futures_util::stream::unfold(Some(body), move |state| async move {
        let mut body = state?;
        loop {
            return match tokio::time::timeout(read_timeout, body.frame()).await {
                Err(_) => Some((
                    Err(StorageError::Timeout(format!(
                        "no bytes within {read_timeout:?}"
                    ))),
                    None,
                )),
                Ok(None) => None,
                Ok(Some(Err(error))) => Some((
                    Err(StorageError::Unavailable(crate::causes::text(&error))),
                    None,
                )),
                Ok(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => Some((Ok(data), Some(body))),
                    Err(_trailers) => continue,
                },
            };
        }
    })
    .boxed()
}

#[cfg(test)]
mod tests;
