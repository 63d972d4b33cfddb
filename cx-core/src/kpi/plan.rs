//! A KPI as store queries, and its value from their answers.

use crate::model::{
    Catalog, CustomerId, DurationStat, Kpi, Measure, TimeRange, Timestamp, TouchpointFilter,
};
use crate::store::{
    CaseQuery, DurationStats, Funnel, FunnelQuery, FunnelStep, MeasureQuery, MeasureValue,
    SlaCounts, StageTimesQuery, Statistic, TouchpointQuery,
};

/// A query other than a touchpoint measure.
#[derive(Debug, Clone, PartialEq)]
pub enum OtherQuery {
    /// A funnel (for a stage conversion).
    Funnel(FunnelQuery),
    /// Time in a stage.
    StageTimes(StageTimesQuery),
    /// Follow-up SLA counts.
    Sla(CaseQuery),
}

/// The answer to an [`OtherQuery`].
#[derive(Debug, Clone, PartialEq)]
pub enum OtherAnswer {
    /// A funnel.
    Funnel(Funnel),
    /// Time in a stage.
    StageTimes(DurationStats),
    /// SLA counts.
    Sla(SlaCounts),
}

/// How a KPI's value is made from the answers.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    /// The value of touchpoint measure `i`.
    Touch(usize),
    /// A survey measure over the score histogram of touchpoint measure `i`.
    Survey(Measure, usize),
    /// A ratio of two values.
    Ratio(Box<Node>, Box<Node>),
    /// The share of the funnel's first step that reached its last (other query `i`).
    Conversion(usize),
    /// A statistic of the stage times of other query `i`.
    StageTime(DurationStat, usize),
    /// The share of decided cases closed in time (other query `i`).
    Sla(usize),
}

/// The queries a KPI needs, and how its value is made from their answers.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Touchpoint measures, answered in one pass by
    /// [`measure_touchpoints`](crate::store::AnalyticsStore::measure_touchpoints).
    pub touch: Vec<MeasureQuery>,
    /// Other queries.
    pub others: Vec<OtherQuery>,
    /// The value.
    pub root: Node,
}

/// The answers to a plan's queries, in the plan's order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Answers {
    /// Touchpoint measures.
    pub touch: Vec<MeasureValue>,
    /// Other queries.
    pub others: Vec<OtherAnswer>,
}

/// The queries that evaluate `kpi` over `window` (ending at the evaluation instant `as_of`),
/// for `customers` only if set (the KPI's segment). Queries are appended to `touch` and
/// `others`, so several KPIs can share one batch.
pub fn plan(
    catalog: &Catalog,
    kpi: &Kpi,
    window: TimeRange,
    as_of: Timestamp,
    customers: Option<&Vec<CustomerId>>,
    touch: &mut Vec<MeasureQuery>,
    others: &mut Vec<OtherQuery>,
) -> Node {
    node(
        catalog,
        kpi,
        &kpi.measure,
        window,
        as_of,
        customers,
        touch,
        others,
    )
}

