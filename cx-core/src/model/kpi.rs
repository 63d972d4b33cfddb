//! KPIs: what is measured, who answers for it, and the target it is held to.

use super::channel::Channel;
use super::check::{self, Checked, FieldError};
use super::ids::{JourneyId, Kind, KpiId, Name, OwnerId, SegmentId, StageId};
use super::time::Span;
use super::touchpoint::Scale;
use serde::{Deserialize, Serialize};

/// A KPI definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Kpi {
    /// Id.
    pub id: KpiId,
    /// Display name.
    pub name: String,
    /// What it means, for the people who read the scorecard.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Who answers for it. Required: a KPI without an owner is rejected.
    #[serde(default)]
    pub owner: Option<OwnerId>,
    /// The journey it measures, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub journey: Option<JourneyId>,
    /// The stage of that journey it measures, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<StageId>,
    /// What is computed.
    pub measure: Measure,
    /// The target, if there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<Target>,
    /// How far short of the target still counts as "at risk" rather than "off track".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warning_band: Option<f64>,
    /// The window the KPI is evaluated over (ending at the evaluation instant).
    pub window: Span,
    /// Only customers in this segment count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segment: Option<SegmentId>,
    /// Below this many observations the status is "insufficient data".
    #[serde(default = "default_min_sample")]
    pub min_sample: u64,
}

fn default_min_sample() -> u64 {
    30
}

/// Which touchpoints a measure counts: any of `kinds` and `channels` (empty: all).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TouchpointFilter {
    /// Kinds that count.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kinds: Vec<Kind>,
    /// Channels that count.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub channels: Vec<Channel>,
}

impl TouchpointFilter {
    fn check(&self) -> Checked {
        for (i, kind) in self.kinds.iter().enumerate() {
            check::label(&format!("kinds[{i}]"), kind.as_str())?;
        }
        for (i, channel) in self.channels.iter().enumerate() {
            channel.check(&format!("channels[{i}]"))?;
        }
        Ok(())
    }
}

/// A statistic of a duration distribution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DurationStat {
    /// The median.
    Median,
    /// The 90th percentile.
    P90,
    /// The mean.
    Mean,
}

/// How a customer-effort score is summarised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CesMode {
    /// The mean score.
    #[default]
    Mean,
    /// The share of answers in the top box.
    TopBox,
}

/// What a KPI computes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Measure {
    /// Number of matching touchpoints.
    Count {
        /// Which touchpoints.
        #[serde(default)]
        filter: TouchpointFilter,
    },
    /// Number of distinct customers with a matching touchpoint.
    DistinctCustomers {
        /// Which touchpoints.
        #[serde(default)]
        filter: TouchpointFilter,
    },
    /// Sum of a numeric touchpoint attribute.
    Sum {
        /// The attribute.
        attribute: Name,
        /// Which touchpoints.
        #[serde(default)]
        filter: TouchpointFilter,
    },
    /// Mean of a numeric touchpoint attribute.
    Avg {
        /// The attribute.
        attribute: Name,
        /// Which touchpoints.
        #[serde(default)]
        filter: TouchpointFilter,
    },
    /// A percentile (0 to 100) of a numeric touchpoint attribute.
    Percentile {
        /// The attribute.
        attribute: Name,
        /// The percentile, 0 to 100.
        p: f64,
        /// Which touchpoints.
        #[serde(default)]
        filter: TouchpointFilter,
    },
    /// One measure divided by another.
    Ratio {
        /// Numerator.
        numerator: Box<Measure>,
        /// Denominator.
        denominator: Box<Measure>,
    },
    /// Net Promoter Score on a 0-10 question: % promoters (9-10) minus % detractors (0-6).
    Nps {
        /// The survey question.
        question: Name,
    },
    /// Customer satisfaction: the share of answers in the top `top_box` points of the scale.
    Csat {
        /// The survey question.
        question: Name,
        /// The scale (default 1-5).
        #[serde(default = "csat_scale")]
        scale: Scale,
        /// How many top points count as satisfied (default 2: 4 and 5 on 1-5).
        #[serde(default = "two")]
        top_box: u32,
    },
    /// Customer effort score.
    Ces {
        /// The survey question.
        question: Name,
        /// The scale (default 1-7).
        #[serde(default = "ces_scale")]
        scale: Scale,
        /// Mean, or the share in the top box.
        #[serde(default)]
        mode: CesMode,
        /// How many top points make the top box (with `mode: top_box`).
        #[serde(default = "two")]
        top_box: u32,
    },
    /// Share of customers entering stage `from` who go on to reach stage `to`.
    StageConversion {
        /// From this stage.
        from: StageId,
        /// To this stage.
        to: StageId,
    },
    /// Time customers spend in the KPI's stage.
    TimeInStage {
        /// Which statistic.
        #[serde(default = "median")]
        statistic: DurationStat,
    },
    /// Share of follow-up cases closed within their SLA.
    FollowUpSla,
}

