//! Environment overrides: `ARTIFACT_GATEWAY_*` variables, overlaid onto the parsed TOML table
//! before deserialization, and remembered so that errors can name the variable.
//!
//! Any key, at any depth, can be set: `__` separates the segments of its dotted name, so
//! `ARTIFACT_GATEWAY_STORAGE__OPTIONS__GOOGLE_SERVICE_ACCOUNT` sets
//! `storage.options.google_service_account` (names are lowercased, so a key with uppercase
//! letters or a double underscore cannot be set this way).

use super::error::{invalid, ConfigError};

/// Prefix of the environment variables that override file keys.
const ENV_PREFIX: &str = "ARTIFACT_GATEWAY_";
/// Separates section from key in variable names; keys themselves contain single underscores.
const ENV_SECTION_SEPARATOR: &str = "__";

/// One key set from the environment.
struct Override {
    var: String,
    key: String,
    /// The variable's text, while its value is the number or bool it parsed as: should that
    /// type be wrong for the key, the value is retried as this string (a secret `12345678`).
    verbatim: Option<String>,
}

/// The keys set from the environment, remembered so errors can name the variable, not a key the
/// operator never wrote in the file.
pub(super) struct EnvOverrides(Vec<Override>);

impl EnvOverrides {
    pub(super) fn apply(
        table: &mut toml::Table,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut overrides: Vec<Override> = Vec::new();
        for (var, value) in env {
            let Some(name) = var.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            let segments: Vec<String> = name
                .to_ascii_lowercase()
                .split(ENV_SECTION_SEPARATOR)
                .map(str::to_owned)
                .collect();
            let well_formed = segments.iter().all(|s| {
                !s.is_empty()
                    && s.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            });
            if !well_formed {
                return Err(invalid(
                    var,
                    format!(
                        "not a configuration key; use {ENV_PREFIX}KEY or {ENV_PREFIX}SECTION__KEY"
                    ),
                ));
            }
            let key = segments.join(".");
            if let Some(other) = overrides.iter().find(|o| o.key == key) {
                return Err(invalid(var, format!("{key} is also set by {}", other.var)));
            }
            let typed = env_value(&var, &value)?;
            let verbatim = (!typed.is_str() && !typed.is_array()).then_some(value);
            insert(table, &segments, typed).map_err(|m| invalid(&var, m))?;
            overrides.push(Override { var, key, verbatim });
        }
        Ok(EnvOverrides(overrides))
    }

    /// Deserializes `table` with the overrides in it. When a key set from the environment has
    /// the wrong type, because its value was read as a number or bool, that value is retried
    /// as the string the variable holds, so string keys take any text.
    pub(super) fn deserialize<T: serde::de::DeserializeOwned>(
        &mut self,
        mut table: toml::Table,
    ) -> Result<T, ConfigError> {
        loop {
            let err = match serde_path_to_error::deserialize(table.clone()) {
                Ok(value) => return Ok(value),
                Err(err) => err,
            };
            let path = err.path().to_string();
            let retry = match self.0.iter_mut().find(|o| o.key == path) {
                Some(o) if err.inner().message().starts_with("invalid type") => {
                    o.verbatim.take().map(|text| {
                        (
                            o.key.split('.').map(str::to_owned).collect::<Vec<_>>(),
                            text,
                        )
                    })
                }
                _ => None,
            };
            let Some((segments, text)) = retry else {
                return Err(self.deserialize_error(err));
            };
            insert(&mut table, &segments, toml::Value::String(text))
                .expect("the key was set before");
        }
    }

    /// The override that set `key`, a value inside it, or a key inside section `key`.
    fn source(&self, key: &str) -> Option<&Override> {
        self.0.iter().find(|o| {
            let within = |outer: &str, inner: &str| {
                inner
                    .strip_prefix(outer)
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
            };
            within(&o.key, key) || within(key, &o.key)
        })
    }

