//! Arrow out: record batches handed to pyarrow, polars or DuckDB through the Arrow PyCapsule
//! stream interface (`__arrow_c_stream__`), without a copy through Python objects.

use std::ffi::CString;
use std::path::PathBuf;

use pyo3::prelude::*;
use pyo3::types::PyCapsule;
use tier_core::arrow_array::ffi_stream::FFI_ArrowArrayStream;
use tier_core::ReadOptions;
use tier_core::{BatchOf, Batches};

use crate::errors::PyTierError;

/// What to read, and how: opened anew for each consumer.
pub struct Source {
    pub path: PathBuf,
    pub opts: ReadOptions,
    pub batch_size: usize,
}

impl Source {
    /// A capsule holding the stream of `what` of the file.
    pub fn capsule<'py>(&self, py: Python<'py>, what: BatchOf) -> PyResult<Bound<'py, PyCapsule>> {
        let batches = py
            .detach(|| Batches::open(&self.path, &self.opts, self.batch_size, what))
            .map_err(PyTierError)?;
        let stream = FFI_ArrowArrayStream::new(Box::new(batches));
        let name = CString::new("arrow_array_stream").expect("no NUL");
        // The consumer moves the stream out (leaving it released); what is left is released
        // when the capsule goes.
        PyCapsule::new(py, stream, Some(name))
    }
}

/// The rejects of a file as Arrow record batches (`_record_index`, `reason`, `raw`).
#[pyclass(frozen, module = "tier._tier")]
pub struct RejectStream {
    pub source: Source,
}

#[pymethods]
impl RejectStream {
    /// The Arrow PyCapsule stream interface.
    #[pyo3(signature = (requested_schema=None))]
    fn __arrow_c_stream__<'py>(
        &self,
        py: Python<'py>,
        requested_schema: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyCapsule>> {
        let _ = requested_schema;
        self.source.capsule(py, BatchOf::Rejects)
    }
}
