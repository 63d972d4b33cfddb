//! `cx.synthetic`: the seeded synthetic world of the tour, and the telco arbitration scenarios
//! of the benchmarks, for notebooks and benchmarks.

use crate::engine::PyEngine;
use crate::errors::OrRaise;
use crate::runtime::block_on;
use crate::tables::{self, Builder, Rows};
use cx::model::Timestamp;
use cx::{Engine, ManualClock, MemoryStore};
use cx_core::testkit::scenario::{ScenarioSpec, contact_records};
use cx_core::testkit::world::WorldSpec;
use pyo3::prelude::*;
use std::sync::Arc;

/// A generated world: a mobile operator's customers and their touchpoints.
#[pyclass(module = "cx.synthetic", name = "World", frozen, get_all)]
pub(crate) struct PyWorld {
    /// Customer profiles (the columns ``Engine.upsert_customers`` reads).
    customers: Py<PyAny>,
    /// Touchpoints, ordered by ``occurred_at`` (the columns ``Engine.ingest`` reads).
    touchpoints: Py<PyAny>,
    /// The first instant of the window.
    start: Timestamp,
    /// The first instant after the window: a natural "now" for an engine over this world.
    end: Timestamp,
}

/// Generates the synthetic world the tour runs on (same spec, same world).
///
/// Parameters
/// ----------
/// customers : int, default 50_000
/// touchpoints : int, default 1_000_000
/// seed : int, default 42
/// days : int, default 90
///     The window, from 2026-08-24 (UTC).
///
/// Returns
/// -------
/// World
///     ``.customers`` and ``.touchpoints`` DataFrames, ``.start`` and ``.end``.
#[pyfunction]
#[pyo3(signature = (*, customers = 50_000, touchpoints = 1_000_000, seed = 42, days = 90))]
pub(crate) fn world(
    py: Python<'_>,
    customers: usize,
    touchpoints: usize,
    seed: u64,
    days: u32,
) -> PyResult<PyWorld> {
    let spec = WorldSpec::default()
        .with_customers(customers)
        .with_touchpoints(touchpoints)
        .with_seed(seed)
        .with_days(days);
    let world = py.detach(|| spec.generate());
    Ok(PyWorld {
        customers: tables::to_pandas(py, tables::customers_table(&world.customers)?)?,
        touchpoints: tables::to_pandas(py, tables::touchpoints_table(&world.touchpoints)?)?,
        start: world.spec.start,
        end: world.end(),
    })
}

/// A telco arbitration scenario loaded into an in-memory engine.
#[pyclass(module = "cx.synthetic", name = "Telco", frozen, get_all)]
pub(crate) struct PyTelco {
    /// The engine: catalogue loaded, customers, touchpoints and contact history stored,
    /// propensities trained, clock pinned at ``now``.
    engine: Py<PyEngine>,
    /// The catalogue, as a dict (the structure of a catalogue file).
    catalog: Py<PyAny>,
    /// Customer profiles.
    customers: Py<PyAny>,
    /// Their touchpoints.
    touchpoints: Py<PyAny>,
    /// Their contact history: ``customer_id``, ``decision_id``, ``offer_id``, ``category``,
    /// ``channel``, ``kind``, ``at``.
    contacts: Py<PyAny>,
    /// The instant decisions are made at.
    now: Timestamp,
    /// The channel of the scenario's requests.
    channel: String,
    /// Offers per decision.
    k: u32,
    /// The propensity model's training: ``offer_id``, ``accepted``, ``failed`` (rejected or
    /// ignored), per offer in catalogue order.
    trials: Py<PyAny>,
    /// How much of each budget is used in the period that holds ``now``, by budget id.
    budget_used: Py<PyAny>,
}

