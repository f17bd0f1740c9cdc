//! Names a request: `(method, raw path, raw query)` → [`Route`].
//!
//! This is the one place that knows the shape of GitLab's Jobs API URLs under
//! `/api/v4/projects/:id/...`. Everything downstream (serving, forwarding, caching, metrics)
//! works from the [`Route`] it returns.
//!
//! Invariants:
//! - Pure: no I/O, no state, never panics on any input.
//! - The input path is the raw request path exactly as received, still percent-encoded.
//!   Segments are split on raw `/` *before* decoding, so an encoded `%2F` never creates a
//!   route segment (that is how GitLab tells `group%2Fproject` from route segments).
//! - Anything not recognised, including a recognised path with the wrong method, is
//!   [`Route::Other`]: it is forwarded upstream unchanged and the upstream answers.
//! - Artifact paths and refs in a returned route are decoded, valid UTF-8, non-empty, free of
//!   NUL and of `.`/`..` segments; otherwise the request is a [`RouteError::BadPath`] (400).
//!   Leading, repeated and trailing slashes are kept as sent: they name no zip entry, so the
//!   lookup answers 404. Backslash is an ordinary character here.

use http::Method;
use percent_encoding::percent_decode_str;
use std::fmt;

const PREFIX: &str = "/api/v4/projects/";
/// Where expiring links are served: outside the API, so no GitLab route can be shadowed.
pub const LINKS_PREFIX: &str = "/-/links/";

/// How a request names its project: numeric id or decoded namespaced path ("group/sub/project").
///
/// A path is not case-normalised (GitLab looks paths up case-insensitively), so two spellings
/// of one project are two different values.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ProjectRef {
    Id(u64),
    Path(String),
}

impl fmt::Display for ProjectRef {
    /// The decoded form; percent-encode it again (`/` → `%2F`) before putting it in a URL.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProjectRef::Id(id) => write!(f, "{id}"),
            ProjectRef::Path(path) => f.write_str(path),
        }
    }
}

/// Characters kept raw in a project path segment: GitLab's own encoding leaves only
/// unreserved characters unescaped (`group%2Fsub%2Fproject`).
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

