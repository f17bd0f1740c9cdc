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

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

/// Prefix of the environment variables that override file keys.
const ENV_PREFIX: &str = "ARTIFACT_GATEWAY_";
/// Separates section from key in variable names; keys themselves contain single underscores.
const ENV_SECTION_SEPARATOR: &str = "__";

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;
const GIB: u64 = 1024 * MIB;

/// hyper's HTTP/1 `max_buf_size` panics below this, and it bounds the request head we accept.
const MIN_HEADER_BYTES: usize = 8192;
/// Upper bound on `server.max_header_bytes`: it is allocated per connection, so it bounds memory.
const MAX_HEADER_BYTES: usize = MIB as usize;
/// Longest accepted duration. Far beyond any sensible timeout, and small enough that
/// `Instant + duration` can never overflow (which would panic deep inside a timer).
const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);

const DEFAULT_LISTEN: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 8080));
const DEFAULT_STORAGE_URL: &str = "file:///var/lib/artifacts";
const DEFAULT_ARCHIVE_KEY: &str = "{project_id}/{job_id}/artifacts.zip";
const DEFAULT_TRACE_KEY: &str = "{project_id}/{job_id}/job.log";
const STORAGE_SCHEMES: [&str; 7] = ["file", "s3", "gs", "az", "abfs", "http", "https"];

/// The validated gateway configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address the gateway listens on (`listen`).
    pub listen: SocketAddr,
    /// Base URL clients use; upstream `Link`/`Location` headers are rewritten to it (`public_url`).
    pub public_url: Option<BaseUrl>,
    pub log: LogConfig,
    pub server: ServerConfig,
    pub upstream: UpstreamConfig,
    pub cache: CacheConfig,
    pub storage: StorageConfig,
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
    pub header_read_timeout: Duration,
    /// Largest request head accepted; also hyper's per-connection read buffer limit.
    pub max_header_bytes: usize,
    /// On shutdown, how long in-flight requests may finish before connections are closed.
    pub shutdown_grace: Duration,
    /// How long an idle keep-alive connection is kept open.
    pub keep_alive_idle: Duration,
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

/// `[storage]`: where artifact archives and job logs live.
#[derive(Debug, Clone)]
pub struct StorageConfig {
    /// Object store URL: `file:///dir`, `s3://bucket/prefix`, `gs://…`, `az://…`, `abfs://…`,
    /// `http(s)://…`. Only the scheme is checked here; the storage layer parses the rest.
    pub url: String,
    pub archive_key: KeyTemplate,
    pub trace_key: KeyTemplate,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::Human,
            filter: "info".to_owned(),
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            header_read_timeout: Duration::from_secs(10),
            max_header_bytes: 16 * KIB as usize,
            shutdown_grace: Duration::from_secs(30),
            keep_alive_idle: Duration::from_secs(75),
        }
    }
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            max_bytes: 64 * MIB,
            ttl: Duration::from_secs(30),
            max_entry_bytes: MIB,
        }
    }
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            url: DEFAULT_STORAGE_URL.to_owned(),
            archive_key: KeyTemplate::parse(DEFAULT_ARCHIVE_KEY).expect("built-in template"),
            trace_key: KeyTemplate::parse(DEFAULT_TRACE_KEY).expect("built-in template"),
        }
    }
}

fn upstream_defaults(url: BaseUrl) -> UpstreamConfig {
    UpstreamConfig {
        url,
        connect_timeout: Duration::from_secs(5),
        response_timeout: Duration::from_secs(30),
        pool_idle_timeout: Duration::from_secs(90),
        pool_max_idle_per_host: 64,
        rewrite_bases: Vec::new(),
    }
}

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// TOML syntax error, with toml's line/column text.
    #[error("{0}")]
    Syntax(String),
    /// `key` is the dotted path (`upstream.connect_timeout`) or the environment variable.
    #[error("{key}: {message}")]
    Invalid { key: String, message: String },
}

