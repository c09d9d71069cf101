//! The `tier` Python module: a thin layer over `tier-core`. Arguments become owned Rust values,
//! the work runs without the GIL (and stops on Ctrl-C), every core error becomes the matching
//! `tier` exception, and Rust's log records go to Python's `logging`.

mod arrow;
mod errors;
mod interrupt;
mod logging;
mod report;
mod rows;

use std::path::PathBuf;
use std::sync::Mutex;

use pyo3::prelude::*;
use pyo3::types::PyCapsule;
use tier_core::BatchOf;
use tier_core::Destination;
use tier_core::Location;
use tier_core::RejectRatio;
use tier_core::Rows;
use tier_core::{Error, LoadOptions, ReadOptions, Registry};

use crate::arrow::{RejectStream, Source};
use crate::errors::PyTierError;
use crate::report::{reports, Report};
use crate::rows::RowIterator;

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
fn read_options(dataset: Option<String>, datasets: Option<Paths>) -> PyResult<ReadOptions> {
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
    Ok(resolve().map_err(PyTierError)?)
}

/// The files of `paths` (a path or a list; directories expanded), and whether one report is
/// wanted (a single path to a file) rather than a list.
fn expand(paths: Paths) -> Result<(Vec<PathBuf>, bool), Error> {
    let one = match &paths {
        Paths::One(p) => Some(p.clone()),
        Paths::Many(_) => None,
    };
    let files = tier_core::expand_inputs(&paths.into_vec(), &[])?;
    let single = one.is_some_and(|p| files == [p]);
    Ok((files, single))
}

/// The files `load` and `check` would read for `paths`: directories and `s3://` prefixes
/// expanded, in order.
#[pyfunction(name = "expand")]
fn expand_paths(py: Python<'_>, paths: Paths) -> PyResult<Vec<std::ffi::OsString>> {
    let outcome = py.detach(|| tier_core::expand_inputs(&paths.into_vec(), &[]));
    let files = outcome.map_err(PyTierError)?;
    Ok(files.into_iter().map(PathBuf::into_os_string).collect())
}

/// A reject ratio limit from Python, checked once.
fn ratio(r: Option<f64>) -> PyResult<Option<RejectRatio>> {
    Ok(r.map(RejectRatio::new).transpose().map_err(PyTierError)?)
}

/// Loads files into PostgreSQL (the database chosen as the CLI chooses it), or into the lake at
/// `lake`; `jobs` files at once.
#[pyfunction]
#[pyo3(signature = (paths, database_url=None, dataset=None, schema="public", force=false, replace=false, max_reject_ratio=None, datasets=None, lake=None, jobs=1, catalog_url=None))]
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
    catalog_url: Option<String>,
) -> PyResult<Py<PyAny>> {
    let max_reject_ratio = ratio(max_reject_ratio)?;
    let opts = LoadOptions {
        read: read_options(dataset, datasets)?,
        schema: schema.parse().map_err(PyTierError)?,
        force,
        replace,
        max_reject_ratio,
        catalog_url,
    };
    if lake.is_some() && (database_url.is_some() || replace) {
        return Err(PyTierError(Error::Usage(
            "lake= goes without database_url= and replace=".into(),
        ))
        .into());
    }
    let dest = match lake {
        Some(dir) => Destination::Lake(dir),
        None => Destination::Postgres { database_url },
    };
    let (outcome, interrupt) = interrupt::run_keeping(py, |cancel| -> Result<_, Error> {
        let (files, single) = expand(paths)?;
        Ok((
            tier_core::load_files(&files, &dest, &opts, jobs, cancel)?,
            single,
        ))
    })?;
    if let Some(e) = logging::drain(py) {
        return Err(e);
    }
    if let Some(interrupt) = interrupt {
        return Err(report::interrupted(
            py,
            interrupt,
            outcome.ok().map(|o| o.0),
        ));
    }
    let (results, single) = outcome.map_err(PyTierError)?;
    reports(py, results, single, max_reject_ratio)
}

/// Reads and validates files, without a database; `jobs` files at once. With
/// `max_reject_ratio`, a file above it raises `QualityGateError` as a load would.
#[pyfunction]
#[pyo3(signature = (paths, dataset=None, datasets=None, jobs=1, max_reject_ratio=None))]
fn check(
    py: Python<'_>,
    paths: Paths,
    dataset: Option<String>,
    datasets: Option<Paths>,
    jobs: usize,
    max_reject_ratio: Option<f64>,
) -> PyResult<Py<PyAny>> {
    let max_reject_ratio = ratio(max_reject_ratio)?;
    let opts = read_options(dataset, datasets)?;
    let outcome = interrupt::run(py, |cancel| -> Result<_, Error> {
        let (files, single) = expand(paths)?;
        // The quality gate only when asked for: a check reports, it does not raise by default.
        let gate = max_reject_ratio.or(RejectRatio::new(1.0).ok());
        let results = tier_core::check_files(&files, &opts, gate, jobs, cancel);
        Ok((results, single))
    });
    if let Some(e) = logging::drain(py) {
        return Err(e);
    }
    let (results, single) = outcome?.map_err(PyTierError)?;
    reports(py, results, single, max_reject_ratio)
}

/// The valid rows of a file: iterate for dicts (once), or hand it to pyarrow, polars or DuckDB
/// (the Arrow PyCapsule stream interface) for typed record batches (each time anew).
#[pyclass(frozen, module = "tier._tier")]
struct Reader {
    source: Source,
    rows: Mutex<Option<RowIterator>>,
}

