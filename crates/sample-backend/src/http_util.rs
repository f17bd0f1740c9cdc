//! The HTTP details the local object store answers with, written here rather than taken
//! from the gateway: the sample backend stands for GitLab and its storage, so it must not
//! share the code it is used to test. Kept to what S3 does for the gateway's requests.

use std::ops::Range;

use chrono::{DateTime, Utc};
use http::header::{self, HeaderMap};

/// An IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`).
pub(crate) fn http_date(time: DateTime<Utc>) -> String {
    time.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

/// An IMF-fixdate, as RFC 2822 reads it (`GMT` is its zone name).
pub(crate) fn parse_http_date(value: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc2822(value.trim())
        .ok()
        .map(|date| date.with_timezone(&Utc))
}

/// The one `bytes` range a request asks for, resolved against `size`: `None` when there is
/// no usable single range (the whole object is answered), `Some(None)` when it selects
/// nothing (`416`).
pub(crate) fn requested_range(headers: &HeaderMap, size: u64) -> Option<Option<Range<u64>>> {
    let mut values = headers.get_all(header::RANGE).iter();
    let value = values.next()?.to_str().ok()?;
    if values.next().is_some() {
        return None;
    }
    let spec = value.trim().strip_prefix("bytes=")?.trim();
    if spec.contains(',') {
        return None;
    }
    let (first, last) = spec.split_once('-')?;
    let number = |s: &str| -> Option<u64> {
        let s = s.trim();
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    };
    let range = match (first.trim().is_empty(), last.trim().is_empty()) {
        (true, true) => return None,
        // A suffix longer than the object is all of it.
        (true, false) => {
            let n = number(last)?;
            (n > 0 && size > 0).then(|| size.saturating_sub(n)..size)
        }
        (false, true) => {
            let first = number(first)?;
            (first < size).then_some(first..size)
        }
        (false, false) => {
            let (first, last) = (number(first)?, number(last)?);
            if first > last {
                return None;
            }
            (first < size).then(|| first..last.saturating_add(1).min(size))
        }
    };
    Some(range)
}

/// `If-None-Match` (weak comparison), else `If-Modified-Since`: the client's copy is current.
pub(crate) fn not_modified(headers: &HeaderMap, etag: &str, modified: DateTime<Utc>) -> bool {
    if let Some(list) = joined(headers, &header::IF_NONE_MATCH) {
        return list
            .split(',')
            .map(|tag| tag.trim().trim_start_matches("W/"))
            .any(|tag| tag == "*" || tag == etag);
    }
    joined(headers, &header::IF_MODIFIED_SINCE)
        .and_then(|since| parse_http_date(&since))
        .is_some_and(|since| modified.timestamp() <= since.timestamp())
}

/// No `If-Range`, or one naming this version (a strong tag, or the exact date).
pub(crate) fn range_allowed(headers: &HeaderMap, etag: &str, modified: DateTime<Utc>) -> bool {
    let Some(value) = joined(headers, &header::IF_RANGE) else {
        return true;
    };
    let value = value.trim();
    if value.starts_with('"') {
        return value == etag;
    }
    parse_http_date(value).is_some_and(|date| date.timestamp() == modified.timestamp())
}

/// Every value of `name`, joined as one list.
pub(crate) fn joined(headers: &HeaderMap, name: &header::HeaderName) -> Option<String> {
    let values: Vec<&str> = headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    (!values.is_empty()).then(|| values.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(value: &str, size: u64) -> Option<Option<Range<u64>>> {
        let mut headers = HeaderMap::new();
        headers.insert(header::RANGE, value.parse().unwrap());
        requested_range(&headers, size)
    }

    #[test]
    fn ranges_as_s3_reads_them() {
        assert_eq!(range("bytes=0-9", 100), Some(Some(0..10)));
        assert_eq!(range("bytes=90-200", 100), Some(Some(90..100)));
        assert_eq!(range("bytes=10-", 100), Some(Some(10..100)));
        assert_eq!(range("bytes=-10", 100), Some(Some(90..100)));
        assert_eq!(range("bytes=-200", 100), Some(Some(0..100)));
        assert_eq!(range("bytes=100-", 100), Some(None));
        assert_eq!(range("bytes=-0", 100), Some(None));
        assert_eq!(range("bytes=5-1", 100), None);
        assert_eq!(range("bytes=0-1,3-4", 100), None);
        assert_eq!(range("items=0-1", 100), None);
    }

    #[test]
    fn dates_round_trip() {
        let date = parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        assert_eq!(http_date(date), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(parse_http_date("yesterday"), None);
    }
}
