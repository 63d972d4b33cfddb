//! The exception hierarchy, and `cx::Error` mapped onto it.
//!
//! ```text
//! CxError (Exception)
//! ├── ValidationError (also ValueError)    invalid records, definitions, arguments
//! │   ├── RuleError                        a rule that does not compile: .item, .line, .column
//! │   └── ParseError                       a catalogue document that does not parse: .path
//! ├── NotFound (also LookupError)          .kind, .id
//! ├── ConflictError                        .kind, .id, .reason
//! └── StorageError                         .backend (file and connection errors too)
//! ```
//!
//! The classes are made at import with multiple bases (`type(name, bases, ns)`), so that
//! `except ValueError` catches a `ValidationError` as Python users expect.

use cx::Error;
use pyo3::exceptions::{PyException, PyLookupError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyTuple, PyType};

/// The exception classes of the `cx` module.
pub(crate) struct Classes {
    pub(crate) cx_error: Py<PyType>,
    pub(crate) validation: Py<PyType>,
    pub(crate) rule: Py<PyType>,
    pub(crate) parse: Py<PyType>,
    pub(crate) not_found: Py<PyType>,
    pub(crate) conflict: Py<PyType>,
    pub(crate) storage: Py<PyType>,
}

static CLASSES: PyOnceLock<Classes> = PyOnceLock::new();

/// The classes, made on first use.
pub(crate) fn classes(py: Python<'_>) -> PyResult<&Classes> {
    CLASSES.get_or_try_init(py, || make(py))
}

