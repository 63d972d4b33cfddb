//! What the conformance suite cannot say about PostgreSQL: migrations, error mapping, round
//! trips, budgets across connections, analytics identical to the memory store, and batches that
//! fail half-way. Each test has its own database on the harness's server.

use cx_core::model::{
    Catalog, Channel, Consent, Customer, CustomerId, DecisionRequest, Identity, Kind, OutcomeKind,
    Purpose, TimeRange, Timestamp, Touchpoint,
};
use cx_core::store::{
    AggregateQuery, Bucket, BudgetKey, BudgetStore, ContactCount, ContactKey, CustomerStore,
    DecisionStateQuery, DecisionStore, Store, TouchpointQuery, TouchpointStore,
};
use cx_core::testkit::world::WorldSpec;
use cx_core::{Engine, Error, ManualClock};
use cx_store_memory::MemoryStore;
use cx_store_postgres::{PostgresOptions, PostgresStore, harness};
use std::sync::Arc;
use std::time::Duration;

async fn store() -> PostgresStore {
    harness::test_store()
        .await
        .unwrap_or_else(|e| panic!("no PostgreSQL server for the tests: {e}"))
}

async fn fresh_config() -> tokio_postgres::Config {
    harness::fresh_database()
        .await
        .unwrap_or_else(|e| panic!("no PostgreSQL server for the tests: {e}"))
}

