//! The decision pipeline, stage by stage, on the pure `Arbitrator` (no store).

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use cx_core::Error;
use cx_core::arbitration::{
    Arbitrator, BetaBernoulli, CompiledCatalog, DecisionInput, PropensityModel,
};
use cx_core::model::*;
use std::sync::Arc;

const CATALOG: &str = r#"
schema:
  customer: { plan: string, tenure_months: number, data_cap_gb: number, expected_overage_usd: number, name: string }
  touchpoint: { data_gb: number }
budgets:
  - { id: boost-budget, limit: 100, counts: shown, period: day }
contact_policy:
  - { rule: cap, id: two-sms-a-week, scope: channel, outcome: shown, max: 2, window: 7d }
  - { rule: suppress, scope: all, after: 2, within: 30d, duration: 14d }
features:
  - { id: data_used_gb, aggregate: sum, attribute: data_gb, kinds: [usage], window: 30d }
offers:
  - id: data-boost
    name: 5 GB boost
    category: data
    channels: [sms, app]
    eligibility: features.data_used_gb / customer.data_cap_gb > 0.8
    suitability: offer.price < customer.expected_overage_usd
    value: 6
    attributes: { price: 8 }
    budget: boost-budget
  - id: upgrade
    name: Upgrade to L
    category: plan
    channels: [sms, app]
    eligibility: customer.plan in ["S", "M"] && customer.tenure_months >= 3
    suitability: offer.fee_increase < customer.expected_overage_usd
    value: 25
    attributes: { fee_increase: 15 }
  - id: upgrade-xl
    name: Upgrade to XL
    category: plan
    channels: [sms, app]
    value: 20
  - id: named-greeting
    name: Greeting by name
    category: service
    channels: [app]
    eligibility: customer.name == "Zed"
    value: 1
  - id: reminder
    name: Bill reminder
    category: service
    channels: [sms, app]
    consent_purpose: service
    value: 0.1
    contact_policy:
      - { rule: cap, scope: offer, outcome: shown, max: 1, window: 1d }
arbitration:
  k: 3
  fallback: reminder
  scoring: { propensity: false }
"#;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap()
}

fn compiled() -> Arc<CompiledCatalog> {
    let catalog = Catalog::from_yaml(CATALOG).unwrap();
    Arc::new(CompiledCatalog::compile(catalog, 7).unwrap())
}

fn arbitrator() -> Arbitrator {
    let catalog = compiled();
    let model = Arc::new(BetaBernoulli::new());
    model.bind(
        &catalog.offer_ids(),
        catalog.propensity_segment_count(),
        catalog.config().prior,
    );
    Arbitrator::new(catalog, model)
}

/// Near the cap (9.5 of 10 GB), expected overage `overage` USD, plan S, 12 months, consent on sms and app.
fn customer(overage: f64) -> Customer {
    let t = now() - TimeDelta::days(400);
    let mut c = Customer::new("c-1")
        .with_attribute("plan", "S")
        .with_attribute("tenure_months", 12)
        .with_attribute("data_cap_gb", 10)
        .with_attribute("expected_overage_usd", overage)
        .with_pii_attribute("name", "Ann");
    for channel in [Channel::Sms, Channel::App] {
        for purpose in [Purpose::MARKETING, Purpose::SERVICE] {
            c = c.with_consent(Consent::granted(channel.clone(), purpose, t));
        }
    }
    c
}

fn usage(gb: f64) -> Vec<Touchpoint> {
    (0..5)
        .map(|i| {
            Touchpoint::new(
                format!("u{i}"),
                CustomerId::new("c-1"),
                Channel::Other("network".into()),
                Kind::USAGE,
                now() - TimeDelta::days(i + 1),
            )
            .with_attribute("data_gb", gb / 5.0)
        })
        .collect()
}

fn contact(
    offer: &str,
    category: &str,
    channel: Channel,
    kind: OutcomeKind,
    ago: TimeDelta,
) -> ContactEvent {
    ContactEvent {
        customer: CustomerId::new("c-1"),
        decision: DecisionId::new("d-old"),
        offer: OfferId::new(offer),
        category: Category::new(category),
        channel,
        kind,
        at: now() - ago,
    }
}

