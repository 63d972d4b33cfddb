use crate::model::{ContactEvent, Customer, CustomerId, TimeRange, Touchpoint};
use crate::store::BudgetKey;

/// What [`Store::decision_state`](crate::Store::decision_state) loads for one decision.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DecisionStateQuery {
    /// The customer (an id merged into another resolves to it).
    pub customer: CustomerId,
    /// The touchpoints to load (`None`: none).
    pub touchpoints: Option<TimeRange>,
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

/// The answer to a [`DecisionStateQuery`], read as of one moment.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct DecisionState {
    /// The profile of the customer the id resolved to.
    pub customer: Customer,
    /// The touchpoints asked for, oldest first (as `customer_touchpoints` returns them).
    pub touchpoints: Vec<Touchpoint>,
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
            contacts,
            budget_used,
        }
    }
}
