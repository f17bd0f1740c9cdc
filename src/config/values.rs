//! Value types: durations, sizes, key templates, base URLs, secrets.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::str::FromStr;
use std::time::Duration;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

pub(super) const KIB: u64 = 1024;
pub(super) const MIB: u64 = 1024 * KIB;
const GIB: u64 = 1024 * MIB;

/// Longest accepted duration. Far beyond any sensible timeout, and small enough that
/// `Instant + duration` can never overflow (which would panic deep inside a timer).
const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);

/// A duration as written in the file: `"500ms"`, `"10s"`, `"5m"`, `"1h"`, or integer seconds.
pub(super) struct Dur(pub(super) Duration);
/// A byte count as written in the file: an integer, or a string with `B`/`KiB`/`MiB`/`GiB`.
pub(super) struct Size(pub(super) u64);

/// Accepts a non-negative integer or a string, converting each with its own function, so the
/// conversion error surfaces during deserialization and `serde_path_to_error` names the key.
struct IntOrStr<T> {
    expecting: &'static str,
    int: fn(u64) -> Result<T, String>,
    text: fn(&str) -> Result<T, String>,
}

impl<T> Visitor<'_> for IntOrStr<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.expecting)
    }

    fn visit_u64<E: de::Error>(self, n: u64) -> Result<T, E> {
        (self.int)(n).map_err(E::custom)
    }

    fn visit_i64<E: de::Error>(self, n: i64) -> Result<T, E> {
        let n = u64::try_from(n).map_err(|_| E::custom("must not be negative"))?;
        self.visit_u64(n)
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<T, E> {
        (self.text)(s).map_err(E::custom)
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(IntOrStr {
            expecting:
                "a duration such as \"500ms\", \"10s\", \"5m\" or \"1h\", or integer seconds",
            int: |secs| at_most_max(Duration::from_secs(secs)),
            text: parse_duration,
        })
        .map(Dur)
    }
}

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(IntOrStr {
            expecting: "a size: an integer number of bytes or a string such as \"64MiB\"",
            int: Ok,
            text: parse_size,
        })
        .map(Size)
    }
}

/// A string as written in the file, whose type errors never echo the value: it may be a
/// credential (`storage.secret_access_key`, a `storage.options` entry). serde's own messages
/// quote it (``invalid type: integer `1234`, expected a string``).
pub(super) struct Text(pub(super) String);

/// `storage.options` as written in the file: a table of strings. Like [`Text`], its type errors
/// never echo a value; an entry's error names its key (`storage.options.<key>`).
pub(super) struct StringTable(pub(super) BTreeMap<String, String>);

/// serde's "invalid type" error without the value: `invalid type: integer, expected a string`.
fn invalid_type<E: de::Error>(found: &str, expected: &dyn de::Expected) -> E {
    E::custom(format!("invalid type: {found}, expected {expected}"))
}

/// The `visit_*` methods for every TOML scalar, each refusing its value with [`invalid_type`].
macro_rules! refuse_scalars_without_echo {
    ($($method:ident($ty:ty) => $found:literal),* $(,)?) => {$(
        fn $method<E: de::Error>(self, _: $ty) -> Result<Self::Value, E> {
            Err(invalid_type($found, &self))
        }
    )*};
}

struct TextVisitor;

impl<'de> Visitor<'de> for TextVisitor {
    type Value = Text;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Text, E> {
        Ok(Text(s.to_owned()))
    }

    fn visit_string<E: de::Error>(self, s: String) -> Result<Text, E> {
        Ok(Text(s))
    }

    refuse_scalars_without_echo! {
        visit_bool(bool) => "boolean",
        visit_i64(i64) => "integer",
        visit_u64(u64) => "integer",
        visit_f64(f64) => "floating point",
    }

    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<Text, A::Error> {
        Err(invalid_type("array", &self))
    }

    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<Text, A::Error> {
        Err(invalid_type("table", &self))
    }
}

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(TextVisitor)
    }
}

struct StringTableVisitor;

impl<'de> Visitor<'de> for StringTableVisitor {
    type Value = StringTable;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a table of strings, e.g. { google_service_account = \"/etc/gcs.json\" }")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<StringTable, A::Error> {
        let mut table = BTreeMap::new();
        while let Some((key, Text(value))) = map.next_entry::<String, Text>()? {
            table.insert(key, value);
        }
        Ok(StringTable(table))
    }

    refuse_scalars_without_echo! {
        visit_bool(bool) => "boolean",
        visit_i64(i64) => "integer",
        visit_u64(u64) => "integer",
        visit_f64(f64) => "floating point",
        visit_str(&str) => "string",
    }

    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<StringTable, A::Error> {
        Err(invalid_type("array", &self))
    }
}

impl<'de> Deserialize<'de> for StringTable {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StringTableVisitor)
    }
}

/// Splits `"10ms"` into `("10", "ms")`.
fn split_number(s: &str) -> (&str, &str) {
    s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()))
}

