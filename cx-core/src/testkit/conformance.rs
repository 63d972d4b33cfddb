//! The backend conformance suite: the `# Contract` sections of the storage traits, as code.
//!
//! Every case is a `pub async fn` that takes a store and panics with a message naming the
//! contract point when the store breaks it. A backend runs them all, either with
//! [`conformance_tests!`](crate::conformance_tests) (one `#[tokio::test]` per case, so failures
//! show per case) or with [`run_all`].
//!
//! ```text
//! // cx-store-foo/tests/conformance.rs
//! cx_core::conformance_tests!(cx_store_foo::FooStore::new());
//! ```
//!
//! # Sharing one store
//!
//! Cases never depend on each other or on what else is in the store: each one makes its own ids
//! (a per-case prefix and a random suffix), scans and aggregates only touchpoint kinds it made up,
//! and uses its own budget keys. So they can all run against one shared store (a PostgreSQL
//! database), in sequence or in parallel. The exception is the catalogue, which is one per store:
//! the catalogue cases assert versions relative to the current one and assume that nothing else
//! puts a catalogue while they run.
//!
//! # Runtime
//!
//! The cases that spawn tasks take `Arc<dyn Store>`; the property cases drive proptest's
//! synchronous runner with [`tokio::task::block_in_place`]. Both need tokio's multi-thread
//! runtime (`#[tokio::test(flavor = "multi_thread")]`), which the macro sets up.
// Test support code: a broken contract is a panic with a message, by design.
#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

use crate::Store;
use crate::error::{Error, Result};
use crate::model::{
    Attributes, Catalog, Category, Channel, Consent, ContactEvent, Customer, CustomerId, Decision,
    DecisionId, Identity, Kind, OfferId, Outcome, OutcomeKind, Owner, Purpose, Scale,
    SelectedOffer, Subject, SurveyAnswer, TimeRange, Timestamp, Touchpoint, TouchpointId,
};
use crate::store::{
    AggregateQuery, AggregateRow, AppendReport, Bucket, BudgetDraw, BudgetGrant, BudgetKey,
    CatalogMeta, CatalogVersion, ContactCount, ContactKey, DecisionCommit, DecisionState,
    ForgetReport, MergeReport, OutcomeRecorded, ScanQuery, TouchpointQuery, UpsertReport,
};
use chrono::{TimeDelta, TimeZone, Utc};
use proptest::prelude::{Strategy, prop};
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;
use std::hash::BuildHasher;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

// ---------------------------------------------------------------------------------------------
// The list of cases, and the macro that turns it into tests.
// ---------------------------------------------------------------------------------------------

/// The one list of cases: `shared` cases take `&dyn Store`, `owned` ones `Arc<dyn Store>`
/// (they spawn tasks). [`run_all`], [`CASES`] and `conformance_tests!` all expand from it, so
/// a new case is added here once.
#[doc(hidden)]
#[macro_export]
macro_rules! __cx_conformance_cases {
    ($mode:ident $args:tt) => {
        $crate::__cx_conformance_expand! {
            $mode $args
            shared [
                ingest_same_batch_twice_is_stored_once,
                ingest_duplicates_within_one_batch_are_stored_once,
                ingest_key_is_customer_and_touchpoint_id,
                ingest_invalid_touchpoint_fails_the_whole_batch,
                ingest_unresolved_identity_fails_the_whole_batch,
                ingest_identity_subject_lands_on_the_resolved_customer,
                customer_touchpoints_range_is_half_open_and_ordered,
                decision_state_reads_profile_features_history_and_budgets,
                visit_decision_states_hands_over_what_decision_state_reads,
                scan_pages_return_every_match_once_in_order,
                aggregate_counts_touchpoints_and_customers_per_group,
                upsert_reports_inserted_and_updated,
                upsert_replaces_the_whole_profile,
                upsert_removed_identity_no_longer_resolves,
                upsert_invalid_customer_stores_nothing,
                upsert_identity_conflict_stores_nothing,
                customers_keep_the_requested_order_with_gaps,
                merge_moves_touchpoints_decisions_and_contacts,
                merge_combines_profiles_by_the_contract_rules,
                merge_absorbed_ids_resolve_to_the_survivor,
                merge_rejects_unknown_and_identical_ids,
                forget_erases_everything_about_the_customer,
                forget_is_idempotent,
                forget_absorbed_id_forgets_the_survivor,
                catalog_put_adds_a_version_and_keeps_old_ones,
                catalog_expected_version_conflict_stores_nothing,
                decision_is_recorded_once_and_conflicts_on_other_content,
                outcome_needs_a_stored_decision_and_a_chosen_offer,
                outcome_recorded_twice_counts_once,
                contact_counts_by_key_kind_and_half_open_window,
                budget_refused_request_changes_nothing,
                budget_counters_are_independent_per_budget_and_period,
                commit_decision_records_and_draws_all_or_nothing,
                property_ingest_is_idempotent,
                property_budget_is_never_exceeded,
                journeys_advance_resolves_subjects_and_keeps_tracks,
                forget_erases_journey_tracks_and_cases,
                analytics_funnel_stage_times_and_moments_by_hand,
                analytics_measures_touchpoints_by_hand,
                follow_up_cases_open_once_close_once_and_count_sla,
                customer_pages_are_ordered_and_complete,
            ]
            owned [
                ingest_readers_never_see_part_of_a_batch,
                catalog_racing_puts_exactly_one_wins,
                budget_concurrent_consumers_never_exceed_the_limit,
                commit_decision_racing_deciders_never_exceed_nor_leave_partial_draws,
            ]
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __cx_conformance_expand {
    (tests $make:tt shared [$($shared:ident),* $(,)?] owned [$($owned:ident),* $(,)?]) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $shared() {
                let store: ::std::sync::Arc<dyn $crate::Store> = $crate::__cx_make_store! $make;
                $crate::testkit::conformance::$shared(&*store).await;
            }
        )*
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $owned() {
                let store: ::std::sync::Arc<dyn $crate::Store> = $crate::__cx_make_store! $make;
                $crate::testkit::conformance::$owned(store).await;
            }
        )*
    };
    (run_all ($store:ident) shared [$($shared:ident),* $(,)?] owned [$($owned:ident),* $(,)?]) => {
        $( $crate::testkit::conformance::$shared(&*$store).await; )*
        $( $crate::testkit::conformance::$owned(::std::sync::Arc::clone(&$store)).await; )*
    };
    (names () shared [$($shared:ident),* $(,)?] owned [$($owned:ident),* $(,)?]) => {
        &[$(stringify!($shared),)* $(stringify!($owned),)*]
    };
}

/// Evaluates a store expression inside the generated test: an `async` block is awaited, any
/// other expression (which may itself use `.await`) is taken as is; both go through
/// [`IntoStore`](crate::testkit::conformance::IntoStore).
#[doc(hidden)]
#[macro_export]
macro_rules! __cx_make_store {
    (async $($block:tt)+) => {
        $crate::testkit::conformance::IntoStore::into_store((async $($block)+).await)
    };
    ($make:expr) => {
        $crate::testkit::conformance::IntoStore::into_store($make)
    };
}

/// Generates one `#[tokio::test]` (multi-thread runtime, 2 workers) per conformance case, each
/// on a store made by evaluating the argument again, so a backend's failures show per case.
///
/// The argument is evaluated inside the async test function, so it may use `.await`; it may
/// also be an `async { ... }` block. It must give something [`IntoStore`] accepts: a backend
/// value, an `Arc` of one, or an `Arc<dyn Store>`.
///
/// ```text
/// cx_core::conformance_tests!(cx_store_memory::MemoryStore::new());
/// // or, for a backend that needs async set-up:
/// cx_core::conformance_tests!(async { fresh_database_store().await });
/// ```
///
/// The calling crate needs `tokio` (features `macros`, `rt-multi-thread`) as a dev-dependency.
///
/// [`IntoStore`]: crate::testkit::conformance::IntoStore
#[macro_export]
macro_rules! conformance_tests {
    ($($make:tt)+) => {
        $crate::__cx_conformance_cases! { tests ($($make)+) }
    };
}

/// The names of every case, in the order [`run_all`] runs them.
pub const CASES: &[&str] = crate::__cx_conformance_cases! { names () };

/// Runs every case, one after the other, against `store`.
///
/// Needs tokio's multi-thread runtime: some cases spawn tasks, and the property cases block in
/// place while proptest drives them.
pub async fn run_all(store: Arc<dyn Store>) {
    crate::__cx_conformance_cases! { run_all (store) }
}

/// What [`conformance_tests!`](crate::conformance_tests) accepts as the store to test.
pub trait IntoStore {
    /// The store, ready to share.
    fn into_store(self) -> Arc<dyn Store>;
}

impl IntoStore for Arc<dyn Store> {
    fn into_store(self) -> Arc<dyn Store> {
        self
    }
}

impl<S: Store + 'static> IntoStore for Arc<S> {
    fn into_store(self) -> Arc<dyn Store> {
        self
    }
}

impl<S: Store + 'static> IntoStore for S {
    fn into_store(self) -> Arc<dyn Store> {
        Arc::new(self)
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers.
// ---------------------------------------------------------------------------------------------

/// A random 64-bit number from std alone (`RandomState` is seeded from the OS), so the suite
/// needs no RNG crate when cx-core's own tests compile it.
fn random_u64() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    std::collections::hash_map::RandomState::new().hash_one((n, std::time::SystemTime::now()))
}

/// A fresh id, `prefix-<16 hex digits>`; lower-case, so it is also a valid label and email part.
fn unique(prefix: &str) -> String {
    format!("{prefix}-{:016x}", random_u64())
}

/// Midnight, 1 January of a random far-future year: each case's touchpoints live in their own
/// stretch of time. Whole seconds only, so backends with microsecond clocks store them exactly.
fn far_time() -> Timestamp {
    let year = 2200 + i32::try_from(random_u64() % 6000).unwrap_or(0);
    Utc.with_ymd_and_hms(year, 1, 1, 0, 0, 0).unwrap()
}

fn secs(n: i64) -> TimeDelta {
    TimeDelta::seconds(n)
}

fn mins(n: i64) -> TimeDelta {
    TimeDelta::minutes(n)
}

fn cid(s: &str) -> CustomerId {
    CustomerId::new(s)
}

fn email(p: &str, who: &str) -> Identity {
    Identity::email(&format!("{who}.{p}@example.com"))
}

fn tp(id: &str, customer: &CustomerId, channel: Channel, kind: &Kind, at: Timestamp) -> Touchpoint {
    Touchpoint::new(id, customer.clone(), channel, kind.clone(), at)
}

/// The same touchpoint as stored under `customer` (stores always return the customer subject).
fn under(t: &Touchpoint, customer: &CustomerId) -> Touchpoint {
    Touchpoint {
        subject: Subject::Customer(customer.clone()),
        ..t.clone()
    }
}

/// Sorts the way per-customer reads return touchpoints: `(occurred_at, id)`.
fn by_time_and_id(mut tps: Vec<Touchpoint>) -> Vec<Touchpoint> {
    tps.sort_by(|a, b| (a.occurred_at, &a.id).cmp(&(b.occurred_at, &b.id)));
    tps
}

/// Sorts the way scans return touchpoints: `(occurred_at, customer, id)`.
fn scan_order(mut tps: Vec<Touchpoint>) -> Vec<Touchpoint> {
    tps.sort_by(|a, b| {
        (a.occurred_at, a.customer_id(), &a.id).cmp(&(b.occurred_at, b.customer_id(), &b.id))
    });
    tps
}

/// Identities, consents and PII marks in a fixed order, so profiles compare however a backend
/// orders those lists.
fn canonical(mut c: Customer) -> Customer {
    c.identities.sort();
    c.consents
        .sort_by(|a, b| (&a.channel, &a.purpose).cmp(&(&b.channel, &b.purpose)));
    c.pii.sort();
    c
}

fn canonical_opt(c: Option<Customer>) -> Option<Customer> {
    c.map(canonical)
}

async fn append(store: &dyn Store, batch: Vec<Touchpoint>) -> AppendReport {
    store
        .append_touchpoints(batch)
        .await
        .expect("append_touchpoints failed")
}

async fn upsert(store: &dyn Store, customers: Vec<Customer>) -> UpsertReport {
    store
        .upsert_customers(customers)
        .await
        .expect("upsert_customers failed")
}

async fn history_of(store: &dyn Store, customer: &CustomerId) -> Vec<Touchpoint> {
    store
        .customer_touchpoints(customer, TimeRange::all())
        .await
        .expect("customer_touchpoints failed")
}

async fn get(store: &dyn Store, id: &CustomerId) -> Option<Customer> {
    canonical_opt(store.customer(id).await.expect("customer failed"))
}

async fn resolve(store: &dyn Store, identity: &Identity) -> Option<CustomerId> {
    store
        .resolve_identity(identity)
        .await
        .expect("resolve_identity failed")
}

async fn resolve_id(store: &dyn Store, id: &CustomerId) -> Option<CustomerId> {
    store
        .resolve_customer(id)
        .await
        .expect("resolve_customer failed")
}

async fn merge(store: &dyn Store, survivor: &CustomerId, absorbed: &CustomerId) -> MergeReport {
    store
        .merge_customers(survivor, absorbed)
        .await
        .expect("merge_customers failed")
}

async fn contacts(store: &dyn Store, customer: &CustomerId, range: TimeRange) -> Vec<ContactEvent> {
    store
        .contact_history(customer, range)
        .await
        .expect("contact_history failed")
}

async fn counts(store: &dyn Store, customer: &CustomerId, queries: &[ContactCount]) -> Vec<u64> {
    store
        .count_contacts(customer, queries)
        .await
        .expect("count_contacts failed")
}

async fn outcome(
    store: &dyn Store,
    decision: &DecisionId,
    offer: &str,
    kind: OutcomeKind,
    at: Timestamp,
) -> OutcomeRecorded {
    store
        .record_outcome(&Outcome {
            decision: decision.clone(),
            offer: OfferId::new(offer),
            kind,
            at,
        })
        .await
        .expect("record_outcome failed")
}

/// Scans every page of `filter`, `limit` at a time, checking each page's shape on the way.
async fn scan_all(store: &dyn Store, filter: &TouchpointQuery, limit: usize) -> Vec<Touchpoint> {
    let mut out: Vec<Touchpoint> = Vec::new();
    let mut after = None;
    let mut pages = 0_usize;
    loop {
        let page = store
            .scan_touchpoints(&ScanQuery::new(filter.clone(), limit).after(after))
            .await
            .expect("scan_touchpoints failed");
        pages += 1;
        assert!(
            page.touchpoints.len() <= limit,
            "scan: a page holds {} touchpoints, more than the limit {limit}",
            page.touchpoints.len()
        );
        // Every page but the last holds something, so a scan of n matches ends within n+1 pages.
        assert!(
            pages <= out.len() + page.touchpoints.len() + 1,
            "scan: more pages than matches; the cursor does not advance"
        );
        if let Some(next) = &page.next {
            let last = page
                .touchpoints
                .last()
                .expect("scan: a page with a next cursor must hold touchpoints");
            assert_eq!(
                (&next.occurred_at, Some(&next.customer), &next.id),
                (&last.occurred_at, last.customer_id(), &last.id),
                "scan: the cursor must be the position of the last touchpoint returned"
            );
        }
        out.extend(page.touchpoints);
        match page.next {
            Some(next) => after = Some(next),
            None => return out,
        }
    }
}

/// What an aggregate must return, computed from the touchpoints themselves.
fn expected_rows(tps: &[Touchpoint], q: &AggregateQuery) -> Vec<AggregateRow> {
    type Group = (Option<Timestamp>, Option<Channel>, Option<Kind>);
    let mut groups: BTreeMap<Group, (u64, BTreeSet<CustomerId>)> = BTreeMap::new();
    for t in tps.iter().filter(|t| q.filter.matches(t)) {
        let key = (
            q.bucket.map(|b| b.start_of(t.occurred_at)),
            q.by_channel.then(|| t.channel.clone()),
            q.by_kind.then(|| t.kind.clone()),
        );
        let group = groups.entry(key).or_default();
        group.0 += 1;
        group.1.insert(t.customer_id().cloned().unwrap_or_default());
    }
    let ungrouped = !q.by_channel && !q.by_kind && q.bucket.is_none();
    if groups.is_empty() && ungrouped {
        return vec![AggregateRow::new(None, None, None, 0, 0)];
    }
    groups
        .into_iter()
        .map(|((bucket, channel, kind), (n, customers))| {
            AggregateRow::new(bucket, channel, kind, n, customers.len() as u64)
        })
        .collect()
}

async fn aggregate(store: &dyn Store, q: &AggregateQuery) -> Vec<AggregateRow> {
    store
        .aggregate_touchpoints(q)
        .await
        .expect("aggregate_touchpoints failed")
}

