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
mod touchpoints;

pub(crate) use analytics::channel_label;
pub use analytics::{
    AnalyticsStore, Breakdown, DurationStats, Funnel, FunnelQuery, FunnelRow, FunnelStep,
    MeasureQuery, MeasureValue, MomentsQuery, StageScore, StageTimesQuery, Statistic,
};
pub use budgets::{BudgetGrant, BudgetKey, BudgetStore};
pub use catalog::{CatalogMeta, CatalogStore, CatalogVersion, StoredCatalog};
pub use customer_scan::CustomerScan;
pub use customers::{CustomerStore, ForgetReport, MergeReport, UpsertReport};
pub use decisions::{ContactCount, ContactKey, DecisionStore, OutcomeRecorded};
pub use follow_ups::{CaseQuery, FollowUpStore, SlaCounts};
pub use journeys::{JourneyAdvance, JourneyStore, Placed};
pub use touchpoints::{
    AggregateQuery, AggregateRow, AppendReport, Bucket, ScanCursor, ScanPage, ScanQuery,
    TouchpointQuery, TouchpointStore,
};

/// A complete backend: every storage trait.
///
/// A backend implements the storage traits and this one, which names it. Use it as
/// `Arc<dyn Store>`.
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
}
