//! Journey state: the events that move a customer through a journey and the instances they
//! make. Built by the journey engine ([`crate::journey`]), kept by a
//! [`JourneyStore`](crate::store::JourneyStore).

use super::channel::Channel;
use super::customer::Identity;
use super::ids::{CustomerId, JourneyId, StageId, TouchpointId};
use super::time::{Span, Timestamp};
use super::touchpoint::Subject;
use serde::{Deserialize, Serialize};

/// A set of stage indices of one journey (bit `i`: stage `i`; journeys have at most 64 stages).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct StageSet(pub u64);

impl StageSet {
    /// No stage.
    pub const EMPTY: StageSet = StageSet(0);

    /// Whether stage `i` is in the set.
    #[inline]
    pub fn contains(self, i: usize) -> bool {
        i < 64 && self.0 & (1u64 << i) != 0
    }

    /// The set with stage `i` added (stages from 64 on are ignored).
    #[must_use]
    pub fn with(self, i: usize) -> StageSet {
        if i < 64 {
            StageSet(self.0 | (1u64 << i))
        } else {
            self
        }
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

/// One touchpoint as a journey sees it: which stages it enters and which it exits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct JourneyEvent {
    /// Whose touchpoint (resolved to a customer id by the store).
    pub subject: Subject,
    /// The journey.
    pub journey: JourneyId,
    /// The touchpoint.
    pub touchpoint: TouchpointId,
    /// When it occurred.
    pub occurred_at: Timestamp,
    /// Its channel.
    pub channel: Channel,
    /// Stages whose entry criteria it meets.
    pub enters: StageSet,
    /// Stages whose exit criteria it meets.
    pub exits: StageSet,
}

impl JourneyEvent {
    /// An event.
    pub fn new(
        subject: Subject,
        journey: JourneyId,
        touchpoint: TouchpointId,
        occurred_at: Timestamp,
        channel: Channel,
        enters: StageSet,
        exits: StageSet,
    ) -> Self {
        JourneyEvent {
            subject,
            journey,
            touchpoint,
            occurred_at,
            channel,
            enters,
            exits,
        }
    }

    /// The customer id, once the subject is resolved.
    pub fn customer_id(&self) -> Option<&CustomerId> {
        self.subject.customer_id()
    }

    /// The identity, if the subject is one (the store resolves it).
    pub fn identity(&self) -> Option<&Identity> {
        match &self.subject {
            Subject::Identity(identity) => Some(identity),
            Subject::Customer(_) => None,
        }
    }

    /// The order events are placed in: when they occurred, then the touchpoint id.
    pub fn key(&self) -> (Timestamp, &TouchpointId) {
        (self.occurred_at, &self.touchpoint)
    }
}

/// A stage a journey instance entered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct StageVisit {
    /// The stage.
    pub stage: StageId,
    /// Its index in the journey.
    pub index: u16,
    /// When it was entered.
    pub entered_at: Timestamp,
    /// When it was left (the next stage entered, or the instance ended); `None` while in it.
    pub left_at: Option<Timestamp>,
    /// The channel of the touchpoint that entered it.
    pub channel: Channel,
    /// The touchpoint that entered it.
    pub touchpoint: TouchpointId,
}

impl StageVisit {
    /// A visit (for backends that store visits in parts).
    pub fn new(
        stage: StageId,
        index: u16,
        entered_at: Timestamp,
        left_at: Option<Timestamp>,
        channel: Channel,
        touchpoint: TouchpointId,
    ) -> Self {
        StageVisit {
            stage,
            index,
            entered_at,
            left_at,
            channel,
            touchpoint,
        }
    }
}

/// How an instance ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum InstanceEnd {
    /// It reached the last stage.
    Completed {
        /// When.
        at: Timestamp,
    },
    /// A touchpoint met the current stage's exit criteria.
    Exited {
        /// When.
        at: Timestamp,
    },
    /// No progress for the journey's inactivity timeout.
    Abandoned {
        /// When the timeout ran out.
        at: Timestamp,
    },
}

impl InstanceEnd {
    /// When it ended.
    pub fn at(self) -> Timestamp {
        match self {
            InstanceEnd::Completed { at }
            | InstanceEnd::Exited { at }
            | InstanceEnd::Abandoned { at } => at,
        }
    }
}

