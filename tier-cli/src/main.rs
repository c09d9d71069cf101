//! `tier`: load JSON event exports into typed PostgreSQL tables.
//!
//! A thin shell over `tier-core`: arguments, logging, progress bars and exit codes live here;
//! everything else is the library's.

mod args;
mod db;
mod generate;
mod load;
mod loads;
mod logging;
mod progress;
mod schema;
mod watch;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use tier_core::Error;

pub(crate) use args::*;
pub(crate) use db::*;
pub(crate) use generate::*;
pub(crate) use load::*;
pub(crate) use loads::*;
pub(crate) use schema::*;

/// How a run ended.
pub(crate) enum Outcome {
    Ok,
    /// Some files failed (each already reported on standard error).
    Failed,
    /// A quality gate stopped a load.
    Gate,
    /// A file could not be used as given (each already reported on standard error).
    Usage,
    /// The embedded server does not run (`tier db status`).
    NotRunning,
    /// Ctrl-C stopped the run (exit 130, as shells expect).
    Interrupted,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    let log_file = match &cli.command {
        Command::Load(a) => a.common.log_file.clone(),
        Command::Check(a) => a.common.log_file.clone(),
        Command::Watch(a) => a.log_file.clone(),
        _ => None,
    };
    // A watcher is a service: its log says what it does, file by file.
    let verbose = match &cli.command {
        Command::Watch(_) => cli.verbose + 1,
        _ => cli.verbose,
    };
    let json = cli.log_format == LogFormat::Json;
    if let Err(e) = outputs_apart_from_inputs(&cli.command) {
        logging::error(&e.to_string());
        return ExitCode::from(e.kind().exit_code());
    }
    match &cli.command {
        Command::Watch(_) => progress::stop_on_signals(),
        _ => progress::stop_on_ctrl_c(),
    }
    if let Err(e) = logging::init(verbose, cli.quiet, log_file.as_deref(), json) {
        eprintln!("tier: {e}");
        return ExitCode::from(1);
    }
    match run(cli) {
        Ok(Outcome::Ok) => ExitCode::SUCCESS,
        Ok(Outcome::Failed) => ExitCode::from(1),
        Ok(Outcome::Gate) => ExitCode::from(3),
        Ok(Outcome::Usage) => ExitCode::from(2),
        Ok(Outcome::NotRunning) => ExitCode::from(3),
        Ok(Outcome::Interrupted) => ExitCode::from(130),
        Err(e) => {
            logging::error(&e.to_string());
            ExitCode::from(e.kind().exit_code())
        }
    }
}

/// Refuses a `--rejects-out` or `--log-file` that is one of the inputs: it would be written over
/// before it is read.
fn outputs_apart_from_inputs(command: &Command) -> Result<(), Error> {
    use std::os::unix::fs::MetadataExt;
    let (paths, common) = match command {
        Command::Load(a) => (&a.paths, &a.common),
        Command::Check(a) => (&a.paths, &a.common),
        _ => return Ok(()),
    };
    let outputs = [
        ("--rejects-out", &common.rejects_out),
        ("--log-file", &common.log_file),
    ];
    let id = |p: &Path| std::fs::metadata(p).ok().map(|m| (m.dev(), m.ino()));
    let taken: Vec<(&str, &PathBuf, (u64, u64))> = outputs
        .iter()
        .filter_map(|(flag, p)| p.as_ref().and_then(|p| id(p).map(|i| (*flag, p, i))))
        .collect();
    if taken.is_empty() {
        return Ok(());
    }
    for input in inputs(paths, common).unwrap_or_else(|_| paths.clone()) {
        if let Some(i) = id(&input) {
            if let Some((flag, p, _)) = taken.iter().find(|t| t.2 == i) {
                return Err(Error::Usage(format!(
                    "{flag} {} is one of the inputs: it would be written over before it is read",
                    p.display()
                )));
            }
        }
    }
    Ok(())
}

fn run(cli: Cli) -> Result<Outcome, Error> {
    match cli.command {
        Command::Load(args) => load(args),
        Command::Check(args) => check_files(args),
        Command::Schema(args) => schema(args),
        Command::Generate(args) => generate_file(args),
        Command::Loads(args) => loads(args),
        Command::Watch(args) => watch::run(args),
        Command::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(shell, &mut Cli::command(), "tier", &mut std::io::stdout());
            Ok(Outcome::Ok)
        }
        Command::Db { action } => db_command(action),
    }
}
