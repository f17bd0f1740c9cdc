//! `GET /user` and `GET /projects/:id`: GitLab's shapes, and the same access rules as the
//! project's jobs.

use super::*;

const JOB_TOKEN: (&str, &str) = ("JOB-TOKEN", "job-token-106");

#[tokio::test]
async fn current_user_is_the_tokens_user_and_401_without_one() {
    let b = demo().await;
    let user = get(&b, "/api/v4/user", &[DEMO]).await;
    assert_eq!(user.status, 200);
    assert_eq!(user.header("content-type"), Some("application/json"));
    let user = user.json();
    assert_eq!(user["id"], 1);
    assert_eq!(user["username"], "demo");
    assert_eq!(user["name"], "Demo User");
    assert_eq!(user["state"], "active");
    assert_eq!(user["web_url"], format!("{}/demo", b.url()));
    assert!(user.get("is_admin").is_none(), "only for admins");
    let outsider = get(&b, "/api/v4/user", &[OUTSIDER]).await.json();
    assert_eq!(
        (outsider["id"].as_u64(), outsider["username"].as_str()),
        (Some(2), Some("outsider"))
    );
    let root = get(&b, "/api/v4/user", &[("PRIVATE-TOKEN", "root-token")])
        .await
        .json();
    assert_eq!(
        (root["username"].as_str(), root["is_admin"].as_bool()),
        (Some("root"), Some(true))
    );
    // Every form of a user's credential, and Sudo, as on the job routes.
    let session = get(
        &b,
        "/api/v4/user",
        &[("Cookie", "_gitlab_session=demo-session")],
    )
    .await;
    assert_eq!(session.json()["username"], "demo");
    let oauth = get(&b, "/api/v4/user?access_token=outsider-token", &[]).await;
    assert_eq!(oauth.json()["username"], "outsider");
    let sudo = [("PRIVATE-TOKEN", "root-token"), ("Sudo", "outsider")];
    assert_eq!(
        get(&b, "/api/v4/user", &sudo).await.json()["username"],
        "outsider"
    );
    for headers in [&[][..], &[("PRIVATE-TOKEN", "nope")][..], &[JOB_TOKEN][..]] {
        let r = get(&b, "/api/v4/user", headers).await;
        assert_eq!(
            (r.status, r.message().as_str()),
            (401, "401 Unauthorized"),
            "{headers:?}"
        );
        assert_eq!(r.header("cache-control"), Some("private, max-age=0"));
    }
    let r = post(&b, "/api/v4/user", &[DEMO]).await;
    assert_eq!((r.status, r.header("allow")), (405, Some("GET, HEAD")));
}

#[tokio::test]
async fn project_has_gitlabs_shape_by_id_and_by_path() {
    let b = demo().await;
    for target in [P1.to_owned(), "/api/v4/projects/demo%2Fapp".to_owned()] {
        let r = get(&b, &target, &[]).await;
        assert_eq!(r.status, 200, "{target}");
        let p = r.json();
        assert_eq!(p["id"], 1);
        assert_eq!(p["name"], "app");
        assert_eq!(p["path"], "app");
        assert_eq!(p["path_with_namespace"], "demo/app");
        assert_eq!(p["name_with_namespace"], "demo / app");
        assert_eq!(p["default_branch"], "main");
        assert_eq!(p["visibility"], "public");
        assert_eq!(p["web_url"], format!("{}/demo/app", b.url()));
        assert_eq!(p["http_url_to_repo"], format!("{}/demo/app.git", b.url()));
        assert_eq!(p["ssh_url_to_repo"], "git@127.0.0.1:demo/app.git");
        assert_eq!(p["namespace"]["full_path"], "demo");
        assert_eq!(p["namespace"]["kind"], "group");
        assert_eq!(p["_links"]["self"], format!("{}{P1}", b.url()));
    }
    // Behind a proxy, the URLs are on the forwarded host, like the Link headers.
    let forwarded = [
        ("X-Forwarded-Host", "gw.example:8443"),
        ("X-Forwarded-Proto", "https"),
    ];
    let p = get(&b, P1, &forwarded).await.json();
    assert_eq!(p["web_url"], "https://gw.example:8443/demo/app");
    assert_eq!(p["ssh_url_to_repo"], "git@gw.example:demo/app.git");
    assert_eq!(
        p["_links"]["self"],
        "https://gw.example:8443/api/v4/projects/1"
    );
    let user = get(&b, "/api/v4/user", &[DEMO, forwarded[0], forwarded[1]]).await;
    assert_eq!(user.json()["web_url"], "https://gw.example:8443/demo");
    let secret = get(&b, P2, &[DEMO]).await.json();
    assert_eq!(
        (
            secret["path_with_namespace"].as_str(),
            secret["visibility"].as_str()
        ),
        (Some("demo/secret"), Some("private"))
    );
}

#[tokio::test]
async fn project_is_404_where_its_jobs_are() {
    let b = demo().await;
    let not_found = |r: Reply| (r.status, r.message());
    let nf = (404, "404 Project Not Found".to_owned());
    // Private: invisible to outsiders, anonymous callers and another project's job token.
    assert_eq!(not_found(get(&b, P2, &[]).await), nf);
    assert_eq!(not_found(get(&b, P2, &[OUTSIDER]).await), nf);
    assert_eq!(
        not_found(get(&b, "/api/v4/projects/demo%2Fsecret", &[OUTSIDER]).await),
        nf
    );
    assert_eq!(not_found(get(&b, P2, &[JOB_TOKEN]).await), nf);
    // Unknown, and paths compared case-sensitively like the job routes.
    assert_eq!(not_found(get(&b, "/api/v4/projects/99", &[DEMO]).await), nf);
    assert_eq!(
        not_found(get(&b, "/api/v4/projects/Demo%2FApp", &[DEMO]).await),
        nf
    );
    // A job token reads its own project; a bad token is 401 even on a public one.
    assert_eq!(get(&b, P1, &[JOB_TOKEN]).await.json()["id"], 1);
    let r = get(&b, P1, &[("PRIVATE-TOKEN", "nope")]).await;
    assert_eq!((r.status, r.message().as_str()), (401, "401 Unauthorized"));
}

#[tokio::test]
async fn gitlab_job_token_rules_refuse_job_tokens_on_user_and_project() {
    let b = BackendBuilder::sample_data()
        .gitlab_job_token_rules()
        .start()
        .await
        .unwrap();
    for target in ["/api/v4/user", P1] {
        let r = get(&b, target, &[JOB_TOKEN]).await;
        assert_eq!(
            (r.status, r.message().as_str()),
            (401, "401 Unauthorized"),
            "{target}"
        );
    }
    assert_eq!(get(&b, P1, &[DEMO]).await.status, 200);
}
