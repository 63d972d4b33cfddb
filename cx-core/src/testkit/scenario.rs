//! Arbitration scenarios: a seeded, reproducible catalogue of offers with their rules, one
//! customer with a history, and the request a decision answers — everything
//! [`Arbitrator::decide`] reads, at a realistic size, for benchmarks and experiments.
//!
//! ```
//! use cx_core::model::DecisionId;
//! use cx_core::testkit::scenario::{ScenarioSpec, stage_histogram};
//!
//! let scenario = ScenarioSpec::telco_100().generate();
//! let arbitrator = scenario.arbitrator()?;
//! let decision = arbitrator.decide(&scenario.input(), &scenario.request, DecisionId::new("d-1"));
//! assert_eq!(decision.offers.len(), 3);
//! // Where every candidate stopped, in pipeline order.
//! let stages = stage_histogram(&decision);
//! assert_eq!(stages.iter().map(|(_, n)| n).sum::<usize>(), decision.explanations().len());
//! // Same spec, same scenario.
//! assert_eq!(scenario, scenario.spec.generate());
//! # Ok::<(), cx_core::Error>(())
//! ```
//!
//! # Presets
//!
//! A mobile operator's catalogue, in three sizes of the same shape:
//!
//! | preset | offers | categories | offers per category |
//! |---|---|---|---|
//! | [`ScenarioSpec::telco_100`] | 100 | 20 | 5 |
//! | [`ScenarioSpec::telco_1k`] | 1,000 | 20 | 50 |
//! | [`ScenarioSpec::telco_10k`] | 10,000 | 50 | 200 |
//!
//! All three have seed 42, one customer with 200 touchpoints over the last 30 days and 50
//! contact-history entries over the last 60 days, and a request for the top 3 offers (at most
//! one per category) on the `app` channel at placement `home_banner`, with explanations on and
//! greedy selection, at 2026-11-22T12:00:00Z. In a release build, generating telco-1k takes
//! about 4 ms and telco-10k about 40 ms; compiling their catalogues takes longer (about 0.1 s
//! and 1 s, mostly parsing 1,200 and 12,000 rules with the `cel` crate's parser).
//!
//! # The catalogue
//!
//! - **Categories** come from 20 families (`data-addon`, `roaming`, `plan-upgrade`,
//!   `device-upgrade`, `accessory`, `insurance`, `streaming`, `family-plan`, `broadband`, `tv`,
//!   `loyalty`, `retention`, `security`, `cloud`, `gaming`, `music`, `payments`, `smart-home`,
//!   `wearables`, `care`); with more than 20 categories the families repeat (`roaming-2`...).
//!   Offers are dealt to categories in turn; ids are `<category>-<n>` (`roaming-0007`).
//! - **Channels**: about 78 % of the offers go out on `app` (alone or with `web`, `sms`,
//!   `email`, `store`), the rest only on other channels, so they are not candidates.
//! - **Validity**: about 4 % have expired and 3 % start later; 20 % run in a window around now.
//! - **Consent purpose**: `marketing` for most; `service` for care offers; `partner_marketing`
//!   for some partner offers (streaming, gaming, music) and 3 % of the rest, which the customer
//!   has denied on `app`.
//! - **Eligibility**: every offer has a rule of 2 to 4 clauses joined by `&&`: first its
//!   family's signature clause (data usage for data add-ons, travel for roaming passes, the
//!   phone brand for upgrades...), then clauses from a pool over customer attributes, features
//!   and the request context: `customer.plan in ["S", "M"]`, `customer.tenure_months >= 12`,
//!   `features.data_used_gb / customer.data_cap_gb > 0.80`, `context.channel == "app"`,
//!   `customer.region == "north"`, `has(customer.contract_end_at)`,
//!   `customer.device_model.startsWith("nova")`,
//!   `now - customer.signed_up_at > duration("2160h")`,
//!   `customer.contract_end_at - now < duration("1440h")`, `features.product_views_10m >= 2`,
//!   `"pulse-watch" in customer.devices`, `context.app_version.startsWith("6.")`,
//!   `(customer.region == "east" || customer.frequent_traveller)`... Durations are written in
//!   hours, so the rules also run on a stock CEL interpreter (which has no `d` unit), and
//!   arithmetic uses double literals (`* 6.0`), which CEL does not mix with ints.
//!
//!   The rules are drawn *for the scenario's customer*: each offer's rule holds for them with
//!   probability [`ScenarioSpec::eligible_share`] (45 %), and a rule that does not hold has one
//!   or two false clauses at random positions; about one false clause in ten reads an
//!   attribute the customer does not have (`customer.port_in_from`), so the rule is undecided,
//!   as with real data. Other customers ([`Scenario::customers`]) meet the same rules as
//!   written, so their shares vary.
//! - **Suitability**: [`ScenarioSpec::suitability_share`] (20 %) of the offers have a
//!   suitability rule — `offer.price < customer.expected_overage_usd` (add-ons),
//!   `offer.monthly_fee - customer.monthly_fee < customer.expected_overage_usd` (plans),
//!   `offer.price <= customer.arpu_usd * 6.0` (devices), `offer.benefit > offer.price`
//!   (services) — which holds for the customer three times in four.
//! - **Offer fields**: `price` on every offer, `monthly_fee` on plans, `data_gb` on data
//!   add-ons, `partner` on partner offers; a value (margin) by family; a lever other than 1 on
//!   20 %; context weights (`app`, `home_banner`) on 25 %.
//! - **Contact policy**, exactly three catalogue-wide rules: at most 3 `shown` per offer per 7
//!   days; at most 5 `shown` per category per 30 days; a 14-day suppression of a category after
//!   2 rejections in it within 30 days.
//! - **Budgets**: `device-subsidy` (250 shown a day; used up), on 40 % of the phone upgrades;
//!   `retention-credits` (5,000 accepted a month; 3,120 used), on the retention offers;
//!   `partner-streaming` (2,000,000 shown in total; 812,345 used), on partner offers. The use
//!   is in [`Scenario::budget_used`].
//! - **Features** (8, over the customer's touchpoints): `data_used_gb` (sum of `data_gb` of
//!   `usage`, 30 days), `roaming_days_30d` (count of `usage` with the filter
//!   `touchpoint.roaming`), `product_views_10m` and `product_views_1d` (count of
//!   `product_view`), `distinct_products_7d` (distinct `product`), `last_page` (last `page` of
//!   a `page_view`, 1 day), `support_contacts_30d` (count of `support_contact` and
//!   `complaint`), `avg_dwell_7d` (average `dwell_seconds` of `page_view`).
//! - **Arbitration**: `k` 3, greedy, every score factor on, the default prior, a fallback
//!   offer (a care offer), and learned propensities: [`Scenario::trials`] gives each offer 0 to
//!   120 resolved trials with an acceptance rate of 2 % to 30 %, which
//!   [`Scenario::train`] feeds to a propensity model.
//!
//! Every attribute a rule reads is declared in the catalogue's `schema`; the catalogue
//! validates and compiles ([`CompiledCatalog::compile`]).
//!
//! # The customer
//!
//! `c-00000`, near their data cap (88 % to 105 % of it used, the seed story: an expected
//! overage they would pay for), on plan S, M or L, with a tenure of 6 to 65 months, a phone
//! (and sometimes a tablet or a watch), usually a contract, marketing consent on `app`, `sms`,
//! `email` and `web`, service consent on `app` and `sms`, and `partner_marketing` denied on
//! `app`. Their touchpoints: one `usage` record a day (`data_gb`, `roaming`), then page views
//! (`page`, `dwell_seconds`), product views (`product`, `category`, `price`, `dwell_seconds`),
//! carts, purchases, support contacts and messages, with a live session of product views in
//! the last 10 minutes.
//!
//! Their contact history is built so the contact policy bites: two eligible offers shown 3
//! times in the last 7 days (capped), a category shown 5 times in the last 30 days (capped), a
//! category rejected twice, the last time within 14 days (suppressed), and other episodes —
//! `shown`, then sometimes `accepted`, `rejected` or `ignored` — that do not trigger a rule.
//!
//! # What a decision sees
//!
//! For telco-1k with the default seed, where each of the 1,000 offers stopped
//! ([`stage_histogram`]; offers not on `app` are not candidates):
//!
//! | stage | offers |
//! |---|---|
//! | not on the channel (not candidates) | 228 |
//! | candidates: not valid now | 58 |
//! | consent | 67 |
//! | eligibility | 371 |
//! | contact policy | 24 |
//! | budget | 6 |
//! | suitability | 16 |
//! | selection (scored, not picked) | 227 |
//! | selected | 3 |
//!
//! So 43 % of the 647 candidates that reach the eligibility rule pass it, one in eleven of those
//! is held back by the contact history, and 230 are scored. The tests keep these shares in
//! range for eight seeds.
//!
//! # Reproducibility
//!
//! The same spec gives the same scenario: the generator draws from the named Xoshiro256++
//! algorithm, in independent streams per part (customer, touchpoints, catalogue, history,
//! trials), and uses no hash-map iteration order and no clock.
//!
//! [`Arbitrator::decide`]: crate::arbitration::Arbitrator::decide

use crate::Engine;
use crate::arbitration::{
    Arbitrator, BetaBernoulli, CompiledCatalog, DecisionInput, PropensityModel,
};
use crate::error::Result;
use crate::model::{
    Aggregation, ArbitrationConfig, Attributes, Budget, BudgetCounts, BudgetPeriod, Catalog,
    Category, Channel, Consent, ContactEvent, ContactRule, ContactScope, Customer, CustomerId,
    Decision, DecisionId, DecisionRequest, ExplanationRef, Exploration, Feature, FeatureId, Kind,
    Name, Offer, OfferId, Outcome, OutcomeKind, PipelineStage, Purpose, RuleText, Schema,
    SelectedOffer, Span, Text, Timestamp, Touchpoint, Value, ValueType,
};
use crate::store::{BudgetKey, CatalogVersion};
use chrono::{DateTime, TimeDelta, Utc};
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

/// What scenario to generate. Start from a preset and change what you need.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ScenarioSpec {
    /// The seed: the same spec gives the same scenario.
    pub seed: u64,
    /// Number of offers.
    pub offers: usize,
    /// Number of categories (at least 1).
    pub categories: usize,
    /// Touchpoints of the customer, over the 30 days before `now`.
    pub touchpoints: usize,
    /// Entries of the customer's contact history, over the 60 days before `now`.
    pub contacts: usize,
    /// Offers per decision.
    pub k: u32,
    /// The instant of the decision.
    pub now: Timestamp,
    /// Share of the offers whose eligibility rule holds for the scenario's customer (0 to 1).
    pub eligible_share: f64,
    /// Share of the offers with a suitability rule (0 to 1).
    pub suitability_share: f64,
    /// Whether the request keeps the explanation.
    pub explain: bool,
    /// The catalogue's exploration policy.
    pub exploration: Exploration,
}

impl Default for ScenarioSpec {
    /// [`ScenarioSpec::telco_1k`].
    fn default() -> Self {
        ScenarioSpec::telco_1k()
    }
}

impl ScenarioSpec {
    /// 100 offers in 20 categories.
    pub fn telco_100() -> Self {
        ScenarioSpec::telco(100, 20)
    }

    /// 1,000 offers in 20 categories.
    pub fn telco_1k() -> Self {
        ScenarioSpec::telco(1_000, 20)
    }

    /// 10,000 offers in 50 categories.
    pub fn telco_10k() -> Self {
        ScenarioSpec::telco(10_000, 50)
    }

    fn telco(offers: usize, categories: usize) -> Self {
        ScenarioSpec {
            seed: 42,
            offers,
            categories,
            touchpoints: 200,
            contacts: 50,
            k: 3,
            // 2026-11-22T12:00:00Z
            now: DateTime::from_timestamp(1_795_348_800, 0).unwrap_or(DateTime::UNIX_EPOCH),
            eligible_share: 0.45,
            suitability_share: 0.2,
            explain: true,
            exploration: Exploration::Greedy,
        }
    }

    /// Uses `seed`.
    #[must_use]
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Generates `n` offers.
    #[must_use]
    pub fn with_offers(mut self, n: usize) -> Self {
        self.offers = n;
        self
    }

    /// Deals the offers into `n` categories.
    #[must_use]
    pub fn with_categories(mut self, n: usize) -> Self {
        self.categories = n;
        self
    }

    /// Gives the customer `n` touchpoints.
    #[must_use]
    pub fn with_touchpoints(mut self, n: usize) -> Self {
        self.touchpoints = n;
        self
    }

    /// Gives the customer `n` contact-history entries.
    #[must_use]
    pub fn with_contacts(mut self, n: usize) -> Self {
        self.contacts = n;
        self
    }

    /// Asks for `k` offers per decision.
    #[must_use]
    pub fn with_k(mut self, k: u32) -> Self {
        self.k = k;
        self
    }

    /// Decides at `now`.
    #[must_use]
    pub fn with_now(mut self, now: Timestamp) -> Self {
        self.now = now;
        self
    }

    /// Makes `share` of the offers eligible for the scenario's customer.
    #[must_use]
    pub fn with_eligible_share(mut self, share: f64) -> Self {
        self.eligible_share = share;
        self
    }

    /// Gives `share` of the offers a suitability rule.
    #[must_use]
    pub fn with_suitability_share(mut self, share: f64) -> Self {
        self.suitability_share = share;
        self
    }

    /// Keeps (or not) the explanation of the decision.
    #[must_use]
    pub fn with_explain(mut self, explain: bool) -> Self {
        self.explain = explain;
        self
    }

    /// Selects under `exploration`.
    #[must_use]
    pub fn with_exploration(mut self, exploration: Exploration) -> Self {
        self.exploration = exploration;
        self
    }

