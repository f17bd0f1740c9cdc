//! Forwarded endpoints: the gateway answers exactly as the jobs backend does, with absolute
//! upstream URLs rewritten to the gateway, and fails as GitLab-style JSON when the backend
//! cannot answer. One test binary grouped by behaviour:
//!
//! - [`relaying`]: status, headers, bodies and pagination relayed as the backend sent
//!   them, for reads, mutations and any other path.
//! - [`rewriting`]: links and `Location` naming the gateway, and which `Forwarded`-style
//!   headers reach the backend.
//! - [`failures`]: a backend that is down or too slow.
//!
//! The comparison against the backend asked directly is in [`support`].

#[path = "../common/mod.rs"]
mod common;
mod support;

mod failures;
mod relaying;
mod rewriting;
