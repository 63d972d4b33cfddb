//! The decision pipeline, as a pure function over a loaded customer state: candidates ->
//! consent -> eligibility -> contact policy -> budget -> suitability -> scoring -> selection ->
//! fallback. No I/O, no locks but the propensity model's read of its table, a fixed number of
//! allocations per decision.

use super::compiled::{
    ChannelOffers, CompiledCatalog, CompiledOffer, CustomerInputs, Hot, WeightKeys,
};
use super::contacts::ContactWindow;
use super::explore::{DecisionRng, Pick, Scored, select};
use super::features::{self, FeatureBuffers, FeatureInputs, FeatureScratch, recycle};
use super::policy::{CompiledContactRule, Lift};
use super::propensity::PropensityModel;
use super::screen::{Look, Screened, Settled};
use super::trace::{Exclusion, RuleRef, Trace};
use crate::model::{
    Attributes, ContactEvent, ContactScope, Customer, Decision, DecisionId, DecisionRequest,
    ExplanationRef, Name, OutcomeKind, ScoreFactors, SelectedOffer, Timestamp, Touchpoint, Value,
};
use crate::rules::{ClauseResults, Env, Scalar, SlotHints, SlotTable};
use rand::SeedableRng;
use std::sync::Arc;

/// What a decision reads, loaded by the engine (or built by hand, in tests and simulations).
#[derive(Debug, Clone, Copy)]
pub struct DecisionInput<'a> {
    /// The customer.
    pub customer: &'a Customer,
    /// Their touchpoints, oldest first (at least the longest feature window). Not read when
    /// `features` is given.
    pub touchpoints: &'a [Touchpoint],
    /// Their features at `now`, already computed (in catalogue order, as
    /// [`CompiledCatalog::compute_features`] gives them), e.g. by a store where it keeps the
    /// touchpoints; `None`: computed from `touchpoints`. Not read when `feature_inputs` that
    /// serve are given.
    pub features: Option<&'a [Option<Value>]>,
    /// What the catalogue's features read of their touchpoints, read ahead
    /// ([`CompiledCatalog::feature_inputs`], e.g. kept by a store with the timeline): if they
    /// [`serve`](FeatureInputs::serve) the catalogue at `now`, the features are computed from
    /// them, and neither `features` nor `touchpoints` is read.
    pub feature_inputs: Option<&'a FeatureInputs>,
    /// What the catalogue reads of their profile alone, read ahead
    /// ([`CompiledCatalog::customer_inputs`], e.g. kept by a store with the profile); `None`,
    /// or inputs read for another catalogue: read from `customer`.
    pub customer_inputs: Option<&'a CustomerInputs>,
    /// Their contact history, oldest first (at least the longest contact-policy lookback).
    /// Not read when `contact_inputs` read for the catalogue are given.
    pub contacts: &'a [ContactEvent],
    /// The same read ahead ([`CompiledCatalog::contact_inputs`], e.g. kept by a store with the
    /// customer); `None`, or inputs read for another catalogue: `contacts` is read.
    pub contact_inputs: Option<ContactWindow<'a>>,
    /// How much of each catalogue budget is used in its current period, in catalogue order
    /// ([`CompiledCatalog::budgets`]); missing entries count as unused.
    pub budget_used: &'a [u64],
    /// The instant of the decision.
    pub now: Timestamp,
}

/// Makes decisions from a compiled catalogue and a propensity model. Cheap to clone and share.
#[derive(Debug, Clone)]
pub struct Arbitrator {
    catalog: Arc<CompiledCatalog>,
    model: Arc<dyn PropensityModel>,
}

impl Arbitrator {
    /// An arbitrator over `catalog`, scoring with `model` (which must be bound to the catalogue:
    /// see [`PropensityModel::bind`]).
    pub fn new(catalog: Arc<CompiledCatalog>, model: Arc<dyn PropensityModel>) -> Self {
        Arbitrator { catalog, model }
    }

    /// The catalogue.
    pub fn catalog(&self) -> &Arc<CompiledCatalog> {
        &self.catalog
    }

    /// The propensity model.
    pub fn model(&self) -> &Arc<dyn PropensityModel> {
        &self.model
    }

    /// Decides for one request. Pure: the same input, request and seed give the same decision.
    /// A request without a seed draws one from the operating system's entropy.
    pub fn decide(
        &self,
        input: &DecisionInput<'_>,
        request: &DecisionRequest,
        id: DecisionId,
    ) -> Decision {
        self.decide_with(input, request, id, &mut DecisionScratch::default())
    }

