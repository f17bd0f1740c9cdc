//! The HTTP edge: read and record a request, answer it from the [`State`], wait the
//! configured delay, and turn the outcome into a response with GitLab's headers.
//!
//! [`respond`] is synchronous and runs under the state lock; nothing awaits while the
//! lock is held. [`into_response`] is the one place errors become bodies. With a local
//! artifact store, paths under `/-/objects/` are its object route (`objects`), recorded
//! like every request but answered as storage. The credential and `Sudo` a request
//! presents are read in `credentials`.

use std::sync::Arc;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;

use super::artifacts::Body;
use super::credentials::{credential, sudo};
use super::error::ApiError;
use super::model::{Caller, State};
use super::objects::PREFIX as OBJECTS;
use super::pagination;
use super::routes::{self, Endpoint};
use super::server::Shared;
use super::RecordedRequest;

/// Body of every artifact-byte answer; tests look for it (and for [`MARKER_HEADER`]).
pub(super) const ARTIFACT_BYTES_MESSAGE: &str = "sample backend does not serve artifact bytes";

/// `X-Sample-Backend: artifact-bytes-requested` marks a request that should never have
/// reached the jobs backend: the gateway serves artifact bytes from object storage.
pub(super) const MARKER_HEADER: (&str, &str) = ("x-sample-backend", "artifact-bytes-requested");

/// Headers GitLab puts on every API response.
const COMMON_HEADERS: [(&str, &str); 4] = [
    ("cache-control", "private, max-age=0"),
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "SAMEORIGIN"),
    ("content-security-policy", "default-src 'none'"),
];

