//! The running server: the [`SampleBackend`] handle tests hold (its address, the recorded
//! requests, changing jobs and the delay while it runs), the state its tasks share, and
//! the accept loop. Each request is answered by `handlers`.

use std::convert::Infallible;
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

use crate::artifacts::ArtifactStore;
use crate::handlers;
use crate::model::{self, JobSpec, State};

/// How long to wait after a failed `accept` (e.g. out of file descriptors) before trying
/// again, so a persistent error does not spin a core.
const ACCEPT_RETRY_DELAY: Duration = Duration::from_millis(10);

/// One request as the backend received it.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub method: http::Method,
    /// Raw, as received (still percent-encoded).
    pub path_and_query: String,
    pub headers: http::HeaderMap,
    /// The whole body.
    pub body: bytes::Bytes,
}

impl RecordedRequest {
    /// The path without the query.
    pub fn path(&self) -> &str {
        let full = self.path_and_query.as_str();
        full.split_once('?').map_or(full, |(path, _)| path)
    }
}
/// A running sample backend. Dropping it stops the server: the accept loop and every
/// open connection are aborted.
pub struct SampleBackend {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl SampleBackend {
    /// Serve `listener` (bound at `addr`) from `state` in a tokio task.
    pub(crate) fn serve(
        listener: TcpListener,
        addr: SocketAddr,
        state: State,
        delay: Duration,
        artifacts: Option<ArtifactStore>,
    ) -> Self {
        let shared = Arc::new(Shared {
            state: Mutex::new(state),
            log: Mutex::new(Vec::new()),
            delay: Mutex::new(delay),
            artifacts,
        });
        let task = tokio::spawn(accept_loop(listener, Arc::clone(&shared)));
        SampleBackend { addr, shared, task }
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT` (or the bound address).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.log().clone()
    }

    /// Forget the requests received so far.
    pub fn clear_requests(&self) {
        self.shared.log().clear();
    }

    /// Number of recorded requests whose method and raw path (without query) equal these.
    pub fn count(&self, method: &str, path: &str) -> usize {
        self.shared
            .log()
            .iter()
            .filter(|r| r.method.as_str() == method && r.path() == path)
            .count()
    }

    /// Change the delay applied before every response from now on.
    pub fn set_delay(&self, d: Duration) {
        *self.shared.delay() = d;
    }

    /// Change job `id` in place (status, archive, trace...).
    ///
    /// # Panics
    /// If there is no job `id`: a test that updates a job it never created is wrong.
    pub fn update_job(&self, id: u64, f: impl FnOnce(&mut JobSpec)) {
        let mut state = self.shared.state();
        let record = state.jobs.get_mut(&id);
        let record = record.unwrap_or_else(|| panic!("sample backend has no job {id}"));
        f(&mut record.spec);
        state.sync_archive_keys();
    }

    /// The object key of job `id`'s archive, GitLab's hashed `@final` path, chosen once
    /// when the archive appeared (a new archive after erase gets a new key); `None` while
    /// the job has none. Upload the archive's bytes there.
    pub fn archive_key(&self, id: u64) -> Option<String> {
        self.shared.state().archive_keys.get(&id).cloned()
    }

    /// Every job's archive key ([`Self::archive_key`]), by job id.
    pub fn archive_keys(&self) -> std::collections::BTreeMap<u64, String> {
        self.shared
            .state()
            .archive_keys
            .iter()
            .map(|(id, key)| (*id, key.clone()))
            .collect()
    }

    /// Job `id` as it is now.
    pub fn job(&self, id: u64) -> Option<JobSpec> {
        self.shared.state().jobs.get(&id).map(|r| r.spec.clone())
    }

    /// Running-job token for job `id` (only valid while that job's status is Running):
    /// "job-token-{id}".
    pub fn job_token(id: u64) -> String {
        model::job_token(id)
    }

    /// Stop the server (same as dropping it).
    pub fn shutdown(self) {
        drop(self);
    }
}

impl Drop for SampleBackend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl fmt::Debug for SampleBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SampleBackend")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

/// State shared by the server tasks and the [`SampleBackend`] handle. Each mutex is held
/// only for synchronous work, never across an `.await`.
pub(crate) struct Shared {
    state: Mutex<State>,
    log: Mutex<Vec<RecordedRequest>>,
    delay: Mutex<Duration>,
    pub(crate) artifacts: Option<ArtifactStore>,
}

impl Shared {
    pub(crate) fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    pub(crate) fn log(&self) -> MutexGuard<'_, Vec<RecordedRequest>> {
        lock(&self.log)
    }

    pub(crate) fn delay(&self) -> MutexGuard<'_, Duration> {
        lock(&self.delay)
    }
}

/// Lock, ignoring poison: a test that panicked inside `update_job` should not turn every
/// later request into a second panic.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Accept connections until aborted. Connections live in a `JoinSet` owned by this task,
/// so aborting the task drops the set and aborts every connection with it.
async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let mut connections = JoinSet::new();
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _peer)) => stream,
            Err(_) => {
                tokio::time::sleep(ACCEPT_RETRY_DELAY).await;
                continue;
            }
        };
        while connections.try_join_next().is_some() {}
        let shared = Arc::clone(&shared);
        connections.spawn(async move {
            let service = service_fn(move |req| {
                let shared = Arc::clone(&shared);
                async move { Ok::<_, Infallible>(handlers::handle(shared, req).await) }
            });
            // HTTP/1.1 and h2c (prior knowledge), as the gateway may speak either. A
            // connection error only ends that connection.
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
