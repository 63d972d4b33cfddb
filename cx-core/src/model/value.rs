//! Typed attribute values and the attribute map of customers, touchpoints and requests.

use super::check::{self, Checked, FieldError};
use super::ids::{Name, Text};
use super::time::Timestamp;
use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// A typed value: string, number, bool, timestamp or list.
///
/// In JSON and YAML a value is written as the plain scalar or list; a timestamp is written as
/// `{timestamp: "2026-11-22T10:00:00Z"}` so that it is never confused with a string. Numbers must
/// be finite: NaN and infinities are rejected when the record holding them is validated.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A string.
    String(Text),
    /// A number (integers are exact up to 2^53).
    Number(f64),
    /// A boolean.
    Bool(bool),
    /// An instant.
    Timestamp(Timestamp),
    /// A list of values.
    List(Vec<Value>),
}

impl Value {
    /// The type's name, as errors and explanations print it.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::String(_) => "string",
            Value::Number(_) => "number",
            Value::Bool(_) => "bool",
            Value::Timestamp(_) => "timestamp",
            Value::List(_) => "list",
        }
    }

    /// The number, if this is one.
    pub fn as_number(&self) -> Option<f64> {
        match self {
            Value::Number(n) => Some(*n),
            _ => None,
        }
    }

    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s.as_str()),
            _ => None,
        }
    }

    /// The bool, if this is one.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// The instant, if this is one.
    pub fn as_timestamp(&self) -> Option<Timestamp> {
        match self {
            Value::Timestamp(t) => Some(*t),
            _ => None,
        }
    }

    /// Checks that every number in the value is finite. The error's field is the path inside
    /// the value (`""` for the value itself, `"[2]"` for an item of a list).
    pub(crate) fn check(&self) -> Checked {
        match self {
            Value::Number(n) => check::finite("", *n),
            Value::List(items) => {
                for (i, item) in items.iter().enumerate() {
                    if let Err(e) = item.check() {
                        return Err(FieldError::new(format!("[{i}]{}", e.field), e.reason));
                    }
                }
                Ok(())
            }
            Value::String(_) | Value::Bool(_) | Value::Timestamp(_) => Ok(()),
        }
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::String(Text::from(v))
    }
}
impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::String(Text::from(v))
    }
}
impl From<Text> for Value {
    fn from(v: Text) -> Self {
        Value::String(v)
    }
}
impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::Number(v)
    }
}
impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Number(v as f64)
    }
}
impl From<i32> for Value {
    fn from(v: i32) -> Self {
        Value::Number(f64::from(v))
    }
}
impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Bool(v)
    }
}
impl From<Timestamp> for Value {
    fn from(v: Timestamp) -> Self {
        Value::Timestamp(v)
    }
}
impl<T: Into<Value>> From<Vec<T>> for Value {
    fn from(v: Vec<T>) -> Self {
        Value::List(v.into_iter().map(Into::into).collect())
    }
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::String(s) => serializer.serialize_str(s),
            Value::Number(n) => serializer.serialize_f64(*n),
            Value::Bool(b) => serializer.serialize_bool(*b),
            Value::Timestamp(t) => {
                let mut map = serializer.serialize_map(Some(1))?;
                map.serialize_entry("timestamp", t)?;
                map.end()
            }
            Value::List(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string, number, bool, list or {timestamp: \"<RFC 3339>\"}")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v as f64))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v as f64))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Number(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(Text::from(v)))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Err(E::custom(
            "null is not a value: leave the attribute out instead",
        ))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::List(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let key: Option<String> = map.next_key()?;
        match key.as_deref() {
            Some("timestamp") => {
                let t: Timestamp = map.next_value()?;
                if map.next_key::<String>()?.is_some() {
                    return Err(de::Error::custom(
                        "a timestamp value has the single key `timestamp`",
                    ));
                }
                Ok(Value::Timestamp(t))
            }
            _ => Err(de::Error::custom(
                "an object value must be {timestamp: \"<RFC 3339>\"}",
            )),
        }
    }
}

