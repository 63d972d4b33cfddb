//! Follow-up cases: the [`FollowUpStore`] implementation. Filters, ordering and SLA counts are
//! SQL.

use crate::PostgresStore;
use crate::codec::{self, Bounds, count, get};
use async_trait::async_trait;
use cx_core::model::{
    CaseId, CustomerId, FollowUpCase, FollowUpRuleId, JourneyId, Name, OwnerId, StageId, Timestamp,
    TouchpointId,
};
use cx_core::store::{CaseQuery, FollowUpStore, SlaCounts};
use cx_core::{Error, Result};
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

/// The columns every case read selects, in the order [`case_from`] reads them.
const CASE_COLUMNS: &str = "customer_id, case_id, rule_id, touchpoint_id, question, score, \
     owner_id, journey_id, stage_id, opened_us, opened_ns, due_us, due_ns, closed_us, \
     closed_ns, note";

fn case_from(row: &Row, at: usize) -> Result<FollowUpCase> {
    let journey: Option<&str> = get(row, at + 7)?;
    let stage: Option<&str> = get(row, at + 8)?;
    let opened = codec::join(get(row, at + 9)?, get(row, at + 10)?)?;
    let mut case = FollowUpCase::open(
        FollowUpRuleId::new(get::<&str>(row, at + 2)?),
        CustomerId::new(get::<&str>(row, at)?),
        TouchpointId::new(get::<&str>(row, at + 3)?),
        Name::new(get::<&str>(row, at + 4)?),
        get(row, at + 5)?,
        OwnerId::new(get::<&str>(row, at + 6)?),
        journey
            .zip(stage)
            .map(|(j, s)| (JourneyId::new(j), StageId::new(s))),
        opened,
        cx_core::model::Span::ZERO,
    );
    // The stored id and deadline, not those `open` derives.
    case.id = CaseId::new(get::<&str>(row, at + 1)?);
    case.due_at = codec::join(get(row, at + 11)?, get(row, at + 12)?)?;
    let closed_us: Option<i64> = get(row, at + 13)?;
    let closed_ns: Option<i16> = get(row, at + 14)?;
    case.closed_at = closed_us
        .map(|us| codec::join(us, closed_ns.unwrap_or(0)))
        .transpose()?;
    case.note = get::<Option<&str>>(row, at + 15)?.map(str::to_owned);
    Ok(case)
}

/// The filter of a [`CaseQuery`], over parameters `$1`-`$8`: the opening range, the owner, the
/// customer (resolved), open only, the customer set.
const MATCHING: &str = "(opened_us, opened_ns) >= ($1, $2) AND (opened_us, opened_ns) < ($3, $4)
    AND ($5::text IS NULL OR owner_id = $5)
    AND ($6::text IS NULL OR customer_id = coalesce(
            (SELECT a.customer_id FROM customer_aliases a WHERE a.alias_id = $6), $6))
    AND (NOT $7::boolean OR closed_us IS NULL)
    AND ($8::text[] IS NULL OR customer_id = ANY($8::text[]))";

impl PostgresStore {
    /// The rows of `select`, a statement over the cases matching `query` (`{MATCHING}` stands
    /// for the filter; with `as_of`, `$9` and `$10` are `query.as_of`).
    async fn case_rows(
        &self,
        query: &CaseQuery,
        select: &str,
        as_of: bool,
        doing: &str,
    ) -> Result<Vec<Row>> {
        let b = Bounds::of(&query.opened);
        let owner = query.owner.as_ref().map(OwnerId::as_str);
        let customer = query.customer.as_ref().map(CustomerId::as_str);
        let customers: Option<Vec<&str>> = query
            .customers
            .as_ref()
            .map(|c| c.iter().map(CustomerId::as_str).collect());
        let (as_of_us, as_of_ns) = codec::split(query.as_of);
        let params: [&(dyn ToSql + Sync); 10] = [
            &b.start_us,
            &b.start_ns,
            &b.end_us,
            &b.end_ns,
            &owner,
            &customer,
            &query.open_only,
            &customers,
            &as_of_us,
            &as_of_ns,
        ];
        let params: &[&(dyn ToSql + Sync)] = if as_of {
            &params
        } else {
            params.get(..8).unwrap_or(&params)
        };
        let conn = self.conn().await?;
        self.query(
            &conn,
            &select.replace("{MATCHING}", MATCHING),
            params,
            doing,
        )
        .await
    }
}

