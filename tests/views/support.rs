//! What the view tests share: one public and one private project with archive jobs, the
//! archives uploaded, storage reads counted.

use std::io::{Cursor, Write};
use std::sync::Arc;

use sample_backend::{BackendBuilder, JobSpec, JobStatus, Visibility};
use zip::write::SimpleFileOptions;

use crate::common::storage::{Kind, Tap};
use crate::common::{Harness, TOKEN};

/// Project 1 (public, `g/app`): successful jobs 1..=9 on `main` named `build`, each with an
/// archive, and job 12 running (its job token is live). Project 2 is private to `demo`:
/// job 21 with an archive.
pub fn backend() -> BackendBuilder {
    let mut backend = BackendBuilder::new()
        .user("demo", TOKEN)
        .user("outsider", "outsider-token")
        .project(1, "g/app", Visibility::Public, &["demo"])
        .project(2, "g/secret", Visibility::Private, &["demo"]);
    for id in 1..=9 {
        backend =
            backend.job(JobSpec::new(id, 1, "build", "main", JobStatus::Success).with_archive(1));
    }
    backend
        .job(JobSpec::new(12, 1, "deploy", "main", JobStatus::Running))
        .job(JobSpec::new(21, 2, "build", "main", JobStatus::Success).with_archive(1))
}

pub fn key(project: u64, job: u64) -> String {
    format!("{project}/{job}/artifacts.zip")
}

/// A gateway on `kind` with [`backend`], storage reads counted.
pub async fn harness(kind: Kind) -> (Harness, Arc<Tap>) {
    let h = Harness::tapped(kind, backend(), Tap::new, |_| {}).await;
    let tap = h.tap.clone().expect("a tapped harness");
    (h, tap)
}

/// An archive written by a Unix writer (the `zip` crate records modes): `(name, mode,
/// bytes)`, a name ending in `/` is a directory entry.
pub fn unix_archive(entries: &[(&str, u32, &[u8])]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for (name, mode, bytes) in entries {
        let options = SimpleFileOptions::default().unix_permissions(*mode);
        if name.ends_with('/') {
            writer.add_directory(*name, options).unwrap();
        } else {
            writer.start_file(*name, options).unwrap();
            writer.write_all(bytes).unwrap();
        }
    }
    writer.finish().unwrap().into_inner()
}

pub use crate::common::corpus::{manifest, Archive, Manifest};
