//! A new user's first steps: the README's "Running it" configuration loads and serves, the
//! demo's jobs report the sizes of what it stores, the sample backend's `GET /user` and
//! `GET /projects/:id` answer through the gateway, and `--demo` removes its temporary
//! directory on SIGTERM and SIGINT.

mod demo_exit;
mod entities;
mod readme;
mod sizes;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

pub(crate) const DEMO_TOKEN: (&str, &str) = ("PRIVATE-TOKEN", "demo-token");
pub(crate) const OUTSIDER_TOKEN: (&str, &str) = ("PRIVATE-TOKEN", "outsider-token");
pub(crate) const JOB_TOKEN: (&str, &str) = ("JOB-TOKEN", "job-token-106");
pub(crate) const ARCHIVE_104: &[u8] = include_bytes!("../../src/demo/job-104.zip");

pub(crate) fn repo_file(path: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A new, empty directory under the system's temporary one.
pub(crate) fn fresh_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "artifact-gateway-newcomer-{name}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

pub(crate) async fn get(url: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut request = client().get(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request
        .send()
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"))
}

pub(crate) async fn json(response: reqwest::Response) -> Value {
    let bytes = response.bytes().await.unwrap();
    serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&bytes)))
}

/// The shell block under the README's "## Running it".
pub(crate) fn readme_running_it() -> String {
    let readme = repo_file("README.md");
    let section = readme
        .split_once("\n## Running it\n")
        .expect("README has a Running it section")
        .1;
    let block = section
        .split_once("```sh\n")
        .expect("Running it starts with a shell block")
        .1;
    block.split_once("```").unwrap().0.to_owned()
}
