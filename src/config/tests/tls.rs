//! `[tls]` and the CA bundles, read at load time.

use super::*;

/// A fresh directory for files a test writes (CA bundles).
fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "artifact-gateway-config-{name}-{}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A self-signed CA certificate, PEM.
fn ca_pem() -> String {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.self_signed(&key).unwrap().pem()
}

#[test]
fn tls_is_off_without_its_section_and_no_ca_files_by_default() {
    let c = load(MINIMAL).unwrap();
    assert!(c.tls.is_none());
    assert_eq!(c.upstream.ca_file, None);
    assert_eq!(c.storage.ca_file, None);
}

#[test]
fn tls_section() {
    let c = load(&format!(
        "{MINIMAL}[tls]\ncert_file = \"/etc/gw/tls.crt\"\nkey_file = \"/etc/gw/tls.key\"\n"
    ))
    .unwrap();
    let tls = c.tls.unwrap();
    assert_eq!(tls.cert_file, Path::new("/etc/gw/tls.crt"));
    assert_eq!(tls.key_file, Path::new("/etc/gw/tls.key"));
    assert_eq!(tls.reload_interval, Duration::from_secs(10));
    assert_eq!(tls.handshake_timeout, Duration::from_secs(10));
    let c = load(&format!(
        "{MINIMAL}[tls]\ncert_file = \"c.pem\"\nkey_file = \"k.pem\"\n\
         reload_interval = \"250ms\"\nhandshake_timeout = \"3s\"\n"
    ))
    .unwrap();
    let tls = c.tls.unwrap();
    assert_eq!(tls.cert_file, Path::new("c.pem"));
    assert_eq!(tls.reload_interval, Duration::from_millis(250));
    assert_eq!(tls.handshake_timeout, Duration::from_secs(3));
    // The files are not read here: `tls::Acceptor::new` does that, naming the file.
    let d = TlsConfig::new("c", "k");
    assert_eq!(
        (d.reload_interval, d.handshake_timeout),
        (Duration::from_secs(10), Duration::from_secs(10))
    );
}

#[test]
fn tls_errors_are_named() {
    let tls = |body: &str| error(&format!("{MINIMAL}[tls]\n{body}"));
    assert_eq!(tls(""), "tls.cert_file: required when [tls] is present");
    assert_eq!(
        tls("cert_file = \"c.pem\"\n"),
        "tls.key_file: required when [tls] is present"
    );
    assert_eq!(
        tls("cert_file = \"\"\nkey_file = \"k.pem\"\n"),
        "tls.cert_file: must not be empty (leave the key out instead)"
    );
    let files = "cert_file = \"c.pem\"\nkey_file = \"k.pem\"\n";
    assert_eq!(
        tls(&format!("{files}reload_interval = 0\n")),
        "tls.reload_interval: must be greater than zero"
    );
    assert_eq!(
        tls(&format!("{files}handshake_timeout = \"0ms\"\n")),
        "tls.handshake_timeout: must be greater than zero"
    );
    let err = tls(&format!("{files}cert = \"x\"\n"));
    assert!(err.starts_with("tls.cert: unknown key"), "{err}");
    let err = tls("cert_file = 1\n");
    assert!(err.starts_with("tls.cert_file: invalid type"), "{err}");
}

#[test]
fn env_turns_tls_on() {
    let env = [
        ("ARTIFACT_GATEWAY_TLS__CERT_FILE", "/run/tls/tls.crt"),
        ("ARTIFACT_GATEWAY_TLS__KEY_FILE", "/run/tls/tls.key"),
        ("ARTIFACT_GATEWAY_TLS__RELOAD_INTERVAL", "30"),
    ];
    let tls = load_env(MINIMAL, &env).unwrap().tls.unwrap();
    assert_eq!(tls.cert_file, Path::new("/run/tls/tls.crt"));
    assert_eq!(tls.key_file, Path::new("/run/tls/tls.key"));
    assert_eq!(tls.reload_interval, Duration::from_secs(30));
    let err = error_env(MINIMAL, &env[..1]);
    assert_eq!(err, "tls.key_file: required when [tls] is present");
}

#[test]
fn ca_files_are_read_at_load_time() {
    let dir = temp_dir("ca");
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, format!("{}{}", ca_pem(), ca_pem())).unwrap();
    let c = load(&format!(
        "{MINIMAL}ca_file = \"{ca}\"\n[storage]\nca_file = \"{ca}\"\n",
        ca = ca.display()
    ))
    .unwrap();
    assert_eq!(c.upstream.ca_file.as_deref(), Some(ca.as_path()));
    assert_eq!(c.storage.ca_file.as_deref(), Some(ca.as_path()));
    assert!(format!("{:?}", c.storage).contains("ca_file: Some("));

    let missing = dir.join("missing.pem");
    let empty = dir.join("empty.pem");
    std::fs::write(&empty, "no certificates here\n").unwrap();
    let garbage = dir.join("garbage.pem");
    std::fs::write(
        &garbage,
        "-----BEGIN CERTIFICATE-----\naGVsbG8=\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    for key in ["upstream.ca_file", "storage.ca_file"] {
        let (section, name) = key.split_once('.').unwrap();
        let with = |path: &std::path::Path| {
            let line = format!("{name} = \"{}\"\n", path.display());
            // MINIMAL ends inside `[upstream]`.
            match section {
                "upstream" => error(&format!("{MINIMAL}{line}")),
                _ => error(&format!("{MINIMAL}[{section}]\n{line}")),
            }
        };
        let err = with(&missing);
        assert!(
            err.starts_with(&format!("{key}: cannot read {}: ", missing.display())),
            "{err}"
        );
        assert_eq!(
            with(&empty),
            format!(
                "{key}: {}: no PEM certificate (expected BEGIN CERTIFICATE)",
                empty.display()
            )
        );
        let err = with(&garbage);
        assert!(
            err.starts_with(&format!(
                "{key}: {}: certificate 1 of 1 is not usable as a CA",
                garbage.display()
            )),
            "{err}"
        );
    }
    let err = error(&format!("{MINIMAL}ca_file = \"\"\n"));
    assert_eq!(
        err,
        "upstream.ca_file: must not be empty (leave the key out instead)"
    );
    // From the environment, the error names the variable.
    let err = error_env(
        MINIMAL,
        &[(
            "ARTIFACT_GATEWAY_STORAGE__CA_FILE",
            missing.to_str().unwrap(),
        )],
    );
    assert!(err.starts_with("storage.ca_file: cannot read "), "{err}");
    assert!(
        err.ends_with("(set by ARTIFACT_GATEWAY_STORAGE__CA_FILE)"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn example_file_tls_section_parses() {
    // Commented out in the example (its presence turns TLS on); uncommented, it is a setup.
    let example = include_str!("../../../config/gateway.example.toml");
    let mut text = example.to_owned();
    for key in [
        "[tls]",
        "cert_file = ",
        "key_file = ",
        "reload_interval = ",
        "handshake_timeout = ",
    ] {
        let commented = format!("\n# {key}");
        assert!(text.contains(&commented), "{key} is in the example");
        text = text.replace(&commented, &format!("\n{key}"));
    }
    let tls = load(&text).unwrap().tls.unwrap();
    assert_eq!(tls.cert_file, Path::new("/etc/artifact-gateway/tls.crt"));
    assert_eq!(tls.key_file, Path::new("/etc/artifact-gateway/tls.key"));
    let d = TlsConfig::new("", "");
    assert_eq!(tls.reload_interval, d.reload_interval);
    assert_eq!(tls.handshake_timeout, d.handshake_timeout);
}
