//! Customers: profile attributes, identities, consent and PII marks.

use super::channel::Channel;
use super::check::{self, Checked, FieldError};
use super::ids::{CustomerId, Name, Purpose, Text};
use super::time::Timestamp;
use super::value::Attributes;
use crate::error::Result;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A customer: who they are (identities), what we know (attributes) and what they allow (consent).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Customer {
    /// The external id.
    pub id: CustomerId,
    /// Profile attributes (`plan`, `data_cap_gb`, `region`...).
    #[serde(default)]
    pub attributes: Attributes,
    /// Identities that resolve to this customer (email, phone, device, cookie...).
    #[serde(default)]
    pub identities: Vec<Identity>,
    /// Consent, at most one record per (channel, purpose).
    #[serde(default)]
    pub consents: Vec<Consent>,
    /// Names of attributes that hold personal data: explanations and logs never print them.
    #[serde(default)]
    pub pii: Vec<Name>,
}

impl Customer {
    /// A customer with no attributes, identities or consent.
    pub fn new(id: impl Into<CustomerId>) -> Self {
        Customer {
            id: id.into(),
            attributes: Attributes::new(),
            identities: Vec::new(),
            consents: Vec::new(),
            pii: Vec::new(),
        }
    }

    /// Sets an attribute.
    #[must_use]
    pub fn with_attribute(
        mut self,
        name: impl Into<Name>,
        value: impl Into<super::value::Value>,
    ) -> Self {
        self.attributes.insert(name, value);
        self
    }

    /// Sets an attribute and marks it as PII.
    #[must_use]
    pub fn with_pii_attribute(
        mut self,
        name: impl Into<Name>,
        value: impl Into<super::value::Value>,
    ) -> Self {
        let name = name.into();
        if !self.pii.contains(&name) {
            self.pii.push(name.clone());
        }
        self.attributes.insert(name, value);
        self
    }

    /// Adds an identity.
    #[must_use]
    pub fn with_identity(mut self, identity: Identity) -> Self {
        self.identities.push(identity);
        self
    }

    /// Records consent for `purpose` on `channel`, replacing an earlier record for the pair.
    #[must_use]
    pub fn with_consent(mut self, consent: Consent) -> Self {
        self.set_consent(consent);
        self
    }

    /// Records consent, replacing an earlier record for the same (channel, purpose).
    pub fn set_consent(&mut self, consent: Consent) {
        match self
            .consents
            .iter_mut()
            .find(|c| c.channel == consent.channel && c.purpose == consent.purpose)
        {
            Some(slot) => *slot = consent,
            None => self.consents.push(consent),
        }
    }

    /// The consent record for `purpose` on `channel`, if any.
    pub fn consent(&self, channel: &Channel, purpose: &Purpose) -> Option<&Consent> {
        self.consents
            .iter()
            .find(|c| &c.channel == channel && &c.purpose == purpose)
    }

    /// Takes in the profile of `gone`, a customer merged into this one, by the merge contract
    /// ([`CustomerStore::merge_customers`](crate::store::CustomerStore::merge_customers)):
    /// attributes this profile lacks, identities and PII marks it does not have, and per
    /// channel and purpose the later consent record (this profile's on a tie). Returns how many
    /// identities it gained.
    pub fn absorb(&mut self, gone: Customer) -> u64 {
        self.attributes.fill_from(&gone.attributes);
        let mut added = 0;
        for identity in gone.identities {
            if !self.identities.contains(&identity) {
                self.identities.push(identity);
                added += 1;
            }
        }
        for name in gone.pii {
            if !self.pii.contains(&name) {
                self.pii.push(name);
            }
        }
        for consent in gone.consents {
            match self
                .consents
                .iter_mut()
                .find(|c| c.channel == consent.channel && c.purpose == consent.purpose)
            {
                // The later record is the customer's current wish; on a tie the survivor's stays.
                Some(mine) if consent.since > mine.since => *mine = consent,
                Some(_) => {}
                None => self.consents.push(consent),
            }
        }
        added
    }

    /// Whether `purpose` is granted on `channel` at `at`: a `granted` record that took effect at
    /// or before `at` and has not expired. No record means no consent.
    pub fn has_consent(&self, channel: &Channel, purpose: &Purpose, at: Timestamp) -> bool {
        self.consent(channel, purpose)
            .is_some_and(|c| c.is_granted_at(at))
    }

    /// Whether the attribute `name` is marked PII.
    pub fn is_pii(&self, name: &str) -> bool {
        self.pii.iter().any(|p| p.as_str() == name)
    }

