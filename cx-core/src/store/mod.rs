//! Storage traits. Backends implement them; the engine uses them as `Arc<dyn Store>`.
//!
//! Each trait is small and documents its guarantees in a `# Contract` section. The conformance
//! suite (`testkit`, feature `testkit`) checks every backend against those contracts.

mod analytics;
mod budgets;
mod catalog;
mod customer_scan;
mod customers;
mod decisions;
mod follow_ups;
mod journeys;
mod state;
mod touchpoints;

pub(crate) use analytics::channel_label;
pub use analytics::{
    AnalyticsStore, Breakdown, DurationStats, Funnel, FunnelQuery, FunnelRow, FunnelStep,
    MeasureQuery, MeasureValue, MomentsQuery, StageScore, StageTimesQuery, Statistic,
};
pub use budgets::{BudgetDraw, BudgetGrant, BudgetKey, BudgetStore, DecisionCommit};
pub use catalog::{CatalogMeta, CatalogStore, CatalogVersion, StoredCatalog};
pub use customer_scan::CustomerScan;
pub use customers::{CustomerStore, ForgetReport, MergeReport, UpsertReport, check_merge};
pub use decisions::{ContactCount, ContactKey, DecisionStore, OutcomeRecorded};
pub use follow_ups::{CaseQuery, FollowUpStore, SlaCounts};
pub use journeys::{JourneyAdvance, JourneyStore, Placed, TrackGroups, group_by_track};
pub use state::{DecisionState, DecisionStateQuery, DecisionStateView, FeatureRequest};
pub use touchpoints::{
    AggregateQuery, AggregateRow, AppendReport, Bucket, ScanCursor, ScanPage, ScanQuery,
    TouchpointQuery, TouchpointStore,
};

/// A complete backend: every storage trait.
///
/// A backend implements the storage traits and this one, which names it. Use it as
/// `Arc<dyn Store>`.
#[async_trait::async_trait]
pub trait Store:
    CustomerStore
    + CustomerScan
    + TouchpointStore
    + CatalogStore
    + DecisionStore
    + BudgetStore
    + JourneyStore
    + AnalyticsStore
    + FollowUpStore
    + std::fmt::Debug
{
    /// The backend's name (`memory`, `postgres`), for errors and reports.
    fn backend(&self) -> &'static str;

    /// Records `decision` and consumes the budget `draws` it makes, all or nothing, as one
    /// atomic step: if every draw fits (a counter's use plus every draw on it stays within
    /// each of those draws' limits), the counters grow by the amounts and the decision is
    /// logged ([`record_decision`](DecisionStore::record_decision)); otherwise nothing
    /// changes and the answer names a draw that does not fit. However many callers race, no
    /// counter goes over a limit, and a decision that was refused leaves no trace.
    ///
    /// The same decision committed again changes nothing (its draws are not consumed twice);
    /// another decision under a recorded id is a [`Conflict`](crate::Error::Conflict), and
    /// nothing is consumed either.
    async fn commit_decision(
        &self,
        decision: &crate::model::Decision,
        draws: &[BudgetDraw],
    ) -> crate::Result<DecisionCommit>;

    /// Everything a decision reads about one customer: the profile of the customer the id
    /// resolves to, its touchpoints and contact history in the ranges asked for, and the use of
    /// the budget counters; `Ok(None)` if the id resolves to no profile.
    ///
    /// The default composes [`resolve_customer`](CustomerStore::resolve_customer),
    /// [`customer`](CustomerStore::customer),
    /// [`customer_touchpoints`](TouchpointStore::customer_touchpoints),
    /// [`contact_history`](DecisionStore::contact_history) and
    /// [`budgets_used`](BudgetStore::budgets_used); a remote backend overrides it to answer in
    /// one round trip.
    async fn decision_state(
        &self,
        query: &DecisionStateQuery,
    ) -> crate::Result<Option<DecisionState>> {
        let Some(canonical) = self.resolve_customer(&query.customer).await? else {
            return Ok(None);
        };
        let Some(customer) = self.customer(&canonical).await? else {
            return Ok(None);
        };
        let touchpoints = match query.touchpoints {
            Some(range) => self.customer_touchpoints(&canonical, range).await?,
            None => Vec::new(),
        };
        let contacts = match query.contacts {
            Some(range) => self.contact_history(&canonical, range).await?,
            None => Vec::new(),
        };
        let budget_used = if query.budgets.is_empty() {
            Vec::new()
        } else {
            self.budgets_used(&query.budgets).await?
        };
        Ok(Some(DecisionState::new(
            customer,
            touchpoints,
            contacts,
            budget_used,
        )))
    }

    /// The [`decision_state`](Self::decision_state) of each of `customers` under `query` (its
    /// `customer` is not read), handed to `visit` borrowed, with the customer's position in
    /// `customers`: `None` for an id that resolves to no profile. For decisions about many
    /// customers at one instant (dry runs, offline evaluation).
    ///
    /// # Contract
    ///
    /// - `visit` is called exactly once per customer, in order, unless an error ends the
    ///   visit early (the error is returned; customers not visited yet are not).
    /// - Each state is what [`decision_state`](Self::decision_state) would answer for that
    ///   customer at some moment during the call, except that the budget counters may be read
    ///   once for the whole visit. The visit as a whole is not one snapshot: a write may land
    ///   between two customers.
    /// - `visit` may run while the backend holds read locks: it must not call the store.
    ///
    /// The default reads each state with [`decision_state`](Self::decision_state) (PostgreSQL
    /// keeps it: one round trip per customer). The in-memory store overrides it to read each
    /// where it is kept, copying no profile, touchpoint or contact history.
    async fn visit_decision_states(
        &self,
        query: &DecisionStateQuery,
        customers: &[crate::model::CustomerId],
        visit: &mut (dyn for<'s> FnMut(usize, Option<DecisionStateView<'s>>) + Send),
    ) -> crate::Result<()> {
        let mut one = query.clone();
        for (i, customer) in customers.iter().enumerate() {
            one.customer = customer.clone();
            let state = self.decision_state(&one).await?;
            visit(i, state.as_ref().map(DecisionState::view));
        }
        Ok(())
    }
}
