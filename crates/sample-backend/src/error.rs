//! Every refusal the sample backend can give, and the one mapping from a refusal to
//! GitLab's status code and `{"message": ...}` text.
//!
//! The messages are GitLab's own, byte for byte, because the gateway passes upstream
//! error bodies through and its tests compare them.

use http::StatusCode;

/// Why a request was refused. Turned into a response in one place
/// ([`super::handlers`]'s `into_response`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum ApiError {
    /// A token that matches no user and no running job, or a mutation without credentials.
    Unauthorized,
    /// The caller can see the project but may not change it (job token, non-member).
    Forbidden,
    /// Retry of a job that is not failed, canceled or successful.
    NotRetryable,
    /// Erase of an unfinished job, or of one with neither archive nor trace.
    NotErasable,
    /// Play of a job that is not manual.
    Unplayable,
    /// A query parameter or body GitLab's parameter validation would refuse; the text
    /// follows "400 Bad request - ".
    BadRequest(&'static str),
    /// The project does not exist or the caller may not read it (GitLab never says 403 here).
    ProjectNotFound,
    /// No such job in this project.
    JobNotFound,
    /// A sub-resource is missing: pipeline, trace, artifacts (GitLab's lower-case "found").
    NotFound,
    /// `Sudo` from a user who is not an admin.
    SudoNotAdmin,
    /// `Sudo` with a session or a job token.
    SudoNeedsToken,
    /// `Sudo` naming no user.
    UserNotFound,
    /// No route matches the path.
    NoRoute,
    /// The path is known but not with this method; carries the `Allow` header value.
    MethodNotAllowed(&'static str),
}

impl ApiError {
    pub(super) fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden
            | ApiError::NotRetryable
            | ApiError::NotErasable
            | ApiError::SudoNotAdmin
            | ApiError::SudoNeedsToken => StatusCode::FORBIDDEN,
            ApiError::Unplayable | ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::ProjectNotFound
            | ApiError::JobNotFound
            | ApiError::NotFound
            | ApiError::UserNotFound
            | ApiError::NoRoute => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
        }
    }

    pub(super) fn message(&self) -> String {
        match self {
            ApiError::Unauthorized => "401 Unauthorized".into(),
            ApiError::Forbidden => "403 Forbidden".into(),
            ApiError::NotRetryable => "403 Forbidden - Job is not retryable".into(),
            ApiError::NotErasable => "403 Forbidden - Job is not erasable!".into(),
            ApiError::Unplayable => "400 Bad request - Unplayable Job".into(),
            ApiError::BadRequest(why) => format!("400 Bad request - {why}"),
            ApiError::ProjectNotFound => "404 Project Not Found".into(),
            ApiError::JobNotFound => "404 Job Not Found".into(),
            ApiError::NotFound => "404 Not found".into(),
            ApiError::SudoNotAdmin => "403 Forbidden - Must be admin to use sudo".into(),
            ApiError::SudoNeedsToken => {
                "403 Forbidden - Must be authenticated using an OAuth or Personal Access Token to use sudo".into()
            }
            ApiError::UserNotFound => "404 User Not Found".into(),
            ApiError::NoRoute => "404 Not Found".into(),
            ApiError::MethodNotAllowed(_) => "405 Method Not Allowed".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ApiError;

    #[test]
    fn each_error_maps_to_gitlabs_status_and_message() {
        let cases = [
            (ApiError::Unauthorized, 401, "401 Unauthorized"),
            (ApiError::Forbidden, 403, "403 Forbidden"),
            (
                ApiError::NotRetryable,
                403,
                "403 Forbidden - Job is not retryable",
            ),
            (
                ApiError::NotErasable,
                403,
                "403 Forbidden - Job is not erasable!",
            ),
            (
                ApiError::Unplayable,
                400,
                "400 Bad request - Unplayable Job",
            ),
            (
                ApiError::BadRequest("scope does not have a valid value"),
                400,
                "400 Bad request - scope does not have a valid value",
            ),
            (ApiError::ProjectNotFound, 404, "404 Project Not Found"),
            (ApiError::JobNotFound, 404, "404 Job Not Found"),
            (ApiError::NotFound, 404, "404 Not found"),
            (ApiError::NoRoute, 404, "404 Not Found"),
            (
                ApiError::SudoNotAdmin,
                403,
                "403 Forbidden - Must be admin to use sudo",
            ),
            (ApiError::UserNotFound, 404, "404 User Not Found"),
            (
                ApiError::MethodNotAllowed("GET, HEAD"),
                405,
                "405 Method Not Allowed",
            ),
        ];
        for (error, status, message) in cases {
            assert_eq!(error.status().as_u16(), status, "{error:?}");
            assert_eq!(error.message(), message, "{error:?}");
        }
    }
}
