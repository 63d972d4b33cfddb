//! `cx.Engine`: the Rust [`cx::Engine`] behind blocking Python methods.

use crate::errors::{OrRaise, invalid};
use crate::runtime::{block_on, generation};
use crate::tables::{self, Builder, Rows};
use crate::values;
use cx::model::{
    Catalog, Channel, CustomerId, Decision, DecisionId, DecisionRequest, OfferId, OutcomeKind,
    TimeRange, Timestamp,
};
use cx::store::{Bucket, OutcomeRecorded};
use cx::{Engine, ManualClock, MemoryStore};
use parking_lot::Mutex;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};
use std::sync::Arc;

/// Where an engine's data lives, so a forked child can reconnect.
#[derive(Clone)]
enum Backend {
    Memory,
    Postgres { url: String, pool_size: usize },
}

/// The engine of one process generation (see `runtime.rs`).
struct Current {
    generation: u64,
    engine: Arc<Engine>,
}

/// A `cx` engine over a store: customers, touchpoints, the catalogue, decisions, KPIs and
/// journeys. Every method blocks until done and releases the GIL while it works.
#[pyclass(module = "cx", name = "Engine", frozen)]
pub(crate) struct PyEngine {
    backend: Backend,
    current: Mutex<Current>,
    clock: Option<Arc<ManualClock>>,
}

/// Reads the Python `datetime` (aware, or naive taken as UTC) `value` as an instant.
fn instant(value: &Bound<'_, PyAny>, what: &str) -> PyResult<Timestamp> {
    values::timestamp(value).map_err(|_| invalid("argument", what, "must be a datetime"))
}

fn channel_of(name: &str) -> PyResult<Channel> {
    let channel = Channel::parse(name);
    if let Channel::Other(_) = channel
        && (name.is_empty() || name.contains(char::is_whitespace))
    {
        return Err(invalid(
            "argument",
            "channel",
            format!("{name:?} is not a channel name"),
        ));
    }
    Ok(channel)
}

fn outcome_of(name: &str) -> PyResult<OutcomeKind> {
    OutcomeKind::ALL
        .into_iter()
        .find(|k| k.as_str() == name)
        .ok_or_else(|| {
            invalid(
                "argument",
                "outcome",
                format!("is {name:?}; it must be shown, accepted, rejected, ignored or converted"),
            )
        })
}

/// A decision request from the keyword arguments of `decide`.
#[allow(clippy::too_many_arguments)]
fn request(
    customer_id: &str,
    channel: &str,
    context: Option<&Bound<'_, PyDict>>,
    k: Option<u32>,
    placement: Option<&str>,
    seed: Option<u64>,
    explain: bool,
) -> PyResult<DecisionRequest> {
    let mut request = DecisionRequest::new(customer_id, channel_of(channel)?);
    if let Some(context) = context {
        for (name, value) in context.iter() {
            let name: String = name
                .extract()
                .map_err(|_| invalid("argument", "context", "keys must be strings"))?;
            let value = values::value(&value)
                .map_err(|reason| invalid("argument", &format!("context.{name}"), reason))?;
            request = request.context(name.as_str(), value);
        }
    }
    if let Some(k) = k {
        request = request.k(k);
    }
    if let Some(p) = placement {
        request = request.placement(p);
    }
    if let Some(s) = seed {
        request = request.seed(s);
    }
    if !explain {
        request = request.without_explanation();
    }
    Ok(request)
}

impl PyEngine {
    fn new(backend: Backend, engine: Engine, clock: Option<Arc<ManualClock>>) -> Self {
        PyEngine {
            backend,
            current: Mutex::new(Current {
                generation: generation(),
                engine: Arc::new(engine),
            }),
            clock,
        }
    }

    /// The engine for this process: after a fork, an engine on PostgreSQL reconnects (its
    /// pooled sockets belong to the parent); one in memory keeps the child's copy of the data.
    pub(crate) fn engine(&self, py: Python<'_>) -> PyResult<Arc<Engine>> {
        let now = generation();
        let mut current = self.current.lock();
        if current.generation == now {
            return Ok(Arc::clone(&current.engine));
        }
        if let Backend::Postgres { url, pool_size } = &self.backend {
            let model = Arc::clone(current.engine.propensity_model());
            let options = cx::postgres::PostgresOptions::new(url.clone()).pool_size(*pool_size);
            let store =
                block_on(py, cx::postgres::PostgresStore::connect_with(options))?.or_raise()?;
            let mut engine = block_on(py, Engine::open(Arc::new(store)))?.or_raise()?;
            engine = engine.with_propensity_model(model);
            if let Some(clock) = &self.clock {
                engine = engine.with_clock(clock.clone());
            }
            current.engine = Arc::new(engine);
        }
        current.generation = now;
        Ok(Arc::clone(&current.engine))
    }

    /// Wraps an engine made in Rust (the synthetic worlds).
    pub(crate) fn memory(engine: Engine, clock: Option<Arc<ManualClock>>) -> Self {
        PyEngine::new(Backend::Memory, engine, clock)
    }
}

#[pymethods]
impl PyEngine {
    /// An engine on a fresh in-memory store.
    ///
    /// Parameters
    /// ----------
    /// now : datetime, optional
    ///     Pin the engine's clock at this instant (for reproducible notebooks and tests);
    ///     by default the engine runs on the system clock.
    /// keep_feature_inputs : bool, default True
    ///     Whether a dry ``decide_batch`` keeps, per customer, what the catalogue's features
    ///     read of their touchpoints and what its rules read of their profile and contact
    ///     history, so that later decisions about them are faster (about 3 kB a customer with
    ///     40 touchpoints).
    ///     False: every decision reads the touchpoints and the profile, and the store holds
    ///     no more than its data.
    #[staticmethod]
    #[pyo3(signature = (*, now = None, keep_feature_inputs = true))]
    fn in_memory(now: Option<&Bound<'_, PyAny>>, keep_feature_inputs: bool) -> PyResult<Self> {
        let clock = now
            .map(|n| instant(n, "now").map(|t| Arc::new(ManualClock::new(t))))
            .transpose()?;
        let store = MemoryStore::new().with_kept_feature_inputs(keep_feature_inputs);
        let mut engine = Engine::new(Arc::new(store));
        if let Some(c) = &clock {
            engine = engine.with_clock(c.clone());
        }
        Ok(PyEngine::new(Backend::Memory, engine, clock))
    }

