//! The KPI registry on its own: owners, KPIs with targets and bands, what a bad definition gets,
//! the version history of a KPI, and a KPI evaluated, as a series, on a handful of answers.
//!
//! ```text
//! cargo run --example journey_kpis
//! ```
#![allow(clippy::print_stdout)]

use cx::chrono::{TimeDelta, TimeZone, Utc};
use cx::model::*;
use cx::store::{Bucket, CatalogMeta};
use cx::{Engine, ManualClock, MemoryStore};
use std::error::Error;
use std::sync::Arc;

const REGISTRY: &str = r#"
owners:
  - { id: cx-office, name: CX office, contact: cx@example.com, role: NPS programme }
  - { id: care, name: Customer care }
kpis:
  - id: nps
    name: Relationship NPS
    description: Promoters (9-10) minus detractors (0-6), in points.
    owner: cx-office
    measure: { type: nps, question: nps }
    target: { value: 20, direction: higher_is_better }
    warning_band: 10
    window: 7d
    min_sample: 5
  - id: csat
    name: Support CSAT (top-2 box)
    owner: care
    measure: { type: csat, question: csat }
    target: { value: 0.8, direction: higher_is_better }
    warning_band: 0.05
    window: 7d
    min_sample: 5
"#;

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let now = Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap();
    let clock = Arc::new(ManualClock::new(now));
    let engine = Engine::new(Arc::new(MemoryStore::new())).with_clock(clock.clone());

    // A KPI without an owner is rejected, naming the KPI and the field.
    let orphan = REGISTRY.replacen("    owner: care\n", "", 1);
    match Catalog::from_yaml(&orphan) {
        Err(e) => println!("rejected: {e}"),
        Ok(_) => println!("unexpectedly accepted"),
    }

    let mut catalog = Catalog::from_yaml(REGISTRY)?;
    engine
        .load_catalog_with(
            catalog.clone(),
            CatalogMeta::new().author("ana").comment("first registry"),
        )
        .await?;
    clock.advance(TimeDelta::hours(1));
    if let Some(kpi) = catalog.kpis.iter_mut().find(|k| k.id.as_str() == "nps") {
        kpi.target = Some(Target {
            value: 25.0,
            direction: Direction::HigherIsBetter,
        });
    }
    engine
        .load_catalog_with(
            catalog,
            CatalogMeta::new().author("ben").comment("NPS target to 25"),
        )
        .await?;

    println!("\nHistory of KPI nps:");
    for v in engine.kpi_history("nps").await? {
        let target = v.kpi.as_ref().and_then(|k| k.target).map(|t| t.value);
        println!(
            "  version {} by {} at {} ({}): target {:?}",
            v.version.version,
            v.version.author.as_deref().unwrap_or("?"),
            v.version.stored_at.format("%Y-%m-%d %H:%M"),
            v.version.comment.as_deref().unwrap_or(""),
            target
        );
    }

    // Answers over three days: NPS 10, 9, 9, 8, 3 on day one (+40), then 6, 5 and 10.
    let answers = [
        (0, "nps", 10.0),
        (0, "nps", 9.0),
        (0, "nps", 9.0),
        (0, "nps", 8.0),
        (0, "nps", 3.0),
        (1, "nps", 6.0),
        (1, "nps", 5.0),
        (2, "nps", 10.0),
        (0, "csat", 5.0),
        (0, "csat", 4.0),
        (1, "csat", 2.0),
        (1, "csat", 5.0),
        (2, "csat", 4.0),
    ];
    let day0 = now - TimeDelta::days(3);
    let touchpoints: Vec<Touchpoint> = answers
        .iter()
        .enumerate()
        .map(|(i, (day, q, score))| {
            let scale = if *q == "nps" {
                Scale::NPS
            } else {
                Scale::CSAT_5
            };
            Touchpoint::new(
                format!("s{i}"),
                CustomerId::new(format!("c{i}")),
                Channel::Survey,
                Kind::SURVEY_RESPONSE,
                day0 + TimeDelta::days(*day) + TimeDelta::hours(1),
            )
            .with_survey(SurveyAnswer::new(*q, *score, scale))
        })
        .collect();
    engine.ingest(touchpoints).await?;

    println!("\nScorecard at {}:", now.format("%Y-%m-%d %H:%M"));
    for card in engine.scorecard(now).await?.owners {
        println!("  {}", card.owner.name);
        for r in card.results {
            println!(
                "    {:<26} {:>7} n={} {} (95% CI {:?})",
                r.name,
                r.value.map_or("-".into(), |v| format!("{v:.2}")),
                r.n,
                r.status,
                r.interval
                    .map(|(a, b)| (format!("{a:.2}"), format!("{b:.2}")))
            );
        }
    }
    let old = engine.evaluate_kpi_at("nps", 1, now).await?;
    println!("\nThe same NPS under version 1 (target 20): {}", old.status);

    println!("\nNPS per day:");
    let range = TimeRange::new(Bucket::Day.start_of(day0), Bucket::Day.start_of(now));
    for r in engine.kpi_series("nps", range, Bucket::Day).await? {
        println!(
            "  {}  {:>7}  n={}  {}",
            r.window.start.format("%Y-%m-%d"),
            r.value.map_or("-".into(), |v| format!("{v:.1}")),
            r.n,
            r.status
        );
    }
    Ok(())
}
