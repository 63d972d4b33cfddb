//! Journeys, follow-up cases and analytics on PostgreSQL against the in-memory store: the same
//! generated data (late and out-of-order arrivals, identities, a merge, an erasure, instants
//! with nanoseconds) goes into both, and every read and aggregate must come out identical.
//! Also: concurrent advances of one track lose no update.

use cx_core::chrono::TimeDelta;
use cx_core::journey::CompiledJourneys;
use cx_core::model::{
    CaseId, Catalog, Channel, Customer, CustomerId, FollowUpCase, Identity, Kind, OwnerId, Scale,
    Span, Subject, SurveyAnswer, TimeRange, Timestamp, Touchpoint,
};
use cx_core::store::{
    Breakdown, CaseQuery, CustomerStore, FunnelQuery, FunnelStep, JourneyStore, MeasureQuery,
    MomentsQuery, StageTimesQuery, Statistic, Store, TouchpointQuery,
};
use cx_store_memory::MemoryStore;
use cx_store_postgres::harness;
use std::sync::Arc;

const CATALOG: &str = r#"
owners: [ { id: o, name: O } ]
journeys:
  - id: j
    name: J
    inactivity_timeout: 2d
    lateness: 6h
    stages:
      - { id: s0, name: S0, owner: o, entry: { kinds: [k0] } }
      - { id: s1, name: S1, owner: o, entry: { kinds: [k1] }, optional: true }
      - { id: s2, name: S2, owner: o, entry: { kinds: [k2] }, exit: { kinds: [quit] } }
      - { id: s3, name: S3, owner: o, entry: { kinds: [k3] } }
  - id: other
    name: Other
    stages:
      - { id: x0, name: X0, owner: o, entry: { kinds: [k0] } }
      - { id: x1, name: X1, owner: o, entry: { kinds: [k3] } }
"#;

fn journeys() -> CompiledJourneys {
    let catalog = Catalog::from_yaml(CATALOG).unwrap();
    let compiled = cx_core::arbitration::CompiledCatalog::compile(catalog.clone(), 1).unwrap();
    CompiledJourneys::compile(&catalog, compiled.vocabulary()).unwrap()
}

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn t0() -> Timestamp {
    Timestamp::from_timestamp(1_900_000_000, 0).unwrap()
}

fn customer(i: u64) -> CustomerId {
    CustomerId::new(format!("c{i:02}"))
}

fn email(i: u64) -> Identity {
    Identity::email(&format!("c{i}@example.com"))
}

/// `n` touchpoints, ids from `first`, spread over 10 days with nanoseconds.
fn generate(rng: &mut Rng, first: usize, n: usize, customers: u64) -> Vec<Touchpoint> {
    let kinds = [
        "k0",
        "k1",
        "k2",
        "k3",
        "quit",
        "k0",
        "k2",
        "survey_response",
        "buy",
    ];
    let channels = [Channel::Web, Channel::App, Channel::Sms];
    (first..first + n)
        .map(|i| {
            let c = rng.below(customers);
            let kind = kinds[rng.below(kinds.len() as u64) as usize];
            let at = t0()
                + TimeDelta::seconds(rng.below(10 * 86_400) as i64)
                + TimeDelta::nanoseconds(rng.below(1_000_000_000) as i64);
            let channel = channels[rng.below(3) as usize].clone();
            let mut t = Touchpoint::new(format!("t{i}"), customer(c), channel, Kind::new(kind), at);
            if kind == "survey_response" {
                t = t.with_survey(SurveyAnswer::new("nps", rng.below(11) as f64, Scale::NPS));
            }
            if kind == "buy" {
                t = t.with_attribute("amount", rng.below(1000) as f64 / 4.0);
            }
            if c.is_multiple_of(5) && rng.below(3) == 0 {
                t.subject = Subject::Identity(email(c));
            }
            t
        })
        .collect()
}

async fn both(
    pg: &dyn Store,
    mem: &dyn Store,
    batch: Vec<Touchpoint>,
    journeys: &CompiledJourneys,
) {
    assert_eq!(
        pg.append_touchpoints(batch.clone()).await.unwrap(),
        mem.append_touchpoints(batch.clone()).await.unwrap()
    );
    let mut events = Vec::new();
    journeys.events_of(&batch, &mut events);
    let a = pg.advance_journeys(events.clone(), journeys).await.unwrap();
    let b = mem.advance_journeys(events, journeys).await.unwrap();
    assert_eq!(a, b, "placed reports");
}

