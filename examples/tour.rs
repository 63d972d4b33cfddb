//! The tour: a synthetic telecom and e-commerce world, run through `cx` on the in-memory store.
//!
//! ```text
//! cargo run --release --example tour
//! cargo run --release --example tour -- --customers 10000 --touchpoints 200000 --seed 7
//! cargo run --release --example tour -- --store postgres://cx@localhost/cx   # or DATABASE_URL
//! ```
//!
//! It generates the world (`cx_core::testkit::world`), stores the customers, ingests the
//! touchpoints in batches of 10,000 (with a progress bar on stderr), sends one batch again to
//! show that ingest is idempotent, then prints what the store holds per channel and per kind and
//! one customer's state as the engine sees it.
//!
//! Then it arbitrates: it loads the example catalogue (`examples/catalog/telecom.yaml`, whose
//! rules read what the world holds), decides for 10,000 customers on sms and in the app, prints
//! what was chosen, where the other candidates stopped and a few explanations, records how the
//! (simulated) customers answered so the propensity model learns, and decides again 12 hours
//! later, when contact policy holds back what was just shown. The engine's clock is set to the end
//! of the world and exploration is seeded, so the output is the same on every run (timings
//! apart).
#![allow(clippy::print_stdout)]

mod common;

use cx::model::{
    Channel, ConsentStatus, Customer, CustomerId, Decision, DecisionRequest, Explanation,
    Exploration, OfferId, OutcomeKind, PipelineStage, Span, Subject, TimeRange, Timestamp,
    Touchpoint, Value,
};
use cx::store::{AggregateQuery, AggregateRow, TouchpointQuery};
use cx::{Engine, ManualClock};
use cx_core::chrono::TimeDelta;
use cx_core::testkit::world::{self, WorldSpec};
use indicatif::{ProgressBar, ProgressStyle};
use std::collections::{BTreeMap, HashMap};
use std::error::Error;
use std::sync::Arc;
use std::time::{Duration, Instant};