/// Named values, kept sorted by name so lookups are a binary search and serialisation is stable.
///
/// Cloning is cheap: the values are shared (reference-counted) until one copy changes, so
/// handing a stored touchpoint or profile to a decision copies no attribute.
///
/// Serialises as a map. Deserialising rejects a name given twice.
///
/// The entries sit in one allocation with their reference count (a shared slice, not a shared
/// vector): building attributes allocates once, and reading one is a single pointer away from
/// what holds it. Changing them makes a new slice, which suits attributes: built once, read
/// many times, rarely changed.
#[derive(Clone, Default)]
pub struct Attributes(Option<std::sync::Arc<[(Name, Value)]>>);

impl fmt::Debug for Attributes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Attributes").field(&self.entries()).finish()
    }
}

impl PartialEq for Attributes {
    fn eq(&self, other: &Self) -> bool {
        self.entries() == other.entries()
    }
}

impl Attributes {
    /// Whether `other` holds the same attributes: at once if they share their storage (a
    /// clone), else compared.
    pub(crate) fn same(&self, other: &Attributes) -> bool {
        match (&self.0, &other.0) {
            (Some(a), Some(b)) if std::sync::Arc::ptr_eq(a, b) => true,
            _ => self == other,
        }
    }

    /// No attributes.
    pub const fn new() -> Self {
        Attributes(None)
    }

    /// Attributes of `entries`, which are sorted by name, each name once.
    fn of_sorted(entries: Vec<(Name, Value)>) -> Self {
        Attributes((!entries.is_empty()).then(|| entries.into()))
    }

    /// The entries, sorted by name.
    pub(crate) fn entries(&self) -> &[(Name, Value)] {
        self.0.as_deref().unwrap_or_default()
    }

    /// Changes the entries with `change`: they are taken out as a vector (moved if no other
    /// clone shares them, else copied) and put back as a new slice.
    fn change<R>(&mut self, change: impl FnOnce(&mut Vec<(Name, Value)>) -> R) -> R {
        let mut entries: Vec<(Name, Value)> = match self.0.take() {
            None => Vec::new(),
            Some(mut shared) => match std::sync::Arc::get_mut(&mut shared) {
                Some(owned) => owned
                    .iter_mut()
                    .map(|(n, v)| (std::mem::take(n), std::mem::replace(v, Value::Bool(false))))
                    .collect(),
                None => shared.to_vec(),
            },
        };
        let out = change(&mut entries);
        *self = Attributes::of_sorted(entries);
        out
    }

    /// Sets `name` to `value`, replacing an earlier value; returns the earlier value.
    pub fn insert(&mut self, name: impl Into<Name>, value: impl Into<Value>) -> Option<Value> {
        let (name, value) = (name.into(), value.into());
        match self.entries().binary_search_by(|(n, _)| n.cmp(&name)) {
            // A new value for a name held: in place (the entries copied first if another
            // clone shares them).
            Ok(i) => std::sync::Arc::make_mut(self.0.as_mut()?)
                .get_mut(i)
                .map(|slot| std::mem::replace(&mut slot.1, value)),
            Err(i) => self.change(|entries| {
                entries.insert(i, (name, value));
                None
            }),
        }
    }

    /// Builder form of [`insert`](Self::insert).
    #[must_use]
    pub fn with(mut self, name: impl Into<Name>, value: impl Into<Value>) -> Self {
        self.insert(name, value);
        self
    }

    /// The value of `name`.
    pub fn get(&self, name: &str) -> Option<&Value> {
        let entries = self.entries();
        entries
            .binary_search_by(|(n, _)| n.as_str().cmp(name))
            .ok()
            .and_then(|i| entries.get(i))
            .map(|(_, v)| v)
    }

