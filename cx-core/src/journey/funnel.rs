//! The reference semantics of a funnel ([`AnalyticsStore::funnel`](crate::store::AnalyticsStore::funnel)),
//! as an accumulator over tracks that a backend without SQL (the memory store) runs as is.
//!
//! For each instance of the journey that started in the query's range, the steps are walked in
//! order: a step is *entered* if the instance entered its stage no sooner than `min_gap` and no
//! later than `max_gap` after the previous step entered; an optional step the instance did not
//! enter is *skipped*; the walk stops at the first step that is neither. A customer *reaches*
//! step `k` if one of their instances entered step `k` or a later step (so a skipped optional
//! step is reached by passing it): counts therefore never increase down the steps. Gaps are
//! measured per instance between consecutive entered steps.

use crate::model::{InstanceStatus, JourneyTrack};
use crate::store::{Breakdown, DurationStats, Funnel, FunnelQuery, FunnelRow, channel_label};
use std::collections::{BTreeMap, HashMap, HashSet};

/// Totals of one group.
#[derive(Debug, Clone, Default)]
struct Totals {
    reached: Vec<u64>,
    entered: Vec<u64>,
    overdue: Vec<u64>,
    gaps: Vec<Vec<f64>>,
}

impl Totals {
    fn new(steps: usize) -> Self {
        Totals {
            reached: vec![0; steps],
            entered: vec![0; steps],
            overdue: vec![0; steps],
            gaps: vec![Vec::new(); steps],
        }
    }
}

/// One customer's path through the steps, over all their counted instances.
#[derive(Debug, Clone)]
struct Path {
    deepest: Option<usize>,
    entered: Vec<bool>,
    /// Per step: an active instance has been in its stage past the max time (empty until one
    /// is: most paths have none, and funnels without max times never fill it).
    overdue: Vec<bool>,
    gaps: Vec<Vec<f64>>,
}

/// Accumulates a funnel over tracks, one customer's track at a time.
#[derive(Debug)]
pub struct FunnelBuilder<'q> {
    query: &'q FunnelQuery,
    customers: Option<HashSet<&'q str>>,
    groups_of: HashMap<&'q str, Vec<usize>>,
    group_labels: Vec<String>,
    all: Totals,
    groups: BTreeMap<String, Totals>,
    instances: [u64; 4],
    /// Whether any step has a max time (otherwise no instance is overdue).
    timed: bool,
}

impl<'q> FunnelBuilder<'q> {
    /// A builder for `query`.
    pub fn new(query: &'q FunnelQuery) -> Self {
        let mut groups_of: HashMap<&str, Vec<usize>> = HashMap::new();
        let mut group_labels = Vec::new();
        if let Breakdown::Groups(groups) = &query.breakdown {
            for (g, (label, members)) in groups.iter().enumerate() {
                group_labels.push(label.clone());
                for m in members {
                    groups_of.entry(m.as_str()).or_default().push(g);
                }
            }
        }
        FunnelBuilder {
            query,
            customers: query
                .customers
                .as_ref()
                .map(|c| c.iter().map(|id| id.as_str()).collect()),
            groups_of,
            group_labels,
            all: Totals::new(query.steps.len()),
            groups: BTreeMap::new(),
            instances: [0; 4],
            timed: query.steps.iter().any(|s| s.max_time.is_some()),
        }
    }

    /// Adds one customer's track of the query's journey (others are ignored).
    pub fn add(&mut self, track: &JourneyTrack) {
        let q = self.query;
        if track.journey != q.journey
            || self
                .customers
                .as_ref()
                .is_some_and(|c| !c.contains(track.customer.as_str()))
        {
            return;
        }
        let n = q.steps.len();
        let mut total = Path::new(n);
        let mut by_channel: BTreeMap<String, Path> = BTreeMap::new();
        for instance in &track.instances {
            let Some(started) = instance.started_at() else {
                continue;
            };
            if !q.started.contains(started) {
                continue;
            }
            let (status, _) = instance.status(q.as_of, q.timeout);
            let slot = match status {
                InstanceStatus::Active => 0,
                InstanceStatus::Completed => 1,
                InstanceStatus::Exited => 2,
                InstanceStatus::Abandoned => 3,
            };
            if let Some(count) = self.instances.get_mut(slot) {
                *count += 1;
            }
            let mut path = walk(q, instance);
            if self.timed && status == InstanceStatus::Active {
                path.mark_overdue(q, instance);
            }
            total.merge(&path);
            if matches!(q.breakdown, Breakdown::Channel)
                && let Some(first) = instance.visits.first()
            {
                by_channel
                    .entry(channel_label(&first.channel))
                    .or_insert_with(|| Path::new(n))
                    .merge(&path);
            }
        }
        total.add_to(&mut self.all);
        match &q.breakdown {
            Breakdown::None => {}
            Breakdown::Channel => {
                for (label, path) in by_channel {
                    path.add_to(self.groups.entry(label).or_insert_with(|| Totals::new(n)));
                }
            }
            Breakdown::Groups(_) => {
                let member_of = self
                    .groups_of
                    .get(track.customer.as_str())
                    .cloned()
                    .unwrap_or_default();
                for g in member_of {
                    if let Some(label) = self.group_labels.get(g) {
                        total.add_to(
                            self.groups
                                .entry(label.clone())
                                .or_insert_with(|| Totals::new(n)),
                        );
                    }
                }
            }
        }
    }

