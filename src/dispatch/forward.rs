//! Requests the jobs backend answers: forwarded as they came, job metadata GETs through
//! the per-caller cache, and job mutations, after which the cache drops what it knew of the
//! job (reading the job JSON of the answer for the project's numeric id).

use http::{header, Request, Response};
use hyper::body::Incoming;

use super::AppState;
use crate::error::GatewayError;
use crate::http_util::body::{self, Body};
use crate::request::context::RequestContext;
use crate::request::credentials;
use crate::request::route::ProjectRef;
use crate::upstream::cache::{self, Scope};
use crate::upstream::keyed::KeyedGet;

impl AppState {
    pub(super) async fn forward(
        &self,
        request: Request<Incoming>,
        ctx: &RequestContext,
    ) -> Result<Response<Body>, GatewayError> {
        let mut response = self.upstream.forward(request, ctx).await?;
        self.upstream.prepare_response(response.headers_mut(), ctx);
        Ok(response.map(body::boxed))
    }

    /// A job metadata GET, through the per-caller cache when it can be keyed (see
    /// [`crate::upstream::keyed`]); otherwise forwarded as it is, with its body if it has
    /// one, and not cached (`X-Cache: BYPASS`).
    pub(super) async fn cached(
        &self,
        request: Request<Incoming>,
        ctx: &RequestContext,
        scope: Scope,
    ) -> Result<Response<Body>, GatewayError> {
        let query = credentials::normalize_query(request.uri().query());
        // A GET body may carry parameters (Rails reads form bodies on any method), and a
        // keyed GET never sends one: such a request goes as it came, uncached.
        let has_body = !http_body::Body::is_end_stream(request.body());
        let bypass = ctx
            .credentials
            .unkeyable()
            .or(has_body.then_some("a GET with a body"))
            .or(query
                .is_none()
                .then_some("a query that cannot be normalised"));
        let Some(query) = query.filter(|_| bypass.is_none()) else {
            tracing::debug!(why = bypass, "metadata cache bypassed");
            let mut response = self
                .cache
                .bypass(self.upstream.forward(request, ctx))
                .await?;
            self.upstream.prepare_response(response.headers_mut(), ctx);
            return Ok(response);
        };
        let get = KeyedGet::new(
            request.uri().path(),
            query,
            &ctx.credentials,
            request.headers().get_all(header::ACCEPT_ENCODING),
            &ctx.forwarding,
        );
        drop(request);
        let fetch = || self.upstream.send_keyed(&get);
        let (mut response, _status) = self.cache.get_or_fetch(get.key(scope), fetch).await?;
        self.upstream.prepare_response(response.headers_mut(), ctx);
        Ok(response)
    }

    /// cancel/retry/erase/play/keep/delete-artifacts: forward, then on success drop what
    /// the cache holds for the job and the project's job lists.
    pub(super) async fn mutate(
        &self,
        request: Request<Incoming>,
        ctx: &RequestContext,
        project: &ProjectRef,
        job_id: u64,
    ) -> Result<Response<Body>, GatewayError> {
        let response = self.upstream.forward(request, ctx).await;
        // Before the answer is read: the job's archive may be gone for everyone now (also
        // when the answer did not come: the mutation may have happened).
        if response.as_ref().map_or(true, |r| r.status().is_success()) {
            self.artifacts.source.locator.invalidate_job(job_id);
        }
        let response = response?;
        if !response.status().is_success() {
            let mut response = response.map(body::boxed);
            self.upstream.prepare_response(response.headers_mut(), ctx);
            return Ok(response);
        }
        // The job JSON in the answer tells the project's numeric id, which the cache needs
        // when lists were cached under the other spelling of the project. The answer is one
        // small job object; a larger body is streamed and the cache drops all job lists.
        let (mut parts, incoming) = response.into_parts();
        let limit = self.config.cache.max_entry_bytes.max(64 * 1024);
        let body = match cache::read_bounded(incoming, limit, &parts.headers).await {
            Ok(bytes) => {
                self.cache
                    .invalidate_job(project, job_id, cache::project_id_of(&bytes));
                body::full(bytes)
            }
            Err(cache::Bounded::TooLarge(body)) => {
                self.cache.invalidate_job(project, job_id, None);
                body
            }
            Err(cache::Bounded::Failed(error)) => {
                // The mutation may have happened; forget what we knew either way.
                self.cache.invalidate_job(project, job_id, None);
                return Err(error);
            }
        };
        self.upstream.prepare_response(&mut parts.headers, ctx);
        Ok(Response::from_parts(parts, body))
    }
}
