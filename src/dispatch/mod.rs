//! Dispatch of one request: refuse what we must (`refuse`), name the route, then answer
//! it from the byte endpoints ([`crate::artifacts`]) or forward it to the jobs backend
//! (`forward`: through the metadata cache where it applies; mutations drop what the cache
//! holds). Every failure becomes a response here, at the one rescue point
//! ([`AppState::handle`]), and every response gets its access-log line.

mod forward;
mod refuse;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use http::{Request, Response};
use hyper::body::Incoming;
use tracing::Instrument;

use crate::artifacts::links::MAX_ISSUE_BODY;
use crate::artifacts::{trace, Artifacts, Served};
use crate::config::{ArtifactSource, Config};
use crate::error::{GatewayError, Stop};
use crate::http_util::body::Body;
use crate::http_util::security;
use crate::metrics::{Metrics, StorageUse};
use crate::observability::access_log::{self, AccessLog, Held};
use crate::request::context::RequestContext;
use crate::request::credentials::{self, Credentials};
use crate::request::route::{self, JobRef, Route, View};
use crate::storage::Storage;
use crate::upstream::cache::{MetadataCache, Scope};
use crate::upstream::headers;
use crate::upstream::jobs::Jobs;
use crate::upstream::Upstream;

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
    /// The byte endpoints, their archive source and storage.
    pub artifacts: Artifacts,
    pub metrics: Arc<Metrics>,
    /// Requests in progress, bounded by `server.max_streams`; a permit lives until the
    /// response body ends.
    pub streams: Arc<tokio::sync::Semaphore>,
    /// Set when shutdown begins: readiness fails from then on.
    pub shutting_down: std::sync::atomic::AtomicBool,
    /// Set when the shutdown grace has passed and what still runs is aborted: a body
    /// dropped from then on was cut by the shutdown, not by its client.
    pub cut_by_shutdown: Arc<std::sync::atomic::AtomicBool>,
    /// Who a link's use asks the backend as: `links.service_token`, else nobody.
    link_credentials: Credentials,
}

