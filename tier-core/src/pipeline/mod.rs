//! The parallel path from bytes to validated, encoded batches.
//!
//! One thread reads the input and cuts it into chunks of about 1 MiB, each ending where a line
//! starts with `{`. Workers cut their chunk into records (exactly as [`Records`] would: the
//! chunk is followed, for the scanner, by the `{` that starts the next one), validate and encode
//! them. The caller receives the batches in input order and gives their records their final
//! indexes. A value that runs on into the next chunk (a pretty-printed array of objects, a
//! record larger than a chunk) sends the rest of the input down the sequential path, so the
//! result is always the one [`Records`] gives. Memory stays bounded: a few chunks in flight.

mod parallel;
pub mod part;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use arrow_array::RecordBatch;

use crate::error::Result;
use crate::read::{Input, Progress, RawRecord, Records, Sha256Handle};
use crate::schema::arrow::Builder;
use crate::schema::row::Row;
use crate::schema::validate::{self, KeyOrder, Reject, UnknownFields};
use crate::schema::{Dataset, Registry};

use parallel::*;

/// How to read an input: shared by checks and loads.
#[derive(Debug, Clone)]
pub struct ReadOptions {
    /// Force the dataset instead of detecting it from the keys or the file name.
    pub dataset: Option<Dataset>,
    /// The datasets detection chooses from.
    pub datasets: Registry,
    /// Records larger than this are `record_too_large`.
    pub max_record_bytes: usize,
    /// Validation threads.
    pub workers: usize,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            dataset: None,
            datasets: Registry::builtin(),
            max_record_bytes: crate::read::DEFAULT_MAX_RECORD_BYTES,
            workers: std::thread::available_parallelism().map_or(2, |n| n.get()),
        }
    }
}

/// Hears about a file's progress (for progress bars).
pub trait Observer: Sync {
    /// A file starts: its size if known, and a live count of the bytes read.
    fn started(&self, _path: &Path, _size: Option<u64>, _progress: Arc<Progress>) {}
    /// More records of the file were processed. An error stops the work on the file (its load
    /// is rolled back): an observer may stop a run this way (Ctrl-C).
    fn records(&self, _path: &Path, _n: u64) -> Result<()> {
        self.stopped()
    }
    /// Whether the work should stop (Ctrl-C): an error ([`crate::Error::Interrupted`]) then,
    /// looked at between batches, between a load's phases and while the server works.
    fn stopped(&self) -> Result<()> {
        Ok(())
    }
    /// Whether the rejects found while reading should be handed to [`Observer::reject`].
    fn wants_rejects(&self) -> bool {
        false
    }
    /// A reject found while reading the file (when [`Observer::wants_rejects`]).
    fn reject(&self, _path: &Path, _reject: &Reject) -> Result<()> {
        Ok(())
    }
    /// The file is done (whatever the outcome).
    fn finished(&self, _path: &Path) {}
}

/// An observer that ignores everything.
pub struct Quiet;
impl Observer for Quiet {}

/// Another observer's stop, and nothing else of it (for a second reading of a file).
pub struct StopOnly<'a>(pub &'a dyn Observer);
impl Observer for StopOnly<'_> {
    fn stopped(&self) -> Result<()> {
        self.0.stopped()
    }
}

/// Where the records of an input come from.
pub enum Source {
    /// A JSON export, through the parallel pipeline.
    Records(Records),
    /// A lake part (Parquet written by tier): rows validated already, read as they are.
    Part(part::Part),
}

impl Source {
    /// Whether the source holds rejects only (a lake's rejects part): they were judged by the
    /// quality gate when they were read first, and are not judged again.
    pub fn is_rejects(&self) -> bool {
        matches!(self, Source::Part(p) if p.is_rejects())
    }

    /// Hands the source's outcomes, encoded by `enc`, to `sink` in batches, in input order.
    pub fn run(
        self,
        dataset: &Dataset,
        workers: usize,
        enc: &dyn Encode,
        sink: &mut dyn FnMut(&Processed) -> Result<()>,
    ) -> Result<()> {
        match self {
            Source::Records(records) => run(records, dataset, workers, enc, sink),
            Source::Part(part) => part.run(enc, sink),
        }
    }
}

/// An input opened for reading, with its dataset told.
pub struct Opened {
    /// Its records.
    pub source: Source,
    /// Its dataset.
    pub dataset: Dataset,
    /// A live count of the bytes read.
    pub progress: Arc<Progress>,
    /// Its SHA-256 once read, if hashing was asked for.
    pub sha256: Option<Sha256Handle>,
}

/// Opens an input and tells its dataset: forced, else detected among the known definitions
/// ([`Registry::detect`](crate::Registry::detect)); a `*.parquet` file is a lake part, whose
/// dataset is its table's (hashed first, when asked, since Parquet is read by seeking).
pub fn open_input(path: &Path, opts: &ReadOptions, hash: bool) -> Result<Opened> {
    if crate::read::is_parquet(path) {
        let part = part::Part::open(path, opts)?;
        let (progress, sha256) = match hash {
            true => {
                let (p, h) = crate::read::hash_input(path)?;
                (p, Some(h))
            }
            false => (Arc::default(), None),
        };
        return Ok(Opened {
            dataset: part.dataset().clone(),
            source: Source::Part(part),
            progress,
            sha256,
        });
    }
    let input = Input::open(path, hash)?;
    let progress = input.progress();
    let sha256 = input.sha256_handle();
    let mut records = input.records(opts.max_record_bytes);
    let dataset = match &opts.dataset {
        Some(d) => d.clone(),
        None => opts.datasets.detect(records.head()?, path)?,
    };
    Ok(Opened {
        source: Source::Records(records),
        dataset,
        progress,
        sha256,
    })
}

