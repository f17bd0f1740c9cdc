//! Per-caller cache of job metadata responses (get a job, list project jobs, list pipeline
//! jobs), in front of the upstream.
//!
//! Invariants:
//! - A key is the digest of the whole upstream request ([`super::keyed`]): an entry is only
//!   ever served to requests that would have sent the backend the same bytes, identity
//!   inputs included. Anonymous callers share entries only with each other.
//! - Only `200` responses without `Set-Cookie` and no larger than `max_entry_bytes` are
//!   stored; anything else is streamed to the caller that asked.
//! - Concurrent identical misses make one upstream request (moka's `try_get_with`).
//! - A mutation of job J in project P removes every entry of J and every job list of P for
//!   all callers. A load that was in flight while any mutation happened is served but not
//!   stored, so a pre-mutation answer cannot land in the cache after the invalidation.
//! - Capacity is weighed in bytes (body plus headers); expiry is the configured TTL.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use http::{header, HeaderMap, HeaderValue, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use moka::future::Cache;

use crate::config::CacheConfig;
use crate::error::GatewayError;
use crate::http_util::body::{self, Body};
use crate::metrics::Metrics;
use crate::request::credentials::Fingerprint;
use crate::request::route::ProjectRef;

pub const X_CACHE: http::HeaderName = http::HeaderName::from_static("x-cache");

/// What a cached response depends on, for invalidation.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Scope {
    Job {
        project: ProjectRef,
        job_id: u64,
    },
    JobList {
        project: ProjectRef,
    },
    /// Project metadata (its numeric id); job mutations do not change it.
    Project {
        project: ProjectRef,
    },
}

/// Built by [`super::keyed::KeyedGet::key`], from the request it sends.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CacheKey {
    /// The caller's identity inputs (also inside `request`; kept apart for clarity).
    pub fingerprint: Fingerprint,
    /// Digest of the whole request sent upstream: path, query and every header.
    pub request: [u8; 32],
    pub scope: Scope,
}

/// A buffered upstream response.
#[derive(Debug)]
pub struct CachedResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// Numeric project id read from the job JSON (`pipeline.project_id`), when present.
    pub project_id: Option<u64>,
}

impl CachedResponse {
    fn weight(&self) -> u32 {
        let headers: usize = self
            .headers
            .iter()
            .map(|(k, v)| k.as_str().len() + v.len() + 32)
            .sum();
        u32::try_from(self.body.len() + headers + 256).unwrap_or(u32::MAX)
    }

    pub fn to_response(&self, cache_status: CacheStatus) -> Response<Body> {
        let mut response = Response::new(body::full(self.body.clone()));
        *response.status_mut() = self.status;
        *response.headers_mut() = self.headers.clone();
        response
            .headers_mut()
            .insert(X_CACHE, HeaderValue::from_static(cache_status.as_str()));
        response
    }
}

/// Why a load produced no cache entry; shared by every caller that waited on it.
enum Uncached {
    /// Buffered but not stored (not a 200, `Set-Cookie`, or a mutation raced it): every
    /// waiter gets a copy.
    Shared(Arc<CachedResponse>),
    /// Too large to buffer: the first waiter to take it streams it, the others fetch their own.
    Stream(Mutex<Option<Response<Body>>>),
    Failed(GatewayError),
}

pub struct MetadataCache {
    entries: Option<Cache<CacheKey, Arc<CachedResponse>>>,
    metrics: Arc<Metrics>,
    /// Namespaced project paths seen with their numeric id, so that a mutation naming a
    /// project one way invalidates lists cached under the other.
    aliases: Arc<Mutex<std::collections::HashMap<String, u64>>>,
    max_entry_bytes: u64,
    /// Bumped by every invalidation; a load that sees it move does not store its result.
    epoch: AtomicU64,
}

/// Whether and how a response came out of the cache (the `X-Cache` header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheStatus {
    Hit,
    Miss,
    Bypass,
}

impl CacheStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hit => "HIT",
            Self::Miss => "MISS",
            Self::Bypass => "BYPASS",
        }
    }
}

impl MetadataCache {
    pub fn new(config: &CacheConfig, metrics: Arc<Metrics>) -> Self {
        let evictions = Arc::clone(&metrics);
        let entries = (config.max_bytes > 0).then(|| {
            Cache::builder()
                .eviction_listener(move |_key, _value, cause| {
                    if cause == moka::notification::RemovalCause::Size {
                        evictions.metadata("eviction");
                    }
                })
                .max_capacity(config.max_bytes)
                .weigher(|_key: &CacheKey, value: &Arc<CachedResponse>| value.weight())
                .time_to_live(config.ttl)
                .support_invalidation_closures()
                .build()
        });
        Self {
            entries,
            metrics,
            aliases: Arc::default(),
            max_entry_bytes: config.max_entry_bytes,
            epoch: AtomicU64::new(0),
        }
    }

