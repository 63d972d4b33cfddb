//! Clauses shared across the rules of a catalogue, evaluated once per decision.
//!
//! A catalogue of a thousand offers repeats the same few hundred targeting clauses
//! (`customer.plan == "S"`, `features.views_10m >= 3`), and those differ mostly in a constant
//! (`>= 2`, `>= 3`, `>= 5`): written per offer, but reading only what is fixed for the whole
//! decision (the customer, the features, the context, `now`).
//!
//! - [`ClauseInterner`] gives each distinct such clause an id when the catalogue compiles.
//! - A [`ClausePlan`] evaluates a set of shared clauses in one pass, grouped by operand:
//!   `features.views_10m` is read once and compared with each constant of its group, the
//!   tests split by comparison when the plan is built (a loop per comparison, no dispatch per
//!   test); a string operand is compared once with each distinct constant of its group.
//! - Rules then read their clauses' results ([`ClauseResults`]) instead of evaluating them.
//!   Each rule still goes through its clauses in order and stops at the first false one, so a
//!   verdict (and the clause an explanation names) is exactly what plain evaluation gives.

use super::compile::CompiledRule;
use super::eval::{B, Cmp, D, Fault, L, N, S, Show, T, Verdict, reads_only, slots_of};
use super::vocabulary::{Env, Namespace, SlotRef, Vocabulary};
use crate::model::{Text, Value};
use crate::text_key::TextKey;
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

    /// Assigns ids to the shareable clauses of `rule`, a rule of the offer whose `offer.*`
    /// values are `offer` (in slot order). A clause reading the offer is shared in the form it
    /// has for this offer, its `offer.*` values written in as constants (`offer.price <
    /// customer.expected_overage_usd` becomes `12.5 < customer.expected_overage_usd`), when the
    /// offer has each of them: for the offer, that form evaluates exactly as the clause does.
    pub(crate) fn share_for_offer(&mut self, rule: &mut CompiledRule, offer: &[Option<Value>]) {
        let ids: Box<[u32]> = rule
            .root()
            .clauses()
            .iter()
            .map(|clause| match for_offer(clause, offer) {
                Some(specialised) => self.intern(&specialised),
                None => self.intern(clause),
            })
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

    /// Per shared clause id, whether the clause reads the customer's attributes alone (not
    /// `now`, nor any other namespace): its result is the same for every decision about the
    /// customer until their profile changes.
    pub(crate) fn customer_only(&self) -> Vec<bool> {
        self.clauses
            .iter()
            .map(|clause| reads_only(clause, Namespace::Customer))
            .collect()
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

/// `clause` with the `offer.*` values it reads written in as constants, if it reads any and
/// `offer` has each as a number, string, instant or boolean (`None` otherwise: a missing value
/// is a fault only evaluation reports, and lists stay as they are).
fn for_offer(clause: &B, offer: &[Option<Value>]) -> Option<B> {
    let mut slots = Vec::new();
    slots_of(clause, &mut slots);
    if !slots.iter().any(|s| s.namespace == Namespace::Offer) {
        return None;
    }
    Constants(offer).b(clause)
}

/// Rewrites expressions with an offer's values in place of `offer.*` slots; `None` when a
/// value cannot be written in.
struct Constants<'a>(&'a [Option<Value>]);

impl Constants<'_> {
    fn value(&self, slot: SlotRef) -> Option<Option<&Value>> {
        if slot.namespace != Namespace::Offer {
            return None;
        }
        Some(self.0.get(usize::from(slot.index)).and_then(Option::as_ref))
    }

    fn boxed<X>(&self, x: &X, f: impl Fn(&Self, &X) -> Option<X>) -> Option<Box<X>> {
        f(self, x).map(Box::new)
    }

    fn b(&self, b: &B) -> Option<B> {
        Some(match b {
            B::Const(_) => b.clone(),
            B::Slot(slot) => match self.value(*slot) {
                None => b.clone(),
                Some(Some(Value::Bool(v))) => B::Const(*v),
                Some(_) => return None,
            },
            // Whether the offer has the value is known now.
            B::Has(slot) => match self.value(*slot) {
                None => b.clone(),
                Some(value) => B::Const(value.is_some()),
            },
            B::Not(x) => B::Not(self.boxed(&**x, Self::b)?),
            B::And(xs) => B::And(xs.iter().map(|x| self.b(x)).collect::<Option<_>>()?),
            B::Or(xs) => B::Or(xs.iter().map(|x| self.b(x)).collect::<Option<_>>()?),
            B::Num(cmp, x, y) => B::Num(*cmp, self.n(x)?, self.n(y)?),
            B::Str(cmp, x, y) => B::Str(*cmp, self.s(x)?, self.s(y)?),
            B::Bool(cmp, x, y) => {
                B::Bool(*cmp, self.boxed(&**x, Self::b)?, self.boxed(&**y, Self::b)?)
            }
            B::Time(cmp, x, y) => B::Time(*cmp, self.t(x)?, self.t(y)?),
            B::Dur(cmp, x, y) => B::Dur(*cmp, self.d(x)?, self.d(y)?),
            B::StrIn(x, list) => B::StrIn(self.s(x)?, self.l(list)?),
            B::NumIn(x, list) => B::NumIn(self.n(x)?, self.l(list)?),
            B::StrTest(test, x, y) => B::StrTest(*test, self.s(x)?, self.s(y)?),
            B::Cond(c, x, y) => B::Cond(
                self.boxed(&**c, Self::b)?,
                self.boxed(&**x, Self::b)?,
                self.boxed(&**y, Self::b)?,
            ),
        })
    }

    fn n(&self, n: &N) -> Option<N> {
        Some(match n {
            N::Const(_) => n.clone(),
            N::Slot(slot) => match self.value(*slot) {
                None => n.clone(),
                Some(Some(Value::Number(v))) => N::Const(*v),
                Some(_) => return None,
            },
            N::Arith(op, x, y) => {
                N::Arith(*op, self.boxed(&**x, Self::n)?, self.boxed(&**y, Self::n)?)
            }
            N::Neg(x) => N::Neg(self.boxed(&**x, Self::n)?),
            N::StrSize(x) => N::StrSize(self.s(x)?),
            N::ListSize(slot) => match self.value(*slot) {
                None => n.clone(),
                Some(_) => return None,
            },
            N::Cond(c, x, y) => N::Cond(
                self.boxed(&**c, Self::b)?,
                self.boxed(&**x, Self::n)?,
                self.boxed(&**y, Self::n)?,
            ),
        })
    }

    fn s(&self, s: &S) -> Option<S> {
        Some(match s {
            S::Const(_) => s.clone(),
            S::Slot(slot) => match self.value(*slot) {
                None => s.clone(),
                Some(Some(Value::String(v))) => S::Const(v.clone()),
                Some(_) => return None,
            },
            S::Cond(c, x, y) => S::Cond(
                self.boxed(&**c, Self::b)?,
                self.boxed(&**x, Self::s)?,
                self.boxed(&**y, Self::s)?,
            ),
        })
    }

    fn t(&self, t: &T) -> Option<T> {
        Some(match t {
            T::Const(_) | T::Now => t.clone(),
            T::Slot(slot) => match self.value(*slot) {
                None => t.clone(),
                Some(Some(Value::Timestamp(v))) => T::Const(v.timestamp_micros()),
                Some(_) => return None,
            },
            T::Shift(x, d, add) => {
                T::Shift(self.boxed(&**x, Self::t)?, self.boxed(&**d, Self::d)?, *add)
            }
        })
    }

    fn d(&self, d: &D) -> Option<D> {
        Some(match d {
            D::Const(_) => d.clone(),
            D::Between(x, y) => D::Between(self.boxed(&**x, Self::t)?, self.boxed(&**y, Self::t)?),
            D::Sum(x, y, add) => {
                D::Sum(self.boxed(&**x, Self::d)?, self.boxed(&**y, Self::d)?, *add)
            }
        })
    }

    fn l(&self, l: &L) -> Option<L> {
        match l {
            L::Slot(slot) if self.value(*slot).is_some() => None,
            _ => Some(l.clone()),
        }
    }
}

