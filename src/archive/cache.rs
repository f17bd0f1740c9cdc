//! Opening archives in storage, and the cache of their indexes.
//!
//! An archive is opened with one suffix-range read of its tail, which also gives the
//! object's size and ETag; the central directory is parsed from those bytes, with one more
//! bounded read only when it starts before the tail. That read is parsed as it streams
//! ([`DirectoryParser`]), so an open holds the index being built, not the directory too;
//! a directory over `zip.max_directory_bytes` is refused from the end records' sizes,
//! before it is read. The result — index, ETag and the tail
//! bytes themselves, so an entry inside the tail needs no read at all — is cached by object
//! key (for a URL: without its query, which is a signature that changes on every answer)
//! in a byte-weighted cache. Every later read of the archive carries the ETag as a
//! precondition: a changed object fails that read, and the caller drops the entry and opens
//! the archive again.
//!
//! A burst of requests for one cold archive opens it once (moka's `try_get_with`).

use std::ops::Range;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures_util::TryStreamExt;
use moka::future::Cache;
use object_store::GetRange;

use super::budget::{BudgetSpent, MemoryBudget};
use super::index::{self, DirectoryParser, IndexLimits, TailOutcome, ZipError, ZipIndex};
use tracing::Instrument;

use crate::metrics::StorageUse;
use crate::metrics::{Metrics, ReadKind};
use crate::storage::{Location, Storage, StorageError};

/// An open archive: its index and what the opening read brought in.
pub struct Archive {
    /// Unique to this open of one object version, for caches keyed by it ([`super::hot`]).
    pub id: u64,
    pub index: ZipIndex,
    /// The ETag the index was built from, as the store spells it (for a URL without an
    /// ETag, a validator made from size and `Last-Modified`); every read is pinned to it.
    pub etag: Option<String>,
    pub size: u64,
    /// The object's last bytes, from `tail_start`.
    tail: Bytes,
    tail_start: u64,
}

impl Archive {
    /// `range` of the object, when the opening read already holds it.
    pub fn cached_bytes(&self, range: Range<u64>) -> Option<Bytes> {
        let start = range.start.checked_sub(self.tail_start)?;
        let end = range.end.checked_sub(self.tail_start)?;
        let (start, end) = (usize::try_from(start).ok()?, usize::try_from(end).ok()?);
        (start <= end && end <= self.tail.len()).then(|| self.tail.slice(start..end))
    }

    /// `range` of the object: from the opening read when it holds it, else one read pinned
    /// to the ETag. `Ok(None)` when the range runs past the object's end.
    pub async fn read(
        &self,
        storage: &Storage,
        path: &Location,
        range: Range<u64>,
    ) -> Result<
        Option<futures_util::stream::BoxStream<'static, Result<Bytes, StorageError>>>,
        StorageError,
    > {
        use futures_util::StreamExt as _;
        if let Some(bytes) = self.cached_bytes(range.clone()) {
            return Ok(Some(
                futures_util::stream::once(async move { Ok(bytes) }).boxed(),
            ));
        }
        if range.end > self.size {
            return Ok(None);
        }
        let bounded = Some(GetRange::Bounded(range));
        let object = storage
            .get(ReadKind::ZipEntry, path, bounded, self.etag.clone())
            .await?;
        Ok(Some(object.body))
    }

    fn weight(&self) -> u32 {
        u32::try_from(self.index.heap_bytes() + self.tail.len() + 256).unwrap_or(u32::MAX)
    }
}

