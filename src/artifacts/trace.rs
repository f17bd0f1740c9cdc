//! A job's log when `artifacts.source = "upstream"`: the backend (GitLab) reads the log and
//! decides who may see it. The request is forwarded with the caller's credentials as they
//! came; the gateway adds what GitLab's trace route lacks.
//!
//! - `Range` (one range): a backend `200` of known length becomes a `206` with exactly those
//!   bytes, cut out of the streamed body ([`WindowBody`]: skip before, stop after, never
//!   buffered); a range starting at or past the end is `416`. An `If-Range` that does not
//!   name the backend's `ETag`/`Last-Modified` keeps the whole `200`. A `200` of unknown
//!   length (chunked) or with a content coding goes through whole: ignoring `Range` is
//!   always allowed, a `206` whose length we cannot promise is not.
//! - `HEAD`: sent as a `GET` (GitLab's route has no HEAD of its own); the status and headers
//!   are the answer, the backend's body is dropped unread.
//! - Whatever else the backend says (its own `206`, `304`, refusals with their JSON bodies)
//!   passes through as it is.
//!
//! A running job's log grows while it is read: nothing here is cached, every request
//! reaches the backend.

use std::ops::Range;

use http::{header, HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode};
use http_body::Body as _;
use hyper::body::Incoming;

use crate::error::GatewayError;
use crate::http_util::body::{self, Body};
use crate::http_util::conditional::{self, Conditions};
use crate::http_util::range::{self, ByteRange};
use crate::http_util::window::WindowBody;
use crate::request::context::RequestContext;
use crate::upstream::Upstream;

/// Digests of the message body: true of the whole log, false of a range of it.
const WHOLE_BODY_DIGESTS: [HeaderName; 2] = [
    HeaderName::from_static("content-digest"),
    HeaderName::from_static("content-md5"),
];

/// What becomes of the backend's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Plan {
    /// As it is; `accept_ranges` when it is a `200` we could have cut a range from.
    Whole { accept_ranges: bool },
    /// A `206` of `range` out of `size` bytes.
    Partial { range: Range<u64>, size: u64 },
    /// `416`: the range selects nothing of `size` bytes.
    Unsatisfiable { size: u64 },
}

/// Decide from the backend's status, headers and body length (`None`: chunked) and the
/// client's `Range` and `If-Range`.
fn plan(
    status: StatusCode,
    headers: &HeaderMap,
    length: Option<u64>,
    requested: Option<ByteRange>,
    conditions: &Conditions,
) -> Plan {
    let size = match length {
        Some(size) if status == StatusCode::OK && !content_coded(headers) => size,
        _ => {
            return Plan::Whole {
                accept_ranges: false,
            }
        }
    };
    let Some(requested) = requested else {
        return Plan::Whole {
            accept_ranges: true,
        };
    };
    let text = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    let etag = text(header::ETAG);
    let modified = text(header::LAST_MODIFIED).and_then(conditional::parse_http_date);
    if !conditions.range_allowed(etag, modified) {
        return Plan::Whole {
            accept_ranges: true,
        };
    }
    match requested.resolve(size) {
        Some(range) => Plan::Partial { range, size },
        None => Plan::Unsatisfiable { size },
    }
}

/// A range of a content-coded body would be a range of the gzip (or other) bytes, which
/// no log reader wants: such a body is never cut.
fn content_coded(headers: &HeaderMap) -> bool {
    headers.get_all(header::CONTENT_ENCODING).iter().any(|v| {
        v.to_str()
            .map_or(true, |v| !v.trim().eq_ignore_ascii_case("identity"))
    })
}

/// Turn the backend's `200` headers into those of a `206` of `range` out of `size` bytes.
/// Everything describing the log (type, validators, cache rules) stays.
fn partial_headers(headers: &mut HeaderMap, range: &Range<u64>, size: u64) {
    for name in &WHOLE_BODY_DIGESTS {
        headers.remove(name);
    }
    headers.insert(
        header::CONTENT_LENGTH,
        HeaderValue::from(range.end - range.start),
    );
    if let Ok(value) = HeaderValue::from_str(&range::content_range(range, size)) {
        headers.insert(header::CONTENT_RANGE, value);
    }
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
}

