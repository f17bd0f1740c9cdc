//! The access log: the body wrapper that writes one access line, and counts the request
//! metrics, when a response has really finished, failed, or was dropped by a client that
//! went away.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http_body::{Frame, SizeHint};

use crate::causes;
use crate::http_util::body::{boxed, Body};
use crate::metrics::{Metrics, StorageUse};
use crate::storage::StorageError;

pin_project_lite::pin_project! {
    /// Counts the bytes a response body yields and logs one access line when it ends,
    /// fails, or is dropped unfinished (the client went away).
    ///
    /// Invariant: exactly one access line per response, written from `PinnedDrop` when
    /// no earlier point wrote it. A body has ended when it says so, returns `None`, or has
    /// yielded its declared `Content-Length`: hyper's HTTP/1.1 stops polling (and drops
    /// the body) as soon as that many bytes are written, so a drop after the last byte is
    /// a complete download, not a client that left.
    pub struct LoggedBody<B> {
        #[pin]
        inner: B,
        log: AccessLog,
        // The declared `Content-Length`, when there is one.
        expected: Option<u64>,
    }

    impl<B> PinnedDrop for LoggedBody<B> {
        fn drop(this: Pin<&mut Self>) {
            let log = this.project().log;
            let ending = if log.held.cut_by_shutdown.load(Ordering::Acquire) {
                Ending::Error("shutdown")
            } else {
                Ending::ClientGone
            };
            log.finish(ending);
        }
    }
}

/// What one access line (and the request metrics) says about a request.
pub struct AccessLog {
    pub span: tracing::Span,
    pub status: u16,
    pub started: Instant,
    pub bytes: u64,
    route: &'static str,
    held: Held,
    done: bool,
}

/// What an access line counts into, and holds while its body runs.
pub struct Held {
    pub metrics: Arc<Metrics>,
    /// Held until the body ends: the request counts against `server.max_streams`.
    pub permit: Option<tokio::sync::OwnedSemaphorePermit>,
    /// Storage requests and bytes the handler used.
    pub storage: Arc<StorageUse>,
    /// Set once the shutdown grace has passed (`AppState::cut_by_shutdown`).
    pub cut_by_shutdown: Arc<AtomicBool>,
}

#[derive(Debug, Clone, Copy)]
enum Ending {
    Complete,
    /// The body failed: the transfer was aborted, for this reason.
    Error(&'static str),
    ClientGone,
}

impl AccessLog {
    /// Counts the body as in flight until it finishes.
    pub fn new(
        span: tracing::Span,
        status: u16,
        started: Instant,
        route: &'static str,
        held: Held,
    ) -> Self {
        held.metrics.in_flight_streams.inc();
        Self {
            span,
            status,
            started,
            bytes: 0,
            route,
            held,
            done: false,
        }
    }

    fn finish(&mut self, outcome: Ending) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        self.held.permit = None;
        let elapsed = self.started.elapsed();
        let metrics = &self.held.metrics;
        metrics.in_flight_streams.dec();
        metrics
            .requests
            .with_label_values(&[self.route, &self.status.to_string()])
            .inc();
        metrics
            .request_seconds
            .with_label_values(&[self.route])
            .observe(elapsed.as_secs_f64());
        metrics
            .response_bytes
            .with_label_values(&[self.route])
            .inc_by(self.bytes);
        match outcome {
            Ending::Complete => {}
            Ending::Error(reason) => metrics.aborted_streams.with_label_values(&[reason]).inc(),
            Ending::ClientGone => metrics
                .aborted_streams
                .with_label_values(&["client_gone"])
                .inc(),
        }
        let duration_ms = elapsed.as_secs_f64() * 1000.0;
        tracing::info!(
            parent: &self.span,
            status = self.status,
            bytes = self.bytes,
            storage_requests = self.held.storage.requests(),
            storage_bytes = self.held.storage.bytes(),
            duration_ms,
            outcome = ?outcome,
            "response"
        );
    }
}

impl<B: http_body::Body> LoggedBody<B> {
    /// `expected` is the response's declared `Content-Length`, if any.
    pub fn new(inner: B, mut log: AccessLog, expected: Option<u64>) -> Self {
        // Hyper never polls a body that is empty from the start.
        if inner.is_end_stream() {
            log.finish(Ending::Complete);
        }
        Self {
            inner,
            log,
            expected,
        }
    }
}

/// Wrap a response's body in a [`LoggedBody`] that knows its declared length.
pub fn logged(response: http::Response<Body>, log: AccessLog) -> http::Response<Body> {
    let expected = response
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    response.map(|b| boxed(LoggedBody::new(b, log, expected)))
}

/// Why a body failed, from its error: a failed CRC or size check, storage, or the upstream.
fn abort_reason(error: &(dyn std::error::Error + 'static)) -> &'static str {
    for cause in causes::causes(error) {
        if cause.is::<StorageError>() {
            return "storage";
        }
        if cause.is::<hyper::Error>() {
            return "upstream";
        }
        if cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::InvalidData)
        {
            return "verification";
        }
    }
    "other"
}

impl<B> http_body::Body for LoggedBody<B>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: AsRef<dyn std::error::Error + Send + Sync + 'static>,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let mut this = self.project();
        let polled = this.inner.as_mut().poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.log.bytes += data.len() as u64;
                }
                // Hyper stops polling once the body says it has ended, or (HTTP/1.1) once
                // the declared length is written.
                if this.inner.is_end_stream() || Some(this.log.bytes) == *this.expected {
                    this.log.finish(Ending::Complete);
                }
            }
            Poll::Ready(Some(Err(error))) => {
                this.log.finish(Ending::Error(abort_reason(error.as_ref())))
            }
            // Ending short of the declared length is no complete download either.
            Poll::Ready(None) if this.expected.is_some_and(|n| this.log.bytes < n) => {
                this.log.finish(Ending::Error("other"))
            }
            Poll::Ready(None) => this.log.finish(Ending::Complete),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
