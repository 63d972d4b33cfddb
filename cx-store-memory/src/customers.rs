//! Customers: the directory (profiles, identity index, merge aliases) and the
//! [`CustomerStore`] implementation — upsert, lookups, merge and forget.

use crate::MemoryStore;
use async_trait::async_trait;
use cx_core::arbitration::{CompiledCatalog, ContactInputs, CustomerInputs};
use cx_core::model::{Customer, CustomerId, Identity, TimeRange};
use cx_core::store::{CustomerStore, ForgetReport, MergeReport, UpsertReport};
use cx_core::{Error, Result};
use foldhash::{HashMap, HashMapExt};
use parking_lot::{Mutex, MutexGuard};

/// A customer's profile, with what a catalogue's decisions read of it alone, if kept
/// ([`CustomerInputs`]: kept by batches of decisions, dropped with the profile when it changes),
/// and of the customer's contact history ([`ContactInputs`]: kept the same way, dropped when
/// the history changes).
#[derive(Debug)]
pub(crate) struct Profile {
    customer: Customer,
    inputs: Mutex<Option<Box<CustomerInputs>>>,
    contacts: Mutex<Option<Box<ContactInputs>>>,
}

impl Profile {
    fn new(customer: Customer) -> Self {
        Profile {
            customer,
            inputs: Mutex::new(None),
            contacts: Mutex::new(None),
        }
    }

    /// The profile.
    pub(crate) fn customer(&self) -> &Customer {
        &self.customer
    }

    /// Asks the processor to fetch the inputs kept for this profile, if any (and if no one
    /// holds them); whether there were.
    pub(crate) fn prefetch_customer_inputs(&self) -> bool {
        self.inputs
            .try_lock()
            .and_then(|inputs| inputs.as_deref().map(CustomerInputs::prefetch))
            .is_some()
    }

    /// The inputs kept for this profile, locked (`None` until some are kept, and after the
    /// profile changed). A leaf lock: nothing else is locked while it is held, but the kept
    /// feature inputs of the customer's timeline.
    pub(crate) fn customer_inputs(&self) -> MutexGuard<'_, Option<Box<CustomerInputs>>> {
        self.inputs.lock()
    }

    /// Whether the contact inputs kept for this customer serve `catalog` over `range` (and no
    /// one holds them); if so, asks the processor to fetch them.
    pub(crate) fn prefetch_contact_inputs(
        &self,
        catalog: &CompiledCatalog,
        range: &TimeRange,
    ) -> bool {
        self.contacts
            .try_lock()
            .and_then(|kept| {
                kept.as_deref()
                    .filter(|c| c.serve(catalog, range))
                    .map(ContactInputs::prefetch)
            })
            .is_some()
    }

    /// The contact inputs kept for this customer, locked (`None` until some are kept, and
    /// after the contact history changed). A leaf lock, taken after the profile's inputs.
    pub(crate) fn contact_inputs(&self) -> MutexGuard<'_, Option<Box<ContactInputs>>> {
        self.contacts.lock()
    }

    /// Drops the contact inputs kept for this customer: their contact history changed.
    pub(crate) fn forget_contact_inputs(&self) {
        *self.contacts.lock() = None;
    }
}

/// Profiles, the identity index and merge aliases, behind the store's `directory` lock.
///
/// Invariants (kept by every method that takes `&mut self`):
/// - the identity index maps each identity of each profile to that profile's id, and nothing
///   else;
/// - an alias maps a merged id straight to a customer with a profile (one hop, never a chain),
///   and `merged` is its exact reverse;
/// - an id is never both an alias and a profile.
#[derive(Debug, Default)]
pub(crate) struct Directory {
    profiles: HashMap<CustomerId, Profile>,
    identities: HashMap<Identity, CustomerId>,
    /// Merged id -> the customer that holds its data now.
    aliases: HashMap<CustomerId, CustomerId>,
    /// Customer -> every id that is an alias of it (to re-point or erase them in one step).
    merged: HashMap<CustomerId, Vec<CustomerId>>,
}

impl Directory {
    /// The id that data of `id` is stored under: the customer it was merged into, or itself.
    pub(crate) fn canonical<'a>(&'a self, id: &'a CustomerId) -> &'a CustomerId {
        self.aliases.get(id).unwrap_or(id)
    }

    /// The customer `id` was merged into, if it was.
    pub(crate) fn alias(&self, id: &CustomerId) -> Option<&CustomerId> {
        self.aliases.get(id)
    }

    /// The customer that holds `identity`.
    pub(crate) fn identity_owner(&self, identity: &Identity) -> Option<&CustomerId> {
        self.identities.get(identity)
    }

    /// The profile of `id` (a canonical id).
    pub(crate) fn profile(&self, id: &CustomerId) -> Option<&Customer> {
        self.profiles.get(id).map(Profile::customer)
    }

    /// The profile of `id` (a canonical id), with the inputs kept for it.
    pub(crate) fn profile_entry(&self, id: &CustomerId) -> Option<&Profile> {
        self.profiles.get(id)
    }

