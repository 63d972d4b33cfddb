//! Focused tests of the in-memory store's trickier guarantees: atomic and idempotent ingest,
//! merges and erasure, scan paging, and atomicity under concurrency. The backend-agnostic
//! contract is covered by the conformance suite (tests/conformance.rs).

use cx_core::Error;
use cx_core::model::{
    Category, Channel, Consent, Customer, CustomerId, Decision, DecisionId, Identity, Kind,
    OfferId, Outcome, OutcomeKind, Purpose, SelectedOffer, Subject, TimeRange, Timestamp,
    Touchpoint,
};
use cx_core::store::{
    AggregateQuery, Bucket, BudgetKey, CatalogMeta, CatalogStore, ContactCount, ContactKey,
    CustomerStore, DecisionStore, OutcomeRecorded, ScanQuery, Store, TouchpointQuery,
    TouchpointStore,
};
use cx_store_memory::MemoryStore;
use std::collections::HashSet;
use std::sync::Arc;

fn ts(secs: i64) -> Timestamp {
    Timestamp::from_timestamp(1_800_000_000 + secs, 0).unwrap_or_default()
}

fn tp(id: &str, customer: &str, secs: i64) -> Touchpoint {
    Touchpoint::new(
        id,
        CustomerId::new(customer),
        Channel::Web,
        Kind::PAGE_VIEW,
        ts(secs),
    )
}

fn id(s: &str) -> CustomerId {
    CustomerId::new(s)
}

/// `yaml` compiled, and an arbitrator over it with an untrained model.
fn arbitrator_for(
    yaml: &str,
) -> (
    Arc<cx_core::arbitration::CompiledCatalog>,
    cx_core::arbitration::Arbitrator,
) {
    use cx_core::arbitration::{Arbitrator, BetaBernoulli, CompiledCatalog, PropensityModel};
    let catalog = cx_core::model::Catalog::from_yaml(yaml).unwrap();
    let catalog = Arc::new(CompiledCatalog::compile(catalog, 1).unwrap());
    let model = Arc::new(BetaBernoulli::new());
    model.bind(&catalog.offer_ids(), 0, catalog.config().prior);
    (Arc::clone(&catalog), Arbitrator::new(catalog, model))
}

/// A customer who consents to `service` on `channel`.
fn consenting(name: &str, channel: Channel) -> Customer {
    Customer::new(name).with_consent(Consent::granted(channel, Purpose::new("service"), ts(0)))
}

/// What one visit of `store` for `query` decides for `customers` on `channel` at `now`: per
/// customer, the offers chosen and whether customer inputs and contact inputs were handed
/// over; `None` for an id that resolves to no one.
async fn batch_decide(
    store: &MemoryStore,
    query: &cx_core::store::DecisionStateQuery,
    arbitrator: &cx_core::arbitration::Arbitrator,
    (channel, now): (Channel, Timestamp),
    customers: &[&str],
) -> Vec<Option<(Vec<String>, bool, bool)>> {
    let ids: Vec<CustomerId> = customers.iter().map(|c| id(c)).collect();
    let mut chosen = Vec::new();
    store
        .visit_decision_states(query, &ids, &mut |i, state| {
            chosen.push(state.map(|state| {
                let request = cx_core::model::DecisionRequest::new(ids[i].clone(), channel.clone());
                let decision = arbitrator.decide(&state.input(now), &request, DecisionId::new("d"));
                let offers = decision
                    .offers
                    .iter()
                    .map(|o| o.offer.to_string())
                    .collect();
                let handed = (state.customer_inputs, state.contact_inputs);
                (offers, handed.0.is_some(), handed.1.is_some())
            }));
        })
        .await
        .unwrap();
    chosen
}

/// The features a visited state gives a decision under `catalog` at `now`: computed in place,
/// or from the feature inputs handed over instead.
fn features_of(
    state: &cx_core::store::DecisionStateView<'_>,
    catalog: &cx_core::arbitration::CompiledCatalog,
    now: Timestamp,
) -> Option<Vec<Option<cx_core::model::Value>>> {
    match state.feature_inputs {
        Some(held) => {
            let mut out = Vec::new();
            let buffers = &mut cx_core::arbitration::FeatureBuffers::default();
            assert!(state.features.is_none(), "the features or their inputs");
            assert!(catalog.compute_features_from(held, now, buffers, &mut out));
            Some(out)
        }
        None => state.features.map(<[_]>::to_vec),
    }
}

async fn touchpoint_ids(store: &MemoryStore, customer: &str) -> Vec<String> {
    store
        .customer_touchpoints(&id(customer), TimeRange::all())
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|t| t.id.to_string())
        .collect()
}

async fn total_touchpoints(store: &MemoryStore) -> u64 {
    let rows = store
        .aggregate_touchpoints(&AggregateQuery::new(TouchpointQuery::new(TimeRange::all())))
        .await
        .unwrap_or_default();
    rows.first().map_or(0, |r| r.touchpoints)
}

fn decision(id: &str, customer: &str, offers: &[&str]) -> Decision {
    Decision {
        id: DecisionId::new(id),
        customer: CustomerId::new(customer),
        channel: Channel::Sms,
        placement: None,
        at: ts(0),
        catalog_version: 1,
        offers: offers
            .iter()
            .enumerate()
            .map(|(rank, offer)| SelectedOffer {
                offer: OfferId::new(*offer),
                category: Category::new("upsell"),
                rank: rank as u32,
                score: 1.0,
                probability: 1.0,
            })
            .collect(),
        context: Default::default(),
        segment: None,
        explanation: Default::default(),
    }
}

fn outcome(decision: &str, offer: &str, kind: OutcomeKind, secs: i64) -> Outcome {
    Outcome {
        decision: DecisionId::new(decision),
        offer: OfferId::new(offer),
        kind,
        at: ts(secs),
    }
}

