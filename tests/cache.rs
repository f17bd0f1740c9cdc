//! The per-caller metadata cache: single-flight, isolation between callers, invalidation by
//! mutations, TTL and byte capacity.

mod common;

use std::time::Duration;

use common::{header, json, wait, Harness, TOKEN};
use sample_backend::BackendBuilder;

async fn x_cache(h: &Harness, path: &str, token: Option<&str>) -> (u16, String, serde_json::Value) {
    let response = h.get(path, token).await;
    let status = response.status().as_u16();
    let cache = header(&response, "x-cache").unwrap_or("").to_owned();
    (status, cache, json(response).await)
}

#[tokio::test]
async fn fifty_concurrent_identical_misses_make_one_upstream_request() {
    let h = Harness::start(BackendBuilder::sample_data().delay(Duration::from_millis(300))).await;
    let requests = (0..50).map(|_| h.get("/projects/1/jobs/104", Some(TOKEN)));
    let responses = futures_util::future::join_all(requests).await;
    let mut bodies = Vec::new();
    for response in responses {
        assert_eq!(response.status(), 200);
        bodies.push(response.bytes().await.unwrap());
    }
    assert!(bodies.windows(2).all(|w| w[0] == w[1]));
    assert_eq!(h.backend.count("GET", "/api/v4/projects/1/jobs/104"), 1);
}

#[tokio::test]
async fn concurrent_identical_refusals_are_shared_but_never_cached() {
    let h = Harness::start(BackendBuilder::sample_data().delay(Duration::from_millis(300))).await;
    let requests = (0..20).map(|_| h.get("/projects/2/jobs/201", Some("outsider-token")));
    for response in futures_util::future::join_all(requests).await {
        assert_eq!(response.status(), 404);
    }
    assert_eq!(h.backend.count("GET", "/api/v4/projects/2/jobs/201"), 1);
    // Not stored: the next request asks the backend again.
    let (status, cache, _) = x_cache(&h, "/projects/2/jobs/201", Some("outsider-token")).await;
    assert_eq!((status, cache.as_str()), (404, "MISS"));
    assert_eq!(h.backend.count("GET", "/api/v4/projects/2/jobs/201"), 2);
}

#[tokio::test]
async fn a_second_request_is_a_hit_and_other_callers_get_their_own_answer() {
    let h = Harness::start(BackendBuilder::sample_data()).await;
    let path = "/projects/2/jobs/201";
    assert_eq!(x_cache(&h, path, Some(TOKEN)).await.1, "MISS");
    let (status, cache, body) = x_cache(&h, path, Some(TOKEN)).await;
    assert_eq!((status, cache.as_str()), (200, "HIT"));
    assert_eq!(body["id"], 201);
    assert_eq!(h.backend.count("GET", "/api/v4/projects/2/jobs/201"), 1);

    // Another token, no token, and a wrong token: each asks the backend, none sees job 201.
    for token in [Some("outsider-token"), None, Some("forged")] {
        let (status, cache, body) = x_cache(&h, path, token).await;
        assert_ne!(status, 200, "{token:?} was served {body}");
        assert_eq!(cache, "MISS");
    }
    assert_eq!(h.backend.count("GET", "/api/v4/projects/2/jobs/201"), 4);

    // The same token in another GitLab form is another caller as far as the cache knows.
    let by_query = h
        .client
        .get(h.url("/projects/2/jobs/201?private_token=demo-token"))
        .send()
        .await
        .unwrap();
    assert_eq!(header(&by_query, "x-cache"), Some("MISS"));
}