    /// Fetch without the cache, for requests that must not be keyed (`X-Cache: BYPASS`).
    pub async fn bypass<Fut>(&self, fetch: Fut) -> Result<Response<Body>, GatewayError>
    where
        Fut: Future<Output = Result<Response<Incoming>, GatewayError>>,
    {
        self.metrics.metadata("bypass");
        let mut response = fetch.await?.map(body::boxed);
        mark(&mut response, CacheStatus::Bypass);
        Ok(response)
    }

    /// Serve `key` from the cache, or load it with `fetch` (at most one load per key at a
    /// time). `fetch` may be called again when a waiter could not share the leader's
    /// streamed answer.
    pub async fn get_or_fetch<F, Fut>(
        &self,
        key: CacheKey,
        fetch: F,
    ) -> Result<(Response<Body>, CacheStatus), GatewayError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<Response<Incoming>, GatewayError>>,
    {
        let Some(entries) = &self.entries else {
            let mut response = fetch().await?.map(body::boxed);
            mark(&mut response, CacheStatus::Bypass);
            return Ok((response, CacheStatus::Bypass));
        };
        let project = match &key.scope {
            Scope::Job { project, .. }
            | Scope::JobList { project }
            | Scope::Project { project } => project.clone(),
        };
        let loaded_here = AtomicBool::new(false);
        let load = async {
            loaded_here.store(true, Ordering::Relaxed);
            let epoch = self.epoch.load(Ordering::Acquire);
            let response = fetch().await.map_err(Uncached::Failed)?;
            let (parts, incoming) = response.into_parts();
            let buffered = match read_bounded(incoming, self.max_entry_bytes, &parts.headers).await
            {
                Ok(bytes) => bytes,
                Err(Bounded::TooLarge(body)) => {
                    let response = Response::from_parts(parts, body);
                    return Err(Uncached::Stream(Mutex::new(Some(response))));
                }
                Err(Bounded::Failed(error)) => return Err(Uncached::Failed(error)),
            };
            let project_id = project_id_of(&buffered);
            if let (ProjectRef::Path(path), Some(id)) = (&project, project_id) {
                self.learn_alias(path, id);
            }
            let entry = Arc::new(CachedResponse {
                status: parts.status,
                headers: parts.headers,
                body: buffered,
                project_id,
            });
            let storable = entry.status == StatusCode::OK
                && !entry.headers.contains_key(header::SET_COOKIE)
                && self.epoch.load(Ordering::Acquire) == epoch;
            if storable {
                Ok(entry)
            } else {
                Err(Uncached::Shared(entry))
            }
        };
        match entries.try_get_with(key, load).await {
            Ok(entry) => {
                let status = if loaded_here.load(Ordering::Relaxed) {
                    CacheStatus::Miss
                } else {
                    CacheStatus::Hit
                };
                self.metrics.metadata(match status {
                    CacheStatus::Hit => "hit",
                    _ => "miss",
                });
                Ok((entry.to_response(status), status))
            }
            Err(uncached) => {
                self.metrics.metadata("miss");
                self.uncached(&uncached, &fetch).await
            }
        }
    }

    /// Answer from a load that produced no entry.
    async fn uncached<F, Fut>(
        &self,
        uncached: &Uncached,
        fetch: &F,
    ) -> Result<(Response<Body>, CacheStatus), GatewayError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<Response<Incoming>, GatewayError>>,
    {
        match uncached {
            Uncached::Shared(entry) => {
                Ok((entry.to_response(CacheStatus::Miss), CacheStatus::Miss))
            }
            Uncached::Failed(error) => Err(error.clone()),
            Uncached::Stream(slot) => {
                let taken = slot.lock().unwrap_or_else(|e| e.into_inner()).take();
                let mut response = match taken {
                    Some(response) => response,
                    None => fetch().await?.map(body::boxed),
                };
                mark(&mut response, CacheStatus::Miss);
                Ok((response, CacheStatus::Miss))
            }
        }
    }

    fn learn_alias(&self, path: &str, id: u64) {
        let mut aliases = self.aliases.lock().unwrap_or_else(|e| e.into_inner());
        // Bounded: an alias is a few dozen bytes; past this many, start over rather than grow.
        if aliases.len() >= 65_536 {
            aliases.clear();
        }
        aliases.insert(path.to_owned(), id);
    }

