//! The configuration's own value types: storage key templates, base URLs, and secrets that
//! never print.

use std::fmt;
use std::ops::Range;
use std::str::FromStr;

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
