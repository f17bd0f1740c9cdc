//! Load-and-fault run against the real `artifact-gateway` binary (`benches/load/fault.sh`).
//!
//! It starts an S3-compatible server in process (the tests' s3s-fs harness), a fault proxy in
//! front of it, the sample backend (`artifact-gateway sample-backend`, a child process it can
//! kill and restart) and the gateway (a child process on S3 storage through the proxy). Then
//! `CONNECTIONS` clients send mixed traffic — whole archives, archive ranges, single files,
//! job logs, job metadata and lists, private files with a token — for `DURATION_SECS`, while
//! the run moves through phases:
//!
//! | share of the run | what happens |
//! |---|---|
//! | 0–15 % | clean |
//! | 15–85 % | storage faults: connections reset or stalled past `storage.read_timeout` |
//! | 40–55 % | the backend is killed (SIGKILL) and restarted at 55 % |
//! | 85–100 % | clean again: the gateway must have recovered |
//!
//! and a few clients stop reading mid-download (the gateway must cut them after
//! `server.stall_timeout`). Every body that ends cleanly with a 2xx is compared byte by byte
//! with what the run wrote to storage: a mismatch is "delivered wrong" and must be 0. A body
//! that fails mid-stream is "aborted": the honest way to fail after the head.
//!
//! It reports requests, outcomes by kind and phase, p50/p99 latency, the gateway's RSS and
//! open file descriptors at the start and at the end, and its peak RSS. Every loop is bounded
//! by the run's deadline; every server listens on 127.0.0.1 only.

#[path = "../../../../tests/common/s3.rs"]
mod s3;

use std::collections::BTreeMap;
use std::io::Write as _;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Storage read timeout the gateway runs with: a stall longer than this is a storage fault.
const STORAGE_READ_TIMEOUT: Duration = Duration::from_secs(2);
/// How long an injected stall holds a storage response.
const STALL: Duration = Duration::from_secs(4);
/// The gateway's `server.stall_timeout`: clients that stop reading are cut after this.
const CLIENT_STALL_TIMEOUT: Duration = Duration::from_secs(3);
/// The gateway's `cache.ttl`: short, so that a killed backend shows within the run instead
/// of hiding behind cached authorisations.
const METADATA_TTL: Duration = Duration::from_secs(3);
/// Idle timeout of the gateway's pools (backend and storage): short, so that descriptors
/// counted after the run are the ones left behind, not idle connections.
const POOL_IDLE: Duration = Duration::from_secs(5);
/// Per response chunk from storage while faults are on: 1 in this many resets the connection.
const RESET_ONE_IN: u64 = 1500;
/// Per response chunk from storage while faults are on: 1 in this many stalls it.
const STALL_ONE_IN: u64 = 3000;

/// Size of the object that clients which stop reading ask for: larger than what the socket
/// buffers between them and the gateway can absorb, so the gateway's writes really stall.
const STALLED_OBJECT_BYTES: usize = 64 * 1024 * 1024;

/// A small PRNG (xorshift64*): deterministic per client, no dependency for ten lines.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// What the run wrote to storage, to check every answer against.
struct Corpus {
    archive: Vec<u8>,
    entries: Vec<(String, Vec<u8>)>,
    log: Vec<u8>,
}

fn build_corpus() -> Corpus {
    use zip::write::SimpleFileOptions;
    let mut rng = Rng::new(7);
    let mut entries = Vec::new();
    for i in 0..300 {
        let len = 200 + rng.below(32 * 1024) as usize;
        let text: Vec<u8> = (0..len)
            .map(|j| b"abcdefghij klmnop\n"[(j + i + rng.below(3) as usize) % 18])
            .collect();
        entries.push((format!("reports/{:03}/file-{i}.txt", i % 17), text));
    }
    let noise: Vec<u8> = (0..8 * 1024 * 1024).map(|_| rng.next() as u8).collect();
    entries.push(("big/stored.bin".to_owned(), noise));
    let text: Vec<u8> = (0..8 * 1024 * 1024u32)
        .map(|i| b"the quick brown fox jumps\n"[(i % 26) as usize] ^ ((i >> 20) as u8 & 1))
        .collect();
    entries.push(("big/deflated.txt".to_owned(), text));

    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, bytes) in &entries {
        let method = if name.ends_with(".bin") {
            zip::CompressionMethod::Stored
        } else {
            zip::CompressionMethod::Deflated
        };
        writer
            .start_file(
                name,
                SimpleFileOptions::default().compression_method(method),
            )
            .unwrap();
        writer.write_all(bytes).unwrap();
    }
    let archive = writer.finish().unwrap().into_inner();
    let log: Vec<u8> = (0..1_000_000u32)
        .map(|i| b"Running step 42: ok\n"[(i % 20) as usize])
        .collect();
    Corpus {
        archive,
        entries,
        log,
    }
}

