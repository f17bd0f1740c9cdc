//! The gateways under test: `artifact-gateway --config FILE` child processes, one per mode,
//! all in front of the same sample backend and the same S3 server.

use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How a gateway finds archives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// `artifacts.source = "storage"`: job lookup, then the template key in `[storage]`.
    Storage,
    /// `artifacts.source = "upstream"`: the backend's archive route (302 to a presigned
    /// URL), the location kept per caller for `cache.ttl`.
    Upstream,
    /// As `Upstream` with `cache.max_bytes = 0`: a locate, and a fresh signature, on every
    /// request.
    UpstreamNoCache,
}

impl Mode {
    pub fn label(self) -> &'static str {
        match self {
            Mode::Storage => "storage",
            Mode::Upstream => "upstream",
            Mode::UpstreamNoCache => "upstream, no cache",
        }
    }
}

/// Where the S3 server is and how to sign for it (storage mode only).
pub struct S3Access {
    pub endpoint: String,
    pub bucket: String,
    pub region: String,
    pub access_key: String,
    pub secret_key: String,
}

/// A running gateway. Dropping it stops the process by its PID (TERM, then KILL after 5 s).
pub struct Gateway {
    pub mode: Mode,
    pub port: u16,
    child: Child,
}

/// Readiness wait: give up after this long.
const READY_WITHIN: Duration = Duration::from_secs(15);
/// After TERM, how long the gateway may take to exit before KILL.
const STOP_WITHIN: Duration = Duration::from_secs(5);

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The configuration file's text for `mode`. Only what differs from the defaults: the
/// listener, `warn` logging (no access log), the backend, and where archives are.
fn config_text(mode: Mode, port: u16, backend: &str, s3: &S3Access, scratch: &Path) -> String {
    let mut text = format!(
        "listen = \"127.0.0.1:{port}\"\n\n[log]\nfilter = \"warn\"\n\n\
         [upstream]\nurl = \"{backend}\"\n\n"
    );
    if mode == Mode::UpstreamNoCache {
        text.push_str("[cache]\nmax_bytes = 0\n\n");
    }
    match mode {
        Mode::Storage => text.push_str(&format!(
            "[storage]\nurl = \"s3://{}\"\nendpoint = \"{}\"\nregion = \"{}\"\n\
             access_key_id = \"{}\"\nsecret_access_key = \"{}\"\nallow_http = true\n\
             virtual_hosted_style = false\n\n[artifacts]\nsource = \"storage\"\n",
            s3.bucket, s3.endpoint, s3.region, s3.access_key, s3.secret_key
        )),
        // [storage] is not used for archives in upstream mode; an empty local directory.
        Mode::Upstream | Mode::UpstreamNoCache => text.push_str(&format!(
            "[storage]\nurl = \"file://{}\"\n\n[artifacts]\nsource = \"upstream\"\n",
            scratch.join("unused-storage").display()
        )),
    }
    text
}

impl Gateway {
    /// Write the config to `scratch` and start `bin --config FILE`; wait until it listens.
    /// Must be called on the thread that stays alive for the whole run: the child gets
    /// SIGTERM when that thread ends (PR_SET_PDEATHSIG), so a killed driver leaves no
    /// gateway behind.
    pub fn start(bin: &str, mode: Mode, backend: &str, s3: &S3Access, scratch: &Path) -> Self {
        let port = free_port();
        let name = mode.label().replace([',', ' '], "-");
        std::fs::create_dir_all(scratch.join("unused-storage")).unwrap();
        let config = scratch.join(format!("{name}.toml"));
        std::fs::write(&config, config_text(mode, port, backend, s3, scratch)).unwrap();
        let log = std::fs::File::create(scratch.join(format!("{name}.log"))).unwrap();
        let mut command = Command::new(bin);
        command
            .arg("--config")
            .arg(&config)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        dies_with_parent(&mut command);
        let child = command.spawn().expect("the gateway starts");
        wait_listening(port, mode.label());
        Gateway { mode, port, child }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Base URL of its API.
    pub fn api(&self) -> String {
        format!("http://127.0.0.1:{}/api/v4", self.port)
    }

    /// Still running?
    pub fn alive(&mut self) -> bool {
        self.child.try_wait().ok().flatten().is_none()
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

/// The child gets SIGTERM when the thread that spawned it ends, so a killed driver leaves
/// no server behind.
pub fn dies_with_parent(command: &mut Command) {
    // Safety: prctl is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            Ok(())
        });
    }
}

/// Wait until something listens on `port`, or panic after `READY_WITHIN`.
pub fn wait_listening(port: u16, what: &str) {
    let deadline = Instant::now() + READY_WITHIN;
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{what} not listening on {port} after {READY_WITHIN:?}");
}

/// Stop a child by its PID: TERM, then KILL after `STOP_WITHIN`.
pub fn stop(child: &mut Child) {
    let running = |c: &mut Child| c.try_wait().ok().flatten().is_none();
    if running(child) {
        // Safety: a plain kill(2) of our own child's PID.
        unsafe {
            libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
        }
        let deadline = Instant::now() + STOP_WITHIN;
        while running(child) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        if running(child) {
            let _ = child.kill();
        }
    }
    let _ = child.wait();
}

/// Reset `pid`'s `VmHWM` to its current RSS (`/proc/<pid>/clear_refs`), so a pass's peak
/// can be read on its own.
pub fn reset_peak_rss(pid: u32) {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").expect("reset VmHWM");
}

/// `VmHWM` (peak RSS) of `pid` in KiB, from `/proc/<pid>/status`.
pub fn peak_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// CPU time (user + system, all threads) `pid` has used so far, in seconds, from
/// `/proc/<pid>/stat`.
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces): state is field 3, utime 14.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // Safety: sysconf has no preconditions.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    (ticks(11) + ticks(12)) as f64 / per_second
}
