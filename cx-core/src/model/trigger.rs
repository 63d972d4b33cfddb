//! Real-time triggers: a touchpoint pattern and the decision it starts.

use super::channel::Channel;
use super::check::{self, Checked, FieldError};
use super::ids::{Name, TriggerId};
use super::journey::Matcher;
use super::time::Span;
use serde::{Deserialize, Serialize};

/// When a touchpoint matches `on` (kinds, channels and a rule over `touchpoint.*`,
/// `customer.*` and `features.*`), and the optional `repeat` pattern holds, run `action`.
///
/// Triggers fire only for touchpoints that are fresh when ingested (occurred at most
/// `fresh_for` before now, 5 minutes by default): loading history never fires them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Trigger {
    /// Id.
    pub id: TriggerId,
    /// Display name.
    pub name: String,
    /// Which touchpoints fire it.
    pub on: Matcher,
    /// A further pattern over the customer's recent touchpoints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeat: Option<Repeat>,
    /// How old a touchpoint may be and still fire the trigger.
    #[serde(default = "default_fresh_for")]
    pub fresh_for: Span,
    /// What to do.
    pub action: TriggerAction,
}

fn default_fresh_for() -> Span {
    Span::minutes(5)
}

/// "At least `at_least` touchpoints of the firing touchpoint's kind with the same value of
/// `attribute` within `within`, the firing one included" (3 views of the same product in 10
/// minutes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Repeat {
    /// The attribute whose value must repeat (`product`).
    pub attribute: Name,
    /// How many touchpoints, the firing one included.
    pub at_least: u32,
    /// Within this span, ending at the firing touchpoint.
    pub within: Span,
}

/// What a trigger does (`{ type: decide, channel: chat, k: 1 }`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum TriggerAction {
    /// Run a decision for the customer on a channel.
    Decide {
        /// The channel to decide for.
        channel: Channel,
        /// The placement, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        placement: Option<Name>,
        /// How many offers (default: the catalogue's `k`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        k: Option<u32>,
    },
}

impl Trigger {
    pub(crate) fn check(&self) -> Checked {
        check::id("id", self.id.as_str())?;
        check::text("name", &self.name)?;
        self.on.check().map_err(|e| e.under("on"))?;
        if let Some(repeat) = &self.repeat {
            check::identifier("repeat.attribute", repeat.attribute.as_str())?;
            if repeat.at_least < 2 {
                return Err(FieldError::new(
                    "repeat.at_least",
                    format!("must be 2 or more, got {}", repeat.at_least),
                ));
            }
            if repeat.within.is_zero() {
                return Err(FieldError::new("repeat.within", "must be longer than zero"));
            }
        }
        if self.fresh_for.is_zero() {
            return Err(FieldError::new("fresh_for", "must be longer than zero"));
        }
        match &self.action {
            TriggerAction::Decide {
                channel,
                placement,
                k,
            } => {
                channel.check("action.channel")?;
                if let Some(p) = placement {
                    check::label("action.placement", p.as_str())?;
                }
                if *k == Some(0) {
                    return Err(FieldError::new("action.k", "must be at least 1"));
                }
            }
        }
        Ok(())
    }
}