/// A successful answer, before it becomes a response.
#[derive(Debug)]
pub(super) enum Reply {
    /// A JSON body with extra headers (pagination).
    Json(StatusCode, String, Vec<(&'static str, String)>),
    /// A job log, `text/plain`.
    Text(String),
    /// 204, no body.
    NoContent,
    /// The 500 marker answer for artifact byte paths.
    ArtifactBytes,
    /// 301 to an absolute URL on the backend's own host.
    Redirect(String),
    /// An archive download that passed GitLab's checks: the object key, answered from the
    /// artifact store (`artifacts`).
    Archive(String),
}

impl Reply {
    fn json(status: StatusCode, value: &impl serde::Serialize) -> Reply {
        let body = serde_json::to_string(value).expect("job JSON always serialises");
        Reply::Json(status, body, Vec::new())
    }
}

/// Serve one request: record it (whole body), answer it, delay, respond.
pub(super) async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Response<Body> {
    let (parts, body) = req.into_parts();
    // Bodies here are small JSON. A failed read means the body ended short of its framing
    // (the sender went away): like a real server, act on nothing and record nothing; the
    // answer will not be seen.
    let Ok(body) = body.collect().await.map(|c| c.to_bytes()) else {
        return boxed(into_response(Err(ApiError::BadRequest("incomplete body"))));
    };
    let path_and_query = parts
        .uri
        .path_and_query()
        .map_or_else(|| parts.uri.path().to_owned(), |pq| pq.as_str().to_owned());
    let recorded = RecordedRequest {
        method: parts.method,
        path_and_query,
        headers: parts.headers,
        body,
    };
    shared.log().push(recorded.clone());
    // Object storage, not the API: no credentials, no GitLab headers, and not delayed
    // (the delay stands for a slow jobs backend).
    let local_objects = shared.artifacts.as_ref().and_then(|a| a.local_objects());
    if let Some(objects) = local_objects.filter(|_| recorded.path().starts_with(OBJECTS)) {
        return objects.handle(&recorded).await;
    }
    let outcome = respond(&mut shared.state(), &recorded);
    let delay = *shared.delay();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    if let (Ok(Reply::Archive(key)), Some(store)) = (&outcome, &shared.artifacts) {
        let base = shared.state().base_url.clone();
        return store.answer(&recorded, key, &base).await;
    }
    boxed(into_response(outcome))
}

fn boxed(response: Response<Full<Bytes>>) -> Response<Body> {
    response.map(|body| body.map_err(|never| match never {}).boxed_unsync())
}

/// Answer a recorded request against the state. Order of checks follows GitLab:
/// route, credentials, parameter validation, project visibility (404), permission (403),
/// job lookup (404), then the job's own state.
pub(super) fn respond(state: &mut State, req: &RecordedRequest) -> Result<Reply, ApiError> {
    let full = req.path_and_query.as_str();
    let (path, query) = full.split_once('?').unwrap_or((full, ""));
    // Like many web servers, a trailing slash is redirected away, with an absolute
    // `Location` on our own host (what a gateway in front must rewrite).
    if let Some(trimmed) = path.strip_suffix('/').filter(|p| p.starts_with("/api/v4/")) {
        let query = if query.is_empty() {
            String::new()
        } else {
            format!("?{query}")
        };
        return Ok(Reply::Redirect(format!(
            "{}{trimmed}{query}",
            state.base_url
        )));
    }
    let route = routes::route(&req.method, path)?;
    let archive = matches!(
        route.endpoint,
        Endpoint::Archive(_) | Endpoint::ArchiveByRef
    );
    if route.endpoint == Endpoint::ArtifactBytes || (archive && !state.archives_in_store) {
        // Answered before any auth check: the marker must show whatever the credentials.
        return Ok(Reply::ArtifactBytes);
    }
    // Rack 2 (GitLab's) splits the query on `;` as well as `&`.
    let query: Vec<(String, String)> = query
        .split(';')
        .flat_map(|part| form_urlencoded::parse(part.as_bytes()).into_owned())
        .collect();
    let credential = credential(&req.headers, &query);
    let caller = state.authenticate(credential.as_ref())?;
    let caller = state.sudo(
        caller,
        credential.as_ref(),
        sudo(&req.headers, &query).as_deref(),
    )?;
    if route.endpoint.is_mutation() && caller == Caller::Anonymous {
        return Err(ApiError::Unauthorized);
    }
    // GitLab looks for a job token only on routes with `job_token_allowed`; elsewhere the
    // request counts as unauthenticated, and those routes require authentication.
    if state.gitlab_job_token_rules
        && matches!(caller, Caller::Job { .. })
        && !route.endpoint.takes_job_token()
    {
        return Err(ApiError::Unauthorized);
    }
    let key = route.project.as_str();
    match route.endpoint {
        // Their URLs, like the `Link` headers, are on the forwarded host when there is one:
        // python-gitlab warns when `web_url` is not on the URL it was given.
        Endpoint::CurrentUser => match &caller {
            Caller::User(name) => {
                let base = forwarded_base(&req.headers).unwrap_or_else(|| state.base_url.clone());
                Ok(Reply::json(StatusCode::OK, &state.user_json(name, &base)))
            }
            // GitLab: no user behind the request (a job token is not one here).
            Caller::Anonymous | Caller::Job { .. } => Err(ApiError::Unauthorized),
        },
        Endpoint::GetProject => {
            let project = state.readable_project(&caller, key)?;
            let base = forwarded_base(&req.headers).unwrap_or_else(|| state.base_url.clone());
            Ok(Reply::json(
                StatusCode::OK,
                &state.project_json(project, &base),
            ))
        }
        Endpoint::ListJobs => list(state, &caller, key, None, req, &query),
        Endpoint::PipelineJobs(p) => list(state, &caller, key, Some(p), req, &query),
        Endpoint::GetJob(id) => {
            let project = state.readable_project(&caller, key)?.id;
            state.job_in(project, id)?;
            Ok(Reply::json(StatusCode::OK, &state.job_json(id)))
        }
        Endpoint::Trace(id) => {
            let project = state.readable_project(&caller, key)?.id;
            let job = &state.job_in(project, id)?.spec;
            if !job.has_trace {
                return Err(ApiError::NotFound);
            }
            Ok(Reply::Text(job.trace.clone()))
        }
        Endpoint::Cancel(id) => mutate(state, &caller, key, StatusCode::CREATED, |s, p| {
            s.cancel(p, id)
        }),
        Endpoint::Retry(id) => mutate(state, &caller, key, StatusCode::CREATED, |s, p| {
            s.retry(p, id)
        }),
        Endpoint::Erase(id) => mutate(state, &caller, key, StatusCode::CREATED, |s, p| {
            s.erase(p, id)
        }),
        Endpoint::Play(id) => {
            check_json_body(&req.body)?;
            mutate(state, &caller, key, StatusCode::OK, |s, p| s.play(p, id))
        }
        Endpoint::KeepArtifacts(id) => mutate(state, &caller, key, StatusCode::OK, |s, p| {
            s.keep_artifacts(p, id)
        }),
        Endpoint::DeleteArtifacts(id) => {
            let project = state.writable_project(&caller, key)?;
            state.delete_artifacts(project, id)?;
            Ok(Reply::NoContent)
        }
        Endpoint::Archive(id) => {
            let project = state.readable_project(&caller, key)?.id;
            state.job_in(project, id)?;
            Ok(Reply::Archive(state.downloadable_archive(id)?))
        }
        Endpoint::ArchiveByRef => {
            let name = query
                .iter()
                .find(|(k, _)| k == "job")
                .map(|(_, v)| v.as_str())
                .filter(|v| !v.is_empty())
                .ok_or(ApiError::BadRequest("job is missing"))?;
            let project = state.readable_project(&caller, key)?.id;
            let ref_name = route.ref_name.as_deref().unwrap_or_default();
            let id = state.latest_successful_job_for_ref(project, ref_name, name)?;
            Ok(Reply::Archive(state.downloadable_archive(id)?))
        }
        Endpoint::ArtifactBytes => Ok(Reply::ArtifactBytes),
    }
}

/// The two list endpoints: project jobs (no totals) and pipeline jobs (with totals).
fn list(
    state: &State,
    caller: &Caller,
    key: &str,
    pipeline: Option<u64>,
    req: &RecordedRequest,
    query: &[(String, String)],
) -> Result<Reply, ApiError> {
    let (path, req_headers) = (req.path(), &req.headers);
    let params = pagination::list_params(query, state.per_page)?;
    let project = state.readable_project(caller, key)?.id;
    if pipeline.is_some_and(|p| !state.has_pipeline(project, p)) {
        return Err(ApiError::NotFound);
    }
    let ids: Vec<u64> = state
        .list_jobs(project, pipeline, &params.scopes)
        .iter()
        .map(|r| r.spec.id)
        .collect();
    let (ids, info) = pagination::paginate(ids, params.page, params.per_page, pipeline.is_some());
    let jobs: Vec<_> = ids.iter().map(|id| state.job_json(*id)).collect();
    let base = forwarded_base(req_headers).unwrap_or_else(|| state.base_url.clone());
    let headers = pagination::pagination_headers(&base, path, query, info);
    let body = serde_json::to_string(&jobs).expect("job JSON always serialises");
    Ok(Reply::Json(StatusCode::OK, body, headers))
}

/// A job action: check write permission, apply it, answer with the resulting job.
fn mutate(
    state: &mut State,
    caller: &Caller,
    key: &str,
    status: StatusCode,
    action: impl FnOnce(&mut State, u64) -> Result<u64, ApiError>,
) -> Result<Reply, ApiError> {
    let project = state.writable_project(caller, key)?;
    let job_id = action(state, project)?;
    Ok(Reply::json(status, &state.job_json(job_id)))
}

/// Play may carry `{"job_variables_attributes": [...]}`; if a body is present it must be
/// JSON. (The body is only recorded, so tests can check it arrived intact.)
fn check_json_body(body: &[u8]) -> Result<(), ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(());
    }
    serde_json::from_slice::<serde_json::Value>(body)
        .map(drop)
        .map_err(|_| ApiError::BadRequest("body is not valid JSON"))
}

