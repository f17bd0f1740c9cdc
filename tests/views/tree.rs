//! `GET …/artifacts/tree`: GitLab 18.8's listing, served from the zip index. The expected
//! listings are written out from the archives each test builds.

use sample_backend::SampleBackend;
use serde_json::{json, Value};

use crate::common::storage::Kind;
use crate::common::{fixture, header, json, python, TOKEN};
use crate::support::{harness, key, unix_archive};

on_every_source! {
    lists_the_root_a_directory_and_recursively => listings;
    refuses_as_the_archive_does => access;
}

on_both_storages! {
    warm_listings_read_no_storage => warm_reads_nothing;
    seventy_thousand_entries => many_entries;
}

#[tokio::test]
async fn python_gitlab_walks_every_page() {
    pages().await
}

#[tokio::test]
async fn writers_without_unix_modes_get_default_modes() {
    default_modes().await
}

/// Explicit `bin/` with its own mode; `reports/` and `reports/junit/` only implied by the
/// names under them; `reports.txt` sorts before `reports/`, `reportsz` after.
fn sample() -> Vec<u8> {
    unix_archive(&[
        ("README.md", 0o644, b"read me\n"),
        ("bin/", 0o750, b""),
        ("bin/run.sh", 0o755, b"#!/bin/sh\necho hi\n"),
        ("reports/junit/a.xml", 0o600, b"<a/>"),
        ("reports/junit/b.xml", 0o644, b"<b></b>"),
        ("reports/coverage.txt", 0o644, b"100%"),
        ("reports.txt", 0o644, b"see reports/"),
        ("reportsz", 0o644, b"z"),
    ])
}

fn file(path: &str, size: u64, mode: &str) -> Value {
    let name = path.rsplit('/').next().unwrap();
    json!({ "name": name, "path": path, "type": "file", "size": size, "mode": mode })
}

fn dir(path: &str, mode: &str) -> Value {
    let name = path.trim_end_matches('/').rsplit('/').next().unwrap();
    json!({ "name": name, "path": path, "type": "directory", "mode": mode })
}

async fn listing(h: &crate::common::Harness, query: &str) -> (u16, Value) {
    let response = h
        .get(
            &format!("/projects/1/jobs/1/artifacts/tree{query}"),
            Some(TOKEN),
        )
        .await;
    let status = response.status().as_u16();
    (status, json(response).await)
}

async fn listings(kind: Kind) {
    let (h, _) = harness(kind).await;
    h.storage.put(&key(1, 1), &sample());

    let (status, root) = listing(&h, "").await;
    assert_eq!(status, 200, "{root}");
    assert_eq!(
        root,
        json!([
            file("README.md", 8, "100644"),
            dir("bin/", "040750"),
            file("reports.txt", 12, "100644"),
            dir("reports/", "040755"),
            file("reportsz", 1, "100644"),
        ])
    );
    let (_, reports) = listing(&h, "?path=reports").await;
    let want_reports = json!([
        file("reports/coverage.txt", 4, "100644"),
        dir("reports/junit/", "040755"),
    ]);
    assert_eq!(reports, want_reports);
    // A trailing slash names the same directory.
    assert_eq!(listing(&h, "?path=reports/").await.1, want_reports);
    let (_, junit) = listing(&h, "?path=reports/junit").await;
    assert_eq!(
        junit,
        json!([
            file("reports/junit/a.xml", 4, "100600"),
            file("reports/junit/b.xml", 7, "100644"),
        ])
    );
    let (_, all) = listing(&h, "?recursive=true&per_page=100").await;
    assert_eq!(
        all,
        json!([
            file("README.md", 8, "100644"),
            dir("bin/", "040750"),
            file("bin/run.sh", 18, "100755"),
            file("reports.txt", 12, "100644"),
            dir("reports/", "040755"),
            file("reports/coverage.txt", 4, "100644"),
            dir("reports/junit/", "040755"),
            file("reports/junit/a.xml", 4, "100600"),
            file("reports/junit/b.xml", 7, "100644"),
            file("reportsz", 1, "100644"),
        ])
    );
    let (_, under) = listing(&h, "?path=reports&recursive=true").await;
    assert_eq!(
        under,
        json!([
            file("reports/coverage.txt", 4, "100644"),
            dir("reports/junit/", "040755"),
            file("reports/junit/a.xml", 4, "100600"),
            file("reports/junit/b.xml", 7, "100644"),
        ])
    );

    // Not a directory of the archive: a file, a missing path, a name prefix.
    for path in ["README.md", "nothing", "report", "reports/junit/a.xml"] {
        let (status, body) = listing(&h, &format!("?path={path}")).await;
        assert_eq!(
            (status, body),
            (404, json!({ "message": "404 Not Found" })),
            "{path}"
        );
    }
    let (status, body) = listing(&h, "?recursive=sometimes").await;
    assert_eq!(
        (status, body),
        (400, json!({ "error": "recursive is invalid" }))
    );

    // The same listing by ref (latest successful `build` on `main`: job 9).
    h.storage.put(&key(1, 9), &sample());
    let by_ref = h
        .get(
            "/projects/1/jobs/artifacts/main/tree?job=build&path=reports",
            Some(TOKEN),
        )
        .await;
    assert_eq!(by_ref.status(), 200);
    assert_eq!(json(by_ref).await, want_reports);

    // HEAD: the headers of the GET, no body.
    let head = h
        .head("/projects/1/jobs/1/artifacts/tree", Some(TOKEN))
        .await;
    assert_eq!(head.status(), 200);
    assert_eq!(header(&head, "x-total"), Some("5"));
    assert_eq!(header(&head, "content-type"), Some("application/json"));
    assert!(head.bytes().await.unwrap().is_empty());
}

