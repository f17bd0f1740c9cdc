//! The gateway on S3: storage mode, upstream mode and their peers
//! (`benches/load/upstream.sh`).
//!
//! In one process: an S3-compatible server (the tests' s3s-fs harness) and the sample
//! backend in its GitLab-faithful mode (GitLab's job-token rules; archives at GitLab's
//! hashed `@final` keys, the archive route answering 302 to a freshly presigned URL). As
//! child processes, all in front of that one backend and that one S3 server: a gateway in
//! storage mode (archives found at `{project_id}/{job_id}/artifacts.zip`), one in upstream
//! mode, one in upstream mode with `cache.max_bytes = 0` (unless `NO_CACHE=0`), and nginx
//! (unless `PEERS=0`). Every archive is uploaded, with the same bytes, at both keys.
//!
//! Measured, round by round, the gateways and the peers (`peers.rs`: nginx `proxy_pass`
//! and python remotezip, both given the backend's presigned URLs) taking turns in an order
//! that rotates every round, every body checked:
//! 1. cold single file: the first request for one file of an archive that gateway has not
//!    opened (fresh jobs every round); remotezip opening the same archives;
//! 2. warm single file: the same file again and again, C clients for a fixed time:
//!    requests/s, p50, p99; remotezip with the archive kept open (C=1);
//! 3. whole-archive downloads of a large incompressible archive, C at once: MB/s and CPU
//!    per GB; nginx `proxy_pass` of the presigned URL;
//! 4. the backend's two answers the modes wait for, asked directly: the archive route's
//!    302 and the job lookup's JSON;
//! 5. one large deflated entry: MB/s and CPU per GB; remotezip reading it.
//!
//! Then, per gateway, whole-archive passes at each of `RSS_CONCS` with the peak RSS reset
//! before each: memory per S3 stream.
//!
//! And, from the S3 server's and the backend's own counters, the round trips per request
//! of each class and gateway. Progress goes to stderr, the Markdown report to stdout. Every
//! loop is bounded (by a count or a deadline), every request has a timeout, everything
//! listens on 127.0.0.1, and the servers are stopped by their PIDs.

#[path = "../../../../tests/common/s3.rs"]
mod s3;

mod corpus;
mod gateway;
mod load;
mod peers;
mod relay;
mod report;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use object_store::ObjectStoreExt as _;
use sample_backend::{
    ArtifactStore, BackendBuilder, DownloadMode, JobSpec, JobStatus, SampleBackend, Visibility,
};

use gateway::{Gateway, Mode, S3Access};
use report::{Class, Report};

const PROJECT: u64 = 1;
/// The job whose file the warm requests read.
const WARM_JOB: u64 = 1;
/// The job with the large archive.
const BIG_JOB: u64 = 2;
/// The job whose archive is one large deflated text file.
const TEXT_JOB: u64 = 3;
/// Jobs opened once by every gateway before the rounds (pools and code paths warmed).
const WARMUP_JOBS: [u64; 3] = [10, 11, 12];
/// The first of the cold jobs; round r uses `COLD_BASE + r * per_round ..`.
const COLD_BASE: u64 = 1000;

/// Counters at the start of a phase.
struct Mark {
    gets: usize,
    heads: usize,
    cpu: f64,
}

