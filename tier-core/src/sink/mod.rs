//! Where validated rows and rejects go: PostgreSQL through binary COPY, with the ledger, or the
//! lake (partitioned Parquet files).

pub mod batches;
pub mod copy;
pub mod dedup;
pub mod lake;
pub mod ledger;
mod load;
pub mod postgres;

pub(crate) use load::{load_file, Incoming, Sink};

use crate::pipeline::ReadOptions;

/// How to load.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// How to read the files.
    pub read: ReadOptions,
    /// PostgreSQL schema of the tables (default `public`).
    pub schema: crate::db::ddl::SchemaName,
    /// Load even if the same content was loaded before.
    pub force: bool,
    /// Empty the target table (in the same transaction) before loading.
    pub replace: bool,
    /// Above this share of rejected records, roll back and report `failed`.
    pub max_reject_ratio: Option<crate::RejectRatio>,
    /// A lake's Iceberg SQL catalog: a PostgreSQL URL (or libpq settings) whose database keeps
    /// the catalog and, in its `tier_loads`, the lake's ledger (`None`: the lake's own files).
    pub catalog_url: Option<String>,
}
