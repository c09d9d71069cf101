//! The report of a file, as a frozen Python object, and how a run's reports are returned.

use pyo3::prelude::*;
use pyo3::types::PyList;
use tier_core::RejectRatio;
use tier_core::{Error, FileReport};

use crate::errors::raise;

/// The outcome of loading or checking one file.
#[pyclass(frozen, get_all, module = "tier._tier")]
pub struct Report {
    path: String,
    dataset: String,
    table: Option<String>,
    sha256: String,
    bytes: u64,
    records: u64,
    loaded: u64,
    rolled_back: u64,
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
            rolled_back: r.rolled_back,
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

/// The reports as Python wants them: one, or a list. The first failure raises, with the
/// reports of the files that did load in its `reports` attribute; a quality gate raises
/// `QualityGateError` with the file's report in `report`.
pub fn reports(
    py: Python<'_>,
    results: Vec<Result<FileReport, Error>>,
    single: bool,
    max_reject_ratio: Option<RejectRatio>,
) -> PyResult<Py<PyAny>> {
    let mut done: Vec<Report> = Vec::new();
    let mut first: Option<PyErr> = None;
    for r in results {
        match r {
            Ok(rep) if first.is_none() && rep.gate_error(max_reject_ratio).is_some() => {
                let err = rep
                    .gate_error(max_reject_ratio)
                    .expect("checked in the guard");
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

/// The `KeyboardInterrupt` of a load stopped by Ctrl-C. Files committed before it stopped are
/// named in its message and their reports are in its `reports` attribute: the caller must not
/// take the interrupt for "nothing was loaded".
pub fn interrupted(
    py: Python<'_>,
    interrupt: PyErr,
    results: Option<Vec<Result<FileReport, Error>>>,
) -> PyErr {
    let committed: Vec<FileReport> = results
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter(|r| r.status == tier_core::Status::Succeeded)
        .collect();
    if committed.is_empty() {
        return interrupt;
    }
    let names: Vec<&str> = committed.iter().map(|r| r.path.as_str()).collect();
    let exc = pyo3::exceptions::PyKeyboardInterrupt::new_err(format!(
        "interrupted after {} file(s) committed: {}",
        committed.len(),
        names.join(", ")
    ));
    let list: Vec<Report> = committed.into_iter().map(Report::from).collect();
    if let Ok(list) = list
        .into_iter()
        .map(|r| Py::new(py, r))
        .collect::<PyResult<Vec<_>>>()
    {
        let _ = exc.value(py).setattr("reports", list);
    }
    exc
}
