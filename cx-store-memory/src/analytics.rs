//! Journey and KPI analytics: the [`AnalyticsStore`] implementation, running the reference
//! accumulators of cx-core over the shards and the journey tracks.

use crate::MemoryStore;
use crate::columns::BLOCK;
use crate::shard::{KeyHasher, Shard};
use async_trait::async_trait;
use cx_core::Result;
use cx_core::journey::funnel::FunnelBuilder;
use cx_core::journey::moments::MomentsBuilder;
use cx_core::kpi::inputs::MeasureAcc;
use cx_core::model::{CustomerId, TimeRange};
use cx_core::store::{
    AnalyticsStore, DurationStats, Funnel, FunnelQuery, MeasureQuery, MeasureValue, MomentsQuery,
    StageScore, StageTimesQuery, Statistic,
};
use parking_lot::RwLockReadGuard;
use std::collections::HashSet;

#[async_trait]
impl AnalyticsStore for MemoryStore {
    async fn funnel(&self, query: &FunnelQuery) -> Result<Funnel> {
        let journeys = self.journeys.read();
        let mut builder = FunnelBuilder::new(query);
        for track in journeys.all() {
            if track.journey == query.journey {
                builder.add(track);
            }
        }
        Ok(builder.finish())
    }

    async fn moments_of_truth(&self, query: &MomentsQuery) -> Result<Vec<StageScore>> {
        // Lock order: shards, then journeys.
        let shards = self.read_all_shards();
        let journeys = self.journeys.read();
        let only: Option<HashSet<&str>> = query
            .customers
            .as_ref()
            .map(|c| c.iter().map(|id| id.as_str()).collect());
        let mut builder = MomentsBuilder::new();
        for shard in &shards {
            for (customer, timeline) in shard.timelines() {
                if only
                    .as_ref()
                    .is_some_and(|o| !o.contains(customer.as_str()))
                {
                    continue;
                }
                let Some(track) = journeys.track(customer, &query.journey) else {
                    continue;
                };
                for t in timeline.in_range(&query.range) {
                    if let Some(answer) = t.survey()
                        && answer.question == query.question
                    {
                        builder.add(track, t.occurred_at(), answer.score, query.timeout);
                    }
                }
            }
        }
        Ok(builder.finish())
    }

    async fn stage_times(&self, query: &StageTimesQuery) -> Result<DurationStats> {
        let journeys = self.journeys.read();
        let only: Option<HashSet<&str>> = query
            .customers
            .as_ref()
            .map(|c| c.iter().map(|id| id.as_str()).collect());
        let mut seconds = Vec::new();
        for track in journeys.all() {
            if track.journey != query.journey
                || only
                    .as_ref()
                    .is_some_and(|o| !o.contains(track.customer.as_str()))
            {
                continue;
            }
            for instance in &track.instances {
                for visit in &instance.visits {
                    if visit.stage == query.stage
                        && let Some(left) = visit.left_at
                        && query.left.contains(left)
                    {
                        let d = left - visit.entered_at;
                        seconds.push(
                            d.num_microseconds()
                                .map_or(d.num_seconds() as f64, |us| us as f64 / 1e6),
                        );
                    }
                }
            }
        }
        Ok(DurationStats::of(&mut seconds))
    }

    async fn measure_touchpoints(&self, queries: &[MeasureQuery]) -> Result<Vec<MeasureValue>> {
        // Over the shards' analytics columns (see `columns.rs`), up to 64 queries at a time:
        // one bitmask per row names the queries that keep it.
        let shards = self.read_all_shards();
        // Identical queries (a KPI's and a ratio's part of another, say) are answered once.
        let (unique, slots) = distinct_queries(queries);
        let mut accs: Vec<MeasureAcc<'_>> = unique.iter().map(|q| MeasureAcc::new(q)).collect();
        let mut scratch = Scratch::default();
        for (chunk, chunk_accs) in accs.chunks_mut(64).enumerate() {
            let base = chunk * 64;
            let chunk_queries = unique.get(base..base + chunk_accs.len()).unwrap_or(&[]);
            let plan = MeasurePlan::new(chunk_queries, &self.keys, &shards);
            for (s, shard) in shards.iter().enumerate() {
                plan.run(shard, plan.wanted.get(s), chunk_accs, &mut scratch);
            }
            if plan.others != 0 {
                walk_timelines(&shards, chunk_queries, chunk_accs, plan.others);
            }
        }
        let values: Vec<MeasureValue> = accs.into_iter().map(MeasureAcc::finish).collect();
        Ok(slots
            .iter()
            .map(|&i| values.get(i).cloned().unwrap_or_default())
            .collect())
    }
}

