//! # tier-core
//!
//! Loads JSON exports of event streams into typed PostgreSQL tables, accounting for every
//! record: each is loaded, counted as a duplicate, or stored with its reason in a rejects table.
//! A dataset is a [`Definition`] (TOML); the built-ins are definitions too.
//!
//! Data flows one way, and the crate's folders follow it: bytes → records (`read/`: files,
//! gzip, objects, the JSON scanner) → validated rows or rejects (`schema/`), run in parallel by
//! `pipeline/` → a sink (`sink/`: binary COPY into PostgreSQL with its ledger, or the lake of
//! Parquet files under Iceberg tables, `iceberg/`), one file at a time by one skeleton and many
//! files at once by [`load_files`]. Those folders are the crate's own; what a user needs is
//! re-exported here. [`db`] (connections, the embedded server, DDL), [`generate`] (sample data)
//! and [`watch`] (continuous loading) are modules of their own.
//!
//! ```
//! use tier_core::{Registry, Timestamp};
//! let datasets = Registry::builtin();
//! assert_eq!(datasets.get("weather").unwrap().key.as_ref().unwrap().len(), 2);
//! assert!(Timestamp::parse("2019-05-13 14:23:41").is_some());
//! ```
#![warn(missing_docs)]

mod check;
pub mod db;
mod error;
mod fault;
pub mod generate;
mod iceberg;
mod load;
mod pipeline;
mod read;
mod report;
mod schema;
mod sink;
mod text;
pub mod watch;

pub use arrow_array;
pub use postgres;

// Errors and reports.
pub use error::{Error, ErrorKind, Result};
pub use report::{FileReport, RejectRatio, Report, Status, Totals};
pub use text::visible;

// Datasets: definitions, rows, validation, inference.
pub use schema::infer::{infer, infer_from, DEFAULT_SAMPLE};
pub use schema::row::{Row, Value};
pub use schema::timestamp::Timestamp;
pub use schema::validate::{validate, KeyOrder, Reject, RejectReason, UnknownFields};
pub use schema::{Column, ColumnType, Dataset, Definition, Registry};

// Inputs.
pub use read::object::{Bucket, Url};
pub use read::{
    sha256_file, Input, Location, Progress, RawKind, RawRecord, DEFAULT_MAX_RECORD_BYTES,
};

// Reading, checking and loading.
pub use check::{check as check_file, Rows};
pub use load::{check_files, expand_inputs, expand_inputs_at, load_files, Destination};
pub use pipeline::{Observer, Quiet, ReadOptions};
pub use sink::batches::{BatchOf, Batches};
pub use sink::lake::{ledger_of as lake_ledger, Lake};
pub use sink::ledger::{Ledger, LedgerLine};
pub use sink::{postgres::Loader, LoadOptions};

/// The README's Rust examples, compiled as doctests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;
