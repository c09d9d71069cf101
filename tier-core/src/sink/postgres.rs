//! Loading files into PostgreSQL: one transaction per file, binary COPY into a staging table,
//! then rejects, duplicates and rows settled in SQL, with the ledger row committed alongside.

use std::collections::{BTreeMap, HashSet};

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use postgres::{Client, Transaction};

use super::arrow::copy_fields;
use super::copy::{self, CopyEncoder, HEADER, TRAILER};
use super::dedup::{FirstSeen, Seen};
use super::lake::read::is_parquet;
use super::ledger::Ledger;
use crate::db::ddl::{self, qualified, quote_ident};
use crate::error::{Error, Result};
use crate::pipeline::{open_input, Observer, Opened, Processed, ReadOptions, Source};
use crate::read::{self as reader, Progress};
use crate::report::{FileReport, Status};
use crate::schema::validate::{Reject, RejectReason};
use crate::schema::Dataset;

/// How to load.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// How to read the files.
    pub read: ReadOptions,
    /// PostgreSQL schema of the tables (default `public`).
    pub schema: String,
    /// Load even if the same content was loaded before.
    pub force: bool,
    /// Empty the target table (in the same transaction) before loading.
    pub replace: bool,
    /// Above this share of rejected records, roll back and report `failed`.
    pub max_reject_ratio: Option<f64>,
    /// A lake's Iceberg SQL catalog: a PostgreSQL URL (or libpq settings) whose database keeps
    /// the catalog and, in its `tier_loads`, the lake's ledger (`None`: the lake's own files).
    pub catalog_url: Option<String>,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            read: ReadOptions::default(),
            schema: "public".into(),
            force: false,
            replace: false,
            max_reject_ratio: None,
            catalog_url: None,
        }
    }
}

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
        ddl::check_schema_name(&opts.schema)?;
        if let Some(r) = opts.max_reject_ratio {
            if !(0.0..=1.0).contains(&r) {
                return Err(Error::Usage(format!(
                    "the reject ratio limit must be between 0 and 1, not {r}"
                )));
            }
        }
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
        match self.load_one(path, observer) {
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

    fn load_one(&mut self, path: &Path, observer: &dyn Observer) -> Result<FileReport> {
        let started = Instant::now();
        let started_at = std::time::SystemTime::now();
        let stdin = path.as_os_str() == "-";
        // The content's SHA-256 is taken while reading, in the same pass. Only a file that looks
        // like one loaded before (same name and size) is hashed first, so that a re-run is
        // skipped without reading it twice.
        let pre = match stdin {
            true => None,
            false if is_parquet(path) => Some(reader::sha256_file(path)?),
            false => {
                let size = reader::input_size(path)?;
                let source = path.display().to_string();
                let again = !self.opts.force
                    && !self.opts.replace
                    && self.ledger.looks_loaded(&mut self.client, &source, size)?;
                again.then(|| reader::sha256_file(path)).transpose()?
            }
        };
        let Opened {
            source,
            dataset,
            progress,
            sha256: sha_handle,
        } = open_input(path, &self.opts.read, pre.is_none())?;
        self.ensure_tables(&dataset)?;
        let table = qualified(&self.opts.schema, &dataset.table);
        let table_name = format!("{}.{}", self.opts.schema, dataset.table);
        let mut report = FileReport {
            sha256: pre.as_ref().map(|p| p.0.clone()).unwrap_or_default(),
            bytes: pre.as_ref().map_or(0, |p| p.1),
            ..FileReport::new(path, &dataset.name, Some(table_name), Status::Succeeded)
        };
        observer.started(path, pre.as_ref().map(|p| p.1), progress.clone());
        let read = ReadOptions {
            dataset: Some(dataset.clone()),
            ..self.opts.read.clone()
        };
        let reopen = || -> Result<(Source, Option<reader::Sha256Handle>)> {
            let opened = open_input(path, &read, true)?;
            Ok((opened.source, opened.sha256))
        };
        let gated = !source.is_rejects();
        let outcome = self.load_in_transaction(
            (source, gated),
            &dataset,
            &table,
            &mut report,
            &progress,
            sha_handle,
            observer,
            (!stdin).then_some(&reopen as &Reopen<'_>),
        );
        observer.finished(path);
        report.seconds = started.elapsed().as_secs_f64();
        match outcome {
            Ok(()) => {
                if gated {
                    report.warn_if_mostly_rejected();
                }
                if report.status == Status::Failed {
                    self.record_failure(&mut report, "quality gate: too many rejects", started_at);
                }
                Ok(report)
            }
            Err(e) => {
                report.status = Status::Failed;
                report.error = Some(e.to_string());
                if report.sha256.is_empty() && !stdin {
                    // Stopped before the reading was done: the ledger still names the content.
                    if let Ok((sha, bytes)) = reader::sha256_file(path) {
                        (report.sha256, report.bytes) = (sha, bytes);
                    }
                }
                self.record_failure(&mut report, &e.to_string(), started_at);
                Err(Error::Failed {
                    report: Box::new(report),
                    source: Box::new(e),
                })
            }
        }
    }

    /// Writes the `failed` ledger row of a load that was rolled back, on a fresh connection
    /// when the loader's was lost.
    fn record_failure(
        &mut self,
        report: &mut FileReport,
        error: &str,
        started_at: std::time::SystemTime,
    ) {
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

    /// One load in one transaction, in four phases: [`plan`] (skip, evolve, register, choose
    /// the path), [`stage`] (read, validate and COPY), [`apply`] (settle the rows into the
    /// table), then the ledger's record and the commit.
    #[allow(clippy::too_many_arguments)]
    fn load_in_transaction(
        &mut self,
        (source, gated): (Source, bool),
        dataset: &Dataset,
        table: &str,
        report: &mut FileReport,
        progress: &Progress,
        sha_handle: Option<reader::Sha256Handle>,
        observer: &dyn Observer,
        reopen: Option<&Reopen<'_>>,
    ) -> Result<()> {
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
                return Ok(());
            };
            let mut staged = stage(
                &mut tx, source, dataset, table, &plan, &opts, report, observer,
            )?;
            if let Some(h) = &sha_handle {
                report.sha256 = h.hex();
                report.bytes = progress.bytes();
            }
            if let (true, Some(reopen)) = (staged.refused, reopen) {
                // Rows of the file are in the table: loaded before under another name (then the
                // content's lock skips it now, without a second reading), or overlapping rows.
                if sha_handle.is_some() {
                    if let Some(id) = content_lock(&mut tx, &opts, &ledger, report)? {
                        return skipped(tx, report, id);
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
            if sha_handle.is_some() {
                // Hashed while reading: the content's lock and the skip come now. (Taken after the
                // insert, so that no load holds it while waiting for a table taken alone.)
                if let Some(id) = content_lock(&mut tx, &opts, &ledger, report)? {
                    // Loaded already (by a load that ran at the same time, or with another name).
                    return skipped(tx, report, id);
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

            if gated && report.gate(opts.max_reject_ratio) {
                drop(tx);
                return Ok(());
            }
            // The last moment Ctrl-C rolls the load back.
            observer.stopped()?;
            report.status = Status::Succeeded;
            ledger.finish(&mut tx, report, plan.load_id)?;
            tx.commit()?;
            Ok(())
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
    let done = std::sync::atomic::AtomicBool::new(false);
    let outcome = std::thread::scope(|s| {
        s.spawn(|| {
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                if observer.stopped().is_err() {
                    if let Err(e) = token.cancel_query(postgres::NoTls) {
                        log::debug!("could not cancel the statement: {e}");
                    }
                    return;
                }
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
        });
        let outcome = work();
        done.store(true, std::sync::atomic::Ordering::Relaxed);
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
fn skipped(tx: Transaction<'_>, report: &mut FileReport, id: i64) -> Result<()> {
    drop(tx);
    report.status = Status::Skipped;
    report.load_id = Some(id);
    log::info!("{}: already loaded as load {id}; skipped", report.path);
    Ok(())
}

/// Takes the lock of this content in this table (a second load of the same content waits for
/// the first to end) and returns the succeeded load of it, if any (none with `--force` or
/// `--replace`).
fn content_lock(
    tx: &mut Transaction<'_>,
    opts: &LoadOptions,
    ledger: &Ledger,
    report: &FileReport,
) -> Result<Option<i64>> {
    let table = report.table.clone().unwrap_or_default();
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
        &[&format!("{table}\n{}", report.sha256)],
    )?;
    if opts.force || opts.replace {
        return Ok(None);
    }
    ledger.succeeded(tx, &report.sha256, &table)
}

/// How a load's rows reach its table. The plan chooses bulk or direct from the table's state;
/// a direct copy that meets rows already in the table falls back to the staging table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    /// Into an empty table held alone: rows copied straight in, the unique index dropped before
    /// and built after.
    Bulk,
    /// Into a table with rows: rows copied straight in, the unique index checking each; this
    /// holds while no row is in the table already (new data, the usual case).
    Direct,
    /// Rows copied into a temporary staging table, then inserted where their unique key is new
    /// (standard input, and a direct copy that met a row of the table: the input is read again).
    Staged,
}

/// What the plan phase decided.
struct Plan {
    route: Route,
    load_id: i64,
    /// Whether the bulk route's rows go in frozen (`COPY … FREEZE`): only into a plain table
    /// of PostgreSQL's own (not a partitioned, foreign or Citus-distributed one).
    freeze: bool,
}

/// What the stage phase copied.
struct Staged {
    /// The route the rows took.
    route: Route,
    /// Counts of the pipeline's batches.
    totals: Processed,
    /// Rows copied (after the within-file filter of a keyed dataset).
    rows: u64,
    /// Conflicting duplicates within the file (keyed datasets), already in the reject spool.
    conflicts: u64,
    /// A direct copy refused by the unique index (or a deadlock): the copy was rolled back.
    refused: bool,
}

/// Plan: skip content already loaded (the content's lock makes a second load of the same
/// content wait for the first), evolve the table, register the load, empty the table for
/// `--replace`, and choose the route (direct only for an input that can be read again).
/// `None` when the file is skipped.
fn plan(
    tx: &mut Transaction<'_>,
    opts: &LoadOptions,
    ledger: &Ledger,
    dataset: &Dataset,
    table: &str,
    report: &mut FileReport,
    rereadable: bool,
) -> Result<Option<Plan>> {
    let short_table = report.table.clone().unwrap_or_default();
    if !report.sha256.is_empty() {
        if let Some(id) = content_lock(tx, opts, ledger, report)? {
            report.status = Status::Skipped;
            report.load_id = Some(id);
            log::info!("{}: already loaded as load {id}; skipped", report.path);
            return Ok(None);
        }
    }
    // The table alone (an advisory lock on it) only where a load needs it: to change the
    // table, to empty it, and for the bulk route. Other loads into the same table read,
    // validate, copy and settle at the same time; the unique index keeps each row once.
    let table_lock = |tx: &mut Transaction<'_>, wait: bool| -> Result<bool> {
        let f = if wait {
            "pg_advisory_xact_lock"
        } else {
            "pg_try_advisory_xact_lock"
        };
        let row = tx.query_one(
            &format!("SELECT {f}(hashtextextended($1, 0))::text"),
            &[&short_table],
        )?;
        Ok(row.get::<_, String>(0) != "false")
    };
    let missing = check_columns(
        tx,
        &opts.schema,
        &dataset.table,
        &ddl::target_columns(dataset),
        true,
    )?;
    let mut table_held = false;
    if !missing.is_empty() || opts.replace {
        table_held = table_lock(tx, true)?;
    }
    // Additive evolution: nullable columns the definition gained and the table lacks.
    for (name, ty) in missing {
        tx.batch_execute(&format!(
            "ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {} {ty}",
            quote_ident(&name)
        ))?;
        log::info!("{}: added column {name} {ty} to {short_table}", report.path);
        report.added_columns.push(name);
    }
    let load_id = ledger.start(
        tx,
        &dataset.name,
        &short_table,
        &report.path,
        &report.sha256,
    )?;
    report.load_id = Some(load_id);
    if opts.replace {
        // The replaced loads' rejects go with their rows: every record stays counted once.
        let rejects = qualified(&opts.schema, &ddl::rejects_table(dataset));
        tx.batch_execute(&format!("TRUNCATE {table}, {rejects}"))?;
        // Their rows are gone: those files must not be skipped as loaded any more.
        ledger.superseded(tx, &short_table, load_id)?;
    }
    if !table_held && looks_empty(tx, &opts.schema, &dataset.table)? {
        table_held = table_lock(tx, false)?;
    }
    // Only the holder of the table's lock reads the table here, and it takes the table
    // alone only if it can at once: with loads writing into the table, dropping the index
    // would wait for them, so the load takes the merge route instead. Rows committed between
    // the two looks are seen by the second.
    let exists = format!("SELECT EXISTS (SELECT 1 FROM {table})");
    let mut freeze = false;
    let mut route = if rereadable {
        Route::Direct
    } else {
        Route::Staged
    };
    // Only the table's owner may drop its index: another role (a loader granted INSERT) takes
    // the direct route into an empty table too.
    if table_held {
        let row = tx.query_one(OWNED_AND_PLAIN, &[&table])?;
        let (owner, plain): (bool, bool) = (row.get(0), row.get(1));
        if owner && !tx.query_one(&exists, &[])?.get::<_, bool>(0) {
            // In a savepoint: where the table cannot be taken this way — a load writing into
            // it (the lock wait times out), a foreign key that needs its unique index, a table
            // that gained a row meanwhile — the savepoint is rolled back and the load goes
            // direct.
            let mut sp = tx.transaction()?;
            let index = qualified(&opts.schema, &ddl::key_index(dataset));
            let emptied = (|| {
                sp.batch_execute(&format!(
                    "SET LOCAL lock_timeout = '200ms'; DROP INDEX IF EXISTS {index}; \
                     SET LOCAL lock_timeout TO DEFAULT"
                ))?;
                if sp.query_one(&exists, &[])?.get::<_, bool>(0) {
                    return Ok(false);
                }
                // Emptied in this transaction, the table takes the rows frozen (and, on a
                // server with `wal_level = minimal`, without writing them to WAL).
                sp.batch_execute(&format!("TRUNCATE {table}"))?;
                Ok::<_, postgres::Error>(true)
            })();
            match emptied {
                Ok(true) => {
                    sp.commit()?;
                    route = Route::Bulk;
                    freeze = plain;
                }
                Ok(false) => {}
                Err(e) => log::debug!("{}: not the bulk route: {}", report.path, Error::from(e)),
            }
        }
    }
    log::debug!("{}: {route:?} route (frozen: {freeze})", report.path);
    Ok(Some(Plan {
        route,
        load_id,
        freeze,
    }))
}

/// Of a table (`$1`): whether this role owns it (directly or by membership), and whether
/// `COPY … FREEZE` may be asked of it — PostgreSQL refuses it for a partitioned (or foreign)
/// table, and a Citus-distributed table's rows live in its shards.
const OWNED_AND_PLAIN: &str = "SELECT pg_has_role(c.relowner, 'USAGE'), \
     c.relkind = 'r' AND to_regclass('pg_catalog.pg_dist_partition') IS NULL \
     FROM pg_class c WHERE c.oid = $1::text::regclass";

/// Stage: reads, validates and copies the rows (into the table on the bulk and direct routes,
/// into the staging table otherwise) and spools the rejects into the rejects table. A direct
/// copy runs in a savepoint: when the unique index refuses a row, it is rolled back and the
/// result says so (the counts, rejects and spool are complete all the same).
#[allow(clippy::too_many_arguments)]
fn stage(
    tx: &mut Transaction<'_>,
    source: Source,
    dataset: &Dataset,
    table: &str,
    plan: &Plan,
    opts: &LoadOptions,
    report: &FileReport,
    observer: &dyn Observer,
) -> Result<Staged> {
    let t0 = Instant::now();
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
            path: Path::new(&report.path),
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
                log::debug!("{}: rows of the file are in the table already", report.path);
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
    log::debug!("{}: rows copied after {:?}", report.path, t0.elapsed());
    spool.copy_into(tx, &qualified(&opts.schema, &ddl::rejects_table(dataset)))?;
    Ok(staged)
}

/// Stage again, after a refused direct copy: the input read a second time (it must be the same
/// bytes) into the staging table; its counts and rejects are those of the first reading.
fn restage(
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
struct Copy<'a> {
    dataset: &'a Dataset,
    load_id: i64,
    /// `table (columns)` or the staging table.
    into: &'a str,
    /// Whether to leave out a keyed row's `_raw` (only the staging table has it).
    strip_raw: bool,
    /// The bulk route's copy, into a table emptied in this transaction: a keyed dataset's
    /// duplicates within the file are dropped and its conflicting ones rejected (the file's
    /// first occurrence of a key is the first of all).
    bulk: bool,
    /// Rows go in frozen (`COPY … FREEZE`; the plan says where the table takes them).
    freeze: bool,
    workers: usize,
    path: &'a Path,
}

impl Copy<'_> {
    /// Reads, validates and copies. A keyed dataset's rows pass the within-file filter on the
    /// way: equal duplicates are dropped and conflicting ones rejected with their raw text, so
    /// the rows copied have unique keys. With `refusable`, a COPY that the unique index (or a
    /// deadlock) stops is not an error: the rest of the input is still read and counted, and
    /// the result is `refused`.
    fn run(
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
        let mut filter = (keyed && self.bulk).then(|| FirstSeen::new(dataset));
        let strip = (keyed && self.strip_raw).then_some(dataset.columns.len());
        let (mut rows, mut conflicts) = (0u64, 0u64);
        let ncols = dataset.columns.len();
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
                let Some(ncols) = strip else {
                    return write(&batch.payload);
                };
                kept.clear();
                let mut fields = Vec::with_capacity(ncols + 5);
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
            let mut fields = Vec::with_capacity(ncols + 5);
            let mut b = &batch.payload[..];
            while !b.is_empty() {
                let row = b;
                b = copy_fields(b, &mut fields);
                let row = &row[..row.len() - b.len()];
                match filter.see(&fields) {
                    Seen::First if self.strip_raw => {
                        strip_raw(&mut kept, row, &fields);
                        rows += 1;
                    }
                    Seen::First => {
                        kept.extend_from_slice(row);
                        rows += 1;
                    }
                    Seen::Duplicate => {}
                    Seen::Conflict => {
                        conflicts += 1;
                        let raw = fields[ncols + 4];
                        copy::tuple(
                            &mut found,
                            &[
                                fields[ncols + 1],
                                fields[ncols + 2],
                                Some(conflict.as_bytes()),
                                raw,
                            ],
                        );
                        if observer.wants_rejects() {
                            let index = fields[ncols + 2]
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
            }
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
fn strip_raw(out: &mut Vec<u8>, row: &[u8], fields: &[Option<&[u8]>]) {
    let raw_len = fields.last().copied().flatten().map_or(0, <[u8]>::len);
    out.extend_from_slice(&((fields.len() - 1) as i16).to_be_bytes());
    out.extend_from_slice(&row[2..row.len() - 4 - raw_len]);
}

/// Whether a COPY was stopped by the unique index (or a deadlock with another load's rows).
fn refused_by_index(e: &Error) -> bool {
    use postgres::error::SqlState;
    match e {
        Error::Database {
            sqlstate: Some(code),
            ..
        } => [
            SqlState::UNIQUE_VIOLATION.code(),
            SqlState::T_R_DEADLOCK_DETECTED.code(),
        ]
        .contains(&code.as_str()),
        _ => false,
    }
}

/// Apply: settles the copied rows. Bulk route: builds the unique index (removing the file's
/// equal duplicates first if it finds any). Direct route: nothing left to do. Staged route:
/// inserts the staged rows whose key is new, then (only when some were not inserted) rejects
/// the staged rows whose key the table holds with other values. Returns (rows loaded,
/// conflicting duplicates found in the table).
fn apply(
    tx: &mut Transaction<'_>,
    dataset: &Dataset,
    opts: &LoadOptions,
    (table, rejects): (&str, &str),
    staged: &Staged,
    on_conflict: &mut dyn FnMut(u64, &str) -> Result<()>,
) -> Result<(u64, u64)> {
    match staged.route {
        Route::Bulk => {
            return Ok((
                staged.rows - settle_bulk(tx, dataset, &opts.schema, table)?,
                0,
            ))
        }
        Route::Direct => return Ok((staged.rows, 0)),
        Route::Staged => {}
    }
    let cols: Vec<&str> = ddl::target_columns(dataset).iter().map(|c| c.0).collect();
    let cols = ddl::column_list(&cols);
    let unique = ddl::column_list(&ddl::unique_key(dataset));
    let short_table = format!("{}.{}", opts.schema, dataset.table);
    let Some(key) = &dataset.key else {
        return Ok((insert_new(tx, table, &short_table, &cols, &unique)?, 0));
    };
    let key: Vec<&str> = key.iter().map(String::as_str).collect();
    let keys = ddl::column_list(&key);
    let eq = |a: &str, b: &str| {
        key.iter()
            .map(|k| format!("{a}.{0} = {b}.{0}", quote_ident(k)))
            .collect::<Vec<_>>()
            .join(" AND ")
    };
    let first_keys: Vec<String> = key
        .iter()
        .map(|k| format!("f.{}", quote_ident(k)))
        .collect();
    // The conflicting rows go to the rejects table, and come back to be handed to the
    // observer (`--rejects-out` shows them, also of a load the gate rolls back).
    let to_rejects = |conflicts: &str| {
        format!(
            "INSERT INTO {rejects} (_load_id, _record_index, reason, raw) \
             SELECT _load_id, _record_index, '{}', _raw FROM {conflicts} \
             RETURNING _record_index, raw",
            RejectReason::ConflictingDuplicate
        )
    };
    let mut reject = |tx: &mut Transaction<'_>, sql: String| -> Result<u64> {
        let rows = tx.query(&sql, &[])?;
        for r in &rows {
            let index: i64 = r.get(0);
            let raw: String = r.get(1);
            on_conflict(index as u64, &raw)?;
        }
        Ok(rows.len() as u64)
    };
    // The first row of each key wins: the table's, else the file's first. Staged rows of that
    // key with other values are conflicting duplicates; the rest are inserted or duplicates.
    let mut conflicting = reject(
        tx,
        format!(
            "WITH first AS (\
               SELECT DISTINCT ON ({keys}) {keys}, _row_hash FROM tier_stage \
               ORDER BY {keys}, _record_index), \
             winner AS (\
               SELECT {fk}, COALESCE(t._row_hash, f._row_hash) AS _row_hash \
               FROM first f LEFT JOIN {table} t ON {ft}), \
             conflicts AS (\
               DELETE FROM tier_stage s USING winner w \
               WHERE {sw} AND s._row_hash <> w._row_hash \
               RETURNING s._load_id, s._record_index, s._raw) {}",
            to_rejects("conflicts"),
            fk = first_keys.join(", "),
            ft = eq("f", "t"),
            sw = eq("s", "w"),
        ),
    )?;
    let left = staged.rows - conflicting;
    let loaded = insert_new(tx, table, &short_table, &cols, &unique)?;
    if loaded < left {
        // Rows not inserted met a row of their key in the table: equal, or (a load that
        // committed it since the look above) with other values.
        conflicting += reject(
            tx,
            to_rejects(&format!(
                "(SELECT s.* FROM tier_stage s JOIN {table} t ON {} \
                 WHERE t._row_hash <> s._row_hash) c",
                eq("t", "s")
            )),
        )?;
    }
    Ok((loaded, conflicting))
}

/// `INSERT … ON CONFLICT DO NOTHING` of the staged rows, in the order they were copied (a
/// temporary table is read from its first block on; no sort). Loads inserting overlapping
/// keys in other orders can deadlock: the load PostgreSQL picks is rolled back to before its
/// insert and tries again holding the table's lock (one such load at a time) in key order.
fn insert_new(
    tx: &mut Transaction<'_>,
    table: &str,
    short_table: &str,
    cols: &str,
    unique: &str,
) -> Result<u64> {
    let mut order = String::new();
    let mut attempt = 0;
    loop {
        let sql = format!(
            "INSERT INTO {table} ({cols}) SELECT {cols} FROM tier_stage {order} \
             ON CONFLICT ({unique}) DO NOTHING"
        );
        let mut sp = tx.transaction()?;
        match sp.execute(&sql, &[]) {
            Ok(n) => {
                sp.commit()?;
                return Ok(n);
            }
            Err(e) if attempt < 8 && is_lock_wait(&e) => {
                drop(sp);
                log::debug!("{short_table}: the insert deadlocked with another load; again");
                attempt += 1;
                if order.is_empty() {
                    tx.execute(
                        "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
                        &[&short_table],
                    )?;
                    order = format!("ORDER BY {unique}");
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// A deadlock, or a lock not had within `lock_timeout`.
fn is_lock_wait(e: &postgres::Error) -> bool {
    use postgres::error::SqlState;
    matches!(
        e.code(),
        Some(c) if *c == SqlState::T_R_DEADLOCK_DETECTED || *c == SqlState::LOCK_NOT_AVAILABLE
    )
}

/// Whether the statistics say the table has no rows (a hint that takes no lock on the table).
fn looks_empty(tx: &mut Transaction<'_>, schema: &str, table: &str) -> Result<bool> {
    let row = tx.query_opt(
        "SELECT n_live_tup FROM pg_stat_user_tables WHERE schemaname = $1 AND relname = $2",
        &[&schema, &table],
    )?;
    Ok(row.is_none_or(|r| r.get::<_, i64>(0) == 0))
}

/// A write to COPY that failed: the driver's error inside it when there is one.
fn copy_error(e: std::io::Error) -> Error {
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

/// Builds the unique index after a bulk copy; if the file held duplicates, keeps the first
/// occurrence of each and builds it again. Returns how many duplicates were removed.
fn settle_bulk(
    tx: &mut Transaction<'_>,
    dataset: &Dataset,
    schema: &str,
    table: &str,
) -> Result<u64> {
    let create = ddl::key_index_ddl(dataset, schema);
    let mut sp = tx.transaction()?;
    match sp.batch_execute(&create) {
        Ok(()) => {
            sp.commit()?;
            return Ok(0);
        }
        Err(e) if e.code() == Some(&postgres::error::SqlState::UNIQUE_VIOLATION) => drop(sp),
        Err(e) => return Err(e.into()),
    }
    let key = ddl::column_list(&ddl::unique_key(dataset));
    let on: Vec<String> = ddl::unique_key(dataset)
        .iter()
        .map(|c| format!("t.{0} = d.{0}", quote_ident(c)))
        .collect();
    let removed = tx.execute(
        &format!(
            "DELETE FROM {table} t USING (\
               SELECT {key}, min(_record_index) AS keep FROM {table} \
               GROUP BY {key} HAVING count(*) > 1) d \
             WHERE {} AND t._record_index <> d.keep",
            on.join(" AND ")
        ),
        &[],
    )?;
    tx.batch_execute(&create)?;
    Ok(removed)
}

/// Rejects of a load, kept in a temporary file (so a file of bad records never fills memory)
/// until the rows' COPY is done, then copied into the rejects table.
struct Spool {
    file: Option<std::fs::File>,
}

impl Spool {
    fn new() -> Spool {
        Spool { file: None }
    }

    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        if self.file.is_none() {
            let f = tempfile::tempfile().map_err(|e| Error::io(std::env::temp_dir(), e))?;
            self.file = Some(f);
        }
        let f = self.file.as_mut().expect("created above");
        f.write_all(bytes)
            .map_err(|e| Error::io(std::env::temp_dir(), e))
    }

    fn copy_into(self, tx: &mut Transaction<'_>, rejects: &str) -> Result<()> {
        use std::io::{Seek, SeekFrom};
        let Some(mut f) = self.file else {
            return Ok(());
        };
        let tmp = |e| Error::io(std::env::temp_dir(), e);
        f.seek(SeekFrom::Start(0)).map_err(tmp)?;
        let mut writer = tx.copy_in(&format!(
            "COPY {rejects} (_load_id, _record_index, reason, raw) FROM STDIN (FORMAT binary)"
        ))?;
        writer.write_all(HEADER).map_err(copy_error)?;
        std::io::copy(&mut f, &mut writer).map_err(copy_error)?;
        writer.write_all(TRAILER).map_err(copy_error)?;
        writer.finish()?;
        Ok(())
    }
}

/// Compares an existing table with the columns expected of it. Returns the expected nullable
/// columns it lacks (with their SQL types) when `evolve`, and errors on any other difference:
/// a missing required column, another type or nullability, and (when `evolve`) a column the
/// definition does not have. A table that does not exist has no differences.
fn check_columns(
    tx: &mut Transaction<'_>,
    schema: &str,
    table: &str,
    expected: &[(&str, &str, bool)],
    evolve: bool,
) -> Result<Vec<(String, String)>> {
    let rows = tx.query(
        "SELECT column_name::text, data_type::text, is_nullable::text = 'YES' \
         FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2",
        &[&schema, &table],
    )?;
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let found: BTreeMap<String, (String, bool)> = rows
        .iter()
        .map(|r| (r.get(0), (r.get(1), r.get(2))))
        .collect();
    let mut problems = Vec::new();
    let mut missing = Vec::new();
    for (name, ty, required) in expected {
        match found.get(*name) {
            None if evolve && !required => {
                missing.push((name.to_string(), ddl::sql_type(ty).to_string()))
            }
            None => problems.push(format!("column {name} is missing")),
            Some((t, _)) if t != ty => problems.push(format!("column {name} is {t}, not {ty}")),
            Some((_, nullable)) if evolve && nullable == required => problems.push(format!(
                "column {name} is {}, the definition says {}",
                if *nullable { "nullable" } else { "not null" },
                if *required {
                    "required"
                } else {
                    "not required"
                },
            )),
            Some(_) => {}
        }
    }
    if evolve {
        for name in found.keys() {
            if !expected.iter().any(|(n, _, _)| n == name) {
                problems.push(format!("column {name} is not in the definition"));
            }
        }
    }
    if problems.is_empty() {
        Ok(missing)
    } else {
        Err(Error::IncompatibleTable {
            table: format!("{schema}.{table}"),
            detail: problems.join(", "),
        })
    }
}
