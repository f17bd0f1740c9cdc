//! The backend's world as data: projects, job records and the [`State`] that holds them,
//! with the lookups over it (a job in a project, the lists, archives and their object
//! keys) and adding a job.

use std::collections::{BTreeMap, BTreeSet};

use super::{JobSpec, JobStatus, Visibility};
use crate::error::ApiError;

/// A project: numeric id, full path ("group/app"), visibility and member usernames.
#[derive(Debug, Clone)]
pub(crate) struct Project {
    pub(crate) id: u64,
    pub(crate) path: String,
    pub(crate) visibility: Visibility,
    pub(crate) members: Vec<String>,
}

/// A job plus what GitLab's actions leave behind that a [`JobSpec`] does not hold.
#[derive(Debug, Clone)]
pub(crate) struct JobRecord {
    pub(crate) spec: JobSpec,
    /// Set by erase; shows as `erased_at`.
    pub(crate) erased: bool,
    /// Set by artifacts/keep; `artifacts_expire_at` becomes null.
    pub(crate) artifacts_kept: bool,
}

/// Everything the backend knows. Guarded by one mutex in [`crate::SampleBackend`].
#[derive(Debug, Default)]
pub(crate) struct State {
    /// Personal access token → username.
    pub(crate) users: BTreeMap<String, String>,
    /// Usernames that may use `Sudo`.
    pub(crate) admins: BTreeSet<String>,
    /// `_gitlab_session` value → username.
    pub(crate) sessions: BTreeMap<String, String>,
    pub(crate) projects: Vec<Project>,
    pub(crate) jobs: BTreeMap<u64, JobRecord>,
    /// Default `per_page` for the list endpoints.
    pub(crate) per_page: usize,
    /// `http://127.0.0.1:PORT`, for `web_url` and the `Link` header.
    pub(crate) base_url: String,
    /// GitLab's rule: job tokens only on the routes that allow them (`job_token_allowed`).
    pub(crate) gitlab_job_token_rules: bool,
    /// Archive routes answer from object storage (see `artifacts`), not with the marker.
    pub(crate) archives_in_store: bool,
    /// Job id → the object key of its archive, chosen once when the archive appears.
    pub(crate) archive_keys: BTreeMap<u64, String>,
}

impl State {
    /// Job `job_id` if it belongs to `project_id`.
    pub(crate) fn job_in(&self, project_id: u64, job_id: u64) -> Result<&JobRecord, ApiError> {
        self.jobs
            .get(&job_id)
            .filter(|r| r.spec.project_id == project_id)
            .ok_or(ApiError::JobNotFound)
    }

    pub(super) fn job_in_mut(
        &mut self,
        project_id: u64,
        job_id: u64,
    ) -> Result<&mut JobRecord, ApiError> {
        self.jobs
            .get_mut(&job_id)
            .filter(|r| r.spec.project_id == project_id)
            .ok_or(ApiError::JobNotFound)
    }

    /// Whether `project_id` has a pipeline `pipeline_id` (that is, a job in it).
    pub(crate) fn has_pipeline(&self, project_id: u64, pipeline_id: u64) -> bool {
        self.jobs
            .values()
            .any(|r| r.spec.project_id == project_id && r.spec.pipeline_id == pipeline_id)
    }

    /// The project's jobs (of one pipeline, if given) whose status is in `scopes` (all if
    /// empty), newest (highest id) first.
    pub(crate) fn list_jobs(
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

    /// Give every job with an archive its object key (once), and forget the keys of jobs
    /// that lost theirs. Called after any change to the jobs.
    pub(crate) fn sync_archive_keys(&mut self) {
        let jobs = &self.jobs;
        self.archive_keys
            .retain(|id, _| jobs.get(id).is_some_and(|r| r.spec.has_archive));
        for record in self.jobs.values() {
            let spec = &record.spec;
            if spec.has_archive && !self.archive_keys.contains_key(&spec.id) {
                let key = crate::artifacts::final_store_path(spec.project_id);
                self.archive_keys.insert(spec.id, key);
            }
        }
    }

    /// The object key of job `job_id`'s archive if it can be downloaded (present, not
    /// expired); otherwise GitLab's 404.
    pub(crate) fn downloadable_archive(&self, job_id: u64) -> Result<String, ApiError> {
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
    pub(crate) fn latest_successful_job_for_ref(
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
    pub(crate) fn insert(&mut self, spec: JobSpec) {
        let record = JobRecord {
            spec,
            erased: false,
            artifacts_kept: false,
        };
        self.jobs.insert(record.spec.id, record);
        self.sync_archive_keys();
    }
}
