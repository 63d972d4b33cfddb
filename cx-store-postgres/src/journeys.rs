//! Journey state: the [`JourneyStore`] implementation. A track is a row of `journey_tracks`
//! (watermark, refusals, the kept events as JSON) plus its instances and visits as rows of
//! `journey_instances` and `journey_visits`, which the analytics query.

use crate::codec::{self, count, get};
use crate::customers::CANONICAL;
use crate::{Conn, PostgresStore};
use async_trait::async_trait;
use cx_core::model::{
    CustomerId, InstanceEnd, JourneyEvent, JourneyId, JourneyInstance, JourneyTrack, StageId,
    StageVisit, Subject, Timestamp, TouchpointId,
};
use cx_core::store::{JourneyAdvance, JourneyStore, Placed, group_by_track};
use cx_core::{Error, Result};
use deadpool_postgres::GenericClient;
use std::collections::{BTreeMap, HashMap};
use tokio_postgres::Row;

/// Resolves the batch's subjects, in batch order: aliases by a join, identities by an index
/// probe (the value as given, or in normal form).
const RESOLVE: &str = "SELECT coalesce(a.customer_id, u.id,
        (SELECT i.customer_id FROM customer_identities i
         WHERE u.id IS NULL AND i.kind = u.kind AND i.value IN (u.value, u.normal)
         ORDER BY i.value = u.value DESC LIMIT 1))
    FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) WITH ORDINALITY
         AS u(id, kind, value, normal, ord)
    LEFT JOIN customer_aliases a ON a.alias_id = u.id
    ORDER BY u.ord";

/// Creates the tracks that do not exist yet and locks every one of the call's tracks, in key
/// order (so concurrent calls cannot deadlock), returning their rows. The no-op update is what
/// takes the row lock on a track that exists: concurrent calls for one track are serialised.
const LOCK_TRACKS: &str = "INSERT INTO journey_tracks AS t (customer_id, journey_id)
    SELECT k.c, k.j FROM unnest($1::text[], $2::text[]) AS k(c, j) ORDER BY k.c, k.j
    ON CONFLICT (customer_id, journey_id) DO UPDATE SET too_late = t.too_late
    RETURNING t.customer_id, t.journey_id, t.watermark_us, t.watermark_ns, t.too_late,
              t.events::text";

/// The visits of the given tracks, with their instance's end, in track, instance, visit order.
/// Sent right after [`LOCK_TRACKS`], so it reads the tracks as the lock holder left them.
pub(crate) const VISIT_COLUMNS: &str = "v.customer_id, v.journey_id, v.instance, v.stage_id, \
     v.stage_index, v.entered_us, v.entered_ns, v.left_us, v.left_ns, v.channel, \
     v.touchpoint_id, i.end_reason, i.end_us, i.end_ns";

/// The visits of the tracks `(customer_id[], journey_id[])`.
fn read_visits() -> String {
    format!(
        "SELECT {VISIT_COLUMNS}
         FROM unnest($1::text[], $2::text[]) AS k(c, j)
         JOIN journey_instances i ON i.customer_id = k.c AND i.journey_id = k.j
         JOIN journey_visits v ON v.customer_id = i.customer_id AND v.journey_id = i.journey_id
                              AND v.instance = i.instance
         ORDER BY v.customer_id, v.journey_id, v.instance, v.visit"
    )
}

/// Stores the changed tracks' own columns and drops their instances (and, cascading, visits).
const WRITE_TRACKS: &str = "WITH t AS (
        UPDATE journey_tracks t
        SET watermark_us = u.wus, watermark_ns = u.wns, too_late = u.late, events = u.ev::jsonb
        FROM unnest($1::text[], $2::text[], $3::bigint[], $4::smallint[], $5::bigint[],
                    $6::text[]) AS u(c, j, wus, wns, late, ev)
        WHERE t.customer_id = u.c AND t.journey_id = u.j)
    DELETE FROM journey_instances i USING unnest($1::text[], $2::text[]) AS k(c, j)
    WHERE i.customer_id = k.c AND i.journey_id = k.j";

