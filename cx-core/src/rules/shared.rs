//! Clauses shared across the rules of a catalogue, evaluated at most once per decision.
//!
//! A catalogue of a thousand offers repeats the same few hundred targeting clauses
//! (`customer.plan == "S"`, `features.views_10m >= 3`): written per offer, but reading only
//! what is fixed for the whole decision (the customer, the features, the context, `now`).
//! [`ClauseInterner`] gives each distinct such clause an id when the catalogue compiles, and a
//! [`ClauseMemo`] remembers, within one decision, each id's result the first time a rule
//! needs it. Rules still evaluate their clauses in order and stop at the first false one, so a
//! verdict (and the clause an explanation names) is exactly what evaluation without the memo
//! gives.

use super::compile::CompiledRule;
use super::eval::{B, Fault, Show, slots_of};
use super::vocabulary::{Env, Namespace, Vocabulary};
use std::collections::HashMap;

/// Marks a clause evaluated on its own, without the memo.
pub(crate) const UNSHARED: u32 = u32::MAX;

/// Gives every distinct clause that reads none of the per-candidate namespaces an id.
#[derive(Debug)]
pub(crate) struct ClauseInterner<'v> {
    vocabulary: &'v Vocabulary,
    /// Per-candidate namespaces: a clause reading one of these is never shared.
    varying: &'v [Namespace],
    /// Printed clause -> the distinct clauses printed that way, with their ids. Printing is
    /// the bucket; structural equality decides.
    seen: HashMap<String, Vec<(B, u32)>>,
    count: u32,
}

impl<'v> ClauseInterner<'v> {
    /// An interner for rules compiled against `vocabulary`; clauses reading any namespace in
    /// `varying` stay unshared.
    pub(crate) fn new(vocabulary: &'v Vocabulary, varying: &'v [Namespace]) -> Self {
        ClauseInterner {
            vocabulary,
            varying,
            seen: HashMap::new(),
            count: 0,
        }
    }

    /// Assigns ids to the shareable clauses of `rule`.
    pub(crate) fn share(&mut self, rule: &mut CompiledRule) {
        let ids: Box<[u32]> = rule
            .root()
            .clauses()
            .iter()
            .map(|clause| self.intern(clause))
            .collect();
        rule.set_shared(ids);
    }

    fn intern(&mut self, clause: &B) -> u32 {
        let mut slots = Vec::new();
        slots_of(clause, &mut slots);
        if slots.iter().any(|s| self.varying.contains(&s.namespace)) {
            return UNSHARED;
        }
        let bucket = self
            .seen
            .entry(Show(clause, self.vocabulary).to_string())
            .or_default();
        if let Some((_, id)) = bucket.iter().find(|(b, _)| b == clause) {
            return *id;
        }
        if self.count == UNSHARED - 1 {
            return UNSHARED;
        }
        let id = self.count;
        self.count += 1;
        bucket.push((clause.clone(), id));
        id
    }

    /// How many distinct shared clauses there are: the size of a [`ClauseMemo`].
    pub(crate) fn count(&self) -> u32 {
        self.count
    }
}

/// The results of shared clauses within one decision (one [`Env`] but for per-candidate
/// namespaces). Starts empty; a clause is evaluated the first time a rule needs it.
#[derive(Debug)]
pub(crate) struct ClauseMemo {
    results: Vec<Option<Result<bool, Fault>>>,
}

impl ClauseMemo {
    /// A memo for `count` shared clauses, all unknown.
    pub(crate) fn new(count: u32) -> Self {
        ClauseMemo {
            results: vec![None; count as usize],
        }
    }

    /// The result of shared clause `id`, evaluating `clause` (which must be that clause) on
    /// first use.
    #[inline]
    pub(crate) fn get_or_eval(
        &mut self,
        id: u32,
        clause: &B,
        env: &Env<'_>,
    ) -> Result<bool, Fault> {
        match self.results.get_mut(id as usize) {
            Some(Some(result)) => *result,
            Some(slot) => *slot.insert(clause.eval(env)),
            None => clause.eval(env),
        }
    }
}
