//! Valid rows as Python dicts, one at a time (`tier.read_rows`, and iterating over `tier.read`).

use std::sync::Mutex;

use pyo3::exceptions::PyStopIteration;
use pyo3::prelude::*;
use pyo3::types::{IntoPyDict, PyDict, PyTzInfo};
use tier_core::Rows;
use tier_core::Value;

use crate::errors::PyTierError;

/// An iterator over the valid rows of a file, as dicts.
#[pyclass(module = "tier._tier")]
pub struct RowIterator {
    pub rows: Mutex<Rows>,
}

#[pymethods]
impl RowIterator {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    pub fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let mut rows = self.rows.lock().unwrap_or_else(|e| e.into_inner());
        let dataset = rows.dataset().clone();
        let row = match rows.next() {
            None => return Err(PyStopIteration::new_err(())),
            Some(Err(e)) => return Err(PyTierError(e).into()),
            Some(Ok(row)) => row,
        };
        let dict = PyDict::new(py);
        let utc = PyTzInfo::utc(py)?;
        let datetime = py.import("datetime")?.getattr("datetime")?;
        let loads = py.import("tier._json")?.getattr("loads")?;
        for (col, v) in dataset.columns.iter().zip(row.values) {
            let name = col.name.as_str();
            match v {
                Value::Null => dict.set_item(name, py.None())?,
                Value::Text(s) => dict.set_item(name, s.as_ref())?,
                Value::Float(f) => dict.set_item(name, f)?,
                Value::SmallInt(i) => dict.set_item(name, i)?,
                Value::Integer(i) => dict.set_item(name, i)?,
                Value::BigInt(i) => dict.set_item(name, i)?,
                Value::Bool(b) => dict.set_item(name, b)?,
                Value::Date(d) => {
                    let date = py.import("datetime")?.getattr("date")?;
                    // 719163 is 1970-01-01 as a proleptic Gregorian ordinal.
                    dict.set_item(
                        name,
                        date.call_method1("fromordinal", (719_163 + d as i64,))?,
                    )?
                }
                Value::Json(text) => dict.set_item(name, loads.call1((text.as_ref(),))?)?,
                Value::Timestamp(t) => {
                    let dt = datetime
                        .call_method1("fromtimestamp", (t.0.div_euclid(1_000_000), &utc))?;
                    let dt = dt.call_method(
                        "replace",
                        (),
                        Some(&[("microsecond", t.0.rem_euclid(1_000_000))].into_py_dict(py)?),
                    )?;
                    dict.set_item(name, dt)?
                }
            }
        }
        match row.extra {
            Some(text) => dict.set_item("_extra", loads.call1((text,))?)?,
            None => dict.set_item("_extra", py.None())?,
        }
        dict.set_item("_record_index", row.index)?;
        Ok(dict)
    }
}
