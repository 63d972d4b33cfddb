//! Offer arbitration: for one customer at one moment, the next best offers — eligible, within
//! contact policies and budgets, suitable for the customer, scored and explained.
//!
//! The pipeline runs in this order, recording for every candidate where it stopped and why:
//!
//! 1. **candidates**: offers valid now and deliverable on the requested channel;
//! 2. **consent**: the customer granted the offer's consent purpose on that channel;
//! 3. **eligibility** rule;
//! 4. **contact policy**: every rule in scope over the customer's contact history (see
//!    [`policy`] for the exact meaning and the instant a cap lifts);
//! 5. **budget**: the offer's budget is not used up;
//! 6. **suitability** rule: is the offer good for the customer;
//! 7. **scoring**: `propensity × context weight × value × lever`, each factor switchable;
//! 8. **selection**: top-k, at most one offer per category, under the exploration policy, with
//!    the probability of each pick logged;
//! 9. **fallback**: the configured default offer when nothing survives.
//!
//! [`Arbitrator::decide`] is the pure function; [`Engine::decide`](crate::Engine::decide) loads
//! its input from the store, consumes budgets atomically and records the decision.

mod compiled;
mod contacts;
mod decide;
pub mod explore;
pub(crate) mod features;
pub mod policy;
pub mod propensity;
mod screen;
mod trace;

pub use compiled::{CompiledCatalog, CompiledOffer, CompiledSegment, CustomerInputs};
pub use contacts::{ContactInputs, ContactWindow};
pub use decide::{Arbitrator, DecisionInput, DecisionScratch};
pub use explore::{DecisionRng, Pick, Scored};
pub use features::{CompiledFeature, FeatureBuffers, FeatureInputs, TouchpointFields};
pub use policy::{CompiledContactRule, Lift};
pub use propensity::{BetaBernoulli, PropensityModel};
