//! Real object storage for tests: a local directory or the in-process S3 server, and a
//! `Tap` store wrapper that counts requests and bytes and can break a read midway.
#![allow(dead_code)]

use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use artifact_gateway::config::{ArtifactSource, Config, Secret};
use async_trait::async_trait;
use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetRange, GetResult, GetResultPayload, ListResult, MultipartUpload,
    ObjectMeta, ObjectStore, PutMultipartOptions, PutOptions, PutPayload, PutResult,
};
use sample_backend::{ArtifactStore, DownloadMode, SampleBackend};

use super::s3::S3Server;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Local,
    S3,
    /// `artifacts.source = "upstream"` in front of the sample backend's GitLab-faithful
    /// mode: archives at hashed `@final` keys in the S3 server, the archive routes answering
    /// 302 to a fresh presigned URL.
    Upstream,
    /// As `Upstream`, with the archive routes answering 200 with the bytes (GitLab's
    /// `proxy_download`).
    UpstreamProxy,
}

impl Kind {
    pub fn is_upstream(self) -> bool {
        matches!(self, Kind::Upstream | Kind::UpstreamProxy)
    }
}

pub struct TestStorage {
    pub kind: Kind,
    /// Local: the storage root. S3: unused.
    dir: PathBuf,
    s3: Option<S3Server>,
    /// Upstream kinds: the backend's object key of each job's archive.
    archive_keys: Mutex<std::collections::BTreeMap<u64, String>>,
}

static NEXT: AtomicUsize = AtomicUsize::new(0);

impl TestStorage {
    pub async fn start(kind: Kind) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "artifact-gateway-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let s3 = match kind {
            Kind::Local => None,
            _ => Some(S3Server::start("artifacts").await),
        };
        Self {
            kind,
            dir,
            s3,
            archive_keys: Mutex::default(),
        }
    }

    /// The sample backend's object storage for the upstream kinds (signing for this S3
    /// server); `None` for the others.
    pub fn artifact_store(&self) -> Option<ArtifactStore> {
        let mode = match self.kind {
            Kind::Upstream => DownloadMode::Redirect,
            Kind::UpstreamProxy => DownloadMode::Proxy,
            Kind::Local | Kind::S3 => return None,
        };
        Some(self.s3.as_ref()?.artifact_store(mode))
    }

    /// Upstream kinds: learn where the backend keeps each job's archive.
    pub fn learn_archive_keys(&self, backend: &SampleBackend) {
        *self.archive_keys.lock().unwrap() = backend.archive_keys();
    }

    /// The key a test names (`{project_id}/{job_id}/artifacts.zip`, storage mode's default
    /// template) where this storage keeps it: the backend's hashed key in upstream kinds.
    fn stored_key(&self, key: &str) -> String {
        if !self.kind.is_upstream() || !key.ends_with("/artifacts.zip") {
            return key.to_owned();
        }
        let job: u64 = key
            .split('/')
            .nth(1)
            .and_then(|job| job.parse().ok())
            .unwrap_or_else(|| panic!("{key} does not name a job"));
        self.archive_keys
            .lock()
            .unwrap()
            .get(&job)
            .cloned()
            .unwrap_or_else(|| panic!("the backend has no archive for job {job} ({key})"))
    }

    /// The S3 server, for the kinds that have one.
    pub fn s3(&self) -> Option<&S3Server> {
        self.s3.as_ref()
    }

    pub fn put(&self, key: &str, bytes: &[u8]) {
        let key = &self.stored_key(key);
        match &self.s3 {
            Some(s3) => s3.put(key, bytes),
            None => {
                let path = self.dir.join(key);
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(path, bytes).unwrap();
            }
        }
    }

    /// The file that holds the object `key` (whether or not it exists), for archives
    /// written in place (sparse files too big to pass around).
    pub fn object_path(&self, key: &str) -> PathBuf {
        let key = &self.stored_key(key);
        match &self.s3 {
            Some(s3) => s3.object_path(key),
            None => self.dir.join(key),
        }
    }

    /// After writing an object in place: give it a stored ETag on the S3 server (see
    /// [`S3Server::set_etag`]); nothing to do on local storage.
    pub fn set_etag(&self, key: &str, etag: &str) {
        if let Some(s3) = &self.s3 {
            s3.set_etag(&self.stored_key(key), etag);
        }
    }

    pub fn remove(&self, key: &str) {
        let key = &self.stored_key(key);
        match &self.s3 {
            Some(s3) => s3.delete(key),
            None => {
                let _ = std::fs::remove_file(self.dir.join(key));
            }
        }
    }

    /// Point a gateway configuration at this storage.
    pub fn configure(&self, config: &mut Config) {
        if self.kind.is_upstream() {
            config.artifacts.source = ArtifactSource::Upstream;
            return;
        }
        let storage = &mut config.storage;
        match &self.s3 {
            None => storage.url = format!("file://{}", self.dir.display()),
            Some(s3) => {
                storage.url = format!("s3://{}", s3.bucket());
                storage.endpoint = Some(s3.endpoint());
                storage.region = Some(s3.region().to_owned());
                storage.access_key_id = Some(s3.access_key().to_owned());
                storage.secret_access_key = Some(Secret::new(s3.secret_key()));
                storage.allow_http = true;
                storage.virtual_hosted_style = false;
            }
        }
    }

    /// A store over the same objects, to wrap (see [`Tap`]).
    pub fn object_store(&self) -> Arc<dyn ObjectStore> {
        match &self.s3 {
            Some(s3) => s3.object_store(),
            None => Arc::new(LocalFileSystem::new_with_prefix(&self.dir).unwrap()),
        }
    }

    /// S3 requests the server saw (GET, HEAD); local storage has no such count.
    pub fn s3_counts(&self) -> Option<(usize, usize)> {
        self.s3.as_ref().map(|s| (s.get_count(), s.head_count()))
    }
}

