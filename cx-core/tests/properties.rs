//! Properties of the decision pipeline, checked against independent oracles over random
//! customers, histories, budgets and requests: consent is never violated, no cap or suppression
//! is ever exceeded, no used-up budget is drawn on, probabilities are probabilities, and the
//! same seed gives the same decision.

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use cx_core::arbitration::explore::slot_distribution;
use cx_core::arbitration::{
    Arbitrator, BetaBernoulli, CompiledCatalog, DecisionInput, PropensityModel,
};
use cx_core::model::*;
use proptest::prelude::*;
use std::sync::{Arc, OnceLock};

const CATALOG: &str = r#"
schema:
  customer: { tier: number }
budgets:
  - { id: b1, limit: 5, counts: shown, period: total }
  - { id: b2, limit: 2, counts: shown, period: day }
contact_policy:
  - { rule: cap, scope: offer, outcome: shown, max: 2, window: 7d }
  - { rule: cap, scope: category, outcome: shown, max: 3, window: 30d }
  - { rule: cap, scope: channel, outcome: shown, max: 4, window: 3d }
  - { rule: suppress, scope: all, after: 2, within: 20d, duration: 10d }
offers:
  - { id: o0, name: O0, category: c0, channels: [sms, app], value: 5, eligibility: "customer.tier >= 1", budget: b1 }
  - { id: o1, name: O1, category: c0, channels: [sms], value: 4 }
  - { id: o2, name: O2, category: c1, channels: [app, email], value: 3, consent_purpose: service, budget: b2 }
  - { id: o3, name: O3, category: c1, channels: [sms, app, email], value: 2, suitability: "customer.tier < 3" }
  - { id: o4, name: O4, category: c2, channels: [email], value: 6, contact_policy: [{ rule: cap, scope: offer, outcome: rejected, max: 1, window: 14d }] }
  - { id: o5, name: O5, category: c2, channels: [sms, app, email], value: 1, consent_purpose: service, eligibility: "customer.tier > 3.5" }
  - { id: o6, name: O6, category: c3, channels: [app], value: 7, budget: b1 }
  - { id: o7, name: O7, category: c3, channels: [sms, email], value: 2.5 }
arbitration:
  k: 3
  fallback: o5
  scoring: { propensity: false }
"#;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap()
}

fn catalog() -> &'static Arc<CompiledCatalog> {
    static CATALOG_CELL: OnceLock<Arc<CompiledCatalog>> = OnceLock::new();
    CATALOG_CELL.get_or_init(|| {
        Arc::new(CompiledCatalog::compile(Catalog::from_yaml(CATALOG).unwrap(), 1).unwrap())
    })
}

fn arbitrator(exploration: Exploration) -> Arbitrator {
    let mut raw = catalog().catalog().clone();
    raw.arbitration.exploration = exploration;
    let compiled = Arc::new(CompiledCatalog::compile(raw, 1).unwrap());
    let model = Arc::new(BetaBernoulli::new());
    model.bind(&compiled.offer_ids(), 0, compiled.config().prior);
    Arbitrator::new(compiled, model)
}

const CHANNELS: [Channel; 3] = [Channel::Sms, Channel::App, Channel::Email];
const KINDS: [OutcomeKind; 3] = [
    OutcomeKind::Shown,
    OutcomeKind::Rejected,
    OutcomeKind::Accepted,
];

#[derive(Debug, Clone)]
struct Case {
    tier: f64,
    consents: Vec<(usize, bool, bool, i64)>,
    history: Vec<(usize, usize, usize, i64)>,
    budget_used: Vec<u64>,
    channel: usize,
    seed: u64,
    exploration: usize,
}

