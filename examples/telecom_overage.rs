//! The design's first seed story: a telecom texts customers near their data cap, and arbitration
//! never chooses an offer that would cost the customer more than doing nothing.
//!
//! ```text
//! cargo run --release --example telecom_overage
//! ```
//!
//! Anna and Ben are on plan S: 10 GB for 20 USD a month, 10 USD for each GB over the cap. Both
//! are past 80 % of their data, so both are eligible for a 9 USD data boost and for an upgrade to
//! plan M (+25 USD a month).
//!
//! - Anna has used 9.4 GB with 3 days to go. At her pace of the last week she will end about
//!   1.8 GB over the cap: an overage of about 18 USD. The upgrade would cost her 25 USD more this
//!   month, so it is *unsuitable*, and the decision says so with the clause and its values; the
//!   boost, cheaper than the overage, goes out instead.
//! - Ben has used 9 GB with 15 days to go. At his pace he is heading for 6.5 GB over, 65 USD:
//!   the upgrade saves him money, it is suitable, and it wins on value.
//!
//! The expected overage is a rule expression in the catalogue (`examples/catalog/overage.yaml`),
//! not an attribute computed here: the engine evaluates it at decision time from the network's
//! usage records (features) and the billing system's attributes, so it follows usage as records
//! arrive, every offer's rule reads the same definition, and the explanation lists each input.
//!
//! Everything runs on the in-memory store with a fixed clock, so the output is the same on every
//! run.
#![allow(clippy::print_stdout)]

mod common;

use cx::model::{
    Catalog, Channel, Consent, Customer, CustomerId, Decision, DecisionRequest, Kind, OfferId,
    OutcomeKind, Purpose, Timestamp, Touchpoint, Value,
};
use cx::store::OutcomeRecorded;
use cx::{Engine, ManualClock};
use cx_core::chrono::{TimeDelta, TimeZone, Utc};
use std::error::Error;
use std::sync::Arc;

const CATALOG: &str = include_str!("catalog/overage.yaml");

// Plan S, as the billing system knows it.
const PLAN: &str = "S";
const CAP_GB: f64 = 10.0;
const FEE_USD: f64 = 20.0;
const OVERAGE_USD_PER_GB: f64 = 10.0;
const CYCLE_DAYS: i64 = 30;

/// One customer of the story: the billing cycle, and the data used on each day of it so far.
struct Story {
    id: &'static str,
    name: &'static str,
    days_to_reset: i64,
    /// GB used on each day of the current cycle, oldest first.
    daily_gb: Vec<f64>,
}

impl Story {
    fn days_in(&self) -> i64 {
        CYCLE_DAYS - self.days_to_reset
    }

    /// The cycle's usage so far, rounded as the network reports it.
    fn used_gb(&self) -> f64 {
        round2(self.daily_gb.iter().sum())
    }

    /// GB used over the last 7 days.
    fn last_week_gb(&self) -> f64 {
        self.daily_gb.iter().rev().take(7).sum()
    }

    /// The profile the billing system keeps.
    fn customer(&self, now: Timestamp) -> Customer {
        Customer::new(self.id)
            .with_attribute("plan", PLAN)
            .with_attribute("data_cap_gb", CAP_GB)
            .with_attribute("monthly_fee", FEE_USD)
            .with_attribute("overage_usd_per_gb", OVERAGE_USD_PER_GB)
            .with_attribute("days_to_reset", self.days_to_reset as f64)
            .with_pii_attribute("name", self.name)
            .with_consent(Consent::granted(
                Channel::Sms,
                Purpose::MARKETING,
                now - TimeDelta::days(400),
            ))
    }

