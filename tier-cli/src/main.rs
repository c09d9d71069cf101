//! `tier`: load JSON event exports into typed PostgreSQL tables.
//!
//! A thin shell over `tier-core`: arguments, logging, progress bars and exit codes live here;
//! everything else is the library's.

mod logging;
mod progress;
mod watch;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use tier_core::db::embedded::{Cluster, State};
use tier_core::driver::{self, Destination};
use tier_core::generate::{self, GenerateOptions};
use tier_core::LoadOptions;
use tier_core::ReadOptions;
use tier_core::{Error, FileReport, Registry, Report};

/// Load JSON exports of event streams into typed PostgreSQL tables, accounting for every record.
#[derive(Parser)]
#[command(name = "tier", version, about, propagate_version = true)]
struct Cli {
    /// More log output on standard error (-v: info, -vv: debug, -vvv: trace).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    /// Only errors on standard error.
    #[arg(short, long, global = true)]
    quiet: bool,
    /// The log's format: lines of text, or one JSON object per record (a file's report fields
    /// with its result).
    #[arg(long, value_enum, global = true, default_value = "text")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum, PartialEq)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Load files, or every *.json, *.json.gz, *.jsonl, *.ndjson, *.parquet of a directory
    /// (default data/).
    Load(LoadArgs),
    /// Read and validate only, without a database (the quality gate of a load applies).
    Check(CheckArgs),
    /// Print the DDL of the tables, a dataset's definition, or propose a definition.
    Schema(SchemaArgs),
    /// Write synthetic data in the real source layout.
    Generate(GenerateArgs),
    /// Print the ledger: the last loads, newest first.
    Loads(LoadsArgs),
    /// Watch directories or s3:// prefixes and load each file that lands, exactly once, with
    /// any number of watchers.
    Watch(watch::WatchArgs),
    /// Print a shell completion script.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Manage the embedded PostgreSQL (under $TIER_HOME, default ./.tier).
    Db {
        #[command(subcommand)]
        action: DbAction,
    },
}

