//! `artifact-gateway --demo`: the embedded default a newcomer runs first. It starts the
//! sample jobs backend, lays out sample archives and job logs in a local directory, and
//! builds a configuration pointing at both.
//!
//! With `--source upstream` (`artifacts.source = "upstream"`) the backend runs in its
//! GitLab-faithful mode instead: GitLab's job-token rules, and archives at its hashed
//! `@final` keys under `<storage dir>/objects`, handed out as `302`s to presigned URLs of
//! its own local object store; the job logs are the backend's.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::config::{ArtifactSource, BaseUrl, Config};
use sample_backend::{ArtifactStore, BackendBuilder, DownloadMode, JobStatus, SampleBackend};

/// Sample archives (written by Python's `zipfile`), by job id, all in project 1 but 201.
const ARCHIVES: [(u64, u64, &[u8]); 4] = [
    (1, 101, include_bytes!("job-101.zip")),
    (1, 103, include_bytes!("job-103.zip")),
    (1, 104, include_bytes!("job-104.zip")),
    (2, 201, include_bytes!("job-201.zip")),
];

/// Where upstream mode keeps the backend's objects, under the storage directory.
const OBJECTS_DIR: &str = "objects";

pub struct Demo {
    pub config: Config,
    pub storage_dir: PathBuf,
    /// The storage directory is the demo's own temporary one: removed when the demo ends.
    temporary: bool,
    _backend: SampleBackend,
}

impl Drop for Demo {
    /// Remove the temporary directory (not one given with `--storage-dir`). `main` drops the
    /// demo after SIGINT or SIGTERM, once the gateway has stopped.
    fn drop(&mut self) {
        if self.temporary {
            if let Err(error) = std::fs::remove_dir_all(&self.storage_dir) {
                if error.kind() != std::io::ErrorKind::NotFound {
                    eprintln!(
                        "artifact-gateway: cannot remove the demo directory {}: {error}",
                        self.storage_dir.display()
                    );
                }
            }
        }
    }
}

impl Demo {
    /// Start the sample backend and lay out the samples for `source`.
    pub async fn start(
        listen: SocketAddr,
        storage_dir: Option<PathBuf>,
        source: ArtifactSource,
    ) -> Result<Self, String> {
        let temporary = storage_dir.is_none();
        let storage_dir = storage_dir.unwrap_or_else(|| {
            std::env::temp_dir().join(format!("artifact-gateway-demo-{}", std::process::id()))
        });
        let builder = match source {
            ArtifactSource::Storage => BackendBuilder::sample_data(),
            ArtifactSource::Upstream => BackendBuilder::sample_data()
                .gitlab_job_token_rules()
                .artifacts_in(ArtifactStore::local(
                    storage_dir.join(OBJECTS_DIR),
                    DownloadMode::Redirect,
                )),
        };
        let backend = builder
            .start()
            .await
            .map_err(|e| format!("cannot start the sample backend: {e}"))?;
        let upstream =
            BaseUrl::parse(&backend.url()).map_err(|e| format!("sample backend url: {e}"))?;
        let mut config =
            Config::with_defaults(upstream, format!("file://{}", storage_dir.display()));
        config.listen = listen;
        config.artifacts.source = source;
        // Expiring links with a key of this run only; in upstream mode they locate archives
        // as the demo user.
        let mut key = vec![0u8; 32];
        aws_lc_rs::rand::fill(&mut key).map_err(|_| "no random bytes for the link key")?;
        config.links.keys = vec![crate::config::LinkKey(key)];
        config.links.service_token = Some("demo-token".to_owned().into());
        // From here on, an early return (samples that cannot be written, then a gateway that
        // cannot listen) drops the demo, and with it the temporary directory.
        let demo = Self {
            config,
            storage_dir,
            temporary,
            _backend: backend,
        };
        match source {
            ArtifactSource::Storage => write_samples(&demo.storage_dir),
            ArtifactSource::Upstream => {
                write_objects(&demo._backend, &demo.storage_dir.join(OBJECTS_DIR))
            }
        }
        .map_err(|e| format!("cannot write sample artifacts: {e}"))?;
        Ok(demo)
    }

