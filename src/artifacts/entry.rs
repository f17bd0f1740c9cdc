//! Single files out of archives: `GET|HEAD /projects/:id/jobs/:job_id/artifacts/*path` and
//! `/projects/:id/jobs/artifacts/:ref/raw/*path?job=NAME`.
//!
//! Round trips to storage: opening a cold archive is one read of its tail (plus one when its
//! central directory starts before the tail); each entry is then one bounded read
//! `[local header, end of entry)` pinned to the archive's ETag, or none when the entry lies
//! in the cached tail. A `304`, a `HEAD` and a directory or missing-name `404` need no read.
//! A ranged request of a stored entry reads just that range (after its local header, when
//! the header is not in the tail); a compressed entry is decoded from its start and the
//! bytes before the range are skipped.
//!
//! Bytes served always come from inside `[local header, next entry)`: a stored entry whose
//! two sizes differ is a 502 before any read, a range is a range of the entry's own bytes,
//! and the local header must agree with the directory (`entry::data_span`). A range of a
//! compressed entry stops decoding once it is served, so a size lie past the range goes
//! unseen there (what is served is still the entry's own bytes, decoded).
//!
//! Small entries (stored or deflated, up to `small::SMALL_ENTRY` both ways) are read whole
//! and decoded in one piece, checked before the first byte (so a bad one is a 502, not an
//! aborted body), and kept as hot entries ([`crate::archive::hot`]): asked again, whole or
//! a range, they cost no storage read until they age out or the archive is reopened.

use std::future::Future;
use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use http::request::Parts;
use http::{Method, Response};

use super::content::{self, FileEndpoint};
use super::sized::{self, Start};
use super::Artifacts;
use crate::archive::cache::{Archive, OpenError};
use crate::archive::entry::{self, small, EntryError, Verified, Window};
use crate::archive::index::{EntryInfo, Method as ZipMethod, ZipError};
use crate::error::{GatewayError, Stop};
use crate::http_util::body::{self, Body};
use crate::request::route::{JobRef, JobSelector};
use crate::storage::{Location, StorageError};
use crate::upstream::jobs::Jobs;

/// What went wrong while answering from an open archive.
pub(super) enum Failure {
    /// The object changed since its index was read: reopen and try once more.
    Changed,
    /// Storage refused the located URL (upstream mode): locate once more.
    Expired,
    Error(GatewayError),
}

impl From<GatewayError> for Failure {
    fn from(error: GatewayError) -> Self {
        Failure::Error(error)
    }
}

impl From<EntryError> for Failure {
    fn from(error: EntryError) -> Self {
        match error {
            EntryError::Storage(StorageError::PreconditionFailed) => Failure::Changed,
            EntryError::Storage(StorageError::Expired) => Failure::Expired,
            other => Failure::Error(other.into()),
        }
    }
}

impl Artifacts {
    /// `GET|HEAD /projects/:id/jobs/:job_id/artifacts/*path` and
    /// `/projects/:id/jobs/artifacts/:ref_name/raw/*path?job=NAME`
    pub async fn entry(
        &self,
        jobs: &Jobs<'_>,
        parts: &Parts,
        job: JobRef<'_>,
        name: &str,
    ) -> Result<Response<Body>, Stop> {
        let endpoint = match job.selector {
            JobSelector::Id(_) => FileEndpoint::ByJob,
            JobSelector::LatestOnRef { .. } => FileEndpoint::RawByRef,
        };
        self.entry_at(
            parts,
            |again| self.caller_archive(jobs, job, again),
            name,
            endpoint,
        )
        .await
    }

    /// File `name` of the archive `locate(again)` names.
    pub(super) async fn entry_at<L>(
        &self,
        parts: &Parts,
        locate: impl FnMut(bool) -> L,
        name: &str,
        endpoint: FileEndpoint,
    ) -> Result<Response<Body>, Stop>
    where
        L: Future<Output = Result<Location, Stop>>,
    {
        self.on_archive(locate, |archive, location| async move {
            self.entry_response(parts, &archive, &location, name, endpoint)
                .await
        })
        .await
    }

    /// Where the archive `job` names is, asked as the caller.
    pub(super) async fn caller_archive(
        &self,
        jobs: &Jobs<'_>,
        job: JobRef<'_>,
        again: bool,
    ) -> Result<Location, Stop> {
        let at = self.source.archive(&self.storage, jobs, job, again).await?;
        Ok(at.location)
    }

