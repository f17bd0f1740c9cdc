//! Pure request routing: which endpoint a method and raw path name (the list endpoints'
//! parameters and pagination are in `pagination`).
//!
//! Paths are matched segment by segment on the raw path, so an encoded project path
//! (`group%2Fapp`) stays one segment; only the project segment is then percent-decoded.

use http::Method;
use percent_encoding::percent_decode_str;

use super::error::ApiError;

/// Everything under this prefix is a project (`/api/v4/projects/:id`) or its Jobs API; any
/// other path but [`USER`] is 404.
const PREFIX: &str = "/api/v4/projects/";

/// `GET /api/v4/user`: the caller (python-gitlab's `gl.auth()`).
const USER: &str = "/api/v4/user";

/// What a request asks for, once the path and method are matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Endpoint {
    /// `GET|HEAD /user`: the authenticated user; [`Route::project`] is empty.
    CurrentUser,
    /// `GET|HEAD /projects/:id`.
    GetProject,
    ListJobs,
    PipelineJobs(u64),
    GetJob(u64),
    Trace(u64),
    Cancel(u64),
    Retry(u64),
    Erase(u64),
    Play(u64),
    KeepArtifacts(u64),
    DeleteArtifacts(u64),
    /// `GET|HEAD .../jobs/:job_id/artifacts`: the archive of one job.
    Archive(u64),
    /// `GET|HEAD .../jobs/artifacts/:ref/download?job=NAME`; the ref is in [`Route::ref_name`].
    ArchiveByRef,
    /// A single-file path (by job id or `raw` by ref): the gateway must never ask these.
    ArtifactBytes,
}

impl Endpoint {
    /// Routes GitLab marks `job_token_allowed`: the job lists and the archive downloads
    /// (the single-file routes too, but those are never answered here).
    pub(super) fn takes_job_token(self) -> bool {
        matches!(
            self,
            Endpoint::ListJobs
                | Endpoint::PipelineJobs(_)
                | Endpoint::Archive(_)
                | Endpoint::ArchiveByRef
                | Endpoint::ArtifactBytes
        )
    }

    /// Job actions: they need a project member's personal token.
    pub(super) fn is_mutation(self) -> bool {
        matches!(
            self,
            Endpoint::Cancel(_)
                | Endpoint::Retry(_)
                | Endpoint::Erase(_)
                | Endpoint::Play(_)
                | Endpoint::KeepArtifacts(_)
                | Endpoint::DeleteArtifacts(_)
        )
    }
}

/// A matched request: the decoded project id or path, and the endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Route {
    pub(super) project: String,
    pub(super) endpoint: Endpoint,
    /// The decoded ref of a by-ref download.
    pub(super) ref_name: Option<String>,
}

/// A path the API knows, before the method is considered.
#[derive(Debug, Clone, Copy)]
enum Resource {
    Project,
    Jobs,
    PipelineJobs(u64),
    Job(u64),
    Trace(u64),
    Action(u64, Action),
    JobArtifacts(u64),
    Keep(u64),
    Download,
    ArtifactBytes,
}

/// The POST job actions.
#[derive(Debug, Clone, Copy)]
enum Action {
    Cancel,
    Retry,
    Erase,
    Play,
}

impl Resource {
    fn endpoint(self, method: &Method) -> Option<Endpoint> {
        let read = method == Method::GET || method == Method::HEAD;
        match self {
            Resource::Project => read.then_some(Endpoint::GetProject),
            Resource::Jobs => read.then_some(Endpoint::ListJobs),
            Resource::PipelineJobs(p) => read.then_some(Endpoint::PipelineJobs(p)),
            Resource::Job(j) => read.then_some(Endpoint::GetJob(j)),
            Resource::Trace(j) => read.then_some(Endpoint::Trace(j)),
            Resource::Action(j, action) => (method == Method::POST).then_some(match action {
                Action::Cancel => Endpoint::Cancel(j),
                Action::Retry => Endpoint::Retry(j),
                Action::Erase => Endpoint::Erase(j),
                Action::Play => Endpoint::Play(j),
            }),
            Resource::JobArtifacts(j) if method == Method::DELETE => {
                Some(Endpoint::DeleteArtifacts(j))
            }
            Resource::Keep(j) if method == Method::POST => Some(Endpoint::KeepArtifacts(j)),
            Resource::JobArtifacts(j) => read.then_some(Endpoint::Archive(j)),
            Resource::Download => read.then_some(Endpoint::ArchiveByRef),
            Resource::Keep(_) | Resource::ArtifactBytes => read.then_some(Endpoint::ArtifactBytes),
        }
    }

