//! GitLab's artifact downloads with object storage: where an archive's object lives (the
//! hashed `@final` key) and how the two archive routes answer once access is granted.
//!
//! - [`DownloadMode::Redirect`] is GitLab's default (`proxy_download: false`): Rails
//!   (Grape's `redirect`) answers `302` to a presigned URL of the object, with a
//!   `text/plain` body naming it; a `HEAD` gets `303` to a presigned HEAD URL, because
//!   Grape answers a non-GET over HTTP/1.1 with 303.
//! - [`DownloadMode::Proxy`] is `proxy_download: true`: Workhorse's `send-url` fetches the
//!   presigned URL itself, passing `Range` and the `If-*` headers through, and streams
//!   storage's status, length, range and validators back.
//!
//! Storage is an S3 bucket ([`ArtifactStore::new`], signing with its credentials) or a local
//! directory the backend serves itself as object storage ([`ArtifactStore::local`], see
//! `objects`). Every answer is signed afresh and carries a signed nonce, so two answers
//! differ even within the one second that SigV4's `X-Amz-Date` can tell apart (GitLab's
//! signatures change with time; tests of a gateway's cache need them to change every time).

use std::error::Error as StdError;
use std::hash::{BuildHasher, RandomState};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use object_store::aws::AmazonS3;
use object_store::path::Path;
use object_store::signer::{SignedUrlOptions, Signer};
use sha2::{Digest, Sha256};

use super::objects::LocalObjects;
use super::RecordedRequest;

/// A response body of the sample backend: whole (JSON, text) or streamed from storage.
pub(super) type Body = UnsyncBoxBody<Bytes, Box<dyn StdError + Send + Sync>>;

/// GitLab's default lifetime of a presigned download URL (fog-aws, `url` with 15 minutes).
const DEFAULT_PRESIGN_TTL: Duration = Duration::from_secs(15 * 60);

/// The signed query parameter that makes every URL unique; storage ignores it.
const NONCE_PARAM: &str = "sample-nonce";

/// Request headers Workhorse's `send-url` passes on to storage.
const PASSED_TO_STORAGE: [&str; 6] = [
    "range",
    "if-match",
    "if-none-match",
    "if-modified-since",
    "if-unmodified-since",
    "if-range",
];

/// Storage response headers passed back to the caller in proxy mode (Workhorse keeps Rails'
/// `Cache-Control`, `Expires`, `Date` and `Pragma` instead of storage's).
const PASSED_FROM_STORAGE: [&str; 5] = [
    "content-length",
    "content-range",
    "accept-ranges",
    "etag",
    "last-modified",
];

/// How the archive routes hand out an archive, as GitLab's `proxy_download` setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DownloadMode {
    /// `302` to a presigned URL (GitLab's default).
    Redirect,
    /// `200`/`206`/`304` with the bytes, streamed from storage.
    Proxy,
}

/// The object storage behind the archive routes, the download mode and the presigned
/// URLs' lifetime.
#[derive(Debug)]
pub struct ArtifactStore {
    backing: Backing,
    mode: DownloadMode,
    ttl: Duration,
    nonce: AtomicU64,
}

/// Where the objects are.
#[derive(Debug)]
enum Backing {
    /// An S3 bucket (boxed: a signer and a client are large beside a path and a secret).
    S3(Box<Bucket>),
    /// Files under a directory, served by the backend's own object route.
    Local(LocalObjects),
}

/// An S3 bucket: URLs signed with its credentials; proxy mode fetches them over HTTP.
#[derive(Debug)]
struct Bucket {
    s3: AmazonS3,
    client: Client<HttpConnector, Empty<Bytes>>,
}

impl ArtifactStore {
    /// Archives in `s3` (keys are paths in its bucket), answered in `mode`. Proxy mode
    /// reaches storage over plain HTTP only (the tests' S3 server).
    pub fn new(s3: AmazonS3, mode: DownloadMode) -> Self {
        let client = Client::builder(TokioExecutor::new()).build_http();
        Self::with(Backing::S3(Box::new(Bucket { s3, client })), mode)
    }

