//! The caller's identity: every input that can change who the backend thinks the caller is,
//! extracted once per request, turned into a cache fingerprint (never the raw token), copied
//! onto the requests the gateway makes upstream on the caller's behalf, and scrubbed from
//! anything that is logged.
//!
//! Identity inputs (GitLab's): the `PRIVATE-TOKEN`, `JOB-TOKEN`, `Authorization` and `Sudo`
//! headers; the `private_token`, `job_token`, `access_token` (OAuth) and `sudo` query
//! parameters, split on `&` and `;` and matched after percent-decoding; and the
//! `_gitlab_session` browser cookie. A `Cookie` header with any other cookie cannot be
//! fingerprinted without guessing which cookies the backend reads: such credentials are
//! [`Credentials::unkeyable`], and nothing they fetch is cached.

use http::{header, HeaderMap, HeaderName, HeaderValue};
use sha2::{Digest, Sha256};

/// Header names GitLab accepts a token in, and `Sudo`.
pub const PRIVATE_TOKEN: HeaderName = HeaderName::from_static("private-token");
pub const JOB_TOKEN: HeaderName = HeaderName::from_static("job-token");
pub const SUDO: HeaderName = HeaderName::from_static("sudo");
/// Identity headers, in the order they are fingerprinted and forwarded; `Cookie` follows.
const IDENTITY_HEADERS: [HeaderName; 4] = [PRIVATE_TOKEN, JOB_TOKEN, header::AUTHORIZATION, SUDO];

/// Query parameters that identify the caller: three token forms and `sudo`.
pub const IDENTITY_PARAMS: [&str; 4] = ["private_token", "job_token", "access_token", "sudo"];

/// GitLab's browser session cookie, which its API accepts.
pub const SESSION_COOKIE: &str = "_gitlab_session";

/// Who is asking, as far as the upstream can tell: every identity input the request carries,
/// exactly as it carries them.
#[derive(Clone)]
pub struct Credentials {
    /// Identity headers then `Cookie` values, as received, in order.
    headers: Vec<(HeaderName, HeaderValue)>,
    /// Identity query pairs, raw (still percent-encoded), in order.
    params: Vec<String>,
    /// Computed once: every cache key of the request needs it.
    fingerprint: Fingerprint,
    unkeyable: Option<&'static str>,
}

/// A digest of a caller's identity inputs. Two callers share a fingerprint only if they
/// sent the same inputs, byte for byte; anonymous callers share one.
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
            .field("unkeyable", &self.unkeyable)
            .finish()
    }
}

impl Credentials {
    pub fn from_request(headers: &HeaderMap, query: Option<&str>) -> Self {
        let mut found: Vec<_> = IDENTITY_HEADERS
            .iter()
            .chain([&header::COOKIE])
            .flat_map(|name| {
                headers
                    .get_all(name)
                    .iter()
                    .map(|v| (name.clone(), v.clone()))
            })
            .collect();
        let unkeyable = found
            .iter()
            .filter(|(name, _)| name == header::COOKIE)
            .any(|(_, value)| !only_session_cookies(value.as_bytes()))
            .then_some("cookies other than the session cookie");
        // An empty cookie header says nothing; dropping it keeps `Cookie: ` anonymous.
        found.retain(|(name, value)| {
            name != header::COOKIE || !value.as_bytes().trim_ascii().is_empty()
        });
        let params: Vec<String> = query
            .map(|q| {
                query_pieces(q)
                    .filter(|piece| is_identity_param(&decoded_name(piece)))
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        let fingerprint = digest(&found, &params);
        Self {
            headers: found,
            params,
            fingerprint,
            unkeyable,
        }
    }

    pub fn fingerprint(&self) -> Fingerprint {
        self.fingerprint
    }

    /// Why these credentials cannot be fingerprinted, if they cannot: then the backend may
    /// read an identity from something outside the fingerprint, and no answer to them may
    /// be cached.
    pub fn unkeyable(&self) -> Option<&'static str> {
        self.unkeyable
    }

    /// The identity headers to send on a request made for the caller, as received.
    pub fn headers(&self) -> impl Iterator<Item = &(HeaderName, HeaderValue)> {
        self.headers.iter()
    }

    /// The identity query pairs to send on a request made for the caller, raw.
    pub fn query_pairs(&self) -> impl Iterator<Item = &str> {
        self.params.iter().map(String::as_str)
    }
}

/// Whether every cookie in a `Cookie` value is the session cookie.
fn only_session_cookies(value: &[u8]) -> bool {
    value
        .split(|b| *b == b';')
        .map(<[u8]>::trim_ascii)
        .filter(|pair| !pair.is_empty())
        .all(|pair| pair.split(|b| *b == b'=').next() == Some(SESSION_COOKIE.as_bytes()))
}

/// The `name=value` pieces of a query, split on `&` and on `;` (which Rack has treated as a
/// separator too).
fn query_pieces(query: &str) -> impl Iterator<Item = &str> {
    query.split(['&', ';']).filter(|piece| !piece.is_empty())
}

/// A piece's name, percent- and `+`-decoded.
fn decoded_name(piece: &str) -> String {
    let name = piece.split('=').next().unwrap_or("");
    form_urlencoded::parse(name.as_bytes())
        .map(|(k, _)| k.into_owned())
        .next()
        .unwrap_or_default()
}

/// `private_token`, `Private_Token` and `private_token[]` all count: erring towards identity
/// only splits the cache.
fn is_identity_param(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    IDENTITY_PARAMS.iter().any(|p| {
        name.strip_prefix(p)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('['))
    })
}

