//! Conditional requests (RFC 9110 §13): entity tags, HTTP dates, and deciding between
//! `304 Not Modified`, a range, and the full representation.
//!
//! Storage backends spell ETags differently (S3 quotes them, the local filesystem does
//! not), so the gateway shows every ETag quoted and compares opaque tags without quotes or
//! the weak prefix.

use chrono::{DateTime, Utc};
use http::{header, HeaderMap};

/// An entity tag as sent on the wire: quoted, with `W/` when weak.
pub fn quote_etag(raw: &str) -> String {
    if raw.starts_with('"') || raw.starts_with("W/\"") {
        raw.to_owned()
    } else {
        format!("\"{raw}\"")
    }
}

/// The opaque part of an entity tag: no `W/`, no quotes.
fn opaque(tag: &str) -> &str {
    let tag = tag.trim();
    let tag = tag.strip_prefix("W/").unwrap_or(tag);
    tag.trim_matches('"')
}

/// Whether a list of entity tags (`If-None-Match` syntax, or `*`) names `etag`, by weak
/// comparison (what `If-None-Match` uses).
pub fn etag_list_matches(list: &str, etag: &str) -> bool {
    let wanted = opaque(etag);
    list.split(',').any(|tag| {
        let tag = tag.trim();
        tag == "*" || (!tag.is_empty() && opaque(tag) == wanted)
    })
}

/// `Last-Modified` / `Date` format: `Sun, 06 Nov 1994 08:49:37 GMT`.
pub fn http_date(time: DateTime<Utc>) -> String {
    time.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

pub fn parse_http_date(value: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc2822(value.trim())
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// The validators the client sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Conditions {
    pub if_none_match: Option<String>,
    pub if_modified_since: Option<DateTime<Utc>>,
    pub if_range: Option<IfRange>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IfRange {
    ETag(String),
    Date(DateTime<Utc>),
    /// Neither an entity tag nor an HTTP date: it names no representation, so it matches
    /// none (RFC 9110 §13.1.5: a validator that does not match means the whole 200).
    Unreadable,
}

impl Conditions {
    pub fn from_headers(headers: &HeaderMap) -> Self {
        let text = |name| {
            let values: Vec<&str> = headers
                .get_all(name)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .collect();
            (!values.is_empty()).then(|| values.join(", "))
        };
        let if_range = text(header::IF_RANGE).map(|v| {
            if v.trim_start().starts_with('"') || v.trim_start().starts_with("W/") {
                IfRange::ETag(v.trim().to_owned())
            } else {
                parse_http_date(&v).map_or(IfRange::Unreadable, IfRange::Date)
            }
        });
        Self {
            if_none_match: text(header::IF_NONE_MATCH),
            if_modified_since: text(header::IF_MODIFIED_SINCE).and_then(|v| parse_http_date(&v)),
            if_range,
        }
    }

    /// Whether the client's copy is current: `304`. `If-None-Match` wins over
    /// `If-Modified-Since` when both are sent.
    pub fn not_modified(&self, etag: Option<&str>, last_modified: Option<DateTime<Utc>>) -> bool {
        if let Some(list) = &self.if_none_match {
            return etag.is_some_and(|etag| etag_list_matches(list, etag));
        }
        match (self.if_modified_since, last_modified) {
            // HTTP dates have whole seconds.
            (Some(since), Some(modified)) => modified.timestamp() <= since.timestamp(),
            _ => false,
        }
    }

    /// Whether a `Range` may be honoured: no `If-Range`, or one that names the current
    /// representation (strong comparison for tags, exact match for dates).
    pub fn range_allowed(&self, etag: Option<&str>, last_modified: Option<DateTime<Utc>>) -> bool {
        match &self.if_range {
            None => true,
            Some(IfRange::ETag(tag)) => {
                !tag.starts_with("W/") && etag.is_some_and(|etag| opaque(tag) == opaque(etag))
            }
            Some(IfRange::Date(date)) => {
                last_modified.is_some_and(|modified| modified.timestamp() == date.timestamp())
            }
            Some(IfRange::Unreadable) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        map
    }

    #[test]
    fn etags_are_shown_quoted_and_compared_opaquely() {
        assert_eq!(quote_etag("abc"), "\"abc\"");
        assert_eq!(quote_etag("\"abc\""), "\"abc\"");
        assert_eq!(quote_etag("W/\"abc\""), "W/\"abc\"");
        assert!(etag_list_matches("\"abc\"", "abc"));
        assert!(etag_list_matches("\"x\", W/\"abc\"", "\"abc\""));
        assert!(etag_list_matches("*", "anything"));
        assert!(!etag_list_matches("\"abcd\"", "abc"));
        assert!(!etag_list_matches("", "abc"));
    }

    #[test]
    fn http_dates_round_trip() {
        let date = parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        assert_eq!(http_date(date), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(parse_http_date("yesterday"), None);
    }

    #[test]
    fn none_match_wins_over_modified_since() {
        let modified = parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT");
        let c = Conditions::from_headers(&headers(&[
            ("if-none-match", "\"other\""),
            ("if-modified-since", "Mon, 07 Nov 1994 08:49:37 GMT"),
        ]));
        assert!(!c.not_modified(Some("\"tag\""), modified));
        let c = Conditions::from_headers(&headers(&[(
            "if-modified-since",
            "Mon, 07 Nov 1994 08:49:37 GMT",
        )]));
        assert!(c.not_modified(Some("\"tag\""), modified));
        let c = Conditions::from_headers(&headers(&[(
            "if-modified-since",
            "Sat, 05 Nov 1994 08:49:37 GMT",
        )]));
        assert!(!c.not_modified(Some("\"tag\""), modified));
        let c = Conditions::from_headers(&headers(&[
            ("if-none-match", "\"a\""),
            ("if-none-match", "\"tag\""),
        ]));
        assert!(c.not_modified(Some("tag"), None));
    }

    #[test]
    fn if_range_needs_a_strong_matching_tag_or_the_exact_date() {
        let modified = parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT");
        let allowed = |value: &str| {
            Conditions::from_headers(&headers(&[("if-range", value)]))
                .range_allowed(Some("\"tag\""), modified)
        };
        assert!(allowed("\"tag\""));
        assert!(!allowed("\"old\""));
        assert!(!allowed("W/\"tag\""));
        assert!(allowed("Sun, 06 Nov 1994 08:49:37 GMT"));
        assert!(!allowed("Sun, 06 Nov 1994 08:49:38 GMT"));
        assert!(!allowed("yesterday"));
        assert!(!allowed(""));
        assert!(Conditions::default().range_allowed(None, None));
    }
}
