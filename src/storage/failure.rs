//! Storage failures, by what the caller does about them, and the one mapping of store and
//! file errors onto them.

use super::file;
use crate::causes;

/// A storage read failure, by what the caller does about it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StorageError {
    #[error("object not found")]
    NotFound,
    /// The range starts at or past the end of an object of this size.
    #[error("range not satisfiable (object is {size} bytes)")]
    RangeNotSatisfiable { size: u64 },
    /// The object changed: its ETag no longer matches the precondition, or (local files)
    /// the file changed while it was being read.
    #[error("object changed")]
    PreconditionFailed,
    /// A located URL was refused (an expired or revoked signature, credentials no longer
    /// accepted): the backend is asked for the archive again.
    #[error("the located URL was refused")]
    Expired,
    #[error("storage timed out: {0}")]
    Timeout(String),
    #[error("storage unavailable: {0}")]
    Unavailable(String),
}

/// A local read failure; a file that changed under the reader says so in the log.
pub(super) fn file_error(error: &std::io::Error) -> StorageError {
    if let Some(changed) = error
        .get_ref()
        .and_then(|e| e.downcast_ref::<file::Changed>())
    {
        tracing::warn!(changed = changed.what, "{changed}; aborting the response");
        return StorageError::PreconditionFailed;
    }
    StorageError::Unavailable(format!("reading file: {error}"))
}

/// Map a store error by what it means for the response.
pub(super) fn classify(error: object_store::Error) -> StorageError {
    match error {
        object_store::Error::NotFound { .. } => StorageError::NotFound,
        object_store::Error::Precondition { .. } => StorageError::PreconditionFailed,
        other => {
            let text = causes::text(&other);
            if causes::is_timeout(&other) {
                StorageError::Timeout(text)
            } else {
                StorageError::Unavailable(text)
            }
        }
    }
}
