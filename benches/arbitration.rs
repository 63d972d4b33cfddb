//! Arbitration latency: one decision for one customer over the generated telco catalogues,
//! read against the baseline any team would write first, measured in the same run.
//!
//! ```text
//! cargo bench --bench arbitration
//! ```
//!
//! - `arbitration/telco-{100,1k,10k}/cx`: [`Arbitrator::decide`], the pure pipeline, on the
//!   scenario of [`ScenarioSpec::telco_100`], `telco_1k` and `telco_10k` (100, 1,000 and 10,000
//!   offers; 200 touchpoints and 50 contact-history entries; top 3 on `app`, explanations on,
//!   greedy selection). It computes the 8 features, evaluates every candidate's consent,
//!   eligibility, contact policy, budget and suitability, scores the survivors with the trained
//!   Beta-Bernoulli model and keeps the trace that explains the decision.
//! - `arbitration/telco-1k/cel-interpreted`: the same pipeline written the way a team would
//!   write it first with the `cel` crate's own interpreter: every rule (eligibility,
//!   suitability and the feature filter) compiled once with `cel::Program::compile`, and per
//!   decision a `cel::Context` holding `customer`, `features`, `context` and `now` as CEL
//!   values, plus `offer` for the offers whose rules read it, with `program.execute(&ctx)` per
//!   rule. Consent, contact policy (each rule's blocked offers and categories worked out once
//!   per decision), budgets, scoring (the same propensity model), top-k selection with one
//!   offer per category and the fallback have the same semantics, and it records the stage
//!   where each candidate stopped, as the explanation trace does. Before timing, it is checked
//!   to choose the same offers, with the same scores, and to stop every candidate at the same
//!   stage, as `Arbitrator::decide` on five seeds of telco-1k and 20 other customers each.
//! - `arbitration/telco-1k/engine-memory`: [`Engine::decide`] end to end on a [`MemoryStore`]
//!   holding the scenario (catalogue loaded with `load_catalog`, customer upserted,
//!   touchpoints ingested, the contact history recorded as decisions and outcomes, budgets
//!   consumed): resolve the customer, load profile, touchpoints, contact history and budget use,
//!   decide, consume the budgets of the chosen offers and append the decision to the log. The
//!   log grows with each decision; every 4,096 decisions the store is rebuilt outside the
//!   timed region, to keep memory bounded. It is checked to choose what `Arbitrator::decide`
//!   chooses.
//! - `arbitration/telco-100/preview-many-1k`: [`Engine::preview_many`] for 1,000 customers of
//!   telco-100 (40 touchpoints and 10 contact entries each, the shape of the Python bench),
//!   every state read with one `Store::visit_decision_states` call; baseline
//!   `arbitration/telco-100/preview-each-1k`: the same 1,000 customers previewed one
//!   [`Engine::preview`] at a time. Checked to choose the same offers.
//!
//! - `arbitration/telco-1k/engine-postgres`: the same `Engine::decide` on a [`PostgresStore`]
//!   (a fresh database of the test harness's server: `DATABASE_URL`, or a throwaway cluster),
//!   loaded the same way and checked to choose the same offers. The profile, touchpoints,
//!   contact history and budget use are read in one round trip; the decision log grows.
//!
//! Everything runs on one core: the engine on a current-thread Tokio runtime.
//!
//! [`PostgresStore`]: cx_store_postgres::PostgresStore
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use cel::{Context, Program, Value as CelValue};
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, BenchmarkId, Criterion, criterion_group, criterion_main};
use cx::arbitration::{Arbitrator, DecisionInput, PropensityModel};
use cx::model::{
    Aggregation, Attributes, Channel, ContactEvent, ContactRule, ContactScope, Decision,
    DecisionId, DecisionRequest, Exploration, Feature, Offer, OfferId, PipelineStage, Timestamp,
    Touchpoint, Value,
};
use cx::store::Store;
use cx::{Engine, ManualClock, MemoryStore};
use cx_core::testkit::scenario::{Scenario, ScenarioCustomer, ScenarioSpec};
use cx_store_postgres::harness;
use std::collections::{HashMap, HashSet};
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::runtime::Runtime;

