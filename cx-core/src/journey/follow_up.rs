//! The closed loop, pure part: which survey answers open a case, and who owns it.

use crate::model::{
    Catalog, CustomerId, FollowUpCase, FollowUpRule, JourneyTrack, Timestamp, Touchpoint,
};

/// The rules of `catalog` that `t`'s survey answer trips (question matches, score at or below
/// the threshold).
pub fn tripped<'c>(catalog: &'c Catalog, t: &Touchpoint) -> Vec<&'c FollowUpRule> {
    let Some(answer) = &t.survey else {
        return Vec::new();
    };
    catalog
        .follow_ups
        .iter()
        .filter(|r| r.question == answer.question && answer.score <= r.score_at_most)
        .collect()
}

/// The case `rule` opens for `customer`'s answer `t`, owned by the owner of the stage the
/// customer was in when answering (of the rule's journey, or the stage entered last across
/// journeys), else by the rule's owner.
pub fn open_case(
    catalog: &Catalog,
    rule: &FollowUpRule,
    customer: &CustomerId,
    t: &Touchpoint,
    tracks: &[JourneyTrack],
) -> Option<FollowUpCase> {
    let answer = t.survey.as_ref()?;
    let at: Timestamp = t.occurred_at;
    let mut best: Option<(Timestamp, &crate::model::Journey, &crate::model::StageVisit)> = None;
    for track in tracks {
        if rule.journey.as_ref().is_some_and(|j| j != &track.journey) {
            continue;
        }
        let Some(journey) = catalog.journey(track.journey.as_str()) else {
            continue;
        };
        if let Some(visit) = super::moments::stage_at(track, at, journey.inactivity_timeout)
            && best.is_none_or(|(entered, _, _)| visit.entered_at > entered)
        {
            best = Some((visit.entered_at, journey, visit));
        }
    }
    let (owner, stage) = match best {
        Some((_, journey, visit)) => (
            journey
                .stage(visit.stage.as_str())
                .and_then(|s| s.owner.clone())
                .or_else(|| rule.owner.clone())?,
            Some((journey.id.clone(), visit.stage.clone())),
        ),
        None => (rule.owner.clone()?, None),
    };
    Some(FollowUpCase::open(
        rule.id.clone(),
        customer.clone(),
        t.id.clone(),
        answer.question.clone(),
        answer.score,
        owner,
        stage,
        at,
        rule.sla,
    ))
}
