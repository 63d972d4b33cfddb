//! The compiled form of a rule and its evaluation: typed trees over slots, no allocation.

use super::vocabulary::{Env, Namespace, Scalar, SlotRef, Vocabulary};
use crate::model::{Text, Value};
use std::fmt;

/// Why a rule could not be decided true: the value it needed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The value in this slot is missing (or not of its declared type).
    Missing(SlotRef),
    /// A division or modulo by zero.
    DivisionByZero,
}

/// The outcome of evaluating a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The rule holds.
    True,
    /// Clause `clause` of the rule's top-level `&&` is false (a rule without `&&` has one
    /// clause, 0).
    False {
        /// Index of the false clause.
        clause: u16,
    },
    /// No clause is false, but clause `clause` could not be evaluated; the rule counts as false.
    Undecided {
        /// Index of the clause.
        clause: u16,
        /// What it lacked.
        fault: Fault,
    },
}

impl Verdict {
    /// Whether the rule holds.
    #[inline]
    pub fn holds(self) -> bool {
        matches!(self, Verdict::True)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cmp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Cmp {
    #[inline]
    pub(crate) fn test<T: PartialOrd + ?Sized>(self, a: &T, b: &T) -> bool {
        match self {
            Cmp::Eq => a == b,
            Cmp::Ne => a != b,
            Cmp::Lt => a < b,
            Cmp::Le => a <= b,
            Cmp::Gt => a > b,
            Cmp::Ge => a >= b,
        }
    }

    pub(crate) fn symbol(self) -> &'static str {
        match self {
            Cmp::Eq => "==",
            Cmp::Ne => "!=",
            Cmp::Lt => "<",
            Cmp::Le => "<=",
            Cmp::Gt => ">",
            Cmp::Ge => ">=",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Arith {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
}

impl Arith {
    fn symbol(self) -> &'static str {
        match self {
            Arith::Add => "+",
            Arith::Sub => "-",
            Arith::Mul => "*",
            Arith::Div => "/",
            Arith::Rem => "%",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StrTest {
    StartsWith,
    EndsWith,
    Contains,
}

impl StrTest {
    fn name(self) -> &'static str {
        match self {
            StrTest::StartsWith => "startsWith",
            StrTest::EndsWith => "endsWith",
            StrTest::Contains => "contains",
        }
    }
}

/// A boolean expression.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum B {
    Const(bool),
    Slot(SlotRef),
    Not(Box<B>),
    And(Box<[B]>),
    Or(Box<[B]>),
    Num(Cmp, N, N),
    Str(Cmp, S, S),
    Bool(Cmp, Box<B>, Box<B>),
    Time(Cmp, T, T),
    Dur(Cmp, D, D),
    StrIn(S, L),
    NumIn(N, L),
    StrTest(StrTest, S, S),
    Has(SlotRef),
    Cond(Box<B>, Box<B>, Box<B>),
}

/// A numeric expression.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum N {
    Const(f64),
    Slot(SlotRef),
    Arith(Arith, Box<N>, Box<N>),
    Neg(Box<N>),
    StrSize(S),
    ListSize(SlotRef),
    Cond(Box<B>, Box<N>, Box<N>),
}

/// A string expression.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum S {
    Const(Text),
    Slot(SlotRef),
    Cond(Box<B>, Box<S>, Box<S>),
}

/// An instant, in microseconds since the epoch.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum T {
    Const(i64),
    Slot(SlotRef),
    Now,
    /// `t + d` (or `t - d` with a negated duration).
    Shift(Box<T>, Box<D>, bool),
}

/// A duration, in microseconds.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum D {
    Const(i64),
    Between(Box<T>, Box<T>),
    Sum(Box<D>, Box<D>, bool),
}

/// A list: constant strings or numbers, or a list-valued slot.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum L {
    Strs(Box<[Text]>),
    Nums(Box<[f64]>),
    Slot(SlotRef),
}

type Eval<X> = Result<X, Fault>;

