//! Touchpoints: immutable interaction events, idempotent by id.

use super::channel::Channel;
use super::check::{self, Checked, FieldError};
use super::customer::Identity;
use super::ids::{CustomerId, Kind, Name, Text, TouchpointId};
use super::time::Timestamp;
use super::value::Attributes;
use crate::error::Result;
use serde::{Deserialize, Serialize};

/// Who a touchpoint belongs to: a customer id, or an identity the store resolves at ingest.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Subject {
    /// A customer id (or the id of a customer merged into another, which resolves to it).
    Customer(CustomerId),
    /// An identity (email, device, cookie...) of a known customer.
    Identity(Identity),
}

impl Subject {
    /// The customer id, if the subject is one.
    pub fn customer_id(&self) -> Option<&CustomerId> {
        match self {
            Subject::Customer(id) => Some(id),
            Subject::Identity(_) => None,
        }
    }
}

impl From<CustomerId> for Subject {
    fn from(id: CustomerId) -> Self {
        Subject::Customer(id)
    }
}

impl From<Identity> for Subject {
    fn from(identity: Identity) -> Self {
        Subject::Identity(identity)
    }
}

/// One interaction on one channel at one instant. Immutable once stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Touchpoint {
    /// Unique per customer; ingesting the same id again for the same customer is a no-op.
    pub id: TouchpointId,
    /// Who it belongs to. Stored touchpoints always carry the resolved customer id.
    pub subject: Subject,
    /// Where it happened.
    pub channel: Channel,
    /// What happened.
    pub kind: Kind,
    /// When it happened (not when it arrived).
    pub occurred_at: Timestamp,
    /// Event attributes (`product`, `dwell_seconds`, `amount`...).
    #[serde(default, skip_serializing_if = "Attributes::is_empty")]
    pub attributes: Attributes,
    /// The answer, when the touchpoint is a survey response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub survey: Option<SurveyAnswer>,
    /// The system that reported it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Text>,
}

impl Touchpoint {
    /// A touchpoint with no attributes, survey answer or source.
    pub fn new(
        id: impl Into<TouchpointId>,
        subject: impl Into<Subject>,
        channel: Channel,
        kind: Kind,
        occurred_at: Timestamp,
    ) -> Self {
        Touchpoint {
            id: id.into(),
            subject: subject.into(),
            channel,
            kind,
            occurred_at,
            attributes: Attributes::new(),
            survey: None,
            source: None,
        }
    }

    /// Sets an attribute.
    #[must_use]
    pub fn with_attribute(
        mut self,
        name: impl Into<Name>,
        value: impl Into<super::value::Value>,
    ) -> Self {
        self.attributes.insert(name, value);
        self
    }

    /// Attaches a survey answer.
    #[must_use]
    pub fn with_survey(mut self, survey: SurveyAnswer) -> Self {
        self.survey = Some(survey);
        self
    }

    /// Sets the source system.
    #[must_use]
    pub fn with_source(mut self, source: &str) -> Self {
        self.source = Some(Text::from(source));
        self
    }

    /// The customer id, once the subject is resolved.
    pub fn customer_id(&self) -> Option<&CustomerId> {
        self.subject.customer_id()
    }

    /// Checks the touchpoint; the error names it and the field.
    pub fn validate(&self) -> Result<()> {
        self.check()
            .map_err(|e| e.at(format!("touchpoint {:?}", self.id.as_str())))
    }

    /// Checks the touchpoint at position `index` of a batch; the error names it and its position.
    pub fn validate_in_batch(&self, index: usize) -> Result<()> {
        self.check().map_err(|e| {
            e.at(format!(
                "touchpoint {:?} (#{index} in batch)",
                self.id.as_str()
            ))
        })
    }

    pub(crate) fn check(&self) -> Checked {
        check::id("id", self.id.as_str())?;
        match &self.subject {
            Subject::Customer(id) => check::id("subject.customer", id.as_str())?,
            Subject::Identity(identity) => {
                identity.check().map_err(|e| e.under("subject.identity"))?
            }
        }
        self.channel.check("channel")?;
        check::label("kind", self.kind.as_str())?;
        if !self.attributes.is_empty() {
            self.attributes.check("attributes")?;
        }
        if let Some(survey) = &self.survey {
            survey.check().map_err(|e| e.under("survey"))?;
        }
        if let Some(source) = &self.source {
            check::id("source", source)?;
        }
        Ok(())
    }
}