#[async_trait]
impl FollowUpStore for PostgresStore {
    /// One statement: customers resolved through the aliases, the first of repeated ids kept,
    /// stored ids skipped (`ON CONFLICT DO NOTHING` on the case id's unique index).
    async fn open_cases(&self, cases: Vec<FollowUpCase>) -> Result<u64> {
        if cases.is_empty() {
            return Ok(0);
        }
        let doing = "open follow-up cases";
        let mut c = OpenColumns::default();
        for case in &cases {
            c.add(case);
        }
        let mut conn = self.conn().await?;
        let tx = self.begin(&mut conn, false, doing).await?;
        let new = self
            .execute(
                &tx,
                "INSERT INTO follow_up_cases (customer_id, case_id, rule_id, touchpoint_id,
                     question, score, owner_id, journey_id, stage_id, opened_us, opened_ns,
                     due_us, due_ns, closed_us, closed_ns, note)
                 SELECT coalesce(a.customer_id, u.customer), u.id, u.rule, u.touchpoint,
                        u.question, u.score, u.owner, u.journey, u.stage, u.ous, u.ons, u.dus,
                        u.dns, u.cus, u.cns, u.note
                 FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
                             $6::float8[], $7::text[], $8::text[], $9::text[], $10::bigint[],
                             $11::smallint[], $12::bigint[], $13::smallint[], $14::bigint[],
                             $15::smallint[], $16::text[]) WITH ORDINALITY
                      AS u(customer, id, rule, touchpoint, question, score, owner, journey,
                           stage, ous, ons, dus, dns, cus, cns, note, ord)
                 LEFT JOIN customer_aliases a ON a.alias_id = u.customer
                 ORDER BY u.ord
                 ON CONFLICT DO NOTHING",
                &[
                    &c.customer,
                    &c.id,
                    &c.rule,
                    &c.touchpoint,
                    &c.question,
                    &c.score,
                    &c.owner,
                    &c.journey,
                    &c.stage,
                    &c.ous,
                    &c.ons,
                    &c.dus,
                    &c.dns,
                    &c.cus,
                    &c.cns,
                    &c.note,
                ],
                doing,
            )
            .await?;
        self.commit(tx, doing).await?;
        Ok(new)
    }

    /// One statement: the case is locked, checked and closed together; the returned flags say
    /// why nothing changed when nothing did.
    async fn close_case(
        &self,
        id: &CaseId,
        at: Timestamp,
        note: Option<String>,
    ) -> Result<FollowUpCase> {
        let (us, ns) = codec::split(at);
        let conn = self.conn().await?;
        let rows = self
            .query(
                &conn,
                &format!(
                    "WITH c AS (SELECT {CASE_COLUMNS} FROM follow_up_cases
                                WHERE case_id = $1 FOR UPDATE),
                          u AS (UPDATE follow_up_cases f
                                SET closed_us = $2, closed_ns = $3, note = $4
                                FROM c
                                WHERE f.customer_id = c.customer_id AND f.case_id = c.case_id
                                  AND c.closed_us IS NULL
                                  AND (c.opened_us, c.opened_ns) <= ($2, $3)
                                RETURNING 1)
                     SELECT {CASE_COLUMNS}, (SELECT count(*) FROM u) FROM c"
                ),
                &[&id.as_str(), &us, &ns, &note],
                "close a follow-up case",
            )
            .await?;
        let Some(row) = rows.first() else {
            return Err(Error::not_found("follow-up case", id.as_str()));
        };
        let mut case = case_from(row, 0)?;
        if get::<i64>(row, 16)? > 0 {
            case.closed_at = Some(at);
            case.note = note;
            return Ok(case);
        }
        if case.closed_at.is_some() {
            return Err(Error::conflict(
                "follow-up case",
                id.as_str(),
                "is closed already",
            ));
        }
        Err(Error::validation(
            format!("follow-up case {:?}", id.as_str()),
            "closed_at",
            "is before the case was opened",
        ))
    }

    async fn cases(&self, query: &CaseQuery) -> Result<Vec<FollowUpCase>> {
        let rows = self
            .case_rows(
                query,
                &format!(
                    "SELECT {CASE_COLUMNS} FROM follow_up_cases WHERE {{MATCHING}}
                     ORDER BY opened_us, opened_ns, case_id"
                ),
                false,
                "read follow-up cases",
            )
            .await?;
        rows.iter().map(|r| case_from(r, 0)).collect()
    }

    /// The four counts in one aggregate.
    async fn case_sla(&self, query: &CaseQuery) -> Result<SlaCounts> {
        let rows = self
            .case_rows(
                query,
                "SELECT
                   count(*) FILTER (WHERE closed_us IS NOT NULL
                                    AND (closed_us, closed_ns) <= (due_us, due_ns)),
                   count(*) FILTER (WHERE closed_us IS NOT NULL
                                    AND (closed_us, closed_ns) > (due_us, due_ns)),
                   count(*) FILTER (WHERE closed_us IS NULL
                                    AND ($9::bigint, $10::smallint) > (due_us, due_ns)),
                   count(*) FILTER (WHERE closed_us IS NULL
                                    AND ($9::bigint, $10::smallint) <= (due_us, due_ns))
                 FROM follow_up_cases WHERE {MATCHING}",
                true,
                "count follow-up cases against their SLA",
            )
            .await?;
        let Some(r) = rows.first() else {
            return Ok(SlaCounts::default());
        };
        Ok(SlaCounts::new(
            count(get(r, 0)?),
            count(get(r, 1)?),
            count(get(r, 2)?),
            count(get(r, 3)?),
        ))
    }
}

