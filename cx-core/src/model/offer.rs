//! Offers (or actions), the contact-policy rules that limit them and the budgets they draw on.

use super::channel::Channel;
use super::check::{self, Checked, FieldError};
use super::decision::OutcomeKind;
use super::ids::{BudgetId, Category, OfferId, Purpose, Text};
use super::rule::RuleText;
use super::time::{Span, Timestamp};
use super::value::Attributes;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// Something arbitration can choose for a customer: an offer, a message, a next best action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Offer {
    /// Id.
    pub id: OfferId,
    /// Display name.
    pub name: String,
    /// Category (placement allows at most one offer per category; policies can count by it).
    pub category: Category,
    /// Channels it can be delivered on (at least one).
    pub channels: Vec<Channel>,
    /// Who may get it (CEL over `customer.*`, `context.*`, `offer.*`, `features.*` and
    /// `segments.*`, the customer's membership of a segment). No rule: everyone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eligibility: Option<RuleText>,
    /// Whether it is good for the customer (CEL); an unsuitable offer is never chosen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suitability: Option<RuleText>,
    /// Value to the business when accepted (a margin, in the catalogue's currency).
    pub value: f64,
    /// Value to the customer when accepted, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub benefit: Option<f64>,
    /// Business lever: a multiplier the business uses to push or hold back the offer.
    #[serde(default = "one")]
    pub lever: f64,
    /// First instant the offer is valid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_from: Option<Timestamp>,
    /// First instant the offer is no longer valid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_until: Option<Timestamp>,
    /// The consent purpose the customer must have granted on the channel (default `marketing`).
    #[serde(default = "marketing")]
    pub consent_purpose: Purpose,
    /// Contact-policy rules for this offer only (the catalogue's rules apply as well).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contact_policy: Vec<ContactRule>,
    /// The budget it draws on, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<BudgetId>,
    /// Offer fields that rules can read as `offer.<name>` (`price`, `monthly_fee`...).
    #[serde(default, skip_serializing_if = "Attributes::is_empty")]
    pub attributes: Attributes,
    /// The context weight of the score, by channel or placement name (`{sms: 1.2, home_banner:
    /// 0.8}`): the product of the weights of the request's channel and placement; 1 if neither
    /// is listed.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub context_weights: BTreeMap<Text, f64>,
}

fn one() -> f64 {
    1.0
}

fn marketing() -> Purpose {
    Purpose::MARKETING
}

impl Offer {
    /// An offer on `channels` with `value`, no rules, lever 1, purpose `marketing`.
    pub fn new(
        id: impl Into<OfferId>,
        name: impl Into<String>,
        category: impl Into<Category>,
        channels: Vec<Channel>,
        value: f64,
    ) -> Self {
        Offer {
            id: id.into(),
            name: name.into(),
            category: category.into(),
            channels,
            eligibility: None,
            suitability: None,
            value,
            benefit: None,
            lever: 1.0,
            valid_from: None,
            valid_until: None,
            consent_purpose: Purpose::MARKETING,
            contact_policy: Vec::new(),
            budget: None,
            attributes: Attributes::new(),
            context_weights: BTreeMap::new(),
        }
    }

    /// Whether the offer is valid at `at`.
    pub fn is_valid_at(&self, at: Timestamp) -> bool {
        self.valid_from.is_none_or(|start| start <= at)
            && self.valid_until.is_none_or(|end| at < end)
    }

    pub(crate) fn check(&self) -> Checked {
        check::id("id", self.id.as_str())?;
        check::text("name", &self.name)?;
        check::label("category", self.category.as_str())?;
        if self.channels.is_empty() {
            return Err(FieldError::new(
                "channels",
                "is empty: an offer needs a channel",
            ));
        }
        for (i, channel) in self.channels.iter().enumerate() {
            channel.check(&format!("channels[{i}]"))?;
        }
        check::unique("channels", self.channels.iter().map(Channel::as_str))?;
        if let Some(rule) = &self.eligibility {
            rule.check("eligibility")?;
        }
        if let Some(rule) = &self.suitability {
            rule.check("suitability")?;
        }
        check::finite("value", self.value)?;
        if let Some(benefit) = self.benefit {
            check::finite("benefit", benefit)?;
        }
        check::non_negative("lever", self.lever)?;
        if let (Some(start), Some(end)) = (self.valid_from, self.valid_until)
            && end <= start
        {
            return Err(FieldError::new("valid_until", "must be after `valid_from`"));
        }
        check::identifier("consent_purpose", self.consent_purpose.as_str())?;
        for (i, rule) in self.contact_policy.iter().enumerate() {
            rule.check()
                .map_err(|e| e.under(&format!("contact_policy[{i}]")))?;
        }
        if let Some(budget) = &self.budget {
            check::id("budget", budget.as_str())?;
        }
        self.attributes.check("attributes")?;
        for (name, weight) in &self.context_weights {
            check::label("context_weights", name)?;
            check::non_negative(&format!("context_weights.{name}"), *weight)?;
        }
        Ok(())
    }
}

