//! What the archive tests share: the sample data with archives in storage, the
//! `Content-Disposition` of a download, and the check that the backend was asked for job
//! metadata (or, upstream, the archive routes) and never for artifact bytes.

use sample_backend::BackendBuilder;

use crate::common::storage::Kind;
use crate::common::{fixture, Harness};

pub(crate) const DISPOSITION: &str =
    "attachment; filename=\"artifacts.zip\"; filename*=UTF-8''artifacts.zip";
/// Sample data: jobs 101, 103, 104 (project 1) and 201 (project 2) have archives.
pub(crate) async fn harness(kind: Kind) -> (Harness, Vec<u8>) {
    let h = Harness::on(kind, BackendBuilder::sample_data()).await;
    let archive = fixture("python-stored.zip");
    h.storage.put("1/104/artifacts.zip", &archive);
    h.storage.put("1/101/artifacts.zip", &fixture("go.zip"));
    h.storage.put("1/103/artifacts.zip", &fixture("jar.zip"));
    h.storage
        .put("2/201/artifacts.zip", &fixture("python-deflate.zip"));
    (h, archive)
}

/// Storage mode: the backend is asked for job metadata only. Upstream mode: it is asked
/// the archive routes (that is where archives are found), never a single-file route.
pub(crate) fn assert_no_artifact_bytes_asked(h: &Harness) {
    for request in h.backend.requests() {
        let path = request.path_and_query.split('?').next().unwrap().to_owned();
        let asked = if h.storage.kind.is_upstream() {
            path.contains("/raw/")
                || path
                    .split_once("/artifacts/")
                    .is_some_and(|(_, file)| !file.ends_with("/download"))
        } else {
            path.contains("/artifacts") || path.ends_with("/download")
        };
        assert!(
            !asked,
            "the backend was asked for artifact bytes: {} {}",
            request.method, request.path_and_query
        );
    }
}
