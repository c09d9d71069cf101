//! Loading files into PostgreSQL: one transaction per file, binary COPY into a staging table,
//! then rejects, duplicates and rows settled in SQL, with the ledger row committed alongside.

use std::collections::{BTreeMap, HashSet};

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use postgres::{Client, Transaction};

use super::copy::{CopyEncoder, HEADER, TRAILER};
use super::lake::{self, read::is_parquet};
use super::ledger::Ledger;
use crate::db::ddl::{self, qualified, quote_ident};
use crate::error::{Error, Result};
use crate::pipeline::{self, open_input, Observer, Opened, Processed, ReadOptions};
use crate::read::{self as reader, Progress};
use crate::report::{FileReport, Status};
use crate::schema::validate::RejectReason;
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
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            read: ReadOptions::default(),
            schema: "public".into(),
            force: false,
            replace: false,
            max_reject_ratio: None,
        }
    }
}

/// Where a load's rows come from.
enum Source {
    /// A JSON export, through the pipeline.
    Records(reader::Records),
    /// A lake part, rows already validated.
    Lake(lake::read::Part),
}

/// Loads files into one database.
pub struct Loader {
    client: Client,
    opts: LoadOptions,
    ledger: Ledger,
    ready: HashSet<String>,
    /// How to connect again (`Some` when the loader made its own connection).
    reconnect: Option<Option<String>>,
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
                 AND to_regclass($3) IS NOT NULL",
                &[
                    &qualified(&schema, ddl::LEDGER),
                    &qualified(&schema, &dataset.table),
                    &qualified(&schema, &ddl::rejects_table(dataset)),
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
    /// any other failure is rolled back, recorded in the ledger and returned as an error.
    pub fn load_file(&mut self, path: &Path, observer: &dyn Observer) -> Result<FileReport> {
        let started = Instant::now();
        let stdin = path.as_os_str() == "-";
        let pre = if stdin {
            None
        } else {
            Some(reader::sha256_file(path)?)
        };
        let (source, dataset, progress, sha_handle) = if is_parquet(path) {
            let part = lake::read::Part::open(path, &self.opts.read)?;
            let dataset = part.dataset().clone();
            (Source::Lake(part), dataset, Default::default(), None)
        } else {
            let Opened {
                records,
                dataset,
                progress,
                sha256,
            } = open_input(path, &self.opts.read, stdin)?;
            (Source::Records(records), dataset, progress, sha256)
        };
        self.ensure_tables(&dataset)?;
        let table = qualified(&self.opts.schema, &dataset.table);
        let table_name = format!("{}.{}", self.opts.schema, dataset.table);
        let mut report = FileReport {
            sha256: pre.as_ref().map(|p| p.0.clone()).unwrap_or_default(),
            bytes: pre.as_ref().map_or(0, |p| p.1),
            ..FileReport::new(path, &dataset.name, Some(table_name), Status::Succeeded)
        };
        observer.started(path, pre.as_ref().map(|p| p.1), progress.clone());
        let outcome = self.load_in_transaction(
            source,
            &dataset,
            &table,
            &mut report,
            &progress,
            sha_handle,
            observer,
        );
        observer.finished(path);
        report.seconds = started.elapsed().as_secs_f64();
        match outcome {
            Ok(()) => {
                report.warn_if_mostly_rejected();
                if report.status == Status::Failed {
                    self.record_failure(&mut report, "quality gate: too many rejects");
                }
                Ok(report)
            }
            Err(e) => {
                report.status = Status::Failed;
                report.error = Some(e.to_string());
                self.record_failure(&mut report, &e.to_string());
                Err(Error::Failed {
                    report: Box::new(report),
                    source: Box::new(e),
                })
            }
        }
    }

    /// Writes the `failed` ledger row of a load that was rolled back, on a fresh connection
    /// when the loader's was lost.
    fn record_failure(&mut self, report: &mut FileReport, error: &str) {
        let mut outcome = self.ledger.failed(&mut self.client, report, error);
        if outcome.is_err() {
            if let Some(url) = self.reconnect.clone() {
                // The connection was lost with the load: a new one records it, once the server
                // answers again (a restarting server takes a few seconds).
                for wait_ms in [0, 250, 500, 1000, 2000, 4000] {
                    std::thread::sleep(std::time::Duration::from_millis(wait_ms));
                    outcome = crate::db::open(url.as_deref()).and_then(|c| {
                        self.client = c;
                        self.ready.clear();
                        self.ledger.failed(&mut self.client, report, error)
                    });
                    if outcome.is_ok() {
                        break;
                    }
                }
            }
        }
        match outcome {
            Ok(id) => report.load_id = Some(id),
            Err(e) => log::warn!("could not record the failed load in the ledger: {e}"),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn load_in_transaction(
        &mut self,
        source: Source,
        dataset: &Dataset,
        table: &str,
        report: &mut FileReport,
        progress: &Progress,
        sha_handle: Option<reader::Sha256Handle>,
        observer: &dyn Observer,
    ) -> Result<()> {
        let opts = self.opts.clone();
        let ledger = self.ledger.clone();
        let short_table = report.table.clone().unwrap_or_default();
        let mut tx = self.client.transaction()?;
        tx.batch_execute("SET LOCAL work_mem = '256MB'; SET LOCAL client_min_messages = warning")?;
        // The same content into the same table: one load at a time, so the later one sees the
        // earlier's commit and is skipped.
        if !report.sha256.is_empty() {
            tx.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
                &[&format!("{short_table}\n{}", report.sha256)],
            )?;
        }
        if !report.sha256.is_empty() && !opts.force && !opts.replace {
            if let Some(id) = ledger.succeeded(&mut tx, &report.sha256, &short_table)? {
                report.status = Status::Skipped;
                report.load_id = Some(id);
                log::info!("{}: already loaded as load {id}; skipped", report.path);
                return Ok(());
            }
        }
        // The table alone (an advisory lock on it) only where a load needs it: to change the
        // table, to empty it, for the bulk path, and to settle its rows. Other loads into the
        // same table read, validate and copy into their staging tables at the same time.
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
            &mut tx,
            &opts.schema,
            &dataset.table,
            &ddl::target_columns(dataset),
            true,
        )?;
        let mut table_held = false;
        if !missing.is_empty() || opts.replace {
            table_held = table_lock(&mut tx, true)?;
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
            &mut tx,
            &dataset.name,
            &short_table,
            &report.path,
            &report.sha256,
        )?;
        report.load_id = Some(load_id);
        if opts.replace {
            tx.batch_execute(&format!("TRUNCATE {table}"))?;
            // Their rows are gone: those files must not be skipped as loaded any more.
            ledger.superseded(&mut tx, &short_table, load_id)?;
        }
        // Bulk path: into an empty table, rows are copied straight in and the unique index is
        // built afterwards. Merge path: rows go to a staging table and are settled in SQL.
        let keyed = dataset.key.is_some();
        if !keyed && !table_held && looks_empty(&mut tx, &opts.schema, &dataset.table)? {
            table_held = table_lock(&mut tx, false)?;
        }
        // Only the holder of the table's lock reads the table before it settles: a load that
        // read it could otherwise wait on the bulk path's DROP INDEX while holding it up.
        let bulk = !keyed
            && table_held
            && !tx
                .query_one(&format!("SELECT EXISTS (SELECT 1 FROM {table})"), &[])?
                .get::<_, bool>(0);
        let target_cols = ddl::column_list(
            &ddl::target_columns(dataset)
                .iter()
                .map(|c| c.0)
                .collect::<Vec<_>>(),
        );
        let copy_target = if bulk {
            tx.batch_execute(&format!(
                "DROP INDEX IF EXISTS {}",
                qualified(&opts.schema, &ddl::key_index(dataset))
            ))?;
            format!("{table} ({target_cols})")
        } else {
            tx.batch_execute(&ddl::stage_ddl(dataset, keyed))?;
            "tier_stage".to_string()
        };
        log::debug!(
            "{}: {} path",
            report.path,
            if bulk { "bulk" } else { "merge" }
        );

        let t0 = Instant::now();
        let mut totals = Processed::default();
        let mut spool = Spool::new();
        {
            let mut writer =
                tx.copy_in(&format!("COPY {copy_target} FROM STDIN (FORMAT binary)"))?;
            writer.write_all(HEADER).map_err(copy_error)?;
            let enc = CopyEncoder::new(dataset, load_id, keyed && !bulk)
                .keeping_rejects(observer.wants_rejects());
            let path = Path::new(&report.path);
            let mut sink = |batch: &Processed| {
                totals.absorb(batch);
                observer.records(path, batch.records)?;
                for r in &batch.rejects {
                    observer.reject(path, r)?;
                }
                spool.write(&batch.reject_payload)?;
                writer.write_all(&batch.payload).map_err(copy_error)
            };
            match source {
                Source::Records(records) => {
                    pipeline::run(records, dataset, opts.read.workers, &enc, &mut sink)?
                }
                Source::Lake(part) => part.run(&enc, &mut sink)?,
            }
            writer.write_all(TRAILER).map_err(copy_error)?;
            writer.finish()?;
        }
        log::debug!("{}: rows copied after {:?}", report.path, t0.elapsed());
        if let Some(h) = sha_handle {
            report.sha256 = h.hex();
            report.bytes = progress.bytes();
            if !opts.force && !opts.replace {
                if let Some(id) = ledger.succeeded(&mut tx, &report.sha256, &short_table)? {
                    // Standard input whose content turned out to be loaded already.
                    drop(tx);
                    report.status = Status::Skipped;
                    report.load_id = Some(id);
                    return Ok(());
                }
            }
        }
        report.records = totals.records;
        report.reject_reasons = totals.reasons.clone();
        report.unknown_fields = totals
            .unknown
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        let rejects = qualified(&opts.schema, &ddl::rejects_table(dataset));
        spool.copy_into(&mut tx, &rejects)?;

        let (loaded, conflicting) = if bulk {
            (
                totals.valid - settle_bulk(&mut tx, dataset, &opts.schema, table)?,
                0,
            )
        } else {
            if !table_held {
                table_lock(&mut tx, true)?;
            }
            settle_merge(&mut tx, dataset, table, &rejects, &target_cols)?
        };
        log::debug!("{}: rows settled after {:?}", report.path, t0.elapsed());
        if conflicting > 0 {
            report
                .reject_reasons
                .insert(RejectReason::ConflictingDuplicate.to_string(), conflicting);
        }
        report.loaded = loaded;
        report.rejected = totals.rejected() + conflicting;
        report.duplicates = totals.valid - conflicting - loaded;

        if let Some(max) = opts.max_reject_ratio {
            if report.records > 0 && report.rejected as f64 / report.records as f64 > max {
                drop(tx);
                report.status = Status::Failed;
                return Ok(());
            }
        }
        report.status = Status::Succeeded;
        ledger.finish(&mut tx, report, load_id)?;
        tx.commit()?;
        Ok(())
    }
}

/// Whether the statistics say the table has no rows (a hint that takes no lock on the table).
fn looks_empty(tx: &mut Transaction<'_>, schema: &str, table: &str) -> Result<bool> {
    let row = tx.query_opt(
        "SELECT n_live_tup + n_tup_ins FROM pg_stat_user_tables WHERE schemaname = $1 AND relname = $2",
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

/// Settles a staging table into the target: conflicting duplicates (a key already present with
/// other values) become rejects, equal duplicates are skipped, the rest is inserted in input
/// order. Returns (rows inserted, conflicting duplicates).
fn settle_merge(
    tx: &mut Transaction<'_>,
    dataset: &Dataset,
    table: &str,
    rejects: &str,
    cols: &str,
) -> Result<(u64, u64)> {
    let mut conflicting = 0;
    if let Some(key) = &dataset.key {
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
        conflicting = tx.execute(
            &format!(
                "WITH first AS (\
                   SELECT DISTINCT ON ({keys}) {keys}, _row_hash FROM tier_stage \
                   ORDER BY {keys}, _record_index), \
                 winner AS (\
                   SELECT {fk}, COALESCE(t._row_hash, f._row_hash) AS _row_hash \
                   FROM first f LEFT JOIN {table} t ON {ft}), \
                 conflicts AS (\
                   DELETE FROM tier_stage s USING winner w \
                   WHERE {sw} AND s._row_hash <> w._row_hash \
                   RETURNING s._load_id, s._record_index, s._raw) \
                 INSERT INTO {rejects} (_load_id, _record_index, reason, raw) \
                 SELECT _load_id, _record_index, '{reason}', _raw FROM conflicts",
                reason = RejectReason::ConflictingDuplicate,
                fk = first_keys.join(", "),
                ft = eq("f", "t"),
                sw = eq("s", "w"),
            ),
            &[],
        )?;
    }
    // No ORDER BY: a temporary table is read from its first block on (no synchronised scans
    // for local buffers), so rows come in the order they were copied, the input's; sorting a
    // million rows again cost a second. Conflicting values were settled above by record index;
    // what is left to skip are equal rows, so only which copy's lineage stays could differ.
    let loaded = tx.execute(
        &format!(
            "INSERT INTO {table} ({cols}) SELECT {cols} FROM tier_stage \
             ON CONFLICT ({}) DO NOTHING",
            ddl::column_list(&ddl::unique_key(dataset))
        ),
        &[],
    )?;
    Ok((loaded, conflicting))
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