static NEXT_ARCHIVE_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Why an archive could not be opened.
#[derive(Debug, Clone, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("{0}")]
    Zip(#[from] ZipError),
    #[error(transparent)]
    Busy(#[from] BudgetSpent),
}

pub struct ArchiveCache {
    entries: Cache<String, Arc<Archive>>,
    metrics: Arc<Metrics>,
    tail_bytes: u64,
    limits: IndexLimits,
    budget: MemoryBudget,
}

impl ArchiveCache {
    /// `capacity` bytes of indexes and tails; each archive opens with a `tail_bytes` read.
    pub fn new(
        capacity: u64,
        ttl: std::time::Duration,
        tail_bytes: u64,
        limits: IndexLimits,
        metrics: Arc<Metrics>,
    ) -> Self {
        let evictions = Arc::clone(&metrics);
        let defaults = crate::config::ZipConfig::default();
        let budget = MemoryBudget::new(
            defaults.memory_budget,
            defaults.max_decoder_memory,
            Arc::clone(&metrics),
        );
        Self {
            entries: Cache::builder()
                .max_capacity(capacity)
                .weigher(|_key: &String, archive: &Arc<Archive>| archive.weight())
                // Reads outside the tail are pinned to the ETag; entries served from the
                // cached tail, HEADs and 304s are not, so this bounds how long an object
                // replaced in place can be answered from its old index.
                .time_to_live(ttl)
                .eviction_listener(move |_key, _value, cause| {
                    if cause == moka::notification::RemovalCause::Size {
                        evictions.zip_index("eviction");
                    }
                })
                .build(),
            metrics,
            tail_bytes,
            limits,
            budget,
        }
    }

    /// Use `budget` (shared with the entry decoders) instead of the default one.
    pub fn with_budget(mut self, budget: MemoryBudget) -> Self {
        self.budget = budget;
        self
    }

    /// The memory budget archive opens and entry decoders draw from.
    pub fn budget(&self) -> &MemoryBudget {
        &self.budget
    }

    /// The open archive at `path`, from the cache or opened now; `true` when opened now.
    pub async fn open(
        &self,
        storage: &Storage,
        path: &Location,
    ) -> Result<(Arc<Archive>, bool), OpenError> {
        let opened_here = std::sync::atomic::AtomicBool::new(false);
        let archive = self
            .entries
            .try_get_with(path.cache_key(), async {
                opened_here.store(true, std::sync::atomic::Ordering::Relaxed);
                let span = tracing::debug_span!(
                    "archive_open",
                    object = %path,
                    storage_requests = tracing::field::Empty,
                    bytes = tracing::field::Empty,
                );
                let before = StorageUse::so_far();
                let opened = open(storage, path, self.tail_bytes, &self.limits, &self.budget)
                    .instrument(span.clone())
                    .await;
                let after = StorageUse::so_far();
                span.record("storage_requests", after.0 - before.0);
                span.record("bytes", after.1 - before.1);
                opened.map(Arc::new)
            })
            .await
            .map_err(|shared: Arc<OpenError>| (*shared).clone())?;
        let opened = opened_here.load(std::sync::atomic::Ordering::Relaxed);
        self.metrics.zip_index(if opened { "miss" } else { "hit" });
        Ok((archive, opened))
    }

    /// Forget an archive whose object changed.
    pub async fn invalidate(&self, path: &Location) {
        self.entries.invalidate(&path.cache_key()).await;
    }

    /// Cached archives and their weight, after pending maintenance (tests, metrics).
    pub async fn usage(&self) -> (u64, u64) {
        self.entries.run_pending_tasks().await;
        (self.entries.entry_count(), self.entries.weighted_size())
    }
}

/// One tail read, and at most a few bounded reads more (normally one, only when the
/// directory starts before the tail), all pinned to the tail's ETag.
async fn open(
    storage: &Storage,
    path: &Location,
    tail_bytes: u64,
    limits: &IndexLimits,
    budget: &MemoryBudget,
) -> Result<Archive, OpenError> {
    // Memory budget hook (issue 8): the tail buffer and parsing it, held until the index
    // is built (the built index is bounded by the index cache instead).
    let _tail_memory = budget.try_reserve(open_estimate(tail_bytes))?;
    let object = storage
        .get(
            ReadKind::ZipTail,
            path,
            Some(GetRange::Suffix(tail_bytes)),
            None,
        )
        .await?;
    let meta = object.meta;
    if meta.size == 0 {
        return Err(ZipError::EmptyObject.into());
    }
    let tail_start = object.range.start;
    let tail = collect(object.body, object.range.end - object.range.start).await?;
    let mut outcome = index::parse_tail(&tail, tail_start, meta.size, limits)?;
    // The parser asks at most three times; bound the loop anyway.
    for _ in 0..4 {
        match outcome {
            TailOutcome::Complete(index) => {
                let etag = match path {
                    Location::Key(_) => meta.etag,
                    Location::Url(_) => meta.validator(),
                };
                return Ok(Archive {
                    id: NEXT_ARCHIVE_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
                    index,
                    etag,
                    size: meta.size,
                    tail,
                    tail_start,
                });
            }
            TailOutcome::NeedRange { range, pending } => {
                let len = range.end.saturating_sub(range.start);
                if len > limits.max_directory_bytes.saturating_add(1024) {
                    return Err(ZipError::DirectoryTooLarge.into());
                }
                let etag = match path {
                    Location::Key(_) => meta.etag.clone(),
                    Location::Url(_) => meta.validator(),
                };
                outcome = match pending.into_directory() {
                    Ok(parser) => {
                        // Memory budget hook (issue 8): the directory's size is known from
                        // the end records; reserve parsing it as it streams before the read.
                        let _directory_memory = budget.try_reserve(directory_estimate(len))?;
                        let at_hand = (&tail, tail_start);
                        stream_directory(storage, path, range, parser, at_hand, etag).await?
                    }
                    Err(pending) => {
                        // A small range (an end record or a fresh tail), read whole.
                        let _memory = budget.try_reserve(open_estimate(len))?;
                        let bytes =
                            read_range(storage, path, range, &tail, tail_start, etag).await?;
                        index::parse_directory(&bytes, pending, limits)?
                    }
                };
            }
        }
    }
    Err(ZipError::Truncated.into())
}

/// Parses the central directory at `range` as it streams in: the part before the tail
/// from one ranged read, piece by piece, then the part in the tail. Its bytes are never
/// held together, so an open costs the index being built and one storage chunk.
async fn stream_directory(
    storage: &Storage,
    path: &Location,
    range: Range<u64>,
    mut parser: DirectoryParser,
    (tail, tail_start): (&Bytes, u64),
    etag: Option<String>,
) -> Result<TailOutcome, OpenError> {
    if range.start < tail_start {
        let mut body = read_before_tail(storage, path, &range, tail_start, etag).await?;
        while parser.wants_bytes() {
            let Some(chunk) = body.try_next().await? else {
                break;
            };
            parser.push(&chunk)?;
        }
    }
    if range.end > tail_start && parser.wants_bytes() {
        let in_tail = range.start.max(tail_start)..range.end;
        parser.push(tail_slice(tail, tail_start, in_tail)?)?;
    }
    Ok(parser.finish()?)
}

/// The part of `range` that lies in the tail (`tail` starts at `tail_start`).
fn tail_slice(tail: &Bytes, tail_start: u64, range: Range<u64>) -> Result<&[u8], ZipError> {
    let from = usize::try_from(range.start - tail_start).map_err(|_| ZipError::Truncated)?;
    let to = usize::try_from(range.end - tail_start).map_err(|_| ZipError::Truncated)?;
    tail.get(from..to).ok_or(ZipError::Truncated)
}

/// One ranged read of the part of `range` before the tail, with the ETag as precondition.
async fn read_before_tail(
    storage: &Storage,
    path: &Location,
    range: &Range<u64>,
    tail_start: u64,
    etag: Option<String>,
) -> Result<crate::storage::ByteStream, OpenError> {
    let read_end = range.end.min(tail_start);
    let object = storage
        .get(
            ReadKind::ZipDirectory,
            path,
            Some(GetRange::Bounded(range.start..read_end)),
            etag,
        )
        .await?;
    Ok(object.body)
}

/// What reading `bytes` whole (the tail, a small range) and parsing them holds at most:
/// the bytes themselves and the parse, which stays within 1.2 times them.
fn open_estimate(bytes: u64) -> u64 {
    bytes.saturating_add(bytes.saturating_mul(6) / 5)
}

/// What parsing `bytes` of directory as they stream holds at most: the index being built
/// (the bytes + 10 an entry) and the sort's scratch (28 bytes an entry), with entries of
/// 46 bytes or more, within twice them; the bytes themselves are never held together.
fn directory_estimate(bytes: u64) -> u64 {
    bytes.saturating_mul(2)
}

/// `range` of the object: from the tail when it covers it, else one ranged read of what
/// the tail lacks. Only for the small ranges (an end record, a fresh tail).
async fn read_range(
    storage: &Storage,
    path: &Location,
    range: Range<u64>,
    tail: &Bytes,
    tail_start: u64,
    etag: Option<String>,
) -> Result<Bytes, OpenError> {
    if range.start >= tail_start {
        // Cut at the tail's end, as before; a start past it is truncated.
        let end = range.end.min(tail_start + tail.len() as u64);
        let bytes = tail_slice(tail, tail_start, range.start..end)?;
        return Ok(tail.slice_ref(bytes));
    }
    // Read only up to where the tail starts and join the two.
    let read_end = range.end.min(tail_start);
    let body = read_before_tail(storage, path, &range, tail_start, etag).await?;
    let head = collect(body, read_end - range.start).await?;
    if range.end <= tail_start {
        return Ok(head);
    }
    let mut joined = BytesMut::with_capacity((range.end - range.start) as usize);
    joined.extend_from_slice(&head);
    joined.extend_from_slice(tail_slice(tail, tail_start, tail_start..range.end)?);
    Ok(joined.freeze())
}

async fn collect(body: crate::storage::ByteStream, expected: u64) -> Result<Bytes, OpenError> {
    let mut buffer = BytesMut::with_capacity(usize::try_from(expected).unwrap_or(0).min(64 << 20));
    let mut body = body;
    while let Some(chunk) = body.try_next().await? {
        buffer.extend_from_slice(&chunk);
    }
    Ok(buffer.freeze())
}
