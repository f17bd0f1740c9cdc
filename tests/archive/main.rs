//! Archive downloads served from object storage (local directory and S3), by job id and by
//! ref: bytes, headers, ranges, conditional requests, authorisation by the backend. One
//! test binary grouped by behaviour:
//!
//! - [`downloads`]: bytes and headers of a download, `HEAD`, ranges (as ranged storage
//!   reads), conditional requests, and S3 downloads redirected to a presigned URL.
//! - [`access`]: missing archives and the backend's refusals, credentials in every form,
//!   and an encoded project path.
//! - [`by_ref`]: the newest successful job of a ref, over more than one page and up to
//!   the page limit.
//!
//! The sample data's archives and the check that the backend is never asked for artifact
//! bytes are in [`support`].

#[macro_use]
#[path = "../common/mod.rs"]
mod common;
mod support;

mod access;
mod by_ref;
mod downloads;
