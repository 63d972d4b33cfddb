//! Tables across the boundary, through Arrow.
//!
//! In: anything with `__arrow_c_stream__` (pandas ≥ 2.2, pyarrow, polars, duckdb...) is read
//! through the Arrow PyCapsule interface, without a Python loop; a list of dicts goes through
//! `pyarrow.Table.from_pylist` first. Out: Arrow record batches, handed to pyarrow and turned
//! into a pandas DataFrame.
//!
//! Columns are matched by name. Reserved columns carry the record's fields; every other column
//! is an attribute (a null cell: no such attribute on that row). Attribute columns map by Arrow
//! type: strings (and dictionaries of strings, such as pandas categoricals) to strings, every
//! integer, float and decimal type to numbers, booleans to booleans, timestamps and dates to
//! instants (naive timestamps are taken as UTC), lists to lists.

use crate::errors::invalid;
use arrow_array::builder::{
    BooleanBuilder, Float64Builder, Int64Builder, ListBuilder, StringBuilder,
    TimestampMicrosecondBuilder,
};
use arrow_array::cast::AsArray;
use arrow_array::types::TimestampMicrosecondType;
use arrow_array::{
    Array, ArrayRef, BooleanArray, Float64Array, GenericListArray, RecordBatch, StringArray,
    StructArray, TimestampMicrosecondArray,
};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use cx::model::{
    Attributes, Channel, Consent, ConsentStatus, Customer, CustomerId, Identity, IdentityKind,
    Kind, Name, Purpose, Scale, Subject, SurveyAnswer, Text, Timestamp, Touchpoint, Value,
};
use pyo3::prelude::*;
use pyo3::types::PyList;
use pyo3_arrow::PyTable;
use std::sync::Arc;