/// `proto://host` from `X-Forwarded-Proto` and `X-Forwarded-Host`, as a Rails app behind
/// a trusted proxy builds its absolute URLs.
fn forwarded_base(headers: &HeaderMap) -> Option<String> {
    let host = headers.get("x-forwarded-host")?.to_str().ok()?;
    let host = host.split(',').next()?.trim();
    let proto = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("http");
    (!host.is_empty()).then(|| format!("{proto}://{host}"))
}

/// The one rescue point: successes and refusals become responses, all with GitLab's
/// common headers.
pub(super) fn into_response(outcome: Result<Reply, ApiError>) -> Response<Full<Bytes>> {
    let json = Some("application/json");
    let (status, content_type, body, extra) = match outcome {
        Ok(Reply::Json(status, body, extra)) => (status, json, body, extra),
        Ok(Reply::Text(text)) => (StatusCode::OK, Some("text/plain"), text, Vec::new()),
        Ok(Reply::NoContent) => (StatusCode::NO_CONTENT, None, String::new(), Vec::new()),
        Ok(Reply::Redirect(location)) => (
            StatusCode::MOVED_PERMANENTLY,
            json,
            message_body("301 Moved Permanently"),
            vec![("location", location)],
        ),
        // An archive reaches here only without an artifact store: the marker again.
        Ok(Reply::ArtifactBytes | Reply::Archive(_)) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            json,
            message_body(ARTIFACT_BYTES_MESSAGE),
            vec![(MARKER_HEADER.0, MARKER_HEADER.1.to_owned())],
        ),
        Err(error) => {
            let mut extra = Vec::new();
            if let ApiError::MethodNotAllowed(allow) = error {
                extra.push(("allow", allow.to_owned()));
            }
            (error.status(), json, message_body(&error.message()), extra)
        }
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    if let Some(content_type) = content_type {
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    }
    common_headers(headers);
    for (name, value) in extra {
        // Every value here is ASCII we built (numbers, URL-encoded links); a value that
        // still fails to parse is dropped rather than failing the response.
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            headers.insert(name, value);
        }
    }
    response
}

/// The headers GitLab puts on every API response.
pub(super) fn common_headers(headers: &mut HeaderMap) {
    for (name, value) in COMMON_HEADERS {
        headers.insert(name, HeaderValue::from_static(value));
    }
}

fn message_body(message: &str) -> String {
    serde_json::json!({ "message": message }).to_string()
}
