//! The lake: validated rows as partitioned Parquet files under a directory, with a ledger of
//! its own (`_tier/loads.jsonl`).
//!
//! Layout: `<table>/date=YYYY-MM-DD/part-<sha16>-<NNNN>.parquet` (the UTC day of the
//! definition's `partition_by`; no `date=` level without one) and
//! `<table>_rejects/part-<sha16>-<NNNN>.parquet`.
//!
//! A load writes its parts under `_tier/tmp/<load_id>/`, closes and syncs them, writes a commit
//! manifest there, renames the parts into place and appends its ledger line. A run that finds a
//! load directory nobody holds finishes it when its manifest is there (the renames and the
//! ledger line) and removes it otherwise: a load is either wholly in the lake or not at all, and
//! a re-run writes the same names. The manifest names parts relative to the lake's root, so a
//! lake opened from another working directory, or moved, recovers the same; a part found
//! neither in the load's directory nor in place is damage, reported and never taken for done.

pub mod remote;
mod tables;
mod write;

use tables::{day_of_rel, rejects_columns, table_columns, TableAppend};
use write::Part;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{SystemTime, UNIX_EPOCH};

use ::arrow_array::RecordBatch;
use parquet::arrow::arrow_writer::ArrowWriterOptions;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use serde::{Deserialize, Serialize};

use super::copy::copy_fields;
use super::copy::CopyEncoder;
use super::dedup::{FirstSeen, Seen};
use super::ledger::LedgerLine;
use super::{Incoming, LoadOptions, Sink};
use crate::error::{Error, Result};
use crate::iceberg;
use crate::pipeline::{Observer, Processed, Source};
use crate::read::Location;
use crate::report::{FileReport, Status};
use crate::schema::arrow::Builder;
use crate::schema::timestamp::{format_date, Timestamp};
use crate::schema::validate::RejectReason;
use crate::schema::{ColumnType, Dataset};

/// The renames of a load and its ledger line, written before the first rename. Each rename is
/// (the part's file name in the load's directory, its path below the lake's root).
#[derive(Serialize, Deserialize)]
struct Manifest {
    renames: Vec<(String, String)>,
    line: LedgerLine,
    /// The Iceberg snapshots the load appends, one per table it wrote to.
    #[serde(default)]
    tables: Vec<TableAppend>,
}

/// The ledger's lines of the lake at `root`: a directory, or an `s3://` URL. Reads only:
/// nothing is created, and loads an earlier run left unfinished are left for the next load.
pub fn ledger_of(root: &Path) -> Result<Vec<LedgerLine>> {
    if let Location::Object(url) = Location::parse(root)? {
        return remote::RemoteLake::open(&url, LoadOptions::default())?.ledger();
    }
    if !root.join("_tier").is_dir() {
        return Err(Error::io(
            root,
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "no lake here (no _tier folder)",
            ),
        ));
    }
    read_ledger(&root.join("_tier").join("loads.jsonl"))
}

/// The lines of a ledger file (none when it does not exist).
fn read_ledger(path: &Path) -> Result<Vec<LedgerLine>> {
    let f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(path, e)),
    };
    let mut out = Vec::new();
    for line in BufReader::new(f).lines() {
        let line = line.map_err(io(path))?;
        if line.trim().is_empty() {
            continue;
        }
        // A line cut short by a crash is not a load.
        if let Ok(l) = serde_json::from_str::<LedgerLine>(&line) {
            out.push(l);
        }
    }
    Ok(out)
}

/// A lake directory that files are loaded into.
pub struct Lake {
    root: PathBuf,
    opts: LoadOptions,
    /// Where the Iceberg tables are: this directory, or the bucket a remote lake uploads to.
    store: iceberg::Store,
    catalog: Catalog,
}

/// Where a lake's tables are named and its loads recorded.
enum Catalog {
    /// `version-hint.text` beside each table's metadata, and the ledger `_tier/loads.jsonl`.
    Files,
    /// The SQL catalog of a database, whose `tier_loads` holds the lake's loads.
    Sql(Box<iceberg::Sql>, super::ledger::Ledger),
}

impl Catalog {
    fn iceberg(&self) -> &dyn iceberg::Catalog {
        match self {
            Catalog::Files => &iceberg::Hint,
            Catalog::Sql(sql, _) => sql.as_ref(),
        }
    }
}

/// A moment as the ledger writes it.
fn stamp(t: SystemTime) -> String {
    let micros = t
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64);
    Timestamp(micros).to_string()
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |e| Error::io(path, e)
}

