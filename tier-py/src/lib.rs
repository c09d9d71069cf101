//! The `tier` Python module: a thin layer over `tier-core`. Arguments are turned into owned Rust
//! values, the work runs with the GIL released, and every core error becomes the matching
//! `tier` exception.

use std::path::PathBuf;
use std::sync::Mutex;

use pyo3::exceptions::PyStopIteration;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTzInfo};
use tier_core::check::Rows;
use tier_core::driver::{self, Destination};
use tier_core::ReadOptions;
use tier_core::{Error, FileReport, Registry, Status, Value};
use tier_core::{LoadOptions, Quiet};

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
        Error::Input { .. } => "ParseError",
        Error::UnknownDataset { .. } => "ParseError",
        Error::InvalidDataset { .. } | Error::Usage(_) | Error::Definition { .. } => "UsageError",
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
    added_columns: Vec<String>,
    parts: Vec<String>,
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
            added_columns: r.added_columns,
            parts: r.parts,
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

/// `datasets=`: one path or a list of them.
#[derive(FromPyObject)]
enum Paths {
    One(PathBuf),
    Many(Vec<PathBuf>),
}

impl Paths {
    fn into_vec(self) -> Vec<PathBuf> {
        match self {
            Paths::One(p) => vec![p],
            Paths::Many(v) => v,
        }
    }
}

/// The read options of `dataset=` and `datasets=`, resolved as the CLI resolves them.
fn read_options(
    py: Python<'_>,
    dataset: Option<String>,
    datasets: Option<Paths>,
) -> PyResult<ReadOptions> {
    let paths = datasets.map(Paths::into_vec).unwrap_or_default();
    let resolve = || -> Result<ReadOptions, Error> {
        let datasets = Registry::from_env(&paths)?;
        let dataset = dataset.as_deref().map(|d| datasets.get(d)).transpose()?;
        Ok(ReadOptions {
            dataset,
            datasets,
            ..ReadOptions::default()
        })
    };
    resolve().map_err(|e| raise(py, e))
}

/// The files of `paths` (a path or a list; directories expanded), and whether one report is
/// wanted (a single path to a file) rather than a list.
fn expand(paths: Paths) -> Result<(Vec<PathBuf>, bool), Error> {
    let single = matches!(&paths, Paths::One(p) if !p.is_dir());
    let files = tier_core::read::expand_inputs(&paths.into_vec())?;
    Ok((files, single))
}

/// The reports as Python wants them: one, or a list. The first failure raises, with the
/// reports of the files that did load in its `reports` attribute; a quality gate raises
/// `QualityGateError` with the file's report in `report`.
fn reports(
    py: Python<'_>,
    results: Vec<Result<FileReport, Error>>,
    single: bool,
    max_reject_ratio: Option<f64>,
) -> PyResult<Py<PyAny>> {
    let mut done: Vec<Report> = Vec::new();
    let mut first: Option<PyErr> = None;
    for r in results {
        match r {
            Ok(rep) if rep.status == Status::Failed && first.is_none() => {
                let err = Error::QualityGate {
                    path: PathBuf::from(&rep.path),
                    records: rep.records,
                    rejected: rep.rejected,
                    max_ratio: max_reject_ratio.unwrap_or(0.0),
                };
                let exc = raise(py, err);
                exc.value(py).setattr("report", Report::from(rep))?;
                first = Some(exc);
            }
            Ok(rep) => done.push(rep.into()),
            Err(e) => {
                first.get_or_insert_with(|| raise(py, e));
            }
        }
    }
    if let Some(exc) = first {
        let list = PyList::new(
            py,
            done.into_iter()
                .map(|r| Py::new(py, r))
                .collect::<PyResult<Vec<_>>>()?,
        )?;
        exc.value(py).setattr("reports", list)?;
        return Err(exc);
    }
    if single && done.len() == 1 {
        return Ok(Py::new(py, done.remove(0))?.into_any());
    }
    Ok(PyList::new(
        py,
        done.into_iter()
            .map(|r| Py::new(py, r))
            .collect::<PyResult<Vec<_>>>()?,
    )?
    .into_any()
    .unbind())
}