fn csat_scale() -> Scale {
    Scale::CSAT_5
}
fn ces_scale() -> Scale {
    Scale::CES_7
}
fn two() -> u32 {
    2
}
fn median() -> DurationStat {
    DurationStat::Median
}

impl Measure {
    fn check(&self) -> Checked {
        match self {
            Measure::Count { filter } | Measure::DistinctCustomers { filter } => {
                filter.check().map_err(|e| e.under("filter"))
            }
            Measure::Sum { attribute, filter } | Measure::Avg { attribute, filter } => {
                check::identifier("attribute", attribute.as_str())?;
                filter.check().map_err(|e| e.under("filter"))
            }
            Measure::Percentile {
                attribute,
                p,
                filter,
            } => {
                check::identifier("attribute", attribute.as_str())?;
                check::finite("p", *p)?;
                if !(0.0..=100.0).contains(p) {
                    return Err(FieldError::new(
                        "p",
                        format!("must be within 0 and 100, got {p}"),
                    ));
                }
                filter.check().map_err(|e| e.under("filter"))
            }
            Measure::Ratio {
                numerator,
                denominator,
            } => {
                numerator.check().map_err(|e| e.under("numerator"))?;
                denominator.check().map_err(|e| e.under("denominator"))
            }
            Measure::Nps { question } => check::identifier("question", question.as_str()),
            Measure::Csat {
                question,
                scale,
                top_box,
            }
            | Measure::Ces {
                question,
                scale,
                top_box,
                ..
            } => {
                check::identifier("question", question.as_str())?;
                scale.check().map_err(|e| e.under("scale"))?;
                let points = scale.max - scale.min + 1.0;
                if *top_box == 0 || f64::from(*top_box) >= points {
                    return Err(FieldError::new(
                        "top_box",
                        format!(
                            "must be at least 1 and below the scale's {points} points, got {top_box}"
                        ),
                    ));
                }
                Ok(())
            }
            Measure::StageConversion { from, to } => {
                check::id("from", from.as_str())?;
                check::id("to", to.as_str())
            }
            Measure::TimeInStage { .. } | Measure::FollowUpSla => Ok(()),
        }
    }

    /// Stage ids the measure refers to, with the field that names each.
    pub(crate) fn stage_refs(&self) -> Vec<(&'static str, &StageId)> {
        match self {
            Measure::StageConversion { from, to } => {
                vec![("measure.from", from), ("measure.to", to)]
            }
            _ => Vec::new(),
        }
    }
}

/// Which way is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Higher values are better (NPS, conversion).
    HigherIsBetter,
    /// Lower values are better (time in stage, complaints).
    LowerIsBetter,
}

/// A target value and which way is better.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// The value to reach.
    pub value: f64,
    /// Which way is better.
    pub direction: Direction,
}

impl Kpi {
    /// Checks the KPI alone; references to owners, journeys, stages and segments are checked by
    /// the catalogue.
    pub(crate) fn check(&self) -> Checked {
        check::id("id", self.id.as_str())?;
        check::text("name", &self.name)?;
        match &self.owner {
            None => {
                return Err(FieldError::new(
                    "owner",
                    "is missing: every KPI has an accountable owner",
                ));
            }
            Some(owner) => check::id("owner", owner.as_str())?,
        }
        if self.stage.is_some() && self.journey.is_none() {
            return Err(FieldError::new(
                "journey",
                "is missing: `stage` names a stage of a journey",
            ));
        }
        self.measure.check().map_err(|e| e.under("measure"))?;
        let needs_stage = matches!(self.measure, Measure::TimeInStage { .. });
        if needs_stage && self.stage.is_none() {
            return Err(FieldError::new(
                "stage",
                "is missing: a time_in_stage measure needs the KPI's stage",
            ));
        }
        if matches!(self.measure, Measure::StageConversion { .. }) && self.journey.is_none() {
            return Err(FieldError::new(
                "journey",
                "is missing: a stage_conversion measure needs the KPI's journey",
            ));
        }
        if let Some(target) = &self.target {
            check::finite("target.value", target.value)?;
        }
        if let Some(band) = self.warning_band {
            check::non_negative("warning_band", band)?;
            if self.target.is_none() {
                return Err(FieldError::new(
                    "warning_band",
                    "is set but there is no target",
                ));
            }
        }
        if self.window.is_zero() {
            return Err(FieldError::new("window", "must be longer than zero"));
        }
        Ok(())
    }
}