/// Inserts the changed tracks' instances and visits.
const WRITE_INSTANCES: &str = "WITH i AS (
        INSERT INTO journey_instances (customer_id, journey_id, instance, started_us, started_ns,
                                       end_reason, end_us, end_ns)
        SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::bigint[], $5::smallint[],
                             $6::text[], $7::bigint[], $8::smallint[]))
    INSERT INTO journey_visits (customer_id, journey_id, instance, visit, stage_id, stage_index,
                                entered_us, entered_ns, left_us, left_ns, channel, touchpoint_id)
    SELECT * FROM unnest($9::text[], $10::text[], $11::int[], $12::int[], $13::text[],
                         $14::smallint[], $15::bigint[], $16::smallint[], $17::bigint[],
                         $18::smallint[], $19::text[], $20::text[])";

fn end_of(reason: Option<&str>, at: Option<Timestamp>) -> Result<Option<InstanceEnd>> {
    Ok(match (reason, at) {
        (None, _) => None,
        (Some("completed"), Some(at)) => Some(InstanceEnd::Completed { at }),
        (Some("exited"), Some(at)) => Some(InstanceEnd::Exited { at }),
        (Some("abandoned"), Some(at)) => Some(InstanceEnd::Abandoned { at }),
        (Some(other), _) => {
            return Err(codec::corrupt(format!(
                "journey instance end {other:?} without a known reason and instant"
            )));
        }
    })
}

fn reason_of(end: InstanceEnd) -> &'static str {
    match end {
        InstanceEnd::Completed { .. } => "completed",
        InstanceEnd::Exited { .. } => "exited",
        InstanceEnd::Abandoned { .. } => "abandoned",
    }
}

fn optional_instant(us: Option<i64>, ns: Option<i16>) -> Result<Option<Timestamp>> {
    us.map(|us| codec::join(us, ns.unwrap_or(0))).transpose()
}

/// Tracks rebuilt from rows of [`VISIT_COLUMNS`] (from column `at` on), ordered by track,
/// instance and visit: the instances of each `(customer, journey)`, in order.
pub(crate) fn instances_from<'r>(
    rows: impl IntoIterator<Item = &'r Row>,
    at: usize,
) -> Result<BTreeMap<(String, String), Vec<JourneyInstance>>> {
    let mut out: BTreeMap<(String, String), Vec<JourneyInstance>> = BTreeMap::new();
    let mut last: Option<(String, String, i32)> = None;
    for r in rows {
        let customer: &str = get(r, at)?;
        let journey: &str = get(r, at + 1)?;
        let instance: i32 = get(r, at + 2)?;
        let index = u16::try_from(get::<i16>(r, at + 4)?)
            .map_err(|_| codec::corrupt("negative journey stage index".to_owned()))?;
        let visit = StageVisit::new(
            StageId::new(get::<&str>(r, at + 3)?),
            index,
            codec::join(get(r, at + 5)?, get(r, at + 6)?)?,
            optional_instant(get(r, at + 7)?, get(r, at + 8)?)?,
            codec::channel(get(r, at + 9)?),
            TouchpointId::new(get::<&str>(r, at + 10)?),
        );
        let same_instance = last
            .as_ref()
            .is_some_and(|(c, j, i)| c == customer && j == journey && *i == instance);
        let instances = out
            .entry((customer.to_owned(), journey.to_owned()))
            .or_default();
        match instances.last_mut() {
            Some(current) if same_instance => current.visits.push(visit),
            _ => {
                let end = end_of(
                    get(r, at + 11)?,
                    optional_instant(get(r, at + 12)?, get(r, at + 13)?)?,
                )?;
                instances.push(JourneyInstance::new(vec![visit], end));
            }
        }
        if !same_instance {
            last = Some((customer.to_owned(), journey.to_owned(), instance));
        }
    }
    Ok(out)
}