fn decision(
    id: &DecisionId,
    customer: &CustomerId,
    channel: Channel,
    at: Timestamp,
    offers: &[(&str, &str)],
) -> Decision {
    Decision {
        id: id.clone(),
        customer: customer.clone(),
        channel,
        placement: None,
        at,
        catalog_version: 1,
        offers: offers
            .iter()
            .enumerate()
            .map(|(rank, (offer, category))| SelectedOffer {
                offer: OfferId::new(*offer),
                category: Category::new(*category),
                rank: u32::try_from(rank).unwrap_or(u32::MAX),
                score: 2.5,
                probability: 1.0,
            })
            .collect(),
        context: Attributes::new().with("page", "home"),
        segment: None,
        explanation: Default::default(),
    }
}

async fn record(store: &dyn Store, d: &Decision) {
    store
        .record_decision(d)
        .await
        .expect("record_decision failed");
}

async fn stored_decision(store: &dyn Store, id: &DecisionId) -> Option<Decision> {
    store.decision(id).await.expect("decision failed")
}

fn all_kinds_count(key: ContactKey, kind: OutcomeKind) -> ContactCount {
    ContactCount {
        key,
        kind,
        range: TimeRange::all(),
    }
}

async fn consume(store: &dyn Store, key: &BudgetKey, limit: u64, amount: u64) -> BudgetGrant {
    store
        .consume_budget(key, limit, amount)
        .await
        .expect("consume_budget failed")
}

async fn used(store: &dyn Store, key: &BudgetKey) -> u64 {
    store.budget_used(key).await.expect("budget_used failed")
}

async fn current_version(store: &dyn Store) -> u64 {
    store
        .catalog(None)
        .await
        .expect("catalog(None) failed")
        .map_or(0, |c| c.version.version)
}

async fn history_versions(store: &dyn Store) -> Vec<CatalogVersion> {
    store
        .catalog_history()
        .await
        .expect("catalog_history failed")
}

/// A small catalogue told apart by `tag` (one owner named after it).
fn catalog_tagged(tag: &str) -> Catalog {
    Catalog {
        owners: vec![Owner::new(tag, format!("Team {tag}"))],
        ..Catalog::default()
    }
}

#[track_caller]
fn expect_validation<T: Debug>(result: Result<T>, what: &str) -> (String, String) {
    match result {
        Err(Error::Validation { item, field, .. }) => (item, field),
        other => panic!("{what}: expected Error::Validation, got {other:?}"),
    }
}

#[track_caller]
fn expect_conflict<T: Debug>(result: Result<T>, what: &str) -> Error {
    match result {
        Err(e @ Error::Conflict { .. }) => e,
        other => panic!("{what}: expected Error::Conflict, got {other:?}"),
    }
}

#[track_caller]
fn expect_not_found<T: Debug>(result: Result<T>, what: &str) {
    match result {
        Err(Error::NotFound { .. }) => {}
        other => panic!("{what}: expected Error::NotFound, got {other:?}"),
    }
}

/// Runs a property with proptest's runner, each case driven to completion on the current
/// runtime; `block_in_place` is what lets a synchronous runner call async code here.
fn run_property<S>(
    name: &str,
    cases: u32,
    strategy: S,
    check: impl Fn(S::Value) -> std::result::Result<(), TestCaseError>,
) where
    S: Strategy,
{
    let mut config = Config::with_cases(cases);
    // Each run makes fresh ids, so there is nothing useful to persist between runs.
    config.failure_persistence = None;
    let mut runner = TestRunner::new(config);
    let outcome = tokio::task::block_in_place(|| runner.run(&strategy, check));
    if let Err(e) = outcome {
        panic!("property `{name}` does not hold: {e}");
    }
}

// ---------------------------------------------------------------------------------------------
// Touchpoints.
// ---------------------------------------------------------------------------------------------

/// Touchpoints, idempotent: the same batch sent twice is stored once, and a later touchpoint
/// with a stored key is a duplicate even if its content differs (the first version stays).
pub async fn ingest_same_batch_twice_is_stored_once(store: &dyn Store) {
    let p = unique("twice");
    let c = cid(&format!("{p}-c"));
    let t0 = far_time();
    let batch: Vec<Touchpoint> = (0..3)
        .map(|i| {
            tp(
                &format!("{p}-t{i}"),
                &c,
                Channel::Web,
                &Kind::PAGE_VIEW,
                t0 + secs(i),
            )
        })
        .collect();

    let first = append(store, batch.clone()).await;
    assert_eq!(
        first,
        AppendReport::new(3, 0),
        "first append of 3 new touchpoints"
    );
    let second = append(store, batch.clone()).await;
    assert_eq!(
        second,
        AppendReport::new(0, 3),
        "the same batch again must be reported as 3 duplicates"
    );
    assert_eq!(
        history_of(store, &c).await,
        batch,
        "the batch must be stored once"
    );

    let changed = batch[0].clone().with_attribute("changed", true);
    let third = append(store, vec![changed]).await;
    assert_eq!(
        third,
        AppendReport::new(0, 1),
        "a stored id with other content is still a duplicate"
    );
    assert_eq!(
        history_of(store, &c).await,
        batch,
        "the first version of a touchpoint must stay"
    );
}

/// Touchpoints, idempotent: a touchpoint repeated within one batch is stored once, first
/// version first.
pub async fn ingest_duplicates_within_one_batch_are_stored_once(store: &dyn Store) {
    let p = unique("in-batch");
    let c = cid(&format!("{p}-c"));
    let t0 = far_time();
    let a =
        tp(&format!("{p}-a"), &c, Channel::App, &Kind::PURCHASE, t0).with_attribute("amount", 10.0);
    let b = tp(
        &format!("{p}-b"),
        &c,
        Channel::App,
        &Kind::PURCHASE,
        t0 + secs(1),
    );
    let a_again = a.clone().with_attribute("amount", 99.0);

    let report = append(store, vec![a.clone(), b.clone(), a_again, a.clone()]).await;
    assert_eq!(
        report,
        AppendReport::new(2, 2),
        "two distinct touchpoints, two repeats within the batch"
    );
    assert_eq!(
        history_of(store, &c).await,
        vec![a, b],
        "each touchpoint stored once, the first version in the batch kept"
    );
}

/// Touchpoints, idempotent: the key is (resolved customer, touchpoint id), so one id under two
/// customers is two touchpoints.
pub async fn ingest_key_is_customer_and_touchpoint_id(store: &dyn Store) {
    let p = unique("key");
    let (c1, c2) = (cid(&format!("{p}-c1")), cid(&format!("{p}-c2")));
    let t0 = far_time();
    let id = format!("{p}-same");
    let t1 = tp(&id, &c1, Channel::Web, &Kind::PAGE_VIEW, t0);
    let t2 = tp(&id, &c2, Channel::Web, &Kind::PAGE_VIEW, t0);
    let report = append(store, vec![t1.clone(), t2.clone()]).await;
    assert_eq!(
        report,
        AppendReport::new(2, 0),
        "one touchpoint id under two customers is not a duplicate"
    );
    assert_eq!(history_of(store, &c1).await, vec![t1]);
    assert_eq!(history_of(store, &c2).await, vec![t2]);
}

/// Touchpoints, validation first: one invalid touchpoint fails the batch with
/// `Error::Validation` naming it, its position and the field, and nothing is stored.
pub async fn ingest_invalid_touchpoint_fails_the_whole_batch(store: &dyn Store) {
    let p = unique("invalid");
    let c = cid(&format!("{p}-c"));
    let t0 = far_time();
    let ok0 = tp(&format!("{p}-t0"), &c, Channel::Web, &Kind::PAGE_VIEW, t0);
    let ok1 = tp(
        &format!("{p}-t1"),
        &c,
        Channel::Web,
        &Kind::PAGE_VIEW,
        t0 + secs(1),
    );

    let bad_score_id = format!("{p}-score");
    let bad_score = tp(
        &bad_score_id,
        &c,
        Channel::Survey,
        &Kind::SURVEY_RESPONSE,
        t0,
    )
    .with_survey(SurveyAnswer::new("nps", 11.0, Scale::NPS));
    let result = store
        .append_touchpoints(vec![ok0.clone(), ok1.clone(), bad_score])
        .await;
    let (item, field) = expect_validation(result, "a survey score outside its scale");
    assert!(
        item.contains(&format!("{bad_score_id:?}")) && item.contains("#2 in batch"),
        "the error must name the touchpoint and its position (#2 in batch), got item {item:?}"
    );
    assert_eq!(field, "survey.score", "the error must name the field");
    assert!(
        history_of(store, &c).await.is_empty(),
        "a batch with an invalid touchpoint must store nothing"
    );

    let bad_attr_id = format!("{p}-nan");
    let bad_attr =
        tp(&bad_attr_id, &c, Channel::Web, &Kind::PAGE_VIEW, t0).with_attribute("ratio", f64::NAN);
    let result = store
        .append_touchpoints(vec![ok0.clone(), bad_attr, ok1.clone()])
        .await;
    let (item, field) = expect_validation(result, "a NaN attribute");
    assert!(
        item.contains(&format!("{bad_attr_id:?}")) && item.contains("#1 in batch"),
        "the error must name the touchpoint and its position (#1 in batch), got item {item:?}"
    );
    assert_eq!(field, "attributes.ratio", "the error must name the field");
    assert!(
        history_of(store, &c).await.is_empty(),
        "a batch with an invalid touchpoint must store nothing"
    );

    // Had any of the valid ones been kept, they would be duplicates now.
    let report = append(store, vec![ok0, ok1]).await;
    assert_eq!(
        report,
        AppendReport::new(2, 0),
        "the valid touchpoints of a failed batch must not have been stored"
    );
}

/// Touchpoints, resolution: an identity subject that resolves to nobody fails the whole batch
/// with `Error::Validation` naming the touchpoint and its position, never the identity value.
pub async fn ingest_unresolved_identity_fails_the_whole_batch(store: &dyn Store) {
    let p = unique("unresolved");
    let c = cid(&format!("{p}-c"));
    let t0 = far_time();
    let nobody = email(&p, "nobody");
    let ok = tp(&format!("{p}-ok"), &c, Channel::Web, &Kind::PAGE_VIEW, t0);
    let orphan_id = format!("{p}-orphan");
    let orphan = Touchpoint::new(
        orphan_id.as_str(),
        nobody.clone(),
        Channel::Email,
        Kind::MESSAGE_OPENED,
        t0,
    );
    let result = store.append_touchpoints(vec![ok, orphan]).await;
    let message = match &result {
        Err(e) => e.to_string(),
        Ok(_) => String::new(),
    };
    let (item, _field) = expect_validation(result, "an identity that resolves to nobody");
    assert!(
        item.contains(&format!("{orphan_id:?}")) && item.contains("#1 in batch"),
        "the error must name the touchpoint and its position (#1 in batch), got item {item:?}"
    );
    assert!(
        !message.contains(nobody.value.as_str()),
        "errors must never include an identity's value, got {message:?}"
    );
    assert!(
        history_of(store, &c).await.is_empty(),
        "the valid touchpoint of the failed batch must not be stored"
    );
}

/// Touchpoints, resolution: an identity subject lands on the customer holding the identity and
/// is stored (and returned) with `Subject::Customer`; the idempotency key is the resolved one.
pub async fn ingest_identity_subject_lands_on_the_resolved_customer(store: &dyn Store) {
    let p = unique("by-identity");
    let c = cid(&format!("{p}-c"));
    let kind = Kind::new(format!("{p}_k"));
    let mail = email(&p, "ann");
    let device = Identity::device(&format!("{p}-phone"));
    upsert(
        store,
        vec![
            Customer::new(c.clone())
                .with_identity(mail.clone())
                .with_identity(device.clone()),
        ],
    )
    .await;

    let t0 = far_time();
    // Identity::email normalises case, so the shouted form is the same identity.
    let shouted = Identity::email(&mail.value.to_uppercase());
    let by_mail = Touchpoint::new(format!("{p}-t1"), shouted, Channel::Email, kind.clone(), t0);
    let by_device = Touchpoint::new(
        format!("{p}-t2"),
        device,
        Channel::App,
        kind.clone(),
        t0 + secs(1),
    );
    let report = append(store, vec![by_mail.clone(), by_device.clone()]).await;
    assert_eq!(report, AppendReport::new(2, 0));

    let expected = vec![under(&by_mail, &c), under(&by_device, &c)];
    assert_eq!(
        history_of(store, &c).await,
        expected,
        "identity touchpoints must be stored under the resolved customer, with Subject::Customer"
    );
    let scanned = scan_all(
        store,
        &TouchpointQuery::new(TimeRange::all()).kinds([kind]),
        10,
    )
    .await;
    assert_eq!(
        scanned, expected,
        "scans must return the resolved Subject::Customer too"
    );

    let again = append(store, vec![under(&by_mail, &c)]).await;
    assert_eq!(
        again,
        AppendReport::new(0, 1),
        "the same id under the resolved customer id is the same key: a duplicate"
    );
}

/// Touchpoints, atomic: readers never see part of a batch, even while batches are being written.
pub async fn ingest_readers_never_see_part_of_a_batch(store: Arc<dyn Store>) {
    const BATCHES: usize = 20;
    const SIZE: usize = 50;
    let p = unique("atomic");
    let c = cid(&format!("{p}-c"));
    let t0 = far_time();
    let writer = {
        let (store, c, p) = (Arc::clone(&store), c.clone(), p.clone());
        tokio::spawn(async move {
            for b in 0..BATCHES {
                let batch = (0..SIZE)
                    .map(|i| {
                        let n = i64::try_from(b * SIZE + i).unwrap_or(0);
                        // Later batches interleave in time with earlier ones, so a partial batch
                        // cannot hide at the end of the timeline.
                        let at = t0 + secs((n * 7919) % 5000);
                        tp(
                            &format!("{p}-{b}-{i}"),
                            &c,
                            Channel::Web,
                            &Kind::PAGE_VIEW,
                            at,
                        )
                    })
                    .collect();
                append(&*store, batch).await;
            }
        })
    };
    loop {
        let done = writer.is_finished();
        let seen = history_of(&*store, &c).await.len();
        assert!(
            seen.is_multiple_of(SIZE),
            "a reader saw {seen} touchpoints: part of a batch of {SIZE}"
        );
        if done {
            break;
        }
        tokio::task::yield_now().await;
    }
    writer.await.expect("the writer task panicked");
    assert_eq!(history_of(&*store, &c).await.len(), BATCHES * SIZE);
}

/// Touchpoints, reads: `customer_touchpoints` takes a half-open range and returns touchpoints
/// ordered by `(occurred_at, id)`, whatever order they were ingested in.
pub async fn customer_touchpoints_range_is_half_open_and_ordered(store: &dyn Store) {
    let p = unique("range");
    let c = cid(&format!("{p}-c"));
    let t0 = far_time();
    let mk = |name: &str, s: i64| {
        tp(
            &format!("{p}-{name}"),
            &c,
            Channel::Web,
            &Kind::PAGE_VIEW,
            t0 + secs(s),
        )
    };
    let (before, five, a, b, twenty, at_end) = (
        mk("e", 0),
        mk("f", 5),
        mk("a", 10),
        mk("b", 10),
        mk("c", 20),
        mk("d", 30),
    );
    append(
        store,
        vec![
            at_end.clone(),
            b.clone(),
            five.clone(),
            twenty.clone(),
            a.clone(),
            before.clone(),
        ],
    )
    .await;

    let read = |start: i64, end: i64| {
        store.customer_touchpoints(&c, TimeRange::new(t0 + secs(start), t0 + secs(end)))
    };
    assert_eq!(
        read(10, 30).await.expect("customer_touchpoints failed"),
        vec![a.clone(), b.clone(), twenty.clone()],
        "[start, end) includes start, excludes end, orders ties by id"
    );
    assert_eq!(
        read(10, 11).await.expect("customer_touchpoints failed"),
        vec![a.clone(), b.clone()],
        "two touchpoints at the same instant, ordered by id"
    );
    assert!(
        read(10, 10)
            .await
            .expect("customer_touchpoints failed")
            .is_empty(),
        "an empty range holds nothing"
    );
    assert_eq!(
        history_of(store, &c).await,
        vec![before, five, a, b, twenty, at_end],
        "everything, ordered by (occurred_at, id)"
    );
    assert!(
        history_of(store, &cid(&format!("{p}-nobody")))
            .await
            .is_empty(),
        "an unknown customer has no touchpoints"
    );
}

