//! What a decision keeps to explain itself: a compact record per candidate, rendered into
//! sentences only when asked (`why_not`, `explanations`), so keeping it costs no formatting on
//! the hot path.

use super::compiled::{CompiledCatalog, CompiledOffer};
use super::decide::screened_out;
use super::explore::Pick;
use super::policy::Lift;
use super::screen::Screened;
use crate::model::{
    Attributes, Channel, Customer, Explain, Explanation, Exploration, OfferId, PipelineStage,
    ScoreFactors, Timestamp, Value,
};
use crate::rules::{ClauseResults, CompiledRule, Env, Namespace, Scalar, SlotRef, Verdict};
use chrono::DateTime;
use std::sync::Arc;

/// Which contact-policy rule: one of the catalogue's, or one of the offer's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RuleRef {
    Catalog(u32),
    Offer(u32),
}

/// Why a candidate was excluded.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Exclusion {
    NotValid,
    NoConsent,
    Ineligible(Verdict),
    Capped { rule: RuleRef, lift: Lift },
    BudgetExhausted { budget: u32, used: u64 },
    Unsuitable(Verdict),
}

/// One candidate's record, as the trace's two lists hold it.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Candidate {
    offer: u32,
    outcome: Result<ScoreFactors, Exclusion>,
}

impl Candidate {
    fn excluded(&(offer, exclusion): &(u32, Exclusion)) -> Self {
        Candidate {
            offer,
            outcome: Err(exclusion),
        }
    }

    fn scored(&(offer, factors): &(u32, ScoreFactors)) -> Self {
        Candidate {
            offer,
            outcome: Ok(factors),
        }
    }
}

/// The explanation kept with a decision.
#[derive(Debug)]
pub(crate) struct Trace {
    pub(crate) catalog: Arc<CompiledCatalog>,
    pub(crate) customer: Customer,
    pub(crate) features: Vec<Option<Value>>,
    /// Membership of the segments offer rules read (`None` for the others).
    pub(crate) segments: Box<[Option<bool>]>,
    pub(crate) context: Attributes,
    pub(crate) channel: Channel,
    pub(crate) now: i64,
    /// The candidates a stage excluded after a closer look than the screen's, with why, in
    /// any order.
    pub(crate) excluded: Vec<(u32, Exclusion)>,
    /// What the first look found of the channel's candidates: the reason of those it
    /// settled on its own is worked out from it when asked ([`screened_out`]).
    pub(crate) screened: Screened,
    /// The decision's shared-clause results, which name the false clause of a candidate the
    /// screen found ineligible.
    pub(crate) shared: ClauseResults,
    /// The candidates that were scored, with their factors, in any order. Kept as the
    /// decision scored them: no copy per candidate.
    pub(crate) scored: Vec<(u32, ScoreFactors)>,
    pub(crate) picks: Vec<Pick>,
    pub(crate) fallback: bool,
    pub(crate) exploration: Exploration,
}

fn instant(micros: i64) -> String {
    DateTime::from_timestamp_micros(micros)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| format!("{micros}µs"))
}

fn timestamp(micros: i64) -> Option<Timestamp> {
    DateTime::from_timestamp_micros(micros)
}

impl Trace {
    fn offer(&self, index: u32) -> Option<&CompiledOffer> {
        self.catalog.offers.get(index as usize)
    }

    /// Renders the failing clause of `rule` with the values it read; PII is never printed.
    fn rule_sentence(
        &self,
        rule: &CompiledRule,
        verdict: Verdict,
        offer: &CompiledOffer,
    ) -> String {
        let vocabulary = &self.catalog.vocabulary;
        let mut customer = Vec::new();
        vocabulary
            .customer
            .resolve(&self.customer.attributes, &mut customer);
        let mut context = Vec::new();
        vocabulary.context.resolve(&self.context, &mut context);
        let features: Vec<Option<Scalar<'_>>> = Scalar::each(&self.features).collect();
        let segments: Vec<Option<Scalar<'_>>> =
            self.segments.iter().map(|m| m.map(Scalar::Bool)).collect();
        let env = Env {
            customer: &customer,
            context: &context,
            touchpoint: &[],
            offer: &offer.values,
            features: &features,
            segments: &segments,
            now: self.now,
        };
        rule.explain(verdict, &env, |slot: SlotRef| {
            slot.namespace == Namespace::Customer
                && self.customer.is_pii(vocabulary.customer.name(slot.index))
        })
    }

