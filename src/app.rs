//! The gateway's shared state and the dispatch of one request: refuse what we must, name
//! the route, then serve it ourselves or forward it (through the metadata cache where it
//! applies). Every error becomes a response here, through `GatewayError::into_response`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use http::{header, Method, Request, Response};
use hyper::body::Incoming;
use tracing::Instrument;

use crate::auth::{self, Credentials};
use crate::body::{self, AccessLog, Body};
use crate::config::{ArtifactSource, Config};
use crate::context::RequestContext;
use crate::error::GatewayError;
use crate::metrics::Metrics;
use crate::routes::{self, Route};
use crate::serve::{JobSelector, Outcome};
use crate::storage::Storage;
use crate::upstream::cache::{self, MetadataCache, Scope};
use crate::upstream::headers;
use crate::upstream::jobs::RefCache;
use crate::upstream::keyed::KeyedGet;
use crate::upstream::locate::Locator;
use crate::upstream::Upstream;
use crate::zip::archive::ArchiveCache;
use crate::zip::budget::MemoryBudget;
use crate::zip::index::IndexLimits;

/// What the listener knows about the connection a request came on.
#[derive(Debug, Clone, Copy)]
pub struct Connection {
    pub peer: SocketAddr,
    pub local: SocketAddr,
    /// "http" or "https".
    pub proto: &'static str,
}

pub struct AppState {
    pub config: Config,
    pub upstream: Upstream,
    pub cache: MetadataCache,
    pub storage: Storage,
    pub refs: RefCache,
    /// Upstream mode: where archives are, as the backend said.
    pub locator: Locator,
    pub archives: ArchiveCache,
    pub metrics: Arc<Metrics>,
    /// Requests in progress, bounded by `server.max_streams`; a permit lives until the
    /// response body ends.
    pub streams: Arc<tokio::sync::Semaphore>,
    /// Set when shutdown begins: readiness fails from then on.
    pub shutting_down: std::sync::atomic::AtomicBool,
}

impl AppState {
    /// State for a configuration, with the storage it names (none in upstream mode: the
    /// backend names the archives' URLs).
    pub fn new(config: Config) -> Result<Self, String> {
        let storage = match config.artifacts.source {
            ArtifactSource::Storage => Storage::from_config(&config.storage)?,
            ArtifactSource::Upstream => {
                let upstream_roots = match &config.upstream.ca_file {
                    Some(path) => crate::tls::ca_certificates(path)?,
                    None => Vec::new(),
                };
                Storage::with_remote_roots(&config.storage, &upstream_roots)
            }
        };
        Ok(Self::with_storage(config, storage))
    }

    /// State with a given storage (tests wrap stores to count or break reads).
    pub fn with_storage(config: Config, mut storage: Storage) -> Self {
        let metrics = Arc::new(Metrics::new());
        storage.set_metrics(Arc::clone(&metrics));
        Self {
            upstream: Upstream::new(&config.upstream, Arc::clone(&metrics)),
            cache: MetadataCache::new(&config.cache, Arc::clone(&metrics)),
            refs: RefCache::new(config.artifacts.by_ref_ttl),
            locator: Locator::new(&config.cache, Arc::clone(&metrics)),
            archives: ArchiveCache::new(
                config.zip.index_cache_bytes,
                config.zip.index_ttl,
                config.zip.tail_bytes,
                IndexLimits {
                    max_entries: config.zip.max_entries,
                    max_directory_bytes: config.zip.max_directory_bytes,
                },
                Arc::clone(&metrics),
            )
            .with_budget(MemoryBudget::new(
                config.zip.memory_budget,
                config.zip.max_decoder_memory,
                Arc::clone(&metrics),
            )),
            metrics,
            shutting_down: std::sync::atomic::AtomicBool::new(false),
            streams: Arc::new(tokio::sync::Semaphore::new(config.server.max_streams)),
            storage,
            config,
        }
    }

