//! End-to-end tests of loading: TOML text and environment through to a validated `Config`.

use super::*;

const MINIMAL: &str = "[upstream]\nurl = \"http://127.0.0.1:3000\"\n";

fn load(text: &str) -> Result<Config, ConfigError> {
    Config::from_toml(text, Vec::new())
}

fn load_env(text: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string()));
    Config::from_toml(text, env.collect::<Vec<_>>())
}

/// The error text for `text`, which must fail.
fn error(text: &str) -> String {
    load(text)
        .expect_err("config should be rejected")
        .to_string()
}

fn error_env(text: &str, env: &[(&str, &str)]) -> String {
    load_env(text, env)
        .expect_err("config should be rejected")
        .to_string()
}

fn base(s: &str) -> BaseUrl {
    BaseUrl::parse(s).unwrap()
}

#[test]
fn defaults_fill_everything_but_the_upstream_url() {
    let c = load(MINIMAL).unwrap();
    assert_eq!(c.listen, "127.0.0.1:8080".parse().unwrap());
    assert_eq!(c.public_url, None);
    assert_eq!(c.log.format, LogFormat::Human);
    assert_eq!(c.log.filter, "info");
    assert_eq!(c.server.header_read_timeout, Duration::from_secs(10));
    assert_eq!(c.server.max_header_bytes, 16384);
    assert_eq!(c.server.shutdown_grace, Duration::from_secs(30));
    assert_eq!(c.upstream.url.as_str(), "http://127.0.0.1:3000");
    assert_eq!(c.upstream.connect_timeout, Duration::from_secs(5));
    assert_eq!(c.upstream.response_timeout, Duration::from_secs(30));
    assert_eq!(c.upstream.pool_idle_timeout, Duration::from_secs(90));
    assert_eq!(c.upstream.pool_max_idle_per_host, 64);
    assert!(c.upstream.rewrite_bases.is_empty());
    assert_eq!(c.cache.max_bytes, 64 * 1024 * 1024);
    assert_eq!(c.cache.ttl, Duration::from_secs(30));
    assert_eq!(c.cache.max_entry_bytes, 1024 * 1024);
    assert_eq!(c.storage.url, "file:///var/lib/artifacts");
    assert_eq!(c.storage.archive_key.render(7, 42), "7/42/artifacts.zip");
    assert_eq!(c.storage.trace_key.render(7, 42), "7/42/job.log");
    let s = &c.storage;
    assert_eq!(s.endpoint, None);
    assert_eq!(s.region, None);
    assert_eq!(s.access_key_id, None);
    assert_eq!(s.secret_access_key, None);
    assert_eq!(s.session_token, None);
    assert!(!s.allow_http);
    assert!(!s.virtual_hosted_style);
    assert_eq!(s.connect_timeout, Duration::from_secs(5));
    assert_eq!(s.read_timeout, Duration::from_secs(30));
    assert!(s.options.is_empty());
    assert!(!s.redirect_downloads);
    assert_eq!(s.presign_ttl, Duration::from_secs(300));
    assert_eq!(c.artifacts.by_ref_max_pages, 10);
    assert_eq!(c.artifacts.by_ref_ttl, Duration::from_secs(10));
}

#[test]
fn with_defaults_matches_a_minimal_file() {
    let built = Config::with_defaults(base("http://127.0.0.1:3000"), DEFAULT_STORAGE_URL.into());
    assert_eq!(
        format!("{built:?}"),
        format!("{:?}", load(MINIMAL).unwrap())
    );
}

#[test]
fn example_file_parses_and_states_the_defaults() {
    let example = include_str!("../../config/gateway.example.toml");
    let c = load(example).unwrap();
    let built = Config::with_defaults(base("http://127.0.0.1:3000"), DEFAULT_STORAGE_URL.into());
    assert_eq!(format!("{c:?}"), format!("{built:?}"));
    // `public_url` has no default, so the example shows it commented out.
    let uncommented = example.replace("# public_url", "public_url");
    let c = load(&uncommented).unwrap();
    assert_eq!(c.public_url.unwrap().as_str(), "https://gitlab.example.com");
}