    /// Generates the scenario.
    pub fn generate(&self) -> Scenario {
        Scenario::generate(self)
    }
}

/// A generated scenario: a catalogue, one customer with their touchpoints and contact history,
/// the budgets' use and a request, at one instant.
#[derive(Clone, PartialEq)]
#[non_exhaustive]
pub struct Scenario {
    /// The spec it was generated from.
    pub spec: ScenarioSpec,
    /// The catalogue (validates and compiles).
    pub catalog: Catalog,
    /// The customer.
    pub customer: Customer,
    /// Their touchpoints, oldest first.
    pub touchpoints: Vec<Touchpoint>,
    /// Their contact history, oldest first.
    pub contacts: Vec<ContactEvent>,
    /// The request.
    pub request: DecisionRequest,
    /// The instant of the decision.
    pub now: Timestamp,
    /// How much of each budget is used, in catalogue order.
    pub budget_used: Vec<u64>,
    /// Resolved trials of each offer, in catalogue order: (accepted, rejected or ignored).
    pub trials: Vec<(u32, u32)>,
}

impl fmt::Debug for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scenario")
            .field("spec", &self.spec)
            .field("offers", &self.catalog.offers.len())
            .field("customer", &self.customer.id)
            .field("touchpoints", &self.touchpoints.len())
            .field("contacts", &self.contacts.len())
            .field("now", &self.now)
            .finish()
    }
}

/// Another customer for the same catalogue (see [`Scenario::customers`]).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ScenarioCustomer {
    /// The customer.
    pub customer: Customer,
    /// Their touchpoints, oldest first.
    pub touchpoints: Vec<Touchpoint>,
    /// Their contact history, oldest first.
    pub contacts: Vec<ContactEvent>,
    /// The scenario's request, for this customer.
    pub request: DecisionRequest,
}

impl Scenario {
    /// Generates the scenario `spec` describes.
    pub fn generate(spec: &ScenarioSpec) -> Scenario {
        let now = spec.now;
        let channel = Channel::App;
        let profile = Profile::draw(
            &mut Dice::new(spec.seed, STREAM_CUSTOMER),
            CustomerId::new("c-00000"),
            now,
            true,
        );
        let touchpoints = touchpoints(
            &mut Dice::new(spec.seed, STREAM_TOUCHPOINTS),
            &profile,
            spec.touchpoints,
            now,
        );
        let facts = Facts::of(&profile, &touchpoints, now);
        let (catalog, offers) = catalog(spec, &facts, &mut Dice::new(spec.seed, STREAM_CATALOG));
        let contacts = designed_history(
            &mut Dice::new(spec.seed, STREAM_HISTORY),
            &profile.id,
            &offers,
            spec.contacts,
            now,
        );
        let trials = trials(&mut Dice::new(spec.seed, STREAM_TRIALS), offers.len());
        Scenario {
            spec: spec.clone(),
            request: profile.request(spec, channel),
            customer: profile.customer(),
            touchpoints,
            contacts,
            now,
            budget_used: BUDGETS.iter().map(|b| b.used).collect(),
            trials,
            catalog,
        }
    }

    /// The catalogue, compiled (as version 1).
    pub fn compiled(&self) -> Result<Arc<CompiledCatalog>> {
        CompiledCatalog::compile(self.catalog.clone(), 1).map(Arc::new)
    }

    /// A [`BetaBernoulli`] model bound to `catalog` and trained with [`Scenario::trials`].
    pub fn model(&self, catalog: &CompiledCatalog) -> Arc<BetaBernoulli> {
        let model = Arc::new(BetaBernoulli::new());
        model.bind(
            &catalog.offer_ids(),
            catalog.propensity_segment_count(),
            catalog.config().prior,
        );
        self.train(&*model);
        model
    }

    /// Feeds [`Scenario::trials`] to `model`, which must be bound to the catalogue (an
    /// engine's model is, once the catalogue is loaded).
    pub fn train(&self, model: &dyn PropensityModel) {
        for (offer, &(accepted, failed)) in self.catalog.offers.iter().zip(&self.trials) {
            for _ in 0..accepted {
                model.observe(&offer.id, None, true);
            }
            for _ in 0..failed {
                model.observe(&offer.id, None, false);
            }
        }
    }

    /// An arbitrator over the compiled catalogue, with a trained [`BetaBernoulli`] model.
    pub fn arbitrator(&self) -> Result<Arbitrator> {
        let catalog = self.compiled()?;
        let model = self.model(&catalog);
        Ok(Arbitrator::new(catalog, model))
    }

    /// What a decision for the scenario's customer reads.
    pub fn input(&self) -> DecisionInput<'_> {
        DecisionInput {
            customer: &self.customer,
            touchpoints: &self.touchpoints,
            features: None,
            customer_inputs: None,
            feature_inputs: None,
            contact_inputs: None,
            contacts: &self.contacts,
            budget_used: &self.budget_used,
            now: self.now,
        }
    }

    /// What a decision for `customer` reads (with the scenario's budgets and instant).
    pub fn input_for<'a>(&'a self, customer: &'a ScenarioCustomer) -> DecisionInput<'a> {
        DecisionInput {
            customer: &customer.customer,
            touchpoints: &customer.touchpoints,
            features: None,
            customer_inputs: None,
            feature_inputs: None,
            contact_inputs: None,
            contacts: &customer.contacts,
            budget_used: &self.budget_used,
            now: self.now,
        }
    }

    /// The contact history as a store records it: the decisions it comes from and their
    /// outcomes (see [`contact_records`]).
    pub fn contact_records(&self) -> (Vec<Decision>, Vec<Outcome>) {
        contact_records(&self.contacts)
    }

    /// `n` more customers (`c-00001`, `c-00002`...) for the same catalogue, drawn from the same
    /// distributions as the scenario's customer but not calibrated against the rules, each
    /// with [`ScenarioSpec::touchpoints`] touchpoints and [`ScenarioSpec::contacts`] contact
    /// entries over random offers. Customer `i` depends only on the seed, `i` and the
    /// catalogue, so a longer list starts with the same customers.
    pub fn customers(&self, n: usize) -> Vec<ScenarioCustomer> {
        let spec = &self.spec;
        let channel = self.request.channel.clone();
        let offers = offer_meta(&self.catalog, &channel, self.now);
        (0..n)
            .map(|i| {
                let stream = STREAM_CUSTOMERS + 4 * i as u64;
                let id = CustomerId::new(numbered("c-", i + 1, 5));
                let profile = Profile::draw(&mut Dice::new(spec.seed, stream), id, self.now, false);
                let touchpoints = touchpoints(
                    &mut Dice::new(spec.seed, stream + 1),
                    &profile,
                    spec.touchpoints,
                    self.now,
                );
                let contacts = random_history(
                    &mut Dice::new(spec.seed, stream + 2),
                    &profile.id,
                    &offers,
                    spec.contacts,
                    self.now,
                );
                ScenarioCustomer {
                    request: profile.request(spec, channel.clone()),
                    customer: profile.customer(),
                    touchpoints,
                    contacts,
                }
            })
            .collect()
    }

    /// Loads the scenario into `engine`: stores and loads the catalogue, upserts the customer,
    /// ingests the touchpoints, records the decisions and outcomes of the contact history,
    /// consumes the budgets' use (for the periods that hold [`Scenario::now`]) and trains the
    /// engine's propensity model. Give the engine a clock set to [`Scenario::now`]
    /// ([`ManualClock`](crate::ManualClock)) so its decisions see what the pure ones see.
    pub async fn load_into(&self, engine: &Engine) -> Result<CatalogVersion> {
        let version = engine.load_catalog(self.catalog.clone()).await?;
        let store = engine.store();
        for (budget, used) in self.catalog.budgets.iter().zip(&self.budget_used) {
            if *used > 0 {
                let key = BudgetKey::new(budget.id.clone(), budget.period_key(self.now));
                store
                    .consume_budget(&key, budget.limit.max(*used), *used)
                    .await?;
            }
        }
        self.train(engine.propensity_model().as_ref());
        load_customer(engine, &self.customer, &self.touchpoints, &self.contacts).await?;
        Ok(version)
    }
}

impl ScenarioCustomer {
    /// The contact history as a store records it (see [`contact_records`]).
    pub fn contact_records(&self) -> (Vec<Decision>, Vec<Outcome>) {
        contact_records(&self.contacts)
    }

    /// Upserts the customer into `engine`'s store, ingests their touchpoints and records their
    /// contact history.
    pub async fn load_into(&self, engine: &Engine) -> Result<()> {
        load_customer(engine, &self.customer, &self.touchpoints, &self.contacts).await
    }
}

async fn load_customer(
    engine: &Engine,
    customer: &Customer,
    touchpoints: &[Touchpoint],
    contacts: &[ContactEvent],
) -> Result<()> {
    engine.upsert_customers(vec![customer.clone()]).await?;
    engine.ingest(touchpoints.to_vec()).await?;
    let store = engine.store();
    let (decisions, outcomes) = contact_records(contacts);
    for decision in &decisions {
        store.record_decision(decision).await?;
    }
    for outcome in &outcomes {
        store.record_outcome(outcome).await?;
    }
    Ok(())
}

/// The decisions and outcomes a store turns into `contacts`: one decision per decision id (on
/// the channel, at the instant of its first entry, choosing its offers), and one outcome per
/// entry. Recording them gives back `contacts` as the customer's contact history.
pub fn contact_records(contacts: &[ContactEvent]) -> (Vec<Decision>, Vec<Outcome>) {
    let mut decisions: Vec<Decision> = Vec::new();
    let mut index: BTreeMap<&DecisionId, usize> = BTreeMap::new();
    let mut outcomes = Vec::with_capacity(contacts.len());
    for event in contacts {
        let i = *index.entry(&event.decision).or_insert_with(|| {
            decisions.push(Decision {
                id: event.decision.clone(),
                customer: event.customer.clone(),
                channel: event.channel.clone(),
                placement: None,
                at: event.at,
                catalog_version: 1,
                offers: Vec::new(),
                context: Attributes::new(),
                segment: None,
                explanation: ExplanationRef::default(),
            });
            decisions.len() - 1
        });
        if let Some(decision) = decisions.get_mut(i) {
            decision.at = decision.at.min(event.at);
            if decision.selected(&event.offer).is_none() {
                decision.offers.push(SelectedOffer {
                    offer: event.offer.clone(),
                    category: event.category.clone(),
                    rank: u32::try_from(decision.offers.len()).unwrap_or(u32::MAX),
                    score: 1.0,
                    probability: 1.0,
                });
            }
        }
        outcomes.push(Outcome {
            decision: event.decision.clone(),
            offer: event.offer.clone(),
            kind: event.kind,
            at: event.at,
        });
    }
    (decisions, outcomes)
}

/// How many candidates of `decision` stopped at each stage, every stage in pipeline order
/// (from the decision's explanation; all zero if it kept none).
pub fn stage_histogram(decision: &Decision) -> Vec<(PipelineStage, usize)> {
    let mut counts: Vec<(PipelineStage, usize)> = STAGES.iter().map(|s| (*s, 0)).collect();
    for e in decision.explanations() {
        if let Some(slot) = counts.iter_mut().find(|(s, _)| *s == e.stage) {
            slot.1 += 1;
        }
    }
    counts
}

static STAGES: [PipelineStage; 9] = [
    PipelineStage::Candidates,
    PipelineStage::Consent,
    PipelineStage::Eligibility,
    PipelineStage::ContactPolicy,
    PipelineStage::Budget,
    PipelineStage::Suitability,
    PipelineStage::Selection,
    PipelineStage::Selected,
    PipelineStage::Fallback,
];

// ---------------------------------------------------------------------------------------------
// Tables.

const STREAM_CUSTOMER: u64 = 1;
const STREAM_TOUCHPOINTS: u64 = 2;
const STREAM_CATALOG: u64 = 3;
const STREAM_HISTORY: u64 = 4;
const STREAM_TRIALS: u64 = 5;
/// Customer `i` of [`Scenario::customers`] uses streams `STREAM_CUSTOMERS + 4 i ..+3`.
const STREAM_CUSTOMERS: u64 = 1_000;

const HOUR_US: i64 = 3_600_000_000;
const DAY_US: i64 = 24 * HOUR_US;
/// A month in rules: 30 days, written in hours.
const MONTH_H: i64 = 720;

#[derive(Clone, Copy, Default, PartialEq)]
struct Plan {
    name: &'static str,
    cap_gb: f64,
    fee: f64,
}

const fn plan(name: &'static str, cap_gb: f64, fee: f64) -> Plan {
    Plan { name, cap_gb, fee }
}

const PLANS: &[(Plan, f64)] = &[
    (plan("S", 5.0, 15.0), 30.0),
    (plan("M", 20.0, 25.0), 35.0),
    (plan("L", 50.0, 35.0), 25.0),
    (plan("XL", 200.0, 55.0), 10.0),
];

const REGIONS: &[&str] = &["north", "south", "east", "west", "central"];
const AGE_BANDS: &[(&str, f64)] = &[
    ("18-24", 12.0),
    ("25-34", 20.0),
    ("35-44", 20.0),
    ("45-54", 18.0),
    ("55-64", 16.0),
    ("65+", 14.0),
];
const PHONES: &[(&str, f64)] = &[
    ("nova-5", 14.0),
    ("nova-6", 18.0),
    ("nova-6-pro", 12.0),
    ("pulse-a3", 20.0),
    ("pulse-a5", 22.0),
    ("orbit-fold", 4.0),
];
const BRANDS: &[&str] = &["nova", "pulse", "orbit"];
const DEVICES: &[&str] = &[
    "nova-5",
    "nova-6",
    "nova-6-pro",
    "pulse-a3",
    "pulse-a5",
    "orbit-fold",
    "tab-s9",
    "pulse-watch",
];
const OS: &[&str] = &["android", "ios"];
const APP_VERSIONS: &[(&str, f64)] = &[("6.4.1", 70.0), ("6.3.0", 20.0), ("5.9.2", 10.0)];
const RIVALS: &[&str] = &["rival-mobile", "budget-tel"];
const NAMES: &[&str] = &[
    "Ada Costa",
    "Ben Okafor",
    "Chen Wang",
    "Elena Rossi",
    "Hana Suzuki",
    "Ivan Novak",
    "Maya Patel",
    "Omar Ahmed",
];
const PAGES: &[(&str, f64)] = &[
    ("home", 30.0),
    ("usage", 20.0),
    ("bill", 12.0),
    ("shop", 15.0),
    ("plans", 10.0),
    ("roaming", 5.0),
    ("support", 8.0),
];

