//! A new user's first steps: the README's "Running it" configuration loads and serves, the
//! demo's jobs report the sizes of what it stores, the sample backend's `GET /user` and
//! `GET /projects/:id` answer through the gateway, and `--demo` removes its temporary
//! directory on SIGTERM and SIGINT.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use artifact_gateway::config::{ArtifactSource, BaseUrl, Config};
use artifact_gateway::demo::{self, Demo};
use artifact_gateway::listener::RunningGateway;
use sample_backend::{BackendBuilder, JobStatus};
use serde_json::Value;

const DEMO_TOKEN: (&str, &str) = ("PRIVATE-TOKEN", "demo-token");
const OUTSIDER_TOKEN: (&str, &str) = ("PRIVATE-TOKEN", "outsider-token");
const JOB_TOKEN: (&str, &str) = ("JOB-TOKEN", "job-token-106");
const ARCHIVE_104: &[u8] = include_bytes!("../src/demo/job-104.zip");

fn repo_file(path: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A new, empty directory under the system's temporary one.
fn fresh_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "artifact-gateway-newcomer-{name}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

async fn get(url: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut request = client().get(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request
        .send()
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"))
}

async fn json(response: reqwest::Response) -> Value {
    let bytes = response.bytes().await.unwrap();
    serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&bytes)))
}

/// The shell block under the README's "## Running it".
fn readme_running_it() -> String {
    let readme = repo_file("README.md");
    let section = readme
        .split_once("\n## Running it\n")
        .expect("README has a Running it section")
        .1;
    let block = section
        .split_once("```sh\n")
        .expect("Running it starts with a shell block")
        .1;
    block.split_once("```").unwrap().0.to_owned()
}

