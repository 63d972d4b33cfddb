//! A customer's timeline: their stored touchpoints, sorted by `(occurred_at, id)`, in chunks
//! that never move once written.

use crate::columns::Ordinal;
use crate::stored::Stored;
use cx_core::arbitration::FeatureInputs;
use cx_core::model::{TimeRange, Timestamp, TouchpointId};
use parking_lot::{Mutex, MutexGuard};

/// Capacity of a timeline's first chunk; each next chunk doubles it, up to [`MAX_CHUNK`].
const FIRST_CHUNK: usize = 4;
/// Largest capacity a new chunk gets.
const MAX_CHUNK: usize = 256;

/// One customer's touchpoints, sorted by `(occurred_at, id)`.
///
/// They are kept in chunks that are allocated once and never moved when the timeline grows
/// (a plain `Vec` would copy every earlier touchpoint each time it doubled): appending fills
/// the `tail` chunk, whose header sits in the map bucket with the rest of the timeline, or
/// seals it and starts a new, twice as large one. Each chunk is sorted, every item of a chunk
/// comes before every item of the next, the tail is last, and only an empty timeline has an
/// empty tail.
#[derive(Debug, Default)]
pub(crate) struct Timeline {
    sealed: Vec<Vec<Stored>>,
    tail: Vec<Stored>,
    len: usize,
    /// When the last item occurred (meaningless while empty): the in-order check of an append
    /// reads this instead of the item, which is likely not in cache.
    last_at: Timestamp,
    /// The customer's number in the shard's analytics columns.
    ordinal: Ordinal,
    /// What a catalogue's features read of these touchpoints, once a decision read them;
    /// dropped by any change ([`push`](Self::push), [`merge`](Self::merge)). Locked by the
    /// reader that computes features from them, under the shard's read lock.
    inputs: Mutex<Option<Box<FeatureInputs>>>,
}

impl Timeline {
    /// An empty timeline of the customer numbered `ordinal` in the shard's columns.
    pub(crate) fn new(ordinal: Ordinal) -> Self {
        Timeline {
            ordinal,
            ..Timeline::default()
        }
    }

    /// The customer's number in the shard's analytics columns.
    pub(crate) fn ordinal(&self) -> Ordinal {
        self.ordinal
    }

