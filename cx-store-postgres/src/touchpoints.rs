//! The touchpoint log: ingest with one `INSERT` of the batch as column arrays, per-customer reads,
//! scans and aggregates in SQL; the [`TouchpointStore`] implementation.

use crate::PostgresStore;
use crate::codec::{self, Bounds, count, get};
use crate::customers::CANONICAL;
use async_trait::async_trait;
use cx_core::model::{
    CustomerId, Kind, Scale, Subject, SurveyAnswer, TimeRange, Touchpoint, TouchpointId,
};
use cx_core::store::{
    AggregateQuery, AggregateRow, AppendReport, Bucket, ScanCursor, ScanPage, ScanQuery,
    TouchpointStore,
};
use cx_core::{Error, Result};
use tokio_postgres::Row;

/// Checks the identity subjects of a batch (`$1` their positions, `$2` kinds, `$3` values):
/// the first that resolves to no customer.
const FIND_UNRESOLVED: &str = "SELECT s.ord, s.kind
    FROM unnest($1::int8[], $2::text[], $3::text[]) AS s(ord, kind, value)
    WHERE NOT EXISTS (SELECT 1 FROM customer_identities i
                      WHERE i.kind = s.kind COLLATE \"C\" AND i.value = s.value COLLATE \"C\")
    ORDER BY s.ord LIMIT 1";

/// Inserts a batch sent as one array per column (element `i` of each is touchpoint `i`):
/// subjects resolved (aliases by a join, identities by an index probe, made only for identity
/// subjects), duplicates of stored keys skipped. One statement: no staging table to fill, read
/// and empty.
///
/// Rows go in in key order, `(customer, touchpoint id)`, then batch order: repeated keys are
/// adjacent and the first in the batch wins, and the primary key's pages are visited in order,
/// each once, rather than at random for every row.
const INSERT_BATCH: &str = "INSERT INTO touchpoints (customer_id, touchpoint_id, occurred_us,
        occurred_ns, channel, kind, source, attributes, survey_question, survey_score,
        survey_min, survey_max)
    SELECT coalesce(a.customer_id, s.subject_id COLLATE \"C\",
                    (SELECT i.customer_id FROM customer_identities i
                     WHERE i.kind = s.identity_kind COLLATE \"C\"
                       AND i.value = s.identity_value COLLATE \"C\")),
        s.touchpoint_id COLLATE \"C\", s.occurred_us, s.occurred_ns, s.channel, s.kind, s.source,
        s.attributes::jsonb, s.survey_question, s.survey_score, s.survey_min, s.survey_max
    FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int8[], $6::int2[],
                $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::float8[],
                $13::float8[], $14::float8[])
         WITH ORDINALITY AS s(subject_id, identity_kind, identity_value, touchpoint_id,
                              occurred_us, occurred_ns, channel, kind, source, attributes,
                              survey_question, survey_score, survey_min, survey_max, ord)
    LEFT JOIN customer_aliases a ON a.alias_id = s.subject_id COLLATE \"C\"
    ORDER BY 1, 2, s.ord
    ON CONFLICT DO NOTHING";

/// A batch as the columns of [`INSERT_BATCH`], borrowing from the touchpoints; the attributes'
/// JSON is written into one buffer.
struct Columns<'a> {
    subject_id: Vec<Option<&'a str>>,
    identity_kind: Vec<Option<&'a str>>,
    identity_value: Vec<Option<&'a str>>,
    touchpoint_id: Vec<&'a str>,
    occurred_us: Vec<i64>,
    occurred_ns: Vec<i16>,
    channel: Vec<&'a str>,
    kind: Vec<&'a str>,
    source: Vec<Option<&'a str>>,
    survey_question: Vec<Option<&'a str>>,
    survey_score: Vec<Option<f64>>,
    survey_min: Vec<Option<f64>>,
    survey_max: Vec<Option<f64>>,
    /// Where each touchpoint's attributes are in `json` (`None`: no attributes).
    attributes: Vec<Option<std::ops::Range<usize>>>,
    json: String,
    /// The identity subjects: position in the batch.
    identity_at: Vec<i64>,
}

