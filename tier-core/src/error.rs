//! The one error type of `tier-core`.

use std::path::PathBuf;

/// Everything that can go wrong in `tier-core`.
///
/// Bad *records* are never errors: they become rejects with a reason code. An `Error` stops the
/// work on a file (and, when loading, rolls its transaction back).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An input file could not be opened or read.
    #[error("{path}: {source}")]
    Io {
        /// The file concerned (`-` for standard input).
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// An input that is not what it should be (a Parquet file tier did not write, or whose
    /// columns do not match its dataset).
    #[error("{}: {detail}", path.display())]
    Input {
        /// The file concerned.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// A path given as input holds no loadable files.
    #[error("{0}: no *.json, *.json.gz, *.jsonl, *.ndjson or *.parquet files in this directory")]
    NoInputs(PathBuf),
    /// The dataset of a file could not be told from its keys or its name.
    #[error("{}: {}; name it with --dataset (one of {known})", path.display(), if *empty { "empty, and its name tells no dataset" } else { "cannot tell the dataset from its keys or its name" })]
    UnknownDataset {
        /// The file concerned.
        path: PathBuf,
        /// The names of the known datasets, separated by `|`.
        known: String,
        /// Whether the file holds nothing but blanks.
        empty: bool,
    },
    /// The datasets of some of a load's files could not be told; nothing was loaded.
    #[error("the dataset of {} of the files cannot be told; nothing was loaded:{}", .0.len(), .0.iter().map(|e| format!("\n  {e}")).collect::<String>())]
    Datasets(Vec<Error>),
    /// A file whose name points to one dataset while its records carry another's key prefix.
    #[error("{}: the file's name says {by_name} but its records are {by_keys}; rename it or name its dataset", path.display())]
    Stranger {
        /// The file concerned.
        path: PathBuf,
        /// The dataset its name points to.
        by_name: String,
        /// The dataset its keys' prefix shows.
        by_keys: String,
    },
    /// A dataset name that tier does not know.
    #[error("unknown dataset `{name}` (known: {known})")]
    InvalidDataset {
        /// The name asked for.
        name: String,
        /// The names of the known datasets.
        known: String,
    },
    /// A dataset definition that cannot be read or is not valid.
    #[error("{origin}{}: {message}", line.map(|l| format!(":{l}")).unwrap_or_default())]
    Definition {
        /// The file (or built-in) it came from.
        origin: String,
        /// The 1-based line of the problem, when it is known.
        line: Option<usize>,
        /// What is wrong.
        message: String,
    },
    /// A usage error: an option with a value that cannot work.
    #[error("{0}")]
    Usage(String),
    /// The database refused a connection or a statement.
    #[error("database: {message}")]
    Database {
        /// What was being done and what the server said (never a password).
        message: String,
        /// The SQLSTATE the server sent, if it sent one.
        sqlstate: Option<String>,
        /// The driver's error, when there is one.
        #[source]
        source: Option<postgres::Error>,
    },
    /// The load of a file failed after it had started; its report (status `failed`, with the
    /// error) says how far it went, and the ledger has a `failed` row where the server could
    /// still be reached.
    #[error("{}: {source}", report.path)]
    Failed {
        /// The file's report.
        report: Box<crate::report::FileReport>,
        /// What went wrong.
        #[source]
        source: Box<Error>,
    },
    /// An existing table does not have the columns tier needs.
    #[error("table {table} exists with incompatible columns: {detail}; nothing was changed")]
    IncompatibleTable {
        /// Qualified table name.
        table: String,
        /// What differs.
        detail: String,
    },
    /// The share of rejected records was above `--max-reject-ratio` (by default: every record
    /// was rejected); the load was rolled back.
    #[error("{}: {rejected} of {records} records rejected, {}; the load was rolled back", path.display(), gate_text(*max_ratio))]
    QualityGate {
        /// The file concerned.
        path: PathBuf,
        /// Records read.
        records: u64,
        /// Records rejected.
        rejected: u64,
        /// The ratio allowed, if one was given.
        max_ratio: Option<f64>,
    },
    /// The work was stopped from outside (Ctrl-C); what was begun was rolled back.
    #[error("interrupted")]
    Interrupted,
    /// The embedded PostgreSQL server could not be managed.
    #[error("embedded PostgreSQL: {0}")]
    Embedded(String),
    /// A command that only reads found no embedded database (only `load` and `db start`
    /// create one).
    #[error("no embedded database under {}: `tier load` or `tier db start` creates one, or name a database", home.display())]
    NoEmbedded {
        /// The home directory looked in.
        home: PathBuf,
    },
}

impl Error {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// A database error: `what` was being done when the server or the connection said `e`.
    pub fn database(what: &str, e: postgres::Error) -> Self {
        let detail = describe(&e);
        Error::Database {
            message: if what.is_empty() {
                detail
            } else {
                format!("{what}: {detail}")
            },
            sqlstate: e.code().map(|c| c.code().to_string()),
            source: Some(e),
        }
    }

    /// The kind of the error: what the faces tell their users by (the CLI's exit code, the
    /// Python exception's class).
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Io { source, .. } => match source.kind() {
                std::io::ErrorKind::NotFound => ErrorKind::InputNotFound,
                std::io::ErrorKind::InvalidData | std::io::ErrorKind::UnexpectedEof => {
                    ErrorKind::Parse
                }
                _ => ErrorKind::Input,
            },
            Error::NoInputs(_) => ErrorKind::Input,
            Error::Input { .. } => ErrorKind::Parse,
            Error::UnknownDataset { .. } | Error::Stranger { .. } | Error::Datasets(_) => {
                ErrorKind::UnknownDataset
            }
            Error::InvalidDataset { .. } | Error::Usage(_) => ErrorKind::Usage,
            Error::Definition { .. } => ErrorKind::Definition,
            Error::Database { .. } | Error::IncompatibleTable { .. } => ErrorKind::Database,
            Error::QualityGate { .. } => ErrorKind::QualityGate,
            Error::Interrupted => ErrorKind::Interrupted,
            Error::Embedded(_) => ErrorKind::Embedded,
            Error::NoEmbedded { .. } => ErrorKind::NoEmbedded,
            Error::Failed { source, .. } => source.kind(),
        }
    }

    /// Whether the error is the user's (exit code 2) rather than the run's (exit code 1).
    pub fn is_usage(&self) -> bool {
        self.kind().is_usage()
    }

    /// The SQLSTATE of a database error, typed.
    ///
    /// ```
    /// use tier_core::postgres::error::SqlState;
    /// let e = tier_core::Error::Database {
    ///     message: "relation \"x\" does not exist".into(),
    ///     sqlstate: Some("42P01".into()),
    ///     source: None,
    /// };
    /// assert_eq!(e.state(), Some(SqlState::UNDEFINED_TABLE));
    /// ```
    pub fn state(&self) -> Option<postgres::error::SqlState> {
        self.sqlstate().map(postgres::error::SqlState::from_code)
    }

    /// The SQLSTATE of a database error, as its five characters.
    pub fn sqlstate(&self) -> Option<&str> {
        match self {
            Error::Database { sqlstate, .. } => sqlstate.as_deref(),
            Error::Failed { source, .. } => source.sqlstate(),
            _ => None,
        }
    }
}

