//! Features: named aggregates over a customer's touchpoints in a window, computed per decision.

use crate::error::Result;
use crate::model::{
    Aggregation, Attributes, Channel, Feature, FeatureId, Kind, Name, Timestamp, Touchpoint, Value,
    ValueType,
};
use crate::rules::{CompiledRule, Env, Namespace, Scalar, Vocabulary, compile_rule};

mod inputs;
pub use inputs::FeatureInputs;

/// What features read of a touchpoint. Implemented for [`Touchpoint`], and by a store for its
/// own form of a stored touchpoint, so that it can compute a customer's features where the
/// touchpoints are kept instead of copying each one out first (see
/// [`CompiledCatalog::compute_features`](super::CompiledCatalog::compute_features)).
pub trait TouchpointFields {
    /// When it occurred.
    fn occurred_at(&self) -> Timestamp;
    /// When it occurred, in microseconds since the Unix epoch (rounded down).
    #[inline]
    fn occurred_at_micros(&self) -> i64 {
        self.occurred_at().timestamp_micros()
    }
    /// Its kind.
    fn kind(&self) -> &Kind;
    /// Its channel.
    fn channel(&self) -> &Channel;
    /// Its attributes.
    fn attributes(&self) -> &Attributes;
    /// A number standing for its kind, if it has one: touchpoints read together (one
    /// customer's, in one computation) with the same code have the same kind, so a kind is
    /// matched once per code instead of once per touchpoint. A store that keeps kinds as codes
    /// of a dictionary gives them here.
    #[inline]
    fn kind_code(&self) -> Option<u32> {
        None
    }
}

impl TouchpointFields for Touchpoint {
    #[inline]
    fn occurred_at(&self) -> Timestamp {
        self.occurred_at
    }

    #[inline]
    fn kind(&self) -> &Kind {
        &self.kind
    }

    #[inline]
    fn channel(&self) -> &Channel {
        &self.channel
    }

    #[inline]
    fn attributes(&self) -> &Attributes {
        &self.attributes
    }
}

/// A feature, compiled.
#[derive(Debug, Clone)]
pub struct CompiledFeature {
    /// The feature's id.
    pub id: FeatureId,
    aggregate: Aggregation,
    attribute: Option<Name>,
    kinds: Box<[Kind]>,
    /// The ids of `kinds` in the [`FeatureSet`] the feature belongs to (set by it).
    kind_ids: Box<[u32]>,
    /// How a kind id is tested (set with `kind_ids`).
    kind_test: KindTest,
    channels: Box<[Channel]>,
    /// The window, in microseconds.
    pub(crate) window: i64,
    filter: Option<CompiledRule>,
    /// The `touchpoint.*` slots the filter reads, and where each value comes from.
    filter_reads: Box<[(usize, Field)]>,
    /// Whether the filter is one boolean value read as is (`touchpoint.roaming`): its one
    /// read is then tested directly instead of through the evaluator (the same verdict: true
    /// only if present and true).
    filter_flag: bool,
}

/// How a feature tests a touchpoint's kind id.
#[derive(Debug, Clone, Copy)]
enum KindTest {
    /// It counts every kind.
    Any,
    /// Its kinds' ids as bits (all below 64).
    Mask(u64),
    /// Its kinds' ids, searched.
    Ids,
}

/// Where a `touchpoint.*` value comes from.
#[derive(Debug, Clone)]
enum Field {
    Kind,
    Channel,
    OccurredAt,
    Attribute(Name, ValueType),
}

impl Field {
    fn of(name: &Name, ty: ValueType) -> Field {
        match name.as_str() {
            "kind" => Field::Kind,
            "channel" => Field::Channel,
            "occurred_at" => Field::OccurredAt,
            _ => Field::Attribute(name.clone(), ty),
        }
    }

    /// The value of the field in `t`; `hint` is where an attribute was last found.
    #[inline]
    fn read<'a, T: TouchpointFields>(&self, t: &'a T, hint: &mut usize) -> Option<Scalar<'a>> {
        match self {
            Field::Kind => Some(Scalar::Str(t.kind().as_str())),
            Field::Channel => Some(Scalar::Str(t.channel().as_str())),
            Field::OccurredAt => Some(Scalar::Time(t.occurred_at_micros())),
            Field::Attribute(name, ty) => t
                .attributes()
                .get_hinted(name.as_str(), hint)
                .filter(|v| ty.admits(v))
                .map(Scalar::of),
        }
    }
}

impl CompiledFeature {
    pub(crate) fn compile(
        feature: &Feature,
        vocabulary: &std::sync::Arc<Vocabulary>,
    ) -> Result<Self> {
        let filter = feature
            .filter
            .as_ref()
            .map(|rule| {
                let item = format!("feature {:?} filter", feature.id.as_str());
                compile_rule(rule.as_str(), vocabulary, &[Namespace::Touchpoint], &item)
            })
            .transpose()?;
        let filter_reads = filter
            .iter()
            .flat_map(CompiledRule::slots)
            .filter(|slot| slot.namespace == Namespace::Touchpoint)
            .filter_map(|slot| {
                let (name, ty) = vocabulary.touchpoint.iter().nth(usize::from(slot.index))?;
                Some((usize::from(slot.index), Field::of(name, ty)))
            })
            .collect();
        Ok(CompiledFeature {
            id: feature.id.clone(),
            aggregate: feature.aggregate,
            attribute: feature.attribute.clone(),
            kinds: feature.kinds.clone().into_boxed_slice(),
            kind_ids: Box::default(),
            kind_test: KindTest::Any,
            channels: feature.channels.clone().into_boxed_slice(),
            window: feature
                .window
                .as_delta()
                .num_microseconds()
                .unwrap_or(i64::MAX),
            filter_flag: filter.as_ref().is_some_and(CompiledRule::is_one_slot),
            filter,
            filter_reads,
        })
    }

