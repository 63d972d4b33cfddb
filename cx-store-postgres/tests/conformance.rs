//! The backend conformance suite (cx-core `testkit`) against PostgreSQL: one test per case, each
//! on its own fresh database of the harness's server (see `cx_store_postgres::harness`).

cx_core::conformance_tests!(async {
    cx_store_postgres::harness::test_store()
        .await
        .unwrap_or_else(|e| panic!("no PostgreSQL server for the conformance suite: {e}"))
});
