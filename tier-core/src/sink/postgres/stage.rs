//! The stage phase: the pipeline's rows as binary COPY into the table or a staging table, with
//! the within-file filter of keyed datasets, and the second reading of a refused direct copy.

use super::*;
use std::time::Instant;

/// Stage: reads, validates and copies the rows (into the table on the bulk and direct routes,
/// into the staging table otherwise) and spools the rejects into the rejects table. A direct
/// copy runs in a savepoint: when the unique index refuses a row, it is rolled back and the
/// result says so (the counts, rejects and spool are complete all the same).
#[allow(clippy::too_many_arguments)]
pub(super) fn stage(
    tx: &mut Transaction<'_>,
    source: Source,
    w: &Incoming<'_>,
    table: &str,
    plan: &Plan,
    opts: &LoadOptions,
    observer: &dyn Observer,
) -> Result<Staged> {
    let t0 = Instant::now();
    let dataset = &w.dataset;
    let mut spool = Spool::new();
    let into_table = {
        let cols: Vec<&str> = ddl::target_columns(dataset).iter().map(|c| c.0).collect();
        format!("{table} ({})", ddl::column_list(&cols))
    };
    let run = |c: &mut Transaction<'_>, into: &str, spool: &mut Spool, route: Route| {
        let copy = Copy {
            dataset,
            load_id: plan.load_id,
            into,
            strip_raw: route != Route::Staged,
            bulk: route == Route::Bulk,
            freeze: plan.freeze,
            workers: opts.read.workers,
            path: w.path,
            size: w.size,
        };
        let staged = copy.run(c, source, observer, Some(spool), route == Route::Direct)?;
        Ok::<_, Error>(Staged { route, ..staged })
    };
    let staged = match plan.route {
        Route::Bulk => run(tx, &into_table, &mut spool, Route::Bulk)?,
        Route::Direct => {
            let mut sp = tx.transaction()?;
            let staged = run(&mut sp, &into_table, &mut spool, Route::Direct)?;
            if staged.refused {
                drop(sp);
                log::debug!(
                    "{}: rows of the file are in the table already",
                    w.path.display()
                );
            } else {
                sp.commit()?;
            }
            staged
        }
        Route::Staged => {
            tx.batch_execute(&ddl::stage_ddl(dataset, dataset.key.is_some()))?;
            run(tx, "tier_stage", &mut spool, Route::Staged)?
        }
    };
    log::debug!("{}: rows copied after {:?}", w.path.display(), t0.elapsed());
    spool.copy_into(tx, &qualified(&opts.schema, &ddl::rejects_table(dataset)))?;
    Ok(staged)
}

/// Stage again, after a refused direct copy: the input read a second time (it must be the same
/// bytes) into the staging table; its counts and rejects are those of the first reading.
pub(super) fn restage(
    tx: &mut Transaction<'_>,
    (source, sha): (Source, Option<reader::Sha256Handle>),
    (dataset, plan): (&Dataset, &Plan),
    workers: usize,
    (report, first): (&FileReport, Staged),
    observer: &dyn Observer,
) -> Result<Staged> {
    tx.batch_execute(&ddl::stage_ddl(dataset, dataset.key.is_some()))?;
    let copy = Copy {
        dataset,
        load_id: plan.load_id,
        into: "tier_stage",
        strip_raw: false,
        bulk: false,
        freeze: false,
        workers,
        path: Path::new(&report.path),
        size: None,
    };
    let again = copy.run(
        tx,
        source,
        &crate::pipeline::StopOnly(observer),
        None,
        false,
    )?;
    if sha.is_some_and(|h| h.hex() != report.sha256) || again.rows != first.rows {
        return Err(Error::Input {
            path: report.path.clone().into(),
            detail: "the file changed while it was being loaded".into(),
        });
    }
    Ok(Staged {
        route: Route::Staged,
        refused: false,
        ..first
    })
}

/// One COPY of a source's rows.
pub(super) struct Copy<'a> {
    pub(super) dataset: &'a Dataset,
    pub(super) load_id: i64,
    /// `table (columns)` or the staging table.
    pub(super) into: &'a str,
    /// Whether to leave out a keyed row's `_raw` (only the staging table has it).
    pub(super) strip_raw: bool,
    /// The bulk route's copy, into a table emptied in this transaction: a keyed dataset's
    /// duplicates within the file are dropped and its conflicting ones rejected (the file's
    /// first occurrence of a key is the first of all).
    pub(super) bulk: bool,
    /// Rows go in frozen (`COPY … FREEZE`; the plan says where the table takes them).
    pub(super) freeze: bool,
    pub(super) workers: usize,
    pub(super) path: &'a Path,
    /// The input's size, when known (the within-file filter is sized to it).
    pub(super) size: Option<u64>,
}