impl ProjectRef {
    /// The project as one URL path segment, for requests the gateway makes upstream.
    pub fn to_path_segment(&self) -> String {
        match self {
            ProjectRef::Id(id) => id.to_string(),
            ProjectRef::Path(path) => {
                percent_encoding::utf8_percent_encode(path, SEGMENT).to_string()
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobAction {
    Cancel,
    Retry,
    Erase,
    Play,
    KeepArtifacts,
    DeleteArtifacts,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// GET /projects/:id/jobs
    ListProjectJobs { project: ProjectRef },
    /// GET /projects/:id/pipelines/:pipeline_id/jobs
    ListPipelineJobs {
        project: ProjectRef,
        pipeline_id: u64,
    },
    /// GET /projects/:id/jobs/:job_id
    GetJob { project: ProjectRef, job_id: u64 },
    /// POST .../jobs/:job_id/{cancel,retry,erase,play}, POST .../jobs/:job_id/artifacts/keep,
    /// DELETE .../jobs/:job_id/artifacts
    JobAction {
        project: ProjectRef,
        job_id: u64,
        action: JobAction,
    },
    /// GET|HEAD /projects/:id/jobs/:job_id/trace
    Trace { project: ProjectRef, job_id: u64 },
    /// GET|HEAD /projects/:id/jobs/:job_id/artifacts
    Archive { project: ProjectRef, job_id: u64 },
    /// GET|HEAD /projects/:id/jobs/:job_id/artifacts/*artifact_path
    ArtifactFile {
        project: ProjectRef,
        job_id: u64,
        path: String,
    },
    /// GET|HEAD /projects/:id/jobs/artifacts/:ref_name/download?job=NAME
    ArchiveByRef {
        project: ProjectRef,
        ref_name: String,
        job: String,
    },
    /// GET|HEAD /projects/:id/jobs/artifacts/:ref_name/raw/*artifact_path?job=NAME
    ArtifactFileByRef {
        project: ProjectRef,
        ref_name: String,
        path: String,
        job: String,
    },
    /// GET|HEAD /projects/:id/jobs/:job_id/artifacts/tree (GitLab 18.8's listing),
    /// /projects/:id/jobs/artifacts/:ref_name/tree?job=NAME (the gateway's), and
    /// GET|HEAD .../artifacts/-/zip, .../jobs/artifacts/:ref_name/-/zip?job=NAME (a part of
    /// the archive as a zip, the gateway's).
    ArchiveView {
        project: ProjectRef,
        job: JobName,
        view: View,
    },
    /// POST /projects/:id/jobs/:job_id/artifacts/-/links, and
    /// POST /projects/:id/jobs/artifacts/-/links with `ref` and `job` in the body.
    IssueLink {
        project: ProjectRef,
        job_id: Option<u64>,
    },
    /// GET|HEAD /-/links/:token: an expiring link, served without credentials.
    Link { token: String },
    /// GET|HEAD of an artifact path under `-/` that names no route of the gateway's: the
    /// segment is reserved, so such a path is a 404 (it is not looked up in the archive).
    Reserved,
    /// Anything else: forwarded upstream unchanged.
    Other,
}

/// What an [`Route::ArchiveView`] shows of the archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    Tree,
    Part,
}

/// The job a route names, owned: by id, or the newest successful job of a name on a ref.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobName {
    Id(u64),
    LatestOnRef { ref_name: String, job: String },
}

impl JobName {
    pub fn selector(&self) -> JobSelector<'_> {
        match self {
            JobName::Id(id) => JobSelector::Id(*id),
            JobName::LatestOnRef { ref_name, job } => JobSelector::LatestOnRef {
                ref_name,
                job_name: job,
            },
        }
    }
}

impl Route {
    /// A byte route's project, the job it names, and the file in that job's archive
    /// (`None`: the archive itself).
    pub fn artifact(&self) -> Option<(JobRef<'_>, Option<&str>)> {
        use JobSelector::Id;
        Some(match self {
            Route::Archive { project, job_id } => (JobRef::new(project, Id(*job_id)), None),
            Route::ArtifactFile {
                project,
                job_id,
                path,
            } => (JobRef::new(project, Id(*job_id)), Some(path.as_str())),
            Route::ArchiveByRef {
                project,
                ref_name,
                job,
            } => (JobRef::latest(project, ref_name, job), None),
            Route::ArtifactFileByRef {
                project,
                path,
                ref_name,
                job,
            } => (JobRef::latest(project, ref_name, job), Some(path.as_str())),
            _ => return None,
        })
    }

    /// Short stable name for logs and metrics: "list_project_jobs", "list_pipeline_jobs", "get_job",
    /// "cancel", "retry", "erase", "play", "keep_artifacts", "delete_artifacts", "trace", "archive",
    /// "artifact_file", "archive_by_ref", "artifact_file_by_ref", "artifact_tree",
    /// "artifact_tree_by_ref", "archive_part", "archive_part_by_ref", "issue_link",
    /// "issue_link_by_ref", "link", "reserved", "other".
    pub fn name(&self) -> &'static str {
        match self {
            Route::ListProjectJobs { .. } => "list_project_jobs",
            Route::ListPipelineJobs { .. } => "list_pipeline_jobs",
            Route::GetJob { .. } => "get_job",
            Route::JobAction { action, .. } => match action {
                JobAction::Cancel => "cancel",
                JobAction::Retry => "retry",
                JobAction::Erase => "erase",
                JobAction::Play => "play",
                JobAction::KeepArtifacts => "keep_artifacts",
                JobAction::DeleteArtifacts => "delete_artifacts",
            },
            Route::Trace { .. } => "trace",
            Route::Archive { .. } => "archive",
            Route::ArtifactFile { .. } => "artifact_file",
            Route::ArchiveByRef { .. } => "archive_by_ref",
            Route::ArtifactFileByRef { .. } => "artifact_file_by_ref",
            Route::ArchiveView { job, view, .. } => match (view, job) {
                (View::Tree, JobName::Id(_)) => "artifact_tree",
                (View::Tree, JobName::LatestOnRef { .. }) => "artifact_tree_by_ref",
                (View::Part, JobName::Id(_)) => "archive_part",
                (View::Part, JobName::LatestOnRef { .. }) => "archive_part_by_ref",
            },
            Route::IssueLink {
                job_id: Some(_), ..
            } => "issue_link",
            Route::IssueLink { job_id: None, .. } => "issue_link_by_ref",
            Route::Link { .. } => "link",
            Route::Reserved => "reserved",
            Route::Other => "other",
        }
    }

