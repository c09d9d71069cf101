//! A watcher's metrics in the Prometheus (OpenMetrics) text format: files by status, records by
//! outcome, rejects by reason, the backlog, the lag from landing to commit, load durations, the
//! last commit; and its health (whether it reached its database at its last try).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::error::Result;
use crate::report::{FileReport, Status};

type Labels = Vec<(String, String)>;

/// The metrics of one watcher.
pub struct Metrics {
    registry: Registry,
    files: Family<Labels, Counter>,
    records: Family<Labels, Counter>,
    rejects: Family<Labels, Counter>,
    backlog_files: Gauge,
    backlog_bytes: Gauge,
    lag: Histogram,
    duration: Histogram,
    last_commit: Gauge<f64, AtomicU64>,
    healthy: AtomicBool,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Metrics at zero, healthy until a try says otherwise.
    ///
    /// ```
    /// let m = tier_core::watch::Metrics::new();
    /// let text = m.encode();
    /// assert!(text.contains("tier_files_total{status=\"failed\"} 0"));
    /// assert!(text.contains("# TYPE tier_backlog_files gauge") && text.contains("tier_backlog_files 0"));
    /// assert!(m.healthy());
    /// ```
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let files = Family::<Labels, Counter>::default();
        let records = Family::<Labels, Counter>::default();
        let rejects = Family::<Labels, Counter>::default();
        let backlog_files = Gauge::default();
        let backlog_bytes = Gauge::default();
        let lag = Histogram::new(exponential_buckets(0.05, 2.0, 14));
        let duration = Histogram::new(exponential_buckets(0.005, 2.0, 16));
        let last_commit = Gauge::<f64, AtomicU64>::default();
        registry.register("tier_files", "Files handled, by status", files.clone());
        // Every status from the start, at 0: an alert on `failed` needs the series.
        for status in ["succeeded", "skipped", "failed"] {
            let _ = files.get_or_create(&vec![("status".to_string(), status.to_string())]);
        }
        registry.register(
            "tier_records",
            "Records read, by dataset and outcome (loaded, duplicate, rejected)",
            records.clone(),
        );
        registry.register(
            "tier_rejects",
            "Rejects, by dataset and reason",
            rejects.clone(),
        );
        registry.register(
            "tier_backlog_files",
            "Files listed and not yet loaded",
            backlog_files.clone(),
        );
        registry.register(
            "tier_backlog_bytes",
            "Bytes of the files listed and not yet loaded",
            backlog_bytes.clone(),
        );
        registry.register(
            "tier_lag_seconds",
            "From a file's modification time to its commit",
            lag.clone(),
        );
        registry.register(
            "tier_load_duration_seconds",
            "Time to load one file",
            duration.clone(),
        );
        registry.register(
            "tier_last_commit_timestamp_seconds",
            "When the last load committed (seconds since 1970)",
            last_commit.clone(),
        );
        Metrics {
            registry,
            files,
            records,
            rejects,
            backlog_files,
            backlog_bytes,
            lag,
            duration,
            last_commit,
            healthy: AtomicBool::new(true),
        }
    }

    /// The metrics in the text format (`GET /metrics`).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let _ = encode(&mut out, &self.registry);
        out
    }

    /// Whether the watcher reached its database (or lake) at its last try (`GET /healthz`).
    pub fn healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    pub(crate) fn set_healthy(&self, ok: bool) {
        self.healthy.store(ok, Ordering::Relaxed);
    }

    pub(crate) fn set_backlog(&self, files: i64, bytes: i64) {
        self.backlog_files.set(files);
        self.backlog_bytes.set(bytes);
    }

    /// Counts one file's outcome: `took` to load, written at `modified`.
    pub(crate) fn file(&self, outcome: &Result<FileReport>, took: Duration, modified: SystemTime) {
        let report = match outcome {
            Ok(r) => r,
            Err(crate::Error::Failed { report, .. }) => report,
            Err(_) => return,
        };
        let label = |k: &str, v: &str| vec![(k.to_string(), v.to_string())];
        self.files
            .get_or_create(&label("status", report.status.as_str()))
            .inc();
        self.duration.observe(took.as_secs_f64());
        if report.status != Status::Succeeded {
            return;
        }
        let dataset = || ("dataset".to_string(), report.dataset.clone());
        for (outcome, n) in [
            ("loaded", report.loaded),
            ("duplicate", report.duplicates),
            ("rejected", report.rejected),
        ] {
            let labels = vec![dataset(), ("outcome".to_string(), outcome.to_string())];
            self.records.get_or_create(&labels).inc_by(n);
        }
        for (reason, n) in &report.reject_reasons {
            let labels = vec![dataset(), ("reason".to_string(), reason.clone())];
            self.rejects.get_or_create(&labels).inc_by(*n);
        }
        let now = SystemTime::now();
        if let Ok(lag) = now.duration_since(modified) {
            self.lag.observe(lag.as_secs_f64());
        }
        self.last_commit.set(
            now.duration_since(UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64()),
        );
    }
}