fn parquet_error(path: &Path) -> impl Fn(parquet::errors::ParquetError) -> Error + '_ {
    move |e| Error::io(path, std::io::Error::other(e.to_string()))
}

/// An exclusive lock on a file (held until dropped).
struct Locked(#[allow(dead_code)] File);

impl Locked {
    fn take(path: &Path, wait: bool) -> Result<Option<Locked>> {
        let f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(path)
            .map_err(io(path))?;
        let how = if wait {
            libc::LOCK_EX
        } else {
            libc::LOCK_EX | libc::LOCK_NB
        };
        // SAFETY: flock on a descriptor we own.
        let rc = unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&f), how) };
        if rc == 0 {
            Ok(Some(Locked(f)))
        } else if !wait {
            Ok(None)
        } else {
            Err(Error::io(path, std::io::Error::last_os_error()))
        }
    }
}

/// Removes a directory and what it holds; one already gone is fine.
fn remove_dir(dir: &Path) -> Result<()> {
    match fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(dir, e)),
        _ => Ok(()),
    }
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))
}

impl Lake {
    /// Opens (creating) the lake at `root`, and settles loads that an earlier run left
    /// unfinished. Of the options, `schema` and `replace` do not apply to a lake.
    pub fn open(root: &Path, opts: LoadOptions) -> Result<Lake> {
        let lake = Lake {
            root: root.to_path_buf(),
            opts,
            store: iceberg::Store::of(root)?,
            catalog: Catalog::Files,
        };
        let lake = match &lake.opts.catalog_url {
            None => lake,
            Some(url) => {
                let mut client = crate::db::open_existing(Some(url))?;
                let schema = lake.opts.schema.clone();
                client.batch_execute(&format!(
                    "CREATE SCHEMA IF NOT EXISTS {};\n{}",
                    crate::db::ddl::quote_ident(&schema),
                    crate::db::ddl::ledger_ddl(&schema)
                ))?;
                let sql = iceberg::Sql::new(client)?;
                Lake {
                    catalog: Catalog::Sql(Box::new(sql), super::ledger::Ledger::new(&schema)),
                    ..lake
                }
            }
        };
        fs::create_dir_all(lake.tmp()).map_err(io(&lake.tmp()))?;
        lake.recover()?;
        Ok(lake)
    }

    fn meta(&self) -> PathBuf {
        self.root.join("_tier")
    }

    fn tmp(&self) -> PathBuf {
        self.meta().join("tmp")
    }

    fn ledger_path(&self) -> PathBuf {
        self.meta().join("loads.jsonl")
    }

    /// The ledger's lines (with a SQL catalog, its database's loads into lake tables).
    pub fn ledger(&self) -> Result<Vec<LedgerLine>> {
        match &self.catalog {
            Catalog::Files => read_ledger(&self.ledger_path()),
            Catalog::Sql(sql, ledger) => {
                let mut lines = sql.with(|c| ledger.list(c, None, i64::MAX))?;
                lines.retain_mut(|l| match l.target_table.strip_prefix("lake:") {
                    Some(t) => {
                        l.target_table = t.to_string();
                        true
                    }
                    None => false,
                });
                lines.reverse();
                Ok(lines)
            }
        }
    }

    /// Records a load's line: appended to the ledger file, or written into its row.
    fn append(&self, line: &LedgerLine) -> Result<()> {
        match &self.catalog {
            Catalog::Files => self.append_file(line),
            Catalog::Sql(sql, ledger) => sql.with(|c| ledger.record_line(c, line)),
        }
    }

