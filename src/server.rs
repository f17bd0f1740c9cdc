//! The listener: accepts TCP connections, serves HTTP/1.1 and HTTP/2 on each with the
//! configured limits, and shuts down gracefully.
//!
//! Shutdown: the accept loop stops, every connection is told to finish its in-flight
//! requests and close (HTTP/1.1: no keep-alive; HTTP/2: GOAWAY), and whatever is still
//! running at the deadline is aborted. Aborting drops the connection, so a response cut
//! there ends short of its `Content-Length` (or without a chunked terminator, or with a
//! stream reset) and no client can take it for complete.
//!
//! Request heads: the configured `server.max_header_bytes` is checked in the handler (the
//! whole head, request line included, with the JSON `431`). Heads beyond hyper's own limits
//! never reach the handler; on HTTP/1.1 [`head_guard`] swaps hyper's empty `431` for the
//! same JSON one. On HTTP/2, h2 answers a header list over `max_header_list_size` itself
//! with a body-less `431` HEADERS frame and a stream reset, and one over four times that
//! with GOAWAY; neither can carry a body (rewriting HPACK-coded frames is not an option), so
//! the list size is set at four times `max_header_bytes`: every head up to that reaches the
//! handler and gets the JSON answer. Every refusal gets an access line (the handler's, or
//! `head_guard`'s for hyper's), except h2's own, which the gateway never sees.

mod head_guard;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::app::{AppState, Connection};
use crate::config::Config;
use crate::tls;

/// A gateway serving on a socket, with a handle to stop it.
pub struct RunningGateway {
    addr: SocketAddr,
    admin_addr: Option<SocketAddr>,
    admin: Option<tokio::task::JoinHandle<()>>,
    /// With `[tls]`: the acceptor (reloaded on SIGHUP) and its file watcher.
    tls: Option<(Arc<tls::Acceptor>, tokio::task::JoinHandle<()>)>,
    state: Arc<AppState>,
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl RunningGateway {
    /// Bind `config.listen` and start serving in a background task.
    pub async fn start(config: Config) -> std::io::Result<Self> {
        let state = AppState::new(config).map_err(std::io::Error::other)?;
        Self::start_with(state).await
    }

    /// Bind `state.config.listen` and serve the given state.
    pub async fn start_with(state: AppState) -> std::io::Result<Self> {
        let listener = TcpListener::bind(state.config.listen).await?;
        let admin = match state.config.admin_listen {
            Some(addr) => Some(TcpListener::bind(addr).await?),
            None => None,
        };
        let acceptor = match &state.config.tls {
            Some(config) => Some(Arc::new(
                tls::Acceptor::new(config).map_err(std::io::Error::other)?,
            )),
            None => None,
        };
        let state = Arc::new(state);
        let mut gateway = Self::start_on_tls(listener, Arc::clone(&state), acceptor);
        if let Some(admin) = admin {
            gateway.admin_addr = admin.local_addr().ok();
            gateway.admin = Some(tokio::spawn(crate::admin::serve(admin, state)));
        }
        Ok(gateway)
    }

    pub fn start_on(listener: TcpListener, state: Arc<AppState>) -> Self {
        Self::start_on_tls(listener, state, None)
    }

    /// Serve on `listener`, over TLS when an acceptor is given (its files are watched).
    pub fn start_on_tls(
        listener: TcpListener,
        state: Arc<AppState>,
        acceptor: Option<Arc<tls::Acceptor>>,
    ) -> Self {
        let addr = listener
            .local_addr()
            .expect("a bound listener has a local address");
        let (shutdown, signal) = watch::channel(false);
        let task = tokio::spawn(serve(
            listener,
            Arc::clone(&state),
            signal,
            acceptor.clone(),
        ));
        Self {
            addr,
            admin_addr: None,
            admin: None,
            tls: acceptor.map(|acceptor| {
                let watcher = acceptor.watch();
                (acceptor, watcher)
            }),
            state,
            shutdown,
            task,
        }
    }

    /// The TLS acceptor, when `[tls]` is set: `reload()` it on SIGHUP.
    pub fn tls(&self) -> Option<&Arc<tls::Acceptor>> {
        self.tls.as_ref().map(|(acceptor, _)| acceptor)
    }

    /// The admin listener's address, when `admin_listen` is set.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin_addr
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn state(&self) -> &Arc<AppState> {
        &self.state
    }

    /// Begin a graceful shutdown; [`Self::wait`] returns when it is over.
    pub fn shutdown(&self) {
        let _ = self.shutdown.send(true);
    }

    /// Wait for the shutdown to finish; the admin listener (which reports "not ready"
    /// meanwhile) stops last.
    pub async fn wait(self) {
        let _ = self.task.await;
        if let Some(admin) = self.admin {
            admin.abort();
        }
        if let Some((_, watcher)) = self.tls {
            watcher.abort();
        }
    }
}

/// Accept until `signal` turns true, then drain connections up to the shutdown grace.
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    mut signal: watch::Receiver<bool>,
    tls: Option<Arc<tls::Acceptor>>,
) {
    let builder = connection_builder(&state.config);
    let grace = state.config.server.shutdown_grace;
    let (stop_connections, connection_signal) = watch::channel(false);
    let mut connections = JoinSet::new();
    let open = Arc::new(AtomicUsize::new(0));
    tracing::info!(addr = %listener.local_addr().map_or_else(|e| e.to_string(), |a| a.to_string()), "listening");
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let slot = ConnectionSlot::take(&state, &open);
                    connections.spawn(serve_connection(
                        stream,
                        peer,
                        Arc::clone(&state),
                        builder.clone(),
                        connection_signal.clone(),
                        slot,
                        tls.clone(),
                    ));
                }
                Err(error) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next() => {}
            () = stopped(&mut signal) => break,
        }
    }
    state
        .shutting_down
        .store(true, std::sync::atomic::Ordering::Release);
    drop(listener);
    tracing::info!(
        in_flight = connections.len(),
        grace_ms = grace.as_millis() as u64,
        "shutting down"
    );
    let _ = stop_connections.send(true);
    let drained = tokio::time::timeout(grace, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            aborted = connections.len(),
            "shutdown deadline passed; aborting the remaining connections"
        );
        connections.shutdown().await;
    }
    tracing::info!("stopped");
}

