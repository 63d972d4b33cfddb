//! A server restart: committed data survives, and the store's pool reconnects by itself.
//!
//! In a test binary of its own, so the restart of its throwaway cluster (one per test process)
//! cuts no other test's connections.

use cx_core::model::{Channel, Customer, CustomerId, Kind, TimeRange, Timestamp, Touchpoint};
use cx_core::store::{CustomerStore, TouchpointStore};
use cx_store_postgres::harness;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_recovers_from_a_server_restart_without_losing_committed_data() {
    let store = harness::test_store()
        .await
        .unwrap_or_else(|e| panic!("no PostgreSQL server for the tests: {e}"));
    let at = Timestamp::from_timestamp(1_800_000_000, 0).unwrap();
    let batch: Vec<Touchpoint> = (0..1_000)
        .map(|i| {
            Touchpoint::new(
                format!("t-{i}"),
                CustomerId::new("c-1"),
                Channel::App,
                Kind::PAGE_VIEW,
                at + cx_core::chrono::TimeDelta::seconds(i),
            )
        })
        .collect();
    store
        .upsert_customers(vec![Customer::new("c-1").with_attribute("plan", "S")])
        .await
        .unwrap();
    store.append_touchpoints(batch.clone()).await.unwrap();
    // Several pooled connections are open when the server goes away.
    let c1 = CustomerId::new("c-1");
    let reads = (0..8).map(|_| store.customer_touchpoints(&c1, TimeRange::all()));
    for read in futures_util::future::join_all(reads).await {
        assert_eq!(read.unwrap().len(), 1_000);
    }

    let server = harness::server().unwrap();
    if server.is_throwaway() {
        server.restart().unwrap();
    } else {
        // DATABASE_URL: cut every connection of this database instead.
        let db = store.target().rsplit('/').next().unwrap().to_owned();
        let (admin, connection) = server
            .admin_config()
            .connect(tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        admin
            .execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1",
                &[&db],
            )
            .await
            .unwrap();
    }

    // Every later call works: dead connections are replaced, nothing committed is lost.
    let customer = store.customer(&CustomerId::new("c-1")).await.unwrap();
    assert_eq!(customer.map(|c| c.attributes.len()), Some(1));
    for _ in 0..10 {
        let read = store
            .customer_touchpoints(&CustomerId::new("c-1"), TimeRange::all())
            .await
            .unwrap();
        assert_eq!(read, batch);
    }
    let again = store.append_touchpoints(batch).await.unwrap();
    assert_eq!((again.inserted, again.duplicates), (0, 1_000));
}
