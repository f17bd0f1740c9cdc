//! What dispatch refuses before it names a route: `CONNECT`, proxy requests for other
//! hosts, and request heads over `server.max_header_bytes` or the header count.

use std::net::SocketAddr;

use http::{header, Method, Request};

use crate::config::Config;
use crate::error::GatewayError;

/// The refusals every request meets first.
pub(super) fn before_dispatch<B>(
    request: &Request<B>,
    local: SocketAddr,
    config: &Config,
) -> Result<(), GatewayError> {
    if request.method() == Method::CONNECT {
        return Err(GatewayError::MethodNotAllowed);
    }
    refuse_foreign_absolute_form(request, local, config)?;
    if head_bytes(request) > config.server.max_header_bytes || request.headers().len() > MAX_HEADERS
    {
        return Err(GatewayError::HeadersTooLarge);
    }
    Ok(())
}

/// `Host`, or the URI authority HTTP/2 carries instead.
pub(super) fn request_host<B>(request: &Request<B>) -> Option<String> {
    request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned)
        .or_else(|| request.uri().authority().map(|a| a.as_str().to_owned()))
}

/// An HTTP/1 absolute-form target (`GET http://elsewhere/ HTTP/1.1`) is a proxy request;
/// ordinary clients and load balancers send origin-form. We accept one only when it names
/// the gateway itself: `public_url`'s authority or the address the connection came in on.
/// HTTP/2 always carries an authority; it plays the role of `Host` there.
fn refuse_foreign_absolute_form<B>(
    request: &Request<B>,
    local: SocketAddr,
    config: &Config,
) -> Result<(), GatewayError> {
    if request.version() == http::Version::HTTP_2 {
        return Ok(());
    }
    let Some(authority) = request.uri().authority() else {
        return Ok(());
    };
    let named = authority.as_str();
    let is_public = config
        .public_url
        .as_ref()
        .is_some_and(|url| url.authority().eq_ignore_ascii_case(named));
    let is_local = named == local.to_string()
        || named.eq_ignore_ascii_case(&format!("localhost:{}", local.port()));
    if is_public || is_local {
        Ok(())
    } else {
        Err(GatewayError::ProxyRefused)
    }
}

/// Most header fields in a request: hyper's HTTP/1 parser has this many slots (its
/// default, kept so they stay on the stack) and refuses more itself; HTTP/2 gets the same.
const MAX_HEADERS: usize = 100;

/// The size of the request head as HTTP/1.1 text: request line (`METHOD target
/// HTTP/1.1`), every field as `name: value` and the line ends. HTTP/2 requests are counted
/// the same way, so one limit means the same on both.
fn head_bytes<B>(request: &Request<B>) -> usize {
    let uri = request.uri();
    let target = uri.path_and_query().map_or(1, |p| p.as_str().len())
        + uri.authority().map_or(0, |a| a.as_str().len())
        + uri.scheme_str().map_or(0, |s| s.len() + 3);
    let request_line = request.method().as_str().len() + 1 + target + " HTTP/1.1\r\n".len();
    let fields: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    request_line + fields + 2
}
