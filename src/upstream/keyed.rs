//! The GETs the gateway sends upstream through the metadata cache (the cached job metadata
//! routes and the gateway's own authorisation lookups), and their cache keys.
//!
//! **Invariant: an entry is shared only by requests that send the backend the same bytes.**
//! A [`KeyedGet`] is built from an allow-list, and its key is a digest of everything it
//! sends: path, query and every header. Nothing else of the client's request travels on
//! it: no body, no `Content-Length`, no header outside this list:
//! - the caller's identity inputs, as received ([`Credentials::headers`] and
//!   [`Credentials::query_pairs`]: the token headers and parameters, `Sudo`/`sudo`,
//!   `access_token`, the session cookie);
//! - the rest of the query, decoded and sorted ([`crate::request::credentials::normalize_query`]);
//! - `Accept: application/json`, fixed (the client's `Accept` is normalised away);
//! - the client's `Accept-Encoding`, as received (the encoding of the body depends on it);
//! - the forwarding headers of [`super::headers::forwarding`] (`X-Forwarded-Host` and
//!   `-Proto` shape `Link` URLs; `X-Forwarded-For` may decide IP-restricted access).
//!
//! So requests with different identity inputs never share an entry, and a single-flight
//! leader sends exactly what every waiter would have sent. Credentials the gateway cannot
//! fingerprint ([`Credentials::unkeyable`]) are never keyed: callers bypass the cache.

use http::{header, HeaderMap, HeaderValue, Request};

use super::cache::{CacheKey, Scope};
use crate::http_util::body::{self, Body};
use crate::request::credentials::Credentials;

/// A GET whose every byte is determined by its cache key inputs.
#[derive(Debug, Clone)]
pub struct KeyedGet {
    path_and_query: String,
    headers: HeaderMap,
    digest: [u8; 32],
    credentials: crate::request::credentials::Fingerprint,
}

impl KeyedGet {
    /// `path` as sent (raw), `pairs` the non-identity query parameters (decoded; sorted by
    /// name here, values of one name kept in order), `accept_encoding` the client's values, `forwarding` the request's forwarding
    /// headers.
    pub fn new<'a>(
        path: &str,
        mut pairs: Vec<(String, String)>,
        credentials: &Credentials,
        accept_encoding: impl IntoIterator<Item = &'a HeaderValue>,
        forwarding: &HeaderMap,
    ) -> Self {
        pairs.sort_by(|a, b| a.0.cmp(&b.0));
        let mut query = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(&pairs)
            .finish();
        for pair in credentials.query_pairs() {
            if !query.is_empty() {
                query.push('&');
            }
            query.push_str(pair);
        }
        let path_and_query = if query.is_empty() {
            path.to_owned()
        } else {
            format!("{path}?{query}")
        };
        let mut headers = HeaderMap::new();
        for (name, value) in credentials.headers() {
            headers.append(name.clone(), value.clone());
        }
        super::headers::join_cookies(&mut headers);
        headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        for value in accept_encoding {
            headers.append(header::ACCEPT_ENCODING, value.clone());
        }
        for (name, value) in forwarding {
            headers.append(name.clone(), value.clone());
        }
        let digest = digest(&path_and_query, &headers);
        Self {
            path_and_query,
            headers,
            digest,
            credentials: credentials.fingerprint(),
        }
    }

    /// The cache key: the digest of the whole request, the caller's fingerprint and the
    /// scope (for invalidation).
    pub fn key(&self, scope: Scope) -> CacheKey {
        CacheKey {
            fingerprint: self.credentials,
            request: self.digest,
            scope,
        }
    }

    pub fn path_and_query(&self) -> &str {
        &self.path_and_query
    }

    /// Every header it sends.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The request to send (to `uri`, the upstream URL of [`Self::path_and_query`]): the
    /// same every time, with no body.
    pub fn request(&self, uri: http::Uri) -> Request<Body> {
        let mut request = Request::new(body::empty());
        *request.uri_mut() = uri;
        *request.headers_mut() = self.headers.clone();
        request
    }
}