/// Faults the proxy injects while `on`.
#[derive(Default)]
struct Faults {
    on: AtomicBool,
    resets: AtomicU64,
    stalls: AtomicU64,
}

/// A TCP proxy in front of the S3 server that, while faults are on, resets a connection or
/// stalls its response now and then.
async fn fault_proxy(listener: TcpListener, target: SocketAddr, faults: Arc<Faults>) {
    let mut seed = 1u64;
    loop {
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        seed += 1;
        let faults = Arc::clone(&faults);
        tokio::spawn(async move {
            let Ok(mut server) = TcpStream::connect(target).await else {
                return;
            };
            let mut client = client;
            let reset = {
                let (mut client_read, mut client_write) = client.split();
                let (mut server_read, mut server_write) = server.split();
                let up = async {
                    let _ = tokio::io::copy(&mut client_read, &mut server_write).await;
                    let _ = server_write.shutdown().await;
                    std::future::pending::<()>().await
                };
                let down = async {
                    let mut rng = Rng::new(seed);
                    let mut buf = vec![0u8; 64 * 1024];
                    loop {
                        let n = match server_read.read(&mut buf).await {
                            Ok(0) | Err(_) => return false,
                            Ok(n) => n,
                        };
                        if faults.on.load(Ordering::Relaxed) {
                            if rng.below(RESET_ONE_IN) == 0 {
                                faults.resets.fetch_add(1, Ordering::Relaxed);
                                // Half of what was read, then a reset: a body cut mid-way.
                                let _ = client_write.write_all(&buf[..n / 2]).await;
                                return true;
                            }
                            if rng.below(STALL_ONE_IN) == 0 {
                                faults.stalls.fetch_add(1, Ordering::Relaxed);
                                tokio::time::sleep(STALL).await;
                            }
                        }
                        if client_write.write_all(&buf[..n]).await.is_err() {
                            return false;
                        }
                    }
                };
                tokio::select! {
                    reset = down => reset,
                    () = up => false,
                }
            };
            if reset {
                let _ = client.set_zero_linger();
            }
        });
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The sample backend as a child process on a fixed port, so it can be killed and restarted.
fn start_backend(bin: &str, port: u16) -> Child {
    Command::new(bin)
        .args(["sample-backend", "--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the sample backend starts")
}

async fn wait_for_port(port: u16) {
    for _ in 0..300 {
        if TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("nothing listens on port {port} after 15 s");
}

/// `VmRSS`/`VmHWM` in KiB, from `/proc/<pid>/status`.
fn proc_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Op {
    Archive,
    ArchiveRange,
    Entry,
    LargeEntry,
    PrivateEntry,
    Trace,
    Job,
    JobList,
    StopReading,
}

impl Op {
    fn pick(rng: &mut Rng) -> Self {
        match rng.below(100) {
            0..=9 => Self::Archive,
            10..=19 => Self::ArchiveRange,
            20..=49 => Self::Entry,
            50..=54 => Self::LargeEntry,
            55..=59 => Self::PrivateEntry,
            60..=69 => Self::Trace,
            70..=86 => Self::Job,
            87..=97 => Self::JobList,
            _ => Self::StopReading,
        }
    }
}

/// How one request ended.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Outcome {
    /// 2xx and every byte as written.
    Ok,
    /// 2xx, clean end, but the bytes or their count differ: must never happen.
    Wrong,
    /// The body failed mid-stream: an honest abort.
    Aborted,
    /// A non-2xx answer (with a JSON `message`, else `StatusNotJson`).
    Status(u16),
    StatusNotJson(u16),
    /// No answer: connection refused or reset before the head.
    Transport,
    /// The client's own 60 s limit: a hang.
    TimedOut,
    /// A client that stopped reading was cut off by the gateway.
    StalledCut,
    /// A client that stopped reading was still being fed after the stall timeout.
    StalledNotCut,
}

#[derive(Default)]
struct Tally {
    /// (phase, op, outcome) → count
    counts: BTreeMap<(&'static str, Op, Outcome), u64>,
    /// Latency of requests answered in full and right, per op, in µs.
    latency: BTreeMap<Op, Vec<u64>>,
    wrong_examples: Vec<String>,
}

fn phase(fraction: f64) -> &'static str {
    match fraction {
        f if f < 0.15 => "1 clean",
        f if f < 0.40 => "2 storage faults",
        f if f < 0.55 => "3 faults + backend down",
        f if f < 0.85 => "4 storage faults",
        _ => "5 clean again",
    }
}

struct Run {
    base: String,
    corpus: Arc<Corpus>,
    started: Instant,
    duration: Duration,
    tally: Mutex<Tally>,
}

impl Run {
    fn fraction(&self) -> f64 {
        self.started.elapsed().as_secs_f64() / self.duration.as_secs_f64()
    }
}

/// Read a body to its end, comparing it with `expected`.
async fn check_body(mut response: reqwest::Response, expected: &[u8]) -> Result<(), Outcome> {
    let mut at = 0usize;
    let mut mismatch = false;
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let end = at + chunk.len();
                if end > expected.len() || expected[at..end] != chunk[..] {
                    mismatch = true;
                }
                at = end;
            }
            Ok(None) => break,
            Err(_) => return Err(Outcome::Aborted),
        }
    }
    if mismatch || at != expected.len() {
        Err(Outcome::Wrong)
    } else {
        Ok(())
    }
}

