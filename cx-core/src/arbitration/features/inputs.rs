//! Feature inputs: what a catalogue's features read of one customer's touchpoints, read once
//! and kept compact, so that the features at any later instant are a few binary searches and
//! a pass over packed numbers instead of a walk over the touchpoints and their attributes.
//!
//! A feature's value at `now` depends on `now` only through its window: which of the
//! touchpoints it admits (by kind, channel and filter) occurred in `[now - window, now)`.
//! Whether a touchpoint is admitted, and the value of the feature's attribute it holds, do not
//! depend on `now`, unless a filter reads `now`. So each feature keeps, per admitted
//! touchpoint in time order, when it occurred and that value; a computation at `now` finds
//! its window in them by binary search and aggregates the values in it, exactly as
//! [`compute`](super::compute) does over the touchpoints. A set with a filter that reads
//! `now` has no inputs ([`FeatureSet::timeless`]).

use super::{
    Acc, FeatureScratch, FeatureSet, TouchpointFields, add_distinct, match_kinds,
    partition_point_ends,
};
use crate::arbitration::CompiledCatalog;
use crate::model::{Aggregation, Timestamp, Value};
use crate::prefetch::prefetch_lines;
use crate::rules::{Scalar, Vocabulary};

/// What the features of one compiled catalogue read of one customer's touchpoints from an
/// instant on: enough to compute them at any `now` whose windows all start at or after that
/// instant. Built by
/// [`CompiledCatalog::feature_inputs`](crate::arbitration::CompiledCatalog::feature_inputs)
/// and read by
/// [`CompiledCatalog::compute_features_from`](crate::arbitration::CompiledCatalog::compute_features_from);
/// a store keeps them with the customer's touchpoints and drops them when those change.
#[derive(Debug, Clone)]
pub struct FeatureInputs {
    /// The [`FeatureSet::id`] of the set they were read for.
    set: u64,
    /// The instant (microseconds) from which every touchpoint was read.
    from: i64,
    /// Per feature, in catalogue order, where its rows end (they start where the previous
    /// feature's end).
    ends: Box<[u32]>,
    /// Per feature, the touchpoints it admits, oldest first.
    rows: Box<[Row]>,
    /// The values other than numbers that rows hold.
    values: Box<[Value]>,
}

/// A touchpoint a feature admits: when it occurred and its value of the feature's attribute.
#[derive(Debug, Clone, Copy)]
pub(super) struct Row {
    /// In microseconds since the Unix epoch, rounded down.
    at: i64,
    cell: Cell,
}

/// A touchpoint's value of a feature's attribute.
#[derive(Debug, Clone, Copy)]
enum Cell {
    /// None, or the feature has no attribute.
    Missing,
    Number(f64),
    /// A position in [`FeatureInputs::values`].
    Other(u32),
}

impl Cell {
    /// The value as a rule reads it.
    #[inline]
    fn scalar<'a>(self, values: &'a [Value]) -> Option<Scalar<'a>> {
        match self {
            Cell::Missing => None,
            Cell::Number(n) => Some(Scalar::Num(n)),
            Cell::Other(i) => values.get(i as usize).map(Scalar::of),
        }
    }
}

/// How many touchpoints ahead [`FeatureInputs::read`] asks for the attributes of.
const ATTRIBUTES_AHEAD: usize = 6;

