//! Reading and validating without a database: `tier check` and `tier.read`.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Instant;

use crate::error::Result;
use crate::pipeline::{open_input, Encode, Observer, Opened, Processed, ReadOptions, Source};
use crate::read::Records;
use crate::report::{FileReport, Status};
use crate::schema::row::Row;
use crate::schema::validate;
use crate::schema::validate::{Reject, RejectReason};
use crate::schema::Dataset;
use crate::sink::dedup::{FirstSeen, HashEncoder, Seen};

/// Reads and validates one file; hands every reject to the observer when it wants them. The
/// quality gate of a load applies ([`FileReport::gate`]): `max_reject_ratio`, or by default a
/// file whose every record is rejected, is `failed`.
///
/// ```
/// use tier_core::{check_file as check, ReadOptions};
/// let dir = std::env::temp_dir().join("tier-doc-check");
/// std::fs::create_dir_all(&dir).unwrap();
/// let path = dir.join("weather.json");
/// std::fs::write(&path, "[{\"city\":\"Oslo\",\"date_time\":\"2019-06-04 14:05:13\"},\n42,\n").unwrap();
/// let report = check(&path, &ReadOptions::default(), None, &tier_core::Quiet).unwrap();
/// assert_eq!((report.records, report.loaded, report.rejected), (2, 1, 1));
/// assert_eq!(report.reject_reasons["not_an_object"], 1);
/// // Within the file, duplicates are found as a load finds them.
/// std::fs::write(&path, "{\"city\":\"Oslo\",\"date_time\":\"2019-06-04 14:05:13\"}\n".repeat(3)).unwrap();
/// let report = check(&path, &ReadOptions::default(), None, &tier_core::Quiet).unwrap();
/// assert_eq!((report.records, report.loaded, report.duplicates), (3, 1, 2));
/// ```
pub fn check(
    path: &Path,
    opts: &ReadOptions,
    max_reject_ratio: Option<crate::RejectRatio>,
    observer: &dyn Observer,
) -> Result<FileReport> {
    let started = Instant::now();
    let Opened {
        source,
        dataset,
        progress,
        sha256: sha,
    } = open_input(path, opts, true)?;
    let size = crate::read::input_size(path).ok();
    observer.started(path, size, progress.clone());
    // Duplicates within the file are found as a load finds them: by the hashes of typed rows.
    let keep = observer.wants_rejects();
    let gated = !source.is_rejects();
    let enc = HashEncoder::new(&dataset, keep);
    let mut seen = FirstSeen::for_file(&dataset, size.unwrap_or(0));
    let (mut kept, mut conflicts) = (0u64, 0u64);
    let mut totals = Processed::default();
    let result = source.run(&dataset, opts.workers, &enc, &mut |batch: &Processed| {
        totals.absorb(batch);
        observer.records(path, batch.records)?;
        for r in &batch.rejects {
            observer.reject(path, r)?;
        }
        seen.see_hashed_rows(&batch.payload, keep, |index, raw, s| {
            match s {
                Seen::First => kept += 1,
                Seen::Duplicate => {}
                Seen::Conflict => {
                    conflicts += 1;
                    if keep {
                        let reject = Reject {
                            index,
                            reason: RejectReason::ConflictingDuplicate,
                            raw: String::from_utf8_lossy(raw).into_owned(),
                        };
                        observer.reject(path, &reject)?;
                    }
                }
            }
            Ok(())
        })?;
        Ok(())
    });
    observer.finished(path);
    result?;
    let invalid = totals.rejected();
    let mut reasons = totals.reasons;
    if conflicts > 0 {
        reasons.insert(RejectReason::ConflictingDuplicate.to_string(), conflicts);
    }
    let mut report = FileReport {
        sha256: sha.map(|h| h.hex()).unwrap_or_default(),
        bytes: progress.bytes(),
        records: totals.records,
        loaded: kept,
        duplicates: totals.valid - kept - conflicts,
        rejected: invalid + conflicts,
        reject_reasons: reasons,
        unknown_fields: totals.unknown.into_iter().collect::<BTreeMap<_, _>>(),
        seconds: started.elapsed().as_secs_f64(),
        ..FileReport::new(path, &dataset.name, None, Status::Checked)
    };
    if gated {
        report.warn_if_mostly_rejected();
        report.gate(max_reject_ratio);
    }
    Ok(report)
}

/// The valid rows of one input, in order, one at a time (rejects and duplicates within the
/// file are skipped, as a load skips them).
///
/// ```
/// let dir = std::env::temp_dir().join("tier-doc-rows");
/// std::fs::create_dir_all(&dir).unwrap();
/// let path = dir.join("w.json");
/// std::fs::write(&path, "{\"weather_data.city\":\"Oslo\",\"weather_data.date_time\":\"2019-06-04 14:05:13\"}\n").unwrap();
/// let rows: Vec<_> = tier_core::Rows::open(&path, &Default::default()).unwrap().collect::<Result<_, _>>().unwrap();
/// assert_eq!(rows.len(), 1);
/// ```
pub struct Rows {
    records: Records,
    dataset: Dataset,
    unknown: HashMap<String, u64>,
    order: validate::KeyOrder,
    /// Duplicates within the file are left out, as a load leaves them out.
    seen: FirstSeen,
    hashes: HashEncoder,
    scratch: Vec<u8>,
}

impl Rows {
    /// Opens `path`; the dataset is detected among `opts.datasets` unless forced.
    pub fn open(path: &Path, opts: &ReadOptions) -> Result<Rows> {
        let Opened {
            source, dataset, ..
        } = open_input(path, opts, false)?;
        let Source::Records(records) = source else {
            return Err(crate::Error::Input {
                path: path.to_path_buf(),
                detail: "a lake part: read its rows as Arrow batches (tier.read)".into(),
            });
        };
        Ok(Rows {
            records,
            seen: FirstSeen::new(&dataset),
            hashes: HashEncoder::new(&dataset, false),
            dataset,
            unknown: HashMap::new(),
            order: Default::default(),
            scratch: Vec::new(),
        })
    }

    /// The dataset of the rows.
    pub fn dataset(&self) -> &Dataset {
        &self.dataset
    }
}

impl Iterator for Rows {
    type Item = Result<Row<'static>>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let rec = match self.records.next_record() {
                Ok(Some(r)) => r,
                Ok(None) => return None,
                Err(e) => return Some(Err(e)),
            };
            if let Ok(row) =
                validate::validate(&self.dataset, &rec, &mut self.unknown, &mut self.order)
            {
                self.scratch.clear();
                self.hashes.row(&row, &[], &mut self.scratch);
                let (_, hash, key, _, _) = HashEncoder::decode(&self.scratch);
                match self.seen.see_hashed(key, hash) {
                    Ok(Seen::First) => return Some(Ok(row.into_owned())),
                    Ok(_) => {}
                    Err(e) => return Some(Err(e)),
                }
            }
        }
    }
}
