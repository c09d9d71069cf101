//! The command line: every command's arguments, as clap reads them.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use tier_core::db::ddl::SchemaName;
use tier_core::{Error, ReadOptions, Registry};

use crate::watch;

/// Load JSON exports of event streams into typed PostgreSQL tables, accounting for every record.
#[derive(Parser)]
#[command(name = "tier", version, about, propagate_version = true)]
pub(crate) struct Cli {
    /// More log output on standard error (-v: info, -vv: debug, -vvv: trace).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub(crate) verbose: u8,
    /// Only errors on standard error.
    #[arg(short, long, global = true)]
    pub(crate) quiet: bool,
    /// The log's format: lines of text, or one JSON object per record (a file's report fields
    /// with its result).
    #[arg(long, value_enum, global = true, default_value = "text")]
    pub(crate) log_format: LogFormat,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Clone, Copy, ValueEnum, PartialEq)]
pub(crate) enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
pub(crate) enum Command {
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
pub(crate) enum ReportFormat {
    Text,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum ProgressMode {
    Auto,
    Always,
    Never,
}

/// Where dataset definitions come from.
#[derive(Args)]
pub(crate) struct Definitions {
    /// A dataset definition (.toml) or a directory of them; repeatable (also $TIER_DATASETS).
    #[arg(long = "datasets", value_name = "PATH")]
    pub(crate) datasets: Vec<PathBuf>,
}

impl Definitions {
    pub(crate) fn registry(&self) -> Result<Registry, Error> {
        Registry::from_env(&self.datasets)
    }
}

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
pub(crate) struct SchemaArgs {
    #[command(subcommand)]
    pub(crate) infer: Option<SchemaCommand>,
    /// One dataset (default: every known one).
    pub(crate) dataset: Option<String>,
    /// Print the dataset's TOML definition instead of the DDL.
    #[arg(long, requires = "dataset")]
    pub(crate) definition: bool,
    /// PostgreSQL schema.
    #[arg(long, default_value = "public")]
    pub(crate) schema: SchemaName,
    #[command(flatten)]
    pub(crate) definitions: Definitions,
}

#[derive(Subcommand)]
pub(crate) enum SchemaCommand {
    /// Read a sample of a file and propose a dataset definition (loads nothing).
    Infer {
        /// The file to read.
        file: PathBuf,
        /// The dataset's name (default: from the file name).
        #[arg(long)]
        name: Option<String>,
        /// How many records to read.
        #[arg(long, default_value_t = tier_core::DEFAULT_SAMPLE)]
        sample: usize,
    },
}

#[derive(Args)]
pub(crate) struct Common {
    /// Force the dataset instead of detecting it from keys or file name.
    #[arg(long)]
    pub(crate) dataset: Option<String>,
    #[command(flatten)]
    pub(crate) definitions: Definitions,
    /// Report format on standard output.
    #[arg(long, value_enum, default_value = "text")]
    pub(crate) report: ReportFormat,
    /// Records larger than this many bytes are rejected as record_too_large.
    #[arg(long, default_value_t = tier_core::DEFAULT_MAX_RECORD_BYTES)]
    pub(crate) max_record_bytes: usize,
    /// Progress bars on standard error.
    #[arg(long, value_enum, default_value = "auto")]
    pub(crate) progress: ProgressMode,
    /// Also write the log (info and above, with each file's result) to this file.
    #[arg(long)]
    pub(crate) log_file: Option<PathBuf>,
    /// In directories, only files whose name or path below the directory matches (repeatable).
    #[arg(long = "glob", value_name = "PATTERN")]
    pub(crate) globs: Vec<String>,
    /// Also write the rejects found while reading as JSON Lines to this file.
    #[arg(long)]
    pub(crate) rejects_out: Option<PathBuf>,
    /// Read a lake table (an Iceberg table's folder) at this snapshot instead of its current one.
    #[arg(long, value_name = "ID")]
    pub(crate) snapshot: Option<i64>,
}

impl Common {
    pub(crate) fn read_options(&self) -> Result<ReadOptions, Error> {
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
pub(crate) struct LoadArgs {
    /// Files or directories (`-` reads standard input).
    pub(crate) paths: Vec<PathBuf>,
    #[command(flatten)]
    pub(crate) common: Common,
    /// PostgreSQL URL (else DATABASE_URL, the PG* variables, or the embedded database).
    #[arg(long)]
    pub(crate) database_url: Option<String>,
    /// PostgreSQL schema of the tables.
    #[arg(long, default_value = "public")]
    pub(crate) schema: SchemaName,
    /// Load even files whose content was loaded before.
    #[arg(long)]
    pub(crate) force: bool,
    /// Empty the target table first, in the same transaction.
    #[arg(long)]
    pub(crate) replace: bool,
    /// Roll a file's load back (exit 3) when more than this share of its records is rejected
    /// (default: only when every record is; 1 never).
    #[arg(long)]
    pub(crate) max_reject_ratio: Option<tier_core::RejectRatio>,
    /// Files loaded at once, each on its own connection.
    #[arg(short, long, default_value_t = 1)]
    pub(crate) jobs: usize,
    /// Write Parquet to this lake directory instead of loading PostgreSQL.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["database_url", "replace"])]
    pub(crate) lake: Option<PathBuf>,
    /// Keep the lake's Iceberg catalog, and its ledger, in this PostgreSQL database (a URL or
    /// libpq settings) instead of its own files.
    #[arg(long, value_name = "URL", requires = "lake")]
    pub(crate) catalog_url: Option<String>,
}

#[derive(Args)]
pub(crate) struct LoadsArgs {
    /// Only the loads into this table.
    #[arg(long)]
    pub(crate) table: Option<String>,
    /// How many loads.
    #[arg(long, default_value_t = 20)]
    pub(crate) limit: i64,
    /// Report format on standard output.
    #[arg(long, value_enum, default_value = "text")]
    pub(crate) report: ReportFormat,
    /// PostgreSQL URL (else DATABASE_URL, the PG* variables, or the embedded database).
    #[arg(long)]
    pub(crate) database_url: Option<String>,
    /// PostgreSQL schema of the ledger.
    #[arg(long, default_value = "public")]
    pub(crate) schema: SchemaName,
    /// The ledger of this lake instead.
    #[arg(long, value_name = "DIR", conflicts_with = "database_url")]
    pub(crate) lake: Option<PathBuf>,
}

#[derive(Args)]
pub(crate) struct CheckArgs {
    /// Files or directories (`-` reads standard input).
    pub(crate) paths: Vec<PathBuf>,
    #[command(flatten)]
    pub(crate) common: Common,
    /// Files checked at once.
    #[arg(short, long, default_value_t = 1)]
    pub(crate) jobs: usize,
    /// Fail a file (exit 3) when more than this share of its records is rejected, as a load
    /// would (default: only when every record is).
    #[arg(long)]
    pub(crate) max_reject_ratio: Option<tier_core::RejectRatio>,
}

#[derive(Args)]
pub(crate) struct GenerateArgs {
    /// A built-in dataset: track_events or weather.
    pub(crate) dataset: String,
    /// How many records.
    #[arg(long)]
    pub(crate) records: u64,
    /// Seed: the same seed writes the same bytes.
    #[arg(long, default_value_t = 0)]
    pub(crate) seed: u64,
    /// Share of records that are defects or duplicates.
    #[arg(long, default_value_t = 0.0)]
    pub(crate) defect_rate: f64,
    /// Write the closing `]` (real exports lack it).
    #[arg(long)]
    pub(crate) closed: bool,
    /// Write the clean rows as CSV with the table's column names.
    #[arg(long)]
    pub(crate) csv: bool,
    /// Output file (`-` for standard output).
    #[arg(short, long)]
    pub(crate) output: PathBuf,
}

#[derive(Subcommand)]
pub(crate) enum DbAction {
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
