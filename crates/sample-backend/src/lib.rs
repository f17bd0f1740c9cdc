//! A sample GitLab jobs backend, in process.
//!
//! This is a stand-in for the GitLab instance the gateway sits in front of. It speaks the
//! part of GitLab's Jobs API (`/api/v4/projects/:id/jobs/...`) that the gateway forwards,
//! plus `GET /user` and `GET /projects/:id` (what API clients ask first),
//! with GitLab's semantics, so that
//! - the binary's demo mode can show a newcomer the gateway working with nothing else
//!   installed ([`BackendBuilder::sample_data`]), and
//! - the integration tests have a fake upstream they can shape (users, projects, jobs,
//!   page size, a delay), mutate while running, and inspect afterwards (every request is
//!   recorded, body included).
//!
//! It is not GitLab: it holds no artifact bytes (in its faithful mode they are in S3, or
//! in a local directory it serves as object storage) and no git data. It keeps these of GitLab's semantics, because the gateway depends on them:
//! - **Credentials:** `PRIVATE-TOKEN`, `private_token`, `Authorization: Bearer`,
//!   `access_token` (OAuth), `JOB-TOKEN`, `job_token`, then the browser session cookie
//!   `_gitlab_session`. A token or session matching nothing is 401 even on a public project.
//!   The query is split on `;` as well as `&`, as Rack 2 (GitLab's) does.
//! - **Sudo:** `Sudo` header or `sudo` query (the query wins), a username or user id:
//!   with an admin's personal token the request acts as that user; a non-admin gets 403
//!   "Must be admin to use sudo", a session or job token 403 "Must be authenticated using
//!   an OAuth or Personal Access Token to use sudo", an unknown user 404 "User Not Found".
//!   A job token (`job-token-{id}`) works only while that job is running, reads only its
//!   own project, and is 403 on job actions (401 under GitLab's job-token rules, below).
//!   No credentials reads public projects only and is 401 on job actions.
//! - **Visibility:** a project the caller may not read is 404 "Project Not Found", never
//!   403; a job of another project is 404 "Job Not Found". Projects are named by numeric
//!   id or URL-encoded path (`group%2Fapp`), compared case-sensitively after decoding.
//! - **User and project:** `GET /user` is the caller's user (401 without a user's
//!   credential: anonymous or a job token), `GET /projects/:id` the project, 404 "Project
//!   Not Found" where its jobs would be; so python-gitlab's `gl.auth()` and a non-lazy
//!   `gl.projects.get()` work.
//! - **Lists:** newest first, `scope`/`scope[]` filters, `page`/`per_page` (max 100) and
//!   GitLab's pagination headers with absolute `Link` URLs; the project jobs list omits
//!   totals and `rel="last"`, the pipeline jobs list has them.
//! - **Job actions:** cancel, retry (a new job), erase, play, keep and delete artifacts,
//!   with GitLab's status codes, state rules and error messages; only project members
//!   with a personal token may run them.
//! - **Proxies:** like GitLab behind a trusted proxy, `X-Forwarded-Proto` and
//!   `X-Forwarded-Host` decide the base of the absolute `Link` URLs.
//! - **Headers:** JSON bodies, `{"message": ...}` errors, and GitLab's
//!   `Cache-Control: private, max-age=0`, `X-Content-Type-Options: nosniff`,
//!   `X-Frame-Options` and `Content-Security-Policy` on every response.
//!
//! Artifact byte paths (`.../jobs/:job_id/artifacts[/*path]`,
//! `.../jobs/artifacts/:ref/download`, `.../jobs/artifacts/:ref/raw/*path`) are, by
//! default, answered 500 with `X-Sample-Backend: artifact-bytes-requested`, before any credential check:
//! the gateway must serve those from object storage, and a test that sees the marker
//! knows it forwarded one.
//!
//! **GitLab-faithful mode** (off by default; for a gateway that finds archives through
//! GitLab's own routes), switched on piece by piece:
//! - [`BackendBuilder::gitlab_job_token_rules`]: job tokens (all three forms) work only
//!   where GitLab's routes say `job_token_allowed` (the job lists and artifact downloads);
//!   `GET .../jobs/:job_id`, the trace and the job actions answer them 401. A job token
//!   still reads only its own project (404 elsewhere).
//! - [`BackendBuilder::artifacts_in`] with an [`ArtifactStore`]: each archive lives in S3
//!   ([`ArtifactStore::new`]) or in a directory ([`ArtifactStore::local`]) at GitLab's
//!   hashed key `sha256(project_id)[0..2]/[2..4]/sha256(project_id)/@final/xx/yy/<60 hex>`
//!   ([`SampleBackend::archive_key`]), chosen once per archive. A local store's presigned
//!   URLs point at the backend's own object route, `/-/objects/<key>?expires=…`, which
//!   answers like S3 (signature and expiry checked, ranges, `If-*`; see `objects`). The two
//!   archive routes check access like GitLab (project 404, job 404, then no, expired or
//!   erased archive → 404 "404 Not found"; by ref: the newest *successful* pipeline of the
//!   ref, the named job in it) and then answer by [`DownloadMode`]: `Redirect` → 302 to a
//!   freshly presigned URL (HEAD: 303 to a presigned HEAD URL), `Proxy` → storage's
//!   200/206/304/412/416 streamed with `Range` and `If-*` passed through. The single-file
//!   routes keep the marker; the trace is still answered from the job's text, as GitLab's
//!   Rails does.
//!
//! Layout: `model` (users, projects, jobs, permissions, job actions), `artifacts` (the
//! object keys and the archive answers of the GitLab-faithful mode), `objects` (the local
//! object store: signed URLs and the object route), `job_json`
//! (GitLab's job object), `entities` (its user and project objects), `routes` (pure path, parameter and pagination logic),
//! `handlers` (the HTTP edge and the one error-to-response mapping), `error` (refusals
//! and their GitLab messages), `sample_data` (the demo dataset); this file holds the
//! public API and the server loop.

