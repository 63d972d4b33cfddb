//! Catalogue versions: the [`CatalogStore`] implementation.

use crate::MemoryStore;
use async_trait::async_trait;
use cx_core::model::Catalog;
use cx_core::store::{CatalogMeta, CatalogStore, CatalogVersion, StoredCatalog};
use cx_core::{Clock, Error, Result, SystemClock};

#[async_trait]
impl CatalogStore for MemoryStore {
    async fn put_catalog(&self, catalog: &Catalog, meta: CatalogMeta) -> Result<CatalogVersion> {
        // The check and the append happen under one write lock: of several puts expecting the
        // same version, exactly one finds it current.
        let mut versions = self.catalog.write();
        let current = versions.len() as u64;
        if let Some(expected) = meta.expected_version
            && expected != current
        {
            return Err(Error::conflict(
                "catalog",
                format!("version {expected}"),
                format!(
                    "expected version {expected} to be current, but the current version is {current}"
                ),
            ));
        }
        let version = CatalogVersion::new(
            current + 1,
            meta.at.unwrap_or_else(|| SystemClock.now()),
            meta.author,
            meta.comment,
        );
        versions.push(StoredCatalog::new(version.clone(), catalog.clone()));
        Ok(version)
    }

    async fn catalog(&self, version: Option<u64>) -> Result<Option<StoredCatalog>> {
        let versions = self.catalog.read();
        let stored = match version {
            None => versions.last(),
            // Version n is at index n - 1; version 0 never exists.
            Some(n) => n
                .checked_sub(1)
                .and_then(|i| usize::try_from(i).ok())
                .and_then(|i| versions.get(i)),
        };
        Ok(stored.cloned())
    }

    async fn catalog_history(&self) -> Result<Vec<CatalogVersion>> {
        Ok(self
            .catalog
            .read()
            .iter()
            .map(|stored| stored.version.clone())
            .collect())
    }
}
