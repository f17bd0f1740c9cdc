//! What the sample GitLab tests share: the backend's jobs with archives in an S3 store
//! (in redirect or proxy mode), a [`World`] of backend and S3 server to ask, and reading
//! GitLab's messages and redirects.

use std::time::Duration;

use sample_backend::{
    ArtifactStore, BackendBuilder, DownloadMode, JobSpec, JobStatus, SampleBackend, Visibility,
};

use crate::common;
use crate::common::s3::S3Server;

pub(crate) const DEMO: (&str, &str) = ("PRIVATE-TOKEN", common::TOKEN);

/// sha256("1"), the hashed directory of project 1 (computed independently of the code).
pub(crate) const SHA256_OF_1: &str =
    "6b86b273ff34fce19d6b804eff5a3f5747ada4eaa22f1d49c01e52ddb7875b4b";

/// Two private projects of `demo`. Project 1: job 11 (build, main, success, pipeline 100,
/// archive), job 12 (running, pipeline 101, so main's newest pipeline is not successful),
/// job 15 (build, release, success, pipeline 102, archive), job 16 (lint, release, success,
/// pipeline 103: release's newest successful pipeline has no build). Project 2: job 21.
pub(crate) fn backend(store: ArtifactStore) -> BackendBuilder {
    BackendBuilder::new()
        .user("demo", "demo-token")
        .user("outsider", "outsider-token")
        .project(1, "group/app", Visibility::Private, &["demo"])
        .project(2, "group/other", Visibility::Private, &["demo"])
        .job(
            JobSpec::new(11, 1, "build", "main", JobStatus::Success)
                .pipeline(100)
                .with_archive(1000)
                .trace("log of 11\n"),
        )
        .job(JobSpec::new(12, 1, "build", "main", JobStatus::Running).pipeline(101))
        .job(
            JobSpec::new(15, 1, "build", "release", JobStatus::Success)
                .pipeline(102)
                .with_archive(1000),
        )
        .job(JobSpec::new(16, 1, "lint", "release", JobStatus::Success).pipeline(103))
        .job(
            JobSpec::new(21, 2, "build", "main", JobStatus::Success)
                .pipeline(200)
                .with_archive(1000),
        )
        .gitlab_job_token_rules()
        .artifacts_in(store)
}

pub(crate) struct World {
    pub(crate) s3: S3Server,
    pub(crate) backend: SampleBackend,
    pub(crate) client: reqwest::Client,
}

pub(crate) async fn world(mode: DownloadMode, ttl: Option<Duration>) -> World {
    let s3 = S3Server::start("artifacts").await;
    let mut artifacts = s3.artifact_store(mode);
    if let Some(ttl) = ttl {
        artifacts = artifacts.presign_ttl(ttl);
    }
    let backend = backend(artifacts).start().await.expect("backend starts");
    World {
        s3,
        backend,
        client: common::client(),
    }
}

impl World {
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}/api/v4/projects{path}", self.backend.url())
    }

    pub(crate) async fn get(&self, path: &str, headers: &[(&str, &str)]) -> reqwest::Response {
        self.send(reqwest::Method::GET, path, headers).await
    }

    pub(crate) async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        headers: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut request = self.client.request(method, self.url(path));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send().await.expect("backend answers")
    }

    /// Upload `bytes` as job `job`'s archive, where the backend says it lives.
    pub(crate) fn upload(&self, job: u64, bytes: &[u8]) {
        let key = self
            .backend
            .archive_key(job)
            .expect("job has an archive key");
        self.s3.put(&key, bytes);
    }
}

pub(crate) async fn message(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let body = common::json(response).await;
    (
        status,
        body["message"].as_str().unwrap_or_default().to_owned(),
    )
}

pub(crate) fn location(response: &reqwest::Response) -> String {
    common::header(response, "location")
        .expect("a Location")
        .to_owned()
}

pub(crate) fn archive_bytes(tag: &str) -> Vec<u8> {
    format!("PK\u{5}\u{6} archive of {tag} ")
        .repeat(50)
        .into_bytes()
}