    /// Archives as files under `dir` (keys are paths below it), answered in `mode`: the
    /// presigned URLs point at the backend itself (`/-/objects/<key>?expires=…&signature=…`,
    /// signed with a secret of this store), and proxy mode reads the files directly. Needs
    /// no S3 server, so the demo can run upstream mode.
    pub fn local(dir: PathBuf, mode: DownloadMode) -> Self {
        Self::with(Backing::Local(LocalObjects::new(dir)), mode)
    }

    fn with(backing: Backing, mode: DownloadMode) -> Self {
        ArtifactStore {
            backing,
            mode,
            ttl: DEFAULT_PRESIGN_TTL,
            nonce: AtomicU64::new(0),
        }
    }

    /// How long presigned URLs stay valid (whole seconds, at least 1; default 15 min), so
    /// a test can make them expire quickly.
    pub fn presign_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl.max(Duration::from_secs(1));
        self
    }

    /// The download mode.
    pub fn mode(&self) -> DownloadMode {
        self.mode
    }

    /// The local store, whose object route the backend serves.
    pub(super) fn local_objects(&self) -> Option<&LocalObjects> {
        match &self.backing {
            Backing::Local(objects) => Some(objects),
            Backing::S3(_) => None,
        }
    }

    /// A fresh presigned URL for `method` on `key`; `base` is the backend's own URL.
    async fn sign(&self, method: Method, key: &str, base: &str) -> object_store::Result<String> {
        let nonce = self.nonce.fetch_add(1, Ordering::Relaxed);
        match &self.backing {
            Backing::S3(bucket) => {
                let options =
                    SignedUrlOptions::default().with_query([(NONCE_PARAM, nonce.to_string())]);
                let url = bucket
                    .s3
                    .signed_url_opts(method, &Path::from(key), self.ttl, &options)
                    .await?;
                Ok(url.to_string())
            }
            Backing::Local(objects) => Ok(objects
                .signer()
                .presign(base, &method, key, self.ttl, nonce)),
        }
    }

    /// Answer an archive request whose access checks passed and whose object is `key`;
    /// `base` is the backend's own URL (`http://host:port`).
    pub(super) async fn answer(
        &self,
        req: &RecordedRequest,
        key: &str,
        base: &str,
    ) -> Response<Body> {
        let head = req.method == Method::HEAD;
        let method = if head { Method::HEAD } else { Method::GET };
        let proxy_client = match (self.mode, &self.backing) {
            (DownloadMode::Redirect, _) => None,
            (DownloadMode::Proxy, Backing::S3(bucket)) => Some(&bucket.client),
            (DownloadMode::Proxy, Backing::Local(objects)) => {
                // The same files and the same range and condition logic as the object
                // route, without an HTTP round trip to ourselves.
                let stored = objects.serve(&method, &passed_to_storage(req), key).await;
                return relay(stored);
            }
        };
        let url = match self.sign(method.clone(), key, base).await {
            Ok(url) => url,
            Err(_) => return internal_error(),
        };
        match proxy_client {
            None => redirect(&url, head),
            Some(client) => proxy(client, req, method, &url).await,
        }
    }
}

/// Workhorse's `send-url`: fetch the object with the caller's range and conditions.
async fn proxy(
    client: &Client<HttpConnector, Empty<Bytes>>,
    req: &RecordedRequest,
    method: Method,
    url: &str,
) -> Response<Body> {
    let mut upstream = Request::builder().method(method).uri(url);
    if let Some(headers) = upstream.headers_mut() {
        *headers = passed_to_storage(req);
    }
    let Ok(upstream) = upstream.body(Empty::new()) else {
        return internal_error();
    };
    let Ok(stored) = client.request(upstream).await else {
        return internal_error();
    };
    relay(stored.map(|body| body.map_err(|e| Box::new(e) as _).boxed_unsync()))
}

/// The caller's headers Workhorse passes on to storage.
fn passed_to_storage(req: &RecordedRequest) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for name in PASSED_TO_STORAGE {
        for value in req.headers.get_all(name) {
            headers.append(HeaderName::from_static(name), value.clone());
        }
    }
    headers
}