fn decide_with(
    customer: &Customer,
    touchpoints: &[Touchpoint],
    contacts: &[ContactEvent],
    budget_used: &[u64],
    request: &DecisionRequest,
) -> Decision {
    let input = DecisionInput {
        customer,
        touchpoints,
        features: None,
        customer_inputs: None,
        feature_inputs: None,
        contact_inputs: None,
        contacts,
        budget_used,
        now: now(),
    };
    arbitrator().decide(&input, request, DecisionId::new("d-1"))
}

fn chosen(d: &Decision) -> Vec<&str> {
    d.offers.iter().map(|s| s.offer.as_str()).collect()
}

fn stage_of(d: &Decision, offer: &str) -> PipelineStage {
    d.explanations()
        .into_iter()
        .find(|e| e.offer == offer)
        .map(|e| e.stage)
        .unwrap()
}

#[test]
fn top_k_with_one_offer_per_category() {
    let d = decide_with(
        &customer(30.0),
        &usage(9.5),
        &[],
        &[],
        &DecisionRequest::new("c-1", Channel::Sms).seed(1),
    );
    // upgrade (25) and upgrade-xl (20) share a category: only the better one goes.
    assert_eq!(chosen(&d), ["upgrade", "data-boost", "reminder"]);
    assert_eq!(d.catalog_version, 7);
    assert!(d.offers.iter().all(|s| s.probability == 1.0));
    assert_eq!(stage_of(&d, "upgrade-xl"), PipelineStage::Selection);
    let why = d.why_not(&OfferId::new("upgrade-xl"));
    assert!(
        why.contains("category \"plan\" went to offer \"upgrade\""),
        "{why}"
    );
    let why = d.why_not(&OfferId::new("upgrade"));
    assert!(why.contains("was chosen at rank 1"), "{why}");
}

#[test]
fn an_unsuitable_offer_is_never_chosen_and_says_why() {
    // Overage of 12 USD: the upgrade's 15 USD fee increase costs the customer more.
    let d = decide_with(
        &customer(12.0),
        &usage(9.5),
        &[],
        &[],
        &DecisionRequest::new("c-1", Channel::Sms).seed(1),
    );
    assert!(!chosen(&d).contains(&"upgrade"));
    assert_eq!(stage_of(&d, "upgrade"), PipelineStage::Suitability);
    let why = d.why_not(&OfferId::new("upgrade"));
    assert_eq!(
        why,
        "offer \"upgrade\" is not suitable for the customer: `offer.fee_increase < customer.expected_overage_usd` is false (offer.fee_increase = 15, customer.expected_overage_usd = 12)"
    );
}

#[test]
fn eligibility_failures_name_the_clause_and_values() {
    let d = decide_with(
        &customer(30.0),
        &usage(5.0),
        &[],
        &[],
        &DecisionRequest::new("c-1", Channel::Sms).seed(1),
    );
    assert_eq!(stage_of(&d, "data-boost"), PipelineStage::Eligibility);
    let why = d.why_not(&OfferId::new("data-boost"));
    assert!(
        why.contains("`(features.data_used_gb / customer.data_cap_gb) > 0.8` is false"),
        "{why}"
    );
    assert!(why.contains("features.data_used_gb = 5"), "{why}");
    // A missing value makes the rule false and is named.
    let mut c = customer(30.0);
    c.attributes.remove("data_cap_gb");
    let d = decide_with(
        &c,
        &usage(9.5),
        &[],
        &[],
        &DecisionRequest::new("c-1", Channel::Sms).seed(1),
    );
    let why = d.why_not(&OfferId::new("data-boost"));
    assert!(why.contains("customer.data_cap_gb is missing"), "{why}");
}

#[test]
fn explanations_never_print_pii() {
    let d = decide_with(
        &customer(30.0),
        &usage(9.5),
        &[],
        &[],
        &DecisionRequest::new("c-1", Channel::App).seed(1),
    );
    let why = d.why_not(&OfferId::new("named-greeting"));
    assert!(why.contains("customer.name = <redacted>"), "{why}");
    assert!(d.explanations().iter().all(|e| !e.reason.contains("Ann")));
}

