//! `Engine::decide` and `Engine::record_outcome` end to end on the in-memory store: the
//! decision log, learning from outcomes, contact history feeding the policies, and budgets that
//! hold under 16 concurrent deciders.

use cx::chrono::{TimeDelta, TimeZone, Utc};
use cx::model::*;
use cx::store::OutcomeRecorded;
use cx::{Engine, Error, ManualClock, MemoryStore};
use std::sync::Arc;

const CATALOG: &str = r#"
schema:
  customer: { plan: string }
budgets:
  - { id: launch, limit: 100, counts: shown, period: total }
contact_policy:
  - { rule: cap, scope: offer, outcome: shown, max: 2, window: 7d }
offers:
  - { id: premium, name: Premium, category: plan, channels: [app], value: 10, budget: launch }
  - { id: basic, name: Basic, category: plan, channels: [app], value: 9 }
  - { id: tips, name: Tips, category: content, channels: [app], value: 1 }
arbitration:
  k: 2
"#;

fn engine() -> (Engine, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(
        Utc.with_ymd_and_hms(2026, 11, 22, 9, 0, 0).unwrap(),
    ));
    let engine = Engine::new(Arc::new(MemoryStore::new())).with_clock(clock.clone());
    (engine, clock)
}

fn customer(id: &str) -> Customer {
    let since = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    Customer::new(id)
        .with_attribute("plan", "S")
        .with_consent(Consent::granted(Channel::App, Purpose::MARKETING, since))
}

async fn setup(customers: usize) -> (Engine, Arc<ManualClock>) {
    setup_with(CATALOG, customers).await
}

/// An engine with `catalog` loaded and customers `c0`, `c1`...
async fn setup_with(catalog: &str, customers: usize) -> (Engine, Arc<ManualClock>) {
    let (engine, clock) = engine();
    engine
        .load_catalog(Catalog::from_yaml(catalog).unwrap())
        .await
        .unwrap();
    let all = (0..customers).map(|i| customer(&format!("c{i}"))).collect();
    engine.upsert_customers(all).await.unwrap();
    (engine, clock)
}

fn offers(d: &Decision) -> Vec<&str> {
    d.offers.iter().map(|s| s.offer.as_str()).collect()
}

#[tokio::test]
async fn decisions_are_logged_and_explained() {
    let (engine, _) = setup(1).await;
    let d = engine
        .decide(&DecisionRequest::new("c0", Channel::App).seed(3))
        .await
        .unwrap();
    assert_eq!(offers(&d), ["premium", "tips"]);
    assert!(
        d.why_not(&OfferId::new("basic"))
            .contains("went to offer \"premium\"")
    );
    let stored = engine
        .store()
        .decision(&d.id)
        .await
        .unwrap()
        .expect("logged");
    assert_eq!(stored, d);
    assert_eq!(stored.catalog_version, 1);
    // The log keeps what was decided, not the in-memory explanation.
    assert!(stored.explanations().is_empty());
    assert_eq!(d.explanations().len(), 3);
}

#[tokio::test]
async fn unknown_customers_and_missing_catalogues_are_errors() {
    let (engine, _) = engine();
    assert!(matches!(
        engine
            .decide(&DecisionRequest::new("c0", Channel::App))
            .await,
        Err(Error::NotFound {
            kind: "catalog",
            ..
        })
    ));
    let (engine, _) = setup(1).await;
    assert!(matches!(
        engine
            .decide(&DecisionRequest::new("nobody", Channel::App))
            .await,
        Err(Error::NotFound {
            kind: "customer",
            ..
        })
    ));
}

#[tokio::test]
async fn outcomes_feed_the_contact_policy() {
    let (engine, clock) = setup(1).await;
    for _ in 0..2 {
        let d = engine
            .decide(&DecisionRequest::new("c0", Channel::App).seed(1))
            .await
            .unwrap();
        assert_eq!(d.offers[0].offer, "premium");
        engine
            .record_outcome(&d.id, &OfferId::new("premium"), OutcomeKind::Shown)
            .await
            .unwrap();
        clock.advance(TimeDelta::hours(1));
    }
    // Shown twice this week: capped, so the next best of its category takes the slot.
    let d = engine
        .decide(&DecisionRequest::new("c0", Channel::App).seed(1))
        .await
        .unwrap();
    assert_eq!(offers(&d), ["basic", "tips"]);
    let e = d
        .explanations()
        .into_iter()
        .find(|e| e.offer == "premium")
        .unwrap();
    assert_eq!(e.stage, PipelineStage::ContactPolicy);
    assert_eq!(
        e.lifts_at,
        Some(Utc.with_ymd_and_hms(2026, 11, 29, 9, 0, 0).unwrap())
    );
}

