//! [`Store::decision_state`](cx_core::Store::decision_state) in one step: each lock taken once,
//! and the catalogue's features computed over the stored touchpoints where they are, so a
//! decision copies no touchpoint out of the store;
//! [`Store::visit_decision_states`](cx_core::Store::visit_decision_states) for many customers,
//! each lock taken once per group of them and nothing copied at all.

use crate::MemoryStore;
use crate::customers::Profile;
use crate::decisions::DecisionLog;
use crate::stored::{Codes, StoredView};
use crate::timeline::Timeline;
use cx_core::arbitration::{ContactInputs, CustomerInputs, FeatureBuffers, FeatureInputs};
use cx_core::model::{ContactEvent, CustomerId, TimeRange, Timestamp, Touchpoint, Value};
use cx_core::rules::SlotHints;
use cx_core::store::{
    BudgetKey, DecisionState, DecisionStateQuery, DecisionStateView, FeatureRequest,
};
use mem_prefetch::prefetch_read_data;
use parking_lot::{MappedMutexGuard, MutexGuard};

/// How many customers [`MemoryStore::visit_states`] reads under one taking of its locks: enough
/// to spread the cost of taking them (every shard's), few enough that a writer waits for no
/// more than a few milliseconds of decisions.
const VISIT_GROUP: usize = 256;

/// How many customers [`MemoryStore::visit_states`] finds, and asks the processor to fetch what
/// deciding for them reads, before deciding for the first: a customer's profile, timeline and
/// contact history are cache misses, which then overlap instead of coming one at a time.
const LOOKAHEAD: usize = 8;

impl MemoryStore {
    /// The answer to `query`, read under the directory's read lock (so no merge or erasure
    /// interleaves), the customer's shard and the decision log, in the crate's lock order; the
    /// budget counters after them (that lock is never held with another).
    pub(crate) fn read_decision_state(&self, query: &DecisionStateQuery) -> Option<DecisionState> {
        let directory = self.directory.read();
        let canonical = directory.canonical(&query.customer);
        let customer = directory.profile(canonical)?.clone();
        let key = self.keys.key(canonical.clone());
        let mut features = None;
        let mut touchpoints = Vec::new();
        if let Some(range) = query.touchpoints {
            let shard = self.shards.get(key.shard()).read();
            let timeline = shard.timeline(&key).map(|t| (t, shard.codes()));
            match &query.features {
                Some(request) => {
                    let mut computed = Vec::new();
                    features_in(
                        timeline,
                        &range,
                        request,
                        Inputs::Use,
                        &mut Vec::new(),
                        &mut FeatureBuffers::default(),
                        &mut computed,
                    );
                    features = Some(computed);
                }
                None => touchpoints = touchpoints_in(timeline, canonical, &range),
            }
        }
        let contacts = query
            .contacts
            .map(|range| self.decisions.read().contacts(canonical, &range).to_vec())
            .unwrap_or_default();
        drop(directory);
        let budget_used = self.budgets_in_use(&query.budgets);
        let state = DecisionState::new(customer, touchpoints, contacts, budget_used);
        Some(match features {
            Some(features) => state.with_features(features),
            None => state,
        })
    }

