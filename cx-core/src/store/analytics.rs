use super::touchpoints::TouchpointQuery;
use crate::error::Result;
use crate::model::{Channel, CustomerId, JourneyId, Name, Span, StageId, TimeRange, Timestamp};
use async_trait::async_trait;

/// Aggregations over journeys and touchpoints: funnels, moments of truth, time in stage and the
/// inputs of KPI measures. They are store queries so a database answers them where the data is.
///
/// # Contract
///
/// - Counts of customers are exact (distinct resolved customer ids, no sketches).
/// - Results are deterministic: rows and groups come in the order each type documents.
/// - Only tracks and touchpoints of the customers in `customers` count, when it is set.
/// - The semantics of each query are those of the reference implementation in
///   [`crate::journey::funnel`], [`crate::journey::moments`] and [`crate::kpi::inputs`]; the
///   conformance suite checks a backend against hand-computed answers.
#[async_trait]
pub trait AnalyticsStore: Send + Sync {
    /// The funnel of a journey.
    async fn funnel(&self, query: &FunnelQuery) -> Result<Funnel>;

    /// The journey's stages ranked by the mean survey score given in them, best first.
    async fn moments_of_truth(&self, query: &MomentsQuery) -> Result<Vec<StageScore>>;

    /// How long instances stayed in a stage (entered to left, for visits that were left).
    async fn stage_times(&self, query: &StageTimesQuery) -> Result<DurationStats>;

    /// Answers every query in one pass over the touchpoints, in the order of `queries`.
    async fn measure_touchpoints(&self, queries: &[MeasureQuery]) -> Result<Vec<MeasureValue>>;
}

/// One step of a funnel: a stage, and the gap allowed since the previous step entered.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FunnelStep {
    /// The stage.
    pub stage: StageId,
    /// Its index in the journey.
    pub index: u16,
    /// Whether customers may skip it.
    pub optional: bool,
    /// The step counts only if at least this long after the previous step entered.
    pub min_gap: Option<Span>,
    /// The step counts only if at most this long after the previous step entered (the
    /// conversion window).
    pub max_gap: Option<Span>,
    /// The stage's max time: an active instance in it for longer is overdue
    /// ([`FunnelRow::overdue`]).
    pub max_time: Option<Span>,
}

impl FunnelStep {
    /// A step with no gap limits.
    pub fn new(stage: impl Into<StageId>, index: u16, optional: bool) -> Self {
        FunnelStep {
            stage: stage.into(),
            index,
            optional,
            min_gap: None,
            max_gap: None,
            max_time: None,
        }
    }

    /// Sets the conversion window.
    #[must_use]
    pub fn within(mut self, max_gap: Span) -> Self {
        self.max_gap = Some(max_gap);
        self
    }

    /// Sets the least gap.
    #[must_use]
    pub fn after_at_least(mut self, min_gap: Span) -> Self {
        self.min_gap = Some(min_gap);
        self
    }

    /// Sets the stage's max time (see [`FunnelRow::overdue`]).
    #[must_use]
    pub fn max_time(mut self, max_time: Option<Span>) -> Self {
        self.max_time = max_time;
        self
    }
}

/// How a funnel is broken down.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Breakdown {
    /// No breakdown.
    #[default]
    None,
    /// By the channel of the touchpoint that entered the first step.
    Channel,
    /// By named groups of customers (segments); a customer may be in several.
    Groups(Vec<(String, Vec<CustomerId>)>),
}

/// A funnel: which journey, which instances, which steps.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FunnelQuery {
    /// The journey.
    pub journey: JourneyId,
    /// The steps, in journey order (usually every stage; see
    /// [`Engine::funnel_query`](crate::Engine::funnel_query)).
    pub steps: Vec<FunnelStep>,
    /// Instances that started in this range count.
    pub started: TimeRange,
    /// The journey's inactivity timeout, for statuses.
    pub timeout: Option<Span>,
    /// The instant statuses are taken at.
    pub as_of: Timestamp,
    /// Only these customers, if set.
    pub customers: Option<Vec<CustomerId>>,
    /// The breakdown.
    pub breakdown: Breakdown,
}