    /// `answer` from the open archive `locate(false)` names. A changed object fails the
    /// ETag precondition of a read: the archive is reopened once. A located URL that
    /// storage refuses (expired) is located once more (`locate(true)`).
    pub(super) async fn on_archive<T, L, A>(
        &self,
        mut locate: impl FnMut(bool) -> L,
        mut answer: impl FnMut(Arc<Archive>, Location) -> A,
    ) -> Result<T, Stop>
    where
        L: Future<Output = Result<Location, Stop>>,
        A: Future<Output = Result<T, Failure>>,
    {
        let mut location = locate(false).await?;
        let (mut reopened, mut relocated) = (false, false);
        loop {
            let failure = match self.archives.open(&self.storage, &location).await {
                Ok((archive, _)) => match answer(archive, location.clone()).await {
                    Ok(answered) => return Ok(answered),
                    Err(failure) => failure,
                },
                Err(OpenError::Storage(StorageError::Expired)) => Failure::Expired,
                Err(error) => Failure::Error(error.into()),
            };
            match failure {
                Failure::Changed if !reopened => {
                    reopened = true;
                    tracing::info!(%location, "archive changed since it was indexed; reopening");
                    self.archives.invalidate(&location).await;
                }
                Failure::Changed => {
                    return Err(
                        GatewayError::StorageUnavailable("archive keeps changing".into()).into(),
                    )
                }
                Failure::Expired if !relocated => {
                    relocated = true;
                    location = locate(true).await?;
                }
                Failure::Expired => return Err(StorageError::Expired.into()),
                Failure::Error(error) => return Err(error.into()),
            }
        }
    }

    async fn entry_response(
        &self,
        parts: &Parts,
        archive: &Archive,
        path: &Location,
        name: &str,
        endpoint: FileEndpoint,
    ) -> Result<Response<Body>, Failure> {
        let info = match archive.index.get(name) {
            Some(info) if !name.ends_with('/') => info,
            // Missing, or a directory (explicit `dir/` entry or a prefix of entries).
            _ => return Err(GatewayError::NotFound("404 Not Found").into()),
        };
        entry::check_supported(&info)?;
        let etag = entry_etag(archive.etag.as_deref(), name, &info);
        let size = info.uncompressed_size;
        let selected = match sized::start(&parts.headers, &etag, size)? {
            Start::NotModified(response) => return Ok(response),
            Start::Send(selected) => selected,
        };
        let (content_type, disposition) = content::presentation(name, endpoint);
        let mut response = if parts.method == Method::HEAD {
            Response::new(body::empty())
        } else {
            let stream = self
                .entry_stream(archive, path, name, &info, selected.clone())
                .await?;
            // An entry that fits in one chunk is verified by the time its first chunk is.
            let body = sized::after_first_chunk(stream)
                .await
                .map_err(|error| GatewayError::before_first_byte(&error))?;
            Response::new(body)
        };
        let selected = selected.as_ref();
        sized::describe(
            &mut response,
            &content_type,
            &disposition,
            &etag,
            size,
            selected,
        );
        Ok(response)
    }