/// Rebuild the engine's store after this many decisions.
const RESET_AT: u64 = 4_096;

// ---------------------------------------------------------------------------------------------
// The baseline: the same pipeline over the `cel` crate's interpreter.

/// A catalogue prepared for the CEL baseline: every rule compiled once.
struct CelPipeline<'s> {
    scenario: &'s Scenario,
    env: Arc<cel::Env>,
    offers: Vec<CelOffer<'s>>,
    features: Vec<(&'s Feature, Option<Program>)>,
    model: Arc<dyn PropensityModel>,
}

struct CelOffer<'s> {
    offer: &'s Offer,
    eligibility: Option<Program>,
    suitability: Option<Program>,
    /// `offer.*` as a CEL map: the offer's attributes and its built-in fields.
    fields: CelValue,
    /// Whether a rule reads `offer`: binding it copies the map into the context, so it is
    /// bound only then.
    reads_offer: bool,
    budget: Option<usize>,
}

/// What the baseline decided: the picks (catalogue index, score) and where every candidate
/// stopped.
#[derive(Debug, PartialEq)]
struct BaselineDecision {
    picks: Vec<(usize, f64)>,
    stages: Vec<(usize, PipelineStage)>,
}

fn cel_value(value: &Value) -> CelValue {
    match value {
        Value::String(s) => CelValue::from(s.as_str()),
        Value::Number(n) => CelValue::Float(*n),
        Value::Bool(b) => CelValue::Bool(*b),
        Value::Timestamp(t) => CelValue::Timestamp(t.fixed_offset()),
        Value::List(items) => CelValue::List(Arc::new(items.iter().map(cel_value).collect())),
    }
}

fn cel_map(attributes: &Attributes) -> HashMap<String, CelValue> {
    attributes
        .iter()
        .map(|(name, value)| (name.to_string(), cel_value(value)))
        .collect()
}

fn holds(program: &Program, ctx: &Context<'_, '_>) -> bool {
    matches!(program.execute(ctx), Ok(CelValue::Bool(true)))
}

impl<'s> CelPipeline<'s> {
    fn new(scenario: &'s Scenario, model: Arc<dyn PropensityModel>) -> Self {
        let catalog = &scenario.catalog;
        assert_eq!(catalog.arbitration.exploration, Exploration::Greedy);
        let compile = |rule: &Option<cx::model::RuleText>| {
            rule.as_ref()
                .map(|r| Program::compile(r.as_str()).expect("the rule parses as CEL"))
        };
        let offers = catalog
            .offers
            .iter()
            .map(|offer| {
                let mut fields = cel_map(&offer.attributes);
                fields.insert("id".into(), CelValue::from(offer.id.as_str()));
                fields.insert("category".into(), CelValue::from(offer.category.as_str()));
                fields.insert("value".into(), CelValue::Float(offer.value));
                fields.insert("lever".into(), CelValue::Float(offer.lever));
                if let Some(benefit) = offer.benefit {
                    fields.insert("benefit".into(), CelValue::Float(benefit));
                }
                let eligibility = compile(&offer.eligibility);
                let suitability = compile(&offer.suitability);
                let reads_offer = [&eligibility, &suitability]
                    .into_iter()
                    .flatten()
                    .any(|p| p.references().has_variable("offer"));
                CelOffer {
                    offer,
                    eligibility,
                    suitability,
                    reads_offer,
                    fields: CelValue::from(fields),
                    budget: offer
                        .budget
                        .as_ref()
                        .and_then(|b| catalog.budgets.iter().position(|x| &x.id == b)),
                }
            })
            .collect();
        let features = catalog
            .features
            .iter()
            .map(|f| (f, compile(&f.filter)))
            .collect();
        CelPipeline {
            scenario,
            env: Arc::new(cel::Env::stdlib()),
            offers,
            features,
            model,
        }
    }

