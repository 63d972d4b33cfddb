//! The decision log and contact history, and the [`DecisionStore`] implementation.

use crate::MemoryStore;
use crate::sorted::merge_sorted;
use async_trait::async_trait;
use cx_core::model::{
    ContactEvent, CustomerId, Decision, DecisionId, OfferId, Outcome, OutcomeKind, TimeRange,
    Timestamp,
};
use cx_core::store::{
    BudgetDraw, BudgetKey, ContactCount, DecisionCommit, DecisionStore, OutcomeRecorded,
};
use cx_core::{Error, Result};
use foldhash::HashMap;

/// Decisions by id and each customer's history, behind the store's `decisions` lock.
///
/// Customer ids here are always canonical: decisions are stored under the resolved id, and a
/// merge moves the absorbed customer's history to the survivor.
#[derive(Debug, Default)]
pub(crate) struct DecisionLog {
    decisions: HashMap<DecisionId, Logged>,
    customers: HashMap<CustomerId, History>,
}

/// A stored decision and the outcome keys recorded against it (the dedup key is
/// (decision, offer, kind); the decision is implied).
#[derive(Debug)]
struct Logged {
    decision: Decision,
    outcomes: Vec<(OfferId, OutcomeKind)>,
}

/// One customer's decisions and contact history.
#[derive(Debug, Default)]
struct History {
    decisions: Vec<DecisionId>,
    /// Sorted by `at`; equal instants in the order they were recorded.
    contacts: Vec<ContactEvent>,
}

impl History {
    /// The contact events whose instant is in `range`.
    fn contacts_in(&self, range: &TimeRange) -> &[ContactEvent] {
        let start = first_at(&self.contacts, range.start);
        let end = first_at(&self.contacts, range.end);
        self.contacts.get(start..end.max(start)).unwrap_or_default()
    }
}

/// The position of the first of `events` (sorted by instant) at or after `at`. The ends are
/// looked at first: a decision's range usually holds the whole history, so the search reads
/// two events instead of a binary search's scattered ones.
fn first_at(events: &[ContactEvent], at: Timestamp) -> usize {
    match (events.first(), events.last()) {
        (Some(first), _) if first.at >= at => 0,
        (_, Some(last)) if last.at < at => events.len(),
        _ => events.partition_point(|e| e.at < at),
    }
}

impl MemoryStore {
    /// [`Store::commit_decision`](cx_core::Store::commit_decision): the draws are checked and
    /// the decision and draws stored under the directory, decision-log and budget locks (the
    /// crate's lock order), so no other decision or consumer comes in between.
    pub(crate) fn commit(
        &self,
        decision: &Decision,
        draws: &[BudgetDraw],
    ) -> Result<DecisionCommit> {
        decision.validate()?;
        // The directory is held while storing, so a merge cannot slip in between resolving
        // the customer and storing under it.
        let directory = self.directory.read();
        let mut stored = decision.clone();
        // The log keeps what was decided; the explanation stays with the caller's copy.
        stored.explanation = Default::default();
        if let Some(canonical) = directory.alias(&decision.customer) {
            stored.customer = canonical.clone();
        }
        let mut log = self.decisions.write();
        if !log.is_new(&stored)? {
            return Ok(DecisionCommit::Recorded);
        }
        let mut budgets = self.budgets.lock();
        // Each counter's use after the draws so far; a decision draws on a few budgets.
        let mut after: Vec<(&BudgetKey, u64)> = Vec::with_capacity(draws.len());
        for (i, draw) in draws.iter().enumerate() {
            let j = match after.iter().position(|(key, _)| **key == draw.key) {
                Some(j) => j,
                None => {
                    after.push((&draw.key, budgets.get(&draw.key).copied().unwrap_or(0)));
                    after.len() - 1
                }
            };
            let Some((_, used)) = after.get_mut(j) else {
                continue;
            };
            match used.checked_add(draw.amount).filter(|t| *t <= draw.limit) {
                Some(total) => *used = total,
                None => return Ok(DecisionCommit::Refused(i)),
            }
        }
        log.record(stored)?;
        for (key, total) in after {
            match budgets.get_mut(key) {
                Some(counter) => *counter = total,
                None => {
                    budgets.insert(key.clone(), total);
                }
            }
        }
        Ok(DecisionCommit::Recorded)
    }
}

impl DecisionLog {
    /// The contact history of `customer` (a canonical id) in `range`, oldest first.
    pub(crate) fn contacts(&self, customer: &CustomerId, range: &TimeRange) -> &[ContactEvent] {
        self.customers
            .get(customer)
            .map(|history| history.contacts_in(range))
            .unwrap_or_default()
    }

    /// The contact history of `customer` (a canonical id) from `start` on, oldest first.
    pub(crate) fn contacts_since(
        &self,
        customer: &CustomerId,
        start: Timestamp,
    ) -> &[ContactEvent] {
        self.customers
            .get(customer)
            .and_then(|history| history.contacts.get(first_at(&history.contacts, start)..))
            .unwrap_or_default()
    }

    /// How many decisions are stored.
    pub(crate) fn decision_count(&self) -> usize {
        self.decisions.len()
    }

    /// Whether `decision` (customer id canonical) is new: `Ok(false)` if the same decision is
    /// stored already, a conflict if another one is stored under its id.
    fn is_new(&self, decision: &Decision) -> Result<bool> {
        match self.decisions.get(&decision.id) {
            None => Ok(true),
            Some(stored) if stored.decision == *decision => Ok(false),
            Some(_) => Err(Error::conflict(
                "decision",
                decision.id.as_str(),
                "another decision is already stored under this id",
            )),
        }
    }

