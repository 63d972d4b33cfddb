//! Every measure against hand-computed values.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use super::*;
use crate::model::{CesMode, Direction, Kpi, Measure, Scale, Target};
use crate::store::{
    DurationStats, Funnel, FunnelRow, MeasureQuery, MeasureValue, SlaCounts, Statistic,
    TouchpointQuery,
};

fn nps() -> Measure {
    Measure::Nps {
        question: "nps".into(),
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

#[test]
fn nps_on_a_known_set() {
    // 10 answers: promoters 9, 10, 10, 9 (4); passives 7, 8 (2); detractors 0, 3, 6, 6 (4).
    let scores = [
        (0.0, 1),
        (3.0, 1),
        (6.0, 2),
        (7.0, 1),
        (8.0, 1),
        (9.0, 2),
        (10.0, 2),
    ];
    let (value, n, ci) = survey_summary(&nps(), &scores).unwrap();
    assert_eq!(n, 10);
    assert_eq!(value, Some(0.0)); // 40% - 40%
    // p = d = 0.4: variance = (0.8 - 0) / 10 = 0.08, half-width = 1.959964 * 0.282843 = 0.554357.
    let (lo, hi) = ci.unwrap();
    assert!(close(lo, -55.435_7) || (lo + 55.4357).abs() < 1e-3, "{lo}");
    assert!((hi - 55.4357).abs() < 1e-3, "{hi}");
    // 3 promoters, 1 detractor of 5: NPS = 60 - 20 = 40.
    let (value, n, _) = survey_summary(&nps(), &[(10.0, 3), (8.0, 1), (2.0, 1)]).unwrap();
    assert_eq!((value, n), (Some(40.0), 5));
}

#[test]
fn nps_of_nothing_and_of_one_answer() {
    let (value, n, ci) = survey_summary(&nps(), &[]).unwrap();
    assert_eq!((value, n, ci), (None, 0, None));
    let (value, n, ci) = survey_summary(&nps(), &[(9.0, 1)]).unwrap();
    assert_eq!((value, n), (Some(100.0), 1));
    // p = 1, d = 0: variance 0, so the interval is the point itself (clamped to 100).
    assert_eq!(ci, Some((100.0, 100.0)));
    let (value, _, _) = survey_summary(&nps(), &[(6.0, 1)]).unwrap();
    assert_eq!(value, Some(-100.0));
}

#[test]
fn csat_is_the_top_two_box_share_with_a_wilson_interval() {
    let m = Measure::Csat {
        question: "csat".into(),
        scale: Scale::CSAT_5,
        top_box: 2,
    };
    // 1, 2, 3, 4, 4, 5, 5, 5: top-2 box = 5 of 8.
    let (value, n, ci) =
        survey_summary(&m, &[(1.0, 1), (2.0, 1), (3.0, 1), (4.0, 2), (5.0, 3)]).unwrap();
    assert_eq!((value, n), (Some(0.625), 8));
    // Wilson, p = .625, n = 8, z = 1.959964: centre = (.625 + 3.841459/16) / (1 + 3.841459/8)
    // = .865091 / 1.480182 = .584447; half = 1.959964 * sqrt(.029297 + .015006) / 1.480182
    // = .278718: [.305729, .863165].
    let (lo, hi) = ci.unwrap();
    assert!((lo - 0.305_73).abs() < 1e-4, "{lo}");
    assert!((hi - 0.863_17).abs() < 1e-4, "{hi}");
    // A configured box: top 1 on 1-5 is 5 only: 3 of 8.
    let m1 = Measure::Csat {
        question: "csat".into(),
        scale: Scale::CSAT_5,
        top_box: 1,
    };
    let (value, _, _) =
        survey_summary(&m1, &[(1.0, 1), (2.0, 1), (3.0, 1), (4.0, 2), (5.0, 3)]).unwrap();
    assert_eq!(value, Some(0.375));
    assert_eq!(survey_summary(&m, &[]).unwrap(), (None, 0, None));
}

#[test]
fn ces_as_a_mean_or_a_top_box() {
    let mean = Measure::Ces {
        question: "ces".into(),
        scale: Scale::CES_7,
        mode: CesMode::Mean,
        top_box: 2,
    };
    // 2, 4, 4, 6: mean 4, sample sd = sqrt((4 + 0 + 0 + 4) / 3) = 1.632993;
    // half = 1.959964 * 1.632993 / 2 = 1.600303.
    let (value, n, ci) = survey_summary(&mean, &[(2.0, 1), (4.0, 2), (6.0, 1)]).unwrap();
    assert_eq!((value, n), (Some(4.0), 4));
    let (lo, hi) = ci.unwrap();
    assert!(
        (lo - 2.399_697).abs() < 1e-5 && (hi - 5.600_303).abs() < 1e-5,
        "{lo} {hi}"
    );
    // One answer: a mean, no interval.
    assert_eq!(
        survey_summary(&mean, &[(5.0, 1)]).unwrap(),
        (Some(5.0), 1, None)
    );
    let top = Measure::Ces {
        question: "ces".into(),
        scale: Scale::CES_7,
        mode: CesMode::TopBox,
        top_box: 2,
    };
    // Top-2 on 1-7: 6 and 7. One of four.
    let (value, _, _) = survey_summary(&top, &[(2.0, 1), (4.0, 2), (6.0, 1)]).unwrap();
    assert_eq!(value, Some(0.25));
}

#[test]
fn percentiles_interpolate_between_ranks() {
    let v = [1.0, 2.0, 3.0, 4.0, 10.0];
    assert_eq!(percentile_sorted(&v, 50.0), Some(3.0));
    assert_eq!(percentile_sorted(&v, 0.0), Some(1.0));
    assert_eq!(percentile_sorted(&v, 100.0), Some(10.0));
    // rank = .9 * 4 = 3.6: 4 + .6 * 6 = 7.6.
    assert!(close(percentile_sorted(&v, 90.0).unwrap(), 7.6));
    assert_eq!(percentile_sorted(&[], 50.0), None);
    assert_eq!(percentile_sorted(&[7.0], 90.0), Some(7.0));
    let d = DurationStats::of(&mut [4.0, 1.0, 2.0, 3.0]);
    assert_eq!(
        (d.count, d.min, d.max, d.mean, d.median),
        (4, Some(1.0), Some(4.0), Some(2.5), Some(2.5))
    );
}

fn kpi(measure: Measure) -> Kpi {
    let yaml = format!(
        "{{ id: k, name: K, owner: o, window: 7d, min_sample: 3, measure: {} }}",
        serde_json::to_string(&measure).unwrap()
    );
    serde_norway::from_str(&yaml).unwrap()
}

#[test]
fn status_follows_target_direction_band_and_minimum_sample() {
    let mut k = kpi(nps());
    assert_eq!(status(&k, Some(10.0), 5), Status::NoTarget);
    k.target = Some(Target {
        value: 30.0,
        direction: Direction::HigherIsBetter,
    });
    k.warning_band = Some(5.0);
    assert_eq!(status(&k, Some(30.0), 5), Status::OnTrack);
    assert_eq!(status(&k, Some(25.0), 5), Status::AtRisk);
    assert_eq!(status(&k, Some(24.9), 5), Status::OffTrack);
    assert_eq!(status(&k, Some(50.0), 2), Status::InsufficientData);
    assert_eq!(status(&k, None, 50), Status::InsufficientData);
    k.target = Some(Target {
        value: 100.0,
        direction: Direction::LowerIsBetter,
    });
    assert_eq!(status(&k, Some(90.0), 5), Status::OnTrack);
    assert_eq!(status(&k, Some(105.0), 5), Status::AtRisk);
    assert_eq!(status(&k, Some(106.0), 5), Status::OffTrack);
}

/// Plans a measure and answers its touchpoint queries with `touch`, other queries with `others`.
fn evaluate(measure: Measure, touch: Vec<MeasureValue>, others: Vec<OtherAnswer>) -> Computed {
    let catalog = crate::model::Catalog::default();
    let k = kpi(measure);
    let window = crate::model::TimeRange::all();
    let (mut tq, mut oq) = (Vec::new(), Vec::new());
    let root = plan(
        &catalog,
        &k,
        window,
        chrono::Utc::now(),
        None,
        &mut tq,
        &mut oq,
    );
    assert_eq!(tq.len(), touch.len(), "{tq:?}");
    assert_eq!(oq.len(), others.len(), "{oq:?}");
    compute(&root, &Answers { touch, others })
}

#[test]
fn each_measure_plans_its_queries_and_computes_its_value() {
    let count = Measure::Count {
        filter: Default::default(),
    };
    assert_eq!(
        evaluate(
            count.clone(),
            vec![MeasureValue::new(12, Some(12.0), vec![])],
            vec![]
        ),
        (Some(12.0), 12, None)
    );
    // Ratio: complaints per distinct customer = 6 / 40.
    let ratio = Measure::Ratio {
        numerator: Box::new(count),
        denominator: Box::new(Measure::DistinctCustomers {
            filter: Default::default(),
        }),
    };
    assert_eq!(
        evaluate(
            ratio.clone(),
            vec![
                MeasureValue::new(6, Some(6.0), vec![]),
                MeasureValue::new(40, Some(40.0), vec![])
            ],
            vec![]
        ),
        (Some(0.15), 40, None)
    );
    // A ratio over a zero denominator has no value.
    assert_eq!(
        evaluate(
            ratio,
            vec![
                MeasureValue::new(0, Some(0.0), vec![]),
                MeasureValue::new(0, Some(0.0), vec![])
            ],
            vec![]
        )
        .0,
        None
    );
    // Stage conversion: 40 reached the first step, 30 the last.
    let mut rows = Vec::new();
    for reached in [40, 35, 30] {
        rows.push(FunnelRow {
            stage: "s".into(),
            reached,
            entered: reached,
            skipped: 0,
            dropped: 0,
            conversion: None,
            conversion_from_start: None,
            gap: DurationStats::default(),
            overdue: 0,
        });
    }
    let conv = Measure::StageConversion {
        from: "a".into(),
        to: "b".into(),
    };
    let (v, n, ci) = evaluate(
        conv,
        vec![],
        vec![OtherAnswer::Funnel(Funnel {
            rows,
            ..Funnel::default()
        })],
    );
    assert_eq!((v, n), (Some(0.75), 40));
    assert!(ci.is_some());
    // Follow-up SLA: 8 in time, 1 late, 1 overdue, 5 not yet due: 8 / 10.
    let (v, n, _) = evaluate(
        Measure::FollowUpSla,
        vec![],
        vec![OtherAnswer::Sla(SlaCounts::new(8, 1, 1, 5))],
    );
    assert_eq!((v, n), (Some(0.8), 10));
    // Time in stage, p90.
    let mut k = kpi(Measure::TimeInStage {
        statistic: crate::model::DurationStat::P90,
    });
    k.journey = Some("j".into());
    k.stage = Some("s".into());
    let (mut tq, mut oq) = (Vec::new(), Vec::new());
    let root = plan(
        &crate::model::Catalog::default(),
        &k,
        crate::model::TimeRange::all(),
        chrono::Utc::now(),
        None,
        &mut tq,
        &mut oq,
    );
    let stats = DurationStats::of(&mut [10.0, 20.0, 30.0, 40.0, 50.0]);
    assert_eq!(
        compute(
            &root,
            &Answers {
                touch: vec![],
                others: vec![OtherAnswer::StageTimes(stats)]
            }
        ),
        (Some(46.0), 5, None)
    );
}

#[test]
fn touchpoint_measures_accumulate_by_hand() {
    use crate::model::{Attributes, SurveyAnswer, TimeRange};
    let q = |s: Statistic| MeasureQuery::new(TouchpointQuery::new(TimeRange::all()), s);
    let queries = [
        q(Statistic::Count),
        q(Statistic::DistinctCustomers),
        q(Statistic::Sum("amount".into())),
        q(Statistic::Avg("amount".into())),
        q(Statistic::Percentile("amount".into(), 50.0)),
        q(Statistic::Scores("nps".into())),
    ];
    let rows: [(usize, Option<f64>, Option<f64>); 5] = [
        (1, Some(10.0), Some(9.0)),
        (1, Some(20.0), None),
        (2, None, Some(3.0)),
        (3, Some(60.0), Some(9.0)),
        (3, Some(-5.0), None),
    ];
    let values: Vec<MeasureValue> = queries
        .iter()
        .map(|query| {
            let mut acc = inputs::MeasureAcc::new(query);
            for (customer, amount, score) in rows {
                let mut attributes = Attributes::new();
                if let Some(a) = amount {
                    attributes.insert("amount", a);
                }
                let survey = score.map(|s| SurveyAnswer::new("nps", s, Scale::NPS));
                acc.add(customer, &attributes, survey.as_ref());
            }
            acc.finish()
        })
        .collect();
    assert_eq!(values[0].value, Some(5.0));
    assert_eq!((values[1].n, values[1].value), (3, Some(3.0)));
    assert_eq!((values[2].n, values[2].value), (4, Some(85.0)));
    assert_eq!(values[3].value, Some(21.25));
    assert_eq!(values[4].value, Some(15.0)); // -5, 10, 20, 60
    assert_eq!(values[5].scores, vec![(3.0, 1), (9.0, 2)]);
    assert_eq!(values[5].n, 3);
}

#[test]
fn scorecards_group_results_by_owner_in_catalogue_order() {
    let owners = vec![
        crate::model::Owner::new("b", "B"),
        crate::model::Owner::new("a", "A"),
        crate::model::Owner::new("idle", "Idle"),
    ];
    let mut ka = kpi(nps());
    ka.owner = Some("a".into());
    let mut kb = kpi(nps());
    kb.owner = Some("b".into());
    kb.id = "kb".into();
    let r = |k: &Kpi| KpiResult::new(k, crate::model::TimeRange::all(), (Some(1.0), 10, None), 1);
    let card = Scorecard::group(&owners, vec![r(&ka), r(&kb)]);
    let ids: Vec<&str> = card.owners.iter().map(|c| c.owner.id.as_str()).collect();
    assert_eq!(ids, ["b", "a"]);
    assert_eq!(card.results().count(), 2);
}