    /// The network's daily usage records: the last three days of the previous cycle (whose
    /// running total must not leak into this one), then one per day of this cycle, each sent at
    /// 23:00 with that day's data and the cycle's running total.
    fn usage_records(&self, now: Timestamp) -> Vec<Touchpoint> {
        let today = now
            .date_naive()
            .and_hms_opt(0, 0, 0)
            .map_or(now, |t| t.and_utc());
        let cycle_start = today - TimeDelta::days(self.days_in());
        let network = Channel::Other("network".into());
        let record = |day: i64, gb: f64, total: f64| {
            let at = cycle_start + TimeDelta::days(day) + TimeDelta::hours(23);
            Touchpoint::new(
                format!("{}-usage-{}", self.id, at.format("%Y%m%d")),
                CustomerId::new(self.id),
                network.clone(),
                Kind::USAGE,
                at,
            )
            .with_attribute("data_gb", gb)
            .with_attribute("cycle_gb", total)
        };
        let mut records: Vec<Touchpoint> = (1..=3)
            .map(|back| record(-back, 0.3, 8.5 - 0.3 * (back - 1) as f64))
            .collect();
        let mut total = 0.0;
        for (day, gb) in (0..).zip(&self.daily_gb) {
            total += gb;
            records.push(record(day, *gb, round2(total)));
        }
        records
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// `n` days of `gb` each.
fn days(n: usize, gb: f64) -> Vec<f64> {
    vec![gb; n]
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn Error>> {
    // A fixed "now", so the story reads the same on every run.
    let now = Utc
        .with_ymd_and_hms(2026, 11, 22, 9, 0, 0)
        .single()
        .ok_or("invalid date")?;
    let (store, _) = common::store_from_args(std::env::args().skip(1)).await?;
    let engine = Engine::new(store).with_clock(Arc::new(ManualClock::new(now)));
    let version = engine.load_catalog(Catalog::from_yaml(CATALOG)?).await?;

    let anna = Story {
        id: "c-anna",
        name: "Anna",
        days_to_reset: 3,
        // A quiet three weeks (3.9 GB), then a busy week (5.5 GB): 9.4 GB in 27 days.
        daily_gb: [
            days(20, 0.195),
            vec![0.75, 0.875, 0.75, 0.625, 0.875, 0.75, 0.875],
        ]
        .concat(),
    };
    let ben = Story {
        id: "c-ben",
        name: "Ben",
        days_to_reset: 15,
        // 5.5 GB in the first 8 days, 3.5 GB in the last 7: 9 GB in 15 days.
        daily_gb: [
            days(8, 0.6875),
            vec![0.5, 0.625, 0.375, 0.5, 0.5, 0.625, 0.375],
        ]
        .concat(),
    };
    let stories = [anna, ben];

    engine
        .upsert_customers(stories.iter().map(|s| s.customer(now)).collect())
        .await?;
    let records: Vec<Touchpoint> = stories.iter().flat_map(|s| s.usage_records(now)).collect();
    let report = engine.ingest(records).await?;

    // What the offers cost the customer, as the catalogue says (the rules read the same values).
    let catalog = engine.catalog().ok_or("no catalogue loaded")?;
    let offer_number = |offer: &str, name: &str| {
        catalog
            .catalog
            .offer(offer)
            .and_then(|o| o.attributes.get(name))
            .and_then(Value::as_number)
            .ok_or_else(|| format!("offer {offer:?} has no number {name:?}"))
    };
    let prices = Prices {
        boost: offer_number("data-boost-2gb", "price")?,
        upgrade_fee: offer_number("upgrade-plan-m", "monthly_fee")?,
    };

    println!(
        "A telecom texts customers near their data cap ({})",
        now.format("%Y-%m-%d %H:%M UTC")
    );
    println!();
    println!(
        "Offers (examples/catalog/overage.yaml, version {}), for customers past 80 % of their cap:",
        version.version
    );
    println!(
        "  data-boost-2gb   2 GB until the reset, {} USD once",
        prices.boost
    );
    println!(
        "  upgrade-plan-m   plan M, 30 GB for {} USD a month: +{} USD this month",
        prices.upgrade_fee,
        prices.upgrade_fee - FEE_USD
    );
    println!(
        "Each is suitable only if it costs less than the overage the customer is heading for:"
    );
    println!(
        "  (used this cycle + last 7 days / 7 × days to reset - cap) × price per GB over the cap"
    );
    println!(
        "Customers: Anna and Ben, on plan {PLAN} ({CAP_GB} GB for {FEE_USD} USD a month, \
         {OVERAGE_USD_PER_GB} USD per GB over the cap),"
    );
    println!(
        "with the network's daily usage records of this cycle and the end of the last ({} records).",
        report.inserted
    );

    let offers = [
        OfferId::new("data-boost-2gb"),
        OfferId::new("upgrade-plan-m"),
    ];
    let mut decisions = Vec::new();
    for story in &stories {
        let decision = engine
            .decide(&DecisionRequest::new(story.id, Channel::Sms).seed(1))
            .await?;
        tell(story, &decision, &offers, &prices);
        decisions.push(decision);
    }

    // What the customers did: both took what they were sent. The propensity model learns from
    // the answers (the same answer recorded twice counts once).
    println!();
    println!("Outcomes");
    let model = engine.propensity_model();
    let arbitrator = engine.arbitrator()?;
    let indices: Vec<u32> = offers
        .iter()
        .filter_map(|o| arbitrator.catalog().offer_index(o))
        .collect();
    let mut before = Vec::new();
    model.fill_means(&indices, None, &mut before);
    for (story, decision) in stories.iter().zip(&decisions) {
        for chosen in &decision.offers {
            engine
                .record_outcome(&decision.id, &chosen.offer, OutcomeKind::Shown)
                .await?;
            let recorded = engine
                .record_outcome(&decision.id, &chosen.offer, OutcomeKind::Accepted)
                .await?;
            let again = engine
                .record_outcome(&decision.id, &chosen.offer, OutcomeKind::Accepted)
                .await?;
            println!(
                "  {} accepted {} ({}; recorded again: {})",
                story.name,
                chosen.offer,
                recorded_as(recorded),
                recorded_as(again)
            );
        }
    }
    let mut after = Vec::new();
    model.fill_means(&indices, None, &mut after);
    for ((offer, b), a) in offers.iter().zip(&before).zip(&after) {
        println!("  propensity of {:<16}{b:.3} -> {a:.3}", offer.as_str());
    }
    let anna_history = engine
        .customer_state(&CustomerId::new("c-anna"))
        .await?
        .contacts;
    println!(
        "  Anna's contact history: {}",
        anna_history
            .iter()
            .map(|c| format!("{} {} on {}", c.offer, c.kind, c.channel))
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(())
}

/// What the offers cost the customer, in USD.
struct Prices {
    boost: f64,
    upgrade_fee: f64,
}

/// One customer's situation, the decision, and why each offer was or was not chosen. The
/// overage printed here is for the reader; the engine computes its own, in the rules.
fn tell(story: &Story, decision: &Decision, offers: &[OfferId], prices: &Prices) {
    let used = story.used_gb();
    let week = story.last_week_gb();
    let pace = week / 7.0;
    let projected = used + pace * story.days_to_reset as f64;
    let over = (projected - CAP_GB).max(0.0);
    let overage = over * OVERAGE_USD_PER_GB;
    println!();
    println!(
        "{} ({}): {used} of {CAP_GB} GB used, {} days into the cycle, {} to the reset",
        story.name,
        story.id,
        story.days_in(),
        story.days_to_reset
    );
    println!(
        "  last 7 days {week} GB ({pace:.2} GB a day): {projected:.2} GB by the reset, {over:.2} GB \
         over the cap, {overage:.2} USD"
    );
    let chosen: Vec<String> = decision
        .offers
        .iter()
        .map(|s| format!("{} (score {:.2})", s.offer, s.score))
        .collect();
    println!(
        "  texted: {}",
        if chosen.is_empty() {
            "nothing".to_owned()
        } else {
            chosen.join(", ")
        }
    );
    for offer in offers {
        println!("  {offer}:");
        for line in common::wrap(&decision.why_not(offer), 92) {
            println!("    {line}");
        }
    }
    let upgrade_costs = prices.upgrade_fee - FEE_USD;
    if upgrade_costs < overage {
        println!(
            "  The upgrade costs {upgrade_costs:.2} USD more this month and saves {:.2} USD of \
             overage.",
            overage - upgrade_costs
        );
    } else {
        println!(
            "  The upgrade would cost {upgrade_costs:.2} USD more this month, {:.2} USD more than \
             the overage;\n  the boost saves {:.2} USD.",
            upgrade_costs - overage,
            overage - prices.boost
        );
    }
}

fn recorded_as(r: OutcomeRecorded) -> &'static str {
    match r {
        OutcomeRecorded::New => "new",
        OutcomeRecorded::Duplicate => "a duplicate, counted once",
    }
}