/// Parses `<integer><unit>` with unit `ms`, `s`, `m` or `h`; a bare integer means seconds.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let err = || {
        format!("invalid duration {s:?}: expected an integer with unit ms, s, m or h, e.g. \"500ms\", \"10s\", \"5m\"")
    };
    let (digits, unit) = split_number(s.trim());
    let n: u64 = digits.parse().map_err(|_| err())?;
    let duration = match unit {
        "ms" => Some(Duration::from_millis(n)),
        "" | "s" => Some(Duration::from_secs(n)),
        "m" => n.checked_mul(60).map(Duration::from_secs),
        "h" => n.checked_mul(3600).map(Duration::from_secs),
        _ => return Err(err()),
    };
    at_most_max(duration.unwrap_or(Duration::MAX))
}

fn at_most_max(d: Duration) -> Result<Duration, String> {
    if d > MAX_DURATION {
        return Err("too long: at most 8760h (one year)".to_owned());
    }
    Ok(d)
}

/// Parses `<integer>[unit]` with unit `B`, `KiB`, `MiB` or `GiB` (any case); none means bytes.
/// `KB`/`MB` are refused rather than guessed: they mean 1000 to some and 1024 to others.
fn parse_size(s: &str) -> Result<u64, String> {
    let err = || {
        format!("invalid size {s:?}: expected bytes, or an integer with unit B, KiB, MiB or GiB, e.g. \"64MiB\"")
    };
    let (digits, unit) = split_number(s.trim());
    let n: u64 = digits.parse().map_err(|_| err())?;
    let multiplier = match unit.trim_start().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kib" => KIB,
        "mib" => MIB,
        "gib" => GIB,
        _ => return Err(err()),
    };
    n.checked_mul(multiplier)
        .ok_or_else(|| format!("size {s:?} is too large"))
}

/// A storage key with `{project_id}` and `{job_id}` placeholders; any other `{...}` is an error at load time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyTemplate {
    text: String,
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(Range<usize>),
    ProjectId,
    JobId,
}

impl KeyTemplate {
    /// Parses a template. It must contain `{job_id}` (else every job would share one object),
    /// be relative (not start with `/`), and have no empty, `.` or `..` segments, which object
    /// stores reject or resolve outside the prefix.
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.starts_with('/') {
            return Err("must not start with '/': keys are relative to storage.url".to_owned());
        }
        if s.split('/')
            .any(|seg| seg.is_empty() || seg == "." || seg == "..")
        {
            return Err("must not contain empty, '.' or '..' path segments".to_owned());
        }
        let mut parts = Vec::new();
        let mut pos = 0;
        while pos < s.len() {
            let brace = s[pos..].find(['{', '}']).map_or(s.len(), |i| pos + i);
            if brace > pos {
                parts.push(Part::Literal(pos..brace));
            }
            if brace == s.len() {
                break;
            }
            if s.as_bytes()[brace] == b'}' {
                return Err(format!("unbalanced '}}' at byte {brace}"));
            }
            let close = s[brace + 1..]
                .find(['{', '}'])
                .map(|i| brace + 1 + i)
                .filter(|&i| s.as_bytes()[i] == b'}')
                .ok_or_else(|| format!("unbalanced '{{' at byte {brace}"))?;
            parts.push(match &s[brace + 1..close] {
                "project_id" => Part::ProjectId,
                "job_id" => Part::JobId,
                other => {
                    return Err(format!(
                        "unknown placeholder {{{other}}}; expected {{project_id}} or {{job_id}}"
                    ))
                }
            });
            pos = close + 1;
        }
        if !parts.contains(&Part::JobId) {
            return Err("must contain {job_id}".to_owned());
        }
        Ok(KeyTemplate {
            text: s.to_owned(),
            parts,
        })
    }

    /// The object key for one job.
    pub fn render(&self, project_id: u64, job_id: u64) -> String {
        let mut key = String::with_capacity(self.text.len() + 16);
        for part in &self.parts {
            match part {
                Part::Literal(range) => key.push_str(&self.text[range.clone()]),
                Part::ProjectId => key.push_str(&project_id.to_string()),
                Part::JobId => key.push_str(&job_id.to_string()),
            }
        }
        key
    }

    /// The template as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

/// An absolute http(s) base URL: scheme + authority + optional path prefix without trailing slash, no query/fragment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseUrl {
    /// `scheme://authority/prefix`, scheme lowercased, no trailing slash.
    text: String,
    /// End of the scheme in `text`; the authority starts 3 bytes later, after `://`.
    scheme_end: usize,
    /// End of the authority in `text`; the path prefix follows.
    authority_end: usize,
}