/// The batches of a table-like Python object.
pub(crate) fn read_batches(py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<Vec<RecordBatch>> {
    let data = if data.is_instance_of::<PyList>() {
        if data.len()? == 0 {
            return Ok(Vec::new());
        }
        // `pa.array` infers one struct type over every row (`Table.from_pylist` would read
        // the columns off the first row only and drop keys that appear later).
        let pa = py.import("pyarrow")?;
        let rows = pa.call_method1("array", (data,)).map_err(|e| {
            invalid(
                "table",
                "data",
                format!("is a list that is not a list of records: {e}"),
            )
        })?;
        let is_struct = pa
            .getattr("types")?
            .call_method1("is_struct", (rows.getattr("type")?,))?;
        if !is_struct.is_truthy()? {
            return Err(invalid("table", "data", "must be a list of dicts"));
        }
        let batch = pa
            .getattr("RecordBatch")?
            .call_method1("from_struct_array", (rows,))?;
        pa.getattr("Table")?
            .call_method1("from_batches", (vec![batch],))?
    } else if !data.hasattr("__arrow_c_stream__")? && data.hasattr("to_arrow")? {
        data.call_method0("to_arrow")?
    } else {
        data.clone()
    };
    if !data.hasattr("__arrow_c_stream__")? {
        return Err(invalid(
            "table",
            "data",
            format!(
                "must be a pandas, pyarrow or polars table or a list of dicts, got {}",
                data.get_type().name()?
            ),
        ));
    }
    let table: PyTable = data.extract()?;
    let (batches, _schema) = table.into_inner();
    Ok(batches)
}

/// A column, with its values in one of the shapes records are built from.
enum Column {
    Str(StringArray),
    Num(Float64Array),
    Bool(BooleanArray),
    Time(TimestampMicrosecondArray),
    List(GenericListArray<i32>, Box<Column>),
    /// Every cell null.
    Null,
    /// Records (a struct column): only reserved columns hold them.
    Records,
}

impl Column {
    /// `array` in the shape for its type; `name` is for errors.
    fn of(name: &str, array: &ArrayRef) -> PyResult<Column> {
        let cast = |to: &DataType| {
            arrow_cast::cast(array, to).map_err(|e| {
                invalid(
                    "table",
                    name,
                    format!(
                        "cannot be read as {to}: {e} (its type is {})",
                        array.data_type()
                    ),
                )
            })
        };
        Ok(match array.data_type() {
            DataType::Null => Column::Null,
            DataType::Struct(_) => Column::Records,
            DataType::Utf8 => Column::Str(array.as_string::<i32>().clone()),
            DataType::LargeUtf8 | DataType::Utf8View | DataType::Dictionary(_, _) => {
                Column::Str(cast(&DataType::Utf8)?.as_string::<i32>().clone())
            }
            DataType::Boolean => Column::Bool(array.as_boolean().clone()),
            t if t.is_numeric() => Column::Num(
                cast(&DataType::Float64)?
                    .as_primitive::<arrow_array::types::Float64Type>()
                    .clone(),
            ),
            DataType::Timestamp(_, tz) => {
                // Same zone, finer unit: the stored values stay instants since the epoch (UTC).
                let to = DataType::Timestamp(TimeUnit::Microsecond, tz.clone());
                Column::Time(
                    cast(&to)?
                        .as_primitive::<TimestampMicrosecondType>()
                        .clone(),
                )
            }
            DataType::Date32 | DataType::Date64 => Column::Time(
                cast(&DataType::Timestamp(TimeUnit::Microsecond, None))?
                    .as_primitive::<TimestampMicrosecondType>()
                    .clone(),
            ),
            DataType::List(_) | DataType::LargeList(_) | DataType::FixedSizeList(_, _) => {
                let list = match array.data_type() {
                    DataType::List(_) => array.as_list::<i32>().clone(),
                    other => {
                        let field = match other {
                            DataType::LargeList(f) | DataType::FixedSizeList(f, _) => f.clone(),
                            _ => Arc::new(Field::new("item", DataType::Null, true)),
                        };
                        cast(&DataType::List(field))?.as_list::<i32>().clone()
                    }
                };
                let values = Column::of(name, list.values())?;
                Column::List(list, Box::new(values))
            }
            other => {
                return Err(invalid(
                    "table",
                    name,
                    format!(
                        "has type {other}, which cx cannot store (use strings, numbers, booleans, \
                         timestamps or lists of them)"
                    ),
                ));
            }
        })
    }

    /// The value at `row`, if any; an error says why a value cannot be stored.
    fn value(&self, row: usize) -> Result<Option<Value>, String> {
        Ok(match self {
            Column::Null | Column::Records => None,
            Column::Str(a) => a
                .is_valid(row)
                .then(|| Value::String(Text::from(a.value(row)))),
            Column::Num(a) => a.is_valid(row).then(|| Value::Number(a.value(row))),
            Column::Bool(a) => a.is_valid(row).then(|| Value::Bool(a.value(row))),
            Column::Time(a) => {
                if !a.is_valid(row) {
                    return Ok(None);
                }
                let us = a.value(row);
                let at = micros(us).ok_or_else(|| {
                    format!(
                        "holds {us} microseconds since 1970, an instant out of the range cx \
                         stores"
                    )
                })?;
                Some(Value::Timestamp(at))
            }
            Column::List(list, values) => {
                if !list.is_valid(row) {
                    return Ok(None);
                }
                let offsets = list.value_offsets();
                let (Some(start), Some(end)) = (offsets.get(row), offsets.get(row + 1)) else {
                    return Ok(None);
                };
                let range =
                    usize::try_from(*start).unwrap_or(0)..usize::try_from(*end).unwrap_or(0);
                let items = range
                    .filter_map(|i| values.value(i).transpose())
                    .collect::<Result<Vec<_>, _>>()?;
                Some(Value::List(items))
            }
        })
    }

    /// Calls `f` with each row below `rows` that has a value, in row order, until it fails.
    fn each_valid<E>(&self, rows: usize, f: impl FnMut(usize) -> Result<(), E>) -> Result<(), E> {
        let nulls = match self {
            Column::Null | Column::Records => return Ok(()),
            Column::Str(a) => a.nulls(),
            Column::Num(a) => a.nulls(),
            Column::Bool(a) => a.nulls(),
            Column::Time(a) => a.nulls(),
            Column::List(list, _) => list.nulls(),
        };
        match nulls {
            Some(nulls) => nulls.valid_indices().try_for_each(f),
            None => (0..rows).try_for_each(f),
        }
    }

    /// Calls `f` with each row below `rows` that has a value, and the value, in row order;
    /// stops at the first value that cannot be stored, with its row and why.
    fn each_value(
        &self,
        rows: usize,
        mut f: impl FnMut(usize, Value),
    ) -> Result<(), (usize, String)> {
        self.each_valid(rows, |row| {
            if let Some(value) = self.value(row).map_err(|reason| (row, reason))? {
                f(row, value);
            }
            Ok(())
        })
    }

    /// Whether records (structs) are in the column, at any depth.
    fn holds_records(&self) -> bool {
        match self {
            Column::Records => true,
            Column::List(_, values) => values.holds_records(),
            _ => false,
        }
    }

    /// The string at `row`, for a reserved string column.
    fn str_at(&self, row: usize) -> Option<&str> {
        match self {
            Column::Str(a) if a.is_valid(row) => Some(a.value(row)),
            _ => None,
        }
    }

    fn num_at(&self, row: usize) -> Option<f64> {
        match self {
            Column::Num(a) if a.is_valid(row) => Some(a.value(row)),
            _ => None,
        }
    }

    /// An instant at `row`: a timestamp, or an RFC 3339 string.
    fn time_at(&self, row: usize) -> Result<Option<Timestamp>, String> {
        match self {
            Column::Time(a) if a.is_valid(row) => micros(a.value(row))
                .map(Some)
                .ok_or_else(|| "is out of range".to_owned()),
            Column::Str(a) if a.is_valid(row) => {
                let text = a.value(row);
                chrono::DateTime::parse_from_rfc3339(text)
                    .map(|t| Some(t.with_timezone(&chrono::Utc)))
                    .map_err(|e| format!("is {text:?}, not an RFC 3339 instant: {e}"))
            }
            _ => Ok(None),
        }
    }

    fn expect_kind(self, name: &str, what: &str, ok: bool) -> PyResult<Column> {
        if ok || matches!(self, Column::Null) {
            Ok(self)
        } else {
            Err(invalid("table", name, format!("must hold {what}")))
        }
    }
}

fn micros(us: i64) -> Option<Timestamp> {
    Timestamp::from_timestamp_micros(us)
}

/// The columns of one batch, reserved ones taken out by name.
struct Columns {
    reserved: Vec<(&'static str, Column)>,
    attributes: Vec<(Name, Column)>,
}

impl Columns {
    fn of(batch: &RecordBatch, reserved_names: &[&'static str]) -> PyResult<Columns> {
        let mut reserved = Vec::new();
        let mut attributes = Vec::new();
        for (field, array) in batch.schema().fields().iter().zip(batch.columns()) {
            let name = field.name().as_str();
            // pandas writes its index as a column when it is not a plain range.
            if name.starts_with("__index_level_") {
                continue;
            }
            let column = Column::of(name, array)?;
            match reserved_names.iter().find(|r| **r == name) {
                Some(r) => reserved.push((*r, column)),
                None => {
                    if let Column::Records | Column::List(_, _) = &column
                        && column.holds_records()
                    {
                        return Err(invalid(
                            "table",
                            name,
                            "holds records (structs); attribute values are strings, numbers, \
                             booleans, timestamps or lists of them",
                        ));
                    }
                    attributes.push((Name::from(name), column));
                }
            }
        }
        // In name order, which attributes are kept in (stable: of two columns with one name,
        // the later one's value wins, as it always has).
        attributes.sort_by(|a: &(Name, Column), b| a.0.cmp(&b.0));
        Ok(Columns {
            reserved,
            attributes,
        })
    }

    fn take(&mut self, name: &str) -> Option<Column> {
        let at = self.reserved.iter().position(|(n, _)| *n == name)?;
        Some(self.reserved.swap_remove(at).1)
    }

    fn take_str(&mut self, name: &str) -> PyResult<Option<Column>> {
        self.take(name)
            .map(|c| {
                let ok = matches!(c, Column::Str(_));
                c.expect_kind(name, "strings", ok)
            })
            .transpose()
    }

    fn take_num(&mut self, name: &str) -> PyResult<Option<Column>> {
        self.take(name)
            .map(|c| {
                let ok = matches!(c, Column::Num(_));
                c.expect_kind(name, "numbers", ok)
            })
            .transpose()
    }

    fn take_time(&mut self, name: &str) -> PyResult<Option<Column>> {
        self.take(name)
            .map(|c| {
                let ok = matches!(c, Column::Time(_) | Column::Str(_));
                c.expect_kind(name, "timestamps (or RFC 3339 strings)", ok)
            })
            .transpose()
    }

    /// The attributes of each of the first `rows` rows, built a column at a time: a column's
    /// validity bitmap skips its null rows 64 at a time (most attribute cells are null: each
    /// kind of event has its own). The values are counted per row first, then placed in one
    /// buffer, row after row, so that each row's attributes are allocated once, at their
    /// size; the columns being in name order, each row's come out sorted.
    /// `table` and `first_row` (the number of this batch's first row) are for errors.
    fn attributes(&self, rows: usize, table: &str, first_row: usize) -> PyResult<Vec<Attributes>> {
        // Where each row's values start in the buffer (and, last, where they all end).
        let mut starts = vec![0usize; rows + 1];
        for (_, column) in &self.attributes {
            let Ok(()) = column.each_valid(rows, |row| {
                if let Some(n) = starts.get_mut(row + 1) {
                    *n += 1;
                }
                Ok::<(), std::convert::Infallible>(())
            });
        }
        for row in 0..rows {
            let before = starts.get(row).copied().unwrap_or(0);
            if let Some(start) = starts.get_mut(row + 1) {
                *start += before;
            }
        }
        let mut cells: Vec<Option<(Name, Value)>> = Vec::new();
        cells.resize_with(starts.last().copied().unwrap_or(0), || None);
        let mut next = starts.clone();
        for (name, column) in &self.attributes {
            column
                .each_value(rows, |row, value| {
                    if let Some(at) = next.get_mut(row)
                        && let Some(cell) = cells.get_mut(*at)
                    {
                        *cell = Some((name.clone(), value));
                        *at += 1;
                    }
                })
                .map_err(|(row, reason)| {
                    invalid(
                        table,
                        name.as_str(),
                        format!("{reason} (row {})", first_row + row),
                    )
                })?;
        }
        Ok(starts
            .windows(2)
            .map(|span| {
                let (start, end) = (span.first().copied(), span.get(1).copied());
                let row = cells
                    .get_mut(start.unwrap_or(0)..end.unwrap_or(0))
                    .unwrap_or_default();
                // An iterator that knows its length lets the attributes be allocated once.
                // Every cell of the row was filled above (the other branch is only a guard).
                if row.iter().all(Option::is_some) {
                    row.iter_mut()
                        .map(|cell| {
                            cell.take()
                                .unwrap_or_else(|| (Name::default(), Value::Bool(false)))
                        })
                        .collect()
                } else {
                    row.iter_mut().filter_map(Option::take).collect()
                }
            })
            .collect())
    }
}

fn missing(what: &str, row: usize, column: &str) -> PyErr {
    invalid(
        &format!("{what} table"),
        column,
        format!("is missing (row {row})"),
    )
}

/// The reserved columns of a touchpoints table.
pub(crate) const TOUCHPOINT_COLUMNS: [&str; 11] = [
    "id",
    "customer_id",
    "identity_kind",
    "identity_value",
    "channel",
    "kind",
    "occurred_at",
    "source",
    "survey_question",
    "survey_score",
    "survey_scale_min",
];
const SURVEY_SCALE_MAX: &str = "survey_scale_max";

/// Touchpoints from one batch, appended to `out` (where the caller collects them, so that
/// each is moved once). Rows are numbered from `first_row` in errors.
pub(crate) fn touchpoints(
    batch: &RecordBatch,
    first_row: usize,
    out: &mut Vec<Touchpoint>,
) -> PyResult<()> {
    let mut reserved: Vec<&'static str> = TOUCHPOINT_COLUMNS.to_vec();
    reserved.push(SURVEY_SCALE_MAX);
    let mut cols = Columns::of(batch, &reserved)?;
    let need = |c: Option<Column>, name: &str| {
        c.ok_or_else(|| invalid("touchpoints table", name, "is a required column"))
    };
    let id = need(cols.take_str("id")?, "id")?;
    let channel = need(cols.take_str("channel")?, "channel")?;
    let kind = need(cols.take_str("kind")?, "kind")?;
    let occurred_at = need(cols.take_time("occurred_at")?, "occurred_at")?;
    let customer = cols.take_str("customer_id")?;
    let identity_kind = cols.take_str("identity_kind")?;
    let identity_value = cols.take_str("identity_value")?;
    if customer.is_none() && identity_value.is_none() {
        return Err(invalid(
            "touchpoints table",
            "customer_id",
            "is a required column (or identity_kind and identity_value)",
        ));
    }
    let source = cols.take_str("source")?;
    let question = cols.take_str("survey_question")?;
    let score = cols.take_num("survey_score")?;
    let scale_min = cols.take_num("survey_scale_min")?;
    let scale_max = cols.take_num(SURVEY_SCALE_MAX)?;

    out.reserve(batch.num_rows());
    let attributes = cols.attributes(batch.num_rows(), "touchpoints table", first_row)?;
    for (row, attributes) in attributes.into_iter().enumerate() {
        let at = first_row + row;
        let subject = match customer.as_ref().and_then(|c| c.str_at(row)) {
            Some(id) => Subject::Customer(CustomerId::from(id)),
            None => {
                let value = identity_value
                    .as_ref()
                    .and_then(|c| c.str_at(row))
                    .ok_or_else(|| missing("touchpoints", at, "customer_id"))?;
                let kind = identity_kind
                    .as_ref()
                    .and_then(|c| c.str_at(row))
                    .ok_or_else(|| missing("touchpoints", at, "identity_kind"))?;
                Subject::Identity(Identity::new(identity_kind_of(kind), value))
            }
        };
        let occurred = occurred_at
            .time_at(row)
            .map_err(|reason| {
                invalid(
                    "touchpoints table",
                    "occurred_at",
                    format!("{reason} (row {at})"),
                )
            })?
            .ok_or_else(|| missing("touchpoints", at, "occurred_at"))?;
        let mut t = Touchpoint::new(
            id.str_at(row)
                .ok_or_else(|| missing("touchpoints", at, "id"))?,
            subject,
            Channel::parse(
                channel
                    .str_at(row)
                    .ok_or_else(|| missing("touchpoints", at, "channel"))?,
            ),
            Kind::from(
                kind.str_at(row)
                    .ok_or_else(|| missing("touchpoints", at, "kind"))?,
            ),
            occurred,
        );
        t.attributes = attributes;
        if let Some(s) = source.as_ref().and_then(|c| c.str_at(row)) {
            t.source = Some(Text::from(s));
        }
        if let Some(q) = question.as_ref().and_then(|c| c.str_at(row)) {
            let num = |c: &Option<Column>, name: &str| {
                c.as_ref()
                    .and_then(|c| c.num_at(row))
                    .ok_or_else(|| missing("touchpoints", at, name))
            };
            let scale = Scale::new(
                num(&scale_min, "survey_scale_min")?,
                num(&scale_max, SURVEY_SCALE_MAX)?,
            );
            t.survey = Some(SurveyAnswer::new(q, num(&score, "survey_score")?, scale));
        }
        out.push(t);
    }
    Ok(())
}

fn identity_kind_of(name: &str) -> IdentityKind {
    match name {
        "email" => IdentityKind::Email,
        "phone" => IdentityKind::Phone,
        "device" => IdentityKind::Device,
        "cookie" => IdentityKind::Cookie,
        "account" => IdentityKind::Account,
        other => IdentityKind::Other(Text::from(other)),
    }
}

/// Customers from one batch: `id`, optional `identities` (list of {kind, value}), `consents`
/// (list of {channel, purpose, status, since, expires_at}) and `pii` (list of attribute names);
/// every other column is an attribute.
pub(crate) fn customers(batch: &RecordBatch, first_row: usize) -> PyResult<Vec<Customer>> {
    let mut cols = Columns::of(batch, &["id", "identities", "consents", "pii"])?;
    let id = cols
        .take_str("id")?
        .ok_or_else(|| invalid("customers table", "id", "is a required column"))?;
    let identities = cols.take("identities");
    let consents = cols.take("consents");
    let pii = cols.take("pii");
    let structs = |name: &str, c: &Option<Column>| -> PyResult<Option<StructArray>> {
        match c {
            None | Some(Column::Null) => Ok(None),
            Some(Column::List(list, _)) => match list.values().as_struct_opt() {
                Some(s) => Ok(Some(s.clone())),
                None => Err(invalid(
                    "customers table",
                    name,
                    "must hold lists of records",
                )),
            },
            Some(_) => Err(invalid(
                "customers table",
                name,
                "must hold lists of records",
            )),
        }
    };
    let identity_rows = structs("identities", &identities)?;
    let consent_rows = structs("consents", &consents)?;
    let identity_fields = identity_rows
        .as_ref()
        .map(|s| fields(s, "identities", &["kind", "value"], &[]))
        .transpose()?;
    let consent_fields = consent_rows
        .as_ref()
        .map(|s| {
            fields(
                s,
                "consents",
                &["channel", "purpose", "status", "since"],
                &["expires_at"],
            )
        })
        .transpose()?;

    let mut out = Vec::with_capacity(batch.num_rows());
    let attributes = cols.attributes(batch.num_rows(), "customers table", first_row)?;
    for (row, attributes) in attributes.into_iter().enumerate() {
        let at = first_row + row;
        let mut customer = Customer::new(
            id.str_at(row)
                .ok_or_else(|| missing("customers", at, "id"))?,
        );
        customer.attributes = attributes;
        if let (Some(Column::List(list, _)), Some(f)) = (&identities, &identity_fields) {
            for i in list_range(list, row) {
                let get = |k: usize| f.get(k).and_then(|c| c.as_ref()).and_then(|c| c.str_at(i));
                let (Some(kind), Some(value)) = (get(0), get(1)) else {
                    return Err(missing("customers", at, "identities[].kind/value"));
                };
                customer
                    .identities
                    .push(Identity::new(identity_kind_of(kind), value));
            }
        }
        if let (Some(Column::List(list, _)), Some(f)) = (&consents, &consent_fields) {
            for i in list_range(list, row) {
                let text = |k: usize| f.get(k).and_then(|c| c.as_ref()).and_then(|c| c.str_at(i));
                let time = |k: usize, name: &str| -> PyResult<Option<Timestamp>> {
                    match f.get(k).and_then(|c| c.as_ref()) {
                        Some(c) => c.time_at(i).map_err(|reason| {
                            invalid(
                                "customers table",
                                &format!("consents[].{name}"),
                                format!("{reason} (row {at})"),
                            )
                        }),
                        None => Ok(None),
                    }
                };
                let (Some(channel), Some(purpose), Some(status)) = (text(0), text(1), text(2))
                else {
                    return Err(missing(
                        "customers",
                        at,
                        "consents[].channel/purpose/status",
                    ));
                };
                let status = match status {
                    "granted" => ConsentStatus::Granted,
                    "denied" => ConsentStatus::Denied,
                    "revoked" => ConsentStatus::Revoked,
                    other => {
                        return Err(invalid(
                            "customers table",
                            "consents[].status",
                            format!(
                                "is {other:?} (row {at}); it must be granted, denied or revoked"
                            ),
                        ));
                    }
                };
                let since = time(3, "since")?
                    .ok_or_else(|| missing("customers", at, "consents[].since"))?;
                let mut consent =
                    Consent::granted(Channel::parse(channel), Purpose::from(purpose), since);
                consent.status = status;
                consent.expires_at = time(4, "expires_at")?;
                customer.consents.push(consent);
            }
        }
        if let Some(Column::List(list, values)) = &pii {
            for i in list_range(list, row) {
                if let Some(name) = values.str_at(i) {
                    customer.pii.push(Name::from(name));
                }
            }
        }
        out.push(customer);
    }
    Ok(out)
}

/// The child columns `required` then `optional` of a struct column.
fn fields(
    array: &StructArray,
    column: &str,
    required: &[&str],
    optional: &[&str],
) -> PyResult<Vec<Option<Column>>> {
    let mut out = Vec::new();
    for (i, name) in required.iter().chain(optional).enumerate() {
        let path = format!("{column}[].{name}");
        match array.column_by_name(name) {
            Some(child) => out.push(Some(Column::of(&path, child)?)),
            None if i < required.len() => {
                return Err(invalid("customers table", &path, "is a required field"));
            }
            None => out.push(None),
        }
    }
    Ok(out)
}

fn list_range(list: &GenericListArray<i32>, row: usize) -> std::ops::Range<usize> {
    if !list.is_valid(row) {
        return 0..0;
    }
    let offsets = list.value_offsets();
    let start = offsets.get(row).and_then(|o| usize::try_from(*o).ok());
    let end = offsets.get(row + 1).and_then(|o| usize::try_from(*o).ok());
    match (start, end) {
        (Some(s), Some(e)) if s <= e => s..e,
        _ => 0..0,
    }
}

// ---------------------------------------------------------------------------------------------
// Out.

/// Builds a column cell by cell.
pub(crate) enum Builder {
    Str(StringBuilder),
    Num(Float64Builder),
    Bool(BooleanBuilder),
    Time(TimestampMicrosecondBuilder),
    Strs(ListBuilder<StringBuilder>),
    Int(Int64Builder),
}

impl Builder {
    pub(crate) fn str() -> Builder {
        Builder::Str(StringBuilder::new())
    }
    pub(crate) fn num() -> Builder {
        Builder::Num(Float64Builder::new())
    }
    pub(crate) fn bool() -> Builder {
        Builder::Bool(BooleanBuilder::new())
    }
    pub(crate) fn int() -> Builder {
        Builder::Int(Int64Builder::new())
    }
    /// A string column with room for `rows` values of `bytes` bytes in all.
    pub(crate) fn str_with(rows: usize, bytes: usize) -> Builder {
        Builder::Str(StringBuilder::with_capacity(rows, bytes))
    }
    /// A number column with room for `rows` values.
    pub(crate) fn num_with(rows: usize) -> Builder {
        Builder::Num(Float64Builder::with_capacity(rows))
    }
    /// An integer column with room for `rows` values.
    pub(crate) fn int_with(rows: usize) -> Builder {
        Builder::Int(Int64Builder::with_capacity(rows))
    }
    pub(crate) fn time() -> Builder {
        Builder::Time(TimestampMicrosecondBuilder::new().with_timezone("UTC"))
    }

    pub(crate) fn push_str(&mut self, v: Option<&str>) {
        if let Builder::Str(b) = self {
            b.append_option(v);
        }
    }
    pub(crate) fn push_num(&mut self, v: Option<f64>) {
        if let Builder::Num(b) = self {
            b.append_option(v);
        }
    }
    pub(crate) fn push_int(&mut self, v: Option<u64>) {
        if let Builder::Int(b) = self {
            b.append_option(v.and_then(|n| i64::try_from(n).ok()));
        }
    }
    pub(crate) fn push_time(&mut self, v: Option<Timestamp>) {
        if let Builder::Time(b) = self {
            b.append_option(v.map(|t| t.timestamp_micros()));
        }
    }

    /// Appends `value` (the builder was made for its type by [`Builder::for_values`]).
    fn push_value(&mut self, value: Option<&Value>) {
        match (self, value) {
            (Builder::Str(b), Some(Value::String(s))) => b.append_value(s),
            (Builder::Str(b), Some(other)) => b.append_value(display(other)),
            (Builder::Num(b), Some(Value::Number(n))) => b.append_value(*n),
            (Builder::Bool(b), Some(Value::Bool(v))) => b.append_value(*v),
            (Builder::Time(b), Some(Value::Timestamp(t))) => b.append_value(t.timestamp_micros()),
            (Builder::Strs(b), Some(Value::List(items))) => {
                for item in items {
                    match item {
                        Value::String(s) => b.values().append_value(s),
                        other => b.values().append_value(display(other)),
                    }
                }
                b.append(true);
            }
            (Builder::Str(b), None) => b.append_null(),
            (Builder::Num(b), _) => b.append_null(),
            (Builder::Bool(b), _) => b.append_null(),
            (Builder::Time(b), _) => b.append_null(),
            (Builder::Strs(b), _) => b.append(false),
            (Builder::Int(b), _) => b.append_null(),
        }
    }

    /// A builder for values of kind `kind` (see [`kind_of`]).
    fn for_kind(kind: u8) -> Builder {
        match kind {
            1 => Builder::num(),
            2 => Builder::bool(),
            3 => Builder::time(),
            4 => Builder::Strs(ListBuilder::new(StringBuilder::new())),
            _ => Builder::str(),
        }
    }

    pub(crate) fn finish(self) -> ArrayRef {
        match self {
            Builder::Str(mut b) => Arc::new(b.finish()),
            Builder::Num(mut b) => Arc::new(b.finish()),
            Builder::Bool(mut b) => Arc::new(b.finish()),
            Builder::Time(mut b) => Arc::new(b.finish()),
            Builder::Strs(mut b) => Arc::new(b.finish()),
            Builder::Int(mut b) => Arc::new(b.finish()),
        }
    }
}

/// The kind of a value, for the type of its column: 0 string, 1 number, 2 bool, 3 instant,
/// 4 list.
fn kind_of(value: &Value) -> u8 {
    match value {
        Value::String(_) => 0,
        Value::Number(_) => 1,
        Value::Bool(_) => 2,
        Value::Timestamp(_) => 3,
        Value::List(_) => 4,
    }
}

/// A value as text (lists of mixed values, attribute columns of mixed types).
fn display(value: &Value) -> String {
    match value {
        Value::String(s) => s.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Timestamp(t) => t.to_rfc3339(),
        Value::List(items) => {
            let items: Vec<String> = items.iter().map(display).collect();
            format!("[{}]", items.join(", "))
        }
    }
}

/// A table under construction: named columns.
#[derive(Default)]
pub(crate) struct TableBuilder {
    columns: Vec<(String, ArrayRef)>,
}

impl TableBuilder {
    pub(crate) fn column(&mut self, name: &str, builder: Builder) {
        self.columns.push((name.to_owned(), builder.finish()));
    }

    /// One column per attribute name seen in `rows`, in order of first appearance. Two passes
    /// over the rows, each visiting every attribute once.
    pub(crate) fn attributes<'a>(&mut self, rows: impl Iterator<Item = &'a Attributes> + Clone) {
        // Pass 1: the names, in order, and the values' common type per name.
        let mut index: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
        let mut kinds: Vec<(&str, Option<u8>)> = Vec::new();
        for attributes in rows.clone() {
            for (name, value) in attributes.iter() {
                let slot = *index.entry(name.as_str()).or_insert_with(|| {
                    kinds.push((name.as_str(), None));
                    kinds.len() - 1
                });
                if let Some((_, kind)) = kinds.get_mut(slot) {
                    let this = kind_of(value);
                    *kind = match *kind {
                        None => Some(this),
                        Some(k) if k == this => Some(k),
                        // Mixed types: strings.
                        Some(_) => Some(0),
                    };
                }
            }
        }
        let mut builders: Vec<Builder> = kinds
            .iter()
            .map(|(_, kind)| Builder::for_kind(kind.unwrap_or(0)))
            .collect();
        // Pass 2: one cell per column per row.
        let mut cells: Vec<Option<&Value>> = vec![None; builders.len()];
        for attributes in rows {
            cells.iter_mut().for_each(|c| *c = None);
            for (name, value) in attributes.iter() {
                if let Some(cell) = index.get(name.as_str()).and_then(|&i| cells.get_mut(i)) {
                    *cell = Some(value);
                }
            }
            for (builder, cell) in builders.iter_mut().zip(&cells) {
                builder.push_value(*cell);
            }
        }
        for ((name, _), builder) in kinds.into_iter().zip(builders) {
            if self.columns.iter().any(|(n, _)| n == name) {
                continue;
            }
            self.column(name, builder);
        }
    }

    pub(crate) fn finish(self) -> PyResult<RecordBatch> {
        let fields: Vec<Field> = self
            .columns
            .iter()
            .map(|(name, array)| Field::new(name, array.data_type().clone(), true))
            .collect();
        let arrays = self.columns.into_iter().map(|(_, a)| a).collect();
        RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)
            .map_err(|e| pyo3::exceptions::PyRuntimeError::new_err(format!("cx: {e}")))
    }
}

/// A table with a fixed schema, written row by row: each row writes its cells in column order.
pub(crate) struct Rows {
    names: Vec<&'static str>,
    builders: Vec<Builder>,
}

impl Rows {
    /// Empty columns, named and typed.
    pub(crate) fn new(columns: Vec<(&'static str, Builder)>) -> Rows {
        let (names, builders) = columns.into_iter().unzip();
        Rows { names, builders }
    }

    /// The next row; write every cell, in column order.
    pub(crate) fn row(&mut self) -> Row<'_> {
        Row(self.builders.iter_mut())
    }

    /// The columns, to add more (attributes) before finishing.
    pub(crate) fn into_table(self) -> TableBuilder {
        let mut table = TableBuilder::default();
        for (name, builder) in self.names.into_iter().zip(self.builders) {
            table.column(name, builder);
        }
        table
    }

    pub(crate) fn finish(self) -> PyResult<RecordBatch> {
        self.into_table().finish()
    }
}

/// One row of [`Rows`] being written.
pub(crate) struct Row<'a>(std::slice::IterMut<'a, Builder>);