    /// Names the variable in an error about a key it set.
    pub(super) fn attribute(&self, err: ConfigError) -> ConfigError {
        match err {
            ConfigError::Invalid { key, message } => match self.source(&key) {
                Some(o) => invalid(key, format!("{message} (set by {})", o.var)),
                None => invalid(key, message),
            },
            other => other,
        }
    }

    /// Turns a deserialization error into one naming the full dotted key. serde reports an
    /// unknown field at the path of its table, so the field name is appended here.
    fn deserialize_error(&self, err: serde_path_to_error::Error<toml::de::Error>) -> ConfigError {
        let path = err.path().to_string();
        let message = err.inner().message();
        let Some((field, expected)) = message
            .strip_prefix("unknown field `")
            .and_then(|rest| rest.split_once('`'))
        else {
            return match self.source(&path) {
                // A variable made a section out of a plain value (`LISTEN__PORT`): the key it
                // names does not exist.
                Some(o) if o.key.len() > path.len() => {
                    invalid(&o.var, format!("unknown key {}", o.key))
                }
                _ => self.attribute(invalid(path, message)),
            };
        };
        let key = if path == "." {
            field.to_owned()
        } else if path.rsplit('.').next() == Some(field) {
            path
        } else {
            format!("{path}.{field}")
        };
        match self.source(&key) {
            Some(o) => invalid(&o.var, format!("unknown key {}", o.key)),
            None => match expected.strip_prefix(", ") {
                Some(hint) => invalid(key, format!("unknown key ({hint})")),
                None => invalid(key, "unknown key"),
            },
        }
    }
}

/// A variable's value as TOML: an integer, bool or float if it parses as one, an array if it
/// starts with `[` (e.g. `rewrite_bases`), otherwise the string itself, so URLs need no quotes.
fn env_value(var: &str, value: &str) -> Result<toml::Value, ConfigError> {
    let parsed = format!("v = {value}")
        .parse::<toml::Table>()
        .ok()
        .filter(|t| t.len() == 1) // a value with a newline must not smuggle in more keys
        .and_then(|mut t| t.remove("v"));
    if value.trim_start().starts_with('[') {
        return match parsed {
            Some(array @ toml::Value::Array(_)) => Ok(array),
            _ => Err(invalid(
                var,
                "not a TOML array, e.g. [\"https://a\", \"https://b\"]",
            )),
        };
    }
    Ok(match parsed {
        Some(v @ (toml::Value::Integer(_) | toml::Value::Boolean(_) | toml::Value::Float(_))) => v,
        _ => toml::Value::String(value.to_owned()),
    })
}

/// Sets `segments` (section path, then key) in `table`, creating sections as needed.
fn insert(table: &mut toml::Table, segments: &[String], value: toml::Value) -> Result<(), String> {
    let (last, sections) = segments
        .split_last()
        .expect("split yields at least one segment");
    let mut current = table;
    for (i, section) in sections.iter().enumerate() {
        let entry = current
            .entry(section.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        current = match entry {
            toml::Value::Table(t) => t,
            _ => {
                return Err(format!(
                    "cannot set {}: {} is not a section",
                    segments.join("."),
                    sections[..=i].join(".")
                ))
            }
        };
    }
    if let Some(toml::Value::Table(_)) = current.get(last) {
        return Err(format!(
            "{} is a section; set its keys with {ENV_PREFIX}SECTION__KEY",
            segments.join(".")
        ));
    }
    current.insert(last.clone(), value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_value_types() {
        let v = |s: &str| env_value("V", s).unwrap();
        assert_eq!(v("42"), toml::Value::Integer(42));
        assert_eq!(v("true"), toml::Value::Boolean(true));
        assert_eq!(v("1.5"), toml::Value::Float(1.5));
        assert_eq!(
            v("0.0.0.0:8080"),
            toml::Value::String("0.0.0.0:8080".into())
        );
        assert_eq!(v("\"quoted\""), toml::Value::String("\"quoted\"".into()));
        assert_eq!(
            v("1\nlisten = 2"),
            toml::Value::String("1\nlisten = 2".into())
        );
    }
}
