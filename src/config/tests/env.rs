//! `ARTIFACT_GATEWAY_*` overrides: types, nesting, and errors that name the variable.

use super::*;

#[test]
fn env_overrides_storage_secrets_and_artifacts() {
    let env = [
        (
            "ARTIFACT_GATEWAY_STORAGE__SECRET_ACCESS_KEY",
            "from/env+KEY",
        ),
        ("ARTIFACT_GATEWAY_ARTIFACTS__BY_REF_MAX_PAGES", "25"),
        ("ARTIFACT_GATEWAY_STORAGE__ALLOW_HTTP", "true"),
        ("ARTIFACT_GATEWAY_STORAGE__PRESIGN_TTL", "90"),
    ];
    let text = format!("{MINIMAL}[storage]\nsecret_access_key = \"from-file\"\n");
    let c = load_env(&text, &env).unwrap();
    let s = &c.storage;
    assert_eq!(
        s.secret_access_key.as_ref().unwrap().expose(),
        "from/env+KEY"
    );
    assert!(s.allow_http);
    assert_eq!(s.presign_ttl, Duration::from_secs(90));
    assert_eq!(c.artifacts.by_ref_max_pages, 25);
    let err = error_env(
        MINIMAL,
        &[("ARTIFACT_GATEWAY_ARTIFACTS__BY_REF_MAX_PAGES", "0")],
    );
    assert_eq!(
        err,
        "artifacts.by_ref_max_pages: must be between 1 and 1000 \
         (set by ARTIFACT_GATEWAY_ARTIFACTS__BY_REF_MAX_PAGES)"
    );
}

#[test]
fn env_strings_that_look_like_numbers_stay_verbatim() {
    // A TOML number or bool in a string key is retried as the variable's exact text.
    let env = [
        ("ARTIFACT_GATEWAY_STORAGE__SECRET_ACCESS_KEY", "00123456"),
        ("ARTIFACT_GATEWAY_STORAGE__SESSION_TOKEN", "1e3"),
        ("ARTIFACT_GATEWAY_STORAGE__ACCESS_KEY_ID", "true"),
        (
            "ARTIFACT_GATEWAY_STORAGE__OPTIONS__AWS_SKIP_SIGNATURE",
            "false",
        ),
    ];
    let s = load_env(MINIMAL, &env).unwrap().storage;
    assert_eq!(s.secret_access_key.unwrap().expose(), "00123456");
    assert_eq!(s.session_token.unwrap().expose(), "1e3");
    assert_eq!(s.access_key_id.as_deref(), Some("true"));
    assert_eq!(s.options["aws_skip_signature"], "false");
    // Keys of other types keep their checks.
    let err = error_env(MINIMAL, &[("ARTIFACT_GATEWAY_STORAGE__ALLOW_HTTP", "1")]);
    assert!(
        err.starts_with("storage.allow_http: invalid type: string \"1\", expected a boolean"),
        "{err}"
    );
    assert!(
        err.ends_with("(set by ARTIFACT_GATEWAY_STORAGE__ALLOW_HTTP)"),
        "{err}"
    );
}

#[test]
fn env_sets_a_key_inside_storage_options() {
    let text = format!("{MINIMAL}[storage.options]\ngoogle_service_account_key = \"k\"\n");
    let env = [(
        "ARTIFACT_GATEWAY_STORAGE__OPTIONS__GOOGLE_SERVICE_ACCOUNT",
        "/etc/gcs.json",
    )];
    let c = load_env(&text, &env).unwrap();
    assert_eq!(c.storage.options["google_service_account"], "/etc/gcs.json");
    assert_eq!(c.storage.options["google_service_account_key"], "k");
    let c = load_env(MINIMAL, &env).unwrap();
    assert_eq!(c.storage.options.len(), 1);
    // The whole table cannot be replaced by one variable.
    let err = error_env(&text, &[("ARTIFACT_GATEWAY_STORAGE__OPTIONS", "x")]);
    assert!(
        err.starts_with("ARTIFACT_GATEWAY_STORAGE__OPTIONS: storage.options is a section"),
        "{err}"
    );
}

#[test]
fn env_overrides_a_top_level_key() {
    let c = load_env(MINIMAL, &[("ARTIFACT_GATEWAY_LISTEN", "0.0.0.0:80")]).unwrap();
    assert_eq!(c.listen, "0.0.0.0:80".parse().unwrap());
}

#[test]
fn env_overrides_a_nested_string_without_a_file_entry() {
    let c = load_env(
        "",
        &[("ARTIFACT_GATEWAY_UPSTREAM__URL", "http://jobs:3000")],
    )
    .unwrap();
    assert_eq!(c.upstream.url.authority(), "jobs:3000");
    let c = load_env(
        MINIMAL,
        &[("ARTIFACT_GATEWAY_storage__archive_KEY", "{job_id}.zip")],
    )
    .unwrap();
    assert_eq!(c.storage.archive_key.as_str(), "{job_id}.zip");
}

