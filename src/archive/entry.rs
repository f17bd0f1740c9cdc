//! One entry's bytes: skip its local header, decode as the compressed bytes arrive, and
//! verify CRC-32 and size while streaming.
//!
//! Invariant of [`Verified`]: the last chunk of an entry is held back until the CRC and
//! the size both match. With `Content-Length`, a body that was streamed in full looks
//! complete to a client even if it is wrong; holding back the last chunk turns a failed
//! check into an aborted transfer instead. Output past the declared size fails at once, so
//! an entry that inflates beyond what it declares cannot run away.
//!
//! Decoder memory (`entry/decode.rs`): each decoder's dictionary or window is read from the
//! entry's own header before the decoder exists, refused above `zip.max_decoder_memory`,
//! reserved from the memory budget for the life of the stream, and given to the decoder as
//! its own limit (liblzma's memlimit, zstd's `WindowLogMax`), which also holds for any later
//! header in the same stream (an xz stream's later blocks, a later zstd frame).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::{Stream, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio_util::io::{ReaderStream, StreamReader};

use super::budget::{human, BudgetSpent};
use super::index::{self, EntryInfo, Method};
use crate::storage::StorageError;

/// Decoded bytes per output chunk: the decoder's output buffer, the one chunk held back,
/// and the one hyper is writing bound the memory of a stream to a few times this.
pub const OUT_CHUNK: usize = 64 * 1024;

mod decode;
pub mod small;
pub use decode::{decoder, xz_dictionary, zstd_window, STREAM_BUFFERS};

/// Why an entry cannot be served.
#[derive(Debug, Clone, thiserror::Error)]
pub enum EntryError {
    #[error("entry is encrypted")]
    Encrypted,
    #[error("compression method {0} is not supported")]
    UnsupportedMethod(u16),
    #[error("local file header is missing or damaged")]
    BadLocalHeader,
    #[error("entry sizes do not fit in the archive")]
    SizesDoNotFit,
    #[error("stored entry's sizes differ: {compressed} bytes stored, {uncompressed} declared")]
    StoredSizeMismatch { compressed: u64, uncompressed: u64 },
    #[error("local file header disagrees with the central directory on the entry's {0}")]
    LocalHeaderMismatch(&'static str),
    #[error("LZMA properties header is damaged")]
    BadLzmaHeader,
    /// The header asks for more than `zip.max_decoder_memory`: refused before allocating.
    #[error("{method} {what} of {} exceeds zip.max_decoder_memory ({})", human(*.size), human(*.cap))]
    DecoderMemory {
        method: &'static str,
        what: &'static str,
        size: u64,
        cap: u64,
    },
    /// The decoder's own limit stopped it: a later header (an xz block, a zstd frame) asked
    /// for more than the first one, which is what was reserved.
    #[error("{method} stream needs more than the {} its first header declared (zip.max_decoder_memory is {})", human(*.limit), human(*.cap))]
    DecoderLimitReached {
        method: &'static str,
        limit: u64,
        cap: u64,
    },
    #[error(transparent)]
    Busy(#[from] BudgetSpent),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("reading the entry: {0}")]
    Io(String),
    /// Decoded bytes that fail the size or CRC-32 check (small entries, checked whole).
    #[error("{0}")]
    Corrupt(String),
}

impl EntryError {
    fn from_io(error: io::Error) -> Self {
        if let Some(entry) = error.get_ref().and_then(|e| e.downcast_ref::<EntryError>()) {
            return entry.clone();
        }
        match error
            .get_ref()
            .and_then(|e| e.downcast_ref::<StorageError>())
        {
            Some(storage) => Self::Storage(storage.clone()),
            None if error.kind() == io::ErrorKind::UnexpectedEof => Self::SizesDoNotFit,
            None => Self::Io(error.to_string()),
        }
    }
}

/// Refuse what cannot be decoded before any byte is read, and a stored entry whose
/// declared size is not the size of its bytes (a range of it would reach past them).
pub fn check_supported(info: &EntryInfo) -> Result<(), EntryError> {
    if info.is_encrypted() {
        return Err(EntryError::Encrypted);
    }
    if info.method == Method::Stored && info.compressed_size != info.uncompressed_size {
        return Err(EntryError::StoredSizeMismatch {
            compressed: info.compressed_size,
            uncompressed: info.uncompressed_size,
        });
    }
    match info.method {
        Method::Other(code) => Err(EntryError::UnsupportedMethod(code)),
        _ => Ok(()),
    }
}

type Raw = StreamReader<BoxStream<'static, io::Result<Bytes>>, Bytes>;

/// The entry's compressed bytes: `raw` starts at its local header. Reads and checks the
/// header (its own name and extra lengths, which may differ from the directory's).
pub async fn compressed(
    raw: BoxStream<'static, Result<Bytes, StorageError>>,
    info: &EntryInfo,
) -> Result<tokio::io::Take<Raw>, EntryError> {
    let stream = raw.map(|chunk| chunk.map_err(io::Error::other)).boxed();
    let mut reader = StreamReader::new(stream);
    let mut header = [0u8; 30];
    reader
        .read_exact(&mut header)
        .await
        .map_err(|e| match EntryError::from_io(e) {
            EntryError::SizesDoNotFit => EntryError::BadLocalHeader,
            other => other,
        })?;
    let span = data_span(&header, info)?;
    let header_len = span.start - info.local_header_offset;
    let mut skip = (&mut reader).take(header_len - 30);
    tokio::io::copy(&mut skip, &mut tokio::io::sink())
        .await
        .map_err(EntryError::from_io)?;
    Ok(reader.take(info.compressed_size))
}

/// Where the entry's compressed bytes are in the object, from its local header (the
/// first 30 bytes of `header`): inside `[local header, data_end)`, or an error. Also checks
/// that the local header agrees with the directory on the method and, when they are in it
/// (no data descriptor, not saturated for zip64), the CRC and sizes.
pub fn data_span(header: &[u8], info: &EntryInfo) -> Result<std::ops::Range<u64>, EntryError> {
    let header_len = index::local_header_len(header).map_err(|_| EntryError::BadLocalHeader)?;
    let data_start = info.local_header_offset + header_len;
    let data_end = data_start
        .checked_add(info.compressed_size)
        .filter(|&end| end <= info.data_end)
        .ok_or(EntryError::SizesDoNotFit)?;
    let le16 = |at: usize| u16::from_le_bytes([header[at], header[at + 1]]);
    let le32 = |at: usize| {
        u32::from_le_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]])
    };
    if Method::from(le16(8)) != info.method {
        return Err(EntryError::LocalHeaderMismatch("compression method"));
    }
    if le16(6) & 0x0008 == 0 {
        if le32(14) != info.crc32 {
            return Err(EntryError::LocalHeaderMismatch("CRC-32"));
        }
        let sizes = [
            (le32(18), info.compressed_size, "compressed size"),
            (le32(22), info.uncompressed_size, "uncompressed size"),
        ];
        for (local, central, what) in sizes {
            if local != u32::MAX && u64::from(local) != central {
                return Err(EntryError::LocalHeaderMismatch(what));
            }
        }
    }
    Ok(data_start..data_end)
}

