//! The checks the raw tree's validation shares: ranges, non-empty values, URLs, CIDRs,
//! allowed hosts and CA bundles, each failing with the offending key's name.

use std::path::PathBuf;
use std::time::Duration;

use super::error::{invalid, ConfigError};
use super::types::BaseUrl;
use super::values::Dur;

/// The storage URL schemes the gateway opens.
const STORAGE_SCHEMES: [&str; 7] = ["file", "s3", "gs", "az", "abfs", "http", "https"];
/// Schemes whose URL starts with a bucket (container, file system) name: `s3://bucket/prefix`.
const BUCKET_SCHEMES: [&str; 4] = ["s3", "gs", "az", "abfs"];

/// A CIDR (`10.0.0.0/8`) or a single address (`10.0.0.1`, one host).
pub(super) fn parse_cidr(text: &str) -> Option<ipnet::IpNet> {
    let text = text.trim();
    text.parse::<ipnet::IpNet>()
        .ok()
        .or_else(|| {
            text.parse::<std::net::IpAddr>()
                .ok()
                .map(ipnet::IpNet::from)
        })
        .map(|net| net.trunc())
}

/// One `artifacts.allowed_hosts` entry: a host name or address (`storage.example.com`,
/// `10.0.0.5`, `[::1]`) or `*.domain` for its subdomains; no scheme, port or path.
pub(super) fn allowed_host(entry: &str) -> Result<String, ConfigError> {
    let host = entry.trim().trim_end_matches('.').to_ascii_lowercase();
    let name = host.strip_prefix("*.").unwrap_or(&host);
    let bare = name.trim_start_matches('[').trim_end_matches(']');
    let valid = !bare.is_empty()
        && !name.contains('*')
        && (bare.parse::<std::net::IpAddr>().is_ok()
            || bare
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.'));
    if !valid {
        return Err(invalid(
            "artifacts.allowed_hosts",
            format!(
                "{entry:?} is not a host name (write storage.example.com or *.example.com, \
                 without scheme, port or path)"
            ),
        ));
    }
    Ok(host)
}

pub(super) fn at_least_one<T: PartialOrd + From<u8>>(
    key: &str,
    value: Option<T>,
    default: T,
) -> Result<T, ConfigError> {
    match value {
        None => Ok(default),
        Some(n) if n >= T::from(1) => Ok(n),
        Some(_) => Err(invalid(key, "must be at least 1")),
    }
}

pub(super) fn nonzero(
    key: &str,
    value: Option<Dur>,
    default: Duration,
) -> Result<Duration, ConfigError> {
    match value {
        Some(Dur(d)) if d.is_zero() => Err(invalid(key, "must be greater than zero")),
        Some(Dur(d)) => Ok(d),
        None => Ok(default),
    }
}

/// An optional string that, when set, must not be blank: leaving the key out is how to get the
/// default. The message never quotes the value (it may be a secret).
pub(super) fn not_empty(key: &str, value: Option<String>) -> Result<Option<String>, ConfigError> {
    match value {
        Some(s) if s.trim().is_empty() => Err(invalid(
            key,
            "must not be empty (leave the key out instead)",
        )),
        other => Ok(other),
    }
}

/// An extra CA bundle (`upstream.ca_file`, `storage.ca_file`): read now, so that a missing file
/// or one without a usable certificate fails the load with the key's name.
pub(super) fn ca_file(key: &str, value: Option<String>) -> Result<Option<PathBuf>, ConfigError> {
    let Some(path) = not_empty(key, value)?.map(PathBuf::from) else {
        return Ok(None);
    };
    crate::trust::ca_certificates(&path).map_err(|m| invalid(key, m))?;
    Ok(Some(path))
}

/// `storage.endpoint`: `http(s)://host[:port]`, returned normalized (lowercase scheme, no
/// trailing slash).
pub(super) fn check_endpoint(endpoint: &str) -> Result<String, String> {
    let base = BaseUrl::parse(endpoint)?;
    if !base.path_prefix().is_empty() {
        return Err("must be http(s)://host[:port], without a path".to_owned());
    }
    Ok(base.as_str().to_owned())
}

pub(super) fn has_scheme(url: &str, scheme: &str) -> bool {
    url.split_once("://")
        .is_some_and(|(s, _)| s.eq_ignore_ascii_case(scheme))
}

/// Checks the scheme, that something follows it, a bucket for the bucket schemes and an
/// absolute path for file; the storage layer parses the rest.
pub(super) fn check_storage_url(url: &str) -> Result<(), String> {
    let expected = || {
        format!(
            "must be a URL with scheme {}, e.g. file:///var/lib/artifacts or s3://bucket/prefix",
            STORAGE_SCHEMES.join(", ")
        )
    };
    let (scheme, rest) = url.split_once("://").ok_or_else(expected)?;
    if !STORAGE_SCHEMES
        .iter()
        .any(|s| s.eq_ignore_ascii_case(scheme))
    {
        return Err(expected());
    }
    if rest.is_empty() || url.contains(char::is_whitespace) {
        return Err(expected());
    }
    if scheme.eq_ignore_ascii_case("file") && !rest.starts_with('/') {
        return Err("a file URL needs an absolute path: file:///path/to/dir".to_owned());
    }
    if BUCKET_SCHEMES
        .iter()
        .any(|s| s.eq_ignore_ascii_case(scheme))
        && rest.starts_with('/')
    {
        return Err(format!(
            "needs a bucket (container) name after {scheme}://, e.g. {scheme}://bucket/prefix"
        ));
    }
    Ok(())
}
