//! A sample GitLab jobs backend, in process.
//!
//! This is a stand-in for the GitLab instance the gateway sits in front of. It speaks the
//! part of GitLab's Jobs API (`/api/v4/projects/:id/jobs/...`) that the gateway forwards,
//! plus `GET /user` and `GET /projects/:id` (what API clients ask first),
//! with GitLab's semantics, so that
//! - the binary's demo mode can show a newcomer the gateway working with nothing else
//!   installed ([`BackendBuilder::sample_data`]), and
//! - the integration tests have a fake upstream they can shape (users, projects, jobs,
//!   page size, a delay), mutate while running, and inspect afterwards (every request is
//!   recorded, body included).
//!
//! It is not GitLab: it holds no artifact bytes (in its faithful mode they are in S3, or
//! in a local directory it serves as object storage) and no git data. It keeps these of GitLab's semantics, because the gateway depends on them:
//! - **Credentials:** `PRIVATE-TOKEN`, `private_token`, `Authorization: Bearer`,
//!   `access_token` (OAuth), `JOB-TOKEN`, `job_token`, then the browser session cookie
//!   `_gitlab_session`. A token or session matching nothing is 401 even on a public project.
//!   The query is split on `;` as well as `&`, as Rack 2 (GitLab's) does.
//! - **Sudo:** `Sudo` header or `sudo` query (the query wins), a username or user id:
//!   with an admin's personal token the request acts as that user; a non-admin gets 403
//!   "Must be admin to use sudo", a session or job token 403 "Must be authenticated using
//!   an OAuth or Personal Access Token to use sudo", an unknown user 404 "User Not Found".
//!   A job token (`job-token-{id}`) works only while that job is running, reads only its
//!   own project, and is 403 on job actions (401 under GitLab's job-token rules, below).
//!   No credentials reads public projects only and is 401 on job actions.
//! - **Visibility:** a project the caller may not read is 404 "Project Not Found", never
//!   403; a job of another project is 404 "Job Not Found". Projects are named by numeric
//!   id or URL-encoded path (`group%2Fapp`), compared case-sensitively after decoding.
//! - **User and project:** `GET /user` is the caller's user (401 without a user's
//!   credential: anonymous or a job token), `GET /projects/:id` the project, 404 "Project
//!   Not Found" where its jobs would be; so python-gitlab's `gl.auth()` and a non-lazy
//!   `gl.projects.get()` work.
//! - **Lists:** newest first, `scope`/`scope[]` filters, `page`/`per_page` (max 100) and
//!   GitLab's pagination headers with absolute `Link` URLs; the project jobs list omits
//!   totals and `rel="last"`, the pipeline jobs list has them.
//! - **Job actions:** cancel, retry (a new job), erase, play, keep and delete artifacts,
//!   with GitLab's status codes, state rules and error messages; only project members
//!   with a personal token may run them.
//! - **Proxies:** like GitLab behind a trusted proxy, `X-Forwarded-Proto` and
//!   `X-Forwarded-Host` decide the base of the absolute `Link` URLs.
//! - **Headers:** JSON bodies, `{"message": ...}` errors, and GitLab's
//!   `Cache-Control: private, max-age=0`, `X-Content-Type-Options: nosniff`,
//!   `X-Frame-Options` and `Content-Security-Policy` on every response.
//!
//! Artifact byte paths (`.../jobs/:job_id/artifacts[/*path]`,
//! `.../jobs/artifacts/:ref/download`, `.../jobs/artifacts/:ref/raw/*path`) are, by
//! default, answered 500 with `X-Sample-Backend: artifact-bytes-requested`, before any credential check:
//! the gateway must serve those from object storage, and a test that sees the marker
//! knows it forwarded one.
//!
//! **GitLab-faithful mode** (off by default; for a gateway that finds archives through
//! GitLab's own routes), switched on piece by piece:
//! - [`BackendBuilder::gitlab_job_token_rules`]: job tokens (all three forms) work only
//!   where GitLab's routes say `job_token_allowed` (the job lists and artifact downloads);
//!   `GET .../jobs/:job_id`, the trace and the job actions answer them 401. A job token
//!   still reads only its own project (404 elsewhere).
//! - [`BackendBuilder::artifacts_in`] with an [`ArtifactStore`]: each archive lives in S3
//!   ([`ArtifactStore::new`]) or in a directory ([`ArtifactStore::local`]) at GitLab's
//!   hashed key `sha256(project_id)[0..2]/[2..4]/sha256(project_id)/@final/xx/yy/<60 hex>`
//!   ([`SampleBackend::archive_key`]), chosen once per archive. A local store's presigned
//!   URLs point at the backend's own object route, `/-/objects/<key>?expires=…`, which
//!   answers like S3 (signature and expiry checked, ranges, `If-*`; see `objects`). The two
//!   archive routes check access like GitLab (project 404, job 404, then no, expired or
//!   erased archive → 404 "404 Not found"; by ref: the newest *successful* pipeline of the
//!   ref, the named job in it) and then answer by [`DownloadMode`]: `Redirect` → 302 to a
//!   freshly presigned URL (HEAD: 303 to a presigned HEAD URL), `Proxy` → storage's
//!   200/206/304/412/416 streamed with `Range` and `If-*` passed through. The single-file
//!   routes keep the marker; the trace is still answered from the job's text, as GitLab's
//!   Rails does.
//!
//! Layout: `builder` (the [`BackendBuilder`] and starting a backend), `server` (the
//! running [`SampleBackend`], its shared state and the accept loop), `model` (users,
//! projects, jobs, permissions, job actions), `artifacts` (the object keys and the archive
//! answers of the GitLab-faithful mode), `objects` (the local object store: signed URLs
//! and the object route), `job_json` (GitLab's job object), `entities` (its user and
//! project objects), `routes` (pure path and method matching), `pagination` (the list
//! parameters and pagination headers), `handlers` (the HTTP edge and the one
//! error-to-response mapping), `credentials` (what a request presents as its credential
//! and `Sudo`), `error` (refusals and their GitLab messages), `sample_data` (the demo
//! dataset); this file holds the public API.

mod artifacts;
mod builder;
mod credentials;
mod entities;
mod error;
mod handlers;
mod http_util;
mod job_json;
mod model;
mod objects;
mod pagination;
mod routes;
mod sample_data;
mod server;
#[cfg(test)]
mod tests;

pub use artifacts::{ArtifactStore, DownloadMode};
pub use builder::BackendBuilder;
pub use model::{JobSpec, JobStatus, Visibility};
pub use server::{RecordedRequest, SampleBackend};
