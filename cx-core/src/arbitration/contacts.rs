//! What decisions under one compiled catalogue read of a customer's contact history, resolved
//! once: [`ContactInputs`], which a store keeps with the customer until the history changes.

use super::compiled::CompiledCatalog;
use super::features::partition_point_ends;
use crate::model::{Channel, ContactEvent, OutcomeKind, TimeRange, Timestamp};

/// A customer's contact history from an instant on, as one compiled catalogue's contact
/// policies count it ([`CompiledCatalog::contact_inputs`]): the events of the kinds its rules
/// count, each with its offer and category found in the catalogue. A decision given a
/// [`window`](Self::window) of them counts the same as one given the events of that window.
#[derive(Debug, Clone)]
pub struct ContactInputs {
    /// The [`CompiledCatalog::id`] they were read for.
    catalog: u64,
    /// The instant from which every event was read.
    from: Timestamp,
    /// The channels of the events, each once.
    channels: Box<[Channel]>,
    /// The events, oldest first.
    events: Box<[KeptEvent]>,
}

/// A contact event, resolved.
#[derive(Debug, Clone, Copy)]
pub(crate) struct KeptEvent {
    /// The instant, to select a window exactly.
    pub(crate) at: Timestamp,
    /// The same in microseconds since the Unix epoch, rounded down, as rules count it.
    pub(crate) micros: i64,
    /// The offer's index in the catalogue, if it has the offer.
    pub(crate) offer: Option<u32>,
    /// The category's index in the catalogue, if it has the category.
    pub(crate) category: Option<u32>,
    /// The channel's position in [`ContactInputs::channels`].
    pub(crate) channel: u32,
    pub(crate) kind: OutcomeKind,
}

/// The events of [`ContactInputs`] in one range of instants.
#[derive(Debug, Clone, Copy)]
pub struct ContactWindow<'a> {
    inputs: &'a ContactInputs,
    events: &'a [KeptEvent],
}

impl ContactInputs {
    /// Whether they were read for `catalog` and hold every event of `range`.
    pub fn serve(&self, catalog: &CompiledCatalog, range: &TimeRange) -> bool {
        self.catalog == catalog.id && range.start >= self.from
    }

    /// Their events in `range` (which they must [`serve`](Self::serve)).
    pub fn window(&self, range: &TimeRange) -> ContactWindow<'_> {
        let (start, end) = (
            first_at(&self.events, range.start),
            first_at(&self.events, range.end),
        );
        ContactWindow {
            inputs: self,
            events: self.events.get(start..end.max(start)).unwrap_or_default(),
        }
    }

    /// The bytes they hold on the heap.
    pub fn heap_bytes(&self) -> usize {
        std::mem::size_of_val(&*self.channels) + std::mem::size_of_val(&*self.events)
    }

    /// Asks the processor to fetch them into its caches, for a decision soon after (a store
    /// prefetches the next customers' while it decides for one).
    pub fn prefetch(&self) {
        crate::prefetch::prefetch_lines(&self.events);
        if let Some(first) = self.channels.first() {
            mem_prefetch::prefetch_read_data::<_, 3>(first);
        }
    }
}

impl<'a> ContactWindow<'a> {
    /// How many events it holds (of the kinds the catalogue's rules count).
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// Whether the inputs were read for `catalog`.
    pub(crate) fn serve(&self, catalog: &CompiledCatalog) -> bool {
        self.inputs.catalog == catalog.id
    }

    /// The events, oldest first.
    pub(crate) fn events(&self) -> &'a [KeptEvent] {
        self.events
    }

    /// The code of `channel` in the events, if any is on it.
    pub(crate) fn channel_code(&self, channel: &Channel) -> Option<u32> {
        let position = self.inputs.channels.iter().position(|c| c == channel)?;
        u32::try_from(position).ok()
    }
}

impl CompiledCatalog {
    /// What decisions under this catalogue read of `contacts`, a customer's contact history
    /// from `from` on (every event at or after it): read once and given to many decisions
    /// (see [`DecisionInput::contact_inputs`](super::DecisionInput::contact_inputs)), which then
    /// find no offer or category by its id.
    pub fn contact_inputs(&self, contacts: &[ContactEvent], from: Timestamp) -> ContactInputs {
        let mut channels: Vec<Channel> = Vec::new();
        let mut events: Vec<KeptEvent> = contacts
            .iter()
            .filter(|e| e.at >= from && self.counts(e.kind))
            .map(|e| {
                let channel = match channels.iter().position(|c| c == &e.channel) {
                    Some(position) => position,
                    None => {
                        channels.push(e.channel.clone());
                        channels.len() - 1
                    }
                };
                let (offer, category) = self.contact_keys(e);
                KeptEvent {
                    at: e.at,
                    micros: e.at.timestamp_micros(),
                    offer,
                    category,
                    channel: u32::try_from(channel).unwrap_or(u32::MAX),
                    kind: e.kind,
                }
            })
            .collect();
        // Stable: equal instants stay in the order they were given.
        events.sort_by_key(|e| e.at);
        ContactInputs {
            catalog: self.id,
            from,
            channels: channels.into_boxed_slice(),
            events: events.into_boxed_slice(),
        }
    }

    /// Whether some contact-policy rule counts events of `kind`.
    pub(crate) fn counts(&self, kind: OutcomeKind) -> bool {
        self.contact_kinds & 1 << kind as u8 != 0
    }

    /// The catalogue's indices of the offer and the category of `event`.
    pub(crate) fn contact_keys(&self, event: &ContactEvent) -> (Option<u32>, Option<u32>) {
        let offer = self.offer_of(&event.offer);
        // The event's category is usually its offer's: one comparison, not a lookup.
        let category = match offer.and_then(|o| self.offers.get(o as usize)) {
            Some(o) if o.in_category(event.category.as_str()) => Some(o.category),
            _ => self.category_index.get(&event.category).copied(),
        };
        (offer, category)
    }
}

/// The position of the first of `events` (oldest first) at or after `at`: the ends are looked
/// at first, as a decision's window usually holds every event.
fn first_at(events: &[KeptEvent], at: Timestamp) -> usize {
    partition_point_ends(events, |e| e.at < at)
}