impl FunnelQuery {
    /// A funnel of `journey` over `steps`, for instances started in `started`, at `as_of`.
    pub fn new(
        journey: impl Into<JourneyId>,
        steps: Vec<FunnelStep>,
        started: TimeRange,
        as_of: Timestamp,
    ) -> Self {
        FunnelQuery {
            journey: journey.into(),
            steps,
            started,
            timeout: None,
            as_of,
            customers: None,
            breakdown: Breakdown::None,
        }
    }

    /// Sets the inactivity timeout.
    #[must_use]
    pub fn timeout(mut self, timeout: Option<Span>) -> Self {
        self.timeout = timeout;
        self
    }

    /// Only these customers.
    #[must_use]
    pub fn customers(mut self, customers: Option<Vec<CustomerId>>) -> Self {
        self.customers = customers;
        self
    }

    /// Sets the breakdown.
    #[must_use]
    pub fn breakdown(mut self, breakdown: Breakdown) -> Self {
        self.breakdown = breakdown;
        self
    }
}

/// Summary statistics of durations, in seconds. Percentiles interpolate linearly between the
/// closest ranks (as SQL's `percentile_cont`).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
#[non_exhaustive]
pub struct DurationStats {
    /// How many durations.
    pub count: u64,
    /// The shortest.
    pub min: Option<f64>,
    /// The longest.
    pub max: Option<f64>,
    /// The mean.
    pub mean: Option<f64>,
    /// The median.
    pub median: Option<f64>,
    /// The 90th percentile.
    pub p90: Option<f64>,
}

impl DurationStats {
    /// The statistics of `seconds` (sorted in place).
    pub fn of(seconds: &mut [f64]) -> DurationStats {
        seconds.sort_unstable_by(f64::total_cmp);
        let n = seconds.len();
        DurationStats {
            count: n as u64,
            min: seconds.first().copied(),
            max: seconds.last().copied(),
            mean: (n > 0).then(|| seconds.iter().sum::<f64>() / n as f64),
            median: crate::kpi::percentile_sorted(seconds, 50.0),
            p90: crate::kpi::percentile_sorted(seconds, 90.0),
        }
    }
}

/// One step of a funnel's answer.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct FunnelRow {
    /// The stage.
    pub stage: StageId,
    /// Customers who reached this step or, having skipped it (optional), a later one. Never
    /// more than the previous step's.
    pub reached: u64,
    /// Customers who entered this stage itself.
    pub entered: u64,
    /// Customers who reached the step by skipping it.
    pub skipped: u64,
    /// Customers who reached the previous step but not this one (0 for the first).
    pub dropped: u64,
    /// `reached / previous reached` (`None` for the first step or when the previous is 0).
    pub conversion: Option<f64>,
    /// `reached / first step reached`.
    pub conversion_from_start: Option<f64>,
    /// Time from the previous step entered to this one (instances that entered both).
    pub gap: DurationStats,
    /// Customers with an instance active at `as_of` that has been in this stage for longer
    /// than its max time (0 for a stage without one): who is stuck, for the stage's owner.
    pub overdue: u64,
}

/// A funnel's answer: the steps, and the same per group of the breakdown.
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct Funnel {
    /// The steps, in order.
    pub rows: Vec<FunnelRow>,
    /// Per group (channel name or group label), in the order of the groups (channels by name).
    pub groups: Vec<(String, Vec<FunnelRow>)>,
    /// Instances counted, by status at `as_of`: active, completed, exited, abandoned.
    pub instances: [u64; 4],
}

/// Moments of truth: which survey question, given when.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MomentsQuery {
    /// The journey.
    pub journey: JourneyId,
    /// The survey question.
    pub question: Name,
    /// Answers given in this range count.
    pub range: TimeRange,
    /// The journey's inactivity timeout (an abandoned instance is in no stage).
    pub timeout: Option<Span>,
    /// Only these customers, if set.
    pub customers: Option<Vec<CustomerId>>,
}