async fn access(kind: Kind) {
    let (h, tap) = harness(kind).await;
    h.storage.put(&key(1, 1), &sample());
    h.storage.put(&key(2, 21), &sample());
    // The private project: its member lists it, an outsider and anonymous get the
    // backend's 404, and no archive is opened for them.
    let member = h
        .get("/projects/2/jobs/21/artifacts/tree", Some(TOKEN))
        .await;
    assert_eq!(member.status(), 200);
    let gets = || tap.gets.load(std::sync::atomic::Ordering::SeqCst);
    let opened = gets();
    for token in [Some("outsider-token"), None] {
        let refused = h.get("/projects/2/jobs/21/artifacts/tree", token).await;
        assert_eq!(refused.status(), 404, "{token:?}");
        assert_eq!(
            json(refused).await,
            json!({ "message": "404 Project Not Found" })
        );
    }
    assert_eq!(gets(), opened, "storage was read for a refused caller");
    let forged = h
        .get("/projects/1/jobs/1/artifacts/tree", Some("forged"))
        .await;
    assert_eq!(forged.status(), 401);
    // A running job's token, as for the archive itself.
    let job_token = SampleBackend::job_token(12);
    let with_job_token = h
        .client
        .get(h.url("/projects/1/jobs/1/artifacts/tree"))
        .header("JOB-TOKEN", &job_token)
        .send()
        .await
        .unwrap();
    assert_eq!(with_job_token.status(), 200);
    assert_eq!(json(with_job_token).await.as_array().unwrap().len(), 5);
    // A job without an archive, and one that does not exist.
    assert_eq!(
        h.get("/projects/1/jobs/12/artifacts/tree", Some(TOKEN))
            .await
            .status(),
        404
    );
    assert_eq!(
        h.get("/projects/1/jobs/999/artifacts/tree", Some(TOKEN))
            .await
            .status(),
        404
    );
}

async fn warm_reads_nothing(kind: Kind) {
    let (h, tap) = harness(kind).await;
    h.storage.put(&key(1, 1), &sample());
    let gets = || tap.gets.load(std::sync::atomic::Ordering::SeqCst);
    let before = gets();
    assert_eq!(listing(&h, "").await.0, 200);
    // Cold: the tail read opens the archive (its directory fits the default tail).
    assert_eq!(gets() - before, 1);
    let warm = gets();
    for query in ["", "?path=reports", "?recursive=true", "?path=nothing"] {
        listing(&h, query).await;
    }
    assert_eq!(gets(), warm, "a warm listing read storage");
}

