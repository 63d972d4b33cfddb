//! Journeys, triggers, the closed loop and KPIs end to end on the in-memory store: ingest
//! advances journeys, survey answers open follow-up cases owned by the stage's owner, fresh
//! touchpoints fire trigger decisions, and the scorecard, series and registry history hold
//! hand-computed values. Bad definitions are rejected with the item and the field.

use cx::chrono::{TimeDelta, TimeZone, Utc};
use cx::model::*;
use cx::store::{Bucket, CaseQuery};
use cx::{Engine, Error, ManualClock, MemoryStore};
use std::sync::Arc;

const CATALOG: &str = r#"
schema:
  customer: { plan: string }
  touchpoint: { template: string, dwell_seconds: number, product: string }
owners:
  - { id: onboarding, name: Onboarding }
  - { id: billing, name: Billing }
  - { id: care, name: Care }
  - { id: web, name: Web team }
offers:
  - { id: chat-help, name: Proactive chat, category: service, channels: [chat], value: 1, consent_purpose: service }
segments:
  - { id: plan_s, name: Plan S, rule: 'customer.plan == "S"' }
features:
  - { id: views_10m, aggregate: count, kinds: [product_view], window: 10m }
journeys:
  - id: onboarding
    name: Onboarding
    inactivity_timeout: 30d
    lateness: 1h
    stages:
      - { id: sign-up, name: Sign-up, owner: onboarding, entry: { kinds: [sign_up] } }
      - { id: activation, name: Activation, owner: onboarding, entry: { kinds: [usage] } }
      - { id: first-bill, name: First bill, owner: billing, entry: { kinds: [message_sent], rule: "touchpoint.template == 'first_bill'" } }
triggers:
  - id: long-view
    name: Long product view
    on: { kinds: [product_view], channels: [web], rule: "touchpoint.dwell_seconds > 60" }
    action: { type: decide, channel: chat, k: 1 }
  - id: third-view
    name: Third view of one product in 10 minutes
    on: { kinds: [product_view] }
    repeat: { attribute: product, at_least: 3, within: 10m }
    action: { type: decide, channel: chat, placement: nudge }
follow_ups:
  - { id: detractors, question: nps, score_at_most: 6, sla: 48h, owner: care }
kpis:
  - id: nps
    name: NPS
    owner: care
    measure: { type: nps, question: nps }
    target: { value: 0, direction: higher_is_better }
    warning_band: 10
    window: 30d
    min_sample: 3
  - id: nps-plan-s
    name: NPS of plan S
    owner: care
    measure: { type: nps, question: nps }
    window: 30d
    segment: plan_s
    min_sample: 1
  - id: activation
    name: Sign-up to activation
    owner: onboarding
    journey: onboarding
    measure: { type: stage_conversion, from: sign-up, to: activation }
    target: { value: 0.9, direction: higher_is_better }
    warning_band: 0.1
    window: 30d
    min_sample: 1
  - id: sla
    name: Follow-ups in time
    owner: care
    measure: { type: follow_up_sla }
    window: 30d
    min_sample: 1
"#;

fn start() -> Timestamp {
    Utc.with_ymd_and_hms(2026, 11, 1, 9, 0, 0).unwrap()
}

async fn setup() -> (Engine, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(start()));
    let engine = Engine::new(Arc::new(MemoryStore::new())).with_clock(clock.clone());
    engine
        .load_catalog(Catalog::from_yaml(CATALOG).unwrap())
        .await
        .unwrap();
    let since = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    let customers = ["a", "b", "c"]
        .iter()
        .map(|id| {
            Customer::new(*id)
                .with_attribute("plan", if *id == "c" { "M" } else { "S" })
                .with_consent(Consent::granted(Channel::Chat, Purpose::SERVICE, since))
        })
        .collect();
    engine.upsert_customers(customers).await.unwrap();
    (engine, clock)
}

fn tp(id: &str, customer: &str, kind: Kind, at: Timestamp) -> Touchpoint {
    Touchpoint::new(id, CustomerId::new(customer), Channel::Web, kind, at)
}

fn nps(id: &str, customer: &str, score: f64, at: Timestamp) -> Touchpoint {
    Touchpoint::new(
        id,
        CustomerId::new(customer),
        Channel::Survey,
        Kind::SURVEY_RESPONSE,
        at,
    )
    .with_survey(SurveyAnswer::new("nps", score, Scale::NPS))
}

