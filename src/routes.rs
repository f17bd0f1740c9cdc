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
    /// Anything else: forwarded upstream unchanged.
    Other,
}

impl Route {
    /// Short stable name for logs and metrics: "list_project_jobs", "list_pipeline_jobs", "get_job",
    /// "cancel", "retry", "erase", "play", "keep_artifacts", "delete_artifacts", "trace", "archive",
    /// "artifact_file", "archive_by_ref", "artifact_file_by_ref", "other".
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
            | Route::ArtifactFileByRef { project, .. } => Some(project),
            Route::Other => None,
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
    let get_or_head = get || method == Method::HEAD;

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
    let post = method == Method::POST;
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
        // Also `GET .../artifacts/keep`: only POST makes `keep` an action; GET reads a file.
        Some(tail) if get_or_head => match tail.strip_prefix("artifacts/") {
            Some(file_raw) => Route::ArtifactFile {
                project,
                job_id,
                path: decode_path(file_raw)?,
            },
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
        return Ok(Route::Other);
    };
    let (ref_raw, file_raw) = (&rest[..at], &rest[at + "/raw/".len()..]);
    if ref_raw.is_empty() {
        return Ok(Route::Other);
    }
    // Grape validates required params before the endpoint looks at the path: same order here.
    let job = job_param(query)?;
    Ok(Route::ArtifactFileByRef {
        project,
        ref_name: decode_path(ref_raw)?,
        path: decode_path(file_raw)?,
        job,
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs "METHOD path?query" (`~` stands for `/api/v4/projects/`) and renders the answer on
    /// one line, `name|project|fields...` or the error, so that each case is one table row.
    fn run(req: &str) -> String {
        let (method, target) = req.split_once(' ').unwrap();
        let target = target.replacen('~', PREFIX, 1);
        let (path, query) = match target.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (target.as_str(), None),
        };
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let route = match match_route(&method, path, query) {
            Ok(route) => route,
            Err(RouteError::BadPath(_)) => return "BadPath".into(),
            Err(e @ RouteError::MissingParam(_)) => return format!("Missing: {e}"),
        };
        let mut out = route.name().to_owned();
        match route.project() {
            Some(ProjectRef::Id(id)) => out += &format!("|{id}"),
            Some(ProjectRef::Path(path)) => out += &format!("|path:{path}"),
            None => {}
        }
        let fields = match route {
            Route::ListPipelineJobs { pipeline_id, .. } => vec![pipeline_id.to_string()],
            Route::GetJob { job_id, .. }
            | Route::JobAction { job_id, .. }
            | Route::Trace { job_id, .. }
            | Route::Archive { job_id, .. } => vec![job_id.to_string()],
            Route::ArtifactFile { job_id, path, .. } => vec![job_id.to_string(), path],
            Route::ArchiveByRef { ref_name, job, .. } => vec![ref_name, job],
            Route::ArtifactFileByRef {
                ref_name,
                path,
                job,
                ..
            } => vec![ref_name, path, job],
            Route::ListProjectJobs { .. } | Route::Other => vec![],
        };
        for field in fields {
            out = out + "|" + &field;
        }
        out
    }

    /// Each case is "request => expected rendering".
    fn check(cases: &[&str]) {
        for case in cases {
            let (req, want) = case.split_once(" => ").unwrap();
            assert_eq!(run(req), want, "{req}");
        }
    }

    #[test]
    fn every_route_shape() {
        check(&[
            "GET ~5/jobs => list_project_jobs|5",
            "GET ~5/pipelines/9/jobs => list_pipeline_jobs|5|9",
            "GET ~5/jobs/7 => get_job|5|7",
            "POST ~5/jobs/7/cancel => cancel|5|7",
            "POST ~5/jobs/7/retry => retry|5|7",
            "POST ~5/jobs/7/erase => erase|5|7",
            "POST ~5/jobs/7/play => play|5|7",
            "POST ~5/jobs/7/artifacts/keep => keep_artifacts|5|7",
            "DELETE ~5/jobs/7/artifacts => delete_artifacts|5|7",
            "GET ~5/jobs/7/trace => trace|5|7",
            "HEAD ~5/jobs/7/trace => trace|5|7",
            "GET ~5/jobs/7/artifacts => archive|5|7",
            "HEAD ~5/jobs/7/artifacts => archive|5|7",
            "GET ~5/jobs/7/artifacts/dir/a.txt => artifact_file|5|7|dir/a.txt",
            "HEAD ~5/jobs/7/artifacts/a.txt => artifact_file|5|7|a.txt",
            "GET ~5/jobs/artifacts/main/download?job=b => archive_by_ref|5|main|b",
            "HEAD ~5/jobs/artifacts/main/download?job=b => archive_by_ref|5|main|b",
            "GET ~5/jobs/artifacts/main/raw/d/a.txt?job=b => artifact_file_by_ref|5|main|d/a.txt|b",
            "HEAD ~5/jobs/artifacts/main/raw/a?job=b => artifact_file_by_ref|5|main|a|b",
        ]);
        assert_eq!(Route::Other.name(), "other");
        assert_eq!(Route::Other.project(), None);
    }

    #[test]
    fn project_ids_and_encoded_paths() {
        check(&[
            "GET ~group%2Fsub%2Fproject/jobs => list_project_jobs|path:group/sub/project",
            "GET ~group%2fproject/jobs/3 => get_job|path:group/project|3",
            "GET ~my-project/jobs => list_project_jobs|path:my-project",
            "GET ~007/jobs => list_project_jobs|7",
            "GET ~%35/jobs => list_project_jobs|5", // classified after decoding, as GitLab
            "GET ~18446744073709551615/jobs => list_project_jobs|18446744073709551615",
            "GET ~18446744073709551616/jobs => other",
            "GET ~/jobs => other",
            "GET ~%FF/jobs => other",
            "GET ~%C3/jobs => other",
            // An unencoded slash cannot be told apart from route segments.
            "GET ~group/project/jobs => other",
        ]);
        assert_eq!(ProjectRef::Path("g/s/p".into()).to_string(), "g/s/p");
        assert_eq!(ProjectRef::Id(5).to_string(), "5");
    }

    #[test]
    fn job_and_pipeline_ids_are_ascii_digits_only() {
        for bad in ["+7", "-7", "7a", "%37", "", "99999999999999999999", "٣"] {
            assert_eq!(run(&format!("GET ~5/jobs/{bad}")), "other", "{bad:?}");
            assert_eq!(run(&format!("GET ~5/jobs/{bad}/trace")), "other", "{bad:?}");
            let pipeline = format!("GET ~5/pipelines/{bad}/jobs");
            assert_eq!(run(&pipeline), "other", "{bad:?}");
        }
    }

    #[test]
    fn wrong_methods_are_other() {
        check(&[
            "HEAD ~5/jobs => other",
            "POST ~5/jobs => other",
            "HEAD ~5/pipelines/9/jobs => other",
            "HEAD ~5/jobs/7 => other",
            "DELETE ~5/jobs/7 => other",
            "GET ~5/jobs/7/cancel => other",
            "PUT ~5/jobs/7/retry => other",
            "POST ~5/jobs/7/trace => other",
            "POST ~5/jobs/7/artifacts => other",
            "PUT ~5/jobs/7/artifacts => other",
            "POST ~5/jobs/7/artifacts/a.txt => other",
            "DELETE ~5/jobs/7/artifacts/keep => other",
            "OPTIONS ~5/jobs/7/artifacts/a.txt => other",
            "PATCH ~5/jobs/7/trace => other",
            // Wrong method on a by-ref route is forwarded, not answered 400 for a missing job.
            "POST ~5/jobs/artifacts/main/download => other",
            "DELETE ~5/jobs/artifacts/main/raw/a => other",
        ]);
    }

    #[test]
    fn keep_is_an_action_for_post_and_a_file_for_get() {
        check(&[
            "POST ~5/jobs/3/artifacts/keep => keep_artifacts|5|3",
            "GET ~5/jobs/3/artifacts/keep => artifact_file|5|3|keep",
            "HEAD ~5/jobs/3/artifacts/keep => artifact_file|5|3|keep",
            "GET ~5/jobs/3/artifacts/ => BadPath", // empty path
        ]);
    }

    #[test]
    fn file_paths_are_decoded() {
        let f = "artifact_file|1|2|";
        for (raw, decoded) in [
            ("dir/a%20b.txt", "dir/a b.txt"),
            ("%23tag.txt", "#tag.txt"),
            ("what%3F.txt", "what?.txt"),
            ("dir%2Fname.txt", "dir/name.txt"),
            ("a+b.txt", "a+b.txt"), // paths are not form-encoded
            ("%C3%A9t%C3%A9.txt", "été.txt"),
            ("été.txt", "été.txt"),
            ("a\\..\\b", "a\\..\\b"), // backslash is ordinary
            ("%zz%4", "%zz%4"),       // malformed escapes stay literal
            ("..a/b...", "..a/b..."),
            ("dir/", "dir/"), // a directory: kept, the zip lookup answers 404
            ("a//b", "a//b"),
            ("/abs", "/abs"),
        ] {
            let got = run(&format!("GET ~1/jobs/2/artifacts/{raw}"));
            assert_eq!(got, format!("{f}{decoded}"), "{raw:?}");
        }
    }

    #[test]
    fn raw_non_ascii_from_http_uri() {
        // http 1.x passes raw UTF-8 through in the path; it must route like the encoded form.
        let uri: http::Uri = "/api/v4/projects/1/jobs/2/artifacts/été.txt"
            .parse()
            .unwrap();
        assert_eq!(
            run(&format!("GET {}", uri.path())),
            "artifact_file|1|2|été.txt"
        );
    }

    #[test]
    fn bad_file_paths() {
        let bad =
            "../x %2e%2e/x %2E%2E/x .%2e/x a/../b ./x a/. a/.. .. a%2F..%2Fb a%00b %00 %FF a/%C3";
        for bad in bad.split(' ') {
            let by_id = format!("GET ~1/jobs/2/artifacts/{bad}");
            assert_eq!(run(&by_id), "BadPath", "{bad:?}");
            let by_ref = format!("GET ~1/jobs/artifacts/main/raw/{bad}?job=b");
            assert_eq!(run(&by_ref), "BadPath", "{bad:?}");
        }
    }

    #[test]
    fn archive_by_ref() {
        check(&[
            // python-gitlab sends the ref's slashes raw; an encoded %2F decodes the same.
            "GET ~5/jobs/artifacts/feature/foo/download?job=b => archive_by_ref|5|feature/foo|b",
            "GET ~5/jobs/artifacts/feature%2Ffoo/download?job=b => archive_by_ref|5|feature/foo|b",
            "GET ~5/jobs/artifacts/v1.0+b/download?job=b => archive_by_ref|5|v1.0+b|b",
            // Download is declared first in GitLab, so it wins over a `raw` segment.
            "GET ~5/jobs/artifacts/main/raw/download?job=b => archive_by_ref|5|main/raw|b",
            "GET ~5/jobs/artifacts//download?job=b => other",
            "GET ~5/jobs/artifacts/download?job=b => other",
            "GET ~5/jobs/artifacts/main/download/?job=b => other",
            "GET ~5/jobs/artifacts/a/../b/download?job=b => BadPath",
            "GET ~5/jobs/artifacts/%00/download?job=b => BadPath",
        ]);
    }

    #[test]
    fn file_by_ref() {
        check(&[
            "GET ~5/jobs/artifacts/feature/foo/raw/a%20b?job=j => artifact_file_by_ref|5|feature/foo|a b|j",
            "GET ~5/jobs/artifacts/feature%2Ffoo/raw/a?job=j => artifact_file_by_ref|5|feature/foo|a|j",
            // Split at the first `raw` segment; a ref with a `raw` segment must be encoded.
            "GET ~5/jobs/artifacts/f/raw/x/raw/a?job=j => artifact_file_by_ref|5|f|x/raw/a|j",
            "GET ~5/jobs/artifacts/f%2Fraw%2Fx/raw/a?job=j => artifact_file_by_ref|5|f/raw/x|a|j",
            "GET ~5/jobs/artifacts/raw/raw/a?job=j => artifact_file_by_ref|5|raw|a|j",
            "GET ~5/jobs/artifacts/main/raw/dir/?job=j => artifact_file_by_ref|5|main|dir/|j",
            "GET ~5/jobs/artifacts/main/rawx/a?job=j => other",
            "GET ~5/jobs/artifacts/main/raw?job=j => other",
            "GET ~5/jobs/artifacts/raw/a?job=j => other", // empty ref
            "GET ~5/jobs/artifacts//raw/a?job=j => other",
            "GET ~5/jobs/artifacts/main?job=j => other",
            "GET ~5/jobs/artifacts/..%2Fx/raw/a?job=j => BadPath",
            "GET ~5/jobs/artifacts/main/raw/?job=j => BadPath", // empty path
        ]);
    }

    #[test]
    fn job_query_parameter() {
        check(&[
            "GET ~5/jobs/artifacts/m/download => Missing: job is missing",
            "GET ~5/jobs/artifacts/m/download? => Missing: job is missing",
            "GET ~5/jobs/artifacts/m/download?job= => Missing: job is missing",
            "GET ~5/jobs/artifacts/m/download?jobs=x&private_token=t => Missing: job is missing",
            "GET ~5/jobs/artifacts/m/raw/a.txt => Missing: job is missing",
            "GET ~5/jobs/artifacts/m/download?job=a+b => archive_by_ref|5|m|a b",
            "GET ~5/jobs/artifacts/m/download?job=a%20b%2Bc => archive_by_ref|5|m|a b+c",
            "GET ~5/jobs/artifacts/m/download?x=1&job=t&y=2 => archive_by_ref|5|m|t",
            "GET ~5/jobs/artifacts/m/download?job=a&job=b => archive_by_ref|5|m|b", // as Rack
        ]);
    }

    #[test]
    fn non_api_unknown_and_trailing_slash_paths_are_other() {
        let paths = "/ /api/v4/projects ~ ~5 ~5/ /api/v3/projects/5/jobs /API/v4/projects/5/jobs \
            /api/v4/user ~5/issues ~5/jobs/ ~5//jobs ~5/jobs/7/ ~5/jobs/7/trace/ ~5/jobs/7/unknown \
            ~5/pipelines/9 ~5/pipelines/9/jobs/ ~5/jobs/artifacts";
        for path in paths.split_whitespace().chain([""]) {
            assert_eq!(run(&format!("GET {path}")), "other", "{path:?}");
        }
    }

    /// Checks what every returned path or ref promises, whatever the input.
    fn assert_clean(s: &str) {
        assert!(!s.is_empty() && !s.contains('\0'), "{s:?}");
        assert!(!s.split('/').any(|seg| seg == "." || seg == ".."), "{s:?}");
    }

    #[test]
    fn garbage_never_panics() {
        let pieces: Vec<&str> = "/|//|%|%2F|%2f|%2e|%2E%2E|..|.|%00|%FF|%C3|%A9|%C3%A9|é|\0|raw|/raw/|/download|\
            download|artifacts|keep|jobs|pipelines|cancel|trace|0|7|18446744073709551616|+|?|#|\\|a| "
            .split('|')
            .collect();
        let methods = [Method::GET, Method::HEAD, Method::POST, Method::DELETE];
        let queries = ["job=x", "", "job=%FF&", "&&=&job", "%", "job=a+b"];
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as usize
        };
        let starts = [
            "",
            PREFIX,
            "~5/jobs/",
            "~5/jobs/7/artifacts/",
            "~5/jobs/artifacts/",
        ];
        for i in 0..20_000 {
            let mut path = starts[i % starts.len()].replacen('~', PREFIX, 1);
            for _ in 0..next() % 12 {
                path.push_str(pieces[next() % pieces.len()]);
            }
            let method = &methods[next() % methods.len()];
            let query = queries.get(next() % (queries.len() + 1)).copied(); // sometimes None
            match match_route(method, &path, query) {
                Ok(Route::ArtifactFile { path, .. }) => assert_clean(&path),
                Ok(Route::ArchiveByRef { ref_name, job, .. }) => {
                    assert_clean(&ref_name);
                    assert!(!job.is_empty());
                }
                Ok(Route::ArtifactFileByRef {
                    ref_name,
                    path,
                    job,
                    ..
                }) => {
                    assert_clean(&ref_name);
                    assert_clean(&path);
                    assert!(!job.is_empty());
                }
                Ok(_) | Err(_) => {}
            }
        }
    }
}
