//! Python bindings for `cx`, built with maturin and imported as `cx` (the native part is
//! `cx._native`; `cx/__init__.py` re-exports it).
//!
//! - `engine.rs`: `cx.Engine`, `cx.Decision`, `engine.kpis`, `engine.journeys`.
//! - `tables.rs`: tables in and out through Arrow (pandas, pyarrow, polars, lists of dicts).
//! - `errors.rs`: the exception hierarchy (`cx.CxError` and its subclasses).
//! - `runtime.rs`: the one tokio runtime, blocking calls with the GIL released, and `fork()`.
//! - `synthetic.rs`: `cx.synthetic`, the seeded worlds of the tour and the benchmarks.
#![warn(missing_docs)]
#![warn(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::print_stdout
)]

mod engine;
mod errors;
mod runtime;
mod synthetic;
mod tables;
mod values;

use pyo3::prelude::*;

/// The extension's Rust allocations (Python's own keep Python's allocator): mimalloc, whose
/// thread-local free lists make the many small, short-lived blocks of a decision cheap (see
/// the README's benchmarks).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The native module `cx._native`.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<engine::PyEngine>()?;
    m.add_class::<engine::PyDecision>()?;
    m.add_class::<engine::PySelectedOffer>()?;
    m.add_class::<engine::Kpis>()?;
    m.add_class::<engine::Journeys>()?;
    m.add_class::<synthetic::PyWorld>()?;
    m.add_class::<synthetic::PyTelco>()?;
    m.add_function(wrap_pyfunction!(synthetic::world, m)?)?;
    m.add_function(wrap_pyfunction!(synthetic::telco, m)?)?;
    m.add_function(wrap_pyfunction!(runtime::after_fork_in_child, m)?)?;
    m.add_function(wrap_pyfunction!(fresh_postgres_database, m)?)?;
    m.add_function(wrap_pyfunction!(panic_for_test, m)?)?;
    let classes = errors::classes(py)?;
    m.add("CxError", classes.cx_error.bind(py))?;
    m.add("ValidationError", classes.validation.bind(py))?;
    m.add("RuleError", classes.rule.bind(py))?;
    m.add("ParseError", classes.parse.bind(py))?;
    m.add("NotFound", classes.not_found.bind(py))?;
    m.add("ConflictError", classes.conflict.bind(py))?;
    m.add("StorageError", classes.storage.bind(py))?;
    // A forked child must not use the parent's runtime threads or pooled sockets.
    let after = m.getattr("after_fork_in_child")?;
    let kwargs = pyo3::types::PyDict::new(py);
    kwargs.set_item("after_in_child", after)?;
    py.import("os")?
        .getattr("register_at_fork")?
        .call((), Some(&kwargs))?;
    Ok(())
}

/// A fresh, migrated database on the test server, as a connection string: `DATABASE_URL`'s
/// server, or a throwaway cluster this process starts from the installed PostgreSQL binaries
/// and stops when it exits (for the bindings' own tests).
#[pyfunction]
fn fresh_postgres_database(py: Python<'_>) -> PyResult<String> {
    use errors::OrRaise;
    let config = runtime::block_on(py, cx::postgres::harness::fresh_database())?.or_raise()?;
    let mut parts = Vec::new();
    for host in config.get_hosts() {
        match host {
            tokio_postgres::config::Host::Tcp(h) => parts.push(format!("host={h}")),
            tokio_postgres::config::Host::Unix(p) => {
                parts.push(format!("host={}", p.display()));
            }
        }
    }
    if let Some(port) = config.get_ports().first() {
        parts.push(format!("port={port}"));
    }
    if let Some(user) = config.get_user() {
        parts.push(format!("user={user}"));
    }
    if let Some(db) = config.get_dbname() {
        parts.push(format!("dbname={db}"));
    }
    if let Some(password) = config.get_password() {
        parts.push(format!("password={}", String::from_utf8_lossy(password)));
    }
    Ok(parts.join(" "))
}

/// Panics inside the runtime, as a bug would: the tests check that the interpreter survives
/// and gets a `CxError`.
#[pyfunction]
fn panic_for_test(py: Python<'_>) -> PyResult<()> {
    runtime::block_on(py, async {
        #[allow(clippy::panic)]
        {
            panic!("deliberate panic for the bindings' tests");
        }
    })
}