    /// An engine on a PostgreSQL database; migrates the schema and loads the current catalogue.
    ///
    /// Parameters
    /// ----------
    /// url : str
    ///     ``postgres://user:password@host:port/database`` or the ``key=value`` form.
    /// pool_size : int, default 16
    ///     Connections in the pool.
    /// now : datetime, optional
    ///     Pin the engine's clock at this instant.
    ///
    /// Raises
    /// ------
    /// StorageError
    ///     The server cannot be reached (the message says where, never the password).
    #[staticmethod]
    #[pyo3(signature = (url, *, pool_size = 16, now = None))]
    fn postgres(
        py: Python<'_>,
        url: &str,
        pool_size: usize,
        now: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let clock = now
            .map(|n| instant(n, "now").map(|t| Arc::new(ManualClock::new(t))))
            .transpose()?;
        let options = cx::postgres::PostgresOptions::new(url).pool_size(pool_size.max(1));
        let store = block_on(py, cx::postgres::PostgresStore::connect_with(options))?.or_raise()?;
        let mut engine = block_on(py, Engine::open(Arc::new(store)))?.or_raise()?;
        if let Some(c) = &clock {
            engine = engine.with_clock(c.clone());
        }
        Ok(PyEngine::new(
            Backend::Postgres {
                url: url.to_owned(),
                pool_size: pool_size.max(1),
            },
            engine,
            clock,
        ))
    }

    /// The engine's current instant (UTC).
    fn now(&self, py: Python<'_>) -> PyResult<Timestamp> {
        Ok(self.engine(py)?.now())
    }

    /// Moves a pinned clock to ``at`` (engines made with ``now=``).
    ///
    /// Raises
    /// ------
    /// ValidationError
    ///     The engine runs on the system clock.
    fn set_now(&self, at: &Bound<'_, PyAny>) -> PyResult<()> {
        let at = instant(at, "at")?;
        match &self.clock {
            Some(clock) => {
                clock.set(at);
                Ok(())
            }
            None => Err(invalid(
                "engine",
                "now",
                "runs on the system clock; make it with now= to pin it",
            )),
        }
    }