    /// [`decide`](Self::decide), keeping in `scratch` what the next decision can reuse: for a
    /// batch of decisions, one scratch for all of them. The decision is the same.
    pub fn decide_with(
        &self,
        input: &DecisionInput<'_>,
        request: &DecisionRequest,
        id: DecisionId,
        scratch: &mut DecisionScratch,
    ) -> Decision {
        let catalog = &*self.catalog;
        let config = catalog.config();
        let now = input.now.timestamp_micros();
        let channel = &request.channel;
        let k = request.k.unwrap_or(config.k).max(1) as usize;

        // The vectors the last decision left, emptied (given back at the end).
        let mut kept = std::mem::take(&mut scratch.kept);
        // Slots every rule reads, resolved once.
        let mut customer_slots = reuse(&mut kept.customer_slots, catalog.vocabulary.customer.len());
        let read_ahead = input.customer_inputs.filter(|c| c.serve(catalog));
        match read_ahead {
            Some(given) => customer_slots.extend(given.slots()),
            None => catalog.vocabulary.customer.resolve_hinted(
                &input.customer.attributes,
                &mut scratch.customer,
                &mut customer_slots,
            ),
        }
        let mut feature_slots = reuse(&mut kept.feature_slots, catalog.features.len());
        let held = input
            .feature_inputs
            .filter(|held| held.serve(catalog, input.now));
        match (held, input.features) {
            (Some(held), _) => {
                let mut lent = scratch.features.lend();
                held.compute(&catalog.features, now, &mut lent, &mut feature_slots);
                scratch.features.give_back(lent);
            }
            (None, Some(given)) => {
                feature_slots.extend(Scalar::each(given));
                // A shorter list (from another catalogue version) leaves the rest missing.
                feature_slots.resize(catalog.features.len(), None);
            }
            (None, None) => features::compute(
                &catalog.features,
                &catalog.vocabulary,
                input.touchpoints,
                now,
                &mut FeatureScratch::default(),
                &mut feature_slots,
            ),
        }
        // What the decision reads of the request alone: read once for a batch of requests that
        // differ in the customer only.
        if scratch
            .request
            .as_ref()
            .is_some_and(|reads| !reads.serve(catalog, request))
        {
            scratch.request = None;
        }
        let reads = &*scratch
            .request
            .get_or_insert_with(|| RequestReads::read(catalog, request, &mut scratch.context));
        let mut context_slots = reuse(&mut kept.context_slots, catalog.vocabulary.context.len());
        context_slots.extend(Scalar::each(&reads.slots));
        let mut base_env = Env {
            customer: &customer_slots,
            context: &context_slots,
            touchpoint: &[],
            offer: &[],
            features: &feature_slots,
            segments: &[],
            now,
        };

        // The memberships offer rules read, each evaluated once (segment rules read neither
        // segments nor the context); a propensity segment among them is not evaluated again.
        let segment_slots = segment_memberships(catalog, &base_env);
        let segment =
            catalog
                .propensity_segments
                .iter()
                .position(|&s| match segment_slots.get(s as usize) {
                    Some(Some(Scalar::Bool(member))) => *member,
                    _ => catalog
                        .segments
                        .get(s as usize)
                        .is_some_and(|seg| seg.rule.eval(&base_env).holds()),
                });
        base_env.segments = &segment_slots;

        // Consent per interned purpose, on this channel.
        let mut consent = reuse(&mut kept.consent, catalog.purposes.len());
        consent.extend(
            catalog
                .purposes
                .iter()
                .map(|p| input.customer.has_consent(channel, p, input.now)),
        );

        let history = match input.contact_inputs.filter(|w| w.serve(catalog)) {
            Some(window) => History::kept(catalog, window, channel, now),
            None => History::new(catalog, input.contacts, channel, now),
        };
        let blocks = Blocks::new(catalog, &history, now);

        // Every clause the channel's offers share, evaluated once.
        // Made (and dropped) only for a channel the catalogue does not have.
        let none;
        let on_channel = match catalog.channel(channel) {
            Some(offers) => offers,
            None => {
                none = ChannelOffers::default();
                &none
            }
        };
        let mut shared = std::mem::take(&mut kept.shared);
        match read_ahead {
            Some(given) => {
                shared.copy_from(given.shared());
                on_channel.rest.eval(&base_env, &mut shared);
            }
            None => {
                shared.reset(catalog.shared_clauses);
                on_channel.plan.eval(&base_env, &mut shared);
            }
        }

        // The first look at every candidate, which settles most of them.
        let mut budget_out = reuse(&mut kept.budget_out, catalog.budgets.len());
        budget_out.extend(
            catalog
                .budgets
                .iter()
                .enumerate()
                .map(|(i, b)| input.budget_used.get(i).copied().unwrap_or(0) >= b.limit),
        );
        let screened = on_channel.screen.run(
            std::mem::take(&mut kept.screened),
            now,
            &consent,
            &shared,
            |category| {
                blocks
                    .by_category
                    .get(category)
                    .is_some_and(Option::is_some)
            },
            blocks
                .by_offer
                .iter()
                .filter_map(|&(offer, _, _)| on_channel.offers.binary_search(&offer).ok()),
            |budget| budget_out.get(budget).copied().unwrap_or(false),
        );
        let stage = Stage {
            catalog,
            base: &base_env,
            consent: &consent,
            blocks: &blocks,
            history: &history,
            budget_used: input.budget_used,
            now,
        };
        let mut excluded: Vec<(u32, Exclusion)> = Vec::with_capacity(if request.explain {
            screened.closer_count()
        } else {
            0
        });
        let mut survivors = reuse(&mut kept.survivors, on_channel.offers.len());
        for (position, closer) in screened.unsettled() {
            let Some(&index) = on_channel.offers.get(position) else {
                continue;
            };
            if !closer {
                survivors.push(index);
                continue;
            }
            let (Some(hot), Some(offer)) = (
                catalog.hot.get(index as usize),
                catalog.offers.get(index as usize),
            ) else {
                continue;
            };
            // The checks it needs, in pipeline order: the lowest bit set is the first.
            let capped = blocks.holds_back(*hot, index);
            let used_up = budget_out
                .get(hot.budget as usize)
                .copied()
                .unwrap_or(false);
            let mut look = on_channel.screen.slow(position);
            if capped {
                look |= Look::CAPPED;
            }
            if used_up {
                look |= Look::BUDGET;
            }
            let exclusion = match look & look.wrapping_neg() {
                0 => None,
                Look::CAPPED => blocks
                    .worst(*hot, index, None, &history, now)
                    .map(|(rule, lift)| Exclusion::Capped { rule, lift }),
                Look::BUDGET => stage.budget(*hot),
                Look::SUITABILITY => stage.suitability(offer, &shared),
                // An eligibility rule evaluated per offer, or the offer's own contact policy:
                // every stage, one by one.
                _ => stage.exclude(*hot, index, offer, Some(&shared)),
            };
            match exclusion {
                Some(exclusion) => {
                    if request.explain {
                        excluded.push((index, exclusion));
                    }
                }
                None => survivors.push(index),
            }
        }

        // Scoring: propensity × context weight × value × lever, each factor switchable.
        let scoring = config.scoring;
        let mut propensities = reuse(&mut kept.propensities, survivors.len());
        self.model
            .fill_means(&survivors, segment, &mut propensities);
        let weights = reads.weights;
        let mut factored = reuse(&mut kept.factored, survivors.len());
        let mut scored = reuse(&mut kept.scored, survivors.len());
        for (&index, &p) in survivors.iter().zip(&propensities) {
            let (Some(hot), Some(offer)) = (
                catalog.hot.get(index as usize),
                catalog.offers.get(index as usize),
            ) else {
                continue;
            };
            let mut f = factors(*hot, offer, weights);
            f.propensity = if scoring.propensity { p } else { 1.0 };
            if !scoring.context_weight {
                f.context_weight = 1.0;
            }
            if !scoring.value {
                f.value = 1.0;
            }
            if !scoring.lever {
                f.lever = 1.0;
            }
            f.score = f.propensity * f.context_weight * f.value * f.lever;
            factored.push((index, f));
            scored.push(Scored {
                offer: index,
                category: hot.category,
                score: f.score,
            });
        }

        let mut rng = DecisionRng::seed_from_u64(request.seed.unwrap_or_else(rand::random));
        let mut picks = reuse(&mut kept.picks, k);
        let model = &self.model;
        let mut draw = |i: usize, rng: &mut DecisionRng| -> f64 {
            let Some((index, f)) = factored.get(i) else {
                return 0.0;
            };
            let p = if scoring.propensity {
                model.sample(*index, segment, rng)
            } else {
                1.0
            };
            p * f.context_weight * f.value * f.lever
        };
        select(
            &config.exploration,
            &scored,
            k,
            &mut draw,
            &mut rng,
            &mut picks,
        );

        // The fallback skips targeting (eligibility, suitability) but never a hard limit: it
        // needs consent, room under every contact-policy rule and budget.
        let mut fallback = false;
        if picks.is_empty()
            && let Some(index) = catalog.fallback
            && let Some(offer) = catalog.offers.get(index as usize)
            && let Some(hot) = catalog.hot.get(index as usize)
            && offer.offer.channels.contains(channel)
            && stage.exclude(*hot, index, offer, None).is_none()
        {
            let f = factors(*hot, offer, reads.weights);
            picks.push(Pick {
                offer: index,
                category: offer.category,
                score: f.score,
                probability: 1.0,
            });
            fallback = true;
        }

        let selected: Vec<SelectedOffer> = picks
            .iter()
            .enumerate()
            .filter_map(|(rank, pick)| {
                let offer = catalog.offers.get(pick.offer as usize)?;
                Some(SelectedOffer {
                    offer: offer.offer.id.clone(),
                    category: offer.offer.category.clone(),
                    rank: u32::try_from(rank).unwrap_or(u32::MAX),
                    score: pick.score,
                    probability: pick.probability,
                })
            })
            .collect();

        let explanation = if !request.explain {
            // Nothing keeps them: the next decision reuses them.
            kept.shared = shared;
            kept.screened = screened;
            kept.factored = factored;
            kept.picks = picks;
            None
        } else {
            // The trace outlives the decision (in a decision log): keep no spare room. A
            // shrink in place, no copy.
            excluded.shrink_to_fit();
            factored.shrink_to_fit();
            let explain: Arc<dyn crate::model::Explain> = Arc::new(Trace {
                catalog: Arc::clone(&self.catalog),
                customer: input.customer.clone(),
                features: feature_slots.iter().map(|v| features::owned(*v)).collect(),
                segments: segment_slots
                    .iter()
                    .map(|v| match v {
                        Some(Scalar::Bool(b)) => Some(*b),
                        _ => None,
                    })
                    .collect(),
                context: context_attributes(request),
                channel: channel.clone(),
                now,
                excluded,
                screened,
                shared,
                scored: factored,
                picks,
                fallback,
                exploration: config.exploration,
            });
            Some(explain)
        };

        let decision = Decision {
            id,
            customer: input.customer.id.clone(),
            channel: channel.clone(),
            placement: request.placement.clone(),
            at: input.now,
            catalog_version: catalog.version,
            offers: selected,
            context: request.context.clone(),
            segment: segment
                .and_then(|s| catalog.propensity_segments.get(s))
                .and_then(|&s| catalog.segments.get(s as usize))
                .map(|s| s.id.clone()),
            explanation: ExplanationRef(explanation),
        };
        kept.customer_slots = recycle(customer_slots);
        kept.feature_slots = recycle(feature_slots);
        kept.context_slots = recycle(context_slots);
        kept.consent = consent;
        kept.budget_out = budget_out;
        kept.survivors = survivors;
        kept.propensities = propensities;
        kept.scored = scored;
        scratch.kept = kept;
        decision
    }
}

