//! Writing a load's parts: the pipeline's rows into Arrow builders per UTC day, and a writer
//! thread with one open Parquet file per part, memory bounded however many days a file spans.

use super::*;

/// Rows per record batch handed to the Parquet writer (per partition being filled).
const BATCH_ROWS: usize = 8_192;
/// Rows held in all partitions' builders at most: past it, every builder is handed on.
const HELD_ROWS: usize = 16_384;
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
        let enc =
            CopyEncoder::new(dataset, load_id, keyed).keeping_rejects(observer.wants_rejects());
        let layout = crate::sink::copy::Layout::of(dataset);
        let partition_at = dataset
            .partition_by
            .as_deref()
            .and_then(|p| dataset.column_index(p))
            .map(|i| (i, dataset.columns[i].ty));
        let tx = Writers::start(dir, crate::schema::arrow::rows_schema(dataset));
        let mut totals = Processed::default();
        let mut seen = FirstSeen::for_file(dataset, w.size.unwrap_or(0));
        let mut builders = Days::new(dataset);
        let mut rejects = Builder::rejects();
        let mut conflicting = 0u64;
        let mut kept = 0u64;
        let mut held = 0usize;
        let conflict_reason = RejectReason::ConflictingDuplicate.to_string();
        let path = PathBuf::from(&report.path);
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
                seen.see_rows(&batch.payload, |_, fields, seen| {
                    match seen {
                        Seen::First => {}
                        Seen::Duplicate => return Ok(()),
                        Seen::Conflict => {
                            conflicting += 1;
                            let reason: &[u8] = conflict_reason.as_bytes();
                            rejects.push(&layout.reject(fields, reason));
                            return Ok(());
                        }
                    }
                    kept += 1;
                    let day = partition_at.and_then(|(i, ty)| fields[i].map(|f| day_of(f, ty)));
                    let builder = builders.of(day);
                    builder.push(fields);
                    held += 1;
                    if builder.len() >= BATCH_ROWS {
                        held -= builder.len();
                        tx.send(Part::Rows(day), builder.finish())?;
                    }
                    if held >= HELD_ROWS {
                        for (day, b) in builders.all().filter(|(_, b)| !b.is_empty()) {
                            tx.send(Part::Rows(*day), b.finish())?;
                        }
                        held = 0;
                    }
                    Ok(())
                })?;
                let mut fields = Vec::with_capacity(layout.fields);
                let mut b = &batch.reject_payload[..];
                while !b.is_empty() {
                    b = copy_fields(b, &mut fields);
                    rejects.push(&fields);
                }
                if rejects.len() >= BATCH_ROWS {
                    tx.send(Part::Rejects, rejects.finish())?;
                }
                Ok(())
            },
        );
        let flushed = outcome.and_then(|()| {
            for (day, mut b) in builders.by_day() {
                if !b.is_empty() {
                    tx.send(Part::Rows(day), b.finish())?;
                }
            }
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

/// The builders of the UTC days a load's rows fall on. The last one asked for is looked at
/// first: a file's rows mostly come in time order, a day's after another's.
struct Days<'d>(
    Vec<(Option<i32>, Builder)>,
    HashMap<Option<i32>, usize>,
    usize,
    &'d Dataset,
);

impl<'d> Days<'d> {
    fn new(dataset: &'d Dataset) -> Days<'d> {
        Days(Vec::new(), HashMap::new(), 0, dataset)
    }

    /// The builder of a day's rows (`None`: no partition column, or it is null).
    fn of(&mut self, day: Option<i32>) -> &mut Builder {
        let Days(builders, at, last, dataset) = self;
        if builders.get(*last).is_none_or(|(d, _)| *d != day) {
            let n = builders.len();
            *last = *at.entry(day).or_insert(n);
            if *last == n {
                builders.push((day, Builder::rows(dataset)));
            }
        }
        &mut builders[*last].1
    }

    /// The builders in the order of their days.
    fn by_day(self) -> Vec<(Option<i32>, Builder)> {
        let mut builders = self.0;
        builders.sort_by_key(|(day, _)| *day);
        builders
    }

    /// Every day's builder.
    fn all(&mut self) -> impl Iterator<Item = (&Option<i32>, &mut Builder)> {
        self.0.iter_mut().map(|(d, b)| (&*d, b))
    }
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
        Ok(done)
    }
}

/// The UTC day (days since 1970-01-01) of a binary COPY `timestamptz` or `date` field.
pub(super) fn day_of(field: &[u8], ty: ColumnType) -> i32 {
    use crate::schema::timestamp::{PG_EPOCH_OFFSET_DAYS, PG_EPOCH_OFFSET_MICROS};
    match ty {
        ColumnType::Date => {
            i32::from_be_bytes(field.try_into().unwrap_or([0; 4])) + PG_EPOCH_OFFSET_DAYS
        }
        _ => {
            let micros =
                i64::from_be_bytes(field.try_into().unwrap_or([0; 8])) + PG_EPOCH_OFFSET_MICROS;
            micros.div_euclid(86_400_000_000) as i32
        }
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
        let f = w.into_inner().map_err(parquet_error(&path))?;
        f.sync_all().map_err(io(&path))?;
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
