//! The demo's jobs report the sizes of what it stores, in both source modes.

use super::*;
use artifact_gateway::config::ArtifactSource;
use artifact_gateway::demo::Demo;
use sample_backend::{BackendBuilder, JobStatus};
use serde_json::Value;
use std::path::Path;

/// Length of `path`, or `None` when there is no such file.
fn stored_len(path: &Path) -> Option<u64> {
    std::fs::metadata(path).ok().map(|m| m.len())
}

/// Every sample job's JSON, asked of the demo's backend with a token that sees them all.
async fn sample_jobs(demo: &Demo) -> Vec<(sample_backend::JobSpec, Value)> {
    let api = format!("{}/api/v4", demo.config.upstream.url.as_str());
    let mut jobs = Vec::new();
    for spec in BackendBuilder::sample_data().jobs() {
        let url = format!("{api}/projects/{}/jobs/{}", spec.project_id, spec.id);
        let r = get(&url, &[DEMO_TOKEN]).await;
        assert_eq!(r.status(), 200, "{url}");
        jobs.push((spec.clone(), json(r).await));
    }
    assert!(jobs.len() >= 8, "the whole dataset");
    jobs
}

/// The sizes a job's JSON reports: `artifacts_file.size`, and per `artifacts[]` file type.
fn reported(job: &Value) -> (Option<u64>, Option<u64>, Option<u64>) {
    let of_type = |file_type: &str| {
        let artifacts = job["artifacts"].as_array().expect("artifacts is a list");
        artifacts
            .iter()
            .find(|a| a["file_type"] == file_type)
            .map(|a| a["size"].as_u64().expect("a size"))
    };
    for artifact in job["artifacts"].as_array().unwrap() {
        let file_type = artifact["file_type"].as_str().unwrap();
        assert!(
            ["archive", "trace"].contains(&file_type),
            "job {}: a {file_type} entry needs its own size check here",
            job["id"]
        );
    }
    let file = job.get("artifacts_file").map(|f| {
        assert_eq!(f["filename"], "artifacts.zip");
        f["size"].as_u64().expect("artifacts_file.size")
    });
    (file, of_type("archive"), of_type("trace"))
}

#[tokio::test]
async fn demo_jobs_report_the_sizes_of_the_stored_archives_and_logs() {
    let dir = fresh_dir("sizes");
    let demo = Demo::start(
        "127.0.0.1:0".parse().unwrap(),
        Some(dir.clone()),
        ArtifactSource::Storage,
    )
    .await
    .unwrap();
    let mut archives = 0;
    for (spec, job) in sample_jobs(&demo).await {
        let id = spec.id;
        let key = dir.join(format!("{}/{id}", spec.project_id));
        let (file, archive, trace) = reported(&job);
        let stored = stored_len(&key.join("artifacts.zip"));
        assert_eq!(file, stored, "job {id}: artifacts_file.size");
        assert_eq!(archive, stored, "job {id}: the archive entry's size");
        archives += usize::from(stored.is_some());
        let finished = matches!(
            spec.status,
            JobStatus::Success | JobStatus::Failed | JobStatus::Canceled | JobStatus::Skipped
        );
        if finished {
            // The gateway serves a finished job's log from storage.
            assert_eq!(
                trace,
                stored_len(&key.join("job.log")),
                "job {id}: trace size"
            );
        } else if let Some(size) = trace {
            // A running job's log is the backend's live one.
            let url = format!(
                "{}/api/v4/projects/{}/jobs/{id}/trace",
                demo.config.upstream.url.as_str(),
                spec.project_id
            );
            let live = get(&url, &[DEMO_TOKEN]).await.bytes().await.unwrap();
            assert_eq!(size, live.len() as u64, "job {id}: live trace size");
        }
    }
    assert_eq!(archives, 4, "jobs 101, 103, 104 and 201 have archives");
    drop(demo);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn demo_in_upstream_mode_reports_the_sizes_its_object_store_serves() {
    let dir = fresh_dir("sizes-upstream");
    let demo = Demo::start(
        "127.0.0.1:0".parse().unwrap(),
        Some(dir.clone()),
        ArtifactSource::Upstream,
    )
    .await
    .unwrap();
    let api = format!("{}/api/v4", demo.config.upstream.url.as_str());
    let follow = reqwest::Client::new();
    for (spec, job) in sample_jobs(&demo).await {
        let (file, archive, _) = reported(&job);
        assert_eq!(file, archive, "job {}", spec.id);
        let Some(size) = file else { continue };
        // The backend's archive route redirects to its object store, which has the bytes.
        let url = format!(
            "{api}/projects/{}/jobs/{}/artifacts",
            spec.project_id, spec.id
        );
        let r = follow
            .get(&url)
            .header(DEMO_TOKEN.0, DEMO_TOKEN.1)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{url}");
        assert_eq!(r.bytes().await.unwrap().len() as u64, size, "{url}");
    }
    drop(demo);
    let _ = std::fs::remove_dir_all(&dir);
}