    #[inline]
    fn admits_channel(&self, t: &impl TouchpointFields) -> bool {
        self.channels.is_empty() || self.channels.contains(t.channel())
    }
}

/// A kind's length and its first and last (at most) 8 bytes, compared as integers: equal keys
/// mean equal kinds for kinds of at most 16 bytes; longer kinds with equal keys are compared in
/// full. Matching a touchpoint's kind this way costs no string comparison in the common case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct KindKey {
    len: usize,
    head: u64,
    tail: u64,
}

impl KindKey {
    #[inline]
    fn of(kind: &str) -> Self {
        let bytes = kind.as_bytes();
        let (head, tail) = match (bytes.first_chunk::<8>(), bytes.last_chunk::<8>()) {
            (Some(head), Some(tail)) => (u64::from_le_bytes(*head), u64::from_le_bytes(*tail)),
            // Shorter than 8 bytes: all of them in the head.
            _ => (bytes.iter().fold(0, |w, &b| w << 8 | u64::from(b)), 0),
        };
        KindKey {
            len: bytes.len(),
            head,
            tail,
        }
    }

    /// Whether `self` (the key of `kind`) and `other` (the key of `other_kind`) name the same
    /// kind.
    #[inline]
    fn same(self, kind: &str, other: KindKey, other_kind: &str) -> bool {
        self == other && (self.len <= 16 || kind == other_kind)
    }
}

/// The features of a catalogue, compiled, and the kinds they count, interned: a touchpoint's
/// kind is looked up once per decision, then each feature tests it as an integer.
#[derive(Debug, Clone, Default)]
pub(crate) struct FeatureSet {
    features: Box<[CompiledFeature]>,
    /// Every kind some feature counts, once, with its key; a kind's id is its position.
    kinds: Box<[(KindKey, Kind)]>,
    /// The longest window, in microseconds: older touchpoints are read by no feature.
    longest: i64,
    /// A number no set of other features has (sets compiled from the same features over the
    /// same touchpoint schema share it): kind ids remembered for one set are never read for
    /// another, nor [`FeatureInputs`] read for one set; a catalogue changed elsewhere (its
    /// offers, policies, rules) keeps the inputs read for its features.
    id: u64,
    /// Whether no filter reads `now`, so that the set has [`FeatureInputs`].
    timeless: bool,
    /// Per kind id, the positions of the features that count that kind, then (last) those of
    /// the features that count every kind: a touchpoint is offered to these alone when its
    /// [`FeatureInputs`] are read.
    counting: Box<[Box<[usize]>]>,
}

/// The [`FeatureSet::id`] of each set compiled in this process, by what it is made of (see
/// [`FeatureSet::new`]).
static SET_IDS: std::sync::LazyLock<std::sync::Mutex<std::collections::HashMap<String, u64>>> =
    std::sync::LazyLock::new(Default::default);

/// The id of the set made of `fingerprint`: the one given before for the same, or a new one.
fn set_id(fingerprint: String) -> u64 {
    let mut ids = SET_IDS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let next = u64::try_from(ids.len())
        .unwrap_or(u64::MAX)
        .saturating_add(1);
    *ids.entry(fingerprint).or_insert(next)
}

/// Code spaces up to this are remembered ([`FeatureBuffers::set_code_space`]); a larger one is
/// treated as none.
const MAX_SPACES: usize = 1024;

/// The id of a kind no feature counts.
const NO_KIND: u32 = u32::MAX;

/// A kind code not met yet in a computation.
const UNSEEN: u32 = u32::MAX - 1;

/// Kind codes up to this are remembered in a computation (codes are a store's dictionary
/// positions, so small); a touchpoint with a larger one is matched by its kind.
const MAX_CODE: u32 = 4096;

impl FeatureSet {
    /// The set of `features`, in that order; `fingerprint` says what they are made of (their
    /// definitions and the touchpoint schema they were compiled against): sets of the same
    /// fingerprint get the same [`id`](Self::id).
    pub(crate) fn new(features: Vec<CompiledFeature>, fingerprint: String) -> Self {
        let mut kinds: Vec<(KindKey, Kind)> = Vec::new();
        let mut features = features;
        for feature in &mut features {
            let ids: Box<[u32]> = feature
                .kinds
                .iter()
                .map(|kind| {
                    let key = KindKey::of(kind.as_str());
                    let id = match kinds
                        .iter()
                        .position(|(k, known)| key.same(kind.as_str(), *k, known.as_str()))
                    {
                        Some(id) => id,
                        None => {
                            kinds.push((key, kind.clone()));
                            kinds.len() - 1
                        }
                    };
                    u32::try_from(id).unwrap_or(NO_KIND)
                })
                .collect();
            feature.kind_test = if feature.kinds.is_empty() {
                KindTest::Any
            } else if ids.iter().all(|&id| id < 64) {
                KindTest::Mask(ids.iter().fold(0, |mask, &id| mask | 1u64 << id))
            } else {
                KindTest::Ids
            };
            feature.kind_ids = ids;
        }
        let longest = features.iter().map(|f| f.window).max().unwrap_or(0);
        let timeless = features
            .iter()
            .all(|f| f.filter.as_ref().is_none_or(|rule| !rule.reads_now()));
        // Kind ids, then one past them: the features counting every kind alone.
        let counting = (0..=kinds.len())
            .map(|id| {
                let id = u32::try_from(id).unwrap_or(NO_KIND);
                let counted = |f: &CompiledFeature| {
                    f.kinds.is_empty() || (id as usize) < kinds.len() && f.kind_ids.contains(&id)
                };
                let positions = features.iter().enumerate().filter(|(_, f)| counted(f));
                positions.map(|(i, _)| i).collect()
            })
            .collect();
        FeatureSet {
            features: features.into_boxed_slice(),
            kinds: kinds.into_boxed_slice(),
            longest,
            id: set_id(fingerprint),
            timeless,
            counting,
        }
    }