    /// The feature inputs kept for these touchpoints, locked (`None` until some are kept, and
    /// again after any change to the timeline).
    pub(crate) fn feature_inputs(&self) -> MutexGuard<'_, Option<Box<FeatureInputs>>> {
        self.inputs.lock()
    }

    /// Asks the processor to fetch the kept feature inputs, if any (and if no one holds them).
    pub(crate) fn prefetch_feature_inputs(&self) {
        if let Some(inputs) = self.inputs.try_lock()
            && let Some(held) = inputs.as_deref()
        {
            held.prefetch();
        }
    }

    /// The touchpoints that occurred in `range`, oldest first.
    pub(crate) fn in_range(&self, range: &TimeRange) -> impl Iterator<Item = &Stored> {
        self.runs_in(range).flatten()
    }

    /// The touchpoints that occurred in `range`, oldest first, each mapped by `f`, in a
    /// vector allocated once at its final size.
    pub(crate) fn map_in_range<'a, T>(
        &'a self,
        range: &TimeRange,
        f: impl FnMut(&'a Stored) -> T,
    ) -> Vec<T> {
        let mut out = Vec::new();
        self.extend_in_range(range, f, &mut out);
        out
    }

    /// [`map_in_range`](Self::map_in_range), appended to `out` (grown once, to its final size).
    pub(crate) fn extend_in_range<'a, T>(
        &'a self,
        range: &TimeRange,
        mut f: impl FnMut(&'a Stored) -> T,
        out: &mut Vec<T>,
    ) {
        let runs = self.runs_in(range);
        out.reserve_exact(runs.clone().map(<[Stored]>::len).sum());
        // A run at a time: one tight loop each (a flattened iterator tests for the next run
        // at every item).
        for run in runs {
            out.extend(run.iter().map(&mut f));
        }
    }

    /// The touchpoints that occurred in `range`, oldest first, as one run per chunk: both
    /// ends found by binary search, so how many there are is known before any is read.
    fn runs_in(&self, range: &TimeRange) -> impl Iterator<Item = &[Stored]> + Clone {
        let (first, from) = self.position(range.start);
        let (last, to) = self.position(range.end);
        self.chunks()
            .enumerate()
            .skip(first)
            .take((last + 1).saturating_sub(first))
            .map(move |(k, chunk)| {
                let start = if k == first { from } else { 0 };
                let end = if k == last { to } else { chunk.len() };
                chunk.get(start..end.max(start)).unwrap_or_default()
            })
    }

    /// Where the first touchpoint at or after `at` is, or would be: its chunk and its offset
    /// there.
    fn position(&self, at: Timestamp) -> (usize, usize) {
        let k = self.chunk_of(|t| t.occurred_at() < at);
        let offset = self
            .chunk(k)
            .map_or(0, |c| c.partition_point(|t| t.occurred_at() < at));
        (k, offset)
    }

    /// The touchpoints from `start` on, oldest first.
    pub(crate) fn since(&self, start: Timestamp) -> impl Iterator<Item = &Stored> {
        let (first, offset) = self.position(start);
        self.chunks()
            .skip(first)
            .enumerate()
            .flat_map(move |(k, chunk)| {
                chunk
                    .get(if k == 0 { offset } else { 0 }..)
                    .unwrap_or_default()
            })
    }

    /// How many touchpoints there are.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Every touchpoint, oldest first.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Stored> {
        self.chunks().flatten()
    }

    /// The chunks, in order (the tail last).
    fn chunks(&self) -> impl Iterator<Item = &[Stored]> + Clone {
        self.sealed
            .iter()
            .map(Vec::as_slice)
            .chain(std::iter::once(self.tail.as_slice()))
    }

    /// Chunk `k` (the tail is chunk `sealed.len()`).
    fn chunk(&self, k: usize) -> Option<&Vec<Stored>> {
        self.sealed
            .get(k)
            .or_else(|| (k == self.sealed.len()).then_some(&self.tail))
    }

    /// The first chunk that does not lie wholly before a point, given as `before(item)`: the
    /// chunk where that point is, or would be inserted.
    fn chunk_of(&self, before: impl Fn(&Stored) -> bool) -> usize {
        self.sealed
            .partition_point(|c| c.last().is_some_and(&before))
    }

    /// Whether a touchpoint with `id` is held. Looks where a retry of the same touchpoint would
    /// be first, then everywhere (same id at another instant).
    pub(crate) fn contains(&self, id: &TouchpointId, at: Timestamp) -> bool {
        let key = (at, id);
        let retry = self
            .chunk(self.chunk_of(|t| t.key() < key))
            .is_some_and(|c| {
                let i = c.partition_point(|t| t.key() < key);
                c.get(i).is_some_and(|t| t.id() == id)
            });
        retry || self.iter().any(|t| t.id() == id)
    }

    /// Adds `t` in order (appending in the common, in-order case).
    pub(crate) fn push(&mut self, t: Stored) {
        *self.inputs.get_mut() = None;
        self.len += 1;
        let in_order = match self.tail.last() {
            None => true,
            Some(_) if t.occurred_at() > self.last_at => true,
            Some(last) => last.key() <= t.key(),
        };
        if in_order {
            self.last_at = t.occurred_at();
            if self.tail.len() == self.tail.capacity() {
                let capacity = u32::try_from(self.sealed.len())
                    .ok()
                    .and_then(|n| FIRST_CHUNK.checked_shl(n))
                    .map_or(MAX_CHUNK, |c| c.min(MAX_CHUNK));
                let full = std::mem::replace(&mut self.tail, Vec::with_capacity(capacity));
                if !full.is_empty() {
                    self.sealed.push(full);
                }
            }
            self.tail.push(t);
            return;
        }
        // A late arrival: into the chunk where it belongs (that chunk may grow).
        let key = t.key();
        let k = self.chunk_of(|x| x.key() < key);
        let chunk = match self.sealed.get_mut(k) {
            Some(chunk) => chunk,
            None => &mut self.tail,
        };
        let i = chunk.partition_point(|x| x.key() < key);
        chunk.insert(i, t);
    }

    /// Every touchpoint, oldest first, by value.
    pub(crate) fn into_items(self) -> impl Iterator<Item = Stored> {
        self.sealed.into_iter().flatten().chain(self.tail)
    }

    /// Moves `incoming` (sorted) in, keeping the order; the result is one chunk.
    pub(crate) fn merge(&mut self, incoming: Vec<Stored>) {
        let ordinal = self.ordinal;
        let mine: Vec<Stored> = std::mem::take(self).into_items().collect();
        self.ordinal = ordinal;
        self.tail = crate::sorted::merge_sorted(mine, incoming, |x, y| x.key() <= y.key());
        self.len = self.tail.len();
        if let Some(last) = self.tail.last() {
            self.last_at = last.occurred_at();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stored::Codes;
    use cx_core::model::{Channel, CustomerId, Kind, Touchpoint};

    #[test]
    fn chunked_timelines_keep_order_and_answer_ranges() {
        let mut codes = Codes::default();
        let mut timeline = Timeline::default();
        // 1,000 touchpoints, mostly in order with late arrivals, some at equal instants.
        let mut expected = Vec::new();
        for i in 0..1000i64 {
            let at = if i % 7 == 3 { i / 2 - 40 } else { i / 2 };
            let id = format!("t{i:04}");
            let t = Touchpoint::new(
                id.as_str(),
                CustomerId::new("c"),
                Channel::Web,
                Kind::PAGE_VIEW,
                Timestamp::from_timestamp(at, 0).unwrap_or_default(),
            );
            timeline.push(Stored::new(t, &mut codes));
            expected.push((at, id));
        }
        expected.sort();
        assert!(timeline.sealed.len() > 3, "spread over chunks");
        assert_eq!(timeline.len(), 1000);
        let got: Vec<_> = timeline
            .iter()
            .map(|s| (s.occurred_at().timestamp(), s.id().to_string()))
            .collect();
        assert_eq!(got, expected);
        let (first, probe) = expected.get(500).cloned().unwrap_or_default();
        assert!(timeline.contains(
            &probe.as_str().into(),
            Timestamp::from_timestamp(first, 0).unwrap_or_default()
        ));
        assert!(
            timeline.contains(&probe.as_str().into(), Timestamp::UNIX_EPOCH),
            "found anywhere"
        );
        assert!(!timeline.contains(&"nope".into(), Timestamp::UNIX_EPOCH));
        for (from, to) in [
            (-100, 0),
            (0, 1),
            (100, 101),
            (123, 377),
            (499, 600),
            (300, 200),
            (0, 0),
            (-50, 1000),
        ] {
            let range = TimeRange::new(
                Timestamp::from_timestamp(from, 0).unwrap_or_default(),
                Timestamp::from_timestamp(to, 0).unwrap_or_default(),
            );
            let hits: Vec<_> = timeline
                .in_range(&range)
                .map(|s| (s.occurred_at().timestamp(), s.id().to_string()))
                .collect();
            let want: Vec<_> = expected
                .iter()
                .filter(|(at, _)| (from..to).contains(at))
                .cloned()
                .collect();
            assert_eq!(hits, want, "[{from}, {to})");
            let mapped = timeline.map_in_range(&range, |s| s.id().to_string());
            assert_eq!(mapped.len(), mapped.capacity(), "[{from}, {to})");
            assert!(mapped.iter().eq(want.iter().map(|(_, id)| id)));
        }
    }
}