    /// The features over `touchpoints`, as a CEL map (a feature without a value is left out).
    fn features(&self, touchpoints: &[Touchpoint], now: Timestamp) -> HashMap<String, CelValue> {
        let mut out = HashMap::new();
        for (feature, filter) in &self.features {
            let start = now - feature.window.as_delta();
            let mut values: Vec<&Value> = Vec::new();
            let mut count = 0u64;
            for t in touchpoints {
                if t.occurred_at < start || t.occurred_at >= now {
                    continue;
                }
                if !feature.kinds.is_empty() && !feature.kinds.contains(&t.kind) {
                    continue;
                }
                if !feature.channels.is_empty() && !feature.channels.contains(&t.channel) {
                    continue;
                }
                if let Some(filter) = filter {
                    let mut fields = cel_map(&t.attributes);
                    fields.insert("kind".into(), CelValue::from(t.kind.as_str()));
                    fields.insert("channel".into(), CelValue::from(t.channel.as_str()));
                    fields.insert(
                        "occurred_at".into(),
                        CelValue::Timestamp(t.occurred_at.fixed_offset()),
                    );
                    let mut ctx = Context::with_env(Arc::clone(&self.env));
                    ctx.add_variable_from_value("touchpoint", fields);
                    if !holds(filter, &ctx) {
                        continue;
                    }
                }
                match &feature.attribute {
                    None => count += 1,
                    Some(name) => values.extend(t.attributes.get(name.as_str())),
                }
            }
            let numbers = || values.iter().filter_map(|v| v.as_number());
            let value = match feature.aggregate {
                Aggregation::Count if feature.attribute.is_none() => Some(count as f64),
                Aggregation::Count => Some(values.len() as f64),
                Aggregation::Sum => Some(numbers().fold(0.0, |a, b| a + b)),
                Aggregation::Avg => {
                    let n = numbers().count();
                    (n > 0).then(|| numbers().fold(0.0, |a, b| a + b) / n as f64)
                }
                Aggregation::Min => numbers().reduce(f64::min),
                Aggregation::Max => numbers().reduce(f64::max),
                Aggregation::DistinctCount => {
                    let mut distinct: Vec<&Value> = Vec::new();
                    for v in &values {
                        if !distinct.contains(v) {
                            distinct.push(v);
                        }
                    }
                    Some(distinct.len() as f64)
                }
                Aggregation::Last => {
                    if let Some(last) = values.last() {
                        out.insert(feature.id.to_string(), cel_value(last));
                    }
                    continue;
                }
            };
            if let Some(v) = value {
                out.insert(feature.id.to_string(), CelValue::Float(v));
            }
        }
        out
    }