impl<'a> Columns<'a> {
    fn of(batch: &'a [Touchpoint]) -> Result<Self> {
        let n = batch.len();
        let mut c = Columns {
            subject_id: Vec::with_capacity(n),
            identity_kind: Vec::with_capacity(n),
            identity_value: Vec::with_capacity(n),
            touchpoint_id: Vec::with_capacity(n),
            occurred_us: Vec::with_capacity(n),
            occurred_ns: Vec::with_capacity(n),
            channel: Vec::with_capacity(n),
            kind: Vec::with_capacity(n),
            source: Vec::with_capacity(n),
            survey_question: Vec::with_capacity(n),
            survey_score: Vec::with_capacity(n),
            survey_min: Vec::with_capacity(n),
            survey_max: Vec::with_capacity(n),
            attributes: Vec::with_capacity(n),
            json: String::new(),
            identity_at: Vec::new(),
        };
        let mut json = Vec::with_capacity(n * 64);
        for (i, t) in batch.iter().enumerate() {
            match &t.subject {
                Subject::Customer(id) => {
                    c.subject_id.push(Some(id.as_str()));
                    c.identity_kind.push(None);
                    c.identity_value.push(None);
                }
                Subject::Identity(identity) => {
                    c.subject_id.push(None);
                    c.identity_kind.push(Some(identity.kind.as_str()));
                    c.identity_value.push(Some(identity.value.as_str()));
                    c.identity_at.push(i64::try_from(i).unwrap_or(i64::MAX));
                }
            }
            c.touchpoint_id.push(t.id.as_str());
            let (us, ns) = codec::split(t.occurred_at);
            c.occurred_us.push(us);
            c.occurred_ns.push(ns);
            c.channel.push(t.channel.as_str());
            c.kind.push(t.kind.as_str());
            c.source.push(t.source.as_deref());
            let start = json.len();
            c.attributes.push(
                codec::write_attributes_json(&t.attributes, &mut json)?.then(|| start..json.len()),
            );
            let survey = t.survey.as_ref();
            c.survey_question.push(survey.map(|s| s.question.as_str()));
            c.survey_score.push(survey.map(|s| s.score));
            c.survey_min.push(survey.map(|s| s.scale.min));
            c.survey_max.push(survey.map(|s| s.scale.max));
        }
        c.json = String::from_utf8(json).map_err(|e| Error::Storage {
            backend: "postgres",
            message: format!("cannot serialise attributes: {e}"),
            source: Some(Box::new(e)),
        })?;
        Ok(c)
    }

    /// The attributes column: slices of `json`.
    fn attributes(&self) -> Vec<Option<&str>> {
        self.attributes
            .iter()
            .map(|r| r.clone().and_then(|r| self.json.get(r)))
            .collect()
    }
}

/// The columns every touchpoint read selects, in the order [`touchpoint_from`] reads them.
pub(crate) const TOUCHPOINT_COLUMNS: &str = "customer_id, touchpoint_id, occurred_us, \
     occurred_ns, channel, kind, source, attributes::text, survey_question, survey_score, \
     survey_min, survey_max";

/// A touchpoint from a row of [`TOUCHPOINT_COLUMNS`] (from column `at` on).
pub(crate) fn touchpoint_from(row: &Row, at: usize) -> Result<Touchpoint> {
    let customer: &str = get(row, at)?;
    let id: &str = get(row, at + 1)?;
    let occurred = codec::join(get(row, at + 2)?, get(row, at + 3)?)?;
    let mut t = Touchpoint::new(
        TouchpointId::new(id),
        CustomerId::new(customer),
        codec::channel(get(row, at + 4)?),
        Kind::new(get::<&str>(row, at + 5)?),
        occurred,
    );
    t.source = get::<Option<&str>>(row, at + 6)?.map(Into::into);
    t.attributes = codec::attributes_from(get(row, at + 7)?)?;
    let question: Option<&str> = get(row, at + 8)?;
    if let Some(question) = question {
        t.survey = Some(SurveyAnswer::new(
            question,
            get(row, at + 9)?,
            Scale::new(get(row, at + 10)?, get(row, at + 11)?),
        ));
    }
    Ok(t)
}

/// `(occurred_us, occurred_ns)` in `[$s_us, $s_ns) .. ($e_us, $e_ns)`, for parameters `first` on.
fn in_range(first: usize) -> String {
    let (a, b, c, d) = (first, first + 1, first + 2, first + 3);
    format!(
        "(occurred_us, occurred_ns) >= (${a}, ${b}) AND (occurred_us, occurred_ns) < (${c}, ${d})"
    )
}