/// Length-prefixed, in the order sent, so that two different requests never hash the same
/// bytes. `HeaderMap` iterates a name's values in the order they were appended.
fn digest(path_and_query: &str, headers: &HeaderMap) -> [u8; 32] {
    let mut names: Vec<_> = headers.keys().collect();
    names.sort_by_key(|n| n.as_str());
    let headers = names.into_iter().flat_map(|name| {
        headers
            .get_all(name)
            .into_iter()
            .flat_map(move |value| [name.as_str().as_bytes(), value.as_bytes()])
    });
    crate::request::credentials::length_prefixed_sha256(
        std::iter::once(path_and_query.as_bytes()).chain(headers),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::route::ProjectRef;
    use http::HeaderName;
    use proptest::prelude::*;

    /// One identity input: a header or a query piece, from small value sets so that
    /// random requests often coincide.
    fn input() -> impl Strategy<Value = (bool, &'static str, &'static str)> {
        let header = prop::sample::select(vec![
            "private-token",
            "job-token",
            "authorization",
            "sudo",
            "cookie",
        ]);
        let param = prop::sample::select(vec![
            "private_token",
            "job_token",
            "access_token",
            "sudo",
            "private%5Ftoken",
            "Access_Token",
        ]);
        let value = prop::sample::select(vec!["a", "b", "_gitlab_session=a", "Bearer a", ""]);
        prop_oneof![
            (header, value.clone()).prop_map(|(n, v)| (true, n, v)),
            (param, value).prop_map(|(n, v)| (false, n, v)),
        ]
    }

    /// The request built for identity inputs `inputs`, plus a query and headers that are
    /// no identity and must not matter.
    fn keyed(
        inputs: &[(bool, &'static str, &'static str)],
        semicolons: bool,
    ) -> (Credentials, CacheKey) {
        let mut headers = HeaderMap::new();
        let mut query = vec!["page=2".to_owned()];
        for (is_header, name, value) in inputs {
            if *is_header {
                let value = HeaderValue::from_str(value).unwrap();
                headers.append(HeaderName::from_static(name), value);
            } else {
                query.push(format!("{name}={value}"));
            }
        }
        headers.insert("x-unrelated", HeaderValue::from_static("1"));
        let query = query.join(if semicolons { ";" } else { "&" });
        let credentials = Credentials::from_request(&headers, Some(&query));
        let pairs = vec![("page".to_owned(), "2".to_owned())];
        let get = KeyedGet::new(
            "/api/v4/projects/1/jobs/7",
            pairs,
            &credentials,
            [],
            &HeaderMap::new(),
        );
        let scope = Scope::Job {
            project: ProjectRef::Id(1),
            job_id: 7,
        };
        (credentials, get.key(scope))
    }

    /// The identity inputs as the backend would read them: headers in order per name,
    /// query pieces in order. (Header names are case-insensitive; `HeaderMap` keeps
    /// per-name order only.)
    fn canonical(inputs: &[(bool, &str, &str)]) -> (Vec<(String, String)>, Vec<String>) {
        let mut headers: Vec<(String, String)> = inputs
            .iter()
            .filter(|(h, _, v)| *h && !(*v).is_empty())
            .map(|(_, n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect();
        headers.sort_by(|a, b| a.0.cmp(&b.0));
        let params = inputs
            .iter()
            .filter(|(h, _, _)| !*h)
            .map(|(_, n, v)| format!("{n}={v}"))
            .collect();
        (headers, params)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// No two requests with different identity inputs share a key; identical ones do.
        #[test]
        fn different_identity_inputs_never_share_a_key(
            a in prop::collection::vec(input(), 0..4),
            b in prop::collection::vec(input(), 0..4),
            semicolons in any::<bool>(),
        ) {
            let (ca, ka) = keyed(&a, semicolons);
            let (cb, kb) = keyed(&b, false);
            // Cookies that are not only the session are never keyed at all.
            prop_assume!(ca.unkeyable().is_none() && cb.unkeyable().is_none());
            let (sa, sb) = (canonical(&a), canonical(&b));
            // Empty header values say nothing (`Cookie:`), except where they are sent.
            let same = sa == sb && {
                let sent = |c: &Credentials| c.headers().cloned().collect::<Vec<_>>();
                sent(&ca) == sent(&cb)
            };
            prop_assert_eq!(ka == kb, same, "{:?} vs {:?}", a, b);
            if ka == kb {
                prop_assert_eq!(ca.fingerprint(), cb.fingerprint());
            }
        }
    }

    #[test]
    fn the_key_covers_accept_encoding_and_forwarding_but_not_other_headers() {
        let credentials = Credentials::from_request(&HeaderMap::new(), None);
        let scope = || Scope::Project {
            project: ProjectRef::Id(1),
        };
        let key = |encodings: &[&'static str], host: Option<&'static str>| {
            let values: Vec<_> = encodings
                .iter()
                .map(|e| HeaderValue::from_static(e))
                .collect();
            let mut forwarding = HeaderMap::new();
            if let Some(host) = host {
                forwarding.insert("x-forwarded-host", HeaderValue::from_static(host));
            }
            KeyedGet::new("/p", Vec::new(), &credentials, &values, &forwarding).key(scope())
        };
        assert_eq!(key(&[], None), key(&[], None));
        assert_ne!(key(&[], None), key(&["gzip"], None));
        assert_ne!(key(&["gzip"], None), key(&["br"], None));
        assert_ne!(key(&[], Some("a")), key(&[], Some("b")));
        assert_ne!(key(&[], None), key(&[], Some("a")));
    }

    #[test]
    fn the_request_is_what_the_key_was_built_from() {
        let mut client = HeaderMap::new();
        client.insert("private-token", HeaderValue::from_static("t"));
        client.insert("content-length", HeaderValue::from_static("5"));
        client.insert("x-other", HeaderValue::from_static("1"));
        let credentials = Credentials::from_request(&client, Some("sudo=u&page=1"));
        let pairs = vec![("page".to_owned(), "1".to_owned())];
        let get = KeyedGet::new("/p", pairs, &credentials, [], &HeaderMap::new());
        assert_eq!(get.path_and_query(), "/p?page=1&sudo=u");
        let request = get.request("http://up/p?page=1&sudo=u".parse().unwrap());
        let names: Vec<_> = request.headers().keys().map(HeaderName::as_str).collect();
        assert_eq!(names, ["private-token", "accept"]);
        assert!(http_body::Body::is_end_stream(request.body()));
    }
}
