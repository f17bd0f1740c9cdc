//! Gateway configuration: TOML text → environment overrides → validated, typed [`Config`].
//!
//! Loading takes three steps, each with one job:
//! 1. parse the text into a `toml::Table` (syntax errors keep toml's line/column text);
//! 2. overlay `ARTIFACT_GATEWAY_*` variables onto that table, so they pass through exactly the
//!    same type and unknown-key checks as keys written in the file;
//! 3. deserialize into the private `Raw*` tree (every field optional, unknown keys denied) and
//!    `validate` it into [`Config`], filling in defaults.
//!
//! Invariants: every error names the offending dotted key (`upstream.connect_timeout`), or the
//! environment variable that introduced it, so an operator can fix it without reading code; and
//! a `Config` that exists is valid, so consumers never re-check ranges.
//!
//! Layout: this module holds the typed [`Config`] and its defaults; `raw` the serde tree and its
//! validation, `env` the environment overrides, `values` the serde plumbing (durations, sizes),
//! `types` the value types ([`KeyTemplate`], [`BaseUrl`], [`Secret`]), and `error` the [`ConfigError`] they all return.
//!
//! TLS: a `[tls]` section turns HTTPS on for `listen` ([`TlsConfig`]); the files it names are
//! read by [`crate::listener::tls::Acceptor`], not here. The extra CA bundles `upstream.ca_file` and
//! `storage.ca_file` are read here as well as where they are used, so that a missing or
//! malformed bundle fails the load with its key's name rather than the first request.
//!
//! Secrets: credentials are [`Secret`]s (and `storage.options` values are printed redacted), so
//! `{:?}` of a `Config` shows none of them, and no error message quotes a value of theirs.

mod checks;
mod defaults;
mod env;
mod error;
mod raw;
mod types;
mod values;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::time::Duration;

use defaults::upstream_defaults;
pub use error::ConfigError;
pub use types::{BaseUrl, KeyTemplate, Secret};

use env::EnvOverrides;
use raw::RawConfig;
use values::{KIB, MIB};

const DEFAULT_LISTEN: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 8080));
const DEFAULT_STORAGE_URL: &str = "file:///var/lib/artifacts";
const DEFAULT_ARCHIVE_KEY: &str = "{project_id}/{job_id}/artifacts.zip";
const DEFAULT_TRACE_KEY: &str = "{project_id}/{job_id}/job.log";

/// The validated gateway configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address the gateway listens on (`listen`).
    pub listen: SocketAddr,
    /// Base URL clients use; upstream `Link`/`Location` headers are rewritten to it (`public_url`).
    pub public_url: Option<BaseUrl>,
    /// Address of the admin listener (`/metrics`, `/-/health`, `/-/readiness`), off the
    /// public port; unset: no admin listener (`admin_listen`).
    pub admin_listen: Option<SocketAddr>,
    pub log: LogConfig,
    pub server: ServerConfig,
    pub upstream: UpstreamConfig,
    pub cache: CacheConfig,
    pub storage: StorageConfig,
    pub artifacts: ArtifactsConfig,
    pub zip: ZipConfig,
    /// Expiring links (`[links]`); without keys there are none.
    pub links: LinksConfig,
    /// `[tls]`: serve HTTPS on `listen`; `None` (no section): plain HTTP.
    pub tls: Option<TlsConfig>,
}

/// Log output format (`[log] format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Human,
    Json,
}

/// `[log]`: how the binary sets up `tracing`.
#[derive(Debug, Clone)]
pub struct LogConfig {
    pub format: LogFormat,
    /// An `EnvFilter` directive such as `info` or `artifact_gateway=debug,hyper=warn`.
    pub filter: String,
}

