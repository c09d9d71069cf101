//! Writing a load's parts: the pipeline's rows, built into Arrow columns on its workers, cut
//! by UTC day and handed to writer threads with one open Parquet file per part, memory bounded
//! however many days a file spans.

use super::*;
use arrow_array::cast::AsArray;
use arrow_array::types::{Date32Type, TimestampMicrosecondType};
use arrow_array::{Array, UInt32Array};

use crate::pipeline::Encode;
use crate::schema::row::Row;
use crate::schema::validate::Reject;
use crate::sink::dedup::HashEncoder;

/// Bytes of unwritten row groups held by all open parts at most: past it, the largest is
/// written out (memory stays flat however many days a file spans).
const HELD_BYTES: usize = 32 << 20;
/// Rows per row group (bounds the writer's memory per open part).
const ROW_GROUP_ROWS: usize = 65_536;
/// Bytes of a column chunk's dictionary at most: a column of many distinct values (ids) falls
/// back to plain encoding early instead of interning values it will not keep; columns of a few
/// values (names, kinds) stay dictionary-encoded.
const DICTIONARY_BYTES: usize = 32 << 10;
/// Rows per part file: a larger partition of one input goes to several parts.
const PART_ROWS: usize = 4 << 20;
/// Writer threads.
const WRITERS: usize = 2;

/// How the lake has the pipeline encode a batch: its rows as Arrow columns (built on the
/// workers), each with what the duplicate check needs (a [`HashEncoder`] record, with the raw
/// text for a keyed dataset's conflicts); its rejects as the rejects part's COPY rows.
struct LakeEncoder<'d> {
    dataset: &'d Dataset,
    load_id: i64,
    hashes: HashEncoder,
    rejects: CopyEncoder,
}

impl Encode for LakeEncoder<'_> {
    fn row(&self, row: &Row<'_>, raw: &[u8], out: &mut Vec<u8>) -> Option<usize> {
        self.hashes.row(row, raw, out)
    }

    fn reject(&self, reject: &Reject, out: &mut Vec<u8>) -> Option<usize> {
        self.rejects.reject(reject, out)
    }

    fn keep_rejects(&self) -> bool {
        self.rejects.keep_rejects()
    }

    fn columns(&self) -> Option<Builder> {
        Some(Builder::rows_of_load(self.dataset, self.load_id))
    }
}