/// The rows a changed track is written as, column by column (the `UNNEST` arrays).
#[derive(Default)]
struct Columns<'a> {
    // journey_tracks
    t_customer: Vec<&'a str>,
    t_journey: Vec<&'a str>,
    t_wus: Vec<Option<i64>>,
    t_wns: Vec<Option<i16>>,
    t_late: Vec<i64>,
    t_events: Vec<String>,
    // journey_instances
    i_customer: Vec<&'a str>,
    i_journey: Vec<&'a str>,
    i_instance: Vec<i32>,
    i_sus: Vec<i64>,
    i_sns: Vec<i16>,
    i_reason: Vec<Option<&'static str>>,
    i_eus: Vec<Option<i64>>,
    i_ens: Vec<Option<i16>>,
    // journey_visits
    v_customer: Vec<&'a str>,
    v_journey: Vec<&'a str>,
    v_instance: Vec<i32>,
    v_visit: Vec<i32>,
    v_stage: Vec<&'a str>,
    v_index: Vec<i16>,
    v_eus: Vec<i64>,
    v_ens: Vec<i16>,
    v_lus: Vec<Option<i64>>,
    v_lns: Vec<Option<i16>>,
    v_channel: Vec<&'a str>,
    v_touchpoint: Vec<&'a str>,
}

fn position(i: usize, what: &str) -> Result<i32> {
    i32::try_from(i).map_err(|_| {
        Error::validation(
            "journey track",
            what,
            "holds more than 2^31 entries".to_owned(),
        )
    })
}

impl<'a> Columns<'a> {
    fn add(&mut self, track: &'a JourneyTrack) -> Result<()> {
        let (customer, journey) = (track.customer.as_str(), track.journey.as_str());
        let watermark = track.watermark.map(codec::split);
        self.t_customer.push(customer);
        self.t_journey.push(journey);
        self.t_wus.push(watermark.map(|w| w.0));
        self.t_wns.push(watermark.map(|w| w.1));
        self.t_late
            .push(i64::try_from(track.too_late).unwrap_or(i64::MAX));
        self.t_events.push(
            serde_json::to_string(&track.events)
                .map_err(|e| codec::encode_error("journey events", e))?,
        );
        for (n, instance) in track.instances.iter().enumerate() {
            let n = position(n, "instances")?;
            let Some(started) = instance.started_at() else {
                // An instance has at least one visit; one without is nothing to store.
                continue;
            };
            let (sus, sns) = codec::split(started);
            let end = instance.end.map(|e| codec::split(e.at()));
            self.i_customer.push(customer);
            self.i_journey.push(journey);
            self.i_instance.push(n);
            self.i_sus.push(sus);
            self.i_sns.push(sns);
            self.i_reason.push(instance.end.map(reason_of));
            self.i_eus.push(end.map(|e| e.0));
            self.i_ens.push(end.map(|e| e.1));
            for (k, visit) in instance.visits.iter().enumerate() {
                let (eus, ens) = codec::split(visit.entered_at);
                let left = visit.left_at.map(codec::split);
                self.v_customer.push(customer);
                self.v_journey.push(journey);
                self.v_instance.push(n);
                self.v_visit.push(position(k, "visits")?);
                self.v_stage.push(visit.stage.as_str());
                self.v_index
                    .push(i16::try_from(visit.index).unwrap_or(i16::MAX));
                self.v_eus.push(eus);
                self.v_ens.push(ens);
                self.v_lus.push(left.map(|l| l.0));
                self.v_lns.push(left.map(|l| l.1));
                self.v_channel.push(visit.channel.as_str());
                self.v_touchpoint.push(visit.touchpoint.as_str());
            }
        }
        Ok(())
    }
}

