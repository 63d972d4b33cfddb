//! Decisions (what arbitration chose, for whom, when) and the outcomes recorded against them.

use super::channel::Channel;
use super::check::{self, Checked, FieldError};
use super::ids::{Category, CustomerId, DecisionId, Name, OfferId};
use super::time::Timestamp;
use super::value::Attributes;
use crate::error::Result;
use serde::{Deserialize, Serialize};
use std::fmt;

/// What happened to an offer after a decision chose it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeKind {
    /// It was presented to the customer.
    Shown,
    /// The customer took it.
    Accepted,
    /// The customer said no.
    Rejected,
    /// The customer did not react within the channel's time.
    Ignored,
    /// It led to the goal (a purchase, an upgrade).
    Converted,
}

impl OutcomeKind {
    /// All kinds.
    pub const ALL: [OutcomeKind; 5] = [
        OutcomeKind::Shown,
        OutcomeKind::Accepted,
        OutcomeKind::Rejected,
        OutcomeKind::Ignored,
        OutcomeKind::Converted,
    ];

    /// The kind's name.
    pub fn as_str(self) -> &'static str {
        match self {
            OutcomeKind::Shown => "shown",
            OutcomeKind::Accepted => "accepted",
            OutcomeKind::Rejected => "rejected",
            OutcomeKind::Ignored => "ignored",
            OutcomeKind::Converted => "converted",
        }
    }
}

impl fmt::Display for OutcomeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An offer a decision chose.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SelectedOffer {
    /// The offer.
    pub offer: OfferId,
    /// Its category (kept so contact history can be counted by category).
    pub category: Category,
    /// Position in the decision, from 0.
    pub rank: u32,
    /// Its score.
    pub score: f64,
    /// The probability with which the policy selected it (1 for a greedy choice); off-policy
    /// evaluation divides by it.
    pub probability: f64,
}

/// One decision: for one customer, on one channel, at one instant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    /// Id.
    pub id: DecisionId,
    /// The customer.
    pub customer: CustomerId,
    /// The channel the offers go out on.
    pub channel: Channel,
    /// The placement (a slot on a page, an app screen), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement: Option<Name>,
    /// When it was made.
    pub at: Timestamp,
    /// The catalogue version it was made under.
    pub catalog_version: u64,
    /// What was chosen, best first (empty if nothing survived and there is no fallback).
    pub offers: Vec<SelectedOffer>,
    /// The request context (`page`, `device`...).
    #[serde(default, skip_serializing_if = "Attributes::is_empty")]
    pub context: Attributes,
    /// The propensity segment the customer was scored in, if the catalogue uses them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segment: Option<super::ids::SegmentId>,
    /// Why each candidate was or was not chosen; kept in memory with the decision, not stored.
    #[serde(skip)]
    pub explanation: ExplanationRef,
}

/// Explains a decision: for every candidate, where it stopped and why.
pub trait Explain: Send + Sync + fmt::Debug {
    /// One sentence on why `offer` was not chosen (or that it was, and how it scored).
    fn why_not(&self, offer: &OfferId) -> String;
    /// One explanation per candidate, in catalogue order.
    fn explanations(&self) -> Vec<Explanation>;
}

/// A shared, optional [`Explain`] attached to a [`Decision`]. Compares equal to any other, so
/// decisions compare by what was decided.
#[derive(Clone, Default)]
pub struct ExplanationRef(pub Option<std::sync::Arc<dyn Explain>>);

impl fmt::Debug for ExplanationRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() {
            "ExplanationRef(kept)"
        } else {
            "ExplanationRef(none)"
        })
    }
}

impl PartialEq for ExplanationRef {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

/// The pipeline stage where a candidate stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PipelineStage {
    /// Not a candidate: not valid now, or not deliverable on the channel.
    Candidates,
    /// No consent for the offer's purpose on the channel.
    Consent,
    /// The eligibility rule did not hold.
    Eligibility,
    /// A contact-policy rule held it back.
    ContactPolicy,
    /// Its budget is used up.
    Budget,
    /// The suitability rule did not hold.
    Suitability,
    /// It survived and was scored, but was not selected.
    Selection,
    /// It was selected.
    Selected,
    /// It was selected as the fallback.
    Fallback,
}

impl PipelineStage {
    /// The stage's name.
    pub fn as_str(self) -> &'static str {
        match self {
            PipelineStage::Candidates => "candidates",
            PipelineStage::Consent => "consent",
            PipelineStage::Eligibility => "eligibility",
            PipelineStage::ContactPolicy => "contact_policy",
            PipelineStage::Budget => "budget",
            PipelineStage::Suitability => "suitability",
            PipelineStage::Selection => "selection",
            PipelineStage::Selected => "selected",
            PipelineStage::Fallback => "fallback",
        }
    }
}

impl fmt::Display for PipelineStage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The factors of a survivor's score (a factor switched off is 1).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ScoreFactors {
    /// Learned propensity.
    pub propensity: f64,
    /// Weight for the request's channel and placement.
    pub context_weight: f64,
    /// The offer's value.
    pub value: f64,
    /// The business lever.
    pub lever: f64,
    /// Their product.
    pub score: f64,
}