/// `segments.*` for the rules of `catalog`: `Some(member)` for each segment an offer rule
/// reads, `None` for the others. Empty (no allocation) when no offer rule reads a segment.
fn segment_memberships<'a>(catalog: &CompiledCatalog, env: &Env<'_>) -> Vec<Option<Scalar<'a>>> {
    if catalog.rule_segments.is_empty() {
        return Vec::new();
    }
    let mut slots = vec![None; catalog.segments.len()];
    for &s in &catalog.rule_segments {
        if let (Some(segment), Some(slot)) =
            (catalog.segments.get(s as usize), slots.get_mut(s as usize))
        {
            *slot = Some(Scalar::Bool(segment.rule.eval(env).holds()));
        }
    }
    slots
}

/// The `context.*` values of `request` in slot order: those of
/// [`context_attributes`], read without building it (the request's own `channel` and
/// `placement` are read from its fields, the rest from its context).
fn resolve_context<'a>(
    table: &SlotTable,
    request: &'a DecisionRequest,
    hints: &mut SlotHints,
    out: &mut Vec<Option<Scalar<'a>>>,
) {
    let field = |name: &str| {
        let text = match name {
            "channel" => Some(request.channel.as_str()),
            "placement" => request.placement.as_ref().map(Name::as_str),
            _ => None,
        };
        text.map(Scalar::Str)
    };
    table.resolve_hinted_with(&request.context, field, hints, out);
}

