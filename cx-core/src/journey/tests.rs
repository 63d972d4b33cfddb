//! Journey semantics: advancing, skips, timeouts, late events; funnels and moments by hand.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use super::funnel::FunnelBuilder;
use super::moments::MomentsBuilder;
use super::*;
use crate::arbitration::CompiledCatalog;
use crate::model::{
    Catalog, Channel, CustomerId, InstanceEnd, InstanceStatus, JourneyId, JourneyTrack, Kind, Span,
    Subject, TimeRange, Timestamp, Touchpoint,
};
use crate::store::{Breakdown, FunnelQuery, FunnelStep, JourneyAdvance};
use chrono::{TimeDelta, TimeZone, Utc};

const CATALOG: &str = r#"
schema:
  touchpoint: { template: string }
owners:
  - { id: o, name: Owner }
journeys:
  - id: j
    name: J
    inactivity_timeout: 10d
    lateness: 1h
    stages:
      - { id: a, name: A, owner: o, entry: { kinds: [sign_up] } }
      - { id: b, name: B, owner: o, entry: { kinds: [usage] }, exit: { kinds: [complaint] } }
      - { id: c, name: C, owner: o, entry: { kinds: [message_sent], rule: "touchpoint.template == 'bill'" }, optional: true }
      - { id: d, name: D, owner: o, entry: { kinds: [purchase] } }
"#;

fn t0() -> Timestamp {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
}

fn at(hours: i64) -> Timestamp {
    t0() + TimeDelta::hours(hours)
}

fn journeys() -> CompiledJourneys {
    let catalog = Catalog::from_yaml(CATALOG).unwrap();
    let compiled = CompiledCatalog::compile(catalog.clone(), 1).unwrap();
    CompiledJourneys::compile(&catalog, compiled.vocabulary()).unwrap()
}

fn tp(id: &str, kind: &str, hours: i64) -> Touchpoint {
    let mut t = Touchpoint::new(
        id,
        CustomerId::new("c"),
        Channel::Web,
        Kind::new(kind),
        at(hours),
    );
    if kind == "message_sent" {
        t = t.with_attribute("template", "bill");
    }
    t
}

/// Feeds `touchpoints`, one call each (as separate batches would), into a fresh track.
fn run(js: &CompiledJourneys, touchpoints: &[Touchpoint]) -> (JourneyTrack, Placed) {
    let mut track = JourneyTrack::new(CustomerId::new("c"), JourneyId::new("j"));
    let mut total = Placed::default();
    for t in touchpoints {
        let mut events = Vec::new();
        js.events_of(std::slice::from_ref(t), &mut events);
        total = total.plus(js.advance(&mut track, events));
    }
    (track, total)
}

use crate::store::Placed;

fn stages(track: &JourneyTrack, i: usize) -> Vec<&str> {
    track.instances[i]
        .visits
        .iter()
        .map(|v| v.stage.as_str())
        .collect()
}

#[test]
fn matching_uses_kinds_channels_and_touchpoint_rules() {
    let js = journeys();
    let mut events = Vec::new();
    let other = Touchpoint::new(
        "x",
        CustomerId::new("c"),
        Channel::Web,
        Kind::MESSAGE_SENT,
        at(0),
    )
    .with_attribute("template", "welcome");
    js.events_of(
        &[
            tp("1", "sign_up", 0),
            tp("2", "page_view", 0),
            tp("3", "message_sent", 0),
            other,
        ],
        &mut events,
    );
    assert_eq!(events.len(), 2, "{events:?}");
    assert!(events[0].enters.contains(0) && !events[0].enters.contains(1));
    assert!(events[1].enters.contains(2));
    assert_eq!(events[1].subject, Subject::Customer(CustomerId::new("c")));
}

#[test]
fn an_instance_advances_stage_by_stage_and_completes_at_the_last() {
    let js = journeys();
    let (track, placed) = run(
        &js,
        &[
            tp("1", "sign_up", 0),
            tp("2", "usage", 5),
            tp("2b", "usage", 6), // in b already: no change
            tp("3", "message_sent", 30),
            tp("4", "purchase", 50),
        ],
    );
    assert_eq!(placed.placed, 5);
    assert_eq!(track.instances.len(), 1);
    assert_eq!(stages(&track, 0), ["a", "b", "c", "d"]);
    let i = &track.instances[0];
    assert_eq!(i.end, Some(InstanceEnd::Completed { at: at(50) }));
    assert_eq!(i.visits[1].left_at, Some(at(30)));
    assert_eq!(
        i.visits[3].left_at, None,
        "a completed instance stays in its last stage"
    );
    // Only what changed the state is kept once past the lateness.
    assert_eq!(track.events.len(), 4, "{:?}", track.events);
}

