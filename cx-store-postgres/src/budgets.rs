//! Budget counters: the [`BudgetStore`] implementation.

use crate::PostgresStore;
use crate::codec::{count, get};
use async_trait::async_trait;
use cx_core::Result;
use cx_core::store::{BudgetGrant, BudgetKey, BudgetStore};

#[async_trait]
impl BudgetStore for PostgresStore {
    async fn consume_budget(
        &self,
        key: &BudgetKey,
        limit: u64,
        amount: u64,
    ) -> Result<BudgetGrant> {
        let doing = "consume a budget";
        // Counters are bigint: a limit above i64::MAX is no limit at all, an amount above it
        // can never be granted.
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let Ok(amount) = i64::try_from(amount) else {
            return Ok(BudgetGrant::new(false, self.budget_used(key).await?));
        };
        let conn = self.conn().await?;
        // One conditional statement: a new counter is created only if the amount fits, an
        // existing one is added to only if `used + amount <= limit` (written so that it cannot
        // overflow). ON CONFLICT locks the row and re-checks the condition against its latest
        // version, so racing consumers are serialised and the limit holds.
        let granted = self
            .query(
                &conn,
                "INSERT INTO budget_counters AS b (budget_id, period, used)
                 SELECT $1::text, $2::text, $3::bigint WHERE $3::bigint <= $4::bigint
                 ON CONFLICT (budget_id, period)
                 DO UPDATE SET used = b.used + EXCLUDED.used
                 WHERE b.used <= $4::bigint - EXCLUDED.used
                 RETURNING b.used",
                &[&key.budget.as_str(), &key.period.as_str(), &amount, &limit],
                doing,
            )
            .await?;
        match granted.first() {
            Some(row) => Ok(BudgetGrant::new(true, count(get(row, 0)?))),
            // Refused: nothing changed. Read the counter in a new statement, which sees the
            // version the refusal was decided on.
            None => {
                drop(conn);
                Ok(BudgetGrant::new(false, self.budget_used(key).await?))
            }
        }
    }

    async fn budget_used(&self, key: &BudgetKey) -> Result<u64> {
        Ok(self
            .budgets_used(std::slice::from_ref(key))
            .await?
            .first()
            .copied()
            .unwrap_or(0))
    }

    async fn budgets_used(&self, keys: &[BudgetKey]) -> Result<Vec<u64>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<&str> = keys.iter().map(|k| k.budget.as_str()).collect();
        let periods: Vec<&str> = keys.iter().map(|k| k.period.as_str()).collect();
        let conn = self.conn().await?;
        let rows = self
            .query(
                &conn,
                &format!("SELECT {BUDGETS_USED} ORDER BY k.n"),
                &[&ids, &periods],
                "read budget counters",
            )
            .await?;
        rows.iter().map(|r| Ok(count(get(r, 0)?))).collect()
    }
}

/// The use of counters `($1[n], $2[n])`, with `k.n` their position (from `SELECT`).
pub(crate) const BUDGETS_USED: &str = "coalesce(
        (SELECT b.used FROM budget_counters b
         WHERE b.budget_id = k.budget_id COLLATE \"C\" AND b.period = k.period COLLATE \"C\"), 0)
    FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS k(budget_id, period, n)";