    /// The `Allow` header for a 405 on this path.
    fn allowed(self) -> &'static str {
        match self {
            Resource::Action(..) => "POST",
            Resource::JobArtifacts(_) => "GET, HEAD, DELETE",
            Resource::Keep(_) => "GET, HEAD, POST",
            _ => "GET, HEAD",
        }
    }
}

/// Match `method` and the raw `path` (no query) to an endpoint. Unknown path → 404
/// "Not Found"; known path, other method → 405.
pub(super) fn route(method: &Method, path: &str) -> Result<Route, ApiError> {
    if path == USER {
        if method != Method::GET && method != Method::HEAD {
            return Err(ApiError::MethodNotAllowed("GET, HEAD"));
        }
        return Ok(Route {
            project: String::new(),
            endpoint: Endpoint::CurrentUser,
            ref_name: None,
        });
    }
    let rest = path.strip_prefix(PREFIX).ok_or(ApiError::NoRoute)?;
    let mut segments = rest.split('/');
    let project_raw = segments.next().filter(|s| !s.is_empty());
    let project_raw = project_raw.ok_or(ApiError::NoRoute)?;
    let tail: Vec<&str> = segments.collect();
    let resource = resource(&tail).ok_or(ApiError::NoRoute)?;
    let endpoint = resource
        .endpoint(method)
        .ok_or(ApiError::MethodNotAllowed(resource.allowed()))?;
    let project = percent_decode_str(project_raw)
        .decode_utf8_lossy()
        .into_owned();
    let ref_name = (endpoint == Endpoint::ArchiveByRef).then(|| {
        let ref_segments = &tail[2..tail.len() - 1];
        percent_decode_str(&ref_segments.join("/"))
            .decode_utf8_lossy()
            .into_owned()
    });
    Ok(Route {
        project,
        endpoint,
        ref_name,
    })
}

fn resource(tail: &[&str]) -> Option<Resource> {
    Some(match tail {
        [] => Resource::Project,
        ["jobs"] => Resource::Jobs,
        ["pipelines", pipeline, "jobs"] => Resource::PipelineJobs(number(pipeline)?),
        ["jobs", "artifacts", by_ref @ ..] => by_ref_resource(by_ref)?,
        ["jobs", job] => Resource::Job(number(job)?),
        ["jobs", job, "trace"] => Resource::Trace(number(job)?),
        ["jobs", job, "cancel"] => Resource::Action(number(job)?, Action::Cancel),
        ["jobs", job, "retry"] => Resource::Action(number(job)?, Action::Retry),
        ["jobs", job, "erase"] => Resource::Action(number(job)?, Action::Erase),
        ["jobs", job, "play"] => Resource::Action(number(job)?, Action::Play),
        ["jobs", job, "artifacts"] => Resource::JobArtifacts(number(job)?),
        ["jobs", job, "artifacts", "keep"] => Resource::Keep(number(job)?),
        ["jobs", job, "artifacts", _, ..] => {
            number(job)?;
            Resource::ArtifactBytes
        }
        _ => return None,
    })
}

/// `:ref/download` or `:ref/raw/*path`, where the ref is one or more segments.
fn by_ref_resource(tail: &[&str]) -> Option<Resource> {
    let download = tail.len() >= 2 && tail.last() == Some(&"download");
    let raw = tail
        .iter()
        .enumerate()
        .any(|(i, s)| *s == "raw" && i >= 1 && i + 1 < tail.len());
    if raw {
        Some(Resource::ArtifactBytes)
    } else {
        download.then_some(Resource::Download)
    }
}