impl BaseUrl {
    /// Parses `http(s)://authority[/prefix][/]`. Credentials are refused: the URL is logged.
    pub fn parse(s: &str) -> Result<Self, String> {
        const EXPECTED: &str = "must be an absolute http:// or https:// URL";
        if s.contains(['?', '#']) {
            return Err("must not have a query or fragment".to_owned());
        }
        let uri: http::Uri = s.parse().map_err(|_| EXPECTED)?;
        let scheme = match uri.scheme_str() {
            Some(s) if s.eq_ignore_ascii_case("http") => "http",
            Some(s) if s.eq_ignore_ascii_case("https") => "https",
            _ => return Err(EXPECTED.to_owned()),
        };
        let authority = uri.authority().ok_or(EXPECTED)?;
        if authority.as_str().contains('@') {
            return Err("must not contain credentials".to_owned());
        }
        // `Authority` accepts any digits after the colon; the port must fit in a u16.
        let port = &authority.as_str()[authority.host().len()..];
        let port_ok = port.is_empty() || port[1..].parse::<u16>().is_ok();
        if authority.host().is_empty() || !port_ok {
            return Err(EXPECTED.to_owned());
        }
        let prefix = uri.path().trim_end_matches('/');
        let text = format!("{scheme}://{authority}{prefix}");
        Ok(BaseUrl {
            scheme_end: scheme.len(),
            authority_end: text.len() - prefix.len(),
            text,
        })
    }

    /// `"http"` or `"https"`.
    pub fn scheme(&self) -> &str {
        &self.text[..self.scheme_end]
    }

    /// Host and optional port, e.g. `"127.0.0.1:3000"`.
    pub fn authority(&self) -> &str {
        &self.text[self.scheme_end + 3..self.authority_end]
    }

    /// `""` or a prefix such as `"/gitlab"`, without trailing slash.
    pub fn path_prefix(&self) -> &str {
        &self.text[self.authority_end..]
    }

    /// The whole base, without trailing slash: `"https://h/gitlab"`.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl FromStr for BaseUrl {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        BaseUrl::parse(s)
    }
}

impl fmt::Display for BaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// A credential. `Debug` and `Display` print `[REDACTED]`, so it can sit in a logged or
/// debug-printed [`Config`](super::Config); [`Secret::expose`] hands out the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret value itself, for the one place that needs it (e.g. a request signer).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret(value)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base(s: &str) -> BaseUrl {
        BaseUrl::parse(s).unwrap()
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        assert_eq!(parse_duration(" 0s "), Ok(Duration::ZERO));
        for bad in [
            "",
            "s",
            "-1s",
            "1.5s",
            "10 s",
            "10sec",
            "1d",
            "ms10",
            "99999999999999999999s",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
        assert!(parse_duration("8761h").unwrap_err().contains("too long"));
        assert!(parse_duration("18446744073709551615h").is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1024"), Ok(1024));
        assert_eq!(parse_size("10B"), Ok(10));
        assert_eq!(parse_size("16KiB"), Ok(16 * 1024));
        assert_eq!(parse_size("64 MiB"), Ok(64 << 20));
        assert_eq!(parse_size("2gib"), Ok(2 << 30));
        for bad in [
            "",
            "MiB",
            "1.5MiB",
            "-1",
            "64MB",
            "64KB",
            "1 TiB",
            "18446744073709551615GiB",
        ] {
            assert!(parse_size(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn key_templates() {
        let t = KeyTemplate::parse("a/{project_id}-{job_id}/{job_id}.zip").unwrap();
        assert_eq!(t.render(1, 23), "a/1-23/23.zip");
        assert_eq!(t.as_str(), "a/{project_id}-{job_id}/{job_id}.zip");
        assert_eq!(KeyTemplate::parse("{job_id}").unwrap().render(1, 2), "2");
        let err = |s: &str| KeyTemplate::parse(s).unwrap_err();
        assert!(err("{project_id}/log").contains("{job_id}"));
        assert!(err("{job}/{job_id}").contains("unknown placeholder {job}"));
        assert!(err("{job_id").contains("unbalanced '{'"));
        assert!(err("{job_id}}").contains("unbalanced '}'"));
        assert!(err("{{job_id}}").contains("unbalanced '{'"));
        assert!(err("/{job_id}").contains("must not start with '/'"));
        assert!(err("a/../{job_id}").contains("'..'"));
        assert!(err("a//{job_id}").contains("empty"));
        assert!(err("{job_id}/").contains("empty"));
    }

    #[test]
    fn base_urls() {
        let u = base("http://127.0.0.1:3000");
        assert_eq!(
            (u.scheme(), u.authority(), u.path_prefix()),
            ("http", "127.0.0.1:3000", "")
        );
        assert_eq!(u.to_string(), "http://127.0.0.1:3000");
        let u = base("HTTPS://h/gitlab//");
        assert_eq!(
            (u.scheme(), u.authority(), u.path_prefix()),
            ("https", "h", "/gitlab")
        );
        assert_eq!(u.as_str(), "https://h/gitlab");
        assert_eq!(
            "http://[::1]:80/".parse::<BaseUrl>().unwrap().authority(),
            "[::1]:80"
        );
        for bad in [
            "",
            "h:80",
            "/path",
            "ftp://h",
            "http://",
            "http:///x",
            "http://h:99999",
            "http://h:",
            "http://a b",
        ] {
            assert!(BaseUrl::parse(bad).is_err(), "{bad:?}");
        }
        assert!(BaseUrl::parse("https://h/#x")
            .unwrap_err()
            .contains("query or fragment"));
        assert!(BaseUrl::parse("https://user:pw@h")
            .unwrap_err()
            .contains("credentials"));
    }
}
