//! Customers: profiles, the identity index, merge aliases; the [`CustomerStore`]
//! implementation.

use crate::PostgresStore;
use crate::codec::{self, count, get};
use async_trait::async_trait;
use cx_core::model::{Customer, CustomerId, Identity};
use cx_core::store::{CustomerScan, CustomerStore, ForgetReport, MergeReport, UpsertReport};
use cx_core::{Error, Result};
use std::collections::HashMap;

/// The id `$1` stands for: the customer it was merged into, or itself.
pub(crate) const CANONICAL: &str =
    "coalesce((SELECT a.customer_id FROM customer_aliases a WHERE a.alias_id = $1), $1)";

/// Checks a batch before it goes to the database: each customer valid and storable, no id twice,
/// no identity claimed twice.
fn check_batch(customers: &[Customer]) -> Result<()> {
    let mut ids: HashMap<&CustomerId, usize> = HashMap::with_capacity(customers.len());
    for (i, c) in customers.iter().enumerate() {
        c.validate()?;
        if let Some(field) = codec::nul_in(&c.attributes) {
            return Err(codec::nul_error(
                format!("customer {:?}", c.id.as_str()),
                format!("attributes.{field}"),
            ));
        }
        if let Some(first) = ids.insert(&c.id, i) {
            return Err(Error::validation(
                format!("customer {:?} (#{i} in batch)", c.id.as_str()),
                "id",
                format!("repeats customer #{first} of the same batch"),
            ));
        }
    }
    let mut claims: HashMap<&Identity, &CustomerId> = HashMap::new();
    for c in customers {
        for (k, identity) in c.identities.iter().enumerate() {
            if let Some(other) = claims.insert(identity, &c.id) {
                return Err(Error::conflict(
                    "customer",
                    c.id.as_str(),
                    format!(
                        "its {} identity (identities[{k}]) is also claimed by customer {:?} in \
                         the same batch",
                        identity.kind,
                        other.as_str()
                    ),
                ));
            }
        }
    }
    Ok(())
}

fn profile_json(c: &Customer) -> Result<String> {
    serde_json::to_string(c).map_err(|e| codec::encode_error("customer profile", e))
}

fn profile_from(text: &str) -> Result<Customer> {
    serde_json::from_str(text).map_err(|e| codec::decode_error("customer profile", e))
}

