//! The touchpoint log: ingest through binary `COPY` into a staging table, per-customer reads,
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
use futures_util::pin_mut;
use tokio_postgres::Row;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{ToSql, Type};

/// The per-connection staging table a batch is copied into (emptied at every commit).
const CREATE_STAGING: &str = "CREATE TEMP TABLE IF NOT EXISTS cx_staging_touchpoints (
    ord             integer NOT NULL,
    subject_id      text COLLATE \"C\",
    identity_kind   text COLLATE \"C\",
    identity_value  text COLLATE \"C\",
    touchpoint_id   text COLLATE \"C\" NOT NULL,
    occurred_us     bigint NOT NULL,
    occurred_ns     smallint NOT NULL,
    channel         text COLLATE \"C\" NOT NULL,
    kind            text COLLATE \"C\" NOT NULL,
    source          text COLLATE \"C\",
    attributes      text,
    survey_question text COLLATE \"C\",
    survey_score    double precision,
    survey_min      double precision,
    survey_max      double precision
) ON COMMIT DELETE ROWS";

const COPY_STAGING: &str = "COPY cx_staging_touchpoints (ord, subject_id, identity_kind,
    identity_value, touchpoint_id, occurred_us, occurred_ns, channel, kind, source, attributes,
    survey_question, survey_score, survey_min, survey_max) FROM STDIN (FORMAT binary)";

const STAGING_TYPES: [Type; 15] = [
    Type::INT4,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::INT8,
    Type::INT2,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::FLOAT8,
    Type::FLOAT8,
    Type::FLOAT8,
];

/// The first staged identity subject that resolves to no customer.
const FIND_UNRESOLVED: &str = "SELECT s.ord, s.touchpoint_id, s.identity_kind
    FROM cx_staging_touchpoints s
    WHERE s.subject_id IS NULL
      AND NOT EXISTS (SELECT 1 FROM customer_identities i
                      WHERE i.kind = s.identity_kind AND i.value = s.identity_value)
    ORDER BY s.ord LIMIT 1";

/// Moves the staged batch in: subjects resolved (aliases by a join, identities by an index
/// probe, made only for identity subjects), duplicates of stored keys skipped.
///
/// Rows go in in key order, `(customer, touchpoint id)`, then batch order: repeated keys are
/// adjacent and the first in the batch wins, and the primary key's pages are visited in order
/// rather than at random for every row.
const MOVE_STAGED: &str = "INSERT INTO touchpoints (customer_id, touchpoint_id, occurred_us,
        occurred_ns, channel, kind, source, attributes, survey_question, survey_score,
        survey_min, survey_max)
    SELECT coalesce(a.customer_id, s.subject_id,
                    (SELECT i.customer_id FROM customer_identities i
                     WHERE i.kind = s.identity_kind AND i.value = s.identity_value)),
        s.touchpoint_id, s.occurred_us, s.occurred_ns, s.channel, s.kind, s.source,
        s.attributes::jsonb, s.survey_question, s.survey_score, s.survey_min, s.survey_max
    FROM cx_staging_touchpoints s
    LEFT JOIN customer_aliases a ON a.alias_id = s.subject_id
    ORDER BY 1, 2, s.ord
    ON CONFLICT DO NOTHING";

