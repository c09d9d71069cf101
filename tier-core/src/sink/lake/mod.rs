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

mod commit;
mod ledger;
mod tables;
mod write;

use commit::{sync_path, Locked, Manifest};
use ledger::ledger_line;
pub use ledger::ledger_of;

use tables::{day_of_rel, rejects_columns, table_columns, TableAppend};
use write::Part;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
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
use crate::read::object::{Bucket, Url};
use crate::read::Location;
use crate::report::{FileReport, Status};
use crate::schema::arrow::Builder;
use crate::schema::timestamp::{format_date, Timestamp};
use crate::schema::validate::RejectReason;
use crate::schema::{ColumnType, Dataset};

/// A lake directory that files are loaded into.
pub struct Lake {
    root: PathBuf,
    opts: LoadOptions,
    /// Where the Iceberg tables are: this directory, or the bucket a remote lake uploads to.
    store: iceberg::Store,
    catalog: Catalog,
    /// A lake in a bucket: the local folder its parts are written in before their upload.
    _scratch: Option<tempfile::TempDir>,
}

/// Where a lake's tables are named and its loads recorded.
enum Catalog {
    /// `version-hint.text` beside each table's metadata, and the ledger `_tier/loads.jsonl`.
    Files,
    /// The same in a bucket: `_tier/loads.jsonl` and `_tier/next_load_id` objects, written by
    /// conditional puts that lose no update (see [`Bucket::update`]).
    Bucket(Url, Bucket),
    /// The SQL catalog of a database, whose `tier_loads` holds the lake's loads.
    Sql(Box<iceberg::Sql>, super::ledger::Ledger),
}

impl Catalog {
    fn iceberg(&self) -> &dyn iceberg::Catalog {
        match self {
            Catalog::Files | Catalog::Bucket(..) => &iceberg::Hint,
            Catalog::Sql(sql, _) => sql.as_ref(),
        }
    }
}

/// The report of a load skipped because load `id` holds its content.
fn skipped(report: &mut FileReport, id: i64) {
    report.status = Status::Skipped;
    report.load_id = Some(id);
    report.parts.clear();
    log::info!("{}: already in the lake as load {id}; skipped", report.path);
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

impl Lake {
    /// Opens (creating) the lake at `root`, a directory or an `s3://` URL, and settles loads
    /// that an earlier run left unfinished. Of the options, `schema` and `replace` do not apply
    /// to a lake.
    ///
    /// In a bucket, a load's parts are written in a local folder of its own and uploaded under
    /// their final names (each object appears whole or not at all) before the snapshot that
    /// names them is committed; load ids and ledger lines are the bucket's, so any number of
    /// processes load into one bucket's lake at once. Nothing is written until a load.
    pub fn open(root: &Path, opts: LoadOptions) -> Result<Lake> {
        let lake = match Location::parse(root)? {
            Location::Object(url) => {
                let bucket = Bucket::of(&url)?;
                let scratch = tempfile::tempdir().map_err(io(&std::env::temp_dir()))?;
                Lake {
                    root: scratch.path().to_path_buf(),
                    opts,
                    store: iceberg::Store::Bucket(url.clone(), bucket.clone()),
                    catalog: Catalog::Bucket(url, bucket),
                    _scratch: Some(scratch),
                }
            }
            _ => Lake {
                root: root.to_path_buf(),
                opts,
                store: iceberg::Store::of(root)?,
                catalog: Catalog::Files,
                _scratch: None,
            },
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

    /// Takes the part name `rel` (a path below the root) for this load, if no part has it and
    /// no other load holds it. On a bucket, loaders on other machines may name parts of the
    /// same content at once: the claim `_tier/claims/…` is made only where there is none (a
    /// conditional put), and then no part may have the name yet (one put in place before its
    /// load let go of the claim). In a directory, the content's lock, held from the ledger's
    /// look-up to the commit, keeps the other loads of the content away.
    fn claim(&self, rel: &str) -> Result<bool> {
        let bucket = matches!(self.store, iceberg::Store::Bucket(..));
        if bucket && !self.store.create(&claim_of(rel), Vec::new())? {
            return Ok(false);
        }
        if self.store.exists(rel)? {
            self.release(rel);
            return Ok(false);
        }
        Ok(true)
    }

    /// Lets go of the claim on a part name (see [`Lake::claim`]). A claim left behind only
    /// keeps its name from later loads, so a failure here is logged, not returned.
    fn release(&self, rel: &str) {
        if let iceberg::Store::Bucket(..) = self.store {
            if let Err(e) = self.store.delete(&claim_of(rel)) {
                log::warn!("could not let go of the claim on {rel}: {e}");
            }
        }
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
        let parts = self.write_parts(source, w, load_id, dir, report, observer)?;
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
                skipped(report, id);
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
        let mut named = Claims {
            lake: self,
            names: HashSet::new(),
        };
        for p in parts {
            let rel_of = |number: u32| {
                let name = format!("part-{sha16}-{number:04}.parquet");
                match &p.key {
                    Part::Rejects => format!("{}_rejects/{name}", dataset.table),
                    Part::Rows(None) if dataset.partition_by.is_some() => {
                        format!("{}/date=__HIVE_DEFAULT_PARTITION__/{name}", dataset.table)
                    }
                    Part::Rows(None) => format!("{}/{name}", dataset.table),
                    Part::Rows(Some(day)) => {
                        format!("{}/date={}/{name}", dataset.table, format_date(*day))
                    }
                }
            };
            // The next name no part and no other load holds: content loaded again (`--force`)
            // or by two loaders at once never writes over the parts a snapshot names.
            let mut number = p.number;
            while named.names.contains(&rel_of(number)) || !self.claim(&rel_of(number))? {
                number += 1;
            }
            let rel = rel_of(number);
            named.names.insert(rel.clone());
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
            again: self.opts.force,
            claimed: true,
        };
        let mpath = dir.join("COMMIT");
        let text = serde_json::to_vec(&manifest).map_err(|e| Error::io(&mpath, e.into()))?;
        let mut f = File::create(&mpath).map_err(io(&mpath))?;
        f.write_all(&text)
            .and_then(|_| f.sync_all())
            .map_err(io(&mpath))?;
        sync_path(dir)?;
        // From here the manifest holds the names: the commit lets go of them, or the run that
        // finishes it.
        named.names.clear();
        crate::fault::point("lake.manifest");
        if let Some(id) = self.commit(&manifest, dir)? {
            // Loaded by another run between the ledger's look-up and this commit.
            skipped(report, id);
        }
        Ok(())
    }
}

/// Where the claim on a part name is kept in a bucket (see [`Lake::claim`]): one prefix, the
/// path's `/` as `+` (no table, partition or part name has one), not a `.parquet` name that a
/// reader's glob takes for a part.
fn claim_of(rel: &str) -> String {
    format!("_tier/claims/{}.claim", rel.replace('/', "+"))
}

/// The part names a load claimed (see [`Lake::claim`]) before its manifest holds them: let go
/// of if it ends before.
struct Claims<'a> {
    lake: &'a Lake,
    names: HashSet<String>,
}

impl Drop for Claims<'_> {
    fn drop(&mut self) {
        for rel in &self.names {
            self.lake.release(rel);
        }
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