#[async_trait]
impl CustomerStore for PostgresStore {
    async fn upsert_customers(&self, customers: Vec<Customer>) -> Result<UpsertReport> {
        check_batch(&customers)?;
        if customers.is_empty() {
            return Ok(UpsertReport::default());
        }
        let doing = "upsert customers";
        let ids: Vec<&str> = customers.iter().map(|c| c.id.as_str()).collect();
        let profiles = customers
            .iter()
            .map(profile_json)
            .collect::<Result<Vec<String>>>()?;
        let (mut owners, mut kinds, mut values, mut ords, mut slots) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (i, c) in customers.iter().enumerate() {
            for (k, identity) in c.identities.iter().enumerate() {
                owners.push(c.id.as_str());
                kinds.push(identity.kind.as_str());
                values.push(identity.value.as_str());
                ords.push(i32::try_from(i).unwrap_or(i32::MAX));
                slots.push(i32::try_from(k).unwrap_or(i32::MAX));
            }
        }

        let mut conn = self.conn().await?;
        let tx = self.begin(&mut conn, false, doing).await?;
        // An id that was merged into another customer cannot get a profile of its own.
        let merged = self
            .query(
                &tx,
                "SELECT a.alias_id, a.customer_id FROM customer_aliases a
                 WHERE a.alias_id = ANY($1::text[])",
                &[&ids],
                doing,
            )
            .await?;
        let merged = merged
            .iter()
            .map(|r| Ok((get::<&str>(r, 0)?, get::<&str>(r, 1)?)))
            .collect::<Result<Vec<_>>>()?;
        if let Some(row) = merged
            .into_iter()
            .min_by_key(|(alias, _)| ids.iter().position(|id| id == alias))
        {
            return Err(Error::conflict(
                "customer",
                row.0,
                format!(
                    "was merged into customer {:?}; update that customer instead",
                    row.1
                ),
            ));
        }
        // An identity held by a customer outside the batch is a conflict. (One held by a
        // customer of the batch that no longer lists it is free: the batch applies at once.)
        if !kinds.is_empty() {
            let held = self
                .query(
                    &tx,
                    "SELECT b.ord, b.slot, b.kind, i.customer_id
                     FROM unnest($1::text[], $2::text[], $3::int[], $4::int[]) AS b(kind, value, ord, slot)
                     JOIN customer_identities i ON i.kind = b.kind AND i.value = b.value
                     WHERE i.customer_id <> ALL($5::text[])
                     ORDER BY b.ord, b.slot
                     LIMIT 1",
                    &[&kinds, &values, &ords, &slots, &ids],
                    doing,
                )
                .await?;
            if let Some(row) = held.first() {
                let (ord, slot, kind, owner): (i32, i32, &str, &str) =
                    (get(row, 0)?, get(row, 1)?, get(row, 2)?, get(row, 3)?);
                let claimant = usize::try_from(ord)
                    .ok()
                    .and_then(|i| ids.get(i))
                    .copied()
                    .unwrap_or_default();
                return Err(Error::conflict(
                    "customer",
                    claimant,
                    format!(
                        "its {kind} identity (identities[{slot}]) already belongs to customer \
                         {owner:?}"
                    ),
                ));
            }
        }
        self.execute(
            &tx,
            "DELETE FROM customer_identities WHERE customer_id = ANY($1::text[])",
            &[&ids],
            doing,
        )
        .await?;
        if !kinds.is_empty() {
            self.execute(
                &tx,
                "INSERT INTO customer_identities (customer_id, kind, value)
                 SELECT * FROM unnest($1::text[], $2::text[], $3::text[])",
                &[&owners, &kinds, &values],
                doing,
            )
            .await?;
        }
        let rows = self
            .query(
                &tx,
                "INSERT INTO customers AS c (customer_id, profile)
                 SELECT u.id, u.profile::jsonb FROM unnest($1::text[], $2::text[]) AS u(id, profile)
                 ON CONFLICT (customer_id) DO UPDATE SET profile = EXCLUDED.profile
                 RETURNING (c.xmax = 0) AS inserted",
                &[&ids, &profiles],
                doing,
            )
            .await?;
        self.commit(tx, doing).await?;
        let mut inserted = 0;
        for r in &rows {
            inserted += u64::from(get::<bool>(r, 0)?);
        }
        Ok(UpsertReport::new(inserted, rows.len() as u64 - inserted))
    }

    async fn customer(&self, id: &CustomerId) -> Result<Option<Customer>> {
        let conn = self.conn().await?;
        let rows = self
            .query(
                &conn,
                "SELECT profile::text FROM customers WHERE customer_id = $1",
                &[&id.as_str()],
                "read a customer",
            )
            .await?;
        rows.first().map(|r| profile_from(get(r, 0)?)).transpose()
    }

