//! Journey and KPI analytics on the in-memory store, with pandas as the baseline.
//!
//! ```text
//! cargo bench --bench analytics
//! python3 -m venv .venv && .venv/bin/pip install pandas numpy   # once
//! .venv/bin/python benches/analytics_pandas.py                  # after the bench
//! ```
//!
//! The data: the synthetic world (`cx_core::testkit::world`) with 100,000 customers and
//! 1,000,000 touchpoints, ingested through `Engine::ingest` with the catalogue below loaded, so
//! journeys are tracked as they would be in production.
//!
//! - `analytics/funnel-1m/cx`: the 5-stage `shop` funnel (product view, add to cart, purchase,
//!   support contact, survey answer) over every instance: exact distinct customers per stage,
//!   conversions and gap statistics (`Engine::funnel`).
//! - `analytics/scorecard-1m/cx`: 12 KPIs over their 30-day windows, grouped by owner
//!   (`Engine::scorecard`; the touchpoint measures in one pass).
//!
//! The bench writes the touchpoints (`target/analytics-bench/touchpoints.csv`) and what cx
//! computed (`target/analytics-bench/cx.json`); `benches/analytics_pandas.py` computes the same
//! funnel and scorecard with pandas, checks that the numbers agree, and prints its timings next
//! to criterion's medians. One core: a current-thread runtime, and the memory store's queries
//! run on the calling thread.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs,
    clippy::print_stdout
)]

use criterion::{Criterion, criterion_group, criterion_main};
use cx::model::{Catalog, Subject, TimeRange, Touchpoint, Value};
use cx::{Engine, ManualClock, MemoryStore};
use cx_core::testkit::world::{self, WorldSpec};
use std::fmt::Write as _;
use std::hint::black_box;
use std::io::Write as _;
use std::sync::Arc;
use std::time::Duration;

/// The journey (no optional stage, no timeout: the funnel is the greedy ordered funnel that
/// pandas computes too) and the 12 KPIs.
pub const CATALOG: &str = r#"
owners:
  - { id: shop, name: Shop }
  - { id: care, name: Care }
  - { id: cx, name: CX office }
journeys:
  - id: shop
    name: Shop
    lateness: 1d
    stages:
      - { id: view, name: View, owner: shop, entry: { kinds: [product_view] } }
      - { id: cart, name: Cart, owner: shop, entry: { kinds: [add_to_cart] } }
      - { id: buy, name: Buy, owner: shop, entry: { kinds: [purchase] } }
      - { id: support, name: Support, owner: care, entry: { kinds: [support_contact] } }
      - { id: answer, name: Answer, owner: cx, entry: { kinds: [survey_response] } }
kpis:
  - { id: views, name: Product views, owner: shop, window: 30d, measure: { type: count, filter: { kinds: [product_view] } } }
  - { id: active, name: Active customers, owner: shop, window: 30d, measure: { type: distinct_customers } }
  - { id: revenue, name: Revenue, owner: shop, window: 30d, measure: { type: sum, attribute: amount, filter: { kinds: [purchase] } } }
  - { id: aov, name: Average order, owner: shop, window: 30d, measure: { type: avg, attribute: amount, filter: { kinds: [purchase] } } }
  - { id: dwell-p50, name: Median dwell, owner: shop, window: 30d, measure: { type: percentile, attribute: dwell_seconds, p: 50, filter: { kinds: [page_view, product_view] } } }
  - { id: handle-p90, name: Handle time p90, owner: care, window: 30d, measure: { type: percentile, attribute: handle_seconds, p: 90, filter: { kinds: [support_contact, complaint] } } }
  - id: complaint-rate
    name: Complaints per active customer
    owner: care
    window: 30d
    measure: { type: ratio, numerator: { type: count, filter: { kinds: [complaint] } }, denominator: { type: distinct_customers } }
  - { id: complaints, name: Complaints, owner: care, window: 30d, measure: { type: count, filter: { kinds: [complaint] } } }
  - { id: nps, name: NPS, owner: cx, window: 30d, measure: { type: nps, question: nps } }
  - { id: csat-support, name: Support CSAT, owner: care, window: 30d, measure: { type: csat, question: csat_support } }
  - { id: csat-purchase, name: Purchase CSAT, owner: shop, window: 30d, measure: { type: csat, question: csat_purchase } }
  - { id: ces, name: Support CES, owner: care, window: 30d, measure: { type: ces, question: ces_support } }
