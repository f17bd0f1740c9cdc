//! Identity and the metadata cache: every input that tells the backend who is asking keeps
//! callers apart, through the real binary in front of the sample backend (which accepts
//! every one of GitLab's forms: token headers and parameters, OAuth `access_token`, `Sudo`
//! with an admin token, the `_gitlab_session` cookie).

use std::time::Duration;

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;

use crate::common::client;
use crate::support::{within, Case};

/// Job 201 of private project 2: only `demo` (a member) may see it.
const PRIVATE_JOB: &str = "/projects/2/jobs/201";
const PRIVATE_ARCHIVE: &str = "/projects/2/jobs/201/artifacts";
const BOUND: Duration = Duration::from_secs(20);

async fn start() -> Case {
    Case::start("identity", "2/201/artifacts.zip", "").await
}

/// One request as `(header, value)` pairs and a query, through `base`.
async fn send(base: &str, path: &str, headers: &[(&str, &str)], query: &str) -> Answer {
    let url = if query.is_empty() {
        format!("{base}{path}")
    } else {
        format!("{base}{path}?{query}")
    };
    let mut request = client().get(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("request answered");
    let status = response.status().as_u16();
    let cache = response
        .headers()
        .get("x-cache")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let body = response.bytes().await.expect("whole body").to_vec();
    Answer {
        status,
        cache,
        body,
    }
}

#[derive(Debug)]
struct Answer {
    status: u16,
    cache: String,
    body: Vec<u8>,
}

#[tokio::test]
async fn anonymous_never_gets_a_session_cookies_private_archive() {
    let case = start().await;
    let api = case.gateway.url("");
    within(BOUND, "session then anonymous", async {
        let before = send(&api, PRIVATE_ARCHIVE, &[], "").await;
        assert_eq!(before.status, 404);
        // The browser session sees the job (and fills the cache, if it may).
        let cookie = [("Cookie", "_gitlab_session=demo-session")];
        let session = send(&api, PRIVATE_JOB, &cookie, "").await;
        assert_eq!(session.status, 200, "{session:?}");
        let archive = send(&api, PRIVATE_ARCHIVE, &cookie, "").await;
        assert_eq!(archive.status, 200);
        assert_eq!(archive.body, case.archive);
        // Anonymous: neither the job nor the archive, however warm the cache is.
        let job = send(&api, PRIVATE_JOB, &[], "").await;
        assert_eq!(job.status, 404, "anonymous got the job: {job:?}");
        let after = send(&api, PRIVATE_ARCHIVE, &[], "").await;
        assert_eq!(after.status, 404, "anonymous got the private archive");
        assert_ne!(after.body, case.archive);
    })
    .await;
    case.gateway
        .assert_peak_below(64, "session and anonymous requests");
}

#[tokio::test]
async fn sudo_as_alice_is_never_served_to_sudo_as_bob() {
    let case = start().await;
    let api = case.gateway.url("");
    within(BOUND, "sudo demo then sudo outsider", async {
        let admin = ("PRIVATE-TOKEN", "root-token");
        for (as_demo, as_outsider, query_demo, query_outsider) in [
            (
                vec![admin, ("Sudo", "demo")],
                vec![admin, ("Sudo", "outsider")],
                "",
                "",
            ),
            (vec![admin], vec![admin], "sudo=demo", "sudo=outsider"),
        ] {
            let demo = send(&api, PRIVATE_JOB, &as_demo, query_demo).await;
            assert_eq!(demo.status, 200, "{demo:?}");
            let outsider = send(&api, PRIVATE_JOB, &as_outsider, query_outsider).await;
            assert_eq!(
                outsider.status, 404,
                "outsider got demo's answer: {outsider:?}"
            );
            let archive = send(&api, PRIVATE_ARCHIVE, &as_outsider, query_outsider).await;
            assert_eq!(archive.status, 404);
            // The admin itself is no member either.
            let root = send(&api, PRIVATE_JOB, &[admin], "").await;
            assert_eq!(root.status, 404);
        }
        // A non-admin's sudo is GitLab's 403, relayed.
        let refused = send(
            &api,
            PRIVATE_JOB,
            &[("PRIVATE-TOKEN", "demo-token"), ("Sudo", "outsider")],
            "",
        )
        .await;
        assert_eq!(refused.status, 403);
        assert_eq!(
            String::from_utf8_lossy(&refused.body),
            r#"{"message":"403 Forbidden - Must be admin to use sudo"}"#
        );
    })
    .await;
    eprintln!(
        "sudo requests: peak RSS {} KiB",
        case.gateway.peak_rss_kib()
    );
    case.gateway.assert_peak_below(64, "sudo requests");
}

/// Each identity form, warmed with a caller who may see job 201, then asked by someone
/// who may not with the same form (and by anonymous): never the first one's answer.
#[tokio::test]
async fn every_identity_form_keeps_its_own_cache_entries() {
    let case = start().await;
    let api = case.gateway.url("");
    type Form = (&'static [(&'static str, &'static str)], &'static str);
    let forms: [(&str, Form, Form); 9] = [
        (
            "PRIVATE-TOKEN",
            (&[("PRIVATE-TOKEN", "demo-token")], ""),
            (&[("PRIVATE-TOKEN", "outsider-token")], ""),
        ),
        (
            "Authorization",
            (&[("Authorization", "Bearer demo-token")], ""),
            (&[("Authorization", "Bearer outsider-token")], ""),
        ),
        (
            "private_token",
            (&[], "private_token=demo-token"),
            (&[], "private_token=outsider-token"),
        ),
        (
            "access_token",
            (&[], "access_token=demo-token"),
            (&[], "access_token=outsider-token"),
        ),
        (
            "private_token after ;",
            (&[], "x=1;private_token=demo-token"),
            (&[], "x=1;private_token=outsider-token"),
        ),
        (
            "Sudo header",
            (&[("PRIVATE-TOKEN", "root-token"), ("Sudo", "demo")], ""),
            (&[("PRIVATE-TOKEN", "root-token"), ("Sudo", "outsider")], ""),
        ),
        (
            "sudo query",
            (&[("PRIVATE-TOKEN", "root-token")], "sudo=demo"),
            (&[("PRIVATE-TOKEN", "root-token")], "sudo=outsider"),
        ),
        (
            "session cookie",
            (&[("Cookie", "_gitlab_session=demo-session")], ""),
            (&[("Cookie", "_gitlab_session=forged")], ""),
        ),
        (
            "session among other cookies",
            (
                &[("Cookie", "theme=dark; _gitlab_session=demo-session")],
                "",
            ),
            (&[("Cookie", "theme=dark")], ""),
        ),
    ];
    within(BOUND, "every identity form", async {
        for (name, (allowed, allowed_query), (other, other_query)) in forms {
            for _ in 0..2 {
                let warm = send(&api, PRIVATE_JOB, allowed, allowed_query).await;
                assert_eq!(warm.status, 200, "{name}: {warm:?}");
            }
            let denied = send(&api, PRIVATE_JOB, other, other_query).await;
            assert_ne!(
                denied.status, 200,
                "{name}: another identity got the answer"
            );
            let anonymous = send(&api, PRIVATE_JOB, &[], "").await;
            assert_eq!(anonymous.status, 404, "{name}: anonymous got the answer");
            let archive = send(&api, PRIVATE_ARCHIVE, &[], "").await;
            assert_eq!(archive.status, 404, "{name}: anonymous got the archive");
        }
        // Job tokens: job 106's token reads project 1; a dead token does not.
        for (good, bad) in [(
            [("JOB-TOKEN", "job-token-106")],
            [("JOB-TOKEN", "job-token-101")],
        )] {
            assert_eq!(send(&api, "/projects/1/jobs", &good, "").await.status, 200);
            assert_eq!(send(&api, "/projects/1/jobs", &bad, "").await.status, 401);
        }
        assert_eq!(
            send(&api, "/projects/1/jobs", &[], "job_token=job-token-106")
                .await
                .status,
            200
        );
        assert_eq!(
            send(&api, "/projects/1/jobs", &[], "job_token=job-token-101")
                .await
                .status,
            401
        );
        // Cookies the gateway cannot fingerprint are not cached at all.
        let unknown = send(
            &api,
            PRIVATE_JOB,
            &[("Cookie", "theme=dark; _gitlab_session=demo-session")],
            "",
        )
        .await;
        assert_eq!((unknown.status, unknown.cache.as_str()), (200, "BYPASS"));
    })
    .await;
    eprintln!(
        "identity forms: peak RSS {} KiB",
        case.gateway.peak_rss_kib()
    );
    case.gateway.assert_peak_below(64, "identity forms");
}

/// Identity inputs a request may combine; values from small sets so that random cases
/// collide often and any leak through the cache shows.
fn identity() -> impl Strategy<Value = (Vec<(&'static str, &'static str)>, Vec<&'static str>)> {
    let tokens = prop::sample::select(vec!["demo-token", "outsider-token", "root-token", "nope"]);
    let users = prop::sample::select(vec!["demo", "outsider", "nobody"]);
    let sessions = prop::sample::select(vec!["demo-session", "forged"]);
    (
        prop::option::of(tokens.clone()),
        prop::option::of(tokens.clone()),
        prop::option::of(tokens.clone()),
        prop::option::of(tokens),
        prop::option::of(users.clone()),
        prop::option::of(users),
        prop::option::of(sessions),
        any::<bool>(),
    )
        .prop_map(
            |(header, bearer, param, oauth, sudo_header, sudo_param, session, other_cookie)| {
                let mut headers = Vec::new();
                let mut query = Vec::new();
                if let Some(t) = header {
                    headers.push(("PRIVATE-TOKEN", t));
                }
                if let Some(t) = bearer {
                    headers.push((
                        "Authorization",
                        match t {
                            "demo-token" => "Bearer demo-token",
                            "outsider-token" => "Bearer outsider-token",
                            "root-token" => "Bearer root-token",
                            _ => "Bearer nope",
                        },
                    ));
                }
                if let Some(t) = param {
                    query.push(match t {
                        "demo-token" => "private_token=demo-token",
                        "outsider-token" => "private_token=outsider-token",
                        "root-token" => "private_token=root-token",
                        _ => "private_token=nope",
                    });
                }
                if let Some(t) = oauth {
                    query.push(match t {
                        "demo-token" => "access_token=demo-token",
                        "outsider-token" => "access_token=outsider-token",
                        "root-token" => "access_token=root-token",
                        _ => "access_token=nope",
                    });
                }
                if let Some(u) = sudo_header {
                    headers.push(("Sudo", u));
                }
                if let Some(u) = sudo_param {
                    query.push(match u {
                        "demo" => "sudo=demo",
                        "outsider" => "sudo=outsider",
                        _ => "sudo=nobody",
                    });
                }
                match (session, other_cookie) {
                    (Some("demo-session"), false) => {
                        headers.push(("Cookie", "_gitlab_session=demo-session"))
                    }
                    (Some(_), false) => headers.push(("Cookie", "_gitlab_session=forged")),
                    (Some("demo-session"), true) => {
                        headers.push(("Cookie", "a=1; _gitlab_session=demo-session"))
                    }
                    (Some(_), true) => headers.push(("Cookie", "a=1; _gitlab_session=forged")),
                    (None, true) => headers.push(("Cookie", "a=1")),
                    (None, false) => {}
                }
                (headers, query)
            },
        )
}

/// 32 random combinations of identity inputs, each sent twice through the gateway (so the
/// second may come from the cache) and once straight to the backend: the gateway's answer
/// is always the backend's answer for that identity.
#[tokio::test]
async fn random_identity_combinations_get_what_the_backend_says_for_them() {
    let case = start().await;
    let api = case.gateway.url("");
    let direct = format!("{}/api/v4", case.backend.url());
    let mut runner = TestRunner::deterministic();
    let strategy = identity();
    let cases: Vec<_> = (0..32)
        .map(|_| strategy.new_tree(&mut runner).unwrap().current())
        .collect();
    within(Duration::from_secs(60), "32 identity combinations", async {
        for round in 0..2 {
            for (headers, query) in &cases {
                let query = query.join("&");
                for path in [PRIVATE_JOB, "/projects/1/jobs/104"] {
                    let through = send(&api, path, headers, &query).await;
                    let truth = send(&direct, path, headers, &query).await;
                    assert_eq!(
                        (through.status, String::from_utf8_lossy(&through.body)),
                        (truth.status, String::from_utf8_lossy(&truth.body)),
                        "round {round}, {path} with {headers:?} ?{query} ({})",
                        through.cache
                    );
                }
                let archive = send(&api, PRIVATE_ARCHIVE, headers, &query).await;
                let job = send(&direct, PRIVATE_JOB, headers, &query).await;
                if job.status == 200 {
                    assert_eq!((archive.status, &archive.body), (200, &case.archive));
                } else {
                    assert_eq!(archive.status, job.status, "{headers:?} ?{query}");
                }
            }
        }
    })
    .await;
    case.gateway
        .assert_peak_below(64, "32 identity combinations");
}
