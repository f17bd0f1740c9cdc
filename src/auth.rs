//! The caller's credentials: extracted once per request in all four GitLab forms, turned
//! into a cache fingerprint (never the raw token), copied onto requests the gateway makes
//! upstream on the caller's behalf, and scrubbed from anything that is logged.

use http::{HeaderMap, HeaderName, HeaderValue};
use sha2::{Digest, Sha256};

/// Header names GitLab accepts a token in.
pub const PRIVATE_TOKEN: HeaderName = HeaderName::from_static("private-token");
pub const JOB_TOKEN: HeaderName = HeaderName::from_static("job-token");
const AUTH_HEADERS: [HeaderName; 3] = [PRIVATE_TOKEN, JOB_TOKEN, http::header::AUTHORIZATION];

/// Query parameters GitLab accepts a token in.
pub const TOKEN_PARAMS: [&str; 2] = ["private_token", "job_token"];

/// Who is asking, as far as the upstream can tell: every credential the request carries.
#[derive(Clone)]
pub struct Credentials {
    headers: Vec<(HeaderName, HeaderValue)>,
    params: Vec<(String, String)>,
    /// Computed once: every cache key of the request needs it.
    fingerprint: Fingerprint,
}

/// A digest of a caller's credentials. Two callers share a fingerprint only if they sent
/// the same credentials; anonymous callers share one.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fingerprint([u8; 32]);

impl std::fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A short prefix tells entries apart in debug output without being a usable token hash.
        write!(f, "Fingerprint({:02x}{:02x}…)", self.0[0], self.0[1])
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("fingerprint", &self.fingerprint())
            .finish()
    }
}

impl Credentials {
    pub fn from_request(headers: &HeaderMap, query: Option<&str>) -> Self {
        let headers: Vec<_> = AUTH_HEADERS
            .iter()
            .flat_map(|name| {
                headers
                    .get_all(name)
                    .iter()
                    .map(|v| (name.clone(), v.clone()))
            })
            .collect();
        let params: Vec<_> = query
            .map(|q| {
                form_urlencoded::parse(q.as_bytes())
                    .filter(|(k, _)| TOKEN_PARAMS.contains(&k.as_ref()))
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect()
            })
            .unwrap_or_default();
        let fingerprint = digest(&headers, &params);
        Self {
            headers,
            params,
            fingerprint,
        }
    }

    pub fn is_anonymous(&self) -> bool {
        self.headers.is_empty() && self.params.is_empty()
    }

    pub fn fingerprint(&self) -> Fingerprint {
        self.fingerprint
    }

    /// Put these credentials on a request the gateway makes for the caller.
    pub fn apply(&self, headers: &mut HeaderMap, query: &mut form_urlencoded::Serializer<String>) {
        for (name, value) in &self.headers {
            headers.append(name.clone(), value.clone());
        }
        for (name, value) in &self.params {
            query.append_pair(name, value);
        }
    }
}

/// Length-prefixed so that no two different credential sets hash the same input.
fn digest(headers: &[(HeaderName, HeaderValue)], params: &[(String, String)]) -> Fingerprint {
    let mut hasher = Sha256::new();
    let mut feed = |part: &[u8]| {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part);
    };
    for (name, value) in headers {
        feed(name.as_str().as_bytes());
        feed(value.as_bytes());
    }
    feed(b"\0query");
    for (name, value) in params {
        feed(name.as_bytes());
        feed(value.as_bytes());
    }
    Fingerprint(hasher.finalize().into())
}

/// The query with token parameters' values replaced, for logs.
pub fn redact_query(query: &str) -> String {
    query
        .split('&')
        .map(|pair| {
            let name = pair.split('=').next().unwrap_or("");
            let decoded: String = form_urlencoded::parse(name.as_bytes())
                .map(|(k, _)| k.into_owned())
                .next()
                .unwrap_or_default();
            if TOKEN_PARAMS.contains(&decoded.as_str()) {
                format!("{name}=[REDACTED]")
            } else {
                pair.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// The query as a cache key part: token parameters removed (they are in the fingerprint),
/// the rest decoded and sorted so that parameter order does not split the cache.
pub fn normalize_query(query: Option<&str>) -> String {
    let Some(query) = query else {
        return String::new();
    };
    let mut pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
        .filter(|(k, _)| !TOKEN_PARAMS.contains(&k.as_ref()))
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    pairs.sort();
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(headers: &[(&str, &str)], query: Option<&str>) -> Credentials {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        Credentials::from_request(&map, query)
    }

    #[test]
    fn every_credential_form_yields_a_distinct_fingerprint() {
        let all = [
            creds(&[], None),
            creds(&[("PRIVATE-TOKEN", "a")], None),
            creds(&[("PRIVATE-TOKEN", "b")], None),
            creds(&[("JOB-TOKEN", "a")], None),
            creds(&[("Authorization", "Bearer a")], None),
            creds(&[], Some("private_token=a")),
            creds(&[], Some("job_token=a")),
            creds(&[("PRIVATE-TOKEN", "a")], Some("job_token=a")),
        ];
        for (i, a) in all.iter().enumerate() {
            for (j, b) in all.iter().enumerate() {
                assert_eq!(i == j, a.fingerprint() == b.fingerprint(), "{i} vs {j}");
            }
        }
        assert!(all[0].is_anonymous());
        assert!(!all[5].is_anonymous());
    }

    #[test]
    fn same_credentials_share_a_fingerprint_whatever_else_the_request_has() {
        let a = creds(&[("PRIVATE-TOKEN", "t"), ("Accept", "x")], Some("page=2"));
        let b = creds(&[("PRIVATE-TOKEN", "t")], Some("scope=success"));
        assert_eq!(a.fingerprint(), b.fingerprint());
    }

    #[test]
    fn debug_output_never_contains_the_token() {
        let c = creds(
            &[("PRIVATE-TOKEN", "supersecret")],
            Some("job_token=alsosecret"),
        );
        let shown = format!("{c:?} {:?}", c.fingerprint());
        assert!(!shown.contains("supersecret") && !shown.contains("alsosecret"));
    }

    #[test]
    fn redacts_token_parameters_only() {
        assert_eq!(
            redact_query("page=2&private_token=abc&job_token=def&scope%5B%5D=x"),
            "page=2&private_token=[REDACTED]&job_token=[REDACTED]&scope%5B%5D=x"
        );
        assert_eq!(
            redact_query("private%5Ftoken=abc"),
            "private%5Ftoken=[REDACTED]"
        );
    }

    #[test]
    fn normalized_query_drops_tokens_and_ignores_order() {
        assert_eq!(
            normalize_query(Some("scope[]=b&private_token=x&scope[]=a&page=1")),
            normalize_query(Some("page=1&scope%5B%5D=a&scope[]=b"))
        );
        assert_eq!(normalize_query(None), "");
    }

    #[test]
    fn apply_copies_every_form() {
        let c = creds(
            &[("PRIVATE-TOKEN", "a"), ("Authorization", "Bearer b")],
            Some("job_token=c&page=3"),
        );
        let mut headers = HeaderMap::new();
        let mut query = form_urlencoded::Serializer::new(String::new());
        c.apply(&mut headers, &mut query);
        assert_eq!(headers["private-token"], "a");
        assert_eq!(headers["authorization"], "Bearer b");
        assert_eq!(query.finish(), "job_token=c");
    }
}
