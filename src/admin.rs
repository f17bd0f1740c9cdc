//! The admin listener, on its own address off the public port: `GET /metrics` (Prometheus
//! text), `GET /-/health` (the process is alive) and `GET /-/readiness` (the jobs backend and
//! storage answer, and the gateway is not shutting down).

use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use object_store::path::Path;
use tokio::net::TcpListener;

use crate::dispatch::AppState;
use crate::http_util::body::{self, Body};
use crate::storage::{Location, StorageError};

/// Longest a readiness check waits for each dependency.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// Serve the admin endpoints until the task is aborted.
pub async fn serve(listener: TcpListener, state: Arc<AppState>) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(5));
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let state = Arc::clone(&state);
        let builder = builder.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let state = Arc::clone(&state);
                async move { Ok::<_, Infallible>(answer(&state, request).await) }
            });
            let _ = builder
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn answer(state: &AppState, request: Request<Incoming>) -> Response<Body> {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return text(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "GET only\n".into(),
        );
    }
    match request.uri().path() {
        "/metrics" => text(
            StatusCode::OK,
            "text/plain; version=0.0.4; charset=utf-8",
            state.metrics.render(),
        ),
        "/-/health" => text(
            StatusCode::OK,
            "application/json",
            "{\"status\":\"ok\"}".into(),
        ),
        "/-/readiness" => {
            let report = readiness(state).await;
            let status = if report.ready() {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            text(status, "application/json", report.to_json())
        }
        _ => text(StatusCode::NOT_FOUND, "text/plain", "not found\n".into()),
    }
}

struct Readiness {
    shutting_down: bool,
    upstream: Result<(), String>,
    storage: Result<(), String>,
}

impl Readiness {
    fn ready(&self) -> bool {
        !self.shutting_down && self.upstream.is_ok() && self.storage.is_ok()
    }

    fn to_json(&self) -> String {
        let show = |r: &Result<(), String>| match r {
            Ok(()) => "ok".to_owned(),
            Err(e) => e.clone(),
        };
        serde_json::json!({
            "status": if self.ready() { "ok" } else { "not ready" },
            "shutting_down": self.shutting_down,
            "upstream": show(&self.upstream),
            "storage": show(&self.storage),
        })
        .to_string()
    }
}

async fn readiness(state: &AppState) -> Readiness {
    let (upstream, storage) = tokio::join!(upstream_answers(state), storage_answers(state));
    Readiness {
        shutting_down: state.shutting_down.load(Ordering::Acquire),
        upstream,
        storage,
    }
}

/// Any HTTP answer counts: the backend is up even if it wants a token for `/version`.
async fn upstream_answers(state: &AppState) -> Result<(), String> {
    let uri = state
        .upstream
        .uri_for("/api/v4/version")
        .map_err(|e| e.to_string())?;
    let mut request = Request::new(body::empty());
    *request.uri_mut() = uri;
    match tokio::time::timeout(CHECK_TIMEOUT, state.upstream.send(request)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(error)) => Err(error.to_string()),
        Err(_) => Err("no answer within 2s".into()),
    }
}

/// A metadata request for a key that need not exist: "not found" is an answer. Without a
/// store (upstream mode) storage is the backend's to reach, and the backend is checked.
async fn storage_answers(state: &AppState) -> Result<(), String> {
    if !state.artifacts.storage.has_store() {
        return Ok(());
    }
    let probe = Location::Key(Path::from("artifact-gateway-readiness-probe"));
    match tokio::time::timeout(CHECK_TIMEOUT, state.artifacts.storage.head(&probe)).await {
        Ok(Ok(_)) | Ok(Err(StorageError::NotFound)) => Ok(()),
        Ok(Err(error)) => Err(error.to_string()),
        Err(_) => Err("no answer within 2s".into()),
    }
}

fn text(status: StatusCode, content_type: &'static str, body: String) -> Response<Body> {
    let mut response = Response::new(body::full(Bytes::from(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
