//! [`Store::decision_state`] in one statement: the profile, touchpoints, contact history and
//! budget use a decision reads, from one snapshot, in one round trip; and
//! [`Store::visit_decision_states`] as those statements pipelined, many customers at a time.

use crate::codec::{self, Bounds, count, get};
use crate::decisions::contact_from;
use crate::touchpoints::touchpoint_from;
use crate::{Conn, PostgresStore};
use cx_core::Result;
use cx_core::model::{Customer, CustomerId, Kind, TimeRange};
use cx_core::store::{DecisionState, DecisionStateQuery, DecisionStateView};
use tokio_postgres::Row;

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

/// How many customers' states [`PostgresStore::visit_states`] asks for at once on one
/// connection: their statements are pipelined (sent without waiting for each answer), so a
/// group costs about one round trip plus the server's work.
const PIPELINE: usize = 32;

/// The parameters of a state query but the customer, borrowed from the query.
struct StateParams<'q> {
    with_tps: bool,
    t: Bounds,
    kinds: Option<Vec<&'q str>>,
    since: Option<Vec<i64>>,
    with_contacts: bool,
    k: Bounds,
    ids: Vec<&'q str>,
    periods: Vec<&'q str>,
}

impl<'q> StateParams<'q> {
    fn of(query: &'q DecisionStateQuery, read: &'q Option<Vec<(Kind, i64)>>) -> Self {
        let (with_tps, t) = bounds(query.touchpoints);
        let (with_contacts, k) = bounds(query.contacts);
        let (kinds, since) = match read {
            Some(read) => {
                let (kinds, since) = read
                    .iter()
                    .map(|(kind, since)| (kind.as_str(), *since))
                    .unzip();
                (Some(kinds), Some(since))
            }
            None => (None, None),
        };
        StateParams {
            with_tps,
            t,
            kinds,
            since,
            with_contacts,
            k,
            ids: query.budgets.iter().map(|b| b.budget.as_str()).collect(),
            periods: query.budgets.iter().map(|b| b.period.as_str()).collect(),
        }
    }
}

/// With features asked for, only the touchpoints they read: each kind a feature counts, from
/// the start (in microseconds) of the longest window counting it (the rest cannot change a
/// value).
fn kinds_read(query: &DecisionStateQuery) -> Option<Vec<(Kind, i64)>> {
    let read = query
        .features
        .as_ref()
        .and_then(|f| f.catalog.touchpoint_kinds_read(f.now))?;
    Some(
        read.into_iter()
            .map(|(kind, since)| (kind, since.timestamp_micros()))
            .collect(),
    )
}

impl PostgresStore {
    /// The override of [`Store::decision_state`](cx_core::Store::decision_state).
    pub(crate) async fn load_decision_state(
        &self,
        query: &DecisionStateQuery,
    ) -> Result<Option<DecisionState>> {
        let read = kinds_read(query);
        let params = StateParams::of(query, &read);
        let conn = self.conn().await?;
        let rows = self
            .read_state(&conn, query.customer.as_str(), &params)
            .await?;
        drop(conn);
        decode(&rows, query.budgets.len())
    }

    /// The override of
    /// [`Store::visit_decision_states`](cx_core::Store::visit_decision_states): on one
    /// connection, [`PIPELINE`] customers' statements at a time, pipelined.
    pub(crate) async fn visit_states(
        &self,
        query: &DecisionStateQuery,
        customers: &[CustomerId],
        visit: &mut (dyn for<'s> FnMut(usize, Option<DecisionStateView<'s>>) + Send),
    ) -> Result<()> {
        let read = kinds_read(query);
        let params = StateParams::of(query, &read);
        let conn = self.conn().await?;
        // Prepared once here, so that the group's statements find it in the connection's cache
        // instead of each preparing it.
        conn.prepare_cached(SQL)
            .await
            .map_err(self.err("prepare the decision state query"))?;
        let mut position = 0;
        for group in customers.chunks(PIPELINE) {
            let answers = futures_util::future::try_join_all(
                group
                    .iter()
                    .map(|c| self.read_state(&conn, c.as_str(), &params)),
            )
            .await?;
            for rows in &answers {
                let state = decode(rows, query.budgets.len())?;
                visit(position, state.as_ref().map(DecisionState::view));
                position += 1;
            }
        }
        Ok(())
    }

    /// The rows of `customer`'s state: one round trip.
    async fn read_state(
        &self,
        client: &Conn,
        customer: &str,
        p: &StateParams<'_>,
    ) -> Result<Vec<Row>> {
        self.query(
            client,
            SQL,
            &[
                &customer,
                &p.with_tps,
                &p.t.start_us,
                &p.t.start_ns,
                &p.t.end_us,
                &p.t.end_ns,
                &p.kinds,
                &p.since,
                &p.with_contacts,
                &p.k.start_us,
                &p.k.start_ns,
                &p.k.end_us,
                &p.k.end_ns,
                &p.ids,
                &p.periods,
            ],
            "load a customer's state for a decision",
        )
        .await
    }
}

/// The state in `rows` (of a query for `budgets` counters); `None` without a profile row.
fn decode(rows: &[Row], budgets: usize) -> Result<Option<DecisionState>> {
    let mut customer: Option<Customer> = None;
    let mut touchpoints = Vec::new();
    let mut contacts = Vec::new();
    let mut budget_used = vec![0; budgets];
    for row in rows {
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
