//! What rules may read: namespaces of typed slots, and the per-decision values behind them.

use crate::model::{Attributes, Name, Timestamp, Value, ValueType};
use std::collections::HashMap;
use std::fmt;

/// Where a name lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Namespace {
    /// `customer.<attribute>`.
    Customer,
    /// `context.<field>` of the request.
    Context,
    /// `touchpoint.<field>` (journey matchers, feature filters).
    Touchpoint,
    /// `offer.<field>` of the offer being considered.
    Offer,
    /// `features.<id>`.
    Feature,
    /// `segments.<id>`: whether the customer is in the segment (offer rules only; a segment
    /// rule cannot read segments, so membership never depends on itself).
    Segment,
}

impl Namespace {
    /// The prefix rules write.
    pub fn prefix(self) -> &'static str {
        match self {
            Namespace::Customer => "customer",
            Namespace::Context => "context",
            Namespace::Touchpoint => "touchpoint",
            Namespace::Offer => "offer",
            Namespace::Feature => "features",
            Namespace::Segment => "segments",
        }
    }

    fn from_prefix(prefix: &str) -> Option<Namespace> {
        Some(match prefix {
            "customer" => Namespace::Customer,
            "context" => Namespace::Context,
            "touchpoint" => Namespace::Touchpoint,
            "offer" => Namespace::Offer,
            "features" => Namespace::Feature,
            "segments" => Namespace::Segment,
            _ => return None,
        })
    }
}

/// A resolved name: its namespace and its index there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SlotRef {
    /// The namespace.
    pub namespace: Namespace,
    /// The index in the namespace's [`SlotTable`].
    pub index: u16,
}

/// A value as rules see it, borrowed from the customer, the offer or the request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scalar<'a> {
    /// A number.
    Num(f64),
    /// Text.
    Str(&'a str),
    /// True or false.
    Bool(bool),
    /// An instant, in microseconds since the Unix epoch.
    Time(i64),
    /// A list (rules test membership of strings and numbers).
    List(&'a [Value]),
}

impl<'a> Scalar<'a> {
    /// The scalar view of `value`.
    #[inline]
    pub fn of(value: &'a Value) -> Scalar<'a> {
        match value {
            Value::String(s) => Scalar::Str(s.as_str()),
            Value::Number(n) => Scalar::Num(*n),
            Value::Bool(b) => Scalar::Bool(*b),
            Value::Timestamp(t) => Scalar::Time(t.timestamp_micros()),
            Value::List(items) => Scalar::List(items),
        }
    }

    /// The scalar view of each of `values` (`None` for a missing one).
    #[inline]
    pub(crate) fn each(values: &'a [Option<Value>]) -> impl Iterator<Item = Option<Scalar<'a>>> {
        values.iter().map(|v| v.as_ref().map(Scalar::of))
    }

    /// The type of the value.
    pub fn value_type(&self) -> ValueType {
        match self {
            Scalar::Num(_) => ValueType::Number,
            Scalar::Str(_) => ValueType::String,
            Scalar::Bool(_) => ValueType::Bool,
            Scalar::Time(_) => ValueType::Timestamp,
            Scalar::List(_) => ValueType::List,
        }
    }
}

impl fmt::Display for Scalar<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scalar::Num(n) => write!(f, "{n}"),
            Scalar::Str(s) => write!(f, "{s:?}"),
            Scalar::Bool(b) => write!(f, "{b}"),
            Scalar::Time(t) => match chrono::DateTime::from_timestamp_micros(*t) {
                Some(t) => write!(
                    f,
                    "{}",
                    t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
                ),
                None => write!(f, "{t}µs"),
            },
            Scalar::List(items) => write!(f, "[{} items]", items.len()),
        }
    }
}

/// The typed names of one namespace, in slot order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SlotTable {
    names: Vec<Name>,
    types: Vec<ValueType>,
    index: HashMap<Name, u16>,
    /// The slots in name order, the order attributes are kept in.
    by_name: Vec<u16>,
}