/// What a pipeline does with each validated row and each reject, on a worker thread.
pub trait Encode: Sync {
    /// Encodes a valid row (and the raw bytes it came from) into `out`; returns where in `out`
    /// the row's record index stands as a big-endian `i64`, if it is written.
    fn row(&self, row: &Row<'_>, raw: &[u8], out: &mut Vec<u8>) -> Option<usize>;
    /// Encodes a reject into `out`; returns where its record index stands, if it is written.
    fn reject(&self, reject: &Reject, out: &mut Vec<u8>) -> Option<usize>;
    /// Whether batches keep their rejects (for writing them elsewhere).
    fn keep_rejects(&self) -> bool {
        false
    }
    /// A builder of a batch's valid rows as Arrow columns, for an encoder whose sink takes the
    /// rows so (the lake): each valid row is appended to it on the worker, besides being
    /// encoded, and the batch hands them on as [`Processed::columns`].
    fn columns(&self) -> Option<Builder> {
        None
    }
}

/// One batch of records, validated and encoded.
#[derive(Debug, Default)]
pub struct Processed {
    /// Records in the batch.
    pub records: u64,
    /// Records that passed validation.
    pub valid: u64,
    /// Rejects by reason.
    pub reasons: BTreeMap<String, u64>,
    /// Keys outside the schema, by key.
    pub unknown: UnknownFields,
    /// The rejects themselves, if the encoder keeps them.
    pub rejects: Vec<Reject>,
    /// The encoded valid rows.
    pub payload: Vec<u8>,
    /// The encoded rejects.
    pub reject_payload: Vec<u8>,
    /// The valid rows as Arrow columns, in order, for an encoder that keeps them so
    /// ([`Encode::columns`]).
    pub columns: Option<RecordBatch>,
    building: Option<Builder>,
    row_index_at: Vec<usize>,
    reject_index_at: Vec<usize>,
    order: KeyOrder,
}

impl Processed {
    /// An empty batch of outcomes to be encoded by `enc`.
    pub fn new(enc: &dyn Encode) -> Processed {
        Processed {
            building: enc.columns(),
            ..Default::default()
        }
    }

    /// Adds another batch's counts (not its payload or rejects) to this one.
    pub fn absorb(&mut self, other: &Processed) {
        self.records += other.records;
        self.valid += other.valid;
        for (k, v) in &other.reasons {
            *self.reasons.entry(k.clone()).or_default() += v;
        }
        for (k, v) in &other.unknown {
            *self.unknown.entry(k.clone()).or_default() += v;
        }
    }

    /// Rejected records in the batch.
    pub fn rejected(&self) -> u64 {
        self.records - self.valid
    }

    /// Validates and encodes one record, whose index is its position in this batch.
    fn add(&mut self, dataset: &Dataset, mut rec: RawRecord<'_>, enc: &dyn Encode) {
        rec.index = self.records;
        let outcome = validate::validate(dataset, &rec, &mut self.unknown, &mut self.order);
        self.push(outcome, rec.bytes, enc);
    }

    /// Encodes a row whose record index is already final (rows read back from the lake).
    pub fn push_row(&mut self, row: Row<'_>, raw: &[u8], enc: &dyn Encode) {
        self.push(Ok(row), raw, enc);
    }

    /// Encodes a reject whose record index is already final (a lake's rejects read back).
    pub fn push_reject(&mut self, reject: Reject, enc: &dyn Encode) {
        self.push(Err(reject), &[], enc);
    }

    /// Encodes the outcome of the record that comes next in this batch.
    fn push(&mut self, outcome: Result<Row<'_>, Reject>, raw: &[u8], enc: &dyn Encode) {
        self.records += 1;
        match outcome {
            Ok(row) => {
                self.valid += 1;
                if let Some(at) = enc.row(&row, raw, &mut self.payload) {
                    self.row_index_at.push(at);
                }
                if let Some(b) = &mut self.building {
                    b.push_row(&row);
                }
            }
            Err(reject) => {
                if let Some(at) = enc.reject(&reject, &mut self.reject_payload) {
                    self.reject_index_at.push(at);
                }
                *self.reasons.entry(reject.reason.to_string()).or_default() += 1;
                if enc.keep_rejects() {
                    self.rejects.push(reject);
                }
            }
        }
    }

    /// Ends the batch: its Arrow columns built, and its record indexes turned into the input's,
    /// given the records before it.
    fn finish(&mut self, base: u64) {
        if let Some(mut b) = self.building.take() {
            self.columns = Some(b.finish());
        }
        if base == 0 {
            return;
        }
        if let Some(rows) = &mut self.columns {
            *rows = crate::schema::arrow::add_to_index(rows, base as i64);
        }
        for (buf, ats) in [
            (&mut self.payload, &self.row_index_at),
            (&mut self.reject_payload, &self.reject_index_at),
        ] {
            for &at in ats {
                let field: [u8; 8] = buf[at..at + 8].try_into().expect("8-byte index");
                let index = i64::from_be_bytes(field) + base as i64;
                buf[at..at + 8].copy_from_slice(&index.to_be_bytes());
            }
        }
        for r in &mut self.rejects {
            r.index += base;
        }
    }
}

/// Runs the records of `records` through validation and `enc` on `workers` threads, handing
/// each processed batch to `sink` in input order, with record indexes counted from the start of
/// the input. Stops at the first error of the input or of `sink`.
pub fn run(
    records: Records,
    dataset: &Dataset,
    workers: usize,
    enc: &dyn Encode,
    sink: &mut dyn FnMut(&Processed) -> Result<()>,
) -> Result<()> {
    run_chunked(records, dataset, workers, enc, sink, CHUNK_BYTES)
}