#[tokio::test]
async fn a_failing_batch_stores_nothing() {
    let store = MemoryStore::new();
    store
        .upsert_customers(vec![
            Customer::new("c1").with_identity(Identity::email("ann@example.com")),
        ])
        .await
        .unwrap();

    // An invalid touchpoint at the end fails the whole batch, naming it and its position.
    let mut bad = tp("t-bad", "c1", 3);
    bad.kind = Kind::new("page view");
    let batch = vec![tp("t1", "c1", 1), tp("t2", "c2", 2), bad];
    match store.append_touchpoints(batch).await {
        Err(Error::Validation { item, field, .. }) => {
            assert_eq!(item, "touchpoint \"t-bad\" (#2 in batch)");
            assert_eq!(field, "kind");
        }
        other => panic!("expected a validation error, got {other:?}"),
    }

    // So does an identity that resolves to nobody; the message names the kind, not the value.
    let stranger = Touchpoint::new(
        "t3",
        Identity::email("nobody@example.com"),
        Channel::Web,
        Kind::PAGE_VIEW,
        ts(3),
    );
    let batch = vec![tp("t1", "c1", 1), stranger];
    match store.append_touchpoints(batch).await {
        Err(err @ Error::Validation { .. }) => {
            let text = err.to_string();
            assert!(text.contains("touchpoint \"t3\" (#1 in batch)"), "{text}");
            assert!(text.contains("subject.identity"), "{text}");
            assert!(
                text.contains("email identity resolves to no customer"),
                "{text}"
            );
            assert!(!text.contains("nobody"), "leaks the identity: {text}");
        }
        other => panic!("expected a validation error, got {other:?}"),
    }
    assert_eq!(total_touchpoints(&store).await, 0);
    assert!(touchpoint_ids(&store, "c1").await.is_empty());
}

#[tokio::test]
async fn ingest_is_idempotent_within_and_across_batches() {
    let store = MemoryStore::new();
    store
        .upsert_customers(vec![
            Customer::new("c1").with_identity(Identity::email("ann@example.com")),
        ])
        .await
        .unwrap();
    let mut first = tp("t1", "c1", 5);
    first.source = Some("first".into());
    let mut again = tp("t1", "c1", 9);
    again.source = Some("second".into());
    let by_identity = Touchpoint::new(
        "t1",
        Identity::email("ANN@example.com"),
        Channel::Web,
        Kind::PAGE_VIEW,
        ts(1),
    );
    let report = store
        .append_touchpoints(vec![first, tp("t2", "c1", 1), again, by_identity])
        .await
        .unwrap();
    assert_eq!((report.inserted, report.duplicates), (2, 2));

    // The same id under another customer is another touchpoint.
    let report = store
        .append_touchpoints(vec![tp("t1", "c1", 7), tp("t1", "c2", 7)])
        .await
        .unwrap();
    assert_eq!((report.inserted, report.duplicates), (1, 1));

    let stored = store
        .customer_touchpoints(&id("c1"), TimeRange::all())
        .await
        .unwrap();
    let ids: Vec<_> = stored.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(
        ids,
        ["t2", "t1"],
        "ordered by time; the first version stays"
    );
    assert_eq!(
        stored.get(1).and_then(|t| t.source.as_deref()),
        Some("first")
    );
    assert!(
        stored
            .iter()
            .all(|t| t.subject == Subject::Customer(id("c1")))
    );
}

#[tokio::test]
async fn upserts_replace_profiles_and_guard_identities() {
    let store = MemoryStore::new();
    let ann = Identity::email("ann@example.com");
    let bob = Identity::phone("+1 555 0100");
    let report = store
        .upsert_customers(vec![
            Customer::new("c1").with_identity(ann.clone()),
            Customer::new("c2").with_identity(bob.clone()),
        ])
        .await
        .unwrap();
    assert_eq!((report.inserted, report.updated), (2, 0));

    // Taking another customer's identity is a conflict and changes nothing; the message names
    // the kind only.
    let err = store
        .upsert_customers(vec![
            Customer::new("c3"),
            Customer::new("c2").with_identity(ann.clone()),
        ])
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Conflict { .. }), "{err:?}");
    assert!(!err.to_string().contains("ann@"), "{err}");
    assert_eq!(store.count_customers().await.unwrap(), 2);

    // Claimed twice in one batch: a conflict.
    let err = store
        .upsert_customers(vec![
            Customer::new("c4").with_identity(Identity::device("d-1")),
            Customer::new("c5").with_identity(Identity::device("d-1")),
        ])
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Conflict { .. }), "{err:?}");

    // Moving an identity between two customers of one batch is fine, in either order.
    let report = store
        .upsert_customers(vec![
            Customer::new("c2").with_identity(ann.clone()),
            Customer::new("c1"),
        ])
        .await
        .unwrap();
    assert_eq!((report.inserted, report.updated), (0, 2));
    assert_eq!(store.resolve_identity(&ann).await.unwrap(), Some(id("c2")));
    // c2's phone was dropped from its profile: unindexed.
    assert_eq!(store.resolve_identity(&bob).await.unwrap(), None);

    // A customer listed twice in a batch, or an invalid one, fails the batch.
    assert!(
        store
            .upsert_customers(vec![Customer::new("c9"), Customer::new("c9")])
            .await
            .is_err()
    );
    assert!(
        store
            .upsert_customers(vec![
                Customer::new("c8"),
                Customer::new("c7").with_attribute("x", f64::NAN)
            ])
            .await
            .is_err()
    );
    assert_eq!(store.count_customers().await.unwrap(), 2);
}

