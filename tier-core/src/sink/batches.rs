//! A file's valid rows, or its rejects, as Arrow record batches pulled one at a time (what
//! `tier.read` hands to pyarrow, polars and DuckDB).
//!
//! The pipeline runs on a thread of its own and sends finished batches through a short queue:
//! memory stays bounded, and dropping the reader stops the work.

use std::path::Path;
use std::sync::mpsc;
use std::thread::JoinHandle;

use arrow_array::{RecordBatch, RecordBatchReader};
use arrow_schema::{ArrowError, SchemaRef};

use super::copy::copy_fields;
use super::copy::CopyEncoder;
use super::dedup::{FirstSeen, Seen};
use crate::error::{Error, Result};
use crate::pipeline::{open_input, Opened, Processed, ReadOptions};
use crate::schema::arrow::{rejects_schema, rows_schema, Builder};
use crate::schema::validate::RejectReason;
use crate::schema::Dataset;

/// Which records of a file a [`Batches`] reader yields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchOf {
    /// The valid rows: the definition's columns, `_extra` (JSON text), `_record_index`.
    Rows,
    /// The rejects: `_record_index`, `reason`, `raw`.
    Rejects,
}

/// A file's rows or rejects as record batches of up to `batch_size` rows, in input order.
///
/// ```
/// use arrow_array::RecordBatchReader;
/// use tier_core::{BatchOf, Batches};
/// let dir = std::env::temp_dir().join("tier-doc-batches");
/// std::fs::create_dir_all(&dir).unwrap();
/// let path = dir.join("weather.json");
/// std::fs::write(&path, "{\"city\":\"Oslo\",\"date_time\":\"2019-06-04 14:05:13\"}\n42\n").unwrap();
/// let rows = Batches::open(&path, &Default::default(), 1024, BatchOf::Rows).unwrap();
/// assert_eq!(rows.schema().field(0).name(), "city");
/// let n: usize = rows.map(|b| b.unwrap().num_rows()).sum();
/// assert_eq!(n, 1);
/// ```
pub struct Batches {
    schema: SchemaRef,
    dataset: Dataset,
    rx: Option<mpsc::Receiver<Result<RecordBatch>>>,
    worker: Option<JoinHandle<()>>,
}

impl Batches {
    /// Opens `path` (its dataset forced or detected as for a check) and starts reading.
    pub fn open(
        path: &Path,
        opts: &ReadOptions,
        batch_size: usize,
        what: BatchOf,
    ) -> Result<Batches> {
        let Opened {
            source, dataset, ..
        } = open_input(path, opts, false)?;
        let batch_size = batch_size.max(1);
        let full = match what {
            BatchOf::Rows => rows_schema(&dataset),
            BatchOf::Rejects => rejects_schema(),
        };
        // Everything but `_load_id`: nothing is loaded.
        let keep: Vec<usize> = (0..full.fields().len())
            .filter(|&i| full.field(i).name() != "_load_id")
            .collect();
        let schema = std::sync::Arc::new(full.project(&keep).expect("indexes of the schema"));
        let (tx, rx) = mpsc::sync_channel::<Result<RecordBatch>>(2);
        let workers = opts.workers;
        let d = dataset.clone();
        let worker = std::thread::spawn(move || {
            // Duplicates within the file are left out, and conflicting ones are rejects, as a
            // load does: the rejects need the rows' raw text for them.
            let keyed = d.key.is_some();
            let enc = CopyEncoder::new(&d, 0, keyed && what == BatchOf::Rejects);
            let mut seen = FirstSeen::new(&d);
            let layout = super::copy::Layout::of(&d);
            let conflict = RejectReason::ConflictingDuplicate.to_string();
            let mut builder = match what {
                BatchOf::Rows => Builder::rows(&d),
                BatchOf::Rejects => Builder::rejects(),
            };
            let emit = |b: &mut Builder| -> Result<()> {
                let batch = b.finish().project(&keep).map_err(arrow_error)?;
                tx.send(Ok(batch)).map_err(|_| stopped())
            };
            let outcome = source
                .run(&d, workers, &enc, &mut |batch: &Processed| {
                    seen.see_rows(&batch.payload, |_, fields, seen| {
                        match (seen, what) {
                            (Seen::First, BatchOf::Rows) => builder.push(fields),
                            (Seen::Conflict, BatchOf::Rejects) => {
                                builder.push(&layout.reject(fields, conflict.as_bytes()))
                            }
                            _ => return Ok(()),
                        }
                        if builder.len() >= batch_size {
                            emit(&mut builder)?;
                        }
                        Ok(())
                    })?;
                    let mut fields = Vec::new();
                    if what == BatchOf::Rejects {
                        let mut b = &batch.reject_payload[..];
                        while !b.is_empty() {
                            b = copy_fields(b, &mut fields);
                            builder.push(&fields);
                            if builder.len() >= batch_size {
                                emit(&mut builder)?;
                            }
                        }
                    }
                    Ok(())
                })
                .and_then(|()| {
                    if builder.is_empty() {
                        Ok(())
                    } else {
                        emit(&mut builder)
                    }
                });
            if let Err(e) = outcome {
                let _ = tx.send(Err(e));
            }
        });
        Ok(Batches {
            schema,
            dataset,
            rx: Some(rx),
            worker: Some(worker),
        })
    }

    /// The dataset of the file.
    pub fn dataset(&self) -> &Dataset {
        &self.dataset
    }
}

fn stopped() -> Error {
    Error::Usage("the reader was closed".into())
}

fn arrow_error(e: ArrowError) -> Error {
    Error::Usage(format!("arrow: {e}"))
}

impl Iterator for Batches {
    type Item = std::result::Result<RecordBatch, ArrowError>;

    fn next(&mut self) -> Option<Self::Item> {
        let item = self.rx.as_ref()?.recv().ok();
        match item {
            Some(Ok(b)) => Some(Ok(b)),
            Some(Err(e)) => {
                self.rx = None;
                Some(Err(ArrowError::ExternalError(Box::new(e))))
            }
            None => {
                self.rx = None;
                None
            }
        }
    }
}

impl RecordBatchReader for Batches {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
}

impl Drop for Batches {
    fn drop(&mut self) {
        // Closing the queue stops the pipeline at its next batch.
        self.rx = None;
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
    }
}
