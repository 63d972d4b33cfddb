//! Catalogue versions: the [`CatalogStore`] implementation.

use crate::PostgresStore;
use crate::codec::{self, get};
use async_trait::async_trait;
use cx_core::model::Catalog;
use cx_core::store::{CatalogMeta, CatalogStore, CatalogVersion, StoredCatalog};
use cx_core::{Clock, Error, Result, SystemClock};
use tokio_postgres::Row;

fn version_from(row: &Row) -> Result<CatalogVersion> {
    Ok(CatalogVersion::new(
        u64::try_from(get::<i64>(row, 0)?).unwrap_or(0),
        codec::join(get(row, 1)?, get(row, 2)?)?,
        get::<Option<String>>(row, 3)?,
        get::<Option<String>>(row, 4)?,
    ))
}

#[async_trait]
impl CatalogStore for PostgresStore {
    async fn put_catalog(&self, catalog: &Catalog, meta: CatalogMeta) -> Result<CatalogVersion> {
        let doing = "store a catalogue";
        let text =
            serde_json::to_string(catalog).map_err(|e| codec::encode_error("catalogue", e))?;
        let at = meta.at.unwrap_or_else(|| SystemClock.now());
        let (us, ns) = codec::split(at);
        let mut conn = self.conn().await?;
        let tx = conn.transaction().await.map_err(self.err(doing))?;
        self.trips(1);
        // Puts are rare: serialise them, so the check and the insert see the same current version.
        self.execute(
            &tx,
            "LOCK TABLE catalog_versions IN SHARE ROW EXCLUSIVE MODE",
            &[],
            doing,
        )
        .await?;
        let rows = self
            .query(
                &tx,
                "SELECT coalesce(max(version), 0) FROM catalog_versions",
                &[],
                doing,
            )
            .await?;
        let current = rows
            .first()
            .map(|r| get::<i64>(r, 0))
            .transpose()?
            .unwrap_or(0);
        let current = u64::try_from(current).unwrap_or(0);
        if let Some(expected) = meta.expected_version
            && expected != current
        {
            return Err(Error::conflict(
                "catalog",
                format!("version {expected}"),
                format!(
                    "expected version {expected} to be current, but the current version is {current}"
                ),
            ));
        }
        let next = i64::try_from(current + 1).unwrap_or(i64::MAX);
        let rows = self
            .query(
                &tx,
                "INSERT INTO catalog_versions
                     (version, stored_at_us, stored_at_ns, author, comment, catalog)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 RETURNING version, stored_at_us, stored_at_ns, author, comment",
                &[&next, &us, &ns, &meta.author, &meta.comment, &text],
                doing,
            )
            .await?;
        self.commit(tx, doing).await?;
        rows.first()
            .map(version_from)
            .transpose()?
            .ok_or_else(|| codec::corrupt("storing a catalogue returned no row".to_owned()))
    }

    async fn catalog(&self, version: Option<u64>) -> Result<Option<StoredCatalog>> {
        let conn = self.conn().await?;
        let doing = "read a catalogue";
        const COLUMNS: &str = "version, stored_at_us, stored_at_ns, author, comment, catalog";
        let rows = match version {
            None => {
                self.query(
                    &conn,
                    &format!(
                        "SELECT {COLUMNS} FROM catalog_versions ORDER BY version DESC LIMIT 1"
                    ),
                    &[],
                    doing,
                )
                .await?
            }
            Some(v) => {
                let Ok(v) = i64::try_from(v) else {
                    return Ok(None);
                };
                self.query(
                    &conn,
                    &format!("SELECT {COLUMNS} FROM catalog_versions WHERE version = $1"),
                    &[&v],
                    doing,
                )
                .await?
            }
        };
        let Some(row) = rows.first() else {
            return Ok(None);
        };
        let catalog: Catalog =
            serde_json::from_str(get(row, 5)?).map_err(|e| codec::decode_error("catalogue", e))?;
        Ok(Some(StoredCatalog::new(version_from(row)?, catalog)))
    }

    async fn catalog_history(&self) -> Result<Vec<CatalogVersion>> {
        let conn = self.conn().await?;
        let rows = self
            .query(
                &conn,
                "SELECT version, stored_at_us, stored_at_ns, author, comment
                 FROM catalog_versions ORDER BY version",
                &[],
                "read the catalogue history",
            )
            .await?;
        rows.iter().map(version_from).collect()
    }
}
