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
use s3s::service::S3ServiceBuilder;
use s3s_fs::FileSystem;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

use service::Storage;

// This file is also loaded on its own (`#[path = "common/s3.rs"]` in tests/s3_server.rs),
// where a plain `mod` would look for submodules next to it rather than in `s3/`: the
// paths name the same files either way.
#[path = "s3/conditions.rs"]
mod conditions;
#[path = "s3/disk.rs"]
mod disk;
#[path = "s3/service.rs"]
mod service;

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
        let store = self
            .client()
            .with_retry(retry)
            .build()
            .expect("object_store for the test S3 server");
        Arc::new(store)
    }

    /// A client of this server: its endpoint, bucket, region and keys, plain HTTP,
    /// path-style requests.
    pub fn client(&self) -> AmazonS3Builder {
        AmazonS3Builder::new()
            .with_endpoint(self.endpoint())
            .with_bucket_name(self.bucket())
            .with_region(self.region())
            .with_access_key_id(self.access_key())
            .with_secret_access_key(self.secret_key())
            .with_allow_http(true)
            .with_virtual_hosted_style_request(false)
    }

    /// The sample backend's artifact store on this server (GitLab's object storage).
    pub fn artifact_store(
        &self,
        mode: sample_backend::DownloadMode,
    ) -> sample_backend::ArtifactStore {
        let signer = self.client().build().expect("S3 signer");
        sample_backend::ArtifactStore::new(signer, mode)
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