    /// [`Store::visit_decision_states`](cx_core::Store::visit_decision_states): per group of
    /// [`VISIT_GROUP`] customers, the directory, every shard and the decision log are read
    /// locked once (in the crate's lock order) and each customer's profile and contact history
    /// handed over where they are, the features computed in place with buffers kept across
    /// customers, and what the catalogue reads of the profile alone read once and kept with it
    /// ([`CustomerInputs`](cx_core::arbitration::CustomerInputs)); the budget counters are read
    /// once for the whole visit. Customers are found [`LOOKAHEAD`] at a time, and what deciding
    /// reads of them prefetched.
    pub(crate) fn visit_states(
        &self,
        query: &DecisionStateQuery,
        customers: &[CustomerId],
        visit: &mut (dyn for<'s> FnMut(usize, Option<DecisionStateView<'s>>) + Send),
    ) {
        let budget_used = self.budgets_in_use(&query.budgets);
        let inputs = if self.keep_feature_inputs {
            Inputs::Keep
        } else {
            Inputs::Use
        };
        let mut buffers = FeatureBuffers::default();
        let mut hints = SlotHints::default();
        let mut features = Vec::new();
        let mut position = 0;
        for group in customers.chunks(VISIT_GROUP) {
            let directory = self.directory.read();
            let shards: Vec<_> = match query.touchpoints {
                Some(_) => self.shards.iter().map(|s| s.read()).collect(),
                None => Vec::new(),
            };
            let decisions = query.contacts.map(|_| self.decisions.read());
            let mut views: Vec<StoredView<'_>> = Vec::new();
            let mut found: Vec<Found<'_>> = Vec::with_capacity(LOOKAHEAD);
            for run in group.chunks(LOOKAHEAD) {
                // Every customer of the run found first, and what deciding reads of them
                // prefetched: their lookups are independent, so their cache misses overlap.
                found.extend(run.iter().map(|id| {
                    let canonical = directory.canonical(id);
                    let Some(profile) = directory.profile_entry(canonical) else {
                        return Found::default();
                    };
                    let key = self.keys.key(canonical.clone());
                    let space = key.shard().index();
                    let found = Found {
                        profile: Some(profile),
                        space,
                        timeline: shards
                            .get(space)
                            .and_then(|s| Some((s.timeline(&key)?, s.codes()))),
                        contacts: match (&decisions, query.contacts) {
                            (Some(log), Some(range)) => {
                                find_contacts(profile, log, query, &range, inputs)
                            }
                            _ => Contacts::None,
                        },
                    };
                    found.prefetch();
                    found
                }));
                for found in found.drain(..) {
                    let i = position;
                    position += 1;
                    let Some(profile) = found.profile else {
                        visit(i, None);
                        continue;
                    };
                    let customer = profile.customer();
                    let kept = query.features.as_ref().and_then(|request| {
                        customer_inputs_in(profile, request, inputs, &mut hints)
                    });
                    let (contacts, kept_contacts) = match (&decisions, query.contacts) {
                        (Some(log), Some(range)) => {
                            contacts_of(profile, log, query, &range, found.contacts, inputs)
                        }
                        _ => (&[][..], None),
                    };
                    let mut touchpoints = Vec::new();
                    let mut computed = None;
                    let mut held = None;
                    if let Some(range) = query.touchpoints {
                        match &query.features {
                            Some(request) => {
                                // A shard's kind codes never change meaning (its dictionary
                                // never forgets a kind): each is matched once for the visit.
                                buffers.set_code_space(Some(found.space));
                                held = found.timeline.and_then(|(timeline, codes)| {
                                    let (views, buffers) = (&mut views, &mut buffers);
                                    feature_inputs_in(
                                        timeline, codes, &range, request, inputs, views, buffers,
                                    )
                                });
                                if held.is_none() {
                                    touchpoint_features(
                                        found.timeline,
                                        &range,
                                        request,
                                        &mut views,
                                        &mut buffers,
                                        &mut features,
                                    );
                                    computed = Some(features.as_slice());
                                }
                            }
                            None => {
                                touchpoints = touchpoints_in(found.timeline, &customer.id, &range);
                            }
                        }
                    }
                    visit(
                        i,
                        Some(DecisionStateView {
                            customer,
                            touchpoints: &touchpoints,
                            features: computed,
                            customer_inputs: kept.as_deref(),
                            feature_inputs: held.as_deref(),
                            contacts,
                            contact_inputs: match (&kept_contacts, query.contacts) {
                                (Some(held), Some(range)) => Some(held.window(&range)),
                                _ => None,
                            },
                            budget_used: &budget_used,
                        }),
                    );
                }
            }
        }
    }

    /// How much of each of the counters `keys` is used (under the budgets' lock, taken only if
    /// there are keys, and never held with another).
    fn budgets_in_use(&self, keys: &[BudgetKey]) -> Vec<u64> {
        if keys.is_empty() {
            return Vec::new();
        }
        let budgets = self.budgets.lock();
        keys.iter()
            .map(|k| budgets.get(k).copied().unwrap_or(0))
            .collect()
    }
}

/// What [`features_in`] does with the [`FeatureInputs`](cx_core::arbitration::FeatureInputs)
/// kept with a timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Inputs {
    /// Computes from them if they serve, and otherwise from the touchpoints: one decision,
    /// most likely after the customer's touchpoints changed, reads them once.
    Use,
    /// Reads and keeps them if those kept do not serve, then computes from them: decisions for
    /// many customers at one instant (a dry run, an offline evaluation) are often made again.
    Keep,
}

/// The features `request` asks for over a customer's touchpoints in `range`, computed where
/// their `timeline` keeps them (with its shard's codes), into `out`, from the feature inputs
/// kept with it if they serve ([`feature_inputs_in`], `inputs` saying whether to read and keep
/// them if not); `views` (emptied first) and `buffers` are kept for the next customer's.
fn features_in<'s>(
    timeline: Option<(&'s Timeline, &'s Codes)>,
    range: &TimeRange,
    request: &FeatureRequest,
    inputs: Inputs,
    views: &mut Vec<StoredView<'s>>,
    buffers: &mut FeatureBuffers,
    out: &mut Vec<Option<Value>>,
) {
    let held = timeline.and_then(|(timeline, codes)| {
        feature_inputs_in(timeline, codes, range, request, inputs, views, buffers)
    });
    match held {
        Some(held) => {
            // They serve the request's instant, so they compute.
            request
                .catalog
                .compute_features_from(&held, request.now, buffers, out);
        }
        None => touchpoint_features(timeline, range, request, views, buffers, out),
    }
}