mod artifacts;
mod entities;
mod error;
mod handlers;
mod http_util;
mod job_json;
mod model;
mod objects;
mod pagination;
mod routes;
mod sample_data;
#[cfg(test)]
mod tests;

use std::convert::Infallible;
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

pub use artifacts::{ArtifactStore, DownloadMode};
pub use model::{JobSpec, JobStatus, Visibility};

use model::{Project, State};

/// GitLab's default page size.
const DEFAULT_PER_PAGE: usize = 20;

/// How long to wait after a failed `accept` (e.g. out of file descriptors) before trying
/// again, so a persistent error does not spin a core.
const ACCEPT_RETRY_DELAY: Duration = Duration::from_millis(10);

/// One request as the backend received it.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub method: http::Method,
    /// Raw, as received (still percent-encoded).
    pub path_and_query: String,
    pub headers: http::HeaderMap,
    /// The whole body.
    pub body: bytes::Bytes,
}

impl RecordedRequest {
    /// The path without the query.
    pub fn path(&self) -> &str {
        let full = self.path_and_query.as_str();
        full.split_once('?').map_or(full, |(path, _)| path)
    }
}

/// Describes a backend before it starts.
#[derive(Default)]
pub struct BackendBuilder {
    /// `(username, token)`.
    users: Vec<(String, String)>,
    admins: Vec<String>,
    /// `(session cookie value, username)`.
    sessions: Vec<(String, String)>,
    projects: Vec<Project>,
    jobs: Vec<JobSpec>,
    per_page: Option<usize>,
    delay: Duration,
    gitlab_job_token_rules: bool,
    artifacts: Option<ArtifactStore>,
}

impl fmt::Debug for BackendBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BackendBuilder")
            .field("projects", &self.projects.len())
            .field("jobs", &self.jobs.len())
            .field("gitlab_job_token_rules", &self.gitlab_job_token_rules)
            .field(
                "artifacts",
                &self.artifacts.as_ref().map(ArtifactStore::mode),
            )
            .finish_non_exhaustive()
    }
}

impl BackendBuilder {
    /// An empty backend: no users, projects or jobs.
    pub fn new() -> Self {
        Self::default()
    }

