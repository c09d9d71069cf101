//! The report of a run: per file and in total, serialisable to the JSON of SPEC §5.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::schema::validate::RejectReason;
use crate::text::visible;

/// What happened to one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Loaded and committed.
    Succeeded,
    /// Rolled back (an error or the quality gate).
    Failed,
    /// Already loaded (same SHA-256 into the same table); nothing done.
    Skipped,
    /// Read and validated only (`tier check`).
    Checked,
}

impl Status {
    /// The status as written in reports and the ledger.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Succeeded => "succeeded",
            Status::Failed => "failed",
            Status::Skipped => "skipped",
            Status::Checked => "checked",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The report of one file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileReport {
    /// The path as given.
    pub path: String,
    /// The dataset name.
    pub dataset: String,
    /// The qualified target table (loads only).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub table: Option<String>,
    /// SHA-256 of the file's bytes as stored, hex.
    pub sha256: String,
    /// Size of the file as stored.
    pub bytes: u64,
    /// Records read (`loaded + duplicates + rejected`).
    pub records: u64,
    /// Records written to the target table.
    pub loaded: u64,
    /// Records that would have been loaded, when the quality gate rolled the load back (then
    /// `records = rolled_back + duplicates + rejected` and `loaded` is 0).
    #[serde(skip_serializing_if = "is_zero", default)]
    pub rolled_back: u64,
    /// Records skipped as duplicates.
    pub duplicates: u64,
    /// Records written to the rejects table.
    pub rejected: u64,
    /// Rejected records by reason code.
    pub reject_reasons: BTreeMap<String, u64>,
    /// Keys outside the schema (kept in `_extra`), by key, with how many records carry them.
    pub unknown_fields: BTreeMap<String, u64>,
    /// Columns added to the table by this load (additive schema evolution).
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub added_columns: Vec<String>,
    /// The Parquet parts written, relative to the lake (lake loads only).
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub parts: Vec<String>,
    /// What happened to the file.
    pub status: Status,
    /// Why the file failed (status `failed` after an error).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error: Option<String>,
    /// The ledger's id of this load (loads only).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub load_id: Option<i64>,
    /// Wall time spent on the file.
    pub seconds: f64,
}

impl FileReport {
    /// The report of a file about to be read: counts at zero.
    pub fn new(
        path: &std::path::Path,
        dataset: &str,
        table: Option<String>,
        status: Status,
    ) -> Self {
        FileReport {
            path: path.display().to_string(),
            dataset: dataset.to_string(),
            table,
            sha256: String::new(),
            bytes: 0,
            records: 0,
            loaded: 0,
            rolled_back: 0,
            duplicates: 0,
            rejected: 0,
            reject_reasons: BTreeMap::new(),
            unknown_fields: BTreeMap::new(),
            added_columns: Vec::new(),
            parts: Vec::new(),
            status,
            error: None,
            load_id: None,
            seconds: 0.0,
        }
    }

    /// The quality gate, once the file's counts are known: more than `max_ratio` of its records
    /// rejected (with no ratio given: every one of them, for its shape or values) fails the
    /// file. Its rows are then not loaded: `loaded` moves to `rolled_back`. Returns whether the
    /// gate stopped it.
    ///
    /// ```
    /// use tier_core::{FileReport, RejectRatio, Status};
    /// let ratio = |r| Some(RejectRatio::new(r).unwrap());
    /// let mut r = FileReport::new("w.json".as_ref(), "weather", None, Status::Succeeded);
    /// (r.records, r.loaded, r.rejected) = (10, 6, 4);
    /// assert!(!r.gate(None) && !r.gate(ratio(0.5)));
    /// assert!(r.gate(ratio(0.3)));
    /// assert_eq!((r.status, r.loaded, r.rolled_back), (Status::Failed, 0, 6));
    /// let mut all = FileReport::new("w.json".as_ref(), "weather", None, Status::Succeeded);
    /// (all.records, all.rejected) = (3, 3);
    /// assert!(!all.clone().gate(ratio(1.0)) && all.gate(None));
    /// ```
    pub fn gate(&mut self, max_ratio: Option<RejectRatio>) -> bool {
        // By default only a file none of whose records is of the dataset: conflicting
        // duplicates are records of the dataset.
        let conflicting = self
            .reject_reasons
            .get(&RejectReason::ConflictingDuplicate.to_string())
            .copied()
            .unwrap_or(0);
        let over = self.records > 0
            && match max_ratio {
                Some(max) => self.rejected as f64 / self.records as f64 > max.get(),
                None => self.rejected.saturating_sub(conflicting) == self.records,
            };
        if over {
            self.status = Status::Failed;
            self.rolled_back += self.loaded;
            self.loaded = 0;
        }
        over
    }

    /// The error of a file the quality gate stopped, if it did.
    pub fn gate_error(&self, max_ratio: Option<RejectRatio>) -> Option<crate::Error> {
        (self.status == Status::Failed && self.error.is_none()).then(|| crate::Error::QualityGate {
            path: std::path::PathBuf::from(&self.path),
            records: self.records,
            rejected: self.rejected,
            max_ratio: max_ratio.map(RejectRatio::get),
        })
    }

