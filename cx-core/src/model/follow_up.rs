//! The closed loop: survey answers below a threshold open follow-up cases with an SLA.

use super::check::{self, Checked, FieldError};
use super::ids::TouchpointId;
use super::ids::{CaseId, CustomerId, FollowUpRuleId, JourneyId, Name, OwnerId, StageId};
use super::time::{Span, Timestamp};
use serde::{Deserialize, Serialize};

/// "An answer to `question` scoring at most `score_at_most` opens a case, due within `sla`."
///
/// The case goes to the owner of the journey stage the customer was in when they answered
/// (of `journey` if set, otherwise of the stage they entered last in any journey); `owner`
/// when they were in no stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FollowUpRule {
    /// Id.
    pub id: FollowUpRuleId,
    /// The survey question.
    pub question: Name,
    /// Answers at or below this score open a case (6 for NPS detractors, 2 for CSAT 1-2).
    pub score_at_most: f64,
    /// How long the owner has to close the case.
    pub sla: Span,
    /// The journey whose stage decides the owner (any journey if unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub journey: Option<JourneyId>,
    /// The owner when the customer is in no stage. Required.
    #[serde(default)]
    pub owner: Option<OwnerId>,
}

impl FollowUpRule {
    pub(crate) fn check(&self) -> Checked {
        check::id("id", self.id.as_str())?;
        check::identifier("question", self.question.as_str())?;
        check::finite("score_at_most", self.score_at_most)?;
        if self.sla.is_zero() {
            return Err(FieldError::new("sla", "must be longer than zero"));
        }
        match &self.owner {
            None => Err(FieldError::new(
                "owner",
                "is missing: a case needs an owner when the customer is in no stage",
            )),
            Some(owner) => check::id("owner", owner.as_str()),
        }
    }
}

/// A follow-up case: opened by a low survey answer, owned, due by a deadline, closed once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct FollowUpCase {
    /// Id (`<rule>/<touchpoint id>`): one case per rule and answer.
    pub id: CaseId,
    /// The customer.
    pub customer: CustomerId,
    /// The rule that opened it.
    pub rule: FollowUpRuleId,
    /// The survey answer's touchpoint.
    pub touchpoint: TouchpointId,
    /// The question and the score.
    pub question: Name,
    /// The score.
    pub score: f64,
    /// Who answers for it.
    pub owner: OwnerId,
    /// The journey and stage the customer was in, if any.
    pub stage: Option<(JourneyId, StageId)>,
    /// When it was opened (when the answer was given).
    pub opened_at: Timestamp,
    /// When it is due.
    pub due_at: Timestamp,
    /// When it was closed.
    pub closed_at: Option<Timestamp>,
    /// What was done.
    pub note: Option<String>,
}

impl FollowUpCase {
    /// A new, open case.
    #[allow(clippy::too_many_arguments)]
    pub fn open(
        rule: FollowUpRuleId,
        customer: CustomerId,
        touchpoint: TouchpointId,
        question: Name,
        score: f64,
        owner: OwnerId,
        stage: Option<(JourneyId, StageId)>,
        opened_at: Timestamp,
        sla: Span,
    ) -> Self {
        FollowUpCase {
            id: CaseId::new(format!("{}/{}", rule.as_str(), touchpoint.as_str())),
            customer,
            rule,
            touchpoint,
            question,
            score,
            owner,
            stage,
            opened_at,
            due_at: opened_at + sla.as_delta(),
            closed_at: None,
            note: None,
        }
    }

    /// Whether it was closed by its deadline (inclusive).
    pub fn closed_in_time(&self) -> bool {
        self.closed_at.is_some_and(|c| c <= self.due_at)
    }
}
