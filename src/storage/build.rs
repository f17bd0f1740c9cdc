//! Building the `object_store` client named by `[storage]`.
//!
//! Two defaults of `object_store` do not fit a download proxy and are changed here: its
//! client timeout covers the whole request including the body (30 s would cut long
//! downloads), so it is replaced by a connect timeout and a read timeout (longest wait for
//! the next bytes); and its retries may run for minutes before a response starts, so they
//! are bounded to a few seconds.

use std::sync::Arc;
use std::time::Duration;

use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
use object_store::local::LocalFileSystem;
use object_store::prefix::PrefixStore;
use object_store::signer::Signer;
use object_store::{BackoffConfig, Certificate, ClientOptions, ObjectStore, RetryConfig};

use crate::config::StorageConfig;

/// A store and, when it can presign URLs, its signer.
pub struct Built {
    pub store: Arc<dyn ObjectStore>,
    pub signer: Option<Arc<dyn Signer>>,
}

pub fn build_store(config: &StorageConfig) -> Result<Built, String> {
    let (scheme, rest) = config
        .url
        .split_once("://")
        .ok_or_else(|| format!("storage.url: {} is not a URL", config.url))?;
    match scheme.to_ascii_lowercase().as_str() {
        "file" => {
            let store = LocalFileSystem::new_with_prefix(rest)
                .map_err(|e| format!("storage.url: cannot use directory {rest}: {e}"))?;
            Ok(Built {
                store: Arc::new(store),
                signer: None,
            })
        }
        "s3" | "s3a" => {
            let mut builder = AmazonS3Builder::from_env()
                .with_url(config.url.clone())
                .with_client_options(client_options(config)?)
                .with_retry(retry())
                .with_allow_http(config.allow_http)
                .with_virtual_hosted_style_request(config.virtual_hosted_style);
            if let Some(endpoint) = &config.endpoint {
                builder = builder.with_endpoint(endpoint);
            }
            if let Some(region) = &config.region {
                builder = builder.with_region(region);
            }
            if let Some(key) = &config.access_key_id {
                builder = builder.with_access_key_id(key);
            }
            if let Some(secret) = &config.secret_access_key {
                builder = builder.with_secret_access_key(secret.expose());
            }
            if let Some(token) = &config.session_token {
                builder = builder.with_token(token.expose());
            }
            for (key, value) in &config.options {
                let key: AmazonS3ConfigKey = key.parse().map_err(|e| option_error(key, e))?;
                builder = builder.with_config(key, value);
            }
            Ok(finish(builder.build().map_err(build_error)?, rest))
        }
        "gs" => {
            let mut builder = GoogleCloudStorageBuilder::from_env()
                .with_url(config.url.clone())
                .with_client_options(client_options(config)?)
                .with_retry(retry());
            for (key, value) in &config.options {
                let key: GoogleConfigKey = key.parse().map_err(|e| option_error(key, e))?;
                builder = builder.with_config(key, value);
            }
            Ok(finish(builder.build().map_err(build_error)?, rest))
        }
        "az" | "abfs" | "abfss" | "azure" => {
            let mut builder = MicrosoftAzureBuilder::from_env()
                .with_url(config.url.clone())
                .with_client_options(client_options(config)?)
                .with_retry(retry())
                .with_allow_http(config.allow_http);
            for (key, value) in &config.options {
                let key: AzureConfigKey = key.parse().map_err(|e| option_error(key, e))?;
                builder = builder.with_config(key, value);
            }
            Ok(finish(builder.build().map_err(build_error)?, rest))
        }
        other => Err(format!(
            "storage.url: scheme {other}:// is not supported (file, s3, gs, az)"
        )),
    }
}

/// Timeouts as above; `storage.ca_file` adds its CAs to the platform's roots.
fn client_options(config: &StorageConfig) -> Result<ClientOptions, String> {
    let mut options = ClientOptions::new()
        .with_connect_timeout(config.connect_timeout)
        .with_read_timeout(config.read_timeout)
        .with_timeout_disabled()
        .with_pool_idle_timeout(Duration::from_secs(60));
    if let Some(path) = &config.ca_file {
        let certs =
            crate::trust::ca_certificates(path).map_err(|e| format!("storage.ca_file: {e}"))?;
        for cert in certs {
            let cert = Certificate::from_der(&cert)
                .map_err(|e| format!("storage.ca_file: {}: {e}", path.display()))?;
            options = options.with_root_certificate(cert);
        }
    }
    Ok(options)
}

/// A failed storage request is retried briefly; a client waiting for its first byte should
/// get a 502/504 in seconds, not minutes.
fn retry() -> RetryConfig {
    RetryConfig {
        backoff: BackoffConfig::default(),
        max_retries: 2,
        retry_timeout: Duration::from_secs(10),
    }
}

/// `bucket/some/prefix` → keys (and presigned URLs) live under `some/prefix`.
fn finish<S: ObjectStore + Signer>(store: S, rest: &str) -> Built {
    let prefix = rest
        .split_once('/')
        .map_or("", |(_, p)| p.trim_matches('/'));
    if prefix.is_empty() {
        let store = Arc::new(store);
        return Built {
            store: store.clone(),
            signer: Some(store),
        };
    }
    let store = Arc::new(PrefixStore::new(store, prefix));
    Built {
        store: store.clone(),
        signer: Some(store),
    }
}

fn option_error(key: &str, error: impl std::fmt::Display) -> String {
    format!("storage.options.{key}: {error}")
}

fn build_error(error: object_store::Error) -> String {
    format!("storage: {error}")
}
