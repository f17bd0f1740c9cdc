//! The backend's world: users, projects and jobs; who may read or change what; and the
//! job state transitions of GitLab's job actions. (The job JSON is in `job_json`.)
//!
//! Plain data and functions over it, no I/O: the HTTP layer ([`super::handlers`]) locks
//! the [`State`], calls in here, and turns the result into a response.
//!
//! Invariants: job ids are unique across all projects (as in GitLab); a job token
//! (`job-token-{id}`) authenticates only while job `id` is `Running`.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::error::ApiError;

/// Whether anonymous callers and non-members may read a project.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visibility {
    Public,
    Private,
}

/// A job's status, serialised lowercase as GitLab does. These are also the values the
/// list endpoints accept in `scope`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    Created,
    Pending,
    Running,
    Success,
    Failed,
    Canceled,
    Skipped,
    Manual,
}

impl JobStatus {
    /// Every status, in the order GitLab's documentation lists scopes.
    pub const ALL: [JobStatus; 8] = [
        JobStatus::Created,
        JobStatus::Pending,
        JobStatus::Running,
        JobStatus::Failed,
        JobStatus::Success,
        JobStatus::Canceled,
        JobStatus::Skipped,
        JobStatus::Manual,
    ];

    /// The lowercase name GitLab uses in JSON and in `scope`.
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Created => "created",
            JobStatus::Pending => "pending",
            JobStatus::Running => "running",
            JobStatus::Success => "success",
            JobStatus::Failed => "failed",
            JobStatus::Canceled => "canceled",
            JobStatus::Skipped => "skipped",
            JobStatus::Manual => "manual",
        }
    }

    /// The status named `s` (exact, lowercase), if any.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == s)
    }

    /// Success, failed or canceled: the job ran to an end and may be erased.
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            JobStatus::Success | JobStatus::Failed | JobStatus::Canceled
        )
    }
}

/// One job as the backend knows it. Tests build these with [`JobSpec::new`] and the
/// chained setters, and read them back with `SampleBackend::job`.
#[derive(Debug, Clone)]
pub struct JobSpec {
    pub id: u64,
    pub project_id: u64,
    pub pipeline_id: u64,
    pub name: String,
    pub ref_name: String,
    pub status: JobStatus,
    pub stage: String,
    pub has_archive: bool,
    pub archive_size: u64,
    pub has_trace: bool,
    /// The live log text served by `GET .../jobs/:job_id/trace`.
    pub trace: String,
    pub tag: bool,
    /// The archive has expired: GitLab's archive routes answer 404 (the JSON still lists it).
    pub archive_expired: bool,
}

impl JobSpec {
    /// A job in its own pipeline (`pipeline_id = id`), stage "test", no archive, and an
    /// empty trace.
    pub fn new(id: u64, project_id: u64, name: &str, ref_name: &str, status: JobStatus) -> Self {
        JobSpec {
            id,
            project_id,
            pipeline_id: id,
            name: name.to_owned(),
            ref_name: ref_name.to_owned(),
            status,
            stage: "test".to_owned(),
            has_archive: false,
            archive_size: 0,
            has_trace: true,
            trace: String::new(),
            tag: false,
            archive_expired: false,
        }
    }

    /// Give the job an artifacts archive of `size` bytes.
    pub fn with_archive(mut self, size: u64) -> Self {
        self.has_archive = true;
        self.archive_size = size;
        self
    }

    /// Put the job in pipeline `pipeline_id`.
    pub fn pipeline(mut self, pipeline_id: u64) -> Self {
        self.pipeline_id = pipeline_id;
        self
    }

    /// Set the job's log text (and mark it as having a trace).
    pub fn trace(mut self, text: &str) -> Self {
        self.has_trace = true;
        self.trace = text.to_owned();
        self
    }
}

/// A project: numeric id, full path ("group/app"), visibility and member usernames.
#[derive(Debug, Clone)]
pub(super) struct Project {
    pub(super) id: u64,
    pub(super) path: String,
    pub(super) visibility: Visibility,
    pub(super) members: Vec<String>,
}

/// A job plus what GitLab's actions leave behind that a [`JobSpec`] does not hold.
#[derive(Debug, Clone)]
pub(super) struct JobRecord {
    pub(super) spec: JobSpec,
    /// Set by erase; shows as `erased_at`.
    pub(super) erased: bool,
    /// Set by artifacts/keep; `artifacts_expire_at` becomes null.
    pub(super) artifacts_kept: bool,
}

