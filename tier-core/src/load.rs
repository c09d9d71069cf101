//! Many files, one call: the inputs of a run spread over `jobs` workers, each with its own
//! connection (or lake handle), reports in input order. The CLI and the Python module both run
//! their loads and checks through here.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::check;
use crate::error::Result;
use crate::pipeline::{Observer, ReadOptions};
use crate::report::FileReport;
use crate::sink::lake::Lake;
use crate::sink::{postgres::Loader, LoadOptions};

/// Where a load writes.
#[derive(Debug, Clone)]
pub enum Destination {
    /// PostgreSQL: this URL, else as [`crate::db::open`] resolves it.
    Postgres {
        /// The connection string, if given.
        database_url: Option<String>,
    },
    /// The lake at this directory (or `s3://` URL).
    Lake(PathBuf),
}

/// Runs `one` over `files` on up to `jobs` threads, each starting with `start()` (a connection,
/// a lake); returns the outcomes in input order. An error of `start` stops the run.
fn spread<S, F>(
    files: &[PathBuf],
    jobs: usize,
    start: impl Fn() -> Result<S> + Sync,
    one: F,
) -> Result<Vec<Result<FileReport>>>
where
    F: Fn(&mut S, &Path) -> Result<FileReport> + Sync,
{
    let jobs = jobs.clamp(1, files.len().max(1));
    let queue = Mutex::new(files.iter().enumerate());
    let results: Mutex<Vec<(usize, Result<FileReport>)>> = Mutex::new(Vec::new());
    let first_error = Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..jobs {
            s.spawn(|| {
                let mut state = match start() {
                    Ok(st) => st,
                    Err(e) => {
                        first_error
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .get_or_insert(e);
                        return;
                    }
                };
                loop {
                    let next = queue.lock().unwrap_or_else(|p| p.into_inner()).next();
                    let Some((i, path)) = next else { break };
                    let r = one(&mut state, path);
                    results
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push((i, r));
                }
            });
        }
    });
    if let Some(e) = first_error.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(e);
    }
    let mut results = results.into_inner().unwrap_or_else(|p| p.into_inner());
    results.sort_by_key(|r| r.0);
    Ok(results.into_iter().map(|r| r.1).collect())
}

/// Lists the inputs of the given paths: files as they are; a directory (or an `s3://` prefix)
/// expands, at any depth,
/// to its `*.json`, `*.json.gz`, `*.jsonl`, `*.ndjson` and `*.parquet` files (hidden files and
/// folders, and a lake's `_tier` folder, passed over), sorted. `globs`, when
/// given, keep only the files of directories whose name or path below the directory matches
/// one of them (`*.json`, `2024-*/**`).
pub fn expand_inputs(paths: &[PathBuf], globs: &[String]) -> Result<Vec<PathBuf>> {
    expand_inputs_at(paths, globs, None)
}

/// Lists the inputs of the given paths as [`expand_inputs`] does; a path that is an Iceberg
/// table (a lake's table folder) stands for the data files of its current snapshot, or of
/// snapshot `snapshot` when given (then every path must be a table).
pub fn expand_inputs_at(
    paths: &[PathBuf],
    globs: &[String],
    snapshot: Option<i64>,
) -> Result<Vec<PathBuf>> {
    crate::read::expand(paths, globs, &|p| tables_at(p, snapshot))
}

/// The data files a lake table's folder stands for, at a snapshot (`None` for another path; an
/// error for one when a snapshot was asked for).
pub(crate) fn tables_at(path: &Path, snapshot: Option<i64>) -> Result<Option<Vec<PathBuf>>> {
    match crate::iceberg::table_files(path, snapshot)? {
        None if snapshot.is_some() => Err(crate::Error::Usage(format!(
            "{}: --snapshot names a snapshot of an Iceberg table, and this is none",
            path.display()
        ))),
        files => Ok(files),
    }
}

/// Loads `files` into `dest`, `jobs` at once; one outcome per file, in order. A destination
/// that cannot be opened (no connection) is an error of the whole run.
pub fn load_files(
    files: &[PathBuf],
    dest: &Destination,
    opts: &LoadOptions,
    jobs: usize,
    observer: &dyn Observer,
) -> Result<Vec<Result<FileReport>>> {
    tell_datasets(files, &opts.read)?;
    match dest {
        Destination::Postgres { database_url } => spread(
            files,
            jobs,
            || Loader::connect(database_url.as_deref(), opts.clone()),
            |l, p| {
                observer.stopped()?;
                l.load_file(p, observer)
            },
        ),
        Destination::Lake(root) => {
            // Opened once first: leftovers of earlier runs are settled before any load starts.
            Lake::open(root, opts.clone())?;
            spread(
                files,
                jobs,
                || Lake::open(root, opts.clone()),
                |l, p| {
                    observer.stopped()?;
                    l.load_file(p, observer)
                },
            )
        }
    }
}

/// Tells the dataset of every file before any is loaded: a run does not load some of its files
/// and then stop at one whose dataset cannot be told. Standard input is told when it is read.
fn tell_datasets(files: &[PathBuf], opts: &ReadOptions) -> Result<()> {
    if opts.dataset.is_some() {
        return Ok(());
    }
    let mut unknown = Vec::new();
    for f in files.iter().filter(|f| f.as_os_str() != "-") {
        match crate::pipeline::open_input(f, opts, false) {
            Err(e) if e.kind() == crate::ErrorKind::UnknownDataset => unknown.push(e),
            // Any other trouble is the file's load's own, reported with it.
            _ => {}
        }
    }
    match unknown.len() {
        0 => Ok(()),
        1 => Err(unknown.remove(0)),
        _ => Err(crate::Error::Datasets(unknown)),
    }
}

/// Checks `files` (no database), `jobs` at once, with the quality gate of a load; one outcome
/// per file, in order.
pub fn check_files(
    files: &[PathBuf],
    opts: &ReadOptions,
    max_reject_ratio: Option<crate::RejectRatio>,
    jobs: usize,
    observer: &dyn Observer,
) -> Vec<Result<FileReport>> {
    let one = |_: &mut (), p: &Path| {
        observer.stopped()?;
        check::check(p, opts, max_reject_ratio, observer)
    };
    spread(files, jobs, || Ok(()), one).unwrap_or_else(|e| vec![Err(e)])
}
