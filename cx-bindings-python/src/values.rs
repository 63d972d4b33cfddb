//! Python values as `cx` values.

use cx::model::{Text, Timestamp, Value};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyFloat, PyInt, PyList, PyString, PyTuple};

/// A `datetime` as an instant: an aware one as it is, a naive one taken as UTC.
pub(crate) fn timestamp(value: &Bound<'_, PyAny>) -> Result<Timestamp, String> {
    if let Ok(t) = value.extract::<chrono::DateTime<chrono::FixedOffset>>() {
        return Ok(t.with_timezone(&chrono::Utc));
    }
    if let Ok(t) = value.extract::<chrono::NaiveDateTime>() {
        return Ok(t.and_utc());
    }
    // pandas.Timestamp and numpy.datetime64 convert through their own datetime.
    if value.hasattr("to_pydatetime").unwrap_or(false)
        && let Ok(dt) = value.call_method0("to_pydatetime")
    {
        return timestamp(&dt);
    }
    Err(format!("is a {}, not a datetime", type_name(value)))
}

fn type_name(value: &Bound<'_, PyAny>) -> String {
    value
        .get_type()
        .name()
        .map_or_else(|_| "value".to_owned(), |n| n.to_string())
}

/// A Python scalar, datetime or list as a value.
pub(crate) fn value(v: &Bound<'_, PyAny>) -> Result<Value, String> {
    if v.is_instance_of::<PyBool>() {
        return v
            .extract::<bool>()
            .map(Value::Bool)
            .map_err(|e| e.to_string());
    }
    if v.is_instance_of::<PyInt>() || v.is_instance_of::<PyFloat>() {
        let n: f64 = v.extract().map_err(|e: PyErr| e.to_string())?;
        if !n.is_finite() {
            return Err(format!("is {n}; numbers must be finite"));
        }
        return Ok(Value::Number(n));
    }
    if v.is_instance_of::<PyString>() {
        let s: String = v.extract().map_err(|e: PyErr| e.to_string())?;
        return Ok(Value::String(Text::from(s)));
    }
    if v.is_instance_of::<PyList>() || v.is_instance_of::<PyTuple>() {
        let mut items = Vec::new();
        for item in v.try_iter().map_err(|e| e.to_string())? {
            items.push(value(&item.map_err(|e| e.to_string())?)?);
        }
        return Ok(Value::List(items));
    }
    timestamp(v).map(Value::Timestamp).map_err(|_| {
        format!(
            "is a {}; values must be str, int, float, bool, datetime or a list of them",
            type_name(v)
        )
    })
}