/// What [`Arbitrator::decide_with`] keeps from one decision to the next: where each
/// `customer.*` and `context.*` name was last found, so that a batch of decisions, whose
/// customers and requests usually carry the same names, reads each with one comparison; and
/// the decision's working vectors (slots, consent, survivors, scores...), emptied, so that a
/// warm batch allocates them no more.
#[derive(Debug, Default)]
pub struct DecisionScratch {
    customer: SlotHints,
    context: SlotHints,
    /// The vectors of the last decision, emptied, for the next one to fill (those its
    /// explanation kept, it kept).
    kept: Kept,
    /// What the last decision read of its request alone.
    request: Option<RequestReads>,
    /// For features computed from their inputs.
    features: FeatureBuffers,
}

/// What a decision reads of its request alone (its `context.*` slots, its context-weight
/// names), kept for the next decision of a batch under the same catalogue, on the same
/// channel and placement, with the same context.
#[derive(Debug)]
struct RequestReads {
    /// The [`CompiledCatalog::id`] they were read under.
    catalog: u64,
    channel: crate::model::Channel,
    placement: Option<Name>,
    context: Attributes,
    /// Per `context.*` slot, its value (as [`resolve_context`] reads it), owned.
    slots: Box<[Option<Value>]>,
    weights: WeightKeys,
}

