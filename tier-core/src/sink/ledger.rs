//! The `tier_loads` ledger: one row per load attempt, committed with the load's rows.

use postgres::GenericClient;
use serde::{Deserialize, Serialize};

use crate::db::ddl::{qualified, LEDGER};
use crate::error::Result;
use crate::report::FileReport;

/// One load in a ledger: the fields of `tier_loads` (and, in a lake's, the parts written).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LedgerLine {
    /// The load's id, unique in this lake.
    pub load_id: i64,
    /// The dataset.
    pub dataset: String,
    /// The table (folder) written.
    pub target_table: String,
    /// The input, as given.
    pub source: String,
    /// SHA-256 of the input's bytes.
    pub sha256: String,
    /// Size of the input.
    pub bytes: u64,
    /// Records read.
    pub records: u64,
    /// Rows written.
    pub loaded: u64,
    /// Duplicates dropped.
    pub duplicates: u64,
    /// Records rejected.
    pub rejected: u64,
    /// `succeeded` or `failed`.
    pub status: String,
    /// When the load started (RFC 3339, UTC).
    pub started_at: String,
    /// When it ended.
    pub finished_at: String,
    /// The parts written, relative to the lake's root.
    #[serde(default)]
    pub parts: Vec<String>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Whether a load of this status and error settled its file for good: it succeeded, or it
/// failed by the file's content — not by the database (or storage) or an interrupt, which are
/// worth another try. The one rule for a ledger in PostgreSQL and a lake's.
pub fn settles(status: &str, error: Option<&str>) -> bool {
    status == "succeeded"
        || (status == "failed"
            && error.is_some_and(|e| !e.starts_with("database:") && e != "interrupted"))
}

/// The ledger in one schema.
#[derive(Debug, Clone)]
pub struct Ledger {
    table: String,
}

impl Ledger {
    /// The ledger of `schema`.
    pub fn new(schema: &str) -> Ledger {
        Ledger {
            table: qualified(schema, LEDGER),
        }
    }

    /// The id of a succeeded load of this content into this table, if any.
    pub fn succeeded(
        &self,
        c: &mut impl GenericClient,
        sha256: &str,
        table: &str,
    ) -> Result<Option<i64>> {
        let row = c.query_opt(
            &format!(
                "SELECT load_id FROM {} WHERE sha256 = $1 AND target_table = $2 \
                 AND status = 'succeeded' ORDER BY load_id DESC LIMIT 1",
                self.table
            ),
            &[&sha256, &table],
        )?;
        Ok(row.map(|r| r.get(0)))
    }

    /// Whether a file of this name and size was loaded before into any table (then it is worth
    /// hashing first, so that a re-run is skipped without reading the file twice).
    pub fn looks_loaded(
        &self,
        c: &mut impl GenericClient,
        source: &str,
        bytes: u64,
    ) -> Result<bool> {
        let exists: bool = c
            .query_one("SELECT to_regclass($1) IS NOT NULL", &[&self.table])?
            .get(0);
        if !exists {
            return Ok(false);
        }
        let row = c.query_one(
            &format!(
                "SELECT EXISTS (SELECT 1 FROM {} WHERE source = $1 AND bytes = $2 \
                 AND status = 'succeeded')",
                self.table
            ),
            &[&source, &(bytes as i64)],
        )?;
        Ok(row.get(0))
    }

    /// Of these sources, the loads that settled them for good, as (source, bytes, finished at
    /// in seconds since 1970): succeeded, or failed by their content (not by the database or
    /// an interrupt, which are worth another try). One query for many files.
    pub fn settled(
        &self,
        c: &mut impl GenericClient,
        sources: &[String],
    ) -> Result<Vec<(String, u64, f64)>> {
        let exists: bool = c
            .query_one("SELECT to_regclass($1) IS NOT NULL", &[&self.table])?
            .get(0);
        if !exists || sources.is_empty() {
            return Ok(Vec::new());
        }
        let rows = c.query(
            &format!(
                "SELECT source, bytes, extract(epoch FROM coalesce(finished_at, started_at))::float8, \
                 status, error FROM {} WHERE source = ANY($1) AND status IN ('succeeded', 'failed')",
                self.table
            ),
            &[&sources],
        )?;
        Ok(rows
            .iter()
            .filter(|r| settles(r.get(3), r.get(4)))
            .map(|r| {
                let bytes: Option<i64> = r.get(1);
                (r.get(0), bytes.unwrap_or(0) as u64, r.get(2))
            })
            .collect())
    }