    /// Every candidate's record.
    fn candidates(&self) -> impl Iterator<Item = Candidate> + '_ {
        let offers = self
            .catalog
            .channel(&self.channel)
            .map_or(&[][..], |c| &c.offers);
        let screened = offers.iter().enumerate().filter_map(|(position, &offer)| {
            let settled = self.screened.settled(position)?;
            Some(Candidate {
                offer,
                outcome: Err(screened_out(&self.catalog, offer, settled, &self.shared)?),
            })
        });
        self.excluded
            .iter()
            .map(Candidate::excluded)
            .chain(screened)
            .chain(self.scored.iter().map(Candidate::scored))
    }

    fn explain_candidate(&self, candidate: &Candidate) -> Option<Explanation> {
        let offer = self.offer(candidate.offer)?;
        let id = offer.offer.id.as_str();
        let mut lifts_at = None;
        let mut probability = None;
        let (stage, reason, score) = match candidate.outcome {
            Err(exclusion) => {
                let (stage, reason) = match exclusion {
                    Exclusion::NotValid => (
                        PipelineStage::Candidates,
                        format!(
                            "offer {id:?} is not valid at {}{}{}",
                            instant(self.now),
                            offer
                                .offer
                                .valid_from
                                .map(|t| format!("; valid from {t}"))
                                .unwrap_or_default(),
                            offer
                                .offer
                                .valid_until
                                .map(|t| format!("; valid until {t}"))
                                .unwrap_or_default(),
                        ),
                    ),
                    Exclusion::NoConsent => {
                        let purpose = &offer.offer.consent_purpose;
                        let status = match self.customer.consent(&self.channel, purpose) {
                            Some(c)
                                if c.is_granted_at(
                                    DateTime::from_timestamp_micros(self.now).unwrap_or_default(),
                                ) =>
                            {
                                "granted but not in effect".to_owned()
                            }
                            Some(c) => {
                                format!("{:?} since {}", c.status, c.since.format("%Y-%m-%d"))
                                    .to_lowercase()
                            }
                            None => "no consent record".to_owned(),
                        };
                        (
                            PipelineStage::Consent,
                            format!(
                                "offer {id:?} needs consent for {:?} on {}, which the customer has not granted ({status})",
                                purpose.as_str(),
                                self.channel
                            ),
                        )
                    }
                    Exclusion::Ineligible(verdict) => (
                        PipelineStage::Eligibility,
                        match &offer.eligibility {
                            Some(rule) => format!(
                                "offer {id:?} is not eligible: {}",
                                self.rule_sentence(rule, verdict, offer)
                            ),
                            None => format!("offer {id:?} is not eligible"),
                        },
                    ),
                    Exclusion::Capped { rule, lift } => {
                        let label = match rule {
                            RuleRef::Catalog(i) => self
                                .catalog
                                .policies
                                .get(i as usize)
                                .map(|r| r.label.clone()),
                            RuleRef::Offer(i) => {
                                offer.policies.get(i as usize).map(|r| r.label.clone())
                            }
                        }
                        .unwrap_or_else(|| Arc::from("a contact-policy rule"));
                        let until = match lift {
                            Lift::At(t) => {
                                lifts_at = timestamp(t);
                                format!("until {}", instant(t))
                            }
                            Lift::Never => "for good (a cap of zero)".to_owned(),
                        };
                        (
                            PipelineStage::ContactPolicy,
                            format!(
                                "offer {id:?} is held back by contact policy `{label}` {until}"
                            ),
                        )
                    }
                    Exclusion::BudgetExhausted { budget, used } => {
                        let (name, limit, period) = self
                            .catalog
                            .budgets
                            .get(budget as usize)
                            .map(|b| {
                                let now =
                                    DateTime::from_timestamp_micros(self.now).unwrap_or_default();
                                (b.id.as_str().to_owned(), b.limit, b.period_key(now))
                            })
                            .unwrap_or_default();
                        (
                            PipelineStage::Budget,
                            format!(
                                "offer {id:?} draws on budget {name:?}, which is used up ({used} of {limit} for {period})"
                            ),
                        )
                    }
                    Exclusion::Unsuitable(verdict) => (
                        PipelineStage::Suitability,
                        match &offer.suitability {
                            Some(rule) => format!(
                                "offer {id:?} is not suitable for the customer: {}",
                                self.rule_sentence(rule, verdict, offer)
                            ),
                            None => format!("offer {id:?} is not suitable for the customer"),
                        },
                    ),
                };
                (stage, reason, None)
            }
            Ok(f) => {
                let factors = format!(
                    "score {:.4} = propensity {:.4} × context weight {} × value {} × lever {}",
                    f.score, f.propensity, f.context_weight, f.value, f.lever
                );
                match self.picks.iter().position(|p| p.offer == candidate.offer) {
                    Some(rank) => {
                        let p = self.picks.get(rank).map_or(1.0, |p| p.probability);
                        probability = Some(p);
                        (
                            PipelineStage::Selected,
                            format!(
                                "offer {id:?} was chosen at rank {} ({factors}; selected with probability {p:.4} by {})",
                                rank + 1,
                                policy_name(&self.exploration)
                            ),
                            Some(f),
                        )
                    }
                    None => {
                        let taken_by = self.picks.iter().find_map(|p| {
                            let other = self.offer(p.offer)?;
                            (other.category == offer.category)
                                .then(|| other.offer.id.as_str().to_owned())
                        });
                        let reason = match taken_by {
                            Some(other) => format!(
                                "offer {id:?} was not selected: its category {:?} went to offer {other:?}, and a decision holds one offer per category ({factors})",
                                offer.offer.category.as_str()
                            ),
                            None if self.picks.is_empty() => {
                                format!("offer {id:?} was not selected ({factors})")
                            }
                            None => format!(
                                "offer {id:?} was not selected: {} ranked higher for {} slot(s) ({factors})",
                                self.picks
                                    .iter()
                                    .filter_map(|p| self.offer(p.offer).map(|o| format!(
                                        "{:?} ({:.4})",
                                        o.offer.id.as_str(),
                                        p.score
                                    )))
                                    .collect::<Vec<_>>()
                                    .join(", "),
                                self.picks.len()
                            ),
                        };
                        (PipelineStage::Selection, reason, Some(f))
                    }
                }
            }
        };
        Some(Explanation {
            offer: offer.offer.id.clone(),
            stage,
            reason,
            score,
            lifts_at,
            probability,
        })
    }
}

