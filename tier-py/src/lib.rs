//! The `tier` Python module: a thin layer over `tier-core`. Arguments are turned into owned Rust
//! values, the work runs with the GIL released, and every core error becomes the matching
//! `tier` exception.

use std::path::PathBuf;
use std::sync::Mutex;

use pyo3::exceptions::PyStopIteration;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTzInfo};
use tier_core::check::Rows;
use tier_core::loader::{LoadOptions, Loader, Quiet};
use tier_core::reader::ReadOptions;
use tier_core::{Dataset, Error, FileReport, Status, Value};

/// Raises the `tier` exception that matches a core error.
fn raise(py: Python<'_>, err: Error) -> PyErr {
    let class = match &err {
        Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
            "InputNotFoundError"
        }
        Error::Io { source, .. }
            if matches!(
                source.kind(),
                std::io::ErrorKind::InvalidData | std::io::ErrorKind::UnexpectedEof
            ) =>
        {
            "ParseError"
        }
        Error::Io { .. } | Error::NoInputs(_) => "InputError",
        Error::UnknownDataset(_) => "ParseError",
        Error::InvalidDataset(_) | Error::Usage(_) => "UsageError",
        Error::Database(_) | Error::IncompatibleTable { .. } | Error::Embedded(_) => {
            "DatabaseError"
        }
        Error::QualityGate { .. } => "QualityGateError",
    };
    let message = err.to_string();
    match py
        .import("tier._errors")
        .and_then(|m| m.getattr(class))
        .and_then(|c| c.call1((message.clone(),)))
    {
        Ok(exc) => PyErr::from_value(exc),
        Err(e) => e,
    }
}

/// The outcome of loading or checking one file.
#[pyclass(frozen, get_all, module = "tier._tier")]
struct Report {
    path: String,
    dataset: String,
    table: Option<String>,
    sha256: String,
    bytes: u64,
    records: u64,
    loaded: u64,
    duplicates: u64,
    rejected: u64,
    reject_reasons: std::collections::BTreeMap<String, u64>,
    unknown_fields: std::collections::BTreeMap<String, u64>,
    status: String,
    load_id: Option<i64>,
    seconds: f64,
    json: String,
}

impl From<FileReport> for Report {
    fn from(r: FileReport) -> Report {
        Report {
            json: serde_json::to_string(&r).unwrap_or_default(),
            path: r.path,
            dataset: r.dataset,
            table: r.table,
            sha256: r.sha256,
            bytes: r.bytes,
            records: r.records,
            loaded: r.loaded,
            duplicates: r.duplicates,
            rejected: r.rejected,
            reject_reasons: r.reject_reasons,
            unknown_fields: r.unknown_fields,
            status: r.status.as_str().to_string(),
            load_id: r.load_id,
            seconds: r.seconds,
        }
    }
}

#[pymethods]
impl Report {
    /// The report as a dict, the same as one file of the CLI's JSON report.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        py.import("json")?
            .call_method1("loads", (self.json.as_str(),))
    }

    fn __repr__(&self) -> String {
        format!(
            "Report(path={:?}, dataset={:?}, status={:?}, records={}, loaded={}, duplicates={}, rejected={})",
            self.path, self.dataset, self.status, self.records, self.loaded, self.duplicates, self.rejected
        )
    }
}

fn dataset(py: Python<'_>, name: Option<String>) -> PyResult<Option<Dataset>> {
    name.map(|n| n.parse::<Dataset>().map_err(|e| raise(py, e)))
        .transpose()
}

/// Loads one file into PostgreSQL; the database is chosen as the CLI chooses it.
#[pyfunction]
#[pyo3(signature = (path, database_url=None, dataset=None, schema="public", force=false, replace=false, max_reject_ratio=None))]
#[allow(clippy::too_many_arguments)]
fn load(
    py: Python<'_>,
    path: PathBuf,
    database_url: Option<String>,
    dataset: Option<String>,
    schema: &str,
    force: bool,
    replace: bool,
    max_reject_ratio: Option<f64>,
) -> PyResult<Report> {
    let opts = LoadOptions {
        read: ReadOptions {
            dataset: self::dataset(py, dataset)?,
            ..ReadOptions::default()
        },
        schema: schema.to_string(),
        force,
        replace,
        max_reject_ratio,
    };
    let result = py.detach(|| -> Result<FileReport, Error> {
        if path.is_dir() {
            return Err(Error::Usage(format!(
                "{}: is a directory; load its files one by one",
                path.display()
            )));
        }
        let client = tier_core::db::open(database_url.as_deref())?;
        Loader::new(client, opts)?.load_file(&path, &Quiet)
    });
    let report = result.map_err(|e| raise(py, e))?;
    if report.status == Status::Failed {
        let err = Error::QualityGate {
            path: path.clone(),
            records: report.records,
            rejected: report.rejected,
            max_ratio: max_reject_ratio.unwrap_or(0.0),
        };
        let exc = raise(py, err);
        exc.value(py).setattr("report", Report::from(report))?;
        return Err(exc);
    }
    Ok(report.into())
}