/// Tests of one operand against constants, split by comparison when the plan is built, so
/// evaluating them is a loop per comparison present, with no dispatch per test: per
/// comparison, (clause id, constant).
#[derive(Debug, Clone)]
struct ByCmp<X>(Box<[(Cmp, Tests<X>)]>);

/// Tests of one comparison: (clause id, constant).
type Tests<X> = Box<[(u32, X)]>;

impl<X: PartialOrd + Copy> ByCmp<X> {
    /// Records `value <op> constant` for every test.
    #[inline]
    fn eval(&self, value: X, out: &mut ClauseResults) {
        for (cmp, tests) in self.0.iter() {
            let tests = tests.iter();
            match cmp {
                Cmp::Eq => tests.for_each(|&(id, c)| out.set(id, value == c)),
                Cmp::Ne => tests.for_each(|&(id, c)| out.set(id, value != c)),
                Cmp::Lt => tests.for_each(|&(id, c)| out.set(id, value < c)),
                Cmp::Le => tests.for_each(|&(id, c)| out.set(id, value <= c)),
                Cmp::Gt => tests.for_each(|&(id, c)| out.set(id, value > c)),
                Cmp::Ge => tests.for_each(|&(id, c)| out.set(id, value >= c)),
            }
        }
    }

    fn ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.0
            .iter()
            .flat_map(|(_, tests)| tests.iter().map(|&(id, _)| id))
    }
}

