//! The endpoints the gateway answers itself from object storage: the archive of a job, the
//! archive of the latest successful job of a name on a ref, and a finished job's log.
//!
//! Each one authorises first by asking the jobs backend for the job with the caller's own
//! credentials ([`crate::upstream::jobs`]); the backend's refusal is the answer. Then the
//! bytes come from storage ([`object`]).
//!
//! With `artifacts.source = "upstream"` the job log is the backend's answer instead, with
//! `Range` and `HEAD` added ([`trace`]).

pub mod content;
pub mod entry;
pub mod object;
pub mod trace;

use std::sync::Arc;

use http::request::Parts;
use http::Response;

use crate::app::AppState;
use crate::body::Body;
use crate::context::RequestContext;
use crate::error::GatewayError;
use crate::metrics::ReadKind;
use crate::routes::ProjectRef;
use crate::upstream::jobs::{Fetched, Job, Jobs};
use object::Presentation;

const ARCHIVE: Presentation = Presentation {
    kind: ReadKind::Archive,
    content_type: "application/zip",
    disposition: Some("attachment; filename=\"artifacts.zip\"; filename*=UTF-8''artifacts.zip"),
};

const TRACE: Presentation = Presentation {
    kind: ReadKind::Trace,
    content_type: "text/plain; charset=utf-8",
    disposition: None,
};

/// How a request names its job: by id, or as the newest successful job of a name on a ref.
#[derive(Debug, Clone, Copy)]
pub enum JobSelector<'a> {
    Id(u64),
    LatestOnRef {
        ref_name: &'a str,
        job_name: &'a str,
    },
}

/// A served endpoint's outcome: a response, or "the backend should answer this" (a live log).
pub enum Outcome {
    Response(Response<Body>),
    Forward,
}

impl From<Response<Body>> for Outcome {
    fn from(response: Response<Body>) -> Self {
        Outcome::Response(response)
    }
}

impl AppState {
    pub(crate) fn jobs<'a>(&'a self, ctx: &'a RequestContext) -> Jobs<'a> {
        Jobs {
            upstream: &self.upstream,
            cache: &self.cache,
            ctx,
        }
    }

    /// The job's numeric project id: from its pipeline, else the project named numerically,
    /// else asked of the backend.
    pub(crate) async fn numeric_project(
        &self,
        ctx: &RequestContext,
        project: &ProjectRef,
        job: &Job,
    ) -> Result<Fetched<u64>, GatewayError> {
        match job.project_id() {
            Some(id) => Ok(Fetched::Found(id)),
            None => self.jobs(ctx).project_id(project).await,
        }
    }

    /// The job a request names, as the caller may see it.
    pub(crate) async fn find_job(
        &self,
        ctx: &RequestContext,
        project: &ProjectRef,
        selector: JobSelector<'_>,
    ) -> Result<Fetched<Arc<Job>>, GatewayError> {
        let jobs = self.jobs(ctx);
        Ok(match selector {
            JobSelector::Id(job_id) => match jobs.job(project, job_id).await? {
                Fetched::Found(job) => Fetched::Found(Arc::new(job)),
                Fetched::Refused(response) => Fetched::Refused(response),
            },
            JobSelector::LatestOnRef { ref_name, job_name } => {
                let max_pages = self.config.artifacts.by_ref_max_pages;
                jobs.latest_successful(&self.refs, project, ref_name, job_name, max_pages)
                    .await?
            }
        })
    }

    /// `GET|HEAD /projects/:id/jobs/:job_id/artifacts` and
    /// `/projects/:id/jobs/artifacts/:ref_name/download?job=NAME`
    pub async fn serve_archive(
        &self,
        parts: &Parts,
        ctx: &RequestContext,
        project: &ProjectRef,
        selector: JobSelector<'_>,
    ) -> Result<Response<Body>, GatewayError> {
        let job = match self.find_job(ctx, project, selector).await? {
            Fetched::Found(job) => job,
            Fetched::Refused(response) => return Ok(response),
        };
        if !job.has_archive() {
            return Err(GatewayError::NotFound("404 Not Found"));
        }
        let project_id = match self.numeric_project(ctx, project, &job).await? {
            Fetched::Found(id) => id,
            Fetched::Refused(response) => return Ok(response),
        };
        tracing::Span::current().record("job_id", job.id);
        let path = self.storage.archive_path(project_id, job.id);
        if parts.method == http::Method::GET {
            if let Some(url) = self.storage.presigned_url(&path).await {
                return object::redirect(&url?);
            }
        }
        object::serve(
            &self.storage,
            &path,
            &parts.method,
            &parts.headers,
            &ARCHIVE,
        )
        .await?
        .ok_or(GatewayError::NotFound("404 Not Found"))
    }

    /// `GET|HEAD /projects/:id/jobs/:job_id/trace`: a finished job's log from storage; a
    /// running job's live log, or a log missing from storage, from the backend.
    pub async fn serve_trace(
        &self,
        parts: &Parts,
        ctx: &RequestContext,
        project: &ProjectRef,
        job_id: u64,
    ) -> Result<Outcome, GatewayError> {
        let job = match self.find_job(ctx, project, JobSelector::Id(job_id)).await? {
            Fetched::Found(job) => job,
            Fetched::Refused(response) => return Ok(response.into()),
        };
        if !job.is_finished() {
            return Ok(Outcome::Forward);
        }
        let project_id = match self.numeric_project(ctx, project, &job).await? {
            Fetched::Found(id) => id,
            Fetched::Refused(response) => return Ok(response.into()),
        };
        let path = self.storage.trace_path(project_id, job_id);
        Ok(
            match object::serve(&self.storage, &path, &parts.method, &parts.headers, &TRACE).await?
            {
                Some(response) => Outcome::Response(response),
                None => Outcome::Forward,
            },
        )
    }
}