/// Decision state: everything a decision reads in one call. Features computed in place by the
/// backend equal those computed from its touchpoints in the same range; a backend that does not
/// compute them returns exactly those touchpoints. An unknown customer has no state.
pub async fn decision_state_reads_profile_features_history_and_budgets(store: &dyn Store) {
    const FEATURES: &str = r#"
schema:
  touchpoint: { product: string, dwell_seconds: number, roaming: bool }
features:
  - { id: views_10m, aggregate: count, kinds: [product_view], window: 10m }
  - { id: long_views, aggregate: count, kinds: [product_view], window: 1d, filter: "touchpoint.dwell_seconds >= 60" }
  - { id: dwell, aggregate: sum, attribute: dwell_seconds, window: 1d }
  - { id: avg_dwell, aggregate: avg, attribute: dwell_seconds, kinds: [page_view], window: 1d }
  - { id: last_product, aggregate: last, attribute: product, window: 1d }
  - { id: products, aggregate: distinct_count, attribute: product, window: 1d }
  - { id: app_views, aggregate: count, channels: [app], window: 1d }
  - { id: roaming, aggregate: count, window: 1d, filter: "touchpoint.roaming" }
"#;
    let catalog = Arc::new(
        crate::arbitration::CompiledCatalog::compile(Catalog::from_yaml(FEATURES).unwrap(), 1)
            .unwrap(),
    );
    let p = unique("state");
    let c = cid(&format!("{p}-c"));
    upsert(
        store,
        vec![Customer::new(c.clone()).with_attribute("tier", "gold")],
    )
    .await;
    let t0 = far_time();
    let now = t0 + TimeDelta::days(1);
    let mut batch = Vec::new();
    for i in 0..40i64 {
        let (kind, channel) = match i % 4 {
            0 => (Kind::PAGE_VIEW, Channel::Web),
            1 | 2 => (Kind::PRODUCT_VIEW, Channel::App),
            _ => (Kind::PURCHASE, Channel::Web),
        };
        // Spread over the day before `now`, a few outside it, the last minutes dense.
        let at = now - mins(if i < 30 { 50 * i } else { 2 * (40 - i) }) - secs(i % 3);
        let mut t = tp(&format!("{p}-t{i:02}"), &c, channel, &kind, at)
            .with_attribute("dwell_seconds", (i * 7 % 120) as f64)
            .with_attribute("product", format!("sku-{}", i % 5));
        if i % 6 == 0 {
            t = t.with_attribute("roaming", true);
        }
        batch.push(t);
    }
    append(store, batch).await;
    let range = TimeRange::new(now - TimeDelta::days(1), now + TimeDelta::microseconds(1));
    let key = BudgetKey::new("weekly", "2200-w1");
    assert!(consume(store, &key, 10, 3).await.granted);
    let query = crate::store::DecisionStateQuery::new(c.clone())
        .touchpoints(Some(range))
        .contacts(Some(range))
        .budgets(vec![key, BudgetKey::new("unused", "total")]);

    let touchpoints = store.customer_touchpoints(&c, range).await.unwrap();
    assert!(touchpoints.len() > 20, "most touchpoints are in the range");
    let expected = catalog.compute_features(&touchpoints, now);
    assert!(
        matches!(expected.get(4), Some(Some(crate::model::Value::String(_)))),
        "the last product is known: {expected:?}"
    );

    let plain = store
        .decision_state(&query)
        .await
        .unwrap()
        .expect("a state");
    assert_eq!(plain.customer.id, c);
    assert_eq!(
        plain.customer.attributes,
        Customer::new(c.clone())
            .with_attribute("tier", "gold")
            .attributes
    );
    assert_eq!(plain.features, None, "no features asked for");
    assert_eq!(plain.touchpoints, touchpoints);
    assert_eq!(plain.budget_used, vec![3, 0]);
    assert_eq!(plain.contacts, contacts(store, &c, range).await);

    // The same features either way: computed in place, or from the touchpoints returned (all
    // of them, or those the features read). The second catalogue counts named kinds only, so a
    // backend may narrow the touchpoints it returns.
    let kinded = Arc::new(
        crate::arbitration::CompiledCatalog::compile(
            Catalog::from_yaml(
                r#"
schema:
  touchpoint: { dwell_seconds: number }
features:
  - { id: views_10m, aggregate: count, kinds: [product_view], window: 10m }
  - { id: long_views, aggregate: count, kinds: [product_view], window: 1d, filter: "touchpoint.dwell_seconds >= 60" }
  - { id: avg_dwell, aggregate: avg, attribute: dwell_seconds, kinds: [page_view], window: 2h }
"#,
            )
            .unwrap(),
            1,
        )
        .unwrap(),
    );
    for catalog in [&catalog, &kinded] {
        let expected = catalog.compute_features(&touchpoints, now);
        let asked = query.clone().features(Arc::clone(catalog), now);
        let state = store
            .decision_state(&asked)
            .await
            .unwrap()
            .expect("a state");
        match &state.features {
            Some(features) => {
                assert_eq!(features, &expected, "features computed in place");
                assert!(
                    state.touchpoints.is_empty(),
                    "features replace the touchpoints"
                );
            }
            None => {
                assert_eq!(
                    catalog.compute_features(&state.touchpoints, now),
                    expected,
                    "or the touchpoints to compute them"
                );
                assert!(
                    state.touchpoints.iter().all(|t| touchpoints.contains(t)),
                    "only touchpoints of the range"
                );
            }
        }
        assert_eq!(state.budget_used, vec![3, 0]);
    }
    assert!(
        catalog.touchpoint_kinds_read(now).is_none(),
        "some feature counts every kind"
    );
    assert_eq!(
        kinded.touchpoint_kinds_read(now),
        Some(vec![
            (Kind::PRODUCT_VIEW, now - TimeDelta::days(1)),
            (Kind::PAGE_VIEW, now - TimeDelta::hours(2))
        ])
    );

    let nobody = crate::store::DecisionStateQuery::new(cid(&format!("{p}-nobody")))
        .touchpoints(Some(range))
        .features(catalog, now);
    assert!(
        store.decision_state(&nobody).await.unwrap().is_none(),
        "no profile, no state"
    );
}

/// Decision states of many customers: `visit_decision_states` hands each customer, in order
/// and once, what `decision_state` answers for them (features computed in place or not, contact
/// history, budget use), `None` for an unknown id, the survivor's state for a merged id; over
/// more customers than a backend may read at once.
pub async fn visit_decision_states_hands_over_what_decision_state_reads(store: &dyn Store) {
    let catalog = Arc::new(
        crate::arbitration::CompiledCatalog::compile(
            Catalog::from_yaml(
                r#"
schema:
  touchpoint: { product: string, dwell_seconds: number }
features:
  - { id: views, aggregate: count, kinds: [product_view], window: 1d }
  - { id: dwell, aggregate: sum, attribute: dwell_seconds, window: 1d }
  - { id: last_product, aggregate: last, attribute: product, window: 1d }
contact_policy:
  - { rule: cap, id: shown-twice, scope: offer, outcome: shown, max: 2, window: 1d }
"#,
            )
            .unwrap(),
            1,
        )
        .unwrap(),
    );
    let p = unique("visit");
    let ids: Vec<CustomerId> = (0..300).map(|i| cid(&format!("{p}-c{i:03}"))).collect();
    upsert(
        store,
        ids.iter()
            .enumerate()
            .map(|(i, c)| Customer::new(c.clone()).with_attribute("n", i as f64))
            .collect(),
    )
    .await;
    let now = far_time() + TimeDelta::days(1);
    let mut batch = Vec::new();
    for (i, c) in ids.iter().enumerate() {
        // 0 to 4 touchpoints each, some outside the range.
        for j in 0..i % 5 {
            let kind = if j % 2 == 0 {
                Kind::PRODUCT_VIEW
            } else {
                Kind::PAGE_VIEW
            };
            let at = now - mins((i * 7 + j * 300) as i64 % 2000);
            batch.push(
                tp(&format!("{p}-t{i}-{j}"), c, Channel::Web, &kind, at)
                    .with_attribute("dwell_seconds", (i + j) as f64)
                    .with_attribute("product", format!("sku-{}", (i + j) % 7)),
            );
        }
    }
    append(store, batch).await;
    for (i, c) in ids.iter().enumerate().filter(|(i, _)| i % 50 == 3) {
        let d = DecisionId::new(format!("{p}-d{i}"));
        record(
            store,
            &decision(&d, c, Channel::Sms, now - mins(30), &[("o-1", "cat")]),
        )
        .await;
        outcome(store, &d, "o-1", OutcomeKind::Shown, now - mins(29)).await;
    }
    let (survivor, absorbed) = (ids[10].clone(), ids[11].clone());
    merge(store, &survivor, &absorbed).await;
    let key = BudgetKey::new(format!("{p}-budget"), "total");
    assert!(consume(store, &key, 10, 4).await.granted);

    let mut asked = ids.clone();
    asked.insert(150, cid(&format!("{p}-nobody")));
    asked.push(ids[0].clone());
    let range = TimeRange::new(now - TimeDelta::days(1), now + TimeDelta::microseconds(1));
    let plain = crate::store::DecisionStateQuery::new(CustomerId::default())
        .touchpoints(Some(range))
        .contacts(Some(range))
        .budgets(vec![key]);
    for query in [plain.clone(), plain.features(Arc::clone(&catalog), now)] {
        // A backend may hand over, instead of the contact history, what the query's catalogue
        // reads of it: then how many events it holds.
        let mut visited: Vec<(usize, Option<DecisionState>)> = Vec::new();
        let mut windows: Vec<Option<usize>> = Vec::new();
        store
            .visit_decision_states(&query, &asked, &mut |i, state| {
                windows.push(state.and_then(|s| s.contact_inputs).map(|w| w.len()));
                visited.push((
                    i,
                    state.map(|s| {
                        let owned = DecisionState::new(
                            s.customer.clone(),
                            s.touchpoints.to_vec(),
                            s.contacts.to_vec(),
                            s.budget_used.to_vec(),
                        );
                        // Or the inputs the features are computed from.
                        let mut computed = Vec::new();
                        let features = match (s.feature_inputs, &query.features) {
                            (Some(held), Some(request)) => {
                                let buffers = &mut crate::arbitration::FeatureBuffers::default();
                                let catalog = &request.catalog;
                                assert!(s.features.is_none(), "the features or their inputs");
                                assert!(catalog.compute_features_from(
                                    held,
                                    now,
                                    buffers,
                                    &mut computed
                                ));
                                Some(computed.as_slice())
                            }
                            _ => s.features,
                        };
                        match features {
                            Some(f) => owned.with_features(f.to_vec()),
                            None => owned,
                        }
                    }),
                ));
            })
            .await
            .expect("visit_decision_states failed");
        assert_eq!(
            visited.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
            (0..asked.len()).collect::<Vec<_>>(),
            "each customer once, in order"
        );
        for (((_, state), window), id) in visited.iter_mut().zip(&windows).zip(&asked) {
            let mut one = query.clone();
            one.customer = id.clone();
            let expected = store
                .decision_state(&one)
                .await
                .expect("decision_state failed");
            if let (Some(held), Some(state), Some(expected)) = (window, state.as_mut(), &expected) {
                assert!(
                    query.features.is_some(),
                    "contact inputs for a catalogue's query only"
                );
                assert!(
                    state.contacts.is_empty(),
                    "the history or the inputs, not both"
                );
                let counted = expected
                    .contacts
                    .iter()
                    .filter(|e| e.kind == OutcomeKind::Shown);
                assert_eq!(*held, counted.count(), "the contact inputs of {id}");
                state.contacts = expected.contacts.clone();
            }
            assert_eq!(state, &expected, "the state of {id}");
        }
        assert!(visited[150].1.is_none(), "an unknown id has no state");
        let merged = visited[11].1.as_ref().expect("a merged id has a state");
        assert_eq!(merged.customer.id, survivor, "the survivor's");
        let with_contacts = visited[3].1.as_ref().expect("a state");
        assert_eq!(with_contacts.contacts.len(), 1, "the contact history");
        assert!(
            windows[3].is_none_or(|held| held == 1),
            "the contact inputs"
        );
        assert_eq!(with_contacts.budget_used, vec![4]);
        if let Some(features) = &with_contacts.features {
            assert_eq!(features.len(), 3, "every feature");
        }
    }
}

/// Touchpoints, scans: paging returns every matching touchpoint exactly once, in
/// `(occurred_at, customer, id)` order, honouring the range, kinds and channels filters.
pub async fn scan_pages_return_every_match_once_in_order(store: &dyn Store) {
    let p = unique("scan");
    let customers: Vec<CustomerId> = (0..3).map(|i| cid(&format!("{p}-c{i}"))).collect();
    let kinds: Vec<Kind> = (0..3).map(|i| Kind::new(format!("{p}_k{i}"))).collect();
    let channels = [Channel::Web, Channel::App, Channel::Email];
    let t0 = far_time();
    let mut all: Vec<Touchpoint> = (0..30_usize)
        .map(|i| {
            let n = i64::try_from(i).unwrap_or(0);
            tp(
                // Ids run against time, so id order alone gives the wrong answer.
                &format!("{p}-t{:02}", 29 - i),
                &customers[i % 3],
                channels[(i / 5) % 3].clone(),
                &kinds[(i / 2) % 3],
                // Groups of four share an instant, across customers.
                t0 + mins(n / 4),
            )
        })
        .collect();
    // Just outside the range, on both sides.
    all.push(tp(
        &format!("{p}-early"),
        &customers[0],
        Channel::Web,
        &kinds[0],
        t0 - secs(1),
    ));
    all.push(tp(
        &format!("{p}-late"),
        &customers[1],
        Channel::Web,
        &kinds[0],
        t0 + mins(60),
    ));
    let (first, second) = all.split_at(17);
    append(store, second.to_vec()).await;
    append(store, first.to_vec()).await;

    let range = TimeRange::new(t0, t0 + mins(60));
    let filters = [
        TouchpointQuery::new(range).kinds(kinds.clone()),
        TouchpointQuery::new(range).kinds([kinds[0].clone(), kinds[2].clone()]),
        TouchpointQuery::new(range)
            .kinds(kinds.clone())
            .channels([Channel::Web, Channel::Email]),
        TouchpointQuery::new(TimeRange::all()).kinds([kinds[0].clone()]),
    ];
    for filter in &filters {
        let expected = scan_order(all.iter().filter(|t| filter.matches(t)).cloned().collect());
        assert!(!expected.is_empty());
        for limit in [1, 4, 7, 100] {
            assert_eq!(
                scan_all(store, filter, limit).await,
                expected,
                "scan of {filter:?} in pages of {limit}"
            );
        }
    }
    let one_page = store
        .scan_touchpoints(&ScanQuery::new(filters[0].clone(), 1000))
        .await
        .expect("scan_touchpoints failed");
    assert!(
        one_page.next.is_none(),
        "a page that holds every match must be the last one"
    );
    let none = TouchpointQuery::new(range).kinds([Kind::new(format!("{p}_none"))]);
    assert!(
        scan_all(store, &none, 5).await.is_empty(),
        "no match: an empty scan"
    );
}

/// Touchpoints, aggregates: touchpoint and distinct-customer counts per channel, kind and time
/// bucket, rows ordered by `(bucket, channel, kind)`, one row of zeros for an ungrouped empty query.
pub async fn aggregate_counts_touchpoints_and_customers_per_group(store: &dyn Store) {
    let p = unique("agg");
    let customers: Vec<CustomerId> = (0..3).map(|i| cid(&format!("{p}-c{i}"))).collect();
    let (ka, kb) = (Kind::new(format!("{p}_a")), Kind::new(format!("{p}_b")));
    // Channels whose enum order and name order agree, so either is a valid row order.
    let channels = [Channel::App, Channel::Call, Channel::Email];
    let t0 = far_time();
    let mut all: Vec<Touchpoint> = (0..24_usize)
        .map(|i| {
            let n = i64::try_from(i).unwrap_or(0);
            tp(
                &format!("{p}-t{i}"),
                &customers[i % 3],
                channels[(i / 2) % 3].clone(),
                if (i / 3) % 2 == 0 { &ka } else { &kb },
                // About nine days: several hours, days and two or three ISO weeks.
                t0 + TimeDelta::hours(n * 9) + mins(n),
            )
        })
        .collect();
    all.push(tp(
        &format!("{p}-out"),
        &customers[0],
        Channel::App,
        &ka,
        t0 - secs(1),
    ));
    append(store, all.clone()).await;

    let filter = TouchpointQuery::new(TimeRange::new(t0, t0 + TimeDelta::days(30)))
        .kinds([ka.clone(), kb.clone()]);
    let total = aggregate(store, &AggregateQuery::new(filter.clone())).await;
    assert_eq!(
        total,
        vec![AggregateRow::new(None, None, None, 24, 3)],
        "ungrouped: 24 touchpoints of 3 distinct customers in range"
    );
    let queries = [
        AggregateQuery::new(filter.clone()).by_channel(),
        AggregateQuery::new(filter.clone()).by_kind(),
        AggregateQuery::new(filter.clone()).by_bucket(Bucket::Day),
        AggregateQuery::new(filter.clone()).by_bucket(Bucket::Week),
        AggregateQuery::new(filter.clone()).by_channel().by_kind(),
        AggregateQuery::new(filter.clone())
            .by_channel()
            .by_kind()
            .by_bucket(Bucket::Hour),
        AggregateQuery::new(filter.clone().channels([Channel::Call])).by_kind(),
        AggregateQuery::new(filter.clone().channels([Channel::Call, Channel::Email])),
    ];
    for q in &queries {
        assert_eq!(
            aggregate(store, q).await,
            expected_rows(&all, q),
            "aggregate {q:?}"
        );
    }

    let nothing = TouchpointQuery::new(TimeRange::all()).kinds([Kind::new(format!("{p}_none"))]);
    assert_eq!(
        aggregate(store, &AggregateQuery::new(nothing.clone())).await,
        vec![AggregateRow::new(None, None, None, 0, 0)],
        "an ungrouped query on no data returns one row of zeros"
    );
    assert!(
        aggregate(store, &AggregateQuery::new(nothing).by_channel())
            .await
            .is_empty(),
        "a grouped query on no data returns no rows"
    );
}

