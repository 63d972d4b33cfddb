//! # cx-store-memory
//!
//! The in-memory storage backend of `cx`: [`MemoryStore`] implements every storage trait of
//! [`cx_core::store`] and is meant to be shared as `Arc<dyn Store>` between many tasks and
//! threads. Nothing is persisted; dropping the store drops the data.
//!
//! ```
//! use cx_core::model::{Channel, CustomerId, Kind, TimeRange, Timestamp, Touchpoint};
//! use cx_core::store::{Store, TouchpointStore};
//! use cx_store_memory::MemoryStore;
//! use std::sync::Arc;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> cx_core::Result<()> {
//! let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
//! let at = Timestamp::from_timestamp(1_800_000_000, 0).unwrap_or_default();
//! let seen = Touchpoint::new("t-1", CustomerId::new("c-1"), Channel::Web, Kind::PAGE_VIEW, at);
//! let report = store.append_touchpoints(vec![seen.clone(), seen]).await?;
//! assert_eq!((report.inserted, report.duplicates), (1, 1));
//! let stored = store
//!     .customer_touchpoints(&CustomerId::new("c-1"), TimeRange::all())
//!     .await?;
//! assert_eq!(stored.len(), 1);
//! # Ok(())
//! # }
//! ```
//!
//! # How the data is laid out
//!
//! - **Directory** (`customers.rs`): profiles, the identity index and merge aliases, behind one
//!   lock. Aliases are kept flat (every merged id points straight at the customer that holds its
//!   data), so resolving an id is one lookup.
//! - **Touchpoint shards** (`shard.rs`, `touchpoints.rs`): touchpoints live in [`SHARDS`]
//!   shards picked by a hash of the canonical customer id, each behind its own lock. In a shard,
//!   each customer has a timeline sorted by `(occurred_at, id)`, kept in chunks that are never
//!   copied as it grows (`timeline.rs`), of touchpoints in a compact stored form
//!   (`stored.rs`); one open-addressing set of (customer, id) fingerprints answers the
//!   idempotency check in one probe (`fingerprints.rs`). Ingest is bound by memory (page
//!   faults, cache and TLB misses), and this layout is what keeps it fast.
//! - **Feature inputs** (`state.rs`): a batch of decisions
//!   ([`visit_decision_states`](cx_core::Store::visit_decision_states)) keeps, with each
//!   customer's timeline, what the catalogue's features read of it
//!   ([`FeatureInputs`](cx_core::arbitration::FeatureInputs): per feature, when each touchpoint
//!   it admits occurred and its attribute's value, about 24 bytes each). The next decisions
//!   for the customer, in a batch or alone, compute the features from those packed rows
//!   instead of walking the touchpoints and their attributes; any change to the timeline
//!   drops them. It keeps too, with each profile, what the catalogue's rules read of the
//!   profile alone ([`CustomerInputs`](cx_core::arbitration::CustomerInputs): the attributes
//!   rules read, and the results of the clauses reading nothing else), used by the next
//!   batches; a new profile (upsert) or a merge drops them. And it keeps with each profile
//!   what the catalogue's contact policies read of the customer's contact history
//!   ([`ContactInputs`](cx_core::arbitration::ContactInputs): each event of a kind they count,
//!   its offer and category found in the catalogue, 48 bytes an event), so the next batches find
//!   no history in the decision log; a new outcome, a merge or a new profile drops them.
//!   [`MemoryStore::kept_feature_inputs`] says how much is kept, and
//!   [`MemoryStore::with_kept_feature_inputs`] turns keeping all three off.
//! - **Decision log** (`decisions.rs`): decisions by id with their recorded outcome keys, and
//!   per customer the decision ids and the contact history.
//! - **Journey tracks** (`journeys.rs`) per customer, and **follow-up cases** (`follow_ups.rs`)
//!   by id, each behind its own lock; `analytics.rs` runs cx-core's reference accumulators
//!   (funnel, moments of truth, touchpoint measures) over them and the shards.
//! - **Catalogue versions** and **budget counters** (`catalog.rs`, `budgets.rs`): each behind
//!   its own small lock.
//!
//! # Lock order
//!
//! Operations that hold several locks take them in this one order, which rules out deadlock:
//!
//! 1. `directory` (read or write),
//! 2. touchpoint shards, in ascending shard index,
//! 3. `decisions`,
//! 4. `journeys` (each customer's journey tracks),
//! 5. `cases` (follow-up cases),
//! 6. `budgets` (taken with others only to commit a decision and its budget draws together).
//!
//! `catalog` and the append scratch buffers are never held together with another lock. The
//! kept inputs of a profile, then its kept contact inputs, then the kept inputs of the
//! customer's timeline, are leaf locks taken under the directory's, the shards' and the
//! decision log's locks, in that order.
//! Writers that change which
//! id data lives under (merge, forget) hold the directory's write lock, and everything that
//! resolves an id and then reads or writes under it (ingest, reads of one customer, recording a
//! decision) holds its read lock for the whole step, so a merge or an erasure never interleaves
//! with them. No guard is held across an `.await` (there are none inside the methods).
#![warn(missing_docs)]
#![warn(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::print_stdout
)]

mod analytics;
mod budgets;
mod catalog;
mod columns;
mod customers;
mod decisions;
mod fingerprints;
mod follow_ups;
mod journeys;
mod shard;
mod sorted;
mod state;
mod stored;
mod timeline;
mod touchpoints;

use cx_core::model::{CustomerId, Decision};
use cx_core::store::{
    BudgetDraw, BudgetKey, DecisionCommit, DecisionState, DecisionStateQuery, DecisionStateView,
    Store, StoredCatalog,
};
use parking_lot::{Mutex, RwLock};
use std::fmt;