    fn decide(&self, input: &DecisionInput<'_>, request: &DecisionRequest) -> BaselineDecision {
        let now = input.now;
        let catalog = &self.scenario.catalog;
        let channel = &request.channel;

        let mut context = cel_map(&request.context);
        context.insert("channel".into(), CelValue::from(channel.as_str()));
        if let Some(placement) = &request.placement {
            context.insert("placement".into(), CelValue::from(placement.as_str()));
        }
        let mut ctx = Context::with_env(Arc::clone(&self.env));
        ctx.add_variable_from_value("customer", cel_map(&input.customer.attributes));
        ctx.add_variable_from_value("features", self.features(input.touchpoints, now));
        ctx.add_variable_from_value("context", context);
        ctx.add_variable_from_value("now", CelValue::Timestamp(now.fixed_offset()));

        let history: Vec<&ContactEvent> = input.contacts.iter().filter(|e| e.at <= now).collect();
        let blocks: Vec<Blocked> = catalog
            .contact_policy
            .iter()
            .map(|rule| Blocked::new(rule, &history, channel, now))
            .collect();

        let mut stages = Vec::with_capacity(self.offers.len());
        let mut survivors: Vec<u32> = Vec::new();
        for (i, o) in self.offers.iter().enumerate() {
            let offer = o.offer;
            if !offer.channels.contains(channel) {
                continue;
            }
            let stage = if !offer.is_valid_at(now) {
                PipelineStage::Candidates
            } else if !input
                .customer
                .has_consent(channel, &offer.consent_purpose, now)
            {
                PipelineStage::Consent
            } else {
                if o.reads_offer {
                    ctx.add_variable_from_value("offer", o.fields.clone());
                }
                if o.eligibility.as_ref().is_some_and(|p| !holds(p, &ctx)) {
                    PipelineStage::Eligibility
                } else if let Some(stage) = self.hard_limit(o, &blocks, input) {
                    stage
                } else if o.suitability.as_ref().is_some_and(|p| !holds(p, &ctx)) {
                    PipelineStage::Suitability
                } else {
                    survivors.push(i as u32);
                    PipelineStage::Selection
                }
            };
            stages.push((i, stage));
        }

        let mut propensities = Vec::with_capacity(survivors.len());
        self.model.fill_means(&survivors, None, &mut propensities);
        let mut scored: Vec<(usize, f64)> = survivors
            .iter()
            .zip(&propensities)
            .map(|(&i, p)| {
                let offer = self.offers[i as usize].offer;
                (
                    i as usize,
                    p * context_weight(offer, request) * offer.value * offer.lever,
                )
            })
            .collect();
        scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        let k = request.k.unwrap_or(catalog.arbitration.k).max(1) as usize;
        let mut picks: Vec<(usize, f64)> = Vec::with_capacity(k);
        let mut categories = Vec::with_capacity(k);
        for (i, score) in scored {
            if picks.len() == k {
                break;
            }
            let category = &self.offers[i].offer.category;
            if score.is_finite() && !categories.contains(&category) {
                categories.push(category);
                picks.push((i, score));
            }
        }
        for (i, stage) in &mut stages {
            if picks.iter().any(|(p, _)| p == i) {
                *stage = PipelineStage::Selected;
            }
        }

        // Nothing survived: the fallback, if it is on the channel and within the hard limits
        // (consent, contact policy, budget); its rules are not checked.
        if picks.is_empty()
            && let Some(fallback) = &catalog.arbitration.fallback
            && let Some(i) = self.offers.iter().position(|o| &o.offer.id == fallback)
        {
            let o = &self.offers[i];
            let offer = o.offer;
            if offer.channels.contains(channel)
                && offer.is_valid_at(now)
                && input
                    .customer
                    .has_consent(channel, &offer.consent_purpose, now)
                && self.hard_limit(o, &blocks, input).is_none()
            {
                picks.push((
                    i,
                    context_weight(offer, request) * offer.value * offer.lever,
                ));
                // Its one entry: chosen as the fallback (whatever stopped it as a candidate).
                stages.retain(|(j, _)| *j != i);
                stages.push((i, PipelineStage::Fallback));
                stages.sort_by_key(|(i, _)| *i);
            }
        }
        BaselineDecision { picks, stages }
    }
}

impl CelPipeline<'_> {
    /// The contact policy or the budget, if either holds the offer back.
    fn hard_limit(
        &self,
        o: &CelOffer<'_>,
        blocks: &[Blocked],
        input: &DecisionInput<'_>,
    ) -> Option<PipelineStage> {
        if blocks.iter().any(|b| b.blocks(o.offer)) {
            return Some(PipelineStage::ContactPolicy);
        }
        let budget = o.budget?;
        let limit = self.scenario.catalog.budgets.get(budget)?.limit;
        (input.budget_used.get(budget).copied().unwrap_or(0) >= limit)
            .then_some(PipelineStage::Budget)
    }
}

/// The offer's weight for the request's channel and placement (1 where it names neither).
fn context_weight(offer: &Offer, request: &DecisionRequest) -> f64 {
    let weight = |name: &str| offer.context_weights.get(name).copied().unwrap_or(1.0);
    let placement = request
        .placement
        .as_ref()
        .map_or(1.0, |p| weight(p.as_str()));
    weight(request.channel.as_str()) * placement
}