// ---------------------------------------------------------------------------------------------
// Customers.
// ---------------------------------------------------------------------------------------------

/// Customers, upsert: the report counts new customers as inserted and existing ones as updated.
pub async fn upsert_reports_inserted_and_updated(store: &dyn Store) {
    let p = unique("upsert");
    let (a, b, c) = (
        cid(&format!("{p}-a")),
        cid(&format!("{p}-b")),
        cid(&format!("{p}-c")),
    );
    let r = upsert(
        store,
        vec![Customer::new(a.clone()), Customer::new(b.clone())],
    )
    .await;
    assert_eq!(r, UpsertReport::new(2, 0), "two new customers");
    let a2 = Customer::new(a.clone()).with_attribute("plan", "M");
    let r = upsert(store, vec![a2.clone(), Customer::new(c.clone())]).await;
    assert_eq!(r, UpsertReport::new(1, 1), "one replaced, one new");
    assert_eq!(get(store, &a).await, Some(a2));
    assert_eq!(
        upsert(store, Vec::new()).await,
        UpsertReport::new(0, 0),
        "an empty batch"
    );
    let n = store
        .count_customers()
        .await
        .expect("count_customers failed");
    assert!(
        n >= 3,
        "count_customers is {n}, but this case alone stored 3"
    );
}

/// Customers, upsert: the whole profile (attributes, identities, consent, PII marks) is
/// replaced, and identities are re-indexed.
pub async fn upsert_replaces_the_whole_profile(store: &dyn Store) {
    let p = unique("replace");
    let c = cid(&format!("{p}-c"));
    let (mail1, mail2) = (email(&p, "old"), email(&p, "new"));
    let phone = Identity::phone(&format!("+1 {}", random_u64() % 1_000_000_000));
    let since = far_time();
    let v1 = Customer::new(c.clone())
        .with_attribute("plan", "S")
        .with_attribute("data_cap_gb", 10.0)
        .with_pii_attribute("full_name", "Ann Lee")
        .with_identity(mail1.clone())
        .with_identity(phone.clone())
        .with_consent(Consent::granted(Channel::Sms, Purpose::MARKETING, since))
        .with_consent(Consent::denied(Channel::Email, Purpose::MARKETING, since));
    assert_eq!(
        upsert(store, vec![v1.clone()]).await,
        UpsertReport::new(1, 0)
    );
    assert_eq!(
        get(store, &c).await,
        Some(canonical(v1)),
        "the profile as stored"
    );

    let v2 = Customer::new(c.clone())
        .with_attribute("plan", "M")
        .with_identity(mail2.clone());
    assert_eq!(
        upsert(store, vec![v2.clone()]).await,
        UpsertReport::new(0, 1)
    );
    assert_eq!(
        get(store, &c).await,
        Some(canonical(v2)),
        "an upsert replaces the whole profile: no attribute, identity, consent or PII mark of \
         the old one survives"
    );
    assert_eq!(
        resolve(store, &mail2).await,
        Some(c.clone()),
        "a new identity resolves"
    );
    assert_eq!(
        resolve(store, &mail1).await,
        None,
        "a dropped identity must not resolve"
    );
    assert_eq!(
        resolve(store, &phone).await,
        None,
        "a dropped identity must not resolve"
    );
}

/// Customers, upsert: an identity removed from a profile no longer resolves, and another
/// customer may then claim it.
pub async fn upsert_removed_identity_no_longer_resolves(store: &dyn Store) {
    let p = unique("unclaim");
    let (a, b) = (cid(&format!("{p}-a")), cid(&format!("{p}-b")));
    let mail = email(&p, "shared");
    upsert(
        store,
        vec![Customer::new(a.clone()).with_identity(mail.clone())],
    )
    .await;
    assert_eq!(resolve(store, &mail).await, Some(a.clone()));
    upsert(store, vec![Customer::new(a.clone())]).await;
    assert_eq!(
        resolve(store, &mail).await,
        None,
        "a removed identity must not resolve"
    );
    let r = store
        .upsert_customers(vec![Customer::new(b.clone()).with_identity(mail.clone())])
        .await;
    assert!(
        r.is_ok(),
        "an identity nobody holds any more can be claimed by another customer: {r:?}"
    );
    assert_eq!(resolve(store, &mail).await, Some(b));
}

/// Customers, upsert is atomic: one invalid customer fails the batch with `Error::Validation`
/// naming it, and nothing of the batch (new customers, updates, identities) is stored.
pub async fn upsert_invalid_customer_stores_nothing(store: &dyn Store) {
    let p = unique("bad-customer");
    let (x, y, z) = (
        cid(&format!("{p}-x")),
        cid(&format!("{p}-y")),
        cid(&format!("{p}-z")),
    );
    let (mx, mz) = (email(&p, "x"), email(&p, "z"));
    let z1 = Customer::new(z.clone()).with_attribute("plan", "S");
    upsert(store, vec![z1.clone()]).await;

    let batch = vec![
        Customer::new(z.clone())
            .with_attribute("plan", "M")
            .with_identity(mz.clone()),
        Customer::new(x.clone()).with_identity(mx.clone()),
        Customer::new(y.clone()).with_attribute("score", f64::NAN),
    ];
    let (item, field) = expect_validation(store.upsert_customers(batch).await, "a NaN attribute");
    assert!(
        item.contains(&format!("{:?}", y.as_str())),
        "the error must name the invalid customer, got item {item:?}"
    );
    assert_eq!(field, "attributes.score", "the error must name the field");
    assert_eq!(
        get(store, &x).await,
        None,
        "a valid new customer of a failed batch must not be stored"
    );
    assert_eq!(get(store, &y).await, None);
    assert_eq!(
        get(store, &z).await,
        Some(z1),
        "an update in a failed batch must not be applied"
    );
    assert_eq!(
        resolve(store, &mx).await,
        None,
        "identities of a failed batch must not resolve"
    );
    assert_eq!(
        resolve(store, &mz).await,
        None,
        "identities of a failed batch must not resolve"
    );
}

/// Customers, upsert: an identity held by another customer, or claimed twice in one batch, is
/// `Error::Conflict` (never naming the identity's value), and nothing of the batch is stored.
pub async fn upsert_identity_conflict_stores_nothing(store: &dyn Store) {
    let p = unique("conflict");
    let [a, b, c, d, e] = ["a", "b", "c", "d", "e"].map(|s| cid(&format!("{p}-{s}")));
    let held = email(&p, "held");
    let a1 = Customer::new(a.clone())
        .with_attribute("plan", "S")
        .with_identity(held.clone());
    upsert(store, vec![a1.clone()]).await;

    let err = expect_conflict(
        store
            .upsert_customers(vec![
                Customer::new(c.clone()),
                Customer::new(b.clone()).with_identity(held.clone()),
            ])
            .await,
        "claiming an identity another customer holds",
    );
    assert!(
        !err.to_string().contains(held.value.as_str()),
        "errors must never include an identity's value, got {err}"
    );
    assert_eq!(
        get(store, &b).await,
        None,
        "nothing of a conflicting batch is stored"
    );
    assert_eq!(
        get(store, &c).await,
        None,
        "nothing of a conflicting batch is stored"
    );
    assert_eq!(
        resolve(store, &held).await,
        Some(a.clone()),
        "the holder keeps its identity"
    );
    assert_eq!(get(store, &a).await, Some(a1.clone()));

    let twice = email(&p, "twice");
    expect_conflict(
        store
            .upsert_customers(vec![
                Customer::new(d.clone()).with_identity(twice.clone()),
                Customer::new(e.clone()).with_identity(twice.clone()),
            ])
            .await,
        "one identity claimed by two customers of one batch",
    );
    assert_eq!(
        get(store, &d).await,
        None,
        "nothing of a conflicting batch is stored"
    );
    assert_eq!(
        get(store, &e).await,
        None,
        "nothing of a conflicting batch is stored"
    );
    assert_eq!(resolve(store, &twice).await, None);

    let r = store.upsert_customers(vec![a1.clone()]).await;
    assert_eq!(
        r.ok(),
        Some(UpsertReport::new(0, 1)),
        "re-upserting a customer with its own identities is no conflict"
    );
}

/// Customers, get: `customers` answers in the requested order, `None` where there is no
/// profile; `resolve_customer` of a profile is itself, of an unknown id `None`.
pub async fn customers_keep_the_requested_order_with_gaps(store: &dyn Store) {
    let p = unique("many");
    let (a, b, missing) = (
        cid(&format!("{p}-a")),
        cid(&format!("{p}-b")),
        cid(&format!("{p}-x")),
    );
    let ca = Customer::new(a.clone()).with_attribute("n", 1);
    let cb = Customer::new(b.clone()).with_attribute("n", 2);
    upsert(store, vec![ca.clone(), cb.clone()]).await;
    let got: Vec<Option<Customer>> = store
        .customers(&[b.clone(), missing.clone(), a.clone(), b.clone()])
        .await
        .expect("customers failed")
        .into_iter()
        .map(canonical_opt)
        .collect();
    assert_eq!(
        got,
        vec![Some(cb.clone()), None, Some(ca), Some(cb)],
        "same order as asked, None for the unknown id, repeats answered again"
    );
    assert!(
        store
            .customers(&[])
            .await
            .expect("customers failed")
            .is_empty()
    );
    assert_eq!(get(store, &missing).await, None);
    assert_eq!(
        resolve_id(store, &a).await,
        Some(a.clone()),
        "a profile resolves to itself"
    );
    assert_eq!(
        resolve_id(store, &missing).await,
        None,
        "an unknown id resolves to nothing"
    );
}

// ---------------------------------------------------------------------------------------------
// Merges.
// ---------------------------------------------------------------------------------------------

/// Customers, merge: the absorbed customer's touchpoints (duplicates by id dropped), decisions
/// and contact history become the survivor's, and counts follow the merge.
pub async fn merge_moves_touchpoints_decisions_and_contacts(store: &dyn Store) {
    let p = unique("merge-history");
    let (s, a) = (cid(&format!("{p}-s")), cid(&format!("{p}-a")));
    upsert(
        store,
        vec![Customer::new(s.clone()), Customer::new(a.clone())],
    )
    .await;
    let t0 = far_time();
    let dup = format!("{p}-dup");
    let s_tps = vec![
        tp(&format!("{p}-s1"), &s, Channel::Web, &Kind::PAGE_VIEW, t0),
        tp(&dup, &s, Channel::Web, &Kind::PAGE_VIEW, t0 + secs(5))
            .with_attribute("who", "survivor"),
        tp(
            &format!("{p}-s2"),
            &s,
            Channel::App,
            &Kind::PURCHASE,
            t0 + secs(20),
        ),
    ];
    let a_tps = vec![
        tp(
            &format!("{p}-a1"),
            &a,
            Channel::Call,
            &Kind::COMPLAINT,
            t0 + secs(1),
        ),
        tp(&dup, &a, Channel::Web, &Kind::PAGE_VIEW, t0 + secs(6))
            .with_attribute("who", "absorbed"),
        tp(
            &format!("{p}-a2"),
            &a,
            Channel::Web,
            &Kind::PAGE_VIEW,
            t0 + secs(30),
        ),
    ];
    append(store, s_tps.clone()).await;
    append(store, a_tps.clone()).await;

    let (ds, da) = (
        DecisionId::new(format!("{p}-ds")),
        DecisionId::new(format!("{p}-da")),
    );
    record(
        store,
        &decision(&ds, &s, Channel::Sms, t0, &[("o1", "upsell")]),
    )
    .await;
    let da_decision = decision(&da, &a, Channel::Email, t0, &[("o1", "upsell")]);
    record(store, &da_decision).await;
    outcome(store, &ds, "o1", OutcomeKind::Shown, t0 + secs(1)).await;
    outcome(store, &da, "o1", OutcomeKind::Shown, t0 + secs(2)).await;
    outcome(store, &da, "o1", OutcomeKind::Accepted, t0 + secs(3)).await;

    let report = merge(store, &s, &a).await;
    assert_eq!(
        report,
        MergeReport::new(2, 1, 0),
        "2 touchpoints moved (the duplicate id dropped), 1 decision moved, no identity gained"
    );
    let mut expected = s_tps.clone();
    expected.push(under(&a_tps[0], &s));
    expected.push(under(&a_tps[2], &s));
    assert_eq!(
        history_of(store, &s).await,
        by_time_and_id(expected),
        "the survivor holds both histories, under its own id, the survivor's version of a \
         duplicate id kept"
    );
    assert_eq!(
        stored_decision(store, &da).await,
        Some(Decision {
            customer: s.clone(),
            ..da_decision
        }),
        "the absorbed customer's decision becomes the survivor's"
    );
    let history = contacts(store, &s, TimeRange::all()).await;
    assert_eq!(
        history
            .iter()
            .map(|e| (&e.decision, e.kind))
            .collect::<Vec<_>>(),
        vec![
            (&ds, OutcomeKind::Shown),
            (&da, OutcomeKind::Shown),
            (&da, OutcomeKind::Accepted)
        ],
        "the survivor's contact history holds both, oldest first"
    );
    assert!(
        history.iter().all(|e| e.customer == s),
        "moved contact-history entries belong to the survivor"
    );
    let queries = [
        all_kinds_count(ContactKey::All, OutcomeKind::Shown),
        all_kinds_count(ContactKey::All, OutcomeKind::Accepted),
        all_kinds_count(ContactKey::Channel(Channel::Email), OutcomeKind::Shown),
    ];
    assert_eq!(counts(store, &s, &queries).await, vec![2, 1, 1]);
    assert_eq!(
        counts(store, &a, &queries).await,
        vec![2, 1, 1],
        "counts under the absorbed id follow the merge"
    );
    outcome(store, &da, "o1", OutcomeKind::Converted, t0 + secs(4)).await;
    assert_eq!(
        counts(
            store,
            &s,
            &[all_kinds_count(ContactKey::All, OutcomeKind::Converted)]
        )
        .await,
        vec![1],
        "an outcome recorded after the merge on a moved decision counts for the survivor"
    );
}

