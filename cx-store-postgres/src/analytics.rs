//! Journey and KPI analytics: the [`AnalyticsStore`] implementation.
//!
//! What runs where:
//! - **Touchpoint measures** are SQL aggregates, one statement per measure, all sent together
//!   (one round trip): counts, distinct customers, sums and counts of a numeric attribute (the
//!   mean is that sum over that count, as the reference computes it), `percentile_cont` (the
//!   interpolation [`Statistic::Percentile`] is defined by), and the score histogram.
//! - **Moments of truth** are one SQL aggregate: each answer is joined (`LATERAL`) to the visit
//!   its customer was in when they gave it, and the answers counted and summed per stage; only
//!   the ranking of the few stages is Rust.
//! - **Time in stage**: SQL picks the visits of the stage left in the range; the durations are
//!   taken in Rust and summarised by cx-core's [`DurationStats::of`], so the median and p90 are
//!   those of the reference to the bit.
//! - **Funnels**: SQL picks the instances of the journey started in the range (and of the
//!   customers asked for) and reads their visits; cx-core's reference accumulator
//!   ([`FunnelBuilder`]) walks them. The walk (conversion windows between consecutive entered
//!   steps, optional steps passed by skipping, a customer counted once over all their instances,
//!   channel and group breakdowns, statuses under the inactivity timeout) is exactly where SQL
//!   would drift from the reference's semantics, and it only needs the visit rows.

use crate::PostgresStore;
use crate::codec::{self, Bounds, count, get};
use crate::journeys::{VISIT_COLUMNS, instances_from};
use async_trait::async_trait;
use cx_core::journey::funnel::FunnelBuilder;
use cx_core::model::{CustomerId, JourneyId, JourneyTrack, Kind, StageId};
use cx_core::store::{
    AnalyticsStore, DurationStats, Funnel, FunnelQuery, MeasureQuery, MeasureValue, MomentsQuery,
    StageScore, StageTimesQuery, Statistic, TouchpointQuery,
};
use cx_core::{Error, Result};
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

/// `$1::text[]` or NULL: the customer filter of a query.
fn customer_filter(customers: &Option<Vec<CustomerId>>) -> Option<Vec<&str>> {
    customers
        .as_ref()
        .map(|c| c.iter().map(CustomerId::as_str).collect())
}

/// Seconds of `d`, as the reference takes them (microsecond precision).
fn seconds(d: cx_core::chrono::TimeDelta) -> f64 {
    d.num_microseconds()
        .map_or(d.num_seconds() as f64, |us| us as f64 / 1e6)
}

/// The touchpoint filter of a measure, over `$1`-`$7`: range, kinds, channels, customers.
const MEASURE_FILTER: &str = "(occurred_us, occurred_ns) >= ($1, $2)
    AND (occurred_us, occurred_ns) < ($3, $4)
    AND (cardinality($5::text[]) = 0 OR kind = ANY($5::text[]))
    AND (cardinality($6::text[]) = 0 OR channel = ANY($6::text[]))
    AND ($7::text[] IS NULL OR customer_id = ANY($7::text[]))";

/// A numeric attribute named `$8` (touchpoints without it, or with another type, are skipped).
const NUMBER: &str = "jsonb_typeof(attributes -> $8::text) = 'number'";

/// The parameters of one measure's statement.
struct MeasureParams<'q> {
    bounds: Bounds,
    kinds: Vec<&'q str>,
    channels: Vec<&'q str>,
    customers: Option<Vec<&'q str>>,
    name: Option<&'q str>,
    fraction: Option<f64>,
}

impl<'q> MeasureParams<'q> {
    fn of(query: &'q MeasureQuery) -> Self {
        let filter: &TouchpointQuery = &query.filter;
        let (name, fraction) = match &query.statistic {
            Statistic::Count | Statistic::DistinctCustomers => (None, None),
            Statistic::Sum(name) | Statistic::Avg(name) | Statistic::Scores(name) => {
                (Some(name.as_str()), None)
            }
            // A percentile that is not a number has no value; 0 keeps the statement valid.
            Statistic::Percentile(name, p) => (
                Some(name.as_str()),
                Some(if p.is_finite() {
                    p.clamp(0.0, 100.0) / 100.0
                } else {
                    0.0
                }),
            ),
            _ => (None, None),
        };
        MeasureParams {
            bounds: Bounds::of(&filter.range),
            kinds: filter.kinds.iter().map(Kind::as_str).collect(),
            channels: filter.channels.iter().map(|c| c.as_str()).collect(),
            customers: customer_filter(&query.customers),
            name,
            fraction,
        }
    }

    fn params(&self) -> Vec<&(dyn ToSql + Sync)> {
        let mut p: Vec<&(dyn ToSql + Sync)> = vec![
            &self.bounds.start_us,
            &self.bounds.start_ns,
            &self.bounds.end_us,
            &self.bounds.end_ns,
            &self.kinds,
            &self.channels,
            &self.customers,
        ];
        if let Some(name) = &self.name {
            p.push(name);
        }
        if let Some(fraction) = &self.fraction {
            p.push(fraction);
        }
        p
    }
}

