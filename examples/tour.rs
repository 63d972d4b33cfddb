//! The tour: a synthetic telecom and e-commerce world, run through `cx` on the in-memory store.
//!
//! ```text
//! cargo run --release --example tour
//! cargo run --release --example tour -- --customers 10000 --touchpoints 200000 --seed 7
//! ```
//!
//! It generates the world (`cx_core::testkit::world`), stores the customers, ingests the
//! touchpoints in batches of 10,000 (with a progress bar on stderr), sends one batch again to
//! show that ingest is idempotent, then prints what the store holds per channel and per kind and
//! one customer's state as the engine sees it. The engine's clock is set to the end of the world
//! so the output is the same on every run (timings apart).
#![allow(clippy::print_stdout)]

use cx::model::{ConsentStatus, Customer, CustomerId, Subject, TimeRange, Touchpoint, Value};
use cx::store::{AggregateQuery, AggregateRow, TouchpointQuery};
use cx::{Engine, ManualClock, MemoryStore};
use cx_core::testkit::world::{self, WorldSpec};
use indicatif::{ProgressBar, ProgressStyle};
use std::collections::{BTreeMap, HashMap};
use std::error::Error;
use std::sync::Arc;
use std::time::{Duration, Instant};

const BATCH: usize = 10_000;

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let Some(spec) = parse_args(std::env::args().skip(1))? else {
        println!("{USAGE}");
        return Ok(());
    };

    println!("cx tour: a synthetic telecom + e-commerce world on the in-memory store");
    println!();
    println!("World (cx_core::testkit::world)");
    field("seed", spec.seed);
    field("customers", thousands(spec.customers as u64));
    field("touchpoints", thousands(spec.touchpoints as u64));
    field(
        "window",
        format!(
            "{} days, {} to {} (UTC)",
            spec.days,
            spec.start.format("%Y-%m-%d"),
            spec.end().format("%Y-%m-%d")
        ),
    );
    let started = Instant::now();
    let world = spec.generate();
    let generation = started.elapsed();

    let sample = most_active(&world.touchpoints);
    let by_identity = world
        .touchpoints
        .iter()
        .filter(|t| matches!(t.subject, Subject::Identity(_)))
        .count();
    let end = world.end();
    let total = world.touchpoints.len();
    // The engine's clock stands at the end of the world, so customer states are reproducible.
    let store = Arc::new(MemoryStore::new());
    let engine = Engine::new(store).with_clock(Arc::new(ManualClock::new(end)));

    // Customers first: touchpoints that name an identity resolve against them.
    let started = Instant::now();
    let mut upserted = 0;
    for batch in world::batches(world.customers, BATCH) {
        let report = engine.upsert_customers(batch).await?;
        upserted += report.inserted + report.updated;
    }
    let upsert = started.elapsed();

    let bar = ProgressBar::new(total as u64).with_style(ProgressStyle::with_template(concat!(
        "  ingest {bar:40.cyan/blue} {human_pos:>9}/{human_len} touchpoints",
        "  {per_sec:>12}  eta {eta}"
    ))?);
    let mut first_batch = None;
    let (mut inserted, mut duplicates) = (0, 0);
    let started = Instant::now();
    for batch in world::batches(world.touchpoints, BATCH) {
        let len = batch.len() as u64;
        if first_batch.is_none() {
            first_batch = Some(batch.clone());
        }
        let report = engine.ingest(batch).await?;
        inserted += report.inserted;
        duplicates += report.duplicates;
        bar.inc(len);
    }
    let ingest = started.elapsed();
    bar.finish_and_clear();

    let resent = match first_batch {
        Some(batch) => Some(engine.ingest(batch).await?),
        None => None,
    };

    let store = engine.store();
    let stored = store.count_customers().await?;
    let everything = TouchpointQuery::new(TimeRange::all());
    let started = Instant::now();
    let by_channel = store
        .aggregate_touchpoints(&AggregateQuery::new(everything.clone()).by_channel())
        .await?;
    let by_kind = store
        .aggregate_touchpoints(&AggregateQuery::new(everything).by_kind())
        .await?;
    let aggregates = started.elapsed();

    println!();
    println!("Ingest");
    field("customers stored", thousands(stored));
    field("touchpoints inserted", thousands(inserted));
    field("duplicates", thousands(duplicates));
    field(
        "named by an identity",
        format!(
            "{} (cookie, device or email; resolved at ingest)",
            thousands(by_identity as u64)
        ),
    );
    if let Some(resent) = resent {
        field(
            "first batch again",
            format!(
                "{} inserted, {} duplicates (ingest is idempotent)",
                thousands(resent.inserted),
                thousands(resent.duplicates)
            ),
        );
    }

    println!();
    println!("Timings (wall clock)");
    field("generate world", seconds(generation));
    field(
        "upsert customers",
        format!(
            "{}  {:>9} customers/s",
            seconds(upsert),
            per_second(upserted, upsert)
        ),
    );
    field(
        "ingest touchpoints",
        format!(
            "{}  {:>9} touchpoints/s (batches of {}, one at a time)",
            seconds(ingest),
            per_second(inserted + duplicates, ingest),
            thousands(BATCH as u64)
        ),
    );
    field("two aggregates", seconds(aggregates));

    println!();
    println!("Touchpoints per channel");
    table("channel", &by_channel, |row| {
        row.channel.as_ref().map(|c| c.to_string())
    });
    println!();
    println!("Touchpoints per kind");
    table("kind", &by_kind, |row| {
        row.kind.as_ref().map(|k| k.to_string())
    });

    if let Some(id) = sample {
        let state = engine.customer_state(&id).await?;
        println!();
        println!(
            "Customer {} (the most active), as the engine sees it on {}",
            state.customer.id,
            end.format("%Y-%m-%d %H:%M UTC")
        );
        profile(&state.customer);
        field(
            "touchpoints",
            format!(
                "{} in the last {} days",
                thousands(state.touchpoints.len() as u64),
                (state.window.end - state.window.start).num_days()
            ),
        );
        let mut channels: BTreeMap<String, usize> = BTreeMap::new();
        for t in &state.touchpoints {
            *channels.entry(t.channel.to_string()).or_default() += 1;
        }
        let mix: Vec<String> = channels.iter().map(|(c, n)| format!("{c} {n}")).collect();
        field("by channel", mix.join(", "));
        println!("  latest");
        let latest = state.touchpoints.len().saturating_sub(5);
        for t in state.touchpoints.iter().skip(latest) {
            println!("    {}", describe(t));
        }
    }
    Ok(())
}

