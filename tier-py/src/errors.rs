//! Core errors as the `tier` exceptions (defined in `tier/_errors.py`): one class per kind of
//! core error, the same kinds that give the command line its exit codes.

use pyo3::prelude::*;
use tier_core::{Error, ErrorKind};

use crate::report::Report;

/// A core error on its way to Python: `?` turns it into the `tier` exception of its kind
/// (`From<PyTierError> for PyErr`), as polars-python's `PyPolarsErr` does.
pub struct PyTierError(pub Error);

impl From<Error> for PyTierError {
    fn from(e: Error) -> Self {
        PyTierError(e)
    }
}

impl From<PyTierError> for PyErr {
    fn from(e: PyTierError) -> PyErr {
        Python::attach(|py| raise(py, e.0))
    }
}

/// Raises the `tier` exception that matches a core error. A failed load carries its report in
/// `report`.
pub fn raise(py: Python<'_>, err: Error) -> PyErr {
    let class = match err.kind() {
        ErrorKind::Usage => "UsageError",
        ErrorKind::Definition => "DefinitionError",
        ErrorKind::UnknownDataset => "UnknownDatasetError",
        ErrorKind::InputNotFound => "InputNotFoundError",
        ErrorKind::Input => "InputError",
        ErrorKind::Parse => "ParseError",
        ErrorKind::Database => "DatabaseError",
        ErrorKind::Embedded | ErrorKind::NoEmbedded => "EmbeddedError",
        ErrorKind::QualityGate => "QualityGateError",
        ErrorKind::Interrupted => return pyo3::exceptions::PyKeyboardInterrupt::new_err(()),
        // A kind newer than this mapping: the base class of every tier error.
        _ => "TierError",
    };
    let message = err.to_string();
    let sqlstate = err.sqlstate().map(str::to_string);
    let exc = match py
        .import("tier._errors")
        .and_then(|m| m.getattr(class))
        .and_then(|c| c.call1((message,)))
    {
        Ok(exc) => exc,
        Err(e) => return e,
    };
    if let Error::Failed { report, .. } = err {
        if let Ok(r) = Py::new(py, Report::from(*report)) {
            let _ = exc.setattr("report", r);
        }
    }
    let _ = exc.setattr("sqlstate", sqlstate);
    PyErr::from_value(exc)
}