impl Lake {
    /// Runs the pipeline into Parquet parts under `dir`; fills the report's counts.
    pub(super) fn write_parts(
        &self,
        source: Source,
        w: &Incoming<'_>,
        load_id: i64,
        dir: &Path,
        report: &mut FileReport,
        observer: &dyn Observer,
    ) -> Result<Vec<Written>> {
        let dataset = &w.dataset;
        let keyed = dataset.key.is_some();
        let enc = LakeEncoder {
            dataset,
            load_id,
            hashes: HashEncoder::new(dataset, keyed),
            rejects: CopyEncoder::new(dataset, load_id, false)
                .keeping_rejects(observer.wants_rejects()),
        };
        let partition_at = dataset
            .partition_by
            .as_deref()
            .and_then(|p| dataset.column_index(p));
        let tx = Writers::start(dir, crate::schema::arrow::rows_schema(dataset));
        let mut totals = Processed::default();
        let mut seen = FirstSeen::for_file(dataset, w.size.unwrap_or(0));
        let mut rejects = Builder::rejects();
        let mut conflicting = 0u64;
        let mut kept = 0u64;
        let conflict_reason = RejectReason::ConflictingDuplicate.to_string();
        let path = PathBuf::from(&report.path);
        let load_id_field = load_id.to_be_bytes();
        let mut pending = Pending::default();
        let outcome = source.run(
            dataset,
            self.opts.read.workers,
            &enc,
            &mut |batch: &Processed| {
                totals.absorb(batch);
                observer.records(&path, batch.records)?;
                for r in &batch.rejects {
                    observer.reject(&path, r)?;
                }
                // The rows kept, by day, in order.
                let mut days: Vec<(Option<i32>, Vec<u32>)> = Vec::new();
                if let Some(rows) = &batch.columns {
                    let day = days_of(rows, partition_at);
                    let mut row = 0u32;
                    seen.see_hashed_rows(&batch.payload, keyed, |index, raw, s| {
                        let at = row;
                        row += 1;
                        match s {
                            Seen::First => {}
                            Seen::Duplicate => return Ok(()),
                            Seen::Conflict => {
                                conflicting += 1;
                                let index = (index as i64).to_be_bytes();
                                rejects.push(&[
                                    Some(&load_id_field[..]),
                                    Some(&index[..]),
                                    Some(conflict_reason.as_bytes()),
                                    Some(raw),
                                ]);
                                return Ok(());
                            }
                        }
                        kept += 1;
                        let d = day(at as usize);
                        match days.iter_mut().find(|(x, _)| *x == d) {
                            Some((_, rows)) => rows.push(at),
                            None => days.push((d, vec![at])),
                        }
                        Ok(())
                    })?;
                    for (day, at) in days {
                        pending.add(day, pick(rows, &at)?, &tx)?;
                    }
                }
                let mut fields = Vec::new();
                let mut b = &batch.reject_payload[..];
                while !b.is_empty() {
                    b = copy_fields(b, &mut fields);
                    rejects.push(&fields);
                }
                if rejects.len() >= ROWS_OF_REJECTS {
                    tx.send(Part::Rejects, rejects.finish())?;
                }
                Ok(())
            },
        );
        let flushed = outcome.and_then(|()| {
            pending.flush(&tx)?;
            if !rejects.is_empty() {
                tx.send(Part::Rejects, rejects.finish())?;
            }
            Ok(())
        });
        // A writer's failure first: the rows' side then only saw that it stopped.
        let written = tx.finish(dir).and_then(|w| flushed.map(|()| w))?;
        report.records = totals.records;
        report.reject_reasons = totals.reasons;
        if conflicting > 0 {
            report.reject_reasons.insert(conflict_reason, conflicting);
        }
        report.unknown_fields = totals.unknown.into_iter().collect();
        report.loaded = kept;
        report.rejected = totals.records - totals.valid + conflicting;
        report.duplicates = totals.valid - kept - conflicting;
        Ok(written)
    }
}

/// Rows of a day handed to the Parquet writer at once at least (a smaller piece waits for more
/// of its day: a file whose days come mixed gives pieces of a few rows).
const SEND_ROWS: usize = 4_096;
/// Rows waiting in all days' pieces at most: past it, every day's are handed on.
const HELD_ROWS: usize = 16_384;

/// Pieces of days' rows too small to hand on alone.
#[derive(Default)]
struct Pending {
    days: Vec<(Option<i32>, Vec<RecordBatch>, usize)>,
    rows: usize,
}

impl Pending {
    /// Hands on a day's rows, with what waits of that day, once they are enough.
    fn add(&mut self, day: Option<i32>, rows: RecordBatch, tx: &Writers) -> Result<()> {
        let n = rows.num_rows();
        let at = match self.days.iter().position(|(d, _, _)| *d == day) {
            None if n >= SEND_ROWS => return tx.send(Part::Rows(day), rows),
            None => {
                self.days.push((day, Vec::new(), 0));
                self.days.len() - 1
            }
            Some(at) => at,
        };
        let (_, pieces, held) = &mut self.days[at];
        pieces.push(rows);
        *held += n;
        self.rows += n;
        if *held >= SEND_ROWS {
            let (day, pieces, held) = self.days.swap_remove(at);
            self.rows -= held;
            tx.send(Part::Rows(day), joined(&pieces)?)?;
        }
        if self.rows >= HELD_ROWS {
            self.flush(tx)?;
        }
        Ok(())
    }

    /// Hands on every day's rows that wait.
    fn flush(&mut self, tx: &Writers) -> Result<()> {
        for (day, pieces, _) in self.days.drain(..) {
            tx.send(Part::Rows(day), joined(&pieces)?)?;
        }
        self.rows = 0;
        Ok(())
    }
}

/// Pieces of rows as one batch.
fn joined(pieces: &[RecordBatch]) -> Result<RecordBatch> {
    match pieces {
        [one] => Ok(one.clone()),
        _ => arrow_select::concat::concat_batches(&pieces[0].schema(), pieces).map_err(arrow_error),
    }
}