#[tokio::test]
async fn outcomes_are_checked_and_counted_once() {
    let (engine, _) = setup(1).await;
    let d = engine
        .decide(&DecisionRequest::new("c0", Channel::App).seed(1))
        .await
        .unwrap();
    assert!(matches!(
        engine
            .record_outcome(
                &DecisionId::new("d-nope"),
                &OfferId::new("premium"),
                OutcomeKind::Accepted
            )
            .await,
        Err(Error::NotFound {
            kind: "decision",
            ..
        })
    ));
    assert!(matches!(
        engine
            .record_outcome(&d.id, &OfferId::new("basic"), OutcomeKind::Accepted)
            .await,
        Err(Error::Validation { .. })
    ));
    let premium = OfferId::new("premium");
    assert_eq!(
        engine
            .record_outcome(&d.id, &premium, OutcomeKind::Accepted)
            .await
            .unwrap(),
        OutcomeRecorded::New
    );
    assert_eq!(
        engine
            .record_outcome(&d.id, &premium, OutcomeKind::Accepted)
            .await
            .unwrap(),
        OutcomeRecorded::Duplicate
    );
    let model = engine.propensity_model();
    let mut means = Vec::new();
    model.fill_means(&[0, 1], None, &mut means);
    // Prior Beta(1, 9): one success moves premium to 2/11; basic stays at 1/10.
    assert!((means[0] - 2.0 / 11.0).abs() < 1e-12, "{means:?}");
    assert!((means[1] - 0.1).abs() < 1e-12, "{means:?}");
}