    /// The kinds of touchpoint the features count, each with the start (in microseconds) of
    /// the longest window of a feature counting it, for a decision at `now`; `None` if some
    /// feature counts every kind. No other touchpoint changes any feature's value.
    pub(crate) fn kinds_read(&self, now: i64) -> Option<Vec<(Kind, i64)>> {
        let mut out: Vec<(Kind, i64)> = self
            .kinds
            .iter()
            .map(|(_, kind)| (kind.clone(), now))
            .collect();
        for feature in self.iter() {
            if feature.kinds.is_empty() {
                return None;
            }
            let start = now.saturating_sub(feature.window);
            for &id in &feature.kind_ids {
                if let Some((_, since)) = out.get_mut(id as usize) {
                    *since = (*since).min(start);
                }
            }
        }
        Some(out)
    }

    /// How many features there are.
    pub(crate) fn len(&self) -> usize {
        self.features.len()
    }

    /// The features, in catalogue order.
    pub(crate) fn iter(&self) -> std::slice::Iter<'_, CompiledFeature> {
        self.features.iter()
    }

    /// The id of `kind` (whose key is `key`), or [`NO_KIND`] if no feature counts it.
    #[inline]
    fn kind_id(&self, key: KindKey, kind: &str) -> u32 {
        self.kinds
            .iter()
            .position(|(k, known)| key.same(kind, *k, known.as_str()))
            .map_or(NO_KIND, |id| u32::try_from(id).unwrap_or(NO_KIND))
    }
}

/// Reusable buffers for computing features, so that computing them for one customer after
/// another allocates little once warm (see
/// [`CompiledCatalog::compute_features_with`](super::CompiledCatalog::compute_features_with)).
#[derive(Debug, Default)]
pub struct FeatureBuffers {
    scratch: FeatureScratch<'static>,
}

impl FeatureBuffers {
    /// Says which dictionary the [`kind_code`](TouchpointFields::kind_code)s of the next
    /// computations' touchpoints come from, for a store that keeps one dictionary per part
    /// (a shard's number): codes of one space that never change meaning (a dictionary that
    /// never forgets nor reuses a code) are then matched to kinds once for every computation
    /// in the space, instead of once per computation. `None` (the default): a code holds within
    /// one computation only.
    pub fn set_code_space(&mut self, space: Option<usize>) {
        self.scratch.space = space;
    }

    /// The buffers, lent for a computation over touchpoints borrowed for `'a`.
    pub(crate) fn lend<'a>(&mut self) -> FeatureScratch<'a> {
        std::mem::take(&mut self.scratch).recycle()
    }

    /// Takes back what [`lend`](Self::lend) gave.
    pub(crate) fn give_back(&mut self, scratch: FeatureScratch<'_>) {
        self.scratch = scratch.recycle();
    }

    /// Runs `compute` on the buffers, lent for values borrowed for `'a`, and copies the
    /// values it leaves in its slots into `out` (cleared first).
    pub(crate) fn values_into<'a>(
        &mut self,
        out: &mut Vec<Option<Value>>,
        compute: impl FnOnce(&mut FeatureScratch<'a>, &mut Vec<Option<Scalar<'a>>>),
    ) {
        let mut scratch = self.lend();
        let mut slots = std::mem::take(&mut scratch.slots);
        compute(&mut scratch, &mut slots);
        out.clear();
        out.extend(slots.drain(..).map(owned));
        scratch.slots = slots;
        self.give_back(scratch);
    }
}

/// `v`, emptied, as a vector of another lifetime: the same allocation (the in-place collect of
/// an empty vector into one of the same layout keeps it; were it not kept, only the capacity
/// would be lost).
pub(crate) fn recycle<T, U>(mut v: Vec<T>) -> Vec<U> {
    v.clear();
    v.into_iter().filter_map(|_| None).collect()
}

/// Reusable buffers for computing features, so a decision allocates little once warm.
#[derive(Debug, Default)]
pub(crate) struct FeatureScratch<'a> {
    /// The buffers of one feature's pass.
    pass: PassScratch<'a>,
    /// Each touchpoint's kind id in the feature set.
    kinds: Vec<u32>,
    /// The kind id of each [`kind_code`](TouchpointFields::kind_code) seen in this
    /// computation, by code ([`UNSEEN`] for the others), when no code space is set.
    by_code: Vec<u32>,
    /// The code space of the computations ([`FeatureBuffers::set_code_space`]).
    space: Option<usize>,
    /// Per code space, the kind id of each code seen in it, as `by_code`...
    spaces: Vec<Vec<u32>>,
    /// ...for the feature set with this id.
    spaces_for: u64,
    /// (window, index of the first touchpoint in it), for the windows searched so far.
    opens: Vec<(i64, usize)>,
    /// Microseconds since the Unix epoch searched for, and their instants ([`instant`]).
    instants: Vec<(i64, Option<Timestamp>)>,
    /// The values computed, before they are copied out.
    pub(crate) slots: Vec<Option<Scalar<'a>>>,
    /// The rows of [`FeatureInputs`] being read, per feature, before they are copied out...
    lanes: Vec<Vec<inputs::Row>>,
    /// ...their values other than numbers...
    values: Vec<Value>,
    /// ...and, per feature, where its attribute and each value its filter reads were last
    /// found.
    lane_hints: Vec<(usize, Vec<usize>)>,
}