    /// The storage backend: ``"memory"`` or ``"postgres"``.
    #[getter]
    fn backend(&self) -> &'static str {
        match self.backend {
            Backend::Memory => "memory",
            Backend::Postgres { .. } => "postgres",
        }
    }

    /// Validates, compiles and stores a catalogue, and uses it from now on.
    ///
    /// Parameters
    /// ----------
    /// catalog : str, os.PathLike or dict
    ///     A YAML, JSON or TOML file, or the catalogue as a dict (the file's structure).
    ///
    /// Returns
    /// -------
    /// int
    ///     The catalogue's version in the store.
    ///
    /// Raises
    /// ------
    /// ValidationError, RuleError, ParseError
    ///     The catalogue is invalid; nothing is stored and the catalogue in use stays.
    fn load_catalog(&self, py: Python<'_>, catalog: &Bound<'_, PyAny>) -> PyResult<u64> {
        let catalog = if catalog.is_instance_of::<PyDict>() {
            let json: String = py
                .import("json")?
                .call_method1("dumps", (catalog,))
                .map_err(|e| invalid("catalog", "", format!("is not JSON-serialisable: {e}")))?
                .extract()?;
            Catalog::parse(&json, cx::model::Format::Json, "<dict>").or_raise()?
        } else {
            let path: std::path::PathBuf = catalog
                .extract()
                .map_err(|_| invalid("argument", "catalog", "must be a path or a dict"))?;
            Catalog::from_path(&path).or_raise()?
        };
        let engine = self.engine(py)?;
        let version =
            block_on(py, async move { engine.load_catalog(catalog).await })?.or_raise()?;
        Ok(version.version)
    }

    /// Inserts or replaces customer profiles, atomically.
    ///
    /// Parameters
    /// ----------
    /// data : DataFrame or list of dict
    ///     pandas, pyarrow or polars. Columns: ``id`` (required); ``identities`` (list of
    ///     ``{kind, value}``), ``consents`` (list of ``{channel, purpose, status, since,
    ///     expires_at}``) and ``pii`` (list of attribute names), all optional; every other
    ///     column is an attribute (null: absent).
    ///
    /// Returns
    /// -------
    /// dict
    ///     ``{"inserted": n, "updated": n}``.
    fn upsert_customers(&self, py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<Py<PyDict>> {
        let mut customers = Vec::new();
        for batch in tables::read_batches(py, data)? {
            let first = customers.len();
            customers.extend(tables::customers(&batch, first)?);
        }
        let engine = self.engine(py)?;
        let report =
            block_on(py, async move { engine.upsert_customers(customers).await })?.or_raise()?;
        let out = PyDict::new(py);
        out.set_item("inserted", report.inserted)?;
        out.set_item("updated", report.updated)?;
        Ok(out.unbind())
    }

    /// Appends touchpoints: idempotent by id, atomic per batch of ``batch_size`` rows.
    ///
    /// Parameters
    /// ----------
    /// data : DataFrame or list of dict
    ///     pandas, pyarrow or polars. Columns: ``id``, ``channel``, ``kind``, ``occurred_at``
    ///     (timestamps, or RFC 3339 strings) and ``customer_id`` (or ``identity_kind`` and
    ///     ``identity_value``) are required; ``source``, ``survey_question``, ``survey_score``,
    ///     ``survey_scale_min`` and ``survey_scale_max`` are optional; every other column is
    ///     an attribute (null: absent).
    /// batch_size : int, default 100_000
    ///     Rows stored per atomic batch.
    ///
    /// Returns
    /// -------
    /// dict
    ///     ``inserted`` and ``duplicates`` (rows already stored), ``journey_events``,
    ///     ``cases_opened`` and ``decisions`` (made by real-time triggers).
    ///
    /// Raises
    /// ------
    /// ValidationError
    ///     A column or a row is invalid (the message names it); no row of its batch is stored.
    #[pyo3(signature = (data, *, batch_size = 100_000))]
    fn ingest(
        &self,
        py: Python<'_>,
        data: &Bound<'_, PyAny>,
        batch_size: usize,
    ) -> PyResult<Py<PyDict>> {
        let batches = tables::read_batches(py, data)?;
        let engine = self.engine(py)?;
        let batch_size = batch_size.max(1);
        let report = block_on(py, async move {
            // One thread converts the next chunk while the store takes this one.
            let (tx, mut rx) =
                tokio::sync::mpsc::channel::<PyResult<Vec<cx::model::Touchpoint>>>(1);
            let producer =
                tokio::task::spawn_blocking(move || convert_chunks(&batches, batch_size, &tx));
            let mut total = cx::IngestReport::default();
            while let Some(chunk) = rx.recv().await {
                add(&mut total, engine.ingest(chunk?).await.or_raise()?);
            }
            producer.await.map_err(|e| {
                pyo3::exceptions::PyRuntimeError::new_err(format!(
                    "cx: ingest conversion failed: {e}"
                ))
            })?;
            Ok::<_, PyErr>(total)
        })??;
        let out = PyDict::new(py);
        out.set_item("inserted", report.inserted)?;
        out.set_item("duplicates", report.duplicates)?;
        out.set_item("journey_events", report.journeys.placed)?;
        out.set_item("cases_opened", report.cases_opened)?;
        out.set_item("decisions", report.decisions.len())?;
        Ok(out.unbind())
    }

    /// Customer profiles as a DataFrame (the columns ``upsert_customers`` reads).
    ///
    /// Parameters
    /// ----------
    /// ids : list of str, optional
    ///     These customers, in this order (unknown ids are left out); by default every
    ///     customer, in id order.
    #[pyo3(signature = (*, ids = None))]
    fn customers(&self, py: Python<'_>, ids: Option<Vec<String>>) -> PyResult<Py<PyAny>> {
        let engine = self.engine(py)?;
        let rows = block_on(py, async move {
            let store = engine.store();
            match ids {
                Some(ids) => {
                    let ids: Vec<CustomerId> =
                        ids.iter().map(|i| CustomerId::from(i.as_str())).collect();
                    Ok(store.customers(&ids).await?.into_iter().flatten().collect())
                }
                None => {
                    let mut all = Vec::new();
                    let mut after: Option<CustomerId> = None;
                    loop {
                        let page = store.customer_page(after.as_ref(), 10_000).await?;
                        let Some(last) = page.last() else { break };
                        after = Some(last.id.clone());
                        all.extend(page);
                    }
                    Ok::<_, cx::Error>(all)
                }
            }
        })?
        .or_raise()?;
        tables::to_pandas(py, tables::customers_table(&rows)?)
    }

    /// Touchpoints as a DataFrame (the columns ``ingest`` reads), ordered by occurrence.
    ///
    /// Parameters
    /// ----------
    /// customer_id : str, optional
    ///     One customer's touchpoints; by default everyone's.
    /// start, end : datetime, optional
    ///     The half-open range of ``occurred_at``; by default all time.
    #[pyo3(signature = (*, customer_id = None, start = None, end = None))]
    fn touchpoints(
        &self,
        py: Python<'_>,
        customer_id: Option<String>,
        start: Option<&Bound<'_, PyAny>>,
        end: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        let range = range_of(start, end)?;
        let engine = self.engine(py)?;
        let rows = block_on(py, async move {
            let store = engine.store();
            match customer_id {
                Some(id) => {
                    store
                        .customer_touchpoints(&CustomerId::from(id.as_str()), range)
                        .await
                }
                None => {
                    let filter = cx::store::TouchpointQuery::new(range);
                    let mut all = Vec::new();
                    let mut query = cx::store::ScanQuery::new(filter, 100_000);
                    loop {
                        let page = store.scan_touchpoints(&query).await?;
                        all.extend(page.touchpoints);
                        match page.next {
                            Some(next) => query = query.after(Some(next)),
                            None => break,
                        }
                    }
                    Ok(all)
                }
            }
        })?
        .or_raise()?;
        tables::to_pandas(py, tables::touchpoints_table(&rows)?)
    }

    /// The next best offers for one customer, recorded (budgets consumed) and explained.
    ///
    /// Parameters
    /// ----------
    /// customer_id : str
    /// channel : str
    ///     The channel the offers would go out on (``"app"``, ``"email"``...).
    /// context : dict, optional
    ///     Request context, read by rules as ``context.<name>``.
    /// k : int, optional
    ///     How many offers (default: the catalogue's).
    /// placement : str, optional
    /// seed : int, optional
    ///     Seeds the exploration policy's draws.
    /// explain : bool, default True
    ///     Keep the per-candidate explanation.
    ///
    /// Returns
    /// -------
    /// Decision
    ///
    /// Raises
    /// ------
    /// NotFound
    ///     Unknown customer, or no catalogue loaded.
    #[pyo3(signature = (customer_id, *, channel, context = None, k = None, placement = None, seed = None, explain = true))]
    #[allow(clippy::too_many_arguments)]
    fn decide(
        &self,
        py: Python<'_>,
        customer_id: &str,
        channel: &str,
        context: Option<&Bound<'_, PyDict>>,
        k: Option<u32>,
        placement: Option<&str>,
        seed: Option<u64>,
        explain: bool,
    ) -> PyResult<PyDecision> {
        let request = request(customer_id, channel, context, k, placement, seed, explain)?;
        let engine = self.engine(py)?;
        let decision = block_on(py, async move { engine.decide(&request).await })?.or_raise()?;
        Ok(PyDecision(decision))
    }

    /// Decides for many customers at once, in parallel, and returns one row per chosen offer.
    ///
    /// By default this is a dry run for offline evaluation: each decision is what ``decide``
    /// would choose now, but nothing is recorded and no budget is consumed. With
    /// ``record=True`` every decision is made and recorded as ``decide`` does.
    ///
    /// Parameters
    /// ----------
    /// customer_ids : sequence of str
    /// channel, context, k, placement, seed
    ///     As for ``decide`` (the same seed for every customer).
    /// record : bool, default False
    ///
    /// Returns
    /// -------
    /// pandas.DataFrame
    ///     ``customer_id``, ``decision_id``, ``rank``, ``offer_id``, ``category``, ``score``,
    ///     ``probability``; customers with no offer have one row with nulls.
    ///
    /// Raises
    /// ------
    /// NotFound
    ///     An unknown customer (named), or no catalogue loaded.
    ///
    /// Notes
    /// -----
    /// On the in-memory store, a dry run keeps, for each customer, what the catalogue's
    /// features read of their touchpoints (about 1.7 kB a customer on telco-100 with 40
    /// touchpoints each), what its rules read of their profile alone (about 0.8 kB), and what
    /// its contact policies read of their contact history (48 bytes an event they count).
    /// Later decisions for them compute the features from the first (batched or not), and
    /// skip reading the profile and the contact history with the others (batched): the
    /// features until the touchpoints change or a catalogue with other features is loaded,
    /// the others until the profile or the contact history changes or another catalogue is
    /// loaded. Later calls take about a quarter of the first's time.
    /// ``Engine.in_memory(keep_feature_inputs=False)`` keeps none of them.
    #[pyo3(signature = (customer_ids, *, channel, context = None, k = None, placement = None, seed = None, record = false))]
    #[allow(clippy::too_many_arguments)]
    fn decide_batch(
        &self,
        py: Python<'_>,
        customer_ids: Vec<String>,
        channel: &str,
        context: Option<&Bound<'_, PyDict>>,
        k: Option<u32>,
        placement: Option<&str>,
        seed: Option<u64>,
        record: bool,
    ) -> PyResult<Py<PyAny>> {
        let template = request("_", channel, context, k, placement, seed, false)?;
        let engine = self.engine(py)?;
        let parts =
            block_on(py, decide_many(engine, customer_ids, template, record))?.or_raise()?;
        tables::batches_to_pandas(py, parts.into_iter().collect::<PyResult<Vec<_>>>()?)
    }

    /// Records what happened to an offer of a decision, and learns from it.
    ///
    /// Parameters
    /// ----------
    /// decision_id : str
    /// offer_id : str
    /// outcome : {"shown", "accepted", "rejected", "ignored", "converted"}
    ///
    /// Returns
    /// -------
    /// bool
    ///     True if recorded, False if the same outcome was recorded before (counted once).
    ///
    /// Raises
    /// ------
    /// NotFound
    ///     Unknown decision.
    /// ValidationError
    ///     The decision did not choose that offer, or an unknown outcome.
    fn record_outcome(
        &self,
        py: Python<'_>,
        decision_id: &str,
        offer_id: &str,
        outcome: &str,
    ) -> PyResult<bool> {
        let kind = outcome_of(outcome)?;
        let (decision, offer) = (DecisionId::from(decision_id), OfferId::from(offer_id));
        let engine = self.engine(py)?;
        let recorded = block_on(py, async move {
            engine.record_outcome(&decision, &offer, kind).await
        })?
        .or_raise()?;
        Ok(recorded == OutcomeRecorded::New)
    }

    /// Erases everything about a customer: profile, identities, touchpoints, decisions,
    /// contact history, journeys and follow-up cases.
    ///
    /// Returns
    /// -------
    /// dict
    ///     What was erased, counted.
    fn forget(&self, py: Python<'_>, customer_id: &str) -> PyResult<Py<PyDict>> {
        let id = CustomerId::from(customer_id);
        let engine = self.engine(py)?;
        let report = block_on(py, async move { engine.forget(&id).await })?.or_raise()?;
        let out = PyDict::new(py);
        out.set_item("profile", report.profile)?;
        out.set_item("touchpoints", report.touchpoints)?;
        out.set_item("decisions", report.decisions)?;
        out.set_item("contacts", report.contacts)?;
        out.set_item("journey_tracks", report.journey_tracks)?;
        out.set_item("follow_up_cases", report.follow_up_cases)?;
        Ok(out.unbind())
    }

    /// KPIs: the scorecard by owner and time series.
    #[getter]
    fn kpis(slf: Py<Self>) -> Kpis {
        Kpis { engine: slf }
    }

    /// Journeys: funnels and moments of truth.
    #[getter]
    fn journeys(slf: Py<Self>) -> Journeys {
        Journeys { engine: slf }
    }

    fn __repr__(&self) -> String {
        format!("cx.Engine(backend={:?})", self.backend())
    }

    /// Times ``n`` calls of the Rust ``Engine::decide`` for one request, with no Python in
    /// between, and returns the seconds they took (the baseline of the binding's overhead in
    /// ``benches/python_bench.py``).
    #[pyo3(signature = (customer_id, *, channel, n, k = None))]
    fn _time_rust_decide(
        &self,
        py: Python<'_>,
        customer_id: &str,
        channel: &str,
        n: usize,
        k: Option<u32>,
    ) -> PyResult<f64> {
        let request = request(customer_id, channel, None, k, None, None, true)?;
        let engine = self.engine(py)?;
        block_on(py, async move {
            let start = std::time::Instant::now();
            for _ in 0..n {
                engine.decide(&request).await?;
            }
            Ok::<_, cx::Error>(start.elapsed().as_secs_f64())
        })?
        .or_raise()
    }
}