#[test]
fn optional_stages_may_be_skipped_required_ones_may_not() {
    let js = journeys();
    let (track, _) = run(
        &js,
        &[
            tp("1", "sign_up", 0),
            tp("2", "usage", 1),
            tp("3", "purchase", 2),
        ],
    );
    assert_eq!(stages(&track, 0), ["a", "b", "d"], "c is optional");
    let (track, _) = run(&js, &[tp("1", "sign_up", 0), tp("3", "purchase", 2)]);
    assert_eq!(
        stages(&track, 0),
        ["a"],
        "b is required: a purchase cannot skip it"
    );
    assert_eq!(track.instances[0].end, None);
}

#[test]
fn an_exit_ends_the_instance_and_later_events_need_a_new_start() {
    let js = journeys();
    let (track, _) = run(
        &js,
        &[
            tp("1", "sign_up", 0),
            tp("2", "usage", 1),
            tp("3", "complaint", 2),
            tp("4", "purchase", 3),
            tp("5", "sign_up", 4),
        ],
    );
    assert_eq!(track.instances.len(), 2);
    assert_eq!(
        track.instances[0].end,
        Some(InstanceEnd::Exited { at: at(2) })
    );
    assert_eq!(track.instances[0].visits[1].left_at, Some(at(2)));
    assert_eq!(stages(&track, 1), ["a"]);
}

#[test]
fn inactivity_abandons_at_the_timeout_then_a_sign_up_restarts() {
    let js = journeys();
    // 10 days = 240 h. Usage 241 h after sign-up: the instance was abandoned at 240 h.
    let (track, _) = run(
        &js,
        &[
            tp("1", "sign_up", 0),
            tp("2", "usage", 241),
            tp("3", "sign_up", 300),
        ],
    );
    assert_eq!(track.instances.len(), 2);
    assert_eq!(
        track.instances[0].end,
        Some(InstanceEnd::Abandoned { at: at(240) })
    );
    assert_eq!(stages(&track, 0), ["a"]);
    assert_eq!(stages(&track, 1), ["a"]);
    // Read-time abandonment: the second instance is active at 300 + 240 h, abandoned just after.
    let timeout = Some(Span::days(10));
    let last = &track.instances[1];
    assert_eq!(last.status(at(540), timeout).0, InstanceStatus::Active);
    assert_eq!(
        last.status(at(541), timeout),
        (InstanceStatus::Abandoned, Some(at(540)))
    );
}

#[test]
fn late_events_within_the_lateness_are_placed_by_when_they_occurred() {
    let js = journeys();
    // Usage (10:00) arrives before the sign-up (9:30) it follows: placed in order, the instance
    // goes a -> b once the sign-up arrives.
    let (track, placed) = run(&js, &[tp("2", "usage", 10), tp("1", "sign_up", 9)]);
    assert_eq!(placed.placed, 2);
    assert_eq!(stages(&track, 0), ["a", "b"]);
    assert_eq!(track.instances[0].visits[0].entered_at, at(9));
    assert_eq!(track.instances[0].visits[1].entered_at, at(10));
}

#[test]
fn events_later_than_the_lateness_are_refused_and_counted() {
    let js = journeys();
    let (track, placed) = run(&js, &[tp("2", "usage", 10), tp("1", "sign_up", 8)]);
    assert_eq!((placed.placed, placed.too_late), (1, 1));
    assert_eq!(track.too_late, 1);
    assert!(track.instances.is_empty(), "usage alone starts nothing");
}

#[test]
fn the_same_event_twice_is_placed_once() {
    let js = journeys();
    let (track, placed) = run(
        &js,
        &[
            tp("1", "sign_up", 0),
            tp("1", "sign_up", 0),
            tp("2", "usage", 1),
        ],
    );
    assert_eq!((placed.placed, placed.duplicates), (2, 1));
    assert_eq!(stages(&track, 0), ["a", "b"]);
}

fn query(steps: Vec<FunnelStep>) -> FunnelQuery {
    FunnelQuery::new("j", steps, TimeRange::all(), at(10_000)).timeout(Some(Span::days(10)))
}

