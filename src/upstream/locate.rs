//! Upstream mode (`artifacts.source = "upstream"`): asking the backend where a job's
//! archive is, with the caller's own credentials, on the backend's archive routes
//! (`GET /projects/:id/jobs/:job_id/artifacts`,
//! `GET /projects/:id/jobs/artifacts/:ref/download?job=NAME`). GitLab's object keys cannot
//! be computed from its API, and these routes take job tokens where the job route does not.
//!
//! - A redirect (`301`, `302`, `303`, `307`, `308`) names the archive's URL: presigned, read
//!   without credentials. Only `http`/`https`, and only `artifacts.allowed_hosts` when set.
//! - A `200` (or `206`: the locate asks for one byte) makes the route itself the archive:
//!   read with ranged GETs on that route, with the caller's credentials. The first
//!   answer's body is dropped unread.
//! - A `4xx` is the caller's answer, passed through; anything else is a `502`.
//!
//! A location is kept per request digest (so per caller, [`super::keyed`]) for at most
//! `cache.ttl`, like job metadata, and one caller's concurrent requests share one locate.
//! A job mutation through the gateway drops that job's locations and every by-ref location
//! for everyone, and a locate in flight meanwhile is not kept, so an erase is seen by the
//! very next request. Refusals are never kept.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use http::{header, HeaderValue, Response, StatusCode, Uri};
use moka::future::Cache;

use super::keyed::KeyedGet;
use super::Upstream;
use crate::config::{ArtifactsConfig, CacheConfig};
use crate::error::{GatewayError, Stop};
use crate::http_util::body::{self, Body};
use crate::metrics::Metrics;
use crate::request::context::RequestContext;
use crate::request::route::{JobSelector, ProjectRef};
use crate::storage::{Location, RemoteObject};

/// Where a located archive is.
pub struct Found {
    pub location: Location,
    /// The backend's `Location` as it sent it, when it redirected (`artifacts.redirect`).
    pub redirect: Option<HeaderValue>,
    /// The job it was located for; `None` for by-ref (any job of the ref).
    job_id: Option<u64>,
}

impl std::fmt::Debug for Found {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The redirect carries the URL's signature.
        write!(f, "Found({})", self.location)
    }
}

/// What the backend answered, before it is kept or shared.
enum Asked {
    Found(Arc<Found>),
    Refused(Refusal),
}

impl Asked {
    fn into_found(self) -> Result<Arc<Found>, Stop> {
        match self {
            Asked::Found(found) => Ok(found),
            Asked::Refused(refusal) => Err(Stop::refused(refusal.to_response())),
        }
    }
}

/// A locate that produced no kept location; shared by every request that waited on it.
enum Unkept {
    /// Found while a mutation happened: served, not kept.
    Raced(Arc<Found>),
    Refused(Refusal),
    Failed(GatewayError),
}

/// Most bytes of a refusal kept to be answered to each waiter (GitLab's are tiny JSON).
const MAX_REFUSAL_BYTES: u64 = 64 * 1024;

/// The backend's `4xx`, buffered so that every waiter of one locate gets it.
struct Refusal {
    status: StatusCode,
    headers: http::HeaderMap,
    body: bytes::Bytes,
}

impl Refusal {
    async fn read(
        response: Response<hyper::body::Incoming>,
        upstream: &Upstream,
        ctx: &RequestContext,
    ) -> Self {
        let (mut parts, incoming) = response.into_parts();
        let status = parts.status;
        // Not the backend's own refusal but storage's, relayed (a proxied download of a
        // missing object), whose XML names bucket and key; or one too large to keep, or
        // cut short. GitLab's JSON for the status instead.
        let own = if is_json(&parts.headers) {
            super::cache::read_bounded(incoming, MAX_REFUSAL_BYTES, &parts.headers)
                .await
                .ok()
        } else {
            None
        };
        let Some(body) = own else {
            let reason = status.canonical_reason().unwrap_or("Error");
            let message = serde_json::json!({ "message": format!("{} {reason}", status.as_u16()) });
            let response = crate::error::json_response(status, &message);
            return Self {
                status,
                headers: response.headers().clone(),
                body: bytes::Bytes::from(message.to_string()),
            };
        };
        upstream.prepare_response(&mut parts.headers, ctx);
        // The body is whole now: its length is the buffer's.
        parts.headers.remove(header::TRANSFER_ENCODING);
        parts.headers.remove(header::CONTENT_LENGTH);
        Self {
            status,
            headers: parts.headers,
            body,
        }
    }