/// Converts `batches` into chunks of `size` touchpoints, in order, and sends them; stops at
/// the first error (sent) or when the receiver is gone.
fn convert_chunks(
    batches: &[arrow_array::RecordBatch],
    size: usize,
    tx: &tokio::sync::mpsc::Sender<PyResult<Vec<cx::model::Touchpoint>>>,
) {
    let mut pending = Vec::with_capacity(size);
    let mut first_row = 0;
    for batch in batches {
        let mut offset = 0;
        while offset < batch.num_rows() {
            // Zero-copy slices, so a chunk is sent as soon as it is converted.
            let take = (size - pending.len()).min(batch.num_rows() - offset);
            if let Err(e) = tables::touchpoints(&batch.slice(offset, take), first_row, &mut pending)
            {
                let _ = tx.blocking_send(Err(e));
                return;
            }
            offset += take;
            first_row += take;
            if pending.len() >= size {
                let chunk = std::mem::replace(&mut pending, Vec::with_capacity(size));
                if tx.blocking_send(Ok(chunk)).is_err() {
                    return;
                }
            }
        }
    }
    if !pending.is_empty() {
        let _ = tx.blocking_send(Ok(pending));
    }
}

fn add(total: &mut cx::IngestReport, report: cx::IngestReport) {
    total.inserted += report.inserted;
    total.duplicates += report.duplicates;
    total.journeys.placed += report.journeys.placed;
    total.journeys.duplicates += report.journeys.duplicates;
    total.journeys.too_late += report.journeys.too_late;
    total.cases_opened += report.cases_opened;
    total.decisions.extend(report.decisions);
}