impl RequestReads {
    fn read(catalog: &CompiledCatalog, request: &DecisionRequest, hints: &mut SlotHints) -> Self {
        let mut slots = Vec::new();
        resolve_context(&catalog.vocabulary.context, request, hints, &mut slots);
        RequestReads {
            catalog: catalog.id,
            channel: request.channel.clone(),
            placement: request.placement.clone(),
            context: request.context.clone(),
            slots: slots.into_iter().map(features::owned).collect(),
            weights: catalog.weight_keys(&request.channel, request.placement.as_ref()),
        }
    }

    /// Whether `request` under `catalog` reads these.
    fn serve(&self, catalog: &CompiledCatalog, request: &DecisionRequest) -> bool {
        self.catalog == catalog.id
            && self.channel == request.channel
            && self.placement == request.placement
            && self.context.same(&request.context)
    }
}

/// The vector `kept` left, taken out of it, emptied and with room for `room` items; of the
/// lifetime the decision needs (its allocation kept, see [`recycle`]).
fn reuse<T, U>(kept: &mut Vec<T>, room: usize) -> Vec<U> {
    let mut v = recycle(std::mem::take(kept));
    v.reserve(room);
    v
}

/// The vectors [`DecisionScratch`] keeps between decisions.
#[derive(Debug, Default)]
struct Kept {
    customer_slots: Vec<Option<Scalar<'static>>>,
    feature_slots: Vec<Option<Scalar<'static>>>,
    context_slots: Vec<Option<Scalar<'static>>>,
    consent: Vec<bool>,
    budget_out: Vec<bool>,
    shared: ClauseResults,
    screened: Screened,
    survivors: Vec<u32>,
    propensities: Vec<f64>,
    factored: Vec<(u32, ScoreFactors)>,
    scored: Vec<Scored>,
    picks: Vec<Pick>,
}

/// The request context as rules see it: the request's fields plus `channel` and `placement`.
fn context_attributes(request: &DecisionRequest) -> Attributes {
    let mut context = request.context.clone();
    context.insert("channel", Value::String(request.channel.as_str().into()));
    if let Some(placement) = &request.placement {
        context.insert("placement", Value::String(placement.as_str().into()));
    }
    context
}

/// The score factors of `offer` but its propensity; the full offer is read only for its
/// context weights, if it has any.
#[inline]
fn factors(hot: Hot, offer: &CompiledOffer, weights: WeightKeys) -> ScoreFactors {
    let context_weight = if hot.has(Hot::CONTEXT_WEIGHTS) {
        offer.context_weight(weights)
    } else {
        1.0
    };
    ScoreFactors {
        propensity: 1.0,
        context_weight,
        value: hot.value,
        lever: hot.lever,
        score: context_weight * hot.value * hot.lever,
    }
}

/// What every candidate's stages read, fixed for the decision.
struct Stage<'d> {
    catalog: &'d CompiledCatalog,
    base: &'d Env<'d>,
    consent: &'d [bool],
    blocks: &'d Blocks,
    history: &'d History,
    budget_used: &'d [u64],
    now: i64,
}