/// The run's knobs, all environment variables.
pub struct Knobs {
    pub rounds: usize,
    pub cold_per_round: usize,
    pub entries: usize,
    pub warm_secs: f64,
    pub warm_concs: Vec<usize>,
    pub archive_mib: usize,
    pub archive_concs: Vec<usize>,
    pub backend_samples: usize,
    pub no_cache: bool,
    pub relay: bool,
    pub bin: String,
    /// nginx and remotezip next to the gateways.
    pub peers: bool,
    pub nginx: String,
    pub text_mib: usize,
    /// Concurrencies of the S3 memory passes (after the rounds); empty: none.
    pub rss_concs: Vec<usize>,
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn env_list(name: &str, default: &str) -> Vec<usize> {
    std::env::var(name)
        .unwrap_or_else(|_| default.to_owned())
        .split_whitespace()
        .filter_map(|v| v.parse().ok())
        .filter(|&c| c > 0)
        .collect()
}

impl Knobs {
    fn from_env() -> Self {
        let mut rounds: usize = env_or("ROUNDS", 5usize).max(1);
        if rounds.is_multiple_of(2) {
            rounds += 1; // an odd count has a middle round: the median is one of them
        }
        Knobs {
            rounds,
            cold_per_round: env_or("COLD_PER_ROUND", 40usize).max(1),
            entries: env_or("ENTRIES", 2000usize).max(corpus::ENTRY_INDEX + 1),
            warm_secs: env_or("WARM_SECS", 3.0f64).clamp(0.2, 60.0),
            warm_concs: env_list("WARM_CONCS", "1 16"),
            archive_mib: env_or("ARCHIVE_MB", 200usize).clamp(4, 2048),
            archive_concs: env_list("ARCHIVE_CONCS", "1 4"),
            backend_samples: env_or("BACKEND_SAMPLES", 200usize).max(1),
            no_cache: env_or("NO_CACHE", 1u8) != 0,
            relay: env_or("S3_RELAY", 1u8) != 0,
            bin: env_or("GATEWAY_BIN", "target/release/artifact-gateway".to_owned()),
            peers: env_or("PEERS", 1u8) != 0,
            nginx: env_or("NGINX", "nginx".to_owned()),
            text_mib: env_or("TEXT_MB", 100usize).clamp(1, 1024),
            rss_concs: env_list("RSS_CONCS", "1 32"),
        }
    }

