//! What the configuration is when a key is not given: each section's defaults, and the
//! `Debug` of `[storage]` that names which secrets are set without showing them.

use std::fmt;

use super::*;

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
            max_connections: 10_000,
            max_streams: 10_000,
            max_streams_per_connection: 128,
            stall_timeout: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(75),
            trusted_proxies: Vec::new(),
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
            endpoint: None,
            region: None,
            access_key_id: None,
            secret_access_key: None,
            session_token: None,
            allow_http: false,
            virtual_hosted_style: false,
            connect_timeout: Duration::from_secs(5),
            read_timeout: Duration::from_secs(30),
            options: BTreeMap::new(),
            redirect_downloads: false,
            presign_ttl: Duration::from_secs(5 * 60),
            ca_file: None,
            open_files: 256,
        }
    }
}

impl fmt::Debug for StorageConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Destructured, so that a new field cannot be left out of the output unnoticed.
        let StorageConfig {
            url,
            archive_key,
            trace_key,
            endpoint,
            region,
            access_key_id,
            secret_access_key,
            session_token,
            allow_http,
            virtual_hosted_style,
            connect_timeout,
            read_timeout,
            options,
            redirect_downloads,
            presign_ttl,
            ca_file,
            open_files,
        } = self;
        // Option values may be credentials (`azure_storage_access_key`, …): keys only.
        let redacted = Secret::new("");
        let options: BTreeMap<&str, &Secret> =
            options.keys().map(|k| (k.as_str(), &redacted)).collect();
        f.debug_struct("StorageConfig")
            .field("url", url)
            .field("archive_key", archive_key)
            .field("trace_key", trace_key)
            .field("endpoint", endpoint)
            .field("region", region)
            .field("access_key_id", access_key_id)
            .field("secret_access_key", secret_access_key)
            .field("session_token", session_token)
            .field("allow_http", allow_http)
            .field("virtual_hosted_style", virtual_hosted_style)
            .field("connect_timeout", connect_timeout)
            .field("read_timeout", read_timeout)
            .field("options", &options)
            .field("redirect_downloads", redirect_downloads)
            .field("presign_ttl", presign_ttl)
            .field("ca_file", ca_file)
            .field("open_files", open_files)
            .finish()
    }
}

impl Default for ZipConfig {
    fn default() -> Self {
        ZipConfig {
            index_cache_bytes: 256 * MIB,
            index_ttl: Duration::from_secs(600),
            tail_bytes: 128 * KIB,
            max_entries: 1_000_000,
            max_directory_bytes: 256 * MIB,
            // xz -9 and 7-Zip's ultra level use 64 MiB dictionaries; zstd --ultra -22 (128
            // MiB) is refused.
            max_decoder_memory: 64 * MIB,
            // One open of a maximal directory (256 MiB, 1.2 times that to parse) beside
            // three decoders at the cap, or about 1,600 deflate streams.
            memory_budget: 512 * MIB,
            hot_entry_cache_bytes: 8 * MIB,
            max_part_entries: 100_000,
        }
    }
}

impl Default for ArtifactsConfig {
    fn default() -> Self {
        ArtifactsConfig {
            source: ArtifactSource::Storage,
            by_ref_max_pages: 10,
            by_ref_ttl: Duration::from_secs(10),
            redirect: false,
            allowed_hosts: Vec::new(),
        }
    }
}

pub(super) fn upstream_defaults(url: BaseUrl) -> UpstreamConfig {
    UpstreamConfig {
        url,
        connect_timeout: Duration::from_secs(5),
        response_timeout: Duration::from_secs(30),
        pool_idle_timeout: Duration::from_secs(90),
        pool_max_idle_per_host: 64,
        rewrite_bases: Vec::new(),
        ca_file: None,
    }
}