/// Length-prefixed so that no two different input lists hash the same bytes.
fn digest(headers: &[(HeaderName, HeaderValue)], params: &[String]) -> Fingerprint {
    let headers = headers
        .iter()
        .flat_map(|(name, value)| [name.as_str().as_bytes(), value.as_bytes()]);
    let params = params.iter().map(String::as_bytes);
    Fingerprint(length_prefixed_sha256(
        headers.chain([b"\0query".as_slice()]).chain(params),
    ))
}

/// SHA-256 of `parts`, each preceded by its length, so that two different sequences of
/// parts never hash the same bytes.
pub(crate) fn length_prefixed_sha256<'a>(parts: impl IntoIterator<Item = &'a [u8]>) -> [u8; 32] {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part);
    }
    hasher.finalize().into()
}

/// Parameter names whose values are never logged: the identity parameters' tokens and
/// anything else named like a secret (`feed_token`, `password`, `X-Amz-Signature`, ...).
const SECRET_NAME_PARTS: [&str; 8] = [
    "token",
    "secret",
    "password",
    "passwd",
    "session",
    "signature",
    "credential",
    "api_key",
];

fn is_secret_param(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    SECRET_NAME_PARTS.iter().any(|part| name.contains(part))
}

/// The query with every secret parameter's value replaced, for logs. Pieces separated by
/// `&` or `;` are each checked by their percent-decoded name; separators are kept.
pub fn redact_query(query: &str) -> String {
    let mut out = String::with_capacity(query.len());
    let mut rest = query;
    loop {
        let end = rest.find(['&', ';']).unwrap_or(rest.len());
        let piece = &rest[..end];
        match piece.split_once('=') {
            Some((name, _)) if is_secret_param(&decoded_name(piece)) => {
                out.push_str(name);
                out.push_str("=[REDACTED]");
            }
            _ => out.push_str(piece),
        }
        if end == rest.len() {
            return out;
        }
        out.push_str(&rest[end..=end]);
        rest = &rest[end + 1..];
    }
}