    /// Logs a warning when most of the file's records were rejected for their shape or values:
    /// the file is likely of another dataset than the one it was read as. Conflicting
    /// duplicates (records of the dataset whose key a row of other values holds) are not a sign
    /// of that and get a warning of their own.
    pub fn warn_if_mostly_rejected(&self) {
        if self.records == 0 {
            return;
        }
        let conflicting = self
            .reject_reasons
            .get(&RejectReason::ConflictingDuplicate.to_string())
            .copied()
            .unwrap_or(0);
        let invalid = self.rejected.saturating_sub(conflicting);
        if invalid * 2 > self.records {
            log::warn!(
                "{}: {} of {} records rejected; is it really a {} export?",
                self.path,
                invalid,
                self.records,
                self.dataset
            );
        } else if conflicting * 2 > self.records {
            log::warn!(
                "{}: {} of {} records have a key that a row or record of other values holds \
                 (conflicting_duplicate)",
                self.path,
                conflicting,
                self.records
            );
        }
    }

    /// Whether `records = loaded + duplicates + rejected` holds.
    pub fn balanced(&self) -> bool {
        self.records == self.loaded + self.duplicates + self.rejected
    }
}

/// Counts over all files of a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    /// Records read.
    pub records: u64,
    /// Records loaded.
    pub loaded: u64,
    /// Duplicates skipped.
    pub duplicates: u64,
    /// Records rejected.
    pub rejected: u64,
}

/// The report of a run over several files.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// One entry per file, in the order given.
    pub files: Vec<FileReport>,
    /// Sums over the files.
    pub totals: Totals,
}

impl Report {
    /// A report of these files, with their totals.
    ///
    /// ```
    /// use tier_core::Report;
    /// let r = Report::new(vec![]);
    /// assert_eq!(r.totals.records, 0);
    /// assert!(r.to_json().contains("\"totals\""));
    /// ```
    pub fn new(files: Vec<FileReport>) -> Report {
        let mut totals = Totals::default();
        for f in &files {
            totals.records += f.records;
            totals.loaded += f.loaded;
            totals.duplicates += f.duplicates;
            totals.rejected += f.rejected;
        }
        Report { files, totals }
    }

    /// The report as JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// The report for a person to read.
    pub fn to_text(&self) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        for f in &self.files {
            let target = f.table.as_deref().unwrap_or(&f.dataset);
            let loaded = if f.status == Status::Checked {
                "valid"
            } else {
                "loaded"
            };
            let _ = writeln!(
                s,
                "{}  {} → {}  {} records: {} {loaded}, {} duplicates, {} rejected  ({:.2} s)",
                f.status,
                visible(&f.path),
                visible(target),
                f.records,
                f.loaded,
                f.duplicates,
                f.rejected,
                f.seconds
            );
            if let Some(e) = &f.error {
                let _ = writeln!(s, "    error: {}", visible(e));
            }
            for c in &f.added_columns {
                let _ = writeln!(s, "    added column  {}", visible(c));
            }
            for (reason, n) in &f.reject_reasons {
                let _ = writeln!(s, "    rejected {n:>8}  {}", visible(reason));
            }
            for (key, n) in &f.unknown_fields {
                let _ = writeln!(s, "    kept in _extra {n:>8}  {}", visible(key));
            }
        }
        let t = &self.totals;
        let _ = writeln!(
            s,
            "total: {} file{}, {} records: {} loaded, {} duplicates, {} rejected",
            self.files.len(),
            if self.files.len() == 1 { "" } else { "s" },
            t.records,
            t.loaded,
            t.duplicates,
            t.rejected
        );
        s
    }
}

/// The share of a file's records that may be rejected before its load is rolled back (the
/// quality gate): between 0 and 1, checked once, when it is made.
///
/// ```
/// use tier_core::RejectRatio;
/// assert_eq!(RejectRatio::new(0.05).unwrap().get(), 0.05);
/// assert!(RejectRatio::new(1.5).is_err());
/// assert!("0.1".parse::<RejectRatio>().is_ok() && "x".parse::<RejectRatio>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct RejectRatio(f64);

impl RejectRatio {
    /// The ratio `r`, if it is between 0 and 1.
    pub fn new(r: f64) -> crate::Result<RejectRatio> {
        if (0.0..=1.0).contains(&r) {
            Ok(RejectRatio(r))
        } else {
            Err(crate::Error::Usage(format!(
                "the reject ratio limit must be between 0 and 1, not {r}"
            )))
        }
    }

    /// Its value.
    pub fn get(self) -> f64 {
        self.0
    }
}

impl std::str::FromStr for RejectRatio {
    type Err = crate::Error;

    fn from_str(s: &str) -> crate::Result<RejectRatio> {
        let r: f64 = s
            .trim()
            .parse()
            .map_err(|_| crate::Error::Usage(format!("`{s}` is not a number between 0 and 1")))?;
        RejectRatio::new(r)
    }
}
