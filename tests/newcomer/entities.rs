//! The sample backend's `GET /user` and `GET /projects/:id`, through the gateway.

use super::*;
use artifact_gateway::config::{BaseUrl, Config};
use artifact_gateway::listener::RunningGateway;
use sample_backend::BackendBuilder;

#[tokio::test]
async fn current_user_and_project_answer_through_the_gateway() {
    let backend = BackendBuilder::sample_data().start().await.unwrap();
    let mut config = Config::with_defaults(
        BaseUrl::parse(&backend.url()).unwrap(),
        format!("file://{}", std::env::temp_dir().display()),
    );
    config.listen = "127.0.0.1:0".parse().unwrap();
    let gateway = RunningGateway::start(config).await.unwrap();
    let base = format!("http://{}/api/v4", gateway.addr());

    let r = get(&format!("{base}/user"), &[DEMO_TOKEN]).await;
    assert_eq!(r.status(), 200);
    let user = json(r).await;
    assert_eq!(
        (user["id"].as_u64(), user["username"].as_str()),
        (Some(1), Some("demo"))
    );
    assert_eq!(user["state"], "active");
    assert!(user["name"].is_string());
    // On the gateway's host (python-gitlab's gl.auth() warns about any other).
    assert_eq!(user["web_url"], format!("http://{}/demo", gateway.addr()));
    let seen = backend.requests();
    let forwarded = seen.iter().find(|r| r.path() == "/api/v4/user").unwrap();
    assert_eq!(forwarded.headers["private-token"], "demo-token");
    for headers in [&[][..], &[("PRIVATE-TOKEN", "nope")][..]] {
        let r = get(&format!("{base}/user"), headers).await;
        assert_eq!(r.status(), 401, "{headers:?}");
        assert_eq!(
            json(r).await,
            serde_json::json!({"message": "401 Unauthorized"})
        );
    }

    for (path, headers) in [
        ("/projects/1", &[][..]),
        ("/projects/demo%2Fapp", &[JOB_TOKEN][..]),
        ("/projects/demo%2Fsecret", &[DEMO_TOKEN][..]),
    ] {
        let r = get(&format!("{base}{path}"), headers).await;
        assert_eq!(r.status(), 200, "{path}");
        let project = json(r).await;
        let want = if path.contains("secret") {
            "demo/secret"
        } else {
            "demo/app"
        };
        assert_eq!(project["path_with_namespace"], want, "{path}");
        assert_eq!(project["default_branch"], "main");
        assert!(project["web_url"].is_string() && project["visibility"].is_string());
    }
    for (path, headers) in [
        ("/projects/2", &[][..]),
        ("/projects/demo%2Fsecret", &[OUTSIDER_TOKEN][..]),
        ("/projects/2", &[JOB_TOKEN][..]),
        ("/projects/99", &[DEMO_TOKEN][..]),
    ] {
        let r = get(&format!("{base}{path}"), headers).await;
        assert_eq!(r.status(), 404, "{path} {headers:?}");
        assert_eq!(
            json(r).await,
            serde_json::json!({"message": "404 Project Not Found"})
        );
    }
    gateway.shutdown();
    gateway.wait().await;
}
