//! How cx values are written to and read from columns: instants as (microseconds, nanoseconds),
//! channels and outcome kinds as their names, attributes as JSON.

use cx_core::model::{Attributes, Channel, OutcomeKind, TimeRange, Timestamp, Value};
use cx_core::{Error, Result};

/// An instant as stored: microseconds since the Unix epoch, and the nanoseconds below the
/// microsecond (0-999). Row comparison `(us, ns)` orders instants exactly.
pub(crate) fn split(t: Timestamp) -> (i64, i16) {
    let ns = i16::try_from(t.timestamp_subsec_nanos() % 1_000).unwrap_or(0);
    (t.timestamp_micros(), ns)
}

/// The instant stored as `(us, ns)`.
pub(crate) fn join(us: i64, ns: i16) -> Result<Timestamp> {
    Timestamp::from_timestamp_micros(us)
        .and_then(|t| t.checked_add_signed(chrono_nanos(ns)))
        .ok_or_else(|| corrupt(format!("instant ({us} µs, {ns} ns) is out of range")))
}

fn chrono_nanos(ns: i16) -> cx_core::chrono::TimeDelta {
    cx_core::chrono::TimeDelta::nanoseconds(i64::from(ns))
}

/// The bounds of a half-open range, as stored instants.
pub(crate) struct Bounds {
    pub(crate) start_us: i64,
    pub(crate) start_ns: i16,
    pub(crate) end_us: i64,
    pub(crate) end_ns: i16,
}

impl Bounds {
    pub(crate) fn of(range: &TimeRange) -> Self {
        let (start_us, start_ns) = split(range.start);
        let (end_us, end_ns) = split(range.end);
        Bounds {
            start_us,
            start_ns,
            end_us,
            end_ns,
        }
    }
}

/// The outcome kind named `name` (as [`OutcomeKind::as_str`] writes it).
pub(crate) fn outcome_kind(name: &str) -> Result<OutcomeKind> {
    OutcomeKind::ALL
        .into_iter()
        .find(|k| k.as_str() == name)
        .ok_or_else(|| corrupt(format!("unknown outcome kind {name:?}")))
}

/// The channel named `name`.
pub(crate) fn channel(name: &str) -> Channel {
    Channel::parse(name)
}

/// Attributes as JSON text, or `None` when there are none (stored as SQL NULL).
pub(crate) fn attributes_json(attributes: &Attributes) -> Result<Option<String>> {
    if attributes.is_empty() {
        return Ok(None);
    }
    serde_json::to_string(attributes)
        .map(Some)
        .map_err(|e| encode_error("attributes", e))
}

/// Attributes read back from JSON text (`None`: no attributes).
pub(crate) fn attributes_from(json: Option<&str>) -> Result<Attributes> {
    match json {
        None => Ok(Attributes::new()),
        Some(text) => serde_json::from_str(text).map_err(|e| decode_error("attributes", e)),
    }
}

/// Checks that `attributes` can be stored in a `jsonb` column: PostgreSQL's JSON cannot hold
/// the NUL character. Returns the dotted path of the first attribute that holds one.
pub(crate) fn nul_in(attributes: &Attributes) -> Option<String> {
    fn has_nul(v: &Value) -> bool {
        match v {
            Value::String(s) => s.contains('\0'),
            Value::List(items) => items.iter().any(has_nul),
            _ => false,
        }
    }
    attributes
        .iter()
        .find(|(_, v)| has_nul(v))
        .map(|(name, _)| name.to_string())
}

/// The error for a value that cannot be stored because it holds a NUL character.
pub(crate) fn nul_error(item: String, field: String) -> Error {
    Error::validation(
        item,
        field,
        "contains a NUL character, which PostgreSQL cannot store",
    )
}

/// A stored value that cx cannot read back: the database was changed by something else.
pub(crate) fn corrupt(message: String) -> Error {
    Error::Storage {
        backend: "postgres",
        message: format!("unreadable stored data: {message}"),
        source: None,
    }
}

pub(crate) fn decode_error(what: &str, e: serde_json::Error) -> Error {
    Error::Storage {
        backend: "postgres",
        message: format!("unreadable stored {what}: {e}"),
        source: Some(Box::new(e)),
    }
}

pub(crate) fn encode_error(what: &str, e: serde_json::Error) -> Error {
    Error::Storage {
        backend: "postgres",
        message: format!("cannot serialise {what}: {e}"),
        source: Some(Box::new(e)),
    }
}

/// Converts a count read from SQL (`bigint`) to `u64`.
pub(crate) fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// Column `i` of `row`, or a storage error if it does not hold a `T` (never a panic).
pub(crate) fn get<'a, T: tokio_postgres::types::FromSql<'a>>(
    row: &'a tokio_postgres::Row,
    i: usize,
) -> Result<T> {
    row.try_get(i).map_err(|e| {
        let cause = std::error::Error::source(&e)
            .map(|s| format!(": {s}"))
            .unwrap_or_default();
        corrupt(format!("column {i}: {e}{cause}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use cx_core::chrono::{DateTime, TimeZone, Utc};

    #[test]
    fn instants_round_trip_exactly_across_the_whole_range() {
        let samples = [
            DateTime::<Utc>::MIN_UTC,
            DateTime::<Utc>::MAX_UTC,
            Utc.timestamp_opt(0, 0).unwrap(),
            Utc.timestamp_opt(-1, 999_999_999).unwrap(),
            Utc.timestamp_opt(1_800_000_000, 123_456_789).unwrap(),
            Utc.with_ymd_and_hms(8199, 12, 31, 23, 59, 59).unwrap(),
        ];
        for t in samples {
            let (us, ns) = split(t);
            assert!((0..1000).contains(&ns));
            assert_eq!(join(us, ns).unwrap(), t, "{t:?}");
        }
        let (a, b) = (samples[3], samples[2]);
        assert!(split(a) < split(b), "(us, ns) orders like the instants");
    }

    #[test]
    fn outcome_kinds_round_trip() {
        for k in OutcomeKind::ALL {
            assert_eq!(outcome_kind(k.as_str()).unwrap(), k);
        }
        assert!(outcome_kind("maybe").is_err());
    }
}