async fn one_request(run: &Run, client: &reqwest::Client, rng: &mut Rng, op: Op) -> Outcome {
    let corpus = &run.corpus;
    let small = &corpus.entries[rng.below(300) as usize];
    let (path, expected, range, token): (String, Vec<u8>, Option<String>, bool) = match op {
        Op::StopReading => (
            "/projects/1/jobs/103/artifacts".into(),
            Vec::new(),
            None,
            false,
        ),
        Op::Archive => (
            "/projects/1/jobs/104/artifacts".into(),
            corpus.archive.clone(),
            None,
            false,
        ),
        Op::ArchiveRange => {
            let len = corpus.archive.len() as u64;
            let start = rng.below(len);
            let end = (start + rng.below(4 * 1024 * 1024)).min(len - 1);
            (
                "/projects/1/jobs/101/artifacts".into(),
                corpus.archive[start as usize..=end as usize].to_vec(),
                Some(format!("bytes={start}-{end}")),
                false,
            )
        }
        Op::Entry => (
            format!("/projects/1/jobs/104/artifacts/{}", small.0),
            small.1.clone(),
            None,
            false,
        ),
        Op::LargeEntry => {
            let big = &corpus.entries[300 + rng.below(2) as usize];
            (
                format!("/projects/1/jobs/101/artifacts/{}", big.0),
                big.1.clone(),
                None,
                false,
            )
        }
        Op::PrivateEntry => (
            format!("/projects/2/jobs/201/artifacts/{}", small.0),
            small.1.clone(),
            None,
            true,
        ),
        Op::Trace => (
            "/projects/1/jobs/104/trace".into(),
            corpus.log.clone(),
            None,
            false,
        ),
        Op::Job => ("/projects/1/jobs/104".into(), Vec::new(), None, false),
        Op::JobList => (
            "/projects/1/jobs?per_page=5".into(),
            Vec::new(),
            None,
            false,
        ),
    };
    let mut request = client.get(format!("{}{path}", run.base));
    if let Some(range) = &range {
        request = request.header("Range", range);
    }
    if token {
        request = request.header("PRIVATE-TOKEN", "demo-token");
    }
    let response = match request.send().await {
        Ok(response) => response,
        Err(error) if error.is_timeout() => return Outcome::TimedOut,
        Err(_) => return Outcome::Transport,
    };
    let status = response.status().as_u16();
    if !response.status().is_success() {
        let body = response.bytes().await.unwrap_or_default();
        let json = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .is_some_and(|v| v.get("message").is_some());
        return if json {
            Outcome::Status(status)
        } else {
            Outcome::StatusNotJson(status)
        };
    }
    match op {
        Op::Job | Op::JobList => {
            let Ok(body) = response.bytes().await else {
                return Outcome::Aborted;
            };
            let value: Option<serde_json::Value> = serde_json::from_slice(&body).ok();
            let right = match (op, &value) {
                (Op::Job, Some(v)) => v["id"] == 104,
                (Op::JobList, Some(v)) => v.as_array().is_some_and(|a| !a.is_empty()),
                _ => false,
            };
            if right {
                Outcome::Ok
            } else {
                Outcome::Wrong
            }
        }
        Op::StopReading => {
            // Read one chunk, then nothing for longer than the stall timeout: the gateway
            // must cut the connection rather than keep a storage read open for us.
            let mut response = response;
            let mut total = match response.chunk().await {
                Ok(Some(chunk)) => chunk.len(),
                _ => return Outcome::Aborted,
            };
            tokio::time::sleep(CLIENT_STALL_TIMEOUT + Duration::from_secs(2)).await;
            loop {
                match response.chunk().await {
                    Ok(Some(chunk)) => total += chunk.len(),
                    Ok(None) if total == STALLED_OBJECT_BYTES => return Outcome::StalledNotCut,
                    Ok(None) => return Outcome::Wrong,
                    Err(_) => return Outcome::StalledCut,
                }
            }
        }
        _ => match check_body(response, &expected).await {
            Ok(()) => Outcome::Ok,
            Err(outcome) => {
                if outcome == Outcome::Wrong {
                    let mut tally = run.tally.lock().unwrap();
                    if tally.wrong_examples.len() < 5 {
                        tally
                            .wrong_examples
                            .push(format!("{op:?} {path} range={range:?} status={status}"));
                    }
                }
                outcome
            }
        },
    }
}