/// The distinct queries among `queries` (compared cheapest part first), and for each query
/// the position of its equal among them. Past a few hundred queries, where comparing every
/// pair would cost more than it saves, each query stands alone.
fn distinct_queries(queries: &[MeasureQuery]) -> (Vec<&MeasureQuery>, Vec<usize>) {
    let same = |a: &MeasureQuery, b: &MeasureQuery| {
        a.statistic == b.statistic && a.filter == b.filter && a.customers == b.customers
    };
    let mut unique: Vec<&MeasureQuery> = Vec::with_capacity(queries.len());
    let slots = queries
        .iter()
        .map(|q| {
            let known = (queries.len() <= 256)
                .then(|| unique.iter().position(|u| same(u, q)))
                .flatten();
            known.unwrap_or_else(|| {
                unique.push(q);
                unique.len() - 1
            })
        })
        .collect();
    (unique, slots)
}

/// Bit `i` of a query mask (0 past 63: chunks hold at most 64 queries).
fn bit(i: usize) -> u64 {
    1u64.checked_shl(u32::try_from(i).unwrap_or(u32::MAX))
        .unwrap_or(0)
}

/// Calls `f` with the index of each set bit of `bits`, lowest first.
#[inline]
fn each_bit(mut bits: u64, mut f: impl FnMut(usize)) {
    while bits != 0 {
        f(bits.trailing_zeros() as usize);
        bits &= bits - 1;
    }
}

/// A run of rows to scan: the queries whose range holds every row of it (`whole`) and those
/// whose range must be tested row by row (`part`).
#[derive(Debug)]
struct Span {
    rows: std::ops::Range<usize>,
    whole: u64,
    part: u64,
}

/// Buffers reused from shard to shard.
#[derive(Debug, Default)]
struct Scratch {
    /// The runs of rows to scan.
    spans: Vec<Span>,
    /// Per row: the queries that keep it.
    masks: Vec<u64>,
    /// Per customer number: the distinct-customer queries the customer counts in.
    seen: Vec<u64>,
    /// Per question code: the score queries that ask it.
    questions: Vec<u64>,
}