/// The fast path's check (`$1` subject ids, `$2`/`$3` identity kinds and values, `$4` touchpoint
/// ids, element `i` of each for touchpoint `i`): the touchpoints with an identity subject, or
/// whose subject id is an alias, or whose key is stored, with their customer (NULL: the identity
/// resolves to no one). None in the common case.
const CHECK_BATCH: &str = "SELECT s.ord - 1, r.customer_id,
        EXISTS (SELECT 1 FROM touchpoints t
                WHERE t.customer_id = r.customer_id AND t.touchpoint_id = s.id COLLATE \"C\")
    FROM unnest($1::text[], $2::text[], $3::text[], $4::text[])
         WITH ORDINALITY AS s(subject_id, identity_kind, identity_value, id, ord)
    CROSS JOIN LATERAL (SELECT coalesce(
        (SELECT a.customer_id FROM customer_aliases a WHERE a.alias_id = s.subject_id COLLATE \"C\"),
        s.subject_id COLLATE \"C\",
        (SELECT i.customer_id FROM customer_identities i
         WHERE i.kind = s.identity_kind COLLATE \"C\" AND i.value = s.identity_value COLLATE \"C\"))
        AS customer_id) r
    WHERE s.subject_id IS NULL OR r.customer_id IS DISTINCT FROM s.subject_id COLLATE \"C\"
       OR EXISTS (SELECT 1 FROM touchpoints t
                  WHERE t.customer_id = r.customer_id AND t.touchpoint_id = s.id COLLATE \"C\")
    ORDER BY s.ord";

/// The fast path: the new touchpoints copied straight into the table.
const COPY_TOUCHPOINTS: &str = "COPY touchpoints (customer_id, touchpoint_id, occurred_us,
    occurred_ns, channel, kind, source, attributes, survey_question, survey_score, survey_min,
    survey_max) FROM STDIN (FORMAT binary)";

const TOUCHPOINT_TYPES: [Type; 12] = [
    Type::TEXT,
    Type::TEXT,
    Type::INT8,
    Type::INT2,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::JSONB,
    Type::TEXT,
    Type::FLOAT8,
    Type::FLOAT8,
    Type::FLOAT8,
];

/// Why the fast path's copy stopped: the server's error (a unique violation sends the batch
/// down the staging path) or ours (encoding an attribute).
enum CopyFailed {
    Db(tokio_postgres::Error),
    Cx(Error),
}

impl From<Error> for CopyFailed {
    fn from(e: Error) -> Self {
        CopyFailed::Cx(e)
    }
}

/// JSON text as a `jsonb` value in binary form (format version 1, then the text).
#[derive(Debug)]
struct JsonbText<'a>(&'a str);

impl ToSql for JsonbText<'_> {
    fn to_sql(
        &self,
        _: &Type,
        out: &mut bytes::BytesMut,
    ) -> std::result::Result<tokio_postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>>
    {
        use bytes::BufMut;
        out.put_u8(1);
        out.put_slice(self.0.as_bytes());
        Ok(tokio_postgres::types::IsNull::No)
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::JSONB
    }

    tokio_postgres::types::to_sql_checked!();
}

/// The survey columns of a touchpoint row: question, score, scale min and max (all NULL
/// without an answer).
fn survey_columns(t: &Touchpoint) -> (Option<&str>, Option<f64>, Option<f64>, Option<f64>) {
    let survey = t.survey.as_ref();
    (
        survey.map(|s| s.question.as_str()),
        survey.map(|s| s.score),
        survey.map(|s| s.scale.min),
        survey.map(|s| s.scale.max),
    )
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
    /// The fast path, in one transaction: check which touchpoints need more than a plain copy
    /// (one statement, answering nothing in the common case), then copy the new ones straight
    /// into the table, as `COPY` alone does (the server inserts its rows in bulk, without the
    /// per-row conflict handling of `INSERT ... ON CONFLICT`). `Ok(None)`: a concurrent writer
    /// stored one of the keys between the check and the copy (nothing is kept); the caller
    /// takes the staging path, whose `ON CONFLICT DO NOTHING` settles it.
    async fn copy_direct(
        &self,
        conn: &mut crate::Conn,
        batch: &[Touchpoint],
    ) -> Result<Option<AppendReport>> {
        let doing = "append touchpoints";
        let n = batch.len();
        let (mut subjects, mut kinds, mut values, mut ids) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        for t in batch {
            match &t.subject {
                Subject::Customer(id) => {
                    subjects.push(Some(id.as_str()));
                    kinds.push(None);
                    values.push(None);
                }
                Subject::Identity(identity) => {
                    subjects.push(None);
                    kinds.push(Some(identity.kind.as_str()));
                    values.push(Some(identity.value.as_str()));
                }
            }
            ids.push(t.id.as_str());
        }
        let copy = conn
            .prepare_cached(COPY_TOUCHPOINTS)
            .await
            .map_err(self.err(doing))?;
        let tx = self.begin(conn, false, doing).await?;
        let special = self
            .query(&tx, CHECK_BATCH, &[&subjects, &kinds, &values, &ids], doing)
            .await?;
        // Each touchpoint's customer, `None` when it is skipped (stored key).
        let mut customers: Vec<Option<&str>> = subjects.clone();
        for row in &special {
            let i = usize::try_from(get::<i64>(row, 0)?).unwrap_or(usize::MAX);
            let customer: Option<&str> = get(row, 1)?;
            let stored: bool = get(row, 2)?;
            let (Some(slot), Some(t)) = (customers.get_mut(i), batch.get(i)) else {
                return Err(codec::corrupt(format!("batch check named touchpoint #{i}")));
            };
            let Some(customer) = customer else {
                let kind = match &t.subject {
                    Subject::Identity(identity) => identity.kind.as_str(),
                    Subject::Customer(_) => "customer",
                };
                // Name the kind only: identity values are personal data.
                return Err(Error::validation(
                    format!("touchpoint {:?} (#{i} in batch)", t.id.as_str()),
                    "subject.identity",
                    format!("{kind} identity resolves to no customer"),
                ));
            };
            *slot = (!stored).then_some(customer);
        }
        // Repeated keys within the batch: the first wins.
        let mut seen = std::collections::HashSet::with_capacity(n);
        for (slot, t) in customers.iter_mut().zip(batch) {
            if let Some(customer) = *slot
                && !seen.insert((customer, t.id.as_str()))
            {
                *slot = None;
            }
        }
        self.trips(1);
        let sink = tx.copy_in(&copy).await.map_err(self.err(doing))?;
        // A concurrent writer's row with one of the keys (committed after the check) makes the
        // server refuse the copy, while the rows stream or when they end: either way, nothing
        // is kept and the staging path takes the batch.
        let copied = async {
            let writer = BinaryCopyInWriter::new(sink, &TOUCHPOINT_TYPES);
            pin_mut!(writer);
            let mut json = String::new();
            for (customer, t) in customers.iter().zip(batch) {
                let Some(customer) = customer else { continue };
                let (us, ns) = codec::split(t.occurred_at);
                json.clear();
                let attributes = if t.attributes.is_empty() {
                    None
                } else {
                    json.push_str(&codec::attributes_json(&t.attributes)?.unwrap_or_default());
                    Some(JsonbText(&json))
                };
                let (question, score, min, max) = survey_columns(t);
                let row: [&(dyn ToSql + Sync); 12] = [
                    customer,
                    &t.id.as_str(),
                    &us,
                    &ns,
                    &t.channel.as_str(),
                    &t.kind.as_str(),
                    &t.source.as_deref(),
                    &attributes,
                    &question,
                    &score,
                    &min,
                    &max,
                ];
                writer.as_mut().write(&row).await.map_err(CopyFailed::Db)?;
            }
            writer.finish().await.map_err(CopyFailed::Db)
        };
        let inserted = match copied.await {
            Ok(n) => n,
            Err(CopyFailed::Db(e))
                if e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) =>
            {
                return Ok(None);
            }
            Err(CopyFailed::Db(e)) => return Err(self.err(doing)(e)),
            Err(CopyFailed::Cx(e)) => return Err(e),
        };
        self.commit(tx, doing).await?;
        let total = batch.len() as u64;
        Ok(Some(AppendReport::new(
            inserted,
            total.saturating_sub(inserted),
        )))
    }

    /// Copies a validated batch into the staging table and moves it in, in one transaction.
    async fn stage_and_move(
        &self,
        conn: &mut crate::Conn,
        batch: &[Touchpoint],
        has_identities: bool,
    ) -> Result<AppendReport> {
        let doing = "append touchpoints";
        conn.batch_execute(CREATE_STAGING)
            .await
            .map_err(self.err(doing))?;
        let copy = conn
            .prepare_cached(COPY_STAGING)
            .await
            .map_err(self.err(doing))?;
        let tx = self.begin(conn, false, doing).await?;
        self.trips(2);
        let sink = tx.copy_in(&copy).await.map_err(self.err(doing))?;
        let writer = BinaryCopyInWriter::new(sink, &STAGING_TYPES);
        pin_mut!(writer);
        for (i, t) in batch.iter().enumerate() {
            let ord = i32::try_from(i).map_err(|_| {
                Error::validation(
                    "touchpoint batch",
                    "len",
                    "holds more than 2^31 touchpoints",
                )
            })?;
            let (subject_id, identity_kind, identity_value) = match &t.subject {
                Subject::Customer(id) => (Some(id.as_str()), None, None),
                Subject::Identity(identity) => (
                    None,
                    Some(identity.kind.as_str()),
                    Some(identity.value.as_str()),
                ),
            };
            let (us, ns) = codec::split(t.occurred_at);
            let attributes = codec::attributes_json(&t.attributes)?;
            let (question, score, min, max) = survey_columns(t);
            let row: [&(dyn ToSql + Sync); 15] = [
                &ord,
                &subject_id,
                &identity_kind,
                &identity_value,
                &t.id.as_str(),
                &us,
                &ns,
                &t.channel.as_str(),
                &t.kind.as_str(),
                &t.source.as_deref(),
                &attributes,
                &question,
                &score,
                &min,
                &max,
            ];
            writer.as_mut().write(&row).await.map_err(self.err(doing))?;
        }
        writer.finish().await.map_err(self.err(doing))?;

        if has_identities {
            let unresolved = self.query(&tx, FIND_UNRESOLVED, &[], doing).await?;
            if let Some(row) = unresolved.first() {
                let (ord, id, kind): (i32, &str, &str) = (get(row, 0)?, get(row, 1)?, get(row, 2)?);
                // Name the kind only: identity values are personal data.
                return Err(Error::validation(
                    format!("touchpoint {id:?} (#{ord} in batch)"),
                    "subject.identity",
                    format!("{kind} identity resolves to no customer"),
                ));
            }
        }
        let inserted = self.execute(&tx, MOVE_STAGED, &[], doing).await?;
        self.commit(tx, doing).await?;
        let total = batch.len() as u64;
        Ok(AppendReport::new(inserted, total.saturating_sub(inserted)))
    }
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
        let has_identities = batch
            .iter()
            .any(|t| matches!(t.subject, Subject::Identity(_)));

        // 2. One transaction: stage with binary COPY, check identities, move in. (A connection
        // that fails on the way is not handed out again: see `PostgresStore::err`.)
        let mut conn = self.conn().await?;
        if let Some(report) = self.copy_direct(&mut conn, &batch).await? {
            return Ok(report);
        }
        self.stage_and_move(&mut conn, &batch, has_identities).await
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