    /// Checks the customer; the error names the customer and the field.
    pub fn validate(&self) -> Result<()> {
        self.check()
            .map_err(|e| e.at(format!("customer {:?}", self.id.as_str())))
    }

    fn check(&self) -> Checked {
        check::id("id", self.id.as_str())?;
        self.attributes.check("attributes")?;
        for (i, identity) in self.identities.iter().enumerate() {
            identity
                .check()
                .map_err(|e| e.under(&format!("identities[{i}]")))?;
        }
        for (i, a) in self.identities.iter().enumerate() {
            if self.identities.iter().skip(i + 1).any(|b| a == b) {
                return Err(FieldError::new(
                    format!("identities[{i}]"),
                    format!("lists the same {} identity twice", a.kind),
                ));
            }
        }
        for (i, consent) in self.consents.iter().enumerate() {
            consent
                .check()
                .map_err(|e| e.under(&format!("consents[{i}]")))?;
            if self
                .consents
                .iter()
                .skip(i + 1)
                .any(|other| other.channel == consent.channel && other.purpose == consent.purpose)
            {
                return Err(FieldError::new(
                    format!("consents[{i}]"),
                    format!(
                        "has two records for purpose {:?} on channel {}",
                        consent.purpose.as_str(),
                        consent.channel
                    ),
                ));
            }
        }
        for (i, name) in self.pii.iter().enumerate() {
            check::identifier(&format!("pii[{i}]"), name.as_str())?;
        }
        Ok(())
    }
}

/// The kind of an identity.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdentityKind {
    /// Email address (compared case-insensitively).
    Email,
    /// Phone number (compared without spaces, dashes, dots and brackets).
    Phone,
    /// Device id.
    Device,
    /// Web cookie id.
    Cookie,
    /// An account id in another system.
    Account,
    /// Another kind, by name.
    #[serde(untagged)]
    Other(Text),
}

impl IdentityKind {
    /// The kind's name.
    pub fn as_str(&self) -> &str {
        match self {
            IdentityKind::Email => "email",
            IdentityKind::Phone => "phone",
            IdentityKind::Device => "device",
            IdentityKind::Cookie => "cookie",
            IdentityKind::Account => "account",
            IdentityKind::Other(name) => name.as_str(),
        }
    }
}

impl fmt::Display for IdentityKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for IdentityKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One identity: a kind and a value (an email address, a phone number, a device id...).
///
/// Identity values are personal data: `Debug` prints the kind only, and errors never include them.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Identity {
    /// What kind of identity.
    pub kind: IdentityKind,
    /// The value, normalised by [`Identity::new`].
    pub value: Text,
}

impl Identity {
    /// An identity, normalised so that equal identities compare equal: emails are trimmed and
    /// lower-cased, phone numbers lose spaces, dashes, dots and brackets.
    pub fn new(kind: IdentityKind, value: &str) -> Self {
        let value = match kind {
            IdentityKind::Email => Text::from(value.trim().to_lowercase()),
            IdentityKind::Phone => value
                .chars()
                .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')'))
                .collect(),
            _ => Text::from(value.trim()),
        };
        Identity { kind, value }
    }

    /// An email identity.
    pub fn email(value: &str) -> Self {
        Identity::new(IdentityKind::Email, value)
    }

    /// A phone identity.
    pub fn phone(value: &str) -> Self {
        Identity::new(IdentityKind::Phone, value)
    }

    /// A device identity.
    pub fn device(value: &str) -> Self {
        Identity::new(IdentityKind::Device, value)
    }

    /// A cookie identity.
    pub fn cookie(value: &str) -> Self {
        Identity::new(IdentityKind::Cookie, value)
    }

    /// The same identity in normal form (for identities deserialised from outside).
    #[must_use]
    pub fn normalized(&self) -> Self {
        Identity::new(self.kind.clone(), &self.value)
    }

    pub(crate) fn check(&self) -> Checked {
        if let IdentityKind::Other(name) = &self.kind {
            check::identifier("kind", name)?;
        }
        check::id("value", &self.value)?;
        if *self != self.normalized() {
            return Err(FieldError::new(
                "value",
                format!(
                    "is not in normal form for a {} identity (build it with Identity::new)",
                    self.kind
                ),
            ));
        }
        Ok(())
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Identity({}:<redacted>)", self.kind)
    }
}

/// The status of a consent record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsentStatus {
    /// The customer said yes.
    Granted,
    /// The customer said no (or was never asked and the default is no).
    Denied,
    /// The customer said yes, then withdrew it.
    Revoked,
}

