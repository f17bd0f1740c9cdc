//! Forwarded endpoints: the gateway answers exactly as the jobs backend does, with absolute
//! upstream URLs rewritten to the gateway, and fails as GitLab-style JSON when the backend
//! cannot answer.

mod common;

use std::time::Duration;

use common::{header, json, Harness, TOKEN};
use sample_backend::{BackendBuilder, SampleBackend};

const PAGINATION: [&str; 6] = [
    "x-page",
    "x-per-page",
    "x-next-page",
    "x-prev-page",
    "x-total",
    "x-total-pages",
];

/// Ask the backend directly, as a reference for what the gateway must relay.
async fn direct(backend: &SampleBackend, path: &str) -> reqwest::Response {
    common::client()
        .get(format!("{}/api/v4{path}", backend.url()))
        .header("PRIVATE-TOKEN", TOKEN)
        .send()
        .await
        .unwrap()
}

async fn assert_relayed_as_sent(h: &Harness, path: &str) {
    let reference = direct(&h.backend, path).await;
    let through = h.get(path, Some(TOKEN)).await;
    assert_eq!(through.status(), reference.status(), "{path}");
    for name in PAGINATION {
        assert_eq!(
            header(&through, name),
            header(&reference, name),
            "{name} of {path}"
        );
    }
    let link_reference = header(&reference, "link")
        .map(|l| l.replace(&h.backend.url(), &format!("http://{}", h.gateway.addr())));
    assert_eq!(
        header(&through, "link").map(str::to_owned),
        link_reference,
        "link of {path}"
    );
    assert_eq!(
        header(&through, "content-type"),
        header(&reference, "content-type")
    );
    let (a, b) = (
        through.bytes().await.unwrap(),
        reference.bytes().await.unwrap(),
    );
    assert_eq!(a, b, "body of {path}");
}

#[tokio::test]
async fn list_get_and_pipeline_endpoints_relay_status_body_and_pagination() {
    let h = Harness::start(BackendBuilder::sample_data()).await;
    for path in [
        "/projects/1/jobs",
        "/projects/1/jobs?scope[]=success&scope[]=failed",
        "/projects/1/jobs?scope[]=success&scope[]=failed&per_page=2&page=2",
        "/projects/demo%2Fapp/jobs?scope=success&per_page=1",
        "/projects/1/pipelines/13/jobs?per_page=2",
        "/projects/1/pipelines/13/jobs?per_page=2&page=2",
        "/projects/1/jobs/104",
        "/projects/demo%2Fapp/jobs/104",
        "/projects/1/jobs/999",
        "/projects/1/pipelines/999/jobs",
    ] {
        assert_relayed_as_sent(&h, path).await;
    }
    // The scope filter really reached the backend: only success and failed jobs came back.
    let jobs = json(
        h.get(
            "/projects/1/jobs?scope[]=success&scope[]=failed",
            Some(TOKEN),
        )
        .await,
    )
    .await;
    let statuses: Vec<&str> = jobs
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["status"].as_str().unwrap())
        .collect();
    assert!(!statuses.is_empty());
    assert!(
        statuses.iter().all(|s| *s == "success" || *s == "failed"),
        "{statuses:?}"
    );
    assert!(statuses.contains(&"failed"));
}

