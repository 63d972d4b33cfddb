//! Touchpoint shards: where touchpoints live, split by a hash of the canonical customer id.
//!
//! Sharding lets ingest lock only the shards a batch touches and lets readers of one customer
//! wait only for writers of that customer's shard. Within a shard:
//!
//! - each customer has a [`Timeline`] of [`Stored`] touchpoints, in a map keyed by the
//!   customer; the timeline's header sits in the map bucket, so an in-order append reads only
//!   the bucket and writes at the end of the timeline;
//! - one [`Fingerprints`] set of (customer, touchpoint id) hashes answers "is this new?" for
//!   the idempotency check with one probe. A hit is only a *maybe*: the timeline is searched to
//!   confirm, so a collision never drops a touchpoint;
//! - [`Codes`] encode channels, kinds and sources.
//!
//! Ingest is dominated by memory: page faults for new data and cache/TLB misses for every random
//! access. Hence the small stored form, one probe for the idempotency check, and timelines that
//! never copy what they hold.

use crate::columns::Columns;
use crate::fingerprints::Fingerprints;
use crate::stored::{Codes, Stored};
use crate::timeline::Timeline;
use cx_core::model::{CustomerId, Subject, Touchpoint, TouchpointId};
use foldhash::fast::RandomState;
use std::hash::{BuildHasher, Hash, Hasher};

/// How many touchpoint shards a store has (a power of two).
pub const SHARDS: usize = 32;

/// Hashes customer ids into [`CustomerKey`]s, with a seed chosen at random per store, so that
/// nobody can pick ids that all land in one shard.
#[derive(Debug, Default)]
pub(crate) struct KeyHasher(RandomState);

impl KeyHasher {
    /// The key of `id`.
    pub(crate) fn key(&self, id: CustomerId) -> CustomerKey {
        CustomerKey {
            hash: self.0.hash_one(&id),
            id,
        }
    }
}

/// A canonical customer id with its hash, computed once per touchpoint: the top bits pick the
/// shard, and the shard's map (whose hasher then mixes only these 8 bytes) and fingerprints
/// use it all.
#[derive(Debug, Clone)]
pub(crate) struct CustomerKey {
    hash: u64,
    id: CustomerId,
}

impl CustomerKey {
    /// The customer id.
    pub(crate) fn id(&self) -> &CustomerId {
        &self.id
    }

    /// The shard that holds this customer's touchpoints.
    pub(crate) fn shard(&self) -> ShardIdx {
        // The top bits: foldhash mixes them best.
        ShardIdx((self.hash >> (u64::BITS - SHARDS.trailing_zeros())) as usize & (SHARDS - 1))
    }
}

impl PartialEq for CustomerKey {
    fn eq(&self, other: &Self) -> bool {
        self.hash == other.hash && self.id == other.id
    }
}

impl Eq for CustomerKey {}

impl Hash for CustomerKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

/// The index of a shard; always below [`SHARDS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct ShardIdx(usize);

impl ShardIdx {
    /// The index, below [`SHARDS`]: the position of the shard in [`PerShard::iter`].
    pub(crate) fn index(self) -> usize {
        self.0
    }
}

/// One value per shard, indexed by [`ShardIdx`] (which cannot be out of range).
#[derive(Debug)]
pub(crate) struct PerShard<T>([T; SHARDS]);

impl<T> PerShard<T> {
    /// Builds each shard's value, in ascending shard order.
    pub(crate) fn from_fn(f: impl FnMut(usize) -> T) -> Self {
        PerShard(std::array::from_fn(f))
    }

