//! A catalogue compiled for decisions: offers indexed, categories and purposes interned, every
//! rule compiled against the catalogue's vocabulary. Built once when a catalogue loads.

use super::features::{CompiledFeature, FeatureInputs, FeatureSet, TouchpointFields};
use super::policy::CompiledContactRule;
use super::screen::{ChannelScreen, Look, Row};
use crate::error::{Error, Result};
use crate::model::{
    ArbitrationConfig, Budget, Catalog, Category, Channel, Customer, Name, Offer, OfferId, Purpose,
    Text, Value, ValueType,
};
use crate::rules::{
    ClauseInterner, ClausePlan, ClauseResults, CompiledRule, Env, Namespace, Scalar, SlotHints,
    SlotTable, Vocabulary, compile_rule,
};
use crate::text_key::TextKey;
use foldhash::HashMap;
use foldhash::HashMapExt as _;
use std::sync::Arc;

/// Names rules may read in offer eligibility and suitability rules.
const OFFER_RULE: &[Namespace] = &[
    Namespace::Customer,
    Namespace::Context,
    Namespace::Offer,
    Namespace::Feature,
    Namespace::Segment,
];
/// What changes from one candidate to the next within a decision: clauses reading these are
/// evaluated per offer; all others once per decision (see [`ClausePlan`]).
const PER_CANDIDATE: &[Namespace] = &[Namespace::Offer, Namespace::Touchpoint];
/// Names segment rules may read (not `segments.*`: membership never depends on itself).
const SEGMENT_RULE: &[Namespace] = &[Namespace::Customer, Namespace::Feature];

/// One offer, ready for the pipeline.
#[derive(Debug, Clone)]
pub struct CompiledOffer {
    /// The definition.
    pub offer: Offer,
    /// Its index in decisions.
    pub(crate) index: u32,
    /// Interned category.
    pub(crate) category: u32,
    /// Its category's [`TextKey`], to compare a contact event's category without a byte
    /// loop.
    pub(crate) category_key: TextKey,
    /// Interned consent purpose.
    pub(crate) purpose: u32,
    pub(crate) eligibility: Option<CompiledRule>,
    pub(crate) suitability: Option<CompiledRule>,
    /// `offer.*` values in slot order.
    pub(crate) values: Box<[Option<Value>]>,
    /// Its context weights, by interned name ([`CompiledCatalog::weight_names`]).
    pub(crate) weights: Box<[(u32, f64)]>,
    /// The offer's own contact-policy rules.
    pub(crate) policies: Box<[CompiledContactRule]>,
    /// Index of its budget in the catalogue's budgets.
    pub(crate) budget: Option<u32>,
    pub(crate) valid_from: i64,
    pub(crate) valid_until: i64,
}

impl CompiledOffer {
    /// Whether `category` is the offer's category.
    #[inline]
    pub(crate) fn in_category(&self, category: &str) -> bool {
        TextKey::of(category).same(category, self.category_key, self.offer.category.as_str())
    }

    /// The index of its budget among the catalogue's budgets.
    pub fn budget_index(&self) -> Option<usize> {
        self.budget.map(|b| b as usize)
    }

    /// The context weight for a request whose channel and placement have the interned names
    /// `keys` (see [`CompiledCatalog::weight_keys`]): the channel's weight times the
    /// placement's, each 1 where the offer names none.
    pub(crate) fn context_weight(&self, keys: WeightKeys) -> f64 {
        let weight = |key: Option<u32>| {
            key.and_then(|key| self.weights.iter().find(|(k, _)| *k == key))
                .map_or(1.0, |(_, w)| *w)
        };
        weight(keys.channel) * weight(keys.placement)
    }
}

/// The interned context-weight names of a request's channel and placement (`None`: no offer
/// weighs it).
#[derive(Debug, Clone, Copy)]
pub(crate) struct WeightKeys {
    channel: Option<u32>,
    placement: Option<u32>,
}

/// What the candidate loop reads of an offer, packed so a decision walks a small array rather
/// than the offers themselves.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Hot {
    pub(crate) valid_from: i64,
    pub(crate) valid_until: i64,
    pub(crate) purpose: u32,
    pub(crate) category: u32,
    /// Index of its budget, or [`Hot::NO_BUDGET`].
    pub(crate) budget: u32,
    /// Where its eligibility clause ids sit in [`CompiledCatalog::eligibility_ids`], when
    /// [`Hot::SHARED_ELIGIBILITY`] says every clause is shared.
    pub(crate) eligibility: (u32, u32),
    pub(crate) flags: u8,
    /// The offer's value and lever, for scoring.
    pub(crate) value: f64,
    pub(crate) lever: f64,
}