fn arrow_error(e: arrow_schema::ArrowError) -> Error {
    Error::io("-", std::io::Error::other(e.to_string()))
}

/// Rejects per record batch handed to the Parquet writer.
const ROWS_OF_REJECTS: usize = 8_192;

/// The UTC day (days since 1970-01-01) of each row of a batch, by its column `at` (`None`: no
/// partition column, or it is null).
fn days_of(rows: &RecordBatch, at: Option<usize>) -> impl Fn(usize) -> Option<i32> + '_ {
    let column = at.map(|i| rows.column(i));
    move |row| {
        let c = column?;
        if c.is_null(row) {
            return None;
        }
        if let Some(ts) = c.as_primitive_opt::<TimestampMicrosecondType>() {
            return Some(ts.value(row).div_euclid(86_400_000_000) as i32);
        }
        c.as_primitive_opt::<Date32Type>().map(|d| d.value(row))
    }
}

/// The rows `at` of a batch (ascending): a slice of it when they follow one another (a file's
/// rows mostly come a day after another, without duplicates), else a copy of them.
fn pick(rows: &RecordBatch, at: &[u32]) -> Result<RecordBatch> {
    let (first, n) = (at[0] as usize, at.len());
    if at[n - 1] as usize == first + n - 1 {
        return Ok(rows.slice(first, n));
    }
    arrow_select::take::take_record_batch(rows, &UInt32Array::from(at.to_vec()))
        .map_err(arrow_error)
}

/// Writer threads, each with the parts of some days: the encoding and compression of parts go
/// on both cores, and so does the writing out of what is held when the rows end.
struct Writers {
    txs: Vec<mpsc::SyncSender<(Part, RecordBatch)>>,
    threads: Vec<std::thread::JoinHandle<Result<Vec<Written>>>>,
}

impl Writers {
    /// Writers of parts under `dir`, rows parts with the schema `rows`.
    fn start(dir: &Path, rows: arrow_schema::SchemaRef) -> Writers {
        let (mut txs, mut threads) = (Vec::new(), Vec::new());
        for n in 0..WRITERS {
            let (tx, rx) = mpsc::sync_channel::<(Part, RecordBatch)>(2);
            let (dir, rows) = (dir.to_path_buf(), rows.clone());
            txs.push(tx);
            threads.push(std::thread::spawn(move || write_batches(rx, &dir, rows, n)));
        }
        Writers { txs, threads }
    }

    /// Hands a batch to the writer of its part (one writer for every batch of a part).
    fn send(&self, part: Part, batch: RecordBatch) -> Result<()> {
        let n = match part {
            Part::Rows(day) => day.unwrap_or(0).rem_euclid(WRITERS as i32) as usize,
            Part::Rejects => 0,
        };
        self.txs[n]
            .send((part, batch))
            .map_err(|_| Error::io("-", std::io::Error::other("the Parquet writer stopped")))
    }

    /// Waits for the writers to close their parts; the parts in order of what they hold.
    fn finish(self, dir: &Path) -> Result<Vec<Written>> {
        drop(self.txs);
        let mut done = Vec::new();
        let mut failed = None;
        for t in self.threads {
            match t.join() {
                Ok(Ok(written)) => done.extend(written),
                Ok(Err(e)) => failed = failed.or(Some(e)),
                Err(_) => {
                    let stopped = std::io::Error::other("the Parquet writer stopped");
                    failed = failed.or(Some(Error::io(dir, stopped)));
                }
            }
        }
        if let Some(e) = failed {
            return Err(e);
        }
        done.sort_by_key(|w| (w.key, w.number));
        commit::sync_all(done.iter().map(|w| w.path.as_path()))?;
        Ok(done)
    }
}

/// What a part holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) enum Part {
    /// Rows of one UTC day (`None`: no partition column, or it is null).
    Rows(Option<i32>),
    /// Rejects.
    Rejects,
}

/// A part written and closed under the load's directory.
pub(super) struct Written {
    pub(super) key: Part,
    pub(super) number: u32,
    pub(super) path: PathBuf,
}