/// A plain connection to the database of `config`, for looking behind the store's back.
async fn raw(config: &tokio_postgres::Config) -> tokio_postgres::Client {
    let (client, connection) = config.connect(tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    client
}

fn at(secs: i64) -> Timestamp {
    Timestamp::from_timestamp(1_800_000_000 + secs, 0).unwrap()
}

fn tp(id: &str, customer: &str, secs: i64) -> Touchpoint {
    Touchpoint::new(
        id,
        CustomerId::new(customer),
        Channel::Web,
        Kind::PAGE_VIEW,
        at(secs),
    )
}

async fn stored_touchpoints(client: &tokio_postgres::Client) -> i64 {
    client
        .query_one("SELECT count(*) FROM touchpoints", &[])
        .await
        .unwrap()
        .get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_apply_once_and_a_newer_schema_is_refused() {
    let config = fresh_config().await;
    let options = || PostgresOptions::from_config(config.clone()).pool_size(2);
    let first = PostgresStore::connect_with(options()).await.unwrap();
    let again = PostgresStore::connect_with(options()).await;
    assert!(
        again.is_ok(),
        "connecting again migrates nothing: {again:?}"
    );
    let client = raw(&config).await;
    let versions: Vec<i32> = client
        .query(
            "SELECT version FROM cx_schema_migrations ORDER BY version",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        versions,
        (1..=cx_store_postgres::SCHEMA_VERSION).collect::<Vec<_>>(),
        "every migration applied once, in order"
    );
    drop(first);

    client
        .execute(
            "INSERT INTO cx_schema_migrations (version, name) VALUES ($1, 'from the future')",
            &[&(cx_store_postgres::SCHEMA_VERSION + 1)],
        )
        .await
        .unwrap();
    match PostgresStore::connect_with(options()).await {
        Err(Error::Storage { message, .. }) => {
            assert!(message.contains("newer"), "{message}");
            assert!(message.contains("upgrade cx"), "{message}");
        }
        other => panic!("a newer schema must be refused, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_errors_say_where_and_never_the_password() {
    // A port nothing listens on (bound, read, released).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("postgres://ann:s3cr3t-pw@127.0.0.1:{port}/cx");
    let options = PostgresOptions::new(url.as_str()).connect_timeout(Duration::from_secs(3));
    assert!(!format!("{options:?}").contains("s3cr3t-pw"));
    let err = PostgresStore::connect_with(options).await.unwrap_err();
    let text = format!("{err} {err:?}");
    assert!(matches!(err, Error::Storage { .. }), "{err:?}");
    assert!(
        text.contains(&format!("127.0.0.1:{port}")) && text.contains("ann@"),
        "the error must say where it tried to connect: {text}"
    );
    assert!(!text.contains("s3cr3t-pw"), "the password leaked: {text}");

    // A real server, a database that does not exist, a password in the URL.
    let server = harness::server().unwrap();
    let mut config = server.config_for("no_such_database");
    config.password("s3cr3t-pw");
    let err = PostgresStore::connect_with(PostgresOptions::from_config(config))
        .await
        .unwrap_err();
    let text = format!("{err} {err:?}");
    assert!(text.contains("no_such_database"), "{text}");
    assert!(!text.contains("s3cr3t-pw"), "the password leaked: {text}");

    let bad = PostgresStore::connect("postgres://ann:pw@host:notaport/db").await;
    assert!(matches!(bad, Err(Error::Validation { .. })), "{bad:?}");

    let store = store().await;
    assert!(!format!("{store:?}").contains("password"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_identity_claims_end_in_one_winner_and_conflicts() {
    let store = Arc::new(store().await);
    for round in 0..20 {
        let mail = Identity::email(&format!("shared-{round}@example.com"));
        let mut tasks = tokio::task::JoinSet::new();
        for who in 0..4 {
            let (store, mail) = (Arc::clone(&store), mail.clone());
            tasks.spawn(async move {
                let c = Customer::new(format!("c-{round}-{who}")).with_identity(mail);
                store.upsert_customers(vec![c]).await
            });
        }
        let mut winners = 0;
        while let Some(result) = tasks.join_next().await {
            match result.unwrap() {
                Ok(_) => winners += 1,
                // The check in the transaction, or the unique index for a racing writer: both
                // are a conflict.
                Err(Error::Conflict { .. }) => {}
                Err(other) => panic!("a losing claim must be a conflict, got {other:?}"),
            }
        }
        assert_eq!(
            winners, 1,
            "round {round}: exactly one customer gets the identity"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nul_character_is_refused_by_name() {
    let store = store().await;
    let bad = tp("t-1", "c-1", 0).with_attribute("note", "a\0b");
    match store
        .append_touchpoints(vec![tp("t-0", "c-1", 0), bad])
        .await
    {
        Err(Error::Validation { item, field, .. }) => {
            assert!(item.contains("#1 in batch"), "{item}");
            assert_eq!(field, "attributes.note");
        }
        other => panic!("expected a validation error, got {other:?}"),
    }
    let customer = Customer::new("c-1").with_attribute("note", "x\0");
    assert!(matches!(
        store.upsert_customers(vec![customer]).await,
        Err(Error::Validation { .. })
    ));
}

/// A catalogue with one offer on sms whose budget allows `limit` showings in total.
fn budgeted_catalog(limit: u64) -> Catalog {
    let yaml = [
        "owners: [{ id: growth, name: Growth }]".to_owned(),
        format!("budgets: [{{ id: launch, limit: {limit}, counts: shown, period: total }}]"),
        "contact_policy: [{ rule: cap, id: weekly, scope: channel, outcome: shown, max: 3, \
         window: 7d }]"
            .to_owned(),
        "offers: [{ id: promo, name: Promo, category: upsell, channels: [sms], value: 1.0, \
         budget: launch }]"
            .to_owned(),
    ]
    .join("\n");
    Catalog::from_yaml(&yaml).unwrap()
}

fn customer(id: &str) -> Customer {
    Customer::new(id).with_consent(Consent::granted(
        Channel::Sms,
        Purpose::MARKETING,
        at(-1000),
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_deciders_never_exceed_a_budget() {
    const LIMIT: u64 = 25;
    let store = Arc::new(store().await);
    let clock = Arc::new(ManualClock::new(at(0)));
    let engine = Arc::new(Engine::new(Arc::clone(&store) as Arc<dyn Store>).with_clock(clock));
    engine.load_catalog(budgeted_catalog(LIMIT)).await.unwrap();
    let customers: Vec<Customer> = (0..64).map(|i| customer(&format!("c-{i}"))).collect();
    engine.upsert_customers(customers).await.unwrap();

    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..16 {
        let engine = Arc::clone(&engine);
        tasks.spawn(async move {
            let mut chosen = 0u64;
            for i in 0..4 {
                let request = DecisionRequest::new(format!("c-{}", task * 4 + i), Channel::Sms);
                let decision = engine.decide(&request).await.unwrap();
                chosen += decision
                    .offers
                    .iter()
                    .filter(|o| o.offer == "promo")
                    .count() as u64;
            }
            chosen
        });
    }
    let mut chosen = 0;
    while let Some(n) = tasks.join_next().await {
        chosen += n.unwrap();
    }
    let used = store
        .budgets_used(&[BudgetKey::new("launch", "total")])
        .await
        .unwrap();
    assert_eq!(
        used,
        vec![LIMIT],
        "64 decisions for 25 units: the budget is used up"
    );
    assert_eq!(
        chosen, LIMIT,
        "the offer is chosen exactly as often as its budget allows"
    );
    assert!(
        store.round_trips() > 0,
        "the deciders went through the store's pool"
    );

    // Across separate pools (connections of different "processes") too.
    let key = BudgetKey::new("shared", "2026-11-22");
    let stores: Vec<PostgresStore> = vec![(*store).clone(), store_on_same_db(&store).await];
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..16 {
        let (store, key) = (stores[i % 2].clone(), key.clone());
        tasks.spawn(async move {
            let mut granted = 0;
            while store.consume_budget(&key, 100, 3).await.unwrap().granted {
                granted += 3;
            }
            granted
        });
    }
    let mut granted = 0;
    while let Some(n) = tasks.join_next().await {
        granted += n.unwrap();
    }
    assert_eq!(granted, 99, "33 grants of 3 fit in 100, and no more");
    assert_eq!(store.budget_used(&key).await.unwrap(), 99);
}

async fn store_on_same_db(store: &PostgresStore) -> PostgresStore {
    // `target()` names the database without credentials; the harness trusts local users.
    let db = store.target().rsplit('/').next().unwrap().to_owned();
    let config = harness::server().unwrap().config_for(&db);
    PostgresStore::connect_with(PostgresOptions::from_config(config).pool_size(8))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decision_reads_its_state_in_one_round_trip() {
    let store = Arc::new(store().await);
    let clock = Arc::new(ManualClock::new(at(0)));
    let engine = Engine::new(Arc::clone(&store) as Arc<dyn Store>).with_clock(clock.clone());
    engine.load_catalog(budgeted_catalog(1000)).await.unwrap();
    engine
        .upsert_customers(vec![customer("c-1")])
        .await
        .unwrap();
    engine
        .ingest((0..20).map(|i| tp(&format!("t-{i}"), "c-1", -i)).collect())
        .await
        .unwrap();

    // Warm the statement cache of every pooled connection the calls may use.
    let query = DecisionStateQuery::new("c-1")
        .touchpoints(Some(TimeRange::new(at(-100), at(1))))
        .contacts(Some(TimeRange::all()))
        .budgets(vec![BudgetKey::new("launch", "total")]);
    for _ in 0..20 {
        store.decision_state(&query).await.unwrap();
    }
    let before = store.round_trips();
    let state = store.decision_state(&query).await.unwrap().unwrap();
    assert_eq!(
        store.round_trips() - before,
        1,
        "profile, touchpoints, contacts and budgets"
    );
    assert_eq!(state.touchpoints.len(), 20);
    assert_eq!(state.customer.id, CustomerId::new("c-1"));

    let first = engine
        .decide(&DecisionRequest::new("c-1", Channel::Sms))
        .await
        .unwrap();
    engine
        .record_outcome(&first.id, &first.offers[0].offer, OutcomeKind::Shown)
        .await
        .unwrap();
    let before = store.round_trips();
    let decision = engine
        .decide(&DecisionRequest::new("c-1", Channel::Sms))
        .await
        .unwrap();
    let trips = store.round_trips() - before;
    // 1 read (profile, touchpoints, contact history, budgets) + 1 to commit the decision with
    // its budget draw (one statement: the shared directory lock, the INSERT, the draw).
    assert_eq!(decision.offers.len(), 1);
    assert_eq!(trips, 2, "round trips of one decide");

    // Recording the same decision again is a no-op, still in one round trip.
    let stored = store.decision(&decision.id).await.unwrap().unwrap();
    let before = store.round_trips();
    store.record_decision(&stored).await.unwrap();
    assert_eq!(store.round_trips() - before, 1, "a repeated record");

    // The counts a contact policy needs: one round trip for any number of them.
    let queries: Vec<ContactCount> = [ContactKey::All, ContactKey::Channel(Channel::Sms)]
        .into_iter()
        .flat_map(|key| {
            OutcomeKind::ALL.map(|kind| ContactCount {
                key: key.clone(),
                kind,
                range: TimeRange::all(),
            })
        })
        .collect();
    let before = store.round_trips();
    let counts = store
        .count_contacts(&CustomerId::new("c-1"), &queries)
        .await
        .unwrap();
    assert_eq!(store.round_trips() - before, 1);
    assert_eq!(counts[0], 1, "one shown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decision_that_fails_to_record_leaves_nothing_and_no_open_transaction() {
    let config = fresh_config().await;
    // One connection: the calls after the failure reuse the connection that failed.
    let store = Arc::new(
        PostgresStore::connect_with(PostgresOptions::from_config(config.clone()).pool_size(1))
            .await
            .unwrap(),
    );
    let client = raw(&config).await;
    let engine = Engine::new(Arc::clone(&store) as Arc<dyn Store>)
        .with_clock(Arc::new(ManualClock::new(at(0))));
    engine.load_catalog(budgeted_catalog(1000)).await.unwrap();
    engine
        .upsert_customers(vec![customer("c-1"), customer("c-2")])
        .await
        .unwrap();
    client
        .batch_execute(
            "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql
                 AS $$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$;
             CREATE TRIGGER refuse BEFORE INSERT ON decisions
                 FOR EACH ROW EXECUTE FUNCTION refuse();",
        )
        .await
        .unwrap();
    match engine
        .decide(&DecisionRequest::new("c-1", Channel::Sms))
        .await
    {
        Err(Error::Storage { message, .. }) => {
            assert!(message.contains("record a decision"), "{message}")
        }
        other => panic!("expected a storage error, got {other:?}"),
    }
    client
        .batch_execute("DROP TRIGGER refuse ON decisions")
        .await
        .unwrap();
    let count = |sql: &'static str| {
        let client = &client;
        async move { client.query_one(sql, &[]).await.unwrap().get::<_, i64>(0) }
    };
    assert_eq!(count("SELECT count(*) FROM decisions").await, 0);
    // The same connection, outside any transaction: decisions record, and a merge takes the
    // directory lock exclusively (it would wait forever for a shared holder).
    let decision = engine
        .decide(&DecisionRequest::new("c-1", Channel::Sms))
        .await
        .unwrap();
    store
        .merge_customers(&CustomerId::new("c-1"), &CustomerId::new("c-2"))
        .await
        .unwrap();
    assert_eq!(count("SELECT count(*) FROM decisions").await, 1);
    assert_eq!(
        store.decision(&decision.id).await.unwrap().unwrap().id,
        decision.id
    );
    // (The server sends an error before it rolls back, so the lock is checked only now, after
    // calls that completed.)
    assert_eq!(
        count(
            "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database
             WHERE l.locktype = 'advisory' AND d.datname = current_database()"
        )
        .await,
        0,
        "no directory lock left behind"
    );
    assert_eq!(
        count(
            "SELECT count(*) FROM pg_stat_activity
             WHERE datname = current_database() AND state LIKE 'idle in transaction%'"
        )
        .await,
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn analytics_are_identical_to_the_memory_store() {
    let world = WorldSpec::default()
        .with_seed(7)
        .with_customers(300)
        .with_touchpoints(20_000)
        .generate();
    let pg = store().await;
    let memory = MemoryStore::new();
    for s in [&pg as &dyn Store, &memory as &dyn Store] {
        s.upsert_customers(world.customers.clone()).await.unwrap();
        for batch in world.batches(5_000) {
            s.append_touchpoints(batch.to_vec()).await.unwrap();
        }
    }
    let range = world.range();
    let half = TimeRange::new(range.start, range.start + (range.end - range.start) / 2);
    let filters = [
        TouchpointQuery::new(range),
        TouchpointQuery::new(half).channels([Channel::Web, Channel::App, Channel::Email]),
        TouchpointQuery::new(TimeRange::all()).kinds([Kind::PURCHASE, Kind::PAGE_VIEW]),
    ];
    let mut compared = 0;
    for filter in &filters {
        let queries = [
            AggregateQuery::new(filter.clone()),
            AggregateQuery::new(filter.clone()).by_channel().by_kind(),
            AggregateQuery::new(filter.clone()).by_bucket(Bucket::Day),
            AggregateQuery::new(filter.clone())
                .by_bucket(Bucket::Week)
                .by_channel(),
            AggregateQuery::new(filter.clone())
                .by_bucket(Bucket::Hour)
                .by_kind(),
        ];
        for q in &queries {
            let (a, b) = (
                pg.aggregate_touchpoints(q).await.unwrap(),
                memory.aggregate_touchpoints(q).await.unwrap(),
            );
            assert_eq!(a, b, "aggregate {q:?}");
            compared += a.len();
        }
    }
    assert!(compared > 100, "the comparison covered {compared} rows");
    for c in world.customers.iter().step_by(37) {
        assert_eq!(
            pg.customer_touchpoints(&c.id, range).await.unwrap(),
            memory.customer_touchpoints(&c.id, range).await.unwrap(),
            "touchpoints of {:?}",
            c.id
        );
        assert_eq!(
            pg.customer(&c.id).await.unwrap(),
            memory.customer(&c.id).await.unwrap()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_that_fails_on_the_server_leaves_nothing() {
    let config = fresh_config().await;
    let store = PostgresStore::connect_with(PostgresOptions::from_config(config.clone()))
        .await
        .unwrap();
    let client = raw(&config).await;
    store
        .upsert_customers(vec![
            Customer::new("known").with_identity(Identity::email("k@example.com")),
        ])
        .await
        .unwrap();
    // Staged whole, then the server finds the last subject unresolved.
    let mut batch: Vec<Touchpoint> = (0..5_000)
        .map(|i| tp(&format!("t-{i}"), "c-1", i))
        .collect();
    batch.push(Touchpoint::new(
        "t-last",
        Identity::email("nobody@example.com"),
        Channel::Email,
        Kind::MESSAGE_OPENED,
        at(0),
    ));
    match store.append_touchpoints(batch).await {
        Err(Error::Validation { item, .. }) => assert!(item.contains("#5000 in batch"), "{item}"),
        other => panic!("expected a validation error, got {other:?}"),
    }
    assert_eq!(stored_touchpoints(&client).await, 0, "nothing of the batch");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_whose_connection_is_killed_leaves_nothing_and_the_store_recovers() {
    let config = fresh_config().await;
    let store = PostgresStore::connect_with(PostgresOptions::from_config(config.clone()))
        .await
        .unwrap();
    let blocker = raw(&config).await;
    let killer = raw(&config).await;
    // Hold the touchpoints table: the batch waits for it.
    blocker
        .batch_execute("BEGIN; LOCK TABLE touchpoints IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let batch: Vec<Touchpoint> = (0..10_000)
        .map(|i| tp(&format!("t-{i}"), &format!("c-{}", i % 50), i))
        .collect();
    let append = {
        let store = store.clone();
        tokio::spawn(async move { store.append_touchpoints(batch).await })
    };
    // The waiting backend (no timing: it waits until it is killed).
    kill_waiting(&killer, "%touchpoints%").await;
    let result = append.await.unwrap();
    match &result {
        Err(Error::Storage { message, .. }) => {
            assert!(message.contains("append touchpoints"), "{message}")
        }
        other => panic!("a killed connection must be a storage error, got {other:?}"),
    }
    blocker.batch_execute("COMMIT").await.unwrap();
    assert_eq!(stored_touchpoints(&killer).await, 0, "nothing of the batch");

    // The pool drops the dead connection; the same batch goes in whole.
    let again: Vec<Touchpoint> = (0..10_000)
        .map(|i| tp(&format!("t-{i}"), &format!("c-{}", i % 50), i))
        .collect();
    let report = store.append_touchpoints(again).await.unwrap();
    assert_eq!((report.inserted, report.duplicates), (10_000, 0));
    assert_eq!(stored_touchpoints(&killer).await, 10_000);
}

/// Waits (no timing: until it appears) for a backend of the current database waiting on a lock while
/// running a statement like `pattern`, and ends it.
async fn kill_waiting(killer: &tokio_postgres::Client, pattern: &str) {
    let pid: i32 = loop {
        let rows = killer
            .query(
                "SELECT pid FROM pg_stat_activity
                 WHERE datname = current_database() AND wait_event_type = 'Lock'
                   AND query LIKE $1",
                &[&pattern],
            )
            .await
            .unwrap();
        if let Some(row) = rows.first() {
            break row.get(0);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    killer
        .execute("SELECT pg_terminate_backend($1)", &[&pid])
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_killed_during_a_read_is_not_handed_out_again() {
    let config = fresh_config().await;
    // One connection: had the pool kept the killed one, every later call would get it.
    let store =
        PostgresStore::connect_with(PostgresOptions::from_config(config.clone()).pool_size(1))
            .await
            .unwrap();
    store
        .append_touchpoints(vec![tp("t-1", "c-1", 1)])
        .await
        .unwrap();
    let blocker = raw(&config).await;
    let killer = raw(&config).await;
    blocker
        .batch_execute("BEGIN; LOCK TABLE touchpoints IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let range = TimeRange::new(at(0), at(10));
    let read = {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .customer_touchpoints(&CustomerId::new("c-1"), range)
                .await
        })
    };
    kill_waiting(&killer, "SELECT %FROM touchpoints%").await;
    match read.await.unwrap() {
        Err(Error::Storage { message, .. }) => {
            assert!(
                message.contains("read a customer's touchpoints"),
                "{message}"
            )
        }
        other => panic!("a killed connection must be a storage error, got {other:?}"),
    }
    blocker.batch_execute("COMMIT").await.unwrap();

    // The next calls, of any kind, run on a fresh connection.
    let read = store
        .customer_touchpoints(&CustomerId::new("c-1"), range)
        .await
        .unwrap();
    assert_eq!(read.len(), 1);
    assert_eq!(store.count_customers().await.unwrap(), 0);
}

/// The fast path checks which keys are stored, then copies the rest straight in. A concurrent
/// writer that stores one of those keys in between (here: an open transaction holding it,
/// committed while the copy waits on it) makes the copy fail; the batch then goes through the
/// staging path, whose `ON CONFLICT DO NOTHING` keeps the other writer's row and the rest of
/// the batch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_racing_a_writer_of_one_of_its_keys_keeps_the_first_row_and_the_rest() {
    let config = fresh_config().await;
    let store = PostgresStore::connect_with(PostgresOptions::from_config(config.clone()))
        .await
        .unwrap();
    let other = raw(&config).await;
    let watcher = raw(&config).await;
    other
        .batch_execute(
            "BEGIN; INSERT INTO touchpoints (customer_id, touchpoint_id, occurred_us, occurred_ns,
             channel, kind) VALUES ('c-7', 't-7', 0, 0, 'call', 'complaint')",
        )
        .await
        .unwrap();
    let batch: Vec<Touchpoint> = (0..100)
        .map(|i| tp(&format!("t-{i}"), &format!("c-{}", i % 10), i))
        .collect();
    let append = {
        let store = store.clone();
        tokio::spawn(async move { store.append_touchpoints(batch).await })
    };
    // The copy waits for the other transaction (no timing: until it is seen waiting).
    loop {
        let waiting: i64 = watcher
            .query_one(
                "SELECT count(*) FROM pg_stat_activity
                 WHERE datname = current_database() AND wait_event_type = 'Lock'
                   AND query LIKE 'COPY touchpoints%'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        if waiting > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    other.batch_execute("COMMIT").await.unwrap();
    let report = append.await.unwrap().unwrap();
    assert_eq!((report.inserted, report.duplicates), (99, 1));
    assert_eq!(stored_touchpoints(&watcher).await, 100);
    let kind: String = watcher
        .query_one(
            "SELECT kind FROM touchpoints WHERE customer_id = 'c-7' AND touchpoint_id = 't-7'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(kind, "complaint", "the row stored first stays");
}

/// Asked for features it does not compute in place, the store sends only the touchpoints they
/// read: the kinds some feature counts, each from the start of the longest window counting it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decision_state_leaves_out_touchpoints_no_feature_reads() {
    use cx_core::arbitration::CompiledCatalog;
    let store = store().await;
    store.upsert_customers(vec![customer("c-1")]).await.unwrap();
    let kinds = [Kind::PAGE_VIEW, Kind::PRODUCT_VIEW, Kind::PURCHASE];
    let batch = (0..60)
        .map(|i| {
            let kind = kinds[i as usize % 3].clone();
            Touchpoint::new(
                format!("t-{i}"),
                CustomerId::new("c-1"),
                Channel::Web,
                kind,
                at(-60 * i),
            )
            .with_attribute("dwell_seconds", i as f64)
        })
        .collect();
    store.append_touchpoints(batch).await.unwrap();
    let catalog = Arc::new(
        CompiledCatalog::compile(
            Catalog::from_yaml(
                r#"
schema:
  touchpoint: { dwell_seconds: number }
features:
  - { id: views, aggregate: count, kinds: [product_view], window: 30m }
  - { id: dwell, aggregate: sum, attribute: dwell_seconds, kinds: [page_view], window: 10m }
  - { id: views_1h, aggregate: count, kinds: [product_view], window: 1h }
"#,
            )
            .unwrap(),
            1,
        )
        .unwrap(),
    );
    let now = at(1);
    let range = TimeRange::new(at(-4000), at(2));
    let query = DecisionStateQuery::new("c-1")
        .touchpoints(Some(range))
        .features(Arc::clone(&catalog), now);
    let state = store.decision_state(&query).await.unwrap().unwrap();
    let all = store
        .customer_touchpoints(&CustomerId::new("c-1"), range)
        .await
        .unwrap();
    assert_eq!(all.len(), 60);
    // Product views from an hour back, page views from 10 minutes back, no purchase.
    let kept: Vec<&Touchpoint> = all
        .iter()
        .filter(|t| {
            (t.kind == Kind::PRODUCT_VIEW
                && t.occurred_at >= now - cx_core::chrono::TimeDelta::hours(1))
                || (t.kind == Kind::PAGE_VIEW
                    && t.occurred_at >= now - cx_core::chrono::TimeDelta::minutes(10))
        })
        .collect();
    assert_eq!(state.touchpoints.iter().collect::<Vec<_>>(), kept);
    assert_eq!(kept.len(), 20 + 4);
    assert_eq!(
        catalog.compute_features(&state.touchpoints, now),
        catalog.compute_features(&all, now)
    );
}
