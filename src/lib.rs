//! artifact-gateway: a streaming reverse proxy for GitLab CI job artifacts.
//!
//! # Layout
//! The path of a request, in module order:
//!
//! - [`server`]: the listener; HTTP/1.1 and HTTP/2 connections, limits, graceful shutdown;
//!   the parser's own refusals swapped for JSON answers.
//! - [`admin`]: the admin listener: metrics, health, readiness.
//! - [`metrics`]: the Prometheus registry every part counts into.
//! - [`app`]: shared state and dispatch of one request; the one place errors become responses.
//! - [`routes`]: pure `(method, path, query) → Route` for the Jobs API.
//! - [`auth`]: the caller's identity inputs → cache fingerprint, upstream headers, log redaction.
//! - [`upstream`]: the jobs backend: pooled streaming client ([`upstream::headers`] for
//!   header rewriting) and the per-caller metadata cache ([`upstream::cache`]) with the
//!   allow-listed GETs it keys ([`upstream::keyed`]); in upstream mode, where archives are
//!   found by asking the backend's archive routes as the caller ([`upstream::locate`]).
//! - [`serve`]: endpoints answered from storage (archive, by ref, single file, job log),
//!   after asking the backend for the job as the caller ([`upstream::jobs`]), or for the
//!   archive itself in upstream mode;
//!   [`serve::object`] streams an object with ranges and conditional requests ([`http`]),
//!   [`serve::entry`] one file out of an archive, [`serve::content`] how it is presented.
//!   With `artifacts.source = "upstream"`, [`serve::trace`] forwards the job log and adds
//!   `Range` and `HEAD` to the backend's answer.
//! - [`zip`]: the archive index (pure parser, fed as the directory streams in), the cache
//!   of open archives, entry decoding with CRC/size verification and bounded decoders, and
//!   the memory budget decoders and archive opens share ([`zip::budget`]).
//! - [`storage`]: object storage via `object_store`: keys, ranged reads, large-chunk local
//!   reads, failure mapping; and objects at URLs the backend hands out, read with ranged
//!   HTTP GETs ([`storage::remote`]).
//! - [`error`]: the per-request error type and its mapping to status + GitLab JSON.
//! - [`body`]: the body type handlers return and the access-log body wrapper.
//! - [`context`]: what is known about a request once it is named.
//! - [`config`]: TOML + environment → validated [`config::Config`].
//! - [`tls`]: HTTPS: the listener's acceptor (certificate reload) and the clients' CA roots.
//! - [`demo`]: the embedded default behind `--demo`.
//!
//! The sample backend behind `--demo` and the tests is its own crate,
//! `crates/sample-backend`: a fake GitLab that cannot borrow the gateway's code.
//!
//! A request enters at [`server`], is named by [`routes`] in [`app`], and is either
//! forwarded by [`upstream`] (through its cache for job metadata) or authorised through
//! [`upstream::jobs`] (or located by [`upstream::locate`]), read from [`storage`]
//! (through [`zip`] for single files) and streamed by [`serve`].

pub mod admin;
pub mod app;
pub mod auth;
pub mod body;
pub mod config;
pub mod context;
#[cfg(feature = "demo")]
pub mod demo;
pub mod error;
pub mod http;
pub mod metrics;
pub mod routes;
pub mod serve;
pub mod server;
pub mod storage;
pub mod tls;
pub mod upstream;
pub mod zip;