/// Up to 64 measure queries, as bitmasks by what they compute.
#[derive(Debug)]
struct MeasurePlan<'q> {
    queries: &'q [&'q MeasureQuery],
    /// The queries' time ranges (each once) and the queries with each.
    ranges: Vec<(TimeRange, u64)>,
    /// The queries without a customer filter.
    everyone: u64,
    counts: u64,
    distinct: u64,
    /// Attribute names (each once) and the sum, mean and percentile queries of each.
    numbers: Vec<(&'q str, u64)>,
    /// Questions (each once) and the score queries of each.
    scores: Vec<(&'q str, u64)>,
    /// Queries answered by walking the timelines instead (see [`walk_timelines`]).
    others: u64,
    /// Only if some query filters customers: per shard, per customer number, the filtered
    /// queries that count the customer.
    wanted: Vec<Vec<u64>>,
}

impl<'q> MeasurePlan<'q> {
    fn new(
        queries: &'q [&'q MeasureQuery],
        keys: &KeyHasher,
        shards: &[RwLockReadGuard<'_, Shard>],
    ) -> Self {
        fn add<K: PartialEq>(groups: &mut Vec<(K, u64)>, key: K, bit: u64) {
            match groups.iter_mut().find(|(k, _)| *k == key) {
                Some((_, bits)) => *bits |= bit,
                None => groups.push((key, bit)),
            }
        }
        let mut plan = MeasurePlan {
            queries,
            ranges: Vec::new(),
            everyone: 0,
            counts: 0,
            distinct: 0,
            numbers: Vec::new(),
            scores: Vec::new(),
            others: 0,
            wanted: Vec::new(),
        };
        // Customer lists (each once: the KPIs of one segment share it) and their queries.
        let mut lists: Vec<(&'q [CustomerId], u64)> = Vec::new();
        for (i, q) in queries.iter().enumerate() {
            let b = bit(i);
            add(&mut plan.ranges, q.filter.range, b);
            match &q.customers {
                None => plan.everyone |= b,
                Some(list) => add(&mut lists, list.as_slice(), b),
            }
            match &q.statistic {
                Statistic::Count => plan.counts |= b,
                Statistic::DistinctCustomers => plan.distinct |= b,
                Statistic::Sum(name) | Statistic::Avg(name) | Statistic::Percentile(name, _) => {
                    add(&mut plan.numbers, name.as_str(), b)
                }
                Statistic::Scores(question) => add(&mut plan.scores, question.as_str(), b),
                // A statistic the columns do not know: the reference accumulator, by timeline.
                _ => plan.others |= b,
            }
        }
        if !lists.is_empty() {
            plan.wanted = shards
                .iter()
                .map(|s| vec![0; s.columns().ordinal_count()])
                .collect();
            for (list, bits) in lists {
                for id in list {
                    let key = keys.key(id.clone());
                    let s = key.shard().index();
                    let ordinal = shards
                        .get(s)
                        .and_then(|shard| shard.timeline(&key))
                        .map(|t| t.ordinal() as usize);
                    if let Some(w) = ordinal.and_then(|o| plan.wanted.get_mut(s)?.get_mut(o)) {
                        *w |= bits;
                    }
                }
            }
        }
        plan
    }

    /// Adds what `shard` holds to `accs` (the plan's queries, in order); `wanted` is the
    /// shard's entry of [`wanted`](Self::wanted), if there is one.
    fn run(
        &self,
        shard: &Shard,
        wanted: Option<&Vec<u64>>,
        accs: &mut [MeasureAcc<'_>],
        scratch: &mut Scratch,
    ) {
        let codes = shard.codes();
        let columns = shard.columns();
        if columns.len() == 0 {
            return;
        }
        let filters: Vec<_> = self
            .queries
            .iter()
            .map(|q| codes.filter(&q.filter))
            .collect();
        let keeping = |keeps: &dyn Fn(&crate::stored::CodeFilter, u32) -> bool, count: usize| {
            (0..count)
                .map(|code| {
                    let code = u32::try_from(code).unwrap_or(u32::MAX);
                    filters
                        .iter()
                        .enumerate()
                        .filter(|(_, f)| keeps(f, code))
                        .fold(0u64, |m, (i, _)| m | bit(i))
                })
                .collect::<Vec<u64>>()
        };
        let by_kind = keeping(&|f, code| f.keeps_kind(code), codes.kind_count());
        let by_channel = keeping(&|f, code| f.keeps_channel(code), codes.channel_count());

        // 1. The runs of rows to look at: blocks of the zone map that overlap a query's
        //    range, with the ranges that hold the whole block and those to test row by row.
        let spans = &mut scratch.spans;
        spans.clear();
        for (b, &(first, last)) in columns.blocks().iter().enumerate() {
            let (mut whole, mut part) = (0u64, 0u64);
            for (range, bits) in &self.ranges {
                if range.start <= first && last < range.end {
                    whole |= bits;
                } else if first < range.end && range.start <= last {
                    part |= bits;
                }
            }
            if whole | part == 0 {
                continue;
            }
            let rows = b * BLOCK..((b + 1) * BLOCK).min(columns.len());
            match spans.last_mut() {
                Some(span)
                    if span.rows.end == rows.start && span.whole == whole && span.part == part =>
                {
                    span.rows.end = rows.end;
                }
                _ => spans.push(Span { rows, whole, part }),
            }
        }
        if spans.is_empty() {
            return;
        }

        // 2. Which queries keep each row of the spans (rows outside them are never read, so
        //    what an earlier shard left there stays).
        let masks = &mut scratch.masks;
        if masks.len() < columns.len() {
            masks.resize(columns.len(), 0);
        }
        for span in spans.iter() {
            let r = span.rows.clone();
            let rows = columns
                .at()
                .get(r.clone())
                .unwrap_or_default()
                .iter()
                .zip(columns.kinds().get(r.clone()).unwrap_or_default())
                .zip(columns.channels().get(r.clone()).unwrap_or_default())
                .zip(columns.customers().get(r.clone()).unwrap_or_default())
                .zip(masks.get_mut(r).unwrap_or_default());
            for ((((&at, &kind), &channel), &customer), mask) in rows {
                let mut m = by_kind.get(kind as usize).copied().unwrap_or(0)
                    & by_channel.get(channel as usize).copied().unwrap_or(0);
                if m != 0 {
                    let mut in_range = span.whole;
                    if span.part != 0 {
                        for (range, bits) in &self.ranges {
                            if bits & span.part != 0 && range.contains(at) {
                                in_range |= bits;
                            }
                        }
                    }
                    m &= in_range;
                    if let Some(wanted) = wanted {
                        m &= self.everyone | wanted.get(customer as usize).copied().unwrap_or(0);
                    }
                }
                *mask = m;
            }
        }

        // 3. Counts, and distinct customers as the union of each customer's row masks.
        if self.counts | self.distinct != 0 {
            let mut counts = [0u64; 64];
            let seen = &mut scratch.seen;
            seen.clear();
            seen.resize(columns.ordinal_count(), 0);
            for span in spans.iter() {
                let r = span.rows.clone();
                let rows = masks
                    .get(r.clone())
                    .unwrap_or_default()
                    .iter()
                    .zip(columns.customers().get(r).unwrap_or_default());
                for (&m, &customer) in rows {
                    each_bit(m & self.counts, |i| {
                        if let Some(c) = counts.get_mut(i) {
                            *c += 1;
                        }
                    });
                    let d = m & self.distinct;
                    if d != 0
                        && let Some(s) = seen.get_mut(customer as usize)
                    {
                        *s |= d;
                    }
                }
            }
            for &s in seen.iter() {
                each_bit(s, |i| {
                    if let Some(c) = counts.get_mut(i) {
                        *c += 1;
                    }
                });
            }
            for (acc, &n) in accs.iter_mut().zip(&counts) {
                if n > 0 {
                    acc.add_count(n);
                }
            }
        }

        // 4. Sums, means and percentiles: each attribute's column, in row order.
        for &(name, bits) in &self.numbers {
            let Some(column) = columns.numbers(name) else {
                continue;
            };
            for span in spans.iter() {
                for (row, v) in column.in_rows(span.rows.clone()) {
                    let m = masks.get(row as usize).copied().unwrap_or(0) & bits;
                    each_bit(m, |i| {
                        if let Some(acc) = accs.get_mut(i) {
                            acc.add_number(v);
                        }
                    });
                }
            }
        }

        // 5. Score histograms: the survey answers, each offered to the queries of its question.
        if !self.scores.is_empty() {
            let questions = &mut scratch.questions;
            questions.clear();
            questions.resize(columns.question_count(), 0);
            for &(question, bits) in &self.scores {
                if let Some(q) = columns
                    .question(question)
                    .and_then(|code| questions.get_mut(code as usize))
                {
                    *q |= bits;
                }
            }
            for span in spans.iter() {
                for (row, question, score) in columns.surveys(span.rows.clone()) {
                    let m = masks.get(row as usize).copied().unwrap_or(0)
                        & questions.get(question as usize).copied().unwrap_or(0);
                    each_bit(m, |i| {
                        if let Some(acc) = accs.get_mut(i) {
                            acc.add_score(score);
                        }
                    });
                }
            }
        }
    }
}

/// Adds to `accs` (of `queries`, at most 64) the touchpoints each of the queries in `only`
/// (bits) keeps, walking every customer's timeline and feeding the reference accumulator
/// touchpoint by touchpoint: slower than the columns, but it knows every statistic.
fn walk_timelines(
    shards: &[RwLockReadGuard<'_, Shard>],
    queries: &[&MeasureQuery],
    accs: &mut [MeasureAcc<'_>],
    only: u64,
) {
    let Some(union) = queries
        .iter()
        .map(|q| q.filter.range)
        .reduce(|a, b| TimeRange::new(a.start.min(b.start), a.end.max(b.end)))
    else {
        return;
    };
    let filtered = queries.iter().any(|q| q.customers.is_some());
    // Customers numbered in walk order.
    let mut ordinal = 0usize;
    for shard in shards {
        let codes = shard.codes();
        let filters: Vec<_> = queries.iter().map(|q| codes.filter(&q.filter)).collect();
        let by_kind: Vec<u64> = (0..codes.kind_count())
            .map(|code| {
                let code = u32::try_from(code).unwrap_or(u32::MAX);
                filters
                    .iter()
                    .enumerate()
                    .filter(|(_, f)| f.keeps_kind(code))
                    .fold(0u64, |m, (i, _)| m | bit(i))
            })
            .collect();
        for (customer, timeline) in shard.timelines() {
            ordinal += 1;
            let wanted = if filtered {
                accs.iter()
                    .enumerate()
                    .filter(|(_, a)| a.counts_customer(customer.as_str()))
                    .fold(0u64, |m, (i, _)| m | bit(i))
                    & only
            } else {
                only
            };
            if wanted == 0 {
                continue;
            }
            for t in timeline.in_range(&union) {
                let at = t.occurred_at();
                let visit = by_kind.get(t.kind() as usize).copied().unwrap_or(0) & wanted;
                each_bit(visit, |i| {
                    if let (Some(acc), Some(filter)) = (accs.get_mut(i), filters.get(i))
                        && acc.query().filter.range.contains(at)
                        && filter.matches(t)
                    {
                        acc.add(ordinal, t.attributes(), t.survey());
                    }
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cx_core::model::{Channel, Customer, Kind, Scale, SurveyAnswer, Timestamp, Touchpoint};
    use cx_core::store::{CustomerStore, TouchpointQuery, TouchpointStore};

    /// A small deterministic generator (xorshift), so the test needs no crate.
    struct Dice(u64);

    impl Dice {
        fn below(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % n
        }
    }

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_timestamp(1_800_000_000 + secs, 0).unwrap_or_default()
    }

    fn batch(dice: &mut Dice, from: usize, n: usize, customers: u64) -> Vec<Touchpoint> {
        let kinds = [
            Kind::PAGE_VIEW,
            Kind::PURCHASE,
            Kind::COMPLAINT,
            Kind::SIGN_UP,
        ];
        let channels = [Channel::Web, Channel::App, Channel::Sms, Channel::Email];
        (from..from + n)
            .map(|i| {
                let customer = CustomerId::new(format!("c{}", dice.below(customers)));
                let kind = kinds[dice.below(4) as usize].clone();
                let channel = channels[dice.below(4) as usize].clone();
                let mut t = Touchpoint::new(
                    format!("t{i}").as_str(),
                    customer,
                    channel,
                    kind,
                    // Coarse instants: many fall on the ranges' ends.
                    at(dice.below(20) as i64 * 50),
                );
                match dice.below(4) {
                    0 => t = t.with_attribute("amount", dice.below(2000) as f64 / 2.0),
                    1 => t = t.with_attribute("amount", "not a number"),
                    2 => {
                        t = t
                            .with_attribute("amount", dice.below(100) as f64)
                            .with_attribute("dwell", dice.below(300) as f64)
                    }
                    _ => {}
                }
                if dice.below(5) == 0 {
                    let question = if dice.below(2) == 0 { "nps" } else { "csat" };
                    let score = dice.below(11) as f64;
                    t = t.with_survey(SurveyAnswer::new(question, score, Scale::NPS));
                }
                t
            })
            .collect()
    }

    /// The reference answer: every query through the timeline walk.
    fn by_timelines(store: &MemoryStore, queries: &[MeasureQuery]) -> Vec<MeasureValue> {
        let shards = store.read_all_shards();
        let queries: Vec<&MeasureQuery> = queries.iter().collect();
        let mut accs: Vec<MeasureAcc<'_>> = queries.iter().map(|q| MeasureAcc::new(q)).collect();
        for (chunk, chunk_accs) in accs.chunks_mut(64).enumerate() {
            let chunk_queries = &queries[chunk * 64..chunk * 64 + chunk_accs.len()];
            walk_timelines(&shards, chunk_queries, chunk_accs, u64::MAX);
        }
        accs.into_iter().map(MeasureAcc::finish).collect()
    }

    fn queries() -> Vec<MeasureQuery> {
        let ranges = [
            TimeRange::all(),
            TimeRange::new(at(200), at(700)),
            TimeRange::new(at(500), at(500)),
        ];
        let segment: Vec<CustomerId> = ["c0", "c1", "c2", "c4", "c5", "c9", "c11", "zz"]
            .map(CustomerId::new)
            .to_vec();
        let statistics = [
            Statistic::Count,
            Statistic::DistinctCustomers,
            Statistic::Sum("amount".into()),
            Statistic::Avg("amount".into()),
            Statistic::Avg("dwell".into()),
            Statistic::Percentile("amount".into(), 90.0),
            Statistic::Percentile("dwell".into(), 50.0),
            Statistic::Scores("nps".into()),
            Statistic::Scores("csat".into()),
            Statistic::Sum("missing".into()),
            Statistic::Scores("missing".into()),
        ];
        let mut out = Vec::new();
        for range in ranges {
            let filters = [
                TouchpointQuery::new(range),
                TouchpointQuery::new(range).kinds([Kind::PURCHASE, Kind::COMPLAINT]),
                TouchpointQuery::new(range)
                    .channels([Channel::Web, Channel::Sms])
                    .kinds([Kind::PAGE_VIEW, Kind::new("never_seen")]),
            ];
            for filter in filters {
                for statistic in &statistics {
                    out.push(MeasureQuery::new(filter.clone(), statistic.clone()));
                    out.push(
                        MeasureQuery::new(filter.clone(), statistic.clone())
                            .customers(Some(segment.clone())),
                    );
                }
            }
        }
        // Repeated queries are answered once, and each in its place.
        let again: Vec<MeasureQuery> = out.iter().step_by(7).cloned().collect();
        out.extend(again);
        out
    }

    /// Rows of each shard's columns match its timelines: one per stored touchpoint.
    fn check_columns(store: &MemoryStore) {
        for shard in store.read_all_shards() {
            let columns = shard.columns();
            assert_eq!(columns.len(), shard.touchpoint_count());
            for name in ["amount", "dwell"] {
                if let Some(column) = columns.numbers(name) {
                    let rows: Vec<u32> = column.iter().map(|(r, _)| r).collect();
                    assert!(rows.windows(2).all(|w| w[0] < w[1]), "ascending rows");
                    assert!(rows.iter().all(|&r| (r as usize) < columns.len()));
                }
            }
        }
    }

    #[tokio::test]
    async fn columns_answer_exactly_as_the_timeline_walk() {
        let store = MemoryStore::new();
        let customers: Vec<Customer> = (0..60).map(|i| Customer::new(format!("c{i}"))).collect();
        store.upsert_customers(customers).await.unwrap();
        let mut dice = Dice(0x9e37_79b9_7f4a_7c15);
        // In time order, as a queue delivers them: blocks of the zone map lie wholly inside or
        // outside a range, or straddle its ends.
        let mut first = batch(&mut dice, 0, 3000, 60);
        first.sort_by_key(|t| t.occurred_at);
        for part in first.chunks(500) {
            store.append_touchpoints(part.to_vec()).await.unwrap();
        }
        // A retried batch changes nothing.
        store
            .append_touchpoints(first[..500].to_vec())
            .await
            .unwrap();
        let queries = queries();
        assert!(queries.len() > 64, "several chunks of queries");
        check(&store, &queries, "after ingest").await;

        // Merges (within and, most likely, across shards) and erasures move and drop rows.
        for (survivor, absorbed) in [("c0", "c1"), ("c2", "c3"), ("c4", "c6"), ("c0", "c8")] {
            store
                .merge_customers(&CustomerId::new(survivor), &CustomerId::new(absorbed))
                .await
                .unwrap();
        }
        for gone in ["c5", "c7", "c10"] {
            store.forget_customer(&CustomerId::new(gone)).await.unwrap();
        }
        check(&store, &queries, "after merges and erasures").await;

        // More touchpoints, some of merged-away ids (they land on the survivor) and of erased
        // customers (new again); erased customers' numbers are reused.
        store
            .upsert_customers(vec![Customer::new("c5"), Customer::new("c70")])
            .await
            .unwrap();
        let more = batch(&mut dice, 3000, 2000, 71);
        store.append_touchpoints(more).await.unwrap();
        check(&store, &queries, "after more ingest").await;
    }

    async fn check(store: &MemoryStore, queries: &[MeasureQuery], stage: &str) {
        check_columns(store);
        let fast = store.measure_touchpoints(queries).await.unwrap();
        let reference = by_timelines(store, queries);
        assert_eq!(fast.len(), queries.len());
        assert!(reference.iter().any(|v| v.n > 0), "{stage}: data counted");
        for (i, (a, b)) in fast.iter().zip(&reference).enumerate() {
            assert_eq!(a, b, "{stage}: query {i}: {:?}", queries[i]);
        }
    }
}