const BATCH: usize = 10_000;
/// Customers arbitrated for, each on both channels.
const DECIDE_FOR: usize = 10_000;
const CHANNELS: [Channel; 2] = [Channel::Sms, Channel::App];
const CATALOG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/catalog/telecom.yaml");

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let (store, args) = common::store_from_args(std::env::args().skip(1)).await?;
    let Some(spec) = parse_args(args.into_iter())? else {
        println!("{USAGE}");
        return Ok(());
    };

    println!(
        "cx tour: a synthetic telecom + e-commerce world on the {} store",
        store.backend()
    );
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
    let deciding: Vec<CustomerId> = world
        .customers
        .iter()
        .take(DECIDE_FOR)
        .map(|c| c.id.clone())
        .collect();
    let by_identity = world
        .touchpoints
        .iter()
        .filter(|t| matches!(t.subject, Subject::Identity(_)))
        .count();
    let end = world.end();
    let total = world.touchpoints.len();
    // The engine's clock stands at the end of the world, so customer states are reproducible.
    let clock = Arc::new(ManualClock::new(end));
    let engine = Engine::new(store).with_clock(Arc::clone(&clock) as _);
    // The catalogue first: ingest places touchpoints in its journeys and opens follow-up cases.
    let version = engine.load_catalog_file(CATALOG).await?;

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
    let (mut inserted, mut duplicates, mut placed, mut cases) = (0, 0, 0, 0);
    let started = Instant::now();
    for batch in world::batches(world.touchpoints, BATCH) {
        let len = batch.len() as u64;
        if first_batch.is_none() {
            first_batch = Some(batch.clone());
        }
        let report = engine.ingest(batch).await?;
        inserted += report.inserted;
        duplicates += report.duplicates;
        placed += report.journeys.placed;
        cases += report.cases_opened;
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
    field(
        "journey events",
        format!(
            "{} placed (touchpoints that enter or exit a stage)",
            thousands(placed)
        ),
    );
    field(
        "follow-up cases",
        format!(
            "{} opened (NPS detractors, CSAT 1-2 after support)",
            thousands(cases)
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

    arbitrate(&engine, &clock, version.version, &deciding).await?;
    journeys_and_kpis(&engine, end).await
}

/// How the simulated customers answer, unknown to the engine: the chance that they accept an
/// offer they were shown (otherwise they reject or ignore it, half and half).
const ACCEPTANCE: &[(&str, f64)] = &[
    ("data-boost-5gb", 0.35),
    ("upgrade-plan-l", 0.15),
    ("roaming-pack", 0.25),
    ("billing-reminder", 0.5),
];

/// The pipeline's stages, in order.
const STAGES: [PipelineStage; 9] = [
    PipelineStage::Candidates,
    PipelineStage::Consent,
    PipelineStage::Eligibility,
    PipelineStage::ContactPolicy,
    PipelineStage::Budget,
    PipelineStage::Suitability,
    PipelineStage::Selection,
    PipelineStage::Selected,
    PipelineStage::Fallback,
];

/// Prints each journey's funnel with its best and worst moments of truth, and the KPI
/// scorecard by owner, at the end of the world.
async fn journeys_and_kpis(engine: &Engine, end: Timestamp) -> Result<(), Box<dyn Error>> {
    let stored = engine.catalog().ok_or("no catalogue")?;
    let catalog = &stored.catalog;
    let started = Instant::now();
    let last_90 = TimeRange::ending_at(end, Span::days(90));
    for (journey, question) in [("onboarding", "nps"), ("purchase", "csat_purchase")] {
        let Some(j) = catalog.journey(journey) else {
            continue;
        };
        let funnel = engine.funnel(journey, last_90).await?;
        println!();
        println!(
            "Journey {:?}: instances started in the last 90 days",
            j.name
        );
        println!(
            "  {:<18} {:>9} {:>8} {:>9} {:>11} {:>11} {:>11} {:>8}  owner",
            "stage",
            "customers",
            "entered",
            "from prev",
            "from start",
            "gap median",
            "gap p90",
            "overdue"
        );
        for (row, stage) in funnel.rows.iter().zip(&j.stages) {
            // Overdue: active in the stage for longer than its max time (if it has one).
            let overdue = stage
                .max_time
                .map_or_else(|| "-".to_owned(), |_| thousands(row.overdue));
            println!(
                "  {:<18} {:>9} {:>8} {:>9} {:>11} {:>11} {:>11} {:>8}  {}",
                stage.name,
                thousands(row.reached),
                thousands(row.entered),
                share(row.conversion),
                share(row.conversion_from_start),
                duration(row.gap.median),
                duration(row.gap.p90),
                overdue,
                stage.owner.as_ref().map_or("", |o| o.as_str()),
            );
        }
        let [active, completed, exited, abandoned] = funnel.instances;
        field(
            "instances",
            format!(
                "{} active, {} completed, {} exited, {} abandoned",
                thousands(active),
                thousands(completed),
                thousands(exited),
                thousands(abandoned)
            ),
        );
        let moments = engine.moments_of_truth(journey, question, last_90).await?;
        if let (Some(best), Some(worst)) = (moments.first(), moments.last()) {
            field(
                "moments of truth",
                format!(
                    "best {:?} ({question} {:.2}, {} answers), worst {:?} ({:.2}, {} answers)",
                    best.stage.as_str(),
                    best.mean,
                    best.responses,
                    worst.stage.as_str(),
                    worst.mean,
                    worst.responses
                ),
            );
        }
    }
    // The owners work their cases: most are closed within a day, some take three.
    let opened = engine
        .cases(&cx::store::CaseQuery::new(last_90, end))
        .await?;
    for (i, case) in opened.iter().enumerate() {
        let hours = match i % 10 {
            0 | 1 => continue,
            2 => 72,
            _ => 20,
        };
        let closed_at = (case.opened_at + TimeDelta::hours(hours)).min(end);
        engine
            .store()
            .close_case(&case.id, closed_at, Some("called back".to_owned()))
            .await?;
    }
    let card = engine.scorecard(end).await?;
    let took = started.elapsed();
    println!();
    println!(
        "KPI scorecard by owner, {}",
        end.format("%Y-%m-%d %H:%M UTC")
    );
    for owner in &card.owners {
        println!("  {} ({})", owner.owner.name, owner.owner.id);
        for r in &owner.results {
            let target = r.target.map_or("-".to_owned(), |t| {
                let dir = match t.direction {
                    cx::model::Direction::HigherIsBetter => ">=",
                    cx::model::Direction::LowerIsBetter => "<=",
                };
                format!("{dir} {}", number(t.value))
            });
            let interval = r.interval.map_or(String::new(), |(lo, hi)| {
                format!("  95% CI {}..{}", number(lo), number(hi))
            });
            println!(
                "    {:<36} {:>10}  target {:<9} n={:<8} {}{}",
                r.name,
                r.value.map_or("-".to_owned(), number),
                target,
                thousands(r.n),
                r.status,
                interval
            );
        }
    }
    let open = engine
        .cases(&cx::store::CaseQuery::new(last_90, end).open_only())
        .await?;
    let mut by_owner: BTreeMap<String, usize> = BTreeMap::new();
    for case in &open {
        *by_owner.entry(case.owner.to_string()).or_default() += 1;
    }
    let listed: Vec<String> = by_owner.iter().map(|(o, n)| format!("{o} {n}")).collect();
    field("open follow-up cases", listed.join(", "));
    field("funnels, moments and scorecard took", seconds(took));
    Ok(())
}

fn share(x: Option<f64>) -> String {
    x.map_or("-".to_owned(), |x| format!("{:.1}%", 100.0 * x))
}

fn number(x: f64) -> String {
    if x.abs() >= 100.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.2}")
    }
}