#[tokio::test]
async fn learning_shifts_the_choice() {
    let (engine, clock) = setup(60).await;
    // Whatever leads gets rejected if it is premium and accepted if it is basic: premium's
    // higher value wins only until its propensity falls below basic's.
    let mut premium_first = 0;
    for i in 0..60 {
        let d = engine
            .decide(&DecisionRequest::new(format!("c{i}"), Channel::App).seed(i))
            .await
            .unwrap();
        let first = d.offers[0].offer.clone();
        let kind = if first == "premium" {
            premium_first += 1;
            OutcomeKind::Rejected
        } else {
            OutcomeKind::Accepted
        };
        engine.record_outcome(&d.id, &first, kind).await.unwrap();
        clock.advance(TimeDelta::minutes(1));
    }
    // Prior Beta(1, 9): after 2 rejections premium's 10 × 1/12 < basic's 9 × 1/10.
    assert_eq!(premium_first, 2);
    let mut means = Vec::new();
    engine
        .propensity_model()
        .fill_means(&[0, 1], None, &mut means);
    assert!((means[0] - 1.0 / 12.0).abs() < 1e-12, "{means:?}");
    assert!(
        (means[1] - 59.0 / 68.0).abs() < 1e-12,
        "basic: 58 acceptances on Beta(1, 9): {means:?}"
    );
    let d = engine
        .decide(&DecisionRequest::new("c0", Channel::App).seed(1))
        .await
        .unwrap();
    assert_eq!(d.offers[0].offer, "basic");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_concurrent_deciders_never_exceed_a_budget() {
    let (engine, _) = setup(400).await;
    let engine = Arc::new(engine);
    let mut tasks = Vec::new();
    for t in 0..16 {
        let engine = Arc::clone(&engine);
        tasks.push(tokio::spawn(async move {
            let mut premium = 0u64;
            for i in 0..25 {
                let id = format!("c{}", t * 25 + i);
                let d = engine
                    .decide(&DecisionRequest::new(id, Channel::App).seed(i))
                    .await
                    .unwrap();
                premium += d.offers.iter().filter(|s| s.offer == "premium").count() as u64;
                // Once the budget is gone, basic takes the plan slot.
                assert!(d.offers.iter().any(|s| s.category == "plan"));
            }
            premium
        }));
    }
    let mut total = 0;
    for task in tasks {
        total += task.await.unwrap();
    }
    assert_eq!(
        total, 100,
        "exactly the budget: 400 deciders wanted premium, 100 could have it"
    );
    let used = engine
        .store()
        .budget_used(&cx::store::BudgetKey::new("launch", "total"))
        .await
        .unwrap();
    assert_eq!(used, 100);
}

/// Two budgets on one decision, raced: `launch` runs out while `tips` never does. A decision
/// that loses the race for `launch` is decided again, and what it had drawn from `tips` is not
/// taken twice: the `tips` counter is exactly the number of decisions that chose tips.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_decision_refused_one_budget_takes_nothing_from_the_others() {
    let catalog = CATALOG
        .replace(
            "  - { id: launch, limit: 100, counts: shown, period: total }",
            "  - { id: launch, limit: 100, counts: shown, period: total }\n  \
             - { id: content, limit: 100000, counts: shown, period: total }",
        )
        .replace(
            "channels: [app], value: 1 }",
            "channels: [app], value: 20, budget: content }",
        );
    let (engine, _) = setup_with(&catalog, 400).await;
    let engine = Arc::new(engine);
    let mut tasks = Vec::new();
    for t in 0..16 {
        let engine = Arc::clone(&engine);
        tasks.push(tokio::spawn(async move {
            let (mut tips, mut premium) = (0u64, 0u64);
            for i in 0..25 {
                let id = format!("c{}", t * 25 + i);
                let d = engine
                    .decide(&DecisionRequest::new(id, Channel::App).seed(i))
                    .await
                    .unwrap();
                // Tips rank first: its draw comes before the draw on `launch`.
                assert_eq!(offers(&d).first(), Some(&"tips"));
                tips += 1;
                premium += d.offers.iter().filter(|s| s.offer == "premium").count() as u64;
            }
            (tips, premium)
        }));
    }
    let (mut tips, mut premium) = (0, 0);
    for task in tasks {
        let (t, p) = task.await.unwrap();
        tips += t;
        premium += p;
    }
    let used = |budget: &'static str| {
        let engine = Arc::clone(&engine);
        async move {
            engine
                .store()
                .budget_used(&cx::store::BudgetKey::new(budget, "total"))
                .await
                .unwrap()
        }
    };
    assert_eq!((premium, used("launch").await), (100, 100));
    assert_eq!(
        used("content").await,
        tips,
        "one unit per decision that chose tips"
    );
}

#[tokio::test]
async fn propensities_can_be_learned_per_segment() {
    let yaml = CATALOG.replace(
        "arbitration:\n  k: 2\n",
        "segments:\n  - { id: large, name: Large plans, rule: 'customer.plan == \"L\"' }\narbitration:\n  k: 2\n  propensity_segments: [large]\n",
    );
    let (engine, _) = engine();
    engine
        .load_catalog(Catalog::from_yaml(&yaml).unwrap())
        .await
        .unwrap();
    let mut large = customer("big");
    large.attributes.insert("plan", "L");
    engine
        .upsert_customers(vec![customer("small"), large])
        .await
        .unwrap();

    let d = engine
        .decide(&DecisionRequest::new("big", Channel::App).seed(1))
        .await
        .unwrap();
    assert_eq!(d.segment.as_ref().map(|s| s.as_str()), Some("large"));
    engine
        .record_outcome(&d.id, &OfferId::new("premium"), OutcomeKind::Accepted)
        .await
        .unwrap();
    let d = engine
        .decide(&DecisionRequest::new("small", Channel::App).seed(1))
        .await
        .unwrap();
    assert_eq!(d.segment, None);

    let mut means = Vec::new();
    engine
        .propensity_model()
        .fill_means(&[0], Some(0), &mut means);
    assert!(
        (means[0] - 2.0 / 11.0).abs() < 1e-12,
        "the segment learned: {means:?}"
    );
    engine.propensity_model().fill_means(&[0], None, &mut means);
    assert!(
        (means[0] - 2.0 / 11.0).abs() < 1e-12,
        "and so did the offer overall: {means:?}"
    );
}