/// A path id: ASCII digits only (no sign, no spaces).
fn number(segment: &str) -> Option<u64> {
    if segment.is_empty() || !segment.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    segment.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(method: Method, path: &str) -> Result<Endpoint, ApiError> {
        route(&method, path).map(|r| r.endpoint)
    }

    #[test]
    fn routes_each_endpoint() {
        let p = "/api/v4/projects/1";
        let cases = [
            (
                Method::GET,
                "/api/v4/user".to_owned(),
                Endpoint::CurrentUser,
            ),
            (
                Method::HEAD,
                "/api/v4/user".to_owned(),
                Endpoint::CurrentUser,
            ),
            (Method::GET, p.to_owned(), Endpoint::GetProject),
            (
                Method::GET,
                "/api/v4/projects/group%2Fapp".to_owned(),
                Endpoint::GetProject,
            ),
            (Method::GET, format!("{p}/jobs"), Endpoint::ListJobs),
            (Method::HEAD, format!("{p}/jobs"), Endpoint::ListJobs),
            (
                Method::GET,
                format!("{p}/pipelines/13/jobs"),
                Endpoint::PipelineJobs(13),
            ),
            (Method::GET, format!("{p}/jobs/7"), Endpoint::GetJob(7)),
            (Method::GET, format!("{p}/jobs/7/trace"), Endpoint::Trace(7)),
            (
                Method::POST,
                format!("{p}/jobs/7/cancel"),
                Endpoint::Cancel(7),
            ),
            (
                Method::POST,
                format!("{p}/jobs/7/retry"),
                Endpoint::Retry(7),
            ),
            (
                Method::POST,
                format!("{p}/jobs/7/erase"),
                Endpoint::Erase(7),
            ),
            (Method::POST, format!("{p}/jobs/7/play"), Endpoint::Play(7)),
            (
                Method::POST,
                format!("{p}/jobs/7/artifacts/keep"),
                Endpoint::KeepArtifacts(7),
            ),
            (
                Method::DELETE,
                format!("{p}/jobs/7/artifacts"),
                Endpoint::DeleteArtifacts(7),
            ),
            (
                Method::GET,
                format!("{p}/jobs/7/artifacts"),
                Endpoint::Archive(7),
            ),
            (
                Method::HEAD,
                format!("{p}/jobs/7/artifacts"),
                Endpoint::Archive(7),
            ),
            (
                Method::GET,
                format!("{p}/jobs/7/artifacts/keep"),
                Endpoint::ArtifactBytes,
            ),
            (
                Method::GET,
                format!("{p}/jobs/7/artifacts/a/b.txt"),
                Endpoint::ArtifactBytes,
            ),
            (
                Method::GET,
                format!("{p}/jobs/artifacts/main/download"),
                Endpoint::ArchiveByRef,
            ),
            (
                Method::GET,
                format!("{p}/jobs/artifacts/feature/x/download"),
                Endpoint::ArchiveByRef,
            ),
            (
                Method::GET,
                format!("{p}/jobs/artifacts/main/raw/a/b.txt"),
                Endpoint::ArtifactBytes,
            ),
        ];
        for (method, path, want) in cases {
            assert_eq!(ep(method.clone(), &path), Ok(want), "{method} {path}");
        }
    }

    #[test]
    fn unknown_paths_are_404_and_wrong_methods_405() {
        for path in [
            "/api/v4/projects",
            "/api/v4/projects/",
            "/api/v4/users",
            "/api/v4/user/1",
            "/api/v4/projects/1/jobs/",
            "/api/v4/projects/1/jobs/x7",
            "/api/v4/projects/1/jobs/+7",
            "/api/v4/projects/1/jobs/7/nope",
            "/api/v4/projects/1/jobs/artifacts/main",
            "/api/v4/projects/1/jobs/artifacts/raw/x",
            "/api/v4/projects/group/app/jobs",
            "/api/v3/projects/1/jobs",
        ] {
            assert_eq!(ep(Method::GET, path), Err(ApiError::NoRoute), "{path}");
        }
        let p = "/api/v4/projects/1";
        let cases = [
            (Method::POST, "/api/v4/user".to_owned(), "GET, HEAD"),
            (Method::PUT, p.to_owned(), "GET, HEAD"),
            (Method::POST, format!("{p}/jobs"), "GET, HEAD"),
            (Method::GET, format!("{p}/jobs/7/cancel"), "POST"),
            (
                Method::PUT,
                format!("{p}/jobs/7/artifacts"),
                "GET, HEAD, DELETE",
            ),
            (
                Method::DELETE,
                format!("{p}/jobs/7/artifacts/keep"),
                "GET, HEAD, POST",
            ),
        ];
        for (method, path, allow) in cases {
            assert_eq!(ep(method, &path), Err(ApiError::MethodNotAllowed(allow)));
        }
    }

    #[test]
    fn by_ref_download_names_its_ref() {
        let r = route(
            &Method::GET,
            "/api/v4/projects/1/jobs/artifacts/feature/x%2By/download",
        )
        .unwrap();
        assert_eq!(r.ref_name.as_deref(), Some("feature/x+y"));
        let r = route(&Method::GET, "/api/v4/projects/1/jobs/7/artifacts").unwrap();
        assert_eq!(r.ref_name, None);
    }

    #[test]
    fn decodes_only_the_project_segment() {
        for raw in ["group%2Fapp", "group%2fapp"] {
            let r = route(&Method::GET, &format!("/api/v4/projects/{raw}/jobs")).unwrap();
            assert_eq!(r.project, "group/app");
        }
    }
}
