//! The HTTP/1.1 connection's byte stream, as hyper sees it: it swaps hyper's own bare
//! `400`, `414` and `431` answers for the gateway's JSON ones, and closes refused
//! connections without losing the answer.
//!
//! Hyper answers a request head itself, with an empty body, when the head cannot be parsed
//! (`400`: a bad method, header, URI or version, duplicate `Content-Length`, obs-fold), when
//! the URI is longer than it takes (`414`), or when the head overflows its read buffer
//! (`max_buf_size`) or its header slots (`max_headers`) (`431`): the head never reaches the
//! service, so the gateway's JSON refusal cannot be sent from there. Hyper
//! writes that answer only at a response boundary, and the boundary is known here without
//! parsing anything: every earlier request was handed to the service (counted in
//! [`Activity`]), every response body was dropped, and hyper flushed its buffer after that.
//! A write that starts `HTTP/1.1 400 `, `414 ` or `431 ` at such a boundary, with no request
//! handed to the service since, can only be hyper's own answer; it is replaced whole by the
//! gateway's answer for that status ([`json_answer`]). No
//! other byte is ever inspected or changed, so response bodies cannot be touched.
//!
//! After a refusal the client may still be sending the rest of a huge head. Closing with
//! unread input makes the kernel send a reset, which can destroy the answer before the
//! client reads it; so the connection lingers: write side shut, input read and discarded
//! for at most [`LINGER`] and [`LINGER_BYTES`].

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::task::{ready, Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::activity::Activity;
use crate::error::GatewayError;
use crate::metrics::Metrics;

/// Hyper's automatic answers to a head it cannot take, by how they begin, with the
/// gateway's error for each.
const HYPER_ANSWERS: [(&[u8], Refusal); 3] = [
    (b"HTTP/1.1 400 ", Refusal::Malformed),
    (b"HTTP/1.1 414 ", Refusal::UriTooLong),
    (b"HTTP/1.1 431 ", Refusal::TooLarge),
];

/// Why hyper refused a head itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Refusal {
    Malformed,
    UriTooLong,
    TooLarge,
}

impl Refusal {
    fn error(self) -> GatewayError {
        match self {
            Self::Malformed => GatewayError::BadRequest("malformed request head"),
            Self::UriTooLong => GatewayError::UriTooLong,
            Self::TooLarge => GatewayError::HeadersTooLarge,
        }
    }

    fn reason(self) -> &'static str {
        match self {
            Self::Malformed => "request head the parser refused (syntax or framing)",
            Self::UriTooLong => "request target longer than the parser takes",
            Self::TooLarge => "request head over the parser's limits (buffer or header count)",
        }
    }
}

/// Longest a refused connection keeps reading (and discarding) what the client still sends.
pub(super) const LINGER: Duration = Duration::from_secs(2);
/// Most bytes a refused connection discards before it closes anyway.
pub(super) const LINGER_BYTES: u64 = 4 << 20;
/// Scratch buffer of a lingering connection (allocated only then): 8 KiB per connection.
const LINGER_BUFFER: usize = 8 * 1024;

