//! Journeys: matching touchpoints to stages, advancing each customer's instances, and the
//! reference semantics of the journey analytics (funnels, moments of truth).
//!
//! # How an instance advances
//!
//! Events (touchpoints that meet some stage's entry or exit criteria) are placed in order of
//! `(occurred_at, touchpoint id)`, not of arrival, and the customer's instances are replayed from
//! them:
//!
//! - with no active instance, an event entering the first stage starts one;
//! - in stage `i`, an event entering stage `j > i` advances to `j` if every stage between them
//!   is optional (the nearest such `j` wins); reaching the last stage completes the instance;
//! - otherwise, an event meeting stage `i`'s exit criteria ends the instance as exited;
//! - an instance with no progress (no stage entered) for the journey's inactivity timeout is
//!   abandoned when the timeout runs out: a later event cannot advance it, though one entering
//!   the first stage starts a new instance;
//! - events entering an earlier stage, or the current one again, change nothing.
//!
//! An event that occurred more than the journey's `lateness` (zero if unset) before the latest
//! event placed for that customer and journey (the watermark) is refused and counted as too late:
//! within the lateness the state is provisional, beyond it final.
//!
//! Matcher rules read `touchpoint.*` only, so that matching needs no store read at ingest.

mod advance;
mod compiled;
pub mod follow_up;
pub mod funnel;
pub mod moments;
mod triggers;

pub use advance::replay;
pub use compiled::CompiledJourneys;
pub use triggers::CompiledTriggers;

#[cfg(test)]
mod tests;