    /// A user identified by a personal access token.
    pub fn user(mut self, username: &str, token: &str) -> Self {
        self.users.push((username.to_owned(), token.to_owned()));
        self
    }

    /// An administrator identified by a personal access token: may use `Sudo`.
    pub fn admin(mut self, username: &str, token: &str) -> Self {
        self.admins.push(username.to_owned());
        self.user(username, token)
    }

    /// A browser session of `username`: the `_gitlab_session` cookie value `cookie`.
    pub fn session(mut self, cookie: &str, username: &str) -> Self {
        self.sessions.push((cookie.to_owned(), username.to_owned()));
        self
    }

    /// A project with full path `path` ("group/app") whose members (by username) may run
    /// job actions. A later call with the same id replaces the project.
    pub fn project(
        mut self,
        id: u64,
        path: &str,
        visibility: Visibility,
        members: &[&str],
    ) -> Self {
        self.projects.retain(|p| p.id != id);
        self.projects.push(Project {
            id,
            path: path.to_owned(),
            visibility,
            members: members.iter().map(|m| (*m).to_owned()).collect(),
        });
        self
    }

    /// A job. Job ids are unique across projects; a later job with the same id replaces
    /// the earlier one.
    pub fn job(mut self, job: JobSpec) -> Self {
        self.jobs.push(job);
        self
    }

    /// The jobs described so far, in the order given (what the demo lays out in storage).
    pub fn jobs(&self) -> &[JobSpec] {
        &self.jobs
    }

    /// Default page size when the request has no `per_page` (GitLab: 20; clamped to 1..=100).
    pub fn per_page(mut self, n: usize) -> Self {
        self.per_page = Some(n);
        self
    }

    /// Delay before every response's headers (to test gateway timeouts).
    pub fn delay(mut self, d: Duration) -> Self {
        self.delay = d;
        self
    }

    /// GitLab's job-token rule: a CI job token (`JOB-TOKEN`, `job_token`, or `Authorization:
    /// Bearer`) is accepted only on the job lists and the artifact downloads; everywhere
    /// else (`GET .../jobs/:job_id`, the trace, job actions) it is 401 "401 Unauthorized".
    pub fn gitlab_job_token_rules(mut self) -> Self {
        self.gitlab_job_token_rules = true;
        self
    }

    /// Answer the two archive routes (`.../jobs/:job_id/artifacts` and
    /// `.../jobs/artifacts/:ref/download?job=`) as GitLab with object storage does, from
    /// `store`; see [`SampleBackend::archive_key`] for where to put each archive.
    pub fn artifacts_in(mut self, store: ArtifactStore) -> Self {
        self.artifacts = Some(store);
        self
    }

    /// The demo dataset: users `demo`/`demo-token` and `outsider`/`outsider-token`,
    /// public project 1 `demo/app` and private project 2 `demo/secret` (both with member
    /// `demo`), and jobs 101–107 and 201; see the table in `sample_data.rs`.
    pub fn sample_data() -> Self {
        sample_data::builder()
    }

    /// Bind 127.0.0.1 on a free port and serve in a tokio task.
    pub async fn start(self) -> std::io::Result<SampleBackend> {
        self.start_on(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
            .await
    }

    /// Bind `addr` and serve in a tokio task.
    pub async fn start_on(self, addr: SocketAddr) -> std::io::Result<SampleBackend> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let mut state = State {
            users: self
                .users
                .into_iter()
                .map(|(name, token)| (token, name))
                .collect(),
            admins: self.admins.into_iter().collect(),
            sessions: self.sessions.into_iter().collect(),
            projects: self.projects,
            per_page: self
                .per_page
                .unwrap_or(DEFAULT_PER_PAGE)
                .clamp(1, pagination::MAX_PER_PAGE),
            base_url: format!("http://{addr}"),
            gitlab_job_token_rules: self.gitlab_job_token_rules,
            archives_in_store: self.artifacts.is_some(),
            ..State::default()
        };
        for job in self.jobs {
            state.insert(job);
        }
        let shared = Arc::new(Shared {
            state: Mutex::new(state),
            log: Mutex::new(Vec::new()),
            delay: Mutex::new(self.delay),
            artifacts: self.artifacts,
        });
        let task = tokio::spawn(accept_loop(listener, Arc::clone(&shared)));
        Ok(SampleBackend { addr, shared, task })
    }
}

