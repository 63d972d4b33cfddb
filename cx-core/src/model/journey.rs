//! Journeys: ordered stages, each with entry criteria and an accountable owner.

use super::channel::Channel;
use super::check::{self, Checked, FieldError};
use super::ids::{JourneyId, Kind, OwnerId, StageId};
use super::rule::RuleText;
use super::time::Span;
use serde::{Deserialize, Serialize};

/// How many stages a journey may have.
pub const MAX_STAGES: usize = 64;

/// An ordered list of stages a customer moves through.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Journey {
    /// Id.
    pub id: JourneyId,
    /// Display name.
    pub name: String,
    /// Who answers for the journey as a whole (each stage has its own owner too).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<OwnerId>,
    /// The stages, in order.
    pub stages: Vec<Stage>,
    /// An instance with no progress for this long is abandoned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inactivity_timeout: Option<Span>,
    /// How late an event may arrive and still be placed by when it occurred.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lateness: Option<Span>,
}

/// One stage of a journey.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stage {
    /// Id, unique within the journey.
    pub id: StageId,
    /// Display name.
    pub name: String,
    /// Who answers for this stage. Required: a stage without an owner is rejected.
    #[serde(default)]
    pub owner: Option<OwnerId>,
    /// Which touchpoint enters the stage.
    pub entry: Matcher,
    /// Which touchpoint leaves it (without entering the next), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit: Option<Matcher>,
    /// Longest expected time in the stage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_time: Option<Span>,
    /// Whether customers may skip this stage.
    #[serde(default)]
    pub optional: bool,
}

/// Which touchpoints match: any of `kinds` (empty: any kind) on any of `channels` (empty: any
/// channel), and the rule if there is one. A matcher needs kinds or a rule.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Matcher {
    /// Kinds that match.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kinds: Vec<Kind>,
    /// Channels that match.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub channels: Vec<Channel>,
    /// A rule over the touchpoint and the customer (CEL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<RuleText>,
}

impl Matcher {
    /// Matches touchpoints of `kind`.
    pub fn kind(kind: Kind) -> Self {
        Matcher {
            kinds: vec![kind],
            ..Matcher::default()
        }
    }

    pub(crate) fn check(&self) -> Checked {
        if self.kinds.is_empty() && self.rule.is_none() {
            return Err(FieldError::new(
                "kinds",
                "is empty and there is no rule: the matcher would match everything",
            ));
        }
        for (i, kind) in self.kinds.iter().enumerate() {
            check::label(&format!("kinds[{i}]"), kind.as_str())?;
        }
        for (i, channel) in self.channels.iter().enumerate() {
            channel.check(&format!("channels[{i}]"))?;
        }
        if let Some(rule) = &self.rule {
            rule.check("rule")?;
        }
        Ok(())
    }
}

impl Journey {
    /// The stage with id `id`.
    pub fn stage(&self, id: &str) -> Option<&Stage> {
        self.stages.iter().find(|s| s.id.as_str() == id)
    }

    /// Checks the journey alone; owner references are checked by the catalogue.
    pub(crate) fn check(&self) -> Checked {
        check::id("id", self.id.as_str())?;
        check::text("name", &self.name)?;
        if self.stages.is_empty() {
            return Err(FieldError::new(
                "stages",
                "is empty: a journey needs a stage",
            ));
        }
        if self.stages.len() > MAX_STAGES {
            return Err(FieldError::new(
                "stages",
                format!(
                    "has {} stages; a journey has at most {MAX_STAGES}",
                    self.stages.len()
                ),
            ));
        }
        check::unique("stages", self.stages.iter().map(|s| s.id.as_str()))?;
        for (i, stage) in self.stages.iter().enumerate() {
            stage
                .check()
                .map_err(|e| e.under(&format!("stages[{i}]")))?;
        }
        if self.stages.first().is_some_and(|s| s.optional) {
            return Err(FieldError::new(
                "stages[0].optional",
                "is true, but the first stage is where a journey starts and cannot be skipped",
            ));
        }
        for (field, span) in [
            ("inactivity_timeout", self.inactivity_timeout),
            ("lateness", self.lateness),
        ] {
            if span.is_some_and(Span::is_zero) {
                return Err(FieldError::new(field, "must be longer than zero"));
            }
        }
        Ok(())
    }
}

impl Stage {
    /// A stage entered by touchpoints of `kind`, owned by `owner`.
    pub fn new(
        id: impl Into<StageId>,
        name: impl Into<String>,
        owner: impl Into<OwnerId>,
        kind: Kind,
    ) -> Self {
        Stage {
            id: id.into(),
            name: name.into(),
            owner: Some(owner.into()),
            entry: Matcher::kind(kind),
            exit: None,
            max_time: None,
            optional: false,
        }
    }

    fn check(&self) -> Checked {
        check::id("id", self.id.as_str())?;
        check::text("name", &self.name)?;
        match &self.owner {
            None => {
                return Err(FieldError::new(
                    "owner",
                    "is missing: every stage has an accountable owner",
                ));
            }
            Some(owner) => check::id("owner", owner.as_str())?,
        }
        self.entry.check().map_err(|e| e.under("entry"))?;
        if let Some(exit) = &self.exit {
            exit.check().map_err(|e| e.under("exit"))?;
        }
        if self.max_time.is_some_and(Span::is_zero) {
            return Err(FieldError::new("max_time", "must be longer than zero"));
        }
        Ok(())
    }
}
