//! End-to-end tests of loading: TOML text and environment through to a validated `Config`.

mod env;
mod errors;
mod files;
mod sections;
mod storage;
mod tls;

use super::*;

pub(super) const MINIMAL: &str = "[upstream]\nurl = \"http://127.0.0.1:3000\"\n";

pub(super) fn load(text: &str) -> Result<Config, ConfigError> {
    Config::from_toml(text, Vec::new())
}

pub(super) fn load_env(text: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string()));
    Config::from_toml(text, env.collect::<Vec<_>>())
}

/// The error text for `text`, which must fail.
pub(super) fn error(text: &str) -> String {
    load(text)
        .expect_err("config should be rejected")
        .to_string()
}

pub(super) fn error_env(text: &str, env: &[(&str, &str)]) -> String {
    load_env(text, env)
        .expect_err("config should be rejected")
        .to_string()
}

pub(super) fn base(s: &str) -> BaseUrl {
    BaseUrl::parse(s).unwrap()
}
