//! [`BackendBuilder`]: what a backend holds before it starts (users, sessions, projects,
//! jobs, page size, delay, GitLab-faithful switches, the artifact store), and starting it.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use tokio::net::TcpListener;

use crate::artifacts::ArtifactStore;
use crate::model::{JobSpec, Project, State, Visibility};
use crate::server::SampleBackend;
use crate::{pagination, sample_data};

/// GitLab's default page size.
const DEFAULT_PER_PAGE: usize = 20;
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
        Ok(SampleBackend::serve(
            listener,
            addr,
            state,
            self.delay,
            self.artifacts,
        ))
    }
}
