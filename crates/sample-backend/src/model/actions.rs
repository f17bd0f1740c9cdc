//! GitLab's job actions as state transitions: cancel, retry, erase, play, keep and delete
//! artifacts, each with GitLab's rules on which jobs they apply to.

use super::{JobSpec, JobStatus, State};
use crate::error::ApiError;

impl State {
    /// Cancel: created, pending, running and manual jobs become canceled; others are
    /// returned unchanged (GitLab answers 201 either way).
    pub(crate) fn cancel(&mut self, project_id: u64, job_id: u64) -> Result<u64, ApiError> {
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
    pub(crate) fn retry(&mut self, project_id: u64, job_id: u64) -> Result<u64, ApiError> {
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
    pub(crate) fn erase(&mut self, project_id: u64, job_id: u64) -> Result<u64, ApiError> {
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
    pub(crate) fn play(&mut self, project_id: u64, job_id: u64) -> Result<u64, ApiError> {
        let spec = &mut self.job_in_mut(project_id, job_id)?.spec;
        if spec.status != JobStatus::Manual {
            return Err(ApiError::Unplayable);
        }
        spec.status = JobStatus::Pending;
        Ok(job_id)
    }

    /// Keep artifacts: clear the expiry of a job that has an archive.
    pub(crate) fn keep_artifacts(&mut self, project_id: u64, job_id: u64) -> Result<u64, ApiError> {
        let record = self.job_in_mut(project_id, job_id)?;
        if !record.spec.has_archive {
            return Err(ApiError::NotFound);
        }
        record.artifacts_kept = true;
        Ok(job_id)
    }

    /// Delete artifacts: drop the archive of a job that has one.
    pub(crate) fn delete_artifacts(
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
}
