//! The schema, as numbered migrations embedded in the crate, applied on connect.

use crate::{Conn, PostgresStore};
use cx_core::{Error, Result};

/// One migration: its version, a name, and the SQL that takes the schema from the version
/// before to this one.
struct Migration {
    version: i32,
    name: &'static str,
    sql: &'static str,
}

/// Every migration, in order. Append only: a released migration never changes.
const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "init",
        sql: include_str!("../migrations/0001_init.sql"),
    },
    Migration {
        version: 2,
        name: "journeys",
        sql: include_str!("../migrations/0002_journeys.sql"),
    },
    Migration {
        version: 3,
        name: "record_decision",
        sql: include_str!("../migrations/0003_record_decision.sql"),
    },
    Migration {
        version: 4,
        name: "ingest",
        sql: include_str!("../migrations/0004_ingest.sql"),
    },
    Migration {
        version: 5,
        name: "decision_state",
        sql: include_str!("../migrations/0005_decision_state.sql"),
    },
    Migration {
        version: 6,
        name: "commit_decision",
        sql: include_str!("../migrations/0006_commit_decision.sql"),
    },
];

/// The schema version this crate creates and understands.
pub const SCHEMA_VERSION: i32 = 6;

/// Serialises migrations across processes (`pg_advisory_xact_lock(CX, MIGRATE)`).
pub(crate) const LOCK_CLASS: i32 = 0x6378; // "cx"
const LOCK_MIGRATE: i32 = 1;

/// Brings the schema up to [`SCHEMA_VERSION`]; a no-op when it is there already. Refuses a
/// database whose schema is newer than this crate knows.
pub(crate) async fn apply(store: &PostgresStore, conn: &mut Conn) -> Result<()> {
    let err = store.err("migrate the schema");
    let tx = conn.transaction().await.map_err(&err)?;
    tx.execute(
        "SELECT pg_advisory_xact_lock($1, $2)",
        &[&LOCK_CLASS, &LOCK_MIGRATE],
    )
    .await
    .map_err(&err)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS cx_schema_migrations (
             version    integer PRIMARY KEY,
             name       text NOT NULL,
             applied_at timestamptz NOT NULL DEFAULT now()
         )",
    )
    .await
    .map_err(&err)?;
    let row = tx
        .query_one(
            "SELECT coalesce(max(version), 0) FROM cx_schema_migrations",
            &[],
        )
        .await
        .map_err(&err)?;
    let current: i32 = row.try_get(0).map_err(&err)?;
    check_not_newer(store, current)?;
    for m in MIGRATIONS.iter().filter(|m| m.version > current) {
        // The migration's SQL is the crate's own text, with no value from a caller.
        tx.batch_execute(m.sql).await.map_err(store.err(&format!(
            "apply schema migration {} ({})",
            m.version, m.name
        )))?;
        tx.execute(
            "INSERT INTO cx_schema_migrations (version, name) VALUES ($1, $2)",
            &[&m.version, &m.name],
        )
        .await
        .map_err(&err)?;
    }
    tx.commit().await.map_err(&err)?;
    store.trips(6);
    Ok(())
}

fn check_not_newer(store: &PostgresStore, current: i32) -> Result<()> {
    if current > SCHEMA_VERSION {
        return Err(Error::Storage {
            backend: "postgres",
            message: format!(
                "the database at {} has cx schema version {current}, newer than this \
                 cx-store-postgres knows (up to {SCHEMA_VERSION}); upgrade cx, or connect to \
                 another database",
                store.target()
            ),
            source: None,
        });
    }
    Ok(())
}
