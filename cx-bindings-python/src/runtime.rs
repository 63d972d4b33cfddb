//! The one tokio runtime every binding call runs on, and what happens to it across `fork()`.
//!
//! Calls are blocking from Python's side: each one releases the GIL and blocks on a future on
//! the shared multi-threaded runtime. A forked child inherits the runtime's memory but none of
//! its threads, so a runtime must never be used in a process other than the one that built it.
//! The module registers [`after_fork_in_child`] with `os.register_at_fork`; it bumps a
//! generation counter, and the next call builds a fresh runtime (the parent's is leaked in the
//! child: dropping it would wait for threads that do not exist there). Engines on PostgreSQL
//! reconnect in the child as well (see `engine.rs`): pooled sockets are shared with the parent.

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Bumped in a forked child: everything built before belongs to the parent.
static GENERATION: AtomicU64 = AtomicU64::new(0);

/// The current runtime and the generation it was built in.
static RUNTIME: parking_lot::Mutex<Option<(u64, Arc<tokio::runtime::Runtime>)>> =
    parking_lot::Mutex::new(None);

/// The fork generation of this process (0 until the first fork, in the child).
pub(crate) fn generation() -> u64 {
    GENERATION.load(Ordering::Acquire)
}

/// Called by `os.register_at_fork(after_in_child=...)`.
#[pyfunction]
pub(crate) fn after_fork_in_child() {
    GENERATION.fetch_add(1, Ordering::AcqRel);
    if let Some(mut guard) = RUNTIME.try_lock() {
        if let Some(old) = guard.take() {
            std::mem::forget(old);
        }
    } else {
        // A parent thread held the lock at the instant of the fork and will never release it
        // here: this process uses a runtime of its own from now on.
        FORKED_WHILE_LOCKED.store(true, Ordering::Release);
    }
}

/// Set when the fork happened while another thread held [`RUNTIME`]'s lock.
static FORKED_WHILE_LOCKED: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// The runtime of this process and generation, built on first use.
pub(crate) fn runtime() -> PyResult<Arc<tokio::runtime::Runtime>> {
    let generation = generation();
    if FORKED_WHILE_LOCKED.load(Ordering::Acquire) {
        return child_runtime();
    }
    let mut slot = RUNTIME.lock();
    if let Some((built_in, rt)) = slot.as_ref()
        && *built_in == generation
    {
        return Ok(Arc::clone(rt));
    }
    if let Some(old) = slot.take() {
        std::mem::forget(old);
    }
    let rt = build()?;
    *slot = Some((generation, Arc::clone(&rt)));
    Ok(rt)
}

/// A runtime kept apart from [`RUNTIME`] (whose lock a fork left held).
fn child_runtime() -> PyResult<Arc<tokio::runtime::Runtime>> {
    static CHILD: std::sync::OnceLock<Arc<tokio::runtime::Runtime>> = std::sync::OnceLock::new();
    if let Some(rt) = CHILD.get() {
        return Ok(Arc::clone(rt));
    }
    let rt = build()?;
    Ok(Arc::clone(CHILD.get_or_init(|| rt)))
}

fn build() -> PyResult<Arc<tokio::runtime::Runtime>> {
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get().clamp(1, 8));
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .thread_name("cx-runtime")
        .enable_all()
        .build()
        .map(Arc::new)
        .map_err(|e| PyRuntimeError::new_err(format!("cx: cannot start its runtime: {e}")))
}

/// Runs `future` to completion on the shared runtime with the GIL released. A panic (a bug)
/// comes back as a `CxError`, never as a crash or a `PanicException`.
pub(crate) fn block_on<F>(py: Python<'_>, future: F) -> PyResult<F::Output>
where
    F: Future + Send,
    F::Output: Send,
{
    let rt = runtime()?;
    py.detach(move || {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| rt.block_on(future)))
    })
    .map_err(|payload| crate::errors::from_panic(payload.as_ref()))
}
