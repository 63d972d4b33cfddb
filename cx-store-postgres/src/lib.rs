//! # cx-store-postgres
//!
//! The PostgreSQL storage backend of `cx`: [`PostgresStore`] implements every storage trait of
//! [`cx_core::store`] against a PostgreSQL server (13 or later) and passes the same conformance
//! suite as the in-memory store. Share it as `Arc<dyn Store>`; it holds a pool of connections
//! (`deadpool-postgres` over `tokio-postgres`) and must be used from a tokio runtime.
//!
//! ```no_run
//! use cx_core::store::{Store, CustomerStore};
//! use cx_store_postgres::PostgresStore;
//! use std::sync::Arc;
//!
//! # async fn run() -> cx_core::Result<()> {
//! let store: Arc<dyn Store> =
//!     Arc::new(PostgresStore::connect("postgres://cx@localhost:5432/cx").await?);
//! println!("{} customers", store.count_customers().await?);
//! # Ok(())
//! # }
//! ```
//!
//! # Schema and migrations
//!
//! The schema is embedded in the crate as numbered migrations and applied on connect, in one
//! transaction under an advisory lock, so concurrent processes migrate once. Applying it again is
//! a no-op; a database whose schema is newer than this crate knows is refused with an
//! [`Error::Storage`] that says so. Tables live in the connection's
//! `search_path` (normally `public`).
//!
//! **Every table that holds per-customer data has the customer id in its primary key**
//! (`customers`, `customer_identities`, `customer_aliases` (the merged id), `touchpoints`,
//! `decisions`, `contacts`, `journey_tracks`, `journey_instances`, `journey_visits`,
//! `follow_up_cases`), so the schema can be distributed by customer id later (Citus style). Four
//! unique indexes do not lead with it — the identity index `(kind, value)`, the decision id, the
//! alias id and the follow-up case id — and would become lookup tables keyed by identity,
//! decision or case id in a distributed deployment. Budget counters and catalogue versions are
//! global.
//!
//! Ids, names, kinds and channels are `text COLLATE "C"`, so they compare by bytes as in the
//! in-memory store. Instants are stored as microseconds since the Unix epoch plus the
//! nanoseconds below the microsecond: exact for every instant cx represents. Attributes and
//! profiles are `jsonb`; PostgreSQL's JSON cannot hold the NUL character, so a string value
//! holding one is refused with [`Error::Validation`].
//!
//! # How the contract is kept
//!
//! - **SQL** is only ever parameterised: no value from a caller is formatted into SQL text.
//! - **Ingest** validates the batch in Rust, streams it with binary `COPY` into a per-connection
//!   temporary staging table, and moves it with one `INSERT ... SELECT ... ON CONFLICT DO
//!   NOTHING` (rows in key order) in the same transaction: idempotent, and atomic per batch.
//!   Only the primary key and a time index are maintained per row (schema version 4).
//! - **Aggregates** and **contact counts** are computed in SQL; one statement answers all the
//!   counts of a decision.
//! - **A decision takes two round trips.** [`Engine::decide`](cx_core::Engine::decide) loads
//!   the profile, touchpoints, contact history and budget use with one statement
//!   (`cx_decision_state`, migration 5, which each connection plans once), then commits the
//!   decision with its budget draws in another (`cx_commit_decision`, migration 6).
//! - **Budgets** are consumed by one conditional upsert per counter: the counter's row lock
//!   serialises concurrent consumers, so the limit holds across connections and processes. A
//!   decision's draws and the decision itself commit together or not at all, counters locked
//!   in key order.
//! - **Journeys**: `advance_journeys` is one transaction. It resolves the events' subjects (one
//!   statement), creates-or-locks the affected tracks in key order with one `INSERT ... ON
//!   CONFLICT DO UPDATE ... RETURNING` and reads their instances and visits (two statements
//!   pipelined: one round trip), runs the journey engine in Rust, and writes back only the tracks
//!   that changed with `UNNEST` arrays (two statements pipelined). The row lock serialises
//!   concurrent advances of one track. Instances and visits are rows, so analytics query them.
//! - **Analytics**: touchpoint measures, moments of truth and follow-up SLA counts are SQL
//!   aggregates; funnels and time in stage read the matching visit rows and run cx-core's
//!   reference accumulator and statistics over them (see `analytics.rs` for why).
//! - **Merges and erasure** take an exclusive transaction-level advisory lock, and writers that
//!   resolve customer ids (ingest, upserts, decisions) take it shared: the same rule as the
//!   in-memory store's directory lock, across processes.
//! - **Errors**: a unique violation is [`Error::Conflict`]; anything
//!   else from the server or the network is [`Error::Storage`], saying
//!   where the store tried to connect, never with the password. After a connection-level
//!   failure (closed, I/O, SQLSTATE 08xxx or 57P01-57P03), the connections handed out before it
//!   are not handed out again: the pool may not have seen the failed one close yet.
//!
//! # Tests
//!
//! With the `harness` feature, the `harness` module starts a throwaway PostgreSQL cluster from the
//! installed server binaries (or uses `DATABASE_URL`) and hands each test a fresh database.
#![warn(missing_docs)]
#![warn(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::print_stdout
)]

