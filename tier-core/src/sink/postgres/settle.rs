//! The settle phase: rows of the staging table merged into the target (new keys inserted,
//! equal rows counted as duplicates, other values rejected), and the bulk route's index rebuilt.

use super::*;

/// Whether a COPY was stopped by the unique index (or a deadlock with another load's rows).
pub(super) fn refused_by_index(e: &Error) -> bool {
    use postgres::error::SqlState;
    matches!(e, Error::Database { .. })
        && [SqlState::UNIQUE_VIOLATION, SqlState::T_R_DEADLOCK_DETECTED]
            .iter()
            .any(|s| e.state().as_ref() == Some(s))
}

/// Apply: settles the copied rows. Bulk route: builds the unique index (removing the file's
/// equal duplicates first if it finds any). Direct route: nothing left to do. Staged route:
/// inserts the staged rows whose key is new, then (only when some were not inserted) rejects
/// the staged rows whose key the table holds with other values. Returns (rows loaded,
/// conflicting duplicates found in the table).
pub(super) fn apply(
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
pub(super) fn insert_new(
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
                    xact_lock(tx, short_table, true)?;
                    order = format!("ORDER BY {unique}");
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// A deadlock, or a lock not had within `lock_timeout`.
pub(super) fn is_lock_wait(e: &postgres::Error) -> bool {
    use postgres::error::SqlState;
    matches!(
        e.code(),
        Some(c) if *c == SqlState::T_R_DEADLOCK_DETECTED || *c == SqlState::LOCK_NOT_AVAILABLE
    )
}

/// Whether the statistics say the table has no rows (a hint that takes no lock on the table).
pub(super) fn looks_empty(tx: &mut Transaction<'_>, schema: &str, table: &str) -> Result<bool> {
    let row = tx.query_opt(
        "SELECT n_live_tup FROM pg_stat_user_tables WHERE schemaname = $1 AND relname = $2",
        &[&schema, &table],
    )?;
    Ok(row.is_none_or(|r| r.get::<_, i64>(0) == 0))
}

/// Builds the unique index after a bulk copy; if the file held duplicates, keeps the first
/// occurrence of each and builds it again. Returns how many duplicates were removed.
pub(super) fn settle_bulk(
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