impl SlotTable {
    /// Adds `name` with type `ty`; a name already there keeps its slot, and a different type is
    /// reported as `Err(existing type)`.
    pub fn add(&mut self, name: Name, ty: ValueType) -> Result<u16, ValueType> {
        if let Some(&i) = self.index.get(&name) {
            let existing = self.types.get(usize::from(i)).copied().unwrap_or(ty);
            return if existing == ty { Ok(i) } else { Err(existing) };
        }
        let i = u16::try_from(self.names.len()).map_err(|_| ty)?;
        let names = &self.names;
        let at = self
            .by_name
            .partition_point(|&j| names.get(usize::from(j)).is_some_and(|n| *n < name));
        self.by_name.insert(at, i);
        self.index.insert(name.clone(), i);
        self.names.push(name);
        self.types.push(ty);
        Ok(i)
    }

    /// The slot and type of `name`.
    pub fn lookup(&self, name: &str) -> Option<(u16, ValueType)> {
        let i = *self.index.get(name)?;
        Some((i, *self.types.get(usize::from(i))?))
    }

    /// The name in slot `index`.
    pub fn name(&self, index: u16) -> &str {
        self.names.get(usize::from(index)).map_or("?", Name::as_str)
    }

    /// How many slots.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Names and types in slot order.
    pub fn iter(&self) -> impl Iterator<Item = (&Name, ValueType)> {
        self.names.iter().zip(self.types.iter().copied())
    }

    /// Fills `out` with the values of `attributes` in slot order: `None` where the attribute is
    /// absent or not of the declared type (rules then treat it as missing). `out` is cleared
    /// first, so one buffer can serve every decision.
    pub fn resolve<'a>(&self, attributes: &'a Attributes, out: &mut Vec<Option<Scalar<'a>>>) {
        out.clear();
        out.extend(self.names.iter().zip(&self.types).map(|(name, ty)| {
            attributes
                .get(name.as_str())
                .filter(|v| ty.admits(v))
                .map(Scalar::of)
        }));
    }

    /// The values [`resolve`](Self::resolve) reads, owned, found with `hints` as
    /// [`resolve_hinted`](Self::resolve_hinted) finds them.
    pub(crate) fn resolve_owned(
        &self,
        attributes: &Attributes,
        hints: &mut SlotHints,
    ) -> Box<[Option<Value>]> {
        let mut values = vec![None; self.names.len()];
        let mut cursor = 0;
        for (&slot, gap) in self.by_name.iter().zip(hints.fit(self.by_name.len())) {
            let slot = usize::from(slot);
            if let (Some(name), Some(ty), Some(value)) = (
                self.names.get(slot),
                self.types.get(slot),
                values.get_mut(slot),
            ) {
                *value = attributes
                    .get_from(name.as_str(), &mut cursor, gap)
                    .filter(|v| ty.admits(v))
                    .cloned();
            }
        }
        values.into_boxed_slice()
    }

    /// The same values as [`resolve`](Self::resolve), found with `hints` from the last
    /// attributes resolved: see [`resolve_hinted_with`](Self::resolve_hinted_with).
    pub fn resolve_hinted<'a>(
        &self,
        attributes: &'a Attributes,
        hints: &mut SlotHints,
        out: &mut Vec<Option<Scalar<'a>>>,
    ) {
        self.resolve_hinted_with(attributes, |_| None, hints, out);
    }

    /// The same values as [`resolve`](Self::resolve) over `attributes`, except that a name
    /// `given` has a value for takes that value instead (if of the slot's type).
    ///
    /// Attributes are sorted by name, so the slots are looked up in name order, each one past
    /// where the one before was found, and first at the distance from there it was found last
    /// time (kept in `hints`). Attributes of one namespace usually carry the same names, an
    /// optional one shifting only those after it: a batch of decisions mostly finds each name
    /// with one comparison instead of a binary search.
    pub fn resolve_hinted_with<'a>(
        &self,
        attributes: &'a Attributes,
        given: impl Fn(&str) -> Option<Scalar<'a>>,
        hints: &mut SlotHints,
        out: &mut Vec<Option<Scalar<'a>>>,
    ) {
        out.clear();
        out.resize(self.names.len(), None);
        let mut cursor = 0;
        for (&slot, gap) in self.by_name.iter().zip(hints.fit(self.by_name.len())) {
            let slot = usize::from(slot);
            let (Some(name), Some(ty), Some(value)) = (
                self.names.get(slot),
                self.types.get(slot),
                out.get_mut(slot),
            ) else {
                continue;
            };
            *value = match given(name.as_str()) {
                Some(field) => Some(field).filter(|v| v.value_type() == *ty),
                None => attributes
                    .get_from(name.as_str(), &mut cursor, gap)
                    .filter(|v| ty.admits(v))
                    .map(Scalar::of),
            };
        }
    }
}