#[test]
fn consent_is_a_hard_filter() {
    let mut c = customer(30.0);
    c.set_consent(Consent::denied(
        Channel::Sms,
        Purpose::MARKETING,
        now() - TimeDelta::days(1),
    ));
    let d = decide_with(
        &c,
        &usage(9.5),
        &[],
        &[],
        &DecisionRequest::new("c-1", Channel::Sms).seed(1),
    );
    assert_eq!(
        chosen(&d),
        ["reminder"],
        "only the service message has consent"
    );
    assert_eq!(stage_of(&d, "upgrade"), PipelineStage::Consent);
    let why = d.why_not(&OfferId::new("upgrade"));
    assert!(
        why.contains("needs consent for \"marketing\" on sms") && why.contains("denied"),
        "{why}"
    );
}

#[test]
fn a_channel_cap_names_the_rule_and_when_it_lifts() {
    let contacts = [
        contact(
            "upgrade-xl",
            "plan",
            Channel::Sms,
            OutcomeKind::Shown,
            TimeDelta::days(6),
        ),
        contact(
            "reminder",
            "service",
            Channel::Sms,
            OutcomeKind::Shown,
            TimeDelta::days(2),
        ),
    ];
    let d = decide_with(
        &customer(30.0),
        &usage(9.5),
        &contacts,
        &[],
        &DecisionRequest::new("c-1", Channel::Sms).seed(1),
    );
    assert!(
        d.offers.is_empty(),
        "two sms shown this week: nothing goes out on sms, not even the fallback: {:?}",
        chosen(&d)
    );
    let e = d
        .explanations()
        .into_iter()
        .find(|e| e.offer == "upgrade")
        .unwrap();
    assert_eq!(e.stage, PipelineStage::ContactPolicy);
    assert_eq!(
        e.lifts_at,
        Some(now() - TimeDelta::days(6) + TimeDelta::days(7))
    );
    assert!(
        e.reason
            .contains("`two-sms-a-week` until 2026-11-23T12:00:00Z"),
        "{}",
        e.reason
    );
    // The app channel is not capped.
    let d = decide_with(
        &customer(30.0),
        &usage(9.5),
        &contacts,
        &[],
        &DecisionRequest::new("c-1", Channel::App).seed(1),
    );
    assert_eq!(chosen(&d).len(), 3);
}

#[test]
fn two_rejections_suppress_everything_for_two_weeks() {
    let contacts = [
        contact(
            "upgrade",
            "plan",
            Channel::App,
            OutcomeKind::Rejected,
            TimeDelta::days(20),
        ),
        contact(
            "data-boost",
            "data",
            Channel::App,
            OutcomeKind::Rejected,
            TimeDelta::days(5),
        ),
    ];
    let d = decide_with(
        &customer(30.0),
        &usage(9.5),
        &contacts,
        &[],
        &DecisionRequest::new("c-1", Channel::App).seed(1),
    );
    let e = d
        .explanations()
        .into_iter()
        .find(|e| e.offer == "upgrade")
        .unwrap();
    assert_eq!(e.stage, PipelineStage::ContactPolicy);
    assert_eq!(
        e.lifts_at,
        Some(now() - TimeDelta::days(5) + TimeDelta::days(14))
    );
}

#[test]
fn an_offer_level_cap_applies_to_that_offer_only() {
    let contacts = [contact(
        "reminder",
        "service",
        Channel::App,
        OutcomeKind::Shown,
        TimeDelta::hours(3),
    )];
    let d = decide_with(
        &customer(30.0),
        &usage(9.5),
        &contacts,
        &[],
        &DecisionRequest::new("c-1", Channel::App).seed(1),
    );
    assert_eq!(stage_of(&d, "reminder"), PipelineStage::ContactPolicy);
    assert!(chosen(&d).contains(&"upgrade"));
}