/// A credential as presented, before it is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Credential {
    /// `PRIVATE-TOKEN` header or `private_token` query: personal tokens only.
    Personal(String),
    /// `JOB-TOKEN` header or `job_token` query: job tokens only.
    Job(String),
    /// `Authorization: Bearer`: either kind.
    Bearer(String),
    /// `access_token` query: an OAuth token of a user (here: the user's one token).
    OAuth(String),
    /// The `_gitlab_session` browser cookie.
    Session(String),
}

/// Who is asking, once the credential checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Caller {
    Anonymous,
    User(String),
    /// A running job's token: read access to that job's project only.
    Job {
        project_id: u64,
    },
}

/// Everything the backend knows. Guarded by one mutex in [`super::SampleBackend`].
#[derive(Debug, Default)]
pub(super) struct State {
    /// Personal access token → username.
    pub(super) users: BTreeMap<String, String>,
    /// Usernames that may use `Sudo`.
    pub(super) admins: BTreeSet<String>,
    /// `_gitlab_session` value → username.
    pub(super) sessions: BTreeMap<String, String>,
    pub(super) projects: Vec<Project>,
    pub(super) jobs: BTreeMap<u64, JobRecord>,
    /// Default `per_page` for the list endpoints.
    pub(super) per_page: usize,
    /// `http://127.0.0.1:PORT`, for `web_url` and the `Link` header.
    pub(super) base_url: String,
    /// GitLab's rule: job tokens only on the routes that allow them (`job_token_allowed`).
    pub(super) gitlab_job_token_rules: bool,
    /// Archive routes answer from object storage (see `artifacts`), not with the marker.
    pub(super) archives_in_store: bool,
    /// Job id → the object key of its archive, chosen once when the archive appears.
    pub(super) archive_keys: BTreeMap<u64, String>,
}

/// The running-job token for job `id`.
pub(super) fn job_token(id: u64) -> String {
    format!("job-token-{id}")
}

impl State {
    /// Check a credential. No credential is anonymous; one that matches nothing is 401,
    /// whatever project it is used on.
    pub(super) fn authenticate(&self, credential: Option<&Credential>) -> Result<Caller, ApiError> {
        let Some(credential) = credential else {
            return Ok(Caller::Anonymous);
        };
        let (personal, job) = match credential {
            Credential::Personal(t) | Credential::OAuth(t) => (Some(t), None),
            Credential::Job(t) => (None, Some(t)),
            Credential::Bearer(t) => (Some(t), Some(t)),
            Credential::Session(cookie) => {
                return self
                    .sessions
                    .get(cookie)
                    .map(|name| Caller::User(name.clone()))
                    .ok_or(ApiError::Unauthorized);
            }
        };
        if let Some(username) = personal.and_then(|t| self.users.get(t)) {
            return Ok(Caller::User(username.clone()));
        }
        job.and_then(|t| self.running_job_for_token(t))
            .map(|spec| Caller::Job {
                project_id: spec.project_id,
            })
            .ok_or(ApiError::Unauthorized)
    }

    /// Apply `Sudo` (a username or numeric user id) to an authenticated caller, as GitLab
    /// does: only an admin's token may, and the request then acts as that user.
    pub(super) fn sudo(
        &self,
        caller: Caller,
        credential: Option<&Credential>,
        sudo: Option<&str>,
    ) -> Result<Caller, ApiError> {
        let Some(target) = sudo else {
            return Ok(caller);
        };
        let by_token = matches!(
            credential,
            Some(Credential::Personal(_) | Credential::OAuth(_) | Credential::Bearer(_))
        );
        match caller {
            Caller::Anonymous => Err(ApiError::Unauthorized),
            Caller::User(_) if !by_token => Err(ApiError::SudoNeedsToken),
            Caller::Job { .. } => Err(ApiError::SudoNeedsToken),
            Caller::User(name) if !self.admins.contains(&name) => Err(ApiError::SudoNotAdmin),
            Caller::User(_) => {
                // Users are numbered by username order, from 1, when named by id.
                let names = self.usernames();
                let by_id = target
                    .parse::<usize>()
                    .ok()
                    .and_then(|id| names.get(id.checked_sub(1)?).copied());
                names
                    .iter()
                    .find(|n| n.as_str() == target)
                    .copied()
                    .or(by_id)
                    .map(|n| Caller::User(n.clone()))
                    .ok_or(ApiError::UserNotFound)
            }
        }
    }

    /// Every username (of a token or a session), sorted: user id `n` is the `n`th, from 1.
    pub(super) fn usernames(&self) -> Vec<&String> {
        let mut names: Vec<&String> = self.users.values().chain(self.sessions.values()).collect();
        names.sort();
        names.dedup();
        names
    }