/// `[server]`: settings of the connections clients open to the gateway.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Time a client has to send the complete request head (slowloris bound).
    /// Also closes idle HTTP/1.1 keep-alive connections: hyper runs this timer while it
    /// waits for the next request head.
    pub header_read_timeout: Duration,
    /// Largest request head (request line + headers) accepted, 431 past it. Hyper's HTTP/1
    /// buffer stops at twice this (our JSON 431 still, see `server`); h2 at four times.
    pub max_header_bytes: usize,
    /// On shutdown, how long in-flight requests may finish before connections are closed.
    pub shutdown_grace: Duration,
    /// Client connections open at once; past it a connection gets `503` and is closed.
    pub max_connections: usize,
    /// Requests in progress at once (a download counts until its body ends); past it `503`.
    pub max_streams: usize,
    /// Concurrent HTTP/2 streams per connection.
    pub max_streams_per_connection: u32,
    /// A client that stops reading (a write waits this long) is cut off, which also
    /// releases its storage read.
    pub stall_timeout: Duration,
    /// A connection with no request in progress for this long is closed (HTTP/2 and TLS
    /// included; idle HTTP/1.1 is closed sooner by `header_read_timeout`).
    pub idle_timeout: Duration,
    /// Peers whose `X-Forwarded-*` and `Forwarded` headers are passed upstream; from any
    /// other peer those headers are dropped and the gateway's own are sent.
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

impl ServerConfig {
    /// Whether `peer` is one of `trusted_proxies` (an IPv4-mapped IPv6 peer counts as IPv4).
    pub fn is_trusted_proxy(&self, peer: std::net::IpAddr) -> bool {
        let peer = peer.to_canonical();
        self.trusted_proxies.iter().any(|net| net.contains(&peer))
    }
}

/// `[upstream]`: the GitLab-compatible jobs backend.
#[derive(Debug, Clone)]
pub struct UpstreamConfig {
    pub url: BaseUrl,
    pub connect_timeout: Duration,
    /// Time from sending a request to receiving the response headers.
    pub response_timeout: Duration,
    pub pool_idle_timeout: Duration,
    pub pool_max_idle_per_host: usize,
    /// Further absolute bases the upstream writes into `Link`/`Location` (e.g. GitLab's
    /// `external_url` when it differs from `url`); rewritten like `url` itself.
    pub rewrite_bases: Vec<BaseUrl>,
    /// A PEM bundle of CA certificates trusted for an `https://` upstream, in addition to the
    /// platform's roots (a private CA). Checked at load time to hold at least one certificate.
    pub ca_file: Option<PathBuf>,
}

/// `[tls]`: HTTPS on the listener. The files are PEM; they are parsed (and re-read when they
/// change) by [`crate::listener::tls::Acceptor`], whose errors name the file.
#[derive(Debug, Clone)]
pub struct TlsConfig {
    /// The certificate chain, leaf first (`tls.cert_file`).
    pub cert_file: PathBuf,
    /// The private key of the leaf certificate: PKCS#8, PKCS#1 (RSA) or SEC1 (EC) (`tls.key_file`).
    pub key_file: PathBuf,
    /// How often the two files are checked for a change (modification time, size, inode); a
    /// change reloads them. New handshakes then use the new certificate.
    pub reload_interval: Duration,
    /// Time a client has to complete the TLS handshake after connecting.
    pub handshake_timeout: Duration,
}

/// `[cache]`: the per-caller cache of upstream job metadata responses.
#[derive(Debug, Clone)]
pub struct CacheConfig {
    /// Total weight of cached bodies; 0 disables the cache.
    pub max_bytes: u64,
    pub ttl: Duration,
    /// Larger responses are streamed through, not cached. At most `max_bytes` when the cache is on.
    pub max_entry_bytes: u64,
}