    /// Handle one request end to end. Never fails: errors are answered here.
    pub async fn handle(&self, request: Request<Incoming>, conn: Connection) -> Response<Body> {
        let started = Instant::now();
        let path = request.uri().path().to_owned();
        let query = request.uri().query().map(auth::redact_query);
        let routed = routes::match_route(request.method(), &path, request.uri().query());
        let route_name = routed.as_ref().map_or("invalid", Route::name);
        let span = tracing::info_span!(
            "request",
            method = %request.method(),
            path = %path,
            query = query.as_deref().unwrap_or(""),
            route = route_name,
            job_id = tracing::field::Empty,
            peer = %conn.peer.ip(),
        );
        let permit = Arc::clone(&self.streams).try_acquire_owned().ok();
        let response = async {
            if permit.is_none() {
                self.metrics
                    .rejected
                    .with_label_values(&["max_streams"])
                    .inc();
                return GatewayError::Overloaded("max_streams").into_response();
            }
            match self.dispatch(request, conn, started, routed).await {
                Ok(response) => response,
                Err(error) => error.into_response(),
            }
        }
        .instrument(span.clone())
        .await;
        let mut response = response;
        crate::serve::content::security_headers(response.headers_mut());
        let log = AccessLog::new(
            span,
            response.status().as_u16(),
            started,
            route_name,
            Arc::clone(&self.metrics),
            permit,
        );
        body::logged(response, log)
    }

    async fn dispatch(
        &self,
        request: Request<Incoming>,
        conn: Connection,
        started: Instant,
        routed: Result<Route, routes::RouteError>,
    ) -> Result<Response<Body>, GatewayError> {
        let Connection { peer, local, proto } = conn;
        if request.method() == Method::CONNECT {
            return Err(GatewayError::MethodNotAllowed);
        }
        let host = request_host(&request);
        refuse_foreign_absolute_form(&request, local, &self.config)?;
        if head_bytes(&request) > self.config.server.max_header_bytes
            || request.headers().len() > MAX_HEADERS
        {
            return Err(GatewayError::HeadersTooLarge);
        }
        let route = routed.map_err(|error| match error {
            routes::RouteError::BadPath(why) => GatewayError::BadRequest(why),
            routes::RouteError::MissingParam(name) => GatewayError::MissingParam(name),
        })?;
        let public_base = match &self.config.public_url {
            Some(url) => url.as_str().to_owned(),
            None => format!("{proto}://{}", host.as_deref().unwrap_or("localhost")),
        };
        // The backend is told the scheme and host the caller uses: `public_url`'s if set.
        let (via_proto, via_host) = match &self.config.public_url {
            Some(url) => (url.scheme(), Some(url.authority())),
            None => (proto, host.as_deref()),
        };
        let via = headers::Via {
            peer: peer.ip(),
            trusted: self.config.server.is_trusted_proxy(peer.ip()),
            proto: via_proto,
            host: via_host,
        };
        let forwarding = headers::forwarding(request.headers(), &via);
        let ctx = RequestContext {
            peer,
            proto,
            host,
            public_base,
            credentials: Credentials::from_request(request.headers(), request.uri().query()),
            forwarding,
            route,
            started,
        };
        match &ctx.route {
            Route::ListProjectJobs { project } => {
                let scope = Scope::JobList {
                    project: project.clone(),
                };
                self.cached(request, &ctx, scope).await
            }
            Route::ListPipelineJobs { project, .. } => {
                let scope = Scope::JobList {
                    project: project.clone(),
                };
                self.cached(request, &ctx, scope).await
            }
            Route::GetJob { project, job_id } => {
                let scope = Scope::Job {
                    project: project.clone(),
                    job_id: *job_id,
                };
                self.cached(request, &ctx, scope).await
            }
            Route::JobAction {
                project, job_id, ..
            } => {
                let (project, job_id) = (project.clone(), *job_id);
                self.mutate(request, &ctx, &project, job_id).await
            }
            Route::Archive { project, job_id } => {
                let (parts, _) = request.into_parts();
                self.serve_archive(&parts, &ctx, project, JobSelector::Id(*job_id))
                    .await
            }
            Route::ArchiveByRef {
                project,
                ref_name,
                job,
            } => {
                let (parts, _) = request.into_parts();
                self.serve_archive(&parts, &ctx, project, by_ref(ref_name, job))
                    .await
            }
            Route::ArtifactFile {
                project,
                job_id,
                path,
            } => {
                let (parts, _) = request.into_parts();
                self.serve_entry(&parts, &ctx, project, JobSelector::Id(*job_id), path)
                    .await
            }
            Route::ArtifactFileByRef {
                project,
                ref_name,
                path,
                job,
            } => {
                let (parts, _) = request.into_parts();
                self.serve_entry(&parts, &ctx, project, by_ref(ref_name, job), path)
                    .await
            }
            Route::Trace { project, job_id } => {
                if self.config.artifacts.source == crate::config::ArtifactSource::Upstream {
                    return self.upstream_trace(request, &ctx, *job_id).await;
                }
                let (parts, body) = request.into_parts();
                match self.serve_trace(&parts, &ctx, project, *job_id).await? {
                    Outcome::Response(response) => Ok(response),
                    Outcome::Forward => self.forward(Request::from_parts(parts, body), &ctx).await,
                }
            }
            _ => self.forward(request, &ctx).await,
        }
    }

