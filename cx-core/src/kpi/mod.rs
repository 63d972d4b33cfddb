//! KPIs: evaluating measures over a window, against a target, for a scorecard by owner.
//!
//! The registry is the catalogue: each KPI's definition (owner, stage link, measure, target,
//! band, window, segment) is versioned with it, so any past version stays readable and a past
//! report can be reproduced ([`Engine::kpi_history`](crate::Engine::kpi_history),
//! [`Engine::evaluate_kpi_at`](crate::Engine::evaluate_kpi_at)).
//!
//! Evaluation is split in three: [`plan`] turns a KPI into store queries (one batch of
//! touchpoint measures, plus funnel, stage-time and SLA queries), the store answers them, and
//! [`compute`] turns the answers into a value, a sample size, a status and, for survey
//! measures, a 95% confidence interval.

/// A computed measure: the value (`None` when there is nothing to compute it from), the sample
/// size behind it, and its 95% confidence interval where there is one.
pub type Computed = (Option<f64>, u64, Option<(f64, f64)>);

mod evaluate;
pub mod inputs;
mod plan;
mod stats;

pub use evaluate::{KpiResult, OwnerCard, Scorecard, Status, status};
pub use plan::{Answers, Node, OtherAnswer, OtherQuery, Plan, compute, plan};
pub use stats::{
    Z95, mean_interval, nps_interval, percentile_sorted, survey_summary, wilson_interval,
};

#[cfg(test)]
mod tests;
