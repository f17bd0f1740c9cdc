//! The one body type every handler returns, and its constructors.
//!
//! A body that yields `Err` makes hyper abort the connection (HTTP/1.1: no clean end;
//! HTTP/2: a stream reset). That is the only way a failure after the headers were sent can
//! reach the client, so wrappers pass errors through and never turn them into a clean end.

use bytes::Bytes;
use http_body_util::{combinators::UnsyncBoxBody, BodyExt, Empty, Full};

/// Errors a body may fail with mid-stream.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The one body type handlers return. Unsync because object-storage streams are `Send` only.
pub type Body = UnsyncBoxBody<Bytes, BoxError>;

pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

pub fn empty() -> Body {
    Empty::new().map_err(|never| match never {}).boxed_unsync()
}

/// Box any body whose error converts into [`BoxError`].
pub fn boxed<B>(body: B) -> Body
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    body.map_err(Into::into).boxed_unsync()
}
