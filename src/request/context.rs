//! What the gateway knows about one request once it has been accepted and named: who sent
//! it, how, under which public base URL, and with which credentials.

use std::net::SocketAddr;
use std::time::Instant;

use crate::request::credentials::Credentials;
use crate::request::route::Route;

pub struct RequestContext {
    pub peer: SocketAddr,
    /// "http" or "https": how the caller reached us.
    pub proto: &'static str,
    /// The host the caller asked for (`Host`, or the `:authority` of HTTP/2).
    pub host: Option<String>,
    /// Base URL the caller uses for the gateway: `public_url`, else `proto://host`.
    /// Upstream URLs in `Link`/`Location` are rewritten to it.
    pub public_base: String,
    pub credentials: Credentials,
    /// The `X-Forwarded-*`/`Forwarded` headers every upstream request of this one carries
    /// (see [`crate::upstream::headers::forwarding`]).
    pub forwarding: http::HeaderMap,
    pub route: Route,
    pub started: Instant,
}