fn invalid(key: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        message: message.into(),
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
        let overrides = EnvOverrides::apply(&mut table, env)?;
        let raw: RawConfig = serde_path_to_error::deserialize(table)
            .map_err(|err| overrides.deserialize_error(err))?;
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
            log: LogConfig::default(),
            server: ServerConfig::default(),
            upstream: upstream_defaults(upstream_url),
            cache: CacheConfig::default(),
            storage: StorageConfig {
                url: storage_url,
                ..StorageConfig::default()
            },
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Environment overrides

/// One key set from the environment.
struct Override {
    var: String,
    key: String,
}

/// The keys set from the environment, remembered so errors can name the variable, not a key the
/// operator never wrote in the file.
struct EnvOverrides(Vec<Override>);

impl EnvOverrides {
    fn apply(
        table: &mut toml::Table,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut overrides: Vec<Override> = Vec::new();
        for (var, value) in env {
            let Some(name) = var.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            let segments: Vec<String> = name
                .to_ascii_lowercase()
                .split(ENV_SECTION_SEPARATOR)
                .map(str::to_owned)
                .collect();
            let well_formed = segments.iter().all(|s| {
                !s.is_empty()
                    && s.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            });
            if !well_formed {
                return Err(invalid(
                    var,
                    format!(
                        "not a configuration key; use {ENV_PREFIX}KEY or {ENV_PREFIX}SECTION__KEY"
                    ),
                ));
            }
            let key = segments.join(".");
            if let Some(other) = overrides.iter().find(|o| o.key == key) {
                return Err(invalid(var, format!("{key} is also set by {}", other.var)));
            }
            insert(table, &segments, env_value(&var, &value)?).map_err(|m| invalid(&var, m))?;
            overrides.push(Override { var, key });
        }
        Ok(EnvOverrides(overrides))
    }

    /// The override that set `key`, a value inside it, or a key inside section `key`.
    fn source(&self, key: &str) -> Option<&Override> {
        self.0.iter().find(|o| {
            let within = |outer: &str, inner: &str| {
                inner
                    .strip_prefix(outer)
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
            };
            within(&o.key, key) || within(key, &o.key)
        })
    }

    /// Names the variable in an error about a key it set.
    fn attribute(&self, err: ConfigError) -> ConfigError {
        match err {
            ConfigError::Invalid { key, message } => match self.source(&key) {
                Some(o) => invalid(key, format!("{message} (set by {})", o.var)),
                None => invalid(key, message),
            },
            other => other,
        }
    }

    /// Turns a deserialization error into one naming the full dotted key. serde reports an
    /// unknown field at the path of its table, so the field name is appended here.
    fn deserialize_error(&self, err: serde_path_to_error::Error<toml::de::Error>) -> ConfigError {
        let path = err.path().to_string();
        let message = err.inner().message();
        let Some((field, expected)) = message
            .strip_prefix("unknown field `")
            .and_then(|rest| rest.split_once('`'))
        else {
            return match self.source(&path) {
                // A variable made a section out of a plain value (`LISTEN__PORT`): the key it
                // names does not exist.
                Some(o) if o.key.len() > path.len() => {
                    invalid(&o.var, format!("unknown key {}", o.key))
                }
                _ => self.attribute(invalid(path, message)),
            };
        };
        let key = if path == "." {
            field.to_owned()
        } else if path.rsplit('.').next() == Some(field) {
            path
        } else {
            format!("{path}.{field}")
        };
        match self.source(&key) {
            Some(o) => invalid(&o.var, format!("unknown key {}", o.key)),
            None => match expected.strip_prefix(", ") {
                Some(hint) => invalid(key, format!("unknown key ({hint})")),
                None => invalid(key, "unknown key"),
            },
        }
    }
}

/// A variable's value as TOML: an integer, bool or float if it parses as one, an array if it
/// starts with `[` (e.g. `rewrite_bases`), otherwise the string itself, so URLs need no quotes.
fn env_value(var: &str, value: &str) -> Result<toml::Value, ConfigError> {
    let parsed = format!("v = {value}")
        .parse::<toml::Table>()
        .ok()
        .filter(|t| t.len() == 1) // a value with a newline must not smuggle in more keys
        .and_then(|mut t| t.remove("v"));
    if value.trim_start().starts_with('[') {
        return match parsed {
            Some(array @ toml::Value::Array(_)) => Ok(array),
            _ => Err(invalid(
                var,
                "not a TOML array, e.g. [\"https://a\", \"https://b\"]",
            )),
        };
    }
    Ok(match parsed {
        Some(v @ (toml::Value::Integer(_) | toml::Value::Boolean(_) | toml::Value::Float(_))) => v,
        _ => toml::Value::String(value.to_owned()),
    })
}

/// Sets `segments` (section path, then key) in `table`, creating sections as needed.
fn insert(table: &mut toml::Table, segments: &[String], value: toml::Value) -> Result<(), String> {
    let (last, sections) = segments
        .split_last()
        .expect("split yields at least one segment");
    let mut current = table;
    for (i, section) in sections.iter().enumerate() {
        let entry = current
            .entry(section.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        current = match entry {
            toml::Value::Table(t) => t,
            _ => {
                return Err(format!(
                    "cannot set {}: {} is not a section",
                    segments.join("."),
                    sections[..=i].join(".")
                ))
            }
        };
    }
    if let Some(toml::Value::Table(_)) = current.get(last) {
        return Err(format!(
            "{} is a section; set its keys with {ENV_PREFIX}SECTION__KEY",
            segments.join(".")
        ));
    }
    current.insert(last.clone(), value);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Raw tree: what the file may contain, before validation

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    listen: Option<String>,
    public_url: Option<String>,
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
    keep_alive_idle: Option<Dur>,
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
}

impl RawConfig {
    /// Checks every value and fills defaults. Errors name the dotted key.
    fn validate(self) -> Result<Config, ConfigError> {
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
            log: self.log.validate()?,
            server: self.server.validate()?,
            upstream: self.upstream.validate()?,
            cache: self.cache.validate()?,
            storage: self.storage.validate()?,
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
            keep_alive_idle: nonzero(
                "server.keep_alive_idle",
                self.keep_alive_idle,
                d.keep_alive_idle,
            )?,
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
        Ok(StorageConfig {
            url,
            archive_key: template("storage.archive_key", self.archive_key, d.archive_key)?,
            trace_key: template("storage.trace_key", self.trace_key, d.trace_key)?,
        })
    }
}

fn nonzero(key: &str, value: Option<Dur>, default: Duration) -> Result<Duration, ConfigError> {
    match value {
        Some(Dur(d)) if d.is_zero() => Err(invalid(key, "must be greater than zero")),
        Some(Dur(d)) => Ok(d),
        None => Ok(default),
    }
}

/// Checks only the scheme and that something follows it; the storage layer parses the rest.
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
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Value types: durations, sizes, key templates, base URLs

/// A duration as written in the file: `"500ms"`, `"10s"`, `"5m"`, `"1h"`, or integer seconds.
struct Dur(Duration);
/// A byte count as written in the file: an integer, or a string with `B`/`KiB`/`MiB`/`GiB`.
struct Size(u64);

/// Accepts a non-negative integer or a string, converting each with its own function, so the
/// conversion error surfaces during deserialization and `serde_path_to_error` names the key.
struct IntOrStr<T> {
    expecting: &'static str,
    int: fn(u64) -> Result<T, String>,
    text: fn(&str) -> Result<T, String>,
}

impl<T> Visitor<'_> for IntOrStr<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.expecting)
    }

    fn visit_u64<E: de::Error>(self, n: u64) -> Result<T, E> {
        (self.int)(n).map_err(E::custom)
    }

    fn visit_i64<E: de::Error>(self, n: i64) -> Result<T, E> {
        let n = u64::try_from(n).map_err(|_| E::custom("must not be negative"))?;
        self.visit_u64(n)
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<T, E> {
        (self.text)(s).map_err(E::custom)
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(IntOrStr {
            expecting:
                "a duration such as \"500ms\", \"10s\", \"5m\" or \"1h\", or integer seconds",
            int: |secs| at_most_max(Duration::from_secs(secs)),
            text: parse_duration,
        })
        .map(Dur)
    }
}

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(IntOrStr {
            expecting: "a size: an integer number of bytes or a string such as \"64MiB\"",
            int: Ok,
            text: parse_size,
        })
        .map(Size)
    }
}

