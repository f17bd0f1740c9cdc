//! The local object store of [`ArtifactStore::local`](super::ArtifactStore::local): objects
//! are files under one directory, at the keys the backend assigns (GitLab's hashed `@final`
//! paths), and their "presigned URLs" point at the sample backend itself, at
//! `/-/objects/<key>?expires=<unix seconds>&nonce=<n>&signature=<hex>`, outside `/api/v4` as
//! object storage is outside GitLab's API. With it, upstream mode runs with nothing but the
//! binary (`--demo --source upstream`).
//!
//! The object route behaves like S3 where the gateway depends on it:
//! - the signature covers the method, the key, the expiry and a nonce (so every answer's URL
//!   differs); a wrong signature or a passed expiry is `403` with a short XML body (the
//!   gateway then asks the backend again); a missing object is `404`;
//! - `GET`/`HEAD` of the whole object: `200` with `Content-Length`, a strong `ETag`,
//!   `Last-Modified`, `Accept-Ranges: bytes`, `Content-Type: application/octet-stream`;
//! - one `Range` (`a-b`, `a-`, `-n`; a suffix longer than the object is all of it): `206`
//!   with `Content-Range`, or `416` with `Content-Range: bytes */SIZE`; several ranges or a
//!   malformed one are ignored (the whole `200`), as RFC 9110 allows;
//! - in RFC 9110's order: `If-Match` (else `If-Unmodified-Since`) failing is `412`,
//!   `If-None-Match` (else `If-Modified-Since`) holding is `304`, an `If-Range` that does not
//!   name the file turns a range into the whole `200`.
//!
//! Files stream in bounded chunks from the handle opened for the answer. The `ETag` is made
//! of the file's size and modification time in nanoseconds, so a rewrite changes it.

use std::fmt;
use std::fs::File;
use std::io;
use std::ops::Range;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Utc};
use futures_util::TryStreamExt;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Response, StatusCode};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::artifacts::{random_seed, whole, Body};
use super::RecordedRequest;
use crate::http_util::{self, http_date, parse_http_date};

/// Where the object route lives on the sample backend.
pub(super) const PREFIX: &str = "/-/objects/";

/// Key bytes written raw in a URL path; everything else is percent-encoded.
const KEY_RAW: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'/')
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'@');

/// Objects as files under `dir`, and the secret their URLs are signed with (random per
/// store, so a URL of one backend is no good at another).
pub(super) struct LocalObjects {
    dir: PathBuf,
    secret: [u8; 32],
}

impl fmt::Debug for LocalObjects {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalObjects")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

/// Why the object route refuses a URL before it looks at the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Refusal {
    /// The signature does not match the method, key, expiry and nonce (or one is missing).
    BadSignature,
    /// A good signature whose expiry has passed.
    Expired,
}

/// What a request gets once the file's size and validators are known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Answer {
    Whole,
    Partial(Range<u64>),
    NotModified,
    PreconditionFailed,
    Unsatisfiable,
}

impl LocalObjects {
    pub(super) fn new(dir: PathBuf) -> Self {
        let mut secret = Sha256::new();
        secret.update(random_seed());
        secret.update(random_seed());
        Self {
            dir,
            secret: secret.finalize().into(),
        }
    }

    /// A URL on `base` (the backend's `http://host:port`) for `method` on `key`, valid for
    /// `ttl` (whole seconds) from now.
    pub(super) fn presign(
        &self,
        base: &str,
        method: &Method,
        key: &str,
        ttl: Duration,
        nonce: u64,
    ) -> String {
        let expires = unix_now().saturating_add(ttl.as_secs());
        let signature = signature(&self.secret, method.as_str(), key, expires, nonce);
        let path = utf8_percent_encode(key, KEY_RAW);
        format!("{base}{PREFIX}{path}?expires={expires}&nonce={nonce}&signature={signature}")
    }