/// Decides for every customer of `ids` and tabulates the decisions, in order, one table per
/// run of `ids`. The runs are several per runtime worker, so that a worker the machine slows
/// down holds up little of the batch, and each worker builds its runs' tables (and drops
/// their decisions) itself, leaving the caller's thread only the hand-over to pandas.
async fn decide_many(
    engine: Arc<Engine>,
    ids: Vec<String>,
    template: DecisionRequest,
    record: bool,
) -> cx::Result<Vec<PyResult<arrow_array::RecordBatch>>> {
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get().clamp(1, 8));
    let chunk = ids.len().div_ceil(workers * RUNS_PER_WORKER).max(MIN_RUN);
    let ids = Arc::new(ids);
    let mut tasks = Vec::new();
    for start in (0..ids.len()).step_by(chunk) {
        let (engine, ids, template) = (Arc::clone(&engine), Arc::clone(&ids), template.clone());
        tasks.push(tokio::spawn(async move {
            let end = (start + chunk).min(ids.len());
            let requests: Vec<DecisionRequest> = ids
                .get(start..end)
                .unwrap_or_default()
                .iter()
                .map(|id| {
                    let mut request = template.clone();
                    request.customer = CustomerId::from(id.as_str());
                    request
                })
                .collect();
            let mut table = DecisionRows::new(requests.len());
            if record {
                for request in &requests {
                    table.push(&engine.decide(request).await?);
                }
            } else {
                // Each decision written out as it is made, then dropped: the next one reuses
                // its memory, still in the caches.
                let mut failed = None;
                engine
                    .preview_each(&requests, &mut |_, decision| match decision {
                        Ok(d) => table.push(&d),
                        Err(e) => {
                            failed.get_or_insert(e);
                        }
                    })
                    .await?;
                if let Some(e) = failed {
                    return Err(e);
                }
            }
            Ok::<_, cx::Error>(table.finish())
        }));
    }
    if tasks.is_empty() {
        return Ok(vec![DecisionRows::new(0).finish()]);
    }
    let mut parts = Vec::with_capacity(tasks.len());
    for task in tasks {
        let part = task.await.map_err(|e| cx::Error::Storage {
            backend: "runtime",
            message: format!("a decide_batch task failed: {e}"),
            source: None,
        })??;
        parts.push(part);
    }
    Ok(parts)
}

/// Runs of a `decide_batch` per runtime worker.
const RUNS_PER_WORKER: usize = 8;
/// The fewest customers in a run of a `decide_batch` (fewer cost more in tasks than they save).
const MIN_RUN: usize = 512;

/// The `decide_batch` table, written a decision at a time (the decisions are not kept): its
/// columns are sized, at the first decision, for as many decisions like it as expected.
struct DecisionRows {
    expected: usize,
    rows: Option<Rows>,
}

impl DecisionRows {
    fn new(expected: usize) -> Self {
        DecisionRows {
            expected,
            rows: None,
        }
    }

    /// Columns for `expected` decisions like `d` (an eighth more bytes of text, for longer
    /// ids): sized once, not grown by doubling (a copy of each column every time).
    fn sized_like(d: &Decision, expected: usize) -> Rows {
        let n = d.offers.len().max(1);
        let rows = expected * n;
        let room = |bytes: usize| expected * bytes * 9 / 8;
        let (offers, categories) = d.offers.iter().fold((0, 0), |(o, c), s| {
            (o + s.offer.as_str().len(), c + s.category.as_str().len())
        });
        let text = [
            n * d.customer.as_str().len(),
            n * d.id.as_str().len(),
            offers,
            categories,
        ];
        Self::columns(rows, text.map(room))
    }

