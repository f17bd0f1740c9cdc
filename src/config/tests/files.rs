//! The example files and a full file: every key parses, defaults are stated.

use super::*;

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
    let example = include_str!("../../../config/gateway.example.toml");
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
    let example = include_str!("../../../config/gateway.example.toml");
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
fn gitlab_example_file_parses_as_upstream_mode() {
    let c = load(include_str!("../../../config/gitlab.example.toml")).unwrap();
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