impl Copy<'_> {
    /// Reads, validates and copies. A keyed dataset's rows pass the within-file filter on the
    /// way: equal duplicates are dropped and conflicting ones rejected with their raw text, so
    /// the rows copied have unique keys. With `refusable`, a COPY that the unique index (or a
    /// deadlock) stops is not an error: the rest of the input is still read and counted, and
    /// the result is `refused`.
    pub(super) fn run(
        &self,
        tx: &mut Transaction<'_>,
        source: Source,
        observer: &dyn Observer,
        mut spool: Option<&mut Spool>,
        refusable: bool,
    ) -> Result<Staged> {
        let dataset = self.dataset;
        let keyed = dataset.key.is_some();
        let mut totals = Processed::default();
        let mut filter =
            (keyed && self.bulk).then(|| FirstSeen::for_file(dataset, self.size.unwrap_or(0)));
        let strip = keyed && self.strip_raw;
        let (mut rows, mut conflicts) = (0u64, 0u64);
        let layout = copy::Layout::of(dataset);
        let conflict = RejectReason::ConflictingDuplicate.to_string();
        let freeze = if self.freeze { ", FREEZE" } else { "" };
        let mut writer = tx.copy_in(&format!(
            "COPY {} FROM STDIN (FORMAT binary{freeze})",
            self.into
        ))?;
        let mut failed: Option<Error> = None;
        let mut write = |bytes: &[u8]| -> Result<()> {
            if failed.is_none() {
                if let Err(e) = writer.write_all(bytes) {
                    failed = Some(copy_error(e));
                }
            }
            Ok(())
        };
        write(HEADER)?;
        // Keyed rows carry their raw text for the conflicts; the table itself has no `_raw`.
        let enc = CopyEncoder::new(dataset, self.load_id, keyed)
            .keeping_rejects(observer.wants_rejects());
        let path = self.path;
        let (mut kept, mut found) = (Vec::new(), Vec::new());
        let mut sink = |batch: &Processed| {
            totals.absorb(batch);
            observer.records(path, batch.records)?;
            for r in &batch.rejects {
                observer.reject(path, r)?;
            }
            if let Some(spool) = spool.as_deref_mut() {
                spool.write(&batch.reject_payload)?;
            }
            let Some(filter) = filter.as_mut() else {
                rows += batch.valid;
                if !strip {
                    return write(&batch.payload);
                }
                kept.clear();
                let mut fields = Vec::with_capacity(layout.fields);
                let mut b = &batch.payload[..];
                while !b.is_empty() {
                    let row = b;
                    b = copy_fields(b, &mut fields);
                    strip_raw(&mut kept, &row[..row.len() - b.len()], &fields);
                }
                return write(&kept);
            };
            kept.clear();
            found.clear();
            filter.see_rows(&batch.payload, |row, fields, seen| {
                match seen {
                    Seen::First if self.strip_raw => {
                        strip_raw(&mut kept, row, fields);
                        rows += 1;
                    }
                    Seen::First => {
                        kept.extend_from_slice(row);
                        rows += 1;
                    }
                    Seen::Duplicate => {}
                    Seen::Conflict => {
                        conflicts += 1;
                        let reject = layout.reject(fields, conflict.as_bytes());
                        let raw = reject[3];
                        copy::tuple(&mut found, &reject);
                        if observer.wants_rejects() {
                            let index = fields[layout.record_index]
                                .and_then(|f| f.try_into().ok())
                                .map_or(0, i64::from_be_bytes);
                            observer.reject(
                                path,
                                &Reject {
                                    index: index as u64,
                                    reason: RejectReason::ConflictingDuplicate,
                                    raw: String::from_utf8_lossy(raw.unwrap_or_default()).into(),
                                },
                            )?;
                        }
                    }
                }
                Ok(())
            })?;
            if let Some(spool) = spool.as_deref_mut() {
                spool.write(&found)?;
            }
            write(&kept)
        };
        source.run(dataset, self.workers, &enc, &mut sink)?;
        write(TRAILER)?;
        let outcome = match failed {
            Some(e) => Err(e),
            None => writer.finish().map_err(Error::from),
        };
        let refused = match outcome {
            Ok(_) => false,
            Err(e) if refusable && refused_by_index(&e) => true,
            Err(e) => return Err(e),
        };
        Ok(Staged {
            route: Route::Staged,
            totals,
            rows,
            conflicts,
            refused,
        })
    }
}

/// Appends a COPY row without its last field (`_raw`); `fields` are the row's fields.
pub(super) fn strip_raw(out: &mut Vec<u8>, row: &[u8], fields: &[Option<&[u8]>]) {
    let raw_len = fields.last().copied().flatten().map_or(0, <[u8]>::len);
    out.extend_from_slice(&((fields.len() - 1) as i16).to_be_bytes());
    out.extend_from_slice(&row[2..row.len() - 4 - raw_len]);
}

/// A write to COPY that failed: the driver's error inside it when there is one.
pub(super) fn copy_error(e: std::io::Error) -> Error {
    match e
        .into_inner()
        .map(|inner| inner.downcast::<postgres::Error>())
    {
        Some(Ok(pg)) => Error::database("COPY", *pg),
        Some(Err(other)) => Error::Database {
            message: format!("COPY: {other}"),
            sqlstate: None,
            source: None,
        },
        None => Error::Database {
            message: "COPY: the connection failed".into(),
            sqlstate: None,
            source: None,
        },
    }
}
