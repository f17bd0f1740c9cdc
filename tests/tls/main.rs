//! TLS: the listener's `tls::Acceptor` (HTTP/1.1 and HTTP/2 over TLS, ALPN, certificate reload
//! by call and by watching the files, load errors naming the file), and the gateway's HTTPS
//! clients trusting an extra CA (`upstream.ca_file`, `storage.ca_file`).
//!
//! Certificates are made here with rcgen: a test CA and leaves for `localhost`/`127.0.0.1`.
//! The listener tests serve a fixed body from a minimal accept loop over the acceptor (the
//! gateway's own listener is wired separately). One test binary grouped by behaviour:
//!
//! - [`listener`]: HTTP/1.1 and HTTP/2 over TLS, TLS 1.2 and 1.3, the handshake timeout,
//!   and load errors that name the file.
//! - [`reload`]: certificate reload by call and by watching the files, on the acceptor
//!   and on the real gateway with `[tls]`.
//! - [`clients`]: the gateway's HTTPS clients to the upstream and to S3, trusting an
//!   extra CA.
//!
//! Certificates, temporary directories, the minimal HTTPS server and the clients that
//! show what the handshake chose are in [`support`].

#[path = "../common/mod.rs"]
mod common;
mod support;

mod clients;
mod listener;
mod reload;