#[test]
fn a_used_up_budget_excludes_its_offers() {
    let d = decide_with(
        &customer(30.0),
        &usage(9.5),
        &[],
        &[100],
        &DecisionRequest::new("c-1", Channel::Sms).seed(1),
    );
    assert_eq!(stage_of(&d, "data-boost"), PipelineStage::Budget);
    let why = d.why_not(&OfferId::new("data-boost"));
    assert!(
        why.contains("budget \"boost-budget\", which is used up (100 of 100 for 2026-11-22)"),
        "{why}"
    );
}

#[test]
fn the_fallback_goes_out_when_nothing_survives_but_never_past_a_hard_limit() {
    // The reminder is targeted at nobody, so it only ever goes out as the fallback.
    let yaml = CATALOG.replace(
        "    consent_purpose: service\n",
        "    consent_purpose: service\n    eligibility: customer.tenure_months > 100\n",
    );
    let catalog =
        Arc::new(CompiledCatalog::compile(Catalog::from_yaml(&yaml).unwrap(), 1).unwrap());
    let model = Arc::new(BetaBernoulli::new());
    model.bind(&catalog.offer_ids(), 0, catalog.config().prior);
    let arbitrator = Arbitrator::new(catalog, model);
    let mut c = customer(30.0);
    c.set_consent(Consent::denied(
        Channel::App,
        Purpose::MARKETING,
        now() - TimeDelta::days(1),
    ));
    let touchpoints = usage(9.5);
    let request = DecisionRequest::new("c-1", Channel::App).seed(1);
    let input = DecisionInput {
        customer: &c,
        touchpoints: &touchpoints,
        features: None,
        customer_inputs: None,
        feature_inputs: None,
        contact_inputs: None,
        contacts: &[],
        budget_used: &[],
        now: now(),
    };
    let d = arbitrator.decide(&input, &request, DecisionId::new("d"));
    assert_eq!(chosen(&d), ["reminder"]);
    assert!(d.why_not(&OfferId::new("reminder")).contains("fallback"));
    assert_eq!(
        d.explanations()
            .iter()
            .filter(|e| e.stage == PipelineStage::Fallback)
            .count(),
        1
    );
    // One entry per offer: the fallback's says why it did not survive as a candidate.
    let reminder: Vec<_> = d
        .explanations()
        .into_iter()
        .filter(|e| e.offer == "reminder")
        .collect();
    assert_eq!(reminder.len(), 1);
    assert_eq!(reminder[0].stage, PipelineStage::Fallback);
    assert!(
        reminder[0]
            .reason
            .contains("as a candidate: offer \"reminder\" is not eligible"),
        "{}",
        reminder[0].reason
    );
    // Shown 3 hours ago: its own cap (1 a day) holds, so not even the fallback goes out.
    let contacts = [contact(
        "reminder",
        "service",
        Channel::App,
        OutcomeKind::Shown,
        TimeDelta::hours(3),
    )];
    let input = DecisionInput {
        contacts: &contacts,
        ..input
    };
    assert!(
        arbitrator
            .decide(&input, &request, DecisionId::new("d"))
            .offers
            .is_empty()
    );
}

#[test]
fn offers_not_on_the_channel_or_not_in_the_catalogue_are_explained() {
    let d = decide_with(
        &customer(30.0),
        &usage(9.5),
        &[],
        &[],
        &DecisionRequest::new("c-1", Channel::Sms).seed(1),
    );
    assert!(
        d.why_not(&OfferId::new("named-greeting"))
            .contains("not deliverable on sms")
    );
    assert!(
        d.why_not(&OfferId::new("nope"))
            .contains("not in catalogue version 7")
    );
    let quiet = decide_with(
        &customer(30.0),
        &usage(9.5),
        &[],
        &[],
        &DecisionRequest::new("c-1", Channel::Sms)
            .seed(1)
            .without_explanation(),
    );
    assert_eq!(chosen(&quiet), chosen(&d));
    assert!(quiet.explanations().is_empty());
}