/// Customers, merge: the survivor keeps its attributes and gains the absorbed one's missing
/// attributes, identities, PII marks and consent (the later record wins per channel and purpose).
pub async fn merge_combines_profiles_by_the_contract_rules(store: &dyn Store) {
    let p = unique("merge-profile");
    let (s, a) = (cid(&format!("{p}-s")), cid(&format!("{p}-a")));
    let (ms, ma) = (email(&p, "s"), email(&p, "a"));
    let pa = Identity::phone(&format!("+44 {}", random_u64() % 1_000_000_000));
    let t1 = far_time();
    let (t2, t3) = (t1 + TimeDelta::days(10), t1 + TimeDelta::days(20));
    let survivor = Customer::new(s.clone())
        .with_attribute("plan", "S")
        .with_attribute("region", "north")
        .with_identity(ms.clone())
        .with_consent(Consent::granted(Channel::Sms, Purpose::MARKETING, t1))
        .with_consent(Consent::granted(Channel::Email, Purpose::MARKETING, t3));
    let absorbed = Customer::new(a.clone())
        .with_attribute("plan", "M")
        .with_attribute("age", 30)
        .with_pii_attribute("full_name", "Ann Lee")
        .with_identity(ma.clone())
        .with_identity(pa.clone())
        .with_consent(Consent::denied(Channel::Sms, Purpose::MARKETING, t2))
        .with_consent(Consent::denied(Channel::Email, Purpose::MARKETING, t2))
        .with_consent(Consent::granted(Channel::Web, Purpose::SERVICE, t1));
    upsert(store, vec![survivor, absorbed]).await;

    let report = merge(store, &s, &a).await;
    assert_eq!(
        report.identities_added, 2,
        "the survivor gains 2 identities: {report:?}"
    );
    let merged = get(store, &s)
        .await
        .expect("the survivor must still have a profile");
    let expected = canonical(
        Customer::new(s.clone())
            .with_attribute("plan", "S")
            .with_attribute("region", "north")
            .with_attribute("age", 30)
            .with_pii_attribute("full_name", "Ann Lee")
            .with_identity(ms.clone())
            .with_identity(ma.clone())
            .with_identity(pa.clone())
            // The absorbed record is later on sms, the survivor's on email.
            .with_consent(Consent::denied(Channel::Sms, Purpose::MARKETING, t2))
            .with_consent(Consent::granted(Channel::Email, Purpose::MARKETING, t3))
            .with_consent(Consent::granted(Channel::Web, Purpose::SERVICE, t1)),
    );
    assert_eq!(
        merged.attributes, expected.attributes,
        "the survivor keeps its own attributes (plan) and gains only missing ones"
    );
    assert_eq!(
        merged.pii, expected.pii,
        "the survivor gains the absorbed PII marks"
    );
    assert_eq!(
        merged.identities, expected.identities,
        "the survivor gains the identities"
    );
    assert_eq!(
        merged.consents, expected.consents,
        "consent: the later record wins per channel and purpose"
    );
    assert_eq!(merged, expected);

    assert_eq!(
        get(store, &a).await,
        None,
        "the absorbed id has no profile of its own"
    );
    assert_eq!(
        resolve_id(store, &a).await,
        Some(s.clone()),
        "the absorbed id resolves to the survivor"
    );
    assert_eq!(resolve_id(store, &s).await, Some(s.clone()));
    for identity in [&ms, &ma, &pa] {
        assert_eq!(
            resolve(store, identity).await,
            Some(s.clone()),
            "every identity of both resolves to the survivor"
        );
    }
}

/// Customers, merge: the absorbed id, and every id merged into it before, resolves to the
/// survivor, including for touchpoints and decisions recorded later under it.
pub async fn merge_absorbed_ids_resolve_to_the_survivor(store: &dyn Store) {
    let p = unique("merge-chain");
    let [c1, c2, c3] = ["c1", "c2", "c3"].map(|s| cid(&format!("{p}-{s}")));
    let m1 = email(&p, "one");
    upsert(
        store,
        vec![
            Customer::new(c1.clone()).with_identity(m1.clone()),
            Customer::new(c2.clone()),
            Customer::new(c3.clone()),
        ],
    )
    .await;
    let t0 = far_time();
    let old = tp(&format!("{p}-old"), &c1, Channel::Web, &Kind::PAGE_VIEW, t0);
    append(store, vec![old.clone()]).await;

    merge(store, &c2, &c1).await;
    merge(store, &c3, &c2).await;
    assert_eq!(
        resolve_id(store, &c1).await,
        Some(c3.clone()),
        "c1 -> c2 -> c3 resolves to c3"
    );
    assert_eq!(resolve_id(store, &c2).await, Some(c3.clone()));
    assert_eq!(resolve(store, &m1).await, Some(c3.clone()));
    assert_eq!(get(store, &c1).await, None);
    assert_eq!(get(store, &c2).await, None);

    let late = tp(
        &format!("{p}-late"),
        &c1,
        Channel::App,
        &Kind::PURCHASE,
        t0 + secs(10),
    );
    let by_mail = Touchpoint::new(
        format!("{p}-mail"),
        m1.clone(),
        Channel::Email,
        Kind::MESSAGE_OPENED,
        t0 + secs(20),
    );
    let report = append(store, vec![late.clone(), old.clone(), by_mail.clone()]).await;
    assert_eq!(
        report,
        AppendReport::new(2, 1),
        "the old touchpoint, sent again under the absorbed id, is a duplicate of the moved one"
    );
    assert_eq!(
        history_of(store, &c3).await,
        vec![under(&old, &c3), under(&late, &c3), under(&by_mail, &c3)],
        "touchpoints ingested later under an absorbed id or identity land on the survivor"
    );

    let d = DecisionId::new(format!("{p}-d"));
    let recorded = decision(&d, &c1, Channel::Sms, t0, &[("o1", "upsell")]);
    record(store, &recorded).await;
    assert_eq!(
        stored_decision(store, &d).await.map(|d| d.customer),
        Some(c3.clone()),
        "a decision recorded under an absorbed id is stored under the survivor"
    );
    outcome(store, &d, "o1", OutcomeKind::Shown, t0 + secs(1)).await;
    assert_eq!(
        counts(
            store,
            &c3,
            &[all_kinds_count(ContactKey::All, OutcomeKind::Shown)]
        )
        .await,
        vec![1]
    );
}

/// Customers, merge: both ids must exist (`Error::NotFound`) and differ (`Error::Validation`);
/// a failed merge changes nothing.
pub async fn merge_rejects_unknown_and_identical_ids(store: &dyn Store) {
    let p = unique("merge-errors");
    let (s, a, x) = (
        cid(&format!("{p}-s")),
        cid(&format!("{p}-a")),
        cid(&format!("{p}-x")),
    );
    let cs = Customer::new(s.clone()).with_attribute("plan", "S");
    let ca = Customer::new(a.clone()).with_attribute("plan", "A");
    upsert(store, vec![cs.clone(), ca.clone()]).await;
    expect_not_found(
        store.merge_customers(&s, &x).await,
        "merging in an unknown customer",
    );
    expect_not_found(
        store.merge_customers(&x, &a).await,
        "merging into an unknown customer",
    );
    expect_validation(
        store.merge_customers(&s, &s).await,
        "merging a customer into itself",
    );
    assert_eq!(
        get(store, &s).await,
        Some(cs),
        "a failed merge changes nothing"
    );
    assert_eq!(
        get(store, &a).await,
        Some(ca),
        "a failed merge changes nothing"
    );
    assert_eq!(resolve_id(store, &a).await, Some(a.clone()));
    assert_eq!(get(store, &x).await, None, "a failed merge creates nothing");
}

// ---------------------------------------------------------------------------------------------
// Forget.
// ---------------------------------------------------------------------------------------------

/// Customers, forget: profile, identities, merge aliases, touchpoints, decisions and contact
/// history are erased and no query returns them; other customers and budget counters stay.
pub async fn forget_erases_everything_about_the_customer(store: &dyn Store) {
    let p = unique("forget");
    let [f, a, n] = ["f", "a", "n"].map(|s| cid(&format!("{p}-{s}")));
    let (mf, ma, mn) = (email(&p, "f"), email(&p, "a"), email(&p, "n"));
    let kind = Kind::new(format!("{p}_k"));
    upsert(
        store,
        vec![
            Customer::new(f.clone()).with_identity(mf.clone()),
            Customer::new(a.clone()).with_identity(ma.clone()),
            Customer::new(n.clone()).with_identity(mn.clone()),
        ],
    )
    .await;
    let t0 = far_time();
    let mut batch: Vec<Touchpoint> = (0..3)
        .map(|i| tp(&format!("{p}-f{i}"), &f, Channel::Web, &kind, t0 + secs(i)))
        .collect();
    batch.push(tp(
        &format!("{p}-a0"),
        &a,
        Channel::App,
        &kind,
        t0 + secs(5),
    ));
    let neighbour: Vec<Touchpoint> = (0..2)
        .map(|i| tp(&format!("{p}-n{i}"), &n, Channel::Web, &kind, t0 + secs(i)))
        .collect();
    batch.extend(neighbour.clone());
    append(store, batch).await;

    let [df, da, dn] = ["df", "da", "dn"].map(|s| DecisionId::new(format!("{p}-{s}")));
    record(
        store,
        &decision(&df, &f, Channel::Sms, t0, &[("o1", "upsell")]),
    )
    .await;
    record(
        store,
        &decision(&da, &a, Channel::Sms, t0, &[("o1", "upsell")]),
    )
    .await;
    record(
        store,
        &decision(&dn, &n, Channel::Sms, t0, &[("o1", "upsell")]),
    )
    .await;
    outcome(store, &df, "o1", OutcomeKind::Shown, t0 + secs(1)).await;
    outcome(store, &df, "o1", OutcomeKind::Accepted, t0 + secs(2)).await;
    outcome(store, &da, "o1", OutcomeKind::Shown, t0 + secs(3)).await;
    outcome(store, &dn, "o1", OutcomeKind::Shown, t0 + secs(1)).await;
    let budget = BudgetKey::new(format!("{p}-budget"), "total");
    consume(store, &budget, 10, 5).await;

    // `a` becomes an alias of `f`, so forgetting `f` must erase the alias too.
    merge(store, &f, &a).await;
    let report = store
        .forget_customer(&f)
        .await
        .expect("forget_customer failed");
    assert_eq!(
        report,
        ForgetReport::new(true, 4, 2, 3),
        "the report says what was erased: the profile, 4 touchpoints, 2 decisions, 3 contacts"
    );

    assert_eq!(get(store, &f).await, None, "customer(forgotten)");
    let many = store
        .customers(&[f.clone(), a.clone()])
        .await
        .expect("customers failed");
    assert_eq!(many, vec![None, None], "customers(forgotten, its alias)");
    assert_eq!(
        resolve(store, &mf).await,
        None,
        "the forgotten customer's identity must not resolve"
    );
    assert_eq!(
        resolve(store, &ma).await,
        None,
        "the alias's identity must not resolve"
    );
    assert_eq!(
        resolve_id(store, &f).await,
        None,
        "resolve_customer(forgotten)"
    );
    assert_eq!(
        resolve_id(store, &a).await,
        None,
        "the merge alias must be erased"
    );
    assert!(
        history_of(store, &f).await.is_empty(),
        "customer_touchpoints(forgotten)"
    );
    assert!(
        history_of(store, &a).await.is_empty(),
        "customer_touchpoints(alias)"
    );
    let filter = TouchpointQuery::new(TimeRange::all()).kinds([kind]);
    assert_eq!(
        scan_all(store, &filter, 2).await,
        neighbour,
        "scans must return only the other customer's touchpoints"
    );
    assert_eq!(
        aggregate(store, &AggregateQuery::new(filter)).await,
        vec![AggregateRow::new(None, None, None, 2, 1)],
        "aggregates must no longer count the forgotten customer"
    );
    assert!(
        contacts(store, &f, TimeRange::all()).await.is_empty(),
        "contact_history(forgotten)"
    );
    assert!(
        contacts(store, &a, TimeRange::all()).await.is_empty(),
        "contact_history(alias)"
    );
    let everything: Vec<ContactCount> = OutcomeKind::ALL
        .iter()
        .map(|k| all_kinds_count(ContactKey::All, *k))
        .collect();
    assert_eq!(
        counts(store, &f, &everything).await,
        vec![0; 5],
        "count_contacts(forgotten)"
    );
    assert_eq!(
        stored_decision(store, &df).await,
        None,
        "decision(forgotten customer's)"
    );
    assert_eq!(stored_decision(store, &da).await, None, "decision(alias's)");

    assert!(
        stored_decision(store, &dn).await.is_some(),
        "another customer's decision stays"
    );
    assert_eq!(
        history_of(store, &n).await,
        neighbour,
        "another customer's touchpoints stay"
    );
    assert_eq!(
        resolve(store, &mn).await,
        Some(n.clone()),
        "another customer's identity stays"
    );
    assert_eq!(counts(store, &n, &everything[..1]).await, vec![1]);
    assert_eq!(
        used(store, &budget).await,
        5,
        "budget counters are aggregates: unchanged"
    );
}

/// Customers, forget: forgetting again or forgetting an unknown id is not an error and reports
/// nothing erased; touchpoints of an id without a profile are erased too.
pub async fn forget_is_idempotent(store: &dyn Store) {
    let p = unique("forget-again");
    let (c, bare, x) = (
        cid(&format!("{p}-c")),
        cid(&format!("{p}-bare")),
        cid(&format!("{p}-x")),
    );
    upsert(store, vec![Customer::new(c.clone())]).await;
    let t0 = far_time();
    append(
        store,
        vec![
            tp(&format!("{p}-t"), &c, Channel::Web, &Kind::PAGE_VIEW, t0),
            tp(&format!("{p}-b"), &bare, Channel::Web, &Kind::PAGE_VIEW, t0),
        ],
    )
    .await;
    let forget = |id: CustomerId| async move {
        store
            .forget_customer(&id)
            .await
            .expect("forget_customer failed")
    };
    assert_eq!(forget(c.clone()).await, ForgetReport::new(true, 1, 0, 0));
    assert_eq!(
        forget(c.clone()).await,
        ForgetReport::default(),
        "forgetting again succeeds and erases nothing"
    );
    assert_eq!(
        forget(x).await,
        ForgetReport::default(),
        "forgetting an unknown id succeeds"
    );
    assert_eq!(
        forget(bare.clone()).await,
        ForgetReport::new(false, 1, 0, 0),
        "an id without a profile: its touchpoints are erased"
    );
    assert!(history_of(store, &bare).await.is_empty());
}

/// Customers, forget: forgetting an id that was merged forgets the customer it was merged into.
pub async fn forget_absorbed_id_forgets_the_survivor(store: &dyn Store) {
    let p = unique("forget-alias");
    let (s, a) = (cid(&format!("{p}-s")), cid(&format!("{p}-a")));
    let ms = email(&p, "s");
    upsert(
        store,
        vec![
            Customer::new(s.clone()).with_identity(ms.clone()),
            Customer::new(a.clone()),
        ],
    )
    .await;
    let t0 = far_time();
    append(
        store,
        vec![
            tp(&format!("{p}-s"), &s, Channel::Web, &Kind::PAGE_VIEW, t0),
            tp(&format!("{p}-a"), &a, Channel::Web, &Kind::PAGE_VIEW, t0),
        ],
    )
    .await;
    merge(store, &s, &a).await;
    let report = store
        .forget_customer(&a)
        .await
        .expect("forget_customer failed");
    assert_eq!(
        report,
        ForgetReport::new(true, 2, 0, 0),
        "forgetting the absorbed id erases the survivor's profile and both touchpoints"
    );
    assert_eq!(get(store, &s).await, None, "the survivor is forgotten");
    assert_eq!(resolve_id(store, &s).await, None);
    assert_eq!(resolve_id(store, &a).await, None);
    assert_eq!(resolve(store, &ms).await, None);
    assert!(history_of(store, &s).await.is_empty());
}

// ---------------------------------------------------------------------------------------------
// Catalogue.
// ---------------------------------------------------------------------------------------------

/// Catalogue, versions: each put adds the next version and makes it current; stored versions
/// stay readable and unchanged; the history lists every version oldest first with its metadata.
pub async fn catalog_put_adds_a_version_and_keeps_old_ones(store: &dyn Store) {
    let p = unique("catalog");
    let (cat1, cat2) = (
        catalog_tagged(&format!("{p}-1")),
        catalog_tagged(&format!("{p}-2")),
    );
    let at = far_time();
    let before = current_version(store).await;

    let meta1 = CatalogMeta::new()
        .author("ann")
        .comment(format!("{p} first"))
        .at(at);
    let v1 = store
        .put_catalog(&cat1, meta1)
        .await
        .expect("put_catalog failed");
    assert_eq!(v1.version, before + 1, "a put stores the next version");
    assert_eq!(
        (v1.author.as_deref(), v1.comment.clone()),
        (Some("ann"), Some(format!("{p} first")))
    );
    let read1 = store
        .catalog(Some(v1.version))
        .await
        .expect("catalog failed")
        .expect("the version just put must be readable");

    let meta2 = CatalogMeta::new()
        .author("bob")
        .comment(format!("{p} second"))
        .at(at + secs(1));
    let v2 = store
        .put_catalog(&cat2, meta2)
        .await
        .expect("put_catalog failed");
    assert_eq!(
        v2.version,
        v1.version + 1,
        "versions increase by 1 with each put"
    );

    let current = store
        .catalog(None)
        .await
        .expect("catalog failed")
        .expect("a current catalogue");
    assert_eq!(
        (&current.version, &current.catalog),
        (&v2, &cat2),
        "the latest put is current"
    );
    let old = store
        .catalog(Some(v1.version))
        .await
        .expect("catalog failed")
        .expect("an old version must stay readable");
    assert_eq!(
        (&old.version, &old.catalog),
        (&v1, &cat1),
        "an old version is what was put"
    );
    assert_eq!(old, read1, "a stored version never changes");

    let history = history_versions(store).await;
    let numbers: Vec<u64> = history.iter().map(|v| v.version).collect();
    assert_eq!(
        numbers,
        (1..=v2.version).collect::<Vec<_>>(),
        "history: every version, from 1, oldest first"
    );
    assert_eq!(
        history[history.len() - 2..].to_vec(),
        vec![v1, v2.clone()],
        "history records carry author and comment"
    );
    assert_eq!(
        store
            .catalog(Some(v2.version + 1_000))
            .await
            .expect("catalog failed"),
        None,
        "a version that does not exist is Ok(None)"
    );
}

