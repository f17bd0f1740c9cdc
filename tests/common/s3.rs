//! A real S3-compatible server for integration tests, run in-process by the test itself.
//!
//! [`S3Server::start`] serves the S3 REST API with [`s3s`] over an [`s3s_fs::FileSystem`] rooted
//! in a fresh temporary directory, on `127.0.0.1:0` (an ephemeral port), on the test's own tokio
//! runtime. Only path-style requests are understood (`http://127.0.0.1:PORT/BUCKET/KEY`), and every
//! request must be SigV4-signed with the fixed test credentials ([`S3Server::access_key`] /
//! [`S3Server::secret_key`]), which the server checks (s3s `SimpleAuth`). Any region name is
//! accepted in the signature; [`S3Server::region`] is `us-east-1`.
//!
//! On-disk layout (s3s-fs's own): the temp dir is the storage root, each bucket is a directory
//! `ROOT/BUCKET/`, and each object is the plain file `ROOT/BUCKET/KEY`, where `/` in a key makes
//! subdirectories. Objects written through the S3 API also get hidden sidecar files in `ROOT/`
//! (`.bucket-B64(BUCKET).object-B64(KEY).metadata.json` for content type and user metadata, and
//! `….internal.json` for the stored ETag and checksums; B64 is URL-safe base64 without padding).
//! An object without sidecars (e.g. one written by [`S3Server::put`]) has the MD5 of its bytes as
//! its ETag and the file's mtime as its Last-Modified.
//!
//! s3s-fs 0.14 ignores the `If-Match`, `If-None-Match`, `If-Modified-Since` and
//! `If-Unmodified-Since` headers of GetObject and HeadObject. This harness evaluates them in front
//! of it with S3's rules, so conditional requests behave as on AWS: a failed `If-Match` or
//! `If-Unmodified-Since` gives 412 Precondition Failed, a failed `If-None-Match` or
//! `If-Modified-Since` gives 304 Not Modified; `If-Match` that holds overrides
//! `If-Unmodified-Since`, and `If-None-Match` that holds overrides `If-Modified-Since`; conditions
//! are checked before the range, and a missing object is 404 whatever the conditions. s3s parses
//! each ETag header as one value: `"…"`, `W/"…"`, `*`, or an unquoted hex/dash value (taken as a
//! strong ETag, as S3 does); a comma-separated list is not split, so it never matches.
//! It also answers a suffix range longer than the object (`bytes=-N`, N > size) with the whole
//! object as a 206, where s3s-fs alone fails with 500. Other ranges are s3s-fs's: 206 with
//! Content-Range, an end past the object is cut to it, a start at or past the end is 416
//! InvalidRange.
//!
//! Dropping the [`S3Server`] stops the server (its open connections included) and deletes the
//! temporary directory.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use object_store::aws::AmazonS3Builder;
use object_store::ObjectStore;
use s3s::auth::SimpleAuth;
use s3s::dto::*;
use s3s::service::S3ServiceBuilder;
use s3s::{s3_error, S3Request, S3Response, S3Result, S3};
use s3s_fs::FileSystem;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

const ACCESS_KEY: &str = "test-access-key";
const SECRET_KEY: &str = "test-secret-key";
const REGION: &str = "us-east-1";

/// An S3-compatible server on 127.0.0.1 over a temporary directory; see the module docs.
pub struct S3Server {
    addr: std::net::SocketAddr,
    bucket: String,
    root: PathBuf,
    counters: Arc<Counters>,
    task: JoinHandle<()>,
}

#[derive(Default)]
struct Counters {
    get: AtomicUsize,
    head: AtomicUsize,
    /// The `Range` of each GetObject, in order (`None`: the whole object).
    ranges: std::sync::Mutex<Vec<Option<String>>>,
}