/// A running sample backend. Dropping it stops the server: the accept loop and every
/// open connection are aborted.
pub struct SampleBackend {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl SampleBackend {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT` (or the bound address).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.log().clone()
    }

    /// Forget the requests received so far.
    pub fn clear_requests(&self) {
        self.shared.log().clear();
    }

    /// Number of recorded requests whose method and raw path (without query) equal these.
    pub fn count(&self, method: &str, path: &str) -> usize {
        self.shared
            .log()
            .iter()
            .filter(|r| r.method.as_str() == method && r.path() == path)
            .count()
    }

    /// Change the delay applied before every response from now on.
    pub fn set_delay(&self, d: Duration) {
        *self.shared.delay() = d;
    }

    /// Change job `id` in place (status, archive, trace...).
    ///
    /// # Panics
    /// If there is no job `id`: a test that updates a job it never created is wrong.
    pub fn update_job(&self, id: u64, f: impl FnOnce(&mut JobSpec)) {
        let mut state = self.shared.state();
        let record = state.jobs.get_mut(&id);
        let record = record.unwrap_or_else(|| panic!("sample backend has no job {id}"));
        f(&mut record.spec);
        state.sync_archive_keys();
    }

    /// The object key of job `id`'s archive, GitLab's hashed `@final` path, chosen once
    /// when the archive appeared (a new archive after erase gets a new key); `None` while
    /// the job has none. Upload the archive's bytes there.
    pub fn archive_key(&self, id: u64) -> Option<String> {
        self.shared.state().archive_keys.get(&id).cloned()
    }

    /// Every job's archive key ([`Self::archive_key`]), by job id.
    pub fn archive_keys(&self) -> std::collections::BTreeMap<u64, String> {
        self.shared
            .state()
            .archive_keys
            .iter()
            .map(|(id, key)| (*id, key.clone()))
            .collect()
    }

    /// Job `id` as it is now.
    pub fn job(&self, id: u64) -> Option<JobSpec> {
        self.shared.state().jobs.get(&id).map(|r| r.spec.clone())
    }

    /// Running-job token for job `id` (only valid while that job's status is Running):
    /// "job-token-{id}".
    pub fn job_token(id: u64) -> String {
        model::job_token(id)
    }

    /// Stop the server (same as dropping it).
    pub fn shutdown(self) {
        drop(self);
    }
}

impl Drop for SampleBackend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl fmt::Debug for SampleBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SampleBackend")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

/// State shared by the server tasks and the [`SampleBackend`] handle. Each mutex is held
/// only for synchronous work, never across an `.await`.
struct Shared {
    state: Mutex<State>,
    log: Mutex<Vec<RecordedRequest>>,
    delay: Mutex<Duration>,
    artifacts: Option<ArtifactStore>,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    fn log(&self) -> MutexGuard<'_, Vec<RecordedRequest>> {
        lock(&self.log)
    }

    fn delay(&self) -> MutexGuard<'_, Duration> {
        lock(&self.delay)
    }
}

/// Lock, ignoring poison: a test that panicked inside `update_job` should not turn every
/// later request into a second panic.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Accept connections until aborted. Connections live in a `JoinSet` owned by this task,
/// so aborting the task drops the set and aborts every connection with it.
async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let mut connections = JoinSet::new();
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _peer)) => stream,
            Err(_) => {
                tokio::time::sleep(ACCEPT_RETRY_DELAY).await;
                continue;
            }
        };
        while connections.try_join_next().is_some() {}
        let shared = Arc::clone(&shared);
        connections.spawn(async move {
            let service = service_fn(move |req| {
                let shared = Arc::clone(&shared);
                async move { Ok::<_, Infallible>(handlers::handle(shared, req).await) }
            });
            // HTTP/1.1 and h2c (prior knowledge), as the gateway may speak either. A
            // connection error only ends that connection.
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
