//! `--demo` removes its temporary directory on SIGTERM and SIGINT, and keeps a `--storage-dir`.

use super::*;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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
