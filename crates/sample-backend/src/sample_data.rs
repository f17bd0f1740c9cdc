//! The demo dataset behind [`BackendBuilder::sample_data`]: two users (`demo` also with the
//! browser session `demo-session`), an admin `root`/`root-token`, a public and a private
//! project, and jobs that exercise every status the gateway cares about.
//!
//! Each finished job's log is the text the demo stores as its `job.log` (the demo writes
//! these very strings), and each archive's size is that of the demo's archive.
//!
//! | job | project | name | ref | status | pipeline | archive |
//! |-----|---------|------|-----|--------|----------|---------|
//! | 101 | 1 demo/app | build | main | success | 11 | yes |
//! | 102 | 1 | test | main | failed | 11 | no |
//! | 103 | 1 | build | feature/login | success | 12 | yes |
//! | 104 | 1 | build | main | success | 13 | yes (newest successful build on main) |
//! | 105 | 1 | deploy | main | manual | 13 | no |
//! | 106 | 1 | build | main | running | 13 | no (job token `job-token-106` is live) |
//! | 107 | 1 | build | main | failed | 13 | no (newer than 104, so "latest successful" is not "latest") |
//! | 201 | 2 demo/secret | build | main | success | 21 | yes |

use super::{BackendBuilder, JobSpec, JobStatus, Visibility};

/// The byte lengths of the archives the demo stores for jobs 101, 103, 104 and 201
/// (`src/demo/job-*.zip` in the gateway's crate, which `artifact-gateway sample-data` writes),
/// so that the job JSON's `artifacts_file.size` is the size a download has. That crate's
/// `tests/newcomer/` checks them against the files.
const ARCHIVE_SIZES: [u64; 4] = [1_104, 1_111, 1_106, 1_105];

pub(super) fn builder() -> BackendBuilder {
    use JobStatus::{Failed, Manual, Running, Success};
    let job = |id, project, name, ref_name, status, pipeline| {
        JobSpec::new(id, project, name, ref_name, status).pipeline(pipeline)
    };
    // Long enough (about 600 bytes) for the demo's `Range: bytes=100-` to show something.
    let log = |id: u64, outcome: &str| {
        let steps: String = (1..=20)
            .map(|i| format!("[job {id}] step {i}: ok\n"))
            .collect();
        format!("Running with sample-runner\nExecuting job {id}...\n{steps}{outcome}\n")
    };
    BackendBuilder::new()
        .user("demo", "demo-token")
        .user("outsider", "outsider-token")
        .admin("root", "root-token")
        .session("demo-session", "demo")
        .project(1, "demo/app", Visibility::Public, &["demo"])
        .project(2, "demo/secret", Visibility::Private, &["demo"])
        .job(
            job(101, 1, "build", "main", Success, 11)
                .stage("build")
                .with_archive(ARCHIVE_SIZES[0])
                .trace(&log(101, "Job succeeded")),
        )
        .job(
            job(102, 1, "test", "main", Failed, 11)
                .trace(&log(102, "ERROR: Job failed: exit code 1")),
        )
        .job(
            job(103, 1, "build", "feature/login", Success, 12)
                .stage("build")
                .with_archive(ARCHIVE_SIZES[1])
                .trace(&log(103, "Job succeeded")),
        )
        .job(
            job(104, 1, "build", "main", Success, 13)
                .stage("build")
                .with_archive(ARCHIVE_SIZES[2])
                .trace(&log(104, "Job succeeded")),
        )
        .job(
            job(105, 1, "deploy", "main", Manual, 13)
                .stage("deploy")
                .no_trace(),
        )
        .job(
            job(106, 1, "build", "main", Running, 13)
                .stage("build")
                .trace("Running build...\n"),
        )
        .job(
            job(107, 1, "build", "main", Failed, 13)
                .stage("build")
                .trace(&log(107, "ERROR: Job failed: exit code 2")),
        )
        .job(
            job(201, 2, "build", "main", Success, 21)
                .stage("build")
                .with_archive(ARCHIVE_SIZES[3])
                .trace(&log(201, "Job succeeded")),
        )
}

impl JobSpec {
    /// Set the job's stage (sample data only; tests can set `stage` directly).
    fn stage(mut self, stage: &str) -> Self {
        self.stage = stage.to_owned();
        self
    }

    /// A job that never started has no log.
    fn no_trace(mut self) -> Self {
        self.has_trace = false;
        self
    }
}
