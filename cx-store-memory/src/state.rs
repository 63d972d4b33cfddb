//! [`Store::decision_state`](cx_core::Store::decision_state) in one step: each lock taken once,
//! and the catalogue's features computed over the stored touchpoints where they are, so a
//! decision copies no touchpoint out of the store.

use crate::MemoryStore;
use crate::shard::{CustomerKey, Shard};
use crate::stored::StoredView;
use cx_core::model::{TimeRange, Touchpoint};
use cx_core::store::{DecisionState, DecisionStateQuery};

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
            match &query.features {
                Some(request) => {
                    let views: Vec<StoredView<'_>> = shard
                        .timeline(&key)
                        .map(|timeline| {
                            timeline.map_in_range(&range, |t| StoredView::new(t, shard.codes()))
                        })
                        .unwrap_or_default();
                    features = Some(request.catalog.compute_features(&views, request.now));
                }
                None => touchpoints = touchpoints_in(&shard, &key, &range),
            }
        }
        let contacts = query
            .contacts
            .map(|range| self.decisions.read().contacts(canonical, &range).to_vec())
            .unwrap_or_default();
        drop(directory);
        let budget_used = if query.budgets.is_empty() {
            Vec::new()
        } else {
            let budgets = self.budgets.lock();
            query
                .budgets
                .iter()
                .map(|k| budgets.get(k).copied().unwrap_or(0))
                .collect()
        };
        let state = DecisionState::new(customer, touchpoints, contacts, budget_used);
        Some(match features {
            Some(features) => state.with_features(features),
            None => state,
        })
    }
}

/// `customer`'s touchpoints in `range`, oldest first, copied out of `shard`.
pub(crate) fn touchpoints_in(
    shard: &Shard,
    key: &CustomerKey,
    range: &TimeRange,
) -> Vec<Touchpoint> {
    shard
        .timeline(key)
        .map(|timeline| timeline.map_in_range(range, |t| t.to_touchpoint(key.id(), shard.codes())))
        .unwrap_or_default()
}
