//! `[storage]`: URLs, S3 keys, secrets that never show, options, ranges.

use super::*;

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
fn kept_files_and_hot_entries_are_bounded_and_can_be_off() {
    let c = load(&format!(
        "{MINIMAL}[storage]\nopen_files = 0\n[zip]\nhot_entry_cache_bytes = \"0\"\n"
    ))
    .unwrap();
    assert_eq!(c.storage.open_files, 0);
    assert_eq!(c.zip.hot_entry_cache_bytes, 0);
    let c = load(&format!(
        "{MINIMAL}[storage]\nopen_files = 65536\n[zip]\nhot_entry_cache_bytes = \"32MiB\"\n"
    ))
    .unwrap();
    assert_eq!(c.storage.open_files, 65536);
    assert_eq!(c.zip.hot_entry_cache_bytes, 32 << 20);
    let err = error(&format!("{MINIMAL}[storage]\nopen_files = 65537\n"));
    assert_eq!(
        err,
        "storage.open_files: must be at most 65536 (each is a file descriptor)"
    );
    let err = error(&format!(
        "{MINIMAL}[zip]\nhot_entry_cache_bytes = \"32KiB\"\n"
    ));
    assert_eq!(
        err,
        "zip.hot_entry_cache_bytes: must be 0 or at least 64KiB (one entry's largest size)"
    );
    let defaults = load(MINIMAL).unwrap();
    assert_eq!(
        (
            defaults.storage.open_files,
            defaults.zip.hot_entry_cache_bytes
        ),
        (256, 8 << 20)
    );
}
