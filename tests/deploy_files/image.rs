//! The container image: a multi-stage Dockerfile running as a non-root user with a health
//! check, the image's own configuration loading alone, and the systemd unit's stop
//! timeout exceeding the shutdown grace.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use crate::support::{listen_port, load_config, read, IMAGE_UID};

/// Dockerfile instructions (keyword upper-cased, arguments), continuation lines joined and
/// comment lines dropped, as docker reads them.
fn dockerfile() -> Vec<(String, String)> {
    let text = read("Dockerfile");
    let mut instructions = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim_start();
        // Comment and empty lines are skipped, also inside a continued instruction.
        if trimmed.starts_with('#') || trimmed.is_empty() {
            continue;
        }
        match line.trim_end().strip_suffix('\\') {
            Some(head) => current.push_str(head),
            None => {
                current.push_str(line);
                let joined = std::mem::take(&mut current);
                let (keyword, rest) = joined.trim().split_once(char::is_whitespace).unwrap();
                instructions.push((keyword.to_ascii_uppercase(), rest.trim().to_owned()));
            }
        }
    }
    instructions
}

fn json_array(text: &str) -> Vec<String> {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not a JSON array: {text}: {e}"))
}

#[test]
fn dockerfile_is_multi_stage_non_root_with_health_check() {
    let instructions = dockerfile();
    let of = |keyword: &str| -> Vec<&str> {
        instructions
            .iter()
            .filter(|(k, _)| k == keyword)
            .map(|(_, rest)| rest.as_str())
            .collect()
    };

    // Two stages: a Rust builder new enough for Cargo.toml's rust-version, a slim runtime.
    let from = of("FROM");
    assert!(from.len() >= 2, "not multi-stage: {from:?}");
    let builder = from[0];
    let image = builder
        .strip_prefix("rust:")
        .expect("builder FROM rust:...");
    let version: Vec<u32> = image
        .split('-')
        .next()
        .unwrap()
        .split('.')
        .map(|n| n.parse().expect("rust image version"))
        .collect();
    let manifest: toml::Table =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"))
            .unwrap()
            .parse()
            .unwrap();
    let msrv: Vec<u32> = manifest["package"]["rust-version"]
        .as_str()
        .unwrap()
        .split('.')
        .map(|n| n.parse().unwrap())
        .collect();
    assert!(
        version[..2] >= msrv[..2],
        "builder {builder} older than rust-version {msrv:?}"
    );
    assert!(builder.ends_with(" AS builder"), "{builder}");
    let runtime = from.last().unwrap();
    assert!(runtime.starts_with("debian:bookworm-slim"), "{runtime}");

    // The release build, locked.
    let runs = of("RUN");
    assert!(runs
        .iter()
        .any(|run| run.contains("cargo build --release --locked")));
    let copied_from_builder = of("COPY")
        .into_iter()
        .find(|c| c.starts_with("--from=builder"))
        .expect("COPY --from=builder");
    let workdir = of("WORKDIR")[0];
    assert!(
        copied_from_builder.contains(&format!("{workdir}/target/release/artifact-gateway ")),
        "{copied_from_builder}"
    );
    // The runtime has CA certificates.
    assert!(runs.iter().any(|run| run.contains("ca-certificates")));

    // Non-root, numeric.
    let user = of("USER");
    let last_user = user.last().expect("USER");
    let uid: u64 = last_user
        .split(':')
        .next()
        .unwrap()
        .parse()
        .expect("numeric USER");
    assert_ne!(uid, 0);
    assert_eq!(uid, IMAGE_UID);

    // Ports, health check, entrypoint, default config.
    let config_text = read("gateway.toml");
    let expose: BTreeSet<u16> = of("EXPOSE")
        .iter()
        .flat_map(|e| e.split_whitespace())
        .map(|p| p.parse().expect("EXPOSE port"))
        .collect();
    assert_eq!(
        expose,
        BTreeSet::from([
            listen_port(&config_text, "listen"),
            listen_port(&config_text, "admin_listen")
        ])
    );
    let health = of("HEALTHCHECK");
    assert_eq!(health.len(), 1);
    let check = health[0].split_once("CMD ").expect("HEALTHCHECK ... CMD").1;
    assert_eq!(
        json_array(check),
        [
            "artifact-gateway",
            "probe",
            format!(
                "http://127.0.0.1:{}/-/health",
                listen_port(&config_text, "admin_listen")
            )
            .as_str()
        ]
    );
    assert_eq!(json_array(of("ENTRYPOINT")[0]), ["artifact-gateway"]);
    assert_eq!(
        json_array(of("CMD")[0]),
        ["--config", "/etc/artifact-gateway/gateway.toml"]
    );
    assert!(of("COPY").contains(&"deploy/gateway.toml /etc/artifact-gateway/gateway.toml"));

    // What the stages copy from the context is not excluded by the Dockerfile's ignore file.
    let ignore = read("Dockerfile.dockerignore");
    let included: Vec<&str> = ignore.lines().filter_map(|l| l.strip_prefix('!')).collect();
    for copy in of("COPY") {
        if copy.starts_with("--from") {
            continue;
        }
        let words: Vec<&str> = copy.split_whitespace().collect();
        for source in &words[..words.len() - 1] {
            assert!(
                included.contains(&source.trim_end_matches('/')),
                "COPY {source}: excluded by deploy/Dockerfile.dockerignore"
            );
        }
    }
}

#[test]
fn image_configuration_loads_alone() {
    // deploy/gateway.toml as baked into the image, with no environment at all.
    let config = load_config("deploy/gateway.toml", &read("gateway.toml"), &[]);
    assert_eq!(config.listen.to_string(), "0.0.0.0:8080");
    assert_eq!(
        config.admin_listen.map(|a| a.to_string()).as_deref(),
        Some("0.0.0.0:9090")
    );
    assert_eq!(config.log.format, artifact_gateway::config::LogFormat::Json);
    assert!(
        config.storage.secret_access_key.is_none(),
        "a secret in the image's config"
    );
    assert!(
        config.storage.access_key_id.is_none(),
        "a credential in the image's config"
    );
}

#[test]
fn systemd_unit_stop_timeout_exceeds_shutdown_grace() {
    let unit = read("artifact-gateway.service");
    let timeout: u64 = unit
        .lines()
        .find_map(|l| l.strip_prefix("TimeoutStopSec="))
        .expect("TimeoutStopSec")
        .trim()
        .parse()
        .expect("TimeoutStopSec in seconds");
    let default_grace = load_config(
        "example",
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("config/gateway.example.toml"),
        )
        .unwrap(),
        &[],
    )
    .server
    .shutdown_grace;
    assert!(Duration::from_secs(timeout) > default_grace);
}
