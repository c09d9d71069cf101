//! Loading files into PostgreSQL: one transaction per file, binary COPY into a staging table,
//! then rejects, duplicates and rows settled in SQL, with the ledger row committed alongside.

use std::collections::{BTreeMap, HashSet};

use std::io::Write;
use std::path::Path;
use std::time::SystemTime;

use postgres::{Client, Transaction};

use super::copy::copy_fields;
use super::copy::{self, CopyEncoder, HEADER, TRAILER};
use super::dedup::{FirstSeen, Seen};
use super::ledger::Ledger;
use super::{Incoming, LoadOptions, Sink};
use crate::db::ddl::{self, qualified, quote_ident};
use crate::error::{Error, Result};
use crate::pipeline::{open_input, Observer, Processed, ReadOptions, Source};
use crate::read as reader;
use crate::report::{FileReport, Status};
use crate::schema::validate::{Reject, RejectReason};
use crate::schema::Dataset;

mod plan;
mod settle;
mod spool;
mod stage;
mod tables;

use plan::*;
use settle::*;
use spool::*;
use stage::*;
use tables::*;

/// Opens a load's input again, for a second reading.
type Reopen<'a> = dyn Fn() -> Result<(Source, Option<reader::Sha256Handle>)> + 'a;

/// Loads files into one database.
pub struct Loader {
    client: Client,
    opts: LoadOptions,
    ledger: Ledger,
    ready: HashSet<String>,
    /// How to connect again (`Some` when the loader made its own connection).
    reconnect: Option<Option<String>>,
    /// The server did not come back the last time it was waited for: later files try once.
    gave_up: bool,
}

impl Loader {
    /// A loader over an open connection.
    pub fn new(client: Client, opts: LoadOptions) -> Result<Loader> {
        Ok(Loader {
            client,
            ledger: Ledger::new(&opts.schema),
            opts,
            ready: HashSet::new(),
            reconnect: None,
            gave_up: false,
        })
    }

    /// A loader over a connection to the database chosen as [`crate::db::open`] chooses it; it
    /// connects again to record a failed load when its connection was lost.
    pub fn connect(database_url: Option<&str>, opts: LoadOptions) -> Result<Loader> {
        let mut l = Loader::new(crate::db::open(database_url)?, opts)?;
        l.reconnect = Some(database_url.map(str::to_string));
        Ok(l)
    }

    /// The connection, for queries of one's own.
    pub fn client(&mut self) -> &mut Client {
        &mut self.client
    }

    /// Creates the schema, the ledger and the dataset's tables when missing. An existing table
    /// with incompatible columns is an error and nothing is changed.
    pub fn ensure_tables(&mut self, dataset: &Dataset) -> Result<()> {
        if self.ready.contains(&dataset.table) {
            return Ok(());
        }
        let schema = self.opts.schema.clone();
        let mut tx = self.client.transaction()?;
        // One creator at a time, whatever the database.
        tx.batch_execute("SET LOCAL client_min_messages = warning")?;
        tx.execute("SELECT pg_advisory_xact_lock(7419201)", &[])?;
        check_columns(&mut tx, &schema, ddl::LEDGER, &ddl::LEDGER_COLUMNS, false)?;
        check_columns(
            &mut tx,
            &schema,
            &dataset.table,
            &ddl::target_columns(dataset),
            true,
        )?;
        check_columns(
            &mut tx,
            &schema,
            &ddl::rejects_table(dataset),
            &ddl::REJECT_COLUMNS,
            false,
        )?;
        // DDL only when something is missing: `CREATE INDEX IF NOT EXISTS` on a table that
        // exists still waits for the loads in progress into it.
        let all_there: bool = tx
            .query_one(
                "SELECT to_regclass($1) IS NOT NULL AND to_regclass($2) IS NOT NULL \
                 AND to_regclass($3) IS NOT NULL AND to_regclass($4) IS NOT NULL",
                &[
                    &qualified(&schema, ddl::LEDGER),
                    &qualified(&schema, &dataset.table),
                    &qualified(&schema, &ddl::rejects_table(dataset)),
                    &qualified(&schema, ddl::LEDGER_SOURCE_INDEX),
                ],
            )?
            .get(0);
        if !all_there {
            tx.batch_execute(&format!(
                "CREATE SCHEMA IF NOT EXISTS {};\n{}{}",
                quote_ident(&schema),
                ddl::ledger_ddl(&schema),
                ddl::table_ddl(dataset, &schema)
            ))?;
        }
        tx.commit()?;
        self.ready.insert(dataset.table.clone());
        Ok(())
    }

