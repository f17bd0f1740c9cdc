//! Serde plumbing for the raw tree: durations (`"30s"` or seconds), sizes (`"64MiB"` or
//! bytes), text and string tables that name what they found when it is the wrong type.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

pub(super) const KIB: u64 = 1024;
pub(super) const MIB: u64 = 1024 * KIB;
const GIB: u64 = 1024 * MIB;

/// Longest accepted duration. Far beyond any sensible timeout, and small enough that
/// `Instant + duration` can never overflow (which would panic deep inside a timer).
const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);

/// A duration as written in the file: `"500ms"`, `"10s"`, `"5m"`, `"1h"`, or integer seconds.
pub(super) struct Dur(pub(super) Duration);
/// A byte count as written in the file: an integer, or a string with `B`/`KiB`/`MiB`/`GiB`.
pub(super) struct Size(pub(super) u64);

/// Accepts a non-negative integer or a string, converting each with its own function, so the
/// conversion error surfaces during deserialization and `serde_path_to_error` names the key.
struct IntOrStr<T> {
    expecting: &'static str,
    int: fn(u64) -> Result<T, String>,
    text: fn(&str) -> Result<T, String>,
}

impl<T> Visitor<'_> for IntOrStr<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.expecting)
    }

    fn visit_u64<E: de::Error>(self, n: u64) -> Result<T, E> {
        (self.int)(n).map_err(E::custom)
    }

    fn visit_i64<E: de::Error>(self, n: i64) -> Result<T, E> {
        let n = u64::try_from(n).map_err(|_| E::custom("must not be negative"))?;
        self.visit_u64(n)
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<T, E> {
        (self.text)(s).map_err(E::custom)
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(IntOrStr {
            expecting:
                "a duration such as \"500ms\", \"10s\", \"5m\" or \"1h\", or integer seconds",
            int: |secs| at_most_max(Duration::from_secs(secs)),
            text: parse_duration,
        })
        .map(Dur)
    }
}

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(IntOrStr {
            expecting: "a size: an integer number of bytes or a string such as \"64MiB\"",
            int: Ok,
            text: parse_size,
        })
        .map(Size)
    }
}

/// A string as written in the file, whose type errors never echo the value: it may be a
/// credential (`storage.secret_access_key`, a `storage.options` entry). serde's own messages
/// quote it (``invalid type: integer `1234`, expected a string``).
pub(super) struct Text(pub(super) String);

/// `storage.options` as written in the file: a table of strings. Like [`Text`], its type errors
/// never echo a value; an entry's error names its key (`storage.options.<key>`).
pub(super) struct StringTable(pub(super) BTreeMap<String, String>);

/// serde's "invalid type" error without the value: `invalid type: integer, expected a string`.
fn invalid_type<E: de::Error>(found: &str, expected: &dyn de::Expected) -> E {
    E::custom(format!("invalid type: {found}, expected {expected}"))
}

/// The `visit_*` methods for every TOML scalar, each refusing its value with [`invalid_type`].
macro_rules! refuse_scalars_without_echo {
    ($($method:ident($ty:ty) => $found:literal),* $(,)?) => {$(
        fn $method<E: de::Error>(self, _: $ty) -> Result<Self::Value, E> {
            Err(invalid_type($found, &self))
        }
    )*};
}

struct TextVisitor;

impl<'de> Visitor<'de> for TextVisitor {
    type Value = Text;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Text, E> {
        Ok(Text(s.to_owned()))
    }

    fn visit_string<E: de::Error>(self, s: String) -> Result<Text, E> {
        Ok(Text(s))
    }

    refuse_scalars_without_echo! {
        visit_bool(bool) => "boolean",
        visit_i64(i64) => "integer",
        visit_u64(u64) => "integer",
        visit_f64(f64) => "floating point",
    }

    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<Text, A::Error> {
        Err(invalid_type("array", &self))
    }

    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<Text, A::Error> {
        Err(invalid_type("table", &self))
    }
}

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(TextVisitor)
    }
}

