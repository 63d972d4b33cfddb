//! Follow-up cases: the [`FollowUpStore`] implementation.

use crate::MemoryStore;
use async_trait::async_trait;
use cx_core::model::{CaseId, CustomerId, FollowUpCase, Timestamp};
use cx_core::store::{CaseQuery, FollowUpStore, SlaCounts};
use cx_core::{Error, Result};
use std::collections::BTreeMap;

/// Cases by id.
#[derive(Debug, Default)]
pub(crate) struct Cases {
    by_id: BTreeMap<CaseId, FollowUpCase>,
}

impl Cases {
    /// Erases the customer's cases; returns how many there were.
    pub(crate) fn forget(&mut self, customer: &CustomerId) -> u64 {
        let before = self.by_id.len();
        self.by_id.retain(|_, c| &c.customer != customer);
        (before - self.by_id.len()) as u64
    }

    /// Moves the absorbed customer's cases to the survivor.
    pub(crate) fn merge(&mut self, survivor: &CustomerId, absorbed: &CustomerId) {
        for case in self.by_id.values_mut() {
            if &case.customer == absorbed {
                case.customer = survivor.clone();
            }
        }
    }

    fn matching(&self, query: &CaseQuery) -> Vec<&FollowUpCase> {
        let mut hits: Vec<&FollowUpCase> =
            self.by_id.values().filter(|c| query.matches(c)).collect();
        hits.sort_by(|a, b| (a.opened_at, &a.id).cmp(&(b.opened_at, &b.id)));
        hits
    }
}

#[async_trait]
impl FollowUpStore for MemoryStore {
    async fn open_cases(&self, cases: Vec<FollowUpCase>) -> Result<u64> {
        let directory = self.directory.read();
        let mut store = self.cases.write();
        let mut new = 0;
        for mut case in cases {
            case.customer = directory.canonical(&case.customer).clone();
            if !store.by_id.contains_key(&case.id) {
                store.by_id.insert(case.id.clone(), case);
                new += 1;
            }
        }
        Ok(new)
    }

    async fn close_case(
        &self,
        id: &CaseId,
        at: Timestamp,
        note: Option<String>,
    ) -> Result<FollowUpCase> {
        let mut store = self.cases.write();
        let case = store
            .by_id
            .get_mut(id)
            .ok_or_else(|| Error::not_found("follow-up case", id.as_str()))?;
        if case.closed_at.is_some() {
            return Err(Error::conflict(
                "follow-up case",
                id.as_str(),
                "is closed already",
            ));
        }
        if at < case.opened_at {
            return Err(Error::validation(
                format!("follow-up case {:?}", id.as_str()),
                "closed_at",
                "is before the case was opened",
            ));
        }
        case.closed_at = Some(at);
        case.note = note;
        Ok(case.clone())
    }

    async fn cases(&self, query: &CaseQuery) -> Result<Vec<FollowUpCase>> {
        let query = self.resolved(query);
        Ok(self
            .cases
            .read()
            .matching(&query)
            .into_iter()
            .cloned()
            .collect())
    }

    async fn case_sla(&self, query: &CaseQuery) -> Result<SlaCounts> {
        let query = self.resolved(query);
        let mut counts = SlaCounts::default();
        for case in self.cases.read().matching(&query) {
            counts.add(case, query.as_of);
        }
        Ok(counts)
    }
}

impl MemoryStore {
    /// The query with its customer resolved (following merges).
    fn resolved(&self, query: &CaseQuery) -> CaseQuery {
        let mut query = query.clone();
        if let Some(c) = &query.customer {
            query.customer = Some(self.directory.read().canonical(c).clone());
        }
        query
    }
}
