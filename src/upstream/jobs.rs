//! What the gateway asks the jobs backend before it serves bytes, always with the caller's
//! own credentials and through the per-caller metadata cache: the job (which also decides
//! whether the caller may see it), the latest successful job of a name on a ref, and a
//! project's numeric id.
//!
//! A `401`/`403`/`404` (any `4xx`) from the backend is the answer the caller gets, unchanged
//! ([`Stop::Refused`]); a `5xx` is a `502`.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;
use http_body_util::BodyExt;
use moka::future::Cache;
use serde::Deserialize;

use super::cache::{MetadataCache, Scope};
use super::keyed::KeyedGet;
use super::Upstream;
use crate::error::{GatewayError, Stop};
use crate::http_util::body::Body;
use crate::request::context::RequestContext;
use crate::request::credentials::Fingerprint;
use crate::request::route::ProjectRef;

/// Largest job JSON (or page of jobs) the gateway reads to make a decision.
const MAX_JSON_BYTES: usize = 8 * 1024 * 1024;
/// Jobs per page when walking a project's successful jobs (GitLab's maximum).
const PAGE_SIZE: u32 = 100;

/// The fields of GitLab's job JSON the gateway acts on.
#[derive(Debug, Clone, Deserialize)]
pub struct Job {
    pub id: u64,
    #[serde(default)]
    pub name: String,
    #[serde(rename = "ref", default)]
    pub ref_name: String,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub artifacts_file: Option<ArtifactsFile>,
    #[serde(default)]
    pub artifacts: Vec<Artifact>,
    #[serde(default)]
    pub pipeline: Option<Pipeline>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ArtifactsFile {
    #[serde(default)]
    pub filename: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Artifact {
    #[serde(default)]
    pub file_type: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Pipeline {
    #[serde(default)]
    pub project_id: Option<u64>,
}

impl Job {
    /// Whether the job lists an archive. Expiry is the backend's business: GitLab keeps
    /// listing (and serving) an expired archive it locked as the latest of its ref.
    pub fn has_archive(&self) -> bool {
        self.artifacts_file.is_some() || self.artifacts.iter().any(|a| a.file_type == "archive")
    }

    /// Finished jobs have their final log in storage; others are still writing it.
    pub fn is_finished(&self) -> bool {
        matches!(
            self.status.as_str(),
            "success" | "failed" | "canceled" | "skipped"
        )
    }

    pub fn project_id(&self) -> Option<u64> {
        self.pipeline.as_ref()?.project_id
    }
}

/// Per-caller cache of download-by-ref resolutions.
pub struct RefCache {
    entries: Cache<(Fingerprint, ProjectRef, String, String), Arc<Job>>,
}

impl RefCache {
    pub fn new(ttl: Duration) -> Self {
        Self {
            entries: Cache::builder()
                .max_capacity(100_000)
                .time_to_live(ttl)
                .build(),
        }
    }
}

/// The backend as seen by one request.
pub struct Jobs<'a> {
    pub upstream: &'a Upstream,
    pub cache: &'a MetadataCache,
    pub ctx: &'a RequestContext,
}

impl Jobs<'_> {
    /// `GET /projects/:id/jobs/:job_id` as the caller.
    pub async fn job(&self, project: &ProjectRef, job_id: u64) -> Result<Job, Stop> {
        let path = format!(
            "/api/v4/projects/{}/jobs/{job_id}",
            project.to_path_segment()
        );
        let scope = Scope::Job {
            project: project.clone(),
            job_id,
        };
        self.get_json(&path, &[], scope).await
    }

    /// The newest job named `name` on `ref_name` whose status is `success`, walking the
    /// project's successful jobs newest first, at most `max_pages` pages. (GitLab itself
    /// only looks in the latest successful pipeline and answers 404 when that pipeline
    /// lacks the job; users asked for the latest successful job instead.)
    pub async fn latest_successful(
        &self,
        refs: &RefCache,
        project: &ProjectRef,
        ref_name: &str,
        name: &str,
        max_pages: u32,
    ) -> Result<Arc<Job>, Stop> {
        let key = (
            self.ctx.credentials.fingerprint(),
            project.clone(),
            ref_name.to_owned(),
            name.to_owned(),
        );
        let keyable = self.ctx.credentials.unkeyable().is_none();
        if let Some(job) = refs.entries.get(&key).await.filter(|_| keyable) {
            return Ok(job);
        }
        let path = format!("/api/v4/projects/{}/jobs", project.to_path_segment());
        for page in 1..=max_pages {
            let query = [
                ("scope[]", "success".to_owned()),
                ("per_page", PAGE_SIZE.to_string()),
                ("page", page.to_string()),
            ];
            let scope = Scope::JobList {
                project: project.clone(),
            };
            let (jobs, next_page): (Vec<Job>, bool) =
                self.get_json_paged(&path, &query, scope).await?;
            let hit = jobs.into_iter().find(|job| {
                job.name == name && job.ref_name == ref_name && job.status == "success"
            });
            if let Some(job) = hit {
                let job = Arc::new(job);
                if keyable {
                    refs.entries.insert(key, Arc::clone(&job)).await;
                }
                return Ok(job);
            }
            if !next_page {
                break;
            }
        }
        Err(GatewayError::NotFound("404 Not found").into())
    }

    /// The numeric id of a project named by its path: `GET /projects/:id`.
    pub async fn project_id(&self, project: &ProjectRef) -> Result<u64, Stop> {
        if let ProjectRef::Id(id) = project {
            return Ok(*id);
        }
        #[derive(Deserialize)]
        struct Project {
            id: u64,
        }
        let path = format!("/api/v4/projects/{}", project.to_path_segment());
        let scope = Scope::Project {
            project: project.clone(),
        };
        Ok(self.get_json::<Project>(&path, &[], scope).await?.id)
    }

    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
        scope: Scope,
    ) -> Result<T, Stop> {
        Ok(self.get_json_paged(path, query, scope).await?.0)
    }