#[test]
fn the_same_seed_gives_the_same_decision() {
    let mut catalog = Catalog::from_yaml(CATALOG).unwrap();
    catalog.arbitration.exploration = Exploration::EpsilonGreedy { epsilon: 0.5 };
    let catalog = Arc::new(CompiledCatalog::compile(catalog, 1).unwrap());
    let model = Arc::new(BetaBernoulli::new());
    model.bind(&catalog.offer_ids(), 0, catalog.config().prior);
    let arbitrator = Arbitrator::new(catalog, model);
    let c = customer(30.0);
    let touchpoints = usage(9.5);
    let input = DecisionInput {
        customer: &c,
        touchpoints: &touchpoints,
        features: None,
        customer_inputs: None,
        feature_inputs: None,
        contact_inputs: None,
        contacts: &[],
        budget_used: &[],
        now: now(),
    };
    let decide = |seed| {
        arbitrator.decide(
            &input,
            &DecisionRequest::new("c-1", Channel::App).seed(seed),
            DecisionId::new("d"),
        )
    };
    for seed in 0..20 {
        assert_eq!(decide(seed), decide(seed));
    }
    let distinct: std::collections::HashSet<Vec<String>> = (0..50)
        .map(|seed| {
            decide(seed)
                .offers
                .iter()
                .map(|s| s.offer.to_string())
                .collect()
        })
        .collect();
    assert!(distinct.len() > 1, "epsilon 0.5 explores");
}

#[test]
fn rules_with_unknown_names_or_bad_types_fail_to_load_naming_the_offer() {
    let bad = CATALOG.replace("customer.tenure_months >= 3", "customer.tenure >= 3");
    match CompiledCatalog::compile(Catalog::from_yaml(&bad).unwrap(), 1) {
        Err(Error::InvalidRule {
            item,
            position,
            message,
        }) => {
            assert_eq!(item, "offer \"upgrade\" eligibility");
            assert_eq!((position.line, position.column), (1, 32));
            assert!(message.contains("customer.tenure"), "{message}");
        }
        other => panic!("expected a rule error, got {other:?}"),
    }
    let bad = CATALOG.replace(
        "offer.price < customer.expected_overage_usd",
        "offer.price < customer.plan",
    );
    assert!(matches!(
        CompiledCatalog::compile(Catalog::from_yaml(&bad).unwrap(), 1),
        Err(Error::InvalidRule { item, .. }) if item == "offer \"data-boost\" suitability"
    ));
    let bad = CATALOG.replace(
        "attributes: { fee_increase: 15 }",
        "attributes: { price: \"cheap\" }",
    );
    assert!(matches!(
        CompiledCatalog::compile(Catalog::from_yaml(&bad).unwrap(), 1),
        Err(Error::Validation { field, .. }) if field == "attributes.price"
    ));
}

