//! The backend's answers relayed as sent: list, get and pipeline endpoints with their
//! status, body and pagination; the pagination link walked through the gateway; mutations
//! with POST bodies arriving intact, a large one streamed; authentication and visibility
//! answers; and paths the gateway has no route of its own for.

use sample_backend::BackendBuilder;

use crate::common::{header, json, Harness, TOKEN};
use crate::support::assert_relayed_as_sent;

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