/// The number in `slot`.
#[inline]
fn num(env: &Env<'_>, slot: SlotRef) -> Eval<f64> {
    match env.get(slot) {
        Some(Scalar::Num(n)) => Ok(n),
        _ => Err(Fault::Missing(slot)),
    }
}

/// The string in `slot`.
#[inline]
fn string<'e>(env: &Env<'e>, slot: SlotRef) -> Eval<&'e str> {
    match env.get(slot) {
        Some(Scalar::Str(s)) => Ok(s),
        _ => Err(Fault::Missing(slot)),
    }
}

impl B {
    pub(crate) fn eval(&self, env: &Env<'_>) -> Eval<bool> {
        Ok(match self {
            B::Const(b) => *b,
            B::Slot(slot) => match env.get(*slot) {
                Some(Scalar::Bool(b)) => b,
                _ => return Err(Fault::Missing(*slot)),
            },
            B::Not(b) => !b.eval(env)?,
            // CEL's commutative logic: a false term decides `&&` whatever else is missing.
            B::And(terms) => {
                let mut fault = None;
                for term in terms.iter() {
                    match term.eval(env) {
                        Ok(true) => {}
                        Ok(false) => return Ok(false),
                        Err(f) => fault = fault.or(Some(f)),
                    }
                }
                match fault {
                    Some(f) => return Err(f),
                    None => true,
                }
            }
            B::Or(terms) => {
                let mut fault = None;
                for term in terms.iter() {
                    match term.eval(env) {
                        Ok(true) => return Ok(true),
                        Ok(false) => {}
                        Err(f) => fault = fault.or(Some(f)),
                    }
                }
                match fault {
                    Some(f) => return Err(f),
                    None => false,
                }
            }
            // The common `slot <op> constant` shapes read the slot directly instead of
            // recursing into both operands.
            B::Num(cmp, N::Slot(slot), N::Const(c)) => cmp.test(&num(env, *slot)?, c),
            B::Num(cmp, a, b) => cmp.test(&a.eval(env)?, &b.eval(env)?),
            B::Str(cmp, S::Slot(slot), S::Const(c)) => cmp.test(string(env, *slot)?, c.as_str()),
            B::Str(cmp, a, b) => cmp.test(a.eval(env)?, b.eval(env)?),
            B::Bool(cmp, a, b) => cmp.test(&a.eval(env)?, &b.eval(env)?),
            B::Time(cmp, a, b) => cmp.test(&a.eval(env)?, &b.eval(env)?),
            B::Dur(cmp, a, b) => cmp.test(&a.eval(env)?, &b.eval(env)?),
            B::StrIn(s, list) => {
                let s = s.eval(env)?;
                match list {
                    L::Strs(items) => items.iter().any(|i| i.as_str() == s),
                    L::Nums(_) => false,
                    L::Slot(slot) => match env.get(*slot) {
                        Some(Scalar::List(items)) => items
                            .iter()
                            .any(|v| matches!(v, Value::String(i) if i.as_str() == s)),
                        _ => return Err(Fault::Missing(*slot)),
                    },
                }
            }
            B::NumIn(n, list) => {
                let n = n.eval(env)?;
                match list {
                    L::Nums(items) => items.contains(&n),
                    L::Strs(_) => false,
                    L::Slot(slot) => match env.get(*slot) {
                        Some(Scalar::List(items)) => items
                            .iter()
                            .any(|v| matches!(v, Value::Number(i) if *i == n)),
                        _ => return Err(Fault::Missing(*slot)),
                    },
                }
            }
            B::StrTest(test, a, b) => {
                let (a, b) = (a.eval(env)?, b.eval(env)?);
                match test {
                    StrTest::StartsWith => a.starts_with(b),
                    StrTest::EndsWith => a.ends_with(b),
                    StrTest::Contains => a.contains(b),
                }
            }
            B::Has(slot) => env.get(*slot).is_some(),
            B::Cond(c, a, b) => {
                if c.eval(env)? {
                    a.eval(env)?
                } else {
                    b.eval(env)?
                }
            }
        })
    }