impl FeatureInputs {
    /// The inputs of `set`'s features in `touchpoints` (oldest first: every touchpoint of the
    /// customer that occurred at or after `from`, in microseconds), built in `scratch`; `None`
    /// if `set` has none (a filter reads `now`) or there are more than 2^32 rows.
    pub(crate) fn read<'a, T: TouchpointFields>(
        set: &FeatureSet,
        vocabulary: &Vocabulary,
        touchpoints: &'a [T],
        from: i64,
        scratch: &mut FeatureScratch<'a>,
    ) -> Option<Self> {
        if !set.timeless {
            return None;
        }
        match_kinds(set, touchpoints, scratch);
        let FeatureScratch {
            pass,
            kinds,
            lanes,
            values,
            lane_hints,
            ..
        } = scratch;
        pass.touchpoint.clear();
        pass.touchpoint.resize(vocabulary.touchpoint.len(), None);
        values.clear();
        lanes.resize_with(set.len(), Vec::new);
        lanes.iter_mut().for_each(Vec::clear);
        lane_hints.resize_with(set.len(), Default::default);
        for (feature, (hint, filter_hints)) in set.iter().zip(lane_hints.iter_mut()) {
            *hint = 0;
            filter_hints.clear();
            filter_hints.resize(feature.filter_reads.len(), 0);
        }
        // A touchpoint at a time, offered to the features that count its kind only.
        let any_kind = set.counting.len().saturating_sub(1);
        for (i, (t, &kind)) in touchpoints.iter().zip(kinds.iter()).enumerate() {
            // A touchpoint's attributes are kept apart from it, and read here first: asked for
            // a few touchpoints ahead, their cache misses overlap.
            if let Some(ahead) = touchpoints.get(i + ATTRIBUTES_AHEAD) {
                prefetch_lines(ahead.attributes().entries());
            }
            let counting = set
                .counting
                .get(kind as usize)
                .or_else(|| set.counting.get(any_kind));
            let mut at = None;
            for &f in counting.map_or(&[][..], |c| &c[..]) {
                let (Some(feature), Some(lane), Some((hint, filter_hints))) =
                    (set.features.get(f), lanes.get_mut(f), lane_hints.get_mut(f))
                else {
                    continue;
                };
                // The filter reads no `now`: any instant gives the same verdict.
                if !feature.admits(t, kind, from, &mut pass.touchpoint, filter_hints) {
                    continue;
                }
                let value = feature
                    .attribute
                    .as_ref()
                    .and_then(|name| t.attributes().get_hinted(name.as_str(), hint));
                let cell = match value {
                    None => Cell::Missing,
                    Some(Value::Number(n)) => Cell::Number(*n),
                    Some(other) => {
                        values.push(other.clone());
                        Cell::Other(u32::try_from(values.len() - 1).ok()?)
                    }
                };
                let at = *at.get_or_insert_with(|| t.occurred_at_micros());
                lane.push(Row { at, cell });
            }
        }
        let mut rows = Vec::with_capacity(lanes.iter().map(Vec::len).sum());
        let mut ends = Vec::with_capacity(set.len());
        for lane in lanes.iter() {
            rows.extend_from_slice(lane);
            ends.push(u32::try_from(rows.len()).ok()?);
        }
        Some(FeatureInputs {
            set: set.id,
            from,
            ends: ends.into_boxed_slice(),
            rows: rows.into_boxed_slice(),
            values: values.drain(..).collect(),
        })
    }

    /// The bytes they hold on the heap (their rows, values and feature ends), not counting
    /// what the values themselves point to (long text, lists).
    pub fn heap_bytes(&self) -> usize {
        std::mem::size_of_val(&*self.ends)
            + std::mem::size_of_val(&*self.rows)
            + std::mem::size_of_val(&*self.values)
    }

    /// Asks the processor to fetch these inputs into its caches, for a computation soon after
    /// (a store prefetches the next customers' while it decides for one): every cache line of
    /// the rows and their ends, the first of the other values.
    pub fn prefetch(&self) {
        prefetch_lines(&self.ends);
        prefetch_lines(&self.rows);
        if let Some(first) = self.values.first() {
            mem_prefetch::prefetch_read_data::<_, 3>(first);
        }
    }

    /// Whether these are inputs of `set` that hold every window at `now`.
    pub(crate) fn hold(&self, set: &FeatureSet, now: i64) -> bool {
        self.set == set.id && now.saturating_sub(set.longest) >= self.from
    }

    /// Whether they were read for `catalog`'s features and hold every window at `now`: a
    /// decision at `now` under `catalog` computes its features from them.
    pub fn serve(&self, catalog: &CompiledCatalog, now: Timestamp) -> bool {
        self.hold(&catalog.features, now.timestamp_micros())
    }

    /// Every feature of `set` at `now`, into `out` in feature-slot order: the values
    /// [`compute`](super::compute) gives over the touchpoints these were read from. The
    /// inputs must [`hold`](Self::hold) `set` at `now`.
    pub(crate) fn compute<'a>(
        &'a self,
        set: &FeatureSet,
        now: i64,
        scratch: &mut FeatureScratch<'a>,
        out: &mut Vec<Option<Scalar<'a>>>,
    ) {
        let distinct = &mut scratch.pass.distinct;
        out.clear();
        let mut start = 0;
        for (feature, &end) in set.iter().zip(self.ends.iter()) {
            let rows = self.rows.get(start..end as usize).unwrap_or_default();
            start = end as usize;
            let lo = first_at(rows, now.saturating_sub(feature.window));
            let hi = first_at(rows, now);
            let window = rows.get(lo..hi.max(lo)).unwrap_or_default();
            out.push(self.aggregate(
                feature.aggregate,
                feature.attribute.is_some(),
                window,
                distinct,
            ));
        }
    }

    /// The aggregate of `rows`, a feature's window (with an attribute or not).
    #[inline]
    fn aggregate<'a>(
        &'a self,
        aggregate: Aggregation,
        has_attribute: bool,
        rows: &[Row],
        distinct: &mut Vec<(u64, Scalar<'a>)>,
    ) -> Option<Scalar<'a>> {
        let mut acc = Acc::new(aggregate);
        if !has_attribute {
            // A count of the rows, as `CompiledFeature::over` makes without an attribute.
            acc.count = rows.len() as u64;
            return acc.finish(0);
        }
        let values = &self.values;
        let cells = rows.iter().map(|r| r.cell);
        match aggregate {
            Aggregation::Last => cells.rev().find_map(|c| c.scalar(values)),
            Aggregation::DistinctCount => {
                distinct.clear();
                for value in cells.filter_map(|c| c.scalar(values)) {
                    add_distinct(value, distinct);
                }
                acc.finish(distinct.len())
            }
            Aggregation::Count => {
                acc.count = cells.filter(|c| !matches!(c, Cell::Missing)).count() as u64;
                acc.finish(0)
            }
            Aggregation::Sum | Aggregation::Avg => {
                // Only what the aggregate reads, added in the same order: the same value.
                for cell in cells {
                    if let Cell::Number(n) = cell {
                        acc.count += 1;
                        acc.sum += n;
                    }
                }
                acc.finish(0)
            }
            Aggregation::Min | Aggregation::Max => {
                for cell in cells {
                    if let Cell::Number(n) = cell {
                        acc.add_number(n);
                    }
                }
                acc.finish(0)
            }
        }
    }
}

