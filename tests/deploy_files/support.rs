//! Reading the deployment files: YAML documents and their fields, quantities and
//! durations as Kubernetes writes them, the gateway's configuration loaded from a file's
//! text and env, and the Kubernetes manifests by kind with the gateway's container.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use artifact_gateway::config::Config;
use serde::Deserialize;
use serde_yaml_ng::Value;

pub(crate) fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy")
}

pub(crate) fn read(relative: &str) -> String {
    let path = deploy_dir().join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The YAML files directly in `deploy/` and `deploy/kubernetes/`, as paths relative to
/// `deploy/`, sorted.
pub(crate) fn yaml_files() -> Vec<String> {
    let mut files = Vec::new();
    for dir in ["", "kubernetes"] {
        let entries = std::fs::read_dir(deploy_dir().join(dir))
            .unwrap_or_else(|e| panic!("deploy/{dir}: {e}"));
        for entry in entries {
            let name = entry.expect("directory entry").file_name();
            let name = name.to_str().expect("UTF-8 file name");
            if name.ends_with(".yaml") || name.ends_with(".yml") {
                files.push(if dir.is_empty() {
                    name.to_owned()
                } else {
                    format!("{dir}/{name}")
                });
            }
        }
    }
    files.sort();
    files
}

/// Every document of a YAML file, with `<<` merge keys applied; empty documents dropped.
pub(crate) fn documents(relative: &str) -> Vec<Value> {
    let text = read(relative);
    serde_yaml_ng::Deserializer::from_str(&text)
        .map(|document| {
            let mut value = Value::deserialize(document)
                .unwrap_or_else(|e| panic!("deploy/{relative}: not valid YAML: {e}"));
            value
                .apply_merge()
                .unwrap_or_else(|e| panic!("deploy/{relative}: merge keys: {e}"));
            value
        })
        .filter(|value| !value.is_null())
        .collect()
}

pub(crate) fn the_document(relative: &str) -> Value {
    let mut docs = documents(relative);
    assert_eq!(docs.len(), 1, "deploy/{relative}: expected one document");
    docs.remove(0)
}

pub(crate) fn str_of<'a>(value: &'a Value, what: &str) -> &'a str {
    value
        .as_str()
        .unwrap_or_else(|| panic!("{what}: expected a string, got {value:?}"))
}

pub(crate) fn seq_of<'a>(value: &'a Value, what: &str) -> &'a [Value] {
    value
        .as_sequence()
        .map(Vec::as_slice)
        .unwrap_or_else(|| panic!("{what}: expected a list, got {value:?}"))
}

pub(crate) fn strings(value: &Value, what: &str) -> Vec<String> {
    seq_of(value, what)
        .iter()
        .map(|v| str_of(v, what).to_owned())
        .collect()
}

/// A mapping of string → string (labels, selectors).
pub(crate) fn string_map(value: &Value, what: &str) -> BTreeMap<String, String> {
    value
        .as_mapping()
        .unwrap_or_else(|| panic!("{what}: expected a mapping, got {value:?}"))
        .iter()
        .map(|(k, v)| (str_of(k, what).to_owned(), str_of(v, what).to_owned()))
        .collect()
}

/// Loads a configuration the way the binary does, with `env` as the environment.
pub(crate) fn load_config(what: &str, text: &str, env: &[(String, String)]) -> Config {
    Config::from_toml(text, env.iter().cloned()).unwrap_or_else(|e| panic!("{what}: {e}"))
}

/// The port of the `listen` or `admin_listen` address that the configuration text sets.
pub(crate) fn listen_port(text: &str, key: &str) -> u16 {
    let config = load_config(key, text, &[]);
    match key {
        "listen" => config.listen.port(),
        "admin_listen" => config.admin_listen.expect("admin_listen is set").port(),
        other => panic!("not a listen key: {other}"),
    }
}