/// Three catalogue-wide rules of different scopes block the same offer: the explanation names
/// the one that lifts last and, on a tie, the first in catalogue order.
#[test]
fn the_rule_lifting_last_is_named_and_ties_go_to_the_first_rule() {
    let catalog = |second_offer_window: &str| {
        format!(
            r#"
contact_policy:
  - {{ rule: cap, id: offer-week, scope: offer, outcome: shown, max: 1, window: 7d }}
  - {{ rule: cap, id: category-ten-days, scope: category, outcome: shown, max: 1, window: 10d }}
  - {{ rule: cap, id: offer-long, scope: offer, outcome: shown, max: 1, window: {second_offer_window} }}
offers:
  - {{ id: a, name: A, category: x, channels: [app], value: 1 }}
  - {{ id: b, name: B, category: x, channels: [app], value: 1 }}
  - {{ id: c, name: C, category: y, channels: [app], value: 1 }}
arbitration: {{ scoring: {{ propensity: false }} }}
"#
        )
    };
    let shown_a = [contact(
        "a",
        "x",
        Channel::App,
        OutcomeKind::Shown,
        TimeDelta::days(2),
    )];
    let explain = |yaml: &str, offer: &str| {
        let catalog =
            Arc::new(CompiledCatalog::compile(Catalog::from_yaml(yaml).unwrap(), 1).unwrap());
        let model = Arc::new(BetaBernoulli::new());
        model.bind(&catalog.offer_ids(), 0, catalog.config().prior);
        let customer = customer(30.0);
        let input = DecisionInput {
            customer: &customer,
            touchpoints: &[],
            features: None,
            customer_inputs: None,
            feature_inputs: None,
            contact_inputs: None,
            contacts: &shown_a,
            budget_used: &[],
            now: now(),
        };
        let d = Arbitrator::new(catalog, model).decide(
            &input,
            &DecisionRequest::new("c-1", Channel::App).seed(1),
            DecisionId::new("d-1"),
        );
        d.explanations()
            .into_iter()
            .find(|e| e.offer == offer)
            .unwrap()
    };
    let shown = now() - TimeDelta::days(2);

    // 10 days: the category rule and the second offer rule both lift at +10d; the category
    // rule comes first.
    let yaml = catalog("10d");
    let e = explain(&yaml, "a");
    assert_eq!(e.stage, PipelineStage::ContactPolicy);
    assert_eq!(e.lifts_at, Some(shown + TimeDelta::days(10)));
    assert!(e.reason.contains("`category-ten-days`"), "{}", e.reason);
    // b shares the category only.
    let e = explain(&yaml, "b");
    assert_eq!(e.lifts_at, Some(shown + TimeDelta::days(10)));
    assert!(e.reason.contains("`category-ten-days`"), "{}", e.reason);
    assert_ne!(explain(&yaml, "c").stage, PipelineStage::ContactPolicy);

    // 12 days: the second offer rule now lifts last.
    let e = explain(&catalog("12d"), "a");
    assert_eq!(e.lifts_at, Some(shown + TimeDelta::days(12)));
    assert!(e.reason.contains("`offer-long`"), "{}", e.reason);
    // 5 days: the category rule lifts last.
    let e = explain(&catalog("5d"), "a");
    assert_eq!(e.lifts_at, Some(shown + TimeDelta::days(10)));
    assert!(e.reason.contains("`category-ten-days`"), "{}", e.reason);
}

/// Offers that take every path of the candidate screen: eligibility rules longer than the
/// screen reads, or reading the offer; undecided clauses; an offer's own cap beside a
/// category cap; a used-up budget ahead of a suitability rule.
const SCREENED: &str = r#"
schema:
  customer: { plan: string, tenure_months: number, region: string }
budgets:
  - { id: tight, limit: 1, counts: shown, period: day }
contact_policy:
  - { rule: cap, id: one-a-week, scope: category, outcome: shown, max: 1, window: 7d }
offers:
  - { id: long-true, name: a, category: a, channels: [app], value: 3, eligibility: 'customer.plan == "S" && customer.tenure_months >= 1 && customer.tenure_months >= 2 && customer.tenure_months >= 3 && customer.tenure_months >= 4' }
  - { id: long-false, name: b, category: b, channels: [app], value: 1, eligibility: 'customer.plan == "S" && customer.tenure_months >= 1 && customer.tenure_months >= 2 && customer.tenure_months >= 3 && customer.tenure_months >= 400' }
  - { id: reads-offer, name: c, category: c, channels: [app], value: 1, attributes: { price: 8 }, eligibility: 'customer.plan == "S" && offer.price < 5.0' }
  - { id: false-after-missing, name: d, category: d, channels: [app], value: 1, eligibility: 'customer.region == "north" && customer.tenure_months >= 400' }
  - { id: missing, name: e, category: e, channels: [app], value: 1, eligibility: 'customer.region == "north" && customer.plan == "S"' }
  - { id: own-cap, name: f, category: f, channels: [app], value: 1, contact_policy: [{ rule: cap, scope: offer, outcome: shown, max: 1, window: 30d }] }
  - { id: category-cap, name: g, category: f, channels: [app], value: 1 }
  - { id: budget-first, name: h, category: h, channels: [app], value: 1, budget: tight, attributes: { price: 8 }, suitability: 'offer.price < 1.0' }
  - { id: unsuitable, name: i, category: i, channels: [app], value: 1, attributes: { price: 8 }, suitability: 'offer.price < 1.0' }
  - { id: suitable, name: j, category: j, channels: [app], value: 2, attributes: { price: 8 }, suitability: 'offer.price < 10.0' }
  - { id: expired, name: k, category: k, channels: [app], value: 1, valid_until: '2026-01-01T00:00:00Z' }
  - { id: partner, name: l, category: l, channels: [app], value: 1, consent_purpose: partner }