impl FeatureScratch<'_> {
    /// The same buffers, emptied of borrowed values, for values borrowed for `'b`.
    fn recycle<'b>(self) -> FeatureScratch<'b> {
        FeatureScratch {
            pass: PassScratch {
                touchpoint: recycle(self.pass.touchpoint),
                distinct: recycle(self.pass.distinct),
                hints: self.pass.hints,
            },
            kinds: self.kinds,
            by_code: self.by_code,
            space: self.space,
            spaces: self.spaces,
            spaces_for: self.spaces_for,
            opens: self.opens,
            instants: self.instants,
            slots: recycle(self.slots),
            lanes: self.lanes,
            values: self.values,
            lane_hints: self.lane_hints,
        }
    }
}

/// The buffers of one feature's pass over its window.
#[derive(Debug, Default)]
struct PassScratch<'a> {
    /// The `touchpoint.*` slots a filter reads.
    touchpoint: Vec<Option<Scalar<'a>>>,
    /// The values seen by the distinct count being computed (quick key, value).
    distinct: Vec<(u64, Scalar<'a>)>,
    /// Where each value a filter reads was last found in a touchpoint's attributes.
    hints: Vec<usize>,
}

/// Computes every feature of `set` at `now` (microseconds) over `touchpoints` (oldest first),
/// into `out` in feature-slot order. Empty windows give 0 for count, sum and distinct count,
/// and no value (missing) for avg, min, max and last.
///
/// Touchpoints are sorted by time, so each window is a run of them ending at `now`, found by
/// binary search (windows of equal length share one). Each touchpoint's kind is matched once
/// against the kinds the features count; then each feature makes one tight pass over its own
/// window, testing kinds as integers (a `last` walks back from `now` and stops at the first
/// value).
pub(crate) fn compute<'a, T: TouchpointFields>(
    set: &FeatureSet,
    vocabulary: &Vocabulary,
    touchpoints: &'a [T],
    now: i64,
    scratch: &mut FeatureScratch<'a>,
    out: &mut Vec<Option<Scalar<'a>>>,
) {
    out.clear();
    scratch.pass.touchpoint.clear();
    scratch
        .pass
        .touchpoint
        .resize(vocabulary.touchpoint.len(), None);
    // Touchpoints at or after `now` never count, nor those before the longest window.
    let instants = &mut scratch.instants;
    let end = first_at(touchpoints, now, instants);
    let start = first_at(touchpoints, now.saturating_sub(set.longest), instants);
    let visible = touchpoints.get(start..end.max(start)).unwrap_or(&[]);
    match_kinds(set, visible, scratch);
    scratch.opens.clear();
    for feature in set.iter() {
        let from = match scratch.opens.iter().find(|(w, _)| *w == feature.window) {
            Some(&(_, from)) => from,
            None => {
                let from = first_at(
                    visible,
                    now.saturating_sub(feature.window),
                    &mut scratch.instants,
                );
                scratch.opens.push((feature.window, from));
                from
            }
        };
        let rows = visible.get(from..).unwrap_or(&[]);
        let kinds = scratch.kinds.get(from..).unwrap_or(&[]);
        out.push(feature.over(rows, kinds, now, &mut scratch.pass));
    }
}

/// Fills `scratch.kinds` with the id in `set` of each of `rows`' kinds ([`NO_KIND`] for a
/// kind no feature counts).
fn match_kinds<T: TouchpointFields>(
    set: &FeatureSet,
    rows: &[T],
    scratch: &mut FeatureScratch<'_>,
) {
    scratch.kinds.clear();
    if scratch.spaces_for != set.id {
        scratch.spaces.clear();
        scratch.spaces_for = set.id;
    }
    // The codes of the space kept from earlier computations, or this computation's own.
    let in_space = scratch.space.filter(|&s| s < MAX_SPACES).and_then(|space| {
        if scratch.spaces.len() <= space {
            scratch.spaces.resize_with(space + 1, Vec::new);
        }
        scratch.spaces.get_mut(space)
    });
    let by_code = match in_space {
        Some(codes) => codes,
        None => {
            scratch.by_code.clear();
            &mut scratch.by_code
        }
    };
    // Neighbours often share a kind: the search is skipped when the key repeats.
    let mut last: Option<(KindKey, u32)> = None;
    let mut match_kind = |t: &T| {
        let kind = t.kind().as_str();
        let key = KindKey::of(kind);
        match last {
            Some((k, id)) if k == key && key.len <= 16 => id,
            _ => {
                let id = set.kind_id(key, kind);
                last = Some((key, id));
                id
            }
        }
    };
    scratch.kinds.extend(rows.iter().map(|t| {
        let Some(code) = t.kind_code().filter(|&c| c <= MAX_CODE) else {
            return match_kind(t);
        };
        let code = code as usize;
        if by_code.len() <= code {
            by_code.resize(code + 1, UNSEEN);
        }
        match by_code.get_mut(code) {
            Some(slot) => {
                if *slot == UNSEEN {
                    *slot = match_kind(t);
                }
                *slot
            }
            None => match_kind(t),
        }
    }));
}

/// The position of the first of `rows` (oldest first) that occurred at or after `at`
/// (microseconds since the Unix epoch). Instants are compared as they are: converting each to
/// microseconds costs more, and gives the same order (an instant is before `at` exactly when
/// its microseconds, rounded down, are).
///
/// The ends are looked at first: rows a store read for the longest window all fall in it, and
/// none is at or after `now`, so most searches end there. `instants` keeps the instants of the
/// microseconds searched for (the same for every customer of a batch).
#[inline]
fn first_at<T: TouchpointFields>(
    rows: &[T],
    at: i64,
    instants: &mut Vec<(i64, Option<Timestamp>)>,
) -> usize {
    let Some(at) = instant(at, instants) else {
        return rows.partition_point(|t| t.occurred_at_micros() < at);
    };
    partition_point_ends(rows, |t| t.occurred_at() < at)
}

