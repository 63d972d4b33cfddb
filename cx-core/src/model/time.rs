//! Instants, half-open time ranges and durations written the way people write them (`7d`, `10m`).

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// An instant, in UTC.
pub type Timestamp = DateTime<Utc>;

/// A half-open time range `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TimeRange {
    /// First instant in the range.
    pub start: Timestamp,
    /// First instant after the range.
    pub end: Timestamp,
}

impl TimeRange {
    /// `[start, end)`.
    pub fn new(start: Timestamp, end: Timestamp) -> Self {
        TimeRange { start, end }
    }

    /// All of time that chrono can represent.
    pub fn all() -> Self {
        TimeRange {
            start: DateTime::<Utc>::MIN_UTC,
            end: DateTime::<Utc>::MAX_UTC,
        }
    }

    /// The window of length `span` that ends (exclusively) at `end`: `[end - span, end)`.
    pub fn ending_at(end: Timestamp, span: Span) -> Self {
        TimeRange {
            start: end
                .checked_sub_signed(span.as_delta())
                .unwrap_or(DateTime::<Utc>::MIN_UTC),
            end,
        }
    }

    /// Whether `t` is in the range.
    pub fn contains(&self, t: Timestamp) -> bool {
        self.start <= t && t < self.end
    }

    /// Whether the range holds no instant.
    pub fn is_empty(&self) -> bool {
        self.start >= self.end
    }
}

/// A non-negative duration, written as text in definitions: `90s`, `10m`, `7d`, `1h 30m`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Span(TimeDelta);

impl Span {
    /// Zero.
    pub const ZERO: Span = Span(TimeDelta::zero());

    /// `n` seconds.
    pub fn seconds(n: i64) -> Self {
        Span(TimeDelta::seconds(n.max(0)))
    }

    /// `n` minutes.
    pub fn minutes(n: i64) -> Self {
        Span(TimeDelta::minutes(n.max(0)))
    }

    /// `n` hours.
    pub fn hours(n: i64) -> Self {
        Span(TimeDelta::hours(n.max(0)))
    }

    /// `n` days of 24 hours.
    pub fn days(n: i64) -> Self {
        Span(TimeDelta::days(n.max(0)))
    }

    /// The span as a chrono delta, for arithmetic with [`Timestamp`]s.
    pub fn as_delta(self) -> TimeDelta {
        self.0
    }

    /// Whether the span is zero.
    pub fn is_zero(self) -> bool {
        self.0.is_zero()
    }

    /// Parses `7d`, `10m`, `1h 30m`, `90s` (humantime's syntax).
    pub fn parse(text: &str) -> Result<Self, String> {
        let std = humantime::parse_duration(text.trim()).map_err(|e| format!("{text:?}: {e}"))?;
        TimeDelta::from_std(std)
            .map(Span)
            .map_err(|_| format!("{text:?} is too long a duration"))
    }
}

impl From<TimeDelta> for Span {
    /// Negative deltas become zero: a span is never negative.
    fn from(delta: TimeDelta) -> Self {
        Span(delta.max(TimeDelta::zero()))
    }
}

impl fmt::Display for Span {
    /// The way definitions write it: `7d`, `1h 30m`, `90s` → `1m 30s`, `250ms`; `0s` for zero.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let total_ms = self.0.num_milliseconds();
        if total_ms <= 0 {
            return f.write_str("0s");
        }
        let units = [
            (86_400_000, "d"),
            (3_600_000, "h"),
            (60_000, "m"),
            (1_000, "s"),
            (1, "ms"),
        ];
        let mut rest = total_ms;
        let mut first = true;
        for (size, unit) in units {
            let n = rest / size;
            rest %= size;
            if n > 0 {
                if !first {
                    f.write_str(" ")?;
                }
                write!(f, "{n}{unit}")?;
                first = false;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Span({self})")
    }
}

impl Serialize for Span {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Span {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Span::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_parse_and_print_the_way_people_write_them() {
        assert_eq!(Span::parse("7d"), Ok(Span::days(7)));
        assert_eq!(Span::parse("1h 30m"), Ok(Span::minutes(90)));
        assert_eq!(Span::parse("90s"), Ok(Span::seconds(90)));
        assert!(Span::parse("soon").is_err());
        assert!(Span::parse("-3d").is_err());
        assert_eq!(Span::days(7).to_string(), "7d");
        assert_eq!(Span::minutes(90).to_string(), "1h 30m");
        assert_eq!(
            Span::parse(&Span::seconds(100_000).to_string()),
            Ok(Span::seconds(100_000))
        );
        let json = serde_json::to_string(&Span::minutes(10)).unwrap_or_default();
        assert_eq!(json, "\"10m\"");
    }

    #[test]
    fn ranges_are_half_open() {
        let t = Utc::now();
        let r = TimeRange::ending_at(t, Span::minutes(10));
        assert!(!r.contains(t));
        assert!(r.contains(t - TimeDelta::minutes(10)));
        assert!(!r.contains(t - TimeDelta::minutes(11)));
        assert!(TimeRange::new(t, t).is_empty());
    }
}
