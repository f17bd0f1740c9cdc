//! The stream wrapper that holds a store to the length of the range it promised.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::Stream;

use super::{ByteStream, StorageError};

pin_project_lite::pin_project! {
    /// Ends with an error unless the inner stream yields exactly `expected` bytes: a store
    /// that sends less (or more) than the range it promised must not look complete.
    pub(super) struct ExactLength {
        #[pin]
        inner: ByteStream,
        remaining: u64,
    }
}

impl ExactLength {
    pub(super) fn new(inner: ByteStream, expected: u64) -> Self {
        Self {
            inner,
            remaining: expected,
        }
    }
}

impl Stream for ExactLength {
    type Item = Result<Bytes, StorageError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.project();
        match futures_util::ready!(this.inner.poll_next(cx)) {
            Some(Ok(chunk)) => {
                let len = chunk.len() as u64;
                if len > *this.remaining {
                    *this.remaining = 0;
                    return Poll::Ready(Some(Err(StorageError::Unavailable(
                        "storage sent more bytes than the range".into(),
                    ))));
                }
                *this.remaining -= len;
                Poll::Ready(Some(Ok(chunk)))
            }
            Some(Err(error)) => Poll::Ready(Some(Err(error))),
            None if *this.remaining > 0 => {
                let missing = std::mem::take(this.remaining);
                Poll::Ready(Some(Err(StorageError::Unavailable(format!(
                    "storage stream ended {missing} bytes early"
                )))))
            }
            None => Poll::Ready(None),
        }
    }
}