impl Hot {
    pub(crate) const NO_BUDGET: u32 = u32::MAX;
    /// The eligibility rule's clauses are all shared: its verdict comes from the decision's
    /// shared-clause results.
    pub(crate) const SHARED_ELIGIBILITY: u8 = 1;
    /// The eligibility rule reads the offer: evaluate it.
    pub(crate) const OWN_ELIGIBILITY: u8 = 2;
    pub(crate) const SUITABILITY: u8 = 4;
    /// The suitability rule's clauses are all shared: the screen decides it.
    pub(crate) const SHARED_SUITABILITY: u8 = 32;
    pub(crate) const OWN_POLICIES: u8 = 8;
    /// The offer has context weights (otherwise its context weight is 1).
    pub(crate) const CONTEXT_WEIGHTS: u8 = 16;

    #[inline]
    pub(crate) fn has(self, flag: u8) -> bool {
        self.flags & flag != 0
    }

    #[inline]
    pub(crate) fn valid_at(self, now: i64) -> bool {
        self.valid_from <= now && now < self.valid_until
    }
}

/// The offers deliverable on one channel, ready for a decision's candidate loop.
#[derive(Debug, Clone, Default)]
pub(crate) struct ChannelOffers {
    /// Offer indices, in catalogue order: the channel's candidates.
    pub(crate) offers: Box<[u32]>,
    /// The sets of them the first look at a decision's candidates combines.
    pub(crate) screen: ChannelScreen,
    /// The plan evaluating the shared clauses of their rules.
    pub(crate) plan: ClausePlan,
    /// The same but the clauses reading the customer's attributes alone: for decisions given
    /// those clauses' results ([`CustomerInputs`]).
    pub(crate) rest: ClausePlan,
}

/// What decisions under one compiled catalogue read of one customer's profile alone, read once
/// ([`CompiledCatalog::customer_inputs`]): their `customer.*` values as rules read them, and
/// the results of the shared clauses that read nothing else (`customer.plan in ["S", "M"]`,
/// `has(customer.contract_end_at)`; not `now - customer.signed_up_at > ...`). A decision given
/// them computes the same as one reading the profile.
#[derive(Debug, Clone)]
pub struct CustomerInputs {
    /// The [`CompiledCatalog::id`] they were read for.
    catalog: u64,
    /// Per `customer.*` slot, its value if the profile has one of the slot's type.
    slots: Box<[Option<Value>]>,
    /// The results of the shared clauses that read the customer's attributes alone; the
    /// others read false.
    shared: ClauseResults,
}

impl CustomerInputs {
    /// The bytes they hold on the heap (the values' own text and lists aside).
    pub fn heap_bytes(&self) -> usize {
        std::mem::size_of_val(&*self.slots) + self.shared.heap_bytes()
    }

    /// Asks the processor to fetch them into its caches, for a decision soon after (a store
    /// prefetches the next customers' while it decides for one).
    pub fn prefetch(&self) {
        crate::prefetch::prefetch_lines(&self.slots);
        self.shared.prefetch();
    }

    /// Whether they were read for `catalog`.
    pub fn serve(&self, catalog: &CompiledCatalog) -> bool {
        self.catalog == catalog.id
    }

    /// The customer slots, as rules read them.
    pub(crate) fn slots(&self) -> impl Iterator<Item = Option<Scalar<'_>>> {
        Scalar::each(&self.slots)
    }

    /// The results of the clauses reading the customer alone.
    pub(crate) fn shared(&self) -> &ClauseResults {
        &self.shared
    }
}

/// A segment rule, compiled.
#[derive(Debug, Clone)]
pub struct CompiledSegment {
    /// The segment's id.
    pub id: crate::model::SegmentId,
    pub(crate) rule: CompiledRule,
}