    /// GET a JSON document as the caller; also says whether `X-Next-Page` names a page.
    async fn get_json_paged<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
        scope: Scope,
    ) -> Result<(T, bool), Stop> {
        let pairs = query
            .iter()
            .map(|(name, value)| ((*name).to_owned(), value.clone()))
            .collect();
        // The caller's identity inputs and forwarding headers, nothing else: the same
        // request, and so the same cache entry, as the caller's own GET of this URL.
        let get = KeyedGet::new(path, pairs, &self.ctx.credentials, [], &self.ctx.forwarding);
        let fetch = || self.upstream.send_keyed(&get);
        let mut response = if self.ctx.credentials.unkeyable().is_some() {
            self.cache.bypass(fetch()).await?
        } else {
            self.cache.get_or_fetch(get.key(scope), fetch).await?.0
        };
        let status = response.status();
        if status.is_client_error() {
            self.upstream
                .prepare_response(response.headers_mut(), self.ctx);
            return Err(Stop::refused(response));
        }
        if status != StatusCode::OK {
            let error = GatewayError::UpstreamUnavailable(format!("GET {path} answered {status}"));
            return Err(error.into());
        }
        let next_page = response
            .headers()
            .get("x-next-page")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| !v.trim().is_empty());
        let bytes = read_json_body(response.into_body()).await?;
        let value = serde_json::from_slice(&bytes).map_err(|e| {
            GatewayError::UpstreamUnavailable(format!("GET {path}: unexpected JSON: {e}"))
        })?;
        Ok((value, next_page))
    }
}

async fn read_json_body(mut body: Body) -> Result<Bytes, GatewayError> {
    let mut buffer = bytes::BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame
            .map_err(|e| GatewayError::UpstreamUnavailable(format!("reading job JSON: {e}")))?;
        if let Ok(data) = frame.into_data() {
            if buffer.len() + data.len() > MAX_JSON_BYTES {
                return Err(GatewayError::UpstreamUnavailable(
                    "job JSON larger than the gateway reads".into(),
                ));
            }
            buffer.extend_from_slice(&data);
        }
    }
    Ok(buffer.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_presence_follows_artifacts_file_or_the_artifacts_list() {
        let job = |json: &str| serde_json::from_str::<Job>(json).unwrap();
        assert!(
            job(r#"{"id":1,"artifacts_file":{"filename":"artifacts.zip","size":3}}"#).has_archive()
        );
        assert!(
            job(r#"{"id":1,"artifacts":[{"file_type":"trace"},{"file_type":"archive"}]}"#)
                .has_archive()
        );
        assert!(
            !job(r#"{"id":1,"artifacts_file":null,"artifacts":[{"file_type":"trace"}]}"#)
                .has_archive()
        );
        assert!(!job(r#"{"id":1}"#).has_archive());
    }

    #[test]
    fn finished_statuses_and_project_id() {
        let job: Job =
            serde_json::from_str(r#"{"id":1,"status":"running","pipeline":{"project_id":5}}"#)
                .unwrap();
        assert!(!job.is_finished());
        assert_eq!(job.project_id(), Some(5));
        for status in ["success", "failed", "canceled", "skipped"] {
            let job: Job =
                serde_json::from_str(&format!(r#"{{"id":1,"status":"{status}"}}"#)).unwrap();
            assert!(job.is_finished(), "{status}");
        }
    }
}