impl Drop for TestStorage {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A store wrapper that records every read and can fail a read stream after some bytes.
#[derive(Debug)]
pub struct Tap {
    inner: Arc<dyn ObjectStore>,
    pub gets: AtomicUsize,
    pub heads: AtomicUsize,
    /// Body bytes handed out by read streams.
    pub bytes_read: Arc<AtomicU64>,
    /// The range of each GET, in order.
    pub ranges: Mutex<Vec<Option<GetRange>>>,
    /// Fail every read stream after this many bytes.
    pub fail_after: Option<u64>,
    /// Read streams handed out and not yet dropped: 0 once the gateway has let go of every
    /// storage read.
    pub open_reads: Arc<AtomicUsize>,
}

/// Counts a read stream as open until it is dropped.
struct OpenRead(Arc<AtomicUsize>);

impl OpenRead {
    fn new(open: &Arc<AtomicUsize>) -> Self {
        open.fetch_add(1, Ordering::SeqCst);
        Self(Arc::clone(open))
    }
}

impl Drop for OpenRead {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Tap {
    pub fn new(inner: Arc<dyn ObjectStore>) -> Self {
        Self {
            inner,
            gets: AtomicUsize::new(0),
            heads: AtomicUsize::new(0),
            bytes_read: Arc::default(),
            ranges: Mutex::default(),
            fail_after: None,
            open_reads: Arc::default(),
        }
    }

    pub fn failing_after(inner: Arc<dyn ObjectStore>, bytes: u64) -> Self {
        Self {
            fail_after: Some(bytes),
            ..Self::new(inner)
        }
    }

    /// Storage requests of any kind so far.
    pub fn requests(&self) -> usize {
        self.gets.load(Ordering::SeqCst) + self.heads.load(Ordering::SeqCst)
    }
}

impl fmt::Display for Tap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tap({})", self.inner)
    }
}

#[async_trait]
impl ObjectStore for Tap {
    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        if options.head {
            self.heads.fetch_add(1, Ordering::SeqCst);
        } else {
            self.gets.fetch_add(1, Ordering::SeqCst);
            self.ranges.lock().unwrap().push(options.range.clone());
        }
        let GetResult {
            payload,
            meta,
            range,
            attributes,
            extensions,
        } = self.inner.get_opts(location, options).await?;
        let counter = Arc::clone(&self.bytes_read);
        let fail_after = self.fail_after;
        let stream = GetResult {
            payload,
            meta: meta.clone(),
            range: range.clone(),
            attributes: attributes.clone(),
            extensions: Default::default(),
        }
        .into_stream();
        let mut sent = 0u64;
        let open = OpenRead::new(&self.open_reads);
        let tapped = stream
            .map(move |chunk| {
                let _open = &open;
                let mut chunk = chunk?;
                if let Some(limit) = fail_after {
                    if sent + chunk.len() as u64 > limit {
                        let keep = (limit - sent) as usize;
                        if keep == 0 {
                            return Err(object_store::Error::Generic {
                                store: "Tap",
                                source: "injected storage failure".into(),
                            });
                        }
                        chunk.truncate(keep);
                    }
                }
                sent += chunk.len() as u64;
                counter.fetch_add(chunk.len() as u64, Ordering::SeqCst);
                Ok(chunk)
            })
            .boxed();
        Ok(GetResult {
            payload: GetResultPayload::Stream(tapped),
            meta,
            range,
            attributes,
            extensions,
        })
    }

    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        self.inner.copy_opts(from, to, options).await
    }
}