/// Why one candidate was or was not chosen.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Explanation {
    /// The offer.
    pub offer: OfferId,
    /// Where it stopped.
    pub stage: PipelineStage,
    /// Why, in one sentence (never printing attributes marked PII).
    pub reason: String,
    /// Its score factors, if it was scored.
    pub score: Option<ScoreFactors>,
    /// When a contact-policy exclusion lifts, if that is why it stopped (`None` also when the
    /// cap never lifts).
    pub lifts_at: Option<Timestamp>,
    /// The probability with which it was selected, if it was.
    pub probability: Option<f64>,
}

impl Decision {
    /// The selected offer with id `offer`, if this decision chose it.
    pub fn selected(&self, offer: &OfferId) -> Option<&SelectedOffer> {
        self.offers.iter().find(|s| &s.offer == offer)
    }

    /// One sentence on why `offer` was not chosen, or how it was.
    pub fn why_not(&self, offer: &OfferId) -> String {
        match &self.explanation.0 {
            Some(explain) => explain.why_not(offer),
            None => match self.selected(offer) {
                Some(s) => format!(
                    "offer {:?} was chosen at rank {} with score {:.4} (probability {:.4})",
                    offer.as_str(),
                    s.rank + 1,
                    s.score,
                    s.probability
                ),
                None => format!(
                    "offer {:?} was not chosen; this decision kept no explanation (ask with                      `explain: true`)",
                    offer.as_str()
                ),
            },
        }
    }

    /// Every candidate's explanation (empty if the decision kept none).
    pub fn explanations(&self) -> Vec<Explanation> {
        self.explanation
            .0
            .as_ref()
            .map(|e| e.explanations())
            .unwrap_or_default()
    }

    /// Checks the decision; the error names it and the field.
    pub fn validate(&self) -> Result<()> {
        self.check()
            .map_err(|e| e.at(format!("decision {:?}", self.id.as_str())))
    }

    fn check(&self) -> Checked {
        check::id("id", self.id.as_str())?;
        check::id("customer", self.customer.as_str())?;
        self.channel.check("channel")?;
        if let Some(placement) = &self.placement {
            check::label("placement", placement.as_str())?;
        }
        for (i, s) in self.offers.iter().enumerate() {
            // The field's full name is only written out for an error.
            let offer = || format!("offers[{i}]");
            check::id("offer", s.offer.as_str()).map_err(|e| e.under(&offer()))?;
            check::finite("score", s.score).map_err(|e| e.under(&offer()))?;
            if !(s.probability > 0.0 && s.probability <= 1.0) {
                return Err(FieldError::new(
                    "probability",
                    format!("must be in (0, 1], got {}", s.probability),
                )
                .under(&offer()));
            }
        }
        check::unique("offers", self.offers.iter().map(|s| s.offer.as_str()))?;
        self.context.check("context")
    }
}

/// What happened to one offer of one decision.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Outcome {
    /// The decision.
    pub decision: DecisionId,
    /// The offer, which the decision must have chosen.
    pub offer: OfferId,
    /// What happened.
    pub kind: OutcomeKind,
    /// When.
    pub at: Timestamp,
}

/// One entry of a customer's contact history: an outcome with what it is counted by.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ContactEvent {
    /// The customer.
    pub customer: CustomerId,
    /// The decision the outcome belongs to.
    pub decision: DecisionId,
    /// The offer.
    pub offer: OfferId,
    /// The offer's category at decision time.
    pub category: Category,
    /// The decision's channel.
    pub channel: Channel,
    /// What happened.
    pub kind: OutcomeKind,
    /// When.
    pub at: Timestamp,
}

/// A request for a decision: for this customer, on this channel (and placement), now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecisionRequest {
    /// The customer (or the id of a customer merged into another).
    pub customer: CustomerId,
    /// The channel the offers would go out on.
    pub channel: Channel,
    /// The placement (a page slot, an app screen), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement: Option<Name>,
    /// How many offers (default: the catalogue's `arbitration.k`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub k: Option<u32>,
    /// Request context rules read as `context.<name>` (`context.channel` is set from `channel`).
    #[serde(default, skip_serializing_if = "Attributes::is_empty")]
    pub context: Attributes,
    /// Whether the decision keeps the trace that explains it (default true).
    #[serde(default = "yes")]
    pub explain: bool,
    /// Seed for the exploration policy's random draws (default: a fresh one per decision).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
}

fn yes() -> bool {
    true
}

impl DecisionRequest {
    /// A request for `customer` on `channel`, with the catalogue's defaults.
    pub fn new(customer: impl Into<CustomerId>, channel: Channel) -> Self {
        DecisionRequest {
            customer: customer.into(),
            channel,
            placement: None,
            k: None,
            context: Attributes::new(),
            explain: true,
            seed: None,
        }
    }

    /// Sets the placement.
    #[must_use]
    pub fn placement(mut self, placement: impl Into<Name>) -> Self {
        self.placement = Some(placement.into());
        self
    }

    /// Asks for `k` offers.
    #[must_use]
    pub fn k(mut self, k: u32) -> Self {
        self.k = Some(k);
        self
    }

    /// Sets a context field.
    #[must_use]
    pub fn context(mut self, name: impl Into<Name>, value: impl Into<super::value::Value>) -> Self {
        self.context.insert(name, value);
        self
    }

    /// Seeds the exploration policy.
    #[must_use]
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Turns the explanation trace off (for bulk scoring).
    #[must_use]
    pub fn without_explanation(mut self) -> Self {
        self.explain = false;
        self
    }
}