/// For each slot of one [`SlotTable`] in name order, how far past the previous slot's name
/// its name was found in the last attributes resolved, for
/// [`SlotTable::resolve_hinted`]. Only a guess, checked on every use: a stale hint costs a
/// comparison, never a wrong value.
#[derive(Debug, Clone, Default)]
pub struct SlotHints(Vec<usize>);

impl SlotHints {
    /// One hint per slot of a table of `len` slots (a new one guesses the next position).
    pub(crate) fn fit(&mut self, len: usize) -> &mut [usize] {
        self.0.resize(len, 0);
        &mut self.0
    }
}

/// Every name rules may read, by namespace, with its type.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Vocabulary {
    /// `customer.*`.
    pub customer: SlotTable,
    /// `context.*`.
    pub context: SlotTable,
    /// `touchpoint.*`.
    pub touchpoint: SlotTable,
    /// `offer.*`.
    pub offer: SlotTable,
    /// `features.*`.
    pub features: SlotTable,
    /// `segments.*`, in catalogue order.
    pub segments: SlotTable,
}

impl Vocabulary {
    /// The slot table of `namespace`.
    pub fn table(&self, namespace: Namespace) -> &SlotTable {
        match namespace {
            Namespace::Customer => &self.customer,
            Namespace::Context => &self.context,
            Namespace::Touchpoint => &self.touchpoint,
            Namespace::Offer => &self.offer,
            Namespace::Feature => &self.features,
            Namespace::Segment => &self.segments,
        }
    }

    /// The mutable slot table of `namespace`.
    pub fn table_mut(&mut self, namespace: Namespace) -> &mut SlotTable {
        match namespace {
            Namespace::Customer => &mut self.customer,
            Namespace::Context => &mut self.context,
            Namespace::Touchpoint => &mut self.touchpoint,
            Namespace::Offer => &mut self.offer,
            Namespace::Feature => &mut self.features,
            Namespace::Segment => &mut self.segments,
        }
    }

    /// The full name of a slot (`customer.plan`).
    pub fn slot_name(&self, slot: SlotRef) -> String {
        format!(
            "{}.{}",
            slot.namespace.prefix(),
            self.table(slot.namespace).name(slot.index)
        )
    }

    pub(crate) fn namespace(prefix: &str) -> Option<Namespace> {
        Namespace::from_prefix(prefix)
    }
}

/// The values a rule reads, one slice per namespace in slot order, and the instant `now`.
#[derive(Debug, Clone, Copy)]
pub struct Env<'a> {
    /// `customer.*` values.
    pub customer: &'a [Option<Scalar<'a>>],
    /// `context.*` values.
    pub context: &'a [Option<Scalar<'a>>],
    /// `touchpoint.*` values.
    pub touchpoint: &'a [Option<Scalar<'a>>],
    /// `offer.*` values (owned by the compiled catalogue, so they are kept as values).
    pub offer: &'a [Option<Value>],
    /// `features.*` values.
    pub features: &'a [Option<Scalar<'a>>],
    /// `segments.*` values (a segment no rule reads may be left `None`).
    pub segments: &'a [Option<Scalar<'a>>],
    /// `now`, in microseconds since the Unix epoch.
    pub now: i64,
}

impl<'a> Env<'a> {
    /// An environment with no values, at `now`.
    pub fn empty(now: Timestamp) -> Env<'a> {
        Env::empty_micros(now.timestamp_micros())
    }

    /// An environment with no values, at `now` microseconds since the epoch.
    pub fn empty_micros(now: i64) -> Env<'a> {
        Env {
            customer: &[],
            context: &[],
            touchpoint: &[],
            offer: &[],
            features: &[],
            segments: &[],
            now,
        }
    }

    /// The value in `slot`, if there is one.
    #[inline]
    pub fn get(&self, slot: SlotRef) -> Option<Scalar<'a>> {
        let values = match slot.namespace {
            Namespace::Customer => self.customer,
            Namespace::Context => self.context,
            Namespace::Touchpoint => self.touchpoint,
            Namespace::Feature => self.features,
            Namespace::Segment => self.segments,
            Namespace::Offer => {
                return self
                    .offer
                    .get(usize::from(slot.index))
                    .and_then(Option::as_ref)
                    .map(Scalar::of);
            }
        };
        values.get(usize::from(slot.index)).copied().flatten()
    }
}