    /// The entry's decoded bytes (of `selected` when set), verified when the whole entry is
    /// read.
    async fn entry_stream(
        &self,
        archive: &Archive,
        path: &Location,
        name: &str,
        info: &EntryInfo,
        selected: Option<Range<u64>>,
    ) -> Result<BoxStream<'static, std::io::Result<Bytes>>, Failure> {
        // A range of a stored entry that is not hot reads just that range (below).
        let stored_range = info.method == ZipMethod::Stored && selected.is_some();
        if small::fits(info) {
            let bytes = match self.hot.get(archive, info) {
                Some(bytes) => Some(bytes),
                None if stored_range => None,
                None => Some(self.small_entry(archive, path, name, info).await?),
            };
            if let Some(bytes) = bytes {
                let bytes = match selected {
                    // Within the entry: `range::resolve` bounds it by the declared size.
                    Some(range) => bytes.slice(range.start as usize..range.end as usize),
                    None => bytes,
                };
                return Ok(futures_util::stream::once(async move { Ok(bytes) }).boxed());
            }
        }
        if let (ZipMethod::Stored, Some(range)) = (info.method, &selected) {
            return self.stored_range(archive, path, info, range.clone()).await;
        }
        let raw = self
            .read(archive, path, info.local_header_offset..info.data_end)
            .await?;
        let compressed = entry::compressed(raw, info).await?;
        let decoder = entry::decoder(compressed, info, self.archives.budget()).await?;
        let verified =
            Verified::new(entry::chunks(decoder), info, format!("{path}:{name}")).boxed();
        Ok(match selected {
            Some(range) => Window::new(verified, range).boxed(),
            None => verified,
        })
    }

    /// A small entry whole, decoded and verified, kept as a hot entry: one bounded read
    /// (two for a local header over [`small::first_read`]'s slack), or none when the
    /// cached tail holds it.
    async fn small_entry(
        &self,
        archive: &Archive,
        path: &Location,
        name: &str,
        info: &EntryInfo,
    ) -> Result<Bytes, Failure> {
        let first = small::first_read(info);
        let raw = collect(self.read(archive, path, first.clone()).await?).await?;
        let span = small::stored_span(&raw, info)?;
        let data = if span.end <= first.end {
            let at = |offset: u64| (offset - first.start) as usize;
            raw.slice(at(span.start)..at(span.end))
        } else {
            // A long local header: read the entry's own bytes (`span` is checked to lie in
            // `[local header, data_end)`, and is at most `SMALL_ENTRY` long).
            collect(self.read(archive, path, span).await?).await?
        };
        let bytes = small::decode(data, info, &format!("{path}:{name}"))?;
        self.hot.insert(archive, info, &bytes);
        Ok(bytes)
    }

    /// A range of a stored entry is a range of the object: read just that.
    async fn stored_range(
        &self,
        archive: &Archive,
        path: &Location,
        info: &EntryInfo,
        range: Range<u64>,
    ) -> Result<BoxStream<'static, std::io::Result<Bytes>>, Failure> {
        let header_at = info.local_header_offset..info.local_header_offset + 30;
        let header = match archive.cached_bytes(header_at.clone()) {
            Some(bytes) => bytes,
            None => collect(self.read(archive, path, header_at).await?).await?,
        };
        // Only bytes of the entry: `[data_start, data_start + compressed_size)`, inside
        // `[local header, next entry)`; a stored entry's two sizes are equal
        // (`check_supported`), so a range of the declared size is a range of that span.
        let span = entry::data_span(&header, info)?;
        let bytes = span.start + range.start..span.start + range.end;
        if bytes.end > span.end {
            return Err(EntryError::SizesDoNotFit.into());
        }
        let raw = self.read(archive, path, bytes).await?;
        Ok(raw
            .map(|chunk| chunk.map_err(std::io::Error::other))
            .boxed())
    }

    /// `range` of the archive: from the cached tail, or one read pinned to the ETag.
    async fn read(
        &self,
        archive: &Archive,
        path: &Location,
        range: Range<u64>,
    ) -> Result<BoxStream<'static, Result<Bytes, StorageError>>, Failure> {
        archive
            .read(&self.storage, path, range)
            .await
            .map_err(EntryError::Storage)?
            .ok_or_else(|| GatewayError::BadArchive(ZipError::Truncated.to_string()).into())
    }
}

/// A read's bytes in one buffer; a read of one chunk (the cached tail, a small local read)
/// is not copied.
async fn collect(
    mut stream: BoxStream<'static, Result<Bytes, StorageError>>,
) -> Result<Bytes, Failure> {
    let Some(first) = stream.next().await else {
        return Ok(Bytes::new());
    };
    let first = first.map_err(EntryError::Storage)?;
    let Some(second) = stream.next().await else {
        return Ok(first);
    };
    let mut bytes = Vec::from(first);
    bytes.extend_from_slice(&second.map_err(EntryError::Storage)?);
    while let Some(chunk) = stream.next().await {
        bytes.extend_from_slice(&chunk.map_err(EntryError::Storage)?);
    }
    Ok(Bytes::from(bytes))
}

/// Changes when the archive changes or the entry's content does.
fn entry_etag(archive_etag: Option<&str>, name: &str, info: &EntryInfo) -> String {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(archive_etag.unwrap_or("").as_bytes());
    hasher.update(b"\0");
    hasher.update(name.as_bytes());
    format!(
        "\"{:08x}{:08x}{:x}\"",
        hasher.finalize(),
        info.crc32,
        info.uncompressed_size
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_etags_follow_the_archive_and_the_content() {
        let info = |crc| EntryInfo {
            local_header_offset: 0,
            compressed_size: 1,
            uncompressed_size: 1,
            method: ZipMethod::Stored,
            flags: 0,
            crc32: crc,
            data_end: 31,
        };
        let a = entry_etag(Some("\"v1\""), "a.txt", &info(1));
        assert_eq!(a, entry_etag(Some("\"v1\""), "a.txt", &info(1)));
        assert_ne!(a, entry_etag(Some("\"v2\""), "a.txt", &info(1)));
        assert_ne!(a, entry_etag(Some("\"v1\""), "b.txt", &info(1)));
        assert_ne!(a, entry_etag(Some("\"v1\""), "a.txt", &info(2)));
        assert!(a.starts_with('"') && a.ends_with('"'));
    }
}
