//! The touchpoint log: the [`TouchpointStore`] implementation (ingest, per-customer reads,
//! scans and aggregates) over the shards of [`crate::shard`].

use crate::MemoryStore;
use crate::shard::{CustomerKey, PerShard, SHARDS, Shard};
use crate::stored::{Codes, Stored};
use async_trait::async_trait;
use cx_core::model::{Channel, CustomerId, Kind, Subject, TimeRange, Timestamp, Touchpoint};
use cx_core::store::{
    AggregateQuery, AggregateRow, AppendReport, ScanCursor, ScanPage, ScanQuery, TouchpointStore,
};
use cx_core::{Error, Result};
use foldhash::HashMap;
use parking_lot::RwLockReadGuard;
use std::cmp::Ordering;

/// A batch resolved and split by shard, waiting for the shards' locks.
pub(crate) type Groups = PerShard<Vec<(CustomerKey, Touchpoint)>>;

/// Keep scratch buffers that hold up to this many touchpoints (about 8 MB), enough for batches
/// of 10-20k: a store ingesting such batches reuses warm memory instead of faulting fresh pages
/// in on every call. Larger buffers are freed after use.
const SCRATCH_KEEP: usize = 32_768;
/// How many scratch buffers to keep (one per concurrent appender, up to this many).
const SCRATCH_SETS: usize = 2;

impl MemoryStore {
    /// Read guards of every shard, taken in ascending order: a consistent snapshot of all
    /// touchpoints (a batch is either wholly in it or not at all).
    pub(crate) fn read_all_shards(&self) -> Vec<RwLockReadGuard<'_, Shard>> {
        self.shards.iter().map(|shard| shard.read()).collect()
    }

    /// Empty per-shard buffers, reused from an earlier append when there is one.
    fn take_scratch(&self) -> Groups {
        self.scratch
            .lock()
            .pop()
            .unwrap_or_else(|| PerShard::from_fn(|_| Vec::new()))
    }

    /// Gives drained buffers back for the next append, unless they grew too large to keep.
    fn return_scratch(&self, groups: Groups) {
        let capacity: usize = groups.iter().map(Vec::capacity).sum();
        if capacity <= SCRATCH_KEEP && groups.iter().all(Vec::is_empty) {
            let mut scratch = self.scratch.lock();
            if scratch.len() < SCRATCH_SETS {
                scratch.push(groups);
            }
        }
    }
}

#[async_trait]
impl TouchpointStore for MemoryStore {
    async fn append_touchpoints(&self, mut batch: Vec<Touchpoint>) -> Result<AppendReport> {
        // 1. Validate everything, without any lock.
        for (i, t) in batch.iter().enumerate() {
            t.validate_in_batch(i)?;
        }

        // 2. Resolve every subject and split the batch by shard. The directory's read lock is
        //    held to the end, so no merge or erasure changes what the ids resolve to meanwhile.
        //    The keys come first, so that each shard's group is allocated once at its size
        //    (growing them would copy every touchpoint again, several times).
        let mut groups = self.take_scratch();
        let directory = self.directory.read();
        let mut keys = Vec::with_capacity(batch.len());
        let mut sizes = [0usize; SHARDS];
        for (i, t) in batch.iter_mut().enumerate() {
            // Take the subject out (an empty id costs no allocation): stored touchpoints keep
            // their customer as the timeline's key, not in each touchpoint.
            let subject =
                std::mem::replace(&mut t.subject, Subject::Customer(CustomerId::default()));
            let customer = match subject {
                Subject::Customer(id) => match directory.alias(&id) {
                    Some(canonical) => canonical.clone(),
                    None => id,
                },
                Subject::Identity(identity) => match directory.identity_owner(&identity) {
                    Some(owner) => owner.clone(),
                    None => {
                        // Name the kind only: identity values are personal data.
                        return Err(Error::validation(
                            format!("touchpoint {:?} (#{i} in batch)", t.id.as_str()),
                            "subject.identity",
                            format!("{} identity resolves to no customer", identity.kind),
                        ));
                    }
                },
            };
            let key = self.keys.key(customer);
            if let Some(size) = sizes.get_mut(key.shard().index()) {
                *size += 1;
            }
            keys.push(key);
        }
        for ((_, group), &size) in groups.iter_mut().zip(&sizes) {
            group.reserve(size);
        }
        for (t, key) in batch.into_iter().zip(keys) {
            groups.get_mut(key.shard()).push((key, t));
        }

        // 3. Lock the shards the batch touches in ascending order (the global lock order) and
        //    hold them all until every touchpoint is in, so that readers see the whole batch or
        //    none of it.
        let mut locked = Vec::with_capacity(SHARDS);
        for (idx, group) in groups.iter_mut() {
            if !group.is_empty() {
                locked.push((self.shards.get(idx).write(), group));
            }
        }
        // The one failure left, checked before anything is stored (and in practice unreachable:
        // it takes four billion distinct kinds in one shard).
        if locked
            .iter()
            .any(|(shard, group)| !shard.has_room_for(group.len()))
        {
            return Err(Error::Storage {
                backend: "memory",
                message: "a shard has run out of codes for distinct channels, kinds or sources"
                    .to_owned(),
                source: None,
            });
        }
        // 4. Nothing below can fail: store.
        let (mut inserted, mut duplicates) = (0u64, 0u64);
        for (shard, group) in &mut locked {
            let (stored, repeated) = shard.insert_all(group);
            inserted += stored;
            duplicates += repeated;
        }
        drop(locked);
        drop(directory);
        self.return_scratch(groups);
        Ok(AppendReport::new(inserted, duplicates))
    }

