//! The zip corpus's manifest (`tests/fixtures/zip/manifest.json`): each archive's entries
//! with the size and SHA-256 of the source files they were written from (never read back
//! from the archives), its directories and names it does not have.

use std::sync::OnceLock;

use super::fixture;

#[derive(serde::Deserialize)]
pub struct Manifest {
    pub archives: Vec<Archive>,
}

#[derive(serde::Deserialize)]
pub struct Archive {
    pub file: String,
    pub entries: Vec<Entry>,
    pub directories: Vec<String>,
    pub absent: Vec<String>,
}

#[derive(serde::Deserialize, Clone)]
pub struct Entry {
    pub name: String,
    pub size: u64,
    pub sha256: String,
    pub name_encoding: String,
}

pub fn manifest() -> &'static Manifest {
    static MANIFEST: OnceLock<Manifest> = OnceLock::new();
    MANIFEST.get_or_init(|| serde_json::from_slice(&fixture("manifest.json")).unwrap())
}