impl Row<'_> {
    pub(crate) fn str(mut self, v: Option<&str>) -> Self {
        if let Some(b) = self.0.next() {
            b.push_str(v);
        }
        self
    }
    pub(crate) fn num(mut self, v: Option<f64>) -> Self {
        if let Some(b) = self.0.next() {
            b.push_num(v);
        }
        self
    }
    pub(crate) fn int(mut self, v: Option<u64>) -> Self {
        if let Some(b) = self.0.next() {
            b.push_int(v);
        }
        self
    }
    pub(crate) fn time(mut self, v: Option<Timestamp>) -> Self {
        if let Some(b) = self.0.next() {
            b.push_time(v);
        }
        self
    }
}

/// `batch` as a pandas DataFrame.
pub(crate) fn to_pandas(py: Python<'_>, batch: RecordBatch) -> PyResult<Py<PyAny>> {
    batches_to_pandas(py, vec![batch])
}

/// `batches` (of one schema; at least one) as one pandas DataFrame, their rows in order.
pub(crate) fn batches_to_pandas(py: Python<'_>, batches: Vec<RecordBatch>) -> PyResult<Py<PyAny>> {
    let Some(schema) = batches.first().map(RecordBatch::schema) else {
        return Err(pyo3::exceptions::PyRuntimeError::new_err(
            "cx: no table to convert",
        ));
    };
    let table = PyTable::try_new(batches, schema)
        .map_err(|e| pyo3::exceptions::PyRuntimeError::new_err(format!("cx: {e}")))?;
    let arrow = table.into_pyarrow(py)?;
    Ok(arrow.call_method0("to_pandas")?.unbind())
}