/// Where an instance stands at some instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InstanceStatus {
    /// In progress.
    Active,
    /// Reached the last stage.
    Completed,
    /// Left through an exit criterion.
    Exited,
    /// No progress for the inactivity timeout.
    Abandoned,
}

/// One pass of a customer through a journey: the stages entered, in order, and how it ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct JourneyInstance {
    /// The stages entered (skipped stages have no visit), oldest first; never empty.
    pub visits: Vec<StageVisit>,
    /// How it ended, as far as the events placed so far tell (an abandonment with no later
    /// event is found by [`status`](Self::status)).
    pub end: Option<InstanceEnd>,
}

impl JourneyInstance {
    /// An instance (for backends that store instances in parts).
    pub fn new(visits: Vec<StageVisit>, end: Option<InstanceEnd>) -> Self {
        JourneyInstance { visits, end }
    }

    /// When it started (the first stage entered).
    pub fn started_at(&self) -> Option<Timestamp> {
        self.visits.first().map(|v| v.entered_at)
    }

    /// The stage it is in (or ended in).
    pub fn current(&self) -> Option<&StageVisit> {
        self.visits.last()
    }

    /// The visit of stage `index`, if it was entered.
    pub fn visit(&self, index: usize) -> Option<&StageVisit> {
        self.visits.iter().find(|v| usize::from(v.index) == index)
    }

    /// Its status at `at`, given the journey's inactivity timeout: an instance still active with
    /// no progress for longer than the timeout is abandoned (at the instant the timeout ran out).
    pub fn status(
        &self,
        at: Timestamp,
        timeout: Option<Span>,
    ) -> (InstanceStatus, Option<Timestamp>) {
        match self.end {
            Some(InstanceEnd::Completed { at }) => (InstanceStatus::Completed, Some(at)),
            Some(InstanceEnd::Exited { at }) => (InstanceStatus::Exited, Some(at)),
            Some(InstanceEnd::Abandoned { at }) => (InstanceStatus::Abandoned, Some(at)),
            None => match (timeout, self.current()) {
                (Some(timeout), Some(last)) if at - last.entered_at > timeout.as_delta() => (
                    InstanceStatus::Abandoned,
                    Some(last.entered_at + timeout.as_delta()),
                ),
                _ => (InstanceStatus::Active, None),
            },
        }
    }

    /// The visit the instance was in at instant `at`, if it was in one (entered at or before
    /// `at`, left after it, or not left).
    pub fn stage_at(&self, at: Timestamp, timeout: Option<Span>) -> Option<&StageVisit> {
        let visit = self.visits.iter().rev().find(|v| v.entered_at <= at)?;
        // A completed instance stays in its last stage; an active one may have been abandoned.
        let left = match (visit.left_at, self.end) {
            (Some(left), _) => Some(left),
            (None, None) => self.status(at, timeout).1,
            (None, Some(_)) => None,
        };
        match left {
            Some(left) if left <= at => None,
            _ => Some(visit),
        }
    }
}

/// One customer's state in one journey: every instance, and the events kept to place late
/// arrivals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct JourneyTrack {
    /// The customer.
    pub customer: CustomerId,
    /// The journey.
    pub journey: JourneyId,
    /// Every instance, oldest first (only the last can be active).
    pub instances: Vec<JourneyInstance>,
    /// The events replayed to build `instances`, ordered by `(occurred_at, touchpoint)`: every
    /// event that changed the state, and the others still within the journey's lateness of the
    /// watermark (a late arrival may give them a meaning).
    pub events: Vec<JourneyEvent>,
    /// The latest `occurred_at` placed.
    pub watermark: Option<Timestamp>,
    /// Events refused because they arrived later than the journey's lateness allows.
    pub too_late: u64,
}

impl JourneyTrack {
    /// An empty track.
    pub fn new(customer: CustomerId, journey: JourneyId) -> Self {
        JourneyTrack {
            customer,
            journey,
            instances: Vec::new(),
            events: Vec::new(),
            watermark: None,
            too_late: 0,
        }
    }
}