    /// The value of shard `i`.
    #[expect(
        clippy::indexing_slicing,
        reason = "a ShardIdx is masked below SHARDS when it is made"
    )]
    pub(crate) fn get(&self, i: ShardIdx) -> &T {
        &self.0[i.0]
    }

    /// The value of shard `i`, mutably.
    #[expect(
        clippy::indexing_slicing,
        reason = "a ShardIdx is masked below SHARDS when it is made"
    )]
    pub(crate) fn get_mut(&mut self, i: ShardIdx) -> &mut T {
        &mut self.0[i.0]
    }

    /// Every shard's value, in ascending shard order (the lock order).
    pub(crate) fn iter(&self) -> std::slice::Iter<'_, T> {
        self.0.iter()
    }

    /// Every shard's value with its index, in ascending shard order.
    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = (ShardIdx, &mut T)> {
        self.0.iter_mut().enumerate().map(|(i, v)| (ShardIdx(i), v))
    }
}

/// The touchpoints of the customers that hash to one shard.
#[derive(Debug, Default)]
pub(crate) struct Shard {
    customers: foldhash::HashMap<CustomerKey, Timeline>,
    /// Fingerprints of every stored (customer, touchpoint id): a miss proves a touchpoint new.
    fingerprints: Fingerprints,
    /// Seeds the fingerprints (at random, so that nobody can pick ids that pile up in one run
    /// of the fingerprint table).
    fingerprint_hasher: RandomState,
    codes: Codes,
    /// The same touchpoints as columns, for analytics over all of them.
    columns: Columns,
    touchpoints: usize,
}

/// The idempotency fingerprint of touchpoint `id` of `customer`.
fn fingerprint(seed: &RandomState, customer: &CustomerKey, id: &TouchpointId) -> u32 {
    let mut hasher = seed.build_hasher();
    hasher.write_u64(customer.hash);
    // The id's bytes alone (no end marker as `Hash for str` adds): it is the last field.
    hasher.write(id.as_str().as_bytes());
    // The top half: foldhash mixes it best.
    (hasher.finish() >> 32) as u32
}

impl Shard {
    /// Whether `n` more touchpoints fit (see [`Codes::has_room_for`]).
    pub(crate) fn has_room_for(&self, n: usize) -> bool {
        self.codes.has_room_for(n) && self.columns.has_room_for(n)
    }

    /// Stores `t` under `customer` unless the customer already holds a touchpoint with its id.
    /// Returns whether it was stored.
    #[cfg(test)]
    pub(crate) fn insert(&mut self, customer: CustomerKey, t: Touchpoint) -> bool {
        let mut batch = vec![(customer, t)];
        self.insert_all(&mut batch) == (1, 0)
    }

    /// Stores the touchpoints of `batch`, in order, each unless its customer already holds a
    /// touchpoint with its id (stored before or earlier in `batch`). Drains `batch`; returns
    /// (stored, duplicates).
    pub(crate) fn insert_all(&mut self, batch: &mut Vec<(CustomerKey, Touchpoint)>) -> (u64, u64) {
        // First every fingerprint probe, in a loop of its own: the probes do not depend on one
        // another, so the CPU overlaps their cache misses instead of waiting for each in turn.
        let seed = &self.fingerprint_hasher;
        let maybe_held: Vec<bool> = batch
            .iter()
            .map(|(customer, t)| !self.fingerprints.insert(fingerprint(seed, customer, &t.id)))
            .collect();
        let (mut stored, mut duplicates) = (0, 0);
        for ((customer, t), maybe_held) in batch.drain(..).zip(maybe_held) {
            // `entry` takes the key by value: no clone, for a new customer or a known one.
            let timeline = self
                .customers
                .entry(customer)
                .or_insert_with(|| Timeline::new(self.columns.new_ordinal()));
            // A fingerprint hit is only a maybe; the timeline has the answer.
            if maybe_held && timeline.contains(&t.id, t.occurred_at) {
                duplicates += 1;
            } else {
                let t = Stored::new(t, &mut self.codes);
                self.columns.push(timeline.ordinal(), &t);
                timeline.push(t);
                stored += 1;
            }
        }
        self.touchpoints += stored as usize;
        (stored, duplicates)
    }