/// The touchpoints table (the columns [`touchpoints`] reads); the identity, source and survey
/// columns only when some row has one.
pub(crate) fn touchpoints_table(rows: &[Touchpoint]) -> PyResult<RecordBatch> {
    let identities = rows
        .iter()
        .any(|t| matches!(t.subject, Subject::Identity(_)));
    let sources = rows.iter().any(|t| t.source.is_some());
    let surveys = rows.iter().any(|t| t.survey.is_some());
    let mut columns = vec![("id", Builder::str()), ("customer_id", Builder::str())];
    if identities {
        columns.extend([
            ("identity_kind", Builder::str()),
            ("identity_value", Builder::str()),
        ]);
    }
    columns.extend([
        ("channel", Builder::str()),
        ("kind", Builder::str()),
        ("occurred_at", Builder::time()),
    ]);
    if sources {
        columns.push(("source", Builder::str()));
    }
    if surveys {
        columns.extend([
            ("survey_question", Builder::str()),
            ("survey_score", Builder::num()),
            ("survey_scale_min", Builder::num()),
            (SURVEY_SCALE_MAX, Builder::num()),
        ]);
    }
    let mut table = Rows::new(columns);
    for t in rows {
        let identity = match &t.subject {
            Subject::Customer(_) => None,
            Subject::Identity(i) => Some(i),
        };
        let mut row = table
            .row()
            .str(Some(t.id.as_str()))
            .str(t.customer_id().map(|c| c.as_str()));
        if identities {
            row = row
                .str(identity.map(|i| i.kind.as_str()))
                .str(identity.map(|i| i.value.as_str()));
        }
        row = row
            .str(Some(t.channel.as_str()))
            .str(Some(t.kind.as_str()))
            .time(Some(t.occurred_at));
        if sources {
            row = row.str(t.source.as_deref());
        }
        if surveys {
            let survey = t.survey.as_ref();
            let _ = row
                .str(survey.map(|s| s.question.as_str()))
                .num(survey.map(|s| s.score))
                .num(survey.map(|s| s.scale.min))
                .num(survey.map(|s| s.scale.max));
        }
    }
    let mut table = table.into_table();
    table.attributes(rows.iter().map(|t| &t.attributes));
    table.finish()
}

