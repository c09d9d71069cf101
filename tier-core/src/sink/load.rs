//! One file's load, the same for every sink: the pre-hash of a likely re-run and its skip, the
//! input opened and its dataset told, the report, the quality gate and the failure's record.
//! A [`Sink`] says only what differs: where its rows go and how a load is recorded.

use std::path::Path;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use super::LoadOptions;
use crate::error::{Error, Result};
use crate::pipeline::{open_input, Observer, Opened, Source};
use crate::read::{self, Progress, Sha256Handle};
use crate::report::{FileReport, Status};
use crate::schema::Dataset;

/// What a sink does in a load; [`load_file`] does the rest.
pub(crate) trait Sink {
    /// How the load is done.
    fn options(&self) -> &LoadOptions;
    /// The name of a dataset's table in reports and the ledger (`public.events`,
    /// `lake:events`).
    fn target(&self, dataset: &Dataset) -> String;
    /// Whether a file of this name and size was loaded before: then it is hashed first, so
    /// that a re-run is skipped without reading it.
    fn looks_loaded(&mut self, source: &str, bytes: u64) -> Result<bool>;
    /// Readies the dataset's tables (created, or checked that the rows fit).
    fn prepare(&mut self, dataset: &Dataset) -> Result<()>;
    /// The succeeded load of this content into the dataset's table, if any.
    fn loaded_before(&mut self, sha256: &str, dataset: &Dataset) -> Result<Option<i64>>;
    /// Writes the input's rows and rejects and commits them with the ledger's record, unless
    /// [`Incoming::gate`] stops the load (then nothing is kept and the report says `failed`) or
    /// the content proves loaded already (the report says `skipped`). Fills the report's
    /// counts, and its SHA-256 once the input was read whole.
    fn write(
        &mut self,
        source: Source,
        w: &Incoming<'_>,
        report: &mut FileReport,
        observer: &dyn Observer,
    ) -> Result<()>;
    /// Records a load that failed (nothing of it kept) in the ledger, setting its load id.
    fn record_failure(&mut self, report: &mut FileReport, error: &str, started_at: SystemTime);
}

/// An input on its way into a sink (its records apart).
pub(crate) struct Incoming<'a> {
    /// The input's name (`-` for standard input).
    pub path: &'a Path,
    /// Its dataset.
    pub dataset: Dataset,
    /// The bytes read so far.
    pub progress: Arc<Progress>,
    /// Its size as stored, when known before reading (not for standard input).
    pub size: Option<u64>,
    /// The content's SHA-256, taken as it is read (`None` when it was taken first).
    pub sha256: Option<Sha256Handle>,
    /// When the load started.
    pub started_at: SystemTime,
    /// Whether the quality gate judges this input (a lake's rejects part was judged already).
    pub gated: bool,
}

impl Incoming<'_> {
    /// Applies the quality gate to the counted report: warns when most records were rejected,
    /// and says whether the load must stop (the report then says `failed`).
    pub fn gate(&self, report: &mut FileReport, opts: &LoadOptions) -> bool {
        if !self.gated {
            return false;
        }
        report.warn_if_mostly_rejected();
        report.gate(opts.max_reject_ratio)
    }

    /// Sets the report's SHA-256 and size from the reading's hash, if it was taken so.
    pub fn hashed(&self, report: &mut FileReport) {
        if let Some(h) = &self.sha256 {
            report.sha256 = h.hex();
            report.bytes = self.progress.bytes();
        }
    }
}

/// Loads one file (`-` is standard input) into a sink.
///
/// A load stopped by the quality gate is returned with status `failed` and recorded; any
/// other failure is recorded and returned as [`Error::Failed`], whose report names the file.
pub(crate) fn load_file(
    sink: &mut impl Sink,
    path: &Path,
    observer: &dyn Observer,
) -> Result<FileReport> {
    let started = Instant::now();
    let started_at = SystemTime::now();
    let stdin = path.as_os_str() == "-";
    let opts = sink.options().clone();
    // The content's SHA-256 is taken while reading, in the same pass. Only a file that looks
    // like one loaded before (same name and size) is hashed first, so that a re-run is skipped
    // without reading it twice.
    let again = !opts.force && !opts.replace;
    let size = match stdin {
        true => None,
        false => Some(read::input_size(path)?),
    };
    let pre = read::hash_first(path, size, |source, size| {
        Ok(again && sink.looks_loaded(source, size)?)
    })?;
    let Opened {
        source,
        dataset,
        progress,
        sha256,
    } = open_input(path, &opts.read, pre.is_none())?;
    sink.prepare(&dataset)?;
    let mut report = FileReport::new(
        path,
        &dataset.name,
        Some(sink.target(&dataset)),
        Status::Succeeded,
    );
    if let Some((sha, bytes)) = &pre {
        (report.sha256, report.bytes) = (sha.clone(), *bytes);
        if again {
            if let Some(id) = sink.loaded_before(sha, &dataset)? {
                report.status = Status::Skipped;
                report.load_id = Some(id);
                report.seconds = started.elapsed().as_secs_f64();
                log::info!("{}: already loaded as load {id}; skipped", report.path);
                return Ok(report);
            }
        }
    }
    observer.started(path, size, progress.clone());
    let gated = !source.is_rejects();
    let write = Incoming {
        path,
        dataset,
        progress,
        size,
        started_at,
        sha256,
        gated,
    };
    let outcome = sink.write(source, &write, &mut report, observer);
    observer.finished(path);
    report.seconds = started.elapsed().as_secs_f64();
    match outcome {
        Ok(()) => {
            if report.status == Status::Failed {
                let why = "quality gate: too many rejects";
                sink.record_failure(&mut report, why, started_at);
            }
            Ok(report)
        }
        Err(e) => {
            report.status = Status::Failed;
            report.error = Some(e.to_string());
            if report.sha256.is_empty() && !stdin {
                // Stopped before the reading was done: the ledger still names the content.
                if let Ok((sha, bytes)) = read::sha256_file(path) {
                    (report.sha256, report.bytes) = (sha, bytes);
                }
            }
            sink.record_failure(&mut report, &e.to_string(), started_at);
            Err(Error::Failed {
                report: Box::new(report),
                source: Box::new(e),
            })
        }
    }
}