fn all_steps() -> Vec<FunnelStep> {
    vec![
        FunnelStep::new("a", 0, false),
        FunnelStep::new("b", 1, false),
        FunnelStep::new("c", 2, true),
        FunnelStep::new("d", 3, false),
    ]
}

fn track_of(js: &CompiledJourneys, customer: &str, touchpoints: &[Touchpoint]) -> JourneyTrack {
    let (mut track, _) = run(js, touchpoints);
    track.customer = CustomerId::new(customer);
    track
}

#[test]
fn a_funnel_counts_customers_reaching_each_step_by_hand() {
    let js = journeys();
    let tracks = [
        // c1: a b c d (gaps 1h, 2h, 3h)
        track_of(
            &js,
            "c1",
            &[
                tp("1", "sign_up", 0),
                tp("2", "usage", 1),
                tp("3", "message_sent", 3),
                tp("4", "purchase", 6),
            ],
        ),
        // c2: a b d (skips c; gap b->d 5h)
        track_of(
            &js,
            "c2",
            &[
                tp("1", "sign_up", 0),
                tp("2", "usage", 3),
                tp("4", "purchase", 8),
            ],
        ),
        // c3: a b
        track_of(&js, "c3", &[tp("1", "sign_up", 0), tp("2", "usage", 5)]),
        // c4: a
        track_of(&js, "c4", &[tp("1", "sign_up", 0)]),
    ];
    let q = query(all_steps());
    let mut b = FunnelBuilder::new(&q);
    for t in &tracks {
        b.add(t);
    }
    let f = b.finish();
    let reached: Vec<u64> = f.rows.iter().map(|r| r.reached).collect();
    let entered: Vec<u64> = f.rows.iter().map(|r| r.entered).collect();
    assert_eq!(reached, [4, 3, 2, 2]);
    assert_eq!(entered, [4, 3, 1, 2]);
    assert_eq!(f.rows[2].skipped, 1);
    assert_eq!(f.rows[1].dropped, 1);
    assert_eq!(f.rows[1].conversion, Some(0.75));
    assert_eq!(f.rows[3].conversion_from_start, Some(0.5));
    // Gaps a->b: 1h, 3h, 5h: median 3h, p90 = 1h... interpolated: 3 + 0.8 * 2 = 4.6h.
    let g = f.rows[1].gap;
    assert_eq!(g.count, 3);
    assert_eq!(g.median, Some(3.0 * 3600.0));
    assert!((g.p90.unwrap() - 4.6 * 3600.0).abs() < 1e-6);
    assert_eq!((g.min, g.max), (Some(3600.0), Some(5.0 * 3600.0)));
    // d's gap is from the previous entered step: c1 c->d 3h, c2 b->d 5h.
    assert_eq!(f.rows[3].gap.count, 2);
    assert_eq!(f.rows[3].gap.mean, Some(4.0 * 3600.0));
    // Statuses at as_of: c1, c2 completed; c3, c4 abandoned.
    assert_eq!(f.instances, [0, 2, 0, 2]);

    // A conversion window of 2h on a->b drops c2 (3h) and c3 (5h) at b.
    let mut steps = all_steps();
    steps[1] = FunnelStep::new("b", 1, false).within(Span::hours(2));
    let q = query(steps);
    let mut b = FunnelBuilder::new(&q);
    for t in &tracks {
        b.add(t);
    }
    let reached: Vec<u64> = b.finish().rows.iter().map(|r| r.reached).collect();
    assert_eq!(reached, [4, 1, 1, 1]);
    // A least gap of 2h on a->b drops c1 (1h).
    let mut steps = all_steps();
    steps[1] = FunnelStep::new("b", 1, false).after_at_least(Span::hours(2));
    let q = query(steps);
    let mut b = FunnelBuilder::new(&q);
    for t in &tracks {
        b.add(t);
    }
    let reached: Vec<u64> = b.finish().rows.iter().map(|r| r.reached).collect();
    assert_eq!(reached, [4, 2, 1, 1]);

    // Breakdown by groups, in the order given; a customer filter.
    let q = query(all_steps())
        .breakdown(Breakdown::Groups(vec![
            (
                "late".into(),
                vec![CustomerId::new("c3"), CustomerId::new("c4")],
            ),
            ("early".into(), vec![CustomerId::new("c1")]),
        ]))
        .customers(Some(vec![CustomerId::new("c1"), CustomerId::new("c3")]));
    let mut b = FunnelBuilder::new(&q);
    for t in &tracks {
        b.add(t);
    }
    let f = b.finish();
    assert_eq!(f.rows[0].reached, 2);
    assert_eq!(f.groups[0].0, "late");
    assert_eq!(
        f.groups[0].1.iter().map(|r| r.reached).collect::<Vec<_>>(),
        [1, 1, 0, 0]
    );
    assert_eq!(
        f.groups[1].1.iter().map(|r| r.reached).collect::<Vec<_>>(),
        [1, 1, 1, 1]
    );
}

