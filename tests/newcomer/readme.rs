//! The README's "Running it" configuration loads and serves; the README documents the subcommands and every abort reason.

use super::*;
use artifact_gateway::config::{ArtifactSource, BaseUrl, Config};
use artifact_gateway::demo::{self};
use artifact_gateway::listener::RunningGateway;
use sample_backend::BackendBuilder;

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
