//! A KPI's result, its status against the target, and scorecards by owner.

use crate::model::{Direction, Kpi, KpiId, Owner, OwnerId, Target, TimeRange};
use serde::Serialize;

/// How a KPI stands against its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// At or better than the target.
    OnTrack,
    /// Short of the target by no more than the warning band.
    AtRisk,
    /// Short of the target by more than the warning band.
    OffTrack,
    /// Fewer observations than the KPI's minimum sample (or no value).
    InsufficientData,
    /// The KPI has no target.
    NoTarget,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::OnTrack => "on track",
            Status::AtRisk => "at risk",
            Status::OffTrack => "off track",
            Status::InsufficientData => "insufficient data",
            Status::NoTarget => "no target",
        })
    }
}

/// The status of `value` over `n` observations for `kpi`: insufficient data below the minimum
/// sample; otherwise against the target, with the warning band (0 if unset) as the tolerance
/// on the wrong side of it.
pub fn status(kpi: &Kpi, value: Option<f64>, n: u64) -> Status {
    let Some(value) = value else {
        return Status::InsufficientData;
    };
    if n < kpi.min_sample {
        return Status::InsufficientData;
    }
    let Some(Target {
        value: target,
        direction,
    }) = kpi.target
    else {
        return Status::NoTarget;
    };
    let band = kpi.warning_band.unwrap_or(0.0);
    let shortfall = match direction {
        Direction::HigherIsBetter => target - value,
        Direction::LowerIsBetter => value - target,
    };
    if shortfall <= 0.0 {
        Status::OnTrack
    } else if shortfall <= band {
        Status::AtRisk
    } else {
        Status::OffTrack
    }
}

/// One KPI evaluated over one window.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct KpiResult {
    /// The KPI.
    pub kpi: KpiId,
    /// Its name.
    pub name: String,
    /// Who answers for it.
    pub owner: OwnerId,
    /// The window evaluated (ending at the evaluation instant).
    pub window: TimeRange,
    /// The value (`None` when there is nothing to compute it from).
    pub value: Option<f64>,
    /// The sample size behind it.
    pub n: u64,
    /// The status.
    pub status: Status,
    /// The 95% confidence interval (survey measures and shares).
    pub interval: Option<(f64, f64)>,
    /// The target.
    pub target: Option<Target>,
    /// The catalogue version the definition came from.
    pub catalog_version: u64,
}

impl KpiResult {
    /// A result for `kpi`.
    pub fn new(
        kpi: &Kpi,
        window: TimeRange,
        (value, n, interval): super::Computed,
        catalog_version: u64,
    ) -> Self {
        KpiResult {
            kpi: kpi.id.clone(),
            name: kpi.name.clone(),
            owner: kpi.owner.clone().unwrap_or_default(),
            window,
            value,
            n,
            status: status(kpi, value, n),
            interval,
            target: kpi.target,
            catalog_version,
        }
    }
}

/// The KPIs of one owner.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct OwnerCard {
    /// The owner.
    pub owner: Owner,
    /// Their KPIs' results, in catalogue order.
    pub results: Vec<KpiResult>,
}

/// KPI results grouped by owner, owners in catalogue order (owners without KPIs left out).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Scorecard {
    /// The owners' cards.
    pub owners: Vec<OwnerCard>,
}

impl Scorecard {
    /// Groups `results` by owner, in the order of `owners`.
    pub fn group(owners: &[Owner], results: Vec<KpiResult>) -> Scorecard {
        let cards = owners
            .iter()
            .map(|owner| OwnerCard {
                owner: owner.clone(),
                results: results
                    .iter()
                    .filter(|r| r.owner == owner.id)
                    .cloned()
                    .collect(),
            })
            .filter(|c| !c.results.is_empty())
            .collect();
        Scorecard { owners: cards }
    }

    /// Every result, owner by owner.
    pub fn results(&self) -> impl Iterator<Item = &KpiResult> {
        self.owners.iter().flat_map(|c| c.results.iter())
    }
}