/// What one catalogue-wide contact-policy rule blocks for this request: offer ids or categories
/// (or everything, for a channel-wide or global rule).
struct Blocked {
    scope: ContactScope,
    all: bool,
    keys: HashSet<String>,
}

impl Blocked {
    fn new(
        rule: &ContactRule,
        history: &[&ContactEvent],
        channel: &Channel,
        now: Timestamp,
    ) -> Self {
        let (scope, outcome) = match rule {
            ContactRule::Cap { scope, outcome, .. }
            | ContactRule::Suppress { scope, outcome, .. } => (*scope, *outcome),
        };
        // Times of the matching events, by key, oldest first.
        let mut times: HashMap<String, Vec<Timestamp>> = HashMap::new();
        for e in history.iter().filter(|e| e.kind == outcome) {
            let key = match scope {
                ContactScope::Offer => e.offer.to_string(),
                ContactScope::Category => e.category.to_string(),
                ContactScope::Channel if &e.channel != channel => continue,
                ContactScope::Channel | ContactScope::All => String::new(),
            };
            times.entry(key).or_default().push(e.at);
        }
        let mut keys = HashSet::new();
        for (key, times) in times {
            let blocked = match rule {
                ContactRule::Cap { max, window, .. } => {
                    let start = now - window.as_delta();
                    times.iter().filter(|t| **t > start).count() >= *max as usize
                }
                ContactRule::Suppress {
                    after,
                    within,
                    duration,
                    ..
                } => {
                    let after = *after as usize;
                    (after.max(1) - 1..times.len()).any(|j| {
                        let (last, first) = (times[j], times[j + 1 - after.max(1)]);
                        last - first < within.as_delta() && last + duration.as_delta() > now
                    })
                }
            };
            if blocked {
                keys.insert(key);
            }
        }
        // A cap of zero blocks everything in its scope, events or not.
        let cap_zero = matches!(rule, ContactRule::Cap { max: 0, .. });
        let all = cap_zero
            || (matches!(scope, ContactScope::Channel | ContactScope::All) && keys.contains(""));
        Blocked { scope, all, keys }
    }

    fn blocks(&self, offer: &Offer) -> bool {
        self.all
            || match self.scope {
                ContactScope::Offer => self.keys.contains(offer.id.as_str()),
                ContactScope::Category => self.keys.contains(offer.category.as_str()),
                ContactScope::Channel | ContactScope::All => false,
            }
    }
}

// ---------------------------------------------------------------------------------------------
// Checks that the comparisons are honest.

fn stages_of(decision: &Decision, scenario: &Scenario) -> Vec<(usize, PipelineStage)> {
    let index: HashMap<&OfferId, usize> = scenario
        .catalog
        .offers
        .iter()
        .enumerate()
        .map(|(i, o)| (&o.id, i))
        .collect();
    let mut stages: Vec<(usize, PipelineStage)> = decision
        .explanations()
        .into_iter()
        .map(|e| (index[&e.offer], e.stage))
        .collect();
    stages.sort_by_key(|(i, _)| *i);
    stages
}

