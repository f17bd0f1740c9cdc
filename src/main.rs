//! The `artifact-gateway` binary: parse arguments, load configuration, set up logging, run
//! the gateway until SIGTERM or SIGINT.

use std::path::PathBuf;
use std::process::ExitCode;

use artifact_gateway::config::{ArtifactSource, Config, LogFormat};
use artifact_gateway::listener::RunningGateway;
use clap::{Parser, Subcommand};

#[cfg(all(feature = "jemalloc", feature = "mimalloc"))]
compile_error!("features `jemalloc` and `mimalloc` each choose the allocator: enable one");

#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(version, about = "Streaming reverse proxy for GitLab CI job artifacts")]
#[command(args_conflicts_with_subcommands = true)]
// The --demo flags say `conflicts_with = "config"` rather than `requires = "demo"`: a bool
// flag's implicit default `false` satisfies `requires`, while conflicts count only what was
// given, and without --demo there must be a --config.
struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    /// Configuration file (TOML). Every key can be overridden by an environment variable,
    /// see the README.
    #[arg(long, value_name = "FILE", required_unless_present_any = ["demo"])]
    config: Option<PathBuf>,
    /// Run on the embedded default: a sample jobs backend and local sample artifacts.
    #[arg(long, conflicts_with = "config")]
    demo: bool,
    /// Listen address for --demo.
    #[arg(long, default_value = "127.0.0.1:8080", conflicts_with = "config")]
    listen: std::net::SocketAddr,
    /// Storage directory for --demo (default: a new temporary directory). Files already
    /// there are kept, so a benchmark can put its own archives in place first. With
    /// `--source upstream` the archives go under DIR/objects, at the backend's keys.
    #[arg(long, value_name = "DIR", conflicts_with = "config")]
    storage_dir: Option<PathBuf>,
    /// Where --demo's gateway finds archives (`artifacts.source`): `storage` (key templates
    /// over the storage directory) or `upstream` (the sample backend's archive routes, which
    /// answer as GitLab with object storage: a 302 to a presigned URL).
    #[arg(long, value_enum, default_value = "storage", conflicts_with = "config")]
    source: DemoSource,
    /// Most threads of the blocking pool (local file reads, file opens). Default: four per
    /// core, at least 8, at most 64.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=1024))]
    blocking_threads: Option<u16>,
}

/// The blocking pool's default size. Its work is local file reads (one 256 KiB chunk per
/// download at a time, or one small entry) and the opens of files not kept open. From the
/// page cache a read is a memory copy, bound by the cores: threads beyond them add only
/// stacks and allocator arenas, which is how memory used to grow with the pool. From a
/// disk a read waits on the device, and a few reads in flight per core keep its queue
/// busy. Four per core covers both; at least 8 for small machines and containers that
/// report one core, at most 64.
fn default_blocking_threads() -> usize {
    let cores = std::thread::available_parallelism().map_or(2, usize::from);
    (cores * 4).clamp(8, 64)
}

/// `--source`, as `artifacts.source` spells it.
#[derive(Clone, Copy, clap::ValueEnum)]
enum DemoSource {
    Storage,
    Upstream,
}

impl From<DemoSource> for ArtifactSource {
    fn from(source: DemoSource) -> Self {
        match source {
            DemoSource::Storage => ArtifactSource::Storage,
            DemoSource::Upstream => ArtifactSource::Upstream,
        }
    }
}

