//! The decision log and contact history: the [`DecisionStore`] implementation.

use crate::codec::{self, Bounds, count, get};
use crate::customers::CANONICAL;
use crate::{LOCK_DIRECTORY, PostgresStore, migrations};
use async_trait::async_trait;
use cx_core::model::{
    Category, ContactEvent, CustomerId, Decision, DecisionId, OfferId, Outcome, TimeRange,
};
use cx_core::store::{
    BudgetDraw, ContactCount, ContactKey, DecisionCommit, DecisionStore, OutcomeRecorded,
};
use cx_core::{Error, Result};
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

impl PostgresStore {
    /// [`Store::commit_decision`](cx_core::Store::commit_decision) in one statement, one round
    /// trip: `cx_commit_decision` (migration 6) takes the shared directory lock, records the
    /// decision and consumes the draws in one transaction, or rolls both back when a draw does
    /// not fit; when the id is taken, it returns the row under it instead.
    pub(crate) async fn commit_with_draws(
        &self,
        decision: &Decision,
        draws: &[BudgetDraw],
    ) -> Result<DecisionCommit> {
        decision.validate()?;
        let doing = "record a decision";
        // Counters are bigint: a limit above i64::MAX is no limit at all, an amount above it
        // can never be granted.
        let limits: Vec<i64> = draws
            .iter()
            .map(|d| i64::try_from(d.limit).unwrap_or(i64::MAX))
            .collect();
        let mut amounts = Vec::with_capacity(draws.len());
        for (i, draw) in draws.iter().enumerate() {
            match i64::try_from(draw.amount) {
                Ok(amount) => amounts.push(amount),
                Err(_) => return Ok(DecisionCommit::Refused(i)),
            }
        }
        let budgets: Vec<&str> = draws.iter().map(|d| d.key.budget.as_str()).collect();
        let periods: Vec<&str> = draws.iter().map(|d| d.key.period.as_str()).collect();
        let mut stored = decision.clone();
        // The log keeps what was decided; the explanation stays with the caller's copy.
        stored.explanation = Default::default();
        let body =
            serde_json::to_string(&stored).map_err(|e| codec::encode_error("decision", e))?;
        let offers = offers_json(&stored);
        let (us, ns) = codec::split(stored.at);
        let conn = self.conn().await?;
        let sql = "SELECT canonical, inserted, refused, old_customer, old_body
                   FROM cx_commit_decision($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)";
        let params: [&(dyn ToSql + Sync); 13] = [
            &stored.customer.as_str(),
            &stored.id.as_str(),
            &stored.channel.as_str(),
            &us,
            &ns,
            &offers,
            &body,
            &migrations::LOCK_CLASS,
            &LOCK_DIRECTORY,
            &budgets,
            &periods,
            &limits,
            &amounts,
        ];
        let rows = self.query(&conn, sql, &params, doing).await?;
        let row = rows
            .first()
            .ok_or_else(|| codec::corrupt("recording a decision returned no row".to_owned()))?;
        if get::<i64>(row, 1)? > 0 {
            return Ok(DecisionCommit::Recorded);
        }
        if let Some(refused) = get::<Option<i64>>(row, 2)? {
            let position = usize::try_from(refused)
                .ok()
                .and_then(|n| n.checked_sub(1))
                .filter(|&i| i < draws.len())
                .ok_or_else(|| {
                    codec::corrupt(format!("refused draw {refused} of {}", draws.len()))
                })?;
            return Ok(DecisionCommit::Refused(position));
        }
        // The id is taken: the same decision again is a no-op, another one a conflict.
        let same = match get::<Option<&str>>(row, 3)? {
            Some(customer) => {
                stored.customer = CustomerId::new(get::<&str>(row, 0)?);
                decision_from(customer, get(row, 4)?)? == stored
            }
            None => false,
        };
        if same {
            Ok(DecisionCommit::Recorded)
        } else {
            Err(Error::conflict(
                "decision",
                stored.id.as_str(),
                "another decision is already stored under this id",
            ))
        }
    }
}

/// The columns every contact-history read selects, in the order [`contact_from`] reads them.
pub(crate) const CONTACT_COLUMNS: &str =
    "customer_id, decision_id, offer_id, category, channel, kind, at_us, at_ns";