/// The query as a cache key part and as sent upstream on cached GETs: identity parameters
/// removed (they travel apart, see [`Credentials::query_pairs`]), the rest decoded and
/// sorted by name so that parameter order does not split the cache. Values of a repeated
/// name keep their order: for a scalar the last one wins. `None` when the query cannot be
/// normalised without changing what a backend might read from it: a `;` (a separator to
/// some servers, data to others) or a parameter that is not UTF-8 once decoded.
pub fn normalize_query(query: Option<&str>) -> Option<Vec<(String, String)>> {
    let Some(query) = query else {
        return Some(Vec::new());
    };
    if query.contains(';') {
        return None;
    }
    let mut pairs = Vec::new();
    for piece in query_pieces(query) {
        let (name, value) = piece.split_once('=').unwrap_or((piece, ""));
        let strict = |s: &str| {
            let plus = s.replace('+', " ");
            percent_encoding::percent_decode_str(&plus)
                .decode_utf8()
                .map(std::borrow::Cow::into_owned)
                .ok()
        };
        let (name, value) = (strict(name)?, strict(value)?);
        if !is_identity_param(&name) {
            pairs.push((name, value));
        }
    }
    pairs.sort_by(|a, b| a.0.cmp(&b.0));
    Some(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// No identity input at all.
    fn anonymous(credentials: &Credentials) -> bool {
        credentials.headers.is_empty() && credentials.params.is_empty()
    }

    pub(crate) fn creds(headers: &[(&str, &str)], query: Option<&str>) -> Credentials {
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
    fn every_identity_form_yields_a_distinct_fingerprint() {
        let all = [
            creds(&[], None),
            creds(&[("PRIVATE-TOKEN", "a")], None),
            creds(&[("PRIVATE-TOKEN", "b")], None),
            creds(&[("JOB-TOKEN", "a")], None),
            creds(&[("Authorization", "Bearer a")], None),
            creds(&[], Some("private_token=a")),
            creds(&[], Some("job_token=a")),
            creds(&[("PRIVATE-TOKEN", "a")], Some("job_token=a")),
            creds(&[], Some("access_token=a")),
            creds(&[], Some("x=1;private_token=c")),
            creds(&[], Some("private%5Ftoken=a")),
            creds(&[("PRIVATE-TOKEN", "a"), ("Sudo", "alice")], None),
            creds(&[("PRIVATE-TOKEN", "a"), ("Sudo", "bob")], None),
            creds(&[("PRIVATE-TOKEN", "a")], Some("sudo=alice")),
            creds(&[("Cookie", "_gitlab_session=s1")], None),
            creds(&[("Cookie", "_gitlab_session=s2")], None),
        ];
        for (i, a) in all.iter().enumerate() {
            for (j, b) in all.iter().enumerate() {
                assert_eq!(i == j, a.fingerprint() == b.fingerprint(), "{i} vs {j}");
            }
        }
        assert!(anonymous(&all[0]));
        assert!(all[1..].iter().all(|c| !anonymous(c)));
        assert!(all.iter().all(|c| c.unkeyable().is_none()));
    }

    #[test]
    fn cookies_other_than_the_session_make_credentials_unkeyable() {
        assert!(creds(&[("Cookie", "theme=dark")], None)
            .unkeyable()
            .is_some());
        let mixed = creds(
            &[("Cookie", "_gitlab_session=s; remember_user_token=r")],
            None,
        );
        assert!(mixed.unkeyable().is_some());
        assert!(!anonymous(&mixed));
        assert!(creds(&[("Cookie", " _gitlab_session=s ;")], None)
            .unkeyable()
            .is_none());
        assert!(anonymous(&creds(&[("Cookie", "")], None)));
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
    fn redacts_secret_parameters_after_either_separator_and_encoded() {
        assert_eq!(
            redact_query("page=2&private_token=abc&job_token=def&scope%5B%5D=x"),
            "page=2&private_token=[REDACTED]&job_token=[REDACTED]&scope%5B%5D=x"
        );
        assert_eq!(
            redact_query("private%5Ftoken=abc"),
            "private%5Ftoken=[REDACTED]"
        );
        assert_eq!(
            redact_query("a=1;access_token=abc&x;feed_token=f;;Job_Token=j"),
            "a=1;access_token=[REDACTED]&x;feed_token=[REDACTED];;Job_Token=[REDACTED]"
        );
        assert_eq!(
            redact_query("%61ccess%5ftoken=abc&access_token[]=d"),
            "%61ccess%5ftoken=[REDACTED]&access_token[]=[REDACTED]"
        );
        assert_eq!(redact_query(""), "");
    }

    #[test]
    fn normalized_query_drops_identity_and_ignores_order() {
        assert_eq!(
            normalize_query(Some("scope[]=b&private_token=x&scope[]=a&page=1&sudo=x")),
            normalize_query(Some("page=1&scope%5B%5D=b&scope[]=a&access_token=y"))
        );
        assert_ne!(
            normalize_query(Some("page=1&page=2")),
            normalize_query(Some("page=2&page=1"))
        );
        assert_eq!(normalize_query(None), Some(Vec::new()));
        assert_eq!(normalize_query(Some("a=1;b=2")), None);
        assert_eq!(normalize_query(Some("a=%FF")), None);
    }

    #[test]
    fn identity_travels_as_received() {
        let c = creds(
            &[
                ("PRIVATE-TOKEN", "a"),
                ("Authorization", "Bearer b"),
                ("Sudo", "u"),
            ],
            Some("job_token=c&page=3;access%5Ftoken=d"),
        );
        let names: Vec<_> = c.headers().map(|(n, v)| format!("{n}: {v:?}")).collect();
        assert_eq!(
            names,
            [
                "private-token: \"a\"",
                "authorization: \"Bearer b\"",
                "sudo: \"u\""
            ]
        );
        let pairs: Vec<_> = c.query_pairs().collect();
        assert_eq!(pairs, ["job_token=c", "access%5Ftoken=d"]);
    }
}