#[tokio::test]
async fn merges_move_everything_and_later_ingest_follows() {
    let store = MemoryStore::new();
    let old = ts(-100);
    let new = ts(100);
    store
        .upsert_customers(vec![
            Customer::new("s")
                .with_attribute("plan", "L")
                .with_identity(Identity::email("s@example.com"))
                .with_consent(Consent::granted(Channel::Sms, Purpose::MARKETING, old)),
            Customer::new("a")
                .with_attribute("plan", "S")
                .with_pii_attribute("name", "Ann")
                .with_identity(Identity::email("a@example.com"))
                .with_consent(Consent::denied(Channel::Sms, Purpose::MARKETING, new))
                .with_consent(Consent::granted(Channel::Email, Purpose::MARKETING, old)),
            Customer::new("b").with_identity(Identity::device("b-dev")),
        ])
        .await
        .unwrap();
    store
        .append_touchpoints(vec![
            tp("t1", "s", 1),
            tp("t3", "s", 3),
            tp("t2", "a", 2),
            tp("t1", "a", 9),
            tp("tb", "b", 4),
        ])
        .await
        .unwrap();
    store
        .record_decision(&decision("d1", "a", &["o1"]))
        .await
        .unwrap();
    store
        .record_outcome(&outcome("d1", "o1", OutcomeKind::Shown, 5))
        .await
        .unwrap();

    // b merges into a first, then a into s: b must follow to s.
    store.merge_customers(&id("a"), &id("b")).await.unwrap();
    let report = store.merge_customers(&id("s"), &id("a")).await.unwrap();
    assert_eq!(
        report.touchpoints_moved, 2,
        "t2 and tb; a's t1 is a duplicate"
    );
    assert_eq!(report.decisions_moved, 1);
    assert_eq!(report.identities_added, 2);

    let s = store.customer(&id("s")).await.unwrap().unwrap();
    assert_eq!(s.attributes.get("plan").and_then(|v| v.as_str()), Some("L"));
    assert!(s.attributes.contains("name") && s.is_pii("name"));
    assert_eq!(s.identities.len(), 3);
    let sms = s.consent(&Channel::Sms, &Purpose::MARKETING).unwrap();
    assert_eq!(sms.since, new, "the later record wins");
    assert!(s.consent(&Channel::Email, &Purpose::MARKETING).is_some());

    for gone in ["a", "b"] {
        assert_eq!(store.customer(&id(gone)).await.unwrap(), None);
        assert_eq!(
            store.resolve_customer(&id(gone)).await.unwrap(),
            Some(id("s"))
        );
    }
    assert_eq!(
        store
            .resolve_identity(&Identity::device("b-dev"))
            .await
            .unwrap(),
        Some(id("s"))
    );
    assert_eq!(store.count_customers().await.unwrap(), 1);
    assert_eq!(touchpoint_ids(&store, "s").await, ["t1", "t2", "t3", "tb"]);
    assert_eq!(touchpoint_ids(&store, "b").await, ["t1", "t2", "t3", "tb"]);
    let d = store
        .decision(&DecisionId::new("d1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(d.customer, id("s"));
    let history = store
        .contact_history(&id("s"), TimeRange::all())
        .await
        .unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history.first().map(|e| &e.customer), Some(&id("s")));

    // Later touchpoints and decisions under an absorbed id land on the survivor.
    let report = store
        .append_touchpoints(vec![tp("t9", "b", 50), tp("t2", "a", 2)])
        .await
        .unwrap();
    assert_eq!((report.inserted, report.duplicates), (1, 1));
    assert_eq!(
        touchpoint_ids(&store, "s").await,
        ["t1", "t2", "t3", "tb", "t9"]
    );
    store
        .record_decision(&decision("d2", "b", &["o1"]))
        .await
        .unwrap();
    assert_eq!(
        store
            .decision(&DecisionId::new("d2"))
            .await
            .unwrap()
            .map(|d| d.customer),
        Some(id("s"))
    );
    // Recording d1 again as first sent (for "a") is the same decision.
    store
        .record_decision(&decision("d1", "a", &["o1"]))
        .await
        .unwrap();

    // Upserting an absorbed id is refused rather than splitting the customer again.
    assert!(matches!(
        store.upsert_customers(vec![Customer::new("a")]).await,
        Err(Error::Conflict { .. })
    ));
    // Merging needs two distinct existing customers.
    assert!(matches!(
        store.merge_customers(&id("s"), &id("s")).await,
        Err(Error::Validation { .. })
    ));
    assert!(matches!(
        store.merge_customers(&id("s"), &id("a")).await,
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        store.merge_customers(&id("nobody"), &id("s")).await,
        Err(Error::NotFound { .. })
    ));
}

#[tokio::test]
async fn forget_erases_everything_and_is_idempotent() {
    let store = MemoryStore::new();
    let email = Identity::email("ann@example.com");
    store
        .upsert_customers(vec![
            Customer::new("c1").with_identity(email.clone()),
            Customer::new("c0"),
            Customer::new("keep"),
        ])
        .await
        .unwrap();
    store.merge_customers(&id("c1"), &id("c0")).await.unwrap();
    store
        .append_touchpoints(vec![
            tp("t1", "c1", 1),
            tp("t2", "c0", 2),
            tp("t3", "keep", 3),
        ])
        .await
        .unwrap();
    store
        .record_decision(&decision("d1", "c1", &["o1"]))
        .await
        .unwrap();
    store
        .record_outcome(&outcome("d1", "o1", OutcomeKind::Shown, 5))
        .await
        .unwrap();
    store
        .record_outcome(&outcome("d1", "o1", OutcomeKind::Accepted, 6))
        .await
        .unwrap();

    // Forgetting the absorbed id forgets the customer it was merged into.
    let report = store.forget_customer(&id("c0")).await.unwrap();
    assert!(report.profile);
    assert_eq!(
        (report.touchpoints, report.decisions, report.contacts),
        (2, 1, 2)
    );

    for gone in ["c0", "c1"] {
        assert_eq!(store.customer(&id(gone)).await.unwrap(), None);
        assert_eq!(store.resolve_customer(&id(gone)).await.unwrap(), None);
        assert!(touchpoint_ids(&store, gone).await.is_empty());
        assert!(
            store
                .contact_history(&id(gone), TimeRange::all())
                .await
                .unwrap()
                .is_empty()
        );
    }
    assert_eq!(store.resolve_identity(&email).await.unwrap(), None);
    assert_eq!(store.decision(&DecisionId::new("d1")).await.unwrap(), None);
    assert!(matches!(
        store
            .record_outcome(&outcome("d1", "o1", OutcomeKind::Shown, 5))
            .await,
        Err(Error::NotFound { .. })
    ));
    let page = store
        .scan_touchpoints(&ScanQuery::new(TouchpointQuery::new(TimeRange::all()), 100))
        .await
        .unwrap();
    let ids: Vec<_> = page.touchpoints.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(ids, ["t3"]);
    assert_eq!(store.count_customers().await.unwrap(), 1);

    // Replayed erasure and unknown ids: fine, nothing erased.
    for again in ["c0", "c1", "never"] {
        let report = store.forget_customer(&id(again)).await.unwrap();
        assert_eq!(report, Default::default());
    }

    // An id that was forgotten starts afresh: the identity and the ids are free again.
    store
        .upsert_customers(vec![Customer::new("c1").with_identity(email.clone())])
        .await
        .unwrap();
    store
        .append_touchpoints(vec![tp("t1", "c1", 1)])
        .await
        .unwrap();
    assert_eq!(touchpoint_ids(&store, "c1").await, ["t1"]);

    // Touchpoints of an id without a profile are erased too.
    store
        .append_touchpoints(vec![tp("x", "anon", 1)])
        .await
        .unwrap();
    let report = store.forget_customer(&id("anon")).await.unwrap();
    assert!(!report.profile);
    assert_eq!(report.touchpoints, 1);
}

#[tokio::test]
async fn scan_pages_cover_every_touchpoint_exactly_once_in_order() {
    let store = MemoryStore::new();
    // Many touchpoints at the same instants across customers, so pages split ties.
    let mut batch = Vec::new();
    for c in 0..40 {
        for i in 0..25 {
            let mut t = tp(&format!("t{i}"), &format!("c{c}"), i64::from(i % 7));
            if i % 3 == 0 {
                t.kind = Kind::PURCHASE;
            }
            batch.push(t);
        }
    }
    store.append_touchpoints(batch).await.unwrap();

    for (filter, expected) in [
        (TouchpointQuery::new(TimeRange::all()), 1000),
        (
            TouchpointQuery::new(TimeRange::new(ts(2), ts(5))).kinds([Kind::PURCHASE]),
            40 * (0..25)
                .filter(|i| i % 3 == 0 && (2..5).contains(&(i % 7)))
                .count(),
        ),
    ] {
        for limit in [1, 7, 100, 999, 1000, 5000] {
            let mut seen = Vec::new();
            let mut cursor = None;
            let mut pages = 0;
            loop {
                let page = store
                    .scan_touchpoints(&ScanQuery::new(filter.clone(), limit).after(cursor))
                    .await
                    .unwrap();
                pages += 1;
                assert!(page.touchpoints.len() <= limit);
                assert!(page.touchpoints.iter().all(|t| filter.matches(t)));
                seen.extend(page.touchpoints.into_iter().map(|t| {
                    let customer = t.customer_id().cloned().unwrap_or_default();
                    (t.occurred_at, customer, t.id)
                }));
                cursor = page.next;
                if cursor.is_none() {
                    break;
                }
                assert!(pages <= expected + 1, "the scan does not end");
            }
            assert_eq!(seen.len(), expected, "limit {limit}");
            assert!(
                seen.windows(2).all(|w| w.first() < w.last()),
                "order, limit {limit}"
            );
            let distinct: HashSet<_> = seen.iter().collect();
            assert_eq!(distinct.len(), expected);
        }
    }
}

#[tokio::test]
async fn aggregates_group_and_count_distinct_customers() {
    let store = MemoryStore::new();
    let all = TouchpointQuery::new(TimeRange::all());
    let rows = store
        .aggregate_touchpoints(&AggregateQuery::new(all.clone()))
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(
        rows.first().map(|r| (r.touchpoints, r.customers)),
        Some((0, 0))
    );
    assert!(
        store
            .aggregate_touchpoints(&AggregateQuery::new(all.clone()).by_channel())
            .await
            .unwrap()
            .is_empty()
    );

    let mut email = tp("e1", "c1", 3600 * 30);
    email.channel = Channel::Email;
    store
        .append_touchpoints(vec![
            tp("w1", "c1", 0),
            tp("w2", "c1", 10),
            tp("w1", "c2", 20),
            email,
        ])
        .await
        .unwrap();
    let rows = store
        .aggregate_touchpoints(&AggregateQuery::new(all.clone()).by_channel())
        .await
        .unwrap();
    let got: Vec<_> = rows
        .iter()
        .map(|r| (r.channel.clone(), r.touchpoints, r.customers))
        .collect();
    assert_eq!(
        got,
        [(Some(Channel::Web), 3, 2), (Some(Channel::Email), 1, 1)]
    );
    let rows = store
        .aggregate_touchpoints(&AggregateQuery::new(all).by_bucket(Bucket::Day).by_kind())
        .await
        .unwrap();
    assert_eq!(rows.len(), 2);
    assert!(
        rows.windows(2)
            .all(|w| w.first().map(|r| r.bucket) < w.last().map(|r| r.bucket))
    );
    assert_eq!(
        rows.first().map(|r| (r.touchpoints, r.customers)),
        Some((3, 2))
    );
}

#[tokio::test]
async fn outcomes_are_counted_once_and_checked() {
    let store = MemoryStore::new();
    let d = decision("d1", "c1", &["o1", "o2"]);
    store.record_decision(&d).await.unwrap();
    store.record_decision(&d).await.unwrap();
    let mut other = d.clone();
    other.catalog_version = 2;
    assert!(matches!(
        store.record_decision(&other).await,
        Err(Error::Conflict { .. })
    ));

    let shown = outcome("d1", "o1", OutcomeKind::Shown, 10);
    assert_eq!(
        store.record_outcome(&shown).await.unwrap(),
        OutcomeRecorded::New
    );
    assert_eq!(
        store.record_outcome(&shown).await.unwrap(),
        OutcomeRecorded::Duplicate
    );
    store
        .record_outcome(&outcome("d1", "o2", OutcomeKind::Shown, 5))
        .await
        .unwrap();
    assert!(matches!(
        store
            .record_outcome(&outcome("d1", "o3", OutcomeKind::Shown, 5))
            .await,
        Err(Error::Validation { .. })
    ));
    assert!(matches!(
        store
            .record_outcome(&outcome("d9", "o1", OutcomeKind::Shown, 5))
            .await,
        Err(Error::NotFound { .. })
    ));

    let history = store
        .contact_history(&id("c1"), TimeRange::all())
        .await
        .unwrap();
    let at: Vec<_> = history.iter().map(|e| e.at).collect();
    assert_eq!(at, [ts(5), ts(10)]);
    assert!(
        history
            .iter()
            .all(|e| e.channel == Channel::Sms && e.category == Category::new("upsell"))
    );
    let counts = store
        .count_contacts(
            &id("c1"),
            &[
                ContactCount {
                    key: ContactKey::All,
                    kind: OutcomeKind::Shown,
                    range: TimeRange::all(),
                },
                ContactCount {
                    key: ContactKey::Offer(OfferId::new("o1")),
                    kind: OutcomeKind::Shown,
                    range: TimeRange::new(ts(0), ts(10)),
                },
                ContactCount {
                    key: ContactKey::Category(Category::new("upsell")),
                    kind: OutcomeKind::Accepted,
                    range: TimeRange::all(),
                },
            ],
        )
        .await
        .unwrap();
    assert_eq!(counts, [2, 0, 0]);
}

#[tokio::test]
async fn catalog_versions_follow_expectations() {
    use cx_core::model::Catalog;
    let store = Arc::new(MemoryStore::new());
    assert!(store.catalog(None).await.unwrap().is_none());
    assert!(
        store
            .put_catalog(&Catalog::default(), CatalogMeta::new().expecting(1))
            .await
            .is_err()
    );
    let v1 = store
        .put_catalog(
            &Catalog::default(),
            CatalogMeta::new().expecting(0).at(ts(1)).author("ann"),
        )
        .await
        .unwrap();
    assert_eq!((v1.version, v1.stored_at), (1, ts(1)));

    // Racing puts expecting version 1: exactly one wins.
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                store
                    .put_catalog(&Catalog::default(), CatalogMeta::new().expecting(1))
                    .await
                    .is_ok()
            })
        })
        .collect();
    let mut wins = 0;
    for task in tasks {
        wins += usize::from(task.await.unwrap_or(false));
    }
    assert_eq!(wins, 1);
    let history = store.catalog_history().await.unwrap();
    let versions: Vec<_> = history.iter().map(|v| v.version).collect();
    assert_eq!(versions, [1, 2]);
    assert_eq!(
        store.catalog(Some(1)).await.unwrap().map(|c| c.version),
        Some(v1)
    );
    assert!(store.catalog(Some(0)).await.unwrap().is_none());
    assert!(store.catalog(Some(3)).await.unwrap().is_none());
    assert_eq!(
        store
            .catalog(None)
            .await
            .unwrap()
            .map(|c| c.version.version),
        Some(2)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_consumers_never_exceed_a_budget() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let key = BudgetKey::new("b1", "total");
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let store = Arc::clone(&store);
            let key = key.clone();
            tokio::spawn(async move {
                let mut granted = 0u64;
                for _ in 0..50 {
                    if store
                        .consume_budget(&key, 100, 1)
                        .await
                        .is_ok_and(|g| g.granted)
                    {
                        granted += 1;
                    }
                    tokio::task::yield_now().await;
                }
                granted
            })
        })
        .collect();
    let mut total = 0;
    for task in tasks {
        total += task.await.unwrap_or(0);
    }
    assert_eq!(total, 100);
    assert_eq!(store.budget_used(&key).await.unwrap(), 100);
    let refused = store.consume_budget(&key, 100, 1).await.unwrap();
    assert!(!refused.granted);
    assert_eq!(refused.used, 100);
    assert!(
        !store
            .consume_budget(&key, 100, u64::MAX)
            .await
            .unwrap()
            .granted
    );
    assert_eq!(store.budget_used(&key).await.unwrap(), 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn readers_never_see_part_of_a_batch() {
    const BATCH: usize = 500;
    let store = Arc::new(MemoryStore::new());
    let writer = {
        let store = Arc::clone(&store);
        tokio::spawn(async move {
            for b in 0..40 {
                let batch: Vec<_> = (0..BATCH)
                    .map(|i| tp(&format!("t{b}-{i}"), &format!("c{}", i % 97), i as i64))
                    .collect();
                store.append_touchpoints(batch).await.unwrap();
                tokio::task::yield_now().await;
            }
        })
    };
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                loop {
                    let n = total_touchpoints(&store).await;
                    assert_eq!(n % BATCH as u64, 0, "saw part of a batch");
                    if n == 40 * BATCH as u64 {
                        break;
                    }
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    writer.await.unwrap();
    for reader in readers {
        reader.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn merges_racing_with_ingest_lose_nothing() {
    let store = Arc::new(MemoryStore::new());
    let customers: Vec<_> = (0..64).map(|c| Customer::new(format!("c{c}"))).collect();
    store.upsert_customers(customers).await.unwrap();
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                for b in 0..20 {
                    let batch: Vec<_> = (0..64)
                        .map(|c| tp(&format!("w{w}-b{b}"), &format!("c{c}"), b))
                        .collect();
                    store.append_touchpoints(batch).await.unwrap();
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    // Fold every odd customer into the even one below it while ingest runs.
    for c in (1..64).step_by(2) {
        store
            .merge_customers(&id(&format!("c{}", c - 1)), &id(&format!("c{c}")))
            .await
            .unwrap();
        tokio::task::yield_now().await;
    }
    for w in writers {
        w.await.unwrap();
    }
    assert_eq!(
        total_touchpoints(&store).await,
        4 * 20 * 32,
        "duplicates fold on merge"
    );
    for c in (1..64).step_by(2) {
        assert!(touchpoint_ids(&store, &format!("c{c}")).await.len() == 80);
    }
}

/// More than 64 measures in one call (two dispatch chunks), with kind filters that keep one
/// kind, several, or all: each gives what it gives when asked alone.
#[tokio::test]
async fn many_measures_in_one_call_match_each_measure_alone() {
    use cx_core::store::{AnalyticsStore, MeasureQuery, Statistic};
    let store = MemoryStore::new();
    let kinds = [
        "page_view",
        "product_view",
        "purchase",
        "complaint",
        "usage",
    ];
    store
        .upsert_customers((0..5).map(|c| Customer::new(format!("m-{c}"))).collect())
        .await
        .unwrap();
    let batch: Vec<Touchpoint> = (0..300)
        .map(|i| {
            Touchpoint::new(
                format!("m-t{i}"),
                CustomerId::new(format!("m-{}", i % 5)),
                if i % 3 == 0 {
                    Channel::App
                } else {
                    Channel::Web
                },
                Kind::new(kinds[i % kinds.len()]),
                ts(i as i64 * 60),
            )
            .with_attribute("amount", (i % 17) as f64)
        })
        .collect();
    store.append_touchpoints(batch).await.unwrap();
    let queries: Vec<MeasureQuery> = (0..70)
        .map(|q| {
            let range = TimeRange::new(ts((q as i64 % 7) * 600), ts(20_000 - (q as i64 % 5) * 900));
            let mut filter = TouchpointQuery::new(range);
            if q % 4 != 0 {
                filter = filter.kinds(
                    kinds
                        .iter()
                        .enumerate()
                        .filter(|(k, _)| (q + k) % 3 == 0)
                        .map(|(_, k)| Kind::new(*k)),
                );
            }
            if q % 5 == 0 {
                filter = filter.channels([Channel::App]);
            }
            let statistic = match q % 3 {
                0 => Statistic::Count,
                1 => Statistic::DistinctCustomers,
                _ => Statistic::Sum("amount".into()),
            };
            MeasureQuery::new(filter, statistic)
        })
        .collect();
    let together = store.measure_touchpoints(&queries).await.unwrap();
    assert_eq!(together.len(), 70);
    for (q, value) in queries.iter().zip(&together) {
        let alone = store
            .measure_touchpoints(std::slice::from_ref(q))
            .await
            .unwrap();
        assert_eq!(alone.first(), Some(value), "{q:?}");
    }
    // Counts against the touchpoints read back and filtered one by one.
    let mut all = Vec::new();
    for c in 0..5 {
        all.extend(
            store
                .customer_touchpoints(&id(&format!("m-{c}")), TimeRange::all())
                .await
                .unwrap(),
        );
    }
    for (q, value) in queries.iter().zip(&together) {
        if q.statistic == Statistic::Count {
            let expected = all.iter().filter(|t| q.filter.matches(t)).count() as u64;
            assert_eq!(value.n, expected, "{q:?}");
        }
    }
    assert!(together.iter().any(|v| v.n > 0));
}

/// A decision's state computes the catalogue's features in place, from the stored form, over a
/// merged customer's touchpoints too, and they equal those computed from the touchpoints read
/// out (the conformance case checks the same on every backend, which may skip the in-place
/// step; this one may not).
#[tokio::test]
async fn decision_state_computes_features_in_place() {
    use cx_core::arbitration::CompiledCatalog;
    use cx_core::model::Catalog;
    use cx_core::store::DecisionStateQuery;
    let catalog = Catalog::from_yaml(
        r#"
schema:
  touchpoint: { page: string }
features:
  - { id: views, aggregate: count, kinds: [page_view], window: 1h }
  - { id: sms, aggregate: count, channels: [sms], window: 1h }
  - { id: last_page, aggregate: last, attribute: page, window: 1h }
  - { id: checkout_views, aggregate: count, window: 1h, filter: 'touchpoint.page == "checkout"' }
"#,
    )
    .unwrap();
    let catalog = Arc::new(CompiledCatalog::compile(catalog, 1).unwrap());
    let store = MemoryStore::new();
    store
        .upsert_customers(vec![Customer::new("c-1"), Customer::new("c-2")])
        .await
        .unwrap();
    let mut batch = Vec::new();
    for i in 0..30 {
        let customer = if i % 3 == 0 { "c-2" } else { "c-1" };
        let channel = if i % 5 == 0 {
            Channel::Sms
        } else {
            Channel::Web
        };
        let page = if i % 4 == 0 { "checkout" } else { "home" };
        batch.push(
            Touchpoint::new(
                format!("t-{i}"),
                id(customer),
                channel,
                Kind::PAGE_VIEW,
                ts(i * 60),
            )
            .with_attribute("page", page),
        );
    }
    store.append_touchpoints(batch).await.unwrap();
    store.merge_customers(&id("c-1"), &id("c-2")).await.unwrap();
    let now = ts(30 * 60);
    let range = TimeRange::new(ts(0), now);
    let query = DecisionStateQuery::new("c-2")
        .touchpoints(Some(range))
        .features(Arc::clone(&catalog), now);
    let state = store.decision_state(&query).await.unwrap().unwrap();
    assert_eq!(state.customer.id, id("c-1"), "the merged id resolves");
    assert!(state.touchpoints.is_empty());
    let read = store.customer_touchpoints(&id("c-1"), range).await.unwrap();
    assert_eq!(read.len(), 30);
    let expected = catalog.compute_features(&read, now);
    assert_eq!(state.features.as_ref(), Some(&expected));
    assert_eq!(
        expected,
        vec![
            Some(cx_core::model::Value::Number(30.0)),
            Some(cx_core::model::Value::Number(6.0)),
            Some(cx_core::model::Value::from("home")),
            Some(cx_core::model::Value::Number(8.0)),
        ]
    );
}

/// The store keeps what a catalogue's features read of a customer's touchpoints after a
/// decision reads them, and computes the next decisions' features from that: every change to
/// the touchpoints (an append, a late arrival, a merge), another catalogue and an earlier
/// instant must give what the touchpoints give, on both the one-customer and the visiting
/// path.
#[tokio::test]
async fn kept_feature_inputs_follow_every_change_to_the_touchpoints() {
    use cx_core::arbitration::CompiledCatalog;
    use cx_core::model::{Catalog, Value};
    use cx_core::store::{DecisionState, DecisionStateQuery};
    let compile = |yaml: &str| {
        Arc::new(CompiledCatalog::compile(Catalog::from_yaml(yaml).unwrap(), 1).unwrap())
    };
    let first = compile(
        r#"
schema:
  touchpoint: { page: string, seconds: number }
features:
  - { id: views, aggregate: count, kinds: [page_view], window: 1h }
  - { id: last_page, aggregate: last, attribute: page, window: 1h }
  - { id: seconds_10m, aggregate: sum, attribute: seconds, window: 10m }
"#,
    );
    let second = compile(
        r#"
schema:
  touchpoint: { page: string }
features:
  - { id: checkouts, aggregate: count, window: 2h, filter: 'touchpoint.page == "checkout"' }
  - { id: pages, aggregate: distinct_count, attribute: page, window: 2h }
"#,
    );
    let store = MemoryStore::new();
    store
        .upsert_customers(vec![Customer::new("c-1"), Customer::new("c-2")])
        .await
        .unwrap();
    let page = |i: i64, customer: &str, secs: i64| {
        let name = ["home", "checkout", "plans"][(i % 3) as usize];
        tp(&format!("t-{i}"), customer, secs)
            .with_attribute("page", name)
            .with_attribute("seconds", (i * 7 % 50) as f64)
    };
    store
        .append_touchpoints((0..40).map(|i| page(i, "c-1", i * 150)).collect())
        .await
        .unwrap();
    store
        .append_touchpoints((40..50).map(|i| page(i, "c-2", i * 150 - 4_000)).collect())
        .await
        .unwrap();
    // What the engine asks: the longest window up to `now`, inclusive.
    let query = |catalog: &Arc<CompiledCatalog>, customer: &str, now: Timestamp| {
        let lookback = catalog.touchpoint_lookback().as_delta();
        DecisionStateQuery::new(customer)
            .touchpoints(Some(TimeRange::new(
                now - lookback,
                now + cx_core::chrono::TimeDelta::microseconds(1),
            )))
            .features(Arc::clone(catalog), now)
    };
    let check = async |store: &MemoryStore, catalog: &Arc<CompiledCatalog>, now: Timestamp| {
        let mut expected = Vec::new();
        for customer in ["c-1", "c-2"] {
            let read = store
                .customer_touchpoints(&id(customer), TimeRange::all())
                .await
                .unwrap();
            let values: Vec<Option<Value>> = catalog.compute_features(&read, now);
            let state = store
                .decision_state(&query(catalog, customer, now))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(
                state.features.as_ref(),
                Some(&values),
                "{customer} at {now}"
            );
            expected.push(values);
        }
        let mut visited: Vec<Option<Vec<Option<Value>>>> = Vec::new();
        store
            .visit_decision_states(
                &query(catalog, "_", now),
                &[id("c-1"), id("c-2")],
                &mut |_, state| {
                    visited.push(state.and_then(|s| features_of(&s, catalog, now)));
                },
            )
            .await
            .unwrap();
        assert_eq!(
            visited,
            expected.into_iter().map(Some).collect::<Vec<_>>(),
            "at {now}"
        );
    };
    let now = ts(40 * 150);
    check(&store, &first, now).await;
    check(&store, &first, now).await; // kept
    // In order, then a late arrival.
    store
        .append_touchpoints(vec![page(50, "c-1", 40 * 150 - 10)])
        .await
        .unwrap();
    check(&store, &first, now).await;
    store
        .append_touchpoints(vec![page(51, "c-1", 35 * 150 + 5)])
        .await
        .unwrap();
    check(&store, &first, now).await;
    // Another catalogue, then the first again.
    check(&store, &second, now).await;
    check(&store, &first, now).await;
    // Earlier instants (further back than what was kept), then later ones.
    check(&store, &first, ts(20 * 150)).await;
    check(&store, &first, now).await;
    check(
        &store,
        &first,
        now + cx_core::chrono::TimeDelta::minutes(30),
    )
    .await;
    // A merge moves c-2's touchpoints into c-1's timeline.
    store.merge_customers(&id("c-1"), &id("c-2")).await.unwrap();
    let state = store
        .decision_state(&query(&first, "c-1", now))
        .await
        .unwrap()
        .map(|s: DecisionState| s.features);
    let read = store
        .customer_touchpoints(&id("c-1"), TimeRange::all())
        .await
        .unwrap();
    assert_eq!(read.len(), 52);
    assert_eq!(state, Some(Some(first.compute_features(&read, now))));
}

/// Batches of decisions keep feature inputs (single decisions never do), a change to a
/// customer's touchpoints drops theirs, and a store told not to keep them keeps none, with
/// the same features either way.
#[tokio::test]
async fn batches_keep_feature_inputs_unless_told_not_to() {
    use cx_core::arbitration::CompiledCatalog;
    use cx_core::model::Catalog;
    use cx_core::store::DecisionStateQuery;
    let catalog = Arc::new(
        CompiledCatalog::compile(
            Catalog::from_yaml(
                r#"
features:
  - { id: views, aggregate: count, kinds: [page_view], window: 1h }
"#,
            )
            .unwrap(),
            1,
        )
        .unwrap(),
    );
    let now = ts(3_600);
    let query = |customer: &str| {
        DecisionStateQuery::new(customer)
            .touchpoints(Some(TimeRange::new(
                ts(0),
                now + cx_core::chrono::TimeDelta::microseconds(1),
            )))
            .features(Arc::clone(&catalog), now)
    };
    let mut features_seen = Vec::new();
    for keep in [true, false] {
        let store = MemoryStore::new().with_kept_feature_inputs(keep);
        store
            .upsert_customers(vec![
                Customer::new("c-1"),
                Customer::new("c-2"),
                Customer::new("c-3"),
            ])
            .await
            .unwrap();
        let batch = (0..20)
            .map(|i| tp(&format!("t-{i}"), ["c-1", "c-2"][i % 2], 100 * i as i64))
            .collect();
        store.append_touchpoints(batch).await.unwrap();
        store.decision_state(&query("c-1")).await.unwrap();
        assert_eq!(
            store.kept_feature_inputs().customers,
            0,
            "one decision keeps none"
        );
        let (mut features, mut handed_over) = (Vec::new(), 0);
        store
            .visit_decision_states(
                &query("_"),
                &[id("c-1"), id("c-2"), id("c-3")],
                &mut |_, state| {
                    let handed = state.is_some_and(|s| s.feature_inputs.is_some());
                    features.push(state.and_then(|s| features_of(&s, &catalog, now)));
                    handed_over += usize::from(handed);
                },
            )
            .await
            .unwrap();
        // Handed over to the decisions, instead of the features computed from them.
        assert_eq!(handed_over, if keep { 2 } else { 0 });
        let kept = store.kept_feature_inputs();
        // c-3 has no touchpoints, so no timeline to keep them with.
        assert_eq!(kept.customers, if keep { 2 } else { 0 }, "keep: {keep}");
        assert_eq!(kept.bytes > 0, keep);
        store
            .append_touchpoints(vec![tp("t-late", "c-1", 50)])
            .await
            .unwrap();
        assert_eq!(
            store.kept_feature_inputs().customers,
            if keep { 1 } else { 0 }
        );
        features_seen.push(features);
    }
    assert_eq!(features_seen.first(), features_seen.last());
    assert_eq!(
        features_seen.first().and_then(|f| f.first().cloned()),
        Some(Some(vec![Some(cx_core::model::Value::Number(10.0))]))
    );
}

/// Batches keep what the catalogue's rules read of each profile alone, and decide from it; an
/// upsert of the profile or a merge into it drops it, so decisions follow the new profile; a
/// store told not to keep it decides the same from the profiles.
#[tokio::test]
async fn kept_customer_inputs_follow_every_change_to_the_profile() {
    use cx_core::store::DecisionStateQuery;
    let (catalog, arbitrator) = arbitrator_for(
        r#"
schema:
  customer: { plan: string }
offers:
  - { id: small, name: Small, category: a, channels: [app], consent_purpose: service, value: 2, eligibility: 'customer.plan == "S"' }
  - { id: larger, name: Larger, category: b, channels: [app], consent_purpose: service, value: 1, eligibility: 'customer.plan in ["M", "L"]' }
arbitration: { k: 2, scoring: { propensity: false } }
"#,
    );
    let now = ts(3_600);
    let customer = |name: &str, plan: Option<&str>| {
        let c = consenting(name, Channel::App);
        match plan {
            Some(plan) => c.with_attribute("plan", plan),
            None => c,
        }
    };
    let query = DecisionStateQuery::new("_")
        .touchpoints(Some(TimeRange::new(ts(0), ts(3_601))))
        .features(Arc::clone(&catalog), now);
    // The offers each customer gets, and whether the inputs were handed over.
    let decide = async |store: &MemoryStore, customers: &[&str]| {
        let chosen = batch_decide(store, &query, &arbitrator, (Channel::App, now), customers);
        let chosen = chosen.await.into_iter().map(Option::unwrap);
        chosen
            .map(|(offers, handed, _)| (offers, handed))
            .collect::<Vec<_>>()
    };
    let offers = |chosen: Vec<(Vec<String>, bool)>| -> Vec<Vec<String>> {
        chosen.into_iter().map(|(offers, _)| offers).collect()
    };
    let names = |list: &[&[&str]]| -> Vec<Vec<String>> {
        list.iter()
            .map(|o| o.iter().map(|s| s.to_string()).collect())
            .collect()
    };
    for keep in [true, false] {
        let store = MemoryStore::new().with_kept_feature_inputs(keep);
        store
            .upsert_customers(vec![
                customer("c-1", Some("S")),
                customer("c-2", None),
                customer("c-3", Some("M")),
            ])
            .await
            .unwrap();
        let all = ["c-1", "c-2", "c-3"];
        let first = decide(&store, &all).await;
        assert!(
            first.iter().all(|(_, handed)| *handed == keep),
            "keep: {keep}"
        );
        assert_eq!(
            store.kept_feature_inputs().profiles,
            if keep { 3 } else { 0 }
        );
        assert!((store.kept_feature_inputs().profile_bytes > 0) == keep);
        assert_eq!(offers(first), names(&[&["small"], &[], &["larger"]]));
        // From the kept inputs: the same.
        assert_eq!(
            offers(decide(&store, &all).await),
            names(&[&["small"], &[], &["larger"]])
        );
        // A new profile drops them.
        store
            .upsert_customers(vec![customer("c-1", Some("M"))])
            .await
            .unwrap();
        assert_eq!(
            store.kept_feature_inputs().profiles,
            if keep { 2 } else { 0 }
        );
        assert_eq!(
            offers(decide(&store, &all).await),
            names(&[&["larger"], &[], &["larger"]])
        );
        // A merge changes the survivor's profile (it gains the plan): it drops them too.
        store.merge_customers(&id("c-2"), &id("c-3")).await.unwrap();
        assert_eq!(
            store.kept_feature_inputs().profiles,
            if keep { 1 } else { 0 }
        );
        assert_eq!(
            offers(decide(&store, &["c-1", "c-2", "c-3"]).await),
            names(&[&["larger"], &["larger"], &["larger"]])
        );
    }
}

/// Batches keep what the catalogue's contact policies read of each customer's contact history,
/// and decide from it; a new outcome, a merge into the customer and an erasure drop it, so
/// decisions follow the history; a store told not to keep it decides the same from the events.
#[tokio::test]
async fn kept_contact_inputs_follow_every_change_to_the_history() {
    use cx_core::store::DecisionStateQuery;
    let (catalog, arbitrator) = arbitrator_for(
        r#"
offers:
  - { id: first, name: First, category: upsell, channels: [sms], consent_purpose: service, value: 2 }
  - { id: second, name: Second, category: upsell, channels: [sms], consent_purpose: service, value: 1 }
contact_policy:
  - { rule: cap, scope: offer, outcome: shown, max: 1, window: 1d }
arbitration: { k: 1, scoring: { propensity: false } }
"#,
    );
    let now = ts(3_600);
    let customer = |name: &str| consenting(name, Channel::Sms);
    let query = DecisionStateQuery::new("_")
        .features(Arc::clone(&catalog), now)
        .contacts(Some(TimeRange::new(ts(3_600 - 86_400), ts(3_601))));
    // The offer each customer gets (`-` for none), and whether contact inputs were handed over.
    let decide = async |store: &MemoryStore, customers: &[&str]| {
        let chosen = batch_decide(store, &query, &arbitrator, (Channel::Sms, now), customers);
        let chosen = chosen.await.into_iter();
        chosen
            .map(|d| match d {
                Some((offers, _, handed)) => {
                    (offers.first().cloned().unwrap_or("-".into()), handed)
                }
                None => ("-".to_owned(), false),
            })
            .collect::<Vec<_>>()
    };
    let offers = |chosen: Vec<(String, bool)>| -> Vec<String> {
        chosen.into_iter().map(|(offer, _)| offer).collect()
    };
    let shown = async |store: &MemoryStore, decision_id: &str, customer: &str| {
        store
            .record_decision(&decision(decision_id, customer, &["first"]))
            .await
            .unwrap();
        let event = outcome(decision_id, "first", OutcomeKind::Shown, 3_000);
        assert_eq!(
            store.record_outcome(&event).await.unwrap(),
            OutcomeRecorded::New
        );
    };
    for keep in [true, false] {
        let store = MemoryStore::new().with_kept_feature_inputs(keep);
        store
            .upsert_customers(vec![customer("c-1"), customer("c-2"), customer("c-3")])
            .await
            .unwrap();
        let all = ["c-1", "c-2", "c-3"];
        let first = decide(&store, &all).await;
        assert!(
            first.iter().all(|(_, handed)| *handed == keep),
            "keep: {keep}"
        );
        assert_eq!(
            store.kept_feature_inputs().contacts,
            if keep { 3 } else { 0 }
        );
        assert_eq!(offers(first), ["first", "first", "first"]);
        // An outcome drops them: the offer shown is capped.
        shown(&store, "d-1", "c-1").await;
        assert_eq!(
            store.kept_feature_inputs().contacts,
            if keep { 2 } else { 0 }
        );
        assert_eq!(
            offers(decide(&store, &all).await),
            ["second", "first", "first"]
        );
        // From the kept inputs: the same.
        let again = decide(&store, &all).await;
        assert!(again.iter().all(|(_, handed)| *handed == keep));
        assert_eq!(offers(again), ["second", "first", "first"]);
        // A merge moves the absorbed customer's history to the survivor: it drops theirs.
        shown(&store, "d-3", "c-3").await;
        decide(&store, &all).await;
        store.merge_customers(&id("c-2"), &id("c-3")).await.unwrap();
        assert_eq!(
            store.kept_feature_inputs().contacts,
            if keep { 1 } else { 0 }
        );
        assert_eq!(
            offers(decide(&store, &all).await),
            ["second", "second", "second"]
        );
        // Erased, then back: no history.
        store.forget_customer(&id("c-1")).await.unwrap();
        assert_eq!(
            offers(decide(&store, &all).await),
            ["-", "second", "second"]
        );
        store.upsert_customers(vec![customer("c-1")]).await.unwrap();
        assert_eq!(
            offers(decide(&store, &all).await),
            ["first", "second", "second"]
        );
    }
}
