//! Structure checks of the deployment files in `deploy/`: the Dockerfile, the compose file,
//! the Kubernetes manifests and the container configuration. No network and no docker: the
//! files are parsed and checked against each other and against the gateway's own
//! configuration loader, so a renamed key, a port that no longer lines up or a probe on the
//! wrong path fails here instead of in a cluster.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use artifact_gateway::config::Config;
use serde::Deserialize;
use serde_yaml_ng::Value;

// ---- helpers --------------------------------------------------------------------------

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy")
}

fn read(relative: &str) -> String {
    let path = deploy_dir().join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The YAML files directly in `deploy/` and `deploy/kubernetes/`, as paths relative to
/// `deploy/`, sorted.
fn yaml_files() -> Vec<String> {
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
fn documents(relative: &str) -> Vec<Value> {
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

fn the_document(relative: &str) -> Value {
    let mut docs = documents(relative);
    assert_eq!(docs.len(), 1, "deploy/{relative}: expected one document");
    docs.remove(0)
}

fn str_of<'a>(value: &'a Value, what: &str) -> &'a str {
    value
        .as_str()
        .unwrap_or_else(|| panic!("{what}: expected a string, got {value:?}"))
}

fn seq_of<'a>(value: &'a Value, what: &str) -> &'a [Value] {
    value
        .as_sequence()
        .map(Vec::as_slice)
        .unwrap_or_else(|| panic!("{what}: expected a list, got {value:?}"))
}

fn strings(value: &Value, what: &str) -> Vec<String> {
    seq_of(value, what)
        .iter()
        .map(|v| str_of(v, what).to_owned())
        .collect()
}

/// A mapping of string → string (labels, selectors).
fn string_map(value: &Value, what: &str) -> BTreeMap<String, String> {
    value
        .as_mapping()
        .unwrap_or_else(|| panic!("{what}: expected a mapping, got {value:?}"))
        .iter()
        .map(|(k, v)| (str_of(k, what).to_owned(), str_of(v, what).to_owned()))
        .collect()
}

/// Loads a configuration the way the binary does, with `env` as the environment.
fn load_config(what: &str, text: &str, env: &[(String, String)]) -> Config {
    Config::from_toml(text, env.iter().cloned()).unwrap_or_else(|e| panic!("{what}: {e}"))
}

/// The port of the `listen` or `admin_listen` address that the configuration text sets.
fn listen_port(text: &str, key: &str) -> u16 {
    let config = load_config(key, text, &[]);
    match key {
        "listen" => config.listen.port(),
        "admin_listen" => config.admin_listen.expect("admin_listen is set").port(),
        other => panic!("not a listen key: {other}"),
    }
}

