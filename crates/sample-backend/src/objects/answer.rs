//! What a request for a stored file gets once the file's size and validators are known:
//! RFC 9110's conditions (`If-Match`, `If-Unmodified-Since`, `If-None-Match`,
//! `If-Modified-Since`) and one `Range` with `If-Range`, decided as S3 does.

use std::ops::Range;

use chrono::{DateTime, Utc};
use http::header::{self, HeaderMap};

use crate::http_util::{self, parse_http_date};

/// What a request gets once the file's size and validators are known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Answer {
    Whole,
    Partial(Range<u64>),
    NotModified,
    PreconditionFailed,
    Unsatisfiable,
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
}
