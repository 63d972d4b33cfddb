//! Test kit (feature `testkit`): the backend conformance suite and the synthetic-world generator.
//!
//! - [`conformance`]: `pub async fn` cases that every [`Store`](crate::Store) must pass, plus
//!   [`conformance::run_all`]. A backend's tests call them all.
//! - [`world`]: a seeded, reproducible synthetic world (customers with identities and consent,
//!   touchpoints over several channels) for the tour, the benches and your own experiments.
//! - [`scenario`]: seeded, reproducible arbitration scenarios (catalogue, customer, request).

pub mod conformance;
pub mod scenario;
pub mod world;