    /// The table's columns, with room for `rows` rows and, in its text columns (customer,
    /// decision, offer, category), `bytes` bytes.
    fn columns(rows: usize, bytes: [usize; 4]) -> Rows {
        let [customers, ids, offers, categories] = bytes;
        Rows::new(vec![
            ("customer_id", Builder::str_with(rows, customers)),
            ("decision_id", Builder::str_with(rows, ids)),
            ("rank", Builder::int_with(rows)),
            ("offer_id", Builder::str_with(rows, offers)),
            ("category", Builder::str_with(rows, categories)),
            ("score", Builder::num_with(rows)),
            ("probability", Builder::num_with(rows)),
        ])
    }

    /// Writes `d`'s rows: one per offer, or one without an offer.
    fn push(&mut self, d: &Decision) {
        let t = self
            .rows
            .get_or_insert_with(|| Self::sized_like(d, self.expected));
        if d.offers.is_empty() {
            t.row()
                .str(Some(d.customer.as_str()))
                .str(Some(d.id.as_str()))
                .int(None)
                .str(None)
                .str(None)
                .num(None)
                .num(None);
        }
        for s in &d.offers {
            t.row()
                .str(Some(d.customer.as_str()))
                .str(Some(d.id.as_str()))
                .int(Some(u64::from(s.rank)))
                .str(Some(s.offer.as_str()))
                .str(Some(s.category.as_str()))
                .num(Some(s.score))
                .num(Some(s.probability));
        }
    }

    fn finish(self) -> PyResult<arrow_array::RecordBatch> {
        self.rows
            .unwrap_or_else(|| Self::columns(0, [0; 4]))
            .finish()
    }
}

fn range_of(
    start: Option<&Bound<'_, PyAny>>,
    end: Option<&Bound<'_, PyAny>>,
) -> PyResult<TimeRange> {
    let start = match start {
        Some(s) => instant(s, "start")?,
        None => Timestamp::MIN_UTC,
    };
    let end = match end {
        Some(e) => instant(e, "end")?,
        None => Timestamp::MAX_UTC,
    };
    if end < start {
        return Err(invalid("argument", "end", "is before start"));
    }
    Ok(TimeRange::new(start, end))
}

/// One decision: what was chosen, for whom, when, and why.
#[pyclass(module = "cx", name = "Decision", frozen)]
pub(crate) struct PyDecision(pub(crate) Decision);

/// An offer a decision chose.
#[pyclass(module = "cx", name = "SelectedOffer", frozen, get_all)]
pub(crate) struct PySelectedOffer {
    /// The offer's id.
    offer_id: String,
    /// Its category.
    category: String,
    /// Position in the decision, from 0.
    rank: u32,
    /// Its score.
    score: f64,
    /// The probability with which the policy selected it.
    probability: f64,
}

#[pymethods]
impl PySelectedOffer {
    fn __repr__(&self) -> String {
        format!(
            "SelectedOffer(offer_id={:?}, category={:?}, rank={}, score={:.6}, probability={:.6})",
            self.offer_id, self.category, self.rank, self.score, self.probability
        )
    }
}

#[pymethods]
impl PyDecision {
    /// The decision's id (pass it to ``record_outcome``).
    #[getter]
    fn id(&self) -> &str {
        self.0.id.as_str()
    }

    /// The customer.
    #[getter]
    fn customer_id(&self) -> &str {
        self.0.customer.as_str()
    }

    /// The channel.
    #[getter]
    fn channel(&self) -> &str {
        self.0.channel.as_str()
    }

    /// When it was made (UTC).
    #[getter]
    fn at(&self) -> Timestamp {
        self.0.at
    }

    /// The catalogue version it was made under.
    #[getter]
    fn catalog_version(&self) -> u64 {
        self.0.catalog_version
    }

    /// The chosen offers, best first.
    #[getter]
    fn offers(&self) -> Vec<PySelectedOffer> {
        self.0
            .offers
            .iter()
            .map(|s| PySelectedOffer {
                offer_id: s.offer.as_str().to_owned(),
                category: s.category.as_str().to_owned(),
                rank: s.rank,
                score: s.score,
                probability: s.probability,
            })
            .collect()
    }

    /// One sentence on why ``offer_id`` was not chosen (or how it was).
    fn why_not(&self, offer_id: &str) -> String {
        self.0.why_not(&OfferId::from(offer_id))
    }

    /// Every candidate's explanation as a DataFrame: ``offer_id``, ``stage`` (where it
    /// stopped), ``reason``, the score factors (``propensity``, ``context_weight``, ``value``,
    /// ``lever``, ``score``) for scored ones, ``lifts_at`` for contact-policy exclusions and
    /// ``probability`` for chosen ones. Empty if the decision kept no explanation.
    fn explain(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let mut t = Rows::new(vec![
            ("offer_id", Builder::str()),
            ("stage", Builder::str()),
            ("reason", Builder::str()),
            ("propensity", Builder::num()),
            ("context_weight", Builder::num()),
            ("value", Builder::num()),
            ("lever", Builder::num()),
            ("score", Builder::num()),
            ("lifts_at", Builder::time()),
            ("probability", Builder::num()),
        ]);
        for e in &self.0.explanations() {
            t.row()
                .str(Some(e.offer.as_str()))
                .str(Some(e.stage.as_str()))
                .str(Some(&e.reason))
                .num(e.score.map(|s| s.propensity))
                .num(e.score.map(|s| s.context_weight))
                .num(e.score.map(|s| s.value))
                .num(e.score.map(|s| s.lever))
                .num(e.score.map(|s| s.score))
                .time(e.lifts_at)
                .num(e.probability);
        }
        tables::to_pandas(py, t.finish()?)
    }