/// Whose contact history a contact-policy rule counts, relative to the offer being considered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContactScope {
    /// Events of this same offer.
    Offer,
    /// Events of any offer in this offer's category.
    Category,
    /// Events of any offer on the requested channel.
    Channel,
    /// Events of any offer.
    All,
}

impl fmt::Display for ContactScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ContactScope::Offer => "offer",
            ContactScope::Category => "category",
            ContactScope::Channel => "channel",
            ContactScope::All => "all offers",
        })
    }
}

/// One contact-policy rule, with one precise meaning.
///
/// An event counts in a window of length `w` from the instant `t` it happened until just before
/// `t + w`.
///
/// - `cap`: the offer is excluded while the customer's history holds `max` or more events of
///   kind `outcome` in `scope` in the sliding window ending now; the cap lifts when the oldest
///   of the last `max` events leaves the window.
/// - `suppress`: each event that completes `after` events of kind `outcome` (default
///   `rejected`) in `scope` within `within` starts a suppression of `duration`; the offer is
///   excluded while one runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "rule", rename_all = "snake_case", deny_unknown_fields)]
pub enum ContactRule {
    /// At most `max` events in a sliding window.
    Cap {
        /// Name shown in explanations (defaults to a description of the rule).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<Text>,
        /// Whose events count.
        scope: ContactScope,
        /// Which events count.
        outcome: OutcomeKind,
        /// The cap.
        max: u32,
        /// The sliding window.
        window: Span,
    },
    /// Suppress for `duration` after `after` events within `within`.
    Suppress {
        /// Name shown in explanations.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<Text>,
        /// Whose events count.
        scope: ContactScope,
        /// Which events count (default `rejected`).
        #[serde(default = "rejected")]
        outcome: OutcomeKind,
        /// How many events trigger the suppression.
        after: u32,
        /// Within how long.
        within: Span,
        /// How long the suppression lasts.
        duration: Span,
    },
}

fn rejected() -> OutcomeKind {
    OutcomeKind::Rejected
}

impl ContactRule {
    /// At most `max` events of `outcome` in `scope` per sliding `window`.
    pub fn cap(scope: ContactScope, outcome: OutcomeKind, max: u32, window: Span) -> Self {
        ContactRule::Cap {
            id: None,
            scope,
            outcome,
            max,
            window,
        }
    }

    /// Suppress for `duration` after `after` rejections in `scope` within `within`.
    pub fn suppress_after_rejections(
        scope: ContactScope,
        after: u32,
        within: Span,
        duration: Span,
    ) -> Self {
        ContactRule::Suppress {
            id: None,
            scope,
            outcome: OutcomeKind::Rejected,
            after,
            within,
            duration,
        }
    }

    /// The scope.
    pub fn scope(&self) -> ContactScope {
        match self {
            ContactRule::Cap { scope, .. } | ContactRule::Suppress { scope, .. } => *scope,
        }
    }

    /// How far back the rule looks: the window, or `within + duration` for a suppression.
    pub fn lookback(&self) -> Span {
        match self {
            ContactRule::Cap { window, .. } => *window,
            ContactRule::Suppress {
                within, duration, ..
            } => Span::from(within.as_delta() + duration.as_delta()),
        }
    }

    pub(crate) fn check(&self) -> Checked {
        let id = match self {
            ContactRule::Cap { id, window, .. } => {
                if window.is_zero() {
                    return Err(FieldError::new("window", "must be longer than zero"));
                }
                id
            }
            ContactRule::Suppress {
                id,
                after,
                within,
                duration,
                ..
            } => {
                if *after == 0 {
                    return Err(FieldError::new("after", "must be at least 1"));
                }
                if within.is_zero() {
                    return Err(FieldError::new("within", "must be longer than zero"));
                }
                if duration.is_zero() {
                    return Err(FieldError::new("duration", "must be longer than zero"));
                }
                id
            }
        };
        if let Some(id) = id {
            check::id("id", id)?;
        }
        Ok(())
    }
}

