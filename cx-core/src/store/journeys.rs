use crate::error::Result;
use crate::model::{CustomerId, JourneyEvent, JourneyId, JourneyTrack, Subject};
use async_trait::async_trait;
use std::collections::HashMap;

/// Events grouped by track: (customer, journey) and the events, in arrival order.
pub type TrackGroups = Vec<((CustomerId, JourneyId), Vec<JourneyEvent>)>;

/// Groups resolved journey events by (customer, journey), in order of first appearance and
/// keeping arrival order within a group; each event's subject becomes its customer. What every
/// backend does between resolving subjects and advancing tracks.
pub fn group_by_track(events: impl IntoIterator<Item = (JourneyEvent, CustomerId)>) -> TrackGroups {
    let mut groups: TrackGroups = Vec::new();
    let mut index: HashMap<(CustomerId, JourneyId), usize> = HashMap::new();
    for (mut event, customer) in events {
        event.subject = Subject::Customer(customer.clone());
        let key = (customer, event.journey.clone());
        match index.get(&key) {
            Some(&g) => {
                if let Some((_, group)) = groups.get_mut(g) {
                    group.push(event);
                }
            }
            None => {
                index.insert(key.clone(), groups.len());
                groups.push((key, vec![event]));
            }
        }
    }
    groups
}

/// Places journey events in a track: the journey engine, handed to the store so that the
/// read-modify-write of a track happens inside the store's lock or transaction.
/// [`CompiledJourneys`](crate::journey::CompiledJourneys) implements it.
pub trait JourneyAdvance: Send + Sync + std::fmt::Debug {
    /// Places `events` (all of `track`'s customer and journey, in arrival order) in `track`.
    fn advance(&self, track: &mut JourneyTrack, events: Vec<JourneyEvent>) -> Placed;
}

/// What placing events in tracks did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Placed {
    /// Events placed (by when they occurred).
    pub placed: u64,
    /// Events already placed before (same touchpoint): ignored.
    pub duplicates: u64,
    /// Events that arrived later than the journey's lateness allows: refused.
    pub too_late: u64,
}

impl Placed {
    /// A report.
    pub fn new(placed: u64, duplicates: u64, too_late: u64) -> Self {
        Placed {
            placed,
            duplicates,
            too_late,
        }
    }

    /// The sum of two reports.
    #[must_use]
    pub fn plus(self, other: Placed) -> Placed {
        Placed::new(
            self.placed + other.placed,
            self.duplicates + other.duplicates,
            self.too_late + other.too_late,
        )
    }
}

/// Each customer's state in each journey.
///
/// # Contract
///
/// - **Resolution.** Event subjects resolve as touchpoint subjects do
///   ([`TouchpointStore`](super::TouchpointStore)): a customer id follows merges, an identity
///   must resolve. If one does not, the call fails with [`Error::Validation`] naming the event's
///   touchpoint and position, and changes nothing. Tracks always carry the resolved id.
/// - **Advance.** `advance_journeys` groups the events by (resolved customer, journey), keeping
///   their order within a group, and for each group calls `advance.advance` once with the
///   stored track (or a new, empty one) and stores the track it leaves. Each group is one
///   atomic read-modify-write: concurrent calls for the same customer and journey are
///   serialised, never interleaved (no lost update). The call is atomic as a whole: readers see
///   every group's new track or none.
/// - **Reads.** `journey_tracks` returns the customer's tracks (following merges) ordered by
///   journey id.
/// - **Forget.** [`forget_customer`](super::CustomerStore::forget_customer) erases the
///   customer's tracks. A merge keeps the survivor's tracks and moves over the absorbed
///   customer's tracks of journeys the survivor has none of.
///
/// [`Error::Validation`]: crate::Error::Validation
#[async_trait]
pub trait JourneyStore: Send + Sync {
    /// Places `events` in their customers' tracks (see the contract).
    async fn advance_journeys(
        &self,
        events: Vec<JourneyEvent>,
        advance: &dyn JourneyAdvance,
    ) -> Result<Placed>;

    /// The customer's tracks, ordered by journey id.
    async fn journey_tracks(&self, customer: &CustomerId) -> Result<Vec<JourneyTrack>>;
}