mod analytics;
mod budgets;
mod catalog;
mod codec;
mod customers;
mod decisions;
mod error;
mod follow_ups;
#[cfg(feature = "harness")]
pub mod harness;
mod journeys;
mod migrations;
mod options;
mod state;
mod touchpoints;

use cx_core::store::Store;
use cx_core::{Error, Result};
use deadpool_postgres::{GenericClient, Manager, ManagerConfig, Pool, RecyclingMethod};
use error::Target;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

pub use migrations::SCHEMA_VERSION;
pub use options::PostgresOptions;

/// The PostgreSQL store: every storage trait, over a pool of connections.
///
/// Cheap to clone: clones share the pool and the round-trip counter.
#[derive(Clone)]
pub struct PostgresStore {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool,
    target: Target,
    round_trips: AtomicU64,
    failures: Arc<Failures>,
}

/// When a connection last failed at the connection level (the server ended it, the network
/// dropped). The pool may not have seen that connection close yet, so every connection that
/// was last handed out before that instant is dropped when it is next taken from the pool (a
/// `pre_recycle` hook) and a fresh one is made. This drops a few healthy connections with the
/// broken one (those in use or idle at that moment): a reconnect each, only after a failure,
/// and no check (no round trip) on the path of a healthy pool.
struct Failures {
    /// The origin of `last`.
    origin: Instant,
    /// Nanoseconds from `origin` to the latest failure, plus one; 0: none yet.
    last: AtomicU64,
}

impl Failures {
    fn record(&self) {
        let since = u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.last
            .fetch_max(since.saturating_add(1), Ordering::Relaxed);
    }

    /// Whether a connection last handed out at `used` may have seen a failure since.
    fn since(&self, used: Instant) -> bool {
        match self.last.load(Ordering::Relaxed) {
            0 => false,
            n => used < self.origin + Duration::from_nanos(n - 1),
        }
    }
}

/// A pooled connection.
pub(crate) type Conn = deadpool_postgres::Client;

impl PostgresStore {
    /// Connects to the server at `url` (`postgres://user:password@host:port/database`, or the
    /// `key=value` form), applies the schema migrations and returns the store.
    ///
    /// Errors: [`Error::Validation`] for a URL that does not parse; [`Error::Storage`] when the
    /// server cannot be reached (saying where, never the password) or its schema is newer than
    /// this crate knows.
    pub async fn connect(url: &str) -> Result<Self> {
        PostgresStore::connect_with(PostgresOptions::new(url)).await
    }

    /// Connects with `options` (see [`PostgresOptions`]).
    pub async fn connect_with(options: PostgresOptions) -> Result<Self> {
        let mut config = options.pg_config()?;
        if config.get_application_name().is_none() {
            config.application_name("cx");
        }
        let target = Target::of(&config);
        let manager = Manager::from_config(
            config,
            tokio_postgres::NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let failures = Arc::new(Failures {
            origin: Instant::now(),
            last: AtomicU64::new(0),
        });
        let seen = Arc::clone(&failures);
        let pool = Pool::builder(manager)
            .max_size(options.pool_size)
            .pre_recycle(deadpool_postgres::Hook::sync_fn(move |_, metrics| {
                if seen.since(metrics.recycled.unwrap_or(metrics.created)) {
                    Err(deadpool_postgres::HookError::message(
                        "a connection failed since this one was last used",
                    ))
                } else {
                    Ok(())
                }
            }))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(options.acquire_timeout))
            .create_timeout(Some(options.connect_timeout))
            .build()
            .map_err(|e| Error::Storage {
                backend: "postgres",
                message: format!("cannot build the connection pool for {}: {e}", target.0),
                source: Some(Box::new(e)),
            })?;
        let store = PostgresStore {
            inner: Arc::new(Inner {
                pool,
                target,
                round_trips: AtomicU64::new(0),
                failures,
            }),
        };
        let mut conn = store.conn().await?;
        migrations::apply(&store, &mut conn).await?;
        Ok(store)
    }

    /// How many times the store has waited for the server since it was made (each statement,
    /// `BEGIN` and `COMMIT`; a group of statements sent together, pipelined, counts once).
    /// Statement preparation, once per statement and connection, is not counted. For tests and
    /// capacity planning: `decide` reads in one.
    pub fn round_trips(&self) -> u64 {
        self.inner.round_trips.load(Ordering::Relaxed)
    }

    /// Where the store connects: `postgresql://user@host:port/database` (never the password).
    pub fn target(&self) -> &str {
        &self.inner.target.0
    }

    /// Counts `n` round trips.
    pub(crate) fn trips(&self, n: u64) {
        self.inner.round_trips.fetch_add(n, Ordering::Relaxed);
    }