/// A survey answer: which question, the score, and the scale it was given on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SurveyAnswer {
    /// The question (`nps`, `csat_delivery`, `ces_support`...).
    pub question: Name,
    /// The score, within the scale.
    pub score: f64,
    /// The scale the score was given on.
    pub scale: Scale,
}

impl SurveyAnswer {
    /// An answer to `question`.
    pub fn new(question: impl Into<Name>, score: f64, scale: Scale) -> Self {
        SurveyAnswer {
            question: question.into(),
            score,
            scale,
        }
    }

    fn check(&self) -> Checked {
        check::identifier("question", self.question.as_str())?;
        self.scale.check().map_err(|e| e.under("scale"))?;
        check::finite("score", self.score)?;
        if self.score < self.scale.min || self.score > self.scale.max {
            return Err(FieldError::new(
                "score",
                format!(
                    "is {} but the scale runs from {} to {}",
                    self.score, self.scale.min, self.scale.max
                ),
            ));
        }
        Ok(())
    }
}

/// A score scale, inclusive at both ends.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scale {
    /// Lowest score.
    pub min: f64,
    /// Highest score.
    pub max: f64,
}

impl Scale {
    /// Net Promoter Score: 0 to 10.
    pub const NPS: Scale = Scale {
        min: 0.0,
        max: 10.0,
    };
    /// Customer satisfaction: 1 to 5.
    pub const CSAT_5: Scale = Scale { min: 1.0, max: 5.0 };
    /// Customer effort: 1 to 7.
    pub const CES_7: Scale = Scale { min: 1.0, max: 7.0 };

    /// A scale from `min` to `max`.
    pub const fn new(min: f64, max: f64) -> Self {
        Scale { min, max }
    }

    pub(crate) fn check(&self) -> Checked {
        check::finite("min", self.min)?;
        check::finite("max", self.max)?;
        if self.min >= self.max {
            return Err(FieldError::new(
                "max",
                format!("must be above min ({}), got {}", self.min, self.max),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use chrono::Utc;

    fn tp() -> Touchpoint {
        Touchpoint::new(
            "t1",
            CustomerId::new("c1"),
            Channel::Survey,
            Kind::SURVEY_RESPONSE,
            Utc::now(),
        )
    }

    #[test]
    fn a_score_outside_its_scale_is_invalid_and_named() {
        let t = tp().with_survey(SurveyAnswer::new("nps", 11.0, Scale::NPS));
        match t.validate_in_batch(3) {
            Err(Error::Validation {
                item,
                field,
                reason,
            }) => {
                assert_eq!(item, "touchpoint \"t1\" (#3 in batch)");
                assert_eq!(field, "survey.score");
                assert!(reason.contains("0 to 10"), "{reason}");
            }
            other => panic!("expected a validation error, got {other:?}"),
        }
        assert!(
            tp().with_survey(SurveyAnswer::new("nps", 10.0, Scale::NPS))
                .validate()
                .is_ok()
        );
        assert!(
            tp().with_survey(SurveyAnswer::new("nps", f64::NAN, Scale::NPS))
                .validate()
                .is_err()
        );
        assert!(
            tp().with_survey(SurveyAnswer::new("q", 1.0, Scale::new(5.0, 1.0)))
                .validate()
                .is_err()
        );
    }

    #[test]
    fn non_finite_attributes_and_bad_kinds_are_invalid() {
        assert!(
            tp().with_attribute("amount", f64::INFINITY)
                .validate()
                .is_err()
        );
        let mut t = tp();
        t.kind = Kind::new("page view");
        assert!(t.validate().is_err());
    }

    #[test]
    fn touchpoints_round_trip_through_json_and_yaml() {
        let t = tp()
            .with_attribute("product", "p-1")
            .with_survey(SurveyAnswer::new("nps", 9.0, Scale::NPS))
            .with_source("crm");
        let json = serde_json::to_string(&t).unwrap();
        assert!(json.contains(r#""subject":{"customer":"c1"}"#), "{json}");
        assert_eq!(serde_json::from_str::<Touchpoint>(&json).unwrap(), t);
        let yaml = serde_norway::to_string(&t).unwrap();
        assert_eq!(serde_norway::from_str::<Touchpoint>(&yaml).unwrap(), t);
    }
}
