//! [`Store::decision_state`] in one statement: the profile, touchpoints, contact history and
//! budget use a decision reads, from one snapshot, in one round trip.

use crate::PostgresStore;
use crate::budgets::BUDGETS_USED;
use crate::codec::{self, Bounds, count, get};
use crate::customers::CANONICAL;
use crate::decisions::{CONTACT_COLUMNS, contact_from};
use crate::touchpoints::{TOUCHPOINT_COLUMNS, touchpoint_from};
use cx_core::Result;
use cx_core::model::{Customer, TimeRange};
use cx_core::store::{DecisionState, DecisionStateQuery};
use std::sync::LazyLock;

/// Typed NULLs standing for the touchpoint columns in rows of another kind.
const NO_TOUCHPOINT: &str = "NULL::text, NULL::text, NULL::bigint, NULL::smallint, NULL::text, \
     NULL::text, NULL::text, NULL::text, NULL::text, NULL::float8, NULL::float8, NULL::float8";
/// Typed NULLs standing for the contact columns in rows of another kind.
const NO_CONTACT: &str = "NULL::text, NULL::text, NULL::text, NULL::text, NULL::text, \
     NULL::text, NULL::bigint, NULL::smallint";

/// Column of the first touchpoint column, and of the first contact column.
const TP_AT: usize = 4;
const CONTACT_AT: usize = TP_AT + 12;

/// Rows: `(tag, n, used, profile, <touchpoint columns>, <contact columns>)`, where tag 0 is the
/// profile, 1 a touchpoint, 2 a contact (n: its sequence), 3 a budget counter (n: its position).
static SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH c AS (SELECT {CANONICAL} AS id)
         SELECT 0::smallint, NULL::bigint, NULL::bigint, p.profile::text, {NO_TOUCHPOINT},
                {NO_CONTACT}
         FROM customers p, c WHERE p.customer_id = c.id
         UNION ALL
         SELECT 1::smallint, NULL, NULL, NULL, {tp}, {NO_CONTACT}
         FROM touchpoints t, c
         WHERE $6::boolean AND t.customer_id = c.id
           AND (t.occurred_us, t.occurred_ns) >= ($2, $3) AND (t.occurred_us, t.occurred_ns) < ($4, $5)
           AND (NOT $16::boolean OR EXISTS (
                SELECT 1 FROM unnest($14::text[], $15::bigint[]) AS w(kind, since_us)
                WHERE w.kind = t.kind AND t.occurred_us >= w.since_us))
         UNION ALL
         SELECT 2::smallint, k.seq, NULL, NULL, {NO_TOUCHPOINT}, {contact}
         FROM contacts k, c
         WHERE $11::boolean AND k.customer_id = c.id
           AND (k.at_us, k.at_ns) >= ($7, $8) AND (k.at_us, k.at_ns) < ($9, $10)
         UNION ALL
         SELECT 3::smallint, k.n, {budgets}",
        tp = prefixed("t", TOUCHPOINT_COLUMNS),
        contact = prefixed("k", CONTACT_COLUMNS),
        budgets = BUDGETS_USED
            .replace("$1", "$12")
            .replace("$2", "$13")
            .replacen(
                "\n    FROM unnest",
                &format!(", NULL, {NO_TOUCHPOINT}, {NO_CONTACT}\n    FROM unnest"),
                1
            ),
    )
});

/// `a, b::text` → `t.a, t.b::text`.
fn prefixed(table: &str, columns: &str) -> String {
    columns
        .split(',')
        .map(|c| format!("{table}.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ")
}

fn bounds(range: Option<TimeRange>) -> (bool, Bounds) {
    match range {
        Some(r) if !r.is_empty() => (true, Bounds::of(&r)),
        _ => (
            false,
            Bounds {
                start_us: 0,
                start_ns: 0,
                end_us: 0,
                end_ns: 0,
            },
        ),
    }
}

impl PostgresStore {
    /// The override of [`Store::decision_state`](cx_core::Store::decision_state).
    pub(crate) async fn load_decision_state(
        &self,
        query: &DecisionStateQuery,
    ) -> Result<Option<DecisionState>> {
        let (with_tps, t) = bounds(query.touchpoints);
        let (with_contacts, k) = bounds(query.contacts);
        // With features asked for, only the touchpoints they read: each kind a feature counts,
        // from the start of the longest window counting it (the rest cannot change a value).
        let read = query
            .features
            .as_ref()
            .and_then(|f| f.catalog.touchpoint_kinds_read(f.now));
        let narrow = read.is_some();
        let (kinds, since): (Vec<&str>, Vec<i64>) = read
            .iter()
            .flatten()
            .map(|(kind, since)| (kind.as_str(), since.timestamp_micros()))
            .unzip();
        let ids: Vec<&str> = query.budgets.iter().map(|b| b.budget.as_str()).collect();
        let periods: Vec<&str> = query.budgets.iter().map(|b| b.period.as_str()).collect();
        let conn = self.conn().await?;
        let rows = self
            .query(
                &conn,
                &SQL,
                &[
                    &query.customer.as_str(),
                    &t.start_us,
                    &t.start_ns,
                    &t.end_us,
                    &t.end_ns,
                    &with_tps,
                    &k.start_us,
                    &k.start_ns,
                    &k.end_us,
                    &k.end_ns,
                    &with_contacts,
                    &ids,
                    &periods,
                    &kinds,
                    &since,
                    &narrow,
                ],
                "load a customer's state for a decision",
            )
            .await?;
        drop(conn);
        let mut customer: Option<Customer> = None;
        let mut touchpoints = Vec::new();
        let mut contacts = Vec::new();
        let mut budget_used = vec![0; query.budgets.len()];
        for row in &rows {
            match get::<i16>(row, 0)? {
                0 => {
                    customer = Some(
                        serde_json::from_str(get(row, 3)?)
                            .map_err(|e| codec::decode_error("customer profile", e))?,
                    );
                }
                1 => touchpoints.push(touchpoint_from(row, TP_AT)?),
                2 => contacts.push((get::<i64>(row, 1)?, contact_from(row, CONTACT_AT)?)),
                _ => {
                    let n = usize::try_from(get::<i64>(row, 1)?).unwrap_or(0);
                    if let Some(slot) = n.checked_sub(1).and_then(|i| budget_used.get_mut(i)) {
                        *slot = count(get(row, 2)?);
                    }
                }
            }
        }
        let Some(customer) = customer else {
            return Ok(None);
        };
        // The orders `customer_touchpoints` and `contact_history` return (ids compare by bytes,
        // as `COLLATE "C"` does).
        touchpoints.sort_by(|a, b| (a.occurred_at, &a.id).cmp(&(b.occurred_at, &b.id)));
        contacts.sort_by_key(|(seq, e)| (e.at, *seq));
        Ok(Some(DecisionState::new(
            customer,
            touchpoints,
            contacts.into_iter().map(|(_, e)| e).collect(),
            budget_used,
        )))
    }
}