async fn client_loop(run: Arc<Run>, index: u64) {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let mut rng = Rng::new(1000 + index);
    while run.started.elapsed() < run.duration {
        let op = Op::pick(&mut rng);
        let at = phase(run.fraction());
        let sent = Instant::now();
        let outcome = one_request(&run, &client, &mut rng, op).await;
        let micros = sent.elapsed().as_micros() as u64;
        let mut tally = run.tally.lock().unwrap();
        if op != Op::StopReading && outcome == Outcome::Ok {
            tally.latency.entry(op).or_default().push(micros);
        }
        *tally.counts.entry((at, op, outcome)).or_default() += 1;
    }
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() {
    let duration = Duration::from_secs(env_or("DURATION_SECS", 120));
    let connections: u64 = env_or("CONNECTIONS", 64);
    let bin: String = env_or("GATEWAY_BIN", "target/release/artifact-gateway".to_owned());
    let corpus = build_corpus();
    eprintln!(
        "corpus: archive {} bytes, {} entries; log {} bytes",
        corpus.archive.len(),
        corpus.entries.len(),
        corpus.log.len()
    );

    let s3 = s3::S3Server::start("artifacts").await;
    // s3s-fs computes an object's ETag (MD5 of the whole file) on every GET and HEAD: the
    // 64 MiB object costs the server two full passes per request, which under load exceeds
    // the gateway's 2 s read timeout (the report's 504s).
    for job in ["1/104", "1/101", "2/201"] {
        s3.put(&format!("{job}/artifacts.zip"), &corpus.archive);
        s3.put(&format!("{job}/job.log"), &corpus.log);
    }
    let mut rng = Rng::new(3);
    let stalled: Vec<u8> = (0..STALLED_OBJECT_BYTES)
        .map(|_| rng.next() as u8)
        .collect();
    s3.put("1/103/artifacts.zip", &stalled);
    drop(stalled);
    let faults = Arc::new(Faults::default());
    let proxy = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy_addr = proxy.local_addr().unwrap();
    let s3_addr: SocketAddr = s3.endpoint().trim_start_matches("http://").parse().unwrap();
    tokio::spawn(fault_proxy(proxy, s3_addr, Arc::clone(&faults)));

    let backend_port = free_port();
    let mut backend = start_backend(&bin, backend_port);
    wait_for_port(backend_port).await;

    let (port, admin) = (free_port(), free_port());
    let dir = std::env::temp_dir().join(format!("agw-fault-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("gateway.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:{port}\"\nadmin_listen = \"127.0.0.1:{admin}\"\n\
             [log]\nfilter = \"warn\"\n\
             [server]\nstall_timeout = \"{}s\"\n\
             [cache]\nttl = \"{}s\"\n\
             [upstream]\nurl = \"http://127.0.0.1:{backend_port}\"\nresponse_timeout = \"5s\"\n\
             pool_idle_timeout = \"{idle}s\"\n\
             [storage]\nurl = \"s3://{}\"\nendpoint = \"http://{proxy_addr}\"\nregion = \"{}\"\n\
             access_key_id = \"{}\"\nsecret_access_key = \"{}\"\nallow_http = true\n\
             read_timeout = \"{}s\"\nconnect_timeout = \"2s\"\n\
             [storage.options]\npool_idle_timeout = \"{idle}s\"\n",
            CLIENT_STALL_TIMEOUT.as_secs(),
            METADATA_TTL.as_secs(),
            s3.bucket(),
            s3.region(),
            s3.access_key(),
            s3.secret_key(),
            STORAGE_READ_TIMEOUT.as_secs(),
            idle = POOL_IDLE.as_secs(),
        ),
    )
    .unwrap();
    // Kept after the run: its warnings say why requests failed.
    let gateway_log = std::env::temp_dir().join(format!("agw-fault-{}.log", std::process::id()));
    eprintln!(
        "gateway log (warnings and errors): {}",
        gateway_log.display()
    );
    let mut gateway = Command::new(&bin)
        .arg("--config")
        .arg(&config)
        .env_remove("RUST_LOG")
        .stdout(Stdio::from(
            std::fs::File::create(&gateway_log).expect("create the gateway's log"),
        ))
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the gateway starts");
    wait_for_port(port).await;
    let pid = gateway.id();

    let corpus = Arc::new(corpus);
    let base = format!("http://127.0.0.1:{port}/api/v4");
    let warm = Arc::new(Run {
        base: base.clone(),
        corpus: Arc::clone(&corpus),
        started: Instant::now(),
        duration,
        tally: Mutex::default(),
    });
    // One warm-up request of each kind, so "start" is a gateway that has served something.
    {
        let client = reqwest::Client::new();
        let mut rng = Rng::new(1);
        for op in [Op::Archive, Op::Entry, Op::Trace, Op::Job] {
            let outcome = one_request(&warm, &client, &mut rng, op).await;
            assert_eq!(outcome, Outcome::Ok, "warm-up {op:?}");
        }
    }
    let (rss_start, fds_start) = (proc_kib(pid, "VmRSS:"), open_fds(pid));
    let run = Arc::new(Run {
        started: Instant::now(),
        base,
        corpus,
        duration,
        tally: Mutex::default(),
    });

    let clients: Vec<_> = (0..connections)
        .map(|i| tokio::spawn(client_loop(Arc::clone(&run), i)))
        .collect();
    // The fault schedule.
    let at = |f: f64| run.started + duration.mul_f64(f);
    tokio::time::sleep_until(at(0.15).into()).await;
    faults.on.store(true, Ordering::Relaxed);
    eprintln!("storage faults on");
    tokio::time::sleep_until(at(0.40).into()).await;
    let _ = backend.kill();
    let _ = backend.wait();
    eprintln!("backend killed");
    tokio::time::sleep_until(at(0.55).into()).await;
    backend = start_backend(&bin, backend_port);
    wait_for_port(backend_port).await;
    eprintln!("backend restarted");
    tokio::time::sleep_until(at(0.85).into()).await;
    faults.on.store(false, Ordering::Relaxed);
    eprintln!("storage faults off");
    for client in clients {
        let _ = client.await;
    }
    // Let idle pooled connections expire before counting descriptors: what remains was
    // left behind.
    tokio::time::sleep(POOL_IDLE + Duration::from_secs(5)).await;
    let (rss_end, fds_end, peak) = (
        proc_kib(pid, "VmRSS:"),
        open_fds(pid),
        proc_kib(pid, "VmHWM:"),
    );
    let gateway_alive = gateway.try_wait().ok().flatten().is_none();
    let _ = gateway.kill();
    let _ = backend.kill();
    let _ = std::fs::remove_dir_all(&dir);

    report(
        &run,
        connections,
        &faults,
        (rss_start, rss_end, peak),
        (fds_start, fds_end),
        gateway_alive,
    );
}

fn report(
    run: &Run,
    connections: u64,
    faults: &Faults,
    (rss_start, rss_end, peak): (u64, u64, u64),
    (fds_start, fds_end): (usize, usize),
    alive: bool,
) {
    let tally = run.tally.lock().unwrap();
    let total: u64 = tally.counts.values().sum();
    let count = |f: &dyn Fn(&(&str, Op, Outcome)) -> bool| -> u64 {
        tally
            .counts
            .iter()
            .filter(|(k, _)| f(k))
            .map(|(_, v)| v)
            .sum()
    };
    let wrong = count(&|k| k.2 == Outcome::Wrong);
    println!("## Load-and-fault run\n");
    println!(
        "{} s, {connections} connections, {total} requests ({:.0} req/s); storage resets injected {}, stalls {}; gateway alive at the end: {alive}\n",
        run.duration.as_secs(),
        total as f64 / run.duration.as_secs_f64(),
        faults.resets.load(Ordering::Relaxed),
        faults.stalls.load(Ordering::Relaxed),
    );
    println!("| measure | value |\n|---|---|");
    println!("| bytes delivered wrong (2xx, clean end, bytes differ) | **{wrong}** |");
    println!(
        "| RSS start → end | {:.1} → {:.1} MiB |",
        rss_start as f64 / 1024.0,
        rss_end as f64 / 1024.0
    );
    println!("| peak RSS (VmHWM) | {:.1} MiB |", peak as f64 / 1024.0);
    println!("| open fds start → end | {fds_start} → {fds_end} |");
    println!();
    println!("### Outcomes by phase\n");
    let mut outcomes: Vec<Outcome> = tally.counts.keys().map(|k| k.2.clone()).collect();
    outcomes.sort();
    outcomes.dedup();
    let mut phases: Vec<&str> = tally.counts.keys().map(|k| k.0).collect();
    phases.sort();
    phases.dedup();
    print!("| phase |");
    for outcome in &outcomes {
        print!(" {outcome:?} |");
    }
    println!();
    println!("|---|{}", "---|".repeat(outcomes.len()));
    for phase in &phases {
        print!("| {phase} |");
        for outcome in &outcomes {
            print!(" {} |", count(&|k| k.0 == *phase && k.2 == *outcome));
        }
        println!();
    }
    println!("\n### Outcomes other than Ok, by request\n");
    println!("| request | outcome | count |\n|---|---|---|");
    let mut by_op: BTreeMap<(Op, Outcome), u64> = BTreeMap::new();
    for ((_, op, outcome), n) in &tally.counts {
        if *outcome != Outcome::Ok {
            *by_op.entry((*op, outcome.clone())).or_default() += n;
        }
    }
    for ((op, outcome), n) in &by_op {
        println!("| {op:?} | {outcome:?} | {n} |");
    }
    println!("\n### Latency of requests answered in full and right (ms)\n");
    println!("| request | count | p50 | p99 |\n|---|---|---|---|");
    let mut all = Vec::new();
    for (op, samples) in &tally.latency {
        let mut sorted = samples.clone();
        sorted.sort_unstable();
        all.extend_from_slice(&sorted);
        println!(
            "| {op:?} | {} | {:.2} | {:.2} |",
            sorted.len(),
            percentile(&sorted, 0.5),
            percentile(&sorted, 0.99)
        );
    }
    all.sort_unstable();
    println!(
        "| all | {} | {:.2} | {:.2} |",
        all.len(),
        percentile(&all, 0.5),
        percentile(&all, 0.99)
    );
    if !tally.wrong_examples.is_empty() {
        println!("\nWrong deliveries (first few):");
        for example in &tally.wrong_examples {
            println!("- {example}");
        }
    }
    if wrong > 0 || !alive {
        std::process::exit(1);
    }
}
