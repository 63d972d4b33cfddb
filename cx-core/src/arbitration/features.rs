//! Features: named aggregates over a customer's touchpoints in a window, computed per decision.

use crate::error::Result;
use crate::model::{
    Aggregation, Attributes, Channel, Feature, FeatureId, Kind, Name, Touchpoint, Value, ValueType,
};
use crate::rules::{CompiledRule, Env, Namespace, Scalar, Vocabulary, compile_rule};

/// What features read of a touchpoint. Implemented for [`Touchpoint`], and by a store for its
/// own form of a stored touchpoint, so that it can compute a customer's features where the
/// touchpoints are kept instead of copying each one out first (see
/// [`CompiledCatalog::compute_features`](super::CompiledCatalog::compute_features)).
pub trait TouchpointFields {
    /// When it occurred, in microseconds since the Unix epoch.
    fn occurred_at_micros(&self) -> i64;
    /// Its kind.
    fn kind(&self) -> &Kind;
    /// Its channel.
    fn channel(&self) -> &Channel;
    /// Its attributes.
    fn attributes(&self) -> &Attributes;
}

impl TouchpointFields for Touchpoint {
    #[inline]
    fn occurred_at_micros(&self) -> i64 {
        self.occurred_at.timestamp_micros()
    }

    #[inline]
    fn kind(&self) -> &Kind {
        &self.kind
    }

    #[inline]
    fn channel(&self) -> &Channel {
        &self.channel
    }

    #[inline]
    fn attributes(&self) -> &Attributes {
        &self.attributes
    }
}

/// A feature, compiled.
#[derive(Debug, Clone)]
pub struct CompiledFeature {
    /// The feature's id.
    pub id: FeatureId,
    aggregate: Aggregation,
    attribute: Option<Name>,
    kinds: Box<[Kind]>,
    /// The keys of `kinds`, in the same order.
    kind_keys: Box<[KindKey]>,
    channels: Box<[Channel]>,
    /// The window, in microseconds.
    pub(crate) window: i64,
    filter: Option<CompiledRule>,
    /// The `touchpoint.*` slots the filter reads, and where each value comes from.
    filter_reads: Box<[(usize, Field)]>,
}

/// Where a `touchpoint.*` value comes from.
#[derive(Debug, Clone)]
enum Field {
    Kind,
    Channel,
    OccurredAt,
    Attribute(Name, ValueType),
}

impl Field {
    fn of(name: &Name, ty: ValueType) -> Field {
        match name.as_str() {
            "kind" => Field::Kind,
            "channel" => Field::Channel,
            "occurred_at" => Field::OccurredAt,
            _ => Field::Attribute(name.clone(), ty),
        }
    }

    /// The value of the field in `t`; `hint` is where an attribute was last found.
    #[inline]
    fn read<'a, T: TouchpointFields>(&self, t: &'a T, hint: &mut usize) -> Option<Scalar<'a>> {
        match self {
            Field::Kind => Some(Scalar::Str(t.kind().as_str())),
            Field::Channel => Some(Scalar::Str(t.channel().as_str())),
            Field::OccurredAt => Some(Scalar::Time(t.occurred_at_micros())),
            Field::Attribute(name, ty) => t
                .attributes()
                .get_hinted(name.as_str(), hint)
                .filter(|v| ty.admits(v))
                .map(Scalar::of),
        }
    }
}

impl CompiledFeature {
    pub(crate) fn compile(
        feature: &Feature,
        vocabulary: &std::sync::Arc<Vocabulary>,
    ) -> Result<Self> {
        let filter = feature
            .filter
            .as_ref()
            .map(|rule| {
                let item = format!("feature {:?} filter", feature.id.as_str());
                compile_rule(rule.as_str(), vocabulary, &[Namespace::Touchpoint], &item)
            })
            .transpose()?;
        let filter_reads = filter
            .iter()
            .flat_map(CompiledRule::slots)
            .filter(|slot| slot.namespace == Namespace::Touchpoint)
            .filter_map(|slot| {
                let (name, ty) = vocabulary.touchpoint.iter().nth(usize::from(slot.index))?;
                Some((usize::from(slot.index), Field::of(name, ty)))
            })
            .collect();
        Ok(CompiledFeature {
            id: feature.id.clone(),
            aggregate: feature.aggregate,
            attribute: feature.attribute.clone(),
            kinds: feature.kinds.clone().into_boxed_slice(),
            kind_keys: feature
                .kinds
                .iter()
                .map(|k| KindKey::of(k.as_str()))
                .collect(),
            channels: feature.channels.clone().into_boxed_slice(),
            window: feature
                .window
                .as_delta()
                .num_microseconds()
                .unwrap_or(i64::MAX),
            filter,
            filter_reads,
        })
    }

