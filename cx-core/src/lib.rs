//! # cx-core
//!
//! The core of `cx`, an embeddable customer-experience library: the domain model
//! ([`model`]), the storage traits every backend implements ([`store`]), and the async
//! [`Engine`] facade over a store.
//!
//! Most users depend on the `cx` facade crate, which re-exports this crate and the backends.
//!
//! Layering goes one way: `model` → rules → pure engines → `Engine`, with the store traits
//! beside the pure engines; the engines never do I/O.
//!
//! The `testkit` feature adds the backend conformance suite and the synthetic-world generator.
#![warn(missing_docs)]
#![warn(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::print_stdout
)]

pub mod arbitration;
pub mod clock;
mod engine;
mod error;
mod insight;
pub mod journey;
pub mod kpi;
pub mod model;
mod prefetch;
pub mod rules;
pub mod store;
#[cfg(any(test, feature = "testkit"))]
pub mod testkit;
mod text_key;

/// The date and time library `cx` uses for instants and durations, re-exported so callers
/// build [`Timestamp`](model::Timestamp)s with the same version.
pub use chrono;
pub use clock::{Clock, ManualClock, SystemClock};
pub use engine::{CustomerState, Engine, EngineOptions, IngestReport};
pub use error::{BoxError, Error, Position, Result};
pub use insight::KpiVersion;
pub use store::Store;