impl Stage<'_> {
    /// The first stage that excludes `offer`, in pipeline order. `targeting` holds the
    /// decision's shared-clause results; without it, the eligibility and suitability rules
    /// are skipped (for the fallback).
    #[inline(always)]
    fn exclude(
        &self,
        hot: Hot,
        index: u32,
        offer: &CompiledOffer,
        targeting: Option<&ClauseResults>,
    ) -> Option<Exclusion> {
        if !hot.valid_at(self.now) {
            return Some(Exclusion::NotValid);
        }
        if !self
            .consent
            .get(hot.purpose as usize)
            .copied()
            .unwrap_or(false)
        {
            return Some(Exclusion::NoConsent);
        }
        if let Some(shared) = targeting {
            let verdict = if hot.has(Hot::SHARED_ELIGIBILITY) {
                Some(shared.verdict(self.catalog.eligibility_ids(hot)))
            } else if hot.has(Hot::OWN_ELIGIBILITY)
                && let Some(rule) = &offer.eligibility
            {
                Some(rule.eval_shared(&self.env(offer), shared))
            } else {
                None
            };
            if let Some(verdict) = verdict
                && !verdict.holds()
            {
                return Some(Exclusion::Ineligible(verdict));
            }
        }
        if let Some((rule, lift)) =
            self.blocks
                .worst(hot, index, Some(offer), self.history, self.now)
        {
            return Some(Exclusion::Capped { rule, lift });
        }
        if let Some(exhausted) = self.budget(hot) {
            return Some(exhausted);
        }
        match targeting {
            Some(shared) if hot.has(Hot::SUITABILITY) => self.suitability(offer, shared),
            _ => None,
        }
    }

    /// The budget stage.
    #[inline]
    fn budget(&self, hot: Hot) -> Option<Exclusion> {
        let budget = self.catalog.budgets.get(hot.budget as usize)?;
        let used = self
            .budget_used
            .get(hot.budget as usize)
            .copied()
            .unwrap_or(0);
        (used >= budget.limit).then_some(Exclusion::BudgetExhausted {
            budget: hot.budget,
            used,
        })
    }

    /// The suitability stage.
    #[inline]
    fn suitability(&self, offer: &CompiledOffer, shared: &ClauseResults) -> Option<Exclusion> {
        let verdict = offer
            .suitability
            .as_ref()?
            .eval_shared(&self.env(offer), shared);
        (!verdict.holds()).then_some(Exclusion::Unsuitable(verdict))
    }

    /// The decision's environment with `offer.*` bound.
    fn env<'o>(&'o self, offer: &'o CompiledOffer) -> Env<'o> {
        Env {
            offer: &offer.values,
            ..*self.base
        }
    }
}

/// Why a candidate stopped where the screen settled it: what a decision's trace says of it,
/// worked out only when an explanation is read. `shared` holds the decision's shared-clause
/// results.
pub(crate) fn screened_out(
    catalog: &CompiledCatalog,
    index: u32,
    settled: Settled,
    shared: &ClauseResults,
) -> Option<Exclusion> {
    Some(match settled {
        Settled::NotValid => Exclusion::NotValid,
        Settled::NoConsent => Exclusion::NoConsent,
        Settled::Ineligible => {
            let hot = catalog.hot.get(index as usize)?;
            Exclusion::Ineligible(shared.verdict(catalog.eligibility_ids(*hot)))
        }
        Settled::Unsuitable => {
            let rule = catalog.offers.get(index as usize)?.suitability.as_ref()?;
            Exclusion::Unsuitable(shared.verdict(rule.shared_ids()))
        }
    })
}

/// What the catalogue-wide contact-policy rules block for this request, combined so each
/// candidate is one lookup by category and, when offer-scoped rules block anything, one
/// binary search. Each entry keeps the rule that holds the offer back longest, the first such
/// rule in catalogue order on ties (as checking the rules one by one would).
struct Blocks {
    /// Per category: the worst block of the category-, channel- and all-scoped rules.
    by_category: Vec<Option<(u32, Lift)>>,
    /// (offer, rule, lift): the worst block of the offer-scoped rules, sorted by offer.
    by_offer: Vec<(u32, u32, Lift)>,
}

/// Keeps `(rule, lift)` in `slot` if it lifts later than what is there.
fn keep_worse(slot: &mut Option<(u32, Lift)>, rule: u32, lift: Lift) {
    if slot.is_none_or(|(_, worst)| lift > worst) {
        *slot = Some((rule, lift));
    }
}

impl Blocks {
    fn new(catalog: &CompiledCatalog, history: &History, now: i64) -> Self {
        let mut by_category = vec![None; catalog.categories.len()];
        let mut by_offer: Vec<(u32, u32, Lift)> = Vec::new();
        let mut scratch = RuleScratch {
            times: Vec::with_capacity(history.events.len()),
            events: Vec::with_capacity(history.events.len()),
        };
        for (i, rule) in catalog.policies.iter().enumerate() {
            let i = index(i);
            let blocks = RuleBlocks::new(rule, history, now, &mut scratch);
            match rule.scope {
                ContactScope::Channel | ContactScope::All => {
                    if let Some(lift) = blocks.all {
                        for slot in &mut by_category {
                            keep_worse(slot, i, lift);
                        }
                    }
                }
                ContactScope::Category => {
                    for (category, lift) in blocks.keyed {
                        if let Some(slot) = by_category.get_mut(category as usize) {
                            keep_worse(slot, i, lift);
                        }
                    }
                }
                ContactScope::Offer => {
                    by_offer.extend(blocks.keyed.into_iter().map(|(o, lift)| (o, i, lift)));
                }
            }
        }
        // One entry per offer: the worst lift, the first rule on ties.
        by_offer.sort_unstable_by_key(|&(offer, rule, _)| (offer, rule));
        by_offer.dedup_by(|later, kept| {
            if later.0 != kept.0 {
                return false;
            }
            if later.2 > kept.2 {
                *kept = *later;
            }
            true
        });
        Blocks {
            by_category,
            by_offer,
        }
    }