    /// The value of `name`, looked for first at position `hint` (where it was in the last set
    /// of attributes looked at: events of one kind usually carry the same names), which is
    /// updated to where it is. The same answer as [`get`](Self::get).
    #[inline]
    pub(crate) fn get_hinted(&self, name: &str, hint: &mut usize) -> Option<&Value> {
        // A lookup from the start, `hint` standing as the distance from there.
        self.get_from(name, &mut 0, hint)
    }

    /// The value of `name`, for lookups made in ascending name order: every attribute before
    /// `cursor` sorts before `name`, and `gap` is how far past `cursor` the name was found
    /// last time, which is looked at first. Moves `cursor` past `name` (or to where it would
    /// be) and sets `gap`. The same answer as [`get`](Self::get).
    #[inline(always)]
    pub(crate) fn get_from(
        &self,
        name: &str,
        cursor: &mut usize,
        gap: &mut usize,
    ) -> Option<&Value> {
        let rest = self.entries().get(*cursor..).unwrap_or_default();
        let at = match rest.get(*gap) {
            Some((n, _)) if crate::text_key::same_text(n.as_str(), name) => Ok(*gap),
            _ => rest.binary_search_by(|(n, _)| n.as_str().cmp(name)),
        };
        match at {
            Ok(i) => {
                *gap = i;
                *cursor += i + 1;
                rest.get(i).map(|(_, v)| v)
            }
            Err(i) => {
                *cursor += i;
                None
            }
        }
    }

    /// Removes `name`; returns its value.
    pub fn remove(&mut self, name: &str) -> Option<Value> {
        let i = self
            .entries()
            .binary_search_by(|(n, _)| n.as_str().cmp(name))
            .ok()?;
        Some(self.change(|entries| entries.remove(i).1))
    }

    /// Whether `name` is set.
    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Names and values, sorted by name.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&Name, &Value)> {
        self.entries().iter().map(|(n, v)| (n, v))
    }

    /// Number of attributes.
    pub fn len(&self) -> usize {
        self.entries().len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.entries().is_empty()
    }

    /// Sets every attribute of `other` that is not set here (used when merging customers).
    pub fn fill_from(&mut self, other: &Attributes) {
        for (name, value) in other.entries() {
            if !self.contains(name.as_str()) {
                self.insert(name.clone(), value.clone());
            }
        }
    }

    /// Checks names (identifiers) and values (finite numbers).
    pub(crate) fn check(&self, field: &str) -> Checked {
        for (name, value) in self.entries() {
            check::identifier(field, name.as_str())?;
            // The path is built only when a check fails: this runs for every ingested touchpoint.
            value
                .check()
                .map_err(|e| e.under(&format!("{field}.{name}")))?;
        }
        Ok(())
    }
}

/// A name given twice keeps its last value, as with [`Attributes::insert`]. Pairs already in
/// name order (a table's columns, sorted once) from an iterator that knows its length are
/// taken as they come, in one allocation.
impl<N: Into<Name>, V: Into<Value>> FromIterator<(N, V)> for Attributes {
    fn from_iter<I: IntoIterator<Item = (N, V)>>(iter: I) -> Self {
        let entries: std::sync::Arc<[(Name, Value)]> = iter
            .into_iter()
            .map(|(n, v)| (n.into(), v.into()))
            .collect();
        if entries.is_sorted_by(|a, b| a.0 < b.0) {
            return Attributes((!entries.is_empty()).then_some(entries));
        }
        let mut sorted = Attributes(Some(entries));
        sorted.change(|entries| {
            // Stable: of a name given twice, the value given last is last in its run, and
            // `dedup_by` keeps the first of a run, so that value is moved there.
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            entries.dedup_by(|later, kept| {
                let same = later.0 == kept.0;
                if same {
                    std::mem::swap(&mut later.1, &mut kept.1);
                }
                same
            });
        });
        sorted
    }
}