    /// The timeline of `customer`, if they have touchpoints here.
    pub(crate) fn timeline(&self, customer: &CustomerKey) -> Option<&Timeline> {
        self.customers.get(customer)
    }

    /// The codes the shard's touchpoints are stored with.
    pub(crate) fn codes(&self) -> &Codes {
        &self.codes
    }

    /// The shard's touchpoints as analytics columns.
    pub(crate) fn columns(&self) -> &Columns {
        &self.columns
    }

    /// Erases the touchpoints of `customer`; returns how many there were.
    pub(crate) fn remove(&mut self, customer: &CustomerKey) -> usize {
        let Some(timeline) = self.customers.remove(customer) else {
            return 0;
        };
        self.columns.remove_customer(timeline.ordinal());
        for t in timeline.iter() {
            self.fingerprints
                .remove(fingerprint(&self.fingerprint_hasher, customer, t.id()));
        }
        self.touchpoints -= timeline.len();
        timeline.len()
    }

    /// Removes the touchpoints of `customer` and returns them, oldest first (to move them to
    /// another customer, maybe in another shard).
    pub(crate) fn take(&mut self, customer: &CustomerKey) -> Vec<Touchpoint> {
        let Some(timeline) = self.customers.remove(customer) else {
            return Vec::new();
        };
        self.columns.remove_customer(timeline.ordinal());
        self.touchpoints -= timeline.len();
        timeline
            .into_items()
            .map(|t| {
                self.fingerprints
                    .remove(fingerprint(&self.fingerprint_hasher, customer, t.id()));
                t.to_touchpoint(customer.id(), &self.codes)
            })
            .collect()
    }

    /// Adds `incoming` (sorted by `(occurred_at, id)`, ids distinct) to `customer`'s timeline;
    /// those whose id `customer` already holds are dropped. Returns how many were added.
    pub(crate) fn absorb(&mut self, customer: &CustomerKey, incoming: Vec<Touchpoint>) -> u64 {
        let timeline = self
            .customers
            .entry(customer.clone())
            .or_insert_with(|| Timeline::new(self.columns.new_ordinal()));
        let mut added = Vec::with_capacity(incoming.len());
        for mut t in incoming {
            let maybe_held =
                !self
                    .fingerprints
                    .insert(fingerprint(&self.fingerprint_hasher, customer, &t.id));
            if !(maybe_held && timeline.contains(&t.id, t.occurred_at)) {
                t.subject = Subject::Customer(customer.id().clone());
                let t = Stored::new(t, &mut self.codes);
                self.columns.push(timeline.ordinal(), &t);
                added.push(t);
            }
        }
        let moved = added.len();
        // Both are sorted: one merge pass keeps the order without a sort.
        timeline.merge(added);
        self.touchpoints += moved;
        moved as u64
    }

    /// Every customer with their timeline.
    pub(crate) fn timelines(&self) -> impl Iterator<Item = (&CustomerId, &Timeline)> {
        self.customers
            .iter()
            .map(|(key, timeline)| (key.id(), timeline))
    }

