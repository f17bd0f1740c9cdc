//! The raw tree: what the file may contain, before validation (every field optional, unknown
//! keys denied), and its `validate` into the typed [`Config`], filling in defaults.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

mod archives;

use super::checks::{
    allowed_host, at_least_one, ca_file, check_endpoint, check_storage_url, has_scheme, nonzero,
    not_empty, parse_cidr,
};
use super::error::{invalid, ConfigError};
use super::types::{BaseUrl, KeyTemplate, Secret};
use super::values::{Dur, Size, StringTable, Text, MIB};
use super::{
    upstream_defaults, ArtifactSource, ArtifactsConfig, CacheConfig, Config, LinkKey, LinksConfig,
    LogConfig, LogFormat, ServerConfig, StorageConfig, TlsConfig, UpstreamConfig, ZipConfig,
    DEFAULT_LISTEN,
};

/// hyper's HTTP/1 `max_buf_size` panics below this, and it bounds the request head we accept.
const MIN_HEADER_BYTES: usize = 8192;
/// Upper bound on `server.max_header_bytes`: it is allocated per connection, so it bounds memory.
const MAX_HEADER_BYTES: usize = MIB as usize;
/// Most local files `storage.open_files` may keep open.
const MAX_OPEN_FILES: u64 = 65_536;
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
    #[serde(default)]
    links: RawLinks,
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
    open_files: Option<u64>,
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
    hot_entry_cache_bytes: Option<Size>,
    max_part_entries: Option<u64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawLinks {
    keys: Option<Vec<Text>>,
    max_lifetime: Option<Dur>,
    recheck: Option<bool>,
    service_token: Option<Text>,
}

/// The ceiling of `links.max_lifetime`.
const MAX_LINK_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);
/// Shortest link MAC key.
const MIN_LINK_KEY_BYTES: usize = 32;

impl RawLinks {
    fn validate(self) -> Result<LinksConfig, ConfigError> {
        let d = LinksConfig::default();
        let keys = self
            .keys
            .unwrap_or_default()
            .into_iter()
            .map(|Text(key)| {
                let bytes = decode_key(key.trim())
                    .ok_or_else(|| invalid("links.keys", "each key must be hex or base64"))?;
                if bytes.len() < MIN_LINK_KEY_BYTES {
                    return Err(invalid(
                        "links.keys",
                        "each key must be at least 32 bytes (64 hex digits, 44 base64 characters)",
                    ));
                }
                Ok(LinkKey(bytes))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let max_lifetime = match self.max_lifetime {
            None => d.max_lifetime,
            Some(Dur(t)) if !t.is_zero() && t <= MAX_LINK_LIFETIME => t,
            Some(_) => {
                return Err(invalid(
                    "links.max_lifetime",
                    "must be between 1s and 7 days (168h)",
                ))
            }
        };
        Ok(LinksConfig {
            keys,
            max_lifetime,
            recheck: self.recheck.unwrap_or(d.recheck),
            service_token: not_empty("links.service_token", self.service_token.map(|t| t.0))?
                .map(Secret::from),
        })
    }
}

/// A key written as hex (an even number of hex digits) or base64 (standard or URL-safe,
/// padded or not).
fn decode_key(text: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    if !text.is_empty()
        && text.len().is_multiple_of(2)
        && text.bytes().all(|b| b.is_ascii_hexdigit())
    {
        return (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
            .collect();
    }
    let engines = [
        base64::engine::general_purpose::STANDARD,
        base64::engine::general_purpose::STANDARD_NO_PAD,
        base64::engine::general_purpose::URL_SAFE,
        base64::engine::general_purpose::URL_SAFE_NO_PAD,
    ];
    engines.iter().find_map(|engine| engine.decode(text).ok())
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
            links: self.links.validate()?,
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
