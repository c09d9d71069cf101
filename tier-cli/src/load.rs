//! `tier load` and `tier check`: the files of the paths given, their reports and the run's outcome.

use std::io::Write;
use std::path::PathBuf;

use tier_core::Destination;
use tier_core::LoadOptions;
use tier_core::{Error, FileReport, Report};

use crate::*;

pub(crate) fn inputs(paths: &[PathBuf], common: &Common) -> Result<Vec<PathBuf>, Error> {
    let paths = if paths.is_empty() {
        vec![PathBuf::from("data")]
    } else {
        paths.to_vec()
    };
    tier_core::expand_inputs_at(&paths, &common.globs, common.snapshot)
}

/// Each file's result as an info record (in the log file, and on standard error with `-v`).
pub(crate) fn log_results(report: &Report) {
    report.files.iter().for_each(logging::file_result);
}

pub(crate) fn print_report(report: &Report, format: ReportFormat) {
    let text = match format {
        ReportFormat::Json => report.to_json() + "\n",
        ReportFormat::Text => report.to_text(),
    };
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

pub(crate) fn load(args: LoadArgs) -> Result<Outcome, Error> {
    let read = args.common.read_options()?;
    let files = inputs(&args.paths, &args.common)?;
    let opts = LoadOptions {
        read,
        schema: args.schema.clone(),
        force: args.force,
        replace: args.replace,
        max_reject_ratio: args.max_reject_ratio,
        catalog_url: args.catalog_url.clone(),
    };
    let bars =
        progress::Bars::with_rejects(args.common.progress, args.common.rejects_out.as_deref())?;
    let dest = match &args.lake {
        Some(dir) => Destination::Lake(dir.clone()),
        None => Destination::Postgres {
            database_url: args.database_url.clone(),
        },
    };
    let results = tier_core::load_files(&files, &dest, &opts, args.jobs, &bars)?;
    bars.flush()?;
    let (reports, failed) = split(results);
    let report = Report::new(reports);
    log_results(&report);
    print_report(&report, args.common.report);
    Ok(finish(&report, failed, opts.max_reject_ratio))
}

/// How a run ends: a failure first, else exit 3 when the quality gate stopped a file (each
/// such file logged).
pub(crate) fn finish(
    report: &Report,
    failed: Option<Outcome>,
    max_reject_ratio: Option<tier_core::RejectRatio>,
) -> Outcome {
    let mut gate = false;
    for e in report
        .files
        .iter()
        .filter_map(|f| f.gate_error(max_reject_ratio))
    {
        logging::error(&e.to_string());
        gate = true;
    }
    match failed {
        Some(f) => f,
        None if gate => Outcome::Gate,
        None => Outcome::Ok,
    }
}

/// The reports of the files that succeeded, and how the failures end the run (each logged):
/// a usage error (exit 2) before any other failure (exit 1).
pub(crate) fn split(results: Vec<Result<FileReport, Error>>) -> (Vec<FileReport>, Option<Outcome>) {
    let mut reports = Vec::new();
    let mut failed = None;
    let mut interrupted = false;
    for r in results {
        match r {
            Ok(rep) => reports.push(rep),
            // Files not started after Ctrl-C: said once.
            Err(Error::Interrupted) => interrupted = true,
            Err(e) => {
                logging::error(&e.to_string());
                // A load that failed after it started is in the report too, with its error.
                let e = match e {
                    Error::Failed { report, source } => {
                        reports.push(*report);
                        *source
                    }
                    e => e,
                };
                if matches!(e, Error::Interrupted) {
                    interrupted = true;
                } else if e.is_usage() {
                    failed = Some(Outcome::Usage);
                } else {
                    failed.get_or_insert(Outcome::Failed);
                }
            }
        }
    }
    if interrupted {
        logging::error("interrupted: what was begun was rolled back");
        failed = Some(Outcome::Interrupted);
    }
    (reports, failed)
}

pub(crate) fn check_files(args: CheckArgs) -> Result<Outcome, Error> {
    let opts = args.common.read_options()?;
    let files = inputs(&args.paths, &args.common)?;
    let bars =
        progress::Bars::with_rejects(args.common.progress, args.common.rejects_out.as_deref())?;
    let results = tier_core::check_files(&files, &opts, args.max_reject_ratio, args.jobs, &bars);
    bars.flush()?;
    let (reports, failed) = split(results);
    let report = Report::new(reports);
    log_results(&report);
    print_report(&report, args.common.report);
    Ok(finish(&report, failed, args.max_reject_ratio))
}