    /// The terms of a top-level `&&`, or the rule itself as one clause.
    pub(crate) fn clauses(&self) -> &[B] {
        match self {
            B::And(terms) => terms,
            other => std::slice::from_ref(other),
        }
    }
}

impl N {
    pub(crate) fn eval(&self, env: &Env<'_>) -> Eval<f64> {
        Ok(match self {
            N::Const(n) => *n,
            N::Slot(slot) => num(env, *slot)?,
            N::Arith(op, a, b) => {
                let (a, b) = (a.eval(env)?, b.eval(env)?);
                match op {
                    Arith::Add => a + b,
                    Arith::Sub => a - b,
                    Arith::Mul => a * b,
                    Arith::Div if b == 0.0 => return Err(Fault::DivisionByZero),
                    Arith::Div => a / b,
                    Arith::Rem if b == 0.0 => return Err(Fault::DivisionByZero),
                    Arith::Rem => a % b,
                }
            }
            N::Neg(a) => -a.eval(env)?,
            N::StrSize(s) => s.eval(env)?.chars().count() as f64,
            N::ListSize(slot) => match env.get(*slot) {
                Some(Scalar::List(items)) => items.len() as f64,
                _ => return Err(Fault::Missing(*slot)),
            },
            N::Cond(c, a, b) => {
                if c.eval(env)? {
                    a.eval(env)?
                } else {
                    b.eval(env)?
                }
            }
        })
    }
}

impl S {
    pub(crate) fn eval<'e>(&'e self, env: &Env<'e>) -> Eval<&'e str> {
        Ok(match self {
            S::Const(s) => s.as_str(),
            S::Slot(slot) => string(env, *slot)?,
            S::Cond(c, a, b) => {
                if c.eval(env)? {
                    a.eval(env)?
                } else {
                    b.eval(env)?
                }
            }
        })
    }
}

impl T {
    pub(crate) fn eval(&self, env: &Env<'_>) -> Eval<i64> {
        Ok(match self {
            T::Const(t) => *t,
            T::Slot(slot) => match env.get(*slot) {
                Some(Scalar::Time(t)) => t,
                _ => return Err(Fault::Missing(*slot)),
            },
            T::Now => env.now,
            T::Shift(t, d, add) => {
                let (t, d) = (t.eval(env)?, d.eval(env)?);
                if *add {
                    t.saturating_add(d)
                } else {
                    t.saturating_sub(d)
                }
            }
        })
    }
}

impl D {
    pub(crate) fn eval(&self, env: &Env<'_>) -> Eval<i64> {
        Ok(match self {
            D::Const(d) => *d,
            D::Between(a, b) => a.eval(env)?.saturating_sub(b.eval(env)?),
            D::Sum(a, b, add) => {
                let (a, b) = (a.eval(env)?, b.eval(env)?);
                if *add {
                    a.saturating_add(b)
                } else {
                    a.saturating_sub(b)
                }
            }
        })
    }
}

/// Prints compiled expressions back as CEL text, with the vocabulary's names.
pub(crate) struct Show<'a, X>(pub(crate) &'a X, pub(crate) &'a Vocabulary);