/// One builder, cloned per connection, carrying the limits that protect us from clients.
fn connection_builder(config: &Config) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // We check the configured limit precisely in the handler, so hyper's read buffer sits
    // above it; past the buffer (or 100 fields) hyper answers 431 itself, and `head_guard`
    // turns that into the same JSON answer. Memory: at most this buffer per connection.
    let hard_header_limit = (config.server.max_header_bytes * 2).max(8192);
    builder
        .http1()
        .timer(TokioTimer::new())
        // Slowloris: a client must finish sending its headers within this time.
        .header_read_timeout(config.server.header_read_timeout)
        .max_buf_size(hard_header_limit)
        .keep_alive(true);
    // h2 refuses bigger lists itself, without a JSON body (see the module docs); it counts
    // 32 bytes more per field than the head's text. Memory: at most this per open stream.
    let h2_header_list = (config.server.max_header_bytes * 4).max(64 * 1024);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(h2_header_list).unwrap_or(u32::MAX))
        // Pings find dead HTTP/2 peers that hold streams open.
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .keep_alive_timeout(Duration::from_secs(20))
        .max_concurrent_streams(config.server.max_streams_per_connection);
    builder
}

/// One open client connection, counted against `server.max_connections` until dropped.
struct ConnectionSlot {
    open: Arc<AtomicUsize>,
    state: Arc<AppState>,
    /// Over the limit: the connection is answered `503` and closed.
    over_limit: bool,
}