/// The baseline chooses what `Arbitrator::decide` chooses, with the same scores, and stops
/// every candidate at the same stage.
fn assert_same(arbitrator: &Arbitrator, baseline: &CelPipeline<'_>, scenario: &Scenario) {
    let check = |input: &DecisionInput<'_>, request: &DecisionRequest, who: &str| {
        let decision = arbitrator.decide(input, request, DecisionId::new("d-check"));
        let ours = baseline.decide(input, request);
        let picked: Vec<(&str, f64)> = decision
            .offers
            .iter()
            .map(|s| (s.offer.as_str(), s.score))
            .collect();
        let theirs: Vec<(&str, f64)> = ours
            .picks
            .iter()
            .map(|(i, score)| (scenario.catalog.offers[*i].id.as_str(), *score))
            .collect();
        assert_eq!(picked, theirs, "{who}: the baseline picks other offers");
        assert_eq!(
            stages_of(&decision, scenario),
            ours.stages,
            "{who}: the baseline stops candidates at other stages"
        );
    };
    check(&scenario.input(), &scenario.request, "scenario customer");
    for c in scenario.customers(20) {
        check(
            &scenario.input_for(&c),
            &c.request,
            &format!("customer {}", c.customer.id),
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The engine over the in-memory store.

struct Loaded {
    engine: Engine,
    decisions: u64,
}

fn load_engine(rt: &Runtime, scenario: &Scenario) -> Loaded {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let engine = Engine::new(store).with_clock(Arc::new(ManualClock::new(scenario.now)));
    rt.block_on(scenario.load_into(&engine)).unwrap();
    Loaded {
        engine,
        decisions: 0,
    }
}

/// An engine over `store` at `scenario`'s instant, holding the scenario and `people`.
fn load_many(
    rt: &Runtime,
    store: Arc<dyn Store>,
    scenario: &Scenario,
    people: &[ScenarioCustomer],
) -> Engine {
    let engine = Engine::new(store).with_clock(Arc::new(ManualClock::new(scenario.now)));
    rt.block_on(async {
        scenario.load_into(&engine).await?;
        for p in people {
            p.load_into(&engine).await?;
        }
        Ok::<_, cx::Error>(())
    })
    .unwrap();
    engine
}

/// `preview-many-1k{suffix}` (one `preview_many` of `requests`) and its baseline
/// `preview-each-1k{suffix}` (one `preview` per request).
fn bench_previews(
    group: &mut BenchmarkGroup<'_, WallTime>,
    rt: &Runtime,
    suffix: &str,
    engine: &Engine,
    requests: &[DecisionRequest],
) {
    group.bench_function(
        BenchmarkId::new("telco-100", format!("preview-many-1k{suffix}")),
        |b| b.iter(|| black_box(rt.block_on(engine.preview_many(requests)).unwrap())),
    );
    group.bench_function(
        BenchmarkId::new("telco-100", format!("preview-each-1k{suffix}")),
        |b| {
            b.iter(|| {
                rt.block_on(async {
                    for request in requests {
                        black_box(engine.preview(request).await.unwrap());
                    }
                });
            });
        },
    );
}

// ---------------------------------------------------------------------------------------------

fn arbitration(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let scenarios: Vec<(&str, Scenario)> = vec![
        ("telco-100", ScenarioSpec::telco_100().generate()),
        ("telco-1k", ScenarioSpec::telco_1k().generate()),
        ("telco-10k", ScenarioSpec::telco_10k().generate()),
    ];
    let arbitrators: Vec<Arbitrator> = scenarios
        .iter()
        .map(|(name, s)| {
            let started = Instant::now();
            let a = s.arbitrator().unwrap();
            eprintln!("{name}: catalogue compiled in {:?}", started.elapsed());
            a
        })
        .collect();

    // The baseline decides as cx does, on several scenarios, before anything is timed.
    let started = Instant::now();
    for seed in [42, 1, 2, 3, 4] {
        let scenario = ScenarioSpec::telco_1k().with_seed(seed).generate();
        let arbitrator = scenario.arbitrator().unwrap();
        let baseline = CelPipeline::new(&scenario, Arc::clone(arbitrator.model()));
        assert_same(&arbitrator, &baseline, &scenario);
    }
    eprintln!(
        "cel-interpreted baseline: same picks, scores and stages as cx on 5 telco-1k seeds and \
         20 customers each ({:?})",
        started.elapsed()
    );

    let (_, telco_1k) = &scenarios[1];
    let arbitrator_1k = &arbitrators[1];
    let loaded = load_engine(&rt, telco_1k);
    let engine_decision = rt
        .block_on(loaded.engine.decide(&telco_1k.request))
        .unwrap();
    let pure = arbitrator_1k.decide(&telco_1k.input(), &telco_1k.request, DecisionId::new("d"));
    assert_eq!(
        engine_decision.offers, pure.offers,
        "the engine decides otherwise"
    );
    drop(loaded);

    let mut group = c.benchmark_group("arbitration");
    group
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(8))
        .sample_size(60);

    for ((name, scenario), arbitrator) in scenarios.iter().zip(&arbitrators) {
        let input = scenario.input();
        let request = &scenario.request;
        group.bench_function(BenchmarkId::new(*name, "cx"), |b| {
            b.iter(|| arbitrator.decide(black_box(&input), request, DecisionId::new("d-bench")));
        });
    }

    let baseline = CelPipeline::new(telco_1k, Arc::clone(arbitrator_1k.model()));
    let input = telco_1k.input();
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(10));
    group.bench_function(BenchmarkId::new("telco-1k", "cel-interpreted"), |b| {
        b.iter(|| baseline.decide(black_box(&input), &telco_1k.request));
    });

    group
        .sample_size(60)
        .warm_up_time(Duration::from_secs(3))
        .measurement_time(Duration::from_secs(10));
    let mut loaded = load_engine(&rt, telco_1k);
    group.bench_function(BenchmarkId::new("telco-1k", "engine-memory"), |b| {
        b.iter_custom(|iters| {
            let mut timed = Duration::ZERO;
            let mut left = iters;
            while left > 0 {
                if loaded.decisions >= RESET_AT {
                    // Outside the timed region: drop the full store, load a fresh one.
                    loaded = load_engine(&rt, telco_1k);
                }
                let n = left.min(RESET_AT - loaded.decisions);
                let engine = &loaded.engine;
                timed += rt.block_on(async {
                    let started = Instant::now();
                    for _ in 0..n {
                        black_box(engine.decide(&telco_1k.request).await.unwrap());
                    }
                    started.elapsed()
                });
                loaded.decisions += n;
                left -= n;
            }
            timed
        });
    });
    drop(loaded);

    // Dry runs over many customers (what `decide_batch` does from Python): `preview_many`
    // reads every state with one `visit_decision_states` call; the baseline previews the same
    // customers one `preview` at a time, one `decision_state` each. The shape of the Python
    // bench: telco-100 with 40 touchpoints and 10 contact entries per customer.
    let many = ScenarioSpec::telco_100()
        .with_touchpoints(40)
        .with_contacts(10)
        .generate();
    let people = many.customers(1_000);
    let engine = load_many(&rt, Arc::new(MemoryStore::new()), &many, &people);
    let requests: Vec<DecisionRequest> = people.iter().map(|p| p.request.clone()).collect();
    let previews = rt.block_on(engine.preview_many(&requests)).unwrap();
    for (request, preview) in requests.iter().zip(&previews) {
        let one = rt.block_on(engine.preview(request)).unwrap();
        assert_eq!(
            preview.as_ref().unwrap().offers,
            one.offers,
            "preview_many differs"
        );
    }
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(8));
    bench_previews(&mut group, &rt, "", &engine, &requests);
    drop(engine);

    // The same on PostgreSQL: a fresh database of the harness's server (DATABASE_URL or a
    // throwaway cluster), loaded the same way.
    let store: Arc<dyn Store> = Arc::new(rt.block_on(harness::test_store()).unwrap());
    let engine = Engine::new(store).with_clock(Arc::new(ManualClock::new(telco_1k.now)));
    rt.block_on(telco_1k.load_into(&engine)).unwrap();
    let decision = rt.block_on(engine.decide(&telco_1k.request)).unwrap();
    assert_eq!(
        decision.offers, pure.offers,
        "the engine on PostgreSQL decides otherwise"
    );
    group.bench_function(BenchmarkId::new("telco-1k", "engine-postgres"), |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(engine.decide(&telco_1k.request).await.unwrap()) });
    });

    group.finish();
}

criterion_group!(benches, arbitration);
criterion_main!(benches);