    /// The last `limit` loads, newest first; only those into `table` (qualified, or unqualified
    /// in this ledger's schema) when given.
    pub fn list(
        &self,
        c: &mut impl GenericClient,
        table: Option<&str>,
        limit: i64,
    ) -> Result<Vec<LedgerLine>> {
        let rows = c.query(
            &format!(
                "SELECT load_id, dataset, target_table, source, sha256, coalesce(bytes, 0), \
                 coalesce(records, 0), coalesce(loaded, 0), coalesce(duplicates, 0), \
                 coalesce(rejected, 0), status, started_at::text, coalesce(finished_at::text, ''), \
                 error FROM {} WHERE $1::text IS NULL OR target_table = $1 \
                 OR split_part(target_table, '.', 2) = $1 ORDER BY load_id DESC LIMIT $2",
                self.table
            ),
            &[&table, &limit],
        )?;
        Ok(rows
            .iter()
            .map(|r| LedgerLine {
                load_id: r.get(0),
                dataset: r.get(1),
                target_table: r.get(2),
                source: r.get(3),
                sha256: r.get(4),
                bytes: r.get::<_, i64>(5) as u64,
                records: r.get::<_, i64>(6) as u64,
                loaded: r.get::<_, i64>(7) as u64,
                duplicates: r.get::<_, i64>(8) as u64,
                rejected: r.get::<_, i64>(9) as u64,
                status: r.get(10),
                started_at: r.get(11),
                finished_at: r.get(12),
                parts: Vec::new(),
                error: r.get(13),
            })
            .collect())
    }

    /// Opens a `running` row for a load; returns its id.
    pub fn start(
        &self,
        c: &mut impl GenericClient,
        dataset: &str,
        table: &str,
        source: &str,
        sha256: &str,
    ) -> Result<i64> {
        let row = c.query_one(
            &format!(
                "INSERT INTO {} (dataset, target_table, source, sha256, status) \
                 VALUES ($1, $2, $3, $4, 'running') RETURNING load_id",
                self.table
            ),
            &[&dataset, &table, &source, &sha256],
        )?;
        Ok(row.get(0))
    }

    /// Writes a load's outcome into its row.
    pub fn finish(&self, c: &mut impl GenericClient, r: &FileReport, load_id: i64) -> Result<()> {
        c.execute(
            &format!(
                "UPDATE {} SET sha256 = $2, bytes = $3, records = $4, loaded = $5, \
                 duplicates = $6, rejected = $7, status = $8, finished_at = clock_timestamp() \
                 WHERE load_id = $1",
                self.table
            ),
            &[
                &load_id,
                &r.sha256,
                &(r.bytes as i64),
                &(r.records as i64),
                &(r.loaded as i64),
                &(r.duplicates as i64),
                &(r.rejected as i64),
                &r.status.as_str(),
            ],
        )?;
        Ok(())
    }

    /// Marks the succeeded loads into `table` other than `load_id` as `replaced` (their rows
    /// were removed by `--replace`), so that their files load again.
    pub fn superseded(&self, c: &mut impl GenericClient, table: &str, load_id: i64) -> Result<u64> {
        Ok(c.execute(
            &format!(
                "UPDATE {} SET status = 'replaced' \
                 WHERE target_table = $1 AND status = 'succeeded' AND load_id <> $2",
                self.table
            ),
            &[&table, &load_id],
        )?)
    }

    /// Records a failed attempt (after its transaction was rolled back); returns its id.
    pub fn failed(
        &self,
        c: &mut impl GenericClient,
        r: &FileReport,
        error: &str,
        started_at: std::time::SystemTime,
    ) -> Result<i64> {
        let started = started_at
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        let row = c.query_one(
            &format!(
                "INSERT INTO {} (dataset, target_table, source, sha256, bytes, records, loaded, \
                 duplicates, rejected, status, started_at, finished_at, error) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'failed', to_timestamp($11), \
                 clock_timestamp(), $10) RETURNING load_id",
                self.table
            ),
            &[
                &r.dataset,
                &r.table.clone().unwrap_or_default(),
                &r.path,
                &r.sha256,
                &(r.bytes as i64),
                &(r.records as i64),
                &(r.loaded as i64),
                &(r.duplicates as i64),
                &(r.rejected as i64),
                &error,
                &started,
            ],
        )?;
        Ok(row.get(0))
    }

    /// Writes a lake load's line into its row (opened by [`Ledger::start`]): the lake's ledger
    /// when it lives in the catalog's database. Its table is `lake:<table>`.
    pub fn record_line(&self, c: &mut impl GenericClient, l: &LedgerLine) -> Result<()> {
        c.execute(
            &format!(
                "UPDATE {} SET target_table = $2, sha256 = $3, bytes = $4, records = $5, \
                 loaded = $6, duplicates = $7, rejected = $8, status = $9, error = $10, \
                 finished_at = clock_timestamp() WHERE load_id = $1",
                self.table
            ),
            &[
                &l.load_id,
                &format!("lake:{}", l.target_table),
                &l.sha256,
                &(l.bytes as i64),
                &(l.records as i64),
                &(l.loaded as i64),
                &(l.duplicates as i64),
                &(l.rejected as i64),
                &l.status,
                &l.error,
            ],
        )?;
        Ok(())
    }

    /// Removes the row of an attempt that wrote nothing (its content was committed meanwhile).
    pub fn forget(&self, c: &mut impl GenericClient, load_id: i64) -> Result<()> {
        c.execute(
            &format!(
                "DELETE FROM {} WHERE load_id = $1 AND status = 'running'",
                self.table
            ),
            &[&load_id],
        )?;
        Ok(())
    }
}