    async fn customers(&self, ids: &[CustomerId]) -> Result<Vec<Option<Customer>>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let wanted: Vec<&str> = ids.iter().map(CustomerId::as_str).collect();
        let conn = self.conn().await?;
        let rows = self
            .query(
                &conn,
                "SELECT customer_id, profile::text FROM customers
                 WHERE customer_id = ANY($1::text[])",
                &[&wanted],
                "read customers",
            )
            .await?;
        let mut found: HashMap<&str, Customer> = HashMap::with_capacity(rows.len());
        for r in &rows {
            found.insert(get(r, 0)?, profile_from(get(r, 1)?)?);
        }
        Ok(wanted.iter().map(|id| found.get(id).cloned()).collect())
    }

    async fn resolve_identity(&self, identity: &Identity) -> Result<Option<CustomerId>> {
        // Stored identities are in normal form; accept one built without `Identity::new` too.
        let normal = identity.normalized();
        let values = [identity.value.as_str(), normal.value.as_str()];
        let conn = self.conn().await?;
        let rows = self
            .query(
                &conn,
                "SELECT customer_id FROM customer_identities
                 WHERE kind = $1 AND value = ANY($2::text[])
                 ORDER BY value = $3 DESC LIMIT 1",
                &[
                    &identity.kind.as_str(),
                    &&values[..],
                    &identity.value.as_str(),
                ],
                "resolve an identity",
            )
            .await?;
        rows.first()
            .map(|r| Ok(CustomerId::new(get::<&str>(r, 0)?)))
            .transpose()
    }

    async fn resolve_customer(&self, id: &CustomerId) -> Result<Option<CustomerId>> {
        let conn = self.conn().await?;
        let rows = self
            .query(
                &conn,
                &format!("SELECT customer_id FROM customers WHERE customer_id = {CANONICAL}"),
                &[&id.as_str()],
                "resolve a customer id",
            )
            .await?;
        rows.first()
            .map(|r| Ok(CustomerId::new(get::<&str>(r, 0)?)))
            .transpose()
    }

    async fn merge_customers(
        &self,
        survivor: &CustomerId,
        absorbed: &CustomerId,
    ) -> Result<MergeReport> {
        cx_core::store::check_merge(survivor, absorbed)?;
        let doing = "merge customers";
        let (s, a) = (survivor.as_str(), absorbed.as_str());
        let mut conn = self.conn().await?;
        let tx = self.begin(&mut conn, true, doing).await?;
        let rows = self
            .query(
                &tx,
                "SELECT customer_id, profile::text FROM customers
                 WHERE customer_id IN ($1, $2) FOR UPDATE",
                &[&s, &a],
                doing,
            )
            .await?;
        let mut kept = None;
        let mut gone = None;
        for r in &rows {
            let profile = profile_from(get(r, 1)?)?;
            if get::<&str>(r, 0)? == s {
                kept = Some(profile);
            } else {
                gone = Some(profile);
            }
        }
        let Some(mut kept) = kept else {
            return Err(Error::not_found("customer", s));
        };
        let Some(gone) = gone else {
            return Err(Error::not_found("customer", a));
        };
        let identities_added = kept.absorb(gone);
        kept.id = survivor.clone();
        let profile = profile_json(&kept)?;

        self.execute(
            &tx,
            "UPDATE customers SET profile = $2::text::jsonb WHERE customer_id = $1",
            &[&s, &profile],
            doing,
        )
        .await?;
        self.execute(
            &tx,
            "DELETE FROM customers WHERE customer_id = $1",
            &[&a],
            doing,
        )
        .await?;
        self.execute(
            &tx,
            "UPDATE customer_identities SET customer_id = $1 WHERE customer_id = $2",
            &[&s, &a],
            doing,
        )
        .await?;
        // Touchpoints change key: insert under the survivor (its own version of a shared id
        // stays), then delete the absorbed customer's.
        let touchpoints_moved = self
            .execute(
                &tx,
                "INSERT INTO touchpoints
                 SELECT $1, touchpoint_id, occurred_us, occurred_ns, channel, kind, source,
                        attributes, survey_question, survey_score, survey_min, survey_max
                 FROM touchpoints WHERE customer_id = $2
                 ORDER BY occurred_us, occurred_ns, touchpoint_id
                 ON CONFLICT DO NOTHING",
                &[&s, &a],
                doing,
            )
            .await?;
        self.execute(
            &tx,
            "DELETE FROM touchpoints WHERE customer_id = $1",
            &[&a],
            doing,
        )
        .await?;
        let decisions_moved = self
            .execute(
                &tx,
                "UPDATE decisions SET customer_id = $1 WHERE customer_id = $2",
                &[&s, &a],
                doing,
            )
            .await?;
        self.execute(
            &tx,
            "UPDATE contacts SET customer_id = $1 WHERE customer_id = $2",
            &[&s, &a],
            doing,
        )
        .await?;
        // Journey tracks: the survivor keeps its own; the absorbed customer's tracks of other
        // journeys move over (their instances and visits follow by `ON UPDATE CASCADE`), and
        // the rest go (`ON DELETE CASCADE`).
        self.execute(
            &tx,
            "UPDATE journey_tracks SET customer_id = $1
             WHERE customer_id = $2
               AND journey_id NOT IN (SELECT s.journey_id FROM journey_tracks s
                                      WHERE s.customer_id = $1)",
            &[&s, &a],
            doing,
        )
        .await?;
        self.execute(
            &tx,
            "DELETE FROM journey_tracks WHERE customer_id = $1",
            &[&a],
            doing,
        )
        .await?;
        self.execute(
            &tx,
            "UPDATE follow_up_cases SET customer_id = $1 WHERE customer_id = $2",
            &[&s, &a],
            doing,
        )
        .await?;
        // Aliases stay one hop: ids merged into the absorbed customer now point at the survivor.
        self.execute(
            &tx,
            "UPDATE customer_aliases SET customer_id = $1 WHERE customer_id = $2",
            &[&s, &a],
            doing,
        )
        .await?;
        self.execute(
            &tx,
            "INSERT INTO customer_aliases (alias_id, customer_id) VALUES ($2, $1)",
            &[&s, &a],
            doing,
        )
        .await?;
        self.commit(tx, doing).await?;
        Ok(MergeReport::new(
            touchpoints_moved,
            decisions_moved,
            identities_added,
        ))
    }

    async fn forget_customer(&self, id: &CustomerId) -> Result<ForgetReport> {
        let doing = "forget a customer";
        let mut conn = self.conn().await?;
        let tx = self.begin(&mut conn, true, doing).await?;
        let rows = self
            .query(&tx, &format!("SELECT {CANONICAL}"), &[&id.as_str()], doing)
            .await?;
        let canonical: String = rows
            .first()
            .map(|r| get::<String>(r, 0))
            .transpose()?
            .unwrap_or_else(|| id.as_str().to_owned());
        let c = canonical.as_str();
        // One statement erases everything and counts what it erased.
        let rows = self
            .query(
                &tx,
                "WITH p AS (DELETE FROM customers WHERE customer_id = $1 RETURNING 1),
                      i AS (DELETE FROM customer_identities WHERE customer_id = $1 RETURNING 1),
                      a AS (DELETE FROM customer_aliases WHERE customer_id = $1 RETURNING 1),
                      t AS (DELETE FROM touchpoints WHERE customer_id = $1 RETURNING 1),
                      d AS (DELETE FROM decisions WHERE customer_id = $1 RETURNING 1),
                      c AS (DELETE FROM contacts WHERE customer_id = $1 RETURNING 1),
                      j AS (DELETE FROM journey_tracks WHERE customer_id = $1 RETURNING 1),
                      f AS (DELETE FROM follow_up_cases WHERE customer_id = $1 RETURNING 1)
                 SELECT (SELECT count(*) FROM p), (SELECT count(*) FROM t),
                        (SELECT count(*) FROM d), (SELECT count(*) FROM c),
                        (SELECT count(*) FROM i), (SELECT count(*) FROM a),
                        (SELECT count(*) FROM j), (SELECT count(*) FROM f)",
                &[&c],
                doing,
            )
            .await?;
        self.commit(tx, doing).await?;
        let r = rows
            .first()
            .ok_or_else(|| codec::corrupt("forget returned no counts".to_owned()))?;
        Ok(ForgetReport::new(
            get::<i64>(r, 0)? > 0,
            count(get(r, 1)?),
            count(get(r, 2)?),
            count(get(r, 3)?),
        )
        .with_journey_state(count(get(r, 6)?), count(get(r, 7)?)))
    }

    async fn count_customers(&self) -> Result<u64> {
        let conn = self.conn().await?;
        let rows = self
            .query(
                &conn,
                "SELECT count(*) FROM customers",
                &[],
                "count customers",
            )
            .await?;
        rows.first().map_or(Ok(0), |r| Ok(count(get(r, 0)?)))
    }
}

#[async_trait]
impl CustomerScan for PostgresStore {
    /// Keyset pagination on the primary key: `customer_id > $1 ORDER BY customer_id LIMIT $2`
    /// (byte order, `COLLATE "C"`). Only stored profiles are read, so merged-away and forgotten
    /// customers never appear.
    async fn customer_page(
        &self,
        after: Option<&CustomerId>,
        limit: usize,
    ) -> Result<Vec<Customer>> {
        let limit = i64::try_from(limit.max(1)).unwrap_or(i64::MAX);
        let doing = "read a page of customers";
        let conn = self.conn().await?;
        let rows = match after {
            None => {
                self.query(
                    &conn,
                    "SELECT profile::text FROM customers ORDER BY customer_id LIMIT $1",
                    &[&limit],
                    doing,
                )
                .await?
            }
            Some(after) => {
                self.query(
                    &conn,
                    "SELECT profile::text FROM customers WHERE customer_id > $1
                     ORDER BY customer_id LIMIT $2",
                    &[&after.as_str(), &limit],
                    doing,
                )
                .await?
            }
        };
        rows.iter().map(|r| profile_from(get(r, 0)?)).collect()
    }
}