impl ConnectionSlot {
    fn take(state: &Arc<AppState>, open: &Arc<AtomicUsize>) -> Self {
        let before = open.fetch_add(1, Ordering::AcqRel);
        state.metrics.connections.inc();
        Self {
            open: Arc::clone(open),
            state: Arc::clone(state),
            over_limit: before >= state.config.server.max_connections,
        }
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.open.fetch_sub(1, Ordering::AcqRel);
        self.state.metrics.connections.dec();
    }
}

/// Requests in progress on one connection, and since when none is, for `idle_timeout`.
struct Activity {
    in_flight: AtomicUsize,
    /// Requests handed to the service so far (response boundaries, see `head_guard`).
    calls: AtomicU64,
    /// A request head was refused (`431`): the connection closes, lingering first.
    refused: AtomicBool,
    idle_since: std::sync::Mutex<tokio::time::Instant>,
}

impl Activity {
    fn new() -> Self {
        Self {
            in_flight: AtomicUsize::new(0),
            calls: AtomicU64::new(0),
            refused: AtomicBool::new(false),
            idle_since: std::sync::Mutex::new(tokio::time::Instant::now()),
        }
    }

    /// Resolves once no request has been in progress for `limit`. Hyper has no idle timer
    /// for HTTP/2; HTTP/1.1 waits for its next request head under `header_read_timeout`.
    async fn idle_for(&self, limit: Duration) {
        let tick = (limit / 4).max(Duration::from_millis(50));
        loop {
            tokio::time::sleep(tick).await;
            let since = *self.idle_since.lock().unwrap_or_else(|e| e.into_inner());
            if self.in_flight.load(Ordering::Acquire) == 0 && since.elapsed() >= limit {
                return;
            }
        }
    }
}

/// One request in progress, until its response body is dropped.
struct InFlight(Arc<Activity>);

