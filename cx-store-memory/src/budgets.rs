//! Budget counters: the [`BudgetStore`] implementation.

use crate::MemoryStore;
use async_trait::async_trait;
use cx_core::Result;
use cx_core::store::{BudgetGrant, BudgetKey, BudgetStore};

#[async_trait]
impl BudgetStore for MemoryStore {
    async fn consume_budget(
        &self,
        key: &BudgetKey,
        limit: u64,
        amount: u64,
    ) -> Result<BudgetGrant> {
        // Check and add under one lock: concurrent callers are serialised, so the granted sum
        // never exceeds the limit. The lock is held for a few nanoseconds.
        let mut budgets = self.budgets.lock();
        let used = budgets.get(key).copied().unwrap_or(0);
        match used.checked_add(amount) {
            Some(total) if total <= limit => {
                match budgets.get_mut(key) {
                    Some(counter) => *counter = total,
                    // Cloning the key only for a new counter.
                    None => {
                        budgets.insert(key.clone(), total);
                    }
                }
                Ok(BudgetGrant::new(true, total))
            }
            // Refused (over the limit, or an amount so large it overflows): nothing changes.
            _ => Ok(BudgetGrant::new(false, used)),
        }
    }

    async fn budget_used(&self, key: &BudgetKey) -> Result<u64> {
        Ok(self.budgets.lock().get(key).copied().unwrap_or(0))
    }
}
