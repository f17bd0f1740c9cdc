//! The endpoints the gateway answers itself from object storage: the archive of a job, the
//! archive of the latest successful job of a name on a ref, and a finished job's log.
//!
//! Each one authorises first by asking the jobs backend with the caller's own credentials;
//! the backend's refusal is the answer. In storage mode the question is the job
//! ([`crate::upstream::jobs`]) and the archive is at `storage.archive_key`; in upstream
//! mode it is the archive route itself, whose answer names the archive's URL
//! ([`crate::upstream::locate`]). Then the bytes come from there ([`object`]).
//!
//! In upstream mode the job log is the backend's answer instead, with `Range` and `HEAD`
//! added ([`trace`]).

pub mod content;
pub mod entry;
pub mod object;
pub mod trace;

use std::sync::Arc;

use http::request::Parts;
use http::{HeaderValue, Response};

use crate::app::AppState;
use crate::body::Body;
use crate::config::ArtifactSource;
use crate::context::RequestContext;
use crate::error::GatewayError;
use crate::metrics::ReadKind;
use crate::routes::ProjectRef;
use crate::storage::{Location, StorageError};
use crate::upstream::jobs::{Fetched, Job, Jobs};
use crate::upstream::locate::Located;
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

    /// Where the archive a request names is, as the caller may see it, and the backend's
    /// redirect to it when it sent one. `again`: the location given before was refused by
    /// storage, ask the backend anew (upstream mode).
    pub(crate) async fn archive_location(
        &self,
        ctx: &RequestContext,
        project: &ProjectRef,
        selector: JobSelector<'_>,
        again: bool,
    ) -> Result<Fetched<(Location, Option<HeaderValue>)>, GatewayError> {
        if self.config.artifacts.source == ArtifactSource::Upstream {
            let (locator, upstream, artifacts) =
                (&self.locator, &self.upstream, &self.config.artifacts);
            let located = if again {
                locator
                    .relocate(upstream, artifacts, ctx, project, selector)
                    .await?
            } else {
                locator
                    .locate(upstream, artifacts, ctx, project, selector)
                    .await?
            };
            return Ok(match located {
                Located::Found(found) => {
                    Fetched::Found((found.location.clone(), found.redirect.clone()))
                }
                Located::Refused(response) => Fetched::Refused(response),
            });
        }
        let job = match self.find_job(ctx, project, selector).await? {
            Fetched::Found(job) => job,
            Fetched::Refused(response) => return Ok(Fetched::Refused(response)),
        };
        if !job.has_archive() {
            return Err(GatewayError::NotFound("404 Not Found"));
        }
        let project_id = match self.numeric_project(ctx, project, &job).await? {
            Fetched::Found(id) => id,
            Fetched::Refused(response) => return Ok(Fetched::Refused(response)),
        };
        tracing::Span::current().record("job_id", job.id);
        Ok(Fetched::Found((
            self.storage.archive_path(project_id, job.id),
            None,
        )))
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
        // A located URL that storage refuses (expired) is located once more.
        for again in [false, true] {
            let (location, redirect) =
                match self.archive_location(ctx, project, selector, again).await? {
                    Fetched::Found(found) => found,
                    Fetched::Refused(response) => return Ok(response),
                };
            if parts.method == http::Method::GET {
                if let Some(redirect) = redirect.filter(|_| self.config.artifacts.redirect) {
                    return object::redirect(redirect);
                }
                if let Some(url) = self.storage.presigned_url(&location).await {
                    let url = HeaderValue::from_str(&url?).map_err(|_| {
                        GatewayError::Internal("presigned URL is not a header value".into())
                    })?;
                    return object::redirect(url);
                }
            }
            match object::serve(
                &self.storage,
                &location,
                &parts.method,
                &parts.headers,
                &ARCHIVE,
            )
            .await
            {
                Err(StorageError::Expired) if !again => continue,
                Ok(Some(response)) => return Ok(response),
                Ok(None) => return Err(GatewayError::NotFound("404 Not Found")),
                Err(error) => return Err(error.into()),
            }
        }
        Err(StorageError::Expired.into())
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