    /// Forget every entry of job `job_id` and every job list of `project`, for all callers.
    /// `project_id` is the numeric id when the mutation's response told it.
    pub fn invalidate_job(&self, project: &ProjectRef, job_id: u64, project_id: Option<u64>) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.metrics.metadata("invalidation");
        let Some(entries) = &self.entries else { return };
        if let (ProjectRef::Path(path), Some(id)) = (project, project_id) {
            self.learn_alias(path, id);
        }
        let aliases = Arc::clone(&self.aliases);
        let resolve = move |p: &ProjectRef| match p {
            ProjectRef::Id(id) => Some(*id),
            ProjectRef::Path(path) => aliases
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(path)
                .copied(),
        };
        let target = project_id.or_else(|| resolve(project));
        let project = project.clone();
        let predicate = move |key: &CacheKey, value: &Arc<CachedResponse>| match &key.scope {
            // Job ids are unique across projects, so the job's entries go whatever project
            // spelling they were cached under.
            Scope::Job { job_id: cached, .. } => *cached == job_id,
            Scope::JobList { project: cached } => {
                if *cached == project {
                    return true;
                }
                let Some(target) = target else {
                    // We cannot tell which numeric id the mutated project has: drop every list
                    // rather than risk serving a stale one.
                    return true;
                };
                value.project_id == Some(target) || resolve(cached).is_none_or(|id| id == target)
            }
            Scope::Project { .. } => false,
        };
        if let Err(error) = entries.invalidate_entries_if(predicate) {
            // Only fails when closures are not enabled, which `new` always does.
            tracing::error!(%error, "cache invalidation failed; clearing the cache");
            entries.invalidate_all();
        }
    }

    /// Entry count and weighed size after pending maintenance, for tests and metrics.
    pub async fn usage(&self) -> (u64, u64) {
        match &self.entries {
            Some(entries) => {
                entries.run_pending_tasks().await;
                (entries.entry_count(), entries.weighted_size())
            }
            None => (0, 0),
        }
    }
}

fn mark(response: &mut Response<Body>, status: CacheStatus) {
    response
        .headers_mut()
        .insert(X_CACHE, HeaderValue::from_static(status.as_str()));
}

pub(crate) enum Bounded {
    /// Over the limit: the part already read, followed by the rest of the stream.
    TooLarge(Body),
    Failed(GatewayError),
}

/// Read a whole body if it is at most `limit` bytes; otherwise hand back a body that
/// replays what was read and streams the rest, so nothing is lost.
pub(crate) async fn read_bounded(
    mut incoming: Incoming,
    limit: u64,
    headers: &HeaderMap,
) -> Result<Bytes, Bounded> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit) {
        return Err(Bounded::TooLarge(body::boxed(incoming)));
    }
    let mut buffer = BytesMut::new();
    while let Some(frame) = incoming.frame().await {
        let frame = frame.map_err(|e| {
            Bounded::Failed(GatewayError::UpstreamUnavailable(format!(
                "reading the response body: {e}"
            )))
        })?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        buffer.extend_from_slice(&data);
        if buffer.len() as u64 > limit {
            let read = futures_util::stream::once(async move {
                Ok::<_, hyper::Error>(http_body::Frame::data(buffer.freeze()))
            });
            let rest = http_body_util::BodyStream::new(incoming);
            let stream = futures_util::StreamExt::chain(read, rest);
            return Err(Bounded::TooLarge(body::boxed(
                http_body_util::StreamBody::new(stream),
            )));
        }
    }
    Ok(buffer.freeze())
}

/// `pipeline.project_id` of a job object, or of the first job of a list.
pub fn project_id_of(body: &[u8]) -> Option<u64> {
    #[derive(serde::Deserialize)]
    struct Job {
        pipeline: Option<Pipeline>,
    }
    #[derive(serde::Deserialize)]
    struct Pipeline {
        project_id: Option<u64>,
    }
    let first = match body.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => serde_json::from_slice::<Job>(body).ok(),
        Some(b'[') => serde_json::from_slice::<Vec<Job>>(body)
            .ok()
            .and_then(|jobs| jobs.into_iter().next()),
        _ => None,
    };
    first?.pipeline?.project_id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_id_comes_from_a_job_or_the_first_job_of_a_list() {
        assert_eq!(
            project_id_of(br#"{"id":1,"pipeline":{"id":2,"project_id":7}}"#),
            Some(7)
        );
        assert_eq!(
            project_id_of(br#" [{"pipeline":{"project_id":9}},{}]"#),
            Some(9)
        );
        assert_eq!(project_id_of(b"[]"), None);
        assert_eq!(project_id_of(b"not json"), None);
        assert_eq!(project_id_of(br#"{"pipeline":null}"#), None);
    }
}
