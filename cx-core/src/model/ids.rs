//! Ids and names: small string newtypes that stay inline (no heap) up to 24 bytes.

use compact_str::CompactString;
use std::borrow::Borrow;
use std::fmt;

/// An immutable short string; inline up to 24 bytes. Used for ids, names and string values.
pub type Text = CompactString;

macro_rules! string_newtype {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(Text);

        impl $name {
            /// Wraps a string. Validation happens when the record or definition holding it is
            /// validated, so constructing never fails.
            pub fn new(value: impl Into<Text>) -> Self {
                $name(value.into())
            }

            /// A constant, for names known at compile time (at most 24 bytes).
            pub const fn from_static(value: &'static str) -> Self {
                $name(Text::const_new(value))
            }

            /// The string.
            #[inline]
            pub fn as_str(&self) -> &str {
                self.0.as_str()
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(self.0.as_str(), f)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.0.as_str())
            }
        }

        impl From<&str> for $name {
            fn from(value: &str) -> Self {
                $name(Text::from(value))
            }
        }

        impl From<String> for $name {
            fn from(value: String) -> Self {
                $name(Text::from(value))
            }
        }

        impl From<Text> for $name {
            fn from(value: Text) -> Self {
                $name(value)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                self.0.as_str()
            }
        }

        impl Borrow<str> for $name {
            fn borrow(&self) -> &str {
                self.0.as_str()
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0.as_str() == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0.as_str() == *other
            }
        }
    };
}

string_newtype!(
    /// A customer's external id (the id your systems know them by).
    CustomerId
);
string_newtype!(
    /// A touchpoint's id, unique per customer; ingest is idempotent by it.
    TouchpointId
);
string_newtype!(
    /// An offer's (or action's) id.
    OfferId
);
string_newtype!(
    /// A decision's id.
    DecisionId
);
string_newtype!(
    /// An owner's id in the catalogue's owner registry.
    OwnerId
);
string_newtype!(
    /// A journey's id.
    JourneyId
);
string_newtype!(
    /// A stage's id, unique within its journey.
    StageId
);
string_newtype!(
    /// A KPI's id.
    KpiId
);
string_newtype!(
    /// A segment's id (an identifier, so rules can name it).
    SegmentId
);
string_newtype!(
    /// A feature's id (an identifier, so rules can name it: `features.<id>`).
    FeatureId
);
string_newtype!(
    /// An offer category (`upsell`, `retention`, ...); contact policies and placement use it.
    Category
);
string_newtype!(
    /// A consent purpose (`marketing`, `service`, `profiling`, ...).
    Purpose
);
string_newtype!(
    /// What happened at a touchpoint (`page_view`, `purchase`, `complaint`, ...).
    Kind
);
string_newtype!(
    /// An attribute name (an identifier, so rules can name it: `customer.<name>`).
    Name
);
string_newtype!(
    /// A budget's id.
    BudgetId
);

string_newtype!(
    /// The id of a real-time trigger.
    TriggerId
);

string_newtype!(
    /// The id of a closed-loop follow-up rule.
    FollowUpRuleId
);

string_newtype!(
    /// The id of a follow-up case.
    CaseId
);

impl Kind {
    /// A page was viewed.
    pub const PAGE_VIEW: Kind = Kind::from_static("page_view");
    /// A product page was viewed.
    pub const PRODUCT_VIEW: Kind = Kind::from_static("product_view");
    /// An item was added to a cart.
    pub const ADD_TO_CART: Kind = Kind::from_static("add_to_cart");
    /// A purchase.
    pub const PURCHASE: Kind = Kind::from_static("purchase");
    /// A complaint.
    pub const COMPLAINT: Kind = Kind::from_static("complaint");
    /// A survey was answered.
    pub const SURVEY_RESPONSE: Kind = Kind::from_static("survey_response");
    /// An offer was shown.
    pub const OFFER_SHOWN: Kind = Kind::from_static("offer_shown");
    /// A support contact (call, chat).
    pub const SUPPORT_CONTACT: Kind = Kind::from_static("support_contact");
    /// A message (email, sms, push) was sent to the customer.
    pub const MESSAGE_SENT: Kind = Kind::from_static("message_sent");
    /// A message was opened.
    pub const MESSAGE_OPENED: Kind = Kind::from_static("message_opened");
    /// Usage was recorded (data, minutes...).
    pub const USAGE: Kind = Kind::from_static("usage");
    /// The customer signed up.
    pub const SIGN_UP: Kind = Kind::from_static("sign_up");
}

impl Purpose {
    /// Marketing messages and offers.
    pub const MARKETING: Purpose = Purpose::from_static("marketing");
    /// Service messages the customer needs (billing, outages).
    pub const SERVICE: Purpose = Purpose::from_static("service");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_serialise_as_plain_strings() {
        let id = CustomerId::new("c-42");
        assert_eq!(serde_json::to_string(&id).ok(), Some("\"c-42\"".to_owned()));
        let back: CustomerId = serde_json::from_str("\"c-42\"").unwrap_or_default();
        assert_eq!(back, id);
        assert_eq!(format!("{id} {id:?}"), "c-42 \"c-42\"");
    }
}