/// Reads and validates one file, without a database.
#[pyfunction]
#[pyo3(signature = (path, dataset=None))]
fn check(py: Python<'_>, path: PathBuf, dataset: Option<String>) -> PyResult<Report> {
    let opts = ReadOptions {
        dataset: self::dataset(py, dataset)?,
        ..ReadOptions::default()
    };
    py.detach(|| tier_core::check::check(&path, &opts, &Quiet, None))
        .map(Report::from)
        .map_err(|e| raise(py, e))
}

/// An iterator over the valid rows of a file, as dicts.
#[pyclass(module = "tier._tier")]
struct RowIterator {
    rows: Mutex<Rows>,
}

#[pymethods]
impl RowIterator {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let mut rows = self.rows.lock().unwrap_or_else(|e| e.into_inner());
        let dataset = rows.dataset();
        let row = match rows.next() {
            None => return Err(PyStopIteration::new_err(())),
            Some(Err(e)) => return Err(raise(py, e)),
            Some(Ok(row)) => row,
        };
        let dict = PyDict::new(py);
        let utc = PyTzInfo::utc(py)?;
        let datetime = py.import("datetime")?.getattr("datetime")?;
        for (col, v) in dataset.columns().iter().zip(row.values) {
            match v {
                Value::Null => dict.set_item(col.name, py.None())?,
                Value::Text(s) => dict.set_item(col.name, s.as_ref())?,
                Value::Float(f) => dict.set_item(col.name, f)?,
                Value::SmallInt(i) => dict.set_item(col.name, i)?,
                Value::Timestamp(t) => {
                    let dt = datetime
                        .call_method1("fromtimestamp", (t.0.div_euclid(1_000_000), &utc))?;
                    let dt = dt.call_method(
                        "replace",
                        (),
                        Some(&[("microsecond", t.0.rem_euclid(1_000_000))].into_py_dict(py)?),
                    )?;
                    dict.set_item(col.name, dt)?
                }
            }
        }
        match row.extra {
            Some(text) => {
                dict.set_item("_extra", py.import("json")?.call_method1("loads", (text,))?)?
            }
            None => dict.set_item("_extra", py.None())?,
        }
        dict.set_item("_record_index", row.index)?;
        Ok(dict)
    }
}

use pyo3::types::IntoPyDict;

/// Streams the valid rows of a file as dicts (rejects are skipped).
#[pyfunction]
#[pyo3(signature = (path, dataset=None))]
fn read(py: Python<'_>, path: PathBuf, dataset: Option<String>) -> PyResult<RowIterator> {
    let d = self::dataset(py, dataset)?;
    let rows = py
        .detach(|| Rows::open(&path, d))
        .map_err(|e| raise(py, e))?;
    Ok(RowIterator {
        rows: Mutex::new(rows),
    })
}

/// The DDL of a dataset's tables (with the ledger).
#[pyfunction]
#[pyo3(signature = (dataset=None, schema="public"))]
fn schema(py: Python<'_>, dataset: Option<String>, schema: &str) -> PyResult<String> {
    Ok(tier_core::ddl::full_ddl(
        self::dataset(py, dataset)?,
        schema,
    ))
}

#[pymodule]
fn _tier(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(load, m)?)?;
    m.add_function(wrap_pyfunction!(check, m)?)?;
    m.add_function(wrap_pyfunction!(read, m)?)?;
    m.add_function(wrap_pyfunction!(schema, m)?)?;
    m.add_class::<Report>()?;
    m.add_class::<RowIterator>()?;
    Ok(())
}
