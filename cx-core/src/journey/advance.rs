//! Placing events in a track and replaying the track's instances from them.

use super::compiled::CompiledJourney;
use crate::model::{InstanceEnd, Journey, JourneyEvent, JourneyInstance, JourneyTrack, StageVisit};
use crate::store::Placed;
use chrono::TimeDelta;

/// Places `events` in `track` (see the [module docs](super) for the rules), then replays its
/// instances and drops the events that can no longer matter.
pub(crate) fn advance(
    journey: &CompiledJourney,
    track: &mut JourneyTrack,
    events: Vec<JourneyEvent>,
) -> Placed {
    let mut report = Placed::default();
    for event in events {
        if track
            .events
            .iter()
            .any(|e| e.touchpoint == event.touchpoint)
        {
            report.duplicates += 1;
            continue;
        }
        if let Some(watermark) = track.watermark
            && event.occurred_at < watermark - journey.lateness
        {
            report.too_late += 1;
            track.too_late += 1;
            continue;
        }
        track.watermark = Some(
            track
                .watermark
                .map_or(event.occurred_at, |w| w.max(event.occurred_at)),
        );
        let at = track.events.partition_point(|e| e.key() < event.key());
        track.events.insert(at, event);
        report.placed += 1;
    }
    if report.placed > 0 {
        let (instances, effective) = replay(&journey.journey, journey.timeout, &track.events);
        track.instances = instances;
        // Keep what changed the state, and what a late arrival could still give a meaning to.
        if let Some(watermark) = track.watermark {
            let horizon = watermark - journey.lateness;
            let mut i = 0;
            track.events.retain(|e| {
                let keep = effective.get(i).copied().unwrap_or(true) || e.occurred_at >= horizon;
                i += 1;
                keep
            });
        }
    }
    report
}

/// Replays `events` (sorted by `(occurred_at, touchpoint)`) through `journey`: the instances
/// they make, and for each event whether it changed the state.
pub fn replay(
    journey: &Journey,
    timeout: Option<TimeDelta>,
    events: &[JourneyEvent],
) -> (Vec<JourneyInstance>, Vec<bool>) {
    let last = journey.stages.len().saturating_sub(1);
    let mut done: Vec<JourneyInstance> = Vec::new();
    let mut active: Option<JourneyInstance> = None;
    let mut effective = Vec::with_capacity(events.len());
    for e in events {
        // An instance with no progress for the timeout was abandoned before this event.
        if let (Some(timeout), Some(instance)) = (timeout, active.as_ref())
            && let Some(current) = instance.visits.last()
            && e.occurred_at - current.entered_at > timeout
        {
            let at = current.entered_at + timeout;
            if let Some(mut instance) = active.take() {
                end(&mut instance, InstanceEnd::Abandoned { at });
                done.push(instance);
            }
        }
        let mut changed = false;
        match active.as_mut() {
            None => {
                if e.enters.contains(0) {
                    let mut instance = JourneyInstance {
                        visits: vec![visit(journey, 0, e)],
                        end: None,
                    };
                    if last == 0 {
                        end(&mut instance, InstanceEnd::Completed { at: e.occurred_at });
                        done.push(instance);
                    } else {
                        active = Some(instance);
                    }
                    changed = true;
                }
            }
            Some(instance) => {
                let current = instance.visits.last().map_or(0, |v| usize::from(v.index));
                if let Some(next) = next_stage(journey, current, e) {
                    if let Some(v) = instance.visits.last_mut() {
                        v.left_at = Some(e.occurred_at);
                    }
                    instance.visits.push(visit(journey, next, e));
                    changed = true;
                    if next == last
                        && let Some(mut instance) = active.take()
                    {
                        end(&mut instance, InstanceEnd::Completed { at: e.occurred_at });
                        done.push(instance);
                    }
                } else if e.exits.contains(current)
                    && let Some(mut instance) = active.take()
                {
                    end(&mut instance, InstanceEnd::Exited { at: e.occurred_at });
                    done.push(instance);
                    changed = true;
                }
            }
        }
        effective.push(changed);
    }
    done.extend(active);
    (done, effective)
}

/// The nearest stage after `current` that `e` enters, past optional stages only.
fn next_stage(journey: &Journey, current: usize, e: &JourneyEvent) -> Option<usize> {
    for (j, stage) in journey.stages.iter().enumerate().skip(current + 1) {
        if e.enters.contains(j) {
            return Some(j);
        }
        if !stage.optional {
            return None;
        }
    }
    None
}

fn visit(journey: &Journey, index: usize, e: &JourneyEvent) -> StageVisit {
    StageVisit {
        stage: journey
            .stages
            .get(index)
            .map(|s| s.id.clone())
            .unwrap_or_default(),
        index: u16::try_from(index).unwrap_or(u16::MAX),
        entered_at: e.occurred_at,
        left_at: None,
        channel: e.channel.clone(),
        touchpoint: e.touchpoint.clone(),
    }
}

/// Ends `instance`; the last stage is left when it ends, except on completion (the last stage
/// is where a completed instance stays).
fn end(instance: &mut JourneyInstance, how: InstanceEnd) {
    if !matches!(how, InstanceEnd::Completed { .. })
        && let Some(v) = instance.visits.last_mut()
    {
        v.left_at = Some(how.at());
    }
    instance.end = Some(how);
}