    /// What to try, printed once the gateway listens.
    pub fn instructions(&self, addr: SocketAddr) -> String {
        if self.config.artifacts.source == ArtifactSource::Upstream {
            return self.upstream_instructions(addr);
        }
        let base = format!("http://{addr}/api/v4");
        format!(
            "artifact-gateway demo on http://{addr}
  sample jobs backend: {upstream}
  artifacts and logs: {dir}{removed}
  users: demo (token demo-token, member of demo/app and demo/secret), outsider (token outsider-token)
  job 106 of demo/app is running: its CI job token is job-token-106 (reads project 1 only)

Try:
  # list jobs (pagination headers and Link rewritten to the gateway)
  curl -i -H 'PRIVATE-TOKEN: demo-token' '{base}/projects/1/jobs?per_page=2'
  # get a job twice: the second answer says X-Cache: HIT
  curl -si -H 'PRIVATE-TOKEN: demo-token' {base}/projects/demo%2Fapp/jobs/104 | grep -i x-cache
  # a private project is invisible to others: 404
  curl -i -H 'PRIVATE-TOKEN: outsider-token' {base}/projects/2/jobs/201
  # bad token: 401
  curl -i -H 'PRIVATE-TOKEN: nope' {base}/projects/1/jobs
  # any other API path is forwarded as it is: the token's user, the project
  curl -H 'PRIVATE-TOKEN: demo-token' {base}/user
  curl {base}/projects/1
  # play the manual job (and invalidate its cached entries)
  curl -i -X POST -H 'PRIVATE-TOKEN: demo-token' {base}/projects/1/jobs/105/play

  # the archive of job 104, streamed from storage; anonymous works on the public project
  curl -o artifacts.zip {base}/projects/1/jobs/104/artifacts
  # its first 64 bytes, as a ranged storage read: 206, Content-Range, then the bytes
  curl -s -D /dev/stderr -r 0-63 {base}/projects/1/jobs/104/artifacts | od -c
  # with the running job's CI token: a single file of job 104, decoded out of the archive
  curl -H 'JOB-TOKEN: job-token-106' {base}/projects/1/jobs/104/artifacts/README.md
  # ...but a job token reads only its own project: 404
  curl -i -H 'JOB-TOKEN: job-token-106' {base}/projects/2/jobs/201/artifacts
  # the latest successful `build` on a ref (slashes may stay raw)
  curl -o build.zip '{base}/projects/1/jobs/artifacts/feature/login/download?job=build'
  # a finished job's log from storage, from byte 100 on
  curl -H 'Range: bytes=100-' {base}/projects/1/jobs/104/trace
  # a running job's live log comes from the backend
  curl {base}/projects/1/jobs/106/trace

  # beyond GitLab's own API: the archive's files, listed from its zip index
  curl '{base}/projects/1/jobs/104/artifacts/tree?recursive=true'
  # ...and a part of it as a zip, entries copied without recompression (`unzip -l part.zip`)
  curl -o part.zip '{base}/projects/1/jobs/104/artifacts/-/zip?path=docs&glob=**/*.html'
  # an expiring link to a private project's file: access checked now, then no token needed
  curl -X POST -H 'PRIVATE-TOKEN: demo-token' -H 'Content-Type: application/json' -d '{{\"path\":\"README.md\",\"expires_in\":\"1h\"}}' {base}/projects/2/jobs/201/artifacts/-/links
",
            upstream = self.config.upstream.url,
            dir = self.storage_dir.display(),
            removed = self.removed_on_exit(),
        )
    }