impl fmt::Display for ContactRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ContactRule::Cap { id: Some(id), .. } | ContactRule::Suppress { id: Some(id), .. } => {
                f.write_str(id)
            }
            ContactRule::Cap {
                scope,
                outcome,
                max,
                window,
                ..
            } => write!(f, "at most {max} {outcome} per {window} ({scope})"),
            ContactRule::Suppress {
                scope,
                outcome,
                after,
                within,
                duration,
                ..
            } => write!(
                f,
                "suppress for {duration} after {after} {outcome} within {within} ({scope})"
            ),
        }
    }
}

/// What consumes a budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BudgetCounts {
    /// Each time an offer drawing on it is chosen by a decision.
    Shown,
    /// Each accepted outcome.
    Accepted,
}

/// The period a budget's limit applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BudgetPeriod {
    /// The limit holds for all time.
    Total,
    /// The limit resets every UTC day.
    Day,
    /// The limit resets every ISO week (Monday, UTC).
    Week,
    /// The limit resets every calendar month (UTC).
    Month,
}

/// A global limit shared by the offers that draw on it, enforced atomically across processes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Budget {
    /// Id that offers refer to.
    pub id: BudgetId,
    /// At most this many per period.
    pub limit: u64,
    /// What counts.
    pub counts: BudgetCounts,
    /// The period.
    pub period: BudgetPeriod,
}

impl Budget {
    /// The key of the period that holds `at` (`total`, `2026-11-22`, `2026-W47`, `2026-11`).
    pub fn period_key(&self, at: Timestamp) -> String {
        use chrono::Datelike;
        // Every decision computes these: plain integer formatting, not `strftime` (which gives
        // the same text for years 0-9999, and is kept for the others: they take a sign).
        let year = at.year();
        let plain = (0..=9999).contains(&year);
        match self.period {
            BudgetPeriod::Total => "total".to_owned(),
            BudgetPeriod::Day if plain => format!("{year:04}-{:02}-{:02}", at.month(), at.day()),
            BudgetPeriod::Day => at.format("%Y-%m-%d").to_string(),
            BudgetPeriod::Week => {
                let week = at.iso_week();
                format!("{}-W{:02}", week.year(), week.week())
            }
            BudgetPeriod::Month if plain => format!("{year:04}-{:02}", at.month()),
            BudgetPeriod::Month => at.format("%Y-%m").to_string(),
        }
    }

    pub(crate) fn check(&self) -> Checked {
        check::id("id", self.id.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn rules_read_from_yaml_with_one_meaning() {
        let yaml = "
- { rule: cap, scope: offer, outcome: shown, max: 3, window: 7d }
- { rule: suppress, scope: all, after: 2, within: 30d, duration: 14d }
";
        let rules: Vec<ContactRule> = serde_norway::from_str(yaml).unwrap();
        assert_eq!(
            rules,
            vec![
                ContactRule::cap(ContactScope::Offer, OutcomeKind::Shown, 3, Span::days(7)),
                ContactRule::suppress_after_rejections(
                    ContactScope::All,
                    2,
                    Span::days(30),
                    Span::days(14)
                ),
            ]
        );
        assert_eq!(rules[0].to_string(), "at most 3 shown per 7d (offer)");
        assert_eq!(rules[1].lookback(), Span::days(44));
        let typo = "- { rule: cap, scope: offer, outcome: shown, max: 3, windw: 7d }";
        assert!(serde_norway::from_str::<Vec<ContactRule>>(typo).is_err());
    }

    #[test]
    fn budget_periods_have_stable_keys() {
        let at = chrono::Utc
            .with_ymd_and_hms(2026, 11, 22, 23, 59, 0)
            .unwrap();
        let mut b = Budget {
            id: "b".into(),
            limit: 10,
            counts: BudgetCounts::Shown,
            period: BudgetPeriod::Day,
        };
        assert_eq!(b.period_key(at), "2026-11-22");
        b.period = BudgetPeriod::Week;
        assert_eq!(b.period_key(at), "2026-W47");
        b.period = BudgetPeriod::Month;
        assert_eq!(b.period_key(at), "2026-11");
        b.period = BudgetPeriod::Total;
        assert_eq!(b.period_key(at), "total");
    }

    #[test]
    fn offers_check_their_numbers_and_windows() {
        let mut o = Offer::new("o", "O", "upsell", vec![Channel::Sms], 10.0);
        assert!(o.check().is_ok());
        o.value = f64::NAN;
        assert_eq!(o.check().unwrap_err().field, "value");
        o.value = 1.0;
        o.channels.clear();
        assert_eq!(o.check().unwrap_err().field, "channels");
        o.channels = vec![Channel::Sms];
        o.contact_policy = vec![ContactRule::cap(
            ContactScope::Offer,
            OutcomeKind::Shown,
            1,
            Span::ZERO,
        )];
        assert_eq!(o.check().unwrap_err().field, "contact_policy[0].window");
    }
}
