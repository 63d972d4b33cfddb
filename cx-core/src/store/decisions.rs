use crate::error::Result;
use crate::model::{
    Category, Channel, ContactEvent, CustomerId, Decision, DecisionId, OfferId, Outcome,
    OutcomeKind, TimeRange,
};
use async_trait::async_trait;

/// The decision log and each customer's contact history.
///
/// # Contract
///
/// - **Decisions** are stored under their id, with the customer id resolved (following merges),
///   without their in-memory explanation (`Decision::explanation`), which is not part of the log.
///   Recording the same decision again is a no-op; recording another decision under a stored id
///   fails with [`Error::Conflict`]. An invalid decision fails with [`Error::Validation`].
/// - **Outcomes** must name a stored decision ([`Error::NotFound`] otherwise) and an offer that
///   decision chose ([`Error::Validation`] otherwise). Each outcome becomes one entry of the
///   customer's contact history, carrying the offer's category and the decision's channel.
///   The key is (decision, offer, kind): recording it again returns
///   [`OutcomeRecorded::Duplicate`] and is counted once.
/// - **Counts** are over the customer's contact history (following merges): entries of `kind`
///   in `scope` whose instant lies in the half-open `range`.
///
/// [`Error::Conflict`]: crate::Error::Conflict
/// [`Error::NotFound`]: crate::Error::NotFound
/// [`Error::Validation`]: crate::Error::Validation
#[async_trait]
pub trait DecisionStore: Send + Sync {
    /// Records a decision.
    async fn record_decision(&self, decision: &Decision) -> Result<()>;

    /// The decision with id `id`.
    async fn decision(&self, id: &DecisionId) -> Result<Option<Decision>>;

    /// Records an outcome against a decision.
    async fn record_outcome(&self, outcome: &Outcome) -> Result<OutcomeRecorded>;

    /// A customer's contact history in `range`, oldest first.
    async fn contact_history(
        &self,
        customer: &CustomerId,
        range: TimeRange,
    ) -> Result<Vec<ContactEvent>>;

    /// For each query, how many entries of the customer's contact history match it; one call
    /// answers every query (one round trip on a remote store).
    async fn count_contacts(
        &self,
        customer: &CustomerId,
        queries: &[ContactCount],
    ) -> Result<Vec<u64>>;
}

/// Whether an outcome was new.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutcomeRecorded {
    /// First time: it counts.
    New,
    /// Already recorded: it counts once.
    Duplicate,
}

/// Which contact-history entries a count covers.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ContactKey {
    /// Entries of one offer.
    Offer(OfferId),
    /// Entries of offers in one category.
    Category(Category),
    /// Entries on one channel.
    Channel(Channel),
    /// All entries.
    All,
}

impl ContactKey {
    /// Whether `event` is covered.
    pub fn covers(&self, event: &ContactEvent) -> bool {
        match self {
            ContactKey::Offer(id) => &event.offer == id,
            ContactKey::Category(c) => &event.category == c,
            ContactKey::Channel(ch) => &event.channel == ch,
            ContactKey::All => true,
        }
    }
}

/// One count: entries of `kind` covered by `key` in `range`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ContactCount {
    /// Which entries.
    pub key: ContactKey,
    /// Of which outcome kind.
    pub kind: OutcomeKind,
    /// In which time range.
    pub range: TimeRange,
}

impl ContactCount {
    /// Whether `event` matches.
    pub fn matches(&self, event: &ContactEvent) -> bool {
        event.kind == self.kind && self.range.contains(event.at) && self.key.covers(event)
    }
}
