//! Pure header work for forwarding: hop-by-hop removal, `X-Forwarded-*`, and rewriting
//! absolute URLs that name the upstream (pagination `Link`, `Location`) to the gateway.

use std::net::IpAddr;

use http::{header, HeaderMap, HeaderName, HeaderValue};

pub const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
pub const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
pub const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// Connection-level headers (RFC 9110 §7.6.1) that must not travel past one hop.
const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
];

/// Remove hop-by-hop headers, including any the `Connection` header names.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in HOP_BY_HOP.iter().chain(named.iter()) {
        headers.remove(name);
    }
    headers.remove(header::UPGRADE);
}

/// How the gateway says upstream where a request came from.
pub struct Via<'a> {
    pub peer: IpAddr,
    /// The peer is one of `server.trusted_proxies`: its forwarding headers are believed.
    pub trusted: bool,
    /// Scheme and host the caller used (`public_url`'s when configured).
    pub proto: &'a str,
    pub host: Option<&'a str>,
}

/// Headers through which a client can claim where a request came from (`X-Forwarded-*`,
/// `Forwarded`, and the client-address headers Rails and nginx read).
pub fn is_forwarding_header(name: &HeaderName) -> bool {
    let name = name.as_str();
    name.starts_with("x-forwarded-")
        || matches!(
            name,
            "forwarded" | "x-real-ip" | "client-ip" | "true-client-ip"
        )
}

/// The forwarding headers to send upstream for a request whose own headers are `client`.
/// From a trusted proxy its `X-Forwarded-*` and `Forwarded` are kept, with the peer
/// appended to `X-Forwarded-For` and ours filling in what it did not send. From any other
/// peer the client's are dropped: a client cannot make the backend believe another
/// address, scheme or host (which would end up in `Link` URLs other callers are served).
pub fn forwarding(client: &HeaderMap, via: &Via<'_>) -> HeaderMap {
    let mut out = HeaderMap::new();
    if via.trusted {
        for (name, value) in client {
            if is_forwarding_header(name) && name != X_FORWARDED_FOR {
                out.append(name.clone(), value.clone());
            }
        }
    }
    let mut chain: Vec<&str> = Vec::new();
    if via.trusted {
        chain.extend(
            client
                .get_all(&X_FORWARDED_FOR)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .map(str::trim)
                .filter(|v| !v.is_empty()),
        );
    }
    let peer = via.peer.to_canonical().to_string();
    chain.push(&peer);
    if let Ok(value) = HeaderValue::from_str(&chain.join(", ")) {
        out.insert(X_FORWARDED_FOR, value);
    }
    if !out.contains_key(&X_FORWARDED_PROTO) {
        out.insert(
            X_FORWARDED_PROTO,
            HeaderValue::from_static(static_proto(via.proto)),
        );
    }
    if !out.contains_key(&X_FORWARDED_HOST) {
        if let Some(value) = via.host.and_then(|h| HeaderValue::from_str(h).ok()) {
            out.insert(X_FORWARDED_HOST, value);
        }
    }
    out
}

fn static_proto(proto: &str) -> &'static str {
    if proto == "https" {
        "https"
    } else {
        "http"
    }
}

/// Join several `Cookie` headers into one, `; `-separated (RFC 9113 §8.2.3): HTTP/2 clients
/// may send one per cookie, and HTTP/1.1 servers join repeated headers with `, `, which
/// would corrupt the last cookie before each seam.
pub fn join_cookies(headers: &mut HeaderMap) {
    let values: Vec<&[u8]> = headers
        .get_all(header::COOKIE)
        .iter()
        .map(HeaderValue::as_bytes)
        .collect();
    if values.len() < 2 {
        return;
    }
    if let Ok(joined) = HeaderValue::from_bytes(&values.join(&b"; "[..])) {
        headers.insert(header::COOKIE, joined);
    }
}

/// Replace every forwarding header of `headers` with `ours` (from [`forwarding`]).
pub fn replace_forwarding(headers: &mut HeaderMap, ours: &HeaderMap) {
    let theirs: Vec<HeaderName> = headers
        .keys()
        .filter(|name| is_forwarding_header(name))
        .cloned()
        .collect();
    for name in theirs {
        headers.remove(&name);
    }
    for (name, value) in ours {
        headers.append(name.clone(), value.clone());
    }
}

/// Replace every absolute URL in `value` that starts with one of `from` (followed by `/`,
/// `?`, `>`, `#` or the end) with the same URL under `to`. `None` when nothing matched.
pub fn rewrite_bases(value: &str, from: &[&str], to: &str) -> Option<String> {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    let mut changed = false;
    'scan: while !rest.is_empty() {
        for base in from {
            if let Some(tail) = strip_prefix_ignore_ascii_case(rest, base) {
                if tail.is_empty() || tail.starts_with(['/', '?', '>', '#', ';', ',', ' ']) {
                    out.push_str(to);
                    rest = tail;
                    changed = true;
                    continue 'scan;
                }
            }
        }
        // Advance to the next place a URL could start.
        let first = rest.chars().next().map_or(1, char::len_utf8);
        let step = rest[first..]
            .find(['<', 'h', 'H'])
            .map_or(rest.len(), |i| i + first);
        out.push_str(&rest[..step]);
        rest = &rest[step..];
    }
    changed.then_some(out)
}

fn strip_prefix_ignore_ascii_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

