//! Clauses shared across the rules of a catalogue, evaluated once per decision.
//!
//! A catalogue of a thousand offers repeats the same few hundred targeting clauses
//! (`customer.plan == "S"`, `features.views_10m >= 3`), and those differ mostly in a constant
//! (`>= 2`, `>= 3`, `>= 5`): written per offer, but reading only what is fixed for the whole
//! decision (the customer, the features, the context, `now`).
//!
//! - [`ClauseInterner`] gives each distinct such clause an id when the catalogue compiles.
//! - A [`ClausePlan`] evaluates a set of shared clauses in one pass, grouped by operand:
//!   `features.views_10m` is read once and compared with each constant of its group.
//! - Rules then read their clauses' results ([`ClauseResults`]) instead of evaluating them.
//!   Each rule still goes through its clauses in order and stops at the first false one, so a
//!   verdict (and the clause an explanation names) is exactly what plain evaluation gives.

use super::compile::CompiledRule;
use super::eval::{B, Cmp, D, Fault, L, N, S, Show, T, Verdict, slots_of};
use super::vocabulary::{Env, Namespace, Vocabulary};
use crate::model::Text;
use std::collections::HashMap;

/// Marks a clause evaluated on its own, per candidate.
pub(crate) const UNSHARED: u32 = u32::MAX;

/// Gives every distinct clause that reads none of the per-candidate namespaces an id.
#[derive(Debug)]
pub(crate) struct ClauseInterner<'v> {
    vocabulary: &'v Vocabulary,
    /// Per-candidate namespaces: a clause reading one of these is never shared.
    varying: &'v [Namespace],
    /// Printed clause -> the ids of the distinct clauses printed that way. Printing is the
    /// bucket; structural equality decides.
    seen: HashMap<String, Vec<u32>>,
    /// The shared clauses, by id.
    clauses: Vec<B>,
}

impl<'v> ClauseInterner<'v> {
    /// An interner for rules compiled against `vocabulary`; clauses reading any namespace in
    /// `varying` stay unshared.
    pub(crate) fn new(vocabulary: &'v Vocabulary, varying: &'v [Namespace]) -> Self {
        ClauseInterner {
            vocabulary,
            varying,
            seen: HashMap::new(),
            clauses: Vec::new(),
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
        if let Some(&id) = bucket
            .iter()
            .find(|&&id| self.clauses.get(id as usize) == Some(clause))
        {
            return id;
        }
        let Ok(id) = u32::try_from(self.clauses.len()) else {
            return UNSHARED;
        };
        if id == UNSHARED {
            return UNSHARED;
        }
        bucket.push(id);
        self.clauses.push(clause.clone());
        id
    }

    /// How many distinct shared clauses there are: the size of [`ClauseResults`].
    pub(crate) fn count(&self) -> usize {
        self.clauses.len()
    }

    /// A plan evaluating the shared clauses `ids` (each at most once, whatever the order).
    pub(crate) fn plan(&self, ids: impl IntoIterator<Item = u32>) -> ClausePlan {
        let mut ids: Vec<u32> = ids.into_iter().filter(|&id| id != UNSHARED).collect();
        ids.sort_unstable();
        ids.dedup();
        let mut builder = PlanBuilder::default();
        for id in ids {
            if let Some(clause) = self.clauses.get(id as usize) {
                builder.add(id, clause);
            }
        }
        builder.build()
    }
}

/// A test of a string operand.
#[derive(Debug, Clone)]
enum StrCheck {
    Cmp(Cmp, Text),
    In(Box<[Text]>),
}

/// One operand and the clauses testing it against constants: (clause id, test).
type Groups<O, M> = Box<[(O, Box<[M]>)]>;
/// The same, while a plan is built.
type Open<O, M> = Vec<(O, Vec<M>)>;
/// A clause comparing an operand with a constant: (clause id, comparison, constant).
type Test<X> = (u32, Cmp, X);

/// Shared clauses evaluated together, for one decision: those testing one operand against
/// constants read the operand once.
#[derive(Debug, Clone, Default)]
pub(crate) struct ClausePlan {
    num: Groups<N, Test<f64>>,
    str: Groups<S, (u32, StrCheck)>,
    dur: Groups<D, Test<i64>>,
    time: Groups<T, Test<i64>>,
    one: Box<[(u32, B)]>,
}

/// `b <op> a` as `a <op'> b`.
fn flip(cmp: Cmp) -> Cmp {
    match cmp {
        Cmp::Lt => Cmp::Gt,
        Cmp::Le => Cmp::Ge,
        Cmp::Gt => Cmp::Lt,
        Cmp::Ge => Cmp::Le,
        Cmp::Eq | Cmp::Ne => cmp,
    }
}

/// Adds `member` to the group of `operand`, opening one if needed.
fn join<O: PartialEq + Clone, M>(groups: &mut Open<O, M>, operand: &O, member: M) {
    match groups.iter_mut().find(|(o, _)| o == operand) {
        Some((_, members)) => members.push(member),
        None => groups.push((operand.clone(), vec![member])),
    }
}

fn boxed<O, M>(groups: Open<O, M>) -> Groups<O, M> {
    groups
        .into_iter()
        .map(|(o, m)| (o, m.into_boxed_slice()))
        .collect()
}

#[derive(Default)]
struct PlanBuilder {
    num: Open<N, Test<f64>>,
    str: Open<S, (u32, StrCheck)>,
    dur: Open<D, Test<i64>>,
    time: Open<T, Test<i64>>,
    one: Vec<(u32, B)>,
}

impl PlanBuilder {
    fn add(&mut self, id: u32, clause: &B) {
        match clause {
            B::Num(cmp, operand, N::Const(c)) => join(&mut self.num, operand, (id, *cmp, *c)),
            B::Num(cmp, N::Const(c), operand) => {
                join(&mut self.num, operand, (id, flip(*cmp), *c));
            }
            B::Str(cmp, operand, S::Const(c)) => {
                join(&mut self.str, operand, (id, StrCheck::Cmp(*cmp, c.clone())));
            }
            B::Str(cmp, S::Const(c), operand) => {
                join(
                    &mut self.str,
                    operand,
                    (id, StrCheck::Cmp(flip(*cmp), c.clone())),
                );
            }
            B::StrIn(operand, L::Strs(items)) => {
                join(&mut self.str, operand, (id, StrCheck::In(items.clone())));
            }
            B::Dur(cmp, operand, D::Const(c)) => join(&mut self.dur, operand, (id, *cmp, *c)),
            B::Dur(cmp, D::Const(c), operand) => {
                join(&mut self.dur, operand, (id, flip(*cmp), *c));
            }
            B::Time(cmp, operand, T::Const(c)) => join(&mut self.time, operand, (id, *cmp, *c)),
            B::Time(cmp, T::Const(c), operand) => {
                join(&mut self.time, operand, (id, flip(*cmp), *c));
            }
            other => self.one.push((id, other.clone())),
        }
    }

