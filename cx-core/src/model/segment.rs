//! Segments (named rules over customers) and features (named aggregates over touchpoints).

use super::channel::Channel;
use super::check::{self, Checked, FieldError};
use super::ids::{FeatureId, Kind, Name, SegmentId};
use super::rule::RuleText;
use super::time::Span;
use serde::{Deserialize, Serialize};

/// A named rule over a customer's attributes and features; membership is evaluated on demand.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Segment {
    /// Id (an identifier: rules can refer to `segments.<id>`).
    pub id: SegmentId,
    /// Display name.
    pub name: String,
    /// Who is in it (CEL).
    pub rule: RuleText,
    /// What it is for.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
}

impl Segment {
    pub(crate) fn check(&self) -> Checked {
        check::identifier("id", self.id.as_str())?;
        check::text("name", &self.name)?;
        self.rule.check("rule")
    }
}

/// How a feature aggregates the touchpoints in its window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Aggregation {
    /// Number of touchpoints.
    Count,
    /// Sum of the attribute.
    Sum,
    /// Mean of the attribute.
    Avg,
    /// Smallest value of the attribute.
    Min,
    /// Largest value of the attribute.
    Max,
    /// The attribute's value on the latest touchpoint.
    Last,
    /// Number of distinct values of the attribute.
    DistinctCount,
}

/// A named value derived from a customer's touchpoints in a window, usable in rules as
/// `features.<id>` (`product_page_views_10m`, `data_used_gb_cycle`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Feature {
    /// Id (an identifier).
    pub id: FeatureId,
    /// How to aggregate.
    pub aggregate: Aggregation,
    /// The touchpoint attribute aggregated (every aggregation but `count` needs one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attribute: Option<Name>,
    /// Touchpoint kinds that count (empty: all).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kinds: Vec<Kind>,
    /// Channels that count (empty: all).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub channels: Vec<Channel>,
    /// The window, ending at the decision instant.
    pub window: Span,
    /// A further filter over each touchpoint (CEL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<RuleText>,
}

impl Feature {
    pub(crate) fn check(&self) -> Checked {
        check::identifier("id", self.id.as_str())?;
        match (&self.attribute, self.aggregate) {
            (None, Aggregation::Count) => {}
            (None, other) => {
                return Err(FieldError::new(
                    "attribute",
                    format!(
                        "is missing: `{}` aggregates an attribute",
                        serde_name(other)
                    ),
                ));
            }
            (Some(name), _) => check::identifier("attribute", name.as_str())?,
        }
        for (i, kind) in self.kinds.iter().enumerate() {
            check::label(&format!("kinds[{i}]"), kind.as_str())?;
        }
        for (i, channel) in self.channels.iter().enumerate() {
            channel.check(&format!("channels[{i}]"))?;
        }
        if self.window.is_zero() {
            return Err(FieldError::new("window", "must be longer than zero"));
        }
        if let Some(filter) = &self.filter {
            filter.check("filter")?;
        }
        Ok(())
    }
}

fn serde_name(aggregation: Aggregation) -> &'static str {
    match aggregation {
        Aggregation::Count => "count",
        Aggregation::Sum => "sum",
        Aggregation::Avg => "avg",
        Aggregation::Min => "min",
        Aggregation::Max => "max",
        Aggregation::Last => "last",
        Aggregation::DistinctCount => "distinct_count",
    }
}