/// Catalogue, optimistic concurrency: a put expecting a version that is not current fails with
/// `Error::Conflict` and stores nothing; `Some(0)` means "no catalogue yet".
pub async fn catalog_expected_version_conflict_stores_nothing(store: &dyn Store) {
    let p = unique("catalog-expect");
    let before = current_version(store).await;
    let zero = store
        .put_catalog(
            &catalog_tagged(&format!("{p}-zero")),
            CatalogMeta::new().expecting(0),
        )
        .await;
    if before == 0 {
        assert_eq!(
            zero.map(|v| v.version).ok(),
            Some(1),
            "Some(0) on an empty store stores version 1"
        );
    } else {
        expect_conflict(zero, "Some(0) when a catalogue exists");
    }

    let cur = current_version(store).await;
    let cat_a = catalog_tagged(&format!("{p}-a"));
    let va = store
        .put_catalog(&cat_a, CatalogMeta::new().expecting(cur))
        .await
        .expect("a put expecting the current version must succeed");
    assert_eq!(va.version, cur + 1);
    let history_len = history_versions(store).await.len();

    for stale in [cur, va.version + 5] {
        expect_conflict(
            store
                .put_catalog(
                    &catalog_tagged(&format!("{p}-stale")),
                    CatalogMeta::new().expecting(stale),
                )
                .await,
            "a put expecting a version that is not current",
        );
        let now = store
            .catalog(None)
            .await
            .expect("catalog failed")
            .expect("a current catalogue");
        assert_eq!(
            (&now.version, &now.catalog),
            (&va, &cat_a),
            "a conflicting put stores nothing"
        );
        assert_eq!(
            history_versions(store).await.len(),
            history_len,
            "a conflicting put adds no version"
        );
        assert_eq!(
            store
                .catalog(Some(va.version + 1))
                .await
                .expect("catalog failed"),
            None
        );
    }

    let vb = store
        .put_catalog(
            &catalog_tagged(&format!("{p}-b")),
            CatalogMeta::new().expecting(va.version),
        )
        .await
        .expect("a put expecting the new current version must succeed");
    assert_eq!(vb.version, va.version + 1);
}

/// Catalogue, optimistic concurrency: of concurrent puts expecting the same version, exactly one
/// succeeds and the others fail with `Error::Conflict`.
pub async fn catalog_racing_puts_exactly_one_wins(store: Arc<dyn Store>) {
    const RACERS: usize = 8;
    let p = unique("catalog-race");
    let cur = current_version(&*store).await;
    let history_len = history_versions(&*store).await.len();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..RACERS {
        let store = Arc::clone(&store);
        let catalog = catalog_tagged(&format!("{p}-{i}"));
        tasks.spawn(async move {
            let result = store
                .put_catalog(&catalog, CatalogMeta::new().expecting(cur))
                .await;
            (catalog, result)
        });
    }
    let mut winners = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let (catalog, result) = joined.expect("a racing task panicked");
        match result {
            Ok(v) => winners.push((catalog, v)),
            Err(Error::Conflict { .. }) => {}
            Err(other) => panic!("a losing put must fail with Error::Conflict, got {other:?}"),
        }
    }
    assert_eq!(
        winners.len(),
        1,
        "exactly one of {RACERS} racing puts must succeed"
    );
    let (catalog, version) = winners.pop().expect("one winner");
    assert_eq!(version.version, cur + 1);
    let now = store
        .catalog(None)
        .await
        .expect("catalog failed")
        .expect("a current catalogue");
    assert_eq!(
        (now.version, now.catalog),
        (version, catalog),
        "the winner is current"
    );
    assert_eq!(
        history_versions(&*store).await.len(),
        history_len + 1,
        "one version added"
    );
}

// ---------------------------------------------------------------------------------------------
// Decisions and contact history.
// ---------------------------------------------------------------------------------------------

/// Decisions: stored under their id; the same decision again is a no-op; other content under a
/// stored id is `Error::Conflict`; an invalid decision is `Error::Validation` and not stored.
pub async fn decision_is_recorded_once_and_conflicts_on_other_content(store: &dyn Store) {
    let p = unique("decision");
    let c = cid(&format!("{p}-c"));
    upsert(store, vec![Customer::new(c.clone())]).await;
    let t0 = far_time();
    let id = DecisionId::new(format!("{p}-d"));
    let d = decision(
        &id,
        &c,
        Channel::Sms,
        t0,
        &[("o1", "upsell"), ("o2", "retention")],
    );
    record(store, &d).await;
    assert_eq!(
        stored_decision(store, &id).await,
        Some(d.clone()),
        "decision(id) returns it"
    );
    record(store, &d).await;
    assert_eq!(
        stored_decision(store, &id).await,
        Some(d.clone()),
        "recording it again is a no-op"
    );

    let other = decision(&id, &c, Channel::Email, t0, &[("o3", "upsell")]);
    expect_conflict(
        store.record_decision(&other).await,
        "another decision under a stored id",
    );
    assert_eq!(
        stored_decision(store, &id).await,
        Some(d),
        "the stored decision is unchanged"
    );

    let bad_id = DecisionId::new(format!("{p}-bad"));
    let mut bad = decision(&bad_id, &c, Channel::Sms, t0, &[("o1", "upsell")]);
    bad.offers[0].probability = 0.0;
    let (_, field) = expect_validation(
        store.record_decision(&bad).await,
        "a selection probability of 0",
    );
    assert_eq!(field, "offers[0].probability");
    assert_eq!(
        stored_decision(store, &bad_id).await,
        None,
        "an invalid decision is not stored"
    );
    assert_eq!(
        stored_decision(store, &DecisionId::new(format!("{p}-none"))).await,
        None
    );
}

/// Outcomes: must name a stored decision (`Error::NotFound`) and an offer it chose
/// (`Error::Validation`); a recorded outcome carries the offer's category and the decision's channel.
pub async fn outcome_needs_a_stored_decision_and_a_chosen_offer(store: &dyn Store) {
    let p = unique("outcome");
    let c = cid(&format!("{p}-c"));
    upsert(store, vec![Customer::new(c.clone())]).await;
    let t0 = far_time();
    let id = DecisionId::new(format!("{p}-d"));
    record(
        store,
        &decision(&id, &c, Channel::App, t0, &[("o1", "upsell")]),
    )
    .await;

    let unknown = Outcome {
        decision: DecisionId::new(format!("{p}-none")),
        offer: OfferId::new("o1"),
        kind: OutcomeKind::Shown,
        at: t0,
    };
    expect_not_found(
        store.record_outcome(&unknown).await,
        "an outcome of an unknown decision",
    );
    let not_chosen = Outcome {
        decision: id.clone(),
        offer: OfferId::new("o9"),
        kind: OutcomeKind::Shown,
        at: t0,
    };
    expect_validation(
        store.record_outcome(&not_chosen).await,
        "an outcome of an offer not chosen",
    );
    assert!(
        contacts(store, &c, TimeRange::all()).await.is_empty(),
        "failed outcomes add no contact"
    );

    assert_eq!(
        outcome(store, &id, "o1", OutcomeKind::Shown, t0 + secs(1)).await,
        OutcomeRecorded::New
    );
    assert_eq!(
        contacts(store, &c, TimeRange::all()).await,
        vec![ContactEvent {
            customer: c.clone(),
            decision: id.clone(),
            offer: OfferId::new("o1"),
            category: Category::new("upsell"),
            channel: Channel::App,
            kind: OutcomeKind::Shown,
            at: t0 + secs(1),
        }],
        "the contact-history entry carries the offer's category and the decision's channel"
    );
}

/// Outcomes: the key is (decision, offer, kind); recording it again returns `Duplicate` and it
/// counts once.
pub async fn outcome_recorded_twice_counts_once(store: &dyn Store) {
    let p = unique("outcome-twice");
    let c = cid(&format!("{p}-c"));
    upsert(store, vec![Customer::new(c.clone())]).await;
    let t0 = far_time();
    let id = DecisionId::new(format!("{p}-d"));
    record(
        store,
        &decision(&id, &c, Channel::Sms, t0, &[("o1", "upsell")]),
    )
    .await;

    assert_eq!(
        outcome(store, &id, "o1", OutcomeKind::Shown, t0).await,
        OutcomeRecorded::New
    );
    assert_eq!(
        outcome(store, &id, "o1", OutcomeKind::Shown, t0).await,
        OutcomeRecorded::Duplicate
    );
    assert_eq!(
        outcome(store, &id, "o1", OutcomeKind::Shown, t0 + secs(5)).await,
        OutcomeRecorded::Duplicate,
        "the key is (decision, offer, kind): another instant is still a duplicate"
    );
    assert_eq!(
        outcome(store, &id, "o1", OutcomeKind::Accepted, t0 + secs(6)).await,
        OutcomeRecorded::New
    );
    let shown = all_kinds_count(ContactKey::Offer(OfferId::new("o1")), OutcomeKind::Shown);
    assert_eq!(
        counts(store, &c, &[shown]).await,
        vec![1],
        "a duplicate outcome counts once"
    );
    let history = contacts(store, &c, TimeRange::all()).await;
    assert_eq!(
        history.iter().map(|e| (e.kind, e.at)).collect::<Vec<_>>(),
        vec![
            (OutcomeKind::Shown, t0),
            (OutcomeKind::Accepted, t0 + secs(6))
        ],
        "one entry per key, the first one kept"
    );
}

/// Contact history: counts per Offer / Category / Channel / All key and outcome kind in a
/// half-open window, answered in one call; `contact_history` returns the window oldest first.
pub async fn contact_counts_by_key_kind_and_half_open_window(store: &dyn Store) {
    let p = unique("contacts");
    let c = cid(&format!("{p}-c"));
    upsert(store, vec![Customer::new(c.clone())]).await;
    let t0 = far_time();
    let (da, db) = (
        DecisionId::new(format!("{p}-da")),
        DecisionId::new(format!("{p}-db")),
    );
    record(
        store,
        &decision(
            &da,
            &c,
            Channel::Sms,
            t0,
            &[("o1", "upsell"), ("o2", "retention")],
        ),
    )
    .await;
    record(
        store,
        &decision(
            &db,
            &c,
            Channel::Email,
            t0,
            &[("o1", "upsell"), ("o3", "upsell")],
        ),
    )
    .await;

    let plan: [(&DecisionId, &str, OutcomeKind, i64); 7] = [
        (&da, "o1", OutcomeKind::Shown, 0),
        (&da, "o2", OutcomeKind::Shown, 1),
        (&da, "o1", OutcomeKind::Accepted, 10),
        (&db, "o1", OutcomeKind::Shown, 20),
        (&db, "o3", OutcomeKind::Shown, 30),
        (&db, "o3", OutcomeKind::Rejected, 40),
        (&da, "o2", OutcomeKind::Rejected, 50),
    ];
    let mut events = Vec::new();
    for (d, offer, kind, minute) in plan {
        let at = t0 + mins(minute);
        assert_eq!(
            outcome(store, d, offer, kind, at).await,
            OutcomeRecorded::New
        );
        let (channel, category) = match (d == &da, offer) {
            (true, "o2") => (Channel::Sms, "retention"),
            (true, _) => (Channel::Sms, "upsell"),
            (false, _) => (Channel::Email, "upsell"),
        };
        events.push(ContactEvent {
            customer: c.clone(),
            decision: d.clone(),
            offer: OfferId::new(offer),
            category: Category::new(category),
            channel,
            kind,
            at,
        });
    }

    // W1 ends exactly on the shown at minute 30 (excluded); W2 starts exactly on minute 10.
    let w1 = TimeRange::new(t0, t0 + mins(30));
    let w2 = TimeRange::new(t0 + mins(10), t0 + mins(60));
    let keys = [
        ContactKey::Offer(OfferId::new("o1")),
        ContactKey::Offer(OfferId::new("o3")),
        ContactKey::Category(Category::new("upsell")),
        ContactKey::Category(Category::new("retention")),
        ContactKey::Channel(Channel::Sms),
        ContactKey::Channel(Channel::Email),
        ContactKey::All,
    ];
    let mut queries = Vec::new();
    for key in &keys {
        for kind in [
            OutcomeKind::Shown,
            OutcomeKind::Accepted,
            OutcomeKind::Rejected,
        ] {
            for range in [w1, w2, TimeRange::all()] {
                queries.push(ContactCount {
                    key: key.clone(),
                    kind,
                    range,
                });
            }
        }
    }
    let got = counts(store, &c, &queries).await;
    let expected: Vec<u64> = queries
        .iter()
        .map(|q| events.iter().filter(|e| q.matches(e)).count() as u64)
        .collect();
    assert_eq!(got.len(), queries.len(), "one count per query");
    for ((q, g), e) in queries.iter().zip(&got).zip(&expected) {
        assert_eq!(g, e, "count_contacts for {q:?}");
    }
    // The same by hand, so the expectation above is not only the model checking itself.
    let one = |key: ContactKey, kind, range| ContactCount { key, kind, range };
    let spot = [
        one(ContactKey::All, OutcomeKind::Shown, w1),
        one(
            ContactKey::Category(Category::new("upsell")),
            OutcomeKind::Shown,
            TimeRange::all(),
        ),
        one(
            ContactKey::Channel(Channel::Email),
            OutcomeKind::Rejected,
            w2,
        ),
        one(
            ContactKey::Offer(OfferId::new("o1")),
            OutcomeKind::Accepted,
            w2,
        ),
        one(
            ContactKey::Offer(OfferId::new("o1")),
            OutcomeKind::Accepted,
            TimeRange::new(t0, t0 + mins(10)),
        ),
    ];
    assert_eq!(counts(store, &c, &spot).await, vec![3, 3, 1, 1, 0]);

    assert_eq!(
        contacts(store, &c, w2).await,
        events
            .iter()
            .filter(|e| w2.contains(e.at))
            .cloned()
            .collect::<Vec<_>>(),
        "contact_history over [start, end), oldest first"
    );
    assert!(
        counts(store, &c, &[]).await.is_empty(),
        "no queries, no counts"
    );
    assert_eq!(
        counts(store, &cid(&format!("{p}-nobody")), &spot).await,
        vec![0; 5],
        "a customer with no history counts zero"
    );
}

// ---------------------------------------------------------------------------------------------
// Budgets.
// ---------------------------------------------------------------------------------------------

/// Budgets, atomic: 16 tasks racing to consume a budget of 100 one unit at a time get exactly
/// 100 grants, each seeing a distinct `used` from 1 to 100.
pub async fn budget_concurrent_consumers_never_exceed_the_limit(store: Arc<dyn Store>) {
    const TASKS: usize = 16;
    const LIMIT: u64 = 100;
    let key = BudgetKey::new(unique("budget-race"), "total");
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..TASKS {
        let (store, key) = (Arc::clone(&store), key.clone());
        tasks.spawn(async move {
            let mut seen = Vec::new();
            loop {
                let grant = consume(&*store, &key, LIMIT, 1).await;
                if !grant.granted {
                    assert_eq!(
                        grant.used, LIMIT,
                        "a refusal of 1 unit means the budget is full"
                    );
                    return seen;
                }
                seen.push(grant.used);
                tokio::task::yield_now().await;
            }
        });
    }
    let mut granted_used = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        granted_used.extend(joined.expect("a consuming task panicked"));
    }
    granted_used.sort_unstable();
    assert_eq!(
        granted_used,
        (1..=LIMIT).collect::<Vec<_>>(),
        "exactly {LIMIT} grants, each one atomic (a distinct `used` after it)"
    );
    assert_eq!(used(&*store, &key).await, LIMIT);
    assert_eq!(
        consume(&*store, &key, LIMIT, 1).await,
        BudgetGrant::new(false, LIMIT)
    );
}

fn draw(key: &BudgetKey, limit: u64, amount: u64) -> BudgetDraw {
    BudgetDraw {
        key: key.clone(),
        limit,
        amount,
    }
}

async fn commit(store: &dyn Store, d: &Decision, draws: &[BudgetDraw]) -> DecisionCommit {
    store
        .commit_decision(d, draws)
        .await
        .expect("commit_decision failed")
}

