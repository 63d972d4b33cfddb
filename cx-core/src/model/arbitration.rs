//! How arbitration scores, explores and falls back: part of the catalogue, versioned with it.

use super::check::{self, Checked, FieldError};
use super::ids::{OfferId, SegmentId};
use serde::{Deserialize, Serialize};

/// Arbitration settings of a catalogue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArbitrationConfig {
    /// Offers per decision when the request does not say (default 1).
    #[serde(default = "one")]
    pub k: u32,
    /// Offered when no candidate survives (it still needs consent on the channel).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<OfferId>,
    /// How offers are picked among the scored survivors.
    #[serde(default)]
    pub exploration: Exploration,
    /// Which score factors are on.
    #[serde(default)]
    pub scoring: ScoringFactors,
    /// The prior of the adaptive propensity model.
    #[serde(default)]
    pub prior: Prior,
    /// Learn propensities per segment: the first of these segments the customer is in (none:
    /// one propensity per offer).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub propensity_segments: Vec<SegmentId>,
}

fn one() -> u32 {
    1
}

impl Default for ArbitrationConfig {
    fn default() -> Self {
        ArbitrationConfig {
            k: 1,
            fallback: None,
            exploration: Exploration::default(),
            scoring: ScoringFactors::default(),
            prior: Prior::default(),
            propensity_segments: Vec::new(),
        }
    }
}

/// The exploration policy: how the offers of a decision are picked from the scored survivors.
///
/// Slots are filled one after the other, each among the survivors whose category is still free;
/// the probability logged for an offer is the probability that its slot picked it, given the
/// slots before it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
#[serde(tag = "policy", rename_all = "snake_case", deny_unknown_fields)]
pub enum Exploration {
    /// The best score; probability 1.
    #[default]
    Greedy,
    /// The best score with probability `1 - epsilon`, otherwise uniformly at random.
    EpsilonGreedy {
        /// The exploration rate, in [0, 1].
        epsilon: f64,
    },
    /// At random with probability proportional to `exp(score / temperature)`.
    Softmax {
        /// The temperature, above 0 (lower is greedier).
        temperature: f64,
    },
    /// The best score after drawing each propensity from its posterior; the probability is
    /// estimated from `samples` further draws.
    Thompson {
        /// Draws used to estimate the selection probability (default 200).
        #[serde(default = "default_samples")]
        samples: u32,
    },
}

fn default_samples() -> u32 {
    200
}

/// Which factors of `propensity × context weight × value × lever` are on (all by default); a
/// factor that is off counts as 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScoringFactors {
    /// The learned propensity.
    #[serde(default = "yes")]
    pub propensity: bool,
    /// The offer's weight for the request's channel and placement.
    #[serde(default = "yes")]
    pub context_weight: bool,
    /// The offer's value.
    #[serde(default = "yes")]
    pub value: bool,
    /// The offer's business lever.
    #[serde(default = "yes")]
    pub lever: bool,
}

fn yes() -> bool {
    true
}

impl Default for ScoringFactors {
    fn default() -> Self {
        ScoringFactors {
            propensity: true,
            context_weight: true,
            value: true,
            lever: true,
        }
    }
}

/// A Beta prior: `alpha` pseudo-successes and `beta` pseudo-failures.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Prior {
    /// Pseudo-successes (above 0).
    pub alpha: f64,
    /// Pseudo-failures (above 0).
    pub beta: f64,
}

impl Default for Prior {
    /// A weak prior with mean 0.1.
    fn default() -> Self {
        Prior {
            alpha: 1.0,
            beta: 9.0,
        }
    }
}

impl ArbitrationConfig {
    pub(crate) fn check(&self) -> Checked {
        if self.k == 0 {
            return Err(FieldError::new("k", "must be at least 1"));
        }
        match self.exploration {
            Exploration::Greedy => {}
            Exploration::EpsilonGreedy { epsilon } => {
                check::finite("exploration.epsilon", epsilon)?;
                if !(0.0..=1.0).contains(&epsilon) {
                    return Err(FieldError::new(
                        "exploration.epsilon",
                        format!("must be within 0 and 1, got {epsilon}"),
                    ));
                }
            }
            Exploration::Softmax { temperature } => {
                check::finite("exploration.temperature", temperature)?;
                if temperature <= 0.0 {
                    return Err(FieldError::new(
                        "exploration.temperature",
                        format!("must be above 0, got {temperature}"),
                    ));
                }
            }
            Exploration::Thompson { samples } => {
                if samples == 0 {
                    return Err(FieldError::new("exploration.samples", "must be at least 1"));
                }
            }
        }
        for (field, v) in [
            ("prior.alpha", self.prior.alpha),
            ("prior.beta", self.prior.beta),
        ] {
            check::finite(field, v)?;
            if v <= 0.0 {
                return Err(FieldError::new(field, format!("must be above 0, got {v}")));
            }
        }
        Ok(())
    }
}