    /// Loads one file (`-` is standard input) in one transaction.
    ///
    /// A load stopped by the quality gate is rolled back and returned with status `failed`;
    /// any other failure is rolled back, recorded in the ledger and returned as an error. A
    /// connection lost before (a server restarted between two files) is made again first,
    /// waiting about half a minute for the server to come back; a database error is returned as
    /// [`Error::Failed`], whose report names the file.
    pub fn load_file(&mut self, path: &Path, observer: &dyn Observer) -> Result<FileReport> {
        if self.client.is_closed() {
            self.connect_again();
        }
        match super::load_file(self, path, observer) {
            Err(e)
                if !matches!(e, Error::Failed { .. }) && e.kind() == crate::ErrorKind::Database =>
            {
                let mut report = FileReport::new(path, "", None, Status::Failed);
                report.error = Some(e.to_string());
                Err(Error::Failed {
                    report: Box::new(report),
                    source: Box::new(e),
                })
            }
            outcome => outcome,
        }
    }

    /// Connects again when the loader made its own connection: at once, then with growing
    /// waits (about 30 s in all, or one try when the server did not come back last time).
    fn connect_again(&mut self) -> bool {
        let Some(url) = self.reconnect.clone() else {
            return false;
        };
        let waits: &[u64] = if self.gave_up {
            &[0]
        } else {
            &[0, 250, 500, 1000, 2000, 4000, 8000, 8000, 8000]
        };
        for (i, wait_ms) in waits.iter().enumerate() {
            std::thread::sleep(std::time::Duration::from_millis(*wait_ms));
            match crate::db::open(url.as_deref()) {
                Ok(c) => {
                    self.client = c;
                    self.ready.clear();
                    self.gave_up = false;
                    return true;
                }
                Err(e) if i + 1 == waits.len() => {
                    log::warn!("the server did not come back: {e}");
                }
                Err(e) => log::debug!("connecting again: {e}"),
            }
        }
        self.gave_up = true;
        false
    }
}

impl Sink for Loader {
    fn options(&self) -> &LoadOptions {
        &self.opts
    }

    fn target(&self, dataset: &Dataset) -> String {
        format!("{}.{}", self.opts.schema, dataset.table)
    }

    fn looks_loaded(&mut self, source: &str, bytes: u64) -> Result<bool> {
        self.ledger.looks_loaded(&mut self.client, source, bytes)
    }

    fn prepare(&mut self, dataset: &Dataset) -> Result<()> {
        self.ensure_tables(dataset)
    }

    fn loaded_before(&mut self, sha256: &str, dataset: &Dataset) -> Result<Option<i64>> {
        let table = self.target(dataset);
        self.ledger.succeeded(&mut self.client, sha256, &table)
    }