/// A contact event from a row of [`CONTACT_COLUMNS`] (from column `at` on).
pub(crate) fn contact_from(row: &Row, at: usize) -> Result<ContactEvent> {
    Ok(ContactEvent {
        customer: CustomerId::new(get::<&str>(row, at)?),
        decision: DecisionId::new(get::<&str>(row, at + 1)?),
        offer: OfferId::new(get::<&str>(row, at + 2)?),
        category: Category::new(get::<&str>(row, at + 3)?),
        channel: codec::channel(get(row, at + 4)?),
        kind: codec::outcome_kind(get(row, at + 5)?)?,
        at: codec::join(get(row, at + 6)?, get(row, at + 7)?)?,
    })
}

/// A stored decision: the body, under the customer of the row (merges move the row).
fn decision_from(customer: &str, body: &str) -> Result<Decision> {
    let mut d: Decision =
        serde_json::from_str(body).map_err(|e| codec::decode_error("decision", e))?;
    d.customer = CustomerId::new(customer);
    Ok(d)
}

/// What an outcome needs of its decision's chosen offers: `[{"offer": .., "category": ..}]`.
fn offers_json(d: &Decision) -> String {
    let offers: Vec<serde_json::Value> = d
        .offers
        .iter()
        .map(|s| serde_json::json!({ "offer": s.offer.as_str(), "category": s.category.as_str() }))
        .collect();
    serde_json::Value::Array(offers).to_string()
}

#[async_trait]
impl DecisionStore for PostgresStore {
    async fn record_decision(&self, decision: &Decision) -> Result<()> {
        self.commit_with_draws(decision, &[]).await.map(|_| ())
    }

    async fn decision(&self, id: &DecisionId) -> Result<Option<Decision>> {
        let conn = self.conn().await?;
        let rows = self
            .query(
                &conn,
                "SELECT customer_id, body FROM decisions WHERE decision_id = $1",
                &[&id.as_str()],
                "read a decision",
            )
            .await?;
        rows.first()
            .map(|r| decision_from(get(r, 0)?, get(r, 1)?))
            .transpose()
    }

    async fn record_outcome(&self, outcome: &Outcome) -> Result<OutcomeRecorded> {
        let (us, ns) = codec::split(outcome.at);
        let conn = self.conn().await?;
        // One statement: the decision row is share-locked, so a concurrent merge (which moves
        // it) either finishes first, and the entry lands on the survivor, or waits for it.
        let rows = self
            .query(
                &conn,
                "WITH d AS (SELECT customer_id, channel, offers FROM decisions
                            WHERE decision_id = $1 FOR SHARE),
                      o AS (SELECT d.customer_id, d.channel, x.category
                            FROM d, jsonb_to_recordset(d.offers) AS x(offer text, category text)
                            WHERE x.offer = $2 LIMIT 1),
                      ins AS (INSERT INTO contacts (customer_id, decision_id, offer_id, kind,
                                                    category, channel, at_us, at_ns)
                              SELECT o.customer_id, $1, $2, $3, o.category, o.channel, $4, $5
                              FROM o
                              ON CONFLICT DO NOTHING RETURNING 1)
                 SELECT (SELECT count(*) FROM d), (SELECT count(*) FROM o),
                        (SELECT count(*) FROM ins)",
                &[
                    &outcome.decision.as_str(),
                    &outcome.offer.as_str(),
                    &outcome.kind.as_str(),
                    &us,
                    &ns,
                ],
                "record an outcome",
            )
            .await?;
        let row = rows
            .first()
            .ok_or_else(|| codec::corrupt("recording an outcome returned no row".to_owned()))?;
        let (decisions, chosen, inserted): (i64, i64, i64) =
            (get(row, 0)?, get(row, 1)?, get(row, 2)?);
        if decisions == 0 {
            return Err(Error::not_found("decision", outcome.decision.as_str()));
        }
        if chosen == 0 {
            return Err(Error::validation(
                format!("outcome of decision {:?}", outcome.decision.as_str()),
                "offer",
                format!(
                    "{:?} was not chosen by the decision",
                    outcome.offer.as_str()
                ),
            ));
        }
        Ok(if inserted > 0 {
            OutcomeRecorded::New
        } else {
            OutcomeRecorded::Duplicate
        })
    }

    async fn contact_history(
        &self,
        customer: &CustomerId,
        range: TimeRange,
    ) -> Result<Vec<ContactEvent>> {
        if range.is_empty() {
            return Ok(Vec::new());
        }
        let b = Bounds::of(&range);
        let conn = self.conn().await?;
        let rows = self
            .query(
                &conn,
                &format!(
                    "SELECT {CONTACT_COLUMNS} FROM contacts
                     WHERE customer_id = {CANONICAL}
                       AND (at_us, at_ns) >= ($2, $3) AND (at_us, at_ns) < ($4, $5)
                     ORDER BY at_us, at_ns, seq"
                ),
                &[
                    &customer.as_str(),
                    &b.start_us,
                    &b.start_ns,
                    &b.end_us,
                    &b.end_ns,
                ],
                "read a contact history",
            )
            .await?;
        rows.iter().map(|r| contact_from(r, 0)).collect()
    }

    async fn count_contacts(
        &self,
        customer: &CustomerId,
        queries: &[ContactCount],
    ) -> Result<Vec<u64>> {
        if queries.is_empty() {
            return Ok(Vec::new());
        }
        let q = CountParams::of(queries);
        let conn = self.conn().await?;
        let rows = self
            .query(
                &conn,
                &format!(
                    "SELECT (SELECT count(*) FROM contacts c
                             WHERE c.customer_id = {CANONICAL} AND {COUNT_MATCH})
                     FROM unnest($2::smallint[], $3::text[], $4::text[], $5::bigint[],
                                 $6::smallint[], $7::bigint[], $8::smallint[])
                          WITH ORDINALITY AS q(key_type, key, kind, s_us, s_ns, e_us, e_ns, n)
                     ORDER BY q.n"
                ),
                &[
                    &customer.as_str(),
                    &q.key_types,
                    &q.keys,
                    &q.kinds,
                    &q.start_us,
                    &q.start_ns,
                    &q.end_us,
                    &q.end_ns,
                ],
                "count contacts",
            )
            .await?;
        rows.iter().map(|r| Ok(count(get(r, 0)?))).collect()
    }
}