impl InFlight {
    fn new(activity: &Arc<Activity>) -> Self {
        activity.calls.fetch_add(1, Ordering::AcqRel);
        activity.in_flight.fetch_add(1, Ordering::AcqRel);
        Self(Arc::clone(activity))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        *self.0.idle_since.lock().unwrap_or_else(|e| e.into_inner()) = tokio::time::Instant::now();
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

pin_project_lite::pin_project! {
    /// A response body that keeps its connection counted busy until it is dropped.
    struct Guarded<B> {
        #[pin]
        inner: B,
        _busy: InFlight,
    }
}

impl<B: http_body::Body> http_body::Body for Guarded<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<B::Data>, B::Error>>> {
        self.project().inner.poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// A client connection's byte stream: TCP, or TLS over TCP.
trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin> Io for T {}

/// The first bytes of an HTTP/2 connection with prior knowledge.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Wait until the client has shown which protocol it speaks: `Some(true)` for HTTP/2.
/// Hyper's protocol detection has no timer of its own, so a client that connects and sends
/// nothing (or a partial HTTP/2 preface) would hold the connection forever; here it gets
/// `header_read_timeout`.
async fn protocol_shown(stream: &TcpStream, timeout: Duration) -> Option<bool> {
    let wait = async {
        let mut buf = [0u8; H2_PREFACE.len()];
        loop {
            match stream.peek(&mut buf).await {
                Ok(0) | Err(_) => return None,
                Ok(n) if n >= H2_PREFACE.len() || buf[..n] != H2_PREFACE[..n] => {
                    return Some(buf[..] == *H2_PREFACE)
                }
                // A partial preface: more bytes are on their way (peek does not consume).
                Ok(_) => tokio::time::sleep(Duration::from_millis(5)).await,
            }
        }
    };
    tokio::time::timeout(timeout, wait).await.ok().flatten()
}

async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    state: Arc<AppState>,
    mut builder: auto::Builder<TokioExecutor>,
    mut stop: watch::Receiver<bool>,
    slot: ConnectionSlot,
    tls: Option<Arc<tls::Acceptor>>,
) {
    let _ = stream.set_nodelay(true);
    let Ok(local) = stream.local_addr() else {
        return;
    };
    // The handshake runs here, in the connection's task, never in the accept loop.
    let (stream, proto, h2): (Box<dyn Io>, &'static str, bool) = match tls {
        None => {
            let Some(h2) = protocol_shown(&stream, state.config.server.header_read_timeout).await
            else {
                state
                    .metrics
                    .rejected
                    .with_label_values(&["header_read_timeout"])
                    .inc();
                return;
            };
            (Box::new(stream), "http", h2)
        }
        // Bounded by tls.handshake_timeout.
        Some(acceptor) => match acceptor.accept(stream).await {
            Ok((stream, h2)) => {
                // ALPN named the protocol: no detection read, and HTTP/1.1 gets
                // header_read_timeout from the start.
                builder = if h2 {
                    builder.http2_only()
                } else {
                    builder.http1_only()
                };
                (Box::new(stream), "https", h2)
            }
            Err(error) => {
                tracing::debug!(%peer, %error, "TLS handshake failed");
                if error.kind() == std::io::ErrorKind::TimedOut {
                    state
                        .metrics
                        .rejected
                        .with_label_values(&["tls_handshake_timeout"])
                        .inc();
                }
                return;
            }
        },
    };
    let over_limit = slot.over_limit;
    if over_limit {
        state
            .metrics
            .rejected
            .with_label_values(&["max_connections"])
            .inc();
        // Answer the first request, then close.
        builder.http1().keep_alive(false);
    }
    // A client that stops reading stalls our writes: past `stall_timeout` the write fails,
    // hyper drops the connection, and with it the response body and its storage read.
    let mut io = tokio_io_timeout::TimeoutStream::new(stream);
    io.set_write_timeout(Some(state.config.server.stall_timeout));
    let activity = Arc::new(Activity::new());
    let io = head_guard::HeadGuard::new(
        Box::pin(io),
        Arc::clone(&activity),
        !h2,
        peer,
        Arc::clone(&state.metrics),
    );
    let io = TokioIo::new(io);
    let conn = Connection { peer, local, proto };
    let idle_timeout = state.config.server.idle_timeout;
    let tracked = Arc::clone(&activity);
    let service = service_fn(move |request: http::Request<hyper::body::Incoming>| {
        let state = Arc::clone(&state);
        let busy = InFlight::new(&tracked);
        let activity = Arc::clone(&tracked);
        let http1 = request.version() < http::Version::HTTP_2;
        async move {
            let mut response = if over_limit {
                overloaded("max_connections")
            } else {
                state.handle(request, conn).await
            };
            if response.status() == http::StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE && http1 {
                // A refused head ends the connection; what follows may be its remainder.
                activity.refused.store(true, Ordering::Release);
                response.headers_mut().insert(
                    http::header::CONNECTION,
                    http::HeaderValue::from_static("close"),
                );
            }
            Ok::<_, Infallible>(response.map(|body| {
                crate::body::boxed(Guarded {
                    inner: body,
                    _busy: busy,
                })
            }))
        }
    });
    let connection = builder.serve_connection(io, service);
    tokio::pin!(connection);
    // An over-limit HTTP/2 connection could keep asking; it gets a short life.
    let over_limit_deadline = async {
        if over_limit {
            tokio::time::sleep(Duration::from_secs(5)).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    let result = tokio::select! {
        result = connection.as_mut() => result,
        () = activity.idle_for(idle_timeout) => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
        () = over_limit_deadline => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
        () = stopped(&mut stop) => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(error) = result {
        tracing::debug!(%peer, %error, "connection ended with an error");
    }
    drop(slot);
}

fn overloaded(limit: &'static str) -> http::Response<crate::body::Body> {
    let mut response = crate::error::GatewayError::Overloaded(limit).into_response();
    crate::serve::content::security_headers(response.headers_mut());
    response
}

/// Resolves once the flag is (or already was) set, or its sender is gone.
async fn stopped(flag: &mut watch::Receiver<bool>) {
    let _ = flag.wait_for(|stop| *stop).await;
}
