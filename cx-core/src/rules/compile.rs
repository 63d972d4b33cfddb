//! From CEL text to a typed tree over slots: parse with the `cel` crate, resolve every name
//! against the vocabulary, check every operator's types, and report the first problem with the
//! definition it belongs to and its position.

use super::eval::{Arith, B, Cmp, D, Fault, L, N, S, Show, StrTest, T, Verdict, slots_of};
use super::shared::{ClauseResults, UNSHARED};
use super::vocabulary::{Env, Namespace, SlotRef, Vocabulary};
use crate::error::{Error, Position, Result};
use crate::model::{Span, Text, ValueType};
use cel::common::ast::{CallExpr, Expr, IdedExpr, LiteralValue, SourceInfo};
use std::fmt::Write as _;
use std::sync::Arc;

/// A compiled rule: evaluate it with [`CompiledRule::eval`] against an [`Env`].
#[derive(Debug, Clone)]
pub struct CompiledRule {
    text: Arc<str>,
    root: B,
    /// For each clause of the top-level `&&`, the slots it reads (for explanations).
    clause_slots: Box<[Box<[SlotRef]>]>,
    /// For each clause, its id among the catalogue's shared clauses, or [`UNSHARED`]; empty
    /// until the catalogue interns the rule's clauses.
    shared: Box<[u32]>,
    vocabulary: Arc<Vocabulary>,
    /// Whether the rule reads `now` (its verdict on the same values can change with the
    /// instant).
    reads_now: bool,
}

impl PartialEq for CompiledRule {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text && self.root == other.root
    }
}

/// Compiles `text` against `vocabulary`, allowing names from the `allowed` namespaces only.
/// `item` names the definition the rule belongs to in errors (`offer "upgrade" eligibility`).
pub fn compile_rule(
    text: &str,
    vocabulary: &Arc<Vocabulary>,
    allowed: &[Namespace],
    item: &str,
) -> Result<CompiledRule> {
    let (ast, info) = cel::parser::Parser::new()
        .parse_with_source_info(text)
        .map_err(|errors| {
            let first = errors.errors.first();
            Error::InvalidRule {
                item: item.to_owned(),
                position: first.map_or_else(Position::default, |e| Position {
                    line: u32::try_from(e.pos.0.max(1)).unwrap_or(1),
                    column: u32::try_from(e.pos.1.max(0) + 1).unwrap_or(1),
                }),
                message: first.map_or_else(|| "does not parse".to_owned(), |e| e.msg.clone()),
            }
        })?;
    let compiler = Compiler {
        vocabulary,
        allowed,
        item,
        text,
        info: &info,
        reads_now: std::cell::Cell::new(false),
    };
    let root = match compiler.expr(&ast)? {
        X::B(b) => flatten(b),
        other => {
            return Err(compiler.error(
                ast.id,
                format!(
                    "a rule must be true or false, but this one is a {}",
                    other.type_name()
                ),
            ));
        }
    };
    let clause_slots = root
        .clauses()
        .iter()
        .map(|clause| {
            let mut slots = Vec::new();
            slots_of(clause, &mut slots);
            slots.into_boxed_slice()
        })
        .collect();
    Ok(CompiledRule {
        text: Arc::from(text),
        root,
        clause_slots,
        shared: Box::default(),
        vocabulary: Arc::clone(vocabulary),
        reads_now: compiler.reads_now.get(),
    })
}

impl CompiledRule {
    /// Evaluates the rule. Never fails: a missing value makes it [`Verdict::Undecided`], which
    /// counts as false.
    #[inline]
    pub fn eval(&self, env: &Env<'_>) -> Verdict {
        self.verdict(|_, clause| clause.eval(env))
    }

    /// Evaluates the rule as [`CompiledRule::eval`] does, reading the results of its shared
    /// clauses from `shared` (filled by the decision's [`ClausePlan`](super::ClausePlan), which
    /// must cover them). Same verdict, less work when many rules of one decision share clauses.
    #[inline]
    pub(crate) fn eval_shared(&self, env: &Env<'_>, shared: &ClauseResults) -> Verdict {
        self.verdict(|i, clause| match self.shared.get(i) {
            Some(&id) if id != UNSHARED => shared.get(id),
            _ => clause.eval(env),
        })
    }