/// The statement answering `statistic`: rows `(n bigint, value float8)`, or for scores
/// `(score float8, answers bigint)` ascending by score.
fn measure_sql(statistic: &Statistic) -> Result<String> {
    Ok(match statistic {
        Statistic::Count => {
            format!("SELECT count(*), NULL::float8 FROM touchpoints WHERE {MEASURE_FILTER}")
        }
        Statistic::DistinctCustomers => format!(
            "SELECT count(DISTINCT customer_id), NULL::float8 FROM touchpoints
             WHERE {MEASURE_FILTER}"
        ),
        Statistic::Sum(_) | Statistic::Avg(_) => format!(
            "SELECT count(*), sum((attributes ->> $8::text)::float8) FROM touchpoints
             WHERE {MEASURE_FILTER} AND {NUMBER}"
        ),
        Statistic::Percentile(..) => format!(
            "SELECT count(*),
                    percentile_cont($9::float8) WITHIN GROUP
                        (ORDER BY (attributes ->> $8::text)::float8)
             FROM touchpoints WHERE {MEASURE_FILTER} AND {NUMBER}"
        ),
        Statistic::Scores(_) => format!(
            "SELECT survey_score, count(*) FROM touchpoints
             WHERE {MEASURE_FILTER} AND survey_question = $8::text
             GROUP BY survey_score ORDER BY survey_score"
        ),
        other => {
            return Err(Error::validation(
                "touchpoint measure",
                "statistic",
                format!("{other:?} is not supported by the PostgreSQL store"),
            ));
        }
    })
}

/// The answer to `statistic` from its statement's rows.
fn measure_value(statistic: &Statistic, rows: &[Row]) -> Result<MeasureValue> {
    if let Statistic::Scores(_) = statistic {
        let mut scores = Vec::with_capacity(rows.len());
        let mut n = 0;
        for r in rows {
            let answers = count(get(r, 1)?);
            n += answers;
            scores.push((get::<f64>(r, 0)?, answers));
        }
        return Ok(MeasureValue::new(n, None, scores));
    }
    let Some(r) = rows.first() else {
        return Err(codec::corrupt("an aggregate returned no row".to_owned()));
    };
    let n = count(get(r, 0)?);
    let x: Option<f64> = get(r, 1)?;
    let value = match statistic {
        Statistic::Sum(_) => Some(x.unwrap_or(0.0)),
        Statistic::Avg(_) => x.filter(|_| n > 0).map(|sum| sum / n as f64),
        Statistic::Percentile(_, p) if !p.is_finite() => None,
        Statistic::Percentile(..) => x,
        _ => Some(n as f64),
    };
    Ok(MeasureValue::new(n, value, Vec::new()))
}

#[async_trait]
impl AnalyticsStore for PostgresStore {
    async fn funnel(&self, query: &FunnelQuery) -> Result<Funnel> {
        let b = Bounds::of(&query.started);
        let customers = customer_filter(&query.customers);
        let conn = self.conn().await?;
        let rows = self
            .query(
                &conn,
                &format!(
                    "SELECT {VISIT_COLUMNS}
                     FROM journey_instances i
                     JOIN journey_visits v ON v.customer_id = i.customer_id
                          AND v.journey_id = i.journey_id AND v.instance = i.instance
                     WHERE i.journey_id = $1
                       AND (i.started_us, i.started_ns) >= ($2, $3)
                       AND (i.started_us, i.started_ns) < ($4, $5)
                       AND ($6::text[] IS NULL OR i.customer_id = ANY($6::text[]))
                     ORDER BY v.customer_id, v.journey_id, v.instance, v.visit"
                ),
                &[
                    &query.journey.as_str(),
                    &b.start_us,
                    &b.start_ns,
                    &b.end_us,
                    &b.end_ns,
                    &customers,
                ],
                "compute a funnel",
            )
            .await?;
        let mut builder = FunnelBuilder::new(query);
        for ((customer, journey), instances) in instances_from(&rows, 0)? {
            let mut track = JourneyTrack::new(CustomerId::new(customer), JourneyId::new(journey));
            track.instances = instances;
            builder.add(&track);
        }
        Ok(builder.finish())
    }

