//! The Kubernetes Deployment and what points at it: probes on the gateway's paths and
//! ports, a non-root read-only container, resources and shutdown that fit the
//! configuration, env names that are config keys with secrets that exist, and the
//! Service, HorizontalPodAutoscaler and PodDisruptionBudget selecting its pods.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_yaml_ng::Value;

use crate::support::{
    configmap_gateway_toml, container_env, container_ports, gateway_container, listen_port,
    load_config, one_of_kind, quantity, resolve_port, seconds, seq_of, str_of, string_map, strings,
    BASE_RSS, IMAGE_UID, MEMORY_PER_STREAM, MIB,
};

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