/// Consent for one purpose on one channel, with when it took effect and when it expires.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Consent {
    /// The channel.
    pub channel: Channel,
    /// The purpose (`marketing`, `service`...).
    pub purpose: Purpose,
    /// Granted, denied or revoked.
    pub status: ConsentStatus,
    /// When the status took effect.
    pub since: Timestamp,
    /// When a grant lapses, if it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Timestamp>,
}

impl Consent {
    /// A grant effective from `since`.
    pub fn granted(channel: Channel, purpose: Purpose, since: Timestamp) -> Self {
        Consent {
            channel,
            purpose,
            status: ConsentStatus::Granted,
            since,
            expires_at: None,
        }
    }

    /// A refusal effective from `since`.
    pub fn denied(channel: Channel, purpose: Purpose, since: Timestamp) -> Self {
        Consent {
            status: ConsentStatus::Denied,
            ..Consent::granted(channel, purpose, since)
        }
    }

    /// Whether this record grants consent at `at`.
    pub fn is_granted_at(&self, at: Timestamp) -> bool {
        self.status == ConsentStatus::Granted
            && self.since <= at
            && self.expires_at.is_none_or(|end| at < end)
    }

    fn check(&self) -> Checked {
        self.channel.check("channel")?;
        check::identifier("purpose", self.purpose.as_str())?;
        if self.expires_at.is_some_and(|end| end <= self.since) {
            return Err(FieldError::new("expires_at", "must be after `since`"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use chrono::{TimeDelta, Utc};

    #[test]
    fn identities_are_normalised_and_redacted_in_debug() {
        assert_eq!(
            Identity::email(" Ann@Example.COM "),
            Identity::email("ann@example.com")
        );
        assert_eq!(Identity::phone("+1 (555) 010-2030").value, "+15550102030");
        assert_eq!(
            format!("{:?}", Identity::email("a@b.c")),
            "Identity(email:<redacted>)"
        );
    }

    #[test]
    fn consent_needs_a_current_grant() {
        let now = Utc::now();
        let c = Customer::new("c1").with_consent(Consent {
            expires_at: Some(now + TimeDelta::days(1)),
            ..Consent::granted(Channel::Sms, Purpose::MARKETING, now - TimeDelta::days(1))
        });
        assert!(c.has_consent(&Channel::Sms, &Purpose::MARKETING, now));
        assert!(!c.has_consent(&Channel::Sms, &Purpose::MARKETING, now + TimeDelta::days(2)));
        assert!(!c.has_consent(&Channel::Sms, &Purpose::MARKETING, now - TimeDelta::days(2)));
        assert!(!c.has_consent(&Channel::Email, &Purpose::MARKETING, now));
        let c = c.with_consent(Consent::denied(Channel::Sms, Purpose::MARKETING, now));
        assert_eq!(c.consents.len(), 1);
        assert!(!c.has_consent(&Channel::Sms, &Purpose::MARKETING, now));
    }

    #[test]
    fn validation_names_the_customer_and_the_field() {
        let c = Customer::new("c1").with_attribute("cap", f64::NAN);
        match c.validate() {
            Err(Error::Validation { item, field, .. }) => {
                assert_eq!(item, "customer \"c1\"");
                assert_eq!(field, "attributes.cap");
            }
            other => panic!("expected a validation error, got {other:?}"),
        }
        let now = Utc::now();
        let twice = Customer {
            consents: vec![
                Consent::granted(Channel::Sms, Purpose::MARKETING, now),
                Consent::denied(Channel::Sms, Purpose::MARKETING, now),
            ],
            ..Customer::new("c2")
        };
        assert!(twice.validate().is_err());
        let raw = Customer {
            identities: vec![Identity {
                kind: IdentityKind::Email,
                value: "Ann@Example.com".into(),
            }],
            ..Customer::new("c3")
        };
        assert!(raw.validate().is_err());
        assert!(Customer::new("").validate().is_err());
    }

    #[test]
    fn customers_round_trip_through_json() {
        let now = Utc::now();
        let c = Customer::new("c1")
            .with_attribute("plan", "S")
            .with_pii_attribute("name", "Ann")
            .with_identity(Identity::email("ann@example.com"))
            .with_consent(Consent::granted(Channel::Sms, Purpose::MARKETING, now));
        let json = serde_json::to_string(&c).unwrap_or_default();
        let back: Customer = serde_json::from_str(&json).unwrap_or_else(|_| Customer::new("x"));
        assert_eq!(back, c);
        assert!(back.is_pii("name") && !back.is_pii("plan"));
    }
}