    /// Whether the rule reads `now`: if not, its verdict depends on the values it reads alone.
    pub(crate) fn reads_now(&self) -> bool {
        self.reads_now
    }

    /// The shared-clause ids of the rule's clauses ([`UNSHARED`] for the others).
    pub(crate) fn shared_ids(&self) -> &[u32] {
        &self.shared
    }

    /// The verdict from each clause's result, in order: the first false clause decides;
    /// otherwise the first undecided one; otherwise the rule holds.
    #[inline]
    fn verdict(&self, mut clause_result: impl FnMut(usize, &B) -> Result<bool, Fault>) -> Verdict {
        let mut undecided = None;
        for (i, clause) in self.root.clauses().iter().enumerate() {
            let clause_index = u16::try_from(i).unwrap_or(u16::MAX);
            match clause_result(i, clause) {
                Ok(true) => {}
                Ok(false) => {
                    return Verdict::False {
                        clause: clause_index,
                    };
                }
                Err(fault) => {
                    undecided = undecided.or(Some(Verdict::Undecided {
                        clause: clause_index,
                        fault,
                    }));
                }
            }
        }
        undecided.unwrap_or(Verdict::True)
    }

    /// The compiled tree.
    pub(crate) fn root(&self) -> &B {
        &self.root
    }

    /// Records the shared-clause ids of the rule's clauses (see [`super::shared`]).
    pub(crate) fn set_shared(&mut self, ids: Box<[u32]>) {
        self.shared = ids;
    }

    /// Whether the rule is one value read as is (`touchpoint.roaming`): true exactly when that
    /// boolean is present and true.
    pub(crate) fn is_one_slot(&self) -> bool {
        matches!(self.root, B::Slot(_))
    }

    /// The rule's source text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// How many clauses the top-level `&&` has (1 for a rule without one).
    pub fn clause_count(&self) -> usize {
        self.clause_slots.len()
    }

    /// Clause `clause`, printed back as CEL.
    pub fn clause_text(&self, clause: u16) -> String {
        self.root
            .clauses()
            .get(usize::from(clause))
            .map(|c| Show(c, &self.vocabulary).to_string())
            .unwrap_or_default()
    }

    /// The slots clause `clause` reads.
    pub fn clause_slots(&self, clause: u16) -> &[SlotRef] {
        self.clause_slots
            .get(usize::from(clause))
            .map_or(&[], |s| s)
    }

    /// Every slot the rule reads.
    pub fn slots(&self) -> impl Iterator<Item = SlotRef> + '_ {
        self.clause_slots.iter().flat_map(|s| s.iter().copied())
    }

    /// One sentence on why the rule did not hold: the clause, and the values it read (values for
    /// which `redact` says true are printed as `<redacted>`).
    pub fn explain(
        &self,
        verdict: Verdict,
        env: &Env<'_>,
        redact: impl Fn(SlotRef) -> bool,
    ) -> String {
        let (clause, lead) = match verdict {
            Verdict::True => return format!("`{}` holds", self.text),
            Verdict::False { clause } => (clause, "is false"),
            Verdict::Undecided { clause, fault } => {
                let lead = match fault {
                    super::Fault::Missing(slot) => {
                        return format!(
                            "`{}` could not be decided: {} is missing",
                            self.clause_text(clause),
                            self.vocabulary.slot_name(slot)
                        );
                    }
                    super::Fault::DivisionByZero => "divides by zero",
                };
                (clause, lead)
            }
        };
        let mut out = format!("`{}` {lead}", self.clause_text(clause));
        let slots = self.clause_slots(clause);
        for (i, slot) in slots.iter().enumerate() {
            out.push_str(if i == 0 { " (" } else { ", " });
            let name = self.vocabulary.slot_name(*slot);
            let _ = match env.get(*slot) {
                _ if redact(*slot) => write!(out, "{name} = <redacted>"),
                Some(value) => write!(out, "{name} = {value}"),
                None => write!(out, "{name} is missing"),
            };
        }
        if !slots.is_empty() {
            out.push(')');
        }
        out
    }
}

/// A typed expression while compiling.
enum X {
    B(B),
    N(N),
    S(S),
    T(T),
    D(D),
    L(L),
}