    /// The project, when the route names one.
    pub fn project(&self) -> Option<&ProjectRef> {
        match self {
            Route::ListProjectJobs { project }
            | Route::ListPipelineJobs { project, .. }
            | Route::GetJob { project, .. }
            | Route::JobAction { project, .. }
            | Route::Trace { project, .. }
            | Route::Archive { project, .. }
            | Route::ArtifactFile { project, .. }
            | Route::ArchiveByRef { project, .. }
            | Route::ArtifactFileByRef { project, .. }
            | Route::ArchiveView { project, .. }
            | Route::IssueLink { project, .. } => Some(project),
            Route::Link { .. } | Route::Reserved | Route::Other => None,
        }
    }
}

/// Why a request to a recognised route cannot be served; both are answered 400.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteError {
    /// An artifact path or ref that cannot name a file: NUL, invalid UTF-8 after decoding,
    /// a `..` or `.` segment (also when spelled %2e%2e), an empty path. Answered 400.
    BadPath(&'static str),
    /// A required query parameter is absent or empty (GitLab answers 400 `{"error":"job is missing"}`).
    MissingParam(&'static str),
}

impl fmt::Display for RouteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RouteError::BadPath(why) => write!(f, "invalid path: {why}"),
            // Same wording as GitLab's parameter validation, so it can be the error body as is.
            RouteError::MissingParam(name) => write!(f, "{name} is missing"),
        }
    }
}

impl std::error::Error for RouteError {}

/// `path` is the raw request path exactly as received (still percent-encoded, e.g.
/// "/api/v4/projects/group%2Fproject/jobs/7/artifacts/dir/a%20b.txt"); `query` is the raw query
/// string without '?'. Errors only for GET/HEAD requests to the artifact file and by-ref routes.
pub fn match_route(method: &Method, path: &str, query: Option<&str>) -> Result<Route, RouteError> {
    let get_or_head = method == Method::GET || method == Method::HEAD;
    if let Some(token) = path.strip_prefix(LINKS_PREFIX) {
        return Ok(match token {
            // Tokens are base64url and `.`: nothing to decode, and no `/`.
            token if get_or_head && !token.is_empty() && !token.contains('/') => Route::Link {
                token: token.to_owned(),
            },
            _ => Route::Other,
        });
    }
    let Some(rest) = path.strip_prefix(PREFIX) else {
        return Ok(Route::Other);
    };
    // A raw `/` always ends the id: GitLab requires namespaced paths to be encoded.
    let Some((id_raw, rest)) = rest.split_once('/') else {
        return Ok(Route::Other);
    };
    let Some(project) = parse_project(id_raw) else {
        return Ok(Route::Other);
    };
    let get = method == Method::GET;
    let post = method == Method::POST;

    if let Some(tail) = rest.strip_prefix("pipelines/") {
        return Ok(match tail.split_once('/') {
            Some((pipeline_raw, "jobs")) if get => match parse_digits(pipeline_raw) {
                Some(pipeline_id) => Route::ListPipelineJobs {
                    project,
                    pipeline_id,
                },
                None => Route::Other,
            },
            _ => Route::Other,
        });
    }
    if rest == "jobs" {
        return Ok(if get {
            Route::ListProjectJobs { project }
        } else {
            Route::Other
        });
    }
    let Some(jobs_rest) = rest.strip_prefix("jobs/") else {
        return Ok(Route::Other);
    };
    // The literal `artifacts` where a job id would be opens the by-ref family.
    if let Some(by_ref) = jobs_rest.strip_prefix("artifacts/") {
        if post && by_ref == "-/links" {
            return Ok(Route::IssueLink {
                project,
                job_id: None,
            });
        }
        if !get_or_head {
            return Ok(Route::Other);
        }
        return match_by_ref(project, by_ref, query);
    }

    let (job_raw, tail) = match jobs_rest.split_once('/') {
        Some((job_raw, tail)) => (job_raw, Some(tail)),
        None => (jobs_rest, None),
    };
    let Some(job_id) = parse_digits(job_raw) else {
        return Ok(Route::Other);
    };
    if post && tail == Some("artifacts/-/links") {
        return Ok(Route::IssueLink {
            project,
            job_id: Some(job_id),
        });
    }
    let action = match tail {
        Some("cancel") if post => Some(JobAction::Cancel),
        Some("retry") if post => Some(JobAction::Retry),
        Some("erase") if post => Some(JobAction::Erase),
        Some("play") if post => Some(JobAction::Play),
        Some("artifacts/keep") if post => Some(JobAction::KeepArtifacts),
        Some("artifacts") if method == Method::DELETE => Some(JobAction::DeleteArtifacts),
        _ => None,
    };
    if let Some(action) = action {
        return Ok(Route::JobAction {
            project,
            job_id,
            action,
        });
    }
    Ok(match tail {
        None if get => Route::GetJob { project, job_id },
        Some("trace") if get_or_head => Route::Trace { project, job_id },
        Some("artifacts") if get_or_head => Route::Archive { project, job_id },
        Some(tail) if get_or_head => match tail.strip_prefix("artifacts/") {
            // GitLab's own route: a file named `tree` at the archive's root is not
            // reachable by job id there either.
            Some("tree") => view(project, JobName::Id(job_id), View::Tree),
            Some("-/zip") => view(project, JobName::Id(job_id), View::Part),
            // Also `GET .../artifacts/keep`: only POST makes `keep` an action; GET reads a file.
            Some(file_raw) => file_route(decode_path(file_raw)?, |path| Route::ArtifactFile {
                project,
                job_id,
                path,
            }),
            None => Route::Other,
        },
        _ => Route::Other,
    })
}

