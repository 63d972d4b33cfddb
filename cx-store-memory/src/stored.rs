//! How a touchpoint is kept in memory: [`Stored`], with its channel, kind and source as codes of
//! its shard's [`Codes`].
//!
//! Memory is most of the cost of ingest (every new page is faulted in, every random access is a
//! cache and TLB miss), so a stored touchpoint is made small: 80 bytes instead of the 232 of a
//! [`Touchpoint`]. The subject is left out (the timeline's customer is the subject), the rare
//! survey answer is boxed, and the channel, kind and source, a few distinct values repeated on
//! every touchpoint, become 4-byte codes.

use cx_core::arbitration::TouchpointFields;
use cx_core::model::{
    Attributes, Channel, CustomerId, Kind, Subject, SurveyAnswer, Text, Timestamp, Touchpoint,
    TouchpointId,
};
use cx_core::store::TouchpointQuery;
use std::hash::Hash;

/// A touchpoint as stored in a customer's timeline.
#[derive(Debug)]
pub(crate) struct Stored {
    id: TouchpointId,
    attributes: Attributes,
    occurred_at: Timestamp,
    channel: u32,
    kind: u32,
    /// 0 for none, else the source's code + 1.
    source: u32,
    survey: Option<Box<SurveyAnswer>>,
}

impl Stored {
    /// Encodes `t` (its subject is dropped) with `codes`.
    pub(crate) fn new(t: Touchpoint, codes: &mut Codes) -> Self {
        let Touchpoint {
            id,
            subject: _,
            channel,
            kind,
            occurred_at,
            attributes,
            survey,
            source,
        } = t;
        Stored {
            id,
            attributes,
            occurred_at,
            channel: codes.channels.code(channel),
            kind: codes.kinds.code(kind),
            source: source.map_or(0, |s| codes.sources.code(s).saturating_add(1)),
            survey: survey.map(Box::new),
        }
    }

    /// The touchpoint, as `customer`'s, decoded with `codes` (the ones it was encoded with).
    pub(crate) fn to_touchpoint(&self, customer: &CustomerId, codes: &Codes) -> Touchpoint {
        Touchpoint {
            id: self.id.clone(),
            subject: Subject::Customer(customer.clone()),
            channel: codes.channel(self.channel).clone(),
            kind: codes.kind(self.kind).clone(),
            occurred_at: self.occurred_at,
            attributes: self.attributes.clone(),
            survey: self.survey.as_deref().cloned(),
            source: self
                .source
                .checked_sub(1)
                .and_then(|code| codes.sources.get(code))
                .cloned(),
        }
    }

    /// Its id.
    pub(crate) fn id(&self) -> &TouchpointId {
        &self.id
    }

    /// When it occurred.
    pub(crate) fn occurred_at(&self) -> Timestamp {
        self.occurred_at
    }

    /// Its channel's code.
    pub(crate) fn channel(&self) -> u32 {
        self.channel
    }

    /// Its kind's code.
    pub(crate) fn kind(&self) -> u32 {
        self.kind
    }

    /// Its attributes.
    pub(crate) fn attributes(&self) -> &Attributes {
        &self.attributes
    }

    /// Its survey answer, if it has one.
    pub(crate) fn survey(&self) -> Option<&SurveyAnswer> {
        self.survey.as_deref()
    }

    /// The timeline order.
    pub(crate) fn key(&self) -> (Timestamp, &TouchpointId) {
        (self.occurred_at, &self.id)
    }
}

/// A stored touchpoint with its shard's codes, read in place by feature computations.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StoredView<'a> {
    stored: &'a Stored,
    codes: &'a Codes,
}

impl<'a> StoredView<'a> {
    /// `stored`, read with `codes` (the ones it was encoded with).
    pub(crate) fn new(stored: &'a Stored, codes: &'a Codes) -> Self {
        StoredView { stored, codes }
    }
}

impl TouchpointFields for StoredView<'_> {
    #[inline]
    fn occurred_at(&self) -> Timestamp {
        self.stored.occurred_at
    }

    #[inline]
    fn kind(&self) -> &Kind {
        self.codes.kind(self.stored.kind)
    }

    #[inline]
    fn channel(&self) -> &Channel {
        self.codes.channel(self.stored.channel)
    }

    #[inline]
    fn attributes(&self) -> &Attributes {
        &self.stored.attributes
    }

    #[inline]
    fn kind_code(&self) -> Option<u32> {
        Some(self.stored.kind)
    }
}

/// A shard's dictionaries of channels, kinds and sources.
#[derive(Debug, Default)]
pub(crate) struct Codes {
    channels: Dictionary<Channel>,
    kinds: Dictionary<Kind>,
    sources: Dictionary<Text>,
}

/// Stands in for a code that is not in the dictionary; cannot happen, as codes are only made by
/// the dictionary they are read with, which never forgets a value.
static UNKNOWN_CHANNEL: Channel = Channel::Other(Text::const_new("unknown"));
static UNKNOWN_KIND: Kind = Kind::from_static("unknown");

impl Codes {
    /// The channel with code `code`.
    pub(crate) fn channel(&self, code: u32) -> &Channel {
        self.channels.get(code).unwrap_or(&UNKNOWN_CHANNEL)
    }

    /// The kind with code `code`.
    pub(crate) fn kind(&self, code: u32) -> &Kind {
        self.kinds.get(code).unwrap_or(&UNKNOWN_KIND)
    }

    /// How many kinds have a code (codes run from 0).
    pub(crate) fn kind_count(&self) -> usize {
        self.kinds.len()
    }

    /// How many channels have a code (codes run from 0).
    pub(crate) fn channel_count(&self) -> usize {
        self.channels.len()
    }

