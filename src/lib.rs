//! artifact-gateway: a streaming reverse proxy for GitLab CI job artifacts.
//!
//! # Layout
//! The path of a request, in the order it meets the modules. Each module imports only
//! those after it on the path and the infrastructure beside it.
//!
//! 1. [`listener`]: where a request **enters**: accepting TCP and TLS ([`listener::tls`]),
//!    HTTP/1.1 and HTTP/2 connections with their limits and timers, graceful shutdown; the
//!    parser's own refusals swapped for JSON answers (`listener/head_guard.rs`).
//! 2. [`dispatch`]: refuse what must be refused, **name the route** ([`request::route`]),
//!    hand the request to the byte endpoints or forward it; the **one rescue point** where
//!    every failure becomes a response ([`dispatch::AppState::handle`]), with its access
//!    log line.
//! 3. [`artifacts`]: the byte endpoints (archive, by ref, single file, job log; beyond
//!    GitLab: an archive's listing, a part of it as a zip, expiring links). Each asks
//!    its archive [`artifacts::source`] where the bytes are, **as the caller**: that
//!    question is where the caller is **authorised**, by the backend. Storage mode asks for
//!    the job ([`upstream::jobs`]) and reads `storage.archive_key`; upstream mode asks the
//!    backend's archive route, which **locates** the archive ([`upstream::locate`]).
//! 4. [`upstream`]: the jobs backend: the pooled streaming client, header rewriting, the
//!    per-caller metadata cache and the allow-listed GETs it keys, the job questions and
//!    the locator.
//! 5. [`archive`]: where **the zip is read**: the index parser, the cache of open archives,
//!    entry decoding with CRC and size verification, the decoders' memory budget.
//! 6. [`storage`]: object storage by key (`object_store`) and objects at URLs the backend
//!    hands out ([`storage::remote`]), read in bounded ranges.
//!
//! Used along the whole path:
//! - [`request`]: what a request is once named: route, credentials, context.
//! - [`error`]: the per-request error type, every conversion into it, and its mapping to a
//!   status and GitLab JSON (**where errors become responses**, called from the rescue
//!   point).
//! - [`http_util`]: the body type, byte ranges, conditional requests, range windows.
//! - [`causes`]: the one walker of error chains (log text, timeouts, abort reasons).
//!
//! Beside the path (infrastructure):
//! - [`config`]: TOML + environment → validated [`config::Config`].
//! - [`observability`]: the access log and request metrics, written when a body ends.
//! - [`metrics`]: the Prometheus registry every part counts into.
//! - [`admin`]: the admin listener: metrics, health, readiness.
//! - [`trust`]: the crypto provider, PEM reading and the clients' CA roots.
//! - `demo` (feature `demo`): the embedded default behind `--demo`.
//!
//! The sample backend behind `--demo` and the tests is its own crate,
//! `crates/sample-backend`: a fake GitLab that cannot borrow the gateway's code.

pub mod admin;
pub mod archive;
pub mod artifacts;
pub mod causes;
pub mod config;
#[cfg(feature = "demo")]
pub mod demo;
pub mod dispatch;
pub mod error;
pub mod http_util;
pub mod listener;
pub mod metrics;
pub mod observability;
pub mod request;
pub mod storage;
pub mod trust;
pub mod upstream;
