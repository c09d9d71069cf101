//! # tier-core
//!
//! Loads JSON exports of event streams into typed PostgreSQL tables, accounting for every
//! record: each is loaded, counted as a duplicate, or stored with its reason in a rejects table.
//! A dataset is a [`Definition`] (TOML); the built-ins are definitions too.
//!
//! Data flows one way, and the modules follow it: bytes → records ([`read`]) → validated rows or
//! rejects ([`schema`]), run in parallel by the [`pipeline`] → a sink ([`sink`]: binary COPY into
//! PostgreSQL, whose connection, embedded server and DDL live in [`db`]).
//!
//! ```
//! use tier_core::{Registry, Timestamp};
//! let datasets = Registry::builtin();
//! assert_eq!(datasets.get("weather").unwrap().key.as_ref().unwrap().len(), 2);
//! assert!(Timestamp::parse("2019-05-13 14:23:41").is_some());
//! ```
#![warn(missing_docs)]

pub mod check;
pub mod db;
pub mod error;
mod fault;
pub mod generate;
pub mod iceberg;
pub mod load;
pub mod pipeline;
pub mod read;
pub mod report;
pub mod schema;
pub mod sink;
pub mod watch;

pub use arrow_array;
pub use error::{Error, ErrorKind, Result};
pub use load::{check_files, load_files, Destination};
pub use pipeline::{Observer, Quiet, ReadOptions};
pub use postgres;
pub use report::{FileReport, RejectRatio, Report, Status, Totals};
pub use schema::row::{Row, Value};
pub use schema::timestamp::Timestamp;
pub use schema::validate::{Reject, RejectReason};
pub use schema::{Column, ColumnType, Dataset, Definition, Registry};
pub use sink::{postgres::Loader, LoadOptions};

/// The README's Rust examples, compiled as doctests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;