    #[inline]
    fn admits_channel(&self, t: &impl TouchpointFields) -> bool {
        self.channels.is_empty() || self.channels.contains(t.channel())
    }
}

/// A kind's length and its first and last (at most) 8 bytes, compared as integers: equal keys
/// mean equal kinds for kinds of at most 16 bytes; longer kinds with equal keys are compared in
/// full. Matching a touchpoint's kind this way costs no string comparison in the common case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct KindKey {
    len: usize,
    head: u64,
    tail: u64,
}

impl KindKey {
    #[inline]
    fn of(kind: &str) -> Self {
        let bytes = kind.as_bytes();
        let word = |chunk: Option<&[u8; 8]>| match chunk {
            Some(chunk) => u64::from_le_bytes(*chunk),
            None => bytes.iter().fold(0, |w, &b| w << 8 | u64::from(b)),
        };
        KindKey {
            len: bytes.len(),
            head: word(bytes.first_chunk()),
            tail: word(bytes.last_chunk()),
        }
    }

    /// Whether `self` (the key of `kind`) and `other` (the key of `other_kind`) name the same
    /// kind.
    #[inline]
    fn same(self, kind: &str, other: KindKey, other_kind: &str) -> bool {
        self == other && (self.len <= 16 || kind == other_kind)
    }
}

/// Reusable buffers for computing features, so a decision allocates little once warm.
#[derive(Debug, Default)]
pub(crate) struct FeatureScratch<'a> {
    touchpoint: Vec<Option<Scalar<'a>>>,
    /// (feature, quick key, value) of the values seen by distinct counts.
    distinct: Vec<Seen<'a>>,
    /// Per feature, where its attribute was last found in a touchpoint's attributes, then
    /// the same for each value a filter reads (from `filter_hints[i]` for feature `i`).
    hints: Vec<usize>,
    filter_hints: Vec<usize>,
    accs: Vec<Acc<'a>>,
    /// (index of the first touchpoint in a window, the features of that window as bits),
    /// by index.
    opens: Vec<(usize, u64)>,
    /// Per interned kind, the features (as bits) that count it.
    by_kind: Vec<u64>,
}

/// Computes every feature at `now` (microseconds) over `touchpoints` (oldest first), into `out`
/// in feature-slot order. Empty windows give 0 for count, sum and distinct count, and no value
/// (missing) for avg, min, max and last.
///
/// One pass over the longest window, 64 features at a time. Touchpoints are sorted by time, so
/// each window is a run of them ending at `now`, found by binary search: a touchpoint's
/// instant is not decoded in the pass, only whether it is past the start of each window (as
/// bits, the features whose window holds it). Its kind (interned) names, as bits, the features
/// that count it, so a touchpoint visits only the features both name.
pub(crate) fn compute<'a, T: TouchpointFields>(
    features: &[CompiledFeature],
    vocabulary: &Vocabulary,
    touchpoints: &'a [T],
    now: i64,
    scratch: &mut FeatureScratch<'a>,
    out: &mut Vec<Option<Scalar<'a>>>,
) {
    out.clear();
    scratch.touchpoint.clear();
    scratch.touchpoint.resize(vocabulary.touchpoint.len(), None);
    // Touchpoints at or after `now` never count.
    let end = touchpoints.partition_point(|t| t.occurred_at_micros() < now);
    let touchpoints = touchpoints.get(..end).unwrap_or(&[]);
    for chunk in features.chunks(64) {
        compute_chunk(chunk, touchpoints, now, scratch, out);
    }
}