/// Generates the telco arbitration scenario of the benchmarks (``telco-100`` by default) for
/// ``customers`` customers and loads it into a fresh in-memory engine.
///
/// Parameters
/// ----------
/// offers : int, default 100
///     100 (telco-100), 1_000 (telco-1k) or any other count; 20 categories.
/// customers : int, default 1_000
/// touchpoints : int, default 200
///     Touchpoints per customer, over the 30 days before ``now``.
/// contacts : int, default 50
///     Contact-history entries per customer.
/// seed : int, default 42
/// tables : bool, default True
///     Also return the data as DataFrames (for a pandas baseline).
#[pyfunction]
#[pyo3(signature = (*, offers = 100, customers = 1_000, touchpoints = 200, contacts = 50, seed = 42, tables = true))]
pub(crate) fn telco(
    py: Python<'_>,
    offers: usize,
    customers: usize,
    touchpoints: usize,
    contacts: usize,
    seed: u64,
    tables: bool,
) -> PyResult<PyTelco> {
    let spec = ScenarioSpec::telco_100()
        .with_offers(offers.max(1))
        .with_touchpoints(touchpoints)
        .with_contacts(contacts)
        .with_seed(seed);
    let (scenario, people) = py.detach(|| {
        let scenario = spec.generate();
        let people = scenario.customers(customers.saturating_sub(1));
        (scenario, people)
    });
    let clock = Arc::new(ManualClock::new(scenario.now));
    let engine = Engine::new(Arc::new(MemoryStore::new())).with_clock(clock.clone());
    let engine = block_on(py, async {
        scenario.load_into(&engine).await?;
        let store = engine.store();
        engine
            .upsert_customers(people.iter().map(|p| p.customer.clone()).collect())
            .await?;
        let mut batch = Vec::new();
        for p in &people {
            batch.extend(p.touchpoints.iter().cloned());
            if batch.len() >= 100_000 {
                engine.ingest(std::mem::take(&mut batch)).await?;
            }
        }
        if !batch.is_empty() {
            engine.ingest(batch).await?;
        }
        for p in &people {
            let (decisions, outcomes) = contact_records(&p.contacts);
            for d in &decisions {
                store.record_decision(d).await?;
            }
            for o in &outcomes {
                store.record_outcome(o).await?;
            }
        }
        Ok::<_, cx::Error>(engine)
    })?
    .or_raise()?;

    let mut all_customers = vec![scenario.customer.clone()];
    all_customers.extend(people.iter().map(|p| p.customer.clone()));
    let (customers_df, touchpoints_df, contacts_df) = if tables {
        let mut tps = scenario.touchpoints.clone();
        let mut contacts = scenario.contacts.clone();
        for p in &people {
            tps.extend(p.touchpoints.iter().cloned());
            contacts.extend(p.contacts.iter().cloned());
        }
        (
            tables::to_pandas(py, tables::customers_table(&all_customers)?)?,
            tables::to_pandas(py, tables::touchpoints_table(&tps)?)?,
            tables::to_pandas(py, contacts_table(&contacts)?)?,
        )
    } else {
        (py.None(), py.None(), py.None())
    };
    let json = serde_json::to_string(&scenario.catalog).map_err(|e| {
        pyo3::exceptions::PyRuntimeError::new_err(format!("cx: catalogue to JSON: {e}"))
    })?;
    let catalog = py.import("json")?.call_method1("loads", (json,))?.unbind();
    let trials = {
        let mut t = Rows::new(vec![
            ("offer_id", Builder::str()),
            ("accepted", Builder::int()),
            ("failed", Builder::int()),
        ]);
        for (o, (a, f)) in scenario.catalog.offers.iter().zip(&scenario.trials) {
            t.row()
                .str(Some(o.id.as_str()))
                .int(Some(u64::from(*a)))
                .int(Some(u64::from(*f)));
        }
        tables::to_pandas(py, t.finish()?)?
    };
    let budget_used = pyo3::types::PyDict::new(py);
    for (b, used) in scenario.catalog.budgets.iter().zip(&scenario.budget_used) {
        budget_used.set_item(b.id.as_str(), *used)?;
    }
    Ok(PyTelco {
        engine: Py::new(py, PyEngine::memory(engine, Some(clock)))?,
        catalog,
        customers: customers_df,
        touchpoints: touchpoints_df,
        contacts: contacts_df,
        now: scenario.now,
        channel: scenario.request.channel.as_str().to_owned(),
        k: scenario.spec.k,
        trials,
        budget_used: budget_used.into_any().unbind(),
    })
}

fn contacts_table(rows: &[cx::model::ContactEvent]) -> PyResult<arrow_array::RecordBatch> {
    let mut t = Rows::new(vec![
        ("customer_id", Builder::str()),
        ("decision_id", Builder::str()),
        ("offer_id", Builder::str()),
        ("category", Builder::str()),
        ("channel", Builder::str()),
        ("kind", Builder::str()),
        ("at", Builder::time()),
    ]);
    for c in rows {
        t.row()
            .str(Some(c.customer.as_str()))
            .str(Some(c.decision.as_str()))
            .str(Some(c.offer.as_str()))
            .str(Some(c.category.as_str()))
            .str(Some(c.channel.as_str()))
            .str(Some(c.kind.as_str()))
            .time(Some(c.at));
    }
    t.finish()
}
