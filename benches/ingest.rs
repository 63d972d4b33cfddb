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
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use cx::MemoryStore;
use cx::model::{Customer, CustomerId, Identity, Span, Subject, Text, Touchpoint, TouchpointId};
use cx::store::Store;
use cx_core::testkit::world::WorldSpec;
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

criterion_group!(benches, ingest);
criterion_main!(benches);
