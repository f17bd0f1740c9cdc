//! What the gateway adds on top of GitLab's artifact routes, end to end:
//!
//! - [`tree`]: the listing of an archive's files (`…/artifacts/tree`, GitLab 18.8's
//!   answer, and a by-ref form), from the zip index.
//! - [`part`]: a part of an archive as a new zip (`…/artifacts/-/zip`), read back by
//!   independent zip readers.
//! - [`links`]: expiring links (`…/artifacts/-/links`, `/-/links/:token`).
//!
//! The binary installs a global log subscriber (to check that link tokens are never
//! logged).
//!
//! Each behaviour runs per storage (`on_both_storages!`) or per artifact source
//! (`on_every_source!`).

#[macro_use]
#[path = "../common/mod.rs"]
mod common;

mod support;

mod links;
mod part;
mod tree;
