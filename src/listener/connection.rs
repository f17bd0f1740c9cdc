//! One client connection: hyper's HTTP/1.1 and HTTP/2 builder with the limits that protect
//! the gateway, the `server.max_connections` slot, idle tracking (a connection is idle when
//! no request is in flight and no response body is being written), the body wrapper that
//! keeps it busy, the sniffing of TLS and the HTTP/2 preface, and the shutdown signal.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpStream;
use tokio::sync::watch;

use super::activity::{Activity, InFlight};
use super::{head_guard, stopped, tls};
use crate::config::Config;
use crate::dispatch::{AppState, Connection};
use crate::error::GatewayError;

/// One builder, cloned per connection, carrying the limits that protect us from clients.
pub(super) fn connection_builder(config: &Config) -> auto::Builder<TokioExecutor> {
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
pub(super) struct ConnectionSlot {
    open: Arc<AtomicUsize>,
    state: Arc<AppState>,
    /// Over the limit: the connection is answered `503` and closed.
    over_limit: bool,
}

impl ConnectionSlot {
    pub(super) fn take(state: &Arc<AppState>, open: &Arc<AtomicUsize>) -> Self {
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

pub(super) async fn serve_connection(
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
                let error = GatewayError::Overloaded("max_connections");
                state.refuse(request, conn, error).await
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
                crate::http_util::body::boxed(Guarded {
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