/// Tools for containers and the deployment examples.
#[derive(Subcommand)]
enum Command {
    /// Run only the sample jobs backend (what --demo runs in-process).
    SampleBackend {
        #[arg(long, default_value = "127.0.0.1:3000")]
        listen: std::net::SocketAddr,
    },
    /// Write the sample archives and job logs under DIR (keys as in the default layout).
    SampleData { dir: PathBuf },
    /// GET a URL and exit 0 on a 2xx answer: a health check without curl in the image.
    Probe {
        url: String,
        #[arg(long, default_value = "5")]
        timeout_secs: u64,
    },
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        // A bound keeps the thread count (and its memory) from following the client count.
        .max_blocking_threads(
            args.blocking_threads
                .map_or_else(default_blocking_threads, usize::from),
        )
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("artifact-gateway: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("artifact-gateway: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), String> {
    match args.command {
        Some(Command::SampleBackend { listen }) => return sample_backend(listen).await,
        Some(Command::SampleData { dir }) => return sample_data(&dir),
        Some(Command::Probe { url, timeout_secs }) => return probe(&url, timeout_secs).await,
        None => {}
    }
    let demo = if args.demo {
        Some(start_demo(&args).await?)
    } else {
        None
    };
    let config = match (&demo, &args.config) {
        (Some(demo), _) => demo.config.clone(),
        (None, Some(path)) => Config::load(path).map_err(|e| e.to_string())?,
        (None, None) => unreachable!("clap requires --config unless --demo"),
    };
    init_logging(config.log.format, &config.log.filter);
    let gateway = RunningGateway::start(config.clone())
        .await
        .map_err(|e| format!("cannot start on {}: {e}", config.listen))?;
    if let Some(demo) = &demo {
        println!("{}", demo.instructions(gateway.addr()));
    }
    #[cfg(unix)]
    if let Some(acceptor) = gateway.tls().cloned() {
        let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            .map_err(|e| format!("cannot listen for SIGHUP: {e}"))?;
        tokio::spawn(async move {
            while hup.recv().await.is_some() {
                tracing::info!("SIGHUP received: reloading the TLS certificate");
                // A failed reload is logged inside; the current certificate stays.
                let _ = acceptor.reload();
            }
        });
    }
    wait_for_signal().await;
    gateway.shutdown();
    gateway.wait().await;
    Ok(())
}

#[cfg(feature = "demo")]
async fn start_demo(args: &Args) -> Result<artifact_gateway::demo::Demo, String> {
    artifact_gateway::demo::Demo::start(args.listen, args.storage_dir.clone(), args.source.into())
        .await
}

#[cfg(feature = "demo")]
fn sample_data(dir: &std::path::Path) -> Result<(), String> {
    artifact_gateway::demo::write_samples(dir)
        .map_err(|e| format!("cannot write samples to {}: {e}", dir.display()))
}

/// Built without the `demo` feature: the sample backend is not in the binary.
#[cfg(not(feature = "demo"))]
const NO_DEMO: &str = "built without the `demo` feature (cargo build --features demo)";

#[cfg(not(feature = "demo"))]
async fn start_demo(_args: &Args) -> Result<Demo, String> {
    Err(NO_DEMO.into())
}

#[cfg(not(feature = "demo"))]
fn sample_data(_dir: &std::path::Path) -> Result<(), String> {
    Err(NO_DEMO.into())
}

#[cfg(not(feature = "demo"))]
async fn sample_backend(_listen: std::net::SocketAddr) -> Result<(), String> {
    Err(NO_DEMO.into())
}

/// Stands for the demo in a build without it (never constructed).
#[cfg(not(feature = "demo"))]
struct Demo {
    config: Config,
}

#[cfg(not(feature = "demo"))]
impl Demo {
    fn instructions(&self, _addr: std::net::SocketAddr) -> String {
        String::new()
    }
}

#[cfg(feature = "demo")]
async fn sample_backend(listen: std::net::SocketAddr) -> Result<(), String> {
    init_logging(LogFormat::Human, "info");
    let backend = sample_backend::BackendBuilder::sample_data()
        .start_on(listen)
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    println!("sample jobs backend on {}", backend.url());
    wait_for_signal().await;
    backend.shutdown();
    Ok(())
}

async fn probe(url: &str, timeout_secs: u64) -> Result<(), String> {
    use http_body_util::Empty;
    use hyper_util::client::legacy::Client;
    let uri: http::Uri = url.parse().map_err(|e| format!("{url}: {e}"))?;
    let client: Client<_, Empty<bytes::Bytes>> =
        Client::builder(hyper_util::rt::TokioExecutor::new()).build_http();
    let answer = tokio::time::timeout(
        std::time::Duration::from_secs(timeout_secs),
        client.get(uri),
    )
    .await
    .map_err(|_| format!("{url}: no answer within {timeout_secs}s"))?
    .map_err(|e| format!("{url}: {e}"))?;
    if answer.status().is_success() {
        Ok(())
    } else {
        Err(format!("{url}: {}", answer.status()))
    }
}

fn init_logging(format: LogFormat, filter: &str) {
    use tracing_subscriber::EnvFilter;
    // RUST_LOG, when set, wins over the configured filter.
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(filter))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

async fn wait_for_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("SIGINT received"),
        () = term => tracing::info!("SIGTERM received"),
    }
}
