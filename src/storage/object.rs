//! What storage hands out: where an object is, its metadata, and an object being read.

use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::stream::BoxStream;
use object_store::path::Path;
use object_store::ObjectMeta;

use super::{RemoteObject, StorageError};

/// Size, validators and location of an object.
#[derive(Debug, Clone)]
pub struct Meta {
    pub size: u64,
    /// As the store spells it; see `http::conditional::quote_etag`.
    pub etag: Option<String>,
    /// Stores always tell it; a URL's answer may not.
    pub last_modified: Option<chrono::DateTime<chrono::Utc>>,
}

impl From<&ObjectMeta> for Meta {
    fn from(meta: &ObjectMeta) -> Self {
        Self {
            size: meta.size,
            etag: meta.e_tag.clone(),
            last_modified: Some(meta.last_modified),
        }
    }
}

/// Where an object is: a key in the configured store, or a URL the backend handed out.
#[derive(Debug, Clone)]
pub enum Location {
    Key(Path),
    Url(Arc<RemoteObject>),
}

impl Location {
    /// What an archive's index is cached under.
    pub fn cache_key(&self) -> String {
        match self {
            Location::Key(path) => path.to_string(),
            Location::Url(object) => object.key().to_owned(),
        }
    }
}

impl std::fmt::Display for Location {
    /// The key, or a URL's host and path: never its query or headers.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Key(path) => path.fmt(f),
            Location::Url(object) => object.fmt(f),
        }
    }
}

pub type ByteStream = BoxStream<'static, Result<Bytes, StorageError>>;

/// An object being read: its metadata, the range the body covers, and the body.
pub struct Object {
    pub meta: Meta,
    pub range: Range<u64>,
    pub body: ByteStream,
}