"#;

const OUT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/target/analytics-bench");

fn analytics(c: &mut Criterion) {
    let world = WorldSpec::default()
        .with_customers(100_000)
        .with_touchpoints(1_000_000)
        .generate();
    let end = world.end();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let engine =
        Engine::new(Arc::new(MemoryStore::new())).with_clock(Arc::new(ManualClock::new(end)));
    rt.block_on(async {
        engine
            .load_catalog(Catalog::from_yaml(CATALOG).unwrap())
            .await
            .unwrap();
        for batch in world::batches(world.customers.clone(), 10_000) {
            engine.upsert_customers(batch).await.unwrap();
        }
        for batch in world.touchpoints.chunks(10_000) {
            engine.ingest(batch.to_vec()).await.unwrap();
        }
    });
    let funnel = rt
        .block_on(engine.funnel("shop", TimeRange::all()))
        .unwrap();
    let card = rt.block_on(engine.scorecard(end)).unwrap();
    write_data(&rt, &engine, &world.touchpoints, end, &funnel, &card);

    let mut group = c.benchmark_group("analytics");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(10));
    group.bench_function("funnel-1m/cx", |b| {
        b.iter(|| {
            black_box(
                rt.block_on(engine.funnel("shop", TimeRange::all()))
                    .unwrap(),
            )
        });
    });
    group.bench_function("scorecard-1m/cx", |b| {
        b.iter(|| black_box(rt.block_on(engine.scorecard(end)).unwrap()));
    });
    group.finish();
}

/// Writes the touchpoints as CSV (with resolved customer ids) and cx's answers as JSON.
fn write_data(
    rt: &tokio::runtime::Runtime,
    engine: &Engine,
    touchpoints: &[Touchpoint],
    end: cx::model::Timestamp,
    funnel: &cx::store::Funnel,
    card: &cx::kpi::Scorecard,
) {
    std::fs::create_dir_all(OUT).unwrap();
    let csv = format!("{OUT}/touchpoints.csv");
    let file = std::fs::File::create(&csv).unwrap();
    let mut out = std::io::BufWriter::new(file);
    writeln!(
        out,
        "seq,customer,kind,channel,occurred_us,amount,dwell_seconds,handle_seconds,question,score"
    )
    .unwrap();
    let mut identities = std::collections::HashMap::new();
    for (seq, t) in touchpoints.iter().enumerate() {
        let customer = match &t.subject {
            Subject::Customer(id) => id.to_string(),
            Subject::Identity(identity) => identities
                .entry(identity.clone())
                .or_insert_with(|| {
                    rt.block_on(engine.store().resolve_identity(identity))
                        .unwrap()
                        .unwrap()
                        .to_string()
                })
                .clone(),
        };
        let num = |name: &str| match t.attributes.get(name) {
            Some(Value::Number(n)) => n.to_string(),
            _ => String::new(),
        };
        let (question, score) = t
            .survey
            .as_ref()
            .map_or((String::new(), String::new()), |s| {
                (s.question.to_string(), s.score.to_string())
            });
        writeln!(
            out,
            "{seq},{customer},{},{},{},{},{},{},{question},{score}",
            t.kind,
            t.channel,
            t.occurred_at.timestamp_micros(),
            num("amount"),
            num("dwell_seconds"),
            num("handle_seconds"),
        )
        .unwrap();
    }
    out.flush().unwrap();
    let mut json = String::from("{\n  \"end_us\": ");
    write!(json, "{},\n  \"funnel\": [", end.timestamp_micros()).unwrap();
    let reached: Vec<String> = funnel.rows.iter().map(|r| r.reached.to_string()).collect();
    write!(json, "{}],\n  \"kpis\": {{", reached.join(", ")).unwrap();
    let kpis: Vec<String> = card
        .results()
        .map(|r| {
            format!(
                "\n    \"{}\": {}",
                r.kpi,
                r.value.map_or("null".to_owned(), |v| format!("{v:?}"))
            )
        })
        .collect();
    write!(json, "{}\n  }}\n}}\n", kpis.join(",")).unwrap();
    std::fs::write(format!("{OUT}/cx.json"), json).unwrap();
    println!("analytics: wrote {csv} and {OUT}/cx.json");
}

criterion_group!(benches, analytics);
criterion_main!(benches);