const USAGE: &str =
    "usage: cargo run --release --example tour -- [--customers N] [--touchpoints N] [--seed N]";

/// The spec from `--customers N --touchpoints N --seed N`; `None` for `--help`.
fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Option<WorldSpec>, UsageError> {
    let mut spec = WorldSpec::default();
    while let Some(flag) = args.next() {
        if flag == "--help" || flag == "-h" {
            return Ok(None);
        }
        let value = args
            .next()
            .ok_or_else(|| UsageError(format!("{flag} needs a value")))?;
        let bad = |e: &dyn Error| UsageError(format!("{flag} {value:?}: {e}"));
        let number = value.replace('_', "").parse::<u64>().map_err(|e| bad(&e))?;
        let count = || usize::try_from(number).map_err(|e| bad(&e));
        spec = match flag.as_str() {
            "--customers" => spec.with_customers(count()?),
            "--touchpoints" => spec.with_touchpoints(count()?),
            "--seed" => spec.with_seed(number),
            _ => return Err(UsageError(format!("unknown argument {flag:?}"))),
        };
    }
    Ok(Some(spec))
}

/// A bad command line; shown as the message and the usage (`main` prints errors with `Debug`).
struct UsageError(String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}\n{USAGE}", self.0)
    }
}

impl std::fmt::Debug for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

impl Error for UsageError {}