#[derive(Clone, Copy, Default)]
struct Product {
    id: &'static str,
    category: &'static str,
    price: f64,
}

const fn product(id: &'static str, category: &'static str, price: f64) -> Product {
    Product {
        id,
        category,
        price,
    }
}

const PRODUCTS: &[(Product, f64)] = &[
    (product("nova-6-pro", "phone", 899.0), 12.0),
    (product("nova-6", "phone", 699.0), 14.0),
    (product("pulse-a5", "phone", 349.0), 12.0),
    (product("pulse-a3", "phone", 229.0), 8.0),
    (product("orbit-fold", "phone", 1499.0), 5.0),
    (product("case", "accessory", 29.0), 6.0),
    (product("charger-65w", "accessory", 39.0), 4.0),
    (product("earbuds-pro", "accessory", 129.0), 6.0),
    (product("screen-guard", "accessory", 15.0), 3.0),
    (product("plan-l", "plan", 35.0), 6.0),
    (product("plan-xl", "plan", 55.0), 4.0),
    (product("data-addon-5gb", "addon", 10.0), 8.0),
    (product("roaming-pass-7d", "addon", 15.0), 4.0),
    (product("device-insurance", "addon", 9.0), 3.0),
];

/// The clauses eligibility rules are made of; each can be written to hold or not for a
/// customer (see [`Facts::clause`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Clause {
    Plan,
    Tenure,
    DataRatio,
    Channel,
    Region,
    HasContract,
    DeviceBrand,
    SignedUp,
    ContractEnds,
    Views1d,
    Views10m,
    Distinct7d,
    Traveller,
    RoamingDays,
    DeviceOwned,
    AgeBand,
    Support,
    Churn,
    Os,
    AppVersion,
    LastPage,
    Session,
    Arpu,
    Dwell,
    RegionOrTraveller,
    /// Reads `customer.port_in_from`, which the scenario's customer does not have.
    PortIn,
}

/// The clauses that follow a family's signature.
const POOL: &[Clause] = &[
    Clause::Plan,
    Clause::Tenure,
    Clause::DataRatio,
    Clause::Channel,
    Clause::Region,
    Clause::HasContract,
    Clause::DeviceBrand,
    Clause::SignedUp,
    Clause::ContractEnds,
    Clause::Views1d,
    Clause::Views10m,
    Clause::Distinct7d,
    Clause::Traveller,
    Clause::RoamingDays,
    Clause::DeviceOwned,
    Clause::AgeBand,
    Clause::Support,
    Clause::Churn,
    Clause::Os,
    Clause::AppVersion,
    Clause::LastPage,
    Clause::Session,
    Clause::Arpu,
    Clause::Dwell,
    Clause::RegionOrTraveller,
];

/// How a family's suitability rule reads.
#[derive(Clone, Copy, PartialEq)]
enum Suit {
    /// `offer.price < customer.expected_overage_usd`.
    PriceVsOverage,
    /// `offer.monthly_fee - customer.monthly_fee < customer.expected_overage_usd`.
    FeeVsOverage,
    /// `offer.price <= customer.arpu_usd * 6.0`.
    Affordable,
    /// `offer.benefit > offer.price`.
    Benefit,
}

#[derive(Clone, Copy, PartialEq)]
enum Budgeted {
    No,
    /// 40 % of the family's offers draw on `device-subsidy`.
    Subsidy,
    /// Every offer draws on `retention-credits`.
    Retention,
}

struct Family {
    name: &'static str,
    title: &'static str,
    signature: &'static [Clause],
    price: (f64, f64),
    value: (f64, f64),
    suit: Suit,
    /// Offers carry a `monthly_fee` (plans): a fee above the customer's by this range.
    monthly_fee: Option<(f64, f64)>,
    data_gb: bool,
    partner: bool,
    budget: Budgeted,
    purpose: &'static str,
}

const fn family(
    name: &'static str,
    title: &'static str,
    signature: &'static [Clause],
    price: (f64, f64),
    value: (f64, f64),
    suit: Suit,
) -> Family {
    Family {
        name,
        title,
        signature,
        price,
        value,
        suit,
        monthly_fee: None,
        data_gb: false,
        partner: false,
        budget: Budgeted::No,
        purpose: "marketing",
    }
}

static FAMILIES: [Family; 20] = [
    Family {
        data_gb: true,
        ..family(
            "data-addon",
            "Data add-on",
            &[Clause::DataRatio],
            (5.0, 25.0),
            (3.0, 12.0),
            Suit::PriceVsOverage,
        )
    },
    family(
        "roaming",
        "Roaming pass",
        &[Clause::Traveller, Clause::RoamingDays],
        (5.0, 30.0),
        (4.0, 15.0),
        Suit::PriceVsOverage,
    ),
    Family {
        monthly_fee: Some((5.0, 30.0)),
        ..family(
            "plan-upgrade",
            "Plan upgrade",
            &[Clause::Plan, Clause::DataRatio],
            (0.0, 0.0),
            (15.0, 45.0),
            Suit::FeeVsOverage,
        )
    },
    Family {
        budget: Budgeted::Subsidy,
        ..family(
            "device-upgrade",
            "Phone upgrade",
            &[Clause::DeviceBrand, Clause::SignedUp],
            (150.0, 1200.0),
            (40.0, 120.0),
            Suit::Affordable,
        )
    },
    family(
        "accessory",
        "Accessory",
        &[Clause::Views1d, Clause::Distinct7d],
        (10.0, 150.0),
        (3.0, 40.0),
        Suit::Affordable,
    ),
    family(
        "insurance",
        "Device insurance",
        &[Clause::DeviceOwned],
        (5.0, 15.0),
        (3.0, 9.0),
        Suit::Benefit,
    ),
    Family {
        partner: true,
        ..family(
            "streaming",
            "Streaming bundle",
            &[Clause::AgeBand],
            (5.0, 18.0),
            (2.0, 8.0),
            Suit::Benefit,
        )
    },
    Family {
        monthly_fee: Some((10.0, 40.0)),
        ..family(
            "family-plan",
            "Family plan",
            &[Clause::Tenure],
            (0.0, 0.0),
            (20.0, 50.0),
            Suit::FeeVsOverage,
        )
    },
    Family {
        monthly_fee: Some((0.0, 35.0)),
        ..family(
            "broadband",
            "Home broadband",
            &[Clause::Region],
            (0.0, 99.0),
            (20.0, 60.0),
            Suit::Benefit,
        )
    },
    Family {
        monthly_fee: Some((-5.0, 20.0)),
        ..family(
            "tv",
            "TV package",
            &[Clause::Region, Clause::HasContract],
            (0.0, 49.0),
            (8.0, 30.0),
            Suit::Benefit,
        )
    },
    family(
        "loyalty",
        "Loyalty reward",
        &[Clause::Tenure, Clause::SignedUp],
        (1.0, 5.0),
        (1.0, 6.0),
        Suit::Benefit,
    ),
    Family {
        budget: Budgeted::Retention,
        ..family(
            "retention",
            "Retention offer",
            &[Clause::ContractEnds, Clause::Churn],
            (1.0, 20.0),
            (30.0, 90.0),
            Suit::Benefit,
        )
    },
    family(
        "security",
        "Mobile security",
        &[Clause::Os],
        (2.0, 8.0),
        (2.0, 6.0),
        Suit::Benefit,
    ),
    family(
        "cloud",
        "Cloud storage",
        &[Clause::AppVersion],
        (2.0, 10.0),
        (2.0, 7.0),
        Suit::Benefit,
    ),
    Family {
        partner: true,
        ..family(
            "gaming",
            "Game pass",
            &[Clause::AgeBand, Clause::Session],
            (5.0, 15.0),
            (2.0, 8.0),
            Suit::Benefit,
        )
    },
    Family {
        partner: true,
        ..family(
            "music",
            "Music bundle",
            &[Clause::AgeBand],
            (5.0, 12.0),
            (2.0, 7.0),
            Suit::Benefit,
        )
    },
    family(
        "payments",
        "Carrier billing",
        &[Clause::Arpu],
        (1.0, 5.0),
        (1.0, 4.0),
        Suit::Benefit,
    ),
    family(
        "smart-home",
        "Smart home kit",
        &[Clause::Region, Clause::Views10m],
        (30.0, 250.0),
        (10.0, 60.0),
        Suit::Affordable,
    ),
    family(
        "wearables",
        "Watch eSIM",
        &[Clause::DeviceOwned],
        (5.0, 12.0),
        (4.0, 10.0),
        Suit::Benefit,
    ),
    Family {
        purpose: "service",
        ..family(
            "care",
            "Care & support",
            &[Clause::Support, Clause::LastPage],
            (1.0, 3.0),
            (0.5, 3.0),
            Suit::Benefit,
        )
    },
];

/// Channel sets offers go out on, with weights.
const CHANNEL_SETS: &[(&[Channel], f64)] = &[
    (&[Channel::App, Channel::Web], 30.0),
    (&[Channel::App, Channel::Sms, Channel::Email], 20.0),
    (&[Channel::App], 15.0),
    (&[Channel::App, Channel::Web, Channel::Store], 13.0),
    (&[Channel::Web], 8.0),
    (&[Channel::Sms, Channel::Email], 8.0),
    (&[Channel::Email], 4.0),
    (&[Channel::Call, Channel::Store], 2.0),
];

struct BudgetDef {
    id: &'static str,
    limit: u64,
    counts: BudgetCounts,
    period: BudgetPeriod,
    used: u64,
}

static BUDGETS: [BudgetDef; 3] = [
    BudgetDef {
        id: "device-subsidy",
        limit: 250,
        counts: BudgetCounts::Shown,
        period: BudgetPeriod::Day,
        used: 250,
    },
    BudgetDef {
        id: "retention-credits",
        limit: 5_000,
        counts: BudgetCounts::Accepted,
        period: BudgetPeriod::Month,
        used: 3_120,
    },
    BudgetDef {
        id: "partner-streaming",
        limit: 2_000_000,
        counts: BudgetCounts::Shown,
        period: BudgetPeriod::Total,
        used: 812_345,
    },
];

const PARTNER_MARKETING: Purpose = Purpose::from_static("partner_marketing");

// ---------------------------------------------------------------------------------------------
// Helpers.

/// `prefix` followed by `n` zero-padded to `width` digits.
fn numbered(prefix: &str, n: usize, width: usize) -> String {
    format!("{prefix}{n:0width$}")
}

/// `t + by` in microseconds, saturating at the ends of time.
fn shift(t: Timestamp, micros: i64) -> Timestamp {
    t.checked_add_signed(TimeDelta::microseconds(micros))
        .unwrap_or(if micros < 0 {
            DateTime::<Utc>::MIN_UTC
        } else {
            DateTime::<Utc>::MAX_UTC
        })
}

/// Microseconds from `a` to `b`.
fn micros_between(a: Timestamp, b: Timestamp) -> i64 {
    (b - a).num_microseconds().unwrap_or(i64::MAX)
}