/// `rows.partition_point(before)` (`before` holds for a prefix of `rows`), looking at the two
/// ends first: when `before` holds for none or all of them, as it does for most windows and
/// ranges, that is two reads instead of a binary search's scattered ones.
#[inline]
pub(crate) fn partition_point_ends<T>(rows: &[T], before: impl Fn(&T) -> bool) -> usize {
    match (rows.first(), rows.last()) {
        (Some(first), _) if !before(first) => 0,
        (_, Some(last)) if before(last) => rows.len(),
        _ => rows.partition_point(before),
    }
}

/// Whether `t`'s attribute `name` is a flag that is set: true only if present and true, a
/// boolean read as it is (`hint`: where it was last found).
#[inline(always)]
fn flag_set<T: TouchpointFields>(t: &T, name: &str, hint: &mut usize) -> bool {
    matches!(
        t.attributes().get_hinted(name, hint),
        Some(Value::Bool(true))
    )
}

/// The instant `at` microseconds after the Unix epoch, from `instants` if it was asked for
/// before (converting costs more than a look through the few kept).
#[inline]
fn instant(at: i64, instants: &mut Vec<(i64, Option<Timestamp>)>) -> Option<Timestamp> {
    if let Some(&(_, known)) = instants.iter().find(|(micros, _)| *micros == at) {
        return known;
    }
    if instants.len() >= MAX_INSTANTS {
        instants.clear();
    }
    let converted = Timestamp::from_timestamp_micros(at);
    instants.push((at, converted));
    converted
}

/// Instants kept by [`instant`]: a catalogue's distinct windows, and `now`.
const MAX_INSTANTS: usize = 16;

impl CompiledFeature {
    /// The feature's value over `rows` (its window, oldest first), whose kind ids are `kinds`.
    fn over<'a, T: TouchpointFields>(
        &self,
        rows: &'a [T],
        kinds: &[u32],
        now: i64,
        scratch: &mut PassScratch<'a>,
    ) -> Option<Scalar<'a>> {
        let mut acc = Acc::new(self.aggregate);
        if self.attribute.is_none() && self.filter.is_none() && self.channels.is_empty() {
            // A plain count: a pass over the kind ids alone.
            acc.count = kinds.iter().filter(|&&kind| self.counts_kind(kind)).count() as u64;
            return acc.finish(0);
        }
        scratch.hints.clear();
        scratch.hints.resize(self.filter_reads.len(), 0);
        scratch.distinct.clear();
        let PassScratch {
            touchpoint,
            distinct,
            hints,
        } = scratch;
        let rows = rows.iter().zip(kinds);
        let Some(name) = &self.attribute else {
            if let Some(flag) = self.flag_attribute()
                && self.channels.is_empty()
            {
                // A count of the touchpoints with a flag (`touchpoint.roaming`): the flag read
                // in the loop, as `passes_filter` reads it.
                let mut hint = 0;
                acc.count = rows
                    .filter(|&(t, &kind)| self.counts_kind(kind) && flag_set(t, flag, &mut hint))
                    .count() as u64;
                return acc.finish(0);
            }
            // A count with channels or a filter.
            acc.count = rows
                .filter(|&(t, &kind)| self.admits(t, kind, now, touchpoint, hints))
                .count() as u64;
            return acc.finish(0);
        };
        let name = name.as_str();
        let mut hint = 0;
        // The aggregate is matched once, outside the loop over the rows.
        match self.aggregate {
            Aggregation::Last => {
                // The newest value only: walk back from `now` and stop at the first.
                for (t, &kind) in rows.rev() {
                    if self.admits(t, kind, now, touchpoint, hints)
                        && let Some(value) = t.attributes().get_hinted(name, &mut hint)
                    {
                        return Some(Scalar::of(value));
                    }
                }
                return None;
            }
            Aggregation::DistinctCount => {
                for (t, &kind) in rows {
                    if self.admits(t, kind, now, touchpoint, hints)
                        && let Some(value) = t.attributes().get_hinted(name, &mut hint)
                    {
                        add_distinct(Scalar::of(value), distinct);
                    }
                }
            }
            Aggregation::Count => {
                for (t, &kind) in rows {
                    if self.admits(t, kind, now, touchpoint, hints)
                        && t.attributes().get_hinted(name, &mut hint).is_some()
                    {
                        acc.count += 1;
                    }
                }
            }
            Aggregation::Sum | Aggregation::Avg | Aggregation::Min | Aggregation::Max => {
                for (t, &kind) in rows {
                    if self.admits(t, kind, now, touchpoint, hints)
                        && let Some(Value::Number(n)) = t.attributes().get_hinted(name, &mut hint)
                    {
                        acc.add_number(*n);
                    }
                }
            }
        }
        acc.finish(distinct.len())
    }

    /// Whether the feature counts `t`, whose kind id is `kind`: its kind, its channel and its
    /// filter.
    #[inline(always)]
    fn admits<'a, T: TouchpointFields>(
        &self,
        t: &'a T,
        kind: u32,
        now: i64,
        touchpoint: &mut [Option<Scalar<'a>>],
        hints: &mut [usize],
    ) -> bool {
        self.counts_kind(kind)
            && self.admits_channel(t)
            && (self.filter.is_none() || self.passes_filter(t, now, touchpoint, hints))
    }

    /// The attribute the feature's filter is, when the filter is one boolean attribute read
    /// as is (`touchpoint.roaming`).
    fn flag_attribute(&self) -> Option<&str> {
        match self.filter_reads.first() {
            Some((_, Field::Attribute(name, _))) if self.filter_flag => Some(name.as_str()),
            _ => None,
        }
    }

    /// Whether the feature counts touchpoints whose kind id is `kind`.
    #[inline(always)]
    fn counts_kind(&self, kind: u32) -> bool {
        match self.kind_test {
            KindTest::Any => true,
            KindTest::Mask(mask) => kind < 64 && (mask >> kind) & 1 != 0,
            KindTest::Ids => self.kind_ids.contains(&kind),
        }
    }

    /// Whether `t` passes the feature's filter (true without one); `touchpoint` holds the
    /// filter's slots, `hints` where each value it reads was last found.
    #[inline]
    fn passes_filter<'a, T: TouchpointFields>(
        &self,
        t: &'a T,
        now: i64,
        touchpoint: &mut [Option<Scalar<'a>>],
        hints: &mut [usize],
    ) -> bool {
        let Some(filter) = &self.filter else {
            return true;
        };
        if self.filter_flag
            && let (Some((_, field)), Some(hint)) = (self.filter_reads.first(), hints.first_mut())
        {
            return match field {
                Field::Attribute(name, _) => flag_set(t, name.as_str(), hint),
                _ => matches!(field.read(t, hint), Some(Scalar::Bool(true))),
            };
        }
        for ((slot, field), hint) in self.filter_reads.iter().zip(hints.iter_mut()) {
            if let Some(value) = touchpoint.get_mut(*slot) {
                *value = field.read(t, hint);
            }
        }
        let env = Env {
            touchpoint,
            ..Env::empty_micros(now)
        };
        filter.eval(&env).holds()
    }
}