/// The features `request` asks for over a customer's touchpoints in `range`, computed from the
/// touchpoints where their `timeline` keeps them (with its shard's codes), into `out`.
fn touchpoint_features<'s>(
    timeline: Option<(&'s Timeline, &'s Codes)>,
    range: &TimeRange,
    request: &FeatureRequest,
    views: &mut Vec<StoredView<'s>>,
    buffers: &mut FeatureBuffers,
    out: &mut Vec<Option<Value>>,
) {
    views.clear();
    if let Some((timeline, codes)) = timeline {
        timeline.extend_in_range(range, |t| StoredView::new(t, codes), views);
    }
    (request.catalog).compute_features_with(views, request.now, buffers, out);
}

/// What `request`'s catalogue's features read of the touchpoints of `timeline` (with its
/// shard's codes), kept with it, if they serve a decision at the request's instant over
/// `range`; read and kept first if those kept do not and `inputs` says to keep them; locked
/// until the guard is dropped (after the visit of the customer). `None` if none serve.
///
/// The inputs ([`FeatureInputs`]) are read from every touchpoint since the start of the range:
/// a later decision for the customer computes from them alone, unless the timeline changed
/// since, the catalogue's features are others, or its windows reach back further. A range
/// that does not reach `now`, or starts after the longest window does, is read as is.
fn feature_inputs_in<'s>(
    timeline: &'s Timeline,
    codes: &'s Codes,
    range: &TimeRange,
    request: &FeatureRequest,
    inputs: Inputs,
    views: &mut Vec<StoredView<'s>>,
    buffers: &mut FeatureBuffers,
) -> Option<MappedMutexGuard<'s, FeatureInputs>> {
    let (catalog, now) = (&request.catalog, request.now);
    let windows_start = now
        .checked_sub_signed(catalog.touchpoint_lookback().as_delta())
        .unwrap_or(Timestamp::MIN_UTC);
    // Inputs hold the windows at `now`: they serve only a range that holds them too.
    if range.end < now || range.start > windows_start {
        return None;
    }
    let mut kept = timeline.feature_inputs();
    if inputs == Inputs::Keep && !kept.as_deref().is_some_and(|held| held.serve(catalog, now)) {
        // Touchpoints at or after `now` are read by no feature: the range's are the same.
        views.clear();
        views.extend(
            timeline
                .since(range.start)
                .map(|t| StoredView::new(t, codes)),
        );
        *kept = catalog
            .feature_inputs(views, range.start, buffers)
            .map(Box::new);
    }
    MutexGuard::try_map(kept, |kept| {
        kept.as_deref_mut().filter(|held| held.serve(catalog, now))
    })
    .ok()
}

/// What `request`'s catalogue reads of `profile` alone, kept with the profile: read and kept
/// first if those kept do not serve and `inputs` says to keep them (as the feature inputs
/// are); locked until the guard is dropped (after the visit of the customer). `None` if none
/// serve.
fn customer_inputs_in<'p>(
    profile: &'p Profile,
    request: &FeatureRequest,
    inputs: Inputs,
    hints: &mut SlotHints,
) -> Option<MappedMutexGuard<'p, CustomerInputs>> {
    let catalog = &request.catalog;
    let mut kept = profile.customer_inputs();
    if inputs == Inputs::Keep && !kept.as_ref().is_some_and(|c| c.serve(catalog)) {
        *kept = Some(Box::new(catalog.customer_inputs(profile.customer(), hints)));
    }
    MutexGuard::try_map(kept, |kept| {
        kept.as_deref_mut().filter(|c| c.serve(catalog))
    })
    .ok()
}

/// How the contact history of the customer of `profile` is read for a decision over `range`
/// (a query with a catalogue reads the contact inputs kept for it, if they serve; reading them
/// to keep takes the history from the start of `range` on; a query without reads the events
/// of `range`).
fn find_contacts<'s>(
    profile: &Profile,
    log: &'s DecisionLog,
    query: &DecisionStateQuery,
    range: &TimeRange,
    inputs: Inputs,
) -> Contacts<'s> {
    let id = &profile.customer().id;
    match &query.features {
        Some(request) if profile.prefetch_contact_inputs(&request.catalog, range) => Contacts::Kept,
        Some(_) if inputs == Inputs::Keep => Contacts::ToKeep(log.contacts_since(id, range.start)),
        _ => Contacts::Range(log.contacts(id, range)),
    }
}