/// SplitMix64's finaliser: a bijection on `u64`.
fn mix64(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// `x` rounded to a multiple of `step` with `f`; steps below 1 divide by their inverse, so
/// `round_to(1.08, 0.01)` is the double nearest 1.08 (YAML shows `1.08`, not
/// `1.0800000000000003`).
fn to_step(x: f64, step: f64, f: fn(f64) -> f64) -> f64 {
    if step < 1.0 {
        let per_unit = (1.0 / step).round();
        f(x * per_unit) / per_unit
    } else {
        f(x / step) * step
    }
}

fn round_to(x: f64, step: f64) -> f64 {
    to_step(x, step, f64::round)
}

fn floor_to(x: f64, step: f64) -> f64 {
    to_step(x, step, f64::floor)
}

fn ceil_to(x: f64, step: f64) -> f64 {
    to_step(x, step, f64::ceil)
}

/// `["a", "b"]`.
fn quoted(items: &[&str]) -> String {
    let items: Vec<String> = items.iter().map(|s| format!("{s:?}")).collect();
    format!("[{}]", items.join(", "))
}

/// The generator's random source, with helpers that never panic.
struct Dice(Xoshiro256PlusPlus);

impl Dice {
    /// Stream number `stream` of `seed`: streams are independent of each other.
    fn new(seed: u64, stream: u64) -> Self {
        Dice(Xoshiro256PlusPlus::seed_from_u64(mix64(
            seed ^ mix64(stream.wrapping_add(0x9e37_79b9_7f4a_7c15)),
        )))
    }

    /// Uniform in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        self.0.random::<f64>()
    }

    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// Uniform in `[0, n)`; 0 when `n` is 0 or less.
    fn below(&mut self, n: i64) -> i64 {
        if n <= 0 { 0 } else { self.0.random_range(0..n) }
    }

    /// Uniform in `[0, n)` for a length; 0 when `n` is 0.
    fn index_below(&mut self, n: usize) -> usize {
        if n == 0 { 0 } else { self.0.random_range(0..n) }
    }

    fn uniform(&mut self, low: f64, high: f64) -> f64 {
        low + (high - low) * self.unit()
    }

    /// Uniform microseconds in `[low, high)` days.
    fn days_us(&mut self, low: f64, high: f64) -> i64 {
        (self.uniform(low, high) * DAY_US as f64) as i64
    }

    /// An item drawn from a weighted table.
    fn pick<T: Copy + Default>(&mut self, table: &[(T, f64)]) -> T {
        let total: f64 = table.iter().map(|(_, w)| w).sum();
        let mut r = self.unit() * total;
        for (item, w) in table {
            if r < *w {
                return *item;
            }
            r -= w;
        }
        table.last().map(|(t, _)| *t).unwrap_or_default()
    }

    /// An item drawn uniformly.
    fn one_of<T: Copy + Default>(&mut self, items: &[T]) -> T {
        items
            .get(self.index_below(items.len()))
            .copied()
            .unwrap_or_default()
    }

    /// Up to `n` distinct items of `items`, in random order.
    fn some_of<T: Copy>(&mut self, items: &[T], n: usize) -> Vec<T> {
        let mut pool = items.to_vec();
        let mut out = Vec::with_capacity(n);
        while out.len() < n && !pool.is_empty() {
            let i = self.index_below(pool.len());
            out.push(pool.swap_remove(i));
        }
        out
    }

    /// Shuffles `items` (Fisher-Yates).
    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.index_below(i + 1);
            items.swap(i, j);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Customers.

/// What the generator knows about a customer.
struct Profile {
    id: CustomerId,
    name: &'static str,
    plan: Plan,
    region: &'static str,
    tenure_months: u32,
    signed_up_at: Timestamp,
    contract_end_at: Option<Timestamp>,
    port_in_from: Option<&'static str>,
    device_model: &'static str,
    devices: Vec<&'static str>,
    age_band: &'static str,
    traveller: bool,
    churn_risk: f64,
    arpu_usd: f64,
    /// Data used this cycle, as a share of the cap.
    usage_ratio: f64,
    expected_overage_usd: f64,
    device_os: &'static str,
    app_version: &'static str,
    session_pages: u32,
    marketing_on_app: bool,
    partner_on_app: bool,
}

impl Profile {
    /// A customer; the scenario's own (`calibrated`) is near their data cap, has used the
    /// operator for a while and has granted marketing on the app.
    fn draw(dice: &mut Dice, id: CustomerId, now: Timestamp, calibrated: bool) -> Profile {
        let plan = if calibrated {
            dice.pick(PLANS.get(..3).unwrap_or(PLANS))
        } else {
            dice.pick(PLANS)
        };
        let usage_ratio = if calibrated {
            dice.uniform(0.88, 1.05)
        } else {
            dice.uniform(0.05, 1.0).powf(0.7) * 1.15
        };
        // A week of the cycle is left: usage goes on at the same pace, 10 USD per GB over.
        let over_gb = ((usage_ratio * 1.25 - 1.0).max(0.0) * plan.cap_gb).min(3.0);
        let mut expected_overage_usd = round_to(over_gb * 10.0, 0.5);
        if calibrated {
            expected_overage_usd = expected_overage_usd.max(6.0);
        }
        let tenure_months = if calibrated {
            6 + dice.below(60) as u32
        } else {
            (dice.uniform(0.0, 1.0).powi(2) * 120.0) as u32
        };
        let age_us =
            (f64::from(tenure_months) * 30.44 * DAY_US as f64) as i64 + dice.days_us(0.5, 30.0);
        let signed_up_at = shift(now, -age_us);
        let contract_end_at = dice.chance(if calibrated { 0.8 } else { 0.6 }).then(|| {
            let days = if calibrated {
                dice.days_us(20.0, 540.0)
            } else {
                dice.days_us(-90.0, 540.0)
            };
            shift(now, days)
        });
        let port_in_from = (!calibrated && dice.chance(0.12)).then(|| dice.one_of(RIVALS));
        let device_model = dice.pick(PHONES);
        let mut devices = vec![device_model];
        if dice.chance(0.25) {
            devices.push("tab-s9");
        }
        if dice.chance(0.2) {
            devices.push("pulse-watch");
        }
        let traveller = dice.chance(0.15);
        Profile {
            id,
            name: dice.one_of(NAMES),
            plan,
            region: dice.one_of(REGIONS),
            tenure_months,
            signed_up_at,
            contract_end_at,
            port_in_from,
            device_model,
            devices,
            age_band: dice.pick(AGE_BANDS),
            traveller,
            churn_risk: round_to(dice.uniform(0.02, 0.6), 0.01),
            arpu_usd: round_to(plan.fee + dice.uniform(0.0, 25.0), 0.01),
            usage_ratio,
            expected_overage_usd,
            device_os: dice.pick(&[("android", 65.0), ("ios", 35.0)]),
            app_version: dice.pick(APP_VERSIONS),
            session_pages: 1 + dice.below(12) as u32,
            marketing_on_app: calibrated || dice.chance(0.6),
            partner_on_app: !calibrated && dice.chance(0.2),
        }
    }

    fn brand(&self) -> &'static str {
        BRANDS
            .iter()
            .copied()
            .find(|b| self.device_model.starts_with(b))
            .unwrap_or("nova")
    }

    fn customer(&self) -> Customer {
        let mut c = Customer::new(self.id.clone())
            .with_attribute("plan", self.plan.name)
            .with_attribute("data_cap_gb", self.plan.cap_gb)
            .with_attribute("monthly_fee", self.plan.fee)
            .with_attribute("tenure_months", f64::from(self.tenure_months))
            .with_attribute("signed_up_at", self.signed_up_at)
            .with_attribute("region", self.region)
            .with_attribute("device_model", self.device_model)
            .with_attribute(
                "devices",
                Value::List(self.devices.iter().map(|d| Value::from(*d)).collect()),
            )
            .with_attribute("age_band", self.age_band)
            .with_attribute("frequent_traveller", self.traveller)
            .with_attribute("churn_risk", self.churn_risk)
            .with_attribute("arpu_usd", self.arpu_usd)
            .with_attribute("expected_overage_usd", self.expected_overage_usd)
            .with_pii_attribute("name", self.name);
        if let Some(end) = self.contract_end_at {
            c = c.with_attribute("contract_end_at", end);
        }
        if let Some(rival) = self.port_in_from {
            c = c.with_attribute("port_in_from", rival);
        }
        let since = self.signed_up_at;
        let marketing = |channel: Channel, granted: bool| {
            if granted {
                Consent::granted(channel, Purpose::MARKETING, since)
            } else {
                Consent::denied(channel, Purpose::MARKETING, since)
            }
        };
        c = c
            .with_consent(marketing(Channel::App, self.marketing_on_app))
            .with_consent(marketing(Channel::Sms, true))
            .with_consent(marketing(Channel::Email, true))
            .with_consent(marketing(Channel::Web, true))
            .with_consent(Consent::granted(Channel::App, Purpose::SERVICE, since))
            .with_consent(Consent::granted(Channel::Sms, Purpose::SERVICE, since));
        c.with_consent(if self.partner_on_app {
            Consent::granted(Channel::App, PARTNER_MARKETING, since)
        } else {
            Consent::denied(Channel::App, PARTNER_MARKETING, since)
        })
    }

    fn request(&self, spec: &ScenarioSpec, channel: Channel) -> DecisionRequest {
        let request = DecisionRequest::new(self.id.clone(), channel)
            .placement("home_banner")
            .k(spec.k)
            .context("device_os", self.device_os)
            .context("app_version", self.app_version)
            .context("session_pages", f64::from(self.session_pages))
            .seed(spec.seed);
        if spec.explain {
            request
        } else {
            request.without_explanation()
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Touchpoints.

/// `n` touchpoints of `p` over the 30 days before `now`, oldest first: one usage record a day
/// (at most 30), then web and app activity, with a live session in the last 10 minutes.
fn touchpoints(dice: &mut Dice, p: &Profile, n: usize, now: Timestamp) -> Vec<Touchpoint> {
    let subject = p.id.clone();
    let network = Channel::Other(Text::const_new("network"));
    let mut out: Vec<Touchpoint> = Vec::with_capacity(n);
    let tp = |channel: Channel, kind: Kind, at: Timestamp| {
        Touchpoint::new("t", subject.clone(), channel, kind, at)
    };

    let usage_days = n.min(30);
    let weights: Vec<f64> = (0..usage_days).map(|_| dice.uniform(0.3, 1.7)).collect();
    let total_weight: f64 = weights.iter().sum();
    let total_gb = p.usage_ratio * p.plan.cap_gb;
    let trip_start = 2 + dice.below(24);
    let trip_days = if p.traveller { 2 + dice.below(5) } else { 0 };
    for (day, w) in weights.iter().enumerate() {
        let day = day as i64 + 1;
        let at = shift(now, -day * DAY_US + dice.days_us(1.0 / 24.0, 23.0 / 24.0));
        let gb = round_to(total_gb * w / total_weight.max(f64::MIN_POSITIVE), 0.01);
        let roaming = (trip_start..trip_start + trip_days).contains(&day);
        out.push(
            tp(network.clone(), Kind::USAGE, at)
                .with_attribute("data_gb", gb)
                .with_attribute("roaming", roaming),
        );
    }

    let rest = n - usage_days;
    let live = rest.min(3 + dice.index_below(6));
    for _ in 0..live {
        let at = shift(now, -dice.days_us(20.0 / 86_400.0, 9.5 / 1_440.0));
        out.push(product_view(dice, tp(Channel::App, Kind::PRODUCT_VIEW, at)));
    }
    const KINDS: &[(u8, f64)] = &[
        (0, 42.0), // page view
        (1, 28.0), // product view
        (2, 5.0),  // add to cart
        (3, 2.0),  // purchase
        (4, 4.0),  // support contact
        (5, 1.0),  // complaint
        (6, 8.0),  // message sent
        (7, 6.0),  // message opened
    ];
    for _ in live..rest {
        let ago = if dice.chance(0.12) {
            dice.days_us(10.0 / 1_440.0, 1.0)
        } else {
            dice.days_us(1.0, 29.9)
        };
        let at = shift(now, -ago);
        let web_or_app = if dice.chance(0.7) {
            Channel::App
        } else {
            Channel::Web
        };
        let t = match dice.pick(KINDS) {
            0 => tp(web_or_app, Kind::PAGE_VIEW, at)
                .with_attribute("page", dice.pick(PAGES))
                .with_attribute("dwell_seconds", (5 + dice.below(300)) as f64),
            1 => product_view(dice, tp(web_or_app, Kind::PRODUCT_VIEW, at)),
            2 => tp(web_or_app, Kind::ADD_TO_CART, at)
                .with_attribute("product", dice.pick(PRODUCTS).id),
            3 => {
                let product = dice.pick(PRODUCTS);
                tp(web_or_app, Kind::PURCHASE, at)
                    .with_attribute("product", product.id)
                    .with_attribute("amount", product.price)
            }
            4 | 5 => {
                let kind = if dice.chance(0.2) {
                    Kind::COMPLAINT
                } else {
                    Kind::SUPPORT_CONTACT
                };
                let channel = if dice.chance(0.6) {
                    Channel::Call
                } else {
                    Channel::Chat
                };
                tp(channel, kind, at)
                    .with_attribute("topic", dice.one_of(&["billing", "network", "device"]))
                    .with_attribute("handle_seconds", (60 + dice.below(900)) as f64)
            }
            6 => {
                let channel = if dice.chance(0.5) {
                    Channel::Email
                } else {
                    Channel::Sms
                };
                tp(channel, Kind::MESSAGE_SENT, at).with_attribute("purpose", "service")
            }
            _ => tp(Channel::Email, Kind::MESSAGE_OPENED, at),
        };
        out.push(t);
    }

    out.sort_by_key(|t| t.occurred_at);
    for (i, t) in out.iter_mut().enumerate() {
        t.id = format!("{}-t{i:04}", p.id.as_str()).into();
    }
    out
}

fn product_view(dice: &mut Dice, t: Touchpoint) -> Touchpoint {
    let product = dice.pick(PRODUCTS);
    t.with_attribute("product", product.id)
        .with_attribute("category", product.category)
        .with_attribute("price", product.price)
        .with_attribute("dwell_seconds", (5 + dice.below(240)) as f64)
}

// ---------------------------------------------------------------------------------------------
// Facts: what the rules see of the scenario's customer, to write clauses that hold or not.

struct Facts<'a> {
    p: &'a Profile,
    now: Timestamp,
    /// The request's channel (the scenario asks on `app`).
    channel: &'static str,
    data_used_gb: f64,
    roaming_days: f64,
    views_10m: f64,
    views_1d: f64,
    distinct_7d: f64,
    last_page: Option<String>,
    support_30d: f64,
    avg_dwell_7d: Option<f64>,
}

impl<'a> Facts<'a> {
    /// The features as the catalogue defines them, computed the way decisions do (touchpoints
    /// in time order, windows `[now - w, now)`).
    fn of(p: &'a Profile, touchpoints: &[Touchpoint], now: Timestamp) -> Self {
        let now_us = now.timestamp_micros();
        let within = |t: &Touchpoint, window: i64| {
            let at = t.occurred_at.timestamp_micros();
            now_us.saturating_sub(window) <= at && at < now_us
        };
        let (mut data, mut roaming, mut v10m, mut v1d, mut support) = (0.0, 0.0, 0.0, 0.0, 0.0);
        let (mut dwell_sum, mut dwell_n) = (0.0, 0u32);
        let mut last_page = None;
        let mut products: Vec<&str> = Vec::new();
        for t in touchpoints {
            let num = |name: &str| t.attributes.get(name).and_then(Value::as_number);
            if t.kind == Kind::USAGE && within(t, 30 * DAY_US) {
                data += num("data_gb").unwrap_or(0.0);
                if t.attributes.get("roaming").and_then(Value::as_bool) == Some(true) {
                    roaming += 1.0;
                }
            }
            if t.kind == Kind::PRODUCT_VIEW {
                if within(t, 10 * 60_000_000) {
                    v10m += 1.0;
                }
                if within(t, DAY_US) {
                    v1d += 1.0;
                }
                if within(t, 7 * DAY_US)
                    && let Some(product) = t.attributes.get("product").and_then(Value::as_str)
                    && !products.contains(&product)
                {
                    products.push(product);
                }
            }
            if t.kind == Kind::PAGE_VIEW {
                if within(t, DAY_US)
                    && let Some(page) = t.attributes.get("page").and_then(Value::as_str)
                {
                    last_page = Some(page.to_owned());
                }
                if within(t, 7 * DAY_US)
                    && let Some(d) = num("dwell_seconds")
                {
                    dwell_sum += d;
                    dwell_n += 1;
                }
            }
            if (t.kind == Kind::SUPPORT_CONTACT || t.kind == Kind::COMPLAINT)
                && within(t, 30 * DAY_US)
            {
                support += 1.0;
            }
        }
        Facts {
            p,
            now,
            channel: "app",
            data_used_gb: data,
            roaming_days: roaming,
            views_10m: v10m,
            views_1d: v1d,
            distinct_7d: products.len() as f64,
            last_page,
            support_30d: support,
            avg_dwell_7d: (dwell_n > 0).then(|| dwell_sum / f64::from(dwell_n)),
        }
    }

    /// `clause`, written so that it holds for the customer (`truth`) or not; `None` if it
    /// cannot be written that way for this customer.
    fn clause(&self, clause: Clause, dice: &mut Dice, truth: bool) -> Option<String> {
        let p = self.p;
        match clause {
            Clause::Plan => {
                let others: Vec<&str> = PLANS
                    .iter()
                    .map(|(plan, _)| plan.name)
                    .filter(|n| *n != p.plan.name)
                    .collect();
                Some(format!(
                    "customer.plan in {}",
                    quoted(&membership(dice, p.plan.name, &others, truth))
                ))
            }
            Clause::Tenure => count_clause(
                dice,
                "customer.tenure_months",
                f64::from(p.tenure_months),
                truth,
            ),
            Clause::DataRatio => {
                let r = self.data_used_gb / p.plan.cap_gb;
                let x = if truth {
                    floor_to(r - dice.uniform(0.05, 0.4), 0.05)
                } else {
                    ceil_to(r + dice.uniform(0.02, 0.3), 0.05)
                };
                (x >= 0.0 && (r > x) == truth)
                    .then(|| format!("features.data_used_gb / customer.data_cap_gb > {x:.2}"))
            }
            Clause::Channel => Some(if truth {
                format!("context.channel == {:?}", self.channel)
            } else if dice.chance(0.5) {
                "context.channel in [\"sms\", \"email\"]".to_owned()
            } else {
                let other = if self.channel == "web" { "app" } else { "web" };
                format!("context.channel == {other:?}")
            }),
            Clause::Region => {
                let others: Vec<&str> =
                    REGIONS.iter().copied().filter(|r| *r != p.region).collect();
                let regions = membership(dice, p.region, &others, truth);
                Some(match regions.as_slice() {
                    [one] => format!("customer.region == {one:?}"),
                    many => format!("customer.region in {}", quoted(many)),
                })
            }
            Clause::HasContract => {
                let has = p.contract_end_at.is_some();
                Some(if has == truth {
                    "has(customer.contract_end_at)".to_owned()
                } else {
                    "!has(customer.contract_end_at)".to_owned()
                })
            }
            Clause::DeviceBrand => {
                let brand = if truth {
                    p.brand()
                } else {
                    let others: Vec<&str> =
                        BRANDS.iter().copied().filter(|b| *b != p.brand()).collect();
                    dice.one_of(&others)
                };
                Some(format!("customer.device_model.startsWith({brand:?})"))
            }
            Clause::SignedUp => {
                let age = micros_between(p.signed_up_at, self.now);
                let months = age / (MONTH_H * HOUR_US);
                let (op, m) = if dice.chance(0.75) {
                    // Customers for at least m months.
                    let m = if truth {
                        1 + dice.below(months)
                    } else {
                        months + 1 + dice.below(24)
                    };
                    (">", m)
                } else {
                    // Newer customers.
                    let m = if truth {
                        months + 1 + dice.below(24)
                    } else {
                        1 + dice.below(months)
                    };
                    ("<", m)
                };
                let limit = m * MONTH_H * HOUR_US;
                let holds = if op == ">" { age > limit } else { age < limit };
                (m >= 1 && holds == truth).then(|| {
                    format!(
                        "now - customer.signed_up_at {op} duration(\"{}h\")",
                        m * MONTH_H
                    )
                })
            }
            Clause::ContractEnds => {
                let months = 1 + dice.below(6);
                let limit = months * MONTH_H * HOUR_US;
                let text = format!(
                    "customer.contract_end_at - now < duration(\"{}h\")",
                    months * MONTH_H
                );
                match p.contract_end_at {
                    // Missing: the clause is undecided, so false.
                    None => (!truth).then_some(text),
                    Some(end) => ((micros_between(self.now, end) < limit) == truth).then_some(text),
                }
            }
            Clause::Views1d => {
                count_clause(dice, "features.product_views_1d", self.views_1d, truth)
            }
            Clause::Views10m => {
                count_clause(dice, "features.product_views_10m", self.views_10m, truth)
            }
            Clause::Distinct7d => count_clause(
                dice,
                "features.distinct_products_7d",
                self.distinct_7d,
                truth,
            ),
            Clause::Traveller => Some(if p.traveller == truth {
                "customer.frequent_traveller".to_owned()
            } else {
                "!customer.frequent_traveller".to_owned()
            }),
            Clause::RoamingDays => {
                count_clause(dice, "features.roaming_days_30d", self.roaming_days, truth)
            }
            Clause::DeviceOwned => {
                let device = if truth {
                    dice.one_of(&p.devices)
                } else {
                    let others: Vec<&str> = DEVICES
                        .iter()
                        .copied()
                        .filter(|d| !p.devices.contains(d))
                        .collect();
                    dice.one_of(&others)
                };
                (!device.is_empty()).then(|| format!("{device:?} in customer.devices"))
            }
            Clause::AgeBand => {
                let others: Vec<&str> = AGE_BANDS
                    .iter()
                    .map(|(b, _)| *b)
                    .filter(|b| *b != p.age_band)
                    .collect();
                Some(format!(
                    "customer.age_band in {}",
                    quoted(&membership(dice, p.age_band, &others, truth))
                ))
            }
            Clause::Support => count_clause(
                dice,
                "features.support_contacts_30d",
                self.support_30d,
                truth,
            ),
            Clause::Churn => number_clause(dice, "customer.churn_risk", p.churn_risk, 0.05, truth),
            Clause::Os => {
                let os = if truth {
                    p.device_os
                } else {
                    OS.iter()
                        .copied()
                        .find(|o| *o != p.device_os)
                        .unwrap_or("ios")
                };
                Some(format!("context.device_os == {os:?}"))
            }
            Clause::AppVersion => {
                let mine = p.app_version.split('.').next().unwrap_or("6");
                let major = if truth {
                    mine
                } else if mine == "6" {
                    "5"
                } else {
                    "6"
                };
                Some(format!("context.app_version.startsWith(\"{major}.\")"))
            }
            Clause::LastPage => {
                let page = match (&self.last_page, truth) {
                    (Some(page), true) => page.as_str(),
                    (None, true) => return None,
                    (mine, false) => {
                        let others: Vec<&str> = PAGES
                            .iter()
                            .map(|(pg, _)| *pg)
                            .filter(|pg| mine.as_deref() != Some(*pg))
                            .collect();
                        dice.one_of(&others)
                    }
                };
                Some(format!("features.last_page == {page:?}"))
            }
            Clause::Session => count_clause(
                dice,
                "context.session_pages",
                f64::from(p.session_pages),
                truth,
            ),
            Clause::Arpu => number_clause(dice, "customer.arpu_usd", p.arpu_usd, 5.0, truth),
            Clause::Dwell => match self.avg_dwell_7d {
                Some(v) => number_clause(dice, "features.avg_dwell_7d", v, 10.0, truth),
                // No page view in 7 days: the feature is missing, so the clause is false.
                None => (!truth).then(|| "features.avg_dwell_7d > 30".to_owned()),
            },
            Clause::RegionOrTraveller => {
                let region = if truth {
                    if p.traveller {
                        dice.one_of(REGIONS)
                    } else {
                        p.region
                    }
                } else if p.traveller {
                    return None;
                } else {
                    let others: Vec<&str> =
                        REGIONS.iter().copied().filter(|r| *r != p.region).collect();
                    dice.one_of(&others)
                };
                Some(format!(
                    "(customer.region == {region:?} || customer.frequent_traveller)"
                ))
            }
            Clause::PortIn => {
                let rival = match (p.port_in_from, truth) {
                    (Some(mine), true) => mine,
                    (None, true) => return None,
                    (mine, false) => RIVALS
                        .iter()
                        .copied()
                        .find(|r| Some(*r) != mine)
                        .unwrap_or("rival-mobile"),
                };
                Some(format!("customer.port_in_from == {rival:?}"))
            }
        }
    }

    /// An eligibility rule of 2 to 4 clauses that holds for the customer iff `eligible`: the
    /// family's signature first, then clauses from the pool; a rule that does not hold has one
    /// or two false clauses at random positions.
    fn eligibility(&self, dice: &mut Dice, family: &Family, eligible: bool) -> String {
        let n = 2 + dice.index_below(3);
        let mut truths = vec![true; n];
        if !eligible {
            let falses = if n >= 3 && dice.chance(0.3) { 2 } else { 1 };
            for i in dice.some_of(&(0..n).collect::<Vec<_>>(), falses) {
                if let Some(t) = truths.get_mut(i) {
                    *t = false;
                }
            }
        }
        let mut used: Vec<Clause> = Vec::with_capacity(n);
        let mut clauses: Vec<String> = Vec::with_capacity(n);
        for (i, truth) in truths.into_iter().enumerate() {
            let mut written = None;
            for attempt in 0..16 {
                let kind = match family.signature.get(i) {
                    Some(kind) if attempt == 0 => *kind,
                    _ if !truth && dice.chance(0.1) => Clause::PortIn,
                    _ => POOL
                        .get(dice.index_below(POOL.len()))
                        .copied()
                        .unwrap_or(Clause::Channel),
                };
                if used.contains(&kind) {
                    continue;
                }
                if let Some(text) = self.clause(kind, dice, truth) {
                    used.push(kind);
                    written = Some(text);
                    break;
                }
            }
            // Every customer has a channel, and none has a third major app version.
            clauses.push(written.unwrap_or_else(|| {
                if truth {
                    format!("context.channel == {:?}", self.channel)
                } else {
                    "context.app_version.startsWith(\"4.\")".to_owned()
                }
            }));
        }
        clauses.join(" && ")
    }
}

/// `mine` with 0 to 2 of `others` in random order (`truth`), or 1 to 3 of `others`.
fn membership<'s>(dice: &mut Dice, mine: &'s str, others: &[&'s str], truth: bool) -> Vec<&'s str> {
    if truth {
        let extra = dice.index_below(3);
        let mut items = dice.some_of(others, extra);
        let at = dice.index_below(items.len() + 1);
        items.insert(at.min(items.len()), mine);
        items
    } else {
        let n = 1 + dice.index_below(3);
        dice.some_of(others, n)
    }
}

/// `expr >= n` or `expr < n` over a whole number `v`, holding iff `truth`.
fn count_clause(dice: &mut Dice, expr: &str, v: f64, truth: bool) -> Option<String> {
    let v = v.max(0.0).round() as i64;
    let at_least = dice.chance(0.7);
    // `v >= n` must be `truth` for the `>=` form, and the opposite for the `<` form.
    let n = if at_least == truth {
        if v < 1 {
            return None;
        }
        1 + dice.below(v)
    } else {
        v + 1 + dice.below(5)
    };
    let op = if at_least { ">=" } else { "<" };
    Some(format!("{expr} {op} {n}"))
}

/// `expr > x` or `expr < x` over a number `v` (`x` a multiple of `step`), holding iff `truth`.
fn number_clause(dice: &mut Dice, expr: &str, v: f64, step: f64, truth: bool) -> Option<String> {
    let below = floor_to(v - dice.uniform(step * 0.5, step * 4.0), step);
    let above = ceil_to(v + dice.uniform(step * 0.5, step * 4.0), step);
    let (op, x) = match (dice.chance(0.6), truth) {
        (true, true) => (">", below),
        (true, false) => (">", above),
        (false, true) => ("<", above),
        (false, false) => ("<", below),
    };
    let holds = if op == ">" { v > x } else { v < x };
    let decimals = if step < 1.0 { 2 } else { 0 };
    // A negative threshold reads oddly; a clause that does not do what was asked is dropped.
    (x >= 0.0 && holds == truth).then(|| format!("{expr} {op} {x:.decimals$}"))
}

// ---------------------------------------------------------------------------------------------
// The catalogue.

/// What the history generator needs to know about an offer.
struct OfferMeta {
    id: OfferId,
    category: Category,
    category_index: usize,
    channels: Vec<Channel>,
    /// Valid now, on the request's channel, with a consent purpose the customer granted there.
    on_path: bool,
    eligible: bool,
    subsidised: bool,
}

fn schema() -> Schema {
    let mut schema = Schema::default();
    let customer = [
        ("plan", ValueType::String),
        ("data_cap_gb", ValueType::Number),
        ("monthly_fee", ValueType::Number),
        ("tenure_months", ValueType::Number),
        ("signed_up_at", ValueType::Timestamp),
        ("contract_end_at", ValueType::Timestamp),
        ("port_in_from", ValueType::String),
        ("region", ValueType::String),
        ("device_model", ValueType::String),
        ("devices", ValueType::List),
        ("age_band", ValueType::String),
        ("frequent_traveller", ValueType::Bool),
        ("churn_risk", ValueType::Number),
        ("arpu_usd", ValueType::Number),
        ("expected_overage_usd", ValueType::Number),
        ("name", ValueType::String),
    ];
    for (name, ty) in customer {
        schema.customer.insert(Name::new(name), ty);
    }
    for (name, ty) in [
        ("device_os", ValueType::String),
        ("app_version", ValueType::String),
        ("session_pages", ValueType::Number),
    ] {
        schema.context.insert(Name::new(name), ty);
    }
    for (name, ty) in [
        ("data_gb", ValueType::Number),
        ("roaming", ValueType::Bool),
        ("page", ValueType::String),
        ("product", ValueType::String),
        ("category", ValueType::String),
        ("price", ValueType::Number),
        ("dwell_seconds", ValueType::Number),
    ] {
        schema.touchpoint.insert(Name::new(name), ty);
    }
    schema
}

fn features() -> Vec<Feature> {
    let feature = |id: &str,
                   aggregate: Aggregation,
                   attribute: Option<&str>,
                   kinds: &[Kind],
                   window: Span,
                   filter: Option<&str>| Feature {
        id: FeatureId::new(id),
        aggregate,
        attribute: attribute.map(Name::new),
        kinds: kinds.to_vec(),
        channels: Vec::new(),
        window,
        filter: filter.map(RuleText::new),
    };
    let month = Span::days(30);
    vec![
        feature(
            "data_used_gb",
            Aggregation::Sum,
            Some("data_gb"),
            &[Kind::USAGE],
            month,
            None,
        ),
        feature(
            "roaming_days_30d",
            Aggregation::Count,
            None,
            &[Kind::USAGE],
            month,
            Some("touchpoint.roaming"),
        ),
        feature(
            "product_views_10m",
            Aggregation::Count,
            None,
            &[Kind::PRODUCT_VIEW],
            Span::minutes(10),
            None,
        ),
        feature(
            "product_views_1d",
            Aggregation::Count,
            None,
            &[Kind::PRODUCT_VIEW],
            Span::days(1),
            None,
        ),
        feature(
            "distinct_products_7d",
            Aggregation::DistinctCount,
            Some("product"),
            &[Kind::PRODUCT_VIEW],
            Span::days(7),
            None,
        ),
        feature(
            "last_page",
            Aggregation::Last,
            Some("page"),
            &[Kind::PAGE_VIEW],
            Span::days(1),
            None,
        ),
        feature(
            "support_contacts_30d",
            Aggregation::Count,
            None,
            &[Kind::SUPPORT_CONTACT, Kind::COMPLAINT],
            month,
            None,
        ),
        feature(
            "avg_dwell_7d",
            Aggregation::Avg,
            Some("dwell_seconds"),
            &[Kind::PAGE_VIEW],
            Span::days(7),
            None,
        ),
    ]
}

fn contact_policy() -> Vec<ContactRule> {
    vec![
        ContactRule::Cap {
            id: Some(Text::const_new("three-a-week-per-offer")),
            scope: ContactScope::Offer,
            outcome: OutcomeKind::Shown,
            max: 3,
            window: Span::days(7),
        },
        ContactRule::Cap {
            id: Some(Text::const_new("five-a-month-per-category")),
            scope: ContactScope::Category,
            outcome: OutcomeKind::Shown,
            max: 5,
            window: Span::days(30),
        },
        ContactRule::Suppress {
            id: Some(Text::const_new("two-noes-pause-the-category")),
            scope: ContactScope::Category,
            outcome: OutcomeKind::Rejected,
            after: 2,
            within: Span::days(30),
            duration: Span::days(14),
        },
    ]
}

/// The catalogue, and what the history generator needs to know of each offer.
fn catalog(spec: &ScenarioSpec, facts: &Facts<'_>, dice: &mut Dice) -> (Catalog, Vec<OfferMeta>) {
    let p = facts.p;
    let now = spec.now;
    let categories = spec.categories.max(1);
    let category_names: Vec<Category> = (0..categories)
        .map(|c| {
            let family = FAMILIES
                .get(c % FAMILIES.len())
                .map_or("offers", |f| f.name);
            if c < FAMILIES.len() {
                Category::new(family)
            } else {
                Category::new(format!("{family}-{}", c / FAMILIES.len() + 1))
            }
        })
        .collect();
    let mut offers = Vec::with_capacity(spec.offers);
    let mut meta = Vec::with_capacity(spec.offers);
    for i in 0..spec.offers {
        let c = i % categories;
        let n = i / categories;
        let Some(family) = FAMILIES.get(c % FAMILIES.len()) else {
            continue;
        };
        let category = category_names
            .get(c)
            .cloned()
            .unwrap_or_else(|| Category::new(family.name));
        let id = OfferId::new(numbered(&format!("{category}-"), n, 4));
        let channels = dice.pick(CHANNEL_SETS).to_vec();
        let mut offer = Offer::new(
            id.clone(),
            format!("{} {}", family.title, n + 1),
            category.clone(),
            channels.clone(),
            round_to(dice.uniform(family.value.0, family.value.1), 0.01),
        );

        // Validity: most offers run indefinitely; some have expired or not started yet.
        let validity = dice.unit();
        if validity < 0.04 {
            let end = shift(now, -dice.days_us(1.0, 30.0));
            offer.valid_from = Some(shift(end, -dice.days_us(14.0, 90.0)));
            offer.valid_until = Some(end);
        } else if validity < 0.07 {
            offer.valid_from = Some(shift(now, dice.days_us(1.0, 20.0)));
        } else if validity < 0.27 {
            offer.valid_from = Some(shift(now, -dice.days_us(1.0, 60.0)));
            offer.valid_until = Some(shift(now, dice.days_us(1.0, 60.0)));
        }

        offer.consent_purpose = if family.purpose == "service" && dice.chance(0.9) {
            Purpose::SERVICE
        } else if (family.partner && dice.chance(0.4)) || dice.chance(0.03) {
            PARTNER_MARKETING
        } else {
            Purpose::MARKETING
        };

        let eligible = dice.chance(spec.eligible_share);
        offer.eligibility = Some(RuleText::new(facts.eligibility(dice, family, eligible)));

        // Offer fields; the suitability rule, when there is one, holds 3 times in 4.
        let mut price = round_to(dice.uniform(family.price.0, family.price.1), 0.5);
        if family.data_gb {
            offer
                .attributes
                .insert("data_gb", (1 + dice.below(10)) as f64);
        }
        if family.partner {
            offer.attributes.insert(
                "partner",
                dice.one_of(&["northflix", "tunely", "gamehub", "sportsnow"]),
            );
        }
        let mut monthly_fee = family
            .monthly_fee
            .map(|(lo, hi)| round_to(p.plan.fee + dice.uniform(lo, hi), 0.5));
        let mut benefit = round_to(price * dice.uniform(0.5, 3.0), 0.5);
        if dice.chance(spec.suitability_share) {
            let suitable = dice.chance(0.75);
            let (below, above) = (dice.uniform(0.3, 0.9), dice.uniform(1.15, 2.0));
            let factor = if suitable { below } else { above };
            // Round towards what the rule should say, so it says it.
            let round = |x: f64| {
                if suitable {
                    floor_to(x, 0.5)
                } else {
                    ceil_to(x, 0.5)
                }
            };
            let overage = p.expected_overage_usd;
            let rule = match (family.suit, monthly_fee) {
                (Suit::FeeVsOverage, Some(_)) => {
                    monthly_fee = Some(round(p.plan.fee + overage * factor));
                    "offer.monthly_fee - customer.monthly_fee < customer.expected_overage_usd"
                }
                (Suit::PriceVsOverage, _) => {
                    price = round(overage * factor).max(0.5);
                    "offer.price < customer.expected_overage_usd"
                }
                (Suit::Affordable, _) => {
                    price = round(p.arpu_usd * 6.0 * factor);
                    "offer.price <= customer.arpu_usd * 6.0"
                }
                _ => {
                    price = price.max(1.0);
                    // The benefit rounds away from the price.
                    benefit = if suitable {
                        ceil_to(price / factor, 0.5)
                    } else {
                        floor_to(price / factor, 0.5)
                    };
                    "offer.benefit > offer.price"
                }
            };
            offer.suitability = Some(RuleText::new(rule));
        }
        offer.attributes.insert("price", price);
        if let Some(fee) = monthly_fee {
            offer.attributes.insert("monthly_fee", fee);
        }
        offer.benefit = Some(benefit);

        if dice.chance(0.2) {
            offer.lever = dice.one_of(&[0.5, 0.8, 1.2, 1.5]);
        }
        if dice.chance(0.25) {
            if dice.chance(0.7) {
                offer.context_weights.insert(
                    Text::const_new("app"),
                    round_to(dice.uniform(0.8, 1.5), 0.05),
                );
            }
            if dice.chance(0.5) {
                offer.context_weights.insert(
                    Text::const_new("home_banner"),
                    round_to(dice.uniform(0.6, 1.3), 0.05),
                );
            }
        }

        let subsidised = family.budget == Budgeted::Subsidy && dice.chance(0.4);
        offer.budget = match family.budget {
            Budgeted::Subsidy if subsidised => Some("device-subsidy".into()),
            Budgeted::Retention => Some("retention-credits".into()),
            _ if family.partner => Some("partner-streaming".into()),
            _ => None,
        };

        let consented = offer.consent_purpose != PARTNER_MARKETING;
        meta.push(OfferMeta {
            id,
            category,
            category_index: c,
            on_path: offer.is_valid_at(now) && channels.contains(&Channel::App) && consented,
            channels,
            eligible,
            subsidised,
        });
        offers.push(offer);
    }

    let fallback = offers
        .iter()
        .find(|o| o.consent_purpose == Purpose::SERVICE && o.channels.contains(&Channel::App))
        .map(|o| o.id.clone());
    let catalog = Catalog {
        schema: schema(),
        offers,
        budgets: BUDGETS
            .iter()
            .map(|b| Budget {
                id: b.id.into(),
                limit: b.limit,
                counts: b.counts,
                period: b.period,
            })
            .collect(),
        contact_policy: contact_policy(),
        features: features(),
        arbitration: ArbitrationConfig {
            k: spec.k.max(1),
            fallback,
            exploration: spec.exploration,
            ..ArbitrationConfig::default()
        },
        ..Catalog::default()
    };
    (catalog, meta)
}

/// Learned propensities: 0 to 120 resolved trials per offer (none for one in ten), accepted
/// at 2 % to 30 %.
fn trials(dice: &mut Dice, offers: usize) -> Vec<(u32, u32)> {
    (0..offers)
        .map(|_| {
            if dice.chance(0.1) {
                return (0, 0);
            }
            let n = dice.below(121) as u32;
            let accepted = (f64::from(n) * dice.uniform(0.02, 0.3)).round() as u32;
            (accepted, n - accepted.min(n))
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Contact history.

/// Builds contact histories: episodes (an offer shown, then sometimes a response), each under
/// its own decision id, at most `limit` entries.
struct History<'a> {
    customer: &'a CustomerId,
    now: Timestamp,
    limit: usize,
    episodes: usize,
    events: Vec<ContactEvent>,
}

impl<'a> History<'a> {
    fn new(customer: &'a CustomerId, now: Timestamp, limit: usize) -> Self {
        History {
            customer,
            now,
            limit,
            episodes: 0,
            events: Vec::with_capacity(limit),
        }
    }

    fn room(&self) -> usize {
        self.limit - self.events.len().min(self.limit)
    }

    /// `offer` shown `ago` microseconds before now on `channel`, then `response` after a while
    /// (if there is room, and before now).
    fn episode(
        &mut self,
        dice: &mut Dice,
        offer: &OfferMeta,
        channel: Channel,
        ago: i64,
        response: Option<OutcomeKind>,
    ) {
        if self.room() == 0 {
            return;
        }
        let decision = DecisionId::new(format!("{}-d{:03}", self.customer.as_str(), self.episodes));
        self.episodes += 1;
        let shown_at = shift(self.now, -ago.max(1));
        let event = |kind: OutcomeKind, at: Timestamp| ContactEvent {
            customer: self.customer.clone(),
            decision: decision.clone(),
            offer: offer.id.clone(),
            category: offer.category.clone(),
            channel: channel.clone(),
            kind,
            at,
        };
        let shown = event(OutcomeKind::Shown, shown_at);
        let response = response.filter(|_| self.room() >= 2).map(|kind| {
            // Within a day, and always before now.
            let delay = dice.days_us(5.0 / 1_440.0, 1.0).min(ago / 2).max(1);
            event(kind, shift(shown_at, delay))
        });
        self.events.push(shown);
        self.events.extend(response);
    }

    fn finish(mut self) -> Vec<ContactEvent> {
        self.events.sort_by_key(|e| e.at);
        self.events
    }
}

fn channel_of(dice: &mut Dice, offer: &OfferMeta) -> Channel {
    if offer.channels.contains(&Channel::App) && dice.chance(0.7) {
        Channel::App
    } else {
        offer
            .channels
            .get(dice.index_below(offer.channels.len()))
            .cloned()
            .unwrap_or(Channel::App)
    }
}

/// The scenario customer's history, `limit` entries over 60 days, built so that the contact
/// policy holds back two offers (3 shown in 7 days), a category (5 shown in 30 days) and
/// another category (2 rejections within 30 days, the last one under 14 days ago); the other
/// episodes trigger no rule.
fn designed_history(
    dice: &mut Dice,
    customer: &CustomerId,
    offers: &[OfferMeta],
    limit: usize,
    now: Timestamp,
) -> Vec<ContactEvent> {
    let mut history = History::new(customer, now, limit);
    let categories = offers
        .iter()
        .map(|o| o.category_index + 1)
        .max()
        .unwrap_or(0);
    let by_category: Vec<Vec<&OfferMeta>> = (0..categories)
        .map(|c| offers.iter().filter(|o| o.category_index == c).collect())
        .collect();
    // Categories to design with: with eligible offers on the request's path and no used-up
    // budget (so the budget stage keeps its share), in random order.
    let mut designed: Vec<usize> = (0..categories)
        .filter(|&c| {
            by_category.get(c).is_some_and(|os| {
                os.iter().any(|o| o.on_path && o.eligible) && !os.iter().any(|o| o.subsidised)
            })
        })
        .collect();
    dice.shuffle(&mut designed);
    designed.truncate(4);
    let offers_in = |c: usize, eligible: bool| -> Vec<&OfferMeta> {
        by_category
            .get(c)
            .map(|os| {
                os.iter()
                    .copied()
                    .filter(|o| o.on_path && (o.eligible || !eligible))
                    .collect()
            })
            .unwrap_or_default()
    };

    // Two eligible offers shown 3 times each in the last 7 days: capped.
    for &c in designed.iter().take(2) {
        let candidates = offers_in(c, true);
        let Some(offer) = candidates.get(dice.index_below(candidates.len())) else {
            continue;
        };
        for _ in 0..3 {
            let ago = dice.days_us(0.2, 6.5);
            let response = dice.chance(0.5).then_some(OutcomeKind::Ignored);
            history.episode(dice, offer, Channel::App, ago, response);
        }
    }
    // A category shown 5 times in the last 30 days: capped.
    if let Some(&c) = designed.get(2) {
        let candidates = offers_in(c, false);
        for _ in 0..5 {
            let Some(offer) = candidates.get(dice.index_below(candidates.len())) else {
                break;
            };
            let ago = dice.days_us(1.0, 29.0);
            let response = match dice.unit() {
                r if r < 0.2 => Some(OutcomeKind::Accepted),
                r if r < 0.6 => Some(OutcomeKind::Ignored),
                _ => None,
            };
            let channel = channel_of(dice, offer);
            history.episode(dice, offer, channel, ago, response);
        }
    }
    // A category rejected twice within 30 days, the last time under 14 days ago: suppressed.
    if let Some(&c) = designed.get(3) {
        let candidates = offers_in(c, false);
        for ago in [dice.days_us(15.0, 25.0), dice.days_us(1.0, 10.0)] {
            let Some(offer) = candidates.get(dice.index_below(candidates.len())) else {
                break;
            };
            let channel = channel_of(dice, offer);
            history.episode(dice, offer, channel, ago, Some(OutcomeKind::Rejected));
        }
    }

    // The rest: older episodes of any kind (31 to 60 days ago, too old to cap; their
    // suppressions are over), and recent ones without rejections, at most 2 per category.
    let others: Vec<&OfferMeta> = offers
        .iter()
        .filter(|o| !designed.contains(&o.category_index))
        .collect();
    let mut recent = vec![0u32; categories];
    let mut attempts = 0;
    while history.room() > 0 && !others.is_empty() && attempts < 10 * limit {
        attempts += 1;
        let Some(offer) = others.get(dice.index_below(others.len())) else {
            break;
        };
        let channel = channel_of(dice, offer);
        if dice.chance(0.6) {
            let response = match dice.unit() {
                r if r < 0.25 => Some(OutcomeKind::Rejected),
                r if r < 0.4 => Some(OutcomeKind::Accepted),
                r if r < 0.7 => Some(OutcomeKind::Ignored),
                _ => None,
            };
            let ago = dice.days_us(31.0, 59.5);
            history.episode(dice, offer, channel, ago, response);
        } else if let Some(n) = recent.get_mut(offer.category_index)
            && *n < 2
        {
            *n += 1;
            let response = match dice.unit() {
                r if r < 0.3 => Some(OutcomeKind::Accepted),
                r if r < 0.7 => Some(OutcomeKind::Ignored),
                _ => None,
            };
            let ago = dice.days_us(1.0, 29.0);
            history.episode(dice, offer, channel, ago, response);
        }
    }
    history.finish()
}

/// A history of `limit` entries over 60 days, over random offers, with random responses.
fn random_history(
    dice: &mut Dice,
    customer: &CustomerId,
    offers: &[OfferMeta],
    limit: usize,
    now: Timestamp,
) -> Vec<ContactEvent> {
    let mut history = History::new(customer, now, limit);
    while history.room() > 0 {
        let Some(offer) = offers.get(dice.index_below(offers.len())) else {
            break;
        };
        let response = match dice.unit() {
            r if r < 0.15 => Some(OutcomeKind::Rejected),
            r if r < 0.3 => Some(OutcomeKind::Accepted),
            r if r < 0.65 => Some(OutcomeKind::Ignored),
            _ => None,
        };
        let channel = channel_of(dice, offer);
        let ago = dice.days_us(0.05, 59.5);
        history.episode(dice, offer, channel, ago, response);
    }
    history.finish()
}

/// What the history generator needs of a catalogue it did not generate.
fn offer_meta(catalog: &Catalog, channel: &Channel, now: Timestamp) -> Vec<OfferMeta> {
    let mut categories: Vec<&Category> = Vec::new();
    catalog
        .offers
        .iter()
        .map(|o| {
            let category_index = match categories.iter().position(|c| **c == o.category) {
                Some(i) => i,
                None => {
                    categories.push(&o.category);
                    categories.len() - 1
                }
            };
            OfferMeta {
                id: o.id.clone(),
                category: o.category.clone(),
                category_index,
                channels: o.channels.clone(),
                on_path: o.is_valid_at(now) && o.channels.contains(channel),
                eligible: false,
                subsidised: o.budget.is_some(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Explanation;
    use std::collections::HashMap;
    use std::time::Instant;

    fn decide(s: &Scenario) -> Decision {
        s.arbitrator()
            .unwrap()
            .decide(&s.input(), &s.request, DecisionId::new("d-test"))
    }

    fn count(histogram: &[(PipelineStage, usize)], stage: PipelineStage) -> usize {
        histogram
            .iter()
            .find(|(s, _)| *s == stage)
            .map_or(0, |(_, n)| *n)
    }

    #[test]
    fn the_same_seed_gives_the_same_scenario_and_another_seed_another() {
        let spec = ScenarioSpec::telco_100();
        let a = spec.generate();
        assert_eq!(a, Scenario::generate(&spec));
        let b = spec.clone().with_seed(43).generate();
        assert_ne!(a.catalog, b.catalog);
        assert_ne!(a.customer, b.customer);
        assert_ne!(a.touchpoints, b.touchpoints);
        assert_ne!(a.contacts, b.contacts);
        assert_eq!(a.customers(3), a.customers(5)[..3]);
    }

    #[test]
    fn presets_have_the_shape_of_the_issue_and_validate() {
        for (spec, offers, categories) in [
            (ScenarioSpec::telco_100(), 100, 20),
            (ScenarioSpec::telco_1k(), 1_000, 20),
            (ScenarioSpec::telco_10k(), 10_000, 50),
        ] {
            let s = spec.generate();
            let c = &s.catalog;
            c.validate().unwrap();
            assert_eq!(c.offers.len(), offers);
            let mut distinct: Vec<&str> = c.offers.iter().map(|o| o.category.as_str()).collect();
            distinct.sort_unstable();
            distinct.dedup();
            assert_eq!(distinct.len(), categories);
            assert_eq!(c.contact_policy.len(), 3);
            assert_eq!(c.budgets.len(), s.budget_used.len());
            assert_eq!(s.trials.len(), offers);
            for o in &c.offers {
                let rule = o.eligibility.as_ref().unwrap().as_str();
                let clauses = rule.split(" && ").count();
                assert!((2..=4).contains(&clauses), "{rule}");
            }
            let suitability = c.offers.iter().filter(|o| o.suitability.is_some()).count();
            let share = suitability as f64 / offers as f64;
            assert!((0.12..0.28).contains(&share), "suitability share {share}");
            assert!(c.offers.iter().any(|o| o.budget.is_some()));
            assert!(
                c.offers
                    .iter()
                    .any(|o| o.consent_purpose != Purpose::MARKETING)
            );

            s.customer.validate().unwrap();
            assert_eq!(s.touchpoints.len(), 200);
            assert_eq!(s.contacts.len(), 50);
            for t in &s.touchpoints {
                t.validate().unwrap();
                assert!(t.occurred_at < s.now && s.now - t.occurred_at < TimeDelta::days(30));
            }
            assert!(s.touchpoints.is_sorted_by_key(|t| t.occurred_at));
            assert!(s.contacts.is_sorted_by_key(|e| e.at));
            for e in &s.contacts {
                assert!(e.at < s.now && s.now - e.at < TimeDelta::days(60));
                let offer = c.offer(e.offer.as_str()).unwrap();
                assert_eq!(offer.category, e.category);
            }
            let kinds: Vec<OutcomeKind> = s.contacts.iter().map(|e| e.kind).collect();
            for kind in [
                OutcomeKind::Shown,
                OutcomeKind::Accepted,
                OutcomeKind::Rejected,
                OutcomeKind::Ignored,
            ] {
                assert!(kinds.contains(&kind), "no {kind} in the history");
            }
            assert_eq!(s.request.k, Some(3));
            assert!(s.request.explain);
            assert_eq!(c.arbitration.exploration, Exploration::Greedy);
        }
    }

    #[test]
    fn every_preset_compiles() {
        for spec in [ScenarioSpec::telco_100(), ScenarioSpec::telco_1k()] {
            let compiled = spec.generate().compiled().unwrap();
            assert_eq!(compiled.offer_ids().len(), spec.offers);
        }
    }

    #[test]
    fn generating_telco_10k_is_fast() {
        let started = Instant::now();
        let s = ScenarioSpec::telco_10k().generate();
        let took = started.elapsed();
        assert_eq!(s.catalog.offers.len(), 10_000);
        // About 30 ms in a release build; generous for debug builds on a busy machine.
        let limit = if cfg!(debug_assertions) { 3.0 } else { 0.5 };
        assert!(took.as_secs_f64() < limit, "took {took:?}");
    }

    #[test]
    fn the_stage_histogram_stays_realistic() {
        for seed in [42, 1, 2, 3, 4, 5, 6, 7] {
            let s = ScenarioSpec::telco_1k().with_seed(seed).generate();
            let d = decide(&s);
            let h = stage_histogram(&d);
            let candidates: usize = h.iter().map(|(_, n)| n).sum();
            let on_channel = s
                .catalog
                .offers
                .iter()
                .filter(|o| o.channels.contains(&Channel::App))
                .count();
            assert_eq!(candidates, on_channel);
            eprintln!(
                "telco-1k seed {seed}: not on channel {}, {h:?}",
                1_000 - candidates
            );
            let reached_eligibility = candidates
                - count(&h, PipelineStage::Candidates)
                - count(&h, PipelineStage::Consent);
            let eligible = reached_eligibility - count(&h, PipelineStage::Eligibility);
            let share = eligible as f64 / reached_eligibility as f64;
            assert!(
                (0.3..0.6).contains(&share),
                "seed {seed}: eligible share {share}"
            );
            let capped = count(&h, PipelineStage::ContactPolicy);
            assert!(
                (10..=80).contains(&capped),
                "seed {seed}: {capped} held back by the contact policy"
            );
            assert!(
                (1..=25).contains(&count(&h, PipelineStage::Budget)),
                "seed {seed}"
            );
            assert!(
                (3..=40).contains(&count(&h, PipelineStage::Suitability)),
                "seed {seed}"
            );
            assert!(count(&h, PipelineStage::Consent) > 20, "seed {seed}");
            assert!(count(&h, PipelineStage::Candidates) > 20, "seed {seed}");
            assert_eq!(count(&h, PipelineStage::Selected), 3, "seed {seed}");
            assert!(count(&h, PipelineStage::Selection) > 100, "seed {seed}");
            assert_eq!(d.offers.len(), 3);
            let mut categories: Vec<&str> = d.offers.iter().map(|o| o.category.as_str()).collect();
            categories.dedup();
            assert_eq!(categories.len(), 3);
        }
    }

    #[test]
    fn each_designed_contact_rule_holds_offers_back() {
        let s = ScenarioSpec::telco_1k().generate();
        let d = decide(&s);
        let capped: Vec<Explanation> = d
            .explanations()
            .into_iter()
            .filter(|e| e.stage == PipelineStage::ContactPolicy)
            .collect();
        for rule in [
            "three-a-week-per-offer",
            "five-a-month-per-category",
            "two-noes-pause-the-category",
        ] {
            let n = capped.iter().filter(|e| e.reason.contains(rule)).count();
            assert!(n > 0, "no offer held back by {rule}: {capped:#?}");
        }
        assert!(capped.iter().all(|e| e.lifts_at.is_some_and(|t| t > s.now)));
    }

    #[test]
    fn the_customer_sits_near_the_data_cap_and_features_see_the_live_session() {
        let s = ScenarioSpec::telco_1k().generate();
        let facts_profile = Profile::draw(
            &mut Dice::new(s.spec.seed, STREAM_CUSTOMER),
            CustomerId::new("c-00000"),
            s.now,
            true,
        );
        let facts = Facts::of(&facts_profile, &s.touchpoints, s.now);
        let cap = s
            .customer
            .attributes
            .get("data_cap_gb")
            .unwrap()
            .as_number()
            .unwrap();
        let ratio = facts.data_used_gb / cap;
        assert!((0.85..1.08).contains(&ratio), "ratio {ratio}");
        assert!(facts.views_10m >= 3.0);
        let overage = s
            .customer
            .attributes
            .get("expected_overage_usd")
            .and_then(Value::as_number)
            .unwrap();
        assert!(overage > 0.0);
    }

    #[test]
    fn contact_records_give_back_the_history() {
        let s = ScenarioSpec::telco_100().generate();
        let (decisions, outcomes) = s.contact_records();
        assert_eq!(outcomes.len(), s.contacts.len());
        let mut by_id: HashMap<&DecisionId, &Decision> = HashMap::new();
        for d in &decisions {
            d.validate().unwrap();
            assert!(by_id.insert(&d.id, d).is_none());
        }
        for (o, e) in outcomes.iter().zip(&s.contacts) {
            let d = by_id[&o.decision];
            let selected = d.selected(&o.offer).unwrap();
            assert_eq!(selected.category, e.category);
            assert_eq!(d.channel, e.channel);
            assert!(d.at <= o.at);
        }
    }

    #[test]
    fn other_customers_vary_and_decide() {
        let s = ScenarioSpec::telco_100().generate();
        let customers = s.customers(20);
        assert_eq!(customers.len(), 20);
        let arbitrator = s.arbitrator().unwrap();
        let mut picks = Vec::new();
        for c in &customers {
            c.customer.validate().unwrap();
            assert_eq!(c.touchpoints.len(), 200);
            assert_eq!(c.contacts.len(), 50);
            assert_eq!(c.request.customer, c.customer.id);
            let d = arbitrator.decide(&s.input_for(c), &c.request, DecisionId::new("d"));
            picks.push(d.offers.len());
        }
        assert!(picks.iter().any(|&n| n > 0));
        let ids: Vec<&str> = customers.iter().map(|c| c.customer.id.as_str()).collect();
        assert_eq!(ids.first(), Some(&"c-00001"));
    }

    /// What `d` chose, and why it chose or did not choose each offer of `catalog`.
    fn shown(catalog: &CompiledCatalog, d: &Decision) -> (Vec<SelectedOffer>, Vec<String>) {
        let why = catalog
            .offers
            .iter()
            .map(|o| d.why_not(&o.offer.id))
            .collect();
        (d.offers.clone(), why)
    }

    /// A decision given the customer's inputs read ahead chooses, scores and explains every
    /// candidate exactly as one reading the profile; inputs read under another compilation of
    /// the catalogue are not used; and another customer's are (so the inputs are read).
    #[test]
    fn customer_inputs_decide_as_the_profile_does() {
        use crate::arbitration::CustomerInputs;
        use crate::rules::SlotHints;
        let s = ScenarioSpec::telco_100().generate();
        let arbitrator = s.arbitrator().unwrap();
        let catalog = arbitrator.catalog();
        let elsewhere = s.compiled().unwrap();
        let customers = s.customers(40);
        let shown = |d: &Decision| shown(catalog, d);
        let mut read = 0;
        for (i, c) in customers.iter().enumerate() {
            let next = &customers[(i + 1) % customers.len()].customer;
            let mut request = c.request.clone();
            request.seed = Some(i as u64);
            let decide = |inputs: Option<&CustomerInputs>| {
                let input = DecisionInput {
                    customer_inputs: inputs,
                    feature_inputs: None,
                    contact_inputs: None,
                    ..s.input_for(c)
                };
                shown(&arbitrator.decide(&input, &request, DecisionId::new("d")))
            };
            let expected = decide(None);
            let own = catalog.customer_inputs(&c.customer, &mut SlotHints::default());
            assert_eq!(decide(Some(&own)), expected, "{}", c.customer.id);
            let stale = elsewhere.customer_inputs(next, &mut SlotHints::default());
            assert_eq!(decide(Some(&stale)), expected, "{}", c.customer.id);
            let theirs = catalog.customer_inputs(next, &mut SlotHints::default());
            if decide(Some(&theirs)) != expected {
                read += 1;
            }
        }
        assert!(
            read > 0,
            "another customer's inputs never changed a decision"
        );
    }

    /// A decision given a window of the customer's contact inputs counts, chooses, scores and
    /// explains exactly as one given the events of that window, at the instant they were read
    /// for and days later; inputs read under another compilation of the catalogue are not used;
    /// and another customer's are (so the inputs are read).
    #[test]
    fn contact_inputs_decide_as_the_history_does() {
        use crate::arbitration::ContactWindow;
        use crate::model::TimeRange;
        let mut s = ScenarioSpec::telco_100().generate();
        // Rules of every scope, and a cap of zero (which counts events of any age).
        s.catalog.contact_policy.extend([
            ContactRule::Cap {
                id: None,
                scope: ContactScope::Channel,
                outcome: OutcomeKind::Shown,
                max: 4,
                window: Span::days(7),
            },
            ContactRule::Cap {
                id: None,
                scope: ContactScope::Offer,
                outcome: OutcomeKind::Converted,
                max: 0,
                window: Span::days(3),
            },
        ]);
        let arbitrator = s.arbitrator().unwrap();
        let catalog = arbitrator.catalog();
        let elsewhere = s.compiled().unwrap();
        let customers = s.customers(40);
        let shown = |d: &Decision| shown(catalog, d);
        // The range the engine asks a store for at `now`.
        let range = |now: Timestamp| {
            let start = TimeRange::ending_at(now, catalog.contact_lookback()).start;
            TimeRange::new(start, now + TimeDelta::microseconds(1))
        };
        let (mut read, mut counted) = (0, 0);
        for (i, c) in customers.iter().enumerate() {
            let next = &customers[(i + 1) % customers.len()];
            let mut request = c.request.clone();
            request.seed = Some(i as u64);
            let read_at = range(s.now);
            let own = catalog.contact_inputs(&c.contacts, read_at.start);
            let stale = elsewhere.contact_inputs(&c.contacts, read_at.start);
            let theirs = catalog.contact_inputs(&next.contacts, read_at.start);
            for days in [0, 2] {
                let now = s.now + TimeDelta::days(days);
                let range = range(now);
                let events: Vec<ContactEvent> = c
                    .contacts
                    .iter()
                    .filter(|e| range.start <= e.at && e.at < range.end)
                    .cloned()
                    .collect();
                let decide = |contacts: &[ContactEvent], window: Option<ContactWindow<'_>>| {
                    let input = DecisionInput {
                        contacts,
                        contact_inputs: window,
                        now,
                        ..s.input_for(c)
                    };
                    shown(&arbitrator.decide(&input, &request, DecisionId::new("d")))
                };
                let expected = decide(&events, None);
                assert!(own.serve(catalog, &range));
                let window = own.window(&range);
                let kinds = events.iter().filter(|e| catalog.counts(e.kind));
                assert_eq!(window.len(), kinds.count(), "{} at +{days}d", c.customer.id);
                assert_eq!(
                    decide(&[], Some(window)),
                    expected,
                    "{} at +{days}d",
                    c.customer.id
                );
                counted += window.len();
                let old = stale.window(&range);
                assert_eq!(decide(&events, Some(old)), expected, "{}", c.customer.id);
                if decide(&[], Some(theirs.window(&range))) != expected {
                    read += 1;
                }
            }
        }
        assert!(counted > 0, "no event counted");
        assert!(
            read > 0,
            "another customer's inputs never changed a decision"
        );
    }

    /// A decision given the feature inputs read from the customer's touchpoints computes,
    /// chooses, scores and explains exactly as one given the touchpoints, at the instant they
    /// were read for and hours later, whichever compilation of the catalogue read them (another
    /// with other offers too); inputs read for other features, or from too late an instant for
    /// the windows, are not used; and another customer's are (so they are read).
    #[test]
    fn feature_inputs_decide_as_the_touchpoints_do() {
        use crate::arbitration::{FeatureBuffers, FeatureInputs};
        use crate::model::TimeRange;
        let s = ScenarioSpec::telco_100().generate();
        let arbitrator = s.arbitrator().unwrap();
        let catalog = arbitrator.catalog();
        let compile = |catalog: Catalog| CompiledCatalog::compile(catalog, 2).unwrap();
        let (mut fewer_offers, mut other_features) = (s.catalog.clone(), s.catalog.clone());
        fewer_offers.offers.truncate(10);
        fewer_offers.arbitration.fallback = None;
        other_features.features[0].window = Span::days(29);
        let (same, elsewhere) = (compile(fewer_offers), compile(other_features));
        let customers = s.customers(40);
        let shown = |d: &Decision| shown(catalog, d);
        let buffers = &mut FeatureBuffers::default();
        let from = TimeRange::ending_at(s.now, catalog.touchpoint_lookback()).start;
        let since = |c: &ScenarioCustomer, from: Timestamp| -> Vec<Touchpoint> {
            c.touchpoints
                .iter()
                .filter(|t| t.occurred_at >= from)
                .cloned()
                .collect()
        };
        let mut read = 0;
        for (i, c) in customers.iter().enumerate() {
            let next = &customers[(i + 1) % customers.len()];
            let mut request = c.request.clone();
            request.seed = Some(i as u64);
            let own = catalog
                .feature_inputs(&since(c, from), from, buffers)
                .unwrap();
            let shared = same.feature_inputs(&since(c, from), from, buffers);
            let shared = shared.unwrap();
            let stale = elsewhere
                .feature_inputs(&since(c, from), from, buffers)
                .unwrap();
            let late = from + TimeDelta::hours(1);
            let short = catalog
                .feature_inputs(&since(next, late), late, buffers)
                .unwrap();
            let theirs = catalog
                .feature_inputs(&since(next, from), from, buffers)
                .unwrap();
            for hours in [0, 5] {
                let now = s.now + TimeDelta::hours(hours);
                let decide = |inputs: Option<&FeatureInputs>| {
                    let input = DecisionInput {
                        feature_inputs: inputs,
                        now,
                        ..s.input_for(c)
                    };
                    shown(&arbitrator.decide(&input, &request, DecisionId::new("d")))
                };
                let expected = decide(None);
                let id = &c.customer.id;
                assert!(own.serve(catalog, now) && shared.serve(catalog, now));
                assert_eq!(decide(Some(&own)), expected, "{id} at +{hours}h");
                assert_eq!(decide(Some(&shared)), expected, "{id} at +{hours}h");
                assert!(!stale.serve(catalog, now) && !short.serve(catalog, s.now));
                assert_eq!(decide(Some(&stale)), expected, "{id} at +{hours}h");
                if hours == 0 {
                    assert_eq!(decide(Some(&short)), expected, "{id}");
                }
                if decide(Some(&theirs)) != expected {
                    read += 1;
                }
            }
        }
        assert!(
            read > 0,
            "another customer's inputs never changed a decision"
        );
    }

    /// One scratch for a run of decisions whose requests change channel, placement and
    /// context from one to the next (a context equal to the last but not shared too), and
    /// whose customers come with their inputs or without: every decision chooses, scores and
    /// explains as with a fresh scratch.
    #[test]
    fn one_scratch_decides_as_fresh_ones_whatever_the_requests() {
        use crate::arbitration::DecisionScratch;
        use crate::rules::SlotHints;
        let s = ScenarioSpec::telco_100().generate();
        let arbitrator = s.arbitrator().unwrap();
        let catalog = arbitrator.catalog();
        let customers = s.customers(24);
        let shown = |d: &Decision| shown(catalog, d);
        let mut scratch = DecisionScratch::default();
        let mut hints = SlotHints::default();
        for (i, c) in customers.iter().enumerate() {
            let mut request = s.request.clone();
            request.customer = c.customer.id.clone();
            request.seed = Some(i as u64);
            match i % 6 {
                // The same request but the customer (its context shared), twice.
                0 | 1 => {}
                2 => request.placement = None,
                3 => request.context = request.context.clone().with("session_pages", 9.0),
                // Equal to the shared context, but not a clone of it.
                4 => {
                    request.context = request
                        .context
                        .iter()
                        .fold(Attributes::new(), |a, (n, v)| a.with(n.clone(), v.clone()));
                }
                _ => request.channel = Channel::Web,
            }
            let inputs = catalog.customer_inputs(&c.customer, &mut hints);
            let input = DecisionInput {
                customer_inputs: (i % 2 == 0).then_some(&inputs),
                feature_inputs: None,
                contact_inputs: None,
                ..s.input_for(c)
            };
            let batch =
                arbitrator.decide_with(&input, &request, DecisionId::new("d"), &mut scratch);
            let fresh = arbitrator.decide(&s.input_for(c), &request, DecisionId::new("d"));
            assert_eq!(
                shown(&batch),
                shown(&fresh),
                "{} ({})",
                c.customer.id,
                i % 6
            );
        }
    }

    #[test]
    fn edge_specs_do_not_panic() {
        let tiny = ScenarioSpec::telco_100()
            .with_offers(3)
            .with_categories(0)
            .with_touchpoints(0)
            .with_contacts(1)
            .with_k(1)
            .generate();
        tiny.catalog.validate().unwrap();
        assert_eq!(tiny.contacts.len(), 1);
        let none = ScenarioSpec::telco_100()
            .with_offers(0)
            .with_contacts(10)
            .with_touchpoints(5)
            .generate();
        assert!(none.contacts.is_empty());
        assert_eq!(none.touchpoints.len(), 5);
        let d = decide(&none);
        assert!(d.offers.is_empty());
        let many = ScenarioSpec::telco_100()
            .with_categories(70)
            .with_eligible_share(1.0)
            .with_suitability_share(1.0)
            .generate();
        many.compiled().unwrap();
    }
}
