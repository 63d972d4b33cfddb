//! `Engine`: the async facade over a store. It validates, loads what the pure engines need in as
//! few store calls as it can, and persists what they produce.

use crate::clock::{Clock, SystemClock};
use crate::error::{Error, Result};
use crate::model::{
    Catalog, ContactEvent, Customer, CustomerId, Span, TimeRange, Timestamp, Touchpoint,
};
use crate::store::{CatalogMeta, CatalogVersion, ForgetReport, Store, StoredCatalog, UpsertReport};
use parking_lot::RwLock;
use std::path::Path;
use std::sync::Arc;

/// Options of an [`Engine`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct EngineOptions {
    /// How much history [`Engine::customer_state`] loads when no catalogue says otherwise: the
    /// touchpoints and contact history of this span before now. With a catalogue, the span is
    /// at least the longest window its features and contact policies look back over.
    pub state_horizon: Span,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            state_horizon: Span::days(90),
        }
    }
}

/// What the engine knows about one customer at one instant: what decisions are made from.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct CustomerState {
    /// The profile.
    pub customer: Customer,
    /// Touchpoints in `window`, oldest first.
    pub touchpoints: Vec<Touchpoint>,
    /// Contact history in `window`, oldest first.
    pub contacts: Vec<ContactEvent>,
    /// The span of history loaded, ending at the instant the state was taken.
    pub window: TimeRange,
}

/// What an ingest did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct IngestReport {
    /// Touchpoints stored.
    pub inserted: u64,
    /// Touchpoints already stored, not stored again.
    pub duplicates: u64,
}

/// The entry point of `cx`: customers, touchpoints and the catalogue over one store.
///
/// Cheap to share: wrap it in an `Arc` and call it from many tasks. See the `cx` crate's docs for
/// a runnable example on the in-memory store.
#[derive(Debug)]
pub struct Engine {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    options: EngineOptions,
    catalog: RwLock<Option<Arc<StoredCatalog>>>,
}

impl Engine {
    /// An engine over `store`, on the system clock, with no catalogue loaded yet (see
    /// [`Engine::open`] to pick up the store's current catalogue).
    pub fn new(store: Arc<dyn Store>) -> Self {
        Engine {
            store,
            clock: Arc::new(SystemClock),
            options: EngineOptions::default(),
            catalog: RwLock::new(None),
        }
    }

    /// An engine over `store` with the store's current catalogue loaded, if it has one.
    pub async fn open(store: Arc<dyn Store>) -> Result<Self> {
        let engine = Engine::new(store);
        engine.reload_catalog().await?;
        Ok(engine)
    }

    /// Uses `clock` for "now".
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Uses `options`.
    #[must_use]
    pub fn with_options(mut self, options: EngineOptions) -> Self {
        self.options = options;
        self
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The current instant, from the engine's clock.
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// The catalogue in use, if one is loaded.
    pub fn catalog(&self) -> Option<Arc<StoredCatalog>> {
        self.catalog.read().clone()
    }

    /// Validates `catalog`, stores it as the next version and starts using it.
    pub async fn load_catalog(&self, catalog: Catalog) -> Result<CatalogVersion> {
        self.load_catalog_with(catalog, CatalogMeta::new()).await
    }

    /// Like [`load_catalog`](Self::load_catalog), with an author, a comment and optionally the
    /// version the caller expects to replace (a conflict if another writer got there first).
    pub async fn load_catalog_with(
        &self,
        catalog: Catalog,
        meta: CatalogMeta,
    ) -> Result<CatalogVersion> {
        catalog.validate()?;
        let meta = CatalogMeta {
            at: meta.at.or_else(|| Some(self.now())),
            ..meta
        };
        let version = self.store.put_catalog(&catalog, meta).await?;
        let stored = Arc::new(StoredCatalog::new(version.clone(), catalog));
        let mut current = self.catalog.write();
        // Another task may have loaded a newer version meanwhile; keep the newest.
        if current
            .as_ref()
            .is_none_or(|c| c.version.version < version.version)
        {
            *current = Some(stored);
        }
        Ok(version)
    }

    /// Reads, validates, stores and starts using the catalogue in file `path` (YAML, JSON or
    /// TOML by extension).
    pub async fn load_catalog_file(&self, path: impl AsRef<Path>) -> Result<CatalogVersion> {
        let catalog = Catalog::from_path(path)?;
        self.load_catalog(catalog).await
    }

    /// Starts using the store's current catalogue (another process may have put a newer one).
    pub async fn reload_catalog(&self) -> Result<Option<CatalogVersion>> {
        let stored = self.store.catalog(None).await?;
        let version = stored.as_ref().map(|s| s.version.clone());
        *self.catalog.write() = stored.map(Arc::new);
        Ok(version)
    }

    /// Inserts or replaces customer profiles (atomically; see
    /// [`CustomerStore`](crate::store::CustomerStore)).
    pub async fn upsert_customers(&self, customers: Vec<Customer>) -> Result<UpsertReport> {
        self.store.upsert_customers(customers).await
    }

    /// Appends touchpoints: validated, resolved, idempotent by id and atomic per batch (see
    /// [`TouchpointStore`](crate::store::TouchpointStore)).
    pub async fn ingest(&self, touchpoints: Vec<Touchpoint>) -> Result<IngestReport> {
        let report = self.store.append_touchpoints(touchpoints).await?;
        Ok(IngestReport {
            inserted: report.inserted,
            duplicates: report.duplicates,
        })
    }

    /// The customer's profile, touchpoints and contact history over the state horizon, now.
    /// `id` may be the id of a customer merged into another. [`Error::NotFound`] if there is no
    /// such customer.
    pub async fn customer_state(&self, id: &CustomerId) -> Result<CustomerState> {
        let window = TimeRange::ending_at(self.now(), self.state_horizon());
        // The end is exclusive; include events stamped exactly now.
        let window = TimeRange::new(
            window.start,
            window.end + chrono::TimeDelta::microseconds(1),
        );
        let canonical = self
            .store
            .resolve_customer(id)
            .await?
            .ok_or_else(|| Error::not_found("customer", id.as_str()))?;
        let customer = self
            .store
            .customer(&canonical)
            .await?
            .ok_or_else(|| Error::not_found("customer", id.as_str()))?;
        let touchpoints = self.store.customer_touchpoints(&canonical, window).await?;
        let contacts = self.store.contact_history(&canonical, window).await?;
        Ok(CustomerState {
            customer,
            touchpoints,
            contacts,
            window,
        })
    }

    /// Erases everything about the customer (see
    /// [`CustomerStore::forget_customer`](crate::store::CustomerStore::forget_customer)).
    pub async fn forget(&self, id: &CustomerId) -> Result<ForgetReport> {
        self.store.forget_customer(id).await
    }

    /// The span of history a customer state covers: the configured horizon, or longer if the
    /// catalogue's features or contact policies look further back.
    fn state_horizon(&self) -> Span {
        let mut horizon = self.options.state_horizon;
        if let Some(stored) = self.catalog.read().as_ref() {
            let catalog = &stored.catalog;
            let windows = catalog
                .features
                .iter()
                .map(|f| f.window)
                .chain(catalog.contact_policy.iter().map(|r| r.lookback()))
                .chain(
                    catalog
                        .offers
                        .iter()
                        .flat_map(|o| o.contact_policy.iter().map(|r| r.lookback())),
                );
            for window in windows {
                horizon = horizon.max(window);
            }
        }
        horizon
    }
}
