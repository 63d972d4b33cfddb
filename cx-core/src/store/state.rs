use crate::arbitration::CompiledCatalog;
use crate::model::{ContactEvent, Customer, CustomerId, TimeRange, Timestamp, Touchpoint, Value};
use crate::store::BudgetKey;
use std::sync::Arc;

/// What [`Store::decision_state`](crate::Store::decision_state) loads for one decision.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DecisionStateQuery {
    /// The customer (an id merged into another resolves to it).
    pub customer: CustomerId,
    /// The touchpoints to load (`None`: none).
    pub touchpoints: Option<TimeRange>,
    /// Compute these features over the touchpoints of `touchpoints` instead of returning them,
    /// if the backend can do it where it keeps them (see [`FeatureRequest`]).
    pub features: Option<FeatureRequest>,
    /// The contact history to load (`None`: none).
    pub contacts: Option<TimeRange>,
    /// The budget counters to read.
    pub budgets: Vec<BudgetKey>,
}

impl DecisionStateQuery {
    /// The profile of `customer` only.
    pub fn new(customer: impl Into<CustomerId>) -> Self {
        DecisionStateQuery {
            customer: customer.into(),
            touchpoints: None,
            features: None,
            contacts: None,
            budgets: Vec::new(),
        }
    }

    /// Also the touchpoints in `range`.
    #[must_use]
    pub fn touchpoints(mut self, range: Option<TimeRange>) -> Self {
        self.touchpoints = range;
        self
    }

    /// The features of `catalog` at `now` over the touchpoints asked for, instead of the
    /// touchpoints, if the backend computes them in place (see [`FeatureRequest`]).
    #[must_use]
    pub fn features(mut self, catalog: Arc<CompiledCatalog>, now: Timestamp) -> Self {
        self.features = Some(FeatureRequest { catalog, now });
        self
    }

    /// Also the contact history in `range`.
    #[must_use]
    pub fn contacts(mut self, range: Option<TimeRange>) -> Self {
        self.contacts = range;
        self
    }

    /// Also how much of these budget counters is used.
    #[must_use]
    pub fn budgets(mut self, keys: Vec<BudgetKey>) -> Self {
        self.budgets = keys;
        self
    }
}

/// Features a [`DecisionStateQuery`] asks a backend to compute where it keeps the touchpoints
/// (with [`CompiledCatalog::compute_features`] over its own form of them), so that a decision
/// on a local backend copies no touchpoint. A backend that does not answers with the
/// touchpoints instead, and the decision computes the features from them: the same values.
/// It may then leave out the touchpoints no feature reads
/// ([`CompiledCatalog::touchpoint_kinds_read`]).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct FeatureRequest {
    /// The catalogue whose features to compute.
    pub catalog: Arc<CompiledCatalog>,
    /// The instant to compute them at.
    pub now: Timestamp,
}

impl PartialEq for FeatureRequest {
    /// The same catalogue (the same compiled instance) at the same instant.
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.catalog, &other.catalog) && self.now == other.now
    }
}

impl Eq for FeatureRequest {}

/// The answer to a [`DecisionStateQuery`], read as of one moment.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct DecisionState {
    /// The profile of the customer the id resolved to.
    pub customer: Customer,
    /// The touchpoints asked for, oldest first (as `customer_touchpoints` returns them); empty
    /// when `features` holds what was computed from them instead. When the query asked for
    /// features, possibly only those the features read (see [`FeatureRequest`]).
    pub touchpoints: Vec<Touchpoint>,
    /// The features the query asked for, if the backend computed them in place (in catalogue
    /// order); `None`: they are to be computed from `touchpoints`.
    pub features: Option<Vec<Option<Value>>>,
    /// The contact history asked for, oldest first (as `contact_history` returns it).
    pub contacts: Vec<ContactEvent>,
    /// How much of each budget counter is used, in the order of the query's keys.
    pub budget_used: Vec<u64>,
}

impl DecisionState {
    /// A state.
    pub fn new(
        customer: Customer,
        touchpoints: Vec<Touchpoint>,
        contacts: Vec<ContactEvent>,
        budget_used: Vec<u64>,
    ) -> Self {
        DecisionState {
            customer,
            touchpoints,
            features: None,
            contacts,
            budget_used,
        }
    }

    /// What a decision at `now` reads of this state (budgets as read).
    pub fn input(&self, now: Timestamp) -> crate::arbitration::DecisionInput<'_> {
        self.view().input(now)
    }

    /// The state, borrowed.
    pub fn view(&self) -> DecisionStateView<'_> {
        DecisionStateView {
            customer: &self.customer,
            touchpoints: &self.touchpoints,
            features: self.features.as_deref(),
            customer_inputs: None,
            feature_inputs: None,
            contacts: &self.contacts,
            contact_inputs: None,
            budget_used: &self.budget_used,
        }
    }

    /// The same state with the features computed in place instead of the touchpoints.
    #[must_use]
    pub fn with_features(mut self, features: Vec<Option<Value>>) -> Self {
        self.touchpoints = Vec::new();
        self.features = Some(features);
        self
    }
}

/// A [`DecisionState`] borrowed from where a backend keeps it, as
/// [`Store::visit_decision_states`](crate::Store::visit_decision_states) hands it over: the same
/// fields, nothing copied. Backends build it field by field.
#[derive(Debug, Clone, Copy)]
pub struct DecisionStateView<'a> {
    /// The profile of the customer the id resolved to.
    pub customer: &'a Customer,
    /// The touchpoints asked for (see [`DecisionState::touchpoints`]).
    pub touchpoints: &'a [Touchpoint],
    /// The features computed in place, if they were (see [`DecisionState::features`]).
    pub features: Option<&'a [Option<Value>]>,
    /// What the query's catalogue reads of the profile alone, if the backend keeps it
    /// ([`CompiledCatalog::customer_inputs`](crate::arbitration::CompiledCatalog::customer_inputs));
    /// a [`DecisionState`] has none.
    pub customer_inputs: Option<&'a crate::arbitration::CustomerInputs>,
    /// What the query's catalogue's features read of the touchpoints, if the backend keeps it
    /// ([`CompiledCatalog::feature_inputs`](crate::arbitration::CompiledCatalog::feature_inputs))
    /// and it serves the query's instant: then `features` is `None`. A [`DecisionState`] has
    /// none.
    pub feature_inputs: Option<&'a crate::arbitration::FeatureInputs>,
    /// The contact history asked for, oldest first; empty when `contact_inputs` are given.
    pub contacts: &'a [ContactEvent],
    /// The same read ahead for the query's catalogue, if the backend keeps it
    /// ([`CompiledCatalog::contact_inputs`](crate::arbitration::CompiledCatalog::contact_inputs));
    /// a [`DecisionState`] has none.
    pub contact_inputs: Option<crate::arbitration::ContactWindow<'a>>,
    /// How much of each budget counter is used, in the order of the query's keys.
    pub budget_used: &'a [u64],
}

impl<'a> DecisionStateView<'a> {
    /// What a decision at `now` reads of this state (budgets as read).
    pub fn input(&self, now: Timestamp) -> crate::arbitration::DecisionInput<'a> {
        crate::arbitration::DecisionInput {
            customer: self.customer,
            touchpoints: self.touchpoints,
            features: self.features,
            customer_inputs: self.customer_inputs,
            feature_inputs: self.feature_inputs,
            contacts: self.contacts,
            contact_inputs: self.contact_inputs,
            budget_used: self.budget_used,
            now,
        }
    }
}