/// The customer with the most touchpoints (by id, so identity-subject ones are not counted).
fn most_active(touchpoints: &[Touchpoint]) -> Option<CustomerId> {
    let mut counts: HashMap<&CustomerId, usize> = HashMap::new();
    for t in touchpoints {
        if let Subject::Customer(id) = &t.subject {
            *counts.entry(id).or_default() += 1;
        }
    }
    counts
        .into_iter()
        .max_by(|a, b| a.1.cmp(&b.1).then_with(|| b.0.cmp(a.0)))
        .map(|(id, _)| id.clone())
}

/// Attributes (PII left out), identity kinds (never their values) and consent.
fn profile(customer: &Customer) {
    for (name, value) in customer.attributes.iter() {
        if !customer.is_pii(name.as_str()) {
            field(name.as_str(), show(value));
        }
    }
    let hidden: Vec<&str> = customer.pii.iter().map(|n| n.as_str()).collect();
    field("PII (not shown)", hidden.join(", "));
    let kinds: Vec<&str> = customer
        .identities
        .iter()
        .map(|i| i.kind.as_str())
        .collect();
    field(
        "identities",
        format!("{} (values not shown)", kinds.join(", ")),
    );
    let consents: Vec<String> = customer
        .consents
        .iter()
        .map(|c| {
            let status = match c.status {
                ConsentStatus::Granted => "granted",
                ConsentStatus::Denied => "denied",
                ConsentStatus::Revoked => "revoked",
            };
            format!("{} {} {status}", c.channel, c.purpose)
        })
        .collect();
    for (i, chunk) in consents.chunks(3).enumerate() {
        field(if i == 0 { "consent" } else { "" }, chunk.join(", "));
    }
}

/// One `label  value` line, values aligned.
fn field(label: &str, value: impl std::fmt::Display) {
    println!("  {label:<22}{value}");
}

fn describe(t: &Touchpoint) -> String {
    let details: Vec<String> = t
        .attributes
        .iter()
        .map(|(name, value)| format!("{name}={}", show(value)))
        .collect();
    let survey = t
        .survey
        .as_ref()
        .map(|s| format!(" {}={}", s.question, s.score))
        .unwrap_or_default();
    format!(
        "{}  {:<8} {:<16} {}{survey}",
        t.occurred_at.format("%Y-%m-%d %H:%M"),
        t.channel.as_str(),
        t.kind.as_str(),
        details.join(" ")
    )
}

fn show(value: &Value) -> String {
    match value {
        Value::String(s) => s.to_string(),
        Value::Number(n) if n.fract() == 0.0 => format!("{n:.0}"),
        Value::Number(n) => format!("{n:.2}"),
        Value::Bool(b) => b.to_string(),
        Value::Timestamp(t) => t.format("%Y-%m-%d").to_string(),
        Value::List(items) => items.iter().map(show).collect::<Vec<_>>().join(", "),
    }
}

/// Rows by descending count, with their share and distinct customers.
fn table(label: &str, rows: &[AggregateRow], name: impl Fn(&AggregateRow) -> Option<String>) {
    let mut rows: Vec<&AggregateRow> = rows.iter().collect();
    rows.sort_by(|a, b| {
        b.touchpoints
            .cmp(&a.touchpoints)
            .then_with(|| name(a).cmp(&name(b)))
    });
    let total: u64 = rows.iter().map(|r| r.touchpoints).sum();
    println!(
        "  {label:<16} {:>12} {:>7} {:>12}",
        "touchpoints", "share", "customers"
    );
    for row in rows {
        let share = 100.0 * row.touchpoints as f64 / total.max(1) as f64;
        println!(
            "  {:<16} {:>12} {:>6.1}% {:>12}",
            name(row).unwrap_or_default(),
            thousands(row.touchpoints),
            share,
            thousands(row.customers)
        );
    }
    println!("  {:<16} {:>12}", "total", thousands(total));
}

/// `1234567` as `1,234,567`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn seconds(d: Duration) -> String {
    format!("{:>6.2} s", d.as_secs_f64())
}

fn per_second(n: u64, d: Duration) -> String {
    thousands((n as f64 / d.as_secs_f64().max(1e-9)).round() as u64)
}
