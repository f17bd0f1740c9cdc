//! Object storage: where archives and job logs are, and how their bytes are read.
//!
//! An object is at a [`Location`]: a key in the configured store, or (upstream mode) a URL
//! the backend handed out, read by [`remote`]. Both answer the same `get`/`head` with the
//! same errors, so the archive and zip paths do not care which.
//!
//! A thin layer over `object_store`: storage keys from the configured templates, ranged
//! reads that return the object's metadata with the bytes (one round trip), large-chunk
//! reads for local files ([`mod@file`]), and one mapping of storage failures to
//! [`StorageError`]. Every body stream yields exactly the bytes of its range or ends in an
//! error: a short read is never a clean end.
//!
//! Local files get the gateway's own validators: the ETag comes from the open handle's
//! [`file::FilePin`] (device, inode, size, mtime and ctime in nanoseconds) instead of
//! `object_store`'s (inode, size, mtime in microseconds), which an in-place rewrite that
//! restores the mtime leaves unchanged. `head`, every `get` and every `If-Match` check use
//! that same ETag, so the archive download, the zip index cache (built from a tail read)
//! and the entry reads pinned to it agree; `object_store` is never asked to compare it.

mod build;
mod exact;
mod failure;
pub mod file;
mod object;
pub mod remote;

use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use object_store::path::Path;
use object_store::signer::Signer;
use object_store::{
    GetOptions, GetRange, GetResultPayload, ObjectMeta, ObjectStore, ObjectStoreExt,
};
use tracing::Instrument;

use crate::config::{KeyTemplate, StorageConfig};
use crate::metrics::{Metrics, ReadKind};

pub use build::build_store;
use exact::ExactLength;
pub use failure::StorageError;
use failure::{classify, file_error};
pub use object::{ByteStream, Location, Meta, Object};
pub use remote::{RemoteObject, RemoteReader};

pub struct Storage {
    /// `None` in upstream mode, where archives are located by the backend.
    store: Option<Arc<dyn ObjectStore>>,
    remote: RemoteReader,
    metrics: Arc<Metrics>,
    /// Present for stores that can presign URLs, when redirects are configured.
    signer: Option<Arc<dyn Signer>>,
    archive_key: KeyTemplate,
    trace_key: KeyTemplate,
    presign_ttl: Duration,
    /// `file://` storage: validators are computed here, from the open file (see above).
    local: bool,
    /// `file://` storage: files kept open between reads (`storage.open_files`).
    open_files: file::OpenFiles,
}

impl Storage {
    /// The store named by the configuration.
    pub fn from_config(config: &StorageConfig) -> Result<Self, String> {
        let built = build_store(config)?;
        let mut storage = Self::new(built.store, config);
        if config.redirect_downloads {
            storage.signer = built.signer;
        }
        Ok(storage)
    }

    /// Any store (tests wrap stores to count or break reads) with the configured keys.
    pub fn new(store: Arc<dyn ObjectStore>, config: &StorageConfig) -> Self {
        Self {
            store: Some(store),
            ..Self::without_store(config)
        }
    }

    /// No store: only URLs are read (upstream mode), with the configured timeouts and CAs.
    pub fn without_store(config: &StorageConfig) -> Self {
        Self::with_remote_roots(config, &[])
    }