impl AppState {
    /// State for a configuration, with the storage it names (none in upstream mode: the
    /// backend names the archives' URLs).
    pub fn new(config: Config) -> Result<Self, String> {
        let storage = match config.artifacts.source {
            ArtifactSource::Storage => Storage::from_config(&config.storage)?,
            ArtifactSource::Upstream => {
                let upstream_roots = match &config.upstream.ca_file {
                    Some(path) => crate::trust::ca_certificates(path)?,
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
            artifacts: Artifacts::new(&config, storage, &metrics),
            metrics,
            shutting_down: std::sync::atomic::AtomicBool::new(false),
            cut_by_shutdown: Arc::default(),
            streams: Arc::new(tokio::sync::Semaphore::new(config.server.max_streams)),
            link_credentials: link_credentials(&config),
            config,
        }
    }

    /// The backend, asked as this request's caller.
    fn jobs<'a>(&'a self, ctx: &'a RequestContext) -> Jobs<'a> {
        Jobs {
            upstream: &self.upstream,
            cache: &self.cache,
            ctx,
        }
    }

    /// Handle one request end to end. Never fails: errors are answered here.
    pub async fn handle(&self, request: Request<Incoming>, conn: Connection) -> Response<Body> {
        self.answer(request, conn, None).await
    }

    /// Answer a request the listener refuses before dispatch (`server.max_connections`):
    /// through the same rescue point and access log as every other answer.
    pub async fn refuse(
        &self,
        request: Request<Incoming>,
        conn: Connection,
        error: GatewayError,
    ) -> Response<Body> {
        self.answer(request, conn, Some(error)).await
    }

    /// The rescue point: the request's span, the refusal or the dispatch, every failure as
    /// a response, the headers every answer carries, and the access log.
    async fn answer(
        &self,
        request: Request<Incoming>,
        conn: Connection,
        refused: Option<GatewayError>,
    ) -> Response<Body> {
        let started = Instant::now();
        let path = request.uri().path().to_owned();
        let query = request.uri().query().map(credentials::redact_query);
        let routed = route::match_route(request.method(), &path, request.uri().query());
        // A link's token is its credential: never logged.
        let logged_path = match path.strip_prefix(route::LINKS_PREFIX) {
            Some(_) => format!("{}[REDACTED]", route::LINKS_PREFIX),
            None => path,
        };
        let route_name = routed.as_ref().map_or("invalid", Route::name);
        let span = tracing::info_span!(
            "request",
            method = %request.method(),
            path = %logged_path,
            query = query.as_deref().unwrap_or(""),
            route = route_name,
            job_id = tracing::field::Empty,
            peer = %conn.peer.ip(),
        );
        let permit = match refused {
            Some(_) => None,
            None => Arc::clone(&self.streams).try_acquire_owned().ok(),
        };
        let storage = Arc::new(StorageUse::default());
        let response = async {
            if let Some(error) = refused {
                return error.into_response();
            }
            if permit.is_none() {
                self.metrics
                    .rejected
                    .with_label_values(&["max_streams"])
                    .inc();
                return GatewayError::Overloaded("max_streams").into_response();
            }
            match self.dispatch(request, conn, started, routed).await {
                Ok(response) => response,
                Err(stop) => stop.into_response(),
            }
        }
        .instrument(span.clone());
        let mut response = StorageUse::scope(Arc::clone(&storage), response).await;
        security::security_headers(response.headers_mut());
        let log = AccessLog::new(
            span,
            response.status().as_u16(),
            started,
            route_name,
            Held {
                metrics: Arc::clone(&self.metrics),
                permit,
                storage,
                cut_by_shutdown: Arc::clone(&self.cut_by_shutdown),
            },
        );
        access_log::logged(response, log)
    }

    async fn dispatch(
        &self,
        request: Request<Incoming>,
        conn: Connection,
        started: Instant,
        routed: Result<Route, route::RouteError>,
    ) -> Result<Response<Body>, Stop> {
        let Connection { peer, local, proto } = conn;
        let host = refuse::request_host(&request);
        refuse::before_dispatch(&request, local, &self.config)?;
        let route = routed?;
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
            // A link is used without credentials: the gateway asks as its own service
            // token (or anonymously), whatever the request carries.
            credentials: match route {
                Route::Link { .. } => self.link_credentials.clone(),
                _ => Credentials::from_request(request.headers(), request.uri().query()),
            },
            forwarding,
            route,
            started,
        };
        if let Some((job, file)) = ctx.route.artifact() {
            let (parts, _) = request.into_parts();
            let jobs = self.jobs(&ctx);
            return match file {
                None => self.artifacts.archive(&jobs, &parts, job).await,
                Some(path) => self.artifacts.entry(&jobs, &parts, job, path).await,
            };
        }
        match &ctx.route {
            Route::ArchiveView { project, job, view } => {
                let (parts, _) = request.into_parts();
                let jobs = self.jobs(&ctx);
                let job = JobRef::new(project, job.selector());
                match view {
                    View::Tree => self.artifacts.tree(&jobs, &parts, job).await,
                    View::Part => self.artifacts.part(&jobs, &parts, job).await,
                }
            }
            Route::IssueLink { project, job_id } => {
                let body = read_limited(request.into_body(), MAX_ISSUE_BODY).await?;
                let jobs = self.jobs(&ctx);
                self.artifacts
                    .issue_link(&jobs, project, *job_id, body)
                    .await
            }
            Route::Link { token } => {
                let (parts, _) = request.into_parts();
                let jobs = self.jobs(&ctx);
                self.artifacts.serve_link(&jobs, &parts, token).await
            }
            // Reserved for the gateway's routes; nothing is asked or read.
            Route::Reserved => Err(GatewayError::NotFound("404 Not Found").into()),
            Route::ListProjectJobs { project } | Route::ListPipelineJobs { project, .. } => {
                let scope = Scope::JobList {
                    project: project.clone(),
                };
                Ok(self.cached(request, &ctx, scope).await?)
            }
            Route::GetJob { project, job_id } => {
                let scope = Scope::Job {
                    project: project.clone(),
                    job_id: *job_id,
                };
                Ok(self.cached(request, &ctx, scope).await?)
            }
            Route::JobAction {
                project, job_id, ..
            } => {
                let (project, job_id) = (project.clone(), *job_id);
                Ok(self.mutate(request, &ctx, &project, job_id).await?)
            }
            Route::Trace { project, job_id } => {
                if self.artifacts.source.is_upstream() {
                    return Ok(trace::forwarded(&self.upstream, request, &ctx, *job_id).await?);
                }
                let (parts, body) = request.into_parts();
                let jobs = self.jobs(&ctx);
                match self
                    .artifacts
                    .trace(&jobs, &parts, project, *job_id)
                    .await?
                {
                    Served::Response(response) => Ok(response),
                    Served::Forward => {
                        Ok(self.forward(Request::from_parts(parts, body), &ctx).await?)
                    }
                }
            }
            _ => Ok(self.forward(request, &ctx).await?),
        }
    }
}

/// A request body of at most `limit` bytes; a larger one is a 413.
async fn read_limited(body: Incoming, limit: usize) -> Result<bytes::Bytes, GatewayError> {
    use http_body_util::BodyExt as _;
    match http_body_util::Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if error.is::<http_body_util::LengthLimitError>() => Err(
            GatewayError::TooLarge(format!("the request body is larger than {limit} bytes")),
        ),
        Err(_) => Err(GatewayError::BadRequest(
            "the request body could not be read",
        )),
    }
}

/// Who a link's use asks the backend as: `links.service_token`, else nobody.
fn link_credentials(config: &Config) -> Credentials {
    let mut headers = http::HeaderMap::new();
    if let Some(token) = &config.links.service_token {
        if let Ok(value) = http::HeaderValue::from_str(token.expose()) {
            headers.insert(credentials::PRIVATE_TOKEN, value);
        }
    }
    Credentials::from_request(&headers, None)
}
