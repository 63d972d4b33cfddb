//! Journey and KPI analytics: the [`AnalyticsStore`] implementation, running the reference
//! accumulators of cx-core over the shards and the journey tracks.

use crate::MemoryStore;
use async_trait::async_trait;
use cx_core::Result;
use cx_core::journey::funnel::FunnelBuilder;
use cx_core::journey::moments::MomentsBuilder;
use cx_core::kpi::inputs::MeasureAcc;
use cx_core::model::TimeRange;
use cx_core::store::{
    AnalyticsStore, DurationStats, Funnel, FunnelQuery, MeasureQuery, MeasureValue, MomentsQuery,
    StageScore, StageTimesQuery,
};
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
        // One pass per 64 queries: each timeline is walked once over the union of the queries'
        // ranges, and each touchpoint offered to the queries that keep its kind.
        let shards = self.read_all_shards();
        let mut accs: Vec<MeasureAcc<'_>> = queries.iter().map(MeasureAcc::new).collect();
        let Some(union) = queries
            .iter()
            .map(|q| q.filter.range)
            .reduce(|a, b| TimeRange::new(a.start.min(b.start), a.end.max(b.end)))
        else {
            return Ok(Vec::new());
        };
        let filtered = queries.iter().any(|q| q.customers.is_some());
        // Up to 64 queries at a time: a touchpoint's kind names, as bits, the queries that
        // keep it, so each touchpoint visits only those.
        let bit = |i: usize| {
            1u64.checked_shl(u32::try_from(i).unwrap_or(u32::MAX))
                .unwrap_or(0)
        };
        for (chunk, chunk_accs) in accs.chunks_mut(64).enumerate() {
            let base = chunk * 64;
            let chunk_queries = queries.get(base..base + chunk_accs.len()).unwrap_or(&[]);
            let everyone = (0..chunk_accs.len()).fold(0u64, |m, i| m | bit(i));
            // Customers numbered in walk order, the same in every chunk.
            let mut ordinal = 0usize;
            for shard in &shards {
                let codes = shard.codes();
                let filters: Vec<_> = chunk_queries
                    .iter()
                    .map(|q| codes.filter(&q.filter))
                    .collect();
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
                        chunk_accs
                            .iter()
                            .enumerate()
                            .filter(|(_, a)| a.counts_customer(customer.as_str()))
                            .fold(0u64, |m, (i, _)| m | bit(i))
                    } else {
                        everyone
                    };
                    if wanted == 0 {
                        continue;
                    }
                    for t in timeline.in_range(&union) {
                        let at = t.occurred_at();
                        let mut visit =
                            by_kind.get(t.kind() as usize).copied().unwrap_or(0) & wanted;
                        while visit != 0 {
                            let i = visit.trailing_zeros() as usize;
                            visit &= visit - 1;
                            if let (Some(acc), Some(filter)) =
                                (chunk_accs.get_mut(i), filters.get(i))
                                && acc.query().filter.range.contains(at)
                                && filter.matches(t)
                            {
                                acc.add(ordinal, t.attributes(), t.survey());
                            }
                        }
                    }
                }
            }
        }
        Ok(accs.into_iter().map(MeasureAcc::finish).collect())
    }
}
