use crate::error::Result;
use crate::model::{Customer, CustomerId, Identity};
use async_trait::async_trait;

/// Customer profiles, identities, merges and erasure.
///
/// # Contract
///
/// - **Upsert** replaces each customer's whole profile (attributes, identities, consent, PII
///   marks) and re-indexes its identities. A batch is validated first and is atomic: if any
///   customer is invalid ([`Error::Validation`] naming it), or an identity already belongs to
///   another customer or is claimed twice in the batch ([`Error::Conflict`]), nothing is stored.
/// - **Get** returns a profile under its own id only; the id of a customer merged into another
///   returns `None` (use [`resolve_customer`](Self::resolve_customer) to follow it).
/// - **Resolve** maps an identity to the customer that holds it, and a customer id to the id of
///   the customer it was merged into (or itself, if it has a profile).
/// - **Merge** absorbs one customer into another in one atomic step: the survivor keeps its
///   attributes and gains the absorbed one's missing attributes, identities, PII marks and
///   consent records (the later record wins per channel and purpose); the absorbed customer's
///   touchpoints, decisions, contact history and follow-up cases become the survivor's (journey
///   tracks as [`JourneyStore`](super::JourneyStore) says); the absorbed id, and every
///   id merged into it before, then resolves to the survivor, including for touchpoints ingested
///   later under it.
/// - **Forget** erases everything about a customer: profile, identities, merge aliases that lead
///   to it, touchpoints, decisions, contact history, journey tracks
///   ([`JourneyStore`](super::JourneyStore)) and follow-up cases
///   ([`FollowUpStore`](super::FollowUpStore)). Afterwards no query returns any of it.
///   Forgetting an id that was merged forgets the customer it was merged into. Forgetting an
///   unknown id is not an error (erasure requests may be replayed); the report says what was
///   erased. Budget counters are aggregates and are not changed.
///
/// [`Error::Validation`]: crate::Error::Validation
/// [`Error::Conflict`]: crate::Error::Conflict
#[async_trait]
pub trait CustomerStore: Send + Sync {
    /// Inserts or replaces customers, atomically.
    async fn upsert_customers(&self, customers: Vec<Customer>) -> Result<UpsertReport>;

    /// The customer with id `id`.
    async fn customer(&self, id: &CustomerId) -> Result<Option<Customer>>;

    /// The customers with these ids, in the same order (`None` where there is none).
    async fn customers(&self, ids: &[CustomerId]) -> Result<Vec<Option<Customer>>>;

    /// The customer that holds `identity`.
    async fn resolve_identity(&self, identity: &Identity) -> Result<Option<CustomerId>>;

    /// The id `id` stands for now: itself if it has a profile, or the customer it was merged
    /// into; `None` if neither.
    async fn resolve_customer(&self, id: &CustomerId) -> Result<Option<CustomerId>>;

    /// Merges `absorbed` into `survivor`. Both must exist ([`Error::NotFound`]) and differ
    /// ([`Error::Validation`]).
    ///
    /// [`Error::NotFound`]: crate::Error::NotFound
    /// [`Error::Validation`]: crate::Error::Validation
    async fn merge_customers(
        &self,
        survivor: &CustomerId,
        absorbed: &CustomerId,
    ) -> Result<MergeReport>;

    /// Erases everything about the customer `id` (see the contract).
    async fn forget_customer(&self, id: &CustomerId) -> Result<ForgetReport>;

    /// How many customer profiles there are.
    async fn count_customers(&self) -> Result<u64>;
}

/// What an upsert did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct UpsertReport {
    /// Customers that did not exist before.
    pub inserted: u64,
    /// Customers whose profile was replaced.
    pub updated: u64,
}

impl UpsertReport {
    /// A report.
    pub fn new(inserted: u64, updated: u64) -> Self {
        UpsertReport { inserted, updated }
    }
}

/// The part of the merge contract a backend checks before touching anything: a customer
/// cannot be merged into itself ([`Error::Validation`](crate::Error::Validation)).
pub fn check_merge(survivor: &CustomerId, absorbed: &CustomerId) -> Result<()> {
    if survivor == absorbed {
        return Err(crate::Error::validation(
            format!("merge into customer {:?}", survivor.as_str()),
            "absorbed",
            "is the survivor itself; a customer cannot be merged into itself",
        ));
    }
    Ok(())
}

/// What a merge moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct MergeReport {
    /// Touchpoints moved to the survivor (duplicates by id are dropped).
    pub touchpoints_moved: u64,
    /// Decisions moved to the survivor.
    pub decisions_moved: u64,
    /// Identities the survivor gained.
    pub identities_added: u64,
}

impl MergeReport {
    /// A report.
    pub fn new(touchpoints_moved: u64, decisions_moved: u64, identities_added: u64) -> Self {
        MergeReport {
            touchpoints_moved,
            decisions_moved,
            identities_added,
        }
    }
}

/// What a forget erased.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ForgetReport {
    /// Whether a profile was erased.
    pub profile: bool,
    /// Touchpoints erased.
    pub touchpoints: u64,
    /// Decisions erased.
    pub decisions: u64,
    /// Contact-history entries (outcomes) erased.
    pub contacts: u64,
    /// Journey tracks erased.
    pub journey_tracks: u64,
    /// Follow-up cases erased.
    pub follow_up_cases: u64,
}

impl ForgetReport {
    /// A report.
    pub fn new(profile: bool, touchpoints: u64, decisions: u64, contacts: u64) -> Self {
        ForgetReport {
            profile,
            touchpoints,
            decisions,
            contacts,
            journey_tracks: 0,
            follow_up_cases: 0,
        }
    }

    /// The report with the journey tracks and follow-up cases erased.
    #[must_use]
    pub fn with_journey_state(mut self, journey_tracks: u64, follow_up_cases: u64) -> Self {
        self.journey_tracks = journey_tracks;
        self.follow_up_cases = follow_up_cases;
        self
    }
}