arbitration:
  k: 2
  scoring: { propensity: false }
"#;

#[test]
fn every_path_of_the_candidate_screen_stops_offers_where_the_stages_do() {
    let catalog =
        Arc::new(CompiledCatalog::compile(Catalog::from_yaml(SCREENED).unwrap(), 1).unwrap());
    let model = Arc::new(BetaBernoulli::new());
    model.bind(
        &catalog.offer_ids(),
        catalog.propensity_segment_count(),
        catalog.config().prior,
    );
    let arbitrator = Arbitrator::new(catalog, model);
    let customer = Customer::new("c-1")
        .with_attribute("plan", "S")
        .with_attribute("tenure_months", 12)
        .with_consent(Consent::granted(
            Channel::App,
            Purpose::MARKETING,
            now() - TimeDelta::days(400),
        ));
    let contacts = [contact(
        "own-cap",
        "f",
        Channel::App,
        OutcomeKind::Shown,
        TimeDelta::days(2),
    )];
    let input = DecisionInput {
        customer: &customer,
        touchpoints: &[],
        features: None,
        customer_inputs: None,
        feature_inputs: None,
        contact_inputs: None,
        contacts: &contacts,
        budget_used: &[1],
        now: now(),
    };
    let d = arbitrator.decide(
        &input,
        &DecisionRequest::new("c-1", Channel::App).seed(1),
        DecisionId::new("d-1"),
    );
    let why = |offer: &str| d.why_not(&OfferId::new(offer));
    assert_eq!(chosen(&d), ["long-true", "suitable"]);
    for (offer, stage) in [
        ("long-false", PipelineStage::Eligibility),
        ("reads-offer", PipelineStage::Eligibility),
        ("false-after-missing", PipelineStage::Eligibility),
        ("missing", PipelineStage::Eligibility),
        ("own-cap", PipelineStage::ContactPolicy),
        ("category-cap", PipelineStage::ContactPolicy),
        ("budget-first", PipelineStage::Budget),
        ("unsuitable", PipelineStage::Suitability),
        ("expired", PipelineStage::Candidates),
        ("partner", PipelineStage::Consent),
    ] {
        assert_eq!(stage_of(&d, offer), stage, "{offer}: {}", why(offer));
    }
    assert_eq!(d.explanations().len(), 12);
    // The false clause named is the one plain evaluation names: the fifth, the second.
    assert!(
        why("long-false").contains("400` is false"),
        "{}",
        why("long-false")
    );
    assert!(
        why("reads-offer").contains("offer.price"),
        "{}",
        why("reads-offer")
    );
    // A false clause wins over an earlier undecided one; alone, the undecided one is named.
    assert!(
        why("false-after-missing").contains("400` is false"),
        "{}",
        why("false-after-missing")
    );
    assert!(
        why("missing").contains("could not be decided: customer.region is missing"),
        "{}",
        why("missing")
    );
    // The offer's own 30-day cap holds it back longer than the category's 7-day cap.
    assert!(
        why("own-cap").contains("until 2026-12-20T12:00:00Z"),
        "{}",
        why("own-cap")
    );
    assert!(
        why("category-cap").contains("`one-a-week`") || why("category-cap").contains("one-a-week"),
        "{}",
        why("category-cap")
    );
    assert!(
        why("category-cap").contains("until 2026-11-27T12:00:00Z"),
        "{}",
        why("category-cap")
    );
}

