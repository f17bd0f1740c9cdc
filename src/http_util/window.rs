//! [`WindowBody`]: bytes `[start, end)` of another body, for a `206` cut out of a `200`
//! whose source cannot seek (the backend's streamed answer).
//!
//! Invariants: what precedes the range is read and dropped chunk by chunk (never
//! collected), chunks are sliced without copying, and the source is dropped as soon as the
//! last wanted byte is out. A source that ends before the range is complete yields an
//! error, never a clean end: the client was promised `end - start` bytes, and only an
//! aborted transfer tells it that fewer came. Non-data frames (trailers) are dropped; they
//! describe the whole message, not the range.

use std::io;
use std::ops::Range;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

use crate::http_util::body::BoxError;

pub struct WindowBody<B> {
    /// `None` once the range is served or the source failed.
    inner: Option<B>,
    /// Bytes still to drop before the range starts.
    skip: u64,
    /// Bytes of the range still to yield.
    remaining: u64,
}

impl<B> WindowBody<B> {
    pub fn new(inner: B, range: Range<u64>) -> Self {
        Self {
            inner: Some(inner),
            skip: range.start,
            remaining: range.end.saturating_sub(range.start),
        }
    }
}

impl<B> Body for WindowBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        while this.remaining > 0 {
            let Some(inner) = this.inner.as_mut() else {
                // Failed earlier; the error was the answer.
                return Poll::Ready(None);
            };
            let frame = match ready!(Pin::new(inner).poll_frame(cx)) {
                Some(Ok(frame)) => frame,
                Some(Err(error)) => {
                    this.inner = None;
                    return Poll::Ready(Some(Err(error.into())));
                }
                None => {
                    this.inner = None;
                    let short = io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("source ended {} bytes short of the range", this.remaining),
                    );
                    return Poll::Ready(Some(Err(short.into())));
                }
            };
            let Ok(mut data) = frame.into_data() else {
                continue;
            };
            let len = data.len() as u64;
            if this.skip >= len {
                this.skip -= len;
                continue;
            }
            // `skip < len <= usize::MAX` here, and `truncate` only shortens.
            data = data.slice(this.skip as usize..);
            this.skip = 0;
            if data.len() as u64 > this.remaining {
                data.truncate(this.remaining as usize);
            }
            this.remaining -= data.len() as u64;
            if this.remaining == 0 {
                // Release the source (and its connection) now, not when hyper drops us.
                this.inner = None;
            }
            return Poll::Ready(Some(Ok(Frame::data(data))));
        }
        this.inner = None;
        Poll::Ready(None)
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::stream;
    use http_body_util::{BodyExt, StreamBody};

    type Chunks = StreamBody<stream::Iter<std::vec::IntoIter<Result<Frame<Bytes>, io::Error>>>>;

    /// A source that yields `chunks`, then `tail` (an error) if given.
    fn source(chunks: &[&str], tail: Option<io::Error>) -> Chunks {
        let mut frames: Vec<Result<Frame<Bytes>, io::Error>> = chunks
            .iter()
            .map(|c| Ok(Frame::data(Bytes::copy_from_slice(c.as_bytes()))))
            .collect();
        frames.extend(tail.map(Err));
        StreamBody::new(stream::iter(frames))
    }

    async fn collect(body: WindowBody<Chunks>) -> Result<Vec<u8>, BoxError> {
        Ok(body.collect().await?.to_bytes().to_vec())
    }

    #[tokio::test]
    async fn yields_exactly_the_range_across_chunk_edges() {
        let chunks = ["0123", "4567", "89"];
        for (range, want) in [
            (0..10, "0123456789"),
            (0..1, "0"),
            (3..5, "34"),
            (4..8, "4567"),
            (5..10, "56789"),
            (9..10, "9"),
            (2..9, "2345678"),
        ] {
            let body = WindowBody::new(source(&chunks, None), range.clone());
            assert_eq!(body.size_hint().exact(), Some(range.end - range.start));
            let got = collect(body).await.unwrap();
            assert_eq!(String::from_utf8(got).unwrap(), want, "{range:?}");
        }
    }

    #[tokio::test]
    async fn stops_reading_once_the_range_is_out() {
        // A failure after the range never reaches the client.
        let failing = source(&["abc", "def"], Some(io::Error::other("after the range")));
        let got = collect(WindowBody::new(failing, 1..3)).await.unwrap();
        assert_eq!(got, b"bc");
    }

    #[tokio::test]
    async fn a_source_that_ends_short_is_an_error() {
        let error = collect(WindowBody::new(source(&["abc", "de"], None), 2..9))
            .await
            .unwrap_err();
        assert!(error.to_string().contains("4 bytes short"), "{error}");
        // Short before the range even starts.
        assert!(collect(WindowBody::new(source(&["ab"], None), 5..6))
            .await
            .is_err());
    }

    #[tokio::test]
    async fn a_source_error_inside_the_range_passes_through() {
        let failing = source(&["abc"], Some(io::Error::other("reset")));
        let error = collect(WindowBody::new(failing, 0..6)).await.unwrap_err();
        assert_eq!(error.to_string(), "reset");
    }

    #[test]
    fn an_empty_range_is_ended_from_the_start() {
        let body = WindowBody::new(source(&["abc"], None), 1..1);
        assert!(body.is_end_stream());
    }
}