pub use shard::SHARDS;

use customers::Directory;
use decisions::DecisionLog;
use shard::{KeyHasher, PerShard, Shard};

/// The in-memory store: every storage trait, safe to share between tasks and threads.
///
/// See the [crate docs](crate) for how it is laid out and which locks it takes.
pub struct MemoryStore {
    directory: RwLock<Directory>,
    keys: KeyHasher,
    shards: PerShard<RwLock<Shard>>,
    decisions: RwLock<DecisionLog>,
    journeys: RwLock<journeys::Journeys>,
    cases: RwLock<follow_ups::Cases>,
    catalog: RwLock<Vec<StoredCatalog>>,
    budgets: Mutex<foldhash::HashMap<BudgetKey, u64>>,
    /// Reusable per-shard buffers for appends; never held together with another lock.
    scratch: Mutex<Vec<touchpoints::Groups>>,
    /// Whether batches of decisions keep what the catalogue reads of each customer's
    /// touchpoints and profile ([`MemoryStore::with_kept_feature_inputs`]).
    keep_feature_inputs: bool,
}

/// What a [`MemoryStore`] keeps of its customers' feature inputs, and of their profiles
/// ([`MemoryStore::kept_feature_inputs`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeptFeatureInputs {
    /// Customers whose feature inputs are kept
    /// ([`FeatureInputs`](cx_core::arbitration::FeatureInputs)).
    pub customers: usize,
    /// The bytes those inputs take (on the heap, not counting long text they hold).
    pub bytes: usize,
    /// Customers whose profile inputs are kept
    /// ([`CustomerInputs`](cx_core::arbitration::CustomerInputs)).
    pub profiles: usize,
    /// The bytes those take (on the heap, not counting long text they hold).
    pub profile_bytes: usize,
    /// Customers whose contact inputs are kept
    /// ([`ContactInputs`](cx_core::arbitration::ContactInputs)).
    pub contacts: usize,
    /// The bytes those take (on the heap).
    pub contact_bytes: usize,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        MemoryStore {
            directory: RwLock::new(Directory::default()),
            keys: KeyHasher::default(),
            shards: PerShard::from_fn(|_| RwLock::new(Shard::default())),
            decisions: RwLock::new(DecisionLog::default()),
            journeys: RwLock::new(journeys::Journeys::default()),
            cases: RwLock::new(follow_ups::Cases::default()),
            catalog: RwLock::new(Vec::new()),
            budgets: Mutex::new(foldhash::HashMap::default()),
            scratch: Mutex::new(Vec::new()),
            keep_feature_inputs: true,
        }
    }

    /// Whether batches of decisions
    /// ([`visit_decision_states`](cx_core::Store::visit_decision_states)) keep what the
    /// catalogue's features read of each customer's touchpoints, and what its rules read of
    /// their profile alone, for the next decisions about them (true by default; see the
    /// [crate docs](crate)). Without, every decision reads the touchpoints and the profile, and
    /// the store holds no more than its data.
    pub fn with_kept_feature_inputs(mut self, keep: bool) -> Self {
        self.keep_feature_inputs = keep;
        self
    }

    /// How many customers' feature inputs and profile inputs the store keeps, and their
    /// size. Locks the directory, then each shard in turn, and each customer's inputs.
    pub fn kept_feature_inputs(&self) -> KeptFeatureInputs {
        let mut kept = KeptFeatureInputs::default();
        for profile in self.directory.read().profiles() {
            if let Some(inputs) = profile.customer_inputs().as_deref() {
                kept.profiles += 1;
                kept.profile_bytes += std::mem::size_of_val(inputs) + inputs.heap_bytes();
            }
            if let Some(inputs) = profile.contact_inputs().as_deref() {
                kept.contacts += 1;
                kept.contact_bytes += std::mem::size_of_val(inputs) + inputs.heap_bytes();
            }
        }
        for shard in self.shards.iter() {
            for (_, timeline) in shard.read().timelines() {
                if let Some(inputs) = timeline.feature_inputs().as_deref() {
                    kept.customers += 1;
                    kept.bytes += std::mem::size_of_val(inputs) + inputs.heap_bytes();
                }
            }
        }
        kept
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore::new()
    }
}

impl fmt::Debug for MemoryStore {
    /// Counts only (never customer data); `try_` locks so that formatting never waits.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let customers = self.directory.try_read().map(|d| d.profile_count());
        let touchpoints = self
            .shards
            .iter()
            .map(|s| s.try_read().map(|s| s.touchpoint_count()))
            .sum::<Option<usize>>();
        let decisions = self.decisions.try_read().map(|d| d.decision_count());
        let versions = self.catalog.try_read().map(|c| c.len());
        f.debug_struct("MemoryStore")
            .field("customers", &customers)
            .field("touchpoints", &touchpoints)
            .field("decisions", &decisions)
            .field("catalog_versions", &versions)
            .finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl Store for MemoryStore {
    fn backend(&self) -> &'static str {
        "memory"
    }

    async fn decision_state(
        &self,
        query: &DecisionStateQuery,
    ) -> cx_core::Result<Option<DecisionState>> {
        Ok(self.read_decision_state(query))
    }

    async fn visit_decision_states(
        &self,
        query: &DecisionStateQuery,
        customers: &[CustomerId],
        visit: &mut (dyn for<'s> FnMut(usize, Option<DecisionStateView<'s>>) + Send),
    ) -> cx_core::Result<()> {
        self.visit_states(query, customers, visit);
        Ok(())
    }

    async fn commit_decision(
        &self,
        decision: &Decision,
        draws: &[BudgetDraw],
    ) -> cx_core::Result<DecisionCommit> {
        self.commit(decision, draws)
    }
}
