//! `Engine`: the async facade over a store. It validates, loads what the pure engines need in as
//! few store calls as it can, and persists what they produce.

use crate::arbitration::{
    Arbitrator, BetaBernoulli, CompiledCatalog, DecisionInput, DecisionScratch, PropensityModel,
};
use crate::clock::{Clock, SystemClock};
use crate::error::{Error, Result};
use crate::journey::{CompiledJourneys, CompiledTriggers};
use crate::model::{
    BudgetCounts, Catalog, ContactEvent, Customer, CustomerId, Decision, DecisionId,
    DecisionRequest, OfferId, Outcome, OutcomeKind, Span, TimeRange, Timestamp, Touchpoint,
};
use crate::store::{
    BudgetDraw, BudgetKey, CatalogMeta, CatalogVersion, DecisionCommit, DecisionState,
    DecisionStateQuery, ForgetReport, OutcomeRecorded, Placed, Store, StoredCatalog, UpsertReport,
};
use parking_lot::RwLock;
use std::path::Path;
use std::sync::Arc;

/// Options of an [`Engine`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct EngineOptions {
    /// How much history [`Engine::customer_state`] loads when no catalogue says otherwise: the
    /// touchpoints and contact history of this span before now. With a catalogue, the span is
    /// at least the longest window its features and contact policies look back over.
    pub state_horizon: Span,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            state_horizon: Span::days(90),
        }
    }
}

/// What the engine knows about one customer at one instant: what decisions are made from.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct CustomerState {
    /// The profile.
    pub customer: Customer,
    /// Touchpoints in `window`, oldest first.
    pub touchpoints: Vec<Touchpoint>,
    /// Contact history in `window`, oldest first.
    pub contacts: Vec<ContactEvent>,
    /// The span of history loaded, ending at the instant the state was taken.
    pub window: TimeRange,
}

/// What an ingest did.
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct IngestReport {
    /// Touchpoints stored.
    pub inserted: u64,
    /// Touchpoints already stored, not stored again.
    pub duplicates: u64,
    /// What placing the batch's journey events in the customers' journeys did.
    pub journeys: Placed,
    /// Follow-up cases the batch's survey answers opened (new ones only).
    pub cases_opened: u64,
    /// The decisions real-time triggers made for the batch's touchpoints, in batch order.
    pub decisions: Vec<Decision>,
    /// Trigger decisions that failed (the touchpoints are stored all the same), with why.
    pub trigger_errors: Vec<String>,
}

/// The entry point of `cx`: customers, touchpoints and the catalogue over one store.
///
/// Cheap to share: wrap it in an `Arc` and call it from many tasks. See the `cx` crate's docs for
/// a runnable example on the in-memory store.
#[derive(Debug)]
pub struct Engine {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    options: EngineOptions,
    model: Arc<dyn PropensityModel>,
    current: RwLock<Option<Loaded>>,
}

/// The catalogue in use: as stored, and compiled for decisions, journeys and triggers.
#[derive(Debug, Clone)]
pub(crate) struct Loaded {
    pub(crate) stored: Arc<StoredCatalog>,
    pub(crate) arbitrator: Arbitrator,
    pub(crate) journeys: Arc<CompiledJourneys>,
    pub(crate) triggers: Arc<CompiledTriggers>,
}

impl Engine {
    /// An engine over `store`, on the system clock, with no catalogue loaded yet (see
    /// [`Engine::open`] to pick up the store's current catalogue).
    pub fn new(store: Arc<dyn Store>) -> Self {
        Engine {
            store,
            clock: Arc::new(SystemClock),
            options: EngineOptions::default(),
            model: Arc::new(BetaBernoulli::new()),
            current: RwLock::new(None),
        }
    }

    /// An engine over `store` with the store's current catalogue loaded, if it has one.
    pub async fn open(store: Arc<dyn Store>) -> Result<Self> {
        let engine = Engine::new(store);
        engine.reload_catalog().await?;
        Ok(engine)
    }