impl fmt::Display for Show<'_, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = self.1;
        match self.0 {
            B::Const(b) => write!(f, "{b}"),
            B::Slot(s) => f.write_str(&v.slot_name(*s)),
            B::Not(b) => write!(f, "!{}", Paren(b, v)),
            B::And(terms) | B::Or(terms) => {
                let op = if matches!(self.0, B::And(_)) {
                    " && "
                } else {
                    " || "
                };
                for (i, t) in terms.iter().enumerate() {
                    if i > 0 {
                        f.write_str(op)?;
                    }
                    write!(f, "{}", Paren(t, v))?;
                }
                Ok(())
            }
            B::Num(c, a, b) => write!(f, "{} {} {}", Show(a, v), c.symbol(), Show(b, v)),
            B::Str(c, a, b) => write!(f, "{} {} {}", Show(a, v), c.symbol(), Show(b, v)),
            B::Bool(c, a, b) => write!(f, "{} {} {}", Paren(a, v), c.symbol(), Paren(b, v)),
            B::Time(c, a, b) => write!(f, "{} {} {}", Show(a, v), c.symbol(), Show(b, v)),
            B::Dur(c, a, b) => write!(f, "{} {} {}", Show(a, v), c.symbol(), Show(b, v)),
            B::StrIn(s, l) => write!(f, "{} in {}", Show(s, v), Show(l, v)),
            B::NumIn(n, l) => write!(f, "{} in {}", Show(n, v), Show(l, v)),
            B::StrTest(t, a, b) => write!(f, "{}.{}({})", Show(a, v), t.name(), Show(b, v)),
            B::Has(s) => write!(f, "has({})", v.slot_name(*s)),
            B::Cond(c, a, b) => {
                write!(f, "{} ? {} : {}", Paren(c, v), Show(&**a, v), Show(&**b, v))
            }
        }
    }
}

/// A boolean operand, parenthesised when it is itself an `&&`, `||` or conditional.
struct Paren<'a>(&'a B, &'a Vocabulary);

impl fmt::Display for Paren<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            B::And(_) | B::Or(_) | B::Cond(..) => write!(f, "({})", Show(self.0, self.1)),
            other => write!(f, "{}", Show(other, self.1)),
        }
    }
}

impl fmt::Display for Show<'_, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = self.1;
        match self.0 {
            N::Const(n) => write!(f, "{n}"),
            N::Slot(s) => f.write_str(&v.slot_name(*s)),
            N::Arith(op, a, b) => {
                write!(f, "({} {} {})", Show(&**a, v), op.symbol(), Show(&**b, v))
            }
            N::Neg(a) => write!(f, "-{}", Show(&**a, v)),
            N::StrSize(s) => write!(f, "size({})", Show(s, v)),
            N::ListSize(s) => write!(f, "size({})", v.slot_name(*s)),
            N::Cond(c, a, b) => write!(
                f,
                "({} ? {} : {})",
                Paren(c, v),
                Show(&**a, v),
                Show(&**b, v)
            ),
        }
    }
}

impl fmt::Display for Show<'_, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            S::Const(s) => write!(f, "{:?}", s.as_str()),
            S::Slot(s) => f.write_str(&self.1.slot_name(*s)),
            S::Cond(c, a, b) => write!(
                f,
                "({} ? {} : {})",
                Paren(c, self.1),
                Show(&**a, self.1),
                Show(&**b, self.1)
            ),
        }
    }
}

impl fmt::Display for Show<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            T::Const(t) => write!(
                f,
                "timestamp(\"{}\")",
                Scalar::Time(*t).to_string().trim_matches('"')
            ),
            T::Slot(s) => f.write_str(&self.1.slot_name(*s)),
            T::Now => f.write_str("now"),
            T::Shift(t, d, add) => {
                write!(
                    f,
                    "{} {} {}",
                    Show(&**t, self.1),
                    if *add { "+" } else { "-" },
                    Show(&**d, self.1)
                )
            }
        }
    }
}

impl fmt::Display for Show<'_, D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            D::Const(d) => {
                let span = crate::model::Span::from(chrono::TimeDelta::microseconds(*d));
                write!(f, "duration(\"{span}\")")
            }
            D::Between(a, b) => write!(f, "({} - {})", Show(&**a, self.1), Show(&**b, self.1)),
            D::Sum(a, b, add) => {
                write!(
                    f,
                    "({} {} {})",
                    Show(&**a, self.1),
                    if *add { "+" } else { "-" },
                    Show(&**b, self.1)
                )
            }
        }
    }
}