#[test]
fn example_file_s3_keys_parse() {
    // The example shows the optional S3 keys commented out; uncommented, they form a setup.
    let example = include_str!("../../config/gateway.example.toml");
    let mut text = example.to_owned();
    for key in [
        "endpoint",
        "region",
        "access_key_id",
        "secret_access_key",
        "session_token",
    ] {
        let commented = format!("\n# {key} = ");
        assert!(text.contains(&commented), "{key} is in the example");
        text = text.replace(&commented, &format!("\n{key} = "));
    }
    let s = load(&text).unwrap().storage;
    assert_eq!(
        s.endpoint.as_deref(),
        Some("https://minio.example.com:9000")
    );
    assert_eq!(s.region.as_deref(), Some("us-east-1"));
    assert_eq!(s.access_key_id.as_deref(), Some("artifact-gateway"));
    assert!(s.secret_access_key.is_some() && s.session_token.is_some());
}

#[test]
fn full_s3_block() {
    let c = load(&format!(
        r#"{MINIMAL}
        [storage]
        url = "s3://artifacts/ci"
        endpoint = "HTTPS://s3.example.com:9000/"
        region = "eu-central-1"
        access_key_id = "AKIAEXAMPLE"
        secret_access_key = "wJalrXUtnFEMI/K7MDENG"
        session_token = "FwoGZXIvYXdzEXAMPLE"
        allow_http = false
        virtual_hosted_style = true
        connect_timeout = "2s"
        read_timeout = "1m"
        redirect_downloads = true
        presign_ttl = "1h"
        [storage.options]
        aws_checksum_algorithm = "sha256"
        [artifacts]
        by_ref_max_pages = 3
        by_ref_ttl = "1m"
        "#
    ))
    .unwrap();
    let s = &c.storage;
    assert_eq!(s.url, "s3://artifacts/ci");
    assert_eq!(s.endpoint.as_deref(), Some("https://s3.example.com:9000"));
    assert_eq!(s.region.as_deref(), Some("eu-central-1"));
    assert_eq!(s.access_key_id.as_deref(), Some("AKIAEXAMPLE"));
    assert_eq!(
        s.secret_access_key.as_ref().map(Secret::expose),
        Some("wJalrXUtnFEMI/K7MDENG")
    );
    assert_eq!(
        s.session_token.as_ref().map(Secret::expose),
        Some("FwoGZXIvYXdzEXAMPLE")
    );
    assert!(!s.allow_http);
    assert!(s.virtual_hosted_style);
    assert_eq!(s.connect_timeout, Duration::from_secs(2));
    assert_eq!(s.read_timeout, Duration::from_secs(60));
    assert_eq!(s.options["aws_checksum_algorithm"], "sha256");
    assert!(s.redirect_downloads);
    assert_eq!(s.presign_ttl, Duration::from_secs(3600));
    assert_eq!(c.artifacts.by_ref_max_pages, 3);
    assert_eq!(c.artifacts.by_ref_ttl, Duration::from_secs(60));
}

#[test]
fn plain_http_endpoint_needs_allow_http() {
    let text = format!("{MINIMAL}[storage]\nurl = \"s3://b\"\nendpoint = \"http://minio:9000\"\n");
    let err = error(&text);
    assert!(
        err.starts_with("storage.allow_http: must be true to use a plain-HTTP storage.endpoint"),
        "{err}"
    );
    let c = load(&format!("{text}allow_http = true\n")).unwrap();
    assert_eq!(c.storage.endpoint.as_deref(), Some("http://minio:9000"));
    assert!(c.storage.allow_http);
    // An endpoint set from the environment is checked the same way.
    let err = error_env(
        MINIMAL,
        &[("ARTIFACT_GATEWAY_STORAGE__ENDPOINT", "http://minio:9000")],
    );
    assert!(err.starts_with("storage.allow_http: must be true"), "{err}");
}