/// A batch of cases, column by column (the `UNNEST` arrays).
#[derive(Default)]
struct OpenColumns<'a> {
    customer: Vec<&'a str>,
    id: Vec<&'a str>,
    rule: Vec<&'a str>,
    touchpoint: Vec<&'a str>,
    question: Vec<&'a str>,
    score: Vec<f64>,
    owner: Vec<&'a str>,
    journey: Vec<Option<&'a str>>,
    stage: Vec<Option<&'a str>>,
    ous: Vec<i64>,
    ons: Vec<i16>,
    dus: Vec<i64>,
    dns: Vec<i16>,
    cus: Vec<Option<i64>>,
    cns: Vec<Option<i16>>,
    note: Vec<Option<&'a str>>,
}

impl<'a> OpenColumns<'a> {
    fn add(&mut self, case: &'a FollowUpCase) {
        let (ous, ons) = codec::split(case.opened_at);
        let (dus, dns) = codec::split(case.due_at);
        let closed = case.closed_at.map(codec::split);
        self.customer.push(case.customer.as_str());
        self.id.push(case.id.as_str());
        self.rule.push(case.rule.as_str());
        self.touchpoint.push(case.touchpoint.as_str());
        self.question.push(case.question.as_str());
        self.score.push(case.score);
        self.owner.push(case.owner.as_str());
        self.journey
            .push(case.stage.as_ref().map(|(j, _)| j.as_str()));
        self.stage
            .push(case.stage.as_ref().map(|(_, s)| s.as_str()));
        self.ous.push(ous);
        self.ons.push(ons);
        self.dus.push(dus);
        self.dns.push(dns);
        self.cus.push(closed.map(|c| c.0));
        self.cns.push(closed.map(|c| c.1));
        self.note.push(case.note.as_deref());
    }
}