    async fn moments_of_truth(&self, query: &MomentsQuery) -> Result<Vec<StageScore>> {
        let b = Bounds::of(&query.range);
        let customers = customer_filter(&query.customers);
        // The timeout as whole seconds and nanoseconds, compared exactly in `numeric`.
        let timeout = query.timeout.map(|t| t.as_delta());
        let has_timeout = timeout.is_some();
        let timeout_s = timeout.map_or(0, |t| t.num_seconds());
        let timeout_ns = timeout.map_or(0, |t| i64::from(t.subsec_nanos()));
        let conn = self.conn().await?;
        // The stage an answer counts for (see cx-core's `journey::moments`): in the latest
        // instance started by then, the last visit entered by then, unless it was left by then
        // (a visit not left, of an instance that has not ended, is left when the inactivity
        // timeout runs out; a completed instance stays in its last stage).
        let rows = self
            .query(
                &conn,
                "SELECT v.stage_index, min(v.stage_id), count(*), sum(a.survey_score)
                 FROM touchpoints a
                 CROSS JOIN LATERAL (
                     SELECT i.instance, i.end_reason FROM journey_instances i
                     WHERE i.customer_id = a.customer_id AND i.journey_id = $1
                       AND (i.started_us, i.started_ns) <= (a.occurred_us, a.occurred_ns)
                     ORDER BY i.instance DESC LIMIT 1) i
                 CROSS JOIN LATERAL (
                     SELECT v.stage_index, v.stage_id, v.entered_us, v.entered_ns, v.left_us,
                            v.left_ns
                     FROM journey_visits v
                     WHERE v.customer_id = a.customer_id AND v.journey_id = $1
                       AND v.instance = i.instance
                       AND (v.entered_us, v.entered_ns) <= (a.occurred_us, a.occurred_ns)
                     ORDER BY v.visit DESC LIMIT 1) v
                 WHERE a.survey_question = $2
                   AND (a.occurred_us, a.occurred_ns) >= ($3, $4)
                   AND (a.occurred_us, a.occurred_ns) < ($5, $6)
                   AND ($7::text[] IS NULL OR a.customer_id = ANY($7::text[]))
                   AND CASE
                       WHEN v.left_us IS NOT NULL
                           THEN (v.left_us, v.left_ns) > (a.occurred_us, a.occurred_ns)
                       WHEN i.end_reason IS NOT NULL OR NOT $8::boolean THEN true
                       ELSE (a.occurred_us - v.entered_us)::numeric * 1000
                                + (a.occurred_ns - v.entered_ns)
                            <= $9::bigint::numeric * 1000000000 + $10::bigint
                       END
                 GROUP BY v.stage_index",
                &[
                    &query.journey.as_str(),
                    &query.question.as_str(),
                    &b.start_us,
                    &b.start_ns,
                    &b.end_us,
                    &b.end_ns,
                    &customers,
                    &has_timeout,
                    &timeout_s,
                    &timeout_ns,
                ],
                "rank moments of truth",
            )
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let index = u16::try_from(get::<i16>(r, 0)?)
                .map_err(|_| codec::corrupt("negative journey stage index".to_owned()))?;
            let n = count(get(r, 2)?);
            let sum: f64 = get(r, 3)?;
            if n > 0 {
                out.push(StageScore::new(
                    StageId::new(get::<&str>(r, 1)?),
                    index,
                    n,
                    sum / n as f64,
                ));
            }
        }
        out.sort_by(|a, b| b.mean.total_cmp(&a.mean).then(a.index.cmp(&b.index)));
        Ok(out)
    }

    async fn stage_times(&self, query: &StageTimesQuery) -> Result<DurationStats> {
        let b = Bounds::of(&query.left);
        let customers = customer_filter(&query.customers);
        let conn = self.conn().await?;
        let rows = self
            .query(
                &conn,
                "SELECT entered_us, entered_ns, left_us, left_ns FROM journey_visits
                 WHERE journey_id = $1 AND stage_id = $2 AND left_us IS NOT NULL
                   AND (left_us, left_ns) >= ($3, $4) AND (left_us, left_ns) < ($5, $6)
                   AND ($7::text[] IS NULL OR customer_id = ANY($7::text[]))",
                &[
                    &query.journey.as_str(),
                    &query.stage.as_str(),
                    &b.start_us,
                    &b.start_ns,
                    &b.end_us,
                    &b.end_ns,
                    &customers,
                ],
                "compute time in stage",
            )
            .await?;
        let mut durations = Vec::with_capacity(rows.len());
        for r in &rows {
            let entered = codec::join(get(r, 0)?, get(r, 1)?)?;
            let left = codec::join(get(r, 2)?, get(r, 3)?)?;
            durations.push(seconds(left - entered));
        }
        Ok(DurationStats::of(&mut durations))
    }

    async fn measure_touchpoints(&self, queries: &[MeasureQuery]) -> Result<Vec<MeasureValue>> {
        if queries.is_empty() {
            return Ok(Vec::new());
        }
        let doing = "compute touchpoint measures";
        let conn = self.conn().await?;
        let params: Vec<MeasureParams<'_>> = queries.iter().map(MeasureParams::of).collect();
        let mut statements = Vec::with_capacity(queries.len());
        for q in queries {
            statements.push(
                conn.prepare_cached(&measure_sql(&q.statistic)?)
                    .await
                    .map_err(self.err(doing))?,
            );
        }
        let values: Vec<Vec<&(dyn ToSql + Sync)>> =
            params.iter().map(MeasureParams::params).collect();
        // Sent together: one round trip for every measure.
        self.trips(1);
        let results = futures_util::future::try_join_all(
            statements
                .iter()
                .zip(&values)
                .map(|(s, p)| conn.query(s, p.as_slice())),
        )
        .await
        .map_err(self.err(doing))?;
        queries
            .iter()
            .zip(&results)
            .map(|(q, rows)| measure_value(&q.statistic, rows))
            .collect()
    }
}