/// The position of the first of `rows` (oldest first) at or after `at` (microseconds): most
/// windows hold every row of a feature, and no row is at or after `now`, so the ends answer
/// most searches.
#[inline]
fn first_at(rows: &[Row], at: i64) -> usize {
    partition_point_ends(rows, |r| r.at < at)
}

#[cfg(test)]
mod tests {
    use crate::arbitration::{CompiledCatalog, FeatureBuffers};
    use crate::model::{Catalog, Channel, CustomerId, Kind, Timestamp, Touchpoint};
    use chrono::{TimeDelta, TimeZone, Utc};

    /// Every aggregate, kinds, channels, a filter, a flag filter, windows from a minute to 30
    /// days, and a feature over every kind.
    const FEATURES: &str = r#"
schema:
  touchpoint: { product: string, dwell_seconds: number, data_gb: number, roaming: bool, seen: timestamp }
features:
  - { id: views_10m, aggregate: count, kinds: [product_view], window: 10m }
  - { id: long_views_1d, aggregate: count, kinds: [product_view], window: 1d, filter: "touchpoint.dwell_seconds >= 60" }
  - { id: roaming_30d, aggregate: count, kinds: [usage], window: 30d, filter: touchpoint.roaming }
  - { id: data_gb_30d, aggregate: sum, attribute: data_gb, kinds: [usage], window: 30d }
  - { id: avg_dwell, aggregate: avg, attribute: dwell_seconds, window: 1d }
  - { id: min_dwell, aggregate: min, attribute: dwell_seconds, window: 1d }
  - { id: max_dwell, aggregate: max, attribute: dwell_seconds, window: 1d }
  - { id: last_product, aggregate: last, attribute: product, kinds: [product_view], window: 1d }
  - { id: last_seen, aggregate: last, attribute: seen, window: 7d }
  - { id: products, aggregate: distinct_count, attribute: product, window: 1d }
  - { id: dwells, aggregate: distinct_count, attribute: dwell_seconds, window: 7d }
  - { id: with_product, aggregate: count, attribute: product, window: 7d }
  - { id: app_views, aggregate: count, channels: [app], window: 1d }
  - { id: every_kind, aggregate: count, window: 30d }
  - { id: old_avg, aggregate: avg, attribute: dwell_seconds, window: 1m }
"#;

    fn compiled(yaml: &str) -> CompiledCatalog {
        CompiledCatalog::compile(Catalog::from_yaml(yaml).unwrap(), 1).unwrap()
    }