    /// Said after the directory when the demo removes it.
    fn removed_on_exit(&self) -> &'static str {
        if self.temporary {
            " (removed on exit)"
        } else {
            ""
        }
    }

    /// What to try in upstream mode: what differs from storage mode.
    fn upstream_instructions(&self, addr: SocketAddr) -> String {
        let base = format!("http://{addr}/api/v4");
        format!(
            "artifact-gateway demo on http://{addr}, artifacts.source = \"upstream\"
  sample jobs backend: {upstream} (GitLab's job-token rules; archives in its own object store)
  archives: {dir} (at the backend's hashed keys){removed}    logs: the backend's
  users: demo (token demo-token, member of demo/app and demo/secret), outsider (token outsider-token)
  job 106 of demo/app is running: its CI job token is job-token-106 (reads project 1 only)

Try:
  # the backend's own answer: a 302 to a presigned URL of its object store, fresh each time
  curl -i {upstream}/api/v4/projects/1/jobs/104/artifacts
  # the gateway asks that route as the caller, follows the 302 and reads the object itself
  curl -o artifacts.zip {base}/projects/1/jobs/104/artifacts
  # a CI job token downloads an archive and a single file, as on GitLab's artifact routes
  curl -o artifacts.zip -H 'JOB-TOKEN: job-token-106' {base}/projects/1/jobs/104/artifacts
  curl -H 'JOB-TOKEN: job-token-106' {base}/projects/1/jobs/104/artifacts/README.md
  # ...but GitLab refuses it on the job itself: 401
  curl -i -H 'JOB-TOKEN: job-token-106' {base}/projects/1/jobs/106
  # part of a single file, decoded out of the archive (Workhorse has no Range there)
  curl -i -H 'Range: bytes=0-99' {base}/projects/1/jobs/104/artifacts/dist/app.txt
  # a job log comes from the backend; the gateway adds the Range GitLab's route lacks: 206
  curl -i -H 'PRIVATE-TOKEN: demo-token' -H 'Range: bytes=0-9' {base}/projects/1/jobs/104/trace
  # the archive's files, listed from its zip index (GitLab 18.8's route and answer)
  curl -H 'JOB-TOKEN: job-token-106' '{base}/projects/1/jobs/104/artifacts/tree?recursive=true'
  # a part of it as a zip, and an expiring link to it that needs no token
  curl -o part.zip -H 'JOB-TOKEN: job-token-106' '{base}/projects/1/jobs/104/artifacts/-/zip?glob=**/*.txt'
  curl -X POST -H 'PRIVATE-TOKEN: demo-token' {base}/projects/1/jobs/104/artifacts/-/links
",
            upstream = self.config.upstream.url,
            dir = self.storage_dir.join(OBJECTS_DIR).display(),
            removed = self.removed_on_exit(),
        )
    }
}

/// Write each sample archive at the key `backend` assigned it, under `dir`.
fn write_objects(backend: &SampleBackend, dir: &Path) -> std::io::Result<()> {
    for (_, job, bytes) in ARCHIVES {
        let key = backend.archive_key(job).ok_or_else(|| {
            std::io::Error::other(format!("the sample backend has no archive for job {job}"))
        })?;
        let path = dir.join(key);
        std::fs::create_dir_all(path.parent().expect("has a parent"))?;
        std::fs::write(path, bytes)?;
    }
    Ok(())
}

/// Write the samples, keeping any file already in place.
pub fn write_samples(dir: &Path) -> std::io::Result<()> {
    for (project, job, bytes) in ARCHIVES {
        let path = dir.join(format!("{project}/{job}/artifacts.zip"));
        if path.exists() {
            continue;
        }
        std::fs::create_dir_all(path.parent().expect("has a parent"))?;
        std::fs::write(path, bytes)?;
    }
    // The finished jobs' logs, the backend's own text, so that the job JSON's trace size is
    // the stored log's; a running job's live log stays with the backend.
    let builder = BackendBuilder::sample_data();
    let finished = builder.jobs().iter().filter(|job| {
        job.has_trace
            && matches!(
                job.status,
                JobStatus::Success | JobStatus::Failed | JobStatus::Canceled | JobStatus::Skipped
            )
    });
    for job in finished {
        let path = dir.join(format!("{}/{}/job.log", job.project_id, job.id));
        if path.exists() {
            continue;
        }
        std::fs::create_dir_all(path.parent().expect("has a parent"))?;
        std::fs::write(path, &job.trace)?;
    }
    Ok(())
}