/// A catalogue compiled for decisions.
#[derive(Debug)]
pub struct CompiledCatalog {
    /// Unique to this compilation (in this process): what [`CustomerInputs`] were built for.
    pub(crate) id: u64,
    pub(crate) version: u64,
    pub(crate) catalog: Arc<Catalog>,
    pub(crate) vocabulary: Arc<Vocabulary>,
    pub(crate) offers: Box<[CompiledOffer]>,
    pub(crate) offer_index: HashMap<OfferId, u32>,
    /// The same for ids of at most 16 bytes, by [`TextKey`]: a contact event's offer is found
    /// by hashing three integers, not the id's bytes.
    pub(crate) offer_keys: HashMap<TextKey, u32>,
    /// The offers deliverable on each channel.
    pub(crate) channels: HashMap<Channel, ChannelOffers>,
    pub(crate) categories: Box<[Category]>,
    pub(crate) category_index: HashMap<Category, u32>,
    pub(crate) purposes: Box<[Purpose]>,
    pub(crate) features: FeatureSet,
    pub(crate) policies: Box<[CompiledContactRule]>,
    pub(crate) budgets: Box<[Budget]>,
    pub(crate) segments: Box<[CompiledSegment]>,
    /// Indices into `segments` of the segments offer rules read (`segments.<id>`): a decision
    /// evaluates these, once each.
    pub(crate) rule_segments: Box<[u32]>,
    /// Indices into `segments` of the propensity segments, in priority order.
    pub(crate) propensity_segments: Box<[u32]>,
    pub(crate) fallback: Option<u32>,
    /// How far back decisions need contact history, in microseconds.
    pub(crate) contact_lookback: i64,
    /// The outcome kinds contact-policy rules count, as bits (`1 << kind as u8`): decisions
    /// skip contact events of other kinds.
    pub(crate) contact_kinds: u8,
    /// How far back decisions need touchpoints (the longest feature window), in microseconds.
    pub(crate) touchpoint_lookback: i64,
    /// How many distinct clauses offer rules share.
    pub(crate) shared_clauses: usize,
    /// The plan evaluating every shared clause that reads the customer's attributes alone
    /// (see [`CustomerInputs`]).
    pub(crate) customer_plan: ClausePlan,
    /// Per offer, what the candidate loop reads.
    pub(crate) hot: Box<[Hot]>,
    /// The shared clause ids of eligibility rules, offer after offer (see [`Hot::eligibility`]).
    pub(crate) eligibility_ids: Box<[u32]>,
    /// The names offers give context weights, interned.
    pub(crate) weight_names: HashMap<Text, u32>,
}

/// The [`CompiledCatalog::id`] of the next compilation.
static NEXT_CATALOG: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