    async fn customer_touchpoints(
        &self,
        customer: &CustomerId,
        range: TimeRange,
    ) -> Result<Vec<Touchpoint>> {
        let directory = self.directory.read();
        let key = self.keys.key(directory.canonical(customer).clone());
        let shard = self.shards.get(key.shard()).read();
        let timeline = shard.timeline(&key).map(|t| (t, shard.codes()));
        Ok(crate::state::touchpoints_in(timeline, key.id(), &range))
    }

    async fn scan_touchpoints(&self, query: &ScanQuery) -> Result<ScanPage> {
        let filter = &query.filter;
        let limit = query.limit.max(1);
        let after = query.after.as_ref();
        // Timelines are sorted by time: start each at the later of the range start and the
        // cursor, and stop at the range end.
        let start = after.map_or(filter.range.start, |c| {
            c.occurred_at.max(filter.range.start)
        });

        let shards = self.read_all_shards();
        let mut hits: Vec<(&CustomerId, &Stored, &Codes)> = Vec::new();
        for shard in &shards {
            let codes = shard.codes();
            let kept = codes.filter(filter);
            for (customer, timeline) in shard.timelines() {
                for t in timeline.since(start) {
                    if t.occurred_at() >= filter.range.end {
                        break;
                    }
                    if !kept.matches(t) {
                        continue;
                    }
                    if let Some(c) = after
                        && (t.occurred_at(), customer, t.id())
                            <= (c.occurred_at, &c.customer, &c.id)
                    {
                        continue;
                    }
                    hits.push((customer, t, codes));
                }
            }
        }

        // O(n) selection of the page, then a sort of the page only.
        type Hit<'a> = (&'a CustomerId, &'a Stored, &'a Codes);
        let order = |a: &Hit<'_>, b: &Hit<'_>| -> Ordering {
            (a.1.occurred_at(), a.0, a.1.id()).cmp(&(b.1.occurred_at(), b.0, b.1.id()))
        };
        let more = hits.len() > limit;
        if more {
            hits.select_nth_unstable_by(limit, order);
            hits.truncate(limit);
        }
        hits.sort_unstable_by(order);
        let next = if more {
            hits.last().map(|(customer, t, _)| ScanCursor {
                occurred_at: t.occurred_at(),
                customer: (*customer).clone(),
                id: t.id().clone(),
            })
        } else {
            None
        };
        let touchpoints = hits
            .into_iter()
            .map(|(customer, t, codes)| t.to_touchpoint(customer, codes))
            .collect();
        Ok(ScanPage::new(touchpoints, next))
    }

    async fn aggregate_touchpoints(&self, query: &AggregateQuery) -> Result<Vec<AggregateRow>> {
        /// Counts of one group; `last` is the ordinal of the last customer counted in it, so
        /// distinct customers are counted without a set (each customer's touchpoints are
        /// visited together).
        struct Counts {
            touchpoints: u64,
            customers: u64,
            last: usize,
        }
        type Group<'a> = (Option<Timestamp>, Option<&'a Channel>, Option<&'a Kind>);

        let filter = &query.filter;
        let shards = self.read_all_shards();
        let mut groups: HashMap<Group<'_>, Counts> = HashMap::default();
        let mut ordinal = 0usize;
        for shard in &shards {
            let codes = shard.codes();
            let kept = codes.filter(filter);
            for (_, timeline) in shard.timelines() {
                ordinal += 1;
                for t in timeline.in_range(&filter.range) {
                    if !kept.matches(t) {
                        continue;
                    }
                    let group = (
                        query.bucket.map(|b| b.start_of(t.occurred_at())),
                        query.by_channel.then(|| codes.channel(t.channel())),
                        query.by_kind.then(|| codes.kind(t.kind())),
                    );
                    let counts = groups.entry(group).or_insert(Counts {
                        touchpoints: 0,
                        customers: 0,
                        last: 0,
                    });
                    counts.touchpoints += 1;
                    if counts.last != ordinal {
                        counts.customers += 1;
                        counts.last = ordinal;
                    }
                }
            }
        }

        let mut rows: Vec<_> = groups.into_iter().collect();
        rows.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let mut rows: Vec<AggregateRow> = rows
            .into_iter()
            .map(|((bucket, channel, kind), counts)| {
                AggregateRow::new(
                    bucket,
                    channel.cloned(),
                    kind.cloned(),
                    counts.touchpoints,
                    counts.customers,
                )
            })
            .collect();
        let grouped = query.by_channel || query.by_kind || query.bucket.is_some();
        if rows.is_empty() && !grouped {
            rows.push(AggregateRow::new(None, None, None, 0, 0));
        }
        Ok(rows)
    }
}