fn case() -> impl Strategy<Value = Case> {
    (
        0.0..4.0f64,
        prop::collection::vec(
            (
                0..3usize,
                any::<bool>(),
                prop::bool::weighted(0.8),
                -3..10i64,
            ),
            0..8,
        ),
        prop::collection::vec((0..8usize, 0..3usize, 0..3usize, 0..(60 * 24i64)), 0..25),
        prop::collection::vec(0..7u64, 2),
        0..3usize,
        any::<u64>(),
        0..3usize,
    )
        .prop_map(
            |(tier, consents, history, budget_used, channel, seed, exploration)| Case {
                tier,
                consents,
                history,
                budget_used,
                channel,
                seed,
                exploration,
            },
        )
}

fn customer(case: &Case) -> Customer {
    let mut c = Customer::new("c").with_attribute("tier", case.tier);
    for &(channel, marketing, granted, days) in &case.consents {
        let purpose = if marketing {
            Purpose::MARKETING
        } else {
            Purpose::SERVICE
        };
        let since = now() - TimeDelta::days(days);
        let channel = CHANNELS[channel].clone();
        c.set_consent(if granted {
            Consent::granted(channel, purpose, since)
        } else {
            Consent::denied(channel, purpose, since)
        });
    }
    c
}

fn history(case: &Case) -> Vec<ContactEvent> {
    let cat = catalog();
    let mut events: Vec<ContactEvent> = case
        .history
        .iter()
        .map(|&(offer, channel, kind, hours_ago)| {
            let o = cat.offer(offer as u32).unwrap();
            ContactEvent {
                customer: CustomerId::new("c"),
                decision: DecisionId::new("d"),
                offer: o.offer.id.clone(),
                category: o.offer.category.clone(),
                channel: CHANNELS[channel].clone(),
                kind: KINDS[kind],
                at: now() - TimeDelta::hours(hours_ago),
            }
        })
        .collect();
    events.sort_by_key(|e| e.at);
    events
}

fn exploration(case: &Case) -> Exploration {
    match case.exploration {
        0 => Exploration::Greedy,
        1 => Exploration::EpsilonGreedy { epsilon: 0.3 },
        _ => Exploration::Softmax { temperature: 2.0 },
    }
}