    fn to_response(&self) -> Response<Body> {
        let mut response = Response::new(body::full(self.body.clone()));
        *response.status_mut() = self.status;
        *response.headers_mut() = self.headers.clone();
        response
    }
}

pub struct Locator {
    entries: Option<Cache<[u8; 32], Arc<Found>>>,
    /// Bumped by every invalidation; a locate that sees it move is not kept.
    epoch: AtomicU64,
    metrics: Arc<Metrics>,
}

/// Most locations kept (a few hundred bytes each).
const MAX_ENTRIES: u64 = 100_000;

impl Locator {
    pub fn new(cache: &CacheConfig, metrics: Arc<Metrics>) -> Self {
        let entries = (cache.max_bytes > 0).then(|| {
            Cache::builder()
                .max_capacity(MAX_ENTRIES)
                .time_to_live(cache.ttl)
                .support_invalidation_closures()
                .build()
        });
        Self {
            entries,
            epoch: AtomicU64::new(0),
            metrics,
        }
    }

    /// Where the archive `selector` names is, as the caller may see it. `fresh` skips (and
    /// replaces) a kept location: the one kept was refused by storage.
    pub async fn locate(
        &self,
        upstream: &Upstream,
        artifacts: &ArtifactsConfig,
        ctx: &RequestContext,
        project: &ProjectRef,
        selector: JobSelector<'_>,
        fresh: bool,
    ) -> Result<Arc<Found>, Stop> {
        let (path, pairs, job_id) = archive_route(project, selector);
        let get = KeyedGet::new(&path, pairs, &ctx.credentials, [], &ctx.forwarding);
        let key = get
            .key(super::cache::Scope::Project {
                project: project.clone(),
            })
            .request;
        let entries = self
            .entries
            .as_ref()
            .filter(|_| ctx.credentials.unkeyable().is_none());
        let ask = || async {
            let asked = self
                .ask(upstream, artifacts, ctx, &get, &path, job_id)
                .await;
            if let Ok(Asked::Found(found)) = &asked {
                tracing::debug!(location = %found.location, "archive located");
            }
            asked
        };
        let Some(entries) = entries else {
            return ask().await?.into_found();
        };
        if fresh {
            entries.invalidate(&key).await;
        }
        // One locate at a time per key: a burst of one caller's requests (a page loading
        // many files of one archive) asks the backend once.
        let asked_here = AtomicBool::new(false);
        let load = async {
            asked_here.store(true, Ordering::Relaxed);
            let epoch = self.epoch.load(Ordering::Acquire);
            match ask().await {
                // A mutation while the backend answered: serve this answer, keep none.
                Ok(Asked::Found(found)) if self.epoch.load(Ordering::Acquire) != epoch => {
                    Err(Unkept::Raced(found))
                }
                Ok(Asked::Found(found)) => Ok(found),
                Ok(Asked::Refused(refusal)) => Err(Unkept::Refused(refusal)),
                Err(error) => Err(Unkept::Failed(error)),
            }
        };
        match entries.try_get_with(key, load).await {
            Ok(found) => {
                if !asked_here.load(Ordering::Relaxed) {
                    self.metrics.locate("cached");
                }
                Ok(found)
            }
            Err(unkept) => match &*unkept {
                Unkept::Raced(found) => Ok(Arc::clone(found)),
                Unkept::Refused(refusal) => Err(Stop::refused(refusal.to_response())),
                Unkept::Failed(error) => Err(error.clone().into()),
            },
        }
    }

