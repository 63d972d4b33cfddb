//! Rules: CEL syntax, compiled once into a typed evaluator over resolved slots.
//!
//! A rule is parsed with the `cel` crate when its definition loads, then type-checked against a
//! [`Vocabulary`] — the names rules may read (`customer.plan`, `features.views_10m`,
//! `context.channel`, `offer.price`, `touchpoint.kind`, `now`) with their types — and compiled
//! into a tree whose leaves are slot indices. Evaluating it does no string lookups and no
//! allocation: the caller resolves each namespace's values into a slice once per decision
//! ([`SlotTable::resolve`]) and every rule reads from those slices.
//!
//! Unknown names, type mismatches and unsupported constructs are errors when the rule compiles,
//! naming the definition and the position ([`Error::InvalidRule`](crate::Error::InvalidRule)).
//! Evaluation never panics and never fails: a missing value (or a division by zero) makes the
//! rule false, and the [`Verdict`] says which clause and which value.
//!
//! Semantics, where they differ from full CEL: numbers are one type (CEL's int, uint and double
//! are all `f64`); `&&` and `||` are commutative over missing values as in CEL (`false && x` is
//! false even if `x` is missing); durations accept CEL's units and days (`duration("7d")`).

mod compile;
mod eval;
mod shared;
mod vocabulary;

pub use compile::{CompiledRule, compile_rule};
pub use eval::{Fault, Verdict};
pub(crate) use shared::{ClauseInterner, ClausePlan, ClauseResults, UNSHARED};
pub use vocabulary::{Env, Namespace, Scalar, SlotHints, SlotRef, SlotTable, Vocabulary};

#[cfg(test)]
mod tests;