/// When contact row `c` matches count query `q` (see [`CountParams`]).
pub(crate) const COUNT_MATCH: &str = "c.kind = q.kind
    AND (c.at_us, c.at_ns) >= (q.s_us, q.s_ns) AND (c.at_us, c.at_ns) < (q.e_us, q.e_ns)
    AND CASE q.key_type WHEN 0 THEN c.offer_id = q.key COLLATE \"C\"
                        WHEN 1 THEN c.category = q.key COLLATE \"C\"
                        WHEN 2 THEN c.channel = q.key COLLATE \"C\"
                        ELSE true END";

/// Contact-count queries as column arrays, for `unnest`.
pub(crate) struct CountParams<'a> {
    pub(crate) key_types: Vec<i16>,
    pub(crate) keys: Vec<&'a str>,
    pub(crate) kinds: Vec<&'static str>,
    pub(crate) start_us: Vec<i64>,
    pub(crate) start_ns: Vec<i16>,
    pub(crate) end_us: Vec<i64>,
    pub(crate) end_ns: Vec<i16>,
}

impl<'a> CountParams<'a> {
    pub(crate) fn of(queries: &'a [ContactCount]) -> Self {
        let mut p = CountParams {
            key_types: Vec::with_capacity(queries.len()),
            keys: Vec::with_capacity(queries.len()),
            kinds: Vec::with_capacity(queries.len()),
            start_us: Vec::with_capacity(queries.len()),
            start_ns: Vec::with_capacity(queries.len()),
            end_us: Vec::with_capacity(queries.len()),
            end_ns: Vec::with_capacity(queries.len()),
        };
        for q in queries {
            let (key_type, key) = match &q.key {
                ContactKey::Offer(id) => (0, id.as_str()),
                ContactKey::Category(c) => (1, c.as_str()),
                ContactKey::Channel(ch) => (2, ch.as_str()),
                ContactKey::All => (3, ""),
            };
            let b = Bounds::of(&q.range);
            p.key_types.push(key_type);
            p.keys.push(key);
            p.kinds.push(q.kind.as_str());
            p.start_us.push(b.start_us);
            p.start_ns.push(b.start_ns);
            p.end_us.push(b.end_us);
            p.end_ns.push(b.end_ns);
        }
        p
    }
}