    fn build(self) -> ClausePlan {
        ClausePlan {
            num: boxed(self.num),
            str: boxed(self.str),
            dur: boxed(self.dur),
            time: boxed(self.time),
            one: self.one.into_boxed_slice(),
        }
    }
}

impl ClausePlan {
    /// Evaluates every clause of the plan into `results`.
    pub(crate) fn eval(&self, env: &Env<'_>, results: &mut ClauseResults) {
        let out = &mut results.results;
        let passes = &mut results.passes;
        let mut set = |id: u32, result: Result<bool, Fault>| {
            if let Some(slot) = out.get_mut(id as usize) {
                *slot = result;
            }
            if let Some(slot) = passes.get_mut(id as usize) {
                *slot = u8::from(result == Ok(true));
            }
        };
        for (operand, tests) in self.num.iter() {
            let value = operand.eval(env);
            for &(id, cmp, c) in tests.iter() {
                set(id, value.map(|v| cmp.test(&v, &c)));
            }
        }
        for (operand, tests) in self.str.iter() {
            let value = operand.eval(env);
            for (id, check) in tests.iter() {
                set(
                    *id,
                    value.map(|v| match check {
                        StrCheck::Cmp(cmp, c) => cmp.test(v, c.as_str()),
                        StrCheck::In(items) => items.iter().any(|i| i.as_str() == v),
                    }),
                );
            }
        }
        for (operand, tests) in self.dur.iter() {
            let value = operand.eval(env);
            for &(id, cmp, c) in tests.iter() {
                set(id, value.map(|v| cmp.test(&v, &c)));
            }
        }
        for (operand, tests) in self.time.iter() {
            let value = operand.eval(env);
            for &(id, cmp, c) in tests.iter() {
                set(id, value.map(|v| cmp.test(&v, &c)));
            }
        }
        for (id, clause) in self.one.iter() {
            set(*id, clause.eval(env));
        }
    }
}

/// The results of a catalogue's shared clauses for one decision, by clause id.
#[derive(Debug)]
pub(crate) struct ClauseResults {
    results: Vec<Result<bool, Fault>>,
    /// Per clause id, 1 if the clause holds, else 0, and one more entry, always 1, at id
    /// `count`: read without branching by the candidate loop.
    passes: Vec<u8>,
}

impl ClauseResults {
    /// Room for `count` shared clauses. Until a plan fills them, every clause reads false.
    pub(crate) fn new(count: usize) -> Self {
        let mut passes = vec![0; count + 1];
        if let Some(always) = passes.last_mut() {
            *always = 1;
        }
        ClauseResults {
            results: vec![Ok(false); count],
            passes,
        }
    }

    /// 1 if clause `id` holds, else 0; 1 for the id `count` given to [`ClauseResults::new`]
    /// (a clause that always holds, to pad a fixed-size list of ids).
    #[inline(always)]
    pub(crate) fn passes(&self, id: u32) -> u8 {
        self.passes.get(id as usize).copied().unwrap_or(0)
    }

    /// The result of shared clause `id`.
    #[inline]
    pub(crate) fn get(&self, id: u32) -> Result<bool, Fault> {
        self.results.get(id as usize).copied().unwrap_or(Ok(false))
    }

    /// The verdict of a rule whose clauses are all shared, `ids` in clause order: what
    /// [`CompiledRule::eval`] gives for it.
    #[inline]
    pub(crate) fn verdict(&self, ids: &[u32]) -> Verdict {
        let mut undecided = None;
        for (i, &id) in ids.iter().enumerate() {
            match self.get(id) {
                Ok(true) => {}
                Ok(false) => {
                    return Verdict::False {
                        clause: u16::try_from(i).unwrap_or(u16::MAX),
                    };
                }
                Err(fault) => {
                    undecided = undecided.or(Some(Verdict::Undecided {
                        clause: u16::try_from(i).unwrap_or(u16::MAX),
                        fault,
                    }));
                }
            }
        }
        undecided.unwrap_or(Verdict::True)
    }
}