fn duration(seconds: Option<f64>) -> String {
    match seconds {
        None => "-".to_owned(),
        Some(s) if s < 3600.0 => format!("{:.0}m", s / 60.0),
        Some(s) if s < 86_400.0 => format!("{:.1}h", s / 3600.0),
        Some(s) => format!("{:.1}d", s / 86_400.0),
    }
}

/// Loads the example catalogue and decides for `customers` on each channel; records the
/// customers' answers; decides again a day later.
async fn arbitrate(
    engine: &Engine,
    clock: &ManualClock,
    version: u64,
    customers: &[CustomerId],
) -> Result<(), Box<dyn Error>> {
    let arbitrator = engine.arbitrator()?;
    let catalog = arbitrator.catalog();
    let offers = catalog.offer_ids();
    println!();
    println!("Arbitration");
    field(
        "catalogue",
        format!("examples/catalog/telecom.yaml (version {version})"),
    );
    let names: Vec<&str> = offers.iter().map(OfferId::as_str).collect();
    field("offers", names.join(", "));
    field(
        "requests",
        format!(
            "{} customers, each on sms and in the app; {} offers each at most, one per category",
            thousands(customers.len() as u64),
            catalog.config().k
        ),
    );
    let policy = match catalog.config().exploration {
        Exploration::Greedy => "greedy".to_owned(),
        Exploration::EpsilonGreedy { epsilon } => format!("epsilon-greedy (epsilon {epsilon})"),
        Exploration::Softmax { temperature } => format!("softmax (temperature {temperature})"),
        Exploration::Thompson { samples } => format!("Thompson sampling ({samples} draws)"),
    };
    field("selection", format!("{policy}, seeded per request"));

    let (first, took) = decide_all(engine, customers, 1).await?;
    report(
        &format!("Round 1, {}", engine.now().format("%Y-%m-%d %H:%M UTC")),
        &first,
        took,
        &offers,
    );
    examples(
        &first,
        &[
            (
                "unsuitable: the upgrade costs more than the overage; the data boost went instead",
                upgrade_unsuitable,
            ),
            ("no consent on the channel", no_consent),
            ("budget used up", over_budget),
        ],
    );

    learn(engine, &first, &offers).await?;

    // Later the same day (the customers' attributes are the billing system's figures of that
    // day): what was shown this morning now counts against the contact policy.
    clock.advance(TimeDelta::hours(12));
    let (second, took) = decide_all(engine, customers, 2).await?;
    report(
        &format!(
            "Round 2, the same customers 12 hours later ({})",
            engine.now().format("%Y-%m-%d %H:%M UTC")
        ),
        &second,
        took,
        &offers,
    );
    examples(
        &second,
        &[
            (
                "capped by contact policy, with the time the cap lifts",
                capped,
            ),
            ("suppressed after two rejections", suppressed),
        ],
    );
    Ok(())
}

/// One decision per customer and channel, in order, one at a time; and how long they took.
async fn decide_all(
    engine: &Engine,
    customers: &[CustomerId],
    round: u64,
) -> Result<(Vec<Decision>, Duration), cx::Error> {
    let mut decisions = Vec::with_capacity(customers.len() * CHANNELS.len());
    let started = Instant::now();
    for (i, id) in customers.iter().enumerate() {
        for (c, channel) in CHANNELS.iter().enumerate() {
            // Seeded, so exploration makes the same draws on every run.
            let seed = (round << 40) | ((i as u64) << 1) | c as u64;
            let request = DecisionRequest::new(id.clone(), channel.clone()).seed(seed);
            decisions.push(engine.decide(&request).await?);
        }
    }
    Ok((decisions, started.elapsed()))
}

/// Where each offer of the catalogue stopped in `decision`: its explanation's stage, or
/// `candidates` for an offer not deliverable on the channel (explanations cover candidates only).
fn stages(decision: &Decision, offers: &[OfferId]) -> Vec<PipelineStage> {
    let mut stages = vec![PipelineStage::Candidates; offers.len()];
    for e in decision.explanations() {
        let Some(stage) = offers
            .iter()
            .position(|o| *o == e.offer)
            .and_then(|i| stages.get_mut(i))
        else {
            continue;
        };
        *stage = e.stage;
    }
    stages
}