/// The `touchpoint.*` values of `t`, in slot order (for rules over one touchpoint: journey
/// stage criteria, triggers).
pub(crate) fn touchpoint_slots<'a>(
    vocabulary: &Vocabulary,
    t: &'a Touchpoint,
    out: &mut Vec<Option<Scalar<'a>>>,
) {
    out.clear();
    out.extend(vocabulary.touchpoint.iter().map(|(name, ty)| {
        let value = match name.as_str() {
            "kind" => Scalar::Str(t.kind.as_str()),
            "channel" => Scalar::Str(t.channel.as_str()),
            "occurred_at" => Scalar::Time(t.occurred_at.timestamp_micros()),
            other => {
                return t
                    .attributes
                    .get(other)
                    .filter(|v| ty.admits(v))
                    .map(Scalar::of);
            }
        };
        Some(value)
    }));
}

/// A key of `value` such that equal values have equal keys: for text, its length and first
/// (at most) 8 bytes; for a number, its bits (0 and -0 are equal: both give 0).
#[inline]
fn quick_key(value: &Scalar<'_>) -> u64 {
    match *value {
        Scalar::Str(s) => {
            let head = s
                .as_bytes()
                .iter()
                .take(8)
                .fold(0u64, |w, &b| w << 8 | u64::from(b));
            head ^ (s.len() as u64).rotate_right(8)
        }
        Scalar::Num(n) => {
            if n == 0.0 {
                0
            } else {
                n.to_bits()
            }
        }
        Scalar::Bool(b) => u64::from(b),
        Scalar::Time(t) => t as u64,
        Scalar::List(items) => items.len() as u64,
    }
}

/// Adds `value` to a distinct count's `distinct`, the values it has seen (equal values have
/// equal quick keys, so most unequal ones are told apart without comparing them).
#[inline]
fn add_distinct<'a>(value: Scalar<'a>, distinct: &mut Vec<(u64, Scalar<'a>)>) {
    let quick = quick_key(&value);
    if !distinct.iter().any(|&(q, v)| q == quick && v == value) {
        distinct.push((quick, value));
    }
}

/// What an aggregate other than `last` has added up.
#[derive(Debug)]
struct Acc {
    aggregate: Aggregation,
    count: u64,
    sum: f64,
    min: f64,
    max: f64,
}

impl Acc {
    fn new(aggregate: Aggregation) -> Self {
        Acc {
            aggregate,
            count: 0,
            sum: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
        }
    }

    /// Adds the number `n` to a sum, average, minimum or maximum.
    #[inline(always)]
    fn add_number(&mut self, n: f64) {
        self.count += 1;
        self.sum += n;
        self.min = self.min.min(n);
        self.max = self.max.max(n);
    }

    /// The value; a `last` is found otherwise, so it has none here.
    fn finish(self, distinct: usize) -> Option<Scalar<'static>> {
        let n = self.count;
        match self.aggregate {
            Aggregation::Count => Some(Scalar::Num(n as f64)),
            Aggregation::Sum => Some(Scalar::Num(self.sum)),
            Aggregation::DistinctCount => Some(Scalar::Num(distinct as f64)),
            Aggregation::Avg => (n > 0).then(|| Scalar::Num(self.sum / n as f64)),
            Aggregation::Min => (n > 0).then_some(Scalar::Num(self.min)),
            Aggregation::Max => (n > 0).then_some(Scalar::Num(self.max)),
            Aggregation::Last => None,
        }
    }
}

