use crate::error::Result;
use crate::model::BudgetId;
use async_trait::async_trait;

/// Budget counters, consumed atomically.
///
/// # Contract
///
/// - A counter is identified by (budget, period key) and starts at zero.
/// - `consume_budget` grants `amount` only if `used + amount <= limit`, and then adds it, as one
///   atomic step: however many callers race (tasks, threads, processes on a shared backend), the
///   sum of granted amounts never exceeds `limit`. A refused request changes nothing.
#[async_trait]
pub trait BudgetStore: Send + Sync {
    /// Consumes `amount` from the counter if the limit allows it.
    async fn consume_budget(&self, key: &BudgetKey, limit: u64, amount: u64)
    -> Result<BudgetGrant>;

    /// How much of the counter is used.
    async fn budget_used(&self, key: &BudgetKey) -> Result<u64>;

    /// How much of each counter is used, in the order of `keys`; one call (one round trip on
    /// a remote store) for a whole decision. The default asks [`budget_used`](Self::budget_used)
    /// once per key; remote backends override it.
    async fn budgets_used(&self, keys: &[BudgetKey]) -> Result<Vec<u64>> {
        let mut used = Vec::with_capacity(keys.len());
        for key in keys {
            used.push(self.budget_used(key).await?);
        }
        Ok(used)
    }
}

/// A budget counter: the budget and the period (`total`, `2026-11-22`...).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BudgetKey {
    /// The budget.
    pub budget: BudgetId,
    /// The period key (see [`Budget::period_key`](crate::model::Budget::period_key)).
    pub period: String,
}

impl BudgetKey {
    /// A key.
    pub fn new(budget: impl Into<BudgetId>, period: impl Into<String>) -> Self {
        BudgetKey {
            budget: budget.into(),
            period: period.into(),
        }
    }
}

/// The answer to a consume request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct BudgetGrant {
    /// Whether the amount was granted (and consumed).
    pub granted: bool,
    /// How much is used after the request.
    pub used: u64,
}

impl BudgetGrant {
    /// A grant.
    pub fn new(granted: bool, used: u64) -> Self {
        BudgetGrant { granted, used }
    }
}

/// What a decision takes from a budget: `amount` from the counter `key`, if its use stays
/// within `limit`. See [`Store::commit_decision`](crate::store::Store::commit_decision).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BudgetDraw {
    /// The counter.
    pub key: BudgetKey,
    /// The budget's limit for the counter's period.
    pub limit: u64,
    /// How much the decision takes.
    pub amount: u64,
}

/// The answer to [`Store::commit_decision`](crate::store::Store::commit_decision).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecisionCommit {
    /// The decision is recorded and its draws consumed (or the same decision was recorded
    /// before, and nothing changed).
    Recorded,
    /// The draw at this position does not fit its budget: nothing changed.
    Refused(usize),
}