/// Splits `"10ms"` into `("10", "ms")`.
fn split_number(s: &str) -> (&str, &str) {
    s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()))
}

/// Parses `<integer><unit>` with unit `ms`, `s`, `m` or `h`; a bare integer means seconds.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let err = || {
        format!("invalid duration {s:?}: expected an integer with unit ms, s, m or h, e.g. \"500ms\", \"10s\", \"5m\"")
    };
    let (digits, unit) = split_number(s.trim());
    let n: u64 = digits.parse().map_err(|_| err())?;
    let duration = match unit {
        "ms" => Some(Duration::from_millis(n)),
        "" | "s" => Some(Duration::from_secs(n)),
        "m" => n.checked_mul(60).map(Duration::from_secs),
        "h" => n.checked_mul(3600).map(Duration::from_secs),
        _ => return Err(err()),
    };
    at_most_max(duration.unwrap_or(Duration::MAX))
}

fn at_most_max(d: Duration) -> Result<Duration, String> {
    if d > MAX_DURATION {
        return Err("too long: at most 8760h (one year)".to_owned());
    }
    Ok(d)
}

/// Parses `<integer>[unit]` with unit `B`, `KiB`, `MiB` or `GiB` (any case); none means bytes.
/// `KB`/`MB` are refused rather than guessed: they mean 1000 to some and 1024 to others.
fn parse_size(s: &str) -> Result<u64, String> {
    let err = || {
        format!("invalid size {s:?}: expected bytes, or an integer with unit B, KiB, MiB or GiB, e.g. \"64MiB\"")
    };
    let (digits, unit) = split_number(s.trim());
    let n: u64 = digits.parse().map_err(|_| err())?;
    let multiplier = match unit.trim_start().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kib" => KIB,
        "mib" => MIB,
        "gib" => GIB,
        _ => return Err(err()),
    };
    n.checked_mul(multiplier)
        .ok_or_else(|| format!("size {s:?} is too large"))
}

/// A storage key with `{project_id}` and `{job_id}` placeholders; any other `{...}` is an error at load time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyTemplate {
    text: String,
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(Range<usize>),
    ProjectId,
    JobId,
}