/// `GET|HEAD /projects/:id/jobs/:job_id/trace`, answered by the backend.
pub async fn forwarded(
    upstream: &Upstream,
    mut request: Request<Incoming>,
    ctx: &RequestContext,
    job_id: u64,
) -> Result<Response<Body>, GatewayError> {
    tracing::Span::current().record("job_id", job_id);
    let head = request.method() == Method::HEAD;
    let requested = range::requested(request.headers());
    let conditions = Conditions::from_headers(request.headers());
    if head {
        *request.method_mut() = Method::GET;
    }
    let (mut parts, incoming) = upstream.forward(request, ctx).await?.into_parts();
    let length = incoming.size_hint().exact();
    let plan = plan(parts.status, &parts.headers, length, requested, &conditions);
    upstream.prepare_response(&mut parts.headers, ctx);
    let body = match plan {
        Plan::Unsatisfiable { size } => {
            return Err(GatewayError::RangeNotSatisfiable { size });
        }
        Plan::Whole { accept_ranges } => {
            if accept_ranges {
                parts
                    .headers
                    .insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
            }
            (!head).then(|| body::boxed(incoming))
        }
        Plan::Partial { range, size } => {
            partial_headers(&mut parts.headers, &range, size);
            parts.status = StatusCode::PARTIAL_CONTENT;
            (!head).then(|| body::boxed(WindowBody::new(incoming, range)))
        }
    };
    // HEAD: the backend's body is dropped here, unread.
    Ok(Response::from_parts(
        parts,
        body.unwrap_or_else(body::empty),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| {
                (
                    HeaderName::from_bytes(k.as_bytes()).unwrap(),
                    HeaderValue::from_str(v).unwrap(),
                )
            })
            .collect()
    }

    fn whole(accept_ranges: bool) -> Plan {
        Plan::Whole { accept_ranges }
    }

    const OK: StatusCode = StatusCode::OK;

    #[test]
    fn a_known_length_200_is_cut_to_the_range() {
        let none = Conditions::default();
        let h = HeaderMap::new();
        let partial = |range, size| Plan::Partial { range, size };
        let at = |r| plan(OK, &h, Some(1000), range::parse(r), &none);
        assert_eq!(at("bytes=0-9"), partial(0..10, 1000));
        assert_eq!(at("bytes=990-2000"), partial(990..1000, 1000));
        assert_eq!(at("bytes=-10"), partial(990..1000, 1000));
        assert_eq!(at("bytes=-5000"), partial(0..1000, 1000));
        assert_eq!(at("bytes=500-"), partial(500..1000, 1000));
        assert_eq!(at("bytes=1000-"), Plan::Unsatisfiable { size: 1000 });
        assert_eq!(at("bytes=-0"), Plan::Unsatisfiable { size: 1000 });
        assert_eq!(
            plan(OK, &h, Some(0), range::parse("bytes=0-"), &none),
            Plan::Unsatisfiable { size: 0 }
        );
        // No (usable) Range: the whole log, and the client learns it may ask for ranges.
        assert_eq!(plan(OK, &h, Some(1000), None, &none), whole(true));
    }

    #[test]
    fn what_cannot_be_cut_passes_through_whole() {
        let none = Conditions::default();
        let ranged = range::parse("bytes=0-9");
        let h = HeaderMap::new();
        // Chunked: no length to promise.
        assert_eq!(plan(OK, &h, None, ranged, &none), whole(false));
        assert_eq!(plan(OK, &h, None, None, &none), whole(false));
        for status in [
            StatusCode::PARTIAL_CONTENT,
            StatusCode::NOT_MODIFIED,
            StatusCode::UNAUTHORIZED,
            StatusCode::NOT_FOUND,
            StatusCode::RANGE_NOT_SATISFIABLE,
            StatusCode::BAD_GATEWAY,
        ] {
            assert_eq!(plan(status, &h, Some(10), ranged, &none), whole(false));
        }
        let gzip = headers(&[("content-encoding", "gzip")]);
        assert_eq!(plan(OK, &gzip, Some(1000), ranged, &none), whole(false));
        let identity = headers(&[("content-encoding", "identity")]);
        assert!(matches!(
            plan(OK, &identity, Some(1000), ranged, &none),
            Plan::Partial { .. }
        ));
    }

    #[test]
    fn if_range_must_name_the_backends_validator() {
        let ranged = range::parse("bytes=0-9");
        let if_range = |value: &str| Conditions::from_headers(&headers(&[("if-range", value)]));
        let date = "Sun, 06 Nov 1994 08:49:37 GMT";
        let strong = headers(&[("etag", "\"v2\""), ("last-modified", date)]);
        let cut = |backend: &HeaderMap, value: &str| {
            plan(OK, backend, Some(100), ranged, &if_range(value))
        };
        assert_eq!(
            cut(&strong, "\"v2\""),
            Plan::Partial {
                range: 0..10,
                size: 100
            }
        );
        assert!(matches!(cut(&strong, date), Plan::Partial { .. }));
        assert_eq!(cut(&strong, "\"v1\""), whole(true));
        assert_eq!(cut(&strong, "Sat, 05 Nov 1994 08:49:37 GMT"), whole(true));
        assert_eq!(cut(&strong, "not a validator"), whole(true));
        // A weak tag (Rails' Rack::ETag makes those) never satisfies If-Range.
        let weak = headers(&[("etag", "W/\"v2\"")]);
        assert_eq!(cut(&weak, "W/\"v2\""), whole(true));
        // No validators at all: nothing the client names can match.
        let bare = HeaderMap::new();
        for value in ["\"v2\"", date, "anything"] {
            assert_eq!(cut(&bare, value), whole(true), "{value}");
        }
    }

    #[test]
    fn a_206_keeps_what_describes_the_log_and_replaces_the_framing() {
        let mut h = headers(&[
            ("content-type", "text/plain"),
            ("content-length", "1000"),
            ("etag", "\"v2\""),
            ("cache-control", "private, max-age=0"),
            ("content-digest", "sha-256=:abc=:"),
            ("content-md5", "abc"),
            ("accept-ranges", "none"),
        ]);
        partial_headers(&mut h, &(10..20), 1000);
        assert_eq!(h["content-length"], "10");
        assert_eq!(h["content-range"], "bytes 10-19/1000");
        assert_eq!(h["accept-ranges"], "bytes");
        assert_eq!(h["content-type"], "text/plain");
        assert_eq!(h["etag"], "\"v2\"");
        assert_eq!(h["cache-control"], "private, max-age=0");
        assert!(!h.contains_key("content-digest"));
        assert!(!h.contains_key("content-md5"));
    }
}
