//! Where a request's archive (and a finished job's log) is: the archive *source*.
//!
//! Both sources authorise by asking the jobs backend with the caller's own credentials, and
//! the backend's refusal is the answer ([`Stop::Refused`]).
//! - `storage`: the job is asked for ([`crate::upstream::jobs`]); a job the caller may see
//!   with an archive is at `storage.archive_key` (its log at `storage.trace_key`), rendered
//!   with the job's numeric project id.
//! - `upstream`: the backend's archive route itself is asked ([`crate::upstream::locate`]);
//!   its answer names the archive's URL, or is the archive.

use std::sync::Arc;

use http::HeaderValue;

use crate::config::{ArtifactSource, ArtifactsConfig, Config};
use crate::error::{GatewayError, Stop};
use crate::metrics::Metrics;
use crate::request::route::{JobRef, JobSelector, ProjectRef};
use crate::storage::{Location, Storage};
use crate::upstream::jobs::{Job, Jobs, RefCache};
use crate::upstream::locate::Locator;

/// Where an archive is, and the backend's redirect to it when it sent one.
pub struct ArchiveAt {
    pub location: Location,
    pub redirect: Option<HeaderValue>,
}

/// Which of a job's objects in storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Object {
    Archive,
    Trace,
}

pub struct Source {
    settings: ArtifactsConfig,
    /// Storage mode: by-ref resolutions, per caller.
    refs: RefCache,
    /// Upstream mode: where archives are, as the backend said.
    pub(crate) locator: Locator,
}

impl Source {
    pub fn new(config: &Config, metrics: Arc<Metrics>) -> Self {
        Self {
            settings: config.artifacts.clone(),
            refs: RefCache::new(config.artifacts.by_ref_ttl),
            locator: Locator::new(&config.cache, metrics),
        }
    }

    pub fn is_upstream(&self) -> bool {
        self.settings.source == ArtifactSource::Upstream
    }

    /// `artifacts.redirect`: downloads answered with the backend's own redirect.
    pub fn redirects(&self) -> bool {
        self.settings.redirect
    }

    /// Where the archive a request names is, as the caller may see it. `again`: the
    /// location given before was refused by storage, ask the backend anew (upstream mode).
    pub async fn archive(
        &self,
        storage: &Storage,
        jobs: &Jobs<'_>,
        job: JobRef<'_>,
        again: bool,
    ) -> Result<ArchiveAt, Stop> {
        if self.is_upstream() {
            let (upstream, ctx, settings) = (jobs.upstream, jobs.ctx, &self.settings);
            let found = self
                .locator
                .locate(upstream, settings, ctx, job.project, job.selector, again)
                .await?;
            return Ok(ArchiveAt {
                location: found.location.clone(),
                redirect: found.redirect.clone(),
            });
        }
        let location = self
            .stored(storage, jobs, job, Object::Archive)
            .await?
            .ok_or(GatewayError::NotFound("404 Not Found"))?;
        Ok(ArchiveAt {
            location,
            redirect: None,
        })
    }

    /// The numeric project and job ids of the archive `job` names, as the caller may see
    /// it: asked exactly as for a download (in upstream mode the archive route is asked
    /// too, since that is where access to the archive is decided), for a link to it.
    pub async fn identify(
        &self,
        storage: &Storage,
        jobs: &Jobs<'_>,
        job: JobRef<'_>,
    ) -> Result<(u64, u64), Stop> {
        let project = job.project;
        if self.is_upstream() {
            self.archive(storage, jobs, job, false).await?;
            let job_id = match job.selector {
                JobSelector::Id(id) => id,
                JobSelector::LatestOnRef { .. } => self.job(jobs, job).await?.id,
            };
            return Ok((jobs.project_id(project).await?, job_id));
        }
        let found = self.job(jobs, job).await?;
        if !found.has_archive() {
            return Err(GatewayError::NotFound("404 Not Found").into());
        }
        let project_id = match found.project_id() {
            Some(id) => id,
            None => jobs.project_id(project).await?,
        };
        Ok((project_id, found.id))
    }

    /// Where the archive of job `job_id` of project `project_id` is, for a link: the
    /// storage key, or in upstream mode the backend's archive route asked as `jobs`' caller
    /// (the service token, or anonymous).
    pub async fn linked_archive(
        &self,
        storage: &Storage,
        jobs: &Jobs<'_>,
        project: &ProjectRef,
        job_id: u64,
        again: bool,
    ) -> Result<Location, Stop> {
        if self.is_upstream() {
            let job = JobRef::new(project, JobSelector::Id(job_id));
            return Ok(self.archive(storage, jobs, job, again).await?.location);
        }
        let ProjectRef::Id(project_id) = project else {
            return Err(GatewayError::Internal("a link names its project by id".into()).into());
        };
        Ok(storage.archive_path(*project_id, job_id))
    }

    /// Where a finished job's log is in storage; `None` while the job runs (its live log is
    /// the backend's).
    pub async fn finished_trace(
        &self,
        storage: &Storage,
        jobs: &Jobs<'_>,
        project: &ProjectRef,
        job_id: u64,
    ) -> Result<Option<Location>, Stop> {
        let job = JobRef::new(project, JobSelector::Id(job_id));
        self.stored(storage, jobs, job, Object::Trace).await
    }

    /// The steps before a stored object is read: the job as the caller may see it, whether
    /// it has the object, the project's numeric id, and the object's key.
    async fn stored(
        &self,
        storage: &Storage,
        jobs: &Jobs<'_>,
        job: JobRef<'_>,
        object: Object,
    ) -> Result<Option<Location>, Stop> {
        let project = job.project;
        let job = self.job(jobs, job).await?;
        match object {
            Object::Archive if !job.has_archive() => return Ok(None),
            Object::Trace if !job.is_finished() => return Ok(None),
            _ => {}
        }
        // From the job's pipeline, else the project named numerically, else asked.
        let project_id = match job.project_id() {
            Some(id) => id,
            None => jobs.project_id(project).await?,
        };
        tracing::Span::current().record("job_id", job.id);
        Ok(Some(match object {
            Object::Archive => storage.archive_path(project_id, job.id),
            Object::Trace => storage.trace_path(project_id, job.id),
        }))
    }

    /// The job a request names, as the caller may see it.
    async fn job(&self, jobs: &Jobs<'_>, job: JobRef<'_>) -> Result<Arc<Job>, Stop> {
        let project = job.project;
        match job.selector {
            JobSelector::Id(job_id) => Ok(Arc::new(jobs.job(project, job_id).await?)),
            JobSelector::LatestOnRef { ref_name, job_name } => {
                let max_pages = self.settings.by_ref_max_pages;
                jobs.latest_successful(&self.refs, project, ref_name, job_name, max_pages)
                    .await
            }
        }
    }
}
