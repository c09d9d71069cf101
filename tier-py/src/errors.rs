//! Core errors as the `tier` exceptions (defined in `tier/_errors.py`).

use pyo3::prelude::*;
use tier_core::Error;

/// Raises the `tier` exception that matches a core error.
pub fn raise(py: Python<'_>, err: Error) -> PyErr {
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
        Error::Interrupted => return pyo3::exceptions::PyKeyboardInterrupt::new_err(()),
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
