//! Upstream mode (`artifacts.source = "upstream"`) in front of the sample backend's
//! GitLab-faithful mode: job tokens accepted only on the artifact routes, archives at
//! hashed `@final` keys in the in-process S3 server, the archive routes answering 302 to a
//! freshly signed URL (or, in proxy mode, 200 with the bytes).
//!
//! Storage round trips are counted at the S3 server itself. Expected bytes are the
//! test's own archives; expected messages are GitLab's. One test binary grouped by
//! behaviour:
//!
//! - [`access`]: job tokens on the artifact routes, the backend's refusals passed
//!   through, and the object's URL never shown to the caller nor in the logs.
//! - [`round_trips`]: storage round trips per request, a fresh signature on every locate,
//!   a zip64 archive, and one caller's burst sharing one locate and one open.
//! - [`relocating`]: replaced, expired and erased objects located again, and objects
//!   without an ETag pinned to size and last modification.
//! - [`hop`]: the hop to the located object: the backend streaming the archive itself,
//!   hosts outside `allowed_hosts`, `artifacts_redirect`, locate outcomes counted, and
//!   storage timeouts on located URLs.
//!
//! The backend, the archives and the raw storage servers all tests share are in
//! [`support`].

#[path = "../common/mod.rs"]
mod common;
mod support;

mod access;
mod hop;
mod relocating;
mod round_trips;