    /// Whether a catalogue-wide rule holds back the offer `hot` describes, at `offer_index`.
    #[inline]
    fn holds_back(&self, hot: Hot, offer_index: u32) -> bool {
        self.by_category
            .get(hot.category as usize)
            .is_some_and(Option::is_some)
            || self
                .by_offer
                .binary_search_by_key(&offer_index, |&(offer, _, _)| offer)
                .is_ok()
    }

    /// The contact-policy rule that holds `offer` back longest, if any; the offer's own rules
    /// are read only when `offer` is given.
    #[inline]
    fn worst(
        &self,
        hot: Hot,
        offer_index: u32,
        offer: Option<&CompiledOffer>,
        history: &History,
        now: i64,
    ) -> Option<(RuleRef, Lift)> {
        let mut worst = self
            .by_category
            .get(hot.category as usize)
            .copied()
            .flatten();
        if !self.by_offer.is_empty()
            && let Ok(at) = self
                .by_offer
                .binary_search_by_key(&offer_index, |&(offer, _, _)| offer)
            && let Some(&(_, rule, lift)) = self.by_offer.get(at)
        {
            let later = worst.is_none_or(|(r, w)| lift > w || (lift == w && rule < r));
            if later {
                worst = Some((rule, lift));
            }
        }
        let mut worst = worst.map(|(rule, lift)| (RuleRef::Catalog(rule), lift));
        if hot.has(Hot::OWN_POLICIES)
            && let Some(offer) = offer
        {
            let mut times = Vec::new();
            for (i, rule) in offer.policies.iter().enumerate() {
                history.times(rule.scope, rule.outcome, Key::of(offer), &mut times);
                if let Some(lift) = rule.blocks(&times, now)
                    && worst.is_none_or(|(_, w)| lift > w)
                {
                    worst = Some((RuleRef::Offer(index(i)), lift));
                }
            }
        }
        worst
    }
}

fn index(i: usize) -> u32 {
    u32::try_from(i).unwrap_or(u32::MAX)
}

/// One contact-history event, keyed for counting.
#[derive(Debug, Clone, Copy)]
struct Event {
    offer: Option<u32>,
    category: Option<u32>,
    on_channel: bool,
    kind: OutcomeKind,
    at: i64,
}

/// The customer's contact history up to `now`, oldest first.
struct History {
    events: Vec<Event>,
}

#[derive(Debug, Clone, Copy)]
struct Key {
    offer: u32,
    category: u32,
}

impl Key {
    fn of(offer: &CompiledOffer) -> Key {
        Key {
            offer: offer.index,
            category: offer.category,
        }
    }
}

impl History {
    fn new(
        catalog: &CompiledCatalog,
        contacts: &[ContactEvent],
        channel: &crate::model::Channel,
        now: i64,
    ) -> Self {
        let from = Self::horizon(catalog, now);
        let mut events = Vec::with_capacity(contacts.len());
        for e in contacts {
            // Events of a kind no rule counts never matter.
            if !catalog.counts(e.kind) {
                continue;
            }
            let at = e.at.timestamp_micros();
            if at <= from || at > now {
                continue;
            }
            let (offer, category) = catalog.contact_keys(e);
            events.push(Event {
                offer,
                category,
                on_channel: &e.channel == channel,
                kind: e.kind,
                at,
            });
        }
        History { events }
    }

    /// The same from contact inputs read ahead (of the kinds the catalogue's rules count, their
    /// offers and categories found).
    fn kept(
        catalog: &CompiledCatalog,
        window: ContactWindow<'_>,
        channel: &crate::model::Channel,
        now: i64,
    ) -> Self {
        let from = Self::horizon(catalog, now);
        let code = window.channel_code(channel);
        let events = window
            .events()
            .iter()
            .filter(|e| e.micros > from && e.micros <= now)
            .map(|e| Event {
                offer: e.offer,
                category: e.category,
                on_channel: Some(e.channel) == code,
                kind: e.kind,
                at: e.micros,
            })
            .collect();
        History { events }
    }