#[tokio::test]
async fn ingest_advances_journeys_and_opens_cases_owned_by_the_stage_owner() {
    let (engine, clock) = setup().await;
    let t = start();
    let h = |n: i64| t + TimeDelta::hours(n);
    let report = engine
        .ingest(vec![
            tp("1", "a", Kind::SIGN_UP, h(0)),
            tp("2", "a", Kind::USAGE, h(2)),
            tp("3", "b", Kind::SIGN_UP, h(0)),
            tp("4", "a", Kind::MESSAGE_SENT, h(3)).with_attribute("template", "first_bill"),
            tp("5", "a", Kind::PAGE_VIEW, h(3)),
        ])
        .await
        .unwrap();
    assert_eq!(report.inserted, 5);
    assert_eq!(report.journeys.placed, 4);
    let a = engine.journey_tracks(&CustomerId::new("a")).await.unwrap();
    let stages: Vec<&str> = a[0].instances[0]
        .visits
        .iter()
        .map(|v| v.stage.as_str())
        .collect();
    assert_eq!(stages, ["sign-up", "activation", "first-bill"]);

    // b answers 3 while in sign-up (owner onboarding); a answers 5 in first-bill (billing);
    // c answers 2 in no journey (the rule's owner, care); a 9 opens nothing.
    clock.set(h(5));
    let report = engine
        .ingest(vec![
            nps("s1", "b", 3.0, h(4)),
            nps("s2", "a", 5.0, h(4)),
            nps("s3", "c", 2.0, h(4)),
            nps("s4", "a", 9.0, h(4)),
        ])
        .await
        .unwrap();
    assert_eq!(report.cases_opened, 3);
    let cases = engine
        .cases(&CaseQuery::new(TimeRange::all(), h(5)))
        .await
        .unwrap();
    let owners: Vec<(&str, &str)> = cases
        .iter()
        .map(|c| (c.customer.as_str(), c.owner.as_str()))
        .collect();
    assert_eq!(
        owners,
        [("b", "onboarding"), ("a", "billing"), ("c", "care")],
        "by (opened, id)"
    );
    assert_eq!(cases[0].due_at, h(4) + TimeDelta::hours(48));
    // Sent again: nothing new.
    let again = engine
        .ingest(vec![nps("s1", "b", 3.0, h(4))])
        .await
        .unwrap();
    assert_eq!((again.duplicates, again.cases_opened), (1, 0));

    // Close one in time, one late; the third is overdue at the evaluation instant.
    clock.set(h(10));
    engine
        .close_case(&cases[0].id, Some("called".into()))
        .await
        .unwrap();
    clock.set(h(60));
    engine.close_case(&cases[1].id, None).await.unwrap();
    let err = engine.close_case(&cases[1].id, None).await.unwrap_err();
    assert!(matches!(err, Error::Conflict { .. }), "{err:?}");

    let at = h(61);
    // NPS over a 5, 3, 2, 9: 1 promoter, 3 detractors of 4: -50; target 0, band 10: off track.
    let r = engine.evaluate_kpi("nps", at).await.unwrap();
    assert_eq!((r.value, r.n), (Some(-50.0), 4));
    assert_eq!(r.status, cx::kpi::Status::OffTrack);
    assert!(r.interval.is_some());
    // Plan S only (a and b): 5, 3, 9: (1 - 2) / 3.
    let r = engine.evaluate_kpi("nps-plan-s", at).await.unwrap();
    assert_eq!(r.n, 3);
    assert!((r.value.unwrap() + 100.0 / 3.0).abs() < 1e-9);
    // Activation: a and b signed up, a activated: 0.5, off track (target .9, band .1).
    let r = engine.evaluate_kpi("activation", at).await.unwrap();
    assert_eq!((r.value, r.n), (Some(0.5), 2));
    assert_eq!(r.status, cx::kpi::Status::OffTrack);
    // SLA: one in time, one late, one overdue: 1/3.
    let r = engine.evaluate_kpi("sla", at).await.unwrap();
    assert_eq!(r.n, 3);
    assert!((r.value.unwrap() - 1.0 / 3.0).abs() < 1e-12);

    let card = engine.scorecard(at).await.unwrap();
    let by_owner: Vec<(&str, Vec<&str>)> = card
        .owners
        .iter()
        .map(|c| {
            (
                c.owner.id.as_str(),
                c.results.iter().map(|r| r.kpi.as_str()).collect(),
            )
        })
        .collect();
    assert_eq!(
        by_owner,
        [
            ("onboarding", vec!["activation"]),
            ("care", vec!["nps", "nps-plan-s", "sla"])
        ]
    );

    // A daily series: answers were given on day 0 only.
    let series = engine
        .kpi_series(
            "nps",
            TimeRange::new(
                Bucket::Day.start_of(t),
                Bucket::Day.start_of(t) + TimeDelta::days(3),
            ),
            Bucket::Day,
        )
        .await
        .unwrap();
    let ns: Vec<u64> = series.iter().map(|r| r.n).collect();
    assert_eq!(ns, [4, 0, 0]);
    // The scorecard over one explicit window: every KPI over day 0, as the series' first point.
    let day0 = TimeRange::new(
        Bucket::Day.start_of(t),
        Bucket::Day.start_of(t) + TimeDelta::days(1),
    );
    let over = engine.scorecard_over(day0).await.unwrap();
    assert!(over.results().all(|r| r.window == day0));
    let nps = over.results().find(|r| r.kpi == "nps").unwrap();
    assert_eq!((nps.n, nps.value), (series[0].n, series[0].value));
    assert_eq!(over.results().count(), card.results().count());

    // Funnel and moments through the engine.
    let funnel = engine.funnel("onboarding", TimeRange::all()).await.unwrap();
    let reached: Vec<u64> = funnel.rows.iter().map(|r| r.reached).collect();
    assert_eq!(reached, [2, 1, 1]);
    let moments = engine
        .moments_of_truth("onboarding", "nps", TimeRange::all())
        .await
        .unwrap();
    let ranked: Vec<(&str, f64)> = moments.iter().map(|m| (m.stage.as_str(), m.mean)).collect();
    assert_eq!(ranked, [("first-bill", 7.0), ("sign-up", 3.0)]);
    let by_segment = engine
        .funnel_by_segment("onboarding", TimeRange::all(), &["plan_s"])
        .await
        .unwrap();
    assert_eq!(by_segment.groups[0].1[1].reached, 1);

    // Forgetting a erases their journey and their cases.
    let forgotten = engine.forget(&CustomerId::new("a")).await.unwrap();
    assert_eq!(
        (forgotten.journey_tracks, forgotten.follow_up_cases),
        (1, 1)
    );
    let funnel = engine.funnel("onboarding", TimeRange::all()).await.unwrap();
    assert_eq!(funnel.rows[0].reached, 1);
}

