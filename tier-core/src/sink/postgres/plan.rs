//! The plan phase: whether the file was loaded before, the table evolved, the load registered,
//! and the route its rows take — a pure choice from the table's state.

use super::*;

/// How a load's rows reach its table. The plan chooses bulk or direct from the table's state;
/// a direct copy that meets rows already in the table falls back to the staging table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Route {
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
pub(super) struct Plan {
    pub(super) route: Route,
    pub(super) load_id: i64,
    /// Whether the bulk route's rows go in frozen (`COPY … FREEZE`): only into a plain table
    /// of PostgreSQL's own (not a partitioned, foreign or Citus-distributed one).
    pub(super) freeze: bool,
}

/// What the stage phase copied.
pub(super) struct Staged {
    /// The route the rows took.
    pub(super) route: Route,
    /// Counts of the pipeline's batches.
    pub(super) totals: Processed,
    /// Rows copied (after the within-file filter of a keyed dataset).
    pub(super) rows: u64,
    /// Conflicting duplicates within the file (keyed datasets), already in the reject spool.
    pub(super) conflicts: u64,
    /// A direct copy refused by the unique index (or a deadlock): the copy was rolled back.
    pub(super) refused: bool,
}

/// Plan: skip content already loaded (the content's lock makes a second load of the same
/// content wait for the first), evolve the table, register the load, empty the table for
/// `--replace`, and choose the route (direct only for an input that can be read again).
/// `None` when the file is skipped.
pub(super) fn plan(
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
        if let Content::Loaded(id) = content_lock(tx, opts, ledger, report, true)? {
            report.status = Status::Skipped;
            report.load_id = Some(id);
            log::info!("{}: already loaded as load {id}; skipped", report.path);
            return Ok(None);
        }
    }
    // The table alone (an advisory lock on it) only where a load needs it: to change the
    // table, to empty it, and for the bulk route. Other loads into the same table read,
    // validate, copy and settle at the same time; the unique index keeps each row once.
    let table_lock = |tx: &mut Transaction<'_>, wait: bool| xact_lock(tx, &short_table, wait);
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
    let (mut emptied_alone, mut plain_table) = (false, false);
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
                    emptied_alone = true;
                    plain_table = plain;
                }
                Ok(false) => {}
                Err(e) => log::debug!("{}: not the bulk route: {}", report.path, Error::from(e)),
            }
        }
    }
    let (route, freeze) = route(rereadable, emptied_alone, plain_table);
    log::debug!("{}: {route:?} route (frozen: {freeze})", report.path);
    Ok(Some(Plan {
        route,
        load_id,
        freeze,
    }))
}

/// Takes the transaction's advisory lock named `key` (a table, or a content in its table),
/// waiting for it, or, unless `wait`, only if it is free at once: whether it is held.
pub(super) fn xact_lock(tx: &mut Transaction<'_>, key: &str, wait: bool) -> Result<bool> {
    let f = match wait {
        true => "pg_advisory_xact_lock",
        false => "pg_try_advisory_xact_lock",
    };
    let row = tx.query_one(
        &format!("SELECT {f}(hashtextextended($1, 0))::text"),
        &[&key],
    )?;
    Ok(row.get::<_, String>(0) != "false")
}

/// Of a table (`$1`): whether this role owns it (directly or by membership), and whether
/// `COPY … FREEZE` may be asked of it — PostgreSQL refuses it for a partitioned (or foreign)
/// table, and a Citus-distributed table's rows live in its shards.
pub(super) const OWNED_AND_PLAIN: &str = "SELECT pg_has_role(c.relowner, 'USAGE'), \
     c.relkind = 'r' AND to_regclass('pg_catalog.pg_dist_partition') IS NULL \
     FROM pg_class c WHERE c.oid = $1::text::regclass";

/// The route of a load's rows, and whether they go in frozen, from what the plan found: the
/// bulk route when the table was taken alone, owned by this role and emptied in this
/// transaction (frozen only into a plain table); else direct for an input that can be read
/// again (a direct copy refused by the unique index falls back to staging); else staged.
pub(super) fn route(rereadable: bool, emptied_alone: bool, plain: bool) -> (Route, bool) {
    match (emptied_alone, rereadable) {
        (true, _) => (Route::Bulk, plain),
        (false, true) => (Route::Direct, false),
        (false, false) => (Route::Staged, false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_route_follows_the_table_and_the_input() {
        // An empty table taken alone: bulk, frozen only where PostgreSQL allows it.
        assert_eq!(route(true, true, true), (Route::Bulk, true));
        assert_eq!(route(false, true, false), (Route::Bulk, false));
        // A table with rows (or not ours to take): direct when the input can be read again
        // (a file, an object, a lake part), staged for standard input.
        assert_eq!(route(true, false, true), (Route::Direct, false));
        assert_eq!(route(false, false, true), (Route::Staged, false));
    }
}
