//! PostgreSQL storage backend for `cx`.
//!
//! Not implemented yet: this crate holds the place of the backend in the workspace so the
//! facade's `postgres` feature and the build layout are fixed. It will implement every storage
//! trait of [`cx_core::store`] and pass the same conformance suite as the in-memory store,
//! against a real server started by its test harness.
#![warn(missing_docs)]
#![warn(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::print_stdout
)]

pub use cx_core::store::Store;
