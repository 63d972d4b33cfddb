use crate::error::Result;
use crate::model::{Catalog, Timestamp};
use async_trait::async_trait;

/// Versioned catalogues.
///
/// # Contract
///
/// - Versions start at 1 and increase by 1 with each put; a stored version never changes and
///   stays readable, so a past report can be reproduced with the definitions it used.
/// - A put with `expected_version` succeeds only if the current version is exactly that
///   (`Some(0)`: no catalogue yet); otherwise it fails with [`Error::Conflict`] and stores nothing.
///   Concurrent puts with the same expected version: exactly one succeeds.
/// - The store does not validate the catalogue; [`Engine`](crate::Engine) does before a put.
///
/// [`Error::Conflict`]: crate::Error::Conflict
#[async_trait]
pub trait CatalogStore: Send + Sync {
    /// Stores `catalog` as the next version and makes it current.
    async fn put_catalog(&self, catalog: &Catalog, meta: CatalogMeta) -> Result<CatalogVersion>;

    /// The catalogue at `version`, or the current one for `None`. `Ok(None)` if there is none.
    async fn catalog(&self, version: Option<u64>) -> Result<Option<StoredCatalog>>;

    /// Every version, oldest first (without the catalogues themselves).
    async fn catalog_history(&self) -> Result<Vec<CatalogVersion>>;
}

/// Who puts a catalogue, why, and the version they expect to replace.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct CatalogMeta {
    /// Fail with a conflict unless the current version is this (`Some(0)`: none yet).
    pub expected_version: Option<u64>,
    /// Who made the change.
    pub author: Option<String>,
    /// What changed and why.
    pub comment: Option<String>,
    /// When the change was made (the engine sets it from its clock).
    pub at: Option<Timestamp>,
}

impl CatalogMeta {
    /// No expectation, author or comment.
    pub fn new() -> Self {
        CatalogMeta::default()
    }

    /// Expect `version` to be current.
    #[must_use]
    pub fn expecting(mut self, version: u64) -> Self {
        self.expected_version = Some(version);
        self
    }

    /// Set the author.
    #[must_use]
    pub fn author(mut self, author: impl Into<String>) -> Self {
        self.author = Some(author.into());
        self
    }

    /// Set the comment.
    #[must_use]
    pub fn comment(mut self, comment: impl Into<String>) -> Self {
        self.comment = Some(comment.into());
        self
    }

    /// Set when the change was made.
    #[must_use]
    pub fn at(mut self, at: Timestamp) -> Self {
        self.at = Some(at);
        self
    }
}

/// One version of the catalogue: its number and who stored it, when and why.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CatalogVersion {
    /// Version number, from 1.
    pub version: u64,
    /// When it was stored.
    pub stored_at: Timestamp,
    /// Who stored it.
    pub author: Option<String>,
    /// Why.
    pub comment: Option<String>,
}

impl CatalogVersion {
    /// A version record.
    pub fn new(
        version: u64,
        stored_at: Timestamp,
        author: Option<String>,
        comment: Option<String>,
    ) -> Self {
        CatalogVersion {
            version,
            stored_at,
            author,
            comment,
        }
    }
}

/// A catalogue with its version record.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct StoredCatalog {
    /// The version record.
    pub version: CatalogVersion,
    /// The catalogue.
    pub catalog: Catalog,
}

impl StoredCatalog {
    /// A stored catalogue.
    pub fn new(version: CatalogVersion, catalog: Catalog) -> Self {
        StoredCatalog { version, catalog }
    }
}
