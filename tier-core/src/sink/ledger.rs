//! The `tier_loads` ledger: one row per load attempt, committed with the load's rows.

use postgres::GenericClient;

use crate::db::ddl::{qualified, LEDGER};
use crate::error::Result;
use crate::report::FileReport;

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
    pub fn failed(&self, c: &mut impl GenericClient, r: &FileReport, error: &str) -> Result<i64> {
        let row = c.query_one(
            &format!(
                "INSERT INTO {} (dataset, target_table, source, sha256, bytes, records, loaded, \
                 duplicates, rejected, status, finished_at, error) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'failed', clock_timestamp(), $10) \
                 RETURNING load_id",
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
            ],
        )?;
        Ok(row.get(0))
    }
}