fn case(i: usize, c: &CustomerId, opened: Timestamp, owner: &str) -> FollowUpCase {
    FollowUpCase::open(
        "r".into(),
        c.clone(),
        format!("t{i}").as_str().into(),
        "nps".into(),
        (i % 7) as f64,
        OwnerId::new(owner),
        i.is_multiple_of(2).then(|| ("j".into(), "s1".into())),
        opened,
        Span::hours(1 + (i % 30) as i64),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn everything_reads_back_as_in_the_memory_store() {
    let pg = harness::test_store().await.unwrap();
    let mem = MemoryStore::new();
    let (pg, mem): (&dyn Store, &dyn Store) = (&pg, &mem);
    let journeys = journeys();
    let n: u64 = 30;
    let profiles: Vec<Customer> = (0..n)
        .map(|i| {
            let c = Customer::new(customer(i));
            if i % 5 == 0 {
                c.with_identity(email(i))
            } else {
                c
            }
        })
        .collect();
    pg.upsert_customers(profiles.clone()).await.unwrap();
    mem.upsert_customers(profiles).await.unwrap();

    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut all = generate(&mut rng, 0, 900, n);
    // Batches arrive out of order: shuffle, then send in four parts.
    for i in (1..all.len()).rev() {
        all.swap(i, rng.below(i as u64 + 1) as usize);
    }
    for part in all.chunks(225) {
        both(pg, mem, part.to_vec(), &journeys).await;
    }
    // The same part again: duplicates everywhere.
    both(pg, mem, all[..100].to_vec(), &journeys).await;

    for (survivor, absorbed) in [(0, 1), (3, 4)] {
        let (s, a) = (customer(survivor), customer(absorbed));
        assert_eq!(
            pg.merge_customers(&s, &a).await.unwrap(),
            mem.merge_customers(&s, &a).await.unwrap()
        );
    }
    let gone = customer(7);
    assert_eq!(
        pg.forget_customer(&gone).await.unwrap(),
        mem.forget_customer(&gone).await.unwrap()
    );
    // More after the merge: some addressed to the absorbed ids.
    let more = generate(&mut rng, 1000, 200, n)
        .into_iter()
        .filter(|t| t.customer_id() != Some(&gone))
        .collect::<Vec<_>>();
    both(pg, mem, more, &journeys).await;

    for i in 0..n {
        let c = customer(i);
        assert_eq!(
            pg.journey_tracks(&c).await.unwrap(),
            mem.journey_tracks(&c).await.unwrap(),
            "tracks of {c:?}"
        );
    }

    // Funnels.
    let steps = |gaps: bool| {
        let mut s = vec![
            FunnelStep::new("s0", 0, false),
            FunnelStep::new("s1", 1, true),
            FunnelStep::new("s2", 2, false),
            FunnelStep::new("s3", 3, false),
        ];
        if gaps {
            s[2] = s[2].clone().within(Span::days(3));
            s[3] = s[3].clone().after_at_least(Span::hours(2));
        }
        s
    };
    let groups = Breakdown::Groups(vec![
        ("even".into(), (0..n).step_by(2).map(customer).collect()),
        ("few".into(), vec![customer(0), customer(5), customer(9)]),
        ("none".into(), vec![]),
    ]);
    for gaps in [false, true] {
        for breakdown in [Breakdown::None, Breakdown::Channel, groups.clone()] {
            for (started, as_of) in [
                (TimeRange::all(), t0() + TimeDelta::days(20)),
                (
                    TimeRange::new(t0() + TimeDelta::days(2), t0() + TimeDelta::days(6)),
                    t0() + TimeDelta::days(5),
                ),
            ] {
                for customers in [None, Some((0..n).step_by(3).map(customer).collect())] {
                    let q = FunnelQuery::new("j", steps(gaps), started, as_of)
                        .timeout(Some(Span::days(2)))
                        .customers(customers)
                        .breakdown(breakdown.clone());
                    assert_eq!(
                        pg.funnel(&q).await.unwrap(),
                        mem.funnel(&q).await.unwrap(),
                        "{q:?}"
                    );
                }
            }
        }
    }

    // Moments of truth and time in stage.
    for timeout in [None, Some(Span::days(2)), Some(Span::hours(3))] {
        for range in [
            TimeRange::all(),
            TimeRange::new(t0() + TimeDelta::days(1), t0() + TimeDelta::days(4)),
        ] {
            for journey in ["j", "other"] {
                let q = MomentsQuery::new(journey, "nps", range).timeout(timeout);
                assert_eq!(
                    pg.moments_of_truth(&q).await.unwrap(),
                    mem.moments_of_truth(&q).await.unwrap(),
                    "{q:?}"
                );
                let q = q.customers(Some(vec![customer(0), customer(2), customer(11)]));
                assert_eq!(
                    pg.moments_of_truth(&q).await.unwrap(),
                    mem.moments_of_truth(&q).await.unwrap(),
                    "{q:?}"
                );
            }
        }
    }
    for stage in ["s0", "s1", "s2", "s3", "x0"] {
        for journey in ["j", "other"] {
            for left in [
                TimeRange::all(),
                TimeRange::new(t0() + TimeDelta::days(3), t0() + TimeDelta::days(8)),
            ] {
                let q = StageTimesQuery::new(journey, stage, left);
                let (a, b) = (
                    pg.stage_times(&q).await.unwrap(),
                    mem.stage_times(&q).await.unwrap(),
                );
                assert_eq!(a, b, "{q:?}");
                let q = q.customers(Some((0..n).step_by(2).map(customer).collect()));
                assert_eq!(
                    pg.stage_times(&q).await.unwrap(),
                    mem.stage_times(&q).await.unwrap(),
                    "{q:?}"
                );
            }
        }
    }

    // Touchpoint measures.
    let range = TimeRange::new(t0() + TimeDelta::days(1), t0() + TimeDelta::days(7));
    let buys = TouchpointQuery::new(range).kinds([Kind::new("buy")]);
    let web = TouchpointQuery::new(range).channels([Channel::Web]);
    let queries = vec![
        MeasureQuery::new(TouchpointQuery::new(range), Statistic::Count),
        MeasureQuery::new(web.clone(), Statistic::DistinctCustomers),
        MeasureQuery::new(buys.clone(), Statistic::Sum("amount".into())),
        MeasureQuery::new(buys.clone(), Statistic::Avg("amount".into())),
        MeasureQuery::new(buys.clone(), Statistic::Percentile("amount".into(), 50.0)),
        MeasureQuery::new(buys.clone(), Statistic::Percentile("amount".into(), 90.0)),
        MeasureQuery::new(buys.clone(), Statistic::Percentile("amount".into(), 0.0)),
        MeasureQuery::new(buys.clone(), Statistic::Percentile("amount".into(), 100.0)),
        MeasureQuery::new(web.clone(), Statistic::Scores("nps".into())),
        MeasureQuery::new(
            TouchpointQuery::new(TimeRange::all()),
            Statistic::Scores("nps".into()),
        ),
        MeasureQuery::new(buys.clone(), Statistic::Sum("amount".into()))
            .customers(Some(vec![customer(0), customer(6)])),
        MeasureQuery::new(buys, Statistic::Avg("nothing".into())),
        MeasureQuery::new(web, Statistic::Sum("nothing".into())),
    ];
    let (a, b) = (
        pg.measure_touchpoints(&queries).await.unwrap(),
        mem.measure_touchpoints(&queries).await.unwrap(),
    );
    assert_eq!(a.len(), b.len());
    for ((x, y), q) in a.iter().zip(&b).zip(&queries) {
        assert_eq!(x.n, y.n, "{q:?}");
        assert_eq!(x.scores, y.scores, "{q:?}");
        // Sums are taken in another order: equal up to rounding (the amounts are quarters,
        // exact in binary, so they are equal here).
        assert_eq!(x.value, y.value, "{q:?}");
    }

    // Follow-up cases.
    let cases: Vec<FollowUpCase> = (0..60)
        .map(|i| {
            let c = customer(rng.below(n));
            let opened = t0() + TimeDelta::minutes(rng.below(5 * 24 * 60) as i64);
            case(i, &c, opened, if i.is_multiple_of(3) { "a" } else { "b" })
        })
        .filter(|c| c.customer != gone)
        .collect();
    assert_eq!(
        pg.open_cases(cases.clone()).await.unwrap(),
        mem.open_cases(cases.clone()).await.unwrap()
    );
    for (i, c) in cases.iter().enumerate().step_by(3) {
        let at = c.opened_at + TimeDelta::minutes((i * 37 % 2000) as i64);
        let note = i.is_multiple_of(2).then(|| format!("note {i}"));
        assert_eq!(
            pg.close_case(&c.id, at, note.clone()).await.unwrap(),
            mem.close_case(&c.id, at, note).await.unwrap()
        );
    }
    let unknown = CaseId::new("r/unknown");
    assert!(pg.close_case(&unknown, t0(), None).await.is_err());
    for as_of in [t0(), t0() + TimeDelta::days(3), t0() + TimeDelta::days(9)] {
        for q in [
            CaseQuery::new(TimeRange::all(), as_of),
            CaseQuery::new(
                TimeRange::new(t0() + TimeDelta::days(1), t0() + TimeDelta::days(3)),
                as_of,
            )
            .owner("a"),
            CaseQuery::new(TimeRange::all(), as_of).customer(customer(4)),
            CaseQuery::new(TimeRange::all(), as_of).open_only(),
            CaseQuery::new(TimeRange::all(), as_of).customers(Some(vec![
                customer(0),
                customer(5),
                customer(8),
            ])),
        ] {
            assert_eq!(
                pg.cases(&q).await.unwrap(),
                mem.cases(&q).await.unwrap(),
                "{q:?}"
            );
            assert_eq!(
                pg.case_sla(&q).await.unwrap(),
                mem.case_sla(&q).await.unwrap(),
                "{q:?}"
            );
        }
    }
    // A merge moves the cases too.
    let (s, a) = (customer(10), customer(11));
    pg.merge_customers(&s, &a).await.unwrap();
    mem.merge_customers(&s, &a).await.unwrap();
    let q = CaseQuery::new(TimeRange::all(), t0()).customer(a.clone());
    assert_eq!(pg.cases(&q).await.unwrap(), mem.cases(&q).await.unwrap());
    assert_eq!(
        pg.journey_tracks(&a).await.unwrap(),
        mem.journey_tracks(&a).await.unwrap()
    );

    // Customer pages.
    for limit in [1, 4, 100] {
        let (mut after_pg, mut after_mem): (Option<CustomerId>, Option<CustomerId>) = (None, None);
        loop {
            let x = pg.customer_page(after_pg.as_ref(), limit).await.unwrap();
            let y = mem.customer_page(after_mem.as_ref(), limit).await.unwrap();
            assert_eq!(x, y);
            let Some(last) = x.last() else { break };
            after_pg = Some(last.id.clone());
            after_mem = y.last().map(|c| c.id.clone());
        }
    }
    assert_eq!(
        pg.journey_tracks(&CustomerId::new("nobody")).await.unwrap(),
        Vec::new()
    );
}

/// Concurrent advances of one customer's track are serialised: every event placed, once, and the
/// track is the one placing them all in one call makes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_advances_of_one_track_lose_no_update() {
    // A long lateness: every event is placed, whatever order the calls run in.
    let catalog = CATALOG
        .replace("lateness: 6h", "lateness: 3650d")
        .replace("name: Other\n", "name: Other\n    lateness: 3650d\n");
    let catalog = Catalog::from_yaml(&catalog).unwrap();
    let compiled = cx_core::arbitration::CompiledCatalog::compile(catalog.clone(), 1).unwrap();
    let journeys = Arc::new(CompiledJourneys::compile(&catalog, compiled.vocabulary()).unwrap());
    let pg = Arc::new(harness::test_store().await.unwrap());
    let mem = MemoryStore::new();
    let c = customer(0);
    let profile = Customer::new(c.clone()).with_identity(email(0));
    pg.upsert_customers(vec![profile.clone()]).await.unwrap();
    mem.upsert_customers(vec![profile]).await.unwrap();
    let mut rng = Rng(42);
    let all: Vec<Touchpoint> = generate(&mut rng, 0, 160, 1);
    let mut tasks = Vec::new();
    for part in all.chunks(10) {
        let (pg, journeys, part) = (Arc::clone(&pg), Arc::clone(&journeys), part.to_vec());
        tasks.push(tokio::spawn(async move {
            let mut events = Vec::new();
            journeys.events_of(&part, &mut events);
            pg.advance_journeys(events, journeys.as_ref())
                .await
                .unwrap()
        }));
    }
    let mut placed = 0;
    for t in tasks {
        placed += t.await.unwrap().placed;
    }
    let mut events = Vec::new();
    journeys.events_of(&all, &mut events);
    let want = mem
        .advance_journeys(events, journeys.as_ref())
        .await
        .unwrap();
    assert_eq!(placed, want.placed, "every event placed once");
    assert_eq!(
        pg.journey_tracks(&c).await.unwrap(),
        mem.journey_tracks(&c).await.unwrap()
    );
}
