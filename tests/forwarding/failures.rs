//! A backend that cannot answer: down is a 502, slower than the timeout a 504, both as
//! GitLab-style JSON.

use std::time::Duration;

use sample_backend::BackendBuilder;

use crate::common;
use crate::common::{header, json, Harness, TOKEN};

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
