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
//! validation, `env` the environment overrides, `values` the value types (durations, sizes,
//! [`KeyTemplate`], [`BaseUrl`]), and `error` the [`ConfigError`] they all return.

mod env;
mod error;
mod raw;
mod values;

#[cfg(test)]
mod tests;

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::Path;
use std::time::Duration;

pub use error::ConfigError;
pub use values::{BaseUrl, KeyTemplate};

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
    /// Also closes idle HTTP/1.1 keep-alive connections: hyper runs this timer while it
    /// waits for the next request head.
    pub header_read_timeout: Duration,
    /// Largest request head accepted (431 past it); hyper refuses at twice this by itself.
    pub max_header_bytes: usize,
    /// On shutdown, how long in-flight requests may finish before connections are closed.
    pub shutdown_grace: Duration,
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