/// Decoded chunks of at most [`OUT_CHUNK`] bytes.
pub fn chunks(decoder: Box<dyn AsyncRead + Send + Unpin>) -> BoxStream<'static, io::Result<Bytes>> {
    ReaderStream::with_capacity(decoder, OUT_CHUNK).boxed()
}

/// Checks CRC-32 and size of a whole entry while it streams; see the module docs.
pub struct Verified {
    inner: BoxStream<'static, io::Result<Bytes>>,
    hasher: crc32fast::Hasher,
    produced: u64,
    expected_size: u64,
    expected_crc: u32,
    held: Option<Bytes>,
    done: bool,
    /// For the log line when a check fails.
    label: String,
}

impl Verified {
    pub fn new(
        inner: BoxStream<'static, io::Result<Bytes>>,
        info: &EntryInfo,
        label: String,
    ) -> Self {
        Self {
            inner,
            hasher: crc32fast::Hasher::new(),
            produced: 0,
            expected_size: info.uncompressed_size,
            expected_crc: info.crc32,
            held: None,
            done: false,
            label,
        }
    }

    fn fail(&mut self, reason: String) -> Poll<Option<io::Result<Bytes>>> {
        self.done = true;
        self.held = None;
        tracing::error!(entry = %self.label, %reason, "entry failed verification; aborting the response");
        Poll::Ready(Some(Err(io::Error::new(
            io::ErrorKind::InvalidData,
            reason,
        ))))
    }
}

impl Stream for Verified {
    type Item = io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(this.held.take().map(Ok));
        }
        loop {
            match futures_util::ready!(this.inner.poll_next_unpin(cx)) {
                Some(Ok(chunk)) => {
                    if chunk.is_empty() {
                        continue;
                    }
                    this.produced += chunk.len() as u64;
                    if this.produced > this.expected_size {
                        let reason = format!(
                            "entry inflates past its declared size of {} bytes",
                            this.expected_size
                        );
                        return this.fail(reason);
                    }
                    this.hasher.update(&chunk);
                    if let Some(previous) = this.held.replace(chunk) {
                        return Poll::Ready(Some(Ok(previous)));
                    }
                }
                Some(Err(error)) => {
                    this.done = true;
                    this.held = None;
                    tracing::warn!(entry = %this.label, %error, "entry stream failed; aborting the response");
                    return Poll::Ready(Some(Err(error)));
                }
                None => {
                    if this.produced != this.expected_size {
                        let reason = format!(
                            "entry ended after {} of {} bytes",
                            this.produced, this.expected_size
                        );
                        return this.fail(reason);
                    }
                    let crc = std::mem::take(&mut this.hasher).finalize();
                    if crc != this.expected_crc {
                        let reason =
                            format!("CRC-32 {crc:08x} does not match {:08x}", this.expected_crc);
                        return this.fail(reason);
                    }
                    this.done = true;
                    return Poll::Ready(this.held.take().map(Ok));
                }
            }
        }
    }
}

/// Bytes `[start, start + len)` of a decoded stream: skips what precedes the range and
/// stops (dropping the source) once it is served.
pub struct Window {
    inner: BoxStream<'static, io::Result<Bytes>>,
    skip: u64,
    remaining: u64,
}

impl Window {
    pub fn new(inner: BoxStream<'static, io::Result<Bytes>>, range: std::ops::Range<u64>) -> Self {
        Self {
            inner,
            skip: range.start,
            remaining: range.end - range.start,
        }
    }
}

impl Stream for Window {
    type Item = io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        while this.remaining > 0 {
            let mut chunk = match futures_util::ready!(this.inner.poll_next_unpin(cx)) {
                Some(Ok(chunk)) => chunk,
                other => return Poll::Ready(other),
            };
            let len = chunk.len() as u64;
            if this.skip >= len {
                this.skip -= len;
                continue;
            }
            let from = this.skip as usize;
            this.skip = 0;
            chunk = chunk.slice(from..);
            if chunk.len() as u64 > this.remaining {
                chunk.truncate(this.remaining as usize);
            }
            this.remaining -= chunk.len() as u64;
            if this.remaining == 0 {
                // Release the source (and its storage read) now.
                this.inner = futures_util::stream::empty().boxed();
            }
            return Poll::Ready(Some(Ok(chunk)));
        }
        Poll::Ready(None)
    }
}
