//! `tier watch`: the arguments, the signals' grace, the metrics endpoint, the log of each file.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use clap::Args;
use tier_core::watch::{watch, Metrics, WatchOptions};
use tier_core::Destination;
use tier_core::{Error, LoadOptions, Observer, ReadOptions};

use crate::progress::STOP;
use crate::{logging, Definitions, Outcome};

/// How long a load in progress may run on after SIGTERM or SIGINT before it is rolled back.
const GRACE: Duration = Duration::from_secs(10);

#[derive(Args)]
pub(crate) struct WatchArgs {
    /// Directories (walked as `tier load` walks one) or s3:// prefixes.
    #[arg(required = true)]
    sources: Vec<PathBuf>,
    /// PostgreSQL URL (else DATABASE_URL, the PG* variables, or the embedded database).
    #[arg(long)]
    database_url: Option<String>,
    /// Write Parquet to this lake (directory or s3:// URL) instead of loading PostgreSQL.
    #[arg(long, value_name = "DIR", conflicts_with = "database_url")]
    lake: Option<PathBuf>,
    /// Keep the lake's Iceberg catalog, and its ledger, in this PostgreSQL database.
    #[arg(long, value_name = "URL", requires = "lake")]
    catalog_url: Option<String>,
    /// Seconds between two listings.
    #[arg(long, default_value_t = 1.0)]
    interval: f64,
    /// Seconds a local file's size and modification time must hold before it is taken.
    #[arg(long, default_value_t = 1.0)]
    settle: f64,
    /// Files loaded at once, each on its own connection.
    #[arg(short, long, default_value_t = 1)]
    jobs: usize,
    /// Only files whose name or path below a source matches (repeatable).
    #[arg(long = "glob", value_name = "PATTERN")]
    globs: Vec<String>,
    #[command(flatten)]
    definitions: Definitions,
    /// PostgreSQL schema of the tables.
    #[arg(long, default_value = "public")]
    schema: tier_core::db::ddl::SchemaName,
    /// Roll a file's load back when more than this share of its records is rejected.
    #[arg(long)]
    max_reject_ratio: Option<tier_core::RejectRatio>,
    /// Serve GET /metrics (Prometheus text format) and GET /healthz on this address.
    #[arg(long, value_name = "HOST:PORT")]
    metrics_addr: Option<String>,
    /// Also write the log (each file's result) to this file.
    #[arg(long)]
    pub(crate) log_file: Option<PathBuf>,
    /// Load the backlog, then exit (0 when no file failed, 1 otherwise).
    #[arg(long)]
    once: bool,
}

/// The observer of a watcher's loads: after a stop signal, a load in progress runs on for the
/// grace, then rolls back.
struct Grace;

static STOPPED_AT: OnceLock<Instant> = OnceLock::new();

impl Observer for Grace {
    fn stopped(&self) -> tier_core::Result<()> {
        if !STOP.load(Ordering::Relaxed) {
            return Ok(());
        }
        if STOPPED_AT.get_or_init(Instant::now).elapsed() > GRACE {
            return Err(Error::Interrupted);
        }
        Ok(())
    }
}

fn seconds(name: &str, s: f64) -> Result<Duration, Error> {
    Duration::try_from_secs_f64(s)
        .map_err(|_| Error::Usage(format!("--{name} must be a number of seconds, not {s}")))
}

pub(crate) fn run(args: WatchArgs) -> Result<Outcome, Error> {
    let opts = WatchOptions {
        sources: args.sources.clone(),
        globs: args.globs.clone(),
        interval: seconds("interval", args.interval)?,
        settle: seconds("settle", args.settle)?,
        jobs: args.jobs,
        once: args.once,
    };
    let load = LoadOptions {
        read: ReadOptions {
            datasets: args.definitions.registry()?,
            ..ReadOptions::default()
        },
        schema: args.schema.clone(),
        max_reject_ratio: args.max_reject_ratio,
        catalog_url: args.catalog_url.clone(),
        ..LoadOptions::default()
    };
    let dest = match &args.lake {
        Some(dir) => Destination::Lake(dir.clone()),
        None => Destination::Postgres {
            database_url: args.database_url.clone(),
        },
    };
    let metrics: &'static Metrics = Box::leak(Box::new(Metrics::new()));
    if let Some(addr) = &args.metrics_addr {
        serve(addr, metrics)?;
    }
    let on_file = |outcome: &tier_core::Result<tier_core::FileReport>| match outcome {
        Ok(r) => logging::file_result(r),
        Err(Error::Failed { report, source }) => {
            logging::file_result(report);
            logging::error(&format!("{}: {source}", report.path));
        }
        Err(e) => logging::error(&e.to_string()),
    };
    let watched = watch(&opts, &dest, &load, &Grace, &STOP, metrics, &on_file)?;
    log::info!(
        "stopped: {} files loaded or skipped, {} failed",
        watched.done,
        watched.failed
    );
    Ok(if args.once && watched.failed > 0 {
        Outcome::Failed
    } else {
        Outcome::Ok
    })
}

/// Serves the metrics and the health on a thread of their own.
fn serve(addr: &str, metrics: &'static Metrics) -> Result<(), Error> {
    let server = tiny_http::Server::http(addr)
        .map_err(|e| Error::Usage(format!("--metrics-addr {addr}: {e}")))?;
    log::info!("metrics on http://{addr}/metrics");
    std::thread::spawn(move || {
        for request in server.incoming_requests() {
            let (status, body, kind) = match request.url() {
                "/metrics" => (
                    200,
                    metrics.encode(),
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                ),
                "/healthz" if metrics.healthy() => (200, "ok\n".to_string(), "text/plain"),
                "/healthz" => (503, "the database cannot be reached\n".into(), "text/plain"),
                _ => (404, "not found\n".to_string(), "text/plain"),
            };
            let header = tiny_http::Header::from_bytes(&b"Content-Type"[..], kind.as_bytes())
                .expect("a valid header");
            let response = tiny_http::Response::from_string(body)
                .with_status_code(status)
                .with_header(header);
            let _ = request.respond(response);
        }
    });
    Ok(())
}
