//! The attribute schema: which names rules may use, and their types, so rules are type-checked
//! when the catalogue loads instead of failing at decision time.

use super::check::{self, Checked, FieldError};
use super::ids::Name;
use super::value::Value;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// The type of an attribute, as rules see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ValueType {
    /// Text.
    String,
    /// A number.
    Number,
    /// True or false.
    Bool,
    /// An instant.
    Timestamp,
    /// A list of strings.
    List,
}

impl ValueType {
    /// The type's name.
    pub fn as_str(self) -> &'static str {
        match self {
            ValueType::String => "string",
            ValueType::Number => "number",
            ValueType::Bool => "bool",
            ValueType::Timestamp => "timestamp",
            ValueType::List => "list",
        }
    }

    /// Whether `value` has this type.
    pub fn admits(self, value: &Value) -> bool {
        matches!(
            (self, value),
            (ValueType::String, Value::String(_))
                | (ValueType::Number, Value::Number(_))
                | (ValueType::Bool, Value::Bool(_))
                | (ValueType::Timestamp, Value::Timestamp(_))
                | (ValueType::List, Value::List(_))
        )
    }

    /// The type of `value`.
    pub fn of(value: &Value) -> ValueType {
        match value {
            Value::String(_) => ValueType::String,
            Value::Number(_) => ValueType::Number,
            Value::Bool(_) => ValueType::Bool,
            Value::Timestamp(_) => ValueType::Timestamp,
            Value::List(_) => ValueType::List,
        }
    }
}

impl fmt::Display for ValueType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The names rules may read, with their types.
///
/// - `customer.<name>`: customer attributes;
/// - `context.<name>`: request context (`context.channel` and `context.placement` are always
///   there);
/// - `touchpoint.<name>`: touchpoint attributes, in journey matchers and feature filters
///   (`touchpoint.kind`, `touchpoint.channel` and `touchpoint.occurred_at` are always there).
///
/// Offer fields (`offer.<attribute>`, `offer.value`...), features (`features.<id>`) and, in offer
/// rules, segment membership (`segments.<id>`, a bool) are typed from their definitions, so they
/// are not declared here.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Schema {
    /// Customer attributes.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub customer: BTreeMap<Name, ValueType>,
    /// Request-context fields.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub context: BTreeMap<Name, ValueType>,
    /// Touchpoint attributes.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub touchpoint: BTreeMap<Name, ValueType>,
}

impl Schema {
    /// Whether nothing is declared.
    pub fn is_empty(&self) -> bool {
        self.customer.is_empty() && self.context.is_empty() && self.touchpoint.is_empty()
    }

    pub(crate) fn check(&self) -> Checked {
        for (section, fields) in [
            ("customer", &self.customer),
            ("context", &self.context),
            ("touchpoint", &self.touchpoint),
        ] {
            for name in fields.keys() {
                check::identifier(&format!("{section}.{name}"), name.as_str())?;
            }
        }
        for reserved in ["channel", "placement"] {
            if self.context.contains_key(reserved) {
                return Err(FieldError::new(
                    format!("context.{reserved}"),
                    "is built in (the request's channel and placement) and cannot be declared",
                ));
            }
        }
        for reserved in ["kind", "channel", "occurred_at"] {
            if self.touchpoint.contains_key(reserved) {
                return Err(FieldError::new(
                    format!("touchpoint.{reserved}"),
                    "is built in and cannot be declared",
                ));
            }
        }
        Ok(())
    }
}
