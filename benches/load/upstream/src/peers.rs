//! The gateway's peers on the same S3 server, given the same presigned URLs a GitLab
//! backend hands out:
//! - **nginx `proxy_pass`** of the presigned URL (`proxy_buffering off`): what a site
//!   without the gateway puts in front of its object store to serve whole archives;
//! - **python `remotezip`** reading ranges of the presigned URL: what a client that wants
//!   one file of an archive does today (zipfile over HTTP ranges; suffix range for the
//!   tail, then the central directory and the entry). Its own CPU time is what it reports
//!   with `time.process_time()`; zipfile checks each entry's CRC-32 at its end, and the
//!   script checks the size, so a wrong byte fails the run.
//!
//! The presigned URLs are asked from the backend's archive route (302) before each pass,
//! outside the timing: the peers are handed a URL, as a user of GitLab is.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::gateway;
use crate::load::{self, Shared};

/// The remotezip side, run as `python3 -c SCRIPT MODE …`.
const REMOTEZIP: &str = include_str!("../remotezip_peer.py");

/// nginx in front of the S3 server (or its relay): every path and query passed through,
/// with the `Host` the URLs were signed for.
pub struct Nginx {
    pub port: u16,
    child: Child,
}

impl Nginx {
    pub fn start(bin: &str, s3_authority: &str, scratch: &Path) -> Self {
        let port = gateway::free_port();
        let dir = scratch.join("nginx");
        std::fs::create_dir_all(&dir).unwrap();
        let conf = dir.join("nginx.conf");
        let d = dir.display();
        // Two workers for two cores, as the gateway's two runtime threads; keep-alive to
        // S3 as the gateway's pool has.
        std::fs::write(
            &conf,
            format!(
                "daemon off;\nworker_processes 2;\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\n\
                 events {{ worker_connections 1024; }}\n\
                 http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
                   fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
                   upstream s3 {{ server {s3_authority}; keepalive 16; }}\n\
                   server {{\n    listen 127.0.0.1:{port};\n    location / {{\n\
                       proxy_pass http://s3;\n      proxy_http_version 1.1;\n\
                       proxy_set_header Connection \"\";\n      proxy_set_header Host {s3_authority};\n\
                       proxy_buffering off;\n      proxy_request_buffering off;\n    }}\n  }}\n}}\n"
            ),
        )
        .unwrap();
        let mut command = Command::new(bin);
        command
            .arg("-p")
            .arg(&dir)
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("stderr.log")).unwrap());
        gateway::dies_with_parent(&mut command);
        let child = command.spawn().expect("nginx starts (NGINX=path)");
        gateway::wait_listening(port, "nginx");
        Nginx { port, child }
    }

    /// `presigned` (naming `s3_endpoint`) as a URL of this nginx.
    pub fn url(&self, presigned: &str, s3_endpoint: &str) -> String {
        format!(
            "http://127.0.0.1:{}{}",
            self.port,
            presigned
                .strip_prefix(s3_endpoint)
                .expect("a URL of the S3 endpoint")
        )
    }

    /// CPU seconds of the master and its workers.
    pub fn cpu_seconds(&self) -> f64 {
        let pid = self.child.id();
        let children =
            std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
        gateway::cpu_seconds(pid)
            + children
                .split_whitespace()
                .filter_map(|c| c.parse().ok())
                .map(gateway::cpu_seconds)
                .sum::<f64>()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        gateway::stop(&mut self.child);
    }
}

/// The presigned URL the backend's archive route names for `job` (its 302), as the caller.
pub async fn presigned(backend: &str, project: u64, job: u64) -> String {
    let route = format!("{backend}/api/v4/projects/{project}/jobs/{job}/artifacts");
    let response = load::client()
        .get(&route)
        .header("PRIVATE-TOKEN", load::TOKEN)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{route}: {e}"));
    assert_eq!(response.status(), 302, "{route}");
    response.headers()["location"].to_str().unwrap().to_owned()
}

/// What one remotezip run reported.
pub struct Remote {
    /// Per request, µs (`cold`, `warm`), or the one read's wall time (`read`).
    pub latencies: Vec<u64>,
    pub wall: Duration,
    /// Its own CPU time, seconds.
    pub cpu: f64,
}

/// Run the remotezip script: `mode` is `read` (one entry of one URL, in 1 MiB reads),
/// `cold` (`urls` are pairs of entry size and URL: a fresh `RemoteZip` per URL) or `warm`
/// (one `RemoteZip` kept open, the entry read again and again for `secs`). Each read is
/// checked against its size and by zipfile's CRC-32 check.
pub async fn remotezip(
    mode: &str,
    urls: &[String],
    entry: &str,
    size: usize,
    secs: f64,
    failures: &Shared,
) -> Remote {
    let mut command = tokio::process::Command::new("python3");
    command
        .arg("-c")
        .arg(REMOTEZIP)
        .arg(mode)
        .arg(entry)
        .arg(size.to_string())
        .arg(secs.to_string())
        .args(urls)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let started = Instant::now();
    let output = tokio::time::timeout(load::DOWNLOAD_TIMEOUT, command.output()).await;
    let wall = started.elapsed();
    let mut remote = Remote {
        latencies: Vec::new(),
        wall,
        cpu: 0.0,
    };
    let output = match output {
        Ok(Ok(o)) if o.status.success() => o,
        Ok(Ok(o)) => {
            load::fail(
                failures,
                format!(
                    "remotezip {mode}: {}: {}",
                    o.status,
                    String::from_utf8_lossy(&o.stderr).trim()
                ),
            );
            return remote;
        }
        Ok(Err(e)) => {
            load::fail(failures, format!("remotezip {mode}: python3: {e}"));
            return remote;
        }
        Err(_) => {
            load::fail(failures, format!("remotezip {mode}: timed out"));
            return remote;
        }
    };
    // First line: CPU seconds and the timed span; then one latency (µs) per line.
    let text = String::from_utf8_lossy(&output.stdout);
    let mut lines = text.lines();
    if let Some((cpu, span)) = lines.next().and_then(|l| l.split_once(' ')) {
        remote.cpu = cpu.parse().unwrap_or(f64::NAN);
        remote.wall = Duration::from_secs_f64(span.parse().unwrap_or(f64::NAN));
    }
    remote.latencies = lines.filter_map(|l| l.parse().ok()).collect();
    remote
}

/// Each round's figures of the gateways and their peers, by (measure, who).
#[derive(Default)]
pub struct PeerReport {
    /// MB/s and CPU seconds per GB served.
    pub throughput: BTreeMap<(String, String), Vec<(f64, f64)>>,
    /// Latencies (µs) over all rounds, and the S3 GETs and requests behind them.
    pub latency: BTreeMap<(String, String), (Vec<u64>, u64, u64)>,
    /// Peak RSS (KiB) of each gateway at each concurrency of S3 downloads.
    pub rss: BTreeMap<(String, usize), u64>,
}

impl PeerReport {
    pub fn add_throughput(
        &mut self,
        what: &str,
        who: &str,
        bytes: usize,
        wall: Duration,
        cpu: f64,
    ) {
        let gb = bytes as f64 / 1e9;
        self.throughput
            .entry((what.to_owned(), who.to_owned()))
            .or_default()
            .push((gb * 1e3 / wall.as_secs_f64(), cpu / gb));
    }

    pub fn add_latency(&mut self, what: &str, who: &str, latencies: &[u64], gets: usize) {
        let row = self
            .latency
            .entry((what.to_owned(), who.to_owned()))
            .or_default();
        row.0.extend_from_slice(latencies);
        row.1 += gets as u64;
        row.2 += latencies.len() as u64;
    }

    /// `peer` names the row every other row of the same measure is divided by.
    pub fn print(&self, peer_of: impl Fn(&str) -> &'static str) {
        println!("\n## Against the peers, on the same S3 server\n");
        println!("Throughput: median over rounds; CPU is the serving process's own (the gateway; nginx's master and workers; remotezip's python), per 10^9 bytes served.\n");
        println!("| measure | who | MB/s | CPU s/GB | MB/s ÷ peer's | CPU/GB ÷ peer's | every round (MB/s) |");
        println!("|---|---|---:|---:|---:|---:|---|");
        let med = |v: &[(f64, f64)]| {
            (
                crate::report::median(v.iter().map(|x| x.0)),
                crate::report::median(v.iter().map(|x| x.1)),
            )
        };
        for ((what, who), v) in &self.throughput {
            let (mbs, cpu) = med(v);
            let (pm, pc) = self
                .throughput
                .get(&(what.clone(), peer_of(what).to_owned()))
                .map_or((f64::NAN, f64::NAN), |p| med(p));
            println!(
                "| {what} | {who} | {mbs:.0} | {cpu:.2} | {:.2} | {:.2} | {} |",
                mbs / pm,
                cpu / pc,
                v.iter()
                    .map(|x| format!("{:.0}", x.0))
                    .collect::<Vec<_>>()
                    .join(" ")
            );
        }
        println!("\nSmall entry latency, all rounds pooled (nearest rank), with the S3 GETs per request:\n");
        println!("| measure | who | requests | p50 ms | p99 ms | S3 GETs / request |");
        println!("|---|---|---:|---:|---:|---:|");
        for ((what, who), (lat, gets, n)) in &self.latency {
            let mut s = lat.clone();
            s.sort_unstable();
            println!(
                "| {what} | {who} | {n} | {:.2} | {:.2} | {:.2} |",
                crate::report::pct(&s, 0.5),
                crate::report::pct(&s, 0.99),
                *gets as f64 / (*n).max(1) as f64
            );
        }
        if !self.rss.is_empty() {
            println!("\nPeak RSS (VmHWM, reset before each pass) during whole-archive downloads from S3, MiB:\n");
            println!("| gateway | C | peak RSS | per stream above C=1 |\n|---|---:|---:|---:|");
            for ((who, c), kib) in &self.rss {
                let one = self.rss.get(&(who.clone(), 1)).copied().unwrap_or(0);
                let per = if *c > 1 {
                    format!(
                        "{:.2}",
                        (*kib as f64 - one as f64) / 1024.0 / (*c - 1) as f64
                    )
                } else {
                    String::new()
                };
                println!("| {who} | {c} | {:.1} | {per} |", *kib as f64 / 1024.0);
            }
        }
    }
}