impl MomentsQuery {
    /// Answers to `question` given in `range` by customers in a stage of `journey`.
    pub fn new(journey: impl Into<JourneyId>, question: impl Into<Name>, range: TimeRange) -> Self {
        MomentsQuery {
            journey: journey.into(),
            question: question.into(),
            range,
            timeout: None,
            customers: None,
        }
    }

    /// Sets the inactivity timeout.
    #[must_use]
    pub fn timeout(mut self, timeout: Option<Span>) -> Self {
        self.timeout = timeout;
        self
    }

    /// Only these customers.
    #[must_use]
    pub fn customers(mut self, customers: Option<Vec<CustomerId>>) -> Self {
        self.customers = customers;
        self
    }
}

/// A stage's mean survey score. Ordered best first: by mean descending, then stage index.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct StageScore {
    /// The stage.
    pub stage: StageId,
    /// Its index.
    pub index: u16,
    /// Answers given while customers were in it.
    pub responses: u64,
    /// Their mean score.
    pub mean: f64,
}

impl StageScore {
    /// A score.
    pub fn new(stage: StageId, index: u16, responses: u64, mean: f64) -> Self {
        StageScore {
            stage,
            index,
            responses,
            mean,
        }
    }
}

/// Time in one stage of a journey.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StageTimesQuery {
    /// The journey.
    pub journey: JourneyId,
    /// The stage.
    pub stage: StageId,
    /// Visits that were left in this range count.
    pub left: TimeRange,
    /// Only these customers, if set.
    pub customers: Option<Vec<CustomerId>>,
}

impl StageTimesQuery {
    /// Visits of `stage` left in `left`.
    pub fn new(journey: impl Into<JourneyId>, stage: impl Into<StageId>, left: TimeRange) -> Self {
        StageTimesQuery {
            journey: journey.into(),
            stage: stage.into(),
            left,
            customers: None,
        }
    }

    /// Only these customers.
    #[must_use]
    pub fn customers(mut self, customers: Option<Vec<CustomerId>>) -> Self {
        self.customers = customers;
        self
    }
}

/// What a touchpoint measure computes.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Statistic {
    /// Matching touchpoints.
    Count,
    /// Distinct customers with a matching touchpoint.
    DistinctCustomers,
    /// Sum of a numeric attribute (touchpoints without it are skipped).
    Sum(Name),
    /// Mean of a numeric attribute.
    Avg(Name),
    /// Percentile (0-100) of a numeric attribute, interpolated as SQL's `percentile_cont`.
    Percentile(Name, f64),
    /// How many answers to a survey question gave each score.
    Scores(Name),
}

/// One touchpoint measure: which touchpoints, which statistic.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct MeasureQuery {
    /// Which touchpoints (range, kinds, channels).
    pub filter: TouchpointQuery,
    /// Only these customers, if set.
    pub customers: Option<Vec<CustomerId>>,
    /// What to compute.
    pub statistic: Statistic,
}

impl MeasureQuery {
    /// A measure.
    pub fn new(filter: TouchpointQuery, statistic: Statistic) -> Self {
        MeasureQuery {
            filter,
            customers: None,
            statistic,
        }
    }

    /// Only these customers.
    #[must_use]
    pub fn customers(mut self, customers: Option<Vec<CustomerId>>) -> Self {
        self.customers = customers;
        self
    }
}

/// The answer to a [`MeasureQuery`].
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct MeasureValue {
    /// The sample size: touchpoints (or answers, or values) that counted; for distinct
    /// customers, the customers.
    pub n: u64,
    /// The value (`None` for a mean or percentile of nothing; `Scores` leave it `None`).
    pub value: Option<f64>,
    /// For `Scores`: (score, answers), ascending by score.
    pub scores: Vec<(f64, u64)>,
}

impl MeasureValue {
    /// A value.
    pub fn new(n: u64, value: Option<f64>, scores: Vec<(f64, u64)>) -> Self {
        MeasureValue { n, value, scores }
    }
}

/// The channel's name, for channel breakdowns.
pub(crate) fn channel_label(channel: &Channel) -> String {
    channel.as_str().to_owned()
}
