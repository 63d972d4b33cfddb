use crate::error::Result;
use crate::model::{Channel, CustomerId, Kind, TimeRange, Timestamp, Touchpoint, TouchpointId};
use async_trait::async_trait;

/// The touchpoint log: append-only, idempotent, atomic per batch.
///
/// # Contract
///
/// - **Validation first.** Every touchpoint of a batch is validated and its subject resolved
///   before anything is stored. A batch with an invalid touchpoint, or one whose identity
///   resolves to no customer, fails with [`Error::Validation`] naming that touchpoint and its
///   position, and stores nothing.
/// - **Resolution.** A customer-id subject is stored under the id it resolves to (following
///   merges); the customer need not have a profile yet. An identity subject must resolve.
///   Stored touchpoints always carry `Subject::Customer` with the resolved id.
/// - **Idempotent.** The idempotency key is (resolved customer, touchpoint id). A touchpoint whose
///   key is already stored, or appears earlier in the same batch, is a duplicate: it is counted
///   in the report and not stored again (the first version stays).
/// - **Atomic.** A batch is stored whole or not at all; readers never see part of a batch.
/// - **Reads** return touchpoints ordered by `(occurred_at, id)`; time ranges are half-open.
///
/// [`Error::Validation`]: crate::Error::Validation
#[async_trait]
pub trait TouchpointStore: Send + Sync {
    /// Appends a batch (see the contract).
    async fn append_touchpoints(&self, batch: Vec<Touchpoint>) -> Result<AppendReport>;

    /// One customer's touchpoints that occurred in `range`, oldest first.
    async fn customer_touchpoints(
        &self,
        customer: &CustomerId,
        range: TimeRange,
    ) -> Result<Vec<Touchpoint>>;

    /// A page of all touchpoints matching `query`, ordered by `(occurred_at, customer, id)`.
    async fn scan_touchpoints(&self, query: &ScanQuery) -> Result<ScanPage>;

    /// Counts of touchpoints and distinct customers matching `query`, grouped as it asks.
    async fn aggregate_touchpoints(&self, query: &AggregateQuery) -> Result<Vec<AggregateRow>>;
}

/// What an append did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct AppendReport {
    /// Touchpoints stored.
    pub inserted: u64,
    /// Touchpoints already stored (or repeated in the batch), not stored again.
    pub duplicates: u64,
}

impl AppendReport {
    /// A report.
    pub fn new(inserted: u64, duplicates: u64) -> Self {
        AppendReport {
            inserted,
            duplicates,
        }
    }
}

/// Which touchpoints a scan or an aggregate looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TouchpointQuery {
    /// When they occurred.
    pub range: TimeRange,
    /// Kinds to keep (empty: all).
    pub kinds: Vec<Kind>,
    /// Channels to keep (empty: all).
    pub channels: Vec<Channel>,
}

impl TouchpointQuery {
    /// All touchpoints in `range`.
    pub fn new(range: TimeRange) -> Self {
        TouchpointQuery {
            range,
            kinds: Vec::new(),
            channels: Vec::new(),
        }
    }

    /// Keep only these kinds.
    #[must_use]
    pub fn kinds(mut self, kinds: impl IntoIterator<Item = Kind>) -> Self {
        self.kinds = kinds.into_iter().collect();
        self
    }

    /// Keep only these channels.
    #[must_use]
    pub fn channels(mut self, channels: impl IntoIterator<Item = Channel>) -> Self {
        self.channels = channels.into_iter().collect();
        self
    }

    /// Whether `t` matches (the range, the kinds and the channels).
    pub fn matches(&self, t: &Touchpoint) -> bool {
        self.range.contains(t.occurred_at)
            && (self.kinds.is_empty() || self.kinds.contains(&t.kind))
            && (self.channels.is_empty() || self.channels.contains(&t.channel))
    }
}

/// Where a scan page starts: just after this position.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ScanCursor {
    /// When the last touchpoint returned occurred.
    pub occurred_at: Timestamp,
    /// Its customer.
    pub customer: CustomerId,
    /// Its id.
    pub id: TouchpointId,
}

/// A scan: which touchpoints, from where, how many.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ScanQuery {
    /// Which touchpoints.
    pub filter: TouchpointQuery,
    /// Start after this position (`None`: from the start).
    pub after: Option<ScanCursor>,
    /// At most this many (at least 1).
    pub limit: usize,
}

impl ScanQuery {
    /// The first `limit` touchpoints matching `filter`.
    pub fn new(filter: TouchpointQuery, limit: usize) -> Self {
        ScanQuery {
            filter,
            after: None,
            limit: limit.max(1),
        }
    }