#[tokio::test]
async fn preview_decides_like_decide_but_records_and_consumes_nothing() {
    let (engine, _) = setup(1).await;
    let request = DecisionRequest::new("c0", Channel::App).seed(3);
    let preview = engine.preview(&request).await.unwrap();
    assert_eq!(offers(&preview), ["premium", "tips"]);
    assert_eq!(preview.explanations().len(), 3);
    // Nothing stored: no decision to record an outcome against, no budget used.
    assert!(
        engine
            .store()
            .decision(&preview.id)
            .await
            .unwrap()
            .is_none()
    );
    let budget = cx::store::BudgetKey::new("launch", "total");
    assert_eq!(engine.store().budget_used(&budget).await.unwrap(), 0);
    let err = engine
        .record_outcome(&preview.id, &OfferId::new("premium"), OutcomeKind::Shown)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::NotFound {
                kind: "decision",
                ..
            }
        ),
        "{err}"
    );
    // The real decision chooses the same, and is recorded.
    let decided = engine.decide(&request).await.unwrap();
    assert_eq!(offers(&decided), offers(&preview));
    assert_ne!(decided.id, preview.id);
    assert_eq!(engine.store().budget_used(&budget).await.unwrap(), 1);
    // A preview sees what was recorded: two shown outcomes cap premium.
    for _ in 0..2 {
        let d = engine.decide(&request).await.unwrap();
        engine
            .record_outcome(&d.id, &OfferId::new("premium"), OutcomeKind::Shown)
            .await
            .unwrap();
    }
    assert_eq!(
        offers(&engine.preview(&request).await.unwrap()),
        ["basic", "tips"]
    );
    let unknown = engine
        .preview(&DecisionRequest::new("nobody", Channel::App))
        .await
        .unwrap_err();
    assert!(matches!(
        unknown,
        Error::NotFound {
            kind: "customer",
            ..
        }
    ));
}

/// `preview_many` (features computed inside the memory store, one catalogue and one instant for
/// the batch) decides for every customer what the pure decide does from their own touchpoints,
/// explanations included (asked for by most requests, not all), and an unknown customer fails
/// its own entry only.
#[tokio::test]
async fn preview_many_matches_the_pure_decide_customer_by_customer() {
    use cx_core::testkit::scenario::ScenarioSpec;
    let scenario = ScenarioSpec::telco_100()
        .with_touchpoints(60)
        .with_contacts(12)
        .generate();
    let engine = Engine::new(Arc::new(MemoryStore::new()))
        .with_clock(Arc::new(ManualClock::new(scenario.now)));
    scenario.load_into(&engine).await.unwrap();
    let customers = scenario.customers(40);
    for c in &customers {
        c.load_into(&engine).await.unwrap();
    }
    let arbitrator = scenario.arbitrator().unwrap();
    // Every third decision without an explanation: the vectors it would have kept for one
    // go to the next decision instead.
    let mut requests: Vec<DecisionRequest> = customers
        .iter()
        .enumerate()
        .map(|(j, c)| match c.request.clone().seed(5) {
            r if j % 3 == 1 => r.without_explanation(),
            r => r,
        })
        .collect();
    requests.insert(7, DecisionRequest::new("nobody", Channel::App));
    let previews = engine.preview_many(&requests).await.unwrap();
    assert_eq!(previews.len(), requests.len());
    let mut chose = 0;
    for (i, (request, preview)) in requests.iter().zip(&previews).enumerate() {
        if i == 7 {
            assert!(
                matches!(
                    preview,
                    Err(Error::NotFound {
                        kind: "customer",
                        ..
                    })
                ),
                "{preview:?}"
            );
            continue;
        }
        let preview = preview.as_ref().unwrap();
        let c = &customers[if i < 7 { i } else { i - 1 }];
        let pure = arbitrator.decide(&scenario.input_for(c), request, preview.id.clone());
        assert_eq!(preview.offers, pure.offers, "customer {}", c.customer.id);
        assert_eq!(
            preview.explanations(),
            pure.explanations(),
            "customer {}",
            c.customer.id
        );
        chose += preview.offers.len();
    }
    assert!(chose > 40, "most customers get offers: {chose}");
    let ids: std::collections::HashSet<_> =
        previews.iter().flatten().map(|d| d.id.clone()).collect();
    assert_eq!(ids.len(), 40, "every decision has its own id");
}