/// [`compute`] for at most 64 features, over the touchpoints before `now`.
fn compute_chunk<'a, T: TouchpointFields>(
    features: &[CompiledFeature],
    touchpoints: &'a [T],
    now: i64,
    scratch: &mut FeatureScratch<'a>,
    out: &mut Vec<Option<Scalar<'a>>>,
) {
    let bit = |i: usize| {
        1u64.checked_shl(u32::try_from(i).unwrap_or(u32::MAX))
            .unwrap_or(0)
    };
    // The kinds the features count, interned; features counting any kind are in every entry
    // and in `any_kind`. More than 64 kinds: every touchpoint visits every feature.
    let mut kinds: Vec<(KindKey, &str)> = Vec::new();
    for feature in features {
        for (kind, &key) in feature.kinds.iter().zip(feature.kind_keys.iter()) {
            let kind = kind.as_str();
            if !kinds.iter().any(|&(k, s)| key.same(kind, k, s)) {
                kinds.push((key, kind));
            }
        }
    }
    let all = features.iter().enumerate().fold(0, |m, (i, _)| m | bit(i));
    let interned = kinds.len() <= 64;
    let mut any_kind = 0u64;
    scratch.by_kind.clear();
    scratch.by_kind.resize(kinds.len(), 0);
    for (i, feature) in features.iter().enumerate() {
        if feature.kinds.is_empty() {
            any_kind |= bit(i);
        }
        for (kind, &key) in feature.kinds.iter().zip(feature.kind_keys.iter()) {
            let kind = kind.as_str();
            if let Some(p) = kinds.iter().position(|&(k, s)| key.same(kind, k, s))
                && let Some(m) = scratch.by_kind.get_mut(p)
            {
                *m |= bit(i);
            }
        }
    }
    for m in &mut scratch.by_kind {
        *m |= any_kind;
    }

    scratch.accs.clear();
    scratch
        .accs
        .extend(features.iter().map(|f| Acc::new(f.aggregate)));
    scratch.distinct.clear();
    scratch.filter_hints.clear();
    let mut reads = features.len();
    for feature in features {
        scratch.filter_hints.push(reads);
        reads += feature.filter_reads.len();
    }
    scratch.hints.clear();
    scratch.hints.resize(reads, 0);
    // Where each window opens: the first touchpoint at or after its start. Windows of the same
    // length share one search.
    scratch.opens.clear();
    for (i, feature) in features.iter().enumerate() {
        let start = now.saturating_sub(feature.window);
        match features
            .iter()
            .take(i)
            .position(|f| f.window == feature.window)
            .and_then(|j| scratch.opens.iter_mut().find(|(_, m)| m & bit(j) != 0))
        {
            Some((_, mask)) => *mask |= bit(i),
            None => {
                let open = touchpoints.partition_point(|t| t.occurred_at_micros() < start);
                scratch.opens.push((open, bit(i)));
            }
        }
    }
    scratch.opens.sort_unstable_by_key(|&(open, _)| open);
    let first = scratch.opens.first().map_or(touchpoints.len(), |&(o, _)| o);
    // The features whose window holds the current touchpoint, and the next window to open.
    let mut open = 0u64;
    let mut next = 0;
    for (n, t) in touchpoints.iter().enumerate().skip(first) {
        while let Some(&(at, mask)) = scratch.opens.get(next)
            && at <= n
        {
            open |= mask;
            next += 1;
        }
        let by_kind = if interned {
            let kind = t.kind().as_str();
            let key = KindKey::of(kind);
            kinds
                .iter()
                .position(|&(k, s)| key.same(kind, k, s))
                .and_then(|p| scratch.by_kind.get(p).copied())
                .unwrap_or(any_kind)
        } else {
            all
        };
        let mut visit = by_kind & open;
        while visit != 0 {
            let i = visit.trailing_zeros() as usize;
            visit &= visit - 1;
            let (Some(feature), Some(acc)) = (features.get(i), scratch.accs.get_mut(i)) else {
                continue;
            };
            if (!interned && !feature.kinds.is_empty() && !feature.kinds.contains(t.kind()))
                || !feature.admits_channel(t)
            {
                continue;
            }
            if let Some(filter) = &feature.filter {
                let from = scratch.filter_hints.get(i).copied().unwrap_or(usize::MAX);
                let hints = scratch.hints.get_mut(from..).unwrap_or(&mut []);
                for ((slot, field), hint) in feature.filter_reads.iter().zip(hints) {
                    if let Some(value) = scratch.touchpoint.get_mut(*slot) {
                        *value = field.read(t, hint);
                    }
                }
                let env = Env {
                    touchpoint: &scratch.touchpoint,
                    ..Env::empty_micros(now)
                };
                if !filter.eval(&env).holds() {
                    continue;
                }
            }
            match &feature.attribute {
                None => acc.count += 1,
                Some(name) => {
                    let mut unhinted = 0;
                    let hint = scratch.hints.get_mut(i).unwrap_or(&mut unhinted);
                    if let Some(value) = t.attributes().get_hinted(name.as_str(), hint) {
                        acc.add(i, Scalar::of(value), &mut scratch.distinct);
                    }
                }
            }
        }
    }
    let distinct = &scratch.distinct;
    out.extend(scratch.accs.drain(..).enumerate().map(|(i, acc)| {
        let n = distinct.iter().filter(|seen| seen.feature == i).count();
        acc.finish(n)
    }));
}