/// An owned copy of a feature value, for explanations kept after the decision.
pub(crate) fn owned(value: Option<Scalar<'_>>) -> Option<Value> {
    Some(match value? {
        Scalar::Num(n) => Value::Number(n),
        Scalar::Str(s) => Value::String(s.into()),
        Scalar::Bool(b) => Value::Bool(b),
        Scalar::Time(t) => Value::Timestamp(chrono::DateTime::from_timestamp_micros(t)?),
        Scalar::List(items) => Value::List(items.to_vec()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Catalog, CustomerId, Kind};
    use chrono::{TimeDelta, TimeZone, Utc};

    const FEATURES: &str = r#"
schema:
  touchpoint: { product: string, dwell_seconds: number, data_gb: number }
features:
  - { id: views_10m, aggregate: count, kinds: [product_view], window: 10m }
  - { id: long_views_1d, aggregate: count, kinds: [product_view], window: 1d, filter: "touchpoint.dwell_seconds >= 60" }
  - { id: data_gb_30d, aggregate: sum, attribute: data_gb, kinds: [usage], window: 30d }
  - { id: avg_dwell, aggregate: avg, attribute: dwell_seconds, window: 1d }
  - { id: min_dwell, aggregate: min, attribute: dwell_seconds, window: 1d }
  - { id: max_dwell, aggregate: max, attribute: dwell_seconds, window: 1d }
  - { id: last_product, aggregate: last, attribute: product, window: 1d }
  - { id: products, aggregate: distinct_count, attribute: product, window: 1d }
  - { id: app_views, aggregate: count, channels: [app], window: 1d }
  - { id: old_avg, aggregate: avg, attribute: dwell_seconds, window: 1m }
"#;

    #[test]
    fn every_aggregation_over_its_window_kinds_channels_and_filter() {
        let catalog = Catalog::from_yaml(FEATURES).unwrap();
        let compiled = crate::arbitration::CompiledCatalog::compile(catalog, 1).unwrap();
        let now = Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap();
        let view = |id: &str, mins: i64, product: &str, dwell: f64, channel: Channel| {
            Touchpoint::new(
                id,
                CustomerId::new("c"),
                channel,
                Kind::PRODUCT_VIEW,
                now - TimeDelta::minutes(mins),
            )
            .with_attribute("product", product)
            .with_attribute("dwell_seconds", dwell)
        };
        let usage = |id: &str, days: i64, gb: f64| {
            Touchpoint::new(
                id,
                CustomerId::new("c"),
                Channel::Other("network".into()),
                Kind::USAGE,
                now - TimeDelta::days(days),
            )
            .with_attribute("data_gb", gb)
        };
        let mut touchpoints = vec![
            usage("u1", 40, 100.0), // outside 30 days
            usage("u2", 20, 2.5),
            usage("u3", 1, 1.5),
            view("v1", 120, "phone", 90.0, Channel::Web),
            view("v2", 9, "case", 10.0, Channel::App),
            view("v3", 2, "phone", 61.0, Channel::App),
            view("future", -5, "tv", 1000.0, Channel::App), // after now: never counts
        ];
        touchpoints.sort_by_key(|t| t.occurred_at);
        let mut out = Vec::new();
        compute(
            &compiled.features,
            &compiled.vocabulary,
            &touchpoints,
            now.timestamp_micros(),
            &mut FeatureScratch::default(),
            &mut out,
        );
        let values: Vec<Option<Scalar<'_>>> = out;
        assert_eq!(
            values,
            vec![
                Some(Scalar::Num(2.0)),
                Some(Scalar::Num(2.0)),
                Some(Scalar::Num(4.0)),
                Some(Scalar::Num((90.0 + 10.0 + 61.0) / 3.0)),
                Some(Scalar::Num(10.0)),
                Some(Scalar::Num(90.0)),
                Some(Scalar::Str("phone")),
                Some(Scalar::Num(2.0)),
                Some(Scalar::Num(2.0)),
                None,
            ]
        );
    }

    #[test]
    fn a_flag_filter_read_directly_agrees_with_the_evaluator() {
        let catalog = Catalog::from_yaml(
            r#"
schema:
  touchpoint: { roaming: bool, note: string }
features:
  - { id: direct, aggregate: count, window: 1d, filter: " touchpoint.roaming " }
  - { id: evaluated, aggregate: count, window: 1d, filter: "touchpoint.roaming == true" }
  - { id: last_note, aggregate: last, attribute: note, window: 1d, filter: touchpoint.roaming }
  - { id: not_a_flag, aggregate: count, window: 1d, filter: "touchpoint.note == 'x'" }
"#,
        )
        .unwrap();
        let compiled = crate::arbitration::CompiledCatalog::compile(catalog, 1).unwrap();
        let flags: Vec<bool> = compiled.features.iter().map(|f| f.filter_flag).collect();
        assert_eq!(flags, [true, false, true, false]);
        let now = Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap();
        let at = |m: i64| now - TimeDelta::minutes(m);
        let t = |id: &str, m: i64| {
            Touchpoint::new(id, CustomerId::new("c"), Channel::App, Kind::USAGE, at(m))
        };
        let touchpoints = vec![
            t("a", 50)
                .with_attribute("roaming", true)
                .with_attribute("note", "x"),
            t("b", 40)
                .with_attribute("roaming", false)
                .with_attribute("note", "y"),
            t("c", 30).with_attribute("roaming", "yes"), // not a bool: missing
            t("d", 20).with_attribute("note", "z"),      // no flag
            t("e", 10)
                .with_attribute("roaming", true)
                .with_attribute("note", "w"),
            t("f", 5).with_attribute("roaming", true), // no note: `last` looks further back
        ];
        let mut out = Vec::new();
        compute(
            &compiled.features,
            &compiled.vocabulary,
            &touchpoints,
            now.timestamp_micros(),
            &mut FeatureScratch::default(),
            &mut out,
        );
        assert_eq!(
            out,
            [
                Some(Scalar::Num(3.0)),
                Some(Scalar::Num(3.0)),
                Some(Scalar::Str("w")),
                Some(Scalar::Num(1.0)),
            ]
        );
    }
}

#[cfg(test)]
mod kind_keys {
    use super::KindKey;

    fn same(a: &str, b: &str) -> bool {
        KindKey::of(a).same(a, KindKey::of(b), b)
    }

    #[test]
    fn keys_match_exactly_the_same_kind() {
        for kind in [
            "",
            "a",
            "usage",
            "page_view",
            "product_view",
            "support_contact",
        ] {
            assert!(same(kind, kind), "{kind}");
        }
        assert!(!same("page_view", "complaint"));
        assert!(!same("usage", "usage2"));
        assert!(!same("abc", "abcd"));
        // 16 bytes: the head and tail words cover every byte.
        assert!(!same("product_view_aaa", "product_view_aab"));
        // Longer: same length, head and tail, a different middle.
        let (a, b) = ("support_x_contact", "support_y_contact");
        assert_eq!(KindKey::of(a), KindKey::of(b));
        assert!(!same(a, b));
        assert!(same(a, "support_x_contact"));
    }
}

#[cfg(test)]
mod many {
    use super::*;
    use crate::model::{Catalog, CustomerId, Kind};
    use chrono::{TimeDelta, TimeZone, Utc};

    /// 70 features (two chunks of at most 64), one of them counting 70 kinds (more than a
    /// chunk interns), against counts worked out one feature at a time.
    #[test]
    fn more_than_64_features_and_kinds_count_like_one_feature_at_a_time() {
        let all_kinds: Vec<String> = (0..70).map(|k| format!("k{k}")).collect();
        let mut yaml = String::from("features:\n");
        yaml.push_str(&format!(
            "  - {{ id: every_kind, aggregate: count, kinds: [{}], window: 30d }}\n",
            all_kinds.join(", ")
        ));
        for i in 1..70 {
            let window = if i % 3 == 0 { "1d" } else { "30d" };
            let kinds = if i % 10 == 0 {
                String::new()
            } else {
                format!(", kinds: [k{}]", i % 7)
            };
            yaml.push_str(&format!(
                "  - {{ id: f{i}, aggregate: count{kinds}, window: {window} }}\n"
            ));
        }
        let catalog = Catalog::from_yaml(&yaml).unwrap();
        let compiled = crate::arbitration::CompiledCatalog::compile(catalog, 1).unwrap();
        let now = Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap();
        let touchpoints: Vec<Touchpoint> = (0..200)
            .map(|i| {
                Touchpoint::new(
                    format!("t{i}"),
                    CustomerId::new("c"),
                    Channel::App,
                    Kind::new(format!("k{}", (i * 7) % 12)),
                    now - TimeDelta::hours(200 - i),
                )
            })
            .collect();
        let mut out = Vec::new();
        compute(
            &compiled.features,
            &compiled.vocabulary,
            &touchpoints,
            now.timestamp_micros(),
            &mut FeatureScratch::default(),
            &mut out,
        );
        let expected: Vec<Option<Scalar<'_>>> = compiled
            .features
            .iter()
            .map(|f| {
                let start = now.timestamp_micros() - f.window;
                let n = touchpoints
                    .iter()
                    .filter(|t| t.occurred_at.timestamp_micros() >= start)
                    .filter(|t| f.kinds.is_empty() || f.kinds.contains(&t.kind))
                    .count();
                Some(Scalar::Num(n as f64))
            })
            .collect();
        assert_eq!(out.len(), 70);
        assert_eq!(out, expected);
        assert_eq!(out[0], Some(Scalar::Num(200.0)));

        // The same touchpoints read with kind codes, as a store gives them: two computations
        // with one scratch, whose codes stand for different kinds (without a code space, codes
        // belong to one computation), some codes beyond those remembered. The same values.
        let runs: Vec<Vec<Coded<'_>>> = [(0, 1), (5, MAX_CODE - 3)]
            .into_iter()
            .map(|(shift, spread)| {
                touchpoints
                    .iter()
                    .map(|t| {
                        let k: u32 = t.kind.as_str()[1..].parse().unwrap();
                        Coded {
                            t,
                            code: (k + shift) % 12 * spread,
                        }
                    })
                    .collect()
            })
            .collect();
        let mut scratch = FeatureScratch::default();
        for (run, coded) in runs.iter().enumerate() {
            let mut with_codes = Vec::new();
            compute(
                &compiled.features,
                &compiled.vocabulary,
                coded,
                now.timestamp_micros(),
                &mut scratch,
                &mut with_codes,
            );
            assert_eq!(with_codes, expected, "run {run}");
        }

        // Each run's codes as a code space of their own, the spaces taken in turn twice (the
        // second time, every code is remembered from the first), then another catalogue's
        // features with the same buffers and spaces: the same values.
        let mut buffers = crate::arbitration::FeatureBuffers::default();
        let mut values = Vec::new();
        for round in 0..2 {
            for (space, coded) in runs.iter().enumerate() {
                buffers.set_code_space(Some(space));
                compiled.compute_features_with(coded, now, &mut buffers, &mut values);
                let want: Vec<_> = expected.iter().map(|v| owned(*v)).collect();
                assert_eq!(values, want, "round {round}, space {space}");
            }
        }
        let other = Catalog::from_yaml(
            "features:\n  - { id: k3_only, aggregate: count, kinds: [k3], window: 30d }\n",
        )
        .unwrap();
        let other = crate::arbitration::CompiledCatalog::compile(other, 2).unwrap();
        let k3 = touchpoints
            .iter()
            .filter(|t| t.kind.as_str() == "k3")
            .count();
        for (space, coded) in runs.iter().enumerate() {
            buffers.set_code_space(Some(space));
            other.compute_features_with(coded, now, &mut buffers, &mut values);
            assert_eq!(values, [Some(Value::Number(k3 as f64))], "space {space}");
        }
    }

    /// A touchpoint with its kind's code.
    struct Coded<'a> {
        t: &'a Touchpoint,
        code: u32,
    }

    impl TouchpointFields for Coded<'_> {
        fn occurred_at(&self) -> Timestamp {
            self.t.occurred_at
        }

        fn kind(&self) -> &Kind {
            &self.t.kind
        }

        fn channel(&self) -> &Channel {
            &self.t.channel
        }

        fn attributes(&self) -> &Attributes {
            &self.t.attributes
        }

        fn kind_code(&self) -> Option<u32> {
            Some(self.code)
        }
    }
}
