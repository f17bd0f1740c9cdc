//! The hostile-input suite: what an attacker or a careless client sends, each case named
//! after what it attacks. Cases that bound memory run the real `artifact-gateway` binary
//! ([`support::Gateway`]) so that peak RSS is read from outside the request, from
//! `/proc/<pid>/status`, on a process that served nothing else.

#[path = "../common/mod.rs"]
mod common;
mod support;

mod bombs;
mod decoder_bombs;
mod framing;
mod headers;
mod identity;
mod local_rewrite;
mod outcomes;
mod tokens_in_logs;