/// Storage's answer as Workhorse streams it back: status, body, length, range and
/// validators; GitLab's archive and common headers instead of storage's others.
fn relay(stored: Response<Body>) -> Response<Body> {
    let (parts, body) = stored.into_parts();
    let mut response = Response::new(body);
    *response.status_mut() = parts.status;
    let headers = response.headers_mut();
    for name in PASSED_FROM_STORAGE {
        if let Some(value) = parts.headers.get(name) {
            headers.insert(HeaderName::from_static(name), value.clone());
        }
    }
    if parts.status.is_success() {
        archive_headers(headers);
    }
    super::handlers::common_headers(headers);
    response
}

/// `Content-Type` and `Content-Disposition` of GitLab's archive download.
fn archive_headers(headers: &mut HeaderMap) {
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/zip"),
    );
    headers.insert(
        http::header::CONTENT_DISPOSITION,
        HeaderValue::from_static(
            "attachment; filename=\"artifacts.zip\"; filename*=UTF-8''artifacts.zip",
        ),
    );
}

/// Grape's `redirect`: 302 for GET, 303 for HEAD (a non-GET over HTTP/1.1), `text/plain`.
fn redirect(url: &str, head: bool) -> Response<Body> {
    let (status, body) = if head {
        (
            StatusCode::SEE_OTHER,
            format!("An alternate resource is located at {url}."),
        )
    } else {
        (
            StatusCode::FOUND,
            format!("This resource has been moved temporarily to {url}."),
        )
    };
    let mut response = Response::new(whole(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    if let Ok(location) = HeaderValue::from_str(url) {
        headers.insert(http::header::LOCATION, location);
    }
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain"),
    );
    super::handlers::common_headers(headers);
    response
}

fn internal_error() -> Response<Body> {
    let mut response = Response::new(whole(r#"{"message":"500 Internal Server Error"}"#.into()));
    *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    let headers = response.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    super::handlers::common_headers(headers);
    response
}

/// A whole body as a [`Body`].
pub(super) fn whole(body: String) -> Body {
    Full::new(Bytes::from(body))
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// GitLab's key for a directly uploaded artifact of project `project_id`
/// (`ObjectStorage#generate_final_store_path` inside `Gitlab::HashedPath`):
/// `h[0..2]/h[2..4]/h/@final/r[0..2]/r[2..4]/r[4..]`, where `h` is the sha256 hex of the
/// project id in decimal and `r` the sha256 hex of a random value (a UUID in GitLab).
pub(super) fn final_store_path(project_id: u64) -> String {
    let h = hex_sha256(project_id.to_string().as_bytes());
    let r = hex_sha256(&random_seed());
    format!(
        "{}/{}/{h}/@final/{}/{}/{}",
        &h[0..2],
        &h[2..4],
        &r[0..2],
        &r[2..4],
        &r[4..]
    )
}

fn hex_sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// 16 unpredictable bytes: the process's random hasher keys over a counter and the time.
pub(super) fn random_seed() -> [u8; 16] {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let a = RandomState::new().hash_one((n, nanos));
    let b = RandomState::new().hash_one((nanos, n));
    let mut seed = [0u8; 16];
    seed[..8].copy_from_slice(&a.to_le_bytes());
    seed[8..].copy_from_slice(&b.to_le_bytes());
    seed
}

#[cfg(test)]
mod tests {
    use super::final_store_path;

    #[test]
    fn final_store_path_has_gitlabs_hashed_shape() {
        // sha256("1"), computed independently.
        let h = "6b86b273ff34fce19d6b804eff5a3f5747ada4eaa22f1d49c01e52ddb7875b4b";
        let key = final_store_path(1);
        let parts: Vec<&str> = key.split('/').collect();
        assert_eq!(parts.len(), 7, "{key}");
        assert_eq!(&parts[..4], &["6b", "86", h, "@final"], "{key}");
        let hex = |s: &str| {
            s.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        };
        assert!(
            parts[4].len() == 2 && parts[5].len() == 2 && parts[6].len() == 60,
            "{key}"
        );
        assert!(parts[4..].iter().all(|p| hex(p)), "{key}");
        assert_ne!(final_store_path(1), key, "a fresh random part each time");
    }
}