    fn cold_jobs(&self) -> impl Iterator<Item = u64> {
        COLD_BASE..COLD_BASE + (self.rounds * self.cold_per_round) as u64
    }
}

fn backend_builder(knobs: &Knobs, store: ArtifactStore) -> BackendBuilder {
    let mut builder = BackendBuilder::new()
        .user("bench", load::TOKEN)
        .project(PROJECT, "bench/app", Visibility::Private, &["bench"])
        .gitlab_job_token_rules()
        .artifacts_in(store);
    let jobs = [WARM_JOB, BIG_JOB, TEXT_JOB]
        .into_iter()
        .chain(WARMUP_JOBS)
        .chain(knobs.cold_jobs());
    for job in jobs {
        builder = builder
            .job(JobSpec::new(job, PROJECT, "build", "main", JobStatus::Success).with_archive(1));
    }
    builder
}

/// The backend's signer: presigned URLs name `endpoint` (the relay, or the S3 server).
fn signer(s3: &s3::S3Server, endpoint: &str) -> object_store::aws::AmazonS3 {
    object_store::aws::AmazonS3Builder::new()
        .with_endpoint(endpoint)
        .with_bucket_name(s3.bucket())
        .with_region(s3.region())
        .with_access_key_id(s3.access_key())
        .with_secret_access_key(s3.secret_key())
        .with_allow_http(true)
        .with_virtual_hosted_style_request(false)
        .build()
        .expect("S3 signer")
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// Upload `bytes` through the S3 API (not by writing the file): s3s-fs then keeps the ETag
/// in its sidecar, instead of computing the MD5 of the whole object on every GET and HEAD.
async fn upload(store: &dyn object_store::ObjectStore, key: &str, bytes: &bytes::Bytes) {
    store
        .put(&object_store::path::Path::from(key), bytes.clone().into())
        .await
        .unwrap_or_else(|e| panic!("upload {key}: {e}"));
}

/// Both keys of a job's archive: the storage-mode template and the backend's hashed key.
fn keys(backend: &SampleBackend, job: u64) -> [String; 2] {
    [
        format!("{PROJECT}/{job}/artifacts.zip"),
        backend
            .archive_key(job)
            .unwrap_or_else(|| panic!("the backend has no archive key for job {job}")),
    ]
}

fn entry_url(gateway: &Gateway, job: u64) -> String {
    format!(
        "{}/projects/{PROJECT}/jobs/{job}/artifacts/{}",
        gateway.api(),
        corpus::entry_name(corpus::ENTRY_INDEX)
    )
}

fn text_url(gateway: &Gateway) -> String {
    format!(
        "{}/projects/{PROJECT}/jobs/{TEXT_JOB}/artifacts/{}",
        gateway.api(),
        corpus::TEXT_ENTRY
    )
}

fn archive_url(gateway: &Gateway, job: u64) -> String {
    format!("{}/projects/{PROJECT}/jobs/{job}/artifacts", gateway.api())
}

fn main() {
    let knobs = Knobs::from_env();
    let servers = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("servers")
        .enable_all()
        .build()
        .unwrap();
    let (s3, endpoint, backend) = servers.block_on(async {
        let s3 = s3::S3Server::start("artifacts").await;
        // What the gateways and the presigned URLs name: the relay, unless S3_RELAY=0.
        let endpoint = if knobs.relay {
            let target = s3.endpoint().trim_start_matches("http://").parse().unwrap();
            format!("http://{}", relay::start(target).await)
        } else {
            s3.endpoint()
        };
        let store = ArtifactStore::new(signer(&s3, &endpoint), DownloadMode::Redirect);
        let backend = backend_builder(&knobs, store)
            .start()
            .await
            .expect("the sample backend starts");
        (s3, endpoint, backend)
    });
    let clients = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("clients")
        .enable_all()
        .build()
        .unwrap();
    let ok = clients.block_on(run(&knobs, &s3, &endpoint, &backend));
    drop(backend);
    drop(s3);
    drop(servers);
    if !ok {
        std::process::exit(1);
    }
}

/// Everything after the servers are up; runs on the main thread (the gateways' parent).
async fn run(knobs: &Knobs, s3: &s3::S3Server, endpoint: &str, backend: &SampleBackend) -> bool {
    let load_start = load_average();
    let started = Instant::now();
    eprintln!(
        "servers: S3 {} (gateways and presigned URLs: {endpoint}) bucket {}, backend {}; load average {load_start}",
        s3.endpoint(),
        s3.bucket(),
        backend.url()
    );

    // Archives: generated off the runtime, each uploaded at both keys.
    let store = s3.object_store();
    let many_jobs: Vec<u64> = [WARM_JOB]
        .into_iter()
        .chain(WARMUP_JOBS)
        .chain(knobs.cold_jobs())
        .collect();
    let entries = knobs.entries;
    let sizes: Vec<usize> = futures_util::stream::iter(many_jobs.iter().copied())
        .map(|job| {
            let store = Arc::clone(&store);
            let keys = keys(backend, job);
            async move {
                let bytes =
                    tokio::task::spawn_blocking(move || corpus::many_entry_archive(job, entries))
                        .await
                        .unwrap();
                let bytes = bytes::Bytes::from(bytes);
                for key in &keys {
                    upload(store.as_ref(), key, &bytes).await;
                }
                bytes.len()
            }
        })
        .buffer_unordered(2)
        .collect()
        .await;
    let mib = knobs.archive_mib;
    let big = tokio::task::spawn_blocking(move || corpus::big_archive(mib))
        .await
        .unwrap();
    let big = bytes::Bytes::from(big);
    for key in keys(backend, BIG_JOB) {
        upload(store.as_ref(), &key, &big).await;
    }
    let big = Arc::new(big.to_vec());
    let mib = knobs.text_mib;
    let (text_zip, text) = tokio::task::spawn_blocking(move || corpus::deflated_archive(mib))
        .await
        .unwrap();
    let text_zip = bytes::Bytes::from(text_zip);
    for key in keys(backend, TEXT_JOB) {
        upload(store.as_ref(), &key, &text_zip).await;
    }
    let text = Arc::new(text);
    eprintln!(
        "uploaded {} archives of {} entries ({}–{} bytes), one of {} bytes and one of {} bytes ({} of text), at two keys each, in {:.1} s",
        sizes.len(),
        knobs.entries,
        sizes.iter().min().unwrap(),
        sizes.iter().max().unwrap(),
        big.len(),
        text_zip.len(),
        text.len(),
        started.elapsed().as_secs_f64()
    );

    // The gateways, started from this (the main) thread.
    let scratch = std::env::temp_dir().join(format!("agw-upstream.{}", std::process::id()));
    std::fs::create_dir_all(&scratch).unwrap();
    let access = S3Access {
        endpoint: endpoint.to_owned(),
        bucket: s3.bucket().to_owned(),
        region: s3.region().to_owned(),
        access_key: s3.access_key().to_owned(),
        secret_key: s3.secret_key().to_owned(),
    };
    let mut modes = vec![Mode::Storage, Mode::Upstream];
    if knobs.no_cache {
        modes.push(Mode::UpstreamNoCache);
    }
    let mut gateways: Vec<Gateway> = modes
        .iter()
        .map(|&mode| Gateway::start(&knobs.bin, mode, &backend.url(), &access, &scratch))
        .collect();
    eprintln!(
        "gateways: {}; configs and logs in {}",
        gateways
            .iter()
            .map(|g| format!("{} on {} (pid {})", g.mode.label(), g.port, g.pid()))
            .collect::<Vec<_>>()
            .join(", "),
        scratch.display()
    );

    let nginx = knobs.peers.then(|| {
        peers::Nginx::start(
            &knobs.nginx,
            endpoint.trim_start_matches("http://"),
            &scratch,
        )
    });
    let mut peer_report = peers::PeerReport::default();
    // The peers' index in each round's order: after the gateways, rotated with them.
    let peer = gateways.len();
    let with_peer = |order: &[usize]| -> Vec<usize> {
        let mut all: Vec<usize> = order.to_vec();
        if knobs.peers {
            let at = order.iter().position(|&g| g == 0).unwrap_or(0);
            all.insert(at, peer);
        }
        all
    };
    let text_what = format!("{} MiB deflated entry", knobs.text_mib);

    let failures: load::Shared = Arc::default();
    let warm_expected = Arc::new(corpus::entry_text(WARM_JOB, corpus::ENTRY_INDEX));
    // Warm-up, not measured: the warm file, the archive, and a few cold jobs per gateway.
    for gateway in &gateways {
        let mut requests = vec![(entry_url(gateway, WARM_JOB), Arc::clone(&warm_expected))];
        for job in WARMUP_JOBS {
            let expected = Arc::new(corpus::entry_text(job, corpus::ENTRY_INDEX));
            requests.push((entry_url(gateway, job), expected));
        }
        load::cold(&requests, &failures).await;
        load::archive(&text_url(gateway), Arc::clone(&text), 1, &failures).await;
        load::archive(
            &archive_url(gateway, BIG_JOB),
            Arc::clone(&big),
            1,
            &failures,
        )
        .await;
    }

    let mut report = Report::new(knobs, modes.clone());
    report.cold_archive_bytes = (*sizes.iter().min().unwrap(), *sizes.iter().max().unwrap());
    report.big_archive_bytes = big.len();
    let n = gateways.len();
    let pids: Vec<u32> = gateways.iter().map(Gateway::pid).collect();
    // What a phase cost elsewhere: S3 requests, backend requests, gateway CPU.
    let phase = |report: &mut Report, g: usize, class: Class, before: Mark, requests| {
        let trips = report.trips.entry((class, g)).or_default();
        trips.requests += requests as u64;
        trips.gets += (s3.get_count() - before.gets) as u64;
        trips.heads += (s3.head_count() - before.heads) as u64;
        trips.backend += backend.requests().len() as u64;
        trips.cpu += gateway::cpu_seconds(pids[g]) - before.cpu;
        backend.clear_requests();
    };
    let mark = |g: usize| {
        backend.clear_requests();
        Mark {
            gets: s3.get_count(),
            heads: s3.head_count(),
            cpu: gateway::cpu_seconds(pids[g]),
        }
    };

    for round in 0..knobs.rounds {
        let order: Vec<usize> = (0..n).map(|k| (round + k) % n).collect();
        eprintln!(
            "round {}/{} (order: {}), load average {}, {:.0} s in",
            round + 1,
            knobs.rounds,
            order
                .iter()
                .map(|&g| modes[g].label())
                .collect::<Vec<_>>()
                .join(" → "),
            load_average(),
            started.elapsed().as_secs_f64()
        );
        // 1. Cold single files: this round's jobs, new to every gateway.
        let first = COLD_BASE + (round * knobs.cold_per_round) as u64;
        let jobs: Vec<u64> = (first..first + knobs.cold_per_round as u64).collect();
        for &g in &with_peer(&order) {
            if g == peer {
                let mut urls = Vec::new();
                for &job in &jobs {
                    urls.push(peers::presigned(&backend.url(), PROJECT, job).await);
                }
                backend.clear_requests();
                let gets = s3.get_count();
                // The script's `cold` mode takes (size, URL) pairs: each job's entry differs.
                let args: Vec<String> = urls
                    .iter()
                    .zip(&jobs)
                    .flat_map(|(url, &job)| {
                        [
                            corpus::entry_text(job, corpus::ENTRY_INDEX)
                                .len()
                                .to_string(),
                            url.clone(),
                        ]
                    })
                    .collect();
                let name = corpus::entry_name(corpus::ENTRY_INDEX);
                let r = peers::remotezip("cold", &args, &name, 0, 0.0, &failures).await;
                let latencies = r.latencies;
                peer_report.add_latency(
                    "cold single file",
                    "remotezip",
                    &latencies,
                    s3.get_count() - gets,
                );
                continue;
            }
            let requests: Vec<_> = jobs
                .iter()
                .map(|&job| {
                    let expected = Arc::new(corpus::entry_text(job, corpus::ENTRY_INDEX));
                    (entry_url(&gateways[g], job), expected)
                })
                .collect();
            let ranges_before = s3.get_ranges().len();
            let before = mark(g);
            let gets = s3.get_count();
            let pass = load::cold(&requests, &failures).await;
            peer_report.add_latency(
                "cold single file",
                modes[g].label(),
                &pass.latencies,
                s3.get_count() - gets,
            );
            phase(&mut report, g, Class::Cold, before, pass.latencies.len());
            if round == 0 {
                // The storage reads of the first cold request, to show what they are.
                let ranges = s3.get_ranges();
                let per = (ranges.len() - ranges_before) / jobs.len().max(1);
                report.first_cold_ranges.insert(
                    g,
                    ranges[ranges_before..ranges_before + per.min(ranges.len() - ranges_before)]
                        .to_vec(),
                );
            }
            report.add_cold(g, &pass);
        }
        // 4. The backend's answers, directly, between the gateways' phases.
        let (routes, lookups) = load::backend(
            &backend.url(),
            PROJECT,
            WARM_JOB,
            knobs.backend_samples,
            endpoint,
            &failures,
        )
        .await;
        backend.clear_requests();
        report.add_backend(routes, lookups);
        // 2. Warm single file.
        for &conc in &knobs.warm_concs {
            for &g in &with_peer(&order) {
                if g == peer {
                    if conc == 1 {
                        let url = peers::presigned(&backend.url(), PROJECT, WARM_JOB).await;
                        backend.clear_requests();
                        let gets = s3.get_count();
                        let name = corpus::entry_name(corpus::ENTRY_INDEX);
                        let r = peers::remotezip(
                            "warm",
                            &[url],
                            &name,
                            warm_expected.len(),
                            knobs.warm_secs,
                            &failures,
                        )
                        .await;
                        // The unmeasured first read (open: tail and central directory) excluded.
                        let gets = s3.get_count() - gets;
                        let first = gets.saturating_sub(r.latencies.len());
                        peer_report.add_latency(
                            "warm single file, C=1",
                            "remotezip, zip kept open",
                            &r.latencies,
                            gets - first,
                        );
                    }
                    continue;
                }
                let before = mark(g);
                let gets = s3.get_count();
                let pass = load::warm(
                    &entry_url(&gateways[g], WARM_JOB),
                    Arc::clone(&warm_expected),
                    conc,
                    Duration::from_secs_f64(knobs.warm_secs),
                    &failures,
                )
                .await;
                peer_report.add_latency(
                    &format!("warm single file, C={conc}"),
                    modes[g].label(),
                    &pass.latencies,
                    s3.get_count() - gets,
                );
                // The unmeasured first request of each client is counted too.
                phase(
                    &mut report,
                    g,
                    Class::Warm(conc),
                    before,
                    pass.latencies.len() + conc,
                );
                report.add_warm(g, conc, &pass);
            }
        }
        // 3. Whole archives.
        for &conc in &knobs.archive_concs {
            let what = format!("whole archive, C={conc}");
            for &g in &with_peer(&order) {
                if let (true, Some(nginx)) = (g == peer, &nginx) {
                    let url = nginx.url(
                        &peers::presigned(&backend.url(), PROJECT, BIG_JOB).await,
                        endpoint,
                    );
                    backend.clear_requests();
                    let cpu = nginx.cpu_seconds();
                    let pass = load::archive(&url, Arc::clone(&big), conc, &failures).await;
                    let cpu = nginx.cpu_seconds() - cpu;
                    peer_report.add_throughput(
                        &what,
                        "nginx proxy_pass",
                        pass.latencies.len() * big.len(),
                        pass.wall,
                        cpu,
                    );
                    continue;
                }
                let before = mark(g);
                let cpu = gateway::cpu_seconds(pids[g]);
                let pass = load::archive(
                    &archive_url(&gateways[g], BIG_JOB),
                    Arc::clone(&big),
                    conc,
                    &failures,
                )
                .await;
                phase(
                    &mut report,
                    g,
                    Class::Archive(conc),
                    before,
                    pass.latencies.len(),
                );
                let cpu = gateway::cpu_seconds(pids[g]) - cpu;
                peer_report.add_throughput(
                    &what,
                    modes[g].label(),
                    pass.latencies.len() * big.len(),
                    pass.wall,
                    cpu,
                );
                report.add_archive(g, conc, big.len(), &pass);
            }
        }
        // 5. One large deflated entry.
        for &g in &with_peer(&order) {
            if g == peer {
                let url = peers::presigned(&backend.url(), PROJECT, TEXT_JOB).await;
                backend.clear_requests();
                let r = peers::remotezip(
                    "read",
                    &[url],
                    corpus::TEXT_ENTRY,
                    text.len(),
                    0.0,
                    &failures,
                )
                .await;
                if !r.cpu.is_nan() && r.cpu > 0.0 {
                    peer_report.add_throughput(&text_what, "remotezip", text.len(), r.wall, r.cpu);
                }
                continue;
            }
            let cpu = gateway::cpu_seconds(pids[g]);
            let pass =
                load::archive(&text_url(&gateways[g]), Arc::clone(&text), 1, &failures).await;
            let cpu = gateway::cpu_seconds(pids[g]) - cpu;
            backend.clear_requests();
            peer_report.add_throughput(
                &text_what,
                modes[g].label(),
                pass.latencies.len() * text.len(),
                pass.wall,
                cpu,
            );
        }
        let f = failures.lock().unwrap();
        if f.count > 0 {
            eprintln!(
                "  failed checks so far: {} (first: {:?})",
                f.count,
                f.examples.first()
            );
        }
    }

    // The rounds' peak, before the memory passes reset it.
    for (g, gateway) in gateways.iter().enumerate() {
        report
            .peak_rss_kib
            .insert(g, gateway::peak_rss_kib(gateway.pid()));
    }
    // Memory per S3 stream: the peak of each pass alone.
    for &conc in &knobs.rss_concs {
        for (g, gateway) in gateways.iter().enumerate() {
            eprintln!("memory: {} C={conc}", gateway.mode.label());
            gateway::reset_peak_rss(pids[g]);
            load::archive(
                &archive_url(gateway, BIG_JOB),
                Arc::clone(&big),
                conc,
                &failures,
            )
            .await;
            peer_report.rss.insert(
                (gateway.mode.label().to_owned(), conc),
                gateway::peak_rss_kib(pids[g]),
            );
        }
    }
    backend.clear_requests();

    let mut alive = BTreeMap::new();
    for (g, gateway) in gateways.iter_mut().enumerate() {
        alive.insert(g, gateway.alive());
    }
    report.alive = alive;
    report.load = (load_start, load_average());
    report.seconds = started.elapsed().as_secs_f64();
    drop(gateways);
    let failures = failures.lock().unwrap();
    report.print(&failures);
    if knobs.peers || !knobs.rss_concs.is_empty() {
        peer_report.print(|what| {
            if what.starts_with("whole archive") {
                "nginx proxy_pass"
            } else {
                "remotezip"
            }
        });
    }
    drop(nginx);
    let ok = failures.count == 0 && report.alive.values().all(|&a| a);
    if ok && std::env::var("KEEP_SCRATCH").ok().as_deref() != Some("1") {
        let _ = std::fs::remove_dir_all(&scratch);
    }
    ok
}