/// The `touchpoint.*` values of `t`, in slot order (for rules over one touchpoint: journey
/// stage criteria, triggers).
pub(crate) fn touchpoint_slots<'a>(
    vocabulary: &Vocabulary,
    t: &'a Touchpoint,
    out: &mut Vec<Option<Scalar<'a>>>,
) {
    out.clear();
    out.extend(vocabulary.touchpoint.iter().map(|(name, ty)| {
        let value = match name.as_str() {
            "kind" => Scalar::Str(t.kind.as_str()),
            "channel" => Scalar::Str(t.channel.as_str()),
            "occurred_at" => Scalar::Time(t.occurred_at.timestamp_micros()),
            other => {
                return t
                    .attributes
                    .get(other)
                    .filter(|v| ty.admits(v))
                    .map(Scalar::of);
            }
        };
        Some(value)
    }));
}

/// A value a distinct count has seen.
#[derive(Debug, Clone, Copy)]
struct Seen<'a> {
    feature: usize,
    /// Equal values have equal keys: most unequal values are told apart without comparing
    /// them.
    quick: u64,
    value: Scalar<'a>,
}

/// A key of `value` such that equal values have equal keys: for text, its length and first
/// (at most) 8 bytes; for a number, its bits (0 and -0 are equal: both give 0).
#[inline]
fn quick_key(value: &Scalar<'_>) -> u64 {
    match *value {
        Scalar::Str(s) => {
            let head = s
                .as_bytes()
                .iter()
                .take(8)
                .fold(0u64, |w, &b| w << 8 | u64::from(b));
            head ^ (s.len() as u64).rotate_right(8)
        }
        Scalar::Num(n) => {
            if n == 0.0 {
                0
            } else {
                n.to_bits()
            }
        }
        Scalar::Bool(b) => u64::from(b),
        Scalar::Time(t) => t as u64,
        Scalar::List(items) => items.len() as u64,
    }
}

#[derive(Debug)]
struct Acc<'a> {
    aggregate: Aggregation,
    count: u64,
    sum: f64,
    min: f64,
    max: f64,
    last: Option<Scalar<'a>>,
}

impl<'a> Acc<'a> {
    fn new(aggregate: Aggregation) -> Self {
        Acc {
            aggregate,
            count: 0,
            sum: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            last: None,
        }
    }

    fn add(&mut self, feature: usize, value: Scalar<'a>, distinct: &mut Vec<Seen<'a>>) {
        match self.aggregate {
            Aggregation::Last => self.last = Some(value),
            Aggregation::DistinctCount => {
                let quick = quick_key(&value);
                if !distinct
                    .iter()
                    .any(|s| s.quick == quick && s.feature == feature && s.value == value)
                {
                    distinct.push(Seen {
                        feature,
                        quick,
                        value,
                    });
                }
            }
            Aggregation::Count => self.count += 1,
            Aggregation::Sum | Aggregation::Avg | Aggregation::Min | Aggregation::Max => {
                if let Scalar::Num(n) = value {
                    self.count += 1;
                    self.sum += n;
                    self.min = self.min.min(n);
                    self.max = self.max.max(n);
                }
            }
        }
    }

