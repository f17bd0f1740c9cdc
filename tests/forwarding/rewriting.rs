//! What the gateway rewrites and what it tells the backend: links and `Location` naming
//! the gateway (its `public_url` when set), `X-Forwarded-For`/`-Proto`/`-Host` reaching the
//! backend, a client's own forwarded headers dropped unless it is a trusted proxy, whose
//! headers pass and key the cached links.

use sample_backend::BackendBuilder;

use crate::common::{header, Harness, TOKEN};

#[tokio::test]
async fn public_url_is_what_links_are_rewritten_to() {
    let h = Harness::start_with(BackendBuilder::sample_data(), |c| {
        c.public_url = Some(
            artifact_gateway::config::BaseUrl::parse("https://artifacts.example.com").unwrap(),
        );
    })
    .await;
    let response = h.get("/projects/1/jobs?per_page=1", Some(TOKEN)).await;
    let link = header(&response, "link").unwrap();
    assert!(
        link.contains("<https://artifacts.example.com/api/v4/projects/1/jobs?"),
        "{link}"
    );
}

#[tokio::test]
async fn location_naming_the_backend_is_rewritten_to_the_gateway() {
    let h = Harness::start(BackendBuilder::sample_data()).await;
    let response = h.get("/projects/1/jobs/?scope=success", Some(TOKEN)).await;
    assert_eq!(response.status(), 301);
    assert_eq!(
        header(&response, "location").unwrap(),
        format!(
            "http://{}/api/v4/projects/1/jobs?scope=success",
            h.gateway.addr()
        )
    );
}

#[tokio::test]
async fn forwarded_for_proto_and_host_reach_the_backend() {
    let h = Harness::start(BackendBuilder::sample_data()).await;
    h.get("/projects/1/jobs/104", Some(TOKEN)).await;
    let seen = h.backend.requests();
    let request = seen.last().unwrap();
    assert_eq!(request.headers["x-forwarded-for"], "127.0.0.1");
    assert_eq!(request.headers["x-forwarded-proto"], "http");
    assert_eq!(
        request.headers["x-forwarded-host"],
        h.gateway.addr().to_string().as_str()
    );
    // The caller's credentials travel on.
    assert_eq!(request.headers["private-token"], TOKEN);
}

/// What a client says about where it came from, as sent by a peer that is no proxy.
const CLAIMS: [(&str, &str); 5] = [
    ("X-Forwarded-For", "203.0.113.9"),
    ("X-Forwarded-Host", "evil.example"),
    ("X-Forwarded-Proto", "https"),
    ("X-Forwarded-Prefix", "/evil"),
    ("Forwarded", "for=203.0.113.9;host=evil.example"),
];

#[tokio::test]
async fn client_forwarded_headers_never_reach_the_backend_nor_poison_cached_links() {
    let h = Harness::start(BackendBuilder::sample_data().per_page(2)).await;
    let mut poisoned = h.client.get(h.url("/projects/1/jobs"));
    for (name, value) in CLAIMS {
        poisoned = poisoned.header(name, value);
    }
    let first = poisoned.send().await.unwrap();
    let first_link = header(&first, "link").unwrap_or("").to_owned();
    assert!(!first_link.contains("evil"), "{first_link}");
    for (get, post) in [("/projects/1/jobs/104", "/projects/1/jobs/105/play")] {
        let mut request = h.client.get(h.url(get));
        let mut action = h.request(http::Method::POST, post);
        for (name, value) in CLAIMS {
            request = request.header(name, value);
            action = action.header(name, value);
        }
        request.send().await.unwrap();
        action.send().await.unwrap();
    }
    for request in h.backend.requests() {
        let h_ = &request.headers;
        assert_eq!(
            h_["x-forwarded-for"], "127.0.0.1",
            "{}",
            request.path_and_query
        );
        assert_eq!(h_["x-forwarded-proto"], "http");
        assert_eq!(
            h_["x-forwarded-host"],
            h.gateway.addr().to_string().as_str()
        );
        assert!(!h_.contains_key("x-forwarded-prefix") && !h_.contains_key("forwarded"));
    }
    // The next caller of the same list gets links naming the gateway.
    let second = h
        .client
        .get(h.url("/projects/1/jobs"))
        .send()
        .await
        .unwrap();
    let link = header(&second, "link").unwrap().to_owned();
    assert!(!link.contains("evil"), "{link}");
    assert!(
        link.contains(&format!(
            "<http://{}/api/v4/projects/1/jobs?",
            h.gateway.addr()
        )),
        "{link}"
    );
}

#[tokio::test]
async fn a_trusted_proxys_forwarded_headers_pass_and_are_keyed() {
    let h = Harness::start_with(BackendBuilder::sample_data().per_page(2), |c| {
        c.server.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()];
    })
    .await;
    let via_proxy = h
        .client
        .get(h.url("/projects/1/jobs"))
        .header("X-Forwarded-For", "203.0.113.9")
        .header("X-Forwarded-Host", "gitlab.example")
        .header("X-Forwarded-Proto", "https")
        .send()
        .await
        .unwrap();
    let link = header(&via_proxy, "link").unwrap().to_owned();
    assert!(
        link.contains("<https://gitlab.example/api/v4/projects/1/jobs?"),
        "{link}"
    );
    let request = h.backend.requests().pop().unwrap();
    assert_eq!(request.headers["x-forwarded-for"], "203.0.113.9, 127.0.0.1");
    // Another host through the same proxy is another cache entry.
    let other = h
        .client
        .get(h.url("/projects/1/jobs"))
        .header("X-Forwarded-Host", "other.example")
        .send()
        .await
        .unwrap();
    assert_eq!(header(&other, "x-cache"), Some("MISS"));
    let link = header(&other, "link").unwrap();
    assert!(link.contains("//other.example/"), "{link}");
}