impl KeyTemplate {
    /// Parses a template. It must contain `{job_id}` (else every job would share one object),
    /// be relative (not start with `/`), and have no empty, `.` or `..` segments, which object
    /// stores reject or resolve outside the prefix.
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.starts_with('/') {
            return Err("must not start with '/': keys are relative to storage.url".to_owned());
        }
        if s.split('/')
            .any(|seg| seg.is_empty() || seg == "." || seg == "..")
        {
            return Err("must not contain empty, '.' or '..' path segments".to_owned());
        }
        let mut parts = Vec::new();
        let mut pos = 0;
        while pos < s.len() {
            let brace = s[pos..].find(['{', '}']).map_or(s.len(), |i| pos + i);
            if brace > pos {
                parts.push(Part::Literal(pos..brace));
            }
            if brace == s.len() {
                break;
            }
            if s.as_bytes()[brace] == b'}' {
                return Err(format!("unbalanced '}}' at byte {brace}"));
            }
            let close = s[brace + 1..]
                .find(['{', '}'])
                .map(|i| brace + 1 + i)
                .filter(|&i| s.as_bytes()[i] == b'}')
                .ok_or_else(|| format!("unbalanced '{{' at byte {brace}"))?;
            parts.push(match &s[brace + 1..close] {
                "project_id" => Part::ProjectId,
                "job_id" => Part::JobId,
                other => {
                    return Err(format!(
                        "unknown placeholder {{{other}}}; expected {{project_id}} or {{job_id}}"
                    ))
                }
            });
            pos = close + 1;
        }
        if !parts.contains(&Part::JobId) {
            return Err("must contain {job_id}".to_owned());
        }
        Ok(KeyTemplate {
            text: s.to_owned(),
            parts,
        })
    }

    /// The object key for one job.
    pub fn render(&self, project_id: u64, job_id: u64) -> String {
        let mut key = String::with_capacity(self.text.len() + 16);
        for part in &self.parts {
            match part {
                Part::Literal(range) => key.push_str(&self.text[range.clone()]),
                Part::ProjectId => key.push_str(&project_id.to_string()),
                Part::JobId => key.push_str(&job_id.to_string()),
            }
        }
        key
    }

    /// The template as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

/// An absolute http(s) base URL: scheme + authority + optional path prefix without trailing slash, no query/fragment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseUrl {
    /// `scheme://authority/prefix`, scheme lowercased, no trailing slash.
    text: String,
    /// End of the scheme in `text`; the authority starts 3 bytes later, after `://`.
    scheme_end: usize,
    /// End of the authority in `text`; the path prefix follows.
    authority_end: usize,
}

impl BaseUrl {
    /// Parses `http(s)://authority[/prefix][/]`. Credentials are refused: the URL is logged.
    pub fn parse(s: &str) -> Result<Self, String> {
        const EXPECTED: &str = "must be an absolute http:// or https:// URL";
        if s.contains(['?', '#']) {
            return Err("must not have a query or fragment".to_owned());
        }
        let uri: http::Uri = s.parse().map_err(|_| EXPECTED)?;
        let scheme = match uri.scheme_str() {
            Some(s) if s.eq_ignore_ascii_case("http") => "http",
            Some(s) if s.eq_ignore_ascii_case("https") => "https",
            _ => return Err(EXPECTED.to_owned()),
        };
        let authority = uri.authority().ok_or(EXPECTED)?;
        if authority.as_str().contains('@') {
            return Err("must not contain credentials".to_owned());
        }
        // `Authority` accepts any digits after the colon; the port must fit in a u16.
        let port = &authority.as_str()[authority.host().len()..];
        let port_ok = port.is_empty() || port[1..].parse::<u16>().is_ok();
        if authority.host().is_empty() || !port_ok {
            return Err(EXPECTED.to_owned());
        }
        let prefix = uri.path().trim_end_matches('/');
        let text = format!("{scheme}://{authority}{prefix}");
        Ok(BaseUrl {
            scheme_end: scheme.len(),
            authority_end: text.len() - prefix.len(),
            text,
        })
    }

    /// `"http"` or `"https"`.
    pub fn scheme(&self) -> &str {
        &self.text[..self.scheme_end]
    }

    /// Host and optional port, e.g. `"127.0.0.1:3000"`.
    pub fn authority(&self) -> &str {
        &self.text[self.scheme_end + 3..self.authority_end]
    }

    /// `""` or a prefix such as `"/gitlab"`, without trailing slash.
    pub fn path_prefix(&self) -> &str {
        &self.text[self.authority_end..]
    }

    /// The whole base, without trailing slash: `"https://h/gitlab"`.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl FromStr for BaseUrl {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        BaseUrl::parse(s)
    }
}

