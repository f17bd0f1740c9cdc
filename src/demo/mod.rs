//! `artifact-gateway --demo`: the embedded default a newcomer runs first. It starts the
//! sample jobs backend, lays out sample archives and job logs in a local directory, and
//! builds a configuration pointing at both.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::config::{BaseUrl, Config};
use crate::sample_backend::{BackendBuilder, SampleBackend};

/// Sample archives (written by Python's `zipfile`), by job id, all in project 1 but 201.
const ARCHIVES: [(u64, u64, &[u8]); 4] = [
    (1, 101, include_bytes!("job-101.zip")),
    (1, 103, include_bytes!("job-103.zip")),
    (1, 104, include_bytes!("job-104.zip")),
    (2, 201, include_bytes!("job-201.zip")),
];

/// Finished jobs whose logs are in storage.
const TRACES: [(u64, u64); 6] = [(1, 101), (1, 102), (1, 103), (1, 104), (1, 107), (2, 201)];

pub struct Demo {
    pub config: Config,
    pub storage_dir: PathBuf,
    _backend: SampleBackend,
}

impl Demo {
    pub async fn start(listen: SocketAddr, storage_dir: Option<PathBuf>) -> Result<Self, String> {
        let backend = BackendBuilder::sample_data()
            .start()
            .await
            .map_err(|e| format!("cannot start the sample backend: {e}"))?;
        let storage_dir = storage_dir.unwrap_or_else(|| {
            std::env::temp_dir().join(format!("artifact-gateway-demo-{}", std::process::id()))
        });
        write_samples(&storage_dir).map_err(|e| format!("cannot write sample artifacts: {e}"))?;
        let upstream =
            BaseUrl::parse(&backend.url()).map_err(|e| format!("sample backend url: {e}"))?;
        let mut config =
            Config::with_defaults(upstream, format!("file://{}", storage_dir.display()));
        config.listen = listen;
        Ok(Self {
            config,
            storage_dir,
            _backend: backend,
        })
    }

    /// What to try, printed once the gateway listens.
    pub fn instructions(&self, addr: SocketAddr) -> String {
        let base = format!("http://{addr}/api/v4");
        format!(
            "artifact-gateway demo on http://{addr}
  sample jobs backend: {upstream}    artifacts and logs: {dir}
  users: demo (token demo-token, member of demo/app and demo/secret), outsider (token outsider-token)

Try:
  # list jobs (pagination headers and Link rewritten to the gateway)
  curl -i -H 'PRIVATE-TOKEN: demo-token' '{base}/projects/1/jobs?per_page=2'
  # get a job twice: the second answer says X-Cache: HIT
  curl -si -H 'PRIVATE-TOKEN: demo-token' {base}/projects/demo%2Fapp/jobs/104 | grep -i x-cache
  # a private project is invisible to others: 404
  curl -i -H 'PRIVATE-TOKEN: outsider-token' {base}/projects/2/jobs/201
  # bad token: 401
  curl -i -H 'PRIVATE-TOKEN: nope' {base}/projects/1/jobs
  # play the manual job (and invalidate its cached entries)
  curl -i -X POST -H 'PRIVATE-TOKEN: demo-token' {base}/projects/1/jobs/105/play

  # the archive of job 104, streamed from storage; anonymous works on the public project
  curl -o artifacts.zip {base}/projects/1/jobs/104/artifacts
  # part of it, as a ranged storage read
  curl -i -H 'Range: bytes=0-99' {base}/projects/1/jobs/104/artifacts -o /dev/null
  # the latest successful `build` on a ref (slashes may stay raw)
  curl -o build.zip '{base}/projects/1/jobs/artifacts/feature/login/download?job=build'
  # a finished job's log from storage, from byte 100 on
  curl -H 'Range: bytes=100-' {base}/projects/1/jobs/104/trace
  # a running job's live log comes from the backend
  curl {base}/projects/1/jobs/106/trace
",
            upstream = self.config.upstream.url,
            dir = self.storage_dir.display(),
        )
    }
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
    for (project, job) in TRACES {
        let path = dir.join(format!("{project}/{job}/job.log"));
        if path.exists() {
            continue;
        }
        std::fs::create_dir_all(path.parent().expect("has a parent"))?;
        let log: String = (1..=20)
            .map(|i| format!("[job {job}] step {i}: ok\n"))
            .collect();
        std::fs::write(
            path,
            format!("Running job {job} of project {project}\n{log}Job succeeded\n"),
        )?;
    }
    Ok(())
}