    /// Whether `query` signs `method` on `key` and has not expired at `now` (unix seconds).
    /// A URL is good through the whole second its expiry names, as S3's are.
    pub(super) fn check(
        &self,
        method: &Method,
        key: &str,
        query: &str,
        now: u64,
    ) -> Result<(), Refusal> {
        let param = |name: &str| {
            form_urlencoded::parse(query.as_bytes())
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.into_owned())
        };
        let number = |name: &str| param(name).and_then(|v| v.parse::<u64>().ok());
        let (Some(expires), Some(nonce), Some(given)) =
            (number("expires"), number("nonce"), param("signature"))
        else {
            return Err(Refusal::BadSignature);
        };
        let wanted = signature(&self.secret, method.as_str(), key, expires, nonce);
        if !same_bytes(wanted.as_bytes(), given.as_bytes()) {
            return Err(Refusal::BadSignature);
        }
        if now > expires {
            return Err(Refusal::Expired);
        }
        Ok(())
    }

    /// The object route: check the URL, then answer from the file.
    pub(super) async fn handle(&self, req: &RecordedRequest) -> Response<Body> {
        if req.method != Method::GET && req.method != Method::HEAD {
            let mut response = xml_error(
                StatusCode::METHOD_NOT_ALLOWED,
                "MethodNotAllowed",
                "The specified method is not allowed against this resource.",
            );
            let allow = HeaderValue::from_static("GET, HEAD");
            response.headers_mut().insert(header::ALLOW, allow);
            return response;
        }
        let full = req.path_and_query.as_str();
        let (path, query) = full.split_once('?').unwrap_or((full, ""));
        let raw_key = path.strip_prefix(PREFIX).unwrap_or_default();
        let key = percent_decode_str(raw_key).decode_utf8_lossy();
        match self.check(&req.method, &key, query, unix_now()) {
            Ok(()) => self.serve(&req.method, &req.headers, &key).await,
            Err(Refusal::Expired) => {
                xml_error(StatusCode::FORBIDDEN, "AccessDenied", "Request has expired")
            }
            Err(Refusal::BadSignature) => xml_error(
                StatusCode::FORBIDDEN,
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided.",
            ),
        }
    }

    /// Answer `method` on `key` with the range and conditions in `headers`, as S3 would
    /// once the signature is good (also proxy mode's path, which has no URL to check).
    pub(super) async fn serve(
        &self,
        method: &Method,
        headers: &HeaderMap,
        key: &str,
    ) -> Response<Body> {
        let not_found = || {
            xml_error(
                StatusCode::NOT_FOUND,
                "NoSuchKey",
                "The specified key does not exist.",
            )
        };
        let Some(path) = self.path_of(key) else {
            return not_found();
        };
        let (file, pin, modified) = match tokio::task::spawn_blocking(move || open(path)).await {
            Ok(Ok(opened)) => opened,
            Ok(Err(error)) if missing(&error) => return not_found(),
            _ => {
                return xml_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "InternalError",
                    "The object could not be read.",
                )
            }
        };
        let etag = pin.etag.clone();
        let (status, span) = match decide(headers, pin.size, &etag, modified) {
            Answer::Whole => (StatusCode::OK, 0..pin.size),
            Answer::Partial(span) => (StatusCode::PARTIAL_CONTENT, span),
            Answer::NotModified => {
                let mut response = Response::new(whole(String::new()));
                *response.status_mut() = StatusCode::NOT_MODIFIED;
                validators(response.headers_mut(), &etag, modified);
                return response;
            }
            Answer::PreconditionFailed => {
                return xml_error(
                    StatusCode::PRECONDITION_FAILED,
                    "PreconditionFailed",
                    "At least one of the pre-conditions you specified did not hold",
                )
            }
            Answer::Unsatisfiable => {
                let mut response = xml_error(
                    StatusCode::RANGE_NOT_SATISFIABLE,
                    "InvalidRange",
                    "The requested range is not satisfiable",
                );
                let unsatisfied = header_value(&format!("bytes */{}", pin.size));
                response
                    .headers_mut()
                    .insert(header::CONTENT_RANGE, unsatisfied);
                return response;
            }
        };
        let body = if *method == Method::HEAD || span.is_empty() {
            whole(String::new())
        } else {
            let mut file = tokio::fs::File::from_std(file);
            let (start, len) = (span.start, span.end - span.start);
            let chunks = futures_util::stream::once(async move {
                file.seek(io::SeekFrom::Start(start)).await?;
                Ok::<_, io::Error>(tokio_util::io::ReaderStream::with_capacity(
                    file.take(len),
                    64 * 1024,
                ))
            })
            .try_flatten()
            .map_ok(Frame::data)
            .map_err(|e| Box::new(e) as _);
            StreamBody::new(chunks).boxed_unsync()
        };
        let mut response = Response::new(body);
        *response.status_mut() = status;
        let out = response.headers_mut();
        out.insert(
            header::CONTENT_LENGTH,
            HeaderValue::from(span.end - span.start),
        );
        if status == StatusCode::PARTIAL_CONTENT {
            let content_range = header_value(&format!(
                "bytes {}-{}/{}",
                span.start,
                span.end - 1,
                pin.size
            ));
            out.insert(header::CONTENT_RANGE, content_range);
        }
        out.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
        out.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
        validators(out, &etag, modified);
        response
    }

    /// The file of `key`, for keys of plain segments only: no `..`, `.` or empty segment
    /// can reach outside the directory (the signature covers the key too; this does not
    /// rely on it).
    fn path_of(&self, key: &str) -> Option<PathBuf> {
        let plain =
            |segment: &str| !matches!(segment, "" | "." | "..") && !segment.contains(['\\', '\0']);
        key.split('/').all(plain).then(|| self.dir.join(key))
    }
}

