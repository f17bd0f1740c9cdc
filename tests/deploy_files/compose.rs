//! The docker compose file: the right images and commands, dependencies waiting for the
//! right conditions, and gateway env names that are config keys.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_yaml_ng::Value;

use crate::support::{listen_port, load_config, read, seq_of, str_of, strings, the_document};

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