/// A schema without extension types (their fields as their storage types).
pub(super) fn plain(schema: &arrow_schema::Schema) -> arrow_schema::Schema {
    let fields: Vec<arrow_schema::Field> = schema
        .fields()
        .iter()
        .map(|f| {
            let mut meta = f.metadata().clone();
            meta.retain(|k, _| !k.starts_with("ARROW:extension:"));
            f.as_ref().clone().with_metadata(meta)
        })
        .collect();
    arrow_schema::Schema::new(fields)
}

/// A writer thread, the `writer`th: one open Parquet file per part, a new one past
/// [`PART_ROWS`] rows.
fn write_batches(
    rx: mpsc::Receiver<(Part, RecordBatch)>,
    dir: &Path,
    rows_schema: arrow_schema::SchemaRef,
    writer: usize,
) -> Result<Vec<Written>> {
    let mut props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_dictionary_page_size_limit(DICTIONARY_BYTES)
        .set_statistics_enabled(parquet::file::properties::EnabledStatistics::Chunk)
        .set_write_batch_size(8192);
    // Timestamps and record indexes are nearly all distinct: a dictionary would be filled and
    // dropped in every column chunk.
    for f in rows_schema.fields() {
        if matches!(f.data_type(), arrow_schema::DataType::Timestamp(..))
            || f.name() == "_record_index"
        {
            let column = parquet::schema::types::ColumnPath::from(f.name().as_str());
            props = props.set_column_dictionary_enabled(column, false);
        }
    }
    let props = props.build();
    let mut open: BTreeMap<Part, (ArrowWriter<File>, PathBuf, u32)> = BTreeMap::new();
    let mut next_number: HashMap<Part, u32> = HashMap::new();
    let mut done = Vec::new();
    let close = |w: ArrowWriter<File>,
                 path: PathBuf,
                 key: Part,
                 number: u32,
                 done: &mut Vec<Written>|
     -> Result<()> {
        // Synced with the others when every part is closed (see `Writers::finish`).
        w.into_inner().map_err(parquet_error(&path))?;
        done.push(Written { key, number, path });
        Ok(())
    };
    for (key, batch) in rx {
        if let Some((w, _, _)) = open.get(&key) {
            if w.flushed_row_groups()
                .iter()
                .map(|g| g.num_rows() as usize)
                .sum::<usize>()
                + w.in_progress_rows()
                >= PART_ROWS
            {
                let (w, path, number) = open.remove(&key).expect("checked above");
                close(w, path, key, number, &mut done)?;
            }
        }
        if !open.contains_key(&key) {
            let number = next_number.entry(key).or_insert(0);
            let n = done.len() + open.len();
            let path = dir.join(format!("{writer}-{n}-{number:04}.parquet"));
            let schema = match key {
                Part::Rejects => crate::schema::arrow::rejects_schema(),
                Part::Rows(_) => rows_schema.clone(),
            };
            let file = File::create(&path).map_err(io(&path))?;
            // The Arrow schema in the footer is the plain one: JSON columns are strings with
            // the JSON logical type in Parquet, but plain strings to Arrow readers (Iceberg
            // readers refuse the Arrow JSON extension type, and read its absence as binary).
            let mut props = props.clone();
            parquet::arrow::add_encoded_arrow_schema_to_metadata(&plain(&schema), &mut props);
            let options = ArrowWriterOptions::new()
                .with_properties(props)
                .with_skip_arrow_metadata(true);
            let w = ArrowWriter::try_new_with_options(file, schema, options)
                .map_err(parquet_error(&path))?;
            open.insert(key, (w, path, *number));
            *number += 1;
        }
        let (w, path, _) = open.get_mut(&key).expect("opened above");
        w.write(&batch).map_err(parquet_error(path))?;
        let held: usize = open.values().map(|(w, _, _)| w.memory_size()).sum();
        if held > HELD_BYTES / WRITERS {
            if let Some((w, path, _)) = open.values_mut().max_by_key(|(w, _, _)| w.memory_size()) {
                w.flush().map_err(parquet_error(path))?;
            }
        }
    }
    for (key, (w, path, number)) in open {
        close(w, path, key, number, &mut done)?;
    }
    Ok(done)
}
