//! [`Store::decision_state`] in one statement: the profile, touchpoints, contact history and
//! budget use a decision reads, from one snapshot, in one round trip.

use crate::PostgresStore;
use crate::codec::{self, Bounds, count, get};
use crate::decisions::contact_from;
use crate::touchpoints::touchpoint_from;
use cx_core::Result;
use cx_core::model::{Customer, TimeRange};
use cx_core::store::{DecisionState, DecisionStateQuery};

/// Column of the first touchpoint column, and of the first contact column.
const TP_AT: usize = 4;
const CONTACT_AT: usize = TP_AT + 12;

/// Rows: `(tag, n, used, profile, <touchpoint columns>, <contact columns>)`, where tag 0 is the
/// profile, 1 a touchpoint, 2 a contact (n: its sequence), 3 a budget counter (n: its position).
/// The query is `cx_decision_state` (migration 5), which the server plans once per connection.
const SQL: &str = "SELECT * FROM cx_decision_state($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, \
     $11, $12, $13, $14, $15)";

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
        let (kinds, since): (Option<Vec<&str>>, Option<Vec<i64>>) = match &read {
            Some(read) => {
                let (kinds, since) = read
                    .iter()
                    .map(|(kind, since)| (kind.as_str(), since.timestamp_micros()))
                    .unzip();
                (Some(kinds), Some(since))
            }
            None => (None, None),
        };
        let ids: Vec<&str> = query.budgets.iter().map(|b| b.budget.as_str()).collect();
        let periods: Vec<&str> = query.budgets.iter().map(|b| b.period.as_str()).collect();
        let conn = self.conn().await?;
        let rows = self
            .query(
                &conn,
                SQL,
                &[
                    &query.customer.as_str(),
                    &with_tps,
                    &t.start_us,
                    &t.start_ns,
                    &t.end_us,
                    &t.end_ns,
                    &kinds,
                    &since,
                    &with_contacts,
                    &k.start_us,
                    &k.start_ns,
                    &k.end_us,
                    &k.end_ns,
                    &ids,
                    &periods,
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