#[tokio::test]
async fn query_order_and_token_parameters_do_not_split_the_cache() {
    let h = Harness::start(BackendBuilder::sample_data()).await;
    assert_eq!(
        x_cache(
            &h,
            "/projects/1/jobs?scope[]=success&scope[]=failed",
            Some(TOKEN)
        )
        .await
        .1,
        "MISS"
    );
    assert_eq!(
        x_cache(
            &h,
            "/projects/1/jobs?private_token=demo-token&scope%5B%5D=success&per_page=20&scope[]=failed",
            None
        )
        .await
        .1,
        "MISS",
        "the token in the query is another identity input"
    );
    assert_eq!(
        x_cache(
            &h,
            "/projects/1/jobs?per_page=20&scope%5B%5D=success&private_token=demo-token&scope[]=failed",
            None
        )
        .await
        .1,
        "HIT"
    );
    // Values of one name keep their order (for a scalar the last one wins).
    assert_eq!(
        x_cache(
            &h,
            "/projects/1/jobs?scope%5B%5D=failed&scope[]=success",
            Some(TOKEN)
        )
        .await
        .1,
        "MISS"
    );
    assert_eq!(
        x_cache(&h, "/projects/1/jobs?scope[]=success", Some(TOKEN))
            .await
            .1,
        "MISS"
    );
}

#[tokio::test]
async fn a_mutation_invalidates_the_job_and_the_project_lists_for_every_caller() {
    let h = Harness::start(BackendBuilder::sample_data()).await;
    let list_by_path = "/projects/demo%2Fapp/jobs?scope=manual";
    let list_by_id = "/projects/1/pipelines/13/jobs";
    for path in ["/projects/1/jobs/105", list_by_path, list_by_id] {
        for token in [Some(TOKEN), None] {
            x_cache(&h, path, token).await;
            assert_eq!(x_cache(&h, path, token).await.1, "HIT", "{path} {token:?}");
        }
    }
    // An unrelated job stays cached.
    x_cache(&h, "/projects/1/jobs/104", Some(TOKEN)).await;

    let play = h.post("/projects/1/jobs/105/play", Some(TOKEN)).await;
    assert_eq!(play.status(), 200);

    for token in [Some(TOKEN), None] {
        let (_, cache, job) = x_cache(&h, "/projects/1/jobs/105", token).await;
        assert_eq!(cache, "MISS");
        assert_eq!(job["status"], "pending");
        // The list was cached under the project's path, the mutation named its id.
        let (_, cache, manual) = x_cache(&h, list_by_path, token).await;
        assert_eq!(cache, "MISS");
        assert_eq!(manual, serde_json::json!([]));
        assert_eq!(x_cache(&h, list_by_id, token).await.1, "MISS");
    }
    assert_eq!(
        x_cache(&h, "/projects/1/jobs/104", Some(TOKEN)).await.1,
        "HIT"
    );
}

#[tokio::test]
async fn a_mutation_by_path_invalidates_lists_cached_by_id() {
    let h = Harness::start(BackendBuilder::sample_data()).await;
    let list = "/projects/1/jobs?scope[]=running";
    x_cache(&h, list, Some(TOKEN)).await;
    assert_eq!(x_cache(&h, list, Some(TOKEN)).await.1, "HIT");
    let cancel = h
        .post("/projects/demo%2Fapp/jobs/106/cancel", Some(TOKEN))
        .await;
    assert_eq!(cancel.status(), 201);
    let (_, cache, running) = x_cache(&h, list, Some(TOKEN)).await;
    assert_eq!(cache, "MISS");
    assert_eq!(running, serde_json::json!([]));
}

#[tokio::test]
async fn a_refused_mutation_invalidates_nothing() {
    let h = Harness::start(BackendBuilder::sample_data()).await;
    x_cache(&h, "/projects/1/jobs/104", Some(TOKEN)).await;
    let refused = h.post("/projects/1/jobs/104/play", Some(TOKEN)).await;
    assert_eq!(refused.status(), 400);
    assert_eq!(
        x_cache(&h, "/projects/1/jobs/104", Some(TOKEN)).await.1,
        "HIT"
    );
}