    /// As [`Self::without_store`], also trusting `extra_roots` for URLs (the upstream's CA
    /// file: in upstream mode the backend's own route can be the archive).
    pub fn with_remote_roots(
        config: &StorageConfig,
        extra_roots: &[rustls::pki_types::CertificateDer<'static>],
    ) -> Self {
        let mut roots = match &config.ca_file {
            // Checked at load time; a file gone since leaves the platform's roots.
            Some(path) => crate::trust::ca_certificates(path).unwrap_or_default(),
            None => Vec::new(),
        };
        roots.extend_from_slice(extra_roots);
        let metrics = Arc::<Metrics>::default();
        Self {
            store: None,
            remote: RemoteReader::new(
                config.connect_timeout,
                config.read_timeout,
                &roots,
                Arc::clone(&metrics),
            ),
            metrics,
            signer: None,
            archive_key: config.archive_key.clone(),
            trace_key: config.trace_key.clone(),
            presign_ttl: config.presign_ttl,
            local: config
                .url
                .get(..7)
                .is_some_and(|scheme| scheme.eq_ignore_ascii_case("file://")),
            open_files: file::OpenFiles::new(config.open_files),
        }
    }

    /// Count this storage's requests in `metrics` (the gateway's registry).
    pub fn set_metrics(&mut self, metrics: Arc<Metrics>) {
        self.remote.set_metrics(Arc::clone(&metrics));
        self.metrics = metrics;
    }

    /// Local files kept open now (`storage.open_files`).
    pub fn open_files(&self) -> u64 {
        self.open_files.count()
    }

    /// Whether a store is configured (storage mode).
    pub fn has_store(&self) -> bool {
        self.store.is_some()
    }

    fn store(&self) -> Result<&Arc<dyn ObjectStore>, StorageError> {
        self.store.as_ref().ok_or_else(|| {
            StorageError::Unavailable("no store in artifacts.source = \"upstream\"".into())
        })
    }

    pub fn archive_path(&self, project_id: u64, job_id: u64) -> Location {
        Location::Key(Path::from(self.archive_key.render(project_id, job_id)))
    }

    pub fn trace_path(&self, project_id: u64, job_id: u64) -> Location {
        Location::Key(Path::from(self.trace_key.render(project_id, job_id)))
    }

    pub async fn head(&self, location: &Location) -> Result<Meta, StorageError> {
        let span = tracing::debug_span!("storage_head", object = %location);
        let read = async {
            let path = match location {
                Location::Key(path) => path,
                Location::Url(object) => return self.remote.head(object).await,
            };
            self.metrics.storage_request(ReadKind::Head);
            if let Some(file) = self.open_files.current(path) {
                return Ok(file.meta());
            }
            if !self.local {
                return self
                    .store()?
                    .head(path)
                    .await
                    .map(|meta| Meta::from(&meta))
                    .map_err(classify);
            }
            // A local "head" opens the file (no bytes are read) so that its ETag is the pin's.
            let options = GetOptions {
                head: true,
                ..GetOptions::default()
            };
            let result = self
                .store()?
                .get_opts(path, options)
                .await
                .map_err(classify)?;
            match result.payload {
                GetResultPayload::File(file, _) => {
                    Ok(self.keep_open(path, file, &result.meta)?.meta())
                }
                GetResultPayload::Stream(_) => Ok(Meta::from(&result.meta)),
            }
        };
        read.instrument(span).await
    }

    /// Read `range` of the object (all of it when `None`), in one request. When `if_match`
    /// is set the read fails with `PreconditionFailed` if the object changed.
    pub async fn get(
        &self,
        kind: ReadKind,
        location: &Location,
        range: Option<GetRange>,
        if_match: Option<String>,
    ) -> Result<Object, StorageError> {
        let span = tracing::debug_span!(
            "storage_read",
            kind = kind.as_str(),
            object = %location,
            storage_requests = 1,
            bytes = tracing::field::Empty,
        );
        let read = async {
            let path = match location {
                Location::Key(path) => path,
                Location::Url(object) => {
                    return self.remote.get(kind, object, range, if_match).await
                }
            };
            let store = self.store()?;
            self.metrics.storage_request(kind);
            let timer = self.metrics.storage_read_seconds.start_timer();
            if let Some(file) = self.open_files.get(path) {
                match self
                    .read_open(kind, &file, range.clone(), if_match.as_deref())
                    .await
                {
                    Ok(object) => {
                        timer.observe_duration();
                        return Ok(object);
                    }
                    // Failed on a file unchanged since it was opened: that is the answer.
                    Err(error) if matches!(file.changed(), Ok(None)) => return Err(error),
                    // Replaced, removed, grown (a running job's log) or rewritten since it
                    // was opened, so its size and validators are stale: open the path anew.
                    Err(_) => self.open_files.forget(path),
                }
            }
            let options = GetOptions {
                range: range.clone(),
                // Local ETags are ours: compared below, not by the store.
                if_match: if self.local { None } else { if_match.clone() },
                ..GetOptions::default()
            };
            let result = match store.get_opts(path, options).await {
                Ok(result) => result,
                Err(error) => return Err(self.explain_failed_get(path, range, error).await),
            };
            timer.observe_duration();
            let range = result.range.clone();
            let (meta, body) = match result.payload {
                GetResultPayload::File(file, _) => {
                    let file = self.keep_open(path, file, &result.meta)?;
                    (file.meta(), file_body(&file, range.clone()))
                }
                GetResultPayload::Stream(stream) => (
                    Meta::from(&result.meta),
                    stream.map(|chunk| chunk.map_err(classify)).boxed(),
                ),
            };
            if self.local && !etag_matches(if_match.as_deref(), meta.etag.as_deref()) {
                return Err(StorageError::PreconditionFailed);
            }
            Ok(self.object(kind, meta, range, body))
        };
        let object = read.instrument(span.clone()).await?;
        span.record("bytes", object.range.end - object.range.start);
        Ok(object)
    }

    /// The object handed out: its body counted as read and held to the range's length.
    fn object(&self, kind: ReadKind, meta: Meta, range: Range<u64>, body: ByteStream) -> Object {
        let metrics = Arc::clone(&self.metrics);
        let body = body
            .inspect(move |chunk| {
                if let Ok(chunk) = chunk {
                    metrics.storage_read(kind, chunk.len() as u64);
                }
            })
            .boxed();
        let body = ExactLength::new(body, range.end - range.start).boxed();
        Object { meta, range, body }
    }

    /// A local file just opened by the store, pinned and kept open for later reads.
    fn keep_open(
        &self,
        path: &Path,
        file: std::fs::File,
        meta: &ObjectMeta,
    ) -> Result<Arc<file::OpenFile>, StorageError> {
        self.metrics.file_opens.inc();
        let pin = pin_of(&file, meta)?;
        let file = Arc::new(file::OpenFile::new(file, pin, meta.last_modified));
        self.open_files.keep(path, &file);
        Ok(file)
    }

    /// `range` of a local file kept open: no open, no path lookup. A small range is read
    /// before this returns (from the page cache without leaving this thread), so a file
    /// replaced since it was opened is found here and the caller opens the path anew; a
    /// larger one is checked with one `fstat` first. Either way the bytes come from the
    /// version the pin names, or the read fails.
    async fn read_open(
        &self,
        kind: ReadKind,
        file: &Arc<file::OpenFile>,
        range: Option<GetRange>,
        if_match: Option<&str>,
    ) -> Result<Object, StorageError> {
        let size = file.pin.size;
        let range = match range {
            None => 0..size,
            Some(range) => range
                .as_range(size)
                .map_err(|_| StorageError::RangeNotSatisfiable { size })?,
        };
        let meta = file.meta();
        if !etag_matches(if_match, meta.etag.as_deref()) {
            return Err(StorageError::PreconditionFailed);
        }
        let stale =
            |e: std::io::Error| match e.get_ref().and_then(|e| e.downcast_ref::<file::Changed>()) {
                Some(_) => StorageError::PreconditionFailed,
                None => file_error(&e),
            };
        let body = if range.end - range.start <= file::SMALL_READ {
            let bytes = file.read_small(range.clone()).await.map_err(stale)?;
            futures_util::stream::once(async move { Ok(bytes) }).boxed()
        } else {
            if file.changed().map_err(|e| file_error(&e))?.is_some() {
                return Err(StorageError::PreconditionFailed);
            }
            file_body(file, range.clone())
        };
        Ok(self.object(kind, meta, range, body))
    }

    /// A ranged read failed with something that is not a known case: it may be a range
    /// past the end, which stores report in their own words. Ask for the size to tell.
    async fn explain_failed_get(
        &self,
        path: &Path,
        range: Option<GetRange>,
        error: object_store::Error,
    ) -> StorageError {
        let classified = classify(error);
        let (Some(range), StorageError::Unavailable(_)) = (range, &classified) else {
            return classified;
        };
        match self.head(&Location::Key(path.clone())).await {
            Ok(meta) if range.as_range(meta.size).is_err() => {
                StorageError::RangeNotSatisfiable { size: meta.size }
            }
            _ => classified,
        }
    }

    /// A short-lived URL for a direct download, when redirects are configured.
    pub async fn presigned_url(&self, location: &Location) -> Option<Result<String, StorageError>> {
        let signer = self.signer.as_ref()?;
        let Location::Key(path) = location else {
            return None;
        };
        Some(
            signer
                .signed_url(http::Method::GET, path, self.presign_ttl)
                .await
                .map(|url| url.to_string())
                .map_err(classify),
        )
    }
}

/// `range` of an open local file, in [`file::CHUNK`]s.
fn file_body(file: &Arc<file::OpenFile>, range: Range<u64>) -> ByteStream {
    file::FileChunks::new(Arc::clone(file), range)
        .map(|chunk| chunk.map_err(|e| file_error(&e)))
        .boxed()
}

/// The pin of a local file `object_store` just opened. It sized the range from its own
/// `fstat` of the same handle; a different size means the file changed in between.
fn pin_of(file: &std::fs::File, meta: &ObjectMeta) -> Result<file::FilePin, StorageError> {
    let pin = file::FilePin::of(file)
        .map_err(|e| StorageError::Unavailable(format!("reading file metadata: {e}")))?;
    if pin.size != meta.size {
        return Err(StorageError::PreconditionFailed);
    }
    Ok(pin)
}

/// `If-Match` as `object_store` applies it: `*` or any listed ETag matches.
fn etag_matches(if_match: Option<&str>, etag: Option<&str>) -> bool {
    match (if_match, etag) {
        (None, _) => true,
        (Some(wanted), Some(etag)) => {
            crate::http_util::conditional::etag_list_matches(wanted, etag)
        }
        (Some(wanted), None) => wanted.trim() == "*",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use futures_util::TryStreamExt;

    fn chunks(parts: &[&'static [u8]]) -> ByteStream {
        let parts: Vec<Result<Bytes, StorageError>> =
            parts.iter().map(|p| Ok(Bytes::from_static(p))).collect();
        futures_util::stream::iter(parts).boxed()
    }

    #[tokio::test]
    async fn exact_length_passes_a_complete_stream() {
        let all: Vec<Bytes> = ExactLength::new(chunks(&[b"ab", b"cd"]), 4)
            .try_collect()
            .await
            .unwrap();
        assert_eq!(all.concat(), b"abcd");
    }

    #[tokio::test]
    async fn exact_length_turns_a_short_or_long_stream_into_an_error() {
        let short: Result<Vec<Bytes>, _> =
            ExactLength::new(chunks(&[b"ab"]), 4).try_collect().await;
        assert!(matches!(short, Err(StorageError::Unavailable(m)) if m.contains("2 bytes early")));
        let long: Result<Vec<Bytes>, _> =
            ExactLength::new(chunks(&[b"abcde"]), 4).try_collect().await;
        assert!(long.is_err());
    }

    #[test]
    fn classifies_store_errors() {
        let not_found = object_store::Error::NotFound {
            path: "x".into(),
            source: "gone".into(),
        };
        assert!(matches!(classify(not_found), StorageError::NotFound));
        let timeout = object_store::Error::Generic {
            store: "S3",
            source: Box::new(std::io::Error::new(std::io::ErrorKind::TimedOut, "slow")),
        };
        assert!(matches!(classify(timeout), StorageError::Timeout(_)));
        let other = object_store::Error::Generic {
            store: "S3",
            source: "connection refused".into(),
        };
        assert!(matches!(classify(other), StorageError::Unavailable(_)));
    }

    #[test]
    fn if_match_lists_and_wildcards() {
        assert!(etag_matches(None, None));
        assert!(etag_matches(Some("*"), Some("\"a\"")));
        assert!(etag_matches(Some("\"b\", \"a\""), Some("\"a\"")));
        assert!(!etag_matches(Some("\"b\""), Some("\"a\"")));
        assert!(!etag_matches(Some("\"b\""), None));
    }

    /// `file://` storage over a new directory `artifact-gateway-<name>-<pid>` holding `file`.
    fn local_storage(name: &str, file: &str, bytes: &[u8]) -> (std::path::PathBuf, Storage) {
        let dir =
            std::env::temp_dir().join(format!("artifact-gateway-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(file), bytes).unwrap();
        let store = object_store::local::LocalFileSystem::new_with_prefix(&dir).unwrap();
        let config = StorageConfig {
            url: format!("file://{}", dir.display()),
            ..StorageConfig::default()
        };
        (dir, Storage::new(Arc::new(store), &config))
    }

    /// A kept-open local file that grew (a running job's log) or was replaced by a rename:
    /// the next read sees the path's current file, its new size and bytes, not the kept
    /// one's.
    #[tokio::test]
    async fn a_kept_file_that_grew_or_was_replaced_is_read_anew() {
        use std::io::Write;
        let (dir, storage) = local_storage("kept", "job.log", b"0123456789");
        let path = Location::Key(Path::from("job.log"));
        let read = |range: GetRange| async {
            let object = storage
                .get(ReadKind::Trace, &path, Some(range), None)
                .await?;
            let bytes: Vec<Bytes> = object.body.try_collect().await?;
            Ok::<_, StorageError>((object.meta.size, bytes.concat()))
        };
        assert_eq!(
            read(GetRange::Bounded(0..4)).await.unwrap(),
            (10, b"0123".to_vec())
        );
        assert_eq!(storage.open_files(), 1);
        let opens = storage.metrics.file_opens.get();
        // Kept: read again without opening.
        assert_eq!(
            read(GetRange::Offset(8)).await.unwrap(),
            (10, b"89".to_vec())
        );
        assert_eq!(storage.metrics.file_opens.get(), opens);
        // Grown: a range past the old end is served from the new size.
        let mut log = std::fs::OpenOptions::new()
            .append(true)
            .open(dir.join("job.log"))
            .unwrap();
        log.write_all(b"abcdef").unwrap();
        assert_eq!(
            read(GetRange::Offset(12)).await.unwrap(),
            (16, b"cdef".to_vec())
        );
        // Replaced by a rename: the new file's bytes.
        std::fs::write(dir.join("new.log"), b"replaced").unwrap();
        std::fs::rename(dir.join("new.log"), dir.join("job.log")).unwrap();
        assert_eq!(
            read(GetRange::Bounded(0..8)).await.unwrap(),
            (8, b"replaced".to_vec())
        );
        // Removed: not found, however the file was kept.
        std::fs::remove_file(dir.join("job.log")).unwrap();
        assert!(matches!(
            read(GetRange::Bounded(0..1)).await,
            Err(StorageError::NotFound)
        ));
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// Local storage: `head` and `get` report the pin's ETag, and `If-Match` is checked
    /// against it (object_store would compare its own ETag and refuse every read).
    #[tokio::test]
    async fn local_etags_are_the_pins_in_head_get_and_if_match() {
        let (dir, storage) = local_storage("etag", "a.bin", b"0123456789");
        let path = Location::Key(Path::from("a.bin"));
        let pin = file::FilePin::of(&std::fs::File::open(dir.join("a.bin")).unwrap()).unwrap();
        let head = storage.head(&path).await.unwrap();
        assert_eq!(head.etag.as_deref(), Some(pin.etag().as_str()));
        let read = |if_match: Option<String>| {
            storage.get(
                ReadKind::ZipEntry,
                &path,
                Some(GetRange::Bounded(2..5)),
                if_match,
            )
        };
        let Ok(object) = read(head.etag.clone()).await else {
            panic!("the pin's ETag matches");
        };
        assert_eq!(object.meta.etag, head.etag);
        let bytes: Vec<Bytes> = object.body.try_collect().await.unwrap();
        assert_eq!(bytes.concat(), b"234");
        assert!(matches!(
            read(Some("\"other\"".into())).await.err(),
            Some(StorageError::PreconditionFailed)
        ));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