    /// Stores `decision`, whose customer id is already canonical.
    fn record(&mut self, decision: Decision) -> Result<()> {
        if !self.is_new(&decision)? {
            return Ok(());
        }
        self.customers
            .entry(decision.customer.clone())
            .or_default()
            .decisions
            .push(decision.id.clone());
        self.decisions.insert(
            decision.id.clone(),
            Logged {
                decision,
                outcomes: Vec::new(),
            },
        );
        Ok(())
    }

    /// Records `outcome` and adds it to the customer's contact history, once per key: the
    /// customer whose history it joined, `None` if it was recorded before.
    fn record_outcome(&mut self, outcome: &Outcome) -> Result<Option<&CustomerId>> {
        let Some(logged) = self.decisions.get_mut(&outcome.decision) else {
            return Err(Error::not_found("decision", outcome.decision.as_str()));
        };
        let decision = &logged.decision;
        let Some(selected) = decision.selected(&outcome.offer) else {
            return Err(Error::validation(
                format!("outcome of decision {:?}", outcome.decision.as_str()),
                "offer",
                format!(
                    "{:?} was not chosen by the decision",
                    outcome.offer.as_str()
                ),
            ));
        };
        if logged
            .outcomes
            .iter()
            .any(|(offer, kind)| offer == &outcome.offer && *kind == outcome.kind)
        {
            return Ok(None);
        }
        let event = ContactEvent {
            customer: decision.customer.clone(),
            decision: decision.id.clone(),
            offer: outcome.offer.clone(),
            category: selected.category.clone(),
            channel: decision.channel.clone(),
            kind: outcome.kind,
            at: outcome.at,
        };
        logged.outcomes.push((outcome.offer.clone(), outcome.kind));
        let contacts = &mut self
            .customers
            .entry(event.customer.clone())
            .or_default()
            .contacts;
        let at = contacts.partition_point(|e| e.at <= event.at);
        contacts.insert(at, event);
        Ok(Some(&logged.decision.customer))
    }

    /// Moves the decisions and contact history of `absorbed` to `survivor`. Returns how many
    /// decisions moved.
    pub(crate) fn merge(&mut self, survivor: &CustomerId, absorbed: &CustomerId) -> u64 {
        let Some(gone) = self.customers.remove(absorbed) else {
            return 0;
        };
        for id in &gone.decisions {
            if let Some(logged) = self.decisions.get_mut(id) {
                logged.decision.customer = survivor.clone();
            }
        }
        let mut contacts = gone.contacts;
        for event in &mut contacts {
            event.customer = survivor.clone();
        }
        let moved = gone.decisions.len() as u64;
        let kept = self.customers.entry(survivor.clone()).or_default();
        kept.decisions.extend(gone.decisions);
        let mine = std::mem::take(&mut kept.contacts);
        kept.contacts = merge_sorted(mine, contacts, |x, y| x.at <= y.at);
        moved
    }

    /// Erases the decisions (with their outcome keys) and contact history of `customer`.
    /// Returns how many decisions and contact events were erased.
    pub(crate) fn forget(&mut self, customer: &CustomerId) -> (u64, u64) {
        let Some(gone) = self.customers.remove(customer) else {
            return (0, 0);
        };
        for id in &gone.decisions {
            self.decisions.remove(id);
        }
        (gone.decisions.len() as u64, gone.contacts.len() as u64)
    }
}

#[async_trait]
impl DecisionStore for MemoryStore {
    async fn record_decision(&self, decision: &Decision) -> Result<()> {
        self.commit(decision, &[]).map(|_| ())
    }

    async fn decision(&self, id: &DecisionId) -> Result<Option<Decision>> {
        Ok(self
            .decisions
            .read()
            .decisions
            .get(id)
            .map(|logged| logged.decision.clone()))
    }

    async fn record_outcome(&self, outcome: &Outcome) -> Result<OutcomeRecorded> {
        // The decision's customer is canonical (merge and forget change it under this same
        // lock); the directory is read for their profile, whose kept contact inputs no longer
        // hold once the event is in, and which no decision reads until the log is released.
        let directory = self.directory.read();
        let mut log = self.decisions.write();
        let Some(customer) = log.record_outcome(outcome)? else {
            return Ok(OutcomeRecorded::Duplicate);
        };
        if let Some(profile) = directory.profile_entry(customer) {
            profile.forget_contact_inputs();
        }
        Ok(OutcomeRecorded::New)
    }

    async fn contact_history(
        &self,
        customer: &CustomerId,
        range: TimeRange,
    ) -> Result<Vec<ContactEvent>> {
        let directory = self.directory.read();
        let log = self.decisions.read();
        Ok(log.contacts(directory.canonical(customer), &range).to_vec())
    }

    async fn count_contacts(
        &self,
        customer: &CustomerId,
        queries: &[ContactCount],
    ) -> Result<Vec<u64>> {
        let directory = self.directory.read();
        let log = self.decisions.read();
        let history = log.customers.get(directory.canonical(customer));
        Ok(queries
            .iter()
            .map(|query| {
                history.map_or(0, |h| {
                    h.contacts_in(&query.range)
                        .iter()
                        .filter(|e| query.matches(e))
                        .count() as u64
                })
            })
            .collect())
    }
}