struct StringTableVisitor;

impl<'de> Visitor<'de> for StringTableVisitor {
    type Value = StringTable;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a table of strings, e.g. { google_service_account = \"/etc/gcs.json\" }")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<StringTable, A::Error> {
        let mut table = BTreeMap::new();
        while let Some((key, Text(value))) = map.next_entry::<String, Text>()? {
            table.insert(key, value);
        }
        Ok(StringTable(table))
    }

    refuse_scalars_without_echo! {
        visit_bool(bool) => "boolean",
        visit_i64(i64) => "integer",
        visit_u64(u64) => "integer",
        visit_f64(f64) => "floating point",
        visit_str(&str) => "string",
    }

    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<StringTable, A::Error> {
        Err(invalid_type("array", &self))
    }
}

impl<'de> Deserialize<'de> for StringTable {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StringTableVisitor)
    }
}

/// Splits `"10ms"` into `("10", "ms")`.
fn split_number(s: &str) -> (&str, &str) {
    s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()))
}

/// Parses `<integer><unit>` with unit `ms`, `s`, `m` or `h`; a bare integer means seconds.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let err = || {
        format!("invalid duration {s:?}: expected an integer with unit ms, s, m or h, e.g. \"500ms\", \"10s\", \"5m\"")
    };
    let (digits, unit) = split_number(s.trim());
    let n: u64 = digits.parse().map_err(|_| err())?;
    let duration = match unit {
        "ms" => Some(Duration::from_millis(n)),
        "" | "s" => Some(Duration::from_secs(n)),
        "m" => n.checked_mul(60).map(Duration::from_secs),
        "h" => n.checked_mul(3600).map(Duration::from_secs),
        _ => return Err(err()),
    };
    at_most_max(duration.unwrap_or(Duration::MAX))
}

fn at_most_max(d: Duration) -> Result<Duration, String> {
    if d > MAX_DURATION {
        return Err("too long: at most 8760h (one year)".to_owned());
    }
    Ok(d)
}

/// Parses `<integer>[unit]` with unit `B`, `KiB`, `MiB` or `GiB` (any case); none means bytes.
/// `KB`/`MB` are refused rather than guessed: they mean 1000 to some and 1024 to others.
fn parse_size(s: &str) -> Result<u64, String> {
    let err = || {
        format!("invalid size {s:?}: expected bytes, or an integer with unit B, KiB, MiB or GiB, e.g. \"64MiB\"")
    };
    let (digits, unit) = split_number(s.trim());
    let n: u64 = digits.parse().map_err(|_| err())?;
    let multiplier = match unit.trim_start().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kib" => KIB,
        "mib" => MIB,
        "gib" => GIB,
        _ => return Err(err()),
    };
    n.checked_mul(multiplier)
        .ok_or_else(|| format!("size {s:?} is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        assert_eq!(parse_duration(" 0s "), Ok(Duration::ZERO));
        for bad in [
            "",
            "s",
            "-1s",
            "1.5s",
            "10 s",
            "10sec",
            "1d",
            "ms10",
            "99999999999999999999s",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
        assert!(parse_duration("8761h").unwrap_err().contains("too long"));
        assert!(parse_duration("18446744073709551615h").is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1024"), Ok(1024));
        assert_eq!(parse_size("10B"), Ok(10));
        assert_eq!(parse_size("16KiB"), Ok(16 * 1024));
        assert_eq!(parse_size("64 MiB"), Ok(64 << 20));
        assert_eq!(parse_size("2gib"), Ok(2 << 30));
        for bad in [
            "",
            "MiB",
            "1.5MiB",
            "-1",
            "64MB",
            "64KB",
            "1 TiB",
            "18446744073709551615GiB",
        ] {
            assert!(parse_size(bad).is_err(), "{bad:?}");
        }
    }
}
