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
//!
//! Layout: `signing` (the URLs' signature and expiry), `answer` (ranges and conditions);
//! this file holds the store itself and the object route's responses.

mod answer;
mod signing;

use std::fmt;
use std::fs::File;
use std::io;
use std::path::PathBuf;
use std::time::UNIX_EPOCH;

use chrono::{DateTime, Utc};
use futures_util::TryStreamExt;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Response, StatusCode};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use percent_encoding::percent_decode_str;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use crate::artifacts::{whole, Body};
use crate::http_util::http_date;
use crate::RecordedRequest;
use answer::{decide, Answer};
pub(super) use signing::UrlSigner;
use signing::{unix_now, Refusal};

/// Where the object route lives on the sample backend.
pub(super) const PREFIX: &str = "/-/objects/";

/// Objects as files under `dir`, and the signer of their URLs.
pub(super) struct LocalObjects {
    dir: PathBuf,
    signer: UrlSigner,
}

impl fmt::Debug for LocalObjects {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalObjects")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl LocalObjects {
    pub(super) fn new(dir: PathBuf) -> Self {
        Self {
            dir,
            signer: UrlSigner::new(),
        }
    }

    /// The signer of this store's URLs (a secret of this store).
    pub(super) fn signer(&self) -> &UrlSigner {
        &self.signer
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
        match self.signer.check(&req.method, &key, query, unix_now()) {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