/// `[storage]`: where artifact archives and job logs live, and how to reach them.
///
/// `Debug` prints the secrets and the values of `options` as `[REDACTED]`.
#[derive(Clone)]
pub struct StorageConfig {
    /// Object store URL: `file:///dir`, `s3://bucket/prefix`, `gs://bucket/…`, `az://container/…`,
    /// `abfs://…`, `http(s)://…`. Checked here: the scheme, a non-empty bucket/container for
    /// s3/gs/az/abfs, an absolute path for file; the storage layer parses the rest.
    pub url: String,
    pub archive_key: KeyTemplate,
    pub trace_key: KeyTemplate,
    /// S3-compatible endpoint, normalized to `http(s)://host[:port]` (no trailing slash);
    /// `None`: AWS. An `http://` endpoint is only accepted with `allow_http`.
    pub endpoint: Option<String>,
    /// `None`: object_store's default (or its environment).
    pub region: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<Secret>,
    pub session_token: Option<Secret>,
    /// Permit plain-HTTP connections to storage (required for an `http://` endpoint).
    pub allow_http: bool,
    /// `bucket.host/key` requests instead of path-style `host/bucket/key` (MinIO, Garage, Ceph
    /// want path-style, the default).
    pub virtual_hosted_style: bool,
    /// Time to establish a connection to storage.
    pub connect_timeout: Duration,
    /// Longest wait for the next bytes from storage; not a whole-request timeout (downloads of
    /// large archives can take hours).
    pub read_timeout: Duration,
    /// Further object_store configuration keys (`google_service_account`,
    /// `azure_storage_account_name`, …), passed as-is. Keys are as written (lowercase when set
    /// from the environment); values may be credentials and are never printed.
    pub options: BTreeMap<String, String>,
    /// Answer archive downloads with `302` to a presigned URL instead of streaming them.
    /// Only with an `s3://` url.
    pub redirect_downloads: bool,
    /// Validity of a presigned URL; 1s to 7 days (SigV4's limit).
    pub presign_ttl: Duration,
    /// A PEM bundle of CA certificates trusted for HTTPS storage, in addition to the platform's
    /// roots (a private CA in front of MinIO, Ceph, …). Checked at load time to hold at least
    /// one certificate.
    pub ca_file: Option<PathBuf>,
    /// Local files (`file://`) kept open between reads, most recently used first: an archive
    /// read again needs no `open` and no path lookup. 0 opens every read anew. Each costs
    /// a file descriptor while it is kept; unused ones close after a minute.
    pub open_files: u64,
}

/// `[artifacts]`: artifact routes served by the gateway itself.
#[derive(Debug, Clone)]
pub struct ArtifactsConfig {
    /// Where archives are found: storage keys from templates, or the backend's own routes.
    pub source: ArtifactSource,
    /// Download-by-ref walks the project's successful jobs newest first, 100 per page, at most
    /// this many pages (1 to 1000). Storage mode only: upstream mode asks the backend.
    pub by_ref_max_pages: u32,
    /// How long a ref + job name → job id resolution is cached, per caller.
    pub by_ref_ttl: Duration,
    /// Upstream mode: answer archive downloads with the backend's own redirect (storage
    /// carries the bytes) instead of streaming them.
    pub redirect: bool,
    /// Upstream mode: hosts an archive `Location` may name (`host` or `*.domain`, lowercase);
    /// empty: any host.
    pub allowed_hosts: Vec<String>,
}

/// `artifacts.source`: how the gateway finds a job's archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArtifactSource {
    /// `storage.archive_key` filled with the project and job id; access checked with the job
    /// JSON (`GET /projects/:id/jobs/:job_id`).
    Storage,
    /// The backend's archive routes, asked with the caller's credentials: a redirect names
    /// the object's URL, a `200` makes the route itself the archive (GitLab).
    Upstream,
}

impl ArtifactsConfig {
    /// Whether `host` may be named by an archive `Location` (`allowed_hosts` empty: any).
    pub fn host_allowed(&self, host: &str) -> bool {
        if self.allowed_hosts.is_empty() {
            return true;
        }
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.allowed_hosts
            .iter()
            .any(|allowed| match allowed.strip_prefix("*.") {
                Some(domain) => host
                    .strip_suffix(domain)
                    .is_some_and(|sub| sub.len() > 1 && sub.ends_with('.')),
                None => *allowed == host,
            })
    }
}