impl Reader {
    fn new(source: Source) -> Reader {
        Reader {
            source,
            rows: Mutex::new(None),
        }
    }

    fn open_rows(&self, py: Python<'_>) -> PyResult<RowIterator> {
        let rows = py
            .detach(|| Rows::open(&self.source.path, &self.source.opts))
            .map_err(PyTierError)?;
        Ok(RowIterator {
            rows: Mutex::new(rows),
        })
    }
}

#[pymethods]
impl Reader {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, pyo3::types::PyDict>> {
        let mut rows = self.rows.lock().unwrap_or_else(|e| e.into_inner());
        if rows.is_none() {
            *rows = Some(self.open_rows(py)?);
        }
        rows.as_ref().expect("opened above").__next__(py)
    }

    /// The Arrow PyCapsule stream interface: typed record batches of the valid rows.
    #[pyo3(signature = (requested_schema=None))]
    fn __arrow_c_stream__<'py>(
        &self,
        py: Python<'py>,
        requested_schema: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyCapsule>> {
        let _ = requested_schema;
        self.source.capsule(py, BatchOf::Rows)
    }

    /// The rejects of the same file, the same way.
    fn rejects(&self) -> RejectStream {
        RejectStream {
            source: Source {
                path: self.source.path.clone(),
                opts: self.source.opts.clone(),
                batch_size: self.source.batch_size,
            },
        }
    }
}

fn source(
    path: PathBuf,
    dataset: Option<String>,
    datasets: Option<Paths>,
    batch_size: usize,
) -> PyResult<Source> {
    let local = matches!(Location::parse(&path), Ok(Location::Local(_)));
    if local && !path.exists() {
        let e = std::io::Error::new(std::io::ErrorKind::NotFound, "No such file or directory");
        return Err(PyTierError(Error::io(&path, e)).into());
    }
    Ok(Source {
        path,
        opts: read_options(dataset, datasets)?,
        batch_size,
    })
}

/// The valid rows of a file, as Arrow record batches or dicts.
#[pyfunction]
#[pyo3(signature = (path, dataset=None, datasets=None, batch_size=65536))]
fn read(
    path: PathBuf,
    dataset: Option<String>,
    datasets: Option<Paths>,
    batch_size: usize,
) -> PyResult<Reader> {
    Ok(Reader::new(source(path, dataset, datasets, batch_size)?))
}

/// The rejects of a file, as Arrow record batches.
#[pyfunction]
#[pyo3(signature = (path, dataset=None, datasets=None, batch_size=65536))]
fn read_rejects(
    path: PathBuf,
    dataset: Option<String>,
    datasets: Option<Paths>,
    batch_size: usize,
) -> PyResult<RejectStream> {
    Ok(RejectStream {
        source: source(path, dataset, datasets, batch_size)?,
    })
}

/// Streams the valid rows of a file as dicts (rejects are skipped).
#[pyfunction]
#[pyo3(signature = (path, dataset=None, datasets=None))]
fn read_rows(
    py: Python<'_>,
    path: PathBuf,
    dataset: Option<String>,
    datasets: Option<Paths>,
) -> PyResult<RowIterator> {
    Reader::new(source(path, dataset, datasets, 1)?).open_rows(py)
}

/// The DDL of a dataset's tables (with the ledger); every known dataset's without one.
#[pyfunction]
#[pyo3(signature = (dataset=None, schema="public", datasets=None))]
fn schema(dataset: Option<String>, schema: &str, datasets: Option<Paths>) -> PyResult<String> {
    let opts = read_options(None, datasets)?;
    let chosen = match dataset {
        Some(name) => vec![opts.datasets.get(&name).map_err(PyTierError)?],
        None => opts.datasets.all().to_vec(),
    };
    let schema: tier_core::db::ddl::SchemaName = schema.parse().map_err(PyTierError)?;
    Ok(tier_core::db::ddl::full_ddl(&chosen, &schema))
}

/// Reads a sample of a file and proposes a dataset definition (TOML text).
#[pyfunction]
#[pyo3(signature = (path, name=None, sample=10000))]
fn infer(py: Python<'_>, path: PathBuf, name: Option<String>, sample: usize) -> PyResult<String> {
    let outcome = py.detach(|| tier_core::infer(&path, name.as_deref(), sample));
    if let Some(e) = logging::drain(py) {
        return Err(e);
    }
    Ok(outcome.map_err(PyTierError)?)
}

#[pymodule]
fn _tier(m: &Bound<'_, PyModule>) -> PyResult<()> {
    logging::install(m.py())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(read_rows, m)?)?;
    m.add_function(wrap_pyfunction!(read_rejects, m)?)?;
    m.add_class::<Reader>()?;
    m.add_class::<RejectStream>()?;
    m.add_function(wrap_pyfunction!(load, m)?)?;
    m.add_function(wrap_pyfunction!(check, m)?)?;
    m.add_function(wrap_pyfunction!(read, m)?)?;
    m.add_function(wrap_pyfunction!(schema, m)?)?;
    m.add_function(wrap_pyfunction!(infer, m)?)?;
    m.add_function(wrap_pyfunction!(expand_paths, m)?)?;
    m.add_class::<Report>()?;
    m.add_class::<RowIterator>()?;
    Ok(())
}