/// Oracle: does `rule` forbid contacting with `offer` on `channel` at `now`, given `events`?
fn violates(rule: &ContactRule, offer: &Offer, channel: &Channel, events: &[ContactEvent]) -> bool {
    let in_scope = |e: &ContactEvent| match rule.scope() {
        ContactScope::Offer => e.offer == offer.id,
        ContactScope::Category => e.category == offer.category,
        ContactScope::Channel => &e.channel == channel,
        ContactScope::All => true,
    };
    match rule {
        ContactRule::Cap {
            outcome,
            max,
            window,
            ..
        } => {
            let n = events
                .iter()
                .filter(|e| {
                    e.kind == *outcome
                        && in_scope(e)
                        && e.at <= now()
                        && e.at > now() - window.as_delta()
                })
                .count();
            n >= *max as usize
        }
        ContactRule::Suppress {
            outcome,
            after,
            within,
            duration,
            ..
        } => {
            let times: Vec<_> = events
                .iter()
                .filter(|e| e.kind == *outcome && in_scope(e) && e.at <= now())
                .map(|e| e.at)
                .collect();
            times.iter().enumerate().any(|(j, &t)| {
                let first = j + 1 >= *after as usize && {
                    let start = times[j + 1 - *after as usize];
                    t - start < within.as_delta()
                };
                first && now() < t + duration.as_delta()
            })
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn decisions_respect_consent_caps_and_budgets(case in case()) {
        let arbitrator = arbitrator(exploration(&case));
        let customer = customer(&case);
        let contacts = history(&case);
        let channel = CHANNELS[case.channel].clone();
        let input = DecisionInput { customer: &customer, touchpoints: &[], features: None, customer_inputs: None, feature_inputs: None, contact_inputs: None, contacts: &contacts, budget_used: &case.budget_used, now: now() };
        let request = DecisionRequest::new("c", channel.clone()).seed(case.seed);
        let decision = arbitrator.decide(&input, &request, DecisionId::new("d"));
        let cat = catalog();

        prop_assert!(decision.offers.len() <= 3);
        let mut categories = std::collections::HashSet::new();
        for selected in &decision.offers {
            let offer = cat.catalog().offer(selected.offer.as_str()).unwrap();
            prop_assert!(categories.insert(offer.category.clone()), "two offers of one category");
            prop_assert!(offer.channels.contains(&channel));
            prop_assert!(customer.has_consent(&channel, &offer.consent_purpose, now()), "no consent for {}", offer.id);
            for rule in cat.catalog().contact_policy.iter().chain(&offer.contact_policy) {
                prop_assert!(!violates(rule, offer, &channel, &contacts), "{} breaks `{}`", offer.id, rule);
            }
            if let Some(budget) = &offer.budget {
                let b = cat.budgets().iter().position(|x| &x.id == budget).unwrap();
                prop_assert!(case.budget_used[b] < cat.budgets()[b].limit, "{} draws on a used-up budget", offer.id);
            }
            prop_assert!(selected.probability > 0.0 && selected.probability <= 1.0);
        }
        // The same seed gives the same decision.
        prop_assert_eq!(&arbitrator.decide(&input, &request, DecisionId::new("d")), &decision);
        // Every excluded candidate's explanation is consistent with the oracle.
        for e in decision.explanations() {
            if e.stage == PipelineStage::Consent {
                let offer = cat.catalog().offer(e.offer.as_str()).unwrap();
                prop_assert!(!customer.has_consent(&channel, &offer.consent_purpose, now()));
            }
        }
    }

    #[test]
    fn slot_probabilities_sum_to_one(scores in prop::collection::vec(-5.0..50.0f64, 1..40), policy in 0..3usize) {
        let policy = match policy {
            0 => Exploration::Greedy,
            1 => Exploration::EpsilonGreedy { epsilon: 0.2 },
            _ => Exploration::Softmax { temperature: 3.0 },
        };
        let mut p = Vec::new();
        slot_distribution(&policy, &scores, &mut p);
        let sum: f64 = p.iter().sum();
        prop_assert!((sum - 1.0).abs() < 1e-9 && sum <= 1.0 + 1e-9, "sum {sum}");
        prop_assert!(p.iter().all(|&x| (0.0..=1.0).contains(&x)));
    }
}

/// The property above is not vacuous: the random cases choose offers and hit every exclusion.
#[test]
fn the_generated_cases_exercise_every_stage() {
    use proptest::strategy::ValueTree;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let mut stages = std::collections::HashMap::new();
    let mut chose = 0;
    for _ in 0..400 {
        let case = case().new_tree(&mut runner).unwrap().current();
        let arbitrator = arbitrator(exploration(&case));
        let customer = customer(&case);
        let contacts = history(&case);
        let input = DecisionInput {
            customer: &customer,
            touchpoints: &[],
            features: None,
            customer_inputs: None,
            feature_inputs: None,
            contact_inputs: None,
            contacts: &contacts,
            budget_used: &case.budget_used,
            now: now(),
        };
        let decision = arbitrator.decide(
            &input,
            &DecisionRequest::new("c", CHANNELS[case.channel].clone()).seed(case.seed),
            DecisionId::new("d"),
        );
        chose += usize::from(!decision.offers.is_empty());
        for e in decision.explanations() {
            *stages.entry(e.stage).or_insert(0) += 1;
        }
    }
    assert!(chose > 40, "only {chose} of 400 decisions chose something");
    for stage in [
        PipelineStage::Consent,
        PipelineStage::Eligibility,
        PipelineStage::ContactPolicy,
        PipelineStage::Budget,
        PipelineStage::Suitability,
        PipelineStage::Selection,
        PipelineStage::Selected,
        PipelineStage::Fallback,
    ] {
        assert!(
            stages.get(&stage).copied().unwrap_or(0) > 0,
            "no candidate stopped at {stage}: {stages:?}"
        );
    }
}