impl X {
    fn type_name(&self) -> &'static str {
        match self {
            X::B(_) => "bool",
            X::N(_) => "number",
            X::S(_) => "string",
            X::T(_) => "timestamp",
            X::D(_) => "duration",
            X::L(_) => "list",
        }
    }
}

struct Compiler<'a> {
    vocabulary: &'a Vocabulary,
    allowed: &'a [Namespace],
    item: &'a str,
    text: &'a str,
    info: &'a SourceInfo,
    /// Set when `now` is compiled.
    reads_now: std::cell::Cell<bool>,
}

impl Compiler<'_> {
    fn error(&self, id: u64, message: impl Into<String>) -> Error {
        Error::InvalidRule {
            item: self.item.to_owned(),
            position: self.position(id),
            message: message.into(),
        }
    }

    fn position(&self, id: u64) -> Position {
        let Some((start, _)) = self.info.offset_for(id) else {
            return Position::default();
        };
        let (mut line, mut column) = (1u32, 1u32);
        for c in self
            .text
            .chars()
            .take(usize::try_from(start).unwrap_or(usize::MAX))
        {
            if c == '\n' {
                line += 1;
                column = 1;
            } else {
                column += 1;
            }
        }
        Position { line, column }
    }

    fn expr(&self, e: &IdedExpr) -> Result<X> {
        match &e.expr {
            Expr::Literal(lit) => self.literal(e.id, lit),
            Expr::Ident(name) => match name.as_str() {
                "now" => {
                    self.reads_now.set(true);
                    Ok(X::T(T::Now))
                }
                other if Vocabulary::namespace(other).is_some() => Err(self.error(
                    e.id,
                    format!(
                        "`{other}` is a namespace: name one of its fields, as in `{other}.<name>`"
                    ),
                )),
                other => Err(self.error(
                    e.id,
                    format!(
                        "unknown name `{other}`: rules read customer.*, context.*, offer.*, \
                         features.*, touchpoint.* and now"
                    ),
                )),
            },
            Expr::Select(select) => {
                let slot = self.slot(e.id, &select.operand, &select.field)?;
                if select.test {
                    return Ok(X::B(B::Has(slot.0)));
                }
                Ok(match slot.1 {
                    ValueType::String => X::S(S::Slot(slot.0)),
                    ValueType::Number => X::N(N::Slot(slot.0)),
                    ValueType::Bool => X::B(B::Slot(slot.0)),
                    ValueType::Timestamp => X::T(T::Slot(slot.0)),
                    ValueType::List => X::L(L::Slot(slot.0)),
                })
            }
            Expr::List(list) => self.list(e.id, &list.elements),
            Expr::Call(call) => self.call(e.id, call),
            Expr::Comprehension(_) => Err(self.error(
                e.id,
                "macros such as all(), exists(), map() and filter() are not supported",
            )),
            Expr::Map(_) | Expr::Struct(_) => {
                Err(self.error(e.id, "map and message literals are not supported"))
            }
            Expr::Unspecified => Err(self.error(e.id, "empty expression")),
        }
    }

    fn literal(&self, id: u64, lit: &LiteralValue) -> Result<X> {
        Ok(match lit {
            LiteralValue::Boolean(b) => X::B(B::Const(*b.inner())),
            LiteralValue::Int(i) => X::N(N::Const(*i.inner() as f64)),
            LiteralValue::UInt(u) => X::N(N::Const(*u.inner() as f64)),
            LiteralValue::Double(d) => X::N(N::Const(*d.inner())),
            LiteralValue::String(s) => X::S(S::Const(Text::from(s.inner()))),
            LiteralValue::Null => return Err(self.error(id, "null is not supported: use has(...)")),
            LiteralValue::Bytes(_) => return Err(self.error(id, "bytes are not supported")),
        })
    }

    /// Resolves `prefix.field` to a slot and its type.
    fn slot(&self, id: u64, operand: &IdedExpr, field: &str) -> Result<(SlotRef, ValueType)> {
        let Expr::Ident(prefix) = &operand.expr else {
            return Err(self.error(
                id,
                format!("`.{field}` selects from something that is not a namespace; rules read `customer.<name>`, `features.<id>`..."),
            ));
        };
        let namespace = Vocabulary::namespace(prefix).ok_or_else(|| {
            self.error(operand.id, format!("unknown namespace `{prefix}`: rules read customer.*, context.*, offer.*, features.*, segments.* and touchpoint.*"))
        })?;
        if !self.allowed.contains(&namespace) {
            let allowed: Vec<String> = self
                .allowed
                .iter()
                .map(|n| format!("{}.*", n.prefix()))
                .collect();
            return Err(self.error(
                id,
                format!(
                    "`{prefix}.{field}` is not available here; this rule may read {}",
                    allowed.join(", ")
                ),
            ));
        }
        let table = self.vocabulary.table(namespace);
        let (index, ty) = table.lookup(field).ok_or_else(|| {
            let known: Vec<&str> = table.iter().map(|(n, _)| n.as_str()).take(12).collect();
            let known = if known.is_empty() {
                format!("none is declared in `{prefix}`")
            } else {
                format!("known: {}", known.join(", "))
            };
            // Point at the start of the name, not at the field.
            self.error(
                operand.id,
                format!("unknown name `{prefix}.{field}` ({known})"),
            )
        })?;
        Ok((SlotRef { namespace, index }, ty))
    }

    fn list(&self, id: u64, elements: &[IdedExpr]) -> Result<X> {
        let mut strs = Vec::new();
        let mut nums = Vec::new();
        for element in elements {
            match self.expr(element)? {
                X::S(S::Const(s)) if nums.is_empty() => strs.push(s),
                X::N(N::Const(n)) if strs.is_empty() => nums.push(n),
                _ => {
                    return Err(self.error(
                        element.id,
                        "list literals hold constant strings or constant numbers, of one type",
                    ));
                }
            }
        }
        if strs.is_empty() && nums.is_empty() {
            return Err(self.error(id, "an empty list literal has no use in a rule"));
        }
        Ok(X::L(if nums.is_empty() {
            L::Strs(strs.into_boxed_slice())
        } else {
            L::Nums(nums.into_boxed_slice())
        }))
    }

    fn bool_arg(&self, e: &IdedExpr, what: &str) -> Result<B> {
        match self.expr(e)? {
            X::B(b) => Ok(b),
            other => Err(self.error(
                e.id,
                format!("{what} needs a bool, got a {}", other.type_name()),
            )),
        }
    }

    fn num_arg(&self, e: &IdedExpr, what: &str) -> Result<N> {
        match self.expr(e)? {
            X::N(n) => Ok(n),
            other => Err(self.error(
                e.id,
                format!("{what} needs a number, got a {}", other.type_name()),
            )),
        }
    }

    fn str_arg(&self, e: &IdedExpr, what: &str) -> Result<S> {
        match self.expr(e)? {
            X::S(s) => Ok(s),
            other => Err(self.error(
                e.id,
                format!("{what} needs a string, got a {}", other.type_name()),
            )),
        }
    }

    fn const_str(&self, e: &IdedExpr, what: &str) -> Result<Text> {
        match self.expr(e)? {
            X::S(S::Const(s)) => Ok(s),
            _ => Err(self.error(e.id, format!("{what} takes a string literal"))),
        }
    }

    fn call(&self, id: u64, call: &CallExpr) -> Result<X> {
        use cel::common::ast::operators as op;
        let name = call.func_name.as_str();
        let args = &call.args;
        let (a, b) = (args.first(), args.get(1));
        match (name, call.target.as_deref(), a, b) {
            (op::LOGICAL_AND | op::LOGICAL_OR, None, Some(a), Some(b)) => {
                let what = if name == op::LOGICAL_AND {
                    "`&&`"
                } else {
                    "`||`"
                };
                let terms =
                    vec![self.bool_arg(a, what)?, self.bool_arg(b, what)?].into_boxed_slice();
                Ok(X::B(if name == op::LOGICAL_AND {
                    B::And(terms)
                } else {
                    B::Or(terms)
                }))
            }
            (op::LOGICAL_NOT, None, Some(a), None) => {
                Ok(X::B(B::Not(Box::new(self.bool_arg(a, "`!`")?))))
            }
            (op::NEGATE, None, Some(a), None) => match self.expr(a)? {
                X::N(N::Const(n)) => Ok(X::N(N::Const(-n))),
                X::N(n) => Ok(X::N(N::Neg(Box::new(n)))),
                other => Err(self.error(
                    a.id,
                    format!("`-` needs a number, got a {}", other.type_name()),
                )),
            },
            (
                op::EQUALS
                | op::NOT_EQUALS
                | op::LESS
                | op::LESS_EQUALS
                | op::GREATER
                | op::GREATER_EQUALS,
                None,
                Some(a),
                Some(b),
            ) => self.compare(id, name, a, b),
            (
                op::ADD | op::SUBSTRACT | op::MULTIPLY | op::DIVIDE | op::MODULO,
                None,
                Some(a),
                Some(b),
            ) => self.arith(id, name, a, b),
            (op::IN, None, Some(a), Some(b)) => {
                let list = match self.expr(b)? {
                    X::L(l) => l,
                    other => {
                        return Err(self.error(
                            b.id,
                            format!(
                                "`in` needs a list on its right, got a {}",
                                other.type_name()
                            ),
                        ));
                    }
                };
                match (self.expr(a)?, &list) {
                    (X::S(s), L::Strs(_) | L::Slot(_)) => Ok(X::B(B::StrIn(s, list))),
                    (X::N(n), L::Nums(_) | L::Slot(_)) => Ok(X::B(B::NumIn(n, list))),
                    (x, _) => Err(self.error(
                        a.id,
                        format!("cannot look for a {} in this list", x.type_name()),
                    )),
                }
            }
            (op::CONDITIONAL, None, Some(c), Some(t)) => {
                let Some(f) = args.get(2) else {
                    return Err(self.error(id, "`?:` needs three operands"));
                };
                let c = Box::new(self.bool_arg(c, "the condition of `?:`")?);
                match (self.expr(t)?, self.expr(f)?) {
                    (X::B(t), X::B(f)) => Ok(X::B(B::Cond(c, Box::new(t), Box::new(f)))),
                    (X::N(t), X::N(f)) => Ok(X::N(N::Cond(c, Box::new(t), Box::new(f)))),
                    (X::S(t), X::S(f)) => Ok(X::S(S::Cond(c, Box::new(t), Box::new(f)))),
                    (t, f) => Err(self.error(id, format!("both branches of `?:` must have one type (bool, number or string), got {} and {}", t.type_name(), f.type_name()))),
                }
            }
            ("startsWith" | "endsWith" | "contains", Some(target), Some(arg), None) => {
                let test = match name {
                    "startsWith" => StrTest::StartsWith,
                    "endsWith" => StrTest::EndsWith,
                    _ => StrTest::Contains,
                };
                let s = self.str_arg(target, &format!("`{name}`"))?;
                let arg = self.str_arg(arg, &format!("`{name}`"))?;
                Ok(X::B(B::StrTest(test, s, arg)))
            }
            ("size", Some(x), None, None) | ("size", None, Some(x), None) => match self.expr(x)? {
                X::S(s) => Ok(X::N(N::StrSize(s))),
                X::L(L::Slot(slot)) => Ok(X::N(N::ListSize(slot))),
                X::L(L::Strs(items)) => Ok(X::N(N::Const(items.len() as f64))),
                X::L(L::Nums(items)) => Ok(X::N(N::Const(items.len() as f64))),
                other => Err(self.error(
                    x.id,
                    format!(
                        "`size` needs a string or a list, got a {}",
                        other.type_name()
                    ),
                )),
            },
            ("int" | "double" | "uint", None, Some(x), None) => {
                Ok(X::N(self.num_arg(x, &format!("`{name}`"))?))
            }
            ("timestamp", None, Some(x), None) => {
                let text = self.const_str(x, "`timestamp`")?;
                let t = chrono::DateTime::parse_from_rfc3339(&text).map_err(|e| {
                    self.error(x.id, format!("`timestamp` needs an RFC 3339 instant such as \"2026-11-22T10:00:00Z\": {e}"))
                })?;
                Ok(X::T(T::Const(t.timestamp_micros())))
            }
            ("duration", None, Some(x), None) => {
                let text = self.const_str(x, "`duration`")?;
                let span = Span::parse(&text).map_err(|e| {
                    self.error(
                        x.id,
                        format!(
                            "`duration` needs a duration such as \"10m\", \"72h\" or \"7d\": {e}"
                        ),
                    )
                })?;
                Ok(X::D(D::Const(
                    span.as_delta().num_microseconds().unwrap_or(i64::MAX),
                )))
            }
            (op::INDEX | op::OPT_INDEX | op::OPT_SELECT, ..) => Err(self.error(
                id,
                "indexing is not supported: name the attribute, as in `customer.plan`",
            )),
            _ => Err(self.error(
                id,
                format!(
                    "unsupported function or operator `{}` with {} argument(s)",
                    display_name(name),
                    args.len() + usize::from(call.target.is_some())
                ),
            )),
        }
    }

    fn compare(&self, id: u64, name: &str, a: &IdedExpr, b: &IdedExpr) -> Result<X> {
        use cel::common::ast::operators as op;
        let cmp = match name {
            op::EQUALS => Cmp::Eq,
            op::NOT_EQUALS => Cmp::Ne,
            op::LESS => Cmp::Lt,
            op::LESS_EQUALS => Cmp::Le,
            op::GREATER => Cmp::Gt,
            _ => Cmp::Ge,
        };
        let ordered = !matches!(cmp, Cmp::Eq | Cmp::Ne);
        Ok(X::B(match (self.expr(a)?, self.expr(b)?) {
            (X::N(x), X::N(y)) => B::Num(cmp, x, y),
            (X::S(x), X::S(y)) => B::Str(cmp, x, y),
            (X::T(x), X::T(y)) => B::Time(cmp, x, y),
            (X::D(x), X::D(y)) => B::Dur(cmp, x, y),
            (X::B(x), X::B(y)) if !ordered => B::Bool(cmp, Box::new(x), Box::new(y)),
            (x, y) => {
                return Err(self.error(
                    id,
                    format!(
                        "cannot compare a {} with a {} using `{}`",
                        x.type_name(),
                        y.type_name(),
                        cmp.symbol()
                    ),
                ));
            }
        }))
    }

    fn arith(&self, id: u64, name: &str, a: &IdedExpr, b: &IdedExpr) -> Result<X> {
        use cel::common::ast::operators as op;
        let op = match name {
            op::ADD => Arith::Add,
            op::SUBSTRACT => Arith::Sub,
            op::MULTIPLY => Arith::Mul,
            op::DIVIDE => Arith::Div,
            _ => Arith::Rem,
        };
        Ok(match (op, self.expr(a)?, self.expr(b)?) {
            (_, X::N(x), X::N(y)) => X::N(N::Arith(op, Box::new(x), Box::new(y))),
            (Arith::Add, X::T(t), X::D(d)) | (Arith::Add, X::D(d), X::T(t)) => {
                X::T(T::Shift(Box::new(t), Box::new(d), true))
            }
            (Arith::Sub, X::T(t), X::D(d)) => X::T(T::Shift(Box::new(t), Box::new(d), false)),
            (Arith::Sub, X::T(x), X::T(y)) => X::D(D::Between(Box::new(x), Box::new(y))),
            (Arith::Add | Arith::Sub, X::D(x), X::D(y)) => {
                X::D(D::Sum(Box::new(x), Box::new(y), op == Arith::Add))
            }
            (_, x, y) => {
                return Err(self.error(
                    id,
                    format!(
                        "cannot apply `{}` to a {} and a {}",
                        display_name(name),
                        x.type_name(),
                        y.type_name()
                    ),
                ));
            }
        })
    }
}

/// `_+_` as `+`, `@in` as `in`.
fn display_name(name: &str) -> &str {
    name.trim_matches('_').trim_start_matches('@')
}

/// Flattens nested `&&` (and `||`) into one list of terms, so the top level of a rule is its
/// clauses in source order.
fn flatten(b: B) -> B {
    match b {
        B::And(terms) => B::And(flatten_terms(terms, true)),
        B::Or(terms) => B::Or(flatten_terms(terms, false)),
        other => other,
    }
}

fn flatten_terms(terms: Box<[B]>, and: bool) -> Box<[B]> {
    let mut out = Vec::with_capacity(terms.len());
    for term in terms.into_vec() {
        match (flatten(term), and) {
            (B::And(inner), true) => out.extend(inner.into_vec()),
            (B::Or(inner), false) => out.extend(inner.into_vec()),
            (other, _) => out.push(other),
        }
    }
    out.into_boxed_slice()
}
