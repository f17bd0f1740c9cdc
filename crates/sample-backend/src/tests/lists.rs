//! The list endpoints (pagination, `scope`, absolute `Link` URLs behind a proxy) and the
//! job JSON.

use super::*;

#[tokio::test]
async fn project_list_paginates_with_absolute_links_and_no_totals() {
    let b = demo().await;
    let r = get(&b, &format!("{P1}/jobs?per_page=2"), &[DEMO]).await;
    assert_eq!(r.ids(), vec![107, 106]);
    assert_eq!(r.header("x-page"), Some("1"));
    assert_eq!(r.header("x-per-page"), Some("2"));
    assert_eq!(r.header("x-next-page"), Some("2"));
    assert_eq!(r.header("x-prev-page"), Some(""));
    assert_eq!(r.header("x-total"), None);
    assert_eq!(r.header("x-total-pages"), None);
    let base = format!("{}{P1}/jobs", b.url());
    assert_eq!(
        r.header("link"),
        Some(
            format!(
                "<{base}?page=2&per_page=2>; rel=\"next\", <{base}?page=1&per_page=2>; rel=\"first\""
            )
            .as_str()
        )
    );
    let last = get(&b, &format!("{P1}/jobs?per_page=2&page=4"), &[DEMO]).await;
    assert_eq!(last.ids(), vec![101]);
    assert_eq!(last.header("x-next-page"), Some(""));
    assert_eq!(last.header("x-prev-page"), Some("3"));
    assert!(!last.header("link").unwrap().contains("rel=\"last\""));
    let default = BackendBuilder::sample_data()
        .per_page(3)
        .start()
        .await
        .unwrap();
    let r = get(&default, &format!("{P1}/jobs"), &[]).await;
    assert_eq!((r.ids().len(), r.header("x-per-page")), (3, Some("3")));
}

#[tokio::test]
async fn scope_filters_and_is_kept_in_links() {
    let b = demo().await;
    let target = format!("{P1}/jobs?scope[]=failed&scope[]=running&per_page=2");
    let r = get(&b, &target, &[DEMO]).await;
    assert_eq!(r.ids(), vec![107, 106]);
    let next = format!(
        "<{}{P1}/jobs?scope%5B%5D=failed&scope%5B%5D=running&page=2&per_page=2>; rel=\"next\"",
        b.url()
    );
    assert!(
        r.header("link").unwrap().contains(&next),
        "{:?}",
        r.header("link")
    );
    let r = get(
        &b,
        &format!("{P1}/jobs?scope%5B%5D=failed&scope[]=running&page=2&per_page=2"),
        &[DEMO],
    )
    .await;
    assert_eq!(r.ids(), vec![102]);
    assert_eq!(
        get(&b, &format!("{P1}/jobs?scope=success"), &[DEMO])
            .await
            .ids(),
        vec![104, 103, 101]
    );
    let r = get(
        &b,
        &format!("{P1}/jobs?scope[]=success&scope[]=bogus"),
        &[DEMO],
    )
    .await;
    assert_eq!(
        (r.status, r.message().as_str()),
        (400, "400 Bad request - scope does not have a valid value")
    );
}

#[tokio::test]
async fn pipeline_list_has_totals_and_last_link() {
    let b = demo().await;
    let r = get(&b, &format!("{P1}/pipelines/13/jobs?per_page=3"), &[DEMO]).await;
    assert_eq!(r.ids(), vec![107, 106, 105]);
    assert_eq!(r.header("x-total"), Some("4"));
    assert_eq!(r.header("x-total-pages"), Some("2"));
    assert_eq!(r.header("x-next-page"), Some("2"));
    let last = format!(
        "<{}{P1}/pipelines/13/jobs?page=2&per_page=3>; rel=\"last\"",
        b.url()
    );
    assert!(r.header("link").unwrap().ends_with(&last));
    let r = get(
        &b,
        &format!("{P1}/pipelines/13/jobs?scope=success"),
        &[DEMO],
    )
    .await;
    assert_eq!((r.ids(), r.header("x-total")), (vec![104], Some("1")));
    for pipeline in [99, 21] {
        let r = get(&b, &format!("{P1}/pipelines/{pipeline}/jobs"), &[DEMO]).await;
        assert_eq!((r.status, r.message().as_str()), (404, "404 Not found"));
    }
}

#[tokio::test]
async fn job_json_has_gitlabs_shape() {
    let b = demo().await;
    let job = get(&b, &format!("{P1}/jobs/101"), &[DEMO]).await.json();
    assert_eq!(job["status"], "success");
    assert_eq!(job["ref"], "main");
    assert_eq!(
        job["artifacts_file"],
        serde_json::json!({"filename": "artifacts.zip", "size": 1104})
    );
    assert_eq!(job["artifacts"][0]["file_type"], "archive");
    assert_eq!(job["artifacts"][1]["file_type"], "trace");
    assert_eq!(job["pipeline"]["id"], 11);
    assert_eq!(job["pipeline"]["project_id"], 1);
    assert_eq!(job["web_url"], format!("{}/demo/app/-/jobs/101", b.url()));
    assert_eq!(job["project"]["ci_job_token_scope_enabled"], false);
    assert!(job["artifacts_expire_at"].is_string() && job["erased_at"].is_null());
    let running = get(&b, &format!("{P1}/jobs/106"), &[DEMO]).await.json();
    assert!(
        running.get("artifacts_file").is_none(),
        "GitLab omits artifacts_file"
    );
    assert!(running["finished_at"].is_null() && running["started_at"].is_string());
    assert_eq!(running["artifacts"][0]["size"], "Running build...\n".len());
    let r = get(&b, &format!("{P1}/jobs/201"), &[DEMO]).await;
    assert_eq!((r.status, r.message().as_str()), (404, "404 Job Not Found"));
    assert_eq!(
        get(&b, &format!("{P1}/jobs/9999"), &[DEMO]).await.message(),
        "404 Job Not Found"
    );
}

#[tokio::test]
async fn links_follow_forwarded_host_and_proto() {
    let b = demo().await;
    let r = get(
        &b,
        &format!("{P1}/jobs?per_page=2"),
        &[
            ("X-Forwarded-Host", "gw.example:8443"),
            ("X-Forwarded-Proto", "https"),
        ],
    )
    .await;
    let link = r.header("link").unwrap();
    assert!(
        link.contains("<https://gw.example:8443/api/v4/projects/1/jobs?"),
        "{link}"
    );
    assert!(!link.contains(&b.addr().to_string()), "{link}");
}