/// Loads files into PostgreSQL (the database chosen as the CLI chooses it), or into the lake at
/// `lake`; `jobs` files at once.
#[pyfunction]
#[pyo3(signature = (paths, database_url=None, dataset=None, schema="public", force=false, replace=false, max_reject_ratio=None, datasets=None, lake=None, jobs=1))]
#[allow(clippy::too_many_arguments)]
fn load(
    py: Python<'_>,
    paths: Paths,
    database_url: Option<String>,
    dataset: Option<String>,
    schema: &str,
    force: bool,
    replace: bool,
    max_reject_ratio: Option<f64>,
    datasets: Option<Paths>,
    lake: Option<PathBuf>,
    jobs: usize,
) -> PyResult<Py<PyAny>> {
    let opts = LoadOptions {
        read: read_options(py, dataset, datasets)?,
        schema: schema.to_string(),
        force,
        replace,
        max_reject_ratio,
    };
    if lake.is_some() && (database_url.is_some() || replace) {
        return Err(raise(
            py,
            Error::Usage("lake= goes without database_url= and replace=".into()),
        ));
    }
    let dest = match lake {
        Some(dir) => Destination::Lake(dir),
        None => Destination::Postgres { database_url },
    };
    let (results, single) = py
        .detach(|| -> Result<_, Error> {
            let (files, single) = expand(paths)?;
            Ok((
                driver::load_files(&files, &dest, &opts, jobs, &Quiet)?,
                single,
            ))
        })
        .map_err(|e| raise(py, e))?;
    reports(py, results, single, max_reject_ratio)
}

/// Reads and validates files, without a database; `jobs` files at once.
#[pyfunction]
#[pyo3(signature = (paths, dataset=None, datasets=None, jobs=1))]
fn check(
    py: Python<'_>,
    paths: Paths,
    dataset: Option<String>,
    datasets: Option<Paths>,
    jobs: usize,
) -> PyResult<Py<PyAny>> {
    let opts = read_options(py, dataset, datasets)?;
    let (results, single) = py
        .detach(|| -> Result<_, Error> {
            let (files, single) = expand(paths)?;
            Ok((
                driver::check_files(&files, &opts, jobs, &Quiet, None),
                single,
            ))
        })
        .map_err(|e| raise(py, e))?;
    reports(py, results, single, None)
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
        let dataset = rows.dataset().clone();
        let row = match rows.next() {
            None => return Err(PyStopIteration::new_err(())),
            Some(Err(e)) => return Err(raise(py, e)),
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

use pyo3::types::IntoPyDict;

/// Streams the valid rows of a file as dicts (rejects are skipped).
#[pyfunction]
#[pyo3(signature = (path, dataset=None, datasets=None))]
fn read(
    py: Python<'_>,
    path: PathBuf,
    dataset: Option<String>,
    datasets: Option<Paths>,
) -> PyResult<RowIterator> {
    let opts = read_options(py, dataset, datasets)?;
    let rows = py
        .detach(|| Rows::open(&path, &opts))
        .map_err(|e| raise(py, e))?;
    Ok(RowIterator {
        rows: Mutex::new(rows),
    })
}

/// The DDL of a dataset's tables (with the ledger); every known dataset's without one.
#[pyfunction]
#[pyo3(signature = (dataset=None, schema="public", datasets=None))]
fn schema(
    py: Python<'_>,
    dataset: Option<String>,
    schema: &str,
    datasets: Option<Paths>,
) -> PyResult<String> {
    let opts = read_options(py, None, datasets)?;
    let chosen = match dataset {
        Some(name) => vec![opts.datasets.get(&name).map_err(|e| raise(py, e))?],
        None => opts.datasets.all().to_vec(),
    };
    Ok(tier_core::db::ddl::full_ddl(&chosen, schema))
}

/// Reads a sample of a file and proposes a dataset definition (TOML text).
#[pyfunction]
#[pyo3(signature = (path, name=None, sample=10000))]
fn infer(py: Python<'_>, path: PathBuf, name: Option<String>, sample: usize) -> PyResult<String> {
    py.detach(|| tier_core::schema::infer::infer(&path, name.as_deref(), sample))
        .map_err(|e| raise(py, e))
}

#[pymodule]
fn _tier(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(load, m)?)?;
    m.add_function(wrap_pyfunction!(check, m)?)?;
    m.add_function(wrap_pyfunction!(read, m)?)?;
    m.add_function(wrap_pyfunction!(schema, m)?)?;
    m.add_function(wrap_pyfunction!(infer, m)?)?;
    m.add_class::<Report>()?;
    m.add_class::<RowIterator>()?;
    Ok(())
}