/// One operand, read once per decision, and the tests of it.
#[derive(Debug, Clone)]
struct Group<O, T> {
    operand: O,
    tests: T,
}

/// The tests of a string operand. Equality and `in` tests name their constants by index into
/// the group's distinct constants: the operand is compared with each distinct constant once,
/// by [`TextKey`], and each test then compares indices.
#[derive(Debug, Clone)]
struct StrTests {
    constants: Box<[(TextKey, Text)]>,
    /// (clause id, constant index): `operand == constant`.
    eq: Box<[(u32, u32)]>,
    /// (clause id, constant index): `operand != constant`.
    ne: Box<[(u32, u32)]>,
    /// (clause id, constants as bits: bit `i` for constant `i`): `operand in [constants]`.
    within: Box<[(u32, u64)]>,
    /// The same for lists naming a constant beyond the 64th: (clause id, constant indices).
    within_wide: Box<[(u32, Box<[u32]>)]>,
    /// Order comparisons, rare in targeting: (clause id, comparison, constant).
    ordered: Box<[(u32, Cmp, Text)]>,
}

impl StrTests {
    #[inline]
    fn eval(&self, value: &str, out: &mut ClauseResults) {
        let key = TextKey::of(value);
        // Constants are distinct: at most one equals the value.
        let hit = self
            .constants
            .iter()
            .position(|(k, c)| key.same(value, *k, c))
            .and_then(|i| u32::try_from(i).ok())
            .unwrap_or(u32::MAX);
        for &(id, c) in self.eq.iter() {
            out.set(id, hit == c);
        }
        for &(id, c) in self.ne.iter() {
            out.set(id, hit != c);
        }
        let hit_bit = 1u64.checked_shl(hit).unwrap_or(0);
        for &(id, bits) in self.within.iter() {
            out.set(id, bits & hit_bit != 0);
        }
        for (id, items) in self.within_wide.iter() {
            out.set(*id, items.contains(&hit));
        }
        for (id, cmp, c) in self.ordered.iter() {
            out.set(*id, cmp.test(value, c.as_str()));
        }
    }