    fn __repr__(&self) -> String {
        let offers: Vec<&str> = self.0.offers.iter().map(|s| s.offer.as_str()).collect();
        format!(
            "Decision(id={:?}, customer_id={:?}, channel={:?}, offers={:?})",
            self.0.id.as_str(),
            self.0.customer.as_str(),
            self.0.channel.as_str(),
            offers
        )
    }
}

/// ``engine.kpis``: KPI results as DataFrames.
#[pyclass(module = "cx", name = "Kpis", frozen)]
pub(crate) struct Kpis {
    engine: Py<PyEngine>,
}

fn results_table(results: &[cx::kpi::KpiResult]) -> PyResult<arrow_array::RecordBatch> {
    let mut t = Rows::new(vec![
        ("kpi_id", Builder::str()),
        ("name", Builder::str()),
        ("owner", Builder::str()),
        ("window_start", Builder::time()),
        ("window_end", Builder::time()),
        ("value", Builder::num()),
        ("n", Builder::int()),
        ("status", Builder::str()),
        ("ci_low", Builder::num()),
        ("ci_high", Builder::num()),
        ("target", Builder::num()),
        ("direction", Builder::str()),
    ]);
    for r in results {
        t.row()
            .str(Some(r.kpi.as_str()))
            .str(Some(&r.name))
            .str(Some(r.owner.as_str()))
            .time(Some(r.window.start))
            .time(Some(r.window.end))
            .num(r.value)
            .int(Some(r.n))
            .str(Some(status_name(r.status)))
            .num(r.interval.map(|i| i.0))
            .num(r.interval.map(|i| i.1))
            .num(r.target.map(|t| t.value))
            .str(r.target.map(|t| match t.direction {
                cx::model::Direction::HigherIsBetter => "higher_is_better",
                cx::model::Direction::LowerIsBetter => "lower_is_better",
            }));
    }
    t.finish()
}

fn status_name(status: cx::kpi::Status) -> &'static str {
    match status {
        cx::kpi::Status::OnTrack => "on_track",
        cx::kpi::Status::AtRisk => "at_risk",
        cx::kpi::Status::OffTrack => "off_track",
        cx::kpi::Status::InsufficientData => "insufficient_data",
        cx::kpi::Status::NoTarget => "no_target",
    }
}

#[pymethods]
impl Kpis {
    /// Every KPI of the catalogue, grouped by owner (owners in catalogue order).
    ///
    /// Parameters
    /// ----------
    /// start, end : datetime, optional
    ///     With both, every KPI is evaluated over ``[start, end)``. With ``end`` only (or
    ///     neither: now), each KPI over its own window ending then.
    ///
    /// Returns
    /// -------
    /// pandas.DataFrame
    ///     ``kpi_id``, ``name``, ``owner``, ``window_start``, ``window_end``, ``value``,
    ///     ``n``, ``status`` (``on_track``, ``at_risk``, ``off_track``,
    ///     ``insufficient_data``, ``no_target``), ``ci_low``/``ci_high`` (95% interval for
    ///     survey measures and shares), ``target``, ``direction``.
    #[pyo3(signature = (start = None, end = None))]
    fn scorecard(
        &self,
        py: Python<'_>,
        start: Option<&Bound<'_, PyAny>>,
        end: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        let engine = self.engine.get().engine(py)?;
        let end = end.map(|e| instant(e, "end")).transpose()?;
        let start = start.map(|s| instant(s, "start")).transpose()?;
        let card = match (start, end) {
            (Some(s), Some(e)) => {
                if e < s {
                    return Err(invalid("argument", "end", "is before start"));
                }
                block_on(py, async move {
                    engine.scorecard_over(TimeRange::new(s, e)).await
                })?
            }
            (Some(_), None) => {
                return Err(invalid(
                    "argument",
                    "end",
                    "is required when start is given",
                ));
            }
            (None, end) => {
                let at = end.unwrap_or_else(|| engine.now());
                block_on(py, async move { engine.scorecard(at).await })?
            }
        }
        .or_raise()?;
        let results: Vec<cx::kpi::KpiResult> = card.results().cloned().collect();
        tables::to_pandas(py, results_table(&results)?)
    }

    /// One KPI evaluated per period.
    ///
    /// Parameters
    /// ----------
    /// kpi_id : str
    /// freq : {"D", "W", "h"}, default "D"
    ///     Days, ISO weeks (from Monday) or hours, in UTC.
    /// start, end : datetime, optional
    ///     The range whose periods are evaluated; by default the KPI's window ending now.
    ///
    /// Returns
    /// -------
    /// pandas.DataFrame
    ///     The columns of ``scorecard``, one row per period, oldest first.
    #[pyo3(signature = (kpi_id, *, freq = "D", start = None, end = None))]
    fn series(
        &self,
        py: Python<'_>,
        kpi_id: &str,
        freq: &str,
        start: Option<&Bound<'_, PyAny>>,
        end: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        let bucket = match freq {
            "D" => Bucket::Day,
            "W" => Bucket::Week,
            "h" | "H" => Bucket::Hour,
            other => {
                return Err(invalid(
                    "argument",
                    "freq",
                    format!("is {other:?}; it must be \"D\", \"W\" or \"h\""),
                ));
            }
        };
        let engine = self.engine.get().engine(py)?;
        let end = match end {
            Some(e) => instant(e, "end")?,
            None => engine.now(),
        };
        let start = match start {
            Some(s) => instant(s, "start")?,
            None => {
                let stored = engine.catalog().ok_or_else(|| {
                    crate::errors::to_py(cx::Error::not_found(
                        "catalog",
                        "current (load one first)",
                    ))
                })?;
                let kpi = stored
                    .catalog
                    .kpi(kpi_id)
                    .ok_or_else(|| crate::errors::to_py(cx::Error::not_found("kpi", kpi_id)))?;
                end - kpi.window.as_delta()
            }
        };
        if end < start {
            return Err(invalid("argument", "end", "is before start"));
        }
        let id = kpi_id.to_owned();
        let results = block_on(py, async move {
            engine
                .kpi_series(&id, TimeRange::new(start, end), bucket)
                .await
        })?
        .or_raise()?;
        tables::to_pandas(py, results_table(&results)?)
    }

