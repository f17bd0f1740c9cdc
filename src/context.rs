//! What the gateway knows about one request once it has been accepted and named: who sent
//! it, how, under which public base URL, and with which credentials.

use std::net::SocketAddr;
use std::time::Instant;

use crate::auth::Credentials;
use crate::routes::Route;

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
    pub route: Route,
    pub started: Instant,
}
