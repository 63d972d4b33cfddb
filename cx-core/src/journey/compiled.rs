//! Journeys compiled for ingest: matchers indexed by kind, rules compiled over `touchpoint.*`.

use crate::arbitration::features::touchpoint_slots;
use crate::error::Result;
use crate::model::{
    Catalog, Channel, Journey, JourneyEvent, JourneyId, JourneyTrack, Kind, Matcher, StageSet,
    Subject, Touchpoint,
};
use crate::rules::{CompiledRule, Namespace, Scalar, Vocabulary, compile_rule};
use crate::store::{JourneyAdvance, Placed};
use chrono::TimeDelta;
use std::collections::HashMap;
use std::sync::Arc;

/// One stage's entry or exit matcher.
#[derive(Debug, Clone)]
struct CompiledMatcher {
    journey: usize,
    stage: usize,
    exit: bool,
    channels: Box<[Channel]>,
    rule: Option<CompiledRule>,
}

/// A journey with what advancing it needs.
#[derive(Debug, Clone)]
pub(crate) struct CompiledJourney {
    pub(crate) journey: Journey,
    pub(crate) lateness: TimeDelta,
    pub(crate) timeout: Option<TimeDelta>,
}

/// Every journey of a catalogue, compiled. Also the [`JourneyAdvance`] a store calls.
#[derive(Debug, Clone, Default)]
pub struct CompiledJourneys {
    journeys: Box<[CompiledJourney]>,
    by_id: HashMap<JourneyId, usize>,
    vocabulary: Arc<Vocabulary>,
    by_kind: HashMap<Kind, Box<[CompiledMatcher]>>,
    any_kind: Box<[CompiledMatcher]>,
}

impl CompiledJourneys {
    /// Compiles the journeys of `catalog` against `vocabulary` (the catalogue's, see
    /// [`CompiledCatalog::vocabulary`](crate::arbitration::CompiledCatalog::vocabulary)). A rule
    /// that does not compile is an [`Error::InvalidRule`](crate::Error::InvalidRule) naming the
    /// journey, the stage and the position.
    pub fn compile(catalog: &Catalog, vocabulary: &Arc<Vocabulary>) -> Result<Self> {
        let mut by_kind: HashMap<Kind, Vec<CompiledMatcher>> = HashMap::new();
        let mut any_kind = Vec::new();
        let mut journeys = Vec::with_capacity(catalog.journeys.len());
        let mut by_id = HashMap::new();
        for (j, journey) in catalog.journeys.iter().enumerate() {
            for (s, stage) in journey.stages.iter().enumerate() {
                let criteria = std::iter::once((false, &stage.entry))
                    .chain(stage.exit.as_ref().map(|m| (true, m)));
                for (exit, matcher) in criteria {
                    let item = format!(
                        "stage {:?} of journey {:?} {}",
                        stage.id.as_str(),
                        journey.id.as_str(),
                        if exit { "exit" } else { "entry" }
                    );
                    let compiled = compile_matcher(matcher, vocabulary, &item, j, s, exit)?;
                    if matcher.kinds.is_empty() {
                        any_kind.push(compiled);
                    } else {
                        for kind in &matcher.kinds {
                            by_kind
                                .entry(kind.clone())
                                .or_default()
                                .push(compiled.clone());
                        }
                    }
                }
            }
            by_id.insert(journey.id.clone(), j);
            journeys.push(CompiledJourney {
                journey: journey.clone(),
                lateness: journey.lateness.map_or(TimeDelta::zero(), |l| l.as_delta()),
                timeout: journey.inactivity_timeout.map(|t| t.as_delta()),
            });
        }
        Ok(CompiledJourneys {
            journeys: journeys.into_boxed_slice(),
            by_id,
            vocabulary: Arc::clone(vocabulary),
            by_kind: by_kind
                .into_iter()
                .map(|(k, v)| (k, v.into_boxed_slice()))
                .collect(),
            any_kind: any_kind.into_boxed_slice(),
        })
    }

