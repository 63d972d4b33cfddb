//! Python bindings for `cx`, built with maturin and imported as `cx` (the native part is
//! `cx._native`).
//!
//! This crate is the skeleton the bindings grow from: the module exposes the library version
//! only. The engine API (`cx.Engine`, DataFrames in and out, the exception hierarchy) is not
//! bound yet.
#![warn(missing_docs)]
#![warn(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::print_stdout
)]

use pyo3::prelude::*;

/// The native module `cx._native`.
#[pymodule]
mod _native {
    /// The version of the `cx` library this module was built from.
    // Python's name for a module's version.
    #[allow(non_upper_case_globals)]
    #[pymodule_export]
    const __version__: &str = env!("CARGO_PKG_VERSION");
}