    async fn forward(
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
    async fn cached(
        &self,
        request: Request<Incoming>,
        ctx: &RequestContext,
        scope: Scope,
    ) -> Result<Response<Body>, GatewayError> {
        let query = auth::normalize_query(request.uri().query());
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
    async fn mutate(
        &self,
        request: Request<Incoming>,
        ctx: &RequestContext,
        project: &routes::ProjectRef,
        job_id: u64,
    ) -> Result<Response<Body>, GatewayError> {
        let response = self.upstream.forward(request, ctx).await;
        // Before the answer is read: the job's archive may be gone for everyone now (also
        // when the answer did not come: the mutation may have happened).
        if response.as_ref().map_or(true, |r| r.status().is_success()) {
            self.locator.invalidate_job(job_id);
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

fn by_ref<'a>(ref_name: &'a str, job_name: &'a str) -> JobSelector<'a> {
    JobSelector::LatestOnRef { ref_name, job_name }
}

/// `Host`, or the URI authority HTTP/2 carries instead.
fn request_host<B>(request: &Request<B>) -> Option<String> {
    request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned)
        .or_else(|| request.uri().authority().map(|a| a.as_str().to_owned()))
}

/// An HTTP/1 absolute-form target (`GET http://elsewhere/ HTTP/1.1`) is a proxy request;
/// ordinary clients and load balancers send origin-form. We accept one only when it names
/// the gateway itself: `public_url`'s authority or the address the connection came in on.
/// HTTP/2 always carries an authority; it plays the role of `Host` there.
fn refuse_foreign_absolute_form<B>(
    request: &Request<B>,
    local: SocketAddr,
    config: &Config,
) -> Result<(), GatewayError> {
    if request.version() == http::Version::HTTP_2 {
        return Ok(());
    }
    let Some(authority) = request.uri().authority() else {
        return Ok(());
    };
    let named = authority.as_str();
    let is_public = config
        .public_url
        .as_ref()
        .is_some_and(|url| url.authority().eq_ignore_ascii_case(named));
    let is_local = named == local.to_string()
        || named.eq_ignore_ascii_case(&format!("localhost:{}", local.port()));
    if is_public || is_local {
        Ok(())
    } else {
        Err(GatewayError::ProxyRefused)
    }
}

/// Most header fields in a request: hyper's HTTP/1 parser has this many slots (its
/// default, kept so they stay on the stack) and refuses more itself; HTTP/2 gets the same.
const MAX_HEADERS: usize = 100;

/// The size of the request head as HTTP/1.1 text: request line (`METHOD target
/// HTTP/1.1`), every field as `name: value` and the line ends. HTTP/2 requests are counted
/// the same way, so one limit means the same on both.
fn head_bytes<B>(request: &Request<B>) -> usize {
    let uri = request.uri();
    let target = uri.path_and_query().map_or(1, |p| p.as_str().len())
        + uri.authority().map_or(0, |a| a.as_str().len())
        + uri.scheme_str().map_or(0, |s| s.len() + 3);
    let request_line = request.method().as_str().len() + 1 + target + " HTTP/1.1\r\n".len();
    let fields: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    request_line + fields + 2
}
