//! Errors name the offending key: syntax, unknown keys, types, values, ranges.

use super::*;

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
fn load_reports_the_unreadable_path() {
    let path = Path::new("/nonexistent/artifact-gateway.toml");
    let err = Config::load(path).unwrap_err();
    assert!(matches!(err, ConfigError::Read { .. }), "{err}");
    assert!(err
        .to_string()
        .starts_with("cannot read /nonexistent/artifact-gateway.toml: "));
}