    /// Continue after `cursor`.
    #[must_use]
    pub fn after(mut self, cursor: Option<ScanCursor>) -> Self {
        self.after = cursor;
        self
    }
}

/// One page of a scan.
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct ScanPage {
    /// The touchpoints, in scan order.
    pub touchpoints: Vec<Touchpoint>,
    /// Where the next page starts; `None` when this was the last page.
    pub next: Option<ScanCursor>,
}

impl ScanPage {
    /// A page.
    pub fn new(touchpoints: Vec<Touchpoint>, next: Option<ScanCursor>) -> Self {
        ScanPage { touchpoints, next }
    }
}

/// Time buckets for aggregates (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Bucket {
    /// Hours.
    Hour,
    /// Days.
    Day,
    /// ISO weeks starting Monday.
    Week,
}

impl Bucket {
    /// The start of the bucket that holds `t`.
    pub fn start_of(self, t: Timestamp) -> Timestamp {
        // In microseconds, which cover every instant chrono represents (nanoseconds stop at
        // 2262, where `DurationRound` gives up and would leave `t` untruncated).
        const DAY: i64 = 86_400_000_000;
        let (span, offset) = match self {
            Bucket::Hour => (3_600_000_000, 0),
            Bucket::Day => (DAY, 0),
            // 1970-01-01 was a Thursday: weeks start 3 days before it.
            Bucket::Week => (7 * DAY, -3 * DAY),
        };
        let us = t.timestamp_micros();
        let start = us - (us - offset).rem_euclid(span);
        Timestamp::from_timestamp_micros(start).unwrap_or(t)
    }
}

/// An aggregate: which touchpoints, grouped by which dimensions.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AggregateQuery {
    /// Which touchpoints.
    pub filter: TouchpointQuery,
    /// Group by channel.
    pub by_channel: bool,
    /// Group by kind.
    pub by_kind: bool,
    /// Group by time bucket.
    pub bucket: Option<Bucket>,
}

impl AggregateQuery {
    /// One row for everything matching `filter`.
    pub fn new(filter: TouchpointQuery) -> Self {
        AggregateQuery {
            filter,
            by_channel: false,
            by_kind: false,
            bucket: None,
        }
    }

    /// Group by channel.
    #[must_use]
    pub fn by_channel(mut self) -> Self {
        self.by_channel = true;
        self
    }

    /// Group by kind.
    #[must_use]
    pub fn by_kind(mut self) -> Self {
        self.by_kind = true;
        self
    }

    /// Group by time bucket.
    #[must_use]
    pub fn by_bucket(mut self, bucket: Bucket) -> Self {
        self.bucket = Some(bucket);
        self
    }
}

/// One group of an aggregate. Rows are ordered by `(bucket, channel, kind)`; only groups with at
/// least one touchpoint are returned, except that an ungrouped query on no data returns one row
/// of zeros.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AggregateRow {
    /// The bucket start, when grouped by bucket.
    pub bucket: Option<Timestamp>,
    /// The channel, when grouped by channel.
    pub channel: Option<Channel>,
    /// The kind, when grouped by kind.
    pub kind: Option<Kind>,
    /// Touchpoints in the group.
    pub touchpoints: u64,
    /// Distinct customers in the group.
    pub customers: u64,
}

impl AggregateRow {
    /// A row.
    pub fn new(
        bucket: Option<Timestamp>,
        channel: Option<Channel>,
        kind: Option<Kind>,
        touchpoints: u64,
        customers: u64,
    ) -> Self {
        AggregateRow {
            bucket,
            channel,
            kind,
            touchpoints,
            customers,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    #[test]
    fn buckets_start_on_the_hour_the_day_and_monday_in_any_year() {
        for year in [1960, 2026, 2262, 2263, 8199] {
            // 10 June, 13:45:30.5 of `year`.
            let t = Utc.with_ymd_and_hms(year, 6, 10, 13, 45, 30).unwrap()
                + chrono::TimeDelta::milliseconds(500);
            let day = Utc.with_ymd_and_hms(year, 6, 10, 0, 0, 0).unwrap();
            assert_eq!(Bucket::Hour.start_of(t), day + chrono::TimeDelta::hours(13));
            assert_eq!(Bucket::Day.start_of(t), day);
            let week = Bucket::Week.start_of(t);
            assert_eq!(
                chrono::Datelike::weekday(&week),
                chrono::Weekday::Mon,
                "{year}"
            );
            assert!(
                week <= day && day - week < chrono::TimeDelta::days(7),
                "{year}"
            );
            assert_eq!(Bucket::Week.start_of(week), week);
        }
    }
}
