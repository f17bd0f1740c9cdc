//! Answers whose length is known before any byte is read (a file of an archive, a part of
//! an archive): the conditional and range headers weighed against their own ETag, the wait
//! for the first chunk before the head goes out, and the headers both carry.

use std::io;
use std::ops::Range;

use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use http::{header, HeaderMap, HeaderValue, Response, StatusCode};
use http_body::Frame;

use crate::error::GatewayError;
use crate::http_util::body::{self, Body};
use crate::http_util::conditional::Conditions;
use crate::http_util::range;

/// What the request's validators leave to do.
pub(super) enum Start {
    NotModified(Response<Body>),
    /// Send the whole answer, or this range of it.
    Send(Option<Range<u64>>),
}

/// Weighs `If-None-Match`, `If-Range` and `Range` against an answer of `size` bytes with
/// `etag`.
pub(super) fn start(headers: &HeaderMap, etag: &str, size: u64) -> Result<Start, GatewayError> {
    let conditions = Conditions::from_headers(headers);
    if conditions.not_modified(Some(etag), None) {
        let mut response = Response::new(body::empty());
        *response.status_mut() = StatusCode::NOT_MODIFIED;
        set_header(response.headers_mut(), header::ETAG, etag);
        return Ok(Start::NotModified(response));
    }
    let selected = range::requested(headers)
        .filter(|_| conditions.range_allowed(Some(etag), None))
        .map(|r| {
            r.resolve(size)
                .ok_or(GatewayError::RangeNotSatisfiable { size })
        })
        .transpose()?;
    Ok(Start::Send(selected))
}

/// A body of `stream`, whose first chunk is waited for now: a failure there can still be
/// answered with a status (it is the `Err`), not a connection closed before any.
pub(super) async fn after_first_chunk(
    mut stream: BoxStream<'static, io::Result<Bytes>>,
) -> io::Result<Body> {
    let first = stream.next().await.transpose()?;
    let stream = futures_util::stream::iter(first.map(Ok)).chain(stream);
    let frames = stream.map(|chunk| chunk.map(Frame::data).map_err(body::BoxError::from));
    Ok(body::boxed(http_body_util::StreamBody::new(frames)))
}

/// Status and headers of a 200 (whole) or 206 (`selected`) answer of `size` bytes.
pub(super) fn describe(
    response: &mut Response<Body>,
    content_type: &str,
    disposition: &str,
    etag: &str,
    size: u64,
    selected: Option<&Range<u64>>,
) {
    let headers = response.headers_mut();
    set_header(headers, header::CONTENT_TYPE, content_type);
    set_header(headers, header::CONTENT_DISPOSITION, disposition);
    let length = selected.map_or(size, |r| r.end - r.start);
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=0, must-revalidate"),
    );
    set_header(headers, header::ETAG, etag);
    if let Some(range) = selected {
        set_header(
            headers,
            header::CONTENT_RANGE,
            &range::content_range(range, size),
        );
        *response.status_mut() = StatusCode::PARTIAL_CONTENT;
    }
}

/// Inserts `value` when it is a valid header value (names and ETags made here always are).
pub(super) fn set_header(headers: &mut HeaderMap, name: header::HeaderName, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        headers.insert(name, value);
    }
}