/// The catalogue with two segments and two offers targeting them: one rule reads segments
/// only (screened from the shared clauses), one also reads the offer (evaluated per offer).
fn with_segments() -> String {
    CATALOG.replace(
        "offers:\n",
        r#"segments:
  - { id: heavy_users, name: Heavy users, rule: "features.data_used_gb >= 8" }
  - { id: loyal, name: Loyal, rule: "customer.tenure_months >= 24" }
  - { id: unused, name: Read by no offer, rule: "customer.plan == \"L\"" }
offers:
  - id: heavy-pack
    name: Heavy user pack
    category: pack
    channels: [app]
    eligibility: segments.heavy_users && !segments.loyal
    value: 3
  - id: loyalty-gift
    name: Loyalty gift
    category: gift
    channels: [app]
    eligibility: segments.loyal && offer.value > 1
    value: 2
"#,
    )
}

fn segment_decision(tenure_months: i32, used_gb: f64) -> Decision {
    let catalog = Arc::new(
        CompiledCatalog::compile(Catalog::from_yaml(&with_segments()).unwrap(), 1).unwrap(),
    );
    let model = Arc::new(BetaBernoulli::new());
    model.bind(&catalog.offer_ids(), 0, catalog.config().prior);
    let customer = customer(30.0).with_attribute("tenure_months", tenure_months);
    let touchpoints = usage(used_gb);
    let input = DecisionInput {
        customer: &customer,
        touchpoints: &touchpoints,
        features: None,
        customer_inputs: None,
        feature_inputs: None,
        contact_inputs: None,
        contacts: &[],
        budget_used: &[],
        now: now(),
    };
    let request = DecisionRequest::new("c-1", Channel::App).k(5).seed(1);
    Arbitrator::new(catalog, model).decide(&input, &request, DecisionId::new("d-1"))
}

#[test]
fn offer_rules_read_segment_membership() {
    // A heavy user of 12 months: in `heavy_users`, not in `loyal`.
    let d = segment_decision(12, 9.5);
    assert!(chosen(&d).contains(&"heavy-pack"), "{:?}", chosen(&d));
    assert!(!chosen(&d).contains(&"loyalty-gift"));
    assert_eq!(stage_of(&d, "loyalty-gift"), PipelineStage::Eligibility);
    let why = d.why_not(&OfferId::new("loyalty-gift"));
    assert!(why.contains("`segments.loyal` is false"), "{why}");

    // A light user of 30 months: the other way round.
    let d = segment_decision(30, 2.0);
    assert!(chosen(&d).contains(&"loyalty-gift"), "{:?}", chosen(&d));
    assert!(!chosen(&d).contains(&"heavy-pack"));
    let why = d.why_not(&OfferId::new("heavy-pack"));
    assert!(why.contains("segments.heavy_users"), "{why}");

    // A heavy, loyal customer: `!segments.loyal` fails.
    let d = segment_decision(30, 9.5);
    assert!(!chosen(&d).contains(&"heavy-pack"));
    let why = d.why_not(&OfferId::new("heavy-pack"));
    assert!(why.contains("segments.loyal"), "{why}");
}

#[test]
fn segment_references_are_checked_when_the_catalogue_loads() {
    let unknown = with_segments().replace("segments.loyal && offer", "segments.loyals && offer");
    match CompiledCatalog::compile(Catalog::from_yaml(&unknown).unwrap(), 1) {
        Err(Error::InvalidRule { item, message, .. }) => {
            assert_eq!(item, "offer \"loyalty-gift\" eligibility");
            assert!(
                message.contains("unknown name `segments.loyals`"),
                "{message}"
            );
            assert!(message.contains("loyal"), "{message}");
        }
        other => panic!("expected a rule error, got {other:?}"),
    }
    // A segment rule cannot read segments: membership never depends on itself.
    let cyclic = with_segments().replace(
        "rule: \"customer.tenure_months >= 24\"",
        "rule: \"segments.heavy_users && customer.tenure_months >= 24\"",
    );
    match CompiledCatalog::compile(Catalog::from_yaml(&cyclic).unwrap(), 1) {
        Err(Error::InvalidRule { item, message, .. }) => {
            assert_eq!(item, "segment \"loyal\" rule");
            assert!(message.contains("is not available here"), "{message}");
        }
        other => panic!("expected a rule error, got {other:?}"),
    }
}
