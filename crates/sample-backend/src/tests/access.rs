//! Credentials (tokens, session cookies, `Sudo`, job tokens and GitLab's job-token rules)
//! and visibility: who may read which project.

use super::*;

#[tokio::test]
async fn token_matching_nothing_is_401_even_on_a_public_project() {
    let b = demo().await;
    let bad = [
        (format!("{P1}/jobs"), vec![("PRIVATE-TOKEN", "nope")]),
        (format!("{P1}/jobs?private_token=nope"), vec![]),
        (format!("{P1}/jobs"), vec![("Authorization", "Bearer nope")]),
        (format!("{P1}/jobs"), vec![("JOB-TOKEN", "nope")]),
        (format!("{P1}/jobs/101?job_token=job-token-999"), vec![]),
        // A personal token is not a job token, and the reverse.
        (format!("{P1}/jobs"), vec![("JOB-TOKEN", "demo-token")]),
        (
            format!("{P1}/jobs"),
            vec![("PRIVATE-TOKEN", "job-token-106")],
        ),
    ];
    for (target, headers) in bad {
        let r = get(&b, &target, &headers).await;
        assert_eq!(
            (r.status, r.message().as_str()),
            (401, "401 Unauthorized"),
            "{target}"
        );
    }
    for token in ["private_token=demo-token", "job_token=job-token-106"] {
        assert_eq!(
            get(&b, &format!("{P1}/jobs?{token}"), &[]).await.status,
            200
        );
    }
    let bearer = get(
        &b,
        &format!("{P2}/jobs"),
        &[("Authorization", "Bearer demo-token")],
    )
    .await;
    assert_eq!(bearer.status, 200);
}

#[tokio::test]
async fn private_project_is_404_for_outsider_and_anonymous() {
    let b = demo().await;
    for headers in [vec![OUTSIDER], vec![]] {
        for target in [
            format!("{P2}/jobs"),
            format!("{P2}/jobs/201"),
            format!("{P2}/pipelines/21/jobs"),
        ] {
            let r = get(&b, &target, &headers).await;
            assert_eq!(
                (r.status, r.message().as_str()),
                (404, "404 Project Not Found")
            );
        }
    }
    let r = get(&b, "/api/v4/projects/999/jobs", &[DEMO]).await;
    assert_eq!(
        (r.status, r.message().as_str()),
        (404, "404 Project Not Found")
    );
    assert_eq!(
        get(&b, &format!("{P2}/jobs"), &[DEMO]).await.ids(),
        vec![201]
    );
}

#[tokio::test]
async fn anonymous_reads_public_project_but_may_not_act() {
    let b = demo().await;
    let list = get(&b, &format!("{P1}/jobs"), &[]).await;
    assert_eq!(list.ids(), vec![107, 106, 105, 104, 103, 102, 101]);
    assert_eq!(
        get(&b, &format!("{P1}/jobs/101"), &[]).await.json()["name"],
        "build"
    );
    assert_eq!(
        get(&b, &format!("{P1}/jobs/106/trace"), &[]).await.body,
        "Running build...\n"
    );
    let r = post(&b, &format!("{P1}/jobs/106/cancel"), &[]).await;
    assert_eq!((r.status, r.message().as_str()), (401, "401 Unauthorized"));
    let r = delete(&b, &format!("{P1}/jobs/101/artifacts"), &[]).await;
    assert_eq!(r.status, 401);
    assert_eq!(b.job(106).unwrap().status, JobStatus::Running);
}