    fn __repr__(&self) -> &'static str {
        "cx.Kpis"
    }
}

/// ``engine.journeys``: funnels and moments of truth as DataFrames.
#[pyclass(module = "cx", name = "Journeys", frozen)]
pub(crate) struct Journeys {
    engine: Py<PyEngine>,
}

#[pymethods]
impl Journeys {
    /// The funnel of a journey: exact distinct customers per stage.
    ///
    /// Parameters
    /// ----------
    /// journey_id : str
    /// start, end : datetime, optional
    ///     Instances that started in ``[start, end)`` count; by default all.
    /// by : {"channel"} or list of str, optional
    ///     Break down by the channel of the first step, or by these segments.
    ///
    /// Returns
    /// -------
    /// pandas.DataFrame
    ///     ``group`` (null for the whole funnel), ``stage``, ``reached``, ``entered``,
    ///     ``skipped``, ``dropped``, ``conversion``, ``conversion_from_start``,
    ///     ``gap_median_s``, ``gap_p90_s``, ``overdue`` (customers active in the stage for
    ///     longer than its ``max_time``).
    #[pyo3(signature = (journey_id, *, start = None, end = None, by = None))]
    fn funnel(
        &self,
        py: Python<'_>,
        journey_id: &str,
        start: Option<&Bound<'_, PyAny>>,
        end: Option<&Bound<'_, PyAny>>,
        by: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        let range = range_of(start, end)?;
        let engine = self.engine.get().engine(py)?;
        let id = journey_id.to_owned();
        let funnel = match by {
            None => block_on(py, async move { engine.funnel(&id, range).await })?,
            Some(by) if by.is_instance_of::<PyString>() => {
                let by: String = by.extract()?;
                if by != "channel" {
                    return Err(invalid(
                        "argument",
                        "by",
                        format!("is {by:?}; it must be \"channel\" or a list of segment ids"),
                    ));
                }
                let query = engine
                    .funnel_query(&id, range)
                    .or_raise()?
                    .breakdown(cx::store::Breakdown::Channel);
                block_on(py, async move { engine.run_funnel(&query).await })?
            }
            Some(by) => {
                let segments: Vec<String> = by.extract().map_err(|_| {
                    invalid(
                        "argument",
                        "by",
                        "must be \"channel\" or a list of segment ids",
                    )
                })?;
                block_on(py, async move {
                    let refs: Vec<&str> = segments.iter().map(String::as_str).collect();
                    engine.funnel_by_segment(&id, range, &refs).await
                })?
            }
        }
        .or_raise()?;
        let mut t = Rows::new(vec![
            ("group", Builder::str()),
            ("stage", Builder::str()),
            ("reached", Builder::int()),
            ("entered", Builder::int()),
            ("skipped", Builder::int()),
            ("dropped", Builder::int()),
            ("conversion", Builder::num()),
            ("conversion_from_start", Builder::num()),
            ("gap_median_s", Builder::num()),
            ("gap_p90_s", Builder::num()),
            ("overdue", Builder::int()),
        ]);
        let all = std::iter::once((None, &funnel.rows)).chain(
            funnel
                .groups
                .iter()
                .map(|(g, rows)| (Some(g.as_str()), rows)),
        );
        for (group, rows) in all {
            for r in rows {
                t.row()
                    .str(group)
                    .str(Some(r.stage.as_str()))
                    .int(Some(r.reached))
                    .int(Some(r.entered))
                    .int(Some(r.skipped))
                    .int(Some(r.dropped))
                    .num(r.conversion)
                    .num(r.conversion_from_start)
                    .num(r.gap.median)
                    .num(r.gap.p90)
                    .int(Some(r.overdue));
            }
        }
        tables::to_pandas(py, t.finish()?)
    }

    /// A journey's stages ranked by the mean answer to a survey question given in them, best
    /// first (the worst moments of truth are last).
    ///
    /// Returns
    /// -------
    /// pandas.DataFrame
    ///     ``stage``, ``responses``, ``mean``.
    #[pyo3(signature = (journey_id, question, *, start = None, end = None))]
    fn moments(
        &self,
        py: Python<'_>,
        journey_id: &str,
        question: &str,
        start: Option<&Bound<'_, PyAny>>,
        end: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        let range = range_of(start, end)?;
        let engine = self.engine.get().engine(py)?;
        let (id, q) = (journey_id.to_owned(), question.to_owned());
        let scores = block_on(
            py,
            async move { engine.moments_of_truth(&id, &q, range).await },
        )?
        .or_raise()?;
        let mut t = Rows::new(vec![
            ("stage", Builder::str()),
            ("responses", Builder::int()),
            ("mean", Builder::num()),
        ]);
        for m in &scores {
            t.row()
                .str(Some(m.stage.as_str()))
                .int(Some(m.responses))
                .num(Some(m.mean));
        }
        tables::to_pandas(py, t.finish()?)
    }

    fn __repr__(&self) -> &'static str {
        "cx.Journeys"
    }
}