#[tokio::test]
async fn readme_running_it_config_validates_and_serves_after_sample_data() {
    let commands = readme_running_it();
    let config_arg = commands
        .lines()
        .find_map(|l| l.split_once("--config ").map(|(_, rest)| rest))
        .and_then(|rest| rest.split_whitespace().next())
        .expect("the README runs the gateway with --config")
        .to_owned();
    assert_eq!(config_arg, "config/local.example.toml", "{commands}");
    let data_dir = commands
        .lines()
        .find_map(|l| l.split_once(" sample-data ").map(|(_, rest)| rest))
        .and_then(|rest| rest.split_whitespace().next())
        .expect("the README writes the sample data first")
        .to_owned();
    assert!(
        commands.contains(" sample-backend"),
        "the README starts the sample backend: {commands}"
    );

    // The file as shipped, without the test process's environment.
    let config = Config::from_toml(&repo_file(&config_arg), Vec::new())
        .unwrap_or_else(|e| panic!("{config_arg}: {e}"));
    assert_eq!(config.storage.url, format!("file://{data_dir}"));
    assert_eq!(config.upstream.url.as_str(), "http://127.0.0.1:3000");
    assert_eq!(config.listen, "127.0.0.1:8080".parse().unwrap());
    assert_eq!(config.artifacts.source, ArtifactSource::Storage);

    // What the README's steps make of it, on a free port and in a directory of this test's:
    // `sample-data` writes the archives, `sample-backend` answers, the gateway serves.
    let dir = fresh_dir("running-it");
    demo::write_samples(&dir).unwrap();
    let backend = BackendBuilder::sample_data().start().await.unwrap();
    let mut config = config;
    config.storage.url = format!("file://{}", dir.display());
    config.upstream.url = BaseUrl::parse(&backend.url()).unwrap();
    config.listen = "127.0.0.1:0".parse().unwrap();
    let gateway = RunningGateway::start(config)
        .await
        .expect("the gateway starts");
    let base = format!("http://{}/api/v4", gateway.addr());
    let r = get(&format!("{base}/projects/1/jobs/104/artifacts"), &[]).await;
    assert_eq!(r.status(), 200);
    assert!(r.bytes().await.unwrap() == ARCHIVE_104);
    let r = get(
        &format!("{base}/projects/1/jobs/104/artifacts/README.md"),
        &[JOB_TOKEN],
    )
    .await;
    assert_eq!(r.status(), 200);
    gateway.shutdown();
    gateway.wait().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn readme_documents_the_subcommands_and_every_abort_reason() {
    let readme = repo_file("README.md");
    for word in [
        "sample-backend",
        "sample-data",
        "probe",
        "--storage-dir",
        "job-token-106",
    ] {
        assert!(readme.contains(&format!("`{word}")), "README names {word}");
    }
    let metric = readme
        .lines()
        .find(|l| l.starts_with("| `aborted_streams_total`"))
        .expect("the metrics table has aborted_streams_total");
    for reason in [
        "verification",
        "storage",
        "upstream",
        "client_gone",
        "shutdown",
        "other",
    ] {
        assert!(
            metric.contains(&format!("`{reason}`")),
            "{reason}: {metric}"
        );
    }
    assert!(
        readme.contains("shutdown_grace` ends"),
        "what a shutdown cut counts as"
    );
}

/// Length of `path`, or `None` when there is no such file.
fn stored_len(path: &Path) -> Option<u64> {
    std::fs::metadata(path).ok().map(|m| m.len())
}

/// Every sample job's JSON, asked of the demo's backend with a token that sees them all.
async fn sample_jobs(demo: &Demo) -> Vec<(sample_backend::JobSpec, Value)> {
    let api = format!("{}/api/v4", demo.config.upstream.url.as_str());
    let mut jobs = Vec::new();
    for spec in BackendBuilder::sample_data().jobs() {
        let url = format!("{api}/projects/{}/jobs/{}", spec.project_id, spec.id);
        let r = get(&url, &[DEMO_TOKEN]).await;
        assert_eq!(r.status(), 200, "{url}");
        jobs.push((spec.clone(), json(r).await));
    }
    assert!(jobs.len() >= 8, "the whole dataset");
    jobs
}

/// The sizes a job's JSON reports: `artifacts_file.size`, and per `artifacts[]` file type.
fn reported(job: &Value) -> (Option<u64>, Option<u64>, Option<u64>) {
    let of_type = |file_type: &str| {
        let artifacts = job["artifacts"].as_array().expect("artifacts is a list");
        artifacts
            .iter()
            .find(|a| a["file_type"] == file_type)
            .map(|a| a["size"].as_u64().expect("a size"))
    };
    for artifact in job["artifacts"].as_array().unwrap() {
        let file_type = artifact["file_type"].as_str().unwrap();
        assert!(
            ["archive", "trace"].contains(&file_type),
            "job {}: a {file_type} entry needs its own size check here",
            job["id"]
        );
    }
    let file = job.get("artifacts_file").map(|f| {
        assert_eq!(f["filename"], "artifacts.zip");
        f["size"].as_u64().expect("artifacts_file.size")
    });
    (file, of_type("archive"), of_type("trace"))
}

#[tokio::test]
async fn demo_jobs_report_the_sizes_of_the_stored_archives_and_logs() {
    let dir = fresh_dir("sizes");
    let demo = Demo::start(
        "127.0.0.1:0".parse().unwrap(),
        Some(dir.clone()),
        ArtifactSource::Storage,
    )
    .await
    .unwrap();
    let mut archives = 0;
    for (spec, job) in sample_jobs(&demo).await {
        let id = spec.id;
        let key = dir.join(format!("{}/{id}", spec.project_id));
        let (file, archive, trace) = reported(&job);
        let stored = stored_len(&key.join("artifacts.zip"));
        assert_eq!(file, stored, "job {id}: artifacts_file.size");
        assert_eq!(archive, stored, "job {id}: the archive entry's size");
        archives += usize::from(stored.is_some());
        let finished = matches!(
            spec.status,
            JobStatus::Success | JobStatus::Failed | JobStatus::Canceled | JobStatus::Skipped
        );
        if finished {
            // The gateway serves a finished job's log from storage.
            assert_eq!(
                trace,
                stored_len(&key.join("job.log")),
                "job {id}: trace size"
            );
        } else if let Some(size) = trace {
            // A running job's log is the backend's live one.
            let url = format!(
                "{}/api/v4/projects/{}/jobs/{id}/trace",
                demo.config.upstream.url.as_str(),
                spec.project_id
            );
            let live = get(&url, &[DEMO_TOKEN]).await.bytes().await.unwrap();
            assert_eq!(size, live.len() as u64, "job {id}: live trace size");
        }
    }
    assert_eq!(archives, 4, "jobs 101, 103, 104 and 201 have archives");
    drop(demo);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn demo_in_upstream_mode_reports_the_sizes_its_object_store_serves() {
    let dir = fresh_dir("sizes-upstream");
    let demo = Demo::start(
        "127.0.0.1:0".parse().unwrap(),
        Some(dir.clone()),
        ArtifactSource::Upstream,
    )
    .await
    .unwrap();
    let api = format!("{}/api/v4", demo.config.upstream.url.as_str());
    let follow = reqwest::Client::new();
    for (spec, job) in sample_jobs(&demo).await {
        let (file, archive, _) = reported(&job);
        assert_eq!(file, archive, "job {}", spec.id);
        let Some(size) = file else { continue };
        // The backend's archive route redirects to its object store, which has the bytes.
        let url = format!(
            "{api}/projects/{}/jobs/{}/artifacts",
            spec.project_id, spec.id
        );
        let r = follow
            .get(&url)
            .header(DEMO_TOKEN.0, DEMO_TOKEN.1)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{url}");
        assert_eq!(r.bytes().await.unwrap().len() as u64, size, "{url}");
    }
    drop(demo);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn current_user_and_project_answer_through_the_gateway() {
    let backend = BackendBuilder::sample_data().start().await.unwrap();
    let mut config = Config::with_defaults(
        BaseUrl::parse(&backend.url()).unwrap(),
        format!("file://{}", std::env::temp_dir().display()),
    );
    config.listen = "127.0.0.1:0".parse().unwrap();
    let gateway = RunningGateway::start(config).await.unwrap();
    let base = format!("http://{}/api/v4", gateway.addr());

    let r = get(&format!("{base}/user"), &[DEMO_TOKEN]).await;
    assert_eq!(r.status(), 200);
    let user = json(r).await;
    assert_eq!(
        (user["id"].as_u64(), user["username"].as_str()),
        (Some(1), Some("demo"))
    );
    assert_eq!(user["state"], "active");
    assert!(user["name"].is_string());
    // On the gateway's host (python-gitlab's gl.auth() warns about any other).
    assert_eq!(user["web_url"], format!("http://{}/demo", gateway.addr()));
    let seen = backend.requests();
    let forwarded = seen.iter().find(|r| r.path() == "/api/v4/user").unwrap();
    assert_eq!(forwarded.headers["private-token"], "demo-token");
    for headers in [&[][..], &[("PRIVATE-TOKEN", "nope")][..]] {
        let r = get(&format!("{base}/user"), headers).await;
        assert_eq!(r.status(), 401, "{headers:?}");
        assert_eq!(
            json(r).await,
            serde_json::json!({"message": "401 Unauthorized"})
        );
    }

    for (path, headers) in [
        ("/projects/1", &[][..]),
        ("/projects/demo%2Fapp", &[JOB_TOKEN][..]),
        ("/projects/demo%2Fsecret", &[DEMO_TOKEN][..]),
    ] {
        let r = get(&format!("{base}{path}"), headers).await;
        assert_eq!(r.status(), 200, "{path}");
        let project = json(r).await;
        let want = if path.contains("secret") {
            "demo/secret"
        } else {
            "demo/app"
        };
        assert_eq!(project["path_with_namespace"], want, "{path}");
        assert_eq!(project["default_branch"], "main");
        assert!(project["web_url"].is_string() && project["visibility"].is_string());
    }
    for (path, headers) in [
        ("/projects/2", &[][..]),
        ("/projects/demo%2Fsecret", &[OUTSIDER_TOKEN][..]),
        ("/projects/2", &[JOB_TOKEN][..]),
        ("/projects/99", &[DEMO_TOKEN][..]),
    ] {
        let r = get(&format!("{base}{path}"), headers).await;
        assert_eq!(r.status(), 404, "{path} {headers:?}");
        assert_eq!(
            json(r).await,
            serde_json::json!({"message": "404 Project Not Found"})
        );
    }
    gateway.shutdown();
    gateway.wait().await;
}

/// Kills the child when dropped, so a failing test leaves no process behind.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs `artifact-gateway --demo` with `args` under its own temporary directory, waits until
/// it serves, sends `signal` with kill(1), and returns the storage directory the banner
/// named once the process has exited 0.
async fn demo_until_signal(name: &str, args: &[&str], signal: &str) -> PathBuf {
    let tmp = fresh_dir(name);
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_artifact-gateway"))
        .arg("--demo")
        .args(args)
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        // std::env::temp_dir() of the demo: its directory lands inside this test's.
        .env("TMPDIR", &tmp)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut child = KillOnDrop(child);
    let stdout = child.0.stdout.take().unwrap();
    let (dir_tx, dir_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let line = line.trim();
            let named = line
                .strip_prefix("artifacts and logs: ")
                .or_else(|| line.strip_prefix("archives: "));
            if let Some(rest) = named {
                let path = rest.split_whitespace().next().unwrap_or_default();
                let _ = dir_tx.send(PathBuf::from(path));
            }
        }
    });

    let url = format!("http://127.0.0.1:{port}/api/v4/projects/1/jobs/104/artifacts");
    let started = Instant::now();
    loop {
        match client().get(&url).send().await {
            Ok(r) => {
                assert_eq!(r.status(), 200);
                assert!(r.bytes().await.unwrap() == ARCHIVE_104);
                break;
            }
            Err(_) if started.elapsed() < Duration::from_secs(30) => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Err(error) => panic!("the demo did not start: {error}"),
        }
    }
    let named = dir_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the banner names the storage directory");
    // In upstream mode the banner names the objects directory inside the storage one.
    let storage = if named.ends_with("objects") {
        named.parent().unwrap().to_owned()
    } else {
        named
    };
    assert!(
        storage.is_dir(),
        "{} exists while the demo runs",
        storage.display()
    );

    let pid = child.0.id().to_string();
    let killed = Command::new("kill").args([signal, &pid]).status().unwrap();
    assert!(killed.success(), "kill {signal} {pid}");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the demo did not exit after {signal}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "{signal}: {status}");
    storage
}