impl Serialize for Attributes {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.len()))?;
        for (n, v) in self.entries() {
            map.serialize_entry(n, v)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Attributes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct AttrsVisitor;
        impl<'de> Visitor<'de> for AttrsVisitor {
            type Value = Attributes;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of attribute names to values")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Attributes, A::Error> {
                let mut attrs = Attributes::new();
                while let Some((name, value)) = map.next_entry::<Name, Value>()? {
                    if attrs.insert(name.clone(), value).is_some() {
                        return Err(de::Error::custom(format!(
                            "attribute `{name}` is given twice"
                        )));
                    }
                }
                Ok(attrs)
            }
        }
        deserializer.deserialize_map(AttrsVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn attributes_stay_sorted_and_replace_on_insert() {
        let mut a = Attributes::new().with("plan", "S").with("cap", 10.0);
        assert_eq!(
            a.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
            ["cap", "plan"]
        );
        assert_eq!(a.insert("plan", "M"), Some(Value::from("S")));
        assert_eq!(a.get("plan"), Some(&Value::from("M")));
        assert_eq!(a.remove("cap"), Some(Value::Number(10.0)));
        assert_eq!(a.len(), 1);
    }

    proptest::proptest! {
        /// Collecting pairs gives what inserting them one by one gives: sorted by name, and a
        /// name given twice keeps its last value.
        #[test]
        fn collecting_is_inserting_in_turn(
            pairs in proptest::collection::vec(("[a-e]{1,2}", 0u8..10), 0..12),
        ) {
            let mut inserted = Attributes::new();
            for (name, value) in &pairs {
                inserted.insert(name.as_str(), f64::from(*value));
            }
            let collected: Attributes = pairs
                .iter()
                .map(|(name, value)| (name.as_str(), f64::from(*value)))
                .collect();
            proptest::prop_assert_eq!(collected.entries(), inserted.entries());
        }
    }

    #[test]
    fn clones_share_until_one_changes() {
        let a = Attributes::new().with("plan", "S");
        let mut b = a.clone();
        b.insert("plan", "M");
        b.insert("cap", 10.0);
        assert_eq!(a.get("plan"), Some(&Value::from("S")));
        assert_eq!(a.len(), 1);
        assert_eq!(b.get("plan"), Some(&Value::from("M")));
        assert_eq!(b.len(), 2);
        // Empty is empty, however it got there.
        let mut c = Attributes::new().with("x", 1.0);
        c.remove("x");
        assert_eq!(c, Attributes::new());
        assert!(c.is_empty());
    }

    #[test]
    fn values_round_trip_through_json_including_timestamps() {
        let t = chrono::Utc
            .with_ymd_and_hms(2026, 11, 22, 10, 0, 0)
            .single()
            .unwrap_or_default();
        let a = Attributes::new()
            .with("since", t)
            .with("tags", vec!["a", "b"])
            .with("vip", true)
            .with("n", 3);
        let json = serde_json::to_string(&a).unwrap_or_default();
        assert_eq!(
            json,
            r#"{"n":3.0,"since":{"timestamp":"2026-11-22T10:00:00Z"},"tags":["a","b"],"vip":true}"#
        );
        let back: Attributes = serde_json::from_str(&json).unwrap_or_default();
        assert_eq!(back, a);
    }

    #[test]
    fn duplicate_names_and_nulls_are_rejected() {
        assert!(serde_json::from_str::<Attributes>(r#"{"a":1,"a":2}"#).is_err());
        assert!(serde_json::from_str::<Attributes>(r#"{"a":null}"#).is_err());
        assert!(serde_json::from_str::<Attributes>(r#"{"a":{"x":1}}"#).is_err());
    }

    #[test]
    fn non_finite_numbers_fail_the_check_with_their_path() {
        let a = Attributes::new()
            .with("ok", 1.0)
            .with("bad", vec![1.0, f64::NAN]);
        let e = a.check("attributes").err().map(|e| e.field);
        assert_eq!(e.as_deref(), Some("attributes.bad[1]"));
        let a = Attributes::new().with("x", f64::INFINITY);
        assert!(a.check("attributes").is_err());
    }
}
