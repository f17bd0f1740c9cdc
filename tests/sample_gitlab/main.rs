//! The sample backend's GitLab-faithful mode, end to end: job-token rules, archives at
//! hashed `@final` keys in the in-process S3 server, and the archive routes answering as
//! GitLab with object storage (302 to a presigned URL, or the bytes proxied).
//!
//! Expected values come from the test's own knowledge: the bytes it uploaded, sha256 of the
//! project id computed elsewhere, GitLab's messages. One test binary grouped by behaviour:
//!
//! - [`routes`]: which routes take job tokens, archives that are gone, downloads by ref,
//!   and the archive routes without the object storage options.
//! - [`object_storage`]: hashed `@final` keys, 302s to fresh presigned URLs that expire
//!   with their TTL, and proxy mode with ranges and conditionals.
//!
//! The backend on its S3 store, and reading its answers, are in [`support`].

#[path = "../common/mod.rs"]
mod common;
mod support;

mod object_storage;
mod routes;