impl S3Server {
    /// Start on 127.0.0.1:0 with a bucket named `bucket` (created as a directory). Panics if
    /// `bucket` breaks S3's naming rules (s3s would answer 400 InvalidBucketName to every request).
    pub async fn start(bucket: &str) -> S3Server {
        assert!(
            s3s::path::check_bucket_name(bucket),
            "{bucket:?} is not a valid S3 bucket name (3-63 of a-z 0-9 . -), the server would refuse it"
        );
        let root = unique_temp_dir();
        std::fs::create_dir(root.join(bucket)).expect("create the bucket directory");

        let counters = Arc::new(Counters::default());
        let storage = Storage {
            fs: FileSystem::new(&root).expect("s3s-fs opens its root"),
            counters: Arc::clone(&counters),
        };
        let service = {
            let mut builder = S3ServiceBuilder::new(storage);
            builder.set_auth(SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
            builder.build()
        };

        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address");
        let task = tokio::spawn(async move {
            // Connections live in this set, so aborting this task closes them too.
            let mut connections = JoinSet::new();
            loop {
                while connections.try_join_next().is_some() {}
                let socket = match listener.accept().await {
                    Ok((socket, _)) => socket,
                    Err(_) => {
                        // E.g. out of file descriptors: back off instead of spinning.
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                };
                let service = service.clone();
                connections.spawn(async move {
                    let _ = ConnBuilder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(socket), service)
                        .await;
                });
            }
        });

        S3Server {
            addr,
            bucket: bucket.to_owned(),
            root,
            counters,
            task,
        }
    }

    /// `http://127.0.0.1:PORT`
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// Fixed test access key id, checked by the server.
    pub fn access_key(&self) -> &str {
        ACCESS_KEY
    }

    /// Fixed test secret key, checked by the server.
    pub fn secret_key(&self) -> &str {
        SECRET_KEY
    }

    /// `us-east-1`
    pub fn region(&self) -> &str {
        REGION
    }

    /// Where the object `key` of the bucket lives on disk (whether or not it exists).
    pub fn object_path(&self, key: &str) -> PathBuf {
        assert!(
            !key.is_empty()
                && !key.starts_with('/')
                && !key.ends_with('/')
                && key
                    .split('/')
                    .all(|part| !part.is_empty() && part != "." && part != ".."),
            "key {key:?} has no file of its own under s3s-fs"
        );
        self.root.join(&self.bucket).join(key)
    }

    /// Write an object directly (through the filesystem under the bucket dir, creating parent
    /// dirs). The write is atomic (temp file + rename), and any sidecar left by an earlier S3
    /// upload of the key is removed, so the ETag becomes the MD5 of `bytes`.
    pub fn put(&self, key: &str, bytes: &[u8]) {
        static TMP: AtomicUsize = AtomicUsize::new(0);
        let path = self.object_path(key);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create the key's directories");
        }
        let tmp = self.root.join(format!(
            ".harness-put-{}.tmp",
            TMP.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::write(&tmp, bytes).expect("write the object");
        self.remove_sidecars(key);
        std::fs::rename(&tmp, &path).expect("move the object into place");
    }

    /// Delete an object directly (file and sidecars); a missing object is not an error.
    pub fn delete(&self, key: &str) {
        let path = self.object_path(key);
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => panic!("delete {}: {e}", path.display()),
        }
        self.remove_sidecars(key);
    }

    /// GetObject requests served so far, whatever their outcome (200, 206, 304, 404, 412, 416...).
    /// Requests rejected before the operation (bad signature, unparsable headers) are not counted.
    pub fn get_count(&self) -> usize {
        self.counters.get.load(Ordering::SeqCst)
    }

    /// The `Range` header of each GetObject served so far (`None`: the whole object).
    pub fn get_ranges(&self) -> Vec<Option<String>> {
        self.counters.ranges.lock().unwrap().clone()
    }

    /// HeadObject requests served so far, counted like [`S3Server::get_count`].
    pub fn head_count(&self) -> usize {
        self.counters.head.load(Ordering::SeqCst)
    }

    /// An `object_store` client for this server: path-style, plain HTTP, static credentials,
    /// region `us-east-1`, and at most 2 retries within 5 s (so a broken test fails fast).
    pub fn object_store(&self) -> Arc<dyn ObjectStore> {
        let retry = object_store::RetryConfig {
            max_retries: 2,
            retry_timeout: Duration::from_secs(5),
            ..Default::default()
        };
        let store = AmazonS3Builder::new()
            .with_endpoint(self.endpoint())
            .with_bucket_name(self.bucket())
            .with_region(self.region())
            .with_access_key_id(self.access_key())
            .with_secret_access_key(self.secret_key())
            .with_allow_http(true)
            .with_virtual_hosted_style_request(false)
            .with_retry(retry)
            .build()
            .expect("object_store for the test S3 server");
        Arc::new(store)
    }

    /// Record `etag` (32 hex digits) as the stored ETag of the object `key`, as an S3 PUT
    /// would have: without one, s3s-fs computes the MD5 of the object on every request,
    /// which for a multi-GiB sparse file written in place means reading all of it each time.
    pub fn set_etag(&self, key: &str, etag: &str) {
        let sidecar = self.root.join(format!(
            ".bucket-{}.object-{}.internal.json",
            base64_url(&self.bucket),
            base64_url(key)
        ));
        std::fs::write(sidecar, format!(r#"{{"e_tag":"{etag}"}}"#)).expect("write the sidecar");
    }

    fn remove_sidecars(&self, key: &str) {
        let prefix = format!(
            ".bucket-{}.object-{}",
            base64_url(&self.bucket),
            base64_url(key)
        );
        for suffix in [".metadata.json", ".internal.json"] {
            let _ = std::fs::remove_file(self.root.join(format!("{prefix}{suffix}")));
        }
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

impl std::fmt::Debug for S3Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Server")
            .field("endpoint", &self.endpoint())
            .field("bucket", &self.bucket)
            .field("root", &self.root)
            .finish_non_exhaustive()
    }
}

/// A new empty directory under the system temp dir, named from pid, a counter and the time.
fn unique_temp_dir() -> PathBuf {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let dir = std::env::temp_dir().join(format!(
        "artifact-gateway-s3-{}-{}-{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir(&dir).expect("create a fresh temp dir");
    dir
}

/// URL-safe base64 without padding, as s3s-fs names its sidecar files.
fn base64_url(s: &str) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in s.as_bytes().chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
        }
    }
    out
}

/// Truncate to whole seconds, the precision of HTTP dates (Last-Modified, If-Modified-Since).
fn whole_seconds(t: &Timestamp) -> Option<Timestamp> {
    let mut buf = Vec::new();
    t.format(TimestampFormat::HttpDate, &mut buf).ok()?;
    Timestamp::parse(TimestampFormat::HttpDate, std::str::from_utf8(&buf).ok()?).ok()
}

/// The conditional headers of a GetObject or HeadObject request.
struct Conditions {
    if_match: Option<ETagCondition>,
    if_none_match: Option<ETagCondition>,
    if_modified_since: Option<Timestamp>,
    if_unmodified_since: Option<Timestamp>,
}

impl Conditions {
    fn of_get(input: &GetObjectInput) -> Self {
        Conditions {
            if_match: input.if_match.clone(),
            if_none_match: input.if_none_match.clone(),
            if_modified_since: input.if_modified_since.clone(),
            if_unmodified_since: input.if_unmodified_since.clone(),
        }
    }

    fn of_head(input: &HeadObjectInput) -> Self {
        Conditions {
            if_match: input.if_match.clone(),
            if_none_match: input.if_none_match.clone(),
            if_modified_since: input.if_modified_since.clone(),
            if_unmodified_since: input.if_unmodified_since.clone(),
        }
    }

    fn is_empty(&self) -> bool {
        self.if_match.is_none()
            && self.if_none_match.is_none()
            && self.if_modified_since.is_none()
            && self.if_unmodified_since.is_none()
    }

    /// S3's evaluation against the current object: 412 conditions first, then 304 ones.
    fn check(&self, e_tag: Option<&ETag>, last_modified: Option<&Timestamp>) -> S3Result<()> {
        let modified = last_modified.and_then(whole_seconds);
        let newer_than = |since: &Timestamp| match (&modified, whole_seconds(since)) {
            (Some(modified), Some(since)) => *modified > since,
            _ => true,
        };
        let etag_matches = |condition: &ETagCondition, strong: bool| match condition {
            ETagCondition::Any => true,
            ETagCondition::ETag(wanted) => e_tag.is_some_and(|current| {
                if strong {
                    current.strong_cmp(wanted)
                } else {
                    current.weak_cmp(wanted)
                }
            }),
        };

        if let Some(condition) = &self.if_match {
            if !etag_matches(condition, true) {
                return Err(s3_error!(PreconditionFailed));
            }
        } else if let Some(since) = &self.if_unmodified_since {
            if newer_than(since) {
                return Err(s3_error!(PreconditionFailed));
            }
        }

        if let Some(condition) = &self.if_none_match {
            if etag_matches(condition, false) {
                return Err(s3_error!(NotModified));
            }
        } else if let Some(since) = &self.if_modified_since {
            if !newer_than(since) {
                return Err(s3_error!(NotModified));
            }
        }
        Ok(())
    }
}

/// s3s-fs plus request counting and conditional GET/HEAD.
struct Storage {
    fs: FileSystem,
    counters: Arc<Counters>,
}

#[async_trait::async_trait]
impl S3 for Storage {
    async fn get_object(
        &self,
        req: S3Request<GetObjectInput>,
    ) -> S3Result<S3Response<GetObjectOutput>> {
        self.counters.get.fetch_add(1, Ordering::SeqCst);
        let range = req.input.range.as_ref().map(|r| match r {
            Range::Int { first, last } => match last {
                Some(last) => format!("bytes={first}-{last}"),
                None => format!("bytes={first}-"),
            },
            Range::Suffix { length } => format!("bytes=-{length}"),
        });
        self.counters.ranges.lock().unwrap().push(range);
        let conditions = Conditions::of_get(&req.input);
        if !conditions.is_empty() {
            // Evaluated before the range, as S3 does.
            let head = HeadObjectInput {
                bucket: req.input.bucket.clone(),
                key: req.input.key.clone(),
                ..Default::default()
            };
            let current = self.fs.head_object(req.clone().map_input(|_| head)).await?;
            conditions.check(
                current.output.e_tag.as_ref(),
                current.output.last_modified.as_ref(),
            )?;
        }
        let mut req = req;
        if let Some(Range::Suffix { length }) = req.input.range {
            // S3 (and RFC 9110) answer a suffix longer than the object with the whole object;
            // s3s-fs 0.14 fails with 500 instead. Ask it for the equivalent bounded range.
            let head = HeadObjectInput {
                bucket: req.input.bucket.clone(),
                key: req.input.key.clone(),
                ..Default::default()
            };
            let current = self.fs.head_object(req.clone().map_input(|_| head)).await?;
            let size = current.output.content_length.unwrap_or(0).max(0) as u64;
            if length > size && size > 0 {
                req.input.range = Some(Range::Int {
                    first: 0,
                    last: Some(size - 1),
                });
            }
        }
        self.fs.get_object(req).await
    }

    async fn head_object(
        &self,
        req: S3Request<HeadObjectInput>,
    ) -> S3Result<S3Response<HeadObjectOutput>> {
        self.counters.head.fetch_add(1, Ordering::SeqCst);
        let conditions = Conditions::of_head(&req.input);
        let response = self.fs.head_object(req).await?;
        conditions.check(
            response.output.e_tag.as_ref(),
            response.output.last_modified.as_ref(),
        )?;
        Ok(response)
    }

    // Everything else goes straight to s3s-fs.

    async fn create_bucket(
        &self,
        req: S3Request<CreateBucketInput>,
    ) -> S3Result<S3Response<CreateBucketOutput>> {
        self.fs.create_bucket(req).await
    }

    async fn copy_object(
        &self,
        req: S3Request<CopyObjectInput>,
    ) -> S3Result<S3Response<CopyObjectOutput>> {
        self.fs.copy_object(req).await
    }

    async fn delete_bucket(
        &self,
        req: S3Request<DeleteBucketInput>,
    ) -> S3Result<S3Response<DeleteBucketOutput>> {
        self.fs.delete_bucket(req).await
    }

    async fn delete_object(
        &self,
        req: S3Request<DeleteObjectInput>,
    ) -> S3Result<S3Response<DeleteObjectOutput>> {
        self.fs.delete_object(req).await
    }

    async fn delete_objects(
        &self,
        req: S3Request<DeleteObjectsInput>,
    ) -> S3Result<S3Response<DeleteObjectsOutput>> {
        self.fs.delete_objects(req).await
    }

    async fn get_bucket_location(
        &self,
        req: S3Request<GetBucketLocationInput>,
    ) -> S3Result<S3Response<GetBucketLocationOutput>> {
        self.fs.get_bucket_location(req).await
    }

    async fn head_bucket(
        &self,
        req: S3Request<HeadBucketInput>,
    ) -> S3Result<S3Response<HeadBucketOutput>> {
        self.fs.head_bucket(req).await
    }

    async fn list_buckets(
        &self,
        req: S3Request<ListBucketsInput>,
    ) -> S3Result<S3Response<ListBucketsOutput>> {
        self.fs.list_buckets(req).await
    }

    async fn list_objects(
        &self,
        req: S3Request<ListObjectsInput>,
    ) -> S3Result<S3Response<ListObjectsOutput>> {
        self.fs.list_objects(req).await
    }

    async fn list_objects_v2(
        &self,
        req: S3Request<ListObjectsV2Input>,
    ) -> S3Result<S3Response<ListObjectsV2Output>> {
        self.fs.list_objects_v2(req).await
    }

    async fn put_object(
        &self,
        req: S3Request<PutObjectInput>,
    ) -> S3Result<S3Response<PutObjectOutput>> {
        self.fs.put_object(req).await
    }

    async fn create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        self.fs.create_multipart_upload(req).await
    }

    async fn upload_part(
        &self,
        req: S3Request<UploadPartInput>,
    ) -> S3Result<S3Response<UploadPartOutput>> {
        self.fs.upload_part(req).await
    }

    async fn upload_part_copy(
        &self,
        req: S3Request<UploadPartCopyInput>,
    ) -> S3Result<S3Response<UploadPartCopyOutput>> {
        self.fs.upload_part_copy(req).await
    }

    async fn list_parts(
        &self,
        req: S3Request<ListPartsInput>,
    ) -> S3Result<S3Response<ListPartsOutput>> {
        self.fs.list_parts(req).await
    }

    async fn complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        self.fs.complete_multipart_upload(req).await
    }

    async fn abort_multipart_upload(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        self.fs.abort_multipart_upload(req).await
    }
}
