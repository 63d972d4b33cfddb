//! Channels: where an interaction happens or an offer is delivered.

use super::check::{self, Checked};
use super::ids::Text;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// A channel. The common ones are variants; any other is `Other(name)` (written as its name).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Channel {
    /// Web site.
    Web,
    /// Mobile app.
    App,
    /// Phone call.
    Call,
    /// Live chat.
    Chat,
    /// Email.
    Email,
    /// SMS.
    Sms,
    /// Physical store.
    Store,
    /// Survey.
    Survey,
    /// Social media.
    Social,
    /// Any other channel, by name (`push`, `kiosk`...).
    Other(Text),
}

impl Channel {
    /// The channel's name, as written in definitions.
    pub fn as_str(&self) -> &str {
        match self {
            Channel::Web => "web",
            Channel::App => "app",
            Channel::Call => "call",
            Channel::Chat => "chat",
            Channel::Email => "email",
            Channel::Sms => "sms",
            Channel::Store => "store",
            Channel::Survey => "survey",
            Channel::Social => "social",
            Channel::Other(name) => name.as_str(),
        }
    }

    /// The channel named `name`; names of the common channels give their variant.
    pub fn parse(name: &str) -> Channel {
        match name {
            "web" => Channel::Web,
            "app" => Channel::App,
            "call" => Channel::Call,
            "chat" => Channel::Chat,
            "email" => Channel::Email,
            "sms" => Channel::Sms,
            "store" => Channel::Store,
            "survey" => Channel::Survey,
            "social" => Channel::Social,
            other => Channel::Other(Text::from(other)),
        }
    }

    /// The common channels, in the order above.
    pub const COMMON: [Channel; 9] = [
        Channel::Web,
        Channel::App,
        Channel::Call,
        Channel::Chat,
        Channel::Email,
        Channel::Sms,
        Channel::Store,
        Channel::Survey,
        Channel::Social,
    ];

    pub(crate) fn check(&self, field: &str) -> Checked {
        match self {
            Channel::Other(name) => check::label(field, name),
            _ => Ok(()),
        }
    }
}

impl fmt::Debug for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<&str> for Channel {
    fn from(name: &str) -> Self {
        Channel::parse(name)
    }
}

impl Serialize for Channel {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Channel {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Ok(Channel::parse(&name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for c in Channel::COMMON {
            assert_eq!(Channel::parse(c.as_str()), c);
        }
        assert_eq!(Channel::parse("push"), Channel::Other("push".into()));
        assert!(Channel::parse("no spaces").check("channel").is_err());
    }
}
