//! Journey state: the [`JourneyStore`] implementation, each customer's tracks behind one lock.

use crate::MemoryStore;
use async_trait::async_trait;
use cx_core::model::{CustomerId, JourneyEvent, JourneyId, JourneyTrack, Subject};
use cx_core::store::{JourneyAdvance, JourneyStore, Placed, group_by_track};
use cx_core::{Error, Result};
use foldhash::HashMap;

/// Every customer's tracks, each customer's sorted by journey id.
#[derive(Debug, Default)]
pub(crate) struct Journeys {
    tracks: HashMap<CustomerId, Vec<JourneyTrack>>,
}

impl Journeys {
    /// Every track.
    pub(crate) fn all(&self) -> impl Iterator<Item = &JourneyTrack> {
        self.tracks.values().flatten()
    }

    /// The customer's track of `journey`.
    pub(crate) fn track(
        &self,
        customer: &CustomerId,
        journey: &JourneyId,
    ) -> Option<&JourneyTrack> {
        self.tracks
            .get(customer)?
            .iter()
            .find(|t| &t.journey == journey)
    }

    /// Erases the customer's tracks; returns how many there were.
    pub(crate) fn forget(&mut self, customer: &CustomerId) -> u64 {
        self.tracks.remove(customer).map_or(0, |t| t.len() as u64)
    }

    /// Moves the absorbed customer's tracks of journeys the survivor has none of.
    pub(crate) fn merge(&mut self, survivor: &CustomerId, absorbed: &CustomerId) {
        let Some(moving) = self.tracks.remove(absorbed) else {
            return;
        };
        let mine = self.tracks.entry(survivor.clone()).or_default();
        for mut track in moving {
            if !mine.iter().any(|t| t.journey == track.journey) {
                track.customer = survivor.clone();
                mine.push(track);
            }
        }
        mine.sort_by(|a, b| a.journey.cmp(&b.journey));
    }
}

#[async_trait]
impl JourneyStore for MemoryStore {
    async fn advance_journeys(
        &self,
        events: Vec<JourneyEvent>,
        advance: &dyn JourneyAdvance,
    ) -> Result<Placed> {
        if events.is_empty() {
            return Ok(Placed::default());
        }
        // Lock order: directory, then journeys (see the crate docs). The directory is held so
        // that no merge or erasure changes what the ids resolve to meanwhile.
        let directory = self.directory.read();
        let mut resolved = Vec::with_capacity(events.len());
        for (i, event) in events.into_iter().enumerate() {
            let customer = match &event.subject {
                Subject::Customer(id) => directory.canonical(id).clone(),
                Subject::Identity(identity) => match directory
                    .identity_owner(identity)
                    .or_else(|| directory.identity_owner(&identity.normalized()))
                {
                    Some(owner) => owner.clone(),
                    None => {
                        return Err(Error::validation(
                            format!(
                                "journey event of touchpoint {:?} (#{i} in batch)",
                                event.touchpoint.as_str()
                            ),
                            "subject.identity",
                            format!("{} identity resolves to no customer", identity.kind),
                        ));
                    }
                },
            };
            resolved.push((event, customer));
        }
        let groups = group_by_track(resolved);
        let mut journeys = self.journeys.write();
        let mut report = Placed::default();
        for ((customer, journey), group) in groups {
            let tracks = journeys.tracks.entry(customer.clone()).or_default();
            let at = match tracks.binary_search_by(|t| t.journey.cmp(&journey)) {
                Ok(at) => at,
                Err(at) => {
                    tracks.insert(at, JourneyTrack::new(customer, journey));
                    at
                }
            };
            if let Some(track) = tracks.get_mut(at) {
                report = report.plus(advance.advance(track, group));
            }
        }
        Ok(report)
    }

    async fn journey_tracks(&self, customer: &CustomerId) -> Result<Vec<JourneyTrack>> {
        let directory = self.directory.read();
        let canonical = directory.canonical(customer);
        Ok(self
            .journeys
            .read()
            .tracks
            .get(canonical)
            .cloned()
            .unwrap_or_default())
    }
}