    /// Whether `n` more touchpoints can be encoded: each adds at most one value to each
    /// dictionary, and codes are `u32`. Checked before a batch is stored, so that storing it
    /// cannot fail halfway.
    pub(crate) fn has_room_for(&self, n: usize) -> bool {
        let most = self
            .channels
            .len()
            .max(self.kinds.len())
            .max(self.sources.len());
        most.saturating_add(n) < u32::MAX as usize
    }

    /// `query` translated to codes, to test stored touchpoints without decoding them.
    pub(crate) fn filter(&self, query: &TouchpointQuery) -> CodeFilter {
        CodeFilter {
            kinds: (!query.kinds.is_empty()).then(|| {
                query
                    .kinds
                    .iter()
                    .filter_map(|k| self.kinds.find(k))
                    .collect()
            }),
            channels: (!query.channels.is_empty()).then(|| {
                query
                    .channels
                    .iter()
                    .filter_map(|c| self.channels.find(c))
                    .collect()
            }),
        }
    }
}

/// The kinds and channels of a [`TouchpointQuery`] as one shard's codes (`None`: all). A kind
/// the shard has never seen has no code, so it matches nothing there, as it should.
#[derive(Debug)]
pub(crate) struct CodeFilter {
    kinds: Option<Vec<u32>>,
    channels: Option<Vec<u32>>,
}

impl CodeFilter {
    /// Whether the filter keeps kind `code`.
    pub(crate) fn keeps_kind(&self, code: u32) -> bool {
        self.kinds.as_ref().is_none_or(|k| k.contains(&code))
    }

    /// Whether the filter keeps channel `code`.
    pub(crate) fn keeps_channel(&self, code: u32) -> bool {
        self.channels.as_ref().is_none_or(|c| c.contains(&code))
    }

    /// Whether `t` has a kept kind and channel (the time range is checked by the caller, which
    /// walks the timeline by time): the test of [`TouchpointQuery::matches`] on codes.
    pub(crate) fn matches(&self, t: &Stored) -> bool {
        self.kinds.as_ref().is_none_or(|k| k.contains(&t.kind))
            && self
                .channels
                .as_ref()
                .is_none_or(|c| c.contains(&t.channel))
    }
}

/// Values and their codes, in the order they were first seen.
#[derive(Debug)]
pub(crate) struct Dictionary<T> {
    values: Vec<T>,
    codes: foldhash::HashMap<T, u32>,
}

impl<T> Default for Dictionary<T> {
    fn default() -> Self {
        Dictionary {
            values: Vec::new(),
            codes: foldhash::HashMap::default(),
        }
    }
}

impl<T: Hash + Eq + Clone> Dictionary<T> {
    /// The code of `value`, adding it if it is new.
    fn code(&mut self, value: T) -> u32 {
        if let Some(&code) = self.codes.get(&value) {
            return code;
        }
        // `Codes::has_room_for` was checked before the batch: the code fits.
        let code = u32::try_from(self.values.len()).unwrap_or(u32::MAX);
        self.values.push(value.clone());
        self.codes.insert(value, code);
        code
    }

    /// The code of `value`, adding a clone of it if it is new.
    pub(crate) fn code_of(&mut self, value: &T) -> u32 {
        match self.codes.get(value) {
            Some(&code) => code,
            None => self.code(value.clone()),
        }
    }

    /// The code of `value`, if it has one.
    pub(crate) fn find<Q>(&self, value: &Q) -> Option<u32>
    where
        T: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.codes.get(value).copied()
    }

    /// The value with code `code`.
    fn get(&self, code: u32) -> Option<&T> {
        self.values.get(usize::try_from(code).ok()?)
    }

    /// How many values have a code (codes run from 0).
    pub(crate) fn len(&self) -> usize {
        self.values.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cx_core::model::{Scale, TimeRange};

    #[test]
    fn a_stored_touchpoint_is_small_and_decodes_to_the_original() {
        assert!(
            std::mem::size_of::<Stored>() <= 80,
            "{}",
            std::mem::size_of::<Stored>()
        );
        let mut codes = Codes::default();
        let at = Timestamp::from_timestamp(1_800_000_000, 5).unwrap_or_default();
        let customer = CustomerId::new("c-1");
        let full = Touchpoint::new(
            "t-1",
            customer.clone(),
            Channel::parse("kiosk"),
            Kind::PURCHASE,
            at,
        )
        .with_attribute("amount", 12.5)
        .with_survey(SurveyAnswer::new("nps", 9.0, Scale::NPS))
        .with_source("pos");
        let bare = Touchpoint::new("t-2", customer.clone(), Channel::Web, Kind::PAGE_VIEW, at);
        for t in [full, bare] {
            let stored = Stored::new(t.clone(), &mut codes);
            assert_eq!(stored.to_touchpoint(&customer, &codes), t);
        }
    }

    #[test]
    fn filters_translate_to_codes() {
        let mut codes = Codes::default();
        let at = Timestamp::from_timestamp(0, 0).unwrap_or_default();
        let web = Stored::new(
            Touchpoint::new("t", CustomerId::new("c"), Channel::Web, Kind::PAGE_VIEW, at),
            &mut codes,
        );
        let all = TouchpointQuery::new(TimeRange::all());
        assert!(codes.filter(&all).matches(&web));
        assert!(
            codes
                .filter(&all.clone().kinds([Kind::PAGE_VIEW]))
                .matches(&web)
        );
        assert!(
            !codes
                .filter(&all.clone().kinds([Kind::PURCHASE]))
                .matches(&web)
        );
        assert!(
            !codes
                .filter(&all.clone().channels([Channel::Sms]))
                .matches(&web)
        );
        assert!(codes.has_room_for(1_000_000));
    }
}