/// The customers table (the columns [`customers`] reads).
pub(crate) fn customers_table(rows: &[Customer]) -> PyResult<RecordBatch> {
    use arrow_array::builder::StructBuilder;
    let mut id = Builder::str();
    let identity_fields = vec![
        Field::new("kind", DataType::Utf8, true),
        Field::new("value", DataType::Utf8, true),
    ];
    let utc: Arc<str> = Arc::from("UTC");
    let consent_fields = vec![
        Field::new("channel", DataType::Utf8, true),
        Field::new("purpose", DataType::Utf8, true),
        Field::new("status", DataType::Utf8, true),
        Field::new(
            "since",
            DataType::Timestamp(TimeUnit::Microsecond, Some(utc.clone())),
            true,
        ),
        Field::new(
            "expires_at",
            DataType::Timestamp(TimeUnit::Microsecond, Some(utc)),
            true,
        ),
    ];
    let mut identities = ListBuilder::new(StructBuilder::from_fields(identity_fields, rows.len()));
    let mut consents = ListBuilder::new(StructBuilder::from_fields(consent_fields, rows.len()));
    let mut pii = ListBuilder::new(StringBuilder::new());
    let field_err = || pyo3::exceptions::PyRuntimeError::new_err("cx: struct builder layout");
    for c in rows {
        id.push_str(Some(c.id.as_str()));
        let s = identities.values();
        for i in &c.identities {
            s.field_builder::<StringBuilder>(0)
                .ok_or_else(field_err)?
                .append_value(i.kind.as_str());
            s.field_builder::<StringBuilder>(1)
                .ok_or_else(field_err)?
                .append_value(&i.value);
            s.append(true);
        }
        identities.append(true);
        let s = consents.values();
        for k in &c.consents {
            s.field_builder::<StringBuilder>(0)
                .ok_or_else(field_err)?
                .append_value(k.channel.as_str());
            s.field_builder::<StringBuilder>(1)
                .ok_or_else(field_err)?
                .append_value(k.purpose.as_str());
            s.field_builder::<StringBuilder>(2)
                .ok_or_else(field_err)?
                .append_value(match k.status {
                    ConsentStatus::Granted => "granted",
                    ConsentStatus::Denied => "denied",
                    ConsentStatus::Revoked => "revoked",
                });
            s.field_builder::<TimestampMicrosecondBuilder>(3)
                .ok_or_else(field_err)?
                .append_value(k.since.timestamp_micros());
            s.field_builder::<TimestampMicrosecondBuilder>(4)
                .ok_or_else(field_err)?
                .append_option(k.expires_at.map(|t| t.timestamp_micros()));
            s.append(true);
        }
        consents.append(true);
        for name in &c.pii {
            pii.values().append_value(name.as_str());
        }
        pii.append(true);
    }
    let mut table = TableBuilder::default();
    table.column("id", id);
    table
        .columns
        .push(("identities".to_owned(), Arc::new(identities.finish())));
    table
        .columns
        .push(("consents".to_owned(), Arc::new(consents.finish())));
    table
        .columns
        .push(("pii".to_owned(), Arc::new(pii.finish())));
    table.attributes(rows.iter().map(|c| &c.attributes));
    table.finish()
}
