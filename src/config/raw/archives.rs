//! Validation of the sections about archives: `[storage]` (where they are), `[artifacts]`
//! (which source finds them) and `[zip]` (how they are read).

use super::*;

impl RawStorage {
    pub(super) fn validate(self) -> Result<StorageConfig, ConfigError> {
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
            open_files: match self.open_files.unwrap_or(d.open_files) {
                n if n <= MAX_OPEN_FILES => n,
                _ => {
                    return Err(invalid(
                        "storage.open_files",
                        "must be at most 65536 (each is a file descriptor)",
                    ))
                }
            },
        })
    }
}

impl RawArtifacts {
    pub(super) fn validate(self) -> Result<ArtifactsConfig, ConfigError> {
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

impl RawZip {
    pub(super) fn validate(self) -> Result<ZipConfig, ConfigError> {
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
        let hot_entry_cache_bytes = self
            .hot_entry_cache_bytes
            .map_or(d.hot_entry_cache_bytes, |v| v.0);
        if hot_entry_cache_bytes != 0 && hot_entry_cache_bytes < 64 * 1024 {
            return Err(invalid(
                "zip.hot_entry_cache_bytes",
                "must be 0 or at least 64KiB (one entry's largest size)",
            ));
        }
        let max_part_entries = self.max_part_entries.unwrap_or(d.max_part_entries);
        if !(1..=u64::from(u32::MAX)).contains(&max_part_entries) {
            return Err(invalid(
                "zip.max_part_entries",
                "must be between 1 and 4294967295",
            ));
        }
        Ok(ZipConfig {
            index_cache_bytes: self.index_cache_bytes.map_or(d.index_cache_bytes, |v| v.0),
            index_ttl: nonzero("zip.index_ttl", self.index_ttl, d.index_ttl)?,
            tail_bytes,
            max_entries,
            max_directory_bytes,
            max_decoder_memory,
            memory_budget,
            hot_entry_cache_bytes,
            max_part_entries,
        })
    }
}