#[tokio::test]
async fn job_token_is_valid_only_while_its_job_runs() {
    let b = demo().await;
    let token = SampleBackend::job_token(106);
    assert_eq!(token, "job-token-106");
    let auth = [("JOB-TOKEN", token.as_str())];
    assert_eq!(get(&b, &format!("{P1}/jobs/101"), &auth).await.status, 200);
    // Its own project only.
    let r = get(&b, &format!("{P2}/jobs/201"), &auth).await;
    assert_eq!(
        (r.status, r.message().as_str()),
        (404, "404 Project Not Found")
    );
    // Read, never act.
    let r = post(&b, &format!("{P1}/jobs/105/play"), &auth).await;
    assert_eq!((r.status, r.message().as_str()), (403, "403 Forbidden"));
    // A finished job's token is dead.
    let r = get(
        &b,
        &format!("{P1}/jobs/101"),
        &[("JOB-TOKEN", "job-token-101")],
    )
    .await;
    assert_eq!(r.status, 401);
    b.update_job(106, |j| j.status = JobStatus::Success);
    let r = get(&b, &format!("{P1}/jobs/101"), &auth).await;
    assert_eq!((r.status, r.message().as_str()), (401, "401 Unauthorized"));
    // Bearer carries job tokens too; a private project opens to its own running job.
    b.update_job(201, |j| j.status = JobStatus::Running);
    let r = get(
        &b,
        &format!("{P2}/jobs/201"),
        &[("Authorization", "Bearer job-token-201")],
    )
    .await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn project_by_encoded_path_is_case_sensitive() {
    let b = demo().await;
    for project in ["demo%2Fapp", "demo%2fapp"] {
        let r = get(
            &b,
            &format!("/api/v4/projects/{project}/jobs?per_page=1"),
            &[],
        )
        .await;
        assert_eq!(r.ids(), vec![107]);
        let link = format!(
            "<{}/api/v4/projects/{project}/jobs?page=2&per_page=1>",
            b.url()
        );
        assert!(r.header("link").unwrap().contains(&link));
    }
    let r = get(&b, "/api/v4/projects/Demo%2FApp/jobs", &[]).await;
    assert_eq!(
        (r.status, r.message().as_str()),
        (404, "404 Project Not Found")
    );
    assert_eq!(
        get(&b, "/api/v4/projects/demo%2Fsecret/jobs/201", &[DEMO])
            .await
            .status,
        200
    );
    assert_eq!(
        b.count("GET", "/api/v4/projects/demo%2fapp/jobs"),
        1,
        "recorded raw"
    );
}

#[tokio::test]
async fn session_cookie_and_access_token_identify_a_user() {
    let b = demo().await;
    let job = format!("{P2}/jobs/201");
    assert_eq!(get(&b, &job, &[]).await.status, 404);
    let cookie = [("Cookie", "theme=dark; _gitlab_session=demo-session")];
    assert_eq!(get(&b, &job, &cookie).await.json()["id"], 201);
    let forged = get(&b, &job, &[("Cookie", "_gitlab_session=forged")]).await;
    assert_eq!(
        (forged.status, forged.message().as_str()),
        (401, "401 Unauthorized")
    );
    // Other cookies are no credential.
    assert_eq!(get(&b, &job, &[("Cookie", "theme=dark")]).await.status, 404);
    let oauth = get(&b, &format!("{job}?access_token=demo-token"), &[]).await;
    assert_eq!(oauth.json()["id"], 201);
    let bad = get(&b, &format!("{job}?access_token=nope"), &[]).await;
    assert_eq!(bad.status, 401);
}

#[tokio::test]
async fn sudo_acts_as_another_user_only_for_an_admin_token() {
    let b = demo().await;
    let job = format!("{P2}/jobs/201");
    let root = ("PRIVATE-TOKEN", "root-token");
    // root is no member of the private project; as demo it sees the job.
    assert_eq!(get(&b, &job, &[root]).await.status, 404);
    assert_eq!(
        get(&b, &job, &[root, ("Sudo", "demo")]).await.json()["id"],
        201
    );
    assert_eq!(
        get(&b, &format!("{job}?sudo=demo"), &[root]).await.status,
        200
    );
    // The query wins over the header.
    let both = get(
        &b,
        &format!("{job}?sudo=outsider"),
        &[root, ("Sudo", "demo")],
    )
    .await;
    assert_eq!(both.status, 404);
    let unknown = get(&b, &job, &[root, ("Sudo", "nobody")]).await;
    assert_eq!(
        (unknown.status, unknown.message().as_str()),
        (404, "404 User Not Found")
    );
    let not_admin = get(&b, &job, &[DEMO, ("Sudo", "outsider")]).await;
    assert_eq!(
        (not_admin.status, not_admin.message().as_str()),
        (403, "403 Forbidden - Must be admin to use sudo")
    );
    let session = get(
        &b,
        &job,
        &[("Cookie", "_gitlab_session=demo-session"), ("Sudo", "demo")],
    )
    .await;
    assert_eq!(session.status, 403);
    assert_eq!(get(&b, &job, &[("Sudo", "demo")]).await.status, 401);
}

#[tokio::test]
async fn query_splits_on_semicolons_like_rack() {
    let b = demo().await;
    let r = get(
        &b,
        &format!("{P2}/jobs/201?x=1;private_token=demo-token"),
        &[],
    )
    .await;
    assert_eq!(r.json()["id"], 201);
}

#[tokio::test]
async fn gitlab_job_token_rules_allow_job_tokens_only_on_lists_and_downloads() {
    let b = BackendBuilder::sample_data()
        .gitlab_job_token_rules()
        .start()
        .await
        .unwrap();
    let forms = [
        (String::new(), vec![("JOB-TOKEN", "job-token-106")]),
        (
            String::new(),
            vec![("Authorization", "Bearer job-token-106")],
        ),
        ("?job_token=job-token-106".to_owned(), vec![]),
    ];
    for (query, headers) in &forms {
        for target in [
            format!("{P1}/jobs/101{query}"),
            format!("{P1}/jobs/106/trace{query}"),
        ] {
            let r = get(&b, &target, headers).await;
            assert_eq!(
                (r.status, r.message().as_str()),
                (401, "401 Unauthorized"),
                "{target} {headers:?}"
            );
        }
        let r = post(&b, &format!("{P1}/jobs/105/play{query}"), headers).await;
        assert_eq!(r.status, 401, "job actions take no job token either");
        for target in [
            format!("{P1}/jobs{query}"),
            format!("{P1}/pipelines/13/jobs{query}"),
        ] {
            assert_eq!(get(&b, &target, headers).await.status, 200, "{target}");
        }
        let r = get(&b, &format!("{P2}/jobs{query}"), headers).await;
        assert_eq!(
            (r.status, r.message().as_str()),
            (404, "404 Project Not Found")
        );
    }
    // Personal tokens are untouched.
    assert_eq!(
        get(&b, &format!("{P1}/jobs/101"), &[DEMO]).await.status,
        200
    );
}