    /// The instant at or before which no rule counts an event at `now`: `now` minus the longest
    /// lookback (see `CompiledContactRule::horizon`).
    fn horizon(catalog: &CompiledCatalog, now: i64) -> i64 {
        catalog
            .policies
            .iter()
            .map(|rule| rule.horizon(now))
            .fold(now.saturating_sub(catalog.contact_lookback), i64::min)
    }

    /// The instants of events of `kind` in `scope` relative to the offer `key`, ascending.
    fn times(&self, scope: ContactScope, kind: OutcomeKind, key: Key, out: &mut Vec<i64>) {
        out.clear();
        out.extend(
            self.events
                .iter()
                .filter(|e| {
                    e.kind == kind
                        && match scope {
                            ContactScope::Offer => e.offer == Some(key.offer),
                            ContactScope::Category => e.category == Some(key.category),
                            ContactScope::Channel => e.on_channel,
                            ContactScope::All => true,
                        }
                })
                .map(|e| e.at),
        );
    }
}

/// What one catalogue-wide rule blocks for this request, precomputed so each candidate is a
/// lookup: a lift per offer or per category it blocks, or one for all.
struct RuleBlocks {
    /// For scope channel/all: whether and until when everything is blocked.
    all: Option<Lift>,
    /// For scope offer/category: (offer or category index, lift), sorted by index.
    keyed: Vec<(u32, Lift)>,
}

/// Buffers [`RuleBlocks::new`] reuses from one rule to the next.
struct RuleScratch {
    times: Vec<i64>,
    events: Vec<(u32, i64)>,
}

impl RuleBlocks {
    fn new(
        rule: &CompiledContactRule,
        history: &History,
        now: i64,
        scratch: &mut RuleScratch,
    ) -> Self {
        let RuleScratch { times, events } = scratch;
        let mut keyed = Vec::new();
        let mut all = None;
        match rule.scope {
            ContactScope::Channel | ContactScope::All => {
                let key = Key {
                    offer: 0,
                    category: 0,
                };
                history.times(rule.scope, rule.outcome, key, times);
                all = rule.blocks(times, now);
            }
            ContactScope::Offer | ContactScope::Category => {
                // (key, instant) of the rule's events, grouped by key with one sort; events
                // before the rule's lookback never count, so they are not sorted.
                let from = rule.horizon(now);
                events.clear();
                events.extend(
                    history
                        .events
                        .iter()
                        .filter(|e| e.kind == rule.outcome && e.at > from)
                        .filter_map(|e| {
                            let key = if rule.scope == ContactScope::Offer {
                                e.offer
                            } else {
                                e.category
                            };
                            key.map(|k| (k, e.at))
                        }),
                );
                events.sort_unstable();
                for group in events.chunk_by(|a, b| a.0 == b.0) {
                    let Some(&(key, _)) = group.first() else {
                        continue;
                    };
                    times.clear();
                    times.extend(group.iter().map(|(_, at)| *at));
                    if let Some(lift) = rule.blocks(times, now) {
                        keyed.push((key, lift));
                    }
                }
            }
        }
        RuleBlocks { all, keyed }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Channel, ValueType};

    /// The context read in place agrees with the built context attributes: with and without a
    /// placement, with the request's context naming `channel` or `placement` itself, with
    /// missing names and with a table declaring `channel` of another type; one set of hints
    /// carried across all of them.
    #[test]
    fn context_read_in_place_matches_the_built_attributes() {
        let mut strings = SlotTable::default();
        let mut odd = SlotTable::default();
        for (name, ty) in [
            ("device_os", ValueType::String),
            ("channel", ValueType::String),
            ("session_pages", ValueType::Number),
            ("placement", ValueType::String),
        ] {
            strings.add(Name::new(name), ty).unwrap();
            let ty = if name == "channel" {
                ValueType::Number
            } else {
                ty
            };
            odd.add(Name::new(name), ty).unwrap();
        }
        let base = DecisionRequest::new("c", Channel::Sms);
        let requests = [
            base.clone(),
            base.clone().placement("home_banner"),
            base.clone()
                .context("device_os", "ios")
                .context("session_pages", 3.0),
            base.clone()
                .context("channel", 7.0)
                .context("placement", "side")
                .context("aaa", true),
            base.clone()
                .placement("home_banner")
                .context("placement", "side")
                .context("session_pages", "many"),
            base.context("zzz", 1.0).context("device_os", 2.0),
        ];
        for table in [&strings, &odd] {
            let mut hints = SlotHints::default();
            for request in &requests {
                let built = context_attributes(request);
                let (mut expected, mut read) = (Vec::new(), Vec::new());
                table.resolve(&built, &mut expected);
                resolve_context(table, request, &mut hints, &mut read);
                assert_eq!(read, expected, "{request:?}");
            }
        }
    }
}
