//! A rough single-thread ingest timing (not a benchmark; the criterion bench in benches/ is).
//!
//! ```text
//! cargo test --release -p cx-store-memory --test ingest_speed -- --ignored --nocapture --test-threads=1
//! ```
//!
//! Each scenario also times validation alone (`Touchpoint::validate_in_batch`, which every
//! append runs first) on the same batches, so the store's own share can be read off even on a
//! busy machine.

use cx_core::model::{
    Channel, CustomerId, Identity, Kind, Subject, Text, Timestamp, Touchpoint, TouchpointId,
};
use cx_core::store::{CustomerStore, TouchpointStore};
use cx_core::testkit::world::WorldSpec;
use cx_store_memory::MemoryStore;
use std::collections::HashMap;
use std::time::{Duration, Instant};

const BATCH: usize = 10_000;

/// Appends `batches` (each made just before it is appended, so it is warm in cache, as it is
/// when it comes off a queue) and prints the rates.
fn run(label: &str, store: &MemoryStore, batches: impl Iterator<Item = Vec<Touchpoint>>) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap_or_else(|e| panic!("runtime: {e}"));
    let (mut validate, mut append, mut n) = (Duration::ZERO, Duration::ZERO, 0usize);
    for batch in batches {
        let started = Instant::now();
        for (i, t) in batch.iter().enumerate() {
            assert!(t.validate_in_batch(i).is_ok());
        }
        validate += started.elapsed();
        let len = batch.len();
        let started = Instant::now();
        let report = runtime
            .block_on(store.append_touchpoints(batch))
            .unwrap_or_else(|e| panic!("{e}"));
        append += started.elapsed();
        assert_eq!(report.inserted as usize, len);
        n += len;
    }
    let rate = |d: Duration| n as f64 / d.as_secs_f64() / 1e6;
    eprintln!(
        "{label}: {n} touchpoints in {BATCH} batches; append {:.2} M/s; validation alone {:.2} \
         M/s; append without its validation {:.2} M/s",
        rate(append),
        rate(validate),
        rate(append.saturating_sub(validate)),
    );
}

/// A small deterministic generator (xorshift), so the run needs no extra dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// 1M bare touchpoints (no attributes: validation is cheap) of 80,000 customers, mostly in
/// time order with some late arrivals.
#[test]
#[ignore = "timing; run in release with --ignored --nocapture --test-threads=1"]
fn append_bare_touchpoints() {
    const CUSTOMERS: u64 = 80_000;
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let kinds = [
        Kind::PAGE_VIEW,
        Kind::PRODUCT_VIEW,
        Kind::ADD_TO_CART,
        Kind::PURCHASE,
    ];
    let channels = [Channel::Web, Channel::App, Channel::Email, Channel::Store];
    let start = Timestamp::from_timestamp(1_800_000_000, 0).unwrap_or_default();
    let mut n = 0u64;
    let batches = (0..100).map(|_| {
        (0..BATCH)
            .map(|_| {
                n += 1;
                let r = rng.next();
                let late = if r.is_multiple_of(16) { 3600 } else { 0 };
                let at =
                    start + Duration::from_secs(n / 4).saturating_sub(Duration::from_secs(late));
                let i = (r >> 32) as usize % 4;
                Touchpoint::new(
                    format!("tp-{n:010}"),
                    CustomerId::new(format!("cust-{:06}", r % CUSTOMERS)),
                    channels.get(i).cloned().unwrap_or(Channel::Web),
                    kinds.get(i).cloned().unwrap_or(Kind::PAGE_VIEW),
                    at,
                )
            })
            .collect()
    });
    run("bare", &MemoryStore::new(), batches);
}

/// The bench's scenario: the synthetic world's touchpoints (50,000 customers, 1-3 attributes
/// each, some identity subjects) in 10k batches, fresh ids and later timestamps on each of 3
/// passes, up to 1.5M touchpoints.
#[test]
#[ignore = "timing; run in release with --ignored --nocapture --test-threads=1"]
fn append_world_touchpoints() {
    let world = WorldSpec::default().with_touchpoints(500_000).generate();
    let span = world.spec.end() - world.spec.start;
    let store = MemoryStore::new();
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap_or_else(|e| panic!("runtime: {e}"))
        .block_on(store.upsert_customers(world.customers.clone()))
        .unwrap_or_else(|e| panic!("{e}"));
    let batches = (0..3i32).flat_map(|pass| {
        world.touchpoints.chunks(BATCH).map(move |chunk| {
            chunk
                .iter()
                .map(|t| {
                    let mut t = t.clone();
                    let mut id = Text::from(format!("p{pass}-"));
                    id.push_str(t.id.as_str());
                    t.id = TouchpointId::new(id);
                    t.occurred_at += span * pass;
                    t
                })
                .collect()
        })
    });
    run("world", &store, batches.clone());

    // The bench's baseline on the same batches: validate, resolve, insert into a std HashMap.
    let identities: HashMap<Identity, CustomerId> = world
        .customers
        .iter()
        .flat_map(|c| c.identities.iter().map(|i| (i.clone(), c.id.clone())))
        .collect();
    let mut map: HashMap<(CustomerId, TouchpointId), Touchpoint> = HashMap::new();
    let (mut timed, mut n) = (Duration::ZERO, 0usize);
    for batch in batches {
        let started = Instant::now();
        for (i, t) in batch.iter().enumerate() {
            assert!(t.validate_in_batch(i).is_ok());
        }
        for t in batch {
            let customer = match &t.subject {
                Subject::Customer(id) => id.clone(),
                Subject::Identity(identity) => {
                    identities.get(identity).cloned().unwrap_or_default()
                }
            };
            map.entry((customer, t.id.clone())).or_insert(t);
            n += 1;
        }
        timed += started.elapsed();
    }
    eprintln!(
        "world, std HashMap baseline: {n} touchpoints; {:.2} M/s",
        n as f64 / timed.as_secs_f64() / 1e6
    );
}
