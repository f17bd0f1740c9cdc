//! The `artifact-gateway` binary itself: configuration from a file and the environment, JSON
//! logs, and SIGTERM: readiness fails, a download in flight finishes, the process exits 0.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use artifact_gateway::sample_backend::BackendBuilder;

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
    tokio::time::sleep(Duration::from_millis(200)).await;
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
