//! The one per-request error type and its one mapping to HTTP.
//!
//! Handlers return `Result<_, GatewayError>`; [`GatewayError::into_response`] is the single
//! place a failure becomes a response: a status code and a GitLab-style JSON body
//! (`{"message": "404 Not Found"}`). Variants say where the failure came from (the caller,
//! the upstream, storage, or ourselves) because that decides the status.

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};

use crate::archive::budget;
use crate::archive::cache::OpenError;
use crate::archive::entry::EntryError;
use crate::causes;
use crate::http_util::body::{self, Body};
use crate::http_util::security;
use crate::request::route::RouteError;
use crate::storage::StorageError;

#[derive(Debug, Clone, thiserror::Error)]
pub enum GatewayError {
    /// The caller sent something we cannot act on (bad path, bad header).
    #[error("bad request: {0}")]
    BadRequest(&'static str),
    /// A required query parameter is missing; Grape answers `{"error": "job is missing"}`.
    #[error("missing parameter: {0}")]
    MissingParam(&'static str),
    /// A query parameter or body field has a value we cannot use; the text is the whole
    /// Grape-style error ("recursive is invalid", "glob is invalid: an absolute path").
    #[error("invalid parameter: {0}")]
    InvalidParam(String),
    /// A credential-free link that is not one of ours (tampered, truncated, unknown key).
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    /// A link that was ours and has expired.
    #[error("gone: {0}")]
    Gone(&'static str),
    /// The request asks for more than a configured cap allows.
    #[error("too large: {0}")]
    TooLarge(String),
    /// Nothing there; the message is GitLab's wording for this case ("404 Not Found",
    /// "404 Not found", "404 Job Not Found").
    #[error("not found: {0}")]
    NotFound(&'static str),
    #[error("method not allowed")]
    MethodNotAllowed,
    /// An absolute-form target naming another host: we are not an open proxy.
    #[error("proxy request refused")]
    ProxyRefused,
    #[error("request headers too large")]
    HeadersTooLarge,
    /// A request target longer than the HTTP/1 parser takes.
    #[error("request target too long")]
    UriTooLong,
    /// The jobs backend refused or reset the connection, or sent garbage.
    #[error("upstream unavailable: {0}")]
    UpstreamUnavailable(String),
    /// The jobs backend did not answer within its configured timeout.
    #[error("upstream timed out")]
    UpstreamTimeout,
    /// The requested range starts past the end of an object of this size.
    #[error("range not satisfiable")]
    RangeNotSatisfiable { size: u64 },
    /// Object storage failed or refused before the response started.
    #[error("storage unavailable: {0}")]
    StorageUnavailable(String),
    #[error("storage timed out: {0}")]
    StorageTimeout(String),
    /// The archive in storage is damaged or not a zip: the stored data is bad, not the
    /// request.
    #[error("bad archive: {0}")]
    BadArchive(String),
    /// The entry exists but the gateway cannot decode it (encrypted, unknown method).
    #[error("unsupported entry: {0}")]
    UnsupportedEntry(String),
    /// A limit was reached (connections, streams); the client should retry shortly.
    #[error("overloaded: {0}")]
    Overloaded(&'static str),
    /// A bug or an impossible state on our side.
    #[error("internal error: {0}")]
    Internal(String),
}

impl GatewayError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_)
            | Self::MissingParam(_)
            | Self::InvalidParam(_)
            | Self::ProxyRefused => StatusCode::BAD_REQUEST,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::Gone(_) => StatusCode::GONE,
            Self::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Self::UriTooLong => StatusCode::URI_TOO_LONG,
            Self::RangeNotSatisfiable { .. } => StatusCode::RANGE_NOT_SATISFIABLE,
            Self::UpstreamUnavailable(_) | Self::StorageUnavailable(_) | Self::BadArchive(_) => {
                StatusCode::BAD_GATEWAY
            }
            Self::UnsupportedEntry(_) => StatusCode::NOT_IMPLEMENTED,
            Self::Overloaded(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::UpstreamTimeout | Self::StorageTimeout(_) => StatusCode::GATEWAY_TIMEOUT,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The JSON body GitLab would send for this failure.
    pub fn body(&self) -> serde_json::Value {
        match self {
            // Grape's parameter validation uses `error`, not `message`.
            Self::MissingParam(name) => {
                serde_json::json!({ "error": format!("{name} is missing") })
            }
            Self::InvalidParam(text) => serde_json::json!({ "error": text }),
            Self::BadRequest(_) | Self::ProxyRefused => {
                serde_json::json!({ "message": "400 Bad request" })
            }
            Self::NotFound(message) => serde_json::json!({ "message": message }),
            // GitLab's style for a status with a reason: "400 Bad request - Unplayable Job".
            Self::BadArchive(reason) => {
                serde_json::json!({ "message": format!("502 Bad Gateway - {reason}") })
            }
            Self::UnsupportedEntry(reason) => {
                serde_json::json!({ "message": format!("501 Not Implemented - {reason}") })
            }
            Self::Forbidden(reason) => {
                serde_json::json!({ "message": format!("403 Forbidden - {reason}") })
            }
            Self::Gone(reason) => serde_json::json!({ "message": format!("410 Gone - {reason}") }),
            Self::TooLarge(reason) => {
                serde_json::json!({ "message": format!("413 Request Entity Too Large - {reason}") })
            }
            other => {
                let status = other.status();
                let reason = status.canonical_reason().unwrap_or("Error");
                serde_json::json!({ "message": format!("{} {reason}", status.as_u16()) })
            }
        }
    }

    /// The one rescue point: status, JSON body, and the headers every API answer carries.
    pub fn into_response(self) -> Response<Body> {
        let status = self.status();
        if status.is_server_error() {
            tracing::warn!(error = %self, status = status.as_u16(), "request failed");
        } else {
            tracing::debug!(error = %self, status = status.as_u16(), "request refused");
        }
        self.to_response()
    }

    /// The response alone, not logged (the listener's prebuilt answers).
    pub fn to_response(&self) -> Response<Body> {
        let mut response = json_response(self.status(), &self.body());
        security::security_headers(response.headers_mut());
        if let Self::RangeNotSatisfiable { size } = *self {
            if let Ok(value) = HeaderValue::from_str(&crate::http_util::range::unsatisfied(size)) {
                response.headers_mut().insert(header::CONTENT_RANGE, value);
            }
        }
        if let Self::Overloaded(_) = *self {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

impl From<StorageError> for GatewayError {
    fn from(error: StorageError) -> Self {
        use StorageError as S;
        match error {
            S::NotFound => Self::NotFound("404 Not Found"),
            S::RangeNotSatisfiable { size } => Self::RangeNotSatisfiable { size },
            S::Timeout(text) => Self::StorageTimeout(text),
            // A changed object is retried by the zip reader; here it is just unavailable.
            S::PreconditionFailed => {
                Self::StorageUnavailable("object changed while reading".into())
            }
            S::Unavailable(text) => Self::StorageUnavailable(text),
            // Asked again already when this is seen: the new location was refused too.
            S::Expired => Self::StorageUnavailable("the located URL was refused".into()),
        }
    }
}

impl GatewayError {
    /// A body stream's failure before any byte was sent: a damaged entry is a 502 naming
    /// why; a storage failure keeps its own status.
    pub fn before_first_byte(error: &std::io::Error) -> Self {
        if let Some(entry) = causes::find::<EntryError>(error) {
            return entry.clone().into();
        }
        if let Some(storage) = causes::find::<StorageError>(error) {
            return storage.clone().into();
        }
        Self::BadArchive(error.to_string())
    }
}

impl From<RouteError> for GatewayError {
    fn from(error: RouteError) -> Self {
        match error {
            RouteError::BadPath(why) => Self::BadRequest(why),
            RouteError::MissingParam(name) => Self::MissingParam(name),
        }
    }
}

impl From<EntryError> for GatewayError {
    fn from(error: EntryError) -> Self {
        match error {
            // Too much memory asked is "not implemented" like an unknown method: the archive
            // may be fine, this gateway will not decode it.
            EntryError::Encrypted
            | EntryError::UnsupportedMethod(_)
            | EntryError::DecoderMemory { .. }
            | EntryError::DecoderLimitReached { .. } => Self::UnsupportedEntry(error.to_string()),
            EntryError::Busy(_) => Self::Overloaded(budget::REJECTED_LABEL),
            EntryError::Storage(storage) => storage.into(),
            other => Self::BadArchive(other.to_string()),
        }
    }
}

impl From<OpenError> for GatewayError {
    fn from(error: OpenError) -> Self {
        match error {
            OpenError::Storage(storage) => storage.into(),
            OpenError::Zip(zip) => Self::BadArchive(zip.to_string()),
            OpenError::Busy(_) => Self::Overloaded(budget::REJECTED_LABEL),
        }
    }
}

/// Why a handler stops short of an answer of its own: the jobs backend refused the caller
/// (a `4xx`, relayed as it came: it is the answer), or something failed. `?` turns every
/// failure into [`Stop::Failed`], so a refusal travels up without being matched by hand.
pub enum Stop {
    /// Boxed: a response head is large, and every `Result` carrying a `Stop` pays for it.
    Refused(Box<Response<Body>>),
    Failed(GatewayError),
}

impl<E: Into<GatewayError>> From<E> for Stop {
    fn from(error: E) -> Self {
        Stop::Failed(error.into())
    }
}

impl Stop {
    /// The backend's refusal, relayed as it came.
    pub fn refused(response: Response<Body>) -> Self {
        Stop::Refused(Box::new(response))
    }

    /// The response: the backend's refusal, or the failure's own at the rescue point.
    pub fn into_response(self) -> Response<Body> {
        match self {
            Stop::Refused(response) => *response,
            Stop::Failed(error) => error.into_response(),
        }
    }
}

/// A JSON response with GitLab's API security headers.
pub fn json_response(status: StatusCode, value: &serde_json::Value) -> Response<Body> {
    let bytes = Bytes::from(serde_json::to_vec(value).unwrap_or_default());
    let mut response = Response::new(body::full(bytes));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pins every variant's status and GitLab body, so a change to the mapping is deliberate.
    #[test]
    fn each_variant_maps_to_its_status_and_gitlab_body() {
        let cases: Vec<(GatewayError, u16, serde_json::Value)> = vec![
            (
                GatewayError::BadRequest("nul in path"),
                400,
                serde_json::json!({"message": "400 Bad request"}),
            ),
            (
                GatewayError::MissingParam("job"),
                400,
                serde_json::json!({"error": "job is missing"}),
            ),
            (
                GatewayError::NotFound("404 Not Found"),
                404,
                serde_json::json!({"message": "404 Not Found"}),
            ),
            (
                GatewayError::MethodNotAllowed,
                405,
                serde_json::json!({"message": "405 Method Not Allowed"}),
            ),
            (
                GatewayError::ProxyRefused,
                400,
                serde_json::json!({"message": "400 Bad request"}),
            ),
            (
                GatewayError::HeadersTooLarge,
                431,
                serde_json::json!({"message": "431 Request Header Fields Too Large"}),
            ),
            (
                GatewayError::UriTooLong,
                414,
                serde_json::json!({"message": "414 URI Too Long"}),
            ),
            (
                GatewayError::UpstreamUnavailable("refused".into()),
                502,
                serde_json::json!({"message": "502 Bad Gateway"}),
            ),
            (
                GatewayError::UpstreamTimeout,
                504,
                serde_json::json!({"message": "504 Gateway Timeout"}),
            ),
            (
                GatewayError::RangeNotSatisfiable { size: 10 },
                416,
                serde_json::json!({"message": "416 Range Not Satisfiable"}),
            ),
            (
                GatewayError::StorageUnavailable("refused".into()),
                502,
                serde_json::json!({"message": "502 Bad Gateway"}),
            ),
            (
                GatewayError::StorageTimeout("slow".into()),
                504,
                serde_json::json!({"message": "504 Gateway Timeout"}),
            ),
            (
                GatewayError::BadArchive("not a zip archive".into()),
                502,
                serde_json::json!({"message": "502 Bad Gateway - not a zip archive"}),
            ),
            (
                GatewayError::UnsupportedEntry("entry is encrypted".into()),
                501,
                serde_json::json!({"message": "501 Not Implemented - entry is encrypted"}),
            ),
            (
                GatewayError::Overloaded("max_streams"),
                503,
                serde_json::json!({"message": "503 Service Unavailable"}),
            ),
            (
                GatewayError::Internal("bug".into()),
                500,
                serde_json::json!({"message": "500 Internal Server Error"}),
            ),
        ];
        for (error, status, body) in cases {
            assert_eq!(error.status().as_u16(), status, "{error:?}");
            assert_eq!(error.body(), body, "{error:?}");
        }
    }

    #[test]
    fn a_416_says_the_size() {
        let response = GatewayError::RangeNotSatisfiable { size: 1234 }.into_response();
        assert_eq!(response.headers()[header::CONTENT_RANGE], "bytes */1234");
    }

    #[tokio::test]
    async fn response_is_json_with_security_headers() {
        use http_body_util::BodyExt;
        let response = GatewayError::UpstreamTimeout.into_response();
        assert_eq!(response.status(), StatusCode::GATEWAY_TIMEOUT);
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
        assert_eq!(
            response.headers()[header::X_CONTENT_TYPE_OPTIONS],
            "nosniff"
        );
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&bytes[..], br#"{"message":"504 Gateway Timeout"}"#);
    }
}