#[tokio::test]
async fn demo_removes_its_temporary_directory_on_sigterm() {
    let dir = demo_until_signal("sigterm", &[], "-TERM").await;
    assert!(
        dir.starts_with(fresh_parent("sigterm")),
        "{}",
        dir.display()
    );
    assert!(!dir.exists(), "{} is left behind", dir.display());
    let _ = std::fs::remove_dir_all(fresh_parent("sigterm"));
}

#[tokio::test]
async fn demo_removes_its_temporary_directory_on_sigint() {
    let dir = demo_until_signal("sigint", &[], "-INT").await;
    assert!(!dir.exists(), "{} is left behind", dir.display());
    let _ = std::fs::remove_dir_all(fresh_parent("sigint"));
}

#[tokio::test]
async fn upstream_demo_removes_its_temporary_directory_on_sigterm() {
    let dir = demo_until_signal("up-sigterm", &["--source", "upstream"], "-TERM").await;
    assert!(!dir.exists(), "{} is left behind", dir.display());
    let _ = std::fs::remove_dir_all(fresh_parent("up-sigterm"));
}

#[tokio::test]
async fn demo_keeps_a_storage_dir_it_was_given() {
    let given = fresh_dir("given-storage");
    let given_arg = given.to_str().unwrap().to_owned();
    let dir = demo_until_signal("given", &["--storage-dir", &given_arg], "-TERM").await;
    assert_eq!(dir, given);
    assert!(given.join("1/104/artifacts.zip").is_file(), "kept");
    let _ = std::fs::remove_dir_all(&given);
    let _ = std::fs::remove_dir_all(fresh_parent("given"));
}

/// The directory [`fresh_dir`] made for `name` (without emptying it again).
fn fresh_parent(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!(
        "artifact-gateway-newcomer-{name}-{}",
        std::process::id()
    ))
}