/// What kind of error an [`Error`] is: one classification for every face.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// An argument or option that cannot work.
    Usage,
    /// A dataset definition that cannot be read or is invalid.
    Definition,
    /// A file whose dataset cannot be told.
    UnknownDataset,
    /// An input that does not exist.
    InputNotFound,
    /// An input that cannot be opened or read.
    Input,
    /// An input that is not what it should be (broken gzip, a foreign Parquet file).
    Parse,
    /// The database refused a connection or a statement, or a table is incompatible.
    Database,
    /// The embedded server could not be managed.
    Embedded,
    /// There is no embedded database to read (exit code 3, as `tier db status`).
    NoEmbedded,
    /// Too many rejects: the load was rolled back.
    QualityGate,
    /// Stopped from outside (Ctrl-C).
    Interrupted,
}

impl ErrorKind {
    /// Whether the user must change the command (exit code 2).
    pub fn is_usage(self) -> bool {
        matches!(
            self,
            ErrorKind::Usage | ErrorKind::Definition | ErrorKind::UnknownDataset
        )
    }

    /// The exit code of the command line: 2 for usage, 3 for the quality gate or no embedded
    /// database, 130 when interrupted, else 1.
    pub fn exit_code(self) -> u8 {
        match self {
            k if k.is_usage() => 2,
            ErrorKind::QualityGate | ErrorKind::NoEmbedded => 3,
            // As shells report a command ended by SIGINT.
            ErrorKind::Interrupted => 130,
            _ => 1,
        }
    }
}

/// What the quality gate allowed, for its message.
fn gate_text(max_ratio: Option<f64>) -> String {
    match max_ratio {
        Some(r) => format!("above the allowed ratio {r}"),
        None => "every one of them (is it of another dataset? --dataset names it; \
                 --max-reject-ratio 1 allows it)"
            .into(),
    }
}

impl From<postgres::Error> for Error {
    fn from(e: postgres::Error) -> Self {
        Error::database("", e)
    }
}

/// The message of a database error, with the server's detail when there is one.
pub fn describe(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => {
            let mut s = format!("{}: {}", db.severity(), db.message());
            if let Some(d) = db.detail() {
                s.push_str(&format!(" ({d})"));
            }
            s
        }
        None => {
            let mut s = e.to_string();
            let mut src = std::error::Error::source(e);
            while let Some(inner) = src {
                let m = inner.to_string();
                if !s.contains(&m) {
                    s.push_str(": ");
                    s.push_str(&m);
                }
                src = inner.source();
            }
            s
        }
    }
}

/// Shorthand for results whose error is [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