    /// One load in one transaction, in four phases: [`plan`] (skip, evolve, register, choose
    /// the path), [`stage`] (read, validate and COPY), [`apply`] (settle the rows into the
    /// table), then the ledger's record and the commit.
    fn write(
        &mut self,
        source: Source,
        w: &Incoming<'_>,
        report: &mut FileReport,
        observer: &dyn Observer,
    ) -> Result<()> {
        let stdin = w.path.as_os_str() == "-";
        let read = ReadOptions {
            dataset: Some(w.dataset.clone()),
            ..self.opts.read.clone()
        };
        let reopen = || -> Result<(Source, Option<reader::Sha256Handle>)> {
            let opened = open_input(w.path, &read, true)?;
            Ok((opened.source, opened.sha256))
        };
        let reopen = (!stdin).then_some(&reopen as &Reopen<'_>);
        let first = self.attempt(source, w, report, observer, reopen, reopen.is_some())?;
        if let (Attempt::Yielded, Some(reopen)) = (first, reopen) {
            // Another load of the same content held its lock: this one let go of the table and
            // goes again, the content's lock first (it waits for the other to end, then skips
            // the file if that load succeeded).
            log::debug!(
                "{}: the same content is loading elsewhere; again",
                report.path
            );
            let (source, sha256) = reopen()?;
            let again = Incoming {
                sha256,
                dataset: w.dataset.clone(),
                progress: w.progress.clone(),
                ..*w
            };
            report.added_columns.clear();
            self.attempt(source, &again, report, observer, Some(reopen), false)?;
        }
        Ok(())
    }

    /// Writes the `failed` ledger row of a load that was rolled back, on a fresh connection
    /// when the loader's was lost.
    fn record_failure(&mut self, report: &mut FileReport, error: &str, started_at: SystemTime) {
        let mut outcome = self
            .ledger
            .failed(&mut self.client, report, error, started_at);
        // The connection was lost with the load: a new one records it, once the server answers
        // again (a restarting server takes a few seconds).
        if outcome.is_err() && self.connect_again() {
            outcome = self
                .ledger
                .failed(&mut self.client, report, error, started_at);
        }
        match outcome {
            Ok(id) => report.load_id = Some(id),
            Err(e) => log::warn!("could not record the failed load in the ledger: {e}"),
        }
    }
}

/// How an attempt at a load ended.
enum Attempt {
    /// Committed, skipped, or stopped by the quality gate.
    Done,
    /// Rolled back, to go again: the content's lock, needed after the rows were in, was
    /// another load's (which may wait for the table this load held).
    Yielded,
}

impl Loader {
    /// One attempt at a load, in one transaction. A load that hashes its input as it reads
    /// takes the content's lock only once its rows are in: if another load holds it, one that
    /// `may_yield` (it can read its input again) yields rather than wait with the table in hand.
    fn attempt(
        &mut self,
        source: Source,
        w: &Incoming<'_>,
        report: &mut FileReport,
        observer: &dyn Observer,
        reopen: Option<&Reopen<'_>>,
        may_yield: bool,
    ) -> Result<Attempt> {
        let table = qualified(&self.opts.schema, &w.dataset.table);
        let (dataset, table) = (&w.dataset, table.as_str());
        let opts = self.opts.clone();
        let ledger = self.ledger.clone();
        let mut tx = self.client.transaction()?;
        let token = tx.cancel_token();
        // Ctrl-C cancels what the server is doing for the load (a COPY, a merge, an index
        // build, a wait for a lock), and the load rolls back.
        watching(&token, observer, move || {
            tx.batch_execute(
                "SET LOCAL work_mem = '256MB'; SET LOCAL client_min_messages = warning",
            )?;
            let Some(plan) = plan(
                &mut tx,
                &opts,
                &ledger,
                dataset,
                table,
                report,
                reopen.is_some(),
            )?
            else {
                return Ok(Attempt::Done);
            };
            let mut staged = stage(&mut tx, source, w, table, &plan, &opts, observer)?;
            w.hashed(report);
            if let (true, Some(reopen)) = (staged.refused, reopen) {
                // Rows of the file are in the table: loaded before under another name (then the
                // content's lock skips it now, without a second reading), or overlapping rows.
                if w.sha256.is_some() {
                    match content_lock(&mut tx, &opts, &ledger, report, !may_yield)? {
                        Content::Loaded(id) => return skipped(tx, report, id),
                        Content::Busy => return Ok(Attempt::Yielded),
                        Content::Free => {}
                    }
                }
                let again = reopen()?;
                let workers = opts.read.workers;
                let first = (&*report, staged);
                staged = restage(&mut tx, again, (dataset, &plan), workers, first, observer)?;
            }
            let totals = &staged.totals;
            report.records = totals.records;
            report.reject_reasons = totals.reasons.clone();
            report.unknown_fields = totals
                .unknown
                .iter()
                .map(|(k, v)| (k.clone(), *v))
                .collect();
            let rejects = qualified(&opts.schema, &ddl::rejects_table(dataset));
            let path = Path::new(&report.path).to_path_buf();
            let mut on_conflict = |index: u64, raw: &str| {
                if !observer.wants_rejects() {
                    return Ok(());
                }
                let reject = Reject {
                    index,
                    reason: RejectReason::ConflictingDuplicate,
                    raw: raw.to_string(),
                };
                observer.reject(&path, &reject)
            };
            let tables = (table, rejects.as_str());
            let (loaded, conflicts_in_table) =
                apply(&mut tx, dataset, &opts, tables, &staged, &mut on_conflict)?;
            log::debug!("{}: rows settled", report.path);
            if w.sha256.is_some() {
                // Hashed while reading: the content's lock and the skip come now. (Taken after the
                // insert, so that no load holds it while waiting for a table taken alone.)
                match content_lock(&mut tx, &opts, &ledger, report, !may_yield)? {
                    // Loaded already (by a load that ran at the same time, or with another name).
                    Content::Loaded(id) => return skipped(tx, report, id),
                    Content::Busy => return Ok(Attempt::Yielded),
                    Content::Free => {}
                }
            }
            let conflicting = staged.conflicts + conflicts_in_table;
            if conflicting > 0 {
                report
                    .reject_reasons
                    .insert(RejectReason::ConflictingDuplicate.to_string(), conflicting);
            }
            report.loaded = loaded;
            report.rejected = totals.rejected() + conflicting;
            report.duplicates = totals.valid - conflicting - loaded;

            if w.gate(report, &opts) {
                drop(tx);
                return Ok(Attempt::Done);
            }
            // The last moment Ctrl-C rolls the load back.
            observer.stopped()?;
            report.status = Status::Succeeded;
            ledger.finish(&mut tx, report, plan.load_id)?;
            tx.commit()?;
            Ok(Attempt::Done)
        })
    }
}

/// Runs `work` while a watcher cancels the connection's statement in progress as soon as the
/// observer says stop; a statement so cancelled is [`Error::Interrupted`].
fn watching<T>(
    token: &postgres::CancelToken,
    observer: &dyn Observer,
    work: impl FnOnce() -> Result<T>,
) -> Result<T> {
    // The watcher looks at the observer every 50 ms, and leaves as soon as the work is done
    // (its channel closes): the load does not wait out a last pause.
    let (done, finished) = std::sync::mpsc::channel::<()>();
    let outcome = std::thread::scope(|s| {
        s.spawn(move || {
            let pause = std::time::Duration::from_millis(50);
            while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = finished.recv_timeout(pause)
            {
                if observer.stopped().is_err() {
                    if let Err(e) = token.cancel_query(postgres::NoTls) {
                        log::debug!("could not cancel the statement: {e}");
                    }
                    return;
                }
            }
        });
        let outcome = work();
        drop(done);
        outcome
    });
    match outcome {
        Err(e) if observer.stopped().is_err() && !matches!(e, Error::Interrupted) => {
            log::debug!("stopped: {e}");
            Err(Error::Interrupted)
        }
        outcome => outcome,
    }
}

/// Rolls a load back as skipped: its content was loaded as load `id`.
fn skipped(tx: Transaction<'_>, report: &mut FileReport, id: i64) -> Result<Attempt> {
    drop(tx);
    report.status = Status::Skipped;
    report.load_id = Some(id);
    log::info!("{}: already loaded as load {id}; skipped", report.path);
    Ok(Attempt::Done)
}

/// What the lock of a content found.
enum Content {
    /// Held, and no load of the content succeeded (or one is loading it again on purpose).
    Free,
    /// A load of the content succeeded: this one.
    Loaded(i64),
    /// Another load holds the lock (only when not waiting for it).
    Busy,
}

/// Takes the lock of this content in this table (a second load of the same content waits for
/// the first to end, or, unless `wait`, finds it [`Content::Busy`]) and looks for a succeeded
/// load of it (none counts with `--force` or `--replace`).
fn content_lock(
    tx: &mut Transaction<'_>,
    opts: &LoadOptions,
    ledger: &Ledger,
    report: &FileReport,
    wait: bool,
) -> Result<Content> {
    let table = report.table.clone().unwrap_or_default();
    if !xact_lock(tx, &format!("{table}\n{}", report.sha256), wait)? {
        return Ok(Content::Busy);
    }
    if opts.force || opts.replace {
        return Ok(Content::Free);
    }
    Ok(match ledger.succeeded(tx, &report.sha256, &table)? {
        Some(id) => Content::Loaded(id),
        None => Content::Free,
    })
}