/// Throughput, what was chosen per channel, and where every offer stopped.
fn report(title: &str, decisions: &[Decision], took: Duration, offers: &[OfferId]) {
    let n = decisions.len() as u64;
    println!();
    println!("{title}");
    field(
        "decisions",
        format!(
            "{} in {}  {:>9} decisions/s (one task, explanations kept)",
            thousands(n),
            seconds(took).trim_start(),
            per_second(n, took)
        ),
    );
    let chose = decisions.iter().filter(|d| !d.offers.is_empty()).count() as u64;
    field(
        "chose something",
        format!(
            "{} ({:.1}%), {} offers in all",
            thousands(chose),
            percent(chose, n),
            thousands(decisions.iter().map(|d| d.offers.len() as u64).sum())
        ),
    );

    let width = offers.iter().map(|o| o.as_str().len()).max().unwrap_or(0) + 2;
    println!();
    println!(
        "  {:<w$}{:>9}{:>9}{:>9}{:>12}",
        "offer chosen",
        "sms",
        "app",
        "total",
        "explored",
        w = width.max(18)
    );
    for offer in offers {
        let mut per_channel = [0u64; CHANNELS.len()];
        let mut explored = 0;
        for d in decisions {
            if let Some(s) = d.selected(offer) {
                if let Some(slot) = CHANNELS
                    .iter()
                    .position(|c| *c == d.channel)
                    .and_then(|c| per_channel.get_mut(c))
                {
                    *slot += 1;
                }
                // A pick the greedy policy would not have made has a small probability.
                explored += u64::from(s.probability < 0.5);
            }
        }
        let total: u64 = per_channel.iter().sum();
        let [sms, app] = per_channel;
        println!(
            "  {:<w$}{:>9}{:>9}{:>9}{:>12}",
            offer.as_str(),
            thousands(sms),
            thousands(app),
            thousands(total),
            thousands(explored),
            w = width.max(18)
        );
    }
    println!(
        "  (explored: picked by the policy's random draw, with a logged probability below 0.5)"
    );

    // Stage × offer: each decision counts once per offer of the catalogue.
    let mut counts = vec![vec![0u64; offers.len()]; STAGES.len()];
    for d in decisions {
        for (o, stage) in stages(d, offers).into_iter().enumerate() {
            if let Some(c) = STAGES
                .iter()
                .position(|s| *s == stage)
                .and_then(|s| counts.get_mut(s))
                .and_then(|row| row.get_mut(o))
            {
                *c += 1;
            }
        }
    }
    println!();
    print!("  {:<16}", "where it stopped");
    for offer in offers {
        print!(
            "{:>w$}",
            offer.as_str(),
            w = offer.as_str().len().max(8) + 2
        );
    }
    println!("{:>10}", "total");
    for (stage, row) in STAGES.iter().zip(&counts) {
        let total: u64 = row.iter().sum();
        if total == 0 && *stage == PipelineStage::Fallback {
            continue;
        }
        print!("  {:<16}", stage.as_str());
        for (offer, count) in offers.iter().zip(row) {
            print!(
                "{:>w$}",
                thousands(*count),
                w = offer.as_str().len().max(8) + 2
            );
        }
        println!("{:>10}", thousands(total));
    }
    println!("  (candidates: not deliverable on the channel, or not valid at the time)");
}

