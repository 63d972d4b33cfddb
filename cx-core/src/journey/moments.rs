//! The reference semantics of moments of truth
//! ([`AnalyticsStore::moments_of_truth`](crate::store::AnalyticsStore::moments_of_truth)): each
//! answer to the question counts for the stage its customer was in when they gave it (the last
//! stage entered at or before that instant, in an instance that had not ended by then; a
//! completed instance stays in its last stage), and stages are ranked by their mean score, best
//! first, then by stage index. Stages with no answer are left out.

use crate::model::{JourneyTrack, Span, StageId, Timestamp};
use crate::store::StageScore;
use std::collections::BTreeMap;

/// The visit a track's customer was in at `at`: the latest instance started by then decides.
pub fn stage_at(
    track: &JourneyTrack,
    at: Timestamp,
    timeout: Option<Span>,
) -> Option<&crate::model::StageVisit> {
    track
        .instances
        .iter()
        .rev()
        .find(|i| i.started_at().is_some_and(|s| s <= at))?
        .stage_at(at, timeout)
}

/// Accumulates answers per stage.
#[derive(Debug, Default)]
pub struct MomentsBuilder {
    stages: BTreeMap<u16, (StageId, u64, f64)>,
}

impl MomentsBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        MomentsBuilder::default()
    }

    /// Counts an answer scoring `score` given at `at` by the customer of `track`.
    pub fn add(&mut self, track: &JourneyTrack, at: Timestamp, score: f64, timeout: Option<Span>) {
        if let Some(visit) = stage_at(track, at, timeout) {
            let entry = self
                .stages
                .entry(visit.index)
                .or_insert_with(|| (visit.stage.clone(), 0, 0.0));
            entry.1 += 1;
            entry.2 += score;
        }
    }

    /// The stages, best first.
    pub fn finish(self) -> Vec<StageScore> {
        let mut out: Vec<StageScore> = self
            .stages
            .into_iter()
            .filter(|(_, (_, n, _))| *n > 0)
            .map(|(index, (stage, n, sum))| StageScore::new(stage, index, n, sum / n as f64))
            .collect();
        out.sort_by(|a, b| b.mean.total_cmp(&a.mean).then(a.index.cmp(&b.index)));
        out
    }
}