#[tokio::test]
async fn entries_expire_after_the_ttl() {
    let h = Harness::start_with(BackendBuilder::sample_data(), |c| {
        c.cache.ttl = Duration::from_millis(400)
    })
    .await;
    x_cache(&h, "/projects/1/jobs/104", Some(TOKEN)).await;
    assert_eq!(
        x_cache(&h, "/projects/1/jobs/104", Some(TOKEN)).await.1,
        "HIT"
    );
    // The cache keeps time on its own clock (moka's), so paused tokio time cannot move
    // it: poll until the entry has expired. The TTL runs from insertion, so the polling
    // HITs do not keep it alive.
    wait::wait_until_async(
        "the cached answer expires",
        Duration::from_secs(5),
        || async { x_cache(&h, "/projects/1/jobs/104", Some(TOKEN)).await.1 == "MISS" },
    )
    .await;
}

#[tokio::test]
async fn the_cache_stays_within_its_byte_capacity() {
    const CAPACITY: u64 = 16 * 1024;
    let h = Harness::start_with(BackendBuilder::sample_data(), |c| {
        c.cache.max_bytes = CAPACITY;
        c.cache.max_entry_bytes = CAPACITY;
    })
    .await;
    let mut inserted = 0;
    for per_page in 1..=7 {
        for page in 1..=3 {
            let response = h
                .get(
                    &format!("/projects/1/jobs?per_page={per_page}&page={page}"),
                    Some(TOKEN),
                )
                .await;
            assert_eq!(response.status(), 200);
            inserted += 1;
        }
    }
    let (entries, weight) = h.gateway.state().cache.usage().await;
    assert!(
        weight <= CAPACITY,
        "{weight} bytes cached, capacity {CAPACITY}"
    );
    assert!(
        entries > 0 && entries < inserted,
        "{entries} of {inserted} entries kept"
    );
}

#[tokio::test]
async fn responses_larger_than_an_entry_stream_whole_to_every_concurrent_caller() {
    let h = Harness::start_with(
        BackendBuilder::sample_data().delay(Duration::from_millis(200)),
        |c| {
            c.cache.max_entry_bytes = 512;
        },
    )
    .await;
    let reference = common::client()
        .get(format!("{}/api/v4/projects/1/jobs", h.backend.url()))
        .header("PRIVATE-TOKEN", TOKEN)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert!(reference.len() > 512);
    let requests = (0..10).map(|_| h.get("/projects/1/jobs", Some(TOKEN)));
    for response in futures_util::future::join_all(requests).await {
        assert_eq!(response.status(), 200);
        assert_eq!(header(&response, "x-cache"), Some("MISS"));
        assert_eq!(response.bytes().await.unwrap(), reference);
    }
    assert_eq!(h.gateway.state().cache.usage().await.0, 0);
}

/// A cached GET sends the backend only the allow-list (identity, `Accept: application/json`,
/// `Accept-Encoding`, forwarding headers): what else a client sends cannot make the
/// single-flight leader's request differ from its waiters'.
#[tokio::test]
async fn cached_gets_send_the_backend_only_the_allow_list() {
    let h = Harness::start(BackendBuilder::sample_data()).await;
    let response = h
        .request(http::Method::GET, "/projects/1/jobs/104?page=1")
        .header("Sudo", "demo")
        .header("Accept", "text/html")
        .header("If-None-Match", "\"x\"")
        .header("X-Custom", "1")
        .header("Deploy-Token", "d")
        .header("Content-Type", "application/json")
        .send()
        .await
        .unwrap();
    // demo-token is no admin: GitLab's 403, relayed.
    assert_eq!(response.status(), 403);
    let seen = h.backend.requests().pop().unwrap();
    let mut names: Vec<&str> = seen.headers.keys().map(|n| n.as_str()).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "accept",
            "host",
            "private-token",
            "sudo",
            "x-forwarded-for",
            "x-forwarded-host",
            "x-forwarded-proto"
        ]
    );
    assert_eq!(seen.headers["accept"], "application/json");
    assert_eq!(seen.path_and_query, "/api/v4/projects/1/jobs/104?page=1");
}