    /// Uses `clock` for "now".
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Scores with `model` instead of the default adaptive Beta-Bernoulli model. Load (or reload)
    /// the catalogue after this, so the model is bound to it.
    #[must_use]
    pub fn with_propensity_model(mut self, model: Arc<dyn PropensityModel>) -> Self {
        self.model = model;
        self
    }

    /// The propensity model.
    pub fn propensity_model(&self) -> &Arc<dyn PropensityModel> {
        &self.model
    }

    /// Uses `options`.
    #[must_use]
    pub fn with_options(mut self, options: EngineOptions) -> Self {
        self.options = options;
        self
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The current instant, from the engine's clock.
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// The catalogue in use, if one is loaded.
    pub fn catalog(&self) -> Option<Arc<StoredCatalog>> {
        self.current.read().as_ref().map(|l| Arc::clone(&l.stored))
    }

    /// The arbitrator over the catalogue in use (for pure, offline decisions).
    pub fn arbitrator(&self) -> Result<Arbitrator> {
        self.current
            .read()
            .as_ref()
            .map(|l| l.arbitrator.clone())
            .ok_or_else(|| Error::not_found("catalog", "current (load one first)"))
    }

    /// The catalogue in use with its compiled forms, if one is loaded.
    pub(crate) fn loaded(&self) -> Option<Loaded> {
        self.current.read().clone()
    }

    /// Compiles `stored` and starts using it, unless a newer version is in use already.
    fn install(&self, stored: StoredCatalog) -> Result<()> {
        let compiled = CompiledCatalog::compile(stored.catalog.clone(), stored.version.version)?;
        let extra = compile_journeys(&compiled)?;
        self.install_compiled(stored, compiled, extra);
        Ok(())
    }

    /// Starts using `compiled` (the compiled form of `stored`), unless a newer version is in
    /// use already, and binds the propensity model to it.
    fn install_compiled(
        &self,
        stored: StoredCatalog,
        compiled: CompiledCatalog,
        (journeys, triggers): (CompiledJourneys, CompiledTriggers),
    ) {
        let version = stored.version.version;
        let compiled = Arc::new(compiled.with_version(version));
        let mut current = self.current.write();
        // Another task may have loaded a newer version meanwhile; keep the newest.
        if current
            .as_ref()
            .is_none_or(|c| c.stored.version.version <= version)
        {
            self.model.bind(
                &compiled.offer_ids(),
                compiled.propensity_segment_count(),
                compiled.config().prior,
            );
            *current = Some(Loaded {
                stored: Arc::new(stored),
                arbitrator: Arbitrator::new(compiled, Arc::clone(&self.model)),
                journeys: Arc::new(journeys),
                triggers: Arc::new(triggers),
            });
        }
    }

    /// Validates `catalog`, stores it as the next version and starts using it.
    pub async fn load_catalog(&self, catalog: Catalog) -> Result<CatalogVersion> {
        self.load_catalog_with(catalog, CatalogMeta::new()).await
    }

    /// Like [`load_catalog`](Self::load_catalog), with an author, a comment and optionally the
    /// version the caller expects to replace (a conflict if another writer got there first).
    pub async fn load_catalog_with(
        &self,
        catalog: Catalog,
        meta: CatalogMeta,
    ) -> Result<CatalogVersion> {
        // Compile before storing: a catalogue whose rules do not compile is never stored.
        let compiled = CompiledCatalog::compile(catalog.clone(), 0)?;
        let extra = compile_journeys(&compiled)?;
        let meta = CatalogMeta {
            at: meta.at.or_else(|| Some(self.now())),
            ..meta
        };
        let version = self.store.put_catalog(&catalog, meta).await?;
        self.install_compiled(
            StoredCatalog::new(version.clone(), catalog),
            compiled,
            extra,
        );
        Ok(version)
    }

    /// Reads, validates, stores and starts using the catalogue in file `path` (YAML, JSON or
    /// TOML by extension).
    pub async fn load_catalog_file(&self, path: impl AsRef<Path>) -> Result<CatalogVersion> {
        let catalog = Catalog::from_path(path)?;
        self.load_catalog(catalog).await
    }

    /// Starts using the store's current catalogue (another process may have put a newer one).
    pub async fn reload_catalog(&self) -> Result<Option<CatalogVersion>> {
        let Some(stored) = self.store.catalog(None).await? else {
            *self.current.write() = None;
            return Ok(None);
        };
        let version = stored.version.clone();
        self.install(stored)?;
        Ok(Some(version))
    }

    /// Inserts or replaces customer profiles (atomically; see
    /// [`CustomerStore`](crate::store::CustomerStore)).
    pub async fn upsert_customers(&self, customers: Vec<Customer>) -> Result<UpsertReport> {
        self.store.upsert_customers(customers).await
    }

    /// Appends touchpoints: validated, resolved, idempotent by id and atomic per batch (see
    /// [`TouchpointStore`](crate::store::TouchpointStore)). Then, with a catalogue loaded:
    ///
    /// 1. places the touchpoints that meet journey stage criteria in their customers' journeys
    ///    ([`JourneyStore`](crate::store::JourneyStore); see [`crate::journey`] for the rules);
    /// 2. opens a follow-up case for each survey answer at or below a follow-up rule's threshold,
    ///    owned by the owner of the stage the customer was in
    ///    ([`FollowUpStore`](crate::store::FollowUpStore); idempotent by case id);
    /// 3. runs the decision of each real-time trigger that a fresh touchpoint fires, and returns
    ///    the decisions in the report.
    ///
    /// The touchpoints are stored (step 0) before the rest runs: an error there is returned, but
    /// a failing trigger decision is only reported. A batch sent again places and opens nothing
    /// new, but fresh touchpoints in it fire their triggers again (contact policies cap what
    /// reaches the customer).
    pub async fn ingest(&self, touchpoints: Vec<Touchpoint>) -> Result<IngestReport> {
        let loaded = self.loaded();
        let now = self.now();
        let mut events = Vec::new();
        let mut surveys = Vec::new();
        let mut fresh = Vec::new();
        if let Some(loaded) = &loaded {
            loaded.journeys.events_of(&touchpoints, &mut events);
            let catalog = &loaded.stored.catalog;
            let triggers = &loaded.triggers;
            if !catalog.follow_ups.is_empty() || !triggers.is_empty() {
                for t in &touchpoints {
                    if t.survey.is_some()
                        && !crate::journey::follow_up::tripped(catalog, t).is_empty()
                    {
                        surveys.push(t.clone());
                    }
                    if !triggers.is_empty() && triggers.is_candidate(t, now) {
                        fresh.push(t.clone());
                    }
                }
            }
        }
        let appended = self.store.append_touchpoints(touchpoints).await?;
        let mut report = IngestReport {
            inserted: appended.inserted,
            duplicates: appended.duplicates,
            ..IngestReport::default()
        };
        let Some(loaded) = loaded else {
            return Ok(report);
        };
        if !events.is_empty() {
            report.journeys = self
                .store
                .advance_journeys(events, loaded.journeys.as_ref())
                .await?;
        }
        if !surveys.is_empty() {
            report.cases_opened = self.open_follow_ups(&loaded, surveys).await?;
        }
        for t in fresh {
            self.fire_triggers(&loaded, &t, now, &mut report).await?;
        }
        Ok(report)
    }

    /// The canonical customer id of a touchpoint's subject, if it resolves to a profile.
    async fn resolve_subject(&self, t: &Touchpoint) -> Result<Option<CustomerId>> {
        match &t.subject {
            crate::model::Subject::Customer(id) => self.store.resolve_customer(id).await,
            crate::model::Subject::Identity(identity) => {
                self.store.resolve_identity(identity).await
            }
        }
    }

    /// Opens the follow-up cases the survey answers in `surveys` call for.
    async fn open_follow_ups(&self, loaded: &Loaded, surveys: Vec<Touchpoint>) -> Result<u64> {
        let catalog = &loaded.stored.catalog;
        let mut cases = Vec::new();
        for t in surveys {
            let customer = match self.resolve_subject(&t).await? {
                Some(id) => id,
                None => match t.customer_id() {
                    Some(id) => id.clone(),
                    None => continue,
                },
            };
            let tracks = self.store.journey_tracks(&customer).await?;
            for rule in crate::journey::follow_up::tripped(catalog, &t) {
                cases.extend(crate::journey::follow_up::open_case(
                    catalog, rule, &customer, &t, &tracks,
                ));
            }
        }
        if cases.is_empty() {
            return Ok(0);
        }
        self.store.open_cases(cases).await
    }

    /// Runs the decisions the fresh touchpoint `t` fires.
    async fn fire_triggers(
        &self,
        loaded: &Loaded,
        t: &Touchpoint,
        now: Timestamp,
        report: &mut IngestReport,
    ) -> Result<()> {
        let Some(customer_id) = self.resolve_subject(t).await? else {
            return Ok(());
        };
        let Some(customer) = self.store.customer(&customer_id).await? else {
            return Ok(());
        };
        let until = now.max(t.occurred_at) + chrono::TimeDelta::microseconds(1);
        let since = now.min(t.occurred_at) - loaded.triggers.lookback();
        let history = self
            .store
            .customer_touchpoints(&customer_id, TimeRange::new(since, until))
            .await?;
        let catalog = loaded.arbitrator.catalog();
        for (trigger, request) in loaded.triggers.fires(catalog, &customer, t, &history, now) {
            match self.decide(&request).await {
                Ok(decision) => report.decisions.push(decision),
                Err(e) => report
                    .trigger_errors
                    .push(format!("trigger {:?}: {e}", trigger.as_str())),
            }
        }
        Ok(())
    }

    /// The customer's profile, touchpoints and contact history over the state horizon, now.
    /// `id` may be the id of a customer merged into another. [`Error::NotFound`] if there is no
    /// such customer.
    pub async fn customer_state(&self, id: &CustomerId) -> Result<CustomerState> {
        let window = TimeRange::ending_at(self.now(), self.state_horizon());
        // The end is exclusive; include events stamped exactly now.
        let window = TimeRange::new(
            window.start,
            window.end + chrono::TimeDelta::microseconds(1),
        );
        let canonical = self
            .store
            .resolve_customer(id)
            .await?
            .ok_or_else(|| Error::not_found("customer", id.as_str()))?;
        let customer = self
            .store
            .customer(&canonical)
            .await?
            .ok_or_else(|| Error::not_found("customer", id.as_str()))?;
        let touchpoints = self.store.customer_touchpoints(&canonical, window).await?;
        let contacts = self.store.contact_history(&canonical, window).await?;
        Ok(CustomerState {
            customer,
            touchpoints,
            contacts,
            window,
        })
    }

    /// Decides for one request: loads the customer, the touchpoints the features need, the
    /// contact history the policies need and the budgets' use (one
    /// [`decision_state`](Store::decision_state) call), runs the
    /// pipeline, and records the decision together with the units of `shown` budgets its offers
    /// draw on, all or nothing (one [`commit_decision`](Store::commit_decision) call). If a
    /// budget ran out meanwhile, nothing is taken and it decides again without that budget.
    ///
    /// Errors: [`Error::NotFound`] for an unknown customer or when no catalogue is loaded.
    pub async fn decide(&self, request: &DecisionRequest) -> Result<Decision> {
        let arbitrator = self.arbitrator()?;
        let catalog = Arc::clone(arbitrator.catalog());
        let now = self.now();
        let (keys, state) = self.decision_state(&catalog, request, now).await?;
        let DecisionState {
            customer,
            touchpoints,
            features,
            contacts,
            mut budget_used,
            ..
        } = state;

        let id = new_decision_id();
        // Each round either succeeds or marks one more budget as used up, so this ends.
        for _ in 0..=catalog.budgets().len() {
            let input = DecisionInput {
                customer: &customer,
                touchpoints: &touchpoints,
                features: features.as_deref(),
                customer_inputs: None,
                feature_inputs: None,
                contact_inputs: None,
                contacts: &contacts,
                budget_used: &budget_used,
                now,
            };
            let decision = arbitrator.decide(&input, request, id.clone());
            let (draws, budgets) = Self::budget_draws(&catalog, &decision, &keys);
            match self.store.commit_decision(&decision, &draws).await? {
                DecisionCommit::Recorded => return Ok(decision),
                // Nothing was taken: decide again with that budget used up.
                DecisionCommit::Refused(draw) => {
                    if let Some(&exhausted) = budgets.get(draw)
                        && let (Some(slot), Some(budget)) = (
                            budget_used.get_mut(exhausted),
                            catalog.budgets().get(exhausted),
                        )
                    {
                        *slot = budget.limit;
                    }
                }
            }
        }
        Err(Error::Storage {
            backend: self.store.backend(),
            message: "budgets kept running out while deciding".to_owned(),
            source: None,
        })
    }

    /// What [`Engine::decide`] would decide for `request` now, from the same state, without
    /// recording the decision or consuming any budget: for offline evaluation and dry runs (the
    /// decision's id is fresh and nothing refers to it, so no outcome can be recorded for it).
    ///
    /// Errors: [`Error::NotFound`] for an unknown customer or when no catalogue is loaded.
    pub async fn preview(&self, request: &DecisionRequest) -> Result<Decision> {
        let arbitrator = self.arbitrator()?;
        let catalog = Arc::clone(arbitrator.catalog());
        let now = self.now();
        let (_, state) = self.decision_state(&catalog, request, now).await?;
        let id = new_decision_id();
        Ok(arbitrator.decide(&state.input(now), request, id))
    }

    /// What [`Engine::preview`] gives for each of `requests`, in order, each with its own
    /// result (an unknown customer fails its own entry only): for offline evaluation of many
    /// customers. The catalogue, the budget keys and the decision ids are taken once for the
    /// whole batch, every decision is made at the same instant, and the states are read with
    /// one [`visit_decision_states`](Store::visit_decision_states) call (in memory: nothing
    /// copied out of the store).
    pub async fn preview_many(
        &self,
        requests: &[DecisionRequest],
    ) -> Result<Vec<Result<Decision>>> {
        let mut out = Vec::with_capacity(requests.len());
        self.preview_each(requests, &mut |_, decision| out.push(decision))
            .await?;
        Ok(out)
    }

    /// [`preview_many`](Self::preview_many), handing each decision (or its error) with its
    /// request's position to `visit` as soon as it is made, in order, instead of collecting
    /// them: a caller that writes decisions out (as rows of a table) keeps none of them, and
    /// each decision's memory is reused by the next while it is in the caches.
    pub async fn preview_each(
        &self,
        requests: &[DecisionRequest],
        visit: &mut (dyn FnMut(usize, Result<Decision>) + Send),
    ) -> Result<()> {
        let arbitrator = self.arbitrator()?;
        let catalog = Arc::clone(arbitrator.catalog());
        let now = self.now();
        let query = Self::state_query(
            &catalog,
            CustomerId::default(),
            now,
            budget_keys(&catalog, now),
        );
        let customers: Vec<CustomerId> = requests.iter().map(|r| r.customer.clone()).collect();
        let mut ids = new_decision_ids(requests.len()).into_iter();
        let mut visited = 0;
        let mut scratch = DecisionScratch::default();
        self.store
            .visit_decision_states(&query, &customers, &mut |i, state| {
                let Some(request) = requests.get(i) else {
                    return;
                };
                visited += 1;
                let id = ids.next().unwrap_or_else(new_decision_id);
                visit(
                    i,
                    match state {
                        Some(state) => Ok(arbitrator.decide_with(
                            &state.input(now),
                            request,
                            id,
                            &mut scratch,
                        )),
                        None => Err(Error::not_found("customer", request.customer.as_str())),
                    },
                );
            })
            .await?;
        if visited != requests.len() {
            return Err(Error::Storage {
                backend: self.store.backend(),
                message: format!(
                    "visit_decision_states visited {visited} of {} customers",
                    requests.len()
                ),
                source: None,
            });
        }
        Ok(())
    }

    /// The budget keys of `catalog` at `now`, and everything a decision for `request` reads,
    /// in one store call (one round trip on PostgreSQL).
    async fn decision_state(
        &self,
        catalog: &Arc<CompiledCatalog>,
        request: &DecisionRequest,
        now: Timestamp,
    ) -> Result<(Vec<BudgetKey>, DecisionState)> {
        let keys = budget_keys(catalog, now);
        let state = self.read_state(catalog, request, now, keys.clone()).await?;
        Ok((keys, state))
    }

    /// Everything a decision for `request` at `now` reads, with the use of the budget counters
    /// `keys`, in one store call.
    async fn read_state(
        &self,
        catalog: &Arc<CompiledCatalog>,
        request: &DecisionRequest,
        now: Timestamp,
        keys: Vec<BudgetKey>,
    ) -> Result<DecisionState> {
        self.read(&Self::state_query(
            catalog,
            request.customer.clone(),
            now,
            keys,
        ))
        .await
    }

    /// What a decision for `customer` at `now` reads under `catalog`, with the use of the
    /// budget counters `keys`.
    fn state_query(
        catalog: &Arc<CompiledCatalog>,
        customer: CustomerId,
        now: Timestamp,
        keys: Vec<BudgetKey>,
    ) -> DecisionStateQuery {
        let until = now + chrono::TimeDelta::microseconds(1);
        let lookback = |span: Span| {
            (!span.is_zero()).then(|| TimeRange::new(TimeRange::ending_at(now, span).start, until))
        };
        DecisionStateQuery::new(customer)
            .touchpoints(lookback(catalog.touchpoint_lookback()))
            .features(Arc::clone(catalog), now)
            .contacts(lookback(catalog.contact_lookback()))
            .budgets(keys)
    }

    /// The answer to `query`, in one store call; an unknown customer is not found.
    async fn read(&self, query: &DecisionStateQuery) -> Result<DecisionState> {
        self.store
            .decision_state(query)
            .await?
            .ok_or_else(|| Error::not_found("customer", query.customer.as_str()))
    }

    /// The draws `decision` makes: one unit of each `shown` budget its offers draw on, with
    /// the catalogue's index of each draw's budget.
    fn budget_draws(
        catalog: &CompiledCatalog,
        decision: &Decision,
        keys: &[BudgetKey],
    ) -> (Vec<BudgetDraw>, Vec<usize>) {
        decision
            .offers
            .iter()
            .filter_map(|selected| {
                let b = catalog
                    .offer_index(&selected.offer)
                    .and_then(|i| catalog.offer(i))
                    .and_then(|o| o.budget_index())?;
                let (budget, key) = (catalog.budgets().get(b)?, keys.get(b)?);
                (budget.counts == BudgetCounts::Shown).then(|| {
                    let draw = BudgetDraw {
                        key: key.clone(),
                        limit: budget.limit,
                        amount: 1,
                    };
                    (draw, b)
                })
            })
            .unzip()
    }

    /// Records what happened to an offer of a decision, and learns from it: `accepted` is a
    /// success and `rejected` or `ignored` a failure of the offer's propensity (`shown` and
    /// `converted` resolve no trial). The same outcome recorded twice counts once. An
    /// `accepted` outcome consumes the offer's budget if that budget counts acceptances.
    ///
    /// Errors: [`Error::NotFound`] for an unknown decision, [`Error::Validation`] for an offer
    /// the decision did not choose.
    pub async fn record_outcome(
        &self,
        decision: &DecisionId,
        offer: &OfferId,
        kind: OutcomeKind,
    ) -> Result<OutcomeRecorded> {
        let outcome = Outcome {
            decision: decision.clone(),
            offer: offer.clone(),
            kind,
            at: self.now(),
        };
        let recorded = self.store.record_outcome(&outcome).await?;
        if recorded == OutcomeRecorded::Duplicate {
            return Ok(recorded);
        }
        let Some(accepted) = crate::arbitration::propensity::trial_result(kind) else {
            return Ok(recorded);
        };
        let arbitrator = self.arbitrator().ok();
        let segment = match (&arbitrator, self.store.decision(decision).await?) {
            (Some(a), Some(d)) => d
                .segment
                .as_ref()
                .and_then(|s| a.catalog().propensity_segment_index(s)),
            _ => None,
        };
        self.model.observe(offer, segment, accepted);
        if accepted && let Some(arbitrator) = arbitrator {
            let catalog = arbitrator.catalog();
            if let Some(b) = catalog
                .offer_index(offer)
                .and_then(|i| catalog.offer(i))
                .and_then(|o| o.budget_index())
                && let Some(budget) = catalog.budgets().get(b)
                && budget.counts == BudgetCounts::Accepted
            {
                let key = BudgetKey::new(budget.id.clone(), budget.period_key(outcome.at));
                self.store.consume_budget(&key, budget.limit, 1).await?;
            }
        }
        Ok(recorded)
    }

    /// Erases everything about the customer (see
    /// [`CustomerStore::forget_customer`](crate::store::CustomerStore::forget_customer)).
    pub async fn forget(&self, id: &CustomerId) -> Result<ForgetReport> {
        self.store.forget_customer(id).await
    }

    /// The span of history a customer state covers: the configured horizon, or longer if the
    /// catalogue's features or contact policies look further back.
    fn state_horizon(&self) -> Span {
        let mut horizon = self.options.state_horizon;
        if let Some(loaded) = self.current.read().as_ref() {
            let catalog = &loaded.stored.catalog;
            let windows = catalog
                .features
                .iter()
                .map(|f| f.window)
                .chain(catalog.contact_policy.iter().map(|r| r.lookback()))
                .chain(
                    catalog
                        .offers
                        .iter()
                        .flat_map(|o| o.contact_policy.iter().map(|r| r.lookback())),
                );
            for window in windows {
                horizon = horizon.max(window);
            }
        }
        horizon
    }
}

/// A fresh decision id: `d-` and 128 random bits in 22 base-62 digits, from the operating
/// system's generator. Not from a thread-local generator: a process forked from another (a
/// Python worker pool) would copy its state and make the same ids as its parent.
fn new_decision_id() -> DecisionId {
    new_decision_ids(1).pop().unwrap_or_default()
}

/// `n` fresh decision ids: the first from 128 random bits of the operating system's
/// generator, each next one the number after it (wrapping). Unique within the batch, and as
/// unlikely to meet another batch's as random ids are; each after the first costs an
/// increment of its digits instead of a number written out in base 62.
fn new_decision_ids(n: usize) -> Vec<DecisionId> {
    let mut bytes = [0u8; 16];
    let first = match getrandom::fill(&mut bytes) {
        Ok(()) => u128::from_le_bytes(bytes),
        Err(_) => rand::random::<u128>(),
    };
    decision_ids_from(first, n)
}

/// The ids of the `n` numbers from `first` on (wrapping): `decision_id(first + i)`.
fn decision_ids_from(first: u128, n: usize) -> Vec<DecisionId> {
    let mut text = id_text(first);
    let mut number = first;
    let mut ids = Vec::with_capacity(n);
    for _ in 0..n {
        ids.push(DecisionId::new(
            std::str::from_utf8(&text).unwrap_or_default(),
        ));
        number = number.wrapping_add(1);
        if number == 0 {
            text = id_text(0);
        } else {
            // Below 2^128, the 22 digits never carry out.
            for byte in text.iter_mut().skip(2).rev() {
                let (next, carry) = match *byte {
                    b'9' => (b'A', false),
                    b'Z' => (b'a', false),
                    b'z' => (b'0', true),
                    digit => (digit + 1, false),
                };
                *byte = next;
                if !carry {
                    break;
                }
            }
        }
    }
    ids
}

/// The digits of a decision id, in ASCII order: ids of one length sort as their numbers do.
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// `d-` and `bits` in 22 base-62 digits (62^22 > 2^128), most significant first: 24 bytes,
/// which an id keeps inline, so copying one (into a decision, a contact history read by the
/// next decision, a table) allocates nothing. Hex took 34 bytes, on the heap.
#[cfg(test)]
fn decision_id(bits: u128) -> DecisionId {
    DecisionId::new(std::str::from_utf8(&id_text(bits)).unwrap_or_default())
}

/// The text of [`decision_id`]`(bits)`.
fn id_text(bits: u128) -> [u8; 24] {
    // 62^10 fits a u64: two 128-bit divisions split `bits` into words of 10, 10 and 2 digits,
    // whose digits 64-bit arithmetic finds (a division by 62 is then a multiplication).
    const WORD: u128 = 62u128.pow(10);
    let words = [
        (bits / WORD / WORD) as u64,
        (bits / WORD % WORD) as u64,
        (bits % WORD) as u64,
    ];
    let mut text = *b"d-0000000000000000000000";
    let (_, digits) = text.split_at_mut(2);
    let (high, rest) = digits.split_at_mut(2);
    let (middle, low) = rest.split_at_mut(10);
    for (mut word, out) in words.into_iter().zip([high, middle, low]) {
        // The last byte is the lowest digit.
        for byte in out.iter_mut().rev() {
            if let Some(&digit) = BASE62.get((word % 62) as usize) {
                *byte = digit;
            }
            word /= 62;
        }
    }
    text
}

/// The counters of `catalog`'s budgets for the periods that hold `now`, in catalogue order.
fn budget_keys(catalog: &CompiledCatalog, now: Timestamp) -> Vec<BudgetKey> {
    catalog
        .budgets()
        .iter()
        .map(|b| BudgetKey::new(b.id.clone(), b.period_key(now)))
        .collect()
}

/// Compiles the journeys and triggers of a compiled catalogue.
fn compile_journeys(compiled: &CompiledCatalog) -> Result<(CompiledJourneys, CompiledTriggers)> {
    Ok((
        CompiledJourneys::compile(compiled.catalog(), compiled.vocabulary())?,
        CompiledTriggers::compile(compiled)?,
    ))
}

#[cfg(test)]
mod ids {
    use super::decision_id;

