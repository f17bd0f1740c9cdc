//! Signed URLs of the local object store: what a presigned URL carries
//! (`expires`, `nonce`, `signature`) and how the object route checks one. The signature
//! covers the method, the key, the expiry and a nonce, with a secret random per store, so
//! every answer's URL differs and a URL of one backend is no good at another. A URL is good
//! through the whole second its expiry names, as S3's are.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::Method;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use sha2::{Digest, Sha256};

use super::PREFIX;
use crate::artifacts::random_seed;

/// Key bytes written raw in a URL path; everything else is percent-encoded.
const KEY_RAW: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'/')
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'@');

/// The secret a store's URLs are signed with.
pub(crate) struct UrlSigner {
    secret: [u8; 32],
}

/// Why the object route refuses a URL before it looks at the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Refusal {
    /// The signature does not match the method, key, expiry and nonce (or one is missing).
    BadSignature,
    /// A good signature whose expiry has passed.
    Expired,
}

impl UrlSigner {
    pub(super) fn new() -> Self {
        let mut secret = Sha256::new();
        secret.update(random_seed());
        secret.update(random_seed());
        Self {
            secret: secret.finalize().into(),
        }
    }

    /// A URL on `base` (the backend's `http://host:port`) for `method` on `key`, valid for
    /// `ttl` (whole seconds) from now.
    pub(crate) fn presign(
        &self,
        base: &str,
        method: &Method,
        key: &str,
        ttl: Duration,
        nonce: u64,
    ) -> String {
        let expires = unix_now().saturating_add(ttl.as_secs());
        let signature = signature(&self.secret, method.as_str(), key, expires, nonce);
        let path = utf8_percent_encode(key, KEY_RAW);
        format!("{base}{PREFIX}{path}?expires={expires}&nonce={nonce}&signature={signature}")
    }

    /// Whether `query` signs `method` on `key` and has not expired at `now` (unix seconds).
    /// A URL is good through the whole second its expiry names, as S3's are.
    pub(super) fn check(
        &self,
        method: &Method,
        key: &str,
        query: &str,
        now: u64,
    ) -> Result<(), Refusal> {
        let param = |name: &str| {
            form_urlencoded::parse(query.as_bytes())
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.into_owned())
        };
        let number = |name: &str| param(name).and_then(|v| v.parse::<u64>().ok());
        let (Some(expires), Some(nonce), Some(given)) =
            (number("expires"), number("nonce"), param("signature"))
        else {
            return Err(Refusal::BadSignature);
        };
        let wanted = signature(&self.secret, method.as_str(), key, expires, nonce);
        if !same_bytes(wanted.as_bytes(), given.as_bytes()) {
            return Err(Refusal::BadSignature);
        }
        if now > expires {
            return Err(Refusal::Expired);
        }
        Ok(())
    }
}

/// Hex SHA-256 over the secret and the signed fields, each length-prefixed.
///
/// A plain keyed hash rather than HMAC, as the crate has no HMAC and this guards sample
/// files only. Its known weakness, length extension (signing the message with bytes
/// appended, without the secret), does not help here: the route rebuilds the message from
/// the URL's fields, and an extended message is the encoding of no fields at all, since
/// its length prefixes end before its bytes do.
fn signature(secret: &[u8; 32], method: &str, key: &str, expires: u64, nonce: u64) -> String {
    let mut hash = Sha256::new();
    hash.update(secret);
    for field in [method.as_bytes(), key.as_bytes()] {
        hash.update((field.len() as u64).to_be_bytes());
        hash.update(field);
    }
    hash.update(expires.to_be_bytes());
    hash.update(nonce.to_be_bytes());
    hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Equality that takes as long whatever the first differing byte.
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub(super) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query_of(url: &str) -> &str {
        url.split_once('?').unwrap().1
    }

    #[test]
    fn a_presigned_url_checks_out_until_its_second_has_passed() {
        let signer = UrlSigner::new();
        let key = "6b/86/abc/@final/aa/bb/cc";
        let url = signer.presign("http://h:1", &Method::GET, key, Duration::from_secs(5), 7);
        assert!(
            url.starts_with("http://h:1/-/objects/6b/86/abc/@final/aa/bb/cc?expires="),
            "{url}"
        );
        let query = query_of(&url);
        let now = unix_now();
        assert_eq!(signer.check(&Method::GET, key, query, now), Ok(()));
        assert_eq!(signer.check(&Method::GET, key, query, now + 5), Ok(()));
        assert_eq!(
            signer.check(&Method::GET, key, query, now + 6),
            Err(Refusal::Expired)
        );
    }

    #[test]
    fn every_signed_field_and_the_secret_matter() {
        let signer = UrlSigner::new();
        let ttl = Duration::from_secs(60);
        let url = signer.presign("http://h:1", &Method::GET, "a/b", ttl, 1);
        let query = query_of(&url);
        let now = unix_now();
        let bad = Err(Refusal::BadSignature);
        assert_eq!(signer.check(&Method::HEAD, "a/b", query, now), bad);
        assert_eq!(signer.check(&Method::GET, "a/c", query, now), bad);
        let later = query.replace("expires=", "expires=9");
        assert_eq!(signer.check(&Method::GET, "a/b", &later, now), bad);
        let other_nonce = query.replace("nonce=1", "nonce=2");
        assert_eq!(signer.check(&Method::GET, "a/b", &other_nonce, now), bad);
        let (rest, sig) = query.split_once("signature=").unwrap();
        let flipped = if sig.starts_with('0') { "1" } else { "0" };
        let tampered = format!("{rest}signature={flipped}{}", &sig[1..]);
        assert_eq!(signer.check(&Method::GET, "a/b", &tampered, now), bad);
        assert_eq!(
            signer.check(&Method::GET, "a/b", rest, now),
            bad,
            "unsigned"
        );
        let elsewhere = UrlSigner::new();
        assert_eq!(elsewhere.check(&Method::GET, "a/b", query, now), bad);
        // The same fields sign the same; another nonce signs differently.
        let s = |nonce| signature(&signer.secret, "GET", "a/b", 10, nonce);
        assert_eq!(s(1), s(1));
        assert_ne!(s(1), s(2));
        assert_eq!(s(1).len(), 64);
        // Length prefixes: moving a byte between method and key changes the signature.
        assert_ne!(
            signature(&signer.secret, "GE", "Ta/b", 10, 1),
            signature(&signer.secret, "GET", "a/b", 10, 1)
        );
    }

    #[test]
    fn signature_comparison_needs_equal_bytes() {
        assert!(same_bytes(b"abc", b"abc"));
        assert!(!same_bytes(b"abc", b"abd"));
        assert!(!same_bytes(b"abc", b"abcd"));
    }
}