    async fn ask(
        &self,
        upstream: &Upstream,
        artifacts: &ArtifactsConfig,
        ctx: &RequestContext,
        get: &KeyedGet,
        path: &str,
        job_id: Option<u64>,
    ) -> Result<Asked, GatewayError> {
        // When the route is the archive itself (GitLab's proxy_download, local storage), a
        // plain GET would make it start streaming the whole object from storage, only to be
        // dropped: ask for one byte. A redirect ignores it.
        let mut request = get.request(upstream.uri_for(get.path_and_query())?);
        request
            .headers_mut()
            .insert(header::RANGE, HeaderValue::from_static("bytes=0-0"));
        let response = match upstream.send(request).await {
            Ok(response) => response,
            Err(error) => {
                self.metrics.locate("error");
                return Err(error);
            }
        };
        let status = response.status();
        let redirect = matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308);
        if let (true, Some(location)) = (redirect, response.headers().get(header::LOCATION)) {
            let location = location.clone();
            drop(response);
            let base = upstream.uri_for(path)?.to_string();
            let uri = match followable(&base, &location, artifacts) {
                Ok(uri) => uri,
                Err(error) => {
                    self.metrics.locate("error");
                    return Err(error);
                }
            };
            self.metrics.locate("redirect");
            return Ok(Asked::Found(Arc::new(Found {
                location: Location::Url(Arc::new(RemoteObject::presigned(uri))),
                redirect: Some(location),
                job_id,
            })));
        }
        // 416: an empty object, the route is the archive all the same.
        if matches!(
            status,
            StatusCode::OK | StatusCode::PARTIAL_CONTENT | StatusCode::RANGE_NOT_SATISFIABLE
        ) {
            // The route is the archive; its ETag (GitLab passes storage's) tells versions
            // of a by-ref archive apart in the index cache.
            let etag = response.headers().get(header::ETAG).cloned();
            drop(response);
            let mut headers = get.headers().clone();
            headers.remove(header::ACCEPT);
            let uri = upstream.uri_for(get.path_and_query())?;
            let mut key = format!("{}{path}", upstream.base());
            if let Some(job) = get
                .path_and_query()
                .split_once('?')
                .and_then(|(_, q)| form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == "job"))
            {
                key = format!("{key}?job={}", job.1);
            }
            if let Some(etag) = etag.as_ref().and_then(|e| e.to_str().ok()) {
                key = format!("{key}#{etag}");
            }
            self.metrics.locate("backend");
            return Ok(Asked::Found(Arc::new(Found {
                location: Location::Url(Arc::new(RemoteObject::backend(uri, headers, key))),
                redirect: None,
                job_id,
            })));
        }
        if status.is_client_error() {
            self.metrics.locate("refused");
            return Ok(Asked::Refused(Refusal::read(response, upstream, ctx).await));
        }
        self.metrics.locate("error");
        Err(GatewayError::UpstreamUnavailable(format!(
            "GET {path} answered {status}"
        )))
    }

    /// A mutation of `job_id` succeeded: forget its locations and every by-ref location
    /// (the ref's latest job may be another now), for every caller.
    pub fn invalidate_job(&self, job_id: u64) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        if let Some(entries) = &self.entries {
            let dropped = entries.invalidate_entries_if(move |_key, found| {
                found.job_id.is_none_or(|id| id == job_id)
            });
            if dropped.is_err() {
                entries.invalidate_all();
            }
        }
    }
}

fn is_json(headers: &http::HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("application/json")
        })
}

/// The archive route naming `selector`: path, query pairs, and the job id when it names one.
fn archive_route(
    project: &ProjectRef,
    selector: JobSelector<'_>,
) -> (String, Vec<(String, String)>, Option<u64>) {
    let project = project.to_path_segment();
    match selector {
        JobSelector::Id(job_id) => (
            format!("/api/v4/projects/{project}/jobs/{job_id}/artifacts"),
            Vec::new(),
            Some(job_id),
        ),
        JobSelector::LatestOnRef { ref_name, job_name } => {
            // The ref as one segment (`%2F` for its slashes), as GitLab's docs spell it.
            let ref_name = ProjectRef::Path(ref_name.to_owned()).to_path_segment();
            (
                format!("/api/v4/projects/{project}/jobs/artifacts/{ref_name}/download"),
                vec![("job".to_owned(), job_name.to_owned())],
                None,
            )
        }
    }
}

/// The URL a redirect names, resolved against the route it came from, if the gateway may
/// read it: `http`/`https` only, and a host in `artifacts.allowed_hosts` when that is set.
/// The URL itself never reaches the error (it goes to the client); its host goes to the log.
fn followable(
    base: &str,
    location: &HeaderValue,
    artifacts: &ArtifactsConfig,
) -> Result<Uri, GatewayError> {
    let refuse = |why: &str| GatewayError::UpstreamUnavailable(format!("archive Location {why}"));
    let text = location.to_str().map_err(|_| refuse("is not ASCII"))?;
    let url = url::Url::parse(base)
        .and_then(|base| base.join(text))
        .map_err(|_| refuse("is not a URL"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(refuse("is not http or https"));
    }
    let host = url.host_str().unwrap_or("");
    if !artifacts.host_allowed(host) {
        tracing::warn!(
            host,
            "archive Location names a host not in artifacts.allowed_hosts"
        );
        return Err(refuse("names a host not in artifacts.allowed_hosts"));
    }
    url.as_str()
        .parse()
        .map_err(|_| refuse("is not a URL the client can send"))
}

#[cfg(test)]
mod tests;
