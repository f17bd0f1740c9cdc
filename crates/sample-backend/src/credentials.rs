//! What a request presents about who is asking, read from its headers and query as
//! GitLab reads them: the credential (in GitLab's order of precedence) and whom it wants
//! to act as (`Sudo`). Checking them is the model's (`model::access`).

use http::HeaderMap;

use super::model::Credential;

/// Whom the request wants to act as: the `sudo` query parameter, else the `Sudo` header.
pub(super) fn sudo(headers: &HeaderMap, query: &[(String, String)]) -> Option<String> {
    query
        .iter()
        .find(|(k, _)| k == "sudo")
        .map(|(_, v)| v.clone())
        .or_else(|| {
            let value = headers.get("sudo")?;
            Some(String::from_utf8_lossy(value.as_bytes()).trim().to_owned())
        })
        .filter(|v| !v.is_empty())
}

/// The `_gitlab_session` cookie's value, if the request has one.
fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name == "_gitlab_session" && !value.is_empty()).then(|| value.to_owned())
        })
}

/// The credential a request presents, first found in GitLab's order: `PRIVATE-TOKEN`,
/// `private_token`, `Authorization: Bearer`, `access_token`, `JOB-TOKEN`, `job_token`,
/// then the session cookie. Empty values count as absent.
pub(super) fn credential(headers: &HeaderMap, query: &[(String, String)]) -> Option<Credential> {
    let header = |name: &str| {
        headers
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let param = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .filter(|v| !v.is_empty())
    };
    let bearer = || {
        let value = header("authorization")?;
        let (scheme, token) = value.split_once(' ')?;
        let token = token.trim();
        (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then(|| token.to_owned())
    };
    header("private-token")
        .or_else(|| param("private_token"))
        .map(Credential::Personal)
        .or_else(|| bearer().map(Credential::Bearer))
        .or_else(|| param("access_token").map(Credential::OAuth))
        .or_else(|| {
            header("job-token")
                .or_else(|| param("job_token"))
                .map(Credential::Job)
        })
        .or_else(|| session_cookie(headers).map(Credential::Session))
}
