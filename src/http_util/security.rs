//! The security headers GitLab sets on every API answer, and so does the gateway: artifacts
//! are attacker-controlled content served from the gateway's origin.

use http::{header, HeaderMap, HeaderValue};

/// The headers every response of the gateway carries (GitLab sets them on every API
/// answer); a forwarded response keeps the backend's own values.
pub fn security_headers(headers: &mut HeaderMap) {
    let pairs = [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "SAMEORIGIN"),
        (header::CONTENT_SECURITY_POLICY, "default-src 'none'"),
    ];
    for (name, value) in pairs {
        if !headers.contains_key(&name) {
            headers.insert(name, HeaderValue::from_static(value));
        }
    }
}