/// Hex SHA-256 over the secret and the signed fields, each length-prefixed.
///
/// A plain keyed hash rather than HMAC, as the crate has no HMAC and this guards sample
/// files only. Its known weakness, length extension (signing the message with bytes
/// appended, without the secret), does not help here: the route rebuilds the message from
/// the URL's fields, and an extended message is the encoding of no fields at all, since
/// its length prefixes end before its bytes do.
fn signature(secret: &[u8; 32], method: &str, key: &str, expires: u64, nonce: u64) -> String {
    let mut hash = Sha256::new();
    hash.update(secret);
    for field in [method.as_bytes(), key.as_bytes()] {
        hash.update((field.len() as u64).to_be_bytes());
        hash.update(field);
    }
    hash.update(expires.to_be_bytes());
    hash.update(nonce.to_be_bytes());
    hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Equality that takes as long whatever the first differing byte.
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// What a request gets from a file of `size` bytes with these validators (RFC 9110
/// §13.2.2's order: `If-Match`, `If-Unmodified-Since`, `If-None-Match`,
/// `If-Modified-Since`, then `Range` with `If-Range`).
pub(super) fn decide(
    headers: &HeaderMap,
    size: u64,
    etag: &str,
    modified: DateTime<Utc>,
) -> Answer {
    if let Some(list) = http_util::joined(headers, &header::IF_MATCH) {
        if !strong_match(&list, etag) {
            return Answer::PreconditionFailed;
        }
    } else if let Some(since) =
        http_util::joined(headers, &header::IF_UNMODIFIED_SINCE).and_then(|v| parse_http_date(&v))
    {
        // HTTP dates have whole seconds.
        if modified.timestamp() > since.timestamp() {
            return Answer::PreconditionFailed;
        }
    }
    if http_util::not_modified(headers, etag, modified) {
        return Answer::NotModified;
    }
    match http_util::requested_range(headers, size) {
        Some(selected) if http_util::range_allowed(headers, etag, modified) => {
            selected.map_or(Answer::Unsatisfiable, Answer::Partial)
        }
        _ => Answer::Whole,
    }
}

/// `If-Match`: `*`, or a listed tag equal to `etag` by strong comparison (a weak tag never
/// matches).
fn strong_match(list: &str, etag: &str) -> bool {
    list.split(',').map(str::trim).any(|tag| {
        tag == "*" || (!tag.starts_with("W/") && tag.trim_matches('"') == etag.trim_matches('"'))
    })
}

/// An opened object file's size and `ETag`.
struct Pin {
    size: u64,
    etag: String,
}

fn open(path: PathBuf) -> io::Result<(File, Pin, DateTime<Utc>)> {
    let file = File::open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(io::ErrorKind::NotFound.into());
    }
    let modified = meta.modified()?;
    let nanos = modified
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let pin = Pin {
        size: meta.len(),
        etag: format!("\"{:x}-{nanos:x}\"", meta.len()),
    };
    Ok((file, pin, DateTime::<Utc>::from(modified)))
}

fn missing(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
    )
}

