//! Answering a request with an object from storage: one storage request for the bytes and
//! their metadata, `Range` mapped to a ranged read (never read-and-discard), conditional
//! requests answered `304`, and the body streamed with a bounded amount in memory.

use bytes::Bytes;
use futures_util::StreamExt;
use http::{header, HeaderMap, HeaderValue, Method, Response, StatusCode};
use http_body::Frame;

use crate::http_util::body::{self, Body};
use crate::http_util::conditional::{self, Conditions};
use crate::http_util::range::{self, ByteRange};
use crate::metrics::ReadKind;
use crate::storage::{Location, Meta, Storage, StorageError};

/// How an object is presented to the client.
pub struct Presentation {
    /// What the reads are counted as.
    pub kind: ReadKind,
    pub content_type: &'static str,
    pub disposition: Option<&'static str>,
}

/// Serve `path` for a GET or HEAD with the request's `Range` and conditional headers.
/// `Ok(None)` when the object does not exist (the caller decides what that means).
pub async fn serve(
    storage: &Storage,
    path: &Location,
    method: &Method,
    request_headers: &HeaderMap,
    presentation: &Presentation,
) -> Result<Option<Response<Body>>, StorageError> {
    let conditions = Conditions::from_headers(request_headers);
    let requested = range::requested(request_headers);
    if *method == Method::HEAD {
        let meta = match storage.head(path).await {
            Err(StorageError::NotFound) => return Ok(None),
            other => other?,
        };
        let etag = meta.etag.as_deref().map(conditional::quote_etag);
        if conditions.not_modified(etag.as_deref(), meta.last_modified) {
            return Ok(Some(not_modified(&meta)));
        }
        let selected = requested
            .filter(|_| conditions.range_allowed(etag.as_deref(), meta.last_modified))
            .map(|r| {
                r.resolve(meta.size)
                    .ok_or(StorageError::RangeNotSatisfiable { size: meta.size })
            })
            .transpose()?;
        let mut response = Response::new(body::empty());
        describe(&mut response, &meta, selected.as_ref(), presentation);
        return Ok(Some(response));
    }

    // `bytes=-0` selects nothing, whatever the size; storage would read an empty range.
    if requested == Some(ByteRange::Last(0)) {
        return match storage.head(path).await {
            Err(StorageError::NotFound) => Ok(None),
            Err(error) => Err(error),
            Ok(meta) => Err(StorageError::RangeNotSatisfiable { size: meta.size }),
        };
    }
    let mut object = match storage
        .get(
            presentation.kind,
            path,
            requested.map(ByteRange::to_get_range),
            None,
        )
        .await
    {
        Err(StorageError::NotFound) => return Ok(None),
        other => other?,
    };
    let etag = object.meta.etag.as_deref().map(conditional::quote_etag);
    let modified = object.meta.last_modified;
    if conditions.not_modified(etag.as_deref(), modified) {
        return Ok(Some(not_modified(&object.meta)));
    }
    let mut ranged = requested.is_some();
    if ranged && !conditions.range_allowed(etag.as_deref(), modified) {
        // `If-Range` names an older version: the whole current object instead. Only this
        // stale case costs a second storage request.
        ranged = false;
        object = match storage.get(presentation.kind, path, None, None).await {
            Err(StorageError::NotFound) => return Ok(None),
            other => other?,
        };
    }
    if ranged && object.range.is_empty() {
        return Err(StorageError::RangeNotSatisfiable {
            size: object.meta.size,
        });
    }
    let stream = object.body.map(|chunk| {
        chunk.map(Frame::data).map_err(|error| {
            tracing::warn!(%error, "storage stream failed mid-body; aborting the response");
            body::BoxError::from(error)
        })
    });
    let mut response = Response::new(body::boxed(http_body_util::StreamBody::new(stream)));
    let selected = ranged.then_some(object.range.clone());
    describe(&mut response, &object.meta, selected.as_ref(), presentation);
    Ok(Some(response))
}

/// Status and headers of a 200 (whole object) or 206 (`selected` range).
fn describe(
    response: &mut Response<Body>,
    meta: &Meta,
    selected: Option<&std::ops::Range<u64>>,
    presentation: &Presentation,
) {
    let length = selected.map_or(meta.size, |r| r.end - r.start);
    let headers = response.headers_mut();
    validators(headers, meta);
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(presentation.content_type),
    );
    if let Some(disposition) = presentation.disposition {
        headers.insert(
            header::CONTENT_DISPOSITION,
            HeaderValue::from_static(disposition),
        );
    }
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Some(range) = selected {
        if let Ok(value) = HeaderValue::from_str(&range::content_range(range, meta.size)) {
            headers.insert(header::CONTENT_RANGE, value);
        }
        *response.status_mut() = StatusCode::PARTIAL_CONTENT;
    }
}

fn not_modified(meta: &Meta) -> Response<Body> {
    let mut response = Response::new(body::empty());
    *response.status_mut() = StatusCode::NOT_MODIFIED;
    validators(response.headers_mut(), meta);
    response
}

/// Validators and the headers every served object carries.
fn validators(headers: &mut HeaderMap, meta: &Meta) {
    if let Some(etag) = &meta.etag {
        if let Ok(value) = HeaderValue::from_str(&conditional::quote_etag(etag)) {
            headers.insert(header::ETAG, value);
        }
    }
    if let Some(value) = meta
        .last_modified
        .and_then(|date| HeaderValue::from_str(&conditional::http_date(date)).ok())
    {
        headers.insert(header::LAST_MODIFIED, value);
    }
    // Artifacts sit behind per-caller authorisation: shared caches must not keep them, and
    // a browser must revalidate (cheaply, with the ETag) before reuse.
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=0, must-revalidate"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
}

/// Bytes of a presigned redirect body are empty; kept here so every object answer is built
/// in one module.
pub fn redirect(location: HeaderValue) -> Response<Body> {
    let mut response = Response::new(body::full(Bytes::new()));
    *response.status_mut() = StatusCode::FOUND;
    response.headers_mut().insert(header::LOCATION, location);
    // The URL carries a signature that expires; nobody should keep it.
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