#[test]
fn bad_endpoints_are_named() {
    for (endpoint, message) in [
        ("minio:9000", "must be an absolute http:// or https:// URL"),
        (
            "https://h/bucket",
            "must be http(s)://host[:port], without a path",
        ),
        ("https://user:pw@h", "must not contain credentials"),
        ("", "must be an absolute http:// or https:// URL"),
    ] {
        let err = error(&format!("{MINIMAL}[storage]\nendpoint = \"{endpoint}\"\n"));
        assert_eq!(err, format!("storage.endpoint: {message}"));
    }
}

#[test]
fn redirect_downloads_needs_s3() {
    let err = error(&format!("{MINIMAL}[storage]\nredirect_downloads = true\n"));
    assert!(
        err.starts_with("storage.redirect_downloads: only supported with an s3:// storage.url"),
        "{err}"
    );
    let err = error(&format!(
        "{MINIMAL}[storage]\nurl = \"gs://b\"\nredirect_downloads = true\n"
    ));
    assert!(err.starts_with("storage.redirect_downloads: "), "{err}");
    let c = load(&format!(
        "{MINIMAL}[storage]\nurl = \"S3://b\"\nredirect_downloads = true\n"
    ))
    .unwrap();
    assert!(c.storage.redirect_downloads);
}

#[test]
fn bucket_urls_need_a_bucket() {
    for scheme in ["s3", "gs", "az", "abfs"] {
        let err = error(&format!(
            "{MINIMAL}[storage]\nurl = \"{scheme}:///prefix\"\n"
        ));
        assert_eq!(
            err,
            format!("storage.url: needs a bucket (container) name after {scheme}://, e.g. {scheme}://bucket/prefix")
        );
        let err = error(&format!("{MINIMAL}[storage]\nurl = \"{scheme}://\"\n"));
        assert!(err.starts_with("storage.url: must be a URL"), "{err}");
        let c = load(&format!(
            "{MINIMAL}[storage]\nurl = \"{scheme}://bucket\"\n"
        ))
        .unwrap();
        assert_eq!(c.storage.url, format!("{scheme}://bucket"));
    }
}

