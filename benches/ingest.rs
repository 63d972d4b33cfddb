//! Ingest throughput of the in-memory store, read against the minimal alternative measured in
//! the same run.
//!
//! ```text
//! cargo bench --bench ingest
//! ```
//!
//! - `ingest/memory/batch-10k`: `append_touchpoints` of 10,000-touchpoint batches on a
//!   [`MemoryStore`] (validation, subject resolution, idempotency check, atomic insert into
//!   per-customer timelines).
//! - `ingest/memory/std-hashmap-baseline`: what anyone would write first: validate the batch,
//!   resolve identity subjects with a `HashMap<Identity, CustomerId>`, then insert into a
//!   `std::collections::HashMap<(CustomerId, TouchpointId), Touchpoint>` (default SipHash),
//!   keeping the first copy of a key. No time order, no per-customer reads, no atomicity.
//!
//! - `ingest/engine/batch-10k`: `Engine::ingest` of the same batches with no catalogue loaded
//!   (the store's append and nothing else), and `ingest/engine/batch-10k-journeys` with the
//!   telecom catalogue (`examples/catalog/telecom.yaml`) loaded: every touchpoint is matched
//!   against the journeys' stages and the matching ones (about a third: usage records, product
//!   views, purchases, bills) are placed in their customers' journey tracks; survey answers are
//!   checked against the follow-up rules. The clock stands before the data, so no trigger fires.
//!   The difference between the two is what journey tracking costs on ingest.
//!
//! All see the same batches, taken in time order from the synthetic world (50,000 customers)
//! with fresh ids and, on each pass over the world, timestamps moved on by the world's span, so
//! every batch is new data arriving later, as from a queue. The data they hold grows with each
//! batch, up to 1.5 million touchpoints, then they start again from an empty store (with the
//! customers). Batches are prepared, and full stores dropped, outside the timed region; appends
//! run on one core (a current-thread Tokio runtime).
//!
//! PostgreSQL, on the test harness's server (`DATABASE_URL`, or a throwaway cluster), each bench
//! on a fresh database holding the customers, the same batches:
//!
//! - `ingest/postgres/copy`: `append_touchpoints` on a `PostgresStore` (validation, binary COPY
//!   into a staging table, one `INSERT ... SELECT ... ON CONFLICT DO NOTHING`, commit).
//! - `ingest/postgres/insert-per-row`: the baseline: the same validation, identities resolved in
//!   memory, one prepared `INSERT ... ON CONFLICT DO NOTHING` per touchpoint in one transaction
//!   per batch.
//! - `ingest/postgres/psql-copy-csv`: the server's own limit: `psql`'s `\copy` of the same rows
//!   as CSV straight into the table, 50,000 per run.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use cx::MemoryStore;
use cx::model::{Customer, CustomerId, Identity, Span, Subject, Text, Touchpoint, TouchpointId};
use cx::store::{CustomerStore, Store, TouchpointStore};
use cx_core::testkit::world::WorldSpec;
use cx_store_postgres::{PostgresStore, harness};
use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::runtime::Runtime;

const BATCH: usize = 10_000;
/// Start again from an empty store once it holds this many touchpoints.
const RESET_AT: usize = 1_500_000;

/// Batches of the world in time order, with fresh ids and later timestamps on every pass.
struct Batches {
    templates: Vec<Vec<Touchpoint>>,
    span: Span,
    next: usize,
}

impl Batches {
    fn new(touchpoints: &[Touchpoint], span: Span) -> Self {
        Batches {
            templates: touchpoints
                .chunks_exact(BATCH)
                .map(<[Touchpoint]>::to_vec)
                .collect(),
            span,
            next: 0,
        }
    }

    fn next_batch(&mut self) -> Vec<Touchpoint> {
        let pass = self.next / self.templates.len();
        let template = &self.templates[self.next % self.templates.len()];
        let shift = self.span.as_delta() * i32::try_from(pass).unwrap();
        self.next += 1;
        template
            .iter()
            .map(|t| {
                let mut t = t.clone();
                // `t-0001234` becomes `p3-t-0001234`: unique per pass, and still inline.
                let mut id = Text::from(format!("p{pass}-"));
                id.push_str(t.id.as_str());
                t.id = TouchpointId::new(id);
                t.occurred_at += shift;
                t
            })
            .collect()
    }
}

