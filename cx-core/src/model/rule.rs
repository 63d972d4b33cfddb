//! Rule source text. Rules are written in CEL syntax; this crate keeps the text with the
//! definition and checks its shape on load. Compilation into a fast evaluator is `rules/`' job.

use super::check::{Checked, FieldError};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The text of a rule in CEL syntax, e.g. `customer.plan == "S" && features.views_10m >= 3`.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RuleText(String);

/// Longest rule we accept, in bytes.
pub const MAX_RULE_LEN: usize = 4096;

impl RuleText {
    /// Wraps rule text.
    pub fn new(text: impl Into<String>) -> Self {
        RuleText(text.into())
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub(crate) fn check(&self, field: &str) -> Checked {
        if self.0.trim().is_empty() {
            return Err(FieldError::new(field, "is an empty rule"));
        }
        if self.0.len() > MAX_RULE_LEN {
            return Err(FieldError::new(
                field,
                format!("is longer than {MAX_RULE_LEN} bytes"),
            ));
        }
        Ok(())
    }
}

impl fmt::Debug for RuleText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for RuleText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for RuleText {
    fn from(text: &str) -> Self {
        RuleText(text.to_owned())
    }
}
