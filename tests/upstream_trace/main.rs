//! Job logs with `artifacts.source = "upstream"`: the backend (the sample backend in its
//! GitLab-faithful mode) reads the log and decides access; the gateway forwards the request
//! with the caller's credentials and adds `Range` and `HEAD`, which GitLab's trace route
//! lacks.
//!
//! Expected bytes come from the logs the tests give the backend; expected refusals from
//! GitLab's documented messages. One test binary grouped by behaviour:
//!
//! - [`reads`]: whole logs, ranges cut out of the whole log, `If-Range`, `HEAD`, and a
//!   running job's log read live.
//! - [`backend_answers`]: the backend's refusals passed through, and backends the sample
//!   one cannot imitate (a chunked log, a log cut short).
//!
//! The jobs, their logs and the requests all tests send are in [`support`].

#[path = "../common/mod.rs"]
mod common;
mod support;

mod backend_answers;
mod reads;