/// `[zip]`: reading single files out of archives.
#[derive(Debug, Clone)]
pub struct ZipConfig {
    /// Bytes of archive indexes (and the tails they were read from) kept in memory.
    pub index_cache_bytes: u64,
    /// How long an open archive is kept. Reads outside its tail are checked against the
    /// object's ETag anyway; this bounds answers from the cached tail for an object
    /// replaced in place.
    pub index_ttl: Duration,
    /// Size of the one suffix read that opens an archive: end records, usually the whole
    /// central directory, and the entries stored last. At least 1 KiB.
    pub tail_bytes: u64,
    /// Most entries an archive may declare.
    pub max_entries: u64,
    /// Largest central directory read.
    pub max_directory_bytes: u64,
    /// Largest dictionary or window one entry decoder may allocate; more is refused (501)
    /// before the decoder exists.
    pub max_decoder_memory: u64,
    /// Total memory entry decoders and archive opens may hold at once; past it requests get
    /// 503 + `Retry-After` at once. At least `max_decoder_memory`.
    pub memory_budget: u64,
    /// Bytes of small decoded entries (up to 64 KiB each) kept in memory, keyed by the
    /// open archive (object and ETag) they were read from: a hot small file is answered
    /// without any storage read. 0 keeps none.
    pub hot_entry_cache_bytes: u64,
    /// Most entries one `…/artifacts/-/zip` answer may hold; a selection matching more is
    /// a 413. Bounds the per-request plan (4 bytes an entry) and the answer's directory.
    pub max_part_entries: u64,
}

/// `[links]`: credential-free, expiring links to an archive or one of its files.
#[derive(Debug, Clone)]
pub struct LinksConfig {
    /// MAC keys, each at least 32 bytes: the first signs, every one verifies (rotation).
    /// Empty: the links routes answer 404.
    pub keys: Vec<LinkKey>,
    /// Longest lifetime a link may be given (at most 7 days).
    pub max_lifetime: Duration,
    /// Ask the backend, as `service_token` or anonymously, whether the job still has its
    /// archive each time a link is used.
    pub recheck: bool,
    /// The token the gateway uses for links: to recheck, and in upstream mode to locate
    /// the archive. Anonymous without one.
    pub service_token: Option<Secret>,
}

impl Default for LinksConfig {
    fn default() -> Self {
        LinksConfig {
            keys: Vec::new(),
            max_lifetime: Duration::from_secs(24 * 3600),
            recheck: false,
            service_token: None,
        }
    }
}

/// A link MAC key: its bytes, never printed.
#[derive(Clone)]
pub struct LinkKey(pub Vec<u8>);

impl fmt::Debug for LinkKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LinkKey([redacted; {} bytes])", self.0.len())
    }
}

impl TlsConfig {
    /// The two files, with the default intervals.
    pub fn new(cert_file: impl Into<PathBuf>, key_file: impl Into<PathBuf>) -> Self {
        TlsConfig {
            cert_file: cert_file.into(),
            key_file: key_file.into(),
            reload_interval: Duration::from_secs(10),
            handshake_timeout: Duration::from_secs(10),
        }
    }
}

impl Config {
    /// Parse TOML text, then apply overrides (each (NAME, VALUE) from the environment), then validate.
    pub fn from_toml(
        text: &str,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let mut table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
            ConfigError::Syntax(e.to_string().trim_end().to_owned())
        })?;
        let mut overrides = EnvOverrides::apply(&mut table, env)?;
        let raw: RawConfig = overrides.deserialize(table)?;
        raw.validate().map_err(|err| overrides.attribute(err))
    }

    /// Read FILE and call from_toml with the process environment.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        // `vars()` would panic on a non-UTF-8 variable anywhere in the environment; a lossy
        // value of one of ours fails validation with its name instead.
        let env = std::env::vars_os().map(|(name, value)| {
            (
                name.to_string_lossy().into_owned(),
                value.to_string_lossy().into_owned(),
            )
        });
        Self::from_toml(&text, env)
    }

    /// The built-in configuration used by the demo: everything default, with the given upstream
    /// url and storage url. `storage_url` is taken as is (not validated).
    pub fn with_defaults(upstream_url: BaseUrl, storage_url: String) -> Config {
        Config {
            listen: DEFAULT_LISTEN,
            public_url: None,
            admin_listen: None,
            log: LogConfig::default(),
            server: ServerConfig::default(),
            upstream: upstream_defaults(upstream_url),
            cache: CacheConfig::default(),
            storage: StorageConfig {
                url: storage_url,
                ..StorageConfig::default()
            },
            artifacts: ArtifactsConfig::default(),
            zip: ZipConfig::default(),
            links: LinksConfig::default(),
            tls: None,
        }
    }
}