#[allow(clippy::too_many_arguments)]
fn node(
    catalog: &Catalog,
    kpi: &Kpi,
    measure: &Measure,
    window: TimeRange,
    as_of: Timestamp,
    customers: Option<&Vec<CustomerId>>,
    touch: &mut Vec<MeasureQuery>,
    others: &mut Vec<OtherQuery>,
) -> Node {
    let mut push_touch = |filter: &TouchpointFilter, statistic: Statistic| {
        let query = TouchpointQuery::new(window)
            .kinds(filter.kinds.iter().cloned())
            .channels(filter.channels.iter().cloned());
        touch.push(MeasureQuery::new(query, statistic).customers(customers.cloned()));
        touch.len() - 1
    };
    match measure {
        Measure::Count { filter } => Node::Touch(push_touch(filter, Statistic::Count)),
        Measure::DistinctCustomers { filter } => {
            Node::Touch(push_touch(filter, Statistic::DistinctCustomers))
        }
        Measure::Sum { attribute, filter } => {
            Node::Touch(push_touch(filter, Statistic::Sum(attribute.clone())))
        }
        Measure::Avg { attribute, filter } => {
            Node::Touch(push_touch(filter, Statistic::Avg(attribute.clone())))
        }
        Measure::Percentile {
            attribute,
            p,
            filter,
        } => Node::Touch(push_touch(
            filter,
            Statistic::Percentile(attribute.clone(), *p),
        )),
        Measure::Nps { question }
        | Measure::Csat { question, .. }
        | Measure::Ces { question, .. } => {
            let i = push_touch(
                &TouchpointFilter::default(),
                Statistic::Scores(question.clone()),
            );
            Node::Survey(measure.clone(), i)
        }
        Measure::Ratio {
            numerator,
            denominator,
        } => {
            let a = node(
                catalog, kpi, numerator, window, as_of, customers, touch, others,
            );
            let b = node(
                catalog,
                kpi,
                denominator,
                window,
                as_of,
                customers,
                touch,
                others,
            );
            Node::Ratio(Box::new(a), Box::new(b))
        }
        Measure::StageConversion { from, to } => {
            let journey = kpi
                .journey
                .as_ref()
                .and_then(|j| catalog.journey(j.as_str()));
            let steps: Vec<FunnelStep> = journey
                .map(|j| {
                    let from = j.stages.iter().position(|s| &s.id == from).unwrap_or(0);
                    let to = j.stages.iter().position(|s| &s.id == to).unwrap_or(0);
                    j.stages
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| (from..=to).contains(i))
                        .map(|(i, s)| {
                            FunnelStep::new(
                                s.id.clone(),
                                u16::try_from(i).unwrap_or(u16::MAX),
                                s.optional && i != from,
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            let timeout = journey.and_then(|j| j.inactivity_timeout);
            let id = kpi.journey.clone().unwrap_or_default();
            others.push(OtherQuery::Funnel(
                FunnelQuery::new(id, steps, window, as_of)
                    .timeout(timeout)
                    .customers(customers.cloned()),
            ));
            Node::Conversion(others.len() - 1)
        }
        Measure::TimeInStage { statistic } => {
            others.push(OtherQuery::StageTimes(
                StageTimesQuery::new(
                    kpi.journey.clone().unwrap_or_default(),
                    kpi.stage.clone().unwrap_or_default(),
                    window,
                )
                .customers(customers.cloned()),
            ));
            Node::StageTime(*statistic, others.len() - 1)
        }
        Measure::FollowUpSla => {
            let mut query = CaseQuery::new(window, as_of).customers(customers.cloned());
            if let Some(stage) = &kpi.stage
                && kpi.journey.is_some()
            {
                // A stage-linked SLA KPI counts the cases of that stage's owner.
                if let Some(owner) = kpi
                    .journey
                    .as_ref()
                    .and_then(|j| catalog.journey(j.as_str()))
                    .and_then(|j| j.stage(stage.as_str()))
                    .and_then(|s| s.owner.clone())
                {
                    query = query.owner(owner);
                }
            }
            others.push(OtherQuery::Sla(query));
            Node::Sla(others.len() - 1)
        }
    }
}

/// The value, sample size and 95% interval (survey measures and shares) of `node`.
pub fn compute(node: &Node, answers: &Answers) -> super::Computed {
    match node {
        Node::Touch(i) => answers
            .touch
            .get(*i)
            .map_or((None, 0, None), |v| (v.value, v.n, None)),
        Node::Survey(measure, i) => answers
            .touch
            .get(*i)
            .and_then(|v| super::survey_summary(measure, &v.scores))
            .unwrap_or((None, 0, None)),
        Node::Ratio(a, b) => {
            let (a, _, _) = compute(a, answers);
            let (b, n, _) = compute(b, answers);
            let value = match (a, b) {
                (Some(a), Some(b)) if b != 0.0 => Some(a / b),
                _ => None,
            };
            (value, n, None)
        }
        Node::Conversion(i) => match answers.others.get(*i) {
            Some(OtherAnswer::Funnel(f)) => {
                let first = f.rows.first().map_or(0, |r| r.reached);
                let last = f.rows.last().map_or(0, |r| r.reached);
                let value = (first > 0).then(|| last as f64 / first as f64);
                (value, first, super::wilson_interval(last, first))
            }
            _ => (None, 0, None),
        },
        Node::StageTime(statistic, i) => match answers.others.get(*i) {
            Some(OtherAnswer::StageTimes(s)) => {
                let value = match statistic {
                    DurationStat::Median => s.median,
                    DurationStat::P90 => s.p90,
                    DurationStat::Mean => s.mean,
                };
                (value, s.count, None)
            }
            _ => (None, 0, None),
        },
        Node::Sla(i) => match answers.others.get(*i) {
            Some(OtherAnswer::Sla(c)) => {
                let n = c.decided();
                let value = (n > 0).then(|| c.closed_in_time as f64 / n as f64);
                (value, n, super::wilson_interval(c.closed_in_time, n))
            }
            _ => (None, 0, None),
        },
    }
}
