//! The `artifact-gateway` binary itself: configuration from a file and the environment, JSON
//! logs, and SIGTERM: readiness fails, a download in flight finishes, the process exits 0;
//! and `--demo --source upstream`, the gateway in upstream mode before the sample backend.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sample_backend::BackendBuilder;

#[tokio::test]
async fn sigterm_lets_a_download_in_flight_finish_and_logs_are_json() {
    let backend = BackendBuilder::sample_data().start().await.unwrap();
    let storage =
        std::env::temp_dir().join(format!("artifact-gateway-binary-{}", std::process::id()));
    std::fs::create_dir_all(storage.join("1/104")).unwrap();
    let archive: Vec<u8> = (0..64 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    std::fs::write(storage.join("1/104/artifacts.zip"), &archive).unwrap();
    let (port, admin) = (common::free_port(), common::free_port());
    let config = storage.join("gateway.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:{port}\"\n[upstream]\nurl = \"{}\"\n[storage]\nurl = \"file://{}\"\n[server]\nshutdown_grace = \"20s\"\n",
            backend.url(),
            storage.display()
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_artifact-gateway"))
        .arg("--config")
        .arg(&config)
        // The environment overrides the file: JSON logs and the admin listener.
        .env("ARTIFACT_GATEWAY_LOG__FORMAT", "json")
        .env(
            "ARTIFACT_GATEWAY_ADMIN_LISTEN",
            format!("127.0.0.1:{admin}"),
        )
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let lines = std::thread::spawn(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .collect::<Vec<_>>()
    });

    let client = common::client();
    let base = format!("http://127.0.0.1:{port}/api/v4");
    let started = Instant::now();
    let mut download = loop {
        match client
            .get(format!("{base}/projects/1/jobs/104/artifacts"))
            .send()
            .await
        {
            Ok(response) => break response,
            Err(_) if started.elapsed() < Duration::from_secs(20) => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Err(error) => panic!("the gateway did not start: {error}"),
        }
    };
    assert_eq!(download.status(), 200);
    let mut received = download.chunk().await.unwrap().unwrap().to_vec();
    let ready = client
        .get(format!("http://127.0.0.1:{admin}/-/readiness"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);

    let term = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(term.success());
    let readiness = format!("http://127.0.0.1:{admin}/-/readiness");
    common::wait::wait_until_async(
        "readiness reports the drain",
        Duration::from_secs(5),
        || async { client.get(&readiness).send().await.unwrap().status() == 503 },
    )
    .await;
    let draining = client
        .get(format!("http://127.0.0.1:{admin}/-/readiness"))
        .send()
        .await
        .unwrap();
    assert_eq!(draining.status(), 503, "readiness during shutdown");
    assert!(
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err(),
        "still accepting after SIGTERM"
    );

    while let Some(chunk) = download.chunk().await.unwrap() {
        received.extend_from_slice(&chunk);
    }
    assert!(
        received == archive,
        "the download in flight was cut or corrupted"
    );
    let waited = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            waited.elapsed() < Duration::from_secs(10),
            "the process did not exit"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "{status}");

    let lines = lines.join().unwrap();
    assert!(!lines.is_empty());
    for line in &lines {
        let value: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(value.get("level").is_some(), "{line}");
    }
    assert!(
        lines
            .iter()
            .any(|l| l.contains("\"route\":\"archive\"") && l.contains("\"status\":200")),
        "no JSON access line for the download:\n{}",
        lines.join("\n")
    );
    let _ = std::fs::remove_dir_all(&storage);
}

#[test]
fn a_bad_configuration_names_the_key_and_exits_non_zero() {
    let dir =
        std::env::temp_dir().join(format!("artifact-gateway-badconfig-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("gateway.toml");
    std::fs::write(
        &config,
        "[upstream]\nurl = \"http://127.0.0.1:3000\"\ntimeuot = \"5s\"\n",
    )
    .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_artifact-gateway"))
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("upstream.timeuot"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Kills the child when dropped, so a failing test leaves no process behind.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn demo_in_upstream_mode_serves_archives_files_and_ranged_logs_through_the_backend() {
    let archive: &[u8] = include_bytes!("../src/demo/job-104.zip");
    // A deflated entry, so the single file is decoded, not just cut out.
    let name = "dist/app.txt";
    let mut file = Vec::new();
    zip::ZipArchive::new(std::io::Cursor::new(archive))
        .unwrap()
        .by_name(name)
        .unwrap()
        .read_to_end(&mut file)
        .unwrap();
    let port = common::free_port();
    let storage =
        std::env::temp_dir().join(format!("artifact-gateway-demo-up-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&storage);
    let mut child = Command::new(env!("CARGO_BIN_EXE_artifact-gateway"))
        .args(["--demo", "--source", "upstream", "--listen"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("--storage-dir")
        .arg(&storage)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let child = KillOnDrop(child);
    let printed = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = BufReader::new(stdout).read_to_string(&mut text);
        text
    });

    let client = common::client();
    let base = format!("http://127.0.0.1:{port}/api/v4");
    let get = |path: &str, headers: &[(&str, &str)]| {
        let mut request = client.get(format!("{base}{path}"));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send()
    };
    let started = Instant::now();
    let first = loop {
        match get("/projects/1/jobs/104/artifacts", &[]).await {
            Ok(response) => break response,
            Err(_) if started.elapsed() < Duration::from_secs(20) => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Err(error) => panic!("the demo did not start: {error}"),
        }
    };
    assert_eq!(first.status(), 200);
    assert!(
        first.bytes().await.unwrap() == archive,
        "archive of job 104"
    );

    let path = format!("/projects/1/jobs/104/artifacts/{name}");
    let r = get(&path, &[]).await.unwrap();
    assert_eq!(r.status(), 200, "{path}");
    assert!(r.bytes().await.unwrap() == file, "{name} of job 104");

    // Job 106 is running: its token downloads, but GitLab refuses it on the job route.
    let job_token = [("JOB-TOKEN", "job-token-106")];
    let r = get("/projects/1/jobs/104/artifacts", &job_token)
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.bytes().await.unwrap() == archive, "with a job token");
    let r = get("/projects/1/jobs/106", &job_token).await.unwrap();
    assert_eq!(r.status(), 401);

    // The backend's log, cut to the Range by the gateway.
    let demo = ("PRIVATE-TOKEN", "demo-token");
    let log = get("/projects/1/jobs/104/trace", &[demo]).await.unwrap();
    assert_eq!(log.status(), 200);
    let log = log.bytes().await.unwrap();
    assert!(log.len() > 10, "a log to cut");
    let r = get(
        "/projects/1/jobs/104/trace",
        &[demo, ("Range", "bytes=0-9")],
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(
        common::header(&r, "content-range"),
        Some(format!("bytes 0-9/{}", log.len()).as_str())
    );
    assert_eq!(r.bytes().await.unwrap(), log[..10]);

    drop(child);
    let printed = printed.join().unwrap();
    assert!(
        printed.contains("artifacts.source = \"upstream\"") && printed.contains("job-token-106"),
        "{printed}"
    );
    let _ = std::fs::remove_dir_all(&storage);
}

#[test]
fn demo_flags_are_refused_without_demo() {
    for (flag, value) in [
        ("--source", "upstream"),
        ("--listen", "127.0.0.1:1"),
        ("--storage-dir", "/tmp"),
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_artifact-gateway"))
            .args([flag, value, "--config", "/nonexistent/gateway.toml"])
            .output()
            .unwrap();
        assert!(!output.status.success(), "{flag}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains(&format!("'{flag} <")) && stderr.contains("cannot be used with"),
            "{flag}: {stderr}"
        );
    }
}
