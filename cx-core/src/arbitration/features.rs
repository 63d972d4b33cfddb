//! Features: named aggregates over a customer's touchpoints in a window, computed per decision.

use crate::error::Result;
use crate::model::{Aggregation, Channel, Feature, FeatureId, Kind, Name, Touchpoint, Value};
use crate::rules::{CompiledRule, Env, Namespace, Scalar, Vocabulary, compile_rule};

/// A feature, compiled.
#[derive(Debug, Clone)]
pub struct CompiledFeature {
    /// The feature's id.
    pub id: FeatureId,
    aggregate: Aggregation,
    attribute: Option<Name>,
    kinds: Box<[Kind]>,
    channels: Box<[Channel]>,
    /// The window, in microseconds.
    pub(crate) window: i64,
    filter: Option<CompiledRule>,
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
        Ok(CompiledFeature {
            id: feature.id.clone(),
            aggregate: feature.aggregate,
            attribute: feature.attribute.clone(),
            kinds: feature.kinds.clone().into_boxed_slice(),
            channels: feature.channels.clone().into_boxed_slice(),
            window: feature
                .window
                .as_delta()
                .num_microseconds()
                .unwrap_or(i64::MAX),
            filter,
        })
    }

    fn admits(&self, t: &Touchpoint) -> bool {
        (self.kinds.is_empty() || self.kinds.contains(&t.kind))
            && (self.channels.is_empty() || self.channels.contains(&t.channel))
    }
}

/// Reusable buffers for computing features, so a decision allocates nothing once warm.
#[derive(Debug, Default)]
pub(crate) struct FeatureScratch<'a> {
    touchpoint: Vec<Option<Scalar<'a>>>,
    distinct: Vec<Scalar<'a>>,
}

/// Computes every feature at `now` (microseconds) over `touchpoints` (oldest first), into `out`
/// in feature-slot order. Empty windows give 0 for count, sum and distinct count, and no value
/// (missing) for avg, min, max and last.
pub(crate) fn compute<'a>(
    features: &[CompiledFeature],
    vocabulary: &Vocabulary,
    touchpoints: &'a [Touchpoint],
    now: i64,
    scratch: &mut FeatureScratch<'a>,
    out: &mut Vec<Option<Scalar<'a>>>,
) {
    out.clear();
    for feature in features {
        let start = now.saturating_sub(feature.window);
        // Touchpoints are sorted by time: skip to the window's start.
        let first = touchpoints.partition_point(|t| t.occurred_at.timestamp_micros() < start);
        let mut acc = Acc::new(feature.aggregate);
        scratch.distinct.clear();
        for t in touchpoints.get(first..).unwrap_or(&[]) {
            if t.occurred_at.timestamp_micros() >= now {
                break;
            }
            if !feature.admits(t) {
                continue;
            }
            if let Some(filter) = &feature.filter {
                touchpoint_slots(vocabulary, t, &mut scratch.touchpoint);
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
                    if let Some(value) = t.attributes.get(name.as_str()) {
                        acc.add(Scalar::of(value), &mut scratch.distinct);
                    }
                }
            }
        }
        out.push(acc.finish(scratch.distinct.len()));
    }
}

/// The `touchpoint.*` values of `t`, in slot order.
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

    fn add(&mut self, value: Scalar<'a>, distinct: &mut Vec<Scalar<'a>>) {
        match self.aggregate {
            Aggregation::Last => self.last = Some(value),
            Aggregation::DistinctCount => {
                if !distinct.contains(&value) {
                    distinct.push(value);
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