/// The complete HTTP/1.1 answer that replaces hyper's: the gateway's refusal with its JSON
/// body and the headers every API answer carries, then the connection closes. Built once
/// per kind.
pub(super) fn json_answer(refusal: Refusal) -> &'static [u8] {
    static BYTES: [OnceLock<Vec<u8>>; 3] = [OnceLock::new(), OnceLock::new(), OnceLock::new()];
    BYTES[refusal as usize].get_or_init(|| {
        let error = refusal.error();
        let body = serde_json::to_vec(&error.body()).unwrap_or_default();
        let response = error.to_response();
        let mut out = format!(
            "HTTP/1.1 {} {}\r\n",
            error.status().as_u16(),
            error.status().canonical_reason().unwrap_or("")
        )
        .into_bytes();
        for (name, value) in response.headers() {
            out.extend_from_slice(name.as_str().as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(
            format!(
                "content-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            )
            .as_bytes(),
        );
        out.extend_from_slice(&body);
        out
    })
}

/// Reading and discarding after a refusal.
struct Linger {
    deadline: Pin<Box<tokio::time::Sleep>>,
    buffer: Box<[u8]>,
    drained: u64,
}

pub(super) struct HeadGuard<T> {
    inner: T,
    activity: Arc<Activity>,
    /// Only HTTP/1 connections are watched; HTTP/2 passes through untouched.
    http1: bool,
    /// `activity.calls` at the last response boundary, until the next write.
    boundary: Option<u64>,
    /// Our answer, and how much of it is written, once hyper's was swallowed. Whatever
    /// hyper writes after that is discarded.
    replacement: Option<(&'static [u8], usize)>,
    linger: Option<Linger>,
    peer: SocketAddr,
    metrics: Arc<Metrics>,
}

impl<T> HeadGuard<T> {
    pub(super) fn new(
        inner: T,
        activity: Arc<Activity>,
        http1: bool,
        peer: SocketAddr,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            inner,
            activity,
            http1,
            boundary: Some(0),
            replacement: None,
            linger: None,
            peer,
            metrics,
        }
    }

    /// Whether `first` (the start of a write) is one of hyper's own answers, swapping it
    /// if so.
    fn intercept(&mut self, first: &[u8]) -> bool {
        if self.replacement.is_some() {
            return true;
        }
        let at_boundary = self.boundary.take() == Some(self.activity.calls.load(Ordering::Acquire));
        if !(self.http1 && at_boundary) {
            return false;
        }
        let Some(refusal) = HYPER_ANSWERS
            .iter()
            .find(|(start, _)| first.starts_with(start))
            .map(|(_, refusal)| *refusal)
        else {
            return false;
        };
        self.replacement = Some((json_answer(refusal), 0));
        self.activity.refused.store(true, Ordering::Release);
        let status = refusal.error().status().as_u16();
        if refusal == Refusal::TooLarge {
            self.metrics
                .rejected
                .with_label_values(&["header_bytes"])
                .inc();
        }
        self.metrics
            .requests
            .with_label_values(&["invalid", &status.to_string()])
            .inc();
        tracing::info!(
            peer = %self.peer.ip(),
            route = "invalid",
            status,
            outcome = "Refused",
            reason = refusal.reason(),
            "response"
        );
        true
    }
}

impl<T: AsyncWrite + Unpin> HeadGuard<T> {
    /// Write the rest of our answer, if one is pending.
    fn poll_replacement(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let Some((bytes, written)) = self.replacement.as_mut() else {
            return Poll::Ready(Ok(()));
        };
        while *written < bytes.len() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &bytes[*written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *written += n;
        }
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for HeadGuard<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncWrite for HeadGuard<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        if self.intercept(buf) {
            ready!(self.poll_replacement(cx))?;
            return Poll::Ready(Ok(buf.len()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let Some(first) = bufs.iter().find(|b| !b.is_empty()) else {
            return Poll::Ready(Ok(0));
        };
        if self.intercept(first) {
            ready!(self.poll_replacement(cx))?;
            return Poll::Ready(Ok(bufs.iter().map(|b| b.len()).sum()));
        }
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_replacement(cx))?;
        ready!(Pin::new(&mut self.inner).poll_flush(cx))?;
        // Hyper flushes only an empty buffer: with no response in progress, the next write
        // starts a response.
        if self.activity.in_flight.load(Ordering::Acquire) == 0 {
            self.boundary = Some(self.activity.calls.load(Ordering::Acquire));
        }
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_replacement(cx))?;
        if !self.activity.refused.load(Ordering::Acquire) {
            return Pin::new(&mut self.inner).poll_shutdown(cx);
        }
        if self.linger.is_none() {
            ready!(Pin::new(&mut self.inner).poll_shutdown(cx))?;
            self.linger = Some(Linger {
                deadline: Box::pin(tokio::time::sleep(LINGER)),
                buffer: vec![0; LINGER_BUFFER].into_boxed_slice(),
                drained: 0,
            });
        }
        let this = &mut *self;
        let linger = this.linger.as_mut().expect("set above");
        while linger.drained < LINGER_BYTES && linger.deadline.as_mut().poll(cx).is_pending() {
            let mut buf = ReadBuf::new(&mut linger.buffer);
            match ready!(Pin::new(&mut this.inner).poll_read(cx, &mut buf)) {
                Ok(()) if !buf.filled().is_empty() => linger.drained += buf.filled().len() as u64,
                // The client closed, or the connection failed: nothing left to protect.
                _ => break,
            }
        }
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_replacements_are_the_gateways_json_answers() {
        for (refusal, status, message) in [
            (Refusal::Malformed, "400 Bad Request", "400 Bad request"),
            (Refusal::UriTooLong, "414 URI Too Long", "414 URI Too Long"),
        ] {
            let text = String::from_utf8(json_answer(refusal).to_vec()).unwrap();
            let (head, body) = text.split_once("\r\n\r\n").unwrap();
            assert!(
                head.starts_with(&format!("HTTP/1.1 {status}\r\n")),
                "{head}"
            );
            assert_eq!(body, format!(r#"{{"message":"{message}"}}"#));
            assert!(head.contains("connection: close"));
        }
        let text = String::from_utf8(json_answer(Refusal::TooLarge).to_vec()).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"));
        assert_eq!(body, r#"{"message":"431 Request Header Fields Too Large"}"#);
        let head = head.to_ascii_lowercase();
        assert!(head.contains(&format!("content-length: {}", body.len())));
        assert!(head.contains("content-type: application/json"));
        assert!(head.contains("connection: close"));
    }

    /// Only hyper's own answer at a boundary is swapped: body bytes that look like a 431,
    /// and the service's own 431, pass through untouched.
    #[tokio::test]
    async fn only_a_431_at_a_response_boundary_without_a_request_is_replaced() {
        use super::super::activity::InFlight;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let bare = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\n\r\n";
        let (ours, mut theirs) = tokio::io::duplex(64 * 1024);
        let activity = Arc::new(Activity::new());
        let peer = SocketAddr::from(([127, 0, 0, 1], 1));
        let mut guard = HeadGuard::new(ours, Arc::clone(&activity), true, peer, Arc::default());
        // A response in progress whose body happens to hold a bare 431 at a write start.
        let busy = InFlight::new(&activity);
        guard
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 70\r\n\r\n")
            .await
            .unwrap();
        guard.flush().await.unwrap();
        guard.write_all(bare).await.unwrap();
        drop(busy);
        guard.flush().await.unwrap();
        // The service's own 431 (a request was handed to it since the boundary).
        let busy = InFlight::new(&activity);
        guard.write_all(bare).await.unwrap();
        drop(busy);
        guard.flush().await.unwrap();
        // Hyper's own: at a boundary, no request since.
        guard.write_all(bare).await.unwrap();
        guard.flush().await.unwrap();
        drop(guard);
        let mut seen = Vec::new();
        theirs.read_to_end(&mut seen).await.unwrap();
        let mut expected = b"HTTP/1.1 200 OK\r\ncontent-length: 70\r\n\r\n".to_vec();
        expected.extend_from_slice(bare);
        expected.extend_from_slice(bare);
        expected.extend_from_slice(json_answer(Refusal::TooLarge));
        assert_eq!(
            String::from_utf8_lossy(&seen),
            String::from_utf8_lossy(&expected)
        );
        assert!(activity.refused.load(Ordering::Acquire));
    }
}
