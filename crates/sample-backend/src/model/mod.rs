//! The backend's world: users, projects and jobs; who may read or change what; and the
//! job state transitions of GitLab's job actions. (The job JSON is in `job_json`.)
//!
//! Plain data and functions over it, no I/O: the HTTP layer ([`crate::handlers`]) locks
//! the [`State`], calls in here, and turns the result into a response.
//!
//! Invariants: job ids are unique across all projects (as in GitLab); a job token
//! (`job-token-{id}`) authenticates only while job `id` is `Running`.
//!
//! Layout: `job` (the public job data), `state` (the store and its lookups), `access`
//! (credentials and permissions), `actions` (the job actions).

mod access;
mod actions;
mod job;
mod state;

pub(crate) use access::{job_token, Caller, Credential};
pub use job::{JobSpec, JobStatus, Visibility};
pub(crate) use state::{Project, State};