    /// Appends a line to the ledger file and syncs it to disk.
    fn append_file(&self, line: &LedgerLine) -> Result<()> {
        let path = self.ledger_path();
        let _lock = Locked::take(&self.meta().join("ledger.lock"), true)?;
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io(&path))?;
        let text = serde_json::to_string(line).map_err(|e| Error::io(&path, e.into()))?;
        f.write_all(format!("{text}\n").as_bytes())
            .and_then(|_| f.sync_all())
            .map_err(io(&path))
    }

    /// A new load id: one more than any given out before in this lake (with a SQL catalog,
    /// the id of a `running` row opened for it).
    fn new_load(&self, dataset: &str, table: &str, source: &str) -> Result<i64> {
        match &self.catalog {
            Catalog::Files => self.next_load_id(),
            Catalog::Sql(sql, ledger) => {
                let table = format!("lake:{table}");
                sql.with(|c| ledger.start(c, dataset, &table, source, ""))
            }
        }
    }

    fn next_load_id(&self) -> Result<i64> {
        let path = self.meta().join("next_load_id");
        let lock = Locked::take(&self.meta().join("ledger.lock"), true)?;
        let from_file = fs::read_to_string(&path)
            .ok()
            .and_then(|s| s.trim().parse::<i64>().ok())
            .unwrap_or(1);
        let from_ledger = self
            .ledger()?
            .iter()
            .map(|l| l.load_id + 1)
            .max()
            .unwrap_or(1);
        let id = from_file.max(from_ledger);
        let mut f = File::create(&path).map_err(io(&path))?;
        f.write_all(format!("{}\n", id + 1).as_bytes())
            .and_then(|_| f.sync_all())
            .map_err(io(&path))?;
        drop(lock);
        Ok(id)
    }

    /// Finishes the loads whose manifest was written, and clears the rest, of load directories
    /// that no running load holds. A load whose parts are damaged is reported and moved to
    /// `_tier/damaged/`; its file is loaded again by the next run that names it.
    fn recover(&self) -> Result<()> {
        let tmp = self.tmp();
        let _scan = Locked::take(&self.meta().join("tmp.lock"), true)?;
        let entries = fs::read_dir(&tmp).map_err(io(&tmp))?;
        for e in entries.flatten() {
            let dir = e.path();
            if !dir.is_dir() {
                continue;
            }
            // Load folders are made with their lock, and removed, under `tmp.lock`, which this
            // scan holds: a folder without its lock was left by a run that died in between.
            if !dir.join(".lock").exists() {
                remove_dir(&dir)?;
                continue;
            }
            let Some(lock) = Locked::take(&dir.join(".lock"), false)? else {
                continue; // a load in progress
            };
            let manifest = dir.join("COMMIT");
            if let Ok(text) = fs::read_to_string(&manifest) {
                if let Ok(m) = serde_json::from_str::<Manifest>(&text) {
                    log::warn!(
                        "{}: finishing load {} that an earlier run left committed but not in place",
                        self.root.display(),
                        m.line.load_id
                    );
                    if let Err(err) = self.commit(&m, &dir) {
                        // Kept for inspection, out of the way of later runs.
                        let kept = self.meta().join("damaged").join(e.file_name());
                        fs::create_dir_all(self.meta().join("damaged"))
                            .and_then(|()| fs::rename(&dir, &kept))
                            .map_err(io(&kept))?;
                        log::error!("{err}; what it left is kept in {}", kept.display());
                        continue;
                    }
                }
            } else {
                log::info!("{}: clearing an unfinished load", dir.display());
            }
            remove_dir(&dir)?;
            drop(lock);
        }
        Ok(())
    }

    /// Renames the parts from the load's directory `dir` into place and appends the ledger
    /// line (each step can be redone). A part that is in neither place is an error: the ledger
    /// line is not written, and a later run loads the file again.
    fn commit(&self, m: &Manifest, dir: &Path) -> Result<()> {
        let mut dirs = HashSet::new();
        for (from, to) in &m.renames {
            // Older manifests named the part by its whole path: its file name is what counts.
            let name = Path::new(from).file_name().unwrap_or_default();
            let (from, to) = (dir.join(name), self.root.join(to));
            if !from.exists() {
                if to.exists() {
                    continue; // renamed before a crash
                }
                return Err(Error::io(
                    &to,
                    std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        format!(
                            "load {} of {} is damaged: this part is neither in place nor in {}",
                            m.line.load_id,
                            crate::report::visible(&m.line.source),
                            dir.display()
                        ),
                    ),
                ));
            }
            let folder = to.parent().unwrap_or(&self.root).to_path_buf();
            fs::create_dir_all(&folder).map_err(io(&folder))?;
            fs::rename(&from, &to).map_err(io(&to))?;
            crate::fault::point("lake.rename");
            dirs.insert(folder);
        }
        for d in &dirs {
            sync_dir(d)?;
        }
        if let iceberg::Store::Bucket(url, bucket) = &self.store {
            for (_, rel) in &m.renames {
                bucket.upload(&self.root.join(rel), &url.join(rel).key)?;
            }
        }
        // With a SQL catalog, the load's row commits with the rows table's swap.
        let record = |tx: &mut postgres::Transaction<'_>| match &self.catalog {
            Catalog::Sql(_, ledger) => ledger.record_line(tx, &m.line),
            Catalog::Files => Ok(()),
        };
        for t in &m.tables {
            let rows_table = t.table == m.line.target_table;
            let append = iceberg::Append {
                table: &t.table,
                columns: &t.columns,
                day_of: t.day_of.as_deref(),
                files: t.files.clone(),
                load_id: m.line.load_id,
                sha256: &m.line.sha256,
                source: &m.line.source,
                also: rows_table.then_some(&record as &iceberg::Also<'_>),
            };
            iceberg::append(&self.store, &self.root, self.catalog.iceberg(), &append)?;
        }
        if matches!(self.catalog, Catalog::Files)
            && !self.ledger()?.iter().any(|l| l.load_id == m.line.load_id)
        {
            self.append_file(&m.line)?;
        }
        Ok(())
    }

    /// Removes a load's folder, under `tmp.lock` so that no scan sees it half gone.
    fn discard(&self, dir: &Path) -> Result<()> {
        let _scan = Locked::take(&self.meta().join("tmp.lock"), true)?;
        remove_dir(dir)
    }

    /// The last succeeded load of this content into `table`, if any.
    fn succeeded_load(&self, sha256: &str, table: &str) -> Result<Option<i64>> {
        if let Catalog::Sql(sql, ledger) = &self.catalog {
            let table = format!("lake:{table}");
            return sql.with(|c| ledger.succeeded(c, sha256, &table));
        }
        Ok(self
            .ledger()?
            .iter()
            .rev()
            .find(|l| l.sha256 == sha256 && l.target_table == table && l.status == "succeeded")
            .map(|l| l.load_id))
    }

    /// Whether a file of this name and size was loaded into the lake before (then it is worth
    /// hashing first): one query of the catalog's ledger, or a look through the ledger file.
    fn has_loaded(&self, source: &str, bytes: u64) -> Result<bool> {
        if let Catalog::Sql(sql, ledger) = &self.catalog {
            return sql.with(|c| ledger.looks_loaded(c, source, bytes));
        }
        Ok(self
            .ledger()?
            .iter()
            .any(|l| l.source == source && l.bytes == bytes && l.status == "succeeded"))
    }

    /// Writes one file's rows and rejects to the lake.
    ///
    /// A load stopped by the quality gate writes nothing and is returned with status `failed`;
    /// any other failure writes nothing, is recorded in the ledger and returned as an error.
    pub fn load_file(&mut self, path: &Path, observer: &dyn Observer) -> Result<FileReport> {
        super::load_file(self, path, observer)
    }

    /// Writes a load's parts, then commits them (see [`Lake::commit`]) unless the gate stops
    /// it or the content was committed meanwhile.
    fn write_load(
        &mut self,
        source: Source,
        w: &Incoming<'_>,
        report: &mut FileReport,
        observer: &dyn Observer,
        dir: &Path,
    ) -> Result<()> {
        let dataset = &w.dataset;
        let load_id = report.load_id.unwrap_or_default();
        let parts = self.write_parts(source, dataset, load_id, dir, report, observer)?;
        w.hashed(report);
        if w.gate(report, &self.opts) {
            return Ok(());
        }
        // The same content committed meanwhile, or before under another name: skipped. Runs
        // that load the same content at once commit one at a time; the later one skips.
        let locks = self.meta().join("locks");
        fs::create_dir_all(&locks).map_err(io(&locks))?;
        let _same = Locked::take(
            &locks.join(format!("{}-{}", dataset.table, report.sha256)),
            true,
        )?;
        if !self.opts.force {
            if let Some(id) = self.succeeded_load(&report.sha256, &dataset.table)? {
                if let Catalog::Sql(sql, ledger) = &self.catalog {
                    sql.with(|c| ledger.forget(c, load_id))?;
                }
                report.status = Status::Skipped;
                report.load_id = Some(id);
                log::info!("{}: already in the lake as load {id}; skipped", report.path);
                return Ok(());
            }
        }
        let sha16: String = report.sha256.chars().take(16).collect();
        let mut renames = Vec::new();
        let mut rows = TableAppend {
            table: dataset.table.clone(),
            columns: table_columns(dataset),
            day_of: dataset.partition_by.clone(),
            files: Vec::new(),
        };
        let mut rejected = TableAppend {
            table: format!("{}_rejects", dataset.table),
            columns: rejects_columns(),
            day_of: None,
            files: Vec::new(),
        };
        for p in parts {
            let name = format!("part-{sha16}-{:04}.parquet", p.number);
            let rel = match &p.key {
                Part::Rejects => format!("{}_rejects/{name}", dataset.table),
                Part::Rows(None) if dataset.partition_by.is_some() => {
                    format!("{}/date=__HIVE_DEFAULT_PARTITION__/{name}", dataset.table)
                }
                Part::Rows(None) => format!("{}/{name}", dataset.table),
                Part::Rows(Some(day)) => {
                    format!("{}/date={}/{name}", dataset.table, format_date(*day))
                }
            };
            report.parts.push(rel.clone());
            let table = match p.key {
                Part::Rejects => &mut rejected,
                Part::Rows(_) => &mut rows,
            };
            table.files.push(iceberg::NewFile {
                day: day_of_rel(&rel),
                rel: rel.clone(),
            });
            let file = p.path.file_name().unwrap_or_default();
            renames.push((file.to_string_lossy().into_owned(), rel));
        }
        report.status = Status::Succeeded;
        let line = ledger_line(report, w.started_at);
        let mut tables = vec![rows];
        if !rejected.files.is_empty() {
            tables.push(rejected);
        }
        let manifest = Manifest {
            renames,
            line,
            tables,
        };
        let mpath = dir.join("COMMIT");
        let text = serde_json::to_vec(&manifest).map_err(|e| Error::io(&mpath, e.into()))?;
        let mut f = File::create(&mpath).map_err(io(&mpath))?;
        f.write_all(&text)
            .and_then(|_| f.sync_all())
            .map_err(io(&mpath))?;
        sync_dir(dir)?;
        crate::fault::point("lake.manifest");
        self.commit(&manifest, dir)
    }
}