/// The contact history of the customer of `profile` over `range` as a decision reads it, as
/// [`find_contacts`] found it: the events, or the contact inputs kept for the query's
/// catalogue (read and kept first if `inputs` says to keep them and those kept do not serve),
/// locked until the guard is dropped (after the visit of the customer).
fn contacts_of<'p, 's>(
    profile: &'p Profile,
    log: &'s DecisionLog,
    query: &DecisionStateQuery,
    range: &TimeRange,
    found: Contacts<'s>,
    inputs: Inputs,
) -> (
    &'s [ContactEvent],
    Option<MappedMutexGuard<'p, ContactInputs>>,
) {
    let id = &profile.customer().id;
    let Some(request) = &query.features else {
        return (
            found.events().unwrap_or_else(|| log.contacts(id, range)),
            None,
        );
    };
    let catalog = &request.catalog;
    let mut kept = profile.contact_inputs();
    if inputs == Inputs::Keep && !kept.as_ref().is_some_and(|c| c.serve(catalog, range)) {
        let history = match found {
            Contacts::ToKeep(events) => events,
            _ => log.contacts_since(id, range.start),
        };
        *kept = Some(Box::new(catalog.contact_inputs(history, range.start)));
    }
    match MutexGuard::try_map(kept, |kept| {
        kept.as_deref_mut().filter(|c| c.serve(catalog, range))
    }) {
        Ok(held) => (&[], Some(held)),
        // Replaced by a batch under another catalogue since they were found: the events.
        Err(_) => match found {
            Contacts::Range(events) => (events, None),
            _ => (log.contacts(id, range), None),
        },
    }
}

/// The touchpoints of `timeline` (with its shard's codes) in `range`, oldest first, copied out
/// for `customer`.
pub(crate) fn touchpoints_in(
    timeline: Option<(&Timeline, &Codes)>,
    customer: &CustomerId,
    range: &TimeRange,
) -> Vec<Touchpoint> {
    timeline
        .map(|(timeline, codes)| timeline.map_in_range(range, |t| t.to_touchpoint(customer, codes)))
        .unwrap_or_default()
}

/// A customer of a [`MemoryStore::visit_states`] run, found.
#[derive(Default)]
struct Found<'s> {
    /// The profile; `None` for an id that resolves to none.
    profile: Option<&'s Profile>,
    /// The customer's touchpoint shard (the code space of its kinds).
    space: usize,
    /// The customer's timeline, with its shard's codes, if the query reads touchpoints.
    timeline: Option<(&'s Timeline, &'s Codes)>,
    /// The contact history the query reads.
    contacts: Contacts<'s>,
}

/// A customer's contact history, as [`find_contacts`] found it.
#[derive(Debug, Default, Clone, Copy)]
enum Contacts<'s> {
    /// The query reads none.
    #[default]
    None,
    /// The contact inputs kept for the query's catalogue serve.
    Kept,
    /// The events from the start of the query's range on, to read contact inputs from.
    ToKeep(&'s [ContactEvent]),
    /// The events of the query's range.
    Range(&'s [ContactEvent]),
}

impl<'s> Contacts<'s> {
    /// The events of the query's range, if these are they.
    fn events(self) -> Option<&'s [ContactEvent]> {
        match self {
            Contacts::None => Some(&[]),
            Contacts::Range(events) => Some(events),
            Contacts::Kept | Contacts::ToKeep(_) => None,
        }
    }
}

impl Found<'_> {
    /// Asks the processor to fetch what deciding for the customer reads: the profile's
    /// attributes and consents, the timeline's kept feature inputs, the contact history.
    fn prefetch(&self) {
        if let Some(profile) = self.profile {
            let customer = profile.customer();
            if !profile.prefetch_customer_inputs() {
                for (name, value) in customer.attributes.iter() {
                    prefetch_read_data::<_, 3>(name);
                    prefetch_read_data::<_, 3>(value);
                }
            }
            // A consent record spans more than a line: every line.
            for consent in &customer.consents {
                prefetch_read_data::<_, 3>(&consent.channel);
                prefetch_read_data::<_, 3>(&consent.expires_at);
            }
        }
        if let Some((timeline, _)) = self.timeline {
            timeline.prefetch_feature_inputs();
        }
        if let Contacts::ToKeep(events) | Contacts::Range(events) = self.contacts {
            for event in events {
                // An event spans lines: the fields a decision reads first.
                prefetch_read_data::<_, 3>(&event.at);
                prefetch_read_data::<_, 3>(&event.kind);
            }
        }
    }
}
