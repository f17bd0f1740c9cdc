//! What every hostile case needs: the real binary on its own ports with its log captured,
//! its memory read from `/proc`, a raw socket exchange, a temporary directory, and a bound
//! on how long a case may take.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;

/// A directory removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(label: &str) -> Self {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!(
            "artifact-gateway-hostile-{label}-{}-{n}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create temp dir");
        Self(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// `file://` URL of the directory, for `storage.url`.
    pub fn url(&self) -> String {
        format!("file://{}", self.0.display())
    }

    /// Write `bytes` at `relative`, creating parent directories.
    pub fn write(&self, relative: &str, bytes: &[u8]) -> PathBuf {
        let path = self.0.join(relative);
        std::fs::create_dir_all(path.parent().expect("a file has a parent")).unwrap();
        std::fs::write(&path, bytes).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The `artifact-gateway` binary, started with a TOML configuration, stopped (SIGKILL) when
/// dropped. Its stdout and stderr (the log) are captured line by line.
pub struct Gateway {
    child: Child,
    pub addr: SocketAddr,
    pub admin: SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
    _config_dir: TempDir,
}

/// Merge `overrides` into `base`, tables recursively, other values replaced.
fn merge(base: &mut toml::Table, overrides: toml::Table) {
    for (key, value) in overrides {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(into)), toml::Value::Table(from)) => merge(into, from),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

impl Gateway {
    /// Start the binary in front of `upstream` with storage at `storage_url`; `overrides`
    /// is TOML merged over that base (e.g. `"[zip]\nmax_entries = 10\n"`). Returns once the
    /// admin listener answers `/-/health`.
    pub async fn spawn(upstream: &str, storage_url: &str, overrides: &str) -> Self {
        let (port, admin_port) = (crate::common::free_port(), crate::common::free_port());
        let mut config: toml::Table = toml::from_str(&format!(
            "listen = \"127.0.0.1:{port}\"\nadmin_listen = \"127.0.0.1:{admin_port}\"\n\
             [log]\nformat = \"json\"\n\
             [upstream]\nurl = \"{upstream}\"\n[storage]\nurl = \"{storage_url}\"\n"
        ))
        .unwrap();
        merge(
            &mut config,
            toml::from_str(overrides).expect("overrides are TOML"),
        );
        let dir = TempDir::new("config");
        let path = dir.path().join("gateway.toml");
        std::fs::write(&path, toml::to_string(&config).unwrap()).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_artifact-gateway"))
            .arg("--config")
            .arg(&path)
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the binary starts");
        let log = Arc::new(Mutex::new(Vec::new()));
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    log.lock().unwrap().push(line);
                }
            });
        }
        let mut gateway = Self {
            child,
            addr: ([127, 0, 0, 1], port).into(),
            admin: ([127, 0, 0, 1], admin_port).into(),
            log,
            _config_dir: dir,
        };
        gateway.wait_healthy().await;
        gateway
    }

    async fn wait_healthy(&mut self) {
        let client = crate::common::client();
        let health = format!("http://{}/-/health", self.admin);
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("the gateway exited ({status}):\n{}", self.log().join("\n"));
            }
            if let Ok(response) = client.get(&health).send().await {
                if response.status().is_success() {
                    return;
                }
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "the gateway did not become healthy:\n{}",
                self.log().join("\n")
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `http://addr/api/v4{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}/api/v4{path}", self.addr)
    }

    /// Every log line so far.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// Wait until a log line satisfies `found` (the access line is written when a body
    /// ends, which may be just after the client saw its last byte).
    pub async fn wait_for_log(&self, found: impl Fn(&str) -> bool) -> String {
        let started = Instant::now();
        loop {
            if let Some(line) = self.log().into_iter().find(|l| found(l)) {
                return line;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "no such log line:\n{}",
                self.log().join("\n")
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Wait until at least `count` log lines satisfy `found`.
    pub async fn wait_for_log_count(&self, count: usize, found: impl Fn(&str) -> bool) {
        let started = Instant::now();
        while self.log().iter().filter(|l| found(l)).count() < count {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "fewer than {count} such log lines:\n{}",
                self.log().join("\n")
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The admin listener's Prometheus text.
    pub async fn metrics(&self) -> String {
        crate::common::client()
            .get(format!("http://{}/metrics", self.admin))
            .send()
            .await
            .expect("the admin listener answers")
            .text()
            .await
            .expect("a metrics body")
    }

    fn status_field(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("/proc/<pid>/status");
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("{field} missing from /proc status"))
    }

    /// Peak resident set size of the process so far, in KiB (`VmHWM`).
    pub fn peak_rss_kib(&self) -> u64 {
        self.status_field("VmHWM:")
    }

    /// Resident set size now, in KiB (`VmRSS`).
    pub fn rss_kib(&self) -> u64 {
        self.status_field("VmRSS:")
    }

    /// Reset the peak to the current RSS (`/proc/<pid>/clear_refs` 5), so that a case
    /// measures only what it caused.
    pub fn reset_peak(&self) {
        std::fs::write(format!("/proc/{}/clear_refs", self.pid()), "5")
            .expect("reset VmHWM through /proc/<pid>/clear_refs");
    }

    /// Open file descriptors of the process now.
    pub fn open_fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    /// Assert that the peak RSS grew by at most `mib` since start or the last
    /// [`Self::reset_peak`], with `what` in the message.
    pub fn assert_peak_below(&self, mib: u64, what: &str) {
        let peak = self.peak_rss_kib();
        assert!(
            peak < mib * 1024,
            "{what}: peak RSS {} MiB, bound {mib} MiB",
            peak / 1024
        );
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Raw exchange over one TCP connection: write `request`, then read until the peer closes,
/// `quiet` passes with nothing new, or 10 s in total. Returns what was read.
pub async fn raw_exchange(addr: SocketAddr, request: &[u8], quiet: Duration) -> Vec<u8> {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request).await.expect("write request");
    crate::common::raw::read_until_quiet(&mut stream, quiet, Duration::from_secs(10))
        .await
        .bytes
}

/// The status codes of every HTTP/1.1 response head in `bytes`, in order.
pub fn statuses(bytes: &[u8]) -> Vec<u16> {
    crate::common::raw::statuses(bytes)
}

/// Run `case`, failing if it takes longer than `bound`: no hostile input may hang us.
pub async fn within<T>(
    bound: Duration,
    what: &str,
    case: impl std::future::Future<Output = T>,
) -> T {
    match tokio::time::timeout(bound, case).await {
        Ok(value) => value,
        Err(_) => panic!("{what}: not done within {bound:?}"),
    }
}

/// The sample backend, one fixture archive in local storage at `key`, and the real binary
/// in front of them with `overrides`; the peak RSS is reset once it is up.
pub struct Case {
    pub backend: sample_backend::SampleBackend,
    pub gateway: Gateway,
    pub archive: Vec<u8>,
    _storage: TempDir,
}

impl Case {
    pub async fn start(label: &str, key: &str, overrides: &str) -> Self {
        let backend = sample_backend::BackendBuilder::sample_data()
            .start()
            .await
            .unwrap();
        let storage = TempDir::new(label);
        let archive = crate::common::fixture("python-stored.zip");
        storage.write(key, &archive);
        let gateway = Gateway::spawn(&backend.url(), &storage.url(), overrides).await;
        gateway.reset_peak();
        Self {
            backend,
            gateway,
            archive,
            _storage: storage,
        }
    }
}