/// `rest` is what follows `.../jobs/artifacts/`; the method is already GET or HEAD.
///
/// GitLab (Grape) declares `:ref_name/download` before `:ref_name/raw/*artifact_path`, both with
/// `ref_name` matching `.+`, so refs may carry raw slashes (python-gitlab sends
/// `feature/foo/download` unencoded) and the download shape wins when both fit (so, as in
/// GitLab, a by-ref file whose path ends in a `download` segment cannot be fetched).
/// For `raw` we split at the FIRST segment that is exactly `raw`, so an artifact directory
/// named `raw` works; a ref that itself has a `raw` segment must be sent with its slashes
/// encoded (`feature%2Fraw%2Fx/raw/a.txt`). GitLab's greedy regex splits at the LAST one
/// instead; the two only differ when both the ref and the path have a `raw` segment.
fn match_by_ref(project: ProjectRef, rest: &str, query: Option<&str>) -> Result<Route, RouteError> {
    if let Some(ref_raw) = rest.strip_suffix("/download") {
        if ref_raw.is_empty() {
            return Ok(Route::Other);
        }
        let job = job_param(query)?;
        let ref_name = decode_path(ref_raw)?;
        return Ok(Route::ArchiveByRef {
            project,
            ref_name,
            job,
        });
    }
    // Searching for "/raw/" finds the first `raw` segment that has a non-empty ref before it.
    let Some(at) = rest.find("/raw/") else {
        return match_by_ref_view(project, rest, query);
    };
    let (ref_raw, file_raw) = (&rest[..at], &rest[at + "/raw/".len()..]);
    if ref_raw.is_empty() {
        return Ok(Route::Other);
    }
    // Grape validates required params before the endpoint looks at the path: same order here.
    let job = job_param(query)?;
    let ref_name = decode_path(ref_raw)?;
    Ok(file_route(decode_path(file_raw)?, |path| {
        Route::ArtifactFileByRef {
            project,
            ref_name,
            path,
            job,
        }
    }))
}