impl PostgresStore {
    /// Inserts a validated batch in one transaction: the identity subjects checked, then one
    /// `INSERT ... SELECT ... FROM unnest(...) ON CONFLICT DO NOTHING`.
    async fn insert_batch(
        &self,
        conn: &mut crate::Conn,
        batch: &[Touchpoint],
    ) -> Result<AppendReport> {
        let doing = "append touchpoints";
        let c = Columns::of(batch)?;
        let attributes = c.attributes();
        let tx = self.begin(conn, false, doing).await?;
        if !c.identity_at.is_empty() {
            let kinds: Vec<Option<&str>> = c
                .identity_at
                .iter()
                .map(|&i| at(&c.identity_kind, i))
                .collect();
            let values: Vec<Option<&str>> = c
                .identity_at
                .iter()
                .map(|&i| at(&c.identity_value, i))
                .collect();
            let unresolved = self
                .query(
                    &tx,
                    FIND_UNRESOLVED,
                    &[&c.identity_at, &kinds, &values],
                    doing,
                )
                .await?;
            if let Some(row) = unresolved.first() {
                let (i, kind): (i64, &str) = (get(row, 0)?, get(row, 1)?);
                let id = usize::try_from(i)
                    .ok()
                    .and_then(|i| batch.get(i))
                    .map_or("", |t| t.id.as_str());
                // Name the kind only: identity values are personal data.
                return Err(Error::validation(
                    format!("touchpoint {id:?} (#{i} in batch)"),
                    "subject.identity",
                    format!("{kind} identity resolves to no customer"),
                ));
            }
        }
        let inserted = self
            .execute(
                &tx,
                INSERT_BATCH,
                &[
                    &c.subject_id,
                    &c.identity_kind,
                    &c.identity_value,
                    &c.touchpoint_id,
                    &c.occurred_us,
                    &c.occurred_ns,
                    &c.channel,
                    &c.kind,
                    &c.source,
                    &attributes,
                    &c.survey_question,
                    &c.survey_score,
                    &c.survey_min,
                    &c.survey_max,
                ],
                doing,
            )
            .await?;
        self.commit(tx, doing).await?;
        let total = batch.len() as u64;
        Ok(AppendReport::new(inserted, total.saturating_sub(inserted)))
    }
}

/// Element `i` of a column (`None` out of range: never, the columns have the batch's length).
fn at<'a>(column: &[Option<&'a str>], i: i64) -> Option<&'a str> {
    usize::try_from(i)
        .ok()
        .and_then(|i| column.get(i))
        .copied()
        .flatten()
}

#[async_trait]
impl TouchpointStore for PostgresStore {
    async fn append_touchpoints(&self, batch: Vec<Touchpoint>) -> Result<AppendReport> {
        // 1. Validate everything before touching the database.
        for (i, t) in batch.iter().enumerate() {
            t.validate_in_batch(i)?;
            if let Some(field) = codec::nul_in(&t.attributes) {
                return Err(codec::nul_error(
                    format!("touchpoint {:?} (#{i} in batch)", t.id.as_str()),
                    format!("attributes.{field}"),
                ));
            }
        }
        if batch.is_empty() {
            return Ok(AppendReport::default());
        }

        // 2. One transaction: check identities, insert. (A connection that fails on the way is
        // not handed out again: see `PostgresStore::err`.)
        let mut conn = self.conn().await?;
        self.insert_batch(&mut conn, &batch).await
    }

    async fn customer_touchpoints(
        &self,
        customer: &CustomerId,
        range: TimeRange,
    ) -> Result<Vec<Touchpoint>> {
        if range.is_empty() {
            return Ok(Vec::new());
        }
        let b = Bounds::of(&range);
        let conn = self.conn().await?;
        let rows = self
            .query(
                &conn,
                &format!(
                    "SELECT {TOUCHPOINT_COLUMNS} FROM touchpoints
                     WHERE customer_id = {CANONICAL} AND {}
                     ORDER BY occurred_us, occurred_ns, touchpoint_id",
                    in_range(2)
                ),
                &[
                    &customer.as_str(),
                    &b.start_us,
                    &b.start_ns,
                    &b.end_us,
                    &b.end_ns,
                ],
                "read a customer's touchpoints",
            )
            .await?;
        rows.iter().map(|r| touchpoint_from(r, 0)).collect()
    }

