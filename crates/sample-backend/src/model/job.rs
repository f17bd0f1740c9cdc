//! The public job data: a project's [`Visibility`], a job's [`JobStatus`] and the
//! [`JobSpec`] tests build jobs from and read them back as.

use serde::Serialize;

/// Whether anonymous callers and non-members may read a project.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visibility {
    Public,
    Private,
}

/// A job's status, serialised lowercase as GitLab does. These are also the values the
/// list endpoints accept in `scope`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    Created,
    Pending,
    Running,
    Success,
    Failed,
    Canceled,
    Skipped,
    Manual,
}

impl JobStatus {
    /// Every status, in the order GitLab's documentation lists scopes.
    pub const ALL: [JobStatus; 8] = [
        JobStatus::Created,
        JobStatus::Pending,
        JobStatus::Running,
        JobStatus::Failed,
        JobStatus::Success,
        JobStatus::Canceled,
        JobStatus::Skipped,
        JobStatus::Manual,
    ];

    /// The lowercase name GitLab uses in JSON and in `scope`.
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Created => "created",
            JobStatus::Pending => "pending",
            JobStatus::Running => "running",
            JobStatus::Success => "success",
            JobStatus::Failed => "failed",
            JobStatus::Canceled => "canceled",
            JobStatus::Skipped => "skipped",
            JobStatus::Manual => "manual",
        }
    }

    /// The status named `s` (exact, lowercase), if any.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == s)
    }

    /// Success, failed or canceled: the job ran to an end and may be erased.
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            JobStatus::Success | JobStatus::Failed | JobStatus::Canceled
        )
    }
}

/// One job as the backend knows it. Tests build these with [`JobSpec::new`] and the
/// chained setters, and read them back with `SampleBackend::job`.
#[derive(Debug, Clone)]
pub struct JobSpec {
    pub id: u64,
    pub project_id: u64,
    pub pipeline_id: u64,
    pub name: String,
    pub ref_name: String,
    pub status: JobStatus,
    pub stage: String,
    pub has_archive: bool,
    pub archive_size: u64,
    pub has_trace: bool,
    /// The live log text served by `GET .../jobs/:job_id/trace`.
    pub trace: String,
    pub tag: bool,
    /// The archive has expired: GitLab's archive routes answer 404 (the JSON still lists it).
    pub archive_expired: bool,
}

impl JobSpec {
    /// A job in its own pipeline (`pipeline_id = id`), stage "test", no archive, and an
    /// empty trace.
    pub fn new(id: u64, project_id: u64, name: &str, ref_name: &str, status: JobStatus) -> Self {
        JobSpec {
            id,
            project_id,
            pipeline_id: id,
            name: name.to_owned(),
            ref_name: ref_name.to_owned(),
            status,
            stage: "test".to_owned(),
            has_archive: false,
            archive_size: 0,
            has_trace: true,
            trace: String::new(),
            tag: false,
            archive_expired: false,
        }
    }

    /// Give the job an artifacts archive of `size` bytes.
    pub fn with_archive(mut self, size: u64) -> Self {
        self.has_archive = true;
        self.archive_size = size;
        self
    }

    /// Put the job in pipeline `pipeline_id`.
    pub fn pipeline(mut self, pipeline_id: u64) -> Self {
        self.pipeline_id = pipeline_id;
        self
    }

    /// Set the job's log text (and mark it as having a trace).
    pub fn trace(mut self, text: &str) -> Self {
        self.has_trace = true;
        self.trace = text.to_owned();
        self
    }
}