    fn ids(&self) -> impl Iterator<Item = u32> + '_ {
        let pairs = self.eq.iter().chain(self.ne.iter()).map(|&(id, _)| id);
        let within = self.within.iter().map(|(id, _)| *id);
        let within = within.chain(self.within_wide.iter().map(|(id, _)| *id));
        let ordered = self.ordered.iter().map(|(id, _, _)| *id);
        pairs.chain(within).chain(ordered)
    }
}

/// Shared clauses evaluated together, for one decision: those testing one operand against
/// constants read the operand once, then run through their tests grouped by comparison.
#[derive(Debug, Clone, Default)]
pub(crate) struct ClausePlan {
    num: Box<[Group<N, ByCmp<f64>>]>,
    str: Box<[Group<S, StrTests>]>,
    dur: Box<[Group<D, ByCmp<i64>>]>,
    time: Box<[Group<T, ByCmp<i64>>]>,
    /// Clauses of any other shape, evaluated one by one.
    one: Box<[(u32, B)]>,
    /// Clauses whose result the plan knows (constants compared, as an offer's rule gives
    /// when both sides are its own values): (clause id, result).
    fixed: Box<[(u32, bool)]>,
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

/// The tests of each operand while a plan is built, in the order operands first appear.
type Open<O, M> = Vec<(O, Vec<M>)>;

/// Adds `member` to the group of `operand`, opening one if needed.
fn join<O: PartialEq + Clone, M>(groups: &mut Open<O, M>, operand: &O, member: M) {
    match groups.iter_mut().find(|(o, _)| o == operand) {
        Some((_, members)) => members.push(member),
        None => groups.push((operand.clone(), vec![member])),
    }
}

/// A test of a string operand, while a plan is built.
enum StrCheck {
    Cmp(Cmp, Text),
    In(Box<[Text]>),
}

/// A clause comparing an operand with a constant: (clause id, comparison, constant).
type Test<X> = (u32, Cmp, X);

#[derive(Default)]
struct PlanBuilder {
    num: Open<N, Test<f64>>,
    str: Open<S, (u32, StrCheck)>,
    dur: Open<D, Test<i64>>,
    time: Open<T, Test<i64>>,
    one: Vec<(u32, B)>,
    fixed: Vec<(u32, bool)>,
}

/// Splits `tests` by comparison.
fn by_cmp<X: PartialOrd + Copy>(tests: Vec<Test<X>>) -> ByCmp<X> {
    let mut split: Vec<(Cmp, Vec<(u32, X)>)> = Vec::new();
    for (id, cmp, c) in tests {
        join(&mut split, &cmp, (id, c));
    }
    ByCmp(
        split
            .into_iter()
            .map(|(cmp, tests)| (cmp, tests.into_boxed_slice()))
            .collect(),
    )
}

/// Interns the constants of a string operand's tests and splits the tests by kind.
fn str_tests(tests: Vec<(u32, StrCheck)>) -> StrTests {
    let mut constants: Vec<(TextKey, Text)> = Vec::new();
    let mut intern = |c: Text| -> u32 {
        let i = constants
            .iter()
            .position(|(_, known)| *known == c)
            .unwrap_or_else(|| {
                constants.push((TextKey::of(c.as_str()), c));
                constants.len() - 1
            });
        u32::try_from(i).unwrap_or(u32::MAX)
    };
    let (mut eq, mut ne, mut within, mut within_wide, mut ordered) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (id, check) in tests {
        match check {
            StrCheck::Cmp(Cmp::Eq, c) => eq.push((id, intern(c))),
            StrCheck::Cmp(Cmp::Ne, c) => ne.push((id, intern(c))),
            StrCheck::Cmp(cmp, c) => ordered.push((id, cmp, c)),
            StrCheck::In(items) => {
                let items: Box<[u32]> = items.iter().map(|c| intern(c.clone())).collect();
                let bits = items
                    .iter()
                    .try_fold(0u64, |bits, &i| Some(bits | 1u64.checked_shl(i)?));
                match bits {
                    Some(bits) => within.push((id, bits)),
                    None => within_wide.push((id, items)),
                }
            }
        }
    }
    StrTests {
        constants: constants.into_boxed_slice(),
        eq: eq.into_boxed_slice(),
        ne: ne.into_boxed_slice(),
        within: within.into_boxed_slice(),
        within_wide: within_wide.into_boxed_slice(),
        ordered: ordered.into_boxed_slice(),
    }
}

fn groups<O, M, T>(open: Open<O, M>, tests: impl Fn(Vec<M>) -> T) -> Box<[Group<O, T>]> {
    open.into_iter()
        .map(|(operand, members)| Group {
            operand,
            tests: tests(members),
        })
        .collect()
}

impl PlanBuilder {
    fn add(&mut self, id: u32, clause: &B) {
        match clause {
            B::Const(holds) => self.fixed.push((id, *holds)),
            B::Num(cmp, N::Const(a), N::Const(b)) => self.fixed.push((id, cmp.test(a, b))),
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
            num: groups(self.num, by_cmp),
            str: groups(self.str, str_tests),
            dur: groups(self.dur, by_cmp),
            time: groups(self.time, by_cmp),
            one: self.one.into_boxed_slice(),
            fixed: self.fixed.into_boxed_slice(),
        }
    }
}

impl ClausePlan {
    /// Evaluates every clause of the plan into `results`. An operand that cannot be
    /// evaluated leaves every test of it undecided, with the operand's fault.
    pub(crate) fn eval(&self, env: &Env<'_>, results: &mut ClauseResults) {
        for group in self.num.iter() {
            match group.operand.eval(env) {
                Ok(value) => group.tests.eval(value, results),
                Err(fault) => results.fault_all(group.tests.ids(), fault),
            }
        }
        for group in self.str.iter() {
            match group.operand.eval(env) {
                Ok(value) => group.tests.eval(value, results),
                Err(fault) => results.fault_all(group.tests.ids(), fault),
            }
        }
        for group in self.dur.iter() {
            match group.operand.eval(env) {
                Ok(value) => group.tests.eval(value, results),
                Err(fault) => results.fault_all(group.tests.ids(), fault),
            }
        }
        for group in self.time.iter() {
            match group.operand.eval(env) {
                Ok(value) => group.tests.eval(value, results),
                Err(fault) => results.fault_all(group.tests.ids(), fault),
            }
        }
        for &(id, holds) in self.fixed.iter() {
            results.set(id, holds);
        }
        for (id, clause) in self.one.iter() {
            match clause.eval(env) {
                Ok(holds) => results.set(*id, holds),
                Err(fault) => results.fault(*id, fault),
            }
        }
    }
}

/// The results of a catalogue's shared clauses for one decision, by clause id.
#[derive(Debug, Clone, Default)]
pub(crate) struct ClauseResults {
    /// Per clause id, 1 if the clause holds, else 0.
    passes: Vec<u8>,
    /// (clause id, why it could not be decided), sorted by id, for the clauses that could not
    /// be: a few (a customer without some attribute the rules read), mostly none.
    faults: Vec<(u32, Fault)>,
}

impl ClauseResults {
    /// Room for `count` shared clauses. Until a plan fills them, every clause reads false.
    #[cfg(test)]
    pub(crate) fn new(count: usize) -> Self {
        let mut results = ClauseResults::default();
        results.reset(count);
        results
    }