#[derive(Clone, Copy, ValueEnum, PartialEq)]
enum ReportFormat {
    Text,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
enum ProgressMode {
    Auto,
    Always,
    Never,
}

/// Where dataset definitions come from.
#[derive(Args)]
pub(crate) struct Definitions {
    /// A dataset definition (.toml) or a directory of them; repeatable (also $TIER_DATASETS).
    #[arg(long = "datasets", value_name = "PATH")]
    datasets: Vec<PathBuf>,
}

impl Definitions {
    pub(crate) fn registry(&self) -> Result<Registry, Error> {
        Registry::from_env(&self.datasets)
    }
}

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
struct SchemaArgs {
    #[command(subcommand)]
    infer: Option<SchemaCommand>,
    /// One dataset (default: every known one).
    dataset: Option<String>,
    /// Print the dataset's TOML definition instead of the DDL.
    #[arg(long, requires = "dataset")]
    definition: bool,
    /// PostgreSQL schema.
    #[arg(long, default_value = "public")]
    schema: String,
    #[command(flatten)]
    definitions: Definitions,
}

#[derive(Subcommand)]
enum SchemaCommand {
    /// Read a sample of a file and propose a dataset definition (loads nothing).
    Infer {
        /// The file to read.
        file: PathBuf,
        /// The dataset's name (default: from the file name).
        #[arg(long)]
        name: Option<String>,
        /// How many records to read.
        #[arg(long, default_value_t = tier_core::schema::infer::DEFAULT_SAMPLE)]
        sample: usize,
    },
}

#[derive(Args)]
struct Common {
    /// Force the dataset instead of detecting it from keys or file name.
    #[arg(long)]
    dataset: Option<String>,
    #[command(flatten)]
    definitions: Definitions,
    /// Report format on standard output.
    #[arg(long, value_enum, default_value = "text")]
    report: ReportFormat,
    /// Records larger than this many bytes are rejected as record_too_large.
    #[arg(long, default_value_t = tier_core::read::DEFAULT_MAX_RECORD_BYTES)]
    max_record_bytes: usize,
    /// Progress bars on standard error.
    #[arg(long, value_enum, default_value = "auto")]
    progress: ProgressMode,
    /// Also write the log (info and above, with each file's result) to this file.
    #[arg(long)]
    log_file: Option<PathBuf>,
    /// In directories, only files whose name or path below the directory matches (repeatable).
    #[arg(long = "glob", value_name = "PATTERN")]
    globs: Vec<String>,
    /// Also write the rejects found while reading as JSON Lines to this file.
    #[arg(long)]
    rejects_out: Option<PathBuf>,
    /// Read a lake table (an Iceberg table's folder) at this snapshot instead of its current one.
    #[arg(long, value_name = "ID")]
    snapshot: Option<i64>,
}

impl Common {
    fn read_options(&self) -> Result<ReadOptions, Error> {
        let datasets = self.definitions.registry()?;
        let dataset = self
            .dataset
            .as_deref()
            .map(|d| datasets.get(d))
            .transpose()?;
        Ok(ReadOptions {
            dataset,
            datasets,
            max_record_bytes: self.max_record_bytes,
            ..ReadOptions::default()
        })
    }
}

#[derive(Args)]
struct LoadArgs {
    /// Files or directories (`-` reads standard input).
    paths: Vec<PathBuf>,
    #[command(flatten)]
    common: Common,
    /// PostgreSQL URL (else DATABASE_URL, the PG* variables, or the embedded database).
    #[arg(long)]
    database_url: Option<String>,
    /// PostgreSQL schema of the tables.
    #[arg(long, default_value = "public")]
    schema: String,
    /// Load even files whose content was loaded before.
    #[arg(long)]
    force: bool,
    /// Empty the target table first, in the same transaction.
    #[arg(long)]
    replace: bool,
    /// Roll a file's load back (exit 3) when more than this share of its records is rejected
    /// (default: only when every record is; 1 never).
    #[arg(long)]
    max_reject_ratio: Option<f64>,
    /// Files loaded at once, each on its own connection.
    #[arg(short, long, default_value_t = 1)]
    jobs: usize,
    /// Write Parquet to this lake directory instead of loading PostgreSQL.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["database_url", "replace"])]
    lake: Option<PathBuf>,
    /// Keep the lake's Iceberg catalog, and its ledger, in this PostgreSQL database (a URL or
    /// libpq settings) instead of its own files.
    #[arg(long, value_name = "URL", requires = "lake")]
    catalog_url: Option<String>,
}

#[derive(Args)]
struct LoadsArgs {
    /// Only the loads into this table.
    #[arg(long)]
    table: Option<String>,
    /// How many loads.
    #[arg(long, default_value_t = 20)]
    limit: i64,
    /// Report format on standard output.
    #[arg(long, value_enum, default_value = "text")]
    report: ReportFormat,
    /// PostgreSQL URL (else DATABASE_URL, the PG* variables, or the embedded database).
    #[arg(long)]
    database_url: Option<String>,
    /// PostgreSQL schema of the ledger.
    #[arg(long, default_value = "public")]
    schema: String,
    /// The ledger of this lake instead.
    #[arg(long, value_name = "DIR", conflicts_with = "database_url")]
    lake: Option<PathBuf>,
}

#[derive(Args)]
struct CheckArgs {
    /// Files or directories (`-` reads standard input).
    paths: Vec<PathBuf>,
    #[command(flatten)]
    common: Common,
    /// Files checked at once.
    #[arg(short, long, default_value_t = 1)]
    jobs: usize,
    /// Fail a file (exit 3) when more than this share of its records is rejected, as a load
    /// would (default: only when every record is).
    #[arg(long)]
    max_reject_ratio: Option<f64>,
}

#[derive(Args)]
struct GenerateArgs {
    /// A built-in dataset: track_events or weather.
    dataset: String,
    /// How many records.
    #[arg(long)]
    records: u64,
    /// Seed: the same seed writes the same bytes.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Share of records that are defects or duplicates.
    #[arg(long, default_value_t = 0.0)]
    defect_rate: f64,
    /// Write the closing `]` (real exports lack it).
    #[arg(long)]
    closed: bool,
    /// Write the clean rows as CSV with the table's column names.
    #[arg(long)]
    csv: bool,
    /// Output file (`-` for standard output).
    #[arg(short, long)]
    output: PathBuf,
}

#[derive(Subcommand)]
enum DbAction {
    /// Create (if needed) and start the embedded PostgreSQL.
    Start,
    /// Stop it.
    Stop,
    /// Say whether it runs and where its data is (exit 0 when it runs, 3 when not).
    Status,
    /// Print its connection URL (exit 3 when there is none).
    Url,
    /// Stop it and remove its data, wherever it lives.
    Destroy {
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
    /// Open psql on it.
    Psql {
        /// Arguments passed to psql.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

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

fn inputs(paths: &[PathBuf], common: &Common) -> Result<Vec<PathBuf>, Error> {
    let paths = if paths.is_empty() {
        vec![PathBuf::from("data")]
    } else {
        paths.to_vec()
    };
    tier_core::read::expand_inputs_at(&paths, &common.globs, common.snapshot)
}

/// Each file's result as an info record (in the log file, and on standard error with `-v`).
fn log_results(report: &Report) {
    report.files.iter().for_each(logging::file_result);
}

fn print_report(report: &Report, format: ReportFormat) {
    let text = match format {
        ReportFormat::Json => report.to_json() + "\n",
        ReportFormat::Text => report.to_text(),
    };
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

fn schema(args: SchemaArgs) -> Result<Outcome, Error> {
    if let Some(SchemaCommand::Infer { file, name, sample }) = &args.infer {
        print!(
            "{}",
            tier_core::schema::infer::infer(file, name.as_deref(), *sample)?
        );
        return Ok(Outcome::Ok);
    }
    tier_core::db::ddl::check_schema_name(&args.schema)?;
    let registry = args.definitions.registry()?;
    let datasets = match &args.dataset {
        Some(name) => vec![registry.get(name)?],
        None => registry.all().to_vec(),
    };
    if args.definition {
        print!("{}", datasets[0].source);
    } else {
        print!("{}", tier_core::db::ddl::full_ddl(&datasets, &args.schema));
    }
    Ok(Outcome::Ok)
}

fn load(args: LoadArgs) -> Result<Outcome, Error> {
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
    ratio_in_range(opts.max_reject_ratio)?;
    if args.lake.is_none() {
        tier_core::db::ddl::check_schema_name(&opts.schema)?;
    }
    let bars =
        progress::Bars::with_rejects(args.common.progress, args.common.rejects_out.as_deref())?;
    let dest = match &args.lake {
        Some(dir) => Destination::Lake(dir.clone()),
        None => Destination::Postgres {
            database_url: args.database_url.clone(),
        },
    };
    let results = driver::load_files(&files, &dest, &opts, args.jobs, &bars)?;
    bars.flush()?;
    let (reports, failed) = split(results);
    let report = Report::new(reports);
    log_results(&report);
    print_report(&report, args.common.report);
    Ok(finish(&report, failed, opts.max_reject_ratio))
}

pub(crate) fn ratio_in_range(ratio: Option<f64>) -> Result<(), Error> {
    match ratio {
        Some(r) if !(0.0..=1.0).contains(&r) => Err(Error::Usage(format!(
            "--max-reject-ratio must be between 0 and 1, not {r}"
        ))),
        _ => Ok(()),
    }
}

/// How a run ends: a failure first, else exit 3 when the quality gate stopped a file (each
/// such file logged).
fn finish(report: &Report, failed: Option<Outcome>, max_reject_ratio: Option<f64>) -> Outcome {
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
fn split(results: Vec<Result<FileReport, Error>>) -> (Vec<FileReport>, Option<Outcome>) {
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

fn check_files(args: CheckArgs) -> Result<Outcome, Error> {
    let opts = args.common.read_options()?;
    let files = inputs(&args.paths, &args.common)?;
    let bars =
        progress::Bars::with_rejects(args.common.progress, args.common.rejects_out.as_deref())?;
    ratio_in_range(args.max_reject_ratio)?;
    let results = driver::check_files(&files, &opts, args.max_reject_ratio, args.jobs, &bars);
    bars.flush()?;
    let (reports, failed) = split(results);
    let report = Report::new(reports);
    log_results(&report);
    print_report(&report, args.common.report);
    Ok(finish(&report, failed, args.max_reject_ratio))
}

fn loads(args: LoadsArgs) -> Result<Outcome, Error> {
    let mut rows = match &args.lake {
        Some(dir) => {
            let mut rows = tier_core::sink::lake::ledger_of(dir)?;
            rows.retain(|l| args.table.as_deref().is_none_or(|t| l.target_table == t));
            rows.reverse();
            rows
        }
        None => {
            tier_core::db::ddl::check_schema_name(&args.schema)?;
            let mut client = tier_core::db::open_existing(args.database_url.as_deref())?;
            let ledger = tier_core::sink::ledger::Ledger::new(&args.schema);
            match ledger.list(&mut client, args.table.as_deref(), args.limit) {
                Ok(rows) => rows,
                // No ledger yet: nothing was loaded.
                Err(e)
                    if e.state() == Some(tier_core::postgres::error::SqlState::UNDEFINED_TABLE) =>
                {
                    Vec::new()
                }
                Err(e) => return Err(e),
            }
        }
    };
    rows.truncate(args.limit.max(0) as usize);
    let mut out = std::io::stdout().lock();
    let text = match args.report {
        ReportFormat::Json => {
            serde_json::to_string(&serde_json::json!({ "loads": rows }))
                .map_err(|e| Error::Usage(e.to_string()))?
                + "\n"
        }
        ReportFormat::Text => {
            let mut t = String::new();
            for l in &rows {
                t.push_str(&format!(
                    "{:>6}  {:<9}  {}  {} records: {} loaded, {} duplicates, {} rejected  {}  {}\n",
                    l.load_id,
                    l.status,
                    tier_core::report::visible(&l.target_table),
                    l.records,
                    l.loaded,
                    l.duplicates,
                    l.rejected,
                    l.finished_at,
                    tier_core::report::visible(&l.source),
                ));
            }
            t
        }
    };
    let _ = out.write_all(text.as_bytes());
    Ok(Outcome::Ok)
}

fn generate_file(args: GenerateArgs) -> Result<Outcome, Error> {
    if !(0.0..=1.0).contains(&args.defect_rate) {
        return Err(Error::Usage("--defect-rate must be between 0 and 1".into()));
    }
    let dataset = Registry::builtin().get(&args.dataset)?;
    if !generate::supports(&dataset) {
        return Err(Error::Usage(format!(
            "tier generate makes data for the built-in datasets only, not {dataset}"
        )));
    }
    let opts = GenerateOptions {
        dataset,
        records: args.records,
        seed: args.seed,
        defect_rate: args.defect_rate,
        closed: args.closed,
        csv: args.csv,
    };
    let path = &args.output;
    let result = if path == Path::new("-") {
        generate::generate(&opts, &mut std::io::stdout().lock())
    } else {
        let mut f = std::fs::File::create(path).map_err(|e| Error::io(path, e))?;
        generate::generate(&opts, &mut f)
    };
    result.map_err(|e| Error::io(path, e))?;
    Ok(Outcome::Ok)
}

/// An error unless the embedded cluster exists (commands that only read create nothing).
fn exists(cluster: &Cluster) -> Result<(), Error> {
    if cluster.state() == State::Absent {
        return Err(Error::NoEmbedded {
            home: cluster.home().to_path_buf(),
        });
    }
    Ok(())
}

/// Asks a yes/no question on the terminal; no terminal means no.
fn confirm(question: &str) -> Result<bool, Error> {
    use std::io::IsTerminal;
    if !std::io::stdin().is_terminal() {
        return Ok(false);
    }
    eprint!("{question}");
    let mut answer = String::new();
    std::io::stdin()
        .read_line(&mut answer)
        .map_err(|e| Error::io("-", e))?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}

fn db_command(action: DbAction) -> Result<Outcome, Error> {
    let cluster = Cluster::from_env()?;
    match action {
        DbAction::Start => {
            cluster.start()?;
            println!("running: {}", cluster.url());
        }
        DbAction::Stop => {
            cluster.stop()?;
            println!("stopped");
        }
        DbAction::Status => {
            // Looks only: nothing is created or started. Exit 0 when it runs, 3 when not (as
            // `pg_ctl status`).
            let state = cluster.state();
            match state {
                State::Running => println!("running: {}", cluster.url()),
                State::Stopped => println!("stopped"),
                State::Absent => println!("not created"),
            }
            println!("  home:   {}", cluster.home().display());
            println!("  data:   {}", cluster.data_dir().display());
            println!("  socket: {}", cluster.socket_dir().display());
            if state != State::Running {
                return Ok(Outcome::NotRunning);
            }
        }
        DbAction::Url => {
            exists(&cluster)?;
            println!("{}", cluster.url());
        }
        DbAction::Destroy { yes } => {
            if cluster.state() == State::Absent && !cluster.home().join("pgdata").exists() {
                println!(
                    "nothing to remove: no embedded database under {}",
                    cluster.home().display()
                );
                return Ok(Outcome::Ok);
            }
            if !yes
                && !confirm(&format!(
                    "remove the embedded database at {} and every table in it? [y/N] ",
                    cluster.data_dir().display()
                ))?
            {
                return Err(Error::Usage(
                    "not removed (say --yes to remove without asking)".into(),
                ));
            }
            match cluster.destroy()? {
                Some(data) => println!("removed {}", data.display()),
                None => println!("removed"),
            }
        }
        DbAction::Psql { args } => {
            exists(&cluster)?;
            cluster.start()?;
            let status = std::process::Command::new("psql")
                .arg(cluster.url())
                .args(&args)
                .status()
                .map_err(|e| Error::Embedded(format!("cannot run psql: {e}")))?;
            if !status.success() {
                return Err(Error::Embedded(format!("psql exited with {status}")));
            }
        }
    }
    Ok(Outcome::Ok)
}