#[tokio::test]
async fn fresh_touchpoints_fire_trigger_decisions_history_does_not() {
    let (engine, clock) = setup().await;
    let now = start() + TimeDelta::days(1);
    clock.set(now);
    let view = |id: &str, product: &str, dwell: f64, at: Timestamp| {
        tp(id, "a", Kind::PRODUCT_VIEW, at)
            .with_attribute("product", product)
            .with_attribute("dwell_seconds", dwell)
    };
    // A long view an hour ago: history, no decision.
    let r = engine
        .ingest(vec![view("old", "p1", 300.0, now - TimeDelta::hours(1))])
        .await
        .unwrap();
    assert!(r.decisions.is_empty());
    // A long view now: the long-view trigger decides on chat.
    let r = engine
        .ingest(vec![view("v1", "p1", 90.0, now)])
        .await
        .unwrap();
    assert_eq!(r.decisions.len(), 1, "{:?}", r.trigger_errors);
    assert_eq!(r.decisions[0].channel, Channel::Chat);
    assert_eq!(r.decisions[0].offers[0].offer.as_str(), "chat-help");
    // Short views: the third of the same product within 10 minutes fires third-view.
    let r = engine
        .ingest(vec![
            view("v2", "p2", 5.0, now - TimeDelta::minutes(4)),
            view("v3", "p2", 5.0, now - TimeDelta::minutes(2)),
        ])
        .await
        .unwrap();
    assert!(r.decisions.is_empty(), "two views are not three");
    let r = engine
        .ingest(vec![view("v4", "p2", 5.0, now)])
        .await
        .unwrap();
    assert_eq!(r.decisions.len(), 1);
    assert_eq!(
        r.decisions[0].placement.as_ref().map(|p| p.as_str()),
        Some("nudge"),
        "the third-view trigger's decision"
    );
    let r = engine
        .ingest(vec![view("v5", "p3", 5.0, now)])
        .await
        .unwrap();
    assert!(r.decisions.is_empty(), "another product");
}

