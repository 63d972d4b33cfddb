//! # cx
//!
//! An embeddable customer-experience library: customers (profiles, identities, consent),
//! touchpoints on every channel, journeys with owned stages, KPIs with owners and targets, and
//! next-best-offer arbitration, over pluggable storage.
//!
//! This crate is the facade: it re-exports [`cx_core`] and the storage backends, each behind a
//! feature — `memory` (default) for [`MemoryStore`], `postgres` for the PostgreSQL backend.
//!
//! ```
//! use cx::model::{Channel, Customer, CustomerId, Identity, Kind, Touchpoint};
//! use cx::{Engine, MemoryStore};
//! use std::sync::Arc;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> cx::Result<()> {
//! let engine = Engine::new(Arc::new(MemoryStore::new()));
//! engine
//!     .upsert_customers(vec![
//!         Customer::new("c-1")
//!             .with_attribute("plan", "S")
//!             .with_identity(Identity::email("ann@example.com")),
//!     ])
//!     .await?;
//!
//! // Touchpoints are idempotent by id: the second copy is counted, not stored.
//! let viewed = Touchpoint::new(
//!     "t-1",
//!     Identity::email("Ann@Example.com"),
//!     Channel::Web,
//!     Kind::PAGE_VIEW,
//!     engine.now(),
//! );
//! let report = engine.ingest(vec![viewed.clone(), viewed]).await?;
//! assert_eq!((report.inserted, report.duplicates), (1, 1));
//!
//! let state = engine.customer_state(&CustomerId::new("c-1")).await?;
//! assert_eq!(state.touchpoints.len(), 1);
//! # Ok(())
//! # }
//! ```
#![warn(missing_docs)]
#![warn(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::print_stdout
)]

pub use cx_core::*;

#[cfg(feature = "memory")]
pub use cx_store_memory::MemoryStore;

/// The PostgreSQL backend (feature `postgres`).
#[cfg(feature = "postgres")]
pub use cx_store_postgres as postgres;

#[cfg(feature = "postgres")]
pub use cx_store_postgres::PostgresStore;

/// The README's examples, compiled and run as doctests so they cannot drift from the API.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
