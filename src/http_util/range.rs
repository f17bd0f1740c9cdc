//! `Range` requests (RFC 9110 §14): one byte range per request.
//!
//! A header that is not a single well-formed `bytes` range is ignored and the whole
//! representation is served, which RFC 9110 allows; several ranges are treated the same way
//! (no multipart bodies). A syntactically valid range that selects nothing is the only
//! `416`.

use std::ops::Range;

use http::{header, HeaderMap};

/// One byte range as the client wrote it, before the object's size is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    /// `bytes=first-last`, both inclusive.
    FromTo(u64, u64),
    /// `bytes=first-`
    From(u64),
    /// `bytes=-n`: the last `n` bytes.
    Last(u64),
}

impl ByteRange {
    /// The bytes selected in an object of `size` bytes, or `None` when nothing is
    /// (unsatisfiable: `416`).
    pub fn resolve(self, size: u64) -> Option<Range<u64>> {
        match self {
            Self::FromTo(first, last) if first < size => {
                Some(first..last.saturating_add(1).min(size))
            }
            Self::From(first) if first < size => Some(first..size),
            Self::Last(n) if n > 0 && size > 0 => Some(size.saturating_sub(n)..size),
            _ => None,
        }
    }

    /// The range to ask storage for, so that only the selected bytes are read.
    pub fn to_get_range(self) -> object_store::GetRange {
        match self {
            Self::FromTo(first, last) => {
                object_store::GetRange::Bounded(first..last.saturating_add(1))
            }
            Self::From(first) => object_store::GetRange::Offset(first),
            Self::Last(n) => object_store::GetRange::Suffix(n),
        }
    }
}

/// The single range a request asks for, if it asks for exactly one well-formed range.
pub fn requested(headers: &HeaderMap) -> Option<ByteRange> {
    let mut values = headers.get_all(header::RANGE).iter();
    let value = values.next()?;
    if values.next().is_some() {
        return None;
    }
    parse(value.to_str().ok()?)
}

/// Parse `bytes=a-b`, `bytes=a-`, `bytes=-n`. Anything else (other units, several ranges,
/// `b < a`, garbage) is `None`: the caller then ignores the header.
pub fn parse(value: &str) -> Option<ByteRange> {
    let (unit, spec) = value.trim().split_once('=')?;
    if !unit.trim().eq_ignore_ascii_case("bytes") {
        return None;
    }
    let spec = spec.trim();
    if spec.contains(',') {
        return None;
    }
    let (first, last) = spec.split_once('-')?;
    let number = |s: &str| -> Option<u64> {
        let s = s.trim();
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok())?
    };
    match (first.trim().is_empty(), last.trim().is_empty()) {
        (true, true) => None,
        (true, false) => Some(ByteRange::Last(number(last)?)),
        (false, true) => Some(ByteRange::From(number(first)?)),
        (false, false) => {
            let (first, last) = (number(first)?, number(last)?);
            (first <= last).then_some(ByteRange::FromTo(first, last))
        }
    }
}

/// `Content-Range` of a partial response.
pub fn content_range(range: &Range<u64>, size: u64) -> String {
    format!(
        "bytes {}-{}/{size}",
        range.start,
        range.end.saturating_sub(1)
    )
}

/// `Content-Range` of a `416`.
pub fn unsatisfied(size: u64) -> String {
    format!("bytes */{size}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_three_single_range_forms() {
        assert_eq!(parse("bytes=0-499"), Some(ByteRange::FromTo(0, 499)));
        assert_eq!(parse("bytes=500-"), Some(ByteRange::From(500)));
        assert_eq!(parse("bytes=-500"), Some(ByteRange::Last(500)));
        assert_eq!(parse(" Bytes = 1 - 2 "), Some(ByteRange::FromTo(1, 2)));
    }

    #[test]
    fn ignores_what_is_not_one_well_formed_byte_range() {
        for value in [
            "",
            "bytes",
            "bytes=",
            "bytes=-",
            "items=0-1",
            "bytes=0-1,4-5",
            "bytes=5-4",
            "bytes=a-b",
            "bytes=+1-2",
            "bytes=1--2",
            "bytes=99999999999999999999999-",
            "bytes=0x1-2",
        ] {
            assert_eq!(parse(value), None, "{value:?}");
        }
    }

    #[test]
    fn resolves_against_the_size() {
        assert_eq!(ByteRange::FromTo(0, 499).resolve(1000), Some(0..500));
        assert_eq!(ByteRange::FromTo(900, 2000).resolve(1000), Some(900..1000));
        assert_eq!(ByteRange::FromTo(1000, 2000).resolve(1000), None);
        assert_eq!(ByteRange::From(999).resolve(1000), Some(999..1000));
        assert_eq!(ByteRange::From(1000).resolve(1000), None);
        assert_eq!(ByteRange::Last(10).resolve(1000), Some(990..1000));
        assert_eq!(ByteRange::Last(5000).resolve(1000), Some(0..1000));
        assert_eq!(ByteRange::Last(0).resolve(1000), None);
        assert_eq!(ByteRange::Last(1).resolve(0), None);
        assert_eq!(ByteRange::FromTo(0, u64::MAX).resolve(10), Some(0..10));
    }

    #[test]
    fn several_range_headers_are_ignored() {
        let mut headers = HeaderMap::new();
        headers.append(header::RANGE, "bytes=0-1".parse().unwrap());
        assert_eq!(requested(&headers), Some(ByteRange::FromTo(0, 1)));
        headers.append(header::RANGE, "bytes=2-3".parse().unwrap());
        assert_eq!(requested(&headers), None);
    }

    #[test]
    fn content_range_values() {
        assert_eq!(content_range(&(0..500), 1000), "bytes 0-499/1000");
        assert_eq!(unsatisfied(1000), "bytes */1000");
    }
}