#[tokio::test]
async fn the_registry_keeps_every_version_of_a_kpi() {
    let (engine, clock) = setup().await;
    let mut catalog = Catalog::from_yaml(CATALOG).unwrap();
    clock.set(start() + TimeDelta::days(1));
    catalog.kpis[0].target = Some(Target {
        value: 20.0,
        direction: Direction::HigherIsBetter,
    });
    engine
        .load_catalog_with(
            catalog.clone(),
            cx::store::CatalogMeta::new()
                .author("dana")
                .comment("NPS target up"),
        )
        .await
        .unwrap();
    // A change elsewhere is not a new version of the KPI.
    catalog.owners[3].name = "Web".into();
    engine.load_catalog(catalog).await.unwrap();
    let history = engine.kpi_history("nps").await.unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(history[1].version.author.as_deref(), Some("dana"));
    assert_eq!(history[0].kpi.as_ref().unwrap().target.unwrap().value, 0.0);
    assert_eq!(history[1].kpi.as_ref().unwrap().target.unwrap().value, 20.0);
    // A past report, reproduced with the definition of version 1.
    let old = engine.evaluate_kpi_at("nps", 1, start()).await.unwrap();
    assert_eq!(old.catalog_version, 1);
    assert_eq!(old.target.unwrap().value, 0.0);
    assert!(matches!(
        engine.kpi_history("nope").await.unwrap_err(),
        Error::NotFound { .. }
    ));
}

fn rejects(yaml_edit: (&str, &str), item: &str, field: &str) {
    let yaml = CATALOG.replacen(yaml_edit.0, yaml_edit.1, 1);
    assert_ne!(yaml, CATALOG, "the edit {yaml_edit:?} applies");
    match Catalog::from_yaml(&yaml) {
        Err(Error::Validation {
            item: i, field: f, ..
        }) => {
            assert_eq!((i.as_str(), f.as_str()), (item, field));
        }
        other => panic!("expected a validation error, got {other:?}"),
    }
}

#[tokio::test]
async fn bad_definitions_name_the_item_and_the_field_and_store_nothing() {
    rejects(
        (
            "    owner: care\n    measure: { type: nps",
            "    measure: { type: nps",
        ),
        "kpi \"nps\"",
        "owner",
    );
    rejects(
        (
            "{ id: sign-up, name: Sign-up, owner: onboarding,",
            "{ id: sign-up, name: Sign-up,",
        ),
        "journey \"onboarding\"",
        "stages[0].owner",
    );
    rejects(
        (
            "from: sign-up, to: activation",
            "from: sign-up, to: renewal",
        ),
        "kpi \"activation\"",
        "measure.to",
    );
    rejects(
        ("owner: care }\nkpis", "owner: nobody }\nkpis"),
        "follow-up rule \"detractors\"",
        "owner",
    );
    rejects(
        (
            "repeat: { attribute: product, at_least: 3",
            "repeat: { attribute: product, at_least: 1",
        ),
        "trigger \"third-view\"",
        "repeat.at_least",
    );
    // Rules: the item and the position.
    let (engine, _) = setup().await;
    let bad = CATALOG.replacen(
        "touchpoint.template == 'first_bill'",
        "touchpoint.templat == 'first_bill'",
        1,
    );
    match engine.load_catalog(Catalog::from_yaml(&bad).unwrap()).await {
        Err(Error::InvalidRule { item, position, .. }) => {
            assert_eq!(item, "stage \"first-bill\" of journey \"onboarding\" entry");
            assert_eq!((position.line, position.column), (1, 1));
        }
        other => panic!("expected an invalid rule, got {other:?}"),
    }
    let bad = CATALOG.replacen(
        "touchpoint.dwell_seconds > 60",
        "features.views_10m > customer.nope",
        1,
    );
    match engine.load_catalog(Catalog::from_yaml(&bad).unwrap()).await {
        Err(Error::InvalidRule { item, .. }) => assert_eq!(item, "trigger \"long-view\" on.rule"),
        other => panic!("expected an invalid rule, got {other:?}"),
    }
    // Nothing stored: the first catalogue is still the only version.
    assert_eq!(engine.store().catalog_history().await.unwrap().len(), 1);
}