/// Rewrite `Location` and `Link` response headers from the upstream's bases to `to`.
pub fn rewrite_response_urls(headers: &mut HeaderMap, from: &[&str], to: &str) {
    for name in [header::LOCATION, header::LINK, header::CONTENT_LOCATION] {
        let rewritten: Vec<HeaderValue> = headers
            .get_all(&name)
            .iter()
            .map(|v| {
                v.to_str()
                    .ok()
                    .and_then(|s| rewrite_bases(s, from, to))
                    .and_then(|s| HeaderValue::from_str(&s).ok())
                    .unwrap_or_else(|| v.clone())
            })
            .collect();
        if rewritten.is_empty() {
            continue;
        }
        headers.remove(&name);
        for value in rewritten {
            headers.append(name.clone(), value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_hop_by_hop_and_connection_named_headers() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            "keep-alive, x-secret-hop".parse().unwrap(),
        );
        h.insert("keep-alive", "timeout=5".parse().unwrap());
        h.insert("x-secret-hop", "1".parse().unwrap());
        h.insert(header::TRANSFER_ENCODING, "chunked".parse().unwrap());
        h.insert(header::TE, "trailers".parse().unwrap());
        h.insert("private-token", "t".parse().unwrap());
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1);
        assert_eq!(h["private-token"], "t");
    }

    fn client(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    fn via(trusted: bool) -> Via<'static> {
        Via {
            peer: "10.0.0.2".parse().unwrap(),
            trusted,
            proto: "http",
            host: Some("gw:8080"),
        }
    }

    #[test]
    fn cookie_headers_are_joined_with_semicolons() {
        let mut h = client(&[("cookie", "a=1"), ("cookie", "_gitlab_session=s")]);
        join_cookies(&mut h);
        assert_eq!(h.get_all(header::COOKIE).iter().count(), 1);
        assert_eq!(h[header::COOKIE], "a=1; _gitlab_session=s");
    }

    #[test]
    fn an_untrusted_peer_cannot_forward_its_own_forwarding_headers() {
        let sent = client(&[
            ("x-forwarded-for", "203.0.113.9"),
            ("x-forwarded-host", "evil.example"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-prefix", "/evil"),
            ("forwarded", "host=evil.example"),
            ("x-real-ip", "1.2.3.4"),
        ]);
        let out = forwarding(&sent, &via(false));
        assert_eq!(out.len(), 3, "{out:?}");
        assert_eq!(out["x-forwarded-for"], "10.0.0.2");
        assert_eq!(out["x-forwarded-proto"], "http");
        assert_eq!(out["x-forwarded-host"], "gw:8080");
        let mut headers = sent.clone();
        headers.insert("private-token", "t".parse().unwrap());
        replace_forwarding(&mut headers, &out);
        assert_eq!(headers.len(), 4);
        assert_eq!(headers["x-forwarded-host"], "gw:8080");
        assert!(!headers.contains_key("forwarded"));
    }

    #[test]
    fn a_trusted_proxy_keeps_its_headers_and_the_chain_grows() {
        let sent = client(&[
            ("x-forwarded-for", "203.0.113.9"),
            ("x-forwarded-for", "198.51.100.1"),
            ("x-forwarded-host", "gitlab.example"),
            ("forwarded", "for=203.0.113.9"),
        ]);
        let out = forwarding(&sent, &via(true));
        assert_eq!(
            out["x-forwarded-for"],
            "203.0.113.9, 198.51.100.1, 10.0.0.2"
        );
        assert_eq!(out["x-forwarded-host"], "gitlab.example");
        assert_eq!(out["x-forwarded-proto"], "http");
        assert_eq!(out["forwarded"], "for=203.0.113.9");
    }

    #[test]
    fn rewrites_every_link_url_naming_the_upstream() {
        let link = "<http://127.0.0.1:3000/api/v4/projects/1/jobs?page=2&per_page=2>; rel=\"next\", \
                    <http://127.0.0.1:3000/api/v4/projects/1/jobs?page=1&per_page=2>; rel=\"first\"";
        let out = rewrite_bases(link, &["http://127.0.0.1:3000"], "https://gw.example").unwrap();
        assert_eq!(
            out,
            "<https://gw.example/api/v4/projects/1/jobs?page=2&per_page=2>; rel=\"next\", \
             <https://gw.example/api/v4/projects/1/jobs?page=1&per_page=2>; rel=\"first\""
        );
    }

    #[test]
    fn leaves_other_hosts_and_longer_host_names_alone() {
        let from = ["http://up:3000", "https://gitlab.example.com"];
        assert_eq!(rewrite_bases("http://up:30000/x", &from, "http://gw"), None);
        assert_eq!(
            rewrite_bases("http://elsewhere/x", &from, "http://gw"),
            None
        );
        assert_eq!(
            rewrite_bases("HTTPS://GITLAB.example.com/a", &from, "http://gw").as_deref(),
            Some("http://gw/a")
        );
        assert_eq!(
            rewrite_bases("http://up:3000", &from, "http://gw").as_deref(),
            Some("http://gw")
        );
    }

    #[test]
    fn rewrites_location_and_keeps_multiple_link_values() {
        let mut h = HeaderMap::new();
        h.insert(header::LOCATION, "http://up/api/v4/x".parse().unwrap());
        h.append(header::LINK, "<http://up/a>; rel=\"next\"".parse().unwrap());
        h.append(
            header::LINK,
            "<http://other/b>; rel=\"first\"".parse().unwrap(),
        );
        rewrite_response_urls(&mut h, &["http://up"], "http://gw:1");
        assert_eq!(h[header::LOCATION], "http://gw:1/api/v4/x");
        let links: Vec<_> = h.get_all(header::LINK).iter().collect();
        assert_eq!(
            links,
            [
                "<http://gw:1/a>; rel=\"next\"",
                "<http://other/b>; rel=\"first\""
            ]
        );
    }

    #[test]
    fn never_panics_on_multibyte_text() {
        assert_eq!(rewrite_bases("é<ü>hé", &["http://up"], "x"), None);
    }
}