fn class(
    py: Python<'_>,
    name: &str,
    bases: &[&Bound<'_, PyType>],
    doc: &str,
) -> PyResult<Py<PyType>> {
    let namespace = PyDict::new(py);
    namespace.set_item("__module__", "cx")?;
    namespace.set_item("__doc__", doc)?;
    let bases = PyTuple::new(py, bases)?;
    let made = py
        .get_type::<PyType>()
        .call1((name, bases, namespace))?
        .cast_into::<PyType>()?;
    Ok(made.unbind())
}

fn make(py: Python<'_>) -> PyResult<Classes> {
    let exception = py.get_type::<PyException>();
    let value_error = py.get_type::<PyValueError>();
    let lookup_error = py.get_type::<PyLookupError>();
    let cx_error = class(
        py,
        "CxError",
        &[&exception],
        "The root of every error `cx` raises.",
    )?;
    let root = cx_error.bind(py).clone();
    let validation = class(
        py,
        "ValidationError",
        &[&root, &value_error],
        "A record, definition or argument is invalid.\n\nAttributes: `item` (what, with its id), \
         `field` (the dotted path that is wrong), `reason`.",
    )?;
    let rule = class(
        py,
        "RuleError",
        &[validation.bind(py)],
        "A rule does not compile.\n\nAttributes: `item` (`offer \"x\"`, `segment \"y\"`...), \
         `offer_id` (when the rule is an offer's), `line` and `column` (1-based), `message`.",
    )?;
    let parse = class(
        py,
        "ParseError",
        &[validation.bind(py)],
        "A catalogue document does not parse.\n\nAttributes: `source_name`, `format`, `path` \
         (where in the document), `message`.",
    )?;
    let not_found = class(
        py,
        "NotFound",
        &[&root, &lookup_error],
        "Something looked up does not exist.\n\nAttributes: `kind` (`customer`, `decision`, \
         `kpi`...), `id`.",
    )?;
    let conflict = class(
        py,
        "ConflictError",
        &[&root],
        "The request conflicts with what is stored.\n\nAttributes: `kind`, `id`, `reason`.",
    )?;
    let storage = class(
        py,
        "StorageError",
        &[&root],
        "The storage backend failed, or a file could not be read.\n\nAttributes: `backend` \
         (`memory`, `postgres`, or `file`).",
    )?;
    Ok(Classes {
        cx_error,
        validation,
        rule,
        parse,
        not_found,
        conflict,
        storage,
    })
}

/// Raises `class(message)` with `attributes` set on the instance.
fn raise(
    py: Python<'_>,
    class: &Py<PyType>,
    message: String,
    attributes: &[(&str, Py<PyAny>)],
) -> PyErr {
    let made = class.bind(py).call1((message,)).and_then(|instance| {
        for (name, value) in attributes {
            instance.setattr(*name, value.bind(py))?;
        }
        Ok(instance)
    });
    match made {
        Ok(instance) => PyErr::from_value(instance),
        Err(e) => e,
    }
}

fn str_obj(py: Python<'_>, s: &str) -> Py<PyAny> {
    pyo3::types::PyString::new(py, s).into_any().unbind()
}

fn int_obj(py: Python<'_>, n: u32) -> Py<PyAny> {
    n.into_pyobject(py)
        .map_or_else(|_| py.None(), |o| o.into_any().unbind())
}

/// The offer id inside an item name such as `offer "upgrade-l"`.
fn offer_of(item: &str) -> Option<&str> {
    let rest = item.strip_prefix("offer \"")?;
    rest.split('"').next()
}

/// `error` as the matching Python exception.
pub(crate) fn to_py(error: Error) -> PyErr {
    Python::attach(|py| {
        let classes = match classes(py) {
            Ok(c) => c,
            Err(e) => return e,
        };
        let message = error.to_string();
        match error {
            Error::Validation {
                item,
                field,
                reason,
            } => raise(
                py,
                &classes.validation,
                message,
                &[
                    ("item", str_obj(py, &item)),
                    ("field", str_obj(py, &field)),
                    ("reason", str_obj(py, &reason)),
                ],
            ),
            Error::InvalidRule {
                item,
                position,
                message: what,
            } => {
                let offer = offer_of(&item).map_or_else(|| py.None(), |o| str_obj(py, o));
                raise(
                    py,
                    &classes.rule,
                    message,
                    &[
                        ("item", str_obj(py, &item)),
                        ("offer_id", offer),
                        ("line", int_obj(py, position.line)),
                        ("column", int_obj(py, position.column)),
                        ("message", str_obj(py, &what)),
                    ],
                )
            }
            Error::Parse {
                source_name,
                format,
                path,
                message: what,
            } => raise(
                py,
                &classes.parse,
                message,
                &[
                    ("source_name", str_obj(py, &source_name)),
                    ("format", str_obj(py, format)),
                    ("path", str_obj(py, &path)),
                    ("message", str_obj(py, &what)),
                ],
            ),
            Error::NotFound { kind, id } => raise(
                py,
                &classes.not_found,
                message,
                &[("kind", str_obj(py, kind)), ("id", str_obj(py, &id))],
            ),
            Error::Conflict { kind, id, reason } => raise(
                py,
                &classes.conflict,
                message,
                &[
                    ("kind", str_obj(py, kind)),
                    ("id", str_obj(py, &id)),
                    ("reason", str_obj(py, &reason)),
                ],
            ),
            Error::Storage { backend, .. } => raise(
                py,
                &classes.storage,
                message,
                &[("backend", str_obj(py, backend))],
            ),
            Error::Io { .. } => raise(
                py,
                &classes.storage,
                message,
                &[("backend", str_obj(py, "file"))],
            ),
            // A variant added later: still a CxError, never a crash.
            _ => raise(py, &classes.cx_error, message, &[]),
        }
    })
}

/// A `ValidationError` about an argument or a column of a table.
pub(crate) fn invalid(item: &str, field: &str, reason: impl Into<String>) -> PyErr {
    to_py(Error::validation(item, field, reason))
}

/// Converts a `cx::Result`.
pub(crate) trait OrRaise<T> {
    /// The value, or the error as its Python exception.
    fn or_raise(self) -> PyResult<T>;
}

impl<T> OrRaise<T> for cx::Result<T> {
    fn or_raise(self) -> PyResult<T> {
        self.map_err(to_py)
    }
}

/// A Rust panic caught at the boundary, as a `CxError` (the interpreter keeps running).
pub(crate) fn from_panic(payload: &(dyn std::any::Any + Send)) -> PyErr {
    let what = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_owned());
    Python::attach(|py| match classes(py) {
        Ok(c) => raise(
            py,
            &c.cx_error,
            format!("internal error in cx (a bug; please report it): {what}"),
            &[],
        ),
        Err(_) => PyRuntimeError::new_err(what),
    })
}
