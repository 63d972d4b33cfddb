//! The backend conformance suite (cx-core `testkit`) against the in-memory store: one test per case.

cx_core::conformance_tests!(cx_store_memory::MemoryStore::new());