impl CompiledCatalog {
    /// Validates `catalog` and compiles every rule in it. `version` is the catalogue version the
    /// decisions will record. Errors name the definition, the field and (for rules) the position.
    pub fn compile(catalog: Catalog, version: u64) -> Result<CompiledCatalog> {
        catalog.validate()?;
        let vocabulary = Arc::new(vocabulary(&catalog)?);

        let mut categories: Vec<Category> = Vec::new();
        let mut category_index = HashMap::new();
        let mut purposes: Vec<Purpose> = Vec::new();
        let budget_index: HashMap<&str, u32> = catalog
            .budgets
            .iter()
            .enumerate()
            .map(|(i, b)| (b.id.as_str(), index(i)))
            .collect();

        let mut weight_names: HashMap<Text, u32> = HashMap::new();
        let mut offers = Vec::with_capacity(catalog.offers.len());
        let mut offer_index = HashMap::with_capacity(catalog.offers.len());
        let mut offer_keys = HashMap::with_capacity(catalog.offers.len());
        let mut by_channel: HashMap<Channel, Vec<u32>> = HashMap::new();
        for (i, offer) in catalog.offers.iter().enumerate() {
            let item = |field: &str| format!("offer {:?} {field}", offer.id.as_str());
            let category = *category_index
                .entry(offer.category.clone())
                .or_insert_with(|| {
                    categories.push(offer.category.clone());
                    index(categories.len() - 1)
                });
            let purpose = match purposes.iter().position(|p| p == &offer.consent_purpose) {
                Some(p) => index(p),
                None => {
                    purposes.push(offer.consent_purpose.clone());
                    index(purposes.len() - 1)
                }
            };
            let compile = |rule: &Option<crate::model::RuleText>, field: &str| {
                rule.as_ref()
                    .map(|r| compile_rule(r.as_str(), &vocabulary, OFFER_RULE, &item(field)))
                    .transpose()
            };
            let compiled = CompiledOffer {
                index: index(i),
                category,
                category_key: TextKey::of(offer.category.as_str()),
                purpose,
                eligibility: compile(&offer.eligibility, "eligibility")?,
                suitability: compile(&offer.suitability, "suitability")?,
                values: offer_values(offer, &vocabulary.offer),
                weights: offer
                    .context_weights
                    .iter()
                    .map(|(name, weight)| {
                        let next = index(weight_names.len());
                        (*weight_names.entry(name.clone()).or_insert(next), *weight)
                    })
                    .collect(),
                policies: offer
                    .contact_policy
                    .iter()
                    .map(CompiledContactRule::new)
                    .collect(),
                budget: offer
                    .budget
                    .as_ref()
                    .and_then(|b| budget_index.get(b.as_str()).copied()),
                valid_from: offer.valid_from.map_or(i64::MIN, |t| t.timestamp_micros()),
                valid_until: offer.valid_until.map_or(i64::MAX, |t| t.timestamp_micros()),
                offer: offer.clone(),
            };
            for channel in &offer.channels {
                by_channel
                    .entry(channel.clone())
                    .or_default()
                    .push(index(i));
            }
            offer_index.insert(offer.id.clone(), index(i));
            let key = TextKey::of(offer.id.as_str());
            if key.is_exact() {
                offer_keys.insert(key, index(i));
            }
            offers.push(compiled);
        }

        let mut interner = ClauseInterner::new(&vocabulary, PER_CANDIDATE);
        for offer in &mut offers {
            let CompiledOffer {
                eligibility,
                suitability,
                values,
                ..
            } = offer;
            for rule in [eligibility, suitability].into_iter().flatten() {
                interner.share_for_offer(rule, values);
            }
        }
        let shared_clauses = interner.count();
        let customer_only = interner.customer_only();
        let is_customer_only = |id: &u32| customer_only.get(*id as usize).copied().unwrap_or(false);
        let customer_plan = interner.plan((0..index(shared_clauses)).filter(is_customer_only));
        let mut eligibility_ids = Vec::new();
        let hot: Box<[Hot]> = offers
            .iter()
            .map(|o| {
                let mut flags = 0;
                let start = index(eligibility_ids.len());
                if let Some(rule) = &o.eligibility {
                    if all_shared(rule) {
                        flags |= Hot::SHARED_ELIGIBILITY;
                        eligibility_ids.extend_from_slice(rule.shared_ids());
                    } else {
                        flags |= Hot::OWN_ELIGIBILITY;
                    }
                }
                if let Some(rule) = &o.suitability {
                    flags |= Hot::SUITABILITY;
                    if all_shared(rule) {
                        flags |= Hot::SHARED_SUITABILITY;
                    }
                }
                if !o.policies.is_empty() {
                    flags |= Hot::OWN_POLICIES;
                }
                if !o.offer.context_weights.is_empty() {
                    flags |= Hot::CONTEXT_WEIGHTS;
                }
                Hot {
                    valid_from: o.valid_from,
                    valid_until: o.valid_until,
                    purpose: o.purpose,
                    category: o.category,
                    budget: o.budget.unwrap_or(Hot::NO_BUDGET),
                    eligibility: (start, index(eligibility_ids.len())),
                    flags,
                    value: o.offer.value,
                    lever: o.offer.lever,
                }
            })
            .collect();
        let rows: Vec<Row<'_>> = offers
            .iter()
            .zip(hot.iter())
            .map(|(o, h)| screen_row(o, *h))
            .collect();
        let channels = by_channel
            .into_iter()
            .map(|(channel, indices)| {
                let ids = indices
                    .iter()
                    .filter_map(|&i| offers.get(i as usize))
                    .flat_map(|o| [&o.eligibility, &o.suitability])
                    .flatten()
                    .flat_map(|rule| rule.shared_ids().iter().copied());
                let plan = interner.plan(ids.clone());
                let rest = interner.plan(ids.filter(|id| !is_customer_only(id)));
                let channel_rows: Vec<Row<'_>> = indices
                    .iter()
                    .filter_map(|&i| rows.get(i as usize).cloned())
                    .collect();
                let screen = ChannelScreen::new(
                    &channel_rows,
                    purposes.len(),
                    categories.len(),
                    catalog.budgets.len(),
                );
                (
                    channel,
                    ChannelOffers {
                        offers: indices.into_boxed_slice(),
                        screen,
                        plan,
                        rest,
                    },
                )
            })
            .collect();
        drop(rows);

        let features = catalog
            .features
            .iter()
            .map(|f| CompiledFeature::compile(f, &vocabulary))
            .collect::<Result<Vec<_>>>()?;
        let segments = catalog
            .segments
            .iter()
            .map(|s| {
                let item = format!("segment {:?} rule", s.id.as_str());
                Ok(CompiledSegment {
                    id: s.id.clone(),
                    rule: compile_rule(s.rule.as_str(), &vocabulary, SEGMENT_RULE, &item)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let mut read = vec![false; segments.len()];
        for rule in offers
            .iter()
            .flat_map(|o| [&o.eligibility, &o.suitability])
            .flatten()
        {
            for slot in rule.slots() {
                if slot.namespace == Namespace::Segment
                    && let Some(read) = read.get_mut(usize::from(slot.index))
                {
                    *read = true;
                }
            }
        }
        let rule_segments = read
            .iter()
            .enumerate()
            .filter(|(_, read)| **read)
            .map(|(i, _)| index(i))
            .collect();
        let propensity_segments = catalog
            .arbitration
            .propensity_segments
            .iter()
            .filter_map(|id| segments.iter().position(|s| &s.id == id).map(index))
            .collect();
        let policies: Box<[CompiledContactRule]> = catalog
            .contact_policy
            .iter()
            .map(CompiledContactRule::new)
            .collect();
        let contact_lookback = policies
            .iter()
            .chain(offers.iter().flat_map(|o| o.policies.iter()))
            .map(CompiledContactRule::lookback)
            .max()
            .unwrap_or(0);
        let contact_kinds = policies
            .iter()
            .chain(offers.iter().flat_map(|o| o.policies.iter()))
            .fold(0, |kinds, rule| kinds | 1 << rule.outcome as u8);
        let touchpoint_lookback = features.iter().map(|f| f.window).max().unwrap_or(0);
        let fallback = catalog
            .arbitration
            .fallback
            .as_ref()
            .and_then(|id| offer_index.get(id).copied());
        // What the features read of a touchpoint depends on their definitions and on how the
        // vocabulary types the touchpoint's attributes, nothing else.
        let touchpoint: Vec<_> = vocabulary.touchpoint.iter().collect();
        let features_fingerprint = format!("{:?} {touchpoint:?}", catalog.features);
        Ok(CompiledCatalog {
            id: NEXT_CATALOG.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            version,
            vocabulary,
            offers: offers.into_boxed_slice(),
            offer_index,
            offer_keys,
            channels,
            categories: categories.into_boxed_slice(),
            category_index,
            purposes: purposes.into_boxed_slice(),
            features: FeatureSet::new(features, features_fingerprint),
            policies,
            budgets: catalog.budgets.clone().into_boxed_slice(),
            segments: segments.into_boxed_slice(),
            rule_segments,
            propensity_segments,
            fallback,
            contact_lookback,
            contact_kinds,
            touchpoint_lookback,
            shared_clauses,
            customer_plan,
            hot,
            eligibility_ids: eligibility_ids.into_boxed_slice(),
            weight_names,
            catalog: Arc::new(catalog),
        })
    }

    /// The same catalogue, recording `version` in its decisions (for a catalogue compiled
    /// before the store gave it its version number).
    #[must_use]
    pub fn with_version(mut self, version: u64) -> Self {
        self.version = version;
        self
    }

    /// The shared clause ids of the eligibility rule of the offer `hot` describes, when they
    /// all are ([`Hot::SHARED_ELIGIBILITY`]); empty otherwise.
    #[inline]
    pub(crate) fn eligibility_ids(&self, hot: Hot) -> &[u32] {
        let (from, to) = hot.eligibility;
        self.eligibility_ids
            .get(from as usize..to as usize)
            .unwrap_or(&[])
    }

    /// The offers deliverable on `channel`, if any is.
    pub(crate) fn channel(&self, channel: &Channel) -> Option<&ChannelOffers> {
        self.channels.get(channel)
    }

    /// The interned context-weight names of a request's `channel` and `placement`.
    pub(crate) fn weight_keys(&self, channel: &Channel, placement: Option<&Name>) -> WeightKeys {
        WeightKeys {
            channel: self.weight_names.get(channel.as_str()).copied(),
            placement: placement.and_then(|p| self.weight_names.get(p.as_str()).copied()),
        }
    }

    /// The catalogue version decisions record.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The catalogue.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The names rules read, with their slots.
    pub fn vocabulary(&self) -> &Arc<Vocabulary> {
        &self.vocabulary
    }

    /// The arbitration settings.
    pub fn config(&self) -> &ArbitrationConfig {
        &self.catalog.arbitration
    }

    /// Offer ids in decision-index order (what a propensity model is bound to).
    pub fn offer_ids(&self) -> Vec<OfferId> {
        self.offers.iter().map(|o| o.offer.id.clone()).collect()
    }

    /// The decision index of offer `id`.
    pub fn offer_index(&self, id: &OfferId) -> Option<u32> {
        self.offer_index.get(id).copied()
    }

    /// The decision index of offer `id`, as [`CompiledCatalog::offer_index`] gives it.
    #[inline]
    pub(crate) fn offer_of(&self, id: &OfferId) -> Option<u32> {
        let key = TextKey::of(id.as_str());
        if key.is_exact() {
            self.offer_keys.get(&key).copied()
        } else {
            self.offer_index.get(id).copied()
        }
    }

    /// The compiled offer at `index`.
    pub fn offer(&self, index: u32) -> Option<&CompiledOffer> {
        self.offers.get(index as usize)
    }

    /// Categories, in the order they are interned.
    pub fn categories(&self) -> &[Category] {
        &self.categories
    }

    /// Budgets, in catalogue order (the order of `budget_used` in a decision's input).
    pub fn budgets(&self) -> &[Budget] {
        &self.budgets
    }

    /// The index among the propensity segments of segment `id`.
    pub fn propensity_segment_index(&self, id: &crate::model::SegmentId) -> Option<usize> {
        self.propensity_segments.iter().position(|&s| {
            self.segments
                .get(s as usize)
                .is_some_and(|seg| &seg.id == id)
        })
    }

    /// How many propensity segments the settings define.
    pub fn propensity_segment_count(&self) -> usize {
        self.propensity_segments.len()
    }

    /// The span of contact history decisions read (the longest contact-policy lookback).
    pub fn contact_lookback(&self) -> crate::model::Span {
        crate::model::Span::from(chrono::TimeDelta::microseconds(self.contact_lookback))
    }

    /// The span of touchpoints decisions read (the longest feature window).
    pub fn touchpoint_lookback(&self) -> crate::model::Span {
        crate::model::Span::from(chrono::TimeDelta::microseconds(self.touchpoint_lookback))
    }

    /// The touchpoints a decision at `now` computes its features from: each kind some feature
    /// counts, with the earliest instant a feature counting it reads (the start of the longest
    /// such window); `None` when some feature counts every kind. A backend that hands a
    /// decision touchpoints rather than features may leave out every other touchpoint.
    pub fn touchpoint_kinds_read(
        &self,
        now: crate::model::Timestamp,
    ) -> Option<Vec<(crate::model::Kind, crate::model::Timestamp)>> {
        let kinds = self.features.kinds_read(now.timestamp_micros())?;
        Some(
            kinds
                .into_iter()
                .map(|(kind, since)| {
                    let since = chrono::DateTime::from_timestamp_micros(since)
                        .unwrap_or(chrono::DateTime::<chrono::Utc>::MIN_UTC);
                    (kind, since)
                })
                .collect(),
        )
    }

    /// Every feature of the catalogue at `now` over `touchpoints` (oldest first), in catalogue
    /// order: what a decision computes from [`DecisionInput::touchpoints`](super::DecisionInput),
    /// for a store to compute where it keeps the touchpoints and hand over as
    /// [`DecisionInput::features`](super::DecisionInput).
    pub fn compute_features<T: TouchpointFields>(
        &self,
        touchpoints: &[T],
        now: crate::model::Timestamp,
    ) -> Vec<Option<Value>> {
        let mut out = Vec::with_capacity(self.features.len());
        self.compute_features_with(
            touchpoints,
            now,
            &mut super::FeatureBuffers::default(),
            &mut out,
        );
        out
    }

    /// [`compute_features`](Self::compute_features) into `out` (cleared first), with the
    /// buffers of the computation kept in `buffers` for the next one: for a store computing
    /// the features of many customers in turn. The same values.
    pub fn compute_features_with<T: TouchpointFields>(
        &self,
        touchpoints: &[T],
        now: crate::model::Timestamp,
        buffers: &mut super::FeatureBuffers,
        out: &mut Vec<Option<Value>>,
    ) {
        buffers.values_into(out, |scratch, slots| {
            super::features::compute(
                &self.features,
                &self.vocabulary,
                touchpoints,
                now.timestamp_micros(),
                scratch,
                slots,
            );
        });
    }

    /// What decisions under this catalogue read of `customer`'s profile alone, read once:
    /// their attributes as rules read them, and the results of the shared clauses that read
    /// nothing else. For a store to keep with the profile (and drop when it changes); a
    /// decision given them ([`DecisionInput::customer_inputs`](super::DecisionInput)) reads
    /// neither the attributes nor those clauses again. `hints` are kept from one customer to
    /// the next: profiles mostly carry the same names, each then found with one comparison.
    pub fn customer_inputs(&self, customer: &Customer, hints: &mut SlotHints) -> CustomerInputs {
        let slots = self
            .vocabulary
            .customer
            .resolve_owned(&customer.attributes, hints);
        let scalars: Vec<Option<Scalar<'_>>> = Scalar::each(&slots).collect();
        let env = Env {
            customer: &scalars,
            context: &[],
            touchpoint: &[],
            offer: &[],
            features: &[],
            segments: &[],
            now: 0,
        };
        let mut shared = ClauseResults::default();
        shared.reset(self.shared_clauses);
        self.customer_plan.eval(&env, &mut shared);
        CustomerInputs {
            catalog: self.id,
            slots,
            shared,
        }
    }

    /// What the catalogue's features read of a customer's `touchpoints` (oldest first: all
    /// of the customer's touchpoints that occurred at or after `from`), kept for computing
    /// the features at any later instant with
    /// [`compute_features_from`](Self::compute_features_from): for a store to keep with the
    /// customer's touchpoints (and drop when they change). `None` if the catalogue's features
    /// cannot be read ahead (a filter reads `now`). `buffers` are kept for the next reading
    /// (see [`compute_features_with`](Self::compute_features_with)).
    pub fn feature_inputs<T: TouchpointFields>(
        &self,
        touchpoints: &[T],
        from: crate::model::Timestamp,
        buffers: &mut super::FeatureBuffers,
    ) -> Option<FeatureInputs> {
        let mut scratch = buffers.lend();
        let inputs = FeatureInputs::read(
            &self.features,
            &self.vocabulary,
            touchpoints,
            from.timestamp_micros(),
            &mut scratch,
        );
        buffers.give_back(scratch);
        inputs
    }

    /// [`compute_features_with`](Self::compute_features_with) from `inputs`, if they were
    /// read for this catalogue from early enough for every window at `now` (from `now` minus
    /// the [`touchpoint_lookback`](Self::touchpoint_lookback) or earlier): the same values,
    /// into `out`, and true. Otherwise false, and `out` is left as it was.
    pub fn compute_features_from(
        &self,
        inputs: &FeatureInputs,
        now: crate::model::Timestamp,
        buffers: &mut super::FeatureBuffers,
        out: &mut Vec<Option<Value>>,
    ) -> bool {
        let now = now.timestamp_micros();
        if !inputs.hold(&self.features, now) {
            return false;
        }
        buffers.values_into(out, |scratch, slots| {
            inputs.compute(&self.features, now, scratch, slots);
        });
        true
    }
}

fn index(i: usize) -> u32 {
    u32::try_from(i).unwrap_or(u32::MAX)
}

/// Whether every clause of `rule` is shared: its verdict comes from a decision's
/// shared-clause results alone.
fn all_shared(rule: &CompiledRule) -> bool {
    rule.shared_ids()
        .iter()
        .all(|&id| id != crate::rules::UNSHARED)
}

/// What the screen needs to know of `offer`, whose packed form is `hot`. A rule whose
/// clauses are all shared is decided by the screen from the decision's results; any other
/// is evaluated in a closer look.
fn screen_row(offer: &CompiledOffer, hot: Hot) -> Row<'_> {
    let mut slow = 0;
    let mut eligibility: &[u32] = &[];
    let mut suitability: &[u32] = &[];
    if let Some(rule) = &offer.eligibility {
        if hot.has(Hot::SHARED_ELIGIBILITY) {
            eligibility = rule.shared_ids();
        } else {
            slow |= Look::RULE;
        }
    }
    if hot.has(Hot::OWN_POLICIES) {
        slow |= Look::OWN_POLICY;
    }
    if let Some(rule) = &offer.suitability {
        if hot.has(Hot::SHARED_SUITABILITY) {
            suitability = rule.shared_ids();
        } else {
            slow |= Look::SUITABILITY;
        }
    }
    Row {
        valid_from: hot.valid_from,
        valid_until: hot.valid_until,
        purpose: hot.purpose,
        category: hot.category,
        budget: hot.budget,
        eligibility,
        suitability,
        slow,
    }
}

/// Builds the vocabulary: the schema's names, the built-ins, offer fields typed from the offers'
/// attributes (one type per name across the catalogue) and features typed from their
/// aggregation.
fn vocabulary(catalog: &Catalog) -> Result<Vocabulary> {
    let mut v = Vocabulary::default();
    let schema = &catalog.schema;
    let add = |table: &mut SlotTable, name: &str, ty: ValueType| {
        let _ = table.add(Name::new(name), ty);
    };
    for (name, ty) in &schema.customer {
        add(&mut v.customer, name.as_str(), *ty);
    }
    add(&mut v.context, "channel", ValueType::String);
    add(&mut v.context, "placement", ValueType::String);
    for (name, ty) in &schema.context {
        add(&mut v.context, name.as_str(), *ty);
    }
    add(&mut v.touchpoint, "kind", ValueType::String);
    add(&mut v.touchpoint, "channel", ValueType::String);
    add(&mut v.touchpoint, "occurred_at", ValueType::Timestamp);
    for (name, ty) in &schema.touchpoint {
        add(&mut v.touchpoint, name.as_str(), *ty);
    }
    for (name, ty) in OFFER_BUILT_INS {
        add(&mut v.offer, name, ty);
    }
    for offer in &catalog.offers {
        for (name, value) in offer.attributes.iter() {
            if OFFER_BUILT_INS.iter().any(|(b, _)| *b == name.as_str()) {
                return Err(Error::validation(
                    format!("offer {:?}", offer.id.as_str()),
                    format!("attributes.{name}"),
                    "is a built-in offer field and cannot be an attribute",
                ));
            }
            if let Err(existing) = v.offer.add(name.clone(), ValueType::of(value)) {
                return Err(Error::validation(
                    format!("offer {:?}", offer.id.as_str()),
                    format!("attributes.{name}"),
                    format!(
                        "is a {} here but a {existing} in another offer: rules need one type",
                        ValueType::of(value)
                    ),
                ));
            }
        }
    }
    for feature in &catalog.features {
        let ty = match (feature.aggregate, &feature.attribute) {
            (crate::model::Aggregation::Last, Some(attr)) => schema
                .touchpoint
                .get(attr.as_str())
                .copied()
                .unwrap_or(ValueType::Number),
            _ => ValueType::Number,
        };
        add(&mut v.features, feature.id.as_str(), ty);
    }
    // In catalogue order: slot `i` is segment `i` (ids are unique).
    for segment in &catalog.segments {
        add(&mut v.segments, segment.id.as_str(), ValueType::Bool);
    }
    Ok(v)
}

const OFFER_BUILT_INS: [(&str, ValueType); 5] = [
    ("id", ValueType::String),
    ("category", ValueType::String),
    ("value", ValueType::Number),
    ("lever", ValueType::Number),
    ("benefit", ValueType::Number),
];

/// The offer's `offer.*` values in slot order.
fn offer_values(offer: &Offer, table: &SlotTable) -> Box<[Option<Value>]> {
    table
        .iter()
        .map(|(name, _)| match name.as_str() {
            "id" => Some(Value::String(Text::from(offer.id.as_str()))),
            "category" => Some(Value::String(Text::from(offer.category.as_str()))),
            "value" => Some(Value::Number(offer.value)),
            "lever" => Some(Value::Number(offer.lever)),
            "benefit" => offer.benefit.map(Value::Number),
            other => offer.attributes.get(other).cloned(),
        })
        .collect()
}