impl PostgresStore {
    /// The customer each event's subject resolves to, in batch order; a validation error for the
    /// first identity that resolves to no one.
    async fn resolve_events(
        &self,
        client: &impl GenericClient,
        events: &[JourneyEvent],
        doing: &str,
    ) -> Result<Vec<CustomerId>> {
        let mut ids: Vec<Option<&str>> = Vec::with_capacity(events.len());
        let mut kinds: Vec<Option<&str>> = Vec::with_capacity(events.len());
        let mut values: Vec<Option<&str>> = Vec::with_capacity(events.len());
        let normals: Vec<Option<String>> = events
            .iter()
            .map(|e| e.identity().map(|i| i.normalized().value.to_string()))
            .collect();
        for e in events {
            match &e.subject {
                Subject::Customer(id) => {
                    ids.push(Some(id.as_str()));
                    kinds.push(None);
                    values.push(None);
                }
                Subject::Identity(identity) => {
                    ids.push(None);
                    kinds.push(Some(identity.kind.as_str()));
                    values.push(Some(identity.value.as_str()));
                }
            }
        }
        let rows = self
            .query(client, RESOLVE, &[&ids, &kinds, &values, &normals], doing)
            .await?;
        let mut out = Vec::with_capacity(events.len());
        for (i, (event, row)) in events.iter().zip(&rows).enumerate() {
            match get::<Option<&str>>(row, 0)? {
                Some(id) => out.push(CustomerId::new(id)),
                None => {
                    let kind = event
                        .identity()
                        .map_or_else(String::new, |i| i.kind.to_string());
                    return Err(Error::validation(
                        format!(
                            "journey event of touchpoint {:?} (#{i} in batch)",
                            event.touchpoint.as_str()
                        ),
                        "subject.identity",
                        format!("{kind} identity resolves to no customer"),
                    ));
                }
            }
        }
        if out.len() != events.len() {
            return Err(codec::corrupt(
                "resolving journey subjects returned too few rows".to_owned(),
            ));
        }
        Ok(out)
    }

    /// Locks (creating them as empty tracks where missing) and reads the tracks `keys`.
    async fn lock_tracks(
        &self,
        client: &impl GenericClient,
        keys: &[(CustomerId, JourneyId)],
        doing: &str,
    ) -> Result<HashMap<(String, String), JourneyTrack>> {
        let customers: Vec<&str> = keys.iter().map(|k| k.0.as_str()).collect();
        let journeys: Vec<&str> = keys.iter().map(|k| k.1.as_str()).collect();
        let visits = read_visits();
        let (tracks, visits) = self
            .query_pair(
                client,
                (LOCK_TRACKS, &[&customers, &journeys]),
                (&visits, &[&customers, &journeys]),
                doing,
            )
            .await?;
        let mut instances = instances_from(&visits, 0)?;
        let mut out = HashMap::with_capacity(tracks.len());
        for r in &tracks {
            let customer: &str = get(r, 0)?;
            let journey: &str = get(r, 1)?;
            let key = (customer.to_owned(), journey.to_owned());
            let mut track = JourneyTrack::new(CustomerId::new(customer), JourneyId::new(journey));
            track.watermark = optional_instant(get(r, 2)?, get(r, 3)?)?;
            track.too_late = count(get(r, 4)?);
            track.events = serde_json::from_str(get::<&str>(r, 5)?)
                .map_err(|e| codec::decode_error("journey events", e))?;
            track.instances = instances.remove(&key).unwrap_or_default();
            out.insert(key, track);
        }
        Ok(out)
    }

    /// Writes `tracks` back: their own rows, and their instances and visits replaced.
    async fn write_tracks(
        &self,
        client: &impl GenericClient,
        tracks: &[JourneyTrack],
        doing: &str,
    ) -> Result<()> {
        let mut c = Columns::default();
        for track in tracks {
            c.add(track)?;
        }
        self.query_pair(
            client,
            (
                WRITE_TRACKS,
                &[
                    &c.t_customer,
                    &c.t_journey,
                    &c.t_wus,
                    &c.t_wns,
                    &c.t_late,
                    &c.t_events,
                ],
            ),
            (
                WRITE_INSTANCES,
                &[
                    &c.i_customer,
                    &c.i_journey,
                    &c.i_instance,
                    &c.i_sus,
                    &c.i_sns,
                    &c.i_reason,
                    &c.i_eus,
                    &c.i_ens,
                    &c.v_customer,
                    &c.v_journey,
                    &c.v_instance,
                    &c.v_visit,
                    &c.v_stage,
                    &c.v_index,
                    &c.v_eus,
                    &c.v_ens,
                    &c.v_lus,
                    &c.v_lns,
                    &c.v_channel,
                    &c.v_touchpoint,
                ],
            ),
            doing,
        )
        .await?;
        Ok(())
    }
}

