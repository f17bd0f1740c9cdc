//! `server.trusted_proxies`, `[zip]` limits and `[artifacts]` in both source modes.

use super::*;

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
fn link_keys_are_hex_or_base64_of_at_least_32_bytes() {
    let c = load(MINIMAL).unwrap();
    assert!(c.links.keys.is_empty() && !c.links.recheck);
    assert_eq!(c.links.max_lifetime, std::time::Duration::from_secs(86_400));
    let hex = "00112233445566778899aabbccddeeff00112233445566778899AABBCCDDEEFF";
    // 33 bytes of 0xFB in standard and URL-safe base64.
    let (standard, url_safe) = ("+/v7".repeat(11), "-_v7".repeat(11));
    let c = load(&format!(
        "{MINIMAL}\n[links]\nkeys = [\"{hex}\", \"{standard}\", \"{url_safe}\"]\nmax_lifetime = \"168h\"\nrecheck = true\nservice_token = \"svc\"\n"
    ))
    .unwrap();
    let keys: Vec<&[u8]> = c.links.keys.iter().map(|k| k.0.as_slice()).collect();
    assert_eq!(keys[0][..2], [0x00, 0x11]);
    assert_eq!(keys[0][31], 0xFF);
    assert_eq!(keys[1], &[0xFB; 33][..]);
    assert_eq!(keys[1], keys[2]);
    assert!(c.links.recheck);
    assert_eq!(c.links.service_token.as_ref().unwrap().expose(), "svc");
    // Keys are never printed.
    assert!(!format!("{:?}", c.links).contains("00112233"));
    for (links, want) in [
        (
            "keys = [\"0011\"]",
            "links.keys: each key must be at least 32 bytes",
        ),
        (
            "keys = [\"not a key!\"]",
            "links.keys: each key must be hex or base64",
        ),
        (
            "max_lifetime = \"169h\"",
            "links.max_lifetime: must be between 1s and 7 days",
        ),
        (
            "max_lifetime = \"0s\"",
            "links.max_lifetime: must be between 1s and 7 days",
        ),
        ("service_token = \"\"", "links.service_token"),
    ] {
        let err = error(&format!("{MINIMAL}\n[links]\n{links}\n"));
        assert!(err.starts_with(want), "{links}: {err}");
    }
}