    fn running_job_for_token(&self, token: &str) -> Option<&JobSpec> {
        let id: u64 = token.strip_prefix("job-token-")?.parse().ok()?;
        let record = self.jobs.get(&id)?;
        (record.spec.status == JobStatus::Running && job_token(id) == token).then_some(&record.spec)
    }

    /// The project named by `key` (a decoded numeric id or full path) if `caller` may read
    /// it; otherwise 404, never 403, so private projects do not leak their existence.
    pub(super) fn readable_project(
        &self,
        caller: &Caller,
        key: &str,
    ) -> Result<&Project, ApiError> {
        let project = match key.parse::<u64>() {
            Ok(id) if key.bytes().all(|b| b.is_ascii_digit()) => {
                self.projects.iter().find(|p| p.id == id)
            }
            _ => self.projects.iter().find(|p| p.path == key),
        }
        .ok_or(ApiError::ProjectNotFound)?;
        let readable = match caller {
            Caller::Anonymous => project.visibility == Visibility::Public,
            Caller::User(name) => {
                project.visibility == Visibility::Public || project.members.contains(name)
            }
            Caller::Job { project_id } => *project_id == project.id,
        };
        if readable {
            Ok(project)
        } else {
            Err(ApiError::ProjectNotFound)
        }
    }

    /// The id of the project named by `key` if `caller` may run job actions on it: a
    /// member with a personal token. Readable but not writable is 403.
    pub(super) fn writable_project(&self, caller: &Caller, key: &str) -> Result<u64, ApiError> {
        if *caller == Caller::Anonymous {
            return Err(ApiError::Unauthorized);
        }
        let project = self.readable_project(caller, key)?;
        match caller {
            Caller::User(name) if project.members.contains(name) => Ok(project.id),
            _ => Err(ApiError::Forbidden),
        }
    }

    /// Job `job_id` if it belongs to `project_id`.
    pub(super) fn job_in(&self, project_id: u64, job_id: u64) -> Result<&JobRecord, ApiError> {
        self.jobs
            .get(&job_id)
            .filter(|r| r.spec.project_id == project_id)
            .ok_or(ApiError::JobNotFound)
    }

    fn job_in_mut(&mut self, project_id: u64, job_id: u64) -> Result<&mut JobRecord, ApiError> {
        self.jobs
            .get_mut(&job_id)
            .filter(|r| r.spec.project_id == project_id)
            .ok_or(ApiError::JobNotFound)
    }

    /// Whether `project_id` has a pipeline `pipeline_id` (that is, a job in it).
    pub(super) fn has_pipeline(&self, project_id: u64, pipeline_id: u64) -> bool {
        self.jobs
            .values()
            .any(|r| r.spec.project_id == project_id && r.spec.pipeline_id == pipeline_id)
    }

    /// The project's jobs (of one pipeline, if given) whose status is in `scopes` (all if
    /// empty), newest (highest id) first.
    pub(super) fn list_jobs(
        &self,
        project_id: u64,
        pipeline_id: Option<u64>,
        scopes: &[JobStatus],
    ) -> Vec<&JobRecord> {
        self.jobs
            .values()
            .rev()
            .filter(|r| r.spec.project_id == project_id)
            .filter(|r| pipeline_id.is_none_or(|p| r.spec.pipeline_id == p))
            .filter(|r| scopes.is_empty() || scopes.contains(&r.spec.status))
            .collect()
    }

    /// Cancel: created, pending, running and manual jobs become canceled; others are
    /// returned unchanged (GitLab answers 201 either way).
    pub(super) fn cancel(&mut self, project_id: u64, job_id: u64) -> Result<u64, ApiError> {
        let record = self.job_in_mut(project_id, job_id)?;
        if matches!(
            record.spec.status,
            JobStatus::Created | JobStatus::Pending | JobStatus::Running | JobStatus::Manual
        ) {
            record.spec.status = JobStatus::Canceled;
        }
        Ok(job_id)
    }

    /// Retry: a new pending job (next free id) with the same name, ref, stage, pipeline
    /// and project, no archive and no log yet. Returns the new job's id.
    pub(super) fn retry(&mut self, project_id: u64, job_id: u64) -> Result<u64, ApiError> {
        let old = &self.job_in(project_id, job_id)?.spec;
        if !old.status.is_finished() {
            return Err(ApiError::NotRetryable);
        }
        let new_id = self.jobs.keys().next_back().map_or(1, |max| max + 1);
        let mut spec = JobSpec::new(
            new_id,
            project_id,
            &old.name,
            &old.ref_name,
            JobStatus::Pending,
        )
        .pipeline(old.pipeline_id);
        spec.stage = old.stage.clone();
        spec.tag = old.tag;
        spec.has_trace = false;
        self.insert(spec);
        Ok(new_id)
    }

