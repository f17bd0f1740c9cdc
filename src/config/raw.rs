//! The raw tree: what the file may contain, before validation (every field optional, unknown
//! keys denied), and its `validate` into the typed [`Config`], filling in defaults.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::error::{invalid, ConfigError};
use super::types::{BaseUrl, KeyTemplate, Secret};
use super::values::{Dur, Size, StringTable, Text, MIB};
use super::{
    upstream_defaults, ArtifactSource, ArtifactsConfig, CacheConfig, Config, LogConfig, LogFormat,
    ServerConfig, StorageConfig, TlsConfig, UpstreamConfig, ZipConfig, DEFAULT_LISTEN,
};

/// hyper's HTTP/1 `max_buf_size` panics below this, and it bounds the request head we accept.
const MIN_HEADER_BYTES: usize = 8192;
/// Upper bound on `server.max_header_bytes`: it is allocated per connection, so it bounds memory.
const MAX_HEADER_BYTES: usize = MIB as usize;
const STORAGE_SCHEMES: [&str; 7] = ["file", "s3", "gs", "az", "abfs", "http", "https"];
/// Schemes whose URL starts with a bucket (container, file system) name: `s3://bucket/prefix`.
const BUCKET_SCHEMES: [&str; 4] = ["s3", "gs", "az", "abfs"];
/// Bounds of `storage.presign_ttl`; 7 days is the longest an S3 (SigV4) presigned URL lives.
const MIN_PRESIGN_TTL: Duration = Duration::from_secs(1);
const MAX_PRESIGN_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
/// Upper bound on `artifacts.by_ref_max_pages`: each page is one upstream request.
const MAX_BY_REF_PAGES: u32 = 1000;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    listen: Option<String>,
    public_url: Option<String>,
    admin_listen: Option<String>,
    #[serde(default)]
    log: RawLog,
    #[serde(default)]
    server: RawServer,
    #[serde(default)]
    upstream: RawUpstream,
    #[serde(default)]
    cache: RawCache,
    #[serde(default)]
    storage: RawStorage,
    #[serde(default)]
    artifacts: RawArtifacts,
    #[serde(default)]
    zip: RawZip,
    /// No default: a `[tls]` section (or a `TLS__*` variable) is what turns TLS on.
    tls: Option<RawTls>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawLog {
    format: Option<String>,
    filter: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawServer {
    header_read_timeout: Option<Dur>,
    max_header_bytes: Option<Size>,
    shutdown_grace: Option<Dur>,
    max_connections: Option<usize>,
    max_streams: Option<usize>,
    max_streams_per_connection: Option<u32>,
    stall_timeout: Option<Dur>,
    idle_timeout: Option<Dur>,
    trusted_proxies: Option<Vec<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawUpstream {
    url: Option<String>,
    connect_timeout: Option<Dur>,
    response_timeout: Option<Dur>,
    pool_idle_timeout: Option<Dur>,
    pool_max_idle_per_host: Option<usize>,
    rewrite_bases: Option<Vec<String>>,
    ca_file: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawCache {
    max_bytes: Option<Size>,
    ttl: Option<Dur>,
    max_entry_bytes: Option<Size>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawStorage {
    url: Option<String>,
    archive_key: Option<String>,
    trace_key: Option<String>,
    endpoint: Option<String>,
    region: Option<String>,
    access_key_id: Option<String>,
    // `Text`: a wrong type is reported without echoing the value.
    secret_access_key: Option<Text>,
    session_token: Option<Text>,
    allow_http: Option<bool>,
    virtual_hosted_style: Option<bool>,
    connect_timeout: Option<Dur>,
    read_timeout: Option<Dur>,
    options: Option<StringTable>,
    redirect_downloads: Option<bool>,
    presign_ttl: Option<Dur>,
    ca_file: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawTls {
    cert_file: Option<String>,
    key_file: Option<String>,
    reload_interval: Option<Dur>,
    handshake_timeout: Option<Dur>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawArtifacts {
    source: Option<String>,
    by_ref_max_pages: Option<u32>,
    by_ref_ttl: Option<Dur>,
    redirect: Option<bool>,
    allowed_hosts: Option<Vec<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawZip {
    index_cache_bytes: Option<Size>,
    index_ttl: Option<Dur>,
    tail_bytes: Option<Size>,
    max_entries: Option<u64>,
    max_directory_bytes: Option<Size>,
    max_decoder_memory: Option<Size>,
    memory_budget: Option<Size>,
}

impl RawConfig {
    /// Checks every value and fills defaults. Errors name the dotted key.
    pub(super) fn validate(self) -> Result<Config, ConfigError> {
        let listen = match self.listen {
            None => DEFAULT_LISTEN,
            Some(s) => s.parse().map_err(|_| {
                invalid(
                    "listen",
                    "not a socket address (expected IP:PORT, e.g. 127.0.0.1:8080)",
                )
            })?,
        };
        let public_url = self
            .public_url
            .map(|s| BaseUrl::parse(&s).map_err(|m| invalid("public_url", m)))
            .transpose()?;
        Ok(Config {
            listen,
            public_url,
            admin_listen: self
                .admin_listen
                .map(|s| {
                    s.parse().map_err(|_| {
                        invalid(
                            "admin_listen",
                            "not a socket address (expected IP:PORT, e.g. 127.0.0.1:9090)",
                        )
                    })
                })
                .transpose()?,
            log: self.log.validate()?,
            server: self.server.validate()?,
            upstream: self.upstream.validate()?,
            cache: self.cache.validate()?,
            storage: self.storage.validate()?,
            artifacts: self.artifacts.validate()?,
            zip: self.zip.validate()?,
            tls: self.tls.map(RawTls::validate).transpose()?,
        })
    }
}

impl RawLog {
    fn validate(self) -> Result<LogConfig, ConfigError> {
        let d = LogConfig::default();
        let format = match self.format.as_deref() {
            None => d.format,
            Some("human") => LogFormat::Human,
            Some("json") => LogFormat::Json,
            Some(_) => return Err(invalid("log.format", "must be \"human\" or \"json\"")),
        };
        let filter = self.filter.unwrap_or(d.filter);
        if filter.trim().is_empty() {
            return Err(invalid("log.filter", "must not be empty"));
        }
        Ok(LogConfig { format, filter })
    }
}

/// A CIDR (`10.0.0.0/8`) or a single address (`10.0.0.1`, one host).
fn parse_cidr(text: &str) -> Option<ipnet::IpNet> {
    let text = text.trim();
    text.parse::<ipnet::IpNet>()
        .ok()
        .or_else(|| {
            text.parse::<std::net::IpAddr>()
                .ok()
                .map(ipnet::IpNet::from)
        })
        .map(|net| net.trunc())
}

impl RawServer {
    fn validate(self) -> Result<ServerConfig, ConfigError> {
        let d = ServerConfig::default();
        let max_header_bytes = match self.max_header_bytes {
            None => d.max_header_bytes,
            Some(Size(n)) => usize::try_from(n)
                .ok()
                .filter(|n| (MIN_HEADER_BYTES..=MAX_HEADER_BYTES).contains(n))
                .ok_or_else(|| {
                    invalid(
                        "server.max_header_bytes",
                        format!("must be between {MIN_HEADER_BYTES} (8KiB) and {MAX_HEADER_BYTES} (1MiB)"),
                    )
                })?,
        };
        Ok(ServerConfig {
            header_read_timeout: nonzero(
                "server.header_read_timeout",
                self.header_read_timeout,
                d.header_read_timeout,
            )?,
            max_header_bytes,
            // Zero is meaningful here: close in-flight requests at once.
            shutdown_grace: self.shutdown_grace.map_or(d.shutdown_grace, |v| v.0),
            max_connections: at_least_one(
                "server.max_connections",
                self.max_connections,
                d.max_connections,
            )?,
            max_streams: at_least_one("server.max_streams", self.max_streams, d.max_streams)?,
            max_streams_per_connection: at_least_one(
                "server.max_streams_per_connection",
                self.max_streams_per_connection,
                d.max_streams_per_connection,
            )?,
            stall_timeout: nonzero("server.stall_timeout", self.stall_timeout, d.stall_timeout)?,
            idle_timeout: nonzero("server.idle_timeout", self.idle_timeout, d.idle_timeout)?,
            trusted_proxies: self
                .trusted_proxies
                .unwrap_or_default()
                .iter()
                .enumerate()
                .map(|(i, text)| {
                    parse_cidr(text).ok_or_else(|| {
                        invalid(
                            format!("server.trusted_proxies[{i}]"),
                            format!("{text:?} is not an IP address or CIDR (10.0.0.0/8, fd00::/8)"),
                        )
                    })
                })
                .collect::<Result<_, _>>()?,
        })
    }
}

impl RawUpstream {
    fn validate(self) -> Result<UpstreamConfig, ConfigError> {
        let url = self
            .url
            .ok_or_else(|| invalid("upstream.url", "required"))?;
        let d = upstream_defaults(BaseUrl::parse(&url).map_err(|m| invalid("upstream.url", m))?);
        let rewrite_bases = self
            .rewrite_bases
            .unwrap_or_default()
            .iter()
            .enumerate()
            .map(|(i, s)| {
                BaseUrl::parse(s).map_err(|m| invalid(format!("upstream.rewrite_bases[{i}]"), m))
            })
            .collect::<Result<_, _>>()?;
        Ok(UpstreamConfig {
            connect_timeout: nonzero(
                "upstream.connect_timeout",
                self.connect_timeout,
                d.connect_timeout,
            )?,
            response_timeout: nonzero(
                "upstream.response_timeout",
                self.response_timeout,
                d.response_timeout,
            )?,
            pool_idle_timeout: nonzero(
                "upstream.pool_idle_timeout",
                self.pool_idle_timeout,
                d.pool_idle_timeout,
            )?,
            pool_max_idle_per_host: self
                .pool_max_idle_per_host
                .unwrap_or(d.pool_max_idle_per_host),
            rewrite_bases,
            ca_file: ca_file("upstream.ca_file", self.ca_file)?,
            url: d.url,
        })
    }
}

impl RawCache {
    fn validate(self) -> Result<CacheConfig, ConfigError> {
        let d = CacheConfig::default();
        let max_bytes = self.max_bytes.map_or(d.max_bytes, |v| v.0);
        let max_entry_bytes = match self.max_entry_bytes {
            Some(Size(n)) if max_bytes > 0 && n > max_bytes => {
                return Err(invalid(
                    "cache.max_entry_bytes",
                    format!("must not exceed cache.max_bytes ({max_bytes})"),
                ))
            }
            Some(Size(n)) => n,
            // Unset: follow a cache smaller than the default entry limit down, rather than fail
            // on a key the operator never wrote.
            None if max_bytes > 0 => d.max_entry_bytes.min(max_bytes),
            None => d.max_entry_bytes,
        };
        Ok(CacheConfig {
            max_bytes,
            // Zero would make every entry stale on insert; `max_bytes = 0` is the way to disable.
            ttl: nonzero("cache.ttl", self.ttl, d.ttl)?,
            max_entry_bytes,
        })
    }
}

impl RawStorage {
    fn validate(self) -> Result<StorageConfig, ConfigError> {
        let d = StorageConfig::default();
        let url = match self.url {
            None => d.url,
            Some(url) => {
                check_storage_url(&url).map_err(|m| invalid("storage.url", m))?;
                url
            }
        };
        let template = |key: &str, value: Option<String>, default: KeyTemplate| match value {
            None => Ok(default),
            Some(s) => KeyTemplate::parse(&s).map_err(|m| invalid(key, m)),
        };
        let endpoint = self
            .endpoint
            .map(|s| check_endpoint(&s).map_err(|m| invalid("storage.endpoint", m)))
            .transpose()?;
        let allow_http = self.allow_http.unwrap_or(d.allow_http);
        if !allow_http && endpoint.as_ref().is_some_and(|e| e.starts_with("http://")) {
            return Err(invalid(
                "storage.allow_http",
                "must be true to use a plain-HTTP storage.endpoint (http://…): requests and \
                 credentials then travel unencrypted",
            ));
        }
        let redirect_downloads = self.redirect_downloads.unwrap_or(d.redirect_downloads);
        if redirect_downloads && !has_scheme(&url, "s3") {
            return Err(invalid(
                "storage.redirect_downloads",
                "only supported with an s3:// storage.url (presigned URLs are S3's)",
            ));
        }
        let presign_ttl = match self.presign_ttl {
            None => d.presign_ttl,
            Some(Dur(ttl)) if (MIN_PRESIGN_TTL..=MAX_PRESIGN_TTL).contains(&ttl) => ttl,
            Some(_) => {
                return Err(invalid(
                    "storage.presign_ttl",
                    "must be between 1s and 7 days (168h)",
                ))
            }
        };
        let options = self.options.map_or(d.options, |t| t.0);
        if options.contains_key("") {
            return Err(invalid("storage.options", "keys must not be empty"));
        }
        Ok(StorageConfig {
            url,
            archive_key: template("storage.archive_key", self.archive_key, d.archive_key)?,
            trace_key: template("storage.trace_key", self.trace_key, d.trace_key)?,
            endpoint,
            region: not_empty("storage.region", self.region)?,
            access_key_id: not_empty("storage.access_key_id", self.access_key_id)?,
            secret_access_key: not_empty(
                "storage.secret_access_key",
                self.secret_access_key.map(|t| t.0),
            )?
            .map(Secret::from),
            session_token: not_empty("storage.session_token", self.session_token.map(|t| t.0))?
                .map(Secret::from),
            allow_http,
            virtual_hosted_style: self.virtual_hosted_style.unwrap_or(d.virtual_hosted_style),
            connect_timeout: nonzero(
                "storage.connect_timeout",
                self.connect_timeout,
                d.connect_timeout,
            )?,
            read_timeout: nonzero("storage.read_timeout", self.read_timeout, d.read_timeout)?,
            options,
            redirect_downloads,
            presign_ttl,
            ca_file: ca_file("storage.ca_file", self.ca_file)?,
        })
    }
}

impl RawTls {
    fn validate(self) -> Result<TlsConfig, ConfigError> {
        let file = |key: &str, value: Option<String>| match not_empty(key, value)? {
            Some(path) => Ok(PathBuf::from(path)),
            None => Err(invalid(key, "required when [tls] is present")),
        };
        let d = TlsConfig::new(
            file("tls.cert_file", self.cert_file)?,
            file("tls.key_file", self.key_file)?,
        );
        Ok(TlsConfig {
            reload_interval: nonzero(
                "tls.reload_interval",
                self.reload_interval,
                d.reload_interval,
            )?,
            handshake_timeout: nonzero(
                "tls.handshake_timeout",
                self.handshake_timeout,
                d.handshake_timeout,
            )?,
            ..d
        })
    }
}

impl RawArtifacts {
    fn validate(self) -> Result<ArtifactsConfig, ConfigError> {
        let d = ArtifactsConfig::default();
        let by_ref_max_pages = match self.by_ref_max_pages {
            None => d.by_ref_max_pages,
            Some(n) if (1..=MAX_BY_REF_PAGES).contains(&n) => n,
            Some(_) => {
                return Err(invalid(
                    "artifacts.by_ref_max_pages",
                    format!("must be between 1 and {MAX_BY_REF_PAGES}"),
                ))
            }
        };
        let source = match self.source.as_deref() {
            None | Some("storage") => ArtifactSource::Storage,
            Some("upstream") => ArtifactSource::Upstream,
            Some(_) => {
                return Err(invalid(
                    "artifacts.source",
                    "must be \"storage\" or \"upstream\"",
                ))
            }
        };
        let upstream_only = |key: &'static str| {
            invalid(
                key,
                "only applies with artifacts.source = \"upstream\" (storage mode has \
                 storage.redirect_downloads and no redirects to follow)",
            )
        };
        let redirect = self.redirect.unwrap_or(d.redirect);
        if redirect && source == ArtifactSource::Storage {
            return Err(upstream_only("artifacts.redirect"));
        }
        let allowed_hosts = self
            .allowed_hosts
            .unwrap_or_default()
            .into_iter()
            .map(|host| allowed_host(&host))
            .collect::<Result<Vec<_>, _>>()?;
        if !allowed_hosts.is_empty() && source == ArtifactSource::Storage {
            return Err(upstream_only("artifacts.allowed_hosts"));
        }
        Ok(ArtifactsConfig {
            source,
            by_ref_max_pages,
            by_ref_ttl: nonzero("artifacts.by_ref_ttl", self.by_ref_ttl, d.by_ref_ttl)?,
            redirect,
            allowed_hosts,
        })
    }
}

/// One `artifacts.allowed_hosts` entry: a host name or address (`storage.example.com`,
/// `10.0.0.5`, `[::1]`) or `*.domain` for its subdomains; no scheme, port or path.
fn allowed_host(entry: &str) -> Result<String, ConfigError> {
    let host = entry.trim().trim_end_matches('.').to_ascii_lowercase();
    let name = host.strip_prefix("*.").unwrap_or(&host);
    let bare = name.trim_start_matches('[').trim_end_matches(']');
    let valid = !bare.is_empty()
        && !name.contains('*')
        && (bare.parse::<std::net::IpAddr>().is_ok()
            || bare
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.'));
    if !valid {
        return Err(invalid(
            "artifacts.allowed_hosts",
            format!(
                "{entry:?} is not a host name (write storage.example.com or *.example.com, \
                 without scheme, port or path)"
            ),
        ));
    }
    Ok(host)
}

impl RawZip {
    fn validate(self) -> Result<ZipConfig, ConfigError> {
        let d = ZipConfig::default();
        let tail_bytes = self.tail_bytes.map_or(d.tail_bytes, |v| v.0);
        if !(1024..=64 * 1024 * 1024).contains(&tail_bytes) {
            return Err(invalid("zip.tail_bytes", "must be between 1KiB and 64MiB"));
        }
        let max_entries = self.max_entries.unwrap_or(d.max_entries);
        if max_entries == 0 {
            return Err(invalid("zip.max_entries", "must be at least 1"));
        }
        let max_directory_bytes = self
            .max_directory_bytes
            .map_or(d.max_directory_bytes, |v| v.0);
        if max_directory_bytes < 1024 {
            return Err(invalid("zip.max_directory_bytes", "must be at least 1KiB"));
        }
        let max_decoder_memory = self
            .max_decoder_memory
            .map_or(d.max_decoder_memory, |v| v.0);
        if max_decoder_memory < 1024 * 1024 {
            return Err(invalid("zip.max_decoder_memory", "must be at least 1MiB"));
        }
        let memory_budget = self.memory_budget.map_or(d.memory_budget, |v| v.0);
        if memory_budget < max_decoder_memory {
            return Err(invalid(
                "zip.memory_budget",
                "must be at least zip.max_decoder_memory",
            ));
        }
        if memory_budget > 4 << 40 {
            return Err(invalid("zip.memory_budget", "must be at most 4TiB"));
        }
        Ok(ZipConfig {
            index_cache_bytes: self.index_cache_bytes.map_or(d.index_cache_bytes, |v| v.0),
            index_ttl: nonzero("zip.index_ttl", self.index_ttl, d.index_ttl)?,
            tail_bytes,
            max_entries,
            max_directory_bytes,
            max_decoder_memory,
            memory_budget,
        })
    }
}

fn at_least_one<T: PartialOrd + From<u8>>(
    key: &str,
    value: Option<T>,
    default: T,
) -> Result<T, ConfigError> {
    match value {
        None => Ok(default),
        Some(n) if n >= T::from(1) => Ok(n),
        Some(_) => Err(invalid(key, "must be at least 1")),
    }
}

fn nonzero(key: &str, value: Option<Dur>, default: Duration) -> Result<Duration, ConfigError> {
    match value {
        Some(Dur(d)) if d.is_zero() => Err(invalid(key, "must be greater than zero")),
        Some(Dur(d)) => Ok(d),
        None => Ok(default),
    }
}

/// An optional string that, when set, must not be blank: leaving the key out is how to get the
/// default. The message never quotes the value (it may be a secret).
fn not_empty(key: &str, value: Option<String>) -> Result<Option<String>, ConfigError> {
    match value {
        Some(s) if s.trim().is_empty() => Err(invalid(
            key,
            "must not be empty (leave the key out instead)",
        )),
        other => Ok(other),
    }
}

/// An extra CA bundle (`upstream.ca_file`, `storage.ca_file`): read now, so that a missing file
/// or one without a usable certificate fails the load with the key's name.
fn ca_file(key: &str, value: Option<String>) -> Result<Option<PathBuf>, ConfigError> {
    let Some(path) = not_empty(key, value)?.map(PathBuf::from) else {
        return Ok(None);
    };
    crate::trust::ca_certificates(&path).map_err(|m| invalid(key, m))?;
    Ok(Some(path))
}

/// `storage.endpoint`: `http(s)://host[:port]`, returned normalized (lowercase scheme, no
/// trailing slash).
fn check_endpoint(endpoint: &str) -> Result<String, String> {
    let base = BaseUrl::parse(endpoint)?;
    if !base.path_prefix().is_empty() {
        return Err("must be http(s)://host[:port], without a path".to_owned());
    }
    Ok(base.as_str().to_owned())
}

fn has_scheme(url: &str, scheme: &str) -> bool {
    url.split_once("://")
        .is_some_and(|(s, _)| s.eq_ignore_ascii_case(scheme))
}

/// Checks the scheme, that something follows it, a bucket for the bucket schemes and an
/// absolute path for file; the storage layer parses the rest.
fn check_storage_url(url: &str) -> Result<(), String> {
    let expected = || {
        format!(
            "must be a URL with scheme {}, e.g. file:///var/lib/artifacts or s3://bucket/prefix",
            STORAGE_SCHEMES.join(", ")
        )
    };
    let (scheme, rest) = url.split_once("://").ok_or_else(expected)?;
    if !STORAGE_SCHEMES
        .iter()
        .any(|s| s.eq_ignore_ascii_case(scheme))
    {
        return Err(expected());
    }
    if rest.is_empty() || url.contains(char::is_whitespace) {
        return Err(expected());
    }
    if scheme.eq_ignore_ascii_case("file") && !rest.starts_with('/') {
        return Err("a file URL needs an absolute path: file:///path/to/dir".to_owned());
    }
    if BUCKET_SCHEMES
        .iter()
        .any(|s| s.eq_ignore_ascii_case(scheme))
        && rest.starts_with('/')
    {
        return Err(format!(
            "needs a bucket (container) name after {scheme}://, e.g. {scheme}://bucket/prefix"
        ));
    }
    Ok(())
}