/// A Kubernetes quantity in base units (cores, bytes): `500m`, `2`, `512Mi`, `1Gi`, `1G`.
fn quantity(value: &Value) -> f64 {
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

const MIB: f64 = 1024.0 * 1024.0;
/// RSS at startup and peak RSS per concurrent download, from the download load benchmark
/// (benches/load/README.md: about 10 MiB at start, at most 46.9 MiB with 32 downloads).
const BASE_RSS: f64 = 10.0 * MIB;
const MEMORY_PER_STREAM: f64 = 1.2 * MIB;

fn seconds(value: &Value, what: &str) -> u64 {
    value
        .as_u64()
        .unwrap_or_else(|| panic!("{what}: expected whole seconds, got {value:?}"))
}

// ---- Kubernetes -----------------------------------------------------------------------

/// Every document of every manifest in deploy/kubernetes (not the kustomization), by kind.
fn manifests() -> BTreeMap<String, Vec<(String, Value)>> {
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

fn one_of_kind(kind: &str) -> Value {
    let all = manifests();
    let docs = all
        .get(kind)
        .unwrap_or_else(|| panic!("no {kind} in deploy/kubernetes"));
    assert_eq!(docs.len(), 1, "expected one {kind}");
    docs[0].1.clone()
}

fn gateway_container(deployment: &Value) -> Value {
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
fn container_ports(container: &Value) -> BTreeMap<String, u64> {
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
fn resolve_port(port: &Value, ports: &BTreeMap<String, u64>) -> u64 {
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
fn container_env(container: &Value) -> Vec<(String, String)> {
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

fn configmap_gateway_toml() -> String {
    let configmap = one_of_kind("ConfigMap");
    str_of(
        &configmap["data"]["gateway.toml"],
        "ConfigMap data gateway.toml",
    )
    .to_owned()
}

#[test]
fn every_yaml_file_parses() {
    let files = yaml_files();
    for expected in [
        "docker-compose.yml",
        "kubernetes/configmap.yaml",
        "kubernetes/deployment.yaml",
        "kubernetes/hpa.yaml",
        "kubernetes/kustomization.yaml",
        "kubernetes/pdb.yaml",
        "kubernetes/secret.example.yaml",
        "kubernetes/service.yaml",
    ] {
        assert!(
            files.iter().any(|f| f == expected),
            "deploy/{expected} missing"
        );
    }
    for file in &files {
        assert!(!documents(file).is_empty(), "deploy/{file}: no document");
    }
}

#[test]
fn kubernetes_documents_have_api_version_kind_and_name() {
    for file in yaml_files() {
        if !file.starts_with("kubernetes/") {
            continue;
        }
        for doc in documents(&file) {
            str_of(&doc["apiVersion"], &format!("{file}: apiVersion"));
            let kind = str_of(&doc["kind"], &format!("{file}: kind"));
            if kind != "Kustomization" {
                let name = str_of(&doc["metadata"]["name"], &format!("{file}: metadata.name"));
                assert!(!name.is_empty(), "{file}: empty metadata.name");
            }
        }
    }
    let expected = [
        ("ConfigMap", "v1"),
        ("Deployment", "apps/v1"),
        ("Service", "v1"),
        ("HorizontalPodAutoscaler", "autoscaling/v2"),
        ("PodDisruptionBudget", "policy/v1"),
        ("Secret", "v1"),
    ];
    for (kind, api_version) in expected {
        assert_eq!(one_of_kind(kind)["apiVersion"], api_version, "{kind}");
    }
}

#[test]
fn kustomization_lists_every_manifest_but_the_example_secret() {
    let kustomization = the_document("kubernetes/kustomization.yaml");
    assert_eq!(kustomization["kind"], "Kustomization");
    let listed: BTreeSet<String> = strings(&kustomization["resources"], "resources")
        .into_iter()
        .collect();
    // The example Secret is left out on purpose: applying it would overwrite the real one.
    let expected: BTreeSet<String> = yaml_files()
        .into_iter()
        .filter_map(|f| f.strip_prefix("kubernetes/").map(str::to_owned))
        .filter(|f| f != "kustomization.yaml" && f != "secret.example.yaml")
        .collect();
    assert_eq!(listed, expected);
    // The image it retags is the Deployment's.
    let image = str_of(
        &gateway_container(&one_of_kind("Deployment"))["image"],
        "image",
    )
    .to_owned();
    let retagged = seq_of(&kustomization["images"], "images")
        .iter()
        .map(|i| str_of(&i["name"], "images name"))
        .collect::<Vec<_>>();
    assert!(
        retagged
            .iter()
            .any(|name| image.starts_with(&format!("{name}:"))),
        "kustomization images {retagged:?} do not name the Deployment's image {image}"
    );
}

#[test]
fn deployment_probes_ports_and_security() {
    let deployment = one_of_kind("Deployment");
    let pod = &deployment["spec"]["template"]["spec"];
    let container = gateway_container(&deployment);
    let ports = container_ports(&container);
    let config_text = configmap_gateway_toml();
    assert_eq!(
        ports["http"],
        u64::from(listen_port(&config_text, "listen"))
    );
    assert_eq!(ports["http"], 8080);
    assert_eq!(
        ports["admin"],
        u64::from(listen_port(&config_text, "admin_listen"))
    );
    assert_eq!(ports["admin"], 9090);

    for (probe, path) in [
        ("readinessProbe", "/-/readiness"),
        ("livenessProbe", "/-/health"),
    ] {
        let get = &container[probe]["httpGet"];
        assert_eq!(get["path"], path, "{probe} path");
        assert_eq!(resolve_port(&get["port"], &ports), 9090, "{probe} port");
    }

    // Non-root, read-only, no capabilities, seccomp: on the pod or the container.
    let either = |key: &str| {
        let own = &container["securityContext"][key];
        if own.is_null() {
            pod["securityContext"][key].clone()
        } else {
            own.clone()
        }
    };
    assert_eq!(either("runAsNonRoot"), Value::Bool(true));
    assert_eq!(either("runAsUser").as_u64(), Some(IMAGE_UID));
    assert_eq!(either("seccompProfile")["type"], "RuntimeDefault");
    let security = &container["securityContext"];
    assert_eq!(security["readOnlyRootFilesystem"], Value::Bool(true));
    assert_eq!(security["allowPrivilegeEscalation"], Value::Bool(false));
    assert!(
        strings(&security["capabilities"]["drop"], "capabilities.drop").contains(&"ALL".into())
    );

    // The configuration comes from the ConfigMap, at the path --config names.
    let args = strings(&container["args"], "args");
    let config_path = args
        .windows(2)
        .find(|w| w[0] == "--config")
        .map(|w| w[1].clone())
        .expect("args: --config FILE");
    let configmap = one_of_kind("ConfigMap");
    let volume = seq_of(&pod["volumes"], "volumes")
        .iter()
        .find(|v| v["configMap"]["name"] == configmap["metadata"]["name"])
        .cloned()
        .expect("a volume from the ConfigMap");
    let mount = seq_of(&container["volumeMounts"], "volumeMounts")
        .iter()
        .find(|m| m["name"] == volume["name"])
        .cloned()
        .expect("the ConfigMap volume is mounted");
    assert_eq!(
        format!("{}/gateway.toml", str_of(&mount["mountPath"], "mountPath")),
        config_path
    );
}

#[test]
fn deployment_resources_and_shutdown_fit_the_configuration() {
    let deployment = one_of_kind("Deployment");
    let pod = &deployment["spec"]["template"]["spec"];
    let container = gateway_container(&deployment);
    let resources = &container["resources"];
    let requests = resources["requests"].as_mapping().expect("requests");
    for (name, request) in requests {
        let name = str_of(name, "resource name");
        let limit = &resources["limits"][name];
        if !limit.is_null() {
            assert!(
                quantity(request) <= quantity(limit),
                "{name}: request {request:?} > limit {limit:?}"
            );
        }
    }
    for name in ["cpu", "memory"] {
        assert!(!resources["requests"][name].is_null(), "no {name} request");
    }
    let memory_limit = &resources["limits"]["memory"];
    assert!(!memory_limit.is_null(), "no memory limit");

    // The two caches fill up and stay full: the request must hold them with room to spare.
    let config = load_config(
        "ConfigMap gateway.toml",
        &configmap_gateway_toml(),
        &container_env(&container),
    );
    let caches = (config.cache.max_bytes + config.zip.index_cache_bytes) as f64;
    let request = quantity(&resources["requests"]["memory"]);
    assert!(
        caches + 64.0 * MIB <= request,
        "memory request {request} bytes does not hold the caches ({caches} bytes) and a base"
    );
    // At `server.max_streams` concurrent downloads the process must still fit its limit.
    let at_max_streams = BASE_RSS + caches + config.server.max_streams as f64 * MEMORY_PER_STREAM;
    let limit = quantity(memory_limit);
    assert!(
        at_max_streams <= limit,
        "base + caches + {} streams = {at_max_streams} bytes > memory limit {limit}",
        config.server.max_streams
    );

    // preStop sleep + shutdown_grace must fit in the termination grace period.
    let command = strings(
        &container["lifecycle"]["preStop"]["exec"]["command"],
        "preStop command",
    );
    assert_eq!(command.len(), 2, "preStop: sleep N");
    assert_eq!(command[0], "sleep");
    let pre_stop: u64 = command[1].parse().expect("sleep seconds");
    assert!(pre_stop > 0);
    let grace = seconds(
        &pod["terminationGracePeriodSeconds"],
        "terminationGracePeriodSeconds",
    );
    assert!(
        Duration::from_secs(pre_stop) + config.server.shutdown_grace < Duration::from_secs(grace),
        "terminationGracePeriodSeconds {grace} <= preStop {pre_stop}s + shutdown_grace {:?}",
        config.server.shutdown_grace
    );
}

#[test]
fn deployment_env_names_are_config_keys_and_secrets_exist() {
    let deployment = one_of_kind("Deployment");
    let container = gateway_container(&deployment);
    let env = container_env(&container);
    assert!(!env.is_empty(), "the Deployment sets no environment");
    for (name, _) in &env {
        assert!(
            name.starts_with("ARTIFACT_GATEWAY_"),
            "{name}: not a gateway variable"
        );
    }
    let config = load_config(
        "ConfigMap gateway.toml + Deployment env",
        &configmap_gateway_toml(),
        &env,
    );
    assert_eq!(
        config.storage.access_key_id.as_deref(),
        Some("dummy-secret-value")
    );
    assert!(config.storage.secret_access_key.is_some());

    // Each secretKeyRef names the example Secret and one of its keys.
    let secret = one_of_kind("Secret");
    let secret_name = str_of(&secret["metadata"]["name"], "Secret name");
    let secret_keys: BTreeSet<String> = string_map(&secret["stringData"], "stringData")
        .into_keys()
        .collect();
    for var in seq_of(&container["env"], "env") {
        let reference = &var["valueFrom"]["secretKeyRef"];
        if reference.is_null() {
            continue;
        }
        assert_eq!(reference["name"], secret_name, "{:?}", var["name"]);
        let key = str_of(&reference["key"], "secretKeyRef key");
        assert!(secret_keys.contains(key), "Secret has no key {key}");
    }
}

#[test]
fn service_target_ports_are_container_ports() {
    let deployment = one_of_kind("Deployment");
    let ports = container_ports(&gateway_container(&deployment));
    let pod_labels = string_map(
        &deployment["spec"]["template"]["metadata"]["labels"],
        "pod labels",
    );
    let service = one_of_kind("Service");
    for (key, value) in string_map(&service["spec"]["selector"], "Service selector") {
        assert_eq!(pod_labels.get(&key), Some(&value), "Service selector {key}");
    }
    let service_ports = seq_of(&service["spec"]["ports"], "Service ports");
    let mut targets = BTreeSet::new();
    for port in service_ports {
        let target = resolve_port(&port["targetPort"], &ports);
        assert!(
            ports.values().any(|p| *p == target),
            "targetPort {target} is no container port"
        );
        targets.insert(target);
    }
    assert!(
        targets.contains(&8080),
        "no Service port reaches the gateway's 8080"
    );
}

#[test]
fn deployment_selector_matches_its_pods() {
    let deployment = one_of_kind("Deployment");
    let pod_labels = string_map(
        &deployment["spec"]["template"]["metadata"]["labels"],
        "pod labels",
    );
    let selector = string_map(
        &deployment["spec"]["selector"]["matchLabels"],
        "Deployment selector",
    );
    for (key, value) in &selector {
        assert_eq!(
            pod_labels.get(key),
            Some(value),
            "Deployment selector {key}"
        );
    }
}

#[test]
fn hpa_targets_the_deployment() {
    let deployment = one_of_kind("Deployment");
    let hpa = one_of_kind("HorizontalPodAutoscaler");
    let target = &hpa["spec"]["scaleTargetRef"];
    assert_eq!(target["apiVersion"], deployment["apiVersion"]);
    assert_eq!(target["kind"], "Deployment");
    assert_eq!(target["name"], deployment["metadata"]["name"]);
    let min = hpa["spec"]["minReplicas"].as_u64().expect("minReplicas");
    let max = hpa["spec"]["maxReplicas"].as_u64().expect("maxReplicas");
    assert!(
        2 <= min && min <= max,
        "replicas {min}..{max}: at least 2, so the PDB lets one go"
    );
    let metrics = seq_of(&hpa["spec"]["metrics"], "metrics");
    assert!(
        metrics
            .iter()
            .any(|m| m["type"] == "Resource" && m["resource"]["name"] == "cpu"),
        "no CPU metric"
    );
}

#[test]
fn pdb_selector_matches_the_pods() {
    let deployment = one_of_kind("Deployment");
    let pod_labels = string_map(
        &deployment["spec"]["template"]["metadata"]["labels"],
        "pod labels",
    );
    let pdb = one_of_kind("PodDisruptionBudget");
    let selector = string_map(&pdb["spec"]["selector"]["matchLabels"], "PDB selector");
    assert!(!selector.is_empty());
    for (key, value) in &selector {
        assert_eq!(pod_labels.get(key), Some(value), "PDB selector {key}");
    }
    assert!(
        !pdb["spec"]["maxUnavailable"].is_null() || !pdb["spec"]["minAvailable"].is_null(),
        "PDB sets neither maxUnavailable nor minAvailable"
    );
}

// ---- docker compose -------------------------------------------------------------------

/// Compose's interpolation of one value: `${NAME:-default}` and `${NAME-default}` give the
/// default, `${NAME}` gives "" (nothing is set here), `$$` is a literal `$`.
fn interpolate(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        rest = &rest[at + 1..];
        if let Some(after) = rest.strip_prefix('$') {
            out.push('$');
            rest = after;
        } else if let Some(inner) = rest.strip_prefix('{') {
            let end = inner.find('}').expect("unclosed ${");
            let expression = &inner[..end];
            if let Some((_, default)) = expression
                .split_once(":-")
                .or_else(|| expression.split_once('-'))
            {
                out.push_str(default);
            }
            rest = &inner[end + 1..];
        } else {
            panic!("compose: bare $ in {text:?}; write $$ or ${{NAME}}");
        }
    }
    out.push_str(rest);
    out
}

fn compose() -> Value {
    the_document("docker-compose.yml")
}

fn service<'a>(compose: &'a Value, name: &str) -> &'a Value {
    let service = &compose["services"][name];
    assert!(!service.is_null(), "compose: no service {name}");
    service
}

/// A service's `environment`, as a mapping or a list of NAME=VALUE, interpolated.
fn compose_env(service: &Value) -> Vec<(String, String)> {
    match &service["environment"] {
        Value::Mapping(map) => map
            .iter()
            .map(|(k, v)| {
                let value = match v {
                    Value::String(s) => s.clone(),
                    Value::Bool(b) => b.to_string(),
                    Value::Number(n) => n.to_string(),
                    other => panic!("environment value {other:?}"),
                };
                (str_of(k, "env name").to_owned(), interpolate(&value))
            })
            .collect(),
        Value::Sequence(list) => list
            .iter()
            .map(|item| {
                let (name, value) = str_of(item, "env").split_once('=').expect("NAME=VALUE");
                (name.to_owned(), interpolate(value))
            })
            .collect(),
        Value::Null => Vec::new(),
        other => panic!("environment: {other:?}"),
    }
}

fn command(service: &Value) -> Vec<String> {
    strings(&service["command"], "command")
}

/// Whether the service is built from deploy/Dockerfile (the gateway image).
fn built_from_dockerfile(service: &Value) -> bool {
    service["build"]["dockerfile"] == "deploy/Dockerfile" && service["build"]["context"] == ".."
}

#[test]
fn compose_services_use_the_right_images_and_commands() {
    let compose = compose();
    let minio = service(&compose, "minio");
    assert!(str_of(&minio["image"], "minio image").starts_with("minio/minio"));
    let minio_init = service(&compose, "minio-init");
    assert!(str_of(&minio_init["image"], "minio-init image").starts_with("minio/mc"));

    for name in ["sample-data", "backend", "gateway"] {
        assert!(
            built_from_dockerfile(service(&compose, name)),
            "{name}: not built from deploy/Dockerfile"
        );
    }
    let images: BTreeSet<&str> = ["sample-data", "backend", "gateway"]
        .iter()
        .map(|name| str_of(&service(&compose, name)["image"], "image"))
        .collect();
    assert_eq!(images.len(), 1, "one image for all three: {images:?}");

    let sample_data = service(&compose, "sample-data");
    assert_eq!(command(sample_data), ["sample-data", "/data"]);
    let backend = service(&compose, "backend");
    assert_eq!(
        command(backend),
        ["sample-backend", "--listen", "0.0.0.0:3000"]
    );
    // The gateway runs the image's default command (--config /etc/artifact-gateway/...).
    let gateway = service(&compose, "gateway");
    assert!(gateway["command"].is_null() && gateway["entrypoint"].is_null());

    // sample-data writes into a volume that minio-init reads and uploads.
    let volume_of = |service: &Value, path: &str| -> Option<String> {
        seq_of(&service["volumes"], "volumes").iter().find_map(|v| {
            let spec = str_of(v, "volume");
            let mut parts = spec.split(':');
            let source = parts.next()?;
            (parts.next()? == path).then(|| source.to_owned())
        })
    };
    let shared = volume_of(sample_data, "/data").expect("sample-data mounts /data");
    assert_eq!(volume_of(minio_init, "/data").as_ref(), Some(&shared));
    let volumes = compose["volumes"].as_mapping().expect("top-level volumes");
    assert!(
        volumes.contains_key(shared.as_str()),
        "volume {shared} not declared"
    );
    let init_script = strings(&minio_init["command"], "minio-init command").join("\n");
    for step in ["mc alias set", "mc mb", "artifacts", "/data"] {
        assert!(
            init_script.contains(step),
            "minio-init does not run {step:?}"
        );
    }
}

#[test]
fn compose_dependencies_wait_for_the_right_conditions() {
    let compose = compose();
    let condition = |service: &str, on: &str| {
        str_of(
            &compose["services"][service]["depends_on"][on]["condition"],
            &format!("{service} depends_on {on}"),
        )
        .to_owned()
    };
    assert_eq!(condition("minio-init", "minio"), "service_healthy");
    assert_eq!(
        condition("minio-init", "sample-data"),
        "service_completed_successfully"
    );
    assert_eq!(condition("gateway", "backend"), "service_healthy");
    assert_eq!(condition("gateway", "minio"), "service_healthy");
    assert_eq!(
        condition("gateway", "minio-init"),
        "service_completed_successfully"
    );
    // Each service_healthy dependency has a health check of its own.
    for name in ["minio", "backend", "gateway"] {
        let test = strings(
            &compose["services"][name]["healthcheck"]["test"],
            &format!("{name} healthcheck"),
        );
        assert_eq!(test[0], "CMD", "{name}: exec-form health check");
    }
    // The backend's health check probes the port it listens on.
    let backend_check = strings(
        &compose["services"]["backend"]["healthcheck"]["test"],
        "test",
    );
    assert!(backend_check
        .iter()
        .any(|a| a.starts_with("http://127.0.0.1:3000/")));
    let gateway_check = strings(
        &compose["services"]["gateway"]["healthcheck"]["test"],
        "test",
    );
    assert_eq!(gateway_check[1..3], ["artifact-gateway", "probe"]);
    assert!(gateway_check[3].starts_with("http://127.0.0.1:9090/-/"));
}

#[test]
fn compose_gateway_env_names_are_config_keys() {
    let compose = compose();
    let gateway = service(&compose, "gateway");
    let env = compose_env(gateway);
    for (name, _) in &env {
        assert!(
            name.starts_with("ARTIFACT_GATEWAY_"),
            "{name}: not a gateway variable"
        );
    }
    let config = load_config(
        "deploy/gateway.toml + compose gateway env",
        &read("gateway.toml"),
        &env,
    );
    // The variables point at the compose services.
    assert_eq!(
        config.upstream.url.to_string().trim_end_matches('/'),
        "http://backend:3000"
    );
    assert_eq!(config.storage.url, "s3://artifacts");
    assert_eq!(
        config.storage.endpoint.as_deref(),
        Some("http://minio:9000")
    );
    assert!(config.storage.allow_http);
    assert!(config.storage.secret_access_key.is_some());
    assert_eq!(config.log.format, artifact_gateway::config::LogFormat::Json);

    // It publishes the ports the configuration listens on.
    let text = read("gateway.toml");
    let published: Vec<String> = strings(&gateway["ports"], "gateway ports");
    for key in ["listen", "admin_listen"] {
        let port = listen_port(&text, key);
        assert!(
            published.iter().any(|p| p.ends_with(&format!(":{port}"))),
            "gateway does not publish {key} port {port}: {published:?}"
        );
    }
    // stop_grace_period leaves shutdown_grace room.
    let stop = str_of(&gateway["stop_grace_period"], "stop_grace_period");
    let stop: u64 = stop
        .trim_end_matches('s')
        .parse()
        .expect("stop_grace_period in s");
    assert!(Duration::from_secs(stop) > config.server.shutdown_grace);

    // The backend listens where the gateway's upstream URL points.
    let backend = service(&compose, "backend");
    let listen = command(backend)[2].clone();
    assert!(config
        .upstream
        .url
        .to_string()
        .contains(&format!("backend:{}", listen.rsplit_once(':').unwrap().1)));
}

// ---- the image --------------------------------------------------------------------------

/// The UID the image runs as (Dockerfile USER); the Deployment's runAsUser must match.
const IMAGE_UID: u64 = 10001;

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
