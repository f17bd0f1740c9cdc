//! The endpoints the gateway answers itself, with bytes it reads: the archive of a job, the
//! archive of the latest successful job of a name on a ref, one file out of an archive
//! ([`entry`]), and a finished job's log.
//!
//! Each one first asks its [`source`] where the bytes are, as the caller (which is where
//! the caller is authorised: the backend's refusal is the answer), then streams them from
//! there with ranges and conditional requests ([`object`]), presented as GitLab does
//! ([`content`]). In upstream mode the job log is the backend's answer instead, with
//! `Range` and `HEAD` added ([`trace`]). Beyond GitLab's routes, an archive can be listed
//! ([`tree`]), a part of it downloaded as a zip ([`part`]), and expiring links handed out
//! for it or one of its files ([`links`]).

pub mod content;
pub mod entry;
pub mod links;
pub mod object;
pub mod part;
mod sized;
pub mod source;
pub mod trace;
pub mod tree;

use std::sync::Arc;

use http::request::Parts;
use http::{HeaderValue, Response};

use crate::archive::budget::MemoryBudget;
use crate::archive::cache::ArchiveCache;
use crate::archive::hot::HotEntries;
use crate::archive::index::IndexLimits;
use crate::config::{Config, LinksConfig};
use crate::error::{GatewayError, Stop};
use crate::http_util::body::Body;
use crate::metrics::{Metrics, ReadKind};
use crate::request::route::{JobRef, ProjectRef};
use crate::storage::{Storage, StorageError};
use crate::upstream::jobs::Jobs;
use object::Presentation;
use source::Source;

/// How an archive, whole or a part of it, is named to the client.
const ARCHIVE_DISPOSITION: &str =
    "attachment; filename=\"artifacts.zip\"; filename*=UTF-8''artifacts.zip";

const ARCHIVE: Presentation = Presentation {
    kind: ReadKind::Archive,
    content_type: "application/zip",
    disposition: Some(ARCHIVE_DISPOSITION),
};

const TRACE: Presentation = Presentation {
    kind: ReadKind::Trace,
    content_type: "text/plain; charset=utf-8",
    disposition: None,
};

/// What a byte endpoint did: answered, or left the request to the backend (a live log).
pub enum Served {
    Response(Response<Body>),
    Forward,
}

/// The byte endpoints and what they read through: the archive source, storage, and the
/// cache of open archives.
pub struct Artifacts {
    pub source: Source,
    /// Shared with the bodies that read on after the handler returned (parts of archives).
    pub storage: Arc<Storage>,
    pub archives: ArchiveCache,
    /// Hot small entries, decoded (`zip.hot_entry_cache_bytes`).
    pub hot: HotEntries,
    /// `zip.max_part_entries`.
    pub max_part_entries: u64,
    /// `[links]`, and its keys when there are any.
    pub links: LinksConfig,
    pub link_keys: Option<links::LinkKeys>,
    pub metrics: Arc<Metrics>,
}

impl Artifacts {
    pub fn new(config: &Config, storage: Storage, metrics: &Arc<Metrics>) -> Self {
        let zip = &config.zip;
        let archives = ArchiveCache::new(
            zip.index_cache_bytes,
            zip.index_ttl,
            zip.tail_bytes,
            IndexLimits {
                max_entries: zip.max_entries,
                max_directory_bytes: zip.max_directory_bytes,
            },
            Arc::clone(metrics),
        )
        .with_budget(MemoryBudget::new(
            zip.memory_budget,
            zip.max_decoder_memory,
            Arc::clone(metrics),
        ));
        Self {
            source: Source::new(config, Arc::clone(metrics)),
            storage: Arc::new(storage),
            archives,
            hot: HotEntries::new(zip.hot_entry_cache_bytes, metrics),
            max_part_entries: zip.max_part_entries,
            links: config.links.clone(),
            link_keys: links::LinkKeys::new(&config.links),
            metrics: Arc::clone(metrics),
        }
    }

    /// `GET|HEAD /projects/:id/jobs/:job_id/artifacts` and
    /// `/projects/:id/jobs/artifacts/:ref_name/download?job=NAME`
    pub async fn archive(
        &self,
        jobs: &Jobs<'_>,
        parts: &Parts,
        job: JobRef<'_>,
    ) -> Result<Response<Body>, Stop> {
        self.archive_at(parts, |again| {
            self.source.archive(&self.storage, jobs, job, again)
        })
        .await
    }

    /// The archive `locate(again)` names, as a download.
    pub(crate) async fn archive_at<L>(
        &self,
        parts: &Parts,
        mut locate: impl FnMut(bool) -> L,
    ) -> Result<Response<Body>, Stop>
    where
        L: std::future::Future<Output = Result<source::ArchiveAt, Stop>>,
    {
        // A located URL that storage refuses (expired) is located once more.
        for again in [false, true] {
            let at = locate(again).await?;
            if parts.method == http::Method::GET {
                if let Some(redirect) = at.redirect.filter(|_| self.source.redirects()) {
                    return Ok(object::redirect(redirect));
                }
                if let Some(url) = self.storage.presigned_url(&at.location).await {
                    let url = HeaderValue::from_str(&url?).map_err(|_| {
                        GatewayError::Internal("presigned URL is not a header value".into())
                    })?;
                    return Ok(object::redirect(url));
                }
            }
            let served = object::serve(
                &self.storage,
                &at.location,
                &parts.method,
                &parts.headers,
                &ARCHIVE,
            )
            .await;
            match served {
                Err(StorageError::Expired) if !again => continue,
                Ok(Some(response)) => return Ok(response),
                Ok(None) => return Err(GatewayError::NotFound("404 Not Found").into()),
                Err(error) => return Err(error.into()),
            }
        }
        Err(StorageError::Expired.into())
    }

    /// `GET|HEAD /projects/:id/jobs/:job_id/trace` in storage mode: a finished job's log
    /// from storage; a running job's live log, or a log missing from storage, from the
    /// backend.
    pub async fn trace(
        &self,
        jobs: &Jobs<'_>,
        parts: &Parts,
        project: &ProjectRef,
        job_id: u64,
    ) -> Result<Served, Stop> {
        let source = &self.source;
        let Some(path) = source
            .finished_trace(&self.storage, jobs, project, job_id)
            .await?
        else {
            return Ok(Served::Forward);
        };
        let served =
            object::serve(&self.storage, &path, &parts.method, &parts.headers, &TRACE).await?;
        Ok(served.map_or(Served::Forward, Served::Response))
    }
}