    /// A connection from the pool.
    pub(crate) async fn conn(&self) -> Result<Conn> {
        // The pool checks that a connection is open before handing it out again; a connection
        // the server closed while it sat idle (a restart, a terminated backend) is dropped here
        // and another one taken, up to the pool's size.
        let mut attempts = self.inner.pool.status().max_size + 1;
        loop {
            let conn = self
                .inner
                .pool
                .get()
                .await
                .map_err(|e| error::pool(&self.inner.target, e))?;
            attempts = attempts.saturating_sub(1);
            if !conn.is_closed() || attempts == 0 {
                return Ok(conn);
            }
            drop(deadpool_postgres::Object::take(conn));
        }
    }

    /// Maps a driver error of the operation `doing`. A connection-level failure also retires
    /// the connections in use (see [`Failures`]).
    pub(crate) fn err<'a>(
        &'a self,
        doing: &'a str,
    ) -> impl Fn(tokio_postgres::Error) -> Error + 'a {
        move |e| {
            if error::is_connection_failure(&e) {
                self.inner.failures.record();
            }
            error::db(&self.inner.target, doing, e)
        }
    }

    /// Runs `sql` (prepared once per connection) and returns its rows: one round trip.
    pub(crate) async fn query<C: GenericClient + Sync>(
        &self,
        client: &C,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
        doing: &str,
    ) -> Result<Vec<Row>> {
        let statement = client.prepare_cached(sql).await.map_err(self.err(doing))?;
        self.trips(1);
        client
            .query(&statement, params)
            .await
            .map_err(self.err(doing))
    }

    /// Runs `sql` and returns how many rows it changed: one round trip.
    pub(crate) async fn execute<C: GenericClient + Sync>(
        &self,
        client: &C,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
        doing: &str,
    ) -> Result<u64> {
        let statement = client.prepare_cached(sql).await.map_err(self.err(doing))?;
        self.trips(1);
        client
            .execute(&statement, params)
            .await
            .map_err(self.err(doing))
    }

    /// Runs two statements sent together (pipelined): one round trip. The server runs them one
    /// after the other, so the second sees what the first did (and, outside a snapshot
    /// isolation, what was committed while the first waited for a lock).
    pub(crate) async fn query_pair<C: GenericClient + Sync>(
        &self,
        client: &C,
        first: (&str, &[&(dyn ToSql + Sync)]),
        second: (&str, &[&(dyn ToSql + Sync)]),
        doing: &str,
    ) -> Result<(Vec<Row>, Vec<Row>)> {
        let a = client
            .prepare_cached(first.0)
            .await
            .map_err(self.err(doing))?;
        let b = client
            .prepare_cached(second.0)
            .await
            .map_err(self.err(doing))?;
        self.trips(1);
        futures_util::future::try_join(client.query(&a, first.1), client.query(&b, second.1))
            .await
            .map_err(self.err(doing))
    }

    /// Starts a transaction that holds the directory lock (see the crate docs): `exclusive` for
    /// merges and erasure, shared for writers that resolve customer ids. Two round trips
    /// (`BEGIN`, then the lock); recording a decision takes the shared lock inside one
    /// statement instead (`cx_record_decision`, migration 3).
    pub(crate) async fn begin<'c>(
        &self,
        conn: &'c mut Conn,
        exclusive: bool,
        doing: &str,
    ) -> Result<deadpool_postgres::Transaction<'c>> {
        let sql = if exclusive {
            "SELECT pg_advisory_xact_lock($1, $2)"
        } else {
            "SELECT pg_advisory_xact_lock_shared($1, $2)"
        };
        let statement = conn.prepare_cached(sql).await.map_err(self.err(doing))?;
        let tx = conn.transaction().await.map_err(self.err(doing))?;
        tx.execute(&statement, &[&migrations::LOCK_CLASS, &LOCK_DIRECTORY])
            .await
            .map_err(self.err(doing))?;
        self.trips(2);
        Ok(tx)
    }

    /// Commits `tx`: one round trip.
    pub(crate) async fn commit(
        &self,
        tx: deadpool_postgres::Transaction<'_>,
        doing: &str,
    ) -> Result<()> {
        self.trips(1);
        tx.commit().await.map_err(self.err(doing))
    }
}

/// The directory lock's key (with [`migrations::LOCK_CLASS`]).
pub(crate) const LOCK_DIRECTORY: i32 = 2;

impl fmt::Debug for PostgresStore {
    /// The target and pool state only (never the password or customer data).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let status = self.inner.pool.status();
        f.debug_struct("PostgresStore")
            .field("target", &self.inner.target.0)
            .field("pool_size", &status.size)
            .field("pool_max_size", &status.max_size)
            .field("round_trips", &self.round_trips())
            .finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl Store for PostgresStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    /// One statement, one round trip, one snapshot.
    async fn decision_state(
        &self,
        query: &cx_core::store::DecisionStateQuery,
    ) -> Result<Option<cx_core::store::DecisionState>> {
        self.load_decision_state(query).await
    }

    /// One statement, one round trip, one transaction.
    async fn commit_decision(
        &self,
        decision: &cx_core::model::Decision,
        draws: &[cx_core::store::BudgetDraw],
    ) -> Result<cx_core::store::DecisionCommit> {
        self.commit_with_draws(decision, draws).await
    }
}