/// A load's ledger line, as its report says.
fn ledger_line(report: &FileReport, started_at: SystemTime) -> LedgerLine {
    let table = report.table.as_deref().unwrap_or_default();
    LedgerLine {
        load_id: report.load_id.unwrap_or_default(),
        dataset: report.dataset.clone(),
        target_table: table.strip_prefix("lake:").unwrap_or(table).to_string(),
        source: report.path.clone(),
        sha256: report.sha256.clone(),
        bytes: report.bytes,
        records: report.records,
        loaded: report.loaded,
        duplicates: report.duplicates,
        rejected: report.rejected,
        status: report.status.as_str().into(),
        started_at: stamp(started_at),
        finished_at: stamp(SystemTime::now()),
        parts: report.parts.clone(),
        error: report.error.clone(),
    }
}

impl Sink for Lake {
    fn options(&self) -> &LoadOptions {
        &self.opts
    }

    fn target(&self, dataset: &Dataset) -> String {
        format!("lake:{}", dataset.table)
    }

    fn looks_loaded(&mut self, source: &str, bytes: u64) -> Result<bool> {
        // Only a hint to hash first: a ledger that cannot be read is read again later.
        Ok(self.has_loaded(source, bytes).unwrap_or(false))
    }

    fn prepare(&mut self, dataset: &Dataset) -> Result<()> {
        let partition_by = dataset.partition_by.as_deref();
        iceberg::check_fits(
            &self.store,
            self.catalog.iceberg(),
            &dataset.table,
            partition_by,
        )
    }

