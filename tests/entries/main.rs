//! Single files out of zip archives, end to end, one test binary grouped by behaviour:
//!
//! - [`corpus`]: every entry of archives written by real zip writers, byte-exact.
//! - [`paths`], [`headers`], [`validators`], [`ranges`], [`unsupported`]: request by
//!   request, on the fixture corpus ([`fixtures`]): how artifact paths are decoded and
//!   refused, the headers of both endpoints, validators, ranges (with the storage bytes
//!   they cost), and entries the gateway cannot decode.
//! - [`round_trips`]: how many storage round trips each request costs.
//! - [`integrity`]: checks that turn a wrong body into an aborted transfer (and a status
//!   line even when the check fails before the first byte).
//! - [`malformed`]: malformed archives answered with GitLab-style 502s.
//! - [`zip64`]: zip64 archives generated at test time (more than 65,535 entries; an entry
//!   past 4 GiB in a sparse file).
//! - [`changed`]: an archive replaced under the gateway.
//! - [`hot`]: the warm small-file path: hot entries, local files kept open.
//!
//! Archives made here come from [`common::zips`], whose record offsets (read back by the
//! `zip` crate) give the storage reads to expect. Each behaviour runs once per storage
//! (`on_both_storages!`) or per artifact source (`on_every_source!`: also upstream mode,
//! behind redirects and proxied downloads), as separate tests.
//!
//! The binary installs a global log subscriber (to read the reason an entry was aborted):
//! [`support::logs`].

#[macro_use]
#[path = "../common/mod.rs"]
mod common;

mod fixtures;
mod support;

mod changed;
mod corpus;
mod headers;
mod hot;
mod integrity;
mod malformed;
mod paths;
mod ranges;
mod round_trips;
mod unsupported;
mod validators;
mod zip64;