#[async_trait]
impl JourneyStore for PostgresStore {
    /// One transaction under the shared directory lock: resolve the subjects (one round trip),
    /// lock and read the tracks (one, pipelined), advance them in Rust, write back the tracks
    /// that changed (one, pipelined), commit.
    async fn advance_journeys(
        &self,
        events: Vec<JourneyEvent>,
        advance: &dyn JourneyAdvance,
    ) -> Result<Placed> {
        if events.is_empty() {
            return Ok(Placed::default());
        }
        let doing = "advance journeys";
        let mut conn: Conn = self.conn().await?;
        let tx = self.begin(&mut conn, false, doing).await?;
        let resolved = self.resolve_events(&tx, &events, doing).await?;

        let groups = group_by_track(events.into_iter().zip(resolved));
        let keys: Vec<(CustomerId, JourneyId)> = groups.iter().map(|(k, _)| k.clone()).collect();
        let mut stored = self.lock_tracks(&tx, &keys, doing).await?;

        let mut report = Placed::default();
        let mut changed = Vec::new();
        for ((customer, journey), group) in groups {
            let key = (customer.as_str().to_owned(), journey.as_str().to_owned());
            let mut track = stored
                .remove(&key)
                .unwrap_or_else(|| JourneyTrack::new(customer, journey));
            let before = track.clone();
            report = report.plus(advance.advance(&mut track, group));
            if track != before {
                changed.push(track);
            }
        }
        if !changed.is_empty() {
            self.write_tracks(&tx, &changed, doing).await?;
        }
        self.commit(tx, doing).await?;
        Ok(report)
    }

    async fn journey_tracks(&self, customer: &CustomerId) -> Result<Vec<JourneyTrack>> {
        // One statement (one snapshot): each track's row, joined with its visits; the events
        // come on the track's first row only.
        let conn = self.conn().await?;
        let rows = self
            .query(
                &conn,
                &format!(
                    "SELECT t.customer_id, t.journey_id, t.watermark_us, t.watermark_ns,
                            t.too_late,
                            CASE WHEN v.visit IS NULL OR (v.instance = 0 AND v.visit = 0)
                                 THEN t.events::text END,
                            {VISIT_COLUMNS}
                     FROM journey_tracks t
                     LEFT JOIN (journey_instances i
                                JOIN journey_visits v ON v.customer_id = i.customer_id
                                     AND v.journey_id = i.journey_id AND v.instance = i.instance)
                            ON i.customer_id = t.customer_id AND i.journey_id = t.journey_id
                     WHERE t.customer_id = {CANONICAL}
                     ORDER BY t.journey_id, v.instance, v.visit"
                ),
                &[&customer.as_str()],
                "read journey tracks",
            )
            .await?;
        let mut instances = instances_from(
            rows.iter()
                .filter(|r| matches!(get::<Option<i32>>(r, 8), Ok(Some(_)))),
            6,
        )?;
        let mut out: Vec<JourneyTrack> = Vec::new();
        for r in &rows {
            let Some(events) = get::<Option<&str>>(r, 5)? else {
                continue;
            };
            let c: &str = get(r, 0)?;
            let j: &str = get(r, 1)?;
            let mut track = JourneyTrack::new(CustomerId::new(c), JourneyId::new(j));
            track.watermark = optional_instant(get(r, 2)?, get(r, 3)?)?;
            track.too_late = count(get(r, 4)?);
            track.events = serde_json::from_str(events)
                .map_err(|e| codec::decode_error("journey events", e))?;
            track.instances = instances
                .remove(&(c.to_owned(), j.to_owned()))
                .unwrap_or_default();
            out.push(track);
        }
        Ok(out)
    }
}