/// Committing a decision: the decision is recorded and every draw consumed, or, when one draw
/// does not fit, nothing at all (not the draws before it, not the decision). Draws on one
/// counter add up; the same decision committed again consumes nothing.
pub async fn commit_decision_records_and_draws_all_or_nothing(store: &dyn Store) {
    let p = unique("commit");
    let c = cid(&format!("{p}-c"));
    upsert(store, vec![Customer::new(c.clone())]).await;
    let t0 = far_time();
    let (a, full) = (
        BudgetKey::new(format!("{p}-a"), "total"),
        BudgetKey::new(format!("{p}-full"), "total"),
    );
    consume(store, &full, 2, 2).await;
    let id = DecisionId::new(format!("{p}-d1"));
    let d1 = decision(
        &id,
        &c,
        Channel::Sms,
        t0,
        &[("o1", "upsell"), ("o2", "plan")],
    );

    assert_eq!(
        commit(store, &d1, &[draw(&a, 5, 1), draw(&full, 2, 1)]).await,
        DecisionCommit::Refused(1),
        "the second draw does not fit"
    );
    assert_eq!(
        used(store, &a).await,
        0,
        "the draw that fitted is not taken"
    );
    assert_eq!(used(store, &full).await, 2);
    assert_eq!(
        stored_decision(store, &id).await,
        None,
        "nor is the decision recorded"
    );

    assert_eq!(
        commit(store, &d1, &[draw(&a, 5, 1)]).await,
        DecisionCommit::Recorded
    );
    assert_eq!(stored_decision(store, &id).await, Some(d1.clone()));
    assert_eq!(used(store, &a).await, 1);
    assert_eq!(
        commit(store, &d1, &[draw(&a, 5, 1)]).await,
        DecisionCommit::Recorded,
        "the same decision again"
    );
    assert_eq!(used(store, &a).await, 1, "consumes nothing the second time");
    let other = decision(&id, &c, Channel::Email, t0, &[("o3", "upsell")]);
    expect_conflict(
        store.commit_decision(&other, &[draw(&a, 5, 1)]).await,
        "another decision under a committed id",
    );
    assert_eq!(used(store, &a).await, 1, "a conflict consumes nothing");

    // Two draws on one counter add up: 1 + 2 + 2 = 5 fits, 5 + 1 + 1 does not.
    let d2 = decision(
        &DecisionId::new(format!("{p}-d2")),
        &c,
        Channel::Sms,
        t0,
        &[],
    );
    assert_eq!(
        commit(store, &d2, &[draw(&a, 5, 2), draw(&a, 5, 2)]).await,
        DecisionCommit::Recorded
    );
    assert_eq!(used(store, &a).await, 5);
    let d3 = decision(
        &DecisionId::new(format!("{p}-d3")),
        &c,
        Channel::Sms,
        t0,
        &[],
    );
    let fresh = BudgetKey::new(format!("{p}-fresh"), "total");
    assert!(matches!(
        commit(
            store,
            &d3,
            &[draw(&fresh, 5, 1), draw(&a, 6, 1), draw(&a, 6, 1)]
        )
        .await,
        DecisionCommit::Refused(2)
    ));
    assert_eq!(
        (used(store, &fresh).await, used(store, &a).await),
        (0, 5),
        "nothing taken"
    );
    assert_eq!(stored_decision(store, &d3.id).await, None);
    assert_eq!(
        commit(store, &d3, &[draw(&fresh, 5, u64::MAX)]).await,
        DecisionCommit::Refused(0),
        "an amount too large for any counter"
    );
    assert_eq!(
        commit(store, &d3, &[draw(&fresh, u64::MAX, 3)]).await,
        DecisionCommit::Recorded,
        "a limit too large for a counter is no limit"
    );
    assert_eq!(used(store, &fresh).await, 3);
}

/// Committing decisions, raced: 16 tasks commit decisions that draw on a plentiful budget and
/// a scarce one (half of them listing the scarce one first) until the scarce one refuses.
/// Exactly the scarce budget's limit of decisions is recorded, the plentiful budget counts
/// exactly those (a refused commit took nothing from it), and no refused decision is stored.
pub async fn commit_decision_racing_deciders_never_exceed_nor_leave_partial_draws(
    store: Arc<dyn Store>,
) {
    const TASKS: usize = 16;
    const SCARCE: u64 = 40;
    let p = unique("commit-race");
    let c = cid(&format!("{p}-c"));
    upsert(&*store, vec![Customer::new(c.clone())]).await;
    let plenty = BudgetKey::new(format!("{p}-plenty"), "total");
    let scarce = BudgetKey::new(format!("{p}-scarce"), "total");
    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..TASKS {
        let (store, c, p) = (Arc::clone(&store), c.clone(), p.clone());
        let mut draws = vec![draw(&plenty, 1_000, 1), draw(&scarce, SCARCE, 1)];
        if task % 2 == 1 {
            draws.reverse();
        }
        tasks.spawn(async move {
            let (mut recorded, mut refused) = (Vec::new(), Vec::new());
            for n in 0.. {
                let id = DecisionId::new(format!("{p}-{task}-{n}"));
                let d = decision(&id, &c, Channel::Sms, far_time(), &[("o1", "upsell")]);
                match commit(&*store, &d, &draws).await {
                    DecisionCommit::Recorded => recorded.push(id),
                    DecisionCommit::Refused(_) => {
                        refused.push(id);
                        break;
                    }
                }
                tokio::task::yield_now().await;
            }
            (recorded, refused)
        });
    }
    let (mut recorded, mut refused) = (Vec::new(), Vec::new());
    while let Some(joined) = tasks.join_next().await {
        let (r, f) = joined.expect("a committing task panicked");
        recorded.extend(r);
        refused.extend(f);
    }
    assert_eq!(
        recorded.len() as u64,
        SCARCE,
        "exactly the scarce budget's decisions"
    );
    assert_eq!(used(&*store, &scarce).await, SCARCE);
    assert_eq!(
        used(&*store, &plenty).await,
        SCARCE,
        "refused commits took nothing from the plentiful budget"
    );
    for id in &refused {
        assert_eq!(
            stored_decision(&*store, id).await,
            None,
            "{id:?} was refused"
        );
    }
    for id in &recorded {
        assert!(
            stored_decision(&*store, id).await.is_some(),
            "{id:?} was recorded"
        );
    }
}

/// Budgets: a request is granted only if `used + amount <= limit`; a refused request changes
/// nothing; amounts may be larger than 1.
pub async fn budget_refused_request_changes_nothing(store: &dyn Store) {
    let key = BudgetKey::new(unique("budget-refuse"), "total");
    assert_eq!(used(store, &key).await, 0, "a counter starts at zero");
    assert_eq!(consume(store, &key, 10, 7).await, BudgetGrant::new(true, 7));
    assert_eq!(
        consume(store, &key, 10, 4).await,
        BudgetGrant::new(false, 7),
        "7 + 4 > 10: refused, used stays 7"
    );
    assert_eq!(
        used(store, &key).await,
        7,
        "a refused request changes nothing"
    );
    assert_eq!(
        consume(store, &key, 10, 3).await,
        BudgetGrant::new(true, 10),
        "7 + 3 = 10 fits exactly"
    );
    assert_eq!(
        consume(store, &key, 10, 1).await,
        BudgetGrant::new(false, 10)
    );
    assert_eq!(used(store, &key).await, 10);
}

/// Budgets: a counter is identified by (budget, period key); counters never share usage.
pub async fn budget_counters_are_independent_per_budget_and_period(store: &dyn Store) {
    let (b1, b2) = (unique("budget-a"), unique("budget-b"));
    let day1 = BudgetKey::new(b1.as_str(), "2026-11-22");
    let day2 = BudgetKey::new(b1.as_str(), "2026-11-23");
    let other = BudgetKey::new(b2.as_str(), "2026-11-22");
    assert_eq!(
        consume(store, &day1, 50, 30).await,
        BudgetGrant::new(true, 30)
    );
    assert_eq!(
        consume(store, &day1, 50, 25).await,
        BudgetGrant::new(false, 30)
    );
    assert_eq!(
        used(store, &day2).await,
        0,
        "another period of the same budget is untouched"
    );
    assert_eq!(
        used(store, &other).await,
        0,
        "another budget in the same period is untouched"
    );
    assert_eq!(
        consume(store, &day2, 50, 50).await,
        BudgetGrant::new(true, 50)
    );
    assert_eq!(
        consume(store, &other, 50, 51).await,
        BudgetGrant::new(false, 0),
        "an amount above the limit is refused even at zero"
    );
    assert_eq!(
        consume(store, &other, 0, 1).await,
        BudgetGrant::new(false, 0),
        "a limit of 0 grants nothing"
    );
    assert_eq!(used(store, &day1).await, 30);
    assert_eq!(used(store, &day2).await, 50);
    assert_eq!(used(store, &other).await, 0);
}

// ---------------------------------------------------------------------------------------------
// Properties.
// ---------------------------------------------------------------------------------------------

/// One touchpoint of the pool: (customer 0..3, id 0..5, content variant, second).
type PoolEntry = (usize, usize, u8, i64);

/// Touchpoints, idempotent (property): any sequence of batches drawn, with repeats, from a pool
/// of touchpoints stores exactly the distinct (customer, id) keys, first version kept, reports
/// new and duplicate counts exactly, and re-ingesting everything inserts nothing.
pub async fn property_ingest_is_idempotent(store: &dyn Store) {
    let entry = (0..3_usize, 0..5_usize, 0..3_u8, 0..40_i64);
    let pool = prop::collection::vec(entry, 1..12);
    let batches = prop::collection::vec(prop::collection::vec(any_index(), 0..8), 1..6);
    let handle = tokio::runtime::Handle::current();
    run_property(
        "idempotent ingest",
        48,
        (pool, batches),
        |(pool, batches)| handle.block_on(check_idempotent_ingest(store, &pool, &batches)),
    );
}

fn any_index() -> impl Strategy<Value = prop::sample::Index> {
    proptest::prelude::any::<prop::sample::Index>()
}

async fn check_idempotent_ingest(
    store: &dyn Store,
    pool: &[PoolEntry],
    batches: &[Vec<prop::sample::Index>],
) -> std::result::Result<(), TestCaseError> {
    let p = unique("prop-ingest");
    let customers: Vec<CustomerId> = (0..3).map(|i| cid(&format!("{p}-c{i}"))).collect();
    let t0 = far_time();
    let pool: Vec<Touchpoint> = pool
        .iter()
        .map(|&(c, id, variant, s)| {
            tp(
                &format!("{p}-t{id}"),
                &customers[c],
                Channel::Web,
                &Kind::PAGE_VIEW,
                t0 + secs(s),
            )
            .with_attribute("variant", i32::from(variant))
        })
        .collect();
    let mut first: BTreeMap<(CustomerId, TouchpointId), Touchpoint> = BTreeMap::new();
    let mut sent = Vec::new();
    for batch in batches {
        let batch: Vec<Touchpoint> = batch.iter().map(|i| i.get(&pool).clone()).collect();
        let mut new = 0_u64;
        for t in &batch {
            let key = (t.customer_id().cloned().unwrap_or_default(), t.id.clone());
            if let std::collections::btree_map::Entry::Vacant(slot) = first.entry(key) {
                slot.insert(t.clone());
                new += 1;
            }
        }
        let total = batch.len() as u64;
        sent.extend(batch.iter().cloned());
        let report = store
            .append_touchpoints(batch)
            .await
            .expect("append_touchpoints failed");
        proptest::prop_assert_eq!(
            report,
            AppendReport::new(new, total - new),
            "report of one batch"
        );
    }
    for c in &customers {
        let expected = by_time_and_id(
            first
                .iter()
                .filter(|((k, _), _)| k == c)
                .map(|(_, t)| t.clone())
                .collect(),
        );
        proptest::prop_assert_eq!(
            history_of(store, c).await,
            expected,
            "stored touchpoints of {}",
            c
        );
    }
    let total = sent.len() as u64;
    let again = store
        .append_touchpoints(sent)
        .await
        .expect("append_touchpoints failed");
    proptest::prop_assert_eq!(
        again,
        AppendReport::new(0, total),
        "re-ingesting everything"
    );
    Ok(())
}

/// Budgets (property): for any limit and sequence of amounts, the grants are exactly the greedy
/// ones (granted iff it still fits), so the granted sum never exceeds the limit.
pub async fn property_budget_is_never_exceeded(store: &dyn Store) {
    let input = (0..=60_u64, prop::collection::vec(1..=20_u64, 0..30));
    let handle = tokio::runtime::Handle::current();
    run_property("budget never exceeded", 48, input, |(limit, amounts)| {
        handle.block_on(check_budget(store, limit, &amounts))
    });
}

async fn check_budget(
    store: &dyn Store,
    limit: u64,
    amounts: &[u64],
) -> std::result::Result<(), TestCaseError> {
    let key = BudgetKey::new(unique("prop-budget"), "total");
    let mut expected_used = 0;
    for &amount in amounts {
        let fits = expected_used + amount <= limit;
        if fits {
            expected_used += amount;
        }
        let grant = store
            .consume_budget(&key, limit, amount)
            .await
            .expect("consume_budget failed");
        proptest::prop_assert_eq!(
            grant,
            BudgetGrant::new(fits, expected_used),
            "consume {}",
            amount
        );
    }
    let now = store.budget_used(&key).await.expect("budget_used failed");
    proptest::prop_assert_eq!(now, expected_used);
    proptest::prop_assert!(now <= limit, "used {} exceeds the limit {}", now, limit);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Journeys, analytics, follow-up cases, customer pages.
// ---------------------------------------------------------------------------------------------

/// A three-stage journey `j` (kinds `<p>_a`, `<p>_b` optional, `<p>_c`), compiled, with a
/// 10-day inactivity timeout and one hour of lateness.
fn journey_fixture(p: &str) -> (crate::model::JourneyId, crate::journey::CompiledJourneys) {
    let yaml = format!(
        r#"
owners: [ {{ id: o, name: O }} ]
journeys:
  - id: {p}-j
    name: J
    inactivity_timeout: 10d
    lateness: 1h
    stages:
      - {{ id: a, name: A, owner: o, entry: {{ kinds: [{p}_a] }} }}
      - {{ id: b, name: B, owner: o, entry: {{ kinds: [{p}_b] }}, optional: true }}
      - {{ id: c, name: C, owner: o, entry: {{ kinds: [{p}_c] }} }}
"#
    );
    let catalog = Catalog::from_yaml(&yaml).unwrap();
    let compiled = crate::arbitration::CompiledCatalog::compile(catalog.clone(), 1).unwrap();
    let journeys =
        crate::journey::CompiledJourneys::compile(&catalog, compiled.vocabulary()).unwrap();
    (crate::model::JourneyId::new(format!("{p}-j")), journeys)
}

async fn place(
    store: &dyn Store,
    journeys: &crate::journey::CompiledJourneys,
    touchpoints: &[Touchpoint],
) -> crate::store::Placed {
    let mut events = Vec::new();
    journeys.events_of(touchpoints, &mut events);
    store.advance_journeys(events, journeys).await.unwrap()
}

/// Events resolve like touchpoints (ids follow merges, identities must resolve), are grouped per
/// customer and journey, and tracks read back ordered; an unresolved identity changes nothing.
pub async fn journeys_advance_resolves_subjects_and_keeps_tracks(store: &dyn Store) {
    let p = unique("jadv");
    let (journey, journeys) = journey_fixture(&p);
    let [x, y] = ["x", "y"].map(|s| cid(&format!("{p}-{s}")));
    let mx = email(&p, "x");
    upsert(
        store,
        vec![
            Customer::new(x.clone()).with_identity(mx.clone()),
            Customer::new(y.clone()),
        ],
    )
    .await;
    let t0 = far_time();
    let k = |s: &str| Kind::new(format!("{p}_{s}"));
    let mut by_identity = tp(&format!("{p}-2"), &x, Channel::Web, &k("c"), t0 + mins(2));
    by_identity.subject = Subject::Identity(mx.clone());
    let placed = place(
        store,
        &journeys,
        &[
            tp(&format!("{p}-1"), &x, Channel::Web, &k("a"), t0),
            by_identity,
            tp(&format!("{p}-3"), &y, Channel::App, &k("a"), t0),
            tp(&format!("{p}-1"), &x, Channel::Web, &k("a"), t0),
        ],
    )
    .await;
    assert_eq!(
        (placed.placed, placed.duplicates),
        (3, 1),
        "the same touchpoint twice is placed once"
    );
    let tracks = store.journey_tracks(&x).await.unwrap();
    assert_eq!(tracks.len(), 1);
    assert_eq!(tracks[0].customer, x, "tracks carry the resolved id");
    assert_eq!(tracks[0].journey, journey);
    let stages: Vec<&str> = tracks[0].instances[0]
        .visits
        .iter()
        .map(|v| v.stage.as_str())
        .collect();
    assert_eq!(
        stages,
        ["a", "c"],
        "b is optional; the identity resolved to x"
    );
    assert_eq!(
        tracks[0].instances[0].end,
        Some(crate::model::InstanceEnd::Completed { at: t0 + mins(2) })
    );

    // An identity nobody holds fails the whole call and changes nothing.
    let mut stranger = tp(&format!("{p}-4"), &y, Channel::Web, &k("c"), t0 + mins(3));
    stranger.subject = Subject::Identity(email(&p, "nobody"));
    let mut events = Vec::new();
    journeys.events_of(
        &[
            tp(&format!("{p}-5"), &y, Channel::Web, &k("c"), t0 + mins(3)),
            stranger,
        ],
        &mut events,
    );
    let err = store.advance_journeys(events, &journeys).await.unwrap_err();
    assert!(matches!(err, Error::Validation { .. }), "{err:?}");
    let y_tracks = store.journey_tracks(&y).await.unwrap();
    assert_eq!(
        y_tracks[0].instances[0].visits.len(),
        1,
        "nothing of the failed call stored"
    );
    assert_eq!(y_tracks[0].instances[0].end, None);
}

/// Forgetting a customer erases their journey tracks and follow-up cases.
pub async fn forget_erases_journey_tracks_and_cases(store: &dyn Store) {
    let p = unique("jforget");
    let (_, journeys) = journey_fixture(&p);
    let [x, keep] = ["x", "keep"].map(|s| cid(&format!("{p}-{s}")));
    upsert(
        store,
        vec![Customer::new(x.clone()), Customer::new(keep.clone())],
    )
    .await;
    let t0 = far_time();
    let kind = Kind::new(format!("{p}_a"));
    place(
        store,
        &journeys,
        &[
            tp(&format!("{p}-1"), &x, Channel::Web, &kind, t0),
            tp(&format!("{p}-2"), &keep, Channel::Web, &kind, t0),
        ],
    )
    .await;
    let owner = crate::model::OwnerId::new(format!("{p}-o"));
    let case = |c: &CustomerId, t: &str| {
        crate::model::FollowUpCase::open(
            "r".into(),
            c.clone(),
            t.into(),
            "nps".into(),
            3.0,
            owner.clone(),
            None,
            t0,
            crate::model::Span::days(2),
        )
    };
    assert_eq!(
        store
            .open_cases(vec![
                case(&x, &format!("{p}-1")),
                case(&keep, &format!("{p}-2"))
            ])
            .await
            .unwrap(),
        2
    );
    let report = store.forget_customer(&x).await.unwrap();
    assert_eq!((report.journey_tracks, report.follow_up_cases), (1, 1));
    assert!(store.journey_tracks(&x).await.unwrap().is_empty());
    let q = crate::store::CaseQuery::new(TimeRange::all(), t0).owner(owner.clone());
    let left: Vec<CustomerId> = store
        .cases(&q)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.customer)
        .collect();
    assert_eq!(left, vec![keep.clone()]);
    assert_eq!(store.journey_tracks(&keep).await.unwrap().len(), 1);
}