    /// These results emptied, with room for `count` shared clauses, every clause reading
    /// false until a plan fills them (the allocations are kept, for the next decision).
    pub(crate) fn reset(&mut self, count: usize) {
        self.passes.clear();
        self.passes.resize(count, 0);
        self.faults.clear();
    }

    /// These results replaced by a copy of `other`'s (the allocations are kept).
    pub(crate) fn copy_from(&mut self, other: &ClauseResults) {
        self.passes.clone_from(&other.passes);
        self.faults.clone_from(&other.faults);
    }

    /// Asks the processor to fetch the results (a line in 64 clauses).
    pub(crate) fn prefetch(&self) {
        crate::prefetch::prefetch_lines(&self.passes);
        crate::prefetch::prefetch_lines(&self.faults);
    }

    /// The bytes these results hold on the heap.
    pub(crate) fn heap_bytes(&self) -> usize {
        std::mem::size_of_val(self.passes.as_slice())
            + std::mem::size_of_val(self.faults.as_slice())
    }

    /// Results saying clause `i` holds where `holds[i]` is true.
    #[cfg(test)]
    pub(crate) fn of(holds: &[bool]) -> Self {
        let mut results = ClauseResults::new(holds.len());
        for (id, &h) in (0..).zip(holds) {
            results.set(id, h);
        }
        results
    }