#[test]
fn moments_of_truth_rank_stages_by_the_mean_score_given_in_them() {
    let js = journeys();
    let t1 = track_of(
        &js,
        "c1",
        &[
            tp("1", "sign_up", 0),
            tp("2", "usage", 10),
            tp("4", "purchase", 20),
        ],
    );
    let mut m = MomentsBuilder::new();
    let timeout = Some(Span::days(10));
    m.add(&t1, at(5), 8.0, timeout); // in a
    m.add(&t1, at(6), 6.0, timeout); // in a
    m.add(&t1, at(12), 3.0, timeout); // in b
    m.add(&t1, at(25), 10.0, timeout); // in d (completed: stays there)
    m.add(&t1, at(-1), 0.0, timeout); // before the journey: nowhere
    let ranked = m.finish();
    let got: Vec<(&str, u64, f64)> = ranked
        .iter()
        .map(|s| (s.stage.as_str(), s.responses, s.mean))
        .collect();
    assert_eq!(got, [("d", 1, 10.0), ("a", 2, 7.0), ("b", 1, 3.0)]);
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Whatever the events and their arrival order, funnel counts never increase down the
        /// steps, entered never exceeds reached, and conversions stay within [0, 1].
        #[test]
        fn funnel_counts_never_increase_down_the_stages(
            customers in prop::collection::vec(
                prop::collection::vec((0usize..5, 0i64..600), 0..12), 1..20),
            window in prop::option::of(1i64..100),
        ) {
            let js = journeys();
            let kinds = ["sign_up", "usage", "message_sent", "purchase", "complaint"];
            let tracks: Vec<JourneyTrack> = customers.iter().enumerate().map(|(c, evs)| {
                let tps: Vec<Touchpoint> = evs.iter().enumerate()
                    .map(|(i, (k, h))| tp(&format!("t{i}"), kinds[*k], *h))
                    .collect();
                track_of(&js, &format!("c{c}"), &tps)
            }).collect();
            let mut steps = all_steps();
            if let Some(w) = window {
                steps[3] = FunnelStep::new("d", 3, false).within(Span::hours(w));
            }
            let q = query(steps).breakdown(Breakdown::Channel);
            let mut b = FunnelBuilder::new(&q);
            for t in &tracks { b.add(t); }
            let f = b.finish();
            for rows in std::iter::once(&f.rows).chain(f.groups.iter().map(|g| &g.1)) {
                for pair in rows.windows(2) {
                    prop_assert!(pair[1].reached <= pair[0].reached, "{rows:?}");
                }
                for r in rows {
                    prop_assert!(r.entered <= r.reached);
                    if let Some(c) = r.conversion { prop_assert!((0.0..=1.0).contains(&c)); }
                }
            }
            prop_assert!(f.rows[0].reached <= tracks.len() as u64);
        }

        /// Arrival order within the lateness does not matter: any permutation of the same events
        /// (all within one hour) gives the same instances.
        #[test]
        fn arrival_order_within_the_lateness_does_not_matter(
            evs in prop::collection::vec((0usize..5, 0i64..60), 1..10),
            seed in any::<u64>(),
        ) {
            let js = journeys();
            let kinds = ["sign_up", "usage", "message_sent", "purchase", "complaint"];
            let tps: Vec<Touchpoint> = evs.iter().enumerate().map(|(i, (k, m))| {
                let mut t = tp(&format!("t{i}"), kinds[*k], 0);
                t.occurred_at = t0() + TimeDelta::minutes(*m);
                t
            }).collect();
            let mut shuffled = tps.clone();
            let mut s = seed;
            for i in (1..shuffled.len()).rev() {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                shuffled.swap(i, (s >> 33) as usize % (i + 1));
            }
            let (a, _) = run(&js, &tps);
            let (b, _) = run(&js, &shuffled);
            prop_assert_eq!(a.instances, b.instances);
        }
    }
}