    /// Every profile.
    pub(crate) fn profiles(&self) -> impl Iterator<Item = &Profile> {
        self.profiles.values()
    }

    /// How many profiles there are.
    pub(crate) fn profile_count(&self) -> usize {
        self.profiles.len()
    }

    /// Checks a validated batch against the directory: no id of a merged customer, no identity
    /// claimed twice or held by a customer outside the batch. Nothing is changed.
    fn check_upsert(&self, customers: &[Customer]) -> Result<()> {
        let mut in_batch: HashMap<&CustomerId, usize> = HashMap::with_capacity(customers.len());
        for (i, c) in customers.iter().enumerate() {
            if let Some(first) = in_batch.insert(&c.id, i) {
                // Two profiles for one id in one batch: which one is meant is unclear, so say so
                // rather than keep either.
                return Err(Error::validation(
                    format!("customer {:?} (#{i} in batch)", c.id.as_str()),
                    "id",
                    format!("repeats customer #{first} of the same batch"),
                ));
            }
            if let Some(survivor) = self.aliases.get(&c.id) {
                return Err(Error::conflict(
                    "customer",
                    c.id.as_str(),
                    format!(
                        "was merged into customer {:?}; update that customer instead",
                        survivor.as_str()
                    ),
                ));
            }
        }
        let mut claims: HashMap<&Identity, &CustomerId> = HashMap::new();
        for c in customers {
            for (k, identity) in c.identities.iter().enumerate() {
                if let Some(other) = claims.insert(identity, &c.id) {
                    return Err(Error::conflict(
                        "customer",
                        c.id.as_str(),
                        format!(
                            "its {} identity (identities[{k}]) is also claimed by customer {:?} \
                             in the same batch",
                            identity.kind,
                            other.as_str()
                        ),
                    ));
                }
                // An identity held by a customer of the batch that no longer lists it is free:
                // the whole batch applies at once.
                if let Some(owner) = self.identities.get(identity)
                    && owner != &c.id
                    && !in_batch.contains_key(owner)
                {
                    return Err(Error::conflict(
                        "customer",
                        c.id.as_str(),
                        format!(
                            "its {} identity (identities[{k}]) already belongs to customer {:?}",
                            identity.kind,
                            owner.as_str()
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Replaces or inserts the profiles of a checked batch and re-indexes their identities.
    fn apply_upsert(&mut self, customers: Vec<Customer>) -> UpsertReport {
        // Unindex every old identity of the batch first, so that an identity moving between two
        // customers of the batch ends up with its new holder whatever the order.
        for c in &customers {
            if let Some(old) = self.profiles.get(&c.id) {
                for identity in &old.customer.identities {
                    if self.identities.get(identity) == Some(&c.id) {
                        self.identities.remove(identity);
                    }
                }
            }
        }
        let (mut inserted, mut updated) = (0, 0);
        for c in customers {
            for identity in &c.identities {
                self.identities.insert(identity.clone(), c.id.clone());
            }
            // A new profile: the inputs kept for the old one are dropped with it.
            match self.profiles.insert(c.id.clone(), Profile::new(c)) {
                Some(_) => updated += 1,
                None => inserted += 1,
            }
        }
        UpsertReport::new(inserted, updated)
    }

    /// Merges the profile of `absorbed` into `survivor` and makes `absorbed`, and every id
    /// merged into it, an alias of `survivor`. Returns how many identities the survivor gained.
    fn merge(&mut self, survivor: &CustomerId, absorbed: &CustomerId) -> Result<u64> {
        if !self.profiles.contains_key(survivor) {
            return Err(Error::not_found("customer", survivor.as_str()));
        }
        let Some(gone) = self.profiles.remove(absorbed) else {
            return Err(Error::not_found("customer", absorbed.as_str()));
        };
        let Some(kept) = self.profiles.get_mut(survivor) else {
            // Checked above; put it back so a failure changes nothing.
            self.profiles.insert(absorbed.clone(), gone);
            return Err(Error::not_found("customer", survivor.as_str()));
        };

        for identity in &gone.customer.identities {
            self.identities.insert(identity.clone(), survivor.clone());
        }
        let identities_added = kept.customer.absorb(gone.customer);
        // The profile and the contact history changed: what was read of them no longer holds.
        *kept.inputs.get_mut() = None;
        *kept.contacts.get_mut() = None;

        // Keep aliases one hop: ids merged into `absorbed` before now point at `survivor`.
        let mut moved = self.merged.remove(absorbed).unwrap_or_default();
        for id in &moved {
            self.aliases.insert(id.clone(), survivor.clone());
        }
        self.aliases.insert(absorbed.clone(), survivor.clone());
        moved.push(absorbed.clone());
        self.merged
            .entry(survivor.clone())
            .or_default()
            .extend(moved);
        Ok(identities_added)
    }

    /// Erases the profile of `canonical`, its identities and the aliases that lead to it.
    /// Returns whether there was a profile.
    fn forget(&mut self, canonical: &CustomerId) -> bool {
        let profile = self.profiles.remove(canonical);
        if let Some(profile) = &profile {
            for identity in &profile.customer.identities {
                if self.identities.get(identity) == Some(canonical) {
                    self.identities.remove(identity);
                }
            }
        }
        for alias in self.merged.remove(canonical).unwrap_or_default() {
            self.aliases.remove(&alias);
        }
        profile.is_some()
    }
}

#[async_trait]
impl CustomerStore for MemoryStore {
    async fn upsert_customers(&self, customers: Vec<Customer>) -> Result<UpsertReport> {
        for c in &customers {
            c.validate()?;
        }
        let mut directory = self.directory.write();
        directory.check_upsert(&customers)?;
        Ok(directory.apply_upsert(customers))
    }

    async fn customer(&self, id: &CustomerId) -> Result<Option<Customer>> {
        Ok(self.directory.read().profile(id).cloned())
    }

    async fn customers(&self, ids: &[CustomerId]) -> Result<Vec<Option<Customer>>> {
        let directory = self.directory.read();
        Ok(ids
            .iter()
            .map(|id| directory.profile(id).cloned())
            .collect())
    }

    async fn resolve_identity(&self, identity: &Identity) -> Result<Option<CustomerId>> {
        let directory = self.directory.read();
        // Stored identities are in normal form; accept one built without `Identity::new` too.
        let owner = match directory.identity_owner(identity) {
            Some(owner) => Some(owner),
            None => directory.identity_owner(&identity.normalized()),
        };
        Ok(owner.cloned())
    }

    async fn resolve_customer(&self, id: &CustomerId) -> Result<Option<CustomerId>> {
        let directory = self.directory.read();
        let canonical = directory.canonical(id);
        Ok(directory
            .profiles
            .contains_key(canonical)
            .then(|| canonical.clone()))
    }

    async fn merge_customers(
        &self,
        survivor: &CustomerId,
        absorbed: &CustomerId,
    ) -> Result<MergeReport> {
        cx_core::store::check_merge(survivor, absorbed)?;
        // Lock order: directory, shards ascending, decisions (see the crate docs). Everything
        // that can fail happens in `Directory::merge`, before any data moves.
        let mut directory = self.directory.write();
        let identities_added = directory.merge(survivor, absorbed)?;

        let (survivor_key, absorbed_key) = (
            self.keys.key(survivor.clone()),
            self.keys.key(absorbed.clone()),
        );
        let (to, from) = (survivor_key.shard(), absorbed_key.shard());
        let touchpoints_moved = if to == from {
            let mut shard = self.shards.get(to).write();
            let moving = shard.take(&absorbed_key);
            shard.absorb(&survivor_key, moving)
        } else {
            let (mut to_shard, mut from_shard) = if to < from {
                let t = self.shards.get(to).write();
                (t, self.shards.get(from).write())
            } else {
                let f = self.shards.get(from).write();
                (self.shards.get(to).write(), f)
            };
            let moving = from_shard.take(&absorbed_key);
            to_shard.absorb(&survivor_key, moving)
        };
        let decisions_moved = self.decisions.write().merge(survivor, absorbed);
        self.journeys.write().merge(survivor, absorbed);
        self.cases.write().merge(survivor, absorbed);
        Ok(MergeReport::new(
            touchpoints_moved,
            decisions_moved,
            identities_added,
        ))
    }

    async fn forget_customer(&self, id: &CustomerId) -> Result<ForgetReport> {
        // Lock order: directory, then the customer's shard, then decisions.
        let mut directory = self.directory.write();
        let canonical = directory.canonical(id).clone();
        let profile = directory.forget(&canonical);
        let key = self.keys.key(canonical.clone());
        let touchpoints = self.shards.get(key.shard()).write().remove(&key) as u64;
        let (decisions, contacts) = self.decisions.write().forget(&canonical);
        let tracks = self.journeys.write().forget(&canonical);
        let cases = self.cases.write().forget(&canonical);
        Ok(ForgetReport::new(profile, touchpoints, decisions, contacts)
            .with_journey_state(tracks, cases))
    }

    async fn count_customers(&self) -> Result<u64> {
        Ok(self.directory.read().profile_count() as u64)
    }
}

#[async_trait]
impl cx_core::store::CustomerScan for MemoryStore {
    async fn customer_page(
        &self,
        after: Option<&CustomerId>,
        limit: usize,
    ) -> Result<Vec<Customer>> {
        let limit = limit.max(1);
        let directory = self.directory.read();
        let mut ids: Vec<&CustomerId> = directory
            .profiles
            .keys()
            .filter(|id| after.is_none_or(|a| *id > a))
            .collect();
        if ids.len() > limit {
            ids.select_nth_unstable(limit);
            ids.truncate(limit);
        }
        ids.sort_unstable();
        Ok(ids
            .into_iter()
            .filter_map(|id| directory.profile(id).cloned())
            .collect())
    }
}
