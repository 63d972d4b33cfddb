use crate::error::Result;
use crate::model::{CaseId, CustomerId, FollowUpCase, OwnerId, TimeRange, Timestamp};
use async_trait::async_trait;

/// Follow-up cases of the closed loop.
///
/// # Contract
///
/// - **Open** is idempotent by case id: a case whose id is stored already is left as it is
///   (counted as a duplicate). A batch is stored whole or not at all.
/// - **Close** sets `closed_at` and `note` of an open case and returns it; closing a closed
///   case fails with [`Error::Conflict`] and changes nothing; an unknown id is
///   [`Error::NotFound`]. `closed_at` before `opened_at` is [`Error::Validation`].
/// - **Reads** return cases ordered by `(opened_at, id)`; ranges are half-open over
///   `opened_at`. Case customers are stored resolved (following merges).
/// - **SLA counts** cover cases opened in the range: closed by their deadline (inclusive), closed
///   late, open past their deadline at `as_of`, and open with time left at `as_of`.
/// - **Forget** ([`forget_customer`](super::CustomerStore::forget_customer)) erases the
///   customer's cases.
///
/// [`Error::Conflict`]: crate::Error::Conflict
/// [`Error::NotFound`]: crate::Error::NotFound
/// [`Error::Validation`]: crate::Error::Validation
#[async_trait]
pub trait FollowUpStore: Send + Sync {
    /// Stores new cases; returns how many were new.
    async fn open_cases(&self, cases: Vec<FollowUpCase>) -> Result<u64>;

    /// Closes a case.
    async fn close_case(
        &self,
        id: &CaseId,
        at: Timestamp,
        note: Option<String>,
    ) -> Result<FollowUpCase>;

    /// The cases matching `query`.
    async fn cases(&self, query: &CaseQuery) -> Result<Vec<FollowUpCase>>;

    /// SLA counts of the cases matching `query`, at `query.as_of`.
    async fn case_sla(&self, query: &CaseQuery) -> Result<SlaCounts>;
}

/// Which cases.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CaseQuery {
    /// Opened in this range.
    pub opened: TimeRange,
    /// Of this owner only.
    pub owner: Option<OwnerId>,
    /// Of this customer only (resolved by the store).
    pub customer: Option<CustomerId>,
    /// Only those still open.
    pub open_only: bool,
    /// The instant SLA counts are taken at.
    pub as_of: Timestamp,
    /// Of these customers only (a segment), if set.
    pub customers: Option<Vec<CustomerId>>,
}

impl CaseQuery {
    /// Every case opened in `opened`, counted at `as_of`.
    pub fn new(opened: TimeRange, as_of: Timestamp) -> Self {
        CaseQuery {
            opened,
            owner: None,
            customer: None,
            open_only: false,
            as_of,
            customers: None,
        }
    }

    /// Only cases of `owner`.
    #[must_use]
    pub fn owner(mut self, owner: impl Into<OwnerId>) -> Self {
        self.owner = Some(owner.into());
        self
    }

    /// Only cases of `customer`.
    #[must_use]
    pub fn customer(mut self, customer: impl Into<CustomerId>) -> Self {
        self.customer = Some(customer.into());
        self
    }

    /// Only open cases.
    #[must_use]
    pub fn open_only(mut self) -> Self {
        self.open_only = true;
        self
    }

    /// Only cases of these customers.
    #[must_use]
    pub fn customers(mut self, customers: Option<Vec<CustomerId>>) -> Self {
        self.customers = customers;
        self
    }

    /// Whether `case` matches (the customer already resolved).
    pub fn matches(&self, case: &FollowUpCase) -> bool {
        self.opened.contains(case.opened_at)
            && self.owner.as_ref().is_none_or(|o| &case.owner == o)
            && self.customer.as_ref().is_none_or(|c| &case.customer == c)
            && (!self.open_only || case.closed_at.is_none())
            && self
                .customers
                .as_ref()
                .is_none_or(|set| set.contains(&case.customer))
    }
}

/// How cases stand against their SLA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct SlaCounts {
    /// Closed by the deadline.
    pub closed_in_time: u64,
    /// Closed after the deadline.
    pub closed_late: u64,
    /// Open, deadline passed.
    pub open_overdue: u64,
    /// Open, deadline not reached.
    pub open_in_time: u64,
}

impl SlaCounts {
    /// Counts.
    pub fn new(
        closed_in_time: u64,
        closed_late: u64,
        open_overdue: u64,
        open_in_time: u64,
    ) -> Self {
        SlaCounts {
            closed_in_time,
            closed_late,
            open_overdue,
            open_in_time,
        }
    }

    /// Adds `case`, as it stands at `as_of`.
    pub fn add(&mut self, case: &FollowUpCase, as_of: Timestamp) {
        match case.closed_at {
            Some(_) if case.closed_in_time() => self.closed_in_time += 1,
            Some(_) => self.closed_late += 1,
            None if as_of > case.due_at => self.open_overdue += 1,
            None => self.open_in_time += 1,
        }
    }

    /// Cases whose SLA outcome is known: closed, or open past the deadline.
    pub fn decided(&self) -> u64 {
        self.closed_in_time + self.closed_late + self.open_overdue
    }
}