fn policy_name(exploration: &Exploration) -> String {
    match exploration {
        Exploration::Greedy => "greedy selection".to_owned(),
        Exploration::EpsilonGreedy { epsilon } => format!("epsilon-greedy (epsilon {epsilon})"),
        Exploration::Softmax { temperature } => format!("softmax (temperature {temperature})"),
        Exploration::Thompson { samples } => format!("Thompson sampling ({samples} draws)"),
    }
}

impl Explain for Trace {
    fn why_not(&self, offer: &OfferId) -> String {
        let Some(index) = self.catalog.offer_index(offer) else {
            return format!(
                "offer {:?} is not in catalogue version {}",
                offer.as_str(),
                self.catalog.version
            );
        };
        if self.fallback && self.picks.first().is_some_and(|p| p.offer == index) {
            return format!(
                "offer {:?} was chosen as the fallback: no other candidate survived",
                offer.as_str()
            );
        }
        if let Some(candidate) = self.candidates().find(|c| c.offer == index) {
            return self
                .explain_candidate(&candidate)
                .map(|e| e.reason)
                .unwrap_or_default();
        }
        match self.offer(index) {
            Some(o) if !o.offer.channels.contains(&self.channel) => format!(
                "offer {:?} is not deliverable on {} (its channels: {})",
                offer.as_str(),
                self.channel,
                o.offer
                    .channels
                    .iter()
                    .map(Channel::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            _ => format!("offer {:?} was not considered", offer.as_str()),
        }
    }

    fn explanations(&self) -> Vec<Explanation> {
        let mut out: Vec<Explanation> = self
            .candidates()
            .filter_map(|c| self.explain_candidate(&c))
            .collect();
        // The fallback has one entry: chosen as the fallback, saying why it did not survive
        // as a candidate.
        if self.fallback
            && let Some(pick) = self.picks.first()
            && let Some(offer) = self.offer(pick.offer)
        {
            let id = &offer.offer.id;
            let as_candidate = out
                .iter()
                .position(|e| &e.offer == id)
                .map(|i| out.swap_remove(i).reason);
            out.push(Explanation {
                offer: id.clone(),
                stage: PipelineStage::Fallback,
                reason: match as_candidate {
                    Some(reason) => format!(
                        "offer {:?} was chosen as the fallback: no other candidate survived (as a candidate: {reason})",
                        id.as_str()
                    ),
                    None => format!(
                        "offer {:?} was chosen as the fallback: no other candidate survived",
                        id.as_str()
                    ),
                },
                score: None,
                lifts_at: None,
                probability: Some(1.0),
            });
        }
        out.sort_by_key(|e| self.catalog.offer_index(&e.offer).unwrap_or(u32::MAX));
        out
    }
}
