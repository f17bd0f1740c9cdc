//! Hot small entries, decoded, kept in memory: a small file asked for again is answered
//! with no storage read and no decoding.
//!
//! Keyed by the open archive ([`Archive::id`], unique to one open of one object version:
//! its key and ETag) and the entry's local header offset, so a cached entry can only be
//! served from the version it was read from. An archive reopened after its object changed
//! gets a new id; entries of the old one are never looked up again and age out. Only
//! entries that passed their size and CRC-32 check are kept.

use bytes::Bytes;
use prometheus::IntCounter;

use super::cache::Archive;
use super::entry::small::SMALL_ENTRY;
use super::index::EntryInfo;
use crate::metrics::Metrics;

pub struct HotEntries {
    entries: Option<moka::sync::Cache<(u64, u64), Bytes>>,
    /// `hot_entry_cache_events_total`'s hit and miss counters, looked up once.
    hits: IntCounter,
    misses: IntCounter,
}

impl HotEntries {
    /// At most `capacity` bytes of decoded entries (0: none kept).
    pub fn new(capacity: u64, metrics: &Metrics) -> Self {
        let entries = (capacity >= SMALL_ENTRY).then(|| {
            moka::sync::Cache::builder()
                .max_capacity(capacity)
                // The key and the cache's own bookkeeping, beside the bytes.
                .weigher(|_key, bytes: &Bytes| u32::try_from(bytes.len() + 96).unwrap_or(u32::MAX))
                .build()
        });
        Self {
            entries,
            hits: metrics.hot_entries.with_label_values(&["hit"]),
            misses: metrics.hot_entries.with_label_values(&["miss"]),
        }
    }

    pub fn get(&self, archive: &Archive, info: &EntryInfo) -> Option<Bytes> {
        let found = self
            .entries
            .as_ref()?
            .get(&(archive.id, info.local_header_offset));
        match found {
            Some(_) => self.hits.inc(),
            None => self.misses.inc(),
        }
        found
    }

    /// Keep `bytes`, the verified decoded content of `info` in `archive`.
    pub fn insert(&self, archive: &Archive, info: &EntryInfo, bytes: &Bytes) {
        if let Some(entries) = &self.entries {
            entries.insert((archive.id, info.local_header_offset), bytes.clone());
        }
    }
}