    /// Touchpoints over 40 days before `now` and a little after, some at instants with
    /// nanoseconds, some sharing an instant, with attributes missing, mistyped or repeated.
    fn touchpoints(now: Timestamp) -> Vec<Touchpoint> {
        let mut out = Vec::new();
        for i in 0..120_i64 {
            let back = TimeDelta::minutes(i * i * 4) - TimeDelta::nanoseconds(i * 333);
            let at = now - back;
            let (kind, channel) = match i % 4 {
                0 => (Kind::USAGE, Channel::Other("network".into())),
                1 | 2 => (
                    Kind::PRODUCT_VIEW,
                    if i % 8 == 1 {
                        Channel::App
                    } else {
                        Channel::Web
                    },
                ),
                _ => (Kind::PAGE_VIEW, Channel::App),
            };
            let mut t = Touchpoint::new(format!("t{i}"), CustomerId::new("c"), channel, kind, at);
            if i % 5 != 0 {
                t = t.with_attribute("product", ["phone", "case", "tv"][(i % 3) as usize]);
            }
            if i % 7 == 0 {
                t = t.with_attribute("product", 12.0); // not a string
            }
            if i % 3 != 1 {
                t = t.with_attribute("dwell_seconds", (i % 9) as f64 * 15.0);
            }
            t = t
                .with_attribute("data_gb", i as f64 / 8.0)
                .with_attribute("roaming", i % 6 == 0)
                .with_attribute("seen", at - TimeDelta::hours(i));
            out.push(t);
        }
        // Two at the very same instant, and one after `now`.
        let view = |id: &str, at: Timestamp| {
            Touchpoint::new(
                id,
                CustomerId::new("c"),
                Channel::App,
                Kind::PRODUCT_VIEW,
                at,
            )
        };
        let three_ago = now - TimeDelta::minutes(3);
        out.push(view("same-a", three_ago).with_attribute("product", "tv"));
        out.push(view("same-b", three_ago).with_attribute("product", "radio"));
        out.push(view("later", now + TimeDelta::minutes(5)).with_attribute("dwell_seconds", 1e6));
        out.sort_by(|a, b| (a.occurred_at, &a.id).cmp(&(b.occurred_at, &b.id)));
        out
    }

    /// The instants where some window of some feature starts or ends on a touchpoint: just
    /// before, on and just after each.
    fn edges(touchpoints: &[Touchpoint], catalog: &CompiledCatalog) -> Vec<Timestamp> {
        let windows: Vec<i64> = catalog.features.iter().map(|f| f.window).collect();
        let mut out = Vec::new();
        for t in touchpoints {
            for shift in std::iter::once(0).chain(windows.iter().copied()) {
                for nudge in [-1, 0, 1] {
                    out.push(t.occurred_at + TimeDelta::microseconds(shift + nudge));
                }
            }
        }
        out
    }

    #[test]
    fn inputs_give_what_the_touchpoints_give_at_every_instant_they_serve() {
        let catalog = compiled(FEATURES);
        let now = Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap();
        let all = touchpoints(now);
        let from = now - TimeDelta::days(40);
        let since: Vec<Touchpoint> = all
            .iter()
            .filter(|t| t.occurred_at >= from)
            .cloned()
            .collect();
        let (mut buffers, mut got) = (FeatureBuffers::default(), Vec::new());
        let inputs = catalog.feature_inputs(&since, from, &mut buffers).unwrap();
        let lookback = catalog.touchpoint_lookback().as_delta();
        let mut served = 0;
        for at in edges(&all, &catalog) {
            let expected = catalog.compute_features(&all, at);
            let serves = catalog.compute_features_from(&inputs, at, &mut buffers, &mut got);
            assert_eq!(serves, at - lookback >= from, "at {at}");
            if serves {
                assert_eq!(got, expected, "at {at}");
                served += 1;
            }
        }
        assert!(served > 1_000, "{served}");
    }

    /// Inputs serve every compilation of the same features over the same touchpoint schema
    /// (the catalogue's other parts may change), and no other.
    #[test]
    fn inputs_serve_only_catalogues_with_the_same_features() {
        let catalog = compiled(FEATURES);
        let now = Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap();
        let from = now - TimeDelta::days(30);
        let mut buffers = FeatureBuffers::default();
        let inputs = catalog
            .feature_inputs(&touchpoints(now), from, &mut buffers)
            .unwrap();
        let mut expected = Vec::new();
        assert!(catalog.compute_features_from(&inputs, now, &mut buffers, &mut expected));
        let offer = "offers:\n  - { id: o, name: O, category: c, channels: [sms], value: 1 }\n";
        for same in [FEATURES.to_owned(), format!("{FEATURES}{offer}")] {
            let mut out = Vec::new();
            assert!(compiled(&same).compute_features_from(&inputs, now, &mut buffers, &mut out));
            assert_eq!(out, expected);
        }
        let window = FEATURES.replace("window: 10m", "window: 11m");
        let schema = FEATURES.replace("seen: timestamp", "seen: string");
        for other in [window, schema] {
            let mut out = vec![None];
            assert!(!compiled(&other).compute_features_from(&inputs, now, &mut buffers, &mut out));
            assert_eq!(out, [None], "left as it was");
        }
    }