/// The minimal ingest: validate, resolve, insert into a std `HashMap`.
struct Baseline {
    identities: HashMap<Identity, CustomerId>,
    touchpoints: HashMap<(CustomerId, TouchpointId), Touchpoint>,
}

impl Baseline {
    fn new(customers: &[Customer]) -> Self {
        let identities = customers
            .iter()
            .flat_map(|c| c.identities.iter().map(|i| (i.clone(), c.id.clone())))
            .collect();
        Baseline {
            identities,
            touchpoints: HashMap::new(),
        }
    }

    /// (inserted, duplicates)
    fn append(&mut self, batch: Vec<Touchpoint>) -> cx::Result<(u64, u64)> {
        for (i, t) in batch.iter().enumerate() {
            t.validate_in_batch(i)?;
        }
        let (mut inserted, mut duplicates) = (0, 0);
        for t in batch {
            let customer = match &t.subject {
                Subject::Customer(id) => id.clone(),
                Subject::Identity(identity) => self.identities[identity].clone(),
            };
            match self.touchpoints.entry((customer, t.id.clone())) {
                std::collections::hash_map::Entry::Occupied(_) => duplicates += 1,
                std::collections::hash_map::Entry::Vacant(slot) => {
                    slot.insert(t);
                    inserted += 1;
                }
            }
        }
        Ok((inserted, duplicates))
    }
}

fn memory_store(rt: &Runtime, customers: &[Customer]) -> Arc<dyn Store> {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    rt.block_on(store.upsert_customers(customers.to_vec()))
        .unwrap();
    store
}

fn ingest(c: &mut Criterion) {
    let world = WorldSpec::default().with_touchpoints(500_000).generate();
    let span = Span::from(world.end() - world.spec.start);
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();

    let mut group = c.benchmark_group("ingest");
    group
        .throughput(Throughput::Elements(BATCH as u64))
        .sample_size(30)
        .warm_up_time(Duration::from_secs(3))
        .measurement_time(Duration::from_secs(20));

    let mut batches = Batches::new(&world.touchpoints, span);
    let mut store = memory_store(&rt, &world.customers);
    let mut held = 0;
    group.bench_function("memory/batch-10k", |b| {
        b.iter_custom(|iters| {
            let mut timed = Duration::ZERO;
            for _ in 0..iters {
                if held >= RESET_AT {
                    store = memory_store(&rt, &world.customers);
                    held = 0;
                }
                let batch = batches.next_batch();
                let started = Instant::now();
                let report = rt.block_on(store.append_touchpoints(batch)).unwrap();
                timed += started.elapsed();
                assert_eq!(report.inserted, BATCH as u64);
                held += BATCH;
            }
            timed
        });
    });
    drop(store);

    let mut batches = Batches::new(&world.touchpoints, span);
    let mut baseline = Baseline::new(&world.customers);
    group.bench_function("memory/std-hashmap-baseline", |b| {
        b.iter_custom(|iters| {
            let mut timed = Duration::ZERO;
            for _ in 0..iters {
                if baseline.touchpoints.len() >= RESET_AT {
                    baseline = Baseline::new(&world.customers);
                }
                let batch = batches.next_batch();
                let started = Instant::now();
                let report = black_box(baseline.append(batch).unwrap());
                timed += started.elapsed();
                assert_eq!(report.0, BATCH as u64);
            }
            timed
        });
    });
    for (name, catalog) in [
        ("engine/batch-10k", false),
        ("engine/batch-10k-journeys", true),
    ] {
        let new_engine = || {
            let clock = cx::ManualClock::new(world.spec.start - chrono_days(365));
            let engine =
                cx::Engine::new(memory_store(&rt, &world.customers)).with_clock(Arc::new(clock));
            if catalog {
                let path = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/catalog/telecom.yaml");
                rt.block_on(engine.load_catalog_file(path)).unwrap();
            }
            engine
        };
        let mut batches = Batches::new(&world.touchpoints, span);
        let mut engine = new_engine();
        let mut held = 0;
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut timed = Duration::ZERO;
                for _ in 0..iters {
                    if held >= RESET_AT {
                        engine = new_engine();
                        held = 0;
                    }
                    let batch = batches.next_batch();
                    let started = Instant::now();
                    let report = rt.block_on(engine.ingest(batch)).unwrap();
                    timed += started.elapsed();
                    assert_eq!(report.inserted, BATCH as u64);
                    held += BATCH;
                }
                timed
            });
        });
    }
    group.finish();
}