    /// Records that clause `id` holds or not.
    #[inline(always)]
    fn set(&mut self, id: u32, holds: bool) {
        if let Some(slot) = self.passes.get_mut(id as usize) {
            *slot = u8::from(holds);
        }
    }

    /// Records that clause `id` could not be decided.
    #[cold]
    fn fault(&mut self, id: u32, fault: Fault) {
        self.set(id, false);
        // Ids mostly come in ascending order: mostly an append, seen at the end.
        if self.faults.last().is_none_or(|&(last, _)| last < id) {
            self.faults.push((id, fault));
            return;
        }
        match self.faults.binary_search_by_key(&id, |&(i, _)| i) {
            Ok(at) => {
                if let Some(slot) = self.faults.get_mut(at) {
                    slot.1 = fault;
                }
            }
            Err(at) => self.faults.insert(at, (id, fault)),
        }
    }

    #[cold]
    fn fault_all(&mut self, ids: impl Iterator<Item = u32>, fault: Fault) {
        for id in ids {
            self.fault(id, fault);
        }
    }

    /// 1 if clause `id` holds, else 0 (also when it could not be decided).
    #[inline(always)]
    pub(crate) fn passes(&self, id: u32) -> u8 {
        self.passes.get(id as usize).copied().unwrap_or(0)
    }

    /// The result of shared clause `id`.
    #[inline]
    pub(crate) fn get(&self, id: u32) -> Result<bool, Fault> {
        if self.passes(id) == 1 {
            return Ok(true);
        }
        match self.faults.binary_search_by_key(&id, |&(i, _)| i) {
            Ok(at) => self
                .faults
                .get(at)
                .map_or(Ok(false), |&(_, fault)| Err(fault)),
            Err(_) => Ok(false),
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::{Namespace, SlotRef};

    /// Faults recorded out of id order, one twice: each faulted clause reads its (last) fault,
    /// every other clause its result.
    #[test]
    fn faults_in_any_order_read_back_by_clause() {
        let missing = |index| {
            Fault::Missing(SlotRef {
                namespace: Namespace::Customer,
                index,
            })
        };
        let mut results = ClauseResults::new(12);
        results.set(0, true);
        results.set(3, true);
        for (id, index) in [(5, 1), (2, 2), (9, 3), (2, 4), (11, 5), (7, 6)] {
            results.fault(id, missing(index));
        }
        let read: Vec<Result<bool, Fault>> = (0..12).map(|id| results.get(id)).collect();
        let mut expected = vec![Ok(false); 12];
        expected[0] = Ok(true);
        expected[3] = Ok(true);
        for (id, index) in [(5, 1), (2, 4), (9, 3), (11, 5), (7, 6)] {
            expected[id] = Err(missing(index));
        }
        assert_eq!(read, expected);
        assert_eq!(
            results.verdict(&[0, 2, 3]),
            Verdict::Undecided {
                clause: 1,
                fault: missing(4)
            }
        );
    }
}