impl fmt::Display for BaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = "[upstream]\nurl = \"http://127.0.0.1:3000\"\n";

    fn load(text: &str) -> Result<Config, ConfigError> {
        Config::from_toml(text, Vec::new())
    }

    fn load_env(text: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        Config::from_toml(text, env.collect::<Vec<_>>())
    }

    /// The error text for `text`, which must fail.
    fn error(text: &str) -> String {
        load(text)
            .expect_err("config should be rejected")
            .to_string()
    }

    fn error_env(text: &str, env: &[(&str, &str)]) -> String {
        load_env(text, env)
            .expect_err("config should be rejected")
            .to_string()
    }

    fn base(s: &str) -> BaseUrl {
        BaseUrl::parse(s).unwrap()
    }

    #[test]
    fn defaults_fill_everything_but_the_upstream_url() {
        let c = load(MINIMAL).unwrap();
        assert_eq!(c.listen, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(c.public_url, None);
        assert_eq!(c.log.format, LogFormat::Human);
        assert_eq!(c.log.filter, "info");
        assert_eq!(c.server.header_read_timeout, Duration::from_secs(10));
        assert_eq!(c.server.max_header_bytes, 16384);
        assert_eq!(c.server.shutdown_grace, Duration::from_secs(30));
        assert_eq!(c.server.keep_alive_idle, Duration::from_secs(75));
        assert_eq!(c.upstream.url.as_str(), "http://127.0.0.1:3000");
        assert_eq!(c.upstream.connect_timeout, Duration::from_secs(5));
        assert_eq!(c.upstream.response_timeout, Duration::from_secs(30));
        assert_eq!(c.upstream.pool_idle_timeout, Duration::from_secs(90));
        assert_eq!(c.upstream.pool_max_idle_per_host, 64);
        assert!(c.upstream.rewrite_bases.is_empty());
        assert_eq!(c.cache.max_bytes, 64 * 1024 * 1024);
        assert_eq!(c.cache.ttl, Duration::from_secs(30));
        assert_eq!(c.cache.max_entry_bytes, 1024 * 1024);
        assert_eq!(c.storage.url, "file:///var/lib/artifacts");
        assert_eq!(c.storage.archive_key.render(7, 42), "7/42/artifacts.zip");
        assert_eq!(c.storage.trace_key.render(7, 42), "7/42/job.log");
    }

    #[test]
    fn with_defaults_matches_a_minimal_file() {
        let built =
            Config::with_defaults(base("http://127.0.0.1:3000"), DEFAULT_STORAGE_URL.into());
        assert_eq!(
            format!("{built:?}"),
            format!("{:?}", load(MINIMAL).unwrap())
        );
    }

    #[test]
    fn example_file_parses_and_states_the_defaults() {
        let example = include_str!("../config/gateway.example.toml");
        let c = load(example).unwrap();
        let built =
            Config::with_defaults(base("http://127.0.0.1:3000"), DEFAULT_STORAGE_URL.into());
        assert_eq!(format!("{c:?}"), format!("{built:?}"));
        // `public_url` has no default, so the example shows it commented out.
        let uncommented = example.replace("# public_url", "public_url");
        let c = load(&uncommented).unwrap();
        assert_eq!(c.public_url.unwrap().as_str(), "https://gitlab.example.com");
    }

    #[test]
    fn full_file() {
        let c = load(
            r#"
            listen = "0.0.0.0:9000"
            public_url = "https://gitlab.example.com/"
            [log]
            format = "json"
            filter = "artifact_gateway=debug"
            [server]
            header_read_timeout = "500ms"
            max_header_bytes = "32KiB"
            shutdown_grace = 0
            keep_alive_idle = "2m"
            [upstream]
            url = "https://jobs.internal/gitlab/"
            connect_timeout = 2
            response_timeout = "1m"
            pool_idle_timeout = "1h"
            pool_max_idle_per_host = 8
            rewrite_bases = ["https://gitlab.example.com", "http://gitlab:8080/"]
            [cache]
            max_bytes = 1048576
            ttl = "5s"
            max_entry_bytes = "64 KiB"
            [storage]
            url = "s3://artifacts/ci"
            archive_key = "p{project_id}/j{job_id}.zip"
            trace_key = "logs/{job_id}.log"
            "#,
        )
        .unwrap();
        assert_eq!(c.listen, "0.0.0.0:9000".parse().unwrap());
        assert_eq!(c.public_url.unwrap().as_str(), "https://gitlab.example.com");
        assert_eq!(c.log.format, LogFormat::Json);
        assert_eq!(c.log.filter, "artifact_gateway=debug");
        assert_eq!(c.server.header_read_timeout, Duration::from_millis(500));
        assert_eq!(c.server.max_header_bytes, 32 * 1024);
        assert_eq!(c.server.shutdown_grace, Duration::ZERO);
        assert_eq!(c.server.keep_alive_idle, Duration::from_secs(120));
        let up = &c.upstream;
        assert_eq!(up.url.as_str(), "https://jobs.internal/gitlab");
        assert_eq!(up.url.path_prefix(), "/gitlab");
        assert_eq!(up.connect_timeout, Duration::from_secs(2));
        assert_eq!(up.response_timeout, Duration::from_secs(60));
        assert_eq!(up.pool_idle_timeout, Duration::from_secs(3600));
        assert_eq!(up.pool_max_idle_per_host, 8);
        assert_eq!(
            up.rewrite_bases,
            [
                base("https://gitlab.example.com"),
                base("http://gitlab:8080")
            ]
        );
        assert_eq!(c.cache.max_bytes, 1 << 20);
        assert_eq!(c.cache.ttl, Duration::from_secs(5));
        assert_eq!(c.cache.max_entry_bytes, 64 * 1024);
        assert_eq!(c.storage.url, "s3://artifacts/ci");
        assert_eq!(c.storage.archive_key.render(3, 9), "p3/j9.zip");
        assert_eq!(c.storage.trace_key.render(3, 9), "logs/9.log");
    }

    #[test]
    fn syntax_error_keeps_line_and_column() {
        let err = load("listen = \n").unwrap_err();
        assert!(
            matches!(&err, ConfigError::Syntax(m) if m.contains("line 1")),
            "{err}"
        );
    }

    #[test]
    fn unknown_top_level_key_is_named() {
        let err = error(&format!("listn = \"0.0.0.0:1\"\n{MINIMAL}"));
        assert!(err.starts_with("listn: unknown key"), "{err}");
        let err = error(&format!("{MINIMAL}[upstrem]\nurl = \"http://x\"\n"));
        assert!(err.starts_with("upstrem: unknown key"), "{err}");
    }

    #[test]
    fn unknown_nested_key_is_named_with_its_section() {
        let err = error("[upstream]\nurl = \"http://x\"\ntimeuot = \"5s\"\n");
        assert!(err.starts_with("upstream.timeuot: unknown key"), "{err}");
        assert!(
            err.contains("connect_timeout"),
            "lists the known keys: {err}"
        );
    }

    #[test]
    fn wrong_type_is_named() {
        let err = error(&format!("listen = 8080\n{MINIMAL}"));
        assert!(
            err.starts_with("listen: invalid type: integer `8080`"),
            "{err}"
        );
        let err = error(&format!("{MINIMAL}pool_max_idle_per_host = \"many\"\n"));
        assert!(
            err.starts_with("upstream.pool_max_idle_per_host: invalid type"),
            "{err}"
        );
        let err = error(&format!("{MINIMAL}rewrite_bases = \"https://a\"\n"));
        assert!(
            err.starts_with("upstream.rewrite_bases: invalid type"),
            "{err}"
        );
        let err = error(&format!("{MINIMAL}[cache]\nttl = 1.5\n"));
        assert!(
            err.starts_with("cache.ttl: invalid type: floating point"),
            "{err}"
        );
        let err = error(&format!("{MINIMAL}[cache]\nmax_bytes = -1\n"));
        assert_eq!(err, "cache.max_bytes: must not be negative");
        let err = error(&format!("server = 1\n{MINIMAL}"));
        assert!(err.starts_with("server: invalid type"), "{err}");
    }

    #[test]
    fn bad_duration_is_named() {
        let err = error(&format!("{MINIMAL}connect_timeout = \"5 sec\"\n"));
        assert!(
            err.starts_with("upstream.connect_timeout: invalid duration \"5 sec\""),
            "{err}"
        );
    }

    #[test]
    fn bad_size_is_named() {
        let err = error(&format!("{MINIMAL}[cache]\nmax_bytes = \"64MB\"\n"));
        assert!(
            err.starts_with("cache.max_bytes: invalid size \"64MB\""),
            "{err}"
        );
    }

    #[test]
    fn bad_urls_are_named() {
        assert_eq!(
            error("[upstream]\nurl = \"127.0.0.1:3000\"\n"),
            "upstream.url: must be an absolute http:// or https:// URL"
        );
        let err = error(&format!(
            "{MINIMAL}rewrite_bases = [\"https://a\", \"ftp://b\"]\n"
        ));
        assert!(
            err.starts_with("upstream.rewrite_bases[1]: must be"),
            "{err}"
        );
        let err = error(&format!("public_url = \"https://h/?x=1\"\n{MINIMAL}"));
        assert_eq!(err, "public_url: must not have a query or fragment");
        let err = error(&format!("{MINIMAL}[storage]\nurl = \"ftp://host/dir\"\n"));
        assert!(
            err.starts_with("storage.url: must be a URL with scheme file, s3"),
            "{err}"
        );
        let err = error(&format!("listen = \"localhost\"\n{MINIMAL}"));
        assert!(err.starts_with("listen: not a socket address"), "{err}");
    }

    #[test]
    fn bad_template_placeholder_is_named() {
        let err = error(&format!(
            "{MINIMAL}[storage]\narchive_key = \"{{project}}/{{job_id}}.zip\"\n"
        ));
        assert!(
            err.starts_with("storage.archive_key: unknown placeholder {project}"),
            "{err}"
        );
    }

    #[test]
    fn missing_upstream_url_is_named() {
        assert_eq!(error(""), "upstream.url: required");
        assert_eq!(
            error("[upstream]\nconnect_timeout = \"1s\"\n"),
            "upstream.url: required"
        );
    }

    #[test]
    fn range_checks_are_named() {
        let err = error(&format!("{MINIMAL}response_timeout = \"0s\"\n"));
        assert_eq!(err, "upstream.response_timeout: must be greater than zero");
        let err = error(&format!("{MINIMAL}[server]\nmax_header_bytes = 4096\n"));
        assert!(
            err.starts_with("server.max_header_bytes: must be between 8192"),
            "{err}"
        );
        let err = error(&format!(
            "{MINIMAL}[cache]\nmax_bytes = \"1MiB\"\nmax_entry_bytes = \"2MiB\"\n"
        ));
        assert_eq!(
            err,
            "cache.max_entry_bytes: must not exceed cache.max_bytes (1048576)"
        );
        let err = error(&format!("{MINIMAL}[log]\nformat = \"xml\"\n"));
        assert_eq!(err, "log.format: must be \"human\" or \"json\"");
    }

    #[test]
    fn unset_entry_limit_follows_a_small_cache_down() {
        let c = load(&format!("{MINIMAL}[cache]\nmax_bytes = \"512KiB\"\n")).unwrap();
        assert_eq!(c.cache.max_entry_bytes, 512 * 1024);
        let c = load(&format!(
            "{MINIMAL}[cache]\nmax_bytes = 0\nmax_entry_bytes = \"8MiB\"\n"
        ))
        .unwrap();
        assert_eq!((c.cache.max_bytes, c.cache.max_entry_bytes), (0, 8 << 20));
    }

    #[test]
    fn env_overrides_a_top_level_key() {
        let c = load_env(MINIMAL, &[("ARTIFACT_GATEWAY_LISTEN", "0.0.0.0:80")]).unwrap();
        assert_eq!(c.listen, "0.0.0.0:80".parse().unwrap());
    }

    #[test]
    fn env_overrides_a_nested_string_without_a_file_entry() {
        let c = load_env(
            "",
            &[("ARTIFACT_GATEWAY_UPSTREAM__URL", "http://jobs:3000")],
        )
        .unwrap();
        assert_eq!(c.upstream.url.authority(), "jobs:3000");
        let c = load_env(
            MINIMAL,
            &[("ARTIFACT_GATEWAY_storage__archive_KEY", "{job_id}.zip")],
        )
        .unwrap();
        assert_eq!(c.storage.archive_key.as_str(), "{job_id}.zip");
    }

    #[test]
    fn env_overrides_a_nested_integer_and_wins_over_the_file() {
        let text = format!("{MINIMAL}[cache]\nmax_bytes = \"64MiB\"\n");
        let c = load_env(&text, &[("ARTIFACT_GATEWAY_CACHE__MAX_BYTES", "1048576")]).unwrap();
        assert_eq!(c.cache.max_bytes, 1 << 20);
        let c = load_env(MINIMAL, &[("ARTIFACT_GATEWAY_CACHE__TTL", "90")]).unwrap();
        assert_eq!(c.cache.ttl, Duration::from_secs(90));
    }

    #[test]
    fn env_overrides_an_array() {
        let env = [(
            "ARTIFACT_GATEWAY_UPSTREAM__REWRITE_BASES",
            r#"["https://a", "http://b/x"]"#,
        )];
        let c = load_env(MINIMAL, &env).unwrap();
        assert_eq!(
            c.upstream.rewrite_bases,
            [base("https://a"), base("http://b/x")]
        );
        let err = error_env(
            MINIMAL,
            &[("ARTIFACT_GATEWAY_UPSTREAM__REWRITE_BASES", "[https://a]")],
        );
        assert!(
            err.starts_with("ARTIFACT_GATEWAY_UPSTREAM__REWRITE_BASES: not a TOML array"),
            "{err}"
        );
    }

    #[test]
    fn env_naming_an_unknown_key_is_an_error_naming_the_variable() {
        let err = error_env(MINIMAL, &[("ARTIFACT_GATEWAY_UPSTREM__URL", "http://x")]);
        assert_eq!(
            err,
            "ARTIFACT_GATEWAY_UPSTREM__URL: unknown key upstrem.url"
        );
        let err = error_env(MINIMAL, &[("ARTIFACT_GATEWAY_UPSTREAM__TIMEOUT", "5s")]);
        assert_eq!(
            err,
            "ARTIFACT_GATEWAY_UPSTREAM__TIMEOUT: unknown key upstream.timeout"
        );
        let err = error_env(MINIMAL, &[("ARTIFACT_GATEWAY_CACHE_TTL", "5s")]);
        assert_eq!(err, "ARTIFACT_GATEWAY_CACHE_TTL: unknown key cache_ttl");
        let err = error_env(MINIMAL, &[("ARTIFACT_GATEWAY_LISTEN__PORT", "1")]);
        assert_eq!(
            err,
            "ARTIFACT_GATEWAY_LISTEN__PORT: unknown key listen.port"
        );
        let text = format!("listen = \"0.0.0.0:1\"\n{MINIMAL}");
        let err = error_env(&text, &[("ARTIFACT_GATEWAY_LISTEN__PORT", "1")]);
        assert_eq!(
            err,
            "ARTIFACT_GATEWAY_LISTEN__PORT: cannot set listen.port: listen is not a section"
        );
        let err = error_env(MINIMAL, &[("ARTIFACT_GATEWAY_", "1")]);
        assert!(
            err.starts_with("ARTIFACT_GATEWAY_: not a configuration key"),
            "{err}"
        );
    }

    #[test]
    fn env_errors_name_the_variable_that_set_the_value() {
        let err = error_env(MINIMAL, &[("ARTIFACT_GATEWAY_CACHE__TTL", "soon")]);
        assert!(err.starts_with("cache.ttl: invalid duration"), "{err}");
        assert!(
            err.ends_with("(set by ARTIFACT_GATEWAY_CACHE__TTL)"),
            "{err}"
        );
        let err = error_env(MINIMAL, &[("ARTIFACT_GATEWAY_UPSTREAM", "x")]);
        assert!(
            err.starts_with("ARTIFACT_GATEWAY_UPSTREAM: upstream is a section"),
            "{err}"
        );
        let env = [
            ("ARTIFACT_GATEWAY_LISTEN", "0.0.0.0:1"),
            ("ARTIFACT_GATEWAY_listen", "0.0.0.0:2"),
        ];
        let err = error_env(MINIMAL, &env);
        assert_eq!(
            err,
            "ARTIFACT_GATEWAY_listen: listen is also set by ARTIFACT_GATEWAY_LISTEN"
        );
    }

    #[test]
    fn env_without_the_prefix_is_ignored() {
        let env = [
            ("PATH", "/bin"),
            ("artifact_gateway_listen", "nonsense"),
            ("ARTIFACT_GATEWAYLISTEN", "x"),
        ];
        assert!(load_env(MINIMAL, &env).is_ok());
    }

    #[test]
    fn env_value_types() {
        let v = |s: &str| env_value("V", s).unwrap();
        assert_eq!(v("42"), toml::Value::Integer(42));
        assert_eq!(v("true"), toml::Value::Boolean(true));
        assert_eq!(v("1.5"), toml::Value::Float(1.5));
        assert_eq!(
            v("0.0.0.0:8080"),
            toml::Value::String("0.0.0.0:8080".into())
        );
        assert_eq!(v("\"quoted\""), toml::Value::String("\"quoted\"".into()));
        assert_eq!(
            v("1\nlisten = 2"),
            toml::Value::String("1\nlisten = 2".into())
        );
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        assert_eq!(parse_duration(" 0s "), Ok(Duration::ZERO));
        for bad in [
            "",
            "s",
            "-1s",
            "1.5s",
            "10 s",
            "10sec",
            "1d",
            "ms10",
            "99999999999999999999s",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
        assert!(parse_duration("8761h").unwrap_err().contains("too long"));
        assert!(parse_duration("18446744073709551615h").is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1024"), Ok(1024));
        assert_eq!(parse_size("10B"), Ok(10));
        assert_eq!(parse_size("16KiB"), Ok(16 * 1024));
        assert_eq!(parse_size("64 MiB"), Ok(64 << 20));
        assert_eq!(parse_size("2gib"), Ok(2 << 30));
        for bad in [
            "",
            "MiB",
            "1.5MiB",
            "-1",
            "64MB",
            "64KB",
            "1 TiB",
            "18446744073709551615GiB",
        ] {
            assert!(parse_size(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn key_templates() {
        let t = KeyTemplate::parse("a/{project_id}-{job_id}/{job_id}.zip").unwrap();
        assert_eq!(t.render(1, 23), "a/1-23/23.zip");
        assert_eq!(t.as_str(), "a/{project_id}-{job_id}/{job_id}.zip");
        assert_eq!(KeyTemplate::parse("{job_id}").unwrap().render(1, 2), "2");
        let err = |s: &str| KeyTemplate::parse(s).unwrap_err();
        assert!(err("{project_id}/log").contains("{job_id}"));
        assert!(err("{job}/{job_id}").contains("unknown placeholder {job}"));
        assert!(err("{job_id").contains("unbalanced '{'"));
        assert!(err("{job_id}}").contains("unbalanced '}'"));
        assert!(err("{{job_id}}").contains("unbalanced '{'"));
        assert!(err("/{job_id}").contains("must not start with '/'"));
        assert!(err("a/../{job_id}").contains("'..'"));
        assert!(err("a//{job_id}").contains("empty"));
        assert!(err("{job_id}/").contains("empty"));
    }

    #[test]
    fn base_urls() {
        let u = base("http://127.0.0.1:3000");
        assert_eq!(
            (u.scheme(), u.authority(), u.path_prefix()),
            ("http", "127.0.0.1:3000", "")
        );
        assert_eq!(u.to_string(), "http://127.0.0.1:3000");
        let u = base("HTTPS://h/gitlab//");
        assert_eq!(
            (u.scheme(), u.authority(), u.path_prefix()),
            ("https", "h", "/gitlab")
        );
        assert_eq!(u.as_str(), "https://h/gitlab");
        assert_eq!(
            "http://[::1]:80/".parse::<BaseUrl>().unwrap().authority(),
            "[::1]:80"
        );
        for bad in [
            "",
            "h:80",
            "/path",
            "ftp://h",
            "http://",
            "http:///x",
            "http://h:99999",
            "http://h:",
            "http://a b",
        ] {
            assert!(BaseUrl::parse(bad).is_err(), "{bad:?}");
        }
        assert!(BaseUrl::parse("https://h/#x")
            .unwrap_err()
            .contains("query or fragment"));
        assert!(BaseUrl::parse("https://user:pw@h")
            .unwrap_err()
            .contains("credentials"));
    }

    #[test]
    fn load_reports_the_unreadable_path() {
        let path = Path::new("/nonexistent/artifact-gateway.toml");
        let err = Config::load(path).unwrap_err();
        assert!(matches!(err, ConfigError::Read { .. }), "{err}");
        assert!(err
            .to_string()
            .starts_with("cannot read /nonexistent/artifact-gateway.toml: "));
    }
}