impl fmt::Display for Show<'_, L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            L::Strs(items) => {
                let items: Vec<String> =
                    items.iter().map(|s| format!("{:?}", s.as_str())).collect();
                write!(f, "[{}]", items.join(", "))
            }
            L::Nums(items) => {
                let items: Vec<String> = items.iter().map(f64::to_string).collect();
                write!(f, "[{}]", items.join(", "))
            }
            L::Slot(s) => f.write_str(&self.1.slot_name(*s)),
        }
    }
}

/// The slots an expression reads, in first-use order, without repeats.
pub(crate) fn slots_of(b: &B, out: &mut Vec<SlotRef>) {
    leaves(b, &mut |leaf| {
        if let Some(slot) = leaf
            && !out.contains(&slot)
        {
            out.push(slot);
        }
    });
}

/// Whether an expression reads nothing but slots of `namespace` (not `now`).
pub(crate) fn reads_only(b: &B, namespace: Namespace) -> bool {
    let mut only = true;
    leaves(b, &mut |leaf| {
        only &= leaf.is_some_and(|slot| slot.namespace == namespace);
    });
    only
}

/// Calls `f` with every slot an expression reads, in order (repeats included), and with
/// `None` wherever it reads `now`.
fn leaves(b: &B, f: &mut dyn FnMut(Option<SlotRef>)) {
    fn n(x: &N, f: &mut dyn FnMut(Option<SlotRef>)) {
        match x {
            N::Const(_) => {}
            N::Slot(slot) | N::ListSize(slot) => f(Some(*slot)),
            N::Arith(_, a, b) => {
                n(a, f);
                n(b, f);
            }
            N::Neg(a) => n(a, f),
            N::StrSize(x) => s(x, f),
            N::Cond(c, a, b) => {
                leaves(c, f);
                n(a, f);
                n(b, f);
            }
        }
    }
    fn s(x: &S, f: &mut dyn FnMut(Option<SlotRef>)) {
        match x {
            S::Const(_) => {}
            S::Slot(slot) => f(Some(*slot)),
            S::Cond(c, a, b) => {
                leaves(c, f);
                s(a, f);
                s(b, f);
            }
        }
    }
    fn t(x: &T, f: &mut dyn FnMut(Option<SlotRef>)) {
        match x {
            T::Const(_) => {}
            T::Now => f(None),
            T::Slot(slot) => f(Some(*slot)),
            T::Shift(a, b, _) => {
                t(a, f);
                d(b, f);
            }
        }
    }
    fn d(x: &D, f: &mut dyn FnMut(Option<SlotRef>)) {
        match x {
            D::Const(_) => {}
            D::Between(a, b) => {
                t(a, f);
                t(b, f);
            }
            D::Sum(a, b, _) => {
                d(a, f);
                d(b, f);
            }
        }
    }
    fn l(x: &L, f: &mut dyn FnMut(Option<SlotRef>)) {
        if let L::Slot(slot) = x {
            f(Some(*slot));
        }
    }
    match b {
        B::Const(_) => {}
        B::Slot(slot) | B::Has(slot) => f(Some(*slot)),
        B::Not(x) => leaves(x, f),
        B::And(xs) | B::Or(xs) => xs.iter().for_each(|x| leaves(x, f)),
        B::Num(_, a, b2) => {
            n(a, f);
            n(b2, f);
        }
        B::Str(_, a, b2) | B::StrTest(_, a, b2) => {
            s(a, f);
            s(b2, f);
        }
        B::Bool(_, a, b2) => {
            leaves(a, f);
            leaves(b2, f);
        }
        B::Time(_, a, b2) => {
            t(a, f);
            t(b2, f);
        }
        B::Dur(_, a, b2) => {
            d(a, f);
            d(b2, f);
        }
        B::StrIn(a, list) => {
            s(a, f);
            l(list, f);
        }
        B::NumIn(a, list) => {
            n(a, f);
            l(list, f);
        }
        B::Cond(c, a, b2) => {
            leaves(c, f);
            leaves(a, f);
            leaves(b2, f);
        }
    }
}
