//! What the gateway tells its operators about requests: the access log line and the request
//! metrics written when a response has really finished ([`access_log`]).

pub mod access_log;