    async fn scan_touchpoints(&self, query: &ScanQuery) -> Result<ScanPage> {
        let filter = &query.filter;
        let limit = query.limit.max(1);
        let b = Bounds::of(&filter.range);
        let kinds: Vec<&str> = filter.kinds.iter().map(Kind::as_str).collect();
        let channels: Vec<&str> = filter.channels.iter().map(|c| c.as_str()).collect();
        let fetch = i64::try_from(limit).unwrap_or(i64::MAX).saturating_add(1);
        let conn = self.conn().await?;
        let doing = "scan touchpoints";
        let base = format!(
            "SELECT {TOUCHPOINT_COLUMNS} FROM touchpoints
             WHERE {} AND (cardinality($5::text[]) = 0 OR kind = ANY($5::text[]))
               AND (cardinality($6::text[]) = 0 OR channel = ANY($6::text[]))",
            in_range(1)
        );
        let order = "ORDER BY occurred_us, occurred_ns, customer_id, touchpoint_id LIMIT $7";
        let rows = match &query.after {
            None => {
                self.query(
                    &conn,
                    &format!("{base} {order}"),
                    &[
                        &b.start_us,
                        &b.start_ns,
                        &b.end_us,
                        &b.end_ns,
                        &kinds,
                        &channels,
                        &fetch,
                    ],
                    doing,
                )
                .await?
            }
            Some(cursor) => {
                let (us, ns) = codec::split(cursor.occurred_at);
                self.query(
                    &conn,
                    &format!(
                        "{base} AND (occurred_us, occurred_ns, customer_id, touchpoint_id)
                                  > ($8, $9, $10, $11) {order}"
                    ),
                    &[
                        &b.start_us,
                        &b.start_ns,
                        &b.end_us,
                        &b.end_ns,
                        &kinds,
                        &channels,
                        &fetch,
                        &us,
                        &ns,
                        &cursor.customer.as_str(),
                        &cursor.id.as_str(),
                    ],
                    doing,
                )
                .await?
            }
        };
        let more = rows.len() > limit;
        let touchpoints = rows
            .iter()
            .take(limit)
            .map(|r| touchpoint_from(r, 0))
            .collect::<Result<Vec<_>>>()?;
        let next = if more {
            touchpoints.last().map(|t| ScanCursor {
                occurred_at: t.occurred_at,
                customer: t.customer_id().cloned().unwrap_or_default(),
                id: t.id.clone(),
            })
        } else {
            None
        };
        Ok(ScanPage::new(touchpoints, next))
    }

    async fn aggregate_touchpoints(&self, query: &AggregateQuery) -> Result<Vec<AggregateRow>> {
        let filter = &query.filter;
        let b = Bounds::of(&filter.range);
        let kinds: Vec<&str> = filter.kinds.iter().map(Kind::as_str).collect();
        let channels: Vec<&str> = filter.channels.iter().map(|c| c.as_str()).collect();
        // Buckets in microseconds; weeks start on Monday, and 1970-01-01 was a Thursday.
        const DAY: i64 = 86_400_000_000;
        let (span, offset): (i64, i64) = match query.bucket {
            None => (0, 0),
            Some(Bucket::Hour) => (3_600_000_000, 0),
            Some(Bucket::Day) => (DAY, 0),
            Some(Bucket::Week) => (7 * DAY, -3 * DAY),
        };
        let conn = self.conn().await?;
        let rows = self
            .query(
                &conn,
                &format!(
                    "SELECT CASE WHEN $7::bigint > 0 THEN occurred_us
                                 - mod(mod(occurred_us - $8::bigint, $7) + $7, $7) END,
                            CASE WHEN $9::boolean THEN channel END,
                            CASE WHEN $10::boolean THEN kind END,
                            count(*), count(DISTINCT customer_id)
                     FROM touchpoints
                     WHERE {} AND (cardinality($5::text[]) = 0 OR kind = ANY($5::text[]))
                       AND (cardinality($6::text[]) = 0 OR channel = ANY($6::text[]))
                     GROUP BY 1, 2, 3",
                    in_range(1)
                ),
                &[
                    &b.start_us,
                    &b.start_ns,
                    &b.end_us,
                    &b.end_ns,
                    &kinds,
                    &channels,
                    &span,
                    &offset,
                    &query.by_channel,
                    &query.by_kind,
                ],
                "aggregate touchpoints",
            )
            .await?;
        let mut out = Vec::with_capacity(rows.len().max(1));
        for r in &rows {
            let bucket = get::<Option<i64>>(r, 0)?
                .map(|us| codec::join(us, 0))
                .transpose()?;
            out.push(AggregateRow::new(
                bucket,
                get::<Option<&str>>(r, 1)?.map(codec::channel),
                get::<Option<&str>>(r, 2)?.map(Kind::new),
                count(get(r, 3)?),
                count(get(r, 4)?),
            ));
        }
        // The contract's order is cx's own (channels in enum order), so sort here: there are
        // few groups.
        out.sort_by(|x, y| (x.bucket, &x.channel, &x.kind).cmp(&(y.bucket, &y.channel, &y.kind)));
        let grouped = query.by_channel || query.by_kind || query.bucket.is_some();
        if out.is_empty() && !grouped {
            out.push(AggregateRow::new(None, None, None, 0, 0));
        }
        Ok(out)
    }
}