    fn loaded_before(&mut self, sha256: &str, dataset: &Dataset) -> Result<Option<i64>> {
        self.succeeded_load(sha256, &dataset.table)
    }

    fn write(
        &mut self,
        source: Source,
        w: &Incoming<'_>,
        report: &mut FileReport,
        observer: &dyn Observer,
    ) -> Result<()> {
        let load_id = self.new_load(&w.dataset.name, &w.dataset.table, &report.path)?;
        report.load_id = Some(load_id);
        let dir = self.tmp().join(load_id.to_string());
        let lock = {
            // Created and locked at once, as far as a recovering run can see.
            let _scan = Locked::take(&self.meta().join("tmp.lock"), true)?;
            fs::create_dir_all(&dir).map_err(io(&dir))?;
            Locked::take(&dir.join(".lock"), true)?
        };
        let outcome = self.write_load(source, w, report, observer, &dir);
        // Committed, skipped, stopped by the gate or failed: the load's folder goes; but a
        // commit that failed half-way keeps its manifest, for the next run to finish.
        if outcome.is_ok() || !dir.join("COMMIT").exists() {
            self.discard(&dir)?;
        }
        drop(lock);
        outcome
    }

    fn record_failure(&mut self, report: &mut FileReport, error: &str, started_at: SystemTime) {
        if let Some(id) = report.load_id {
            if self.tmp().join(id.to_string()).join("COMMIT").exists() {
                log::warn!("{}: load {id} is committed but not all in place: {error}; the next run finishes it", report.path);
                return;
            }
        }
        let recorded = (|| -> Result<()> {
            let mut line = ledger_line(report, started_at);
            if report.load_id.is_none() {
                let id = self.new_load(&line.dataset, &line.target_table, &line.source)?;
                (report.load_id, line.load_id) = (Some(id), id);
            }
            line.status = "failed".into();
            line.error = Some(error.to_string());
            self.append(&line)
        })();
        if let Err(e) = recorded {
            log::warn!("could not record the failed load in the ledger: {e}");
        }
    }
}