fn chrono_days(n: i64) -> cx_core::chrono::TimeDelta {
    cx_core::chrono::TimeDelta::days(n)
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL.

/// `touchpoints` columns as the baseline and the CSV write them.
const COLUMNS: &str = "customer_id, touchpoint_id, occurred_us, occurred_ns, channel, kind, \
     source, attributes, survey_question, survey_score, survey_min, survey_max";

/// A touchpoint as the row the store writes, with its subject resolved by `identities`.
struct Row {
    customer: String,
    id: String,
    us: i64,
    ns: i16,
    channel: String,
    kind: String,
    source: Option<String>,
    attributes: Option<String>,
    survey: Option<(String, f64, f64, f64)>,
}

impl Row {
    fn of(t: &Touchpoint, identities: &HashMap<Identity, CustomerId>) -> Row {
        let customer = match &t.subject {
            Subject::Customer(id) => id.to_string(),
            Subject::Identity(identity) => identities[identity].to_string(),
        };
        Row {
            customer,
            id: t.id.to_string(),
            us: t.occurred_at.timestamp_micros(),
            ns: i16::try_from(t.occurred_at.timestamp_subsec_nanos() % 1000).unwrap(),
            channel: t.channel.to_string(),
            kind: t.kind.to_string(),
            source: t.source.as_ref().map(ToString::to_string),
            attributes: (!t.attributes.is_empty())
                .then(|| serde_json::to_string(&t.attributes).unwrap()),
            survey: t
                .survey
                .as_ref()
                .map(|s| (s.question.to_string(), s.score, s.scale.min, s.scale.max)),
        }
    }

    fn csv(&self, out: &mut String) {
        use std::fmt::Write;
        let quoted = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
        let opt = |s: &Option<String>| s.as_deref().map(quoted).unwrap_or_default();
        let (q, score, min, max) = match &self.survey {
            Some((q, score, min, max)) => (
                quoted(q),
                score.to_string(),
                min.to_string(),
                max.to_string(),
            ),
            None => Default::default(),
        };
        writeln!(
            out,
            "{},{},{},{},{},{},{},{},{q},{score},{min},{max}",
            quoted(&self.customer),
            quoted(&self.id),
            self.us,
            self.ns,
            quoted(&self.channel),
            quoted(&self.kind),
            opt(&self.source),
            opt(&self.attributes),
        )
        .unwrap();
    }
}

/// The baseline: validate, resolve identities in memory, then one prepared
/// `INSERT ... ON CONFLICT DO NOTHING` per touchpoint, in one transaction per batch.
async fn insert_per_row(
    client: &mut tokio_postgres::Client,
    batch: Vec<Touchpoint>,
    identities: &HashMap<Identity, CustomerId>,
) -> u64 {
    for (i, t) in batch.iter().enumerate() {
        t.validate_in_batch(i).unwrap();
    }
    let tx = client.transaction().await.unwrap();
    let insert = tx
        .prepare(&format!(
            "INSERT INTO touchpoints ({COLUMNS})
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8::text::jsonb, $9, $10, $11, $12)
             ON CONFLICT DO NOTHING"
        ))
        .await
        .unwrap();
    let mut inserted = 0;
    for t in &batch {
        let r = Row::of(t, identities);
        let survey = r.survey.as_ref();
        inserted += tx
            .execute(
                &insert,
                &[
                    &r.customer,
                    &r.id,
                    &r.us,
                    &r.ns,
                    &r.channel,
                    &r.kind,
                    &r.source,
                    &r.attributes,
                    &survey.map(|s| s.0.as_str()),
                    &survey.map(|s| s.1),
                    &survey.map(|s| s.2),
                    &survey.map(|s| s.3),
                ],
            )
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
    inserted
}

/// `psql` arguments that connect to the database of `config`.
fn psql_target(config: &tokio_postgres::Config) -> String {
    let host = match &config.get_hosts()[0] {
        tokio_postgres::config::Host::Tcp(h) => h.clone(),
        tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
    };
    format!(
        "host={host} port={} user={} dbname={}",
        config.get_ports()[0],
        config.get_user().unwrap(),
        config.get_dbname().unwrap()
    )
}

fn ingest_postgres(c: &mut Criterion) {
    let world = WorldSpec::default().with_touchpoints(500_000).generate();
    let span = Span::from(world.end() - world.spec.start);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let identities: HashMap<Identity, CustomerId> = world
        .customers
        .iter()
        .flat_map(|c| c.identities.iter().map(|i| (i.clone(), c.id.clone())))
        .collect();
    let fresh = || -> PostgresStore {
        let store = rt.block_on(harness::test_store()).unwrap();
        rt.block_on(store.upsert_customers(world.customers.clone()))
            .unwrap();
        store
    };

    let mut group = c.benchmark_group("ingest");
    group
        .throughput(Throughput::Elements(BATCH as u64))
        .sample_size(10)
        .warm_up_time(Duration::from_secs(3))
        .measurement_time(Duration::from_secs(20));

    let store = fresh();
    let mut batches = Batches::new(&world.touchpoints, span);
    group.bench_function("postgres/copy", |b| {
        b.iter_custom(|iters| {
            let mut timed = Duration::ZERO;
            for _ in 0..iters {
                let batch = batches.next_batch();
                let started = Instant::now();
                let report = rt.block_on(store.append_touchpoints(batch)).unwrap();
                timed += started.elapsed();
                assert_eq!(report.inserted, BATCH as u64);
            }
            timed
        });
    });
    drop(store);

    let config = rt.block_on(harness::fresh_database()).unwrap();
    let mut client = rt.block_on(async {
        let (client, connection) = config.connect(tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(connection);
        client
    });
    let mut batches = Batches::new(&world.touchpoints, span);
    group.bench_function("postgres/insert-per-row", |b| {
        b.iter_custom(|iters| {
            let mut timed = Duration::ZERO;
            for _ in 0..iters {
                let batch = batches.next_batch();
                let started = Instant::now();
                let inserted = rt.block_on(insert_per_row(&mut client, batch, &identities));
                timed += started.elapsed();
                assert_eq!(inserted, BATCH as u64);
            }
            timed
        });
    });
    drop(client);

    // The server's own limit: psql's \copy of the same rows as CSV straight into the table (no
    // staging, no conflict check), 5 batches per psql run so that starting psql is not what
    // is measured.
    const PSQL_BATCHES: usize = 5;
    let config = rt.block_on(harness::fresh_database()).unwrap();
    let target = psql_target(&config);
    let csv_path = std::env::temp_dir().join(format!("cx-bench-{}.csv", std::process::id()));
    let copy = format!(
        "\\copy touchpoints ({COLUMNS}) FROM '{}' WITH (FORMAT csv)",
        csv_path.display()
    );
    let mut batches = Batches::new(&world.touchpoints, span);
    group.throughput(Throughput::Elements((BATCH * PSQL_BATCHES) as u64));
    group.bench_function("postgres/psql-copy-csv", |b| {
        b.iter_custom(|iters| {
            let mut timed = Duration::ZERO;
            for _ in 0..iters {
                let mut text = String::new();
                for _ in 0..PSQL_BATCHES {
                    for t in batches.next_batch() {
                        Row::of(&t, &identities).csv(&mut text);
                    }
                }
                std::fs::write(&csv_path, text).unwrap();
                let started = Instant::now();
                let out = std::process::Command::new("psql")
                    .args([
                        "-X",
                        "-q",
                        "-v",
                        "ON_ERROR_STOP=1",
                        "-d",
                        &target,
                        "-c",
                        &copy,
                    ])
                    .output()
                    .expect("psql (the PostgreSQL client) must be on PATH");
                timed += started.elapsed();
                assert!(
                    out.status.success(),
                    "{}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            timed
        });
    });
    let _ = std::fs::remove_file(&csv_path);
    group.finish();
}

criterion_group!(benches, ingest, ingest_postgres);
criterion_main!(benches);
