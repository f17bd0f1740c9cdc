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
//! never reach the handler; on HTTP/1.1 `head_guard` swaps hyper's empty `431` for the
//! same JSON one. On HTTP/2, h2 answers a header list over `max_header_list_size` itself
//! with a body-less `431` HEADERS frame and a stream reset, and one over four times that
//! with GOAWAY; neither can carry a body (rewriting HPACK-coded frames is not an option), so
//! the list size is set at four times `max_header_bytes`: every head up to that reaches the
//! handler and gets the JSON answer. Every refusal gets an access line (the handler's, or
//! `head_guard`'s for hyper's), except h2's own, which the gateway never sees.

mod activity;
mod connection;
mod head_guard;

use connection::{connection_builder, serve_connection, ConnectionSlot};
pub mod tls;

use std::net::SocketAddr;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::config::Config;
use crate::dispatch::AppState;

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
        state
            .cut_by_shutdown
            .store(true, std::sync::atomic::Ordering::Release);
        tracing::warn!(
            aborted = connections.len(),
            "shutdown deadline passed; aborting the remaining connections"
        );
        connections.shutdown().await;
    }
    tracing::info!("stopped");
}

/// Resolves once the flag is (or already was) set, or its sender is gone.
async fn stopped(flag: &mut watch::Receiver<bool>) {
    let _ = flag.wait_for(|stop| *stop).await;
}