/// A kind of case worth explaining: a title, and whether an explanation of a decision is one.
type Case = (&'static str, fn(&Decision, &Explanation) -> bool);

/// The upgrade held back as unsuitable (it costs more than the overage), the data boost chosen.
fn upgrade_unsuitable(d: &Decision, e: &Explanation) -> bool {
    e.offer == "upgrade-plan-l"
        && e.stage == PipelineStage::Suitability
        && e.reason.contains("is false")
        && d.selected(&OfferId::new("data-boost-5gb")).is_some()
}

fn no_consent(_: &Decision, e: &Explanation) -> bool {
    e.stage == PipelineStage::Consent
}

fn capped(_: &Decision, e: &Explanation) -> bool {
    e.stage == PipelineStage::ContactPolicy && e.lifts_at.is_some()
}

fn suppressed(d: &Decision, e: &Explanation) -> bool {
    capped(d, e) && e.reason.contains("cool-off")
}

fn over_budget(_: &Decision, e: &Explanation) -> bool {
    e.stage == PipelineStage::Budget
}

/// For each case, the first decision (in request order) that shows it, with its `why_not`.
fn examples(decisions: &[Decision], cases: &[Case]) {
    println!();
    println!("  Why not? (the first case of each kind)");
    for (title, is_case) in cases {
        let found = decisions.iter().find_map(|d| {
            d.explanations()
                .into_iter()
                .find(|e| is_case(d, e))
                .map(|e| (d, e))
        });
        println!("  - {title}");
        let Some((d, e)) = found else {
            println!("      no such case in this round");
            continue;
        };
        let chosen: Vec<&str> = d.offers.iter().map(|s| s.offer.as_str()).collect();
        println!(
            "      {} on {}: chosen {}",
            d.customer,
            d.channel,
            if chosen.is_empty() {
                "nothing".to_owned()
            } else {
                chosen.join(", ")
            }
        );
        for line in common::wrap(&d.why_not(&e.offer), 90) {
            println!("      {line}");
        }
        if let Some(at) = e.lifts_at {
            println!("      (lifts_at: {})", at.format("%Y-%m-%d %H:%M UTC"));
        }
    }
}

/// Records what the simulated customers did with every offer shown in `decisions`, then shows
/// how the propensities moved.
async fn learn(
    engine: &Engine,
    decisions: &[Decision],
    offers: &[OfferId],
) -> Result<(), Box<dyn Error>> {
    let model = engine.propensity_model();
    let indices: Vec<u32> = (0..offers.len() as u32).collect();
    let mut before = Vec::new();
    model.fill_means(&indices, None, &mut before);

    // Per offer: shown, accepted, rejected, ignored.
    let mut tally = vec![[0u64; 4]; offers.len()];
    let started = Instant::now();
    let mut recorded = 0u64;
    for (n, d) in decisions.iter().enumerate() {
        for s in &d.offers {
            let rate = ACCEPTANCE
                .iter()
                .find(|(id, _)| *id == s.offer.as_str())
                .map_or(0.0, |(_, p)| *p);
            let draw = unit(n as u64 * 8 + u64::from(s.rank));
            let answer = if draw < rate {
                OutcomeKind::Accepted
            } else if draw < rate + (1.0 - rate) / 2.0 {
                OutcomeKind::Rejected
            } else {
                OutcomeKind::Ignored
            };
            engine
                .record_outcome(&d.id, &s.offer, OutcomeKind::Shown)
                .await?;
            engine.record_outcome(&d.id, &s.offer, answer).await?;
            recorded += 2;
            let column = match answer {
                OutcomeKind::Accepted => 1,
                OutcomeKind::Rejected => 2,
                _ => 3,
            };
            if let Some(row) = offers
                .iter()
                .position(|o| *o == s.offer)
                .and_then(|i| tally.get_mut(i))
            {
                row[0] += 1;
                row[column] += 1;
            }
        }
    }
    let took = started.elapsed();
    let mut after = Vec::new();
    model.fill_means(&indices, None, &mut after);

    println!();
    println!("Outcomes of round 1 (simulated customers answer; the propensity model learns)");
    field(
        "recorded",
        format!(
            "{} outcomes in {}  {:>9} outcomes/s",
            thousands(recorded),
            seconds(took).trim_start(),
            per_second(recorded, took)
        ),
    );
    println!(
        "  {:<18}{:>8}{:>10}{:>10}{:>9}   propensity",
        "offer", "shown", "accepted", "rejected", "ignored"
    );
    for (i, offer) in offers.iter().enumerate() {
        let [shown, accepted, rejected, ignored] = tally.get(i).copied().unwrap_or_default();
        let b = before.get(i).copied().unwrap_or_default();
        let a = after.get(i).copied().unwrap_or_default();
        println!(
            "  {:<18}{:>8}{:>10}{:>10}{:>9}   {b:.3} -> {a:.3}",
            offer.as_str(),
            thousands(shown),
            thousands(accepted),
            thousands(rejected),
            thousands(ignored),
        );
    }
    Ok(())
}

/// A number in [0, 1) from `key`, the same on every run (SplitMix64's finaliser).
fn unit(key: u64) -> f64 {
    let mut x = key.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^= x >> 31;
    (x >> 11) as f64 / (1u64 << 53) as f64
}

fn percent(part: u64, whole: u64) -> f64 {
    100.0 * part as f64 / whole.max(1) as f64
}

const USAGE: &str = "usage: cargo run --release --example tour -- [--customers N] \
     [--touchpoints N] [--seed N] [--store memory|postgres://user@host/db]";

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