/// A Kubernetes quantity in base units (cores, bytes): `500m`, `2`, `512Mi`, `1Gi`, `1G`.
pub(crate) fn quantity(value: &Value) -> f64 {
    let text = match value {
        Value::Number(n) => return n.as_f64().expect("a number"),
        other => str_of(other, "quantity"),
    };
    let suffixes: [(&str, f64); 11] = [
        ("Ki", 1024.0),
        ("Mi", 1024.0 * 1024.0),
        ("Gi", 1024.0 * 1024.0 * 1024.0),
        ("Ti", 1024.0 * 1024.0 * 1024.0 * 1024.0),
        ("m", 0.001),
        ("k", 1e3),
        ("K", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
        ("", 1.0),
    ];
    for (suffix, factor) in suffixes {
        if let Some(number) = text.strip_suffix(suffix) {
            if let Ok(number) = number.parse::<f64>() {
                return number * factor;
            }
        }
    }
    panic!("not a quantity: {text:?}")
}

pub(crate) const MIB: f64 = 1024.0 * 1024.0;
/// RSS at startup and peak RSS per concurrent download, from the download load benchmark
/// (benches/load/README.md: about 10 MiB at start, at most 46.9 MiB with 32 downloads).
pub(crate) const BASE_RSS: f64 = 10.0 * MIB;
pub(crate) const MEMORY_PER_STREAM: f64 = 1.2 * MIB;

pub(crate) fn seconds(value: &Value, what: &str) -> u64 {
    value
        .as_u64()
        .unwrap_or_else(|| panic!("{what}: expected whole seconds, got {value:?}"))
}

/// Every document of every manifest in deploy/kubernetes (not the kustomization), by kind.
pub(crate) fn manifests() -> BTreeMap<String, Vec<(String, Value)>> {
    let mut by_kind: BTreeMap<String, Vec<(String, Value)>> = BTreeMap::new();
    for file in yaml_files() {
        if !file.starts_with("kubernetes/") || file == "kubernetes/kustomization.yaml" {
            continue;
        }
        for doc in documents(&file) {
            let kind = str_of(&doc["kind"], &format!("{file}: kind")).to_owned();
            by_kind.entry(kind).or_default().push((file.clone(), doc));
        }
    }
    by_kind
}

pub(crate) fn one_of_kind(kind: &str) -> Value {
    let all = manifests();
    let docs = all
        .get(kind)
        .unwrap_or_else(|| panic!("no {kind} in deploy/kubernetes"));
    assert_eq!(docs.len(), 1, "expected one {kind}");
    docs[0].1.clone()
}

pub(crate) fn gateway_container(deployment: &Value) -> Value {
    let containers = seq_of(
        &deployment["spec"]["template"]["spec"]["containers"],
        "containers",
    );
    containers
        .iter()
        .find(|c| c["name"] == "gateway")
        .cloned()
        .expect("a container named gateway")
}

/// The container's ports: name → number.
pub(crate) fn container_ports(container: &Value) -> BTreeMap<String, u64> {
    seq_of(&container["ports"], "container ports")
        .iter()
        .map(|p| {
            (
                str_of(&p["name"], "port name").to_owned(),
                p["containerPort"].as_u64().expect("containerPort"),
            )
        })
        .collect()
}

/// A probe's or Service's port, named or numeric, as the container port number.
pub(crate) fn resolve_port(port: &Value, ports: &BTreeMap<String, u64>) -> u64 {
    match port {
        Value::Number(n) => n.as_u64().expect("port number"),
        Value::String(name) => *ports
            .get(name)
            .unwrap_or_else(|| panic!("no container port named {name:?}")),
        other => panic!("port: unexpected {other:?}"),
    }
}

/// The environment a Deployment's container gets: literal values as they are, values from
/// Secrets and ConfigMaps as a dummy (the check is on names, the secrets are not here).
pub(crate) fn container_env(container: &Value) -> Vec<(String, String)> {
    let Some(env) = container["env"].as_sequence() else {
        return Vec::new();
    };
    env.iter()
        .map(|var| {
            let name = str_of(&var["name"], "env name").to_owned();
            let value = match var["value"].as_str() {
                Some(value) => value.to_owned(),
                None => {
                    assert!(
                        !var["valueFrom"].is_null(),
                        "env {name}: neither value nor valueFrom"
                    );
                    "dummy-secret-value".to_owned()
                }
            };
            (name, value)
        })
        .collect()
}

pub(crate) fn configmap_gateway_toml() -> String {
    let configmap = one_of_kind("ConfigMap");
    str_of(
        &configmap["data"]["gateway.toml"],
        "ConfigMap data gateway.toml",
    )
    .to_owned()
}

/// The UID the image runs as (Dockerfile USER); the Deployment's runAsUser must match.
pub(crate) const IMAGE_UID: u64 = 10001;
