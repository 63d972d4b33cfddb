//! Owners: the people or teams that answer for a journey stage or a KPI.

use super::check::{self, Checked};
use super::ids::OwnerId;
use serde::{Deserialize, Serialize};

/// A person or team accountable for stages and KPIs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Owner {
    /// Id that stages and KPIs refer to.
    pub id: OwnerId,
    /// Display name (`Growth team`, `Dana Ruiz`).
    pub name: String,
    /// How to reach them (an email address, a channel name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact: Option<String>,
    /// Their role (`Head of onboarding`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
}

impl Owner {
    /// An owner with an id and a name.
    pub fn new(id: impl Into<OwnerId>, name: impl Into<String>) -> Self {
        Owner {
            id: id.into(),
            name: name.into(),
            contact: None,
            role: None,
        }
    }

    pub(crate) fn check(&self) -> Checked {
        check::id("id", self.id.as_str())?;
        check::text("name", &self.name)?;
        if let Some(contact) = &self.contact {
            check::text("contact", contact)?;
        }
        if let Some(role) = &self.role {
            check::text("role", role)?;
        }
        Ok(())
    }
}