    #[test]
    fn a_filter_that_reads_now_has_no_inputs() {
        let catalog = compiled(
            r#"
schema:
  touchpoint: { seen: timestamp }
features:
  - { id: plain, aggregate: count, window: 1d }
  - { id: recent, aggregate: count, window: 1d, filter: 'now - touchpoint.seen < duration("1h")' }
"#,
        );
        let now = Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap();
        let mut buffers = FeatureBuffers::default();
        assert!(
            catalog
                .feature_inputs(&touchpoints(now), now, &mut buffers)
                .is_none()
        );
        let without = compiled(
            r#"
schema:
  touchpoint: { seen: timestamp }
features:
  - { id: seen_late, aggregate: count, window: 1d, filter: 'touchpoint.seen > timestamp("2026-11-22T00:00:00Z")' }
"#,
        );
        assert!(
            without
                .feature_inputs(&touchpoints(now), now, &mut buffers)
                .is_some()
        );
    }

    /// One generated touchpoint: minutes and nanoseconds before `now` (negative: after), kind,
    /// channel, and which attributes it has.
    type Spec = (i64, i64, u8, u8, u8, u8);

    fn generated(now: Timestamp, specs: &[Spec]) -> Vec<Touchpoint> {
        let mut out: Vec<Touchpoint> = specs
            .iter()
            .enumerate()
            .map(|(i, &(minutes, nanos, kind, channel, product, number))| {
                let kind = [
                    Kind::USAGE,
                    Kind::PRODUCT_VIEW,
                    Kind::PAGE_VIEW,
                    Kind::COMPLAINT,
                ][usize::from(kind % 4)]
                .clone();
                let channel =
                    [Channel::App, Channel::Web, Channel::Sms][usize::from(channel % 3)].clone();
                let at = now - TimeDelta::minutes(minutes) + TimeDelta::nanoseconds(nanos);
                let mut t =
                    Touchpoint::new(format!("t{i}"), CustomerId::new("c"), channel, kind, at);
                t = match product % 4 {
                    0 => t,
                    1 => t.with_attribute("product", "phone"),
                    2 => t.with_attribute("product", ["tv", "case"][usize::from(number % 2)]),
                    _ => t.with_attribute("product", f64::from(number % 3)),
                };
                if number % 5 != 0 {
                    t = t
                        .with_attribute("dwell_seconds", f64::from(number % 7) * 30.0)
                        .with_attribute("data_gb", f64::from(number) / 3.0);
                }
                match number % 3 {
                    0 => t.with_attribute("roaming", true),
                    1 => t.with_attribute("roaming", "no"),
                    _ => t.with_attribute("seen", at - TimeDelta::minutes(i64::from(number))),
                }
            })
            .collect();
        out.sort_by(|a, b| (a.occurred_at, &a.id).cmp(&(b.occurred_at, &b.id)));
        out
    }

    proptest::proptest! {
        /// Any touchpoints, any instant the inputs serve: the values of the touchpoints.
        #[test]
        fn inputs_agree_with_the_touchpoints_on_any_history(
            specs in proptest::collection::vec(
                (-30i64..60_000, 0i64..1_000_000, 0u8..4, 0u8..3, 0u8..4, 0u8..30),
                0..60,
            ),
            instants in proptest::collection::vec((0i64..13 * 86_400_000, 0i64..1_000), 1..6),
        ) {
            let catalog = compiled(FEATURES);
            let now = Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap();
            let all = generated(now, &specs);
            let from = now - TimeDelta::days(42);
            let since: Vec<Touchpoint> =
                all.iter().filter(|t| t.occurred_at >= from).cloned().collect();
            let mut buffers = FeatureBuffers::default();
            let inputs = catalog.feature_inputs(&since, from, &mut buffers).unwrap();
            let mut got = Vec::new();
            for (millis, micros) in instants {
                // From the first instant served to a day after `now`.
                let at = from
                    + TimeDelta::days(30)
                    + TimeDelta::milliseconds(millis)
                    + TimeDelta::microseconds(micros);
                proptest::prop_assert!(
                    catalog.compute_features_from(&inputs, at, &mut buffers, &mut got)
                );
                proptest::prop_assert_eq!(&got, &catalog.compute_features(&all, at), "at {}", at);
            }
        }
    }
}
