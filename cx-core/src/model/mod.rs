//! The domain model: plain serde types, validated when loaded.

mod arbitration;
mod catalog;
mod channel;
pub(crate) mod check;
mod customer;
mod decision;
mod follow_up;
mod ids;
mod journey;
mod journey_state;
mod kpi;
mod offer;
mod owner;
mod rule;
mod schema;
mod segment;
mod time;
mod touchpoint;
mod trigger;
mod value;

pub use arbitration::{ArbitrationConfig, Exploration, Prior, ScoringFactors};
pub use catalog::{Catalog, Format};
pub use channel::Channel;
pub use customer::{Consent, ConsentStatus, Customer, Identity, IdentityKind};
pub use decision::{
    ContactEvent, Decision, DecisionRequest, Explain, Explanation, ExplanationRef, Outcome,
    OutcomeKind, PipelineStage, ScoreFactors, SelectedOffer,
};
pub use follow_up::{FollowUpCase, FollowUpRule};
pub use ids::{
    BudgetId, CaseId, Category, CustomerId, DecisionId, FeatureId, FollowUpRuleId, JourneyId, Kind,
    KpiId, Name, OfferId, OwnerId, Purpose, SegmentId, StageId, Text, TouchpointId, TriggerId,
};
pub use journey::{Journey, MAX_STAGES, Matcher, Stage};
pub use journey_state::{
    InstanceEnd, InstanceStatus, JourneyEvent, JourneyInstance, JourneyTrack, StageSet, StageVisit,
};
pub use kpi::{CesMode, Direction, DurationStat, Kpi, Measure, Target, TouchpointFilter};
pub use offer::{Budget, BudgetCounts, BudgetPeriod, ContactRule, ContactScope, Offer};
pub use owner::Owner;
pub use rule::{MAX_RULE_LEN, RuleText};
pub use schema::{Schema, ValueType};
pub use segment::{Aggregation, Feature, Segment};
pub use time::{Span, TimeRange, Timestamp};
pub use touchpoint::{Scale, Subject, SurveyAnswer, Touchpoint};
pub use trigger::{Repeat, Trigger, TriggerAction};
pub use value::{Attributes, Value};