    /// Erase: remove archive and log from a finished job that has either.
    pub(super) fn erase(&mut self, project_id: u64, job_id: u64) -> Result<u64, ApiError> {
        let record = self.job_in_mut(project_id, job_id)?;
        let spec = &mut record.spec;
        if !spec.status.is_finished() || !(spec.has_archive || spec.has_trace) {
            return Err(ApiError::NotErasable);
        }
        spec.has_archive = false;
        spec.archive_size = 0;
        spec.has_trace = false;
        spec.trace.clear();
        record.erased = true;
        self.archive_keys.remove(&job_id);
        Ok(job_id)
    }

    /// Play: a manual job becomes pending.
    pub(super) fn play(&mut self, project_id: u64, job_id: u64) -> Result<u64, ApiError> {
        let spec = &mut self.job_in_mut(project_id, job_id)?.spec;
        if spec.status != JobStatus::Manual {
            return Err(ApiError::Unplayable);
        }
        spec.status = JobStatus::Pending;
        Ok(job_id)
    }

    /// Keep artifacts: clear the expiry of a job that has an archive.
    pub(super) fn keep_artifacts(&mut self, project_id: u64, job_id: u64) -> Result<u64, ApiError> {
        let record = self.job_in_mut(project_id, job_id)?;
        if !record.spec.has_archive {
            return Err(ApiError::NotFound);
        }
        record.artifacts_kept = true;
        Ok(job_id)
    }

    /// Delete artifacts: drop the archive of a job that has one.
    pub(super) fn delete_artifacts(
        &mut self,
        project_id: u64,
        job_id: u64,
    ) -> Result<(), ApiError> {
        let spec = &mut self.job_in_mut(project_id, job_id)?.spec;
        if !spec.has_archive {
            return Err(ApiError::NotFound);
        }
        spec.has_archive = false;
        spec.archive_size = 0;
        self.archive_keys.remove(&job_id);
        Ok(())
    }

    /// Give every job with an archive its object key (once), and forget the keys of jobs
    /// that lost theirs. Called after any change to the jobs.
    pub(super) fn sync_archive_keys(&mut self) {
        let jobs = &self.jobs;
        self.archive_keys
            .retain(|id, _| jobs.get(id).is_some_and(|r| r.spec.has_archive));
        for record in self.jobs.values() {
            let spec = &record.spec;
            if spec.has_archive && !self.archive_keys.contains_key(&spec.id) {
                let key = super::artifacts::final_store_path(spec.project_id);
                self.archive_keys.insert(spec.id, key);
            }
        }
    }

    /// The object key of job `job_id`'s archive if it can be downloaded (present, not
    /// expired); otherwise GitLab's 404.
    pub(super) fn downloadable_archive(&self, job_id: u64) -> Result<String, ApiError> {
        let spec = &self.jobs.get(&job_id).ok_or(ApiError::JobNotFound)?.spec;
        if !spec.has_archive || spec.archive_expired {
            return Err(ApiError::NotFound);
        }
        self.archive_keys
            .get(&job_id)
            .cloned()
            .ok_or(ApiError::NotFound)
    }

    /// GitLab's by-ref rule: the newest pipeline of `ref_name` whose status is success,
    /// and in it the job called `name` with a downloadable archive. A newer pipeline that
    /// is not successful hides older ones; a successful one without the job is 404.
    pub(super) fn latest_successful_job_for_ref(
        &self,
        project_id: u64,
        ref_name: &str,
        name: &str,
    ) -> Result<u64, ApiError> {
        let pipeline = self
            .jobs
            .values()
            .filter(|r| r.spec.project_id == project_id && r.spec.ref_name == ref_name)
            .map(|r| r.spec.pipeline_id)
            .collect::<BTreeSet<u64>>()
            .into_iter()
            .rev()
            .find(|p| self.pipeline_status(project_id, *p) == JobStatus::Success)
            .ok_or(ApiError::NotFound)?;
        self.list_jobs(project_id, Some(pipeline), &[])
            .into_iter()
            .find(|r| r.spec.name == name && r.spec.has_archive && !r.spec.archive_expired)
            .map(|r| r.spec.id)
            .ok_or(ApiError::NotFound)
    }

    /// Add or replace a job.
    pub(super) fn insert(&mut self, spec: JobSpec) {
        let record = JobRecord {
            spec,
            erased: false,
            artifacts_kept: false,
        };
        self.jobs.insert(record.spec.id, record);
        self.sync_archive_keys();
    }
}