#[tokio::test]
async fn pagination_link_names_the_gateway_and_can_be_walked() {
    let h = Harness::start(BackendBuilder::sample_data()).await;
    let gateway = format!("http://{}", h.gateway.addr());
    let mut url = h.url("/projects/1/jobs?per_page=2");
    let mut ids = Vec::new();
    for _ in 0..10 {
        let response = h
            .client
            .get(&url)
            .header("PRIVATE-TOKEN", TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let link = header(&response, "link").unwrap_or_default().to_owned();
        assert!(
            !link.contains(&h.backend.url()),
            "upstream URL leaked: {link}"
        );
        for page in json(response).await.as_array().unwrap() {
            ids.push(page["id"].as_u64().unwrap());
        }
        let next = link
            .split(',')
            .find(|part| part.contains("rel=\"next\""))
            .map(|part| {
                part.trim()
                    .trim_start_matches('<')
                    .split('>')
                    .next()
                    .unwrap()
                    .to_owned()
            });
        match next {
            Some(next) => {
                assert!(next.starts_with(&gateway), "{next}");
                url = next;
            }
            None => break,
        }
    }
    assert_eq!(ids, [107, 106, 105, 104, 103, 102, 101]);
}

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

#[tokio::test]
async fn mutations_relay_status_and_body_and_post_bodies_arrive_intact() {
    let h = Harness::start(BackendBuilder::sample_data()).await;
    let post = |path: &str| h.request(http::Method::POST, path);

    let cancel = post("/projects/1/jobs/106/cancel").send().await.unwrap();
    assert_eq!(cancel.status(), 201);
    assert_eq!(json(cancel).await["status"], "canceled");

    let retry = post("/projects/1/jobs/102/retry").send().await.unwrap();
    assert_eq!(retry.status(), 201);
    let retried = json(retry).await;
    assert_eq!(retried["name"], "test");
    assert_eq!(retried["status"], "pending");
    assert!(retried["id"].as_u64().unwrap() > 107);

    let erase = post("/projects/1/jobs/101/erase").send().await.unwrap();
    assert_eq!(erase.status(), 201);
    assert!(json(erase).await.get("artifacts_file").is_none());

    let keep = post("/projects/1/jobs/104/artifacts/keep")
        .send()
        .await
        .unwrap();
    assert_eq!(keep.status(), 200);
    assert_eq!(json(keep).await["id"], 104);

    let variables = r#"{"job_variables_attributes":[{"key":"GREETING","value":"héllo wörld"}]}"#;
    let play = post("/projects/demo%2Fapp/jobs/105/play")
        .header("Content-Type", "application/json")
        .body(variables)
        .send()
        .await
        .unwrap();
    assert_eq!(play.status(), 200);
    assert_eq!(json(play).await["status"], "pending");
    let recorded = h.backend.requests();
    let play_request = recorded
        .iter()
        .find(|r| r.path_and_query.ends_with("/105/play"))
        .unwrap();
    assert_eq!(play_request.body, variables.as_bytes());

    // GitLab's refusals come back unchanged.
    let again = post("/projects/1/jobs/105/play").send().await.unwrap();
    assert_eq!(again.status(), 400);
    assert_eq!(
        json(again).await["message"],
        "400 Bad request - Unplayable Job"
    );
    let not_retryable = post("/projects/1/jobs/106/retry").send().await.unwrap();
    assert_eq!(
        not_retryable.status(),
        201,
        "106 was canceled above, so it is retryable"
    );
    let not_erasable = post("/projects/1/jobs/105/erase").send().await.unwrap();
    assert_eq!(not_erasable.status(), 403);
}

#[tokio::test]
async fn a_large_post_body_streams_through_unchanged() {
    let h = Harness::start(BackendBuilder::sample_data()).await;
    let body: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let response = h
        .request(http::Method::POST, "/projects/1/jobs/105/play")
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            body.chunks(64 * 1024)
                .map(|c| Ok::<_, std::io::Error>(c.to_vec()))
                .collect::<Vec<_>>(),
        )))
        .send()
        .await
        .unwrap();
    // Not JSON, so the backend refuses it, but only after receiving every byte.
    assert_eq!(response.status(), 400);
    let recorded = h.backend.requests();
    assert_eq!(recorded.last().unwrap().body.len(), body.len());
    assert!(recorded.last().unwrap().body == body);
}

#[tokio::test]
async fn authentication_and_visibility_answers_pass_through() {
    let h = Harness::start(BackendBuilder::sample_data()).await;
    let bad = h.get("/projects/1/jobs", Some("wrong-token")).await;
    assert_eq!(bad.status(), 401);
    assert_eq!(
        json(bad).await,
        serde_json::json!({"message": "401 Unauthorized"})
    );

    let hidden = h.get("/projects/2/jobs/201", Some("outsider-token")).await;
    assert_eq!(hidden.status(), 404);
    assert_eq!(
        json(hidden).await,
        serde_json::json!({"message": "404 Project Not Found"})
    );

    let anonymous = h.get("/projects/demo%2Fsecret/jobs", None).await;
    assert_eq!(anonymous.status(), 404);

    let by_query = h
        .client
        .get(h.url("/projects/2/jobs/201?private_token=demo-token"))
        .send()
        .await
        .unwrap();
    assert_eq!(by_query.status(), 200);
    let bearer = h
        .client
        .get(h.url("/projects/2/jobs/201"))
        .bearer_auth("demo-token")
        .send()
        .await
        .unwrap();
    assert_eq!(bearer.status(), 200);
}

#[tokio::test]
async fn backend_down_is_a_502_json() {
    // Bind and drop a listener to get a port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = common::test_config(&format!("http://127.0.0.1:{port}"));
    let gateway = artifact_gateway::listener::RunningGateway::start(config)
        .await
        .unwrap();
    for path in ["/projects/1/jobs", "/projects/1/jobs/1/cancel"] {
        let url = format!("http://{}/api/v4{path}", gateway.addr());
        let request = if path.ends_with("cancel") {
            common::client().post(url)
        } else {
            common::client().get(url)
        };
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 502);
        assert_eq!(header(&response, "content-type"), Some("application/json"));
        assert_eq!(
            json(response).await,
            serde_json::json!({"message": "502 Bad Gateway"})
        );
    }
}

#[tokio::test]
async fn backend_slower_than_the_timeout_is_a_504_json() {
    let h = Harness::start_with(
        BackendBuilder::sample_data().delay(Duration::from_secs(3)),
        |c| {
            c.upstream.response_timeout = Duration::from_millis(300);
        },
    )
    .await;
    let started = std::time::Instant::now();
    let response = h.get("/projects/1/jobs/104", Some(TOKEN)).await;
    assert_eq!(response.status(), 504);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(
        json(response).await,
        serde_json::json!({"message": "504 Gateway Timeout"})
    );
}

#[tokio::test]
async fn other_paths_are_forwarded_too() {
    let h = Harness::start(BackendBuilder::sample_data()).await;
    let response = h
        .client
        .get(format!("http://{}/api/v4/version", h.gateway.addr()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    assert_eq!(h.backend.count("GET", "/api/v4/version"), 1);
}