    /// How many touchpoints the shard holds.
    pub(crate) fn touchpoint_count(&self) -> usize {
        self.touchpoints
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cx_core::model::{Channel, Kind, TimeRange, Timestamp};

    fn tp(id: &str, secs: i64) -> Touchpoint {
        let at = Timestamp::from_timestamp(secs, 0).unwrap_or_default();
        Touchpoint::new(id, CustomerId::new("c"), Channel::Web, Kind::PAGE_VIEW, at)
    }

    fn key(id: &str) -> CustomerKey {
        // One hasher for the whole test: keys of one id must be equal.
        static KEYS: std::sync::LazyLock<KeyHasher> = std::sync::LazyLock::new(KeyHasher::default);
        KEYS.key(CustomerId::new(id))
    }

    fn ids(shard: &Shard, customer: &str) -> Vec<String> {
        shard
            .timeline(&key(customer))
            .map(|t| t.iter().map(|s| s.id().to_string()).collect())
            .unwrap_or_default()
    }

    #[test]
    fn shard_indexes_are_in_range_and_spread() {
        let mut seen = [false; SHARDS];
        for i in 0..10_000 {
            let ShardIdx(s) = key(&format!("c-{i}")).shard();
            assert!(s < SHARDS);
            if let Some(slot) = seen.get_mut(s) {
                *slot = true;
            }
        }
        assert!(seen.iter().all(|s| *s));
    }

    #[test]
    fn inserts_keep_order_and_reject_known_ids() {
        let mut shard = Shard::default();
        assert!(shard.insert(key("c"), tp("b", 20)));
        assert!(shard.insert(key("c"), tp("a", 30)));
        assert!(shard.insert(key("c"), tp("c", 10)));
        assert!(shard.insert(key("c"), tp("a2", 20)));
        assert!(shard.insert(key("c"), tp("a1", 30)));
        assert!(
            !shard.insert(key("c"), tp("a", 5)),
            "same id at another instant"
        );
        assert!(!shard.insert(key("c"), tp("a2", 20)), "a retry");
        assert!(shard.insert(key("d"), tp("a", 5)), "another customer");
        assert_eq!(ids(&shard, "c"), ["c", "a2", "b", "a", "a1"]);
        assert_eq!(shard.touchpoint_count(), 6);
        let range = TimeRange::new(
            Timestamp::from_timestamp(20, 0).unwrap_or_default(),
            Timestamp::from_timestamp(30, 0).unwrap_or_default(),
        );
        let timeline = shard.timeline(&key("c"));
        let hits: Vec<_> = timeline
            .map(|t| t.in_range(&range).map(|s| s.id().as_str()).collect())
            .unwrap_or_default();
        assert_eq!(hits, ["a2", "b"]);
        let back = timeline
            .and_then(|t| t.iter().next())
            .map(|s| s.to_touchpoint(&CustomerId::new("c"), shard.codes()));
        assert_eq!(back, Some(tp("c", 10)));
    }

    #[test]
    fn moving_touchpoints_keeps_order_and_drops_known_ids() {
        let mut shard = Shard::default();
        shard.insert(key("s"), tp("x", 10));
        shard.insert(key("s"), tp("y", 30));
        shard.insert(key("a"), tp("x", 99));
        shard.insert(key("a"), tp("z", 20));
        shard.insert(key("a"), tp("w", 40));
        let theirs = shard.take(&key("a"));
        assert_eq!(theirs.len(), 3);
        assert_eq!(shard.touchpoint_count(), 2);
        assert_eq!(shard.absorb(&key("s"), theirs), 2);
        assert_eq!(ids(&shard, "s"), ["x", "z", "y", "w"]);
        assert_eq!(shard.touchpoint_count(), 4);
        // Across shards the codes differ: moved touchpoints are re-encoded.
        let mut other = Shard::default();
        other.insert(
            key("o"),
            Touchpoint {
                channel: Channel::Sms,
                ..tp("first", 1)
            },
        );
        let moved = shard.take(&key("s"));
        assert_eq!(other.absorb(&key("o"), moved), 4);
        let back: Vec<_> = other
            .timeline(&key("o"))
            .map(|t| {
                t.iter()
                    .map(|s| s.to_touchpoint(key("o").id(), other.codes()))
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(back.len(), 5);
        assert!(
            back.iter().skip(1).all(|t| t.channel == Channel::Web
                && t.subject == Subject::Customer(CustomerId::new("o")))
        );
        // The absorbed customer's ids are free again, the survivor's are held.
        assert!(shard.insert(key("a"), tp("x", 99)));
        assert!(!other.insert(key("o"), tp("w", 40)));
        assert_eq!(other.remove(&key("o")), 5);
        assert!(
            other.insert(key("o"), tp("w", 40)),
            "erased ids are free again"
        );
    }
}
