//! Where validated rows and rejects go: PostgreSQL through binary COPY, with the ledger, or the
//! lake (partitioned Parquet files).

pub mod arrow;
pub mod batches;
pub mod copy;
pub mod dedup;
pub mod lake;
pub mod ledger;
pub mod postgres;
