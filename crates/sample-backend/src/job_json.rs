//! The job JSON GitLab's Jobs API returns, built from a job's [`State`].
//!
//! Field set and nullability follow GitLab: `artifacts_file` is absent (not null) without
//! an archive; `started_at`/`finished_at`/`duration` are null where the job has not
//! started or finished; times are fixed strings derived from the job id so output is
//! stable across runs.

use serde::Serialize;

use super::model::{JobStatus, State};

impl State {
    /// The pipeline's overall status, composed from its jobs the way GitLab does, simplified.
    pub(super) fn pipeline_status(&self, project_id: u64, pipeline_id: u64) -> JobStatus {
        let statuses: Vec<JobStatus> = self
            .list_jobs(project_id, Some(pipeline_id), &[])
            .iter()
            .map(|r| r.spec.status)
            .collect();
        let any = |s: &[JobStatus]| statuses.iter().any(|x| s.contains(x));
        if any(&[JobStatus::Running, JobStatus::Pending, JobStatus::Created]) {
            JobStatus::Running
        } else if any(&[JobStatus::Failed]) {
            JobStatus::Failed
        } else if any(&[JobStatus::Canceled]) {
            JobStatus::Canceled
        } else if any(&[JobStatus::Manual]) {
            JobStatus::Manual
        } else {
            JobStatus::Success
        }
    }

    /// GitLab's JSON for job `id`. Panics if there is no such job: callers looked it up.
    pub(super) fn job_json(&self, id: u64) -> JobJson {
        let record = &self.jobs[&id];
        let spec = &record.spec;
        let project_path = self
            .projects
            .iter()
            .find(|p| p.id == spec.project_id)
            .map_or("unknown/project", |p| p.path.as_str());
        let started = matches!(
            spec.status,
            JobStatus::Running | JobStatus::Success | JobStatus::Failed | JobStatus::Canceled
        );
        let finished = spec.status.is_finished();
        let mut artifacts = Vec::new();
        if spec.has_archive {
            artifacts.push(ArtifactJson {
                file_type: "archive",
                size: spec.archive_size,
                filename: "artifacts.zip",
                file_format: Some("zip"),
            });
        }
        if spec.has_trace {
            artifacts.push(ArtifactJson {
                file_type: "trace",
                size: spec.trace.len() as u64,
                filename: "job.log",
                file_format: None,
            });
        }
        JobJson {
            id: spec.id,
            name: spec.name.clone(),
            status: spec.status,
            stage: spec.stage.clone(),
            ref_name: spec.ref_name.clone(),
            tag: spec.tag,
            coverage: None,
            allow_failure: false,
            created_at: timestamp(spec.id, 0, 0),
            started_at: started.then(|| timestamp(spec.id, 0, 5)),
            finished_at: finished.then(|| timestamp(spec.id, 0, 55)),
            duration: match spec.status {
                JobStatus::Running => Some(12.5),
                _ if finished => Some(50.0),
                _ => None,
            },
            erased_at: record.erased.then(|| timestamp(spec.id, 0, 58)),
            artifacts_expire_at: (spec.has_archive && !record.artifacts_kept)
                .then(|| timestamp(spec.id, 1, 55)),
            artifacts_file: spec.has_archive.then_some(ArtifactsFileJson {
                filename: "artifacts.zip",
                size: spec.archive_size,
            }),
            artifacts,
            pipeline: PipelineJson {
                id: spec.pipeline_id,
                project_id: spec.project_id,
                ref_name: spec.ref_name.clone(),
                sha: SAMPLE_COMMIT.id,
                status: self.pipeline_status(spec.project_id, spec.pipeline_id),
            },
            commit: SAMPLE_COMMIT,
            user: SAMPLE_USER,
            runner: None,
            web_url: format!("{}/{}/-/jobs/{}", self.base_url, project_path, spec.id),
            project: ProjectJson {
                ci_job_token_scope_enabled: false,
            },
        }
    }
}

/// A fixed ISO-8601 time derived from the job id: minute `id` of June 2024 (wrapping
/// within 27 days), `month_offset` months later, at second `second`. Stable across runs
/// so tests and demo output do not change.
fn timestamp(id: u64, month_offset: u64, second: u64) -> String {
    let minute_of_month = id % (27 * 24 * 60);
    let day = 1 + minute_of_month / (24 * 60);
    let hour = minute_of_month / 60 % 24;
    let minute = minute_of_month % 60;
    let month = 6 + month_offset;
    format!("2024-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.000Z")
}

/// The job object GitLab's Jobs API returns.
#[derive(Debug, Serialize)]
pub(super) struct JobJson {
    id: u64,
    name: String,
    status: JobStatus,
    stage: String,
    #[serde(rename = "ref")]
    ref_name: String,
    tag: bool,
    coverage: Option<f64>,
    allow_failure: bool,
    created_at: String,
    started_at: Option<String>,
    finished_at: Option<String>,
    duration: Option<f64>,
    erased_at: Option<String>,
    artifacts_expire_at: Option<String>,
    /// GitLab omits the key entirely when the job has no archive.
    #[serde(skip_serializing_if = "Option::is_none")]
    artifacts_file: Option<ArtifactsFileJson>,
    artifacts: Vec<ArtifactJson>,
    pipeline: PipelineJson,
    commit: CommitJson,
    user: UserJson,
    runner: Option<()>,
    web_url: String,
    project: ProjectJson,
}

#[derive(Debug, Serialize)]
struct ArtifactsFileJson {
    filename: &'static str,
    size: u64,
}

#[derive(Debug, Serialize)]
struct ArtifactJson {
    file_type: &'static str,
    size: u64,
    filename: &'static str,
    file_format: Option<&'static str>,
}

#[derive(Debug, Serialize)]
struct PipelineJson {
    id: u64,
    project_id: u64,
    #[serde(rename = "ref")]
    ref_name: String,
    sha: &'static str,
    status: JobStatus,
}

#[derive(Debug, Serialize)]
struct ProjectJson {
    ci_job_token_scope_enabled: bool,
}

#[derive(Debug, Clone, Copy, Serialize)]
struct CommitJson {
    id: &'static str,
    short_id: &'static str,
    title: &'static str,
    message: &'static str,
    author_name: &'static str,
    author_email: &'static str,
    created_at: &'static str,
}

const SAMPLE_COMMIT: CommitJson = CommitJson {
    id: "0ff3ae198f8601a285adcf5c0fff204ee6fba5fd",
    short_id: "0ff3ae19",
    title: "Test the CI integration.",
    message: "Test the CI integration.",
    author_name: "Demo User",
    author_email: "demo@example.com",
    created_at: "2024-06-01T00:00:00.000Z",
};

#[derive(Debug, Clone, Copy, Serialize)]
struct UserJson {
    id: u64,
    username: &'static str,
    name: &'static str,
    state: &'static str,
    avatar_url: Option<&'static str>,
    web_url: &'static str,
    created_at: &'static str,
    bio: Option<&'static str>,
}

const SAMPLE_USER: UserJson = UserJson {
    id: 1,
    username: "demo",
    name: "Demo User",
    state: "active",
    avatar_url: None,
    web_url: "http://127.0.0.1/demo",
    created_at: "2024-01-01T00:00:00.000Z",
    bio: None,
};