    /// Whether there is any journey.
    pub fn is_empty(&self) -> bool {
        self.journeys.is_empty()
    }

    /// The journey with id `id`.
    pub fn journey(&self, id: &JourneyId) -> Option<&Journey> {
        self.compiled(id).map(|c| &c.journey)
    }

    pub(crate) fn compiled(&self, id: &JourneyId) -> Option<&CompiledJourney> {
        self.by_id.get(id).and_then(|&j| self.journeys.get(j))
    }

    /// Appends to `out` the journey events of `touchpoints`: one per touchpoint and journey it
    /// enters or exits a stage of. Touchpoints of kinds no matcher names cost one hash lookup.
    pub fn events_of(&self, touchpoints: &[Touchpoint], out: &mut Vec<JourneyEvent>) {
        if self.journeys.is_empty() {
            return;
        }
        let mut slots: Vec<Option<Scalar<'_>>> = Vec::new();
        // (journey, enters, exits) of the touchpoint at hand.
        let mut hits: Vec<(usize, StageSet, StageSet)> = Vec::new();
        for t in touchpoints {
            let by_kind = self.by_kind.get(&t.kind).map_or(&[][..], |m| &m[..]);
            if by_kind.is_empty() && self.any_kind.is_empty() {
                continue;
            }
            hits.clear();
            let mut resolved = false;
            for m in by_kind.iter().chain(self.any_kind.iter()) {
                if !m.channels.is_empty() && !m.channels.contains(&t.channel) {
                    continue;
                }
                if let Some(rule) = &m.rule {
                    if !resolved {
                        touchpoint_slots(&self.vocabulary, t, &mut slots);
                        resolved = true;
                    }
                    let env = crate::rules::Env {
                        touchpoint: &slots,
                        ..crate::rules::Env::empty(t.occurred_at)
                    };
                    if !rule.eval(&env).holds() {
                        continue;
                    }
                }
                let hit = match hits.iter_mut().find(|h| h.0 == m.journey) {
                    Some(hit) => hit,
                    None => {
                        hits.push((m.journey, StageSet::EMPTY, StageSet::EMPTY));
                        let Some(hit) = hits.last_mut() else { continue };
                        hit
                    }
                };
                if m.exit {
                    hit.2 = hit.2.with(m.stage);
                } else {
                    hit.1 = hit.1.with(m.stage);
                }
            }
            for &(j, enters, exits) in &hits {
                let Some(journey) = self.journeys.get(j) else {
                    continue;
                };
                out.push(JourneyEvent::new(
                    subject_of(t),
                    journey.journey.id.clone(),
                    t.id.clone(),
                    t.occurred_at,
                    t.channel.clone(),
                    enters,
                    exits,
                ));
            }
        }
    }
}

fn subject_of(t: &Touchpoint) -> Subject {
    t.subject.clone()
}

fn compile_matcher(
    matcher: &Matcher,
    vocabulary: &Arc<Vocabulary>,
    item: &str,
    journey: usize,
    stage: usize,
    exit: bool,
) -> Result<CompiledMatcher> {
    let rule = matcher
        .rule
        .as_ref()
        .map(|r| compile_rule(r.as_str(), vocabulary, &[Namespace::Touchpoint], item))
        .transpose()?;
    Ok(CompiledMatcher {
        journey,
        stage,
        exit,
        channels: matcher.channels.clone().into_boxed_slice(),
        rule,
    })
}

impl JourneyAdvance for CompiledJourneys {
    fn advance(&self, track: &mut JourneyTrack, events: Vec<JourneyEvent>) -> Placed {
        match self.compiled(&track.journey) {
            Some(journey) => super::advance::advance(journey, track, events),
            // A journey the catalogue no longer has: nothing to place the events in.
            None => Placed::new(0, 0, events.len() as u64),
        }
    }
}