/// The gateway's by-ref views, tried after GitLab's two by-ref shapes: `:ref/-/zip` and
/// `:ref/tree`, both with `?job=NAME`.
fn match_by_ref_view(
    project: ProjectRef,
    rest: &str,
    query: Option<&str>,
) -> Result<Route, RouteError> {
    let (ref_raw, which) = if let Some(ref_raw) = rest.strip_suffix("/-/zip") {
        (ref_raw, View::Part)
    } else if let Some(ref_raw) = rest.strip_suffix("/tree") {
        (ref_raw, View::Tree)
    } else {
        return Ok(Route::Other);
    };
    if ref_raw.is_empty() {
        return Ok(Route::Other);
    }
    let job = job_param(query)?;
    let ref_name = decode_path(ref_raw)?;
    Ok(view(project, JobName::LatestOnRef { ref_name, job }, which))
}

fn view(project: ProjectRef, job: JobName, view: View) -> Route {
    Route::ArchiveView { project, job, view }
}

/// A single-file route, unless its path is under the reserved `-/` segment.
fn file_route(path: String, route: impl FnOnce(String) -> Route) -> Route {
    if path.starts_with("-/") {
        Route::Reserved
    } else {
        route(path)
    }
}

/// The `job` parameter, decoded as Rack does (`+` is a space); the last one wins, as in Rack.
fn job_param(query: Option<&str>) -> Result<String, RouteError> {
    let job = form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .filter(|(key, _)| key == "job")
        .last()
        .map(|(_, value)| value.into_owned());
    match job {
        Some(job) if !job.is_empty() => Ok(job),
        _ => Err(RouteError::MissingParam("job")),
    }
}

/// Decodes the id segment. Classified after decoding, as GitLab does, so `%35` is project 5.
/// Empty, undecodable, or all digits but too large for u64 → `None` (upstream answers).
fn parse_project(raw: &str) -> Option<ProjectRef> {
    let decoded = percent_decode_str(raw).decode_utf8().ok()?;
    if decoded.is_empty() {
        return None;
    }
    if decoded.bytes().all(|b| b.is_ascii_digit()) {
        return decoded.parse().ok().map(ProjectRef::Id);
    }
    Some(ProjectRef::Path(decoded.into_owned()))
}

/// A job or pipeline id: ASCII digits only (`str::parse` alone would accept a leading `+`).
fn parse_digits(raw: &str) -> Option<u64> {
    if raw.is_empty() || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    raw.parse().ok()
}

/// Decodes an artifact path or ref. A literal `+` stays `+`: paths are not form-encoded.
/// The checks run on the decoded text, so `%2e%2e` is as much a `..` as `..` is.
fn decode_path(raw: &str) -> Result<String, RouteError> {
    let decoded = percent_decode_str(raw)
        .decode_utf8()
        .map_err(|_| RouteError::BadPath("not valid UTF-8"))?;
    if decoded.is_empty() {
        return Err(RouteError::BadPath("empty path"));
    }
    if decoded.contains('\0') {
        return Err(RouteError::BadPath("NUL byte in path"));
    }
    if decoded.split('/').any(|seg| seg == "." || seg == "..") {
        return Err(RouteError::BadPath("`.` or `..` segment in path"));
    }
    Ok(decoded.into_owned())
}

/// How a request names its job: by id, or as the newest successful job of a name on a ref.
#[derive(Debug, Clone, Copy)]
pub enum JobSelector<'a> {
    Id(u64),
    LatestOnRef {
        ref_name: &'a str,
        job_name: &'a str,
    },
}

/// The job a byte route names: its project, and the job in it.
#[derive(Debug, Clone, Copy)]
pub struct JobRef<'a> {
    pub project: &'a ProjectRef,
    pub selector: JobSelector<'a>,
}

impl<'a> JobRef<'a> {
    pub fn new(project: &'a ProjectRef, selector: JobSelector<'a>) -> Self {
        Self { project, selector }
    }

    /// The newest successful job named `job_name` on `ref_name`.
    pub fn latest(project: &'a ProjectRef, ref_name: &'a str, job_name: &'a str) -> Self {
        let selector = JobSelector::LatestOnRef { ref_name, job_name };
        Self { project, selector }
    }
}

#[cfg(test)]
mod tests;