    fn finish(self, distinct: usize) -> Option<Scalar<'a>> {
        let n = self.count;
        match self.aggregate {
            Aggregation::Count => Some(Scalar::Num(n as f64)),
            Aggregation::Sum => Some(Scalar::Num(self.sum)),
            Aggregation::DistinctCount => Some(Scalar::Num(distinct as f64)),
            Aggregation::Avg => (n > 0).then(|| Scalar::Num(self.sum / n as f64)),
            Aggregation::Min => (n > 0).then_some(Scalar::Num(self.min)),
            Aggregation::Max => (n > 0).then_some(Scalar::Num(self.max)),
            Aggregation::Last => self.last,
        }
    }
}

/// An owned copy of a feature value, for explanations kept after the decision.
pub(crate) fn owned(value: Option<Scalar<'_>>) -> Option<Value> {
    Some(match value? {
        Scalar::Num(n) => Value::Number(n),
        Scalar::Str(s) => Value::String(s.into()),
        Scalar::Bool(b) => Value::Bool(b),
        Scalar::Time(t) => Value::Timestamp(chrono::DateTime::from_timestamp_micros(t)?),
        Scalar::List(items) => Value::List(items.to_vec()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Catalog, CustomerId, Kind};
    use chrono::{TimeDelta, TimeZone, Utc};

    const FEATURES: &str = r#"
schema:
  touchpoint: { product: string, dwell_seconds: number, data_gb: number }
features:
  - { id: views_10m, aggregate: count, kinds: [product_view], window: 10m }
  - { id: long_views_1d, aggregate: count, kinds: [product_view], window: 1d, filter: "touchpoint.dwell_seconds >= 60" }
  - { id: data_gb_30d, aggregate: sum, attribute: data_gb, kinds: [usage], window: 30d }
  - { id: avg_dwell, aggregate: avg, attribute: dwell_seconds, window: 1d }
  - { id: min_dwell, aggregate: min, attribute: dwell_seconds, window: 1d }
  - { id: max_dwell, aggregate: max, attribute: dwell_seconds, window: 1d }
  - { id: last_product, aggregate: last, attribute: product, window: 1d }
  - { id: products, aggregate: distinct_count, attribute: product, window: 1d }
  - { id: app_views, aggregate: count, channels: [app], window: 1d }
  - { id: old_avg, aggregate: avg, attribute: dwell_seconds, window: 1m }
"#;

    #[test]
    fn every_aggregation_over_its_window_kinds_channels_and_filter() {
        let catalog = Catalog::from_yaml(FEATURES).unwrap();
        let compiled = crate::arbitration::CompiledCatalog::compile(catalog, 1).unwrap();
        let now = Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap();
        let view = |id: &str, mins: i64, product: &str, dwell: f64, channel: Channel| {
            Touchpoint::new(
                id,
                CustomerId::new("c"),
                channel,
                Kind::PRODUCT_VIEW,
                now - TimeDelta::minutes(mins),
            )
            .with_attribute("product", product)
            .with_attribute("dwell_seconds", dwell)
        };
        let usage = |id: &str, days: i64, gb: f64| {
            Touchpoint::new(
                id,
                CustomerId::new("c"),
                Channel::Other("network".into()),
                Kind::USAGE,
                now - TimeDelta::days(days),
            )
            .with_attribute("data_gb", gb)
        };
        let mut touchpoints = vec![
            usage("u1", 40, 100.0), // outside 30 days
            usage("u2", 20, 2.5),
            usage("u3", 1, 1.5),
            view("v1", 120, "phone", 90.0, Channel::Web),
            view("v2", 9, "case", 10.0, Channel::App),
            view("v3", 2, "phone", 61.0, Channel::App),
            view("future", -5, "tv", 1000.0, Channel::App), // after now: never counts
        ];
        touchpoints.sort_by_key(|t| t.occurred_at);
        let mut out = Vec::new();
        compute(
            &compiled.features,
            &compiled.vocabulary,
            &touchpoints,
            now.timestamp_micros(),
            &mut FeatureScratch::default(),
            &mut out,
        );
        let values: Vec<Option<Scalar<'_>>> = out;
        assert_eq!(
            values,
            vec![
                Some(Scalar::Num(2.0)),
                Some(Scalar::Num(2.0)),
                Some(Scalar::Num(4.0)),
                Some(Scalar::Num((90.0 + 10.0 + 61.0) / 3.0)),
                Some(Scalar::Num(10.0)),
                Some(Scalar::Num(90.0)),
                Some(Scalar::Str("phone")),
                Some(Scalar::Num(2.0)),
                Some(Scalar::Num(2.0)),
                None,
            ]
        );
    }
}

#[cfg(test)]
mod kind_keys {
    use super::KindKey;

    fn same(a: &str, b: &str) -> bool {
        KindKey::of(a).same(a, KindKey::of(b), b)
    }

    #[test]
    fn keys_match_exactly_the_same_kind() {
        for kind in [
            "",
            "a",
            "usage",
            "page_view",
            "product_view",
            "support_contact",
        ] {
            assert!(same(kind, kind), "{kind}");
        }
        assert!(!same("page_view", "complaint"));
        assert!(!same("usage", "usage2"));
        assert!(!same("abc", "abcd"));
        // 16 bytes: the head and tail words cover every byte.
        assert!(!same("product_view_aaa", "product_view_aab"));
        // Longer: same length, head and tail, a different middle.
        let (a, b) = ("support_x_contact", "support_y_contact");
        assert_eq!(KindKey::of(a), KindKey::of(b));
        assert!(!same(a, b));
        assert!(same(a, "support_x_contact"));
    }
}

#[cfg(test)]
mod many {
    use super::*;
    use crate::model::{Catalog, CustomerId, Kind};
    use chrono::{TimeDelta, TimeZone, Utc};

    /// 70 features (two chunks of at most 64), one of them counting 70 kinds (more than a
    /// chunk interns), against counts worked out one feature at a time.
    #[test]
    fn more_than_64_features_and_kinds_count_like_one_feature_at_a_time() {
        let all_kinds: Vec<String> = (0..70).map(|k| format!("k{k}")).collect();
        let mut yaml = String::from("features:\n");
        yaml.push_str(&format!(
            "  - {{ id: every_kind, aggregate: count, kinds: [{}], window: 30d }}\n",
            all_kinds.join(", ")
        ));
        for i in 1..70 {
            let window = if i % 3 == 0 { "1d" } else { "30d" };
            let kinds = if i % 10 == 0 {
                String::new()
            } else {
                format!(", kinds: [k{}]", i % 7)
            };
            yaml.push_str(&format!(
                "  - {{ id: f{i}, aggregate: count{kinds}, window: {window} }}\n"
            ));
        }
        let catalog = Catalog::from_yaml(&yaml).unwrap();
        let compiled = crate::arbitration::CompiledCatalog::compile(catalog, 1).unwrap();
        let now = Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap();
        let touchpoints: Vec<Touchpoint> = (0..200)
            .map(|i| {
                Touchpoint::new(
                    format!("t{i}"),
                    CustomerId::new("c"),
                    Channel::App,
                    Kind::new(format!("k{}", (i * 7) % 12)),
                    now - TimeDelta::hours(200 - i),
                )
            })
            .collect();
        let mut out = Vec::new();
        compute(
            &compiled.features,
            &compiled.vocabulary,
            &touchpoints,
            now.timestamp_micros(),
            &mut FeatureScratch::default(),
            &mut out,
        );
        let expected: Vec<Option<Scalar<'_>>> = compiled
            .features
            .iter()
            .map(|f| {
                let start = now.timestamp_micros() - f.window;
                let n = touchpoints
                    .iter()
                    .filter(|t| t.occurred_at.timestamp_micros() >= start)
                    .filter(|t| f.kinds.is_empty() || f.kinds.contains(&t.kind))
                    .count();
                Some(Scalar::Num(n as f64))
            })
            .collect();
        assert_eq!(out.len(), 70);
        assert_eq!(out, expected);
        assert_eq!(out[0], Some(Scalar::Num(200.0)));
    }
}