#[test]
fn secrets_never_show() {
    const SECRET: &str = "hunter2-s3cr3t";
    let c = load(&format!(
        "{MINIMAL}[storage]\nsecret_access_key = \"{SECRET}\"\nsession_token = \"{SECRET}\"\n\
         [storage.options]\nazure_storage_access_key = \"{SECRET}\"\n"
    ))
    .unwrap();
    let debug = format!("{c:?}");
    assert!(!debug.contains(SECRET), "{debug}");
    assert!(
        debug.contains(r#"secret_access_key: Some([REDACTED])"#),
        "{debug}"
    );
    assert!(
        debug.contains(r#"options: {"azure_storage_access_key": [REDACTED]}"#),
        "{debug}"
    );
    let secret = c.storage.secret_access_key.unwrap();
    assert_eq!(secret.expose(), SECRET);
    assert_eq!(secret.to_string(), "[REDACTED]");
    assert_eq!(format!("{secret:?}"), "[REDACTED]");
    assert_eq!(secret, Secret::new(SECRET));
    assert_eq!(c.storage.options["azure_storage_access_key"], SECRET);
}

#[test]
fn wrong_types_of_secrets_are_not_echoed() {
    for (value, found) in [
        ("1234567890", "integer"),
        ("12.5", "floating point"),
        ("true", "boolean"),
        ("[\"hunter2\"]", "array"),
        ("{ k = \"hunter2\" }", "table"),
    ] {
        for key in ["secret_access_key", "session_token", "options.key"] {
            let err = error(&format!("{MINIMAL}[storage]\n{key} = {value}\n"));
            assert_eq!(
                err,
                format!("storage.{key}: invalid type: {found}, expected a string")
            );
        }
    }
    // A TOML date-time reaches the config as a string (as for every key), so it is taken as text.
    let c = load(&format!(
        "{MINIMAL}[storage]\nsecret_access_key = 1979-05-27T07:32:00Z\n"
    ))
    .unwrap();
    let secret = c.storage.secret_access_key.unwrap();
    assert_eq!(secret.expose(), "1979-05-27T07:32:00Z");
    let err = error(&format!("{MINIMAL}[storage]\noptions = \"hunter2\"\n"));
    assert!(
        err.starts_with("storage.options: invalid type: string, expected a table of strings"),
        "{err}"
    );
    let err = error(&format!("{MINIMAL}[storage]\noptions = [\"hunter2\"]\n"));
    assert!(!err.contains("hunter2"), "{err}");
    let err = error(&format!("{MINIMAL}[storage]\nsecret_access_key = \" \"\n"));
    assert_eq!(
        err,
        "storage.secret_access_key: must not be empty (leave the key out instead)"
    );
}

#[test]
fn options_table_parses() {
    let c = load(&format!(
        "{MINIMAL}[storage]\nurl = \"gs://bucket\"\n[storage.options]\n\
         google_service_account = \"/etc/gcs.json\"\n\"Odd-Key\" = \"\"\n"
    ))
    .unwrap();
    let options: Vec<_> = c
        .storage
        .options
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        options,
        [("Odd-Key", ""), ("google_service_account", "/etc/gcs.json")]
    );
    let c = load(&format!(
        "{MINIMAL}[storage]\noptions = {{ azure_storage_account_name = \"acct\" }}\n"
    ))
    .unwrap();
    assert_eq!(c.storage.options["azure_storage_account_name"], "acct");
    let err = error(&format!("{MINIMAL}[storage.options]\n\"\" = \"x\"\n"));
    assert_eq!(err, "storage.options: keys must not be empty");
}

#[test]
fn storage_and_artifacts_ranges_are_named() {
    for ttl in ["0s", "500ms", "169h"] {
        let err = error(&format!("{MINIMAL}[storage]\npresign_ttl = \"{ttl}\"\n"));
        assert_eq!(
            err,
            "storage.presign_ttl: must be between 1s and 7 days (168h)"
        );
    }
    for ttl in ["1s", "168h"] {
        load(&format!("{MINIMAL}[storage]\npresign_ttl = \"{ttl}\"\n")).unwrap();
    }
    let err = error(&format!("{MINIMAL}[storage]\npresign_ttl = \"soon\"\n"));
    assert!(
        err.starts_with("storage.presign_ttl: invalid duration"),
        "{err}"
    );
    for key in ["connect_timeout", "read_timeout"] {
        let err = error(&format!("{MINIMAL}[storage]\n{key} = 0\n"));
        assert_eq!(err, format!("storage.{key}: must be greater than zero"));
    }
    for pages in ["0", "1001"] {
        let err = error(&format!(
            "{MINIMAL}[artifacts]\nby_ref_max_pages = {pages}\n"
        ));
        assert_eq!(
            err,
            "artifacts.by_ref_max_pages: must be between 1 and 1000"
        );
    }
    let err = error(&format!("{MINIMAL}[artifacts]\nby_ref_max_pages = -1\n"));
    assert!(
        err.starts_with("artifacts.by_ref_max_pages: invalid value"),
        "{err}"
    );
    let err = error(&format!("{MINIMAL}[artifacts]\nby_ref_ttl = \"0ms\"\n"));
    assert_eq!(err, "artifacts.by_ref_ttl: must be greater than zero");
    let err = error(&format!("{MINIMAL}[storage]\nregion = \"\"\n"));
    assert!(
        err.starts_with("storage.region: must not be empty"),
        "{err}"
    );
    let err = error(&format!("{MINIMAL}[artifacts]\nby_ref_pages = 1\n"));
    assert!(
        err.starts_with("artifacts.by_ref_pages: unknown key"),
        "{err}"
    );
}

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
fn full_file() {
    let c = load(
        r#"
        listen = "0.0.0.0:9000"
        public_url = "https://gitlab.example.com/"
        [log]
        format = "json"
        filter = "artifact_gateway=debug"
        [server]
        header_read_timeout = "500ms"
        max_header_bytes = "32KiB"
        shutdown_grace = 0
        [upstream]
        url = "https://jobs.internal/gitlab/"
        connect_timeout = 2
        response_timeout = "1m"
        pool_idle_timeout = "1h"
        pool_max_idle_per_host = 8
        rewrite_bases = ["https://gitlab.example.com", "http://gitlab:8080/"]
        [cache]
        max_bytes = 1048576
        ttl = "5s"
        max_entry_bytes = "64 KiB"
        [storage]
        url = "s3://artifacts/ci"
        archive_key = "p{project_id}/j{job_id}.zip"
        trace_key = "logs/{job_id}.log"
        "#,
    )
    .unwrap();
    assert_eq!(c.listen, "0.0.0.0:9000".parse().unwrap());
    assert_eq!(c.public_url.unwrap().as_str(), "https://gitlab.example.com");
    assert_eq!(c.log.format, LogFormat::Json);
    assert_eq!(c.log.filter, "artifact_gateway=debug");
    assert_eq!(c.server.header_read_timeout, Duration::from_millis(500));
    assert_eq!(c.server.max_header_bytes, 32 * 1024);
    assert_eq!(c.server.shutdown_grace, Duration::ZERO);
    let up = &c.upstream;
    assert_eq!(up.url.as_str(), "https://jobs.internal/gitlab");
    assert_eq!(up.url.path_prefix(), "/gitlab");
    assert_eq!(up.connect_timeout, Duration::from_secs(2));
    assert_eq!(up.response_timeout, Duration::from_secs(60));
    assert_eq!(up.pool_idle_timeout, Duration::from_secs(3600));
    assert_eq!(up.pool_max_idle_per_host, 8);
    assert_eq!(
        up.rewrite_bases,
        [
            base("https://gitlab.example.com"),
            base("http://gitlab:8080")
        ]
    );
    assert_eq!(c.cache.max_bytes, 1 << 20);
    assert_eq!(c.cache.ttl, Duration::from_secs(5));
    assert_eq!(c.cache.max_entry_bytes, 64 * 1024);
    assert_eq!(c.storage.url, "s3://artifacts/ci");
    assert_eq!(c.storage.archive_key.render(3, 9), "p3/j9.zip");
    assert_eq!(c.storage.trace_key.render(3, 9), "logs/9.log");
}

#[test]
fn syntax_error_keeps_line_and_column() {
    let err = load("listen = \n").unwrap_err();
    assert!(
        matches!(&err, ConfigError::Syntax(m) if m.contains("line 1")),
        "{err}"
    );
}

#[test]
fn unknown_top_level_key_is_named() {
    let err = error(&format!("listn = \"0.0.0.0:1\"\n{MINIMAL}"));
    assert!(err.starts_with("listn: unknown key"), "{err}");
    let err = error(&format!("{MINIMAL}[upstrem]\nurl = \"http://x\"\n"));
    assert!(err.starts_with("upstrem: unknown key"), "{err}");
}

#[test]
fn unknown_nested_key_is_named_with_its_section() {
    let err = error("[upstream]\nurl = \"http://x\"\ntimeuot = \"5s\"\n");
    assert!(err.starts_with("upstream.timeuot: unknown key"), "{err}");
    assert!(
        err.contains("connect_timeout"),
        "lists the known keys: {err}"
    );
}

#[test]
fn wrong_type_is_named() {
    let err = error(&format!("listen = 8080\n{MINIMAL}"));
    assert!(
        err.starts_with("listen: invalid type: integer `8080`"),
        "{err}"
    );
    let err = error(&format!("{MINIMAL}pool_max_idle_per_host = \"many\"\n"));
    assert!(
        err.starts_with("upstream.pool_max_idle_per_host: invalid type"),
        "{err}"
    );
    let err = error(&format!("{MINIMAL}rewrite_bases = \"https://a\"\n"));
    assert!(
        err.starts_with("upstream.rewrite_bases: invalid type"),
        "{err}"
    );
    let err = error(&format!("{MINIMAL}[cache]\nttl = 1.5\n"));
    assert!(
        err.starts_with("cache.ttl: invalid type: floating point"),
        "{err}"
    );
    let err = error(&format!("{MINIMAL}[cache]\nmax_bytes = -1\n"));
    assert_eq!(err, "cache.max_bytes: must not be negative");
    let err = error(&format!("server = 1\n{MINIMAL}"));
    assert!(err.starts_with("server: invalid type"), "{err}");
}

#[test]
fn bad_duration_is_named() {
    let err = error(&format!("{MINIMAL}connect_timeout = \"5 sec\"\n"));
    assert!(
        err.starts_with("upstream.connect_timeout: invalid duration \"5 sec\""),
        "{err}"
    );
}

#[test]
fn bad_size_is_named() {
    let err = error(&format!("{MINIMAL}[cache]\nmax_bytes = \"64MB\"\n"));
    assert!(
        err.starts_with("cache.max_bytes: invalid size \"64MB\""),
        "{err}"
    );
}

#[test]
fn bad_urls_are_named() {
    assert_eq!(
        error("[upstream]\nurl = \"127.0.0.1:3000\"\n"),
        "upstream.url: must be an absolute http:// or https:// URL"
    );
    let err = error(&format!(
        "{MINIMAL}rewrite_bases = [\"https://a\", \"ftp://b\"]\n"
    ));
    assert!(
        err.starts_with("upstream.rewrite_bases[1]: must be"),
        "{err}"
    );
    let err = error(&format!("public_url = \"https://h/?x=1\"\n{MINIMAL}"));
    assert_eq!(err, "public_url: must not have a query or fragment");
    let err = error(&format!("{MINIMAL}[storage]\nurl = \"ftp://host/dir\"\n"));
    assert!(
        err.starts_with("storage.url: must be a URL with scheme file, s3"),
        "{err}"
    );
    let err = error(&format!("listen = \"localhost\"\n{MINIMAL}"));
    assert!(err.starts_with("listen: not a socket address"), "{err}");
}

#[test]
fn bad_template_placeholder_is_named() {
    let err = error(&format!(
        "{MINIMAL}[storage]\narchive_key = \"{{project}}/{{job_id}}.zip\"\n"
    ));
    assert!(
        err.starts_with("storage.archive_key: unknown placeholder {project}"),
        "{err}"
    );
}

#[test]
fn missing_upstream_url_is_named() {
    assert_eq!(error(""), "upstream.url: required");
    assert_eq!(
        error("[upstream]\nconnect_timeout = \"1s\"\n"),
        "upstream.url: required"
    );
}

#[test]
fn range_checks_are_named() {
    let err = error(&format!("{MINIMAL}response_timeout = \"0s\"\n"));
    assert_eq!(err, "upstream.response_timeout: must be greater than zero");
    let err = error(&format!("{MINIMAL}[server]\nmax_header_bytes = 4096\n"));
    assert!(
        err.starts_with("server.max_header_bytes: must be between 8192"),
        "{err}"
    );
    let err = error(&format!(
        "{MINIMAL}[cache]\nmax_bytes = \"1MiB\"\nmax_entry_bytes = \"2MiB\"\n"
    ));
    assert_eq!(
        err,
        "cache.max_entry_bytes: must not exceed cache.max_bytes (1048576)"
    );
    let err = error(&format!("{MINIMAL}[log]\nformat = \"xml\"\n"));
    assert_eq!(err, "log.format: must be \"human\" or \"json\"");
}

#[test]
fn unset_entry_limit_follows_a_small_cache_down() {
    let c = load(&format!("{MINIMAL}[cache]\nmax_bytes = \"512KiB\"\n")).unwrap();
    assert_eq!(c.cache.max_entry_bytes, 512 * 1024);
    let c = load(&format!(
        "{MINIMAL}[cache]\nmax_bytes = 0\nmax_entry_bytes = \"8MiB\"\n"
    ))
    .unwrap();
    assert_eq!((c.cache.max_bytes, c.cache.max_entry_bytes), (0, 8 << 20));
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

#[test]
fn load_reports_the_unreadable_path() {
    let path = Path::new("/nonexistent/artifact-gateway.toml");
    let err = Config::load(path).unwrap_err();
    assert!(matches!(err, ConfigError::Read { .. }), "{err}");
    assert!(err
        .to_string()
        .starts_with("cannot read /nonexistent/artifact-gateway.toml: "));
}

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
    let example = include_str!("../../config/gateway.example.toml");
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

#[test]
fn trusted_proxies_parse_cidrs_and_addresses_and_name_a_bad_entry() {
    let c = load(&format!(
        "{MINIMAL}\n[server]\ntrusted_proxies = [\"10.0.0.0/8\", \"192.168.1.7\", \"fd00::/8\"]\n"
    ))
    .unwrap();
    let s = &c.server;
    assert!(s.is_trusted_proxy("10.200.0.1".parse().unwrap()));
    assert!(s.is_trusted_proxy("::ffff:10.0.0.1".parse().unwrap()));
    assert!(s.is_trusted_proxy("192.168.1.7".parse().unwrap()));
    assert!(!s.is_trusted_proxy("192.168.1.8".parse().unwrap()));
    assert!(s.is_trusted_proxy("fd12::1".parse().unwrap()));
    assert!(!s.is_trusted_proxy("127.0.0.1".parse().unwrap()));
    assert!(load(MINIMAL).unwrap().server.trusted_proxies.is_empty());
    let err = error(&format!(
        "{MINIMAL}\n[server]\ntrusted_proxies = [\"10.0.0.0/8\", \"10.0.0.0/33\"]\n"
    ));
    assert!(err.starts_with("server.trusted_proxies[1]:"), "{err}");
}

#[test]
fn zip_decoder_memory_and_budget_are_sizes_checked_against_each_other() {
    let c = load(MINIMAL).unwrap();
    assert_eq!(c.zip.max_decoder_memory, 64 << 20);
    assert_eq!(c.zip.memory_budget, 512 << 20);
    let c = load(&format!(
        "{MINIMAL}[zip]\nmax_decoder_memory = \"8MiB\"\nmemory_budget = \"20MiB\"\n"
    ))
    .unwrap();
    assert_eq!(c.zip.max_decoder_memory, 8 << 20);
    assert_eq!(c.zip.memory_budget, 20 << 20);
    let e = error(&format!(
        "{MINIMAL}[zip]\nmax_decoder_memory = \"512KiB\"\n"
    ));
    assert!(e.contains("zip.max_decoder_memory"), "{e}");
    let e = error(&format!(
        "{MINIMAL}[zip]\nmax_decoder_memory = \"64MiB\"\nmemory_budget = \"32MiB\"\n"
    ));
    assert!(
        e.contains("zip.memory_budget") && e.contains("zip.max_decoder_memory"),
        "{e}"
    );
    let e = error(&format!("{MINIMAL}[zip]\nmemory_budget = \"lots\"\n"));
    assert!(e.contains("zip.memory_budget"), "{e}");
}

#[test]
fn artifacts_source_and_the_upstream_keys() {
    let c = load(MINIMAL).unwrap();
    assert_eq!(c.artifacts.source, ArtifactSource::Storage);
    assert!(!c.artifacts.redirect && c.artifacts.allowed_hosts.is_empty());
    let c = load(&format!(
        "{MINIMAL}[artifacts]\nsource = \"upstream\"\nredirect = true\n\
         allowed_hosts = [\"S3.Example.com.\", \"*.storage.googleapis.com\", \"10.0.0.5\", \"[::1]\"]\n"
    ))
    .unwrap();
    let a = &c.artifacts;
    assert_eq!(a.source, ArtifactSource::Upstream);
    assert!(a.redirect);
    assert_eq!(
        a.allowed_hosts,
        [
            "s3.example.com",
            "*.storage.googleapis.com",
            "10.0.0.5",
            "[::1]"
        ]
    );
    for (host, allowed) in [
        ("s3.example.com", true),
        ("S3.EXAMPLE.COM", true),
        ("s3.example.com.", true),
        ("evil-s3.example.com", false),
        ("s3.example.com.evil", false),
        ("bucket.storage.googleapis.com", true),
        ("a.b.storage.googleapis.com", true),
        ("storage.googleapis.com", false),
        ("xstorage.googleapis.com", false),
        ("10.0.0.5", true),
        ("10.0.0.6", false),
        ("[::1]", true),
        ("169.254.169.254", false),
    ] {
        assert_eq!(a.host_allowed(host), allowed, "{host}");
    }
    assert!(load(MINIMAL).unwrap().artifacts.host_allowed("anything"));
}

#[test]
fn artifacts_upstream_keys_are_checked() {
    let err = error(&format!("{MINIMAL}[artifacts]\nsource = \"s3\"\n"));
    assert_eq!(err, "artifacts.source: must be \"storage\" or \"upstream\"");
    let err = error(&format!("{MINIMAL}[artifacts]\nredirect = true\n"));
    assert!(
        err.starts_with("artifacts.redirect: only applies with artifacts.source = \"upstream\""),
        "{err}"
    );
    let err = error(&format!(
        "{MINIMAL}[artifacts]\nallowed_hosts = [\"a.example\"]\n"
    ));
    assert!(
        err.starts_with("artifacts.allowed_hosts: only applies"),
        "{err}"
    );
    for bad in [
        "https://s3.example.com",
        "s3.example.com:9000",
        "a/b",
        "",
        "*",
        "a.*.com",
        "*.",
    ] {
        let err = error(&format!(
            "{MINIMAL}[artifacts]\nsource = \"upstream\"\nallowed_hosts = [{bad:?}]\n"
        ));
        assert!(err.starts_with("artifacts.allowed_hosts: "), "{bad}: {err}");
        assert!(err.contains("is not a host name"), "{bad}: {err}");
    }
    // From the environment: a TOML array.
    let c = load_env(
        MINIMAL,
        &[
            ("ARTIFACT_GATEWAY_ARTIFACTS__SOURCE", "upstream"),
            (
                "ARTIFACT_GATEWAY_ARTIFACTS__ALLOWED_HOSTS",
                "[\"s3.example.com\"]",
            ),
        ],
    )
    .unwrap();
    assert_eq!(c.artifacts.source, ArtifactSource::Upstream);
    assert_eq!(c.artifacts.allowed_hosts, ["s3.example.com"]);
}

#[test]
fn gitlab_example_file_parses_as_upstream_mode() {
    let c = load(include_str!("../../config/gitlab.example.toml")).unwrap();
    assert_eq!(c.artifacts.source, ArtifactSource::Upstream);
    assert!(!c.artifacts.redirect);
    assert!(c
        .artifacts
        .host_allowed("artifacts.s3.eu-central-1.amazonaws.com"));
    assert!(c
        .artifacts
        .host_allowed("bucket.s3.eu-central-1.amazonaws.com"));
    assert!(!c.artifacts.host_allowed("169.254.169.254"));
    assert_eq!(
        c.upstream.url.as_str(),
        "http://gitlab-workhorse.internal:8181"
    );
    assert_eq!(c.public_url.unwrap().as_str(), "https://gitlab.example.com");
    assert_eq!(c.cache.ttl, Duration::from_secs(30));
}