async fn pages() {
    let (h, _) = harness(Kind::Local).await;
    // 47 files in 3 directories: 50 items recursively, 8 pages of 7.
    let names: Vec<String> = (0..47).map(|i| format!("d{}/f{i:02}.txt", i % 3)).collect();
    let entries: Vec<(&str, u32, &[u8])> = names
        .iter()
        .map(|n| (n.as_str(), 0o644, n.as_bytes()))
        .collect();
    h.storage.put(&key(1, 1), &unix_archive(&entries));
    let mut want: Vec<String> = Vec::new();
    for d in 0..3 {
        want.push(format!("d{d}/"));
        let mut files: Vec<&String> = names
            .iter()
            .filter(|n| n.starts_with(&format!("d{d}/")))
            .collect();
        files.sort();
        want.extend(files.into_iter().cloned());
    }
    assert_eq!(want.len(), 50);

    let first = h
        .get(
            "/projects/1/jobs/1/artifacts/tree?recursive=true&per_page=7",
            Some(TOKEN),
        )
        .await;
    let base = format!("{}/projects/1/jobs/1/artifacts/tree", h.api());
    let link = |page: u32, rel: &str| {
        format!("<{base}?recursive=true&page={page}&per_page=7>; rel=\"{rel}\"")
    };
    assert_eq!(header(&first, "x-page"), Some("1"));
    assert_eq!(header(&first, "x-per-page"), Some("7"));
    assert_eq!(header(&first, "x-next-page"), Some("2"));
    assert_eq!(header(&first, "x-prev-page"), Some(""));
    assert_eq!(header(&first, "x-total"), Some("50"));
    assert_eq!(header(&first, "x-total-pages"), Some("8"));
    assert_eq!(
        header(&first, "link").map(str::to_owned),
        Some([link(2, "next"), link(1, "first"), link(8, "last")].join(", "))
    );
    let last = h
        .get(
            "/projects/1/jobs/1/artifacts/tree?recursive=true&per_page=7&page=8",
            Some(TOKEN),
        )
        .await;
    assert_eq!(header(&last, "x-next-page"), Some(""));
    assert_eq!(header(&last, "x-prev-page"), Some("7"));
    assert_eq!(json(last).await.as_array().unwrap().len(), 1);

    // python-gitlab's list helper follows the `Link` headers through every page.
    let site =
        tokio::task::spawn_blocking(|| python::with_packages(&["gitlab"], &["python-gitlab"]))
            .await
            .unwrap();
    let script = r#"
import json, sys
import gitlab
gl = gitlab.Gitlab(sys.argv[1], private_token=sys.argv[2])
items = gl.http_list("/projects/1/jobs/1/artifacts/tree",
                     query_data={"recursive": "true", "per_page": 7}, get_all=True)
print(json.dumps([i["path"] for i in items]))
"#;
    let url = format!("http://{}", h.gateway.addr());
    // Off the runtime's thread: the gateway under test runs on it.
    let out = tokio::task::spawn_blocking(move || python::run(&site, script, &[&url, TOKEN]))
        .await
        .unwrap();
    let walked: Vec<String> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(walked, want);
}

async fn default_modes() {
    let (h, _) = harness(Kind::Local).await;
    // jar.zip is written by a writer that records no Unix modes (host MS-DOS).
    h.storage.put(&key(1, 1), &fixture("jar.zip"));
    let (status, root) = listing(&h, "?path=dir&recursive=true").await;
    assert_eq!(status, 200);
    assert_eq!(
        root,
        json!([
            dir("dir/nested/", "040755"),
            file("dir/nested/deep.txt", 72, "100644"),
        ])
    );
}

async fn many_entries(kind: Kind) {
    let (h, tap) = harness(kind).await;
    // 70,000 files in 7 directories of 10,000: zip64 end records.
    let names: Vec<String> = (0..70_000)
        .map(|i| format!("d{}/{i:05}", i / 10_000))
        .collect();
    let entries: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), &b"x"[..])).collect();
    let zip = crate::common::zips::build_stored(&entries);
    h.storage.put(&key(1, 1), &zip.bytes);
    let root = h
        .get("/projects/1/jobs/1/artifacts/tree", Some(TOKEN))
        .await;
    assert_eq!(root.status(), 200);
    assert_eq!(header(&root, "x-total"), Some("7"));
    let want: Vec<Value> = (0..7).map(|d| dir(&format!("d{d}/"), "040755")).collect();
    // No directory entries: all seven are implied by the names.
    assert_eq!(json(root).await, Value::Array(want));
    let warm = tap.gets.load(std::sync::atomic::Ordering::SeqCst);
    let deep = h
        .get(
            "/projects/1/jobs/1/artifacts/tree?path=d6&page=500&per_page=20",
            Some(TOKEN),
        )
        .await;
    assert_eq!(header(&deep, "x-total"), Some("10000"));
    assert_eq!(header(&deep, "x-total-pages"), Some("500"));
    let paths: Vec<String> = json(deep)
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["path"].as_str().unwrap().to_owned())
        .collect();
    let want: Vec<String> = (69_980..70_000).map(|i| format!("d6/{i:05}")).collect();
    assert_eq!(paths, want);
    let all = h
        .get(
            "/projects/1/jobs/1/artifacts/tree?recursive=true&per_page=1",
            Some(TOKEN),
        )
        .await;
    assert_eq!(header(&all, "x-total"), Some("70007"));
    assert_eq!(tap.gets.load(std::sync::atomic::Ordering::SeqCst), warm);
}