#[test]
fn env_overrides_a_nested_integer_and_wins_over_the_file() {
    let text = format!("{MINIMAL}[cache]\nmax_bytes = \"64MiB\"\n");
    let c = load_env(&text, &[("ARTIFACT_GATEWAY_CACHE__MAX_BYTES", "1048576")]).unwrap();
    assert_eq!(c.cache.max_bytes, 1 << 20);
    let c = load_env(MINIMAL, &[("ARTIFACT_GATEWAY_CACHE__TTL", "90")]).unwrap();
    assert_eq!(c.cache.ttl, Duration::from_secs(90));
}

#[test]
fn env_overrides_an_array() {
    let env = [(
        "ARTIFACT_GATEWAY_UPSTREAM__REWRITE_BASES",
        r#"["https://a", "http://b/x"]"#,
    )];
    let c = load_env(MINIMAL, &env).unwrap();
    assert_eq!(
        c.upstream.rewrite_bases,
        [base("https://a"), base("http://b/x")]
    );
    let err = error_env(
        MINIMAL,
        &[("ARTIFACT_GATEWAY_UPSTREAM__REWRITE_BASES", "[https://a]")],
    );
    assert!(
        err.starts_with("ARTIFACT_GATEWAY_UPSTREAM__REWRITE_BASES: not a TOML array"),
        "{err}"
    );
}

#[test]
fn env_naming_an_unknown_key_is_an_error_naming_the_variable() {
    let err = error_env(MINIMAL, &[("ARTIFACT_GATEWAY_UPSTREM__URL", "http://x")]);
    assert_eq!(
        err,
        "ARTIFACT_GATEWAY_UPSTREM__URL: unknown key upstrem.url"
    );
    let err = error_env(MINIMAL, &[("ARTIFACT_GATEWAY_UPSTREAM__TIMEOUT", "5s")]);
    assert_eq!(
        err,
        "ARTIFACT_GATEWAY_UPSTREAM__TIMEOUT: unknown key upstream.timeout"
    );
    let err = error_env(MINIMAL, &[("ARTIFACT_GATEWAY_CACHE_TTL", "5s")]);
    assert_eq!(err, "ARTIFACT_GATEWAY_CACHE_TTL: unknown key cache_ttl");
    let err = error_env(MINIMAL, &[("ARTIFACT_GATEWAY_LISTEN__PORT", "1")]);
    assert_eq!(
        err,
        "ARTIFACT_GATEWAY_LISTEN__PORT: unknown key listen.port"
    );
    let text = format!("listen = \"0.0.0.0:1\"\n{MINIMAL}");
    let err = error_env(&text, &[("ARTIFACT_GATEWAY_LISTEN__PORT", "1")]);
    assert_eq!(
        err,
        "ARTIFACT_GATEWAY_LISTEN__PORT: cannot set listen.port: listen is not a section"
    );
    let err = error_env(MINIMAL, &[("ARTIFACT_GATEWAY_", "1")]);
    assert!(
        err.starts_with("ARTIFACT_GATEWAY_: not a configuration key"),
        "{err}"
    );
}

#[test]
fn env_errors_name_the_variable_that_set_the_value() {
    let err = error_env(MINIMAL, &[("ARTIFACT_GATEWAY_CACHE__TTL", "soon")]);
    assert!(err.starts_with("cache.ttl: invalid duration"), "{err}");
    assert!(
        err.ends_with("(set by ARTIFACT_GATEWAY_CACHE__TTL)"),
        "{err}"
    );
    let err = error_env(MINIMAL, &[("ARTIFACT_GATEWAY_UPSTREAM", "x")]);
    assert!(
        err.starts_with("ARTIFACT_GATEWAY_UPSTREAM: upstream is a section"),
        "{err}"
    );
    let env = [
        ("ARTIFACT_GATEWAY_LISTEN", "0.0.0.0:1"),
        ("ARTIFACT_GATEWAY_listen", "0.0.0.0:2"),
    ];
    let err = error_env(MINIMAL, &env);
    assert_eq!(
        err,
        "ARTIFACT_GATEWAY_listen: listen is also set by ARTIFACT_GATEWAY_LISTEN"
    );
}

#[test]
fn env_without_the_prefix_is_ignored() {
    let env = [
        ("PATH", "/bin"),
        ("artifact_gateway_listen", "nonsense"),
        ("ARTIFACT_GATEWAYLISTEN", "x"),
    ];
    assert!(load_env(MINIMAL, &env).is_ok());
}