/// Funnel, stage times and moments of truth of one journey, against hand-computed answers.
pub async fn analytics_funnel_stage_times_and_moments_by_hand(store: &dyn Store) {
    let p = unique("jfun");
    let (journey, journeys) = journey_fixture(&p);
    let ids = ["1", "2", "3"].map(|s| cid(&format!("{p}-{s}")));
    upsert(
        store,
        ids.iter().map(|c| Customer::new(c.clone())).collect(),
    )
    .await;
    let t0 = far_time();
    let k = |s: &str| Kind::new(format!("{p}_{s}"));
    let [c1, c2, c3] = &ids;
    let survey = |id: &str, c: &CustomerId, at: Timestamp, score: f64| {
        tp(id, c, Channel::Survey, &Kind::SURVEY_RESPONSE, at).with_survey(SurveyAnswer::new(
            "nps",
            score,
            Scale::NPS,
        ))
    };
    let touchpoints = vec![
        // c1: a (0) -> b (1h) -> c (3h); c2: a (0) -> c (5h); c3: a only.
        tp(&format!("{p}-a1"), c1, Channel::Web, &k("a"), t0),
        tp(&format!("{p}-b1"), c1, Channel::Web, &k("b"), t0 + mins(60)),
        tp(
            &format!("{p}-c1"),
            c1,
            Channel::Web,
            &k("c"),
            t0 + mins(180),
        ),
        tp(&format!("{p}-a2"), c2, Channel::App, &k("a"), t0),
        tp(
            &format!("{p}-c2"),
            c2,
            Channel::App,
            &k("c"),
            t0 + mins(300),
        ),
        tp(&format!("{p}-a3"), c3, Channel::Web, &k("a"), t0),
        // Answers: in a: 9 (c1), 5 (c2), 4 (c3); in b: 10 (c1); in c: 2 (c2).
        survey(&format!("{p}-s1"), c1, t0 + mins(30), 9.0),
        survey(&format!("{p}-s2"), c2, t0 + mins(30), 5.0),
        survey(&format!("{p}-s3"), c3, t0 + mins(30), 4.0),
        survey(&format!("{p}-s4"), c1, t0 + mins(90), 10.0),
        survey(&format!("{p}-s5"), c2, t0 + mins(400), 2.0),
    ];
    append(store, touchpoints.clone()).await;
    place(store, &journeys, &touchpoints).await;
    let steps = vec![
        crate::store::FunnelStep::new("a", 0, false),
        crate::store::FunnelStep::new("b", 1, true),
        crate::store::FunnelStep::new("c", 2, false),
    ];
    let query = crate::store::FunnelQuery::new(
        journey.clone(),
        steps,
        TimeRange::new(t0, t0 + mins(1)),
        t0 + mins(600),
    )
    .timeout(Some(crate::model::Span::days(10)))
    .breakdown(crate::store::Breakdown::Channel);
    let f = store.funnel(&query).await.unwrap();
    let reached: Vec<u64> = f.rows.iter().map(|r| r.reached).collect();
    let entered: Vec<u64> = f.rows.iter().map(|r| r.entered).collect();
    assert_eq!(reached, [3, 2, 2], "c2 skipped b and counts as passing it");
    assert_eq!(entered, [3, 1, 2]);
    assert_eq!(f.rows[2].conversion, Some(1.0));
    assert_eq!(f.rows[1].dropped, 1);
    // c: gaps 2h (c1, from b) and 5h (c2, from a).
    assert_eq!(f.rows[2].gap.median, Some(3.5 * 3600.0));
    assert_eq!(f.instances, [1, 2, 0, 0]);
    let groups: Vec<(&str, Vec<u64>)> = f
        .groups
        .iter()
        .map(|(g, rows)| (g.as_str(), rows.iter().map(|r| r.reached).collect()))
        .collect();
    assert_eq!(groups, [("app", vec![1, 1, 1]), ("web", vec![2, 1, 1])]);

    // Only customers 1 and 3.
    let only = query
        .clone()
        .customers(Some(vec![c1.clone(), c3.clone()]))
        .breakdown(crate::store::Breakdown::None);
    let f = store.funnel(&only).await.unwrap();
    assert_eq!(
        f.rows.iter().map(|r| r.reached).collect::<Vec<_>>(),
        [2, 1, 1]
    );
    assert!(f.groups.is_empty());
    assert_eq!(
        f.rows.iter().map(|r| r.overdue).collect::<Vec<_>>(),
        [0, 0, 0],
        "no stage has a max time"
    );

    // c3 has been in a for 10 h at `as_of` (c1 and c2 completed): overdue past a max time of
    // 8 h, not past 12 h; a max time on c, where no one is active, counts no one.
    let with_max_time = |hours: i64| {
        let mut q = query.clone();
        for step in &mut q.steps {
            if step.stage.as_str() != "b" {
                *step = step
                    .clone()
                    .max_time(Some(crate::model::Span::hours(hours)));
            }
        }
        q
    };
    let f = store.funnel(&with_max_time(8)).await.unwrap();
    assert_eq!(
        f.rows.iter().map(|r| r.overdue).collect::<Vec<_>>(),
        [1, 0, 0]
    );
    let groups: Vec<(&str, Vec<u64>)> = f
        .groups
        .iter()
        .map(|(g, rows)| (g.as_str(), rows.iter().map(|r| r.overdue).collect()))
        .collect();
    assert_eq!(groups, [("app", vec![0, 0, 0]), ("web", vec![1, 0, 0])]);
    let f = store.funnel(&with_max_time(12)).await.unwrap();
    assert!(f.rows.iter().all(|r| r.overdue == 0));

    // Time in a: c1 1h, c2 5h (c3 never left).
    let times = store
        .stage_times(&crate::store::StageTimesQuery::new(
            journey.clone(),
            "a",
            TimeRange::all(),
        ))
        .await
        .unwrap();
    assert_eq!(
        (times.count, times.min, times.max),
        (2, Some(3600.0), Some(18_000.0))
    );
    assert_eq!(times.median, Some(10_800.0));

    let moments = store
        .moments_of_truth(
            &crate::store::MomentsQuery::new(journey.clone(), "nps", TimeRange::all())
                .timeout(Some(crate::model::Span::days(10))),
        )
        .await
        .unwrap();
    let got: Vec<(&str, u64, f64)> = moments
        .iter()
        .map(|s| (s.stage.as_str(), s.responses, s.mean))
        .collect();
    assert_eq!(got, [("b", 1, 10.0), ("a", 3, 6.0), ("c", 1, 2.0)]);
}

/// Touchpoint measures in one call, in query order, against hand-computed values.
pub async fn analytics_measures_touchpoints_by_hand(store: &dyn Store) {
    let p = unique("measure");
    let [x, y] = ["x", "y"].map(|s| cid(&format!("{p}-{s}")));
    let (buy, answer) = (
        Kind::new(format!("{p}_buy")),
        Kind::new(format!("{p}_answer")),
    );
    let t0 = far_time();
    let mut batch = Vec::new();
    for (i, (c, amount)) in [(&x, 10.0), (&x, 30.0), (&y, 20.0), (&y, 100.0)]
        .iter()
        .enumerate()
    {
        batch.push(
            tp(
                &format!("{p}-b{i}"),
                c,
                Channel::Web,
                &buy,
                t0 + secs(i as i64),
            )
            .with_attribute("amount", *amount),
        );
    }
    // Out of the range: never counts.
    batch.push(
        tp(&format!("{p}-late"), &x, Channel::Web, &buy, t0 + mins(100))
            .with_attribute("amount", 1e6),
    );
    for (i, score) in [9.0, 9.0, 3.0].iter().enumerate() {
        batch.push(
            tp(
                &format!("{p}-s{i}"),
                &y,
                Channel::Survey,
                &answer,
                t0 + secs(i as i64),
            )
            .with_survey(SurveyAnswer::new("csat_x", *score, Scale::new(0.0, 10.0))),
        );
    }
    append(store, batch).await;
    let range = TimeRange::new(t0, t0 + mins(10));
    let on = |kind: &Kind| TouchpointQuery::new(range).kinds([kind.clone()]);
    use crate::store::{MeasureQuery, Statistic};
    let queries = vec![
        MeasureQuery::new(on(&buy), Statistic::Count),
        MeasureQuery::new(on(&buy), Statistic::DistinctCustomers),
        MeasureQuery::new(on(&buy), Statistic::Sum("amount".into())),
        MeasureQuery::new(on(&buy), Statistic::Avg("amount".into())),
        MeasureQuery::new(on(&buy), Statistic::Percentile("amount".into(), 90.0)),
        MeasureQuery::new(on(&answer), Statistic::Scores("csat_x".into())),
        MeasureQuery::new(on(&buy), Statistic::Count).customers(Some(vec![y.clone()])),
        MeasureQuery::new(on(&buy), Statistic::Avg("missing".into())),
    ];
    let v = store.measure_touchpoints(&queries).await.unwrap();
    assert_eq!(v.len(), queries.len());
    assert_eq!((v[0].n, v[0].value), (4, Some(4.0)));
    assert_eq!(v[1].value, Some(2.0));
    assert_eq!(v[2].value, Some(160.0));
    assert_eq!(v[3].value, Some(40.0));
    // 10, 20, 30, 100: rank 2.7 -> 30 + .7 * 70 = 79.
    assert!((v[4].value.unwrap() - 79.0).abs() < 1e-9, "{:?}", v[4]);
    assert_eq!(v[5].scores, vec![(3.0, 1), (9.0, 2)]);
    assert_eq!(v[6].value, Some(2.0), "customer filter");
    assert_eq!(
        (v[7].n, v[7].value),
        (0, None),
        "a mean of nothing has no value"
    );
}

/// Cases: open is idempotent by id, close once, reads ordered, SLA counts at an instant.
pub async fn follow_up_cases_open_once_close_once_and_count_sla(store: &dyn Store) {
    let p = unique("cases");
    let owner = crate::model::OwnerId::new(format!("{p}-o"));
    let c = cid(&format!("{p}-c"));
    let t0 = far_time();
    let case = |t: &str, opened: Timestamp| {
        crate::model::FollowUpCase::open(
            "r".into(),
            c.clone(),
            t.into(),
            "nps".into(),
            2.0,
            owner.clone(),
            None,
            opened,
            crate::model::Span::hours(24),
        )
    };
    let cases = vec![
        case(&format!("{p}-1"), t0),
        case(&format!("{p}-2"), t0 + mins(60)),
        case(&format!("{p}-3"), t0 + mins(120)),
        case(&format!("{p}-4"), t0 + mins(180)),
    ];
    assert_eq!(store.open_cases(cases.clone()).await.unwrap(), 4);
    assert_eq!(
        store.open_cases(cases.clone()).await.unwrap(),
        0,
        "idempotent by id"
    );
    let id = |i: usize| cases[i].id.clone();
    let closed = store
        .close_case(&id(0), t0 + mins(60), Some("called back".into()))
        .await
        .unwrap();
    assert!(closed.closed_in_time());
    let err = store
        .close_case(&id(0), t0 + mins(61), None)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Conflict { .. }), "{err:?}");
    let err = store
        .close_case(&"nope/x".into(), t0, None)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    let err = store.close_case(&id(1), t0, None).await.unwrap_err();
    assert!(
        matches!(err, Error::Validation { .. }),
        "closing before opening: {err:?}"
    );
    // Case 2 closed 25 h after it opened: late.
    store
        .close_case(&id(1), t0 + mins(60 + 25 * 60), None)
        .await
        .unwrap();
    // At t0 + 26h: case 3 (due t0 + 26h) is not past due yet (deadline inclusive), case 4 open.
    let q = crate::store::CaseQuery::new(TimeRange::all(), t0 + mins(26 * 60)).owner(owner.clone());
    assert_eq!(
        store.case_sla(&q).await.unwrap(),
        crate::store::SlaCounts::new(1, 1, 0, 2)
    );
    let q =
        crate::store::CaseQuery::new(TimeRange::all(), t0 + mins(26 * 60 + 1)).owner(owner.clone());
    assert_eq!(
        store.case_sla(&q).await.unwrap(),
        crate::store::SlaCounts::new(1, 1, 1, 1)
    );
    let open: Vec<_> = store
        .cases(&q.clone().open_only())
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(open, vec![id(2), id(3)], "ordered by opening");
    let window = crate::store::CaseQuery::new(TimeRange::new(t0 + mins(60), t0 + mins(180)), t0)
        .owner(owner.clone());
    assert_eq!(
        store.cases(&window).await.unwrap().len(),
        2,
        "half-open range"
    );
}

/// Customer pages come in id order, each after the last, without forgotten customers.
pub async fn customer_pages_are_ordered_and_complete(store: &dyn Store) {
    let p = unique("page");
    let ids: Vec<CustomerId> = (0..5).map(|i| cid(&format!("{p}-{i}"))).collect();
    upsert(
        store,
        ids.iter().map(|c| Customer::new(c.clone())).collect(),
    )
    .await;
    store.forget_customer(&ids[2]).await.unwrap();
    let mut seen = Vec::new();
    let mut after: Option<CustomerId> = None;
    loop {
        let page = store.customer_page(after.as_ref(), 3).await.unwrap();
        assert!(page.len() <= 3);
        let Some(last) = page.last() else { break };
        for pair in page.windows(2) {
            assert!(pair[0].id < pair[1].id, "pages are in id order");
        }
        if let Some(a) = &after {
            assert!(&page[0].id > a, "a page starts after the cursor");
        }
        after = Some(last.id.clone());
        seen.extend(
            page.into_iter()
                .map(|c| c.id)
                .filter(|id| id.as_str().starts_with(&p)),
        );
    }
    let mut want = ids.clone();
    want.remove(2);
    assert_eq!(seen, want);
}