    /// The funnel.
    pub fn finish(self) -> Funnel {
        let q = self.query;
        let groups = match &q.breakdown {
            Breakdown::Groups(_) => {
                let mut groups = self.groups;
                self.group_labels
                    .iter()
                    .map(|label| {
                        let totals = groups
                            .remove(label)
                            .unwrap_or_else(|| Totals::new(q.steps.len()));
                        (label.clone(), rows(q, totals))
                    })
                    .collect()
            }
            _ => self
                .groups
                .into_iter()
                .map(|(label, totals)| (label, rows(q, totals)))
                .collect(),
        };
        Funnel {
            rows: rows(q, self.all),
            groups,
            instances: self.instances,
        }
    }
}

impl Path {
    fn new(n: usize) -> Self {
        Path {
            deepest: None,
            entered: vec![false; n],
            overdue: Vec::new(),
            gaps: vec![Vec::new(); n],
        }
    }

    fn merge(&mut self, other: &Path) {
        self.deepest = self.deepest.max(other.deepest);
        for (a, b) in self.entered.iter_mut().zip(&other.entered) {
            *a |= *b;
        }
        if self.overdue.len() < other.overdue.len() {
            self.overdue.resize(other.overdue.len(), false);
        }
        for (a, b) in self.overdue.iter_mut().zip(&other.overdue) {
            *a |= *b;
        }
        for (a, b) in self.gaps.iter_mut().zip(&other.gaps) {
            a.extend_from_slice(b);
        }
    }

    /// Marks the step of the stage `instance` (active) is in, if it has been there for longer
    /// than the stage's max time.
    fn mark_overdue(&mut self, q: &FunnelQuery, instance: &crate::model::JourneyInstance) {
        let Some(current) = instance.current() else {
            return;
        };
        if let Some((k, step)) = q
            .steps
            .iter()
            .enumerate()
            .find(|(_, s)| s.index == current.index)
            && let Some(max) = step.max_time
            && q.as_of - current.entered_at > max.as_delta()
        {
            if self.overdue.is_empty() {
                self.overdue = vec![false; q.steps.len()];
            }
            if let Some(overdue) = self.overdue.get_mut(k) {
                *overdue = true;
            }
        }
    }

    fn add_to(&self, totals: &mut Totals) {
        for (all, mine) in totals.overdue.iter_mut().zip(&self.overdue) {
            *all += u64::from(*mine);
        }
        let Some(deepest) = self.deepest else {
            return;
        };
        for k in 0..=deepest {
            if let Some(r) = totals.reached.get_mut(k) {
                *r += 1;
            }
            if self.entered.get(k).copied().unwrap_or(false)
                && let Some(e) = totals.entered.get_mut(k)
            {
                *e += 1;
            }
        }
        for (all, mine) in totals.gaps.iter_mut().zip(&self.gaps) {
            all.extend_from_slice(mine);
        }
    }
}

/// One instance's walk through the steps.
fn walk(q: &FunnelQuery, instance: &crate::model::JourneyInstance) -> Path {
    let mut path = Path::new(q.steps.len());
    let mut previous = None;
    for (k, step) in q.steps.iter().enumerate() {
        match instance.visit(usize::from(step.index)) {
            Some(v) => {
                if let Some(prev) = previous {
                    let gap: chrono::TimeDelta = v.entered_at - prev;
                    let too_soon = step.min_gap.is_some_and(|m| gap < m.as_delta());
                    let too_late = step.max_gap.is_some_and(|m| gap > m.as_delta());
                    if too_soon || too_late {
                        break;
                    }
                    if let Some(g) = path.gaps.get_mut(k) {
                        g.push(seconds(gap));
                    }
                }
                if let Some(e) = path.entered.get_mut(k) {
                    *e = true;
                }
                path.deepest = Some(k);
                previous = Some(v.entered_at);
            }
            None if step.optional && k > 0 => continue,
            None => break,
        }
    }
    path
}

fn seconds(d: chrono::TimeDelta) -> f64 {
    d.num_microseconds()
        .map_or(d.num_seconds() as f64, |us| us as f64 / 1e6)
}

fn rows(q: &FunnelQuery, mut totals: Totals) -> Vec<FunnelRow> {
    let first = totals.reached.first().copied().unwrap_or(0);
    let mut out = Vec::with_capacity(q.steps.len());
    let mut previous: Option<u64> = None;
    for (k, step) in q.steps.iter().enumerate() {
        let reached = totals.reached.get(k).copied().unwrap_or(0);
        let entered = totals.entered.get(k).copied().unwrap_or(0);
        let ratio = |a: u64, b: u64| (b > 0).then(|| a as f64 / b as f64);
        out.push(FunnelRow {
            stage: step.stage.clone(),
            reached,
            entered,
            skipped: reached - entered.min(reached),
            dropped: previous.map_or(0, |p| p.saturating_sub(reached)),
            conversion: previous.and_then(|p| ratio(reached, p)),
            conversion_from_start: ratio(reached, first),
            gap: totals
                .gaps
                .get_mut(k)
                .map(|g| DurationStats::of(g))
                .unwrap_or_default(),
            overdue: totals.overdue.get(k).copied().unwrap_or(0),
        });
        previous = Some(reached);
    }
    out
}