fn validators(headers: &mut HeaderMap, etag: &str, modified: DateTime<Utc>) {
    headers.insert(header::ETAG, header_value(etag));
    headers.insert(header::LAST_MODIFIED, header_value(&http_date(modified)));
}

/// Values built here are ASCII (numbers, hex, dates).
fn header_value(value: &str) -> HeaderValue {
    HeaderValue::from_str(value).expect("an ASCII header value")
}

/// S3's error answer: a short XML body naming the code.
fn xml_error(status: StatusCode, code: &str, message: &str) -> Response<Body> {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message></Error>"
    );
    let mut response = Response::new(whole(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/xml"),
    );
    response
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ETAG: &str = "\"1-2-3-4-5\"";

    fn modified() -> DateTime<Utc> {
        parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").unwrap()
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        map
    }

    fn answer(pairs: &[(&str, &str)]) -> Answer {
        decide(&headers(pairs), 1000, ETAG, modified())
    }

    fn query_of(url: &str) -> &str {
        url.split_once('?').unwrap().1
    }

    #[test]
    fn a_presigned_url_checks_out_until_its_second_has_passed() {
        let objects = LocalObjects::new(PathBuf::from("/nonexistent"));
        let key = "6b/86/abc/@final/aa/bb/cc";
        let url = objects.presign("http://h:1", &Method::GET, key, Duration::from_secs(5), 7);
        assert!(
            url.starts_with("http://h:1/-/objects/6b/86/abc/@final/aa/bb/cc?expires="),
            "{url}"
        );
        let query = query_of(&url);
        let now = unix_now();
        assert_eq!(objects.check(&Method::GET, key, query, now), Ok(()));
        assert_eq!(objects.check(&Method::GET, key, query, now + 5), Ok(()));
        assert_eq!(
            objects.check(&Method::GET, key, query, now + 6),
            Err(Refusal::Expired)
        );
    }

    #[test]
    fn every_signed_field_and_the_secret_matter() {
        let objects = LocalObjects::new(PathBuf::from("/nonexistent"));
        let ttl = Duration::from_secs(60);
        let url = objects.presign("http://h:1", &Method::GET, "a/b", ttl, 1);
        let query = query_of(&url);
        let now = unix_now();
        let bad = Err(Refusal::BadSignature);
        assert_eq!(objects.check(&Method::HEAD, "a/b", query, now), bad);
        assert_eq!(objects.check(&Method::GET, "a/c", query, now), bad);
        let later = query.replace("expires=", "expires=9");
        assert_eq!(objects.check(&Method::GET, "a/b", &later, now), bad);
        let other_nonce = query.replace("nonce=1", "nonce=2");
        assert_eq!(objects.check(&Method::GET, "a/b", &other_nonce, now), bad);
        let (rest, sig) = query.split_once("signature=").unwrap();
        let flipped = if sig.starts_with('0') { "1" } else { "0" };
        let tampered = format!("{rest}signature={flipped}{}", &sig[1..]);
        assert_eq!(objects.check(&Method::GET, "a/b", &tampered, now), bad);
        assert_eq!(
            objects.check(&Method::GET, "a/b", rest, now),
            bad,
            "unsigned"
        );
        let elsewhere = LocalObjects::new(PathBuf::from("/nonexistent"));
        assert_eq!(elsewhere.check(&Method::GET, "a/b", query, now), bad);
        // The same fields sign the same; another nonce signs differently.
        let s = |nonce| signature(&objects.secret, "GET", "a/b", 10, nonce);
        assert_eq!(s(1), s(1));
        assert_ne!(s(1), s(2));
        assert_eq!(s(1).len(), 64);
        // Length prefixes: moving a byte between method and key changes the signature.
        assert_ne!(
            signature(&objects.secret, "GE", "Ta/b", 10, 1),
            signature(&objects.secret, "GET", "a/b", 10, 1)
        );
    }

    #[test]
    fn keys_stay_inside_the_directory() {
        let objects = LocalObjects::new(PathBuf::from("/store"));
        assert_eq!(
            objects.path_of("6b/86/h/@final/aa/bb/cc"),
            Some(PathBuf::from("/store/6b/86/h/@final/aa/bb/cc"))
        );
        for key in [
            "",
            "../x",
            "a/../../x",
            "a//b",
            "/etc/passwd",
            "a/./b",
            "a\\b",
            "a/",
        ] {
            assert_eq!(objects.path_of(key), None, "{key:?}");
        }
    }

    #[test]
    fn ranges_as_s3_answers_them() {
        assert_eq!(answer(&[]), Answer::Whole);
        assert_eq!(answer(&[("range", "bytes=2-9")]), Answer::Partial(2..10));
        assert_eq!(
            answer(&[("range", "bytes=990-")]),
            Answer::Partial(990..1000)
        );
        assert_eq!(
            answer(&[("range", "bytes=-10")]),
            Answer::Partial(990..1000)
        );
        assert_eq!(
            answer(&[("range", "bytes=-5000")]),
            Answer::Partial(0..1000)
        );
        assert_eq!(
            answer(&[("range", "bytes=900-5000")]),
            Answer::Partial(900..1000)
        );
        assert_eq!(answer(&[("range", "bytes=1000-")]), Answer::Unsatisfiable);
        assert_eq!(answer(&[("range", "bytes=-0")]), Answer::Unsatisfiable);
        // Not one well-formed range: ignored.
        assert_eq!(answer(&[("range", "bytes=0-1,5-6")]), Answer::Whole);
        assert_eq!(answer(&[("range", "bytes=9-2")]), Answer::Whole);
        assert_eq!(answer(&[("range", "items=0-1")]), Answer::Whole);
        assert_eq!(
            decide(&headers(&[("range", "bytes=0-0")]), 0, ETAG, modified()),
            Answer::Unsatisfiable
        );
    }

    #[test]
    fn conditions_in_rfc_order() {
        let range = ("range", "bytes=2-9");
        assert_eq!(answer(&[("if-match", ETAG), range]), Answer::Partial(2..10));
        assert_eq!(
            answer(&[("if-match", "1-2-3-4-5")]),
            Answer::Whole,
            "unquoted"
        );
        assert_eq!(answer(&[("if-match", "*")]), Answer::Whole);
        assert_eq!(
            answer(&[("if-match", "\"x\", \"1-2-3-4-5\"")]),
            Answer::Whole
        );
        assert_eq!(
            answer(&[("if-match", "\"other\"")]),
            Answer::PreconditionFailed
        );
        assert_eq!(
            answer(&[("if-match", "W/\"1-2-3-4-5\"")]),
            Answer::PreconditionFailed,
            "If-Match compares strongly"
        );
        // 412 wins over 304 and over an unsatisfiable range.
        assert_eq!(
            answer(&[("if-match", "\"other\""), ("if-none-match", ETAG)]),
            Answer::PreconditionFailed
        );
        assert_eq!(
            answer(&[("if-match", "\"other\""), ("range", "bytes=5000-")]),
            Answer::PreconditionFailed
        );
        let before = "Sat, 05 Nov 1994 08:49:37 GMT";
        let after = "Mon, 07 Nov 1994 08:49:37 GMT";
        assert_eq!(
            answer(&[("if-unmodified-since", before)]),
            Answer::PreconditionFailed
        );
        assert_eq!(answer(&[("if-unmodified-since", after)]), Answer::Whole);
        // If-Match, when present, decides instead of If-Unmodified-Since.
        assert_eq!(
            answer(&[("if-match", ETAG), ("if-unmodified-since", before)]),
            Answer::Whole
        );
        assert_eq!(
            answer(&[("if-none-match", ETAG), range]),
            Answer::NotModified
        );
        assert_eq!(
            answer(&[("if-none-match", "W/\"1-2-3-4-5\"")]),
            Answer::NotModified
        );
        assert_eq!(answer(&[("if-none-match", "\"other\"")]), Answer::Whole);
        assert_eq!(answer(&[("if-modified-since", after)]), Answer::NotModified);
        assert_eq!(answer(&[("if-modified-since", before)]), Answer::Whole);
        assert_eq!(answer(&[("if-range", ETAG), range]), Answer::Partial(2..10));
        assert_eq!(answer(&[("if-range", "\"old\""), range]), Answer::Whole);
    }

    #[test]
    fn signature_comparison_needs_equal_bytes() {
        assert!(same_bytes(b"abc", b"abc"));
        assert!(!same_bytes(b"abc", b"abd"));
        assert!(!same_bytes(b"abc", b"abcd"));
    }
}