    /// The base-62 digits of `bits`, worked out another way (by big-number division in
    /// Python for the fixed cases) and by comparison for the order.
    #[test]
    fn decision_ids_are_24_bytes_of_base_62_in_number_order() {
        for (bits, id) in [
            (0, "d-0000000000000000000000"),
            (61, "d-000000000000000000000z"),
            (62, "d-0000000000000000000010"),
            (u128::MAX, "d-7n42DGM5Tflk9n8mt7Fhc7"),
            (
                0x0123_4567_89ab_cdef_fedc_ba98_7654_3210,
                "d-0296tiiBb3UUmdjYQ3ySu0",
            ),
        ] {
            assert_eq!(decision_id(bits).as_str(), id);
        }
        let mut previous = decision_id(0);
        for shift in 0..128 {
            for bits in [
                1u128 << shift,
                (1u128 << shift) | 1,
                u128::MAX >> (127 - shift),
            ] {
                let id = decision_id(bits);
                assert_eq!(id.as_str().len(), 24);
                assert!(
                    id.as_str()
                        .bytes()
                        .skip(2)
                        .all(|b| b.is_ascii_alphanumeric())
                );
                // Numbers in ascending order give ids in ascending order.
                if bits > 1 {
                    assert!(decision_id(bits - 1) < id, "{bits:x}");
                }
                previous = previous.max(id);
            }
        }
        assert_eq!(previous, decision_id(u128::MAX));
        let fresh = super::new_decision_ids(3);
        assert!(fresh.iter().all(|id| id.as_str().len() == 24));
        assert!(fresh[0] != fresh[1] && fresh[1] != fresh[2]);
    }

    /// A batch's ids are the numbers after the first, written out: across a carry through
    /// every digit, the digit ranges' ends and the wrap past 2^128 - 1.
    #[test]
    fn a_batch_counts_up_from_its_first_id() {
        const WORD: u128 = 62u128.pow(10);
        for first in [
            0,
            9,
            35,
            61,
            62u128.pow(2) - 3,
            WORD * WORD - 2,
            0x0123_4567_89ab_cdef_fedc_ba98_7654_3210,
            u128::MAX - 2,
        ] {
            let ids = super::decision_ids_from(first, 130);
            for (i, id) in (0u128..).zip(&ids) {
                assert_eq!(id, &decision_id(first.wrapping_add(i)), "{first} + {i}");
            }
        }
    }
}
